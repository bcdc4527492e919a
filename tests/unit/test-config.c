/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Configuration parsing: defaults, every key, errors naming their line. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <cmocka.h>

#include "common/linux-compat.h"
#include "daemon/config.h"

static void test_defaults(void **state) {
        Config *c;
        (void) state;
        assert_int_equal(config_new(&c), 0);
        assert_string_equal(c->socket_path, CONFIG_DEFAULT_SOCKET);
        assert_string_equal(c->dbus, "system");
        assert_string_equal(c->group, "procnotify");
        assert_int_equal(c->receive_buffer, 128u << 20);
        assert_int_equal(c->kernel_events, 0);
        assert_int_equal(c->client_queue_bytes, 1u << 20);
        assert_int_equal(c->log_level, LOG_INFO);
        assert_int_equal(c->max_subscriptions_per_uid, 256);
        assert_int_equal(c->max_watches_per_uid, 256);
        assert_false(c->run_enabled);
        config_free(c);
}

static void test_every_key(void **state) {
        Config *c;
        char err[256];
        (void) state;
        assert_int_equal(config_new(&c), 0);
        const char *text = "; comment\n"
                           "[Broker]\nSocket=/run/x/y.sock\nDBus=none\nLogLevel=debug\n"
                           "[Connector]\nReceiveBuffer=64M\nEvents=predump, comm\n"
                           "[Limits]\nMaxClients=10\nMaxClientsPerUser=2\nMaxSubscriptions=3\n"
                           "ClientQueue=64K\nMaxProcesses=1000\n"
                           "MaxWatches=5\nMaxWatchesPerUser=9\nMaxTracedThreads=100\n"
                           "MaxSubscriptionsPerUser=5\n"
                           "[Policy]\nGroup=wheel\n"
                           "[Run]\nEnabled=yes\n";
        assert_int_equal(config_parse_string(c, text, err, sizeof(err)), 0);
        assert_string_equal(c->socket_path, "/run/x/y.sock");
        assert_string_equal(c->dbus, "none");
        assert_int_equal(c->log_level, LOG_DEBUG);
        assert_int_equal(c->receive_buffer, 64u << 20);
        /* The table's own needs are always added. */
        assert_int_equal(c->kernel_events, PROC_EVENT_COREDUMP | PROC_EVENT_COMM | PROC_EVENT_FORK |
                                                   PROC_EVENT_EXEC | PROC_EVENT_EXIT | PROC_EVENT_UID);
        assert_int_equal(c->max_clients, 10);
        assert_int_equal(c->max_clients_per_uid, 2);
        assert_int_equal(c->max_subscriptions, 3);
        assert_int_equal(c->client_queue_bytes, 64u << 10);
        assert_int_equal(c->max_processes, 1000);
        assert_int_equal(c->max_watches, 5);
        assert_int_equal(c->max_watches_per_uid, 9);
        assert_int_equal(c->max_traced_threads, 100);
        assert_string_equal(c->group, "wheel");
        assert_int_equal(c->max_subscriptions_per_uid, 5);
        assert_true(c->run_enabled);
        assert_int_equal(config_parse_string(c, "[Run]\nEnabled=off\n", err, sizeof(err)), 0);
        assert_false(c->run_enabled);
        assert_int_equal(config_parse_string(c, "[Connector]\nEvents=all\n", err, sizeof(err)), 0);
        assert_int_equal(c->kernel_events, 0);
        config_free(c);
}

static void expect_bad(const char *text, const char *in_message) {
        Config *c;
        char err[256] = "";
        assert_int_equal(config_new(&c), 0);
        assert_int_equal(config_parse_string(c, text, err, sizeof(err)), -EINVAL);
        if (!strstr(err, in_message)) {
                print_error("\"%s\" lacks \"%s\"\n", err, in_message);
                fail();
        }
        config_free(c);
}

static void test_errors_name_their_line(void **state) {
        (void) state;
        expect_bad("[Limits]\nMaxClients=lots\n", "line 2: invalid value \"lots\" for MaxClients=");
        expect_bad("[Limits]\nMaxClients=0\n", "line 2");
        expect_bad("[Limits]\n\nClientQueue=1K\n", "line 3");
        expect_bad("[Broker]\nSocket=relative.sock\n", "Socket");
        expect_bad("[Broker]\nLogLevel=chatty\n", "LogLevel");
        expect_bad("[Limits]\nMaxSubscriptionsPerUser=0\n", "MaxSubscriptionsPerUser");
        expect_bad("[Limits]\nMaxWatchesPerUser=many\n", "MaxWatchesPerUser");
        expect_bad("[Run]\nEnabled=maybe\n", "Enabled");
        expect_bad("[Connector]\nEvents=fork,bogus\n", "Events");
        expect_bad("[Connector]\nReceiveBuffer=-1\n", "ReceiveBuffer");
        expect_bad("[Broker]\nColour=blue\n", "unknown key \"Colour\" in [Broker]");
        expect_bad("[Nope]\nx=y\n", "unknown section [Nope]");
        expect_bad("x=y\n", "line 1");
        expect_bad("[Broker\n", "line 1: expected [Section]");
        expect_bad("x=y\n", "x= before any [Section]");
}

