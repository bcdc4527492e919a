/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SinkDbus's delivery and bus connection, a framer: each peer's queue of
 * signals, sent round-robin within a window, and the connection made again
 * when lost; which peer gets what (and what it lost) the SubscriberSet
 * decides (subscriber-set.h), calling the ops below. See sink-dbus.h. Peers and subscription objects live in
 * sink-dbus-peer.c, encoding in sink-dbus-encode.c, the methods callers use
 * in sink-dbus-vtable.c.
 *
 * Each event becomes one signal per matching peer, addressed to it alone
 * (its unique name as destination). Each peer has its own queue and loss,
 * as on the JSON socket: its signals wait in its queue (at most ClientQueue=
 * bytes, counted by sink_dbus_signal_bytes()) and are handed to sd-bus round-robin,
 * one peer's signal after another's, only while sd-bus's write queue is
 * short (BUS_QUEUE_MAX), so that a selective peer's signal never waits
 * behind another's backlog. What one peer has in the bus is bounded too
 * (PEER_WINDOW): a Peer.Ping goes behind its signals, and only its reply
 * shows they were read, so a peer that does not read costs the bus a
 * window, not its quota. A peer whose queue is full loses its own signals,
 * counted, and gets an Overrun ("client") once the queue has drained to
 * half; so does every failure to build or send one.
 *
 * Once served, a lost connection is made again (sink-dbus.h); peers still
 * on the bus, the same connection, keep their subscriptions and are told
 * what they lost meanwhile.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "peer-pidfd.h"
#include "sink-dbus-args.h"
#include "sink-dbus-internal.h"
#include "subscriber-set.h"

/* Our signals in sd-bus's write queue at most: beyond, they wait in their
 * peers' own queues and go to sd-bus in turn, so that the next one written
 * is any peer's, not the greediest's. */
#define BUS_QUEUE_MAX 16
/* Bytes sent to one peer and not yet known read: what it can have waiting
 * in the bus for it, far within any bus's quota for one sender. */
#define PEER_WINDOW (64u << 10)
#define RECONNECT_FIRST_USEC (100u * 1000u)
#define RECONNECT_MAX_USEC (10u * 1000u * 1000u)

/* --- each peer's own queue, sent round-robin --- */

static DbusQueued *peer_queue_at(DbusPeer *p, size_t i) {
        return &p->q[(p->q_head + i) % p->q_cap];
}

static int peer_queue_push(DbusPeer *p, sd_bus_message *m, uint32_t bytes, SinkLoss loss, bool report) {
        if (p->q_len == p->q_cap) {
                size_t cap = p->q_cap ? p->q_cap * 2 : 16;
                DbusQueued *q = malloc(cap * sizeof(*q));
                if (!q)
                        return -ENOMEM;
                for (size_t i = 0; i < p->q_len; i++)
                        q[i] = *peer_queue_at(p, i);
                free(p->q);
                p->q = q;
                p->q_cap = cap;
                p->q_head = 0;
        }
        *peer_queue_at(p, p->q_len++) = (DbusQueued){ .m = m, .bytes = bytes, .loss = loss, .report = report };
        p->q_bytes += bytes;
        return 0;
}

static DbusQueued peer_queue_pop(DbusPeer *p) {
        DbusQueued d = p->q[p->q_head];

        p->q_head = (p->q_head + 1) % p->q_cap;
        p->q_len--;
        p->q_bytes -= d.bytes;
        if (p->q_len == 0) {
                p->q_head = 0;
                if (p->q_cap > 64) {
                        /* Give memory back after a burst. */
                        free(p->q);
                        p->q = NULL;
                        p->q_cap = 0;
                }
        }
        return d;
}

