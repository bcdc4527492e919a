/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Predumps and adoptions told by both the connector and a patched kernel's
 * signal (daemon/prctl-merge.c), through the table's interface: one event
 * naming both sources, or the first alone after the hold.
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

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_other_stop_predump_adopt),
                cmocka_unit_test(test_prctl_merge),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
