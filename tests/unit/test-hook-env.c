/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Hook environments: names are the JSON fields upper-cased, values as a
 * shell script wants them, and what the runner must not pass on. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hooks/hook-env.h"
#include "hooks/hook-file.h"
#include "hooks/runner.h"
#include "procnotify/event.h"
#include "protocol/event-json.h"

static const char *find(char **env, const char *name) {
        size_t n = strlen(name);
        for (size_t i = 0; env[i]; i++)
                if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
                        return env[i] + n + 1;
        return NULL;
}

static void test_exit_event(void **state) {
        /* The line exactly as the broker writes it. */
        PnEvent ev = {
                .type = PN_EVENT_EXIT, .seq = 43, .ts_ns = 123456789, .time_ns = 1700000000000000000u,
                .sources = PN_SOURCE_CONNECTOR | PN_SOURCE_PIDFD, .pid = 812, .tgid = 812, .ppid = 1,
                .uid = 0, .comm = "bfdd", .exe = "/usr/sbin/bfdd", .cmdline = "bfdd -d",
                .cgroup = "/system.slice/frr.service", .unit = NULL,
        };
        JsonBuf b = JSONBUF_INIT;
        char **env = NULL;
        (void) state;
        pn_event_set_exit_status(&ev, 11 | 0x80);
        event_json_format(&b, &ev);
        assert_false(jsonbuf_failed(&b));
        assert_int_equal(hook_env_from_event(b.data, b.len - 1, &env), 0);
        assert_string_equal(find(env, "PROCNOTIFY_TYPE"), "exit");
        assert_string_equal(find(env, "PROCNOTIFY_SEQ"), "43");
        assert_string_equal(find(env, "PROCNOTIFY_TS_NS"), "123456789");
        assert_string_equal(find(env, "PROCNOTIFY_PID"), "812");
        assert_string_equal(find(env, "PROCNOTIFY_PPID"), "1");
        assert_string_equal(find(env, "PROCNOTIFY_UID"), "0");
        assert_string_equal(find(env, "PROCNOTIFY_COMM"), "bfdd");
        assert_string_equal(find(env, "PROCNOTIFY_EXE"), "/usr/sbin/bfdd");
        assert_string_equal(find(env, "PROCNOTIFY_CMDLINE"), "bfdd -d");
        assert_string_equal(find(env, "PROCNOTIFY_CGROUP"), "/system.slice/frr.service");
        assert_string_equal(find(env, "PROCNOTIFY_UNIT"), "");
        assert_string_equal(find(env, "PROCNOTIFY_EXIT_CODE"), "139");
        assert_string_equal(find(env, "PROCNOTIFY_SIGNAL"), "11");
        assert_string_equal(find(env, "PROCNOTIFY_CORE_DUMPED"), "true");
        assert_string_equal(find(env, "PROCNOTIFY_SOURCES"), "connector,pidfd");
        assert_non_null(find(env, "PROCNOTIFY_TIME"));
        hook_strv_free(env);
        jsonbuf_deinit(&b);
}

static void test_odd_members(void **state) {
        const char *line = "{\"type\":\"x\",\"Bad-Name\":1,\"nested\":{\"a\":[1,2]},\"f\":1.5,"
                           "\"nul\":\"a\\u0000b\",\"empty\":[],\"n\":null,\"nl\":\"a\\nb\"}";
        char **env = NULL;
        (void) state;
        assert_int_equal(hook_env_from_event(line, strlen(line), &env), 0);
        assert_null(find(env, "PROCNOTIFY_BAD-NAME"));
        assert_string_equal(find(env, "PROCNOTIFY_NESTED"), "{\"a\":[1,2]}");
        assert_string_equal(find(env, "PROCNOTIFY_F"), "1.5");
        assert_string_equal(find(env, "PROCNOTIFY_NUL"), "a");
        assert_string_equal(find(env, "PROCNOTIFY_EMPTY"), "");
        assert_string_equal(find(env, "PROCNOTIFY_N"), "");
        assert_string_equal(find(env, "PROCNOTIFY_NL"), "a\nb");
        hook_strv_free(env);

        assert_int_equal(hook_env_from_event("[1]", 3, &env), -EBADMSG);
        assert_int_equal(hook_env_from_event("{\"a\":1} x", 9, &env), -EBADMSG);
        assert_int_equal(hook_env_from_event("{", 1, &env), -EBADMSG);
}

static void test_build(void **state) {
        char *inherited[] = { "PATH=/usr/bin", "HOME=/root", "NOTIFY_SOCKET=/run/n", "LISTEN_FDS=1",
                              "WATCHDOG_USEC=5", "PROCNOTIFY_SOCKET=/x", "JOURNAL_STREAM=1:2",
                              "NOEQUALS", NULL };
        char *overrides[] = { "HOME=/home/bfd", "USER=bfd", NULL };
        char *event[] = { "PROCNOTIFY_TYPE=exit", NULL };
        char **env = NULL;
        (void) state;
        assert_int_equal(hook_env_build(&env, inherited, overrides, event), 0);
        assert_string_equal(find(env, "PATH"), "/usr/bin");
        assert_string_equal(find(env, "HOME"), "/home/bfd");
        assert_string_equal(find(env, "USER"), "bfd");
        assert_string_equal(find(env, "JOURNAL_STREAM"), "1:2");
        assert_string_equal(find(env, "PROCNOTIFY_TYPE"), "exit");
        assert_null(find(env, "NOTIFY_SOCKET"));
        assert_null(find(env, "LISTEN_FDS"));
        assert_null(find(env, "WATCHDOG_USEC"));
        assert_null(find(env, "PROCNOTIFY_SOCKET"));
        size_t n = 0;
        while (env[n])
                n++;
        assert_int_equal(n, 5);
        hook_strv_free(env);
        assert_int_equal(hook_env_build(&env, NULL, NULL, NULL), 0);
        assert_null(env[0]);
        hook_strv_free(env);
}

/* The runner's log escape: nothing a process name holds starts a line or
 * reaches a terminal raw. */
static void test_log_escape(void **state) {
        char buf[64];
        (void) state;
        assert_string_equal(runner_log_escape(buf, sizeof(buf), "bfdd"), "bfdd");
        assert_string_equal(runner_log_escape(buf, sizeof(buf), "x\nFORGED\x1b[31m"),
                            "x\\nFORGED\\x1b[31m");
        assert_string_equal(runner_log_escape(buf, sizeof(buf), "a\\b\tc\rd\x7f\x01"),
                            "a\\\\b\\tc\\rd\\x7f\\x01");
        assert_string_equal(runner_log_escape(buf, sizeof(buf), "caf\xc3\xa9 \xef\xbf\xbd"),
                            "caf\xc3\xa9 \xef\xbf\xbd");
        assert_string_equal(runner_log_escape(buf, sizeof(buf), "\xc2\x9b" "31m\xc2\x85"),
                            "\\u009b31m\\u0085");
        assert_string_equal(runner_log_escape(buf, sizeof(buf), "\xff\xc0\xaf"), "\\xff\\xc0\\xaf");
        /* Cut whole: never half an escape or half a character. */
        assert_string_equal(runner_log_escape(buf, 4, "ab\n"), "ab");
        assert_string_equal(runner_log_escape(buf, 4, "a\xc3\xa9\xc3\xa9"), "a\xc3\xa9");
        assert_string_equal(runner_log_escape(buf, 1, "abc"), "");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_exit_event),
                cmocka_unit_test(test_log_escape),
                cmocka_unit_test(test_odd_members),
                cmocka_unit_test(test_build),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
