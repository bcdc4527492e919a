/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Network namespaces by name: "ip netns add NAME" bind-mounts the namespace
 * on /run/netns/NAME; the inode of that mount is the namespace's, the one
 * /proc/PID/ns/net shows. Shared by the broker (names in a subscription's
 * match) and procnotify-hooks (Netns= in a hook file); a FilterResolveNetns.
 */
#pragma once

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

#define NETNS_RUN_DIR "/run/netns"

/* 0 and the inode, -ENOENT if there is no such name, -ENOTTY if the name is
 * a file that holds no namespace (its mount is gone), another -errno else. */
static inline int netns_inode_by_name(const char *name, uint64_t *ret_inode, void *userdata) {
        char path[sizeof(NETNS_RUN_DIR) + 256];
        struct statfs sfs;
        struct stat st;

        (void) userdata;
        if ((size_t) snprintf(path, sizeof(path), NETNS_RUN_DIR "/%s", name) >= sizeof(path))
                return -ENAMETOOLONG;
        if (stat(path, &st) < 0 || statfs(path, &sfs) < 0)
                return -errno;
        if ((unsigned long) sfs.f_type != NSFS_MAGIC)
                return -ENOTTY;
        *ret_inode = (uint64_t) st.st_ino;
        return 0;
}
