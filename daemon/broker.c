/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Broker: see broker.h. This file owns the event loop: it
 * wires the sources to the process table, the dispatcher and the sinks,
 * serves the control glue, handles SIGTERM/SIGINT/SIGHUP, starts up and
 * shuts down. Reload, the bus connection, the privilege drop, the prctl
 * signals and the status figures have files of their own (broker-*.c, with
 * the shared state in broker-internal.h).
 *
 * Start-up order matters: the connector is subscribed before the process
 * table is seeded from /proc, so that no process can slip between the two
 * (events about processes the seed already saw are reconciled by start time).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "broker-internal.h"
#include "common/clock.h"
#include "common/linux-compat.h"
#include "common/log.h"
#include "fdreserve.h"
#include "protocol/reply.h"
#include "subscriber-set.h"

#ifndef PROCNOTIFY_VERSION
#define PROCNOTIFY_VERSION "0.0.0"
#endif

#define OVERRUN_MIN_INTERVAL_NS (100 * 1000 * 1000ull)
#define RESYNC_MIN_INTERVAL_NS (1000 * 1000 * 1000ull)

/* --- publishing --- */

void broker_emit(PnEvent *ev, void *userdata) {
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

/* Without the connector the broker would serve silence as if nothing ran:
 * exit non-zero instead, so that the service manager restarts it
 * (Restart=on-failure) with a fresh socket and a fresh table. */
static void broker_on_kernel_lost(void *userdata, int error) {
        Broker *b = userdata;
        log_error_errno(error, "Failed to re-create the proc connector socket: %m; exiting so that "
                        "the broker is restarted.");
        (void) sd_notify(false, "STOPPING=1");
        (void) sd_event_exit(b->event, EXIT_FAILURE);
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

/* The listening socket passed by systemd (procnotifyd.socket) in *ret_fd,
 * or -1 there when none was. 0, or the error of reading $LISTEN_FDS. */
static int broker_activation_fd(int *ret_fd) {
        int n = sd_listen_fds(true);

        *ret_fd = -1;
        if (n < 0)
                return n;
        for (int i = 0; i < n; i++)
                if (sd_is_socket_unix(SD_LISTEN_FDS_START + i, SOCK_STREAM, 1, NULL, 0) > 0) {
                        *ret_fd = SD_LISTEN_FDS_START + i;
                        break;
                }
        return 0;
}

/* READY=1 once everything asked for serves: the socket, and the bus name
 * unless the bus refused it (then the broker serves without). */
void broker_check_ready(Broker *b) {
        if (b->notified || !b->running || b->dbus_pending)
                return;
        b->notified = true;
        (void) sd_notifyf(false, "READY=1\nSTATUS=Serving %s%s", b->config->socket_path,
                          b->sink_dbus ? " and " DBUS_NAME : "");
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
                .on_fatal = broker_on_kernel_lost,
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
        /* Every sink's subscribers, fed by the dispatcher. */
        r = subscriber_set_new(&b->sink_ctx.subscribers, b->dispatcher, &b->sink_ctx.filter);
        if (r < 0)
                goto fail_log;
        SinkSocketOptions so = {
                .max_clients = b->config->max_clients,
                .max_subscriptions = b->config->max_subscriptions,
                .queue_bytes = b->config->client_queue_bytes,
        };
        int afd;
        r = broker_activation_fd(&afd);
        if (r < 0)
                log_warning_errno(r, "Failed to read the sockets passed by the service manager "
                                  "($LISTEN_FDS), binding %s instead: %m", b->config->socket_path);
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
        b->sink_ctx.subscribers = subscriber_set_free(b->sink_ctx.subscribers);
        sd_event_source_disable_unref(b->dbus_drop);
        sd_event_source_disable_unref(b->bus_retry);
        /* A Group= lookup still blocked in NSS is left to its thread. */
        b->group_lookup = lookup_thread_free(b->group_lookup);
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
