/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-clients SOCKET N REQUEST: open N JSON connections to procnotifyd,
 * send REQUEST (a subscribe line) on each, print "ready" once every one was
 * answered "subscribed", then read and discard whatever arrives until stdin
 * is closed; then print "lines <total lines received>". The crowd for the
 * benchmarks that need many clients: 100 whose filters never match (the
 * cost of not matching), 1,000 connected (the broker's memory).
 */
#include <errno.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench-common.h"

static long count_lines(const char *buf, size_t n) {
        long k = 0;
        for (const char *p = buf; (p = memchr(p, '\n', n - (size_t) (p - buf))); p++)
                k++;
        return k;
}

int main(int argc, char **argv) {
        if (argc != 4)
                return 2;
        long n = strtol(argv[2], NULL, 10);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct rlimit rl = { .rlim_cur = (rlim_t) n + 64, .rlim_max = (rlim_t) n + 64 };
        struct pollfd *p = calloc((size_t) n + 1, sizeof(*p));
        bool *subscribed = calloc((size_t) n, sizeof(*subscribed));
        static char buf[1 << 16];
        char req[1024];
        long ready = 0, lines = 0;

        if (!p || !subscribed || n <= 0)
                return 2;
        (void) setrlimit(RLIMIT_NOFILE, &rl); /* root may raise it; others get what they have */
        snprintf(req, sizeof(req), "%s\n", argv[3]);
        strncpy(sa.sun_path, argv[1], sizeof(sa.sun_path) - 1);
        for (long i = 0; i < n; i++) {
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
                    write(fd, req, strlen(req)) < 0) {
                        fprintf(stderr, "bench-clients: connection %ld: %s\n", i, strerror(errno));
                        return 1;
                }
                p[i] = (struct pollfd){ .fd = fd, .events = POLLIN };
        }
        p[n] = (struct pollfd){ .fd = STDIN_FILENO, .events = 0 };

        for (;;) {
                if (ready == n) {
                        printf("ready\n");
                        fflush(stdout);
                        ready++;
                        p[n].events = POLLIN;
                }
                if (poll(p, (nfds_t) n + 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return 1;
                }
                if (p[n].revents)
                        break; /* stdin closed (or anything on it): done */
                for (long i = 0; i < n; i++) {
                        if (!p[i].revents)
                                continue;
                        ssize_t k = read(p[i].fd, buf, sizeof(buf));
                        if (k <= 0) {
                                fprintf(stderr, "bench-clients: connection %ld closed by the broker\n", i);
                                return 1;
                        }
                        lines += count_lines(buf, (size_t) k);
                        if (!subscribed[i] && memmem(buf, (size_t) k, "\"subscribed\"", 12)) {
                                subscribed[i] = true;
                                ready++;
                        }
                }
        }
        printf("lines %ld\n", lines);
        return 0;
}
