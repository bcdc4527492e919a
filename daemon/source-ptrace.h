/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Tracee: group-stop and continue of one process, seen through ptrace
 * without changing how it behaves. Every thread is attached with
 * PTRACE_SEIZE (PTRACE_O_TRACECLONE attaches new ones), and every stop is
 * answered so that the process acts as if untraced:
 *
 *   signal-delivery-stop        PTRACE_CONT with that signal (re-injected)
 *   group-stop (PTRACE_EVENT_STOP, a stop signal)
 *                               "stop" once per group-stop (the rule below),
 *                               then PTRACE_LISTEN:
 *                               the thread stays stopped, the real parent's
 *                               waitpid(WUNTRACED) sees the stop, and SIGCONT
 *                               wakes it
 *   PTRACE_EVENT_STOP, SIGTRAP  (after SIGCONT) "continue" once, PTRACE_CONT
 *   PTRACE_EVENT_CLONE          the new thread is traced too, PTRACE_CONT
 *   PTRACE_EVENT_EXEC           every other thread is forgotten (the exec
 *                               ended them; a non-leader that exec'd now has
 *                               the leader's tid); "continue" if a stop was
 *                               reported (the exec undid that group-stop);
 *                               PTRACE_CONT
 *
 * Detaching (unwatch, the watcher's disconnect, the broker's shutdown)
 * interrupts every thread and detaches it from the ptrace-stop that follows,
 * re-injecting a signal that was being delivered; a group-stopped process
 * stays stopped. If the broker dies, the kernel detaches the same way.
 *
 * Wait statuses come from the broker's Reaper (one collector for all), each
 * thread registered by tid. The decisions are the pure tracee_step(), unit
 * tested; this file does the ptrace calls.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "procnotify/event.h"
#include "reaper.h"

typedef struct Tracee Tracee;

typedef struct TraceeCallbacks {
        /* The process entered group-stop (signal: the stopping signal), or
         * left it. */
        void (*on_stop)(Tracee *t, int signal, void *userdata);
        void (*on_continue)(Tracee *t, void *userdata);
        /* Every thread is detached or gone: the tracee may be freed (also
         * from within this callback). */
        void (*on_released)(Tracee *t, void *userdata);
} TraceeCallbacks;

/* tracee_new()'s expected refusals: the caller tells them apart. */
enum {
        TRACEE_E_TRACED = 1,        /* already traced (by someone else), or a child of the broker */
        TRACEE_E_GONE,              /* the process has exited */
        TRACEE_E_TOO_MANY_THREADS,  /* it has more than max_threads threads */
        TRACEE_E_UNSETTLED,         /* it kept making threads faster than they could be seized */
};

/*
 * Seize every thread of the process tgid (which the caller holds a pidfd
 * for and has checked). Returns 0, a TRACEE_E_* refusal, or a negative
 * errno (-EPERM: the kernel refused to trace it; -ENOMEM). Unless 0, *ret
 * is NULL, or (threads were seized that cannot be let go at once) a tracee
 * already detaching, to be kept until on_released.
 */
int tracee_new(Tracee **ret, Reaper *reaper, pid_t tgid, size_t max_threads,
               const TraceeCallbacks *cb, void *userdata);
/* Unregister from the reaper and free. Threads still attached are left to
 * the kernel (it detaches them when the broker exits); use tracee_detach()
 * first. */
Tracee *tracee_free(Tracee *t);

/* Start detaching; on_released follows when it is done (at once if nothing
 * is attached any more). */
void tracee_detach(Tracee *t);

/* A wait status of a tid nobody registered: a thread of this tracee whose
 * first stop came before its parent's PTRACE_EVENT_CLONE, or a non-leader
 * that exec'd and now has the tid of a leader the tracee let go of already?
 * Then take it and return true. */
bool tracee_claim(Tracee *t, pid_t tid, int status);

/* The process exec'd (the connector says so, after any PTRACE_EVENT_EXEC
 * was handled): forget the threads that are not traced by the broker any
 * more. While detaching, a non-leader let go of already can exec; the
 * leader, still attached, then vanishes with no wait status, and the
 * exec'ing thread reports nothing either. */
void tracee_exec_seen(Tracee *t);

pid_t tracee_get_pid(const Tracee *t);
size_t tracee_get_n_threads(const Tracee *t);
bool tracee_is_stopped(const Tracee *t);
bool tracee_is_detaching(const Tracee *t);

/* --- the pure part --- */

typedef enum TraceeOp {
        TRACEE_OP_NONE,   /* nothing to do for this thread */
        TRACEE_OP_CONT,   /* PTRACE_CONT with signal */
        TRACEE_OP_LISTEN, /* PTRACE_LISTEN */
        TRACEE_OP_DETACH, /* PTRACE_DETACH with signal */
} TraceeOp;

typedef struct TraceeStep {
        TraceeOp op;
        int signal;         /* for CONT and DETACH: the signal to deliver, or 0 */
        bool clone;         /* a new thread: PTRACE_GETEVENTMSG names it */
        bool exec;          /* PTRACE_EVENT_EXEC: every other thread is gone */
        bool gone;          /* the thread ended */
        bool probe;         /* after the op, PTRACE_INTERRUPT: trap again, fresh */
        PnEventType event;  /* PN_EVENT_STOP, PN_EVENT_CONTINUE, or _PN_EVENT_TYPE_INVALID */
        int event_signal;   /* for PN_EVENT_STOP */
} TraceeStep;

/*
 * The group-stop rule (issue 13). Ptrace shows a group-stop only through
 * the PTRACE_EVENT_STOP traps of single threads, and each trap describes
 * the process as it was when that thread trapped: the stop signal if a
 * group-stop was under way or complete (group_stop_count > 0 or
 * SIGNAL_STOP_STOPPED), SIGTRAP if not (do_jobctl_trap()). The broker reads
 * the traps later, in any order across threads, so a trap can predate what
 * was told already. Hence:
 *
 *   - An epoch T counts what was told: it is bumped by every stop and every
 *     continue told, and by every exec.
 *   - Each thread remembers how the broker last let it go (never: seized or
 *     new; CONT; LISTEN) and the T of that moment. Its next trap happened
 *     after that moment; if T is still the same, after everything told so
 *     far: it is news. If T moved on, the trap may be older than what was
 *     told, and is judged stale: the thread is let go again (at the new T),
 *     and a change it saw is seen again, by this thread or another.
 *   - A stop is told if the process is not told stopped and the trapping
 *     thread's epoch is T.
 *   - A continue is told if the process is told stopped and the thread that
 *     woke (PTRACE_EVENT_STOP with SIGTRAP) was let go by LISTEN at T: it sat
 *     in the told group-stop, and SIGCONT (or the end of the stop) woke it.
 *     A SIGTRAP of a thread let go by CONT is no continue: a new thread's
 *     first stop, or the wake of a SIGCONT told already.
 *   - PTRACE_EVENT_EXEC: the exec ended every other thread and cleared the
 *     group-stop (zap_other_threads()); a process told stopped is told
 *     continued, and T is bumped in any case.
 *   - A stale trap that shows a group-stop while none is told is probed:
 *     the thread is left listening and interrupted (PTRACE_INTERRUPT), so
 *     that it traps again at once, at the new T, with the state of now.
 *     Without it a stop could go untold: a thread that was woken by a
 *     SIGCONT and trapped for the next group-stop before the broker saw
 *     the wake has a stale epoch, and if the thread that told the continue
 *     has ended meanwhile, no thread of the process reports with epoch T.
 *     (Nothing of the kind is needed for a continue: the thread that told
 *     the stop is left listening and only SIGCONT, SIGKILL or an exec ends
 *     that.) The interrupt re-traps a listening thread without touching the
 *     group-stop, and costs nothing in the usual stale case, a trap queued
 *     before a SIGCONT, which the kernel makes trap again anyway.
 *   - A new thread (PTRACE_EVENT_CLONE) takes the epoch its parent was let
 *     go at before the clone: its first trap is no newer than that. A
 *     thread whose first stop comes before its parent's clone event is
 *     taken as stale.
 *
 * Why the told sequence is right: a stop is only told from a trap that saw
 * a group-stop after the last continue was told, a continue only from a
 * trap that saw none after the last stop was told, so the two alternate and
 * each follows a real change. None is missed: the thread that told the last
 * change is let go at the new T, and sees the next change (it traps for
 * every group-stop, and, left listening, SIGCONT wakes it); a thread judged
 * stale is let go at T and, probed if need be, traps again with what is
 * current. What ptrace cannot show is not told: a SIGCONT and a new stop
 * signal both between two traps of every thread read as one group-stop.
 */
typedef enum TraceeRelease {
        TRACEE_RELEASED_NEVER,  /* seized, or new: not let go by the broker yet */
        TRACEE_RELEASED_CONT,   /* PTRACE_CONT */
        TRACEE_RELEASED_LISTEN, /* PTRACE_LISTEN: left in the group-stop */
} TraceeRelease;

/* What tracee_step() remembers of the process... */
typedef struct TraceeState {
        bool stopped;   /* in group-stop, as told */
        unsigned epoch; /* T: stops and continues told, and execs */
} TraceeState;

/* ...and of each thread: how and when it was last let go. */
typedef struct TraceeMark {
        TraceeRelease how;
        unsigned epoch; /* TraceeState.epoch at that moment */
} TraceeMark;

/* The mark of a thread seized now. */
TraceeMark tracee_mark_seized(const TraceeState *st);
/* The mark of a thread made by a thread whose mark, before its
 * PTRACE_EVENT_CLONE was handled, was parent. */
TraceeMark tracee_mark_cloned(TraceeMark parent);
/* The mark of a thread whose parent is not known (its first stop came
 * before the clone event): stale, its first report tells nothing. */
TraceeMark tracee_mark_unknown(const TraceeState *st);

/*
 * What to do with a thread's raw wait status (as from waitpid with __WALL,
 * ptrace event bits in status >> 16), by the rule above. *st is the
 * process's state, *mark the thread's; both are updated (the mark to how
 * the thread is let go now). detaching: every stop detaches.
 */
TraceeStep tracee_step(TraceeState *st, TraceeMark *mark, bool detaching, int status);
