/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * procnotifyctl's D-Bus side: subscribe to org.procnotify.Broker1 and turn
 * its signals back into PnEvents, so that `monitor --dbus` prints exactly
 * what `monitor` prints over the socket; and GetStatistics as JSON.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "procnotify/event.h"

struct json_object;

typedef struct CtlDbus CtlDbus;

/* Connect to the bus at address (NULL: the system bus). */
int ctl_dbus_open(CtlDbus **ret, const char *address);
CtlDbus *ctl_dbus_free(CtlDbus *d);

/* Subscribe (events: NULL-terminated names, or NULL for all; match: a JSON
 * object of the JSON protocol's match keys, or NULL). On a refusal returns a
 * negative errno and the bus error's name and message in error. */
int ctl_dbus_subscribe(CtlDbus *d, char *const *events, struct json_object *match, bool threads,
                       char *error, size_t size);

/* The next event: 1 (strings valid until the next call), 0 on timeout,
 * -ECONNRESET if the bus went away. */
int ctl_dbus_next(CtlDbus *d, PnEvent *ret, int timeout_ms);

/* GetStatistics as a JSON object (the caller puts it). */
int ctl_dbus_statistics(CtlDbus *d, struct json_object **ret, char *error, size_t size);
