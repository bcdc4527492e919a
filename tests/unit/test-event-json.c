/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The event codec: every type round-trips; exit statuses decode right. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "protocol/event-json.h"

static struct json_object *parse(const JsonBuf *b) {
        struct json_tokener *tok = json_tokener_new();
        struct json_object *o;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        o = json_tokener_parse_ex(tok, b->data, (int) b->len - 1);
        assert_int_equal(json_tokener_get_error(tok), json_tokener_success);
        json_tokener_free(tok);
        return o;
}

static PnEvent base(PnEventType t) {
        PnEvent ev = {
                .type = t,
                .seq = 4711,
                .ts_ns = 123456789012345ull,
                .time_ns = 1795000000123456789ull,
                .sources = PN_SOURCE_CONNECTOR,
                .pid = 812,
                .tgid = 812,
                .ppid = 1,
                .uid = 1000,
                .comm = "bfdd",
                .exe = "/usr/lib/frr/bfdd",
                .cmdline = "/usr/lib/frr/bfdd -d",
                .cgroup = "/system.slice/frr.service",
                .unit = "frr.service",
                .netns = 4026532290u,
        };
        return ev;
}

/* Format ev, check the line's framing, parse it back into *back. */
static struct json_object *round_trip(const PnEvent *ev, PnEvent *back) {
        static JsonBuf b;
        jsonbuf_reset(&b);
        event_json_format(&b, ev);
        assert_false(jsonbuf_failed(&b));
        assert_true(b.len > 2);
        assert_int_equal(b.data[b.len - 1], '\n');
        assert_null(memchr(b.data, '\n', b.len - 1));
        struct json_object *o = parse(&b);
        assert_int_equal(event_json_parse(o, back), 0);
        assert_int_equal(back->type, ev->type);
        assert_int_equal(back->seq, ev->seq);
        assert_int_equal(back->ts_ns, ev->ts_ns);
        assert_int_equal(back->time_ns, ev->time_ns / 1000 * 1000); /* microseconds on the wire */
        return o;
}

static void check_process(const PnEvent *a, const PnEvent *b) {
        assert_int_equal(a->pid, b->pid);
        assert_int_equal(a->tgid, b->tgid);
        assert_int_equal(a->ppid, b->ppid);
        assert_int_equal(a->uid, b->uid);
        assert_string_equal(a->comm, b->comm);
        assert_string_equal(a->exe, b->exe);
        assert_string_equal(a->cmdline, b->cmdline);
        assert_string_equal(a->cgroup, b->cgroup);
        assert_string_equal(a->unit, b->unit);
        assert_int_equal(a->thread, b->thread);
        assert_int_equal(a->netns, b->netns);
}

