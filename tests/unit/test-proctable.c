/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ProcTable against a fake ProcReader: a process list the test controls,
 * standing in for /proc (the real one is exercised by the integration
 * tests). Checks enrichment, one exit per process, pid reuse, adoption and
 * resync.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/proctable.h"

/* --- the fake /proc --- */

typedef struct FakeProc {
        pid_t tgid, ppid;
        uint64_t start_time;
        uint32_t nthreads, uid;
        char state;
        const char *comm, *exe, *cmdline, *cgroup;
        bool alive;
} FakeProc;

static FakeProc procs[64];
static size_t n_procs;
static unsigned reads, reads_beyond_stat;

static FakeProc *fake(pid_t tgid) {
        for (size_t i = 0; i < n_procs; i++)
                if (procs[i].tgid == tgid)
                        return &procs[i];
        return NULL;
}

static FakeProc *fake_add(pid_t tgid, pid_t ppid, uint64_t start, const char *comm) {
        FakeProc *p = fake(tgid);
        if (!p)
                p = &procs[n_procs++];
        *p = (FakeProc){ .tgid = tgid, .ppid = ppid, .start_time = start, .nthreads = 1,
                         .uid = 1000, .state = 'S', .comm = comm, .exe = "/usr/bin/prog",
                         .cmdline = "prog --flag", .cgroup = "/system.slice/prog.service",
                         .alive = true };
        return p;
}

static int fake_read(void *userdata, pid_t tgid, unsigned what, ProcInfo *ret) {
        FakeProc *p = fake(tgid);
        (void) userdata;
        reads++;
        if (what & ~PROC_READ_STAT)
                reads_beyond_stat++;
        if (!p || !p->alive)
                return -ESRCH;
        ret->ppid = p->ppid;
        ret->start_time = p->start_time;
        ret->nthreads = p->nthreads;
        ret->state = p->state;
        ret->uid = ret->euid = p->uid;
        ret->gid = ret->egid = 100;
        strncpy(ret->comm, p->comm, sizeof(ret->comm) - 1);
        if (what & PROC_READ_EXE)
                ret->exe = strdup(p->exe);
        if (what & PROC_READ_CMDLINE)
                ret->cmdline = strdup(p->cmdline);
        if (what & PROC_READ_CGROUP)
                ret->cgroup = strdup(p->cgroup);
        return 0;
}

static int fake_list(void *userdata, int (*cb)(pid_t tgid, void *ctx), void *ctx) {
        (void) userdata;
        for (size_t i = 0; i < n_procs; i++)
                if (procs[i].alive && cb(procs[i].tgid, ctx) < 0)
                        return -EINTR;
        return 0;
}

static const ProcReader reader = { .read = fake_read, .list = fake_list };

/* --- what the table publishes --- */

typedef struct Seen {
        PnEvent ev;
        char comm[16], exe[64];
        bool comm_null, exe_null;
} Seen;

static Seen seen[64];
static size_t n_seen;

static void on_emit(PnEvent *ev, void *userdata) {
        (void) userdata;
        assert_true(n_seen < 64);
        Seen *s = &seen[n_seen++];
        s->ev = *ev;
        s->comm_null = !ev->comm;
        s->exe_null = !ev->exe;
        if (ev->comm)
                strncpy(s->comm, ev->comm, sizeof(s->comm) - 1);
        if (ev->exe)
                strncpy(s->exe, ev->exe, sizeof(s->exe) - 1);
        s->ev.comm = s->ev.exe = s->ev.cmdline = s->ev.cgroup = s->ev.unit = NULL;
}

static ProcTable *setup_table(size_t max) {
        ProcTable *t = NULL;
        n_seen = 0;
        reads = reads_beyond_stat = 0;
        assert_int_equal(proctable_new(&t, &reader, max), 0);
        assert_int_equal(proctable_resync(t, 1000, on_emit, NULL), 0);
        assert_int_equal(n_seen, 0); /* seeding publishes nothing */
        return t;
}

static void reset(void) {
        n_procs = 0;
        n_seen = 0;
        memset(procs, 0, sizeof(procs));
}

static void handle(ProcTable *t, PnEvent ev) {
        proctable_handle(t, &ev, ev.ts_ns ? ev.ts_ns : 2000, on_emit, NULL);
}

static PnEvent fork_ev(pid_t parent, pid_t pid, pid_t tgid) {
        return (PnEvent){ .type = PN_EVENT_FORK, .pid = pid, .tgid = tgid, .ppid = parent,
                          .fork.parent_pid = parent, .thread = pid != tgid, .uid = UINT32_MAX };
}

static PnEvent exit_ev(pid_t pid, pid_t tgid, int status) {
        return (PnEvent){ .type = PN_EVENT_EXIT, .pid = pid, .tgid = tgid, .thread = pid != tgid,
                          .exit.status = status, .uid = UINT32_MAX };
}

static PnEvent simple_ev(PnEventType type, pid_t pid, pid_t tgid) {
        return (PnEvent){ .type = type, .pid = pid, .tgid = tgid, .uid = UINT32_MAX };
}

/* --- tests --- */

static void test_seed_and_tree(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(100, 1, 10, "sshd");
        fake_add(200, 100, 20, "bash");
        ProcTable *t = setup_table(0);
        const ProcEntry *e = proctable_find(t, 200);
        assert_non_null(e);
        assert_string_equal(e->comm, "bash");
        assert_int_equal(e->ppid, 100);
        assert_true(proctable_is_descendant(t, 200, 1));
        assert_true(proctable_is_descendant(t, 200, 100));
        assert_false(proctable_is_descendant(t, 100, 200));
        assert_false(proctable_is_descendant(t, 200, 200));
        assert_int_equal(proctable_get_stats(t)->entries, 3);
        proctable_free(t);
}

static void collect(const ProcEntry *e, void *ctx) {
        pid_t **p = ctx;
        *(*p)++ = e->tgid;
}

static void test_foreach_descendant(void **state) {
        pid_t got[16] = { 0 }, *p = got;
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(100, 1, 10, "svc");
        fake_add(101, 100, 11, "a");
        fake_add(102, 101, 12, "a1");
        fake_add(103, 100, 13, "b");
        fake_add(104, 103, 14, "b1");
        fake_add(105, 104, 15, "b2");
        fake_add(200, 1, 20, "other");
        ProcTable *t = setup_table(0);
        assert_int_equal(proctable_foreach_descendant(t, 100, collect, &p), 0);
        assert_int_equal(p - got, 5);
        /* Parents before their children, every one once, nothing outside. */
        for (pid_t want = 101; want <= 105; want++) {
                int at = -1;
                for (int i = 0; i < 5; i++)
                        if (got[i] == want)
                                at = i;
                assert_true(at >= 0);
                for (int i = 0; i < 5; i++)
                        if (got[i] == want - 1 && want != 103)
                                assert_true(i < at || want == 101);
        }
        p = got;
        assert_int_equal(proctable_foreach_descendant(t, 105, collect, &p), 0);
        assert_int_equal(p - got, 0);
        assert_int_equal(proctable_foreach_descendant(t, 999, collect, &p), -ESRCH);
        proctable_free(t);
}

static void test_fork_copies_parent(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(100, 1, 10, "daemon");
        ProcTable *t = setup_table(0);
        /* /proc would say something else: the table must not ask it. */
        fake_add(300, 100, 30, "not-asked");
        reads_beyond_stat = 0;
        handle(t, fork_ev(100, 300, 300));
        assert_int_equal(n_seen, 1);
        assert_int_equal(seen[0].ev.type, PN_EVENT_FORK);
        assert_string_equal(seen[0].comm, "daemon");
        assert_string_equal(seen[0].exe, "/usr/bin/prog");
        assert_int_equal(seen[0].ev.ppid, 100);
        assert_int_equal(seen[0].ev.uid, 1000);
        assert_int_equal(reads_beyond_stat, 0);
        assert_int_equal(proctable_find(t, 300)->start_time, 30);
        assert_true(proctable_is_descendant(t, 300, 100));
        proctable_free(t);
}

