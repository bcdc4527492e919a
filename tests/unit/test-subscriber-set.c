/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SubscriberSet: the fan-out of each event, driven by a real dispatcher, to
 * subscribers of two sinks whose framers (test doubles of the socket and
 * D-Bus framers) record what they are told: the order per subscriber (Unix
 * signal, loss report, event, follow reports), the order across
 * subscribers, removal while a framer runs, signal-only subscriptions, and
 * event types nobody subscribed to.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/subscriber-set.h"

#define CAP 1000
#define BYTES 100

typedef struct Call {
        char what; /* 'L' loss report, 'E' event, 'W' signal withheld, 'F' follow report, 'D' sink done */
        int who;   /* the subscriber's name, or the sink's for 'D' */
        uint64_t seq; /* the event's; for 'L' the number lost; for 'F' the new main */
        bool sig_pending; /* for 'E': SIGUSR1 was pending when the event was queued */
} Call;

typedef struct FakeSink {
        SubscriberSink base;
        int name;
        uint64_t lost, sent, failed, withheld;
} FakeSink;

typedef struct FakeSub {
        Subscriber sub;
        int name;
        uint64_t queued;
        bool fail_deliver;
        bool free_self_on_event;      /* a connection that goes while its event is queued */
        struct FakeSub *free_on_event; /* or another one that goes then */
        bool freed;
} FakeSub;

static Call calls[128];
static size_t n_calls;
static UidLimits *limits;

static FakeSub *fake_of(Subscriber *s) {
        return (FakeSub *) ((char *) s - offsetof(FakeSub, sub));
}

static void record(char what, int who, uint64_t seq, bool pending) {
        assert_true(n_calls < sizeof(calls) / sizeof(calls[0]));
        calls[n_calls++] = (Call){ what, who, seq, pending };
}

static void fake_free(FakeSub *f) {
        subscriber_done(&f->sub);
        f->freed = true; /* kept allocated, so that the test can look; the set must not */
}

static uint64_t op_queued(Subscriber *s) {
        return fake_of(s)->queued;
}

static int op_prepare(Subscriber *s, const PnEvent *ev, uint64_t *ret) {
        (void) s;
        (void) ev;
        *ret = BYTES;
        return 0;
}

static void on_usr1(int sig) {
        (void) sig; /* only if a failed assertion left it unblocked */
}

static bool usr1_pending(void) {
        sigset_t set;
        assert_int_equal(sigpending(&set), 0);
        return sigismember(&set, SIGUSR1);
}

static int op_deliver(Subscriber *s, const PnEvent *ev) {
        FakeSub *f = fake_of(s);

        if (f->fail_deliver)
                return -ENOMEM;
        record('E', f->name, ev->seq, usr1_pending());
        f->queued += BYTES;
        if (f->free_on_event)
                fake_free(f->free_on_event);
        if (f->free_self_on_event)
                fake_free(f);
        return 0;
}

static void op_report_loss(Subscriber *s) {
        record('L', fake_of(s)->name, s->loss.lost, false);
        subscriber_loss_told(s);
}

static void op_report_withheld(Subscriber *s, int sig, const PnEvent *ev) {
        assert_int_equal(sig, SIGUSR1);
        record('W', fake_of(s)->name, ev->seq, false);
}

static void op_report_follow(Subscriber *s, Subscription *sub, const PnEvent *ev, const FollowReport *r) {
        (void) ev;
        assert_int_equal(r->id, sub->id);
        record('F', fake_of(s)->name, (uint64_t) r->main_pid, false);
}

static void op_event_done(SubscriberSink *k) {
        record('D', ((FakeSink *) k)->name, 0, false);
}

static const SubscriberSinkOps ops = {
        .queued = op_queued,
        .prepare = op_prepare,
        .deliver = op_deliver,
        .report_loss = op_report_loss,
        .report_withheld = op_report_withheld,
        .report_follow = op_report_follow,
        .event_done = op_event_done,
};

typedef struct Fixture {
        Dispatcher *d;
        SubscriberSet *set;
        FakeSink socket, dbus; /* 1 and 2 */
        FakeSub subs[4];
} Fixture;

static int setup(void **state) {
        Fixture *fx = calloc(1, sizeof(*fx));
        assert_non_null(fx);
        assert_int_equal(uidlimits_new(&limits), 0);
        assert_int_equal(dispatcher_new(&fx->d), 0);
        assert_int_equal(subscriber_set_new(&fx->set, fx->d, &(FilterContext){ 0 }), 0);
        FakeSink *sinks[] = { &fx->socket, &fx->dbus };
        for (int i = 0; i < 2; i++) {
                sinks[i]->name = i + 1;
                subscriber_set_add_sink(fx->set, &sinks[i]->base, &ops, CAP, &sinks[i]->lost,
                                        (PeerSignalCounts){ &sinks[i]->sent, &sinks[i]->failed, &sinks[i]->withheld });
        }
        n_calls = 0;
        *state = fx;
        return 0;
}

