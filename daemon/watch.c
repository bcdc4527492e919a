/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * WatchTable: the watches clients asked for (pidfd and ptrace), per
 * connection; see watch.h.
 *
 * Identity: a watch is made only after the pidfd is open and /proc, read
 * after it, shows the start time the process table knows while the pidfd
 * still shows the process alive: then the pidfd, the table's entry and the
 * pid the client named are one process, and from then on only the pidfd is
 * used to tell its exit. ptrace needs thread ids; they are taken from
 * /proc/PID/task of that live process (see source-ptrace.c).
 *
 * Watches and watched processes are short lists: they are bounded per
 * connection and per user (WatchTableOptions).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/macro.h"
#include "protocol/reply.h"
#include "fdreserve.h"
#include "source-pidfd.h"
#include "source-ptrace.h"
#include "watch.h"

typedef struct WatchedProc WatchedProc;
typedef struct Watch Watch;

/* One process that one or more watches follow. */
struct WatchedProc {
        WatchTable *table;
        pid_t tgid;
        uint64_t start_time;
        PidfdWatch *pidfd;
        Tracee *tracee;      /* while a watch has "stop" */
        unsigned n_watches;
        unsigned n_stop;
        WatchedProc *next;
};

struct Watch {
        SinkOwner owner;
        PeerCreds peer;      /* the watcher's, to judge again at each exec */
        uint64_t tag;        /* of its subscription */
        bool stop;
        WatchedProc *proc;
        Watch *next;
};

/* A tracee no watch needs any more, being detached. */
typedef struct Retired {
        Tracee *tracee;
        struct Retired *next;
} Retired;

struct WatchTable {
        sd_event *event;
        Reaper *reaper;
        ProcTable *table;
        ProcReader reader;
        WatchTableOptions opt;
        WatchTableCallbacks cb;
        void *userdata;
        Watch *watches;
        WatchedProc *procs;
        Retired *retired;
        uint64_t next_tag;
        /* Stopping (watch_table_stop()): told when the last retired tracee is let go. */
        void (*on_idle)(void *userdata);
        struct {
                uint64_t made, refused, stops, continues, detached, revoked;
        } stats;
};

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static size_t watch_table_traced_threads(const WatchTable *w) {
        size_t n = 0;
        for (WatchedProc *p = w->procs; p; p = p->next)
                if (p->tracee)
                        n += tracee_get_n_threads(p->tracee);
        for (Retired *r = w->retired; r; r = r->next)
                n += tracee_get_n_threads(r->tracee);
        return n;
}

/* --- tracees --- */

static void watch_table_on_released(Tracee *t, void *userdata) {
        WatchTable *w = userdata;

        for (Retired **r = &w->retired; *r; r = &(*r)->next)
                if ((*r)->tracee == t) {
                        Retired *dead = *r;
                        *r = dead->next;
                        tracee_free(t);
                        free(dead);
                        w->stats.detached++;
                        if (!w->retired && w->on_idle)
                                w->on_idle(w->userdata);
                        return;
                }
        /* Released while still in use: every thread ended with the
         * process; the watch keeps it until the exit is published. */
}

/* Detach t in the background; it is freed when the kernel let it go. */
static void watch_table_retire(WatchTable *w, Tracee *t) {
        Retired *r;

        if (!t)
                return;
        if (tracee_get_n_threads(t) == 0) {
                /* Every thread ended with the process: nothing to detach. */
                tracee_free(t);
                w->stats.detached++;
                return;
        }
        r = calloc(1, sizeof(*r));
        if (!r) {
                /* Cannot keep track: leave it to the kernel (detached when
                 * the broker exits); stop routing its statuses. */
                tracee_free(t);
                return;
        }
        r->tracee = t;
        r->next = w->retired;
        w->retired = r;
        tracee_detach(t); /* may release, and free, it at once */
}

static void watch_proc_emit(WatchedProc *p, PnEventType type, int signal) {
        WatchTable *w = p->table;
        const ProcEntry *e = proctable_find(w->table, p->tgid);
        PnEvent ev = {
                .type = type,
                .ts_ns = now_ns(),
                .sources = PN_SOURCE_PTRACE,
                .pid = p->tgid,
                .tgid = p->tgid,
                .uid = UINT32_MAX,
        };

        if (e && (!e->start_time || e->start_time == p->start_time))
                proctable_enrich(e, &ev);
        if (type == PN_EVENT_STOP) {
                ev.stop.signal = signal;
                w->stats.stops++;
        } else
                w->stats.continues++;
        w->cb.emit(&ev, w->userdata);
}

