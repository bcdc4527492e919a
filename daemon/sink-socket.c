/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SinkSocket's connections, a framer: accept clients, read their lines
 * (served by sink-socket-requests.c), format events as lines and queue and
 * write bytes; which client gets what (and what it lost) the Subscriber of
 * each client decides (subscriber.h). See sink-socket.h.
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
#include "sink-socket-internal.h"

#define READ_CHUNK PN_MAX_LINE
#define READS_PER_WAKEUP 16
#define ACCEPTS_PER_WAKEUP 64
/* A client's queue starts small and, once written out, is kept only up to
 * OUT_KEEP_BYTES: a thousand idle clients cost a thousand small buffers, not
 * the high-water mark of their last burst. */
#define OUT_FIRST_BYTES 1024u
#define OUT_KEEP_BYTES (4u << 10)
#define MAX_PEER_GROUPS 256
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

/* ev is not delivered to c: count it for c's next overrun report. */
static void client_drop_event(Client *c, const PnEvent *ev) {
        subscriber_lose(&c->sub, 1, ev->seq, ev->seq);
        c->sink->stats.events_lost++;
}

/* Queue ev's line for c, or drop it (counted) as the subscriber's loss
 * rules say; the line is formatted once per event for all clients. */
static void client_queue_event(Client *c, const PnEvent *ev, bool *formatted) {
        SinkSocket *s = c->sink;
        uint64_t cap = s->opt.queue_bytes;

        if (!*formatted) {
                jsonbuf_reset(&s->line);
                event_json_format(&s->line, ev);
                *formatted = true;
        }
        if (jsonbuf_failed(&s->line)) {
                client_drop_event(c, ev); /* out of memory formatting it */
                return;
        }
        if (subscriber_loss_due(&c->sub, ev, client_queued(c), cap))
                client_report_lost(c);
        if (subscriber_admit(&c->sub, ev, client_queued(c), s->line.len, cap) == SUBSCRIBER_DROP) {
                s->stats.events_lost++;
                return;
        }
        if (client_append(c, s->line.data, s->line.len) == 0)
                s->stats.events_queued++;
        else
                client_drop_event(c, ev); /* out of memory: lost, but not silently */
}

static void sink_socket_on_event(const PnEvent *ev, void *userdata) {
        SinkSocket *s = userdata;
        PeerSignalCounts n = { &s->stats.signals_sent, &s->stats.signals_failed,
                               &s->stats.signals_withheld };
        bool formatted = false;

        for (Client *c = s->clients; c; c = c->next) {
                SubscriberMatch m;
                FollowReport r;
                int sig;

                if (c->sub.n_subs == 0 || c->closing)
                        continue;
                subscriber_match(&c->sub, ev, &s->ctx.filter, &m);
                /* The signal first, so that the subscriber can act before it
                 * reads the line; told once when one is withheld. */
                sig = m.sigmask ? subscriber_send_signals(&c->sub, m.sigmask, ev, &n) : 0;
                if (sig > 0) {
                        reply_signal_withheld(&s->reply, sig, c->sub.creds.pid, ev->seq, ev->ts_ns,
                                              ev->time_ns);
                        sink_socket_client_reply(c);
                }
                if (m.deliver)
                        client_queue_event(c, ev, &formatted);
                while (m.follow_changed && subscriber_next_follow_report(&c->sub, ev, &m, &r, NULL) > 0) {
                        reply_follow(&s->reply, &r);
                        sink_socket_client_reply(c);
                }
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
                if (!subscriber_loss_due_before_reply(&c->sub) || c->closing)
                        break;
                client_report_lost(c);
                if (subscriber_loss_due_before_reply(&c->sub))
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

static void client_line_too_long(Client *c) {
        char msg[96];
        snprintf(msg, sizeof(msg), "line longer than %d bytes; closing the connection",
                 PN_MAX_LINE - 1);
        c->sink->stats.bad_requests++;
        sink_socket_client_error(c, PN_ERR_LINE_TOO_LONG, msg);
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
                        sink_socket_client_handle_line(c, data, take); /* the common case: no copy */
                } else {
                        char *p = realloc(c->in, c->in_len + take + 1);
                        if (!p) {
                                sink_socket_client_error(c, PN_ERR_INTERNAL, "out of memory");
                                c->closing = true;
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

void sink_socket_client_resume(Client *c) {
        _cleanup_free_ char *rest = TAKE_PTR(c->in);
        size_t n = c->in_len;

        c->in_len = 0;
        client_consume(c, rest, n);
        client_update_events(c);
        (void) client_flush(c);
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
        c->accepted_ns = peer_boottime_now();
        c->owner = SINK_OWNER_SOCKET | ++s->next_owner;
        PeerCreds creds;
        policy_peer_init(s->ctx.policy, &creds, cred.uid, cred.gid, cred.pid, groups, glen / sizeof(gid_t));
        subscriber_init(&c->sub, &creds, s->ctx.limits, NULL);
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

void sink_socket_set_options(SinkSocket *s, const SinkSocketOptions *o) {
        s->opt = *o;
}

const SinkSocketStats *sink_socket_get_stats(SinkSocket *s) {
        return &s->stats;
}
