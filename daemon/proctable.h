/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ProcTable: the one place that knows processes. Seeded from /proc, updated
 * by kernel events, it enriches every event (comm, exe, cmdline, uid, ppid,
 * cgroup, unit), turns the connector's per-thread exits into one exit per
 * process, infers adoption of orphans, and after a loss reconciles itself
 * with /proc (resync), reporting processes that vanished unseen.
 *
 * Entries are keyed by tgid and identified by tgid + start time, so a reused
 * pid is a new process. The table does no I/O of its own: everything it needs
 * to know about a live process comes through a ProcReader (procfs.c in the
 * daemon, a fake in unit tests).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "procnotify/event.h"
#include "protocol/utf8.h"

enum {
        PROC_READ_STAT = 1u << 0,    /* ppid, start_time, nthreads, state, comm */
        PROC_READ_STATUS = 1u << 1,  /* uid, euid, gid, egid */
        PROC_READ_EXE = 1u << 2,
        PROC_READ_CMDLINE = 1u << 3,
        PROC_READ_CGROUP = 1u << 4,
        PROC_READ_NETNS = 1u << 5,   /* netns */
        PROC_READ_ALL = (1u << 6) - 1,
        PROC_READ_CRASH = 1u << 6,   /* rss, core_limit, core_dump: at a predump only */
};

typedef struct ProcInfo {
        pid_t ppid;
        uint64_t start_time;  /* clock ticks after boot (/proc/PID/stat field 22) */
        uint32_t nthreads;
        /* CLOCK_MONOTONIC (the connector's clock) just before the reader
         * looked, 0 if not known: a thread whose fork the connector stamped
         * before it is already in nthreads. */
        uint64_t read_ns;
        uint32_t uid, euid, gid, egid;
        uint32_t suid;        /* saved uid (PROC_READ_STATUS) */
        char state;           /* R, S, D, Z, X, T, t, … */
        /* Every string below is mapped by pn_utf8_sanitize() (protocol/utf8.h)
         * by the reader: valid for both sinks. */
        char comm[PN_COMM_SIZE];
        char *exe;            /* owned, NULL if unreadable (kernel threads) */
        char *cmdline;        /* owned; NUL separators turned into spaces */
        char *cgroup;         /* owned; the unified-hierarchy path */
        uint64_t netns;       /* inode of ns/net; 0 if unreadable */
        pid_t tid;            /* in: read PROC_READ_NETNS and PROC_READ_CRASH through this
                               * thread (0: the main one), which may outlive the main one */
        int64_t rss;          /* PROC_READ_CRASH: resident bytes, -1 if not known */
        int64_t core_limit;   /* PROC_READ_CRASH: RLIMIT_CORE soft, bytes, or PN_CORE_LIMIT_* */
        PnCoreDump core_dump; /* PROC_READ_CRASH: what core_pattern and core_limit make of a crash */
} ProcInfo;

void proc_info_done(ProcInfo *i);

typedef struct ProcReader {
        /* Fill *ret with the parts of process tgid named by what (PROC_READ_*).
         * 0 on success, -ESRCH if the process is gone, another -errno else. */
        int (*read)(void *userdata, pid_t tgid, unsigned what, ProcInfo *ret);
        /* Call cb(tgid, ctx) for every live process; stop and return a
         * negative value if cb does. */
        int (*list)(void *userdata, int (*cb)(pid_t tgid, void *ctx), void *ctx);
        void *userdata;
} ProcReader;

typedef struct RefStr RefStr;

typedef struct ProcEntry {
        pid_t tgid;
        pid_t ppid;
        uint64_t start_time;      /* 0: not known */
        uint64_t born_ns;         /* when the table learned of it (CLOCK_MONOTONIC) */
        uint32_t uid, euid, gid, egid;
        uint32_t suid;        /* saved uid (PROC_READ_STATUS) */
        int32_t nthreads;         /* live threads known */
        char comm[PN_COMM_SIZE];  /* "" when not known; mapped (protocol/utf8.h) */
        RefStr *exe, *cmdline, *cgroup, *unit;
        uint64_t netns;           /* network namespace inode, 0 when not known */
        bool vanished;            /* not in /proc at the last resync */
        struct ProcEntry *parent; /* NULL if the parent is not in the table */
        struct ProcEntry *first_child, *next_sibling, *prev_sibling;
} ProcEntry;

