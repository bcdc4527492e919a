/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Process table entries: create, fill (from the reader, or from the parent
 * at fork), enrich events from, and free them, keeping the pid map, the
 * tree and the interned strings in step.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "proctable-internal.h"
#include "proctree.h"

void proc_info_done(ProcInfo *i) {
        free(i->exe);
        free(i->cmdline);
        free(i->cgroup);
        i->exe = i->cmdline = i->cgroup = NULL;
}

Entry *entry_find(const ProcTable *t, pid_t tgid) {
        return (Entry *) pidmap_find(&t->map, tgid);
}

Entry *entry_find_same(const ProcTable *t, pid_t tgid, uint64_t start_time) {
        Entry *e = entry_find(t, tgid);
        if (!e || (start_time && e->pub.start_time && e->pub.start_time != start_time))
                return NULL;
        return e;
}

Entry *entry_new(ProcTable *t, pid_t tgid, uint64_t now_ns) {
        Entry *e;

        if (t->map.n >= t->max_entries) {
                t->stats.full++;
                return NULL;
        }
        if (pidmap_reserve(&t->map) < 0)
                return NULL;
        e = calloc(1, sizeof(*e));
        if (!e)
                return NULL;
        e->pub.tgid = tgid;
        e->pub.born_ns = now_ns;
        e->pub.nthreads = 1;
        e->pub.uid = e->pub.euid = e->pub.gid = e->pub.egid = UINT32_MAX;
        e->seen_gen = t->generation;
        pidmap_put(&t->map, &e->pub);
        return e;
}

void entry_count_threads(Entry *e, const ProcInfo *info, int32_t n) {
        e->pub.nthreads = n > 0 ? n : 1;
        e->proc_read_ns = info->read_ns;
}

/* The kernel makes a change (attaches a thread, names the process at exec)
 * before it stamps and sends the event, and /proc shows every change made
 * before the read began: what the entry read then already includes any
 * event stamped before. Under load the connector's events come long after
 * they were stamped, so a process learned from /proc (a watch, an exec or a
 * thread fork of a process not known yet) meets them after the read. */
bool entry_read_after(const Entry *e, uint64_t ts_ns) {
        return e->proc_read_ns && ts_ns < e->proc_read_ns;
}

void entry_drop_strings(ProcTable *t, ProcEntry *p) {
        p->exe = refstr_unref(&t->strings, p->exe);
        p->cmdline = refstr_unref(&t->strings, p->cmdline);
        p->cgroup = refstr_unref(&t->strings, p->cgroup);
        p->unit = refstr_unref(&t->strings, p->unit);
}

void entry_free(ProcTable *t, Entry *e) {
        ProcEntry *p = &e->pub;

        proctree_unlink(p);
        while (p->first_child)
                proctree_unlink(p->first_child);
        entry_drop_strings(t, p);
        pidmap_remove(&t->map, p->tgid);
        free(e);
}

void entry_forget_names(ProcTable *t, ProcEntry *e) {
        e->comm[0] = 0;
        refstr_set(&t->strings, &e->exe, NULL);
        refstr_set(&t->strings, &e->cmdline, NULL);
}

void entry_set_parent(ProcTable *t, ProcEntry *e, pid_t ppid) {
        Entry *parent = entry_find(t, ppid);
        e->ppid = ppid;
        proctree_link(e, parent ? &parent->pub : NULL);
}

static void entry_set_cgroup(ProcTable *t, ProcEntry *e, const char *cgroup) {
        char buf[256];

        if (streq_ptr(refstr_get(e->cgroup), cgroup))
                return;
        refstr_set(&t->strings, &e->cgroup, cgroup);
        refstr_set(&t->strings, &e->unit, cgroup ? proctable_unit_from_cgroup(cgroup, buf, sizeof(buf)) : NULL);
}

void entry_apply_info(ProcTable *t, Entry *e, const ProcInfo *info, unsigned what) {
        ProcEntry *p = &e->pub;

        if (what & PROC_READ_STAT) {
                p->start_time = info->start_time;
                memcpy(p->comm, info->comm, sizeof(p->comm));
                if (p->ppid != info->ppid || (!p->parent && info->ppid > 0))
                        entry_set_parent(t, p, info->ppid);
        }
        if (what & PROC_READ_STATUS) {
                p->uid = info->uid;
                p->euid = info->euid;
                p->gid = info->gid;
                p->egid = info->egid;
        }
        if (what & PROC_READ_EXE)
                refstr_set(&t->strings, &p->exe, info->exe);
        if (what & PROC_READ_CMDLINE)
                refstr_set(&t->strings, &p->cmdline, info->cmdline);
        if ((what & PROC_READ_CGROUP) && info->cgroup)
                entry_set_cgroup(t, p, info->cgroup);
        if ((what & PROC_READ_NETNS) && info->netns)
                p->netns = info->netns;
}

Entry *entry_load(ProcTable *t, pid_t tgid, uint64_t now_ns) {
        _cleanup_(proc_info_done) ProcInfo info = { 0 };
        Entry *e;

        if (tgid <= 0 || t->reader.read(t->reader.userdata, tgid, PROC_READ_ALL, &info) < 0)
                return NULL;
        e = entry_new(t, tgid, now_ns);
        if (!e)
                return NULL;
        entry_apply_info(t, e, &info, PROC_READ_ALL);
        entry_count_threads(e, &info, (int32_t) info.nthreads);
        return e;
}

Entry *entry_find_or_load(ProcTable *t, pid_t tgid, uint64_t now_ns) {
        Entry *e = entry_find(t, tgid);
        return e ? e : entry_load(t, tgid, now_ns);
}

/* What fork() copies from the parent; no need to ask /proc. */
void entry_inherit(ProcTable *t, ProcEntry *c, ProcEntry *p, pid_t ppid) {
        memcpy(c->comm, p->comm, sizeof(c->comm));
        entry_drop_strings(t, c);
        c->exe = refstr_ref(p->exe);
        c->cmdline = refstr_ref(p->cmdline);
        c->cgroup = refstr_ref(p->cgroup);
        c->unit = refstr_ref(p->unit);
        c->uid = p->uid;
        c->euid = p->euid;
        c->gid = p->gid;
        c->egid = p->egid;
        c->netns = p->netns;
        proctree_link(c, p);
        c->ppid = ppid;
}

void proctable_enrich(const ProcEntry *e, PnEvent *ev) {
        ev->comm = e->comm[0] ? e->comm : NULL;
        ev->exe = refstr_get(e->exe);
        ev->cmdline = refstr_get(e->cmdline);
        ev->cgroup = refstr_get(e->cgroup);
        ev->unit = refstr_get(e->unit);
        ev->netns = e->netns;
        ev->uid = e->uid;
        ev->ppid = e->ppid;
}
