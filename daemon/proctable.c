/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ProcTable implementation; see proctable.h.
 *
 * Entries live in an open-addressing hash map keyed by tgid, and form the
 * process tree through intrusive parent/child links so that a parent's exit
 * finds its children without a scan. Strings that children inherit at fork
 * (exe, cmdline, cgroup, unit) are shared by reference count: a fork costs
 * no string copy.
 *
 * Deferred work (an adoption whose new parent is not settled yet, a leader
 * exit whose thread count needs verifying, a vanished process waiting for its
 * late exit event) is kept in a small list with deadlines that the broker
 * drives from a timer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "proctable.h"

/*
 * Strings are interned: every distinct exe, cmdline, cgroup and unit is held
 * once, however many entries name it (a host runs many copies of the same
 * program in the same few cgroups), found by content in a small chained hash
 * set and dropped from it when the last entry lets go.
 */
struct RefStr {
        unsigned ref;
        uint32_t hash;
        RefStr *next; /* in its bucket */
        char s[];
};

typedef struct StrSet {
        RefStr **buckets;
        size_t nbuckets; /* power of two, or 0 before the first string */
        size_t n;
} StrSet;

static uint32_t str_hash(const char *s, size_t n) {
        uint32_t h = 2166136261u; /* FNV-1a */
        for (size_t i = 0; i < n; i++)
                h = (h ^ (unsigned char) s[i]) * 16777619u;
        return h;
}

static void strset_grow(StrSet *set) {
        size_t n = set->nbuckets ? set->nbuckets * 2 : 256;
        RefStr **b = calloc(n, sizeof(*b));

        if (!b)
                return; /* longer chains, still correct */
        for (size_t i = 0; i < set->nbuckets; i++)
                for (RefStr *r = set->buckets[i], *next; r; r = next) {
                        next = r->next;
                        r->next = b[r->hash & (n - 1)];
                        b[r->hash & (n - 1)] = r;
                }
        free(set->buckets);
        set->buckets = b;
        set->nbuckets = n;
}

/* A reference to the interned copy of s (NULL for NULL, or out of memory). */
static RefStr *refstr_new(StrSet *set, const char *s) {
        size_t n;
        uint32_t h;
        RefStr *r;

        if (!s)
                return NULL;
        n = strlen(s);
        h = str_hash(s, n);
        for (r = set->nbuckets ? set->buckets[h & (set->nbuckets - 1)] : NULL; r; r = r->next)
                if (r->hash == h && memcmp(r->s, s, n + 1) == 0) {
                        r->ref++;
                        return r;
                }
        if (set->n >= set->nbuckets)
                strset_grow(set);
        if (!set->nbuckets)
                return NULL;
        r = malloc(sizeof(*r) + n + 1);
        if (!r)
                return NULL;
        r->ref = 1;
        r->hash = h;
        memcpy(r->s, s, n + 1);
        r->next = set->buckets[h & (set->nbuckets - 1)];
        set->buckets[h & (set->nbuckets - 1)] = r;
        set->n++;
        return r;
}

static RefStr *refstr_ref(RefStr *r) {
        if (r)
                r->ref++;
        return r;
}

static RefStr *refstr_unref(StrSet *set, RefStr *r) {
        if (!r || --r->ref > 0)
                return NULL;
        for (RefStr **p = &set->buckets[r->hash & (set->nbuckets - 1)]; *p; p = &(*p)->next)
                if (*p == r) {
                        *p = r->next;
                        break;
                }
        set->n--;
        free(r);
        return NULL;
}

static const char *refstr_get(const RefStr *r) {
        return r ? r->s : NULL;
}

/* Replace *slot with a reference to s, unless it already says s. */
static void refstr_set(StrSet *set, RefStr **slot, const char *s) {
        if (streq_ptr(refstr_get(*slot), s))
                return;
        refstr_unref(set, *slot);
        *slot = refstr_new(set, s);
}

typedef enum PendingKind {
        PENDING_ADOPT,  /* child whose parent exited: read its new parent */
        PENDING_LEADER, /* leader exited with threads left: verify */
        PENDING_GHOST,  /* not in /proc at resync: report unless its exit comes */
        PENDING_EXIT,   /* an exit held for another source's report of it */
        PENDING_PREDUMP, /* a predump held for the other of connector and prctl signal */
        PENDING_ADOPT_HELD, /* the same for an adoption */
} PendingKind;

typedef struct Pending {
        PendingKind kind;
        pid_t tgid;
        uint64_t start_time;
        pid_t old_parent;
        unsigned tries;
        uint64_t deadline;
} Pending;

#define PENDING_MAX 65536

/* Processes whose exit was published lately: a later report of the same end
 * by another source (the connector after a child's wait status, or the
 * reverse) is dropped instead of published twice. */
typedef struct Ended {
        pid_t tgid;
        uint64_t at_ns;
        bool without_connector; /* published before the connector told */
} Ended;
#define ENDED_RING 256

struct ProcTable {
        ProcReader reader;
        size_t max_entries;
        ProcEntry **slots;
        size_t nslots; /* power of two */
        size_t n;
        Pending *pending;
        size_t n_pending, cap_pending;
        unsigned generation;
        Ended ended[ENDED_RING];
        size_t ended_next;
        uint64_t connector_ts;  /* latest kernel time of a connector event */
        size_t n_held;          /* exits seen by another source, held for the connector */
        pid_t prctl_self;       /* the broker, when a patched kernel signals it (proctable_set_prctl()) */
        bool prctl_predump, prctl_adopt;
        StrSet strings;
        ProcTableStats stats;
};

/* Per-entry state private to this file, allocated with the public part. */
typedef struct Entry {
        ProcEntry pub;
        int last_status;   /* latest non-zero thread exit status (by kernel time), else 0 */
        uint64_t last_status_ts;
        bool leader_exited;
        uint64_t exec_ts;  /* kernel time of its latest exec, 0 if none seen */
        unsigned seen_gen; /* generation of the last resync that saw it */
        unsigned watchers; /* pidfd watches, which report its exit too */
        /* Its exit, seen by one source and held for another's report
         * (process_exit_seen()). */
        bool exit_held;
        int held_status;
        uint32_t held_sources;
        uint64_t held_ts;      /* the first source's time of the exit */
        uint64_t held_seen_ns; /* CLOCK_MONOTONIC when the held report was handled */
        bool tracked;          /* learned by proctable_track() after its exec */
        bool predump_reported;
        /* Its parent exited while it lived, but it was gone before /proc
         * could tell its new parent: its own exit (which names the parent
         * it had then) settles the adoption (adoption_settle_at_exit()). */
        pid_t adopt_from;
        uint64_t adopt_ts;
        /* A predump or an adoption that one of the connector and a patched
         * kernel's signal reported, held for the other (predump_seen(),
         * adopt_seen()): the sources so far (0: none held) and what they
         * told. */
        uint32_t predump_held;
        uint64_t predump_held_ts;
        pid_t predump_held_pid;
        __typeof__(((PnEvent *) 0)->predump) predump_held_details; /* read at the first report */
        uint32_t adopt_held;
        uint64_t adopt_held_ts;
        pid_t adopt_held_old, adopt_held_new;
} Entry;

