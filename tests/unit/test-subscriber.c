/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Subscriber: what both sinks decide alike per event and per request —
 * visibility, matching, signal-only subscriptions, follow hand-over, limits,
 * loss with hysteresis and its report before any reply — without a socket
 * or a bus, so without the timing the integration tests depend on.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/subscriber.h"

#define MAX_SUBS 4
#define CAP 1000

typedef struct Fixture {
        UidLimits *limits;
        Subscriber sub;
} Fixture;

static PeerCreds user(uid_t uid) {
        return (PeerCreds){ .uid = uid, .gid = uid, .pid = 4242 };
}

static PnEvent exec_ev(uint64_t seq, pid_t pid, uint32_t uid) {
        return (PnEvent){ .type = PN_EVENT_EXEC, .seq = seq, .pid = pid, .tgid = pid, .uid = uid };
}

static PnEvent exit_ev(uint64_t seq, pid_t pid, uint32_t uid) {
        return (PnEvent){ .type = PN_EVENT_EXIT, .seq = seq, .pid = pid, .tgid = pid, .uid = uid };
}

static PnEvent kernel_overrun(uint64_t seq) {
        return (PnEvent){ .type = PN_EVENT_OVERRUN, .seq = seq, .overrun = { .lost = 3 } };
}

static Filter *all_events(void) {
        Filter *f = NULL;
        char err[64];
        assert_int_equal(filter_new_from_json(&f, NULL, NULL, NULL, err, sizeof(err)), 0);
        return f;
}

static int setup(void **state) {
        Fixture *fx = calloc(1, sizeof(*fx));
        assert_non_null(fx);
        assert_int_equal(uidlimits_new(&fx->limits), 0);
        PeerCreds c = user(1000);
        subscriber_init(&fx->sub, &c, fx->limits, NULL, NULL);
        *state = fx;
        return 0;
}

static int teardown(void **state) {
        Fixture *fx = *state;
        subscriber_done(&fx->sub);
        uidlimits_free(fx->limits);
        free(fx);
        return 0;
}

static Subscription *add(Fixture *fx, Follow *follow) {
        Subscription *sub = NULL;
        assert_int_equal(subscriber_add(&fx->sub, MAX_SUBS, sizeof(Subscription), fx->sub.n_subs + 1, 0,
                                        all_events(), follow, &sub), 0);
        return sub;
}

static void match(Fixture *fx, PnEvent ev, SubscriberMatch *m) {
        subscriber_match(&fx->sub, &ev, &(FilterContext){ 0 }, m);
}

/* An unprivileged subscriber sees its own user's processes and overruns. */
static void test_visibility(void **state) {
        Fixture *fx = *state;
        SubscriberMatch m;

        add(fx, NULL);
        match(fx, exec_ev(1, 10, 1000), &m);
        assert_true(m.visible);
        assert_true(m.deliver);
        match(fx, exec_ev(2, 11, 1001), &m);
        assert_false(m.visible);
        assert_false(m.deliver);
        match(fx, exec_ev(3, 12, UINT32_MAX), &m); /* owner unknown: nobody's */
        assert_false(m.deliver);
        match(fx, kernel_overrun(4), &m);
        assert_true(m.deliver);
}

/* "lines": false: the signal only, but overruns still come; every
 * matching subscription adds its signal. */
static void test_signal_only(void **state) {
        Fixture *fx = *state;
        SubscriberMatch m;

        Subscription *a = add(fx, NULL);
        a->signal = 10;
        a->no_lines = true;
        match(fx, exec_ev(1, 10, 1000), &m);
        assert_false(m.deliver);
        assert_int_equal(m.sigmask, UINT64_C(1) << 9);
        match(fx, kernel_overrun(2), &m);
        assert_true(m.deliver);
        assert_int_equal(m.sigmask, 0); /* an overrun signals nothing */

        Subscription *b = add(fx, NULL);
        b->signal = 12;
        match(fx, exec_ev(3, 10, 1000), &m);
        assert_true(m.deliver);
        assert_int_equal(m.sigmask, (UINT64_C(1) << 9) | (UINT64_C(1) << 11));
        match(fx, exec_ev(4, 10, 1001), &m); /* not visible: no signal either */
        assert_int_equal(m.sigmask, 0);
}

/* The main exits: the report names its successor, once; an event the
 * subscriber may not see still moves the follow, but reports nothing. */
