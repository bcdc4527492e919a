/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What sink-dbus.c (delivery, peers, subscriptions) and sink-dbus-vtable.c
 * (the bus-facing methods and properties) share. Not for other files.
 */
#pragma once

#include "peer-pidfd.h"
#include "protocol/filter.h"
#include "sink-dbus.h"
#include "subscriber-set.h"
#include "subscriber.h"

typedef struct DbusPeer DbusPeer;

/* A signal built for a peer and waiting in its own queue. */
typedef struct DbusQueued {
        sd_bus_message *m;
        uint32_t bytes;   /* its size as counted against the queue and the window */
        SinkLoss loss;    /* what dropping it unsent loses: its event, or the loss it tells */
        bool report;      /* an Overrun: that loss was counted when it happened */
} DbusQueued;

/* A Peer.Ping sent to a peer behind its signals: its reply says that the
 * peer has read every signal sent before it (mark, in bytes sent). */
typedef struct DbusPing {
        DbusPeer *peer;
        sd_bus_slot *slot;  /* NULL: unused */
        uint64_t mark;
} DbusPing;

#define DBUS_PEER_PINGS 4

/* A subscription (its id broker-wide, in the object path) and what the bus
 * needs besides. */
typedef struct DbusSubscription {
        Subscription base; /* first: a DbusSubscription is its Subscription */
        DbusPeer *peer;
        char *path;
        char **events;    /* as given, for the Events property */
} DbusSubscription;

/* One subscribing connection. */
struct DbusPeer {
        SinkDbus *sink;
        char *name;        /* unique bus name */
        Subscriber sub;    /* credentials, subscriptions, signals, loss */
        SinkOwner owner;   /* what the broker keeps for it (watches) */
        sd_bus_track *track;
        bool live;         /* on the current bus connection (checked after a reconnect) */
        sd_bus_slot *restore; /* the check of a reconnect, while it runs */

        /* Its own queue of signals not yet handed to sd-bus (a ring). */
        DbusQueued *q;
        size_t q_head, q_len, q_cap;
        uint64_t q_bytes;
        /* Bytes handed to sd-bus for it, ever; those its pings' replies
         * showed read; sent at the last ping. */
        uint64_t sent, acked, ping_mark;
        DbusPing pings[DBUS_PEER_PINGS];
        DbusPeer *ready_next, *ready_prev; /* in SinkDbus.ready: queued, and room to send */
        bool ready;
        DbusPeer *next;
};

struct SinkDbus {
        sd_bus *bus;
        sd_event *event;
        SinkContext ctx;
        SinkDbusOptions opt;
        SinkDbusStats stats;
        SubscriberSink subscriber_sink; /* this sink as the SubscriberSet drives it */
        uint64_t next_sub_id;
        uint64_t next_owner;
        DbusPeer *peers;
        DbusPeer *ready_head, *ready_tail; /* peers to send from, round-robin */
        sd_bus_slot *slot_vtable, *slot_sub_vtable, *slot_enumerator, *slot_name,
                *slot_disconnect;
        sd_event_source *pump;      /* post source, on while some peer is ready */
        sd_event_source *reconnect; /* timer, while the bus is away */
        uint64_t backoff_usec;
        bool connected;             /* the name is owned on s->bus */
        bool ever_ready;            /* it was once: a lost bus is reconnected */
        SinkDbusCallbacks cb;
        void *userdata;
        struct DbusCall *calls;     /* control calls the broker has not answered yet */
};

extern const sd_bus_vtable sink_dbus_vtable[];
extern const sd_bus_vtable sink_dbus_subscription_vtable[];

int sink_dbus_subscription_find(sd_bus *bus, const char *path, const char *iface, void *userdata,
                                void **found, sd_bus_error *error);
int sink_dbus_subscription_enumerate(sd_bus *bus, const char *prefix, void *userdata,
                                     char ***nodes, sd_bus_error *error);

