/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The broker's configuration, applied to every part at start and again at
 * SIGHUP (broker_reload): the options each part takes from Config, and what
 * a reload may change and what waits for a restart.
 *
 * Group= is looked up through NSS (getgrnam_r), which may ask a remote
 * directory (LDAP, sssd) and block. At start that happens before READY=1,
 * in the loop's thread: nothing is served yet, so nothing waits for it. At
 * SIGHUP the lookup runs on a thread of its own (lookup-thread.h) and the
 * group applies when it answers; until then the previous one stays.
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
#include "lookup-thread.h"

/* The largest group entry (members included) the lookup accepts. */
#define BROKER_GROUP_BUFFER_MAX (1024u * 1024u)

enum {
        BROKER_GROUP_E_NOT_FOUND = 1, /* no such group: an expected answer */
};

/* A Group= lookup: the question (name) and the answer (r, gid). */
typedef struct GroupLookup {
        char *name;
        int r;          /* 0 (gid is set), BROKER_GROUP_E_NOT_FOUND, or a negative errno */
        gid_t gid;
} GroupLookup;

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

/* Blocks (NSS): at start, or on a lookup thread. Touches nothing but l. */
static void broker_group_lookup_work(void *data) {
        GroupLookup *l = data;
        struct group gr, *res = NULL;

        for (size_t size = 4096; size <= BROKER_GROUP_BUFFER_MAX; size *= 2) {
                _cleanup_free_ char *buf = malloc(size);
                int r;

                if (!buf) {
                        l->r = -ENOMEM;
                        return;
                }
                r = getgrnam_r(l->name, &gr, buf, size, &res);
                if (r == ERANGE)
                        continue;
                if (r != 0) {
                        l->r = -r;
                        return;
                }
                if (!res) {
                        l->r = BROKER_GROUP_E_NOT_FOUND;
                        return;
                }
                l->gid = res->gr_gid;
                l->r = 0;
                return;
        }
        l->r = -ERANGE; /* a group entry over BROKER_GROUP_BUFFER_MAX */
}

static void broker_group_lookup_free(void *data) {
        GroupLookup *l = data;

        if (l)
                free(l->name);
        free(l);
}

/* Apply an answer for Group=name: its members see every process. */
static void broker_group_apply(Broker *b, const GroupLookup *l, bool reload) {
        if (l->r == 0) {
                policy_init(&b->policy, l->gid);
                if (reload)
                        log_info("Group \"%s\" (gid %u) sees every process.", l->name, (unsigned) l->gid);
                return;
        }
        policy_init(&b->policy, (gid_t) -1);
        if (l->r == BROKER_GROUP_E_NOT_FOUND)
                log_info("Group \"%s\" does not exist: only root sees every process.", l->name);
        else
                log_warning_errno(l->r, "Failed to look up group \"%s\", only root sees every process: %m",
                                  l->name);
}

static void broker_group_lookup_start(Broker *b);

static void broker_on_group_lookup(void *data, void *userdata) {
        GroupLookup *l = data;
        Broker *b = userdata;
        const char *want = b->config->group;

        /* An answer for a Group= that is no longer configured is dropped:
         * it would give a group the administrator took back. */
        if (want && streq(want, l->name))
                broker_group_apply(b, l, true);
        b->group_lookup = lookup_thread_free(b->group_lookup); /* frees l */
        if (b->group_lookup_again) {
                /* SIGHUP came again meanwhile: ask for what is configured now. */
                b->group_lookup_again = false;
                broker_group_lookup_start(b);
        }
}

/* SIGHUP: look Group= up off the loop; one lookup at a time (however many
 * SIGHUPs come while NSS blocks), the last reload's group wins. */
static void broker_group_lookup_start(Broker *b) {
        const char *name = b->config->group;
        GroupLookup *l;
        int r;

        if (!name || !*name) {
                /* Nothing to ask: applies at once; a pending answer is dropped. */
                b->group_lookup = lookup_thread_free(b->group_lookup);
                b->group_lookup_again = false;
                policy_init(&b->policy, (gid_t) -1);
                return;
        }
        if (b->group_lookup) {
                b->group_lookup_again = true;
                return;
        }
        l = calloc(1, sizeof(*l));
        if (!l || !(l->name = strdup(name))) {
                free(l);
                log_warning_errno(ENOMEM, "Failed to look up group \"%s\", keeping the previous Group=: %m",
                                  name);
                return;
        }
        r = lookup_thread_start(&b->group_lookup, b->event, "group-lookup", broker_group_lookup_work,
                                broker_on_group_lookup, l, broker_group_lookup_free, b);
        if (r < 0)
                log_warning_errno(r, "Failed to look up group \"%s\", keeping the previous Group=: %m", name);
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

/* Everything but Group=. */
static void broker_apply_options(Broker *b) {
        Config *c = b->config;
        SinkSocketOptions so = {
                .max_clients = c->max_clients,
                .max_subscriptions = c->max_subscriptions,
                .queue_bytes = c->client_queue_bytes,
        };

        log_set_max_level(c->log_level);
        broker_check_fd_limit(c);
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

void broker_apply_config(Broker *b) {
        GroupLookup l = { .name = b->config->group };

        broker_apply_options(b);
        /* At start, before READY=1: blocking on NSS here delays only the
         * start (a slow directory, a slow start), never an event. */
        if (!l.name || !*l.name) {
                policy_init(&b->policy, (gid_t) -1);
                return;
        }
        broker_group_lookup_work(&l);
        broker_group_apply(b, &l, false);
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
        if (r >= 0) {
                /* Flags given at start keep overriding the file. */
                free(c->socket_path);
                c->socket_path = strdup(b->config->socket_path);
                free(c->dbus);
                c->dbus = strdup(b->config->dbus);
                if (!c->socket_path || !c->dbus)
                        r = -ENOMEM;
        }
        if (r < 0) {
                char prefix[PATH_MAX + 64];
                snprintf(prefix, sizeof(prefix), "Failed to reload %s, keeping the running "
                         "configuration: ", b->config_path);
                log_lines(LOG_ERR, prefix, r == -ENOMEM ? "out of memory" : err);
                config_free(c);
        } else {
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
                broker_apply_options(b);
                broker_group_lookup_start(b);
                broker_connect_bus(b); /* a bus that was missing may be there now */
                log_info("Reloaded configuration%s%s.", b->config_path ? " from " : "",
                         b->config_path ? b->config_path : "");
        }
        (void) sd_notify(false, "READY=1");
        return 0;
}
