/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * json-c's object reference as a scope-bound cleanup type, declared once
 * for every part that holds one (the protocol code, the daemon's D-Bus
 * arguments, libprocnotify, procnotifyctl, the hook runner):
 * `_cleanup_(json_object_putp) struct json_object *o = NULL;`.
 */
#pragma once

#include <json-c/json.h>

#include "common/macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct json_object *, json_object_put)
