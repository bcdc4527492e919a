/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The control methods of org.procnotify.Broker1 (Watch, Unwatch, Run,
 * ListChildren, Kill) on the broker's side of the sink: each call goes to
 * the broker through a ControlSlot (control.h) and its typed result becomes
 * the method's return values, or its error (sink_dbus_error_name() of the
 * protocol's code). A call may be answered later (Run waits for its child
 * to reach exec); its subscription (Watch, Run with "follow") is made
 * while the broker serves it, and taken back by the broker if the op fails.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json-util.h"
#include "common/macro.h"
#include "protocol/event-json.h"
#include "protocol/utf8.h"
#include <json-c/json.h>
#include "sink-dbus-internal.h"

typedef struct DbusCall {
        SinkDbus *sink;           /* NULL once the sink is gone */
        sd_bus_message *call;
        SinkOwner owner;
        char *path;               /* of the subscription made for it, or NULL */
        ControlSlot *slot;        /* while not answered: for cancel_all */
        struct DbusCall *next;
} DbusCall;

const char *sink_dbus_error_name(const char *code) {
        static const struct {
                const char *code, *name;
        } map[] = {
                { PN_ERR_NOT_FOUND, "org.procnotify.Broker1.Error.NotFound" },
                { PN_ERR_ACCESS_DENIED, "org.procnotify.Broker1.Error.AccessDenied" },
                { PN_ERR_LIMIT_EXCEEDED, "org.procnotify.Broker1.Error.LimitExceeded" },
                { PN_ERR_BUSY, "org.procnotify.Broker1.Error.Busy" },
                { PN_ERR_SPAWN_FAILED, "org.procnotify.Broker1.Error.SpawnFailed" },
                { PN_ERR_INVALID_FILTER, "org.procnotify.Broker1.Error.InvalidFilter" },
                { PN_ERR_INVALID_REQUEST, SD_BUS_ERROR_INVALID_ARGS },
                { PN_ERR_UNKNOWN_OP, SD_BUS_ERROR_UNKNOWN_METHOD },
                { PN_ERR_INTERNAL, SD_BUS_ERROR_NO_MEMORY },
        };
        for (size_t i = 0; code && i < ELEMENTSOF(map); i++)
                if (streq(code, map[i].code))
                        return map[i].name;
        return SD_BUS_ERROR_FAILED;
}

static void dbus_call_unlink(DbusCall *c) {
        if (!c->sink)
                return;
        for (DbusCall **p = &c->sink->calls; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        break;
                }
        c->sink = NULL;
}

static void dbus_call_free(void *userdata) {
        DbusCall *c = userdata;
        dbus_call_unlink(c);
        sd_bus_message_unref(c->call);
        free(c->path);
        free(c);
}

static int dbus_call_subscribe(void *userdata, Filter *f, uint64_t tag, uint64_t *ret_id) {
        DbusCall *c = userdata;
        DbusSubscription *sub = NULL;
        DbusPeer *peer = NULL;
        char **events;
        int r;

        /* The caller may have left the bus since it called (a run is
         * answered later). */
        for (DbusPeer *p = c->sink ? c->sink->peers : NULL; p && !peer; p = p->next)
                if (p->owner == c->owner)
                        peer = p;
        if (!peer) {
                filter_free(f);
                return -ECANCELED;
        }
        events = calloc(1, sizeof(char *));
        r = events ? sink_dbus_subscription_add(peer, f, events, NULL, &sub) : -ENOMEM;
        if (r != 0) {
                filter_free(f);
                free(events);
                return r; /* a SUBSCRIBER_E_* limit, or -errno */
        }
        sub->base.tag = tag;
        free(c->path);
        c->path = strdup(sub->path);
        if (!c->path) {
                sink_dbus_subscription_free(sub);
                return -ENOMEM;
        }
        *ret_id = sub->base.id;
        return 0;
}

static void dbus_call_unsubscribe(void *userdata, uint64_t tag) {
        DbusCall *c = userdata;
        if (c->sink)
                sink_dbus_drop_subscription(c->sink, c->owner, tag, 0, NULL);
        free(c->path);
        c->path = NULL;
}

/* ListChildren's a(ususbuss); D-Bus has no null: an unknown uid is
 * 4294967295, an unknown command "". */
static int append_children(sd_bus_message *m, const ControlResult *res) {
        int r = sd_bus_message_open_container(m, 'a', "(ususbuss)");
        for (size_t i = 0; r >= 0 && i < res->children.n; i++) {
                const ControlChild *c = &res->children.list[i];
                char time[32];
                event_json_format_time(time, c->started_ns);
                r = sd_bus_message_append(m, "(ususbuss)", (uint32_t) c->pid, c->name, c->uid,
                                          c->stopped ? "stopped" : "running", (int) c->adopted,
                                          c->requester_uid, c->command ? c->command : "", time);
        }
        return r < 0 ? r : sd_bus_message_close_container(m);
}

