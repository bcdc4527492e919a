/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The control plane's pure parts: the typed results' JSON (reply_control),
 * the reply slot's contract (control.h), and filters built without JSON. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "daemon/control.h"
#include "protocol/filter.h"
#include "protocol/reply.h"

/* The line r encodes to, parsed strictly; one object, one newline. */
static struct json_object *encode(const ControlResult *r) {
        JsonBuf b = JSONBUF_INIT;
        struct json_object *o;

        reply_control(&b, r);
        assert_false(jsonbuf_failed(&b));
        assert_true(b.len > 1 && b.data[b.len - 1] == '\n');
        assert_null(memchr(b.data, '\n', b.len - 1));
        o = json_tokener_parse(b.data);
        assert_non_null(o);
        jsonbuf_deinit(&b);
        return o;
}

static const char *str(struct json_object *o, const char *key) {
        struct json_object *v;
        assert_true(json_object_object_get_ex(o, key, &v));
        return json_object_get_string(v);
}

static int64_t num(struct json_object *o, const char *key) {
        struct json_object *v;
        assert_true(json_object_object_get_ex(o, key, &v));
        return json_object_get_int64(v);
}

static void test_error_wins(void **state) {
        ControlResult r = { .op = REQUEST_RUN, .error = { .code = PN_ERR_SPAWN_FAILED },
                            .running = { .pid = 5, .name = "x" } };
        (void) state;
        snprintf(r.error.message, sizeof(r.error.message), "cannot execute \"/x\": No such file");
        struct json_object *o = encode(&r);
        assert_string_equal(str(o, "type"), "error");
        assert_string_equal(str(o, "code"), "spawn-failed");
        assert_string_equal(str(o, "message"), "cannot execute \"/x\": No such file");
        assert_false(json_object_object_get_ex(o, "pid", NULL));
        json_object_put(o);
}

static void test_watching(void **state) {
        ControlResult r = { .op = REQUEST_WATCH,
                            .watching = { .pid = 42, .id = 3, .comm = NULL, .uid = 1000, .stop = false } };
        struct json_object *o, *v;
        (void) state;

        o = encode(&r);
        assert_string_equal(str(o, "type"), "watching");
        assert_int_equal(num(o, "pid"), 42);
        assert_int_equal(num(o, "id"), 3);
        assert_true(json_object_object_get_ex(o, "comm", &v) && v == NULL); /* null */
        assert_false(json_object_object_get_ex(o, "threads", NULL)); /* not traced */
        json_object_put(o);

        r.watching = (typeof(r.watching)){ .pid = 42, .id = 4, .comm = "sleep", .uid = 0, .stop = true,
                                           .traced = true, .threads = 2, .stopped = true };
        o = encode(&r);
        assert_string_equal(str(o, "comm"), "sleep");
        assert_int_equal(num(o, "threads"), 2);
        assert_true(json_object_object_get_ex(o, "stopped", &v) && json_object_get_boolean(v));
        json_object_put(o);
}

static void test_running_children_killed(void **state) {
        ControlChild list[] = {
                { .pid = 10, .name = "web", .uid = 33, .requester_uid = 0, .command = "/bin/web",
                  .started_ns = 1 },
                { .pid = 11, .name = "adopted", .uid = UINT32_MAX, .adopted = true,
                  .requester_uid = UINT32_MAX, .stopped = true },
        };
        pid_t pids[] = { 10, 11 };
        struct json_object *o, *a, *c, *v;
        (void) state;

        o = encode(&(ControlResult){ .op = REQUEST_RUN,
                                     .running = { .pid = 10, .name = "web", .uid = 33, .output = "null" } });
        assert_string_equal(str(o, "type"), "running");
        assert_string_equal(str(o, "output"), "null");
        json_object_put(o);

        o = encode(&(ControlResult){ .op = REQUEST_CHILDREN, .children = { .list = list, .n = 2 } });
        assert_string_equal(str(o, "type"), "children");
        assert_true(json_object_object_get_ex(o, "children", &a));
        assert_int_equal(json_object_array_length(a), 2);
        c = json_object_array_get_idx(a, 1);
        assert_true(json_object_object_get_ex(c, "uid", &v) && v == NULL);
        assert_true(json_object_object_get_ex(c, "requester_uid", &v) && v == NULL);
        assert_true(json_object_object_get_ex(c, "command", &v) && v == NULL);
        assert_string_equal(str(c, "state"), "stopped");
        assert_string_equal(str(json_object_array_get_idx(a, 0), "state"), "running");
        json_object_put(o);

        o = encode(&(ControlResult){ .op = REQUEST_CHILDREN });
        assert_true(json_object_object_get_ex(o, "children", &a));
        assert_int_equal(json_object_array_length(a), 0);
        json_object_put(o);

        o = encode(&(ControlResult){ .op = REQUEST_KILL, .killed = { .signal = 15, .pids = pids, .n = 2 } });
        assert_string_equal(str(o, "type"), "killed");
        assert_int_equal(num(o, "signal"), 15);
        assert_true(json_object_object_get_ex(o, "pids", &a));
        assert_int_equal(json_object_array_length(a), 2);
        json_object_put(o);

        o = encode(&(ControlResult){ .op = REQUEST_UNWATCH, .unwatched.pid = 7 });
        assert_string_equal(str(o, "type"), "unwatched");
        assert_int_equal(num(o, "pid"), 7);
        json_object_put(o);
}

/* --- the slot --- */

typedef struct Sink {
        int completed, subscribed, unsubscribed, freed;
        int subscribe_result;
        ControlResult last;
        char message[256];
} Sink;

