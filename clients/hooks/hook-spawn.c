/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Hook processes; see hook-spawn.h.
 *
 * stdin is a memfd holding the event's line, not a pipe: the runner writes it
 * before the fork and never waits for the hook to read it, and a hook that
 * does not read its stdin blocks nobody.
 *
 * The child is made as glibc's posix_spawn() makes it, with
 * clone(CLONE_VM | CLONE_VFORK): no copy of the runner's page tables (a
 * fork cost 1.4 ms at p50 on the benchmark VM), and the runner resumes as
 * soon as the child has exec'd, microseconds later. posix_spawn() itself
 * cannot set the user. Sharing memory, the child writes nothing the parent
 * owns, and changes credentials with raw system calls, not libc's wrappers
 * (which would try to act on the parent's threads).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/macro.h"
#include "hook-spawn.h"

#define _noreturn_ __attribute__((noreturn))

void hook_cred_done(HookCred *c) {
        free(c->groups);
        *c = (HookCred) {};
}

static int write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

_noreturn_ static void child_fail(int status, const char *what, const char *arg) {
        /* Plain write(2): the message must reach the log even if stdio is in
         * any state after the fork. */
        char buf[512];
        int n = snprintf(buf, sizeof(buf), "procnotify-hooks: hook process %d: %s %s: %s\n",
                         (int) getpid(), what, arg, strerror(errno));
        if (n > 0)
                (void) !write(STDERR_FILENO, buf, (size_t) MIN(n, (int) sizeof(buf) - 1));
        _exit(status);
}

typedef struct ChildArgs {
        char *const *argv;
        char *const *envp;
        int input_fd;
        const HookCred *cred;
} ChildArgs;

static int child_run(void *userdata) {
        const ChildArgs *a = userdata;
        char *const *argv = a->argv;
        const HookCred *cred = a->cred;
        int input_fd = a->input_fd;
        sigset_t none;

        (void) setpgid(0, 0);
        for (int sig = 1; sig < NSIG; sig++)
                (void) signal(sig, SIG_DFL);
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);

        if (input_fd == STDIN_FILENO) {
                if (fcntl(input_fd, F_SETFD, 0) < 0)
                        child_fail(127, "cannot set up", "stdin");
        } else if (dup2(input_fd, STDIN_FILENO) < 0)
                child_fail(127, "cannot set up", "stdin");
        (void) close_range(3, ~0U, 0);
        if (chdir("/") < 0)
                child_fail(127, "cannot change directory to", "/");

        if (cred && cred->set) {
                if (syscall(SYS_setgroups, (size_t) cred->n_groups, cred->groups) < 0)
                        child_fail(126, "cannot set", "supplementary groups");
                if (syscall(SYS_setresgid, cred->gid, cred->gid, cred->gid) < 0)
                        child_fail(126, "cannot set", "gid");
                if (syscall(SYS_setresuid, cred->uid, cred->uid, cred->uid) < 0)
                        child_fail(126, "cannot set", "uid");
        }
        execve(argv[0], argv, a->envp);
        child_fail(127, "cannot execute", argv[0]);
}

/* The child's stack, while it runs in the runner's memory until its exec.
 * One at a time: the runner is single-threaded and waits (CLONE_VFORK). */
static char child_stack[64 * 1024] __attribute__((aligned(16)));

int hook_spawn(pid_t *ret_pid, char *const *argv, char *const *envp, const char *input, size_t len,
               const HookCred *cred) {
        _cleanup_close_ int fd = -1;
        pid_t pid;
        int r;

        fd = memfd_create("procnotify-hook-event", MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = write_all(fd, input, len);
        if (r < 0)
                return r;
        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;

        ChildArgs args = { .argv = argv, .envp = envp, .input_fd = fd, .cred = cred };
        pid = clone(child_run, child_stack + sizeof(child_stack), CLONE_VM | CLONE_VFORK | SIGCHLD,
                    &args);
        if (pid < 0)
                return -errno;
        /* The child has exec'd (or exited) by now, and made its group. */
        *ret_pid = pid;
        return 0;
}
