/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* procnotifyctl's D-Bus client; see ctl-dbus.h. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <systemd/sd-bus.h>

#include "common/json-util.h"
#include "common/macro.h"
#include "ctl-dbus.h"

#define NAME "org.procnotify.Broker1"
#define PATH "/org/procnotify/Broker1"
#define IFACE "org.procnotify.Broker1"

struct CtlDbus {
        sd_bus *bus;
        sd_bus_message *current; /* the signal behind the last event */
        /* The unique name that answered Subscribe: the owner of NAME then.
         * Signals from anyone else are forgeries (anyone on a bus without
         * the broker's policy, or root, may send signals of IFACE) and are
         * dropped. A new owner is a new broker, which knows nothing of our
         * subscriptions: its signals cannot be ours either. */
        char *broker;
};

int ctl_dbus_open(CtlDbus **ret, const char *address) {
        CtlDbus *d = calloc(1, sizeof(*d));
        int r;

        if (!d)
                return -ENOMEM;
        if (!address)
                r = sd_bus_open_system(&d->bus);
        else {
                r = sd_bus_new(&d->bus);
                if (r >= 0)
                        r = sd_bus_set_address(d->bus, address);
                if (r >= 0)
                        r = sd_bus_set_bus_client(d->bus, true);
                if (r >= 0)
                        r = sd_bus_start(d->bus);
        }
        if (r < 0) {
                ctl_dbus_free(d);
                return r;
        }
        *ret = d;
        return 0;
}

CtlDbus *ctl_dbus_free(CtlDbus *d) {
        if (!d)
                return NULL;
        sd_bus_message_unref(d->current);
        sd_bus_flush_close_unref(d->bus);
        free(d->broker);
        free(d);
        return NULL;
}

/* One match value: integers as x, strings as s, arrays of either. */
static int append_value(sd_bus_message *m, struct json_object *v) {
        int r;
        if (json_object_is_type(v, json_type_int))
                return sd_bus_message_append(m, "v", "x", (int64_t) json_object_get_int64(v));
        if (json_object_is_type(v, json_type_string))
                return sd_bus_message_append(m, "v", "s", json_object_get_string(v));
        if (json_object_is_type(v, json_type_boolean))
                return sd_bus_message_append(m, "v", "b", (int) json_object_get_boolean(v));
        if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) == 0)
                return -EINVAL;
        bool strings = json_object_is_type(json_object_array_get_idx(v, 0), json_type_string);
        r = sd_bus_message_open_container(m, 'v', strings ? "as" : "ax");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', strings ? "s" : "x");
        for (size_t i = 0; r >= 0 && i < json_object_array_length(v); i++) {
                struct json_object *e = json_object_array_get_idx(v, i);
                r = strings ? sd_bus_message_append(m, "s", json_object_get_string(e))
                            : sd_bus_message_append(m, "x", (int64_t) json_object_get_int64(e));
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r < 0 ? r : sd_bus_message_close_container(m);
}

int ctl_dbus_subscribe(CtlDbus *d, char *const *events, struct json_object *match, bool threads,
                       char *error, size_t size) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_message_new_method_call(d->bus, &m, NAME, PATH, IFACE, "Subscribe");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "s");
        for (size_t i = 0; r >= 0 && events && events[i]; i++)
                r = sd_bus_message_append(m, "s", events[i]);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (match) {
                json_object_object_foreach(match, key, val) {
                        if (r >= 0)
                                r = sd_bus_message_open_container(m, 'e', "sv");
                        /* On D-Bus, "signal" is the signal sent to the subscriber;
                         * the match key of how a process ended is "event_signal". */
                        if (r >= 0)
                                r = sd_bus_message_append(m, "s", streq(key, "signal") ? "event_signal" : key);
                        if (r >= 0)
                                r = append_value(m, val);
                        if (r >= 0)
                                r = sd_bus_message_close_container(m);
                }
        }
        if (r >= 0 && threads)
                r = sd_bus_message_append(m, "{sv}", "threads", "b", 1);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        r = sd_bus_call(d->bus, m, 0, &e, &reply);
        if (r < 0)
                snprintf(error, size, "%s: %s", e.name ? e.name : "error", e.message ? e.message : strerror(-r));
        sd_bus_error_free(&e);
        if (r >= 0) {
                const char *sender = sd_bus_message_get_sender(reply);
                char *name = sender ? strdup(sender) : NULL;
                if (!name)
                        return -ENOMEM;
                free(d->broker);
                d->broker = name;
        }
        return r;
}

