/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The process tree (daemon/proctree.c): links, ancestry, and the pre-order
 * walk, which is bounded even on a corrupt loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "daemon/proctree.h"

static void collect(const ProcEntry *e, void *ctx) {
        pid_t **p = ctx;
        *(*p)++ = e->tgid;
}

static void test_link_walk_unlink(void **state) {
        ProcEntry p[6] = { { .tgid = 1 }, { .tgid = 2 }, { .tgid = 3 }, { .tgid = 4 }, { .tgid = 5 }, { .tgid = 6 } };
        pid_t got[8] = { 0 }, *g = got;
        (void) state;

        /* 1 ─ 2 ─ 4
         *   └ 3 ─ 5 */
        proctree_link(&p[1], &p[0]);
        proctree_link(&p[2], &p[0]);
        proctree_link(&p[3], &p[1]);
        proctree_link(&p[4], &p[2]);
        proctree_link(&p[5], &p[5]); /* its own parent: not linked */
        assert_null(p[5].parent);
        assert_true(proctree_is_descendant(&p[4], 1));
        assert_true(proctree_is_descendant(&p[4], 3));
        assert_false(proctree_is_descendant(&p[4], 2));
        assert_false(proctree_is_descendant(&p[0], 1));

        proctree_foreach_descendant(&p[0], 100, collect, &g);
        assert_int_equal(g - got, 4);
        /* Parents before their children; the newest child first. */
        assert_int_equal(got[0], 3);
        assert_int_equal(got[1], 5);
        assert_int_equal(got[2], 2);
        assert_int_equal(got[3], 4);

        /* Re-parent 5 under 2, then unlink 2 (with 4 and 5 under it). */
        proctree_link(&p[4], &p[1]);
        assert_null(p[2].first_child);
        assert_true(proctree_is_descendant(&p[4], 2));
        proctree_unlink(&p[1]);
        assert_false(proctree_is_descendant(&p[4], 1));
        g = got;
        proctree_foreach_descendant(&p[0], 100, collect, &g);
        assert_int_equal(g - got, 1);
        assert_int_equal(got[0], 3);
}

static void count(const ProcEntry *e, void *ctx) {
        (void) e;
        (*(unsigned *) ctx)++;
}

/* A corrupt loop (a process that is its own grandchild) hangs neither walk. */
static void test_bounded_on_a_loop(void **state) {
        ProcEntry a = { .tgid = 1 }, b = { .tgid = 2 };
        unsigned calls = 0;
        (void) state;

        proctree_link(&b, &a);
        a.parent = &b; /* corrupt on purpose */
        b.first_child = &a;
        assert_false(proctree_is_descendant(&a, 99));
        proctree_foreach_descendant(&a, 10, count, &calls);
        assert_int_equal(calls, 10);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_link_walk_unlink),
                cmocka_unit_test(test_bounded_on_a_loop),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
