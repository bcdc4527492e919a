/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * LookupThread: a blocking lookup (NSS: getpwnam_r, getgrnam_r,
 * getgrouplist, which may ask a remote directory such as LDAP or sssd) run
 * on a thread of its own, so that the event loop never waits for it. The
 * thread runs work(data) and posts an eventfd; the loop then calls
 * done(data, userdata). Used by `run` (the user a child runs as) and by the
 * reload (Group=).
 *
 * data is the only memory the thread touches: the caller fills it before
 * the start (the question) and reads it in done (the answer). The
 * LookupThread owns it from the start on and frees it with data_free once
 * both the loop has let the LookupThread go (lookup_thread_free) and the
 * thread has finished: a lookup can be given up at any time, even while
 * NSS still blocks (a second reload, shutdown), without waiting for it.
 */
#pragma once

#include <systemd/sd-event.h>

typedef struct LookupThread LookupThread;

typedef void (*LookupThreadWorkFn)(void *data);                /* on the thread */
typedef void (*LookupThreadDoneFn)(void *data, void *userdata); /* on the loop */

/* Start work(data) on a new thread (every signal blocked: they are the
 * loop's). Returns 0 and *ret, or a negative errno; on failure data is
 * freed with data_free too, so that the caller never has to. done is called
 * at most once, from e, and not after lookup_thread_free(); done may call
 * lookup_thread_free() on its own LookupThread. */
int lookup_thread_start(LookupThread **ret, sd_event *e, const char *description,
                        LookupThreadWorkFn work, LookupThreadDoneFn done, void *data,
                        void (*data_free)(void *data), void *userdata);

/* Give the lookup up (done is not called after this) or release it after
 * done. NULL is accepted; returns NULL. */
LookupThread *lookup_thread_free(LookupThread *t);

static inline void lookup_thread_freep(LookupThread **t) {
        lookup_thread_free(*t);
}
