/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SinkDbus's encoding: an event as its D-Bus signal (one per event type,
 * arguments as in org.procnotify.Broker1.xml), addressed to one peer, and
 * the size it counts for against that peer's queue and window.
 */
#include <string.h>

#include "common/macro.h"
#include "sink-dbus-internal.h"

/* Signal names, one per event type (the JSON protocol's "type"). */
static const char *const signal_names[_PN_EVENT_TYPE_MAX] = {
        [PN_EVENT_FORK] = "Forked",         [PN_EVENT_EXEC] = "Exec",
        [PN_EVENT_UID] = "UidChanged",      [PN_EVENT_GID] = "GidChanged",
        [PN_EVENT_SID] = "SessionCreated",  [PN_EVENT_PTRACE] = "Ptrace",
        [PN_EVENT_COMM] = "CommChanged",    [PN_EVENT_PREDUMP] = "Predump",
        [PN_EVENT_EXIT] = "Exited",         [PN_EVENT_ADOPT] = "Adopted",
        [PN_EVENT_STOP] = "Stopped",        [PN_EVENT_CONTINUE] = "Continued",
        [PN_EVENT_OVERRUN] = "Overrun",
};

static const char *str_or_empty(const char *s) {
        /* D-Bus has no null: an unknown string is empty (documented). */
        return s ? s : "";
}

static int append_sources(sd_bus_message *m, uint32_t sources) {
        int r = sd_bus_message_open_container(m, 'a', "s");
        for (unsigned i = 0; r >= 0 && i < _PN_SOURCE_COUNT; i++)
                if (sources & (1u << i))
                        r = sd_bus_message_append(m, "s", pn_source_to_string(i));
        return r < 0 ? r : sd_bus_message_close_container(m);
}

/* The arguments of ev's signal, in the order of org.procnotify.Broker1.xml. */
static int append_event(sd_bus_message *m, const PnEvent *ev) {
        int r;

        if (ev->type == PN_EVENT_OVERRUN)
                return sd_bus_message_append(m, "tttstt", ev->seq, ev->ts_ns, ev->overrun.lost,
                                             pn_overrun_where_to_string(ev->overrun.where),
                                             ev->overrun.first_seq, ev->overrun.last_seq);
        r = sd_bus_message_append(m, "ttiiiusssss", ev->seq, ev->ts_ns, (int32_t) ev->pid,
                                  (int32_t) ev->tgid, (int32_t) ev->ppid, ev->uid,
                                  str_or_empty(ev->comm), str_or_empty(ev->exe),
                                  str_or_empty(ev->cmdline), str_or_empty(ev->cgroup),
                                  str_or_empty(ev->unit));
        if (r < 0)
                return r;
        switch (ev->type) {
        case PN_EVENT_FORK:
                return sd_bus_message_append(m, "ib", (int32_t) ev->fork.parent_pid, ev->thread);
        case PN_EVENT_UID:
        case PN_EVENT_GID:
                return sd_bus_message_append(m, "uub", ev->id.real, ev->id.effective, ev->thread);
        case PN_EVENT_SID:
                return sd_bus_message_append(m, "i", (int32_t) ev->sid.sid);
        case PN_EVENT_PTRACE:
                return sd_bus_message_append(m, "iib", (int32_t) ev->ptrace.tracer_pid,
                                             (int32_t) ev->ptrace.tracer_tgid, ev->thread);
        case PN_EVENT_COMM:
                return sd_bus_message_append(m, "b", ev->thread);
        case PN_EVENT_PREDUMP:
                /* No null on D-Bus: 0 for an unknown signal or thread, -1
                 * for an unknown size, PN_CORE_LIMIT_* (-1 unlimited, -2
                 * unknown), "" for an unknown core_dump and 0 netns. */
                return sd_bus_message_append(m, "iixxst", ev->predump.signal, (int32_t) ev->predump.tid,
                                             ev->predump.rss, ev->predump.core_limit,
                                             str_or_empty(pn_core_dump_to_string(ev->predump.core_dump)),
                                             ev->netns);
        case PN_EVENT_EXIT:
                /* An exit inferred after a loss has no status: -1 throughout. */
                r = sd_bus_message_append(m, "iibi", ev->exit.status < 0 ? -1 : ev->exit.exit_code,
                                          ev->exit.status < 0 ? -1 : ev->exit.signal,
                                          ev->exit.status >= 0 && ev->exit.core_dumped,
                                          ev->exit.status);
                if (r >= 0)
                        r = append_sources(m, ev->sources);
                return r < 0 ? r : sd_bus_message_append(m, "bt", ev->thread, ev->netns);
        case PN_EVENT_ADOPT:
                r = sd_bus_message_append(m, "ii", (int32_t) ev->adopt.old_parent,
                                          (int32_t) ev->adopt.new_parent);
                return r < 0 ? r : append_sources(m, ev->sources);
        case PN_EVENT_STOP:
                r = sd_bus_message_append(m, "i", ev->stop.signal);
                return r < 0 ? r : append_sources(m, ev->sources);
        case PN_EVENT_CONTINUE:
                return append_sources(m, ev->sources);
        default:
                return 0;
        }
}

/* The size ev's signal to p counts for, against p's queue and window: a
 * generous header and fixed arguments, and the strings. */
uint32_t sink_dbus_signal_bytes(const DbusPeer *p, const PnEvent *ev) {
        const char *const strs[] = { ev->comm, ev->exe, ev->cmdline, ev->cgroup, ev->unit };
        size_t n = 256 + strlen(p->name);

        for (size_t i = 0; ev->type != PN_EVENT_OVERRUN && i < ELEMENTSOF(strs); i++)
                n += (strs[i] ? strlen(strs[i]) : 0) + 8;
        return (uint32_t) MIN(n, (size_t) UINT32_MAX);
}

int sink_dbus_build_event(SinkDbus *s, DbusPeer *p, const PnEvent *ev, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r = sd_bus_message_new_signal(s->bus, &m, DBUS_PATH, DBUS_INTERFACE, signal_names[ev->type]);
        if (r >= 0)
                r = sd_bus_message_set_destination(m, p->name);
        if (r >= 0)
                r = append_event(m, ev);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}
