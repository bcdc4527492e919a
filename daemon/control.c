/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ControlSlot: the reply handle of a control request; see control.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "control.h"

struct ControlSlot {
        unsigned n_ref;
        ControlSlotOps ops;
        void *userdata;
        bool can_subscribe;
        bool completed;
        bool cancelled;
};

int control_slot_new(ControlSlot **ret, const ControlSlotOps *ops, void *userdata, bool can_subscribe) {
        ControlSlot *s = calloc(1, sizeof(*s));

        if (!s)
                return -ENOMEM;
        *s = (ControlSlot){ .n_ref = 1, .ops = *ops, .userdata = userdata, .can_subscribe = can_subscribe };
        *ret = s;
        return 0;
}

ControlSlot *control_slot_ref(ControlSlot *s) {
        if (s)
                s->n_ref++;
        return s;
}

ControlSlot *control_slot_unref(ControlSlot *s) {
        if (!s || --s->n_ref > 0)
                return NULL;
        if (s->ops.free)
                s->ops.free(s->userdata);
        free(s);
        return NULL;
}

bool control_slot_can_subscribe(const ControlSlot *s) {
        return s->can_subscribe;
}

int control_slot_subscribe(ControlSlot *s, Filter *f, uint64_t tag, uint64_t *ret_id) {
        if (control_slot_is_done(s) || !s->ops.subscribe) {
                filter_free(f);
                return -ECANCELED;
        }
        return s->ops.subscribe(s->userdata, f, tag, ret_id);
}

void control_slot_unsubscribe(ControlSlot *s, uint64_t tag) {
        if (!s->cancelled && s->ops.unsubscribe)
                s->ops.unsubscribe(s->userdata, tag);
}

void control_slot_complete(ControlSlot *s, const ControlResult *r) {
        if (control_slot_is_done(s))
                return;
        s->completed = true;
        s->ops.complete(s->userdata, r);
}

void control_slot_fail(ControlSlot *s, RequestOp op, const char *code, const char *fmt, ...) {
        ControlResult r = { .op = op, .error.code = code };
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(r.error.message, sizeof(r.error.message), fmt, ap);
        va_end(ap);
        control_slot_complete(s, &r);
}

void control_slot_cancel(ControlSlot *s) {
        if (s)
                s->cancelled = true;
}

bool control_slot_is_cancelled(const ControlSlot *s) {
        return s->cancelled;
}

bool control_slot_is_done(const ControlSlot *s) {
        return s->completed || s->cancelled;
}
