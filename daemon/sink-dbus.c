/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SinkDbus: delivery, peers and subscriptions; see sink-dbus.h. The
 * methods callers use live in sink-dbus-vtable.c.
 *
 * Each event becomes one signal per matching peer, addressed to it alone
 * (its unique name as destination). Each peer has its own queue and loss,
 * as on the JSON socket: its signals wait in its queue (at most ClientQueue=
 * bytes, counted by signal_bytes()) and are handed to sd-bus round-robin,
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "peer-pidfd.h"
#include "sink-dbus-args.h"
#include "sink-dbus-internal.h"

/* Signal names, one per event type (the JSON protocol's "type"). */
static const char *const signal_names[_PN_EVENT_TYPE_MAX] = {
        [PN_EVENT_FORK] = "Forked",         [PN_EVENT_EXEC] = "Exec",
        [PN_EVENT_UID] = "UidChanged",      [PN_EVENT_GID] = "GidChanged",
        [PN_EVENT_SID] = "SessionCreated",  [PN_EVENT_PTRACE] = "Ptrace",
        [PN_EVENT_COMM] = "CommChanged",    [PN_EVENT_PREDUMP] = "Predump",
        [PN_EVENT_EXIT] = "Exited",         [PN_EVENT_ADOPT] = "Adopted",
        [PN_EVENT_STOP] = "Stopped",        [PN_EVENT_CONTINUE] = "Continued",
        [PN_EVENT_OVERRUN] = "Overrun",
};

static const char *str_or_empty(const char *s) {
        /* D-Bus has no null: an unknown string is empty (documented). */
        return s ? s : "";
}

static int append_sources(sd_bus_message *m, uint32_t sources) {
        int r = sd_bus_message_open_container(m, 'a', "s");
        for (unsigned i = 0; r >= 0 && i < _PN_SOURCE_COUNT; i++)
                if (sources & (1u << i))
                        r = sd_bus_message_append(m, "s", pn_source_to_string(i));
        return r < 0 ? r : sd_bus_message_close_container(m);
}

/* The arguments of ev's signal, in the order of org.procnotify.Broker1.xml. */
static int append_event(sd_bus_message *m, const PnEvent *ev) {
        int r;

        if (ev->type == PN_EVENT_OVERRUN)
                return sd_bus_message_append(m, "tttstt", ev->seq, ev->ts_ns, ev->overrun.lost,
                                             pn_overrun_where_to_string(ev->overrun.where),
                                             ev->overrun.first_seq, ev->overrun.last_seq);
        r = sd_bus_message_append(m, "ttiiiusssss", ev->seq, ev->ts_ns, (int32_t) ev->pid,
                                  (int32_t) ev->tgid, (int32_t) ev->ppid, ev->uid,
                                  str_or_empty(ev->comm), str_or_empty(ev->exe),
                                  str_or_empty(ev->cmdline), str_or_empty(ev->cgroup),
                                  str_or_empty(ev->unit));
        if (r < 0)
                return r;
        switch (ev->type) {
        case PN_EVENT_FORK:
                return sd_bus_message_append(m, "ib", (int32_t) ev->fork.parent_pid, ev->thread);
        case PN_EVENT_UID:
        case PN_EVENT_GID:
                return sd_bus_message_append(m, "uub", ev->id.real, ev->id.effective, ev->thread);
        case PN_EVENT_SID:
                return sd_bus_message_append(m, "i", (int32_t) ev->sid.sid);
        case PN_EVENT_PTRACE:
                return sd_bus_message_append(m, "iib", (int32_t) ev->ptrace.tracer_pid,
                                             (int32_t) ev->ptrace.tracer_tgid, ev->thread);
        case PN_EVENT_COMM:
                return sd_bus_message_append(m, "b", ev->thread);
        case PN_EVENT_PREDUMP:
                /* No null on D-Bus: 0 for an unknown signal or thread, -1
                 * for an unknown size, PN_CORE_LIMIT_* (-1 unlimited, -2
                 * unknown), "" for an unknown core_dump and 0 netns. */
                return sd_bus_message_append(m, "iixxst", ev->predump.signal, (int32_t) ev->predump.tid,
                                             ev->predump.rss, ev->predump.core_limit,
                                             str_or_empty(pn_core_dump_to_string(ev->predump.core_dump)),
                                             ev->netns);
        case PN_EVENT_EXIT:
                /* An exit inferred after a loss has no status: -1 throughout. */
                r = sd_bus_message_append(m, "iibi", ev->exit.status < 0 ? -1 : ev->exit.exit_code,
                                          ev->exit.status < 0 ? -1 : ev->exit.signal,
                                          ev->exit.status >= 0 && ev->exit.core_dumped,
                                          ev->exit.status);
                if (r >= 0)
                        r = append_sources(m, ev->sources);
                return r < 0 ? r : sd_bus_message_append(m, "bt", ev->thread, ev->netns);
        case PN_EVENT_ADOPT:
                r = sd_bus_message_append(m, "ii", (int32_t) ev->adopt.old_parent,
                                          (int32_t) ev->adopt.new_parent);
                return r < 0 ? r : append_sources(m, ev->sources);
        case PN_EVENT_STOP:
                r = sd_bus_message_append(m, "i", ev->stop.signal);
                return r < 0 ? r : append_sources(m, ev->sources);
        case PN_EVENT_CONTINUE:
                return append_sources(m, ev->sources);
        default:
                return 0;
        }
}

