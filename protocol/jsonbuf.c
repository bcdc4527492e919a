/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * JsonBuf implementation; see jsonbuf.h. No locale, no printf on the hot
 * path: integers are formatted by hand.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "jsonbuf.h"
#include "utf8.h"

void jsonbuf_init(JsonBuf *b) {
        *b = JSONBUF_INIT;
}

void jsonbuf_deinit(JsonBuf *b) {
        free(b->data);
        *b = JSONBUF_INIT;
}

void jsonbuf_reset(JsonBuf *b) {
        b->len = 0;
        b->failed = false;
        b->depth = 0;
        b->need_comma[0] = false;
}

int jsonbuf_reserve(JsonBuf *b, size_t n) {
        if (b->failed)
                return -ENOMEM;
        if (b->cap - b->len > n)
                return 0;
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len <= n) {
                if (cap > SIZE_MAX / 2) {
                        b->failed = true;
                        return -ENOMEM;
                }
                cap *= 2;
        }
        char *p = realloc(b->data, cap);
        if (!p) {
                b->failed = true;
                return -ENOMEM;
        }
        b->data = p;
        b->cap = cap;
        return 0;
}

/* The common case of jsonbuf_reserve() without a call: there is room.
 * 0, or -ENOMEM (then failed is set). */
static inline int room(JsonBuf *b, size_t n) {
        if (_likely_(!b->failed && b->cap - b->len > n))
                return 0;
        return jsonbuf_reserve(b, n);
}

void jsonbuf_append(JsonBuf *b, const char *s, size_t n) {
        if (room(b, n) < 0)
                return;
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = 0;
}

void jsonbuf_append_char(JsonBuf *b, char c) {
        if (room(b, 1) < 0)
                return;
        b->data[b->len++] = c;
        b->data[b->len] = 0;
}

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* Whether any of the 8 bytes in w needs more than a copy: a control
 * character, '"', '\\', or a byte of a multi-byte sequence (validated
 * separately). Exact as a whole, which is all it is used for. */
static inline bool word_needs_escape(uint64_t w) {
        uint64_t below_space = (w - ONES * 0x20) & ~w;
        uint64_t quote = (w ^ (ONES * '"')) - ONES;
        uint64_t quote_mask = ~(w ^ (ONES * '"'));
        uint64_t backslash = (w ^ (ONES * '\\')) - ONES;
        uint64_t backslash_mask = ~(w ^ (ONES * '\\'));
        return ((below_space | (quote & quote_mask) | (backslash & backslash_mask)) & HIGHS) || (w & HIGHS);
}

void jsonbuf_append_quoted(JsonBuf *b, const char *str, size_t n) {
        static const char hex[] = "0123456789abcdef";
        const unsigned char *s = (const unsigned char *) str;
        size_t i = 0, run = 0;

        /* Worst case every byte becomes \ufffd (6 bytes) plus quotes. */
        if (room(b, n * 6 + 2) < 0)
                return;
        char *o = b->data + b->len;
        *o++ = '"';
        while (i < n) {
                /* Names and paths are mostly plain ASCII: skip them 8 bytes
                 * at a time, and copy the run in one go below. */
                if (i + 8 <= n) {
                        uint64_t w;
                        memcpy(&w, s + i, sizeof(w));
                        if (!word_needs_escape(w)) {
                                run += 8;
                                i += 8;
                                continue;
                        }
                } else if (i + 1 < n) {
                        /* The tail, padded with plain bytes. */
                        uint64_t w = ONES * 'a';
                        memcpy(&w, s + i, n - i);
                        if (!word_needs_escape(w)) {
                                run += n - i;
                                i = n;
                                continue;
                        }
                }
                unsigned char c = s[i];
                if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
                        run++;
                        i++;
                        continue;
                }
                memcpy(o, s + i - run, run);
                o += run;
                run = 0;
                if (c >= 0x80) {
                        /* The mapping of utf8.h, so that a string mapped
                         * before is left as it is. */
                        size_t l = pn_utf8_char_len((const char *) s + i, n - i);
                        if (l == 0) {
                                memcpy(o, "\\ufffd", 6);
                                o += 6;
                                i += pn_utf8_replaced_len((const char *) s + i, n - i);
                        } else {
                                memcpy(o, s + i, l);
                                o += l;
                                i += l;
                        }
                        continue;
                }
                *o++ = '\\';
                switch (c) {
                case '"': *o++ = '"'; break;
                case '\\': *o++ = '\\'; break;
                case '\n': *o++ = 'n'; break;
                case '\t': *o++ = 't'; break;
                case '\r': *o++ = 'r'; break;
                case '\b': *o++ = 'b'; break;
                case '\f': *o++ = 'f'; break;
                default:
                        *o++ = 'u';
                        *o++ = '0';
                        *o++ = '0';
                        *o++ = hex[c >> 4];
                        *o++ = hex[c & 0xf];
                }
                i++;
        }
        memcpy(o, s + i - run, run);
        o += run;
        *o++ = '"';
        b->len = (size_t) (o - b->data);
        b->data[b->len] = 0;
}

