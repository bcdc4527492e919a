/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * pn-child: the real processes the integration tests observe. One binary,
 * one behaviour per command, so that tests start a small C program (fast,
 * predictable events) instead of a shell.
 *
 *   pn-child exit CODE              exit with CODE
 *   pn-child segv core|nocore       die of SIGSEGV, with RLIMIT_CORE unlimited or 0
 *   pn-child segv-big MIB           touch MIB MiB of memory, then die of SIGSEGV with a core
 *                                   (its dump takes a while: the broker reads it meanwhile)
 *   pn-child segv-large MIB         the same (the kernel tests' name for it)
 *   pn-child threads N CODE         start N threads, let them end, exit CODE
 *   pn-child thread-exit-group N CODE  N threads run; one of them calls exit(CODE)
 *   pn-child thread-segv N          N threads run; one of them dies of SIGSEGV
 *   pn-child leader-exit N          N threads run (and wait for signals); the leader
 *                                   thread ends (pthread_exit), the process goes on
 *   pn-child comm-burst N           rename itself N times (N comm events)
 *   pn-child wait-stdin CODE        block until stdin reaches EOF, then exit CODE
 *   pn-child setuid UID CODE        become UID, then exit CODE
 *   pn-child comm-burst N RATE      … at most RATE renames a second
 *   pn-child pause                  wait for a signal (to be stopped, continued, killed)
 *   pn-child ignore-term            as pause, but SIGTERM is ignored
 *   pn-child daemonize CODE         double-fork a daemon: fork; the child calls setsid,
 *                                   forks the daemon (which pauses) and exits; wait for
 *                                   that child, then exit CODE
 *   pn-child double-fork            the classic daemon start: fork and exit at once; the
 *                                   child calls setsid, forks the daemon (which pauses)
 *                                   and exits
 *   pn-child say TEXT               write "TEXT out" to stdout and "TEXT err" to stderr
 *   pn-child daemon N [segv] [hold] the fork dance of a daemon with N forks (below)
 *   pn-child subreaper CMD ARGS…    become a child subreaper, run pn-child CMD ARGS…
 *                                   as its child, reap everything, exit 0
 *   pn-child udp ADDR PORT          a daemon that holds a session with a peer: send
 *                                   "alive PID" to ADDR:PORT (IPv4) every 20 ms, forever
 *
 * daemon: stage 0 (this process) forks stage 1 and exits at once; stage 1
 * calls setsid(); every stage i >= 1 first waits until its parent is gone
 * (so that it has been re-parented, deterministically), then forks stage
 * i+1 and exits. Stage N is the daemon's main process: it waits for stdin
 * EOF, then exits 0 (or, with segv, dies of SIGSEGV without a core). Every
 * stage writes "stage I PID PPID" to stdout as it starts, the main also
 * "main PID", so that a test knows every pid of the dance. N = 2 is the
 * classic double fork. With hold, stage 0 first waits for one byte on
 * stdin, so that a test can subscribe to it before the dance begins.
 *
 * With --wait-stdin first, the command runs only once stdin reaches EOF: a
 * test holds the child until the broker has reported its exec (and so read
 * its name), then lets it go.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pthread_barrier_t barrier;
static char *volatile big_memory;

/* A real invalid access (not raise()). The address comes from a volatile
 * global and the store is volatile, so the compiler can neither prove it is
 * NULL (and turn it into a trap) nor drop it. */
static volatile uintptr_t crash_address;
static void crash(void) {
        *(volatile int *) crash_address = 1;
}
static int exit_code;

static void *thread_end(void *arg) {
        (void) arg;
        pthread_barrier_wait(&barrier);
        return NULL;
}

static void *thread_exit_group(void *arg) {
        pthread_barrier_wait(&barrier);
        if ((long) arg == 0)
                exit(exit_code); /* exit_group() from a non-leader thread */
        for (;;)
                pause();
        return NULL;
}

static void *thread_segv(void *arg) {
        pthread_barrier_wait(&barrier);
        if ((long) arg == 0)
                crash();
        for (;;)
                pause();
        return NULL;
}

static void *thread_pause(void *arg) {
        (void) arg;
        pthread_barrier_wait(&barrier);
        for (;;)
                pause();
        return NULL;
}

static int start_threads(long n, void *(*fn)(void *), pthread_t *ids) {
        pthread_barrier_init(&barrier, NULL, (unsigned) n + 1);
        for (long i = 0; i < n; i++)
                if (pthread_create(&ids[i], NULL, fn, (void *) i) != 0)
                        return -1;
        return 0;
}

static void set_core(int on) {
        struct rlimit rl = { on ? RLIM_INFINITY : 0, on ? RLIM_INFINITY : 0 };
        if (setrlimit(RLIMIT_CORE, &rl) < 0)
                perror("setrlimit");
        /* Dumpable even after a setuid: the test decides. */
        prctl(PR_SET_DUMPABLE, 1);
}

/* Block until process parent (our parent at fork time) has exited: then
 * the kernel has re-parented us (exit_notify() re-parents before it wakes
 * pidfd pollers). */
static void wait_parent_gone(pid_t parent) {
        struct pollfd p = { .events = POLLIN };

        p.fd = (int) syscall(SYS_pidfd_open, parent, 0);
        if (p.fd < 0)
                return; /* already reaped */
        /* Still our parent: the pidfd is the right process. */
        while (getppid() == parent && poll(&p, 1, -1) < 0 && errno == EINTR)
                ;
        close(p.fd);
}

static int fork_dance(long n, bool segv, bool hold) {
        char buf[64];

        dprintf(STDOUT_FILENO, "stage 0 %d %d\n", (int) getpid(), (int) getppid());
        if (hold && read(STDIN_FILENO, buf, 1) != 1)
                return 97;
        for (long stage = 1; stage <= n; stage++) {
                pid_t parent = getpid();
                pid_t pid = fork();
                if (pid < 0)
                        return 99;
                if (pid > 0)
                        _exit(0); /* the parent of each stage leaves at once */
                wait_parent_gone(parent);
                if (stage == 1 && setsid() < 0)
                        return 98;
                dprintf(STDOUT_FILENO, "stage %ld %d %d\n", stage, (int) getpid(), (int) getppid());
        }
        dprintf(STDOUT_FILENO, "main %d\n", (int) getpid());
        while (read(STDIN_FILENO, buf, sizeof(buf)) > 0)
                ;
        if (segv) {
                set_core(0);
                crash();
        }
        return 0;
}

static int subreaper(char **argv) {
        pid_t pid;

        if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
                perror("PR_SET_CHILD_SUBREAPER");
                return 99;
        }
        dprintf(STDOUT_FILENO, "subreaper %d\n", (int) getpid());
        pid = fork();
        if (pid < 0)
                return 99;
        if (pid == 0) {
                char exe[4096];
                ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
                if (n > 0) {
                        exe[n] = 0;
                        execv(exe, argv); /* the real path: the name stays pn-child */
                }
                _exit(127);
        }
        /* Reap the child and every orphan it leaves us, until none is left. */
        while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
                ;
        return 0;
}

