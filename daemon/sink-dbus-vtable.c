/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * org.procnotify.Broker1 and org.procnotify.Subscription1 as callers see
 * them: the vtables (methods, properties, signals; dbus/org.procnotify.Broker1.xml
 * is the documented form of the same), and the calls the sink serves itself
 * (Subscribe, Unsubscribe, GetStatistics) once the bus told who is calling.
 * The control methods (Watch, Run, …) are sink-dbus-control.c's. Wrong
 * argument types never get here: sd-bus checks the signatures and answers
 * InvalidArgs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/json-util.h"
#include "common/macro.h"
#include "peer-pidfd.h"
#include "protocol/request.h"
#include "protocol/utf8.h"
#include "sink-dbus-internal.h"

#define ERROR_INVALID_FILTER "org.procnotify.Broker1.Error.InvalidFilter"
#define ERROR_ACCESS_DENIED "org.procnotify.Broker1.Error.AccessDenied"
#define ERROR_LIMIT_EXCEEDED "org.procnotify.Broker1.Error.LimitExceeded"
#define ERROR_NOT_FOUND "org.procnotify.Broker1.Error.NotFound"
#define ERROR_SIGNAL_NOT_SUPPORTED "org.procnotify.Broker1.Error.SignalNotSupported"

#define MAX_PEER_GROUPS 256

/* --- a{sv} match -> the JSON the filter parser takes --- */

static int read_int(sd_bus_message *m, char type, int64_t *ret) {
        union {
                uint8_t y;
                int16_t n;
                uint16_t q;
                int32_t i;
                uint32_t u;
                int64_t x;
                uint64_t t;
        } v;
        int r = sd_bus_message_read_basic(m, type, &v);
        if (r <= 0)
                return r < 0 ? r : -EINVAL;
        switch (type) {
        case 'y': *ret = v.y; break;
        case 'n': *ret = v.n; break;
        case 'q': *ret = v.q; break;
        case 'i': *ret = v.i; break;
        case 'u': *ret = v.u; break;
        case 'x': *ret = v.x; break;
        case 't': *ret = v.t > INT64_MAX ? -1 : (int64_t) v.t; break;
        default: return -EINVAL;
        }
        return 0;
}

static bool is_int_type(char c) {
        return c && strchr("ynqiuxt", c);
}

/* Read one variant of a{sv} what (the match, a method's options) into a
 * json value; NULL + message on error. */
struct json_object *sink_dbus_read_variant(sd_bus_message *m, const char *what, const char *key, char *error,
                                          size_t size) {
        const char *contents;
        char type;
        struct json_object *v = NULL;
        int64_t n;
        int r;

        if (sd_bus_message_peek_type(m, &type, &contents) <= 0 || type != 'v' ||
            sd_bus_message_enter_container(m, 'v', contents) <= 0)
                goto bad;
        if (is_int_type(contents[0]) && !contents[1]) {
                if (read_int(m, contents[0], &n) < 0)
                        goto bad;
                v = json_object_new_int64(n);
        } else if (streq(contents, "s")) {
                const char *s;
                if (sd_bus_message_read(m, "s", &s) < 0)
                        goto bad;
                v = json_object_new_string(s);
        } else if (streq(contents, "b")) {
                int b;
                if (sd_bus_message_read(m, "b", &b) < 0)
                        goto bad;
                v = json_object_new_boolean(b);
        } else if (contents[0] == 'a' && (is_int_type(contents[1]) || contents[1] == 's') && !contents[2]) {
                v = json_object_new_array();
                r = sd_bus_message_enter_container(m, 'a', contents + 1);
                while (r > 0 && !sd_bus_message_at_end(m, false)) {
                        if (contents[1] == 's') {
                                const char *s;
                                r = sd_bus_message_read(m, "s", &s);
                                if (r >= 0 && json_array_add_take(v, json_object_new_string(s)) < 0)
                                        goto oom;
                        } else {
                                r = read_int(m, contents[1], &n);
                                if (r >= 0 && json_array_add_take(v, json_object_new_int64(n)) < 0)
                                        goto oom;
                                r = r < 0 ? r : 1;
                        }
                }
                if (r < 0 || sd_bus_message_exit_container(m) < 0) {
                        json_object_put(v);
                        goto bad;
                }
        } else {
                snprintf(error, size, "%s.%.*s: D-Bus type '%.16s' is not accepted (integers, "
                         "strings, booleans, or arrays of integers or strings)", what,
                         PN_UTF8_CUT(key, 64), contents);
                return NULL;
        }
        if (!v)
                goto oom;
        if (sd_bus_message_exit_container(m) < 0) {
                json_object_put(v);
                goto bad;
        }
        return v;
oom:
        json_object_put(v);
        snprintf(error, size, "%s.%.*s: out of memory", what, PN_UTF8_CUT(key, 64));
        return NULL;
bad:
        snprintf(error, size, "%s.%.*s: the value could not be read", what, PN_UTF8_CUT(key, 64));
        return NULL;
}

