/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The getters of the opaque PnEvent (include/procnotify/event-types.h): the
 * library's ABI reads the struct only here and in client.c, so that its
 * layout (include/procnotify/event.h) may change without a new soname.
 */
#include <stdint.h>

#include "procnotify/event.h"

/* The member of the union, if the event is of type t; else the default. */
#define GET_IF(ev, cond, expr, otherwise) ((cond) ? (expr) : (otherwise))

PnEventType pn_event_get_type(const PnEvent *ev) {
        return ev->type;
}

uint64_t pn_event_get_seq(const PnEvent *ev) {
        return ev->seq;
}

uint64_t pn_event_get_ts_ns(const PnEvent *ev) {
        return ev->ts_ns;
}

uint64_t pn_event_get_time_ns(const PnEvent *ev) {
        return ev->time_ns;
}

uint32_t pn_event_get_sources(const PnEvent *ev) {
        return ev->sources;
}

pid_t pn_event_get_pid(const PnEvent *ev) {
        return ev->pid;
}

pid_t pn_event_get_tgid(const PnEvent *ev) {
        return ev->tgid;
}

pid_t pn_event_get_ppid(const PnEvent *ev) {
        return ev->ppid;
}

uint32_t pn_event_get_uid(const PnEvent *ev) {
        return ev->uid;
}

bool pn_event_get_thread(const PnEvent *ev) {
        return ev->thread;
}

uint64_t pn_event_get_netns(const PnEvent *ev) {
        return ev->netns;
}

const char *pn_event_get_comm(const PnEvent *ev) {
        return ev->comm;
}

const char *pn_event_get_exe(const PnEvent *ev) {
        return ev->exe;
}

const char *pn_event_get_cmdline(const PnEvent *ev) {
        return ev->cmdline;
}

const char *pn_event_get_cgroup(const PnEvent *ev) {
        return ev->cgroup;
}

const char *pn_event_get_unit(const PnEvent *ev) {
        return ev->unit;
}

pid_t pn_event_get_parent_pid(const PnEvent *ev) {
        return GET_IF(ev, ev->type == PN_EVENT_FORK, ev->fork.parent_pid, 0);
}

static bool is_id_event(const PnEvent *ev) {
        return ev->type == PN_EVENT_UID || ev->type == PN_EVENT_GID;
}

uint32_t pn_event_get_id_real(const PnEvent *ev) {
        return GET_IF(ev, is_id_event(ev), ev->id.real, 0);
}

uint32_t pn_event_get_id_effective(const PnEvent *ev) {
        return GET_IF(ev, is_id_event(ev), ev->id.effective, 0);
}

pid_t pn_event_get_sid(const PnEvent *ev) {
        return GET_IF(ev, ev->type == PN_EVENT_SID, ev->sid.sid, 0);
}

pid_t pn_event_get_tracer_pid(const PnEvent *ev) {
        return GET_IF(ev, ev->type == PN_EVENT_PTRACE, ev->ptrace.tracer_pid, 0);
}

pid_t pn_event_get_tracer_tgid(const PnEvent *ev) {
        return GET_IF(ev, ev->type == PN_EVENT_PTRACE, ev->ptrace.tracer_tgid, 0);
}

int pn_event_get_signal(const PnEvent *ev) {
        switch (ev->type) {
        case PN_EVENT_PREDUMP:
                return ev->predump.signal;
        case PN_EVENT_EXIT:
                return ev->exit.signal;
        case PN_EVENT_STOP:
                return ev->stop.signal;
        default:
                return 0;
        }
}

pid_t pn_event_get_tid(const PnEvent *ev) {
        return GET_IF(ev, ev->type == PN_EVENT_PREDUMP, ev->predump.tid, 0);
}

int64_t pn_event_get_rss(const PnEvent *ev) {
        return GET_IF(ev, ev->type == PN_EVENT_PREDUMP, ev->predump.rss, -1);
}

int64_t pn_event_get_core_limit(const PnEvent *ev) {
        return GET_IF(ev, ev->type == PN_EVENT_PREDUMP, ev->predump.core_limit, PN_CORE_LIMIT_UNKNOWN);
}

PnCoreDump pn_event_get_core_dump(const PnEvent *ev) {
        return GET_IF(ev, ev->type == PN_EVENT_PREDUMP, ev->predump.core_dump, PN_CORE_DUMP_UNKNOWN);
}

int pn_event_get_status(const PnEvent *ev) {
        return GET_IF(ev, ev->type == PN_EVENT_EXIT, ev->exit.status, -1);
}

int pn_event_get_exit_code(const PnEvent *ev) {
        return GET_IF(ev, ev->type == PN_EVENT_EXIT, ev->exit.exit_code, 0);
}

bool pn_event_get_core_dumped(const PnEvent *ev) {
        return GET_IF(ev, ev->type == PN_EVENT_EXIT, ev->exit.core_dumped, false);
}

pid_t pn_event_get_old_parent(const PnEvent *ev) {
        return GET_IF(ev, ev->type == PN_EVENT_ADOPT, ev->adopt.old_parent, 0);
}

pid_t pn_event_get_new_parent(const PnEvent *ev) {
        return GET_IF(ev, ev->type == PN_EVENT_ADOPT, ev->adopt.new_parent, 0);
}

uint64_t pn_event_get_lost(const PnEvent *ev) {
        return GET_IF(ev, ev->type == PN_EVENT_OVERRUN, ev->overrun.lost, 0);
}

PnOverrunWhere pn_event_get_overrun_where(const PnEvent *ev) {
        return GET_IF(ev, ev->type == PN_EVENT_OVERRUN, ev->overrun.where, PN_OVERRUN_KERNEL);
}

uint64_t pn_event_get_first_seq(const PnEvent *ev) {
        return GET_IF(ev, ev->type == PN_EVENT_OVERRUN, ev->overrun.first_seq, 0);
}

uint64_t pn_event_get_last_seq(const PnEvent *ev) {
        return GET_IF(ev, ev->type == PN_EVENT_OVERRUN, ev->overrun.last_seq, 0);
}
