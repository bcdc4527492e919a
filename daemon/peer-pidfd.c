/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* See peer-pidfd.h. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#include "common/linux-compat.h"
#include "common/macro.h"
#include "peer-pidfd.h"
#include "procfs.h"
#include "source-pidfd.h"

uint64_t peer_boottime_now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_BOOTTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

int peer_pidfd_open_pid(pid_t pid, uint64_t known_since_ns) {
        _cleanup_close_ int fd = -1;
        char path[64], buf[1024];
        ProcInfo info = { 0 };
        ssize_t n;
        long hz = sysconf(_SC_CLK_TCK);

        fd = pidfd_open_process(pid);
        if (fd < 0)
                return fd;
        /* The pidfd pins whichever process has pid now; its start time tells
         * whether that is still the one the caller learned of. */
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        _cleanup_close_ int sfd = open(path, O_RDONLY | O_CLOEXEC);
        if (sfd < 0)
                return errno == ENOENT ? -ESRCH : -errno;
        n = read(sfd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return -ESRCH;
        buf[n] = 0;
        if (procfs_parse_stat(buf, (size_t) n, &info) < 0 || hz <= 0)
                return -EIO;
        if (info.start_time * (1000000000u / (uint64_t) hz) > known_since_ns)
                return -ESRCH;
        return TAKE_FD(fd);
}

int peer_pidfd_open_socket(int sockfd, pid_t pid, uint64_t known_since_ns) {
        int fd = -1;
        socklen_t len = sizeof(fd);

        if (getsockopt(sockfd, SOL_SOCKET, SO_PEERPIDFD, &fd, &len) == 0 && fd >= 0)
                return fd;
        if (errno != ENOPROTOOPT && errno != EINVAL)
                return -errno;
        return peer_pidfd_open_pid(pid, known_since_ns);
}

void peer_pidfd_send_signals(int pidfd, uint64_t sigmask, int value, uint64_t *sent,
                             uint64_t *failed) {
        for (int sig = 1; sigmask; sig++, sigmask >>= 1) {
                if (!(sigmask & 1))
                        continue;
                siginfo_t si = { .si_signo = sig, .si_code = SI_QUEUE };
                si.si_pid = getpid();
                si.si_uid = getuid();
                si.si_value.sival_int = value;
                if (pidfd >= 0 && pn_pidfd_send_signal(pidfd, sig, &si, 0) == 0)
                        (*sent)++;
                else
                        (*failed)++;
        }
}
