/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * HookFile: one /etc/procnotify/hooks.d/NAME.conf, parsed. An INI file
 * (libinih) with a [Match] section that becomes a subscription filter of the
 * JSON protocol (built and checked by protocol/filter.c, so hooks match
 * exactly as the broker does) and an [Exec] section saying what to run.
 *
 * Pure: no I/O, no logging. Every error names its line (0 when it is about
 * the file as a whole, e.g. a missing Command=).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/macro.h"
#include "procnotify/event.h"
#include "protocol/filter.h"

#define HOOK_FILE_MAX_SIZE (64u << 10)  /* bytes per hook file */
#define HOOK_FILE_MAX_LINE 4096         /* bytes of one line (longer than libinih's 200: handed in pieces) */
#define HOOK_NAME_MAX 64                /* bytes of a hook's name (the file name less ".conf") */
#define HOOK_MAX_WORDS 256              /* words of Command=, values of one list key */
#define HOOK_TIMEOUT_DEFAULT_USEC (30 * UINT64_C(1000000))
#define HOOK_TIMEOUT_MAX_USEC (24 * 3600 * UINT64_C(1000000))
#define HOOK_MAX_CONCURRENT_DEFAULT 4
#define HOOK_MAX_CONCURRENT_MAX 256
#define HOOK_MAX_QUEUED_DEFAULT 64
#define HOOK_MAX_QUEUED_MAX 4096

typedef struct HookFileError {
        unsigned line;       /* 1-based; 0: the file as a whole */
        char message[256];
} HookFileError;

/* Resolve a user name of Uid= to its uid: 0, or -ENOENT if there is no such
 * user. NULL: Uid= takes numbers only. */
typedef int (*HookResolveUid)(const char *name, uint32_t *ret_uid);

typedef struct HookFile {
        char *name;             /* the file name without ".conf" */
        uint32_t events;        /* PN_EVENT_BIT() of Events=, overrun included if named */
        char **event_names;     /* NULL-terminated, for the subscription; NULL: all types */
        char *match_json;       /* the subscription's "match" object; NULL: every process */
        Filter *filter;         /* the same, to match events locally */
        char **argv;            /* Command= split into words, NULL-terminated; argv[0] absolute */
        char *user;             /* User=, or NULL: the runner's own user */
        uint64_t timeout_usec;  /* Timeout= */
        unsigned max_concurrent; /* MaxConcurrent= */
        unsigned max_queued;    /* MaxQueued= */
        unsigned command_line;  /* line of Command=, for errors the runner finds later */
        unsigned user_line;     /* line of User=, 0 if none */
} HookFile;

/*
 * Parse the hook file named name (the file name less ".conf") from text
 * (size bytes, need not be NUL-terminated; NUL bytes are an error). Returns 0
 * and a new HookFile, -EINVAL with *err filled, or -ENOMEM.
 */
int hook_file_parse(HookFile **ret, const char *name, const char *text, size_t size,
                    HookResolveUid resolve_uid, HookFileError *err);
HookFile *hook_file_free(HookFile *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(HookFile *, hook_file_free)

/* Does ev start this hook? Overruns only if Events= names "overrun" (or is
 * "all"); per-thread events never. */
bool hook_file_match(const HookFile *h, const PnEvent *ev);

/* Is name a valid hook name: 1 to HOOK_NAME_MAX bytes of [A-Za-z0-9_.@-],
 * not starting with '.'? */
bool hook_name_is_valid(const char *name);

/*
 * Split s into words: separated by blanks; "…" and '…' quote (blanks kept);
 * a backslash outside single quotes takes the next character as it is.
 * Returns 0 and a NULL-terminated array (free with hook_strv_free()) and
 * its length, or -EINVAL (unterminated quote, trailing backslash, more than
 * HOOK_MAX_WORDS words) with a reason in error, or -ENOMEM.
 */
int hook_split_words(const char *s, char ***ret, size_t *ret_n, char *error, size_t error_size);
char **hook_strv_free(char **v);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, hook_strv_free)

/* "30", "30s", "500ms", "1.5s", "2min", "1h", "250us": a duration in
 * microseconds. Returns 0, or -EINVAL. */
int hook_parse_timespan(const char *s, uint64_t *ret_usec);
