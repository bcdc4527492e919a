/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SinkDbus: delivery, peers and subscriptions; see sink-dbus.h. The
 * methods callers use live in sink-dbus-vtable.c.
 *
 * Each event becomes one signal per matching peer, addressed to it alone
 * (its unique name as destination). Nothing else bounds sd-bus's write
 * queue, so this sink does: when more than max_queued messages wait, a
 * peer's signals are dropped and counted, and it gets an Overrun signal
 * ("client") once the queue has drained to half: with its next event, or
 * from a post source when none comes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/macro.h"
#include "peer-pidfd.h"
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
                /* No sources: an argument more would break every client
                 * that handles the signal (its arguments are its API). */
                return sd_bus_message_append(m, "i", ev->predump.signal);
        case PN_EVENT_EXIT:
                /* An exit inferred after a loss has no status: -1 throughout. */
                r = sd_bus_message_append(m, "iibi", ev->exit.status < 0 ? -1 : ev->exit.exit_code,
                                          ev->exit.status < 0 ? -1 : ev->exit.signal,
                                          ev->exit.status >= 0 && ev->exit.core_dumped,
                                          ev->exit.status);
                if (r >= 0)
                        r = append_sources(m, ev->sources);
                return r < 0 ? r : sd_bus_message_append(m, "b", ev->thread);
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

static int send_event(SinkDbus *s, DbusPeer *p, const PnEvent *ev) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r = sd_bus_message_new_signal(s->bus, &m, DBUS_PATH, DBUS_INTERFACE, signal_names[ev->type]);
        if (r >= 0)
                r = sd_bus_message_set_destination(m, p->name);
        if (r >= 0)
                r = append_event(m, ev);
        if (r >= 0)
                r = sd_bus_send(s->bus, m, NULL);
        if (r >= 0)
                s->stats.signals_sent++;
        return r;
}

static uint64_t now_ns(clockid_t clock) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static void peer_report_lost(SinkDbus *s, DbusPeer *p) {
        PnEvent ev = {
                .type = PN_EVENT_OVERRUN,
                .ts_ns = now_ns(CLOCK_MONOTONIC),
                .overrun = { .lost = p->lost, .where = PN_OVERRUN_CLIENT,
                             .first_seq = p->lost_first, .last_seq = p->lost_last },
        };
        if (send_event(s, p, &ev) >= 0)
                p->lost = 0;
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
 * missed it would watch the wrong process. */
static void peer_report_follows(SinkDbus *s, DbusPeer *p, const PnEvent *ev, bool visible) {
        for (DbusSubscription *sub = p->subs; sub; sub = sub->next) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                FollowReport fr;
                int r;

                if (!sub->follow || sub->change.kind == FOLLOW_CHANGE_NONE)
                        continue;
                sink_context_follow_report(&fr, sub->id, &sub->change, ev);
                sub->change.kind = FOLLOW_CHANGE_NONE;
                /* Told only along with an event the peer may see. */
                if (!visible)
                        continue;
                r = sd_bus_message_new_signal(s->bus, &m, DBUS_PATH, DBUS_INTERFACE, "Followed");
                if (r >= 0)
                        r = sd_bus_message_set_destination(m, p->name);
                if (r >= 0)
                        r = sd_bus_message_append(m, "osiiuutt", sub->path, fr.reason, (int32_t) fr.main_pid,
                                                  (int32_t) fr.previous_main_pid, (uint32_t) fr.candidates,
                                                  (uint32_t) fr.members, fr.cause_seq, fr.ts_ns);
                if (r >= 0)
                        r = sd_bus_send(s->bus, m, NULL);
                if (r >= 0)
                        s->stats.signals_sent++;
        }
}

/* Send ev to p, or count it lost while the bus's queue is full. */
static void peer_queue_event(SinkDbus *s, DbusPeer *p, const PnEvent *ev, uint64_t *queued) {
        /* A kernel overrun is sent whatever the queue holds, and it has a
         * seq: untold loss before it is told first, or the peer would see a
         * seq gap no Overrun explains. */
        if (p->lost > 0 && (*queued <= s->opt.max_queued / 2 || ev->type == PN_EVENT_OVERRUN))
                peer_report_lost(s, p);
        if (ev->type != PN_EVENT_OVERRUN && (p->lost > 0 || *queued >= s->opt.max_queued)) {
                if (p->lost++ == 0) {
                        p->lost_first = ev->seq;
                        (void) sd_event_source_set_enabled(s->report_lost, SD_EVENT_ON);
                }
                p->lost_last = ev->seq;
                s->stats.signals_lost++;
                return;
        }
        if (send_event(s, p, ev) >= 0)
                (*queued)++;
}

