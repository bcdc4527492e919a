/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * json-c's object reference as a scope-bound cleanup type, declared once
 * for every part that holds one (the protocol code, the daemon's D-Bus
 * arguments, libprocnotify, procnotifyctl, the hook runner):
 * `_cleanup_(json_object_putp) struct json_object *o = NULL;`.
 */
#pragma once

#include <errno.h>
#include <json-c/json.h>

#include "common/macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct json_object *, json_object_put)

/* Add v as o's member key, or as a's last element. v is taken, also on
 * failure; a NULL v is an allocation that failed (json_object_new_*()), so
 * that a call can wrap the constructor. 0 or -ENOMEM. */
static inline int json_object_add_take(struct json_object *o, const char *key, struct json_object *v) {
        if (!o || !v || json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static inline int json_array_add_take(struct json_object *a, struct json_object *v) {
        if (!a || !v || json_object_array_add(a, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}
