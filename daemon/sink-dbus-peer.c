/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SinkDbus's peers and their subscription objects: a peer is a Subscriber
 * (subscriber.h) with a unique bus name, tracked until it leaves the bus;
 * each subscription is an object under DBUS_SUBSCRIPTION_PREFIX, visible to
 * its owner alone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "sink-dbus-internal.h"

static void subscription_done(Subscription *base);

DbusPeer *sink_dbus_peer_free(DbusPeer *p) {
        SinkDbus *s;

        if (!p)
                return NULL;
        s = p->sink;
        if (s->ctx.control.release)
                s->ctx.control.release(s->ctx.userdata, p->owner);
        uidlimits_release(s->ctx.limits, UID_RESOURCE_CLIENTS, p->sub.creds.uid);
        subscriber_done(&p->sub);
        for (DbusPeer **q = &s->peers; *q; q = &(*q)->next)
                if (*q == p) {
                        *q = p->next;
                        break;
                }
        s->stats.peers--;
        sink_dbus_peer_unqueue(s, p);
        sd_bus_slot_unref(p->restore);
        sd_bus_track_unref(p->track);
        free(p->name);
        free(p);
        return NULL;
}

/* The peer's connection left the bus: its subscriptions go with it. */
int sink_dbus_peer_on_track_removed(sd_bus_track *t, void *userdata) {
        DbusPeer *p = userdata;
        /* Our own connection closing drops every track: the peer may well
         * be there still, checked once connected again. */
        if (!sd_bus_is_open(sd_bus_track_get_bus(t))) {
                /* Unreferenced here: sd-bus closes until no track is left. */
                p->track = sd_bus_track_unref(p->track);
                p->live = false;
                return 0;
        }
        sink_dbus_peer_free(p);
        return 0;
}

const PeerCreds *sink_dbus_peer_creds(SinkDbus *s, const char *name) {
        for (DbusPeer *p = s->peers; p; p = p->next)
                if (streq(p->name, name))
                        return &p->sub.creds;
        return NULL;
}

bool sink_dbus_peer_has_signals(SinkDbus *s, const char *name) {
        for (DbusPeer *p = s->peers; p; p = p->next)
                if (streq(p->name, name))
                        return p->sub.signals.pidfd >= 0;
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
                return SINK_DBUS_PEER_E_MAX_CLIENTS;
        /* Counted with the user's JSON connections. */
        r = uidlimits_acquire(s->ctx.limits, UID_RESOURCE_CLIENTS, creds->uid);
        if (r == UIDLIMITS_E_EXCEEDED)
                return SINK_DBUS_PEER_E_USER_LIMIT;
        if (r < 0)
                return r;
        p = calloc(1, sizeof(*p));
        if (!p) {
                uidlimits_release(s->ctx.limits, UID_RESOURCE_CLIENTS, creds->uid);
                return -ENOMEM;
        }
        p->sink = s;
        subscriber_init(&p->sub, creds, s->ctx.limits, &s->subscriber_sink, subscription_done);
        p->live = true;
        p->owner = SINK_OWNER_DBUS | ++s->next_owner;
        p->name = strdup(name);
        if (!p->name) {
                free(p);
                uidlimits_release(s->ctx.limits, UID_RESOURCE_CLIENTS, creds->uid);
                return -ENOMEM;
        }
        r = sd_bus_track_new(s->bus, &p->track, sink_dbus_peer_on_track_removed, p);
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

/* What a subscription of a peer holds besides its Subscription. */
static void subscription_done(Subscription *base) {
        DbusSubscription *sub = (DbusSubscription *) base;

        sub->peer->sink->stats.subscriptions--;
        for (size_t i = 0; sub->events && sub->events[i]; i++)
                free(sub->events[i]);
        free(sub->events);
        free(sub->path);
}

int sink_dbus_subscription_add(DbusPeer *p, Filter *filter, char **events, Follow *follow,
                               DbusSubscription **ret) {
        SinkDbus *s = p->sink;
        _cleanup_free_ char *path = NULL;
        Subscription *base;
        int r;

        if (asprintf(&path, DBUS_SUBSCRIPTION_PREFIX "/%llu", (unsigned long long) s->next_sub_id + 1) < 0)
                return -ENOMEM;
        r = subscriber_add(&p->sub, s->opt.max_subscriptions, sizeof(DbusSubscription), s->next_sub_id + 1,
                           0, filter, follow, &base);
        if (r != 0)
                return r;
        s->next_sub_id++;
        s->stats.subscriptions++;
        *ret = (DbusSubscription *) base;
        (*ret)->peer = p;
        (*ret)->path = TAKE_PTR(path);
        (*ret)->events = events;
        return 0;
}

void sink_dbus_subscription_free(DbusSubscription *sub) {
        subscriber_remove(&sub->peer->sub, &sub->base);
}

void sink_dbus_drop_subscription(SinkDbus *s, SinkOwner owner, uint64_t tag, pid_t pid,
                                 const char *reason) {
        for (DbusPeer *p = s->peers; p; p = p->next) {
                if (p->owner != owner)
                        continue;
                for (DbusSubscription *sub = (DbusSubscription *) p->sub.subs, *next; sub; sub = next) {
                        next = (DbusSubscription *) sub->base.next;
                        if (sub->base.tag != tag)
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
                DBUS_PEER_FOREACH_SUB(sub, p)
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
                n += p->sub.n_subs;
        v = calloc(n + 1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (DbusPeer *p = s->peers; p; p = p->next)
                DBUS_PEER_FOREACH_SUB(sub, p) {
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
