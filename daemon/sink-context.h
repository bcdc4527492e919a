/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SinkContext: what every sink (JSON socket, D-Bus) needs from the broker,
 * without knowing the broker: the policy, the process tree for
 * descendants_of, identity for hello, kernel features and statistics. The broker owns
 * it and outlives every sink.
 */
#pragma once

#include "dispatcher.h"
#include "follow.h"
#include "policy.h"
#include "stats.h"
#include "protocol/filter.h"
#include "protocol/jsonbuf.h"

typedef struct SinkContext {
        const Policy *policy;
        FilterContext filter;      /* descendants_of through the process table */
        Dispatcher *dispatcher;    /* for the current seq */
        const char *version;
        const char *boot_id;
        const char *instance_id;
        const KernelFeatures *features;
        /* A new follow of process pid (subscribe "follow"), seeded with its
         * descendants from the process table, and pid's uid for the policy
         * check. 0, -ESRCH if the broker knows no such process, -ENOMEM. */
        int (*follow_new)(void *userdata, pid_t pid, Follow **ret, uint32_t *ret_uid);
        /* Walk every statistic of the broker and all its sinks. */
        void (*visit_stats)(void *userdata, const StatsVisitor *v);
        void *userdata;
} SinkContext;