static int teardown(void **state) {
        Fixture *fx = *state;
        for (size_t i = 0; i < 4; i++)
                if (!fx->subs[i].freed)
                        subscriber_done(&fx->subs[i].sub);
        assert_int_equal(subscriber_set_size(fx->set), 0);
        subscriber_set_remove_sink(fx->set, &fx->socket.base);
        subscriber_set_remove_sink(fx->set, &fx->dbus.base);
        subscriber_set_free(fx->set);
        dispatcher_free(fx->d);
        uidlimits_free(limits);
        free(fx);
        return 0;
}

/* Subscriber i of the fixture (name i + 1) on sink k, with uid 1000. */
static FakeSub *sub_init(Fixture *fx, int i, FakeSink *k) {
        FakeSub *f = &fx->subs[i];
        PeerCreds c = { .uid = 1000, .gid = 1000, .pid = getpid() };
        subscriber_init(&f->sub, &c, limits, &k->base, NULL);
        f->name = i + 1;
        return f;
}

/* A subscription to events (PN_EVENT_BIT set), follow may be NULL. */
static Subscription *subscribe(FakeSub *f, uint32_t events, Follow *follow) {
        Filter *filter = NULL;
        Subscription *sub = NULL;
        char err[64];

        assert_int_equal(filter_new_from_json(&filter, NULL, NULL, NULL, err, sizeof(err)), 0);
        filter->events = events;
        assert_int_equal(subscriber_add(&f->sub, 8, sizeof(Subscription), f->sub.n_subs + 1, 0, filter, follow, &sub),
                         0);
        return sub;
}

static void emit(Fixture *fx, PnEvent ev) {
        dispatcher_emit(fx->d, &ev);
}

static PnEvent ev_of(PnEventType type, pid_t pid) {
        return (PnEvent){ .type = type, .pid = pid, .tgid = pid, .uid = 1000 };
}

static PnEvent kernel_overrun(void) {
        return (PnEvent){ .type = PN_EVENT_OVERRUN, .overrun = { .lost = 3 } };
}

static void assert_calls(const char *expected) {
        /* expected: "E1 E2 D1", with seq not compared */
        char got[256] = "";
        for (size_t i = 0; i < n_calls; i++) {
                char one[16];
                if (calls[i].what == 'D')
                        snprintf(one, sizeof(one), "%sD%d", i ? " " : "", calls[i].who);
                else
                        snprintf(one, sizeof(one), "%s%c%d", i ? " " : "", calls[i].what, calls[i].who);
                strcat(got, one);
        }
        assert_string_equal(got, expected);
        n_calls = 0;
}

/* Subscribers of both sinks get each event in the order they subscribed
 * first; each sink is told once per event that it had work; a subscriber
 * without subscriptions is not in the set. */
static void test_two_sinks_order(void **state) {
        Fixture *fx = *state;
        FakeSub *b = sub_init(fx, 1, &fx->dbus), *a = sub_init(fx, 0, &fx->socket), *c = sub_init(fx, 2, &fx->socket);
        FakeSub *idle = sub_init(fx, 3, &fx->dbus);

        subscribe(b, PN_EVENT_ALL_BITS, NULL);
        subscribe(a, PN_EVENT_ALL_BITS, NULL);
        subscribe(c, PN_EVENT_ALL_BITS, NULL);
        assert_int_equal(subscriber_set_size(fx->set), 3);
        (void) idle;

        emit(fx, ev_of(PN_EVENT_EXEC, 10));
        assert_int_equal(calls[0].seq, 1);
        assert_calls("E2 E1 E3 D1 D2");

        /* Gone and back: at the end of the order. */
        subscriber_remove(&b->sub, b->sub.subs);
        assert_int_equal(subscriber_set_size(fx->set), 2);
        emit(fx, ev_of(PN_EVENT_EXEC, 10));
        assert_calls("E1 E3 D1");
        subscribe(b, PN_EVENT_ALL_BITS, NULL);
        emit(fx, ev_of(PN_EVENT_EXEC, 10));
        assert_calls("E1 E3 E2 D1 D2");
        /* Not visible to uid 1000: nobody gets it, no sink is woken. */
        PnEvent other = ev_of(PN_EVENT_EXEC, 11);
        other.uid = 1001;
        emit(fx, other);
        assert_calls("");
        /* Closed (its connection is going): nothing more, whatever it
         * subscribes afterwards. */
        subscriber_close(&a->sub);
        subscribe(a, PN_EVENT_ALL_BITS, NULL);
        emit(fx, ev_of(PN_EVENT_EXEC, 10));
        assert_calls("E3 E2 D1 D2");
}

