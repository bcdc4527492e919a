/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reaper: the one collector of wait statuses (SIGCHLD), handing each to its
 * owner; see reaper.h.
 *
 * Watches are kept in an array sorted by pid and found by binary search: the
 * set is bounded by the broker's limits on watches and children, and
 * changes far less often than statuses arrive.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/macro.h"
#include "reaper.h"

typedef struct ReaperWatch {
        pid_t pid;
        ReaperFn fn;
        void *userdata;
        bool tracee;  /* no WCONTINUED: that is the real parent's */
} ReaperWatch;

struct Reaper {
        sd_event_source *sigchld;
        ReaperFn fallback;
        void *userdata;
        ReaperWatch *watches;
        size_t n_watches, cap_watches;
};

/* Index of pid, or where it would go (*found false). */
static size_t reaper_find(const Reaper *r, pid_t pid, bool *found) {
        size_t lo = 0, hi = r->n_watches;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (r->watches[mid].pid < pid)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *found = lo < r->n_watches && r->watches[lo].pid == pid;
        return lo;
}

static void reaper_dispatch(Reaper *r, pid_t pid, int status) {
        bool found;
        size_t i = reaper_find(r, pid, &found);
        if (found)
                r->watches[i].fn(pid, status, r->watches[i].userdata);
        else if (r->fallback)
                r->fallback(pid, status, r->userdata);
}

void reaper_collect(Reaper *r) {
        for (;;) {
                int status;
                pid_t pid = waitpid(-1, &status, WNOHANG | __WALL | WUNTRACED);

                if (pid < 0 && errno == EINTR)
                        continue;
                if (pid <= 0)
                        break; /* 0: nothing more now; ECHILD: no children or tracees */
                reaper_dispatch(r, pid, status);
        }
        /* Continued statuses, of those who want them (not tracees). */
        for (size_t i = 0; i < r->n_watches; i++) {
                pid_t pid = r->watches[i].pid;
                int status;
                bool found;

                if (r->watches[i].tracee)
                        continue;
                pid_t k = waitpid(pid, &status, WNOHANG | __WALL | WCONTINUED);
                if (k != pid)
                        continue;
                reaper_dispatch(r, pid, status);
                /* The callback may have changed the set: go on after pid. */
                i = reaper_find(r, pid, &found);
                if (!found) {
                        if (i == 0) {
                                i = (size_t) -1;
                                continue;
                        }
                        i--;
                }
        }
}

static int reaper_on_sigchld(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        (void) s;
        (void) si;
        reaper_collect(userdata);
        return 0;
}

int reaper_new(Reaper **ret, sd_event *e, ReaperFn fallback, void *userdata) {
        _cleanup_(sd_event_source_unrefp) sd_event_source *src = NULL;
        sigset_t mask;
        Reaper *r;
        int k;

        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        k = sd_event_add_signal(e, &src, SIGCHLD, reaper_on_sigchld, NULL);
        if (k < 0)
                return k;
        (void) sd_event_source_set_description(src, "reaper-sigchld");
        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->fallback = fallback;
        r->userdata = userdata;
        (void) sd_event_source_set_userdata(src, r);
        r->sigchld = TAKE_PTR(src);
        *ret = r;
        return 0;
}

sd_event *reaper_get_event(Reaper *r) {
        return sd_event_source_get_event(r->sigchld);
}

Reaper *reaper_free(Reaper *r) {
        if (!r)
                return NULL;
        sd_event_source_disable_unref(r->sigchld);
        free(r->watches);
        free(r);
        return NULL;
}

static int reaper_watch_add_full(Reaper *r, pid_t pid, bool tracee, ReaperFn fn, void *userdata) {
        bool found;
        size_t i = reaper_find(r, pid, &found);

        if (found)
                return REAPER_E_TAKEN;
        if (r->n_watches == r->cap_watches) {
                size_t cap = r->cap_watches ? r->cap_watches * 2 : 16;
                ReaperWatch *w = realloc(r->watches, cap * sizeof(*w));
                if (!w)
                        return -ENOMEM;
                r->watches = w;
                r->cap_watches = cap;
        }
        memmove(r->watches + i + 1, r->watches + i, (r->n_watches - i) * sizeof(*r->watches));
        r->watches[i] = (ReaperWatch){ .pid = pid, .fn = fn, .userdata = userdata, .tracee = tracee };
        r->n_watches++;
        return 0;
}

int reaper_watch_add(Reaper *r, pid_t pid, ReaperFn fn, void *userdata) {
        return reaper_watch_add_full(r, pid, false, fn, userdata);
}

int reaper_watch_add_tracee(Reaper *r, pid_t tid, ReaperFn fn, void *userdata) {
        return reaper_watch_add_full(r, tid, true, fn, userdata);
}

void reaper_watch_remove(Reaper *r, pid_t pid) {
        bool found;
        size_t i = reaper_find(r, pid, &found);

        if (!found)
                return;
        memmove(r->watches + i, r->watches + i + 1, (r->n_watches - i - 1) * sizeof(*r->watches));
        r->n_watches--;
}