void proc_info_done(ProcInfo *i) {
        free(i->exe);
        free(i->cmdline);
        free(i->cgroup);
        i->exe = i->cmdline = i->cgroup = NULL;
}

/* --- hash map --- */

static size_t slot_of(const ProcTable *t, pid_t tgid) {
        return ((uint32_t) tgid * 2654435761u) & (t->nslots - 1);
}

static Entry *map_find(const ProcTable *t, pid_t tgid) {
        for (size_t i = slot_of(t, tgid);; i = (i + 1) & (t->nslots - 1)) {
                ProcEntry *e = t->slots[i];
                if (!e)
                        return NULL;
                if (e->tgid == tgid)
                        return (Entry *) e;
        }
}

static void map_put(ProcTable *t, ProcEntry *e) {
        size_t i = slot_of(t, e->tgid);
        while (t->slots[i])
                i = (i + 1) & (t->nslots - 1);
        t->slots[i] = e;
        t->n++;
}

static int map_grow(ProcTable *t) {
        size_t old_n = t->nslots;
        ProcEntry **old = t->slots;
        ProcEntry **slots = calloc(old_n * 2, sizeof(*slots));

        if (!slots)
                return -ENOMEM;
        t->slots = slots;
        t->nslots = old_n * 2;
        t->n = 0;
        for (size_t i = 0; i < old_n; i++)
                if (old[i])
                        map_put(t, old[i]);
        free(old);
        return 0;
}

static void map_remove(ProcTable *t, pid_t tgid) {
        size_t mask = t->nslots - 1, i = slot_of(t, tgid);

        while (t->slots[i] && t->slots[i]->tgid != tgid)
                i = (i + 1) & mask;
        if (!t->slots[i])
                return;
        t->slots[i] = NULL;
        t->n--;
        /* Backward-shift deletion keeps probe chains intact without tombstones. */
        for (size_t j = (i + 1) & mask; t->slots[j]; j = (j + 1) & mask) {
                size_t home = slot_of(t, t->slots[j]->tgid);
                /* Move j to i if its home is not cyclically within (i, j]. */
                if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
                        t->slots[i] = t->slots[j];
                        t->slots[j] = NULL;
                        i = j;
                }
        }
}

/* --- tree --- */

static void tree_unlink(ProcEntry *e) {
        if (!e->parent)
                return;
        if (e->prev_sibling)
                e->prev_sibling->next_sibling = e->next_sibling;
        else
                e->parent->first_child = e->next_sibling;
        if (e->next_sibling)
                e->next_sibling->prev_sibling = e->prev_sibling;
        e->parent = e->next_sibling = e->prev_sibling = NULL;
}

static void tree_link(ProcEntry *e, ProcEntry *parent) {
        tree_unlink(e);
        if (!parent || parent == e)
                return;
        e->parent = parent;
        e->next_sibling = parent->first_child;
        if (parent->first_child)
                parent->first_child->prev_sibling = e;
        parent->first_child = e;
}

/* --- entries --- */

static Entry *entry_new(ProcTable *t, pid_t tgid, uint64_t now_ns) {
        Entry *e;

        if (t->n >= t->max_entries) {
                t->stats.full++;
                return NULL;
        }
        if ((t->n + 1) * 2 > t->nslots && map_grow(t) < 0)
                return NULL;
        e = calloc(1, sizeof(*e));
        if (!e)
                return NULL;
        e->pub.tgid = tgid;
        e->pub.born_ns = now_ns;
        e->pub.nthreads = 1;
        e->pub.uid = e->pub.euid = e->pub.gid = e->pub.egid = UINT32_MAX;
        e->seen_gen = t->generation;
        map_put(t, &e->pub);
        return e;
}

static void entry_free(ProcTable *t, Entry *e) {
        ProcEntry *p = &e->pub;

        tree_unlink(p);
        while (p->first_child)
                tree_unlink(p->first_child);
        refstr_unref(&t->strings, p->exe);
        refstr_unref(&t->strings, p->cmdline);
        refstr_unref(&t->strings, p->cgroup);
        refstr_unref(&t->strings, p->unit);
        map_remove(t, p->tgid);
        free(e);
}

static void entry_set_cgroup(ProcTable *t, ProcEntry *e, const char *cgroup) {
        char buf[256];

        if (streq_ptr(refstr_get(e->cgroup), cgroup))
                return;
        refstr_set(&t->strings, &e->cgroup, cgroup);
        refstr_set(&t->strings, &e->unit, cgroup ? proctable_unit_from_cgroup(cgroup, buf, sizeof(buf)) : NULL);
}

/* Copy what was read into the entry. */
static void entry_apply_info(ProcTable *t, Entry *e, const ProcInfo *info, unsigned what) {
        ProcEntry *p = &e->pub;

        if (what & PROC_READ_STAT) {
                p->start_time = info->start_time;
                memcpy(p->comm, info->comm, sizeof(p->comm));
                if (p->ppid != info->ppid || (!p->parent && info->ppid > 0)) {
                        p->ppid = info->ppid;
                        Entry *parent = map_find(t, info->ppid);
                        tree_link(p, parent ? &parent->pub : NULL);
                }
        }
        if (what & PROC_READ_STATUS) {
                p->uid = info->uid;
                p->euid = info->euid;
                p->gid = info->gid;
                p->egid = info->egid;
        }
        if (what & PROC_READ_EXE)
                refstr_set(&t->strings, &p->exe, info->exe);
        if (what & PROC_READ_CMDLINE)
                refstr_set(&t->strings, &p->cmdline, info->cmdline);
        if ((what & PROC_READ_CGROUP) && info->cgroup)
                entry_set_cgroup(t, p, info->cgroup);
        if ((what & PROC_READ_NETNS) && info->netns)
                p->netns = info->netns;
}

/* Learn about a process the table has not seen yet, from the reader. */
static Entry *entry_load(ProcTable *t, pid_t tgid, uint64_t now_ns) {
        _cleanup_(proc_info_done) ProcInfo info = { 0 };
        Entry *e;

        if (tgid <= 0 || t->reader.read(t->reader.userdata, tgid, PROC_READ_ALL, &info) < 0)
                return NULL;
        e = entry_new(t, tgid, now_ns);
        if (!e)
                return NULL;
        entry_apply_info(t, e, &info, PROC_READ_ALL);
        e->pub.nthreads = info.nthreads > 0 ? (int32_t) info.nthreads : 1;
        return e;
}

static Entry *entry_find_or_load(ProcTable *t, pid_t tgid, uint64_t now_ns) {
        Entry *e = map_find(t, tgid);
        return e ? e : entry_load(t, tgid, now_ns);
}

void proctable_enrich(const ProcEntry *e, PnEvent *ev) {
        ev->comm = e->comm[0] ? e->comm : NULL;
        ev->exe = refstr_get(e->exe);
        ev->cmdline = refstr_get(e->cmdline);
        ev->cgroup = refstr_get(e->cgroup);
        ev->unit = refstr_get(e->unit);
        ev->netns = e->netns;
        ev->uid = e->uid;
        ev->ppid = e->ppid;
}

/* --- pending work --- */

