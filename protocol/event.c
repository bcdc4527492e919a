/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Names of event types and overrun places, and decoding of wait statuses:
 * the small vocabulary that the JSON codec, the D-Bus sink and clients share.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

static const char *const core_dump_names[_PN_CORE_DUMP_MAX] = {
        [PN_CORE_DUMP_NONE] = "none",
        [PN_CORE_DUMP_FILE] = "file",
        [PN_CORE_DUMP_PIPE] = "pipe",
};

const char *pn_core_dump_to_string(PnCoreDump d) {
        if (d <= PN_CORE_DUMP_UNKNOWN || d >= _PN_CORE_DUMP_MAX)
                return NULL;
        return core_dump_names[d];
}

PnCoreDump pn_core_dump_from_string(const char *s) {
        for (int d = PN_CORE_DUMP_UNKNOWN + 1; s && d < _PN_CORE_DUMP_MAX; d++)
                if (strcmp(core_dump_names[d], s) == 0)
                        return (PnCoreDump) d;
        return PN_CORE_DUMP_UNKNOWN;
}

/* "RTMIN", "RTMIN+N", "RTMAX", "RTMAX-N" (without "SIG"); 0 if not one. */
static int parse_rt_name(const char *s) {
        int base, sign;
        char *end;

        if (strncasecmp(s, "RTMIN", 5) == 0)
                base = SIGRTMIN, sign = 1;
        else if (strncasecmp(s, "RTMAX", 5) == 0)
                base = SIGRTMAX, sign = -1;
        else
                return 0;
        s += 5;
        if (!*s)
                return base;
        if (*s != (sign > 0 ? '+' : '-') || s[1] < '0' || s[1] > '9')
                return 0;
        long n = strtol(s + 1, &end, 10);
        if (*end || n > SIGRTMAX - SIGRTMIN)
                return 0;
        return base + sign * (int) n;
}

int pn_signal_from_string(const char *s) {
        const char *name = s;
        char *end;
        int sig;

        if (!s || !*s)
                return 0;
        if (*s >= '0' && *s <= '9') {
                long n = strtol(s, &end, 10);
                return !*end && n >= 1 && n <= SIGRTMAX ? (int) n : 0;
        }
        if (strncasecmp(name, "SIG", 3) == 0)
                name += 3;
        sig = parse_rt_name(name);
        for (int i = 1; !sig && i < SIGRTMIN; i++) {
                const char *abbrev = sigabbrev_np(i);
                if (abbrev && strcasecmp(abbrev, name) == 0)
                        sig = i;
        }
        return sig;
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
