/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ctl-status: procnotifyctl's renderings of the broker's status reply (the
 * JSON "status" object, or D-Bus GetStatistics turned into the same JSON):
 * a table for people, and the Prometheus text exposition format for
 * node_exporter's textfile collector. Pure: JSON in, text out, no I/O but
 * the FILE given. Both walk the reply generically, so that statistics a
 * newer broker adds are shown without a change here.
 */
#pragma once

#include <stdio.h>

struct json_object;

/* A table: a heading line (version, instance, uptime, last seq), the kernel
 * features, one "lost" total with each part below it (every member named
 * "lost" or ending in "_lost", by its path), then each section with its
 * values in human units (durations from *_ns, sizes from *_bytes and
 * receive_buffer, counts with thousands separators). Strings are printed
 * with control characters replaced. Returns 0, or -EINVAL if status is not
 * a JSON object. */
int ctl_status_print_table(FILE *f, struct json_object *status);

/* The Prometheus text format (version 0.0.4, which OpenMetrics parsers also
 * read): procnotify_build_info{version,instance_id} 1, procnotify_uptime_seconds,
 * procnotify_kernel_feature{feature} 0/1, procnotify_events_total{type},
 * and procnotify_SECTION_KEY for every other number or boolean: a gauge for
 * the current sizes (clients, subscriptions, entries, …), a counter with
 * "_total" for the rest; *_ns values in seconds. Every family has # HELP and
 * # TYPE. Returns 0, or -EINVAL if status is not a JSON object. */
int ctl_status_print_openmetrics(FILE *f, struct json_object *status);
