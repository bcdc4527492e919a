/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * peer-pidfd against real processes of this test: the start-time check of
 * the fallback that opens a subscriber's pidfd from its pid (the path a
 * kernel without SO_PEERPIDFD takes, and D-Bus always), and the socket path.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/peer-pidfd.h"

static pid_t start_child(void) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                pause();
                _exit(0);
        }
        return pid;
}

static void reap(pid_t pid) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
}

static void test_pid_checked_against_start_time(void **state) {
        (void) state;
        /* Learnt of "the peer" 50 ms (several clock ticks) before a process
         * with its pid started: that process holds a reused pid. */
        uint64_t before = peer_boottime_now();
        struct timespec ts = { .tv_nsec = 50 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        pid_t pid = start_child();
        assert_int_equal(peer_pidfd_open_pid(pid, before), -ESRCH);
        /* Learnt of it after it started: the right process. */
        int fd = peer_pidfd_open_pid(pid, peer_boottime_now());
        assert_true(fd >= 0);
        close(fd);
        reap(pid);
        /* Gone: nothing to signal. */
        assert_int_equal(peer_pidfd_open_pid(pid, peer_boottime_now()), -ESRCH);
        assert_int_equal(peer_pidfd_open_pid(0, peer_boottime_now()), -ESRCH);
}

static void test_socket_and_signals(void **state) {
        int sp[2];
        uint64_t sent = 0, failed = 0, withheld = 0;
        PeerSignalCounts n = { &sent, &failed, &withheld };
        PeerSignals ps = PEER_SIGNALS_INIT;
        sigset_t set;
        siginfo_t si;
        (void) state;

        /* The peer of a socketpair is this process. */
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
        int fd = peer_pidfd_open_socket(sp[0], getpid(), peer_boottime_now());
        assert_true(fd >= 0);
        /* Not who connected: refused, and the fd closed. */
        assert_int_equal(peer_signals_set(&ps, dup(fd), getuid() + 1), -EPERM);
        assert_int_equal(ps.pidfd, -1);
        assert_int_equal(peer_signals_set(&ps, fd, getuid()), 0);
        assert_int_equal(ps.ruid, getuid());
        assert_int_equal(ps.euid, geteuid());
        sigemptyset(&set);
        sigaddset(&set, SIGUSR1);
        sigaddset(&set, SIGUSR2);
        sigprocmask(SIG_BLOCK, &set, NULL);
        assert_int_equal(peer_signals_send(&ps, (1u << (SIGUSR1 - 1)) | (1u << (SIGUSR2 - 1)), 4242, &n), 0);
        assert_int_equal(sent, 2);
        assert_int_equal(failed, 0);
        for (int i = 0; i < 2; i++) {
                assert_true(sigwaitinfo(&set, &si) > 0);
                assert_int_equal(si.si_code, SI_QUEUE);
                assert_int_equal(si.si_pid, getpid());
                assert_int_equal(si.si_value.sival_int, 4242);
        }
        /* A subscriber that was another user (this test runs as root: its
         * process is no longer that user's): withheld, told once. */
        if (getuid() == 0) {
                ps.ruid = ps.euid = 4242;
                assert_int_equal(peer_signals_send(&ps, 1u << (SIGUSR2 - 1), 1, &n), SIGUSR2);
                assert_int_equal(peer_signals_send(&ps, 1u << (SIGUSR2 - 1), 1, &n), 0);
                assert_int_equal(withheld, 2);
                assert_int_equal(sent, 2);
                ps.ruid = 0;
                assert_int_equal(peer_signals_send(&ps, 1u << (SIGUSR1 - 1), 1, &n), 0);
                assert_true(sigwaitinfo(&set, &si) == SIGUSR1);
                ps.ruid = 4242; /* told again after a signal got through */
                assert_int_equal(peer_signals_send(&ps, 1u << (SIGUSR2 - 1), 1, &n), SIGUSR2);
        }
        peer_signals_done(&ps);
        assert_int_equal(peer_signals_send(&ps, 1u << (SIGUSR1 - 1), 1, &n), 0);
        assert_int_equal(failed, 1);
        close(sp[0]);
        close(sp[1]);
}

static void test_kill_rule(void **state) {
        (void) state;
        /* kernel/signal.c kill_ok_by_cred(): sender real or effective uid
         * against target real or saved uid; root may always. */
        assert_true(peer_may_signal(1000, 1000, 1000, 1000));
        assert_true(peer_may_signal(1000, 1000, 1000, 0));  /* set-uid root, ruid kept */
        assert_true(peer_may_signal(1000, 1000, 0, 1000));  /* saved uid still the user's */
        assert_false(peer_may_signal(1000, 1000, 0, 0));    /* became root for good */
        assert_true(peer_may_signal(1000, 2000, 2000, 0));
        assert_false(peer_may_signal(1000, 2000, 3000, 3000));
        assert_true(peer_may_signal(1000, 0, 3000, 3000));
}

static void test_read_uids(void **state) {
        uint32_t r, e, s;
        (void) state;
        int fd = peer_pidfd_open_pid(getpid(), peer_boottime_now());
        assert_true(fd >= 0);
        assert_int_equal(peer_pidfd_read_uids(fd, &r, &e, &s), 0);
        assert_int_equal(r, getuid());
        assert_int_equal(e, geteuid());
        close(fd);
        pid_t pid = start_child();
        fd = peer_pidfd_open_pid(pid, peer_boottime_now());
        assert_true(fd >= 0);
        reap(pid);
        assert_int_equal(peer_pidfd_read_uids(fd, &r, &e, &s), -ESRCH);
        close(fd);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pid_checked_against_start_time),
                cmocka_unit_test(test_socket_and_signals),
                cmocka_unit_test(test_kill_rule),
                cmocka_unit_test(test_read_uids),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
