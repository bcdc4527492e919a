/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Hook files: every key, defaults, words and durations, matching, and
 * errors that name their line. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hooks/hook-file.h"

static int parse(HookFile **h, const char *text, HookFileError *err) {
        return hook_file_parse(h, "test", text, strlen(text), NULL, err);
}

static void expect_error(const char *text, unsigned line, const char *in_message) {
        HookFile *h = NULL;
        HookFileError err;
        int r = parse(&h, text, &err);
        if (r != -EINVAL)
                fail_msg("for\n%s\nexpected -EINVAL, got %d", text, r);
        assert_null(h);
        if (err.line != line || !strstr(err.message, in_message))
                fail_msg("for\n%s\nexpected line %u with \"%s\", got line %u: %s", text, line, in_message,
                         err.line, err.message);
}

static void test_every_key(void **state) {
        HookFile *h = NULL;
        HookFileError err;
        (void) state;
        const char *text = "# a comment\n"
                           "[Match]\n"
                           "Events=predump exit\n"
                           "Comm=bfdd \"zebra *\"\n"
                           "Comm=ospfd\n"
                           "Exe=/usr/sbin/*\n"
                           "Unit=frr.service\n"
                           "Cgroup=/system.slice\n"
                           "Uid=0 100\n"
                           "\n"
                           "[Exec]\n"
                           "Command=/usr/lib/x/failover --peer 'a b' c\\ d\n"
                           "User=nobody\n"
                           "Timeout=1.5s\n"
                           "MaxConcurrent=2\n"
                           "MaxQueued=0\n";
        assert_int_equal(parse(&h, text, &err), 0);
        assert_string_equal(h->name, "test");
        assert_int_equal(h->events, PN_EVENT_BIT(PN_EVENT_PREDUMP) | PN_EVENT_BIT(PN_EVENT_EXIT));
        assert_string_equal(h->event_names[0], "predump");
        assert_string_equal(h->event_names[1], "exit");
        assert_null(h->event_names[2]);
        assert_string_equal(h->match_json,
                            "{\"comm\":[\"bfdd\",\"zebra *\",\"ospfd\"],\"exe\":[\"\\/usr\\/sbin\\/*\"],"
                            "\"unit\":[\"frr.service\"],\"cgroup\":[\"\\/system.slice\"],\"uid\":[0,100]}");
        assert_string_equal(h->argv[0], "/usr/lib/x/failover");
        assert_string_equal(h->argv[1], "--peer");
        assert_string_equal(h->argv[2], "a b");
        assert_string_equal(h->argv[3], "c d");
        assert_null(h->argv[4]);
        assert_int_equal(h->command_line, 12);
        assert_string_equal(h->user, "nobody");
        assert_int_equal(h->user_line, 13);
        assert_int_equal(h->timeout_usec, 1500000);
        assert_int_equal(h->max_concurrent, 2);
        assert_int_equal(h->max_queued, 0);
        hook_file_free(h);
}

static void test_defaults(void **state) {
        HookFile *h = NULL;
        HookFileError err;
        (void) state;
        assert_int_equal(parse(&h, "[Match]\nEvents=all\n[Exec]\nCommand=/bin/true\n", &err), 0);
        assert_int_equal(h->events, PN_EVENT_ALL_BITS);
        assert_null(h->event_names);
        assert_null(h->match_json);
        assert_null(h->user);
        assert_int_equal(h->timeout_usec, HOOK_TIMEOUT_DEFAULT_USEC);
        assert_int_equal(h->max_concurrent, HOOK_MAX_CONCURRENT_DEFAULT);
        assert_int_equal(h->max_queued, HOOK_MAX_QUEUED_DEFAULT);
        hook_file_free(h);

        /* Commas as in the broker's Events=, and an empty value resets a list. */
        assert_int_equal(parse(&h, "[Match]\nEvents=fork,exec exit\nComm=a\nComm=\nComm=b\n"
                                   "[Exec]\nCommand=/bin/true\nTimeout=5s\nTimeout=\n",
                               &err), 0);
        assert_int_equal(h->events, PN_EVENT_BIT(PN_EVENT_FORK) | PN_EVENT_BIT(PN_EVENT_EXEC) |
                                            PN_EVENT_BIT(PN_EVENT_EXIT));
        assert_string_equal(h->match_json, "{\"comm\":[\"b\"]}");
        assert_int_equal(h->timeout_usec, HOOK_TIMEOUT_DEFAULT_USEC);
        hook_file_free(h);
}

