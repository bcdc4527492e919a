/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* PidfdWatch: the race-free exit of one watched process, from its pidfd;
 * see source-pidfd.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/linux-compat.h"
#include "common/macro.h"
#include "source-pidfd.h"

struct PidfdWatch {
        pid_t pid;
        int fd;
        sd_event_source *io;
        PidfdWatchFn fn;
        void *userdata;
};

int pidfd_open_process(pid_t pid) {
        char path[64], buf[1024];
        const char *tgid;
        ssize_t n;
        int fd;

        if (pid <= 0)
                return -ESRCH;
        fd = pn_pidfd_open(pid, 0);
        if (fd >= 0)
                return fd;
        if (errno != EINVAL)
                return -errno;
        /* EINVAL (older kernels): the pid exists but leads no thread group:
         * a thread's id, or a process reaped while the call ran. A thread
         * still has /proc/TID/status (not listed, but there), naming its
         * thread group. */
        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        _cleanup_close_ int sfd = open(path, O_RDONLY | O_CLOEXEC);
        if (sfd < 0)
                return -ESRCH;
        n = read(sfd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return -ESRCH;
        buf[n] = 0;
        tgid = strstr(buf, "\nTgid:");
        if (tgid && atoi(tgid + 6) != pid && atoi(tgid + 6) > 0)
                return -ENOENT;
        return -ESRCH;
}

int pidfd_exit_status(int pidfd) {
        struct pidfd_info info = { .mask = PIDFD_INFO_EXIT };

        /* Older kernels do not know the ioctl (ENOTTY) or the flag (the
         * mask comes back without it); a live or unreaped process has no
         * exit information yet. */
        if (ioctl(pidfd, PIDFD_GET_INFO, &info) < 0 || !(info.mask & PIDFD_INFO_EXIT))
                return -1;
        return info.exit_code;
}

static int pidfd_watch_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        PidfdWatch *w = userdata;
        struct timespec ts;

        (void) revents;
        /* Level-triggered and readable for good from now on: once is all. */
        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        w->fn(w, pidfd_exit_status(fd), (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec,
              w->userdata);
        return 0;
}

int pidfd_watch_new(PidfdWatch **ret, sd_event *e, pid_t tgid, PidfdWatchFn fn, void *userdata) {
        _cleanup_(sd_event_source_unrefp) sd_event_source *io = NULL;
        _cleanup_close_ int fd = -1;
        PidfdWatch *w;
        int r;

        fd = pidfd_open_process(tgid);
        if (fd < 0)
                return fd;
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        r = sd_event_add_io(e, &io, fd, EPOLLIN, pidfd_watch_on_io, w);
        if (r < 0) {
                free(w);
                return r;
        }
        (void) sd_event_source_set_description(io, "pidfd-watch");
        w->pid = tgid;
        w->fd = TAKE_FD(fd);
        w->io = TAKE_PTR(io);
        w->fn = fn;
        w->userdata = userdata;
        *ret = w;
        return 0;
}

PidfdWatch *pidfd_watch_free(PidfdWatch *w) {
        if (!w)
                return NULL;
        sd_event_source_disable_unref(w->io);
        safe_close(w->fd);
        free(w);
        return NULL;
}

void pidfd_watch_set_userdata(PidfdWatch *w, void *userdata) {
        w->userdata = userdata;
}

bool pidfd_watch_is_alive(const PidfdWatch *w) {
        struct pollfd p = { .fd = w->fd, .events = POLLIN };
        return poll(&p, 1, 0) == 0;
}

int pidfd_watch_get_fd(const PidfdWatch *w) {
        return w->fd;
}

pid_t pidfd_watch_get_pid(const PidfdWatch *w) {
        return w->pid;
}
