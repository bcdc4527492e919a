/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * WatchTable: the watches clients asked for ("watch", "unwatch"), per owner
 * (a connection of a sink). A watch follows one process from its pidfd
 * (PidfdWatch), so that its exit is reported race-free and merged with the
 * connector's by the process table, and, with "stop", through ptrace
 * (Tracee) for its group-stops and continues. Processes watched by several
 * clients share one pidfd and one tracer. The watcher receives the
 * process's events through a subscription the sink adds for it (tagged,
 * see control.h), which ends with the watch: at unwatch, at the
 * watcher's disconnect, and when the process's exit has been published.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "policy.h"
#include "proctable.h"
#include "reaper.h"
#include "sink-context.h"
#include "stats.h"

typedef struct WatchTable WatchTable;

/* A stop watch's process executed a program the watcher may not trace
 * (policy_may_act() no longer allows it: a set-user-ID or set-group-ID
 * program, say): the watch ends. */
#define WATCH_ENDED_NOT_PERMITTED "not-permitted"

typedef struct WatchTableOptions {
        unsigned max_per_owner;      /* watches per connection */
        unsigned max_per_uid;        /* watches of all connections of one uid (root exempt) */
        unsigned max_traced_threads; /* threads under ptrace watches, all together */
} WatchTableOptions;

typedef struct WatchTableCallbacks {
        /* Publish an event (stop, continue; exits go through the process
         * table with the same function). */
        ProcTableEmitFn emit;
        /* Remove owner's subscription tagged tag: its watch of pid has
         * ended. reason: NULL when it did its work (the process exited);
         * else the watcher is told why (WATCH_ENDED_*). */
        void (*drop_subscription)(void *userdata, SinkOwner owner, uint64_t tag, pid_t pid,
                                  const char *reason);
} WatchTableCallbacks;

int watch_table_new(WatchTable **ret, sd_event *e, Reaper *reaper, ProcTable *table,
                    const ProcReader *reader, const WatchTableOptions *o,
                    const WatchTableCallbacks *cb, void *userdata);
enum {
        WATCH_TABLE_E_PENDING = 1, /* tracees are still being detached */
};

/*
 * Shutdown: end every watch and detach every tracee, without waiting.
 * Returns 0 when nothing is left to detach, or WATCH_TABLE_E_PENDING: the
 * kernel lets the last threads go through the loop (their wait statuses),
 * and on_idle(userdata) is called once it has. The caller bounds the wait.
 */
int watch_table_stop(WatchTable *w, void (*on_idle)(void *userdata));
/* Close every pidfd and free; tracees still detaching are left to the
 * kernel, which detaches them when the broker exits. Never waits. */
WatchTable *watch_table_free(WatchTable *w);
void watch_table_set_options(WatchTable *w, const WatchTableOptions *o);

/* Serve a "watch" or "unwatch" request of peer on behalf of owner: answers
 * slot at once; a watch gives the requester its subscription through the
 * slot (tagged; the tag is given back to drop_subscription), an unwatch
 * takes it away. */
void watch_table_request(WatchTable *w, const PeerCreds *peer, SinkOwner owner, const Request *req,
                         ControlSlot *slot);
/* owner is gone: end its watches. */
void watch_table_release(WatchTable *w, SinkOwner owner);

/* Every published event, after the sinks had it: the exit of a watched
 * process ends its watches; an exec of a traced one ends the stop watches
 * whose watcher may no longer trace it (WATCH_ENDED_NOT_PERMITTED). */
void watch_table_on_event(WatchTable *w, const PnEvent *ev);
/* A wait status nobody registered for: a new thread of a tracee? Returns
 * true if taken. */
bool watch_table_claim_status(WatchTable *w, pid_t pid, int status);

void watch_table_visit_stats(WatchTable *w, const StatsVisitor *v);
