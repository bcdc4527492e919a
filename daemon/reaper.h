/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reaper: the broker's one SIGCHLD handler. Every wait status the broker can
 * collect — its own children (supervised `run` children, orphans adopted
 * while it is a subreaper) and its ptrace tracees, thread by thread — is
 * collected here with waitpid(-1, …, __WALL | WUNTRACED), and continued
 * statuses per registered child (below), and handed to whoever registered
 * that pid, or to the fallback. Raw statuses
 * are passed on so that ptrace event bits (status >> 16) survive.
 *
 * Owners never call waitpid() themselves: two collectors would steal each
 * other's statuses.
 *
 * Continued statuses (WCONTINUED) are collected only for registered pids
 * that are not tracees: the kernel keeps one "continued" mark per process
 * and whichever waiter sees it first consumes it (kernel/exit.c,
 * wait_task_continued), so a tracer waiting with WCONTINUED would steal it
 * from the traced process's real parent. Orphans nobody registered are not
 * asked for theirs.
 */
#pragma once

#include <sys/types.h>

#include <systemd/sd-event.h>

typedef struct Reaper Reaper;

/* A wait status of pid (tid for tracee threads); exits are already reaped. */
typedef void (*ReaperFn)(pid_t pid, int status, void *userdata);

/* Block SIGCHLD and collect on e. fallback (may be NULL: statuses of pids
 * nobody registered are dropped, exits still reaped) gets what no watch
 * claims. Returns 0 or -errno. */
int reaper_new(Reaper **ret, sd_event *e, ReaperFn fallback, void *userdata);
Reaper *reaper_free(Reaper *r);
/* The loop the reaper runs in (borrowed). */
sd_event *reaper_get_event(Reaper *r);

enum {
        REAPER_E_TAKEN = 1, /* another owner routes pid's statuses already */
};

/* Route the statuses of pid to fn. Returns 0, REAPER_E_TAKEN, or -ENOMEM. */
int reaper_watch_add(Reaper *r, pid_t pid, ReaperFn fn, void *userdata);
/* The same for a ptrace tracee thread that is not the broker's child:
 * everything but continued statuses (see above). */
int reaper_watch_add_tracee(Reaper *r, pid_t tid, ReaperFn fn, void *userdata);
/* Stop routing pid (no-op if not registered). */
void reaper_watch_remove(Reaper *r, pid_t pid);

/* Collect now (as on SIGCHLD): for owners that just made a pid waitable. */
void reaper_collect(Reaper *r);
