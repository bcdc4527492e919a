/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SinkDbus: org.procnotify.Broker1 on a bus. Owns the bus connection (on the
 * broker's sd-event loop), the name, /org/procnotify/Broker1 and one object
 * per subscription. Events go out as typed signals sent unicast to each
 * subscriber, filtered by the same policy and filter code as the JSON
 * socket. A subscription dies with its owner's connection.
 *
 * Callers are identified by the credentials the bus reports for their
 * connection (GetConnectionCredentials: the uid and supplementary groups the
 * kernel gave the bus for the caller's socket, SO_PEERCRED/SO_PEERGROUPS),
 * asked asynchronously: nothing here blocks the loop, and nothing the caller
 * sends is taken as its identity. A subscribing connection counts against
 * its user's MaxClientsPerUser and each subscription against
 * MaxSubscriptionsPerUser, together with the user's JSON connections
 * (SinkContext.limits).
 */
#pragma once

#include <stdint.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "sink-context.h"

#define DBUS_NAME "org.procnotify.Broker1"
#define DBUS_PATH "/org/procnotify/Broker1"
#define DBUS_INTERFACE "org.procnotify.Broker1"
#define DBUS_SUBSCRIPTION_INTERFACE "org.procnotify.Subscription1"
#define DBUS_SUBSCRIPTION_PREFIX "/org/procnotify/Broker1/subscription"

typedef struct SinkDbus SinkDbus;

typedef struct SinkDbusOptions {
        unsigned max_peers;          /* subscribing connections in all */
        unsigned max_subscriptions;  /* per connection */
        uint64_t queue_bytes;        /* signals waiting for one peer, in bytes (ClientQueue=) */
} SinkDbusOptions;

typedef struct SinkDbusStats {
        uint64_t peers;              /* subscribing connections now */
        uint64_t subscriptions;      /* now */
        uint64_t signals_sent;
        uint64_t signals_lost;       /* dropped: the peer's queue was full, the bus away, a send failed */
        uint64_t bad_calls;
        uint64_t unix_signals_sent;   /* Unix signals sent to subscribers ("signal") */
        uint64_t unix_signals_failed; /* that the kernel refused (subscriber gone, queue full) */
        uint64_t reconnects;          /* times the bus was connected again after losing it */
        uint64_t unix_signals_withheld; /* the subscriber could not have sent itself */
} SinkDbusStats;

/*
 * Serve on an already connected bus (taken over). Requests the name
 * asynchronously: on_ready is called once it is owned; on_lost (then the sink
 * is useless and should be freed, outside this call) if the name cannot be
 * had or the bus goes away before it was. Once it was owned, a lost
 * connection (or name) is made again: on_disconnected says why, connect is
 * asked for a new connection to the same bus after a backoff (100 ms
 * doubling to 10 s, never blocking), on_ready comes again once the name is
 * owned, and subscribers still on the bus keep their subscriptions.
 */
typedef struct SinkDbusCallbacks {
        int (*connect)(void *userdata, sd_bus **ret);
        void (*on_ready)(void *userdata);
        void (*on_lost)(void *userdata, const char *why);
        void (*on_disconnected)(void *userdata, const char *why);
} SinkDbusCallbacks;

int sink_dbus_new(SinkDbus **ret, sd_bus *bus, sd_event *e, const SinkContext *ctx,
                  const SinkDbusOptions *o, const SinkDbusCallbacks *cb, void *userdata);
SinkDbus *sink_dbus_free(SinkDbus *s);

void sink_dbus_set_options(SinkDbus *s, const SinkDbusOptions *o);
/* Visit this sink's statistics as a "dbus" section. */
void sink_dbus_visit_stats(SinkDbus *s, const StatsVisitor *v);
/* Remove owner's subscriptions tagged tag (its watch of pid ended); with a
 * reason, the peer is told (WatchEnded). No-op if the peer is gone. */
void sink_dbus_drop_subscription(SinkDbus *s, SinkOwner owner, uint64_t tag, pid_t pid,
                                 const char *reason);