/* Returns false if the work could not be queued (full, out of memory). */
static bool pending_add(ProcTable *t, PendingKind kind, const ProcEntry *e, pid_t old_parent,
                        unsigned tries, uint64_t deadline) {
        if (t->n_pending >= PENDING_MAX)
                return false;
        if (t->n_pending == t->cap_pending) {
                size_t cap = t->cap_pending ? t->cap_pending * 2 : 16;
                Pending *p = realloc(t->pending, cap * sizeof(*p));
                if (!p)
                        return false;
                t->pending = p;
                t->cap_pending = cap;
        }
        t->pending[t->n_pending++] = (Pending){
                .kind = kind,
                .tgid = e->tgid,
                .start_time = e->start_time,
                .old_parent = old_parent,
                .tries = tries,
                .deadline = deadline,
        };
        return true;
}

uint64_t proctable_next_deadline(const ProcTable *t) {
        uint64_t d = 0;
        for (size_t i = 0; i < t->n_pending; i++)
                if (d == 0 || t->pending[i].deadline < d)
                        d = t->pending[i].deadline;
        return d;
}

/* --- recently ended --- */

static void ended_add(ProcTable *t, pid_t tgid, uint64_t now_ns, bool without_connector) {
        t->ended[t->ended_next] = (Ended){ .tgid = tgid, .at_ns = now_ns,
                                           .without_connector = without_connector };
        t->ended_next = (t->ended_next + 1) % ENDED_RING;
}

static bool ended_seen(const ProcTable *t, pid_t tgid, uint64_t now_ns) {
        for (size_t i = 0; i < ENDED_RING; i++)
                if (t->ended[i].tgid == tgid && t->ended[i].at_ns &&
                    now_ns - t->ended[i].at_ns < PROCTABLE_ENDED_KEEP_NS)
                        return true;
        return false;
}

/* Was the end of tgid published, before the connector told of it, after
 * ts_ns (so that a connector event of tgid stamped ts_ns is a late one of the
 * process that ended, not one of a new process with its pid)? */
static bool ended_after(const ProcTable *t, pid_t tgid, uint64_t ts_ns, uint64_t now_ns) {
        for (size_t i = 0; i < ENDED_RING; i++)
                if (t->ended[i].tgid == tgid && t->ended[i].without_connector &&
                    t->ended[i].at_ns > ts_ns &&
                    now_ns - t->ended[i].at_ns < PROCTABLE_ENDED_KEEP_NS)
                        return true;
        return false;
}

/* A new process has this pid: its exit is not the old one's. */
static void ended_forget(ProcTable *t, pid_t tgid) {
        for (size_t i = 0; i < ENDED_RING; i++)
                if (t->ended[i].tgid == tgid)
                        t->ended[i] = (Ended){ 0 };
}

/* --- events --- */

static void emit_exit(ProcTable *t, Entry *e, int status, uint32_t sources, uint64_t ts_ns,
                      ProcTableEmitFn emit, void *userdata) {
        PnEvent ev = {
                .type = PN_EVENT_EXIT,
                .ts_ns = ts_ns,
                .sources = sources,
                .pid = e->pub.tgid,
                .tgid = e->pub.tgid,
        };
        proctable_enrich(&e->pub, &ev);
        if (status >= 0)
                pn_event_set_exit_status(&ev, status);
        else {
                ev.exit.status = -1;
                t->stats.inferred_exits++;
        }
        emit(&ev, userdata);
}

static void emit_adopt(ProcTable *t, ProcEntry *child, pid_t old_parent, pid_t new_parent,
                       uint64_t ts_ns, uint32_t sources, ProcTableEmitFn emit, void *userdata) {
        Entry *np = map_find(t, new_parent);
        PnEvent ev = {
                .type = PN_EVENT_ADOPT,
                .ts_ns = ts_ns,
                .sources = sources,
                .pid = child->tgid,
                .tgid = child->tgid,
        };

        child->ppid = new_parent;
        tree_link(child, np ? &np->pub : NULL);
        proctable_enrich(child, &ev);
        ev.adopt.old_parent = old_parent;
        ev.adopt.new_parent = new_parent;
        t->stats.adoptions++;
        emit(&ev, userdata);
}

/*
 * The connector and a patched kernel's signal (PN_SOURCE_PRCTL) report the
 * same crash of a child of the broker, and the same adoption of an orphan
 * by it: one event names both. The first report is held at most
 * PROCTABLE_PRCTL_HOLD_NS for the other (the kernel sends both within
 * microseconds), and only when the other is expected (proctable_set_prctl(),
 * a child of the broker; an adoption by it); the process's exit publishes
 * it first.
 */
static void predump_release(ProcTable *t, Entry *e, ProcTableEmitFn emit, void *userdata) {
        /* A process-level event: pid is the process, the crashing thread
         * is predump.tid (as the first report told it). */
        PnEvent ev = {
                .type = PN_EVENT_PREDUMP,
                .ts_ns = e->predump_held_ts,
                .sources = e->predump_held,
                .pid = e->pub.tgid,
                .tgid = e->pub.tgid,
                .predump = e->predump_held_details,
        };
        e->predump_held = 0;
        e->predump_reported = true;
        proctable_enrich(&e->pub, &ev);
        emit(&ev, userdata);
}

static void predump_read(ProcTable *t, Entry *e, PnEvent *ev);

static void predump_seen(ProcTable *t, Entry *e, PnEvent *ev, uint64_t now_ns, ProcTableEmitFn emit,
                         void *userdata) {
        if (e->predump_reported)
                return; /* published already */
        if (e->predump_held) {
                if (e->predump_held & ev->sources)
                        return; /* the same source twice */
                e->predump_held |= ev->sources;
                e->predump_held_ts = MIN(e->predump_held_ts, ev->ts_ns);
                /* The connector names the crashing thread; the signal does not. */
                if (!e->predump_held_details.tid)
                        e->predump_held_details.tid = ev->predump.tid;
                t->stats.merged_predumps++;
                predump_release(t, e, emit, userdata);
                return;
        }
        /* The first report: the process still exists, read what it is
         * about to lose now (predump_read()), for this report or the
         * merged one. */
        predump_read(t, e, ev);
        if (t->prctl_predump && e->pub.ppid == t->prctl_self &&
            pending_add(t, PENDING_PREDUMP, &e->pub, 0, 0, now_ns + PROCTABLE_PRCTL_HOLD_NS)) {
                e->predump_held = ev->sources;
                e->predump_held_ts = ev->ts_ns;
                e->predump_held_pid = ev->pid;
                e->predump_held_details = ev->predump;
                return;
        }
        e->predump_reported = true;
        proctable_enrich(&e->pub, ev);
        emit(ev, userdata);
}

static void adopt_release(ProcTable *t, Entry *e, ProcTableEmitFn emit, void *userdata) {
        uint32_t sources = e->adopt_held;
        e->adopt_held = 0;
        emit_adopt(t, &e->pub, e->adopt_held_old, e->adopt_held_new, e->adopt_held_ts, sources, emit,
                   userdata);
}

