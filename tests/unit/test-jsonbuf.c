/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* JsonBuf: escaping, UTF-8 sanitising, structure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "protocol/jsonbuf.h"

static char *quoted(const char *s, size_t n) {
        static JsonBuf b;
        jsonbuf_reset(&b);
        jsonbuf_append_quoted(&b, s, n);
        assert_false(jsonbuf_failed(&b));
        return b.data;
}

/* Parse strictly, as UTF-8; return the decoded string. */
static const char *roundtrip(const char *json) {
        static struct json_object *o;
        struct json_tokener *tok = json_tokener_new();
        json_object_put(o);
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        o = json_tokener_parse_ex(tok, json, (int) strlen(json));
        assert_int_equal(json_tokener_get_error(tok), json_tokener_success);
        json_tokener_free(tok);
        assert_true(json_object_is_type(o, json_type_string));
        return json_object_get_string(o);
}

static void test_plain_and_escapes(void **state) {
        (void) state;
        assert_string_equal(quoted("bfdd", 4), "\"bfdd\"");
        assert_string_equal(quoted("a\"b\\c", 5), "\"a\\\"b\\\\c\"");
        assert_string_equal(quoted("\n\t\r\b\f", 5), "\"\\n\\t\\r\\b\\f\"");
        assert_string_equal(quoted("\x01\x1f", 2), "\"\\u0001\\u001f\"");
        assert_string_equal(quoted("", 0), "\"\"");
        /* DEL and '/' need no escape. */
        assert_string_equal(quoted("/\x7f", 2), "\"/\x7f\"");
        assert_string_equal(roundtrip(quoted("a\"b\\c\n", 6)), "a\"b\\c\n");
}

