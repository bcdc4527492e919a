/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target: the JSON writer and the client-side event decoder. The input
 * supplies an event's strings (any bytes: invalid UTF-8, control
 * characters); the encoded line must parse back, strictly and as UTF-8, to
 * the same numbers. Then the raw input goes through the decoder as a line a
 * broker could have sent. */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "protocol/event-json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct json_object *parse_strict(const char *s, size_t n) {
        struct json_tokener *tok = json_tokener_new_ex(16);
        struct json_object *o;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        o = json_tokener_parse_ex(tok, s, (int) n);
        json_tokener_free(tok);
        return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);
        JsonBuf b = JSONBUF_INIT;
        PnEvent ev, back;

        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = 0;
        memset(&ev, 0, sizeof(ev));
        ev.type = (PnEventType) (size % _PN_EVENT_TYPE_MAX);
        ev.seq = size + 1;
        ev.ts_ns = (uint64_t) size * 1000003u;
        ev.time_ns = 1700000000000000000ull + size;
        ev.pid = ev.tgid = (pid_t) (size + 1);
        ev.uid = (uint32_t) size;
        ev.comm = s;
        ev.exe = s + size / 2;
        ev.cmdline = s;
        ev.exit.status = (int) (size % 65536);
        event_json_format(&b, &ev);
        if (!jsonbuf_failed(&b)) {
                struct json_object *o = parse_strict(b.data, b.len);
                if (!o || b.data[b.len - 1] != '\n' || memchr(b.data, '\n', b.len - 1))
                        abort(); /* the writer must produce exactly one valid line */
                if (event_json_parse(o, &back) != 0 || back.seq != ev.seq ||
                    (ev.type != PN_EVENT_OVERRUN && back.pid != ev.pid))
                        abort();
                json_object_put(o);
        }
        jsonbuf_deinit(&b);

        struct json_object *o = parse_strict(s, size);
        if (o) {
                (void) event_json_parse(o, &back);
                json_object_put(o);
        }
        free(s);
        return 0;
}