static WatchedProc *watch_table_proc_of(WatchTable *w, const Tracee *t) {
        for (WatchedProc *p = w->procs; p; p = p->next)
                if (p->tracee == t)
                        return p;
        return NULL;
}

static void watch_proc_on_stop(Tracee *t, int signal, void *userdata) {
        WatchedProc *p = watch_table_proc_of(userdata, t);
        if (p)
                watch_proc_emit(p, PN_EVENT_STOP, signal);
}

static void watch_proc_on_continue(Tracee *t, void *userdata) {
        WatchedProc *p = watch_table_proc_of(userdata, t);
        if (p)
                watch_proc_emit(p, PN_EVENT_CONTINUE, 0);
}

/* --- watched processes --- */

static void watch_proc_free(WatchedProc *p) {
        WatchTable *w = p->table;

        for (WatchedProc **q = &w->procs; *q; q = &(*q)->next)
                if (*q == p) {
                        *q = p->next;
                        break;
                }
        proctable_watch_remove(w->table, p->tgid, p->start_time);
        watch_table_retire(w, p->tracee);
        pidfd_watch_free(p->pidfd);
        free(p);
}

static void watch_free(WatchTable *w, Watch *x) {
        WatchedProc *p = x->proc;

        for (Watch **q = &w->watches; *q; q = &(*q)->next)
                if (*q == x) {
                        *q = x->next;
                        break;
                }
        if (x->stop && --p->n_stop == 0) {
                watch_table_retire(w, p->tracee);
                p->tracee = NULL;
        }
        if (--p->n_watches == 0)
                watch_proc_free(p);
        free(x);
}

/* The exit of p was published: its watches have done their work. */
static void watch_proc_end(WatchedProc *p) {
        WatchTable *w = p->table;

        for (Watch *x = w->watches, *next; x; x = next) {
                next = x->next;
                if (x->proc != p)
                        continue;
                if (w->cb.drop_subscription)
                        w->cb.drop_subscription(w->userdata, x->owner, x->tag, p->tgid, NULL);
                watch_free(w, x); /* the last one frees p */
        }
}

static void watch_proc_on_exit(PidfdWatch *pw, int status, uint64_t ts_ns, void *userdata) {
        WatchedProc *p = userdata;
        WatchTable *w = p->table;

        (void) pw;
        /* Held by the table until the connector's report comes (or a short
         * while passed), then published once; watch_table_on_event() ends the
         * watches. GONE: the connector's report was published already. */
        if (proctable_exit_seen(w->table, p->tgid, p->start_time, PN_SOURCE_PIDFD, status, ts_ns,
                                now_ns(), w->cb.emit, w->userdata) == PROCTABLE_E_GONE)
                watch_proc_end(p);
}

/* The uid to judge a stop watch of a process by (policy.h): its own only
 * while its real, effective and saved uids are all one, as the kernel's
 * ptrace rule wants; a set-user-ID program is nobody's own. */
static uint32_t watch_trace_uid(const ProcInfo *info) {
        return info->uid == info->euid && info->uid == info->suid ? info->uid : UINT32_MAX;
}

/* p executed a program: end the stop watches whose watcher may not trace
 * what it runs now. The last one retires the tracee (detaches it). */
static void watch_proc_on_exec(WatchedProc *p) {
        WatchTable *w = p->table;
        _cleanup_(proc_info_done) ProcInfo info = { 0 };

        if (w->reader.read(w->reader.userdata, p->tgid, PROC_READ_STAT | PROC_READ_STATUS, &info) < 0 ||
            info.start_time != p->start_time)
                return; /* gone: its exit ends the watches */
        for (Watch *x = w->watches, *next; x; x = next) {
                next = x->next;
                if (x->proc != p || !x->stop ||
                    policy_may_act(&x->peer, POLICY_ACTION_WATCH_STOP, p->tgid, watch_trace_uid(&info),
                                   getpid()))
                        continue;
                if (w->cb.drop_subscription)
                        w->cb.drop_subscription(w->userdata, x->owner, x->tag, p->tgid,
                                                WATCH_ENDED_NOT_PERMITTED);
                w->stats.revoked++;
                if (p->n_watches == 1) {
                        watch_free(w, x); /* frees p */
                        return;
                }
                watch_free(w, x);
        }
}

