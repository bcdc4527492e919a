/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Request parsing: every documented error code, and the valid ops. */
#include <errno.h>
#include <signal.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "protocol/request.h"
#include "protocol/utf8.h"

static void expect_error(const char *line, size_t len, const char *code, const char *in_message) {
        Request r;
        ProtoError err = { 0 };
        int k = request_parse(&r, line, len, &err);
        if (k != -EINVAL || !err.code || strcmp(err.code, code) != 0) {
                print_error("%.80s: expected %s, got %d %s (%s)\n", line, code, k,
                            err.code ? err.code : "(none)", err.message);
                fail();
        }
        assert_true(err.message[0] != 0);
        if (in_message && !strstr(err.message, in_message)) {
                print_error("message \"%s\" lacks \"%s\"\n", err.message, in_message);
                fail();
        }
}

#define EXPECT(line, code, msg) expect_error(line, strlen(line), code, msg)

static void test_invalid_json(void **state) {
        (void) state;
        EXPECT("this is not json", PN_ERR_INVALID_JSON, NULL);
        EXPECT("{\"op\":\"subscribe\",\"events\":[\"exit\"]", PN_ERR_INVALID_JSON, NULL);
        EXPECT("{\"op\":\"ping\"} trailing", PN_ERR_INVALID_JSON, "byte 14");
        EXPECT("{\"op\":\"ping\"}{}", PN_ERR_INVALID_JSON, NULL);
        EXPECT("{\"op\":\"caf\xc3\"}", PN_ERR_INVALID_JSON, NULL);
        EXPECT("{'op':'ping'}", PN_ERR_INVALID_JSON, NULL); /* strict: no single quotes */
        EXPECT("", PN_ERR_INVALID_JSON, NULL);
        expect_error("{\"op\":\"pi\0ng\"}", 14, PN_ERR_INVALID_JSON, "NUL");
        char deep[64] = "";
        for (int i = 0; i < 20; i++)
                strcat(deep, "[");
        for (int i = 0; i < 20; i++)
                strcat(deep, "]");
        EXPECT(deep, PN_ERR_INVALID_JSON, NULL);
}

static void test_invalid_request(void **state) {
        (void) state;
        EXPECT("[1,2,3]", PN_ERR_INVALID_REQUEST, "object");
        EXPECT("42", PN_ERR_INVALID_REQUEST, "object");
        EXPECT("{\"events\":[\"exit\"]}", PN_ERR_INVALID_REQUEST, "op");
        EXPECT("{\"op\":7}", PN_ERR_INVALID_REQUEST, "op");
        EXPECT("{\"op\":\"subscribe\",\"evnets\":[\"exit\"]}", PN_ERR_INVALID_REQUEST, "evnets");
        EXPECT("{\"op\":\"ping\",\"x\":1}", PN_ERR_INVALID_REQUEST, "\"x\"");
        EXPECT("{\"op\":\"unsubscribe\"}", PN_ERR_INVALID_REQUEST, "id");
        EXPECT("{\"op\":\"unsubscribe\",\"id\":0}", PN_ERR_INVALID_REQUEST, "id");
        EXPECT("{\"op\":\"unsubscribe\",\"id\":\"1\"}", PN_ERR_INVALID_REQUEST, "id");
}

/* Text json-c lets through that is not text the broker could send back:
 * invalid-request, not cut or accepted. */
