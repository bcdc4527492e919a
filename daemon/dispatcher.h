/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Dispatcher: the single point every published event passes. It stamps the
 * broker-wide sequence number and hands the event to every registered watch,
 * in registration order: the SubscriberSet (subscriber-set.h), which fans it
 * out to every subscriber of the socket and D-Bus sinks, and the journal
 * sink. The socket sink registers for the end of batches only (flush).
 * Nobody registered sees the sources.
 */
#pragma once

#include <stdint.h>

#include "procnotify/event.h"

typedef struct Dispatcher Dispatcher;

typedef void (*DispatcherWatchFn)(const PnEvent *ev, void *userdata);
/* Called when a source finished a batch: the time to write out what was queued. */
typedef void (*DispatcherFlushFn)(void *userdata);

typedef struct DispatcherStats {
        uint64_t events[_PN_EVENT_TYPE_MAX]; /* published, per type */
} DispatcherStats;

int dispatcher_new(Dispatcher **ret);
Dispatcher *dispatcher_free(Dispatcher *d);

/* Register fn and flush (either may be NULL); returns a positive watch id,
 * or -ENOMEM. */
int dispatcher_watch_add(Dispatcher *d, DispatcherWatchFn fn, DispatcherFlushFn flush, void *userdata);
void dispatcher_watch_remove(Dispatcher *d, int id);

/* Assign ev->seq and deliver ev to every watch. */
void dispatcher_emit(Dispatcher *d, PnEvent *ev);

/* A source finished a batch of events: let every watch write out now,
 * rather than one loop iteration later (latency). */
void dispatcher_flush(Dispatcher *d);

/* The seq of the last event emitted (0 before the first). */
uint64_t dispatcher_last_seq(const Dispatcher *d);
const DispatcherStats *dispatcher_get_stats(const Dispatcher *d);
