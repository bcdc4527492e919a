/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SinkSocket implementation; see sink-socket.h.
 *
 * An event is formatted at most once (the first time a client wants it) and
 * its line copied into each matching client's queue. Queues are flushed when
 * a source ends a batch (dispatcher_flush), and otherwise (replies, events
 * of sources without batches) by a defer source in the next loop iteration,
 * enabled only while some client has output queued: a burst of a thousand
 * events costs each client one write, not a thousand, a lone event is
 * written at once, and an iteration that queued nothing costs nothing more
 * (a post source would add an iteration after every other one).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "common/clock.h"
#include "common/linux-compat.h"
#include "common/macro.h"
#include "fdreserve.h"
#include "peer-pidfd.h"
#include "protocol/event-json.h"
#include "protocol/reply.h"
#include "protocol/request.h"
#include "sink-socket.h"

#define READ_CHUNK PN_MAX_LINE
#define READS_PER_WAKEUP 16
#define ACCEPTS_PER_WAKEUP 64
/* A client's queue starts small and, once written out, is kept only up to
 * OUT_KEEP_BYTES: a thousand idle clients cost a thousand small buffers, not
 * the high-water mark of their last burst. */
#define OUT_FIRST_BYTES 1024u
#define OUT_KEEP_BYTES (4u << 10)
#define MAX_PEER_GROUPS 256

typedef struct Subscription {
        uint64_t id;
        uint64_t tag;      /* nonzero: added by the broker for a watch (SinkControlReply) */
        Filter *filter;
        int signal;          /* sent to the client per matching event; 0: none */
        bool no_lines;       /* "lines": false: only the signal (and overruns, follow none) */
        Follow *follow;      /* the followed service, for "follow" */
        FollowChange change; /* what the current event did to it, until reported */
} Subscription;

typedef struct Client Client;
struct Client {
        SinkSocket *sink;
        Client *next, *prev;
        Client *dirty_next;
        bool dirty;
        sd_event_source *io;
        int fd;
        PeerCreds creds;
        PeerSignals signals;   /* to the client's process, once a subscription asks for them */
        uint64_t accepted_ns;  /* CLOCK_BOOTTIME at accept, to check a pid against */
        SinkOwner owner;

        char *in;           /* partial line carried between reads */
        size_t in_len;
        bool read_closed;   /* EOF from the peer, or we stopped reading for good */
        bool closing;       /* disconnect once the queue is flushed */

        char *out;
        size_t out_off, out_len, out_cap;

        Subscription *subs;
        size_t n_subs;
        uint64_t next_sub_id;

        SinkLoss loss;      /* dropped and not told yet */

        /* A request the broker has not answered yet: nothing more is read
         * or served from this connection until it is (replies in order);
         * what was read past it waits in in/in_len. */
        ControlSlot *slot;
        bool forwarding;    /* inside ctx.control.request() */
        bool slot_replied;  /* a failed subscription was the reply already */
};

struct SinkSocket {
        sd_event *event;
        sd_event_source *listen_io;
        sd_event_source *accept_retry; /* while accepting is paused for want of descriptors */
        void (*on_fd_shortage)(void *userdata, int error);
        void *on_fd_shortage_userdata;
        sd_event_source *flush; /* defer, ONESHOT while s->dirty is not empty */
        int listen_fd;
        char *unlink_path;
        SinkContext ctx;
        SinkSocketOptions opt;
        SinkSocketStats stats;
        int watch_id;
        uint64_t next_owner;
        Client *clients;
        Client *dirty;
        JsonBuf line;
        JsonBuf reply;
        char *scratch;
};

static void client_free(Client *c);
static void client_update_events(Client *c);
static void sink_socket_accept_resume(SinkSocket *s);

static size_t client_queued(const Client *c) {
        return c->out_len - c->out_off;
}

static void client_mark_dirty(Client *c) {
        if (c->dirty)
                return;
        c->dirty = true;
        c->dirty_next = c->sink->dirty;
        if (!c->sink->dirty)
                (void) sd_event_source_set_enabled(c->sink->flush, SD_EVENT_ONESHOT);
        c->sink->dirty = c;
}

static int client_append(Client *c, const char *data, size_t n) {
        if (c->out_len + n > c->out_cap && c->out_off > 0) {
                memmove(c->out, c->out + c->out_off, client_queued(c));
                c->out_len -= c->out_off;
                c->out_off = 0;
        }
        if (c->out_len + n > c->out_cap) {
                size_t cap = c->out_cap ? c->out_cap : OUT_FIRST_BYTES;
                while (cap < c->out_len + n)
                        cap *= 2;
                char *p = realloc(c->out, cap);
                if (!p)
                        return -ENOMEM;
                c->out = p;
                c->out_cap = cap;
        }
        memcpy(c->out + c->out_len, data, n);
        c->out_len += n;
        client_mark_dirty(c);
        return 0;
}

