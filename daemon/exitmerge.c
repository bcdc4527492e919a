/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The exit-merge state machine (docs/ARCHITECTURE.md, row 9): every source
 * that saw a process end (the connector, a pidfd watch, the broker's own
 * wait) makes one exit event naming them all, with the best status; and
 * what follows from an end: the children's adoption is settled, and the
 * entry goes.
 */
#include <errno.h>
#include <stdlib.h>

#include "common/macro.h"
#include "proctable-internal.h"
#include "proctree.h"

static void emit_exit(ProcTable *t, Entry *e, int status, uint32_t sources, uint64_t ts_ns,
                      ProcTableEmitFn emit, void *userdata) {
        PnEvent ev = {
                .type = PN_EVENT_EXIT,
                .ts_ns = ts_ns,
                .sources = sources,
                .pid = e->pub.tgid,
                .tgid = e->pub.tgid,
        };
        proctable_enrich(&e->pub, &ev);
        if (status >= 0)
                pn_event_set_exit_status(&ev, status);
        else {
                ev.exit.status = -1;
                t->stats.inferred_exits++;
        }
        emit(&ev, userdata);
}

void emit_adopt(ProcTable *t, ProcEntry *child, pid_t old_parent, pid_t new_parent, uint64_t ts_ns,
                uint32_t sources, ProcTableEmitFn emit, void *userdata) {
        PnEvent ev = {
                .type = PN_EVENT_ADOPT,
                .ts_ns = ts_ns,
                .sources = sources,
                .pid = child->tgid,
                .tgid = child->tgid,
        };

        entry_set_parent(t, child, new_parent);
        proctable_enrich(child, &ev);
        ev.adopt.old_parent = old_parent;
        ev.adopt.new_parent = new_parent;
        t->stats.adoptions++;
        emit(&ev, userdata);
}

/*
 * Read the new parent of a child whose parent exited. The kernel re-parents
 * before it sends the parent's exit event, but a thread-group parent can hand
 * its children between threads first; if the child still names the old
 * parent, try again shortly.
 */
void settle_adoption(ProcTable *t, ProcEntry *child, pid_t old_parent, unsigned tries, uint64_t now_ns,
                     uint64_t ts_ns, ProcTableEmitFn emit, void *userdata) {
        Entry *c = (Entry *) child;
        ProcInfo info = { 0 };
        int r = t->reader.read(t->reader.userdata, child->tgid, PROC_READ_STAT, &info);

        proc_info_done(&info);
        if (r < 0) {
                /* Gone too (a loaded broker reads this late: the next stage
                 * of a fork dance may be reaped already). It was adopted all
                 * the same; its exit names the new parent. */
                c->adopt_from = old_parent;
                c->adopt_ts = ts_ns;
                return;
        }
        if (child->start_time && info.start_time && info.start_time != child->start_time)
                return; /* pid reused */
        if (info.ppid == old_parent) {
                if (tries + 1 >= PROCTABLE_ADOPT_MAX_TRIES)
                        return;
                if (pending_add(t, PENDING_ADOPT, child, old_parent, tries + 1,
                                now_ns + PROCTABLE_ADOPT_RETRY_NS) < 0) {
                        /* Cannot look again: the adoption is told at its
                         * exit at the latest, and reported lost now. */
                        c->adopt_from = old_parent;
                        c->adopt_ts = ts_ns;
                        table_lost(t, 1);
                }
                return;
        }
        adopt_seen(t, c, old_parent, info.ppid, ts_ns, PN_SOURCE_CONNECTOR, now_ns, emit, userdata);
}

void adoption_settle_at_exit(ProcTable *t, Entry *e, pid_t parent_tgid, uint32_t sources,
                             ProcTableEmitFn emit, void *userdata) {
        pid_t old = e->adopt_from;

        held_release(t, e, emit, userdata);
        if (!old)
                return;
        e->adopt_from = 0;
        if (parent_tgid <= 0 || parent_tgid == old)
                return;
        emit_adopt(t, &e->pub, old, parent_tgid, e->adopt_ts, sources, emit, userdata);
}

/* e's exit is no longer held. */
static void entry_unhold(ProcTable *t, Entry *e) {
        if (!e->exit_held)
                return;
        if (!(e->held_sources & PN_SOURCE_CONNECTOR) && --t->n_held == 0)
                /* What is left in it is stale: merged or released. */
                deferq_clear(&t->held);
        e->exit_held = false;
}

/* Of two exit statuses of one process, the one to publish: a known status
 * over an unknown (-1), the wait status or pidfd information of another
 * source over the connector's, else the first. */
static int exit_status_best(int first, uint32_t first_sources, int second, uint32_t second_sources) {
        if (first < 0)
                return second;
        if (second < 0)
                return first;
        if (first_sources == PN_SOURCE_CONNECTOR && second_sources != PN_SOURCE_CONNECTOR)
                return second;
        return first;
}

/* The children of e, whose process ended, are adopted: settle each. */
static void children_adopted(ProcTable *t, Entry *e, uint64_t now_ns, uint64_t ts_ns,
                             ProcTableEmitFn emit, void *userdata) {
        pid_t tgid = e->pub.tgid;
        _cleanup_free_ pid_t *kids = NULL;
        size_t n = 0, i = 0;

        for (ProcEntry *c = e->pub.first_child; c; c = c->next_sibling)
                n++;
        if (n > 0) {
                kids = calloc(n, sizeof(*kids));
                if (!kids)
                        table_lost(t, n); /* their adoptions cannot be told */
        }
        for (ProcEntry *c = e->pub.first_child; kids && c; c = c->next_sibling)
                kids[i++] = c->tgid;
        entry_free(t, e);
        for (i = 0; kids && i < n; i++) {
                Entry *c = entry_find(t, kids[i]);
                if (c)
                        settle_adoption(t, &c->pub, tgid, 0, now_ns, ts_ns, emit, userdata);
        }
}

