/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Spawn: start one process as the broker's child, set up for supervision,
 * and know whether it got as far as exec. clone3(CLONE_PIDFD) gives the
 * pidfd atomically with the child; without clone3 (ENOSYS, or a seccomp
 * filter that refuses it) fork() and pidfd_open() do, race-free, since the
 * child cannot be reaped before the broker waits for it.
 *
 * In the child, before exec: default signal dispositions and an empty
 * mask, a new session (and so process group), stdin from /dev/null,
 * stdout and stderr to the given descriptor, every other descriptor closed
 * on exec, "/" as working directory, umask 022, then the identity
 * (groups, gid, uid) and,
 * for a non-root uid, no capabilities at all: the ambient set cleared, the
 * bounding set emptied, keep-caps off, and a check after setuid that the
 * permitted and effective sets are empty. A root child keeps root's
 * capabilities within the broker's bounding set (ambient cleared).
 *
 * What failed in the child (and with which errno) comes back through a
 * close-on-exec pipe: end of file means exec succeeded.
 *
 * Also the pure part: the sanitised environment of a child.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct SpawnParams {
        const char *const *argv;  /* argv[0] is looked up in the child's PATH */
        char *const *envp;
        bool set_ids;             /* switch to uid, gid, groups */
        uid_t uid;
        gid_t gid;
        const gid_t *groups;
        size_t n_groups;
        int output_fd;            /* stdout and stderr; -1: /dev/null */
} SpawnParams;

typedef struct SpawnError {
        int error;                /* positive errno of the step that failed */
        char message[256];        /* "cannot execute \"foo\": No such file or directory" */
} SpawnError;

enum {
        /* The child failed before exec: it exits 127 and must be reaped
         * like any other. */
        SPAWN_E_CHILD_FAILED = 1,
        /* The child has not told yet: wait for report_fd to be readable. */
        SPAWN_E_PENDING = 2,
};

/*
 * Start p as a child, without waiting for it. Returns 0 with *ret_pid,
 * *ret_pidfd (-1 if the kernel has no pidfds), *ret_clone3 (whether clone3
 * was used) and *ret_report_fd, a non-blocking pipe the child reports on:
 * the caller waits for it in its loop and reads it with spawn_read_report().
 * Or -errno if no child was created (*err filled).
 */
int spawn_start(const SpawnParams *p, pid_t *ret_pid, int *ret_pidfd, int *ret_report_fd,
                bool *ret_clone3, SpawnError *err);
/*
 * What the child told on report_fd (never waits): 0, exec succeeded (end of
 * file; also a closed pipe of a child that died before writing);
 * SPAWN_E_CHILD_FAILED with *err filled; SPAWN_E_PENDING, nothing yet; a
 * negative errno if the pipe could not be read (-EIO: a torn report). p is
 * what the child was started with, for the message. Once the child has
 * exited, the answer is never SPAWN_E_PENDING.
 */
int spawn_read_report(const SpawnParams *p, int report_fd, SpawnError *err);

/*
 * The environment of a child: PATH, HOME, USER, LOGNAME, SHELL of the user
 * it runs as, PROCNOTIFY_RUN_NAME=name, then extra ("NAME=value" each,
 * validated by the request parser), where a later NAME replaces an earlier
 * one. Nothing of the broker's own environment. Returns 0 and a
 * NULL-terminated array to free with spawn_env_free(), or -ENOMEM.
 */
int spawn_env_new(char ***ret, const char *user, const char *home, const char *shell,
                  const char *name, const char *const *extra, size_t n_extra);
char **spawn_env_free(char **env);
/* The value of NAME in env, or NULL. */
const char *spawn_env_get(char *const *env, const char *name);
