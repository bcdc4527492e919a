/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Broker's state, shared by the files that make up the broker: broker.c
 * (the loop, the sources' glue, start-up and shutdown), broker-reload.c
 * (configuration applied at start and at SIGHUP), broker-bus.c (the bus
 * connection), broker-privileges.c (the capability drop), broker-prctl.c
 * (patched-kernel prctl signals) and broker-stats.c (the status figures).
 * Nothing outside the broker includes it: the rest of the daemon sees
 * broker.h only.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "broker.h"
#include "caps.h"
#include "config.h"
#include "dispatcher.h"
#include "lookup-thread.h"
#include "policy.h"
#include "procfs.h"
#include "proctable.h"
#include "reaper.h"
#include "sink-context.h"
#include "sink-dbus.h"
#include "sink-journal.h"
#include "sink-socket.h"
#include "source-cnproc.h"
#include "supervisor.h"
#include "uidlimits.h"
#include "watch.h"

struct Broker {
        sd_event *event;
        Config *config;
        char *config_path;

        ProcReader reader;
        ProcTable *table;
        Dispatcher *dispatcher;
        Cnproc *cnproc;
        Reaper *reaper;
        Supervisor *supervisor;
        WatchTable *watches;
        SinkSocket *sink_socket;
        SinkJournal *sink_journal;  /* NULL with Journal=no */
        SinkDbus *sink_dbus;
        sd_event_source *dbus_drop;
        Policy policy;
        UidLimits *limits;
        CapMask caps;       /* kept after start-up */
        SinkContext sink_ctx;
        KernelFeatures features;

        sd_event_source *sig_term, *sig_int, *sig_hup;
        sd_event_source *sig_predump, *sig_adopt; /* patched-kernel prctl signals */
        sd_event_source *stop_timer;              /* shutdown: children get StopTimeout= */
        sd_event_source *detach_timer;            /* shutdown: bounds the wait for tracees' detach */
        pid_t pid;
        sd_event_source *pending_timer, *overrun_timer, *resync_timer, *post;

        char boot_id[40];
        char instance_id[40];
        uint64_t started_ns;

        /* Wall-clock offset of CLOCK_MONOTONIC, refreshed every second. */
        uint64_t realtime_offset_ns;
        uint64_t offset_checked_ns;

        uint64_t lost_unreported;  /* kernel loss not yet in an overrun event */
        uint64_t last_overrun_ns;
        uint64_t last_resync_ns;
        uint64_t overrun_events;
        uint64_t armed_pending_ns;
        uint64_t fd_shortage_logged_ns; /* the last "out of descriptors" message */
        uint64_t fd_shortages;          /* since then */
        bool running;       /* the loop is about to run or runs */
        bool dbus_pending;  /* the bus has not answered the name request yet */
        /* No bus to connect to yet: tried again from a timer and at SIGHUP. */
        sd_event_source *bus_retry;
        bool bus_missing_told;
        bool dbus_away;     /* the bus was lost; the sink is connecting again */
        bool notified;      /* READY=1 sent */
        /* SIGHUP: Group= being looked up (broker-reload.c), and whether
         * another SIGHUP came meanwhile. */
        LookupThread *group_lookup;
        bool group_lookup_again;
};

/* broker.c: publish ev (stamped with wall-clock time) to the sinks and the
 * watches. */
void broker_emit(PnEvent *ev, void *userdata);
/* broker.c: send READY=1 once everything asked for serves. */
void broker_check_ready(Broker *b);

/* broker-reload.c: the parts' options as configured. */
SupervisorOptions broker_supervisor_options(const Config *c);
SinkDbusOptions broker_dbus_options(const Config *c);
WatchTableOptions broker_watch_options(const Config *c);
/* broker-reload.c: become (or stop being) a child subreaper, as [Run] says. */
void broker_set_subreaper(Broker *b);
/* broker-reload.c: apply b->config to every part that is there, Group=
 * included (looked up at once: at start only, before READY=1). */
void broker_apply_config(Broker *b);
/* broker-reload.c: SIGHUP: read the file again and apply it, or keep the
 * running configuration and say why. Always returns 0. */
int broker_reload(Broker *b);

/* broker-bus.c: serve D-Bus as configured, or retry every 2 s until a bus
 * appears. Never fails: without a bus the broker serves the socket only. */
void broker_connect_bus(Broker *b);

/* broker-privileges.c: keep only the capabilities caps_needed() names.
 * Returns 0, or -errno (logged): fatal. */
int broker_drop_privileges(Broker *b);

/* broker-prctl.c: handle the patched-kernel prctl signals configured.
 * Returns 0, or -errno (logged). */
int broker_setup_prctls(Broker *b);

/* broker-stats.c: the status figures (SinkContext.visit_stats). */
void broker_visit_stats(void *userdata, const StatsVisitor *v);

/* broker-follow.c: the process tree for the sinks (SinkContext): is tgid a
 * descendant of ancestor; a follow of pid seeded with its descendants now
 * (0 and *ret, *ret_uid the service's uid; -ESRCH: unknown; -ENOMEM). */
bool broker_is_descendant(void *userdata, pid_t tgid, pid_t ancestor);
int broker_follow_new(void *userdata, pid_t pid, Follow **ret, uint32_t *ret_uid);
