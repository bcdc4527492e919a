/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * procnotifyctl: the command-line client of procnotifyd, built on
 * libprocnotify. Commands: monitor, wait, status.
 *
 * Exit status: 0 success, 1 `wait` timed out, 2 usage error, 3 the broker
 * could not be reached or refused the request (its error is printed).
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "common/macro.h"
#include "procnotify/client.h"

#ifndef PROCNOTIFY_VERSION
#define PROCNOTIFY_VERSION "0.0.0"
#endif

enum {
        EXIT_TIMEOUT = 1,
        EXIT_USAGE = 2,
        EXIT_BROKER = 3,
};

typedef enum Format {
        FORMAT_TABLE,
        FORMAT_JSON,
} Format;

typedef struct Options {
        const char *socket;
        char *events;               /* comma-separated, or NULL */
        struct json_object *match;  /* match object being built */
        bool threads;
        Format format;
        bool format_set;
        bool reconnect;
        double timeout;             /* seconds; < 0: none */
} Options;

static const char *program = "procnotifyctl";

static void help(void) {
        printf("Usage: %s [--socket=PATH] COMMAND [OPTIONS]\n"
               "\n"
               "Commands:\n"
               "  monitor             show events as they happen (a table, or --json lines)\n"
               "  wait                wait for the first matching event, print it, exit 0\n"
               "  status              show the broker's version, kernel features, statistics\n"
               "\n"
               "Filters (monitor, wait); each may be repeated, values of one are alternatives:\n"
               "  -e, --events=LIST         event types, comma-separated: fork, exec, uid, gid,\n"
               "                            sid, ptrace, comm, predump, exit, adopt, stop,\n"
               "                            continue (default: all)\n"
               "  -p, --pid=PID             the process\n"
               "      --tgid=PID, --ppid=PID, --uid=UID\n"
               "  -c, --comm=NAME           process name (shell glob)\n"
               "      --exe=PATH            executable (shell glob)\n"
               "  -u, --unit=UNIT           systemd unit (shell glob)\n"
               "      --cgroup=PATH         cgroup, or any below it\n"
               "  -d, --descendants-of=PID  the process and everything it forked\n"
               "      --threads             also per-thread events\n"
               "\n"
               "Options:\n"
               "  -s, --socket=PATH   broker socket (default $PROCNOTIFY_SOCKET, or %s)\n"
               "  -j, --json          print raw JSON lines (monitor, wait, status)\n"
               "      --format=F      table or json\n"
               "  -t, --timeout=SEC   wait: give up after SEC seconds (exit 1)\n"
               "      --reconnect     monitor: reconnect when the broker restarts\n"
               "  -h, --help          show this help\n"
               "      --version       show the version\n"
               "\n"
               "Exit status: 0 success, 1 wait timed out, 2 usage error, 3 broker unreachable\n"
               "or request refused. See procnotifyctl(1).\n",
               program, PN_CLIENT_DEFAULT_SOCKET);
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

static int broker_error(PnClient *c, const char *what, int r) {
        if (c && pn_client_get_error_code(c)[0])
                fprintf(stderr, "%s: %s: the broker refused: %s: %s\n", program, what,
                        pn_client_get_error_code(c), pn_client_get_error_message(c));
        else
                fprintf(stderr, "%s: %s: %s\n", program, what, strerror(-r));
        return EXIT_BROKER;
}

/* Append a value to match[key], as an array. */
static int match_add(Options *o, const char *key, struct json_object *value) {
        struct json_object *arr;
        if (!json_object_object_get_ex(o->match, key, &arr)) {
                arr = json_object_new_array();
                json_object_object_add(o->match, key, arr);
        }
        return json_object_array_add(arr, value);
}

static int match_add_int(Options *o, const char *key, const char *value) {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || *end || end == value || v < 0)
                return usage_error("--%s needs a non-negative number, not \"%s\"", key, value);
        match_add(o, key, json_object_new_int64(v));
        return 0;
}

