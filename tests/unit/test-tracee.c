/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tracee_step(): what the ptrace watch does with each wait status, so that
 * the process behaves as untraced (signals re-injected, group-stop left in
 * PTRACE_LISTEN) and stop/continue are reported once per group-stop. The
 * ptrace calls themselves are exercised by the integration tests.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/ptrace.h>

#include <cmocka.h>

#include "daemon/source-ptrace.h"

/* Raw statuses as waitpid(__WALL) returns them. */
static int stopped(int sig, int event) {
        return (event << 16) | (sig << 8) | 0x7f;
}
#define EXITED(code) ((code) << 8)
#define KILLED(sig) (sig)

static void test_signal_reinjected(void **state) {
        TraceeState st = { 0 };
        TraceeMark tg = { 0 };
        (void) state;
        TraceeStep s = tracee_step(&st, &tg, false, stopped(SIGUSR1, 0));
        assert_int_equal(s.op, TRACEE_OP_CONT);
        assert_int_equal(s.signal, SIGUSR1);
        assert_int_equal(s.event, _PN_EVENT_TYPE_INVALID);
        /* A stop signal is delivered too: that starts the group-stop. */
        s = tracee_step(&st, &tg, false, stopped(SIGSTOP, 0));
        assert_int_equal(s.op, TRACEE_OP_CONT);
        assert_int_equal(s.signal, SIGSTOP);
        assert_false(st.stopped);
}

static void test_group_stop_once_then_continue(void **state) {
        TraceeState st = { 0 };
        TraceeMark tg = { 0 };
        (void) state;
        /* Three threads enter the group-stop: one stop event. */
        TraceeStep s = tracee_step(&st, &tg, false, stopped(SIGTSTP, PTRACE_EVENT_STOP));
        assert_int_equal(s.op, TRACEE_OP_LISTEN);
        assert_int_equal(s.event, PN_EVENT_STOP);
        assert_int_equal(s.event_signal, SIGTSTP);
        assert_true(st.stopped);
        for (int i = 0; i < 2; i++) {
                s = tracee_step(&st, &tg, false, stopped(SIGTSTP, PTRACE_EVENT_STOP));
                assert_int_equal(s.op, TRACEE_OP_LISTEN);
                assert_int_equal(s.event, _PN_EVENT_TYPE_INVALID);
        }
        /* SIGCONT wakes the listeners (SIGTRAP): one continue event. */
        s = tracee_step(&st, &tg, false, stopped(SIGTRAP, PTRACE_EVENT_STOP));
        assert_int_equal(s.op, TRACEE_OP_CONT);
        assert_int_equal(s.signal, 0);
        assert_int_equal(s.event, PN_EVENT_CONTINUE);
        assert_false(st.stopped);
        for (int i = 0; i < 2; i++) {
                s = tracee_step(&st, &tg, false, stopped(SIGTRAP, PTRACE_EVENT_STOP));
                assert_int_equal(s.op, TRACEE_OP_CONT);
                assert_int_equal(s.event, _PN_EVENT_TYPE_INVALID);
        }
        /* The SIGCONT itself is then delivered (the default ignores it). */
        s = tracee_step(&st, &tg, false, stopped(SIGCONT, 0));
        assert_int_equal(s.op, TRACEE_OP_CONT);
        assert_int_equal(s.signal, SIGCONT);
        for (int sig = SIGTTIN; sig <= SIGTTOU; sig++) {
                s = tracee_step(&st, &tg, false, stopped(sig, PTRACE_EVENT_STOP));
                assert_int_equal(s.event, PN_EVENT_STOP);
                assert_int_equal(s.event_signal, sig);
                s = tracee_step(&st, &tg, false, stopped(SIGTRAP, PTRACE_EVENT_STOP));
                assert_int_equal(s.event, PN_EVENT_CONTINUE);
        }
}

/* SIGCONT came while a thread's group-stop trap was still queued: the other
 * threads' continue is reported first; the late trap is no new stop (the
 * kernel then re-traps it with SIGTRAP; the probe asks for that anyway). A
 * genuine next stop still is. */
static void test_stale_group_stop_trap(void **state) {
        TraceeState st = { 0 };
        TraceeMark a = { 0 }, e = { 0 };
        (void) state;
        TraceeStep s = tracee_step(&st, &a, false, stopped(SIGSTOP, PTRACE_EVENT_STOP));
        assert_int_equal(s.event, PN_EVENT_STOP);
        s = tracee_step(&st, &a, false, stopped(SIGTRAP, PTRACE_EVENT_STOP));
        assert_int_equal(s.event, PN_EVENT_CONTINUE);
        assert_int_equal(a.epoch, st.epoch);
        /* e's trap from before the SIGCONT. */
        s = tracee_step(&st, &e, false, stopped(SIGSTOP, PTRACE_EVENT_STOP));
        assert_int_equal(s.op, TRACEE_OP_LISTEN);
        assert_true(s.probe);
        assert_int_equal(s.event, _PN_EVENT_TYPE_INVALID);
        assert_false(st.stopped);
        s = tracee_step(&st, &e, false, stopped(SIGTRAP, PTRACE_EVENT_STOP));
        assert_int_equal(s.op, TRACEE_OP_CONT);
        assert_int_equal(s.event, _PN_EVENT_TYPE_INVALID);
        assert_int_equal(e.epoch, st.epoch);
        /* The next group-stop, whichever thread reports first. */
        s = tracee_step(&st, &e, false, stopped(SIGTSTP, PTRACE_EVENT_STOP));
        assert_int_equal(s.event, PN_EVENT_STOP);
        assert_int_equal(s.event_signal, SIGTSTP);
        s = tracee_step(&st, &a, false, stopped(SIGTSTP, PTRACE_EVENT_STOP));
        assert_int_equal(s.event, _PN_EVENT_TYPE_INVALID);
}