static int sink_subscribe(void *userdata, Filter *f, uint64_t tag, uint64_t *ret_id) {
        Sink *k = userdata;
        filter_free(f);
        if (k->subscribe_result < 0)
                return k->subscribe_result;
        k->subscribed++;
        *ret_id = tag + 100;
        return 0;
}

static void sink_unsubscribe(void *userdata, uint64_t tag) {
        Sink *k = userdata;
        (void) tag;
        k->unsubscribed++;
}

static void sink_complete(void *userdata, const ControlResult *r) {
        Sink *k = userdata;
        k->completed++;
        k->last = *r;
        snprintf(k->message, sizeof(k->message), "%s", r->error.message);
}

static void sink_free(void *userdata) {
        Sink *k = userdata;
        k->freed++;
}

static const ControlSlotOps ops = {
        .subscribe = sink_subscribe,
        .unsubscribe = sink_unsubscribe,
        .complete = sink_complete,
        .free = sink_free,
};

static void test_slot_completes_once(void **state) {
        Sink k = { 0 };
        ControlSlot *s = NULL;
        Filter *f = NULL;
        uint64_t id = 0;
        (void) state;

        assert_int_equal(control_slot_new(&s, &ops, &k, true), 0);
        assert_true(control_slot_can_subscribe(s));
        assert_int_equal(filter_new_numeric(&f, FILTER_TGID, 5, false), 0);
        assert_int_equal(control_slot_subscribe(s, f, 7, &id), 0);
        assert_int_equal(id, 107);
        control_slot_fail(s, REQUEST_WATCH, PN_ERR_BUSY, "process %d is busy", 5);
        control_slot_fail(s, REQUEST_WATCH, PN_ERR_INTERNAL, "second");
        assert_int_equal(k.completed, 1);
        assert_string_equal(k.last.error.code, PN_ERR_BUSY);
        assert_string_equal(k.message, "process 5 is busy");
        /* Done: no more subscriptions. */
        f = NULL;
        assert_int_equal(filter_new_numeric(&f, FILTER_TGID, 5, false), 0);
        assert_int_equal(control_slot_subscribe(s, f, 8, &id), -ECANCELED);
        assert_int_equal(k.subscribed, 1);
        assert_int_equal(k.freed, 0);
        assert_null(control_slot_unref(s));
        assert_int_equal(k.freed, 1);
}

static void test_slot_cancelled_later(void **state) {
        Sink k = { 0 };
        ControlSlot *s = NULL, *op;
        (void) state;

        /* The op keeps a reference to answer later; the requester goes. */
        assert_int_equal(control_slot_new(&s, &ops, &k, false), 0);
        assert_false(control_slot_can_subscribe(s));
        op = control_slot_ref(s);
        control_slot_cancel(s);
        assert_null(control_slot_unref(s));
        assert_int_equal(k.freed, 0);
        assert_true(control_slot_is_cancelled(op));
        assert_true(control_slot_is_done(op));
        control_slot_unsubscribe(op, 3);
        control_slot_complete(op, &(ControlResult){ .op = REQUEST_RUN });
        assert_int_equal(k.completed, 0);
        assert_int_equal(k.unsubscribed, 0);
        assert_null(control_slot_unref(op));
        assert_int_equal(k.freed, 1);
}

static void test_slot_subscribe_refused(void **state) {
        Sink k = { .subscribe_result = -EDQUOT };
        ControlSlot *s = NULL;
        Filter *f = NULL;
        uint64_t id = 0;
        (void) state;

        assert_int_equal(control_slot_new(&s, &ops, &k, true), 0);
        assert_int_equal(filter_new_numeric(&f, FILTER_DESCENDANTS_OF, 9, false), 0);
        assert_int_equal(control_slot_subscribe(s, f, 1, &id), -EDQUOT);
        assert_false(control_slot_is_done(s));
        control_slot_unref(s);
}

/* --- filters without JSON --- */

static void test_filter_numeric(void **state) {
        Filter *f = NULL, *g = NULL;
        struct json_object *m = json_tokener_parse("{\"tgid\":42}");
        char err[128];
        PnEvent ev = { .type = PN_EVENT_EXEC, .pid = 42, .tgid = 42 };
        (void) state;

        assert_int_equal(filter_new_numeric(&f, FILTER_TGID, 42, false), 0);
        assert_int_equal(filter_new_from_json(&g, NULL, NULL, m, err, sizeof(err)), 0);
        /* The same as the JSON match {"tgid": 42}. */
        assert_int_equal(f->events, g->events);
        assert_int_equal(f->keys, g->keys);
        assert_int_equal(f->threads, g->threads);
        assert_true(filter_match(f, &ev, NULL));
        ev.tgid = ev.pid = 43;
        assert_false(filter_match(f, &ev, NULL));
        filter_free(f);
        filter_free(g);
        json_object_put(m);

        f = NULL;
        assert_int_equal(filter_new_numeric(&f, FILTER_COMM, 1, false), -EINVAL);
        assert_int_equal(filter_new_numeric(&f, FILTER_NETNS, 1, false), -EINVAL);
        assert_int_equal(filter_new_numeric(&f, _FILTER_KEY_MAX, 1, false), -EINVAL);
        assert_null(f);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_error_wins),
                cmocka_unit_test(test_watching),
                cmocka_unit_test(test_running_children_killed),
                cmocka_unit_test(test_slot_completes_once),
                cmocka_unit_test(test_slot_cancelled_later),
                cmocka_unit_test(test_slot_subscribe_refused),
                cmocka_unit_test(test_filter_numeric),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