/* Tell the client how many of its events were dropped, and which. */
static void client_report_lost(Client *c) {
        JsonBuf b = JSONBUF_INIT; /* not the reply buffer: a reply may be in it */
        PnEvent ev;

        sink_loss_overrun(&c->loss, &ev);
        event_json_format(&b, &ev);
        /* Out of memory: keep counting; the report is tried again later. */
        if (!jsonbuf_failed(&b) && client_append(c, b.data, b.len) == 0)
                c->loss = (SinkLoss){ 0 };
        jsonbuf_deinit(&b);
}

/*
 * Queue the reply in s->reply (one complete line). A loss not yet told is told
 * first, even with the queue still full: it happened before this reply, so
 * a client that has its "pong" has every loss before its "ping" reported.
 */
static void client_send_reply(Client *c) {
        SinkSocket *s = c->sink;
        if (c->loss.lost > 0)
                client_report_lost(c);
        if (!jsonbuf_failed(&s->reply))
                (void) client_append(c, s->reply.data, s->reply.len);
        jsonbuf_reset(&s->reply);
}

static void client_send_error(Client *c, const char *code, const char *message) {
        reply_error(&c->sink->reply, code, message);
        client_send_reply(c);
}

/* ev is not delivered to c: count it for c's next overrun report. */
static void client_drop_event(Client *c, const PnEvent *ev) {
        sink_loss_add(&c->loss, 1, ev->seq, ev->seq);
        c->sink->stats.events_lost++;
}

/*
 * Run ev through every subscription of c: advance their follows (whether
 * or not c may see ev: a follow must see every fork and exit of its
 * service), and tell whether one matches, which signals the matching ones
 * ask for (bit N-1 for signal N), and whether a follow changed.
 */
static bool client_match(Client *c, const PnEvent *ev, bool visible, const FilterContext *fctx,
                         uint64_t *sigmask, bool *follow_changed) {
        bool matched = false;

        for (size_t i = 0; i < c->n_subs; i++) {
                Subscription *sub = &c->subs[i];
                bool member = true;

                if (sub->follow) {
                        member = follow_update(sub->follow, ev, &sub->change);
                        *follow_changed |= sub->change.kind != FOLLOW_CHANGE_NONE;
                }
                if (!visible || (matched && !sub->signal))
                        continue;
                if ((!member && ev->type != PN_EVENT_OVERRUN) || !filter_match(sub->filter, ev, fctx))
                        continue;
                /* A signal-only subscription still gets the overruns: they
                 * tell of signals that could not be sent. */
                if (!sub->no_lines || ev->type == PN_EVENT_OVERRUN)
                        matched = true;
                /* Overruns pass every filter, but signal no event. */
                if (sub->signal && ev->type != PN_EVENT_OVERRUN)
                        *sigmask |= UINT64_C(1) << (sub->signal - 1);
        }
        return matched;
}

/* Queue a "follow" report for every follow the current event changed. */
static void client_report_follows(Client *c, const PnEvent *ev, bool visible) {
        for (size_t i = 0; i < c->n_subs; i++) {
                Subscription *sub = &c->subs[i];
                FollowChange *ch = &sub->change;
                if (ch->kind == FOLLOW_CHANGE_NONE)
                        continue;
                /* Told only along with an event the client may see, and to
                 * a subscription that takes lines. */
                if (visible && !sub->no_lines) {
                        FollowReport r;
                        sink_context_follow_report(&r, sub->id, ch, ev);
                        reply_follow(&c->sink->reply, &r);
                        client_send_reply(c);
                }
                ch->kind = FOLLOW_CHANGE_NONE;
        }
}

static void client_queue_event(Client *c, const char *line, size_t len, const PnEvent *ev) {
        uint64_t cap = c->sink->opt.queue_bytes;
        size_t queued = client_queued(c);

        /* Once over the limit, wait until half the queue drained before
         * taking events again, so that a slow reader gets one overrun report
         * per episode and not one per event. */
        if (c->loss.lost > 0 && queued <= cap / 2) {
                client_report_lost(c);
                queued = client_queued(c);
        }
        /* Kernel overruns always get through: they are rare (the broker
         * coalesces them) and they are the one thing a client must not miss.
         * The client's own loss so far is reported first: it happened before
         * this seq, and a report after it would leave a gap unexplained. */
        if (ev->type == PN_EVENT_OVERRUN) {
                if (c->loss.lost > 0)
                        client_report_lost(c);
        } else if (c->loss.lost > 0 || queued + len > cap) {
                client_drop_event(c, ev);
                return;
        }
        if (client_append(c, line, len) == 0)
                c->sink->stats.events_queued++;
        else
                client_drop_event(c, ev); /* out of memory: lost, but not silently */
}