static void test_invalid_text(void **state) {
        (void) state;
        EXPECT("{\"op\":\"ping\\u0000\"}", PN_ERR_INVALID_REQUEST, "NUL");
        EXPECT("{\"op\\u0000x\":\"ping\"}", PN_ERR_INVALID_REQUEST, "(\\u0000) at byte 4");
        EXPECT("{\"op\":\"subscribe\",\"events\":[\"exit\\u0000junk\"]}", PN_ERR_INVALID_REQUEST, "NUL");
        EXPECT("{\"op\":\"subscribe\",\"signal\":\"USR1\\u0000junk\"}", PN_ERR_INVALID_REQUEST, "NUL");
        EXPECT("{\"op\":\"subscribe\",\"match\":{\"comm\":\"a\\u0000\"}}", PN_ERR_INVALID_REQUEST, "NUL");
        EXPECT("{\"op\":\"ping\",\"\\u0000\":1}", PN_ERR_INVALID_REQUEST, "NUL");
        EXPECT("{\"op\":\"p\\u0000\"}", PN_ERR_INVALID_REQUEST, "NUL");
        EXPECT("{\"op\":\"\xc0\xafping\"}", PN_ERR_INVALID_REQUEST, "noncharacter) at byte 7");
        EXPECT("{\"op\":\"ping\",\"x\":\"\xe0\x80\xaf\"}", PN_ERR_INVALID_REQUEST, "UTF-8");
        EXPECT("{\"op\":\"subscribe\",\"events\":[\"exit\xf0\x80\x80\x80\"]}", PN_ERR_INVALID_REQUEST, "UTF-8");
        EXPECT("{\"op\":\"ping\",\"x\":\"\xed\xa0\x80\"}", PN_ERR_INVALID_REQUEST, "UTF-8");
        EXPECT("{\"op\":\"ping\",\"x\":\"\xf4\x90\x80\x80\"}", PN_ERR_INVALID_REQUEST, "UTF-8");
        EXPECT("{\"op\":\"ping\",\"x\":\"\xef\xbf\xbe\"}", PN_ERR_INVALID_REQUEST, "UTF-8");
        EXPECT("{\"op\":\"ping\",\"x\":\"\\ud800\"}", PN_ERR_INVALID_REQUEST, "surrogate");
        EXPECT("{\"op\":\"ping\",\"x\":\"\\udc00\\ud800\"}", PN_ERR_INVALID_REQUEST, "surrogate");
        EXPECT("{\"op\":\"ping\",\"x\":\"\\uFFFE\"}", PN_ERR_INVALID_REQUEST, "noncharacter");
        EXPECT("{\"op\":\"ping\",\"x\":\"\\ufdd0\"}", PN_ERR_INVALID_REQUEST, "noncharacter");
        EXPECT("{\"op\":\"ping\",\"x\":\"\\ud83f\\udffe\"}", PN_ERR_INVALID_REQUEST, "noncharacter");
        /* What is text stays accepted: escapes, a backslash before "u0000", pairs. */
        const char *ok[] = {
                "{\"op\":\"ping\"}",
                "{\"op\":\"subscribe\",\"match\":{\"comm\":\"\\\\u0000\"}}",
                "{\"op\":\"subscribe\",\"match\":{\"comm\":\"caf\xc3\xa9 \\u00e9 \\ud83d\\ude00 \\n\\\"\"}}",
                "{\"op\":\"subscribe\",\"match\":{\"comm\":\"\xef\xbf\xbd\\ufffd\"}}",
        };
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                Request r;
                ProtoError err = { 0 };
                if (request_parse(&r, ok[i], strlen(ok[i]), &err) != 0)
                        fail_msg("%s: refused: %s", ok[i], err.message);
                request_done(&r);
        }
}

/* Echoed names are cut on a character boundary: the message stays UTF-8. */
static void test_error_cut_on_boundary(void **state) {
        Request r;
        ProtoError err = { 0 };
        char line[256];
        (void) state;
        /* 63 'x' then 'é': "%.64s" cut the é in two. */
        snprintf(line, sizeof(line), "{\"op\":\"%063d\xc3\xa9\"}", 0);
        assert_int_equal(request_parse(&r, line, strlen(line), &err), -EINVAL);
        assert_string_equal(err.code, PN_ERR_UNKNOWN_OP);
        assert_true(pn_utf8_is_valid(err.message, strlen(err.message)));
        snprintf(line, sizeof(line), "{\"op\":\"subscribe\",\"events\":[\"%063d\xc3\xa9\"]}", 0);
        assert_int_equal(request_parse(&r, line, strlen(line), &err), -EINVAL);
        assert_true(pn_utf8_is_valid(err.message, strlen(err.message)));
        snprintf(line, sizeof(line), "{\"op\":\"subscribe\",\"match\":{\"%063d\xc3\xa9\":1}}", 0);
        assert_int_equal(request_parse(&r, line, strlen(line), &err), -EINVAL);
        assert_true(pn_utf8_is_valid(err.message, strlen(err.message)));
        snprintf(line, sizeof(line), "{\"op\":\"ping\",\"%063d\xc3\xa9\":1}", 0);
        assert_int_equal(request_parse(&r, line, strlen(line), &err), -EINVAL);
        assert_true(pn_utf8_is_valid(err.message, strlen(err.message)));
        snprintf(line, sizeof(line), "{\"op\":\"subscribe\",\"signal\":\"%031d\xc3\xa9\"}", 0);
        assert_int_equal(request_parse(&r, line, strlen(line), &err), -EINVAL);
        assert_true(pn_utf8_is_valid(err.message, strlen(err.message)));
}