static int connect_broker(const Options *o, PnClient **ret) {
        int r = pn_client_connect(ret, o->socket);
        if (r < 0) {
                const char *path = o->socket ? o->socket
                                             : getenv("PROCNOTIFY_SOCKET") ? getenv("PROCNOTIFY_SOCKET")
                                                                           : PN_CLIENT_DEFAULT_SOCKET;
                fprintf(stderr, "%s: cannot reach procnotifyd at %s: %s\n", program, path,
                        r == -ENOENT || r == -ECONNREFUSED ? "no broker is listening" : strerror(-r));
                return EXIT_BROKER;
        }
        return 0;
}

static int subscribe(PnClient *c, const Options *o) {
        char *events[64] = { NULL };
        size_t n = 0;
        char *copy = o->events ? strdup(o->events) : NULL, *save = NULL;
        const char *match = json_object_object_length(o->match) > 0
                                    ? json_object_to_json_string_ext(o->match, JSON_C_TO_STRING_PLAIN)
                                    : NULL;
        int r;

        for (char *w = copy ? strtok_r(copy, ",", &save) : NULL; w && n < ELEMENTSOF(events) - 1;
             w = strtok_r(NULL, ",", &save))
                events[n++] = w;
        r = pn_client_subscribe(c, o->events ? (const char *const *) events : NULL, match, o->threads, NULL);
        free(copy);
        if (r < 0)
                return broker_error(c, "subscribe", r);
        return 0;
}

static uint64_t realtime_offset_ns(void) {
        struct timespec m, r;
        clock_gettime(CLOCK_MONOTONIC, &m);
        clock_gettime(CLOCK_REALTIME, &r);
        return ((uint64_t) r.tv_sec * 1000000000u + (uint64_t) r.tv_nsec) -
               ((uint64_t) m.tv_sec * 1000000000u + (uint64_t) m.tv_nsec);
}

static void print_header(void) {
        printf("%-12s %-8s %7s %7s %6s %-16s %s\n", "TIME", "EVENT", "PID", "PPID", "UID", "COMM",
               "INFO");
}

static void print_row(const PnEvent *ev, uint64_t offset) {
        char time[16], info[512] = "", uid[16];
        time_t sec = (time_t) ((ev->ts_ns + offset) / 1000000000u);
        unsigned ms = (unsigned) ((ev->ts_ns + offset) / 1000000u % 1000u);
        struct tm tm;

        localtime_r(&sec, &tm);
        snprintf(time, sizeof(time), "%02d:%02d:%02d.%03u", tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
        if (ev->type == PN_EVENT_OVERRUN) {
                printf("%-12s %-8s %s\n", time, "overrun",
                       ev->overrun.where == PN_OVERRUN_RESTART
                               ? "connection to the broker was re-made: events in between are unknown"
                               : "");
                if (ev->overrun.where != PN_OVERRUN_RESTART)
                        printf("%-12s %-8s lost %llu events (%s)\n", "", "",
                               (unsigned long long) ev->overrun.lost,
                               pn_overrun_where_to_string(ev->overrun.where));
                return;
        }
        switch (ev->type) {
        case PN_EVENT_FORK:
                snprintf(info, sizeof(info), "%sparent %d", ev->thread ? "thread, " : "", ev->ppid);
                break;
        case PN_EVENT_EXEC:
                snprintf(info, sizeof(info), "%s", ev->cmdline ? ev->cmdline : ev->exe ? ev->exe : "?");
                break;
        case PN_EVENT_UID:
        case PN_EVENT_GID:
                snprintf(info, sizeof(info), "real %u effective %u", ev->id.real, ev->id.effective);
                break;
        case PN_EVENT_SID:
                snprintf(info, sizeof(info), "session %d", ev->sid.sid);
                break;
        case PN_EVENT_PTRACE:
                snprintf(info, sizeof(info), ev->ptrace.tracer_tgid ? "traced by %d" : "tracer detached",
                         ev->ptrace.tracer_tgid);
                break;
        case PN_EVENT_PREDUMP:
                snprintf(info, sizeof(info), "dying of a core-class signal");
                break;
        case PN_EVENT_EXIT:
                if (ev->exit.status < 0)
                        snprintf(info, sizeof(info), "exited (status unknown: inferred after a loss)");
                else if (ev->exit.signal)
                        snprintf(info, sizeof(info), "killed by signal %d (%s)%s", ev->exit.signal,
                                 strsignal(ev->exit.signal), ev->exit.core_dumped ? ", core dumped" : "");
                else
                        snprintf(info, sizeof(info), "exit code %d", ev->exit.exit_code);
                break;
        case PN_EVENT_ADOPT:
                snprintf(info, sizeof(info), "parent %d -> %d", ev->adopt.old_parent, ev->adopt.new_parent);
                break;
        case PN_EVENT_STOP:
                snprintf(info, sizeof(info), "stopped by signal %d", ev->stop.signal);
                break;
        default:
                break;
        }
        if (ev->uid == UINT32_MAX)
                snprintf(uid, sizeof(uid), "?");
        else
                snprintf(uid, sizeof(uid), "%u", ev->uid);
        printf("%-12s %-8s %7d %7d %6s %-16s %s\n", time, pn_event_type_to_string(ev->type), ev->pid,
               ev->ppid, uid, ev->comm ? ev->comm : "?", info);
}

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig) {
        (void) sig;
        stop_requested = 1;
}

