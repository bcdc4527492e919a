/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tracee_step() against a small model of the kernel's group-stop, with
 * every interleaving of a few threads, stop signals, SIGCONTs, an exec and a
 * thread exit explored (depth-first, each model state once).
 *
 * The model follows kernel/signal.c and kernel/ptrace.c for PTRACE_SEIZEd
 * threads (names as there):
 *   - SIGSTOP is queued to the process; a thread dequeues it and reports a
 *     signal-delivery-stop; resumed with it, the thread starts a group-stop
 *     (do_signal_stop(): JOBCTL_STOP_PENDING on every live thread,
 *     group_stop_count, JOBCTL_TRAP_NOTIFY on the others, which wakes a
 *     listening one) unless a SIGCONT cleared JOBCTL_STOP_DEQUEUED meanwhile
 *     or an exec is under way;
 *   - a thread with STOP_PENDING, TRAP_STOP or TRAP_NOTIFY traps into
 *     PTRACE_EVENT_STOP (do_jobctl_trap()): the stop signal if a group-stop
 *     is under way or complete, SIGTRAP if not; with STOP_PENDING it takes
 *     part (the last one sets SIGNAL_STOP_STOPPED: the real parent sees the
 *     stop); the trap clears TRAP_STOP and TRAP_NOTIFY;
 *   - SIGCONT (prepare_signal()) drops a queued SIGSTOP, clears STOP_PENDING
 *     (and STOP_DEQUEUED) and sets TRAP_NOTIFY on every thread, waking the
 *     listening ones, and ends the group-stop, complete or not;
 *   - PTRACE_LISTEN leaves a thread in its trap, woken by the next
 *     TRAP_NOTIFY, or at once if one came since it trapped; PTRACE_INTERRUPT
 *     sets TRAP_STOP and wakes a listening thread;
 *   - an exec (de_thread(), zap_other_threads()) sets group_stop_count to 0
 *     and kills every other thread; their exits are reaped by the tracer
 *     before the execing thread reports PTRACE_EVENT_EXEC; its own
 *     STOP_PENDING is taken as cleared;
 *   - a thread that runs with nothing pending may exit.
 * The tracer takes any thread's queued wait status at any moment: that is
 * the race the rule is about.
 *
 * Checked at every step: a stop is told only from a trap that saw a
 * group-stop that was not told before; a continue only from a trap taken
 * after the group-stop told last had ended. Whenever nothing is left to run
 * or to read, the told state is the real one. With a driver that behaves as
 * the integration tests do (SIGCONT once the real parent saw the stop and
 * the stop was told, SIGSTOP once the continue was told), every group-stop
 * the real parent saw is told exactly once.
 *
 * Not modelled: other signals, thread creation (new threads' marks are
 * hand-tested in test-tracee.c), SIGKILL, detaching.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>

#include <cmocka.h>

#include "daemon/source-ptrace.h"

#define MAX_THREADS 3
#define MAX_DEPTH 96

enum {
        M_RUN,      /* running (with or without work pending) */
        M_TRAPPED,  /* in a ptrace-stop, its wait status not read yet */
        M_LISTEN,   /* in a group-stop trap, left there by PTRACE_LISTEN */
        M_EXECING,  /* in exec, waiting for the other threads to be reaped */
        M_DEAD,
};

typedef struct MThread {
        uint8_t state;
        bool reported;     /* M_DEAD: its exit is still to be reaped */
        bool stop_pending; /* JOBCTL_STOP_PENDING */
        bool trap_stop;    /* JOBCTL_TRAP_STOP */
        bool trap_notify;  /* JOBCTL_TRAP_NOTIFY */
        bool dequeued;     /* JOBCTL_STOP_DEQUEUED */
        bool deliver_stop; /* resumed with SIGSTOP: do_signal_stop() next */
        bool trap_in_stop; /* a group-stop under way or complete when it trapped */
        uint8_t trap_episode; /* group-stops begun when it trapped */
        int status;        /* M_TRAPPED: the wait status */
        TraceeMark mark;   /* the broker's */
} MThread;

typedef struct Model {
        MThread th[MAX_THREADS];
        /* the kernel */
        uint8_t group_stop_count;
        bool stop_stopped;  /* SIGNAL_STOP_STOPPED */
        bool sigstop_queued;
        bool exec_waiting;  /* group_exec_task set */
        uint8_t episode;    /* group-stops begun */
        uint16_t completed; /* bit e: group-stop e completed (the real parent saw it) */
        /* the driver */
        uint8_t stops_left, conts_left, execs_left, exits_left;
        /* the broker */
        TraceeState st;
        uint8_t told_episode; /* the group-stop of the last told stop */
        uint16_t told;        /* bit e: group-stop e told */
} Model;