static void sink_ready_add(SinkDbus *s, DbusPeer *p) {
        if (p->ready)
                return;
        p->ready = true;
        p->ready_next = NULL;
        p->ready_prev = s->ready_tail;
        if (s->ready_tail)
                s->ready_tail->ready_next = p;
        else
                s->ready_head = p;
        s->ready_tail = p;
        (void) sd_event_source_set_enabled(s->pump, SD_EVENT_ON);
}

static void sink_ready_remove(SinkDbus *s, DbusPeer *p) {
        if (!p->ready)
                return;
        if (p->ready_prev)
                p->ready_prev->ready_next = p->ready_next;
        else
                s->ready_head = p->ready_next;
        if (p->ready_next)
                p->ready_next->ready_prev = p->ready_prev;
        else
                s->ready_tail = p->ready_prev;
        p->ready = false;
        p->ready_next = p->ready_prev = NULL;
}

/* p lost n signals (first to last), to be told; counted unless they are
 * the loss a dropped Overrun was to tell, counted already. */
static void peer_lose(SinkDbus *s, DbusPeer *p, const SinkLoss *l, bool counted) {
        subscriber_lose(&p->sub, l->lost, l->first_seq, l->last_seq);
        if (!counted)
                s->stats.signals_lost += l->lost;
}

static void peer_lose_event(SinkDbus *s, DbusPeer *p, const PnEvent *ev) {
        peer_lose(s, p, &(SinkLoss){ 1, ev->seq, ev->seq }, false);
}

/* Drop what p has queued (the bus went away), counted and told later. */
static void peer_queue_clear(SinkDbus *s, DbusPeer *p) {
        while (p->q_len > 0) {
                DbusQueued d = peer_queue_pop(p);
                peer_lose(s, p, &d.loss, d.report);
                sd_bus_message_unref(d.m);
        }
        free(p->q);
        p->q = NULL;
        p->q_cap = 0;
        sink_ready_remove(s, p);
}

static bool peer_may_send(const DbusPeer *p, uint32_t bytes) {
        uint64_t unread = p->sent - p->acked;
        return unread == 0 || unread + bytes <= PEER_WINDOW;
}

static size_t peer_n_pings(const DbusPeer *p) {
        size_t n = 0;
        for (size_t i = 0; i < DBUS_PEER_PINGS; i++)
                n += p->pings[i].slot != NULL;
        return n;
}

static void peer_pings_cancel(DbusPeer *p) {
        for (size_t i = 0; i < DBUS_PEER_PINGS; i++)
                p->pings[i].slot = sd_bus_slot_unref(p->pings[i].slot);
        p->sent = p->acked = p->ping_mark = 0;
}

void sink_dbus_peer_unqueue(SinkDbus *s, DbusPeer *p) {
        while (p->q_len > 0)
                sd_bus_message_unref(peer_queue_pop(p).m);
        free(p->q);
        p->q = NULL;
        p->q_cap = 0;
        sink_ready_remove(s, p);
        peer_pings_cancel(p);
}

static int peer_on_ping(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        DbusPing *ping = userdata;
        DbusPeer *p = ping->peer;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        (void) error;
        ping->slot = sd_bus_slot_unref(ping->slot);
        /* Any answer, even an error (no Peer interface), comes after the
         * peer read every signal sent before the ping; a timeout does not. */
        if (!e || !(sd_bus_error_has_name(e, SD_BUS_ERROR_NO_REPLY) ||
                    sd_bus_error_has_name(e, SD_BUS_ERROR_TIMEOUT)))
                p->acked = MAX(p->acked, ping->mark);
        if (p->q_len > 0)
                sink_ready_add(p->sink, p);
        return 0;
}

