/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* UidLimits: per-uid counting, refusal at the maximum, root exempt, reuse. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "daemon/uidlimits.h"

static void test_limit_per_uid(void **state) {
        UidLimits *l;
        (void) state;
        assert_int_equal(uidlimits_new(&l), 0);
        uidlimits_set_max(l, UID_RESOURCE_CLIENTS, 2);
        assert_int_equal(uidlimits_get_max(l, UID_RESOURCE_CLIENTS), 2);
        assert_int_equal(uidlimits_acquire(l, UID_RESOURCE_CLIENTS, 1000), 0);
        assert_int_equal(uidlimits_acquire(l, UID_RESOURCE_CLIENTS, 1000), 0);
        assert_false(uidlimits_may_acquire(l, UID_RESOURCE_CLIENTS, 1000));
        assert_int_equal(uidlimits_acquire(l, UID_RESOURCE_CLIENTS, 1000), UIDLIMITS_E_EXCEEDED);
        assert_int_equal(uidlimits_get(l, UID_RESOURCE_CLIENTS, 1000), 2);
        /* Another user is not affected by the first one's count. */
        assert_true(uidlimits_may_acquire(l, UID_RESOURCE_CLIENTS, 1001));
        assert_int_equal(uidlimits_acquire(l, UID_RESOURCE_CLIENTS, 1001), 0);
        /* Nor is another resource of the same user (unlimited here). */
        assert_int_equal(uidlimits_acquire(l, UID_RESOURCE_SUBSCRIPTIONS, 1000), 0);
        /* A release makes room again. */
        uidlimits_release(l, UID_RESOURCE_CLIENTS, 1000);
        assert_int_equal(uidlimits_get(l, UID_RESOURCE_CLIENTS, 1000), 1);
        assert_int_equal(uidlimits_acquire(l, UID_RESOURCE_CLIENTS, 1000), 0);
        uidlimits_free(l);
}

static void test_root_exempt(void **state) {
        UidLimits *l;
        (void) state;
        assert_int_equal(uidlimits_new(&l), 0);
        uidlimits_set_max(l, UID_RESOURCE_WATCHES, 1);
        for (int i = 0; i < 100; i++)
                assert_int_equal(uidlimits_acquire(l, UID_RESOURCE_WATCHES, 0), 0);
        assert_int_equal(uidlimits_get(l, UID_RESOURCE_WATCHES, 0), 100);
        assert_int_equal(uidlimits_acquire(l, UID_RESOURCE_WATCHES, 1), 0);
        assert_int_equal(uidlimits_acquire(l, UID_RESOURCE_WATCHES, 1), UIDLIMITS_E_EXCEEDED);
        uidlimits_free(l);
}

static void test_lowered_maximum(void **state) {
        UidLimits *l;
        (void) state;
        assert_int_equal(uidlimits_new(&l), 0);
        for (int i = 0; i < 5; i++)
                assert_int_equal(uidlimits_acquire(l, UID_RESOURCE_SUBSCRIPTIONS, 7), 0);
        /* A reload lowers the maximum: what is held stays, new ones wait. */
        uidlimits_set_max(l, UID_RESOURCE_SUBSCRIPTIONS, 3);
        assert_int_equal(uidlimits_get(l, UID_RESOURCE_SUBSCRIPTIONS, 7), 5);
        assert_int_equal(uidlimits_acquire(l, UID_RESOURCE_SUBSCRIPTIONS, 7), UIDLIMITS_E_EXCEEDED);
        uidlimits_release(l, UID_RESOURCE_SUBSCRIPTIONS, 7);
        uidlimits_release(l, UID_RESOURCE_SUBSCRIPTIONS, 7);
        assert_int_equal(uidlimits_acquire(l, UID_RESOURCE_SUBSCRIPTIONS, 7), UIDLIMITS_E_EXCEEDED);
        uidlimits_release(l, UID_RESOURCE_SUBSCRIPTIONS, 7);
        assert_int_equal(uidlimits_acquire(l, UID_RESOURCE_SUBSCRIPTIONS, 7), 0);
        uidlimits_free(l);
}

