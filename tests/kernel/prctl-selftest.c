/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Selftest of the patched kernel's PR_SET_PREDUMP_SIG and PR_SET_ADOPTSIG
 * (tests/kernel/predump-adoptsig.patch), run as root in the VM:
 *
 *   - the parent gets the predump signal while the child's core is being
 *     written (CoreDumping: 1, not yet exited), with si_code SI_USER,
 *     si_pid the child, si_uid its uid; the child then dies with a core;
 *   - PR_GET_PREDUMP_SIG returns the setting; execve clears it; a fork
 *     child starts with 0; a bad signal is EINVAL;
 *   - a subreaper with PR_SET_ADOPTSIG gets the signal when an orphan is
 *     re-parented to it: si_pid the orphan, si_status (through signalfd)
 *     the old parent, si_code SI_USER; execve and setsid clear it; a
 *     kill() of the same signal has si_status 0.
 *
 * Prints "ok"/"not ok" per check, then "N passed, N failed"; exit status
 * 1 if anything failed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PR_SET_PREDUMP_SIG 0x504e0001
#define PR_GET_PREDUMP_SIG 0x504e0002
#define PR_SET_ADOPTSIG 0x504e0003
#define PR_GET_ADOPTSIG 0x504e0004

static int passed, failed;

static void check(int ok, const char *what, const char *fmt, ...) {
        va_list ap;
        if (ok) {
                passed++;
                printf("ok - %s\n", what);
                return;
        }
        failed++;
        printf("not ok - %s: ", what);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
}

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* One signal from the signalfd within timeout_ms; 0 if none. */
static int read_sig(int sfd, struct signalfd_siginfo *si, int timeout_ms) {
        struct pollfd p = { .fd = sfd, .events = POLLIN };
        if (poll(&p, 1, timeout_ms) <= 0)
                return 0;
        return read(sfd, si, sizeof(*si)) == sizeof(*si);
}

static int core_dumping(pid_t pid) {
        char path[64], buf[4096];
        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
                return -1;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return -1;
        buf[n] = 0;
        const char *p = strstr(buf, "\nCoreDumping:");
        return p ? atoi(p + 13) : -1;
}

static int get(int option) {
        int v = -1;
        if (prctl(option, &v, 0, 0, 0) < 0)
                return -errno - 1000;
        return v;
}

static void test_predump(void) {
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGUSR1);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        int sfd = signalfd(-1, &mask, SFD_CLOEXEC);

        check(prctl(PR_SET_PREDUMP_SIG, 65, 0, 0, 0) < 0 && errno == EINVAL, "predump: bad signal is EINVAL",
              "errno %d", errno);
        if (prctl(PR_SET_PREDUMP_SIG, SIGUSR1, 0, 0, 0) < 0) {
                check(0, "predump: set", "errno %d (not a patched kernel?)", errno);
                return;
        }
        check(get(PR_GET_PREDUMP_SIG) == SIGUSR1, "predump: get", "%d", get(PR_GET_PREDUMP_SIG));

        pid_t pid = fork();
        if (pid == 0) {
                /* A large core (256 MB of touched memory) into /tmp. */
                struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
                setrlimit(RLIMIT_CORE, &rl);
                if (chdir("/tmp") < 0)
                        _exit(90);
                size_t len = 256u << 20;
                char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (m == MAP_FAILED)
                        _exit(91);
                for (size_t i = 0; i < len; i += 4096)
                        m[i] = (char) (i >> 12 | 1);
                signal(SIGABRT, SIG_DFL);
                abort();
        }
        uint64_t t0 = now_ms();
        struct signalfd_siginfo si;
        int got = read_sig(sfd, &si, 120000);
        uint64_t t1 = now_ms();
        int dumping = got ? core_dumping(pid) : -1;
        siginfo_t w = { 0 };
        int waited = waitid(P_PID, (id_t) pid, &w, WEXITED | WNOHANG | WNOWAIT);
        check(got, "predump: signal received", "none in 120 s");
        if (got) {
                check(si.ssi_signo == SIGUSR1 && si.ssi_code == SI_USER && (pid_t) si.ssi_pid == pid &&
                              si.ssi_uid == getuid(),
                      "predump: si fields (SIGUSR1, SI_USER, si_pid the child, si_uid its uid)",
                      "signo %u code %d pid %u (child %d) uid %u", si.ssi_signo, si.ssi_code, si.ssi_pid,
                      (int) pid, si.ssi_uid);
                check(dumping == 1 && waited == 0 && w.si_pid == 0,
                      "predump: before the core is complete (CoreDumping: 1, not exited)",
                      "CoreDumping %d, waitid %d si_pid %d", dumping, waited, (int) w.si_pid);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        uint64_t t2 = now_ms();
        check(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT && WCOREDUMP(status),
              "predump: the child then dies of SIGABRT with a core", "status 0x%x", status);
        printf("# predump signal after %llu ms; the exit %llu ms later\n", (unsigned long long) (t1 - t0),
               (unsigned long long) (t2 - t1));
        char core[64];
        snprintf(core, sizeof(core), "/tmp/core.%d", (int) pid);
        unlink(core);
        unlink("/tmp/core");
        check(!read_sig(sfd, &si, 100), "predump: exactly one signal", "a second one from %u", si.ssi_pid);

        /* A fork child starts with 0; execve clears it. */
        pid = fork();
        if (pid == 0)
                _exit(get(PR_GET_PREDUMP_SIG) == 0 ? 0 : 1);
        waitpid(pid, &status, 0);
        check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "predump: not inherited by a fork child",
              "status 0x%x", status);
        pid = fork();
        if (pid == 0) {
                execl("/proc/self/exe", "prctl-selftest", "--get-predump", (char *) NULL);
                _exit(99);
        }
        waitpid(pid, &status, 0);
        check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "predump: cleared by execve", "status 0x%x",
              status);
        prctl(PR_SET_PREDUMP_SIG, 0, 0, 0, 0);
        check(get(PR_GET_PREDUMP_SIG) == 0, "predump: cleared with 0", "%d", get(PR_GET_PREDUMP_SIG));
        close(sfd);
        sigprocmask(SIG_UNBLOCK, &mask, NULL);
}

