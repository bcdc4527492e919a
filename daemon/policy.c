/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Policy: who may see and who may act on which process, from kernel
 * credentials only; see policy.h.
 */
#include <stdint.h>

#include "policy.h"

void policy_init(Policy *p, gid_t group) {
        p->group = group;
}

void policy_peer_init(const Policy *p, PeerCreds *ret, uid_t uid, gid_t gid, pid_t pid,
                      const gid_t *groups, size_t n_groups) {
        bool member = p->group != (gid_t) -1 && gid == p->group;

        for (size_t i = 0; !member && p->group != (gid_t) -1 && i < n_groups; i++)
                member = groups[i] == p->group;
        *ret = (PeerCreds){ .uid = uid, .gid = gid, .pid = pid,
                            .privileged = uid == 0 || member };
}

bool policy_may_see(const PeerCreds *peer, const PnEvent *ev) {
        if (peer->privileged || ev->type == PN_EVENT_OVERRUN)
                return true;
        /* A process whose owner is not known is nobody's to see. */
        return ev->uid != UINT32_MAX && ev->uid == peer->uid;
}

bool policy_may_act(const PeerCreds *peer, PolicyAction action, pid_t tgid, uint32_t uid,
                    pid_t broker_pid) {
        bool mine = uid != UINT32_MAX && uid == peer->uid;
        bool root = peer->uid == 0;

        switch (action) {
        case POLICY_ACTION_WATCH:
                return peer->privileged || mine;
        case POLICY_ACTION_WATCH_STOP:
                /* Seeing everything (the group) is not acting on everything. */
                return (root || mine) && tgid > 1 && tgid != broker_pid;
        case POLICY_ACTION_SIGNAL:
                return true;
        case POLICY_ACTION_RUN:
                return peer->privileged && (uid == UINT32_MAX || root || mine);
        default:
                return false;
        }
}
