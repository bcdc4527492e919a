/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Connector message parsing, with datagrams laid out as the kernel sends them. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <linux/connector.h>
#include <linux/netlink.h>

#include "common/linux-compat.h"
#include "daemon/cnproc-msg.h"

typedef struct Dgram {
        size_t len;
        char buf[256] __attribute__((aligned(8)));
} Dgram;

/* netlink header + cn_msg + proc_event, as in drivers/connector/cn_proc.c */
static Dgram *make(uint32_t what, uint32_t seq, uint32_t cpu, const void *data, size_t n) {
        static Dgram d;
        struct nlmsghdr *nh = (struct nlmsghdr *) d.buf;
        struct cn_msg *cn = NLMSG_DATA(nh);
        struct proc_event ev;

        memset(&d, 0, sizeof(d));
        memset(&ev, 0, sizeof(ev));
        ev.what = what;
        ev.cpu = cpu;
        ev.timestamp_ns = 987654321;
        memcpy(&ev.event_data, data, n);
        cn->id.idx = CN_IDX_PROC;
        cn->id.val = CN_VAL_PROC;
        cn->seq = seq;
        cn->len = sizeof(ev);
        memcpy(cn->data, &ev, sizeof(ev));
        nh->nlmsg_len = NLMSG_LENGTH(sizeof(*cn) + sizeof(ev));
        nh->nlmsg_type = NLMSG_DONE;
        d.len = nh->nlmsg_len;
        return &d;
}

static void test_fork(void **state) {
        struct fork_proc_event f = { .parent_pid = 10, .parent_tgid = 10, .child_pid = 11, .child_tgid = 11 };
        CnprocMsg m;
        (void) state;
        Dgram *d = make(PROC_EVENT_FORK, 42, 1, &f, sizeof(f));
        assert_int_equal(cnproc_msg_parse(d->buf, d->len, &m), CNPROC_MSG_EVENT);
        assert_int_equal(m.seq, 42);
        assert_int_equal(m.cpu, 1);
        assert_int_equal(m.ev.type, PN_EVENT_FORK);
        assert_int_equal(m.ev.pid, 11);
        assert_int_equal(m.ev.tgid, 11);
        assert_int_equal(m.ev.ppid, 10);
        assert_int_equal(m.ev.fork.parent_pid, 10);
        assert_int_equal(m.ev.ts_ns, 987654321);
        assert_false(m.ev.thread);
        f.child_pid = 12; /* a thread of 11 */
        d = make(PROC_EVENT_FORK, 43, 1, &f, sizeof(f));
        assert_int_equal(cnproc_msg_parse(d->buf, d->len, &m), CNPROC_MSG_EVENT);
        assert_true(m.ev.thread);
}

static void test_exec_ids_sid_ptrace(void **state) {
        CnprocMsg m;
        (void) state;
        struct exec_proc_event x = { .process_pid = 20, .process_tgid = 20 };
        Dgram *d = make(PROC_EVENT_EXEC, 1, 0, &x, sizeof(x));
        assert_int_equal(cnproc_msg_parse(d->buf, d->len, &m), CNPROC_MSG_EVENT);
        assert_int_equal(m.ev.type, PN_EVENT_EXEC);
        assert_int_equal(m.ev.tgid, 20);

        struct id_proc_event id = { .process_pid = 21, .process_tgid = 20, .r.ruid = 1000, .e.euid = 0 };
        d = make(PROC_EVENT_UID, 2, 0, &id, sizeof(id));
        assert_int_equal(cnproc_msg_parse(d->buf, d->len, &m), CNPROC_MSG_EVENT);
        assert_int_equal(m.ev.type, PN_EVENT_UID);
        assert_int_equal(m.ev.id.real, 1000);
        assert_int_equal(m.ev.id.effective, 0);
        assert_true(m.ev.thread);
        d = make(PROC_EVENT_GID, 3, 0, &id, sizeof(id));
        assert_int_equal(cnproc_msg_parse(d->buf, d->len, &m), CNPROC_MSG_EVENT);
        assert_int_equal(m.ev.type, PN_EVENT_GID);

        struct sid_proc_event sid = { .process_pid = 20, .process_tgid = 20 };
        d = make(PROC_EVENT_SID, 4, 0, &sid, sizeof(sid));
        assert_int_equal(cnproc_msg_parse(d->buf, d->len, &m), CNPROC_MSG_EVENT);
        assert_int_equal(m.ev.type, PN_EVENT_SID);
        assert_int_equal(m.ev.sid.sid, 20);

        struct ptrace_proc_event pt = { .process_pid = 20, .process_tgid = 20, .tracer_pid = 30, .tracer_tgid = 30 };
        d = make(PROC_EVENT_PTRACE, 5, 0, &pt, sizeof(pt));
        assert_int_equal(cnproc_msg_parse(d->buf, d->len, &m), CNPROC_MSG_EVENT);
        assert_int_equal(m.ev.type, PN_EVENT_PTRACE);
        assert_int_equal(m.ev.ptrace.tracer_tgid, 30);
}

