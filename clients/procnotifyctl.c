/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * procnotifyctl: the command-line client of procnotifyd, built on
 * libprocnotify. Commands: monitor (a live table, or JSON lines), wait (the
 * first matching event, for scripts and failover hooks), status, subscribe
 * (a signal for every matching event, then exec a command that traps it),
 * and the broker's supervised children: run, children, kill.
 *
 * Options may come before or after the command; each command refuses those
 * it has no use for, so that a misplaced filter is an error, not a silent
 * "match everything". watch asks the broker to follow one process (its exit
 * from a pidfd, with --stop its group-stops through ptrace) and prints its
 * events until it exits. Filters become the "match" object of one subscription
 * (PROTOCOL.md): the broker checks it, and its error is shown as it is.
 *
 * Exit status: 0 success (for watch: the process exited), 1 `wait` or
 * `watch` timed out, 2 usage error, 3 the broker could not be reached,
 * closed the connection or refused the request, 4 `wait --follow`: the
 * service ended before a matching event; subscribe: 126/127 when the command
 * could not be executed (as a shell does).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/json-util.h"
#include "common/macro.h"
#include "ctl-dbus.h"
#include "ctl-journal.h"
#include "ctl-status.h"
#include "protocol/filter.h"
#include "procnotify/client.h"
#include "protocol/event-json.h"

#ifndef PROCNOTIFY_VERSION
#define PROCNOTIFY_VERSION "0.0.0"
#endif

enum {
        EXIT_TIMEOUT = 1,
        EXIT_USAGE = 2,
        EXIT_BROKER = 3,
        EXIT_ENDED = 4,
        EXIT_REFUSED = 5,      /* the broker refused a well-formed request */
        EXIT_INTERRUPTED = 130, /* SIGINT or SIGTERM, as a shell reports SIGINT */
        EXIT_CANNOT_EXEC = 126,
        EXIT_NOT_FOUND = 127,
};

#define MAX_TIMEOUT_SEC 1e9 /* ~31 years: "forever" without overflowing ms */

DEFINE_TRIVIAL_CLEANUP_FUNC(PnClient *, pn_client_free)

typedef enum Command {
        COMMAND_NONE,
        COMMAND_MONITOR,
        COMMAND_WAIT,
        COMMAND_STATUS,
        COMMAND_WATCH,
        COMMAND_SUBSCRIBE,
        COMMAND_LIST,
        COMMAND_RUN,      /* run, children and kill last: checked as >= COMMAND_RUN */
        COMMAND_CHILDREN,
        COMMAND_KILL,
} Command;

typedef enum Format {
        FORMAT_DEFAULT, /* monitor, status: table; wait: json */
        FORMAT_TABLE,
        FORMAT_JSON,        /* one line each, as the broker sent it */
        FORMAT_JSON_PRETTY, /* indented */
        FORMAT_OPENMETRICS, /* status only */
} Format;

typedef struct Options {
        Command command;
        const char *socket;
        char **events;              /* NULL-terminated, or NULL for all */
        size_t n_events;
        struct json_object *match;  /* built from the filter flags */
        struct json_object *signals; /* --signal values: monitor and wait match them */
        bool crash;                 /* --crash: predump, or exit by a signal */
        bool threads;
        bool has_filter;            /* any of the above given */
        Format format;
        bool no_legend;             /* no table header */
        uint64_t count;             /* monitor: exit after this many events; 0: none */
        double timeout;             /* seconds; < 0: none */
        bool reconnect;
        long watch_pid;             /* watch: the process; 0 not given */
        bool stop;                  /* watch --stop */
        bool dbus;                  /* org.procnotify.Broker1 instead of the socket */
        const char *dbus_address;   /* NULL: the system bus */
        bool help;
        /* run, kill */
        const char *name;
        const char *user;
        struct json_object *env;    /* array of "NAME=value" */
        bool follow;                /* run --follow */
        long follow_pid;            /* monitor, wait: --follow=PID; 0 not given */
        char **command_words;       /* run, subscribe: the words after "--" */
        size_t n_command_words;
        const char *target;         /* kill: pid or name */
        const char *since;          /* list: --since= */
        const char *directory;      /* list: --directory= */
        const char *signal;
} Options;

static const char *const program = "procnotifyctl";

static void options_done(Options *o) {
        json_object_put(o->env);
        for (size_t i = 0; i < o->n_events; i++)
                free(o->events[i]);
        free(o->events);
        json_object_put(o->match);
        json_object_put(o->signals);
}

/* --- messages --- */

static const char filters_help[] =
        "Filters (each may be repeated; values of one filter are alternatives,\n"
        "different filters must all match):\n"
        "  -e, --events=LIST         event types, comma-separated: fork, exec, uid, gid,\n"
        "                            sid, ptrace, comm, predump, exit, adopt, stop,\n"
        "                            continue (default: all; overruns always come)\n"
        "  -p, --pid=PID             the process (pid or thread group id)\n"
        "      --tgid=PID            the process id\n"
        "      --ppid=PID            the parent process id\n"
        "      --uid=UID             the real user id\n"
        "  -c, --comm=NAME           process name (shell glob)\n"
        "      --exe=PATH            executable (shell glob)\n"
        "  -u, --unit=UNIT           systemd unit (shell glob)\n"
        "      --cgroup=PATH         cgroup, or any below it\n"
        "  -d, --descendants-of=PID  the process and everything below it\n"
        "      --cmdline=GLOB        command line, arguments joined by single spaces\n"
        "                            (shell glob: \"*bfdd -n blue*\")\n"
        "      --netns=NS            network namespace: its inode, or its name under\n"
        "                            /run/netns (resolved when subscribing)\n"
        "      --crash               a crash: a predump, or an exit by a signal (not\n"
        "                            --events); an exit(0) or exit(1) is no crash\n"
        "      --signal=SIGNAL       monitor, wait: an exit killed by (or a stop by)\n"
        "                            SIGNAL, a name (SEGV, SIGABRT) or number; a\n"
        "                            predump's signal is not known: it never matches\n"
        "      --exit-code=N         an exit with status N (0-255; 128+signal if killed)\n"
        "  -f, --follow=PID          the service PID belongs to, through its forks and\n"
        "                            re-parenting; where its main process went is shown\n"
        "                            as \"follow\" lines (not with --dbus or --reconnect)\n"
        "      --threads             also per-thread events\n";

static void help_global(void) {
        printf("Usage: %s [--socket=PATH] COMMAND [OPTIONS]\n"
               "\n"
               "Watch process lifecycle events from procnotifyd.\n"
               "\n"
               "Commands:\n"
               "  monitor   show events as they happen (a table, or --json lines)\n"
               "  wait      wait for the first matching event, print it, exit 0\n"
               "  status    show the broker's version, kernel features and statistics\n"
               "  subscribe have a signal sent for every matching event, then run a command\n"
               "            (in this very process) that handles it\n"
               "  run       start a command as a supervised child of the broker\n"
               "  children  list the broker's supervised children\n"
               "  kill      signal a supervised child\n"
               "  watch     follow one process (exit; with --stop, stop/continue) until it exits\n"
               "  list      the crash history procnotifyd wrote to the journal\n"
               "\n"
               "Options:\n"
               "  -s, --socket=PATH   the broker's socket (default: $PROCNOTIFY_SOCKET, or\n"
               "                      %s)\n"
               "  -h, --help          show this help, or a command's: COMMAND --help\n"
               "      --version       show the version\n"
               "\n"
               "Exit status: 0 success, 1 wait/watch timed out, 2 usage error (also a request\n"
               "or filter the broker found malformed), 3 the broker could not be reached or\n"
               "failed, 4 wait --follow: the service ended first, 5 the broker refused the\n"
               "request (access, limits, no such process), 130 interrupted (SIGINT, SIGTERM).\n"
               "See procnotifyctl(1).\n",
               program, PN_CLIENT_DEFAULT_SOCKET);
}

static void help_monitor(void) {
        printf("Usage: %s [--socket=PATH] monitor [FILTERS] [--json[=pretty]] [-n N] [--reconnect]\n"
               "\n"
               "Show matching events as they happen, one line each, until interrupted\n"
               "(exit 130) or N events were shown (exit 0): a table of TIME EVENT PID PPID\n"
               "UID UNIT COMM INFO, or with --json the broker's JSON line of each event. Lost\n"
               "events (overrun) are always shown. Ends as soon as nobody reads standard\n"
               "output any more (monitor | head -1).\n"
               "\n"
               "%s"
               "\n"
               "Options:\n"
               "  -j, --json[=STYLE]  print each event's JSON line (short, the default), or\n"
               "                      each event indented (pretty)\n"
               "      --format=F      table (default) or json\n"
               "      --no-legend     no table header\n"
               "  -n, --count=N       exit 0 after N events (overruns and follow reports are\n"
               "                      shown but not counted)\n"
               "      --reconnect     when the broker restarts, connect and subscribe again\n"
               "                      (the gap is shown as an overrun \"restart\")\n"
               "      --dbus[=ADDRESS]  subscribe over D-Bus (org.procnotify.Broker1 on the\n"
               "                      system bus, or the bus at ADDRESS) instead of the socket\n",
               program, filters_help);
}

