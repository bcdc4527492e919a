/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SinkSocket's client connections, a framer: read a client's lines (served
 * by sink-socket-requests.c), format events as lines, queue and write bytes.
 * Which client gets what (and what it lost) the SubscriberSet decides
 * (subscriber-set.h), calling the ops at the end of this file's first half.
 * The listening socket and acceptance are sink-socket.c's.
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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/macro.h"
#include "peer-pidfd.h"
#include "protocol/event-json.h"
#include "protocol/reply.h"
#include "protocol/request.h"
#include "sink-socket-internal.h"
#include "subscriber-set.h"

#define READS_PER_WAKEUP 16
/* A client's queue starts small and, once written out, is kept only up to
 * OUT_KEEP_BYTES: a thousand idle clients cost a thousand small buffers, not
 * the high-water mark of their last burst. */
#define OUT_FIRST_BYTES 1024u
#define OUT_KEEP_BYTES (4u << 10)

static void client_update_events(Client *c);


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

        subscriber_loss_report(&c->sub, &ev);
        event_json_format(&b, &ev);
        /* Out of memory: keep counting; the report is tried again later. */
        if (!jsonbuf_failed(&b) && client_append(c, b.data, b.len) == 0)
                subscriber_loss_told(&c->sub);
        jsonbuf_deinit(&b);
}

/*
 * Queue the reply in s->reply (one complete line). A loss not yet told is told
 * first, even with the queue still full: it happened before this reply, so
 * a client that has its "pong" has every loss before its "ping" reported.
 */
void sink_socket_client_reply(Client *c) {
        SinkSocket *s = c->sink;
        if (subscriber_loss_due_before_reply(&c->sub))
                client_report_lost(c);
        if (!jsonbuf_failed(&s->reply))
                (void) client_append(c, s->reply.data, s->reply.len);
        jsonbuf_reset(&s->reply);
}

void sink_socket_client_error(Client *c, const char *code, const char *message) {
        reply_error(&c->sink->reply, code, message);
        sink_socket_client_reply(c);
}

/* --- the framer the SubscriberSet drives (subscriber-set.h) --- */

static Client *client_of(Subscriber *sub) {
        return (Client *) ((char *) sub - offsetof(Client, sub));
}

static uint64_t client_op_queued(Subscriber *sub) {
        return client_queued(client_of(sub));
}

/* The line is formatted once per event (ev->seq) for all clients. */
static int client_op_prepare(Subscriber *sub, const PnEvent *ev, uint64_t *ret_bytes) {
        SinkSocket *s = client_of(sub)->sink;

        if (s->line_seq != ev->seq) {
                jsonbuf_reset(&s->line);
                event_json_format(&s->line, ev);
                s->line_seq = ev->seq;
        }
        if (jsonbuf_failed(&s->line))
                return -ENOMEM;
        *ret_bytes = s->line.len;
        return 0;
}

static int client_op_deliver(Subscriber *sub, const PnEvent *ev) {
        Client *c = client_of(sub);
        int r;

        (void) ev;
        r = client_append(c, c->sink->line.data, c->sink->line.len);
        if (r < 0)
                return r;
        c->sink->stats.events_queued++;
        return 0;
}

static void client_op_report_loss(Subscriber *sub) {
        client_report_lost(client_of(sub));
}

static void client_op_report_withheld(Subscriber *sub, int sig, const PnEvent *ev) {
        Client *c = client_of(sub);

        reply_signal_withheld(&c->sink->reply, sig, sub->creds.pid, ev->seq, ev->ts_ns, ev->time_ns);
        sink_socket_client_reply(c);
}

static void client_op_report_follow(Subscriber *sub, Subscription *subscription, const PnEvent *ev,
                                    const FollowReport *r) {
        Client *c = client_of(sub);

        (void) subscription;
        (void) ev;
        reply_follow(&c->sink->reply, r);
        sink_socket_client_reply(c);
}