void watch_table_on_event(WatchTable *w, const PnEvent *ev) {
        if (ev->type == PN_EVENT_EXEC) {
                /* Threads an exec took away without a word (see
                 * tracee_exec_seen()). May free a retired tracee. */
                for (WatchedProc *p = w->procs; p; p = p->next)
                        if (p->tracee && p->tgid == ev->tgid) {
                                tracee_exec_seen(p->tracee);
                                watch_proc_on_exec(p);
                                break;
                        }
                for (Retired *r = w->retired, *next; r; r = next) {
                        next = r->next;
                        if (tracee_get_pid(r->tracee) == ev->tgid)
                                tracee_exec_seen(r->tracee);
                }
                return;
        }
        if (ev->type != PN_EVENT_EXIT || ev->thread)
                return;
        for (WatchedProc *p = w->procs; p; p = p->next)
                if (p->tgid == ev->tgid) {
                        /* Only if the process has ended. The leader's end
                         * alone (a non-leader exec'ing ends it, and the
                         * connector tells it as pid = tgid; or the leader
                         * left by pthread_exit) is no end of the process;
                         * the pidfd tells the real one (it is readable by
                         * the time the connector reports a process's last
                         * thread), and watch_proc_on_exit() then ends the
                         * watches. */
                        if (!pidfd_watch_is_alive(p->pidfd))
                                watch_proc_end(p);
                        return;
                }
}

bool watch_table_claim_status(WatchTable *w, pid_t pid, int status) {
        for (WatchedProc *p = w->procs; p; p = p->next)
                if (p->tracee && tracee_claim(p->tracee, pid, status))
                        return true;
        for (Retired *r = w->retired; r; r = r->next)
                if (tracee_claim(r->tracee, pid, status))
                        return true;
        return false;
}

/* --- requests --- */

static Watch *watch_table_find(WatchTable *w, SinkOwner owner, pid_t pid) {
        for (Watch *x = w->watches; x; x = x->next)
                if (x->owner == owner && x->proc->tgid == pid)
                        return x;
        return NULL;
}

#define watch_fail(slot, code, ...) control_slot_fail(slot, REQUEST_WATCH, code, __VA_ARGS__)

/* Find or make the WatchedProc of pid, checked to be the process the
 * table knows. On failure the slot is answered and NULL returned. */
