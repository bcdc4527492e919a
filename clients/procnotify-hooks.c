/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * procnotify-hooks: runs the commands of /etc/procnotify/hooks.d/NAME.conf for
 * the process events they match, as an ordinary subscriber of procnotifyd.
 * Arguments and exit code only; everything else is the Runner's.
 *
 * Exit status: 0 clean stop (or --check found no errors), 1 failure (or
 * --check found errors), 2 bad arguments.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "hooks/runner.h"
#include "procnotify/client.h"

#ifndef PROCNOTIFY_VERSION
#define PROCNOTIFY_VERSION "0.0.0"
#endif

#define EXIT_USAGE 2

static void help(void) {
        printf("Usage: procnotify-hooks [OPTIONS]\n"
               "\n"
               "Run the hook commands of HOOKS-DIR/*.conf for the process events they match,\n"
               "with the event in PROCNOTIFY_* environment variables and as a JSON line on\n"
               "standard input. Subscribes to procnotifyd like any client.\n"
               "\n"
               "Options:\n"
               "  -d, --hooks-dir=DIR   hook files (default %s)\n"
               "  -s, --socket=PATH     the broker's socket (default: $PROCNOTIFY_SOCKET, or\n"
               "                        %s)\n"
               "      --check           load the hook files, report every error, and exit:\n"
               "                        0 if all are valid, 1 if not\n"
               "      --log-level=LEVEL err, warning, notice, info (default), debug\n"
               "  -h, --help            show this help and exit\n"
               "      --version         show the version and exit\n"
               "\n"
               "Signals: SIGTERM/SIGINT stop (running hooks get SIGTERM, and SIGKILL 5 s\n"
               "later), SIGHUP reloads the hook files. See procnotify-hooks(8).\n",
               RUNNER_DEFAULT_HOOKS_DIR, PN_CLIENT_DEFAULT_SOCKET);
}

int main(int argc, char *argv[]) {
        enum { ARG_CHECK = 0x100, ARG_LOG_LEVEL, ARG_VERSION };
        static const struct option options[] = {
                { "hooks-dir", required_argument, NULL, 'd' },
                { "socket", required_argument, NULL, 's' },
                { "check", no_argument, NULL, ARG_CHECK },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        const char *hooks_dir = NULL, *socket_path = NULL;
        bool check = false;
        Runner *r = NULL;
        int c, k;

        log_setup("procnotify-hooks");
        while ((c = getopt_long(argc, argv, "d:s:h", options, NULL)) >= 0) {
                switch (c) {
                case 'd':
                        hooks_dir = optarg;
                        break;
                case 's':
                        socket_path = optarg;
                        break;
                case ARG_CHECK:
                        check = true;
                        break;
                case ARG_LOG_LEVEL:
                        k = log_level_from_string(optarg);
                        if (k < 0) {
                                log_error("Invalid --log-level \"%s\".", optarg);
                                return EXIT_USAGE;
                        }
                        log_set_max_level(k);
                        break;
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case ARG_VERSION:
                        printf("procnotify-hooks %s\n", PROCNOTIFY_VERSION);
                        return EXIT_SUCCESS;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind < argc) {
                log_error("Unexpected argument \"%s\"; see --help.", argv[optind]);
                return EXIT_USAGE;
        }
        if (hooks_dir && hooks_dir[0] != '/') {
                log_error("--hooks-dir needs an absolute path.");
                return EXIT_USAGE;
        }

        k = runner_new(&r, hooks_dir, socket_path);
        if (k < 0) {
                log_error_errno(k, "Failed to set up: %m");
                return EXIT_FAILURE;
        }
        if (check) {
                unsigned loaded = 0;
                k = runner_check(r, &loaded);
                runner_free(r);
                if (k < 0) {
                        log_error_errno(k, "Failed to load the hooks: %m");
                        return EXIT_FAILURE;
                }
                printf("%u hooks valid, %d files with errors.\n", loaded, k);
                return k == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
        }
        k = runner_run(r);
        runner_free(r);
        return k < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