/* Build {"events":[…],"match":{…},"threads":b} from the call's arguments. */
static int read_subscribe_args(sd_bus_message *m, struct json_object **ret, char *error, size_t size) {
        _cleanup_(json_object_putp) struct json_object *req = json_object_new_object();
        struct json_object *events = json_object_new_array(), *match = json_object_new_object();
        const char *ev;
        int r;

        /* Taken by req, or freed, whatever fails. */
        r = json_object_add_take(req, "events", events);
        if (json_object_add_take(req, "match", match) < 0 || r < 0)
                return -ENOMEM;
        r = sd_bus_message_enter_container(m, 'a', "s");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(m, "s", &ev)) > 0)
                if (json_array_add_take(events, json_object_new_string(ev)) < 0)
                        return -ENOMEM;
        if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0)
                return r;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key;
                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                struct json_object *v = sink_dbus_read_variant(m, "match", key, error, size);
                if (!v)
                        return -EINVAL;
                /* "threads", "signal" and "lines" are options of the subscription, not process keys;
                 * the match key "signal" (how a process ended) is "event_signal" here. */
                if (streq(key, "event_signal"))
                        r = json_object_add_take(match, "signal", v);
                else
                        r = json_object_add_take(streq(key, "threads") || streq(key, "signal") ||
                                                 streq(key, "lines") ? req : match, key, v);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0)
                return r;
        *ret = TAKE_PTR(req);
        return 0;
}

/* --- Subscribe: validate, ask the bus who is calling, then subscribe --- */

typedef struct PendingSubscribe {
        SinkDbus *sink;
        sd_bus_message *call;
        RequestOp op;     /* subscribe, or an op the broker serves (watch, run, …) */
        Filter *filter;
        char **events;
        int signal;
        bool no_lines;    /* "lines": false */
        Follow *follow;   /* subscribe with "follow", once the caller is known */
        Request req;      /* what the broker serves, as a JSON request */
        int process_fd;   /* the bus's ProcessFD of the caller, or -1 */
} PendingSubscribe;

static PendingSubscribe *pending_new(SinkDbus *s) {
        PendingSubscribe *p = calloc(1, sizeof(*p));
        if (p) {
                p->sink = s;
                p->process_fd = -1;
        }
        return p;
}

static void pending_free(PendingSubscribe *p) {
        sd_bus_message_unref(p->call);
        request_done(&p->req);
        follow_free(p->follow);
        filter_free(p->filter);
        for (size_t i = 0; p->events && p->events[i]; i++)
                free(p->events[i]);
        free(p->events);
        safe_close(p->process_fd);
        free(p);
}

static void pending_destroy(void *userdata) {
        pending_free(userdata);
}

/* The caller's credentials from GetConnectionCredentials' reply, and its
 * ProcessFD (a pidfd of the process that connected, given by newer
 * dbus-daemon and dbus-broker releases, not by Debian 12's 1.14 and 33;
 * -1 where the bus does not give one) in
 * *ret_pidfd, a copy the caller owns. */
