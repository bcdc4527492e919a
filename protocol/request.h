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
#define PN_ERR_SPAWN_FAILED "spawn-failed"   /* run: the child could not be set up or exec'd */

/* Bounds of a run request (PROTOCOL.md, "run"). */
#define RUN_MAX_ARGS 256          /* argv entries */
#define RUN_MAX_ENV 64            /* env entries */
#define RUN_MAX_STRING 4096       /* bytes per argv or env entry */
#define RUN_MAX_TOTAL 32768       /* bytes of argv and env together */
#define RUN_MAX_NAME 64           /* bytes of a name or user */

typedef struct ProtoError {
        const char *code;  /* one of PN_ERR_* */
        char message[256];
} ProtoError;

typedef enum RequestOp {
        REQUEST_SUBSCRIBE,
        REQUEST_UNSUBSCRIBE,
        REQUEST_PING,
        REQUEST_STATUS,
        REQUEST_RUN,      /* start a supervised child of the broker */
        REQUEST_CHILDREN, /* list the supervised children */
        REQUEST_KILL,     /* signal a supervised child */
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
                        bool no_lines;   /* "lines": false: the signal only, no event lines */
                } subscribe;
                struct {
                        uint64_t id;
                } unsubscribe;
                struct {
                        /* Strings point into root; argv and env are owned
                         * NULL-terminated arrays. */
                        const char **argv;
                        size_t n_argv;
                        const char **env;  /* "NAME=value" entries */
                        size_t n_env;
                        const char *name;  /* NULL: from argv[0] */
                        const char *user;  /* NULL: the requester's own uid */
                        int64_t uid;       /* -1: user given by name, or none */
                        bool follow;       /* subscribe the requester to the child's events */
                } run;
                struct {
                        pid_t pid;         /* 0: by name */
                        const char *name;
                        int signal;
                } kill;
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
/*
 * The same for a request already in JSON (the D-Bus sink builds one from a
 * method call's arguments, so that both sinks check requests alike). Takes
 * root, also on failure.
 */
int request_parse_object(Request *ret, struct json_object *root, ProtoError *err);
void request_done(Request *r);

const char *request_op_to_string(RequestOp op);

/* Is s a valid child name ([A-Za-z0-9_.@-], 1..RUN_MAX_NAME bytes, not
 * starting with '.' or '-')? It names log files, so no '/'. */
bool request_run_name_is_valid(const char *s);
/*
 * The "signal" of a subscribe: a name ("SIGUSR1", "USR1", any case;
 * "SIGRTMIN+N", "SIGRTMAX-N") or a number from 1 to SIGRTMAX, not SIGKILL
 * or SIGSTOP. Returns 0 and the number in *ret, or -EINVAL with a reason in
 * error. Shared with the D-Bus sink.
 */
int request_parse_signal(struct json_object *o, int *ret, char *error, size_t size);