static void test_exec_rereads_or_is_nameless(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(300, 1, 30, "sh");
        ProcTable *t = setup_table(0);
        FakeProc *p = fake(300);
        p->comm = "newprog";
        p->exe = "/usr/bin/newprog";
        handle(t, simple_ev(PN_EVENT_EXEC, 300, 300));
        assert_string_equal(seen[0].comm, "newprog");
        assert_string_equal(seen[0].exe, "/usr/bin/newprog");
        /* Gone before we could look: nameless, not the old name. */
        p->alive = false;
        handle(t, simple_ev(PN_EVENT_EXEC, 300, 300));
        assert_true(seen[1].comm_null);
        assert_true(seen[1].exe_null);
        proctable_free(t);
}

static void test_threads_one_process_exit(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(400, 1, 40, "worker");
        ProcTable *t = setup_table(0);
        handle(t, fork_ev(400, 401, 400));
        handle(t, fork_ev(400, 402, 400));
        handle(t, exit_ev(401, 400, 0));
        handle(t, exit_ev(402, 400, 0));
        handle(t, exit_ev(400, 400, 5 << 8));
        assert_int_equal(n_seen, 5);
        for (int i = 0; i < 4; i++)
                assert_true(seen[i].ev.thread);
        assert_int_equal(seen[4].ev.type, PN_EVENT_EXIT);
        assert_false(seen[4].ev.thread);
        assert_int_equal(seen[4].ev.pid, 400);
        assert_int_equal(seen[4].ev.exit.exit_code, 5);
        assert_string_equal(seen[4].comm, "worker");
        assert_null(proctable_find(t, 400));
        proctable_free(t);
}

static void test_leader_exits_first(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(400, 1, 40, "worker");
        ProcTable *t = setup_table(0);
        handle(t, fork_ev(400, 401, 400));
        handle(t, exit_ev(400, 400, 0));      /* pthread_exit in main */
        assert_int_equal(n_seen, 2);
        assert_true(seen[1].ev.thread);       /* not the process yet */
        assert_non_null(proctable_find(t, 400));
        handle(t, exit_ev(401, 400, SIGSEGV)); /* the group ends */
        assert_int_equal(n_seen, 3);
        assert_false(seen[2].ev.thread);
        assert_int_equal(seen[2].ev.pid, 400);
        assert_int_equal(seen[2].ev.exit.signal, SIGSEGV);
        proctable_free(t);
}

/* Exits arrive out of kernel order (per-CPU queues): a thread that ended
 * before the leader's exit_group is reported after it. The process's status
 * is the later one by the kernel's clock. */
static void test_exits_out_of_order(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(400, 1, 40, "worker");
        ProcTable *t = setup_table(0);
        handle(t, fork_ev(400, 401, 400));
        PnEvent leader = exit_ev(400, 400, 5 << 8), thread = exit_ev(401, 400, 0);
        leader.ts_ns = 3000;
        thread.ts_ns = 2900;
        handle(t, leader);
        handle(t, thread);
        assert_int_equal(n_seen, 3);
        assert_false(seen[2].ev.thread);
        assert_int_equal(seen[2].ev.exit.exit_code, 5);
        proctable_free(t);
}

/* A joined thread's exit event can even be stamped after the exit_group
 * that followed the join (pthread_join returns before the thread's exit
 * event is sent): a thread's 0 never overrides the group's status. */
static void test_joined_thread_stamped_after_group_exit(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(400, 1, 40, "worker");
        ProcTable *t = setup_table(0);
        handle(t, fork_ev(400, 401, 400));
        PnEvent leader = exit_ev(400, 400, 5 << 8), thread = exit_ev(401, 400, 0);
        leader.ts_ns = 3000;
        thread.ts_ns = 3100;
        handle(t, leader);
        handle(t, thread);
        assert_int_equal(n_seen, 3);
        assert_false(seen[2].ev.thread);
        assert_int_equal(seen[2].ev.exit.exit_code, 5);
        proctable_free(t);
}

/* A non-leader (401) execs: the kernel ends the leader (its exit has pid ==
 * tgid) and the other thread, and 401 goes on as the leader with tid 400.
 * No process exit: not at once, not after the leader check (which must not
 * count a leader as dead), not when the new image's threads come and go,
 * whichever order the old leader's exit and the exec arrive in; the
 * process's real end is one exit. */
static void test_non_leader_exec(void **state) {
        (void) state;
        for (int late = 0; late < 2; late++) {
                reset();
                fake_add(1, 0, 1, "init");
                FakeProc *p = fake_add(400, 1, 40, "worker");
                ProcTable *t = setup_table(0);
                PnEvent leader = exit_ev(400, 400, SIGKILL), other = exit_ev(402, 400, SIGKILL);
                PnEvent exec = simple_ev(PN_EVENT_EXEC, 400, 400);
                leader.ts_ns = 3000;
                other.ts_ns = 3001;
                exec.ts_ns = 3100;
                handle(t, fork_ev(400, 401, 400));
                handle(t, fork_ev(400, 402, 400));
                if (!late)
                        handle(t, leader);
                handle(t, other);
                handle(t, exec);
                if (late)
                        handle(t, leader); /* sent or delivered after the exec */
                /* The new image makes a thread before the leader check. */
                handle(t, fork_ev(400, 403, 400));
                p->nthreads = 2;
                proctable_run_pending(t, 100000000000ull, on_emit, NULL);
                /* The thread ends: the process goes on. */
                handle(t, exit_ev(403, 400, 0));
                for (size_t i = 0; i < n_seen; i++)
                        assert_false(seen[i].ev.type == PN_EVENT_EXIT && !seen[i].ev.thread);
                assert_non_null(proctable_find(t, 400));
                PnEvent end = exit_ev(400, 400, 3 << 8);
                end.ts_ns = 5000;
                handle(t, end);
                assert_false(seen[n_seen - 1].ev.thread);
                assert_int_equal(seen[n_seen - 1].ev.type, PN_EVENT_EXIT);
                assert_int_equal(seen[n_seen - 1].ev.exit.exit_code, 3);
                assert_null(proctable_find(t, 400));
                proctable_free(t);
        }
}

static void test_missed_thread_exits_found_by_pending_check(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        FakeProc *p = fake_add(400, 1, 40, "worker");
        p->nthreads = 3;
        ProcTable *t = setup_table(0);
        handle(t, exit_ev(400, 400, 7 << 8)); /* two thread exits were lost */
        assert_int_equal(n_seen, 1);
        assert_true(seen[0].ev.thread);
        uint64_t d = proctable_next_deadline(t);
        assert_true(d > 0);
        p->state = 'Z';
        p->nthreads = 1;
        proctable_run_pending(t, d, on_emit, NULL);
        assert_int_equal(n_seen, 2);
        assert_false(seen[1].ev.thread);
        assert_int_equal(seen[1].ev.exit.exit_code, 7);
        proctable_free(t);
}