static void test_unknown_op(void **state) {
        (void) state;
        EXPECT("{\"op\":\"nonsense\"}", PN_ERR_UNKNOWN_OP, "nonsense");
        EXPECT("{\"op\":\"\"}", PN_ERR_UNKNOWN_OP, NULL);
}

static void test_invalid_filter(void **state) {
        (void) state;
        EXPECT("{\"op\":\"subscribe\",\"events\":[\"bogus\"]}", PN_ERR_INVALID_FILTER, "bogus");
        EXPECT("{\"op\":\"subscribe\",\"events\":[]}", PN_ERR_INVALID_FILTER, "empty");
        EXPECT("{\"op\":\"subscribe\",\"events\":\"exit\"}", PN_ERR_INVALID_FILTER, NULL);
        EXPECT("{\"op\":\"subscribe\",\"events\":[1]}", PN_ERR_INVALID_FILTER, NULL);
        EXPECT("{\"op\":\"subscribe\",\"match\":[]}", PN_ERR_INVALID_FILTER, "object");
        EXPECT("{\"op\":\"subscribe\",\"match\":{\"pid\":\"12\"}}", PN_ERR_INVALID_FILTER, "match.pid");
        EXPECT("{\"op\":\"subscribe\",\"match\":{\"pid\":-1}}", PN_ERR_INVALID_FILTER, "range");
        EXPECT("{\"op\":\"subscribe\",\"match\":{\"pid\":0}}", PN_ERR_INVALID_FILTER, "range");
        EXPECT("{\"op\":\"subscribe\",\"match\":{\"pid\":4294967296}}", PN_ERR_INVALID_FILTER, "range");
        EXPECT("{\"op\":\"subscribe\",\"match\":{\"uid\":-5}}", PN_ERR_INVALID_FILTER, "range");
        EXPECT("{\"op\":\"subscribe\",\"match\":{\"comm\":5}}", PN_ERR_INVALID_FILTER, "string");
        EXPECT("{\"op\":\"subscribe\",\"match\":{\"comm\":\"\"}}", PN_ERR_INVALID_FILTER, NULL);
        EXPECT("{\"op\":\"subscribe\",\"match\":{\"cgroup\":\"system.slice\"}}", PN_ERR_INVALID_FILTER, "absolute");
        EXPECT("{\"op\":\"subscribe\",\"match\":{\"colour\":\"red\"}}", PN_ERR_INVALID_FILTER, "colour");
        EXPECT("{\"op\":\"subscribe\",\"match\":{\"pid\":[]}}", PN_ERR_INVALID_FILTER, "empty");
        EXPECT("{\"op\":\"subscribe\",\"threads\":1}", PN_ERR_INVALID_FILTER, "threads");
        char many[2048] = "{\"op\":\"subscribe\",\"match\":{\"pid\":[";
        for (int i = 1; i <= FILTER_MAX_VALUES + 1; i++)
                snprintf(many + strlen(many), sizeof(many) - strlen(many), "%s%d", i > 1 ? "," : "", i);
        strcat(many, "]}}");
        EXPECT(many, PN_ERR_INVALID_FILTER, "more than");
}

