/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Filter matching: each key, AND across keys, OR within one. */
#include <errno.h>
#include <fnmatch.h>
#include <setjmp.h>
#include <signal.h>
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

/* Parsing that must fail, with the key named in the message. */
static void assert_bad_match(const char *match, const char *needle) {
        char error[256] = "";
        Filter *f = NULL;
        struct json_object *m = json_tokener_parse(match);
        assert_non_null(m);
        assert_int_equal(filter_new_from_json(&f, NULL, NULL, m, error, sizeof(error)), -EINVAL);
        assert_null(f);
        if (!strstr(error, needle))
                fail_msg("%s: \"%s\" does not say \"%s\"", match, error, needle);
        json_object_put(m);
}

static PnEvent ended(int status) {
        PnEvent ev = proc(PN_EVENT_EXIT);
        pn_event_set_exit_status(&ev, status);
        return ev;
}

static void test_signal(void **state) {
        PnEvent segv = ended(SIGSEGV | 0x80), kill9 = ended(SIGKILL), clean = ended(0);
        PnEvent by_11 = ended(11 << 8); /* exit(11): a status, not a signal */
        PnEvent inferred = proc(PN_EVENT_EXIT), predump = proc(PN_EVENT_PREDUMP);
        PnEvent stop = proc(PN_EVENT_STOP), fork = proc(PN_EVENT_FORK);
        (void) state;
        inferred.exit.status = -1;
        stop.stop.signal = SIGTSTP;

        /* Names with or without SIG, any case, and numbers: all the same. */
        const char *const same[] = { "{\"signal\":11}", "{\"signal\":\"SEGV\"}",
                                     "{\"signal\":\"SIGSEGV\"}", "{\"signal\":[\"sigsegv\"]}",
                                     "{\"signal\":\"11\"}" };
        for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
                Filter *f = make(NULL, same[i], false);
                assert_true(filter_match(f, &segv, NULL));
                assert_false(filter_match(f, &kill9, NULL));
                assert_false(filter_match(f, &clean, NULL));
                assert_false(filter_match(f, &by_11, NULL));
                assert_false(filter_match(f, &inferred, NULL));
                assert_false(filter_match(f, &fork, NULL));
                /* The connector's predump does not know its signal. */
                assert_false(filter_match(f, &predump, NULL));
                predump.predump.signal = SIGSEGV;
                assert_true(filter_match(f, &predump, NULL));
                predump.predump.signal = 0;
                filter_free(f);
        }
        Filter *f = make(NULL, "{\"signal\":[\"KILL\",\"TSTP\",\"RTMIN+1\"]}", false);
        assert_true(filter_match(f, &kill9, NULL));
        assert_true(filter_match(f, &stop, NULL));
        assert_false(filter_match(f, &segv, NULL));
        kill9 = ended(SIGRTMIN + 1);
        assert_true(filter_match(f, &kill9, NULL));
        filter_free(f);

        assert_bad_match("{\"signal\":0}", "match.signal");
        assert_bad_match("{\"signal\":65}", "match.signal");
        assert_bad_match("{\"signal\":\"SIGFOO\"}", "match.signal");
        assert_bad_match("{\"signal\":\"\"}", "match.signal");
        assert_bad_match("{\"signal\":true}", "match.signal");
        assert_bad_match("{\"signal\":[]}", "match.signal");
}

static void test_exit_code_and_core_dumped(void **state) {
        PnEvent clean = ended(0), one = ended(1 << 8), segv_core = ended(SIGSEGV | 0x80);
        PnEvent term = ended(SIGTERM), inferred = proc(PN_EVENT_EXIT), predump = proc(PN_EVENT_PREDUMP);
        (void) state;
        inferred.exit.status = -1;

        Filter *f = make(NULL, "{\"exit_code\":[1,139]}", false);
        assert_false(filter_match(f, &clean, NULL));
        assert_true(filter_match(f, &one, NULL));
        assert_true(filter_match(f, &segv_core, NULL)); /* 128 + 11, like $? */
        assert_false(filter_match(f, &term, NULL));
        assert_false(filter_match(f, &inferred, NULL));
        assert_false(filter_match(f, &predump, NULL));
        filter_free(f);
        f = make(NULL, "{\"exit_code\":0}", false);
        assert_true(filter_match(f, &clean, NULL));
        assert_false(filter_match(f, &inferred, NULL)); /* unknown is not 0 */
        filter_free(f);

        f = make(NULL, "{\"core_dumped\":true}", false);
        assert_true(filter_match(f, &segv_core, NULL));
        assert_false(filter_match(f, &term, NULL));
        assert_false(filter_match(f, &clean, NULL));
        assert_false(filter_match(f, &predump, NULL));
        filter_free(f);
        f = make(NULL, "{\"core_dumped\":false,\"signal\":\"TERM\"}", false);
        assert_true(filter_match(f, &term, NULL));
        assert_false(filter_match(f, &segv_core, NULL));
        assert_false(filter_match(f, &clean, NULL)); /* no signal */
        assert_false(filter_match(f, &inferred, NULL));
        filter_free(f);

        assert_bad_match("{\"exit_code\":256}", "match.exit_code");
        assert_bad_match("{\"exit_code\":-1}", "match.exit_code");
        assert_bad_match("{\"exit_code\":\"1\"}", "match.exit_code");
        assert_bad_match("{\"core_dumped\":1}", "match.core_dumped");
        assert_bad_match("{\"core_dumped\":\"yes\"}", "match.core_dumped");
}