typedef struct ProcTableStats {
        uint64_t entries;
        uint64_t resyncs;
        uint64_t inferred_exits;  /* exits reported from a resync, status unknown */
        uint64_t adoptions;
        uint64_t full;            /* events that found the table full */
        uint64_t merged_exits;    /* exits published once for the connector and another source */
        uint64_t unmerged_exits;  /* held exits published without the source they waited for */
        /* Predumps and adoptions published once for the connector and a
         * patched kernel's signal; held ones published without the other. */
        uint64_t merged_predumps, unmerged_predumps;
        uint64_t merged_adoptions, unmerged_adoptions;
        /* Deferred work that found its queue full (PROCTABLE_PENDING_MAX
         * items) or no memory: done at once where it can be (a held
         * report is published, a vanished process reported); where it
         * cannot, the events it may cost are counted in lost. */
        uint64_t deferred_full;
        /* Events the table could not publish (an unverified leader exit,
         * untold adoptions): each is also reported, through emit, as a
         * PN_EVENT_OVERRUN (where PN_OVERRUN_KERNEL) counting them. */
        uint64_t lost;
} ProcTableStats;

/* Expected conditions (positive; errors are -errno). */
enum {
        PROCTABLE_E_GONE = 1, /* no such process (any more): its exit was published */
};

typedef struct ProcTable ProcTable;

/* Called for every event the table publishes; ev and its strings are valid
 * only during the call. The callee may set ev->seq. */
typedef void (*ProcTableEmitFn)(PnEvent *ev, void *userdata);

int proctable_new(ProcTable **ret, const ProcReader *reader, size_t max_entries);
ProcTable *proctable_free(ProcTable *t);

/*
 * Apply one kernel event (as parsed from the connector: pids, type-specific
 * fields, ts_ns) and publish what follows from it through emit: the event
 * itself enriched, or nothing (a thread exit that does not end its process
 * is published as a thread event), plus derived events (adopt).
 */
void proctable_handle(ProcTable *t, PnEvent *ev, uint64_t now_ns, ProcTableEmitFn emit,
                      void *userdata);

/*
 * Apply an event that a source other than the connector saw (ev->sources
 * says which): the broker's own child (wait status), a pidfd or ptrace
 * watch, a patched kernel's signal. stop and continue are enriched and
 * published. An exit (ev->exit.status: raw wait status; ev->ppid: the parent
 * that collected it, or 0) is merged with the connector's exit of the same
 * process by the rules of proctable_exit_seen(); one that comes before the
 * connector told of the process's fork is held all the same, in an entry
 * the late fork fills in, and a second report of an end already published
 * is dropped (for PROCTABLE_ENDED_KEEP_NS). A predump already reported is
 * dropped; an adopt (ev->adopt.new_parent) already inferred is dropped, else
 * the table re-parents the process and fills old_parent.
 */
void proctable_handle_other(ProcTable *t, PnEvent *ev, uint64_t now_ns, ProcTableEmitFn emit,
                            void *userdata);

/*
 * Learn of process tgid now, from the reader, as if its fork had been seen:
 * for processes the broker starts itself, whose wait status can come before
 * the connector's fork event. Returns 0, -ESRCH if it is gone, -ENOSPC if
 * the table is full, or another -errno.
 */
int proctable_track(ProcTable *t, pid_t tgid, uint64_t now_ns);

/*
 * Reconcile with the reader's view of all processes. New processes are
 * added silently; processes the table knew that are gone are marked and
 * reported as exits (status unknown) by proctable_run_pending() after a grace
 * period, unless their real exit event arrives first. Returns 0 or -errno.
 */
int proctable_resync(ProcTable *t, uint64_t now_ns, ProcTableEmitFn emit, void *userdata);

/* The CLOCK_MONOTONIC deadline of the earliest deferred work, 0 if none:
 * a peek at a priority queue, cheap enough for every loop iteration. */
uint64_t proctable_next_deadline(const ProcTable *t);
/* Run deferred work that is due: settle adoptions, verify leader exits,
 * report vanished processes. */
void proctable_run_pending(ProcTable *t, uint64_t now_ns, ProcTableEmitFn emit, void *userdata);

const ProcEntry *proctable_find(const ProcTable *t, pid_t tgid);
/* The entry of tgid, learned from the reader if the table does not know it
 * yet (a process whose fork event is still on its way). NULL if it is not
 * running, or the table is full. */
const ProcEntry *proctable_learn(ProcTable *t, pid_t tgid, uint64_t now_ns);

