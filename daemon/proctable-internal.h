/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the files of the process table share (proctable.c, entry.c,
 * deferred.c, exitmerge.c, prctl-merge.c, resync.c): the table, its
 * entries' private state, and the functions they call across files. Not
 * for use outside the table: proctable.h is its interface.
 */
#pragma once

#include "deferq.h"
#include "ended.h"
#include "intern.h"
#include "pidmap.h"
#include "proctable.h"

typedef enum PendingKind {
        PENDING_ADOPT,      /* child whose parent exited: read its new parent */
        PENDING_LEADER,     /* leader exited with threads left: verify */
        PENDING_GHOST,      /* not in /proc at resync: report unless its exit comes */
        PENDING_EXIT,       /* an exit held for another source's report of it */
        PENDING_PREDUMP,    /* a predump held for the other of connector and prctl signal */
        PENDING_ADOPT_HELD, /* the same for an adoption */
} PendingKind;

/* Deferred work items at most (each ~48 bytes); beyond, work that cannot
 * wait is done at once, or counted and reported as lost (deferred.c). */
#define PROCTABLE_PENDING_MAX 65536

struct ProcTable {
        ProcReader reader;
        size_t max_entries;
        PidMap map;
        DeferQueue pending;     /* deferred work, by deadline */
        DeferQueue held;        /* exits held for the connector (PENDING_EXIT), by when they were
                                 * held: release_caught_up() peeks at the earliest */
        unsigned generation;
        EndedRing ended;
        uint64_t connector_ts;  /* latest kernel time of a connector event */
        size_t n_held;          /* exits seen by another source, held for the connector */
        uint64_t lost_unreported; /* events lost since the last overrun the table published */
        pid_t prctl_self;       /* the broker, when a patched kernel signals it (proctable_set_prctl()) */
        bool prctl_predump, prctl_adopt;
        StrSet strings;
        ProcTableStats stats;
};

/* Per-entry state private to the table, allocated with the public part. */
typedef struct Entry {
        ProcEntry pub;
        int last_status;   /* latest non-zero thread exit status (by kernel time), else 0 */
        uint64_t last_status_ts;
        bool leader_exited;
        /* When the table last read the process whole from /proc, names and
         * thread count (ProcInfo.read_ns; 0: never, all it knows came from
         * the parent and the connector): an event the connector stamped
         * before that is older than what the entry says (entry_read_after()). */
        uint64_t proc_read_ns;
        uint64_t exec_ts;  /* kernel time of its latest exec, 0 if none seen */
        unsigned seen_gen; /* generation of the last resync that saw it */
        unsigned watchers; /* pidfd watches, which report its exit too */
        /* Its exit, seen by one source and held for another's report
         * (process_exit_seen()). */
        bool exit_held;
        int held_status;
        uint32_t held_sources;
        uint64_t held_ts;      /* the first source's time of the exit */
        uint64_t held_seen_ns; /* CLOCK_MONOTONIC when the held report was handled */
        bool tracked;          /* learned by proctable_track(): the broker's own child, at its clone */
        bool predump_reported;
        /* A predump signal's verdict waits for its end (proctable_prctl_wait()):
         * its held predump and exit wait for it. */
        bool prctl_waiting;
        /* Its parent exited while it lived, but it was gone before /proc
         * could tell its new parent: its own exit (which names the parent
         * it had then) settles the adoption (adoption_settle_at_exit()). */
        pid_t adopt_from;
        uint64_t adopt_ts;
        /* A predump or an adoption that one of the connector and a patched
         * kernel's signal reported, held for the other (predump_seen(),
         * adopt_seen()): the sources so far (0: none held) and what they
         * told. */
        uint32_t predump_held;
        uint64_t predump_held_ts;
        pid_t predump_held_pid;
        __typeof__(((PnEvent *) 0)->predump) predump_held_details; /* read at the first report */
        uint32_t adopt_held;
        uint64_t adopt_held_ts;
        pid_t adopt_held_old, adopt_held_new;
} Entry;

