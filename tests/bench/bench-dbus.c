/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-dbus ADDRESS N TIMEOUT_S: a D-Bus subscriber of procnotifyd
 * (sd-bus, as a C client would be) to the generator's comm events; records
 * when each CommChanged signal arrives, and counts Overrun signals. Prints
 * "ready" once subscribed.
 */
#include <systemd/sd-bus.h>

#include "bench-common.h"

int main(int argc, char **argv) {
        sd_bus *bus = NULL;
        sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        BenchRecord rec;

        if (argc < 3)
                return 2;
        long n = strtol(argv[2], NULL, 10);
        int timeout_s = argc > 3 ? atoi(argv[3]) : 60;
        if (bench_record_init(&rec, n) < 0 || sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, argv[1]) < 0 ||
            sd_bus_set_bus_client(bus, 1) < 0 || sd_bus_start(bus) < 0)
                return 1;
        char pattern[16];
        snprintf(pattern, sizeof(pattern), "%s*", bench_prefix());
        if (sd_bus_call_method(bus, "org.procnotify.Broker1", "/org/procnotify/Broker1",
                               "org.procnotify.Broker1", "Subscribe", &error, &reply, "asa{sv}", 1,
                               "comm", 1, "comm", "s", pattern) < 0) {
                fprintf(stderr, "Subscribe: %s\n", error.message);
                return 1;
        }
        sd_bus_message_unref(reply);
        printf("ready\n");
        fflush(stdout);

        uint64_t deadline = bench_now() + (uint64_t) timeout_s * 1000000000u;
        while (!bench_record_done(&rec, deadline)) {
                sd_bus_message *m = NULL;
                int r = sd_bus_process(bus, &m);
                if (r < 0)
                        break;
                if (m) {
                        uint64_t t = bench_now();
                        const char *comm;
                        if (sd_bus_message_is_signal(m, "org.procnotify.Broker1", "CommChanged") &&
                            sd_bus_message_skip(m, "ttiiiu") >= 0 && sd_bus_message_read(m, "s", &comm) > 0)
                                bench_record(&rec, bench_index(comm, strlen(comm)), t);
                        else if (sd_bus_message_is_signal(m, "org.procnotify.Broker1", "Overrun")) {
                                uint64_t seq, ts, lost;
                                rec.overruns++;
                                if (sd_bus_message_read(m, "ttt", &seq, &ts, &lost) > 0)
                                        rec.lost += lost;
                        }
                        sd_bus_message_unref(m);
                        continue;
                }
                if (r == 0)
                        sd_bus_wait(bus, 100000);
        }
        bench_record_print(&rec);
        sd_bus_flush_close_unref(bus);
        return 0;
}
