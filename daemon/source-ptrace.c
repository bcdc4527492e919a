/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Tracee: one stop-watched process under PTRACE_SEIZE, its group-stops and
 * continues by the epoch rule; see source-ptrace.h.
 *
 * Seizing races with the process creating threads: /proc/PID/task is listed
 * again until a pass finds no thread left to seize (threads made by a
 * seized thread are attached by the kernel, PTRACE_O_TRACECLONE). A thread
 * that reports its first stop before its parent's PTRACE_EVENT_CLONE reaches
 * the reaper unclaimed; the broker hands it to tracee_claim().
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/macro.h"
#include "source-ptrace.h"

#define SEIZE_PASSES 16

/*
 * TRACECLONE: new threads are attached by the kernel. TRACEEXEC: an exec
 * stops in PTRACE_EVENT_EXEC, the only place that tells which threads the
 * exec ended (tracee_exec()).
 *
 * Not PTRACE_O_TRACEEXIT: every thread would stop on its way out
 * (PTRACE_EVENT_EXIT) until the broker resumes it, so every thread exit,
 * the process's exit and a multi-threaded exec (which waits for the other
 * threads to be gone) would wait for the broker's event loop: slower under
 * load, and held for as long as the broker is stopped or stuck. It would
 * tell nothing the broker lacks: the exit status comes from the pidfd and
 * the connector, a non-leader thread's end from its wait status (the
 * broker, as its tracer, reaps it), the leader's with the process, and the
 * threads an exec ends from PTRACE_EVENT_EXEC.
 */
#define TRACEE_OPTIONS (PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC)

typedef struct TraceeThread {
        pid_t tid;
        bool done;      /* detached or gone: no longer ours */
        bool foreign;   /* a process of its own: detach at its first stop */
        TraceeMark mark; /* how and when the broker last let it go */
} TraceeThread;

struct Tracee {
        pid_t tgid;
        Reaper *reaper;
        TraceeThread *threads;
        size_t n_threads, cap_threads;
        size_t n_live;  /* threads not done */
        TraceeState state;
        bool detaching;
        bool released;
        TraceeCallbacks cb;
        void *userdata;
};

