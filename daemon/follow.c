/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Follow: the member set and main pid of one followed service; see
 * follow.h. Members live in an open-addressing
 * hash set keyed by tgid (0 marks a free slot), so that the test every
 * published event makes against every follow is one probe.
 */
#include <errno.h>
#include <stdlib.h>

#include "common/macro.h"
#include "follow.h"

typedef struct Member {
        pid_t tgid; /* 0: free slot */
        pid_t ppid; /* its parent as the events told */
        uint64_t order;
} Member;

struct Follow {
        pid_t main;
        Member *slots;
        size_t nslots; /* power of two */
        size_t n;
        uint64_t next_order;
        bool limit_reported;
};

static size_t slot_of(const Follow *f, pid_t tgid) {
        return ((uint32_t) tgid * 2654435761u) & (f->nslots - 1);
}

static Member *find(const Follow *f, pid_t tgid) {
        if (tgid <= 0)
                return NULL;
        for (size_t i = slot_of(f, tgid);; i = (i + 1) & (f->nslots - 1)) {
                Member *m = &f->slots[i];
                if (m->tgid == 0)
                        return NULL;
                if (m->tgid == tgid)
                        return m;
        }
}

static void put(Follow *f, Member m) {
        size_t i = slot_of(f, m.tgid);
        while (f->slots[i].tgid != 0)
                i = (i + 1) & (f->nslots - 1);
        f->slots[i] = m;
        f->n++;
}

static int grow(Follow *f) {
        Member *old = f->slots;
        size_t old_n = f->nslots;
        Member *slots = calloc(old_n * 2, sizeof(*slots));

        if (!slots)
                return -ENOMEM;
        f->slots = slots;
        f->nslots = old_n * 2;
        f->n = 0;
        for (size_t i = 0; i < old_n; i++)
                if (old[i].tgid)
                        put(f, old[i]);
        free(old);
        return 0;
}

static void remove_member(Follow *f, Member *m) {
        size_t mask = f->nslots - 1, i = (size_t) (m - f->slots);

        m->tgid = 0;
        f->n--;
        /* Backward-shift deletion, as in the process table. */
        for (size_t j = (i + 1) & mask; f->slots[j].tgid; j = (j + 1) & mask) {
                size_t home = slot_of(f, f->slots[j].tgid);
                if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
                        f->slots[i] = f->slots[j];
                        f->slots[j].tgid = 0;
                        i = j;
                }
        }
}

int follow_add(Follow *f, pid_t tgid, pid_t ppid) {
        int r;

        if (tgid <= 0)
                return -EINVAL;
        if (find(f, tgid))
                return FOLLOW_E_MEMBER;
        if (f->n >= FOLLOW_MAX_MEMBERS)
                return FOLLOW_E_FULL;
        if ((f->n + 1) * 2 > f->nslots && (r = grow(f)) < 0)
                return r;
        put(f, (Member){ .tgid = tgid, .ppid = ppid, .order = f->next_order++ });
        return 0;
}

int follow_new(Follow **ret, pid_t main, pid_t main_ppid) {
        Follow *f = calloc(1, sizeof(*f));
        int r;

        if (!f)
                return -ENOMEM;
        f->nslots = 16;
        f->slots = calloc(f->nslots, sizeof(*f->slots));
        if (!f->slots) {
                free(f);
                return -ENOMEM;
        }
        f->main = main;
        r = follow_add(f, main, main_ppid);
        if (r < 0) {
                follow_free(f);
                return r;
        }
        *ret = f;
        return 0;
}

Follow *follow_free(Follow *f) {
        if (!f)
                return NULL;
        free(f->slots);
        free(f);
        return NULL;
}

bool follow_has(const Follow *f, pid_t tgid) {
        return find(f, tgid) != NULL;
}

pid_t follow_get_main(const Follow *f) {
        return f->main;
}

size_t follow_size(const Follow *f) {
        return f->n;
}

/* The main exited (and left the set): choose its successor. */
static void move_main(Follow *f, pid_t old_main, FollowChange *ret) {
        const Member *best = NULL;
        bool best_child = false;
        size_t candidates = 0;

        for (size_t i = 0; i < f->nslots; i++) {
                const Member *m = &f->slots[i];
                if (!m->tgid || find(f, m->ppid))
                        continue; /* free, or below another member */
                bool child = m->ppid == old_main;
                candidates++;
                /* The main's own children first, then by the order they joined. */
                if (!best || (child && !best_child) ||
                    (child == best_child && m->order < best->order)) {
                        best = m;
                        best_child = child;
                }
        }
        f->main = best ? best->tgid : 0;
        ret->kind = best ? FOLLOW_CHANGE_MAIN_EXITED : FOLLOW_CHANGE_ENDED;
        ret->candidates = candidates;
}

bool follow_update(Follow *f, const PnEvent *ev, FollowChange *ret) {
        Member *m;

        *ret = (FollowChange){ .kind = FOLLOW_CHANGE_NONE, .main = f->main, .previous_main = f->main };
        if (ev->type == PN_EVENT_OVERRUN)
                return false;
        m = find(f, ev->tgid);
        if (ev->thread)
                return m != NULL; /* threads come and go inside a member */

        switch (ev->type) {
        case PN_EVENT_FORK:
                if (!m && find(f, ev->ppid)) {
                        int r = follow_add(f, ev->tgid, ev->ppid);
                        if (r == FOLLOW_E_FULL || r == -ENOMEM) {
                                if (!f->limit_reported) {
                                        f->limit_reported = true;
                                        ret->kind = FOLLOW_CHANGE_LIMIT;
                                }
                                break;
                        }
                        m = find(f, ev->tgid);
                }
                break;
        case PN_EVENT_ADOPT:
                if (m)
                        m->ppid = ev->adopt.new_parent;
                break;
        case PN_EVENT_EXIT:
                if (!m)
                        break;
                remove_member(f, m);
                if (ev->tgid == f->main)
                        move_main(f, ev->tgid, ret);
                ret->main = f->main;
                ret->members = f->n;
                return true;
        default:
                break;
        }
        ret->members = f->n;
        return m != NULL;
}
