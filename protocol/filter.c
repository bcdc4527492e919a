/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Filter parsing and matching; see filter.h. Matching is on the broker's hot
 * path for every subscriber, so the cheap tests (event type, thread flag)
 * come first and strings are compared only when a key asks for them.
 */
#include <errno.h>
#include <fnmatch.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/macro.h"
#include "filter.h"
#include "utf8.h"

static const char *const filter_key_names[_FILTER_KEY_MAX] = {
        [FILTER_PID] = "pid",       [FILTER_TGID] = "tgid",
        [FILTER_PPID] = "ppid",     [FILTER_UID] = "uid",
        [FILTER_COMM] = "comm",     [FILTER_EXE] = "exe",
        [FILTER_CGROUP] = "cgroup", [FILTER_UNIT] = "unit",
        [FILTER_DESCENDANTS_OF] = "descendants_of",
        [FILTER_FOLLOW] = "follow", [FILTER_SIGNAL] = "signal",
        [FILTER_CORE_DUMPED] = "core_dumped", [FILTER_EXIT_CODE] = "exit_code",
        [FILTER_CMDLINE] = "cmdline", [FILTER_NETNS] = "netns",
};

static bool filter_key_is_numeric(FilterKey k) {
        return k == FILTER_PID || k == FILTER_TGID || k == FILTER_PPID || k == FILTER_UID ||
               k == FILTER_DESCENDANTS_OF || k == FILTER_FOLLOW || k == FILTER_SIGNAL ||
               k == FILTER_CORE_DUMPED || k == FILTER_EXIT_CODE || k == FILTER_NETNS;
}

const char *filter_key_to_string(FilterKey k) {
        if (k < 0 || k >= _FILTER_KEY_MAX)
                return NULL;
        return filter_key_names[k];
}

Filter *filter_free(Filter *f) {
        if (!f)
                return NULL;
        for (int k = 0; k < _FILTER_KEY_MAX; k++) {
                FilterValues *v = &f->values[k];
                free(v->nums);
                for (size_t i = 0; v->strs && i < v->n; i++)
                        free(v->strs[i]);
                free(v->strs);
                free(v->globs);
                free(v->prefix);
        }
        free(f);
        return NULL;
}

