/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-crash N RATE: N crashes at RATE a second. Each is a child that names
 * itself "<prefix><index>" (PR_SET_NAME, see bench-common.h), sets
 * RLIMIT_CORE to 0 (no core file is written, as on most hosts that are not
 * debugging), takes the time, and dies of SIGSEGV: a predump event, then its
 * exit. Then one line per crash: "<index> <CLOCK_MONOTONIC ns just before
 * the signal>", for the latency of the two events users act on.
 */
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-common.h"

int main(int argc, char **argv) {
        if (argc != 3)
                return 2;
        long n = strtol(argv[1], NULL, 10), rate = strtol(argv[2], NULL, 10);
        uint64_t *t = calloc((size_t) (n > 0 ? n : 1), sizeof(*t));
        uint64_t start = bench_now(), gap = rate > 0 ? 1000000000u / (uint64_t) rate : 0;
        const char *prefix = bench_prefix();
        int pfd[2];

        if (!t || n <= 0 || pipe(pfd) < 0)
                return 2;
        for (long i = 0; i < n; i++) {
                uint64_t due = start + (uint64_t) i * gap;
                struct timespec ts = { .tv_sec = (time_t) (due / 1000000000u),
                                       .tv_nsec = (long) (due % 1000000000u) };
                if (gap)
                        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
                pid_t pid = fork();
                if (pid < 0)
                        return 1;
                if (pid == 0) {
                        char name[32];
                        struct rlimit no_core = { 0, 0 };
                        snprintf(name, sizeof(name), "%s%ld", prefix, i);
                        prctl(PR_SET_NAME, name);
                        setrlimit(RLIMIT_CORE, &no_core);
                        uint64_t t0 = bench_now();
                        if (write(pfd[1], &t0, sizeof(t0)) != sizeof(t0))
                                _exit(1);
                        raise(SIGSEGV);
                        _exit(1);
                }
                if (read(pfd[0], &t[i], sizeof(t[i])) != sizeof(t[i]))
                        return 1;
                (void) waitpid(pid, NULL, 0);
        }
        for (long i = 0; i < n; i++)
                printf("%ld %llu\n", i, (unsigned long long) t[i]);
        return 0;
}