static void test_follow_hand_over(void **state) {
        Fixture *fx = *state;
        Follow *f = NULL;
        SubscriberMatch m;
        FollowReport r;
        Subscription *got = NULL;

        assert_int_equal(follow_new(&f, 100, 1), 0);
        assert_int_equal(follow_add(f, 101, 100), 0);
        assert_int_equal(follow_add(f, 102, 100), 0);
        Subscription *sub = add(fx, f);
        assert_int_equal(fx->sub.n_follows, 1);

        PnEvent ev = exit_ev(7, 100, 1000);
        match(fx, ev, &m);
        assert_true(m.deliver);
        assert_true(m.follow_changed);
        assert_int_equal(subscriber_next_follow_report(&fx->sub, &ev, &m, &r, &got), 1);
        assert_ptr_equal(got, sub);
        assert_string_equal(r.reason, "main-exited");
        assert_int_equal(r.main_pid, 101);
        assert_int_equal(r.previous_main_pid, 100);
        assert_int_equal(r.cause_seq, 7);
        assert_int_equal(r.id, sub->id);
        assert_int_equal(subscriber_next_follow_report(&fx->sub, &ev, &m, &r, &got), 0);

        /* The new main exits as someone else's process: the follow moves on,
         * the subscriber is told nothing (and the change is spent). */
        ev = exit_ev(8, 101, 1001);
        match(fx, ev, &m);
        assert_false(m.visible);
        assert_false(m.deliver);
        assert_true(m.follow_changed);
        assert_int_equal(subscriber_next_follow_report(&fx->sub, &ev, &m, &r, NULL), 0);
        assert_int_equal(follow_get_main(f), 102);
        /* A process outside the service does not match a followed subscription. */
        match(fx, exec_ev(9, 500, 1000), &m);
        assert_false(m.deliver);
        match(fx, exec_ev(10, 102, 1000), &m);
        assert_true(m.deliver);
}

/* A signal-only subscription gets no follow reports. */
static void test_follow_no_lines(void **state) {
        Fixture *fx = *state;
        Follow *f = NULL;
        SubscriberMatch m;
        FollowReport r;

        assert_int_equal(follow_new(&f, 100, 1), 0);
        assert_int_equal(follow_add(f, 101, 100), 0);
        Subscription *sub = add(fx, f);
        sub->no_lines = true;
        sub->signal = 10;
        PnEvent ev = exit_ev(7, 100, 1000);
        match(fx, ev, &m);
        assert_false(m.deliver);
        assert_true(m.follow_changed);
        assert_int_equal(subscriber_next_follow_report(&fx->sub, &ev, &m, &r, NULL), 0);
        assert_int_equal(follow_get_main(f), 101);
}

/* One wording of each limit for both sinks; nothing is taken on refusal. */
static void test_limits(void **state) {
        Fixture *fx = *state;
        Subscriber other;
        PeerCreds c = user(1000);
        char msg[160];
        Filter *f = all_events();

        for (int i = 0; i < MAX_SUBS; i++)
                add(fx, NULL);
        assert_int_equal(subscriber_may_add(&fx->sub, MAX_SUBS), SUBSCRIBER_E_CONNECTION_LIMIT);
        assert_int_equal(subscriber_add(&fx->sub, MAX_SUBS, sizeof(Subscription), 99, 0, f, NULL, NULL),
                         SUBSCRIBER_E_CONNECTION_LIMIT);
        subscriber_limit_message(SUBSCRIBER_E_CONNECTION_LIMIT, MAX_SUBS, fx->limits, msg, sizeof(msg));
        assert_string_equal(msg, "at most 4 subscriptions per connection (MaxSubscriptions)");

        /* The user's limit counts every connection of that user. */
        uidlimits_set_max(fx->limits, UID_RESOURCE_SUBSCRIPTIONS, MAX_SUBS + 1);
        subscriber_init(&other, &c, fx->limits, NULL, NULL);
        assert_int_equal(subscriber_add(&other, MAX_SUBS, sizeof(Subscription), 1, 0, f, NULL, NULL), 0);
        f = all_events();
        assert_int_equal(subscriber_may_add(&other, MAX_SUBS), SUBSCRIBER_E_USER_LIMIT);
        assert_int_equal(subscriber_add(&other, MAX_SUBS, sizeof(Subscription), 2, 0, f, NULL, NULL),
                         SUBSCRIBER_E_USER_LIMIT);
        subscriber_limit_message(SUBSCRIBER_E_USER_LIMIT, MAX_SUBS, fx->limits, msg, sizeof(msg));
        assert_string_equal(msg, "at most 5 subscriptions per user, on all connections (MaxSubscriptionsPerUser)");
        /* Removing one gives room back. */
        subscriber_remove(&fx->sub, fx->sub.subs);
        assert_int_equal(subscriber_may_add(&other, MAX_SUBS), 0);
        assert_int_equal(subscriber_add(&other, MAX_SUBS, sizeof(Subscription), 2, 0, f, NULL, NULL), 0);
        subscriber_done(&other);
        assert_int_equal(other.n_subs, 0);
}