int sink_dbus_read_creds(sd_bus_message *reply, const Policy *policy, PeerCreds *ret,
                         int *ret_pidfd) {
        uint32_t uid = UINT32_MAX, pid = 0;
        _cleanup_close_ int pidfd = -1;
        gid_t groups[MAX_PEER_GROUPS];
        size_t n_groups = 0;
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r > 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *key;
                r = sd_bus_message_read(reply, "s", &key);
                if (r < 0)
                        return r;
                if (streq(key, "UnixUserID"))
                        r = sd_bus_message_read(reply, "v", "u", &uid);
                else if (streq(key, "ProcessID"))
                        r = sd_bus_message_read(reply, "v", "u", &pid);
                else if (streq(key, "ProcessFD") && pidfd < 0) {
                        int fd = -1;
                        r = sd_bus_message_read(reply, "v", "h", &fd);
                        if (r >= 0 && fd >= 0) {
                                pidfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
                                if (pidfd < 0)
                                        return -errno;
                        }
                }
                else if (streq(key, "UnixGroupIDs")) {
                        uint32_t g;
                        r = sd_bus_message_enter_container(reply, 'v', "au");
                        if (r > 0)
                                r = sd_bus_message_enter_container(reply, 'a', "u");
                        while (r > 0 && (r = sd_bus_message_read(reply, "u", &g)) > 0)
                                if (n_groups < MAX_PEER_GROUPS)
                                        groups[n_groups++] = g;
                        if (r >= 0)
                                r = sd_bus_message_exit_container(reply);
                        if (r >= 0)
                                r = sd_bus_message_exit_container(reply);
                } else
                        r = sd_bus_message_skip(reply, "v");
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(reply);
        }
        if (r < 0)
                return r;
        if (uid == UINT32_MAX)
                return -EBADMSG; /* the bus did not tell: trust nobody */
        /* What the bus driver says is what the kernel told it about the
         * caller's socket (SO_PEERCRED uid and gid, SO_PEERGROUPS), never
         * anything the caller sent: dbus-daemon 1.14 and dbus-broker 33 both
         * list the primary gid with the supplementary groups (measured), so
         * membership is judged as on the JSON socket. With no list the peer
         * is privileged only as root. */
        policy_peer_init(policy, ret, uid, (gid_t) -1, (pid_t) pid, groups, n_groups);
        if (ret_pidfd)
                *ret_pidfd = TAKE_FD(pidfd);
        return 0;
}

static int reply_statistics(sd_bus_message *call, SinkDbus *s, bool sees_all);

/* Subscribe the caller of p->call, whose credentials the bus told. */
static int subscribe_caller(PendingSubscribe *p, const PeerCreds *creds) {
        SinkDbus *s = p->sink;
        DbusPeer *peer = NULL;
        DbusSubscription *sub = NULL;
        int r;

        if (p->op == REQUEST_STATUS)
                return reply_statistics(p->call, s, creds->privileged);
        r = sink_dbus_peer_get(s, sd_bus_message_get_sender(p->call), creds, &peer);
        if (r == SINK_DBUS_PEER_E_MAX_CLIENTS)
                return sd_bus_reply_method_errorf(p->call, ERROR_LIMIT_EXCEEDED,
                                                  "The broker serves no more subscribing connections "
                                                  "(MaxClients).");
        if (r == SINK_DBUS_PEER_E_USER_LIMIT)
                return sd_bus_reply_method_errorf(p->call, ERROR_LIMIT_EXCEEDED,
                                                  "Too many connections for this user, JSON and D-Bus "
                                                  "together (MaxClientsPerUser=%u).",
                                                  uidlimits_get_max(s->ctx.limits, UID_RESOURCE_CLIENTS));
        if (r < 0)
                return sd_bus_reply_method_errnof(p->call, r, "Cannot subscribe: %m");
        if (p->op != REQUEST_SUBSCRIBE)
                return sink_dbus_control_serve(s, peer, p->call, &p->req);
        char msg[160];
        r = subscriber_may_add(&peer->sub, s->opt.max_subscriptions);
        if (r != 0) {
                subscriber_limit_message(r, s->opt.max_subscriptions, s->ctx.limits, msg, sizeof(msg));
                return sd_bus_reply_method_errorf(p->call, ERROR_LIMIT_EXCEEDED, "%s", msg);
        }
        pid_t follow_pid = filter_get_follow(p->filter);
        if (follow_pid > 0) {
                r = sink_context_follow_new(&s->ctx, &peer->sub.creds, follow_pid, peer->sub.n_follows,
                                            &p->follow, msg, sizeof(msg));
                if (r != 0)
                        return sd_bus_reply_method_errorf(p->call,
                                                          sink_dbus_error_name(sink_context_error_code(r)),
                                                          "%s", msg);
        }
        if (p->signal && peer->sub.signals.pidfd < 0) {
                /* Never a bare pid: a process that ended while another kept
                 * its connection may have left its pid to anyone, root too. */
                if (p->process_fd < 0)
                        return sd_bus_reply_method_errorf(p->call, ERROR_SIGNAL_NOT_SUPPORTED,
                                                          "signal: this bus does not tell the calling "
                                                          "process as a pidfd (ProcessFD in "
                                                          "GetConnectionCredentials), and no signal is "
                                                          "sent to a bare pid.");
                r = peer_signals_set(&peer->sub.signals, TAKE_FD(p->process_fd), creds->uid);
                if (r == -EPERM)
                        return sd_bus_reply_method_errorf(p->call, ERROR_ACCESS_DENIED,
                                                          "signal: the calling process no longer runs "
                                                          "as the user that connected to the bus.");
                if (r < 0)
                        return sd_bus_reply_method_errorf(p->call, ERROR_ACCESS_DENIED,
                                                          "signal: cannot read the calling process's "
                                                          "credentials (%s).", strerror(-r));
        }
        r = sink_dbus_subscription_add(peer, p->filter, p->events, p->follow, &sub);
        if (r > 0) {
                subscriber_limit_message(r, s->opt.max_subscriptions, s->ctx.limits, msg, sizeof(msg));
                return sd_bus_reply_method_errorf(p->call, ERROR_LIMIT_EXCEEDED, "%s", msg);
        }
        if (r < 0)
                return sd_bus_reply_method_errnof(p->call, r, "Cannot subscribe: %m");
        sub->base.signal = p->signal;
        sub->base.no_lines = p->no_lines;
        p->filter = NULL; /* owned by the subscription now */
        p->events = NULL;
        p->follow = NULL;
        return sd_bus_reply_method_return(p->call, "o", sub->path);
}