static WatchedProc *watch_table_get_proc(WatchTable *w, const PeerCreds *peer, pid_t pid, bool stop,
                                         ControlSlot *slot, ProcInfo *info) {
        _cleanup_(pidfd_watch_freep) PidfdWatch *pw = NULL;
        const ProcEntry *e;
        WatchedProc *p;
        int r;

        r = pidfd_watch_new(&pw, w->event, pid, watch_proc_on_exit, NULL);
        if (r == -ESRCH) {
                watch_fail(slot, PN_ERR_NOT_FOUND, "no process %d", (int) pid);
                return NULL;
        }
        if (r == -ENOENT) {
                watch_fail(slot, PN_ERR_NOT_FOUND,
                             "%d is a thread, not a process: watch its process "
                             "(Tgid in /proc/%d/status)",
                             (int) pid, (int) pid);
                return NULL;
        }
        if (r < 0) {
                bool fds = r == -EMFILE || r == -ENFILE;
                watch_fail(slot, fds ? PN_ERR_LIMIT_EXCEEDED : PN_ERR_INTERNAL,
                             "cannot open a pidfd for %d: %s", (int) pid, strerror(-r));
                return NULL;
        }
        if (fdreserve_refuses(pidfd_watch_get_fd(pw), peer->uid)) {
                watch_fail(slot, PN_ERR_LIMIT_EXCEEDED,
                             "the broker is short of file descriptors (the last ones are kept for root)");
                return NULL;
        }
        e = proctable_learn(w->table, pid, now_ns());
        r = w->reader.read(w->reader.userdata, pid, PROC_READ_STAT | PROC_READ_STATUS, info);
        if (r < 0 && r != -ESRCH) {
                /* Not an exit: say what failed rather than "exited". */
                watch_fail(slot, PN_ERR_INTERNAL, "cannot read /proc/%d: %s", (int) pid, strerror(-r));
                return NULL;
        }
        if (!e || r < 0 || !pidfd_watch_is_alive(pw) || info->state == 'Z' || info->state == 'X') {
                watch_fail(slot, PN_ERR_NOT_FOUND, "process %d has exited", (int) pid);
                return NULL;
        }
        if (e->start_time && e->start_time != info->start_time) {
                /* The table still has an earlier process of that pid (its
                 * exit is on its way): not the one the pidfd names. */
                watch_fail(slot, PN_ERR_NOT_FOUND,
                             "process %d has just exited and its pid was reused; try again", (int) pid);
                return NULL;
        }
        if (!policy_may_act(peer, stop ? POLICY_ACTION_WATCH_STOP : POLICY_ACTION_WATCH, pid, info->uid,
                            getpid())) {
                if (stop && (pid == 1 || pid == getpid()))
                        watch_fail(slot, PN_ERR_ACCESS_DENIED,
                                     "process %d cannot be ptrace-watched (%s)", (int) pid,
                                     pid == 1 ? "init" : "the broker itself");
                else
                        watch_fail(slot, PN_ERR_ACCESS_DENIED,
                                     "process %d is not yours to watch (uid %u)", (int) pid, info->uid);
                return NULL;
        }
        if (stop && !peer->privileged && watch_trace_uid(info) != peer->uid) {
                /* As the kernel's own rule for ptrace: the effective and
                 * saved uids must be the peer's too (not a set-user-ID
                 * program); watch_proc_on_exec() judges so again at each exec. */
                watch_fail(slot, PN_ERR_ACCESS_DENIED,
                             "process %d runs with another effective uid (%u): not yours to trace",
                             (int) pid, info->euid);
                return NULL;
        }
        for (p = w->procs; p; p = p->next)
                if (p->tgid == pid && p->start_time == info->start_time)
                        return p; /* shared; the new pidfd is not needed */
        p = calloc(1, sizeof(*p));
        if (!p) {
                watch_fail(slot, PN_ERR_INTERNAL, "out of memory watching %d", (int) pid);
                return NULL;
        }
        r = proctable_watch_add(w->table, pid, info->start_time);
        if (r != 0) {
                free(p);
                if (r == PROCTABLE_E_GONE)
                        watch_fail(slot, PN_ERR_NOT_FOUND, "process %d has exited", (int) pid);
                else
                        watch_fail(slot, PN_ERR_INTERNAL, "cannot watch %d: %s", (int) pid, strerror(-r));
                return NULL;
        }
        p->table = w;
        p->tgid = pid;
        p->start_time = info->start_time;
        p->pidfd = TAKE_PTR(pw);
        pidfd_watch_set_userdata(p->pidfd, p);
        p->next = w->procs;
        w->procs = p;
        return p;
}

enum {
        WATCH_E_REFUSED = 1, /* the request was refused, and the slot answered */
};

/* Start tracing p (first "stop" watch). Returns 0, or WATCH_E_REFUSED
 * when it cannot (the slot answered with why). */
static int watch_proc_trace(WatchedProc *p, ControlSlot *slot) {
        WatchTable *w = p->table;
        size_t used = watch_table_traced_threads(w);
        TraceeCallbacks cb = {
                .on_stop = watch_proc_on_stop,
                .on_continue = watch_proc_on_continue,
                .on_released = watch_table_on_released,
        };
        Tracee *t = NULL;
        int r;

        for (Retired *x = w->retired; x; x = x->next)
                if (tracee_get_pid(x->tracee) == p->tgid) {
                        watch_fail(slot, PN_ERR_BUSY,
                                     "process %d is still being detached from an earlier watch; "
                                     "try again",
                                     (int) p->tgid);
                        return WATCH_E_REFUSED;
                }
        if (used >= w->opt.max_traced_threads) {
                watch_fail(slot, PN_ERR_LIMIT_EXCEEDED,
                             "the broker traces %u threads already (MaxTracedThreads)",
                             w->opt.max_traced_threads);
                return WATCH_E_REFUSED;
        }
        r = tracee_new(&t, w->reaper, p->tgid, w->opt.max_traced_threads - used, &cb, w);
        if (r == 0) {
                p->tracee = t;
                return 0;
        }
        if (t) /* partly seized: it detaches in the background */
                watch_table_retire(w, t);
        switch (r) {
        case TRACEE_E_TRACED:
                watch_fail(slot, PN_ERR_BUSY,
                             "process %d is already traced (a debugger, strace, or a child of "
                             "the broker): a stop watch must be its only tracer", (int) p->tgid);
                break;
        case -EPERM:
                watch_fail(slot, PN_ERR_ACCESS_DENIED,
                             "the kernel refused to trace process %d (PTRACE_SEIZE: %s)", (int) p->tgid,
                             strerror(EPERM));
                break;
        case TRACEE_E_GONE:
                watch_fail(slot, PN_ERR_NOT_FOUND, "process %d has exited", (int) p->tgid);
                break;
        case TRACEE_E_TOO_MANY_THREADS:
                watch_fail(slot, PN_ERR_LIMIT_EXCEEDED,
                             "process %d has more threads than the broker may still trace "
                             "(MaxTracedThreads %u)",
                             (int) p->tgid, w->opt.max_traced_threads);
                break;
        case TRACEE_E_UNSETTLED:
                watch_fail(slot, PN_ERR_BUSY,
                             "process %d kept creating threads while being attached; try again",
                             (int) p->tgid);
                break;
        default:
                watch_fail(slot, PN_ERR_INTERNAL, "cannot trace process %d: %s", (int) p->tgid,
                             strerror(-r));
                break;
        }
        return WATCH_E_REFUSED;
}

