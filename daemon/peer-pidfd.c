/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A pidfd of a subscriber's own process, from its socket or its checked
 * pid, and the signals sent through it; see peer-pidfd.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
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

/* The pid of pidfd's process, from its fdinfo ("Pid:", -1 once it exited). */
static pid_t pidfd_get_pid(int pidfd) {
        char path[64], buf[512];
        pid_t pid = -1;

        snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return -1;
        buf[n] = 0;
        const char *p = strstr(buf, "\nPid:");
        if (!p || sscanf(p + 5, "%d", &pid) != 1)
                return -1;
        return pid;
}

int peer_pidfd_read_uids(int pidfd, uint32_t *ruid, uint32_t *euid, uint32_t *suid) {
        struct pidfd_info info = { .mask = PIDFD_INFO_CREDS };
        char path[64], buf[4096];
        unsigned long u[3];

        if (pidfd < 0)
                return -EBADF;
        if (ioctl(pidfd, PIDFD_GET_INFO, &info) == 0) {
                *ruid = info.ruid;
                *euid = info.euid;
                *suid = info.suid;
                return 0;
        }
        if (errno == ESRCH)
                return -ESRCH;
        if (errno != ENOTTY && errno != EINVAL && errno != EOPNOTSUPP)
                return -errno;
        /* Before Linux 6.13: /proc, opened while the pidfd says the
         * process lives, so the file is that process's and not a reuser's. */
        pid_t pid = pidfd_get_pid(pidfd);
        if (pid <= 0)
                return -ESRCH;
        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || pn_pidfd_send_signal(pidfd, 0, NULL, 0) < 0)
                return -ESRCH;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return -ESRCH;
        buf[n] = 0;
        const char *p = strstr(buf, "\nUid:");
        if (!p || sscanf(p + 5, "%lu %lu %lu", &u[0], &u[1], &u[2]) != 3)
                return -EIO;
        *ruid = (uint32_t) u[0];
        *euid = (uint32_t) u[1];
        *suid = (uint32_t) u[2];
        return 0;
}

bool peer_may_signal(uint32_t ruid, uint32_t euid, uint32_t t_ruid, uint32_t t_suid) {
        return euid == 0 || euid == t_ruid || euid == t_suid || ruid == t_ruid || ruid == t_suid;
}

int peer_signals_set(PeerSignals *ps, int pidfd, uint32_t conn_uid) {
        uint32_t ruid, euid, suid;
        int r = peer_pidfd_read_uids(pidfd, &ruid, &euid, &suid);

        if (r >= 0 && conn_uid != ruid && conn_uid != euid)
                r = -EPERM;
        if (r < 0) {
                safe_close(pidfd);
                return r;
        }
        safe_close(ps->pidfd);
        *ps = (PeerSignals){ .pidfd = pidfd, .ruid = ruid, .euid = euid };
        return 0;
}

void peer_signals_done(PeerSignals *ps) {
        ps->pidfd = safe_close(ps->pidfd);
}

int peer_signals_send(PeerSignals *ps, uint64_t sigmask, int value, const PeerSignalCounts *n) {
        uint32_t ruid = 0, euid = 0, suid = 0;
        bool gone, allowed;
        int withheld = 0;

        if (!sigmask)
                return 0;
        /* The target's uids now, once per delivery: what it runs as may
         * have changed since the subscriber subscribed. */
        gone = ps->pidfd < 0 || peer_pidfd_read_uids(ps->pidfd, &ruid, &euid, &suid) < 0;
        allowed = !gone && peer_may_signal(ps->ruid, ps->euid, ruid, suid);
        for (int sig = 1; sigmask; sig++, sigmask >>= 1) {
                if (!(sigmask & 1))
                        continue;
                if (!gone && !allowed) {
                        (*n->withheld)++;
                        if (!withheld)
                                withheld = sig;
                        continue;
                }
                siginfo_t si = { .si_signo = sig, .si_code = SI_QUEUE };
                si.si_pid = getpid();
                si.si_uid = getuid();
                si.si_value.sival_int = value;
                if (!gone && pn_pidfd_send_signal(ps->pidfd, sig, &si, 0) == 0) {
                        (*n->sent)++;
                        ps->withheld_told = false;
                } else
                        (*n->failed)++;
        }
        if (!withheld || ps->withheld_told)
                return 0;
        ps->withheld_told = true;
        return withheld;
}
