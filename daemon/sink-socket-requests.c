/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SinkSocket's requests: what one client line asks (subscribe, unsubscribe,
 * ping, status) and the ops it hands to the broker (watch, run, …), whose
 * reply line it queues; the client's subscriptions live in its Subscriber.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/macro.h"
#include "fdreserve.h"
#include "peer-pidfd.h"
#include "protocol/reply.h"
#include "protocol/request.h"
#include "sink-socket-internal.h"

/* A StatsVisitor that writes JSON: sections become nested objects. */
static void json_section_begin(void *userdata, const char *name) {
        jsonbuf_begin_object_field(userdata, name);
}
static void json_section_end(void *userdata) {
        jsonbuf_end_object(userdata);
}
static void json_uint(void *userdata, const char *key, uint64_t value) {
        jsonbuf_field_uint(userdata, key, value);
}
static void json_bool(void *userdata, const char *key, bool value) {
        jsonbuf_field_bool(userdata, key, value);
}
static void json_str(void *userdata, const char *key, const char *value) {
        jsonbuf_field_str(userdata, key, value);
}

static void client_status(Client *c) {
        SinkSocket *s = c->sink;
        JsonBuf *b = &s->reply;
        StatsVisitor v = {
                .section_begin = json_section_begin,
                .section_end = json_section_end,
                .value_uint = json_uint,
                .value_bool = json_bool,
                .value_str = json_str,
                .userdata = b,
                .sees_all = c->sub.creds.privileged,
        };

        jsonbuf_begin_object(b);
        jsonbuf_field_str(b, "type", "status");
        s->ctx.visit_stats(s->ctx.userdata, &v);
        jsonbuf_end_object(b);
        jsonbuf_append_char(b, '\n');
        sink_socket_client_reply(c);
}

/* Room for one more subscription on this connection and for its user? */
static bool client_can_subscribe(const Client *c) {
        return subscriber_may_add(&c->sub, c->sink->opt.max_subscriptions) == 0;
}

/* Add a subscription (filter and follow taken on success), or tell why not. */
static int client_add_subscription(Client *c, Filter *filter, uint64_t tag, Follow *follow,
                                   Subscription **ret) {
        SinkSocket *s = c->sink;
        char msg[160];
        int r = subscriber_add(&c->sub, s->opt.max_subscriptions, sizeof(Subscription), c->next_sub_id + 1,
                               tag, filter, follow, ret);

        if (r != 0) {
                subscriber_limit_message(r, s->opt.max_subscriptions, s->ctx.limits, msg, sizeof(msg));
                sink_socket_client_error(c, r > 0 ? PN_ERR_LIMIT_EXCEEDED : PN_ERR_INTERNAL, msg);
                return r;
        }
        c->next_sub_id++;
        s->stats.subscriptions++;
        return 0;
}

static void client_remove_subscription(Client *c, Subscription *sub) {
        subscriber_remove(&c->sub, sub);
        c->sink->stats.subscriptions--;
}

/* Remove c's subscriptions tagged tag; with a reason, each is told first. */
static void client_remove_tagged(Client *c, uint64_t tag, pid_t pid, const char *reason) {
        for (Subscription *sub = c->sub.subs, *next; sub; sub = next) {
                next = sub->next;
                if (sub->tag != tag)
                        continue;
                if (reason) {
                        reply_watch_ended(&c->sink->reply, sub->id, pid, reason, clock_ns(CLOCK_MONOTONIC),
                                          clock_ns(CLOCK_REALTIME));
                        sink_socket_client_reply(c);
                }
                client_remove_subscription(c, sub);
        }
}

/* --- ops the broker serves (watch, run, …), through a ControlSlot --- */

static int client_slot_subscribe(void *userdata, Filter *f, uint64_t tag, uint64_t *ret_id) {
        Client *c = userdata;
        Subscription *sub = NULL;
        int r = client_add_subscription(c, f, tag, NULL, &sub);

        if (r != 0) {
                /* It sent its error: that is the request's reply. */
                filter_free(f);
                c->slot_replied = true;
                return r; /* a SUBSCRIBER_E_* limit, or -errno */
        }
        *ret_id = sub->id;
        return 0;
}

static void client_slot_unsubscribe(void *userdata, uint64_t tag) {
        client_remove_tagged(userdata, tag, 0, NULL);
}

static void client_slot_complete(void *userdata, const ControlResult *r) {
        Client *c = userdata;
        SinkSocket *s = c->sink;

        if (!c->slot_replied) {
                reply_control(&s->reply, r);
                sink_socket_client_reply(c);
        }
        c->slot_replied = false;
        if (c->forwarding)
                return; /* answered at once: client_forward() goes on */
        /* Answered later: serve what was read meanwhile, then read on. */
        c->slot = control_slot_unref(c->slot);
        sink_socket_client_resume(c);
}

/* An op the broker serves: it answers through a slot, at once or later;
 * it may give this connection a subscription for what it asked for, or
 * take one away. */
