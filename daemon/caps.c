/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Caps: the capability set the broker keeps after start-up, computed from
 * the configuration, and the drop to it (libcap-ng); see caps.h.
 */
#include <cap-ng.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#include <linux/capability.h>
#include <linux/securebits.h>

#include "caps.h"
#include "common/macro.h"

CapMask caps_needed(const Config *c) {
        CapMask m = CAP_MASK(CAP_NET_ADMIN) | CAP_MASK(CAP_SYS_PTRACE) | CAP_MASK(CAP_KILL);

        /* Children run as the user who asked (supervisor.c): setresuid and
         * setresgid, and emptying their bounding set before exec (spawn.c). */
        if (c->run_enabled)
                m |= CAP_MASK(CAP_SETUID) | CAP_MASK(CAP_SETGID) | CAP_MASK(CAP_SETPCAP);
        return m;
}

void caps_format(CapMask m, char *buf, size_t size) {
        size_t len = 0;

        if (size == 0)
                return;
        buf[0] = 0;
        for (unsigned cap = 0; cap < 64; cap++) {
                char name[32];
                if (!(m & CAP_MASK(cap)))
                        continue;
                const char *n = cap <= CAP_LAST_CAP ? capng_capability_to_name(cap) : NULL;
                if (n)
                        snprintf(name, sizeof(name), "cap_%s", n);
                else
                        snprintf(name, sizeof(name), "cap_%u", cap);
                int k = snprintf(buf + len, size - len, "%s%s", len ? " " : "", name);
                if (k < 0 || (size_t) k >= size - len) {
                        buf[size - 1] = 0;
                        return;
                }
                len += (size_t) k;
        }
        if (len == 0)
                snprintf(buf, size, "none");
}

static unsigned caps_last(void) {
        /* The running kernel may know more capabilities than our headers. */
        FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
        unsigned last = CAP_LAST_CAP;
        if (f) {
                if (fscanf(f, "%u", &last) != 1 || last > 63)
                        last = CAP_LAST_CAP;
                fclose(f);
        }
        return last;
}

int caps_get_state(CapState *ret) {
        static const struct {
                capng_type_t type;
                size_t offset;
        } sets[] = {
                { CAPNG_EFFECTIVE, offsetof(CapState, effective) },
                { CAPNG_PERMITTED, offsetof(CapState, permitted) },
                { CAPNG_INHERITABLE, offsetof(CapState, inheritable) },
                { CAPNG_BOUNDING_SET, offsetof(CapState, bounding) },
                { CAPNG_AMBIENT, offsetof(CapState, ambient) },
        };
        CapState s = {};
        unsigned last = caps_last();

        if (capng_get_caps_process() < 0)
                return -EIO;
        for (size_t i = 0; i < ELEMENTSOF(sets); i++) {
                CapMask *m = (CapMask *) ((char *) &s + sets[i].offset);
                for (unsigned cap = 0; cap <= last; cap++)
                        if (capng_have_capability(sets[i].type, cap))
                                *m |= CAP_MASK(cap);
        }
        *ret = s;
        return 0;
}

int caps_drop_to(CapMask keep) {
        CapState now;
        unsigned last = caps_last();
        int r;

        r = caps_get_state(&now);
        if (r < 0)
                return r;
        keep &= now.permitted;

        if (now.effective & CAP_MASK(CAP_SETPCAP)) {
                /* While CAP_SETPCAP is still there: lock uid 0 out of
                 * gaining capabilities on exec, then narrow the bounding
                 * set. Not no-setuid-fixup: a child that drops to a user
                 * must lose its capabilities with setresuid(), as usual. */
                int bits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
                if (bits < 0 ||
                    prctl(PR_SET_SECUREBITS, bits | SECBIT_NOROOT | SECBIT_NOROOT_LOCKED, 0, 0, 0) < 0)
                        return -errno;
                for (unsigned cap = 0; cap <= last; cap++)
                        if (!(keep & CAP_MASK(cap)) && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) > 0 &&
                            prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
                                return -errno;
        }
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return -errno;

        capng_clear(CAPNG_SELECT_CAPS);
        for (unsigned cap = 0; cap <= last; cap++)
                if ((keep & CAP_MASK(cap)) &&
                    capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, cap) < 0)
                        return -EINVAL;
        if (capng_apply(CAPNG_SELECT_CAPS) < 0)
                return -EPERM;
        return 0;
}
