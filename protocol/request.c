/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Request parsing; see request.h. json-c does the JSON (strict mode, UTF-8
 * validation, a depth limit); this file checks the shape of each op and
 * rejects unknown members, so that a typo ("evnets") is an error and not a
 * subscription to everything.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "common/macro.h"
#include "request.h"
#include "utf8.h"

typedef int (*RequestParseFn)(Request *r, ProtoError *err);

_printf_(3, 4) static int fail(ProtoError *err, const char *code, const char *fmt, ...) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
        return -EINVAL;
}

/* Every member of the request must be "op" or one of allowed (NULL-terminated). */
static int check_members(struct json_object *root, const char *const *allowed, ProtoError *err) {
        json_object_object_foreach(root, key, val) {
                (void) val;
                bool ok = streq(key, "op");
                for (size_t i = 0; !ok && allowed[i]; i++)
                        ok = streq(key, allowed[i]);
                if (!ok)
                        return fail(err, PN_ERR_INVALID_REQUEST, "unknown member \"%.*s\" in %s request",
                                    PN_UTF8_CUT(key, 64), json_object_get_string(json_object_object_get(root, "op")));
        }
        return 0;
}

static struct json_object *member(struct json_object *root, const char *key) {
        struct json_object *v = NULL;
        json_object_object_get_ex(root, key, &v);
        return v;
}

/* A signal name ("SIGUSR1", "USR1", any case; "SIGRTMIN+N", "SIGRTMAX-N") or
 * number from 1 to SIGRTMAX; subscribe and kill differ only in what they
 * refuse after. */
static int signal_from_json(struct json_object *o, int *ret, char *error, size_t size) {
        int sig = 0;

        if (json_object_is_type(o, json_type_int)) {
                int64_t n = json_object_get_int64(o);
                if (n < 1 || n > SIGRTMAX) {
                        snprintf(error, size, "\"signal\": %lld is not a signal number (1 to %d)",
                                 (long long) n, SIGRTMAX);
                        return -EINVAL;
                }
                sig = (int) n;
        } else if (json_object_is_type(o, json_type_string)) {
                const char *s = json_object_get_string(o);
                /* A name: digits in a string are not one. */
                if (*s < '0' || *s > '9')
                        sig = pn_signal_from_string(s);
                if (!sig) {
                        snprintf(error, size, "\"signal\": unknown signal \"%.*s\"", PN_UTF8_CUT(s, 32));
                        return -EINVAL;
                }
        } else {
                snprintf(error, size, "\"signal\" must be a signal name (\"SIGUSR1\") or number");
                return -EINVAL;
        }
        *ret = sig;
        return 0;
}

int request_parse_signal(struct json_object *o, int *ret, char *error, size_t size) {
        int sig, k = signal_from_json(o, &sig, error, size);
        if (k < 0)
                return k;
        /* Neither can be caught, blocked or waited for: they could carry no
         * event, only end or stop the subscriber. */
        if (sig == SIGKILL || sig == SIGSTOP) {
                snprintf(error, size, "\"signal\": %s cannot be caught; choose a signal the "
                         "subscriber can handle (SIGUSR1, SIGRTMIN+N, …)", sig == SIGKILL ? "SIGKILL" : "SIGSTOP");
                return -EINVAL;
        }
        *ret = sig;
        return 0;
}

static int parse_subscribe(Request *r, ProtoError *err) {
        static const char *const allowed[] = { "events", "match", "threads", "signal", "lines", NULL };
        char msg[sizeof(err->message)];
        struct json_object *sig, *lines;
        int k;

        k = check_members(r->root, allowed, err);
        if (k < 0)
                return k;
        sig = member(r->root, "signal");
        if (sig && request_parse_signal(sig, &r->subscribe.signal, msg, sizeof(msg)) < 0)
                return fail(err, PN_ERR_INVALID_REQUEST, "%s", msg);
        lines = member(r->root, "lines");
        if (lines && !json_object_is_type(lines, json_type_boolean))
                return fail(err, PN_ERR_INVALID_REQUEST, "\"lines\" must be true or false");
        r->subscribe.no_lines = lines && !json_object_get_boolean(lines);
        if (r->subscribe.no_lines && !r->subscribe.signal)
                return fail(err, PN_ERR_INVALID_REQUEST,
                            "\"lines\": false needs a \"signal\": the subscription would deliver nothing");
        k = filter_new_from_json(&r->subscribe.filter, member(r->root, "events"),
                                 member(r->root, "threads"), member(r->root, "match"), msg,
                                 sizeof(msg));
        if (k == -EINVAL)
                return fail(err, PN_ERR_INVALID_FILTER, "%s", msg);
        return k;
}

