/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libprocnotify implementation; see include/procnotify/client.h.
 *
 * One buffer of input; complete lines are taken from it one at a time.
 * Replies are told from events by their "type". While a request waits for
 * its reply, events that arrive are parked in a FIFO and handed out first
 * by pn_client_next(), so no event is lost to a synchronous call.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/macro.h"
#include "procnotify/client.h"
#include "protocol/event-json.h"
#include "protocol/request.h"

#define HELLO_TIMEOUT_MS 5000
#define REPLY_TIMEOUT_MS 10000
#define MAX_REQUESTS 4096

typedef struct Line {
        struct Line *next;
        size_t len;
        char data[];
} Line;

struct PnClient {
        int fd;
        char *path;
        char *buf;       /* received, not yet consumed */
        size_t len;
        Line *pending_head, *pending_tail;
        char *line;                /* the last event's line */
        struct json_object *event; /* the last event, parsed */

        char version[64], instance_id[64], boot_id[64];
        uint64_t hello_seq;
        bool sees_all;

        char error_code[64];
        char error_message[256];

        char **requests;           /* subscriptions to replay on reconnect */
        size_t n_requests;
        bool reconnect;
        unsigned reconnects;
        bool report_restart;       /* a restart overrun is due */
};

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int remaining(int64_t deadline) {
        if (deadline < 0)
                return -1;
        int64_t left = deadline - now_ms();
        return left > 0 ? (int) MIN(left, (int64_t) INT32_MAX) : 0;
}

static void pending_push(PnClient *c, Line *l) {
        l->next = NULL;
        if (c->pending_tail)
                c->pending_tail->next = l;
        else
                c->pending_head = l;
        c->pending_tail = l;
}

static Line *pending_pop(PnClient *c) {
        Line *l = c->pending_head;
        if (l) {
                c->pending_head = l->next;
                if (!c->pending_head)
                        c->pending_tail = NULL;
        }
        return l;
}

/*
 * Take the next complete line, reading as needed until deadline (ms, -1
 * forever). Returns 1 and a malloc'd Line, 0 on timeout, -ECONNRESET at
 * EOF, -EMSGSIZE for a line longer than the protocol allows.
 */
static int read_line(PnClient *c, int64_t deadline, Line **ret) {
        for (;;) {
                char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
                if (nl) {
                        size_t n = (size_t) (nl - c->buf);
                        Line *l = malloc(sizeof(*l) + n + 1);
                        if (!l)
                                return -ENOMEM;
                        memcpy(l->data, c->buf, n);
                        l->data[n] = 0;
                        l->len = n;
                        c->len -= n + 1;
                        memmove(c->buf, nl + 1, c->len);
                        *ret = l;
                        return 1;
                }
                if (c->len >= PN_MAX_LINE)
                        return -EMSGSIZE;
                struct pollfd p = { .fd = c->fd, .events = POLLIN };
                int r = poll(&p, 1, remaining(deadline));
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r == 0)
                        return 0;
                ssize_t k = recv(c->fd, c->buf + c->len, PN_MAX_LINE - c->len, MSG_DONTWAIT);
                if (k < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                continue;
                        return errno == ECONNRESET ? -ECONNRESET : -errno;
                }
                if (k == 0)
                        return -ECONNRESET;
                c->len += (size_t) k;
        }
}

