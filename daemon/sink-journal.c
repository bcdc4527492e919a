/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SinkJournal: crash-class events as structured journal entries, sent
 * without blocking; see sink-journal.h.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "common/macro.h"
#include "protocol/event-fields.h"
#include "protocol/event-json.h"
#include "sink-journal.h"

struct SinkJournal {
        Dispatcher *dispatcher;
        int watch_id;
        int fd;
        struct sockaddr_un addr;
        socklen_t addr_len;
        JsonBuf datagram;
        SinkJournalStats stats;
};

/* One FIELD=value of the native protocol: as text when the value has no
 * newline, else "FIELD\n" + its length (64 bits, little-endian) + the bytes
 * + "\n". */
static void append_field(JsonBuf *b, const char *name, size_t name_len, const char *value,
                         size_t len) {
        jsonbuf_append(b, name, name_len);
        if (!memchr(value, '\n', len)) {
                jsonbuf_append_char(b, '=');
                jsonbuf_append(b, value, len);
        } else {
                uint8_t le[8];
                uint64_t n = len;
                for (int i = 0; i < 8; i++)
                        le[i] = (uint8_t) (n >> (8 * i));
                jsonbuf_append_char(b, '\n');
                jsonbuf_append(b, (const char *) le, sizeof(le));
                jsonbuf_append(b, value, len);
        }
        jsonbuf_append_char(b, '\n');
}

static void append_str(JsonBuf *b, const char *name, const char *value) {
        append_field(b, name, strlen(name), value, strlen(value));
}

/* A name for a log line: control characters (C0, DEL, C1) as '?', so that
 * what a process calls itself never forges a line or a terminal sequence. */
static void printable(char *buf, size_t size, const char *s) {
        size_t n = 0;

        for (const unsigned char *p = (const unsigned char *) (s ? s : "?"); *p && n + 1 < size; p++) {
                if (*p < 0x20 || *p == 0x7f)
                        buf[n++] = '?';
                else if (*p == 0xc2 && (p[1] >= 0x80 && p[1] <= 0x9f)) {
                        buf[n++] = '?';
                        p++;
                } else
                        buf[n++] = (char) *p;
        }
        buf[n] = 0;
}

int sink_journal_format(JsonBuf *b, const PnEvent *ev) {
        const char *id;
        char message[512], name[96], unit[160], sig[16];
        int priority;

        switch (ev->type) {
        case PN_EVENT_PREDUMP:
                id = EVENT_JOURNAL_ID_PREDUMP;
                priority = LOG_ERR;
                break;
        case PN_EVENT_EXIT:
                if (ev->thread || ev->exit.signal <= 0)
                        return SINK_JOURNAL_E_NOT_ENTRY;
                id = EVENT_JOURNAL_ID_CRASH;
                priority = LOG_ERR;
                break;
        case PN_EVENT_ADOPT:
                id = EVENT_JOURNAL_ID_ADOPT;
                priority = LOG_INFO;
                break;
        case PN_EVENT_OVERRUN:
                id = EVENT_JOURNAL_ID_OVERRUN;
                priority = LOG_WARNING;
                break;
        default:
                return SINK_JOURNAL_E_NOT_ENTRY;
        }

        printable(name, sizeof(name), ev->comm);
        if (ev->unit) {
                char u[128];
                printable(u, sizeof(u), ev->unit);
                snprintf(unit, sizeof(unit), ", %s", u);
        } else
                unit[0] = 0;
        const char *abbrev = ev->type == PN_EVENT_EXIT ? sigabbrev_np(ev->exit.signal) : NULL;
        if (abbrev)
                snprintf(sig, sizeof(sig), "SIG%s", abbrev);
        else
                snprintf(sig, sizeof(sig), "signal %d", ev->type == PN_EVENT_EXIT ? ev->exit.signal : 0);
        switch (ev->type) {
        case PN_EVENT_PREDUMP:
                snprintf(message, sizeof(message),
                         "%s (pid %d%s) is dying of a core-class signal; a core dump may follow.", name,
                         ev->tgid, unit);
                break;
        case PN_EVENT_EXIT:
                snprintf(message, sizeof(message), "%s (pid %d%s) was killed by %s%s.", name, ev->tgid,
                         unit, sig, ev->exit.core_dumped ? ", core dumped" : "");
                break;
        case PN_EVENT_ADOPT:
                snprintf(message, sizeof(message), "%s (pid %d%s) was adopted by %d: its parent %d exited.",
                         name, ev->tgid, unit, ev->adopt.new_parent, ev->adopt.old_parent);
                break;
        default:
                snprintf(message, sizeof(message), "%llu events were lost (%s): subscribers may have missed them.",
                         (unsigned long long) ev->overrun.lost, pn_overrun_where_to_string(ev->overrun.where));
                break;
        }

        append_str(b, "MESSAGE_ID", id);
        char prio[4];
        snprintf(prio, sizeof(prio), "%d", priority);
        append_str(b, "PRIORITY", prio);
        append_str(b, "SYSLOG_IDENTIFIER", "procnotifyd");
        append_str(b, "MESSAGE", message);
        if (ev->type != PN_EVENT_OVERRUN && ev->tgid > 0) {
                char pid[16];
                snprintf(pid, sizeof(pid), "%d", ev->tgid);
                append_str(b, "OBJECT_PID", pid);
        }

        /* The event's own fields, as hooks get them, and its JSON line. */
        JsonBuf line = JSONBUF_INIT;
        char **fields = NULL;
        event_json_format(&line, ev);
        if (jsonbuf_failed(&line) || line.len == 0) {
                jsonbuf_deinit(&line);
                b->failed = true;
                return -ENOMEM;
        }
        size_t len = line.len - 1; /* without its newline */
        int r = event_fields_from_line(line.data, len, "PROCNOTIFY_", &fields);
        if (r >= 0) {
                for (char **f = fields; *f; f++) {
                        const char *eq = strchr(*f, '=');
                        append_field(b, *f, (size_t) (eq - *f), eq + 1, strlen(eq + 1));
                }
                append_field(b, "PROCNOTIFY_JSON", strlen("PROCNOTIFY_JSON"), line.data, len);
                r = jsonbuf_failed(b) ? -ENOMEM : 0;
        }
        event_fields_free(fields);
        jsonbuf_deinit(&line);
        return r;
}

