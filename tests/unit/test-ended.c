/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The "recently ended" ring (daemon/ended.c): kept for a time, forgotten
 * when a pid is reused, overwritten oldest first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "daemon/ended.h"

#define KEEP 1000

static void test_seen_after_forget(void **state) {
        EndedRing r = { 0 };
        (void) state;

        assert_false(ended_seen(&r, 100, 10, KEEP));
        ended_add(&r, 100, 10, false);
        ended_add(&r, 200, 20, true);
        assert_true(ended_seen(&r, 100, 500, KEEP));
        assert_false(ended_seen(&r, 100, 10 + KEEP, KEEP)); /* too long ago */
        /* A late connector event of 200, stamped before its end was
         * published without the connector, belongs to it; 100's end was the
         * connector's own. */
        assert_true(ended_after(&r, 200, 15, 30, KEEP));
        assert_false(ended_after(&r, 200, 25, 30, KEEP));
        assert_false(ended_after(&r, 100, 5, 30, KEEP));
        ended_forget(&r, 200);
        assert_false(ended_seen(&r, 200, 30, KEEP));
        assert_true(ended_seen(&r, 100, 30, KEEP));
}

static void test_ring_overwrites_oldest(void **state) {
        EndedRing r = { 0 };
        (void) state;

        for (pid_t i = 1; i <= ENDED_RING + 10; i++)
                ended_add(&r, i, 100, false);
        for (pid_t i = 1; i <= 10; i++)
                assert_false(ended_seen(&r, i, 100, KEEP));
        for (pid_t i = 11; i <= ENDED_RING + 10; i++)
                assert_true(ended_seen(&r, i, 100, KEEP));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_seen_after_forget),
                cmocka_unit_test(test_ring_overwrites_oldest),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
