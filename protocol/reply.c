/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Formatting of non-event replies; see reply.h. */
#include "event-json.h"
#include "reply.h"

void reply_hello(JsonBuf *b, const HelloInfo *info) {
        jsonbuf_begin_object(b);
        jsonbuf_field_str(b, "type", "hello");
        jsonbuf_field_uint(b, "protocol", PN_PROTOCOL_VERSION);
        jsonbuf_field_str(b, "version", info->version);
        jsonbuf_field_str(b, "boot_id", info->boot_id);
        jsonbuf_field_str(b, "instance_id", info->instance_id);
        jsonbuf_field_uint(b, "seq", info->seq);
        jsonbuf_field_uint(b, "uid", info->uid);
        jsonbuf_field_int(b, "pid", info->pid);
        jsonbuf_field_bool(b, "sees_all", info->sees_all);
        jsonbuf_end_object(b);
        jsonbuf_append_char(b, '\n');
}

static void reply_with_id(JsonBuf *b, const char *type, uint64_t id) {
        jsonbuf_begin_object(b);
        jsonbuf_field_str(b, "type", type);
        jsonbuf_field_uint(b, "id", id);
        jsonbuf_end_object(b);
        jsonbuf_append_char(b, '\n');
}

void reply_subscribed(JsonBuf *b, uint64_t id) {
        reply_with_id(b, "subscribed", id);
}

void reply_unsubscribed(JsonBuf *b, uint64_t id) {
        reply_with_id(b, "unsubscribed", id);
}

void reply_pong(JsonBuf *b, uint64_t seq) {
        jsonbuf_begin_object(b);
        jsonbuf_field_str(b, "type", "pong");
        jsonbuf_field_uint(b, "seq", seq);
        jsonbuf_end_object(b);
        jsonbuf_append_char(b, '\n');
}

void reply_error(JsonBuf *b, const char *code, const char *message) {
        jsonbuf_begin_object(b);
        jsonbuf_field_str(b, "type", "error");
        jsonbuf_field_str(b, "code", code);
        jsonbuf_field_str(b, "message", message);
        jsonbuf_end_object(b);
        jsonbuf_append_char(b, '\n');
}

/* The head of a message shaped like an event: type, ts_ns and time (of the
 * event that caused it), no seq. */
static void begin_timed(JsonBuf *b, const char *type, uint64_t ts_ns, uint64_t time_ns) {
        char time[32];

        event_json_format_time(time, time_ns);
        jsonbuf_begin_object(b);
        jsonbuf_field_str(b, "type", type);
        jsonbuf_field_uint(b, "ts_ns", ts_ns);
        jsonbuf_field_str(b, "time", time);
}

void reply_follow(JsonBuf *b, const FollowReport *f) {
        begin_timed(b, "follow", f->ts_ns, f->time_ns);
        jsonbuf_field_uint(b, "id", f->id);
        jsonbuf_field_str(b, "reason", f->reason);
        jsonbuf_field_int(b, "main_pid", f->main_pid);
        jsonbuf_field_int(b, "previous_main_pid", f->previous_main_pid);
        jsonbuf_field_uint(b, "candidates", f->candidates);
        jsonbuf_field_uint(b, "members", f->members);
        jsonbuf_field_uint(b, "cause_seq", f->cause_seq);
        jsonbuf_end_object(b);
        jsonbuf_append_char(b, '\n');
}

void reply_signal_withheld(JsonBuf *b, int signal, pid_t pid, uint64_t cause_seq, uint64_t ts_ns,
                           uint64_t time_ns) {
        begin_timed(b, "signal-withheld", ts_ns, time_ns);
        jsonbuf_field_int(b, "signal", signal);
        jsonbuf_field_int(b, "pid", pid);
        jsonbuf_field_uint(b, "cause_seq", cause_seq);
        jsonbuf_end_object(b);
        jsonbuf_append_char(b, '\n');
}

