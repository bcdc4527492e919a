/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Resync (daemon/resync.c), through the table's interface: processes gone
 * unseen are reported after the grace, zombies are not brought back.
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

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_resync_ghosts),
                cmocka_unit_test(test_resync_zombies),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