static void test_long_and_continued_lines(void **state) {
        HookFile *h = NULL;
        HookFileError err;
        char text[4096], want[64];
        (void) state;

        /* A Command= of 120 words, 700 bytes on one line: every word, in
         * order (libinih's buffer is 200 bytes). */
        strcpy(text, "[Match]\nEvents=exit\n[Exec]\nCommand=/usr/bin/printf");
        for (int i = 0; i < 120; i++) {
                snprintf(want, sizeof(want), " word%03d", i);
                strcat(text, want);
        }
        strcat(text, "  ; a comment after the last word\nTimeout=3s\n");
        assert_int_equal(parse(&h, text, &err), 0);
        assert_string_equal(h->argv[0], "/usr/bin/printf");
        for (int i = 0; i < 120; i++) {
                snprintf(want, sizeof(want), "word%03d", i);
                assert_non_null(h->argv[i + 1]);
                assert_string_equal(h->argv[i + 1], want);
        }
        assert_null(h->argv[121]);
        assert_int_equal(h->timeout_usec, 3 * UINT64_C(1000000));
        hook_file_free(h);

        /* Quoted words keep their blanks across the pieces. */
        strcpy(text, "[Match]\nEvents=exit\n[Exec]\nCommand=/bin/echo");
        for (int i = 0; i < 20; i++)
                strcat(text, " 'a quoted  word'");
        strcat(text, "\n");
        assert_int_equal(parse(&h, text, &err), 0);
        for (int i = 1; i <= 20; i++)
                assert_string_equal(h->argv[i], "a quoted  word");
        assert_null(h->argv[21]);
        hook_file_free(h);

        /* An indented line continues Command= and a list key; errors in
         * the words stand at Command='s own line. */
        assert_int_equal(parse(&h, "[Match]\nEvents=exit\nComm=a\n   b c\n[Exec]\n"
                                   "Command=/usr/bin/env\n    FOO=1\n    /bin/true --x\n"
                                   "MaxConcurrent=1\n",
                               &err), 0);
        assert_string_equal(h->match_json, "{\"comm\":[\"a\",\"b\",\"c\"]}");
        assert_string_equal(h->argv[0], "/usr/bin/env");
        assert_string_equal(h->argv[1], "FOO=1");
        assert_string_equal(h->argv[2], "/bin/true");
        assert_string_equal(h->argv[3], "--x");
        assert_null(h->argv[4]);
        assert_int_equal(h->command_line, 6);
        hook_file_free(h);
        expect_error("[Match]\nEvents=exit\n[Exec]\nCommand=relative\n  /abs\n", 4, "not an absolute path");
}

static void test_errors_name_their_line(void **state) {
        (void) state;
        expect_error("[Match]\nEvents=exit\nBogus=1\n[Exec]\nCommand=/bin/true\n", 3,
                     "unknown key \"Bogus\" in [Match]");
        expect_error("[Match]\nEvents=exit\n[Exec]\nCommand=/bin/true\nNope=2\n", 5,
                     "unknown key \"Nope\" in [Exec]");
        expect_error("[Match]\nEvents=exit\n[Other]\nA=b\n", 4, "unknown section [Other]");
        expect_error("Events=exit\n", 1, "before any section");
        expect_error("[Match]\nEvents=exit crash\n", 2, "unknown event type \"crash\"");
        expect_error("[Match]\nEvents=exit\nCgroup=system.slice\n", 3, "not an absolute path");
        expect_error("[Match]\nEvents=exit\nUid=root\n", 3, "neither a uid nor a known user");
        expect_error("[Match]\nEvents=exit\nComm=\"open\n", 3, "unterminated double quote");
        expect_error("[Match]\nEvents=exit\n[Exec]\nCommand=true\n", 4, "not an absolute path");
        expect_error("[Match]\nEvents=exit\n[Exec]\nCommand=/a\nCommand=/b\n", 5, "already set at line 4");
        expect_error("[Match]\nEvents=exit\n[Exec]\nCommand=/a\nTimeout=0\n", 5, "Timeout=");
        expect_error("[Match]\nEvents=exit\n[Exec]\nCommand=/a\nTimeout=25h\n", 5, "Timeout=");
        expect_error("[Match]\nEvents=exit\n[Exec]\nCommand=/a\nMaxConcurrent=0\n", 5, "MaxConcurrent=");
        expect_error("[Match]\nEvents=exit\n[Exec]\nCommand=/a\nMaxQueued=-1\n", 5, "MaxQueued=");
        expect_error("[Match]\nEvents=exit\n[Exec]\nCommand=/a\nUser=a:b\n", 5, "not a user name");
        expect_error("[Match]\nEvents=exit\ngarbage\n", 3, "syntax error");
        expect_error("[Match]\n[Exec]\nCommand=/a\n", 0, "Events= is missing");
        expect_error("[Match]\nEvents=exit\n", 0, "Command= is missing");
        /* One word longer than libinih's 200-byte buffer cannot be handed
         * in pieces: an error, not cut. */
        char text[512];
        memset(text, 'x', sizeof(text));
        memcpy(text, "[Match]\nEvents=exit\n[Exec]\nCommand=/", 36);
        strcpy(text + 300, "\n");
        expect_error(text, 4, "a word longer than");
        /* A line over HOOK_FILE_MAX_LINE. */
        char *huge = malloc(HOOK_FILE_MAX_LINE + 64);
        assert_non_null(huge);
        strcpy(huge, "[Match]\nEvents=exit\n[Exec]\nCommand=/a");
        for (size_t n = strlen(huge); n < HOOK_FILE_MAX_LINE + 40; n += 2)
                strcat(huge, " b");
        strcat(huge, "\n");
        expect_error(huge, 4, "longer than 4096 bytes");
        free(huge);
        /* Only Command= and the list keys continue on an indented line. */
        expect_error("[Match]\nEvents=exit\n[Exec]\nCommand=/a\nTimeout=5s\n  10s\n", 6,
                     "continues Timeout=");
        expect_error("[Match]\nEvents=exit\n[Exec]\nCommand=\n  /a\n", 5, "continues an empty Command=");
        expect_error("[Match]\nEvents=exit\n[Exec]\nCommand=/a 'open\n  b\n", 4, "unterminated");
        HookFile *h = NULL;
        HookFileError err;
        assert_int_equal(hook_file_parse(&h, "t", "[Match]\nEve\0nts=exit\n", 20, NULL, &err), -EINVAL);
        assert_int_equal(err.line, 2);
        assert_non_null(strstr(err.message, "NUL"));
        assert_int_equal(hook_file_parse(&h, "../x", "", 0, NULL, &err), -EINVAL);
        assert_non_null(strstr(err.message, "not a valid hook name"));
}