static int dbus_call_reply(DbusCall *c, const ControlResult *res) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        const char *path = c->path ? c->path : "/";
        int r;

        if (res->error.code)
                return sd_bus_reply_method_errorf(c->call, sink_dbus_error_name(res->error.code), "%s",
                                                  res->error.message);
        switch (res->op) {
        case REQUEST_WATCH:
                return sd_bus_reply_method_return(c->call, "o", path);
        case REQUEST_RUN:
                return sd_bus_reply_method_return(c->call, "ususo", (uint32_t) res->running.pid,
                                                  res->running.name, res->running.uid, res->running.output,
                                                  path);
        case REQUEST_CHILDREN:
                r = sd_bus_message_new_method_return(c->call, &m);
                if (r >= 0)
                        r = append_children(m, res);
                return r < 0 ? r : sd_bus_send(NULL, m, NULL);
        case REQUEST_KILL:
                r = sd_bus_message_new_method_return(c->call, &m);
                if (r >= 0)
                        r = sd_bus_message_append(m, "i", (int32_t) res->killed.signal);
                if (r >= 0)
                        r = sd_bus_message_append_array(m, 'u', res->killed.pids,
                                                        res->killed.n * sizeof(pid_t));
                return r < 0 ? r : sd_bus_send(NULL, m, NULL);
        default:
                return sd_bus_reply_method_return(c->call, NULL);
        }
}

static void dbus_call_complete(void *userdata, const ControlResult *res) {
        DbusCall *c = userdata;
        (void) dbus_call_reply(c, res);
        dbus_call_unlink(c);
}

int sink_dbus_control_serve(SinkDbus *s, DbusPeer *peer, sd_bus_message *call, const Request *req) {
        static const ControlSlotOps ops = {
                .subscribe = dbus_call_subscribe,
                .unsubscribe = dbus_call_unsubscribe,
                .complete = dbus_call_complete,
                .free = dbus_call_free,
        };
        _cleanup_(control_slot_unrefp) ControlSlot *slot = NULL;
        DbusCall *c;
        int r;

        if (!s->ctx.control.request)
                return sd_bus_reply_method_errorf(call, SD_BUS_ERROR_UNKNOWN_METHOD, "Not served by this broker.");
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (DbusCall){ .sink = s, .call = sd_bus_message_ref(call), .owner = peer->owner };
        r = control_slot_new(&slot, &ops, c,
                             subscriber_may_add(&peer->sub, s->opt.max_subscriptions) == 0);
        if (r < 0) {
                sd_bus_message_unref(c->call);
                free(c);
                return r;
        }
        c->slot = slot;
        c->next = s->calls;
        s->calls = c;
        s->ctx.control.request(s->ctx.userdata, &peer->sub.creds, peer->owner, req, slot);
        return 1;
}

void sink_dbus_control_cancel_all(SinkDbus *s) {
        while (s->calls) {
                DbusCall *c = s->calls;
                s->calls = c->next;
                c->sink = NULL;
                control_slot_cancel(c->slot);
        }
}

/* --- the methods: arguments into a Request, checked as the socket's --- */

/* Read "u pid" (a process id); on error sets ret_error. */
static int read_pid(sd_bus_message *m, pid_t *ret, sd_bus_error *ret_error) {
        uint32_t pid;
        int r = sd_bus_message_read(m, "u", &pid);
        if (r < 0)
                return r;
        if (pid == 0 || pid > INT32_MAX)
                return sd_bus_error_setf(ret_error, SD_BUS_ERROR_INVALID_ARGS, "%u is not a process id", pid);
        *ret = (pid_t) pid;
        return 0;
}

static int method_watch_or_unwatch(sd_bus_message *m, SinkDbus *s, RequestOp op, sd_bus_error *ret_error) {
        pid_t pid = 0;
        int stop = 0, r;

        r = read_pid(m, &pid, ret_error);
        if (r < 0) {
                s->stats.bad_calls++;
                return r;
        }
        if (op == REQUEST_WATCH) {
                /* Options: "stop" (boolean). */
                r = sd_bus_message_enter_container(m, 'a', "{sv}");
                while (r > 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                        const char *key;
                        r = sd_bus_message_read(m, "s", &key);
                        if (r >= 0 && !streq(key, "stop")) {
                                s->stats.bad_calls++;
                                return sd_bus_error_setf(ret_error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "Unknown option \"%.*s\" (known: stop).",
                                                         PN_UTF8_CUT(key, 64));
                        }
                        if (r >= 0)
                                r = sd_bus_message_read(m, "v", "b", &stop);
                        if (r < 0) {
                                s->stats.bad_calls++;
                                return sd_bus_error_setf(ret_error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "Option \"stop\" must be a boolean.");
                        }
                        r = sd_bus_message_exit_container(m);
                }
                if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0)
                        return r;
        }
        Request req = { .op = op, .watch = { .pid = pid, .stop = stop } };
        return sink_dbus_call_broker(s, m, &req);
}