static void test_follow_and_signal(void **state) {
        const char *line;
        Request r;
        ProtoError err;
        (void) state;
        EXPECT("{\"op\":\"subscribe\",\"match\":{\"follow\":[1,2]}}", PN_ERR_INVALID_FILTER, "one integer");
        EXPECT("{\"op\":\"subscribe\",\"match\":{\"follow\":0}}", PN_ERR_INVALID_FILTER, "range");
        EXPECT("{\"op\":\"subscribe\",\"signal\":\"SIGKILL\"}", PN_ERR_INVALID_REQUEST, "cannot be caught");
        EXPECT("{\"op\":\"subscribe\",\"signal\":19}", PN_ERR_INVALID_REQUEST, "SIGSTOP");
        EXPECT("{\"op\":\"subscribe\",\"signal\":0}", PN_ERR_INVALID_REQUEST, "not a signal number");
        EXPECT("{\"op\":\"subscribe\",\"signal\":65}", PN_ERR_INVALID_REQUEST, "not a signal number");
        EXPECT("{\"op\":\"subscribe\",\"signal\":\"SIGFOO\"}", PN_ERR_INVALID_REQUEST, "SIGFOO");
        EXPECT("{\"op\":\"subscribe\",\"signal\":\"RTMIN+31\"}", PN_ERR_INVALID_REQUEST, "unknown");
        EXPECT("{\"op\":\"subscribe\",\"signal\":\"RTMIN-1\"}", PN_ERR_INVALID_REQUEST, "unknown");
        EXPECT("{\"op\":\"subscribe\",\"signal\":true}", PN_ERR_INVALID_REQUEST, "name");

        const struct {
                const char *json;
                int sig;
        } ok[] = {
                { "\"SIGUSR1\"", SIGUSR1 }, { "\"usr2\"", SIGUSR2 },   { "10", 10 },
                { "\"SIGRTMIN\"", SIGRTMIN }, { "\"RTMIN+2\"", SIGRTMIN + 2 },
                { "\"sigrtmax-1\"", SIGRTMAX - 1 }, { "\"HUP\"", SIGHUP }, { "64", 64 },
        };
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                char buf[128];
                snprintf(buf, sizeof(buf), "{\"op\":\"subscribe\",\"signal\":%s,\"match\":{\"follow\":7}}",
                         ok[i].json);
                assert_int_equal(request_parse(&r, buf, strlen(buf), &err), 0);
                assert_int_equal(r.subscribe.signal, ok[i].sig);
                assert_int_equal(filter_get_follow(r.subscribe.filter), 7);
                request_done(&r);
        }
        assert_int_equal(request_parse(&r, "{\"op\":\"subscribe\"}", 18, &err), 0);
        assert_int_equal(r.subscribe.signal, 0);
        assert_false(r.subscribe.no_lines);
        assert_int_equal(filter_get_follow(r.subscribe.filter), 0);
        request_done(&r);

        /* "lines": false, the signal only: it needs a signal. */
        EXPECT("{\"op\":\"subscribe\",\"lines\":false}", PN_ERR_INVALID_REQUEST, "needs a \"signal\"");
        EXPECT("{\"op\":\"subscribe\",\"signal\":10,\"lines\":0}", PN_ERR_INVALID_REQUEST, "true or false");
        line = "{\"op\":\"subscribe\",\"signal\":\"USR1\",\"lines\":false}";
        assert_int_equal(request_parse(&r, line, strlen(line), &err), 0);
        assert_true(r.subscribe.no_lines);
        assert_int_equal(r.subscribe.signal, SIGUSR1);
        request_done(&r);
        line = "{\"op\":\"subscribe\",\"lines\":true}";
        assert_int_equal(request_parse(&r, line, strlen(line), &err), 0);
        assert_false(r.subscribe.no_lines);
        request_done(&r);
}

static void test_line_too_long(void **state) {
        (void) state;
        expect_error("{}", PN_MAX_LINE, PN_ERR_LINE_TOO_LONG, NULL);
}