/* entry.c: entries, their strings and their place in the map and tree. */
Entry *entry_find(const ProcTable *t, pid_t tgid);
/* The entry for (tgid, start_time), if it is still the one the table knows. */
Entry *entry_find_same(const ProcTable *t, pid_t tgid, uint64_t start_time);
Entry *entry_new(ProcTable *t, pid_t tgid, uint64_t now_ns);
/* Set e's thread count to n, counted from /proc by the read that gave info. */
void entry_count_threads(Entry *e, const ProcInfo *info, int32_t n);
/* Was e read from /proc after the connector stamped ts_ns? */
bool entry_read_after(const Entry *e, uint64_t ts_ns);
void entry_free(ProcTable *t, Entry *e);
/* Let go of e's strings (when the whole table goes). */
void entry_drop_strings(ProcTable *t, ProcEntry *e);
void entry_apply_info(ProcTable *t, Entry *e, const ProcInfo *info, unsigned what);
Entry *entry_load(ProcTable *t, pid_t tgid, uint64_t now_ns);
Entry *entry_find_or_load(ProcTable *t, pid_t tgid, uint64_t now_ns);
void entry_inherit(ProcTable *t, ProcEntry *c, ProcEntry *p, pid_t ppid);
void entry_set_parent(ProcTable *t, ProcEntry *e, pid_t ppid);
void entry_forget_names(ProcTable *t, ProcEntry *e);

/* deferred.c: the deferred work of the table. */
/* Queue work of kind for e, due at deadline: 0, -ENOSPC (the queue is
 * full) or -ENOMEM; counted in stats.deferred_full when it fails. */
int pending_add(ProcTable *t, PendingKind kind, const ProcEntry *e, pid_t old_parent, unsigned tries,
                uint64_t deadline);
/* n events that the table could not publish: counted, and reported by
 * table_report_lost(). */
void table_lost(ProcTable *t, uint64_t n);
void table_report_lost_now(ProcTable *t, uint64_t now_ns, ProcTableEmitFn emit, void *userdata);

/* Publish an overrun for the events lost since the last one, if any. */
static inline void table_report_lost(ProcTable *t, uint64_t now_ns, ProcTableEmitFn emit, void *userdata) {
        if (t->lost_unreported > 0)
                table_report_lost_now(t, now_ns, emit, userdata);
}

/* exitmerge.c: one exit per process, from every source that saw it. */
void emit_adopt(ProcTable *t, ProcEntry *child, pid_t old_parent, pid_t new_parent, uint64_t ts_ns,
                uint32_t sources, ProcTableEmitFn emit, void *userdata);
void process_ended(ProcTable *t, Entry *e, int status, uint32_t sources, uint64_t ts_ns, uint64_t now_ns,
                   ProcTableEmitFn emit, void *userdata);
void process_exit_seen(ProcTable *t, Entry *e, int status, uint32_t source, uint64_t ts_ns,
                       uint64_t now_ns, ProcTableEmitFn emit, void *userdata);
/* Publish a held exit without the source it waited for. */
void held_exit_release(ProcTable *t, Entry *e, uint64_t now_ns, ProcTableEmitFn emit, void *userdata);
/* prctl-merge.c: a held predump or exit (kind) whose deadline came while a
 * predump signal's verdict is awaited: queued again, true; else false. */
bool prctl_hold_longer(ProcTable *t, Entry *e, PendingKind kind, uint64_t now_ns);
void release_caught_up(ProcTable *t, uint64_t ts_ns, uint64_t now_ns, ProcTableEmitFn emit,
                       void *userdata);
void settle_adoption(ProcTable *t, ProcEntry *child, pid_t old_parent, unsigned tries, uint64_t now_ns,
                     uint64_t ts_ns, ProcTableEmitFn emit, void *userdata);
void adoption_settle_at_exit(ProcTable *t, Entry *e, pid_t parent_tgid, uint32_t sources,
                             ProcTableEmitFn emit, void *userdata);

/* prctl-merge.c: predumps and adoptions told by the connector and a
 * patched kernel's signal, published once. */
void predump_seen(ProcTable *t, Entry *e, PnEvent *ev, uint64_t now_ns, ProcTableEmitFn emit,
                  void *userdata);
void predump_release(ProcTable *t, Entry *e, ProcTableEmitFn emit, void *userdata);
void adopt_seen(ProcTable *t, Entry *e, pid_t old_parent, pid_t new_parent, uint64_t ts_ns,
                uint32_t sources, uint64_t now_ns, ProcTableEmitFn emit, void *userdata);
void adopt_release(ProcTable *t, Entry *e, ProcTableEmitFn emit, void *userdata);
/* Publish what is held for e before its exit. */
void held_release(ProcTable *t, Entry *e, ProcTableEmitFn emit, void *userdata);