static const char *empty_to_null(const char *s) {
        return s && *s ? s : NULL;
}

static uint32_t read_sources(sd_bus_message *m) {
        const char *s;
        uint32_t r = 0;
        if (sd_bus_message_enter_container(m, 'a', "s") < 0)
                return 0;
        while (sd_bus_message_read(m, "s", &s) > 0)
                r |= pn_source_from_string(s);
        sd_bus_message_exit_container(m);
        return r;
}

/* The inverse of the broker's signal layout (dbus/org.procnotify.Broker1.xml). */
static int decode(sd_bus_message *m, PnEvent *ev) {
        static const struct {
                const char *member;
                PnEventType type;
        } map[] = {
                { "Forked", PN_EVENT_FORK },       { "Exec", PN_EVENT_EXEC },
                { "UidChanged", PN_EVENT_UID },    { "GidChanged", PN_EVENT_GID },
                { "SessionCreated", PN_EVENT_SID }, { "Ptrace", PN_EVENT_PTRACE },
                { "CommChanged", PN_EVENT_COMM },  { "Predump", PN_EVENT_PREDUMP },
                { "Exited", PN_EVENT_EXIT },       { "Adopted", PN_EVENT_ADOPT },
                { "Stopped", PN_EVENT_STOP },      { "Continued", PN_EVENT_CONTINUE },
                { "Overrun", PN_EVENT_OVERRUN },
        };
        const char *member = sd_bus_message_get_member(m);
        const char *comm, *exe, *cmdline, *cgroup, *unit, *where;
        int thread = 0, core = 0, r;
        size_t i;

        if (!streq_ptr(sd_bus_message_get_interface(m), IFACE))
                return -EBADMSG;
        for (i = 0; i < ELEMENTSOF(map); i++)
                if (streq_ptr(member, map[i].member))
                        break;
        if (i == ELEMENTSOF(map))
                return -EBADMSG;
        memset(ev, 0, sizeof(*ev));
        ev->type = map[i].type;
        if (ev->type == PN_EVENT_OVERRUN) {
                r = sd_bus_message_read(m, "tttstt", &ev->seq, &ev->ts_ns, &ev->overrun.lost, &where,
                                        &ev->overrun.first_seq, &ev->overrun.last_seq);
                ev->overrun.where = pn_overrun_where_from_string(where);
                return r;
        }
        r = sd_bus_message_read(m, "ttiiiusssss", &ev->seq, &ev->ts_ns, &ev->pid, &ev->tgid, &ev->ppid,
                                &ev->uid, &comm, &exe, &cmdline, &cgroup, &unit);
        if (r < 0)
                return r;
        ev->comm = empty_to_null(comm);
        ev->exe = empty_to_null(exe);
        ev->cmdline = empty_to_null(cmdline);
        ev->cgroup = empty_to_null(cgroup);
        ev->unit = empty_to_null(unit);
        switch (ev->type) {
        case PN_EVENT_FORK:
                r = sd_bus_message_read(m, "ib", &ev->fork.parent_pid, &thread);
                break;
        case PN_EVENT_UID:
        case PN_EVENT_GID:
                r = sd_bus_message_read(m, "uub", &ev->id.real, &ev->id.effective, &thread);
                break;
        case PN_EVENT_SID:
                r = sd_bus_message_read(m, "i", &ev->sid.sid);
                break;
        case PN_EVENT_PTRACE:
                r = sd_bus_message_read(m, "iib", &ev->ptrace.tracer_pid, &ev->ptrace.tracer_tgid, &thread);
                break;
        case PN_EVENT_COMM:
                r = sd_bus_message_read(m, "b", &thread);
                break;
        case PN_EVENT_PREDUMP: {
                const char *core_dump = NULL;
                r = sd_bus_message_read(m, "iixxst", &ev->predump.signal, &ev->predump.tid, &ev->predump.rss,
                                        &ev->predump.core_limit, &core_dump, &ev->netns);
                ev->predump.core_dump = pn_core_dump_from_string(core_dump);
                break;
        }
        case PN_EVENT_EXIT:
                r = sd_bus_message_read(m, "iibi", &ev->exit.exit_code, &ev->exit.signal, &core,
                                        &ev->exit.status);
                ev->exit.core_dumped = core;
                ev->sources = read_sources(m);
                if (r >= 0)
                        r = sd_bus_message_read(m, "bt", &thread, &ev->netns);
                break;
        case PN_EVENT_ADOPT:
                r = sd_bus_message_read(m, "ii", &ev->adopt.old_parent, &ev->adopt.new_parent);
                ev->sources = read_sources(m);
                break;
        case PN_EVENT_STOP:
                r = sd_bus_message_read(m, "i", &ev->stop.signal);
                ev->sources = read_sources(m);
                break;
        case PN_EVENT_CONTINUE:
                ev->sources = read_sources(m);
                break;
        default:
                break;
        }
        ev->thread = thread;
        /* The wall clock of the event, as the socket's "time" has it. */
        struct timespec mono, real;
        clock_gettime(CLOCK_MONOTONIC, &mono);
        clock_gettime(CLOCK_REALTIME, &real);
        ev->time_ns = ev->ts_ns + ((uint64_t) real.tv_sec * 1000000000u + (uint64_t) real.tv_nsec) -
                      ((uint64_t) mono.tv_sec * 1000000000u + (uint64_t) mono.tv_nsec);
        return r < 0 ? r : 0;
}

