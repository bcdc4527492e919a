/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The ProcReader of the real system: reads /proc/PID/{stat,status,exe,
 * cmdline,cgroup} with plain open/read (no stdio) through a held /proc
 * directory fd. This is the only place the process table's knowledge
 * touches the file system, and where the strings read (comm, exe, cmdline,
 * cgroup; the unit is made from the cgroup) are mapped to valid text by
 * pn_utf8_sanitize() (protocol/utf8.h): any bytes a process chose become
 * what both sinks can send.
 */
#pragma once

#include "proctable.h"

#define PROCFS_CMDLINE_MAX 4096
#define PROCFS_COMM_MAX 15 /* bytes: TASK_COMM_LEN - 1 */

/* Open /proc (or root, for tests) and fill *ret; release with procfs_reader_done(). */
int procfs_reader_init(ProcReader *ret, const char *root);
void procfs_reader_done(ProcReader *r);

/* Parse the contents of /proc/PID/stat into info (ppid, state, comm,
 * nthreads, start_time). Pure; exported for tests and fuzzing. */
int procfs_parse_stat(const char *buf, size_t len, ProcInfo *info);

/* The soft "Max core file size" of /proc/PID/limits, in bytes, or
 * PN_CORE_LIMIT_UNLIMITED / PN_CORE_LIMIT_UNKNOWN. Pure. */
int64_t procfs_parse_core_limit(const char *limits);

/* What the kernel does with a crash's core, given the contents of
 * /proc/sys/kernel/core_pattern (NULL: unreadable) and the process's core
 * limit: a pipe to a helper ('|'), a file, or nothing (a file pattern and
 * a limit below one page, an empty pattern, or a pipe and limit 1). Pure. */
PnCoreDump procfs_core_dump_kind(const char *core_pattern, int64_t core_limit);
