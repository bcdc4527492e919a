/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Filter matching: each key, AND across keys, OR within one. */
#include <errno.h>
#include <fnmatch.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "protocol/filter.h"

static Filter *make(const char *events, const char *match, bool threads) {
        struct json_object *e = events ? json_tokener_parse(events) : NULL;
        struct json_object *m = match ? json_tokener_parse(match) : NULL;
        struct json_object *t = threads ? json_object_new_boolean(true) : NULL;
        char error[256] = "";
        Filter *f = NULL;
        int r = filter_new_from_json(&f, e, t, m, error, sizeof(error));
        if (r < 0)
                print_error("filter %s %s: %s\n", events, match, error);
        assert_int_equal(r, 0);
        json_object_put(e);
        json_object_put(m);
        json_object_put(t);
        return f;
}

static PnEvent proc(PnEventType type) {
        PnEvent ev = {
                .type = type, .pid = 812, .tgid = 812, .ppid = 1, .uid = 1000,
                .comm = "bfdd", .exe = "/usr/lib/frr/bfdd",
                .cgroup = "/system.slice/frr.service", .unit = "frr.service",
        };
        return ev;
}

static void test_events_and_threads(void **state) {
        Filter *f = make("[\"exit\",\"predump\"]", NULL, false);
        PnEvent ev = proc(PN_EVENT_EXIT);
        (void) state;
        assert_true(filter_match(f, &ev, NULL));
        ev.type = PN_EVENT_FORK;
        assert_false(filter_match(f, &ev, NULL));
        ev.type = PN_EVENT_OVERRUN; /* always */
        assert_true(filter_match(f, &ev, NULL));
        ev.type = PN_EVENT_EXIT;
        ev.thread = true;
        assert_false(filter_match(f, &ev, NULL));
        filter_free(f);
        f = make("[\"exit\"]", NULL, true);
        assert_true(filter_match(f, &ev, NULL));
        filter_free(f);
        f = make("\"all\"", NULL, false);
        ev.thread = false;
        for (int t = 0; t < _PN_EVENT_TYPE_MAX; t++) {
                ev.type = (PnEventType) t;
                assert_true(filter_match(f, &ev, NULL));
        }
        filter_free(f);
}

static void test_numeric_keys(void **state) {
        PnEvent ev = proc(PN_EVENT_EXIT);
        (void) state;
        Filter *f = make(NULL, "{\"pid\":[5,812]}", false);
        assert_true(filter_match(f, &ev, NULL));
        ev.pid = 813; /* a thread of 812: pid matches the process too */
        assert_true(filter_match(f, &ev, NULL));
        ev.tgid = 900;
        ev.pid = 901;
        assert_false(filter_match(f, &ev, NULL));
        filter_free(f);

        ev = proc(PN_EVENT_EXIT);
        f = make(NULL, "{\"tgid\":812,\"ppid\":1}", false);
        assert_true(filter_match(f, &ev, NULL));
        ev.ppid = 2;
        assert_false(filter_match(f, &ev, NULL)); /* AND across keys */
        filter_free(f);

        ev = proc(PN_EVENT_EXIT);
        f = make(NULL, "{\"uid\":[0,1000]}", false);
        assert_true(filter_match(f, &ev, NULL));
        ev.uid = UINT32_MAX; /* unknown owner never matches a uid */
        assert_false(filter_match(f, &ev, NULL));
        filter_free(f);
}

static void test_string_keys(void **state) {
        PnEvent ev = proc(PN_EVENT_EXIT);
        (void) state;
        Filter *f = make(NULL, "{\"comm\":\"bfdd\"}", false);
        assert_true(filter_match(f, &ev, NULL));
        ev.comm = "bfddx";
        assert_false(filter_match(f, &ev, NULL));
        ev.comm = NULL; /* nameless never matches */
        assert_false(filter_match(f, &ev, NULL));
        filter_free(f);

        ev = proc(PN_EVENT_EXIT);
        f = make(NULL, "{\"comm\":[\"zebra\",\"bf*\"],\"exe\":\"/usr/lib/frr/*\",\"unit\":\"frr.s?rvice\"}", false);
        assert_true(filter_match(f, &ev, NULL));
        ev.exe = "/usr/sbin/bfdd";
        assert_false(filter_match(f, &ev, NULL));
        filter_free(f);
}

