/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Supervisor: the broker's own children, started on request (op "run"),
 * and the orphans they leave that the broker adopts as subreaper.
 *
 * It serves the ops run, children and kill (policy: POLICY_ACTION_RUN, root
 * and the configured group only), starts each child through spawn.c, owns
 * its pidfd, and turns the wait statuses the reaper collects (the child's
 * own, registered with reaper_watch_add, and the adopted orphans', through
 * the broker's fallback) into stop, continue and exit events with source
 * "child", which the broker publishes through the process table (one exit
 * per process, merged with the connector's).
 *
 * Children are services: they outlive the connection that started them,
 * are listed by "children" and stopped by "kill" (root, or the user they run
 * as), and are bounded in number (MaxChildren, MaxChildrenPerUser per
 * requesting uid, root exempt). At shutdown the broker asks the supervisor
 * to signal every child and adopted orphan (supervisor_stop).
 *
 * No logging here: what the broker should log comes out through the
 * callbacks.
 */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/signalfd.h>
#include <sys/types.h>

#include "procnotify/event.h"
#include "reaper.h"
#include "sink-context.h"
#include "stats.h"

typedef struct Supervisor Supervisor;

typedef struct SupervisorOptions {
        bool enabled;
        int output;                /* CONFIG_RUN_OUTPUT_* */
        const char *log_directory; /* copied */
        unsigned max_children;
        unsigned max_children_per_uid;
} SupervisorOptions;

typedef struct SupervisorCallbacks {
        /* An event of a child or adopted orphan, from its wait status
         * (source "child"): to be published through the process table. */
        void (*on_event)(void *userdata, PnEvent *ev);
        /* A child process exists now (exec'd or not): the broker tracks it
         * in the process table before its wait status can arrive. */
        void (*on_created)(void *userdata, pid_t pid);
        /* A child was started and exec'd (for the log). */
        void (*on_started)(void *userdata, pid_t pid, const char *name, uid_t uid,
                           uid_t requester, bool clone3);
        /* A run request failed after the checks (spawn or exec failed). */
        void (*on_failed)(void *userdata, const char *name, uid_t requester, const char *message);
        /* A child ended (status: raw wait status). */
        void (*on_ended)(void *userdata, pid_t pid, const char *name, int status);
        /* While stopping: the last child and orphan is gone. */
        void (*on_empty)(void *userdata);
} SupervisorCallbacks;

typedef struct SupervisorStats {
        uint64_t children;   /* now */
        uint64_t adopted;    /* orphans tracked now */
        uint64_t started;
        uint64_t failed;
        uint64_t ended;
        uint64_t orphans_reaped;
        uint64_t refused_signals; /* predump/adopt signals not from the kernel (both kinds) */
        /* A patched kernel's PR_SET_PREDUMP_SIG and PR_SET_ADOPTSIG signals:
         * accepted (authenticated) and refused (kill(), sigqueue(), or si_pid
         * not what the kernel would name). */
        uint64_t predump_signals_accepted, predump_signals_refused;
        uint64_t adopt_signals_accepted, adopt_signals_refused;
} SupervisorStats;

int supervisor_new(Supervisor **ret, Reaper *reaper, const SupervisorOptions *o,
                   const SupervisorCallbacks *cb, void *userdata);
/* Closes the pidfds; leaves the processes alone (see supervisor_stop). */
Supervisor *supervisor_free(Supervisor *s);
int supervisor_set_options(Supervisor *s, const SupervisorOptions *o);

/* Serve REQUEST_RUN, REQUEST_CHILDREN or REQUEST_KILL and answer slot:
 * children and kill at once; run once the child has reached exec (or
 * failed before), from an event of the loop (the user is looked up off
 * the loop, the child's report comes through a pipe): nothing waits. A run
 * with "follow" gives the requester its subscription through the slot as
 * soon as the child exists, so that none of its events is missed. */
void supervisor_handle_request(Supervisor *s, const PeerCreds *peer, SinkOwner owner,
                               const Request *req, ControlSlot *slot);

/* A wait status of a pid nobody registered: an adopted orphan's. */
void supervisor_handle_orphan_status(Supervisor *s, pid_t pid, int status);
/* The process table saw pid re-parented to the broker: track it (pidfd),
 * so that it is listed and signalled at shutdown. uid: its real uid or
 * UINT32_MAX. */
void supervisor_adopted(Supervisor *s, pid_t pid, uint32_t uid);

/* Signal every child and adopted orphan (through pidfds; stopped ones are
 * also sent SIGCONT) and refuse new runs. Returns how many processes were
 * signalled. */
unsigned supervisor_stop(Supervisor *s, int sig);
/* Children plus tracked orphans alive. */
unsigned supervisor_count(const Supervisor *s);


const SupervisorStats *supervisor_get_stats(const Supervisor *s);
void supervisor_visit_stats(Supervisor *s, const StatsVisitor *v);

/* What the translations and checks of a patched kernel's signals found,
 * besides 0 (the kernel's: *ev is the event to publish now). */
enum {
        SUPERVISOR_SIGNAL_REFUSED = 1, /* not the kernel's (or cannot be believed): counted */
        SUPERVISOR_SIGNAL_PENDING,     /* the verdict waits for the child's end: ops->done tells */
        SUPERVISOR_STATUS_OTHER,       /* a wait status that is no event (a ptrace event stop) */
};

/* --- pure translations, exported for tests --- */

/* A wait status of pid into an exit, stop or continue event (source child,
 * only pid, tgid, ts_ns and the type's fields set): 0, or
 * SUPERVISOR_STATUS_OTHER for statuses that are not one of these (ptrace
 * event stops). */
int supervisor_event_from_status(pid_t pid, int status, uint64_t ts_ns, PnEvent *ev);

/* Does a wait status say the process died of a signal whose default action
 * dumps core (whether or not a core was written: RLIMIT_CORE 0 gives
 * CLD_KILLED)? */
bool supervisor_status_died_dumping(int status);

/* A patched kernel's PR_SET_PREDUMP_SIG signal (sent with SEND_SIG_NOINFO:
 * si_code SI_USER, si_pid the child about to dump core, si_uid its uid)
 * into a predump event with source "prctl": 0, or SUPERVISOR_SIGNAL_REFUSED
 * if its form cannot be the kernel's (another si_code: sigqueue(), tgkill();
 * no pid). SI_USER is also what kill() gives:
 * supervisor_accept_predump_signal() authenticates. */
int supervisor_event_from_predump_siginfo(const struct signalfd_siginfo *si, uint64_t ts_ns,
                                          PnEvent *ev);
/* A patched kernel's PR_SET_ADOPTSIG signal (si_code SI_USER, si_pid the
 * orphan adopted by self, si_status its old parent) into an adopt event with
 * source "prctl": 0, or SUPERVISOR_SIGNAL_REFUSED if its form cannot be the
 * kernel's (as above, or no old parent: a kill() has si_status 0). */
int supervisor_event_from_adopt_siginfo(const struct signalfd_siginfo *si, pid_t self,
                                        uint64_t ts_ns, PnEvent *ev);

/* How the caller of supervisor_accept_predump_signal() learns a verdict
 * that had to wait. */
typedef struct SupervisorVerdictOps {
        /* The verdict on pid's signal waits for its end: keep its exit from
         * being published before done() (0: held; done() is told). */
        int (*hold)(void *userdata, pid_t pid);
        /* The verdict, always before the child's exit status is handed on
         * (SupervisorCallbacks.on_event): ev is the predump to publish, or
         * NULL (refused, counted). held: hold() returned 0. */
        void (*done)(void *userdata, pid_t pid, PnEvent *ev, bool held);
} SupervisorVerdictOps;

/* The longest a predump signal's verdict waits. What it waits for is the
 * kernel's own work between the signal and the child's exit (the rest of a
 * dump that writes little or nothing, do_exit() up to exit_notify()):
 * microseconds natively, tens of ms on a loaded machine or under TCG; 1 s
 * leaves a wide margin, while a forger alive and not dumping costs only a
 * held verdict of its own (one per child) for that long. */
#define SUPERVISOR_VERDICT_WAIT_USEC (1000 * 1000ull)

/*
 * Authenticate a predump signal and count it (accepted or refused): si_pid
 * must be a child of the broker that is dumping core (CoreDumping: 1 in its
 * /proc status) or died of a core-dumping signal. Returns
 * - 0: accepted, *ev is the event to publish;
 * - SUPERVISOR_SIGNAL_REFUSED: refused and counted;
 * - SUPERVISOR_SIGNAL_PENDING: a child of ours, neither dumping nor dead
 *   (a small core is written, or none, and the dump is over before the
 *   broker looks; its exit is not yet notified): the verdict waits for its
 *   end (its pidfd), at most SUPERVISOR_VERDICT_WAIT_USEC, then comes
 *   through ops->done (after ops->hold) from an event of the loop, or from
 *   the child's wait status, before that is handed on. One per child: a
 *   second signal meanwhile is refused;
 * - a negative errno: the wait could not be set up; refused and counted.
 */
int supervisor_accept_predump_signal(Supervisor *s, const struct signalfd_siginfo *si, uint64_t ts_ns,
                                     PnEvent *ev, const SupervisorVerdictOps *ops, void *userdata);
/* The same for an adoption signal: si_pid's parent must now be self, and it
 * must not be a child the broker started (those were never orphans). 0
 * (accepted, *ev to publish) or SUPERVISOR_SIGNAL_REFUSED (counted). */
int supervisor_accept_adopt_signal(Supervisor *s, const struct signalfd_siginfo *si, pid_t self,
                                   uint64_t ts_ns, PnEvent *ev);

/* The default name of a child from its command: the basename of argv0 with
 * anything not allowed in a name replaced by '_'. */
void supervisor_default_name(const char *argv0, char *buf, size_t size);
