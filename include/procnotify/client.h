/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libprocnotify: a client of procnotifyd's JSON socket (protocol v1,
 * PROTOCOL.md) for C programs. pkg-config: libprocnotify.
 *
 *     PnClient *c = NULL;
 *     const PnEvent *ev;
 *     const char *const events[] = { "predump", "exit", NULL };
 *     int r;
 *
 *     r = pn_client_connect(&c, NULL);
 *     if (r < 0) …
 *     r = pn_client_subscribe(c, events, "{\"comm\":\"bfdd\"}", false, NULL);
 *     if (r < 0) …  (pn_client_get_error_message(c) says why)
 *     while ((r = pn_client_next(c, &ev, -1)) > 0)
 *             if (pn_event_get_type(ev) == PN_EVENT_PREDUMP ||
 *                 pn_event_get_type(ev) == PN_EVENT_OVERRUN)
 *                     failover(pn_event_get_tgid(ev));
 *     c = pn_client_free(c);
 *
 * Contracts common to every function:
 *   - a negative errno on failure, 0 (or a documented positive value) on
 *     success; nothing is printed or logged, and nothing exits;
 *   - every buffer is bounded: a line is at most PN_CLIENT_MAX_LINE bytes, and
 *     events parked while a request waits for its reply are bounded too (see
 *     pn_client_next());
 *   - a PnClient is not thread-safe: use one per thread, or lock around it;
 *   - the socket is non-blocking and close-on-exec, and writes never raise
 *     SIGPIPE.
 *
 * Broker errors: when the broker answers a request with an "error" reply, the
 * call returns
 *     -EINVAL     invalid-filter, invalid-request, invalid-json, unknown-op,
 *                 or a code this library does not know;
 *     -EUSERS     limit-exceeded (too many subscriptions or connections);
 *     -EACCES     access-denied;
 *     -ENOENT     not-found (unsubscribe of an unknown id);
 *     -EMSGSIZE   line-too-long (the broker then closes the connection);
 *     -ENOMEM     internal (the broker ran out of memory);
 * and pn_client_get_error_code()/pn_client_get_error_message() return what the
 * broker said. Any other failure leaves both "".
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "procnotify/event-types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct PnClient PnClient;

/* The socket used when no path is given and $PROCNOTIFY_SOCKET is not set. */
#define PN_CLIENT_DEFAULT_SOCKET "/run/procnotify/events.sock"
/* The longest line of the protocol, newline included. */
#define PN_CLIENT_MAX_LINE 65536

/*
 * Allocate a client for the broker at path (NULL or "": $PROCNOTIFY_SOCKET if
 * set and not empty, else PN_CLIENT_DEFAULT_SOCKET). No I/O: call
 * pn_client_open() next. Returns 0, -ENAMETOOLONG if the path does not fit a
 * socket address, or -ENOMEM.
 */
int pn_client_new(PnClient **ret, const char *path);

/*
 * Connect and read the broker's hello, waiting at most 5 s in all. If this
 * client was connected before, its subscriptions are then made again and an
 * overrun with where PN_OVERRUN_RESTART is queued for pn_client_next() (see
 * pn_client_set_reconnect(), which does this by itself). Returns 0, or:
 *     -ENOENT, -ECONNREFUSED  no broker listens at the path;
 *     -ETIMEDOUT              no hello within 5 s (backlog full, or a hung broker);
 *     -EPROTO                 the peer does not speak protocol v1;
 *     -EUSERS                 the broker refused the connection (MaxClients,
 *                             MaxClientsPerUser): the error getters say which;
 *     -EISCONN                already connected;
 *     a broker error          a subscription was refused on the new connection;
 *     another -errno.
 * On failure the client stays valid (for the error getters, or another try).
 */
int pn_client_open(PnClient *c);

/* pn_client_new() and pn_client_open() in one: on failure *ret is untouched
 * and nothing is left allocated. */
int pn_client_connect(PnClient **ret, const char *path);

/* Close the connection and free everything. Accepts NULL; returns NULL. */
PnClient *pn_client_free(PnClient *c);