void process_ended(ProcTable *t, Entry *e, int status, uint32_t sources, uint64_t ts_ns, uint64_t now_ns,
                   ProcTableEmitFn emit, void *userdata) {
        held_release(t, e, emit, userdata);
        if (e->exit_held) {
                /* One exit with what every source told: the authoritative
                 * status, the first source's time. */
                status = exit_status_best(e->held_status, e->held_sources, status, sources);
                sources |= e->held_sources;
                ts_ns = MIN(ts_ns, e->held_ts);
                if ((sources & PN_SOURCE_CONNECTOR) && (sources & ~PN_SOURCE_CONNECTOR))
                        t->stats.merged_exits++;
                entry_unhold(t, e);
        }
        emit_exit(t, e, status, sources, ts_ns, emit, userdata);
        ended_add(&t->ended, e->pub.tgid, now_ns, !(sources & PN_SOURCE_CONNECTOR));
        children_adopted(t, e, now_ns, ts_ns, emit, userdata);
}

void held_exit_release(ProcTable *t, Entry *e, uint64_t now_ns, ProcTableEmitFn emit, void *userdata) {
        entry_unhold(t, e);
        t->stats.unmerged_exits++;
        process_ended(t, e, e->held_status, e->held_sources, e->held_ts, now_ns, emit, userdata);
}

/*
 * A source saw the process of e end. The connector reports every exit; a
 * pidfd watch (PN_SOURCE_PIDFD) and the broker's wait for its own child
 * (PN_SOURCE_CHILD) report some a second time, and each is published once,
 * naming every source that saw it, with the best status
 * (exit_status_best()). The rules do not depend on which other source it is:
 *
 * - Another source first: held until the connector's exit comes, or until
 *   the connector delivered an event stamped PROCTABLE_EXIT_SLACK_NS after
 *   the report was held (the kernel sent the connector's exit before the
 *   other source could see the end, so it was lost), or at most
 *   PROCTABLE_EXIT_WAIT_NS (an idle connector). The wait is measured in the
 *   connector's time, not the broker's: under load the connector can lag by
 *   far more than any fixed window.
 * - The connector first: published at once, unless pidfd watches count on
 *   the process (e->watchers): the pidfd wakes in exit_notify(), right
 *   after the connector message is sent, so it is held at most
 *   PROCTABLE_EXIT_HOLD_NS for it.
 *
 * A second report by a source already held is folded in and waits on. An
 * exit that cannot be held (the deferred work is full) is published at once.
 */
void process_exit_seen(ProcTable *t, Entry *e, int status, uint32_t source, uint64_t ts_ns,
                       uint64_t now_ns, ProcTableEmitFn emit, void *userdata) {
        bool connector = source & PN_SOURCE_CONNECTOR;
        uint64_t wait;

        if (e->exit_held) {
                if (connector || (e->held_sources & PN_SOURCE_CONNECTOR)) {
                        if (!(e->held_sources & ~source))
                                return; /* the same source twice: still waiting */
                        process_ended(t, e, status, source, ts_ns, now_ns, emit, userdata);
                        return;
                }
                /* Two sources besides the connector (a pidfd-watched child
                 * of the broker): both are named, and the connector is still
                 * awaited. */
                e->held_status = exit_status_best(e->held_status, e->held_sources, status, source);
                e->held_sources |= source;
                e->held_ts = MIN(e->held_ts, ts_ns);
                return;
        }
        if (connector && e->watchers == 0) {
                process_ended(t, e, status, source, ts_ns, now_ns, emit, userdata);
                return;
        }
        wait = connector ? PROCTABLE_EXIT_HOLD_NS : PROCTABLE_EXIT_WAIT_NS;
        if (pending_add(t, PENDING_EXIT, &e->pub, 0, 0, now_ns + wait) < 0 ||
            (!connector && deferq_push(&t->held, &(Deferred){ .at = now_ns, .tgid = e->pub.tgid,
                                                              .start_time = e->pub.start_time,
                                                              .kind = PENDING_EXIT }) < 0)) {
                /* Cannot wait: never hold an exit without a deadline. */
                process_ended(t, e, status, source, ts_ns, now_ns, emit, userdata);
                return;
        }
        e->exit_held = true;
        e->held_status = status;
        e->held_sources = source;
        e->held_ts = ts_ns;
        e->held_seen_ns = now_ns;
        if (!connector)
                t->n_held++;
}

/* The connector is past (its event stamped ts_ns) the moment some exits
 * seen by another source were held, without bringing their exit: it was
 * lost; publish them now rather than at the safety timeout. The held exits
 * are queued by when they were held: a peek says whether any is due. */
void release_caught_up(ProcTable *t, uint64_t ts_ns, uint64_t now_ns, ProcTableEmitFn emit,
                       void *userdata) {
        const Deferred *d;

        while (t->n_held > 0 && (d = deferq_peek(&t->held)) && d->at + PROCTABLE_EXIT_SLACK_NS <= ts_ns) {
                Deferred h;
                Entry *e;

                (void) deferq_pop(&t->held, &h);
                e = entry_find_same(t, h.tgid, h.start_time);
                if (!e || !e->exit_held || (e->held_sources & PN_SOURCE_CONNECTOR) || e->held_seen_ns != h.at)
                        continue; /* merged or released meanwhile */
                held_exit_release(t, e, now_ns, emit, userdata);
                /* The pending item finds nothing at its deadline. */
        }
}
