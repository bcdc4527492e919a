/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Supervisor: the children the broker runs and the orphans it adopts
 * (tracking, statuses, kill, stop, prctl signals); see supervisor.h.
 *
 * Children and tracked orphans are kept in one small array (bounded by
 * MaxChildren and SUPERVISOR_MAX_ORPHANS), searched linearly: it is short,
 * and touched once per wait status or request.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


#include "common/linux-compat.h"
#include "common/macro.h"
#include "config.h"
#include "policy.h"
#include "procfs.h"
#include "protocol/reply.h"
#include "source-pidfd.h"
#include "supervisor-internal.h"

#define SUPERVISOR_MAX_ORPHANS 4096

uint64_t supervisor_realtime_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static uint64_t monotonic_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* --- pure translations --- */

int supervisor_event_from_status(pid_t pid, int status, uint64_t ts_ns, PnEvent *ev) {
        *ev = (PnEvent){
                .ts_ns = ts_ns,
                .sources = PN_SOURCE_CHILD,
                .pid = pid,
                .tgid = pid,
                .uid = UINT32_MAX,
        };
        if (WIFEXITED(status) || WIFSIGNALED(status)) {
                ev->type = PN_EVENT_EXIT;
                pn_event_set_exit_status(ev, status);
                return 0;
        }
        if (WIFSTOPPED(status) && (status >> 16) == 0 && WSTOPSIG(status) != (SIGTRAP | 0x80)) {
                ev->type = PN_EVENT_STOP;
                ev->stop.signal = WSTOPSIG(status);
                return 0;
        }
        if (WIFCONTINUED(status)) {
                ev->type = PN_EVENT_CONTINUE;
                return 0;
        }
        return SUPERVISOR_STATUS_OTHER;
}

/* The signals whose default action is "core" (signal(7)). */
static bool signal_dumps_core(int sig) {
        switch (sig) {
        case SIGQUIT: case SIGILL: case SIGTRAP: case SIGABRT: case SIGBUS: case SIGFPE:
        case SIGSEGV: case SIGXCPU: case SIGXFSZ: case SIGSYS:
                return true;
        default:
                return false;
        }
}

bool supervisor_status_died_dumping(int status) {
        return WIFSIGNALED(status) && (WCOREDUMP(status) || signal_dumps_core(WTERMSIG(status)));
}

/* The form of the patched kernel's signals (seeds 000, 001): SI_USER, as
 * a kill() from si_pid would look, so the form alone proves nothing. */
static bool siginfo_kernel_form(const struct signalfd_siginfo *si) {
        return si->ssi_code == SI_USER && (pid_t) si->ssi_pid > 0;
}

int supervisor_event_from_predump_siginfo(const struct signalfd_siginfo *si, uint64_t ts_ns,
                                          PnEvent *ev) {
        if (!siginfo_kernel_form(si))
                return SUPERVISOR_SIGNAL_REFUSED;
        *ev = (PnEvent){
                .type = PN_EVENT_PREDUMP,
                .ts_ns = ts_ns,
                .sources = PN_SOURCE_PRCTL,
                .pid = (pid_t) si->ssi_pid,
                .tgid = (pid_t) si->ssi_pid,
                .uid = si->ssi_uid,
                .predump = { .rss = -1, .core_limit = PN_CORE_LIMIT_UNKNOWN },
        };
        return 0;
}

int supervisor_event_from_adopt_siginfo(const struct signalfd_siginfo *si, pid_t self,
                                        uint64_t ts_ns, PnEvent *ev) {
        if (!siginfo_kernel_form(si) || (pid_t) si->ssi_status <= 0 || (pid_t) si->ssi_pid == self)
                return SUPERVISOR_SIGNAL_REFUSED;
        *ev = (PnEvent){
                .type = PN_EVENT_ADOPT,
                .ts_ns = ts_ns,
                .sources = PN_SOURCE_PRCTL,
                .pid = (pid_t) si->ssi_pid,
                .tgid = (pid_t) si->ssi_pid,
                .uid = si->ssi_uid,
                .adopt = { .old_parent = (pid_t) si->ssi_status, .new_parent = self },
        };
        return 0;
}

