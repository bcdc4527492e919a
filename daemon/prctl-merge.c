/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Predumps and adoptions that both the connector and a patched kernel's
 * signal (PN_SOURCE_PRCTL) report: one event names both. The first report
 * is held at most PROCTABLE_PRCTL_HOLD_NS for the other (the kernel sends
 * both within microseconds), and only when the other is expected
 * (proctable_set_prctl(), a child of the broker; an adoption by it); the
 * process's exit publishes it first. A predump signal read while its
 * verdict waits for the process's end (proctable_prctl_wait()) holds the
 * predump and the exit until the verdict comes (bounded by the caller).
 */
#include "common/macro.h"
#include "proctable-internal.h"

void proctable_set_prctl(ProcTable *t, pid_t self, PnEventType type) {
        t->prctl_self = self;
        if (type == PN_EVENT_PREDUMP)
                t->prctl_predump = true;
        else if (type == PN_EVENT_ADOPT)
                t->prctl_adopt = true;
}

int proctable_prctl_wait(ProcTable *t, pid_t tgid) {
        Entry *e = entry_find(t, tgid);

        if (!e || e->exit_held || e->prctl_waiting)
                return PROCTABLE_E_GONE;
        e->watchers++;
        e->prctl_waiting = true;
        return 0;
}

void proctable_prctl_waited(ProcTable *t, pid_t tgid) {
        Entry *e = entry_find(t, tgid);

        if (!e || !e->prctl_waiting)
                return;
        e->watchers--;
        e->prctl_waiting = false;
}

bool prctl_hold_longer(ProcTable *t, Entry *e, PendingKind kind, uint64_t now_ns) {
        /* Never held without a deadline: if it cannot be queued again, it
         * is released now. */
        return e->prctl_waiting && pending_add(t, kind, &e->pub, 0, 0, now_ns + PROCTABLE_PRCTL_HOLD_NS) == 0;
}

void predump_release(ProcTable *t, Entry *e, ProcTableEmitFn emit, void *userdata) {
        /* A process-level event: pid is the process, the crashing thread
         * is predump.tid (as the first report told it). */
        PnEvent ev = {
                .type = PN_EVENT_PREDUMP,
                .ts_ns = e->predump_held_ts,
                .sources = e->predump_held,
                .pid = e->pub.tgid,
                .tgid = e->pub.tgid,
                .predump = e->predump_held_details,
        };
        (void) t;
        e->predump_held = 0;
        e->predump_reported = true;
        proctable_enrich(&e->pub, &ev);
        emit(&ev, userdata);
}

/* A predump: the process still exists (it is about to dump core), so what
 * a manager needs to know how long it has is read now: its size, its core
 * limit, what the kernel will do with the core, and its namespace (which
 * then is the event's, also for an exec the table missed). */
static void predump_read(ProcTable *t, Entry *e, PnEvent *ev) {
        _cleanup_(proc_info_done) ProcInfo info = { .rss = -1, .core_limit = PN_CORE_LIMIT_UNKNOWN,
                                                    .tid = ev->predump.tid };

        ev->predump.rss = -1;
        ev->predump.core_limit = PN_CORE_LIMIT_UNKNOWN;
        ev->predump.core_dump = PN_CORE_DUMP_UNKNOWN;
        if (t->reader.read(t->reader.userdata, e->pub.tgid, PROC_READ_CRASH | PROC_READ_NETNS, &info) < 0)
                return;
        ev->predump.rss = info.rss;
        ev->predump.core_limit = info.core_limit;
        ev->predump.core_dump = info.core_dump;
        entry_apply_info(t, e, &info, PROC_READ_NETNS);
}

void predump_seen(ProcTable *t, Entry *e, PnEvent *ev, uint64_t now_ns, ProcTableEmitFn emit,
                  void *userdata) {
        if (e->predump_reported)
                return; /* published already */
        if (e->predump_held) {
                if (e->predump_held & ev->sources)
                        return; /* the same source twice */
                e->predump_held |= ev->sources;
                e->predump_held_ts = MIN(e->predump_held_ts, ev->ts_ns);
                /* The connector names the crashing thread; the signal does not. */
                if (!e->predump_held_details.tid)
                        e->predump_held_details.tid = ev->predump.tid;
                t->stats.merged_predumps++;
                predump_release(t, e, emit, userdata);
                return;
        }
        /* The first report: the process still exists, read what it is
         * about to lose now (predump_read()), for this report or the
         * merged one. Held if the other is expected and it can wait. */
        predump_read(t, e, ev);
        if (t->prctl_predump && e->pub.ppid == t->prctl_self &&
            pending_add(t, PENDING_PREDUMP, &e->pub, 0, 0, now_ns + PROCTABLE_PRCTL_HOLD_NS) == 0) {
                e->predump_held = ev->sources;
                e->predump_held_ts = ev->ts_ns;
                e->predump_held_pid = ev->pid;
                e->predump_held_details = ev->predump;
                return;
        }
        e->predump_reported = true;
        proctable_enrich(&e->pub, ev);
        emit(ev, userdata);
}

void adopt_release(ProcTable *t, Entry *e, ProcTableEmitFn emit, void *userdata) {
        uint32_t sources = e->adopt_held;
        e->adopt_held = 0;
        emit_adopt(t, &e->pub, e->adopt_held_old, e->adopt_held_new, e->adopt_held_ts, sources, emit,
                   userdata);
}

void adopt_seen(ProcTable *t, Entry *e, pid_t old_parent, pid_t new_parent, uint64_t ts_ns,
                uint32_t sources, uint64_t now_ns, ProcTableEmitFn emit, void *userdata) {
        if (e->adopt_held) {
                if (e->adopt_held & sources)
                        return; /* the same source twice */
                e->adopt_held |= sources;
                e->adopt_held_ts = MIN(e->adopt_held_ts, ts_ns);
                if (!e->adopt_held_old)
                        e->adopt_held_old = old_parent;
                t->stats.merged_adoptions++;
                adopt_release(t, e, emit, userdata);
                return;
        }
        if (t->prctl_adopt && new_parent == t->prctl_self &&
            pending_add(t, PENDING_ADOPT_HELD, &e->pub, 0, 0, now_ns + PROCTABLE_PRCTL_HOLD_NS) == 0) {
                e->adopt_held = sources;
                e->adopt_held_ts = ts_ns;
                e->adopt_held_old = old_parent;
                e->adopt_held_new = new_parent;
                return;
        }
        emit_adopt(t, &e->pub, old_parent, new_parent, ts_ns, sources, emit, userdata);
}

void held_release(ProcTable *t, Entry *e, ProcTableEmitFn emit, void *userdata) {
        if (e->predump_held) {
                t->stats.unmerged_predumps++;
                predump_release(t, e, emit, userdata);
        }
        if (e->adopt_held) {
                t->stats.unmerged_adoptions++;
                adopt_release(t, e, emit, userdata);
        }
}
