/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-hook SOCKET: the hook command of bench-hooks. Its first act is to
 * read CLOCK_MONOTONIC; it then sends "<index> <ts_ns> <start ns>" to the
 * Unix datagram SOCKET, where index is from the "pnb-<i>" name in
 * PROCNOTIFY_COMM and ts_ns the kernel's timestamp of the event
 * (PROCNOTIFY_TS_NS): event-to-hook-start latency, exec included.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include "bench-common.h"

int main(int argc, char **argv) {
        uint64_t start = bench_now();
        const char *comm = getenv("PROCNOTIFY_COMM"), *ts = getenv("PROCNOTIFY_TS_NS");
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char msg[96];
        int fd, n;

        if (argc != 2 || !comm || !ts || strlen(argv[1]) >= sizeof(sa.sun_path))
                return 2;
        long i = bench_index(comm, strlen(comm));
        if (i < 0)
                return 0;
        n = snprintf(msg, sizeof(msg), "%ld %s %llu\n", i, ts, (unsigned long long) start);
        strcpy(sa.sun_path, argv[1]);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || sendto(fd, msg, (size_t) n, 0, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return 1;
        return 0;
}
