/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-relay SOCKET: the naive one-hop relay, a baseline. poll and recv of
 * each connector message, one at a time; for each comm event of the
 * benchmark's name prefix (others are skipped, as procnotify's subscription
 * filter skips them), snprintf of a small JSON line and a write to the one
 * client of a Unix socket it serves (bench-json connects to it as to
 * procnotifyd). It answers the subscribe line with "subscribed" so that the
 * same client works. What is left between it and procnotify is procnotify's
 * own work; what is between it and the raw listener is the extra hop.
 */
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench-cn.h"
#include "bench-common.h"

int main(int argc, char **argv) {
        int nl = bench_cn_socket();
        struct sockaddr_un su = { .sun_family = AF_UNIX };
        char buf[512] __attribute__((aligned(8))), line[512];
        int lfd, cfd;
        const char *prefix = bench_prefix();

        if (argc != 2 || nl < 0)
                return 1;
        strncpy(su.sun_path, argv[1], sizeof(su.sun_path) - 1);
        unlink(argv[1]);
        lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (bind(lfd, (struct sockaddr *) &su, sizeof(su)) < 0 || listen(lfd, 1) < 0)
                return 1;
        printf("ready\n");
        fflush(stdout);
        cfd = accept(lfd, NULL, NULL);
        if (cfd < 0 || read(cfd, line, sizeof(line)) <= 0)
                return 1;
        const char *ok = "{\"type\":\"hello\"}\n{\"type\":\"subscribed\",\"id\":1}\n";
        if (write(cfd, ok, strlen(ok)) < 0)
                return 1;

        if (bench_cn_listen(nl) < 0)
                return 1;
        const struct nlmsghdr *nh = (const struct nlmsghdr *) buf;
        for (;;) {
                /* Wait like every other receiver here (poll, 100 ms): an
                 * endless block lets the guest pick deeper idle states,
                 * which would measure the VM, not the relay. */
                struct pollfd p = { nl, POLLIN, 0 };
                if (poll(&p, 1, 100) <= 0)
                        continue;
                ssize_t k = recv(nl, buf, sizeof(buf), 0);
                if (k <= 0)
                        continue;
                struct proc_event *ev = (struct proc_event *) ((struct cn_msg *) NLMSG_DATA(nh))->data;
                if (ev->what != PROC_EVENT_COMM || strncmp(ev->event_data.comm.comm, prefix, strlen(prefix)) != 0)
                        continue;
                int n = snprintf(line, sizeof(line),
                                 "{\"type\":\"comm\",\"ts_ns\":%llu,\"pid\":%d,\"tgid\":%d,\"comm\":\"%.16s\"}\n",
                                 (unsigned long long) ev->timestamp_ns, ev->event_data.comm.process_pid,
                                 ev->event_data.comm.process_tgid, ev->event_data.comm.comm);
                if (write(cfd, line, (size_t) n) < 0)
                        return 0; /* the client left */
        }
}