typedef struct Explorer {
        bool polite;
        uint64_t *seen;
        size_t seen_cap, n_seen;
        const char *path[MAX_DEPTH];
        char names[MAX_DEPTH][48];
        unsigned long steps, quiescent, told_stops;
} Explorer;

static int wstatus(int sig, int event) {
        return (event << 16) | (sig << 8) | 0x7f;
}

static bool in_stop(const Model *m) {
        return m->group_stop_count > 0 || m->stop_stopped;
}

static bool alive(const MThread *t) {
        return t->state != M_DEAD;
}

/* --- the kernel --- */

static void kill_sigstop(Model *m) {
        m->stops_left--;
        m->sigstop_queued = true;
}

static void kill_sigcont(Model *m) {
        m->conts_left--;
        m->sigstop_queued = false;
        for (int i = 0; i < MAX_THREADS; i++) {
                MThread *t = &m->th[i];
                if (!alive(t))
                        continue;
                t->stop_pending = t->dequeued = false;
                t->trap_notify = true;
                if (t->state == M_LISTEN)
                        t->state = M_RUN;
        }
        m->stop_stopped = false;
        m->group_stop_count = 0;
}

/* do_signal_stop() by thread i, with a stop signal it dequeued. */
static void start_group_stop(Model *m, int i) {
        MThread *self = &m->th[i];

        if (!self->dequeued || m->exec_waiting)
                return; /* cancelled by SIGCONT, or an exec is under way */
        self->dequeued = false;
        if (self->stop_pending)
                return;
        if (!in_stop(m))
                m->episode++;
        m->group_stop_count = 0;
        for (int j = 0; j < MAX_THREADS; j++) {
                MThread *t = &m->th[j];
                if (!alive(t))
                        continue;
                t->stop_pending = true;
                m->group_stop_count++;
                if (j != i) {
                        t->trap_notify = true;
                        if (t->state == M_LISTEN)
                                t->state = M_RUN;
                }
        }
        self->trap_stop = true;
}

static bool has_work(const MThread *t) {
        return t->deliver_stop || t->stop_pending || t->trap_stop || t->trap_notify;
}

static bool can_step(const Model *m, int i) {
        const MThread *t = &m->th[i];
        return t->state == M_RUN && (has_work(t) || m->sigstop_queued);
}

/* Thread i runs up to its next ptrace-stop (or starts a group-stop). */
static void step(Model *m, int i) {
        MThread *t = &m->th[i];

        if (t->deliver_stop) {
                t->deliver_stop = false;
                start_group_stop(m, i);
                return;
        }
        if (t->stop_pending)
                t->trap_stop = true;
        if (t->trap_stop || t->trap_notify) {
                bool stop = in_stop(m);
                t->trap_in_stop = stop;
                t->trap_episode = m->episode;
                if (t->stop_pending) {
                        t->stop_pending = false;
                        if (m->group_stop_count > 0)
                                m->group_stop_count--;
                        if (m->group_stop_count == 0 && !m->stop_stopped) {
                                m->stop_stopped = true;
                                m->completed |= 1u << m->episode;
                        }
                }
                t->trap_stop = t->trap_notify = false;
                t->state = M_TRAPPED;
                t->status = wstatus(stop ? SIGSTOP : SIGTRAP, PTRACE_EVENT_STOP);
                return;
        }
        /* Dequeue the stop signal: signal-delivery-stop. */
        m->sigstop_queued = false;
        t->dequeued = true;
        t->state = M_TRAPPED;
        t->status = wstatus(SIGSTOP, 0);
}

static bool idle(const MThread *t) {
        return t->state == M_RUN && !has_work(t);
}

static bool can_exec(const Model *m, int i) {
        return m->execs_left > 0 && !m->exec_waiting && idle(&m->th[i]);
}

static void exec_start(Model *m, int i) {
        m->execs_left--;
        m->exec_waiting = true;
        m->group_stop_count = 0;
        m->stop_stopped = false;
        for (int j = 0; j < MAX_THREADS; j++) {
                MThread *t = &m->th[j];
                if (!alive(t))
                        continue;
                t->stop_pending = t->trap_stop = t->dequeued = t->deliver_stop = false;
                if (j == i) {
                        t->state = M_EXECING;
                } else {
                        t->trap_notify = false;
                        t->state = M_DEAD;
                        t->reported = true;
                }
        }
}

static bool can_exec_finish(const Model *m, int i) {
        if (m->th[i].state != M_EXECING)
                return false;
        for (int j = 0; j < MAX_THREADS; j++)
                if (m->th[j].state == M_DEAD && m->th[j].reported)
                        return false;
        return true;
}

