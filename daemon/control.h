/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ControlSlot: the reply handle of one control request (watch, unwatch,
 * run, children, kill) between the sink that received it and the part of
 * the broker that serves it (watch.c, supervisor.c), as dbus-broker's
 * ReplySlot.
 *
 * The sink makes a slot with its callbacks and hands it to
 * SinkControl.request. The op answers with a typed ControlResult (a
 * success, or a {code, message} error with the protocol's code), which the
 * sink encodes for its transport: no JSON between the two. An op that
 * cannot answer at once (run waits for its child to reach exec) keeps a
 * reference and completes the slot later, from an event of the loop.
 * While the request call runs, the op may give the requester a
 * subscription (control_slot_subscribe) or take one away; the sink counts
 * it against its limits. If the requester's connection goes first, the
 * sink cancels the slot: completing it then does nothing, and the op sees
 * control_slot_is_cancelled().
 *
 * Every slot is completed exactly once (the first completion wins) or
 * cancelled; ops answer through control_slot_complete() or
 * control_slot_fail().
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/macro.h"
#include "protocol/filter.h"
#include "protocol/reply.h"

typedef struct ControlSlot ControlSlot;

typedef struct ControlSlotOps {
        /* Add filter f (taken, also on failure) to the requester as a
         * subscription tagged tag (nonzero); its id in *ret_id. 0; a
         * positive SUBSCRIBER_E_* (subscriber.h: no room after all, a
         * limit; the sink has told the requester); or a negative errno. */
        int (*subscribe)(void *userdata, Filter *f, uint64_t tag, uint64_t *ret_id);
        /* Remove the requester's subscriptions tagged tag. */
        void (*unsubscribe)(void *userdata, uint64_t tag);
        /* The answer; r and what it points to are borrowed for the call. */
        void (*complete)(void *userdata, const ControlResult *r);
        /* The slot is gone (after completion or cancellation): release
         * userdata. May be NULL. */
        void (*free)(void *userdata);
} ControlSlotOps;

/*
 * A slot with one reference (the sink's). can_subscribe: whether the
 * requester has room for one more subscription (an op that would need one
 * refuses with limit-exceeded otherwise). 0 or -ENOMEM.
 */
int control_slot_new(ControlSlot **ret, const ControlSlotOps *ops, void *userdata, bool can_subscribe);
ControlSlot *control_slot_ref(ControlSlot *s);
/* Drop a reference; the last one calls ops->free. Accepts NULL. */
ControlSlot *control_slot_unref(ControlSlot *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(ControlSlot *, control_slot_unref)

bool control_slot_can_subscribe(const ControlSlot *s);
/* See ControlSlotOps.subscribe; -ECANCELED once cancelled or completed (f is freed). */
int control_slot_subscribe(ControlSlot *s, Filter *f, uint64_t tag, uint64_t *ret_id);
void control_slot_unsubscribe(ControlSlot *s, uint64_t tag);

/* Answer with r (r->op set; r->error.code NULL for a success). Does nothing
 * once cancelled or completed. */
void control_slot_complete(ControlSlot *s, const ControlResult *r);
/* Answer with the error code (PN_ERR_*) and a formatted message. */
_printf_(4, 5) void control_slot_fail(ControlSlot *s, RequestOp op, const char *code, const char *fmt, ...);

/* The requester is gone (sink side): the callbacks are never called again. */
void control_slot_cancel(ControlSlot *s);
bool control_slot_is_cancelled(const ControlSlot *s);
/* Completed or cancelled: nothing more is expected of the op. */
bool control_slot_is_done(const ControlSlot *s);