/* Our signals in sd-bus's write queue at most: beyond, they wait in their
 * peers' own queues and go to sd-bus in turn, so that the next one written
 * is any peer's, not the greediest's. */
#define BUS_QUEUE_MAX 16
/* Bytes sent to one peer and not yet known read: what it can have waiting
 * in the bus for it, far within any bus's quota for one sender. */
#define PEER_WINDOW (64u << 10)
#define RECONNECT_FIRST_USEC (100u * 1000u)
#define RECONNECT_MAX_USEC (10u * 1000u * 1000u)

/* The size ev's signal to p counts for, against p's queue and window: a
 * generous header and fixed arguments, and the strings. */
static uint32_t signal_bytes(const DbusPeer *p, const PnEvent *ev) {
        const char *const strs[] = { ev->comm, ev->exe, ev->cmdline, ev->cgroup, ev->unit };
        size_t n = 256 + strlen(p->name);

        for (size_t i = 0; ev->type != PN_EVENT_OVERRUN && i < ELEMENTSOF(strs); i++)
                n += (strs[i] ? strlen(strs[i]) : 0) + 8;
        return (uint32_t) MIN(n, (size_t) UINT32_MAX);
}

static int build_event(SinkDbus *s, DbusPeer *p, const PnEvent *ev, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r = sd_bus_message_new_signal(s->bus, &m, DBUS_PATH, DBUS_INTERFACE, signal_names[ev->type]);
        if (r >= 0)
                r = sd_bus_message_set_destination(m, p->name);
        if (r >= 0)
                r = append_event(m, ev);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

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
        sink_loss_add(&p->loss, l->lost, l->first_seq, l->last_seq);
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

/* Queue an Overrun telling p's untold loss, once its queue has room (half
 * empty), or before a kernel overrun (force): that has a seq, and untold
 * loss before it must come first or the peer sees a gap no Overrun explains. */
static void peer_report_lost(SinkDbus *s, DbusPeer *p, bool force) {
        sd_bus_message *m = NULL;
        PnEvent ev;

        if (p->loss.lost == 0 || !p->live || (!force && p->q_bytes > s->opt.queue_bytes / 2) ||
            !sd_bus_is_open(s->bus))
                return;
        sink_loss_overrun(&p->loss, &ev);
        if (build_event(s, p, &ev, &m) < 0)
                return; /* tried again with the next event or send */
        if (peer_queue_push(p, m, signal_bytes(p, &ev), p->loss, true) < 0) {
                sd_bus_message_unref(m);
                return;
        }
        p->loss = (SinkLoss){ 0 };
        sink_ready_add(s, p);
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
                peer_report_lost(s, p, false);
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

/* Queue m for p, taken: sent in p's turn, or lost (counted) if it cannot
 * be queued. */
static void peer_queue_message(SinkDbus *s, DbusPeer *p, sd_bus_message *m, uint32_t bytes, SinkLoss loss) {
        if (peer_queue_push(p, m, bytes, loss, false) < 0) {
                sd_bus_message_unref(m);
                peer_lose(s, p, &loss, false);
                return;
        }
        sink_ready_add(s, p);
}

/*
 * Run ev through every subscription of p: advance their follows (whether
 * or not p may see ev: a follow must see every fork and exit of its
 * service), and tell whether one matches, which signals the matching ones
 * ask for (bit N-1 for signal N), and whether a follow changed.
 */
static bool peer_matches(DbusPeer *p, const PnEvent *ev, bool visible, const FilterContext *fctx,
                         uint64_t *sigmask, bool *follow_changed) {
        bool matched = false;

        for (DbusSubscription *sub = p->subs; sub; sub = sub->next) {
                bool member = true;

                if (sub->follow) {
                        member = follow_update(sub->follow, ev, &sub->change);
                        *follow_changed |= sub->change.kind != FOLLOW_CHANGE_NONE;
                }
                if (!visible || (matched && !sub->signal))
                        continue;
                if ((!member && ev->type != PN_EVENT_OVERRUN) || !filter_match(sub->filter, ev, fctx))
                        continue;
                matched = true;
                /* Overruns pass every filter, but signal no event. */
                if (sub->signal && ev->type != PN_EVENT_OVERRUN)
                        *sigmask |= UINT64_C(1) << (sub->signal - 1);
        }
        return matched;
}

/* A Followed signal for every follow of p that ev changed, right behind
 * ev's own signal. Like a kernel overrun it is never dropped for a full
 * queue: it comes at most once per change of the main, and a manager that
 * missed it would watch the wrong process. One that cannot be sent is
 * counted lost as its cause event. */
static void peer_report_follows(SinkDbus *s, DbusPeer *p, const PnEvent *ev, bool visible) {
        for (DbusSubscription *sub = p->subs; sub; sub = sub->next) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                FollowReport fr;
                int r = -ENOTCONN;

                if (!sub->follow || sub->change.kind == FOLLOW_CHANGE_NONE)
                        continue;
                sink_context_follow_report(&fr, sub->id, &sub->change, ev);
                sub->change.kind = FOLLOW_CHANGE_NONE;
                /* Told only along with an event the peer may see. */
                if (!visible)
                        continue;
                if (p->live)
                        r = sd_bus_message_new_signal(s->bus, &m, DBUS_PATH, DBUS_INTERFACE, "Followed");
                if (r >= 0)
                        r = sd_bus_message_set_destination(m, p->name);
                if (r >= 0)
                        r = sd_bus_message_append(m, "osiiuutt", sub->path, fr.reason, (int32_t) fr.main_pid,
                                                  (int32_t) fr.previous_main_pid, (uint32_t) fr.candidates,
                                                  (uint32_t) fr.members, fr.cause_seq, fr.ts_ns);
                if (r < 0) {
                        peer_lose_event(s, p, ev);
                        continue;
                }
                peer_queue_message(s, p, TAKE_PTR(m), 256 + strlen(p->name) + strlen(sub->path),
                                   (SinkLoss){ 1, ev->seq, ev->seq });
        }
}

/* Queue ev's signal for p, or count it lost: p's queue is full (then until
 * it drained to half), the bus is away, or the signal cannot be built. */
static void peer_queue_event(SinkDbus *s, DbusPeer *p, const PnEvent *ev) {
        bool overrun = ev->type == PN_EVENT_OVERRUN;
        uint32_t bytes = signal_bytes(p, ev);
        sd_bus_message *m = NULL;

        if (!p->live) {
                peer_lose_event(s, p, ev);
                return;
        }
        /* A kernel overrun is queued whatever the queue holds: it is rare
         * (coalesced) and the one thing a peer must not miss. */
        peer_report_lost(s, p, overrun);
        if (!overrun && (p->loss.lost > 0 || p->q_bytes + bytes > s->opt.queue_bytes)) {
                peer_lose_event(s, p, ev);
                return;
        }
        if (build_event(s, p, ev, &m) < 0) {
                peer_lose_event(s, p, ev);
                peer_report_lost(s, p, false);
                return;
        }
        peer_queue_message(s, p, m, bytes, (SinkLoss){ 1, ev->seq, ev->seq });
}

/* The Unix signals p asked for, as far as it could send them itself; a
 * SignalWithheld tells it once when one is not sent. Like Followed, never
 * dropped for a full queue: it comes once per episode. */
static void peer_send_signals(SinkDbus *s, DbusPeer *p, uint64_t sigmask, const PnEvent *ev) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        PeerSignalCounts n = { &s->stats.unix_signals_sent, &s->stats.unix_signals_failed,
                               &s->stats.unix_signals_withheld };
        int sig = peer_signals_send(&p->signals, sigmask, ev->tgid, &n), r;

        if (sig <= 0)
                return;
        r = sd_bus_message_new_signal(s->bus, &m, DBUS_PATH, DBUS_INTERFACE, "SignalWithheld");
        if (r >= 0)
                r = sd_bus_message_set_destination(m, p->name);
        if (r >= 0)
                r = sd_bus_message_append(m, "iutt", (int32_t) sig, (uint32_t) p->creds.pid, ev->seq,
                                          ev->ts_ns);
        if (r >= 0)
                r = sd_bus_send(s->bus, m, NULL);
        if (r >= 0)
                s->stats.signals_sent++;
}