static void jsonbuf_separator(JsonBuf *b) {
        if (b->need_comma[b->depth])
                jsonbuf_append_char(b, ',');
        b->need_comma[b->depth] = true;
}

static void jsonbuf_key(JsonBuf *b, const char *key) {
        size_t n = strlen(key);
        /* Keys are our own constants: plain ASCII, no escaping needed. */
        if (room(b, n + 4) < 0)
                return;
        char *o = b->data + b->len;
        if (b->need_comma[b->depth])
                *o++ = ',';
        b->need_comma[b->depth] = true;
        *o++ = '"';
        memcpy(o, key, n);
        o += n;
        *o++ = '"';
        *o++ = ':';
        b->len = (size_t) (o - b->data);
        b->data[b->len] = 0;
}

static void jsonbuf_push(JsonBuf *b, char c) {
        jsonbuf_append_char(b, c);
        if (b->depth + 1 >= JSONBUF_MAX_DEPTH) {
                b->failed = true;
                return;
        }
        b->need_comma[++b->depth] = false;
}

static void jsonbuf_pop(JsonBuf *b, char c) {
        jsonbuf_append_char(b, c);
        if (b->depth > 0)
                b->depth--;
}

void jsonbuf_begin_object(JsonBuf *b) {
        if (b->depth > 0 || b->need_comma[0])
                jsonbuf_separator(b);
        jsonbuf_push(b, '{');
}

void jsonbuf_end_object(JsonBuf *b) {
        jsonbuf_pop(b, '}');
}

void jsonbuf_begin_object_field(JsonBuf *b, const char *key) {
        jsonbuf_key(b, key);
        jsonbuf_push(b, '{');
}

void jsonbuf_begin_array_field(JsonBuf *b, const char *key) {
        jsonbuf_key(b, key);
        jsonbuf_push(b, '[');
}

void jsonbuf_end_array(JsonBuf *b) {
        jsonbuf_pop(b, ']');
}

static void jsonbuf_append_u64(JsonBuf *b, uint64_t v) {
        /* Two digits per division: timestamps have 13 or more. */
        static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                    "8081828384858687888990919293949596979899";
        char tmp[24];
        char *p = tmp + sizeof(tmp);
        while (v >= 100) {
                unsigned d = (unsigned) (v % 100);
                v /= 100;
                p -= 2;
                memcpy(p, pairs + 2 * d, 2);
        }
        if (v >= 10) {
                p -= 2;
                memcpy(p, pairs + 2 * v, 2);
        } else
                *--p = (char) ('0' + v);
        size_t n = (size_t) (tmp + sizeof(tmp) - p);
        if (room(b, n) < 0)
                return;
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = 0;
}

void jsonbuf_field_str(JsonBuf *b, const char *key, const char *value) {
        jsonbuf_key(b, key);
        if (value)
                jsonbuf_append_quoted(b, value, strlen(value));
        else
                jsonbuf_append(b, "null", 4);
}

void jsonbuf_field_int(JsonBuf *b, const char *key, int64_t value) {
        jsonbuf_key(b, key);
        if (value < 0) {
                jsonbuf_append_char(b, '-');
                jsonbuf_append_u64(b, (uint64_t) 0 - (uint64_t) value);
        } else
                jsonbuf_append_u64(b, (uint64_t) value);
}

void jsonbuf_field_uint(JsonBuf *b, const char *key, uint64_t value) {
        jsonbuf_key(b, key);
        jsonbuf_append_u64(b, value);
}

void jsonbuf_field_bool(JsonBuf *b, const char *key, bool value) {
        jsonbuf_key(b, key);
        if (value)
                jsonbuf_append(b, "true", 4);
        else
                jsonbuf_append(b, "false", 5);
}

void jsonbuf_field_null(JsonBuf *b, const char *key) {
        jsonbuf_key(b, key);
        jsonbuf_append(b, "null", 4);
}

void jsonbuf_elem_str(JsonBuf *b, const char *value) {
        jsonbuf_separator(b);
        jsonbuf_append_quoted(b, value, strlen(value));
}

void jsonbuf_elem_uint(JsonBuf *b, uint64_t value) {
        jsonbuf_separator(b);
        jsonbuf_append_u64(b, value);
}