static bool is_stop_signal(int sig) {
        return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

/* The rule is told in source-ptrace.h, above TraceeState. */

TraceeMark tracee_mark_seized(const TraceeState *st) {
        return (TraceeMark){ .how = TRACEE_RELEASED_NEVER, .epoch = st->epoch };
}

TraceeMark tracee_mark_cloned(TraceeMark parent) {
        return (TraceeMark){ .how = TRACEE_RELEASED_NEVER, .epoch = parent.epoch };
}

TraceeMark tracee_mark_unknown(const TraceeState *st) {
        return (TraceeMark){ .how = TRACEE_RELEASED_NEVER, .epoch = st->epoch - 1 };
}

static void tracee_tell(TraceeState *st, TraceeStep *s, PnEventType event, int signal) {
        st->stopped = event == PN_EVENT_STOP;
        st->epoch++;
        s->event = event;
        s->event_signal = signal;
}

TraceeStep tracee_step(TraceeState *st, TraceeMark *mark, bool detaching, int status) {
        TraceeStep s = { .op = TRACEE_OP_NONE, .event = _PN_EVENT_TYPE_INVALID };
        bool fresh = mark->epoch == st->epoch;
        int sig, event;

        if (WIFEXITED(status) || WIFSIGNALED(status)) {
                s.gone = true;
                return s;
        }
        if (!WIFSTOPPED(status))
                return s; /* WIFCONTINUED is for the real parent, not for tracers */
        sig = WSTOPSIG(status);
        event = (status >> 16) & 0xff;
        s.clone = event == PTRACE_EVENT_CLONE;
        s.exec = event == PTRACE_EVENT_EXEC;
        if (detaching) {
                /* Any ptrace-stop will do; a signal being delivered goes on
                 * to the process. */
                s.op = TRACEE_OP_DETACH;
                s.signal = event == 0 ? sig : 0;
                return s;
        }
        switch (event) {
        case 0:
                /* Signal-delivery-stop: deliver it, as if untraced. A stop
                 * signal then starts a group-stop. */
                s.op = TRACEE_OP_CONT;
                s.signal = sig;
                break;
        case PTRACE_EVENT_STOP:
                if (is_stop_signal(sig)) {
                        /* In a group-stop when it trapped. LISTEN keeps it
                         * stopped like an untraced process, where SIGCONT
                         * can wake it. */
                        if (!st->stopped && fresh)
                                tracee_tell(st, &s, PN_EVENT_STOP, sig);
                        else if (!st->stopped)
                                s.probe = true;
                        s.op = TRACEE_OP_LISTEN;
                } else {
                        /* SIGTRAP: no group-stop when it trapped. Woken from
                         * LISTEN by SIGCONT, or the first stop of a new
                         * thread, or an interrupt. */
                        if (st->stopped && fresh && mark->how == TRACEE_RELEASED_LISTEN)
                                tracee_tell(st, &s, PN_EVENT_CONTINUE, 0);
                        s.op = TRACEE_OP_CONT;
                }
                break;
        case PTRACE_EVENT_EXEC:
                /* The exec ended every other thread and cleared the
                 * group-stop, and this thread was not stopped: a group-stop
                 * that some threads had entered (and that was told) is
                 * undone, and the real parent never saw it complete. The
                 * process runs: say so. Whatever any thread reported before
                 * is past. */
                if (st->stopped)
                        tracee_tell(st, &s, PN_EVENT_CONTINUE, 0);
                else
                        st->epoch++;
                s.op = TRACEE_OP_CONT;
                break;
        default:
                /* PTRACE_EVENT_CLONE, and events we did not ask for. */
                s.op = TRACEE_OP_CONT;
                break;
        }
        if (s.op == TRACEE_OP_CONT)
                *mark = (TraceeMark){ .how = TRACEE_RELEASED_CONT, .epoch = st->epoch };
        else if (s.op == TRACEE_OP_LISTEN)
                *mark = (TraceeMark){ .how = TRACEE_RELEASED_LISTEN, .epoch = st->epoch };
        return s;
}

/* --- threads --- */

static TraceeThread *tracee_find_thread(Tracee *t, pid_t tid) {
        for (size_t i = 0; i < t->n_threads; i++)
                if (t->threads[i].tid == tid)
                        return &t->threads[i];
        return NULL;
}

static void tracee_on_status(pid_t tid, int status, void *userdata);

/* Track tid (attached already) and route its statuses here. Returns 0,
 * REAPER_E_TAKEN (another owner routes its statuses: a child of the
 * broker), or -ENOMEM. The slot of a
 * thread that is done is reused, so that the array is as long as the most
 * threads the process had at once, not as every thread it ever made. */
static int tracee_add_thread(Tracee *t, pid_t tid, TraceeMark mark) {
        TraceeThread *th = tracee_find_thread(t, tid);
        int r;

        if (th && !th->done)
                return 0;
        for (size_t i = 0; !th && i < t->n_threads; i++)
                if (t->threads[i].done)
                        th = &t->threads[i];
        if (!th && t->n_threads == t->cap_threads) {
                size_t cap = t->cap_threads ? t->cap_threads * 2 : 8;
                TraceeThread *p = realloc(t->threads, cap * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                t->threads = p;
                t->cap_threads = cap;
        }
        r = reaper_watch_add_tracee(t->reaper, tid, tracee_on_status, t);
        if (r != 0)
                return r;
        if (!th)
                th = &t->threads[t->n_threads++];
        *th = (TraceeThread){ .tid = tid, .mark = mark };
        t->n_live++;
        return 0;
}

static void tracee_thread_done(Tracee *t, TraceeThread *th) {
        if (th->done)
                return;
        th->done = true;
        t->n_live--;
        reaper_watch_remove(t->reaper, th->tid);
}

static void tracee_check_released(Tracee *t) {
        if (t->n_live > 0 || t->released)
                return;
        t->released = true;
        if (t->cb.on_released)
                t->cb.on_released(t, t->userdata);
}

static int read_tracer_pid(pid_t tgid, pid_t tid);

/* A thread created by a traced one, whose mark was parent before its clone
 * event: attached by the kernel already. */
static void tracee_adopt_thread(Tracee *t, pid_t tid, TraceeMark parent) {
        char path[64];

        snprintf(path, sizeof(path), "/proc/%d/task/%d", (int) t->tgid, (int) tid);
        if (access(path, F_OK) < 0) {
                /* Not a thread of ours: clone() without CLONE_THREAD and an
                 * exit signal other than SIGCHLD is a "clone" to ptrace
                 * too, a process of its own (or a thread that ended and was
                 * reaped already). Let it go: now if it is in its first
                 * stop, else at that stop. */
                TraceeThread *th;
                if (read_tracer_pid(tid, tid) != getpid() ||
                    ptrace(PTRACE_DETACH, tid, NULL, NULL) == 0 ||
                    tracee_add_thread(t, tid, tracee_mark_cloned(parent)) != 0)
                        return;
                th = tracee_find_thread(t, tid);
                th->foreign = true;
                return;
        }
        /* Its first stop may have come before this event and been claimed
         * (tracee_claim()) and, while detaching, let go already: then it is
         * not ours any more, and an entry for it would wait for a status
         * that never comes. */
        if (read_tracer_pid(t->tgid, tid) != getpid())
                return;
        if (tracee_add_thread(t, tid, tracee_mark_cloned(parent)) != 0) {
                /* Cannot follow it: let it go rather than leave it stopped. */
                (void) ptrace(PTRACE_DETACH, tid, NULL, NULL);
                return;
        }
        if (t->detaching && ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) < 0 && errno == ESRCH)
                tracee_thread_done(t, tracee_find_thread(t, tid));
}

/*
 * PTRACE_EVENT_EXEC of th (reported under the thread group id, whichever
 * thread exec'd): the kernel has ended every other thread, and a non-leader
 * that exec'd took over the leader's tid. Its former tid (the event message)
 * and the old leader leave no wait status (de_thread() releases the old
 * leader silently), and the others' exits were collected already (the exec
 * waits for their release, which for traced threads is the broker's
 * waitpid): every entry but th is done. An exit of one of them still to
 * come goes to the reaper's fallback, which drops it.
 */
static void tracee_exec(Tracee *t, TraceeThread *th) {
        for (size_t i = 0; i < t->n_threads; i++)
                if (&t->threads[i] != th)
                        tracee_thread_done(t, &t->threads[i]);
}

static void tracee_handle(Tracee *t, TraceeThread *th, int status) {
        TraceeMark before = th->mark;
        TraceeStep s = tracee_step(&t->state, &th->mark, t->detaching || th->foreign, status);
        pid_t tid = th->tid;
        long r = 0;

        if (s.exec && !th->foreign)
                tracee_exec(t, th);
        if (s.clone) {
                unsigned long msg = 0;
                if (ptrace(PTRACE_GETEVENTMSG, tid, NULL, &msg) == 0 && msg > 0)
                        tracee_adopt_thread(t, (pid_t) msg, before);
                th = tracee_find_thread(t, tid); /* the array may have moved */
        }
        switch (s.op) {
        case TRACEE_OP_CONT:
                r = ptrace(PTRACE_CONT, tid, NULL, (void *) (long) s.signal);
                break;
        case TRACEE_OP_LISTEN:
                r = ptrace(PTRACE_LISTEN, tid, NULL, NULL);
                break;
        case TRACEE_OP_DETACH:
                (void) ptrace(PTRACE_DETACH, tid, NULL, (void *) (long) s.signal);
                tracee_thread_done(t, th);
                break;
        case TRACEE_OP_NONE:
                break;
        }
        /* Trap again at once, with the process as it is now (the rule in
         * source-ptrace.h). */
        if (s.probe && r == 0)
                r = ptrace(PTRACE_INTERRUPT, tid, NULL, NULL);
        /* ESRCH: killed meanwhile (SIGKILL needs no tracer); its exit follows. */
        (void) r;
        if (s.gone)
                tracee_thread_done(t, th);
        if (s.event == PN_EVENT_STOP && t->cb.on_stop)
                t->cb.on_stop(t, s.event_signal, t->userdata);
        else if (s.event == PN_EVENT_CONTINUE && t->cb.on_continue)
                t->cb.on_continue(t, t->userdata);
        tracee_check_released(t);
}

static void tracee_on_status(pid_t tid, int status, void *userdata) {
        Tracee *t = userdata;
        TraceeThread *th = tracee_find_thread(t, tid);

        if (th && !th->done)
                tracee_handle(t, th, status);
}

/* --- /proc --- */

/* A pid field ("TracerPid", "PPid") of /proc/tgid/task/tid/status: >= 0,
 * or -errno. */
static int read_status_pid(pid_t tgid, pid_t tid, const char *key) {
        char path[64], line[256];
        size_t n = strlen(key);
        int r = -ENOENT;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int) tgid, (int) tid);
        f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? -ESRCH : -errno;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, key, n) == 0 && line[n] == ':') {
                        r = atoi(line + n + 1);
                        break;
                }
        fclose(f);
        return r;
}