static void help_wait(void) {
        printf("Usage: %s [--socket=PATH] wait [FILTERS] [--timeout=SEC] [--format=F]\n"
               "\n"
               "Subscribe, wait for the first matching event, print it and exit 0; exit 1\n"
               "if none came within the timeout. An overrun while waiting is a warning on\n"
               "standard error (the event waited for may have been lost), and waiting goes\n"
               "on. With --follow, exit 4 (printing the broker's \"follow\" report) if the\n"
               "service ended before a matching event.\n"
               "\n"
               "%s"
               "\n"
               "Options:\n"
               "  -t, --timeout=SEC   give up after SEC seconds (fractions allowed)\n"
               "  -j, --json[=STYLE]  print the event's JSON line (short, the default), or\n"
               "                      indented (pretty)\n"
               "      --format=F      json or table\n"
               "      --no-legend     no table header\n",
               program, filters_help);
}

static void help_watch(void) {
        printf("Usage: %s [--socket=PATH] watch [--stop] [--timeout=SEC] [--json] PID\n"
               "\n"
               "Have the broker watch process PID and print its events until it exits: its\n"
               "exit comes from a pidfd as well as the proc connector (reported once). With\n"
               "--stop the broker also traces it (PTRACE_SEIZE) to report when it is stopped\n"
               "and continued; it behaves as untraced, but cannot be debugged meanwhile.\n"
               "Exits 0 once the process exited.\n"
               "\n"
               "Options:\n"
               "      --stop          also report stop and continue (ptrace)\n"
               "  -t, --timeout=SEC   give up after SEC seconds (exit 1)\n"
               "  -j, --json[=STYLE]  print each event's JSON line (short), or indented (pretty)\n"
               "      --format=F      table (default) or json\n"
               "      --no-legend     no table header\n",
               program);
}

static void help_status(void) {
        printf("Usage: %s [--socket=PATH] status [--json[=pretty] | --format=F]\n"
               "\n"
               "Show the broker's status: version, instance, uptime, kernel features, the\n"
               "events lost (in all, and where), then each group of statistics (connector,\n"
               "process table, watches, events per type, clients, ...) in human units.\n"
               "\n"
               "Options:\n"
               "  -j, --json[=STYLE]  the reply as the broker sent it, on one line (short,\n"
               "                      the default), or indented (pretty)\n"
               "      --format=F      table (the default), json, or openmetrics: the\n"
               "                      Prometheus text format, for node_exporter's textfile\n"
               "                      collector (procnotify_* metrics)\n"
               "      --dbus[=ADDRESS]  ask org.procnotify.Broker1 (GetStatistics) on the\n"
               "                      system bus, or the bus at ADDRESS\n",
               program);
}

static void help_list(void) {
        printf("Usage: %s list [FILTERS] [--since=TIME] [--directory=DIR] [--json[=pretty]]\n"
               "\n"
               "Show the crash history: the predump, exit-by-signal, adopt and overrun events\n"
               "procnotifyd wrote to the journal (journalctl MESSAGE_ID=...), oldest first, as\n"
               "monitor shows events. Reading the system journal needs root or the\n"
               "systemd-journal or adm group.\n"
               "\n"
               "%s"
               "\n"
               "Options:\n"
               "      --since=TIME    from TIME on: 2026-12-07, \"2026-12-07 14:30\", today,\n"
               "                      yesterday, -30s, -15min, -2h, -7d\n"
               "      --directory=DIR the journal files in DIR instead of the system journal\n"
               "                      (e.g. /var/log/journal/remote from systemd-journal-remote)\n"
               "  -j, --json[=STYLE]  each event's JSON line (short), or indented (pretty)\n"
               "      --no-legend     no table header\n",
               program, filters_help);
}

static void help_subscribe(void) {
        printf("Usage: %s [--socket=PATH] subscribe --signal=SIGNAL [FILTERS] -- COMMAND [ARGUMENT...]\n"
               "\n"
               "Subscribe so that procnotifyd sends SIGNAL for every matching event, then\n"
               "execute COMMAND in this same process: the broker signals the process that\n"
               "connected, so COMMAND (a shell script with \"trap\", say) is the one that gets\n"
               "it, with the event's process id in si_value. No event lines are sent (the\n"
               "subscription is \"lines\": false); the connection stays open on the file\n"
               "descriptor named in $PROCNOTIFY_FD, and the subscription lasts as long as\n"
               "it is open. A signal can come as soon as COMMAND starts: match only\n"
               "processes COMMAND starts after its handler is set (--descendants-of=$$\n"
               "in a script that execs this), or the signal's default action applies.\n"
               "\n"
               "%s"
               "\n"
               "Options:\n"
               "      --signal=SIGNAL  a name (USR1, SIGRTMIN+2) or number; not KILL or STOP\n",
               program, filters_help);
}

static void help_run(void) {
        printf("Usage: %s [--socket=PATH] run [--name=NAME] [--user=USER] [--env=NAME=VALUE]...\n"
               "                 [--follow] -- COMMAND [ARGUMENT...]\n"
               "\n"
               "Ask procnotifyd to start COMMAND as its own child (root and members of the\n"
               "broker's group only). The child runs in its own session, with stdin from\n"
               "/dev/null, stdout and stderr to the journal or to the broker's log directory\n"
               "(NAME.log), a clean environment, and outlives this command. Prints the\n"
               "broker's \"running\" reply (JSON), with the child's pid.\n"
               "\n"
               "Options:\n"
               "      --name=NAME     the child's name (default: the command's base name)\n"
               "      --user=USER     run as USER (name or uid; root only; default: yourself)\n"
               "      --env=NAME=VALUE  add to the child's environment (repeatable)\n"
               "      --follow        then print the child's events (and its descendants')\n"
               "                      as JSON lines until it exits, and exit with its\n"
               "                      exit code\n",
               program);
}

static void help_children(void) {
        printf("Usage: %s [--socket=PATH] children [--json]\n"
               "\n"
               "List the broker's supervised children and the orphans it adopted from them:\n"
               "PID NAME UID STATE COMMAND.\n"
               "\n"
               "Options:\n"
               "  -j, --json          print the broker's reply as it is\n",
               program);
}

static void help_kill(void) {
        printf("Usage: %s [--socket=PATH] kill [--signal=SIGNAL] PID|NAME\n"
               "\n"
               "Signal a supervised child (or an adopted orphan, by pid) through the broker,\n"
               "which holds its pidfd. By name: every child of that name. Root, or the user\n"
               "the child runs as.\n"
               "\n"
               "Options:\n"
               "      --signal=SIGNAL  a name (TERM, SIGKILL) or number (default TERM)\n",
               program);
}

_printf_(1, 2) static int usage_error(const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "%s: ", program);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, " (see --help)\n");
        return EXIT_USAGE;
}

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig) {
        stop_requested = sig;
}

/* SIGINT/SIGTERM end a waiting command with EXIT_INTERRUPTED. No
 * SA_RESTART: the wait in pn_client_next() returns -EINTR and the loop
 * sees the flag at once. */
static void install_stop_handlers(void) {
        struct sigaction sa = { .sa_handler = on_stop_signal };
        sigemptyset(&sa.sa_mask);
        (void) sigaction(SIGINT, &sa, NULL);
        (void) sigaction(SIGTERM, &sa, NULL);
}

/* The exit status for an error code of the broker: a request it found
 * malformed is a usage error (2), a failure of its own is 3, any other
 * refusal 5. */
static int exit_status_of_error(const char *code) {
        static const char *const malformed[] = { "invalid-json", "invalid-request", "unknown-op",
                                                 "invalid-filter", "line-too-long" };
        for (size_t i = 0; i < ELEMENTSOF(malformed); i++)
                if (streq(code, malformed[i]))
                        return EXIT_USAGE;
        return streq(code, "internal") ? EXIT_BROKER : EXIT_REFUSED;
}

/* Say why a request failed: the broker's own code and message when it
 * answered with an error, else the local error. Returns the exit status. */
static int broker_error(PnClient *c, const char *what, int r) {
        if (stop_requested)
                return EXIT_INTERRUPTED; /* the user stopped it: no error */
        if (pn_client_get_error_code(c)[0]) {
                fprintf(stderr, "%s: %s refused by procnotifyd: %s: %s\n", program, what,
                        pn_client_get_error_code(c), pn_client_get_error_message(c));
                return exit_status_of_error(pn_client_get_error_code(c));
        } else if (r == -ECONNRESET)
                fprintf(stderr, "%s: %s: procnotifyd closed the connection\n", program, what);
        else if (r == -ETIMEDOUT)
                fprintf(stderr, "%s: %s: procnotifyd did not answer\n", program, what);
        else
                fprintf(stderr, "%s: %s: %s\n", program, what, strerror(-r));
        return EXIT_BROKER;
}

/* --- options --- */

static struct json_object *signal_json(const char *value);

static int events_add(Options *o, const char *list) {
        _cleanup_free_ char *copy = strdup(list);
        char *save = NULL;

        if (!copy)
                return -ENOMEM;
        if (!*list || list[0] == ',' || list[strlen(list) - 1] == ',' || strstr(list, ",,"))
                return usage_error("--events needs a comma-separated list of event types, not \"%s\"",
                                   list);
        for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
                char **e = realloc(o->events, (o->n_events + 2) * sizeof(*e));
                if (!e)
                        return -ENOMEM;
                o->events = e;
                o->events[o->n_events] = strdup(w);
                if (!o->events[o->n_events])
                        return -ENOMEM;
                o->events[++o->n_events] = NULL;
        }
        return 0;
}