static void sink_dbus_on_event(const PnEvent *ev, void *userdata) {
        SinkDbus *s = userdata;

        if (!s->peers || ev->type < 0 || ev->type >= _PN_EVENT_TYPE_MAX)
                return;
        for (DbusPeer *p = s->peers; p; p = p->next) {
                uint64_t sigmask = 0;
                bool follow_changed = false;
                bool visible = policy_may_see(&p->creds, ev);
                if (!visible && p->n_follows == 0)
                        continue;
                bool matched = peer_matches(p, ev, visible, &s->ctx.filter, &sigmask, &follow_changed);
                /* The signal first, so that the peer can act before the bus delivers. */
                if (sigmask)
                        peer_send_signals(s, p, sigmask, ev);
                if (matched)
                        peer_queue_event(s, p, ev);
                if (follow_changed)
                        peer_report_follows(s, p, ev, visible);
        }
        /* Out at once if sd-bus has room: a lone event is not delayed. */
        sink_dbus_pump(s);
}

/* --- peers and subscriptions --- */

static DbusPeer *peer_free(DbusPeer *p) {
        SinkDbus *s;

        if (!p)
                return NULL;
        s = p->sink;
        if (s->ctx.control.release)
                s->ctx.control.release(s->ctx.userdata, p->owner);
        while (p->subs)
                sink_dbus_subscription_free(p->subs);
        uidlimits_release(s->ctx.limits, UID_RESOURCE_CLIENTS, p->creds.uid);
        for (DbusPeer **q = &s->peers; *q; q = &(*q)->next)
                if (*q == p) {
                        *q = p->next;
                        break;
                }
        s->stats.peers--;
        peer_signals_done(&p->signals);
        while (p->q_len > 0)
                sd_bus_message_unref(peer_queue_pop(p).m);
        free(p->q);
        sink_ready_remove(s, p);
        peer_pings_cancel(p);
        sd_bus_slot_unref(p->restore);
        sd_bus_track_unref(p->track);
        free(p->name);
        free(p);
        return NULL;
}

