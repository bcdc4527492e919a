/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SinkContext: what every sink (JSON socket, D-Bus) needs from the broker,
 * without knowing the broker: the policy, the per-uid limits, the process
 * tree for descendants_of, identity for hello, kernel features and statistics. The broker owns
 * it and outlives every sink.
 */
#pragma once

#include "control.h"
#include "dispatcher.h"
#include "follow.h"
#include "policy.h"
#include "stats.h"
#include "uidlimits.h"
#include "protocol/filter.h"
#include "protocol/jsonbuf.h"
#include "protocol/reply.h"
#include "protocol/request.h"

/*
 * Who holds what the broker keeps for a connection (watches, supervised
 * children): an id unique for the broker's lifetime, across sinks. Sinks
 * draw them from their own range.
 */
typedef uint64_t SinkOwner;

typedef struct SubscriberSet SubscriberSet;
#define SINK_OWNER_SOCKET (UINT64_C(1) << 56)
#define SINK_OWNER_DBUS (UINT64_C(2) << 56)

/*
 * The ops a sink does not serve itself (watch, unwatch, run, children,
 * kill) go to the broker. Both callbacks may be NULL (the op is then
 * "unknown-op").
 */
typedef struct SinkControl {
        /* Serve req for peer (kernel credentials) on behalf of owner, and
         * answer slot (control.h), now or later. The sink keeps its own
         * reference to slot and cancels it if the connection goes first. */
        void (*request)(void *userdata, const PeerCreds *peer, SinkOwner owner, const Request *req,
                        ControlSlot *slot);
        /* owner's connection is gone: release everything it holds. */
        void (*release)(void *userdata, SinkOwner owner);
} SinkControl;

typedef struct SinkContext {
        const Policy *policy;
        /* Per-uid counts of clients, subscriptions and watches, shared by
         * every sink and the watch code: acquire before creating, release
         * when it goes (see uidlimits.h). */
        UidLimits *limits;
        FilterContext filter;      /* descendants_of through the process table */
        Dispatcher *dispatcher;    /* for the current seq */
        SubscriberSet *subscribers; /* every sink's subscribers, driven by the dispatcher */
        const char *version;
        const char *boot_id;
        const char *instance_id;
        const KernelFeatures *features;
        /* A new follow of process pid (subscribe "follow"), seeded with its
         * descendants from the process table, and pid's uid for the policy
         * check. 0, -ESRCH if the broker knows no such process, -ENOMEM. */
        int (*follow_new)(void *userdata, pid_t pid, Follow **ret, uint32_t *ret_uid);
        SinkControl control;       /* ops served by the broker */
        /* Walk every statistic of the broker and all its sinks. */
        void (*visit_stats)(void *userdata, const StatsVisitor *v);
        void *userdata;
} SinkContext;

/* Why a subscription cannot be made as asked (small positive, STYLE.md). */
enum {
        SINK_CONTEXT_E_FOLLOW_LIMIT = 1, /* FOLLOW_MAX_PER_CONNECTION follows held already */
        SINK_CONTEXT_E_NOT_FOUND,        /* no such process, or one the subscriber may not see (alike) */
        SINK_CONTEXT_E_NO_NETNS,         /* a "netns" name that names no namespace */
};

/*
 * Turn the network namespace names of f's "netns" key into inodes (names
 * under /run/netns, as they are now). 0; SINK_CONTEXT_E_NO_NETNS; a
 * negative errno. Whatever is not 0 comes with a message in msg.
 */
int sink_context_resolve_netns(Filter *f, char *msg, size_t size);

/*
 * A follow of pid for a subscriber with creds that holds n_follows already,
 * seeded through ctx->follow_new. 0 and *ret; SINK_CONTEXT_E_FOLLOW_LIMIT;
 * SINK_CONTEXT_E_NOT_FOUND; a negative errno. Whatever is not 0 comes with a
 * message in msg.
 */
int sink_context_follow_new(const SinkContext *ctx, const PeerCreds *creds, pid_t pid, size_t n_follows,
                            Follow **ret, char *msg, size_t size);

/* The protocol's error code (PN_ERR_*) for a nonzero answer of the two above. */
const char *sink_context_error_code(int r);

/*
 * What a subscriber lost and was not told yet, in both sinks: how many of
 * its events, from which seq to which. sink_loss_add() counts n more lost
 * from first to last (seqs; 0: none, as for a report of its own);
 * sink_loss_overrun() is the client overrun event that tells it.
 */
typedef struct SinkLoss {
        uint64_t lost, first_seq, last_seq;
} SinkLoss;

void sink_loss_add(SinkLoss *l, uint64_t n, uint64_t first_seq, uint64_t last_seq);
void sink_loss_overrun(const SinkLoss *l, PnEvent *ret);
