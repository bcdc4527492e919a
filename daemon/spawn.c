/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Spawn: a `run` child created (clone, credentials, bounding set, exec)
 * without waiting for it; see spawn.h.
 *
 * The child runs between clone and exec in a copy of the single-threaded
 * broker: it only makes system calls (no stdio, no allocation, no NSS:
 * groups were resolved by the parent) and reports a failure as a fixed-size
 * record on the pipe before _exit(127).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/close_range.h>

#include "common/linux-compat.h"
#include "common/macro.h"
#include "protocol/utf8.h"
#include "fdreserve.h"
#include "spawn.h"

#define SPAWN_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

typedef enum SpawnStep {
        STEP_SIGNALS,
        STEP_SETSID,
        STEP_STDIO,
        STEP_FDS,
        STEP_CHDIR,
        STEP_GROUPS,
        STEP_GID,
        STEP_CAPS,
        STEP_UID,
        STEP_CAPS_LEFT,
        STEP_EXEC,
} SpawnStep;

typedef struct SpawnReport {
        int step;
        int error;
} SpawnReport;

_noreturn_ static void child_fail(int fd, SpawnStep step, int error) {
        SpawnReport rep = { .step = step, .error = error };
        ssize_t n _unused_ = write(fd, &rep, sizeof(rep));
        _exit(127);
}

/* Empty the bounding set: needs CAP_SETPCAP, which root has. Stops at the
 * first number the kernel does not know. */
static int child_drop_bounding(void) {
        for (int cap = 0; cap < 64; cap++)
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
                        if (errno == EINVAL && cap > 0)
                                return 0;
                        return -errno;
                }
        return 0;
}

static bool child_has_caps(void) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        struct __user_cap_data_struct d[2] = {};
        if (syscall(SYS_capget, &h, d) < 0)
                return true;
        return d[0].effective || d[0].permitted || d[1].effective || d[1].permitted ||
               d[0].inheritable || d[1].inheritable;
}