void supervisor_default_name(const char *argv0, char *buf, size_t size) {
        const char *base = strrchr(argv0, '/');
        size_t n = 0;

        base = base && base[1] ? base + 1 : argv0;
        if (size == 0)
                return;
        if (*base == '.' || *base == '-')
                buf[n++] = '_';
        for (; *base && n + 1 < size && n < RUN_MAX_NAME; base++)
                buf[n++] = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@-",
                                  *base) ? *base : '_';
        if (n == 0)
                buf[n++] = '_';
        buf[n] = 0;
}

/* --- children --- */

Child *supervisor_find(const Supervisor *s, pid_t pid) {
        for (size_t i = 0; i < s->n_children; i++)
                if (s->children[i]->pid == pid)
                        return s->children[i];
        return NULL;
}

int supervisor_reserve(Supervisor *s) {
        if (s->n_children == s->cap_children) {
                size_t cap = s->cap_children ? s->cap_children * 2 : 16;
                Child **a = realloc(s->children, cap * sizeof(*a));
                if (!a)
                        return -ENOMEM;
                s->children = a;
                s->cap_children = cap;
        }
        return 0;
}

int supervisor_add(Supervisor *s, Child *c) {
        int r = supervisor_reserve(s);
        if (r < 0)
                return r;
        s->children[s->n_children++] = c;
        if (c->adopted)
                s->n_adopted++;
        else
                s->n_supervised++;
        return 0;
}

void supervisor_child_free(Child *c) {
        if (!c)
                return;
        /* A verdict still waiting is dropped with the supervisor (at free
         * only: an exit decides it before the child goes). */
        sd_event_source_disable_unref(c->verdict.io);
        sd_event_source_disable_unref(c->verdict.timer);
        safe_close(c->pidfd);
        free(c->command);
        free(c);
}

static void supervisor_remove(Supervisor *s, Child *c) {
        for (size_t i = 0; i < s->n_children; i++)
                if (s->children[i] == c) {
                        s->children[i] = s->children[--s->n_children];
                        break;
                }
        if (c->adopted)
                s->n_adopted--;
        else
                s->n_supervised--;
        if (c->registered)
                reaper_watch_remove(s->reaper, c->pid);
        supervisor_child_free(c);
        if (s->stopping && s->n_children == 0 && s->cb.on_empty)
                s->cb.on_empty(s->userdata);
}

int supervisor_child_signal(const Child *c, int sig) {
        if (c->pidfd >= 0)
                return pn_pidfd_send_signal(c->pidfd, sig, NULL, 0) < 0 ? -errno : 0;
        /* No pidfds in this kernel: the pid of a child not yet waited for
         * cannot be reused, so it is as safe. */
        return kill(c->pid, sig) < 0 ? -errno : 0;
}

/* --- a patched kernel's predump signal: the verdict --- */

/* Is pid dumping core now? CoreDumping: 1 in /proc/PID/status (Linux 4.15):
 * set by coredump_wait(), before the patched kernel sends the signal, and
 * cleared when the dump is over (at once with RLIMIT_CORE 0). */
static bool core_dumping(pid_t pid) {
        char path[64], buf[2048];
        const char *p;
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return false;
        buf[n] = 0;
        p = strstr(buf, "\nCoreDumping:");
        return p && atoi(p + strlen("\nCoreDumping:")) == 1;
}

/* Is c dead, not yet reaped, of a signal whose default action dumps core?
 * A peek (WNOWAIT) that collects nothing: the reaper stays the only
 * collector. */
static bool died_dumping(const Child *c) {
        siginfo_t si = {};
        int r;

        if (c->pidfd >= 0)
                r = waitid((idtype_t) P_PIDFD, (id_t) c->pidfd, &si, WEXITED | WNOHANG | WNOWAIT);
        else
                r = waitid(P_PID, (id_t) c->pid, &si, WEXITED | WNOHANG | WNOWAIT);
        if (r < 0 || si.si_pid != c->pid)
                return false;
        return si.si_code == CLD_DUMPED || (si.si_code == CLD_KILLED && signal_dumps_core(si.si_status));
}

static bool verdict_pending(const Child *c) {
        return c->verdict.ops;
}

static void predump_count(Supervisor *s, bool accepted) {
        if (accepted) {
                s->stats.predump_signals_accepted++;
                return;
        }
        s->stats.predump_signals_refused++;
        s->stats.refused_signals++;
}