static int on_sender_creds(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        PendingSubscribe *p = userdata;
        PeerCreds creds;

        (void) ret_error;
        if (sd_bus_message_is_method_error(reply, NULL) ||
            sink_dbus_read_creds(reply, p->sink->ctx.policy, &creds, &p->process_fd) < 0)
                return sd_bus_reply_method_errorf(p->call, ERROR_ACCESS_DENIED,
                                                  "The bus did not tell who is calling.");
        return subscribe_caller(p, &creds);
}

/* Ask the bus, not the caller, who is calling; on_sender_creds() goes on.
 * Takes p. */
static int ask_sender_creds(PendingSubscribe *p, sd_bus_message *m) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        int r;

        p->call = sd_bus_message_ref(m);
        /* A connection's credentials do not change (unique names are never
         * reused): a known peer is not asked about again. */
        const PeerCreds *known = sink_dbus_peer_creds(p->sink, sd_bus_message_get_sender(m));
        /* …but a first "signal" asks for its ProcessFD. */
        if (known && p->signal && !sink_dbus_peer_has_signals(p->sink, sd_bus_message_get_sender(m)))
                known = NULL;
        if (known) {
                PeerCreds creds = *known;
                r = subscribe_caller(p, &creds);
                pending_free(p);
                return r;
        }
        r = sd_bus_call_method_async(p->sink->bus, &slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                     "org.freedesktop.DBus", "GetConnectionCredentials",
                                     on_sender_creds, p, "s", sd_bus_message_get_sender(m));
        if (r < 0) {
                pending_free(p);
                return r;
        }
        /* The slot lives until the reply (or the bus) goes; it frees p. */
        sd_bus_slot_set_destroy_callback(slot, pending_destroy);
        sd_bus_slot_set_floating(slot, 1);
        return 1;
}

