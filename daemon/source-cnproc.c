/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Cnproc: the proc connector source (socket, filter, batched reads, loss,
 * watchdog); see source-cnproc.h.
 *
 * Reading: recvmmsg(MSG_DONTWAIT) in batches from a level-triggered I/O
 * source. DESIGN.md records that a listener *blocked* in recvmmsg() can stop
 * receiving for good after an overflow: the kernel keeps a netlink socket
 * "congested" until a receive finds its queue empty. A non-blocking read that
 * ends in EAGAIN is exactly such a receive, so every drain here clears the
 * state; a callback reads at most CNPROC_MAX_BATCHES batches and returns to
 * the loop (so clients are served during a storm), and epoll calls it again
 * while data is queued. The integration tests prove events flow after an
 * overrun, and the watchdog re-creates the socket should it ever go silent
 * while the kernel keeps dropping for it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <linux/connector.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

#include "common/linux-compat.h"
#include "common/macro.h"
#include "cnproc-msg.h"
#include "source-cnproc.h"

#define CNPROC_BATCH 64
#define CNPROC_MSG_SIZE 256        /* a proc event datagram is 76 bytes */
#define CNPROC_MAX_BATCHES 16      /* per callback: about 1000 events */
#define CNPROC_WATCHDOG_USEC 100000

struct Cnproc {
        sd_event *event;
        sd_event_source *io;
        sd_event_source *watchdog;
        struct nl_sock *sock;
        int fd;
        CnprocCallbacks cb;
        void *userdata;
        CnprocOptions options;
        CnprocStats stats;

        /* Loss accounting. */
        bool gaps_valid;          /* filter is "all": a seq gap means a loss */
        uint32_t *cpu_seq;        /* next expected seq per CPU, 0 = none yet */
        bool *cpu_seen;
        size_t n_cpus;
        uint64_t gap_lost;        /* sum of seq gaps */
        uint64_t drops_base;      /* SO_MEMINFO drops of earlier sockets */
        uint64_t drops;           /* drops_base + current socket's drops */
        uint64_t reported;        /* what on_loss was told so far */
        uint64_t received_at_tick;
        uint64_t drops_at_tick;

        struct mmsghdr msgs[CNPROC_BATCH];
        struct iovec iovs[CNPROC_BATCH];
        char bufs[CNPROC_BATCH][CNPROC_MSG_SIZE];
};

static int cnproc_open(Cnproc *c);

/* Drop the socket and its I/O source; c->fd never names a closed (and
 * possibly reused) descriptor. */
static void cnproc_close(Cnproc *c) {
        c->io = sd_event_source_disable_unref(c->io);
        if (c->sock)
                nl_socket_free(c->sock);
        c->sock = NULL;
        c->fd = -1;
}

/* The kernel's drop count of every socket so far; without a socket (being
 * re-created), what was counted before. */
static uint64_t cnproc_read_drops(Cnproc *c) {
        uint32_t mem[SK_MEMINFO_VARS] = { 0 };
        socklen_t len = sizeof(mem);

        if (c->fd < 0 || getsockopt(c->fd, SOL_SOCKET, SO_MEMINFO, mem, &len) < 0)
                return c->drops;
        return c->drops_base + mem[SK_MEMINFO_DROPS];
}

/* Tell the broker about loss not reported yet. Gaps and drops count the same
 * lost messages twice when both see them, so the larger of the two is the
 * best estimate; gaps also catch messages the kernel could not allocate. */
static void cnproc_report_loss(Cnproc *c) {
        uint64_t total = MAX(c->gap_lost, c->drops);
        if (total > c->reported) {
                uint64_t lost = total - c->reported;
                c->reported = total;
                c->stats.lost += lost;
                c->cb.on_loss(c->userdata, lost);
        }
}

static void cnproc_track_seq(Cnproc *c, uint32_t cpu, uint32_t seq) {
        if (cpu >= c->n_cpus) {
                size_t n = MAX((size_t) cpu + 1, c->n_cpus * 2);
                uint32_t *s = realloc(c->cpu_seq, n * sizeof(*s));
                if (!s)
                        return;
                c->cpu_seq = s;
                bool *seen = realloc(c->cpu_seen, n * sizeof(*seen));
                if (!seen)
                        return;
                c->cpu_seen = seen;
                memset(c->cpu_seq + c->n_cpus, 0, (n - c->n_cpus) * sizeof(*s));
                memset(c->cpu_seen + c->n_cpus, 0, (n - c->n_cpus) * sizeof(*seen));
                c->n_cpus = n;
        }
        if (c->cpu_seen[cpu]) {
                uint32_t gap = seq - c->cpu_seq[cpu]; /* modulo 2^32 */
                /* A "gap" of more than 2^31 is a counter that went backwards
                 * (CPU hotplug, a reordering): resynchronise, do not count. */
                if (gap > 0 && gap < (1u << 31))
                        c->gap_lost += gap;
        }
        c->cpu_seen[cpu] = true;
        c->cpu_seq[cpu] = seq + 1;
}