/* Decide c's waiting predump verdict: counted, told to whoever waits. */
static void verdict_decide(Supervisor *s, Child *c, bool accept) {
        const SupervisorVerdictOps *ops = c->verdict.ops;
        void *userdata = c->verdict.userdata;
        PnEvent ev = c->verdict.ev;
        bool held = c->verdict.held;

        c->verdict.io = sd_event_source_disable_unref(c->verdict.io);
        c->verdict.timer = sd_event_source_disable_unref(c->verdict.timer);
        c->verdict.ops = NULL;
        predump_count(s, accept);
        ops->done(userdata, c->pid, accept ? &ev : NULL, held);
}

static Child *verdict_find(const Supervisor *s, const sd_event_source *src) {
        for (size_t i = 0; i < s->n_children; i++)
                if (s->children[i]->verdict.io == src || s->children[i]->verdict.timer == src)
                        return s->children[i];
        return NULL;
}

/* The child ended (its pidfd is readable); it is not reaped yet: the
 * reaper's SIGCHLD comes after this source (priority), and a reaper that
 * got there first decided it from the status (supervisor_on_status_of()). */
static int supervisor_on_verdict_exit(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Supervisor *s = userdata;
        Child *c = verdict_find(s, src);

        (void) fd, (void) revents;
        if (c)
                verdict_decide(s, c, died_dumping(c));
        return 0;
}

/* Look again, a little later each time (1, 2, 4 ms...): a dump that had not
 * begun when the signal was read (another thread's signal) shows
 * CoreDumping: 1 now, and a large core takes long to write: it must not
 * wait for the exit. At the bound, a child still alive and not dumping
 * sent the signal itself. */
static int supervisor_on_verdict_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Supervisor *s = userdata;
        Child *c = verdict_find(s, src);

        if (!c)
                return 0;
        if (core_dumping(c->pid) || died_dumping(c)) {
                verdict_decide(s, c, true);
                return 0;
        }
        if (usec >= c->verdict.deadline_us) {
                verdict_decide(s, c, false);
                return 0;
        }
        c->verdict.step_us *= 2;
        if (sd_event_source_set_time(src, MIN(usec + c->verdict.step_us, c->verdict.deadline_us)) < 0 ||
            sd_event_source_set_enabled(src, SD_EVENT_ONESHOT) < 0)
                verdict_decide(s, c, false); /* cannot wait: never believed unchecked */
        return 0;
}

/* Wait for c's end (its pidfd, as an I/O source of the loop: nothing
 * blocks), looking again at /proc meanwhile, at most
 * SUPERVISOR_VERDICT_WAIT_USEC. Both sources are IMPORTANT: dispatched
 * before the reaper's SIGCHLD. */
static int verdict_wait(Supervisor *s, Child *c, const PnEvent *ev, const SupervisorVerdictOps *ops,
                        void *userdata) {
        _cleanup_(sd_event_source_disable_unrefp) sd_event_source *io = NULL, *timer = NULL;
        sd_event *e = reaper_get_event(s->reaper);
        uint64_t now;
        int r;

        r = sd_event_now(e, CLOCK_MONOTONIC, &now);
        if (r < 0)
                return r;
        r = sd_event_add_io(e, &io, c->pidfd, EPOLLIN, supervisor_on_verdict_exit, s);
        if (r < 0)
                return r;
        r = sd_event_add_time(e, &timer, CLOCK_MONOTONIC, now + 1000, 0, supervisor_on_verdict_timer, s);
        if (r < 0)
                return r;
        r = sd_event_source_set_priority(io, SD_EVENT_PRIORITY_IMPORTANT);
        if (r >= 0)
                r = sd_event_source_set_priority(timer, SD_EVENT_PRIORITY_IMPORTANT);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(io, "predump-verdict-exit");
        (void) sd_event_source_set_description(timer, "predump-verdict-timer");
        c->verdict.ev = *ev;
        c->verdict.deadline_us = now + SUPERVISOR_VERDICT_WAIT_USEC;
        c->verdict.step_us = 1000;
        c->verdict.ops = ops;
        c->verdict.userdata = userdata;
        c->verdict.io = TAKE_PTR(io);
        c->verdict.timer = TAKE_PTR(timer);
        c->verdict.held = ops->hold(userdata, c->pid) == 0;
        return 0;
}

