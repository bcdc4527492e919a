/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Broker implementation; see broker.h.
 *
 * Start-up order matters: the connector is subscribed before the process
 * table is seeded from /proc, so that no process can slip between the two
 * (events about processes the seed already saw are reconciled by start time).
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "broker.h"
#include "caps.h"
#include "common/clock.h"
#include "common/linux-compat.h"
#include "dispatcher.h"
#include "fdreserve.h"
#include "log.h"
#include "policy.h"
#include "procfs.h"
#include "proctable.h"
#include "protocol/reply.h"
#include "reaper.h"
#include "sink-dbus.h"
#include "sink-journal.h"
#include "sink-socket.h"
#include "source-cnproc.h"
#include "supervisor.h"
#include "uidlimits.h"
#include "watch.h"

#ifndef PROCNOTIFY_VERSION
#define PROCNOTIFY_VERSION "0.0.0"
#endif

#define OVERRUN_MIN_INTERVAL_NS (100 * 1000 * 1000ull)
#define RESYNC_MIN_INTERVAL_NS (1000 * 1000 * 1000ull)

struct Broker {
        sd_event *event;
        Config *config;
        char *config_path;

        ProcReader reader;
        ProcTable *table;
        Dispatcher *dispatcher;
        Cnproc *cnproc;
        Reaper *reaper;
        Supervisor *supervisor;
        WatchTable *watches;
        SinkSocket *sink_socket;
        SinkJournal *sink_journal;  /* NULL with Journal=no */
        SinkDbus *sink_dbus;
        sd_event_source *dbus_drop;
        Policy policy;
        UidLimits *limits;
        CapMask caps;       /* kept after start-up */
        SinkContext sink_ctx;
        KernelFeatures features;

        sd_event_source *sig_term, *sig_int, *sig_hup;
        sd_event_source *sig_predump, *sig_adopt; /* patched-kernel prctl signals */
        sd_event_source *stop_timer;              /* shutdown: children get StopTimeout= */
        sd_event_source *detach_timer;            /* shutdown: bounds the wait for tracees' detach */
        pid_t pid;
        sd_event_source *pending_timer, *overrun_timer, *resync_timer, *post;

        char boot_id[40];
        char instance_id[40];
        uint64_t started_ns;

        /* Wall-clock offset of CLOCK_MONOTONIC, refreshed every second. */
        uint64_t realtime_offset_ns;
        uint64_t offset_checked_ns;

        uint64_t lost_unreported;  /* kernel loss not yet in an overrun event */
        uint64_t last_overrun_ns;
        uint64_t last_resync_ns;
        uint64_t overrun_events;
        uint64_t armed_pending_ns;
        uint64_t fd_shortage_logged_ns; /* the last "out of descriptors" message */
        uint64_t fd_shortages;          /* since then */
        bool running;       /* the loop is about to run or runs */
        bool dbus_pending;  /* the bus has not answered the name request yet */
        /* No bus to connect to yet: tried again from a timer and at SIGHUP. */
        sd_event_source *bus_retry;
        bool bus_missing_told;
        bool dbus_away;     /* the bus was lost; the sink is connecting again */
        bool notified;      /* READY=1 sent */
};

/* --- publishing --- */

static void broker_emit(PnEvent *ev, void *userdata) {
        Broker *b = userdata;

        if (ev->ts_ns - b->offset_checked_ns > 1000000000u || ev->ts_ns < b->offset_checked_ns) {
                b->realtime_offset_ns = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC);
                b->offset_checked_ns = ev->ts_ns;
        }
        ev->time_ns = ev->ts_ns + b->realtime_offset_ns;
        /* An orphan re-parented to the broker (subreaper) is the
         * supervisor's to list, reap and stop. */
        if (ev->type == PN_EVENT_ADOPT && ev->adopt.new_parent == b->pid && b->supervisor)
                supervisor_adopted(b->supervisor, ev->tgid, ev->uid);
        dispatcher_emit(b->dispatcher, ev);
        /* After the sinks: a watched exit ends its watch, and the watcher
         * has it queued by now. */
        if (b->watches)
                watch_table_on_event(b->watches, ev);
}

static void broker_emit_overrun(Broker *b) {
        PnEvent ev = {
                .type = PN_EVENT_OVERRUN,
                .ts_ns = clock_ns(CLOCK_MONOTONIC),
                .overrun = { .lost = b->lost_unreported, .where = PN_OVERRUN_KERNEL },
        };
        if (b->lost_unreported == 0)
                return;
        log_warning("Kernel dropped %llu connector messages; reported to clients, resyncing from /proc.",
                    (unsigned long long) b->lost_unreported);
        b->lost_unreported = 0;
        b->last_overrun_ns = ev.ts_ns;
        b->overrun_events++;
        broker_emit(&ev, b);
}

static void broker_arm(Broker *b, sd_event_source *s, uint64_t at_ns) {
        (void) sd_event_source_set_time(s, at_ns / 1000);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

/* --- sources --- */

static void broker_on_kernel_event(void *userdata, PnEvent *ev) {
        Broker *b = userdata;

        /* The kernel makes a process waitable before it sends its exit on
         * the connector: collect the wait status of our own children first,
         * so that their one exit carries both sources at once. */
        if (ev->type == PN_EVENT_EXIT && b->supervisor) {
                const ProcEntry *e = proctable_find(b->table, ev->tgid);
                if (e && e->ppid == b->pid)
                        reaper_collect(b->reaper);
        }
        proctable_handle(b->table, ev, ev->ts_ns, broker_emit, b);
}

static void broker_on_kernel_batch_end(void *userdata) {
        Broker *b = userdata;
        dispatcher_flush(b->dispatcher);
}

static void broker_on_kernel_loss(void *userdata, uint64_t lost) {
        Broker *b = userdata;
        uint64_t now = clock_ns(CLOCK_MONOTONIC);
        int enabled = SD_EVENT_OFF;

        b->lost_unreported += lost;
        /* Coalesce: at most one overrun event per interval, the first at once. */
        if (now - b->last_overrun_ns >= OVERRUN_MIN_INTERVAL_NS)
                broker_emit_overrun(b);
        else {
                sd_event_source_get_enabled(b->overrun_timer, &enabled);
                if (enabled == SD_EVENT_OFF)
                        broker_arm(b, b->overrun_timer, b->last_overrun_ns + OVERRUN_MIN_INTERVAL_NS);
        }
        sd_event_source_get_enabled(b->resync_timer, &enabled);
        if (enabled == SD_EVENT_OFF)
                broker_arm(b, b->resync_timer, MAX(now, b->last_resync_ns + RESYNC_MIN_INTERVAL_NS));
}

static int broker_on_overrun_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s;
        (void) usec;
        broker_emit_overrun(userdata);
        return 0;
}

