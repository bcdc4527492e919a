/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Config: procnotifyd's settings, from defaults, the INI file
 * (SYSCONFDIR/procnotify/procnotify.conf, parsed with libinih) and command-line
 * flags, in that order. Parsing is pure (config_parse_string) so that it can
 * be unit-tested and fuzzed; config_load_file() only reads the file.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* PROCNOTIFY_PKGSYSCONFDIR: the build's sysconfdir/procnotify (meson.build). */
#define CONFIG_DEFAULT_PATH PROCNOTIFY_PKGSYSCONFDIR "/procnotify.conf"
#define CONFIG_DEFAULT_SOCKET "/run/procnotify/events.sock"

typedef struct Config {
        char *socket_path;
        char *dbus;                 /* "system", "none" or a bus address */
        bool journal;               /* crash-class events as journal entries */
        uint64_t receive_buffer;    /* connector socket, bytes */
        uint32_t kernel_events;     /* PROC_EVENT_* mask; 0 = all */
        unsigned max_clients;
        unsigned max_clients_per_uid;
        unsigned max_subscriptions; /* per client */
        unsigned max_subscriptions_per_uid; /* across connections and sinks */
        uint64_t client_queue_bytes;
        uint64_t max_processes;     /* process table entries */
        unsigned max_watches;       /* per connection */
        unsigned max_watches_per_uid;
        unsigned max_traced_threads; /* under ptrace ("stop") watches, in all */
        char *group;                /* members see every event */
        int log_level;              /* syslog level */
        /* Command-line flags (main.c) over the file: kept here so that a
         * reload (SIGHUP) applies them again over the new file. */
        uint64_t override_receive_buffer; /* --receive-buffer; UINT64_MAX: none */
        int override_log_level;           /* --log-level; -1: none */

        /* [Run]: supervised children (supervisor.c) */
        bool run_enabled;           /* Enabled=: the broker may start children */
        int run_output;             /* CONFIG_RUN_OUTPUT_* */
        char *run_log_directory;    /* for CONFIG_RUN_OUTPUT_FILE */
        unsigned run_stop_timeout;  /* seconds between SIGTERM and SIGKILL at shutdown */
        unsigned max_children;      /* [Limits] MaxChildren= */
        unsigned max_children_per_uid;
        /* Patched-kernel prctls: the number and the signal, both 0 when unset. */
        int predump_prctl, predump_signal;
        int adopt_prctl, adopt_signal;
} Config;

enum {
        CONFIG_RUN_OUTPUT_AUTO,     /* the journal if it listens, else a file */
        CONFIG_RUN_OUTPUT_JOURNAL,
        CONFIG_RUN_OUTPUT_FILE,     /* LogDirectory/NAME.log */
        CONFIG_RUN_OUTPUT_NULL,     /* /dev/null */
};

#define CONFIG_DEFAULT_RUN_LOG_DIRECTORY "/var/log/procnotify"

int config_new(Config **ret);  /* defaults */
Config *config_free(Config *c);

/* Parse INI text into c. Grammar: "[Section]", "Key=Value", comments on
 * lines of their own or after a value ("Key=value  # why": '#' or ';' after
 * a blank), leading blanks ignored. Returns 0, -ENOMEM, or -EINVAL with every
 * error in error (error_size bytes), one a line, "line N: message" (a
 * message about the file as a whole names no line); if they do not all fit,
 * the last line says how many more there were. Settings of good lines are
 * applied even when others are bad, so c is not to be used after -EINVAL. */
int config_parse_string(Config *c, const char *text, char *error, size_t error_size);
/* Read and parse a file. A missing file is fine when optional. */
int config_load_file(Config *c, const char *path, bool optional, char *error, size_t error_size);

/* "USR1", "SIGRTMIN+2", "10" -> a signal the broker may take for a
 * patched-kernel prctl: not one it uses itself (CHLD, TERM, INT, HUP) and
 * not KILL or STOP. -EINVAL otherwise. */
int config_parse_prctl_signal(const char *s, int *ret);

/* Apply the command-line overrides (override_*) over what the file set. */
void config_apply_overrides(Config *c);

/* "32M", "64K", "1G", "4096" -> bytes. */
int config_parse_size(const char *s, uint64_t *ret);