/* Append value to the array match[key]. Takes value. */
static int match_add(Options *o, const char *key, struct json_object *value) {
        struct json_object *a;

        if (!value)
                return -ENOMEM;
        if (!json_object_object_get_ex(o->match, key, &a)) {
                a = json_object_new_array();
                if (!a || json_object_object_add(o->match, key, a) < 0) {
                        json_object_put(a);
                        json_object_put(value);
                        return -ENOMEM;
                }
        }
        if (json_object_array_add(a, value) < 0) {
                json_object_put(value);
                return -ENOMEM;
        }
        return 0;
}

/* A pid or uid: a decimal number 0..UINT32_MAX. The broker checks the range
 * each key allows. */
static int match_add_number(Options *o, const char *flag, const char *key, const char *value) {
        unsigned long long v;
        char *end;

        errno = 0;
        v = strtoull(value, &end, 10);
        if (errno || end == value || *end || value[0] == '-' || v > UINT32_MAX)
                return usage_error("--%s needs a non-negative number, not \"%s\"", flag, value);
        return match_add(o, key, json_object_new_int64((int64_t) v));
}

static int match_add_string(Options *o, const char *flag, const char *key, const char *value) {
        if (!*value)
                return usage_error("--%s needs a value", flag);
        return match_add(o, key, json_object_new_string(value));
}

/* --netns: an inode number, or a name under /run/netns (the broker resolves it). */
static int match_add_netns(Options *o, const char *value) {
        char *end;
        unsigned long long v;

        if (!*value)
                return usage_error("--netns needs an inode number or a name under /run/netns");
        errno = 0;
        v = strtoull(value, &end, 10);
        if (value[0] >= '0' && value[0] <= '9' && !errno && !*end)
                return match_add(o, "netns", json_object_new_int64(v > INT64_MAX ? -1 : (int64_t) v));
        return match_add(o, "netns", json_object_new_string(value));
}

static int match_add_exit_code(Options *o, const char *value) {
        char *end;
        long v;

        errno = 0;
        v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < 0 || v > 255)
                return usage_error("--exit-code needs a number from 0 to 255, not \"%s\"", value);
        return match_add(o, "exit_code", json_object_new_int64(v));
}

static int parse_timeout(Options *o, const char *value) {
        char *end;
        double t;

        errno = 0;
        t = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(t) || t < 0)
                return usage_error("--timeout needs a number of seconds, not \"%s\"", value);
        o->timeout = MIN(t, MAX_TIMEOUT_SEC);
        return 0;
}

static int parse_format(Options *o, const char *value) {
        if (streq(value, "json"))
                o->format = FORMAT_JSON;
        else if (streq(value, "table"))
                o->format = FORMAT_TABLE;
        else if (streq(value, "openmetrics"))
                o->format = FORMAT_OPENMETRICS;
        else
                return usage_error("--format is table, json or openmetrics, not \"%s\"", value);
        return 0;
}

static int parse_json_style(Options *o, const char *value) {
        if (!value || streq(value, "short"))
                o->format = FORMAT_JSON;
        else if (streq(value, "pretty"))
                o->format = FORMAT_JSON_PRETTY;
        else
                return usage_error("--json is short or pretty, not \"%s\"", value);
        return 0;
}

static int parse_count(Options *o, const char *value) {
        char *end;
        unsigned long long n;

        errno = 0;
        n = strtoull(value, &end, 10);
        if (errno || end == value || *end || value[0] == '-' || n == 0)
                return usage_error("--count needs a number of events (1 or more), not \"%s\"", value);
        o->count = n;
        return 0;
}

/* A process id for --follow or watch: 1..INT_MAX; 0 if it is none. */
static long parse_pid(const char *word) {
        char *end;
        long pid;

        errno = 0;
        pid = strtol(word, &end, 10);
        if (errno || end == word || *end || pid <= 0 || pid > INT_MAX)
                return 0;
        return pid;
}

static int parse_follow(Options *o, const char *value) {
        if (o->follow_pid)
                return usage_error("--follow=PID follows one service; run one command per service");
        o->follow_pid = parse_pid(value);
        if (!o->follow_pid)
                return usage_error("--follow needs a process id, not \"%s\"", value);
        return match_add(o, "follow", json_object_new_int64(o->follow_pid));
}

static int parse_command(Options *o, const char *word) {
        if (o->command == COMMAND_KILL && !o->target) {
                o->target = word;
                return 0;
        }
        if (o->command == COMMAND_RUN || o->command == COMMAND_SUBSCRIBE)
                return usage_error("the command to run goes after \"--\": %s [OPTIONS] -- %s …",
                                   o->command == COMMAND_RUN ? "run" : "subscribe", word);
        if (o->command == COMMAND_WATCH && o->watch_pid == 0) {
                o->watch_pid = parse_pid(word);
                if (!o->watch_pid)
                        return usage_error("watch needs a process id, not \"%s\"", word);
                return 0;
        }
        if (o->command != COMMAND_NONE)
                return usage_error("unexpected argument \"%s\"", word);
        if (streq(word, "monitor"))
                o->command = COMMAND_MONITOR;
        else if (streq(word, "wait"))
                o->command = COMMAND_WAIT;
        else if (streq(word, "status"))
                o->command = COMMAND_STATUS;
        else if (streq(word, "watch"))
                o->command = COMMAND_WATCH;
        else if (streq(word, "subscribe"))
                o->command = COMMAND_SUBSCRIBE;
        else if (streq(word, "run"))
                o->command = COMMAND_RUN;
        else if (streq(word, "children"))
                o->command = COMMAND_CHILDREN;
        else if (streq(word, "kill"))
                o->command = COMMAND_KILL;
        else if (streq(word, "list"))
                o->command = COMMAND_LIST;
        else
                return usage_error("unknown command \"%s\"", word);
        return 0;
}