/* Queue ev for c; the line is formatted once per event for all clients. */
static void client_queue_matched(Client *c, const PnEvent *ev, bool *formatted) {
        SinkSocket *s = c->sink;

        if (!*formatted) {
                jsonbuf_reset(&s->line);
                event_json_format(&s->line, ev);
                *formatted = true;
        }
        if (jsonbuf_failed(&s->line))
                client_drop_event(c, ev); /* out of memory formatting it */
        else
                client_queue_event(c, s->line.data, s->line.len, ev);
}

/* The signals c asked for, as far as it could send them itself; told once
 * when one is withheld (whether or not its subscriptions take lines). */
static void client_send_signals(Client *c, uint64_t sigmask, const PnEvent *ev) {
        SinkSocket *s = c->sink;
        PeerSignalCounts n = { &s->stats.signals_sent, &s->stats.signals_failed,
                               &s->stats.signals_withheld };
        int sig = peer_signals_send(&c->signals, sigmask, ev->tgid, &n);

        if (sig > 0) {
                reply_signal_withheld(&s->reply, sig, c->creds.pid, ev->seq, ev->ts_ns, ev->time_ns);
                client_send_reply(c);
        }
}

static void sink_socket_on_event(const PnEvent *ev, void *userdata) {
        SinkSocket *s = userdata;
        bool formatted = false;

        for (Client *c = s->clients; c; c = c->next) {
                uint64_t sigmask = 0;
                bool follow_changed = false;

                if (c->n_subs == 0 || c->closing)
                        continue;
                bool visible = policy_may_see(&c->creds, ev);
                bool matched = client_match(c, ev, visible, &s->ctx.filter, &sigmask, &follow_changed);
                /* The signal first, so that the subscriber can act before it reads the line. */
                if (sigmask)
                        client_send_signals(c, sigmask, ev);
                if (matched)
                        client_queue_matched(c, ev, &formatted);
                if (follow_changed)
                        client_report_follows(c, ev, visible);
        }
}

/* Write what is queued. Returns false if the client was freed. */
static bool client_flush(Client *c) {
        for (;;) {
                while (client_queued(c) > 0) {
                        ssize_t n = send(c->fd, c->out + c->out_off, client_queued(c),
                                         MSG_DONTWAIT | MSG_NOSIGNAL);
                        if (n < 0) {
                                if (errno == EINTR)
                                        continue;
                                if (errno == EAGAIN)
                                        break;
                                client_free(c); /* EPIPE, ECONNRESET: gone */
                                return false;
                        }
                        c->out_off += (size_t) n;
                }
                if (client_queued(c) > 0)
                        break;
                c->out_off = c->out_len = 0;
                if (c->out_cap > OUT_KEEP_BYTES) {
                        /* Give memory back after a burst. */
                        free(c->out);
                        c->out = NULL;
                        c->out_cap = 0;
                }
                if (c->loss.lost == 0 || c->closing)
                        break;
                client_report_lost(c);
                if (c->loss.lost > 0)
                        break; /* out of memory: report with the next event */
        }
        if (c->closing) {
                /* Best effort: the error that made us close was flushed or
                 * sits in the socket buffer; a peer that does not read loses it. */
                client_free(c);
                return false;
        }
        client_update_events(c);
        return true;
}

/* Write out every client with queued output. */
static void sink_socket_flush(void *userdata) {
        SinkSocket *s = userdata;
        while (s->dirty) {
                Client *c = s->dirty;
                s->dirty = c->dirty_next;
                c->dirty = false;
                c->dirty_next = NULL;
                client_flush(c);
        }
        (void) sd_event_source_set_enabled(s->flush, SD_EVENT_OFF);
}

/* The iteration after one that queued something outside a batch (replies, hello). */
static int sink_socket_on_flush(sd_event_source *src, void *userdata) {
        (void) src;
        sink_socket_flush(userdata);
        return 0;
}

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
                .sees_all = c->creds.privileged,
        };

        jsonbuf_begin_object(b);
        jsonbuf_field_str(b, "type", "status");
        s->ctx.visit_stats(s->ctx.userdata, &v);
        jsonbuf_end_object(b);
        jsonbuf_append_char(b, '\n');
        client_send_reply(c);
}

void sink_socket_visit_stats(SinkSocket *s, const StatsVisitor *v) {
        stats_section_begin(v, "socket");
        stats_uint(v, "clients", s->stats.clients);
        stats_uint(v, "subscriptions", s->stats.subscriptions);
        stats_uint(v, "accepted", s->stats.accepted);
        stats_uint(v, "refused", s->stats.refused);
        stats_uint(v, "events_queued", s->stats.events_queued);
        stats_uint(v, "events_lost", s->stats.events_lost);
        stats_uint(v, "bad_requests", s->stats.bad_requests);
        stats_uint(v, "signals_sent", s->stats.signals_sent);
        stats_uint(v, "signals_failed", s->stats.signals_failed);
        stats_uint(v, "signals_withheld", s->stats.signals_withheld);
        stats_uint(v, "accept_paused", s->stats.accept_paused);
        stats_section_end(v);
}

