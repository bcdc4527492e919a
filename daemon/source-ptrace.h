/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Tracee: group-stop and continue of one process, seen through ptrace
 * without changing how it behaves. Every thread is attached with
 * PTRACE_SEIZE (PTRACE_O_TRACECLONE attaches new ones), and every stop is
 * answered so that the process acts as if untraced:
 *
 *   signal-delivery-stop        PTRACE_CONT with that signal (re-injected)
 *   group-stop (PTRACE_EVENT_STOP, a stop signal)
 *                               "stop" once per group-stop, then PTRACE_LISTEN:
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

/*
 * Seize every thread of the process tgid (which the caller holds a pidfd
 * for and has checked). Returns 0, or: -EBUSY the process is already traced
 * (by someone else, or is a child of the broker), -EPERM the kernel refused
 * to trace it, -ESRCH it is gone, -E2BIG it has more than max_threads
 * threads, -EAGAIN it kept making threads faster than they could be seized,
 * -ENOMEM. On failure *ret is NULL, or (threads were seized that cannot be
 * let go at once) a tracee already detaching, to be kept until on_released.
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
        PnEventType event;  /* PN_EVENT_STOP, PN_EVENT_CONTINUE, or _PN_EVENT_TYPE_INVALID */
        int event_signal;   /* for PN_EVENT_STOP */
} TraceeStep;

/* What tracee_step() remembers of the process and of each thread. */
typedef struct TraceeState {
        bool stopped;   /* in group-stop, as reported so far */
        unsigned gen;   /* continues reported so far */
} TraceeState;

/*
 * What to do with a thread's raw wait status (as from waitpid with __WALL,
 * ptrace event bits in status >> 16). *st is the process's state, updated:
 * a group-stop is reported by the first of its threads, a continue
 * likewise. *thread_gen is st->gen when this thread was last resumed: a
 * group-stop trap of a thread not resumed since the last continue was
 * queued before that continue (SIGCONT came while the broker had not yet
 * handled every thread's trap) and is no new stop; the kernel makes such a
 * thread trap again at once when it is listened to. detaching: every stop
 * detaches.
 */
TraceeStep tracee_step(TraceeState *st, unsigned *thread_gen, bool detaching, int status);
