/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What sink-socket.c (the listening socket: bind, accept, the sink's
 * lifetime), sink-socket-client.c (a client's connection: read, frame,
 * queue, write) and sink-socket-requests.c (what a client asks: subscribe,
 * unsubscribe, ping, status, and the ops the broker serves) share. Not for
 * other files.
 */
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include "sink-socket.h"
#include "subscriber-set.h"
#include "subscriber.h"

/* Bytes read from a client at once. */
#define SINK_SOCKET_READ_CHUNK PN_MAX_LINE

typedef struct Client Client;
struct Client {
        SinkSocket *sink;
        Client *next, *prev;
        Client *dirty_next;
        bool dirty;
        sd_event_source *io;
        int fd;
        Subscriber sub;        /* credentials, subscriptions, signals, loss */
        uint64_t accepted_ns;  /* CLOCK_BOOTTIME at accept, to check a pid against */
        SinkOwner owner;

        char *in;           /* partial line carried between reads */
        size_t in_len;
        bool read_closed;   /* EOF from the peer, or we stopped reading for good */
        bool closing;       /* disconnect once the queue is flushed */

        char *out;
        size_t out_off, out_len, out_cap;

        uint64_t next_sub_id;

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
        int watch_id;             /* the flush hook at the end of a batch */
        SubscriberSink subscriber_sink; /* this sink as the SubscriberSet drives it */
        uint64_t next_owner;
        Client *clients;
        Client *dirty;
        JsonBuf line;             /* the event of seq line_seq, formatted once for all */
        uint64_t line_seq;
        JsonBuf reply;
        char *scratch;
};


/* --- sink-socket-client.c --- */

/* The framer of the clients, for the SubscriberSet. */
extern const SubscriberSinkOps sink_socket_client_ops;
/* Serve an accepted connection (fd taken) of a peer with these credentials
 * and groups: greeted with a hello. On failure fd is closed. */
void sink_socket_client_new(SinkSocket *s, int fd, const struct ucred *cred, const gid_t *groups,
                            size_t n_groups);
/* c goes: its subscriptions, what the broker holds for it, its fd. */
void sink_socket_client_free(Client *c);
/* The client is to be closed once its queue is flushed: it gets no more
 * events. */
static inline void sink_socket_client_close(Client *c) {
        c->closing = true;
        subscriber_close(&c->sub);
}
/* Write out every client with queued output (end of a batch, or the defer
 * source flush). */
void sink_socket_flush(void *userdata);
int sink_socket_on_flush(sd_event_source *src, void *userdata);

/* --- sink-socket.c --- */

/* Accepting again after a pause: a descriptor was freed. */
void sink_socket_accept_resume(SinkSocket *s);

/* --- sink-socket-requests.c --- */

/* Queue the reply in s->reply (one complete line), after the report of any
 * loss not told yet (subscriber_loss_due_before_reply()). */
void sink_socket_client_reply(Client *c);
void sink_socket_client_error(Client *c, const char *code, const char *message);
/* c's pending request was answered (c->slot dropped): serve what was read
 * meanwhile, read on, write. May free c. */
void sink_socket_client_resume(Client *c);
/* Serve one request line (without its newline). */
void sink_socket_client_handle_line(Client *c, const char *line, size_t len);
