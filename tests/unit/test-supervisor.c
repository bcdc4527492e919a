/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The supervisor's pure parts: wait statuses and patched-kernel siginfo into
 * events, default names, and the sanitised environment of a child (spawn.c).
 * The processes themselves are exercised by tests/integration/test_run.py.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "daemon/spawn.h"
#include "daemon/supervisor.h"

/* Wait statuses as the kernel encodes them (see <bits/waitstatus.h>). */
#define EXITED(code) ((code) << 8)
#define KILLED(sig, core) ((sig) | ((core) ? 0x80 : 0))
#define STOPPED(sig) (((sig) << 8) | 0x7f)
#define CONTINUED 0xffff
#define PTRACE_EVENT_STOP_ 128

static void test_event_from_status(void **state) {
        PnEvent ev;
        (void) state;
        assert_int_equal(supervisor_event_from_status(42, EXITED(3), 7, &ev), 0);
        assert_int_equal(ev.type, PN_EVENT_EXIT);
        assert_int_equal(ev.pid, 42);
        assert_int_equal(ev.tgid, 42);
        assert_int_equal(ev.ts_ns, 7);
        assert_int_equal(ev.sources, PN_SOURCE_CHILD);
        assert_int_equal(ev.exit.exit_code, 3);
        assert_int_equal(ev.exit.status, EXITED(3));
        assert_int_equal(ev.uid, UINT32_MAX);

        assert_int_equal(supervisor_event_from_status(42, KILLED(SIGSEGV, 1), 7, &ev), 0);
        assert_int_equal(ev.type, PN_EVENT_EXIT);
        assert_int_equal(ev.exit.signal, SIGSEGV);
        assert_int_equal(ev.exit.exit_code, 128 + SIGSEGV);
        assert_true(ev.exit.core_dumped);

        assert_int_equal(supervisor_event_from_status(42, STOPPED(SIGTSTP), 7, &ev), 0);
        assert_int_equal(ev.type, PN_EVENT_STOP);
        assert_int_equal(ev.stop.signal, SIGTSTP);

        assert_int_equal(supervisor_event_from_status(42, CONTINUED, 7, &ev), 0);
        assert_int_equal(ev.type, PN_EVENT_CONTINUE);

        /* ptrace stops are not ours: an event stop (status >> 16) and a
         * syscall stop (SIGTRAP | 0x80). */
        assert_int_equal(supervisor_event_from_status(42, STOPPED(SIGTRAP) | (PTRACE_EVENT_STOP_ << 16), 7, &ev),
                         SUPERVISOR_STATUS_OTHER);
        assert_int_equal(supervisor_event_from_status(42, STOPPED(SIGTRAP | 0x80), 7, &ev),
                         SUPERVISOR_STATUS_OTHER);
}

static void test_died_dumping(void **state) {
        /* A predump's verdict from the wait status: a core-dumping signal,
         * with a core (CLD_DUMPED) or without (RLIMIT_CORE 0: CLD_KILLED). */
        (void) state;
        assert_true(supervisor_status_died_dumping(KILLED(SIGSEGV, 1)));
        assert_true(supervisor_status_died_dumping(KILLED(SIGSEGV, 0)));
        assert_true(supervisor_status_died_dumping(KILLED(SIGABRT, 0)));
        /* A forger that signals the broker and exits or is killed. */
        assert_false(supervisor_status_died_dumping(EXITED(0)));
        assert_false(supervisor_status_died_dumping(EXITED(SIGSEGV)));
        assert_false(supervisor_status_died_dumping(KILLED(SIGKILL, 0)));
        assert_false(supervisor_status_died_dumping(KILLED(SIGTERM, 0)));
        assert_false(supervisor_status_died_dumping(STOPPED(SIGSEGV)));
}

static void test_predump_siginfo(void **state) {
        /* The patched kernel sends it with SEND_SIG_NOINFO: SI_USER, the
         * dying child's pid and uid, no status. */
        struct signalfd_siginfo si = { .ssi_signo = SIGUSR1, .ssi_code = SI_USER, .ssi_pid = 99,
                                       .ssi_uid = 1000 };
        PnEvent ev;
        (void) state;
        assert_int_equal(supervisor_event_from_predump_siginfo(&si, 5, &ev), 0);
        assert_int_equal(ev.type, PN_EVENT_PREDUMP);
        assert_int_equal(ev.pid, 99);
        assert_int_equal(ev.tgid, 99);
        assert_int_equal(ev.uid, 1000);
        assert_int_equal(ev.predump.signal, 0);
        assert_int_equal(ev.sources, PN_SOURCE_PRCTL);
        assert_int_equal(ev.ts_ns, 5);
        /* sigqueue(), tkill(), the kernel about nobody, a CLD_* code: never
         * the form of this notification. */
        const int32_t codes[] = { SI_QUEUE, SI_TKILL, SI_KERNEL, CLD_DUMPED };
        for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
                si.ssi_code = codes[i];
                assert_int_equal(supervisor_event_from_predump_siginfo(&si, 5, &ev),
                                 SUPERVISOR_SIGNAL_REFUSED);
        }
        si.ssi_code = SI_USER;
        si.ssi_pid = 0;
        assert_int_equal(supervisor_event_from_predump_siginfo(&si, 5, &ev), SUPERVISOR_SIGNAL_REFUSED);
}