static void test_comments_and_blanks(void **state) {
        Config *c;
        char err[256] = "";
        (void) state;
        assert_int_equal(config_new(&c), 0);
        const char *text = "# a comment\n"
                           "[Broker]   # after a section\n"
                           "  LogLevel = debug   # after a value\n"
                           "\tDBus=none ; the other kind\n"
                           "Socket=/run/a#b.sock\n" /* '#' without a blank before it is a value */
                           "[limits]\r\n"
                           "MaxClients=7\r\n";
        assert_int_equal(config_parse_string(c, text, err, sizeof(err)), 0);
        assert_int_equal(c->log_level, LOG_DEBUG);
        assert_string_equal(c->dbus, "none");
        assert_string_equal(c->socket_path, "/run/a#b.sock");
        assert_int_equal(c->max_clients, 7);
        config_free(c);
}

static void test_every_error_reported(void **state) {
        Config *c;
        char err[512] = "";
        char longline[400];
        (void) state;
        assert_int_equal(config_new(&c), 0);
        const char *text = "[Broker]\n"
                           "LogLevel=chatty\n"
                           "Colour=blue\n"
                           "[Nope]\n"
                           "a=b\n"
                           "c=d\n"
                           "[Limits]\n"
                           "no equals sign\n"
                           "MaxClients=0\n";
        assert_int_equal(config_parse_string(c, text, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "line 2: invalid value \"chatty\" for LogLevel="));
        assert_non_null(strstr(err, "line 3: unknown key \"Colour\" in [Broker]"));
        assert_non_null(strstr(err, "line 4: unknown section [Nope]"));
        /* The keys of an unknown section are not reported again. */
        assert_null(strstr(err, "line 5"));
        assert_null(strstr(err, "line 6"));
        assert_non_null(strstr(err, "line 8: expected Key=Value"));
        assert_non_null(strstr(err, "line 9: invalid value \"0\" for MaxClients="));
        config_free(c);

        /* A line too long for the parser is an error of its own line, and
         * the lines after it are still read. */
        memset(longline, 'x', sizeof(longline) - 1);
        longline[sizeof(longline) - 1] = 0;
        char *text2 = NULL;
        assert_true(asprintf(&text2, "[Broker]\nGroup=%s\nLogLevel=loud\n", longline) > 0);
        assert_int_equal(config_new(&c), 0);
        assert_int_equal(config_parse_string(c, text2, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "line 2: line longer than"));
        assert_non_null(strstr(err, "line 3: invalid value \"loud\""));
        config_free(c);
        free(text2);

        /* More errors than fit: the last line says how many more. */
        char many[4096] = "[Limits]\n";
        for (int i = 0; i < 100; i++)
                strcat(many, "MaxClients=x\n");
        char small[200];
        assert_int_equal(config_new(&c), 0);
        assert_int_equal(config_parse_string(c, many, small, sizeof(small)), -EINVAL);
        assert_true(strlen(small) < sizeof(small));
        assert_non_null(strstr(small, "more error(s)"));
        config_free(c);
}

static void test_sizes(void **state) {
        uint64_t v;
        (void) state;
        assert_int_equal(config_parse_size("4096", &v), 0);
        assert_int_equal(v, 4096);
        assert_int_equal(config_parse_size("32M", &v), 0);
        assert_int_equal(v, 32u << 20);
        assert_int_equal(config_parse_size("64k", &v), 0);
        assert_int_equal(v, 64u << 10);
        assert_int_equal(config_parse_size("1G", &v), 0);
        assert_int_equal(v, 1u << 30);
        assert_int_equal(config_parse_size("", &v), -EINVAL);
        assert_int_equal(config_parse_size("12T", &v), -EINVAL);
        assert_int_equal(config_parse_size("-5", &v), -EINVAL);
        assert_int_equal(config_parse_size("5MB", &v), -EINVAL);
        assert_int_equal(config_parse_size("99999999999999999999G", &v), -EINVAL);
        assert_int_equal(config_parse_size("17179869184G", &v), -EINVAL); /* overflow */
}