static void test_follow_limit(void **state) {
        Fixture *fx = *state;
        Subscription *sub;

        for (int i = 0; i < FOLLOW_MAX_PER_CONNECTION; i++) {
                Follow *f = NULL;
                assert_int_equal(follow_new(&f, 100 + i, 1), 0);
                assert_int_equal(subscriber_add(&fx->sub, 64, sizeof(Subscription), i + 1, 0, all_events(), f,
                                                &sub), 0);
        }
        Follow *f = NULL;
        Filter *filter = all_events();
        assert_int_equal(follow_new(&f, 200, 1), 0);
        assert_int_equal(subscriber_add(&fx->sub, 64, sizeof(Subscription), 99, 0, filter, f, &sub),
                         SUBSCRIBER_E_FOLLOW_LIMIT);
        follow_free(f);
        filter_free(filter);
        /* Without a follow there is room still. */
        filter = all_events();
        assert_int_equal(subscriber_add(&fx->sub, 64, sizeof(Subscription), 99, 0, filter, NULL, &sub), 0);
}

/* Hysteresis: a full queue drops until it drained to half; then the loss
 * is reported once, before the next event, and events flow again. */
static void test_loss_hysteresis(void **state) {
        Fixture *fx = *state;
        PnEvent ev, report;

        ev = exec_ev(10, 10, 1000);
        assert_false(subscriber_loss_due(&fx->sub, &ev, 900, CAP));
        assert_int_equal(subscriber_admit(&fx->sub, &ev, 900, 200, CAP), SUBSCRIBER_DROP);
        ev = exec_ev(11, 10, 1000);
        /* Room for this one, but the queue is still over half: still dropped. */
        assert_false(subscriber_loss_due(&fx->sub, &ev, 600, CAP));
        assert_int_equal(subscriber_admit(&fx->sub, &ev, 600, 100, CAP), SUBSCRIBER_DROP);
        ev = exec_ev(12, 10, 1000);
        assert_true(subscriber_loss_due(&fx->sub, &ev, 500, CAP));
        subscriber_loss_report(&fx->sub, &report);
        assert_int_equal(report.type, PN_EVENT_OVERRUN);
        assert_int_equal(report.overrun.where, PN_OVERRUN_CLIENT);
        assert_int_equal(report.overrun.lost, 2);
        assert_int_equal(report.overrun.first_seq, 10);
        assert_int_equal(report.overrun.last_seq, 11);
        subscriber_loss_told(&fx->sub);
        assert_int_equal(subscriber_admit(&fx->sub, &ev, 560, 100, CAP), SUBSCRIBER_QUEUE);
        assert_false(subscriber_loss_due(&fx->sub, NULL, 0, CAP));
}

/* A kernel overrun gets through a full queue, after the report of the
 * loss before it; a reply is preceded by the report whatever the queue. */
static void test_loss_before_overrun_and_reply(void **state) {
        Fixture *fx = *state;
        PnEvent ev = exec_ev(20, 10, 1000), ov = kernel_overrun(21);

        assert_false(subscriber_loss_due_before_reply(&fx->sub));
        assert_int_equal(subscriber_admit(&fx->sub, &ev, CAP, 100, CAP), SUBSCRIBER_DROP);
        assert_true(subscriber_loss_due_before_reply(&fx->sub)); /* a reply now: the report first */
        assert_false(subscriber_loss_due(&fx->sub, &ev, CAP, CAP));
        assert_true(subscriber_loss_due(&fx->sub, &ov, CAP, CAP));
        subscriber_loss_told(&fx->sub);
        assert_int_equal(subscriber_admit(&fx->sub, &ov, CAP + 500, 100, CAP), SUBSCRIBER_QUEUE);
        assert_false(subscriber_loss_due_before_reply(&fx->sub));
        /* A message that could not be sent is loss too, with its range. */
        subscriber_lose(&fx->sub, 3, 30, 32);
        assert_int_equal(fx->sub.loss.lost, 3);
        assert_int_equal(fx->sub.loss.first_seq, 30);
        assert_int_equal(fx->sub.loss.last_seq, 32);
}

/* Subscriptions come back in the order they were added; find and remove. */
static void test_find_remove(void **state) {
        Fixture *fx = *state;
        Subscription *a = add(fx, NULL), *b = add(fx, NULL), *c = add(fx, NULL);

        assert_ptr_equal(fx->sub.subs, a);
        assert_ptr_equal(a->next, b);
        assert_ptr_equal(subscriber_find(&fx->sub, c->id), c);
        subscriber_remove(&fx->sub, b);
        assert_ptr_equal(a->next, c);
        assert_null(subscriber_find(&fx->sub, 2));
        assert_int_equal(fx->sub.n_subs, 2);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_visibility, setup, teardown),
                cmocka_unit_test_setup_teardown(test_signal_only, setup, teardown),
                cmocka_unit_test_setup_teardown(test_follow_hand_over, setup, teardown),
                cmocka_unit_test_setup_teardown(test_follow_no_lines, setup, teardown),
                cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
                cmocka_unit_test_setup_teardown(test_follow_limit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_loss_hysteresis, setup, teardown),
                cmocka_unit_test_setup_teardown(test_loss_before_overrun_and_reply, setup, teardown),
                cmocka_unit_test_setup_teardown(test_find_remove, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