static struct json_object *parse_line(const Line *l) {
        struct json_object *o = json_tokener_parse(l->data);
        if (o && !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

static const char *get_type(struct json_object *o) {
        struct json_object *t;
        if (!json_object_object_get_ex(o, "type", &t))
                return NULL;
        return json_object_get_string(t);
}

static bool is_reply(const char *type) {
        static const char *const replies[] = { "hello", "subscribed", "unsubscribed", "pong",
                                               "status", "error" };
        for (size_t i = 0; type && i < ELEMENTSOF(replies); i++)
                if (streq(type, replies[i]))
                        return true;
        /* Replies of newer ops are the ones not naming an event type. */
        return type && pn_event_type_from_string(type) == _PN_EVENT_TYPE_INVALID;
}

static void copy_str(char *dst, size_t size, struct json_object *o, const char *key) {
        struct json_object *v;
        dst[0] = 0;
        if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
                snprintf(dst, size, "%s", json_object_get_string(v));
}

static int error_to_errno(const char *code) {
        if (streq(code, PN_ERR_LIMIT_EXCEEDED))
                return -EUSERS;
        if (streq(code, PN_ERR_ACCESS_DENIED))
                return -EACCES;
        if (streq(code, PN_ERR_NOT_FOUND))
                return -ENOENT;
        if (streq(code, PN_ERR_INTERNAL))
                return -ENOMEM;
        if (streq(code, PN_ERR_LINE_TOO_LONG))
                return -EMSGSIZE;
        return -EINVAL;
}

static int send_all(PnClient *c, const char *data, size_t n) {
        while (n > 0) {
                ssize_t k = send(c->fd, data, n, MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                struct pollfd p = { .fd = c->fd, .events = POLLOUT };
                                if (poll(&p, 1, REPLY_TIMEOUT_MS) <= 0)
                                        return -ETIMEDOUT;
                                continue;
                        }
                        return errno == EPIPE ? -ECONNRESET : -errno;
                }
                data += k;
                n -= (size_t) k;
        }
        return 0;
}

/* Send a request line and wait for its reply; park events met meanwhile. */
static int transact(PnClient *c, const char *request, char **ret_reply) {
        int64_t deadline = now_ms() + REPLY_TIMEOUT_MS;
        size_t n = strlen(request);
        int r;

        if (n == 0 || n >= PN_MAX_LINE || memchr(request, '\n', n))
                return -EINVAL;
        r = send_all(c, request, n);
        if (r == 0)
                r = send_all(c, "\n", 1);
        if (r < 0)
                return r;
        for (;;) {
                Line *l = NULL;
                r = read_line(c, deadline, &l);
                if (r <= 0)
                        return r == 0 ? -ETIMEDOUT : r;
                struct json_object *o = parse_line(l);
                const char *type = o ? get_type(o) : NULL;
                if (!type || !is_reply(type)) {
                        json_object_put(o);
                        pending_push(c, l); /* an event: keep it for pn_client_next() */
                        continue;
                }
                if (streq(type, "error")) {
                        copy_str(c->error_code, sizeof(c->error_code), o, "code");
                        copy_str(c->error_message, sizeof(c->error_message), o, "message");
                        r = error_to_errno(c->error_code);
                } else {
                        r = 0;
                        if (ret_reply) {
                                *ret_reply = strdup(l->data);
                                if (!*ret_reply)
                                        r = -ENOMEM;
                        }
                }
                json_object_put(o);
                free(l);
                return r;
        }
}

static int client_open(PnClient *c) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        Line *l = NULL;
        int r;

