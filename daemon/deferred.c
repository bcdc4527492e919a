/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The process table's deferred work: an adoption whose new parent is not
 * settled yet, a leader exit whose thread count needs verifying, a vanished
 * process waiting for its late exit event, a report held for another
 * source's. Kept in a priority queue by deadline (deferq.h) that the broker
 * drives from a timer: the next deadline is a peek, not a scan. Work that
 * cannot be queued is never dropped silently: it is done at once where it
 * can be (by the caller), else counted and reported as an overrun.
 */
#include <errno.h>

#include "common/macro.h"
#include "proctable-internal.h"

int pending_add(ProcTable *t, PendingKind kind, const ProcEntry *e, pid_t old_parent, unsigned tries,
                uint64_t deadline) {
        int r = deferq_push(&t->pending, &(Deferred){
                .at = deadline,
                .tgid = e->tgid,
                .start_time = e->start_time,
                .old_parent = old_parent,
                .kind = kind,
                .tries = tries,
        });
        if (r < 0)
                t->stats.deferred_full++;
        return r;
}

void table_lost(ProcTable *t, uint64_t n) {
        t->stats.lost += n;
        t->lost_unreported += n;
}

void table_report_lost_now(ProcTable *t, uint64_t now_ns, ProcTableEmitFn emit, void *userdata) {
        PnEvent ev = {
                .type = PN_EVENT_OVERRUN,
                .ts_ns = now_ns,
                .overrun = { .lost = t->lost_unreported, .where = PN_OVERRUN_KERNEL },
        };

        t->lost_unreported = 0;
        emit(&ev, userdata);
}

uint64_t proctable_next_deadline(const ProcTable *t) {
        const Deferred *d = deferq_peek(&t->pending);
        return d ? d->at : 0;
}

/* A leader exited with threads left, and the time to verify has come. */
static void leader_check(ProcTable *t, Entry *e, uint64_t now_ns, ProcTableEmitFn emit, void *userdata) {
        ProcInfo info = { 0 };
        int r = t->reader.read(t->reader.userdata, e->pub.tgid, PROC_READ_STAT, &info);

        proc_info_done(&info);
        if (e->exit_held || !e->leader_exited)
                return; /* its exit is being published; or an exec made a new leader */
        if (r == -ESRCH || (r == 0 && (info.state == 'Z' || info.state == 'X') && info.nthreads <= 1))
                /* All threads are gone but we missed some exits. */
                process_exit_seen(t, e, e->last_status, PN_SOURCE_CONNECTOR, now_ns, now_ns, emit, userdata);
        else if (r == 0)
                e->pub.nthreads = MAX((int32_t) info.nthreads - 1, 1);
}

static void pending_run(ProcTable *t, const Deferred *p, Entry *e, uint64_t now_ns, ProcTableEmitFn emit,
                        void *userdata) {
        switch ((PendingKind) p->kind) {
        case PENDING_ADOPT:
                settle_adoption(t, &e->pub, p->old_parent, p->tries, now_ns, now_ns, emit, userdata);
                break;
        case PENDING_PREDUMP:
                if (prctl_hold_longer(t, e, PENDING_PREDUMP, now_ns))
                        break;
                if (e->predump_held) {
                        t->stats.unmerged_predumps++;
                        predump_release(t, e, emit, userdata);
                }
                break;
        case PENDING_ADOPT_HELD:
                if (e->adopt_held) {
                        t->stats.unmerged_adoptions++;
                        adopt_release(t, e, emit, userdata);
                }
                break;
        case PENDING_GHOST:
                if (e->pub.vanished)
                        process_ended(t, e, -1, PN_SOURCE_PROCFS, now_ns, now_ns, emit, userdata);
                break;
        case PENDING_EXIT:
                /* The other source is late or will not come (a loss, an
                 * unwatch, an idle connector): publish what is known. */
                if (prctl_hold_longer(t, e, PENDING_EXIT, now_ns))
                        break;
                if (e->exit_held)
                        held_exit_release(t, e, now_ns, emit, userdata);
                break;
        case PENDING_LEADER:
                leader_check(t, e, now_ns, emit, userdata);
                break;
        }
}

void proctable_run_pending(ProcTable *t, uint64_t now_ns, ProcTableEmitFn emit, void *userdata) {
        const Deferred *d;

        /* Work queued meanwhile is due later than now: the loop ends. */
        while ((d = deferq_peek(&t->pending)) && d->at <= now_ns) {
                Deferred p;
                Entry *e;

                (void) deferq_pop(&t->pending, &p);
                e = entry_find_same(t, p.tgid, p.start_time);
                if (e)
                        pending_run(t, &p, e, now_ns, emit, userdata);
                /* else: already gone the normal way */
        }
        table_report_lost(t, now_ns, emit, userdata);
}