static void adopt_seen(ProcTable *t, Entry *e, pid_t old_parent, pid_t new_parent, uint64_t ts_ns,
                       uint32_t sources, uint64_t now_ns, ProcTableEmitFn emit, void *userdata) {
        if (e->adopt_held) {
                if (e->adopt_held & sources)
                        return; /* the same source twice */
                e->adopt_held |= sources;
                e->adopt_held_ts = MIN(e->adopt_held_ts, ts_ns);
                if (!e->adopt_held_old)
                        e->adopt_held_old = old_parent;
                t->stats.merged_adoptions++;
                adopt_release(t, e, emit, userdata);
                return;
        }
        if (t->prctl_adopt && new_parent == t->prctl_self &&
            pending_add(t, PENDING_ADOPT_HELD, &e->pub, 0, 0, now_ns + PROCTABLE_PRCTL_HOLD_NS)) {
                e->adopt_held = sources;
                e->adopt_held_ts = ts_ns;
                e->adopt_held_old = old_parent;
                e->adopt_held_new = new_parent;
                return;
        }
        emit_adopt(t, &e->pub, old_parent, new_parent, ts_ns, sources, emit, userdata);
}

/* Publish what is held for e before its exit. */
static void held_release(ProcTable *t, Entry *e, ProcTableEmitFn emit, void *userdata) {
        if (e->predump_held) {
                t->stats.unmerged_predumps++;
                predump_release(t, e, emit, userdata);
        }
        if (e->adopt_held) {
                t->stats.unmerged_adoptions++;
                adopt_release(t, e, emit, userdata);
        }
}

/*
 * Read the new parent of a child whose parent exited. The kernel re-parents
 * before it sends the parent's exit event, but a thread-group parent can hand
 * its children between threads first; if the child still names the old
 * parent, try again shortly.
 */
static void settle_adoption(ProcTable *t, ProcEntry *child, pid_t old_parent, unsigned tries,
                            uint64_t now_ns, uint64_t ts_ns, ProcTableEmitFn emit, void *userdata) {
        ProcInfo info = { 0 };
        int r = t->reader.read(t->reader.userdata, child->tgid, PROC_READ_STAT, &info);
        proc_info_done(&info);
        if (r < 0) {
                /* Gone too (a loaded broker reads this late: the next stage
                 * of a fork dance may be reaped already). It was adopted all
                 * the same; its exit names the new parent. */
                Entry *c = (Entry *) child;
                c->adopt_from = old_parent;
                c->adopt_ts = ts_ns;
                return;
        }
        if (child->start_time && info.start_time && info.start_time != child->start_time)
                return; /* pid reused */
        if (info.ppid == old_parent) {
                if (tries + 1 < PROCTABLE_ADOPT_MAX_TRIES)
                        pending_add(t, PENDING_ADOPT, child, old_parent, tries + 1,
                                    now_ns + PROCTABLE_ADOPT_RETRY_NS);
                return;
        }
        adopt_seen(t, (Entry *) child, old_parent, info.ppid, ts_ns, PN_SOURCE_CONNECTOR, now_ns, emit,
                   userdata);
}

/* The exit of e, whose parent was parent_tgid then: the adoption that
 * settle_adoption() could not read is told first. */
static void adoption_settle_at_exit(ProcTable *t, Entry *e, pid_t parent_tgid, uint32_t sources,
                                    ProcTableEmitFn emit, void *userdata) {
        pid_t old = e->adopt_from;

        held_release(t, e, emit, userdata);
        if (!old)
                return;
        e->adopt_from = 0;
        if (parent_tgid <= 0 || parent_tgid == old)
                return;
        emit_adopt(t, &e->pub, old, parent_tgid, e->adopt_ts, sources, emit, userdata);
}

/* e's exit is no longer held. */
static void entry_unhold(ProcTable *t, Entry *e) {
        if (!e->exit_held)
                return;
        if (!(e->held_sources & PN_SOURCE_CONNECTOR))
                t->n_held--;
        e->exit_held = false;
}

/* Of two exit statuses of one process, the one to publish: a known status
 * over an unknown (-1), the wait status or pidfd information of another
 * source over the connector's, else the first. */
static int exit_status_best(int first, uint32_t first_sources, int second, uint32_t second_sources) {
        if (first < 0)
                return second;
        if (second < 0)
                return first;
        if (first_sources == PN_SOURCE_CONNECTOR && second_sources != PN_SOURCE_CONNECTOR)
                return second;
        return first;
}

/* The process of e ended: publish its exit, re-parent its children, drop it. */
static void process_ended(ProcTable *t, Entry *e, int status, uint32_t sources, uint64_t ts_ns,
                          uint64_t now_ns, ProcTableEmitFn emit, void *userdata) {
        pid_t tgid = e->pub.tgid;
        size_t n = 0;

        held_release(t, e, emit, userdata);
        if (e->exit_held) {
                /* One exit with what every source told: the authoritative
                 * status, the first source's time. */
                status = exit_status_best(e->held_status, e->held_sources, status, sources);
                sources |= e->held_sources;
                ts_ns = MIN(ts_ns, e->held_ts);
                if ((sources & PN_SOURCE_CONNECTOR) && (sources & ~PN_SOURCE_CONNECTOR))
                        t->stats.merged_exits++;
                entry_unhold(t, e);
        }
        emit_exit(t, e, status, sources, ts_ns, emit, userdata);
        ended_add(t, tgid, now_ns, !(sources & PN_SOURCE_CONNECTOR));

        for (ProcEntry *c = e->pub.first_child; c; c = c->next_sibling)
                n++;
        if (n > 0) {
                pid_t *kids = calloc(n, sizeof(*kids));
                size_t i = 0;
                for (ProcEntry *c = e->pub.first_child; kids && c; c = c->next_sibling)
                        kids[i++] = c->tgid;
                entry_free(t, e);
                for (i = 0; kids && i < n; i++) {
                        Entry *c = map_find(t, kids[i]);
                        if (c)
                                settle_adoption(t, &c->pub, tgid, 0, now_ns, ts_ns, emit, userdata);
                }
                free(kids);
        } else
                entry_free(t, e);
}

/* What fork() copies from the parent; no need to ask /proc. */
static void entry_inherit(ProcTable *t, ProcEntry *c, ProcEntry *p, pid_t ppid) {
        memcpy(c->comm, p->comm, sizeof(c->comm));
        refstr_unref(&t->strings, c->exe);
        refstr_unref(&t->strings, c->cmdline);
        refstr_unref(&t->strings, c->cgroup);
        refstr_unref(&t->strings, c->unit);
        c->exe = refstr_ref(p->exe);
        c->cmdline = refstr_ref(p->cmdline);
        c->cgroup = refstr_ref(p->cgroup);
        c->unit = refstr_ref(p->unit);
        c->uid = p->uid;
        c->euid = p->euid;
        c->gid = p->gid;
        c->egid = p->egid;
        c->netns = p->netns;
        tree_link(c, p);
        c->ppid = ppid;
}

/*
 * A source saw the process of e end. The connector reports every exit; a
 * pidfd watch (PN_SOURCE_PIDFD) and the broker's wait for its own child
 * (PN_SOURCE_CHILD) report some a second time, and each is published once,
 * naming every source that saw it, with the best status
 * (exit_status_best()). The rules do not depend on which other source it is:
 *
 * - Another source first: held until the connector's exit comes, or until
 *   the connector delivered an event stamped PROCTABLE_EXIT_SLACK_NS after
 *   the report was held (the kernel sent the connector's exit before the
 *   other source could see the end, so it was lost), or at most
 *   PROCTABLE_EXIT_WAIT_NS (an idle connector). The wait is measured in the
 *   connector's time, not the broker's: under load the connector can lag by
 *   far more than any fixed window.
 * - The connector first: published at once, unless pidfd watches count on
 *   the process (e->watchers): the pidfd wakes in exit_notify(), right
 *   after the connector message is sent, so it is held at most
 *   PROCTABLE_EXIT_HOLD_NS for it.
 *
 * A second report by a source already held is folded in and waits on.
 */