static void exec_finish(Model *m, int i) {
        MThread *t = &m->th[i];
        m->exec_waiting = false;
        t->state = M_TRAPPED;
        t->trap_in_stop = false;
        t->trap_episode = m->episode;
        t->status = wstatus(SIGTRAP, PTRACE_EVENT_EXEC);
}

static bool can_exit(const Model *m, int i) {
        return i > 0 && m->exits_left > 0 && !m->exec_waiting && idle(&m->th[i]);
}

static void thread_exit(Model *m, int i) {
        m->exits_left--;
        m->th[i].state = M_DEAD;
        m->th[i].reported = true;
}

/* --- the broker --- */

static bool can_read(const Model *m, int i) {
        const MThread *t = &m->th[i];
        return t->state == M_TRAPPED || (t->state == M_DEAD && t->reported);
}

/* The broker reads thread i's wait status and acts. Returns NULL, or what
 * went wrong. */
static const char *broker_read(Model *m, int i) {
        MThread *t = &m->th[i];
        int status = t->state == M_DEAD ? 0 /* exited, 0 */ : t->status;
        TraceeStep s = tracee_step(&m->st, &t->mark, false, status);

        if (s.event == PN_EVENT_STOP) {
                if (!t->trap_in_stop)
                        return "stop told from a trap outside any group-stop";
                if (t->trap_episode <= m->told_episode)
                        return "stop told from a group-stop told before, or older";
                m->told |= 1u << t->trap_episode;
                m->told_episode = t->trap_episode;
        } else if (s.event == PN_EVENT_CONTINUE) {
                if (t->trap_in_stop)
                        return "continue told from a trap inside a group-stop";
                if (t->trap_episode < m->told_episode)
                        return "continue told from a trap older than the told group-stop";
        }
        if (t->state == M_DEAD) {
                if (!s.gone)
                        return "an exit not taken as gone";
                t->reported = false;
                return NULL;
        }
        switch (s.op) {
        case TRACEE_OP_CONT:
                t->state = M_RUN;
                t->deliver_stop = s.signal == SIGSTOP;
                if (s.signal != 0 && s.signal != SIGSTOP)
                        return "an unexpected signal delivered";
                break;
        case TRACEE_OP_LISTEN:
                if (((t->status >> 16) & 0xff) != PTRACE_EVENT_STOP)
                        return "PTRACE_LISTEN outside a group-stop trap";
                t->state = t->trap_notify ? M_RUN : M_LISTEN;
                break;
        default:
                return "a trap left without PTRACE_CONT or PTRACE_LISTEN";
        }
        if (s.probe) {
                t->trap_stop = true;
                if (t->state == M_LISTEN)
                        t->state = M_RUN;
        }
        return NULL;
}

/* --- exploration --- */

static uint64_t model_hash(const Model *m) {
        const unsigned char *p = (const unsigned char *) m;
        uint64_t h = 1469598103934665603ull;
        for (size_t i = 0; i < sizeof(*m); i++)
                h = (h ^ p[i]) * 1099511628211ull;
        return h ? h : 1;
}

/* true if m was seen before (else it is remembered now) */
static bool seen(Explorer *x, const Model *m) {
        uint64_t h = model_hash(m);
        size_t i;

        if (x->n_seen * 2 >= x->seen_cap) {
                size_t cap = x->seen_cap ? x->seen_cap * 2 : 1 << 16;
                uint64_t *n = calloc(cap, sizeof(*n));
                assert_non_null(n);
                for (size_t k = 0; k < x->seen_cap; k++)
                        if (x->seen[k]) {
                                for (i = x->seen[k] & (cap - 1); n[i]; i = (i + 1) & (cap - 1))
                                        ;
                                n[i] = x->seen[k];
                        }
                free(x->seen);
                x->seen = n;
                x->seen_cap = cap;
        }
        for (i = h & (x->seen_cap - 1); x->seen[i]; i = (i + 1) & (x->seen_cap - 1))
                if (x->seen[i] == h)
                        return true;
        x->seen[i] = h;
        x->n_seen++;
        return false;
}

static void report(Explorer *x, int depth, const char *what) {
        print_message("interleaving (%s):\n", x->polite ? "polite driver" : "free driver");
        for (int d = 0; d < depth; d++)
                print_message("  %2d %s\n", d, x->names[d]);
        fail_msg("%s", what);
}

