/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Dispatcher: stamps the broker-wide seq on every published event and hands
 * it to each watch in order; see dispatcher.h.
 */
#include <errno.h>
#include <stdlib.h>

#include "dispatcher.h"

#define DISPATCHER_MAX_WATCHES 16

typedef struct Watch {
        int id;
        DispatcherWatchFn fn;
        DispatcherFlushFn flush;
        void *userdata;
} Watch;

struct Dispatcher {
        uint64_t seq;
        int next_id;
        Watch watches[DISPATCHER_MAX_WATCHES];
        size_t n_watches;
        DispatcherStats stats;
};

int dispatcher_new(Dispatcher **ret) {
        Dispatcher *d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        *ret = d;
        return 0;
}

Dispatcher *dispatcher_free(Dispatcher *d) {
        free(d);
        return NULL;
}

int dispatcher_watch_add(Dispatcher *d, DispatcherWatchFn fn, DispatcherFlushFn flush, void *userdata) {
        /* Sinks are few and fixed (socket, D-Bus, …): a small array suffices. */
        if (d->n_watches >= DISPATCHER_MAX_WATCHES)
                return -ENOMEM;
        d->watches[d->n_watches++] = (Watch){ .id = ++d->next_id, .fn = fn, .flush = flush, .userdata = userdata };
        return d->next_id;
}

void dispatcher_watch_remove(Dispatcher *d, int id) {
        for (size_t i = 0; i < d->n_watches; i++)
                if (d->watches[i].id == id) {
                        for (size_t j = i + 1; j < d->n_watches; j++)
                                d->watches[j - 1] = d->watches[j];
                        d->n_watches--;
                        return;
                }
}

void dispatcher_emit(Dispatcher *d, PnEvent *ev) {
        ev->seq = ++d->seq;
        if (ev->type >= 0 && ev->type < _PN_EVENT_TYPE_MAX)
                d->stats.events[ev->type]++;
        for (size_t i = 0; i < d->n_watches; i++)
                if (d->watches[i].fn)
                        d->watches[i].fn(ev, d->watches[i].userdata);
}

void dispatcher_flush(Dispatcher *d) {
        for (size_t i = 0; i < d->n_watches; i++)
                if (d->watches[i].flush)
                        d->watches[i].flush(d->watches[i].userdata);
}

uint64_t dispatcher_last_seq(const Dispatcher *d) {
        return d->seq;
}

const DispatcherStats *dispatcher_get_stats(const Dispatcher *d) {
        return &d->stats;
}