static void test_valid_requests(void **state) {
        Request r;
        ProtoError err;
        const char *sub = "{\"op\":\"subscribe\",\"events\":[\"predump\",\"exit\"],"
                          "\"match\":{\"comm\":[\"bfdd\",\"zebra*\"],\"uid\":0},\"threads\":true}";
        (void) state;
        assert_int_equal(request_parse(&r, sub, strlen(sub), &err), 0);
        assert_int_equal(r.op, REQUEST_SUBSCRIBE);
        assert_non_null(r.subscribe.filter);
        assert_int_equal(r.subscribe.filter->events,
                         PN_EVENT_BIT(PN_EVENT_PREDUMP) | PN_EVENT_BIT(PN_EVENT_EXIT));
        assert_true(r.subscribe.filter->threads);
        assert_int_equal(r.subscribe.filter->values[FILTER_COMM].n, 2);
        request_done(&r);

        const char *all = "  {\"op\":\"subscribe\"}\t ";
        assert_int_equal(request_parse(&r, all, strlen(all), &err), 0);
        assert_int_equal(r.subscribe.filter->events, PN_EVENT_ALL_BITS);
        assert_int_equal(r.subscribe.filter->keys, 0);
        request_done(&r);

        const char *unsub = "{\"op\":\"unsubscribe\",\"id\":12}";
        assert_int_equal(request_parse(&r, unsub, strlen(unsub), &err), 0);
        assert_int_equal(r.op, REQUEST_UNSUBSCRIBE);
        assert_int_equal(r.unsubscribe.id, 12);
        request_done(&r);

        assert_int_equal(request_parse(&r, "{\"op\":\"ping\"}", 13, &err), 0);
        assert_int_equal(r.op, REQUEST_PING);
        request_done(&r);
        assert_int_equal(request_parse(&r, "{\"op\":\"status\"}", 15, &err), 0);
        assert_int_equal(r.op, REQUEST_STATUS);
        request_done(&r);
        assert_string_equal(request_op_to_string(REQUEST_SUBSCRIBE), "subscribe");
        assert_null(request_op_to_string(_REQUEST_OP_MAX));
}

static void test_run_invalid(void **state) {
        char line[PN_MAX_LINE];
        size_t n;
        (void) state;
        EXPECT("{\"op\":\"run\"}", PN_ERR_INVALID_REQUEST, "argv");
        EXPECT("{\"op\":\"run\",\"argv\":[]}", PN_ERR_INVALID_REQUEST, "empty");
        EXPECT("{\"op\":\"run\",\"argv\":\"ls -l\"}", PN_ERR_INVALID_REQUEST, "array of strings");
        EXPECT("{\"op\":\"run\",\"argv\":[\"ls\",2]}", PN_ERR_INVALID_REQUEST, "\"argv\"[1] must be a string");
        EXPECT("{\"op\":\"run\",\"argv\":[\"\"]}", PN_ERR_INVALID_REQUEST, "empty");
        EXPECT("{\"op\":\"run\",\"argv\":[\"a\\u0000b\"]}", PN_ERR_INVALID_REQUEST, "NUL");
        EXPECT("{\"op\":\"run\",\"argv\":[\"ls\"],\"cwd\":\"/\"}", PN_ERR_INVALID_REQUEST, "\"cwd\"");
        EXPECT("{\"op\":\"run\",\"argv\":[\"ls\"],\"env\":[\"X\"]}", PN_ERR_INVALID_REQUEST, "NAME=value");
        EXPECT("{\"op\":\"run\",\"argv\":[\"ls\"],\"env\":[\"=x\"]}", PN_ERR_INVALID_REQUEST, "NAME=value");
        EXPECT("{\"op\":\"run\",\"argv\":[\"ls\"],\"env\":[\"A-B=x\"]}", PN_ERR_INVALID_REQUEST, "NAME=value");
        EXPECT("{\"op\":\"run\",\"argv\":[\"ls\"],\"env\":{\"A\":\"b\"}}", PN_ERR_INVALID_REQUEST, "array");
        EXPECT("{\"op\":\"run\",\"argv\":[\"ls\"],\"name\":\"a/b\"}", PN_ERR_INVALID_REQUEST, "\"name\"");
        EXPECT("{\"op\":\"run\",\"argv\":[\"ls\"],\"name\":\".hidden\"}", PN_ERR_INVALID_REQUEST, "\"name\"");
        EXPECT("{\"op\":\"run\",\"argv\":[\"ls\"],\"name\":7}", PN_ERR_INVALID_REQUEST, "string");
        EXPECT("{\"op\":\"run\",\"argv\":[\"ls\"],\"user\":-1}", PN_ERR_INVALID_REQUEST, "range");
        EXPECT("{\"op\":\"run\",\"argv\":[\"ls\"],\"user\":true}", PN_ERR_INVALID_REQUEST, "user");
        EXPECT("{\"op\":\"run\",\"argv\":[\"ls\"],\"follow\":1}", PN_ERR_INVALID_REQUEST, "follow");
        /* Too many entries, too long an entry, too much in all. */
        n = (size_t) snprintf(line, sizeof(line), "{\"op\":\"run\",\"argv\":[");
        for (int i = 0; i <= RUN_MAX_ARGS; i++)
                n += (size_t) snprintf(line + n, sizeof(line) - n, "%s\"x\"", i ? "," : "");
        snprintf(line + n, sizeof(line) - n, "]}");
        EXPECT(line, PN_ERR_INVALID_REQUEST, "at most 256");
        n = (size_t) snprintf(line, sizeof(line), "{\"op\":\"run\",\"argv\":[\"");
        memset(line + n, 'a', RUN_MAX_STRING + 1);
        n += RUN_MAX_STRING + 1;
        snprintf(line + n, sizeof(line) - n, "\"]}");
        EXPECT(line, PN_ERR_INVALID_REQUEST, "longer than 4096");
        n = (size_t) snprintf(line, sizeof(line), "{\"op\":\"run\",\"argv\":[");
        for (int i = 0; i < 9; i++) {
                n += (size_t) snprintf(line + n, sizeof(line) - n, "%s\"", i ? "," : "");
                memset(line + n, 'a', 4000);
                n += 4000;
                line[n++] = '"';
        }
        snprintf(line + n, sizeof(line) - n, "]}");
        EXPECT(line, PN_ERR_INVALID_REQUEST, "at most 32768");
}