void reply_watch_ended(JsonBuf *b, uint64_t id, pid_t pid, const char *reason, uint64_t ts_ns,
                       uint64_t time_ns) {
        begin_timed(b, "watch-ended", ts_ns, time_ns);
        jsonbuf_field_uint(b, "id", id);
        jsonbuf_field_int(b, "pid", pid);
        jsonbuf_field_str(b, "reason", reason);
        jsonbuf_end_object(b);
        jsonbuf_append_char(b, '\n');
}

static void reply_children(JsonBuf *b, const ControlResult *r) {
        jsonbuf_field_str(b, "type", "children");
        jsonbuf_begin_array_field(b, "children");
        for (size_t i = 0; i < r->children.n; i++) {
                const ControlChild *c = &r->children.list[i];
                char time[32];
                jsonbuf_begin_object(b);
                jsonbuf_field_int(b, "pid", c->pid);
                jsonbuf_field_str(b, "name", c->name);
                if (c->uid == UINT32_MAX)
                        jsonbuf_field_null(b, "uid");
                else
                        jsonbuf_field_uint(b, "uid", c->uid);
                jsonbuf_field_str(b, "state", c->stopped ? "stopped" : "running");
                jsonbuf_field_bool(b, "adopted", c->adopted);
                if (c->requester_uid == UINT32_MAX)
                        jsonbuf_field_null(b, "requester_uid");
                else
                        jsonbuf_field_uint(b, "requester_uid", c->requester_uid);
                jsonbuf_field_str(b, "command", c->command);
                event_json_format_time(time, c->started_ns);
                jsonbuf_field_str(b, "started", time);
                jsonbuf_end_object(b);
        }
        jsonbuf_end_array(b);
}

void reply_control(JsonBuf *b, const ControlResult *r) {
        if (r->error.code) {
                reply_error(b, r->error.code, r->error.message);
                return;
        }
        jsonbuf_begin_object(b);
        switch (r->op) {
        case REQUEST_WATCH:
                jsonbuf_field_str(b, "type", "watching");
                jsonbuf_field_int(b, "pid", r->watching.pid);
                jsonbuf_field_uint(b, "id", r->watching.id);
                jsonbuf_field_str(b, "comm", r->watching.comm);
                jsonbuf_field_uint(b, "uid", r->watching.uid);
                jsonbuf_field_bool(b, "stop", r->watching.stop);
                if (r->watching.traced) {
                        jsonbuf_field_uint(b, "threads", r->watching.threads);
                        /* A process stopped already is reported by a
                         * "stop" event once the tracer sees it. */
                        jsonbuf_field_bool(b, "stopped", r->watching.stopped);
                }
                break;
        case REQUEST_UNWATCH:
                jsonbuf_field_str(b, "type", "unwatched");
                jsonbuf_field_int(b, "pid", r->unwatched.pid);
                break;
        case REQUEST_RUN:
                jsonbuf_field_str(b, "type", "running");
                jsonbuf_field_int(b, "pid", r->running.pid);
                jsonbuf_field_str(b, "name", r->running.name);
                jsonbuf_field_uint(b, "uid", r->running.uid);
                jsonbuf_field_str(b, "output", r->running.output);
                break;
        case REQUEST_CHILDREN:
                reply_children(b, r);
                break;
        case REQUEST_KILL:
                jsonbuf_field_str(b, "type", "killed");
                jsonbuf_field_int(b, "signal", r->killed.signal);
                jsonbuf_begin_array_field(b, "pids");
                for (size_t i = 0; i < r->killed.n; i++)
                        jsonbuf_elem_uint(b, (uint64_t) r->killed.pids[i]);
                jsonbuf_end_array(b);
                break;
        default:
                jsonbuf_field_str(b, "type", "error");
                jsonbuf_field_str(b, "code", PN_ERR_INTERNAL);
                jsonbuf_field_str(b, "message", "no reply for this op");
                break;
        }
        jsonbuf_end_object(b);
        jsonbuf_append_char(b, '\n');
}
