/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ctl-status implementation; see ctl-status.h. */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/macro.h"
#include "ctl-status.h"

/* Members of the heading, shown there and not again. */
static const char *const heading_keys[] = { "type", "version", "instance_id", "uptime_ns", "seq",
                                            "kernel_features" };

/* Leaves that are current sizes, not counts of things that happened. */
static const char *const gauge_keys[] = { "clients", "subscriptions", "entries", "active",
                                          "processes", "traced_processes", "traced_threads",
                                          "children", "receive_buffer", "events_queued", "enabled", "queued", "queued_bytes",
                                          "connected", "subscribers", "watches" };

static bool in_list(const char *s, const char *const *list, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (streq(s, list[i]))
                        return true;
        return false;
}

static bool ends_with(const char *s, const char *suffix) {
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && streq(s + a - b, suffix);
}

static bool is_heading_key(const char *key) {
        return in_list(key, heading_keys, ELEMENTSOF(heading_keys));
}

static bool is_lost_key(const char *key) {
        return streq(key, "lost") || ends_with(key, "_lost");
}

static bool is_number(struct json_object *v) {
        return json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double);
}

/* Text for a terminal: control characters (C0, DEL, C1) as '?'. */
static void put_printable(FILE *f, const char *s) {
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if (*p < 0x20 || *p == 0x7f)
                        fputc('?', f);
                else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
                        fputc('?', f);
                        p++;
                } else
                        fputc(*p, f);
        }
}

/* 1234567 -> "1,234,567". */
static const char *format_count(char buf[static 32], int64_t v) {
        char digits[24];
        size_t n, out = 0;
        bool neg = v < 0;
        uint64_t u = neg ? (uint64_t) 0 - (uint64_t) v : (uint64_t) v;

        n = (size_t) snprintf(digits, sizeof(digits), "%" PRIu64, u);
        if (neg)
                buf[out++] = '-';
        for (size_t i = 0; i < n; i++) {
                if (i > 0 && (n - i) % 3 == 0)
                        buf[out++] = ',';
                buf[out++] = digits[i];
        }
        buf[out] = 0;
        return buf;
}

/* Nanoseconds as "812 ns", "3.2 ms", "4.1 s", "3 min 12 s", "2 h 5 min", "3 d 4 h". */
static const char *format_duration(char buf[static 32], int64_t ns) {
        uint64_t s;

        if (ns < 0)
                snprintf(buf, 32, "%" PRId64 " ns", ns);
        else if (ns < 1000)
                snprintf(buf, 32, "%" PRId64 " ns", ns);
        else if (ns < 1000000)
                snprintf(buf, 32, "%.1f µs", (double) ns / 1e3);
        else if (ns < 1000000000)
                snprintf(buf, 32, "%.1f ms", (double) ns / 1e6);
        else if (ns < 60 * (int64_t) 1000000000)
                snprintf(buf, 32, "%.1f s", (double) ns / 1e9);
        else {
                s = (uint64_t) ns / 1000000000u;
                if (s < 3600)
                        snprintf(buf, 32, "%" PRIu64 " min %" PRIu64 " s", s / 60, s % 60);
                else if (s < 86400)
                        snprintf(buf, 32, "%" PRIu64 " h %" PRIu64 " min", s / 3600, s % 3600 / 60);
                else
                        snprintf(buf, 32, "%" PRIu64 " d %" PRIu64 " h", s / 86400, s % 86400 / 3600);
        }
        return buf;
}

/* Bytes in IEC units: "512 B", "64.0 KiB", "256 MiB". */
static const char *format_bytes(char buf[static 32], int64_t v) {
        static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
        double d = (double) v;
        size_t i = 0;

        if (v < 1024) {
                snprintf(buf, 32, "%" PRId64 " B", v);
                return buf;
        }
        d /= 1024;
        while (d >= 1024 && i + 1 < ELEMENTSOF(units)) {
                d /= 1024;
                i++;
        }
        if (d == (double) (int64_t) d)
                snprintf(buf, 32, "%.0f %s", d, units[i]);
        else
                snprintf(buf, 32, "%.1f %s", d, units[i]);
        return buf;
}