/* Returns 0 to go on, or the exit status: -1 stands for "exit 0 now". */
static int parse_argv(Options *o, int argc, char **argv) {
        enum {
                ARG_TGID = 0x100,
                ARG_PPID,
                ARG_UID,
                ARG_EXE,
                ARG_CGROUP,
                ARG_THREADS,
                ARG_FORMAT,
                ARG_RECONNECT,
                ARG_DBUS,
                ARG_STOP,
                ARG_VERSION,
                ARG_NAME,
                ARG_USER,
                ARG_ENV,
                ARG_SIGNAL,
                ARG_NO_LEGEND,
                ARG_SINCE,
                ARG_DIRECTORY,
                ARG_CMDLINE,
                ARG_NETNS,
                ARG_CRASH,
                ARG_EXIT_CODE,
        };
        static const struct option options[] = {
                { "socket", required_argument, NULL, 's' },
                { "events", required_argument, NULL, 'e' },
                { "pid", required_argument, NULL, 'p' },
                { "tgid", required_argument, NULL, ARG_TGID },
                { "ppid", required_argument, NULL, ARG_PPID },
                { "uid", required_argument, NULL, ARG_UID },
                { "comm", required_argument, NULL, 'c' },
                { "exe", required_argument, NULL, ARG_EXE },
                { "unit", required_argument, NULL, 'u' },
                { "cgroup", required_argument, NULL, ARG_CGROUP },
                { "descendants-of", required_argument, NULL, 'd' },
                { "threads", no_argument, NULL, ARG_THREADS },
                { "json", optional_argument, NULL, 'j' },
                { "no-legend", no_argument, NULL, ARG_NO_LEGEND },
                { "since", required_argument, NULL, ARG_SINCE },
                { "directory", required_argument, NULL, ARG_DIRECTORY },
                { "count", required_argument, NULL, 'n' },
                { "format", required_argument, NULL, ARG_FORMAT },
                { "timeout", required_argument, NULL, 't' },
                { "reconnect", no_argument, NULL, ARG_RECONNECT },
                { "dbus", optional_argument, NULL, ARG_DBUS },
                { "stop", no_argument, NULL, ARG_STOP },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "name", required_argument, NULL, ARG_NAME },
                { "user", required_argument, NULL, ARG_USER },
                { "env", required_argument, NULL, ARG_ENV },
                { "follow", optional_argument, NULL, 'f' },
                { "signal", required_argument, NULL, ARG_SIGNAL },
                { "cmdline", required_argument, NULL, ARG_CMDLINE },
                { "netns", required_argument, NULL, ARG_NETNS },
                { "crash", no_argument, NULL, ARG_CRASH },
                { "exit-code", required_argument, NULL, ARG_EXIT_CODE },
                {},
        };
        int c, r;

        opterr = 0; /* our own messages, with the program's name */
        /* "-" returns non-options in order as argument 1: the command may
         * stand anywhere, and options after it are still options. */
        while ((c = getopt_long(argc, argv, "-:s:e:p:c:u:d:f::jt:hn:", options, NULL)) >= 0) {
                switch (c) {
                case 1: r = parse_command(o, optarg); break;
                case 's': o->socket = optarg; r = 0; break;
                case 'e': r = events_add(o, optarg); o->has_filter = true; break;
                case 'p': r = match_add_number(o, "pid", "pid", optarg); break;
                case ARG_TGID: r = match_add_number(o, "tgid", "tgid", optarg); break;
                case ARG_PPID: r = match_add_number(o, "ppid", "ppid", optarg); break;
                case ARG_UID: r = match_add_number(o, "uid", "uid", optarg); break;
                case 'd': r = match_add_number(o, "descendants-of", "descendants_of", optarg); break;
                case 'c': r = match_add_string(o, "comm", "comm", optarg); break;
                case ARG_EXE: r = match_add_string(o, "exe", "exe", optarg); break;
                case 'u': r = match_add_string(o, "unit", "unit", optarg); break;
                case ARG_CGROUP: r = match_add_string(o, "cgroup", "cgroup", optarg); break;
                case ARG_THREADS: o->threads = o->has_filter = true; r = 0; break;
                case 'j':
                        /* "--json pretty" as well as "--json=pretty". */
                        if (!optarg && optind < argc &&
                            (streq(argv[optind], "short") || streq(argv[optind], "pretty")))
                                optarg = argv[optind++];
                        r = parse_json_style(o, optarg);
                        break;
                case ARG_NO_LEGEND: o->no_legend = true; r = 0; break;
                case ARG_SINCE: o->since = optarg; r = 0; break;
                case ARG_DIRECTORY: o->directory = optarg; r = 0; break;
                case 'n': r = parse_count(o, optarg); break;
                case ARG_FORMAT: r = parse_format(o, optarg); break;
                case 't': r = parse_timeout(o, optarg); break;
                case ARG_RECONNECT: o->reconnect = true; r = 0; break;
                case ARG_STOP: o->stop = true; r = 0; break;
                case ARG_DBUS:
                        o->dbus = true;
                        o->dbus_address = optarg && *optarg ? optarg : NULL;
                        r = 0;
                        break;
                case 'h': o->help = true; r = 0; break;
                case ARG_NAME: o->name = optarg; r = 0; break;
                case ARG_USER: o->user = optarg; r = 0; break;
                case ARG_ENV:
                        if (!o->env)
                                o->env = json_object_new_array();
                        r = !o->env || json_object_array_add(o->env, json_object_new_string(optarg)) < 0
                                    ? -ENOMEM : 0;
                        break;
                case 'f':
                        /* run --follow takes no value; the filter takes a
                         * pid, also as the next word ("--follow 812"). */
                        if (!optarg && optind < argc && parse_pid(argv[optind]))
                                optarg = argv[optind++];
                        if (optarg)
                                r = parse_follow(o, optarg);
                        else {
                                o->follow = true;
                                r = 0;
                        }
                        break;
                case ARG_SIGNAL:
                        /* kill, subscribe: the signal to send; monitor, wait: a filter. */
                        o->signal = optarg;
                        if (!o->signals)
                                o->signals = json_object_new_array();
                        r = !o->signals || json_object_array_add(o->signals, signal_json(optarg)) < 0
                                    ? -ENOMEM : 0;
                        break;
                case ARG_CMDLINE: r = match_add_string(o, "cmdline", "cmdline", optarg); break;
                case ARG_NETNS: r = match_add_netns(o, optarg); break;
                case ARG_CRASH: o->crash = o->has_filter = true; r = 0; break;
                case ARG_EXIT_CODE: r = match_add_exit_code(o, optarg); break;
                case ARG_VERSION:
                        printf("%s %s\n", program, PROCNOTIFY_VERSION);
                        return -1;
                case ':':
                        return usage_error("option \"%s\" needs a value", argv[optind - 1]);
                default:
                        /* optopt names an unknown short option; for an
                         * unknown long one it is 0 and optind is past it. */
                        if (optopt > 0 && optopt < 0x100)
                                return usage_error("unknown option \"-%c\"", optopt);
                        return usage_error("unknown option \"%s\"", argv[optind - 1]);
                }
                if (r == -ENOMEM) {
                        fprintf(stderr, "%s: out of memory\n", program);
                        return EXIT_FAILURE;
                }
                if (r)
                        return r;
        }
        if (json_object_object_length(o->match) > 0)
                o->has_filter = true;

        if (o->help) {
                switch (o->command) {
                case COMMAND_MONITOR: help_monitor(); break;
                case COMMAND_WAIT: help_wait(); break;
                case COMMAND_STATUS: help_status(); break;
                case COMMAND_RUN: help_run(); break;
                case COMMAND_CHILDREN: help_children(); break;
                case COMMAND_KILL: help_kill(); break;
                case COMMAND_WATCH: help_watch(); break;
                case COMMAND_SUBSCRIBE: help_subscribe(); break;
                case COMMAND_LIST: help_list(); break;
                default: help_global(); break;
                }
                return -1;
        }
        if (o->command == COMMAND_NONE)
                return usage_error("a command is needed: monitor, wait, status, watch, subscribe, list, run, children or kill");
        if (o->command != COMMAND_LIST && (o->since || o->directory))
                return usage_error("--since and --directory are options of list");
        if (o->command == COMMAND_LIST && (o->dbus || o->reconnect || o->follow_pid ||
                                           json_object_object_get_ex(o->match, "descendants_of", NULL)))
                return usage_error("list reads the journal: no --dbus, --reconnect, --follow or "
                                   "--descendants-of");
        if (o->command == COMMAND_STATUS && o->has_filter)
                return usage_error("status takes no filters");
        if (o->command != COMMAND_STATUS && o->format == FORMAT_OPENMETRICS)
                return usage_error("--format=openmetrics is for status");
        if (o->command != COMMAND_MONITOR && o->count)
                return usage_error("--count is an option of monitor");
        if (o->command == COMMAND_WATCH && o->has_filter)
                return usage_error("watch takes a process id, not filters");
        if (o->command == COMMAND_WATCH && o->watch_pid == 0)
                return usage_error("watch needs a process id");
        if (o->command != COMMAND_WATCH && o->stop)
                return usage_error("--stop is an option of watch");
        if (o->command >= COMMAND_RUN && (o->has_filter || o->dbus || o->reconnect))
                return usage_error("%s takes no filters, --dbus or --reconnect",
                                   o->command == COMMAND_RUN ? "run" : o->command == COMMAND_KILL ? "kill" : "children");
        if (o->command != COMMAND_RUN && (o->name || o->user || o->env || o->follow))
                return usage_error("--name, --user, --env and --follow are options of run");
        if (o->signal && (o->command == COMMAND_MONITOR || o->command == COMMAND_WAIT)) {
                /* A filter here: how the process ended. */
                o->has_filter = true;
                if (json_object_object_add(o->match, "signal", json_object_get(o->signals)) < 0) {
                        fprintf(stderr, "%s: out of memory\n", program);
                        return EXIT_FAILURE;
                }
        } else if (o->signal && o->command != COMMAND_KILL && o->command != COMMAND_SUBSCRIBE)
                return usage_error("--signal is an option of monitor, wait, kill and subscribe");
        if (o->signal && o->command != COMMAND_MONITOR && o->command != COMMAND_WAIT &&
            json_object_array_length(o->signals) > 1)
                return usage_error("--signal is given once to %s: it is the signal to send",
                                   o->command == COMMAND_KILL ? "kill" : "subscribe");
        if (o->crash && o->events)
                return usage_error("--crash chooses the events (predump and exit): give no --events");
        if (o->command == COMMAND_SUBSCRIBE && !o->signal)
                return usage_error("subscribe needs --signal=SIGNAL: the signal is what it subscribes to");
        if (o->command == COMMAND_SUBSCRIBE && (o->dbus || o->reconnect || o->format != FORMAT_DEFAULT))
                return usage_error("subscribe takes no --dbus, --reconnect, --json or --format: it prints nothing");
        if (o->follow_pid && (o->dbus || o->reconnect))
                return usage_error("--follow=PID is for the socket, without --reconnect: a new broker "
                                   "knows nothing of the service's past forks");
        if (o->command == COMMAND_RUN || o->command == COMMAND_SUBSCRIBE) {
                if (optind >= argc)
                        return usage_error("%s needs a command after \"--\"",
                                           o->command == COMMAND_RUN ? "run" : "subscribe");
                o->command_words = argv + optind;
                o->n_command_words = (size_t) (argc - optind);
        } else if (optind < argc)
                return usage_error("unexpected argument \"%s\"", argv[optind]);
        if (o->command == COMMAND_KILL && !o->target)
                return usage_error("kill needs the pid or name of a supervised child");
        if (o->command != COMMAND_WAIT && o->command != COMMAND_WATCH && o->timeout >= 0)
                return usage_error("--timeout is an option of wait and watch");
        if (o->command != COMMAND_MONITOR && o->reconnect)
                return usage_error("--reconnect is an option of monitor");
        if ((o->command == COMMAND_WAIT || o->command == COMMAND_WATCH) && o->dbus)
                return usage_error("--dbus is an option of monitor and status");
        if (o->dbus && o->reconnect)
                return usage_error("--reconnect is for the socket; D-Bus subscriptions end with the bus");
        return 0;
}

/* --- the broker --- */

