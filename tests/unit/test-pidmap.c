/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The pid map (daemon/pidmap.c): find, grow, and remove without tombstones,
 * also when probe chains collide and wrap around the end of the slots.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "daemon/pidmap.h"

static ProcEntry *entry(pid_t tgid) {
        ProcEntry *e = calloc(1, sizeof(*e));
        assert_non_null(e);
        e->tgid = tgid;
        return e;
}

static void put(PidMap *m, ProcEntry *e) {
        assert_int_equal(pidmap_reserve(m), 0);
        pidmap_put(m, e);
}

static void test_find_put_remove(void **state) {
        PidMap m;
        ProcEntry *a = entry(100), *b = entry(200);
        (void) state;

        assert_int_equal(pidmap_init(&m, 16), 0);
        assert_null(pidmap_find(&m, 100));
        put(&m, a);
        put(&m, b);
        assert_ptr_equal(pidmap_find(&m, 100), a);
        assert_ptr_equal(pidmap_find(&m, 200), b);
        assert_int_equal(m.n, 2);
        pidmap_remove(&m, 100);
        pidmap_remove(&m, 12345); /* not there: nothing happens */
        assert_null(pidmap_find(&m, 100));
        assert_ptr_equal(pidmap_find(&m, 200), b);
        assert_int_equal(m.n, 1);
        pidmap_done(&m);
        free(a);
        free(b);
}

/* Fill, remove every other, check the rest, at every size on the way:
 * the backward shift keeps every chain whole (a tombstone-free map that
 * broke a chain would lose entries here). */
static void test_many_with_removals(void **state) {
        enum { N = 20000 };
        static ProcEntry *e[N];
        PidMap m;
        (void) state;

        assert_int_equal(pidmap_init(&m, 8), 0);
        for (unsigned i = 0; i < N; i++) {
                /* Keys that share low bits, as pids handed out in steps do. */
                e[i] = entry((pid_t) (i * 1024 + 1));
                put(&m, e[i]);
        }
        assert_true(m.nslots >= 2 * N);
        for (unsigned i = 0; i < N; i += 2)
                pidmap_remove(&m, e[i]->tgid);
        assert_int_equal(m.n, N / 2);
        for (unsigned i = 0; i < N; i++)
                assert_ptr_equal(pidmap_find(&m, e[i]->tgid), i % 2 ? e[i] : NULL);
        pidmap_done(&m);
        for (unsigned i = 0; i < N; i++)
                free(e[i]);
}

/* A tiny map whose chains wrap around the end of the slots. */
static void test_wraparound(void **state) {
        PidMap m;
        ProcEntry *e[4];
        (void) state;

        assert_int_equal(pidmap_init(&m, 8), 0);
        for (unsigned i = 0; i < 4; i++) {
                e[i] = entry((pid_t) (i + 1) * 8); /* tgid * odd constant: spread, then collide */
                pidmap_put(&m, e[i]);
        }
        for (unsigned i = 0; i < 4; i++) {
                pidmap_remove(&m, e[i]->tgid);
                for (unsigned j = i + 1; j < 4; j++)
                        assert_ptr_equal(pidmap_find(&m, e[j]->tgid), e[j]);
        }
        assert_int_equal(m.n, 0);
        pidmap_done(&m);
        for (unsigned i = 0; i < 4; i++)
                free(e[i]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_find_put_remove),
                cmocka_unit_test(test_many_with_removals),
                cmocka_unit_test(test_wraparound),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
