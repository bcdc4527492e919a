/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Runner: procnotify-hooks' one object. It loads hooks.d, subscribes to the
 * broker as an ordinary (unprivileged) client through libprocnotify, and
 * runs each matching hook's command for each event, without ever waiting
 * for one: hook processes are reaped, timed out and counted by events of
 * the same sd-event loop that reads the broker.
 *
 *     broker socket ──► runner_on_broker ──► hook_file_match ──► start, queue, or drop (logged)
 *                                                                   │
 *     SIGCHLD (child source) ◄── hook process group ◄───────────────┘
 *     timer (Timeout=) ──► kill(-pgid, SIGKILL)
 *
 * Limits: RUNNER_MAX_HOOKS files, MaxConcurrent= per hook and
 * RUNNER_MAX_RUNNING in all, MaxQueued= per hook and RUNNER_MAX_QUEUED_BYTES
 * in all; an event beyond them is dropped and counted in the log.
 */
#pragma once

#include <stdbool.h>

#define RUNNER_DEFAULT_HOOKS_DIR PROCNOTIFY_PKGSYSCONFDIR "/hooks.d" /* meson.build */
#define RUNNER_MAX_HOOKS 1024
#define RUNNER_MAX_RUNNING 256                 /* hook processes at once, all hooks */
#define RUNNER_MAX_QUEUED_BYTES (16u << 20)    /* event lines queued, all hooks */
#define RUNNER_MAX_SUBSCRIPTIONS 32            /* more hooks: one subscription for all */
#define RUNNER_STOP_GRACE_USEC (5 * UINT64_C(1000000))

typedef struct Runner Runner;

/* A runner for the hooks in hooks_dir and the broker at socket_path (NULL:
 * $PROCNOTIFY_SOCKET or the default). No I/O yet. Returns 0 or -errno. */
int runner_new(Runner **ret, const char *hooks_dir, const char *socket_path);
Runner *runner_free(Runner *r);

/* Load the hooks, connect, serve until SIGTERM or SIGINT (SIGHUP reloads
 * hooks.d). Returns 0 after a clean stop, or a negative errno if the loop
 * could not be set up or had to stop (the broker's connection could not be
 * watched any more). Logs everything worth knowing. */
int runner_run(Runner *r);

/* Load hooks.d and report every problem, without connecting: returns the
 * number of files with errors, or a negative errno. */
int runner_check(Runner *r, unsigned *ret_loaded);

/* s made safe for one line of the log, into buf (size >= 1; cut on a
 * character boundary when it does not fit): a backslash becomes "\\\\",
 * newline, tab and carriage return "\\n", "\\t", "\\r", any other C0
 * control character, DEL and a byte that is not valid UTF-8 "\\xHH", a C1
 * control character (U+0080..U+009F) "\\u00HH"; the rest is copied. So a
 * process name cannot start a line of its own or drive the terminal that
 * shows the log (a comm is whatever its process chose, ESC and newline
 * included). Returns buf. */
const char *runner_log_escape(char *buf, size_t size, const char *s);