static void test_pid_reuse(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(200, 1, 20, "old");
        ProcTable *t = setup_table(0);
        /* 200's exit was lost; a new process got pid 200. */
        fake_add(200, 1, 99, "new");
        handle(t, fork_ev(1, 200, 200));
        assert_int_equal(n_seen, 2);
        assert_int_equal(seen[0].ev.type, PN_EVENT_EXIT);
        assert_int_equal(seen[0].ev.exit.status, -1);  /* inferred */
        assert_string_equal(seen[0].comm, "old");
        assert_int_equal(seen[1].ev.type, PN_EVENT_FORK);
        assert_int_equal(proctable_find(t, 200)->start_time, 99);
        /* The same process seen by a resync and then its fork event: no exit. */
        fake_add(250, 1, 50, "known");
        assert_int_equal(proctable_resync(t, 3000, on_emit, NULL), 0);
        n_seen = 0;
        handle(t, fork_ev(1, 250, 250));
        assert_int_equal(n_seen, 1);
        assert_int_equal(seen[0].ev.type, PN_EVENT_FORK);
        proctable_free(t);
}

static void test_adoption(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(50, 1, 5, "subreaper");
        fake_add(500, 50, 50, "parent");
        fake_add(501, 500, 51, "kid");
        fake_add(502, 500, 52, "kid2");
        ProcTable *t = setup_table(0);
        /* The kernel re-parented 501 before the exit event; 502 not yet. */
        fake(501)->ppid = 50;
        fake(500)->alive = false;
        handle(t, exit_ev(500, 500, 0));
        assert_int_equal(n_seen, 2);
        assert_int_equal(seen[0].ev.type, PN_EVENT_EXIT);
        assert_int_equal(seen[1].ev.type, PN_EVENT_ADOPT);
        assert_int_equal(seen[1].ev.pid, 501);
        assert_int_equal(seen[1].ev.adopt.old_parent, 500);
        assert_int_equal(seen[1].ev.adopt.new_parent, 50);
        assert_true(proctable_is_descendant(t, 501, 50));
        /* 502 is settled a little later. */
        uint64_t d = proctable_next_deadline(t);
        assert_true(d > 0);
        proctable_run_pending(t, d, on_emit, NULL);
        assert_int_equal(n_seen, 2); /* still naming the dead parent: retried */
        fake(502)->ppid = 1;
        proctable_run_pending(t, proctable_next_deadline(t), on_emit, NULL);
        assert_int_equal(n_seen, 3);
        assert_int_equal(seen[2].ev.pid, 502);
        assert_int_equal(seen[2].ev.adopt.new_parent, 1);
        assert_int_equal(proctable_get_stats(t)->adoptions, 2);
        assert_int_equal(proctable_next_deadline(t), 0);
        proctable_free(t);
}

/* A loaded broker reads the orphans of an exited parent late: the next
 * stage of a fork dance, re-parented to init, may be gone (reaped by init)
 * already. It was adopted all the same: its exit names its new parent, and
 * the adoption is told before that exit. */
static void test_adoption_read_late(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(500, 1, 50, "stage0");
        fake_add(501, 500, 51, "stage1");
        ProcTable *t = setup_table(0);
        fake(500)->alive = false;
        fake(501)->alive = false; /* exited and reaped by init before the read */
        handle(t, exit_ev(500, 500, 0));
        assert_int_equal(n_seen, 1); /* the exit: 501's new parent unknown yet */
        assert_int_equal(seen[0].ev.type, PN_EVENT_EXIT);
        PnEvent ex = exit_ev(501, 501, 0);
        ex.ppid = 1; /* the connector's parent_tgid: its parent when it exited */
        handle(t, ex);
        assert_int_equal(n_seen, 3);
        assert_int_equal(seen[1].ev.type, PN_EVENT_ADOPT);
        assert_int_equal(seen[1].ev.pid, 501);
        assert_int_equal(seen[1].ev.adopt.old_parent, 500);
        assert_int_equal(seen[1].ev.adopt.new_parent, 1);
        assert_int_equal(seen[2].ev.type, PN_EVENT_EXIT);
        assert_int_equal(seen[2].ev.pid, 501);
        assert_int_equal(proctable_get_stats(t)->adoptions, 1);
        proctable_free(t);
}

static void test_resync_ghosts(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(600, 1, 60, "ghost");
        fake_add(601, 1, 61, "late-exit");
        ProcTable *t = setup_table(0);
        fake(600)->alive = false;
        fake(601)->alive = false;
        fake_add(602, 1, 62, "newcomer");
        assert_int_equal(proctable_resync(t, 10000, on_emit, NULL), 0);
        assert_int_equal(n_seen, 0);                 /* not before the grace period */
        assert_non_null(proctable_find(t, 602));     /* new ones are added silently */
        handle(t, exit_ev(601, 601, 3 << 8));        /* its real exit comes in time */
        assert_int_equal(n_seen, 1);
        assert_int_equal(seen[0].ev.exit.exit_code, 3);
        proctable_run_pending(t, 10000 + PROCTABLE_GHOST_GRACE_NS - 1, on_emit, NULL);
        assert_int_equal(n_seen, 1);
        proctable_run_pending(t, 10000 + PROCTABLE_GHOST_GRACE_NS, on_emit, NULL);
        assert_int_equal(n_seen, 2);
        assert_int_equal(seen[1].ev.pid, 600);
        assert_int_equal(seen[1].ev.exit.status, -1);
        assert_int_equal(seen[1].ev.sources, PN_SOURCE_PROCFS);
        assert_null(proctable_find(t, 600));
        assert_int_equal(proctable_get_stats(t)->inferred_exits, 1);
        proctable_free(t);
}

/* Zombies (ended, not reaped) are in /proc but no longer processes: a
 * resync neither re-adds one whose exit was seen (a second exit would be
 * inferred when it is reaped) nor keeps one whose exit was lost. */
static void test_resync_zombies(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(800, 1, 80, "reported");
        fake_add(801, 1, 81, "exit-lost");
        fake_add(802, 1, 82, "leader-gone")->nthreads = 3;
        ProcTable *t = setup_table(0);
        handle(t, exit_ev(800, 800, 0));
        assert_int_equal(n_seen, 1);
        fake(800)->state = 'Z';
        fake(801)->state = 'Z';
        fake(802)->state = 'Z'; /* the leader exited, two threads live on */
        assert_int_equal(proctable_resync(t, 10000, on_emit, NULL), 0);
        assert_null(proctable_find(t, 800));
        assert_non_null(proctable_find(t, 802));
        proctable_run_pending(t, 10000 + PROCTABLE_GHOST_GRACE_NS, on_emit, NULL);
        assert_int_equal(n_seen, 2); /* 801's exit, inferred; none for 800 again */
        assert_int_equal(seen[1].ev.pid, 801);
        assert_int_equal(seen[1].ev.sources, PN_SOURCE_PROCFS);
        assert_null(proctable_find(t, 801));
        assert_non_null(proctable_find(t, 802));
        /* Reaped: gone from /proc. Nothing more to report. */
        fake(800)->alive = fake(801)->alive = false;
        assert_int_equal(proctable_resync(t, 20000, on_emit, NULL), 0);
        proctable_run_pending(t, 20000 + PROCTABLE_GHOST_GRACE_NS, on_emit, NULL);
        assert_int_equal(n_seen, 2);
        proctable_free(t);
}

static void test_comm_and_uid_events(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(700, 1, 70, "before");
        ProcTable *t = setup_table(0);
        PnEvent ev = simple_ev(PN_EVENT_COMM, 701, 700); /* a thread renames itself */
        ev.comm = "thread-name";
        ev.thread = true;
        handle(t, ev);
        assert_string_equal(seen[0].comm, "thread-name");
        assert_string_equal(proctable_find(t, 700)->comm, "before");
        ev = simple_ev(PN_EVENT_COMM, 700, 700);
        static const char after[16] = "after"; /* the connector's comm is 16 bytes */
        ev.comm = after;
        handle(t, ev);
        assert_string_equal(proctable_find(t, 700)->comm, "after");
        ev = simple_ev(PN_EVENT_UID, 700, 700);
        ev.id.real = 0;
        ev.id.effective = 0;
        handle(t, ev);
        assert_int_equal(seen[2].ev.uid, 0);
        assert_int_equal(proctable_find(t, 700)->uid, 0);
        proctable_free(t);
}