static void watch_table_watch(WatchTable *w, const PeerCreds *peer, SinkOwner owner, pid_t pid,
                              bool stop, ControlSlot *slot) {
        _cleanup_(proc_info_done) ProcInfo info = { 0 };
        unsigned n_owner = 0, n_uid = 0;
        WatchedProc *p;
        Watch *x;
        Filter *f = NULL;
        uint64_t id = 0;
        int r;

        if (watch_table_find(w, owner, pid)) {
                watch_fail(slot, PN_ERR_BUSY,
                           "this connection watches process %d already; unwatch it first", (int) pid);
                return;
        }
        for (x = w->watches; x; x = x->next) {
                n_owner += x->owner == owner;
                n_uid += x->peer.uid == peer->uid;
        }
        if (n_owner >= w->opt.max_per_owner) {
                watch_fail(slot, PN_ERR_LIMIT_EXCEEDED,
                           "at most %u watches per connection (MaxWatches)", w->opt.max_per_owner);
                return;
        }
        if (peer->uid != 0 && n_uid >= w->opt.max_per_uid) {
                watch_fail(slot, PN_ERR_LIMIT_EXCEEDED,
                           "at most %u watches per user (MaxWatchesPerUser)", w->opt.max_per_uid);
                return;
        }
        if (!control_slot_can_subscribe(slot)) {
                watch_fail(slot, PN_ERR_LIMIT_EXCEEDED,
                           "a watch needs a subscription, and this connection has its maximum "
                           "(MaxSubscriptions)");
                return;
        }
        p = watch_table_get_proc(w, peer, pid, stop, slot, &info);
        if (!p)
                return;
        p->n_watches++; /* hold it while tracing may fail */
        x = calloc(1, sizeof(*x));
        r = x ? filter_new_numeric(&f, FILTER_TGID, pid, false) : -ENOMEM;
        if (r < 0 || (stop && !p->tracee && watch_proc_trace(p, slot) != 0)) {
                if (r < 0)
                        watch_fail(slot, PN_ERR_INTERNAL, "out of memory watching %d", (int) pid);
                filter_free(f);
                free(x);
                if (--p->n_watches == 0)
                        watch_proc_free(p);
                return;
        }
        *x = (Watch){ .owner = owner, .peer = *peer, .tag = ++w->next_tag, .stop = stop, .proc = p };
        p->n_stop += stop;
        x->next = w->watches;
        w->watches = x;
        /* The requester's subscription to the process's events; if the sink
         * cannot make it after all, the watch is undone. */
        r = control_slot_subscribe(slot, f, x->tag, &id);
        if (r != 0) {
                watch_free(w, x); /* the last one frees p, retiring its tracee */
                if (r > 0)
                        watch_fail(slot, PN_ERR_LIMIT_EXCEEDED, "cannot subscribe the watcher to process "
                                   "%d: no room for another subscription", (int) pid);
                else
                        watch_fail(slot, PN_ERR_INTERNAL, "cannot subscribe the watcher to process %d: %s",
                                   (int) pid, strerror(-r));
                return;
        }
        w->stats.made++;

        ControlResult res = {
                .op = REQUEST_WATCH,
                .watching = {
                        .pid = pid,
                        .id = id,
                        .comm = info.comm[0] ? info.comm : NULL,
                        .uid = info.uid,
                        .stop = stop,
                        .traced = p->tracee != NULL,
                        .threads = p->tracee ? tracee_get_n_threads(p->tracee) : 0,
                        .stopped = info.state == 'T' || info.state == 't',
                },
        };
        control_slot_complete(slot, &res);
}