static int connect_broker(const Options *o, PnClient **ret) {
        _cleanup_(pn_client_freep) PnClient *c = NULL;
        int r;

        r = pn_client_new(&c, o->socket);
        if (r < 0) {
                fprintf(stderr, "%s: cannot use socket %s: %s\n", program,
                        o->socket ? o->socket : "from $PROCNOTIFY_SOCKET", strerror(-r));
                return EXIT_BROKER;
        }
        r = pn_client_open(c);
        if (r < 0 && stop_requested)
                return EXIT_INTERRUPTED;
        if (r < 0) {
                if (pn_client_get_error_code(c)[0])
                        fprintf(stderr, "%s: procnotifyd at %s refused the connection: %s: %s\n",
                                program, pn_client_get_path(c), pn_client_get_error_code(c),
                                pn_client_get_error_message(c));
                else
                        fprintf(stderr, "%s: cannot reach procnotifyd at %s: %s\n", program,
                                pn_client_get_path(c),
                                r == -ENOENT || r == -ECONNREFUSED ? "no broker is listening"
                                : r == -EPROTO                    ? "not a procnotify v1 socket"
                                : r == -ETIMEDOUT                 ? "no answer within 5 s"
                                                                  : strerror(-r));
                return EXIT_BROKER;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

/* A --signal value as the protocol takes it: a number, or a name. */
static struct json_object *signal_json(const char *value) {
        char *end;
        long n;

        errno = 0;
        n = strtol(value, &end, 10);
        if (!errno && end != value && !*end)
                return json_object_new_int64(n);
        return json_object_new_string(value);
}

/* --crash is two subscriptions, for the filters cannot say "or" across
 * keys: every predump (its signal is not known), and every exit by a signal
 * (by the --signal ones if given). Part 0 or 1 of it: its events (NULL-
 * terminated) and a new match object; NULL when out of memory. */
static struct json_object *crash_match(const Options *o, int part, char *const **ret_events) {
        static char *const predump[] = { (char *) "predump", NULL };
        static char *const exit_[] = { (char *) "exit", NULL };
        struct json_object *m = json_object_new_object(), *sigs;

        bool oom = !m;

        *ret_events = part == 0 ? predump : exit_;
        if (!oom) {
                json_object_object_foreach(o->match, key, val)
                        oom = oom || json_object_object_add(m, key, json_object_get(val)) < 0;
        }
        if (!oom && part == 1 && !json_object_object_get_ex(m, "signal", NULL)) {
                /* Every signal: 64 values, FILTER_MAX_VALUES. */
                sigs = json_object_new_array();
                oom = !sigs || json_object_object_add(m, "signal", sigs) < 0;
                if (oom)
                        json_object_put(sigs);
                for (int sig = 1; !oom && sig <= SIGRTMAX; sig++)
                        oom = json_object_array_add(sigs, json_object_new_int(sig)) < 0;
        }
        if (oom) {
                json_object_put(m);
                return NULL;
        }
        return m;
}

/* The subscribe request of the filters (part: of --crash, see crash_match());
 * for the subscribe command, for --signal only ("lines": false). NULL when
 * out of memory. */
static struct json_object *subscribe_request(const Options *o, int part) {
        struct json_object *req = json_object_new_object();
        _cleanup_(json_object_putp) struct json_object *match = NULL;
        char *const *event_names = o->events;
        bool oom = !req;

        if (o->crash) {
                match = crash_match(o, part, &event_names);
                oom = oom || !match;
        } else if (!oom)
                match = json_object_get(o->match);
        if (!oom && event_names) {
                struct json_object *events = json_object_new_array();
                oom = json_object_object_add(req, "events", events) < 0 || !events;
                for (size_t i = 0; !oom && event_names[i]; i++)
                        oom = json_object_array_add(events, json_object_new_string(event_names[i])) < 0;
        }
        if (!oom && json_object_object_length(match) > 0)
                oom = json_object_object_add(req, "match", json_object_get(match)) < 0;
        if (!oom && o->threads)
                oom = json_object_object_add(req, "threads", json_object_new_boolean(true)) < 0;
        if (!oom && o->command == COMMAND_SUBSCRIBE)
                oom = json_object_object_add(req, "signal", signal_json(o->signal)) < 0 ||
                      json_object_object_add(req, "lines", json_object_new_boolean(false)) < 0;
        if (oom) {
                json_object_put(req);
                return NULL;
        }
        return req;
}

static int subscribe(PnClient *c, const Options *o) {
        for (int part = 0; part < (o->crash ? 2 : 1); part++) {
                _cleanup_(json_object_putp) struct json_object *req = subscribe_request(o, part);
                int r;

                if (!req) {
                        fprintf(stderr, "%s: out of memory\n", program);
                        return EXIT_FAILURE;
                }
                r = pn_client_subscribe_request(c, json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN),
                                                NULL);
                if (r < 0)
                        return broker_error(c, "subscribe", r);
        }
        return 0;
}

/* --- the table --- */

/* Copy s for a terminal: a process chooses its own name and arguments, so
 * control characters (C0, DEL, and C1 in UTF-8) become '?' rather than
 * reach the terminal as escape sequences. */
static const char *printable(char *buf, size_t size, const char *s) {
        size_t n = 0;

        if (!s)
                s = "?";
        for (const unsigned char *p = (const unsigned char *) s; *p && n + 1 < size; p++) {
                if (*p < 0x20 || *p == 0x7f)
                        buf[n++] = '?';
                else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
                        buf[n++] = '?';
                        p++;
                } else
                        buf[n++] = (char) *p;
        }
        buf[n] = 0;
        return buf;
}

/* "SIGSEGV", or the number for a signal without a name (real-time ones). */
static const char *signal_name(int sig, char buf[static 16]) {
        const char *abbrev = sig > 0 ? sigabbrev_np(sig) : NULL;
        if (abbrev)
                snprintf(buf, 16, "SIG%s", abbrev);
        else
                snprintf(buf, 16, "signal %d", sig);
        return buf;
}

static void format_info(const PnEvent *ev, char *info, size_t size) {
        char a[512], b[512], sig[16];

        info[0] = 0;
        switch (pn_event_get_type(ev)) {
        case PN_EVENT_FORK:
                if (pn_event_get_thread(ev))
                        snprintf(info, size, "new thread of %d", pn_event_get_tgid(ev));
                else if (pn_event_get_parent_pid(ev) && pn_event_get_parent_pid(ev) != pn_event_get_ppid(ev))
                        snprintf(info, size, "parent %d (thread %d)", pn_event_get_ppid(ev), pn_event_get_parent_pid(ev));
                else
                        snprintf(info, size, "parent %d", pn_event_get_ppid(ev));
                break;
        case PN_EVENT_EXEC:
                if (pn_event_get_cmdline(ev))
                        snprintf(info, size, "%s [%s]", printable(a, sizeof(a), pn_event_get_exe(ev)),
                                 printable(b, sizeof(b), pn_event_get_cmdline(ev)));
                else
                        snprintf(info, size, "%s", printable(a, sizeof(a), pn_event_get_exe(ev)));
                break;
        case PN_EVENT_UID:
                snprintf(info, size, "ruid %u euid %u", pn_event_get_id_real(ev), pn_event_get_id_effective(ev));
                break;
        case PN_EVENT_GID:
                snprintf(info, size, "rgid %u egid %u", pn_event_get_id_real(ev), pn_event_get_id_effective(ev));
                break;
        case PN_EVENT_SID:
                snprintf(info, size, "new session %d", pn_event_get_sid(ev));
                break;
        case PN_EVENT_PTRACE:
                if (pn_event_get_tracer_tgid(ev))
                        snprintf(info, size, "traced by %d", pn_event_get_tracer_tgid(ev));
                else
                        snprintf(info, size, "tracer detached");
                break;
        case PN_EVENT_COMM:
                snprintf(info, size, "renamed%s", pn_event_get_thread(ev) ? " (thread)" : "");
                break;
        case PN_EVENT_PREDUMP: {
                /* What decides how long the dump takes: its size, where it goes. */
                const char *core = pn_core_dump_to_string(pn_event_get_core_dump(ev));
                char thread[32] = "";
                if (pn_event_get_tid(ev) > 0 && pn_event_get_tid(ev) != pn_event_get_tgid(ev))
                        snprintf(thread, sizeof(thread), " in thread %d", (int) pn_event_get_tid(ev));
                if (pn_event_get_rss(ev) > 0)
                        snprintf(info, size, "dying of a core-class signal%s; %.1f MiB resident, core: %s",
                                 thread, (double) pn_event_get_rss(ev) / (1 << 20), core ? core : "?");
                else
                        snprintf(info, size, "dying of a core-class signal%s; core: %s", thread,
                                 core ? core : "?");
                break;
        }
        case PN_EVENT_EXIT:
                if (pn_event_get_thread(ev))
                        snprintf(info, size, "thread of %d ended", pn_event_get_tgid(ev));
                else if (pn_event_get_status(ev) < 0)
                        snprintf(info, size, "status unknown (inferred after a loss)");
                else if (pn_event_get_signal(ev))
                        snprintf(info, size, "killed by signal %d (%s)%s", pn_event_get_signal(ev),
                                 signal_name(pn_event_get_signal(ev), sig),
                                 pn_event_get_core_dumped(ev) ? ", core dumped" : "");
                else
                        snprintf(info, size, "exit code %d", pn_event_get_exit_code(ev));
                break;
        case PN_EVENT_ADOPT:
                snprintf(info, size, "parent %d -> %d", pn_event_get_old_parent(ev), pn_event_get_new_parent(ev));
                break;
        case PN_EVENT_STOP:
                snprintf(info, size, "stopped by %s", signal_name(pn_event_get_signal(ev), sig));
                break;
        case PN_EVENT_CONTINUE:
                snprintf(info, size, "continued");
                break;
        case PN_EVENT_OVERRUN:
                if (pn_event_get_overrun_where(ev) == PN_OVERRUN_RESTART)
                        snprintf(info, size, "connection to the broker re-made: events in between unknown");
                else if (pn_event_get_overrun_where(ev) == PN_OVERRUN_CLIENT)
                        snprintf(info, size, "lost %llu events (this client's queue was full; seq %llu-%llu)",
                                 (unsigned long long) pn_event_get_lost(ev),
                                 (unsigned long long) pn_event_get_first_seq(ev),
                                 (unsigned long long) pn_event_get_last_seq(ev));
                else
                        snprintf(info, size, "lost %llu events (%s)", (unsigned long long) pn_event_get_lost(ev),
                                 pn_event_get_overrun_where(ev) == PN_OVERRUN_KERNEL ? "the kernel dropped them"
                                                                        : "unknown place");
                break;
        default:
                break;
        }
}

