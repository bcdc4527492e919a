/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The process tree: intrusive parent / child / sibling links in ProcEntry,
 * so that a parent's exit finds its children, and a follow its
 * descendants, without a scan of the table.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "proctable.h"

/* Make e a child of parent (none: NULL, or e itself), out of its old place. */
void proctree_link(ProcEntry *e, ProcEntry *parent);
void proctree_unlink(ProcEntry *e);
/* Is e a (transitive) child of the process ancestor? */
bool proctree_is_descendant(const ProcEntry *e, pid_t ancestor);
/* Call cb for every descendant of root (not root), parents first; at most
 * max_steps of them, so that a corrupt loop cannot hang the broker. */
void proctree_foreach_descendant(const ProcEntry *root, size_t max_steps,
                                 void (*cb)(const ProcEntry *e, void *ctx), void *ctx);