static int cmd_monitor(const Options *o) {
        PnClient *c = NULL;
        PnEvent ev;
        uint64_t offset = realtime_offset_ns();
        int r = connect_broker(o, &c);

        if (r)
                return r;
        pn_client_set_reconnect(c, o->reconnect);
        r = subscribe(c, o);
        if (r) {
                pn_client_free(c);
                return r;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        signal(SIGINT, on_stop_signal);
        signal(SIGTERM, on_stop_signal);
        if (o->format == FORMAT_TABLE)
                print_header();
        while (!stop_requested) {
                r = pn_client_next(c, &ev, 500);
                if (r == 0)
                        continue;
                if (r < 0) {
                        if (r == -EINTR)
                                continue;
                        pn_client_free(c);
                        fprintf(stderr, "%s: the broker closed the connection%s\n", program,
                                r == -ECONNRESET ? "" : ": error");
                        return EXIT_BROKER;
                }
                if (o->format == FORMAT_JSON)
                        printf("%s\n", pn_client_get_line(c));
                else
                        print_row(&ev, offset);
        }
        pn_client_free(c);
        return EXIT_SUCCESS;
}

static int cmd_wait(const Options *o) {
        PnClient *c = NULL;
        PnEvent ev;
        int64_t deadline_ms = -1;
        struct timespec ts;
        int r = connect_broker(o, &c);

        if (r)
                return r;
        r = subscribe(c, o);
        if (r) {
                pn_client_free(c);
                return r;
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if (o->timeout >= 0)
                deadline_ms = (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + (int64_t) (o->timeout * 1000);
        for (;;) {
                int wait_ms = -1;
                if (deadline_ms >= 0) {
                        clock_gettime(CLOCK_MONOTONIC, &ts);
                        int64_t left = deadline_ms - ((int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
                        wait_ms = left > 0 ? (int) left : 0;
                }
                r = pn_client_next(c, &ev, wait_ms);
                if (r == 0) {
                        pn_client_free(c);
                        return EXIT_TIMEOUT;
                }
                if (r < 0) {
                        pn_client_free(c);
                        fprintf(stderr, "%s: the broker closed the connection\n", program);
                        return EXIT_BROKER;
                }
                /* An overrun may hide the event waited for: say so, keep waiting. */
                if (ev.type == PN_EVENT_OVERRUN) {
                        fprintf(stderr, "%s: warning: %s\n", program, pn_client_get_line(c));
                        continue;
                }
                break;
        }
        if (o->format == FORMAT_TABLE) {
                print_header();
                print_row(&ev, realtime_offset_ns());
        } else
                printf("%s\n", pn_client_get_line(c));
        pn_client_free(c);
        return EXIT_SUCCESS;
}

static int cmd_status(const Options *o) {
        PnClient *c = NULL;
        char *reply = NULL;
        int r = connect_broker(o, &c);

        if (r)
                return r;
        r = pn_client_request(c, "{\"op\":\"status\"}", &reply);
        if (r < 0) {
                r = broker_error(c, "status", r);
                pn_client_free(c);
                return r;
        }
        if (o->format == FORMAT_JSON)
                printf("%s\n", reply);
        else {
                struct json_object *j = json_tokener_parse(reply);
                printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY |
                                                                         JSON_C_TO_STRING_SPACED));
                json_object_put(j);
        }
        free(reply);
        pn_client_free(c);
        return EXIT_SUCCESS;
}

int main(int argc, char **argv) {
        enum { ARG_TGID = 0x100, ARG_PPID, ARG_UID, ARG_EXE, ARG_CGROUP, ARG_THREADS, ARG_FORMAT,
               ARG_RECONNECT, ARG_VERSION };
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
                { "json", no_argument, NULL, 'j' },
                { "format", required_argument, NULL, ARG_FORMAT },
                { "timeout", required_argument, NULL, 't' },
                { "reconnect", no_argument, NULL, ARG_RECONNECT },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        Options o = { .timeout = -1, .match = json_object_new_object() };
        const char *command = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, "s:e:p:c:u:d:jt:h", options, NULL)) >= 0) {
                r = 0;
                switch (c) {
                case 's': o.socket = optarg; break;
                case 'e': {
                        size_t n = (o.events ? strlen(o.events) + 1 : 0) + strlen(optarg) + 1;
                        char *e = malloc(n);
                        if (!e)
                                return EXIT_FAILURE;
                        snprintf(e, n, "%s%s%s", o.events ? o.events : "", o.events ? "," : "", optarg);
                        free(o.events);
                        o.events = e;
                        break;
                }
                case 'p': r = match_add_int(&o, "pid", optarg); break;
                case ARG_TGID: r = match_add_int(&o, "tgid", optarg); break;
                case ARG_PPID: r = match_add_int(&o, "ppid", optarg); break;
                case ARG_UID: r = match_add_int(&o, "uid", optarg); break;
                case 'd': r = match_add_int(&o, "descendants_of", optarg); break;
                case 'c': match_add(&o, "comm", json_object_new_string(optarg)); break;
                case ARG_EXE: match_add(&o, "exe", json_object_new_string(optarg)); break;
                case 'u': match_add(&o, "unit", json_object_new_string(optarg)); break;
                case ARG_CGROUP: match_add(&o, "cgroup", json_object_new_string(optarg)); break;
                case ARG_THREADS: o.threads = true; break;
                case 'j': o.format = FORMAT_JSON; o.format_set = true; break;
                case ARG_FORMAT:
                        if (streq(optarg, "json"))
                                o.format = FORMAT_JSON;
                        else if (streq(optarg, "table"))
                                o.format = FORMAT_TABLE;
                        else
                                return usage_error("--format is table or json, not \"%s\"", optarg);
                        o.format_set = true;
                        break;
                case 't': {
                        char *end;
                        o.timeout = strtod(optarg, &end);
                        if (*end || end == optarg || o.timeout < 0)
                                return usage_error("--timeout needs seconds, not \"%s\"", optarg);
                        break;
                }
                case ARG_RECONNECT: o.reconnect = true; break;
                case 'h': help(); return EXIT_SUCCESS;
                case ARG_VERSION: printf("procnotifyctl %s\n", PROCNOTIFY_VERSION); return EXIT_SUCCESS;
                default: return EXIT_USAGE;
                }
                if (r)
                        return r;
        }
        if (optind >= argc)
                return usage_error("a command is needed: monitor, wait or status");
        command = argv[optind];
        if (optind + 1 < argc)
                return usage_error("unexpected argument \"%s\"", argv[optind + 1]);

        if (streq(command, "monitor"))
                r = cmd_monitor(&o);
        else if (streq(command, "wait")) {
                /* For scripts, the event as JSON is the useful default. */
                if (!o.format_set)
                        o.format = FORMAT_JSON;
                r = cmd_wait(&o);
        } else if (streq(command, "status"))
                r = cmd_status(&o);
        else
                r = usage_error("unknown command \"%s\"", command);
        json_object_put(o.match);
        free(o.events);
        return r;
}