static int method_subscribe(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SinkDbus *s = userdata;
        _cleanup_(json_object_putp) struct json_object *req = NULL;
        struct json_object *events, *match, *threads = NULL, *sig = NULL, *lines = NULL;
        char error[256] = "";
        PendingSubscribe *p;
        int r;

        r = read_subscribe_args(m, &req, error, sizeof(error));
        if (r == -EINVAL) {
                s->stats.bad_calls++;
                return sd_bus_error_set(ret_error, ERROR_INVALID_FILTER, error);
        }
        if (r < 0)
                return r;
        p = pending_new(s);
        if (!p)
                return -ENOMEM;
        json_object_object_get_ex(req, "events", &events);
        json_object_object_get_ex(req, "match", &match);
        json_object_object_get_ex(req, "threads", &threads);
        json_object_object_get_ex(req, "signal", &sig);
        json_object_object_get_ex(req, "lines", &lines);
        if (sig && request_parse_signal(sig, &p->signal, error, sizeof(error)) < 0) {
                pending_free(p);
                s->stats.bad_calls++;
                return sd_bus_error_set(ret_error, ERROR_INVALID_FILTER, error);
        }
        /* The same rule as the socket's (request.c). */
        p->no_lines = lines && json_object_is_type(lines, json_type_boolean) && !json_object_get_boolean(lines);
        if ((lines && !json_object_is_type(lines, json_type_boolean)) || (p->no_lines && !p->signal)) {
                const char *why = p->no_lines ? "\"lines\": false needs a \"signal\": the subscription "
                                                "would deliver nothing"
                                              : "\"lines\" must be true or false";
                pending_free(p);
                s->stats.bad_calls++;
                return sd_bus_error_set(ret_error, ERROR_INVALID_FILTER, why);
        }
        /* An empty events array means all events here (D-Bus has no null). */
        r = filter_new_from_json(&p->filter, json_object_array_length(events) ? events : NULL,
                                 threads, match, error, sizeof(error));
        if (r < 0) {
                pending_free(p);
                if (r != -EINVAL)
                        return r;
                s->stats.bad_calls++;
                return sd_bus_error_set(ret_error, ERROR_INVALID_FILTER, error);
        }
        r = sink_context_resolve_netns(p->filter, error, sizeof(error));
        if (r != 0) {
                pending_free(p);
                if (r < 0)
                        return r;
                s->stats.bad_calls++;
                return sd_bus_error_set(ret_error, ERROR_INVALID_FILTER, error);
        }
        p->events = calloc(json_object_array_length(events) + 1, sizeof(char *));
        for (size_t i = 0; p->events && i < json_object_array_length(events); i++)
                p->events[i] = strdup(json_object_get_string(json_object_array_get_idx(events, i)));
        return ask_sender_creds(p, m);
}

int sink_dbus_call_broker(SinkDbus *s, sd_bus_message *m, Request *req) {
        PendingSubscribe *p = pending_new(s);

        if (!p) {
                request_done(req);
                return -ENOMEM;
        }
        p->req = *req;
        *req = (Request){ .op = _REQUEST_OP_INVALID };
        p->op = p->req.op;
        return ask_sender_creds(p, m);
}

static DbusSubscription *own_subscription(SinkDbus *s, sd_bus_message *m, const char *path,
                                          sd_bus_error *ret_error) {
        DbusSubscription *sub = sink_dbus_subscription_by_path(s, path);
        /* Only its owner can end a subscription (and tell it exists). */
        if (!sub || !streq(sub->peer->name, sd_bus_message_get_sender(m))) {
                sd_bus_error_setf(ret_error, ERROR_NOT_FOUND, "No subscription %s of this connection.", path);
                return NULL;
        }
        return sub;
}

static int method_unsubscribe(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SinkDbus *s = userdata;
        const char *path;
        int r = sd_bus_message_read(m, "o", &path);
        if (r < 0)
                return r;
        DbusSubscription *sub = own_subscription(s, m, path, ret_error);
        if (!sub) {
                s->stats.bad_calls++;
                return -ENOENT;
        }
        sink_dbus_subscription_free(sub);
        return sd_bus_reply_method_return(m, NULL);
}

static int method_subscription_unsubscribe(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        DbusSubscription *sub = userdata;
        SinkDbus *s = sub->peer->sink;
        if (!own_subscription(s, m, sub->path, ret_error))
                return -ENOENT;
        sink_dbus_subscription_free(sub);
        return sd_bus_reply_method_return(m, NULL);
}

/* --- GetStatistics: the broker's figures as a{sv}, sections as a{sv} --- */

typedef struct StatsMessage {
        sd_bus_message *m;
        int r;
} StatsMessage;

static void sm_section_begin(void *userdata, const char *name) {
        StatsMessage *sm = userdata;
        if (sm->r >= 0)
                sm->r = sd_bus_message_open_container(sm->m, 'e', "sv");
        if (sm->r >= 0)
                sm->r = sd_bus_message_append(sm->m, "s", name);
        if (sm->r >= 0)
                sm->r = sd_bus_message_open_container(sm->m, 'v', "a{sv}");
        if (sm->r >= 0)
                sm->r = sd_bus_message_open_container(sm->m, 'a', "{sv}");
}