#define ROW_FORMAT "%-12s %-8s %7s %7s %6s %-24s %-16s %s\n"

static void print_header(const Options *o) {
        if (!o->no_legend)
                printf(ROW_FORMAT, "TIME", "EVENT", "PID", "PPID", "UID", "UNIT", "COMM", "INFO");
}

/* A line the broker sent, as --json asked: as it came, or indented. */
static void print_json_line(const Options *o, const char *line) {
        _cleanup_(json_object_putp) struct json_object *j = NULL;

        if (o->format == FORMAT_JSON_PRETTY && (j = json_tokener_parse(line)))
                printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY |
                                                                          JSON_C_TO_STRING_SPACED |
                                                                          JSON_C_TO_STRING_NOSLASHESCAPE));
        else
                printf("%s\n", line);
}

static bool format_is_json(Format f) {
        return f == FORMAT_JSON || f == FORMAT_JSON_PRETTY;
}

/* HH:MM:SS.mmm of an event (now, if it has no time). */
static const char *format_time(const PnEvent *ev, char buf[static 16]) {
        uint64_t ns = pn_event_get_time_ns(ev);
        struct tm tm;

        if (ns == 0) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ns = (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
        }
        time_t sec = (time_t) (ns / 1000000000u);
        localtime_r(&sec, &tm);
        snprintf(buf, 16, "%02d:%02d:%02d.%03u", tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (unsigned) (ns / 1000000u % 1000u));
        return buf;
}

/* A "follow" report: where the followed service's main process went. */
static void print_follow_row(PnClient *c, const PnEvent *ev) {
        char time[16], info[160];
        PnFollowReport r;

        if (pn_client_get_follow(c, &r) < 0)
                return;
        switch (r.reason) {
        case PN_FOLLOW_MAIN_EXITED:
                snprintf(info, sizeof(info), "main %d exited; main now %d (%u candidate%s, %u member%s)",
                         r.previous_main_pid, r.main_pid, r.candidates, r.candidates == 1 ? "" : "s",
                         r.members, r.members == 1 ? "" : "s");
                break;
        case PN_FOLLOW_ENDED:
                snprintf(info, sizeof(info), "service ended: main %d exited, no process of it is left",
                         r.previous_main_pid);
                break;
        default:
                snprintf(info, sizeof(info), "%u processes followed, the most there can be: "
                         "new ones are not followed", r.members);
                break;
        }
        char pid[16];
        snprintf(pid, sizeof(pid), "%d", r.main_pid);
        printf(ROW_FORMAT, format_time(ev, time), "follow", pid, "-", "-", "-", "-", info);
}

static void print_row(const PnEvent *ev) {
        char time[16], info[1280], comm[64], unit[256], pid[16], ppid[16], uid[16];

        format_time(ev, time);
        format_info(ev, info, sizeof(info));

        if (pn_event_get_type(ev) == PN_EVENT_OVERRUN) {
                printf(ROW_FORMAT, time, "overrun", "-", "-", "-", "-", "-", info);
                return;
        }
        snprintf(pid, sizeof(pid), "%d", pn_event_get_pid(ev));
        snprintf(ppid, sizeof(ppid), "%d", pn_event_get_ppid(ev));
        if (pn_event_get_uid(ev) == UINT32_MAX)
                snprintf(uid, sizeof(uid), "?");
        else
                snprintf(uid, sizeof(uid), "%u", pn_event_get_uid(ev));
        printf(ROW_FORMAT, time, pn_event_type_to_string(pn_event_get_type(ev)), pid, pn_event_get_ppid(ev) ? ppid : "?", uid,
               pn_event_get_unit(ev) ? printable(unit, sizeof(unit), pn_event_get_unit(ev)) : "-",
               printable(comm, sizeof(comm), pn_event_get_comm(ev)), info);
}

/* --- commands --- */

/* How often monitor looks whether anyone still reads its output while no
 * event comes: "monitor | head -1" ends this long after head did. */
#define MONITOR_TICK_MS 250

/* Nobody reads standard output any more: the reading end of the pipe was
 * closed (poll reports POLLERR on the writing end), or a write failed
 * (SIGPIPE is ignored while monitoring, so that is EPIPE). */
static bool stdout_gone(void) {
        struct pollfd p = { .fd = STDOUT_FILENO, .events = 0 };

        /* A write interrupted by a stop signal (a full pipe) is no reader
         * gone: the caller checks stop_requested first. */
        if (fflush(stdout) != 0 && errno == EPIPE)
                return true;
        clearerr(stdout);
        return poll(&p, 1, 0) > 0 && (p.revents & (POLLERR | POLLHUP | POLLNVAL));
}

/* Set up a monitor loop: stop signals, line-buffered output, no SIGPIPE
 * (a closed pipe ends the loop through stdout_gone() instead). */
static void monitor_begin(const Options *o) {
        install_stop_handlers();
        (void) signal(SIGPIPE, SIG_IGN);
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (!format_is_json(o->format))
                print_header(o);
}

typedef struct ListCtx {
        const Options *o;
        Filter *filter;
        unsigned shown;
} ListCtx;

static int list_one(const char *line, size_t len, void *userdata) {
        ListCtx *l = userdata;
        _cleanup_(json_object_putp) struct json_object *j = NULL;
        _cleanup_free_ char *copy = strndup(line, len);
        PnEvent ev;

        if (!copy)
                return -ENOMEM;
        j = json_tokener_parse(copy);
        if (!j || event_json_parse(j, &ev) < 0)
                return 0; /* not one of ours after all */
        if (l->filter && !filter_match(l->filter, &ev, NULL))
                return 0;
        if (format_is_json(l->o->format))
                print_json_line(l->o, copy);
        else
                print_row(&ev);
        l->shown++;
        return 0;
}