static void watch_table_unwatch(WatchTable *w, SinkOwner owner, pid_t pid, ControlSlot *slot) {
        Watch *x = watch_table_find(w, owner, pid);

        if (!x) {
                control_slot_fail(slot, REQUEST_UNWATCH, PN_ERR_NOT_FOUND,
                                  "this connection does not watch process %d", (int) pid);
                return;
        }
        control_slot_unsubscribe(slot, x->tag);
        watch_free(w, x);
        control_slot_complete(slot, &(ControlResult){ .op = REQUEST_UNWATCH, .unwatched.pid = pid });
}

void watch_table_request(WatchTable *w, const PeerCreds *peer, SinkOwner owner, const Request *req,
                         ControlSlot *slot) {
        uint64_t made = w->stats.made;

        if (req->op == REQUEST_WATCH) {
                watch_table_watch(w, peer, owner, req->watch.pid, req->watch.stop, slot);
                if (w->stats.made == made)
                        w->stats.refused++;
        } else if (req->op == REQUEST_UNWATCH)
                watch_table_unwatch(w, owner, req->watch.pid, slot);
}

void watch_table_release(WatchTable *w, SinkOwner owner) {
        for (Watch *x = w->watches, *next; x; x = next) {
                next = x->next;
                if (x->owner == owner)
                        watch_free(w, x);
        }
}

/* --- lifetime --- */

int watch_table_new(WatchTable **ret, sd_event *e, Reaper *reaper, ProcTable *table,
                    const ProcReader *reader, const WatchTableOptions *o,
                    const WatchTableCallbacks *cb, void *userdata) {
        WatchTable *w = calloc(1, sizeof(*w));

        if (!w)
                return -ENOMEM;
        w->event = sd_event_ref(e);
        w->reaper = reaper;
        w->table = table;
        w->reader = *reader;
        w->opt = *o;
        w->cb = *cb;
        w->userdata = userdata;
        *ret = w;
        return 0;
}

int watch_table_stop(WatchTable *w, void (*on_idle)(void *userdata)) {
        while (w->watches)
                watch_free(w, w->watches); /* retires (detaches) the tracees */
        if (!w->retired)
                return 0;
        /* Each retired tracee is let go as its threads' statuses come,
         * through the reaper's events: watch_table_on_released(). */
        w->on_idle = on_idle;
        return WATCH_TABLE_E_PENDING;
}

WatchTable *watch_table_free(WatchTable *w) {
        if (!w)
                return NULL;
        w->on_idle = NULL;
        while (w->watches)
                watch_free(w, w->watches);
        while (w->retired) {
                Retired *r = w->retired;
                w->retired = r->next;
                tracee_free(r->tracee); /* the kernel detaches when we exit */
                free(r);
        }
        sd_event_unref(w->event);
        free(w);
        return NULL;
}

void watch_table_set_options(WatchTable *w, const WatchTableOptions *o) {
        w->opt = *o;
}

void watch_table_visit_stats(WatchTable *w, const StatsVisitor *v) {
        uint64_t n = 0, procs = 0, traced = 0;

        for (Watch *x = w->watches; x; x = x->next)
                n++;
        for (WatchedProc *p = w->procs; p; p = p->next) {
                procs++;
                traced += p->tracee != NULL;
        }
        stats_section_begin(v, "watches");
        stats_uint(v, "active", n);
        stats_uint(v, "processes", procs);
        stats_uint(v, "traced_processes", traced);
        stats_uint(v, "traced_threads", watch_table_traced_threads(w));
        stats_uint(v, "made", w->stats.made);
        stats_uint(v, "refused", w->stats.refused);
        stats_uint(v, "stops", w->stats.stops);
        stats_uint(v, "continues", w->stats.continues);
        stats_uint(v, "detached", w->stats.detached);
        stats_uint(v, "revoked", w->stats.revoked);
        stats_section_end(v);
}
