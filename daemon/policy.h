/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Policy: who may see what. One implementation for the JSON socket and
 * D-Bus alike. Subscribers are identified by the kernel (SO_PEERCRED,
 * SO_PEERGROUPS, D-Bus sender credentials), never by what they claim.
 * Root and members of the configured group see every event; anyone else sees
 * the events of processes running with its own (real) uid, and overruns.
 * Pure: no I/O, no logging.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "procnotify/event.h"

typedef struct Policy {
        gid_t group;     /* members see everything; (gid_t) -1 for none */
} Policy;

typedef struct PeerCreds {
        uid_t uid;
        gid_t gid;
        pid_t pid;
        bool privileged; /* root or a member of Policy.group */
} PeerCreds;

void policy_init(Policy *p, gid_t group);

/* Fill *ret for a peer from its kernel credentials (groups: its
 * supplementary groups as the kernel reports them). */
void policy_peer_init(const Policy *p, PeerCreds *ret, uid_t uid, gid_t gid, pid_t pid,
                      const gid_t *groups, size_t n_groups);

/* May this peer see ev? */
bool policy_may_see(const PeerCreds *peer, const PnEvent *ev);