        if (strlen(c->path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, c->path);
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
                return -errno;
        if (connect(c->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                r = -errno;
                c->fd = safe_close(c->fd);
                return r;
        }
        c->len = 0;
        r = read_line(c, now_ms() + HELLO_TIMEOUT_MS, &l);
        if (r <= 0) {
                c->fd = safe_close(c->fd);
                return r == 0 ? -ETIMEDOUT : r;
        }
        struct json_object *o = parse_line(l), *v;
        free(l);
        const char *type = o ? get_type(o) : NULL;
        if (!type || !(streq(type, "hello") || streq(type, "error"))) {
                json_object_put(o);
                c->fd = safe_close(c->fd);
                return -EPROTO;
        }
        if (streq(type, "error")) {
                /* Refused at once, e.g. too many connections. */
                copy_str(c->error_code, sizeof(c->error_code), o, "code");
                copy_str(c->error_message, sizeof(c->error_message), o, "message");
                json_object_put(o);
                c->fd = safe_close(c->fd);
                return error_to_errno(c->error_code);
        }
        if (!json_object_object_get_ex(o, "protocol", &v) || json_object_get_int(v) != PN_PROTOCOL_VERSION) {
                json_object_put(o);
                c->fd = safe_close(c->fd);
                return -EPROTO;
        }
        copy_str(c->version, sizeof(c->version), o, "version");
        copy_str(c->instance_id, sizeof(c->instance_id), o, "instance_id");
        copy_str(c->boot_id, sizeof(c->boot_id), o, "boot_id");
        c->hello_seq = json_object_object_get_ex(o, "seq", &v) ? (uint64_t) json_object_get_int64(v) : 0;
        c->sees_all = json_object_object_get_ex(o, "sees_all", &v) && json_object_get_boolean(v);
        json_object_put(o);
        return 0;
}

int pn_client_connect(PnClient **ret, const char *path) {
        PnClient *c = calloc(1, sizeof(*c));
        int r;

        if (!c)
                return -ENOMEM;
        c->fd = -1;
        if (!path)
                path = getenv("PROCNOTIFY_SOCKET");
        c->path = strdup(path && *path ? path : PN_CLIENT_DEFAULT_SOCKET);
        c->buf = malloc(PN_MAX_LINE);
        if (!c->path || !c->buf) {
                pn_client_free(c);
                return -ENOMEM;
        }
        r = client_open(c);
        if (r < 0) {
                pn_client_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

PnClient *pn_client_free(PnClient *c) {
        Line *l;

        if (!c)
                return NULL;
        safe_close(c->fd);
        while ((l = pending_pop(c)))
                free(l);
        for (size_t i = 0; i < c->n_requests; i++)
                free(c->requests[i]);
        free(c->requests);
        json_object_put(c->event);
        free(c->line);
        free(c->buf);
        free(c->path);
        free(c);
        return NULL;
}

int pn_client_get_fd(const PnClient *c) {
        return c->fd;
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
        return c->line;
}

void pn_client_set_reconnect(PnClient *c, bool reconnect) {
        c->reconnect = reconnect;
}

unsigned pn_client_get_reconnects(const PnClient *c) {
        return c->reconnects;
}

/* Remember a request that set up state, to replay it after a reconnect. */
static int remember(PnClient *c, const char *request) {
        if (c->n_requests >= MAX_REQUESTS)
                return -EUSERS;
        char **p = realloc(c->requests, (c->n_requests + 1) * sizeof(*p));
        if (!p)
                return -ENOMEM;
        c->requests = p;
        c->requests[c->n_requests] = strdup(request);
        if (!c->requests[c->n_requests])
                return -ENOMEM;
        c->n_requests++;
        return 0;
}

static bool is_stateful_request(const char *request) {
        struct json_object *o = json_tokener_parse(request), *op;
        bool r = o && json_object_object_get_ex(o, "op", &op) &&
                 json_object_is_type(op, json_type_string) &&
                 streq(json_object_get_string(op), "subscribe");
        json_object_put(o);
        return r;
}

int pn_client_request(PnClient *c, const char *request_json, char **ret_reply) {
        int r = transact(c, request_json, ret_reply);
        if (r == 0 && is_stateful_request(request_json))
                (void) remember(c, request_json);
        return r;
}

int pn_client_subscribe(PnClient *c, const char *const *events, const char *match_json,
                        bool threads, uint64_t *ret_id) {
        struct json_object *req = json_object_new_object(), *ev = NULL, *match = NULL;
        char *reply = NULL;
        int r;

        if (!req)
                return -ENOMEM;
        json_object_object_add(req, "op", json_object_new_string("subscribe"));
        if (events) {
                ev = json_object_new_array();
                for (size_t i = 0; events[i]; i++)
                        json_object_array_add(ev, json_object_new_string(events[i]));
                json_object_object_add(req, "events", ev);
        }
        if (match_json) {
                match = json_tokener_parse(match_json);
                if (!match || !json_object_is_type(match, json_type_object)) {
                        json_object_put(match);
                        json_object_put(req);
                        snprintf(c->error_code, sizeof(c->error_code), "%s", PN_ERR_INVALID_FILTER);
                        snprintf(c->error_message, sizeof(c->error_message),
                                 "the match is not a JSON object");
                        return -EINVAL;
                }
                json_object_object_add(req, "match", match);
        }
        if (threads)
                json_object_object_add(req, "threads", json_object_new_boolean(true));

        const char *text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
        r = transact(c, text, &reply);
        if (r == 0) {
                (void) remember(c, text);
                struct json_object *o = json_tokener_parse(reply), *id;
                if (ret_id)
                        *ret_id = o && json_object_object_get_ex(o, "id", &id)
                                          ? (uint64_t) json_object_get_int64(id) : 0;
                json_object_put(o);
        }
        free(reply);
        json_object_put(req);
        return r;
}

int pn_client_unsubscribe(PnClient *c, uint64_t id) {
        char req[96];
        snprintf(req, sizeof(req), "{\"op\":\"unsubscribe\",\"id\":%llu}", (unsigned long long) id);
        return transact(c, req, NULL);
}

int pn_client_ping(PnClient *c, uint64_t *ret_seq) {
        char *reply = NULL;
        int r = transact(c, "{\"op\":\"ping\"}", &reply);
        if (r == 0 && ret_seq) {
                struct json_object *o = json_tokener_parse(reply), *v;
                *ret_seq = o && json_object_object_get_ex(o, "seq", &v) ? (uint64_t) json_object_get_int64(v) : 0;
                json_object_put(o);
        }
        free(reply);
        return r;
}

/* Re-connect (until deadline) and replay the subscriptions. */
static int client_reconnect(PnClient *c, int64_t deadline) {
        int delay = 100;
        Line *l;

        c->fd = safe_close(c->fd);
        while ((l = pending_pop(c)))
                free(l);
        for (;;) {
                int r = client_open(c);
                if (r == 0)
                        break;
                int left = remaining(deadline);
                if (left == 0)
                        return -ECONNRESET;
                struct timespec ts = { 0, (long) MIN(delay, left >= 0 ? left : delay) * 1000000L };
                nanosleep(&ts, NULL);
                delay = MIN(delay * 2, 2000);
        }
        for (size_t i = 0; i < c->n_requests; i++) {
                int r = transact(c, c->requests[i], NULL);
                if (r < 0)
                        return r;
        }
        c->reconnects++;
        c->report_restart = true;
        return 0;
}

int pn_client_next(PnClient *c, PnEvent *ret, int timeout_ms) {
        int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;

        for (;;) {
                Line *l = NULL;
                int r;

                if (c->report_restart) {
                        /* The gap between two broker instances (or two
                         * connections) is not known: say so before going on. */
                        c->report_restart = false;
                        memset(ret, 0, sizeof(*ret));
                        ret->type = PN_EVENT_OVERRUN;
                        ret->overrun.where = PN_OVERRUN_RESTART;
                        struct timespec ts;
                        clock_gettime(CLOCK_MONOTONIC, &ts);
                        ret->ts_ns = (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
                        free(c->line);
                        c->line = strdup("{\"type\":\"overrun\",\"lost\":0,\"where\":\"restart\"}");
                        return 1;
                }
                l = pending_pop(c);
                if (!l) {
                        r = read_line(c, deadline, &l);
                        if (r == -ECONNRESET && c->reconnect) {
                                r = client_reconnect(c, deadline);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                        if (r <= 0)
                                return r;
                }
                struct json_object *o = parse_line(l);
                if (!o || event_json_parse(o, ret) < 0) {
                        /* Not an event (a stray reply, or garbage): skip it. */
                        json_object_put(o);
                        free(l);
                        continue;
                }
                json_object_put(c->event);
                c->event = o;
                free(c->line);
                c->line = strndup(l->data, l->len);
                free(l);
                return 1;
        }
}