static void test_run_valid(void **state) {
        Request r;
        ProtoError err = { 0 };
        const char *line = "{\"op\":\"run\",\"argv\":[\"/bin/sleep\",\"10\"],\"name\":\"nap-1.x@y\","
                           "\"user\":\"daemon\",\"env\":[\"A=1\",\"B=\"],\"follow\":true}";
        (void) state;
        assert_int_equal(request_parse(&r, line, strlen(line), &err), 0);
        assert_int_equal(r.op, REQUEST_RUN);
        assert_int_equal(r.run.n_argv, 2);
        assert_string_equal(r.run.argv[0], "/bin/sleep");
        assert_string_equal(r.run.argv[1], "10");
        assert_null(r.run.argv[2]);
        assert_int_equal(r.run.n_env, 2);
        assert_string_equal(r.run.env[1], "B=");
        assert_null(r.run.env[2]);
        assert_string_equal(r.run.name, "nap-1.x@y");
        assert_string_equal(r.run.user, "daemon");
        assert_int_equal(r.run.uid, -1);
        assert_true(r.run.follow);
        request_done(&r);
        line = "{\"op\":\"run\",\"argv\":[\"true\"],\"user\":1000}";
        assert_int_equal(request_parse(&r, line, strlen(line), &err), 0);
        assert_null(r.run.user);
        assert_int_equal(r.run.uid, 1000);
        assert_null(r.run.name);
        assert_null(r.run.env);
        request_done(&r);
}

static void test_kill_and_children(void **state) {
        Request r;
        ProtoError err = { 0 };
        const char *line;
        (void) state;
        EXPECT("{\"op\":\"kill\"}", PN_ERR_INVALID_REQUEST, "either");
        EXPECT("{\"op\":\"kill\",\"pid\":1,\"name\":\"x\"}", PN_ERR_INVALID_REQUEST, "either");
        EXPECT("{\"op\":\"kill\",\"pid\":0}", PN_ERR_INVALID_REQUEST, "positive");
        EXPECT("{\"op\":\"kill\",\"pid\":1,\"signal\":0}", PN_ERR_INVALID_REQUEST, "signal");
        EXPECT("{\"op\":\"kill\",\"pid\":1,\"signal\":\"SIGNOPE\"}", PN_ERR_INVALID_REQUEST, "signal");
        EXPECT("{\"op\":\"children\",\"all\":true}", PN_ERR_INVALID_REQUEST, "\"all\"");
        line = "{\"op\":\"kill\",\"name\":\"svc\",\"signal\":\"SIGKILL\"}";
        assert_int_equal(request_parse(&r, line, strlen(line), &err), 0);
        assert_int_equal(r.op, REQUEST_KILL);
        assert_string_equal(r.kill.name, "svc");
        assert_int_equal(r.kill.pid, 0);
        assert_int_equal(r.kill.signal, SIGKILL);
        request_done(&r);
        line = "{\"op\":\"kill\",\"pid\":42}";
        assert_int_equal(request_parse(&r, line, strlen(line), &err), 0);
        assert_int_equal(r.kill.pid, 42);
        assert_int_equal(r.kill.signal, SIGTERM);
        request_done(&r);
        /* kill may send what a subscription may not ask for. */
        line = "{\"op\":\"kill\",\"pid\":42,\"signal\":\"stop\"}";
        assert_int_equal(request_parse(&r, line, strlen(line), &err), 0);
        assert_int_equal(r.kill.signal, SIGSTOP);
        request_done(&r);
        line = "{\"op\":\"kill\",\"pid\":42,\"signal\":9}";
        assert_int_equal(request_parse(&r, line, strlen(line), &err), 0);
        assert_int_equal(r.kill.signal, SIGKILL);
        request_done(&r);
        EXPECT("{\"op\":\"kill\",\"pid\":1,\"signal\":65}", PN_ERR_INVALID_REQUEST, "signal");
        EXPECT("{\"op\":\"kill\",\"pid\":1,\"signal\":\"\"}", PN_ERR_INVALID_REQUEST, "signal");
        assert_true(request_run_name_is_valid("a"));
        assert_false(request_run_name_is_valid("-a"));
        assert_false(request_run_name_is_valid("a b"));
}