/* Ask p for a Peer.Ping reply behind what was sent to it so far. */
static void peer_ping(SinkDbus *s, DbusPeer *p) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        DbusPing *ping = NULL;
        int r;

        for (size_t i = 0; !ping && i < DBUS_PEER_PINGS; i++)
                if (!p->pings[i].slot)
                        ping = &p->pings[i];
        if (!ping)
                return;
        r = sd_bus_message_new_method_call(s->bus, &m, p->name, "/", "org.freedesktop.DBus.Peer", "Ping");
        if (r >= 0)
                r = sd_bus_call_async(s->bus, &ping->slot, m, peer_on_ping, ping, 0);
        if (r < 0)
                return; /* no room until the next try: its signals wait or are dropped, counted */
        ping->peer = p;
        ping->mark = p->ping_mark = p->sent;
}

/* Hand d to sd-bus; what a failure loses is counted and told. */
static int peer_send(SinkDbus *s, DbusPeer *p, DbusQueued *d) {
        int r = sd_bus_send(s->bus, d->m, NULL);

        d->m = sd_bus_message_unref(d->m);
        if (r < 0) {
                peer_lose(s, p, &d->loss, d->report);
                return r;
        }
        s->stats.signals_sent++;
        p->sent += d->bytes;
        if (p->sent - p->ping_mark >= PEER_WINDOW / DBUS_PEER_PINGS)
                peer_ping(s, p);
        return 0;
}

/* Queue an Overrun telling p's untold loss now (if the bus is there). */
static void peer_tell_loss(SinkDbus *s, DbusPeer *p) {
        sd_bus_message *m = NULL;
        PnEvent ev;

        if (!p->live || !sd_bus_is_open(s->bus))
                return;
        subscriber_loss_report(&p->sub, &ev);
        if (sink_dbus_build_event(s, p, &ev, &m) < 0)
                return; /* tried again with the next event or send */
        if (peer_queue_push(p, m, sink_dbus_signal_bytes(p, &ev), p->sub.loss, true) < 0) {
                sd_bus_message_unref(m);
                return;
        }
        subscriber_loss_told(&p->sub);
        sink_ready_add(s, p);
}

/* Once p's queue has room again (drained to half), the Overrun of its
 * untold loss. */
static void peer_report_lost(SinkDbus *s, DbusPeer *p) {
        if (subscriber_loss_due(&p->sub, NULL, p->q_bytes, s->opt.queue_bytes))
                peer_tell_loss(s, p);
}

/* Send from the ready peers, one signal each in turn, while sd-bus's
 * queue is short and each has room in its window. */
static void sink_dbus_pump(SinkDbus *s) {
        uint64_t queued = 0;
        int r;

        while (s->connected && s->ready_head) {
                (void) sd_bus_get_n_queued_write(s->bus, &queued);
                if (queued >= BUS_QUEUE_MAX)
                        return; /* the post source comes back after sd-bus wrote */
                DbusPeer *p = s->ready_head;
                sink_ready_remove(s, p);
                if (p->q_len == 0)
                        continue;
                if (!peer_may_send(p, peer_queue_at(p, 0)->bytes)) {
                        /* Back when a ping's reply shows it read. */
                        if (peer_n_pings(p) == 0)
                                peer_ping(s, p);
                        continue;
                }
                DbusQueued d = peer_queue_pop(p);
                r = peer_send(s, p, &d);
                if (p->q_len > 0)
                        sink_ready_add(s, p);
                if (r < 0)
                        return; /* the bus is going (or short of memory): the next iteration */
                peer_report_lost(s, p);
        }
        if (!s->ready_head)
                (void) sd_event_source_set_enabled(s->pump, SD_EVENT_OFF);
}

/* After each loop iteration while a peer is ready (sd-bus writing out its
 * queue, a ping's reply are such iterations). */
static int sink_dbus_on_pump(sd_event_source *src, void *userdata) {
        (void) src;
        sink_dbus_pump(userdata);
        return 0;
}

/* --- the framer the SubscriberSet drives (subscriber-set.h) --- */

static DbusPeer *peer_of(Subscriber *sub) {
        return (DbusPeer *) ((char *) sub - offsetof(DbusPeer, sub));
}

