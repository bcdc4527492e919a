/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Hook file parsing; see hook-file.h.
 *
 * libinih as packaged does not pass line numbers to handlers, and its line
 * buffer is 200 bytes. So the text is fed to ini_parse_stream() through a
 * reader of our own that counts lines (the handler always runs for the line
 * read last), refuses NUL bytes and lines over HOOK_FILE_MAX_LINE itself,
 * and hands a longer line to inih in pieces, each after the first as an
 * indented continuation line (split at a blank outside quotes, so that the
 * words are the same). An indented line continues the value before it, as
 * libinih's multi-line values do: Command= and the list keys take it as
 * more words. Every error, also those found after the whole file was read,
 * names the line it stands on.
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

#include "common/json-util.h"
#include "common/macro.h"
#include "common/netns.h"
#include "hook-file.h"
#include "protocol/utf8.h"


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
        char *command;              /* Command='s text, continuations joined by ' ' */

        /* The reader's state. */
        const char *text;
        size_t size, pos;
        unsigned line;
        const char *rest;           /* the part of a long line not handed out yet */
        size_t rest_len;
        bool have_value;            /* a KEY=VALUE was read since the last section */
        bool continuation;          /* the line handed out last continues a value */

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

/* Where to cut a line of len bytes so that the first part fits in max
 * bytes: at the last blank outside quotes (the hook_split_words() rules:
 * '...' and "..." quote, a backslash takes the next byte) within max. 0
 * if there is none. */
static size_t split_point(const char *s, size_t len, size_t max) {
        size_t cut = 0;
        char quote = 0;

        for (size_t i = 0; i < len && i <= max; i++) {
                if (s[i] == '\\' && quote != '\'') {
                        i++;
                        continue;
                }
                if (quote) {
                        if (s[i] == quote)
                                quote = 0;
                } else if (s[i] == '\'' || s[i] == '"')
                        quote = s[i];
                else if ((s[i] == ' ' || s[i] == '\t') && i > 0)
                        cut = i;
        }
        return cut;
}

/* Hand out the next piece of p->rest (at most max bytes) as an indented
 * continuation line. */
static char *ctx_hand_out_rest(ParseCtx *p, char *str, size_t max) {
        size_t n = p->rest_len;

        if (n > max - 1) {
                n = split_point(p->rest, p->rest_len, max - 1);
                if (n == 0) {
                        ctx_fail(p, "a word longer than %zu bytes", max - 2);
                        return NULL;
                }
        }
        str[0] = ' ';
        memcpy(str + 1, p->rest, n);
        str[n + 1] = 0;
        p->rest += n;
        p->rest_len -= n;
        while (p->rest_len && (*p->rest == ' ' || *p->rest == '\t')) {
                p->rest++;
                p->rest_len--;
        }
        if (p->rest_len == 0)
                p->rest = NULL;
        p->continuation = true;
        return str;
}

/* The reader given to inih: one line of the text per call, counted; a long
 * line in pieces (see the top of this file). */
static char *ctx_read_line(char *str, int num, void *stream) {
        ParseCtx *p = stream;
        size_t start = p->pos, len, content, max = (size_t) num - 2;
        const char *nl, *line, *s;

        if (p->rest)
                return ctx_hand_out_rest(p, str, max);
        if (p->pos >= p->size)
                return NULL;
        nl = memchr(p->text + start, '\n', p->size - start);
        len = (nl ? (size_t) (nl - (p->text + start)) + 1 : p->size - start);
        p->line++;
        p->pos = start + len;
        line = p->text + start;
        if (memchr(line, 0, len)) {
                ctx_fail(p, "the line contains a NUL byte");
                return NULL;
        }
        content = len - (nl ? 1 : 0);
        if (content > 0 && line[content - 1] == '\r')
                content--;
        if (content > HOOK_FILE_MAX_LINE) {
                ctx_fail(p, "the line is longer than %d bytes: put long commands in a script",
                         HOOK_FILE_MAX_LINE);
                return NULL;
        }

        /* What inih will make of it (its own order of rules). */
        for (s = line; s < line + content && (*s == ' ' || *s == '\t'); s++)
                ;
        bool blank = s == line + content, comment = !blank && (*s == ';' || *s == '#');
        bool indented = s > line;
        p->continuation = !blank && !comment && indented && p->have_value;
        if (!blank && !comment && !p->continuation) {
                if (*s == '[')
                        p->have_value = false;
                else
                        p->have_value = true;
        }
        /* A comment after a blank ends the line: cut it here, so that a
         * long line's pieces never carry it. */
        if (!comment)
                for (const char *c = line; c < line + content; c++)
                        if (*c == ';' && c > line && (c[-1] == ' ' || c[-1] == '\t')) {
                                content = (size_t) (c - line);
                                break;
                        }
        while (content > 0 && (line[content - 1] == ' ' || line[content - 1] == '\t'))
                content--;

        if (content <= max) {
                memcpy(str, line, content);
                str[content] = 0;
                return str;
        }
        /* Too long for inih: the first piece now, the rest as continuations. */
        size_t n = split_point(line, content, max);
        if (n == 0 || comment) {
                ctx_fail(p, "a word longer than %zu bytes", max);
                return NULL;
        }
        memcpy(str, line, n);
        str[n] = 0;
        p->rest = line + n;
        p->rest_len = content - n;
        while (p->rest_len && (*p->rest == ' ' || *p->rest == '\t')) {
                p->rest++;
                p->rest_len--;
        }
        if (p->rest_len == 0)
                p->rest = NULL;
        return str;
}

