/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the process table's unit tests share: a fake ProcReader (a process
 * list the test controls, standing in for /proc; the real one is exercised
 * by the integration tests), a recorder of what the table publishes, and
 * event constructors. Include once per test program, after cmocka.h.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/proctable.h"

/* --- the fake /proc --- */

typedef struct FakeProc {
        pid_t tgid, ppid;
        uint64_t start_time;
        uint32_t nthreads, uid;
        char state;
        const char *comm, *exe, *cmdline, *cgroup;
        bool alive;
} FakeProc;

static FakeProc procs[64];
static size_t n_procs;
static unsigned reads, reads_beyond_stat;
/* The clock the fake reader reads /proc at (ProcInfo.read_ns): 0, not known. */
static uint64_t fake_read_ns;

static inline FakeProc *fake(pid_t tgid) {
        for (size_t i = 0; i < n_procs; i++)
                if (procs[i].tgid == tgid)
                        return &procs[i];
        return NULL;
}

static inline FakeProc *fake_add(pid_t tgid, pid_t ppid, uint64_t start, const char *comm) {
        FakeProc *p = fake(tgid);
        if (!p)
                p = &procs[n_procs++];
        *p = (FakeProc){ .tgid = tgid, .ppid = ppid, .start_time = start, .nthreads = 1,
                         .uid = 1000, .state = 'S', .comm = comm, .exe = "/usr/bin/prog",
                         .cmdline = "prog --flag", .cgroup = "/system.slice/prog.service",
                         .alive = true };
        return p;
}

static inline int fake_read(void *userdata, pid_t tgid, unsigned what, ProcInfo *ret) {
        FakeProc *p = fake(tgid);
        (void) userdata;
        reads++;
        if (what & ~PROC_READ_STAT)
                reads_beyond_stat++;
        if (!p || !p->alive)
                return -ESRCH;
        ret->ppid = p->ppid;
        ret->start_time = p->start_time;
        ret->nthreads = p->nthreads;
        ret->read_ns = fake_read_ns;
        ret->state = p->state;
        ret->uid = ret->euid = p->uid;
        ret->gid = ret->egid = 100;
        strncpy(ret->comm, p->comm, sizeof(ret->comm) - 1);
        if (what & PROC_READ_EXE)
                ret->exe = strdup(p->exe);
        if (what & PROC_READ_CMDLINE)
                ret->cmdline = strdup(p->cmdline);
        if (what & PROC_READ_CGROUP)
                ret->cgroup = strdup(p->cgroup);
        return 0;
}

static inline int fake_list(void *userdata, int (*cb)(pid_t tgid, void *ctx), void *ctx) {
        (void) userdata;
        for (size_t i = 0; i < n_procs; i++)
                if (procs[i].alive && cb(procs[i].tgid, ctx) < 0)
                        return -EINTR;
        return 0;
}

static const ProcReader reader = { .read = fake_read, .list = fake_list };

/* --- what the table publishes --- */

typedef struct Seen {
        PnEvent ev;
        char comm[16], exe[64];
        bool comm_null, exe_null;
} Seen;

static Seen seen[64];
static size_t n_seen;

static inline void on_emit(PnEvent *ev, void *userdata) {
        (void) userdata;
        assert_true(n_seen < 64);
        Seen *s = &seen[n_seen++];
        s->ev = *ev;
        s->comm_null = !ev->comm;
        s->exe_null = !ev->exe;
        if (ev->comm)
                strncpy(s->comm, ev->comm, sizeof(s->comm) - 1);
        if (ev->exe)
                strncpy(s->exe, ev->exe, sizeof(s->exe) - 1);
        s->ev.comm = s->ev.exe = s->ev.cmdline = s->ev.cgroup = s->ev.unit = NULL;
}

static inline ProcTable *setup_table(size_t max) {
        ProcTable *t = NULL;
        n_seen = 0;
        reads = reads_beyond_stat = 0;
        assert_int_equal(proctable_new(&t, &reader, max), 0);
        assert_int_equal(proctable_resync(t, 1000, on_emit, NULL), 0);
        assert_int_equal(n_seen, 0); /* seeding publishes nothing */
        return t;
}

static inline void reset(void) {
        n_procs = 0;
        n_seen = 0;
        fake_read_ns = 0;
        memset(procs, 0, sizeof(procs));
}

static inline void handle(ProcTable *t, PnEvent ev) {
        proctable_handle(t, &ev, ev.ts_ns ? ev.ts_ns : 2000, on_emit, NULL);
}

static inline PnEvent fork_ev(pid_t parent, pid_t pid, pid_t tgid) {
        return (PnEvent){ .type = PN_EVENT_FORK, .pid = pid, .tgid = tgid, .ppid = parent,
                          .fork.parent_pid = parent, .thread = pid != tgid, .uid = UINT32_MAX };
}

static inline PnEvent exit_ev(pid_t pid, pid_t tgid, int status) {
        return (PnEvent){ .type = PN_EVENT_EXIT, .pid = pid, .tgid = tgid, .thread = pid != tgid,
                          .exit.status = status, .uid = UINT32_MAX };
}

static inline PnEvent simple_ev(PnEventType type, pid_t pid, pid_t tgid) {
        return (PnEvent){ .type = type, .pid = pid, .tgid = tgid, .uid = UINT32_MAX };
}

static inline PnEvent child_exit_ev(pid_t tgid, int status, uint64_t ts) {
        return (PnEvent){ .type = PN_EVENT_EXIT, .pid = tgid, .tgid = tgid, .ts_ns = ts,
                          .sources = PN_SOURCE_CHILD, .exit.status = status, .uid = UINT32_MAX };
}

static inline void other(ProcTable *t, PnEvent ev, uint64_t now) {
        proctable_handle_other(t, &ev, now, on_emit, NULL);
}