/* Queue m for p, taken: sent in p's turn. -ENOMEM if it cannot be queued
 * (m dropped: the caller counts the loss). */
static int peer_queue_message(SinkDbus *s, DbusPeer *p, sd_bus_message *m, uint32_t bytes, SinkLoss loss) {
        if (peer_queue_push(p, m, bytes, loss, false) < 0) {
                sd_bus_message_unref(m);
                return -ENOMEM;
        }
        sink_ready_add(s, p);
        return 0;
}

static uint64_t peer_op_queued(Subscriber *sub) {
        return peer_of(sub)->q_bytes;
}

/* Each peer's signal is its own (its destination): built in deliver. Not
 * on the bus now (reconnecting): lost, and told once it is back. */
static int peer_op_prepare(Subscriber *sub, const PnEvent *ev, uint64_t *ret_bytes) {
        DbusPeer *p = peer_of(sub);

        if (!p->live)
                return -ENOTCONN;
        *ret_bytes = sink_dbus_signal_bytes(p, ev);
        return 0;
}

static int peer_op_deliver(Subscriber *sub, const PnEvent *ev) {
        DbusPeer *p = peer_of(sub);
        SinkDbus *s = p->sink;
        sd_bus_message *m = NULL;
        int r;

        r = sink_dbus_build_event(s, p, ev, &m);
        if (r < 0)
                return r;
        return peer_queue_message(s, p, m, sink_dbus_signal_bytes(p, ev), (SinkLoss){ 1, ev->seq, ev->seq });
}

static void peer_op_report_loss(Subscriber *sub) {
        DbusPeer *p = peer_of(sub);
        peer_tell_loss(p->sink, p);
}

/* A SignalWithheld, sent at once: it comes once per episode. */
static void peer_op_report_withheld(Subscriber *sub, int sig, const PnEvent *ev) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        DbusPeer *p = peer_of(sub);
        SinkDbus *s = p->sink;
        int r;

        r = sd_bus_message_new_signal(s->bus, &m, DBUS_PATH, DBUS_INTERFACE, "SignalWithheld");
        if (r >= 0)
                r = sd_bus_message_set_destination(m, p->name);
        if (r >= 0)
                r = sd_bus_message_append(m, "iutt", (int32_t) sig, (uint32_t) p->sub.creds.pid, ev->seq,
                                          ev->ts_ns);
        if (r >= 0)
                r = sd_bus_send(s->bus, m, NULL);
        if (r >= 0)
                s->stats.signals_sent++;
}

/* A Followed signal, right behind ev's own. Like a kernel overrun it is
 * never dropped for a full queue: it comes at most once per change of the
 * main, and a manager that missed it would watch the wrong process. One
 * that cannot be sent is counted lost as its cause event. */
static void peer_op_report_follow(Subscriber *base, Subscription *subscription, const PnEvent *ev,
                                  const FollowReport *fr) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        DbusSubscription *sub = (DbusSubscription *) subscription;
        DbusPeer *p = peer_of(base);
        SinkDbus *s = p->sink;
        int r = -ENOTCONN;

        if (p->live)
                r = sd_bus_message_new_signal(s->bus, &m, DBUS_PATH, DBUS_INTERFACE, "Followed");
        if (r >= 0)
                r = sd_bus_message_set_destination(m, p->name);
        if (r >= 0)
                r = sd_bus_message_append(m, "osiiuutt", sub->path, fr->reason, (int32_t) fr->main_pid,
                                          (int32_t) fr->previous_main_pid, (uint32_t) fr->candidates,
                                          (uint32_t) fr->members, fr->cause_seq, fr->ts_ns);
        if (r >= 0)
                r = peer_queue_message(s, p, TAKE_PTR(m), 256 + strlen(p->name) + strlen(sub->path),
                                       (SinkLoss){ 1, ev->seq, ev->seq });
        if (r < 0)
                peer_lose_event(s, p, ev);
}

