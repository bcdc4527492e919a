/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Policy: who sees what. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "daemon/policy.h"

static PnEvent ev_of(uint32_t uid) {
        PnEvent ev = { .type = PN_EVENT_EXIT, .pid = 5, .tgid = 5, .uid = uid };
        return ev;
}

static void test_root_and_group_see_all(void **state) {
        Policy p;
        PeerCreds c;
        gid_t groups[] = { 10, 4242 };
        PnEvent ev = ev_of(0);
        (void) state;
        policy_init(&p, 4242);
        policy_peer_init(&p, &c, 0, 0, 1, NULL, 0);
        assert_true(c.privileged);
        assert_true(policy_may_see(&c, &ev));
        policy_peer_init(&p, &c, 1000, 1000, 2, groups, 2); /* supplementary member */
        assert_true(c.privileged);
        assert_true(policy_may_see(&c, &ev));
        policy_peer_init(&p, &c, 1000, 4242, 2, NULL, 0);   /* primary group */
        assert_true(c.privileged);
        policy_peer_init(&p, &c, 1000, 1000, 2, groups, 1); /* not a member */
        assert_false(c.privileged);
}

static void test_others_see_their_own(void **state) {
        Policy p;
        PeerCreds c;
        PnEvent own = ev_of(1000), root = ev_of(0), other = ev_of(1001), unknown = ev_of(UINT32_MAX);
        PnEvent overrun = { .type = PN_EVENT_OVERRUN, .uid = 0 };
        (void) state;
        policy_init(&p, (gid_t) -1);
        policy_peer_init(&p, &c, 1000, 1000, 2, NULL, 0);
        assert_false(c.privileged);
        assert_true(policy_may_see(&c, &own));
        assert_false(policy_may_see(&c, &root));
        assert_false(policy_may_see(&c, &other));
        assert_false(policy_may_see(&c, &unknown));
        assert_true(policy_may_see(&c, &overrun));
}

static void test_no_group_configured(void **state) {
        Policy p;
        PeerCreds c;
        gid_t groups[] = { (gid_t) -1 };
        (void) state;
        policy_init(&p, (gid_t) -1);
        /* A peer claiming group -1 is no member of "no group". */
        policy_peer_init(&p, &c, 1000, (gid_t) -1, 2, groups, 1);
        assert_false(c.privileged);
}

static void test_actions(void **state) {
        Policy p;
        PeerCreds root, member, user;
        gid_t groups[] = { 4242 };
        const pid_t broker = 777;
        (void) state;
        policy_init(&p, 4242);
        policy_peer_init(&p, &root, 0, 0, 1, NULL, 0);
        policy_peer_init(&p, &member, 1001, 1001, 2, groups, 1);
        policy_peer_init(&p, &user, 1000, 1000, 3, NULL, 0);

        /* Watches: one's own processes, or any when privileged. */
        assert_true(policy_may_act(&user, POLICY_ACTION_WATCH, 50, 1000, broker));
        assert_false(policy_may_act(&user, POLICY_ACTION_WATCH, 50, 0, broker));
        assert_false(policy_may_act(&user, POLICY_ACTION_WATCH, 50, UINT32_MAX, broker));
        assert_true(policy_may_act(&member, POLICY_ACTION_WATCH, 50, 0, broker));
        /* ptrace: never pid 1 or the broker, not even for root. */
        assert_true(policy_may_act(&user, POLICY_ACTION_WATCH_STOP, 50, 1000, broker));
        assert_false(policy_may_act(&user, POLICY_ACTION_WATCH_STOP, 50, 0, broker));
        assert_false(policy_may_act(&root, POLICY_ACTION_WATCH_STOP, 1, 0, broker));
        assert_false(policy_may_act(&root, POLICY_ACTION_WATCH_STOP, broker, 0, broker));
        assert_true(policy_may_act(&root, POLICY_ACTION_WATCH_STOP, 50, 1000, broker));
        /* run: privileged only. */
        assert_true(policy_may_act(&root, POLICY_ACTION_RUN, 0, 0, broker));
        assert_true(policy_may_act(&member, POLICY_ACTION_RUN, 0, 0, broker));
        assert_false(policy_may_act(&user, POLICY_ACTION_RUN, 0, 0, broker));
        /* A signal to oneself is always allowed. */
        assert_true(policy_may_act(&user, POLICY_ACTION_SIGNAL, 0, 0, broker));
        assert_false(policy_may_act(&user, _POLICY_ACTION_MAX, 50, 1000, broker));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_root_and_group_see_all),
                cmocka_unit_test(test_others_see_their_own),
                cmocka_unit_test(test_no_group_configured),
                cmocka_unit_test(test_actions),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
