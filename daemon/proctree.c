/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The process tree (proctree.h): link, unlink and walk entries along their
 * intrusive links, with no allocation and bounded walks.
 */
#include "proctree.h"

void proctree_unlink(ProcEntry *e) {
        if (!e->parent)
                return;
        if (e->prev_sibling)
                e->prev_sibling->next_sibling = e->next_sibling;
        else
                e->parent->first_child = e->next_sibling;
        if (e->next_sibling)
                e->next_sibling->prev_sibling = e->prev_sibling;
        e->parent = e->next_sibling = e->prev_sibling = NULL;
}

void proctree_link(ProcEntry *e, ProcEntry *parent) {
        proctree_unlink(e);
        if (!parent || parent == e)
                return;
        e->parent = parent;
        e->next_sibling = parent->first_child;
        if (parent->first_child)
                parent->first_child->prev_sibling = e;
        parent->first_child = e;
}

bool proctree_is_descendant(const ProcEntry *e, pid_t ancestor) {
        /* Bounded walk: a corrupt loop must not hang the broker. */
        for (unsigned depth = 0; e && e->parent && depth < 4096; depth++) {
                if (e->parent->tgid == ancestor)
                        return true;
                e = e->parent;
        }
        return false;
}

void proctree_foreach_descendant(const ProcEntry *root, size_t max_steps,
                                 void (*cb)(const ProcEntry *e, void *ctx), void *ctx) {
        const ProcEntry *p = root->first_child;

        /* Pre-order walk along the intrusive links, no stack. */
        for (size_t steps = 0; p && steps < max_steps; steps++) {
                cb(p, ctx);
                if (p->first_child) {
                        p = p->first_child;
                        continue;
                }
                while (p && p != root && !p->next_sibling)
                        p = p->parent;
                p = (p && p != root) ? p->next_sibling : NULL;
        }
}
