/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-json SOCKET N TIMEOUT_S [REQUEST]: a procnotify JSON client subscribed
 * to the generator's comm events (or with the subscribe REQUEST given, e.g.
 * to everything, counting every line in the index-less slot 0). It takes the receive time when a read returns
 * and only looks for the name in each line, so that what is measured is the
 * broker, not a JSON parser. It counts overrun reports (and what they say
 * was lost) for the summary line. With PNB_EVENT=predump or exit it
 * subscribes to and records those events of the generator's processes
 * (bench-crash) instead of their renames.
 */
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench-common.h"

int main(int argc, char **argv) {
        if (argc < 3)
                return 2;
        long n = strtol(argv[2], NULL, 10);
        int timeout_s = argc > 3 ? atoi(argv[3]) : 60;
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        static char buf[1 << 20];
        size_t len = 0;
        BenchRecord rec;
        bool subscribed = false;

        strncpy(sa.sun_path, argv[1], sizeof(sa.sun_path) - 1);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || bench_record_init(&rec, n) < 0)
                return 1;
        static const char *const types[] = { "comm", "predump", "exit" };
        const char *type = types[bench_event()];
        char req[1024], want[32];
        snprintf(want, sizeof(want), "\"type\":\"%s\"", type);
        if (argc > 4)
                snprintf(req, sizeof(req), "%s\n", argv[4]);
        else
                snprintf(req, sizeof(req), "{\"op\":\"subscribe\",\"events\":[\"%s\"],\"match\":{\"comm\":\"%s*\"}}\n",
                         type, bench_prefix());
        if (write(fd, req, strlen(req)) < 0)
                return 1;

        uint64_t deadline = bench_now() + (uint64_t) timeout_s * 1000000000u;
        while (!bench_record_done(&rec, deadline)) {
                struct pollfd p = { fd, POLLIN, 0 };
                if (poll(&p, 1, 100) <= 0)
                        continue;
                ssize_t k = read(fd, buf + len, sizeof(buf) - len - 1);
                uint64_t t = bench_now();
                if (k <= 0)
                        break;
                len += (size_t) k;
                char *line = buf, *nl;
                while ((nl = memchr(line, '\n', len - (size_t) (line - buf)))) {
                        if (!subscribed && memmem(line, (size_t) (nl - line), "\"subscribed\"", 12)) {
                                subscribed = true;
                                printf("ready\n");
                                fflush(stdout);
                        } else if (memmem(line, (size_t) (nl - line), want, strlen(want))) {
                                bench_record(&rec, bench_index(line, (size_t) (nl - line)), t);
                        } else if (memmem(line, (size_t) (nl - line), "\"type\":\"overrun\"", 16)) {
                                const char *l = memmem(line, (size_t) (nl - line), "\"lost\":", 7);
                                rec.overruns++;
                                rec.lost += l ? strtoull(l + 7, NULL, 10) : 0;
                        }
                        line = nl + 1;
                }
                len -= (size_t) (line - buf);
                memmove(buf, line, len);
        }
        bench_record_print(&rec);
        return 0;
}
