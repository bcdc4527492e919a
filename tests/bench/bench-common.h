/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Shared by the benchmark programs: the event names the generator uses
 * ("pnb-<index>", or PNB_PREFIX's), and recording of receive times. Every receiver prints
 * "ready" on stdout once it listens, then, when done, one line per event it
 * saw: "<index> <CLOCK_MONOTONIC ns when received>".
 *
 * With PNB_SUMMARY=1 in the environment (the burst benchmarks, up to a
 * million events) a receiver prints one line instead:
 * "seen <events> first <ns> last <ns> overruns <lines> lost <sum>", where
 * the last two count the overrun reports it got and the events they said
 * were lost, and the CPU time it used itself.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define BENCH_PREFIX "pnb-"
#define BENCH_PREFIX_MAX 6

/* The name prefix: PNB_PREFIX from the environment (at most 6 bytes, so
 * that "<prefix><index>" fits the kernel's 15), else "pnb-". A run of its
 * own prefix ignores the events of another run on the same machine. */
static inline const char *bench_prefix(void) {
        const char *p = getenv("PNB_PREFIX");
        return p && *p && strlen(p) <= BENCH_PREFIX_MAX ? p : BENCH_PREFIX;
}

static inline uint64_t bench_now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* The index in a "<prefix><i>" name found in s (n bytes), or -1. */
static inline long bench_index(const char *s, size_t n) {
        const char *prefix = bench_prefix();
        const char *p = memmem(s, n, prefix, strlen(prefix));
        if (!p)
                return -1;
        p += strlen(prefix);
        if (p >= s + n || *p < '0' || *p > '9')
                return -1;
        return strtol(p, NULL, 10);
}

typedef struct BenchRecord {
        uint64_t *recv_ns; /* 0: not seen */
        long n;
        long seen;
        uint64_t first_ns, last_ns;
        long overruns;    /* overrun reports received */
        uint64_t lost;    /* events they said were lost */
} BenchRecord;

static inline int bench_record_init(BenchRecord *r, long n) {
        r->recv_ns = calloc((size_t) n, sizeof(uint64_t));
        r->n = n;
        r->seen = 0;
        r->first_ns = r->last_ns = 0;
        r->overruns = 0;
        r->lost = 0;
        return r->recv_ns ? 0 : -1;
}

static inline void bench_record(BenchRecord *r, long i, uint64_t t) {
        if (i >= 0 && i < r->n && r->recv_ns[i] == 0) {
                r->recv_ns[i] = t;
                r->seen++;
                if (!r->first_ns)
                        r->first_ns = t;
                r->last_ns = t;
        }
}

/* Receivers stop once events stopped coming for this long (some were lost,
 * or all came): a failed burst ends in seconds, not at the timeout. */
#define BENCH_IDLE_NS (3000000000ull)

static inline bool bench_record_done(const BenchRecord *r, uint64_t deadline) {
        uint64_t now = bench_now();
        return r->seen >= r->n || now >= deadline || (r->seen > 0 && now - r->last_ns > BENCH_IDLE_NS);
}

/* PNB_EVENT: which event a receiver records, "comm" (the default: the
 * generator's renames), "predump" or "exit" (bench-crash's crashes). */
typedef enum BenchEvent {
        BENCH_EVENT_COMM,
        BENCH_EVENT_PREDUMP,
        BENCH_EVENT_EXIT,
} BenchEvent;

static inline BenchEvent bench_event(void) {
        const char *s = getenv("PNB_EVENT");
        if (s && strcmp(s, "predump") == 0)
                return BENCH_EVENT_PREDUMP;
        if (s && strcmp(s, "exit") == 0)
                return BENCH_EVENT_EXIT;
        return BENCH_EVENT_COMM;
}

static inline bool bench_summary_mode(void) {
        const char *s = getenv("PNB_SUMMARY");
        return s && *s == '1';
}

static inline void bench_record_print(const BenchRecord *r) {
        if (bench_summary_mode()) {
                struct rusage ru;
                getrusage(RUSAGE_SELF, &ru);
                printf("seen %ld first %llu last %llu overruns %ld lost %llu cpu_us %llu\n", r->seen,
                       (unsigned long long) r->first_ns, (unsigned long long) r->last_ns, r->overruns,
                       (unsigned long long) r->lost,
                       (unsigned long long) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
                               (unsigned long long) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec));
                fflush(stdout);
                return;
        }
        for (long i = 0; i < r->n; i++)
                if (r->recv_ns[i])
                        printf("%ld %llu\n", i, (unsigned long long) r->recv_ns[i]);
        fflush(stdout);
}
