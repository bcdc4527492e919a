/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Hook file parsing; see hook-file.h.
 *
 * libinih as packaged does not pass line numbers to handlers, and it cuts
 * lines longer than its 200-byte buffer without saying so. So the text is
 * fed to ini_parse_stream() through a reader of our own that counts lines
 * (the handler always runs for the line read last) and refuses over-long
 * lines and NUL bytes itself: every error, also those found after the
 * whole file was read, names the line it stands on.
 *
 * [Match] keys become the "match" object of the JSON protocol, and each line
 * is checked at once with protocol/filter.c, so a bad value is reported at
 * its own line with the broker's own words.
 */
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "common/macro.h"
#include "hook-file.h"
#include "protocol/utf8.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct json_object *, json_object_put)
DEFINE_TRIVIAL_CLEANUP_FUNC(Filter *, filter_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, hook_strv_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(HookFile *, hook_file_free)

char **hook_strv_free(char **v) {
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
        return NULL;
}

HookFile *hook_file_free(HookFile *h) {
        if (!h)
                return NULL;
        free(h->name);
        hook_strv_free(h->event_names);
        free(h->match_json);
        filter_free(h->filter);
        hook_strv_free(h->argv);
        free(h->user);
        free(h);
        return NULL;
}

#define HOOK_NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.@-"

bool hook_name_is_valid(const char *name) {
        size_t n = strlen(name);

        if (n == 0 || n > HOOK_NAME_MAX || name[0] == '.')
                return false;
        return strspn(name, HOOK_NAME_CHARS) == n;
}

/* --- words --- */

_printf_(3, 4) static int fail(char *error, size_t size, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(error, size, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

int hook_split_words(const char *s, char ***ret, size_t *ret_n, char *error, size_t size) {
        _cleanup_(hook_strv_freep) char **words = calloc(HOOK_MAX_WORDS + 1, sizeof(char *));
        _cleanup_free_ char *word = malloc(strlen(s) + 1);
        size_t n = 0;

        if (!words || !word)
                return -ENOMEM;
        for (const char *p = s;;) {
                while (*p == ' ' || *p == '\t')
                        p++;
                if (!*p)
                        break;
                if (n == HOOK_MAX_WORDS)
                        return fail(error, size, "more than %d words", HOOK_MAX_WORDS);
                size_t len = 0;
                char quote = 0;
                for (; *p && (quote || (*p != ' ' && *p != '\t')); p++) {
                        if (quote == '\'' && *p == '\'')
                                quote = 0;
                        else if (quote == '\'')
                                word[len++] = *p;
                        else if (*p == '\\') {
                                if (!p[1])
                                        return fail(error, size, "a backslash ends the value");
                                word[len++] = *++p;
                        } else if (quote == '"' && *p == '"')
                                quote = 0;
                        else if (!quote && (*p == '"' || *p == '\''))
                                quote = *p;
                        else
                                word[len++] = *p;
                }
                if (quote)
                        return fail(error, size, "unterminated %s quote",
                                    quote == '"' ? "double" : "single");
                words[n] = strndup(word, len);
                if (!words[n])
                        return -ENOMEM;
                n++;
        }
        *ret = TAKE_PTR(words);
        if (ret_n)
                *ret_n = n;
        return 0;
}

int hook_parse_timespan(const char *s, uint64_t *ret_usec) {
        static const struct {
                const char *suffix;
                double usec;
        } units[] = {
                { "", 1e6 },       { "s", 1e6 },      { "sec", 1e6 },     { "ms", 1e3 },
                { "msec", 1e3 },   { "us", 1 },       { "usec", 1 },      { "m", 60e6 },
                { "min", 60e6 },   { "h", 3600e6 },   { "hour", 3600e6 },
        };
        char *end;
        double v;

        if (!s || !((*s >= '0' && *s <= '9') || *s == '.'))
                return -EINVAL;
        errno = 0;
        v = strtod(s, &end);
        if (errno || end == s || !isfinite(v) || v < 0)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                if (!streq(end, units[i].suffix))
                        continue;
                double usec = v * units[i].usec;
                if (usec >= 1.8e19)
                        return -EINVAL;
                *ret_usec = (uint64_t) (usec + 0.5);
                return 0;
        }
        return -EINVAL;
}

static int parse_unsigned(const char *s, unsigned min, unsigned max, unsigned *ret) {
        unsigned long v;
        char *end;

        if (!*s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || v < min || v > max)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

/* --- the INI file --- */

typedef struct ParseCtx {
        HookFile *h;
        HookResolveUid resolve_uid;
        struct json_object *events; /* array of names; NULL until Events= (or after "all") */
        bool events_set;
        struct json_object *match;  /* object of key: array */
        bool command_set;

        /* The reader's state. */
        const char *text;
        size_t size, pos;
        unsigned line;

        unsigned error_line;        /* the first error; 0 while none */
        char error[256];
        bool error_set;
        bool oom;
} ParseCtx;

_printf_(2, 3) static int ctx_fail(ParseCtx *p, const char *fmt, ...) {
        va_list ap;

        if (p->error_set)
                return 0;
        va_start(ap, fmt);
        vsnprintf(p->error, sizeof(p->error), fmt, ap);
        va_end(ap);
        p->error_line = p->line;
        p->error_set = true;
        return 0; /* the handler's "error" to inih */
}

/* The reader given to inih: one line of the text per call, counted. */
static char *ctx_read_line(char *str, int num, void *stream) {
        ParseCtx *p = stream;
        size_t start = p->pos, len;
        const char *nl;

        if (p->pos >= p->size)
                return NULL;
        nl = memchr(p->text + start, '\n', p->size - start);
        len = (nl ? (size_t) (nl - (p->text + start)) + 1 : p->size - start);
        p->line++;
        if (memchr(p->text + start, 0, len)) {
                ctx_fail(p, "the line contains a NUL byte");
                return NULL;
        }
        size_t content = len - (nl ? 1 : 0);
        if (content > 0 && p->text[start + content - 1] == '\r')
                content--;
        if (content > HOOK_FILE_MAX_LINE || len + 1 > (size_t) num) {
                ctx_fail(p, "the line is longer than %d bytes: put long commands in a script",
                         HOOK_FILE_MAX_LINE);
                return NULL;
        }
        memcpy(str, p->text + start, len);
        str[len] = 0;
        p->pos = start + len;
        return str;
}

static const struct {
        const char *key;
        FilterKey filter_key;
} match_keys[] = {
        { "Comm", FILTER_COMM },     { "Exe", FILTER_EXE },   { "Unit", FILTER_UNIT },
        { "Cgroup", FILTER_CGROUP }, { "Uid", FILTER_UID },
};

static int ctx_match_value(ParseCtx *p, const char *key, FilterKey k, const char *value) {
        const char *jkey = filter_key_to_string(k);
        _cleanup_(hook_strv_freep) char **words = NULL;
        _cleanup_(json_object_putp) struct json_object *one = NULL;
        _cleanup_(filter_freep) Filter *f = NULL;
        struct json_object *array;
        char error[256];
        size_t n;
        int r;

        r = hook_split_words(value, &words, &n, error, sizeof(error));
        if (r == -EINVAL)
                return ctx_fail(p, "invalid %s=: %s", key, error);
        if (r < 0)
                return r;
        if (n == 0) {
                /* An empty value resets the list, as in systemd units. */
                json_object_object_del(p->match, jkey);
                return 1;
        }
        if (!json_object_object_get_ex(p->match, jkey, &array)) {
                array = json_object_new_array();
                if (!array || json_object_object_add(p->match, jkey, array) < 0) {
                        json_object_put(array);
                        return -ENOMEM;
                }
        }
        for (size_t i = 0; i < n; i++) {
                struct json_object *v;
                if (k == FILTER_UID) {
                        unsigned long long uid;
                        uint32_t resolved;
                        char *end;
                        errno = 0;
                        uid = strtoull(words[i], &end, 10);
                        if (words[i][0] >= '0' && words[i][0] <= '9' && !errno && !*end &&
                            uid < UINT32_MAX)
                                v = json_object_new_int64((int64_t) uid);
                        else if (p->resolve_uid && p->resolve_uid(words[i], &resolved) == 0)
                                v = json_object_new_int64(resolved);
                        else
                                return ctx_fail(
                                        p,
                                        "invalid Uid=: \"%.*s\" is neither a uid nor a known user",
                                        PN_UTF8_CUT(words[i], 64));
                } else
                        v = json_object_new_string(words[i]);
                if (!v || json_object_array_add(array, v) < 0) {
                        json_object_put(v);
                        return -ENOMEM;
                }
        }

        /* Check what this key holds now, as the broker would. */
        one = json_object_new_object();
        if (!one || json_object_object_add(one, jkey, json_object_get(array)) < 0)
                return -ENOMEM;
        r = filter_new_from_json(&f, NULL, NULL, one, error, sizeof(error));
        if (r == -EINVAL)
                return ctx_fail(p, "invalid %s=: %s", key, error);
        return r < 0 ? r : 1;
}

static int ctx_events(ParseCtx *p, const char *value) {
        _cleanup_(hook_strv_freep) char **words = NULL;
        char error[256];
        size_t n;
        int r;

        r = hook_split_words(value, &words, &n, error, sizeof(error));
        if (r == -EINVAL)
                return ctx_fail(p, "invalid Events=: %s", error);
        if (r < 0)
                return r;
        if (n == 0) {
                p->events = (json_object_put(p->events), NULL);
                p->events_set = false;
                return 1;
        }
        p->events_set = true;
        for (size_t i = 0; i < n; i++) {
                /* Commas too, as in the broker's [Connector] Events=. */
                for (char *save = NULL, *w = strtok_r(words[i], ",", &save); w;
                     w = strtok_r(NULL, ",", &save)) {
                        if (streq(w, "all")) {
                                /* Every type: the subscription names none. */
                                p->events = (json_object_put(p->events), NULL);
                                p->h->events = PN_EVENT_ALL_BITS;
                                continue;
                        }
                        PnEventType t = pn_event_type_from_string(w);
                        if (t == _PN_EVENT_TYPE_INVALID)
                                return ctx_fail(p, "invalid Events=: unknown event type \"%.*s\"",
                                                PN_UTF8_CUT(w, 64));
                        if (p->h->events == PN_EVENT_ALL_BITS)
                                continue;
                        if (p->h->events & PN_EVENT_BIT(t))
                                continue;
                        p->h->events |= PN_EVENT_BIT(t);
                        if (!p->events) {
                                p->events = json_object_new_array();
                                if (!p->events)
                                        return -ENOMEM;
                        }
                        struct json_object *s = json_object_new_string(w);
                        if (!s || json_object_array_add(p->events, s) < 0) {
                                json_object_put(s);
                                return -ENOMEM;
                        }
                }
        }
        return 1;
}

static int ctx_exec(ParseCtx *p, const char *key, const char *value) {
        HookFile *h = p->h;
        int r;

        if (streq(key, "Command")) {
                _cleanup_(hook_strv_freep) char **words = NULL;
                char error[256];
                size_t n;

                if (p->command_set && *value)
                        return ctx_fail(
                                p,
                                "Command= is already set at line %u (an indented line continues "
                                "the one before it)",
                                h->command_line);
                r = hook_split_words(value, &words, &n, error, sizeof(error));
                if (r == -EINVAL)
                        return ctx_fail(p, "invalid Command=: %s", error);
                if (r < 0)
                        return r;
                h->argv = hook_strv_free(h->argv);
                p->command_set = false;
                if (n == 0)
                        return 1;
                if (words[0][0] != '/')
                        return ctx_fail(p, "invalid Command=: \"%.*s\" is not an absolute path",
                                        PN_UTF8_CUT(words[0], 64));
                h->argv = TAKE_PTR(words);
                h->command_line = p->line;
                p->command_set = true;
                return 1;
        }
        if (streq(key, "User")) {
                h->user = (free(h->user), NULL);
                h->user_line = 0;
                if (!*value)
                        return 1;
                if (strlen(value) > 64 || strpbrk(value, " \t:/"))
                        return ctx_fail(p, "invalid User=: \"%.*s\" is not a user name",
                                        PN_UTF8_CUT(value, 64));
                h->user = strdup(value);
                h->user_line = p->line;
                return h->user ? 1 : -ENOMEM;
        }
        if (streq(key, "Timeout")) {
                uint64_t usec;
                if (!*value) {
                        h->timeout_usec = HOOK_TIMEOUT_DEFAULT_USEC;
                        return 1;
                }
                if (hook_parse_timespan(value, &usec) < 0 || usec < 1000 ||
                    usec > HOOK_TIMEOUT_MAX_USEC)
                        return ctx_fail(
                                p,
                                "invalid Timeout=: \"%.*s\" is not a duration from 1ms to 24h "
                                "(e.g. 30s, 500ms, 2min)",
                                PN_UTF8_CUT(value, 64));
                h->timeout_usec = usec;
                return 1;
        }
        if (streq(key, "MaxConcurrent")) {
                if (!*value) {
                        h->max_concurrent = HOOK_MAX_CONCURRENT_DEFAULT;
                        return 1;
                }
                if (parse_unsigned(value, 1, HOOK_MAX_CONCURRENT_MAX, &h->max_concurrent) < 0)
                        return ctx_fail(
                                p, "invalid MaxConcurrent=: \"%.*s\" is not a number from 1 to %d",
                                PN_UTF8_CUT(value, 64), HOOK_MAX_CONCURRENT_MAX);
                return 1;
        }
        if (streq(key, "MaxQueued")) {
                if (!*value) {
                        h->max_queued = HOOK_MAX_QUEUED_DEFAULT;
                        return 1;
                }
                if (parse_unsigned(value, 0, HOOK_MAX_QUEUED_MAX, &h->max_queued) < 0)
                        return ctx_fail(
                                p, "invalid MaxQueued=: \"%.*s\" is not a number from 0 to %d",
                                PN_UTF8_CUT(value, 64), HOOK_MAX_QUEUED_MAX);
                return 1;
        }
        return ctx_fail(p, "unknown key \"%.*s\" in [Exec]", PN_UTF8_CUT(key, 64));
}

static int on_value(void *userdata, const char *section, const char *key, const char *value) {
        ParseCtx *p = userdata;
        int r;

        if (p->error_set)
                return 1; /* only the first error counts; inih goes on regardless */
        if (strcasecmp(section, "Match") == 0) {
                if (streq(key, "Events"))
                        r = ctx_events(p, value);
                else {
                        size_t i;
                        for (i = 0; i < ELEMENTSOF(match_keys); i++)
                                if (streq(key, match_keys[i].key))
                                        break;
                        if (i == ELEMENTSOF(match_keys))
                                return ctx_fail(p, "unknown key \"%.*s\" in [Match]",
                                                PN_UTF8_CUT(key, 64));
                        r = ctx_match_value(p, key, match_keys[i].filter_key, value);
                }
        } else if (strcasecmp(section, "Exec") == 0)
                r = ctx_exec(p, key, value);
        else if (!section[0])
                return ctx_fail(p, "\"%.*s=\" stands before any section: start with [Match]",
                                PN_UTF8_CUT(key, 64));
        else
                return ctx_fail(p, "unknown section [%.*s]", PN_UTF8_CUT(section, 64));
        if (r < 0) {
                p->oom = true;
                return ctx_fail(p, "out of memory");
        }
        return r;
}

static int ctx_finish(ParseCtx *p) {
        HookFile *h = p->h;
        _cleanup_(filter_freep) Filter *f = NULL;
        char error[256];
        int r;

        p->line = 0;
        if (!p->events_set)
                return ctx_fail(
                        p, "[Match] Events= is missing: name the event types this hook runs for");
        if (!p->command_set)
                return ctx_fail(p, "[Exec] Command= is missing");
        r = filter_new_from_json(&f, p->events, NULL, p->match, error, sizeof(error));
        if (r == -EINVAL)
                return ctx_fail(p, "invalid [Match]: %s", error);
        if (r < 0)
                return r;
        /* Overruns pass every filter; the hook's own rule is its events. */
        f->events = h->events;
        h->filter = TAKE_PTR(f);

        if (p->events) {
                size_t n = json_object_array_length(p->events);
                h->event_names = calloc(n + 1, sizeof(char *));
                if (!h->event_names)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++) {
                        h->event_names[i] = strdup(
                                json_object_get_string(json_object_array_get_idx(p->events, i)));
                        if (!h->event_names[i])
                                return -ENOMEM;
                }
        }
        if (json_object_object_length(p->match) > 0) {
                h->match_json =
                        strdup(json_object_to_json_string_ext(p->match, JSON_C_TO_STRING_PLAIN));
                if (!h->match_json)
                        return -ENOMEM;
        }
        return 1;
}

int hook_file_parse(HookFile **ret, const char *name, const char *text, size_t size,
                    HookResolveUid resolve_uid, HookFileError *err) {
        _cleanup_(hook_file_freep) HookFile *h = NULL;
        _cleanup_(json_object_putp) struct json_object *match = NULL;
        ParseCtx p = { .resolve_uid = resolve_uid, .text = text, .size = size };
        int r;

        err->line = 0;
        err->message[0] = 0;
        if (!hook_name_is_valid(name)) {
                snprintf(err->message, sizeof(err->message),
                         "\"%.*s\" is not a valid hook name: use 1 to %d of A-Z a-z 0-9 _ . @ -",
                         PN_UTF8_CUT(name, 64), HOOK_NAME_MAX);
                return -EINVAL;
        }
        if (size > HOOK_FILE_MAX_SIZE) {
                snprintf(err->message, sizeof(err->message),
                         "larger than %u KiB: not a hook file", HOOK_FILE_MAX_SIZE >> 10);
                return -EINVAL;
        }
        h = calloc(1, sizeof(*h));
        match = json_object_new_object();
        if (!h || !match || !(h->name = strdup(name)))
                return -ENOMEM;
        h->timeout_usec = HOOK_TIMEOUT_DEFAULT_USEC;
        h->max_concurrent = HOOK_MAX_CONCURRENT_DEFAULT;
        h->max_queued = HOOK_MAX_QUEUED_DEFAULT;
        p.h = h;
        p.match = match;

        r = ini_parse_stream(ctx_read_line, &p, on_value, &p);
        if (r < 0 || p.oom) {
                json_object_put(p.events);
                return -ENOMEM;
        }
        /* The earlier of inih's first error (a syntax error: its handler
         * errors are ours, at the same line) and ours. */
        if (r > 0 && (!p.error_set || (unsigned) r < p.error_line)) {
                p.error_set = true;
                p.error_line = (unsigned) r;
                snprintf(p.error, sizeof(p.error),
                         "syntax error: expected [Section], KEY=VALUE or a comment");
        }
        if (!p.error_set) {
                r = ctx_finish(&p);
                if (r < 0) {
                        json_object_put(p.events);
                        return r;
                }
        }
        json_object_put(p.events);
        if (p.error_set) {
                err->line = p.error_line;
                snprintf(err->message, sizeof(err->message), "%s", p.error);
                return -EINVAL;
        }
        *ret = TAKE_PTR(h);
        return 0;
}

bool hook_file_match(const HookFile *h, const PnEvent *ev) {
        if (ev->type == PN_EVENT_OVERRUN)
                return h->events & PN_EVENT_BIT(PN_EVENT_OVERRUN);
        return filter_match(h->filter, ev, NULL);
}
