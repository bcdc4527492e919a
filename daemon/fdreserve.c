/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The file descriptors kept for root; see fdreserve.h. */
#include <sys/resource.h>

#include "fdreserve.h"

static unsigned fd_limit = 1024;
static struct rlimit fd_limit_at_start = { .rlim_cur = RLIM_INFINITY, .rlim_max = RLIM_INFINITY };

unsigned fdreserve_init(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return fd_limit;
        fd_limit_at_start = rl;
        if (rl.rlim_cur < rl.rlim_max) {
                struct rlimit raised = { .rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max };
                if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
                        rl = raised;
        }
        /* Far beyond what a broker ever holds: no need to count higher. */
        fd_limit = rl.rlim_cur > (1u << 30) ? (1u << 30) : (unsigned) rl.rlim_cur;
        return fd_limit;
}

unsigned fdreserve_limit(void) {
        return fd_limit;
}

void fdreserve_restore_limit(void) {
        if (fd_limit_at_start.rlim_cur != RLIM_INFINITY)
                (void) setrlimit(RLIMIT_NOFILE, &fd_limit_at_start);
}

bool fdreserve_refuses(int fd, uid_t uid) {
        return uid != 0 && fd >= 0 && (unsigned) fd + FDRESERVE_SIZE >= fd_limit;
}