static void test_unknown_processes(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        ProcTable *t = setup_table(0);
        handle(t, exit_ev(900, 900, 2 << 8)); /* never seen: still reported */
        handle(t, exit_ev(902, 901, 0));      /* a thread of an unknown process: not */
        assert_int_equal(n_seen, 1);
        assert_int_equal(seen[0].ev.exit.exit_code, 2);
        proctable_free(t);
}

static void test_max_entries(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(2, 1, 2, "two");
        ProcTable *t = setup_table(2);
        fake_add(3, 1, 3, "three");
        handle(t, fork_ev(1, 3, 3));
        assert_int_equal(n_seen, 1); /* still published, just not enriched */
        assert_null(proctable_find(t, 3));
        assert_int_equal(proctable_get_stats(t)->full, 1);
        proctable_free(t);
}

static void test_many_entries_and_removal(void **state) {
        /* Exercise growth and backward-shift deletion of the hash map. */
        ProcTable *t = NULL;
        (void) state;
        reset();
        n_seen = 0;
        assert_int_equal(proctable_new(&t, &reader, 0), 0);
        for (pid_t p = 1; p <= 5000; p++) {
                n_seen = 0;
                handle(t, fork_ev(1, p * 7, p * 7));
        }
        for (pid_t p = 1; p <= 5000; p += 2) {
                n_seen = 0;
                handle(t, exit_ev(p * 7, p * 7, 0));
        }
        for (pid_t p = 1; p <= 5000; p++)
                assert_int_equal(proctable_find(t, p * 7) != NULL, p % 2 == 0);
        assert_int_equal(proctable_get_stats(t)->entries, 2500);
        proctable_free(t);
}

/* --- exits seen by another source (the broker's own children) --- */

static PnEvent child_exit_ev(pid_t tgid, int status, uint64_t ts) {
        return (PnEvent){ .type = PN_EVENT_EXIT, .pid = tgid, .tgid = tgid, .ts_ns = ts,
                          .sources = PN_SOURCE_CHILD, .exit.status = status, .uid = UINT32_MAX };
}

static void other(ProcTable *t, PnEvent ev, uint64_t now) {
        proctable_handle_other(t, &ev, now, on_emit, NULL);
}

static void test_child_exit_then_connector_one_exit(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(700, 1, 70, "svc");
        ProcTable *t = setup_table(0);
        other(t, child_exit_ev(700, 3 << 8, 5000), 5000);
        assert_int_equal(n_seen, 0); /* held for the connector */
        assert_int_equal(proctable_next_deadline(t), 5000 + PROCTABLE_EXIT_WAIT_NS);
        procs[1].alive = false; /* reaped */
        PnEvent ev = exit_ev(700, 700, 3 << 8);
        ev.ts_ns = 5001;
        handle(t, ev);
        assert_int_equal(n_seen, 1);
        assert_int_equal(seen[0].ev.type, PN_EVENT_EXIT);
        assert_int_equal(seen[0].ev.exit.exit_code, 3);
        assert_int_equal(seen[0].ev.sources, PN_SOURCE_CONNECTOR | PN_SOURCE_CHILD);
        assert_string_equal(seen[0].comm, "svc");
        assert_null(proctable_find(t, 700));
        /* A late third report of the same end: dropped. */
        other(t, child_exit_ev(700, 3 << 8, 6000), 6000);
        assert_int_equal(n_seen, 1);
        proctable_run_pending(t, 5000 + PROCTABLE_EXIT_WAIT_NS, on_emit, NULL);
        assert_int_equal(n_seen, 1);
        proctable_free(t);
}

static void test_connector_exit_then_child_one_exit(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(701, 1, 71, "svc");
        ProcTable *t = setup_table(0);
        handle(t, exit_ev(701, 701, 9)); /* killed by SIGKILL */
        assert_int_equal(n_seen, 1);
        assert_int_equal(seen[0].ev.sources, PN_SOURCE_CONNECTOR);
        other(t, child_exit_ev(701, 9, 3000), 3000);
        assert_int_equal(n_seen, 1);
        proctable_free(t);
}

static void test_held_exit_released_when_connector_moves_on(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(702, 1, 72, "svc");
        fake_add(703, 1, 73, "other");
        ProcTable *t = setup_table(0);
        other(t, child_exit_ev(702, 0, 10000), 10000);
        /* An event stamped within the slack: still held. */
        PnEvent comm = simple_ev(PN_EVENT_COMM, 703, 703);
        static const char name[16] = "x"; /* the connector's comm is 16 bytes */
        comm.comm = name;
        comm.ts_ns = 10000 + PROCTABLE_EXIT_SLACK_NS / 2;
        handle(t, comm);
        assert_int_equal(n_seen, 1);
        /* One stamped later: the connector's own exit of 702 was lost. */
        comm.ts_ns = 10000 + 2 * PROCTABLE_EXIT_SLACK_NS;
        handle(t, comm);
        assert_int_equal(n_seen, 3);
        assert_int_equal(seen[1].ev.type, PN_EVENT_EXIT);
        assert_int_equal(seen[1].ev.tgid, 702);
        assert_int_equal(seen[1].ev.sources, PN_SOURCE_CHILD);
        assert_int_equal(seen[2].ev.type, PN_EVENT_COMM);
        /* The late connector exit is not a second report. */
        PnEvent late = exit_ev(702, 702, 0);
        late.ts_ns = 10000 + 3 * PROCTABLE_EXIT_SLACK_NS;
        handle(t, late);
        assert_int_equal(n_seen, 3);
        proctable_free(t);
}

static void test_held_exit_released_by_timeout(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(704, 1, 74, "svc");
        ProcTable *t = setup_table(0);
        other(t, child_exit_ev(704, 2 << 8, 20000), 20000);
        proctable_run_pending(t, 20000 + PROCTABLE_EXIT_WAIT_NS - 1, on_emit, NULL);
        assert_int_equal(n_seen, 0);
        proctable_run_pending(t, 20000 + PROCTABLE_EXIT_WAIT_NS, on_emit, NULL);
        assert_int_equal(n_seen, 1);
        assert_int_equal(seen[0].ev.exit.exit_code, 2);
        assert_int_equal(seen[0].ev.sources, PN_SOURCE_CHILD);
        proctable_free(t);
}

static void test_tracked_child_reaped_before_its_fork_event(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(50, 1, 5, "broker");
        ProcTable *t = setup_table(0);
        fake_add(705, 50, 75, "job");
        assert_int_equal(proctable_track(t, 705, 3000), 0);
        other(t, child_exit_ev(705, 0, 3100), 3100);
        procs[2].alive = false; /* reaped */
        /* The connector's fork, exec and exit come after. */
        handle(t, fork_ev(50, 705, 705));
        handle(t, simple_ev(PN_EVENT_EXEC, 705, 705));
        handle(t, exit_ev(705, 705, 0));
        assert_int_equal(n_seen, 3);
        assert_int_equal(seen[0].ev.type, PN_EVENT_FORK);
        assert_int_equal(seen[1].ev.type, PN_EVENT_EXEC);
        assert_string_equal(seen[1].comm, "job"); /* not made nameless by the reaped /proc */
        assert_int_equal(seen[2].ev.type, PN_EVENT_EXIT);
        assert_int_equal(seen[2].ev.sources, PN_SOURCE_CONNECTOR | PN_SOURCE_CHILD);
        assert_int_equal(seen[2].ev.ppid, 50);
        proctable_free(t);
}

