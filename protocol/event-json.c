/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Event <-> JSON. The encoder writes a fixed field order so that lines are
 * predictable for humans and for `jq`; the decoder accepts any order and
 * ignores fields it does not know (forward compatibility for clients).
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "common/macro.h"
#include "event-json.h"

void event_json_format_time(char buf[static 32], uint64_t time_ns) {
        /* Formatting the date is the expensive part; events come in bursts
         * within the same second, so cache it. Per thread, no locking. */
        static __thread time_t cached_sec = (time_t) -1;
        static __thread char cached[24];
        time_t sec = (time_t) (time_ns / 1000000000u);
        unsigned usec = (unsigned) ((time_ns % 1000000000u) / 1000u);

        if (sec != cached_sec) {
                struct tm tm;
                gmtime_r(&sec, &tm);
                strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%S", &tm);
                cached_sec = sec;
        }
        size_t n = strlen(cached);
        memcpy(buf, cached, n);
        buf[n++] = '.';
        for (int i = 5; i >= 0; i--) {
                buf[n + (size_t) i] = (char) ('0' + usec % 10);
                usec /= 10;
        }
        n += 6;
        buf[n++] = 'Z';
        buf[n] = 0;
}

static void format_process(JsonBuf *b, const PnEvent *ev) {
        jsonbuf_field_int(b, "pid", ev->pid);
        jsonbuf_field_int(b, "tgid", ev->tgid);
        jsonbuf_field_int(b, "ppid", ev->ppid);
        if (ev->uid == UINT32_MAX)
                jsonbuf_field_null(b, "uid");
        else
                jsonbuf_field_uint(b, "uid", ev->uid);
        jsonbuf_field_str(b, "comm", ev->comm);
        jsonbuf_field_str(b, "exe", ev->exe);
        jsonbuf_field_str(b, "cmdline", ev->cmdline);
        jsonbuf_field_str(b, "cgroup", ev->cgroup);
        jsonbuf_field_str(b, "unit", ev->unit);
        if (ev->netns)
                jsonbuf_field_uint(b, "netns", ev->netns);
        else
                jsonbuf_field_null(b, "netns");
}

static void format_predump(JsonBuf *b, const PnEvent *ev) {
        if (ev->predump.signal)
                jsonbuf_field_int(b, "signal", ev->predump.signal);
        else
                jsonbuf_field_null(b, "signal");
        if (ev->predump.tid)
                jsonbuf_field_int(b, "tid", ev->predump.tid);
        else
                jsonbuf_field_null(b, "tid");
        if (ev->predump.rss >= 0)
                jsonbuf_field_int(b, "rss", ev->predump.rss);
        else
                jsonbuf_field_null(b, "rss");
        if (ev->predump.core_limit >= 0)
                jsonbuf_field_int(b, "core_limit", ev->predump.core_limit);
        else if (ev->predump.core_limit == PN_CORE_LIMIT_UNLIMITED)
                jsonbuf_field_str(b, "core_limit", "unlimited");
        else
                jsonbuf_field_null(b, "core_limit");
        jsonbuf_field_str(b, "core_dump", pn_core_dump_to_string(ev->predump.core_dump));
}

static void format_sources(JsonBuf *b, uint32_t sources) {
        jsonbuf_begin_array_field(b, "sources");
        for (unsigned i = 0; i < _PN_SOURCE_COUNT; i++)
                if (sources & (1u << i))
                        jsonbuf_elem_str(b, pn_source_to_string(i));
        jsonbuf_end_array(b);
}