/* The peer's connection left the bus: its subscriptions go with it. */
static int peer_on_track_removed(sd_bus_track *t, void *userdata) {
        DbusPeer *p = userdata;
        /* Our own connection closing drops every track: the peer may well
         * be there still, checked once connected again. */
        if (!sd_bus_is_open(sd_bus_track_get_bus(t))) {
                /* Unreferenced here: sd-bus closes until no track is left. */
                p->track = sd_bus_track_unref(p->track);
                p->live = false;
                return 0;
        }
        peer_free(p);
        return 0;
}

const PeerCreds *sink_dbus_peer_creds(SinkDbus *s, const char *name) {
        for (DbusPeer *p = s->peers; p; p = p->next)
                if (streq(p->name, name))
                        return &p->creds;
        return NULL;
}

bool sink_dbus_peer_has_signals(SinkDbus *s, const char *name) {
        for (DbusPeer *p = s->peers; p; p = p->next)
                if (streq(p->name, name))
                        return p->signals.pidfd >= 0;
        return false;
}

int sink_dbus_peer_get(SinkDbus *s, const char *name, const PeerCreds *creds, DbusPeer **ret) {
        DbusPeer *p;
        int r;

        for (p = s->peers; p; p = p->next)
                if (streq(p->name, name)) {
                        *ret = p;
                        return 0;
                }
        if (s->stats.peers >= s->opt.max_peers)
                return -EUSERS;
        /* Counted with the user's JSON connections. */
        r = uidlimits_acquire(s->ctx.limits, UID_RESOURCE_CLIENTS, creds->uid);
        if (r == UIDLIMITS_E_EXCEEDED)
                return -EDQUOT;
        if (r < 0)
                return r;
        p = calloc(1, sizeof(*p));
        if (!p) {
                uidlimits_release(s->ctx.limits, UID_RESOURCE_CLIENTS, creds->uid);
                return -ENOMEM;
        }
        p->sink = s;
        p->creds = *creds;
        p->signals = PEER_SIGNALS_INIT;
        p->live = true;
        p->owner = SINK_OWNER_DBUS | ++s->next_owner;
        p->name = strdup(name);
        if (!p->name) {
                free(p);
                uidlimits_release(s->ctx.limits, UID_RESOURCE_CLIENTS, creds->uid);
                return -ENOMEM;
        }
        r = sd_bus_track_new(s->bus, &p->track, peer_on_track_removed, p);
        if (r >= 0)
                r = sd_bus_track_add_name(p->track, name);
        if (r < 0) {
                sd_bus_track_unref(p->track);
                free(p->name);
                free(p);
                uidlimits_release(s->ctx.limits, UID_RESOURCE_CLIENTS, creds->uid);
                return r;
        }
        p->next = s->peers;
        s->peers = p;
        s->stats.peers++;
        *ret = p;
        return 0;
}

