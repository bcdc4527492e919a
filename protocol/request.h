/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Request: one client line of protocol v1, parsed and validated. Every way a
 * line can be wrong maps to a stable error code (PROTOCOL.md, "Errors") and a
 * message saying what exactly is wrong. Pure: no I/O, no logging.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "filter.h"

#define PN_PROTOCOL_VERSION 1
#define PN_MAX_LINE 65536          /* bytes per line, newline included */
#define PN_MAX_JSON_DEPTH 16

/* Stable error codes (the "code" member of error replies). */
#define PN_ERR_INVALID_JSON "invalid-json"
#define PN_ERR_INVALID_REQUEST "invalid-request"
#define PN_ERR_UNKNOWN_OP "unknown-op"
#define PN_ERR_INVALID_FILTER "invalid-filter"
#define PN_ERR_LINE_TOO_LONG "line-too-long"
#define PN_ERR_LIMIT_EXCEEDED "limit-exceeded"
#define PN_ERR_NOT_FOUND "not-found"
#define PN_ERR_ACCESS_DENIED "access-denied"
#define PN_ERR_INTERNAL "internal"
#define PN_ERR_BUSY "busy"

typedef struct ProtoError {
        const char *code;  /* one of PN_ERR_* */
        char message[256];
} ProtoError;

typedef enum RequestOp {
        REQUEST_SUBSCRIBE,
        REQUEST_UNSUBSCRIBE,
        REQUEST_PING,
        REQUEST_STATUS,
        REQUEST_WATCH,
        REQUEST_UNWATCH,
        _REQUEST_OP_MAX,
        _REQUEST_OP_INVALID = -1,
} RequestOp;

typedef struct Request {
        RequestOp op;
        struct json_object *root;  /* the parsed line, owned */
        union {
                struct {
                        Filter *filter;  /* owned */
                        int signal;      /* to send the subscriber per matching event; 0: none */
                } subscribe;
                struct {
                        uint64_t id;
                } unsubscribe;
                struct {
                        pid_t pid;       /* > 0 */
                        bool stop;       /* also group-stop/continue, through ptrace */
                } watch;                 /* watch and unwatch (stop unused) */
        };
} Request;

/*
 * Parse one line (without its newline). On success returns 0 and fills
 * *ret, to be released with request_done(). On a malformed line returns
 * -EINVAL and fills *err. -ENOMEM on allocation failure.
 */
int request_parse(Request *ret, const char *line, size_t len, ProtoError *err);
void request_done(Request *r);

const char *request_op_to_string(RequestOp op);

/*
 * The "signal" of a subscribe: a name ("SIGUSR1", "USR1", any case;
 * "SIGRTMIN+N", "SIGRTMAX-N") or a number from 1 to SIGRTMAX, not SIGKILL
 * or SIGSTOP. Returns 0 and the number in *ret, or -EINVAL with a reason in
 * error. Shared with the D-Bus sink.
 */
int request_parse_signal(struct json_object *o, int *ret, char *error, size_t size);