/* A status of a process of ours: publish, and forget it when it ended. */
static void supervisor_on_status_of(Supervisor *s, Child *c, pid_t pid, int status) {
        PnEvent ev;

        if (supervisor_event_from_status(pid, status, monotonic_ns(), &ev) != 0)
                return;
        /* Reaped before its pidfd's event was dispatched (the reaper collects
         * every zombie it finds): the status decides a waiting predump
         * verdict, which is published before the exit. */
        if (c && ev.type == PN_EVENT_EXIT && verdict_pending(c))
                verdict_decide(s, c, supervisor_status_died_dumping(status));
        /* A child that ends before its run was answered: answer it first,
         * so that the requester has its reply (and, with "follow", its
         * subscription) before the exit. */
        if (c && c->start && ev.type == PN_EVENT_EXIT)
                supervisor_run_child_exited(s, c);
        ev.ppid = getpid(); /* its wait status came to us: we are its parent */
        if (c && ev.type == PN_EVENT_STOP)
                c->stopped = true;
        else if (c && ev.type == PN_EVENT_CONTINUE)
                c->stopped = false;
        s->cb.on_event(s->userdata, &ev);
        if (ev.type != PN_EVENT_EXIT)
                return;
        if (!c || c->adopted)
                s->stats.orphans_reaped++;
        if (c) {
                if (!c->adopted && !c->failed) {
                        s->stats.ended++;
                        if (s->cb.on_ended)
                                s->cb.on_ended(s->userdata, c->pid, c->name, status);
                }
                supervisor_remove(s, c);
        }
}

void supervisor_on_status(pid_t pid, int status, void *userdata) {
        Supervisor *s = userdata;
        supervisor_on_status_of(s, supervisor_find(s, pid), pid, status);
}

void supervisor_handle_orphan_status(Supervisor *s, pid_t pid, int status) {
        supervisor_on_status_of(s, supervisor_find(s, pid), pid, status);
}