static void process_exit_seen(ProcTable *t, Entry *e, int status, uint32_t source, uint64_t ts_ns,
                              uint64_t now_ns, ProcTableEmitFn emit, void *userdata) {
        bool connector = source & PN_SOURCE_CONNECTOR;
        uint64_t wait;

        if (e->exit_held) {
                if (connector || (e->held_sources & PN_SOURCE_CONNECTOR)) {
                        if (!(e->held_sources & ~source)) {
                                /* The same source twice: still waiting. */
                                return;
                        }
                        process_ended(t, e, status, source, ts_ns, now_ns, emit, userdata);
                        return;
                }
                /* Two sources besides the connector (a pidfd-watched child
                 * of the broker): both are named, and the connector is still
                 * awaited. */
                e->held_status = exit_status_best(e->held_status, e->held_sources, status, source);
                e->held_sources |= source;
                e->held_ts = MIN(e->held_ts, ts_ns);
                return;
        }
        if (connector && e->watchers == 0) {
                process_ended(t, e, status, source, ts_ns, now_ns, emit, userdata);
                return;
        }
        wait = connector ? PROCTABLE_EXIT_HOLD_NS : PROCTABLE_EXIT_WAIT_NS;
        if (!pending_add(t, PENDING_EXIT, &e->pub, 0, 0, now_ns + wait)) {
                /* Cannot wait: never hold an exit without a deadline. */
                process_ended(t, e, status, source, ts_ns, now_ns, emit, userdata);
                return;
        }
        e->exit_held = true;
        e->held_status = status;
        e->held_sources = source;
        e->held_ts = ts_ns;
        e->held_seen_ns = now_ns;
        if (!connector)
                t->n_held++;
}

/* The connector is past (its event stamped ts_ns) the moment some exits
 * seen by another source were held, without bringing their exit: it was
 * lost; publish them now rather than at the safety timeout. */
static void release_caught_up(ProcTable *t, uint64_t ts_ns, uint64_t now_ns, ProcTableEmitFn emit,
                              void *userdata) {
        for (size_t i = 0; i < t->n_pending && t->n_held > 0; i++) {
                Pending *p = &t->pending[i];
                Entry *e;

                if (p->kind != PENDING_EXIT)
                        continue;
                e = map_find(t, p->tgid);
                if (!e || !e->exit_held || (e->held_sources & PN_SOURCE_CONNECTOR) ||
                    (p->start_time && e->pub.start_time && p->start_time != e->pub.start_time) ||
                    e->held_seen_ns + PROCTABLE_EXIT_SLACK_NS > ts_ns)
                        continue;
                entry_unhold(t, e);
                t->stats.unmerged_exits++;
                process_ended(t, e, e->held_status, e->held_sources, e->held_ts, now_ns, emit, userdata);
                /* The pending item finds nothing at its deadline. */
        }
}

static void handle_fork(ProcTable *t, PnEvent *ev, uint64_t now_ns, ProcTableEmitFn emit,
                        void *userdata) {
        _cleanup_(proc_info_done) ProcInfo info = { 0 };
        Entry *e, *parent;
        int r;

        if (ev->thread) {
                e = map_find(t, ev->tgid);
                if (e)
                        e->pub.nthreads++;
                else
                        e = entry_load(t, ev->tgid, now_ns); /* counts the new thread already */
                if (e)
                        proctable_enrich(&e->pub, ev);
                emit(ev, userdata);
                return;
        }

        parent = entry_find_or_load(t, ev->ppid, now_ns);
        /* The start time identifies this process across a later resync;
         * without a known parent, everything else comes from /proc too. */
        r = t->reader.read(t->reader.userdata, ev->tgid, parent ? PROC_READ_STAT : PROC_READ_ALL, &info);

        e = map_find(t, ev->tgid);
        if (e && e->adopt_held && !e->pub.start_time && !e->pub.comm[0] && parent) {
                /* Made by an adoption signal before this fork was read. */
                entry_inherit(t, &e->pub, &parent->pub, ev->ppid);
                if (r == 0)
                        e->pub.start_time = info.start_time;
                proctable_enrich(&e->pub, ev);
                emit(ev, userdata);
                return;
        }
        if (e && e->exit_held && !e->tracked && !e->pub.comm[0] && parent) {
                /* The broker reaped it before the connector (lagging behind
                 * a burst) told of its fork: learn what fork() copied. */
                entry_inherit(t, &e->pub, &parent->pub, ev->ppid);
                proctable_enrich(&e->pub, ev);
                emit(ev, userdata);
                return;
        }
        if (e && ((r == 0 && e->pub.start_time == info.start_time) || e->exit_held)) {
                /* Already learned from /proc (a resync ran before this event,
                 * or the broker tracked its own child), or already reaped by
                 * the broker: the late fork event of a process we know. */
                proctable_enrich(&e->pub, ev);
                emit(ev, userdata);
                return;
        }
        if (!e && ended_after(t, ev->tgid, ev->ts_ns, now_ns)) {
                /* A late fork of a process whose end was published already
                 * (the connector lagged more than the merge waits): report
                 * it, without bringing the process back to life. */
                if (parent) {
                        proctable_enrich(&parent->pub, ev);
                        ev->ppid = parent->pub.tgid;
                }
                emit(ev, userdata);
                return;
        }
        if (e)
                /* The pid is reused: we lost the old process's exit. */
                process_ended(t, e, -1, PN_SOURCE_CONNECTOR, ev->ts_ns, now_ns, emit, userdata);
        parent = map_find(t, ev->ppid); /* process_ended() may have changed the map */
        ended_forget(t, ev->tgid);

        e = entry_new(t, ev->tgid, now_ns);
        if (!e) {
                emit(ev, userdata);
                return;
        }
        if (parent) {
                entry_inherit(t, &e->pub, &parent->pub, ev->ppid);
                if (r == 0)
                        e->pub.start_time = info.start_time;
        } else if (r == 0)
                entry_apply_info(t, e, &info, PROC_READ_ALL);
        else
                e->pub.ppid = ev->ppid;
        proctable_enrich(&e->pub, ev);
        emit(ev, userdata);
}

static void handle_exec(ProcTable *t, PnEvent *ev, uint64_t now_ns, ProcTableEmitFn emit,
                        void *userdata) {
        _cleanup_(proc_info_done) ProcInfo info = { 0 };
        Entry *e = map_find(t, ev->tgid);
        /* The namespace too: "ip netns exec" and its kind enter it, then exec. */
        const unsigned what = PROC_READ_STAT | PROC_READ_EXE | PROC_READ_CMDLINE | PROC_READ_CGROUP |
                              PROC_READ_NETNS;

        if (!e) {
                e = entry_load(t, ev->tgid, now_ns);
        } else if (t->reader.read(t->reader.userdata, ev->tgid, what, &info) == 0) {
                entry_apply_info(t, e, &info, what);
        } else if (!(e->exit_held && e->tracked)) {
                /* Gone before we could look: nameless, rather than the old name. */
                e->pub.comm[0] = 0;
                refstr_set(&t->strings, &e->pub.exe, NULL);
                refstr_set(&t->strings, &e->pub.cmdline, NULL);
        }
        if (e) {
                /* The exec'ing thread is the leader now, alive: when a
                 * non-leader execs, the kernel ends every other thread, the
                 * leader too (its exit, pid == tgid, is reported), and gives
                 * the exec'ing one the leader's tid. That exit was the old
                 * leader's, not the process's. */
                e->leader_exited = false;
                e->exec_ts = ev->ts_ns;
                proctable_enrich(&e->pub, ev);
        }
        emit(ev, userdata);
}

