/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The broker's answers to the sinks about the process tree: whether a
 * process descends from another (the "descendants_of" filter), and a new
 * follow of a service seeded with its processes as the table knows them
 * now (PROTOCOL.md, "Following a service").
 */
#include <errno.h>

#include "broker-internal.h"
#include "common/clock.h"

bool broker_is_descendant(void *userdata, pid_t tgid, pid_t ancestor) {
        Broker *b = userdata;
        return proctable_is_descendant(b->table, tgid, ancestor);
}

typedef struct FollowSeed {
        Follow *follow;
        int r;
} FollowSeed;

static void broker_follow_seed_one(const ProcEntry *e, void *userdata) {
        FollowSeed *fs = userdata;
        if (fs->r >= 0)
                fs->r = follow_add(fs->follow, e->tgid, e->ppid);
}

int broker_follow_new(void *userdata, pid_t pid, Follow **ret, uint32_t *ret_uid) {
        Broker *b = userdata;
        /* A service just started may be newer than the connector's fork
         * event of it: learn it from /proc then, as a watch does. */
        const ProcEntry *e = proctable_learn(b->table, pid, clock_ns(CLOCK_MONOTONIC));
        FollowSeed fs = { 0 };
        int r;

        if (!e)
                return -ESRCH;
        r = follow_new(&fs.follow, pid, e->ppid);
        if (r < 0)
                return r;
        (void) proctable_foreach_descendant(b->table, pid, broker_follow_seed_one, &fs);
        /* A service with more processes than a follow holds is followed in
         * part (FOLLOW_E_FULL); the sink reports the limit when it is hit
         * by a fork. */
        if (fs.r < 0) {
                follow_free(fs.follow);
                return fs.r;
        }
        *ret_uid = e->uid;
        *ret = fs.follow;
        return 0;
}
