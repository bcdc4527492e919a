/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SubscriberSet: every live Subscriber of every sink, driven by the
 * dispatcher. It registers one dispatcher watch; for each event it decides,
 * per subscriber in a fixed order, what is due (subscriber_match()), sends
 * the Unix signals, decides the loss reports and whether the event is queued
 * or lost, and the follow reports; the sink of each subscriber (a framer,
 * SubscriberSinkOps) only encodes and queues what it is told to.
 *
 * Per subscriber the order is: Unix signals (and the report of one withheld),
 * the loss report if due, the event, the follow reports. Subscribers are
 * visited in the order they subscribed first. A framer may drop its
 * subscriber (or any other) while it is called: the set goes on with the
 * next one.
 *
 * Pure but for the Unix signals (peer_signals_send()); no logging.
 */
#pragma once

#include <stdint.h>

#include "common/macro.h"
#include "dispatcher.h"
#include "subscriber.h"

/*
 * What a sink does for the set: encode and queue. Every op gets the
 * subscriber (embedded in the sink's own connection or peer).
 */
typedef struct SubscriberSinkOps {
        /* Bytes queued for s now (against SubscriberSink.cap). */
        uint64_t (*queued)(Subscriber *s);
        /* Make ev ready for s (the sink may encode once per ev->seq for
         * all its subscribers): 0 and the bytes it takes in s's queue, or
         * negative errno (it cannot be encoded or sent: lost, counted). */
        int (*prepare)(Subscriber *s, const PnEvent *ev, uint64_t *ret_bytes);
        /* Queue ev (prepared) for s: 0, or negative errno (lost, counted). */
        int (*deliver)(Subscriber *s, const PnEvent *ev);
        /* Queue the report of s's untold loss (subscriber_loss_report()) and
         * call subscriber_loss_told(); if it cannot (no memory, no
         * transport), leave the loss untold: it is tried again later. */
        void (*report_loss)(Subscriber *s);
        /* Tell s that signal sig, due for ev, was withheld. */
        void (*report_withheld)(Subscriber *s, int sig, const PnEvent *ev);
        /* Tell s of a follow change r of its subscription sub, caused by ev.
         * One that cannot be sent is lost as ev (subscriber_lose()). */
        void (*report_follow)(Subscriber *s, Subscription *sub, const PnEvent *ev, const FollowReport *r);
        /* After an event that made any op above run for a subscriber of this
         * sink (e.g. hand the queue to the transport now); may be NULL. */
        void (*event_done)(SubscriberSink *sink);
} SubscriberSinkOps;

/* A sink as the set sees it; the sink embeds it and keeps it registered
 * as long as it has subscribers. */
struct SubscriberSink {
        const SubscriberSinkOps *ops;
        SubscriberSet *set;
        uint64_t cap;            /* each subscriber's queue, bytes (ClientQueue=) */
        uint64_t *n_lost;        /* the sink's statistic of events lost at its queues */
        PeerSignalCounts signals; /* the sink's statistics of Unix signals */
        bool touched;            /* an op ran during the current event */
        SubscriberSink *next;    /* in the set's list of sinks */
};

typedef struct SubscriberSetStats {
        uint64_t events;         /* events dispatched */
        uint64_t events_skipped; /* of which no subscription could want the type: O(1) */
} SubscriberSetStats;

/* A set fed by d (one watch, removed when the set is freed; d outlives
 * it); filters see fctx. -ENOMEM, or the dispatcher's error. */
int subscriber_set_new(SubscriberSet **ret, Dispatcher *d, const FilterContext *fctx);
/* Every sink must have been removed (their subscribers gone) first. */
SubscriberSet *subscriber_set_free(SubscriberSet *set);
DEFINE_TRIVIAL_CLEANUP_FUNC(SubscriberSet *, subscriber_set_free)

/* Register sink (embedded in the sink, ops static) with queue cap and the
 * sink's statistics (n_lost may be NULL; signals' counters may not). */
void subscriber_set_add_sink(SubscriberSet *set, SubscriberSink *sink, const SubscriberSinkOps *ops,
                            uint64_t cap, uint64_t *n_lost, PeerSignalCounts signals);
/* The sink goes: its subscribers must be gone (subscriber_done()). */
void subscriber_set_remove_sink(SubscriberSet *set, SubscriberSink *sink);

/*
 * A subscriber of sink s is in the set while it has a subscription and is
 * not closed (subscriber_add() and subscriber_remove() keep that); these are
 * the calls they use. subscriber_close(): its transport is going, it gets
 * nothing more (not even follow changes), whatever it subscribes later.
 */
void subscriber_set_link(Subscriber *s);
void subscriber_set_unlink(Subscriber *s);
void subscriber_close(Subscriber *s);
/* sub of s was added (delta 1) or goes (-1): the count of subscriptions
 * that could want each event type (a type none could want costs O(1)). */
void subscriber_set_count(Subscriber *s, const Subscription *sub, int delta);

/* What the dispatcher watch does with each event; exposed for tests. */
void subscriber_set_dispatch(SubscriberSet *set, const PnEvent *ev);

size_t subscriber_set_size(const SubscriberSet *set);
const SubscriberSetStats *subscriber_set_get_stats(const SubscriberSet *set);
