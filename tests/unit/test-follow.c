/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Follow: the rule by which a followed service's main pid moves, fed with
 * the events the broker would publish. The real kernel's version of the
 * same is in tests/integration/test_adopt.py.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "daemon/follow.h"

static PnEvent fork_ev(pid_t parent, pid_t child) {
        return (PnEvent){ .type = PN_EVENT_FORK, .pid = child, .tgid = child, .ppid = parent };
}

static PnEvent exit_ev(pid_t pid) {
        return (PnEvent){ .type = PN_EVENT_EXIT, .pid = pid, .tgid = pid };
}

static PnEvent adopt_ev(pid_t pid, pid_t old_parent, pid_t new_parent) {
        return (PnEvent){ .type = PN_EVENT_ADOPT, .pid = pid, .tgid = pid, .ppid = new_parent,
                          .adopt = { .old_parent = old_parent, .new_parent = new_parent } };
}

static bool update(Follow *f, PnEvent ev, FollowChange *ch) {
        return follow_update(f, &ev, ch);
}

/* The classic dance, three forks deep: the main walks down to the last. */
static void test_fork_dance(void **state) {
        Follow *f = NULL;
        FollowChange ch;
        (void) state;

        assert_int_equal(follow_new(&f, 100, 1), 0);
        assert_true(update(f, fork_ev(100, 101), &ch));
        assert_int_equal(ch.kind, FOLLOW_CHANGE_NONE);
        assert_false(update(f, fork_ev(50, 51), &ch)); /* not ours */
        assert_true(update(f, exit_ev(100), &ch));      /* the exiting main still matches */
        assert_int_equal(ch.kind, FOLLOW_CHANGE_MAIN_EXITED);
        assert_int_equal(ch.previous_main, 100);
        assert_int_equal(ch.main, 101);
        assert_int_equal(ch.candidates, 1);
        assert_true(update(f, adopt_ev(101, 100, 1), &ch));
        assert_true(update(f, fork_ev(101, 102), &ch));
        assert_true(update(f, exit_ev(101), &ch));
        assert_int_equal(ch.main, 102);
        assert_true(update(f, fork_ev(102, 103), &ch));
        assert_true(update(f, exit_ev(102), &ch));
        assert_int_equal(ch.main, 103);
        assert_int_equal(follow_get_main(f), 103);
        assert_int_equal(follow_size(f), 1);
        assert_false(follow_has(f, 100));
        assert_true(update(f, exit_ev(103), &ch));
        assert_int_equal(ch.kind, FOLLOW_CHANGE_ENDED);
        assert_int_equal(ch.main, 0);
        assert_int_equal(ch.members, 0);
        assert_false(update(f, fork_ev(103, 104), &ch)); /* an ended follow matches nothing */
        follow_free(f);
}

/* The main's own child wins over an orphan adopted away earlier, even a
 * member that joined before it; among equals, the first to join. */
static void test_successor_choice(void **state) {
        Follow *f = NULL;
        FollowChange ch;
        (void) state;

        assert_int_equal(follow_new(&f, 10, 1), 0);
        update(f, fork_ev(10, 11), &ch);      /* a helper … */
        update(f, fork_ev(11, 12), &ch);      /* … that double-forks */
        update(f, exit_ev(11), &ch);
        update(f, adopt_ev(12, 11, 1), &ch);  /* 12: a member whose parent is not one */
        update(f, fork_ev(10, 13), &ch);      /* the worker */
        update(f, fork_ev(10, 14), &ch);      /* a second worker */
        update(f, fork_ev(13, 15), &ch);      /* below a member: never a candidate */
        assert_true(update(f, exit_ev(10), &ch));
        assert_int_equal(ch.kind, FOLLOW_CHANGE_MAIN_EXITED);
        assert_int_equal(ch.main, 13);
        assert_int_equal(ch.candidates, 3); /* 12, 13, 14 */
        /* Without children of the main, the earliest top-level member. */
        update(f, adopt_ev(13, 10, 1), &ch);
        update(f, adopt_ev(14, 10, 1), &ch);
        assert_true(update(f, exit_ev(13), &ch));
        assert_int_equal(ch.main, 15); /* 13's own child */
        update(f, adopt_ev(15, 13, 1), &ch);
        assert_true(update(f, exit_ev(15), &ch));
        assert_int_equal(ch.main, 12);
        assert_int_equal(ch.candidates, 2); /* 12, 14 */
        follow_free(f);
}

/* Threads and other members' events; overruns are no member's. */
static void test_threads_and_others(void **state) {
        Follow *f = NULL;
        FollowChange ch;
        PnEvent thread_fork = { .type = PN_EVENT_FORK, .pid = 21, .tgid = 20, .ppid = 1, .thread = true };
        PnEvent thread_exit = { .type = PN_EVENT_EXIT, .pid = 21, .tgid = 20, .thread = true };
        PnEvent comm = { .type = PN_EVENT_COMM, .pid = 20, .tgid = 20 };
        PnEvent overrun = { .type = PN_EVENT_OVERRUN };
        (void) state;

        assert_int_equal(follow_new(&f, 20, 1), 0);
        assert_true(follow_update(f, &thread_fork, &ch));
        assert_true(follow_update(f, &thread_exit, &ch));
        assert_int_equal(follow_get_main(f), 20); /* a thread's end is not the process's */
        assert_true(follow_update(f, &comm, &ch));
        assert_false(follow_update(f, &overrun, &ch));
        assert_int_equal(ch.kind, FOLLOW_CHANGE_NONE);
        follow_free(f);
}

/* A fork bomb inside the service: followed up to the limit, told once. */
static void test_limit(void **state) {
        Follow *f = NULL;
        FollowChange ch;
        unsigned limits = 0;
        (void) state;

        assert_int_equal(follow_new(&f, 1000, 1), 0);
        for (pid_t p = 1001; p < 1001 + FOLLOW_MAX_MEMBERS + 10; p++) {
                update(f, fork_ev(1000, p), &ch);
                limits += ch.kind == FOLLOW_CHANGE_LIMIT;
        }
        assert_int_equal(follow_size(f), FOLLOW_MAX_MEMBERS);
        assert_int_equal(limits, 1);
        assert_int_equal(follow_add(f, 99999, 1000), FOLLOW_E_FULL);
        assert_int_equal(follow_add(f, 1000, 1), FOLLOW_E_MEMBER);
        /* Removal keeps every other member findable (backward-shift deletion). */
        for (pid_t p = 1001; p < 1001 + FOLLOW_MAX_MEMBERS - 1; p += 2)
                assert_true(update(f, exit_ev(p), &ch));
        for (pid_t p = 1002; p < 1001 + FOLLOW_MAX_MEMBERS - 1; p += 2)
                assert_true(follow_has(f, p));
        follow_free(f);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fork_dance),
                cmocka_unit_test(test_successor_choice),
                cmocka_unit_test(test_threads_and_others),
                cmocka_unit_test(test_limit),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