static void test_cmdline(void **state) {
        PnEvent ev = proc(PN_EVENT_EXIT);
        (void) state;
        ev.cmdline = "/usr/lib/frr/bfdd -d -N blue --log syslog";

        Filter *f = make(NULL, "{\"cmdline\":\"*bfdd -d -N blue*\"}", false);
        assert_true(filter_match(f, &ev, NULL));
        ev.cmdline = "/usr/lib/frr/bfdd -d -N red";
        assert_false(filter_match(f, &ev, NULL));
        ev.cmdline = NULL; /* not known: no match */
        assert_false(filter_match(f, &ev, NULL));
        filter_free(f);
        /* Exact without wildcards; '*' crosses '/' and spaces (no FNM_PATHNAME). */
        f = make(NULL, "{\"cmdline\":[\"/bin/sleep 10\",\"/usr/*/bfdd*\"]}", false);
        ev.cmdline = "/bin/sleep 10";
        assert_true(filter_match(f, &ev, NULL));
        ev.cmdline = "/bin/sleep 100";
        assert_false(filter_match(f, &ev, NULL));
        ev.cmdline = "/usr/lib/frr/bfdd -d";
        assert_true(filter_match(f, &ev, NULL));
        filter_free(f);
        assert_bad_match("{\"cmdline\":\"\"}", "match.cmdline");
        assert_bad_match("{\"cmdline\":1}", "match.cmdline");
}

static int fake_netns(const char *name, uint64_t *ret, void *userdata) {
        (void) userdata;
        if (strcmp(name, "blue") == 0) {
                *ret = 4026532290u;
                return 0;
        }
        if (strcmp(name, "oom") == 0)
                return -ENOMEM;
        return -ENOENT;
}

static void test_netns(void **state) {
        PnEvent ev = proc(PN_EVENT_EXIT);
        char error[256] = "";
        (void) state;

        Filter *f = make(NULL, "{\"netns\":4026531840}", false);
        assert_false(filter_has_netns_names(f));
        assert_int_equal(filter_resolve_netns(f, NULL, NULL, error, sizeof(error)), 0);
        assert_false(filter_match(f, &ev, NULL)); /* netns not known: no match */
        ev.netns = 4026531840u;
        assert_true(filter_match(f, &ev, NULL));
        ev.netns = 4026532290u;
        assert_false(filter_match(f, &ev, NULL));
        filter_free(f);

        /* A name matches nothing until resolved, then its inode. */
        f = make(NULL, "{\"netns\":[\"blue\",4026531840]}", false);
        assert_true(filter_has_netns_names(f));
        assert_false(filter_match(f, &ev, NULL));
        assert_int_equal(filter_resolve_netns(f, fake_netns, NULL, error, sizeof(error)), 0);
        assert_false(filter_has_netns_names(f));
        assert_true(filter_match(f, &ev, NULL));
        ev.netns = 4026531840u;
        assert_true(filter_match(f, &ev, NULL));
        ev.netns = 4026531841u;
        assert_false(filter_match(f, &ev, NULL));
        filter_free(f);

        f = make(NULL, "{\"netns\":\"red\"}", false);
        assert_int_equal(filter_resolve_netns(f, fake_netns, NULL, error, sizeof(error)), -EINVAL);
        assert_non_null(strstr(error, "no network namespace named \"red\""));
        assert_int_equal(filter_resolve_netns(f, NULL, NULL, error, sizeof(error)), -EINVAL);
        filter_free(f);
        f = make(NULL, "{\"netns\":\"oom\"}", false);
        assert_int_equal(filter_resolve_netns(f, fake_netns, NULL, error, sizeof(error)), -ENOMEM);
        filter_free(f);

        assert_bad_match("{\"netns\":\"../x\"}", "match.netns");
        assert_bad_match("{\"netns\":\"..\"}", "match.netns");
        assert_bad_match("{\"netns\":0}", "match.netns");
        assert_bad_match("{\"netns\":4294967296}", "match.netns");
        assert_bad_match("{\"netns\":true}", "match.netns");
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
                cmocka_unit_test(test_signal),
                cmocka_unit_test(test_exit_code_and_core_dumped),
                cmocka_unit_test(test_cmdline),
                cmocka_unit_test(test_netns),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