static int broker_on_resync_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Broker *b = userdata;
        uint64_t start = clock_ns(CLOCK_MONOTONIC);
        int r;

        (void) s;
        (void) usec;
        r = proctable_resync(b->table, start, broker_emit, b);
        b->last_resync_ns = clock_ns(CLOCK_MONOTONIC);
        if (r < 0)
                log_warning_errno(r, "Failed to resync the process table from /proc, ignoring: %m");
        else
                log_info("Resynced the process table from /proc: %llu processes in %.1f ms.",
                         (unsigned long long) proctable_get_stats(b->table)->entries,
                         (double) (b->last_resync_ns - start) / 1e6);
        return 0;
}

static int broker_on_pending_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Broker *b = userdata;
        (void) s;
        (void) usec;
        b->armed_pending_ns = 0;
        proctable_run_pending(b->table, clock_ns(CLOCK_MONOTONIC), broker_emit, b);
        return 0;
}

/* After every loop iteration that did something: arm the timer for the
 * process table's deferred work, if it has any that is earlier. */
static int broker_on_post(sd_event_source *s, void *userdata) {
        Broker *b = userdata;
        uint64_t d = proctable_next_deadline(b->table);

        (void) s;
        if (d && (b->armed_pending_ns == 0 || d < b->armed_pending_ns)) {
                b->armed_pending_ns = d;
                broker_arm(b, b->pending_timer, d);
        }
        return 0;
}

/* --- status --- */

static void broker_add_tgid(const ProcEntry *e, void *ctx) {
        *(uint64_t *) ctx += (uint64_t) e->tgid;
}

static void broker_visit_stats(void *userdata, const StatsVisitor *v) {
        Broker *b = userdata;
        const CnprocStats *cs = cnproc_get_stats(b->cnproc);
        const ProcTableStats *ts = proctable_get_stats(b->table);
        const DispatcherStats *ds = dispatcher_get_stats(b->dispatcher);

        stats_str(v, "version", PROCNOTIFY_VERSION);
        stats_str(v, "instance_id", b->instance_id);
        stats_uint(v, "uptime_ns", clock_ns(CLOCK_MONOTONIC) - b->started_ns);
        stats_uint(v, "seq", dispatcher_last_seq(b->dispatcher));
        stats_section_begin(v, "kernel_features");
        stats_kernel_features(v, &b->features);
        stats_section_end(v);
        stats_bool(v, "sees_all", v->sees_all);
        stats_section_begin(v, "connector");
        /* What the kernel reported of every process on the host: its rate is
         * other users' activity. Loss is everyone's (overruns go to all). */
        if (v->sees_all)
                stats_uint(v, "received", cs->received);
        stats_uint(v, "lost", cs->lost);
        stats_uint(v, "enobufs", cs->enobufs);
        stats_uint(v, "resets", cs->resets);
        stats_uint(v, "malformed", cs->malformed);
        stats_uint(v, "receive_buffer", cs->receive_buffer);
        stats_uint(v, "overrun_events", b->overrun_events);
        stats_section_end(v);
        if (v->sees_all) {
                /* Every figure below describes processes of any user. */
                stats_section_begin(v, "process_table");
                stats_uint(v, "entries", ts->entries);
                /* With entries, a fingerprint of the table that tests compare with
                 * /proc: one pass over the table, only when status is asked for. */
                uint64_t tgid_sum = 0;
                proctable_foreach(b->table, broker_add_tgid, &tgid_sum);
                stats_uint(v, "tgid_sum", tgid_sum);
                stats_uint(v, "resyncs", ts->resyncs);
                stats_uint(v, "inferred_exits", ts->inferred_exits);
                stats_uint(v, "adoptions", ts->adoptions);
                stats_uint(v, "full", ts->full);
                stats_uint(v, "merged_exits", ts->merged_exits);
                stats_uint(v, "unmerged_exits", ts->unmerged_exits);
                stats_uint(v, "merged_predumps", ts->merged_predumps);
                stats_uint(v, "unmerged_predumps", ts->unmerged_predumps);
                stats_uint(v, "merged_adoptions", ts->merged_adoptions);
                stats_uint(v, "unmerged_adoptions", ts->unmerged_adoptions);
                stats_section_end(v);
                if (b->watches)
                        watch_table_visit_stats(b->watches, v);
                stats_section_begin(v, "events");
                for (int t = 0; t < _PN_EVENT_TYPE_MAX; t++)
                        stats_uint(v, pn_event_type_to_string(t), ds->events[t]);
                stats_section_end(v);
        }
        if (b->supervisor && v->sees_all)
                supervisor_visit_stats(b->supervisor, v);
        if (b->sink_socket)
                sink_socket_visit_stats(b->sink_socket, v);
        if (b->sink_dbus)
                sink_dbus_visit_stats(b->sink_dbus, v);
        if (b->sink_journal)
                sink_journal_visit_stats(b->sink_journal, v);
}

static bool broker_is_descendant(void *userdata, pid_t tgid, pid_t ancestor) {
        Broker *b = userdata;
        return proctable_is_descendant(b->table, tgid, ancestor);
}

typedef struct FollowSeed {
        Follow *follow;
        int r;
} FollowSeed;

static void broker_follow_seed_one(const ProcEntry *e, void *userdata) {
        FollowSeed *fs = userdata;
        if (fs->r >= 0)
                fs->r = follow_add(fs->follow, e->tgid, e->ppid);
}

