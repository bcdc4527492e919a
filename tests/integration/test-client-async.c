/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libprocnotify's non-blocking interface against the real broker: cmocka
 * tests run by test_ctl.py (client_async), which starts the broker and
 * passes its socket in $PROCNOTIFY_SOCKET. Each test drives the client from
 * a poll loop of its own, as a caller with its own event loop would, and
 * checks that no call waits: every library call returns within a bound far
 * below any of the library's own timeouts.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "procnotify/client.h"

#define LOOP_TIMEOUT_MS 10000
#define CALL_BOUND_MS 500 /* a call that took longer waited: the library's waits are 5 s and 10 s */

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What the callbacks saw, in order. */
typedef struct Seen {
        int n;
        char what[16][16];
        int result[16];
        char code[16][32];
        char reply[16][256];
} Seen;

static void seen_add(Seen *s, const char *what, int result, const char *code, const char *reply) {
        assert_true(s->n < 16);
        snprintf(s->what[s->n], sizeof(s->what[0]), "%s", what);
        s->result[s->n] = result;
        snprintf(s->code[s->n], sizeof(s->code[0]), "%s", code);
        snprintf(s->reply[s->n], sizeof(s->reply[0]), "%s", reply ? reply : "");
        s->n++;
}

static Seen seen;

static void on_open(PnClient *c, int result, const char *reply, void *userdata) {
        seen_add(&seen, "open", result, pn_client_get_error_code(c), reply);
}
static void on_subscribe(PnClient *c, int result, const char *reply, void *userdata) {
        seen_add(&seen, "subscribe", result, pn_client_get_error_code(c), reply);
}
static void on_ping(PnClient *c, int result, const char *reply, void *userdata) {
        seen_add(&seen, "ping", result, pn_client_get_error_code(c), reply);
}