int sink_dbus_method_watch(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        return method_watch_or_unwatch(m, userdata, REQUEST_WATCH, ret_error);
}

int sink_dbus_method_unwatch(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        return method_watch_or_unwatch(m, userdata, REQUEST_UNWATCH, ret_error);
}

/* --- Run, ListChildren, Kill: the JSON ops, checked by the same parser --- */

/* Add the a{sv} options of a call to req as members, refusing "op" and
 * the members given as arguments of their own (not_options): InvalidArgs. */
static int read_options(SinkDbus *s, sd_bus_message *m, struct json_object *req,
                        const char *const *not_options, sd_bus_error *ret_error) {
        char error[256] = "";
        int r = sd_bus_message_enter_container(m, 'a', "{sv}");
        while (r > 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key;
                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                bool refused = streq(key, "op");
                for (size_t i = 0; not_options[i]; i++)
                        refused = refused || streq(key, not_options[i]);
                struct json_object *v = NULL;
                if (refused)
                        snprintf(error, sizeof(error), "\"%.*s\" is not an option here.",
                                 PN_UTF8_CUT(key, 64));
                else
                        v = sink_dbus_read_variant(m, "options", key, error, sizeof(error));
                if (!v) {
                        s->stats.bad_calls++;
                        return sd_bus_error_set(ret_error, SD_BUS_ERROR_INVALID_ARGS, error);
                }
                r = json_object_add_take(req, key, v);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
        }
        return r < 0 ? r : sd_bus_message_exit_container(m);
}

/* Parse req (taken) as the socket would, then ask who is calling. */
static int method_control(sd_bus_message *m, SinkDbus *s, struct json_object *req, sd_bus_error *ret_error) {
        Request parsed;
        ProtoError err;
        int r;

        r = request_parse_object(&parsed, req, &err);
        if (r < 0) {
                if (r != -EINVAL)
                        return r;
                s->stats.bad_calls++;
                return sd_bus_error_set(ret_error, sink_dbus_error_name(err.code), err.message);
        }
        return sink_dbus_call_broker(s, m, &parsed);
}

/* Run's arguments into req, the JSON request the socket would send. */
static int read_run(SinkDbus *s, sd_bus_message *m, struct json_object *req, sd_bus_error *ret_error) {
        static const char *const not_options[] = { "argv", NULL };
        struct json_object *argv = json_object_new_array();
        const char *arg;
        size_t n = 0;
        int r;

        r = json_object_add_take(req, "argv", argv);
        if (r < 0 || (r = json_object_add_take(req, "op", json_object_new_string("run"))) < 0)
                return r;
        r = sd_bus_message_enter_container(m, 'a', "s");
        while (r > 0 && (r = sd_bus_message_read(m, "s", &arg)) > 0)
                /* Entries past the limit are counted, not copied. */
                if (n++ < RUN_MAX_ARGS && json_array_add_take(argv, json_object_new_string(arg)) < 0)
                        return -ENOMEM;
        if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0)
                return r;
        if (n > RUN_MAX_ARGS) {
                s->stats.bad_calls++;
                return sd_bus_error_setf(ret_error, SD_BUS_ERROR_INVALID_ARGS,
                                         "\"argv\" has %zu entries; at most %d", n, RUN_MAX_ARGS);
        }
        return read_options(s, m, req, not_options, ret_error);
}

int sink_dbus_method_run(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SinkDbus *s = userdata;
        struct json_object *req = json_object_new_object();
        int r;

        if (!req)
                return -ENOMEM;
        r = read_run(s, m, req, ret_error);
        if (r < 0) {
                json_object_put(req);
                return r;
        }
        return method_control(m, s, req, ret_error);
}

int sink_dbus_method_list_children(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        struct json_object *req = json_object_new_object();
        if (!req)
                return -ENOMEM;
        if (json_object_add_take(req, "op", json_object_new_string("children")) < 0) {
                json_object_put(req);
                return -ENOMEM;
        }
        return method_control(m, userdata, req, ret_error);
}

int sink_dbus_method_kill(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        static const char *const not_options[] = { NULL };
        SinkDbus *s = userdata;
        struct json_object *req = json_object_new_object();
        int r;

        if (!req)
                return -ENOMEM;
        r = json_object_add_take(req, "op", json_object_new_string("kill"));
        if (r >= 0)
                r = read_options(s, m, req, not_options, ret_error);
        if (r < 0) {
                json_object_put(req);
                return r;
        }
        return method_control(m, s, req, ret_error);
}

