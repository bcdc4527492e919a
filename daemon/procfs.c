/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ProcReader: one process read from /proc (stat, status, exe, cmdline,
 * cgroup, netns), every string mapped to valid UTF-8; see procfs.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/macro.h"
#include "procfs.h"

typedef struct Procfs {
        int dirfd;
} Procfs;

/* Read a whole small file below the proc dir into buf (NUL-terminated). */
static ssize_t read_file_at(int dirfd, const char *path, char *buf, size_t size) {
        _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        size_t n = 0;

        if (fd < 0)
                return -errno;
        while (n < size - 1) {
                ssize_t k = read(fd, buf + n, size - 1 - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        buf[n] = 0;
        return (ssize_t) n;
}

static int gone(int r) {
        /* A process that exited reads as ENOENT or ESRCH. */
        return (r == -ENOENT || r == -ESRCH) ? -ESRCH : r;
}

int procfs_parse_stat(const char *buf, size_t len, ProcInfo *info) {
        const char *open = memchr(buf, '(', len);
        const char *close = NULL;
        unsigned long long v;

        /* comm may hold ')' and spaces: it ends at the last ')'. */
        for (const char *p = buf + len; p > buf; p--)
                if (p[-1] == ')') {
                        close = p - 1;
                        break;
                }
        if (!open || !close || close < open)
                return -EINVAL;
        /* At most the kernel's 15 bytes, mapped to valid text (utf8.h). */
        size_t n = MIN((size_t) (close - open - 1), PROCFS_COMM_MAX);
        pn_utf8_sanitize(info->comm, sizeof(info->comm), open + 1, n);

        /* Fields after comm, numbered from 3 (state) as in proc(5). */
        const char *p = close + 1;
        const char *end = buf + len;
        for (int field = 3; field <= 22; field++) {
                while (p < end && *p == ' ')
                        p++;
                if (p >= end)
                        return -EINVAL;
                if (field == 3) {
                        info->state = *p;
                } else if (field == 4 || field == 20 || field == 22) {
                        char *e;
                        errno = 0;
                        v = strtoull(p, &e, 10);
                        if (errno || e == p)
                                return -EINVAL;
                        if (field == 4)
                                info->ppid = (pid_t) v;
                        else if (field == 20)
                                info->nthreads = (uint32_t) v;
                        else
                                info->start_time = v;
                }
                while (p < end && *p != ' ')
                        p++;
        }
        return 0;
}

static int read_stat(int dirfd, const char *pid, ProcInfo *info) {
        char path[64], buf[1024];
        ssize_t n;

        snprintf(path, sizeof(path), "%s/stat", pid);
        n = read_file_at(dirfd, path, buf, sizeof(buf));
        if (n < 0)
                return gone((int) n);
        return procfs_parse_stat(buf, (size_t) n, info);
}

static int parse_ids(const char *buf, const char *key, uint32_t *real, uint32_t *eff) {
        const char *p = strstr(buf, key);
        unsigned long r, e;
        if (!p || sscanf(p + strlen(key), "%lu %lu", &r, &e) != 2)
                return -EINVAL;
        *real = (uint32_t) r;
        *eff = (uint32_t) e;
        return 0;
}

static int read_status(int dirfd, const char *pid, ProcInfo *info) {
        char path[64], buf[4096];
        ssize_t n;

        snprintf(path, sizeof(path), "%s/status", pid);
        n = read_file_at(dirfd, path, buf, sizeof(buf));
        if (n < 0)
                return gone((int) n);
        if (parse_ids(buf, "\nUid:", &info->uid, &info->euid) < 0 ||
            parse_ids(buf, "\nGid:", &info->gid, &info->egid) < 0)
                return -EINVAL;
        /* The third of "Uid:\treal\teffective\tsaved\tfs". */
        unsigned long r, e, saved;
        if (sscanf(strstr(buf, "\nUid:") + 5, "%lu %lu %lu", &r, &e, &saved) != 3)
                return -EINVAL;
        info->suid = (uint32_t) saved;
        return 0;
}

static int read_exe(int dirfd, const char *pid, ProcInfo *info) {
        char path[64], buf[4096];
        ssize_t n;

        snprintf(path, sizeof(path), "%s/exe", pid);
        n = readlinkat(dirfd, path, buf, sizeof(buf) - 1);
        if (n < 0)
                return 0; /* kernel threads and exited mms have none: not an error */
        buf[n] = 0;
        info->exe = pn_utf8_sanitize_dup(buf);
        return info->exe ? 0 : -ENOMEM;
}

static int read_cmdline(int dirfd, const char *pid, ProcInfo *info) {
        char path[64], buf[PROCFS_CMDLINE_MAX + 1];
        ssize_t n;

        snprintf(path, sizeof(path), "%s/cmdline", pid);
        n = read_file_at(dirfd, path, buf, sizeof(buf));
        if (n < 0)
                return gone((int) n);
        while (n > 0 && buf[n - 1] == 0)
                n--;
        if (n == 0)
                return 0; /* kernel thread, or memory already gone */
        for (ssize_t i = 0; i < n; i++)
                if (buf[i] == 0)
                        buf[i] = ' ';
        buf[n] = 0;
        info->cmdline = pn_utf8_sanitize_dup(buf);
        return info->cmdline ? 0 : -ENOMEM;
}

static int read_cgroup(int dirfd, const char *pid, ProcInfo *info) {
        char path[64], buf[4096];
        ssize_t n;

        snprintf(path, sizeof(path), "%s/cgroup", pid);
        n = read_file_at(dirfd, path, buf, sizeof(buf));
        if (n < 0)
                return gone((int) n);
        /* The unified hierarchy's line is "0::/path"; prefer it, else systemd's v1 line. */
        const char *p = strstr(buf, "0::");
        if (p && (p == buf || p[-1] == '\n'))
                p += 3;
        else if ((p = strstr(buf, ":name=systemd:")))
                p += strlen(":name=systemd:");
        else
                return 0;
        size_t len = strcspn(p, "\n");
        buf[p - buf + len] = 0; /* p points into buf */
        info->cgroup = pn_utf8_sanitize_dup(p);
        return info->cgroup ? 0 : -ENOMEM;
}

/* The link reads "net:[4026531840]": the namespace's inode. readlink is
 * half the cost of a stat of it (measured), and this is read at every exec. */
static int read_netns(int dirfd, const char *pid, ProcInfo *info) {
        char path[64], buf[64];
        unsigned long long ino;
        ssize_t n;

        snprintf(path, sizeof(path), "%s/ns/net", pid);
        n = readlinkat(dirfd, path, buf, sizeof(buf) - 1);
        /* Not known rather than gone: a dying thread has no namespaces
         * any more (ENOENT) while its process lives on. */
        if (n <= 0)
                return 0;
        buf[n] = 0;
        if (sscanf(buf, "net:[%llu]", &ino) == 1)
                info->netns = (uint64_t) ino;
        return 0;
}

/* "Max core file size  0  unlimited  bytes": the soft limit, or PN_CORE_LIMIT_*. */
int64_t procfs_parse_core_limit(const char *limits) {
        const char *key = "\nMax core file size";
        const char *p = strstr(limits, key);
        unsigned long long v;
        char *end;

        if (!p)
                return PN_CORE_LIMIT_UNKNOWN;
        p += strlen(key);
        while (*p == ' ')
                p++;
        if (strncmp(p, "unlimited", 9) == 0)
                return PN_CORE_LIMIT_UNLIMITED;
        errno = 0;
        v = strtoull(p, &end, 10);
        if (errno || end == p || v > INT64_MAX)
                return PN_CORE_LIMIT_UNKNOWN;
        return (int64_t) v;
}

PnCoreDump procfs_core_dump_kind(const char *core_pattern, int64_t core_limit) {
        if (!core_pattern || core_limit == PN_CORE_LIMIT_UNKNOWN)
                return PN_CORE_DUMP_UNKNOWN;
        if (core_pattern[0] == '|')
                /* The kernel pipes whatever the limit, but for 1: its mark
                 * of a helper's own crash (fs/coredump.c). */
                return core_limit == 1 ? PN_CORE_DUMP_NONE : PN_CORE_DUMP_PIPE;
        if (!core_pattern[0] || core_pattern[0] == '\n')
                return PN_CORE_DUMP_NONE;
        /* A file needs at least one page (binfmt_elf's min_coredump). */
        return core_limit != PN_CORE_LIMIT_UNLIMITED && core_limit < (int64_t) sysconf(_SC_PAGESIZE)
                       ? PN_CORE_DUMP_NONE
                       : PN_CORE_DUMP_FILE;
}

/* What a manager needs at a predump: resident size, core limit, and what
 * the kernel will do with the core. */
static int read_crash(int dirfd, const char *pid, ProcInfo *info) {
        char path[64], buf[4096], pattern[256];
        unsigned long long size, resident;
        ssize_t n;

        snprintf(path, sizeof(path), "%s/statm", pid);
        n = read_file_at(dirfd, path, buf, sizeof(buf));
        if (n < 0)
                return gone((int) n);
        /* No resident page: the memory is gone already (a crash without a
         * core ends within microseconds), not a process of size 0. */
        info->rss = sscanf(buf, "%llu %llu", &size, &resident) == 2 && resident > 0
                            ? (int64_t) resident * sysconf(_SC_PAGESIZE)
                            : -1;
        snprintf(path, sizeof(path), "%s/limits", pid);
        n = read_file_at(dirfd, path, buf, sizeof(buf));
        if (n < 0)
                return gone((int) n);
        info->core_limit = procfs_parse_core_limit(buf);
        n = read_file_at(dirfd, "sys/kernel/core_pattern", pattern, sizeof(pattern));
        info->core_dump = procfs_core_dump_kind(n >= 0 ? pattern : NULL, info->core_limit);
        return 0;
}

static int procfs_read(void *userdata, pid_t tgid, unsigned what, ProcInfo *info) {
        Procfs *fs = userdata;
        char pid[32];
        int r = 0;

        snprintf(pid, sizeof(pid), "%d", (int) tgid);
        info->read_ns = clock_ns(CLOCK_MONOTONIC);
        if (what & PROC_READ_STAT)
                r = read_stat(fs->dirfd, pid, info);
        if (r >= 0 && (what & PROC_READ_STATUS))
                r = read_status(fs->dirfd, pid, info);
        if (r >= 0 && (what & PROC_READ_EXE))
                r = read_exe(fs->dirfd, pid, info);
        if (r >= 0 && (what & PROC_READ_CMDLINE))
                r = read_cmdline(fs->dirfd, pid, info);
        if (r >= 0 && (what & PROC_READ_CGROUP))
                r = read_cgroup(fs->dirfd, pid, info);
        /* A crash in a thread: the other threads, the main one too, are
         * being killed for the dump, the crashing one holds the memory. */
        if (info->tid > 0)
                snprintf(pid, sizeof(pid), "%d/task/%d", (int) tgid, (int) info->tid);
        if (r >= 0 && (what & PROC_READ_NETNS))
                r = read_netns(fs->dirfd, pid, info);
        if (r >= 0 && (what & PROC_READ_CRASH))
                r = read_crash(fs->dirfd, pid, info);
        if (r < 0)
                proc_info_done(info);
        return r;
}

static int procfs_list(void *userdata, int (*cb)(pid_t tgid, void *ctx), void *ctx) {
        Procfs *fs = userdata;
        int fd = openat(fs->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d;
        struct dirent *de;
        int r = 0;

        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d) {
                r = -errno;
                close(fd);
                return r;
        }
        while ((de = readdir(d))) {
                char *end;
                long pid = strtol(de->d_name, &end, 10);
                if (*end || pid <= 0)
                        continue;
                r = cb((pid_t) pid, ctx);
                if (r < 0)
                        break;
        }
        closedir(d);
        return r;
}

int procfs_reader_init(ProcReader *ret, const char *root) {
        Procfs *fs = calloc(1, sizeof(*fs));
        if (!fs)
                return -ENOMEM;
        fs->dirfd = open(root ? root : "/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fs->dirfd < 0) {
                int r = -errno;
                free(fs);
                return r;
        }
        *ret = (ProcReader){ .read = procfs_read, .list = procfs_list, .userdata = fs };
        return 0;
}

void procfs_reader_done(ProcReader *r) {
        Procfs *fs = r->userdata;
        if (fs) {
                safe_close(fs->dirfd);
                free(fs);
        }
        r->userdata = NULL;
}
