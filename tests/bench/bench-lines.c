/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-lines N TIMEOUT_S: timestamps lines on stdin (forkstat's output) as
 * they arrive and records the "pnb-<i>" name after "->" in each. Prints
 * "ready" when the first line (forkstat's header) arrives.
 */
#include <poll.h>
#include <unistd.h>

#include "bench-common.h"

int main(int argc, char **argv) {
        long n = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
        int timeout_s = argc > 2 ? atoi(argv[2]) : 60;
        static char buf[1 << 20];
        size_t len = 0;
        BenchRecord rec;
        bool ready = false;

        if (bench_record_init(&rec, n) < 0)
                return 1;
        uint64_t deadline = bench_now() + (uint64_t) timeout_s * 1000000000u;
        while (!bench_record_done(&rec, deadline)) {
                struct pollfd p = { STDIN_FILENO, POLLIN, 0 };
                if (poll(&p, 1, 100) <= 0)
                        continue;
                ssize_t k = read(STDIN_FILENO, buf + len, sizeof(buf) - len - 1);
                uint64_t t = bench_now();
                if (k <= 0)
                        break;
                len += (size_t) k;
                char *line = buf, *nl;
                while ((nl = memchr(line, '\n', len - (size_t) (line - buf)))) {
                        char *arrow = memmem(line, (size_t) (nl - line), "-> ", 3);
                        if (!ready) {
                                ready = true;
                                printf("ready\n");
                                fflush(stdout);
                        }
                        if (arrow)
                                bench_record(&rec, bench_index(arrow, (size_t) (nl - arrow)), t);
                        line = nl + 1;
                }
                len -= (size_t) (line - buf);
                memmove(buf, line, len);
        }
        bench_record_print(&rec);
        return 0;
}