/* Out at once if sd-bus has room: a lone event is not delayed. */
static void peer_op_event_done(SubscriberSink *k) {
        sink_dbus_pump((SinkDbus *) ((char *) k - offsetof(SinkDbus, subscriber_sink)));
}

static const SubscriberSinkOps sink_dbus_peer_ops = {
        .queued = peer_op_queued,
        .prepare = peer_op_prepare,
        .deliver = peer_op_deliver,
        .report_loss = peer_op_report_loss,
        .report_withheld = peer_op_report_withheld,
        .report_follow = peer_op_report_follow,
        .event_done = peer_op_event_done,
};

/* --- the bus itself --- */

static void sink_dbus_restore_peers(SinkDbus *s);
static void sink_dbus_schedule_reconnect(SinkDbus *s);

static int sink_dbus_on_name(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        SinkDbus *s = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        uint32_t reply = 0;
        char why[256];

        (void) error;
        s->slot_name = sd_bus_slot_unref(s->slot_name);
        if (e)
                snprintf(why, sizeof(why), "cannot own %s: %s", DBUS_NAME, e->message);
        /* DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER = 1, ALREADY_OWNER = 4 */
        else if (sd_bus_message_read(m, "u", &reply) < 0 || (reply != 1 && reply != 4))
                snprintf(why, sizeof(why), "%s is owned by another connection", DBUS_NAME);
        else {
                s->connected = true;
                s->backoff_usec = 0;
                if (s->ever_ready) {
                        s->stats.reconnects++;
                        sink_dbus_restore_peers(s);
                }
                s->ever_ready = true;
                if (s->cb.on_ready)
                        s->cb.on_ready(s->userdata);
                return 0;
        }
        /* At start the broker goes on without the bus; once served, the
         * name is tried for again on a new connection. */
        if (!s->ever_ready) {
                s->cb.on_lost(s->userdata, why);
                return 0;
        }
        if (s->cb.on_disconnected)
                s->cb.on_disconnected(s->userdata, why);
        sink_dbus_schedule_reconnect(s);
        return 0;
}

/* The connection is gone (the bus closed it or went away): every peer
 * loses what was queued for it, counted; a new connection is made later. */
static int sink_dbus_on_disconnect(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        SinkDbus *s = userdata;
        (void) m;
        (void) error;
        if (!s->ever_ready) {
                s->cb.on_lost(s->userdata, "the bus connection was closed");
                return 0;
        }
        if (s->cb.on_disconnected)
                s->cb.on_disconnected(s->userdata, "the bus connection was closed");
        sink_dbus_schedule_reconnect(s);
        return 0;
}

/* Serve on bus (taken): objects, the Disconnected match, the name (asked
 * for asynchronously: sink_dbus_on_name goes on). */