static bool is_bytes_key(const char *key) {
        return ends_with(key, "_bytes") || ends_with(key, "buffer");
}

static void print_value(FILE *f, const char *key, struct json_object *v) {
        char buf[32];

        switch (json_object_get_type(v)) {
        case json_type_boolean:
                fputs(json_object_get_boolean(v) ? "yes" : "no", f);
                break;
        case json_type_int:
                if (ends_with(key, "_ns"))
                        fputs(format_duration(buf, json_object_get_int64(v)), f);
                else if (is_bytes_key(key))
                        fputs(format_bytes(buf, json_object_get_int64(v)), f);
                else
                        fputs(format_count(buf, json_object_get_int64(v)), f);
                break;
        case json_type_double:
                fprintf(f, "%.3g", json_object_get_double(v));
                break;
        case json_type_string:
                put_printable(f, json_object_get_string(v));
                break;
        case json_type_null:
                fputs("-", f);
                break;
        default:
                /* An array: its scalars, comma-separated. */
                if (json_object_is_type(v, json_type_array)) {
                        size_t n = json_object_array_length(v);
                        for (size_t i = 0; i < n; i++) {
                                struct json_object *e = json_object_array_get_idx(v, i);
                                if (i)
                                        fputs(", ", f);
                                if (json_object_is_type(e, json_type_object) ||
                                    json_object_is_type(e, json_type_array))
                                        fputs("…", f);
                                else
                                        print_value(f, key, e);
                        }
                        if (n == 0)
                                fputs("-", f);
                }
                break;
        }
}

/* "process_table" -> "Process table". */
static void print_title(FILE *f, const char *key) {
        for (const char *p = key; *p; p++) {
                char ch = *p == '_' ? ' ' : *p;
                if (p == key && ch >= 'a' && ch <= 'z')
                        ch = (char) (ch - 'a' + 'A');
                if ((unsigned char) ch < 0x20 || ch == 0x7f)
                        ch = '?';
                fputc(ch, f);
        }
}

static void print_members(FILE *f, struct json_object *obj, int indent) {
        json_object_object_foreach(obj, key, v) {
                if (json_object_is_type(v, json_type_object)) {
                        fprintf(f, "%*s", indent, "");
                        print_title(f, key);
                        fputs(":\n", f);
                        print_members(f, v, indent + 2);
                        continue;
                }
                fprintf(f, "%*s", indent, "");
                put_printable(f, key);
                int pad = 30 - indent - (int) strlen(key);
                fprintf(f, "%*s ", pad > 0 ? pad : 0, "");
                print_value(f, key, v);
                fputc('\n', f);
        }
}

typedef struct LostPart {
        char path[128];
        int64_t value;
} LostPart;

/* Every "lost" or "*_lost" number, by its path ("connector.lost"). */
static void collect_lost(struct json_object *obj, const char *prefix, LostPart *parts, size_t max,
                         size_t *n) {
        json_object_object_foreach(obj, key, v) {
                char path[128];
                snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "", key);
                if (json_object_is_type(v, json_type_object))
                        collect_lost(v, path, parts, max, n);
                else if (is_lost_key(key) && json_object_is_type(v, json_type_int) && *n < max) {
                        snprintf(parts[*n].path, sizeof(parts[*n].path), "%s", path);
                        parts[*n].value = json_object_get_int64(v);
                        (*n)++;
                }
        }
}

