/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The time of a clock in nanoseconds: one helper for the daemon's parts. */
#pragma once

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_ns(clockid_t clock) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}
