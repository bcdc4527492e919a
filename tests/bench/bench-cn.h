/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The proc connector as the baseline receivers use it (bench-raw,
 * bench-relay, bench-dbus-relay): a plain netlink socket with a 32 MiB
 * receive buffer, and the message that makes the kernel send events.
 */
#pragma once

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>

/* A connector socket bound to the proc group, or -1. */
static inline int bench_cn_socket(void) {
        struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC };
        int size = 32 << 20;
        int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_CONNECTOR);

        if (fd < 0)
                return -1;
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                close(fd);
                return -1;
        }
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
        return fd;
}

/* PROC_CN_MCAST_LISTEN on fd: 0, or -1 with errno. */
static inline int bench_cn_listen(int fd) {
        char buf[NLMSG_SPACE(sizeof(struct cn_msg) + sizeof(enum proc_cn_mcast_op))]
                __attribute__((aligned(8)));
        struct nlmsghdr *nh = (struct nlmsghdr *) buf;
        struct cn_msg *cn = NLMSG_DATA(nh);

        memset(buf, 0, sizeof(buf));
        nh->nlmsg_len = NLMSG_LENGTH(sizeof(*cn) + sizeof(enum proc_cn_mcast_op));
        nh->nlmsg_type = NLMSG_DONE;
        cn->id.idx = CN_IDX_PROC;
        cn->id.val = CN_VAL_PROC;
        cn->len = sizeof(enum proc_cn_mcast_op);
        *(enum proc_cn_mcast_op *) cn->data = PROC_CN_MCAST_LISTEN;
        return send(fd, buf, nh->nlmsg_len, 0) < 0 ? -1 : 0;
}
