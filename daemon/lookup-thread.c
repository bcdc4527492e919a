/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * LookupThread (see lookup-thread.h): a detached thread per lookup, an
 * eventfd it posts when done, and a reference count shared by the loop and
 * the thread, so that whichever lets go last frees the data.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>

#include "common/macro.h"
#include "lookup-thread.h"

struct LookupThread {
        int n_ref;                  /* atomic: the loop's and, while it runs, the thread's */
        int efd;                    /* the thread posts it when work() has returned */
        sd_event_source *source;    /* the loop's */
        LookupThreadWorkFn work;
        LookupThreadDoneFn done;
        void *data;                 /* the thread's until it posts efd, then the loop's */
        void (*data_free)(void *data);
        void *userdata;
};

static void lookup_thread_unref(LookupThread *t) {
        if (__atomic_sub_fetch(&t->n_ref, 1, __ATOMIC_ACQ_REL) > 0)
                return;
        safe_close(t->efd);
        if (t->data_free)
                t->data_free(t->data);
        free(t);
}

static void *lookup_thread_main(void *userdata) {
        LookupThread *t = userdata;

        t->work(t->data);
        /* Cannot fail but on overflow, which one write cannot reach. */
        (void) eventfd_write(t->efd, 1);
        lookup_thread_unref(t);
        return NULL;
}

static int lookup_thread_on_done(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        LookupThread *t = userdata;
        eventfd_t v;

        (void) src, (void) revents;
        /* The one post; EAGAIN would only mean there is none (spurious wake). */
        if (eventfd_read(fd, &v) < 0)
                return 0;
        t->source = sd_event_source_disable_unref(t->source);
        /* The eventfd's post orders the thread's writes to data before this. */
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        t->done(t->data, t->userdata); /* may free t */
        return 0;
}

int lookup_thread_start(LookupThread **ret, sd_event *e, const char *description,
                        LookupThreadWorkFn work, LookupThreadDoneFn done, void *data,
                        void (*data_free)(void *data), void *userdata) {
        _cleanup_(lookup_thread_freep) LookupThread *t = NULL;
        sigset_t all, saved;
        pthread_attr_t attr;
        pthread_t thread;
        int r;

        t = calloc(1, sizeof(*t));
        if (!t) {
                if (data_free)
                        data_free(data);
                return -ENOMEM;
        }
        *t = (LookupThread){ .n_ref = 1, .efd = -1, .work = work, .done = done, .data = data,
                             .data_free = data_free, .userdata = userdata };
        t->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (t->efd < 0)
                return -errno;
        r = sd_event_add_io(e, &t->source, t->efd, EPOLLIN, lookup_thread_on_done, t);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(t->source, description);

        r = -pthread_attr_init(&attr);
        if (r < 0)
                return r;
        /* Detached: nobody joins it; the reference count frees t. The
         * thread gets every signal blocked: they are the loop's (signalfd),
         * and a default action must never run there. */
        (void) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        sigfillset(&all);
        __atomic_add_fetch(&t->n_ref, 1, __ATOMIC_ACQ_REL); /* the thread's */
        (void) pthread_sigmask(SIG_SETMASK, &all, &saved);
        r = -pthread_create(&thread, &attr, lookup_thread_main, t);
        (void) pthread_sigmask(SIG_SETMASK, &saved, NULL);
        (void) pthread_attr_destroy(&attr);
        if (r < 0) {
                __atomic_sub_fetch(&t->n_ref, 1, __ATOMIC_ACQ_REL);
                return r;
        }
        *ret = TAKE_PTR(t);
        return 0;
}

LookupThread *lookup_thread_free(LookupThread *t) {
        if (!t)
                return NULL;
        t->source = sd_event_source_disable_unref(t->source);
        lookup_thread_unref(t);
        return NULL;
}
