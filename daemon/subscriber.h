/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Subscriber: what one subscribing connection is, whatever its transport
 * (JSON socket client, D-Bus peer): its credentials and the policy's view,
 * its subscriptions (filter, id, tag, follow, signal, lines), its signal
 * requests, and the loss it was not told yet. Per event, the SubscriberSet
 * (subscriber-set.h) asks subscriber_match() what is due (a line or signal,
 * Unix signals, follow reports) and subscriber_admit() whether the queue
 * takes it, and has the subscriber's sink (a framer) encode and queue it.
 *
 * Pure but for peer_signals_send() (the Unix signals themselves): no I/O of
 * the transports, no logging.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "follow.h"
#include "peer-pidfd.h"
#include "policy.h"
#include "sink-context.h"
#include "uidlimits.h"
#include "protocol/filter.h"

typedef struct Subscription Subscription;
typedef struct SubscriberSet SubscriberSet;
typedef struct SubscriberSink SubscriberSink;
struct Subscription {
        uint64_t id;         /* the transport's name for it (socket: per connection; D-Bus: path) */
        uint64_t tag;        /* nonzero: added by the broker for a watch (control.h) */
        Filter *filter;
        int signal;          /* sent to the subscriber's process per matching event; 0: none */
        bool no_lines;       /* "lines": false: only the signal (and overruns; no follow reports) */
        Follow *follow;      /* the followed service, for "follow" */
        FollowChange change; /* what the current event did to it, until reported */
        Subscription *next;
        /* A sink's own fields follow (subscriber_add's size). */
};

typedef struct Subscriber Subscriber;
struct Subscriber {
        PeerCreds creds;
        PeerSignals signals;  /* to the subscriber's process, once a subscription asks for them */
        Subscription *subs;   /* in the order they were added */
        size_t n_subs, n_follows;
        SinkLoss loss;        /* dropped and not told yet */
        UidLimits *limits;    /* where its subscriptions count per user */
        void (*subscription_done)(Subscription *sub); /* frees a sink's own fields; may be NULL */
        SubscriberSink *sink; /* its framer, and through it the set; NULL: in no set */
        Subscriber *set_prev, *set_next; /* in the set, while linked */
        bool linked;          /* in the set: it has a subscription and is not closed */
        bool closed;          /* subscriber_close(): gets nothing more */
};

/* Credentials set, no subscriptions, no signals. limits and sink (may be
 * NULL: in no set) outlive it. */
void subscriber_init(Subscriber *s, const PeerCreds *creds, UidLimits *limits, SubscriberSink *sink,
                     void (*subscription_done)(Subscription *sub));
/* Every subscription removed (released from limits), the pidfd closed. */
void subscriber_done(Subscriber *s);

/* Why subscriber_add() refused (small positive, STYLE.md). */
enum {
        SUBSCRIBER_E_CONNECTION_LIMIT = 1, /* max subscriptions of this subscriber (MaxSubscriptions) */
        SUBSCRIBER_E_USER_LIMIT,           /* of its user, on all connections (MaxSubscriptionsPerUser) */
        SUBSCRIBER_E_FOLLOW_LIMIT,         /* FOLLOW_MAX_PER_CONNECTION */
};

/*
 * Room for one more subscription (under max and the user's limit)? 0, or
 * SUBSCRIBER_E_CONNECTION_LIMIT / SUBSCRIBER_E_USER_LIMIT.
 */
int subscriber_may_add(const Subscriber *s, unsigned max);
/*
 * Add a subscription of size bytes (>= sizeof(Subscription); the rest,
 * zeroed, is the sink's) with id, tag, and filter and follow (may be NULL),
 * taken on success only. 0 and *ret; SUBSCRIBER_E_*; -ENOMEM.
 */
int subscriber_add(Subscriber *s, unsigned max, size_t size, uint64_t id, uint64_t tag, Filter *filter,
                   Follow *follow, Subscription **ret);
void subscriber_remove(Subscriber *s, Subscription *sub);
Subscription *subscriber_find(const Subscriber *s, uint64_t id);
/* The protocol's message for a SUBSCRIBER_E_* (one wording for both sinks). */
void subscriber_limit_message(int e, unsigned max, const UidLimits *limits, char *buf, size_t size);

