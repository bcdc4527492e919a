/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SubscriberSet: the fan-out of each event to every subscriber of every
 * sink (what is due, in which order, what is lost or reported), the sinks
 * framing it; see subscriber-set.h.
 */
#include <errno.h>
#include <stdlib.h>

#include "subscriber-set.h"

struct SubscriberSet {
        Dispatcher *dispatcher;
        int watch_id;
        FilterContext fctx;
        Subscriber *head, *tail; /* in the order they subscribed first */
        size_t n;
        /* During a dispatch: the subscriber served now (NULL once it left the
         * set) and the one after it (moved on if that one leaves). */
        Subscriber *current, *next;
        SubscriberSink *sinks; /* in the order they registered */
        /* Per event type, the subscriptions that could want it: those whose
         * filter names it, and every follow (it sees every fork and exit of
         * its service). Overruns go to everyone. */
        uint32_t wanting[_PN_EVENT_TYPE_MAX];
        SubscriberSetStats stats;
};

static void subscriber_set_on_event(const PnEvent *ev, void *userdata) {
        subscriber_set_dispatch(userdata, ev);
}

int subscriber_set_new(SubscriberSet **ret, Dispatcher *d, const FilterContext *fctx) {
        _cleanup_(subscriber_set_freep) SubscriberSet *set = calloc(1, sizeof(*set));
        int r;

        if (!set)
                return -ENOMEM;
        set->dispatcher = d;
        set->fctx = *fctx;
        r = dispatcher_watch_add(d, subscriber_set_on_event, NULL, set);
        if (r < 0)
                return r;
        set->watch_id = r;
        *ret = TAKE_PTR(set);
        return 0;
}

SubscriberSet *subscriber_set_free(SubscriberSet *set) {
        if (!set)
                return NULL;
        if (set->watch_id > 0)
                dispatcher_watch_remove(set->dispatcher, set->watch_id);
        free(set);
        return NULL;
}

void subscriber_set_add_sink(SubscriberSet *set, SubscriberSink *sink, const SubscriberSinkOps *ops,
                             uint64_t cap, uint64_t *n_lost, PeerSignalCounts signals) {
        SubscriberSink **tail;

        *sink = (SubscriberSink){ .ops = ops, .set = set, .cap = cap, .n_lost = n_lost, .signals = signals };
        for (tail = &set->sinks; *tail; tail = &(*tail)->next)
                ;
        *tail = sink;
}

void subscriber_set_remove_sink(SubscriberSet *set, SubscriberSink *sink) {
        for (SubscriberSink **p = &set->sinks; *p; p = &(*p)->next)
                if (*p == sink) {
                        *p = sink->next;
                        break;
                }
        sink->set = NULL;
        sink->next = NULL;
}

void subscriber_set_link(Subscriber *s) {
        SubscriberSet *set = s->sink ? s->sink->set : NULL;

        if (!set || s->linked || s->closed || s->n_subs == 0)
                return;
        s->set_prev = set->tail;
        s->set_next = NULL;
        if (set->tail)
                set->tail->set_next = s;
        else
                set->head = s;
        set->tail = s;
        set->n++;
        s->linked = true;
}

void subscriber_set_unlink(Subscriber *s) {
        SubscriberSet *set = s->sink ? s->sink->set : NULL;

        if (!set || !s->linked)
                return;
        if (set->current == s)
                set->current = NULL;
        if (set->next == s)
                set->next = s->set_next;
        if (s->set_prev)
                s->set_prev->set_next = s->set_next;
        else
                set->head = s->set_next;
        if (s->set_next)
                s->set_next->set_prev = s->set_prev;
        else
                set->tail = s->set_prev;
        s->set_prev = s->set_next = NULL;
        set->n--;
        s->linked = false;
}

void subscriber_close(Subscriber *s) {
        subscriber_set_unlink(s);
        s->closed = true;
}

void subscriber_set_count(Subscriber *s, const Subscription *sub, int delta) {
        SubscriberSet *set = s->sink ? s->sink->set : NULL;
        uint32_t events;

        if (!set)
                return;
        events = sub->follow || !sub->filter ? UINT32_MAX : sub->filter->events;
        for (int t = 0; t < _PN_EVENT_TYPE_MAX; t++)
                if (events & PN_EVENT_BIT(t))
                        set->wanting[t] += (uint32_t) delta;
}

