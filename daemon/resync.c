/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Resync: reconcile the process table with the reader's list of every live
 * process (at the start, and after the kernel dropped connector messages).
 * New processes are added silently; processes gone unseen are reported as
 * exits (status unknown) after a grace period for their late exit event.
 */
#include "common/macro.h"
#include "proctable-internal.h"
#include "proctree.h"

typedef struct ResyncCtx {
        ProcTable *t;
        uint64_t now_ns;
        ProcTableEmitFn emit;
        void *userdata;
} ResyncCtx;

static int resync_one(pid_t tgid, void *userdata) {
        ResyncCtx *c = userdata;
        ProcTable *t = c->t;
        _cleanup_(proc_info_done) ProcInfo info = { 0 };
        Entry *e;

        if (t->reader.read(t->reader.userdata, tgid, PROC_READ_ALL, &info) < 0)
                return 0; /* gone meanwhile */
        e = entry_find(t, tgid);
        if (e && e->pub.start_time && info.start_time && e->pub.start_time != info.start_time) {
                /* Same pid, another process: the one we knew ended unseen. */
                process_ended(t, e, -1, PN_SOURCE_PROCFS, c->now_ns, c->now_ns, c->emit, c->userdata);
                e = NULL;
        }
        /* A zombie whose threads are all gone has ended; /proc lists it only
         * until its parent reaps it. Never (re-)add one: its exit was seen
         * (a second, inferred one would follow when it is reaped) or lost.
         * An entry for it is left unseen here, so it counts as vanished: its
         * exit if still on its way, else an inferred one after the grace. */
        if (info.state == 'Z' && info.nthreads <= 1)
                return 0;
        if (!e) {
                e = entry_new(t, tgid, c->now_ns);
                if (!e)
                        return 0;
        }
        entry_apply_info(t, e, &info, PROC_READ_ALL);
        /* A zombie leader is counted in num_threads but is not alive. */
        entry_count_threads(e, &info, (int32_t) info.nthreads - (info.state == 'Z' ? 1 : 0));
        e->leader_exited = info.state == 'Z';
        e->pub.vanished = false;
        e->seen_gen = t->generation;
        return 0;
}

int proctable_resync(ProcTable *t, uint64_t now_ns, ProcTableEmitFn emit, void *userdata) {
        ResyncCtx c = { t, now_ns, emit, userdata };
        int r;

        t->generation++;
        r = t->reader.list(t->reader.userdata, resync_one, &c);
        if (r < 0)
                return r;
        for (size_t i = 0; i < t->map.nslots; i++) {
                ProcEntry *p = t->map.slots[i];
                Entry *e = (Entry *) p;

                if (!p)
                        continue;
                /* Link entries whose parent was listed after them. */
                if (!p->parent && p->ppid > 0) {
                        Entry *parent = entry_find(t, p->ppid);
                        if (parent)
                                proctree_link(p, &parent->pub);
                }
                if (e->seen_gen != t->generation && !p->vanished) {
                        p->vanished = true;
                        if (pending_add(t, PENDING_GHOST, p, 0, 0, now_ns + PROCTABLE_GHOST_GRACE_NS) < 0) {
                                /* No room to wait for its late exit: report
                                 * it now (a late one is then dropped as a
                                 * second report of the same end). The map
                                 * changes: look at this slot again. */
                                process_ended(t, e, -1, PN_SOURCE_PROCFS, now_ns, now_ns, emit, userdata);
                                i--;
                        }
                }
        }
        t->stats.resyncs++;
        table_report_lost(t, now_ns, emit, userdata);
        return 0;
}
