/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SinkLoss: what a subscriber lost and was not told, in both sinks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/sink-context.h"

static void test_events_in_order(void **state) {
        SinkLoss l = { 0 };
        PnEvent ev;
        (void) state;
        sink_loss_add(&l, 1, 10, 10);
        sink_loss_add(&l, 1, 12, 12);
        sink_loss_add(&l, 0, 99, 99); /* nothing lost: nothing changes */
        assert_int_equal(l.lost, 2);
        assert_int_equal(l.first_seq, 10);
        assert_int_equal(l.last_seq, 12);
        sink_loss_overrun(&l, &ev);
        assert_int_equal(ev.type, PN_EVENT_OVERRUN);
        assert_int_equal(ev.seq, 0);
        assert_int_equal(ev.overrun.where, PN_OVERRUN_CLIENT);
        assert_int_equal(ev.overrun.lost, 2);
        assert_int_equal(ev.overrun.first_seq, 10);
        assert_int_equal(ev.overrun.last_seq, 12);
        assert_true(ev.ts_ns > 0);
}

/* A report dropped unsent (D-Bus: the bus went away) gives its loss back:
 * it came before the loss still counted, and the range covers both. */
static void test_earlier_loss_merged(void **state) {
        SinkLoss l = { 0 };
        (void) state;
        sink_loss_add(&l, 3, 50, 60);
        sink_loss_add(&l, 5, 20, 40);
        assert_int_equal(l.lost, 8);
        assert_int_equal(l.first_seq, 20);
        assert_int_equal(l.last_seq, 60);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_events_in_order),
                cmocka_unit_test(test_earlier_loss_merged),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