static void client_forward(Client *c, const Request *r) {
        static const ControlSlotOps ops = {
                .subscribe = client_slot_subscribe,
                .unsubscribe = client_slot_unsubscribe,
                .complete = client_slot_complete,
        };
        SinkSocket *s = c->sink;
        int k;

        if (!s->ctx.control.request) {
                sink_socket_client_error(c, PN_ERR_UNKNOWN_OP, "op not served on this socket");
                return;
        }
        k = control_slot_new(&c->slot, &ops, c, client_can_subscribe(c));
        if (k < 0) {
                sink_socket_client_error(c, PN_ERR_INTERNAL, "out of memory");
                return;
        }
        c->forwarding = true;
        s->ctx.control.request(s->ctx.userdata, &c->sub.creds, c->owner, r, c->slot);
        c->forwarding = false;
        if (control_slot_is_done(c->slot))
                c->slot = control_slot_unref(c->slot);
}

/* subscribe: the filter, and what this sink keeps besides for it: the
 * follow of a service ("follow"), the subscriber's pidfd ("signal"). */
static void client_subscribe(Client *c, Request *r) {
        SinkSocket *s = c->sink;
        _cleanup_(follow_freep) Follow *follow = NULL;
        pid_t follow_pid = filter_get_follow(r->subscribe.filter);
        Subscription *sub;
        char msg[160];
        int k;

        k = subscriber_may_add(&c->sub, s->opt.max_subscriptions);
        if (k != 0) {
                subscriber_limit_message(k, s->opt.max_subscriptions, s->ctx.limits, msg, sizeof(msg));
                sink_socket_client_error(c, PN_ERR_LIMIT_EXCEEDED, msg);
                return;
        }
        k = sink_context_resolve_netns(r->subscribe.filter, msg, sizeof(msg));
        if (k != 0) {
                sink_socket_client_error(c, sink_context_error_code(k), msg);
                return;
        }
        if (follow_pid > 0) {
                k = sink_context_follow_new(&s->ctx, &c->sub.creds, follow_pid, c->sub.n_follows, &follow,
                                            msg, sizeof(msg));
                if (k != 0) {
                        sink_socket_client_error(c, sink_context_error_code(k), msg);
                        return;
                }
        }
        if (r->subscribe.signal && c->sub.signals.pidfd < 0) {
                k = peer_pidfd_open_socket(c->fd, c->sub.creds.pid, c->accepted_ns);
                if (fdreserve_refuses(k, c->sub.creds.uid)) {
                        safe_close(k);
                        sink_socket_client_error(c, PN_ERR_LIMIT_EXCEEDED, "\"signal\": the broker is short of "
                                          "file descriptors (the last ones are kept for root)");
                        return;
                }
                if (k >= 0)
                        k = peer_signals_set(&c->sub.signals, k, c->sub.creds.uid);
                if (k == -EPERM) {
                        sink_socket_client_error(c, PN_ERR_ACCESS_DENIED,
                                          "\"signal\": this connection's process no longer runs as the "
                                          "user that connected");
                        return;
                }
                if (k < 0) {
                        snprintf(msg, sizeof(msg), "\"signal\": cannot get a pidfd of this connection's "
                                 "process (%s); no signal is sent to a bare pid", strerror(-k));
                        sink_socket_client_error(c, PN_ERR_ACCESS_DENIED, msg);
                        return;
                }
        }
        if (client_add_subscription(c, r->subscribe.filter, 0, follow, &sub) != 0)
                return;
        r->subscribe.filter = NULL;
        follow = NULL;
        sub->signal = r->subscribe.signal;
        sub->no_lines = r->subscribe.no_lines;
        reply_subscribed(&s->reply, sub->id);
        sink_socket_client_reply(c);
}

void sink_socket_client_handle_line(Client *c, const char *line, size_t len) {
        SinkSocket *s = c->sink;
        Request r;
        ProtoError err;
        int k;

        while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
                len--;
        if (len == 0)
                return; /* blank lines are allowed, e.g. as keep-alives */

        k = request_parse(&r, line, len, &err);
        if (k == -ENOMEM) {
                sink_socket_client_error(c, PN_ERR_INTERNAL, "out of memory");
                return;
        }
        if (k < 0) {
                s->stats.bad_requests++;
                sink_socket_client_error(c, err.code, err.message);
                return;
        }
        switch (r.op) {
        case REQUEST_SUBSCRIBE:
                client_subscribe(c, &r);
                break;
        case REQUEST_UNSUBSCRIBE: {
                Subscription *sub = subscriber_find(&c->sub, r.unsubscribe.id);
                if (!sub) {
                        char msg[96];
                        snprintf(msg, sizeof(msg), "no subscription %llu on this connection",
                                 (unsigned long long) r.unsubscribe.id);
                        sink_socket_client_error(c, PN_ERR_NOT_FOUND, msg);
                        break;
                }
                client_remove_subscription(c, sub);
                reply_unsubscribed(&s->reply, r.unsubscribe.id);
                sink_socket_client_reply(c);
                break;
        }
        case REQUEST_PING:
                reply_pong(&s->reply, dispatcher_last_seq(s->ctx.dispatcher));
                sink_socket_client_reply(c);
                break;
        case REQUEST_STATUS:
                client_status(c);
                break;
        default:
                client_forward(c, &r);
                break;
        }
        request_done(&r);
}

void sink_socket_drop_subscription(SinkSocket *s, SinkOwner owner, uint64_t tag, pid_t pid,
                                   const char *reason) {
        for (Client *c = s->clients; c; c = c->next) {
                if (c->owner != owner)
                        continue;
                client_remove_tagged(c, tag, pid, reason);
                return;
        }
}