static void test_unknown_child_exit_waits_for_its_fork(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(60, 1, 6, "parent");
        ProcTable *t = setup_table(0);
        /* The broker reaped 706 while the connector still had its fork and
         * exit queued (a burst). */
        other(t, child_exit_ev(706, 1 << 8, 5000), 5000);
        assert_int_equal(n_seen, 0);
        PnEvent ev = fork_ev(60, 706, 706);
        ev.ts_ns = 4000;
        handle(t, ev);
        ev = exit_ev(706, 706, 1 << 8);
        ev.ts_ns = 4500;
        handle(t, ev);
        assert_int_equal(n_seen, 2);
        assert_int_equal(seen[0].ev.type, PN_EVENT_FORK);
        assert_string_equal(seen[0].comm, "parent");
        assert_int_equal(seen[1].ev.type, PN_EVENT_EXIT);
        assert_int_equal(seen[1].ev.sources, PN_SOURCE_CONNECTOR | PN_SOURCE_CHILD);
        assert_int_equal(seen[1].ev.exit.exit_code, 1);
        assert_int_equal(seen[1].ev.ppid, 60);
        assert_string_equal(seen[1].comm, "parent");
        /* A new process with that pid later is new: its exit is reported. */
        fake_add(706, 1, 99, "new");
        ev = fork_ev(1, 706, 706);
        ev.ts_ns = 9000;
        handle(t, ev);
        ev = exit_ev(706, 706, 0);
        ev.ts_ns = 9500;
        handle(t, ev);
        assert_int_equal(n_seen, 4);
        assert_int_equal(seen[3].ev.type, PN_EVENT_EXIT);
        assert_int_equal(seen[3].ev.sources, PN_SOURCE_CONNECTOR);
        proctable_free(t);
}

static void test_fork_later_than_the_merge_is_not_a_new_process(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(60, 1, 6, "parent");
        ProcTable *t = setup_table(0);
        other(t, child_exit_ev(707, 0, 5000), 5000);
        /* The connector lags past the safety timeout: published alone. */
        proctable_run_pending(t, 5000 + PROCTABLE_EXIT_WAIT_NS, on_emit, NULL);
        assert_int_equal(n_seen, 1);
        assert_int_equal(seen[0].ev.sources, PN_SOURCE_CHILD);
        /* Its fork and exit, stamped before that: no second exit. */
        PnEvent ev = fork_ev(60, 707, 707);
        ev.ts_ns = 4000;
        proctable_handle(t, &ev, 5000 + PROCTABLE_EXIT_WAIT_NS + 1, on_emit, NULL);
        ev = exit_ev(707, 707, 0);
        ev.ts_ns = 4500;
        proctable_handle(t, &ev, 5000 + PROCTABLE_EXIT_WAIT_NS + 2, on_emit, NULL);
        assert_int_equal(n_seen, 2);
        assert_int_equal(seen[1].ev.type, PN_EVENT_FORK);
        assert_null(proctable_find(t, 707));
        proctable_free(t);
}

/* One mechanism for every other source: a supervised child that is also
 * under a pidfd watch has three reports of its exit, published once. */
static void test_child_and_pidfd_and_connector_one_exit(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(710, 1, 80, "svc");
        fake_add(711, 1, 81, "svc2");
        ProcTable *t = setup_table(0);
        assert_int_equal(proctable_watch_add(t, 710, 80), 0);
        assert_int_equal(proctable_watch_add(t, 711, 81), 0);

        /* Child first, then the pidfd (both held: the connector is awaited),
         * then the connector: one exit, three sources, the wait status. */
        other(t, child_exit_ev(710, 3 << 8, 5000), 5000);
        assert_int_equal(proctable_exit_seen(t, 710, 80, PN_SOURCE_PIDFD, -1, 5010, 5010, on_emit, NULL), 0);
        assert_int_equal(n_seen, 0);
        PnEvent ev = exit_ev(710, 710, 0); /* a connector status that disagrees */
        ev.ts_ns = 4990;
        handle(t, ev);
        assert_int_equal(n_seen, 1);
        assert_int_equal(seen[0].ev.sources, PN_SOURCE_CONNECTOR | PN_SOURCE_CHILD | PN_SOURCE_PIDFD);
        assert_int_equal(seen[0].ev.exit.exit_code, 3);
        assert_int_equal(seen[0].ev.ts_ns, 4990);

        /* Connector first with a watcher: held for the pidfd; the child's
         * wait status comes first and completes it, with its status; the
         * pidfd after finds it gone. */
        ev = exit_ev(711, 711, 0);
        ev.ts_ns = 6000;
        handle(t, ev);
        assert_int_equal(n_seen, 1);
        other(t, child_exit_ev(711, 9, 6100), 6100);
        assert_int_equal(n_seen, 2);
        assert_int_equal(seen[1].ev.sources, PN_SOURCE_CONNECTOR | PN_SOURCE_CHILD);
        assert_int_equal(seen[1].ev.exit.signal, 9);
        assert_int_equal(proctable_exit_seen(t, 711, 81, PN_SOURCE_PIDFD, 9, 6200, 6200, on_emit, NULL),
                         PROCTABLE_E_GONE);
        proctable_run_pending(t, 10000 + PROCTABLE_EXIT_WAIT_NS, on_emit, NULL);
        assert_int_equal(n_seen, 2);
        assert_int_equal(proctable_get_stats(t)->merged_exits, 2);
        assert_int_equal(proctable_get_stats(t)->unmerged_exits, 0);
        proctable_free(t);
}

/* The pidfd's status, when it has one, wins over the connector's, whichever
 * came first; a pidfd without one (not reaped yet) keeps the connector's. */
static void test_exit_status_of_the_other_source(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(720, 1, 82, "a");
        fake_add(721, 1, 83, "b");
        ProcTable *t = setup_table(0);
        assert_int_equal(proctable_watch_add(t, 720, 82), 0);
        assert_int_equal(proctable_watch_add(t, 721, 83), 0);
        PnEvent ev = exit_ev(720, 720, 0);
        ev.ts_ns = 3000;
        handle(t, ev);
        assert_int_equal(proctable_exit_seen(t, 720, 82, PN_SOURCE_PIDFD, 5 << 8, 3001, 3001, on_emit, NULL), 0);
        assert_int_equal(n_seen, 1);
        assert_int_equal(seen[0].ev.exit.exit_code, 5);
        assert_int_equal(proctable_exit_seen(t, 721, 83, PN_SOURCE_PIDFD, -1, 3100, 3100, on_emit, NULL), 0);
        ev = exit_ev(721, 721, 6 << 8);
        ev.ts_ns = 3090;
        handle(t, ev);
        assert_int_equal(n_seen, 2);
        assert_int_equal(seen[1].ev.exit.exit_code, 6);
        assert_int_equal(seen[1].ev.sources, PN_SOURCE_CONNECTOR | PN_SOURCE_PIDFD);
        proctable_free(t);
}

/* A child's exit is held, the connector's exit of it was lost, and the pid
 * is reused at once: the fork of the new process (stamped past the slack)
 * first releases the old exit, then is a new process whose own exit is
 * published, not taken for a late duplicate. */
