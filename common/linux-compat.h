/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Kernel interfaces newer than the Debian 12 headers (linux-libc-dev 6.1,
 * glibc 2.36), declared here and nowhere else. Every definition is guarded so
 * that newer headers win; support is always detected at run time, never
 * assumed from these declarations.
 */
#pragma once

#include <signal.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/cn_proc.h>
#include <linux/types.h>

/* --- proc connector event filter (Linux 6.6, "struct proc_input") --- */
#ifndef PROC_EVENT_ALL
#define PN_PROC_EVENT_NONZERO_EXIT 0x20000000u
#define PROC_EVENT_ALL                                                                  \
        (PROC_EVENT_FORK | PROC_EVENT_EXEC | PROC_EVENT_UID | PROC_EVENT_GID |          \
         PROC_EVENT_SID | PROC_EVENT_PTRACE | PROC_EVENT_COMM | PN_PROC_EVENT_NONZERO_EXIT | \
         PROC_EVENT_COREDUMP | PROC_EVENT_EXIT)
/* Older headers name the event enum inside struct proc_event: use its width. */
struct proc_input {
        enum proc_cn_mcast_op mcast_op;
        __u32 event_type;
};
#endif

/* --- sockets --- */
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5 */
#endif
#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif

/* --- pidfd --- */
#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif
#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL /* Linux 6.9 */
#endif

#ifndef PIDFD_GET_INFO
#define PIDFD_INFO_PID (1UL << 0)
#define PIDFD_INFO_CREDS (1UL << 1)
#define PIDFD_INFO_CGROUPID (1UL << 2)
#define PIDFD_INFO_EXIT (1UL << 3)      /* Linux 6.15 */
#define PIDFD_INFO_COREDUMP (1UL << 4)  /* Linux 6.16 */
#define PIDFD_COREDUMPED (1U << 0)
struct pidfd_info {
        __u64 mask;
        __u64 cgroupid;
        __u32 pid;
        __u32 tgid;
        __u32 ppid;
        __u32 ruid;
        __u32 rgid;
        __u32 euid;
        __u32 egid;
        __u32 suid;
        __u32 sgid;
        __u32 fsuid;
        __u32 fsgid;
        __s32 exit_code;
        __u32 coredump_mask;
        __u32 __spare1;
};
#define PIDFS_IOCTL_MAGIC 0xFF
#define PIDFD_GET_INFO _IOWR(PIDFS_IOCTL_MAGIC, 11, struct pidfd_info) /* Linux 6.13 */
#endif

static inline int pn_pidfd_open(pid_t pid, unsigned int flags) {
        return (int) syscall(SYS_pidfd_open, pid, flags);
}

static inline int pn_pidfd_send_signal(int pidfd, int sig, siginfo_t *info, unsigned int flags) {
        return (int) syscall(SYS_pidfd_send_signal, pidfd, sig, info, flags);
}

/* --- clone3 (Linux 5.3; glibc 2.36 has no wrapper) --- */
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
/* struct clone_args of <linux/sched.h>, first version (CLONE_ARGS_SIZE_VER0,
 * 64 bytes), under its own name: <linux/sched.h> and glibc's <sched.h> do not
 * mix well. */
struct pn_clone_args {
        __aligned_u64 flags;
        __aligned_u64 pidfd;
        __aligned_u64 child_tid;
        __aligned_u64 parent_tid;
        __aligned_u64 exit_signal;
        __aligned_u64 stack;
        __aligned_u64 stack_size;
        __aligned_u64 tls;
};

/* Like fork() (no CLONE_VM, no stack): returns 0 in the child, the pid in the
 * parent, -1 with errno (ENOSYS before Linux 5.3, or a seccomp filter). */
static inline pid_t pn_clone3(struct pn_clone_args *args) {
        return (pid_t) syscall(SYS_clone3, args, sizeof(*args));
}

/* --- prctl --- */
#ifndef PR_SET_CHILD_SUBREAPER
#define PR_SET_CHILD_SUBREAPER 36
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
/* PR_SET_PREDUMP_SIG and PR_SET_ADOPTSIG exist only in patched kernels, and
 * their proposed numbers mean other things upstream: they are never
 * declared here, only taken from the configuration ([Run] *Prctl=). */
