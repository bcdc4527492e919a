/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * UidLimits: how much of each per-user resource every uid holds, so that one
 * user cannot exhaust the broker for the others. One instance, owned by the
 * broker and shared by every sink and by the watch code (SinkContext.limits),
 * counts across connections and across sinks: a user's JSON connections and
 * its subscribing D-Bus connections are one count, and so are its
 * subscriptions on both.
 *
 * Use: call uidlimits_acquire() before creating the resource and refuse the
 * request with "limit-exceeded" when it returns UIDLIMITS_E_EXCEEDED; call
 * uidlimits_release() exactly once when the resource goes (its connection
 * closing included). root (uid 0) is counted but never refused. Lowering a
 * maximum (reload) keeps what is held and refuses new ones until the count is
 * below it. Pure: no I/O, no logging.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

typedef enum UidResource {
        UID_RESOURCE_CLIENTS,       /* JSON connections and subscribing D-Bus connections */
        UID_RESOURCE_SUBSCRIPTIONS, /* subscriptions, on every connection of both sinks */
        UID_RESOURCE_WATCHES,       /* pidfd and ptrace watches */
        _UID_RESOURCE_MAX,
} UidResource;

/* uidlimits_acquire(): the uid holds its maximum already. */
#define UIDLIMITS_E_EXCEEDED 1

typedef struct UidLimits UidLimits;

/* Every maximum starts unlimited (UINT_MAX). */
int uidlimits_new(UidLimits **ret);
UidLimits *uidlimits_free(UidLimits *l);

void uidlimits_set_max(UidLimits *l, UidResource what, unsigned max);
unsigned uidlimits_get_max(const UidLimits *l, UidResource what);

/* Count one more of what for uid: 0; UIDLIMITS_E_EXCEEDED (nothing counted)
 * if uid is not root and holds the maximum already; -ENOMEM; -EINVAL for a
 * what that is no UidResource. */
int uidlimits_acquire(UidLimits *l, UidResource what, uid_t uid);
/* Would uidlimits_acquire() succeed (memory aside)? */
bool uidlimits_may_acquire(const UidLimits *l, UidResource what, uid_t uid);
/* Count one less; releasing what was never acquired is a caller bug and
 * ignored. */
void uidlimits_release(UidLimits *l, UidResource what, uid_t uid);

/* How many of what uid holds now. */
unsigned uidlimits_get(const UidLimits *l, UidResource what, uid_t uid);
/* How many uids hold anything now. */
unsigned uidlimits_get_users(const UidLimits *l);

/* The configuration key of what's maximum ("MaxClientsPerUser", …), for
 * error messages. */
const char *uid_resource_to_key(UidResource what);