static int read_tracer_pid(pid_t tgid, pid_t tid) {
        return read_status_pid(tgid, tid, "TracerPid");
}

bool tracee_claim(Tracee *t, pid_t tid, int status) {
        TraceeThread *th = tracee_find_thread(t, tid);

        if (t->released || !WIFSTOPPED(status) || (th && !th->done))
                return false;
        /* Ours if it is a thread of this process that we trace: the kernel
         * attached it (TRACECLONE) and its parent's event is still queued;
         * or a non-leader that exec'd and reports under the leader's tid,
         * which was done with already (the old leader was detached, or
         * gone, while the exec was under way). */
        if (read_tracer_pid(t->tgid, tid) != getpid())
                return false;
        if (tracee_add_thread(t, tid, tracee_mark_unknown(&t->state)) != 0) {
                (void) ptrace(PTRACE_DETACH, tid, NULL, NULL);
                return true;
        }
        th = tracee_find_thread(t, tid);
        tracee_handle(t, th, status);
        return true;
}

void tracee_exec_seen(Tracee *t) {
        for (size_t i = 0; i < t->n_threads; i++) {
                TraceeThread *th = &t->threads[i];
                /* A thread still ours is in /proc (a zombie too, until the
                 * broker reaps it) and traced by the broker; any other has
                 * no wait status to come. */
                int tracer = th->done ? 0 : read_tracer_pid(t->tgid, th->tid);
                if (!th->done && (tracer == -ESRCH || (tracer >= 0 && tracer != getpid())))
                        tracee_thread_done(t, th);
        }
        tracee_check_released(t);
}