/* Room for one more subscription on this connection and for its user? */
static bool client_can_subscribe(const Client *c) {
        return c->n_subs < c->sink->opt.max_subscriptions &&
               uidlimits_may_acquire(c->sink->ctx.limits, UID_RESOURCE_SUBSCRIPTIONS, c->creds.uid);
}

static int client_add_subscription(Client *c, Filter *filter, uint64_t tag) {
        SinkSocket *s = c->sink;
        Subscription *subs;
        char msg[128];
        int r;

        if (c->n_subs >= s->opt.max_subscriptions) {
                snprintf(msg, sizeof(msg), "at most %u subscriptions per connection (MaxSubscriptions)",
                         s->opt.max_subscriptions);
                client_send_error(c, PN_ERR_LIMIT_EXCEEDED, msg);
                return -ENOSPC;
        }
        subs = realloc(c->subs, (c->n_subs + 1) * sizeof(*subs));
        if (!subs) {
                client_send_error(c, PN_ERR_INTERNAL, "out of memory");
                return -ENOMEM;
        }
        c->subs = subs;
        r = uidlimits_acquire(s->ctx.limits, UID_RESOURCE_SUBSCRIPTIONS, c->creds.uid);
        if (r == UIDLIMITS_E_EXCEEDED) {
                snprintf(msg, sizeof(msg),
                         "at most %u subscriptions per user, on all connections (MaxSubscriptionsPerUser)",
                         uidlimits_get_max(s->ctx.limits, UID_RESOURCE_SUBSCRIPTIONS));
                client_send_error(c, PN_ERR_LIMIT_EXCEEDED, msg);
                return -ENOSPC;
        }
        if (r < 0) {
                client_send_error(c, PN_ERR_INTERNAL, "out of memory");
                return r;
        }
        c->subs[c->n_subs++] = (Subscription){ .id = ++c->next_sub_id, .tag = tag, .filter = filter };
        s->stats.subscriptions++;
        return 0;
}

static void client_remove_subscription(Client *c, size_t i) {
        filter_free(c->subs[i].filter);
        follow_free(c->subs[i].follow);
        uidlimits_release(c->sink->ctx.limits, UID_RESOURCE_SUBSCRIPTIONS, c->creds.uid);
        c->subs[i] = c->subs[--c->n_subs];
        c->sink->stats.subscriptions--;
}

/* --- ops the broker serves (watch, run, …), through a ControlSlot --- */

static void client_consume(Client *c, const char *data, size_t n);

static int client_slot_subscribe(void *userdata, Filter *f, uint64_t tag, uint64_t *ret_id) {
        Client *c = userdata;
        int r = client_add_subscription(c, f, tag);
        if (r < 0) {
                /* It sent its error: that is the request's reply. */
                filter_free(f);
                c->slot_replied = true;
                return r == -ENOSPC ? -EDQUOT : r;
        }
        *ret_id = c->next_sub_id;
        return 0;
}

static void client_slot_unsubscribe(void *userdata, uint64_t tag) {
        Client *c = userdata;
        for (size_t i = c->n_subs; i-- > 0;)
                if (c->subs[i].tag == tag)
                        client_remove_subscription(c, i);
}

static void client_slot_complete(void *userdata, const ControlResult *r) {
        Client *c = userdata;
        SinkSocket *s = c->sink;

        if (!c->slot_replied) {
                reply_control(&s->reply, r);
                client_send_reply(c);
        }
        c->slot_replied = false;
        if (c->forwarding)
                return; /* answered at once: client_forward() goes on */
        /* Answered later: serve what was read meanwhile, then read on. */
        c->slot = control_slot_unref(c->slot);
        _cleanup_free_ char *rest = TAKE_PTR(c->in);
        size_t n = c->in_len;
        c->in_len = 0;
        client_consume(c, rest, n);
        client_update_events(c);
        client_flush(c);
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
                client_send_error(c, PN_ERR_UNKNOWN_OP, "op not served on this socket");
                return;
        }
        k = control_slot_new(&c->slot, &ops, c, client_can_subscribe(c));
        if (k < 0) {
                client_send_error(c, PN_ERR_INTERNAL, "out of memory");
                return;
        }
        c->forwarding = true;
        s->ctx.control.request(s->ctx.userdata, &c->creds, c->owner, r, c->slot);
        c->forwarding = false;
        if (control_slot_is_done(c->slot))
                c->slot = control_slot_unref(c->slot);
}

/* subscribe: the filter, and what this sink keeps besides for it: the
 * follow of a service ("follow"), the subscriber's pidfd ("signal"). */