/* The socket path this client connects to; valid as long as the client. */
const char *pn_client_get_path(const PnClient *c);

/*
 * The socket's file descriptor for the caller's own poll loop (POLLIN), or -1
 * while not connected. It changes after a reconnect.
 *
 * Readable means new input. But input may already be buffered, or parked by
 * a request (subscribe, ping, …) that read events while waiting for its
 * reply, without the descriptor being readable: before every poll(), call
 * pn_client_next(c, &ev, 0) until it returns 0.
 */
int pn_client_get_fd(const PnClient *c);

/* What the broker said in its hello. Strings live as long as the client (a
 * reconnect replaces them); "" or 0 until connected. */
int pn_client_get_protocol(const PnClient *c);
const char *pn_client_get_version(const PnClient *c);
const char *pn_client_get_instance_id(const PnClient *c); /* changes when the broker restarts */
const char *pn_client_get_boot_id(const PnClient *c);
uint64_t pn_client_get_hello_seq(const PnClient *c);      /* seq published before we connected */
bool pn_client_get_sees_all(const PnClient *c);           /* policy shows us every process */

/*
 * Subscribe to events of the types named in events (a NULL-terminated array
 * of names such as "exit"; NULL for all types) of the processes that match
 * match_json (the JSON text of a "match" object, PROTOCOL.md; NULL for all),
 * with per-thread events if threads. Waits (at most 10 s) for the broker's
 * answer; events that arrive meanwhile are kept for pn_client_next().
 *
 * Returns 0 and, if ret_id is not NULL, an id for pn_client_unsubscribe().
 * The id is the library's, stable across reconnects; it is not necessarily
 * the broker's. On a refusal, the broker errors above (an unknown event type
 * or a bad match is -EINVAL with code "invalid-filter"); -EINVAL also, with
 * code "invalid-filter", if match_json is not a JSON object. -ETIMEDOUT if the
 * broker did not answer (the connection is closed then: a late reply could
 * not be told from the next one), -ECONNRESET if the connection is lost,
 * -ENOTCONN if it was never made.
 */
int pn_client_subscribe(PnClient *c, const char *const *events, const char *match_json,
                        bool threads, uint64_t *ret_id);

/* End the subscription id. Returns 0, -ENOENT if this client has no such
 * subscription, or an error as for pn_client_subscribe(). While the
 * connection is lost it only forgets the subscription, and returns 0. */
int pn_client_unsubscribe(PnClient *c, uint64_t id);

/*
 * Subscribe with a whole "subscribe" request (the JSON text of an object;
 * its "op" may be left out), for the members pn_client_subscribe() has no
 * argument for: "signal", "lines". Remembered and replayed after a reconnect
 * like any subscription. Returns as pn_client_subscribe(); -EINVAL with code
 * "invalid-request" if the text is not a JSON object or its "op" is another.
 */
int pn_client_subscribe_request(PnClient *c, const char *request_json, uint64_t *ret_id);

/*
 * Round trip with the broker. Since replies come in order, when it returns 0
 * every request sent before has taken effect: a test may start the process
 * it wants to see. *ret_seq (may be NULL) is the last seq the broker
 * published. Errors as for pn_client_subscribe().
 */
int pn_client_ping(PnClient *c, uint64_t *ret_seq);

/*
 * Send one request (a JSON object text without newline, e.g.
 * {"op":"status"}) and wait for its reply, for ops this header has no wrapper
 * for. Returns 0 and, if ret_reply is not NULL, the reply line (malloc'd, the
 * caller frees it), or an error as for pn_client_subscribe(). The ops
 * "subscribe" and "unsubscribe" are refused (-EINVAL, no code): the library
 * must see them to replay subscriptions after a reconnect; use the wrappers.
 */
int pn_client_request(PnClient *c, const char *request_json, char **ret_reply);