/* The flake of watch threads_stop_once, step by step: after SIGCONT, a's
 * wake is told as the continue, the next SIGSTOP's stop is told from a, and
 * only then is b's wake from the SIGCONT read. It is no continue (b was let
 * go by LISTEN before the continue was told), and b then joining the
 * group-stop is no second stop. */
static void test_late_wake_is_no_continue(void **state) {
        TraceeState st = { 0 };
        TraceeMark a = tracee_mark_seized(&st), b = tracee_mark_seized(&st);
        (void) state;
        assert_int_equal(tracee_step(&st, &a, false, stopped(SIGSTOP, PTRACE_EVENT_STOP)).event, PN_EVENT_STOP);
        assert_int_equal(tracee_step(&st, &b, false, stopped(SIGSTOP, PTRACE_EVENT_STOP)).event,
                         _PN_EVENT_TYPE_INVALID);
        assert_int_equal(b.how, TRACEE_RELEASED_LISTEN);
        assert_int_equal(tracee_step(&st, &a, false, stopped(SIGTRAP, PTRACE_EVENT_STOP)).event,
                         PN_EVENT_CONTINUE);
        assert_int_equal(tracee_step(&st, &a, false, stopped(SIGSTOP, PTRACE_EVENT_STOP)).event, PN_EVENT_STOP);
        TraceeStep s = tracee_step(&st, &b, false, stopped(SIGTRAP, PTRACE_EVENT_STOP));
        assert_int_equal(s.event, _PN_EVENT_TYPE_INVALID);
        assert_int_equal(s.op, TRACEE_OP_CONT);
        s = tracee_step(&st, &b, false, stopped(SIGSTOP, PTRACE_EVENT_STOP));
        assert_int_equal(s.event, _PN_EVENT_TYPE_INVALID);
        assert_int_equal(s.op, TRACEE_OP_LISTEN);
        assert_false(s.probe); /* the stop is told already */
        /* The next SIGCONT wakes both: one continue. */
        assert_int_equal(tracee_step(&st, &b, false, stopped(SIGTRAP, PTRACE_EVENT_STOP)).event,
                         PN_EVENT_CONTINUE);
        assert_int_equal(tracee_step(&st, &a, false, stopped(SIGTRAP, PTRACE_EVENT_STOP)).event,
                         _PN_EVENT_TYPE_INVALID);
        assert_false(st.stopped);
}

/* New threads: a cloned one is judged by its parent's epoch from before
 * the clone, one claimed before its parent's clone event is stale, and a
 * new thread's first stop (SIGTRAP) is never a continue. */
static void test_new_thread_marks(void **state) {
        TraceeState st = { .epoch = 5 };
        TraceeMark parent = { .how = TRACEE_RELEASED_CONT, .epoch = 3 };
        TraceeMark seized = tracee_mark_seized(&st), cloned = tracee_mark_cloned(parent),
                   unknown = tracee_mark_unknown(&st);
        (void) state;
        assert_int_equal(seized.epoch, 5);
        assert_int_equal(cloned.epoch, 3);
        assert_int_equal(cloned.how, TRACEE_RELEASED_NEVER);
        assert_int_not_equal(unknown.epoch, 5);
        /* Stale: no stop, but probed; then fresh at the new epoch. */
        TraceeStep s = tracee_step(&st, &cloned, false, stopped(SIGSTOP, PTRACE_EVENT_STOP));
        assert_int_equal(s.event, _PN_EVENT_TYPE_INVALID);
        assert_true(s.probe);
        assert_int_equal(cloned.epoch, 5);
        s = tracee_step(&st, &unknown, false, stopped(SIGSTOP, PTRACE_EVENT_STOP));
        assert_int_equal(s.event, _PN_EVENT_TYPE_INVALID);
        assert_true(s.probe);
        s = tracee_step(&st, &seized, false, stopped(SIGSTOP, PTRACE_EVENT_STOP));
        assert_int_equal(s.event, PN_EVENT_STOP);
        /* A new thread's first stop while stopped: no continue. */
        TraceeMark fresh = tracee_mark_seized(&st);
        s = tracee_step(&st, &fresh, false, stopped(SIGTRAP, PTRACE_EVENT_STOP));
        assert_int_equal(s.event, _PN_EVENT_TYPE_INVALID);
        assert_true(st.stopped);
}

