/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target: the mapping of protocol/utf8.h on any bytes. Its output is
 * always valid (pn_utf8_is_valid), fits n * 3 + 1, maps to itself, equals
 * the input when the input was valid, and quotes in JSON as the raw input
 * does; pn_utf8_cut() never ends inside a character. */
#include <stdlib.h>
#include <string.h>

#include "protocol/jsonbuf.h"
#include "protocol/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > 4096)
                return 0;
        char *in = malloc(size + 1);
        char *out = malloc(size * PN_UTF8_MAX_GROWTH + 1);
        char *again = malloc(size * PN_UTF8_MAX_GROWTH + 1);
        if (!in || !out || !again)
                abort();
        memcpy(in, data, size);
        in[size] = 0;

        size_t n = pn_utf8_sanitize(out, size * PN_UTF8_MAX_GROWTH + 1, in, size);
        if (n > size * PN_UTF8_MAX_GROWTH || strlen(out) != n || !pn_utf8_is_valid(out, n))
                abort();
        if (pn_utf8_sanitize(again, n + 1, out, n) != n || memcmp(again, out, n) != 0)
                abort(); /* idempotent, and fits exactly */
        if (pn_utf8_is_valid(in, size) && (n != size || memcmp(in, out, n) != 0))
                abort(); /* a valid string is left as it is */

        /* The JSON writer follows the same rule (NUL aside: it escapes it). */
        if (!memchr(in, 0, size)) {
                JsonBuf a = JSONBUF_INIT, b = JSONBUF_INIT;
                jsonbuf_append_quoted(&a, in, size);
                jsonbuf_append_quoted(&b, out, n);
                size_t i = 0, j = 0;
                while (i < a.len && j < b.len) {
                        if (a.len - i >= 6 && memcmp(a.data + i, "\\ufffd", 6) == 0 &&
                            memcmp(b.data + j, PN_UTF8_REPLACEMENT, 3) == 0) {
                                i += 6;
                                j += 3;
                        } else if (a.data[i] == b.data[j]) {
                                i++;
                                j++;
                        } else
                                abort();
                }
                if (i != a.len || j != b.len)
                        abort();
                jsonbuf_deinit(&a);
                jsonbuf_deinit(&b);
        }

        /* Cuts of the mapped string end on character boundaries. */
        for (size_t max = 0; max <= n && max < 64; max++) {
                size_t c = pn_utf8_cut(out, max);
                if (c > max || !pn_utf8_is_valid(out, c) || (c < max && c < n && max - c >= 4))
                        abort();
        }
        size_t c = pn_utf8_cut(in, size);
        if (c > size)
                abort();

        free(in);
        free(out);
        free(again);
        return 0;
}