static void client_subscribe(Client *c, Request *r) {
        SinkSocket *s = c->sink;
        Follow *follow = NULL;
        pid_t follow_pid = filter_get_follow(r->subscribe.filter);
        const char *code;
        char msg[160];
        int k;

        if (c->n_subs >= s->opt.max_subscriptions) {
                snprintf(msg, sizeof(msg), "at most %u subscriptions per connection",
                         s->opt.max_subscriptions);
                client_send_error(c, PN_ERR_LIMIT_EXCEEDED, msg);
                return;
        }
        code = sink_context_resolve_netns(r->subscribe.filter, msg, sizeof(msg));
        if (code) {
                client_send_error(c, code, msg);
                return;
        }
        if (follow_pid > 0) {
                size_t n_follows = 0;
                for (size_t i = 0; i < c->n_subs; i++)
                        n_follows += c->subs[i].follow != NULL;
                code = sink_context_follow_new(&s->ctx, &c->creds, follow_pid, n_follows, &follow, msg,
                                               sizeof(msg));
                if (code) {
                        client_send_error(c, code, msg);
                        return;
                }
        }
        if (r->subscribe.signal && c->signals.pidfd < 0) {
                k = peer_pidfd_open_socket(c->fd, c->creds.pid, c->accepted_ns);
                if (fdreserve_refuses(k, c->creds.uid)) {
                        safe_close(k);
                        follow_free(follow);
                        client_send_error(c, PN_ERR_LIMIT_EXCEEDED, "\"signal\": the broker is short of "
                                          "file descriptors (the last ones are kept for root)");
                        return;
                }
                if (k >= 0)
                        k = peer_signals_set(&c->signals, k, c->creds.uid);
                if (k == -EPERM) {
                        follow_free(follow);
                        client_send_error(c, PN_ERR_ACCESS_DENIED,
                                          "\"signal\": this connection's process no longer runs as the "
                                          "user that connected");
                        return;
                }
                if (k < 0) {
                        follow_free(follow);
                        snprintf(msg, sizeof(msg), "\"signal\": cannot get a pidfd of this connection's "
                                 "process (%s); no signal is sent to a bare pid", strerror(-k));
                        client_send_error(c, PN_ERR_ACCESS_DENIED, msg);
                        return;
                }
        }
        if (client_add_subscription(c, r->subscribe.filter, 0) < 0) {
                follow_free(follow);
                return;
        }
        r->subscribe.filter = NULL;
        c->subs[c->n_subs - 1].signal = r->subscribe.signal;
        c->subs[c->n_subs - 1].no_lines = r->subscribe.no_lines;
        c->subs[c->n_subs - 1].follow = follow;
        reply_subscribed(&s->reply, c->next_sub_id);
        client_send_reply(c);
}

