/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Policy: who may see what. One implementation for the JSON socket and
 * D-Bus alike. Subscribers are identified by the kernel (SO_PEERCRED,
 * SO_PEERGROUPS, D-Bus sender credentials), never by what they claim.
 * Root and members of the configured group see every event; anyone else sees
 * the events of processes running with its own (real) uid, and overruns
 * (errors are replies to a connection's own requests, never events). A
 * subscription's filter is applied after policy_may_see(), so it can only
 * narrow what a peer sees. Seeing is not acting: only root acts on processes
 * of other users (ptrace watches) or starts children as another user.
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
 * supplementary groups as the kernel reports them). Signals to a peer go
 * through a pidfd its sink holds (peer-pidfd.h), never through pid. */
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
 * May peer do action? broker_pid is the broker's own pid. Refuse with
 * "access-denied" (D-Bus: org.procnotify.Broker1.Error.AccessDenied) when
 * not.
 *
 * POLICY_ACTION_WATCH: tgid runs with real uid uid (UINT32_MAX: not known).
 *   The peer's own process, or any when privileged (a watch only tells what
 *   the peer may see anyway).
 * POLICY_ACTION_WATCH_STOP: as WATCH, but a process of another uid only for
 *   root (seizing a process keeps its owner from debugging it: that is
 *   acting, not seeing), and never pid 1 or the broker itself. Pass
 *   UINT32_MAX as uid unless the real, effective and saved uids are all the
 *   same, so that a setuid program is nobody's own.
 * POLICY_ACTION_RUN: privileged peers only. uid is the user the child is
 *   to run as, or UINT32_MAX to ask only whether the peer may use run at
 *   all (list and signal its children, say); with a uid, a member of the
 *   group may run only as itself and root as anyone: anything else would
 *   hand out another user's rights, or root's.
 * POLICY_ACTION_SIGNAL: a signal to the peer itself, which it may always ask
 *   for (what triggers it is limited by policy_may_see); tgid and uid are
 *   ignored.
 */
bool policy_may_act(const PeerCreds *peer, PolicyAction action, pid_t tgid, uint32_t uid,
                    pid_t broker_pid);
