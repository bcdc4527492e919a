/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Bounds of what a D-Bus caller may send the broker, checked before any
 * method reads (or copies) its arguments: the same budget as a JSON line.
 */
#pragma once

#include <systemd/sd-bus.h>

#include "protocol/request.h"

/* A call's arguments, counted as marshalled (a string: 4 + its length + 1;
 * any other value or container: 8), the JSON socket's line limit. */
#define DBUS_ARGS_MAX_BYTES (PN_MAX_LINE - 1)
/* Entries of any one array: a run's argv is the longest list the broker takes. */
#define DBUS_ARGS_MAX_ENTRIES RUN_MAX_ARGS
/* Containers inside each other, as JSON's nesting (D-Bus itself allows 64). */
#define DBUS_ARGS_MAX_DEPTH PN_MAX_JSON_DEPTH

enum {
        DBUS_ARGS_E_BYTES = 1,   /* more than DBUS_ARGS_MAX_BYTES */
        DBUS_ARGS_E_ENTRIES,     /* an array of more than DBUS_ARGS_MAX_ENTRIES */
        DBUS_ARGS_E_DEPTH,       /* deeper than DBUS_ARGS_MAX_DEPTH */
};

/* Walk m's arguments, copying nothing, and stop at the first bound
 * exceeded: the cost is that of reading at most DBUS_ARGS_MAX_BYTES,
 * whatever the message's size. Rewinds m for its reader after. Returns 0,
 * a DBUS_ARGS_E_* (with a message for the caller in error, size bytes),
 * or a negative errno (a message sd-bus cannot read). */
int sink_dbus_args_check(sd_bus_message *m, char *error, size_t size);

/* An sd-bus filter (sd_bus_add_filter): refuses a method call that exceeds
 * a bound with org.procnotify.Broker1.Error.LimitExceeded before any
 * handler (the broker's or sd-bus's own: Properties, Introspectable) sees
 * it. userdata: a uint64_t counter of refused calls, or NULL. */
int sink_dbus_args_filter(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);
