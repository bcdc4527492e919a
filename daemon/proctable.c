/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ProcTable (proctable.h): apply each event of the connector and of the
 * other sources to the table, and answer queries. The parts it is made of
 * each have a file: entry.c (entries), pidmap.c (index by tgid), proctree.c
 * (parent/child links), intern.c (shared strings), deferred.c (work with a
 * deadline), ended.c (recently published exits), exitmerge.c (one exit per
 * process), prctl-merge.c (predumps and adoptions a patched kernel signals
 * too), resync.c (reconcile with /proc), cgroup-unit.c (unit of a cgroup).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "proctable-internal.h"
#include "proctree.h"

static void handle_fork(ProcTable *t, PnEvent *ev, uint64_t now_ns, ProcTableEmitFn emit,
                        void *userdata) {
        _cleanup_(proc_info_done) ProcInfo info = { 0 };
        Entry *e, *parent;
        int r;

        if (ev->thread) {
                e = entry_find(t, ev->tgid);
                if (e) {
                        if (!entry_read_after(e, ev->ts_ns))
                                e->pub.nthreads++; /* else counted by /proc already */
                } else
                        e = entry_load(t, ev->tgid, now_ns); /* counts the new thread already */
                if (e)
                        proctable_enrich(&e->pub, ev);
                emit(ev, userdata);
                return;
        }

        parent = entry_find_or_load(t, ev->ppid, now_ns);
        /* The start time identifies this process across a later resync;
         * without a known parent, everything else comes from /proc too. */
        r = t->reader.read(t->reader.userdata, ev->tgid, parent ? PROC_READ_STAT : PROC_READ_ALL, &info);

        e = entry_find(t, ev->tgid);
        if (e && e->adopt_held && !e->pub.start_time && !e->pub.comm[0] && parent) {
                /* Made by an adoption signal before this fork was read. */
                entry_inherit(t, &e->pub, &parent->pub, ev->ppid);
                if (r == 0)
                        e->pub.start_time = info.start_time;
                proctable_enrich(&e->pub, ev);
                emit(ev, userdata);
                return;
        }
        if (e && e->exit_held && !e->tracked && !e->pub.comm[0] && parent) {
                /* The broker reaped it before the connector (lagging behind
                 * a burst) told of its fork: learn what fork() copied. */
                entry_inherit(t, &e->pub, &parent->pub, ev->ppid);
                proctable_enrich(&e->pub, ev);
                emit(ev, userdata);
                return;
        }
        if (e && ((r == 0 && e->pub.start_time == info.start_time) || e->exit_held ||
                  (r < 0 && entry_read_after(e, ev->ts_ns)))) {
                /* Already learned from /proc (a resync ran before this event,
                 * the broker tracked its own child, a watch learned it), or
                 * already reaped by the broker: the late fork event of a
                 * process we know, which may have ended since (not a reused
                 * pid: that fork would be stamped after the read). */
                proctable_enrich(&e->pub, ev);
                emit(ev, userdata);
                return;
        }
        if (!e && ended_after(&t->ended, ev->tgid, ev->ts_ns, now_ns, PROCTABLE_ENDED_KEEP_NS)) {
                /* A late fork of a process whose end was published already
                 * (the connector lagged more than the merge waits): report
                 * it, without bringing the process back to life. */
                if (parent) {
                        proctable_enrich(&parent->pub, ev);
                        ev->ppid = parent->pub.tgid;
                }
                emit(ev, userdata);
                return;
        }
        if (e)
                /* The pid is reused: we lost the old process's exit. */
                process_ended(t, e, -1, PN_SOURCE_CONNECTOR, ev->ts_ns, now_ns, emit, userdata);
        parent = entry_find(t, ev->ppid); /* process_ended() may have changed the map */
        ended_forget(&t->ended, ev->tgid);

        e = entry_new(t, ev->tgid, now_ns);
        if (!e) {
                emit(ev, userdata);
                return;
        }
        if (parent) {
                entry_inherit(t, &e->pub, &parent->pub, ev->ppid);
                if (r == 0)
                        e->pub.start_time = info.start_time;
        } else if (r == 0)
                entry_apply_info(t, e, &info, PROC_READ_ALL);
        else
                e->pub.ppid = ev->ppid;
        proctable_enrich(&e->pub, ev);
        emit(ev, userdata);
}