static int broker_follow_new(void *userdata, pid_t pid, Follow **ret, uint32_t *ret_uid) {
        Broker *b = userdata;
        /* A service just started may be newer than the connector's fork
         * event of it: learn it from /proc then, as a watch does. */
        const ProcEntry *e = proctable_learn(b->table, pid, clock_ns(CLOCK_MONOTONIC));
        FollowSeed fs = { 0 };
        int r;

        if (!e)
                return -ESRCH;
        r = follow_new(&fs.follow, pid, e->ppid);
        if (r < 0)
                return r;
        (void) proctable_foreach_descendant(b->table, pid, broker_follow_seed_one, &fs);
        /* A service with more processes than a follow holds is followed in
         * part; the sink reports the limit when it is hit by a fork. */
        if (fs.r < 0 && fs.r != -ENOSPC) {
                follow_free(fs.follow);
                return fs.r;
        }
        *ret_uid = e->uid;
        *ret = fs.follow;
        return 0;
}

/* --- ops served by the broker (watch, run, …) --- */

/* A request a sink forwards (see SinkControl): each op goes to the part of
 * the broker that serves it, which answers the slot (now or later). */
static void broker_on_control_request(void *userdata, const PeerCreds *peer, SinkOwner owner,
                                      const Request *req, ControlSlot *slot) {
        Broker *b = userdata;

        switch (req->op) {
        case REQUEST_RUN:
        case REQUEST_CHILDREN:
        case REQUEST_KILL:
                supervisor_handle_request(b->supervisor, peer, owner, req, slot);
                break;
        case REQUEST_WATCH:
        case REQUEST_UNWATCH:
                watch_table_request(b->watches, peer, owner, req, slot);
                break;
        default:
                control_slot_fail(slot, req->op, PN_ERR_UNKNOWN_OP, "op \"%s\" is not served by this broker",
                                  request_op_to_string(req->op));
                break;
        }
}

/* A connection is gone: drop its watches and whatever else it held.
 * Supervised children are services and outlive it (see supervisor.h). */
static void broker_on_control_release(void *userdata, SinkOwner owner) {
        Broker *b = userdata;
        if (b->watches)
                watch_table_release(b->watches, owner);
}

/* A watch ended by itself (its process exited, or executed what its
 * watcher may not trace: reason): take its subscription away from the sink
 * that holds it. */
static void broker_on_watch_ended(void *userdata, SinkOwner owner, uint64_t tag, pid_t pid,
                                  const char *reason) {
        Broker *b = userdata;
        SinkOwner range = owner & ~(SINK_OWNER_SOCKET - 1);
        if (range == SINK_OWNER_SOCKET && b->sink_socket)
                sink_socket_drop_subscription(b->sink_socket, owner, tag, pid, reason);
        else if (range == SINK_OWNER_DBUS && b->sink_dbus)
                sink_dbus_drop_subscription(b->sink_dbus, owner, tag, pid, reason);
}

/* Wait statuses nobody registered for (orphans the broker adopted). */
static void broker_on_orphan_status(pid_t pid, int status, void *userdata) {
        Broker *b = userdata;
        /* A new thread of a ptrace-watched process can stop before its
         * parent's clone event tells its tid. */
        if (b->watches && watch_table_claim_status(b->watches, pid, status))
                return;
        if (b->supervisor)
                supervisor_handle_orphan_status(b->supervisor, pid, status);
}

/* --- supervised children --- */

static void broker_on_child_event(void *userdata, PnEvent *ev) {
        Broker *b = userdata;
        proctable_handle_other(b->table, ev, clock_ns(CLOCK_MONOTONIC), broker_emit, b);
}

/* Known to the table before its wait status can arrive, which may be
 * before the connector's fork event is read. */
static void broker_on_child_created(void *userdata, pid_t pid) {
        Broker *b = userdata;
        int r = proctable_track(b->table, pid, clock_ns(CLOCK_MONOTONIC));
        if (r < 0 && r != -ESRCH)
                log_warning_errno(r, "Failed to track supervised child %d in the process table, ignoring: %m",
                                  (int) pid);
}

static void broker_on_child_started(void *userdata, pid_t pid, const char *name, uid_t uid,
                                    uid_t requester, bool clone3) {
        (void) userdata;
        log_info("Started supervised child %s (pid %d, uid %u) for uid %u%s.", name, (int) pid,
                 (unsigned) uid, (unsigned) requester, clone3 ? "" : " (fork + pidfd_open: no clone3)");
}

static void broker_on_child_failed(void *userdata, const char *name, uid_t requester,
                                   const char *message) {
        (void) userdata;
        log_error("Failed to run %s for uid %u: %s", name, (unsigned) requester, message);
}

static void broker_on_child_ended(void *userdata, pid_t pid, const char *name, int status) {
        (void) userdata;
        if (WIFSIGNALED(status))
                log_info("Supervised child %s (pid %d) was killed by signal %d.", name, (int) pid,
                         WTERMSIG(status));
        else
                log_info("Supervised child %s (pid %d) exited with %d.", name, (int) pid,
                         WEXITSTATUS(status));
}

static void broker_on_watches_detached(void *userdata) {
        Broker *b = userdata;
        (void) sd_event_exit(b->event, 0);
}

static int broker_on_detach_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Broker *b = userdata;
        (void) s, (void) usec;
        log_warning("Tracees of stop watches were not all detached within a second; leaving them to the kernel.");
        return sd_event_exit(b->event, 0);
}

/* Shutdown: leave the loop once every tracee of a stop watch is detached,
 * so that no thread is left interrupted. The kernel lets them go through
 * the loop (wait statuses); at most a second. */
static int broker_exit_after_detach(Broker *b) {
        if (!b->watches || b->detach_timer ||
            watch_table_stop(b->watches, broker_on_watches_detached) != WATCH_TABLE_E_PENDING ||
            sd_event_add_time_relative(b->event, &b->detach_timer, CLOCK_MONOTONIC, 1000000, 0,
                                       broker_on_detach_timeout, b) < 0)
                return sd_event_exit(b->event, 0);
        return 0;
}

static void broker_on_children_gone(void *userdata) {
        Broker *b = userdata;
        log_info("Every supervised child has exited; shutting down.");
        (void) broker_exit_after_detach(b);
}