static void test_adopt_siginfo(void **state) {
        /* SI_USER as seen from userspace, si_status the old parent. */
        struct signalfd_siginfo si = { .ssi_signo = SIGUSR2, .ssi_code = SI_USER, .ssi_pid = 77,
                                       .ssi_uid = 0, .ssi_status = 76 };
        PnEvent ev;
        (void) state;
        assert_int_equal(supervisor_event_from_adopt_siginfo(&si, 10, 5, &ev), 0);
        assert_int_equal(ev.type, PN_EVENT_ADOPT);
        assert_int_equal(ev.tgid, 77);
        assert_int_equal(ev.adopt.new_parent, 10);
        assert_int_equal(ev.adopt.old_parent, 76);
        assert_int_equal(ev.sources, PN_SOURCE_PRCTL);
        /* A kill() has no old parent (its siginfo is cleared). */
        si.ssi_status = 0;
        assert_int_equal(supervisor_event_from_adopt_siginfo(&si, 10, 5, &ev), SUPERVISOR_SIGNAL_REFUSED);
        si.ssi_status = 76;
        si.ssi_code = SI_QUEUE;
        assert_int_equal(supervisor_event_from_adopt_siginfo(&si, 10, 5, &ev), SUPERVISOR_SIGNAL_REFUSED);
        si.ssi_code = SI_USER;
        si.ssi_pid = 10; /* the broker itself */
        assert_int_equal(supervisor_event_from_adopt_siginfo(&si, 10, 5, &ev), SUPERVISOR_SIGNAL_REFUSED);
}

static void test_default_name(void **state) {
        char buf[80];
        (void) state;
        supervisor_default_name("/usr/bin/sleep", buf, sizeof(buf));
        assert_string_equal(buf, "sleep");
        supervisor_default_name("my prog", buf, sizeof(buf));
        assert_string_equal(buf, "my_prog");
        supervisor_default_name("/x/.hidden", buf, sizeof(buf));
        assert_string_equal(buf, "_.hidden");
        supervisor_default_name("/x/", buf, sizeof(buf));
        assert_string_equal(buf, "_x_");
        supervisor_default_name("", buf, sizeof(buf));
        assert_string_equal(buf, "_");
        char longname[200];
        memset(longname, 'a', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = 0;
        supervisor_default_name(longname, buf, sizeof(buf));
        assert_int_equal(strlen(buf), 64);
}

static void test_env(void **state) {
        char **env = NULL;
        const char *extra[] = { "FOO=bar", "PATH=/opt/bin", "FOO=baz", "EMPTY=" };
        (void) state;
        assert_int_equal(spawn_env_new(&env, "alice", "/home/alice", "/bin/zsh", "job", extra, 4), 0);
        assert_string_equal(spawn_env_get(env, "USER"), "alice");
        assert_string_equal(spawn_env_get(env, "LOGNAME"), "alice");
        assert_string_equal(spawn_env_get(env, "HOME"), "/home/alice");
        assert_string_equal(spawn_env_get(env, "SHELL"), "/bin/zsh");
        assert_string_equal(spawn_env_get(env, "PROCNOTIFY_RUN_NAME"), "job");
        assert_string_equal(spawn_env_get(env, "PATH"), "/opt/bin"); /* replaced */
        assert_string_equal(spawn_env_get(env, "FOO"), "baz");      /* later wins */
        assert_string_equal(spawn_env_get(env, "EMPTY"), "");
        assert_null(spawn_env_get(env, "FO"));
        size_t n = 0;
        while (env[n])
                n++;
        assert_int_equal(n, 8); /* six base entries, FOO, EMPTY */
        spawn_env_free(env);

        assert_int_equal(spawn_env_new(&env, "root", "", "", "x", NULL, 0), 0);
        assert_string_equal(spawn_env_get(env, "HOME"), "/");
        assert_string_equal(spawn_env_get(env, "SHELL"), "/bin/sh");
        assert_string_equal(spawn_env_get(env, "PATH"),
                            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        spawn_env_free(env);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_event_from_status),
                cmocka_unit_test(test_died_dumping),
                cmocka_unit_test(test_predump_siginfo),
                cmocka_unit_test(test_adopt_siginfo),
                cmocka_unit_test(test_default_name),
                cmocka_unit_test(test_env),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
