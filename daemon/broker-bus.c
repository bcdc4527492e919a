/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The broker's bus connection: connect as configured, retry every 2 s while
 * no bus is there (and at every reload), and follow the D-Bus sink through
 * its readiness, loss and reconnection.
 */
#include <errno.h>
#include <string.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "broker-internal.h"
#include "common/log.h"

static void broker_on_dbus_ready(void *userdata) {
        Broker *b = userdata;
        if (b->dbus_away)
                log_info("D-Bus: connected again, serving %s.", DBUS_NAME);
        b->dbus_away = false;
        b->dbus_pending = false;
        broker_check_ready(b);
}

static int broker_on_dbus_drop(sd_event_source *s, void *userdata) {
        Broker *b = userdata;
        (void) s;
        b->sink_dbus = sink_dbus_free(b->sink_dbus);
        b->dbus_drop = sd_event_source_disable_unref(b->dbus_drop);
        return 0;
}

/* The sink lost its bus or name before it ever served: say so once, and
 * drop it outside its own callbacks. The JSON socket goes on. */
static void broker_on_dbus_lost(void *userdata, const char *why) {
        Broker *b = userdata;
        if (b->dbus_drop)
                return;
        log_warning("D-Bus: %s; serving the JSON socket only.", why);
        b->dbus_pending = false;
        broker_check_ready(b);
        if (sd_event_add_defer(b->event, &b->dbus_drop, broker_on_dbus_drop, b) < 0)
                b->sink_dbus = NULL; /* leak rather than free in a bus callback */
}

/* The sink lost the bus it served on: it connects again by itself. Said
 * once per outage. */
static void broker_on_dbus_disconnected(void *userdata, const char *why) {
        Broker *b = userdata;
        if (b->dbus_away)
                return;
        b->dbus_away = true;
        log_warning("D-Bus: %s; connecting again.", why);
}

static int broker_open_bus(Broker *b, sd_bus **ret) {
        const char *how = b->config->dbus;
        sd_bus *bus = NULL;
        int r;

        if (streq(how, "system"))
                r = sd_bus_open_system(&bus);
        else {
                r = sd_bus_new(&bus);
                if (r >= 0)
                        r = sd_bus_set_address(bus, how);
                if (r >= 0)
                        r = sd_bus_set_bus_client(bus, true);
                if (r >= 0)
                        r = sd_bus_start(bus);
        }
        if (r < 0) {
                sd_bus_flush_close_unref(bus);
                return r;
        }
        *ret = bus;
        return 0;
}

static int broker_on_dbus_connect(void *userdata, sd_bus **ret) {
        return broker_open_bus(userdata, ret);
}

static int broker_on_bus_retry(sd_event_source *s, uint64_t usec, void *userdata);

/* Serve D-Bus. Without a bus to connect to (none runs yet, as on a machine
 * without systemd, or it was restarted without one), say so once and try
 * again every BROKER_BUS_RETRY_USEC and at every reload: the broker serves
 * D-Bus from the moment a bus appears, with nobody restarting it. */
#define BROKER_BUS_RETRY_USEC (2 * 1000000ULL)

void broker_connect_bus(Broker *b) {
        const char *how = b->config->dbus;
        sd_bus *bus = NULL;
        int r;

        if (streq(how, "none") || b->sink_dbus)
                return;
        r = broker_open_bus(b, &bus);
        if (r < 0) {
                if (!b->bus_missing_told)
                        log_notice("No D-Bus at %s (%s): serving the JSON socket only; D-Bus is served "
                                   "as soon as the bus appears.",
                                   streq(how, "system") ? "the system bus" : how, strerror(-r));
                b->bus_missing_told = true;
                if (b->bus_retry) {
                        /* A source of ours: these cannot fail. */
                        (void) sd_event_source_set_time_relative(b->bus_retry, BROKER_BUS_RETRY_USEC);
                        (void) sd_event_source_set_enabled(b->bus_retry, SD_EVENT_ONESHOT);
                        return;
                }
                r = sd_event_add_time_relative(b->event, &b->bus_retry, CLOCK_MONOTONIC, BROKER_BUS_RETRY_USEC,
                                               0, broker_on_bus_retry, b);
                if (r < 0)
                        log_warning_errno(r, "Failed to arm the D-Bus retry timer, trying again only at "
                                          "SIGHUP: %m");
                else
                        (void) sd_event_source_set_description(b->bus_retry, "bus-retry");
                return;
        }
        if (b->bus_missing_told)
                log_info("D-Bus at %s appeared.", streq(how, "system") ? "the system bus" : how);
        b->bus_missing_told = false;
        SinkDbusOptions o = broker_dbus_options(b->config);
        SinkDbusCallbacks cb = {
                .connect = broker_on_dbus_connect,
                .on_ready = broker_on_dbus_ready,
                .on_lost = broker_on_dbus_lost,
                .on_disconnected = broker_on_dbus_disconnected,
        };
        r = sink_dbus_new(&b->sink_dbus, bus, b->event, &b->sink_ctx, &o, &cb, b);
        if (r < 0) {
                log_warning_errno(r, "Failed to serve %s on D-Bus, serving the JSON socket only: %m",
                                  DBUS_NAME);
                return;
        }
        b->dbus_pending = true;
        log_info("Serving %s on %s.", DBUS_NAME, streq(how, "system") ? "the system bus" : how);
}

static int broker_on_bus_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Broker *b = userdata;
        (void) s;
        (void) usec;
        broker_connect_bus(b);
        return 0;
}