void event_json_format(JsonBuf *b, const PnEvent *ev) {
        char time[32];

        jsonbuf_begin_object(b);
        jsonbuf_field_str(b, "type", pn_event_type_to_string(ev->type));
        if (ev->seq)
                jsonbuf_field_uint(b, "seq", ev->seq);
        jsonbuf_field_uint(b, "ts_ns", ev->ts_ns);
        event_json_format_time(time, ev->time_ns);
        jsonbuf_field_str(b, "time", time);

        if (ev->type == PN_EVENT_OVERRUN) {
                jsonbuf_field_uint(b, "lost", ev->overrun.lost);
                jsonbuf_field_str(b, "where", pn_overrun_where_to_string(ev->overrun.where));
                if (ev->overrun.where == PN_OVERRUN_CLIENT) {
                        jsonbuf_field_uint(b, "first_seq", ev->overrun.first_seq);
                        jsonbuf_field_uint(b, "last_seq", ev->overrun.last_seq);
                }
                jsonbuf_end_object(b);
                jsonbuf_append_char(b, '\n');
                return;
        }

        format_process(b, ev);
        switch (ev->type) {
        case PN_EVENT_FORK:
                jsonbuf_field_int(b, "parent_pid", ev->fork.parent_pid);
                break;
        case PN_EVENT_UID:
                jsonbuf_field_uint(b, "ruid", ev->id.real);
                jsonbuf_field_uint(b, "euid", ev->id.effective);
                break;
        case PN_EVENT_GID:
                jsonbuf_field_uint(b, "rgid", ev->id.real);
                jsonbuf_field_uint(b, "egid", ev->id.effective);
                break;
        case PN_EVENT_SID:
                jsonbuf_field_int(b, "sid", ev->sid.sid);
                break;
        case PN_EVENT_PTRACE:
                jsonbuf_field_int(b, "tracer_pid", ev->ptrace.tracer_pid);
                jsonbuf_field_int(b, "tracer_tgid", ev->ptrace.tracer_tgid);
                break;
        case PN_EVENT_PREDUMP:
                format_predump(b, ev);
                format_sources(b, ev->sources);
                break;
        case PN_EVENT_EXIT:
                if (ev->exit.status < 0) {
                        /* Inferred during a resync: the status is not known. */
                        jsonbuf_field_null(b, "exit_code");
                        jsonbuf_field_null(b, "signal");
                        jsonbuf_field_null(b, "core_dumped");
                        jsonbuf_field_null(b, "status");
                } else {
                        jsonbuf_field_int(b, "exit_code", ev->exit.exit_code);
                        jsonbuf_field_int(b, "signal", ev->exit.signal);
                        jsonbuf_field_bool(b, "core_dumped", ev->exit.core_dumped);
                        jsonbuf_field_int(b, "status", ev->exit.status);
                }
                format_sources(b, ev->sources);
                break;
        case PN_EVENT_ADOPT:
                jsonbuf_field_int(b, "old_parent", ev->adopt.old_parent);
                jsonbuf_field_int(b, "new_parent", ev->adopt.new_parent);
                format_sources(b, ev->sources);
                break;
        case PN_EVENT_STOP:
                jsonbuf_field_int(b, "signal", ev->stop.signal);
                format_sources(b, ev->sources);
                break;
        case PN_EVENT_CONTINUE:
                format_sources(b, ev->sources);
                break;
        default:
                break;
        }
        if (ev->thread)
                jsonbuf_field_bool(b, "thread", true);
        jsonbuf_end_object(b);
        jsonbuf_append_char(b, '\n');
}

/* --- decoding (clients) --- */

uint64_t event_json_parse_time(const char *s) {
        struct tm tm = {};
        unsigned usec = 0;
        const char *p;
        time_t t;

        if (!s)
                return 0;
        p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        if (!p || *p++ != '.')
                return 0;
        for (int i = 0; i < 6; i++, p++) {
                if (*p < '0' || *p > '9')
                        return 0;
                usec = usec * 10 + (unsigned) (*p - '0');
        }
        if (strcmp(p, "Z") != 0)
                return 0;
        t = timegm(&tm);
        if (t < 0)
                return 0;
        return (uint64_t) t * 1000000000u + (uint64_t) usec * 1000u;
}

static int64_t get_int(struct json_object *o, const char *key, int64_t def) {
        struct json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return def;
        return json_object_get_int64(v);
}

static uint64_t get_uint(struct json_object *o, const char *key, uint64_t def) {
        struct json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return def;
        return json_object_get_uint64(v);
}

