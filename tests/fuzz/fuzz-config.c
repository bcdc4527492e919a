/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target: the configuration file parser. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Config *c = NULL;
        char error[512] = "";
        char *text = malloc(size + 1);

        if (!text || config_new(&c) < 0) {
                free(text);
                return 0;
        }
        memcpy(text, data, size);
        text[size] = 0;
        if (config_parse_string(c, text, error, sizeof(error)) == -EINVAL && !error[0])
                abort();
        config_free(c);
        free(text);
        return 0;
}
