/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target: a datagram from the proc connector socket, as the kernel (or
 * anyone able to send to it) could deliver it. */
#include <stdlib.h>
#include <string.h>

#include "daemon/cnproc-msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        CnprocMsg m;
        /* A private copy of exactly size bytes (malloc aligns like the
         * daemon's receive buffers), so the sanitizer sees any read past it. */
        void *buf = malloc(size ? size : 1);
        if (!buf)
                return 0;
        memcpy(buf, data, size);
        int r = cnproc_msg_parse(buf, size, &m);
        if (r == CNPROC_MSG_EVENT && (m.ev.pid <= 0 || m.ev.tgid <= 0 ||
                                      (m.ev.comm && strnlen(m.ev.comm, 16) == 16)))
                abort();
        free(buf);
        return 0;
}
