/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What supervisor.c (children, orphans, statuses, children and kill) and
 * supervisor-run.c (the run op) share: the Supervisor and its Child
 * entries. Not for other files.
 */
#pragma once

#include <systemd/sd-event.h>

#include "protocol/request.h"
#include "reaper.h"
#include "supervisor.h"

typedef struct RunJob RunJob;

typedef struct Child {
        pid_t pid;
        int pidfd;          /* -1 without kernel pidfds */
        bool adopted;       /* an orphan of a child, not started by a request */
        bool failed;        /* did not get to exec: not listed */
        bool stopped;
        bool registered;    /* its statuses are routed to us (reaper_watch_add()) */
        RunJob *start;      /* until it reached exec (or failed): not listed */
        uint32_t uid;       /* runs as; UINT32_MAX: not known (orphans) */
        uid_t requester;
        char name[RUN_MAX_NAME + 1];
        char *command;      /* argv[0] */
        uint64_t started_ns; /* CLOCK_REALTIME */
        /* A predump signal whose verdict waits for the child's end
         * (supervisor_accept_predump_signal()): io watches the pidfd, timer
         * looks again at /proc and bounds the wait. */
        struct {
                sd_event_source *io, *timer;
                PnEvent ev;
                uint64_t deadline_us, step_us; /* CLOCK_MONOTONIC */
                const SupervisorVerdictOps *ops;
                void *userdata;
                bool held;
        } verdict;
} Child;

struct Supervisor {
        Reaper *reaper;
        SupervisorOptions opt;
        char *log_directory;
        SupervisorCallbacks cb;
        void *userdata;
        Child **children;
        size_t n_children, cap_children;
        unsigned n_supervised, n_adopted;
        RunJob *lookups;    /* runs whose user is being looked up (no child yet) */
        unsigned n_lookups;
        bool stopping;
        SupervisorStats stats;
};

uint64_t supervisor_realtime_ns(void);
Child *supervisor_find(const Supervisor *s, pid_t pid);
/* Room for one more entry: 0 or -ENOMEM. */
int supervisor_reserve(Supervisor *s);
int supervisor_add(Supervisor *s, Child *c);
void supervisor_child_free(Child *c);
int supervisor_child_signal(const Child *c, int sig);
/* The reaper's callback for a registered child. */
void supervisor_on_status(pid_t pid, int status, void *userdata);
/* Is c listed and signalled by requests (not starting, not failed)? */
bool supervisor_child_is_visible(const Child *c);

/* --- supervisor-run.c --- */

/* Serve REQUEST_RUN (the policy was checked): answers slot later. */
void supervisor_run(Supervisor *s, const PeerCreds *peer, const Request *req, ControlSlot *slot);
/* c, still starting, has exited: answer its run from what it told. */
void supervisor_run_child_exited(Supervisor *s, Child *c);
/* Let go of every run in progress (at free): their slots are not answered. */
void supervisor_run_forget_all(Supervisor *s);