/* A full queue drops (counted, per sink) until it drained to half; then
 * the loss report comes right before the next event. A kernel overrun gets
 * through a full queue, after the report. */
static void test_loss_before_event(void **state) {
        Fixture *fx = *state;
        FakeSub *a = sub_init(fx, 0, &fx->socket);

        subscribe(a, PN_EVENT_ALL_BITS, NULL);
        a->queued = CAP - 50;
        emit(fx, ev_of(PN_EVENT_EXEC, 10));
        emit(fx, ev_of(PN_EVENT_EXEC, 10));
        assert_int_equal(fx->socket.lost, 2);
        assert_int_equal(a->sub.loss.lost, 2);
        assert_calls("D1 D1");
        a->queued = CAP / 2;
        emit(fx, ev_of(PN_EVENT_EXEC, 10));
        assert_int_equal(calls[0].seq, 2); /* the report says 2 lost */
        assert_calls("L1 E1 D1");

        a->queued = CAP * 2;
        emit(fx, ev_of(PN_EVENT_EXEC, 10)); /* dropped */
        emit(fx, kernel_overrun());
        assert_calls("D1 L1 E1 D1");
        assert_int_equal(a->sub.loss.lost, 0);

        /* A framer that cannot queue: lost, counted, told later. */
        a->queued = 0;
        a->fail_deliver = true;
        emit(fx, ev_of(PN_EVENT_EXEC, 10));
        assert_int_equal(fx->socket.lost, 4);
        a->fail_deliver = false;
        emit(fx, ev_of(PN_EVENT_EXEC, 10));
        assert_calls("L1 D1 E1 D1");
}

/* The main of a followed service exits: the event, then the report naming
 * the successor. An untold loss is reported before the follow report even
 * when the event itself is dropped for a full queue. */
static void test_follow_hand_over(void **state) {
        Fixture *fx = *state;
        FakeSub *a = sub_init(fx, 0, &fx->socket);
        Follow *f = NULL;

        assert_int_equal(follow_new(&f, 100, 1), 0);
        assert_int_equal(follow_add(f, 101, 100), 0);
        assert_int_equal(follow_add(f, 102, 100), 0);
        subscribe(a, PN_EVENT_BIT(PN_EVENT_EXEC), f); /* a follow sees exits all the same */
        emit(fx, ev_of(PN_EVENT_EXIT, 100));
        assert_int_equal(calls[0].seq, 101);
        assert_calls("F1 D1"); /* no line: the filter wants execs only */

        a->queued = CAP * 2;
        emit(fx, ev_of(PN_EVENT_EXEC, 101)); /* dropped: loss untold, queue full */
        emit(fx, ev_of(PN_EVENT_EXIT, 101));
        assert_int_equal(calls[2].seq, 102);
        assert_calls("D1 L1 F1 D1");
}

/* Signals go first: pending before the event is queued; a signal-only
 * subscription sends it without a line; one the subscriber could not send
 * itself is withheld and told once, after the loss before it. */
static void test_signals(void **state) {
        Fixture *fx = *state;
        FakeSub *a = sub_init(fx, 0, &fx->socket), *b = sub_init(fx, 1, &fx->dbus);
        sigset_t usr1, old;
        siginfo_t si;

        sigemptyset(&usr1);
        sigaddset(&usr1, SIGUSR1);
        assert_int_equal(sigaction(SIGUSR1, &(struct sigaction){ .sa_handler = on_usr1 }, NULL), 0);
        assert_int_equal(sigprocmask(SIG_BLOCK, &usr1, &old), 0);

        /* a: its own process (root, the test's) as the target. */
        a->sub.signals.pidfd = (int) syscall(SYS_pidfd_open, getpid(), 0);
        assert_true(a->sub.signals.pidfd >= 0);
        a->sub.signals.ruid = a->sub.signals.euid = getuid();
        Subscription *s1 = subscribe(a, PN_EVENT_ALL_BITS, NULL);
        s1->signal = SIGUSR1;
        emit(fx, ev_of(PN_EVENT_EXEC, 10));
        assert_true(calls[0].sig_pending);
        assert_calls("E1 D1");
        assert_int_equal(fx->socket.sent, 1);
        assert_int_equal(sigtimedwait(&usr1, &si, &(struct timespec){ 0 }), SIGUSR1);
        assert_int_equal(si.si_value.sival_int, 10);
        s1->no_lines = true;
        emit(fx, ev_of(PN_EVENT_EXEC, 12));
        assert_calls("D1");
        assert_int_equal(sigtimedwait(&usr1, &si, &(struct timespec){ 0 }), SIGUSR1);
        assert_int_equal(si.si_value.sival_int, 12);
        emit(fx, kernel_overrun()); /* overruns still come, signal nothing */
        assert_calls("E1 D1");
        assert_int_equal(fx->socket.sent, 2);

        subscriber_remove(&a->sub, s1);
        /* b: as a user who may not signal the (root) target: withheld, told
         * once per episode, after its untold loss. */
        b->sub.signals.pidfd = (int) syscall(SYS_pidfd_open, getpid(), 0);
        b->sub.signals.ruid = b->sub.signals.euid = 12345;
        subscribe(b, PN_EVENT_ALL_BITS, NULL)->signal = SIGUSR1;
        subscriber_lose(&b->sub, 1, 1, 1);
        b->queued = CAP * 2;
        emit(fx, ev_of(PN_EVENT_EXEC, 10));
        emit(fx, ev_of(PN_EVENT_EXEC, 10));
        assert_calls("L2 W2 D2 D2");
        assert_int_equal(fx->dbus.withheld, 2);
        assert_int_equal(fx->dbus.lost, 2);
        assert_false(usr1_pending());
        assert_int_equal(sigprocmask(SIG_SETMASK, &old, NULL), 0);
}

