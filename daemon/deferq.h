/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * DeferQueue: a bounded priority queue (binary heap) of deferred work items
 * keyed by a time: the earliest is a peek away (O(1)), a push or a pop is
 * O(log n). Items of equal key come out in the order they went in.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct Deferred {
        uint64_t at;         /* the key: when it is due (CLOCK_MONOTONIC ns) */
        uint64_t order;      /* set by deferq_push(): first in, first out on a tie */
        pid_t tgid;          /* the process it concerns, identified by tgid + start time */
        uint64_t start_time;
        pid_t old_parent;
        unsigned kind;       /* the user's */
        unsigned tries;
} Deferred;

typedef struct DeferQueue {
        Deferred *items;
        size_t n, cap, max;
        uint64_t pushed;
} DeferQueue;

/* At most max items (0: no limit but memory). */
void deferq_init(DeferQueue *q, size_t max);
void deferq_done(DeferQueue *q);
/* 0, -ENOSPC if the queue holds max items, or -ENOMEM. */
int deferq_push(DeferQueue *q, const Deferred *d);
/* The earliest item, NULL if none. */
const Deferred *deferq_peek(const DeferQueue *q);
/* Remove the earliest item into *ret: 0, or -ENOENT if the queue is empty. */
int deferq_pop(DeferQueue *q, Deferred *ret);
static inline size_t deferq_size(const DeferQueue *q) {
        return q->n;
}
/* Drop every item. */
static inline void deferq_clear(DeferQueue *q) {
        q->n = 0;
}
