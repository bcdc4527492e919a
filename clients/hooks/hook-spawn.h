/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Starting one hook process: fork, a process group of its own, the event's
 * JSON line on stdin, the runner's stdout and stderr, nothing else open, and
 * (when the runner is root) the hook's user. Never blocks on the child: the
 * caller waits for its exit with an sd-event child source.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The credentials a hook runs with, resolved when hooks are loaded. */
typedef struct HookCred {
        bool set;          /* false: the runner's own */
        uid_t uid;
        gid_t gid;
        gid_t *groups;     /* supplementary groups (getgrouplist()) */
        int n_groups;
} HookCred;

/* Free the groups and forget the credentials; c may be all zero. */
void hook_cred_done(HookCred *c);

/*
 * Start argv[0] (an absolute path) with argv and envp, input (len bytes) as
 * its stdin, in a new process group whose id is its pid, its working
 * directory "/", all signals at their defaults and unblocked; with cred if
 * set (setgroups, setgid, setuid: the caller must be root). Returns 0 and
 * the child's pid, or a negative errno (from memfd_create, write, fork).
 * A failure in the child after the fork (credentials, exec) is reported on
 * its stderr and it exits with 126 (credentials) or 127 (exec).
 */
int hook_spawn(pid_t *ret_pid, char *const *argv, char *const *envp, const char *input, size_t len,
               const HookCred *cred);
