/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The systemd unit of a cgroup path (proctable_unit_from_cgroup()): a pure
 * helper, so that every event can name the unit its process runs in.
 */
#include <string.h>

#include "common/macro.h"
#include "proctable.h"

const char *proctable_unit_from_cgroup(const char *cgroup, char *buf, size_t size) {
        static const char *const suffixes[] = { ".service", ".scope",  ".socket",    ".mount",
                                                ".swap",    ".target", ".automount", ".timer",
                                                ".path",    ".device" };
        const char *p = cgroup;

        while (p && *p) {
                while (*p == '/')
                        p++;
                size_t n = strcspn(p, "/");
                if (n == 0)
                        break;
                if (n >= 6 && strncmp(p + n - 6, ".slice", 6) == 0) {
                        p += n;
                        continue;
                }
                for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                        size_t s = strlen(suffixes[i]);
                        if (n > s && n < size && strncmp(p + n - s, suffixes[i], s) == 0) {
                                memcpy(buf, p, n);
                                buf[n] = 0;
                                return buf;
                        }
                }
                return NULL; /* the first non-slice component is not a unit */
        }
        return NULL;
}
