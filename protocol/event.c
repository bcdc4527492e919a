/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Names of event types and overrun places, and decoding of wait statuses:
 * the small vocabulary that the JSON codec, the D-Bus sink and clients share.
 */
#include <string.h>
#include <sys/wait.h>

#include "procnotify/event.h"

static const char *const event_type_names[_PN_EVENT_TYPE_MAX] = {
        [PN_EVENT_FORK] = "fork",       [PN_EVENT_EXEC] = "exec",
        [PN_EVENT_UID] = "uid",         [PN_EVENT_GID] = "gid",
        [PN_EVENT_SID] = "sid",         [PN_EVENT_PTRACE] = "ptrace",
        [PN_EVENT_COMM] = "comm",       [PN_EVENT_PREDUMP] = "predump",
        [PN_EVENT_EXIT] = "exit",       [PN_EVENT_ADOPT] = "adopt",
        [PN_EVENT_STOP] = "stop",       [PN_EVENT_CONTINUE] = "continue",
        [PN_EVENT_OVERRUN] = "overrun",
};

static const char *const overrun_where_names[_PN_OVERRUN_WHERE_MAX] = {
        [PN_OVERRUN_KERNEL] = "kernel",
        [PN_OVERRUN_CLIENT] = "client",
        [PN_OVERRUN_RESTART] = "restart",
};

static const char *const source_names[_PN_SOURCE_COUNT] = {
        "connector", "pidfd", "ptrace", "child", "procfs", "prctl",
};

const char *pn_source_to_string(unsigned i) {
        return i < _PN_SOURCE_COUNT ? source_names[i] : NULL;
}

uint32_t pn_source_from_string(const char *s) {
        for (unsigned i = 0; s && i < _PN_SOURCE_COUNT; i++)
                if (strcmp(source_names[i], s) == 0)
                        return 1u << i;
        return 0;
}

const char *pn_event_type_to_string(PnEventType t) {
        if (t < 0 || t >= _PN_EVENT_TYPE_MAX)
                return NULL;
        return event_type_names[t];
}

PnEventType pn_event_type_from_string(const char *s) {
        if (!s)
                return _PN_EVENT_TYPE_INVALID;
        for (int t = 0; t < _PN_EVENT_TYPE_MAX; t++)
                if (strcmp(event_type_names[t], s) == 0)
                        return (PnEventType) t;
        return _PN_EVENT_TYPE_INVALID;
}

const char *pn_overrun_where_to_string(PnOverrunWhere w) {
        if (w < 0 || w >= _PN_OVERRUN_WHERE_MAX)
                return NULL;
        return overrun_where_names[w];
}

PnOverrunWhere pn_overrun_where_from_string(const char *s) {
        for (int w = 0; s && w < _PN_OVERRUN_WHERE_MAX; w++)
                if (strcmp(overrun_where_names[w], s) == 0)
                        return (PnOverrunWhere) w;
        return _PN_OVERRUN_WHERE_MAX;
}

void pn_event_set_exit_status(PnEvent *ev, int status) {
        ev->exit.status = status;
        if (WIFSIGNALED(status)) {
                ev->exit.signal = WTERMSIG(status);
                ev->exit.exit_code = 128 + WTERMSIG(status);
                ev->exit.core_dumped = WCOREDUMP(status);
        } else {
                ev->exit.signal = 0;
                ev->exit.exit_code = WEXITSTATUS(status);
                ev->exit.core_dumped = false;
        }
}
