/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * PidMap: the process table's index, an open-addressing hash map from tgid
 * to its ProcEntry (linear probing, backward-shift deletion, no tombstones).
 * It does not own the entries.
 */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "proctable.h"

typedef struct PidMap {
        ProcEntry **slots;
        size_t nslots; /* power of two */
        size_t n;
} PidMap;

/* nslots: a power of two. 0 or -ENOMEM. */
int pidmap_init(PidMap *m, size_t nslots);
void pidmap_done(PidMap *m);
ProcEntry *pidmap_find(const PidMap *m, pid_t tgid);
/* Make room for one more entry (the map stays at most half full): 0 or -ENOMEM. */
int pidmap_reserve(PidMap *m);
/* Add e, whose tgid the map must not hold yet; after pidmap_reserve(). */
void pidmap_put(PidMap *m, ProcEntry *e);
void pidmap_remove(PidMap *m, pid_t tgid);
