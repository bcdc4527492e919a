/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The procnotify event model: one struct for every process-lifecycle event,
 * whichever source saw it. The daemon fills it, the JSON codec and the D-Bus
 * sink encode it, and libprocnotify hands it to clients. Field names match the
 * JSON protocol (protocol/PROTOCOL.md), D-Bus signal arguments and hook
 * environment variables.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum PnEventType {
        PN_EVENT_FORK,     /* a process (or, with threads, a thread) was created */
        PN_EVENT_EXEC,     /* a process executed a new program */
        PN_EVENT_UID,      /* real or effective uid changed */
        PN_EVENT_GID,      /* real or effective gid changed */
        PN_EVENT_SID,      /* the process became a session leader (setsid) */
        PN_EVENT_PTRACE,   /* a tracer attached or detached */
        PN_EVENT_COMM,     /* the process (or thread) name changed */
        PN_EVENT_PREDUMP,  /* dying of a core-class signal; a core dump may follow */
        PN_EVENT_EXIT,     /* the process (thread group) ended */
        PN_EVENT_ADOPT,    /* an orphan was re-parented */
        PN_EVENT_STOP,     /* the thread group entered group-stop */
        PN_EVENT_CONTINUE, /* the thread group left group-stop */
        PN_EVENT_OVERRUN,  /* events were lost; see lost and where */
        _PN_EVENT_TYPE_MAX,
        /* Not an event type (no filter names it): a "follow" report on a
         * subscription that follows a service; see pn_client_get_follow(). */
        PN_REPORT_FOLLOW = 0x100,
        _PN_EVENT_TYPE_INVALID = -1,
} PnEventType;

#define PN_EVENT_BIT(t) (UINT32_C(1) << (t))
#define PN_EVENT_ALL_BITS (PN_EVENT_BIT(_PN_EVENT_TYPE_MAX) - 1)

/* Where an overrun happened. */
typedef enum PnOverrunWhere {
        PN_OVERRUN_KERNEL, /* the kernel dropped connector messages for the broker */
        PN_OVERRUN_CLIENT, /* this client's queue was full; its own events were dropped */
        PN_OVERRUN_RESTART, /* the connection was lost and re-made (libprocnotify only) */
        _PN_OVERRUN_WHERE_MAX,
} PnOverrunWhere;

/* Which sources contributed to an event (bit set). */
enum {
        PN_SOURCE_CONNECTOR = 1u << 0, /* the proc connector */
        PN_SOURCE_PIDFD = 1u << 1,     /* a pidfd watch */
        PN_SOURCE_PTRACE = 1u << 2,    /* a ptrace watch */
        PN_SOURCE_CHILD = 1u << 3,     /* the broker's own child (waitid) */
        PN_SOURCE_PROCFS = 1u << 4,    /* inferred from /proc during a resync */
        PN_SOURCE_PRCTL = 1u << 5,     /* a patched kernel's PR_SET_PREDUMP_SIG/PR_SET_ADOPTSIG signal */
        _PN_SOURCE_COUNT = 6,          /* bits in use */
};

/* What the kernel will do with a predump's core (from core_pattern and the
 * process's RLIMIT_CORE at the event). */
typedef enum PnCoreDump {
        PN_CORE_DUMP_UNKNOWN, /* not known: the process was gone before /proc was read */
        PN_CORE_DUMP_NONE,    /* no core: a file pattern and a limit below one page, or a pipe and limit 1 */
        PN_CORE_DUMP_FILE,    /* written to a file named by core_pattern */
        PN_CORE_DUMP_PIPE,    /* piped to the helper core_pattern names (it decides what to keep) */
        _PN_CORE_DUMP_MAX,
} PnCoreDump;

#define PN_CORE_LIMIT_UNLIMITED (-1) /* predump.core_limit: RLIM_INFINITY */
#define PN_CORE_LIMIT_UNKNOWN (-2)

typedef struct PnEvent {
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
} PnEvent;

/* The protocol name of an event type ("fork", "predump", …), NULL if invalid. */
const char *pn_event_type_to_string(PnEventType t);
/* The event type for a protocol name, or _PN_EVENT_TYPE_INVALID. */
PnEventType pn_event_type_from_string(const char *s);

/* The protocol name of source bit 1u << i ("connector", …, "prctl"), NULL
 * if i >= _PN_SOURCE_COUNT. */
const char *pn_source_to_string(unsigned i);
/* The source bit of a protocol name, 0 if unknown. */
uint32_t pn_source_from_string(const char *s);

const char *pn_overrun_where_to_string(PnOverrunWhere w);
PnOverrunWhere pn_overrun_where_from_string(const char *s);

/* "none", "file", "pipe"; NULL for PN_CORE_DUMP_UNKNOWN. */
const char *pn_core_dump_to_string(PnCoreDump d);
PnCoreDump pn_core_dump_from_string(const char *s);

/* A signal's number from its name ("SIGSEGV", "segv", "SIGRTMIN+2",
 * "RTMAX-1"; any case) or its number ("11"), 1 to SIGRTMAX; 0 if none. */
int pn_signal_from_string(const char *s);

/* Decode a raw wait status into exit_code/signal/core_dumped of ev->exit. */
void pn_event_set_exit_status(PnEvent *ev, int status);

#ifdef __cplusplus
}
#endif