static const struct {
        const char *key;
        FilterKey filter_key;
} match_keys[] = {
        { "Comm", FILTER_COMM },     { "Exe", FILTER_EXE },   { "Unit", FILTER_UNIT },
        { "Cgroup", FILTER_CGROUP }, { "Uid", FILTER_UID },
        { "Cmdline", FILTER_CMDLINE }, { "Netns", FILTER_NETNS },
        { "Signal", FILTER_SIGNAL }, { "ExitCode", FILTER_EXIT_CODE },
        { "CoreDumped", FILTER_CORE_DUMPED },
};

/* A word of digits as a number, else -1. */
static int64_t word_number(const char *w) {
        unsigned long long v;
        char *end;

        if (w[0] < '0' || w[0] > '9')
                return -1;
        errno = 0;
        v = strtoull(w, &end, 10);
        return errno || *end || v > INT64_MAX ? -1 : (int64_t) v;
}

/* The JSON value of one word of a [Match] key other than Uid=: numbers for
 * the numeric keys, booleans for CoreDumped=, a network namespace's name
 * resolved to its inode now; the filter judges the rest. NULL with an
 * error set (*oom false) or out of memory (*oom true). */
static struct json_object *match_word_value(ParseCtx *p, const char *key, FilterKey k, const char *w,
                                            bool *oom) {
        struct json_object *v = NULL;
        int64_t n = word_number(w);
        uint64_t ino = 0;
        int r;

        *oom = false;
        switch (k) {
        case FILTER_SIGNAL:
        case FILTER_EXIT_CODE:
                v = n >= 0 ? json_object_new_int64(n) : json_object_new_string(w);
                break;
        case FILTER_CORE_DUMPED:
                if (streq(w, "yes") || streq(w, "true") || streq(w, "1"))
                        v = json_object_new_boolean(true);
                else if (streq(w, "no") || streq(w, "false") || streq(w, "0"))
                        v = json_object_new_boolean(false);
                else
                        return ctx_fail(p, "invalid %s=: \"%.*s\" is not yes or no", key, PN_UTF8_CUT(w, 64)), NULL;
                break;
        case FILTER_NETNS:
                if (n >= 0) {
                        v = json_object_new_int64(n);
                        break;
                }
                /* A name is resolved when the hook is loaded (and again at
                 * each reload): the broker and this runner match the inode. */
                if (strlen(w) > FILTER_MAX_NETNS_NAME || strchr(w, '/') || streq(w, ".") || streq(w, ".."))
                        return ctx_fail(p, "invalid %s=: \"%.*s\" is not a name under %s", key,
                                        PN_UTF8_CUT(w, 64), NETNS_RUN_DIR), NULL;
                r = netns_inode_by_name(w, &ino, NULL);
                if (r < 0)
                        return ctx_fail(p, "invalid %s=: no network namespace named \"%.*s\" under %s (%s)",
                                        key, PN_UTF8_CUT(w, 64), NETNS_RUN_DIR, strerror(-r)), NULL;
                v = json_object_new_int64((int64_t) ino);
                break;
        default:
                v = json_object_new_string(w);
                break;
        }
        *oom = !v;
        return v;
}

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
                } else {
                        bool oom;
                        v = match_word_value(p, key, k, words[i], &oom);
                        if (!v && !oom)
                                return 0; /* the error is set */
                }
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

        if (streq(key, "Command")) {
                /* Words are split once the whole value is read (ctx_finish):
                 * an indented line continues it. */
                if (p->continuation) {
                        if (!p->command)
                                return ctx_fail(p, "an indented line continues an empty Command=");
                        char *joined = NULL;
                        if (asprintf(&joined, "%s %s", p->command, value) < 0)
                                return -ENOMEM;
                        free(p->command);
                        p->command = joined;
                        return 1;
                }
                if (p->command && *value)
                        return ctx_fail(
                                p,
                                "Command= is already set at line %u (an indented line continues "
                                "the one before it)",
                                h->command_line);
                p->command = (free(p->command), NULL);
                if (!*value)
                        return 1;
                p->command = strdup(value);
                if (!p->command)
                        return -ENOMEM;
                h->command_line = p->line;
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
        /* Continuations are more words: for Command= and the list keys. */
        if (p->continuation && !streq(key, "Command") && strcasecmp(section, "Match") != 0)
                return ctx_fail(p, "an indented line continues %.*s=, which takes one value",
                                PN_UTF8_CUT(key, 64));
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
        size_t n;
        int r;

        p->line = 0;
        if (!p->events_set)
                return ctx_fail(
                        p, "[Match] Events= is missing: name the event types this hook runs for");
        if (!p->command)
                return ctx_fail(p, "[Exec] Command= is missing");
        /* Errors in the words stand at Command='s line. */
        p->line = h->command_line;
        r = hook_split_words(p->command, &h->argv, &n, error, sizeof(error));
        if (r == -EINVAL)
                return ctx_fail(p, "invalid Command=: %s", error);
        if (r < 0)
                return r;
        if (n == 0)
                return ctx_fail(p, "[Exec] Command= is missing");
        if (h->argv[0][0] != '/')
                return ctx_fail(p, "invalid Command=: \"%.*s\" is not an absolute path",
                                PN_UTF8_CUT(h->argv[0], 64));
        p->line = 0;
        r = filter_new_from_json(&f, p->events, NULL, p->match, error, sizeof(error));
        if (r == -EINVAL)
                return ctx_fail(p, "invalid [Match]: %s", error);
        if (r < 0)
                return r;
        /* Overruns pass every filter; the hook's own rule is its events. */
        f->events = h->events;
        h->filter = TAKE_PTR(f);

        if (p->events) {
                n = json_object_array_length(p->events);
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
                free(p.command);
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
                        free(p.command);
                        return r;
                }
        }
        json_object_put(p.events);
        free(p.command);
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
