/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target: one client line through the request parser (and the filter
 * parser behind subscribe). Any input must give 0 or -EINVAL with a code
 * and a message that is valid UTF-8 (it may go back over D-Bus), never a
 * crash, a leak or a read past the line; an accepted request holds only
 * valid text (protocol/utf8.h), member names included. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "protocol/request.h"
#include "protocol/utf8.h"

static bool all_text(struct json_object *o) {
        if (json_object_is_type(o, json_type_string))
                return pn_utf8_is_valid(json_object_get_string(o), (size_t) json_object_get_string_len(o));
        if (json_object_is_type(o, json_type_array)) {
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        if (!all_text(json_object_array_get_idx(o, i)))
                                return false;
        } else if (json_object_is_type(o, json_type_object)) {
                json_object_object_foreach(o, key, val)
                        if (!pn_utf8_is_valid(key, strlen(key)) || !all_text(val))
                                return false;
        }
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Request r;
        ProtoError err;
        /* A private copy, so the sanitizer sees reads past the end. */
        char *line = malloc(size ? size : 1);
        if (!line)
                return 0;
        memcpy(line, data, size);
        int k = request_parse(&r, line, size, &err);
        if (k == 0) {
                if (!all_text(r.root))
                        abort();
                request_done(&r);
        } else if (k == -EINVAL && (!err.code || !err.message[0] ||
                                    !pn_utf8_is_valid(err.message, strlen(err.message))))
                abort(); /* every refusal must say why, in text */
        free(line);
        return 0;
}
