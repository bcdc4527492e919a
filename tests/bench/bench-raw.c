/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-raw N TIMEOUT_S: the floor. A minimal proc connector listener (plain
 * socket, poll, then recv until the queue is empty, no parsing beyond the
 * comm name), the least any listener can do. Records when each "pnb-<i>" comm event arrives.
 */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench-cn.h"
#include "bench-common.h"

int main(int argc, char **argv) {
        long n = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
        int timeout_s = argc > 2 ? atoi(argv[2]) : 60;
        int fd = bench_cn_socket();
        char buf[512] __attribute__((aligned(8)));
        BenchRecord rec;

        if (fd < 0 || bench_record_init(&rec, n) < 0)
                return 1;
        if (bench_cn_listen(fd) < 0)
                return 1;
        const struct nlmsghdr *nh = (const struct nlmsghdr *) buf;
        printf("ready\n");
        fflush(stdout);

        uint64_t deadline = bench_now() + (uint64_t) timeout_s * 1000000000u;
        while (!bench_record_done(&rec, deadline)) {
                struct pollfd p = { fd, POLLIN, 0 };
                if (poll(&p, 1, 100) <= 0)
                        continue;
                /* Drain what is queued: one poll per wakeup, not per event. */
                for (;;) {
                        ssize_t k = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                        uint64_t t = bench_now();
                        if (k < 0 && errno == ENOBUFS) {
                                rec.overruns++; /* the kernel dropped some: ours is not to count them */
                                continue;
                        }
                        if (k <= 0)
                                break;
                        struct proc_event *ev = (struct proc_event *) ((struct cn_msg *) NLMSG_DATA(nh))->data;
                        if (ev->what != PROC_EVENT_COMM)
                                continue;
                        bench_record(&rec, bench_index(ev->event_data.comm.comm, sizeof(ev->event_data.comm.comm)),
                                     t);
                }
        }
        bench_record_print(&rec);
        return 0;
}
