/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Caps: the capabilities procnotifyd keeps after start-up, as a function of
 * its configuration, and dropping everything else (libcap-ng).
 *
 * The broker keeps running as uid 0 with only these (see README, "Least
 * privilege"):
 *   CAP_NET_ADMIN   the proc connector: SO_RCVBUFFORCE at start, on SIGHUP
 *                   (ReceiveBuffer=) and when the watchdog re-creates the
 *                   socket; listening needs it before Linux 6.6
 *   CAP_SYS_PTRACE  /proc/PID/exe of processes of other users (and of root's,
 *                   whose capabilities exceed the broker's), pidfd and ptrace
 *                   watches
 *   CAP_KILL        signals to subscribers of other uids (pidfd_send_signal)
 *   CAP_SETUID, CAP_SETGID, CAP_SETPCAP  only with [Run] Enabled=yes:
 *                   supervised children run as the user who asked for them,
 *                   and empty their bounding set before exec
 * Everything else goes from the effective, permitted and bounding sets; the
 * inheritable and ambient sets are emptied, and the securebits are locked
 * (noroot) so that uid 0 gains no capability on exec (children the broker
 * starts get none).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* A set of capabilities: bit n is capability n (CAP_KILL = 5, …). */
typedef uint64_t CapMask;
#define CAP_MASK(cap) (UINT64_C(1) << (cap))

/* What the broker needs with configuration c. Pure. */
CapMask caps_needed(const Config *c);

/* "cap_kill cap_net_admin cap_sys_ptrace" ("none" if empty) into buf; the
 * string is truncated to size. Pure. */
void caps_format(CapMask m, char *buf, size_t size);

/* This process's effective, permitted and bounding sets (from the kernel). */
typedef struct CapState {
        CapMask effective, permitted, bounding, inheritable, ambient;
} CapState;
int caps_get_state(CapState *ret);

/*
 * Keep exactly keep (what of it is permitted now) in the effective and
 * permitted sets and, if the process may change it (CAP_SETPCAP), in the
 * bounding set; empty the inheritable and ambient sets; lock the securebits
 * (noroot) where allowed. Returns 0 or -errno (nothing
 * useful was dropped then). A bounding set that cannot be changed (already
 * narrowed by whoever started us, e.g. CapabilityBoundingSet= in the unit)
 * is not an error: caps_get_state() tells what remains.
 */
int caps_drop_to(CapMask keep);
