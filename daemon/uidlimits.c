/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * UidLimits: per-user counts of clients, subscriptions and watches; see
 * uidlimits.h.
 *
 * An open-addressing hash table keyed by uid (linear probing, deletion by
 * backward shift, so there are no tombstones). Only uids that hold
 * something have an entry, and everything they hold belongs to a connection,
 * so the table is bounded by the number of connections.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/macro.h"
#include "uidlimits.h"

#define UIDLIMITS_MIN_SLOTS 16

typedef struct UidEntry {
        bool used;
        uid_t uid;
        unsigned count[_UID_RESOURCE_MAX];
} UidEntry;

struct UidLimits {
        UidEntry *slots;
        size_t n_slots; /* a power of two */
        size_t n_used;
        unsigned max[_UID_RESOURCE_MAX];
};

static size_t slot_of(const UidLimits *l, uid_t uid) {
        /* Fibonacci hashing: uids are often consecutive. */
        return (size_t) (((uint64_t) uid * UINT64_C(11400714819323198485)) >> 32) & (l->n_slots - 1);
}

static UidEntry *uidlimits_find(const UidLimits *l, uid_t uid) {
        for (size_t i = slot_of(l, uid);; i = (i + 1) & (l->n_slots - 1)) {
                if (!l->slots[i].used)
                        return NULL;
                if (l->slots[i].uid == uid)
                        return &l->slots[i];
        }
}

static UidEntry *uidlimits_insert_slot(UidLimits *l, uid_t uid) {
        size_t i = slot_of(l, uid);
        while (l->slots[i].used)
                i = (i + 1) & (l->n_slots - 1);
        l->slots[i] = (UidEntry){ .used = true, .uid = uid };
        l->n_used++;
        return &l->slots[i];
}

static int uidlimits_grow(UidLimits *l) {
        size_t n = l->n_slots * 2;
        UidEntry *old = l->slots, *slots = calloc(n, sizeof(*slots));
        size_t n_old = l->n_slots;

        if (!slots)
                return -ENOMEM;
        l->slots = slots;
        l->n_slots = n;
        l->n_used = 0;
        for (size_t i = 0; i < n_old; i++)
                if (old[i].used)
                        *uidlimits_insert_slot(l, old[i].uid) = old[i];
        free(old);
        return 0;
}

/* Remove the entry in slot i, shifting back the entries of its cluster
 * that would no longer be found. */
static void uidlimits_remove_slot(UidLimits *l, size_t i) {
        size_t mask = l->n_slots - 1;

        for (size_t j = (i + 1) & mask; l->slots[j].used; j = (j + 1) & mask) {
                size_t home = slot_of(l, l->slots[j].uid);
                /* Entry j may move to the hole at i if its home is not in (i, j]. */
                bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
                if (stays)
                        continue;
                l->slots[i] = l->slots[j];
                i = j;
        }
        l->slots[i] = (UidEntry){ 0 };
        l->n_used--;
}

int uidlimits_new(UidLimits **ret) {
        UidLimits *l = calloc(1, sizeof(*l));

        if (!l)
                return -ENOMEM;
        l->n_slots = UIDLIMITS_MIN_SLOTS;
        l->slots = calloc(l->n_slots, sizeof(*l->slots));
        if (!l->slots) {
                free(l);
                return -ENOMEM;
        }
        for (int w = 0; w < _UID_RESOURCE_MAX; w++)
                l->max[w] = UINT_MAX;
        *ret = l;
        return 0;
}

UidLimits *uidlimits_free(UidLimits *l) {
        if (!l)
                return NULL;
        free(l->slots);
        free(l);
        return NULL;
}

void uidlimits_set_max(UidLimits *l, UidResource what, unsigned max) {
        if (what >= 0 && what < _UID_RESOURCE_MAX)
                l->max[what] = max;
}

unsigned uidlimits_get_max(const UidLimits *l, UidResource what) {
        return what >= 0 && what < _UID_RESOURCE_MAX ? l->max[what] : 0;
}

unsigned uidlimits_get(const UidLimits *l, UidResource what, uid_t uid) {
        const UidEntry *e;

        if (what < 0 || what >= _UID_RESOURCE_MAX)
                return 0;
        e = uidlimits_find(l, uid);
        return e ? e->count[what] : 0;
}

unsigned uidlimits_get_users(const UidLimits *l) {
        return (unsigned) l->n_used;
}

bool uidlimits_may_acquire(const UidLimits *l, UidResource what, uid_t uid) {
        if (what < 0 || what >= _UID_RESOURCE_MAX)
                return false;
        if (uid == 0)
                return uidlimits_get(l, what, uid) < UINT_MAX;
        return uidlimits_get(l, what, uid) < l->max[what];
}

int uidlimits_acquire(UidLimits *l, UidResource what, uid_t uid) {
        UidEntry *e;

        if (what < 0 || what >= _UID_RESOURCE_MAX)
                return -EINVAL; /* a caller's bug, not a limit */
        if (!uidlimits_may_acquire(l, what, uid))
                return UIDLIMITS_E_EXCEEDED;
        e = uidlimits_find(l, uid);
        if (!e) {
                /* Keep the load at most one half: probes stay short. */
                if ((l->n_used + 1) * 2 > l->n_slots) {
                        int r = uidlimits_grow(l);
                        if (r < 0)
                                return r;
                }
                e = uidlimits_insert_slot(l, uid);
        }
        e->count[what]++;
        return 0;
}

void uidlimits_release(UidLimits *l, UidResource what, uid_t uid) {
        UidEntry *e;

        if (what < 0 || what >= _UID_RESOURCE_MAX)
                return;
        e = uidlimits_find(l, uid);
        if (!e || e->count[what] == 0)
                return;
        e->count[what]--;
        for (int w = 0; w < _UID_RESOURCE_MAX; w++)
                if (e->count[w] > 0)
                        return;
        uidlimits_remove_slot(l, (size_t) (e - l->slots));
}

const char *uid_resource_to_key(UidResource what) {
        static const char *const keys[_UID_RESOURCE_MAX] = {
                [UID_RESOURCE_CLIENTS] = "MaxClientsPerUser",
                [UID_RESOURCE_SUBSCRIPTIONS] = "MaxSubscriptionsPerUser",
                [UID_RESOURCE_WATCHES] = "MaxWatchesPerUser",
        };
        return what >= 0 && what < _UID_RESOURCE_MAX ? keys[what] : NULL;
}
