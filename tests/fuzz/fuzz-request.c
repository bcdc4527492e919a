/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target: one client line through the request parser (and the filter
 * parser behind subscribe). Any input must give 0 or -EINVAL with a code,
 * never a crash, a leak or a read past the line. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/request.h"

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
        if (k == 0)
                request_done(&r);
        else if (k == -EINVAL && (!err.code || !err.message[0]))
                abort(); /* every refusal must say why */
        free(line);
        return 0;
}
