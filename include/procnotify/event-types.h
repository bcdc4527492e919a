/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The procnotify event model as libprocnotify shows it (installed as
 * <procnotify/event-types.h>): the event types, sources and enums, and
 * PnEvent, an opaque event the library allocates, read with the
 * pn_event_get_*() getters. The names match the JSON protocol
 * (protocol/PROTOCOL.md), D-Bus signal arguments and hook environment
 * variables. Inside the project, "procnotify/event.h" adds the struct the
 * daemon fills (not installed: its layout is no part of the ABI).
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


/* One process-lifecycle event, whichever source saw it. Allocated by the
 * library (pn_client_next()); read with the getters below. */
typedef struct PnEvent PnEvent;

/*
 * Getters. Each takes an event the library returned (not NULL). A getter of
 * a member the event's type does not have returns 0 (false, NULL), or what
 * is noted as "not known", so that a caller may read before it switches on
 * the type.
 */
PnEventType pn_event_get_type(const PnEvent *ev);
uint64_t pn_event_get_seq(const PnEvent *ev);      /* broker-wide, increasing; 0 for client overruns */
uint64_t pn_event_get_ts_ns(const PnEvent *ev);    /* kernel CLOCK_MONOTONIC timestamp */
uint64_t pn_event_get_time_ns(const PnEvent *ev);  /* the same instant, CLOCK_REALTIME ns */
uint32_t pn_event_get_sources(const PnEvent *ev);  /* PN_SOURCE_* */
pid_t pn_event_get_pid(const PnEvent *ev);         /* thread id (== tgid for process events) */
pid_t pn_event_get_tgid(const PnEvent *ev);        /* process id (fork: the new one) */
pid_t pn_event_get_ppid(const PnEvent *ev);        /* 0 if not known */
uint32_t pn_event_get_uid(const PnEvent *ev);      /* real uid, UINT32_MAX if not known */
bool pn_event_get_thread(const PnEvent *ev);       /* a per-thread event */
uint64_t pn_event_get_netns(const PnEvent *ev);    /* inode of /proc/PID/ns/net, 0 if not known */
/* Enrichment from the broker's process table; NULL when not known. Valid
 * as long as the event. */
const char *pn_event_get_comm(const PnEvent *ev);
const char *pn_event_get_exe(const PnEvent *ev);
const char *pn_event_get_cmdline(const PnEvent *ev);
const char *pn_event_get_cgroup(const PnEvent *ev);
const char *pn_event_get_unit(const PnEvent *ev);

pid_t pn_event_get_parent_pid(const PnEvent *ev);        /* fork: the thread that forked */
uint32_t pn_event_get_id_real(const PnEvent *ev);        /* uid, gid: the new real id */
uint32_t pn_event_get_id_effective(const PnEvent *ev);   /* uid, gid: the new effective id */
pid_t pn_event_get_sid(const PnEvent *ev);               /* sid */
pid_t pn_event_get_tracer_pid(const PnEvent *ev);        /* ptrace: 0 on detach */
pid_t pn_event_get_tracer_tgid(const PnEvent *ev);
/* predump: the signal (0: not known yet); exit: the killing signal (0 if it
 * exited); stop: the stopping signal. */
int pn_event_get_signal(const PnEvent *ev);
/* predump: the thread that took the signal, 0 if not known */
pid_t pn_event_get_tid(const PnEvent *ev);
int64_t pn_event_get_rss(const PnEvent *ev);             /* predump: resident bytes, -1 if not known */
/* predump: RLIMIT_CORE soft in bytes, or PN_CORE_LIMIT_* (PN_CORE_LIMIT_UNKNOWN: not known) */
int64_t pn_event_get_core_limit(const PnEvent *ev);
/* predump; not known: PN_CORE_DUMP_UNKNOWN */
PnCoreDump pn_event_get_core_dump(const PnEvent *ev);
int pn_event_get_status(const PnEvent *ev);              /* exit: raw wait status; -1 if not known */
int pn_event_get_exit_code(const PnEvent *ev);           /* exit: 0-255, or 128+signal if killed */
bool pn_event_get_core_dumped(const PnEvent *ev);        /* exit */
pid_t pn_event_get_old_parent(const PnEvent *ev);        /* adopt */
pid_t pn_event_get_new_parent(const PnEvent *ev);        /* adopt */
uint64_t pn_event_get_lost(const PnEvent *ev);           /* overrun: 0 for a restart means "not known" */
PnOverrunWhere pn_event_get_overrun_where(const PnEvent *ev); /* overrun; PN_OVERRUN_KERNEL for other types */
uint64_t pn_event_get_first_seq(const PnEvent *ev);      /* overrun, client: the seqs lost */
uint64_t pn_event_get_last_seq(const PnEvent *ev);

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

#ifdef __cplusplus
}
#endif