static void test_globs_as_fnmatch(void **state) {
        /* "name-*" patterns are compared as prefixes: every pattern must
         * decide as fnmatch(pattern, name, 0) does. */
        static const char *const patterns[] = { "pnb-*", "*", "b*", "bfdd*", "bf*d", "b?dd*", "[b]fdd*",
                                                "bf\\*", "bfdd**", "x*" };
        static const char *const names[] = { "pnb-", "pnb-1", "pnb", "bfdd", "bfddx", "b", "bf*", "bfd",
                                             "pnb-/x", ".bfdd", "x" };
        (void) state;
        for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
                struct json_object *m = json_object_new_object();
                json_object_object_add(m, "comm", json_object_new_string(patterns[i]));
                Filter *f = make(NULL, json_object_to_json_string(m), false);
                json_object_put(m);
                for (size_t j = 0; j < sizeof(names) / sizeof(names[0]); j++) {
                        PnEvent ev = proc(PN_EVENT_COMM);
                        ev.comm = names[j];
                        if (filter_match(f, &ev, NULL) != (fnmatch(patterns[i], names[j], 0) == 0))
                                fail_msg("pattern %s, name %s: not as fnmatch", patterns[i], names[j]);
                }
                filter_free(f);
        }
}

static void test_cgroup_prefix(void **state) {
        PnEvent ev = proc(PN_EVENT_EXIT);
        (void) state;
        Filter *f = make(NULL, "{\"cgroup\":\"/system.slice\"}", false);
        assert_true(filter_match(f, &ev, NULL));
        ev.cgroup = "/system.slice";
        assert_true(filter_match(f, &ev, NULL));
        ev.cgroup = "/system.slice2/x.service";
        assert_false(filter_match(f, &ev, NULL));
        ev.cgroup = NULL;
        assert_false(filter_match(f, &ev, NULL));
        filter_free(f);
        f = make(NULL, "{\"cgroup\":\"/system.slice/frr.service/\"}", false); /* trailing / */
        ev.cgroup = "/system.slice/frr.service/sub";
        assert_true(filter_match(f, &ev, NULL));
        filter_free(f);
        f = make(NULL, "{\"cgroup\":\"/\"}", false);
        ev.cgroup = "/anything";
        assert_true(filter_match(f, &ev, NULL));
        filter_free(f);
}

static bool is_descendant(void *userdata, pid_t tgid, pid_t ancestor) {
        /* A fake tree: 812 descends from 700, 700 from 1. */
        (void) userdata;
        return (tgid == 812 && (ancestor == 700 || ancestor == 1)) || (tgid == 700 && ancestor == 1);
}

static void test_descendants_of(void **state) {
        FilterContext ctx = { .is_descendant = is_descendant };
        PnEvent ev = proc(PN_EVENT_EXIT);
        (void) state;
        Filter *f = make(NULL, "{\"descendants_of\":700}", false);
        assert_true(filter_match(f, &ev, &ctx));
        ev.tgid = 700; /* the root itself */
        assert_true(filter_match(f, &ev, &ctx));
        ev.tgid = 1;
        assert_false(filter_match(f, &ev, &ctx));
        ev.tgid = 812;
        assert_false(filter_match(f, &ev, NULL)); /* without a tree, only the root matches */
        filter_free(f);
}

static void test_error_messages(void **state) {
        char error[256];
        Filter *f = NULL;
        struct json_object *m = json_tokener_parse("{\"pid\":[1,\"x\"]}");
        (void) state;
        assert_int_equal(filter_new_from_json(&f, NULL, NULL, m, error, sizeof(error)), -EINVAL);
        assert_null(f);
        assert_non_null(strstr(error, "match.pid"));
        json_object_put(m);
        assert_string_equal(filter_key_to_string(FILTER_DESCENDANTS_OF), "descendants_of");
        assert_null(filter_key_to_string(_FILTER_KEY_MAX));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_events_and_threads),
                cmocka_unit_test(test_numeric_keys),
                cmocka_unit_test(test_string_keys),
                cmocka_unit_test(test_globs_as_fnmatch),
                cmocka_unit_test(test_cgroup_prefix),
                cmocka_unit_test(test_descendants_of),
                cmocka_unit_test(test_error_messages),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
