/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The "recently ended" ring (ended.h): remember the last ENDED_RING exits
 * published, for a bounded time.
 */
#include "ended.h"

static size_t bucket(pid_t tgid) {
        return ((uint32_t) tgid * 2654435761u) >> (32 - ENDED_FILTER_BITS);
}

/* Might the ring hold tgid? */
static bool maybe(const EndedRing *r, pid_t tgid) {
        return r->held[bucket(tgid)] > 0;
}

static void clear(EndedRing *r, Ended *e) {
        if (e->tgid)
                r->held[bucket(e->tgid)]--;
        *e = (Ended){ 0 };
}

void ended_add(EndedRing *r, pid_t tgid, uint64_t now_ns, bool without_connector) {
        clear(r, &r->ended[r->next]);
        r->ended[r->next] = (Ended){ .tgid = tgid, .at_ns = now_ns, .without_connector = without_connector };
        r->held[bucket(tgid)]++;
        r->next = (r->next + 1) % ENDED_RING;
}

bool ended_seen(const EndedRing *r, pid_t tgid, uint64_t now_ns, uint64_t keep_ns) {
        if (!maybe(r, tgid))
                return false;
        for (size_t i = 0; i < ENDED_RING; i++)
                if (r->ended[i].tgid == tgid && r->ended[i].at_ns && now_ns - r->ended[i].at_ns < keep_ns)
                        return true;
        return false;
}

bool ended_after(const EndedRing *r, pid_t tgid, uint64_t ts_ns, uint64_t now_ns, uint64_t keep_ns) {
        if (!maybe(r, tgid))
                return false;
        for (size_t i = 0; i < ENDED_RING; i++)
                if (r->ended[i].tgid == tgid && r->ended[i].without_connector && r->ended[i].at_ns > ts_ns &&
                    now_ns - r->ended[i].at_ns < keep_ns)
                        return true;
        return false;
}

void ended_forget(EndedRing *r, pid_t tgid) {
        for (size_t i = 0; maybe(r, tgid) && i < ENDED_RING; i++)
                if (r->ended[i].tgid == tgid)
                        clear(r, &r->ended[i]);
}
