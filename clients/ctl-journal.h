/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ctl-journal: procnotifyctl list's reading of the crash history that
 * procnotifyd writes to the journal (daemon/sink-journal.h), through
 * sd-journal, and the parsing of its --since values.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Called with each entry's event JSON line (len bytes, no newline), oldest
 * first; a negative return stops the walk and is returned. */
typedef int (*CtlJournalFn)(const char *line, size_t len, void *userdata);

/* The entries of procnotifyd's MESSAGE_IDs at or after since_usec
 * (CLOCK_REALTIME µs; 0 for all), from the system journal, or from the
 * journal files in directory when not NULL (systemd-journal-remote's
 * output, say). Returns 0, or a negative errno (no journal to read: -ENOENT
 * from sd-journal, permission: -EACCES). */
int ctl_journal_list(uint64_t since_usec, const char *directory, CtlJournalFn fn, void *userdata);

/* "2026-12-07", "2026-12-07 14:30[:05]" (local time), "today",
 * "yesterday", "-30s", "-15min", "-2h", "-7d" (before now_usec) to
 * CLOCK_REALTIME µs. -EINVAL if it is none of those. */
int ctl_journal_parse_since(const char *s, uint64_t now_usec, uint64_t *ret);
