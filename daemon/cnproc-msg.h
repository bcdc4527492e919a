/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Parsing and building of proc connector messages (netlink + cn_msg +
 * proc_event). Pure: the socket lives in source-cnproc.c. Exported for unit
 * tests and the fuzzer.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "procnotify/event.h"
#include "protocol/utf8.h"

typedef struct CnprocMsg {
        uint32_t seq;      /* cn_msg.seq: per-CPU counter of the kernel */
        uint32_t cpu;
        uint32_t ack;
        uint32_t ack_err;  /* for CNPROC_MSG_ACK */
        PnEvent ev;        /* for CNPROC_MSG_EVENT; ev.comm points into comm */
        char comm[PN_COMM_SIZE]; /* the kernel's comm, mapped by pn_utf8_sanitize() */
} CnprocMsg;

enum {
        CNPROC_MSG_EVENT = 0, /* ev is filled */
        CNPROC_MSG_ACK = 1,   /* reply to a subscription request */
        CNPROC_MSG_OTHER = 2, /* not for us (another connector, netlink control) */
};

/*
 * Parse the first connector message in a datagram of len bytes.
 * Returns CNPROC_MSG_* or -EBADMSG when the datagram is truncated or
 * malformed.
 */
int cnproc_msg_parse(const void *buf, size_t len, CnprocMsg *ret);

/*
 * Build the cn_msg payload of a subscription request (without the netlink
 * header): the 8-byte struct proc_input when events != 0 (Linux 6.6+), else
 * the legacy 4-byte op. Returns the payload length written into buf.
 */
size_t cnproc_msg_build_mcast(void *buf, size_t size, uint32_t op, uint32_t events, uint32_t ack);
