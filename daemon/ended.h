/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Recently ended processes: a small ring of the tgids whose exit the table
 * published lately, so that a later report of the same end by another
 * source (the connector after a child's wait status, or the reverse) is
 * dropped instead of published twice, and a late fork of an ended process
 * does not bring it back. A look-up of a tgid the ring does not hold costs
 * a hash, not a scan.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct Ended {
        pid_t tgid;
        uint64_t at_ns;
        bool without_connector; /* published before the connector told */
} Ended;

#define ENDED_RING 256

/* Buckets of the filter that spares a scan of the ring for a tgid it does
 * not hold (the common case: every fork asks). */
#define ENDED_FILTER_BITS 9

typedef struct EndedRing {
        Ended ended[ENDED_RING];
        size_t next;
        uint16_t held[1u << ENDED_FILTER_BITS]; /* entries in the ring, by tgid hash */
} EndedRing;

void ended_add(EndedRing *r, pid_t tgid, uint64_t now_ns, bool without_connector);
/* Was the end of tgid published less than keep_ns ago? */
bool ended_seen(const EndedRing *r, pid_t tgid, uint64_t now_ns, uint64_t keep_ns);
/* Was the end of tgid published, before the connector told of it, after
 * ts_ns (so that a connector event of tgid stamped ts_ns is a late one of
 * the process that ended, not one of a new process with its pid)? */
bool ended_after(const EndedRing *r, pid_t tgid, uint64_t ts_ns, uint64_t now_ns, uint64_t keep_ns);
/* A new process has this pid: its exit is not the old one's. */
void ended_forget(EndedRing *r, pid_t tgid);