void supervisor_adopted(Supervisor *s, pid_t pid, uint32_t uid) {
        siginfo_t si = {};
        Child *c;
        int fd;

        if (supervisor_find(s, pid) || s->n_adopted >= SUPERVISOR_MAX_ORPHANS)
                return;
        fd = pidfd_open_process(pid);
        if (fd < 0)
                fd = -1;
        /* Ours? A peek (WNOWAIT) that collects nothing: the reaper stays
         * the only collector. ECHILD: not our child (anymore). */
        if (fd >= 0 && waitid((idtype_t) P_PIDFD, (id_t) fd, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
                close(fd);
                return;
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
                safe_close(fd);
                return;
        }
        *c = (Child){ .pid = pid, .pidfd = fd, .adopted = true, .uid = uid,
                      .requester = (uid_t) -1, .started_ns = supervisor_realtime_ns() };
        snprintf(c->name, sizeof(c->name), "adopted");
        if (supervisor_add(s, c) < 0) {
                supervisor_child_free(c);
                return;
        }
        /* The reaper asks registered pids only for continued statuses:
         * register the orphan, or its continues are never seen. A ptrace
         * watch may hold it already (-EEXIST): then it reports them. */
        c->registered = reaper_watch_add(s->reaper, pid, supervisor_on_status, s) == 0;
        if (s->stopping)
                (void) supervisor_child_signal(c, SIGTERM);
}

/* --- children, kill --- */

bool supervisor_child_is_visible(const Child *c) {
        return !c->failed && !c->start;
}

static void supervisor_list(Supervisor *s, ControlSlot *slot) {
        _cleanup_free_ ControlChild *list = calloc(s->n_children ? s->n_children : 1, sizeof(*list));
        size_t n = 0;

        if (!list) {
                control_slot_fail(slot, REQUEST_CHILDREN, PN_ERR_INTERNAL, "out of memory");
                return;
        }
        for (size_t i = 0; i < s->n_children; i++) {
                const Child *c = s->children[i];
                if (!supervisor_child_is_visible(c))
                        continue;
                list[n++] = (ControlChild){
                        .pid = c->pid,
                        .name = c->name,
                        .uid = c->uid,
                        .stopped = c->stopped,
                        .adopted = c->adopted,
                        .requester_uid = c->adopted ? UINT32_MAX : c->requester,
                        .command = c->command,
                        .started_ns = c->started_ns,
                };
        }
        control_slot_complete(slot, &(ControlResult){ .op = REQUEST_CHILDREN,
                                                      .children = { .list = list, .n = n } });
}

static void supervisor_kill(Supervisor *s, const PeerCreds *peer, const Request *req,
                            ControlSlot *slot) {
        pid_t done[64];
        size_t n_done = 0, n_denied = 0;
        int last_error = 0;

        for (size_t i = 0; i < s->n_children && n_done < ELEMENTSOF(done); i++) {
                Child *c = s->children[i];
                if (!supervisor_child_is_visible(c))
                        continue;
                if (req->kill.pid ? c->pid != req->kill.pid
                                  : c->adopted || !streq(c->name, req->kill.name))
                        continue;
                /* Root, or the user the child runs as. */
                if (peer->uid != 0 && c->uid != peer->uid) {
                        n_denied++;
                        continue;
                }
                int r = supervisor_child_signal(c, req->kill.signal);
                if (r < 0)
                        last_error = r;
                else
                        done[n_done++] = c->pid;
        }
        if (n_done > 0)
                control_slot_complete(slot, &(ControlResult){
                        .op = REQUEST_KILL,
                        .killed = { .signal = req->kill.signal, .pids = done, .n = n_done } });
        else if (n_denied)
                control_slot_fail(slot, REQUEST_KILL, PN_ERR_ACCESS_DENIED,
                                  "only root or the user a child runs as may signal it");
        else if (last_error)
                control_slot_fail(slot, REQUEST_KILL, PN_ERR_INTERNAL, "signalling failed: %s",
                                  strerror(-last_error));
        else if (req->kill.pid)
                control_slot_fail(slot, REQUEST_KILL, PN_ERR_NOT_FOUND, "no supervised child with pid %d",
                                  (int) req->kill.pid);
        else
                control_slot_fail(slot, REQUEST_KILL, PN_ERR_NOT_FOUND,
                                  "no supervised child named \"%s\"", req->kill.name);
}

void supervisor_handle_request(Supervisor *s, const PeerCreds *peer, SinkOwner owner,
                               const Request *req, ControlSlot *slot) {
        (void) owner; /* children outlive the connection that started them */
        if (!policy_may_act(peer, POLICY_ACTION_RUN, 0, UINT32_MAX, getpid())) {
                control_slot_fail(slot, req->op, PN_ERR_ACCESS_DENIED,
                                  "only root and members of the broker's group may run, list or "
                                  "signal supervised children");
                return;
        }
        switch (req->op) {
        case REQUEST_RUN:
                supervisor_run(s, peer, req, slot);
                break;
        case REQUEST_CHILDREN:
                supervisor_list(s, slot);
                break;
        case REQUEST_KILL:
                supervisor_kill(s, peer, req, slot);
                break;
        default:
                control_slot_fail(slot, req->op, PN_ERR_UNKNOWN_OP, "not a supervisor op");
                break;
        }
}

/* --- lifetime --- */

unsigned supervisor_stop(Supervisor *s, int sig) {
        unsigned n = 0;

        s->stopping = true;
        for (size_t i = 0; i < s->n_children; i++) {
                Child *c = s->children[i];
                if (supervisor_child_signal(c, sig) < 0)
                        continue;
                n++;
                /* A stopped process would keep the signal pending until
                 * SIGKILL: continue it, as a service manager does. */
                if (c->stopped && sig != SIGKILL && sig != SIGCONT)
                        (void) supervisor_child_signal(c, SIGCONT);
        }
        return n;
}

unsigned supervisor_count(const Supervisor *s) {
        return (unsigned) s->n_children;
}

/* --- a patched kernel's signals --- */

int supervisor_accept_predump_signal(Supervisor *s, const struct signalfd_siginfo *si, uint64_t ts_ns,
                                     PnEvent *ev, const SupervisorVerdictOps *ops, void *userdata) {
        Child *c;
        int r;

        /* Anyone allowed to signal the broker can send SI_USER with its own
         * pid: only a child of ours that is dumping core, or died of a
         * core-dumping signal, is believed. The child is not reaped yet (we
         * reap it, after this), so its pid names it still: what /proc says
         * is about this child, and its pidfd confirms. */
        if (supervisor_event_from_predump_siginfo(si, ts_ns, ev) != 0 || !(c = supervisor_find(s, ev->pid))) {
                predump_count(s, false);
                return SUPERVISOR_SIGNAL_REFUSED;
        }
        ev->ppid = getpid();
        if (core_dumping(c->pid) || died_dumping(c)) {
                predump_count(s, true);
                return 0;
        }
        /* Neither: with a small core (or none) the dump is over before we
         * look and the exit is not notified yet; or a forgery. The child's
         * end decides. One wait per child (the kernel signals once per
         * dump), so MaxChildren bounds them; without a pidfd there is
         * nothing to wait on without blocking. */
        if (verdict_pending(c) || c->pidfd < 0) {
                predump_count(s, false);
                return SUPERVISOR_SIGNAL_REFUSED;
        }
        r = verdict_wait(s, c, ev, ops, userdata);
        if (r < 0) {
                predump_count(s, false);
                return r;
        }
        return SUPERVISOR_SIGNAL_PENDING;
}

/* The parent of pid now, from /proc/PID/stat; -1 if gone. */
static pid_t parent_of(pid_t pid) {
        char path[64], buf[1024];
        ProcInfo info = { 0 };
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return -1;
        buf[n] = 0;
        return procfs_parse_stat(buf, (size_t) n, &info) < 0 ? -1 : info.ppid;
}

int supervisor_accept_adopt_signal(Supervisor *s, const struct signalfd_siginfo *si, pid_t self,
                                   uint64_t ts_ns, PnEvent *ev) {
        Child *c;

        /* An orphan whose parent is now the broker; a child we started was
         * never anyone else's orphan. */
        if (supervisor_event_from_adopt_siginfo(si, self, ts_ns, ev) == 0 &&
            !((c = supervisor_find(s, ev->pid)) && !c->adopted) && parent_of(ev->pid) == self) {
                s->stats.adopt_signals_accepted++;
                return 0;
        }
        s->stats.adopt_signals_refused++;
        s->stats.refused_signals++;
        return SUPERVISOR_SIGNAL_REFUSED;
}

const SupervisorStats *supervisor_get_stats(const Supervisor *s) {
        ((Supervisor *) s)->stats.children = s->n_supervised;
        ((Supervisor *) s)->stats.adopted = s->n_adopted;
        return &s->stats;
}

void supervisor_visit_stats(Supervisor *s, const StatsVisitor *v) {
        const SupervisorStats *st = supervisor_get_stats(s);

        stats_section_begin(v, "run");
        stats_bool(v, "enabled", s->opt.enabled);
        stats_uint(v, "children", st->children);
        stats_uint(v, "adopted", st->adopted);
        stats_uint(v, "started", st->started);
        stats_uint(v, "failed", st->failed);
        stats_uint(v, "ended", st->ended);
        stats_uint(v, "orphans_reaped", st->orphans_reaped);
        stats_uint(v, "refused_signals", st->refused_signals);
        stats_uint(v, "predump_signals_accepted", st->predump_signals_accepted);
        stats_uint(v, "predump_signals_refused", st->predump_signals_refused);
        stats_uint(v, "adopt_signals_accepted", st->adopt_signals_accepted);
        stats_uint(v, "adopt_signals_refused", st->adopt_signals_refused);
        stats_section_end(v);
}

int supervisor_set_options(Supervisor *s, const SupervisorOptions *o) {
        char *dir = strdup(o->log_directory ? o->log_directory : CONFIG_DEFAULT_RUN_LOG_DIRECTORY);
        if (!dir)
                return -ENOMEM;
        free(s->log_directory);
        s->log_directory = dir;
        s->opt = *o;
        s->opt.log_directory = s->log_directory;
        return 0;
}

int supervisor_new(Supervisor **ret, Reaper *reaper, const SupervisorOptions *o,
                   const SupervisorCallbacks *cb, void *userdata) {
        Supervisor *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        s->reaper = reaper;
        s->cb = *cb;
        s->userdata = userdata;
        r = supervisor_set_options(s, o);
        if (r < 0) {
                free(s);
                return r;
        }
        *ret = s;
        return 0;
}

Supervisor *supervisor_free(Supervisor *s) {
        if (!s)
                return NULL;
        supervisor_run_forget_all(s);
        for (size_t i = 0; i < s->n_children; i++) {
                if (s->children[i]->registered)
                        reaper_watch_remove(s->reaper, s->children[i]->pid);
                supervisor_child_free(s->children[i]);
        }
        free(s->children);
        free(s->log_directory);
        free(s);
        return NULL;
}