static void cnproc_handle(Cnproc *c, const void *buf, size_t len) {
        CnprocMsg m;
        int r = cnproc_msg_parse(buf, len, &m);

        if (r < 0) {
                c->stats.malformed++;
                return;
        }
        if (r == CNPROC_MSG_OTHER)
                return;
        c->stats.received++;
        if (c->gaps_valid && m.cpu != UINT32_MAX)
                cnproc_track_seq(c, m.cpu, m.seq);
        if (r == CNPROC_MSG_EVENT)
                c->cb.on_event(c->userdata, &m.ev);
}

static void cnproc_arm_watchdog(Cnproc *c) {
        int enabled = SD_EVENT_OFF;
        uint64_t now;

        sd_event_source_get_enabled(c->watchdog, &enabled);
        if (enabled != SD_EVENT_OFF)
                return;
        sd_event_now(c->event, CLOCK_MONOTONIC, &now);
        sd_event_source_set_time(c->watchdog, now + CNPROC_WATCHDOG_USEC);
        sd_event_source_set_enabled(c->watchdog, SD_EVENT_ONESHOT);
}

static int cnproc_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Cnproc *c = userdata;
        bool loss = false;

        (void) s;
        (void) revents;
        for (int batch = 0; batch < CNPROC_MAX_BATCHES; batch++) {
                int n = recvmmsg(fd, c->msgs, CNPROC_BATCH, MSG_DONTWAIT, NULL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == ENOBUFS) {
                                c->stats.enobufs++;
                                loss = true;
                                continue;
                        }
                        break; /* EAGAIN: drained, and the congestion is cleared */
                }
                for (int i = 0; i < n; i++) {
                        cnproc_handle(c, c->bufs[i], c->msgs[i].msg_len);
                        c->msgs[i].msg_len = 0;
                }
                if (c->cb.on_batch_end)
                        c->cb.on_batch_end(c->userdata);
                if (n < CNPROC_BATCH)
                        break;
        }
        if (loss) {
                c->drops = cnproc_read_drops(c);
                cnproc_report_loss(c);
        } else if (c->gap_lost > c->reported)
                cnproc_report_loss(c);
        cnproc_arm_watchdog(c);
        return 0;
}

/*
 * While events flow, check the kernel's drop counter every 100 ms: loss at
 * the very end of a burst leaves no later event to reveal a gap. If the
 * counter rose while nothing at all was received, the socket is stuck:
 * re-create it. Goes quiet when the source is idle.
 */
static int cnproc_on_watchdog(sd_event_source *s, uint64_t usec, void *userdata) {
        Cnproc *c = userdata;
        uint64_t drops;

        (void) s;
        (void) usec;
        drops = cnproc_read_drops(c);
        bool dropped = drops > c->drops_at_tick;
        bool silent = c->stats.received == c->received_at_tick;
        c->drops = drops;
        cnproc_report_loss(c);

        if (dropped && silent) {
                int r;

                c->stats.resets++;
                c->drops_base = drops;
                cnproc_close(c);
                r = cnproc_open(c);
                if (r < 0) {
                        /* No kernel source is left: the broker cannot go on
                         * without publishing loss forever. */
                        cnproc_close(c);
                        c->cb.on_fatal(c->userdata, r);
                        return 0;
                }
                c->drops = cnproc_read_drops(c);
        }
        c->drops_at_tick = c->drops;
        c->received_at_tick = c->stats.received;
        if (dropped || !silent)
                cnproc_arm_watchdog(c);
        return 0;
}

/* libnl's error as -errno: errno where the system call set it. */
static int cnproc_nl_error(int nlerr) {
        switch (-nlerr) {
        case NLE_NOMEM: return -ENOMEM;
        case NLE_PERM: return -EPERM;
        case NLE_PROTO_MISMATCH:
        case NLE_OPNOTSUPP: return -EPROTONOSUPPORT;
        default: return errno > 0 ? -errno : -EIO;
        }
}

static int cnproc_send_mcast(Cnproc *c, uint32_t op, uint32_t events, uint32_t ack) {
        char payload[64];
        size_t len = cnproc_msg_build_mcast(payload, sizeof(payload), op, events, ack);
        int r = nl_send_simple(c->sock, NLMSG_DONE, 0, payload, (int) len);
        return r < 0 ? cnproc_nl_error(r) : 0;
}

/*
 * Subscribe, and find out whether the kernel filters events (Linux 6.6),
 * without waiting: the connector handles a request synchronously, within
 * send(), and its ack is queued on this socket before send() returns. Ask
 * for a filtered subscription of everything (ack cookie A: before 6.6 the
 * longer request is ignored without an ack), then for a legacy one (ack
 * A + 1, on every kernel). Reading what is queued up to the second ack
 * tells whether the first was understood. The ack itself passes only a
 * filter of "all", so both ask for all; the caller narrows afterwards.
 * Events queued before the acks are dropped: the table is seeded after.
 */