static void test_release_unknown_and_bad_resource(void **state) {
        UidLimits *l;
        (void) state;
        assert_int_equal(uidlimits_new(&l), 0);
        uidlimits_release(l, UID_RESOURCE_CLIENTS, 42); /* ignored */
        assert_int_equal(uidlimits_get_users(l), 0);
        assert_int_equal(uidlimits_acquire(l, UID_RESOURCE_CLIENTS, 42), 0);
        uidlimits_release(l, UID_RESOURCE_WATCHES, 42); /* held none of these */
        assert_int_equal(uidlimits_get(l, UID_RESOURCE_CLIENTS, 42), 1);
        assert_false(uidlimits_may_acquire(l, _UID_RESOURCE_MAX, 42));
        assert_int_equal(uidlimits_acquire(l, _UID_RESOURCE_MAX, 42), -EINVAL);
        assert_int_equal(uidlimits_get(l, _UID_RESOURCE_MAX, 42), 0);
        assert_string_equal(uid_resource_to_key(UID_RESOURCE_CLIENTS), "MaxClientsPerUser");
        assert_string_equal(uid_resource_to_key(UID_RESOURCE_SUBSCRIPTIONS), "MaxSubscriptionsPerUser");
        assert_string_equal(uid_resource_to_key(UID_RESOURCE_WATCHES), "MaxWatchesPerUser");
        assert_null(uid_resource_to_key(_UID_RESOURCE_MAX));
        uidlimits_release(l, UID_RESOURCE_CLIENTS, 42);
        assert_int_equal(uidlimits_get_users(l), 0);
        uidlimits_free(l);
}

/* Many users, interleaved acquire and release: the table grows, entries
 * are removed when a uid holds nothing, and every count stays exact
 * (checked against a plain array). */
static void test_many_users(void **state) {
        enum { N = 5000 };
        static unsigned want[N][_UID_RESOURCE_MAX];
        UidLimits *l;
        unsigned seed = 1;
        (void) state;
        assert_int_equal(uidlimits_new(&l), 0);
        uidlimits_set_max(l, UID_RESOURCE_CLIENTS, 3);
        for (int step = 0; step < 200000; step++) {
                seed = seed * 1103515245u + 12345u;
                unsigned u = (seed >> 8) % N;
                UidResource w = (UidResource) ((seed >> 4) % _UID_RESOURCE_MAX);
                uid_t uid = 1 + u * 7; /* not 0: root is exempt */
                if ((seed >> 20) & 1) {
                        int r = uidlimits_acquire(l, w, uid);
                        if (w == UID_RESOURCE_CLIENTS && want[u][w] == 3)
                                assert_int_equal(r, UIDLIMITS_E_EXCEEDED);
                        else {
                                assert_int_equal(r, 0);
                                want[u][w]++;
                        }
                } else {
                        uidlimits_release(l, w, uid);
                        if (want[u][w] > 0)
                                want[u][w]--;
                }
        }
        unsigned users = 0;
        for (unsigned u = 0; u < N; u++) {
                bool any = false;
                for (int w = 0; w < _UID_RESOURCE_MAX; w++) {
                        assert_int_equal(uidlimits_get(l, (UidResource) w, 1 + u * 7), want[u][w]);
                        any = any || want[u][w] > 0;
                }
                users += any;
        }
        assert_int_equal(uidlimits_get_users(l), users);
        /* Release everything: the table is empty again. */
        for (unsigned u = 0; u < N; u++)
                for (int w = 0; w < _UID_RESOURCE_MAX; w++)
                        for (; want[u][w] > 0; want[u][w]--)
                                uidlimits_release(l, (UidResource) w, 1 + u * 7);
        assert_int_equal(uidlimits_get_users(l), 0);
        uidlimits_free(l);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_limit_per_uid),
                cmocka_unit_test(test_root_exempt),
                cmocka_unit_test(test_lowered_maximum),
                cmocka_unit_test(test_release_unknown_and_bad_resource),
                cmocka_unit_test(test_many_users),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