static int broker_on_stop_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Broker *b = userdata;
        (void) s;
        (void) usec;
        log_warning("%u supervised processes outlived StopTimeout=%us; killing them.",
                    supervisor_count(b->supervisor), b->config->run_stop_timeout);
        (void) supervisor_stop(b->supervisor, SIGKILL);
        return broker_exit_after_detach(b);
}

/* The signal a patched kernel sends for PR_SET_PREDUMP_SIG or PR_SET_ADOPTSIG. */
static int broker_on_prctl_signal(sd_event_source *s, const struct signalfd_siginfo *si,
                                  void *userdata) {
        Broker *b = userdata;
        uint64_t now = clock_ns(CLOCK_MONOTONIC);
        PnEvent ev;
        bool ok;

        if (s == b->sig_predump)
                ok = supervisor_accept_predump_signal(b->supervisor, si, now, &ev);
        else
                ok = supervisor_accept_adopt_signal(b->supervisor, si, b->pid, now, &ev);
        if (!ok) {
                log_debug("Refusing signal %u from pid %u (code %d, status %d): not the kernel's %s "
                          "notification.", si->ssi_signo, si->ssi_pid, si->ssi_code, si->ssi_status,
                          s == b->sig_predump ? "predump" : "adoption");
                return 0;
        }
        proctable_handle_other(b->table, &ev, now, broker_emit, b);
        dispatcher_flush(b->dispatcher);
        return 0;
}

static SupervisorOptions broker_supervisor_options(const Config *c) {
        return (SupervisorOptions){
                .enabled = c->run_enabled,
                .output = c->run_output,
                .log_directory = c->run_log_directory,
                .max_children = c->max_children,
                .max_children_per_uid = c->max_children_per_uid,
        };
}

/* Subreaper only when children may be run: then orphans of children are
 * the broker's to reap and report. */
static void broker_set_subreaper(Broker *b) {
        if (prctl(PR_SET_CHILD_SUBREAPER, b->config->run_enabled ? 1 : 0, 0, 0, 0) < 0)
                log_warning_errno(errno, "Failed to %s child subreaper, ignoring: %m",
                                  b->config->run_enabled ? "become" : "stop being");
}

static int broker_add_prctl_signal(Broker *b, sd_event_source **ret, int sig, const char *name) {
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, sig);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        r = sd_event_add_signal(b->event, ret, sig, broker_on_prctl_signal, b);
        if (r < 0)
                return log_error_errno(r, "Failed to handle signal %d for %s: %m", sig, name);
        (void) sd_event_source_set_description(*ret, name);
        return 0;
}

/* One patched-kernel prctl: its signal handled, the prctl called on the
 * broker itself, the table told to merge its reports with the connector's. */
static int broker_setup_prctl(Broker *b, sd_event_source **src, int number, int sig, PnEventType type) {
        const char *key = type == PN_EVENT_PREDUMP ? "PredumpSignalPrctl" : "AdoptSignalPrctl";
        const char *what = type == PN_EVENT_PREDUMP ? "predumps" : "adoptions";
        int r;

        r = broker_add_prctl_signal(b, src, sig, type == PN_EVENT_PREDUMP ? "predump-signal" : "adopt-signal");
        if (r < 0)
                return r;
        if (prctl(number, sig, 0, 0, 0) < 0) {
                log_error_errno(errno, "Failed to call prctl(%d, %d) (%s=, a patched kernel's %s), ignoring: "
                                "%m; %s come from the connector only", number, sig, key,
                                type == PN_EVENT_PREDUMP ? "PR_SET_PREDUMP_SIG" : "PR_SET_ADOPTSIG", what);
                return 0;
        }
        proctable_set_prctl(b->table, b->pid, type);
        log_info("Called prctl(%d, %d) (%s=): %s are also signalled.", number, sig, key, what);
        return 0;
}

/* Patched kernels only, and only as configured: never probed. Both are the
 * broker's own settings about its children (the kernel reads the parent's,
 * and execve clears them): set once, on the broker. The table then holds
 * the connector's report of a child's crash or of an orphan's adoption
 * briefly for the signal, to publish one event naming both sources. */
static int broker_setup_prctls(Broker *b) {
        Config *c = b->config;
        int r = 0;

        if (c->predump_prctl)
                r = broker_setup_prctl(b, &b->sig_predump, c->predump_prctl, c->predump_signal, PN_EVENT_PREDUMP);
        if (r >= 0 && c->adopt_prctl)
                r = broker_setup_prctl(b, &b->sig_adopt, c->adopt_prctl, c->adopt_signal, PN_EVENT_ADOPT);
        return r;
}

/* --- set-up --- */

static void broker_probe_features(Broker *b) {
        int fd = pn_pidfd_open(getpid(), 0);
        int sp[2];

        b->features.connector_filter = cnproc_get_stats(b->cnproc)->filter;
        b->features.pidfd = fd >= 0;
        if (fd >= 0) {
                struct pidfd_info info = { .mask = PIDFD_INFO_PID };
                b->features.pidfd_info = ioctl(fd, PIDFD_GET_INFO, &info) == 0;
                close(fd);
        }
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0) {
                int pfd = -1;
                socklen_t len = sizeof(pfd);
                b->features.peer_pidfd = getsockopt(sp[0], SOL_SOCKET, SO_PEERPIDFD, &pfd, &len) == 0;
                if (pfd >= 0)
                        close(pfd);
                close(sp[0]);
                close(sp[1]);
        }
}

static gid_t broker_lookup_group(const char *name) {
        struct group *g;
        if (!name || !*name)
                return (gid_t) -1;
        g = getgrnam(name);
        if (!g) {
                log_info("Group \"%s\" does not exist: only root sees every process.", name);
                return (gid_t) -1;
        }
        return g->gr_gid;
}

static SinkDbusOptions broker_dbus_options(const Config *c) {
        return (SinkDbusOptions){
                .max_peers = c->max_clients,
                .max_subscriptions = c->max_subscriptions,
                /* Each subscriber's own queue, as on the socket. */
                .queue_bytes = c->client_queue_bytes,
        };
}

