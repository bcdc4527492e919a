/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The deferred-work priority queue (daemon/deferq.c): earliest first, ties
 * in order of arrival, bounded, against a sorted reference.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/deferq.h"

static void test_order_and_ties(void **state) {
        DeferQueue q;
        Deferred d;
        (void) state;

        deferq_init(&q, 0);
        assert_null(deferq_peek(&q));
        assert_int_equal(deferq_pop(&q, &d), -ENOENT);
        assert_int_equal(deferq_push(&q, &(Deferred){ .at = 30, .tgid = 3 }), 0);
        assert_int_equal(deferq_push(&q, &(Deferred){ .at = 10, .tgid = 1 }), 0);
        assert_int_equal(deferq_push(&q, &(Deferred){ .at = 20, .tgid = 20 }), 0);
        assert_int_equal(deferq_push(&q, &(Deferred){ .at = 20, .tgid = 21 }), 0);
        assert_int_equal(deferq_push(&q, &(Deferred){ .at = 20, .tgid = 22 }), 0);
        assert_int_equal(deferq_size(&q), 5);
        assert_int_equal(deferq_peek(&q)->at, 10);
        const pid_t want[] = { 1, 20, 21, 22, 3 };
        for (unsigned i = 0; i < 5; i++) {
                assert_int_equal(deferq_pop(&q, &d), 0);
                assert_int_equal(d.tgid, want[i]);
        }
        assert_int_equal(deferq_size(&q), 0);
        deferq_done(&q);
}

static void test_bounded(void **state) {
        DeferQueue q;
        Deferred d;
        (void) state;

        deferq_init(&q, 3);
        for (unsigned i = 0; i < 3; i++)
                assert_int_equal(deferq_push(&q, &(Deferred){ .at = 5 - i }), 0);
        assert_int_equal(deferq_push(&q, &(Deferred){ .at = 1 }), -ENOSPC);
        assert_int_equal(deferq_pop(&q, &d), 0);
        assert_int_equal(d.at, 3);
        assert_int_equal(deferq_push(&q, &(Deferred){ .at = 1 }), 0);
        assert_int_equal(deferq_peek(&q)->at, 1);
        deferq_clear(&q);
        assert_null(deferq_peek(&q));
        deferq_done(&q);
}

/* Random pushes and pops, checked against a sorted copy (kept sorted by
 * insertion). */
static void test_random_against_sorted(void **state) {
        enum { N = 2000 };
        static uint64_t ref[N];
        size_t n_ref = 0;
        DeferQueue q;
        Deferred d;
        unsigned seed = 42;
        (void) state;

        deferq_init(&q, 0);
        for (unsigned round = 0; round < 4 * N; round++) {
                seed = seed * 1103515245u + 12345u;
                if ((seed >> 16) % 3 != 0 && n_ref < N) {
                        uint64_t at = (seed >> 8) % 1000;
                        size_t k = n_ref;
                        assert_int_equal(deferq_push(&q, &(Deferred){ .at = at }), 0);
                        while (k > 0 && ref[k - 1] > at) {
                                ref[k] = ref[k - 1];
                                k--;
                        }
                        ref[k] = at;
                        n_ref++;
                } else if (n_ref > 0) {
                        assert_int_equal(deferq_pop(&q, &d), 0);
                        assert_int_equal(d.at, ref[0]);
                        memmove(ref, ref + 1, --n_ref * sizeof(ref[0]));
                }
                assert_int_equal(deferq_size(&q), n_ref);
        }
        deferq_done(&q);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_order_and_ties),
                cmocka_unit_test(test_bounded),
                cmocka_unit_test(test_random_against_sorted),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
