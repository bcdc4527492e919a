/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * pn-observer: a real parent and its child, for the ptrace watch tests. The
 * observer forks the target and tells on standard output, one line each,
 * what its own waitpid(WUNTRACED | WCONTINUED) sees of it, so that a test
 * can check that a ptrace-watched process still behaves as untraced towards
 * its real parent. The target reports on the same output when its SIGUSR1
 * handler runs.
 *
 *   pn-observer [--threads N] [--trace]
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
 * With --trace the observer is the target's tracer, and resumes every stop
 * at once (a stand-in for a debugger or strace). The target dies with the
 * observer (PR_SET_PDEATHSIG).
 */
#include <errno.h>
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

static void *thread_main(void *arg) {
        (void) arg;
        for (;;)
                pause();
        return NULL;
}

static int target(long threads) {
        struct sigaction sa = { .sa_handler = on_usr1 };
        pthread_t t;

        sigemptyset(&sa.sa_mask);
        sigaction(SIGUSR1, &sa, NULL);
        for (long i = 0; i < threads; i++)
                if (pthread_create(&t, NULL, thread_main, NULL) != 0)
                        return 99;
        say("ready %ld\n", (long) getpid());
        for (;;)
                pause();
}

int main(int argc, char **argv) {
        long threads = 0;
        int trace = 0;
        pid_t pid, parent = getpid();

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
                        threads = strtol(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--trace") == 0)
                        trace = 1;
                else {
                        fprintf(stderr, "usage: pn-observer [--threads N] [--trace]\n");
                        return 2;
                }
        }
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
