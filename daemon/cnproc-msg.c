/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Connector messages into PnEvents (pure parsing); see cnproc-msg.h. Every length is checked
 * before it is trusted: a short or lying datagram is -EBADMSG, never a read
 * past the buffer.
 */
#include <errno.h>
#include <string.h>

#include <linux/connector.h>
#include <linux/netlink.h>

#include "common/linux-compat.h"
#include "cnproc-msg.h"

int cnproc_msg_parse(const void *buf, size_t len, CnprocMsg *ret) {
        const struct nlmsghdr *nh = buf;
        const struct cn_msg *cn;
        struct proc_event pe;
        size_t payload;

        if (len < sizeof(*nh) || nh->nlmsg_len < sizeof(*nh) || nh->nlmsg_len > len)
                return -EBADMSG;
        if (nh->nlmsg_type == NLMSG_ERROR || nh->nlmsg_type == NLMSG_NOOP)
                return CNPROC_MSG_OTHER;
        payload = nh->nlmsg_len - NLMSG_HDRLEN;
        if (nh->nlmsg_len < NLMSG_HDRLEN || payload < sizeof(*cn))
                return -EBADMSG;
        cn = (const struct cn_msg *) ((const char *) buf + NLMSG_HDRLEN);
        if (cn->id.idx != CN_IDX_PROC || cn->id.val != CN_VAL_PROC)
                return CNPROC_MSG_OTHER;
        /* Accept a proc_event that is at least as long as the fields we read:
         * older kernels sent the same layout. */
        if (cn->len > payload - sizeof(*cn) ||
            cn->len < offsetof(struct proc_event, event_data) + sizeof(pe.event_data.ack))
                return -EBADMSG;
        memset(&pe, 0, sizeof(pe));
        memcpy(&pe, cn->data, cn->len < sizeof(pe) ? cn->len : sizeof(pe));

        memset(ret, 0, sizeof(*ret));
        ret->seq = cn->seq;
        ret->ack = cn->ack;
        ret->cpu = pe.cpu;
        if (pe.what == PROC_EVENT_NONE) {
                ret->ack_err = pe.event_data.ack.err;
                return CNPROC_MSG_ACK;
        }

        PnEvent *ev = &ret->ev;
        ev->ts_ns = pe.timestamp_ns;
        ev->uid = UINT32_MAX;
        switch ((uint32_t) pe.what) {
        case PROC_EVENT_FORK:
                ev->type = PN_EVENT_FORK;
                ev->pid = pe.event_data.fork.child_pid;
                ev->tgid = pe.event_data.fork.child_tgid;
                ev->ppid = pe.event_data.fork.parent_tgid;
                ev->fork.parent_pid = pe.event_data.fork.parent_pid;
                ev->thread = ev->pid != ev->tgid;
                break;
        case PROC_EVENT_EXEC:
                ev->type = PN_EVENT_EXEC;
                ev->pid = pe.event_data.exec.process_pid;
                ev->tgid = pe.event_data.exec.process_tgid;
                break;
        case PROC_EVENT_UID:
        case PROC_EVENT_GID:
                ev->type = pe.what == PROC_EVENT_UID ? PN_EVENT_UID : PN_EVENT_GID;
                ev->pid = pe.event_data.id.process_pid;
                ev->tgid = pe.event_data.id.process_tgid;
                ev->id.real = pe.event_data.id.r.ruid;
                ev->id.effective = pe.event_data.id.e.euid;
                ev->thread = ev->pid != ev->tgid;
                break;
        case PROC_EVENT_SID:
                ev->type = PN_EVENT_SID;
                ev->pid = pe.event_data.sid.process_pid;
                ev->tgid = pe.event_data.sid.process_tgid;
                ev->sid.sid = ev->tgid;
                break;
        case PROC_EVENT_PTRACE:
                ev->type = PN_EVENT_PTRACE;
                ev->pid = pe.event_data.ptrace.process_pid;
                ev->tgid = pe.event_data.ptrace.process_tgid;
                ev->ptrace.tracer_pid = pe.event_data.ptrace.tracer_pid;
                ev->ptrace.tracer_tgid = pe.event_data.ptrace.tracer_tgid;
                ev->thread = ev->pid != ev->tgid;
                break;
        case PROC_EVENT_COMM:
                ev->type = PN_EVENT_COMM;
                ev->pid = pe.event_data.comm.process_pid;
                ev->tgid = pe.event_data.comm.process_tgid;
                /* A name is any bytes the process chose: mapped here,
                 * where it enters, like every string read from /proc
                 * (procfs.c), so both sinks send the same valid text. */
                pn_utf8_sanitize(ret->comm, sizeof(ret->comm), pe.event_data.comm.comm,
                                 strnlen(pe.event_data.comm.comm, sizeof(pe.event_data.comm.comm) - 1));
                ev->comm = ret->comm;
                ev->thread = ev->pid != ev->tgid;
                break;
        case PROC_EVENT_COREDUMP:
                /* A process-level event: the kernel names the thread that
                 * took the signal, which may not be the main one. */
                ev->type = PN_EVENT_PREDUMP;
                ev->pid = pe.event_data.coredump.process_tgid;
                ev->tgid = pe.event_data.coredump.process_tgid;
                ev->ppid = pe.event_data.coredump.parent_tgid;
                ev->predump.tid = pe.event_data.coredump.process_pid;
                ev->predump.rss = -1;
                ev->predump.core_limit = PN_CORE_LIMIT_UNKNOWN;
                if (ev->predump.tid <= 0)
                        return -EBADMSG;
                break;
        case PROC_EVENT_EXIT:
                ev->type = PN_EVENT_EXIT;
                ev->pid = pe.event_data.exit.process_pid;
                ev->tgid = pe.event_data.exit.process_tgid;
                ev->ppid = pe.event_data.exit.parent_tgid;
                /* A raw wait status; exit_signal is what the parent gets, not
                 * what killed the process, so it is not used. */
                ev->exit.status = (int) pe.event_data.exit.exit_code;
                ev->thread = ev->pid != ev->tgid;
                break;
        default:
                return CNPROC_MSG_OTHER;
        }
        if (ev->pid <= 0 || ev->tgid <= 0)
                return -EBADMSG;
        return CNPROC_MSG_EVENT;
}

size_t cnproc_msg_build_mcast(void *buf, size_t size, uint32_t op, uint32_t events, uint32_t ack) {
        struct cn_msg *cn = buf;
        size_t len = events ? sizeof(struct proc_input) : sizeof(enum proc_cn_mcast_op);

        if (size < sizeof(*cn) + len)
                return 0;
        memset(buf, 0, sizeof(*cn) + len);
        cn->id.idx = CN_IDX_PROC;
        cn->id.val = CN_VAL_PROC;
        cn->ack = ack;
        cn->len = (uint16_t) len;
        if (events) {
                struct proc_input in = { .mcast_op = op, .event_type = events };
                memcpy(cn->data, &in, sizeof(in));
        } else {
                enum proc_cn_mcast_op o = op;
                memcpy(cn->data, &o, sizeof(o));
        }
        return sizeof(*cn) + len;
}
