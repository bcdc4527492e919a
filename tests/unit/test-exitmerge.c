/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The exit merge (daemon/exitmerge.c), through the table's interface: one
 * exit per process from the connector, a pidfd watch and the broker's own
 * wait, held and released by the rules of proctable_exit_seen(); and the
 * adoption of the children an exit leaves.
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

/* --- exits seen by another source (the broker's own children) --- */
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

/* Several exits held for the connector are released in the order they
 * were held, each when the connector is past its own moment; one that the
 * connector's exit merged meanwhile leaves nothing behind to release. */
static void test_held_exits_released_in_order(void **state) {
        static const char name[16] = "x";
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(710, 1, 71, "a");
        fake_add(711, 1, 72, "b");
        fake_add(712, 1, 73, "c");
        fake_add(713, 1, 74, "renamer");
        ProcTable *t = setup_table(0);
        other(t, child_exit_ev(710, 0, 10000), 10000);
        other(t, child_exit_ev(711, 0, 20000), 10000 + PROCTABLE_EXIT_SLACK_NS);
        other(t, child_exit_ev(712, 0, 30000), 10000 + 3 * PROCTABLE_EXIT_SLACK_NS);
        assert_int_equal(n_seen, 0);
        /* The connector's exit of 710 merges it. */
        PnEvent ex = exit_ev(710, 710, 0);
        ex.ts_ns = 10000;
        handle(t, ex);
        assert_int_equal(n_seen, 1);
        assert_int_equal(seen[0].ev.sources, PN_SOURCE_CHILD | PN_SOURCE_CONNECTOR);
        /* Past 711's moment, not 712's: 711 alone is released. */
        PnEvent comm = simple_ev(PN_EVENT_COMM, 713, 713);
        comm.comm = name;
        comm.ts_ns = 10000 + 2 * PROCTABLE_EXIT_SLACK_NS;
        handle(t, comm);
        assert_int_equal(n_seen, 3);
        assert_int_equal(seen[1].ev.tgid, 711);
        assert_int_equal(seen[1].ev.sources, PN_SOURCE_CHILD);
        assert_int_equal(seen[2].ev.type, PN_EVENT_COMM);
        /* Past 712's. */
        comm.ts_ns = 10000 + 5 * PROCTABLE_EXIT_SLACK_NS;
        handle(t, comm);
        assert_int_equal(n_seen, 5);
        assert_int_equal(seen[3].ev.tgid, 712);
        assert_int_equal(proctable_get_stats(t)->unmerged_exits, 2);
        assert_int_equal(proctable_get_stats(t)->merged_exits, 1);
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
        fake_read_ns = 2500; /* read after its exec (stamped 0 here) */
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

/* The broker tracks its child at its clone, before the exec: the name it
 * reads then is the broker's own. A child reaped before the connector's
 * exec is read is nameless at its exec and exit (PROTOCOL.md), never named
 * as the broker (which hid the whole family from a "comm" filter: the
 * children it forked inherit the name). */
static void test_tracked_at_clone_gone_before_exec_is_nameless(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(50, 1, 5, "procnotifyd");
        ProcTable *t = setup_table(0);
        fake_add(706, 50, 76, "procnotifyd");
        fake_read_ns = 1500;
        assert_int_equal(proctable_track(t, 706, 1500), 0);
        other(t, child_exit_ev(706, 0, 3100), 3100);
        fake(706)->alive = false; /* reaped */
        PnEvent f = fork_ev(50, 706, 706);
        f.ts_ns = 1400;
        handle(t, f);
        PnEvent x = simple_ev(PN_EVENT_EXEC, 706, 706);
        x.ts_ns = 1600;
        handle(t, x);
        PnEvent c = fork_ev(706, 707, 707); /* its child, gone as well */
        c.ts_ns = 1700;
        handle(t, c);
        x = exit_ev(706, 706, 0);
        x.ts_ns = 3000;
        handle(t, x);
        assert_int_equal(n_seen, 4);
        assert_int_equal(seen[1].ev.type, PN_EVENT_EXEC);
        assert_true(seen[1].comm_null);
        assert_true(seen[1].exe_null);
        assert_int_equal(seen[2].ev.type, PN_EVENT_FORK);
        assert_true(seen[2].comm_null);
        assert_int_equal(seen[3].ev.type, PN_EVENT_EXIT);
        assert_true(seen[3].comm_null);
        assert_int_equal(seen[3].ev.sources, PN_SOURCE_CONNECTOR | PN_SOURCE_CHILD);
        proctable_free(t);
}

/* A watch learns a process from /proc; the lagging connector brings its
 * fork after it was killed: the late fork of the process the table knows,
 * not a reused pid (whose fork would be stamped after the read). The
 * process is not ended there with an unknown status: its one exit merges
 * the pidfd's and the connector's reports. */
static void test_late_fork_of_a_watched_process_gone_since(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(50, 1, 5, "shell");
        ProcTable *t = setup_table(0);
        fake_add(310, 50, 31, "observer");
        fake_read_ns = 5000;
        assert_non_null(proctable_learn(t, 310, 5000));
        assert_int_equal(proctable_watch_add(t, 310, 31), 0);
        fake(310)->alive = false; /* killed, reaped by its parent */
        PnEvent f = fork_ev(50, 310, 310);
        f.ts_ns = 4000;
        handle(t, f);
        assert_int_equal(n_seen, 1);
        assert_int_equal(seen[0].ev.type, PN_EVENT_FORK);
        assert_string_equal(seen[0].comm, "observer");
        assert_int_equal(proctable_exit_seen(t, 310, 31, PN_SOURCE_PIDFD, -1, 9000, 9000, on_emit, NULL), 0);
        PnEvent x = exit_ev(310, 310, SIGKILL);
        x.ts_ns = 8000;
        handle(t, x);
        assert_int_equal(n_seen, 2);
        assert_int_equal(seen[1].ev.type, PN_EVENT_EXIT);
        assert_int_equal(seen[1].ev.sources, PN_SOURCE_CONNECTOR | PN_SOURCE_PIDFD);
        assert_int_equal(seen[1].ev.exit.signal, SIGKILL);
        assert_null(proctable_find(t, 310));
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

/* A watch learns a process of four threads from /proc before the lagging
 * connector delivers the forks of the process and its threads, all stamped
 * before that read: they are counted once, so the four thread exits end the
 * process, and the pidfd's report merges with the connector's (on the old
 * count of seven, the connector never ended it: the pidfd's exit went out
 * alone, without a status). */
static void test_threads_learned_before_late_forks(void **state) {
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(50, 1, 5, "shell");
        ProcTable *t = setup_table(0);
        fake_add(300, 50, 30, "observer")->nthreads = 4;
        fake_read_ns = 5000;
        assert_non_null(proctable_learn(t, 300, 5000));
        assert_int_equal(proctable_watch_add(t, 300, 30), 0);
        PnEvent f = fork_ev(50, 300, 300);
        f.ts_ns = 4000;
        handle(t, f);
        for (pid_t tid = 301; tid <= 303; tid++) {
                f = fork_ev(300, tid, 300);
                f.ts_ns = 4000 + (uint64_t) tid;
                handle(t, f);
        }
        assert_int_equal(proctable_find(t, 300)->nthreads, 4);
        /* A thread started after the read is a new one. */
        f = fork_ev(300, 304, 300);
        f.ts_ns = 5001;
        handle(t, f);
        assert_int_equal(proctable_find(t, 300)->nthreads, 5);
        n_seen = 0;
        /* Killed: the pidfd first, then every thread's exit (SIGKILL). */
        assert_int_equal(proctable_exit_seen(t, 300, 30, PN_SOURCE_PIDFD, -1, 9000, 9000, on_emit, NULL), 0);
        for (pid_t tid = 300; tid <= 304; tid++) {
                PnEvent x = exit_ev(tid, 300, SIGKILL);
                x.ts_ns = 8000 + (uint64_t) tid;
                handle(t, x);
        }
        assert_int_equal(n_seen, 5); /* four thread exits, then the process's */
        assert_int_equal(seen[4].ev.type, PN_EVENT_EXIT);
        assert_false(seen[4].ev.thread);
        assert_int_equal(seen[4].ev.sources, PN_SOURCE_CONNECTOR | PN_SOURCE_PIDFD);
        assert_int_equal(seen[4].ev.exit.signal, SIGKILL);
        assert_null(proctable_find(t, 300));
        assert_int_equal(proctable_get_stats(t)->merged_exits, 1);
        assert_int_equal(proctable_get_stats(t)->unmerged_exits, 0);
        proctable_free(t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_adoption),
                cmocka_unit_test(test_adoption_read_late),
                cmocka_unit_test(test_child_exit_then_connector_one_exit),
                cmocka_unit_test(test_connector_exit_then_child_one_exit),
                cmocka_unit_test(test_held_exit_released_when_connector_moves_on),
                cmocka_unit_test(test_held_exits_released_in_order),
                cmocka_unit_test(test_held_exit_released_by_timeout),
                cmocka_unit_test(test_tracked_child_reaped_before_its_fork_event),
                cmocka_unit_test(test_unknown_child_exit_waits_for_its_fork),
                cmocka_unit_test(test_fork_later_than_the_merge_is_not_a_new_process),
                cmocka_unit_test(test_child_and_pidfd_and_connector_one_exit),
                cmocka_unit_test(test_exit_status_of_the_other_source),
                cmocka_unit_test(test_held_exit_then_pid_reused),
                cmocka_unit_test(test_watched_exit_merged),
                cmocka_unit_test(test_watched_exit_other_source_late),
                cmocka_unit_test(test_watched_exit_connector_caught_up),
                cmocka_unit_test(test_threads_learned_before_late_forks),
                cmocka_unit_test(test_tracked_at_clone_gone_before_exec_is_nameless),
                cmocka_unit_test(test_late_fork_of_a_watched_process_gone_since),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