static int parse_unsubscribe(Request *r, ProtoError *err) {
        static const char *const allowed[] = { "id", NULL };
        struct json_object *id;
        int k = check_members(r->root, allowed, err);
        if (k < 0)
                return k;
        id = member(r->root, "id");
        if (!id || !json_object_is_type(id, json_type_int) || json_object_get_int64(id) <= 0)
                return fail(err, PN_ERR_INVALID_REQUEST,
                            "unsubscribe needs \"id\": the positive integer from \"subscribed\"");
        r->unsubscribe.id = (uint64_t) json_object_get_int64(id);
        return 0;
}

/* A string member value: UTF-8 was validated by the tokener; a NUL inside
 * (\u0000) cannot be passed to exec and is refused. */
static int get_string(struct json_object *v, const char *what, size_t max, const char **ret,
                      ProtoError *err) {
        size_t len;

        if (!json_object_is_type(v, json_type_string))
                return fail(err, PN_ERR_INVALID_REQUEST, "%s must be a string", what);
        len = (size_t) json_object_get_string_len(v);
        if (strlen(json_object_get_string(v)) != len)
                return fail(err, PN_ERR_INVALID_REQUEST, "%s contains a NUL character", what);
        if (len > max)
                return fail(err, PN_ERR_INVALID_REQUEST, "%s is longer than %zu bytes", what, max);
        *ret = json_object_get_string(v);
        return 0;
}

