/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-gen N RATE: rename this process "pnb-0" … "pnb-<N-1>" (or with
 * PNB_PREFIX's prefix, see bench-common.h) at RATE
 * renames a second (each a kernel comm event; RATE 0: as fast as it can),
 * then print one line per rename: "<index> <CLOCK_MONOTONIC ns just before
 * the prctl>". With PNB_SUMMARY=1 it prints "sent N first <ns> last <ns>"
 * instead.
 *
 * Pacing: each rename has a due time (start + i/RATE). The generator sleeps
 * until it when it is more than PACE_SLACK_NS away and otherwise renames at
 * once, so that at high rates (where a sleep costs more than the gap) the
 * mean rate is still RATE, in short runs, and a late start is caught up.
 */
#include <sys/prctl.h>

#include "bench-common.h"

#define PACE_SLACK_NS 50000u

int main(int argc, char **argv) {
        if (argc != 3)
                return 2;
        long n = strtol(argv[1], NULL, 10), rate = strtol(argv[2], NULL, 10);
        uint64_t *t = calloc((size_t) (n > 0 ? n : 1), sizeof(*t));
        uint64_t start = bench_now(), gap = rate > 0 ? 1000000000u / (uint64_t) rate : 0;
        const char *prefix = bench_prefix();
        char name[32];

        if (!t || n <= 0)
                return 2;
        for (long i = 0; i < n; i++) {
                uint64_t due = start + (uint64_t) i * gap;
                if (gap && due > bench_now() + PACE_SLACK_NS) {
                        struct timespec ts = { .tv_sec = (time_t) (due / 1000000000u),
                                               .tv_nsec = (long) (due % 1000000000u) };
                        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
                }
                snprintf(name, sizeof(name), "%s%ld", prefix, i);
                t[i] = bench_now();
                prctl(PR_SET_NAME, name); /* the kernel keeps 15 bytes: enough for 10^9 */
        }
        uint64_t end = bench_now();
        if (bench_summary_mode()) {
                printf("sent %ld first %llu last %llu\n", n, (unsigned long long) t[0],
                       (unsigned long long) end);
                return 0;
        }
        for (long i = 0; i < n; i++)
                printf("%ld %llu\n", i, (unsigned long long) t[i]);
        return 0;
}