static void client_handle_line(Client *c, const char *line, size_t len) {
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
                client_send_error(c, PN_ERR_INTERNAL, "out of memory");
                return;
        }
        if (k < 0) {
                s->stats.bad_requests++;
                client_send_error(c, err.code, err.message);
                return;
        }
        switch (r.op) {
        case REQUEST_SUBSCRIBE:
                client_subscribe(c, &r);
                break;
        case REQUEST_UNSUBSCRIBE: {
                size_t i;
                for (i = 0; i < c->n_subs; i++)
                        if (c->subs[i].id == r.unsubscribe.id)
                                break;
                if (i == c->n_subs) {
                        char msg[96];
                        snprintf(msg, sizeof(msg), "no subscription %llu on this connection",
                                 (unsigned long long) r.unsubscribe.id);
                        client_send_error(c, PN_ERR_NOT_FOUND, msg);
                        break;
                }
                client_remove_subscription(c, i);
                reply_unsubscribed(&s->reply, r.unsubscribe.id);
                client_send_reply(c);
                break;
        }
        case REQUEST_PING:
                reply_pong(&s->reply, dispatcher_last_seq(s->ctx.dispatcher));
                client_send_reply(c);
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

static void client_line_too_long(Client *c) {
        char msg[96];
        snprintf(msg, sizeof(msg), "line longer than %d bytes; closing the connection",
                 PN_MAX_LINE - 1);
        c->sink->stats.bad_requests++;
        client_send_error(c, PN_ERR_LINE_TOO_LONG, msg);
        c->closing = true;
        c->read_closed = true;
        free(c->in);
        c->in = NULL;
        c->in_len = 0;
}

/* Split data into lines; keep a trailing partial line, or everything
 * after a line the broker has not answered yet (c->slot). */
static void client_consume(Client *c, const char *data, size_t n) {
        while (n > 0 && !c->closing) {
                if (c->slot) {
                        char *p = realloc(c->in, c->in_len + n + 1);
                        if (!p) {
                                c->closing = true;
                                return;
                        }
                        c->in = p;
                        memcpy(c->in + c->in_len, data, n);
                        c->in_len += n;
                        return;
                }
                const char *nl = memchr(data, '\n', n);
                size_t take = nl ? (size_t) (nl - data) : n;

                if (c->in_len + take >= PN_MAX_LINE) {
                        client_line_too_long(c);
                        return;
                }
                if (nl && c->in_len == 0) {
                        client_handle_line(c, data, take); /* the common case: no copy */
                } else {
                        char *p = realloc(c->in, c->in_len + take + 1);
                        if (!p) {
                                client_send_error(c, PN_ERR_INTERNAL, "out of memory");
                                c->closing = true;
                                return;
                        }
                        c->in = p;
                        memcpy(c->in + c->in_len, data, take);
                        c->in_len += take;
                        if (nl) {
                                client_handle_line(c, c->in, c->in_len);
                                free(c->in);
                                c->in = NULL;
                                c->in_len = 0;
                        }
                }
                if (!nl)
                        return;
                data = nl + 1;
                n -= take + 1;
        }
}

static void client_read(Client *c) {
        SinkSocket *s = c->sink;

        for (int i = 0; i < READS_PER_WAKEUP && !c->read_closed && !c->slot; i++) {
                /* Back-pressure: a client that does not read its replies is
                 * not read from until it does. */
                if (client_queued(c) > s->opt.queue_bytes)
                        break;
                ssize_t n = recv(c->fd, s->scratch, READ_CHUNK, MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                c->read_closed = c->closing = true;
                        break;
                }
                if (n == 0) {
                        /* EOF: a last line without newline still counts. The
                         * peer may only have shut down its writing side, so
                         * keep sending it events. */
                        if (c->in_len > 0) {
                                client_handle_line(c, c->in, c->in_len);
                                free(c->in);
                                c->in = NULL;
                                c->in_len = 0;
                        }
                        c->read_closed = true;
                        break;
                }
                client_consume(c, s->scratch, (size_t) n);
        }
}

static int client_on_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Client *c = userdata;
        (void) src;
        (void) fd;

        if (c->slot && (revents & (EPOLLHUP | EPOLLERR))) {
                client_free(c); /* gone while waiting for its answer */
                return 0;
        }
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                if (!c->read_closed)
                        client_read(c);
                /* Both directions closed: nothing left to deliver. */
                if ((revents & (EPOLLHUP | EPOLLERR)) && (c->read_closed || (revents & EPOLLERR))) {
                        client_free(c);
                        return 0;
                }
        }
        client_flush(c);
        return 0;
}

static void client_update_events(Client *c) {
        uint32_t events = 0;
        if (!c->read_closed && !c->slot && client_queued(c) <= c->sink->opt.queue_bytes)
                events |= EPOLLIN;
        if (client_queued(c) > 0)
                events |= EPOLLOUT;
        (void) sd_event_source_set_io_events(c->io, events);
}

static void client_free(Client *c) {
        SinkSocket *s;

        if (!c)
                return;
        s = c->sink;
        if (c->dirty) {
                for (Client **p = &s->dirty; *p; p = &(*p)->dirty_next)
                        if (*p == c) {
                                *p = c->dirty_next;
                                break;
                        }
        }
        if (c->prev)
                c->prev->next = c->next;
        else
                s->clients = c->next;
        if (c->next)
                c->next->prev = c->prev;
        control_slot_cancel(c->slot);
        c->slot = control_slot_unref(c->slot);
        if (s->ctx.control.release)
                s->ctx.control.release(s->ctx.userdata, c->owner);
        s->stats.clients--;
        s->stats.subscriptions -= c->n_subs;
        for (size_t i = 0; i < c->n_subs; i++) {
                filter_free(c->subs[i].filter);
                follow_free(c->subs[i].follow);
                uidlimits_release(s->ctx.limits, UID_RESOURCE_SUBSCRIPTIONS, c->creds.uid);
        }
        uidlimits_release(s->ctx.limits, UID_RESOURCE_CLIENTS, c->creds.uid);
        free(c->subs);
        peer_signals_done(&c->signals);
        sd_event_source_disable_unref(c->io);
        safe_close(c->fd);
        sink_socket_accept_resume(s); /* a descriptor is free again */
        free(c->in);
        free(c->out);
        free(c);
}

static void refuse(SinkSocket *s, int fd, const char *message) {
        JsonBuf b = JSONBUF_INIT;
        reply_error(&b, PN_ERR_LIMIT_EXCEEDED, message);
        if (!jsonbuf_failed(&b))
                (void) send(fd, b.data, b.len, MSG_DONTWAIT | MSG_NOSIGNAL);
        jsonbuf_deinit(&b);
        close(fd);
        s->stats.refused++;
}

