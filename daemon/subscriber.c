/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Subscriber: one subscribing connection's subscriptions, matching, follow
 * reports, signals and loss, for every sink alike; see subscriber.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "subscriber-set.h"
#include "subscriber.h"

void subscriber_init(Subscriber *s, const PeerCreds *creds, UidLimits *limits, SubscriberSink *sink,
                     void (*subscription_done)(Subscription *sub)) {
        *s = (Subscriber){
                .creds = *creds,
                .signals = PEER_SIGNALS_INIT,
                .limits = limits,
                .subscription_done = subscription_done,
                .sink = sink,
        };
}

void subscriber_done(Subscriber *s) {
        while (s->subs)
                subscriber_remove(s, s->subs);
        peer_signals_done(&s->signals);
}

int subscriber_may_add(const Subscriber *s, unsigned max) {
        if (s->n_subs >= max)
                return SUBSCRIBER_E_CONNECTION_LIMIT;
        if (!uidlimits_may_acquire(s->limits, UID_RESOURCE_SUBSCRIPTIONS, s->creds.uid))
                return SUBSCRIBER_E_USER_LIMIT;
        return 0;
}

int subscriber_add(Subscriber *s, unsigned max, size_t size, uint64_t id, uint64_t tag, Filter *filter,
                   Follow *follow, Subscription **ret) {
        Subscription *sub, **tail;
        int r;

        if (s->n_subs >= max)
                return SUBSCRIBER_E_CONNECTION_LIMIT;
        if (follow && s->n_follows >= FOLLOW_MAX_PER_CONNECTION)
                return SUBSCRIBER_E_FOLLOW_LIMIT;
        sub = calloc(1, size < sizeof(*sub) ? sizeof(*sub) : size);
        if (!sub)
                return -ENOMEM;
        r = uidlimits_acquire(s->limits, UID_RESOURCE_SUBSCRIPTIONS, s->creds.uid);
        if (r != 0) {
                free(sub);
                return r == UIDLIMITS_E_EXCEEDED ? SUBSCRIBER_E_USER_LIMIT : r;
        }
        sub->id = id;
        sub->tag = tag;
        sub->filter = filter;
        sub->follow = follow;
        for (tail = &s->subs; *tail; tail = &(*tail)->next)
                ;
        *tail = sub;
        s->n_subs++;
        s->n_follows += follow != NULL;
        subscriber_set_count(s, sub, 1);
        if (s->n_subs == 1)
                subscriber_set_link(s);
        if (ret)
                *ret = sub;
        return 0;
}

void subscriber_remove(Subscriber *s, Subscription *sub) {
        for (Subscription **p = &s->subs; *p; p = &(*p)->next)
                if (*p == sub) {
                        *p = sub->next;
                        break;
                }
        s->n_subs--;
        s->n_follows -= sub->follow != NULL;
        subscriber_set_count(s, sub, -1);
        if (s->n_subs == 0)
                subscriber_set_unlink(s);
        uidlimits_release(s->limits, UID_RESOURCE_SUBSCRIPTIONS, s->creds.uid);
        if (s->subscription_done)
                s->subscription_done(sub);
        filter_free(sub->filter);
        follow_free(sub->follow);
        free(sub);
}

Subscription *subscriber_find(const Subscriber *s, uint64_t id) {
        for (Subscription *sub = s->subs; sub; sub = sub->next)
                if (sub->id == id)
                        return sub;
        return NULL;
}

void subscriber_limit_message(int e, unsigned max, const UidLimits *limits, char *buf, size_t size) {
        switch (e) {
        case SUBSCRIBER_E_CONNECTION_LIMIT:
                snprintf(buf, size, "at most %u subscriptions per connection (MaxSubscriptions)", max);
                break;
        case SUBSCRIBER_E_USER_LIMIT:
                snprintf(buf, size, "at most %u subscriptions per user, on all connections "
                         "(MaxSubscriptionsPerUser)", uidlimits_get_max(limits, UID_RESOURCE_SUBSCRIPTIONS));
                break;
        case SUBSCRIBER_E_FOLLOW_LIMIT:
                snprintf(buf, size, "at most %d subscriptions with \"follow\" per connection",
                         FOLLOW_MAX_PER_CONNECTION);
                break;
        default:
                snprintf(buf, size, "out of memory");
                break;
        }
}

int subscriber_next_follow_report(Subscriber *s, const PnEvent *ev, const SubscriberMatch *m,
                                  FollowReport *ret, Subscription **ret_sub) {
        static const char *const reasons[] = {
                [FOLLOW_CHANGE_MAIN_EXITED] = "main-exited",
                [FOLLOW_CHANGE_ENDED] = "ended",
                [FOLLOW_CHANGE_LIMIT] = "limit",
        };

        if (!m->follow_changed)
                return 0;
        for (Subscription *sub = s->subs; sub; sub = sub->next) {
                FollowChange *ch = &sub->change;
                if (!sub->follow || ch->kind == FOLLOW_CHANGE_NONE)
                        continue;
                FollowChangeKind kind = ch->kind;
                ch->kind = FOLLOW_CHANGE_NONE;
                if (!m->visible || sub->no_lines)
                        continue;
                *ret = (FollowReport){
                        .id = sub->id,
                        .reason = reasons[kind],
                        .main_pid = ch->main,
                        .previous_main_pid = ch->previous_main,
                        .candidates = ch->candidates,
                        .members = ch->members,
                        .cause_seq = ev->seq,
                        .ts_ns = ev->ts_ns,
                        .time_ns = ev->time_ns,
                };
                if (ret_sub)
                        *ret_sub = sub;
                return 1;
        }
        return 0;
}

int subscriber_send_signals(Subscriber *s, uint64_t sigmask, const PnEvent *ev, const PeerSignalCounts *n) {
        if (!sigmask)
                return 0;
        return peer_signals_send(&s->signals, sigmask, ev->tgid, n);
}

bool subscriber_loss_due(const Subscriber *s, const PnEvent *ev, uint64_t queued, uint64_t cap) {
        if (s->loss.lost == 0)
                return false;
        return (ev && ev->type == PN_EVENT_OVERRUN) || queued <= cap / 2;
}

bool subscriber_loss_due_before_reply(const Subscriber *s) {
        return s->loss.lost > 0;
}

void subscriber_loss_report(const Subscriber *s, PnEvent *ret) {
        sink_loss_overrun(&s->loss, ret);
}

void subscriber_loss_told(Subscriber *s) {
        s->loss = (SinkLoss){ 0 };
}

SubscriberAdmit subscriber_admit(Subscriber *s, const PnEvent *ev, uint64_t queued, uint64_t bytes,
                                 uint64_t cap) {
        /* Kernel overruns always get through: they are rare (the broker
         * coalesces them) and they are the one thing a subscriber must not
         * miss. Else an untold loss (not reported yet: the queue is still
         * over half full) keeps dropping until it is. */
        if (ev->type != PN_EVENT_OVERRUN && (s->loss.lost > 0 || queued + bytes > cap)) {
                subscriber_lose(s, 1, ev->seq, ev->seq);
                return SUBSCRIBER_DROP;
        }
        return SUBSCRIBER_QUEUE;
}

void subscriber_lose(Subscriber *s, uint64_t n, uint64_t first_seq, uint64_t last_seq) {
        sink_loss_add(&s->loss, n, first_seq, last_seq);
}