static void test_filter_values_checked_like_the_broker(void **state) {
        char text[4096];
        size_t n;
        (void) state;
        n = (size_t) snprintf(text, sizeof(text), "[Match]\nEvents=exit\nComm=");
        for (int i = 0; i < FILTER_MAX_VALUES + 1; i++)
                n += (size_t) snprintf(text + n, sizeof(text) - n, "c%d ", i);
        snprintf(text + n, sizeof(text) - n, "\n");
        /* Too long for one line: split over several Comm= lines. */
        n = (size_t) snprintf(text, sizeof(text), "[Match]\nEvents=exit\n");
        for (int i = 0; i < FILTER_MAX_VALUES + 1; i++)
                n += (size_t) snprintf(text + n, sizeof(text) - n, "Comm=c%d\n", i);
        expect_error(text, 3 + FILTER_MAX_VALUES, "more than 64 values");
}

static int fake_resolve(const char *name, uint32_t *ret) {
        if (strcmp(name, "bfd") != 0)
                return -ENOENT;
        *ret = 4242;
        return 0;
}

static void test_uid_names(void **state) {
        HookFile *h = NULL;
        HookFileError err;
        const char *text = "[Match]\nEvents=exit\nUid=bfd 7\n[Exec]\nCommand=/bin/true\n";
        (void) state;
        assert_int_equal(hook_file_parse(&h, "t", text, strlen(text), fake_resolve, &err), 0);
        assert_string_equal(h->match_json, "{\"uid\":[4242,7]}");
        hook_file_free(h);
}

/* The keys a failover manager matches crashes with, as the broker takes
 * them; a namespace by inode (a name needs /run/netns: integration test). */
static void test_crash_keys(void **state) {
        HookFile *h = NULL;
        HookFileError err;
        const char *text = "[Match]\nEvents=exit\nSignal=SEGV 6\nExitCode=134 139\nCoreDumped=yes\n"
                           "Cmdline=\"*bfdd -N blue*\"\nNetns=4026532290\n"
                           "[Exec]\nCommand=/bin/true\n";
        PnEvent ev = { .type = PN_EVENT_EXIT, .pid = 5, .tgid = 5, .uid = 0,
                       .cmdline = "/usr/lib/frr/bfdd -N blue -d", .netns = 4026532290u };
        (void) state;
        assert_int_equal(parse(&h, text, &err), 0);
        assert_string_equal(h->match_json,
                            "{\"signal\":[\"SEGV\",6],\"exit_code\":[134,139],\"core_dumped\":[true],"
                            "\"cmdline\":[\"*bfdd -N blue*\"],\"netns\":[4026532290]}");
        pn_event_set_exit_status(&ev, 11 | 0x80);
        assert_true(hook_file_match(h, &ev));
        pn_event_set_exit_status(&ev, 0); /* a clean exit is no crash */
        assert_false(hook_file_match(h, &ev));
        pn_event_set_exit_status(&ev, 11 | 0x80);
        ev.netns = 4026531840u; /* the same daemon in another namespace */
        assert_false(hook_file_match(h, &ev));
        hook_file_free(h);

        expect_error("[Match]\nEvents=exit\nSignal=SIGFOO\n", 3, "Signal=");
        expect_error("[Match]\nEvents=exit\nExitCode=300\n", 3, "ExitCode=");
        expect_error("[Match]\nEvents=exit\nCoreDumped=maybe\n", 3, "is not yes or no");
        expect_error("[Match]\nEvents=exit\nNetns=../etc\n", 3, "is not a name under /run/netns");
        expect_error("[Match]\nEvents=exit\nNetns=procnotify-no-such-ns\n", 3,
                     "no network namespace named \"procnotify-no-such-ns\"");
}