_printf_(3, 4) static int fail(char *error, size_t size, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(error, size, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

static int parse_events(Filter *f, struct json_object *events, char *error, size_t size) {
        if (!events) {
                f->events = PN_EVENT_ALL_BITS;
                return 0;
        }
        if (json_object_is_type(events, json_type_string) &&
            strcmp(json_object_get_string(events), "all") == 0) {
                f->events = PN_EVENT_ALL_BITS;
                return 0;
        }
        if (!json_object_is_type(events, json_type_array))
                return fail(error, size, "\"events\" must be an array of event names or \"all\"");
        size_t n = json_object_array_length(events);
        if (n == 0)
                return fail(error, size, "\"events\" is empty: name at least one event type");
        for (size_t i = 0; i < n; i++) {
                struct json_object *e = json_object_array_get_idx(events, i);
                if (!json_object_is_type(e, json_type_string))
                        return fail(error, size, "\"events\"[%zu] is not a string", i);
                PnEventType t = pn_event_type_from_string(json_object_get_string(e));
                if (t == _PN_EVENT_TYPE_INVALID)
                        return fail(error, size, "unknown event type \"%.*s\"",
                                    PN_UTF8_CUT(json_object_get_string(e), 64));
                f->events |= PN_EVENT_BIT(t);
        }
        return 0;
}

static bool has_glob(const char *s) {
        return strpbrk(s, "*?[") != NULL;
}

/* For a pattern whose one wildcard is a final '*' (the common "name-*"),
 * 1 + the length before it: matching is then a prefix compare, as fnmatch
 * without flags would decide. 0 for any other pattern. */
static uint32_t glob_prefix(const char *s) {
        size_t n = strcspn(s, "*?[\\");
        return s[n] == '*' && s[n + 1] == 0 ? (uint32_t) n + 1 : 0;
}

/* A signal number or name ("SEGV", "SIGSEGV", any case). */
static int parse_signal(FilterValues *v, struct json_object *o, char *error, size_t size) {
        int sig = 0;

        if (json_object_is_type(o, json_type_int)) {
                int64_t n = json_object_get_int64(o);
                if (n >= 1 && n <= SIGRTMAX)
                        sig = (int) n;
        } else if (json_object_is_type(o, json_type_string)) {
                const char *s = json_object_get_string(o);
                if ((size_t) json_object_get_string_len(o) == strlen(s))
                        sig = pn_signal_from_string(s);
        } else
                return fail(error, size, "match.signal: expected a signal name (\"SEGV\") or number");
        if (!sig)
                return fail(error, size, "match.signal: %.*s is not a signal (a name such as "
                            "\"SEGV\" or \"SIGABRT\", or a number from 1 to %d)",
                            PN_UTF8_CUT(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), 32),
                            SIGRTMAX);
        v->nums[v->n++] = sig;
        return 0;
}

/* An inode number, or the name of a file under /run/netns (resolved later,
 * by filter_resolve_netns(): parsing does no I/O). */
static int parse_netns(FilterValues *v, struct json_object *o, char *error, size_t size) {
        if (json_object_is_type(o, json_type_int)) {
                int64_t n = json_object_get_int64(o);
                if (n < 1 || n > (int64_t) UINT32_MAX)
                        return fail(error, size, "match.netns: %lld is not a namespace inode",
                                    (long long) n);
                v->nums[v->n++] = n;
                return 0;
        }
        if (!json_object_is_type(o, json_type_string))
                return fail(error, size, "match.netns: expected an inode number or a name under /run/netns");
        const char *s = json_object_get_string(o);
        size_t len = (size_t) json_object_get_string_len(o);
        if (len == 0 || len > FILTER_MAX_NETNS_NAME || strlen(s) != len || strchr(s, '/') ||
            streq(s, ".") || streq(s, ".."))
                return fail(error, size, "match.netns: \"%.*s\" is not a name under /run/netns "
                            "(1 to %d bytes, no '/')", PN_UTF8_CUT(s, 64), FILTER_MAX_NETNS_NAME);
        v->strs[v->n] = strdup(s);
        if (!v->strs[v->n])
                return -ENOMEM;
        v->nums[v->n++] = 0;
        return 0;
}

static int parse_value(FilterKey k, FilterValues *v, struct json_object *o, char *error,
                       size_t size) {
        const char *key = filter_key_names[k];
        switch (k) {
        case FILTER_SIGNAL:
                return parse_signal(v, o, error, size);
        case FILTER_CORE_DUMPED:
                if (!json_object_is_type(o, json_type_boolean))
                        return fail(error, size, "match.core_dumped: expected true or false");
                v->nums[v->n++] = json_object_get_boolean(o);
                return 0;
        case FILTER_EXIT_CODE:
                if (!json_object_is_type(o, json_type_int) || json_object_get_int64(o) < 0 ||
                    json_object_get_int64(o) > 255)
                        return fail(error, size, "match.exit_code: expected an integer from 0 to 255");
                v->nums[v->n++] = json_object_get_int64(o);
                return 0;
        case FILTER_NETNS:
                return parse_netns(v, o, error, size);
        default:
                break;
        }
        if (filter_key_is_numeric(k)) {
                if (!json_object_is_type(o, json_type_int))
                        return fail(error, size, "match.%s: expected an integer", key);
                int64_t n = json_object_get_int64(o);
                int64_t max = k == FILTER_UID ? (int64_t) UINT32_MAX - 1 : (int64_t) INT32_MAX;
                if (n < 0 || n > max || (k != FILTER_UID && k != FILTER_PPID && n == 0))
                        return fail(error, size, "match.%s: %lld is out of range", key,
                                    (long long) n);
                v->nums[v->n++] = n;
                return 0;
        }
        if (!json_object_is_type(o, json_type_string))
                return fail(error, size, "match.%s: expected a string", key);
        const char *s = json_object_get_string(o);
        size_t len = (size_t) json_object_get_string_len(o);
        if (len == 0 || len > FILTER_MAX_STRING || strlen(s) != len)
                return fail(error, size, "match.%s: string must have 1 to %d bytes and no NUL",
                            key, FILTER_MAX_STRING);
        if (k == FILTER_CGROUP && s[0] != '/')
                return fail(error, size, "match.cgroup: \"%.*s\" is not an absolute path",
                            PN_UTF8_CUT(s, 64));
        char *copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        /* A cgroup prefix is compared by path components: drop a trailing '/'. */
        if (k == FILTER_CGROUP && len > 1 && copy[len - 1] == '/')
                copy[len - 1] = 0;
        v->globs[v->n] = k != FILTER_CGROUP && has_glob(copy);
        v->prefix[v->n] = v->globs[v->n] ? glob_prefix(copy) : 0;
        v->strs[v->n++] = copy;
        return 0;
}

static int parse_key(FilterKey k, FilterValues *v, struct json_object *o, char *error,
                     size_t size) {
        bool array = json_object_is_type(o, json_type_array);
        size_t n = array ? json_object_array_length(o) : 1;
        const char *key = filter_key_names[k];

        if (n == 0)
                return fail(error, size, "match.%s: empty list", key);
        /* One service per subscription: its state is kept per subscription.
         * A list of one is taken, for clients that build every key as a list. */
        if (k == FILTER_FOLLOW && n > 1)
                return fail(error, size, "match.follow: expected one integer (a process id), not a list");
        if (n > FILTER_MAX_VALUES)
                return fail(error, size, "match.%s: more than %d values", key, FILTER_MAX_VALUES);
        if (filter_key_is_numeric(k)) {
                v->nums = calloc(n, sizeof(*v->nums));
                if (!v->nums)
                        return -ENOMEM;
                /* A namespace may be given by name. */
                if (k == FILTER_NETNS && !(v->strs = calloc(n, sizeof(*v->strs))))
                        return -ENOMEM;
        } else {
                v->strs = calloc(n, sizeof(*v->strs));
                v->globs = calloc(n, sizeof(*v->globs));
                v->prefix = calloc(n, sizeof(*v->prefix));
                if (!v->strs || !v->globs || !v->prefix)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                int r = parse_value(k, v, array ? json_object_array_get_idx(o, i) : o, error, size);
                if (r < 0)
                        return r;
        }
        return 0;
}

int filter_new_from_json(Filter **ret, struct json_object *events, struct json_object *threads,
                         struct json_object *match, char *error, size_t size) {
        _cleanup_(filter_freep) Filter *f = calloc(1, sizeof(*f));
        int r;

        if (!f)
                return -ENOMEM;
        r = parse_events(f, events, error, size);
        if (r < 0)
                return r;
        if (threads) {
                if (!json_object_is_type(threads, json_type_boolean))
                        return fail(error, size, "\"threads\" must be true or false");
                f->threads = json_object_get_boolean(threads);
        }
        if (match) {
                if (!json_object_is_type(match, json_type_object))
                        return fail(error, size, "\"match\" must be an object");
                json_object_object_foreach(match, key, val) {
                        FilterKey k;
                        for (k = 0; k < _FILTER_KEY_MAX; k++)
                                if (strcmp(filter_key_names[k], key) == 0)
                                        break;
                        if (k == _FILTER_KEY_MAX)
                                return fail(error, size, "unknown match key \"%.*s\"",
                                            PN_UTF8_CUT(key, 64));
                        /* json-c keeps the last of duplicate keys; nothing to check. */
                        r = parse_key(k, &f->values[k], val, error, size);
                        if (r < 0)
                                return r;
                        f->keys |= 1u << k;
                }
        }
        *ret = TAKE_PTR(f);
        return 0;
}

int filter_new_numeric(Filter **ret, FilterKey key, int64_t value, bool threads) {
        _cleanup_(filter_freep) Filter *f = NULL;

        if (key < 0 || key >= _FILTER_KEY_MAX || !filter_key_is_numeric(key) || key == FILTER_SIGNAL ||
            key == FILTER_NETNS || key == FILTER_FOLLOW)
                return -EINVAL;
        f = calloc(1, sizeof(*f));
        if (!f || !(f->values[key].nums = calloc(1, sizeof(int64_t))))
                return -ENOMEM;
        f->events = PN_EVENT_ALL_BITS;
        f->threads = threads;
        f->keys = 1u << key;
        f->values[key].nums[0] = value;
        f->values[key].n = 1;
        *ret = TAKE_PTR(f);
        return 0;
}

static bool match_num(const FilterValues *v, int64_t n) {
        for (size_t i = 0; i < v->n; i++)
                if (v->nums[i] == n)
                        return true;
        return false;
}

static bool match_str(const FilterValues *v, const char *s) {
        if (!s)
                return false;
        for (size_t i = 0; i < v->n; i++) {
                if (!v->globs[i] ? strcmp(v->strs[i], s) == 0
                    : v->prefix[i] ? strncmp(v->strs[i], s, v->prefix[i] - 1) == 0
                                   : fnmatch(v->strs[i], s, 0) == 0)
                        return true;
        }
        return false;
}

static bool match_cgroup(const FilterValues *v, const char *cg) {
        if (!cg)
                return false;
        for (size_t i = 0; i < v->n; i++) {
                const char *p = v->strs[i];
                size_t n = strlen(p);
                if (n == 1 && p[0] == '/')
                        return true;
                if (strncmp(cg, p, n) == 0 && (cg[n] == 0 || cg[n] == '/'))
                        return true;
        }
        return false;
}

static bool match_descendant(const FilterValues *v, pid_t tgid, const FilterContext *ctx) {
        for (size_t i = 0; i < v->n; i++) {
                if (v->nums[i] == tgid)
                        return true;
                if (ctx && ctx->is_descendant &&
                    ctx->is_descendant(ctx->userdata, tgid, (pid_t) v->nums[i]))
                        return true;
        }
        return false;
}

bool filter_has_netns_names(const Filter *f) {
        const FilterValues *v = &f->values[FILTER_NETNS];
        for (size_t i = 0; (f->keys & (1u << FILTER_NETNS)) && i < v->n; i++)
                if (v->strs[i] && v->nums[i] == 0)
                        return true;
        return false;
}

int filter_resolve_netns(Filter *f, FilterResolveNetns resolve, void *userdata, char *error,
                         size_t size) {
        FilterValues *v = &f->values[FILTER_NETNS];

        for (size_t i = 0; (f->keys & (1u << FILTER_NETNS)) && i < v->n; i++) {
                uint64_t ino = 0;
                int r;
                if (!v->strs[i] || v->nums[i] != 0)
                        continue;
                r = resolve ? resolve(v->strs[i], &ino, userdata) : -ENOENT;
                if (r == -ENOMEM)
                        return r;
                if (r < 0 || ino == 0 || ino > UINT32_MAX)
                        return fail(error, size, "match.netns: no network namespace named \"%.*s\" "
                                    "under /run/netns (%s)", PN_UTF8_CUT(v->strs[i], 64),
                                    r < 0 ? strerror(-r) : "not a namespace");
                v->nums[i] = (int64_t) ino;
        }
        return 0;
}

pid_t filter_get_follow(const Filter *f) {
        if (!(f->keys & (1u << FILTER_FOLLOW)) || f->values[FILTER_FOLLOW].n == 0)
                return 0;
        return (pid_t) f->values[FILTER_FOLLOW].nums[0];
}

#define FILTER_KEYS_OF_EXIT \
        ((1u << FILTER_SIGNAL) | (1u << FILTER_CORE_DUMPED) | (1u << FILTER_EXIT_CODE))

/* signal, core_dumped, exit_code: about how a process ended (or stopped).
 * An event that carries no such field, or carries it as not known (an
 * exit inferred after a loss; a predump whose signal is not known), does
 * not match a key about it. */
static bool match_how_ended(const Filter *f, const PnEvent *ev) {
        const FilterValues *v = f->values;
        bool known_exit = ev->type == PN_EVENT_EXIT && ev->exit.status >= 0;
        int sig = 0;

        if (f->keys & (1u << FILTER_SIGNAL)) {
                if (known_exit)
                        sig = ev->exit.signal;
                else if (ev->type == PN_EVENT_PREDUMP)
                        sig = ev->predump.signal;
                else if (ev->type == PN_EVENT_STOP)
                        sig = ev->stop.signal;
                if (sig == 0 || !match_num(&v[FILTER_SIGNAL], sig))
                        return false;
        }
        if ((f->keys & (1u << FILTER_CORE_DUMPED)) &&
            (!known_exit || !match_num(&v[FILTER_CORE_DUMPED], ev->exit.core_dumped)))
                return false;
        if ((f->keys & (1u << FILTER_EXIT_CODE)) &&
            (!known_exit || !match_num(&v[FILTER_EXIT_CODE], ev->exit.exit_code)))
                return false;
        return true;
}

bool filter_match(const Filter *f, const PnEvent *ev, const FilterContext *ctx) {
        if (ev->type == PN_EVENT_OVERRUN)
                return true;
        if (!(f->events & PN_EVENT_BIT(ev->type)))
                return false;
        if (ev->thread && !f->threads)
                return false;
        if (!f->keys)
                return true;

        const FilterValues *v = f->values;
        if ((f->keys & (1u << FILTER_PID)) && !match_num(&v[FILTER_PID], ev->pid) &&
            !match_num(&v[FILTER_PID], ev->tgid))
                return false;
        if ((f->keys & (1u << FILTER_TGID)) && !match_num(&v[FILTER_TGID], ev->tgid))
                return false;
        if ((f->keys & (1u << FILTER_PPID)) && !match_num(&v[FILTER_PPID], ev->ppid))
                return false;
        if ((f->keys & (1u << FILTER_UID)) &&
            (ev->uid == UINT32_MAX || !match_num(&v[FILTER_UID], ev->uid)))
                return false;
        if ((f->keys & (1u << FILTER_COMM)) && !match_str(&v[FILTER_COMM], ev->comm))
                return false;
        if ((f->keys & (1u << FILTER_EXE)) && !match_str(&v[FILTER_EXE], ev->exe))
                return false;
        if ((f->keys & (1u << FILTER_UNIT)) && !match_str(&v[FILTER_UNIT], ev->unit))
                return false;
        if ((f->keys & (1u << FILTER_CGROUP)) && !match_cgroup(&v[FILTER_CGROUP], ev->cgroup))
                return false;
        if ((f->keys & (1u << FILTER_CMDLINE)) && !match_str(&v[FILTER_CMDLINE], ev->cmdline))
                return false;
        if ((f->keys & (1u << FILTER_NETNS)) &&
            (ev->netns == 0 || !match_num(&v[FILTER_NETNS], (int64_t) ev->netns)))
                return false;
        if ((f->keys & FILTER_KEYS_OF_EXIT) && !match_how_ended(f, ev))
                return false;
        if ((f->keys & (1u << FILTER_DESCENDANTS_OF)) &&
            !match_descendant(&v[FILTER_DESCENDANTS_OF], ev->tgid, ctx))
                return false;
        return true;
}