static void sm_section_end(void *userdata) {
        StatsMessage *sm = userdata;
        for (int i = 0; i < 3 && sm->r >= 0; i++)
                sm->r = sd_bus_message_close_container(sm->m);
}

static void sm_uint(void *userdata, const char *key, uint64_t value) {
        StatsMessage *sm = userdata;
        if (sm->r >= 0)
                sm->r = sd_bus_message_append(sm->m, "{sv}", key, "t", value);
}

static void sm_bool(void *userdata, const char *key, bool value) {
        StatsMessage *sm = userdata;
        if (sm->r >= 0)
                sm->r = sd_bus_message_append(sm->m, "{sv}", key, "b", (int) value);
}

static void sm_str(void *userdata, const char *key, const char *value) {
        StatsMessage *sm = userdata;
        if (sm->r >= 0)
                sm->r = sd_bus_message_append(sm->m, "{sv}", key, "s", value ? value : "");
}

/* The statistics for the caller of call, whose credentials the bus told:
 * without figures about other users' processes unless it sees them all. */
static int reply_statistics(sd_bus_message *call, SinkDbus *s, bool sees_all) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        StatsMessage sm = { 0 };
        StatsVisitor v = {
                .section_begin = sm_section_begin,
                .section_end = sm_section_end,
                .value_uint = sm_uint,
                .value_bool = sm_bool,
                .value_str = sm_str,
                .userdata = &sm,
                .sees_all = sees_all,
        };

        sm.r = sd_bus_message_new_method_return(call, &reply);
        if (sm.r < 0)
                return sm.r;
        sm.m = reply;
        sm.r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (sm.r >= 0)
                s->ctx.visit_stats(s->ctx.userdata, &v);
        if (sm.r >= 0)
                sm.r = sd_bus_message_close_container(reply);
        if (sm.r < 0)
                return sm.r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_get_statistics(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        PendingSubscribe *p = pending_new(userdata);
        (void) ret_error;

        if (!p)
                return -ENOMEM;
        p->op = REQUEST_STATUS;
        return ask_sender_creds(p, m);
}

/* --- properties --- */

static int property_version(sd_bus *bus, const char *path, const char *iface, const char *prop,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        SinkDbus *s = userdata;
        (void) bus, (void) path, (void) iface, (void) prop, (void) error;
        return sd_bus_message_append(reply, "s", s->ctx.version);
}

static int property_protocol_version(sd_bus *bus, const char *path, const char *iface, const char *prop,
                                     sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        (void) bus, (void) path, (void) iface, (void) prop, (void) userdata, (void) error;
        return sd_bus_message_append(reply, "u", (uint32_t) PN_PROTOCOL_VERSION);
}

static int property_kernel_features(sd_bus *bus, const char *path, const char *iface, const char *prop,
                                    sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        SinkDbus *s = userdata;
        const KernelFeatures *f = s->ctx.features;
        (void) bus, (void) path, (void) iface, (void) prop, (void) error;
        return sd_bus_message_append(reply, "a{sb}", 4, "connector_filter", (int) f->connector_filter,
                                     "pidfd", (int) f->pidfd, "pidfd_info", (int) f->pidfd_info,
                                     "peer_pidfd", (int) f->peer_pidfd);
}

static int property_sub_events(sd_bus *bus, const char *path, const char *iface, const char *prop,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        DbusSubscription *sub = userdata;
        (void) bus, (void) path, (void) iface, (void) prop, (void) error;
        return sd_bus_message_append_strv(reply, sub->events);
}

static int property_sub_owner(sd_bus *bus, const char *path, const char *iface, const char *prop,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        DbusSubscription *sub = userdata;
        (void) bus, (void) path, (void) iface, (void) prop, (void) error;
        return sd_bus_message_append(reply, "s", sub->peer->name);
}

/* The common head of every process event's signal, with JSON field names. */
#define PROCESS_ARGS "ttiiiusssss"
#define PROCESS_NAMES "seq\0ts_ns\0pid\0tgid\0ppid\0uid\0comm\0exe\0cmdline\0cgroup\0unit\0"

