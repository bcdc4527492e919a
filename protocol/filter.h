/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Filter: what a subscription asks for, as event types plus a match on the
 * process. Keys are ANDed, the values of one key are ORed. A filter only ever
 * narrows what the broker's policy already allows a subscriber to see.
 *
 * Pure: parsing from JSON and matching against a PnEvent; the only outside
 * knowledge (is X a descendant of Y) comes through FilterContext.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/macro.h"
#include "procnotify/event.h"

struct json_object;

#define FILTER_MAX_VALUES 64      /* values per match key */
#define FILTER_MAX_STRING 4096    /* bytes per string value */
#define FILTER_MAX_NETNS_NAME 255 /* bytes of a name under /run/netns (NAME_MAX) */

typedef enum FilterKey {
        FILTER_PID,            /* the process (pid or tgid) */
        FILTER_TGID,
        FILTER_PPID,
        FILTER_UID,
        FILTER_COMM,           /* exact, or shell glob if it has * ? [ */
        FILTER_EXE,            /* exact, or shell glob */
        FILTER_CGROUP,         /* the cgroup or any below it */
        FILTER_UNIT,           /* exact, or shell glob */
        FILTER_DESCENDANTS_OF, /* the process itself or any descendant */
        FILTER_FOLLOW,         /* one process id: the followed service (matched by the sink) */
        FILTER_SIGNAL,         /* the event's signal: exit killed by, stop, predump when known */
        FILTER_CORE_DUMPED,    /* an exit with a known status: did it dump core (0/1) */
        FILTER_EXIT_CODE,      /* an exit with a known status: 0-255, like $? */
        FILTER_CMDLINE,        /* the command line (arguments joined by spaces), exact or glob */
        FILTER_NETNS,          /* the network namespace inode; names resolved by filter_resolve_netns() */
        _FILTER_KEY_MAX,
} FilterKey;

typedef struct FilterValues {
        size_t n;
        int64_t *nums;
        char **strs;      /* netns: the name a value was given as, NULL for an inode */
        bool *globs;
        uint32_t *prefix; /* a glob that is "abc*": 1 + strlen("abc"), compared without fnmatch; else 0 */
} FilterValues;

typedef struct Filter {
        uint32_t events;  /* PN_EVENT_BIT() set */
        bool threads;     /* also per-thread fork/exit/comm events */
        uint32_t keys;    /* 1 << FilterKey for every key present */
        FilterValues values[_FILTER_KEY_MAX];
} Filter;

typedef struct FilterContext {
        /* true if tgid is ancestor or a descendant of it */
        bool (*is_descendant)(void *userdata, pid_t tgid, pid_t ancestor);
        void *userdata;
} FilterContext;

/*
 * Parse a filter from the "events", "threads" and "match" members of a
 * request (each may be NULL: all events, no threads, match everything).
 * Returns 0 and a new filter, -EINVAL with a human-readable reason in
 * error (of size error_size), or -ENOMEM.
 */
int filter_new_from_json(Filter **ret, struct json_object *events, struct json_object *threads,
                         struct json_object *match, char *error, size_t error_size);
/*
 * A filter built without JSON: every event type (threads as asked) of the
 * processes whose numeric key (FILTER_PID, FILTER_TGID, FILTER_PPID,
 * FILTER_UID, FILTER_DESCENDANTS_OF) is value, as the match {key: value}
 * would give. Returns 0 and a new filter, -EINVAL for a key that is not
 * numeric, or -ENOMEM.
 */
int filter_new_numeric(Filter **ret, FilterKey key, int64_t value, bool threads);
Filter *filter_free(Filter *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(Filter *, filter_free)

/* Does ev pass f? Overrun events always pass. The "follow" key is not
 * tested here: membership of a followed service is state the sink keeps
 * per subscription (daemon/follow.h), and it tests it besides. */
bool filter_match(const Filter *f, const PnEvent *ev, const FilterContext *ctx);

/* Resolve a network namespace name (a file under /run/netns) to its inode:
 * 0, or a negative errno. */
typedef int (*FilterResolveNetns)(const char *name, uint64_t *ret_inode, void *userdata);

/*
 * Turn the names of the "netns" key into inodes, now: a subscription names
 * the namespace that had that name when it was made (one re-created under
 * the same name later is another namespace). Returns 0 (also without netns
 * names), or -EINVAL with the reason in error when a name resolves to
 * nothing; without a resolver every name fails.
 */
int filter_resolve_netns(Filter *f, FilterResolveNetns resolve, void *userdata, char *error,
                         size_t error_size);
/* Does f name a network namespace by name (that filter_resolve_netns() must resolve)? */
bool filter_has_netns_names(const Filter *f);

/* The process id of the "follow" key, 0 if the filter has none. */
pid_t filter_get_follow(const Filter *f);

const char *filter_key_to_string(FilterKey k);