static int cmd_list(const Options *o) {
        _cleanup_(filter_freep) Filter *f = NULL;
        struct json_object *events = NULL;
        uint64_t since = 0;
        char error[256];
        struct timespec now;
        int r;

        if (o->since) {
                clock_gettime(CLOCK_REALTIME, &now);
                if (ctl_journal_parse_since(o->since, (uint64_t) now.tv_sec * 1000000u +
                                                              (uint64_t) now.tv_nsec / 1000u,
                                            &since) < 0)
                        return usage_error("--since takes a date (2026-12-07), a date and time "
                                           "(\"2026-12-07 14:30\"), today, yesterday, or -N followed "
                                           "by s, min, h or d; not \"%s\"", o->since);
        }
        if (o->has_filter) {
                r = 0;
                if (o->events) {
                        events = json_object_new_array();
                        r = events ? 0 : -ENOMEM;
                        for (size_t i = 0; r >= 0 && i < o->n_events; i++)
                                r = json_array_add_take(events, json_object_new_string(o->events[i]));
                }
                struct json_object *threads = o->threads ? json_object_new_boolean(true) : NULL;
                if (o->threads && !threads)
                        r = -ENOMEM;
                if (r >= 0)
                        r = filter_new_from_json(&f, events, threads, o->match, error, sizeof(error));
                json_object_put(events);
                json_object_put(threads);
                if (r == -EINVAL)
                        return usage_error("%s", error);
                if (r < 0) {
                        fprintf(stderr, "%s: out of memory\n", program);
                        return EXIT_FAILURE;
                }
        }
        ListCtx l = { .o = o, .filter = f };
        (void) signal(SIGPIPE, SIG_IGN);
        if (!format_is_json(o->format))
                print_header(o);
        r = ctl_journal_list(since, o->directory, list_one, &l);
        if (r < 0) {
                fprintf(stderr, "%s: list: cannot read the journal%s%s: %s\n", program,
                        o->directory ? " in " : "", o->directory ? o->directory : "", strerror(-r));
                return r == -EACCES || r == -EPERM ? EXIT_REFUSED : EXIT_FAILURE;
        }
        return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* The status (the reply's JSON, and its text when it came as a line) as
 * --json or --format asked. */
static int print_status(const Options *o, struct json_object *status, const char *line) {
        switch (o->format) {
        case FORMAT_JSON:
                printf("%s\n", line ? line : json_object_to_json_string_ext(status, JSON_C_TO_STRING_PLAIN));
                break;
        case FORMAT_JSON_PRETTY:
                printf("%s\n", json_object_to_json_string_ext(status, JSON_C_TO_STRING_PRETTY |
                                                                              JSON_C_TO_STRING_SPACED |
                                                                              JSON_C_TO_STRING_NOSLASHESCAPE));
                break;
        case FORMAT_OPENMETRICS:
                if (ctl_status_print_openmetrics(stdout, status) < 0)
                        goto bad;
                break;
        default:
                if (ctl_status_print_table(stdout, status) < 0)
                        goto bad;
                break;
        }
        return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
bad:
        fprintf(stderr, "%s: status: the broker's reply is not a status object\n", program);
        return EXIT_BROKER;
}

static int dbus_open(const Options *o, CtlDbus **ret) {
        int r = ctl_dbus_open(ret, o->dbus_address);
        if (r < 0) {
                fprintf(stderr, "%s: cannot connect to %s: %s\n", program,
                        o->dbus_address ? o->dbus_address : "the system bus", strerror(-r));
                return EXIT_BROKER;
        }
        return 0;
}

/* monitor over D-Bus: the signals are turned back into events, so the output
 * is the same as over the socket (JSON lines in the protocol's form). */
static int cmd_monitor_dbus(const Options *o) {
        CtlDbus *d = NULL;
        JsonBuf line = JSONBUF_INIT;
        char error[512] = "";
        PnEvent ev;
        int r = dbus_open(o, &d);

        if (r)
                return r;
        for (int part = 0; r >= 0 && part < (o->crash ? 2 : 1); part++) {
                _cleanup_(json_object_putp) struct json_object *match = NULL;
                char *const *events = o->events;
                match = o->crash ? crash_match(o, part, &events) : json_object_get(o->match);
                if (!match) {
                        fprintf(stderr, "%s: out of memory\n", program);
                        ctl_dbus_free(d);
                        return EXIT_FAILURE;
                }
                r = ctl_dbus_subscribe(d, events, json_object_object_length(match) ? match : NULL,
                                       o->threads, error, sizeof(error));
        }
        if (r < 0) {
                fprintf(stderr, "%s: monitor: the broker refused: %s\n", program, error);
                ctl_dbus_free(d);
                return EXIT_BROKER;
        }
        monitor_begin(o);
        r = EXIT_INTERRUPTED;
        uint64_t shown = 0;
        while (!stop_requested) {
                int k = ctl_dbus_next(d, &ev, MONITOR_TICK_MS);
                if (stop_requested)
                        break;
                if (k == 0 || k == -EINTR) {
                        if (stdout_gone()) {
                                r = EXIT_SUCCESS;
                                break;
                        }
                        continue;
                }
                if (k < 0) {
                        fprintf(stderr, "%s: monitor: the bus connection was lost\n", program);
                        r = EXIT_BROKER;
                        break;
                }
                if (format_is_json(o->format)) {
                        jsonbuf_reset(&line);
                        event_json_format(&line, &ev);
                        if (!jsonbuf_failed(&line)) {
                                /* The line ends in '\n'; print_json_line adds one. */
                                line.data[strcspn(line.data, "\n")] = 0;
                                print_json_line(o, line.data);
                        }
                } else
                        print_row(&ev);
                if (stop_requested)
                        break;
                if (stdout_gone() ||
                    (o->count && ev.type != PN_EVENT_OVERRUN && ++shown >= o->count)) {
                        r = EXIT_SUCCESS;
                        break;
                }
        }
        jsonbuf_deinit(&line);
        ctl_dbus_free(d);
        return r;
}

static int cmd_status_dbus(const Options *o) {
        CtlDbus *d = NULL;
        struct json_object *stats = NULL;
        char error[512] = "";
        int r = dbus_open(o, &d);

        if (r)
                return r;
        r = ctl_dbus_statistics(d, &stats, error, sizeof(error));
        ctl_dbus_free(d);
        if (r < 0) {
                fprintf(stderr, "%s: status: %s\n", program, error);
                return EXIT_BROKER;
        }
        r = print_status(o, stats, NULL);
        json_object_put(stats);
        return r;
}

static int cmd_monitor(const Options *o) {
        _cleanup_(pn_client_freep) PnClient *c = NULL;
        const PnEvent *ev;
        int r;

        if (o->dbus)
                return cmd_monitor_dbus(o);
        r = connect_broker(o, &c);
        if (r)
                return r;
        pn_client_set_follow_reports(c, o->follow_pid > 0);
        r = subscribe(c, o);
        if (r)
                return r;
        pn_client_set_reconnect(c, o->reconnect);
        monitor_begin(o);

        uint64_t shown = 0;
        while (!stop_requested) {
                r = pn_client_next(c, &ev, MONITOR_TICK_MS);
                if (stop_requested)
                        break;
                if (r == -EINTR || r == 0) {
                        if (stdout_gone())
                                return EXIT_SUCCESS;
                        continue;
                }
                if (r < 0)
                        return broker_error(c, "monitor", r);
                if (format_is_json(o->format))
                        print_json_line(o, pn_client_get_line(c));
                else if (pn_event_get_type(ev) == PN_REPORT_FOLLOW)
                        print_follow_row(c, ev);
                else
                        print_row(ev);
                if (stop_requested)
                        break;
                if (stdout_gone())
                        return EXIT_SUCCESS;
                if (o->count && pn_event_get_type(ev) != PN_EVENT_OVERRUN && pn_event_get_type(ev) != PN_REPORT_FOLLOW &&
                    ++shown >= o->count)
                        return EXIT_SUCCESS;
        }
        return EXIT_INTERRUPTED;
}

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The CLOCK_MONOTONIC deadline (ms) of --timeout from now, -1 for none. */
static int64_t deadline_after(const Options *o) {
        return o->timeout >= 0 ? now_ms() + (int64_t) (o->timeout * 1000.0 + 0.5) : -1;
}

/* Milliseconds left until deadline_ms (-1: none), for pn_client_next(). */
static int ms_until(int64_t deadline_ms) {
        if (deadline_ms < 0)
                return -1;
        return (int) MAX(MIN(deadline_ms - now_ms(), (int64_t) INT_MAX), (int64_t) 0);
}

static int cmd_wait(const Options *o) {
        _cleanup_(pn_client_freep) PnClient *c = NULL;
        int64_t deadline_ms;
        const PnEvent *ev;
        int r;

        r = connect_broker(o, &c);
        if (r)
                return r;
        pn_client_set_follow_reports(c, o->follow_pid > 0);
        r = subscribe(c, o);
        if (r)
                return r;
        /* The timeout counts from the moment the subscription is in place:
         * that is when waiting starts. */
        deadline_ms = deadline_after(o);
        install_stop_handlers();
        for (;;) {
                int wait_ms = ms_until(deadline_ms);
                r = pn_client_next(c, &ev, wait_ms);
                if (stop_requested)
                        return EXIT_INTERRUPTED;
                if (r == 0)
                        return EXIT_TIMEOUT;
                if (r == -EINTR)
                        continue;
                if (r < 0)
                        return broker_error(c, "wait", r);
                if (pn_event_get_type(ev) == PN_REPORT_FOLLOW) {
                        PnFollowReport f;
                        /* The main moving on is no event; the service
                         * ending means none can come. */
                        if (pn_client_get_follow(c, &f) < 0 || f.reason != PN_FOLLOW_ENDED)
                                continue;
                        if (o->format == FORMAT_TABLE) {
                                print_header(o);
                                print_follow_row(c, ev);
                        } else
                                print_json_line(o, pn_client_get_line(c));
                        return EXIT_ENDED;
                }
                if (pn_event_get_type(ev) != PN_EVENT_OVERRUN)
                        break;
                /* The event waited for may be among those lost: say so, and
                 * keep waiting, since there is no telling. */
                fprintf(stderr, "%s: warning: events were lost while waiting: %s\n", program,
                        pn_client_get_line(c));
        }
        if (o->format == FORMAT_TABLE) {
                print_header(o);
                print_row(ev);
        } else
                print_json_line(o, pn_client_get_line(c));
        return EXIT_SUCCESS;
}

static int cmd_watch(const Options *o) {
        _cleanup_(pn_client_freep) PnClient *c = NULL;
        _cleanup_free_ char *reply = NULL;
        char request[96];
        int64_t deadline_ms;
        const PnEvent *ev;
        int r;

        r = connect_broker(o, &c);
        if (r)
                return r;
        snprintf(request, sizeof(request), "{\"op\":\"watch\",\"pid\":%ld,\"stop\":%s}", o->watch_pid,
                 o->stop ? "true" : "false");
        r = pn_client_request(c, request, &reply);
        if (r < 0)
                return broker_error(c, "watch", r);
        deadline_ms = deadline_after(o);
        install_stop_handlers();
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (format_is_json(o->format))
                print_json_line(o, reply);
        else
                print_header(o);
        while (!stop_requested) {
                r = pn_client_next(c, &ev, ms_until(deadline_ms));
                if (stop_requested)
                        break;
                if (r == 0)
                        return EXIT_TIMEOUT;
                if (r == -EINTR)
                        continue;
                if (r < 0)
                        return broker_error(c, "watch", r);
                if (format_is_json(o->format))
                        print_json_line(o, pn_client_get_line(c));
                else
                        print_row(ev);
                if (pn_event_get_type(ev) == PN_EVENT_EXIT && !pn_event_get_thread(ev) && pn_event_get_tgid(ev) == (pid_t) o->watch_pid)
                        return EXIT_SUCCESS;
        }
        return EXIT_INTERRUPTED;
}

/* Subscribe for a signal, then become the command that handles it: the
 * broker signals the process that connected, which an exec keeps. */
static int cmd_subscribe(const Options *o) {
        _cleanup_(pn_client_freep) PnClient *c = NULL;
        char fd[16];
        int r, flags;

        r = connect_broker(o, &c);
        if (r)
                return r;
        r = subscribe(c, o);
        if (r)
                return r;
        /* The connection must outlive the exec: it is the subscription. */
        int sock = pn_client_get_fd(c);
        flags = fcntl(sock, F_GETFD);
        if (flags < 0 || fcntl(sock, F_SETFD, flags & ~FD_CLOEXEC) < 0 ||
            fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) & ~O_NONBLOCK) < 0) {
                fprintf(stderr, "%s: subscribe: cannot keep the connection open: %m\n", program);
                return EXIT_FAILURE;
        }
        snprintf(fd, sizeof(fd), "%d", sock);
        if (setenv("PROCNOTIFY_FD", fd, 1) < 0) {
                fprintf(stderr, "%s: out of memory\n", program);
                return EXIT_FAILURE;
        }
        fflush(NULL);
        execvp(o->command_words[0], o->command_words);
        r = errno;
        fprintf(stderr, "%s: subscribe: cannot execute %s: %s\n", program, o->command_words[0], strerror(r));
        return r == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC;
}

