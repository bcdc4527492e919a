/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Tracee implementation; see source-ptrace.h.
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

typedef struct TraceeThread {
        pid_t tid;
        bool done;      /* detached or gone: no longer ours */
        unsigned gen;   /* TraceeState.gen when last resumed */
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

TraceeStep tracee_step(TraceeState *st, unsigned *thread_gen, bool detaching, int status) {
        TraceeStep s = { .op = TRACEE_OP_NONE, .event = _PN_EVENT_TYPE_INVALID };
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
                        /* Group-stop: every thread reports it, the first
                         * one tells, unless its trap predates the last
                         * continue. LISTEN keeps it stopped like an
                         * untraced process, where SIGCONT can wake it. */
                        if (!st->stopped && *thread_gen == st->gen) {
                                st->stopped = true;
                                s.event = PN_EVENT_STOP;
                                s.event_signal = sig;
                        }
                        s.op = TRACEE_OP_LISTEN;
                } else {
                        /* SIGTRAP: woken from LISTEN by SIGCONT (or the first
                         * stop of a new thread). */
                        if (st->stopped) {
                                st->stopped = false;
                                st->gen++;
                                s.event = PN_EVENT_CONTINUE;
                        }
                        s.op = TRACEE_OP_CONT;
                }
                break;
        default:
                /* PTRACE_EVENT_CLONE, and events we did not ask for. */
                s.op = TRACEE_OP_CONT;
                break;
        }
        if (s.op == TRACEE_OP_CONT)
                *thread_gen = st->gen;
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

/* Track tid (attached already) and route its statuses here. */
static int tracee_add_thread(Tracee *t, pid_t tid) {
        TraceeThread *th = tracee_find_thread(t, tid);
        int r;

        if (th && !th->done)
                return 0;
        if (!th && t->n_threads == t->cap_threads) {
                size_t cap = t->cap_threads ? t->cap_threads * 2 : 8;
                TraceeThread *p = realloc(t->threads, cap * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                t->threads = p;
                t->cap_threads = cap;
        }
        r = reaper_watch_add_tracee(t->reaper, tid, tracee_on_status, t);
        if (r < 0)
                return r;
        if (!th)
                th = &t->threads[t->n_threads++];
        *th = (TraceeThread){ .tid = tid, .gen = t->state.gen };
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

/* A thread created by a traced one: attached by the kernel already. */
static void tracee_adopt_thread(Tracee *t, pid_t tid) {
        if (tracee_add_thread(t, tid) < 0) {
                /* Cannot follow it: let it go rather than leave it stopped. */
                (void) ptrace(PTRACE_DETACH, tid, NULL, NULL);
                return;
        }
        if (t->detaching)
                (void) ptrace(PTRACE_INTERRUPT, tid, NULL, NULL);
}

static void tracee_handle(Tracee *t, TraceeThread *th, int status) {
        TraceeStep s = tracee_step(&t->state, &th->gen, t->detaching, status);
        pid_t tid = th->tid;
        long r = 0;

        if (s.clone) {
                unsigned long msg = 0;
                if (ptrace(PTRACE_GETEVENTMSG, tid, NULL, &msg) == 0 && msg > 0)
                        tracee_adopt_thread(t, (pid_t) msg);
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
        TraceeThread *th;

        if (t->released || !WIFSTOPPED(status) || tracee_find_thread(t, tid))
                return false;
        /* Ours if it is a thread of this process that we trace: the kernel
         * attached it (TRACECLONE) and its parent's event is still queued. */
        if (read_tracer_pid(t->tgid, tid) != getpid())
                return false;
        if (tracee_add_thread(t, tid) < 0) {
                (void) ptrace(PTRACE_DETACH, tid, NULL, NULL);
                return true;
        }
        th = tracee_find_thread(t, tid);
        tracee_handle(t, th, status);
        return true;
}

/* One pass over /proc/tgid/task: seize what is not seized yet. Returns how
 * many were added, or -errno. */
static int tracee_seize_pass(Tracee *t, size_t max_threads) {
        char path[64];
        struct dirent *de;
        int added = 0, r = 0;
        DIR *d;

        snprintf(path, sizeof(path), "/proc/%d/task", (int) t->tgid);
        d = opendir(path);
        if (!d)
                return errno == ENOENT ? -ESRCH : -errno;
        while ((de = readdir(d))) {
                pid_t tid = (pid_t) strtol(de->d_name, NULL, 10);
                if (tid <= 0 || tracee_find_thread(t, tid))
                        continue;
                if (t->n_threads >= max_threads) {
                        r = -E2BIG;
                        break;
                }
                if (ptrace(PTRACE_SEIZE, tid, NULL, (void *) (long) PTRACE_O_TRACECLONE) < 0) {
                        int k = -errno, tracer = k == -EPERM ? read_tracer_pid(t->tgid, tid) : 0;
                        if (k == -ESRCH && tid != t->tgid)
                                continue; /* that thread ended */
                        /* EPERM for a thread already ours (attached through
                         * TRACECLONE since the pass began) is no refusal. */
                        if (tracer != getpid() || tid == t->tgid) {
                                r = tracer > 0 ? -EBUSY : k;
                                break;
                        }
                }
                r = tracee_add_thread(t, tid);
                if (r == -EEXIST)
                        r = -EBUSY; /* the reaper has it: a child of the broker */
                if (r < 0) {
                        (void) ptrace(PTRACE_DETACH, tid, NULL, NULL);
                        break;
                }
                added++;
        }
        closedir(d);
        return r < 0 ? r : added;
}

int tracee_new(Tracee **ret, Reaper *reaper, pid_t tgid, size_t max_threads,
               const TraceeCallbacks *cb, void *userdata) {
        Tracee *t;
        int r;

        *ret = NULL;
        r = read_tracer_pid(tgid, tgid);
        if (r < 0)
                return r;
        if (r > 0)
                return -EBUSY;
        /* The broker's own child (a supervised one, an adopted orphan): its
         * wait statuses belong to whoever waits for it as a child. */
        if (read_status_pid(tgid, tgid, "PPid") == getpid())
                return -EBUSY;
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->tgid = tgid;
        t->reaper = reaper;
        t->cb = *cb;
        t->userdata = userdata;
        for (int pass = 0; pass < SEIZE_PASSES; pass++) {
                r = tracee_seize_pass(t, max_threads);
                if (r <= 0)
                        break;
        }
        if (r > 0)
                r = -EAGAIN; /* still new threads after every pass: give up */
        if (r < 0) {
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