static void handle_exec(ProcTable *t, PnEvent *ev, uint64_t now_ns, ProcTableEmitFn emit,
                        void *userdata) {
        _cleanup_(proc_info_done) ProcInfo info = { 0 };
        Entry *e = entry_find(t, ev->tgid);
        /* The namespace too: "ip netns exec" and its kind enter it, then exec. */
        const unsigned what = PROC_READ_STAT | PROC_READ_EXE | PROC_READ_CMDLINE | PROC_READ_CGROUP |
                              PROC_READ_NETNS;

        if (!e) {
                e = entry_load(t, ev->tgid, now_ns);
        } else if (t->reader.read(t->reader.userdata, ev->tgid, what, &info) == 0) {
                entry_apply_info(t, e, &info, what);
        } else if (!entry_read_after(e, ev->ts_ns)) {
                /* Gone before we could look: nameless, rather than the old
                 * name (a child the broker tracked at its clone has the
                 * broker's). What was read after the exec is the new one. */
                entry_forget_names(t, &e->pub);
        }
        if (e) {
                /* The exec'ing thread is the leader now, alive: when a
                 * non-leader execs, the kernel ends every other thread, the
                 * leader too (its exit, pid == tgid, is reported), and gives
                 * the exec'ing one the leader's tid. That exit was the old
                 * leader's, not the process's. */
                e->leader_exited = false;
                e->exec_ts = ev->ts_ns;
                proctable_enrich(&e->pub, ev);
        }
        emit(ev, userdata);
}

static void handle_exit(ProcTable *t, PnEvent *ev, uint64_t now_ns, ProcTableEmitFn emit,
                        void *userdata) {
        Entry *e = entry_find(t, ev->tgid);
        int status = ev->exit.status;
        bool leader = ev->pid == ev->tgid;

        /* The old leader's exit, stamped before an exec that a non-leader
         * made (and delivered after it, from another CPU's queue, or sent
         * after it: the exec goes on once the leader is a zombie, and the
         * leader's exit event is sent after that): a thread's end. */
        if (leader && e && e->exec_ts && ev->ts_ns < e->exec_ts)
                leader = false;
        if (!e) {
                /* Never knew it (it came and went during a loss, or before the
                 * seed): report what the kernel told, unless another source
                 * already reported this end. */
                if (leader && ended_seen(&t->ended, ev->tgid, now_ns, PROCTABLE_ENDED_KEEP_NS))
                        /* The connector caught up with an end another
                         * source published: its next fork is a new process. */
                        ended_forget(&t->ended, ev->tgid);
                else if (leader) {
                        ended_add(&t->ended, ev->tgid, now_ns, false);
                        pn_event_set_exit_status(ev, status);
                        ev->thread = false;
                        emit(ev, userdata);
                }
                return;
        }

        /* The process's status is the group's: the latest non-zero status
         * by the kernel's clock (exit_group and fatal signals give every
         * thread the same one), else 0. Neither the arrival order nor the
         * last thread decides: a thread that pthread_exit()ed (status 0)
         * can reach us after the exit_group, from another CPU's queue, and
         * can even be stamped after it, since pthread_join() returns before
         * the joined thread's exit event is sent. */
        if (status != 0 && ev->ts_ns >= e->last_status_ts) {
                e->last_status = status;
                e->last_status_ts = ev->ts_ns;
        }
        e->pub.nthreads--;
        if (leader)
                e->leader_exited = true;

        if (e->pub.nthreads <= 0 && e->leader_exited) {
                adoption_settle_at_exit(t, e, ev->ppid, PN_SOURCE_CONNECTOR, emit, userdata);
                process_exit_seen(t, e, e->last_status, PN_SOURCE_CONNECTOR, ev->ts_ns, now_ns, emit,
                                  userdata);
                return;
        }
        if (e->pub.nthreads <= 0)
                e->pub.nthreads = 1; /* the leader is still alive: we under-counted */
        if (leader && pending_add(t, PENDING_LEADER, &e->pub, 0, 0, now_ns + PROCTABLE_LEADER_CHECK_NS) < 0)
                /* Nothing will verify that the other threads are alive:
                 * should their exits be lost, so is the process's. */
                table_lost(t, 1);

        /* A thread ended, not the process: a thread event. */
        proctable_enrich(&e->pub, ev);
        pn_event_set_exit_status(ev, status);
        ev->thread = true;
        emit(ev, userdata);
}

static void handle_other(ProcTable *t, PnEvent *ev, uint64_t now_ns, ProcTableEmitFn emit,
                         void *userdata) {
        Entry *e = entry_find_or_load(t, ev->tgid, now_ns);
        if (e) {
                ProcEntry *p = &e->pub;
                bool leader = ev->pid == ev->tgid;
                switch (ev->type) {
                case PN_EVENT_COMM:
                        /* The event carries the new name; a thread's name is its own.
                         * ev->comm is a C string, not necessarily 16 bytes long. */
                        if (leader && ev->comm) {
                                size_t n = strnlen(ev->comm, sizeof(p->comm) - 1);
                                memcpy(p->comm, ev->comm, n);
                                p->comm[n] = 0;
                        }
                        break;
                case PN_EVENT_UID:
                        if (leader) {
                                p->uid = ev->id.real;
                                p->euid = ev->id.effective;
                        }
                        break;
                case PN_EVENT_GID:
                        if (leader) {
                                p->gid = ev->id.real;
                                p->egid = ev->id.effective;
                        }
                        break;
                case PN_EVENT_PREDUMP:
                        /* A patched kernel's predump signal may tell too. */
                        predump_seen(t, e, ev, now_ns, emit, userdata);
                        return;
                default:
                        break;
                }
                const char *comm = ev->comm;
                proctable_enrich(p, ev);
                if (ev->type == PN_EVENT_COMM)
                        ev->comm = comm;
        }
        emit(ev, userdata);
}