int ctl_status_print_table(FILE *f, struct json_object *status) {
        struct json_object *v, *features;
        LostPart parts[32];
        size_t n_parts = 0;
        int64_t total = 0;
        char buf[32];

        if (!json_object_is_type(status, json_type_object))
                return -EINVAL;

        fputs("procnotifyd", f);
        if (json_object_object_get_ex(status, "version", &v)) {
                fputc(' ', f);
                print_value(f, "version", v);
        }
        if (json_object_object_get_ex(status, "instance_id", &v)) {
                fputs(" (instance ", f);
                print_value(f, "instance_id", v);
                fputc(')', f);
        }
        if (json_object_object_get_ex(status, "uptime_ns", &v) && json_object_is_type(v, json_type_int))
                fprintf(f, ", up %s", format_duration(buf, json_object_get_int64(v)));
        if (json_object_object_get_ex(status, "seq", &v) && json_object_is_type(v, json_type_int))
                fprintf(f, ", last seq %s", format_count(buf, json_object_get_int64(v)));
        fputc('\n', f);

        if (json_object_object_get_ex(status, "kernel_features", &features) &&
            json_object_is_type(features, json_type_object)) {
                bool first = true;
                fputs("Kernel features:", f);
                json_object_object_foreach(features, key, fv) {
                        fputs(first ? " " : ", ", f);
                        first = false;
                        put_printable(f, key);
                        fputc(' ', f);
                        print_value(f, key, fv);
                }
                fputc('\n', f);
        }

        collect_lost(status, "", parts, ELEMENTSOF(parts), &n_parts);
        for (size_t i = 0; i < n_parts; i++)
                total += parts[i].value;
        fprintf(f, "\nLost events: %s\n", format_count(buf, total));
        for (size_t i = 0; i < n_parts; i++) {
                fputs("  ", f);
                put_printable(f, parts[i].path);
                int pad = 28 - (int) strlen(parts[i].path);
                fprintf(f, "%*s %s\n", pad > 0 ? pad : 0, "", format_count(buf, parts[i].value));
        }

        json_object_object_foreach(status, key, sv) {
                if (is_heading_key(key))
                        continue;
                fputc('\n', f);
                if (json_object_is_type(sv, json_type_object)) {
                        print_title(f, key);
                        fputs(":\n", f);
                        print_members(f, sv, 2);
                } else {
                        put_printable(f, key);
                        fputs(": ", f);
                        print_value(f, key, sv);
                        fputc('\n', f);
                }
        }
        return 0;
}

/* --- the Prometheus text format --- */

/* A metric name part: [a-zA-Z0-9_] kept, anything else '_'. */
static void put_name_part(FILE *f, const char *s) {
        for (const char *p = s; *p; p++) {
                char ch = *p;
                bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                          (ch >= '0' && ch <= '9') || ch == '_';
                fputc(ok ? ch : '_', f);
        }
}

/* A label value: backslash, double quote and newline escaped; other
 * control characters dropped. */
static void put_label_value(FILE *f, const char *s) {
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if (*p == '\\')
                        fputs("\\\\", f);
                else if (*p == '"')
                        fputs("\\\"", f);
                else if (*p == '\n')
                        fputs("\\n", f);
                else if (*p >= 0x20 && *p != 0x7f)
                        fputc(*p, f);
        }
}

static double metric_value(const char *key, struct json_object *v) {
        double d = json_object_is_type(v, json_type_boolean) ? (json_object_get_boolean(v) ? 1 : 0)
                   : json_object_is_type(v, json_type_int)   ? (double) json_object_get_int64(v)
                                                             : json_object_get_double(v);
        return ends_with(key, "_ns") ? d / 1e9 : d;
}

/* One family of one sample: procnotify_PATH[_seconds][_total]. */
static void put_leaf(FILE *f, const char *path, const char *key, struct json_object *v) {
        bool gauge = json_object_is_type(v, json_type_boolean) ||
                     in_list(key, gauge_keys, ELEMENTSOF(gauge_keys));
        char name[256];
        size_t len;

        len = strlen(path);
        if (ends_with(path, "_ns"))
                len -= 3;
        snprintf(name, sizeof(name), "%.*s%s%s", (int) len, path,
                 ends_with(path, "_ns")                             ? "_seconds"
                 : is_bytes_key(key) && !ends_with(key, "_bytes") ? "_bytes"
                                                                    : "",
                 gauge || ends_with(path, "_total") ? "" : "_total");

        fputs("# HELP procnotify_", f);
        put_name_part(f, name);
        fputs(" procnotifyd status: ", f);
        put_label_value(f, path);
        fputs("\n# TYPE procnotify_", f);
        put_name_part(f, name);
        fprintf(f, " %s\nprocnotify_", gauge ? "gauge" : "counter");
        put_name_part(f, name);
        fprintf(f, " %.17g\n", metric_value(key, v));
}