/*
 * The next event, waiting at most timeout_ms (0: do not wait; -1: forever).
 * Returns 1 with *ret pointing to the event, which the library owns: it,
 * its strings and pn_client_get_line() stay valid until the next
 * pn_client_next() or pn_client_free(). pn_event_get_time_ns() is the
 * event's "time". Returns 0 on timeout; -EINTR if a signal interrupted the
 * wait; -ECONNRESET once the broker closed the connection and every event
 * received before was returned (unless reconnecting is on); -ENOTCONN if the
 * connection was never made; -EMSGSIZE if the broker sent a line longer than
 * the protocol allows (the connection is closed); another -errno.
 *
 * Messages this library does not know (event types of a newer broker) are
 * skipped. Overruns always come through, whatever the subscriptions: if
 * more events arrived during one request than the library parks (4 MiB or
 * 16384 events), the excess is dropped and reported as an overrun with where
 * PN_OVERRUN_CLIENT, as the broker reports its own queue's losses.
 */
int pn_client_next(PnClient *c, const PnEvent **ret, int timeout_ms);

/*
 * A "follow" report (PROTOCOL.md, "Following a service"): the main process
 * of a followed service changed. pn_client_next() returns reports only after
 * pn_client_set_follow_reports(c, true), as a PnEvent of type
 * PN_REPORT_FOLLOW (ts_ns and time_ns those of the causing event, pid and
 * tgid the new main pid, 0 once the service ended, uid UINT32_MAX); pn_client_get_follow()
 * then gives the rest. Off by default: programs that know only events never
 * see a type they do not know.
 */
typedef enum PnFollowReason {
        PN_FOLLOW_MAIN_EXITED, /* the main exited; main_pid is its successor */
        PN_FOLLOW_ENDED,       /* no process of the service is left; main_pid is 0 */
        PN_FOLLOW_LIMIT,       /* the set was full: a new process is not followed */
        _PN_FOLLOW_REASON_MAX,
        _PN_FOLLOW_REASON_INVALID = -1,
} PnFollowReason;

typedef struct PnFollowReport {
        uint64_t subscription;   /* the id pn_client_subscribe*() returned */
        PnFollowReason reason;
        pid_t main_pid;          /* the main process now; 0 once ended */
        pid_t previous_main_pid;
        unsigned candidates;     /* how many could have become the main */
        unsigned members;        /* processes followed now */
        uint64_t cause_seq;      /* seq of the event that caused the report */
} PnFollowReport;

void pn_client_set_follow_reports(PnClient *c, bool on);
/* The report pn_client_next() returned last: 0, or -ENOENT if that was no
 * report (or none was returned yet). */
int pn_client_get_follow(const PnClient *c, PnFollowReport *ret);
/* "main-exited", "ended", "limit"; NULL if invalid. */
const char *pn_follow_reason_to_string(PnFollowReason r);

/* The JSON line (no newline) of the event pn_client_next() returned last,
 * or NULL if none. Synthesised overruns have a line of their own. */
const char *pn_client_get_line(const PnClient *c);

/*
 * Reconnect when the connection is lost: pn_client_next() then tries again
 * (at once, then after 100 ms, doubling up to 2 s, within its own timeout;
 * it returns 0 while the broker is away; one attempt may take up to the 5 s
 * of pn_client_open() if a broker accepts but does not answer), replays
 * every subscription that is
 * still active, and returns an overrun event with where PN_OVERRUN_RESTART
 * before any event of the new connection: what happened in between is not
 * known, so lost is 0 there and means "unknown". If the new broker refuses
 * a subscription, pn_client_next() returns its error, closes the connection
 * and tries again on the next call. Off by default; synchronous calls
 * (subscribe, ping, …) never reconnect and return -ECONNRESET meanwhile.
 */
void pn_client_set_reconnect(PnClient *c, bool reconnect);

/* How many times the client reconnected. */
unsigned pn_client_get_reconnects(const PnClient *c);

