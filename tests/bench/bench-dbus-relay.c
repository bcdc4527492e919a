/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-dbus-relay ADDRESS: the naive D-Bus relay, a baseline. It owns
 * org.procnotify.Broker1 on the bus at ADDRESS, answers Subscribe (so that
 * bench-dbus works unchanged) by remembering the caller (up to 16), then, for each
 * connector message of the benchmark's (a comm event of its name prefix;
 * others are skipped, as procnotify's subscription filter skips them), one
 * at a time: recv, one CommChanged signal addressed to each subscriber
 * (sd-bus, the broker's signature, only the comm filled in), sd_bus_flush. The least any D-Bus relay can do: what is left between
 * it and procnotify's D-Bus figure is procnotify's own work, what is between
 * it and the raw listener is the relay and the bus.
 */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <systemd/sd-bus.h>

#include "bench-cn.h"
#include "bench-common.h"

#define NAME "org.procnotify.Broker1"
#define PATH "/org/procnotify/Broker1"

#define MAX_SUBSCRIBERS 16

static char subscribers[MAX_SUBSCRIBERS][256];
static int n_subscribers;

static int on_method(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        (void) userdata;
        (void) error;
        if (!sd_bus_message_is_method_call(m, NAME, "Subscribe"))
                return 0;
        if (n_subscribers == MAX_SUBSCRIBERS)
                return sd_bus_reply_method_errorf(m, SD_BUS_ERROR_LIMITS_EXCEEDED, "too many subscribers");
        snprintf(subscribers[n_subscribers++], sizeof(subscribers[0]), "%s", sd_bus_message_get_sender(m));
        return sd_bus_reply_method_return(m, "o", PATH "/subscription/1");
}

int main(int argc, char **argv) {
        int nl = bench_cn_socket();
        char buf[512] __attribute__((aligned(8)));
        sd_bus *bus = NULL;
        uint64_t seq = 0;
        const char *prefix = bench_prefix();

        if (argc != 2 || nl < 0)
                return 1;
        if (sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, argv[1]) < 0 || sd_bus_set_bus_client(bus, 1) < 0 ||
            sd_bus_start(bus) < 0 || sd_bus_add_object(bus, NULL, PATH, on_method, NULL) < 0 ||
            sd_bus_request_name(bus, NAME, 0) < 0)
                return 1;

        if (bench_cn_listen(nl) < 0)
                return 1;
        const struct nlmsghdr *nh = (const struct nlmsghdr *) buf;
        printf("ready\n");
        fflush(stdout);

        for (;;) {
                /* Bus traffic (the Subscribe call) first, then wait for either. */
                int r;
                while ((r = sd_bus_process(bus, NULL)) > 0)
                        ;
                if (r < 0)
                        return 0; /* the bus went away */
                struct pollfd p[2] = { { nl, POLLIN, 0 }, { sd_bus_get_fd(bus), (short) sd_bus_get_events(bus), 0 } };
                /* 100 ms, like every other receiver here (see bench-relay.c). */
                if (poll(p, 2, 100) <= 0 || !(p[0].revents & POLLIN))
                        continue;
                /* Drain what is queued (another run's burst must not back
                 * up ours), each of our events signalled and flushed alone. */
                ssize_t k;
                while ((k = recv(nl, buf, sizeof(buf), MSG_DONTWAIT)) != 0) {
                        if (k < 0 && errno == ENOBUFS)
                                continue;
                        if (k < 0)
                                break;
                        struct proc_event *ev = (struct proc_event *) ((struct cn_msg *) NLMSG_DATA(nh))->data;
                        if (ev->what != PROC_EVENT_COMM ||
                            strncmp(ev->event_data.comm.comm, prefix, strlen(prefix)) != 0)
                                continue;
                        char comm[17];
                        snprintf(comm, sizeof(comm), "%.16s", ev->event_data.comm.comm);
                        seq++;
                        for (int i = 0; i < n_subscribers; i++) {
                                sd_bus_message *m = NULL;
                                r = sd_bus_message_new_signal(bus, &m, PATH, NAME, "CommChanged");
                                if (r >= 0)
                                        r = sd_bus_message_set_destination(m, subscribers[i]);
                                if (r >= 0)
                                        r = sd_bus_message_append(m, "ttiiiusssssb", seq, (uint64_t) ev->timestamp_ns,
                                                                  (int32_t) ev->event_data.comm.process_pid,
                                                                  (int32_t) ev->event_data.comm.process_tgid, 0, 0u,
                                                                  comm, "", "", "", "", 0);
                                if (r >= 0)
                                        r = sd_bus_send(bus, m, NULL);
                                sd_bus_message_unref(m);
                                if (r < 0)
                                        return 0;
                        }
                        if (n_subscribers && sd_bus_flush(bus) < 0)
                                return 0;
                }
        }
}
