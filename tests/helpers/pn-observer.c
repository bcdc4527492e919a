/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * pn-observer: a real parent and its child, for the ptrace watch tests. The
 * observer forks the target and tells on standard output, one line each,
 * what its own waitpid(WUNTRACED | WCONTINUED) sees of it, so that a test
 * can check that a ptrace-watched process still behaves as untraced towards
 * its real parent. The target reports on the same output when its SIGUSR1
 * handler runs.
 *
 *   pn-observer [--threads N] [--trace] [--exec-on-usr2 leader|thread [--exec-threads M]]
 *               [--clone-on-usr2]
 *   pn-observer --as-target [--threads N] [--exec-on-usr2 …]
 *
 *   target PID       (observer) the target was started
 *   ready PID        (target) its N extra threads run; it waits for signals
 *   usr1 PID         (target) its SIGUSR1 handler ran
 *   stopped SIG      (observer) waitpid: the target stopped by SIG
 *   continued        (observer) waitpid: the target continued
 *   exited CODE      (observer) waitpid: the target exited, then the observer exits
 *   signaled SIG     (observer) waitpid: the target was killed by SIG
 *   traced PID       (observer, --trace) it traces the target itself (PTRACE_SEIZE)
 *
 * The two first lines (target, ready) may come in either order.
 *
 * With --exec-on-usr2 the target blocks SIGUSR2 and one thread (the leader,
 * or the last of its N extra threads, a non-leader) waits for it with
 * sigwait() and then execs this program as --as-target with M extra threads
 * (default 0): the same process, a new image, which says "ready PID" again
 * (and, with a thread to do it, execs again on the next SIGUSR2).
 * A non-leader's exec makes the kernel kill the other threads and give the
 * exec'ing thread the leader's thread id. --as-target runs only the target
 * part (no fork), as that new image.
 *
 * With --clone-on-usr2 the leader instead makes, on SIGUSR2, a process of
 * its own with clone() without CLONE_THREAD and exit signal 0 (which ptrace
 * treats as a clone, not a fork); it says "cloned PID" and waits for
 * signals.
 *
 * With --trace the observer is the target's tracer, and resumes every stop
 * at once (a stand-in for a debugger or strace). The target dies with the
 * observer (PR_SET_PDEATHSIG).
 */
#include <errno.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

static void say(const char *fmt, long v) {
        char line[64];
        int n = snprintf(line, sizeof(line), fmt, v);
        /* One write per line: the observer and the target share stdout. */
        if (n > 0)
                (void) !write(STDOUT_FILENO, line, (size_t) n);
}

static void on_usr1(int sig) {
        (void) sig;
        say("usr1 %ld\n", (long) getpid());
}

static const char *self_exe = "/proc/self/exe";
static char exec_threads[16] = "0";
static int exec_by; /* 0 none, 'l' the leader, 't' the last extra thread */

static char clone_stack[64 * 1024] __attribute__((aligned(16)));

static int clone_main(void *arg) {
        (void) arg;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        say("cloned %ld\n", (long) getpid());
        for (;;)
                pause();
        return 0;
}

/* Wait for SIGUSR2 (blocked in every thread), then exec the new image (or,
 * --clone-on-usr2, make the process of its own and go on waiting). */
static void exec_on_usr2(void) {
        sigset_t set;
        int sig;

        sigemptyset(&set);
        sigaddset(&set, SIGUSR2);
        while (sigwait(&set, &sig) != 0)
                ;
        if (exec_by == 'c') {
                /* No CLONE_THREAD, exit signal 0: a process, yet a "clone"
                 * to ptrace (PTRACE_EVENT_CLONE), not a fork. */
                if (clone(clone_main, clone_stack + sizeof(clone_stack), 0, NULL) < 0)
                        _exit(96);
                for (;;)
                        pause();
        }
        /* The new image can exec again, if it has a thread to do it. */
        if (exec_by == 'l' || (exec_by == 't' && atoi(exec_threads) > 0))
                execl(self_exe, "pn-observer", "--as-target", "--threads", exec_threads,
                      "--exec-on-usr2", exec_by == 'l' ? "leader" : "thread", "--exec-threads",
                      exec_threads, (char *) NULL);
        else
                execl(self_exe, "pn-observer", "--as-target", "--threads", exec_threads, (char *) NULL);
        _exit(97);
}