void proctable_handle(ProcTable *t, PnEvent *ev, uint64_t now_ns, ProcTableEmitFn emit,
                      void *userdata) {
        Entry *e;

        ev->sources |= PN_SOURCE_CONNECTOR;
        if (ev->ts_ns > t->connector_ts)
                t->connector_ts = ev->ts_ns;
        /* Before the event: a fork of a reused pid must not find the old
         * process still held. The exit of a held process is its merge. */
        if (t->n_held > 0 && !(ev->type == PN_EVENT_EXIT && (e = entry_find(t, ev->tgid)) && e->exit_held))
                release_caught_up(t, t->connector_ts, now_ns, emit, userdata);
        switch (ev->type) {
        case PN_EVENT_FORK:
                handle_fork(t, ev, now_ns, emit, userdata);
                break;
        case PN_EVENT_EXEC:
                handle_exec(t, ev, now_ns, emit, userdata);
                break;
        case PN_EVENT_EXIT:
                handle_exit(t, ev, now_ns, emit, userdata);
                break;
        default:
                handle_other(t, ev, now_ns, emit, userdata);
                break;
        }
        table_report_lost(t, now_ns, emit, userdata);
}

static void handle_other_source(ProcTable *t, PnEvent *ev, uint64_t now_ns, ProcTableEmitFn emit,
                                void *userdata) {
        Entry *e = entry_find(t, ev->tgid);

        switch (ev->type) {
        case PN_EVENT_EXIT:
                if (!e) {
                        if (ended_seen(&t->ended, ev->tgid, now_ns, PROCTABLE_ENDED_KEEP_NS))
                                return; /* published already */
                        /* Not known yet: its fork is still queued on the
                         * connector (or was lost). Hold it all the same, in
                         * an entry the fork event fills in. */
                        e = entry_new(t, ev->tgid, now_ns);
                        if (!e) {
                                ended_add(&t->ended, ev->tgid, now_ns, true);
                                pn_event_set_exit_status(ev, ev->exit.status);
                                emit(ev, userdata);
                                return;
                        }
                }
                /* A wait status comes from the parent (the broker): an
                 * orphan that died before the table could read its new
                 * parent is linked to it now. */
                adoption_settle_at_exit(t, e, ev->ppid, ev->sources & ~PN_SOURCE_CONNECTOR, emit,
                                        userdata);
                if (ev->ppid > 0 && e->pub.ppid != ev->ppid)
                        entry_set_parent(t, &e->pub, ev->ppid);
                process_exit_seen(t, e, ev->exit.status, ev->sources & ~PN_SOURCE_CONNECTOR, ev->ts_ns,
                                  now_ns, emit, userdata);
                return;
        case PN_EVENT_PREDUMP:
                if (e) {
                        predump_seen(t, e, ev, now_ns, emit, userdata);
                        return;
                }
                emit(ev, userdata);
                return;
        case PN_EVENT_ADOPT:
                if (e) {
                        if (!e->adopt_held && e->pub.ppid == ev->adopt.new_parent)
                                return; /* already inferred from the old parent's exit */
                        adopt_seen(t, e, ev->adopt.old_parent > 0 ? ev->adopt.old_parent : e->pub.ppid,
                                   ev->adopt.new_parent, ev->ts_ns, ev->sources, now_ns, emit, userdata);
                        return;
                }
                if (ev->adopt.old_parent > 0 && (e = entry_new(t, ev->tgid, now_ns))) {
                        /* The kernel signals the adoption before the old
                         * parent's exit, and the connector's fork of the
                         * orphan may still be queued: hold it in an entry
                         * that fork fills in (handle_fork()). */
                        e->pub.ppid = ev->adopt.old_parent;
                        adopt_seen(t, e, ev->adopt.old_parent, ev->adopt.new_parent, ev->ts_ns, ev->sources,
                                   now_ns, emit, userdata);
                        return;
                }
                emit(ev, userdata);
                return;
        default:
                if (e)
                        proctable_enrich(&e->pub, ev);
                emit(ev, userdata);
                return;
        }
}