static void test_every_type_round_trips(void **state) {
        (void) state;
        for (int t = 0; t < _PN_EVENT_TYPE_MAX; t++) {
                PnEvent ev = base((PnEventType) t), back;
                switch (t) {
                case PN_EVENT_FORK: ev.fork.parent_pid = 700; ev.thread = true; break;
                case PN_EVENT_UID:
                case PN_EVENT_GID: ev.id.real = 1001; ev.id.effective = 0; break;
                case PN_EVENT_SID: ev.sid.sid = 812; break;
                case PN_EVENT_PTRACE: ev.ptrace.tracer_pid = 900; ev.ptrace.tracer_tgid = 899; break;
                case PN_EVENT_PREDUMP:
                        ev.predump.signal = SIGSEGV;
                        ev.predump.tid = 813;
                        ev.predump.rss = 1073741824;
                        ev.predump.core_limit = 0;
                        ev.predump.core_dump = PN_CORE_DUMP_PIPE;
                        break;
                case PN_EVENT_EXIT: pn_event_set_exit_status(&ev, SIGSEGV | 0x80); ev.sources |= PN_SOURCE_PIDFD; break;
                case PN_EVENT_ADOPT: ev.adopt.old_parent = 700; ev.adopt.new_parent = 1; break;
                case PN_EVENT_STOP: ev.stop.signal = SIGTSTP; ev.sources = PN_SOURCE_PTRACE; break;
                case PN_EVENT_CONTINUE: ev.sources = PN_SOURCE_CHILD; break;
                case PN_EVENT_OVERRUN: ev.overrun.lost = 17; ev.overrun.where = PN_OVERRUN_KERNEL; break;
                default: break;
                }
                struct json_object *o = round_trip(&ev, &back);
                if (t == PN_EVENT_OVERRUN) {
                        assert_int_equal(back.overrun.lost, 17);
                        assert_int_equal(back.overrun.where, PN_OVERRUN_KERNEL);
                        assert_false(json_object_object_get_ex(o, "pid", NULL));
                        json_object_put(o);
                        continue;
                }
                check_process(&ev, &back);
                switch (t) {
                case PN_EVENT_FORK: assert_int_equal(back.fork.parent_pid, 700); break;
                case PN_EVENT_UID:
                case PN_EVENT_GID:
                        assert_int_equal(back.id.real, 1001);
                        assert_int_equal(back.id.effective, 0);
                        break;
                case PN_EVENT_SID: assert_int_equal(back.sid.sid, 812); break;
                case PN_EVENT_PTRACE:
                        assert_int_equal(back.ptrace.tracer_pid, 900);
                        assert_int_equal(back.ptrace.tracer_tgid, 899);
                        break;
                case PN_EVENT_PREDUMP:
                        assert_int_equal(back.predump.signal, SIGSEGV);
                        assert_int_equal(back.predump.tid, 813);
                        assert_int_equal(back.predump.rss, 1073741824);
                        assert_int_equal(back.predump.core_limit, 0);
                        assert_int_equal(back.predump.core_dump, PN_CORE_DUMP_PIPE);
                        break;
                case PN_EVENT_EXIT:
                        assert_int_equal(back.exit.signal, SIGSEGV);
                        assert_int_equal(back.exit.exit_code, 128 + SIGSEGV);
                        assert_true(back.exit.core_dumped);
                        assert_int_equal(back.exit.status, SIGSEGV | 0x80);
                        assert_int_equal(back.sources, PN_SOURCE_CONNECTOR | PN_SOURCE_PIDFD);
                        break;
                case PN_EVENT_ADOPT:
                        assert_int_equal(back.adopt.old_parent, 700);
                        assert_int_equal(back.adopt.new_parent, 1);
                        break;
                case PN_EVENT_STOP:
                        assert_int_equal(back.stop.signal, SIGTSTP);
                        assert_int_equal(back.sources, PN_SOURCE_PTRACE);
                        break;
                case PN_EVENT_CONTINUE: assert_int_equal(back.sources, PN_SOURCE_CHILD); break;
                default: break;
                }
                json_object_put(o);
        }
}

static void test_nulls_and_unknowns(void **state) {
        PnEvent ev = base(PN_EVENT_EXEC), back;
        (void) state;
        ev.comm = ev.exe = ev.cmdline = ev.cgroup = ev.unit = NULL;
        ev.uid = UINT32_MAX;
        struct json_object *o = round_trip(&ev, &back), *v;
        assert_true(json_object_object_get_ex(o, "comm", &v));
        assert_null(v); /* JSON null */
        assert_true(json_object_object_get_ex(o, "uid", &v));
        assert_null(v);
        assert_null(back.comm);
        assert_int_equal(back.uid, UINT32_MAX);
        assert_false(json_object_object_get_ex(o, "thread", NULL)); /* only when true */
        json_object_put(o);
}

/* What a predump says when /proc could not tell (the process was gone),
 * and an unlimited core. */
static void test_predump_unknowns(void **state) {
        PnEvent ev = base(PN_EVENT_PREDUMP), back;
        struct json_object *v;
        (void) state;
        ev.netns = 0;
        ev.predump.rss = -1;
        ev.predump.core_limit = PN_CORE_LIMIT_UNKNOWN;
        struct json_object *o = round_trip(&ev, &back);
        const char *const nulls[] = { "signal", "tid", "rss", "core_limit", "core_dump", "netns" };
        for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++) {
                assert_true(json_object_object_get_ex(o, nulls[i], &v));
                assert_null(v);
        }
        assert_int_equal(back.predump.rss, -1);
        assert_int_equal(back.predump.core_limit, PN_CORE_LIMIT_UNKNOWN);
        assert_int_equal(back.predump.core_dump, PN_CORE_DUMP_UNKNOWN);
        json_object_put(o);
        ev.predump.core_limit = PN_CORE_LIMIT_UNLIMITED;
        o = round_trip(&ev, &back);
        assert_true(json_object_object_get_ex(o, "core_limit", &v));
        assert_string_equal(json_object_get_string(v), "unlimited");
        assert_int_equal(back.predump.core_limit, PN_CORE_LIMIT_UNLIMITED);
        json_object_put(o);
}

static void test_inferred_exit_has_null_status(void **state) {
        PnEvent ev = base(PN_EVENT_EXIT), back;
        struct json_object *v;
        (void) state;
        ev.exit.status = -1;
        ev.sources = PN_SOURCE_PROCFS;
        struct json_object *o = round_trip(&ev, &back);
        for (const char *k = "exit_code"; k; k = strcmp(k, "exit_code") == 0 ? "signal" : strcmp(k, "signal") == 0 ? "core_dumped" : NULL) {
                assert_true(json_object_object_get_ex(o, k, &v));
                assert_null(v);
        }
        assert_int_equal(back.exit.status, -1);
        assert_int_equal(back.sources, PN_SOURCE_PROCFS);
        json_object_put(o);
}