static void *thread_main(void *arg) {
        if (arg)
                exec_on_usr2();
        for (;;)
                pause();
        return NULL;
}

static int target(long threads) {
        struct sigaction sa = { .sa_handler = on_usr1 };
        sigset_t usr2;
        pthread_t t;

        sigemptyset(&sa.sa_mask);
        sigaction(SIGUSR1, &sa, NULL);
        sigemptyset(&usr2);
        sigaddset(&usr2, SIGUSR2);
        if (exec_by)
                sigprocmask(SIG_BLOCK, &usr2, NULL); /* inherited by the threads */
        else
                sigprocmask(SIG_UNBLOCK, &usr2, NULL); /* a new image starts clean */
        for (long i = 0; i < threads; i++)
                if (pthread_create(&t, NULL, thread_main,
                                   exec_by == 't' && i == threads - 1 ? (void *) 1 : NULL) != 0)
                        return 99;
        say("ready %ld\n", (long) getpid());
        if (exec_by == 'l' || exec_by == 'c')
                exec_on_usr2();
        for (;;)
                pause();
}

int main(int argc, char **argv) {
        long threads = 0;
        int trace = 0, as_target = 0;
        pid_t pid, parent = getpid();

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
                        threads = strtol(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--trace") == 0)
                        trace = 1;
                else if (strcmp(argv[i], "--exec-on-usr2") == 0 && i + 1 < argc) {
                        i++;
                        exec_by = strcmp(argv[i], "leader") == 0   ? 'l'
                                  : strcmp(argv[i], "thread") == 0 ? 't'
                                                                   : '?';
                } else if (strcmp(argv[i], "--clone-on-usr2") == 0)
                        exec_by = 'c';
                else if (strcmp(argv[i], "--exec-threads") == 0 && i + 1 < argc)
                        snprintf(exec_threads, sizeof(exec_threads), "%s", argv[++i]);
                else if (strcmp(argv[i], "--as-target") == 0)
                        as_target = 1;
                else
                        exec_by = '?';
        }
        if (exec_by == '?' || (exec_by == 't' && threads < 1)) {
                fprintf(stderr, "usage: pn-observer [--threads N] [--trace] "
                                "[--exec-on-usr2 leader|thread [--exec-threads M]] [--clone-on-usr2]\n"
                                "       pn-observer --as-target [--threads N] [--exec-on-usr2 …]\n"
                                "(--exec-on-usr2 thread needs --threads 1 or more)\n");
                return 2;
        }
        if (as_target)
                return target(threads);
        pid = fork();
        if (pid < 0)
                return 99;
        if (pid == 0) {
                /* A process group of its own, with its parent in another
                 * group of the session: not orphaned, so SIGTSTP stops it as
                 * it would a job of a shell (an orphaned group ignores it). */
                setpgid(0, 0);
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(98);
                return target(threads);
        }
        say("target %ld\n", (long) pid);
        if (trace) {
                if (ptrace(PTRACE_SEIZE, pid, NULL, NULL) < 0) {
                        perror("PTRACE_SEIZE");
                        return 99;
                }
                say("traced %ld\n", (long) pid);
        }
        for (;;) {
                int status;
                pid_t r = waitpid(pid, &status, __WALL | WUNTRACED | WCONTINUED);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return 99;
                }
                if (trace && WIFSTOPPED(status)) {
                        /* As tracer: resume at once, with the signal. */
                        int sig = (status >> 16) == 0 ? WSTOPSIG(status) : 0;
                        (void) ptrace(PTRACE_CONT, pid, NULL, (void *) (long) sig);
                        continue;
                }
                if (WIFSTOPPED(status))
                        say("stopped %ld\n", WSTOPSIG(status));
                else if (WIFCONTINUED(status))
                        say("continued\n", 0);
                else if (WIFEXITED(status)) {
                        say("exited %ld\n", WEXITSTATUS(status));
                        return 0;
                } else if (WIFSIGNALED(status)) {
                        say("signaled %ld\n", WTERMSIG(status));
                        return 0;
                }
        }
}