static void test_held_exit_then_pid_reused(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(60, 1, 6, "parent");
        fake_add(730, 60, 84, "old");
        ProcTable *t = setup_table(0);
        other(t, child_exit_ev(730, 2 << 8, 5000), 5000);
        fake_add(730, 60, 99, "new"); /* reaped, and the pid taken again */
        PnEvent ev = fork_ev(60, 730, 730);
        ev.ts_ns = 5000 + 2 * PROCTABLE_EXIT_SLACK_NS;
        handle(t, ev);
        assert_int_equal(n_seen, 2);
        assert_int_equal(seen[0].ev.type, PN_EVENT_EXIT);
        assert_int_equal(seen[0].ev.sources, PN_SOURCE_CHILD);
        assert_int_equal(seen[0].ev.exit.exit_code, 2);
        assert_int_equal(seen[1].ev.type, PN_EVENT_FORK);
        const ProcEntry *e = proctable_find(t, 730);
        assert_non_null(e);
        assert_int_equal(e->start_time, 99);
        ev = exit_ev(730, 730, 0);
        ev.ts_ns = 5000 + 3 * PROCTABLE_EXIT_SLACK_NS;
        handle(t, ev);
        assert_int_equal(n_seen, 3);
        assert_int_equal(seen[2].ev.type, PN_EVENT_EXIT);
        assert_int_equal(seen[2].ev.sources, PN_SOURCE_CONNECTOR);
        assert_null(proctable_find(t, 730));
        proctable_free(t);
}

static void test_other_stop_predump_adopt(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(50, 1, 5, "broker");
        fake_add(60, 1, 6, "parent");
        fake_add(707, 60, 77, "kid");
        ProcTable *t = setup_table(0);
        PnEvent stop = { .type = PN_EVENT_STOP, .pid = 707, .tgid = 707, .sources = PN_SOURCE_CHILD,
                         .stop.signal = SIGSTOP, .uid = UINT32_MAX };
        other(t, stop, 100);
        assert_int_equal(n_seen, 1);
        assert_string_equal(seen[0].comm, "kid");
        assert_int_equal(seen[0].ev.uid, 1000);
        /* predump by signal, then by the connector: once. */
        PnEvent pd = { .type = PN_EVENT_PREDUMP, .pid = 707, .tgid = 707, .sources = PN_SOURCE_CHILD,
                       .uid = UINT32_MAX };
        other(t, pd, 200);
        handle(t, simple_ev(PN_EVENT_PREDUMP, 707, 707));
        assert_int_equal(n_seen, 2);
        /* adopt by signal: fills old_parent; the inference at the old
         * parent's exit does not repeat it. */
        PnEvent ad = { .type = PN_EVENT_ADOPT, .pid = 707, .tgid = 707, .sources = PN_SOURCE_CHILD,
                       .adopt = { .new_parent = 50 }, .uid = UINT32_MAX };
        procs[3].ppid = 50;
        other(t, ad, 300);
        assert_int_equal(n_seen, 3);
        assert_int_equal(seen[2].ev.adopt.old_parent, 60);
        assert_int_equal(seen[2].ev.adopt.new_parent, 50);
        other(t, ad, 301);
        assert_int_equal(n_seen, 3);
        procs[2].alive = false;
        handle(t, exit_ev(60, 60, 0));
        assert_int_equal(n_seen, 4);
        assert_int_equal(seen[3].ev.type, PN_EVENT_EXIT);
        proctable_free(t);
}

/* With a patched kernel's signals (proctable_set_prctl()): the connector's
 * predump of a child of the broker and the signal's are one predump naming
 * both, in either order; the same for an adoption by the broker, with the
 * signal's old parent; without the other, published after the hold. */
static void test_prctl_merge(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(50, 1, 5, "broker");
        fake_add(60, 50, 6, "daemon");
        fake_add(707, 60, 77, "kid");
        fake_add(808, 50, 88, "crasher");
        fake_add(809, 50, 89, "crasher2");
        ProcTable *t = setup_table(0);
        proctable_set_prctl(t, 50, PN_EVENT_PREDUMP);
        proctable_set_prctl(t, 50, PN_EVENT_ADOPT);
        /* Predump: connector first, then the signal. */
        handle(t, simple_ev(PN_EVENT_PREDUMP, 808, 808));
        assert_int_equal(n_seen, 0);
        PnEvent pd = { .type = PN_EVENT_PREDUMP, .pid = 808, .tgid = 808, .sources = PN_SOURCE_PRCTL,
                       .uid = UINT32_MAX, .ts_ns = 2100 };
        other(t, pd, 2100);
        assert_int_equal(n_seen, 1);
        assert_int_equal(seen[0].ev.type, PN_EVENT_PREDUMP);
        assert_int_equal(seen[0].ev.sources, PN_SOURCE_CONNECTOR | PN_SOURCE_PRCTL);
        assert_string_equal(seen[0].comm, "crasher");
        other(t, pd, 2200); /* once */
        handle(t, simple_ev(PN_EVENT_PREDUMP, 808, 808));
        assert_int_equal(n_seen, 1);
        /* The signal first, then the connector. */
        pd.pid = pd.tgid = 809;
        other(t, pd, 2300);
        assert_int_equal(n_seen, 1);
        handle(t, simple_ev(PN_EVENT_PREDUMP, 809, 809));
        assert_int_equal(n_seen, 2);
        assert_int_equal(seen[1].ev.pid, 809);
        assert_int_equal(seen[1].ev.sources, PN_SOURCE_CONNECTOR | PN_SOURCE_PRCTL);
        assert_int_equal(proctable_get_stats(t)->merged_predumps, 2);
        /* Adoption: the signal (before the old parent's exit, as the kernel
         * sends it), then the inference at that exit. */
        fake(707)->ppid = 50;
        PnEvent ad = { .type = PN_EVENT_ADOPT, .pid = 707, .tgid = 707, .sources = PN_SOURCE_PRCTL,
                       .adopt = { .old_parent = 60, .new_parent = 50 }, .uid = UINT32_MAX };
        other(t, ad, 2400);
        assert_int_equal(n_seen, 2);
        fake(60)->alive = false;
        handle(t, exit_ev(60, 60, 0));
        assert_int_equal(n_seen, 4);
        assert_int_equal(seen[2].ev.type, PN_EVENT_EXIT);
        assert_int_equal(seen[3].ev.type, PN_EVENT_ADOPT);
        assert_int_equal(seen[3].ev.sources, PN_SOURCE_CONNECTOR | PN_SOURCE_PRCTL);
        assert_int_equal(seen[3].ev.adopt.old_parent, 60);
        assert_int_equal(seen[3].ev.adopt.new_parent, 50);
        assert_int_equal(proctable_get_stats(t)->merged_adoptions, 1);
        assert_int_equal(proctable_get_stats(t)->adoptions, 1);
        /* A predump without the other source: published at the deadline. */
        handle(t, simple_ev(PN_EVENT_PREDUMP, 707, 707));
        assert_int_equal(n_seen, 4);
        proctable_run_pending(t, proctable_next_deadline(t), on_emit, NULL);
        assert_int_equal(n_seen, 5);
        assert_int_equal(seen[4].ev.sources, PN_SOURCE_CONNECTOR);
        assert_int_equal(proctable_get_stats(t)->unmerged_predumps, 1);
        /* The signal before the connector's fork of the orphan was read
         * (the kernel signals before the old parent's exit is reported): the
         * fork fills in the entry, the old parent's exit merges. */
        fake_add(61, 50, 7, "daemon2");
        fake_add(910, 50, 99, "orphan2");
        ad = (PnEvent){ .type = PN_EVENT_ADOPT, .pid = 910, .tgid = 910, .sources = PN_SOURCE_PRCTL,
                        .adopt = { .old_parent = 61, .new_parent = 50 }, .uid = UINT32_MAX };
        other(t, ad, 3000);
        assert_int_equal(n_seen, 5);
        handle(t, fork_ev(61, 910, 910));
        assert_int_equal(n_seen, 6);
        assert_int_equal(seen[5].ev.type, PN_EVENT_FORK);
        fake(61)->alive = false;
        handle(t, exit_ev(61, 61, 0));
        assert_int_equal(n_seen, 8);
        assert_int_equal(seen[7].ev.type, PN_EVENT_ADOPT);
        assert_int_equal(seen[7].ev.pid, 910);
        assert_int_equal(seen[7].ev.sources, PN_SOURCE_CONNECTOR | PN_SOURCE_PRCTL);
        assert_int_equal(seen[7].ev.adopt.old_parent, 61);
        assert_string_equal(seen[7].comm, "daemon2"); /* what fork() copied */
        assert_int_equal(proctable_get_stats(t)->merged_adoptions, 2);
        proctable_free(t);
}