static void name(Explorer *x, int depth, const char *fmt, int i, const Model *m) {
        const MThread *t = &m->th[i];
        int sig = WSTOPSIG(t->status), ev = (t->status >> 16) & 0xff;
        if (strcmp(fmt, "read") == 0 && t->state != M_DEAD)
                snprintf(x->names[depth], sizeof(x->names[depth]), "broker reads %d: %s%s", i,
                         sig == SIGSTOP ? "SIGSTOP" : "SIGTRAP",
                         ev == PTRACE_EVENT_STOP ? " EVENT_STOP" : ev == PTRACE_EVENT_EXEC ? " EVENT_EXEC" : "");
        else
                snprintf(x->names[depth], sizeof(x->names[depth]), "%s %d", fmt, i);
}

static void check_quiescent(Explorer *x, const Model *m, int depth) {
        for (int i = 0; i < MAX_THREADS; i++)
                if (can_step(m, i) || can_read(m, i) || can_exec_finish(m, i))
                        return;
        x->quiescent++;
        if (m->st.stopped != in_stop(m))
                report(x, depth, m->st.stopped ? "told stopped, but the process runs"
                                               : "told running, but the process is group-stopped");
        if (x->polite && (m->completed & ~m->told))
                report(x, depth, "a group-stop the real parent saw was not told");
}

/* A stop signal is queued, or on its way to start a group-stop. */
static bool stop_coming(const Model *m) {
        if (m->sigstop_queued)
                return true;
        for (int i = 0; i < MAX_THREADS; i++)
                if (m->th[i].dequeued)
                        return true;
        return false;
}

static void explore(Explorer *x, const Model *m, int depth) {
        Model n;
        const char *err;

        x->steps++;
        check_quiescent(x, m, depth);
        assert_true(depth < MAX_DEPTH);

#define TRY(cond, label, i, action)                                   \
        if (cond) {                                                   \
                memcpy(&n, m, sizeof(n));                             \
                name(x, depth, label, i, m);                          \
                err = NULL;                                           \
                action;                                               \
                if (err)                                              \
                        report(x, depth + 1, err);                    \
                if (!seen(x, &n))                                     \
                        explore(x, &n, depth + 1);                    \
        }

        bool polite_stop = !x->polite || (!m->st.stopped && !in_stop(m) && !stop_coming(m));
        bool polite_cont = !x->polite || (m->st.stopped && m->stop_stopped);
        TRY(m->stops_left > 0 && polite_stop, "kill SIGSTOP", 0, kill_sigstop(&n));
        TRY(m->conts_left > 0 && polite_cont, "kill SIGCONT", 0, kill_sigcont(&n));
        for (int i = 0; i < MAX_THREADS; i++) {
                TRY(can_step(m, i), "runs", i, step(&n, i));
                TRY(can_read(m, i), "read", i, err = broker_read(&n, i));
                TRY(can_exec(m, i), "execs", i, exec_start(&n, i));
                TRY(can_exec_finish(m, i), "exec done", i, exec_finish(&n, i));
                TRY(can_exit(m, i), "exits", i, thread_exit(&n, i));
        }
#undef TRY
}

static void run(bool polite, int threads, int stops, int conts, int execs, int exits) {
        Explorer x = { .polite = polite };
        Model m;

        memset(&m, 0, sizeof(m));
        for (int i = 0; i < MAX_THREADS; i++) {
                m.th[i].state = i < threads ? M_RUN : M_DEAD;
                m.th[i].mark = tracee_mark_seized(&m.st);
        }
        m.stops_left = stops;
        m.conts_left = conts;
        m.execs_left = execs;
        m.exits_left = exits;
        seen(&x, &m);
        explore(&x, &m, 0);
        print_message("%s, %d threads, %d SIGSTOP, %d SIGCONT, %d exec, %d exit: %zu states, "
                      "%lu quiescent\n", polite ? "polite" : "free", threads, stops, conts, execs,
                      exits, x.n_seen, x.quiescent);
        assert_true(x.quiescent > 0);
        free(x.seen);
}

/* As watch threads_stop_once: stop, continue, stop, continue. */
static void test_polite_stops(void **state) {
        (void) state;
        run(true, 3, 3, 3, 0, 0);
}

/* As watch exec_while_stopping: an exec racing with the stops. */
static void test_polite_stops_and_exec(void **state) {
        (void) state;
        run(true, 3, 2, 2, 1, 0);
}

/* Signals at any moment, an exec, a thread exit. */
static void test_free_driver(void **state) {
        (void) state;
        run(false, 3, 2, 2, 1, 1);
        run(false, 2, 3, 3, 1, 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_polite_stops),
                cmocka_unit_test(test_polite_stops_and_exec),
                cmocka_unit_test(test_free_driver),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
