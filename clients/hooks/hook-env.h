/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The environment of a hook process: the event as PROCNOTIFY_* variables,
 * named after the JSON fields (PROTOCOL.md) upper-cased, on top of what the
 * runner itself was given. Pure: no I/O, no logging.
 */
#pragma once

#include <stddef.h>

#include "protocol/event-fields.h"

#define HOOK_ENV_PREFIX "PROCNOTIFY_"
#define HOOK_ENV_MAX_FIELDS EVENT_FIELDS_MAX /* members of an event taken into the environment */

/*
 * event_fields_from_line() with the prefix PROCNOTIFY_: one
 * "PROCNOTIFY_<FIELD>=<value>" entry for each top-level member of the event's
 * JSON line ("exit_code" → PROCNOTIFY_EXIT_CODE). Free with hook_strv_free().
 */
int hook_env_from_event(const char *line, size_t len, char ***ret);

/*
 * The whole environment of a hook: inherited (the runner's environ) without
 * the variables that speak to the runner alone (NOTIFY_SOCKET, LISTEN_*,
 * WATCHDOG_*) and without any PROCNOTIFY_*, then overrides (e.g. HOME=,
 * USER= of the hook's user) replacing inherited variables of the same name,
 * then event. Any list may be NULL. Every string is copied. Returns 0 and a
 * NULL-terminated array (free with hook_strv_free()), or -ENOMEM.
 */
int hook_env_build(char ***ret, char *const *inherited, char *const *overrides, char *const *event);
