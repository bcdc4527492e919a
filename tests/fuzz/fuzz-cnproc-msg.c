/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target: a datagram from the proc connector socket, as the kernel (or
 * anyone able to send to it) could deliver it. */
#include <stdlib.h>
#include <string.h>

#include "daemon/cnproc-msg.h"
#include "protocol/utf8.h"

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
        /* A comm is mapped to valid UTF-8 (protocol/utf8.h): up to 15
         * bytes from the kernel, each of which may become U+FFFD. */
        if (r == CNPROC_MSG_EVENT &&
            (m.ev.pid <= 0 || m.ev.tgid <= 0 ||
             (m.ev.comm && (strnlen(m.ev.comm, PN_COMM_SIZE) == PN_COMM_SIZE ||
                            !pn_utf8_is_valid(m.ev.comm, strlen(m.ev.comm))))))
                abort();
        free(buf);
        return 0;
}