static void test_adopt(void) {
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGUSR2);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
        /* Two pipes: A reports B's pid on one; B waits on the other until
         * the test ends. Sharing one made B a reader of A's report: when B
         * won that race it took a byte of the pid, returned from its read
         * and died before A, so the kernel re-parented a zombie, which gets
         * no adoption signal ("none in 30 s"). */
        int report[2], hold[2];

        check(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0, "adopt: subreaper", "errno %d", errno);
        if (prctl(PR_SET_ADOPTSIG, SIGUSR2, 0, 0, 0) < 0) {
                check(0, "adopt: set", "errno %d (not a patched kernel?)", errno);
                return;
        }
        check(get(PR_GET_ADOPTSIG) == SIGUSR2, "adopt: get", "%d", get(PR_GET_ADOPTSIG));

        /* A forks B and exits: B is re-parented to us. */
        if (pipe2(report, O_CLOEXEC) < 0 || pipe2(hold, O_CLOEXEC) < 0)
                abort();
        pid_t a = fork();
        if (a == 0) {
                close(report[0]);
                close(hold[1]);
                pid_t b = fork();
                if (b == 0) {
                        close(report[1]);
                        char c;
                        (void) read(hold[0], &c, 1); /* EOF when the test ends */
                        _exit(0);
                }
                close(hold[0]);
                (void) write(report[1], &b, sizeof(b));
                _exit(0);
        }
        close(report[1]);
        close(hold[0]);
        pid_t b = 0;
        check(read(report[0], &b, sizeof(b)) == sizeof(b) && b > 0, "adopt: the orphan's pid reported", "%d",
              (int) b);
        close(report[0]);
        struct signalfd_siginfo si;
        int got = read_sig(sfd, &si, 30000);
        check(got, "adopt: signal received", "none in 30 s");
        if (got)
                check(si.ssi_signo == SIGUSR2 && si.ssi_code == SI_USER && (pid_t) si.ssi_pid == b &&
                              (pid_t) si.ssi_status == a,
                      "adopt: si fields (SI_USER, si_pid the orphan, ssi_status the old parent)",
                      "signo %u code %d pid %u (orphan %d) status %d (old parent %d)", si.ssi_signo,
                      si.ssi_code, si.ssi_pid, (int) b, si.ssi_status, (int) a);
        int status;
        waitpid(a, &status, 0);
        close(hold[1]);
        waitpid(b, &status, 0);
        check(!read_sig(sfd, &si, 100), "adopt: exactly one signal", "another from %u", si.ssi_pid);

        /* A kill() of the same signal: SI_USER, but no old parent. */
        kill(getpid(), SIGUSR2);
        got = read_sig(sfd, &si, 5000);
        check(got && si.ssi_code == SI_USER && si.ssi_status == 0 && (pid_t) si.ssi_pid == getpid(),
              "adopt: a kill() has si_status 0", "got %d code %d status %d", got, si.ssi_code, si.ssi_status);

        /* Cleared by execve and by setsid; a fork child starts with 0. */
        pid_t p = fork();
        if (p == 0)
                _exit(get(PR_GET_ADOPTSIG) == 0 ? 0 : 1);
        waitpid(p, &status, 0);
        check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "adopt: not inherited by a fork child",
              "status 0x%x", status);
        p = fork();
        if (p == 0) {
                prctl(PR_SET_ADOPTSIG, SIGUSR2, 0, 0, 0);
                execl("/proc/self/exe", "prctl-selftest", "--get-adopt", (char *) NULL);
                _exit(99);
        }
        waitpid(p, &status, 0);
        check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "adopt: cleared by execve", "status 0x%x", status);
        p = fork();
        if (p == 0) {
                prctl(PR_SET_ADOPTSIG, SIGUSR2, 0, 0, 0);
                if (setsid() < 0)
                        _exit(2);
                _exit(get(PR_GET_ADOPTSIG) == 0 ? 0 : 1);
        }
        waitpid(p, &status, 0);
        check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "adopt: cleared by setsid", "status 0x%x", status);
        prctl(PR_SET_ADOPTSIG, 0, 0, 0, 0);
        close(sfd);
        sigprocmask(SIG_UNBLOCK, &mask, NULL);
}

int main(int argc, char **argv) {
        if (argc > 1 && strcmp(argv[1], "--get-predump") == 0)
                return get(PR_GET_PREDUMP_SIG) == 0 ? 0 : 1;
        if (argc > 1 && strcmp(argv[1], "--get-adopt") == 0)
                return get(PR_GET_ADOPTSIG) == 0 ? 0 : 1;
        setvbuf(stdout, NULL, _IOLBF, 0);
        test_predump();
        test_adopt();
        printf("%d passed, %d failed\n", passed, failed);
        return failed ? 1 : 0;
}
