/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Caps: the capability set is a function of the configuration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <linux/capability.h>

#include "daemon/caps.h"

#define BASE (CAP_MASK(CAP_NET_ADMIN) | CAP_MASK(CAP_SYS_PTRACE) | CAP_MASK(CAP_KILL))

static void test_needed(void **state) {
        Config *c;
        char err[256];
        (void) state;
        assert_int_equal(config_new(&c), 0);
        /* Default: connector, /proc of others and watches, signals. */
        assert_true(caps_needed(c) == BASE);
        /* Never anything that reads or writes files of others, or changes
         * the capability sets, without [Run]. */
        CapMask never = CAP_MASK(CAP_DAC_OVERRIDE) | CAP_MASK(CAP_DAC_READ_SEARCH) |
                        CAP_MASK(CAP_FOWNER) | CAP_MASK(CAP_SETPCAP) | CAP_MASK(CAP_SYS_ADMIN) |
                        CAP_MASK(CAP_CHOWN) | CAP_MASK(CAP_SYS_MODULE) | CAP_MASK(CAP_SETUID) |
                        CAP_MASK(CAP_SETGID);
        assert_true((caps_needed(c) & never) == 0);
        /* Supervised children run as the user who asked, with an empty
         * bounding set: setuid, setgid, setpcap. */
        assert_int_equal(config_parse_string(c, "[Run]\nEnabled=yes\n", err, sizeof(err)), 0);
        assert_true(caps_needed(c) ==
                    (BASE | CAP_MASK(CAP_SETUID) | CAP_MASK(CAP_SETGID) | CAP_MASK(CAP_SETPCAP)));
        assert_int_equal(config_parse_string(c, "[Run]\nEnabled=no\n", err, sizeof(err)), 0);
        assert_true(caps_needed(c) == BASE);
        /* Still nothing of the files of others. */
        never &= ~(CAP_MASK(CAP_SETUID) | CAP_MASK(CAP_SETGID) | CAP_MASK(CAP_SETPCAP));
        assert_int_equal(config_parse_string(c, "[Run]\nEnabled=yes\n", err, sizeof(err)), 0);
        assert_true((caps_needed(c) & never) == 0);
        config_free(c);
}

static void test_format(void **state) {
        char buf[128];
        (void) state;
        caps_format(BASE, buf, sizeof(buf));
        assert_string_equal(buf, "cap_kill cap_net_admin cap_sys_ptrace");
        caps_format(0, buf, sizeof(buf));
        assert_string_equal(buf, "none");
        caps_format(CAP_MASK(CAP_SETGID) | CAP_MASK(CAP_SETUID), buf, sizeof(buf));
        assert_string_equal(buf, "cap_setgid cap_setuid");
        /* Truncated, still terminated. */
        caps_format(BASE, buf, 10);
        assert_true(strlen(buf) < 10);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_needed),
                cmocka_unit_test(test_format),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