/* One pass over /proc/tgid/task: seize what is not seized yet. Returns 0
 * with *ret_added (how many were), a TRACEE_E_* refusal, or -errno. */
static int tracee_seize_pass(Tracee *t, size_t max_threads, unsigned *ret_added) {
        char path[64];
        struct dirent *de;
        unsigned added = 0;
        int r = 0;
        DIR *d;

        *ret_added = 0;
        snprintf(path, sizeof(path), "/proc/%d/task", (int) t->tgid);
        d = opendir(path);
        if (!d)
                return errno == ENOENT ? TRACEE_E_GONE : -errno;
        while ((de = readdir(d))) {
                pid_t tid = (pid_t) strtol(de->d_name, NULL, 10);
                if (tid <= 0 || tracee_find_thread(t, tid))
                        continue;
                if (t->n_live >= max_threads) {
                        r = TRACEE_E_TOO_MANY_THREADS;
                        break;
                }
                if (ptrace(PTRACE_SEIZE, tid, NULL, (void *) (long) TRACEE_OPTIONS) < 0) {
                        int k = -errno, tracer = k == -EPERM ? read_tracer_pid(t->tgid, tid) : 0;
                        if (k == -ESRCH && tid != t->tgid)
                                continue; /* that thread ended */
                        /* EPERM for a thread already ours (attached through
                         * TRACECLONE since the pass began) is no refusal. */
                        if (tracer != getpid() || tid == t->tgid) {
                                r = tracer > 0 ? TRACEE_E_TRACED : k == -ESRCH ? TRACEE_E_GONE : k;
                                break;
                        }
                }
                r = tracee_add_thread(t, tid, tracee_mark_seized(&t->state));
                if (r == REAPER_E_TAKEN)
                        r = TRACEE_E_TRACED; /* the reaper has it: a child of the broker */
                if (r != 0) {
                        /* Best effort: the thread is in no table, so nothing
                         * else would try to let it go. */
                        (void) ptrace(PTRACE_DETACH, tid, NULL, NULL);
                        break;
                }
                added++;
        }
        closedir(d);
        *ret_added = added;
        return r;
}

