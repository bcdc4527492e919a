/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target: the hook file parser (a file of hooks.d), on raw bytes as read
 * from disk. Every refusal must say why; what is accepted must be whole. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hooks/hook-file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        HookFile *h = NULL;
        HookFileError err;
        int r = hook_file_parse(&h, "fuzz", (const char *) data, size, NULL, &err);

        if (r == -EINVAL && !err.message[0])
                abort();
        if (r == 0) {
                if (!h || !h->argv || !h->argv[0] || h->argv[0][0] != '/' || !h->filter || !h->events)
                        abort();
                PnEvent ev = { .type = PN_EVENT_EXIT, .pid = 1, .tgid = 1, .uid = 0, .comm = "x" };
                (void) hook_file_match(h, &ev);
        }
        hook_file_free(h);
        return 0;
}