static void test_missing_file(void **state) {
        Config *c;
        char err[256] = "";
        (void) state;
        assert_int_equal(config_new(&c), 0);
        assert_int_equal(config_load_file(c, "/nonexistent/procnotify.conf", true, err, sizeof(err)), 0);
        assert_int_equal(config_load_file(c, "/nonexistent/procnotify.conf", false, err, sizeof(err)), -ENOENT);
        assert_non_null(strstr(err, "cannot open"));
        config_free(c);
}

static void test_run_section(void **state) {
        Config *c;
        char err[256];
        int sig;
        (void) state;
        assert_int_equal(config_new(&c), 0);
        assert_false(c->run_enabled); /* least privilege: off unless asked for */
        assert_int_equal(c->run_output, CONFIG_RUN_OUTPUT_AUTO);
        assert_string_equal(c->run_log_directory, CONFIG_DEFAULT_RUN_LOG_DIRECTORY);
        assert_int_equal(c->max_children, 64);
        assert_int_equal(c->predump_prctl, 0);
        assert_int_equal(c->adopt_prctl, 0);
        const char *text = "[Run]\nEnabled=no\nOutput=file\nLogDirectory=/var/log/x\nStopTimeout=0\n"
                           "PredumpSignalPrctl=54\nPredumpSignal=SIGUSR1\n"
                           "AdoptSignalPrctl=31\nAdoptSignal=RTMIN+3\n"
                           "[Limits]\nMaxChildren=5\nMaxChildrenPerUser=2\n";
        assert_int_equal(config_parse_string(c, text, err, sizeof(err)), 0);
        assert_false(c->run_enabled);
        assert_int_equal(c->run_output, CONFIG_RUN_OUTPUT_FILE);
        assert_string_equal(c->run_log_directory, "/var/log/x");
        assert_int_equal(c->run_stop_timeout, 0);
        assert_int_equal(c->predump_prctl, 54);
        assert_int_equal(c->predump_signal, SIGUSR1);
        assert_int_equal(c->adopt_prctl, 31);
        assert_int_equal(c->adopt_signal, SIGRTMIN + 3);
        assert_int_equal(c->max_children, 5);
        assert_int_equal(c->max_children_per_uid, 2);
        config_free(c);

        assert_int_equal(config_parse_prctl_signal("USR2", &sig), 0);
        assert_int_equal(sig, SIGUSR2);
        assert_int_equal(config_parse_prctl_signal("12", &sig), 0);
        assert_int_equal(sig, 12);
        /* Signals the broker uses itself, and the unblockable ones. */
        const char *bad[] = { "CHLD", "SIGTERM", "INT", "HUP", "KILL", "9", "STOP", "0", "65", "RTMIN+99",
                              "USR1x", "", "SEGV" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(config_parse_prctl_signal(bad[i], &sig), -EINVAL);
}

static void test_run_section_errors(void **state) {
        (void) state;
        expect_bad("[Run]\nPredumpSignalPrctl=54\n", "set together");
        expect_bad("[Run]\nAdoptSignal=USR2\n", "set together");
        expect_bad("[Run]\nPredumpSignalPrctl=54\nPredumpSignal=USR1\n"
                   "AdoptSignalPrctl=55\nAdoptSignal=USR1\n", "must differ");
        expect_bad("[Run]\nPredumpSignalPrctl=0\n", "PredumpSignalPrctl");
        expect_bad("[Run]\nPredumpSignalPrctl=-3\n", "PredumpSignalPrctl");
        expect_bad("[Run]\nPredumpSignal=CHLD\n", "PredumpSignal");
        expect_bad("[Run]\nEnabled=maybe\n", "Enabled");
        expect_bad("[Run]\nOutput=syslog\n", "Output");
        expect_bad("[Run]\nLogDirectory=relative\n", "LogDirectory");
        expect_bad("[Run]\nColour=blue\n", "Colour");
        expect_bad("[Limits]\nMaxChildren=0\n", "MaxChildren");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_every_key),
                cmocka_unit_test(test_run_section),
                cmocka_unit_test(test_run_section_errors),
                cmocka_unit_test(test_errors_name_their_line),
                cmocka_unit_test(test_comments_and_blanks),
                cmocka_unit_test(test_every_error_reported),
                cmocka_unit_test(test_sizes),
                cmocka_unit_test(test_missing_file),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