static int usage(void) {
        fprintf(stderr, "usage: pn-child exit|segv|threads|thread-exit-group|thread-segv|leader-exit|"
                        "comm-burst|wait-stdin|setuid|pause|ignore-term|daemonize|double-fork|say|"
                        "daemon|subreaper ...\n");
        return 2;
}

int main(int argc, char **argv) {
        pthread_t ids[256];

        if (argc > 1 && strcmp(argv[1], "--wait-stdin") == 0) {
                char buf[64];
                while (read(STDIN_FILENO, buf, sizeof(buf)) > 0)
                        ;
                argv++;
                argc--;
        }
        if (argc < 2)
                return usage();
        const char *cmd = argv[1];
        long a = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
        long b = argc > 3 ? strtol(argv[3], NULL, 10) : 0;
        if (a < 0 || a > 255)
                a = 0;

        if (strcmp(cmd, "exit") == 0)
                return (int) a;
        if (strcmp(cmd, "segv") == 0) {
                set_core(argc > 2 && strcmp(argv[2], "core") == 0);
                crash();
                return 1;
        }
        if (strcmp(cmd, "segv-big") == 0 || strcmp(cmd, "segv-large") == 0) {
                size_t size = (size_t) a << 20;
                char *mem = malloc(size);
                if (!mem)
                        return 99;
                memset(mem, 0x5a, size);
                big_memory = mem; /* kept, or the compiler may drop the memset */
                set_core(1);
                crash();
                return 1;
        }
        if (strcmp(cmd, "threads") == 0) {
                if (start_threads(a, thread_end, ids) < 0)
                        return 99;
                pthread_barrier_wait(&barrier);
                for (long i = 0; i < a; i++)
                        pthread_join(ids[i], NULL);
                return (int) b;
        }
        if (strcmp(cmd, "thread-exit-group") == 0) {
                exit_code = (int) b;
                if (start_threads(a, thread_exit_group, ids) < 0)
                        return 99;
                pthread_barrier_wait(&barrier);
                for (;;)
                        pause();
        }
        if (strcmp(cmd, "leader-exit") == 0) {
                if (start_threads(a, thread_pause, ids) < 0)
                        return 99;
                pthread_barrier_wait(&barrier);
                pthread_exit(NULL);
        }
        if (strcmp(cmd, "thread-segv") == 0) {
                set_core(0);
                if (start_threads(a, thread_segv, ids) < 0)
                        return 99;
                pthread_barrier_wait(&barrier);
                for (;;)
                        pause();
        }
        if (strcmp(cmd, "comm-burst") == 0) {
                char name[16];
                long n = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
                long rate = argc > 3 ? strtol(argv[3], NULL, 10) : 0;
                long per_ms = rate > 0 ? (rate + 999) / 1000 : 0;
                struct timespec next;
                clock_gettime(CLOCK_MONOTONIC, &next);
                for (long i = 0; i < n; i++) {
                        snprintf(name, sizeof(name), "burst-%ld", i % 100000);
                        prctl(PR_SET_NAME, name);
                        if (per_ms && (i + 1) % per_ms == 0) {
                                /* Pace by absolute deadlines, 1 ms apart. */
                                next.tv_nsec += 1000000;
                                if (next.tv_nsec >= 1000000000) {
                                        next.tv_nsec -= 1000000000;
                                        next.tv_sec++;
                                }
                                clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
                        }
                }
                return 0;
        }
        if (strcmp(cmd, "wait-stdin") == 0) {
                char buf[64];
                while (read(STDIN_FILENO, buf, sizeof(buf)) > 0)
                        ;
                return (int) a;
        }
        if (strcmp(cmd, "ignore-term") == 0)
                signal(SIGTERM, SIG_IGN);
        if (strcmp(cmd, "pause") == 0 || strcmp(cmd, "ignore-term") == 0) {
                for (;;)
                        pause();
        }
        if (strcmp(cmd, "daemonize") == 0) {
                pid_t p = fork();
                if (p < 0)
                        return 99;
                if (p == 0) {
                        if (setsid() < 0)
                                _exit(98);
                        pid_t q = fork();
                        if (q < 0)
                                _exit(97);
                        if (q == 0)
                                for (;;)
                                        pause();
                        _exit(0);
                }
                if (waitpid(p, NULL, 0) < 0)
                        return 96;
                return (int) a;
        }
        if (strcmp(cmd, "double-fork") == 0) {
                pid_t p = fork();
                if (p < 0)
                        return 99;
                if (p > 0)
                        return 0;
                if (setsid() < 0)
                        _exit(98);
                p = fork();
                if (p < 0)
                        _exit(97);
                if (p > 0)
                        _exit(0);
                for (;;)
                        pause();
        }
        if (strcmp(cmd, "say") == 0) {
                const char *text = argc > 2 ? argv[2] : "";
                printf("%s out\n", text);
                fflush(stdout);
                fprintf(stderr, "%s err\n", text);
                return 0;
        }
        if (strcmp(cmd, "setuid") == 0) {
                long uid = argc > 2 ? strtol(argv[2], NULL, 10) : 65534;
                if (setresuid((uid_t) uid, (uid_t) uid, (uid_t) uid) < 0) {
                        perror("setresuid");
                        return 99;
                }
                return (int) b;
        }
        if (strcmp(cmd, "daemon") == 0)
        {
                bool segv = false, hold = false;
                for (int i = 3; i < argc; i++) {
                        segv |= strcmp(argv[i], "segv") == 0;
                        hold |= strcmp(argv[i], "hold") == 0;
                }
                return fork_dance(a, segv, hold);
        }
        if (strcmp(cmd, "udp") == 0 && argc > 3) {
                struct sockaddr_in peer = { .sin_family = AF_INET,
                                            .sin_port = htons((uint16_t) atoi(argv[3])) };
                int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                char msg[32];
                if (fd < 0 || inet_pton(AF_INET, argv[2], &peer.sin_addr) != 1)
                        return 99;
                int n = snprintf(msg, sizeof(msg), "alive %d\n", (int) getpid());
                for (;;) {
                        (void) sendto(fd, msg, (size_t) n, 0, (struct sockaddr *) &peer, sizeof(peer));
                        usleep(20000);
                }
        }
        if (strcmp(cmd, "subreaper") == 0 && argc > 2) {
                argv[1] = argv[0]; /* run "pn-child CMD ARGS…" */
                return subreaper(argv + 1);
        }
        return usage();
}
