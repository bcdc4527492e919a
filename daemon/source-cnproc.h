/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Cnproc: the proc connector source. Owns the NETLINK_CONNECTOR socket
 * (through libnl-3), subscribes with the kernel's per-listener event filter
 * where the kernel has one, reads in non-blocking batches from the event
 * loop, and turns every message into a PnEvent for the broker. It knows
 * nothing of sinks.
 *
 * Loss is never silent: ENOBUFS, gaps in the kernel's per-CPU sequence
 * numbers, and the socket's kernel drop counter (SO_MEMINFO) are all
 * reconciled into one running count, reported through on_loss. A watchdog
 * timer notices a socket that stopped receiving while the kernel drops for
 * it, and re-creates the socket; if that fails, on_fatal says so.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "procnotify/event.h"

typedef struct Cnproc Cnproc;

typedef struct CnprocCallbacks {
        /* A kernel event, parsed but not enriched. The callee may modify it. */
        void (*on_event)(void *userdata, PnEvent *ev);
        /* lost more events were lost since the last call. */
        void (*on_loss)(void *userdata, uint64_t lost);
        /* A batch of events was handed over (may be NULL). */
        void (*on_batch_end)(void *userdata);
        /* The source is gone for good: the watchdog could not re-create a
         * stuck socket (error is -errno). No event comes any more; the
         * caller must stop (the source only waits to be freed). */
        void (*on_fatal)(void *userdata, int error);
} CnprocCallbacks;

typedef struct CnprocOptions {
        uint64_t receive_buffer;  /* bytes for SO_RCVBUFFORCE; 0 = kernel default */
        uint32_t kernel_events;   /* PROC_EVENT_* mask to ask for; 0 = all */
} CnprocOptions;

typedef struct CnprocStats {
        uint64_t received;     /* connector messages read */
        uint64_t lost;         /* events reported lost */
        uint64_t enobufs;      /* ENOBUFS errors seen */
        uint64_t resets;       /* socket re-created by the watchdog */
        uint64_t malformed;    /* messages that did not parse */
        bool filter;           /* the kernel accepted a per-listener filter */
        uint32_t kernel_events;/* the filter in force */
        uint64_t receive_buffer; /* SO_RCVBUF as the kernel reports it */
} CnprocStats;

/* Open, subscribe and attach to e. Returns 0, or -errno (-EPERM without
 * CAP_NET_ADMIN on kernels before 6.6). */
int cnproc_new(Cnproc **ret, sd_event *e, const CnprocOptions *o, const CnprocCallbacks *cb,
               void *userdata);
Cnproc *cnproc_free(Cnproc *c);

/* Apply a new receive buffer size (reload). */
int cnproc_set_receive_buffer(Cnproc *c, uint64_t bytes);
const CnprocStats *cnproc_get_stats(Cnproc *c);