static void sink_dbus_on_event(const PnEvent *ev, void *userdata) {
        SinkDbus *s = userdata;
        uint64_t queued = 0;

        if (!s->peers || ev->type < 0 || ev->type >= _PN_EVENT_TYPE_MAX)
                return;
        (void) sd_bus_get_n_queued_write(s->bus, &queued);
        for (DbusPeer *p = s->peers; p; p = p->next) {
                uint64_t sigmask = 0;
                bool follow_changed = false;
                bool visible = policy_may_see(&p->creds, ev);
                if (!visible && p->n_follows == 0)
                        continue;
                bool matched = peer_matches(p, ev, visible, &s->ctx.filter, &sigmask, &follow_changed);
                /* The signal first, so that the peer can act before the bus delivers. */
                if (sigmask)
                        peer_pidfd_send_signals(p->pidfd, sigmask, ev->tgid, &s->stats.unix_signals_sent,
                                                &s->stats.unix_signals_failed);
                if (matched)
                        peer_queue_event(s, p, ev, &queued);
                if (follow_changed)
                        peer_report_follows(s, p, ev, visible);
        }
}

/* After any loop iteration while some peer's loss is untold (the bus
 * writing out its queue is one): once the queue is down to half, tell every
 * such peer, also when no further event comes for it after a burst. */
static int sink_dbus_on_post(sd_event_source *src, void *userdata) {
        SinkDbus *s = userdata;
        uint64_t queued = 0;
        bool untold = false;

        (void) sd_bus_get_n_queued_write(s->bus, &queued);
        for (DbusPeer *p = s->peers; p; p = p->next) {
                if (p->lost > 0 && queued <= s->opt.max_queued / 2) {
                        peer_report_lost(s, p);
                        queued++;
                }
                untold = untold || p->lost > 0;
        }
        if (!untold)
                (void) sd_event_source_set_enabled(src, SD_EVENT_OFF);
        return 0;
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
        safe_close(p->pidfd);
        sd_bus_track_unref(p->track);
        free(p->name);
        free(p);
        return NULL;
}

/* The peer's connection left the bus: its subscriptions go with it. */
static int peer_on_track_removed(sd_bus_track *t, void *userdata) {
        (void) t;
        peer_free(userdata);
        return 0;
}