_noreturn_ static void child_run(const SpawnParams *p, int report_fd) {
        sigset_t mask;
        int fd;

        /* The broker blocks the signals it reads through signalfd; a child
         * must start with the defaults. */
        for (int sig = 1; sig < _NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) signal(sig, SIG_DFL);
        sigemptyset(&mask);
        if (sigprocmask(SIG_SETMASK, &mask, NULL) < 0)
                child_fail(report_fd, STEP_SIGNALS, errno);

        /* Its own session and process group: no controlling terminal, and
         * the broker's terminal signals never reach it. */
        if (setsid() < 0)
                child_fail(report_fd, STEP_SETSID, errno);
        /* Not the descriptor limit the broker raised for itself. */
        fdreserve_restore_limit();

        /* A broker started with closed standard descriptors may hold the
         * output on 0-2: move it out of the way first. */
        int out = p->output_fd;
        if (out >= 0 && out < 3 && (out = fcntl(out, F_DUPFD_CLOEXEC, 3)) < 0)
                child_fail(report_fd, STEP_STDIO, errno);
        fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (fd < 0 || dup2(fd, STDIN_FILENO) < 0)
                child_fail(report_fd, STEP_STDIO, errno);
        if (out >= 0)
                fd = out;
        if (dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
                child_fail(report_fd, STEP_STDIO, errno);
        /* Everything else the broker holds (sockets, signalfd, pidfds) is
         * closed by exec; the report pipe too, which is how the parent
         * learns that exec succeeded. */
        if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
                for (int i = 3; i < 65536; i++)
                        (void) fcntl(i, F_SETFD, FD_CLOEXEC);

        if (chdir("/") < 0)
                child_fail(report_fd, STEP_CHDIR, errno);
        umask(022);

        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                child_fail(report_fd, STEP_CAPS, errno);
        /* No child gains a capability on exec, root's neither: with an
         * empty bounding set (and the ambient and inheritable sets empty,
         * the broker's securebits locked at noroot) exec grants nothing,
         * not even through file capabilities or a setuid-root binary. */
        int r = child_drop_bounding();
        if (r < 0)
                child_fail(report_fd, STEP_CAPS, -r);
        if (p->set_ids) {
                if (setgroups(p->n_groups, p->groups) < 0)
                        child_fail(report_fd, STEP_GROUPS, errno);
                if (setresgid(p->gid, p->gid, p->gid) < 0)
                        child_fail(report_fd, STEP_GID, errno);
                if (p->uid != 0 && prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
                        child_fail(report_fd, STEP_CAPS, errno);
                /* From uid 0 to all-nonzero uids the kernel clears the
                 * permitted and effective sets (keep-caps is off). */
                if (setresuid(p->uid, p->uid, p->uid) < 0)
                        child_fail(report_fd, STEP_UID, errno);
                if (p->uid != 0 && child_has_caps())
                        child_fail(report_fd, STEP_CAPS_LEFT, EPERM);
        }

        /* execvpe() would look argv[0] up in the broker's PATH: make the
         * child's environment the environment, so that its PATH is used. */
        environ = (char **) p->envp;
        execvp(p->argv[0], (char *const *) p->argv);
        child_fail(report_fd, STEP_EXEC, errno);
}

static void spawn_describe(const SpawnParams *p, const SpawnReport *rep, SpawnError *err) {
        const char *e = strerror(rep->error);

        err->error = rep->error;
        switch ((SpawnStep) rep->step) {
        case STEP_EXEC:
                snprintf(err->message, sizeof(err->message), "cannot execute \"%.*s\": %s",
                         PN_UTF8_CUT(p->argv[0], 128), e);
                break;
        case STEP_GROUPS:
                snprintf(err->message, sizeof(err->message), "setgroups() failed: %s", e);
                break;
        case STEP_GID:
                snprintf(err->message, sizeof(err->message), "setresgid(%u) failed: %s",
                         (unsigned) p->gid, e);
                break;
        case STEP_UID:
                snprintf(err->message, sizeof(err->message), "setresuid(%u) failed: %s",
                         (unsigned) p->uid, e);
                break;
        case STEP_CAPS:
                snprintf(err->message, sizeof(err->message),
                         "dropping capabilities failed: %s (the broker needs CAP_SETPCAP)", e);
                break;
        case STEP_CAPS_LEFT:
                snprintf(err->message, sizeof(err->message),
                         "capabilities were left after setresuid(%u); refusing to exec",
                         (unsigned) p->uid);
                break;
        default: {
                static const char *const names[] = { "signals", "setsid", "stdio", "fds", "", "chdir" };
                snprintf(err->message, sizeof(err->message), "setting up the child (%s) failed: %s",
                         rep->step >= 0 && rep->step < (int) ELEMENTSOF(names) ? names[rep->step] : "?", e);
                break;
        }
        }
}

int spawn_start(const SpawnParams *p, pid_t *ret_pid, int *ret_pidfd, int *ret_report_fd,
                bool *ret_clone3, SpawnError *err) {
        _cleanup_close_ int rfd = -1, wfd = -1;
        int pipefd[2], pidfd = -1;
        struct pn_clone_args args = {
                .flags = CLONE_PIDFD,
                .pidfd = (uint64_t) (uintptr_t) &pidfd,
                .exit_signal = SIGCHLD,
        };
        bool clone3 = true;
        pid_t pid;

        *err = (SpawnError){ 0 };
        if (pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) < 0) {
                err->error = errno;
                snprintf(err->message, sizeof(err->message), "pipe2() failed: %s", strerror(errno));
                return -err->error;
        }
        rfd = pipefd[0];
        wfd = pipefd[1];
        /* The child writes at most one small record: blocking or not, it
         * fits the pipe. */

        pid = pn_clone3(&args);
        if (pid < 0 && (errno == ENOSYS || errno == EPERM || errno == E2BIG)) {
                clone3 = false;
                pid = fork();
        }
        if (pid < 0) {
                err->error = errno;
                snprintf(err->message, sizeof(err->message), "cannot create a process: %s",
                         strerror(errno));
                return -err->error;
        }
        if (pid == 0) {
                rfd = safe_close(rfd);
                child_run(p, wfd);
        }
        wfd = safe_close(wfd);
        if (!clone3)
                /* Our child and not yet waited for: its pid cannot be reused. */
                pidfd = pn_pidfd_open(pid, 0);
        *ret_pid = pid;
        *ret_pidfd = pidfd;
        *ret_report_fd = TAKE_FD(rfd);
        *ret_clone3 = clone3;
        return 0;
}

int spawn_read_report(const SpawnParams *p, int report_fd, SpawnError *err) {
        SpawnReport rep;
        ssize_t n;

        *err = (SpawnError){ 0 };
        do
                n = read(report_fd, &rep, sizeof(rep));
        while (n < 0 && errno == EINTR);
        if (n < 0 && errno == EAGAIN)
                return SPAWN_E_PENDING;
        if (n < 0)
                return -errno;
        if (n == 0)
                return 0; /* end of file: exec succeeded */
        if (n != (ssize_t) sizeof(rep))
                return -EIO; /* torn: a report is one write of less than PIPE_BUF */
        spawn_describe(p, &rep, err);
        return SPAWN_E_CHILD_FAILED;
}

/* --- environment --- */

char **spawn_env_free(char **env) {
        for (size_t i = 0; env && env[i]; i++)
                free(env[i]);
        free(env);
        return NULL;
}

const char *spawn_env_get(char *const *env, const char *name) {
        size_t n = strlen(name);
        for (size_t i = 0; env && env[i]; i++)
                if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
                        return env[i] + n + 1;
        return NULL;
}

/* Set "NAME=value" (entry) in env of *n entries, replacing NAME. */
static int env_put(char **env, size_t *n, const char *entry) {
        size_t klen = strcspn(entry, "=") + 1;
        char *copy = strdup(entry);

        if (!copy)
                return -ENOMEM;
        for (size_t i = 0; i < *n; i++)
                if (strncmp(env[i], entry, klen) == 0) {
                        free(env[i]);
                        env[i] = copy;
                        return 0;
                }
        env[(*n)++] = copy;
        return 0;
}

static int env_put_pair(char **env, size_t *n, const char *key, const char *value) {
        _cleanup_free_ char *s = NULL;
        if (asprintf(&s, "%s=%s", key, value ? value : "") < 0)
                return -ENOMEM;
        return env_put(env, n, s);
}

int spawn_env_new(char ***ret, const char *user, const char *home, const char *shell,
                  const char *name, const char *const *extra, size_t n_extra) {
        size_t n = 0;
        char **env = calloc(6 + n_extra + 1, sizeof(*env));
        int r = 0;

        if (!env)
                return -ENOMEM;
        if ((r = env_put_pair(env, &n, "PATH", SPAWN_PATH)) < 0 ||
            (r = env_put_pair(env, &n, "HOME", home && *home ? home : "/")) < 0 ||
            (r = env_put_pair(env, &n, "USER", user)) < 0 ||
            (r = env_put_pair(env, &n, "LOGNAME", user)) < 0 ||
            (r = env_put_pair(env, &n, "SHELL", shell && *shell ? shell : "/bin/sh")) < 0 ||
            (r = env_put_pair(env, &n, "PROCNOTIFY_RUN_NAME", name)) < 0)
                goto fail;
        for (size_t i = 0; i < n_extra; i++)
                if ((r = env_put(env, &n, extra[i])) < 0)
                        goto fail;
        *ret = env;
        return 0;
fail:
        spawn_env_free(env);
        return r;
}