static void put_section(FILE *f, const char *prefix, struct json_object *obj) {
        json_object_object_foreach(obj, key, v) {
                char path[256];
                /* A checksum of the table's pids, for tests: no metric (and
                 * "_sum" is a summary's suffix). */
                if (streq(key, "tgid_sum"))
                        continue;
                snprintf(path, sizeof(path), "%s_%s", prefix, key);
                if (json_object_is_type(v, json_type_object))
                        put_section(f, path, v);
                else if (is_number(v) || json_object_is_type(v, json_type_boolean))
                        put_leaf(f, path, key, v);
        }
}

int ctl_status_print_openmetrics(FILE *f, struct json_object *status) {
        struct json_object *v;

        if (!json_object_is_type(status, json_type_object))
                return -EINVAL;

        fputs("# HELP procnotify_build_info procnotifyd's version and instance\n"
              "# TYPE procnotify_build_info gauge\n"
              "procnotify_build_info{",
              f);
        bool comma = false;
        for (size_t i = 0; i < 2; i++) {
                const char *key = i == 0 ? "version" : "instance_id";
                if (!json_object_object_get_ex(status, key, &v) || !json_object_is_type(v, json_type_string))
                        continue;
                fprintf(f, "%s%s=\"", comma ? "," : "", key);
                put_label_value(f, json_object_get_string(v));
                fputc('"', f);
                comma = true;
        }
        fputs("} 1\n", f);

        if (json_object_object_get_ex(status, "uptime_ns", &v) && is_number(v))
                fprintf(f, "# HELP procnotify_uptime_seconds Time since procnotifyd started\n"
                           "# TYPE procnotify_uptime_seconds gauge\n"
                           "procnotify_uptime_seconds %.9g\n",
                        metric_value("uptime_ns", v));
        if (json_object_object_get_ex(status, "seq", &v) && is_number(v))
                fprintf(f, "# HELP procnotify_seq_total The sequence number of the last event\n"
                           "# TYPE procnotify_seq_total counter\n"
                           "procnotify_seq_total %.17g\n",
                        metric_value("seq", v));
        if (json_object_object_get_ex(status, "kernel_features", &v) &&
            json_object_is_type(v, json_type_object)) {
                fputs("# HELP procnotify_kernel_feature Kernel interfaces procnotifyd found (1) or not (0)\n"
                      "# TYPE procnotify_kernel_feature gauge\n",
                      f);
                json_object_object_foreach(v, key, fv) {
                        fputs("procnotify_kernel_feature{feature=\"", f);
                        put_label_value(f, key);
                        fprintf(f, "\"} %.17g\n", metric_value(key, fv));
                }
        }
        if (json_object_object_get_ex(status, "events", &v) && json_object_is_type(v, json_type_object)) {
                fputs("# HELP procnotify_events_total Events published, per type\n"
                      "# TYPE procnotify_events_total counter\n",
                      f);
                json_object_object_foreach(v, key, ev) {
                        if (!is_number(ev))
                                continue;
                        fputs("procnotify_events_total{type=\"", f);
                        put_label_value(f, key);
                        fprintf(f, "\"} %.17g\n", metric_value(key, ev));
                }
        }
        json_object_object_foreach(status, key, sv) {
                if (is_heading_key(key) || streq(key, "events"))
                        continue;
                if (json_object_is_type(sv, json_type_object))
                        put_section(f, key, sv);
                else if (is_number(sv) || json_object_is_type(sv, json_type_boolean))
                        put_leaf(f, key, key, sv);
        }
        fputs("# EOF\n", f);
        return 0;
}
