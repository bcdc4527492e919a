/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The file descriptors kept for root. Every client connection, every
 * signal-asking subscriber's pidfd and every watch costs the broker a
 * descriptor; per-user limits bound each user, not how many users there
 * are. So the last FDRESERVE_SIZE descriptors below RLIMIT_NOFILE are
 * root's: a descriptor opened for anyone else at or above that mark is
 * closed again and the request refused (limit-exceeded), so root can still
 * connect (and the broker still read /proc) however many users there are.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#define FDRESERVE_SIZE 32

/* Raise the soft RLIMIT_NOFILE to the hard one (the broker never uses
 * select()) and remember it. Returns the limit. */
unsigned fdreserve_init(void);
/* In a child before exec: the soft limit the broker started with (programs
 * that use select() break on descriptors past 1024). Async-signal-safe. */
void fdreserve_restore_limit(void);
/* The limit fdreserve_init() found (1024 before it is called). */
unsigned fdreserve_limit(void);
/* Whether fd, just opened on behalf of uid, is in root's reserve: the
 * kernel hands out the lowest free number, so fd >= limit - FDRESERVE_SIZE
 * means no more than FDRESERVE_SIZE are left. Never for root. */
bool fdreserve_refuses(int fd, uid_t uid);
