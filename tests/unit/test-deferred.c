/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The process table's deferred work (deferred.c), through the table's
 * interface: work that cannot be queued is not lost silently, and neither
 * the next deadline nor a connector event costs a scan of what is pending.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <cmocka.h>

#include "fake-proc.h"

/* Beyond the table's limit of deferred work (65,536 items). */
#define OVER_PENDING_MAX 70000

/* Count what the table publishes, by type and tgid of interest. */
typedef struct Counts {
        unsigned events, overruns, exits_of;
        uint64_t lost;
        pid_t tgid;
} Counts;

static void on_count(PnEvent *ev, void *userdata) {
        Counts *c = userdata;
        c->events++;
        if (ev->type == PN_EVENT_OVERRUN) {
                c->overruns++;
                c->lost += ev->overrun.lost;
        }
        if (ev->type == PN_EVENT_EXIT && !ev->thread && ev->tgid == c->tgid)
                c->exits_of++;
}

/* Fill the deferred work: process 200 gets n threads (thread forks), then
 * its leader's exit is reported n - 1 times (the connector repeats nothing
 * of the kind, but the table cannot tell): each queues a leader check. */
static void fill_pending(ProcTable *t, unsigned n, uint64_t now, Counts *c) {
        for (unsigned i = 0; i < n; i++) {
                PnEvent ev = fork_ev(200, 100000 + (pid_t) i, 200);
                ev.ts_ns = now;
                proctable_handle(t, &ev, now, on_count, c);
        }
        for (unsigned i = 0; i + 1 < n; i++) {
                PnEvent ev = exit_ev(200, 200, 0);
                ev.ts_ns = now;
                proctable_handle(t, &ev, now, on_count, c);
        }
}

/* A process that vanished while the deferred work is full is still reported
 * (at once, not after the grace it cannot wait for). */
static void test_ghost_reported_when_pending_full(void **state) {
        Counts c = { .tgid = 300 };
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(200, 1, 20, "threads");
        FakeProc *ghost = fake_add(300, 1, 30, "ghost");
        ProcTable *t = setup_table(0);

        fill_pending(t, OVER_PENDING_MAX, 2000, &c);
        ghost->alive = false;
        assert_int_equal(proctable_resync(t, 3000, on_count, &c), 0);
        /* Far past every grace period. */
        proctable_run_pending(t, 3000 + 10 * PROCTABLE_GHOST_GRACE_NS, on_count, &c);
        proctable_run_pending(t, 3000 + 20 * PROCTABLE_GHOST_GRACE_NS, on_count, &c);
        if (c.exits_of != 1)
                fail_msg("the vanished process 300 got %u exit events (expected 1): its exit was lost "
                         "while the deferred work was full", c.exits_of);
        proctable_free(t);
}

/* A leader exit that cannot be verified later costs a possible exit: it
 * is reported as an overrun, and counted. */
static void test_unverified_leader_exit_reported(void **state) {
        Counts c = { .tgid = 200 };
        (void) state;
        reset();
        fake_add(1, 0, 1, "init");
        fake_add(200, 1, 20, "threads");
        ProcTable *t = setup_table(0);

        fill_pending(t, OVER_PENDING_MAX, 2000, &c);
        if (c.overruns == 0 || c.lost == 0)
                fail_msg("%u leader exits found the deferred work full, and no overrun was published "
                         "(overruns %u, lost %llu)", OVER_PENDING_MAX - 1 - 65536, c.overruns,
                         (unsigned long long) c.lost);
        assert_int_equal(c.lost, OVER_PENDING_MAX - 1 - 65536);
        proctable_free(t);
}

static double cpu_seconds(void) {
        struct timespec ts;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* The CPU time of n connector events (comm changes of process 100), each
 * followed by the next-deadline look-up the broker makes after every busy
 * loop iteration, while an exit seen by the broker's wait is held for the
 * connector; with `pending` leader checks queued. The best of 5 runs. */
static double cost_of_events(unsigned pending, unsigned n) {
        double best = 1e9;

        for (int run = 0; run < 5; run++) {
                Counts c = { 0 };
                reset();
                fake_add(1, 0, 1, "init");
                fake_add(100, 1, 10, "renamer");
                fake_add(200, 1, 20, "threads");
                fake_add(700, 1, 70, "child");
                ProcTable *t = setup_table(0);
                if (pending > 0)
                        fill_pending(t, pending + 1, 2000, &c);
                PnEvent held = child_exit_ev(700, 0, 2000);
                proctable_handle_other(t, &held, 2000, on_count, &c);

                double start = cpu_seconds();
                uint64_t sum = 0;
                for (unsigned i = 0; i < n; i++) {
                        PnEvent ev = simple_ev(PN_EVENT_COMM, 100, 100);
                        ev.comm = "renamer";
                        ev.ts_ns = 2000 + i; /* within the slack: the exit stays held */
                        proctable_handle(t, &ev, 2000, on_count, &c);
                        sum += proctable_next_deadline(t);
                }
                double spent = cpu_seconds() - start;
                assert_true(sum > 0);
                assert_int_equal(c.exits_of, 0);
                best = spent < best ? spent : best;
                proctable_free(t);
        }
        return best;
}

/* 60,000 items pending make a connector event no dearer: no scan. */
static void test_cost_independent_of_pending(void **state) {
        const unsigned n = 2000;
        (void) state;
        double without = cost_of_events(0, n), with = cost_of_events(60000, n);

        printf("# %u events: %.1f µs with nothing pending, %.1f µs with 60,000 items pending\n", n,
               without * 1e6, with * 1e6);
        /* A scan of 60,000 items per event would be thousands of times
         * dearer; the bound leaves room for a loaded machine's noise. */
        if (with > 10 * without + 0.002)
                fail_msg("%u events cost %.0f µs with 60,000 pending items, %.0f µs without: the pending "
                         "work is scanned per event", n, with * 1e6, without * 1e6);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ghost_reported_when_pending_full),
                cmocka_unit_test(test_unverified_leader_exit_reported),
                cmocka_unit_test(test_cost_independent_of_pending),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