/* What one event is, for one subscriber. */
typedef struct SubscriberMatch {
        bool visible;        /* the policy lets it see the event */
        bool deliver;        /* a line or signal of it is due (a subscription that takes lines matched) */
        uint64_t sigmask;    /* Unix signals due, bit N-1 for signal N */
        bool follow_changed; /* some follow changed: subscriber_next_follow_report() */
} SubscriberMatch;

/*
 * Run ev through every subscription: advance the follows (whether or not
 * the subscriber may see ev: a follow sees every fork and exit of its
 * service), and say what is due. The order of delivery is the set's:
 * Unix signals first (so that the subscriber can act before it reads),
 * then the event, then follow reports.
 */
/* Inline: it runs for every subscriber on every event (about 20 instructions
 * per subscriber saved against a call into another file, measured with
 * tests/bench's cpu section). */
static inline void subscriber_match(Subscriber *s, const PnEvent *ev, const FilterContext *fctx, SubscriberMatch *ret) {
        *ret = (SubscriberMatch){ .visible = policy_may_see(&s->creds, ev) };
        if (!ret->visible && s->n_follows == 0)
                return; /* nothing to see and no follow to advance */
        for (Subscription *sub = s->subs; sub; sub = sub->next) {
                bool member = true;

                if (sub->follow) {
                        member = follow_update(sub->follow, ev, &sub->change);
                        ret->follow_changed |= sub->change.kind != FOLLOW_CHANGE_NONE;
                }
                if (!ret->visible || (ret->deliver && !sub->signal))
                        continue;
                if ((!member && ev->type != PN_EVENT_OVERRUN) || !filter_match(sub->filter, ev, fctx))
                        continue;
                /* A signal-only subscription still gets the overruns: they
                 * tell of signals that could not be sent. */
                if (!sub->no_lines || ev->type == PN_EVENT_OVERRUN)
                        ret->deliver = true;
                /* Overruns pass every filter, but signal no event. */
                if (sub->signal && ev->type != PN_EVENT_OVERRUN)
                        ret->sigmask |= UINT64_C(1) << (sub->signal - 1);
        }
}

/*
 * The next follow report due after ev (m from subscriber_match()): 1 with
 * *ret (and *ret_sub), 0 when none is left. A report is due only along with
 * an event the subscriber may see, to a subscription that takes lines;
 * every change is consumed either way.
 */
int subscriber_next_follow_report(Subscriber *s, const PnEvent *ev, const SubscriberMatch *m,
                                  FollowReport *ret, Subscription **ret_sub);

/*
 * The Unix signals in sigmask, as far as the subscriber could send them
 * itself. Returns the signal withheld that the subscriber must be told of
 * now (once per episode), else 0.
 */
int subscriber_send_signals(Subscriber *s, uint64_t sigmask, const PnEvent *ev, const PeerSignalCounts *n);

/*
 * Loss, with hysteresis: once a queue was full, the subscriber takes no
 * event until the queue drained to half (cap / 2), then is told what it
 * lost (one report per episode, not one per event) before the next event.
 * A kernel overrun always gets through, after the report of any loss before
 * it (else a gap would stay unexplained); so does a reply (request answer,
 * follow report, signal withheld): subscriber_loss_due_before_reply().
 */
/* Is a loss report due before ev (NULL: after a write; queued bytes waiting
 * now, of cap)? */
bool subscriber_loss_due(const Subscriber *s, const PnEvent *ev, uint64_t queued, uint64_t cap);
/* Before a reply or any message told regardless of the queue. */
bool subscriber_loss_due_before_reply(const Subscriber *s);
/* The report of the untold loss (an overrun, where "client"); once it is
 * queued, subscriber_loss_told(). */
void subscriber_loss_report(const Subscriber *s, PnEvent *ret);
void subscriber_loss_told(Subscriber *s);

typedef enum SubscriberAdmit {
        SUBSCRIBER_QUEUE,
        SUBSCRIBER_DROP, /* counted in the loss already */
} SubscriberAdmit;

/* After the due report, if any: does ev (bytes) go into the queue? */
SubscriberAdmit subscriber_admit(Subscriber *s, const PnEvent *ev, uint64_t queued, uint64_t bytes,
                                 uint64_t cap);
/* ev, or n messages from first_seq to last_seq, could not be queued or sent: count it. */
void subscriber_lose(Subscriber *s, uint64_t n, uint64_t first_seq, uint64_t last_seq);
