/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The unit of a cgroup path (daemon/cgroup-unit.c).
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/proctable.h"

static void test_unit_from_cgroup(void **state) {
        char buf[256];
        (void) state;
        assert_string_equal(proctable_unit_from_cgroup("/system.slice/foo.service", buf, sizeof(buf)), "foo.service");
        assert_string_equal(proctable_unit_from_cgroup("/system.slice/foo.service/sub", buf, sizeof(buf)), "foo.service");
        assert_string_equal(proctable_unit_from_cgroup(
                                    "/user.slice/user-1000.slice/user@1000.service/app.slice/x.service",
                                    buf, sizeof(buf)), "user@1000.service");
        assert_string_equal(proctable_unit_from_cgroup("/init.scope", buf, sizeof(buf)), "init.scope");
        assert_null(proctable_unit_from_cgroup("/", buf, sizeof(buf)));
        assert_null(proctable_unit_from_cgroup("/system.slice", buf, sizeof(buf)));
        assert_null(proctable_unit_from_cgroup("/docker/abc", buf, sizeof(buf)));
        assert_null(proctable_unit_from_cgroup(NULL, buf, sizeof(buf)));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_unit_from_cgroup),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
