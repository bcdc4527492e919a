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
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>

#include "bench-common.h"

int main(int argc, char **argv) {
        long n = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
        int timeout_s = argc > 2 ? atoi(argv[2]) : 60;
        int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_CONNECTOR);
        struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC };
        char buf[512] __attribute__((aligned(8)));
        BenchRecord rec;
        int size = 32 << 20;

        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || bench_record_init(&rec, n) < 0)
                return 1;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
        struct nlmsghdr *nh = (struct nlmsghdr *) buf;
        struct cn_msg *cn = NLMSG_DATA(nh);
        memset(buf, 0, sizeof(buf));
        nh->nlmsg_len = NLMSG_LENGTH(sizeof(*cn) + sizeof(enum proc_cn_mcast_op));
        nh->nlmsg_type = NLMSG_DONE;
        cn->id.idx = CN_IDX_PROC;
        cn->id.val = CN_VAL_PROC;
        cn->len = sizeof(enum proc_cn_mcast_op);
        *(enum proc_cn_mcast_op *) cn->data = PROC_CN_MCAST_LISTEN;
        if (send(fd, buf, nh->nlmsg_len, 0) < 0)
                return 1;
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
