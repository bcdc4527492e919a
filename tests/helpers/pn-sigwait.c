/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * pn-sigwait: a subscriber that asks the broker for a signal and reports
 * the siginfo it gets, which Python cannot show (it has no si_value).
 *
 *   pn-sigwait [--uid UID] SOCKET SIGNAL REQUEST
 *
 * Becomes UID if given, blocks SIGNAL, connects to SOCKET, reads the hello,
 * sends REQUEST (one JSON line, a subscribe with "signal"), reads the reply
 * and prints it, then "ready". It then waits (at most 20 s) for SIGNAL and
 * prints "signo=N code=N pid=N uid=N value=N" and exits 0; 1 on a timeout,
 * 2 on any other failure. The socket stays open and unread meanwhile.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* One line from fd, byte by byte (the broker may send more behind it). */
static int read_line(int fd, char *buf, size_t size) {
        size_t n = 0;
        while (n + 1 < size) {
                ssize_t k = read(fd, buf + n, 1);
                if (k <= 0)
                        return -1;
                if (buf[n] == '\n')
                        break;
                n++;
        }
        buf[n] = 0;
        return 0;
}

int main(int argc, char **argv) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char line[4096];
        sigset_t set;
        siginfo_t si;
        int fd, sig;

        if (argc == 6 && strcmp(argv[1], "--uid") == 0) {
                uid_t uid = (uid_t) strtoul(argv[2], NULL, 10);
                if (setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0) {
                        perror("setresuid");
                        return 2;
                }
                argv += 2;
                argc -= 2;
        }
        if (argc != 4) {
                fprintf(stderr, "usage: pn-sigwait [--uid UID] SOCKET SIGNAL REQUEST\n");
                return 2;
        }
        sig = atoi(argv[2]);
        sigemptyset(&set);
        sigaddset(&set, sig);
        if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
                return 2;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                perror("connect");
                return 2;
        }
        if (read_line(fd, line, sizeof(line)) < 0)
                return 2;
        dprintf(fd, "%s\n", argv[3]);
        if (read_line(fd, line, sizeof(line)) < 0)
                return 2;
        printf("%s\nready\n", line);
        fflush(stdout);

        struct timespec timeout = { .tv_sec = 20 };
        if (sigtimedwait(&set, &si, &timeout) < 0) {
                printf("%s\n", errno == EAGAIN ? "timeout" : strerror(errno));
                return 1;
        }
        printf("signo=%d code=%d pid=%d uid=%d value=%d\n", si.si_signo, si.si_code, (int) si.si_pid,
               (int) si.si_uid, si.si_value.sival_int);
        return 0;
}
