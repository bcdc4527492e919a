/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SinkSocket: the JSON socket (protocol v1, protocol/PROTOCOL.md). Accepts
 * clients on a Unix stream socket, identifies each by SO_PEERCRED and
 * SO_PEERGROUPS, parses their requests, and writes the events their
 * subscriptions and the policy let through.
 *
 * Nothing a client does can stall the loop or another client: sockets are
 * non-blocking, output goes through a bounded queue per client that is
 * flushed once per loop iteration, a client whose queue is full loses its own
 * events and is told how many (an "overrun" with where "client") when it has
 * room again, and a client that sends requests without reading replies is
 * simply not read from until it does.
 */
#pragma once

#include <stdint.h>

#include <systemd/sd-event.h>

#include "sink-context.h"

typedef struct SinkSocket SinkSocket;

typedef struct SinkSocketOptions {
        unsigned max_clients;
        unsigned max_subscriptions;
        uint64_t queue_bytes;
} SinkSocketOptions;

typedef struct SinkSocketStats {
        uint64_t clients;          /* connected now */
        uint64_t subscriptions;    /* now */
        uint64_t accepted;         /* ever */
        uint64_t refused;          /* over a limit */
        uint64_t events_queued;    /* lines queued to clients */
        uint64_t events_lost;      /* lines dropped at full client queues */
        uint64_t bad_requests;
        uint64_t signals_sent;     /* signals sent to subscribers ("signal") */
        uint64_t signals_failed;   /* that the kernel refused (subscriber gone, queue full) */
        uint64_t signals_withheld; /* the subscriber could not have sent itself (peer_may_signal) */
        uint64_t accept_paused;    /* times accepting stopped for want of descriptors */
} SinkSocketStats;

/*
 * Serve on listen_fd if >= 0 (socket activation: not unlinked at exit),
 * else bind path (creating its directory, refusing if a live broker already
 * answers there). Registers with the dispatcher.
 */
int sink_socket_new(SinkSocket **ret, sd_event *e, const SinkContext *ctx,
                    const SinkSocketOptions *o, const char *path, int listen_fd);
SinkSocket *sink_socket_free(SinkSocket *s);

/* Apply new limits (reload); existing clients keep their subscriptions. */
void sink_socket_set_options(SinkSocket *s, const SinkSocketOptions *o);
/* Remove owner's subscriptions tagged tag (given by the broker through
 * control.h), e.g. when the watch of pid it was for has ended; with
 * a reason, the client is told ("watch-ended"). No-op if the connection is
 * gone. */
void sink_socket_drop_subscription(SinkSocket *s, SinkOwner owner, uint64_t tag, pid_t pid,
                                   const char *reason);
const SinkSocketStats *sink_socket_get_stats(SinkSocket *s);
/* Called (for logging) each time accept() fails for want of descriptors
 * (error: -EMFILE, -ENFILE) and the sink stops accepting: until a client
 * goes, or SINK_SOCKET_ACCEPT_RETRY_MS have passed. */
#define SINK_SOCKET_ACCEPT_RETRY_MS 250
void sink_socket_set_on_fd_shortage(SinkSocket *s, void (*fn)(void *userdata, int error), void *userdata);
/* Visit this sink's statistics as a "socket" section. */
void sink_socket_visit_stats(SinkSocket *s, const StatsVisitor *v);
