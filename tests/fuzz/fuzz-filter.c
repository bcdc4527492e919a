/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target: the filter parser and matcher. The input is a JSON object
 * whose "events", "threads" and "match" members are handed to the filter
 * parser as a subscribe would; a parsed filter is then matched against an
 * event built from the rest of the input. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "protocol/filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool fake_descendant(void *userdata, pid_t tgid, pid_t ancestor) {
        (void) userdata;
        return tgid > ancestor && tgid % 7 == ancestor % 7;
}

static int fake_netns(const char *name, uint64_t *ret, void *userdata) {
        (void) userdata;
        if (name[0] == 'x')
                return -ENOENT;
        *ret = 4026531840u + (uint64_t) (strlen(name) % 3);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct json_tokener *tok = json_tokener_new_ex(16);
        struct json_object *root, *events = NULL, *threads = NULL, *match = NULL;
        char error[256];
        Filter *f = NULL;

        if (!tok)
                return 0;
        root = json_tokener_parse_ex(tok, (const char *) data, (int) size);
        json_tokener_free(tok);
        if (!root)
                return 0;
        if (json_object_is_type(root, json_type_object)) {
                json_object_object_get_ex(root, "events", &events);
                json_object_object_get_ex(root, "threads", &threads);
                json_object_object_get_ex(root, "match", &match);
        }
        if (filter_new_from_json(&f, events, threads, match, error, sizeof(error)) == 0 &&
            filter_resolve_netns(f, fake_netns, NULL, error, sizeof(error)) < 0 && !error[0])
                abort();
        if (f) {
                FilterContext ctx = { .is_descendant = fake_descendant };
                PnEvent ev = {
                        .type = (PnEventType) (size % _PN_EVENT_TYPE_MAX),
                        .pid = (pid_t) (size * 31 % 40000 + 1),
                        .tgid = (pid_t) (size % 40000 + 1),
                        .ppid = (pid_t) (size % 3),
                        .uid = (uint32_t) (size % 2 ? 1000 : UINT32_MAX),
                        .thread = size % 5 == 0,
                        .comm = size % 4 ? "bfdd" : NULL,
                        .exe = "/usr/sbin/bfdd",
                        .cgroup = "/system.slice/frr.service",
                        .unit = "frr.service",
                        .cmdline = size % 6 ? "/usr/sbin/bfdd -N blue" : NULL,
                        .netns = size % 3 ? 4026531840u + size % 4 : 0,
                };
                if (ev.type == PN_EVENT_EXIT)
                        pn_event_set_exit_status(&ev, size % 7 == 0 ? -1 : (int) (size % 0x10000));
                else if (ev.type == PN_EVENT_PREDUMP || ev.type == PN_EVENT_STOP)
                        ev.predump.signal = (int) (size % 65);
                (void) filter_match(f, &ev, &ctx);
                filter_free(f);
        } else if (!error[0])
                abort();
        json_object_put(root);
        return 0;
}
