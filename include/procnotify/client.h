/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libprocnotify: a client of procnotifyd's JSON socket (protocol v1,
 * PROTOCOL.md) for C programs.
 *
 *     PnClient *c;
 *     PnEvent ev;
 *     const char *events[] = { "predump", "exit", NULL };
 *     if (pn_client_connect(&c, NULL) < 0) …
 *     if (pn_client_subscribe(c, events, "{\"comm\":\"bfdd\"}", false, NULL) < 0) …
 *     while (pn_client_next(c, &ev, -1) > 0)
 *             if (ev.type == PN_EVENT_PREDUMP) failover();
 *     pn_client_free(c);
 *
 * The library never prints, logs or exits. Functions return 0 (or a
 * documented positive value) on success and a negative errno on failure.
 * A PnClient is not thread-safe: use one per thread, or lock around it.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "procnotify/event.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct PnClient PnClient;

/* The socket used when path is NULL and $PROCNOTIFY_SOCKET is not set. */
#define PN_CLIENT_DEFAULT_SOCKET "/run/procnotify/events.sock"

/*
 * Connect to the broker at path (NULL: $PROCNOTIFY_SOCKET, else
 * PN_CLIENT_DEFAULT_SOCKET) and read its hello (waiting at most 5 s).
 * Returns 0, -ENOENT/-ECONNREFUSED when no broker listens, -ETIMEDOUT,
 * -EPROTO when the peer does not speak protocol v1, or another -errno.
 */
int pn_client_connect(PnClient **ret, const char *path);

/* Close the connection and free everything. Accepts NULL; returns NULL. */
PnClient *pn_client_free(PnClient *c);

/* The socket's file descriptor, for the caller's own poll loop: readable
 * means pn_client_next(c, …, 0) may have an event. It changes after a
 * reconnect. */
int pn_client_get_fd(const PnClient *c);

/* What the broker said in its hello. Strings live as long as the client
 * (until a reconnect replaces them). */
const char *pn_client_get_version(const PnClient *c);
const char *pn_client_get_instance_id(const PnClient *c);
const char *pn_client_get_boot_id(const PnClient *c);
uint64_t pn_client_get_hello_seq(const PnClient *c);
bool pn_client_get_sees_all(const PnClient *c);

/*
 * Subscribe to events (a NULL-terminated array of type names; NULL for all)
 * of processes matching match_json (the JSON text of a "match" object, see
 * PROTOCOL.md; NULL for all), with per-thread events if threads. Waits for
 * the broker's answer; events that arrive meanwhile are kept for
 * pn_client_next(). On success returns 0 and the subscription id in
 * *ret_id (may be NULL).
 *
 * When the broker refuses, returns -EINVAL (invalid-filter, invalid-request),
 * -EUSERS (limit-exceeded) or -EACCES (access-denied), and
 * pn_client_get_error_code()/..._message() say what the broker said.
 * -EINVAL too if match_json is not a JSON object.
 */
int pn_client_subscribe(PnClient *c, const char *const *events, const char *match_json,
                        bool threads, uint64_t *ret_id);

int pn_client_unsubscribe(PnClient *c, uint64_t id);

/* Round trip: when it returns 0, every request sent before took effect.
 * *ret_seq (may be NULL) is the broker's last published seq. */
int pn_client_ping(PnClient *c, uint64_t *ret_seq);

/*
 * Send one request line (a JSON object text, without newline) and wait for
 * its reply. On success returns 0 and, if ret_reply is not NULL, the reply
 * line (malloc'd, the caller frees). An "error" reply returns a negative
 * errno as for pn_client_subscribe(). For ops this header has no wrapper
 * for (status, and those of newer brokers).
 */
int pn_client_request(PnClient *c, const char *request_json, char **ret_reply);

/*
 * The next event. Waits at most timeout_ms (0: do not wait, -1: forever).
 * Returns 1 with *ret filled (its strings stay valid until the next call),
 * 0 on timeout, -ECONNRESET when the broker closed the connection (unless
 * reconnecting is on), or another -errno.
 */
int pn_client_next(PnClient *c, PnEvent *ret, int timeout_ms);

/* The JSON line of the event pn_client_next() returned last (no newline). */
const char *pn_client_get_line(const PnClient *c);

/*
 * Reconnect when the connection is lost: pn_client_next() then retries
 * (every 100 ms up to every 2 s) until the broker is back or its timeout
 * runs out, replays every subscription made with pn_client_subscribe() and
 * pn_client_request(), and returns an overrun event with where
 * PN_OVERRUN_RESTART (lost is 0: the count is not known) before the first
 * event of the new connection. Off by default.
 */
void pn_client_set_reconnect(PnClient *c, bool reconnect);

/* How many times the client reconnected. */
unsigned pn_client_get_reconnects(const PnClient *c);

/* The broker's last error reply: its stable code ("invalid-filter", …) and
 * message; "" if none. */
const char *pn_client_get_error_code(const PnClient *c);
const char *pn_client_get_error_message(const PnClient *c);

#ifdef __cplusplus
}
#endif
