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
#include <stdint.h>
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

/* What a peer can ask the broker to do, beyond seeing events. */
typedef enum PolicyAction {
        POLICY_ACTION_WATCH,      /* pidfd exit watch of a process */
        POLICY_ACTION_WATCH_STOP, /* ptrace (PTRACE_SEIZE) watch of a process */
        POLICY_ACTION_SIGNAL,     /* signal the peer itself on matching events */
        POLICY_ACTION_RUN,        /* start a supervised child of the broker */
        _POLICY_ACTION_MAX,
} PolicyAction;

/*
 * May peer do action on the process tgid, running with real uid uid
 * (UINT32_MAX: not known)? broker_pid is the broker's own pid. Watches need
 * the process to be the peer's own (or the peer privileged); ptrace watches
 * never take pid 1 or the broker itself; run is for privileged peers only;
 * a signal goes to the peer itself, which it may always ask for (what
 * triggers it is limited by policy_may_see). tgid and uid are ignored for
 * POLICY_ACTION_RUN and POLICY_ACTION_SIGNAL.
 */
bool policy_may_act(const PeerCreds *peer, PolicyAction action, pid_t tgid, uint32_t uid,
                    pid_t broker_pid);