static WatchTableOptions broker_watch_options(const Config *c) {
        return (WatchTableOptions){
                .max_per_owner = c->max_watches,
                .max_per_uid = c->max_watches_per_uid,
                .max_traced_threads = c->max_traced_threads,
        };
}

/* The descriptors the limits allow, against RLIMIT_NOFILE: each client a
 * socket and, when it asks for signals, a pidfd; the reserve (root's); a
 * margin for the broker's own (connector, bus, signalfd, timers, /proc
 * reads). Watches come on top, bounded per user and refused to all but
 * root once only the reserve is left (fdreserve.h). */
#define BROKER_OWN_FDS 64

static void broker_check_fd_limit(const Config *c) {
        uint64_t need = 2ull * c->max_clients + FDRESERVE_SIZE + BROKER_OWN_FDS;
        if (need > fdreserve_limit())
                log_warning("RLIMIT_NOFILE is %u, but MaxClients=%u needs up to %llu descriptors (2 a "
                            "client, %d kept for root, %d for the broker): users may be refused before "
                            "MaxClients; raise LimitNOFILE= or lower MaxClients=.",
                            fdreserve_limit(), c->max_clients, (unsigned long long) need, FDRESERVE_SIZE,
                            BROKER_OWN_FDS);
}

/* Out of descriptors at accept: logged at most every 10 s, with a count. */
static void broker_on_fd_shortage(void *userdata, int error) {
        Broker *b = userdata;
        uint64_t now = clock_ns(CLOCK_MONOTONIC);

        b->fd_shortages++;
        if (b->fd_shortage_logged_ns && now - b->fd_shortage_logged_ns < 10 * 1000000000ull)
                return;
        log_warning_errno(error, "Cannot accept connections: %m (RLIMIT_NOFILE %u); paused until a client "
                          "leaves or %d ms pass (%llu times since the last message).", fdreserve_limit(),
                          SINK_SOCKET_ACCEPT_RETRY_MS, (unsigned long long) b->fd_shortages);
        b->fd_shortage_logged_ns = now;
        b->fd_shortages = 0;
}

static void broker_apply_config(Broker *b) {
        Config *c = b->config;
        SinkSocketOptions so = {
                .max_clients = c->max_clients,
                .max_subscriptions = c->max_subscriptions,
                .queue_bytes = c->client_queue_bytes,
        };

        log_set_max_level(c->log_level);
        broker_check_fd_limit(c);
        policy_init(&b->policy, broker_lookup_group(c->group));
        if (b->supervisor) {
                SupervisorOptions o = broker_supervisor_options(c);
                if (supervisor_set_options(b->supervisor, &o) < 0)
                        log_warning("Out of memory applying [Run] settings; keeping the old ones.");
                broker_set_subreaper(b);
        }
        uidlimits_set_max(b->limits, UID_RESOURCE_CLIENTS, c->max_clients_per_uid);
        uidlimits_set_max(b->limits, UID_RESOURCE_SUBSCRIPTIONS, c->max_subscriptions_per_uid);
        uidlimits_set_max(b->limits, UID_RESOURCE_WATCHES, c->max_watches_per_uid);
        if (b->sink_socket)
                sink_socket_set_options(b->sink_socket, &so);
        if (b->watches) {
                WatchTableOptions wo = broker_watch_options(c);
                watch_table_set_options(b->watches, &wo);
        }
        if (b->sink_dbus) {
                SinkDbusOptions dbo = broker_dbus_options(c);
                sink_dbus_set_options(b->sink_dbus, &dbo);
        }
}

static void broker_connect_bus(Broker *b);

static int broker_reload(Broker *b) {
        Config *c = NULL;
        char err[4096];
        int r;

        (void) sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%llu",
                          (unsigned long long) (clock_ns(CLOCK_MONOTONIC) / 1000));
        r = config_new(&c);
        if (r >= 0 && b->config_path)
                r = config_load_file(c, b->config_path, streq(b->config_path, CONFIG_DEFAULT_PATH), err,
                                     sizeof(err));
        if (r < 0) {
                char prefix[PATH_MAX + 64];
                snprintf(prefix, sizeof(prefix), "Failed to reload %s, keeping the running "
                         "configuration: ", b->config_path);
                log_lines(LOG_ERR, prefix, r == -ENOMEM ? "out of memory" : err);
                config_free(c);
        } else {
                /* Flags given at start keep overriding the file. */
                free(c->socket_path);
                c->socket_path = strdup(b->config->socket_path);
                free(c->dbus);
                c->dbus = strdup(b->config->dbus);
                c->override_receive_buffer = b->config->override_receive_buffer;
                c->override_log_level = b->config->override_log_level;
                config_apply_overrides(c);
                if (c->kernel_events != b->config->kernel_events)
                        log_warning("Connector Events= changes take effect at restart.");
                if (c->journal != b->config->journal) {
                        log_warning("[Broker] Journal= changes take effect at restart.");
                        c->journal = b->config->journal;
                }
                if (c->predump_prctl != b->config->predump_prctl ||
                    c->predump_signal != b->config->predump_signal ||
                    c->adopt_prctl != b->config->adopt_prctl || c->adopt_signal != b->config->adopt_signal) {
                        log_warning("[Run] *Prctl= and *Signal= changes take effect at restart.");
                        c->predump_prctl = b->config->predump_prctl;
                        c->predump_signal = b->config->predump_signal;
                        c->adopt_prctl = b->config->adopt_prctl;
                        c->adopt_signal = b->config->adopt_signal;
                }
                if (c->receive_buffer != b->config->receive_buffer) {
                        r = cnproc_set_receive_buffer(b->cnproc, c->receive_buffer);
                        if (r < 0)
                                log_warning_errno(r, "Failed to set the connector receive buffer, ignoring: %m");
                }
                if (caps_needed(c) & ~b->caps) {
                        char names[256];
                        caps_format(caps_needed(c) & ~b->caps, names, sizeof(names));
                        log_warning("The new configuration needs %s, dropped at start: restart the broker.",
                                    names);
                }
                config_free(b->config);
                b->config = c;
                broker_apply_config(b);
                broker_connect_bus(b); /* a bus that was missing may be there now */
                log_info("Reloaded configuration%s%s.", b->config_path ? " from " : "",
                         b->config_path ? b->config_path : "");
        }
        (void) sd_notify(false, "READY=1");
        return 0;
}

