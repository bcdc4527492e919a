/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * StatsVisitor: how the broker's statistics are told to whoever shows them,
 * without either knowing the other's format. The broker walks its figures
 * (and asks each sink for its own) through the visitor; the JSON socket
 * writes them as a "status" object, D-Bus as a{sv}. Values are grouped in
 * named sections; sections do not nest. sees_all is the viewer's: false
 * for one that policy shows only its own processes, which is then shown no
 * figure about other users' processes (PROTOCOL.md, "status").
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct StatsVisitor {
        void (*section_begin)(void *userdata, const char *name);
        void (*section_end)(void *userdata);
        void (*value_uint)(void *userdata, const char *key, uint64_t value);
        void (*value_bool)(void *userdata, const char *key, bool value);
        void (*value_str)(void *userdata, const char *key, const char *value);
        void *userdata;
        bool sees_all;
} StatsVisitor;

static inline void stats_section_begin(const StatsVisitor *v, const char *name) {
        v->section_begin(v->userdata, name);
}
static inline void stats_section_end(const StatsVisitor *v) {
        v->section_end(v->userdata);
}
static inline void stats_uint(const StatsVisitor *v, const char *key, uint64_t value) {
        v->value_uint(v->userdata, key, value);
}
static inline void stats_bool(const StatsVisitor *v, const char *key, bool value) {
        v->value_bool(v->userdata, key, value);
}
static inline void stats_str(const StatsVisitor *v, const char *key, const char *value) {
        v->value_str(v->userdata, key, value);
}

/* What the kernel offers, probed at start. */
typedef struct KernelFeatures {
        bool connector_filter; /* per-listener event filter (Linux 6.6) */
        bool pidfd;            /* pidfd_open (Linux 5.3) */
        bool pidfd_info;       /* PIDFD_GET_INFO (Linux 6.13) */
        bool peer_pidfd;       /* SO_PEERPIDFD (Linux 6.5) */
} KernelFeatures;

/* Visit the features as values of the current section. */
static inline void stats_kernel_features(const StatsVisitor *v, const KernelFeatures *f) {
        stats_bool(v, "connector_filter", f->connector_filter);
        stats_bool(v, "pidfd", f->pidfd);
        stats_bool(v, "pidfd_info", f->pidfd_info);
        stats_bool(v, "peer_pidfd", f->peer_pidfd);
}
