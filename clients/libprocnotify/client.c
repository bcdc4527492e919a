/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libprocnotify implementation; see include/procnotify/client.h.
 *
 * Input is one buffer of PN_CLIENT_MAX_LINE bytes, the protocol's own limit.
 * Complete lines are taken from it in place and compacted only when a partial
 * line is left, so an event is parsed where it was received and copied once,
 * into the "last line" that pn_client_get_line() returns.
 *
 * Replies are told from events by their shape: every event has "ts_ns", no
 * reply does (PROTOCOL.md). That holds for event types of newer brokers too,
 * which a list of known type names would mistake for replies. While a request
 * waits for its reply, events are parked in a FIFO and pn_client_next()
 * returns them first. The FIFO is bounded; what does not fit is counted and
 * reported as an overrun at its place in the stream, as the broker reports
 * its own queue's losses: never dropped silently.
 *
 * Subscriptions are remembered with the request line that made them, under an
 * id of the library's own, so that a reconnect can replay them while the ids
 * the caller holds stay valid. The restart itself is a marker in the FIFO
 * that becomes an overrun event with where "restart".
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/json-util.h"
#include "common/macro.h"
#include "procnotify/client.h"
#include "procnotify/event.h"
#include "protocol/event-json.h"
#include "protocol/jsonbuf.h"
#include "protocol/request.h"

_Static_assert(PN_CLIENT_MAX_LINE == PN_MAX_LINE, "the public line limit is the protocol's");

#define HELLO_TIMEOUT_MS 5000
#define REPLY_TIMEOUT_MS 10000
#define CONNECT_RETRY_MS 10          /* while the listen backlog is full */
#define RECONNECT_DELAY_MIN_MS 100
#define RECONNECT_DELAY_MAX_MS 2000
#define PARK_MAX_BYTES (4u << 20)
#define PARK_MAX_LINES 16384u
#define MAX_SUBSCRIPTIONS 4096       /* the most [Limits] MaxSubscriptions= allows */
#define MAX_PENDING (MAX_SUBSCRIPTIONS + 256u) /* requests awaiting their reply */
#define MAX_OUT_BYTES (16u << 20)    /* request bytes not yet written */


typedef enum ParkedKind {
        PARKED_LINE,     /* an event line received during a request */
        PARKED_DROPPED,  /* events that did not fit: an overrun to report */
        PARKED_RESTART,  /* the connection was re-made: an overrun to report */
} ParkedKind;

typedef struct Parked {
        struct Parked *next;
        ParkedKind kind;
        uint64_t lost, first_seq, last_seq; /* PARKED_DROPPED */
        size_t len;                         /* PARKED_LINE */
        char data[];
} Parked;

typedef struct Subscription {
        uint64_t id;        /* the caller's, stable across reconnects */
        uint64_t broker_id; /* the broker's, on the current connection */
        char *request;      /* the request line, replayed after a reconnect */
        bool active;        /* the broker accepted it (not merely asked) */
} Subscription;

typedef enum CallKind {
        CALL_SUBSCRIBE,   /* a new subscription: remembered if accepted */
        CALL_REPLAY,      /* a subscription made again after a reconnect */
        CALL_UNSUBSCRIBE, /* forgotten whatever the answer */
        CALL_OTHER,
} CallKind;

/* A request sent (or queued in the output) whose reply is due. Replies come
 * in order, so the pending requests are a FIFO matched to them. */
typedef struct Call {
        struct Call *next;
        CallKind kind;
        uint64_t sub_id;             /* SUBSCRIBE, REPLAY, UNSUBSCRIBE */
        PnClientCallback callback;   /* may be NULL */
        void *userdata;
} Call;

struct PnClient {
        char *path;
        int fd;
        unsigned connects;          /* successful opens */
        PnClientState state;
        bool hello_seen;            /* on this connection (or attempt) */
        unsigned n_replaying;       /* replays due before the connection is ready */
        PnClientCallback open_callback;
        void *open_userdata;

        char *out;                  /* request lines not yet written */
        size_t out_len, out_size;
        Call *pending_head, *pending_tail;
        size_t n_pending;

        char *in;                   /* PN_CLIENT_MAX_LINE bytes of input */
        size_t in_start, in_len;    /* unread: in[in_start, in_start + in_len) */

        Parked *parked_head, *parked_tail;
        size_t n_parked, parked_bytes;
        Parked *dropped;            /* the last drop marker queued, while queued */

        struct json_tokener *tok;
        char *line;                 /* the last event's line, PN_CLIENT_MAX_LINE bytes */
        bool has_line;
        struct json_object *event;  /* the last event; ev's strings point into it */
        PnEvent ev;                 /* the last event pn_client_next() returned */

        int protocol;
        char version[64], instance_id[64], boot_id[64];
        uint64_t hello_seq;
        bool sees_all;

        char error_code[64];
        char error_message[256];

        Subscription *subs;
        size_t n_subs;
        uint64_t last_sub_id;

        bool follow_reports;        /* pn_client_next() returns "follow" reports */
        bool has_follow;            /* the last thing returned was one: follow */
        PnFollowReport follow;

        bool reconnect;
        unsigned reconnects;
        unsigned retry_delay_ms;
        int64_t retry_at_ms;
};

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t now_ns(clockid_t clock) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* Milliseconds until deadline for poll(): -1 for no deadline, 0 once past. */
static int ms_left(int64_t deadline) {
        if (deadline < 0)
                return -1;
        int64_t left = deadline - now_ms();
        return left > 0 ? (int) MIN(left, (int64_t) INT32_MAX) : 0;
}