const SubscriberSinkOps sink_socket_client_ops = {
        .queued = client_op_queued,
        .prepare = client_op_prepare,
        .deliver = client_op_deliver,
        .report_loss = client_op_report_loss,
        .report_withheld = client_op_report_withheld,
        .report_follow = client_op_report_follow,
};

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
                                sink_socket_client_free(c); /* EPIPE, ECONNRESET: gone */
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
                if (!subscriber_loss_due_before_reply(&c->sub) || c->closing)
                        break;
                client_report_lost(c);
                if (subscriber_loss_due_before_reply(&c->sub))
                        break; /* out of memory: report with the next event */
        }
        if (c->closing) {
                /* Best effort: the error that made us close was flushed or
                 * sits in the socket buffer; a peer that does not read loses it. */
                sink_socket_client_free(c);
                return false;
        }
        client_update_events(c);
        return true;
}

/* Write out every client with queued output. */
void sink_socket_flush(void *userdata) {
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
int sink_socket_on_flush(sd_event_source *src, void *userdata) {
        (void) src;
        sink_socket_flush(userdata);
        return 0;
}

static void client_line_too_long(Client *c) {
        char msg[96];
        snprintf(msg, sizeof(msg), "line longer than %d bytes; closing the connection",
                 PN_MAX_LINE - 1);
        c->sink->stats.bad_requests++;
        sink_socket_client_error(c, PN_ERR_LINE_TOO_LONG, msg);
        sink_socket_client_close(c);
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
                                sink_socket_client_close(c);
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
                        sink_socket_client_handle_line(c, data, take); /* the common case: no copy */
                } else {
                        char *p = realloc(c->in, c->in_len + take + 1);
                        if (!p) {
                                sink_socket_client_error(c, PN_ERR_INTERNAL, "out of memory");
                                sink_socket_client_close(c);
                                return;
                        }
                        c->in = p;
                        memcpy(c->in + c->in_len, data, take);
                        c->in_len += take;
                        if (nl) {
                                sink_socket_client_handle_line(c, c->in, c->in_len);
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
                ssize_t n = recv(c->fd, s->scratch, SINK_SOCKET_READ_CHUNK, MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN) {
                                c->read_closed = true;
                                sink_socket_client_close(c);
                        }
                        break;
                }
                if (n == 0) {
                        /* EOF: a last line without newline still counts. The
                         * peer may only have shut down its writing side, so
                         * keep sending it events. */
                        if (c->in_len > 0) {
                                sink_socket_client_handle_line(c, c->in, c->in_len);
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
                sink_socket_client_free(c); /* gone while waiting for its answer */
                return 0;
        }
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                if (!c->read_closed)
                        client_read(c);
                /* Both directions closed: nothing left to deliver. */
                if ((revents & (EPOLLHUP | EPOLLERR)) && (c->read_closed || (revents & EPOLLERR))) {
                        sink_socket_client_free(c);
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

void sink_socket_client_resume(Client *c) {
        _cleanup_free_ char *rest = TAKE_PTR(c->in);
        size_t n = c->in_len;

        c->in_len = 0;
        client_consume(c, rest, n);
        client_update_events(c);
        (void) client_flush(c);
}

void sink_socket_client_free(Client *c) {
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
        s->stats.subscriptions -= c->sub.n_subs;
        uidlimits_release(s->ctx.limits, UID_RESOURCE_CLIENTS, c->sub.creds.uid);
        subscriber_done(&c->sub);
        sd_event_source_disable_unref(c->io);
        safe_close(c->fd);
        sink_socket_accept_resume(s); /* a descriptor is free again */
        free(c->in);
        free(c->out);
        free(c);
}

void sink_socket_client_new(SinkSocket *s, int fd, const struct ucred *ucred, const gid_t *groups,
                            size_t n_groups) {
        _cleanup_(sd_event_source_unrefp) sd_event_source *io = NULL;
        struct ucred cred = *ucred;
        Client *c = calloc(1, sizeof(*c));
        if (!c || uidlimits_acquire(s->ctx.limits, UID_RESOURCE_CLIENTS, cred.uid) != 0) {
                free(c);
                close(fd);
                return;
        }
        c->sink = s;
        c->fd = fd;
        c->accepted_ns = peer_boottime_now();
        c->owner = SINK_OWNER_SOCKET | ++s->next_owner;
        PeerCreds creds;
        policy_peer_init(s->ctx.policy, &creds, cred.uid, cred.gid, cred.pid, groups, n_groups);
        subscriber_init(&c->sub, &creds, s->ctx.limits, &s->subscriber_sink, NULL);
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
                .sees_all = c->sub.creds.privileged,
        };
        reply_hello(&s->reply, &hello);
        sink_socket_client_reply(c);
}
