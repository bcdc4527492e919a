/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The broker's configuration, applied to every part at start and again at
 * SIGHUP (broker_reload): the options each part takes from Config, and what
 * a reload may change and what waits for a restart.
 */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include <systemd/sd-daemon.h>

#include "broker-internal.h"
#include "common/clock.h"
#include "common/log.h"
#include "fdreserve.h"

SupervisorOptions broker_supervisor_options(const Config *c) {
        return (SupervisorOptions){
                .enabled = c->run_enabled,
                .output = c->run_output,
                .log_directory = c->run_log_directory,
                .max_children = c->max_children,
                .max_children_per_uid = c->max_children_per_uid,
        };
}

/* Subreaper only when children may be run: then orphans of children are
 * the broker's to reap and report. */
void broker_set_subreaper(Broker *b) {
        if (prctl(PR_SET_CHILD_SUBREAPER, b->config->run_enabled ? 1 : 0, 0, 0, 0) < 0)
                log_warning_errno(errno, "Failed to %s child subreaper, ignoring: %m",
                                  b->config->run_enabled ? "become" : "stop being");
}

static gid_t broker_lookup_group(const char *name) {
        struct group *g;
        if (!name || !*name)
                return (gid_t) -1;
        g = getgrnam(name);
        if (!g) {
                log_info("Group \"%s\" does not exist: only root sees every process.", name);
                return (gid_t) -1;
        }
        return g->gr_gid;
}

SinkDbusOptions broker_dbus_options(const Config *c) {
        return (SinkDbusOptions){
                .max_peers = c->max_clients,
                .max_subscriptions = c->max_subscriptions,
                /* Each subscriber's own queue, as on the socket. */
                .queue_bytes = c->client_queue_bytes,
        };
}

WatchTableOptions broker_watch_options(const Config *c) {
        return (WatchTableOptions){
                .max_per_owner = c->max_watches,
                .max_per_uid = c->max_watches_per_uid,
                .max_traced_threads = c->max_traced_threads,
        };
}

/* The descriptors the limits allow, against RLIMIT_NOFILE: each client a
 * socket and, when it asks for signals, a pidfd; the reserve (root's); a
 * margin for the broker's own (connector, bus, signalfd, timers, /proc
 * reads). Watches come on top, bounded per user and refused to all but
 * root once only the reserve is left (fdreserve.h). */
#define BROKER_OWN_FDS 64

static void broker_check_fd_limit(const Config *c) {
        uint64_t need = 2ull * c->max_clients + FDRESERVE_SIZE + BROKER_OWN_FDS;
        if (need > fdreserve_limit())
                log_warning("RLIMIT_NOFILE is %u, but MaxClients=%u needs up to %llu descriptors (2 a "
                            "client, %d kept for root, %d for the broker): users may be refused before "
                            "MaxClients; raise LimitNOFILE= or lower MaxClients=.",
                            fdreserve_limit(), c->max_clients, (unsigned long long) need, FDRESERVE_SIZE,
                            BROKER_OWN_FDS);
}

void broker_apply_config(Broker *b) {
        Config *c = b->config;
        SinkSocketOptions so = {
                .max_clients = c->max_clients,
                .max_subscriptions = c->max_subscriptions,
                .queue_bytes = c->client_queue_bytes,
        };

        log_set_max_level(c->log_level);
        broker_check_fd_limit(c);
        policy_init(&b->policy, broker_lookup_group(c->group));
        if (b->supervisor) {
                SupervisorOptions o = broker_supervisor_options(c);
                if (supervisor_set_options(b->supervisor, &o) < 0)
                        log_warning("Out of memory applying [Run] settings; keeping the old ones.");
                broker_set_subreaper(b);
        }
        uidlimits_set_max(b->limits, UID_RESOURCE_CLIENTS, c->max_clients_per_uid);
        uidlimits_set_max(b->limits, UID_RESOURCE_SUBSCRIPTIONS, c->max_subscriptions_per_uid);
        uidlimits_set_max(b->limits, UID_RESOURCE_WATCHES, c->max_watches_per_uid);
        if (b->sink_socket)
                sink_socket_set_options(b->sink_socket, &so);
        if (b->watches) {
                WatchTableOptions wo = broker_watch_options(c);
                watch_table_set_options(b->watches, &wo);
        }
        if (b->sink_dbus) {
                SinkDbusOptions dbo = broker_dbus_options(c);
                sink_dbus_set_options(b->sink_dbus, &dbo);
        }
}

int broker_reload(Broker *b) {
        Config *c = NULL;
        char err[4096];
        int r;

        (void) sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%llu",
                          (unsigned long long) (clock_ns(CLOCK_MONOTONIC) / 1000));
        r = config_new(&c);
        if (r >= 0 && b->config_path)
                r = config_load_file(c, b->config_path, streq(b->config_path, CONFIG_DEFAULT_PATH), err,
                                     sizeof(err));
        if (r < 0) {
                char prefix[PATH_MAX + 64];
                snprintf(prefix, sizeof(prefix), "Failed to reload %s, keeping the running "
                         "configuration: ", b->config_path);
                log_lines(LOG_ERR, prefix, r == -ENOMEM ? "out of memory" : err);
                config_free(c);
        } else {
                /* Flags given at start keep overriding the file. */
                free(c->socket_path);
                c->socket_path = strdup(b->config->socket_path);
                free(c->dbus);
                c->dbus = strdup(b->config->dbus);
                c->override_receive_buffer = b->config->override_receive_buffer;
                c->override_log_level = b->config->override_log_level;
                config_apply_overrides(c);
                if (c->kernel_events != b->config->kernel_events)
                        log_warning("Connector Events= changes take effect at restart.");
                if (c->journal != b->config->journal) {
                        log_warning("[Broker] Journal= changes take effect at restart.");
                        c->journal = b->config->journal;
                }
                if (c->predump_prctl != b->config->predump_prctl ||
                    c->predump_signal != b->config->predump_signal ||
                    c->adopt_prctl != b->config->adopt_prctl || c->adopt_signal != b->config->adopt_signal) {
                        log_warning("[Run] *Prctl= and *Signal= changes take effect at restart.");
                        c->predump_prctl = b->config->predump_prctl;
                        c->predump_signal = b->config->predump_signal;
                        c->adopt_prctl = b->config->adopt_prctl;
                        c->adopt_signal = b->config->adopt_signal;
                }
                if (c->receive_buffer != b->config->receive_buffer) {
                        r = cnproc_set_receive_buffer(b->cnproc, c->receive_buffer);
                        if (r < 0)
                                log_warning_errno(r, "Failed to set the connector receive buffer, ignoring: %m");
                }
                if (caps_needed(c) & ~b->caps) {
                        char names[256];
                        caps_format(caps_needed(c) & ~b->caps, names, sizeof(names));
                        log_warning("The new configuration needs %s, dropped at start: restart the broker.",
                                    names);
                }
                config_free(b->config);
                b->config = c;
                broker_apply_config(b);
                broker_connect_bus(b); /* a bus that was missing may be there now */
                log_info("Reloaded configuration%s%s.", b->config_path ? " from " : "",
                         b->config_path ? b->config_path : "");
        }
        (void) sd_notify(false, "READY=1");
        return 0;
}