static int broker_on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Broker *b = userdata;
        (void) s;
        if (si->ssi_signo == SIGHUP)
                return broker_reload(b);
        if (b->stop_timer) {
                log_info("Received SIG%s again; not waiting for children.",
                         si->ssi_signo == SIGTERM ? "TERM" : "INT");
                return sd_event_exit(b->event, 0);
        }
        log_info("Received SIG%s, shutting down.", si->ssi_signo == SIGTERM ? "TERM" : "INT");
        (void) sd_notify(false, "STOPPING=1");
        /* Supervised children and adopted orphans are stopped with the
         * broker, as a service manager would: SIGTERM, then SIGKILL after
         * StopTimeout=. Events keep flowing meanwhile. */
        if (b->supervisor && supervisor_stop(b->supervisor, SIGTERM) > 0 &&
            b->config->run_stop_timeout > 0) {
                log_info("Sent SIGTERM to %u supervised processes; waiting up to %us.",
                         supervisor_count(b->supervisor), b->config->run_stop_timeout);
                if (sd_event_add_time_relative(b->event, &b->stop_timer, CLOCK_MONOTONIC,
                                               (uint64_t) b->config->run_stop_timeout * 1000000u, 0,
                                               broker_on_stop_timer, b) >= 0)
                        return 0;
                (void) supervisor_stop(b->supervisor, SIGKILL);
        }
        return broker_exit_after_detach(b);
}

static void read_boot_id(char buf[static 40]) {
        FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
        buf[0] = 0;
        if (f) {
                if (fgets(buf, 40, f))
                        buf[strcspn(buf, "\n")] = 0;
                fclose(f);
        }
}

static void make_instance_id(char buf[static 40]) {
        uint8_t raw[16] = { 0 };
        if (getrandom(raw, sizeof(raw), 0) != (ssize_t) sizeof(raw)) {
                uint64_t t = clock_ns(CLOCK_REALTIME) ^ (uint64_t) getpid();
                memcpy(raw, &t, sizeof(t));
        }
        for (size_t i = 0; i < sizeof(raw); i++)
                snprintf(buf + 2 * i, 3, "%02x", raw[i]);
}

static int add_timer(Broker *b, sd_event_source **ret, sd_event_time_handler_t cb, const char *name) {
        int r = sd_event_add_time(b->event, ret, CLOCK_MONOTONIC, 0, 0, cb, b);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(*ret, name);
        return sd_event_source_set_enabled(*ret, SD_EVENT_OFF);
}

/* The listening socket passed by systemd (procnotifyd.socket), or -1. */
static int broker_activation_fd(void) {
        int n = sd_listen_fds(true);
        for (int i = 0; i < n; i++)
                if (sd_is_socket_unix(SD_LISTEN_FDS_START + i, SOCK_STREAM, 1, NULL, 0) > 0)
                        return SD_LISTEN_FDS_START + i;
        return -1;
}

/* READY=1 once everything asked for serves: the socket, and the bus name
 * unless the bus refused it (then the broker serves without). */
static void broker_check_ready(Broker *b) {
        if (b->notified || !b->running || b->dbus_pending)
                return;
        b->notified = true;
        (void) sd_notifyf(false, "READY=1\nSTATUS=Serving %s%s", b->config->socket_path,
                          b->sink_dbus ? " and " DBUS_NAME : "");
}

static void broker_on_dbus_ready(void *userdata) {
        Broker *b = userdata;
        if (b->dbus_away)
                log_info("D-Bus: connected again, serving %s.", DBUS_NAME);
        b->dbus_away = false;
        b->dbus_pending = false;
        broker_check_ready(b);
}

static int broker_on_dbus_drop(sd_event_source *s, void *userdata) {
        Broker *b = userdata;
        (void) s;
        b->sink_dbus = sink_dbus_free(b->sink_dbus);
        b->dbus_drop = sd_event_source_disable_unref(b->dbus_drop);
        return 0;
}

/* The sink lost its bus or name before it ever served: say so once, and
 * drop it outside its own callbacks. The JSON socket goes on. */
static void broker_on_dbus_lost(void *userdata, const char *why) {
        Broker *b = userdata;
        if (b->dbus_drop)
                return;
        log_warning("D-Bus: %s; serving the JSON socket only.", why);
        b->dbus_pending = false;
        broker_check_ready(b);
        if (sd_event_add_defer(b->event, &b->dbus_drop, broker_on_dbus_drop, b) < 0)
                b->sink_dbus = NULL; /* leak rather than free in a bus callback */
}

/* The sink lost the bus it served on: it connects again by itself. Said
 * once per outage. */
static void broker_on_dbus_disconnected(void *userdata, const char *why) {
        Broker *b = userdata;
        if (b->dbus_away)
                return;
        b->dbus_away = true;
        log_warning("D-Bus: %s; connecting again.", why);
}

static int broker_open_bus(Broker *b, sd_bus **ret) {
        const char *how = b->config->dbus;
        sd_bus *bus = NULL;
        int r;

        if (streq(how, "system"))
                r = sd_bus_open_system(&bus);
        else {
                r = sd_bus_new(&bus);
                if (r >= 0)
                        r = sd_bus_set_address(bus, how);
                if (r >= 0)
                        r = sd_bus_set_bus_client(bus, true);
                if (r >= 0)
                        r = sd_bus_start(bus);
        }
        if (r < 0) {
                sd_bus_flush_close_unref(bus);
                return r;
        }
        *ret = bus;
        return 0;
}

static int broker_on_dbus_connect(void *userdata, sd_bus **ret) {
        return broker_open_bus(userdata, ret);
}

static int broker_on_bus_retry(sd_event_source *s, uint64_t usec, void *userdata);

/* Serve D-Bus. Without a bus to connect to (none runs yet, as on a machine
 * without systemd, or it was restarted without one), say so once and try
 * again every BROKER_BUS_RETRY_USEC and at every reload: the broker serves
 * D-Bus from the moment a bus appears, with nobody restarting it. */