int ctl_dbus_next(CtlDbus *d, PnEvent *ret, int timeout_ms) {
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                sd_bus_message *m = NULL;
                int r = sd_bus_process(d->bus, &m);
                if (r < 0)
                        return r == -ECONNRESET || r == -ENOTCONN ? -ECONNRESET : r;
                if (m) {
                        const char *sender = sd_bus_message_get_sender(m);
                        if (sd_bus_message_is_signal(m, IFACE, NULL) && d->broker && sender &&
                            strcmp(sender, d->broker) == 0 && decode(m, ret) == 0) {
                                sd_bus_message_unref(d->current);
                                d->current = m;
                                return 1;
                        }
                        sd_bus_message_unref(m);
                        continue;
                }
                if (r > 0)
                        continue;
                uint64_t wait = UINT64_MAX;
                if (timeout_ms >= 0) {
                        clock_gettime(CLOCK_MONOTONIC, &now);
                        long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
                        if (elapsed >= timeout_ms)
                                return 0;
                        wait = (uint64_t) (timeout_ms - elapsed) * 1000;
                }
                r = sd_bus_wait(d->bus, wait);
                if (r < 0 && r != -EINTR)
                        return r;
                if (r == -EINTR)
                        return -EINTR;
        }
}

/* a{sv} (nested for sections) -> JSON object. 0, or a negative errno
 * (-EBADMSG: not what GetStatistics documents). Every read is checked: the
 * reply is whatever owns the name, and a failed read leaves key and
 * contents unset. */
static int read_dict(sd_bus_message *m, struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
        int r;

        if (!o)
                return -ENOMEM;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r <= 0)
                return r < 0 ? r : -EBADMSG;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key, *contents;
                char type;

                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                r = sd_bus_message_peek_type(m, &type, &contents);
                if (r < 0)
                        return r;
                if (r == 0 || type != 'v')
                        return -EBADMSG;
                r = sd_bus_message_enter_container(m, 'v', contents);
                if (r < 0)
                        return r;
                if (streq(contents, "t")) {
                        uint64_t v;
                        r = sd_bus_message_read(m, "t", &v);
                        if (r >= 0)
                                r = json_object_add_take(o, key, json_object_new_uint64(v));
                } else if (streq(contents, "b")) {
                        int v;
                        r = sd_bus_message_read(m, "b", &v);
                        if (r >= 0)
                                r = json_object_add_take(o, key, json_object_new_boolean(v));
                } else if (streq(contents, "s")) {
                        const char *v;
                        r = sd_bus_message_read(m, "s", &v);
                        if (r >= 0)
                                r = json_object_add_take(o, key, json_object_new_string(v));
                } else if (streq(contents, "a{sv}")) {
                        struct json_object *v = NULL;
                        r = read_dict(m, &v);
                        if (r >= 0)
                                r = json_object_add_take(o, key, v);
                } else
                        r = sd_bus_message_skip(m, contents);
                if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0 ||
                    (r = sd_bus_message_exit_container(m)) < 0)
                        return r;
        }
        if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

int ctl_dbus_statistics(CtlDbus *d, struct json_object **ret, char *error, size_t size) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = sd_bus_call_method(d->bus, NAME, PATH, IFACE, "GetStatistics", &e, &reply, NULL);
        if (r < 0) {
                snprintf(error, size, "%s: %s", e.name ? e.name : "error", e.message ? e.message : strerror(-r));
                sd_bus_error_free(&e);
                return r;
        }
        r = read_dict(reply, ret);
        if (r < 0)
                snprintf(error, size, "cannot read the GetStatistics reply: %s", strerror(-r));
        return r;
}
