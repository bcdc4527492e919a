/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * String interning (daemon/intern.c): one copy per distinct string, shared
 * by reference, freed with the last reference, across bucket growth.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "daemon/intern.h"

static void test_same_string_once(void **state) {
        StrSet set = { 0 };
        (void) state;

        assert_null(strset_intern(&set, NULL));
        RefStr *a = strset_intern(&set, "/usr/bin/prog");
        RefStr *b = strset_intern(&set, "/usr/bin/prog");
        RefStr *c = strset_intern(&set, "/usr/bin/other");
        assert_ptr_equal(a, b);
        assert_ptr_not_equal(a, c);
        assert_string_equal(refstr_get(a), "/usr/bin/prog");
        assert_null(refstr_get(NULL));
        assert_int_equal(set.n, 2);
        assert_ptr_equal(refstr_ref(a), a);
        refstr_unref(&set, a);
        refstr_unref(&set, b);
        assert_int_equal(set.n, 2); /* one reference left */
        refstr_unref(&set, a);
        assert_int_equal(set.n, 1);
        /* A new copy after the last went. */
        RefStr *d = strset_intern(&set, "/usr/bin/prog");
        assert_string_equal(refstr_get(d), "/usr/bin/prog");
        assert_int_equal(set.n, 2);
        refstr_unref(&set, d);
        refstr_unref(&set, c);
        assert_int_equal(set.n, 0);
        strset_done(&set);
}

static void test_set_replaces_only_on_change(void **state) {
        StrSet set = { 0 };
        RefStr *slot = NULL;
        (void) state;

        refstr_set(&set, &slot, "a");
        RefStr *first = slot;
        refstr_set(&set, &slot, "a");
        assert_ptr_equal(slot, first);
        refstr_set(&set, &slot, "b");
        assert_string_equal(refstr_get(slot), "b");
        assert_int_equal(set.n, 1);
        refstr_set(&set, &slot, NULL);
        assert_null(slot);
        assert_int_equal(set.n, 0);
        strset_done(&set);
}

/* Many strings: the buckets grow, and every string is still found. */
static void test_growth(void **state) {
        enum { N = 5000 };
        static RefStr *refs[N];
        StrSet set = { 0 };
        char buf[32];
        (void) state;

        for (unsigned i = 0; i < N; i++) {
                snprintf(buf, sizeof(buf), "s%u", i);
                refs[i] = strset_intern(&set, buf);
                assert_non_null(refs[i]);
        }
        assert_int_equal(set.n, N);
        assert_true(set.nbuckets >= N);
        for (unsigned i = 0; i < N; i++) {
                snprintf(buf, sizeof(buf), "s%u", i);
                RefStr *r = strset_intern(&set, buf);
                assert_ptr_equal(r, refs[i]);
                refstr_unref(&set, r);
        }
        for (unsigned i = 0; i < N; i++)
                refstr_unref(&set, refs[i]);
        assert_int_equal(set.n, 0);
        strset_done(&set);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_same_string_once),
                cmocka_unit_test(test_set_replaces_only_on_change),
                cmocka_unit_test(test_growth),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