static const char *entry_exe(const ProcTable *t, pid_t tgid) {
        PnEvent ev = { 0 };
        const ProcEntry *e = proctable_find(t, tgid);
        assert_non_null(e);
        proctable_enrich(e, &ev);
        return ev.exe;
}

static void test_strings_interned(void **state) {
        /* Processes seeded from /proc with the same exe, cmdline and cgroup
         * hold one copy of each; a process that changes lets go of its
         * reference only, and the set survives growth and emptying. */
        static char exes[3000][24];
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(100, 1, 10, "worker");
        fake_add(101, 1, 11, "worker");
        ProcTable *t = setup_table(0);
        assert_ptr_equal(proctable_find(t, 100)->exe, proctable_find(t, 101)->exe);
        assert_ptr_equal(proctable_find(t, 100)->cmdline, proctable_find(t, 101)->cmdline);
        assert_ptr_equal(proctable_find(t, 100)->cgroup, proctable_find(t, 1)->cgroup);
        assert_ptr_equal(proctable_find(t, 100)->unit, proctable_find(t, 1)->unit);

        fake(101)->exe = "/usr/bin/other";
        handle(t, simple_ev(PN_EVENT_EXEC, 101, 101));
        assert_string_equal(entry_exe(t, 101), "/usr/bin/other");
        assert_string_equal(entry_exe(t, 100), "/usr/bin/prog");
        handle(t, exit_ev(100, 100, 0));
        assert_string_equal(entry_exe(t, 1), "/usr/bin/prog");

        /* Many distinct strings: the set grows; all of them go again. */
        for (int i = 0; i < 3000; i++) {
                snprintf(exes[i], sizeof(exes[i]), "/usr/bin/p%d", i);
                n_procs = 2;
                FakeProc *p = fake_add(1000 + i, 1, 1000 + (uint64_t) i, "p");
                p->exe = exes[i];
                n_seen = 0;
                handle(t, fork_ev(1, 1000 + i, 1000 + i));
                handle(t, simple_ev(PN_EVENT_EXEC, 1000 + i, 1000 + i));
        }
        for (int i = 0; i < 3000; i += 7)
                assert_string_equal(entry_exe(t, 1000 + i), exes[i]);
        for (int i = 0; i < 3000; i++) {
                n_seen = 0;
                handle(t, exit_ev(1000 + i, 1000 + i, 0));
        }
        assert_null(proctable_find(t, 1500));
        assert_string_equal(entry_exe(t, 101), "/usr/bin/other");
        assert_string_equal(entry_exe(t, 1), "/usr/bin/prog");
        proctable_free(t);
}

static void test_unit_from_cgroup(void **state) {
        char buf[256];
        (void) state;
        assert_string_equal(proctable_unit_from_cgroup("/system.slice/foo.service", buf, sizeof(buf)), "foo.service");
        assert_string_equal(proctable_unit_from_cgroup("/system.slice/foo.service/sub", buf, sizeof(buf)), "foo.service");
        assert_string_equal(proctable_unit_from_cgroup(
                                    "/user.slice/user-1000.slice/user@1000.service/app.slice/x.service",
                                    buf, sizeof(buf)), "user@1000.service");
        assert_string_equal(proctable_unit_from_cgroup("/init.scope", buf, sizeof(buf)), "init.scope");
        assert_null(proctable_unit_from_cgroup("/", buf, sizeof(buf)));
        assert_null(proctable_unit_from_cgroup("/system.slice", buf, sizeof(buf)));
        assert_null(proctable_unit_from_cgroup("/docker/abc", buf, sizeof(buf)));
        assert_null(proctable_unit_from_cgroup(NULL, buf, sizeof(buf)));
}

/* A watched exit: held for the other source, published once with both. */
static void test_watched_exit_merged(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(300, 1, 30, "bfdd");
        fake_add(400, 1, 40, "other");
        ProcTable *t = setup_table(0);
        assert_int_equal(proctable_watch_add(t, 300, 30), 0);
        assert_int_equal(proctable_watch_add(t, 300, 31), PROCTABLE_E_GONE); /* another process */
        assert_int_equal(proctable_watch_add(t, 999, 0), PROCTABLE_E_GONE);

        /* Connector first: held, then the pidfd (no status yet) completes it. */
        PnEvent ev = exit_ev(300, 300, 7 << 8);
        ev.ts_ns = 2000;
        handle(t, ev);
        assert_int_equal(n_seen, 0);
        assert_int_equal(proctable_next_deadline(t), 2000 + PROCTABLE_EXIT_HOLD_NS);
        assert_int_equal(proctable_exit_seen(t, 300, 30, PN_SOURCE_PIDFD, -1, 2500, 2600, on_emit, NULL), 0);
        assert_int_equal(n_seen, 1);
        assert_int_equal(seen[0].ev.type, PN_EVENT_EXIT);
        assert_int_equal(seen[0].ev.exit.exit_code, 7);
        assert_int_equal(seen[0].ev.exit.status, 7 << 8);
        assert_int_equal(seen[0].ev.sources, PN_SOURCE_CONNECTOR | PN_SOURCE_PIDFD);
        assert_int_equal(seen[0].ev.ts_ns, 2000);
        assert_string_equal(seen[0].comm, "bfdd");
        assert_null(proctable_find(t, 300));
        /* A late report finds nothing: never a second exit. */
        assert_int_equal(proctable_exit_seen(t, 300, 30, PN_SOURCE_PIDFD, -1, 2700, 2700, on_emit, NULL),
                         PROCTABLE_E_GONE);
        proctable_run_pending(t, 2000 + PROCTABLE_EXIT_HOLD_NS, on_emit, NULL);
        assert_int_equal(n_seen, 1);
        assert_int_equal(proctable_get_stats(t)->merged_exits, 1);

        /* Pidfd first (with a status: reaped), connector after. */
        assert_int_equal(proctable_watch_add(t, 400, 40), 0);
        assert_int_equal(proctable_exit_seen(t, 400, 40, PN_SOURCE_PIDFD, 9, 3000, 3000, on_emit, NULL), 0);
        assert_int_equal(n_seen, 1);
        handle(t, (PnEvent){ .type = PN_EVENT_EXIT, .pid = 400, .tgid = 400, .exit.status = 9,
                             .ts_ns = 2990, .uid = UINT32_MAX });
        assert_int_equal(n_seen, 2);
        assert_int_equal(seen[1].ev.exit.signal, 9);
        assert_int_equal(seen[1].ev.sources, PN_SOURCE_CONNECTOR | PN_SOURCE_PIDFD);
        assert_int_equal(seen[1].ev.ts_ns, 2990);
        proctable_free(t);
}