static int cmd_status(const Options *o) {
        _cleanup_(pn_client_freep) PnClient *c = NULL;
        _cleanup_(json_object_putp) struct json_object *j = NULL;
        _cleanup_free_ char *reply = NULL;
        int r;

        if (o->dbus)
                return cmd_status_dbus(o);
        r = connect_broker(o, &c);
        if (r)
                return r;
        r = pn_client_request(c, "{\"op\":\"status\"}", &reply);
        if (r < 0)
                return broker_error(c, "status", r);
        j = json_tokener_parse(reply);
        if (!j) {
                fprintf(stderr, "%s: status: the broker's reply is not JSON\n", program);
                return EXIT_BROKER;
        }
        return print_status(o, j, reply);
}

/* --- supervised children --- */

/* Send req (consumed) and return the reply parsed, or an exit status. */
static int request_json(PnClient *c, const char *what, struct json_object *req,
                        struct json_object **ret) {
        _cleanup_free_ char *reply = NULL;
        int r = pn_client_request(c, json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN), &reply);

        json_object_put(req);
        if (r < 0)
                return broker_error(c, what, r);
        *ret = json_tokener_parse(reply);
        if (!*ret) {
                fprintf(stderr, "%s: %s: the broker's reply is not JSON\n", program, what);
                return EXIT_BROKER;
        }
        return 0;
}

/* Connect to the broker and make one request (taken over, freed in every
 * case); 0 with the reply in *ret, or the exit code after saying why. */
static int connect_request_json(const Options *o, PnClient **c, const char *what,
                                struct json_object *req, struct json_object **ret) {
        int r = connect_broker(o, c);
        if (r) {
                json_object_put(req);
                return r;
        }
        return request_json(*c, what, req, ret);
}

static int cmd_run(const Options *o) {
        _cleanup_(pn_client_freep) PnClient *c = NULL;
        _cleanup_(json_object_putp) struct json_object *reply = NULL;
        struct json_object *req = json_object_new_object(), *argv = json_object_new_array(), *v;
        const PnEvent *ev;
        pid_t pid;
        int r;

        if (!req || !argv) {
                fprintf(stderr, "%s: out of memory\n", program);
                return EXIT_FAILURE;
        }
        r = 0;
        for (size_t i = 0; r >= 0 && i < o->n_command_words; i++)
                r = json_array_add_take(argv, json_object_new_string(o->command_words[i]));
        if (r >= 0)
                r = json_object_add_take(req, "op", json_object_new_string("run"));
        if (json_object_add_take(req, "argv", argv) < 0)
                r = -ENOMEM;
        if (r >= 0 && o->name)
                r = json_object_add_take(req, "name", json_object_new_string(o->name));
        if (r >= 0 && o->user)
                r = json_object_add_take(req, "user", json_object_new_string(o->user));
        if (r >= 0 && o->env)
                r = json_object_add_take(req, "env", json_object_get(o->env));
        if (r >= 0 && o->follow)
                r = json_object_add_take(req, "follow", json_object_new_boolean(true));
        if (r < 0) {
                json_object_put(req);
                fprintf(stderr, "%s: out of memory\n", program);
                return EXIT_FAILURE;
        }
        r = connect_request_json(o, &c, "run", req, &reply);
        if (r)
                return r;
        printf("%s\n", json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN));
        fflush(stdout);
        if (!o->follow)
                return EXIT_SUCCESS;
        if (!json_object_object_get_ex(reply, "pid", &v))
                return EXIT_BROKER;
        pid = (pid_t) json_object_get_int(v);
        install_stop_handlers();
        while (!stop_requested) {
                r = pn_client_next(c, &ev, -1);
                if (r == -EINTR)
                        continue;
                if (r < 0)
                        return broker_error(c, "run --follow", r);
                printf("%s\n", pn_client_get_line(c));
                fflush(stdout);
                if (pn_event_get_type(ev) == PN_EVENT_EXIT && pn_event_get_tgid(ev) == pid && !pn_event_get_thread(ev))
                        return pn_event_get_status(ev) < 0 ? EXIT_BROKER : pn_event_get_exit_code(ev);
        }
        return EXIT_INTERRUPTED;
}

static int cmd_children(const Options *o) {
        _cleanup_(pn_client_freep) PnClient *c = NULL;
        _cleanup_(json_object_putp) struct json_object *reply = NULL;
        struct json_object *list;
        char buf[256];
        int r;

        r = connect_request_json(o, &c, "children", json_tokener_parse("{\"op\":\"children\"}"), &reply);
        if (r)
                return r;
        if (o->format == FORMAT_JSON) {
                printf("%s\n", json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN));
                return EXIT_SUCCESS;
        }
        printf("%-8s %-20s %-6s %-8s %s\n", "PID", "NAME", "UID", "STATE", "COMMAND");
        if (!json_object_object_get_ex(reply, "children", &list))
                return EXIT_BROKER;
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                struct json_object *e = json_object_array_get_idx(list, i), *f;
                const char *name = "", *state = "", *cmd = "";
                long long pid = 0, uid = -1;
                bool adopted = false;
                if (json_object_object_get_ex(e, "pid", &f))
                        pid = json_object_get_int64(f);
                if (json_object_object_get_ex(e, "name", &f))
                        name = json_object_get_string(f);
                if (json_object_object_get_ex(e, "uid", &f) && json_object_is_type(f, json_type_int))
                        uid = json_object_get_int64(f);
                if (json_object_object_get_ex(e, "state", &f))
                        state = json_object_get_string(f);
                if (json_object_object_get_ex(e, "command", &f) && json_object_is_type(f, json_type_string))
                        cmd = json_object_get_string(f);
                if (json_object_object_get_ex(e, "adopted", &f))
                        adopted = json_object_get_boolean(f);
                char uids[24];
                if (uid >= 0)
                        snprintf(uids, sizeof(uids), "%lld", uid);
                else
                        snprintf(uids, sizeof(uids), "-");
                printf("%-8lld %-20s %-6s %-8s %s\n", pid, printable(buf, sizeof(buf), name), uids, state,
                       adopted ? "(adopted)" : printable(buf + 128, 128, cmd));
        }
        return EXIT_SUCCESS;
}

static int cmd_kill(const Options *o) {
        _cleanup_(pn_client_freep) PnClient *c = NULL;
        _cleanup_(json_object_putp) struct json_object *reply = NULL;
        struct json_object *req = json_object_new_object();
        char *end;
        long pid;
        int r;

        if (!req) {
                fprintf(stderr, "%s: out of memory\n", program);
                return EXIT_FAILURE;
        }
        errno = 0;
        pid = strtol(o->target, &end, 10);
        if (errno || *end != 0 || end == o->target || pid <= 0)
                pid = 0; /* a name */
        r = json_object_add_take(req, "op", json_object_new_string("kill"));
        if (r >= 0)
                r = pid > 0 ? json_object_add_take(req, "pid", json_object_new_int64(pid))
                            : json_object_add_take(req, "name", json_object_new_string(o->target));
        if (r >= 0 && o->signal)
                r = json_object_add_take(req, "signal", signal_json(o->signal));
        if (r < 0) {
                json_object_put(req);
                fprintf(stderr, "%s: out of memory\n", program);
                return EXIT_FAILURE;
        }
        r = connect_request_json(o, &c, "kill", req, &reply);
        if (r)
                return r;
        printf("%s\n", json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN));
        return EXIT_SUCCESS;
}

int main(int argc, char **argv) {
        _cleanup_(options_done) Options o = { .timeout = -1 };
        int r;

        o.match = json_object_new_object();
        if (!o.match) {
                fprintf(stderr, "%s: out of memory\n", program);
                return EXIT_FAILURE;
        }
        r = parse_argv(&o, argc, argv);
        if (r != 0)
                return r < 0 ? EXIT_SUCCESS : r;

        /* Every command that waits stops on SIGINT/SIGTERM with
         * EXIT_INTERRUPTED, also while it connects and subscribes. */
        if (o.command == COMMAND_MONITOR || o.command == COMMAND_WAIT || o.command == COMMAND_WATCH ||
            (o.command == COMMAND_RUN && o.follow))
                install_stop_handlers();
        switch (o.command) {
        case COMMAND_MONITOR:
                return cmd_monitor(&o);
        case COMMAND_WAIT:
                return cmd_wait(&o);
        case COMMAND_STATUS:
                return cmd_status(&o);
        case COMMAND_RUN:
                return cmd_run(&o);
        case COMMAND_CHILDREN:
                return cmd_children(&o);
        case COMMAND_KILL:
                return cmd_kill(&o);
        case COMMAND_WATCH:
                return cmd_watch(&o);
        case COMMAND_SUBSCRIBE:
                return cmd_subscribe(&o);
        case COMMAND_LIST:
                return cmd_list(&o);
        default:
                return EXIT_USAGE;
        }
}
