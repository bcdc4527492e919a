/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target: /proc/PID/stat parsing (a process controls its comm, which
 * sits in the middle of that line and may hold spaces and parentheses). */
#include <stdlib.h>
#include <string.h>

#include "daemon/procfs.h"
#include "protocol/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ProcInfo info = { 0 };
        char *buf = malloc(size + 1);
        if (!buf)
                return 0;
        memcpy(buf, data, size);
        buf[size] = 0;
        /* A comm is mapped to valid UTF-8 (protocol/utf8.h): up to 15
         * bytes of the line, each of which may become U+FFFD. */
        if (procfs_parse_stat(buf, size, &info) == 0 &&
            (strnlen(info.comm, PN_COMM_SIZE) == PN_COMM_SIZE ||
             !pn_utf8_is_valid(info.comm, strlen(info.comm))))
                abort();
        proc_info_done(&info);
        free(buf);
        return 0;
}