/* The other source never comes (a loss, an unwatch): published at the deadline. */
static void test_watched_exit_other_source_late(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(300, 1, 30, "bfdd");
        fake_add(500, 1, 50, "plain");
        ProcTable *t = setup_table(0);
        assert_int_equal(proctable_watch_add(t, 300, 30), 0);
        assert_int_equal(proctable_exit_seen(t, 300, 30, PN_SOURCE_PIDFD, -1, 2000, 2000, on_emit, NULL), 0);
        /* The same source again does not publish. */
        assert_int_equal(proctable_exit_seen(t, 300, 30, PN_SOURCE_PIDFD, -1, 2100, 2100, on_emit, NULL), 0);
        /* A connector event from before the catch-up point does not end the wait. */
        PnEvent other = simple_ev(PN_EVENT_COMM, 500, 500);
        other.comm = "plain";
        other.ts_ns = 2000 + PROCTABLE_EXIT_SLACK_NS - 1;
        handle(t, other);
        assert_int_equal(n_seen, 1);
        n_seen = 0;
        proctable_run_pending(t, 2000 + PROCTABLE_EXIT_WAIT_NS - 1, on_emit, NULL);
        assert_int_equal(n_seen, 0);
        proctable_run_pending(t, 2000 + PROCTABLE_EXIT_WAIT_NS, on_emit, NULL);
        assert_int_equal(n_seen, 1);
        assert_int_equal(seen[0].ev.sources, PN_SOURCE_PIDFD);
        assert_int_equal(seen[0].ev.exit.status, -1); /* not known: null in JSON */
        assert_int_equal(proctable_get_stats(t)->unmerged_exits, 1);
        assert_null(proctable_find(t, 300));
        /* A connector exit arriving later is of a process the table no longer
         * knows: reported as it is (it cannot be told from an unseen one). */

        /* Unwatched: published at once, as always. */
        assert_int_equal(proctable_watch_add(t, 500, 50), 0);
        proctable_watch_remove(t, 500, 50);
        handle(t, exit_ev(500, 500, 0));
        assert_int_equal(n_seen, 2);
        assert_int_equal(seen[1].ev.sources, PN_SOURCE_CONNECTOR);
        proctable_free(t);
}

/* Pidfd first, and the connector (far behind, say) catches up past that
 * moment without the exit: it was lost, published then, not after the wait. */
static void test_watched_exit_connector_caught_up(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(300, 1, 30, "bfdd");
        fake_add(301, 1, 31, "bfdd2");
        fake_add(500, 1, 50, "busy");
        ProcTable *t = setup_table(0);
        assert_int_equal(proctable_watch_add(t, 300, 30), 0);
        assert_int_equal(proctable_watch_add(t, 301, 31), 0);
        assert_int_equal(proctable_exit_seen(t, 300, 30, PN_SOURCE_PIDFD, -1, 5000, 5000, on_emit, NULL), 0);
        assert_int_equal(proctable_exit_seen(t, 301, 31, PN_SOURCE_PIDFD, -1, 9000, 9000, on_emit, NULL), 0);
        /* Backlog from before the pidfd reports: still waiting. */
        PnEvent ev = simple_ev(PN_EVENT_COMM, 500, 500);
        ev.comm = "busy";
        ev.ts_ns = 4000;
        handle(t, ev);
        assert_int_equal(n_seen, 1); /* the comm event */
        /* The connector is past 5000 + slack: 300's exit was lost. It is
         * published before the event that shows it (a fork of a reused
         * pid must not find the old process held). */
        ev.ts_ns = 5000 + PROCTABLE_EXIT_SLACK_NS;
        handle(t, ev);
        assert_int_equal(n_seen, 3);
        assert_int_equal(seen[1].ev.type, PN_EVENT_EXIT);
        assert_int_equal(seen[1].ev.tgid, 300);
        assert_int_equal(seen[1].ev.sources, PN_SOURCE_PIDFD);
        assert_int_equal(seen[2].ev.type, PN_EVENT_COMM);
        /* 301 still waits, and its connector exit still merges. */
        assert_non_null(proctable_find(t, 301));
        PnEvent x = exit_ev(301, 301, 3 << 8);
        x.ts_ns = 8990;
        handle(t, x);
        assert_int_equal(n_seen, 4);
        assert_int_equal(seen[3].ev.sources, PN_SOURCE_CONNECTOR | PN_SOURCE_PIDFD);
        assert_int_equal(seen[3].ev.exit.exit_code, 3);
        assert_int_equal(proctable_get_stats(t)->unmerged_exits, 1);
        assert_int_equal(proctable_get_stats(t)->merged_exits, 1);
        proctable_free(t);
}

/* A watch of a process the table does not know yet (its fork event is on
 * its way) learns it from the reader; the fork event then changes nothing. */
static void test_learn_before_fork_event(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        ProcTable *t = setup_table(0);
        fake_add(600, 1, 60, "young");
        const ProcEntry *e = proctable_learn(t, 600, 2000);
        assert_non_null(e);
        assert_int_equal(e->start_time, 60);
        assert_null(proctable_learn(t, 601, 2000));
        assert_int_equal(proctable_watch_add(t, 600, 60), 0);
        handle(t, fork_ev(1, 600, 600));
        assert_int_equal(n_seen, 1);
        handle(t, exit_ev(600, 600, 0));
        assert_int_equal(n_seen, 1); /* held: still watched */
        proctable_free(t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_seed_and_tree),
                cmocka_unit_test(test_foreach_descendant),
                cmocka_unit_test(test_fork_copies_parent),
                cmocka_unit_test(test_exec_rereads_or_is_nameless),
                cmocka_unit_test(test_threads_one_process_exit),
                cmocka_unit_test(test_leader_exits_first),
                cmocka_unit_test(test_exits_out_of_order),
                cmocka_unit_test(test_joined_thread_stamped_after_group_exit),
                cmocka_unit_test(test_non_leader_exec),
                cmocka_unit_test(test_missed_thread_exits_found_by_pending_check),
                cmocka_unit_test(test_pid_reuse),
                cmocka_unit_test(test_adoption),
                cmocka_unit_test(test_adoption_read_late),
                cmocka_unit_test(test_resync_ghosts),
                cmocka_unit_test(test_resync_zombies),
                cmocka_unit_test(test_comm_and_uid_events),
                cmocka_unit_test(test_unknown_processes),
                cmocka_unit_test(test_max_entries),
                cmocka_unit_test(test_many_entries_and_removal),
                cmocka_unit_test(test_strings_interned),
                cmocka_unit_test(test_unit_from_cgroup),
                cmocka_unit_test(test_child_exit_then_connector_one_exit),
                cmocka_unit_test(test_connector_exit_then_child_one_exit),
                cmocka_unit_test(test_held_exit_released_when_connector_moves_on),
                cmocka_unit_test(test_held_exit_released_by_timeout),
                cmocka_unit_test(test_tracked_child_reaped_before_its_fork_event),
                cmocka_unit_test(test_unknown_child_exit_waits_for_its_fork),
                cmocka_unit_test(test_fork_later_than_the_merge_is_not_a_new_process),
                cmocka_unit_test(test_other_stop_predump_adopt),
                cmocka_unit_test(test_prctl_merge),
                cmocka_unit_test(test_child_and_pidfd_and_connector_one_exit),
                cmocka_unit_test(test_exit_status_of_the_other_source),
                cmocka_unit_test(test_held_exit_then_pid_reused),
                cmocka_unit_test(test_watched_exit_merged),
                cmocka_unit_test(test_watched_exit_other_source_late),
                cmocka_unit_test(test_watched_exit_connector_caught_up),
                cmocka_unit_test(test_learn_before_fork_event),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
