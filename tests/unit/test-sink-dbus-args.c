/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* D-Bus argument bounds: each bound refuses at one past it and accepts at
 * it, whatever the signature; the message is left readable from its start. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <systemd/sd-bus.h>

#include "daemon/sink-dbus-args.h"

/* A bus that is never connected to anything: enough to build messages. */
static sd_bus *bus_new(int fds[2]) {
        sd_bus *bus = NULL;
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        assert_int_equal(sd_bus_new(&bus), 0);
        assert_int_equal(sd_bus_set_fd(bus, fds[0], fds[0]), 0);
        assert_true(sd_bus_start(bus) >= 0);
        return bus;
}

static sd_bus_message *call_new(sd_bus *bus) {
        sd_bus_message *m = NULL;
        assert_int_equal(sd_bus_message_new_method_call(bus, &m, "org.procnotify.Broker1",
                                                        "/org/procnotify/Broker1",
                                                        "org.procnotify.Broker1", "Subscribe"), 0);
        return m;
}

static int check(sd_bus_message *m) {
        char error[128] = "";
        assert_int_equal(sd_bus_message_seal(m, 1, 0), 0);
        int r = sink_dbus_args_check(m, error, sizeof(error));
        assert_true(r == 0 || error[0]);
        return r;
}

/* "as" of n strings of len bytes each, then an empty a{sv}. */
static int check_events(sd_bus *bus, size_t n, size_t len) {
        sd_bus_message *m = call_new(bus);
        char *s = malloc(len + 1);
        memset(s, 'e', len);
        s[len] = 0;
        assert_true(sd_bus_message_open_container(m, 'a', "s") >= 0);
        for (size_t i = 0; i < n; i++)
                assert_true(sd_bus_message_append(m, "s", s) >= 0);
        assert_true(sd_bus_message_close_container(m) >= 0);
        assert_true(sd_bus_message_append(m, "a{sv}", 0) >= 0);
        int r = check(m);
        if (r == 0) {
                /* Rewound: the method reads it from the start. */
                const char *first = NULL;
                assert_true(sd_bus_message_enter_container(m, 'a', "s") > 0);
                if (n)
                        assert_true(sd_bus_message_read(m, "s", &first) > 0);
        }
        sd_bus_message_unref(m);
        free(s);
        return r;
}

static void test_entries(void **state) {
        int fds[2];
        sd_bus *bus = bus_new(fds);
        (void) state;
        assert_int_equal(check_events(bus, DBUS_ARGS_MAX_ENTRIES, 1), 0);
        assert_int_equal(check_events(bus, DBUS_ARGS_MAX_ENTRIES + 1, 1), DBUS_ARGS_E_ENTRIES);
        assert_int_equal(check_events(bus, 1000000, 1), DBUS_ARGS_E_ENTRIES);
        sd_bus_close_unref(bus);
        close(fds[1]);
}

static void test_bytes(void **state) {
        int fds[2];
        sd_bus *bus = bus_new(fds);
        (void) state;
        /* The array itself 8, the a{sv} 8, the string its length + 5. */
        size_t fits = DBUS_ARGS_MAX_BYTES - 8 - 8 - 5;
        assert_int_equal(check_events(bus, 1, fits), 0);
        assert_int_equal(check_events(bus, 1, fits + 1), DBUS_ARGS_E_BYTES);
        assert_int_equal(check_events(bus, 200, 1000), DBUS_ARGS_E_BYTES);
        sd_bus_close_unref(bus);
        close(fds[1]);
}

/* A match value of variants in variants, depth containers deep in all. */
static int check_depth(sd_bus *bus, unsigned variants) {
        sd_bus_message *m = call_new(bus);
        assert_true(sd_bus_message_append(m, "as", 0) >= 0);
        assert_true(sd_bus_message_open_container(m, 'a', "{sv}") >= 0);
        assert_true(sd_bus_message_open_container(m, 'e', "sv") >= 0);
        assert_true(sd_bus_message_append(m, "s", "comm") >= 0);
        for (unsigned i = 0; i < variants; i++)
                assert_true(sd_bus_message_open_container(m, 'v', i + 1 < variants ? "v" : "s") >= 0);
        assert_true(sd_bus_message_append(m, "s", "bfdd") >= 0);
        for (unsigned i = 0; i < variants + 2; i++)
                assert_true(sd_bus_message_close_container(m) >= 0);
        int r = check(m);
        sd_bus_message_unref(m);
        return r;
}

static void test_depth(void **state) {
        int fds[2];
        sd_bus *bus = bus_new(fds);
        (void) state;
        /* a{sv}: the array and the entry are 2 levels, each variant one more. */
        assert_int_equal(check_depth(bus, DBUS_ARGS_MAX_DEPTH - 2), 0);
        assert_int_equal(check_depth(bus, DBUS_ARGS_MAX_DEPTH - 1), DBUS_ARGS_E_DEPTH);
        sd_bus_close_unref(bus);
        close(fds[1]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_entries),
                cmocka_unit_test(test_bytes),
                cmocka_unit_test(test_depth),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
