/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-procs N: fork N children that sleep in pause() (a process table of
 * N entries for the broker to hold), print "ready" once all exist, and wait
 * until stdin is closed; then kill them all and reap them. Children die with
 * this process (PR_SET_PDEATHSIG) should it be killed instead.
 *
 * Cheap: the parent is small and touches nothing after fork, so a child
 * costs the kernel its task and a few page-table pages, no copied memory.
 */
#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-common.h"

int main(int argc, char **argv) {
        long n = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
        pid_t parent = getpid();
        pid_t *kids = calloc((size_t) (n > 0 ? n : 1), sizeof(*kids));
        long made = 0;
        char c;

        if (!kids || n <= 0)
                return 2;
        prctl(PR_SET_NAME, "pnb-procs");
        for (; made < n; made++) {
                pid_t pid = fork();
                if (pid < 0) {
                        fprintf(stderr, "bench-procs: fork %ld of %ld: %s\n", made + 1, n, strerror(errno));
                        break;
                }
                if (pid == 0) {
                        prctl(PR_SET_PDEATHSIG, SIGKILL);
                        if (getppid() != parent)
                                _exit(0);
                        for (;;)
                                pause();
                }
                kids[made] = pid;
        }
        printf(made == n ? "ready\n" : "failed\n");
        fflush(stdout);
        while (read(STDIN_FILENO, &c, 1) > 0)
                ;
        for (long i = 0; i < made; i++)
                kill(kids[i], SIGKILL);
        while (wait(NULL) > 0 || errno == EINTR)
                ;
        return made == n ? 0 : 1;
}