int tracee_new(Tracee **ret, Reaper *reaper, pid_t tgid, size_t max_threads,
               const TraceeCallbacks *cb, void *userdata) {
        Tracee *t;
        int r;

        *ret = NULL;
        r = read_tracer_pid(tgid, tgid);
        if (r == -ESRCH)
                return TRACEE_E_GONE;
        if (r < 0)
                return r;
        if (r > 0)
                return TRACEE_E_TRACED;
        /* The broker's own child (a supervised one, an adopted orphan): its
         * wait statuses belong to whoever waits for it as a child. */
        if (read_status_pid(tgid, tgid, "PPid") == getpid())
                return TRACEE_E_TRACED;
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->tgid = tgid;
        t->reaper = reaper;
        t->cb = *cb;
        t->userdata = userdata;
        for (int pass = 0; pass < SEIZE_PASSES; pass++) {
                unsigned added;

                r = tracee_seize_pass(t, max_threads, &added);
                if (r != 0 || added == 0)
                        break;
                if (pass == SEIZE_PASSES - 1)
                        r = TRACEE_E_UNSETTLED; /* still new threads after every pass: give up */
        }
        if (r != 0) {
                /* Let go of what was seized. A seized thread that is not in
                 * a ptrace-stop cannot be detached at once: the kernel
                 * refuses (ESRCH) and it stays traced until interrupted, so
                 * go through the normal detach, then free when released. */
                for (size_t i = 0; i < t->n_threads; i++)
                        if (!t->threads[i].done &&
                            ptrace(PTRACE_DETACH, t->threads[i].tid, NULL, NULL) == 0)
                                tracee_thread_done(t, &t->threads[i]);
                if (t->n_live == 0) {
                        tracee_free(t);
                        return r;
                }
                tracee_detach(t);
                *ret = t;
                return r;
        }
        *ret = t;
        return 0;
}

void tracee_detach(Tracee *t) {
        if (!t->detaching) {
                t->detaching = true;
                for (size_t i = 0; i < t->n_threads; i++) {
                        TraceeThread *th = &t->threads[i];
                        /* ESRCH: gone, or not ours any more. */
                        if (!th->done && ptrace(PTRACE_INTERRUPT, th->tid, NULL, NULL) < 0 &&
                            errno == ESRCH)
                                tracee_thread_done(t, th);
                }
        }
        tracee_check_released(t);
}

Tracee *tracee_free(Tracee *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_threads; i++)
                if (!t->threads[i].done)
                        reaper_watch_remove(t->reaper, t->threads[i].tid);
        free(t->threads);
        free(t);
        return NULL;
}

pid_t tracee_get_pid(const Tracee *t) {
        return t->tgid;
}

size_t tracee_get_n_threads(const Tracee *t) {
        return t->n_live;
}

bool tracee_is_stopped(const Tracee *t) {
        return t->state.stopped;
}

bool tracee_is_detaching(const Tracee *t) {
        return t->detaching;
}
