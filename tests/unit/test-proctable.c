/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ProcTable against a fake ProcReader (fake-proc.h): enrichment, threads
 * and one exit per process from the connector, pid reuse, interned strings,
 * the limits, and the queries. The exit merge, the prctl merge, resync and
 * deferred work have test programs of their own.
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

#include "fake-proc.h"

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
                cmocka_unit_test(test_comm_and_uid_events),
                cmocka_unit_test(test_unknown_processes),
                cmocka_unit_test(test_max_entries),
                cmocka_unit_test(test_many_entries_and_removal),
                cmocka_unit_test(test_strings_interned),
                cmocka_unit_test(test_learn_before_fork_event),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
