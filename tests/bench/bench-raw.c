/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-raw N TIMEOUT_S: the floor. A minimal proc connector listener (plain
 * socket, poll, then recv until the queue is empty, no parsing beyond the
 * comm name), the least any listener can do. Records when each "pnb-<i>" comm event arrives;
 * with PNB_EVENT=predump or exit, when the coredump or exit event of the
 * process that took that name arrives (the connector's messages carry no
 * name: the comm event maps its pid to the index).
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
        BenchEvent want = bench_event();
        /* pid -> index + 1, for the crash events (pids below 2^22, pid_max's
         * largest). */
        int32_t *index_of = want == BENCH_EVENT_COMM ? NULL : calloc(1u << 22, sizeof(int32_t));
        if (want != BENCH_EVENT_COMM && !index_of)
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
                        if (ev->what == PROC_EVENT_COMM) {
                                long i = bench_index(ev->event_data.comm.comm, sizeof(ev->event_data.comm.comm));
                                pid_t pid = ev->event_data.comm.process_pid;
                                if (want == BENCH_EVENT_COMM)
                                        bench_record(&rec, i, t);
                                else if (i >= 0 && pid > 0 && pid < (1 << 22))
                                        index_of[pid] = (int32_t) i + 1;
                        } else if (want == BENCH_EVENT_PREDUMP && ev->what == PROC_EVENT_COREDUMP) {
                                pid_t pid = ev->event_data.coredump.process_tgid;
                                if (pid > 0 && pid < (1 << 22) && index_of[pid])
                                        bench_record(&rec, index_of[pid] - 1, t);
                        } else if (want == BENCH_EVENT_EXIT && ev->what == PROC_EVENT_EXIT) {
                                pid_t pid = ev->event_data.exit.process_tgid;
                                if (pid > 0 && pid < (1 << 22) && index_of[pid])
                                        bench_record(&rec, index_of[pid] - 1, t);
                        }
                }
        }
        bench_record_print(&rec);
        return 0;
}