/* Run one library call and check it did not wait. */
#define NO_WAIT(call)                                                                   \
        ({                                                                              \
                int64_t _t0 = now_ms();                                                 \
                int _r = (call);                                                        \
                int64_t _took = now_ms() - _t0;                                         \
                if (_took > CALL_BOUND_MS)                                              \
                        fail_msg("%s took %lld ms: it waited", #call, (long long) _took); \
                _r;                                                                     \
        })

/* Poll the client's descriptor and process until done() or the timeout. */
static void loop_until(PnClient *c, bool (*done)(PnClient *c, void *data), void *data) {
        int64_t deadline = now_ms() + LOOP_TIMEOUT_MS;

        while (!done(c, data)) {
                int left = (int) (deadline - now_ms());
                if (left <= 0)
                        fail_msg("not done within %d ms", LOOP_TIMEOUT_MS);
                struct pollfd p = { .fd = pn_client_get_fd(c), .events = (short) pn_client_get_events(c) };
                if (p.fd < 0)
                        fail_msg("the connection was lost");
                int r = poll(&p, 1, left);
                assert_true(r >= 0);
                if (r > 0 && NO_WAIT(pn_client_process(c)) < 0)
                        /* The error that closed the connection, told to
                         * the callbacks too. */
                        assert_int_equal(pn_client_get_state(c), PN_CLIENT_DISCONNECTED);
        }
}

static bool seen_at_least(PnClient *c, void *data) {
        return seen.n >= *(int *) data;
}

static PnClient *new_client(void) {
        PnClient *c = NULL;
        assert_int_equal(pn_client_new(&c, NULL), 0);
        return c;
}

/* Requests queued before the hello are answered after it, in order, each
 * callback once; nothing waits. */
static void test_open_subscribe_ping_in_order(void **state) {
        PnClient *c = new_client();
        const char *const events[] = { "exit", NULL };
        uint64_t id = 0;
        int want = 3;

        memset(&seen, 0, sizeof(seen));
        assert_int_equal(pn_client_get_state(c), PN_CLIENT_DISCONNECTED);
        assert_int_equal(pn_client_get_events(c), 0);
        assert_int_equal(NO_WAIT(pn_client_open_async(c, on_open, NULL)), 0);
        assert_int_equal(pn_client_get_state(c), PN_CLIENT_CONNECTING);
        assert_true(pn_client_get_fd(c) >= 0);
        assert_true(pn_client_get_events(c) & POLLIN);
        assert_int_equal(pn_client_open_async(c, on_open, NULL), -EISCONN);
        assert_int_equal(NO_WAIT(pn_client_subscribe_async(c, events, "{\"comm\":\"pn-no-such\"}", false,
                                                           &id, on_subscribe, NULL)),
                         0);
        assert_true(id > 0);
        /* Not accepted yet: not to be ended yet either. */
        assert_int_equal(pn_client_unsubscribe_async(c, id, NULL, NULL), -EBUSY);
        assert_int_equal(NO_WAIT(pn_client_request_async(c, "{\"op\":\"ping\"}", on_ping, NULL)), 0);
        assert_int_equal(seen.n, 0);

        loop_until(c, seen_at_least, &want);
        assert_int_equal(seen.n, 3);
        assert_string_equal(seen.what[0], "open");
        assert_int_equal(seen.result[0], 0);
        assert_string_equal(seen.what[1], "subscribe");
        assert_int_equal(seen.result[1], 0);
        assert_non_null(strstr(seen.reply[1], "\"subscribed\""));
        assert_string_equal(seen.what[2], "ping");
        assert_int_equal(seen.result[2], 0);
        assert_non_null(strstr(seen.reply[2], "\"seq\""));
        assert_int_equal(pn_client_get_state(c), PN_CLIENT_READY);
        assert_int_equal(pn_client_get_protocol(c), 1);
        assert_true(pn_client_get_version(c)[0] != 0);
        assert_int_equal(pn_client_get_events(c), POLLIN);

        /* Accepted now: it can be ended, and the blocking call is the same
         * request followed by a wait. */
        assert_int_equal(pn_client_unsubscribe(c, id), 0);
        assert_int_equal(pn_client_unsubscribe(c, id), -ENOENT);
        pn_client_free(c);
}

/* A refusal comes to the callback, with the broker's code readable there. */
static void test_refused_subscription(void **state) {
        PnClient *c = new_client();
        const char *const events[] = { "no-such-event", NULL };
        uint64_t id = 0;
        int want = 2;

        memset(&seen, 0, sizeof(seen));
        assert_int_equal(pn_client_open_async(c, on_open, NULL), 0);
        assert_int_equal(pn_client_subscribe_async(c, events, NULL, false, &id, on_subscribe, NULL), 0);
        loop_until(c, seen_at_least, &want);
        assert_int_equal(seen.result[1], -EINVAL);
        assert_string_equal(seen.code[1], "invalid-filter");
        assert_string_equal(seen.reply[1], "");
        /* A refused subscription is not remembered. */
        assert_int_equal(pn_client_unsubscribe_async(c, id, NULL, NULL), -ENOENT);
        /* Found at once, before anything is sent. */
        assert_int_equal(pn_client_subscribe_async(c, NULL, "[1]", false, NULL, NULL, NULL), -EINVAL);
        assert_string_equal(pn_client_get_error_code(c), "invalid-filter");
        assert_int_equal(pn_client_request_async(c, "{\"op\":\"subscribe\"}", NULL, NULL), -EINVAL);
        pn_client_free(c);
}

/* Events come through pn_client_next(c, &ev, 0) after process(). */
typedef struct WaitExit {
        pid_t pid;
        bool got;
} WaitExit;

static bool got_exit(PnClient *c, void *data) {
        WaitExit *w = data;
        const PnEvent *ev;
        int r;

        while ((r = NO_WAIT(pn_client_next(c, &ev, 0))) > 0)
                if (pn_event_get_type(ev) == PN_EVENT_EXIT && pn_event_get_tgid(ev) == w->pid) {
                        assert_int_equal(pn_event_get_exit_code(ev), 7);
                        assert_int_equal(pn_event_get_signal(ev), 0);
                        assert_int_equal(pn_event_get_ppid(ev), getpid());
                        assert_int_equal(pn_event_get_rss(ev), -1); /* not a predump */
                        w->got = true;
                }
        assert_int_equal(r, 0);
        return w->got;
}

static void test_events_through_the_fd(void **state) {
        PnClient *c = new_client();
        const char *const events[] = { "exit", NULL };
        char match[128];
        WaitExit w = {};
        int want = 2;
        int status;

        memset(&seen, 0, sizeof(seen));
        snprintf(match, sizeof(match), "{\"ppid\":%d}", (int) getpid());
        assert_int_equal(pn_client_open_async(c, on_open, NULL), 0);
        assert_int_equal(pn_client_subscribe_async(c, events, match, false, NULL, on_subscribe, NULL), 0);
        loop_until(c, seen_at_least, &want);
        assert_int_equal(seen.result[1], 0);

        w.pid = fork();
        assert_true(w.pid >= 0);
        if (w.pid == 0)
                _exit(7);
        assert_int_equal(waitpid(w.pid, &status, 0), w.pid);
        loop_until(c, got_exit, &w);
        pn_client_free(c);
}

/* Every callback is called once: those still due when the client is freed
 * get -ECANCELED. */
static void test_free_cancels(void **state) {
        PnClient *c = new_client();

        memset(&seen, 0, sizeof(seen));
        assert_int_equal(pn_client_open_async(c, on_open, NULL), 0);
        assert_int_equal(pn_client_request_async(c, "{\"op\":\"ping\"}", on_ping, NULL), 0);
        pn_client_free(c);
        assert_int_equal(seen.n, 2);
        assert_string_equal(seen.what[0], "ping");
        assert_int_equal(seen.result[0], -ECANCELED);
        assert_string_equal(seen.what[1], "open");
        assert_int_equal(seen.result[1], -ECANCELED);
}

/* A peer that accepts and never answers (a real socket, a hung broker):
 * opening and processing return at once; the caller's own timeout ends it. */
static void test_silent_peer_never_waits(void **state) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char dir[] = "/tmp/pn-async-XXXXXX";
        PnClient *c = NULL;
        int l;

        assert_non_null(mkdtemp(dir));
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/silent.sock", dir);
        l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(l >= 0);
        assert_int_equal(bind(l, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(l, 4), 0);

        memset(&seen, 0, sizeof(seen));
        assert_int_equal(pn_client_new(&c, sa.sun_path), 0);
        assert_int_equal(NO_WAIT(pn_client_open_async(c, on_open, NULL)), 0);
        assert_int_equal(NO_WAIT(pn_client_request_async(c, "{\"op\":\"ping\"}", on_ping, NULL)), 0);
        int silent = accept(l, NULL, NULL);
        assert_true(silent >= 0);
        for (int i = 0; i < 3; i++) {
                struct pollfd p = { .fd = pn_client_get_fd(c), .events = (short) pn_client_get_events(c) };
                assert_int_equal(poll(&p, 1, 100), 0); /* nothing comes */
                assert_int_equal(NO_WAIT(pn_client_process(c)), 0);
                const PnEvent *ev;
                assert_int_equal(NO_WAIT(pn_client_next(c, &ev, 0)), 0);
        }
        assert_int_equal(pn_client_get_state(c), PN_CLIENT_CONNECTING);
        assert_int_equal(seen.n, 0);
        pn_client_free(c);
        assert_int_equal(seen.n, 2);
        close(silent);

        /* The peer goes away: the open fails through the fd. */
        memset(&seen, 0, sizeof(seen));
        assert_int_equal(pn_client_new(&c, sa.sun_path), 0);
        assert_int_equal(pn_client_open_async(c, on_open, NULL), 0);
        int a = accept(l, NULL, NULL);
        assert_true(a >= 0);
        close(a);
        int want = 1;
        loop_until(c, seen_at_least, &want);
        assert_string_equal(seen.what[0], "open");
        assert_int_equal(seen.result[0], -ECONNRESET);
        assert_int_equal(pn_client_get_state(c), PN_CLIENT_DISCONNECTED);
        assert_int_equal(pn_client_get_events(c), 0);
        pn_client_free(c);

        close(l);
        unlink(sa.sun_path);
        rmdir(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_open_subscribe_ping_in_order),
                cmocka_unit_test(test_refused_subscription),
                cmocka_unit_test(test_events_through_the_fd),
                cmocka_unit_test(test_free_cancels),
                cmocka_unit_test(test_silent_peer_never_waits),
        };

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (!getenv("PROCNOTIFY_SOCKET")) {
                fprintf(stderr, "PROCNOTIFY_SOCKET is not set: run me from test_ctl.py client_async\n");
                return 77;
        }
        return cmocka_run_group_tests(tests, NULL, NULL);
}
