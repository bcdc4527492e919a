/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A pidfd of a subscriber's own process, so that the signals it asks for
 * ("signal" in subscribe) go to it and, whatever happens to its pid, to no
 * other process. From the socket itself where the kernel can tell
 * (SO_PEERPIDFD, Linux 6.5: the process that connected, never a reused
 * pid); else from the pid the kernel reported (SO_PEERCRED, D-Bus sender
 * credentials), checked against the process's start time.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

/* CLOCK_BOOTTIME in ns: the clock of /proc/PID/stat's start time. */
uint64_t peer_boottime_now(void);

/*
 * A pidfd (O_CLOEXEC) of the process at the other end of the Unix socket
 * sockfd: SO_PEERPIDFD, or, where the kernel lacks it, peer_pidfd_open_pid()
 * of pid. Returns the fd or a negative errno.
 */
int peer_pidfd_open_socket(int sockfd, pid_t pid, uint64_t known_since_ns);

/*
 * pidfd_open(pid), accepted only if that process started no later than
 * known_since_ns (CLOCK_BOOTTIME, to the kernel's clock-tick resolution):
 * the moment the caller learned pid belongs to its peer. A process that
 * started later holds a reused pid and is refused with -ESRCH, as is a
 * vanished one. Returns the fd or a negative errno.
 */
int peer_pidfd_open_pid(pid_t pid, uint64_t known_since_ns);

/*
 * Send every signal in sigmask (bit N-1 for signal N) to the process of
 * pidfd (-1: none, all fail), as SI_QUEUE from this process with value in
 * si_value.sival_int: what a subscriber asking for "signal" gets per event.
 * Adds to *sent and *failed (gone, or its queue of pending signals full).
 */
void peer_pidfd_send_signals(int pidfd, uint64_t sigmask, int value, uint64_t *sent,
                             uint64_t *failed);