#define BROKER_BUS_RETRY_USEC (2 * 1000000ULL)

static void broker_connect_bus(Broker *b) {
        const char *how = b->config->dbus;
        sd_bus *bus = NULL;
        int r;

        if (streq(how, "none") || b->sink_dbus)
                return;
        r = broker_open_bus(b, &bus);
        if (r < 0) {
                if (!b->bus_missing_told)
                        log_notice("No D-Bus at %s (%s): serving the JSON socket only; D-Bus is served "
                                   "as soon as the bus appears.",
                                   streq(how, "system") ? "the system bus" : how, strerror(-r));
                b->bus_missing_told = true;
                if (!b->bus_retry && sd_event_add_time_relative(b->event, &b->bus_retry, CLOCK_MONOTONIC,
                                                                 BROKER_BUS_RETRY_USEC, 0,
                                                                 broker_on_bus_retry, b) >= 0)
                        (void) sd_event_source_set_description(b->bus_retry, "bus-retry");
                else if (b->bus_retry) {
                        (void) sd_event_source_set_time_relative(b->bus_retry, BROKER_BUS_RETRY_USEC);
                        (void) sd_event_source_set_enabled(b->bus_retry, SD_EVENT_ONESHOT);
                }
                return;
        }
        if (b->bus_missing_told)
                log_info("D-Bus at %s appeared.", streq(how, "system") ? "the system bus" : how);
        b->bus_missing_told = false;
        SinkDbusOptions o = broker_dbus_options(b->config);
        SinkDbusCallbacks cb = {
                .connect = broker_on_dbus_connect,
                .on_ready = broker_on_dbus_ready,
                .on_lost = broker_on_dbus_lost,
                .on_disconnected = broker_on_dbus_disconnected,
        };
        r = sink_dbus_new(&b->sink_dbus, bus, b->event, &b->sink_ctx, &o, &cb, b);
        if (r < 0) {
                log_warning_errno(r, "Failed to serve %s on D-Bus, serving the JSON socket only: %m",
                                  DBUS_NAME);
                return;
        }
        b->dbus_pending = true;
        log_info("Serving %s on %s.", DBUS_NAME, streq(how, "system") ? "the system bus" : how);
}

static int broker_on_bus_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Broker *b = userdata;
        (void) s;
        (void) usec;
        broker_connect_bus(b);
        return 0;
}

/*
 * Everything that needs more than the broker keeps is done (the sockets are
 * bound, the bus connected, the connector subscribed): keep only what
 * caps_needed() says, and stay uid 0 (see caps.h, README "Least privilege").
 * Failing to drop is fatal: never serve with more than documented.
 */
static int broker_drop_privileges(Broker *b) {
        CapMask want = caps_needed(b->config);
        CapState st;
        char names[256];
        int r;

        r = caps_drop_to(want);
        if (r < 0)
                return log_error_errno(r, "Failed to drop capabilities: %m");
        r = caps_get_state(&st);
        if (r < 0)
                return log_error_errno(r, "Failed to read our capabilities: %m");
        b->caps = st.effective;
        if (want & ~st.effective) {
                caps_format(want & ~st.effective, names, sizeof(names));
                log_warning("Started without %s: features that need it will fail.", names);
        }
        caps_format(st.effective, names, sizeof(names));
        log_info("Keeping capabilities %s; every other capability dropped%s.", names,
                 st.bounding & ~st.effective ? " (the bounding set could not be narrowed)"
                                             : ", bounding set too");
        return 0;
}

