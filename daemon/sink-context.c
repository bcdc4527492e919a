/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What both sinks need alike to create a subscription (network namespace
 * names resolved, the follow of a service seeded: PROTOCOL.md, "Following
 * a service") and the loss count both keep; see sink-context.h.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/netns.h"
#include "protocol/request.h"
#include "sink-context.h"

int sink_context_follow_new(const SinkContext *ctx, const PeerCreds *creds, pid_t pid, size_t n_follows,
                            Follow **ret, char *msg, size_t size) {
        Follow *follow = NULL;
        uint32_t uid = UINT32_MAX;
        int k;

        if (n_follows >= FOLLOW_MAX_PER_CONNECTION) {
                snprintf(msg, size, "at most %d subscriptions with \"follow\" per connection",
                         FOLLOW_MAX_PER_CONNECTION);
                return SINK_CONTEXT_E_FOLLOW_LIMIT;
        }
        k = ctx->follow_new(ctx->userdata, pid, &follow, &uid);
        if (k == -ENOMEM) {
                snprintf(msg, size, "out of memory");
                return k;
        }
        /* Not known and not visible read the same: nothing leaks. */
        PnEvent probe = { .type = PN_EVENT_FORK, .pid = pid, .tgid = pid, .uid = uid };
        if (k < 0 || !policy_may_see(creds, &probe)) {
                follow_free(follow);
                snprintf(msg, size, "match.follow: no process %d that this connection may see", (int) pid);
                return SINK_CONTEXT_E_NOT_FOUND;
        }
        *ret = follow;
        return 0;
}

int sink_context_resolve_netns(Filter *f, char *msg, size_t size) {
        int k;

        if (!filter_has_netns_names(f))
                return 0;
        k = filter_resolve_netns(f, netns_inode_by_name, NULL, msg, size);
        if (k == -EINVAL)
                return SINK_CONTEXT_E_NO_NETNS; /* msg says which name */
        if (k < 0) {
                snprintf(msg, size, "%s", strerror(-k));
                return k;
        }
        return 0;
}

const char *sink_context_error_code(int r) {
        switch (r) {
        case SINK_CONTEXT_E_FOLLOW_LIMIT:
                return PN_ERR_LIMIT_EXCEEDED;
        case SINK_CONTEXT_E_NOT_FOUND:
                return PN_ERR_NOT_FOUND;
        case SINK_CONTEXT_E_NO_NETNS:
                return PN_ERR_INVALID_FILTER;
        default:
                return PN_ERR_INTERNAL;
        }
}

void sink_loss_add(SinkLoss *l, uint64_t n, uint64_t first_seq, uint64_t last_seq) {
        if (n == 0)
                return;
        if (first_seq && (l->lost == 0 || !l->first_seq || first_seq < l->first_seq))
                l->first_seq = first_seq;
        if (last_seq > l->last_seq || l->lost == 0)
                l->last_seq = last_seq;
        l->lost += n;
}

void sink_loss_overrun(const SinkLoss *l, PnEvent *ret) {
        *ret = (PnEvent){
                .type = PN_EVENT_OVERRUN,
                .ts_ns = clock_ns(CLOCK_MONOTONIC),
                .time_ns = clock_ns(CLOCK_REALTIME),
                .overrun = { .lost = l->lost, .where = PN_OVERRUN_CLIENT,
                             .first_seq = l->first_seq, .last_seq = l->last_seq },
        };
}
