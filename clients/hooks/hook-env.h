/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The environment of a hook process: the event as PROCNOTIFY_* variables,
 * named after the JSON fields (PROTOCOL.md) upper-cased, on top of what the
 * runner itself was given. Pure: no I/O, no logging.
 */
#pragma once

#include <stddef.h>

#define HOOK_ENV_PREFIX "PROCNOTIFY_"
#define HOOK_ENV_MAX_FIELDS 128   /* members of an event taken into the environment */

/*
 * One "PROCNOTIFY_<FIELD>=<value>" entry for each top-level member of the
 * event's JSON line (len bytes, no newline), in the line's order: FIELD is
 * the member's name upper-cased ("exit_code" → PROCNOTIFY_EXIT_CODE). Values:
 * a string as it is (up to an embedded NUL), a number as written, true/false,
 * null as the empty string, an array as its elements joined with ","
 * ("connector,pidfd"), an object as its JSON text. Members whose name is not
 * of [a-z0-9_] are left out. Returns 0 and a NULL-terminated array (free with
 * hook_strv_free()), -EBADMSG if the line is not a JSON object, or -ENOMEM.
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
