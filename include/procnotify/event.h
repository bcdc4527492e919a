/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The procnotify event model inside the project: struct PnEvent, one struct
 * for every process-lifecycle event, whichever source saw it. The daemon
 * fills it, the JSON codec and the D-Bus sink encode it, and libprocnotify
 * decodes into it. Not installed: programs outside the project see PnEvent
 * as opaque (<procnotify/event-types.h>) and read it with getters, so that
 * the layout below may change without an ABI break.
 */
#pragma once

#include "procnotify/event-types.h"

#ifdef __cplusplus
extern "C" {
#endif

struct PnEvent {
        PnEventType type;
        uint64_t seq;      /* broker-wide, monotonically increasing; 0 for client overruns */
        uint64_t ts_ns;    /* kernel CLOCK_MONOTONIC timestamp of the event */
        uint64_t time_ns;  /* the same instant as CLOCK_REALTIME nanoseconds */
        uint32_t sources;  /* PN_SOURCE_* */

        /* The process the event is about (for fork: the new one). */
        pid_t pid;         /* thread id the kernel reported (== tgid for process events) */
        pid_t tgid;        /* process id */
        pid_t ppid;        /* parent process id, 0 if unknown */
        uint32_t uid;      /* real uid, UINT32_MAX if unknown */
        bool thread;       /* a per-thread event (only delivered with "threads": true) */

        /* Enrichment from the process table; NULL when unknown. */
        const char *comm;
        const char *exe;
        const char *cmdline;
        const char *cgroup;
        const char *unit;

        union {
                struct {
                        pid_t parent_pid; /* thread that called fork */
                } fork;
                struct {
                        uint32_t real;      /* new real uid or gid */
                        uint32_t effective; /* new effective uid or gid */
                } id;
                struct {
                        pid_t sid;
                } sid;
                struct {
                        pid_t tracer_pid; /* 0 on detach */
                        pid_t tracer_tgid;
                } ptrace;
                struct {
                        int signal;       /* 0: not known at this point */
                        pid_t tid;        /* the thread that took the signal; 0 if not known */
                        int64_t rss;      /* resident bytes at the event; -1 if not known */
                        int64_t core_limit; /* RLIMIT_CORE soft in bytes, or PN_CORE_LIMIT_* */
                        PnCoreDump core_dump;
                } predump;
                struct {
                        int status;       /* raw wait status; -1 if not known (inferred) */
                        int exit_code;    /* 0-255: exit status, or 128+signal if killed */
                        int signal;       /* killing signal, 0 if it exited */
                        bool core_dumped;
                } exit;
                struct {
                        pid_t old_parent;
                        pid_t new_parent;
                } adopt;
                struct {
                        int signal;       /* the stopping signal */
                } stop;
                struct {
                        uint64_t lost;
                        PnOverrunWhere where;
                        uint64_t first_seq; /* client overruns: range of seqs lost */
                        uint64_t last_seq;
                } overrun;
        };

        /* The network namespace (inode of /proc/PID/ns/net), 0 if not known:
         * read at exec (and at predump), inherited at fork. */
        uint64_t netns;
};

/* Decode a raw wait status into exit_code/signal/core_dumped of ev->exit. */
void pn_event_set_exit_status(PnEvent *ev, int status);

#ifdef __cplusplus
}
#endif