/* A JSON array of at most max strings into a NULL-terminated array. */
static int get_string_array(struct json_object *v, const char *what, size_t max, const char ***ret,
                            size_t *ret_n, size_t *total, ProtoError *err) {
        char name[48];
        const char **a;
        size_t n;

        if (!json_object_is_type(v, json_type_array))
                return fail(err, PN_ERR_INVALID_REQUEST, "\"%s\" must be an array of strings", what);
        n = json_object_array_length(v);
        if (n > max)
                return fail(err, PN_ERR_INVALID_REQUEST, "\"%s\" has %zu entries; at most %zu", what,
                            n, max);
        a = calloc(n + 1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                snprintf(name, sizeof(name), "\"%s\"[%zu]", what, i);
                int k = get_string(json_object_array_get_idx(v, i), name, RUN_MAX_STRING, &a[i], err);
                if (k < 0) {
                        free(a);
                        return k;
                }
                *total += strlen(a[i]) + 1;
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

bool request_run_name_is_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > RUN_MAX_NAME || s[0] == '.' || s[0] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@-", s[i]))
                        return false;
        return true;
}

static bool env_name_is_valid(const char *s, size_t n) {
        if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", s[i]))
                        return false;
        return true;
}

static int parse_run(Request *r, ProtoError *err) {
        static const char *const allowed[] = { "argv", "name", "user", "env", "follow", NULL };
        struct json_object *v;
        size_t total = 0;
        int k;

        r->run.uid = -1;
        k = check_members(r->root, allowed, err);
        if (k < 0)
                return k;
        v = member(r->root, "argv");
        if (!v)
                return fail(err, PN_ERR_INVALID_REQUEST, "run needs \"argv\": the command and its arguments");
        k = get_string_array(v, "argv", RUN_MAX_ARGS, &r->run.argv, &r->run.n_argv, &total, err);
        if (k < 0)
                return k;
        if (r->run.n_argv == 0)
                return fail(err, PN_ERR_INVALID_REQUEST, "\"argv\" is empty: it needs at least the command");
        if (r->run.argv[0][0] == 0)
                return fail(err, PN_ERR_INVALID_REQUEST, "\"argv\"[0] (the command) is empty");
        v = member(r->root, "env");
        if (v) {
                k = get_string_array(v, "env", RUN_MAX_ENV, &r->run.env, &r->run.n_env, &total, err);
                if (k < 0)
                        return k;
                for (size_t i = 0; i < r->run.n_env; i++) {
                        const char *eq = strchr(r->run.env[i], '=');
                        if (!eq || !env_name_is_valid(r->run.env[i], (size_t) (eq - r->run.env[i])))
                                return fail(err, PN_ERR_INVALID_REQUEST,
                                            "\"env\"[%zu] is not NAME=value with NAME of letters, "
                                            "digits and _", i);
                }
        }
        if (total > RUN_MAX_TOTAL)
                return fail(err, PN_ERR_INVALID_REQUEST,
                            "\"argv\" and \"env\" together are %zu bytes; at most %d", total,
                            RUN_MAX_TOTAL);
        v = member(r->root, "name");
        if (v) {
                k = get_string(v, "\"name\"", RUN_MAX_NAME, &r->run.name, err);
                if (k < 0)
                        return k;
                if (!request_run_name_is_valid(r->run.name))
                        return fail(err, PN_ERR_INVALID_REQUEST,
                                    "\"name\" must be 1-%d of A-Z a-z 0-9 _ . @ -, not starting with . or -",
                                    RUN_MAX_NAME);
        }
        v = member(r->root, "user");
        if (v && json_object_is_type(v, json_type_int)) {
                int64_t uid = json_object_get_int64(v);
                if (uid < 0 || uid >= UINT32_MAX)
                        return fail(err, PN_ERR_INVALID_REQUEST, "\"user\" uid out of range");
                r->run.uid = uid;
        } else if (v) {
                k = get_string(v, "\"user\" (a user name or uid)", RUN_MAX_NAME, &r->run.user, err);
                if (k < 0)
                        return k;
                if (r->run.user[0] == 0)
                        return fail(err, PN_ERR_INVALID_REQUEST, "\"user\" is empty");
        }
        v = member(r->root, "follow");
        if (v) {
                if (!json_object_is_type(v, json_type_boolean))
                        return fail(err, PN_ERR_INVALID_REQUEST, "\"follow\" must be true or false");
                r->run.follow = json_object_get_boolean(v);
        }
        return 0;
}

static int parse_kill(Request *r, ProtoError *err) {
        static const char *const allowed[] = { "pid", "name", "signal", NULL };
        struct json_object *pid, *name, *sig;
        int k = check_members(r->root, allowed, err);
        if (k < 0)
                return k;
        pid = member(r->root, "pid");
        name = member(r->root, "name");
        sig = member(r->root, "signal");
        if (!!pid == !!name)
                return fail(err, PN_ERR_INVALID_REQUEST,
                            "kill needs either \"pid\" or \"name\" of a supervised child");
        if (pid) {
                if (!json_object_is_type(pid, json_type_int) || json_object_get_int64(pid) <= 0 ||
                    json_object_get_int64(pid) > INT32_MAX)
                        return fail(err, PN_ERR_INVALID_REQUEST, "\"pid\" must be a positive integer");
                r->kill.pid = (pid_t) json_object_get_int64(pid);
        } else {
                k = get_string(name, "\"name\"", RUN_MAX_NAME, &r->kill.name, err);
                if (k < 0)
                        return k;
        }
        r->kill.signal = SIGTERM;
        if (sig) {
                char msg[160];
                /* Unlike a subscription's, SIGKILL and SIGSTOP are fine here. */
                if (signal_from_json(sig, &r->kill.signal, msg, sizeof(msg)) < 0)
                        return fail(err, PN_ERR_INVALID_REQUEST, "%s", msg);
        }
        return 0;
}

/* "pid": a positive integer that fits a pid_t. */
static int parse_pid(Request *r, ProtoError *err) {
        struct json_object *pid = member(r->root, "pid");
        const char *op = request_op_to_string(r->op);

        if (!pid || !json_object_is_type(pid, json_type_int))
                return fail(err, PN_ERR_INVALID_REQUEST, "%s needs \"pid\": a process id (integer)", op);
        int64_t v = json_object_get_int64(pid);
        if (v <= 0 || v > INT32_MAX)
                return fail(err, PN_ERR_INVALID_REQUEST, "%s: \"pid\" %lld is not a process id", op,
                            (long long) v);
        r->watch.pid = (pid_t) v;
        return 0;
}

static int parse_watch(Request *r, ProtoError *err) {
        static const char *const allowed[] = { "pid", "stop", NULL };
        struct json_object *stop;
        int k = check_members(r->root, allowed, err);
        if (k < 0)
                return k;
        k = parse_pid(r, err);
        if (k < 0)
                return k;
        stop = member(r->root, "stop");
        if (stop && !json_object_is_type(stop, json_type_boolean))
                return fail(err, PN_ERR_INVALID_REQUEST, "watch: \"stop\" must be true or false");
        r->watch.stop = stop && json_object_get_boolean(stop);
        return 0;
}

static int parse_unwatch(Request *r, ProtoError *err) {
        static const char *const allowed[] = { "pid", NULL };
        int k = check_members(r->root, allowed, err);
        if (k < 0)
                return k;
        return parse_pid(r, err);
}

static int parse_no_args(Request *r, ProtoError *err) {
        static const char *const allowed[] = { NULL };
        return check_members(r->root, allowed, err);
}

static const struct {
        const char *name;
        RequestParseFn parse;
} ops[_REQUEST_OP_MAX] = {
        [REQUEST_SUBSCRIBE] = { "subscribe", parse_subscribe },
        [REQUEST_UNSUBSCRIBE] = { "unsubscribe", parse_unsubscribe },
        [REQUEST_PING] = { "ping", parse_no_args },
        [REQUEST_STATUS] = { "status", parse_no_args },
        [REQUEST_RUN] = { "run", parse_run },
        [REQUEST_CHILDREN] = { "children", parse_no_args },
        [REQUEST_KILL] = { "kill", parse_kill },
        [REQUEST_WATCH] = { "watch", parse_watch },
        [REQUEST_UNWATCH] = { "unwatch", parse_unwatch },
};

const char *request_op_to_string(RequestOp op) {
        if (op < 0 || op >= _REQUEST_OP_MAX)
                return NULL;
        return ops[op].name;
}

void request_done(Request *r) {
        if (r->op == REQUEST_SUBSCRIBE)
                r->subscribe.filter = filter_free(r->subscribe.filter);
        if (r->op == REQUEST_RUN) {
                free(r->run.argv);
                free(r->run.env);
                r->run.argv = r->run.env = NULL;
        }
        if (r->root)
                json_object_put(r->root);
        r->root = NULL;
        r->op = _REQUEST_OP_INVALID;
}

static int hex4(const char *s, uint32_t *ret) {
        uint32_t v = 0;
        for (int i = 0; i < 4; i++) {
                char c = s[i];
                int d = c >= '0' && c <= '9' ? c - '0'
                      : c >= 'a' && c <= 'f' ? c - 'a' + 10
                      : c >= 'A' && c <= 'F' ? c - 'A' + 10
                      : -1;
                if (d < 0)
                        return -EINVAL;
                v = v << 4 | (uint32_t) d;
        }
        *ret = v;
        return 0;
}

/*
 * The text of a line that json-c accepted: every string in it, member names
 * included, must be one the broker could send back (utf8.h), raw or
 * escaped. json-c lets through overlong forms, encoded surrogates and
 * noncharacters, and cuts a member name at an escaped NUL ("op\u0000x" is
 * "op"), so this reads the line itself. In valid JSON a backslash only
 * occurs in a string. Returns the offset of the first bad character, or
 * len if there is none.
 */
static size_t request_text_check(const char *line, size_t len, const char **why) {
        for (size_t i = 0; i < len;) {
                unsigned char c = (unsigned char) line[i];
                if (c == '\\' && i + 1 < len && line[i + 1] == 'u') {
                        uint32_t cp, lo;
                        if (i + 6 > len || hex4(line + i + 2, &cp) < 0)
                                return i; /* json-c refused it before */
                        size_t at = i;
                        i += 6;
                        if (cp >= 0xd800 && cp <= 0xdbff && i + 6 <= len && line[i] == '\\' &&
                            line[i + 1] == 'u' && hex4(line + i + 2, &lo) >= 0 && lo >= 0xdc00 &&
                            lo <= 0xdfff) {
                                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                                i += 6;
                        }
                        if (!pn_utf8_codepoint_is_valid(cp)) {
                                *why = cp == 0 ? "a NUL character (\\u0000)"
                                       : cp >= 0xd800 && cp <= 0xdfff ? "a lone surrogate escape"
                                                                      : "a noncharacter escape";
                                return at;
                        }
                } else if (c == '\\') {
                        i += 2;
                } else if (c < 0x80) {
                        i++;
                } else {
                        size_t l = pn_utf8_char_len(line + i, len - i);
                        if (l == 0) {
                                *why = "a byte sequence that is not a valid UTF-8 character "
                                       "(overlong form, surrogate, noncharacter)";
                                return i;
                        }
                        i += l;
                }
        }
        return len;
}

int request_parse(Request *ret, const char *line, size_t len, ProtoError *err) {
        struct json_tokener *tok;
        Request r = { .op = _REQUEST_OP_INVALID };

        if (len >= PN_MAX_LINE)
                return fail(err, PN_ERR_LINE_TOO_LONG, "line longer than %d bytes", PN_MAX_LINE - 1);
        if (memchr(line, 0, len))
                return fail(err, PN_ERR_INVALID_JSON, "line contains a NUL byte");

        tok = json_tokener_new_ex(PN_MAX_JSON_DEPTH);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        r.root = json_tokener_parse_ex(tok, line, (int) len);
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        size_t used = MIN((size_t) tok->char_offset, len);
        if (jerr == json_tokener_continue) {
                /* The line is all there is: tell the tokener the input ended
                 * (a NUL), so that a value like a bare number can complete. */
                r.root = json_tokener_parse_ex(tok, "", 1);
                jerr = json_tokener_get_error(tok);
                used = len;
        }
        json_tokener_free(tok);

        if (jerr != json_tokener_success) {
                json_object_put(r.root);
                return fail(err, PN_ERR_INVALID_JSON, "%s at byte %zu",
                            json_tokener_error_desc(jerr), used);
        }
        /* Only whitespace may follow the value. */
        for (size_t i = used; i < len; i++)
                if (!strchr(" \t\r", line[i])) {
                        json_object_put(r.root);
                        return fail(err, PN_ERR_INVALID_JSON, "trailing data after the JSON value at byte %zu", i);
                }
        const char *why = NULL;
        size_t bad = request_text_check(line, used, &why);
        if (bad < used) {
                json_object_put(r.root);
                return fail(err, PN_ERR_INVALID_REQUEST, "the request holds %s at byte %zu",
                            why ? why : "an invalid escape", bad);
        }
        return request_parse_object(ret, r.root, err);
}

int request_parse_object(Request *ret, struct json_object *root, ProtoError *err) {
        struct json_object *op;
        Request r = { .op = _REQUEST_OP_INVALID, .root = root };
        int k;

        if (!json_object_is_type(r.root, json_type_object)) {
                json_object_put(r.root);
                return fail(err, PN_ERR_INVALID_REQUEST, "a request must be a JSON object");
        }
        if (!json_object_object_get_ex(r.root, "op", &op) ||
            !json_object_is_type(op, json_type_string)) {
                json_object_put(r.root);
                return fail(err, PN_ERR_INVALID_REQUEST, "a request needs an \"op\" string member");
        }
        for (int i = 0; i < _REQUEST_OP_MAX; i++)
                if (streq(ops[i].name, json_object_get_string(op))) {
                        r.op = (RequestOp) i;
                        break;
                }
        if (r.op == _REQUEST_OP_INVALID) {
                fail(err, PN_ERR_UNKNOWN_OP, "unknown op \"%.*s\"",
                     PN_UTF8_CUT(json_object_get_string(op), 64));
                json_object_put(r.root);
                return -EINVAL;
        }
        k = ops[r.op].parse(&r, err);
        if (k < 0) {
                request_done(&r);
                if (k == -ENOMEM)
                        return k;
                return -EINVAL;
        }
        *ret = r;
        return 0;
}
