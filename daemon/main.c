/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * procnotifyd: arguments, configuration, exit code. Everything else is the
 * broker's. Exit codes: 0 clean shutdown (or a valid configuration, with
 * --check-config), 1 failure at run time, 2 bad arguments or configuration.
 */
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "common/log.h"
#include "config.h"
#include "fdreserve.h"

#ifndef PROCNOTIFY_VERSION
#define PROCNOTIFY_VERSION "0.0.0"
#endif

#define EXIT_USAGE 2

static void help(void) {
        printf("Usage: procnotifyd [OPTIONS]\n"
               "\n"
               "Privileged broker that republishes process lifecycle events (predump, exit,\n"
               "adopt, stop/continue, fork, exec, …) as newline-delimited JSON on a Unix\n"
               "socket and as D-Bus signals.\n"
               "\n"
               "Options:\n"
               "  -c, --config=PATH          configuration file (default %s;\n"
               "                             a missing default file is not an error)\n"
               "      --check-config         check the configuration (file and options),\n"
               "                             report every error, and exit: 0 if valid\n"
               "  -s, --socket=PATH          JSON socket (default %s)\n"
               "      --dbus=WHERE           system (default), none, or a bus address\n"
               "                             such as unix:path=/run/my/bus\n"
               "      --receive-buffer=SIZE  connector socket buffer, e.g. 32M\n"
               "      --log-level=LEVEL      err, warning, notice, info (default), debug\n"
               "  -h, --help                 show this help and exit\n"
               "      --version              show the version and exit\n"
               "\n"
               "Signals: SIGTERM/SIGINT stop cleanly, SIGHUP reloads the configuration.\n"
               "Exit status: 0 on clean shutdown, 1 on failure, 2 on bad arguments or\n"
               "configuration. See procnotifyd(8).\n",
               CONFIG_DEFAULT_PATH, CONFIG_DEFAULT_SOCKET);
}

int main(int argc, char *argv[]) {
        enum { ARG_DBUS = 0x100, ARG_RCVBUF, ARG_LOG_LEVEL, ARG_VERSION, ARG_CHECK_CONFIG };
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "socket", required_argument, NULL, 's' },
                { "dbus", required_argument, NULL, ARG_DBUS },
                { "receive-buffer", required_argument, NULL, ARG_RCVBUF },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "check-config", no_argument, NULL, ARG_CHECK_CONFIG },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        const char *config_path = NULL, *socket_path = NULL, *dbus = NULL, *rcvbuf = NULL;
        int log_level = -1;
        bool check_only = false;
        Config *config = NULL;
        Broker *broker = NULL;
        char err[4096];
        int c, r;

        log_setup("procnotifyd");
        /* Memory a caller made the broker take is given back when freed:
         * a fixed threshold (glibc's own default) stops glibc from raising
         * it after each large free, which would keep the next large
         * buffers (a 32 MiB D-Bus message sd-bus read whole) in the heap,
         * resident after they are freed. */
        (void) mallopt(M_MMAP_THRESHOLD, 128 * 1024);
        /* The soft descriptor limit up to the hard one (the unit's LimitNOFILE=). */
        (void) fdreserve_init();
        while ((c = getopt_long(argc, argv, "c:s:h", options, NULL)) >= 0) {
                switch (c) {
                case 'c': config_path = optarg; break;
                case 's': socket_path = optarg; break;
                case ARG_DBUS: dbus = optarg; break;
                case ARG_RCVBUF: rcvbuf = optarg; break;
                case ARG_LOG_LEVEL:
                        log_level = log_level_from_string(optarg);
                        if (log_level < 0) {
                                log_error("Invalid --log-level \"%s\".", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case ARG_CHECK_CONFIG: check_only = true; break;
                case 'h': help(); return EXIT_SUCCESS;
                case ARG_VERSION: printf("procnotifyd %s\n", PROCNOTIFY_VERSION); return EXIT_SUCCESS;
                default: return EXIT_USAGE;
                }
        }
        if (optind < argc) {
                log_error("Unexpected argument \"%s\"; see --help.", argv[optind]);
                return EXIT_USAGE;
        }

        if (config_new(&config) < 0) {
                log_error("Out of memory.");
                return EXIT_FAILURE;
        }
        const char *path = config_path ? config_path : CONFIG_DEFAULT_PATH;
        char prefix[PATH_MAX + 32];
        r = config_load_file(config, path, !config_path, err, sizeof(err));
        if (r < 0) {
                snprintf(prefix, sizeof(prefix), "Bad configuration %s: ", path);
                log_lines(LOG_ERR, prefix, r == -ENOMEM ? "out of memory" : err);
                config_free(config);
                return EXIT_USAGE;
        }
        if (socket_path) {
                if (socket_path[0] != '/') {
                        log_error("--socket needs an absolute path.");
                        config_free(config);
                        return EXIT_USAGE;
                }
                free(config->socket_path);
                config->socket_path = strdup(socket_path);
        }
        if (dbus) {
                free(config->dbus);
                config->dbus = strdup(dbus);
        }
        if (rcvbuf && config_parse_size(rcvbuf, &config->override_receive_buffer) < 0) {
                log_error("Invalid --receive-buffer \"%s\" (a size such as 32M).", rcvbuf);
                config_free(config);
                return EXIT_USAGE;
        }
        config->override_log_level = log_level;
        config_apply_overrides(config);
        if (!config->socket_path || !config->dbus) {
                log_error("Out of memory.");
                config_free(config);
                return EXIT_FAILURE;
        }

        if (check_only) {
                if (access(path, F_OK) < 0)
                        printf("%s: no such file; the defaults and options are valid.\n", path);
                else
                        printf("%s: valid.\n", path);
                config_free(config);
                return EXIT_SUCCESS;
        }

        r = broker_new(&broker, config, config_path ? config_path : CONFIG_DEFAULT_PATH);
        if (r < 0)
                return EXIT_FAILURE;
        r = broker_run(broker);
        broker_free(broker);
        return r;
}
