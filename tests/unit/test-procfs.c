/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* /proc parsing: the stat line (comm may hold spaces and parentheses), and
 * the real reader against this very process. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
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

/* A name that is not valid UTF-8 comes out mapped (protocol/utf8.h),
 * whole: 15 bytes that all become U+FFFD fit. */
static void test_comm_mapped(void **state) {
        ProcInfo i;
        (void) state;
        assert_int_equal(parse("44 (\xff\xc0\xaf\xef\xbf\xbe\nA\x1b) S 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 2 0 9 0\n", &i), 0);
        assert_string_equal(i.comm, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\nA\x1b");
        assert_int_equal(parse("45 (\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff) S 1 0 0 0 0 0 0 "
                               "0 0 0 0 0 0 0 0 0 2 0 9 0\n", &i), 0);
        assert_int_equal(strlen(i.comm), 45);
        assert_true(pn_utf8_is_valid(i.comm, 45));
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

static void test_core_limit_and_kind(void **state) {
        const char *limits = "Limit                     Soft Limit           Hard Limit           Units     \n"
                             "Max cpu time              unlimited            unlimited            seconds   \n"
                             "Max core file size        %s            unlimited            bytes     \n";
        char buf[512];
        long page = sysconf(_SC_PAGESIZE);
        (void) state;

        snprintf(buf, sizeof(buf), limits, "0");
        assert_int_equal(procfs_parse_core_limit(buf), 0);
        snprintf(buf, sizeof(buf), limits, "1073741824");
        assert_int_equal(procfs_parse_core_limit(buf), 1073741824);
        snprintf(buf, sizeof(buf), limits, "unlimited");
        assert_int_equal(procfs_parse_core_limit(buf), PN_CORE_LIMIT_UNLIMITED);
        assert_int_equal(procfs_parse_core_limit("Max cpu time 1 1 seconds\n"), PN_CORE_LIMIT_UNKNOWN);

        /* systemd-coredump, apport: a pipe whatever the limit, but 1. */
        const char *pipe = "|/lib/systemd/systemd-coredump %P %u %g %s %t %c %h\n";
        assert_int_equal(procfs_core_dump_kind(pipe, 0), PN_CORE_DUMP_PIPE);
        assert_int_equal(procfs_core_dump_kind(pipe, PN_CORE_LIMIT_UNLIMITED), PN_CORE_DUMP_PIPE);
        assert_int_equal(procfs_core_dump_kind(pipe, 1), PN_CORE_DUMP_NONE);
        /* A file needs a limit of a page at least. */
        assert_int_equal(procfs_core_dump_kind("core\n", 0), PN_CORE_DUMP_NONE);
        assert_int_equal(procfs_core_dump_kind("core\n", page - 1), PN_CORE_DUMP_NONE);
        assert_int_equal(procfs_core_dump_kind("core\n", page), PN_CORE_DUMP_FILE);
        assert_int_equal(procfs_core_dump_kind("/var/crash/%e.%p\n", PN_CORE_LIMIT_UNLIMITED), PN_CORE_DUMP_FILE);
        assert_int_equal(procfs_core_dump_kind("\n", PN_CORE_LIMIT_UNLIMITED), PN_CORE_DUMP_NONE);
        assert_int_equal(procfs_core_dump_kind(NULL, 0), PN_CORE_DUMP_UNKNOWN);
        assert_int_equal(procfs_core_dump_kind("core", PN_CORE_LIMIT_UNKNOWN), PN_CORE_DUMP_UNKNOWN);
}

/* The crash details and the namespace of a live process: this one. */
static void test_crash_and_netns_of_self(void **state) {
        ProcReader r;
        ProcInfo i = { 0 };
        struct stat st;
        (void) state;
        assert_int_equal(procfs_reader_init(&r, NULL), 0);
        assert_int_equal(r.read(r.userdata, getpid(), PROC_READ_CRASH | PROC_READ_NETNS, &i), 0);
        assert_int_equal(stat("/proc/self/ns/net", &st), 0);
        assert_int_equal(i.netns, st.st_ino);
        assert_true(i.rss > 0);
        assert_true(i.core_limit >= 0 || i.core_limit == PN_CORE_LIMIT_UNLIMITED);
        assert_true(i.core_dump != PN_CORE_DUMP_UNKNOWN);
        proc_info_done(&i);
        procfs_reader_done(&r);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_stat_line),
                cmocka_unit_test(test_hostile_comm),
                cmocka_unit_test(test_comm_mapped),
                cmocka_unit_test(test_truncated),
                cmocka_unit_test(test_reader_on_self),
                cmocka_unit_test(test_core_limit_and_kind),
                cmocka_unit_test(test_crash_and_netns_of_self),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