const PeerCreds *sink_dbus_peer_creds(SinkDbus *s, const char *name) {
        for (DbusPeer *p = s->peers; p; p = p->next)
                if (streq(p->name, name))
                        return &p->creds;
        return NULL;
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
        p->pidfd = -1;
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

void sink_dbus_drop_subscription(SinkDbus *s, SinkOwner owner, uint64_t tag) {
        for (DbusPeer *p = s->peers; p; p = p->next) {
                if (p->owner != owner)
                        continue;
                for (DbusSubscription *sub = p->subs, *next; sub; sub = next) {
                        next = sub->next;
                        if (sub->tag == tag)
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

int sink_dbus_subscription_find(sd_bus *bus, const char *path, const char *iface, void *userdata,
                                void **found, sd_bus_error *error) {
        DbusSubscription *sub = sink_dbus_subscription_by_path(userdata, path);
        (void) bus;
        (void) iface;
        (void) error;
        if (!sub)
                return 0;
        *found = sub;
        return 1;
}

int sink_dbus_subscription_enumerate(sd_bus *bus, const char *prefix, void *userdata,
                                     char ***nodes, sd_bus_error *error) {
        SinkDbus *s = userdata;
        size_t n = 0, i = 0;
        char **v;

        (void) bus;
        (void) prefix;
        (void) error;
        for (DbusPeer *p = s->peers; p; p = p->next)
                n += p->n_subs;
        v = calloc(n + 1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (DbusPeer *p = s->peers; p; p = p->next)
                for (DbusSubscription *sub = p->subs; sub; sub = sub->next) {
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

static int sink_dbus_on_name(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        SinkDbus *s = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        uint32_t reply = 0;
        char why[256];

        (void) error;
        if (e) {
                snprintf(why, sizeof(why), "cannot own %s: %s", DBUS_NAME, e->message);
                s->cb.on_lost(s->userdata, why);
                return 0;
        }
        /* DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER = 1, ALREADY_OWNER = 4 */
        if (sd_bus_message_read(m, "u", &reply) < 0 || (reply != 1 && reply != 4)) {
                snprintf(why, sizeof(why), "%s is owned by another connection", DBUS_NAME);
                s->cb.on_lost(s->userdata, why);
                return 0;
        }
        if (s->cb.on_ready)
                s->cb.on_ready(s->userdata);
        return 0;
}

static int sink_dbus_on_disconnect(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        SinkDbus *s = userdata;
        (void) m;
        (void) error;
        s->cb.on_lost(s->userdata, "the bus connection was closed");
        return 0;
}

int sink_dbus_new(SinkDbus **ret, sd_bus *bus, sd_event *e, const SinkContext *ctx,
                  const SinkDbusOptions *o, const SinkDbusCallbacks *cb, void *userdata) {
        SinkDbus *s = calloc(1, sizeof(*s));
        int r;

        if (!s) {
                sd_bus_flush_close_unref(bus);
                return -ENOMEM;
        }
        s->bus = bus;
        s->event = sd_event_ref(e);
        s->ctx = *ctx;
        s->opt = *o;
        s->cb = *cb;
        s->userdata = userdata;

        r = sd_bus_attach_event(bus, e, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                goto fail;
        r = sd_bus_add_object_vtable(bus, &s->slot_vtable, DBUS_PATH, DBUS_INTERFACE, sink_dbus_vtable, s);
        if (r < 0)
                goto fail;
        r = sd_bus_add_fallback_vtable(bus, &s->slot_sub_vtable, DBUS_SUBSCRIPTION_PREFIX,
                                       DBUS_SUBSCRIPTION_INTERFACE, sink_dbus_subscription_vtable,
                                       sink_dbus_subscription_find, s);
        if (r < 0)
                goto fail;
        r = sd_bus_add_node_enumerator(bus, &s->slot_enumerator, DBUS_SUBSCRIPTION_PREFIX,
                                       sink_dbus_subscription_enumerate, s);
        if (r < 0)
                goto fail;
        r = sd_bus_match_signal(bus, &s->slot_disconnect, "org.freedesktop.DBus.Local", NULL,
                                "org.freedesktop.DBus.Local", "Disconnected", sink_dbus_on_disconnect, s);
        if (r < 0)
                goto fail;
        r = sd_bus_request_name_async(bus, &s->slot_name, DBUS_NAME, 0, sink_dbus_on_name, s);
        if (r < 0)
                goto fail;
        r = sd_event_add_post(e, &s->report_lost, sink_dbus_on_post, s);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_description(s->report_lost, "dbus-report-lost");
        (void) sd_event_source_set_enabled(s->report_lost, SD_EVENT_OFF);
        r = dispatcher_watch_add(ctx->dispatcher, sink_dbus_on_event, NULL, s);
        if (r < 0)
                goto fail;
        s->watch_id = r;
        *ret = s;
        return 0;
fail:
        sink_dbus_free(s);
        return r;
}

SinkDbus *sink_dbus_free(SinkDbus *s) {
        if (!s)
                return NULL;
        if (s->watch_id > 0)
                dispatcher_watch_remove(s->ctx.dispatcher, s->watch_id);
        while (s->peers)
                peer_free(s->peers);
        sd_event_source_disable_unref(s->report_lost);
        sd_bus_slot_unref(s->slot_vtable);
        sd_bus_slot_unref(s->slot_sub_vtable);
        sd_bus_slot_unref(s->slot_enumerator);
        sd_bus_slot_unref(s->slot_name);
        sd_bus_slot_unref(s->slot_disconnect);
        sd_bus_flush_close_unref(s->bus);
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
        stats_section_end(v);
}