static void sink_journal_on_event(const PnEvent *ev, void *userdata) {
        SinkJournal *s = userdata;
        int r;

        jsonbuf_reset(&s->datagram);
        r = sink_journal_format(&s->datagram, ev);
        if (r == SINK_JOURNAL_E_NOT_ENTRY)
                return;
        if (r < 0) {
                s->stats.failed++;
                return;
        }
        if (sendto(s->fd, s->datagram.data, s->datagram.len, MSG_DONTWAIT | MSG_NOSIGNAL,
                   (const struct sockaddr *) &s->addr, s->addr_len) >= 0)
                s->stats.entries++;
        else if (errno == ENOENT || errno == ECONNREFUSED || errno == ENOTDIR)
                s->stats.unavailable++;
        else
                s->stats.failed++;
}

int sink_journal_new(SinkJournal **ret, Dispatcher *d, const char *path) {
        SinkJournal *s;
        int r;

        if (!path || strlen(path) >= sizeof(s->addr.sun_path))
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->fd = -1;
        jsonbuf_init(&s->datagram);
        s->addr.sun_family = AF_UNIX;
        strcpy(s->addr.sun_path, path);
        s->addr_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
        s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (s->fd < 0) {
                r = -errno;
                sink_journal_free(s);
                return r;
        }
        r = dispatcher_watch_add(d, sink_journal_on_event, NULL, s);
        if (r < 0) {
                sink_journal_free(s);
                return r;
        }
        s->dispatcher = d;
        s->watch_id = r;
        *ret = s;
        return 0;
}

SinkJournal *sink_journal_free(SinkJournal *s) {
        if (!s)
                return NULL;
        if (s->dispatcher)
                dispatcher_watch_remove(s->dispatcher, s->watch_id);
        if (s->fd >= 0)
                close(s->fd);
        jsonbuf_deinit(&s->datagram);
        free(s);
        return NULL;
}

const SinkJournalStats *sink_journal_get_stats(const SinkJournal *s) {
        return &s->stats;
}

void sink_journal_visit_stats(const SinkJournal *s, const StatsVisitor *v) {
        stats_section_begin(v, "journal");
        stats_uint(v, "entries", s->stats.entries);
        stats_uint(v, "unavailable", s->stats.unavailable);
        stats_uint(v, "failed", s->stats.failed);
        stats_section_end(v);
}