static void sink_socket_accept_one(SinkSocket *s, int fd) {
        struct ucred cred;
        socklen_t len = sizeof(cred);
        gid_t groups[MAX_PEER_GROUPS];
        socklen_t glen = sizeof(groups);
        _cleanup_(sd_event_source_unrefp) sd_event_source *io = NULL;

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
                close(fd);
                return;
        }
        /* More groups than we look at: the peer is judged by the first ones;
         * membership is also checked against its primary group. */
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) < 0)
                glen = 0;

        if (s->stats.clients >= s->opt.max_clients) {
                refuse(s, fd, "the broker serves no more clients (MaxClients)");
                return;
        }
        if (fdreserve_refuses(fd, cred.uid)) {
                refuse(s, fd, "the broker is short of file descriptors (the last ones are kept for root)");
                return;
        }
        /* Counted with the user's subscribing D-Bus connections. */
        if (!uidlimits_may_acquire(s->ctx.limits, UID_RESOURCE_CLIENTS, cred.uid)) {
                refuse(s, fd, "too many connections for this user (MaxClientsPerUser)");
                return;
        }

        Client *c = calloc(1, sizeof(*c));
        if (!c || uidlimits_acquire(s->ctx.limits, UID_RESOURCE_CLIENTS, cred.uid) != 0) {
                free(c);
                close(fd);
                return;
        }
        c->sink = s;
        c->fd = fd;
        c->signals = PEER_SIGNALS_INIT;
        c->accepted_ns = peer_boottime_now();
        c->owner = SINK_OWNER_SOCKET | ++s->next_owner;
        policy_peer_init(s->ctx.policy, &c->creds, cred.uid, cred.gid, cred.pid, groups,
                         glen / sizeof(gid_t));
        if (sd_event_add_io(s->event, &io, fd, EPOLLIN, client_on_io, c) < 0) {
                uidlimits_release(s->ctx.limits, UID_RESOURCE_CLIENTS, cred.uid);
                close(fd);
                free(c);
                return;
        }
        (void) sd_event_source_set_description(io, "socket-client");
        c->io = TAKE_PTR(io);
        c->next = s->clients;
        if (s->clients)
                s->clients->prev = c;
        s->clients = c;
        s->stats.clients++;
        s->stats.accepted++;

        HelloInfo hello = {
                .version = s->ctx.version,
                .boot_id = s->ctx.boot_id,
                .instance_id = s->ctx.instance_id,
                .seq = dispatcher_last_seq(s->ctx.dispatcher),
                .uid = cred.uid,
                .pid = cred.pid,
                .sees_all = c->creds.privileged,
        };
        reply_hello(&s->reply, &hello);
        client_send_reply(c);
}

/* Accepting again: a descriptor was freed, or it is time to try. */
static void sink_socket_accept_resume(SinkSocket *s) {
        if (!s->accept_retry)
                return;
        s->accept_retry = sd_event_source_disable_unref(s->accept_retry);
        (void) sd_event_source_set_enabled(s->listen_io, SD_EVENT_ON);
}

static int sink_socket_on_accept_retry(sd_event_source *src, uint64_t usec, void *userdata) {
        (void) src;
        (void) usec;
        sink_socket_accept_resume(userdata);
        return 0;
}

/* Out of descriptors: the pending connection stays in the backlog, and the
 * level-triggered listening socket would wake the loop at once, forever.
 * Stop listening until a client goes or a timer fires instead. */
static void sink_socket_accept_pause(SinkSocket *s, int error) {
        _cleanup_(sd_event_source_unrefp) sd_event_source *t = NULL;

        if (s->accept_retry)
                return;
        if (sd_event_add_time_relative(s->event, &t, CLOCK_MONOTONIC, SINK_SOCKET_ACCEPT_RETRY_MS * 1000ULL,
                                       0, sink_socket_on_accept_retry, s) < 0)
                return; /* no timer (no memory): keep polling rather than never accept again */
        (void) sd_event_source_set_description(t, "socket-accept-retry");
        (void) sd_event_source_set_enabled(s->listen_io, SD_EVENT_OFF);
        s->accept_retry = TAKE_PTR(t);
        s->stats.accept_paused++;
        if (s->on_fd_shortage)
                s->on_fd_shortage(s->on_fd_shortage_userdata, error);
}

static int sink_socket_on_accept(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        SinkSocket *s = userdata;
        (void) src;
        (void) revents;
        for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
                int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        if (errno == EMFILE || errno == ENFILE)
                                sink_socket_accept_pause(s, -errno);
                        break; /* EAGAIN */
                }
                sink_socket_accept_one(s, cfd);
        }
        return 0;
}

void sink_socket_set_on_fd_shortage(SinkSocket *s, void (*fn)(void *userdata, int error), void *userdata) {
        s->on_fd_shortage = fn;
        s->on_fd_shortage_userdata = userdata;
}

