/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Bounds of D-Bus arguments (see sink-dbus-args.h). sd-bus has read the
 * whole message by the time a handler runs (the bus bounds its size, at
 * up to 128 MiB), but nothing has been parsed or copied: each method here
 * would allocate per entry (a json-c object per event name, 100 bytes and
 * more each). This walk reads without copying and gives up as soon as the
 * budget of a JSON line is spent, so an oversized call costs what a
 * 64 KiB one does and is refused before anything is allocated for it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/macro.h"
#include "sink-dbus-args.h"

#define ERROR_LIMIT_EXCEEDED "org.procnotify.Broker1.Error.LimitExceeded"

typedef struct ArgsBudget {
        size_t bytes;
} ArgsBudget;

/* Read the values of the current container until its end. */
static int args_walk(sd_bus_message *m, ArgsBudget *b, char container, unsigned depth) {
        size_t entries = 0;

        for (;;) {
                const char *contents;
                char type;
                int r = sd_bus_message_peek_type(m, &type, &contents);
                if (r < 0)
                        return r;
                if (r == 0)
                        return 0;
                if (container == 'a' && ++entries > DBUS_ARGS_MAX_ENTRIES)
                        return DBUS_ARGS_E_ENTRIES;
                if (strchr("avre", type)) {
                        if (depth >= DBUS_ARGS_MAX_DEPTH)
                                return DBUS_ARGS_E_DEPTH;
                        b->bytes += 8;
                        if (b->bytes > DBUS_ARGS_MAX_BYTES)
                                return DBUS_ARGS_E_BYTES;
                        r = sd_bus_message_enter_container(m, type, contents);
                        if (r < 0)
                                return r;
                        r = args_walk(m, b, type, depth + 1);
                        if (r != 0)
                                return r;
                        r = sd_bus_message_exit_container(m);
                        if (r < 0)
                                return r;
                        continue;
                }
                union {
                        const char *s;
                        uint64_t u;
                        double d;
                } v;
                r = sd_bus_message_read_basic(m, type, &v);
                if (r < 0)
                        return r;
                b->bytes += strchr("sog", type) ? 5 + strlen(v.s) : 8;
                if (b->bytes > DBUS_ARGS_MAX_BYTES)
                        return DBUS_ARGS_E_BYTES;
        }
}

int sink_dbus_args_check(sd_bus_message *m, char *error, size_t size) {
        ArgsBudget b = { 0 };
        int r = args_walk(m, &b, 0, 0);

        (void) sd_bus_message_rewind(m, true);
        switch (r) {
        case DBUS_ARGS_E_BYTES:
                snprintf(error, size, "The arguments exceed %d bytes (the JSON socket's line limit).",
                         DBUS_ARGS_MAX_BYTES);
                break;
        case DBUS_ARGS_E_ENTRIES:
                snprintf(error, size, "An array has more than %d entries.", DBUS_ARGS_MAX_ENTRIES);
                break;
        case DBUS_ARGS_E_DEPTH:
                snprintf(error, size, "The arguments nest containers more than %d deep.",
                         DBUS_ARGS_MAX_DEPTH);
                break;
        }
        return r;
}

int sink_dbus_args_filter(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        uint64_t *refused = userdata;
        uint8_t type = 0;
        char error[128];
        int r;

        (void) ret_error;
        if (sd_bus_message_get_type(m, &type) < 0 || type != SD_BUS_MESSAGE_METHOD_CALL)
                return 0;
        r = sink_dbus_args_check(m, error, sizeof(error));
        if (r == 0)
                return 0;
        if (refused)
                (*refused)++;
        if (r < 0)
                /* sd-bus could not read it: its own handlers would fail alike. */
                return sd_bus_reply_method_errorf(m, SD_BUS_ERROR_INVALID_ARGS, "The arguments cannot be read.") < 0
                               ? 0 : 1;
        /* Handled: no handler sees the call. A reply that cannot be queued
         * is the caller's loss (it gets NoReply), not the broker's. */
        (void) sd_bus_reply_method_errorf(m, ERROR_LIMIT_EXCEEDED, "%s", error);
        return 1;
}