/*
 * Exits seen by more than the connector: a pidfd watch (PN_SOURCE_PIDFD),
 * which counts itself on the process (tgid, start_time) with
 * proctable_watch_add(), and the broker's own child (PN_SOURCE_CHILD,
 * through proctable_handle_other()). The exit is published once, naming
 * every source that saw it, with the status of the source other than the
 * connector if it knows one (status -1: it does not), else the connector's:
 * - another source first: held until the connector's exit comes, or until
 *   the connector delivered an event stamped PROCTABLE_EXIT_SLACK_NS after
 *   the report was held (its exit was lost), at most PROCTABLE_EXIT_WAIT_NS;
 * - the connector first: published at once, unless the process has pidfd
 *   watchers: then held at most PROCTABLE_EXIT_HOLD_NS for the pidfd.
 * Returns 0, or PROCTABLE_E_GONE when the table has no such process (its
 * exit was already published, or it was never known).
 */
int proctable_watch_add(ProcTable *t, pid_t tgid, uint64_t start_time);
void proctable_watch_remove(ProcTable *t, pid_t tgid, uint64_t start_time);
int proctable_exit_seen(ProcTable *t, pid_t tgid, uint64_t start_time, uint32_t source, int status,
                        uint64_t ts_ns, uint64_t now_ns, ProcTableEmitFn emit, void *userdata);

/* Is tgid a (transitive) child of ancestor in the table's current tree? */
bool proctable_is_descendant(const ProcTable *t, pid_t tgid, pid_t ancestor);
/* Call cb for every descendant of tgid in the table's current tree (not
 * tgid itself), parents before their children. -ESRCH if the table does not
 * know tgid. */
int proctable_foreach_descendant(const ProcTable *t, pid_t tgid,
                                 void (*cb)(const ProcEntry *e, void *ctx), void *ctx);
/* Fill the enrichment fields of ev (comm, exe, …, uid, ppid) from entry e. */
void proctable_enrich(const ProcEntry *e, PnEvent *ev);
/* Call cb for every entry. */
void proctable_foreach(const ProcTable *t, void (*cb)(const ProcEntry *e, void *ctx), void *ctx);
const ProcTableStats *proctable_get_stats(const ProcTable *t);

/*
 * A patched kernel signals self for its children's crashes (type
 * PN_EVENT_PREDUMP: PR_SET_PREDUMP_SIG) or its adoptions (PN_EVENT_ADOPT:
 * PR_SET_ADOPTSIG), reported through proctable_handle_other() with source
 * PN_SOURCE_PRCTL. From now on the connector's predump of a child of self,
 * or the adoption of an orphan by self, and the signal's are one event
 * naming both sources: the first is held at most PROCTABLE_PRCTL_HOLD_NS
 * for the other (counted in merged_* or unmerged_*).
 */
void proctable_set_prctl(ProcTable *t, pid_t self, PnEventType type);
/*
 * A predump signal of tgid was read, but its verdict waits for tgid's end
 * (the dump was over before the broker looked): until
 * proctable_prctl_waited(), the connector's predump and tgid's exit are
 * held for it (the exit as for a pidfd watch), past PROCTABLE_PRCTL_HOLD_NS
 * and PROCTABLE_EXIT_HOLD_NS: the caller bounds the wait. Returns 0, or
 * PROCTABLE_E_GONE (no such process, or its exit is held already).
 */
int proctable_prctl_wait(ProcTable *t, pid_t tgid);
void proctable_prctl_waited(ProcTable *t, pid_t tgid);

/* The systemd unit a cgroup path belongs to ("foo.service"), or NULL;
 * writes into buf. Pure helper, exported for tests. */
const char *proctable_unit_from_cgroup(const char *cgroup, char *buf, size_t size);

/* Grace periods (ns) for deferred work. */
#define PROCTABLE_ADOPT_RETRY_NS (1 * 1000 * 1000ull)
#define PROCTABLE_ADOPT_MAX_TRIES 20
#define PROCTABLE_LEADER_CHECK_NS (50 * 1000 * 1000ull)
#define PROCTABLE_GHOST_GRACE_NS (200 * 1000 * 1000ull)
/* Exits reported by more than one source (see proctable_exit_seen()). */
#define PROCTABLE_EXIT_HOLD_NS (25 * 1000 * 1000ull)          /* connector first: for the pidfd */
#define PROCTABLE_EXIT_SLACK_NS (5 * 1000 * 1000ull)          /* connector past it: its exit was lost */
#define PROCTABLE_EXIT_WAIT_NS (2000 * 1000 * 1000ull)        /* other first: at most, for the connector */
#define PROCTABLE_ENDED_KEEP_NS (5 * 1000 * 1000 * 1000ull)   /* a late second report is dropped */
/* Predumps and adoptions seen by the connector and a prctl signal. */
#define PROCTABLE_PRCTL_HOLD_NS (100 * 1000 * 1000ull)
