/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Shared by the benchmark programs: the event names the generator uses
 * ("pnb-<index>"), and recording of receive times. Every receiver prints
 * "ready" on stdout once it listens, then, when done, one line per event it
 * saw: "<index> <CLOCK_MONOTONIC ns when received>".
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_PREFIX "pnb-"

static inline uint64_t bench_now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* The index in a "pnb-<i>" name found in s (n bytes), or -1. */
static inline long bench_index(const char *s, size_t n) {
        const char *p = memmem(s, n, BENCH_PREFIX, strlen(BENCH_PREFIX));
        if (!p)
                return -1;
        p += strlen(BENCH_PREFIX);
        if (p >= s + n || *p < '0' || *p > '9')
                return -1;
        return strtol(p, NULL, 10);
}

typedef struct BenchRecord {
        uint64_t *recv_ns; /* 0: not seen */
        long n;
        long seen;
} BenchRecord;

static inline int bench_record_init(BenchRecord *r, long n) {
        r->recv_ns = calloc((size_t) n, sizeof(uint64_t));
        r->n = n;
        r->seen = 0;
        return r->recv_ns ? 0 : -1;
}

static inline void bench_record(BenchRecord *r, long i, uint64_t t) {
        if (i >= 0 && i < r->n && r->recv_ns[i] == 0) {
                r->recv_ns[i] = t;
                r->seen++;
        }
}

static inline void bench_record_print(const BenchRecord *r) {
        for (long i = 0; i < r->n; i++)
                if (r->recv_ns[i])
                        printf("%ld %llu\n", i, (unsigned long long) r->recv_ns[i]);
        fflush(stdout);
}
