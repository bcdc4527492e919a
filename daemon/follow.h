/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Follow: the processes of one followed service, for a subscription with
 * match key "follow" (PROTOCOL.md, "Following a service"). The set starts
 * as the named process and its descendants; a process forked by a member
 * joins it and stays a member when it is re-parented (to init or a
 * subreaper); a member leaves when it exits. The "main" is the named
 * process at first; when the main exits, it moves to the surviving member
 * nearest the top: among the members whose parent is not a member, the
 * exiting main's own children first, then the others, each in the order
 * they joined.
 *
 * Pure: it learns everything from the events the broker publishes (and the
 * seed the caller adds); no I/O, no logging.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/macro.h"
#include "procnotify/event.h"

#define FOLLOW_MAX_MEMBERS 4096     /* live processes tracked per follow */
#define FOLLOW_MAX_PER_CONNECTION 8 /* follows per client connection */

typedef struct Follow Follow;

typedef enum FollowChangeKind {
        FOLLOW_CHANGE_NONE,
        FOLLOW_CHANGE_MAIN_EXITED, /* the main exited; main is its successor */
        FOLLOW_CHANGE_ENDED,       /* the main exited and no member is left; main is 0 */
        FOLLOW_CHANGE_LIMIT,       /* a member forked, but the set is full: not followed */
} FollowChangeKind;

typedef struct FollowChange {
        FollowChangeKind kind;
        pid_t main;          /* the main after the event */
        pid_t previous_main; /* the main before it */
        size_t candidates;   /* members that could have become the main */
        size_t members;      /* members after the event */
} FollowChange;

/* A follow whose main (and first member) is main. Returns 0 or -ENOMEM. */
int follow_new(Follow **ret, pid_t main, pid_t main_ppid);
Follow *follow_free(Follow *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(Follow *, follow_free);

/* Why follow_add() added nothing (small positive, STYLE.md). */
enum {
        FOLLOW_E_MEMBER = 1, /* it is a member already */
        FOLLOW_E_FULL,       /* the set holds FOLLOW_MAX_MEMBERS */
};
/* Add a member with its current parent (to seed the set with the main's
 * descendants). 0, FOLLOW_E_*, or -ENOMEM. */
int follow_add(Follow *f, pid_t tgid, pid_t ppid);

bool follow_has(const Follow *f, pid_t tgid);
pid_t follow_get_main(const Follow *f);
size_t follow_size(const Follow *f);

/*
 * Apply one published event: a fork by a member adds the child, an adopt
 * updates a member's parent, a member's exit removes it and may move the
 * main. Returns whether the event is about a member as of the event (an
 * exiting member still is); *ret says what changed.
 */
bool follow_update(Follow *f, const PnEvent *ev, FollowChange *ret);