/* The socket's directory must be one only we can change: an entry another
 * user could rename or replace (a symlink swapped in between two calls on
 * the path) is refused. -EPERM when it is not. */
static int check_directory(const char *dir) {
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;

        if (dfd < 0)
                return -errno;
        if (fstat(dfd, &st) < 0)
                return -errno;
        if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
                return -EPERM;
        return 0;
}

static int bind_path(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *dir = NULL;
        mode_t old_umask;
        int r;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);

        dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        /* 0755 whatever the umask (the unit's is 0077): clients must reach
         * the socket. The broker is single-threaded, so the umask is its own. */
        const char *parent = dirname(dir);
        old_umask = umask(0022);
        r = mkdir(parent, 0755) < 0 && errno != EEXIST ? -errno : 0;
        umask(old_umask);
        if (r < 0)
                return r;
        r = check_directory(parent);
        if (r < 0)
                return r;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* A socket file left by a dead broker is removed; a live one is not,
         * and nothing that is not a socket ever is. */
        struct stat st;
        if (lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode))
                        return -EEXIST;
                if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0)
                        return -EADDRINUSE;
                if (errno == ECONNREFUSED)
                        (void) unlink(path);
        }
        safe_close(fd);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* Anyone may connect: the policy, not the file mode, decides what
         * each one sees. bind() creates the file with its final mode 0666
         * (the socket's 0777 less this umask), so no chmod() follows the
         * path again after it: bind() itself never follows a symlink there. */
        old_umask = umask(0111);
        r = bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ? -errno : 0;
        umask(old_umask);
        if (r < 0)
                return r;
        if (listen(fd, SOMAXCONN) < 0) {
                r = -errno;
                unlink(path);
                return r;
        }
        return TAKE_FD(fd);
}

int sink_socket_new(SinkSocket **ret, sd_event *e, const SinkContext *ctx,
                    const SinkSocketOptions *o, const char *path, int listen_fd) {
        _cleanup_(sd_event_source_unrefp) sd_event_source *lio = NULL;
        SinkSocket *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(e);
        s->ctx = *ctx;
        s->opt = *o;
        s->listen_fd = -1;
        s->scratch = malloc(READ_CHUNK);
        if (!s->scratch) {
                r = -ENOMEM;
                goto fail;
        }
        if (listen_fd >= 0) {
                s->listen_fd = listen_fd;
                (void) fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
        } else {
                r = bind_path(path);
                if (r < 0)
                        goto fail;
                s->listen_fd = r;
                s->unlink_path = strdup(path);
        }
        r = sd_event_add_io(e, &lio, s->listen_fd, EPOLLIN, sink_socket_on_accept, s);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_description(lio, "socket-listen");
        r = sd_event_add_defer(e, &s->flush, sink_socket_on_flush, s);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_description(s->flush, "socket-flush");
        (void) sd_event_source_set_enabled(s->flush, SD_EVENT_OFF);
        r = dispatcher_watch_add(ctx->dispatcher, sink_socket_on_event, sink_socket_flush, s);
        if (r < 0)
                goto fail;
        s->watch_id = r;
        s->listen_io = TAKE_PTR(lio);
        *ret = s;
        return 0;
fail:
        sink_socket_free(s);
        return r;
}

SinkSocket *sink_socket_free(SinkSocket *s) {
        if (!s)
                return NULL;
        while (s->clients)
                client_free(s->clients);
        if (s->watch_id > 0)
                dispatcher_watch_remove(s->ctx.dispatcher, s->watch_id);
        sd_event_source_disable_unref(s->listen_io);
        sd_event_source_disable_unref(s->accept_retry);
        sd_event_source_disable_unref(s->flush);
        safe_close(s->listen_fd);
        if (s->unlink_path)
                (void) unlink(s->unlink_path);
        free(s->unlink_path);
        jsonbuf_deinit(&s->line);
        jsonbuf_deinit(&s->reply);
        free(s->scratch);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

void sink_socket_drop_subscription(SinkSocket *s, SinkOwner owner, uint64_t tag, pid_t pid,
                                   const char *reason) {
        for (Client *c = s->clients; c; c = c->next) {
                if (c->owner != owner)
                        continue;
                for (size_t i = c->n_subs; i-- > 0;) {
                        if (c->subs[i].tag != tag)
                                continue;
                        if (reason) {
                                reply_watch_ended(&s->reply, c->subs[i].id, pid, reason,
                                                  clock_ns(CLOCK_MONOTONIC), clock_ns(CLOCK_REALTIME));
                                client_send_reply(c);
                        }
                        client_remove_subscription(c, i);
                }
                return;
        }
}

void sink_socket_set_options(SinkSocket *s, const SinkSocketOptions *o) {
        s->opt = *o;
}

const SinkSocketStats *sink_socket_get_stats(SinkSocket *s) {
        return &s->stats;
}
