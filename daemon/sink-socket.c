/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SinkSocket's listening socket and the sink itself: bind the socket (or
 * take it from socket activation), accept clients within the limits (or
 * refuse them, with the reason), pause accepting while descriptors are
 * short, register with the SubscriberSet, and the sink's lifetime, options
 * and statistics. A client, once accepted, is sink-socket-client.c's.
 * See sink-socket.h.
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

#include "common/macro.h"
#include "fdreserve.h"
#include "protocol/reply.h"
#include "sink-socket-internal.h"
#include "subscriber-set.h"

#define ACCEPTS_PER_WAKEUP 64
#define MAX_PEER_GROUPS 256

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

        sink_socket_client_new(s, fd, &cred, groups, glen / sizeof(gid_t));
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

/* Accepting again: a descriptor was freed, or it is time to try. */
void sink_socket_accept_resume(SinkSocket *s) {
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
        s->scratch = malloc(SINK_SOCKET_READ_CHUNK);
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
        /* The SubscriberSet says what each client gets; the dispatcher says
         * when a batch ended, time to write. */
        subscriber_set_add_sink(ctx->subscribers, &s->subscriber_sink, &sink_socket_client_ops,
                                o->queue_bytes, &s->stats.events_lost,
                                (PeerSignalCounts){ &s->stats.signals_sent, &s->stats.signals_failed,
                                                    &s->stats.signals_withheld });
        r = dispatcher_watch_add(ctx->dispatcher, NULL, sink_socket_flush, s);
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
                sink_socket_client_free(s->clients);
        if (s->watch_id > 0)
                dispatcher_watch_remove(s->ctx.dispatcher, s->watch_id);
        if (s->subscriber_sink.set)
                subscriber_set_remove_sink(s->subscriber_sink.set, &s->subscriber_sink);
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
        s->subscriber_sink.cap = o->queue_bytes;
}

const SinkSocketStats *sink_socket_get_stats(SinkSocket *s) {
        return &s->stats;
}