/* The signal of ev to p (sink-dbus-encode.c), and the bytes it counts for
 * against p's queue and window. */
int sink_dbus_build_event(SinkDbus *s, DbusPeer *p, const PnEvent *ev, sd_bus_message **ret);
uint32_t sink_dbus_signal_bytes(const DbusPeer *p, const PnEvent *ev);

/* Drop what p has queued, uncounted (it goes), and its pings. */
void sink_dbus_peer_unqueue(SinkDbus *s, DbusPeer *p);
/* p goes: the broker releases what it held, its subscriptions go. */
DbusPeer *sink_dbus_peer_free(DbusPeer *p);
/* sd_bus_track callback of a peer (userdata): it left the bus. */
int sink_dbus_peer_on_track_removed(sd_bus_track *t, void *userdata);

/* Why sink_dbus_peer_get() refused a new peer (small positive, STYLE.md). */
enum {
        SINK_DBUS_PEER_E_MAX_CLIENTS = 1, /* MaxClients subscribing connections served already */
        SINK_DBUS_PEER_E_USER_LIMIT,      /* the caller's user is at MaxClientsPerUser */
};
/* Find or create the peer for a caller with these credentials: 0 and
 * *ret, SINK_DBUS_PEER_E_*, or negative errno. */
int sink_dbus_peer_get(SinkDbus *s, const char *name, const PeerCreds *creds, DbusPeer **ret);
/* The credentials in a GetConnectionCredentials reply: 0, or negative
 * errno (-EBADMSG: no uid in it). */
int sink_dbus_read_creds(sd_bus_message *reply, const Policy *policy, PeerCreds *ret, int *ret_pidfd);
/* The credentials of a known peer, or NULL. */
const PeerCreds *sink_dbus_peer_creds(SinkDbus *s, const char *name);
/* Whether the known peer name has its process's pidfd for signals. */
bool sink_dbus_peer_has_signals(SinkDbus *s, const char *name);
/* Takes filter, events and follow (may be NULL) on success. SUBSCRIBER_E_*
 * (subscriber_limit_message() says which limit), -ENOMEM. */
int sink_dbus_subscription_add(DbusPeer *p, Filter *filter, char **events, Follow *follow,
                               DbusSubscription **ret);
/* The subscriptions of p, in order. */
#define DBUS_PEER_FOREACH_SUB(sub, p) \
        for (DbusSubscription *sub = (DbusSubscription *) (p)->sub.subs; sub; \
             sub = (DbusSubscription *) sub->base.next)
void sink_dbus_subscription_free(DbusSubscription *sub);
DbusSubscription *sink_dbus_subscription_by_path(SinkDbus *s, const char *path);

/* --- sink-dbus-control.c: Watch, Unwatch, Run, ListChildren, Kill --- */

/* The D-Bus error name of a protocol error code. */
const char *sink_dbus_error_name(const char *code);
/* Serve req (Watch, Unwatch, Run, ListChildren, Kill) for peer through the
 * broker, and answer call with its typed result, now or later. */
int sink_dbus_control_serve(SinkDbus *s, DbusPeer *peer, sd_bus_message *call, const Request *req);
/* The sink goes: the calls not answered yet never will be. */
void sink_dbus_control_cancel_all(SinkDbus *s);
int sink_dbus_method_watch(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);
int sink_dbus_method_unwatch(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);
int sink_dbus_method_run(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);
int sink_dbus_method_list_children(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);
int sink_dbus_method_kill(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);

/* --- sink-dbus-vtable.c, for the control methods --- */

/* One variant of an a{sv} (what: "match", "options"; key: its key) as a
 * JSON value; NULL with the reason in error. */
struct json_object *sink_dbus_read_variant(sd_bus_message *m, const char *what, const char *key,
                                           char *error, size_t size);
/* Serve req (taken) for the caller of m once the bus told who it is. */
int sink_dbus_call_broker(SinkDbus *s, sd_bus_message *m, Request *req);