static void test_client_overrun_fields(void **state) {
        PnEvent ev = { .type = PN_EVENT_OVERRUN, .ts_ns = 5, .time_ns = 5,
                       .overrun = { .lost = 312, .where = PN_OVERRUN_CLIENT, .first_seq = 1200, .last_seq = 1530 } };
        PnEvent back;
        (void) state;
        struct json_object *o = round_trip(&ev, &back);
        assert_false(json_object_object_get_ex(o, "seq", NULL)); /* no seq of its own */
        assert_int_equal(back.overrun.where, PN_OVERRUN_CLIENT);
        assert_int_equal(back.overrun.first_seq, 1200);
        assert_int_equal(back.overrun.last_seq, 1530);
        json_object_put(o);
}

static void test_time_format(void **state) {
        char buf[32];
        (void) state;
        event_json_format_time(buf, 0);
        assert_string_equal(buf, "1970-01-01T00:00:00.000000Z");
        event_json_format_time(buf, 1795000000123456789ull);
        assert_string_equal(buf, "2026-11-18T11:06:40.123456Z");
        event_json_format_time(buf, 1795000000999999999ull); /* same second, cached date */
        assert_string_equal(buf, "2026-11-18T11:06:40.999999Z");
        assert_int_equal(event_json_parse_time(buf), 1795000000999999000ull);
        assert_int_equal(event_json_parse_time("2026-11-18T11:06:40Z"), 0);
        assert_int_equal(event_json_parse_time("garbage"), 0);
        assert_int_equal(event_json_parse_time(NULL), 0);
}

static void test_exit_status_decoding(void **state) {
        static const struct {
                int status, code, sig;
                bool core;
        } cases[] = {
                { 0, 0, 0, false },
                { 3 << 8, 3, 0, false },
                { 255 << 8, 255, 0, false },
                { SIGKILL, 128 + SIGKILL, SIGKILL, false },
                { SIGSEGV | 0x80, 128 + SIGSEGV, SIGSEGV, true },
                { SIGABRT, 128 + SIGABRT, SIGABRT, false },
        };
        (void) state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                PnEvent ev = { .type = PN_EVENT_EXIT };
                pn_event_set_exit_status(&ev, cases[i].status);
                assert_int_equal(ev.exit.exit_code, cases[i].code);
                assert_int_equal(ev.exit.signal, cases[i].sig);
                assert_int_equal(ev.exit.core_dumped, cases[i].core);
                assert_int_equal(ev.exit.status, cases[i].status);
        }
}

static void test_type_names(void **state) {
        (void) state;
        for (int t = 0; t < _PN_EVENT_TYPE_MAX; t++)
                assert_int_equal(pn_event_type_from_string(pn_event_type_to_string(t)), t);
        assert_int_equal(pn_event_type_from_string("bogus"), _PN_EVENT_TYPE_INVALID);
        assert_int_equal(pn_event_type_from_string(NULL), _PN_EVENT_TYPE_INVALID);
        assert_null(pn_event_type_to_string(_PN_EVENT_TYPE_MAX));
        assert_null(pn_event_type_to_string(-1));
        assert_string_equal(pn_event_type_to_string(PN_EVENT_PREDUMP), "predump");
        assert_int_equal(pn_overrun_where_from_string("client"), PN_OVERRUN_CLIENT);
        assert_int_equal(pn_overrun_where_from_string("x"), _PN_OVERRUN_WHERE_MAX);
}

static void test_decode_rejects_non_events(void **state) {
        PnEvent ev;
        (void) state;
        struct json_object *o = json_tokener_parse("{\"type\":\"pong\",\"seq\":3}");
        assert_int_equal(event_json_parse(o, &ev), -EBADMSG);
        json_object_put(o);
        o = json_tokener_parse("{\"seq\":3}");
        assert_int_equal(event_json_parse(o, &ev), -EBADMSG);
        json_object_put(o);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_every_type_round_trips),
                cmocka_unit_test(test_nulls_and_unknowns),
                cmocka_unit_test(test_predump_unknowns),
                cmocka_unit_test(test_inferred_exit_has_null_status),
                cmocka_unit_test(test_client_overrun_fields),
                cmocka_unit_test(test_time_format),
                cmocka_unit_test(test_exit_status_decoding),
                cmocka_unit_test(test_type_names),
                cmocka_unit_test(test_decode_rejects_non_events),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