/* The framer left the set during the last call (its connection went). */
static bool gone(const SubscriberSet *set) {
        return !set->current;
}

/* Before a message told regardless of the queue (a withheld signal, a
 * follow report): the loss before it first. false if s left the set. */
static bool report_loss_before_reply(SubscriberSet *set, Subscriber *s) {
        if (subscriber_loss_due_before_reply(s))
                s->sink->ops->report_loss(s);
        return !gone(set);
}

/* ev, due to s, could not be queued or sent. */
static void lose(Subscriber *s, const PnEvent *ev) {
        subscriber_lose(s, 1, ev->seq, ev->seq);
        if (s->sink->n_lost)
                (*s->sink->n_lost)++;
}

/* The event itself, after the report of any loss due before it, or lost
 * (counted) when the queue is full (until it drained to half) or the sink
 * cannot encode or send it. */
static void deliver(SubscriberSet *set, Subscriber *s, const PnEvent *ev) {
        SubscriberSink *k = s->sink;
        const SubscriberSinkOps *ops = k->ops;
        uint64_t bytes;

        if (ops->prepare(s, ev, &bytes) < 0) {
                lose(s, ev);
                return;
        }
        if (subscriber_loss_due(s, ev, ops->queued(s), k->cap)) {
                ops->report_loss(s);
                if (gone(set))
                        return;
        }
        if (subscriber_admit(s, ev, ops->queued(s), bytes, k->cap) == SUBSCRIBER_DROP) {
                if (k->n_lost)
                        (*k->n_lost)++;
                return;
        }
        if (ops->deliver(s, ev) < 0) {
                lose(s, ev);
                if (!gone(set) && subscriber_loss_due(s, NULL, ops->queued(s), k->cap))
                        ops->report_loss(s);
        }
}

/* What m says is due to s for ev, in order: Unix signals (and the report of
 * one withheld), loss report and event, follow reports. Stops when s leaves. */
static void serve(SubscriberSet *set, Subscriber *s, const PnEvent *ev, SubscriberMatch *m) {
        SubscriberSink *k = s->sink;
        FollowReport r;
        Subscription *sub;

        k->touched = true;
        if (m->sigmask) {
                /* The signal first, so that the subscriber can act before it
                 * reads the event; told once when one is withheld. */
                int sig = subscriber_send_signals(s, m->sigmask, ev, &k->signals);
                if (sig > 0) {
                        if (!report_loss_before_reply(set, s))
                                return;
                        k->ops->report_withheld(s, sig, ev);
                        if (gone(set))
                                return;
                }
        }
        if (m->deliver) {
                deliver(set, s, ev);
                if (gone(set))
                        return;
        }
        while (m->follow_changed && subscriber_next_follow_report(s, ev, m, &r, &sub) > 0) {
                if (!report_loss_before_reply(set, s))
                        return;
                k->ops->report_follow(s, sub, ev, &r);
                if (gone(set))
                        return;
        }
}

void subscriber_set_dispatch(SubscriberSet *set, const PnEvent *ev) {
        set->stats.events++;
        if (!set->head || (unsigned) ev->type >= _PN_EVENT_TYPE_MAX)
                return;
        if (set->wanting[ev->type] == 0 && ev->type != PN_EVENT_OVERRUN) {
                set->stats.events_skipped++;
                return;
        }
        for (Subscriber *s = set->head, *next; s; s = next) {
                SubscriberMatch m;

                subscriber_match(s, ev, &set->fctx, &m);
                if (!m.sigmask && !m.deliver && !m.follow_changed) {
                        next = s->set_next; /* the common case: no framer runs, none can go */
                        continue;
                }
                set->current = s;
                set->next = s->set_next;
                serve(set, s, ev, &m);
                next = set->next;
        }
        set->current = set->next = NULL;
        for (SubscriberSink *k = set->sinks; k; k = k->next) {
                if (!k->touched)
                        continue;
                k->touched = false;
                if (k->ops->event_done)
                        k->ops->event_done(k);
        }
}

size_t subscriber_set_size(const SubscriberSet *set) {
        return set->n;
}

const SubscriberSetStats *subscriber_set_get_stats(const SubscriberSet *set) {
        return &set->stats;
}
