/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* /proc parsing: the stat line (comm may hold spaces and parentheses), and
 * the real reader against this very process. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/procfs.h"

static int parse(const char *line, ProcInfo *info) {
        memset(info, 0, sizeof(*info));
        return procfs_parse_stat(line, strlen(line), info);
}

static void test_stat_line(void **state) {
        ProcInfo i;
        (void) state;
        assert_int_equal(parse("1234 (bfdd) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 98765 "
                               "1000000 200 18446744073709551615\n", &i), 0);
        assert_string_equal(i.comm, "bfdd");
        assert_int_equal(i.state, 'S');
        assert_int_equal(i.ppid, 1);
        assert_int_equal(i.nthreads, 3);
        assert_int_equal(i.start_time, 98765);
}

static void test_hostile_comm(void **state) {
        ProcInfo i;
        (void) state;
        assert_int_equal(parse("42 (a) b) (c) Z 7 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0\n", &i), 0);
        assert_string_equal(i.comm, "a) b) (c");
        assert_int_equal(i.state, 'Z');
        assert_int_equal(i.ppid, 7);
        assert_int_equal(i.start_time, 5);
        assert_int_equal(parse("43 (x y z 15 chars) R 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 2 0 9 0\n", &i), 0);
        assert_string_equal(i.comm, "x y z 15 chars");
}

static void test_truncated(void **state) {
        ProcInfo i;
        (void) state;
        assert_int_equal(parse("99 (trunc", &i), -EINVAL);
        assert_int_equal(parse("99 (x) S 1 2 3", &i), -EINVAL);
        assert_int_equal(parse("", &i), -EINVAL);
        assert_int_equal(parse("99 x) S", &i), -EINVAL);
}

static void test_reader_on_self(void **state) {
        ProcReader r;
        ProcInfo i = { 0 };
        char comm[16] = "";
        (void) state;
        assert_int_equal(procfs_reader_init(&r, NULL), 0);
        assert_int_equal(r.read(r.userdata, getpid(), PROC_READ_ALL, &i), 0);
        assert_int_equal(i.ppid, getppid());
        uid_t ru, eu, su;
        assert_int_equal(getresuid(&ru, &eu, &su), 0);
        assert_int_equal(i.uid, ru);
        assert_int_equal(i.euid, eu);
        assert_int_equal(i.suid, su);
        assert_true(i.start_time > 0);
        assert_non_null(i.exe);
        assert_non_null(strstr(i.exe, "test-procfs"));
        assert_non_null(strstr(i.cmdline, "test-procfs"));
        assert_non_null(i.cgroup);
        FILE *f = fopen("/proc/self/comm", "r");
        assert_non_null(fgets(comm, sizeof(comm), f));
        fclose(f);
        comm[strcspn(comm, "\n")] = 0;
        assert_string_equal(i.comm, comm);
        proc_info_done(&i);
        /* A pid that does not exist reads as gone. */
        assert_int_equal(r.read(r.userdata, 0x7ffffff0, PROC_READ_STAT, &i), -ESRCH);
        procfs_reader_done(&r);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_stat_line),
                cmocka_unit_test(test_hostile_comm),
                cmocka_unit_test(test_truncated),
                cmocka_unit_test(test_reader_on_self),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