/*
 * Non-blocking use, for callers with an event loop of their own (sd-event,
 * GLib, poll): nothing below waits. Watch pn_client_get_fd() for
 * pn_client_get_events(), call pn_client_process() when it is ready, then
 * pn_client_next(c, &ev, 0) until it returns 0; recompute the events after
 * every call (they change when requests are queued or the socket is
 * replaced). A request's reply comes to its callback, from inside
 * pn_client_process() or pn_client_next():
 *
 *     result  0, or a negative errno: the broker errors above (the error
 *             getters hold the broker's code and message during the call),
 *             -ECONNRESET/-EMSGSIZE/-EPROTO if the connection was lost first,
 *             -ECANCELED from pn_client_free();
 *     reply   the reply's JSON line (no newline) on success, else NULL;
 *             valid during the call only.
 *
 * Every callback is called exactly once. It may call any function of the
 * client but pn_client_free(); from pn_client_free() (result -ECANCELED)
 * it must only release its userdata. Timeouts are the caller's: the library
 * has no timer; a caller that gives up frees the client (or makes a new
 * one). The blocking calls are the same requests followed by a wait.
 */
typedef enum PnClientState {
        PN_CLIENT_DISCONNECTED, /* no connection (never made, lost, or refused) */
        PN_CLIENT_CONNECTING,   /* connected, waiting for the hello (and replays) */
        PN_CLIENT_READY,        /* the hello came, and every replayed subscription was accepted */
} PnClientState;

typedef void (*PnClientCallback)(PnClient *c, int result, const char *reply, void *userdata);

/*
 * Start connecting. Returns 0 with the socket connected (pn_client_get_fd()
 * valid; the state is PN_CLIENT_CONNECTING); callback (may be NULL) is
 * called once the hello came and, on a reconnect, every subscription was
 * made again (state PN_CLIENT_READY, result 0), or with the error that
 * closed the connection (-EPROTO, -EUSERS, a refused replay's error, …).
 * Returns -EAGAIN if the listener's backlog is full (try again later),
 * -ENOENT or -ECONNREFUSED if no broker listens, -EISCONN, another -errno.
 * Requests may be queued at once: they are answered after the hello.
 */
int pn_client_open_async(PnClient *c, PnClientCallback callback, void *userdata);

/* The state of the connection. */
PnClientState pn_client_get_state(const PnClient *c);

/* The poll events to wait for on pn_client_get_fd(): POLLIN, with POLLOUT
 * while requests wait to be written; 0 while not connected. */
int pn_client_get_events(const PnClient *c);

/*
 * Do what the descriptor allows, without waiting: write queued requests,
 * read the hello and replies (and call their callbacks), parking events met
 * on the way for pn_client_next(). Returns 0, or the error that closed the
 * connection (every pending callback has been called with it), -ENOTCONN
 * or -ECONNRESET when not connected.
 */
int pn_client_process(PnClient *c);

/*
 * The requests above, without waiting: 0 once queued (callback, which may
 * be NULL, gets the reply), or an error found at once: not connected,
 * -EINVAL with the same codes as the blocking call, -EUSERS for more than
 * 4096 subscriptions, -ENOBUFS when too many requests wait already, -ENOMEM.
 * The subscribe calls return the subscription's id at once; it is valid
 * (and replayed after a reconnect) only once its callback got 0, and
 * pn_client_unsubscribe*() return -EBUSY until then.
 */
int pn_client_subscribe_async(PnClient *c, const char *const *events, const char *match_json,
                              bool threads, uint64_t *ret_id, PnClientCallback callback,
                              void *userdata);
int pn_client_subscribe_request_async(PnClient *c, const char *request_json, uint64_t *ret_id,
                                      PnClientCallback callback, void *userdata);
int pn_client_unsubscribe_async(PnClient *c, uint64_t id, PnClientCallback callback, void *userdata);
int pn_client_request_async(PnClient *c, const char *request_json, PnClientCallback callback,
                            void *userdata);

/* The broker's error reply to the last request ("invalid-filter", …, and a
 * message for humans), or "" if the last request got no error reply. */
const char *pn_client_get_error_code(const PnClient *c);
const char *pn_client_get_error_message(const PnClient *c);

#ifdef __cplusplus
}
#endif
