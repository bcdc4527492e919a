/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * DeferQueue (deferq.h): the binary heap behind the process table's
 * deferred work, so that finding the next deadline needs no scan.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "deferq.h"

static bool before(const Deferred *a, const Deferred *b) {
        return a->at < b->at || (a->at == b->at && a->order < b->order);
}

static void swap(Deferred *a, Deferred *b) {
        Deferred t = *a;
        *a = *b;
        *b = t;
}

void deferq_init(DeferQueue *q, size_t max) {
        *q = (DeferQueue){ .max = max ? max : SIZE_MAX / sizeof(Deferred) };
}

void deferq_done(DeferQueue *q) {
        free(q->items);
        *q = (DeferQueue){ 0 };
}

int deferq_push(DeferQueue *q, const Deferred *d) {
        size_t i;

        if (q->n >= q->max)
                return -ENOSPC;
        if (q->n == q->cap) {
                size_t cap = q->cap ? q->cap * 2 : 16;
                Deferred *items;

                if (cap > q->max)
                        cap = q->max;
                items = reallocarray(q->items, cap, sizeof(*items));
                if (!items)
                        return -ENOMEM;
                q->items = items;
                q->cap = cap;
        }
        i = q->n++;
        q->items[i] = *d;
        q->items[i].order = q->pushed++;
        while (i > 0 && before(&q->items[i], &q->items[(i - 1) / 2])) {
                swap(&q->items[i], &q->items[(i - 1) / 2]);
                i = (i - 1) / 2;
        }
        return 0;
}

const Deferred *deferq_peek(const DeferQueue *q) {
        return q->n > 0 ? &q->items[0] : NULL;
}

int deferq_pop(DeferQueue *q, Deferred *ret) {
        size_t i = 0;

        if (q->n == 0)
                return -ENOENT;
        *ret = q->items[0];
        q->items[0] = q->items[--q->n];
        for (;;) {
                size_t l = 2 * i + 1, r = l + 1, m = i;
                if (l < q->n && before(&q->items[l], &q->items[m]))
                        m = l;
                if (r < q->n && before(&q->items[r], &q->items[m]))
                        m = r;
                if (m == i)
                        break;
                swap(&q->items[i], &q->items[m]);
                i = m;
        }
        return 0;
}