static void handle_exit(ProcTable *t, PnEvent *ev, uint64_t now_ns, ProcTableEmitFn emit,
                        void *userdata) {
        Entry *e = map_find(t, ev->tgid);
        int status = ev->exit.status;
        bool leader = ev->pid == ev->tgid;

        /* The old leader's exit, stamped before an exec that a non-leader
         * made (and delivered after it, from another CPU's queue, or sent
         * after it: the exec goes on once the leader is a zombie, and the
         * leader's exit event is sent after that): a thread's end. */
        if (leader && e && e->exec_ts && ev->ts_ns < e->exec_ts)
                leader = false;
        if (!e) {
                /* Never knew it (it came and went during a loss, or before the
                 * seed): report what the kernel told, unless another source
                 * already reported this end. */
                if (leader && ended_seen(t, ev->tgid, now_ns))
                        /* The connector caught up with an end another
                         * source published: its next fork is a new process. */
                        ended_forget(t, ev->tgid);
                else if (leader) {
                        ended_add(t, ev->tgid, now_ns, false);
                        pn_event_set_exit_status(ev, status);
                        ev->thread = false;
                        emit(ev, userdata);
                }
                return;
        }

        /* The process's status is the group's: the latest non-zero status
         * by the kernel's clock (exit_group and fatal signals give every
         * thread the same one), else 0. Neither the arrival order nor the
         * last thread decides: a thread that pthread_exit()ed (status 0)
         * can reach us after the exit_group, from another CPU's queue, and
         * can even be stamped after it, since pthread_join() returns before
         * the joined thread's exit event is sent. */
        if (status != 0 && ev->ts_ns >= e->last_status_ts) {
                e->last_status = status;
                e->last_status_ts = ev->ts_ns;
        }
        e->pub.nthreads--;
        if (leader)
                e->leader_exited = true;

        if (e->pub.nthreads <= 0 && e->leader_exited) {
                adoption_settle_at_exit(t, e, ev->ppid, PN_SOURCE_CONNECTOR, emit, userdata);
                process_exit_seen(t, e, e->last_status, PN_SOURCE_CONNECTOR, ev->ts_ns, now_ns, emit,
                                  userdata);
                return;
        }
        if (e->pub.nthreads <= 0)
                e->pub.nthreads = 1; /* the leader is still alive: we under-counted */
        if (leader)
                pending_add(t, PENDING_LEADER, &e->pub, 0, 0, now_ns + PROCTABLE_LEADER_CHECK_NS);

        /* A thread ended, not the process: a thread event. */
        proctable_enrich(&e->pub, ev);
        pn_event_set_exit_status(ev, status);
        ev->thread = true;
        emit(ev, userdata);
}

/* A predump: the process still exists (it is about to dump core), so what
 * a manager needs to know how long it has is read now: its size, its core
 * limit, what the kernel will do with the core, and its namespace (which
 * then is the event's, also for an exec the table missed). */
static void predump_read(ProcTable *t, Entry *e, PnEvent *ev) {
        _cleanup_(proc_info_done) ProcInfo info = { .rss = -1, .core_limit = PN_CORE_LIMIT_UNKNOWN,
                                                    .tid = ev->predump.tid };

        ev->predump.rss = -1;
        ev->predump.core_limit = PN_CORE_LIMIT_UNKNOWN;
        ev->predump.core_dump = PN_CORE_DUMP_UNKNOWN;
        if (t->reader.read(t->reader.userdata, e->pub.tgid, PROC_READ_CRASH | PROC_READ_NETNS, &info) < 0)
                return;
        ev->predump.rss = info.rss;
        ev->predump.core_limit = info.core_limit;
        ev->predump.core_dump = info.core_dump;
        entry_apply_info(t, e, &info, PROC_READ_NETNS);
}

static void handle_other(ProcTable *t, PnEvent *ev, uint64_t now_ns, ProcTableEmitFn emit,
                         void *userdata) {
        Entry *e = entry_find_or_load(t, ev->tgid, now_ns);
        if (e) {
                ProcEntry *p = &e->pub;
                bool leader = ev->pid == ev->tgid;
                switch (ev->type) {
                case PN_EVENT_COMM:
                        /* The event carries the new name; a thread's name is its own.
                         * ev->comm is a C string, not necessarily 16 bytes long. */
                        if (leader && ev->comm) {
                                size_t n = strnlen(ev->comm, sizeof(p->comm) - 1);
                                memcpy(p->comm, ev->comm, n);
                                p->comm[n] = 0;
                        }
                        break;
                case PN_EVENT_UID:
                        if (leader) {
                                p->uid = ev->id.real;
                                p->euid = ev->id.effective;
                        }
                        break;
                case PN_EVENT_GID:
                        if (leader) {
                                p->gid = ev->id.real;
                                p->egid = ev->id.effective;
                        }
                        break;
                case PN_EVENT_PREDUMP:
                        /* A patched kernel's predump signal may tell too. */
                        predump_seen(t, e, ev, now_ns, emit, userdata);
                        return;
                default:
                        break;
                }
                const char *comm = ev->comm;
                proctable_enrich(p, ev);
                if (ev->type == PN_EVENT_COMM)
                        ev->comm = comm;
        }
        emit(ev, userdata);
}

void proctable_handle(ProcTable *t, PnEvent *ev, uint64_t now_ns, ProcTableEmitFn emit,
                      void *userdata) {
        Entry *e;

        ev->sources |= PN_SOURCE_CONNECTOR;
        if (ev->ts_ns > t->connector_ts)
                t->connector_ts = ev->ts_ns;
        /* Before the event: a fork of a reused pid must not find the old
         * process still held. The exit of a held process is its merge. */
        if (t->n_held > 0 && !(ev->type == PN_EVENT_EXIT && (e = map_find(t, ev->tgid)) && e->exit_held))
                release_caught_up(t, t->connector_ts, now_ns, emit, userdata);
        switch (ev->type) {
        case PN_EVENT_FORK:
                handle_fork(t, ev, now_ns, emit, userdata);
                break;
        case PN_EVENT_EXEC:
                handle_exec(t, ev, now_ns, emit, userdata);
                break;
        case PN_EVENT_EXIT:
                handle_exit(t, ev, now_ns, emit, userdata);
                break;
        default:
                handle_other(t, ev, now_ns, emit, userdata);
                break;
        }
}