const sd_bus_vtable sink_dbus_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ProtocolVersion", "u", property_protocol_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("KernelFeatures", "a{sb}", property_kernel_features, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_NAMES("Subscribe", "asa{sv}", SD_BUS_PARAM(events) SD_BUS_PARAM(match),
                                 "o", SD_BUS_PARAM(subscription), method_subscribe, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Unsubscribe", "o", SD_BUS_PARAM(subscription), NULL,,
                                 method_unsubscribe, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetStatistics", NULL,, "a{sv}", SD_BUS_PARAM(statistics),
                                 method_get_statistics, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Watch", "ua{sv}", SD_BUS_PARAM(pid) SD_BUS_PARAM(options), "o",
                                 SD_BUS_PARAM(subscription), sink_dbus_method_watch, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Unwatch", "u", SD_BUS_PARAM(pid), NULL,, sink_dbus_method_unwatch,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Run", "asa{sv}", SD_BUS_PARAM(argv) SD_BUS_PARAM(options), "ususo",
                                 SD_BUS_PARAM(pid) SD_BUS_PARAM(name) SD_BUS_PARAM(uid) SD_BUS_PARAM(output)
                                 SD_BUS_PARAM(subscription), sink_dbus_method_run, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListChildren", NULL,, "a(ususbuss)", SD_BUS_PARAM(children),
                                 sink_dbus_method_list_children, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Kill", "a{sv}", SD_BUS_PARAM(target), "iau",
                                 SD_BUS_PARAM(signal) SD_BUS_PARAM(pids), sink_dbus_method_kill, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_NAMES("Forked", PROCESS_ARGS "ib", PROCESS_NAMES "parent_pid\0thread\0", 0),
        SD_BUS_SIGNAL_WITH_NAMES("Exec", PROCESS_ARGS, PROCESS_NAMES, 0),
        SD_BUS_SIGNAL_WITH_NAMES("UidChanged", PROCESS_ARGS "uub", PROCESS_NAMES "ruid\0euid\0thread\0", 0),
        SD_BUS_SIGNAL_WITH_NAMES("GidChanged", PROCESS_ARGS "uub", PROCESS_NAMES "rgid\0egid\0thread\0", 0),
        SD_BUS_SIGNAL_WITH_NAMES("SessionCreated", PROCESS_ARGS "i", PROCESS_NAMES "sid\0", 0),
        SD_BUS_SIGNAL_WITH_NAMES("Ptrace", PROCESS_ARGS "iib", PROCESS_NAMES "tracer_pid\0tracer_tgid\0thread\0", 0),
        SD_BUS_SIGNAL_WITH_NAMES("CommChanged", PROCESS_ARGS "b", PROCESS_NAMES "thread\0", 0),
        SD_BUS_SIGNAL_WITH_NAMES("Predump", PROCESS_ARGS "iixxst",
                                 PROCESS_NAMES "signal\0tid\0rss\0core_limit\0core_dump\0netns\0", 0),
        SD_BUS_SIGNAL_WITH_NAMES("Exited", PROCESS_ARGS "iibiasbt",
                                 PROCESS_NAMES "exit_code\0signal\0core_dumped\0status\0sources\0thread\0netns\0", 0),
        SD_BUS_SIGNAL_WITH_NAMES("Adopted", PROCESS_ARGS "iias", PROCESS_NAMES "old_parent\0new_parent\0sources\0", 0),
        SD_BUS_SIGNAL_WITH_NAMES("Stopped", PROCESS_ARGS "ias", PROCESS_NAMES "signal\0sources\0", 0),
        SD_BUS_SIGNAL_WITH_NAMES("Continued", PROCESS_ARGS "as", PROCESS_NAMES "sources\0", 0),
        SD_BUS_SIGNAL_WITH_NAMES("Overrun", "tttstt", "seq\0ts_ns\0lost\0where\0first_seq\0last_seq\0", 0),
        SD_BUS_SIGNAL_WITH_NAMES("WatchEnded", "ous", "subscription\0pid\0reason\0", 0),
        SD_BUS_SIGNAL_WITH_NAMES("SignalWithheld", "iutt", "signal\0pid\0cause_seq\0ts_ns\0", 0),
        SD_BUS_SIGNAL_WITH_NAMES("Followed", "osiiuutt",
                                 "subscription\0reason\0main_pid\0previous_main_pid\0candidates\0members\0"
                                 "cause_seq\0ts_ns\0", 0),
        SD_BUS_VTABLE_END,
};

const sd_bus_vtable sink_dbus_subscription_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Events", "as", property_sub_events, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Owner", "s", property_sub_owner, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD("Unsubscribe", NULL, NULL, method_subscription_unsubscribe, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};
