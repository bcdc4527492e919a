/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The broker's privilege drop: once everything that needs more is set up,
 * keep only the capabilities caps_needed() names (caps.c does the work).
 */
#include "broker-internal.h"
#include "common/log.h"

/*
 * Everything that needs more than the broker keeps is done (the sockets are
 * bound, the bus connected, the connector subscribed): keep only what
 * caps_needed() says, and stay uid 0 (see caps.h, README "Least privilege").
 * Failing to drop is fatal: never serve with more than documented.
 */
int broker_drop_privileges(Broker *b) {
        CapMask want = caps_needed(b->config);
        CapState st;
        char names[256];
        int r;

        r = caps_drop_to(want);
        if (r < 0)
                return log_error_errno(r, "Failed to drop capabilities: %m");
        r = caps_get_state(&st);
        if (r < 0)
                return log_error_errno(r, "Failed to read our capabilities: %m");
        b->caps = st.effective;
        if (want & ~st.effective) {
                caps_format(want & ~st.effective, names, sizeof(names));
                log_warning("Started without %s: features that need it will fail.", names);
        }
        caps_format(st.effective, names, sizeof(names));
        log_info("Keeping capabilities %s; every other capability dropped%s.", names,
                 st.bounding & ~st.effective ? " (the bounding set could not be narrowed)"
                                             : ", bounding set too");
        return 0;
}