int sink_dbus_subscription_add(DbusPeer *p, Filter *filter, char **events, int signal, Follow *follow,
                               DbusSubscription **ret) {
        SinkDbus *s = p->sink;
        DbusSubscription *sub;
        int r;

        if (p->n_subs >= s->opt.max_subscriptions)
                return -EUSERS;
        r = uidlimits_acquire(s->ctx.limits, UID_RESOURCE_SUBSCRIPTIONS, p->creds.uid);
        if (r == UIDLIMITS_E_EXCEEDED)
                return -EDQUOT;
        if (r < 0)
                return r;
        sub = calloc(1, sizeof(*sub));
        if (!sub) {
                uidlimits_release(s->ctx.limits, UID_RESOURCE_SUBSCRIPTIONS, p->creds.uid);
                return -ENOMEM;
        }
        sub->peer = p;
        sub->id = ++s->next_sub_id;
        if (asprintf(&sub->path, DBUS_SUBSCRIPTION_PREFIX "/%llu", (unsigned long long) sub->id) < 0) {
                free(sub);
                uidlimits_release(s->ctx.limits, UID_RESOURCE_SUBSCRIPTIONS, p->creds.uid);
                return -ENOMEM;
        }
        sub->filter = filter;
        sub->events = events;
        sub->signal = signal;
        sub->follow = follow;
        p->n_follows += follow != NULL;
        sub->next = p->subs;
        p->subs = sub;
        p->n_subs++;
        s->stats.subscriptions++;
        *ret = sub;
        return 0;
}

void sink_dbus_subscription_free(DbusSubscription *sub) {
        DbusPeer *p = sub->peer;

        for (DbusSubscription **q = &p->subs; *q; q = &(*q)->next)
                if (*q == sub) {
                        *q = sub->next;
                        break;
                }
        p->n_subs--;
        p->sink->stats.subscriptions--;
        uidlimits_release(p->sink->ctx.limits, UID_RESOURCE_SUBSCRIPTIONS, p->creds.uid);
        p->n_follows -= sub->follow != NULL;
        follow_free(sub->follow);
        filter_free(sub->filter);
        for (size_t i = 0; sub->events && sub->events[i]; i++)
                free(sub->events[i]);
        free(sub->events);
        free(sub->path);
        free(sub);
}