static int cnproc_subscribe_probe(Cnproc *c, bool *ret_filter) {
        uint32_t filtered = (uint32_t) random() & ~0xffu, legacy = filtered + 0x10;
        char buf[CNPROC_MSG_SIZE];
        bool filter = false;
        int r;

        /* The kernel acks with the request's cookie + 1. */
        r = cnproc_send_mcast(c, PROC_CN_MCAST_LISTEN, PROC_EVENT_ALL, filtered);
        if (r < 0)
                return r;
        r = cnproc_send_mcast(c, PROC_CN_MCAST_LISTEN, 0, legacy);
        if (r < 0)
                return r;
        for (;;) {
                ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n < 0 && (errno == EINTR || errno == ENOBUFS))
                        continue; /* ENOBUFS: events overflowed; the acks may follow */
                if (n <= 0)
                        break; /* drained without the second ack */
                CnprocMsg m;
                if (cnproc_msg_parse(buf, (size_t) n, &m) != CNPROC_MSG_ACK)
                        continue;
                if (m.ack == filtered + 1)
                        filter = m.ack_err == 0;
                else if (m.ack == legacy + 1)
                        break;
        }
        *ret_filter = filter;
        return 0;
}

static int cnproc_apply_rcvbuf(Cnproc *c) {
        int size = (int) MIN(c->options.receive_buffer, (uint64_t) INT32_MAX / 2);
        socklen_t len = sizeof(size);

        if (size > 0 && setsockopt(c->fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0 &&
            setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) < 0)
                return -errno;
        if (getsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &size, &len) == 0)
                c->stats.receive_buffer = (uint64_t) size;
        return 0;
}

static int cnproc_open(Cnproc *c) {
        _cleanup_(sd_event_source_unrefp) sd_event_source *io = NULL;
        uint32_t want = c->options.kernel_events ? c->options.kernel_events : PROC_EVENT_ALL;
        int r;

        c->sock = nl_socket_alloc();
        if (!c->sock)
                return -ENOMEM;
        nl_socket_disable_seq_check(c->sock);
        nl_socket_disable_auto_ack(c->sock);
        nl_join_groups(c->sock, CN_IDX_PROC);
        r = nl_connect(c->sock, NETLINK_CONNECTOR);
        if (r < 0)
                return cnproc_nl_error(r);
        c->fd = nl_socket_get_fd(c->sock);
        r = cnproc_apply_rcvbuf(c);
        if (r < 0)
                return r;

        r = cnproc_subscribe_probe(c, &c->stats.filter);
        if (r < 0)
                return r;
        if (!c->stats.filter)
                want = PROC_EVENT_ALL; /* the legacy subscription: everything */
        else if (want != PROC_EVENT_ALL) {
                r = cnproc_send_mcast(c, PROC_CN_MCAST_LISTEN, want, 0);
                if (r < 0)
                        return r;
        }
        c->stats.kernel_events = want;
        /* Sequence numbers count every event of every listener; with a
         * narrower filter a gap is normal and only drops can tell loss. */
        c->gaps_valid = want == PROC_EVENT_ALL;

        nl_socket_set_nonblocking(c->sock);
        r = sd_event_add_io(c->event, &io, c->fd, EPOLLIN, cnproc_on_io, c);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(io, "cnproc-io");
        c->io = TAKE_PTR(io);
        return 0;
}

int cnproc_new(Cnproc **ret, sd_event *e, const CnprocOptions *o, const CnprocCallbacks *cb,
               void *userdata) {
        _cleanup_(sd_event_source_unrefp) sd_event_source *wd = NULL;
        Cnproc *c = calloc(1, sizeof(*c));
        int r;

        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(e);
        c->cb = *cb;
        c->userdata = userdata;
        c->options = *o;
        c->fd = -1;
        for (int i = 0; i < CNPROC_BATCH; i++) {
                c->iovs[i] = (struct iovec){ .iov_base = c->bufs[i], .iov_len = CNPROC_MSG_SIZE };
                c->msgs[i].msg_hdr.msg_iov = &c->iovs[i];
                c->msgs[i].msg_hdr.msg_iovlen = 1;
        }

        r = cnproc_open(c);
        if (r < 0)
                goto fail;
        r = sd_event_add_time(e, &wd, CLOCK_MONOTONIC, 0, 10000, cnproc_on_watchdog, c);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_description(wd, "cnproc-watchdog");
        sd_event_source_set_enabled(wd, SD_EVENT_OFF);
        c->watchdog = TAKE_PTR(wd);
        *ret = c;
        return 0;
fail:
        cnproc_free(c);
        return r;
}

Cnproc *cnproc_free(Cnproc *c) {
        if (!c)
                return NULL;
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->watchdog);
        if (c->sock)
                nl_socket_free(c->sock);
        sd_event_unref(c->event);
        free(c->cpu_seq);
        free(c->cpu_seen);
        free(c);
        return NULL;
}

int cnproc_set_receive_buffer(Cnproc *c, uint64_t bytes) {
        c->options.receive_buffer = bytes;
        return cnproc_apply_rcvbuf(c);
}

const CnprocStats *cnproc_get_stats(Cnproc *c) {
        return &c->stats;
}
