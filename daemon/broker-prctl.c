/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The broker's patched-kernel prctls (PR_SET_PREDUMP_SIG, PR_SET_ADOPTSIG):
 * their signals handled, accepted only from the kernel, and merged into the
 * process table's events.
 */
#include <signal.h>
#include <sys/prctl.h>

#include <systemd/sd-event.h>

#include "broker-internal.h"
#include "common/clock.h"
#include "common/log.h"

static void broker_publish_prctl(Broker *b, PnEvent *ev, uint64_t now) {
        proctable_handle_other(b->table, ev, now, broker_emit, b);
        dispatcher_flush(b->dispatcher);
}

/* A predump signal's verdict waits for the child's end: the table holds
 * the connector's predump and the child's exit for it (the kernel sends
 * the connector's exit before the child's pidfd wakes), so that the
 * predump is merged and comes before the exit. */
static int broker_predump_hold(void *userdata, pid_t pid) {
        Broker *b = userdata;
        return proctable_prctl_wait(b->table, pid);
}

static void broker_predump_done(void *userdata, pid_t pid, PnEvent *ev, bool held) {
        Broker *b = userdata;

        if (ev)
                broker_publish_prctl(b, ev, clock_ns(CLOCK_MONOTONIC));
        else
                log_debug("Refusing predump signal from pid %d: it did not die of a core-dumping "
                          "signal within %llu ms.", (int) pid, SUPERVISOR_VERDICT_WAIT_USEC / 1000);
        if (held)
                proctable_prctl_waited(b->table, pid);
}

static const SupervisorVerdictOps broker_predump_verdict = {
        .hold = broker_predump_hold,
        .done = broker_predump_done,
};

/* The signal a patched kernel sends for PR_SET_PREDUMP_SIG or PR_SET_ADOPTSIG. */
static int broker_on_prctl_signal(sd_event_source *s, const struct signalfd_siginfo *si,
                                  void *userdata) {
        Broker *b = userdata;
        uint64_t now = clock_ns(CLOCK_MONOTONIC);
        PnEvent ev;
        int r;

        if (s == b->sig_predump)
                r = supervisor_accept_predump_signal(b->supervisor, si, now, &ev, &broker_predump_verdict, b);
        else
                r = supervisor_accept_adopt_signal(b->supervisor, si, b->pid, now, &ev);
        if (r == SUPERVISOR_SIGNAL_PENDING)
                return 0; /* broker_predump_done() */
        if (r < 0) {
                log_warning_errno(r, "Failed to wait for the end of pid %u, refusing its predump signal: %m",
                                  si->ssi_pid);
                return 0;
        }
        if (r > 0) {
                log_debug("Refusing signal %u from pid %u (code %d, status %d): not the kernel's %s "
                          "notification.", si->ssi_signo, si->ssi_pid, si->ssi_code, si->ssi_status,
                          s == b->sig_predump ? "predump" : "adoption");
                return 0;
        }
        broker_publish_prctl(b, &ev, now);
        return 0;
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
        /* Before SIGCHLD: the reaper collects every zombie it finds, and a
         * child whose predump signal waited behind another child's SIGCHLD
         * would be reaped (and no longer ours to believe) before its signal
         * is read. */
        r = sd_event_source_set_priority(*ret, SD_EVENT_PRIORITY_IMPORTANT);
        if (r < 0)
                return log_error_errno(r, "Failed to set the priority of %s: %m", name);
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
int broker_setup_prctls(Broker *b) {
        Config *c = b->config;
        int r = 0;

        if (c->predump_prctl)
                r = broker_setup_prctl(b, &b->sig_predump, c->predump_prctl, c->predump_signal, PN_EVENT_PREDUMP);
        if (r >= 0 && c->adopt_prctl)
                r = broker_setup_prctl(b, &b->sig_adopt, c->adopt_prctl, c->adopt_signal, PN_EVENT_ADOPT);
        return r;
}