static void test_comm_always_terminated(void **state) {
        struct comm_proc_event c = { .process_pid = 20, .process_tgid = 20 };
        CnprocMsg m;
        (void) state;
        memset(c.comm, 'A', sizeof(c.comm)); /* no NUL in the kernel's 16 bytes */
        Dgram *d = make(PROC_EVENT_COMM, 1, 0, &c, sizeof(c));
        assert_int_equal(cnproc_msg_parse(d->buf, d->len, &m), CNPROC_MSG_EVENT);
        assert_int_equal(strlen(m.ev.comm), 15);
        assert_ptr_equal(m.ev.comm, m.comm);
}

/* The kernel's comm is any bytes: mapped to valid text (protocol/utf8.h). */
static void test_comm_mapped(void **state) {
        struct comm_proc_event c = { .process_pid = 21, .process_tgid = 21 };
        CnprocMsg m;
        (void) state;
        memcpy(c.comm, "b\xff\xed\xa0\x80\xef\xbf\xbf\n", 10);
        Dgram *d = make(PROC_EVENT_COMM, 1, 0, &c, sizeof(c));
        assert_int_equal(cnproc_msg_parse(d->buf, d->len, &m), CNPROC_MSG_EVENT);
        assert_string_equal(m.ev.comm, "b" PN_UTF8_REPLACEMENT PN_UTF8_REPLACEMENT PN_UTF8_REPLACEMENT
                                       PN_UTF8_REPLACEMENT PN_UTF8_REPLACEMENT "\n");
        memset(c.comm, 0xff, sizeof(c.comm));
        d = make(PROC_EVENT_COMM, 1, 0, &c, sizeof(c));
        assert_int_equal(cnproc_msg_parse(d->buf, d->len, &m), CNPROC_MSG_EVENT);
        assert_int_equal(strlen(m.ev.comm), 45);
}

static void test_coredump_and_exit(void **state) {
        CnprocMsg m;
        (void) state;
        struct coredump_proc_event c = { .process_pid = 21, .process_tgid = 20, .parent_pid = 10, .parent_tgid = 10 };
        Dgram *d = make(PROC_EVENT_COREDUMP, 1, 0, &c, sizeof(c));
        assert_int_equal(cnproc_msg_parse(d->buf, d->len, &m), CNPROC_MSG_EVENT);
        assert_int_equal(m.ev.type, PN_EVENT_PREDUMP);
        /* A process-level event: pid is the process, tid the thread that
         * took the signal (issue 14: a non-main thread's id was the pid). */
        assert_int_equal(m.ev.pid, 20);
        assert_int_equal(m.ev.tgid, 20);
        assert_int_equal(m.ev.predump.tid, 21);
        assert_false(m.ev.thread);
        assert_int_equal(m.ev.ppid, 10);
        assert_int_equal(m.ev.predump.rss, -1);
        assert_int_equal(m.ev.predump.core_limit, PN_CORE_LIMIT_UNKNOWN);

        /* exit_code is a raw wait status; exit_signal is SIGCHLD, not the killer. */
        struct exit_proc_event x = { .process_pid = 20, .process_tgid = 20, .exit_code = 11 | 0x80,
                                     .exit_signal = 17, .parent_pid = 10, .parent_tgid = 10 };
        d = make(PROC_EVENT_EXIT, 2, 0, &x, sizeof(x));
        assert_int_equal(cnproc_msg_parse(d->buf, d->len, &m), CNPROC_MSG_EVENT);
        assert_int_equal(m.ev.type, PN_EVENT_EXIT);
        assert_int_equal(m.ev.exit.status, 11 | 0x80);
        assert_int_equal(m.ev.ppid, 10);
        assert_false(m.ev.thread);
}