void proctable_handle_other(ProcTable *t, PnEvent *ev, uint64_t now_ns, ProcTableEmitFn emit,
                            void *userdata) {
        handle_other_source(t, ev, now_ns, emit, userdata);
        table_report_lost(t, now_ns, emit, userdata);
}

int proctable_track(ProcTable *t, pid_t tgid, uint64_t now_ns) {
        _cleanup_(proc_info_done) ProcInfo info = { 0 };
        Entry *e = entry_find(t, tgid);
        int r;

        r = t->reader.read(t->reader.userdata, tgid, PROC_READ_ALL, &info);
        if (r < 0)
                return r;
        if (e && e->pub.start_time && info.start_time && e->pub.start_time != info.start_time)
                return 0; /* a stale entry of a reused pid: the fork event sorts it out */
        if (!e) {
                e = entry_new(t, tgid, now_ns);
                if (!e)
                        return -ENOSPC;
        }
        entry_apply_info(t, e, &info, PROC_READ_ALL);
        entry_count_threads(e, &info, (int32_t) info.nthreads);
        e->tracked = true;
        ended_forget(&t->ended, tgid);
        return 0;
}

/* --- queries --- */

const ProcEntry *proctable_find(const ProcTable *t, pid_t tgid) {
        Entry *e = entry_find(t, tgid);
        return e ? &e->pub : NULL;
}

const ProcEntry *proctable_learn(ProcTable *t, pid_t tgid, uint64_t now_ns) {
        Entry *e = entry_find_or_load(t, tgid, now_ns);
        return e ? &e->pub : NULL;
}

int proctable_watch_add(ProcTable *t, pid_t tgid, uint64_t start_time) {
        Entry *e = entry_find_same(t, tgid, start_time);
        if (!e || e->exit_held)
                return PROCTABLE_E_GONE;
        e->watchers++;
        return 0;
}

void proctable_watch_remove(ProcTable *t, pid_t tgid, uint64_t start_time) {
        Entry *e = entry_find_same(t, tgid, start_time);
        if (e && e->watchers > 0)
                e->watchers--;
}

int proctable_exit_seen(ProcTable *t, pid_t tgid, uint64_t start_time, uint32_t source, int status,
                        uint64_t ts_ns, uint64_t now_ns, ProcTableEmitFn emit, void *userdata) {
        Entry *e = entry_find_same(t, tgid, start_time);
        if (!e)
                return PROCTABLE_E_GONE;
        process_exit_seen(t, e, status, source, ts_ns, now_ns, emit, userdata);
        table_report_lost(t, now_ns, emit, userdata);
        return 0;
}

bool proctable_is_descendant(const ProcTable *t, pid_t tgid, pid_t ancestor) {
        Entry *e = entry_find(t, tgid);
        return e && proctree_is_descendant(&e->pub, ancestor);
}

int proctable_foreach_descendant(const ProcTable *t, pid_t tgid,
                                 void (*cb)(const ProcEntry *e, void *ctx), void *ctx) {
        Entry *root = entry_find(t, tgid);

        if (!root)
                return -ESRCH;
        /* Bounded by the table size: a corrupt loop cannot hang the broker. */
        proctree_foreach_descendant(&root->pub, t->map.n, cb, ctx);
        return 0;
}

void proctable_foreach(const ProcTable *t, void (*cb)(const ProcEntry *e, void *ctx), void *ctx) {
        for (size_t i = 0; i < t->map.nslots; i++)
                if (t->map.slots[i])
                        cb(t->map.slots[i], ctx);
}

const ProcTableStats *proctable_get_stats(const ProcTable *t) {
        ((ProcTable *) t)->stats.entries = t->map.n;
        return &t->stats;
}

/* --- lifetime --- */

int proctable_new(ProcTable **ret, const ProcReader *reader, size_t max_entries) {
        _cleanup_free_ ProcTable *t = calloc(1, sizeof(*t));

        if (!t)
                return -ENOMEM;
        t->reader = *reader;
        t->max_entries = max_entries ? max_entries : SIZE_MAX;
        if (pidmap_init(&t->map, 1024) < 0)
                return -ENOMEM;
        deferq_init(&t->pending, PROCTABLE_PENDING_MAX);
        deferq_init(&t->held, PROCTABLE_PENDING_MAX);
        *ret = TAKE_PTR(t);
        return 0;
}

ProcTable *proctable_free(ProcTable *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->map.nslots; i++) {
                ProcEntry *p = t->map.slots[i];
                if (!p)
                        continue;
                entry_drop_strings(t, p);
                free(p);
        }
        strset_done(&t->strings);
        pidmap_done(&t->map);
        deferq_done(&t->pending);
        deferq_done(&t->held);
        free(t);
        return NULL;
}
