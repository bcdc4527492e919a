/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Broker-to-client messages other than events: hello, subscribed,
 * unsubscribed, pong and error (PROTOCOL.md). Each writes one line with its
 * trailing newline. Pure.
 */
#pragma once

#include <stdint.h>

#include "jsonbuf.h"
#include "request.h"

typedef struct HelloInfo {
        const char *version;     /* broker version */
        const char *boot_id;     /* /proc/sys/kernel/random/boot_id */
        const char *instance_id; /* random per broker start: tells a restart */
        uint64_t seq;            /* seq of the last event sent so far */
        uint32_t uid;            /* the client's uid, as the kernel told the broker */
        pid_t pid;               /* the client's pid, as the kernel told the broker */
        bool sees_all;           /* whether policy shows this client every process */
} HelloInfo;

void reply_hello(JsonBuf *b, const HelloInfo *info);
void reply_subscribed(JsonBuf *b, uint64_t id);
void reply_unsubscribed(JsonBuf *b, uint64_t id);
void reply_pong(JsonBuf *b, uint64_t seq);
void reply_error(JsonBuf *b, const char *code, const char *message);

/* One supervised child, as "children" lists it. */
typedef struct ControlChild {
        pid_t pid;
        const char *name;
        uint32_t uid;           /* UINT32_MAX: not known (null) */
        bool stopped;
        bool adopted;
        uint32_t requester_uid; /* UINT32_MAX: none (null), for an adopted orphan */
        const char *command;    /* NULL: not known (null) */
        uint64_t started_ns;    /* CLOCK_REALTIME */
} ControlChild;

/*
 * The typed answer of a control op (watch, unwatch, run, children, kill):
 * an error (error.code one of PN_ERR_*, with its message) or the result of
 * op. Pointers are borrowed. Each sink encodes it for its transport; the
 * JSON socket with reply_control().
 */
typedef struct ControlResult {
        RequestOp op;
        ProtoError error;       /* code NULL: success */
        union {
                struct {
                        pid_t pid;
                        uint64_t id;          /* of the subscription that delivers its events */
                        const char *comm;     /* NULL: not known */
                        uint32_t uid;
                        bool stop;
                        bool traced;          /* threads and stopped are known */
                        uint64_t threads;
                        bool stopped;
                } watching;
                struct {
                        pid_t pid;
                } unwatched;
                struct {
                        pid_t pid;
                        const char *name;
                        uint32_t uid;
                        const char *output;   /* "journal", "null" or a path */
                } running;
                struct {
                        const ControlChild *list;
                        size_t n;
                } children;
                struct {
                        int signal;
                        const pid_t *pids;
                        size_t n;
                } killed;
        };
} ControlResult;

/* The reply line of r: "error", "watching", "unwatched", "running",
 * "children" or "killed" (PROTOCOL.md). */
void reply_control(JsonBuf *b, const ControlResult *r);

typedef struct FollowReport {
        uint64_t id;            /* the subscription */
        const char *reason;     /* "main-exited", "ended", "limit" */
        pid_t main_pid;         /* the service's main process now; 0: it ended */
        pid_t previous_main_pid;
        uint64_t candidates;    /* members that could have become the main */
        uint64_t members;       /* processes followed now */
        uint64_t cause_seq;     /* seq of the event that caused this report */
        uint64_t ts_ns;         /* … and its time */
        uint64_t time_ns;
} FollowReport;

/* {"type":"follow",…}: what happened to a followed service (PROTOCOL.md).
 * Shaped like an event (ts_ns and time, of its cause) so that clients that
 * tell events from replies by ts_ns take it for one; it has no seq. */
void reply_follow(JsonBuf *b, const FollowReport *f);

/* {"type":"signal-withheld",…}: a signal this connection asked for was not
 * sent to its process pid, because its own kill() could not have sent it
 * (PROTOCOL.md, "Signals"). Shaped like reply_follow(): ts_ns and time of
 * the event that caused it (seq cause_seq), no seq of its own. */
void reply_signal_withheld(JsonBuf *b, int signal, pid_t pid, uint64_t cause_seq, uint64_t ts_ns,
                           uint64_t time_ns);

/* {"type":"watch-ended",…}: the watch of pid, delivered by subscription id,
 * ended for reason (PROTOCOL.md, "watch"), at ts_ns / time_ns. */
void reply_watch_ended(JsonBuf *b, uint64_t id, pid_t pid, const char *reason, uint64_t ts_ns,
                       uint64_t time_ns);