static void test_words(void **state) {
        char **w = NULL;
        char error[128];
        size_t n;
        (void) state;
        assert_int_equal(hook_split_words("  a  \"b c\"\t'd \"e\"' f\\ g \"h\\\"i\" ''", &w, &n, error,
                                          sizeof(error)), 0);
        assert_int_equal(n, 6);
        assert_string_equal(w[0], "a");
        assert_string_equal(w[1], "b c");
        assert_string_equal(w[2], "d \"e\"");
        assert_string_equal(w[3], "f g");
        assert_string_equal(w[4], "h\"i");
        assert_string_equal(w[5], "");
        assert_null(w[6]);
        hook_strv_free(w);
        assert_int_equal(hook_split_words("", &w, &n, error, sizeof(error)), 0);
        assert_int_equal(n, 0);
        hook_strv_free(w);
        assert_int_equal(hook_split_words("a 'b", &w, &n, error, sizeof(error)), -EINVAL);
        assert_int_equal(hook_split_words("a\\", &w, &n, error, sizeof(error)), -EINVAL);
}

static void test_timespan(void **state) {
        uint64_t u;
        (void) state;
        assert_int_equal(hook_parse_timespan("30", &u), 0);
        assert_int_equal(u, 30000000);
        assert_int_equal(hook_parse_timespan("500ms", &u), 0);
        assert_int_equal(u, 500000);
        assert_int_equal(hook_parse_timespan("2min", &u), 0);
        assert_int_equal(u, 120000000);
        assert_int_equal(hook_parse_timespan("1h", &u), 0);
        assert_int_equal(u, 3600000000);
        assert_int_equal(hook_parse_timespan("250us", &u), 0);
        assert_int_equal(u, 250);
        assert_int_equal(hook_parse_timespan("0.5s", &u), 0);
        assert_int_equal(u, 500000);
        assert_int_equal(hook_parse_timespan("-1", &u), -EINVAL);
        assert_int_equal(hook_parse_timespan("5 s", &u), -EINVAL);
        assert_int_equal(hook_parse_timespan("5x", &u), -EINVAL);
        assert_int_equal(hook_parse_timespan("", &u), -EINVAL);
        assert_int_equal(hook_parse_timespan("1e30", &u), -EINVAL);
}

static void test_match(void **state) {
        HookFile *h = NULL;
        HookFileError err;
        (void) state;
        assert_int_equal(parse(&h, "[Match]\nEvents=exit\nComm=bfd*\nUid=0\n[Exec]\nCommand=/bin/true\n",
                               &err), 0);
        PnEvent ev = { .type = PN_EVENT_EXIT, .pid = 5, .tgid = 5, .uid = 0, .comm = "bfdd" };
        assert_true(hook_file_match(h, &ev));
        ev.comm = "zebra";
        assert_false(hook_file_match(h, &ev));
        ev.comm = NULL; /* a name not known does not match a key about it */
        assert_false(hook_file_match(h, &ev));
        ev.comm = "bfdd";
        ev.uid = 1000;
        assert_false(hook_file_match(h, &ev));
        ev.uid = 0;
        ev.type = PN_EVENT_PREDUMP;
        assert_false(hook_file_match(h, &ev));
        ev.type = PN_EVENT_EXIT;
        ev.thread = true; /* per-thread exits never start hooks */
        assert_false(hook_file_match(h, &ev));
        /* Overruns pass every filter of the protocol, but start a hook only if
         * it asked for them. */
        PnEvent ov = { .type = PN_EVENT_OVERRUN, .overrun = { .lost = 3 } };
        assert_false(hook_file_match(h, &ov));
        hook_file_free(h);
        assert_int_equal(parse(&h, "[Match]\nEvents=exit overrun\nComm=x\n[Exec]\nCommand=/bin/true\n", &err), 0);
        assert_true(hook_file_match(h, &ov));
        hook_file_free(h);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_every_key),
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_errors_name_their_line),
                cmocka_unit_test(test_long_and_continued_lines),
                cmocka_unit_test(test_filter_values_checked_like_the_broker),
                cmocka_unit_test(test_uid_names),
                cmocka_unit_test(test_crash_keys),
                cmocka_unit_test(test_words),
                cmocka_unit_test(test_timespan),
                cmocka_unit_test(test_match),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
