/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * PidfdWatch: the race-free exit of one process, from its pidfd. The pidfd
 * is opened once, when the watch is made, and from then on names that
 * process and no other, whatever happens to its pid number. It becomes
 * readable when the whole thread group has exited (a zombie is enough); the
 * exit status comes from PIDFD_GET_INFO (PIDFD_INFO_EXIT, Linux 6.15) when
 * the kernel has it, which is only once the process was reaped: for a
 * process that is not the broker's child, usually not yet, and the status
 * then comes from the connector (see proctable_exit_seen()).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "common/macro.h"

typedef struct PidfdWatch PidfdWatch;

/* pidfd_open(pid, 0), its errors the same on every kernel: returns the fd,
 * -ESRCH if pid names no process (never existed, or gone, even if reaped
 * during the call), -ENOENT if it is a thread id, not a process, or another
 * -errno. Before Linux 6.9 pidfd_open() says EINVAL for both of the latter
 * two; /proc tells them apart. */
int pidfd_open_process(pid_t pid);

/* The process ended: status is its raw wait status, or -1 if the kernel
 * cannot tell yet. ts_ns is CLOCK_MONOTONIC when it was noticed. Called
 * once; the watch may be freed in the callback. */
typedef void (*PidfdWatchFn)(PidfdWatch *w, int status, uint64_t ts_ns, void *userdata);

/* Open a pidfd for the process tgid and watch it on e. Returns 0, -ESRCH if
 * there is no such process, -ENOENT for a thread id, or -errno. The caller checks that the pidfd is
 * the process it means (pidfd_watch_is_alive() after reading its start time). */
int pidfd_watch_new(PidfdWatch **ret, sd_event *e, pid_t tgid, PidfdWatchFn fn, void *userdata);
PidfdWatch *pidfd_watch_free(PidfdWatch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(PidfdWatch *, pidfd_watch_free)
void pidfd_watch_set_userdata(PidfdWatch *w, void *userdata);

/* Has the process not exited yet? (Not readable, without waiting.) */
bool pidfd_watch_is_alive(const PidfdWatch *w);
int pidfd_watch_get_fd(const PidfdWatch *w);
pid_t pidfd_watch_get_pid(const PidfdWatch *w);

/* The raw exit status of the process of pidfd, or -1 if the kernel does not
 * (yet) give it. */
int pidfd_exit_status(int pidfd);