static int sink_dbus_attach(SinkDbus *s, sd_bus *bus) {
        int r;

        s->bus = bus;
        r = sd_bus_attach_event(bus, s->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return r;
        /* Before any handler: every call's arguments are bounded (floating:
         * it lives with this connection). */
        r = sd_bus_add_filter(bus, NULL, sink_dbus_args_filter, &s->stats.bad_calls);
        if (r < 0)
                return r;
        r = sd_bus_add_object_vtable(bus, &s->slot_vtable, DBUS_PATH, DBUS_INTERFACE, sink_dbus_vtable, s);
        if (r < 0)
                return r;
        r = sd_bus_add_fallback_vtable(bus, &s->slot_sub_vtable, DBUS_SUBSCRIPTION_PREFIX,
                                       DBUS_SUBSCRIPTION_INTERFACE, sink_dbus_subscription_vtable,
                                       sink_dbus_subscription_find, s);
        if (r < 0)
                return r;
        r = sd_bus_add_node_enumerator(bus, &s->slot_enumerator, DBUS_SUBSCRIPTION_PREFIX,
                                       sink_dbus_subscription_enumerate, s);
        if (r < 0)
                return r;
        r = sd_bus_match_signal(bus, &s->slot_disconnect, "org.freedesktop.DBus.Local", NULL,
                                "org.freedesktop.DBus.Local", "Disconnected", sink_dbus_on_disconnect, s);
        if (r < 0)
                return r;
        return sd_bus_request_name_async(bus, &s->slot_name, DBUS_NAME, 0, sink_dbus_on_name, s);
}

/* Leave the current connection: what peers had queued is lost (counted),
 * they wait, not live, until a new connection finds them still there.
 * flush: write out what sd-bus holds first (at exit; it may block). */
static void sink_dbus_detach(SinkDbus *s, bool flush) {
        s->connected = false;
        for (DbusPeer *p = s->peers; p; p = p->next) {
                peer_queue_clear(s, p);
                peer_pings_cancel(p);
                p->restore = sd_bus_slot_unref(p->restore);
                p->track = sd_bus_track_unref(p->track);
                p->live = false;
        }
        s->slot_vtable = sd_bus_slot_unref(s->slot_vtable);
        s->slot_sub_vtable = sd_bus_slot_unref(s->slot_sub_vtable);
        s->slot_enumerator = sd_bus_slot_unref(s->slot_enumerator);
        s->slot_name = sd_bus_slot_unref(s->slot_name);
        s->slot_disconnect = sd_bus_slot_unref(s->slot_disconnect);
        s->bus = flush ? sd_bus_flush_close_unref(s->bus) : sd_bus_close_unref(s->bus);
}

/* Called in the bus's own callbacks: the connection is left in the timer's. */
static void sink_dbus_schedule_reconnect(SinkDbus *s) {
        uint64_t delay = s->backoff_usec ? s->backoff_usec : RECONNECT_FIRST_USEC;

        s->connected = false;
        for (DbusPeer *p = s->peers; p; p = p->next)
                p->live = false; /* what comes now is lost, counted */
        s->backoff_usec = MIN(delay * 2, (uint64_t) RECONNECT_MAX_USEC);
        (void) sd_event_source_set_time_relative(s->reconnect, delay);
        (void) sd_event_source_set_enabled(s->reconnect, SD_EVENT_ONESHOT);
}

static int sink_dbus_on_reconnect(sd_event_source *src, uint64_t usec, void *userdata) {
        SinkDbus *s = userdata;
        sd_bus *bus = NULL;
        int r;

        (void) src;
        (void) usec;
        sink_dbus_detach(s, false);
        r = s->cb.connect(s->userdata, &bus);
        if (r >= 0)
                r = sink_dbus_attach(s, bus);
        if (r < 0) {
                sink_dbus_detach(s, false);
                sink_dbus_schedule_reconnect(s);
        }
        return 0;
}

/* A peer's check after a reconnect: is its unique name still the same
 * connection (the same user and process; a restarted bus gives the name to
 * someone else)? Then it gets its signals again, and an Overrun for what
 * it lost meanwhile; else it goes, with its subscriptions. */
static int peer_on_restore(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        DbusPeer *p = userdata;
        SinkDbus *s = p->sink;
        PeerCreds creds;

        (void) error;
        p->restore = sd_bus_slot_unref(p->restore);
        if (!sd_bus_is_open(s->bus))
                return 0; /* our connection closing: checked on the next */
        if (sd_bus_message_is_method_error(m, NULL) || sink_dbus_read_creds(m, s->ctx.policy, &creds, NULL) < 0 ||
            creds.uid != p->sub.creds.uid || creds.pid != p->sub.creds.pid) {
                sink_dbus_peer_free(p);
                return 0;
        }
        p->live = true;
        peer_report_lost(s, p);
        sink_dbus_pump(s);
        return 0;
}

static void sink_dbus_restore_peers(SinkDbus *s) {
        for (DbusPeer *p = s->peers, *next; p; p = next) {
                int r;

                next = p->next;
                /* Tracked first: a peer leaving after the check is seen leave. */
                r = sd_bus_track_new(s->bus, &p->track, sink_dbus_peer_on_track_removed, p);
                if (r >= 0)
                        r = sd_bus_track_add_name(p->track, p->name);
                if (r >= 0)
                        r = sd_bus_call_method_async(s->bus, &p->restore, "org.freedesktop.DBus",
                                                     "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                                     "GetConnectionCredentials", peer_on_restore, p, "s",
                                                     p->name);
                if (r < 0)
                        sink_dbus_peer_free(p);
        }
}

int sink_dbus_new(SinkDbus **ret, sd_bus *bus, sd_event *e, const SinkContext *ctx,
                  const SinkDbusOptions *o, const SinkDbusCallbacks *cb, void *userdata) {
        SinkDbus *s = calloc(1, sizeof(*s));
        int r;

        if (!s) {
                sd_bus_flush_close_unref(bus);
                return -ENOMEM;
        }
        s->event = sd_event_ref(e);
        s->ctx = *ctx;
        s->opt = *o;
        s->cb = *cb;
        s->userdata = userdata;

        r = sd_event_add_post(e, &s->pump, sink_dbus_on_pump, s);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_description(s->pump, "dbus-pump");
        (void) sd_event_source_set_enabled(s->pump, SD_EVENT_OFF);
        r = sd_event_add_time(e, &s->reconnect, CLOCK_MONOTONIC, UINT64_MAX, 0,
                                       sink_dbus_on_reconnect, s);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_description(s->reconnect, "dbus-reconnect");
        (void) sd_event_source_set_enabled(s->reconnect, SD_EVENT_OFF);
        r = sink_dbus_attach(s, bus);
        bus = NULL;
        if (r < 0)
                goto fail;
        /* The SubscriberSet says what each peer gets. */
        subscriber_set_add_sink(ctx->subscribers, &s->subscriber_sink, &sink_dbus_peer_ops, o->queue_bytes,
                                &s->stats.signals_lost,
                                (PeerSignalCounts){ &s->stats.unix_signals_sent, &s->stats.unix_signals_failed,
                                                    &s->stats.unix_signals_withheld });
        *ret = s;
        return 0;
fail:
        sd_bus_flush_close_unref(bus);
        sink_dbus_free(s);
        return r;
}

SinkDbus *sink_dbus_free(SinkDbus *s) {
        if (!s)
                return NULL;
        sink_dbus_control_cancel_all(s);
        while (s->peers)
                sink_dbus_peer_free(s->peers);
        if (s->subscriber_sink.set)
                subscriber_set_remove_sink(s->subscriber_sink.set, &s->subscriber_sink);
        sd_event_source_disable_unref(s->pump);
        sd_event_source_disable_unref(s->reconnect);
        sink_dbus_detach(s, true);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

void sink_dbus_set_options(SinkDbus *s, const SinkDbusOptions *o) {
        s->opt = *o;
        s->subscriber_sink.cap = o->queue_bytes;
}

void sink_dbus_visit_stats(SinkDbus *s, const StatsVisitor *v) {
        stats_section_begin(v, "dbus");
        stats_uint(v, "peers", s->stats.peers);
        stats_uint(v, "subscriptions", s->stats.subscriptions);
        stats_uint(v, "signals_sent", s->stats.signals_sent);
        stats_uint(v, "signals_lost", s->stats.signals_lost);
        stats_uint(v, "bad_calls", s->stats.bad_calls);
        stats_uint(v, "unix_signals_sent", s->stats.unix_signals_sent);
        stats_uint(v, "unix_signals_failed", s->stats.unix_signals_failed);
        stats_uint(v, "reconnects", s->stats.reconnects);
        stats_uint(v, "unix_signals_withheld", s->stats.unix_signals_withheld);
        stats_section_end(v);
}