static const char *get_str(struct json_object *o, const char *key) {
        struct json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static uint32_t get_sources(struct json_object *o) {
        struct json_object *a;
        uint32_t r = 0;
        if (!json_object_object_get_ex(o, "sources", &a) || !json_object_is_type(a, json_type_array))
                return 0;
        for (size_t i = 0; i < json_object_array_length(a); i++)
                r |= pn_source_from_string(json_object_get_string(json_object_array_get_idx(a, i)));
        return r;
}

int event_json_parse(struct json_object *obj, PnEvent *ev) {
        memset(ev, 0, sizeof(*ev));
        ev->type = pn_event_type_from_string(get_str(obj, "type"));
        if (ev->type == _PN_EVENT_TYPE_INVALID)
                return -EBADMSG;
        ev->seq = get_uint(obj, "seq", 0);
        ev->ts_ns = get_uint(obj, "ts_ns", 0);
        ev->time_ns = event_json_parse_time(get_str(obj, "time"));
        ev->sources = get_sources(obj);

        if (ev->type == PN_EVENT_OVERRUN) {
                ev->overrun.lost = get_uint(obj, "lost", 0);
                ev->overrun.where = pn_overrun_where_from_string(get_str(obj, "where"));
                ev->overrun.first_seq = get_uint(obj, "first_seq", 0);
                ev->overrun.last_seq = get_uint(obj, "last_seq", 0);
                return 0;
        }

        ev->pid = (pid_t) get_int(obj, "pid", 0);
        ev->tgid = (pid_t) get_int(obj, "tgid", 0);
        ev->ppid = (pid_t) get_int(obj, "ppid", 0);
        ev->uid = (uint32_t) get_uint(obj, "uid", UINT32_MAX);
        ev->comm = get_str(obj, "comm");
        ev->exe = get_str(obj, "exe");
        ev->cmdline = get_str(obj, "cmdline");
        ev->cgroup = get_str(obj, "cgroup");
        ev->unit = get_str(obj, "unit");
        ev->netns = get_uint(obj, "netns", 0);
        struct json_object *t;
        ev->thread = json_object_object_get_ex(obj, "thread", &t) && json_object_get_boolean(t);

        switch (ev->type) {
        case PN_EVENT_FORK:
                ev->fork.parent_pid = (pid_t) get_int(obj, "parent_pid", 0);
                break;
        case PN_EVENT_UID:
                ev->id.real = (uint32_t) get_uint(obj, "ruid", 0);
                ev->id.effective = (uint32_t) get_uint(obj, "euid", 0);
                break;
        case PN_EVENT_GID:
                ev->id.real = (uint32_t) get_uint(obj, "rgid", 0);
                ev->id.effective = (uint32_t) get_uint(obj, "egid", 0);
                break;
        case PN_EVENT_SID:
                ev->sid.sid = (pid_t) get_int(obj, "sid", 0);
                break;
        case PN_EVENT_PTRACE:
                ev->ptrace.tracer_pid = (pid_t) get_int(obj, "tracer_pid", 0);
                ev->ptrace.tracer_tgid = (pid_t) get_int(obj, "tracer_tgid", 0);
                break;
        case PN_EVENT_PREDUMP:
                ev->predump.signal = (int) get_int(obj, "signal", 0);
                ev->predump.tid = (pid_t) get_int(obj, "tid", 0);
                ev->predump.rss = get_int(obj, "rss", -1);
                ev->predump.core_limit = get_int(obj, "core_limit", PN_CORE_LIMIT_UNKNOWN);
                if (streq_ptr(get_str(obj, "core_limit"), "unlimited"))
                        ev->predump.core_limit = PN_CORE_LIMIT_UNLIMITED;
                ev->predump.core_dump = pn_core_dump_from_string(get_str(obj, "core_dump"));
                break;
        case PN_EVENT_EXIT:
                ev->exit.status = (int) get_int(obj, "status", -1);
                ev->exit.exit_code = (int) get_int(obj, "exit_code", -1);
                ev->exit.signal = (int) get_int(obj, "signal", 0);
                ev->exit.core_dumped = json_object_object_get_ex(obj, "core_dumped", &t) &&
                                       json_object_get_boolean(t);
                break;
        case PN_EVENT_ADOPT:
                ev->adopt.old_parent = (pid_t) get_int(obj, "old_parent", 0);
                ev->adopt.new_parent = (pid_t) get_int(obj, "new_parent", 0);
                break;
        case PN_EVENT_STOP:
                ev->stop.signal = (int) get_int(obj, "signal", 0);
                break;
        default:
                break;
        }
        return 0;
}