static void test_ack_and_other(void **state) {
        uint32_t err = 0;
        CnprocMsg m;
        (void) state;
        Dgram *d = make(PROC_EVENT_NONE, 0, 1, &err, sizeof(err));
        ((struct cn_msg *) NLMSG_DATA((struct nlmsghdr *) d->buf))->ack = 43;
        assert_int_equal(cnproc_msg_parse(d->buf, d->len, &m), CNPROC_MSG_ACK);
        assert_int_equal(m.ack, 43);
        assert_int_equal(m.ack_err, 0);
        /* Another connector's message is not for us. */
        ((struct cn_msg *) NLMSG_DATA((struct nlmsghdr *) d->buf))->id.idx = 7;
        assert_int_equal(cnproc_msg_parse(d->buf, d->len, &m), CNPROC_MSG_OTHER);
        /* An unknown event type is skipped, not an error. */
        struct exec_proc_event x = { 1, 1 };
        d = make(0x400, 0, 0, &x, sizeof(x));
        assert_int_equal(cnproc_msg_parse(d->buf, d->len, &m), CNPROC_MSG_OTHER);
}

static void test_malformed(void **state) {
        struct exec_proc_event x = { .process_pid = 20, .process_tgid = 20 };
        CnprocMsg m;
        (void) state;
        Dgram *d = make(PROC_EVENT_EXEC, 1, 0, &x, sizeof(x));
        struct nlmsghdr *nh = (struct nlmsghdr *) d->buf;
        struct cn_msg *cn = NLMSG_DATA(nh);
        assert_int_equal(cnproc_msg_parse(d->buf, 10, &m), -EBADMSG);         /* short header */
        assert_int_equal(cnproc_msg_parse(d->buf, d->len - 1, &m), -EBADMSG); /* nlmsg_len > len */
        cn->len = 200;                                                         /* cn_msg.len lies */
        assert_int_equal(cnproc_msg_parse(d->buf, d->len, &m), -EBADMSG);
        cn->len = 4;                                                           /* too short */
        assert_int_equal(cnproc_msg_parse(d->buf, d->len, &m), -EBADMSG);
        d = make(PROC_EVENT_EXEC, 1, 0, &(struct exec_proc_event){ 0, 0 }, 8); /* pid 0 */
        assert_int_equal(cnproc_msg_parse(d->buf, d->len, &m), -EBADMSG);
}

static void test_build_mcast(void **state) {
        char buf[64];
        (void) state;
        size_t n = cnproc_msg_build_mcast(buf, sizeof(buf), PROC_CN_MCAST_LISTEN, PROC_EVENT_ALL, 77);
        struct cn_msg *cn = (struct cn_msg *) buf;
        assert_int_equal(n, sizeof(*cn) + 8);
        assert_int_equal(cn->len, 8);
        assert_int_equal(cn->ack, 77);
        struct proc_input in;
        memcpy(&in, cn->data, sizeof(in));
        assert_int_equal(in.mcast_op, PROC_CN_MCAST_LISTEN);
        assert_int_equal(in.event_type, PROC_EVENT_ALL);
        n = cnproc_msg_build_mcast(buf, sizeof(buf), PROC_CN_MCAST_LISTEN, 0, 0);
        assert_int_equal(n, sizeof(*cn) + 4);
        assert_int_equal(cn->len, 4);
        assert_int_equal(cnproc_msg_build_mcast(buf, 10, PROC_CN_MCAST_LISTEN, 0, 0), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fork),
                cmocka_unit_test(test_exec_ids_sid_ptrace),
                cmocka_unit_test(test_comm_always_terminated),
                cmocka_unit_test(test_comm_mapped),
                cmocka_unit_test(test_coredump_and_exit),
                cmocka_unit_test(test_ack_and_other),
                cmocka_unit_test(test_malformed),
                cmocka_unit_test(test_build_mcast),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