/* A framer may drop its own subscriber, or the next one, while it is
 * called (a connection freed inside a write): the set goes on with those
 * left, and the dropped one gets nothing more (no follow report after its
 * event). ASan (the sanitized suite) sees any use after the drop. */
static void test_removal_during_dispatch(void **state) {
        Fixture *fx = *state;
        FakeSub *a = sub_init(fx, 0, &fx->socket), *b = sub_init(fx, 1, &fx->dbus);
        FakeSub *c = sub_init(fx, 2, &fx->socket), *d = sub_init(fx, 3, &fx->dbus);
        Follow *f = NULL;

        assert_int_equal(follow_new(&f, 100, 1), 0);
        assert_int_equal(follow_add(f, 101, 100), 0);
        subscribe(a, PN_EVENT_ALL_BITS, f);
        subscribe(b, PN_EVENT_ALL_BITS, NULL);
        subscribe(c, PN_EVENT_ALL_BITS, NULL);
        subscribe(d, PN_EVENT_ALL_BITS, NULL);
        a->free_self_on_event = true;
        b->free_on_event = c;
        emit(fx, ev_of(PN_EVENT_EXIT, 100));
        assert_calls("E1 E2 E4 D1 D2");
        assert_true(a->freed);
        assert_true(c->freed);
        assert_int_equal(subscriber_set_size(fx->set), 2);
        b->free_on_event = NULL;
        d->free_self_on_event = true;
        emit(fx, ev_of(PN_EVENT_EXEC, 100));
        assert_calls("E2 E4 D2");
        assert_int_equal(subscriber_set_size(fx->set), 1);
}

/* An event type no subscription names costs O(1): the subscribers are not
 * visited at all. Overruns go to everyone; a follow sees every type. */
static void test_type_nobody_wants(void **state) {
        Fixture *fx = *state;
        FakeSub *a = sub_init(fx, 0, &fx->socket);
        Follow *f = NULL;

        Subscription *s = subscribe(a, PN_EVENT_BIT(PN_EVENT_EXEC), NULL);
        emit(fx, ev_of(PN_EVENT_FORK, 10));
        emit(fx, ev_of(PN_EVENT_EXIT, 10));
        assert_calls("");
        assert_int_equal(subscriber_set_get_stats(fx->set)->events_skipped, 2);
        emit(fx, kernel_overrun());
        assert_calls("E1 D1");

        assert_int_equal(follow_new(&f, 10, 1), 0);
        Subscription *fs = subscribe(a, PN_EVENT_BIT(PN_EVENT_EXEC), f);
        PnEvent fork = ev_of(PN_EVENT_FORK, 11);
        fork.ppid = 10;
        emit(fx, fork); /* the follow takes the child in */
        assert_int_equal(subscriber_set_get_stats(fx->set)->events_skipped, 2);
        assert_true(follow_has(f, 11));
        subscriber_remove(&a->sub, fs);
        subscriber_remove(&a->sub, s);
        subscribe(a, PN_EVENT_BIT(PN_EVENT_FORK), NULL);
        emit(fx, ev_of(PN_EVENT_EXEC, 10));
        assert_int_equal(subscriber_set_get_stats(fx->set)->events_skipped, 3);
        emit(fx, ev_of(PN_EVENT_FORK, 10));
        assert_calls("E1 D1");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_two_sinks_order, setup, teardown),
                cmocka_unit_test_setup_teardown(test_loss_before_event, setup, teardown),
                cmocka_unit_test_setup_teardown(test_follow_hand_over, setup, teardown),
                cmocka_unit_test_setup_teardown(test_signals, setup, teardown),
                cmocka_unit_test_setup_teardown(test_removal_during_dispatch, setup, teardown),
                cmocka_unit_test_setup_teardown(test_type_nobody_wants, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
