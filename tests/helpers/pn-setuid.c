/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * pn-setuid: what a set-user-ID root program such as su does, for the
 * hostile-user tests, which install a copy of it set-uid root.
 *
 *   pn-setuid SIGNAL
 *
 * Becomes root for good (setresuid(0, 0, 0): real and saved uid too, so
 * that the user who ran it can no longer signal it), blocks SIGNAL, prints
 * "root RUID EUID SUID" and then answers every line on stdin with
 * "pending 0" or "pending 1": whether SIGNAL reached it (and waits,
 * blocked). Exits 0 at EOF, 2 if it could not become root.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
        uid_t r, e, s;
        sigset_t set, pending;
        char line[64];

        if (argc != 2)
                return 2;
        sigemptyset(&set);
        sigaddset(&set, atoi(argv[1]));
        sigprocmask(SIG_BLOCK, &set, NULL);
        if (setresuid(0, 0, 0) < 0 || getresuid(&r, &e, &s) < 0)
                return 2;
        setvbuf(stdout, NULL, _IOLBF, 0);
        printf("root %u %u %u\n", r, e, s);
        while (fgets(line, sizeof(line), stdin)) {
                sigpending(&pending);
                printf("pending %d\n", sigismember(&pending, atoi(argv[1])));
        }
        return 0;
}