static void test_valid_utf8_passes(void **state) {
        (void) state;
        const char *s = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"; /* é € 😀 */
        assert_string_equal(quoted(s, strlen(s)) + 1, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
        assert_string_equal(roundtrip(quoted(s, strlen(s))), s);
}

static void test_invalid_utf8_replaced(void **state) {
        static const struct {
                const char *in;
                size_t n;
                const char *out;
        } cases[] = {
                { "\x80", 1, "\"\\ufffd\"" },                 /* lone continuation */
                { "a\xc3", 2, "\"a\\ufffd\"" },               /* truncated sequence */
                { "\xc0\xaf", 2, "\"\\ufffd\\ufffd\"" },      /* overlong '/' */
                { "\xe0\x80\xaf", 3, "\"\\ufffd\\ufffd\\ufffd\"" }, /* overlong 3-byte */
                { "\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"" }, /* surrogate U+D800 */
                { "\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" }, /* > U+10FFFF */
                { "\xf5", 1, "\"\\ufffd\"" },
                { "\xff\xfe", 2, "\"\\ufffd\\ufffd\"" },
                { "x\xe2\x82", 3, "\"x\\ufffd\\ufffd\"" },
        };
        (void) state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const char *q = quoted(cases[i].in, cases[i].n);
                assert_string_equal(q, cases[i].out);
                (void) roundtrip(q); /* strict UTF-8 parse must accept it */
        }
}

static void test_embedded_nul_escaped(void **state) {
        (void) state;
        assert_string_equal(quoted("a\0b", 3), "\"a\\u0000b\"");
}

static void test_object_structure(void **state) {
        JsonBuf b = JSONBUF_INIT;
        (void) state;
        jsonbuf_begin_object(&b);
        jsonbuf_field_str(&b, "s", "x");
        jsonbuf_field_str(&b, "n", NULL);
        jsonbuf_field_int(&b, "i", -42);
        jsonbuf_field_int(&b, "min", INT64_MIN);
        jsonbuf_field_uint(&b, "u", UINT64_MAX);
        jsonbuf_field_bool(&b, "t", true);
        jsonbuf_begin_array_field(&b, "a");
        jsonbuf_elem_str(&b, "p");
        jsonbuf_elem_uint(&b, 7);
        jsonbuf_end_array(&b);
        jsonbuf_begin_object_field(&b, "o");
        jsonbuf_field_bool(&b, "f", false);
        jsonbuf_end_object(&b);
        jsonbuf_end_object(&b);
        assert_false(jsonbuf_failed(&b));
        assert_string_equal(b.data, "{\"s\":\"x\",\"n\":null,\"i\":-42,\"min\":-9223372036854775808,"
                                    "\"u\":18446744073709551615,\"t\":true,\"a\":[\"p\",7],"
                                    "\"o\":{\"f\":false}}");
        /* reset keeps memory, forgets content */
        jsonbuf_reset(&b);
        assert_int_equal(b.len, 0);
        jsonbuf_begin_object(&b);
        jsonbuf_end_object(&b);
        assert_string_equal(b.data, "{}");
        jsonbuf_deinit(&b);
}

static void test_large_growth(void **state) {
        JsonBuf b = JSONBUF_INIT;
        char big[100000];
        (void) state;
        memset(big, 'z', sizeof(big));
        jsonbuf_append_quoted(&b, big, sizeof(big));
        assert_false(jsonbuf_failed(&b));
        assert_int_equal(b.len, sizeof(big) + 2);
        jsonbuf_deinit(&b);
}

/* What a special byte becomes, as the byte-at-a-time rules say. */
static const char *escaped(unsigned char c) {
        static char buf[8];
        switch (c) {
        case '"': return "\\\"";
        case '\\': return "\\\\";
        case '\n': return "\\n";
        case 0x01: return "\\u0001";
        case 0x1f: return "\\u001f";
        case 0x80: return "\\ufffd";
        default:
                buf[0] = (char) c;
                buf[1] = 0;
                return buf;
        }
}

static void test_special_byte_anywhere(void **state) {
        /* Plain runs are skipped 8 bytes at a time: a special byte must be
         * found in every position of a word, in the tail, and after one. */
        static const unsigned char specials[] = { '"', '\\', '\n', 0x01, 0x1f, 0x80, 0x7f, ' ', '~' };
        (void) state;
        for (size_t len = 1; len <= 40; len++)
                for (size_t pos = 0; pos < len; pos++)
                        for (size_t k = 0; k < sizeof(specials); k++) {
                                char in[64], want[128];
                                memset(in, 'a' + (char) (len % 26), len);
                                in[pos] = (char) specials[k];
                                snprintf(want, sizeof(want), "\"%.*s%s%.*s\"", (int) pos, in,
                                         escaped(specials[k]), (int) (len - pos - 1), in + pos + 1);
                                assert_string_equal(quoted(in, len), want);
                        }
        /* A valid multi-byte sequence straddling a word boundary passes. */
        const char *s = "abcdefg\xc3\xa9hijklmnop\xe2\x82\xac";
        assert_string_equal(roundtrip(quoted(s, strlen(s))), s);
}

static void test_integers_every_length(void **state) {
        /* Digits are written two at a time: check both sides of every power
         * of ten, and the extremes, against printf. */
        JsonBuf b = JSONBUF_INIT;
        char want[64];
        (void) state;
        for (uint64_t p = 1;; p *= 10) {
                uint64_t values[] = { p - 1, p, p + 1, p * 5 + 3 };
                for (size_t i = 0; i < 4; i++) {
                        jsonbuf_reset(&b);
                        jsonbuf_elem_uint(&b, values[i]);
                        snprintf(want, sizeof(want), "%llu", (unsigned long long) values[i]);
                        assert_string_equal(b.data, want);
                        jsonbuf_reset(&b);
                        jsonbuf_begin_object(&b);
                        jsonbuf_field_int(&b, "n", -(int64_t) (values[i] / 2));
                        snprintf(want, sizeof(want), "{\"n\":%lld", -(long long) (values[i] / 2));
                        if (values[i] / 2 == 0)
                                strcpy(want, "{\"n\":0");
                        assert_string_equal(b.data, want);
                }
                if (p > UINT64_MAX / 10)
                        break;
        }
        jsonbuf_reset(&b);
        jsonbuf_elem_uint(&b, UINT64_MAX);
        assert_string_equal(b.data, "18446744073709551615");
        jsonbuf_deinit(&b);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_plain_and_escapes),
                cmocka_unit_test(test_valid_utf8_passes),
                cmocka_unit_test(test_invalid_utf8_replaced),
                cmocka_unit_test(test_embedded_nul_escaped),
                cmocka_unit_test(test_special_byte_anywhere),
                cmocka_unit_test(test_integers_every_length),
                cmocka_unit_test(test_object_structure),
                cmocka_unit_test(test_large_growth),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