void sink_dbus_drop_subscription(SinkDbus *s, SinkOwner owner, uint64_t tag, pid_t pid,
                                 const char *reason) {
        for (DbusPeer *p = s->peers; p; p = p->next) {
                if (p->owner != owner)
                        continue;
                for (DbusSubscription *sub = p->subs, *next; sub; sub = next) {
                        next = sub->next;
                        if (sub->tag != tag)
                                continue;
                        if (reason) {
                                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                                int r = sd_bus_message_new_signal(s->bus, &m, DBUS_PATH, DBUS_INTERFACE,
                                                                  "WatchEnded");
                                if (r >= 0)
                                        r = sd_bus_message_set_destination(m, p->name);
                                if (r >= 0)
                                        r = sd_bus_message_append(m, "ous", sub->path, (uint32_t) pid, reason);
                                if (r >= 0 && sd_bus_send(s->bus, m, NULL) >= 0)
                                        s->stats.signals_sent++;
                        }
                        sink_dbus_subscription_free(sub);
                }
                return;
        }
}

DbusSubscription *sink_dbus_subscription_by_path(SinkDbus *s, const char *path) {
        for (DbusPeer *p = s->peers; p; p = p->next)
                for (DbusSubscription *sub = p->subs; sub; sub = sub->next)
                        if (streq(sub->path, path))
                                return sub;
        return NULL;
}

/* Whether the caller of the message being served (if any) may see sub:
 * subscription objects, their Owner and Events, are their owner's alone. */
static bool subscription_visible(sd_bus *bus, const DbusSubscription *sub) {
        sd_bus_message *m = sd_bus_get_current_message(bus);
        const char *sender = m ? sd_bus_message_get_sender(m) : NULL;
        return !m || (sender && streq(sender, sub->peer->name));
}

int sink_dbus_subscription_find(sd_bus *bus, const char *path, const char *iface, void *userdata,
                                void **found, sd_bus_error *error) {
        DbusSubscription *sub = sink_dbus_subscription_by_path(userdata, path);
        (void) iface;
        (void) error;
        if (!sub || !subscription_visible(bus, sub))
                return 0;
        *found = sub;
        return 1;
}

int sink_dbus_subscription_enumerate(sd_bus *bus, const char *prefix, void *userdata,
                                     char ***nodes, sd_bus_error *error) {
        SinkDbus *s = userdata;
        size_t n = 0, i = 0;
        char **v;

        (void) prefix;
        (void) error;
        for (DbusPeer *p = s->peers; p; p = p->next)
                n += p->n_subs;
        v = calloc(n + 1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (DbusPeer *p = s->peers; p; p = p->next)
                for (DbusSubscription *sub = p->subs; sub; sub = sub->next) {
                        if (!subscription_visible(bus, sub))
                                continue;
                        v[i] = strdup(sub->path);
                        if (!v[i]) {
                                for (size_t j = 0; j < i; j++)
                                        free(v[j]);
                                free(v);
                                return -ENOMEM;
                        }
                        i++;
                }
        *nodes = v;
        return 0;
}

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
            creds.uid != p->creds.uid || creds.pid != p->creds.pid) {
                peer_free(p);
                return 0;
        }
        p->live = true;
        peer_report_lost(s, p, false);
        sink_dbus_pump(s);
        return 0;
}

static void sink_dbus_restore_peers(SinkDbus *s) {
        for (DbusPeer *p = s->peers, *next; p; p = next) {
                int r;

                next = p->next;
                /* Tracked first: a peer leaving after the check is seen leave. */
                r = sd_bus_track_new(s->bus, &p->track, peer_on_track_removed, p);
                if (r >= 0)
                        r = sd_bus_track_add_name(p->track, p->name);
                if (r >= 0)
                        r = sd_bus_call_method_async(s->bus, &p->restore, "org.freedesktop.DBus",
                                                     "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                                     "GetConnectionCredentials", peer_on_restore, p, "s",
                                                     p->name);
                if (r < 0)
                        peer_free(p);
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
        r = dispatcher_watch_add(ctx->dispatcher, sink_dbus_on_event, NULL, s);
        if (r < 0)
                goto fail;
        s->watch_id = r;
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
        if (s->watch_id > 0)
                dispatcher_watch_remove(s->ctx.dispatcher, s->watch_id);
        sink_dbus_control_cancel_all(s);
        while (s->peers)
                peer_free(s->peers);
        sd_event_source_disable_unref(s->pump);
        sd_event_source_disable_unref(s->reconnect);
        sink_dbus_detach(s, true);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

void sink_dbus_set_options(SinkDbus *s, const SinkDbusOptions *o) {
        s->opt = *o;
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