void proctable_handle_other(ProcTable *t, PnEvent *ev, uint64_t now_ns, ProcTableEmitFn emit,
                            void *userdata) {
        Entry *e = map_find(t, ev->tgid);

        switch (ev->type) {
        case PN_EVENT_EXIT:
                if (!e) {
                        if (ended_seen(t, ev->tgid, now_ns))
                                return; /* published already */
                        /* Not known yet: its fork is still queued on the
                         * connector (or was lost). Hold it all the same, in
                         * an entry the fork event fills in. */
                        e = entry_new(t, ev->tgid, now_ns);
                        if (!e) {
                                ended_add(t, ev->tgid, now_ns, true);
                                pn_event_set_exit_status(ev, ev->exit.status);
                                emit(ev, userdata);
                                return;
                        }
                }
                /* A wait status comes from the parent (the broker): an
                 * orphan that died before the table could read its new
                 * parent is linked to it now. */
                adoption_settle_at_exit(t, e, ev->ppid, ev->sources & ~PN_SOURCE_CONNECTOR, emit,
                                        userdata);
                if (ev->ppid > 0 && e->pub.ppid != ev->ppid) {
                        Entry *np = map_find(t, ev->ppid);
                        e->pub.ppid = ev->ppid;
                        tree_link(&e->pub, np ? &np->pub : NULL);
                }
                process_exit_seen(t, e, ev->exit.status, ev->sources & ~PN_SOURCE_CONNECTOR, ev->ts_ns,
                                  now_ns, emit, userdata);
                return;
        case PN_EVENT_PREDUMP:
                if (e) {
                        predump_seen(t, e, ev, now_ns, emit, userdata);
                        return;
                }
                emit(ev, userdata);
                return;
        case PN_EVENT_ADOPT:
                if (e) {
                        if (!e->adopt_held && e->pub.ppid == ev->adopt.new_parent)
                                return; /* already inferred from the old parent's exit */
                        adopt_seen(t, e, ev->adopt.old_parent > 0 ? ev->adopt.old_parent : e->pub.ppid,
                                   ev->adopt.new_parent, ev->ts_ns, ev->sources, now_ns, emit, userdata);
                        return;
                }
                if (ev->adopt.old_parent > 0 && (e = entry_new(t, ev->tgid, now_ns))) {
                        /* The kernel signals the adoption before the old
                         * parent's exit, and the connector's fork of the
                         * orphan may still be queued: hold it in an entry
                         * that fork fills in (handle_fork()). */
                        e->pub.ppid = ev->adopt.old_parent;
                        adopt_seen(t, e, ev->adopt.old_parent, ev->adopt.new_parent, ev->ts_ns, ev->sources,
                                   now_ns, emit, userdata);
                        return;
                }
                emit(ev, userdata);
                return;
        default:
                if (e)
                        proctable_enrich(&e->pub, ev);
                emit(ev, userdata);
                return;
        }
}

int proctable_track(ProcTable *t, pid_t tgid, uint64_t now_ns) {
        _cleanup_(proc_info_done) ProcInfo info = { 0 };
        Entry *e = map_find(t, tgid);
        int r;

        r = t->reader.read(t->reader.userdata, tgid, PROC_READ_ALL, &info);
        if (r < 0)
                return r;
        if (e && e->pub.start_time && info.start_time && e->pub.start_time != info.start_time)
                return 0; /* a stale entry of a reused pid: the fork event sorts it out */
        if (!e) {
                e = entry_new(t, tgid, now_ns);
                if (!e)
                        return -ENOSPC;
        }
        entry_apply_info(t, e, &info, PROC_READ_ALL);
        e->pub.nthreads = info.nthreads > 0 ? (int32_t) info.nthreads : 1;
        e->tracked = true;
        ended_forget(t, tgid);
        return 0;
}

/* --- resync --- */

typedef struct ResyncCtx {
        ProcTable *t;
        uint64_t now_ns;
        ProcTableEmitFn emit;
        void *userdata;
} ResyncCtx;

static int resync_one(pid_t tgid, void *userdata) {
        ResyncCtx *c = userdata;
        ProcTable *t = c->t;
        _cleanup_(proc_info_done) ProcInfo info = { 0 };
        Entry *e;

        if (t->reader.read(t->reader.userdata, tgid, PROC_READ_ALL, &info) < 0)
                return 0; /* gone meanwhile */
        e = map_find(t, tgid);
        if (e && e->pub.start_time && info.start_time && e->pub.start_time != info.start_time) {
                /* Same pid, another process: the one we knew ended unseen. */
                process_ended(t, e, -1, PN_SOURCE_PROCFS, c->now_ns, c->now_ns, c->emit, c->userdata);
                e = NULL;
        }
        /* A zombie whose threads are all gone has ended; /proc lists it only
         * until its parent reaps it. Never (re-)add one: its exit was seen
         * (a second, inferred one would follow when it is reaped) or lost.
         * An entry for it is left unseen here, so it counts as vanished: its
         * exit if still on its way, else an inferred one after the grace. */
        if (info.state == 'Z' && info.nthreads <= 1)
                return 0;
        if (!e) {
                e = entry_new(t, tgid, c->now_ns);
                if (!e)
                        return 0;
        }
        entry_apply_info(t, e, &info, PROC_READ_ALL);
        /* A zombie leader is counted in num_threads but is not alive. */
        e->pub.nthreads = (int32_t) info.nthreads - (info.state == 'Z' ? 1 : 0);
        if (e->pub.nthreads <= 0)
                e->pub.nthreads = 1;
        e->leader_exited = info.state == 'Z';
        e->pub.vanished = false;
        e->seen_gen = t->generation;
        return 0;
}

int proctable_resync(ProcTable *t, uint64_t now_ns, ProcTableEmitFn emit, void *userdata) {
        ResyncCtx c = { t, now_ns, emit, userdata };
        int r;

        t->generation++;
        r = t->reader.list(t->reader.userdata, resync_one, &c);
        if (r < 0)
                return r;
        for (size_t i = 0; i < t->nslots; i++) {
                ProcEntry *p = t->slots[i];
                Entry *e = (Entry *) p;
                if (!p)
                        continue;
                /* Link entries whose parent was listed after them. */
                if (!p->parent && p->ppid > 0) {
                        Entry *parent = map_find(t, p->ppid);
                        if (parent)
                                tree_link(p, &parent->pub);
                }
                if (e->seen_gen != t->generation && !p->vanished) {
                        p->vanished = true;
                        pending_add(t, PENDING_GHOST, p, 0, 0, now_ns + PROCTABLE_GHOST_GRACE_NS);
                }
        }
        t->stats.resyncs++;
        return 0;
}

