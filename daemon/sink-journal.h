/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SinkJournal: crash-class events as structured journal entries, so that
 * `journalctl MESSAGE_ID=…` is the host's crash history, and whatever ships
 * the journal off the host (systemd-journal-upload to systemd-journal-remote,
 * or any journal reader) ships it too. Entries: predump, exit by a signal,
 * adopt, and the kernel's overruns (the events other sinks may have missed).
 *
 * Each entry is one datagram of journald's native protocol, sent without
 * blocking to its socket: when journald is absent, or behind, the entry is
 * counted and dropped, and the loop never waits for it. The formatting is
 * pure (sink_journal_format) and unit-tested.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "dispatcher.h"
#include "protocol/event-fields.h"
#include "protocol/jsonbuf.h"
#include "stats.h"

#define SINK_JOURNAL_SOCKET "/run/systemd/journal/socket"


typedef struct SinkJournal SinkJournal;

typedef struct SinkJournalStats {
        uint64_t entries;     /* sent to journald */
        uint64_t unavailable; /* not sent: no journald listening */
        uint64_t failed;      /* not sent: journald behind (EAGAIN), or another error */
} SinkJournalStats;

/* Register with the dispatcher; entries go to the datagram socket at path
 * (SINK_JOURNAL_SOCKET outside tests). Returns 0 or a negative errno. */
int sink_journal_new(SinkJournal **ret, Dispatcher *d, const char *path);
SinkJournal *sink_journal_free(SinkJournal *s);

const SinkJournalStats *sink_journal_get_stats(const SinkJournal *s);
/* Section "journal" of the status. */
void sink_journal_visit_stats(const SinkJournal *s, const StatsVisitor *v);

/* sink_journal_format(): ev is not one of the entries. */
#define SINK_JOURNAL_E_NOT_ENTRY 1

/* If ev is one of the entries, append its datagram to b and return 0 (or
 * -ENOMEM: b failed); otherwise SINK_JOURNAL_E_NOT_ENTRY. The datagram:
 * MESSAGE_ID=, PRIORITY=, SYSLOG_IDENTIFIER=,
 * MESSAGE= (a sentence, control characters as '?'), OBJECT_PID= (journald
 * adds the process's OBJECT_* fields while it exists, so that
 * `journalctl -u UNIT` shows it), PROCNOTIFY_<FIELD>= for each member of
 * the event's JSON line, named as in hook environments, and PROCNOTIFY_JSON=
 * (the line itself). Values with a newline use the protocol's binary form. */
int sink_journal_format(JsonBuf *b, const PnEvent *ev);
