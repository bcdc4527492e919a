/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-gen N RATE: rename this process "pnb-0" … "pnb-<N-1>" at RATE
 * renames a second (each a kernel comm event), then print one line per
 * rename: "<index> <CLOCK_MONOTONIC ns just before the prctl>".
 */
#include <sys/prctl.h>

#include "bench-common.h"

int main(int argc, char **argv) {
        if (argc != 3)
                return 2;
        long n = strtol(argv[1], NULL, 10), rate = strtol(argv[2], NULL, 10);
        uint64_t *t = calloc((size_t) n, sizeof(*t));
        uint64_t start = bench_now(), gap = 1000000000u / (uint64_t) (rate > 0 ? rate : 1);
        char name[32];

        if (!t || n <= 0)
                return 2;
        for (long i = 0; i < n; i++) {
                uint64_t due = start + (uint64_t) i * gap;
                struct timespec ts = { .tv_sec = (time_t) (due / 1000000000u),
                                       .tv_nsec = (long) (due % 1000000000u) };
                clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
                snprintf(name, sizeof(name), BENCH_PREFIX "%ld", i);
                t[i] = bench_now();
                prctl(PR_SET_NAME, name); /* the kernel keeps 15 bytes: enough for 10^11 */
        }
        for (long i = 0; i < n; i++)
                printf("%ld %llu\n", i, (unsigned long long) t[i]);
        return 0;
}
