/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-crash N RATE: N crashes at RATE a second. Each is a child that names
 * itself "<prefix><index>" (PR_SET_NAME, see bench-common.h), sets
 * RLIMIT_CORE to 0 (no core file is written, as on most hosts that are not
 * debugging), takes the time, and dies of SIGSEGV: a predump event, then its
 * exit. Then one line per crash: "<index> <CLOCK_MONOTONIC ns just before
 * the signal>", for the latency of the two events users act on.
 *
 * The patched kernel's PR_SET_PREDUMP_SIG (tests/kernel/, run in its VM by
 * `./dev.sh test-kernels bench`):
 *
 * bench-crash --one FILE INDEX: one crash, of this process itself (a child
 * the broker runs with `run`, its parent): the same name and time, appended
 * to FILE as "<index> <ns>", then SIGSEGV.
 *
 * bench-crash --pair N RATE PRCTL: the floor of both paths for the same
 * crashes: this process sets PR_SET_PREDUMP_SIG (number PRCTL) to SIGUSR1
 * on itself and listens to the proc connector; for each of N crashes of its
 * children it prints "<index> <ns before the signal> <ns the connector's
 * COREDUMP was read> <ns the predump signal was read>" (the same time when
 * one wakeup found both).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-cn.h"
#include "bench-common.h"

/* In a child: take the name, no core, the time; then SIGSEGV. */
static void crash(long i, int fd, bool text) {
        char name[32], line[64];
        struct rlimit no_core = { 0, 0 };
        snprintf(name, sizeof(name), "%s%ld", bench_prefix(), i);
        prctl(PR_SET_NAME, name);
        setrlimit(RLIMIT_CORE, &no_core);
        uint64_t t0 = bench_now();
        if (text) {
                int k = snprintf(line, sizeof(line), "%ld %llu\n", i, (unsigned long long) t0);
                if (write(fd, line, (size_t) k) != k)
                        _exit(1);
        } else if (write(fd, &t0, sizeof(t0)) != sizeof(t0))
                _exit(1);
        raise(SIGSEGV);
        _exit(1);
}

/* Crash number i, due at due (0: now): its pid, the time it took in *t0. */
static pid_t crash_child(long i, uint64_t due, const int pfd[2], uint64_t *t0) {
        struct timespec ts = { .tv_sec = (time_t) (due / 1000000000u), .tv_nsec = (long) (due % 1000000000u) };
        if (due)
                clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        pid_t pid = fork();
        if (pid == 0)
                crash(i, pfd[1], false);
        if (pid < 0 || read(pfd[0], t0, sizeof(*t0)) != sizeof(*t0))
                return -1;
        return pid;
}

/* The connector's COREDUMP of pid and the signal from it, each read once:
 * their times in *t_cn, *t_sig; 0 when both came within 10 s. */
static int read_both(int cn, int sfd, pid_t pid, uint64_t *t_cn, uint64_t *t_sig) {
        char buf[512] __attribute__((aligned(8)));
        uint64_t deadline = bench_now() + 10000000000u;
        *t_cn = *t_sig = 0;
        while (!*t_cn || !*t_sig) {
                struct pollfd p[2] = { { cn, POLLIN, 0 }, { sfd, POLLIN, 0 } };
                if (bench_now() > deadline)
                        return -1;
                if (poll(p, 2, 100) <= 0)
                        continue;
                /* Both ready at one wakeup: the same time for both, whichever
                 * is read first. */
                uint64_t t = bench_now();
                if (p[1].revents) {
                        struct signalfd_siginfo si;
                        if (read(sfd, &si, sizeof(si)) == sizeof(si) && (pid_t) si.ssi_pid == pid)
                                *t_sig = t;
                }
                if (p[0].revents) {
                        ssize_t k;
                        while ((k = recv(cn, buf, sizeof(buf), MSG_DONTWAIT)) > 0 || (k < 0 && errno == ENOBUFS)) {
                                if (k < 0)
                                        continue;
                                struct proc_event *ev = (struct proc_event *) ((struct cn_msg *) NLMSG_DATA(
                                                                                 (struct nlmsghdr *) buf))
                                                                ->data;
                                if (ev->what == PROC_EVENT_COREDUMP && ev->event_data.coredump.process_tgid == pid)
                                        *t_cn = t;
                        }
                }
        }
        return 0;
}

static int pair(long n, long rate, unsigned long option) {
        uint64_t gap = rate > 0 ? 1000000000u / (uint64_t) rate : 0;
        sigset_t mask;
        int pfd[2];
        sigemptyset(&mask);
        sigaddset(&mask, SIGUSR1);
        int cn = bench_cn_socket();
        if (cn < 0 || bench_cn_listen(cn) < 0 || pipe(pfd) < 0 || sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return 1;
        int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
        if (sfd < 0 || prctl(option, SIGUSR1, 0, 0, 0) < 0) {
                fprintf(stderr, "bench-crash: prctl(%lu, SIGUSR1): %s (not the patched kernel?)\n", option,
                        strerror(errno));
                return 1;
        }
        uint64_t start = bench_now();
        for (long i = 0; i < n; i++) {
                uint64_t t0, t_cn, t_sig;
                pid_t pid = crash_child(i, gap ? start + (uint64_t) i * gap : 0, pfd, &t0);
                if (pid < 0)
                        return 1;
                int r = read_both(cn, sfd, pid, &t_cn, &t_sig);
                (void) waitpid(pid, NULL, 0);
                if (r < 0) {
                        fprintf(stderr, "bench-crash: crash %ld: connector %s, signal %s within 10 s\n", i,
                                t_cn ? "read" : "NOT read", t_sig ? "read" : "NOT read");
                        return 1;
                }
                printf("%ld %llu %llu %llu\n", i, (unsigned long long) t0, (unsigned long long) t_cn,
                       (unsigned long long) t_sig);
        }
        return 0;
}

int main(int argc, char **argv) {
        if (argc == 4 && strcmp(argv[1], "--one") == 0) {
                int fd = open(argv[2], O_WRONLY | O_APPEND | O_CLOEXEC);
                if (fd < 0)
                        return 2;
                crash(strtol(argv[3], NULL, 10), fd, true);
        }
        if (argc == 5 && strcmp(argv[1], "--pair") == 0)
                return pair(strtol(argv[2], NULL, 10), strtol(argv[3], NULL, 10), strtoul(argv[4], NULL, 0));
        if (argc != 3)
                return 2;
        long n = strtol(argv[1], NULL, 10), rate = strtol(argv[2], NULL, 10);
        uint64_t *t = calloc((size_t) (n > 0 ? n : 1), sizeof(*t));
        uint64_t start = bench_now(), gap = rate > 0 ? 1000000000u / (uint64_t) rate : 0;
        int pfd[2];

        if (!t || n <= 0 || pipe(pfd) < 0)
                return 2;
        for (long i = 0; i < n; i++) {
                pid_t pid = crash_child(i, gap ? start + (uint64_t) i * gap : 0, pfd, &t[i]);
                if (pid < 0)
                        return 1;
                (void) waitpid(pid, NULL, 0);
        }
        for (long i = 0; i < n; i++)
                printf("%ld %llu\n", i, (unsigned long long) t[i]);
        return 0;
}
