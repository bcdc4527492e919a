/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * PidMap (pidmap.h): find a process table entry by tgid in O(1).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "pidmap.h"

static size_t slot_of(const PidMap *m, pid_t tgid) {
        return ((uint32_t) tgid * 2654435761u) & (m->nslots - 1);
}

int pidmap_init(PidMap *m, size_t nslots) {
        m->slots = calloc(nslots, sizeof(*m->slots));
        if (!m->slots)
                return -ENOMEM;
        m->nslots = nslots;
        m->n = 0;
        return 0;
}

void pidmap_done(PidMap *m) {
        free(m->slots);
        *m = (PidMap){ 0 };
}

ProcEntry *pidmap_find(const PidMap *m, pid_t tgid) {
        for (size_t i = slot_of(m, tgid);; i = (i + 1) & (m->nslots - 1)) {
                ProcEntry *e = m->slots[i];
                if (!e || e->tgid == tgid)
                        return e;
        }
}

void pidmap_put(PidMap *m, ProcEntry *e) {
        size_t i = slot_of(m, e->tgid);
        while (m->slots[i])
                i = (i + 1) & (m->nslots - 1);
        m->slots[i] = e;
        m->n++;
}

int pidmap_reserve(PidMap *m) {
        PidMap bigger;

        if ((m->n + 1) * 2 <= m->nslots)
                return 0;
        if (pidmap_init(&bigger, m->nslots * 2) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < m->nslots; i++)
                if (m->slots[i])
                        pidmap_put(&bigger, m->slots[i]);
        free(m->slots);
        *m = bigger;
        return 0;
}

void pidmap_remove(PidMap *m, pid_t tgid) {
        size_t mask = m->nslots - 1, i = slot_of(m, tgid);

        while (m->slots[i] && m->slots[i]->tgid != tgid)
                i = (i + 1) & mask;
        if (!m->slots[i])
                return;
        m->slots[i] = NULL;
        m->n--;
        /* Backward-shift deletion keeps probe chains intact without tombstones. */
        for (size_t j = (i + 1) & mask; m->slots[j]; j = (j + 1) & mask) {
                size_t home = slot_of(m, m->slots[j]->tgid);
                /* Move j to i if its home is not cyclically within (i, j]. */
                if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
                        m->slots[i] = m->slots[j];
                        m->slots[j] = NULL;
                        i = j;
                }
        }
}