void proctable_run_pending(ProcTable *t, uint64_t now_ns, ProcTableEmitFn emit, void *userdata) {
        size_t i = 0;

        while (i < t->n_pending) {
                Pending p = t->pending[i];
                if (p.deadline > now_ns) {
                        i++;
                        continue;
                }
                t->pending[i] = t->pending[--t->n_pending];

                Entry *e = map_find(t, p.tgid);
                if (!e || (p.start_time && e->pub.start_time && p.start_time != e->pub.start_time))
                        continue; /* already gone the normal way */
                switch (p.kind) {
                case PENDING_ADOPT:
                        settle_adoption(t, &e->pub, p.old_parent, p.tries, now_ns, now_ns, emit, userdata);
                        break;
                case PENDING_PREDUMP:
                        if (e->predump_held) {
                                t->stats.unmerged_predumps++;
                                predump_release(t, e, emit, userdata);
                        }
                        break;
                case PENDING_ADOPT_HELD:
                        if (e->adopt_held) {
                                t->stats.unmerged_adoptions++;
                                adopt_release(t, e, emit, userdata);
                        }
                        break;
                case PENDING_GHOST:
                        if (e->pub.vanished)
                                process_ended(t, e, -1, PN_SOURCE_PROCFS, now_ns, now_ns, emit, userdata);
                        break;
                case PENDING_EXIT:
                        /* The other source is late or will not come (a loss,
                         * an unwatch, an idle connector): publish what is
                         * known. */
                        if (e->exit_held) {
                                entry_unhold(t, e);
                                t->stats.unmerged_exits++;
                                process_ended(t, e, e->held_status, e->held_sources, e->held_ts,
                                              now_ns, emit, userdata);
                        }
                        break;
                case PENDING_LEADER: {
                        ProcInfo info = { 0 };
                        int r = t->reader.read(t->reader.userdata, p.tgid, PROC_READ_STAT, &info);
                        proc_info_done(&info);
                        if (e->exit_held || !e->leader_exited)
                                break; /* its exit is being published; or an exec made a new leader */
                        if (r == -ESRCH || (r == 0 && (info.state == 'Z' || info.state == 'X') &&
                                            info.nthreads <= 1))
                                /* All threads are gone but we missed some exits. */
                                process_exit_seen(t, e, e->last_status, PN_SOURCE_CONNECTOR, now_ns,
                                                  now_ns, emit, userdata);
                        else if (r == 0)
                                e->pub.nthreads = MAX((int32_t) info.nthreads - 1, 1);
                        break;
                }
                }
        }
}

/* --- queries --- */

const ProcEntry *proctable_find(const ProcTable *t, pid_t tgid) {
        Entry *e = map_find(t, tgid);
        return e ? &e->pub : NULL;
}

const ProcEntry *proctable_learn(ProcTable *t, pid_t tgid, uint64_t now_ns) {
        Entry *e = entry_find_or_load(t, tgid, now_ns);
        return e ? &e->pub : NULL;
}

/* The entry for (tgid, start_time), if it is still the one the table knows. */
static Entry *entry_find_same(const ProcTable *t, pid_t tgid, uint64_t start_time) {
        Entry *e = map_find(t, tgid);
        if (!e || (start_time && e->pub.start_time && e->pub.start_time != start_time))
                return NULL;
        return e;
}

int proctable_watch_add(ProcTable *t, pid_t tgid, uint64_t start_time) {
        Entry *e = entry_find_same(t, tgid, start_time);
        if (!e || e->exit_held)
                return PROCTABLE_E_GONE;
        e->watchers++;
        return 0;
}

void proctable_watch_remove(ProcTable *t, pid_t tgid, uint64_t start_time) {
        Entry *e = entry_find_same(t, tgid, start_time);
        if (e && e->watchers > 0)
                e->watchers--;
}

int proctable_exit_seen(ProcTable *t, pid_t tgid, uint64_t start_time, uint32_t source, int status,
                        uint64_t ts_ns, uint64_t now_ns, ProcTableEmitFn emit, void *userdata) {
        Entry *e = entry_find_same(t, tgid, start_time);
        if (!e)
                return PROCTABLE_E_GONE;
        process_exit_seen(t, e, status, source, ts_ns, now_ns, emit, userdata);
        return 0;
}

bool proctable_is_descendant(const ProcTable *t, pid_t tgid, pid_t ancestor) {
        Entry *e = map_find(t, tgid);
        /* Bounded walk: a corrupt loop must not hang the broker. */
        for (unsigned depth = 0; e && e->pub.parent && depth < 4096; depth++) {
                if (e->pub.parent->tgid == ancestor)
                        return true;
                e = (Entry *) e->pub.parent;
        }
        return false;
}

int proctable_foreach_descendant(const ProcTable *t, pid_t tgid,
                                 void (*cb)(const ProcEntry *e, void *ctx), void *ctx) {
        Entry *root = map_find(t, tgid);
        const ProcEntry *p;

        if (!root)
                return -ESRCH;
        p = root->pub.first_child;
        /* Pre-order walk along the intrusive links, no stack; bounded by the
         * table size so that a corrupt loop cannot hang the broker. */
        for (size_t steps = 0; p && steps < t->n; steps++) {
                cb(p, ctx);
                if (p->first_child) {
                        p = p->first_child;
                        continue;
                }
                while (p && p != &root->pub && !p->next_sibling)
                        p = p->parent;
                p = (p && p != &root->pub) ? p->next_sibling : NULL;
        }
        return 0;
}

void proctable_foreach(const ProcTable *t, void (*cb)(const ProcEntry *e, void *ctx), void *ctx) {
        for (size_t i = 0; i < t->nslots; i++)
                if (t->slots[i])
                        cb(t->slots[i], ctx);
}

void proctable_set_prctl(ProcTable *t, pid_t self, PnEventType type) {
        t->prctl_self = self;
        if (type == PN_EVENT_PREDUMP)
                t->prctl_predump = true;
        else if (type == PN_EVENT_ADOPT)
                t->prctl_adopt = true;
}

const ProcTableStats *proctable_get_stats(const ProcTable *t) {
        ((ProcTable *) t)->stats.entries = t->n;
        return &t->stats;
}

const char *proctable_unit_from_cgroup(const char *cgroup, char *buf, size_t size) {
        static const char *const suffixes[] = { ".service", ".scope",  ".socket",    ".mount",
                                                ".swap",    ".target", ".automount", ".timer",
                                                ".path",    ".device" };
        const char *p = cgroup;

        while (p && *p) {
                while (*p == '/')
                        p++;
                size_t n = strcspn(p, "/");
                if (n == 0)
                        break;
                if (n >= 6 && strncmp(p + n - 6, ".slice", 6) == 0) {
                        p += n;
                        continue;
                }
                for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                        size_t s = strlen(suffixes[i]);
                        if (n > s && n < size && strncmp(p + n - s, suffixes[i], s) == 0) {
                                memcpy(buf, p, n);
                                buf[n] = 0;
                                return buf;
                        }
                }
                return NULL; /* the first non-slice component is not a unit */
        }
        return NULL;
}

/* --- lifetime --- */

int proctable_new(ProcTable **ret, const ProcReader *reader, size_t max_entries) {
        ProcTable *t = calloc(1, sizeof(*t));

        if (!t)
                return -ENOMEM;
        t->reader = *reader;
        t->max_entries = max_entries ? max_entries : SIZE_MAX;
        t->nslots = 1024;
        t->slots = calloc(t->nslots, sizeof(*t->slots));
        if (!t->slots) {
                free(t);
                return -ENOMEM;
        }
        *ret = t;
        return 0;
}

ProcTable *proctable_free(ProcTable *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->nslots; i++) {
                ProcEntry *p = t->slots[i];
                if (!p)
                        continue;
                refstr_unref(&t->strings, p->exe);
                refstr_unref(&t->strings, p->cmdline);
                refstr_unref(&t->strings, p->cgroup);
                refstr_unref(&t->strings, p->unit);
                free(p);
        }
        free(t->strings.buckets);
        free(t->slots);
        free(t->pending);
        free(t);
        return NULL;
}
