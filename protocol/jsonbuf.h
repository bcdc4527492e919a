/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * JsonBuf: an append-only buffer that writes JSON objects field by field.
 *
 * Events are encoded on the broker's hot path (hundreds of thousands a
 * second), and their strings come from processes (comm, cmdline) and may hold
 * any bytes: the writer escapes control characters and replaces invalid UTF-8
 * and noncharacters with U+FFFD, by the mapping of utf8.h (which the broker
 * applied already to every string from the kernel), so that every line it
 * produces is valid JSON in valid UTF-8.
 * Allocation failure is sticky: later appends do nothing and
 * jsonbuf_failed() reports it, so callers check once at the end.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSONBUF_MAX_DEPTH 8

typedef struct JsonBuf {
        char *data;
        size_t len;
        size_t cap;
        bool failed;
        unsigned depth;
        bool need_comma[JSONBUF_MAX_DEPTH];
} JsonBuf;

#define JSONBUF_INIT ((JsonBuf){ 0 })

void jsonbuf_init(JsonBuf *b);
void jsonbuf_deinit(JsonBuf *b);
/* Forget the content, keep the memory. */
void jsonbuf_reset(JsonBuf *b);
/* Make room for n more bytes: 0, or -ENOMEM (and failed set, so that later
 * appends do nothing). */
int jsonbuf_reserve(JsonBuf *b, size_t n);
static inline bool jsonbuf_failed(const JsonBuf *b) {
        return b->failed;
}

void jsonbuf_append(JsonBuf *b, const char *s, size_t n);
void jsonbuf_append_char(JsonBuf *b, char c);
/* Append s (n bytes) as a quoted JSON string, escaped and UTF-8 sanitised. */
void jsonbuf_append_quoted(JsonBuf *b, const char *s, size_t n);

void jsonbuf_begin_object(JsonBuf *b);
void jsonbuf_end_object(JsonBuf *b);
void jsonbuf_begin_array_field(JsonBuf *b, const char *key);
void jsonbuf_end_array(JsonBuf *b);
/* Start a nested object as the value of key. */
void jsonbuf_begin_object_field(JsonBuf *b, const char *key);

/* Fields of the current object. A NULL string is written as null. */
void jsonbuf_field_str(JsonBuf *b, const char *key, const char *value);
void jsonbuf_field_int(JsonBuf *b, const char *key, int64_t value);
void jsonbuf_field_uint(JsonBuf *b, const char *key, uint64_t value);
void jsonbuf_field_bool(JsonBuf *b, const char *key, bool value);
void jsonbuf_field_null(JsonBuf *b, const char *key);
/* Elements of the current array. */
void jsonbuf_elem_str(JsonBuf *b, const char *value);
void jsonbuf_elem_uint(JsonBuf *b, uint64_t value);