static void test_new_thread(void **state) {
        TraceeState st = { 0 };
        TraceeMark tg = { 0 };
        (void) state;
        TraceeStep s = tracee_step(&st, &tg, false, stopped(SIGTRAP, PTRACE_EVENT_CLONE));
        assert_true(s.clone);
        assert_int_equal(s.op, TRACEE_OP_CONT);
        assert_int_equal(s.signal, 0);
        /* Its first stop: PTRACE_EVENT_STOP with SIGTRAP, not a continue. */
        s = tracee_step(&st, &tg, false, stopped(SIGTRAP, PTRACE_EVENT_STOP));
        assert_int_equal(s.op, TRACEE_OP_CONT);
        assert_int_equal(s.event, _PN_EVENT_TYPE_INVALID);
}

/* An exec (PTRACE_EVENT_EXEC, under the thread group id): told, so that
 * the other threads' entries go, and resumed; also while detaching. */
static void test_exec(void **state) {
        TraceeState st = { 0 };
        TraceeMark tg = { 0 };
        (void) state;
        TraceeStep s = tracee_step(&st, &tg, false, stopped(SIGTRAP, PTRACE_EVENT_EXEC));
        assert_true(s.exec);
        assert_false(s.clone);
        assert_int_equal(s.op, TRACEE_OP_CONT);
        assert_int_equal(s.signal, 0);
        assert_int_equal(s.event, _PN_EVENT_TYPE_INVALID);
        s = tracee_step(&st, &tg, true, stopped(SIGTRAP, PTRACE_EVENT_EXEC));
        assert_true(s.exec);
        assert_int_equal(s.op, TRACEE_OP_DETACH);
        assert_int_equal(s.signal, 0);
        s = tracee_step(&st, &tg, false, stopped(SIGSTOP, PTRACE_EVENT_STOP));
        assert_false(s.exec);
        /* A thread entered the group-stop (reported), then another exec'd:
         * the exec ended the first and undid the group-stop: continue. */
        assert_true(st.stopped);
        unsigned epoch = st.epoch;
        s = tracee_step(&st, &tg, false, stopped(SIGTRAP, PTRACE_EVENT_EXEC));
        assert_int_equal(s.op, TRACEE_OP_CONT);
        assert_int_equal(s.event, PN_EVENT_CONTINUE);
        assert_false(st.stopped);
        assert_int_equal(st.epoch, epoch + 1);
        assert_int_equal(tg.epoch, st.epoch);
        /* The new image's own stop is a new one. */
        s = tracee_step(&st, &tg, false, stopped(SIGSTOP, PTRACE_EVENT_STOP));
        assert_int_equal(s.event, PN_EVENT_STOP);
}

static void test_gone(void **state) {
        TraceeState st = { .stopped = true };
        TraceeMark tg = { 0 };
        (void) state;
        TraceeStep s = tracee_step(&st, &tg, false, EXITED(3));
        assert_true(s.gone);
        assert_int_equal(s.op, TRACEE_OP_NONE);
        s = tracee_step(&st, &tg, true, KILLED(SIGKILL));
        assert_true(s.gone);
        assert_int_equal(s.op, TRACEE_OP_NONE);
        s = tracee_step(&st, &tg, false, 0xffff); /* WIFCONTINUED: not for a tracer */
        assert_int_equal(s.op, TRACEE_OP_NONE);
        assert_false(s.gone);
}

static void test_detaching(void **state) {
        TraceeState st = { .stopped = true };
        TraceeMark tg = { 0 };
        (void) state;
        /* Any stop detaches; a signal being delivered goes on with it; no
         * events while detaching. */
        TraceeStep s = tracee_step(&st, &tg, true, stopped(SIGTRAP, PTRACE_EVENT_STOP));
        assert_int_equal(s.op, TRACEE_OP_DETACH);
        assert_int_equal(s.signal, 0);
        assert_int_equal(s.event, _PN_EVENT_TYPE_INVALID);
        s = tracee_step(&st, &tg, true, stopped(SIGUSR2, 0));
        assert_int_equal(s.op, TRACEE_OP_DETACH);
        assert_int_equal(s.signal, SIGUSR2);
        s = tracee_step(&st, &tg, true, stopped(SIGSTOP, PTRACE_EVENT_STOP));
        assert_int_equal(s.op, TRACEE_OP_DETACH);
        assert_int_equal(s.signal, 0);
        assert_int_equal(s.event, _PN_EVENT_TYPE_INVALID);
        s = tracee_step(&st, &tg, true, stopped(SIGTRAP, PTRACE_EVENT_CLONE));
        assert_true(s.clone); /* the new thread must be detached too */
        assert_int_equal(s.op, TRACEE_OP_DETACH);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_signal_reinjected),
                cmocka_unit_test(test_group_stop_once_then_continue),
                cmocka_unit_test(test_stale_group_stop_trap),
                cmocka_unit_test(test_late_wake_is_no_continue),
                cmocka_unit_test(test_new_thread_marks),
                cmocka_unit_test(test_new_thread),
                cmocka_unit_test(test_exec),
                cmocka_unit_test(test_gone),
                cmocka_unit_test(test_detaching),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
