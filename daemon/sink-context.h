/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SinkContext: what every sink (JSON socket, D-Bus) needs from the broker,
 * without knowing the broker: the policy, the process tree for
 * descendants_of, identity for hello, kernel features and statistics. The broker owns
 * it and outlives every sink.
 */
#pragma once

#include "dispatcher.h"
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
        /* Walk every statistic of the broker and all its sinks. */
        void (*visit_stats)(void *userdata, const StatsVisitor *v);
        void *userdata;
} SinkContext;