int broker_new(Broker **ret, Config *config, const char *config_path) {
        Broker *b = calloc(1, sizeof(*b));
        sigset_t mask;
        int r;

        if (!b) {
                config_free(config);
                return log_error_errno(ENOMEM, "Out of memory.");
        }
        b->config = config;
        b->config_path = config_path ? strdup(config_path) : NULL;
        b->started_ns = clock_ns(CLOCK_MONOTONIC);
        read_boot_id(b->boot_id);
        make_instance_id(b->instance_id);
        r = uidlimits_new(&b->limits);
        if (r < 0) {
                free(b->config_path);
                free(b);
                config_free(config);
                return log_error_errno(r, "Out of memory.");
        }
        broker_apply_config(b);

        r = sd_event_default(&b->event);
        if (r < 0)
                goto fail_log;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        if ((r = sd_event_add_signal(b->event, &b->sig_term, SIGTERM, broker_on_signal, b)) < 0 ||
            (r = sd_event_add_signal(b->event, &b->sig_int, SIGINT, broker_on_signal, b)) < 0 ||
            (r = sd_event_add_signal(b->event, &b->sig_hup, SIGHUP, broker_on_signal, b)) < 0)
                goto fail_log;
        if ((r = add_timer(b, &b->pending_timer, broker_on_pending_timer, "proctable-pending")) < 0 ||
            (r = add_timer(b, &b->overrun_timer, broker_on_overrun_timer, "overrun-coalesce")) < 0 ||
            (r = add_timer(b, &b->resync_timer, broker_on_resync_timer, "proctable-resync")) < 0)
                goto fail_log;
        r = sd_event_add_post(b->event, &b->post, broker_on_post, b);
        if (r < 0)
                goto fail_log;

        r = reaper_new(&b->reaper, b->event, broker_on_orphan_status, b);
        if (r < 0)
                goto fail_log;
        b->pid = getpid();
        SupervisorOptions svo = broker_supervisor_options(b->config);
        SupervisorCallbacks svc = {
                .on_event = broker_on_child_event,
                .on_created = broker_on_child_created,
                .on_started = broker_on_child_started,
                .on_failed = broker_on_child_failed,
                .on_ended = broker_on_child_ended,
                .on_empty = broker_on_children_gone,
        };
        r = supervisor_new(&b->supervisor, b->reaper, &svo, &svc, b);
        if (r < 0)
                goto fail_log;
        broker_set_subreaper(b);
        r = dispatcher_new(&b->dispatcher);
        if (r < 0)
                goto fail_log;
        r = procfs_reader_init(&b->reader, NULL);
        if (r < 0) {
                log_error_errno(r, "Failed to open /proc: %m");
                goto fail;
        }
        r = proctable_new(&b->table, &b->reader, b->config->max_processes);
        if (r < 0)
                goto fail_log;
        r = broker_setup_prctls(b);
        if (r < 0)
                goto fail;

        CnprocOptions co = {
                .receive_buffer = b->config->receive_buffer,
                .kernel_events = b->config->kernel_events,
        };
        CnprocCallbacks cb = {
                .on_event = broker_on_kernel_event,
                .on_loss = broker_on_kernel_loss,
                .on_batch_end = broker_on_kernel_batch_end,
        };
        r = cnproc_new(&b->cnproc, b->event, &co, &cb, b);
        if (r < 0) {
                log_error_errno(r, "Failed to subscribe to the proc connector%s: %m",
                                r == -EPERM ? " (needs CAP_NET_ADMIN before Linux 6.6; run as root)" : "");
                goto fail;
        }
        const CnprocStats *cs = cnproc_get_stats(b->cnproc);
        log_info("Subscribed to the proc connector (%s, receive buffer %llu KiB).",
                 cs->filter ? "kernel event filter available" : "no kernel event filter: all events",
                 (unsigned long long) cs->receive_buffer / 1024);
        if (cs->receive_buffer < b->config->receive_buffer)
                log_warning("The connector receive buffer is smaller than configured (no CAP_NET_ADMIN?).");

        r = proctable_resync(b->table, clock_ns(CLOCK_MONOTONIC), broker_emit, b);
        if (r < 0) {
                log_error_errno(r, "Failed to read the process table from /proc: %m");
                goto fail;
        }
        b->last_resync_ns = clock_ns(CLOCK_MONOTONIC);
        broker_probe_features(b);

        WatchTableOptions wo = broker_watch_options(b->config);
        WatchTableCallbacks wcb = { .emit = broker_emit, .drop_subscription = broker_on_watch_ended };
        r = watch_table_new(&b->watches, b->event, b->reaper, b->table, &b->reader, &wo, &wcb, b);
        if (r < 0)
                goto fail_log;

        b->sink_ctx = (SinkContext){
                .policy = &b->policy,
                .limits = b->limits,
                .filter = { .is_descendant = broker_is_descendant, .userdata = b },
                .dispatcher = b->dispatcher,
                .version = PROCNOTIFY_VERSION,
                .boot_id = b->boot_id,
                .instance_id = b->instance_id,
                .features = &b->features,
                .follow_new = broker_follow_new,
                .control = {
                        .request = broker_on_control_request,
                        .release = broker_on_control_release,
                },
                .visit_stats = broker_visit_stats,
                .userdata = b,
        };
        SinkSocketOptions so = {
                .max_clients = b->config->max_clients,
                .max_subscriptions = b->config->max_subscriptions,
                .queue_bytes = b->config->client_queue_bytes,
        };
        int afd = broker_activation_fd();
        r = sink_socket_new(&b->sink_socket, b->event, &b->sink_ctx, &so, b->config->socket_path, afd);
        if (r >= 0)
                sink_socket_set_on_fd_shortage(b->sink_socket, broker_on_fd_shortage, b);
        if (r < 0) {
                log_error_errno(r, "Failed to listen on %s: %m%s", b->config->socket_path,
                                r == -EADDRINUSE ? " (another procnotifyd is serving it)"
                                : r == -EEXIST   ? " (a file that is not a socket is in the way)"
                                : r == -EPERM    ? " (its directory must be the broker's own, writable "
                                                   "by no group or other user)"
                                                 : "");
                goto fail;
        }
        log_info("Serving JSON protocol v1 on %s%s; %llu processes known.",
                 afd >= 0 ? "the socket systemd passed" : b->config->socket_path,
                 afd >= 0 ? "" : "", (unsigned long long) proctable_get_stats(b->table)->entries);

        if (b->config->journal) {
                r = sink_journal_new(&b->sink_journal, b->dispatcher, SINK_JOURNAL_SOCKET);
                if (r < 0)
                        goto fail_log;
        }

        broker_connect_bus(b);
        r = broker_drop_privileges(b);
        if (r < 0)
                goto fail;
        *ret = b;
        return 0;

fail_log:
        log_error_errno(r, "Failed to set up the event loop: %m");
fail:
        broker_free(b);
        return r;
}

Broker *broker_free(Broker *b) {
        if (!b)
                return NULL;
        sink_socket_free(b->sink_socket);
        sink_journal_free(b->sink_journal);
        sink_dbus_free(b->sink_dbus);
        sd_event_source_disable_unref(b->dbus_drop);
        sd_event_source_disable_unref(b->bus_retry);
        /* Before the reaper: detaching tracees needs their statuses. */
        b->watches = watch_table_free(b->watches);
        cnproc_free(b->cnproc);
        supervisor_free(b->supervisor);
        reaper_free(b->reaper);
        proctable_free(b->table);
        procfs_reader_done(&b->reader);
        dispatcher_free(b->dispatcher);
        sd_event_source_disable_unref(b->sig_term);
        sd_event_source_disable_unref(b->sig_int);
        sd_event_source_disable_unref(b->sig_hup);
        sd_event_source_disable_unref(b->sig_predump);
        sd_event_source_disable_unref(b->sig_adopt);
        sd_event_source_disable_unref(b->stop_timer);
        sd_event_source_disable_unref(b->detach_timer);
        sd_event_source_disable_unref(b->pending_timer);
        sd_event_source_disable_unref(b->overrun_timer);
        sd_event_source_disable_unref(b->resync_timer);
        sd_event_source_disable_unref(b->post);
        sd_event_unref(b->event);
        config_free(b->config);
        uidlimits_free(b->limits);
        free(b->config_path);
        free(b);
        return NULL;
}

int broker_run(Broker *b) {
        int r;

        b->running = true;
        broker_check_ready(b);
        r = sd_event_loop(b->event);
        if (r < 0) {
                log_error_errno(r, "Event loop failed: %m");
                return EXIT_FAILURE;
        }
        return r;
}