static void test_watch_requests(void **state) {
        Request r;
        ProtoError err;
        const char *w = "{\"op\":\"watch\",\"pid\":4242}";
        const char *ws = "{\"op\":\"watch\",\"pid\":4242,\"stop\":true}";
        const char *uw = "{\"op\":\"unwatch\",\"pid\":7}";
        (void) state;
        assert_int_equal(request_parse(&r, w, strlen(w), &err), 0);
        assert_int_equal(r.op, REQUEST_WATCH);
        assert_int_equal(r.watch.pid, 4242);
        assert_false(r.watch.stop);
        request_done(&r);
        assert_int_equal(request_parse(&r, ws, strlen(ws), &err), 0);
        assert_true(r.watch.stop);
        request_done(&r);
        assert_int_equal(request_parse(&r, uw, strlen(uw), &err), 0);
        assert_int_equal(r.op, REQUEST_UNWATCH);
        assert_int_equal(r.watch.pid, 7);
        request_done(&r);

        EXPECT("{\"op\":\"watch\"}", PN_ERR_INVALID_REQUEST, "pid");
        EXPECT("{\"op\":\"watch\",\"pid\":0}", PN_ERR_INVALID_REQUEST, "not a process id");
        EXPECT("{\"op\":\"watch\",\"pid\":-1}", PN_ERR_INVALID_REQUEST, "not a process id");
        EXPECT("{\"op\":\"watch\",\"pid\":4294967296}", PN_ERR_INVALID_REQUEST, "not a process id");
        EXPECT("{\"op\":\"watch\",\"pid\":\"12\"}", PN_ERR_INVALID_REQUEST, "integer");
        EXPECT("{\"op\":\"watch\",\"pid\":1.5}", PN_ERR_INVALID_REQUEST, "integer");
        EXPECT("{\"op\":\"watch\",\"pid\":1,\"stop\":1}", PN_ERR_INVALID_REQUEST, "stop");
        EXPECT("{\"op\":\"watch\",\"pid\":1,\"signal\":9}", PN_ERR_INVALID_REQUEST, "signal");
        EXPECT("{\"op\":\"unwatch\",\"pid\":1,\"stop\":true}", PN_ERR_INVALID_REQUEST, "stop");
        EXPECT("{\"op\":\"unwatch\"}", PN_ERR_INVALID_REQUEST, "unwatch needs");
        assert_string_equal(request_op_to_string(REQUEST_WATCH), "watch");
        assert_string_equal(request_op_to_string(REQUEST_UNWATCH), "unwatch");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_invalid_json),
                cmocka_unit_test(test_invalid_request),
                cmocka_unit_test(test_invalid_text),
                cmocka_unit_test(test_error_cut_on_boundary),
                cmocka_unit_test(test_unknown_op),
                cmocka_unit_test(test_invalid_filter),
                cmocka_unit_test(test_follow_and_signal),
                cmocka_unit_test(test_line_too_long),
                cmocka_unit_test(test_valid_requests),
                cmocka_unit_test(test_run_invalid),
                cmocka_unit_test(test_run_valid),
                cmocka_unit_test(test_kill_and_children),
                cmocka_unit_test(test_watch_requests),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