static int64_t deadline_after(int timeout_ms) {
        return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

static void copy_string(char *dst, size_t size, const char *src) {
        snprintf(dst, size, "%s", src ? src : "");
}

static const char *get_string(struct json_object *o, const char *key) {
        struct json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static uint64_t get_uint(struct json_object *o, const char *key) {
        struct json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return 0;
        return json_object_get_uint64(v);
}

static void client_clear_error(PnClient *c) {
        c->error_code[0] = 0;
        c->error_message[0] = 0;
}

static void client_set_error(PnClient *c, const char *code, const char *message) {
        copy_string(c->error_code, sizeof(c->error_code), code);
        copy_string(c->error_message, sizeof(c->error_message), message);
}

/* The errno for a broker error code; the mapping is documented in client.h. */
static int error_to_errno(const char *code) {
        if (streq(code, PN_ERR_LIMIT_EXCEEDED))
                return -EUSERS;
        if (streq(code, PN_ERR_ACCESS_DENIED))
                return -EACCES;
        if (streq(code, PN_ERR_NOT_FOUND))
                return -ENOENT;
        if (streq(code, PN_ERR_LINE_TOO_LONG))
                return -EMSGSIZE;
        if (streq(code, PN_ERR_INTERNAL))
                return -ENOMEM;
        return -EINVAL;
}

/* The error a call gets when there is no connection. */
static int client_not_connected(const PnClient *c) {
        return c->connects > 0 ? -ECONNRESET : -ENOTCONN;
}

static void client_fail_pending(PnClient *c, int error);

/* Drop the connection. Unread input goes too: the caller only gets here once
 * every complete line was taken, and a partial one can never complete. Every
 * request still waiting for its reply (and an open in progress) completes
 * with error. */
static void client_disconnect(PnClient *c, int error) {
        c->fd = safe_close(c->fd);
        c->in_start = c->in_len = 0;
        c->out_len = 0;
        c->state = PN_CLIENT_DISCONNECTED;
        c->n_replaying = 0;
        client_fail_pending(c, error);
}

/* --- parked events --- */

static void client_park_push(PnClient *c, Parked *p) {
        p->next = NULL;
        if (c->parked_tail)
                c->parked_tail->next = p;
        else
                c->parked_head = p;
        c->parked_tail = p;
        c->n_parked++;
        c->parked_bytes += p->len;
}

static Parked *client_park_pop(PnClient *c) {
        Parked *p = c->parked_head;
        if (!p)
                return NULL;
        c->parked_head = p->next;
        if (!c->parked_head)
                c->parked_tail = NULL;
        c->n_parked--;
        c->parked_bytes -= p->len;
        if (p == c->dropped)
                c->dropped = NULL;
        return p;
}

static Parked *parked_new(ParkedKind kind, const char *data, size_t len) {
        Parked *p = calloc(1, sizeof(*p) + len + 1);
        if (!p)
                return NULL;
        p->kind = kind;
        p->len = len;
        if (len > 0)
                memcpy(p->data, data, len);
        return p;
}

/* Count an event that could not be parked into the drop marker at the tail
 * of the queue, queuing a new marker if the tail is anything else: so each
 * overrun stands where its losses happened. Only an allocation failure of
 * the marker itself is an error: then the drop is unreported, and -ENOMEM
 * says so. */
static int client_park_drop(PnClient *c, uint64_t seq) {
        if (!c->dropped || c->parked_tail != c->dropped) {
                Parked *p = parked_new(PARKED_DROPPED, NULL, 0);
                if (!p)
                        return -ENOMEM;
                client_park_push(c, p);
                c->dropped = p;
        }
        c->dropped->lost++;
        if (seq > 0 && (c->dropped->first_seq == 0 || seq < c->dropped->first_seq))
                c->dropped->first_seq = seq;
        if (seq > c->dropped->last_seq)
                c->dropped->last_seq = seq;
        return 0;
}

/* Keep an event line met while waiting for a reply. Overruns are always kept,
 * whatever the bounds (the broker sends at most one every 100 ms): they are
 * the one thing a client must never miss. */
static int client_park_line(PnClient *c, struct json_object *o, const char *line, size_t len) {
        bool overrun = o && streq_ptr(get_string(o, "type"), "overrun");

        if (!overrun && (c->n_parked >= PARK_MAX_LINES || c->parked_bytes + len > PARK_MAX_BYTES))
                return client_park_drop(c, o ? get_uint(o, "seq") : 0);
        Parked *p = parked_new(PARKED_LINE, line, len);
        if (!p)
                return client_park_drop(c, o ? get_uint(o, "seq") : 0);
        client_park_push(c, p);
        return 0;
}

/* --- input --- */

/*
 * Take the next complete line out of the input, reading the socket until
 * deadline (CLOCK_MONOTONIC ms, -1: none) if needed. Returns 1 with *ret
 * pointing into the input buffer (NUL-terminated, without its newline, valid
 * until the next read), 0 at the deadline, -EINTR if a signal interrupted the
 * wait and interruptible is set, -ECONNRESET at the end of input and -EMSGSIZE
 * for an over-long line (both close the connection), -ENOTCONN/-ECONNRESET
 * when not connected.
 */
static int client_flush(PnClient *c);

static int client_read_line(PnClient *c, int64_t deadline, bool interruptible, char **ret,
                            size_t *ret_len) {
        for (;;) {
                char *start = c->in + c->in_start;
                char *nl = c->in_len > 0 ? memchr(start, '\n', c->in_len) : NULL;
                if (nl) {
                        size_t n = (size_t) (nl - start);
                        c->in_start += n + 1;
                        c->in_len -= n + 1;
                        if (c->in_len == 0)
                                c->in_start = 0;
                        if (n > 0 && start[n - 1] == '\r')
                                n--;
                        start[n] = 0;
                        *ret = start;
                        *ret_len = n;
                        return 1;
                }
                if (c->fd < 0)
                        return client_not_connected(c);
                if (c->in_len >= PN_CLIENT_MAX_LINE) {
                        client_disconnect(c, -EMSGSIZE);
                        return -EMSGSIZE;
                }
                if (c->out_len > 0) {
                        int r = client_flush(c);
                        if (r < 0)
                                return r;
                }
                if (c->in_start > 0) {
                        memmove(c->in, start, c->in_len);
                        c->in_start = 0;
                }

                /* Read first, poll only when there is nothing: under load
                 * that saves a system call per wakeup. */
                ssize_t k = recv(c->fd, c->in + c->in_len, PN_CLIENT_MAX_LINE - c->in_len,
                                 MSG_DONTWAIT);
                if (k > 0) {
                        c->in_len += (size_t) k;
                        continue;
                }
                if (k == 0 || errno == ECONNRESET || errno == EPIPE) {
                        client_disconnect(c, -ECONNRESET);
                        return -ECONNRESET;
                }
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        return -errno;

                int wait = ms_left(deadline);
                if (wait == 0)
                        return 0;
                /* Requests not yet written are written as the socket
                 * takes them, while waiting. */
                struct pollfd p = { .fd = c->fd, .events = POLLIN | (c->out_len > 0 ? POLLOUT : 0) };
                int r = poll(&p, 1, wait);
                if (r < 0) {
                        if (errno == EINTR && !interruptible)
                                continue;
                        return -errno;
                }
                if (r == 0)
                        return 0;
        }
}

/* Parse one line as a JSON object; NULL if it is not one. Lines are at most
 * PN_CLIENT_MAX_LINE bytes, so their length fits json-c's int. */
static struct json_object *client_parse(PnClient *c, const char *line, size_t len) {
        struct json_object *o;

        json_tokener_reset(c->tok);
        o = json_tokener_parse_ex(c->tok, line, (int) len);
        if (!o)
                return NULL;
        if (!json_object_is_type(o, json_type_object) || json_tokener_get_parse_end(c->tok) != len) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

/* Every event has "ts_ns" and no reply has (PROTOCOL.md). */
static bool message_is_event(struct json_object *o) {
        return json_object_object_get_ex(o, "ts_ns", NULL);
}

/* --- output and pending requests --- */

/* Write what the socket takes of the queued request lines, without waiting.
 * Returns 0 (some may be left: the descriptor then wants POLLOUT), or
 * -ECONNRESET / another -errno with the connection closed. */
static int client_flush(PnClient *c) {
        size_t done = 0;
        int r = 0;

        while (done < c->out_len) {
                ssize_t k = send(c->fd, c->out + done, c->out_len - done,
                                 MSG_DONTWAIT | MSG_NOSIGNAL);
                if (k >= 0) {
                        done += (size_t) k;
                        continue;
                }
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN)
                        break;
                r = errno == EPIPE ? -ECONNRESET : -errno;
                break;
        }
        if (r < 0) {
                client_disconnect(c, r);
                return r;
        }
        memmove(c->out, c->out + done, c->out_len - done);
        c->out_len -= done;
        return 0;
}

/* Complete the oldest pending request: its callback gets result and, on
 * success, the reply line. */
static void client_complete(PnClient *c, int result, const char *reply) {
        Call *q = c->pending_head;

        c->pending_head = q->next;
        if (!c->pending_head)
                c->pending_tail = NULL;
        c->n_pending--;
        if (q->callback)
                q->callback(c, result, result < 0 ? NULL : reply, q->userdata);
        free(q);
}

static void client_forget_subscription_id(PnClient *c, uint64_t id);

static void client_fail_pending(PnClient *c, int error) {
        char code[sizeof(c->error_code)], message[sizeof(c->error_message)];

        /* A request lost with the connection got no error reply: its
         * callback sees "" in the getters. An open refused by the broker
         * keeps what the broker said. */
        memcpy(code, c->error_code, sizeof(code));
        memcpy(message, c->error_message, sizeof(message));
        if (c->pending_head)
                client_clear_error(c);
        while (c->pending_head) {
                Call *q = c->pending_head;
                if (q->kind == CALL_SUBSCRIBE)
                        client_forget_subscription_id(c, q->sub_id);
                client_complete(c, error, NULL);
        }
        if (c->open_callback) {
                PnClientCallback cb = c->open_callback;
                c->open_callback = NULL;
                memcpy(c->error_code, code, sizeof(code));
                memcpy(c->error_message, message, sizeof(message));
                cb(c, error, NULL, c->open_userdata);
        }
}

/* Queue one request line (text without newline) and its reply's handler, and
 * write what the socket takes at once. Returns 0, or -EINVAL for a text that
 * is not one line, -ENOBUFS when too much waits already, -ENOMEM, or the
 * connection's error. */
static int client_queue(PnClient *c, const char *text, CallKind kind, uint64_t sub_id,
                        PnClientCallback callback, void *userdata) {
        size_t n = strlen(text);
        Call *q;

        if (c->fd < 0)
                return client_not_connected(c);
        if (n == 0 || n >= PN_CLIENT_MAX_LINE || memchr(text, '\n', n))
                return -EINVAL;
        if (c->n_pending >= MAX_PENDING || c->out_len + n + 1 > MAX_OUT_BYTES)
                return -ENOBUFS;
        if (c->out_len + n + 1 > c->out_size) {
                size_t size = MAX(c->out_size * 2, c->out_len + n + 1);
                char *out = realloc(c->out, size);
                if (!out)
                        return -ENOMEM;
                c->out = out;
                c->out_size = size;
        }
        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        *q = (Call) { .kind = kind, .sub_id = sub_id, .callback = callback, .userdata = userdata };
        /* Request and newline go out together: a line is never split by us
         * unless the socket buffer is full. */
        memcpy(c->out + c->out_len, text, n);
        c->out[c->out_len + n] = '\n';
        c->out_len += n + 1;
        if (c->pending_tail)
                c->pending_tail->next = q;
        else
                c->pending_head = q;
        c->pending_tail = q;
        c->n_pending++;
        /* The request is queued: a failure to write is the connection's,
         * and its callback has been told. */
        (void) client_flush(c);
        return 0;
}

static Subscription *client_find_subscription(PnClient *c, uint64_t id);

static void client_opened(PnClient *c) {
        PnClientCallback cb = c->open_callback;

        c->state = PN_CLIENT_READY;
        if (c->connects > 1)
                c->reconnects++;
        c->open_callback = NULL;
        if (cb)
                cb(c, 0, NULL, c->open_userdata);
}

static void client_on_replayed(PnClient *c, int result, const char *reply, void *userdata) {
        if (result < 0 || c->state != PN_CLIENT_CONNECTING)
                return; /* the connection is closed by now */
        if (--c->n_replaying == 0)
                client_opened(c);
}

/* Subscribe again to everything the caller still has, on a new connection. */
static int client_replay(PnClient *c) {
        for (size_t i = 0; i < c->n_subs; i++) {
                int r;
                if (!c->subs[i].active)
                        continue;
                r = client_queue(c, c->subs[i].request, CALL_REPLAY, c->subs[i].id,
                                 client_on_replayed, NULL);
                if (r < 0)
                        return r;
                c->n_replaying++;
        }
        return 0;
}

/* The broker's hello (or its refusal) on a new connection. */
static int client_handle_hello(PnClient *c, const char *line, size_t len) {
        _cleanup_(json_object_putp) struct json_object *o = client_parse(c, line, len);
        struct json_object *v;
        int r;

        if (!o) {
                client_disconnect(c, -EPROTO);
                return -EPROTO;
        }
        const char *type = get_string(o, "type");
        if (streq_ptr(type, "error")) {
                /* Refused at once, e.g. too many connections. */
                client_set_error(c, get_string(o, "code"), get_string(o, "message"));
                r = error_to_errno(c->error_code);
                client_disconnect(c, r);
                return r;
        }
        if (!streq_ptr(type, "hello") || !json_object_object_get_ex(o, "protocol", &v) ||
            !json_object_is_type(v, json_type_int) || json_object_get_int(v) != PN_PROTOCOL_VERSION) {
                client_disconnect(c, -EPROTO);
                return -EPROTO;
        }
        c->hello_seen = true;
        c->protocol = PN_PROTOCOL_VERSION;
        copy_string(c->version, sizeof(c->version), get_string(o, "version"));
        copy_string(c->instance_id, sizeof(c->instance_id), get_string(o, "instance_id"));
        copy_string(c->boot_id, sizeof(c->boot_id), get_string(o, "boot_id"));
        c->hello_seq = get_uint(o, "seq");
        c->sees_all = json_object_object_get_ex(o, "sees_all", &v) && json_object_get_boolean(v);
        if (c->connects++ > 0) {
                /* A connection again: what happened in between is unknown. */
                Parked *p = parked_new(PARKED_RESTART, NULL, 0);
                if (!p) {
                        client_disconnect(c, -ENOMEM);
                        return -ENOMEM;
                }
                client_park_push(c, p);
                r = client_replay(c);
                if (r < 0) {
                        client_disconnect(c, r);
                        return r;
                }
        }
        if (c->n_replaying == 0)
                client_opened(c);
        return 0;
}

/* A reply: it completes the oldest pending request. */
static void client_handle_reply(PnClient *c, struct json_object *o, const char *line) {
        Call *q = c->pending_head;
        Subscription *s;
        int result = 0;

        if (!q)
                return; /* nothing asked: not ours to answer */
        if (streq_ptr(get_string(o, "type"), "error")) {
                client_set_error(c, get_string(o, "code"), get_string(o, "message"));
                result = error_to_errno(c->error_code);
        } else
                client_clear_error(c);

        s = q->sub_id ? client_find_subscription(c, q->sub_id) : NULL;
        switch (q->kind) {
        case CALL_SUBSCRIBE:
        case CALL_REPLAY:
                if (result == 0 && s) {
                        s->broker_id = get_uint(o, "id");
                        s->active = true;
                } else if (q->kind == CALL_SUBSCRIBE && s)
                        client_forget_subscription_id(c, q->sub_id);
                break;
        case CALL_UNSUBSCRIBE:
                if (result == -ENOENT) {
                        /* The broker does not have it either: the end is the same. */
                        client_clear_error(c);
                        result = 0;
                }
                if (result == 0 && s)
                        client_forget_subscription_id(c, q->sub_id);
                break;
        case CALL_OTHER:
                break;
        }
        if (q->kind == CALL_REPLAY && result < 0) {
                /* The new broker refused what the caller had: the open
                 * fails with its error, and the connection is closed. */
                client_complete(c, result, NULL);
                client_disconnect(c, result);
                return;
        }
        client_complete(c, result, line);
}

static int client_deliver(PnClient *c, const char *line, size_t len, PnEvent *ret);

/*
 * Handle one line read from the socket: the hello, a reply, or an event.
 * An event is delivered to *ret if ret is not NULL (returns 1), parked
 * otherwise. Returns 0 when nothing was delivered, or the error that closed
 * the connection.
 */
static int client_handle_line(PnClient *c, char *line, size_t len, PnEvent *ret) {
        _cleanup_(json_object_putp) struct json_object *o = NULL;

        if (len == 0)
                return 0;
        if (!c->hello_seen)
                return client_handle_hello(c, line, len);
        o = client_parse(c, line, len);
        if (!o || message_is_event(o)) {
                /* Garbage is parked (or delivered) too, to be skipped by
                 * pn_client_next() like anything it cannot use. */
                if (ret)
                        return client_deliver(c, line, len, ret);
                return client_park_line(c, o, line, len);
        }
        client_handle_reply(c, o, line);
        return 0;
}

/* What a blocking call waits for: its request's (or open's) completion. */
typedef struct Wait {
        bool done;
        int result;
        char *reply;
} Wait;

static void client_on_wait_done(PnClient *c, int result, const char *reply, void *userdata) {
        Wait *w = userdata;

        w->done = true;
        w->result = result;
        if (result >= 0 && reply) {
                w->reply = strdup(reply);
                if (!w->reply)
                        w->result = -ENOMEM;
        }
}

/* Run the connection until w is done or the deadline passes (the
 * connection is closed then: a late reply would be taken for the next
 * request's). Events met on the way are parked. */
static int client_wait(PnClient *c, Wait *w, int64_t deadline) {
        while (!w->done) {
                char *line;
                size_t len;
                int r = client_read_line(c, deadline, false, &line, &len);
                if (r == 0) {
                        client_disconnect(c, -ETIMEDOUT);
                        return -ETIMEDOUT;
                }
                if (r < 0) {
                        if (c->fd >= 0)
                                client_disconnect(c, r);
                        return w->done ? w->result : r;
                }
                r = client_handle_line(c, line, len, NULL);
                if (r < 0 && !w->done)
                        return r;
        }
        return w->result;
}

/*
 * Send one request line and wait for its reply, parking events met on the
 * way. Returns 0 and, if wanted, the reply's text (*ret_text, malloc'd); a
 * broker error as documented in client.h; or -ETIMEDOUT (the connection is
 * closed), -ECONNRESET, -ENOTCONN, -ENOMEM.
 */
static int client_transact(PnClient *c, const char *request, CallKind kind, uint64_t sub_id,
                           char **ret_text) {
        int64_t deadline = now_ms() + REPLY_TIMEOUT_MS;
        Wait w = {};
        int r;

        client_clear_error(c);
        r = client_queue(c, request, kind, sub_id, client_on_wait_done, &w);
        if (r < 0)
                return r;
        r = client_wait(c, &w, deadline);
        if (r >= 0 && ret_text)
                *ret_text = TAKE_PTR(w.reply);
        free(w.reply);
        return r;
}

/* A reply's object, for the blocking wrappers that read a member of it. */
static uint64_t reply_get_uint(PnClient *c, const char *reply, const char *key) {
        _cleanup_(json_object_putp) struct json_object *o =
                reply ? client_parse(c, reply, strlen(reply)) : NULL;
        return o ? get_uint(o, key) : 0;
}

/* --- connection --- */

/* Start connecting, without waiting: 0 with the socket connected (the hello
 * is read later), -EAGAIN while the listener's backlog is full, or -errno. */
static int client_connect_socket(PnClient *c) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;

        strcpy(sa.sun_path, c->path); /* length checked in pn_client_new() */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* A non-blocking AF_UNIX connect completes at once, or fails with
         * EAGAIN while the listener's backlog is full. */
        while (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                if (errno != EINTR)
                        return -errno;
        c->fd = TAKE_FD(fd);
        c->in_start = c->in_len = 0;
        c->out_len = 0;
        c->state = PN_CLIENT_CONNECTING;
        c->hello_seen = false;
        c->n_replaying = 0;
        return 0;
}

int pn_client_open_async(PnClient *c, PnClientCallback callback, void *userdata) {
        int r;

        if (c->fd >= 0)
                return -EISCONN;
        client_clear_error(c);
        r = client_connect_socket(c);
        if (r < 0)
                return r;
        c->open_callback = callback;
        c->open_userdata = userdata;
        return 0;
}

int pn_client_process(PnClient *c) {
        if (c->fd < 0)
                return client_not_connected(c);
        /* Only what completes requests is read here; events are left to
         * pn_client_next(), except those before a reply (parked). */
        while (c->fd >= 0 && (c->state == PN_CLIENT_CONNECTING || c->pending_head)) {
                char *line;
                size_t len;
                int r = client_read_line(c, 0, false, &line, &len);
                if (r == 0)
                        break;
                if (r < 0) {
                        if (c->fd >= 0)
                                client_disconnect(c, r);
                        return r;
                }
                r = client_handle_line(c, line, len, NULL);
                if (r < 0)
                        return r;
        }
        if (c->fd >= 0 && c->out_len > 0)
                return client_flush(c);
        return c->fd >= 0 ? 0 : client_not_connected(c);
}

int pn_client_get_events(const PnClient *c) {
        if (c->fd < 0)
                return 0;
        return POLLIN | (c->out_len > 0 ? POLLOUT : 0);
}

PnClientState pn_client_get_state(const PnClient *c) {
        return c->state;
}

int pn_client_new(PnClient **ret, const char *path) {
        struct sockaddr_un sa;
        PnClient *c;

        if (!path || !*path)
                path = getenv("PROCNOTIFY_SOCKET");
        if (!path || !*path)
                path = PN_CLIENT_DEFAULT_SOCKET;
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->fd = -1;
        c->path = strdup(path);
        c->in = malloc(PN_CLIENT_MAX_LINE);
        c->line = malloc(PN_CLIENT_MAX_LINE);
        c->tok = json_tokener_new_ex(PN_MAX_JSON_DEPTH);
        if (!c->path || !c->in || !c->line || !c->tok) {
                pn_client_free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

/* pn_client_open(); *ret_replay_failed tells whether it failed at replaying
 * subscriptions, i.e. a broker is there but refused one. */
static int client_open(PnClient *c, bool *ret_replay_failed) {
        int64_t deadline = now_ms() + HELLO_TIMEOUT_MS;
        Wait w = {};
        int r;

        *ret_replay_failed = false;
        for (;;) {
                r = pn_client_open_async(c, client_on_wait_done, &w);
                if (r != -EAGAIN)
                        break;
                /* The listener's backlog is full: retry until the deadline. */
                int wait = ms_left(deadline);
                if (wait == 0)
                        return -ETIMEDOUT;
                (void) poll(NULL, 0, MIN(wait, CONNECT_RETRY_MS));
        }
        if (r < 0)
                return r;
        r = client_wait(c, &w, deadline);
        *ret_replay_failed = r < 0 && c->hello_seen;
        return r;
}

int pn_client_open(PnClient *c) {
        bool replay_failed;
        return client_open(c, &replay_failed);
}

int pn_client_connect(PnClient **ret, const char *path) {
        PnClient *c = NULL;
        int r;

        r = pn_client_new(&c, path);
        if (r < 0)
                return r;
        r = pn_client_open(c);
        if (r < 0) {
                pn_client_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

PnClient *pn_client_free(PnClient *c) {
        Parked *p;

        if (!c)
                return NULL;
        /* Every callback is called once: those still due, now. */
        client_disconnect(c, -ECANCELED);
        while ((p = client_park_pop(c)))
                free(p);
        for (size_t i = 0; i < c->n_subs; i++)
                free(c->subs[i].request);
        free(c->subs);
        free(c->out);
        json_object_put(c->event);
        if (c->tok)
                json_tokener_free(c->tok);
        free(c->line);
        free(c->in);
        free(c->path);
        free(c);
        return NULL;
}

/* --- getters --- */

const char *pn_client_get_path(const PnClient *c) {
        return c->path;
}

int pn_client_get_fd(const PnClient *c) {
        return c->fd;
}

int pn_client_get_protocol(const PnClient *c) {
        return c->protocol;
}

const char *pn_client_get_version(const PnClient *c) {
        return c->version;
}

const char *pn_client_get_instance_id(const PnClient *c) {
        return c->instance_id;
}

const char *pn_client_get_boot_id(const PnClient *c) {
        return c->boot_id;
}

uint64_t pn_client_get_hello_seq(const PnClient *c) {
        return c->hello_seq;
}

bool pn_client_get_sees_all(const PnClient *c) {
        return c->sees_all;
}

const char *pn_client_get_error_code(const PnClient *c) {
        return c->error_code;
}

const char *pn_client_get_error_message(const PnClient *c) {
        return c->error_message;
}

const char *pn_client_get_line(const PnClient *c) {
        return c->has_line ? c->line : NULL;
}

void pn_client_set_reconnect(PnClient *c, bool reconnect) {
        c->reconnect = reconnect;
}

unsigned pn_client_get_reconnects(const PnClient *c) {
        return c->reconnects;
}

/* --- requests --- */

static Subscription *client_find_subscription(PnClient *c, uint64_t id) {
        for (size_t i = 0; i < c->n_subs; i++)
                if (c->subs[i].id == id)
                        return &c->subs[i];
        return NULL;
}

static void client_forget_subscription_id(PnClient *c, uint64_t id) {
        Subscription *s = client_find_subscription(c, id);
        if (!s)
                return;
        free(s->request);
        *s = c->subs[--c->n_subs];
}

static int json_add(struct json_object *o, const char *key, struct json_object *v) {
        if (!v || json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

/* Ask for the subscription req describes; it is remembered (for a reconnect)
 * once the broker accepts it. */
static int client_subscribe(PnClient *c, struct json_object *req, uint64_t *ret_id,
                            PnClientCallback callback, void *userdata) {
        _cleanup_free_ char *text = NULL;
        uint64_t id;
        int r;

        if (c->fd < 0)
                return client_not_connected(c);
        if (c->n_subs >= MAX_SUBSCRIPTIONS) {
                client_set_error(c, PN_ERR_LIMIT_EXCEEDED, "too many subscriptions on this client");
                return -EUSERS;
        }
        /* Room for the subscription first: once the broker said yes it must
         * be remembered, or a reconnect would silently lose it. */
        Subscription *subs = realloc(c->subs, (c->n_subs + 1) * sizeof(*subs));
        if (!subs)
                return -ENOMEM;
        c->subs = subs;
        text = strdup(json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN));
        if (!text)
                return -ENOMEM;
        id = ++c->last_sub_id;
        r = client_queue(c, text, CALL_SUBSCRIBE, id, callback, userdata);
        if (r < 0)
                return r;
        c->subs[c->n_subs++] = (Subscription) { .id = id, .request = TAKE_PTR(text) };
        if (ret_id)
                *ret_id = id;
        return 0;
}

/* Wait for the subscription just asked for (the last request queued). */
static int client_subscribe_wait(PnClient *c, Wait *w, int r) {
        if (r < 0)
                return r;
        r = client_wait(c, w, now_ms() + REPLY_TIMEOUT_MS);
        free(w->reply);
        return r;
}

static int client_build_subscribe_request(PnClient *c, const char *request_json,
                                          struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *req = NULL;
        struct json_object *op;

        client_clear_error(c);
        req = request_json ? json_tokener_parse(request_json) : NULL;
        if (!req || !json_object_is_type(req, json_type_object)) {
                client_set_error(c, PN_ERR_INVALID_REQUEST, "the subscribe request is not a JSON object");
                return -EINVAL;
        }
        if (!json_object_object_get_ex(req, "op", &op)) {
                if (json_add(req, "op", json_object_new_string("subscribe")) < 0)
                        return -ENOMEM;
        } else if (!json_object_is_type(op, json_type_string) ||
                   !streq(json_object_get_string(op), "subscribe")) {
                client_set_error(c, PN_ERR_INVALID_REQUEST, "the request's \"op\" is not \"subscribe\"");
                return -EINVAL;
        }
        *ret = TAKE_PTR(req);
        return 0;
}

int pn_client_subscribe_request_async(PnClient *c, const char *request_json, uint64_t *ret_id,
                                      PnClientCallback callback, void *userdata) {
        _cleanup_(json_object_putp) struct json_object *req = NULL;
        int r = client_build_subscribe_request(c, request_json, &req);
        if (r < 0)
                return r;
        return client_subscribe(c, req, ret_id, callback, userdata);
}

int pn_client_subscribe_request(PnClient *c, const char *request_json, uint64_t *ret_id) {
        Wait w = {};
        return client_subscribe_wait(
                c, &w, pn_client_subscribe_request_async(c, request_json, ret_id, client_on_wait_done, &w));
}

static int client_build_subscribe(PnClient *c, const char *const *events, const char *match_json,
                                  bool threads, struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *req = NULL;

        client_clear_error(c);
        req = json_object_new_object();
        if (!req || json_add(req, "op", json_object_new_string("subscribe")) < 0)
                return -ENOMEM;
        if (events) {
                struct json_object *a = json_object_new_array();
                if (json_add(req, "events", a) < 0)
                        return -ENOMEM;
                for (size_t i = 0; events[i]; i++) {
                        struct json_object *s = json_object_new_string(events[i]);
                        if (!s || json_object_array_add(a, s) < 0) {
                                json_object_put(s);
                                return -ENOMEM;
                        }
                }
        }
        if (match_json) {
                struct json_object *match = json_tokener_parse(match_json);
                if (!match || !json_object_is_type(match, json_type_object)) {
                        json_object_put(match);
                        client_set_error(c, PN_ERR_INVALID_FILTER, "the match is not a JSON object");
                        return -EINVAL;
                }
                if (json_add(req, "match", match) < 0)
                        return -ENOMEM;
        }
        if (threads && json_add(req, "threads", json_object_new_boolean(true)) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(req);
        return 0;
}

int pn_client_subscribe_async(PnClient *c, const char *const *events, const char *match_json,
                              bool threads, uint64_t *ret_id, PnClientCallback callback,
                              void *userdata) {
        _cleanup_(json_object_putp) struct json_object *req = NULL;
        int r = client_build_subscribe(c, events, match_json, threads, &req);
        if (r < 0)
                return r;
        return client_subscribe(c, req, ret_id, callback, userdata);
}

int pn_client_subscribe(PnClient *c, const char *const *events, const char *match_json,
                        bool threads, uint64_t *ret_id) {
        Wait w = {};
        return client_subscribe_wait(c, &w,
                                     pn_client_subscribe_async(c, events, match_json, threads,
                                                               ret_id, client_on_wait_done, &w));
}

/* Queue the unsubscribe of id; 1 if it was only forgotten (no connection),
 * so that no request is due. */
static int client_unsubscribe(PnClient *c, uint64_t id, PnClientCallback callback, void *userdata) {
        Subscription *s;
        char req[96];

        client_clear_error(c);
        s = client_find_subscription(c, id);
        if (!s) {
                char message[64];
                snprintf(message, sizeof(message), "no subscription %llu on this client",
                         (unsigned long long) id);
                client_set_error(c, PN_ERR_NOT_FOUND, message);
                return -ENOENT;
        }
        if (c->fd < 0) {
                /* The connection and its subscriptions are gone: forgetting
                 * it is all there is to do, and keeps a reconnect from
                 * replaying it. */
                client_forget_subscription_id(c, id);
                return 1;
        }
        if (!s->active)
                return -EBUSY; /* its own reply is still due */
        snprintf(req, sizeof(req), "{\"op\":\"unsubscribe\",\"id\":%llu}",
                 (unsigned long long) s->broker_id);
        return client_queue(c, req, CALL_UNSUBSCRIBE, id, callback, userdata);
}

int pn_client_unsubscribe_async(PnClient *c, uint64_t id, PnClientCallback callback, void *userdata) {
        int r = client_unsubscribe(c, id, callback, userdata);
        return r < 0 ? r : 0;
}

int pn_client_unsubscribe(PnClient *c, uint64_t id) {
        Wait w = {};
        int r = client_unsubscribe(c, id, client_on_wait_done, &w);
        if (r != 0)
                return r < 0 ? r : 0;
        r = client_wait(c, &w, now_ms() + REPLY_TIMEOUT_MS);
        free(w.reply);
        return r;
}

int pn_client_ping(PnClient *c, uint64_t *ret_seq) {
        _cleanup_free_ char *reply = NULL;
        int r;

        r = client_transact(c, "{\"op\":\"ping\"}", CALL_OTHER, 0, &reply);
        if (r < 0)
                return r;
        if (ret_seq)
                *ret_seq = reply_get_uint(c, reply, "seq");
        return 0;
}

static int client_check_request(PnClient *c, const char *request_json) {
        _cleanup_(json_object_putp) struct json_object *req = NULL;
        const char *op;

        client_clear_error(c);
        req = request_json ? json_tokener_parse(request_json) : NULL;
        if (!req || !json_object_is_type(req, json_type_object))
                return -EINVAL;
        op = get_string(req, "op");
        if (streq_ptr(op, "subscribe") || streq_ptr(op, "unsubscribe"))
                return -EINVAL;
        return 0;
}

int pn_client_request_async(PnClient *c, const char *request_json, PnClientCallback callback,
                            void *userdata) {
        int r = client_check_request(c, request_json);
        if (r < 0)
                return r;
        return client_queue(c, request_json, CALL_OTHER, 0, callback, userdata);
}

int pn_client_request(PnClient *c, const char *request_json, char **ret_reply) {
        int r = client_check_request(c, request_json);
        if (r < 0)
                return r;
        return client_transact(c, request_json, CALL_OTHER, 0, ret_reply);
}

/* --- events --- */

/* "2026-11-22T16:10:07.123456Z" (what the broker writes) to nanoseconds since
 * the epoch; 0 for anything else. */
static const char *const follow_reasons[_PN_FOLLOW_REASON_MAX] = {
        [PN_FOLLOW_MAIN_EXITED] = "main-exited",
        [PN_FOLLOW_ENDED] = "ended",
        [PN_FOLLOW_LIMIT] = "limit",
};

const char *pn_follow_reason_to_string(PnFollowReason r) {
        return r >= 0 && r < _PN_FOLLOW_REASON_MAX ? follow_reasons[r] : NULL;
}

static PnFollowReason follow_reason_from_string(const char *s) {
        for (int i = 0; s && i < _PN_FOLLOW_REASON_MAX; i++)
                if (streq(s, follow_reasons[i]))
                        return (PnFollowReason) i;
        return _PN_FOLLOW_REASON_INVALID;
}

/* A "follow" report into c->follow and the event that carries it; false if
 * it is not one this library can use (skipped, like unknown messages). The
 * broker's subscription id becomes the caller's. */
static bool client_parse_follow(PnClient *c, struct json_object *o, PnEvent *ev) {
        uint64_t broker_id = get_uint(o, "id");
        PnFollowReport r = {
                .reason = follow_reason_from_string(get_string(o, "reason")),
                .main_pid = (pid_t) get_uint(o, "main_pid"),
                .previous_main_pid = (pid_t) get_uint(o, "previous_main_pid"),
                .candidates = (unsigned) get_uint(o, "candidates"),
                .members = (unsigned) get_uint(o, "members"),
                .cause_seq = get_uint(o, "cause_seq"),
        };
        size_t i;

        if (r.reason == _PN_FOLLOW_REASON_INVALID || !message_is_event(o))
                return false;
        for (i = 0; i < c->n_subs && !(c->subs[i].active && c->subs[i].broker_id == broker_id); i++)
                ;
        if (i == c->n_subs)
                return false; /* unsubscribed meanwhile */
        r.subscription = c->subs[i].id;
        c->follow = r;
        *ev = (PnEvent) {
                .type = PN_REPORT_FOLLOW,
                .ts_ns = get_uint(o, "ts_ns"),
                .time_ns = event_json_parse_time(get_string(o, "time")),
                .pid = r.main_pid,
                .tgid = r.main_pid,
                .uid = UINT32_MAX,
        };
        return true;
}

void pn_client_set_follow_reports(PnClient *c, bool on) {
        c->follow_reports = on;
}

int pn_client_get_follow(const PnClient *c, PnFollowReport *ret) {
        if (!c->has_follow)
                return -ENOENT;
        *ret = c->follow;
        return 0;
}

/* Make the event the caller gets from a line: it becomes the last line, and
 * its object owns ret's strings. Returns 1, or 0 for a line that is not an
 * event this library knows (skipped: newer brokers may send more). */
static int client_deliver(PnClient *c, const char *line, size_t len, PnEvent *ret) {
        struct json_object *o = client_parse(c, line, len);
        bool report = false;
        PnEvent ev;

        if (o && c->follow_reports && streq_ptr(get_string(o, "type"), "follow"))
                report = client_parse_follow(c, o, &ev);
        if (!report && (!o || !message_is_event(o) || event_json_parse(o, &ev) < 0)) {
                json_object_put(o);
                return 0;
        }
        c->has_follow = report;
        json_object_put(c->event);
        c->event = o;
        if (line != c->line)
                memcpy(c->line, line, len);
        c->line[len] = 0;
        c->has_line = true;
        *ret = ev;
        return 1;
}

/* Turn a marker into the overrun event it stands for, with a line of its
 * own in the protocol's form. */
static int client_deliver_marker(PnClient *c, const Parked *p, PnEvent *ret) {
        JsonBuf b = JSONBUF_INIT;
        PnEvent ev = {
                .type = PN_EVENT_OVERRUN,
                .ts_ns = now_ns(CLOCK_MONOTONIC),
                .time_ns = now_ns(CLOCK_REALTIME),
        };
        int r;

        if (p->kind == PARKED_RESTART)
                ev.overrun.where = PN_OVERRUN_RESTART;
        else {
                ev.overrun.where = PN_OVERRUN_CLIENT;
                ev.overrun.lost = p->lost;
                ev.overrun.first_seq = p->first_seq;
                ev.overrun.last_seq = p->last_seq;
        }
        event_json_format(&b, &ev);
        if (jsonbuf_failed(&b) || b.len < 1 || b.len > PN_CLIENT_MAX_LINE) {
                jsonbuf_deinit(&b);
                return -ENOMEM;
        }
        memcpy(c->line, b.data, b.len - 1); /* without the newline */
        r = client_deliver(c, c->line, b.len - 1, ret);
        jsonbuf_deinit(&b);
        return r > 0 ? 1 : -ENOMEM;
}

/* Try to get the connection back, no later than deadline. Returns 1 when
 * connected (subscriptions replayed), 0 at the deadline, or an error. */
static int client_reconnect(PnClient *c, int64_t deadline) {
        for (;;) {
                if (now_ms() >= c->retry_at_ms) {
                        bool replay_failed;
                        int r = client_open(c, &replay_failed);
                        if (r == 0) {
                                c->retry_delay_ms = 0;
                                c->retry_at_ms = 0;
                                return 1;
                        }
                        c->retry_delay_ms = c->retry_delay_ms == 0
                                                    ? RECONNECT_DELAY_MIN_MS
                                                    : MIN(c->retry_delay_ms * 2, RECONNECT_DELAY_MAX_MS);
                        c->retry_at_ms = now_ms() + c->retry_delay_ms;
                        /* A broker that refused a replayed subscription is
                         * worth telling the caller about; an absent one is
                         * what reconnecting waits out. */
                        if (replay_failed)
                                return r;
                }
                int wait = ms_left(deadline);
                if (wait == 0)
                        return 0;
                int64_t until_retry = c->retry_at_ms - now_ms();
                if (until_retry > 0 && (wait < 0 || until_retry < wait))
                        wait = (int) until_retry;
                if (wait > 0 && poll(NULL, 0, wait) < 0)
                        return -errno;
        }
}

static int client_next(PnClient *c, PnEvent *ret, int timeout_ms) {
        int64_t deadline = deadline_after(timeout_ms);

        for (;;) {
                Parked *p = client_park_pop(c);
                char *line;
                size_t len;
                int r;

                if (p) {
                        r = p->kind == PARKED_LINE ? client_deliver(c, p->data, p->len, ret)
                                                   : client_deliver_marker(c, p, ret);
                        free(p);
                        if (r != 0)
                                return r;
                        continue;
                }

                if (c->fd < 0) {
                        if (!c->reconnect || c->connects == 0)
                                return client_not_connected(c);
                        r = client_reconnect(c, deadline);
                        if (r <= 0)
                                return r;
                        continue; /* the restart marker is parked now */
                }

                r = client_read_line(c, deadline, true, &line, &len);
                if (r > 0) {
                        /* The hello, replies to requests made without
                         * waiting, and events: one stream. */
                        r = client_handle_line(c, line, len, ret);
                        if (r > 0)
                                return 1;
                        if (r == 0)
                                continue;
                } else if (r == 0)
                        return 0;
                if ((r == -ECONNRESET || r == -EMSGSIZE) && c->reconnect && c->connects > 0)
                        continue;
                return r;
        }
}

int pn_client_next(PnClient *c, const PnEvent **ret, int timeout_ms) {
        int r = client_next(c, &c->ev, timeout_ms);
        if (r > 0)
                *ret = &c->ev;
        return r;
}
