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

#include <stdbool.h>
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

/* The real, effective and saved uid of pidfd's process now: PIDFD_GET_INFO
 * (Linux 6.13), else its /proc/PID/status, opened while the pidfd shows it
 * alive (so the pid was not reused). 0, -ESRCH if it is gone, -errno. */
int peer_pidfd_read_uids(int pidfd, uint32_t *ruid, uint32_t *euid, uint32_t *suid);

/*
 * kill()'s permission rule (kernel/signal.c, kill_ok_by_cred): a sender
 * with real uid ruid and effective uid euid may signal a process whose real
 * uid is t_ruid and saved uid t_suid when one of its uids is one of those,
 * or when it is root (euid 0: CAP_KILL).
 */
bool peer_may_signal(uint32_t ruid, uint32_t euid, uint32_t t_ruid, uint32_t t_suid);

/*
 * The signals a subscriber asked for ("signal" in subscribe) go to its own
 * process, and only as far as it could send them itself: with the uids it
 * had when it subscribed, against the process's uids at each delivery (a
 * set-user-ID program it executed meanwhile is no longer its to signal).
 */
typedef struct PeerSignals {
        int pidfd;            /* -1 until a subscription asks for signals */
        uint32_t ruid, euid;  /* the subscriber's, read through pidfd when it was set */
        bool withheld_told;   /* a withheld signal was reported and none was sent since */
} PeerSignals;

#define PEER_SIGNALS_INIT ((PeerSignals){ .pidfd = -1 })

/*
 * Take pidfd, the subscriber's process, and read its real and effective
 * uid now. conn_uid is the uid the kernel gave for the connection
 * (SO_PEERCRED, the bus's UnixUserID): it must be one of them, or the
 * process is no longer who connected (it executed a set-user-ID program, or
 * another process sharing the connection asks) and -EPERM is returned.
 * -ESRCH if it is gone. On failure pidfd is closed and ps unchanged.
 */
int peer_signals_set(PeerSignals *ps, int pidfd, uint32_t conn_uid);
void peer_signals_done(PeerSignals *ps);

typedef struct PeerSignalCounts {
        uint64_t *sent;      /* delivered */
        uint64_t *failed;    /* the process is gone, or its queue of pending signals full */
        uint64_t *withheld;  /* the subscriber could not have sent it (peer_may_signal) */
} PeerSignalCounts;

/*
 * Send every signal in sigmask (bit N-1 for signal N) to the subscriber's
 * process (none set: all fail), as SI_QUEUE from this process with value in
 * si_value.sival_int, each only if peer_may_signal() allows it now: what a
 * subscriber asking for "signal" gets per event. Adds to the counts.
 * Returns the lowest signal withheld that the subscriber must now be told
 * of (the first since it was last told, or since a signal got through
 * again), else 0.
 */
int peer_signals_send(PeerSignals *ps, uint64_t sigmask, int value, const PeerSignalCounts *n);
