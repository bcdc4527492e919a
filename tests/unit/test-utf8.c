/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* protocol/utf8.c: the one mapping of kernel strings, its checks, and the
 * cut on character boundaries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <systemd/sd-bus.h>

#include "protocol/jsonbuf.h"
#include "protocol/utf8.h"

#define R PN_UTF8_REPLACEMENT

/* Input bytes (with length, NULs allowed) and their mapping. */
static const struct {
        const char *in;
        size_t len;
        const char *out;
} cases[] = {
        { "", 0, "" },
        { "bfdd", 4, "bfdd" },
        { "caf\xc3\xa9", 5, "caf\xc3\xa9" },               /* é kept */
        { "\xe2\x82\xac\xf0\x9f\x98\x80", 7, "\xe2\x82\xac\xf0\x9f\x98\x80" }, /* € 😀 kept */
        { "a\nb\x1b[31m\x7f", 9, "a\nb\x1b[31m\x7f" },      /* controls kept (escaped by JSON, logs) */
        { "\xc2\x85", 2, "\xc2\x85" },                     /* C1 NEL: valid, kept */
        { "\xff", 1, R },                                  /* never in UTF-8 */
        { "\xfe\xff", 2, R R },
        { "Caf\xe9", 4, "Caf" R },                         /* Latin-1 é */
        { "\x80", 1, R },                                  /* lone continuation */
        { "\xbf\x80x", 3, R R "x" },
        { "\xc0\xaf", 2, R R },                            /* overlong '/' */
        { "\xc1\xbf", 2, R R },
        { "\xe0\x80\xaf", 3, R R R },                      /* overlong, 3 bytes */
        { "\xe0\x9f\xbf", 3, R R R },
        { "\xf0\x8f\xbf\xbf", 4, R R R R },                /* overlong, 4 bytes */
        { "\xed\xa0\x80", 3, R R R },                      /* U+D800 encoded */
        { "\xed\xbf\xbf", 3, R R R },                      /* U+DFFF encoded */
        { "\xed\xa0\xbd\xed\xb8\x80", 6, R R R R R R },    /* CESU-8 pair */
        { "\xed\x9f\xbf", 3, "\xed\x9f\xbf" },             /* U+D7FF: fine */
        { "\xf4\x90\x80\x80", 4, R R R R },                /* past U+10FFFF */
        { "\xf4\x8f\xbf\xbd", 4, "\xf4\x8f\xbf\xbd" },     /* U+10FFFD: fine */
        { "\xf5\x80\x80\x80", 4, R R R R },
        { "x\xe2\x82", 3, "x" R R },                       /* truncated at the end */
        { "\xe2\x82x", 3, R R "x" },                       /* truncated in the middle */
        { "\xf0\x9f\x98", 3, R R R },
        { "\xef\xbf\xbe", 3, R },                          /* U+FFFE: one noncharacter */
        { "\xef\xbf\xbf", 3, R },                          /* U+FFFF */
        { "\xef\xb7\x90", 3, R },                          /* U+FDD0 */
        { "\xef\xb7\xaf", 3, R },                          /* U+FDEF */
        { "\xef\xb7\xb0", 3, "\xef\xb7\xb0" },             /* U+FDF0: fine */
        { "\xf0\x9f\xbf\xbe", 4, R },                      /* U+1FFFE */
        { "\xf4\x8f\xbf\xbf", 4, R },                      /* U+10FFFF */
        { "a\0b", 3, "a" R "b" },                          /* NUL */
        { R, 3, R },                                       /* U+FFFD itself: kept */
};

static void test_sanitize_table(void **state) {
        (void) state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char out[64];
                size_t n = pn_utf8_sanitize(out, sizeof(out), cases[i].in, cases[i].len);
                if (strcmp(out, cases[i].out) != 0)
                        fail_msg("case %zu: got \"%s\", want \"%s\"", i, out, cases[i].out);
                assert_int_equal(n, strlen(cases[i].out));
                /* Valid for sd-bus and for the checks, idempotent. */
                assert_true(pn_utf8_is_valid(out, n));
                char again[64];
                pn_utf8_sanitize(again, sizeof(again), out, n);
                assert_string_equal(again, out);
                /* Only a valid input is valid. */
                assert_int_equal(pn_utf8_is_valid(cases[i].in, cases[i].len),
                                 cases[i].len == n && memcmp(cases[i].in, out, n) == 0);
        }
}

/* What sd-bus accepts: a signal with the mapped string can be built. */
static void test_sd_bus_accepts_the_mapping(void **state) {
        (void) state;
        sd_bus *bus = NULL;
        int sv[2];
        /* Messages are made on a started bus: one on a socketpair will do,
         * nothing is sent. */
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(sd_bus_new(&bus), 0);
        assert_int_equal(sd_bus_set_fd(bus, sv[0], sv[0]), 0);
        assert_int_equal(sd_bus_start(bus), 0);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                sd_bus_message *m = NULL;
                char out[64], raw[64];
                pn_utf8_sanitize(out, sizeof(out), cases[i].in, cases[i].len);
                assert_int_equal(sd_bus_message_new_signal(bus, &m, "/a", "a.b", "C"), 0);
                if (sd_bus_message_append(m, "s", out) < 0)
                        fail_msg("case %zu: sd-bus refuses the mapping \"%s\"", i, out);
                sd_bus_message_unref(m);
                /* And refuses what the mapping changed (NUL aside: C strings). */
                memcpy(raw, cases[i].in, cases[i].len);
                raw[cases[i].len] = 0;
                if (strlen(raw) == cases[i].len && strcmp(raw, out) != 0) {
                        assert_int_equal(sd_bus_message_new_signal(bus, &m, "/a", "a.b", "C"), 0);
                        assert_true(sd_bus_message_append(m, "s", raw) < 0);
                        sd_bus_message_unref(m);
                }
        }
        sd_bus_close_unref(bus);
        close(sv[1]);
}

/* The JSON writer follows the same rule: a raw string and its mapping
 * quote alike. */
static void test_jsonbuf_agrees(void **state) {
        (void) state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                JsonBuf a = JSONBUF_INIT, b = JSONBUF_INIT;
                char out[64];
                size_t n = pn_utf8_sanitize(out, sizeof(out), cases[i].in, cases[i].len);
                if (memchr(cases[i].in, 0, cases[i].len))
                        continue; /* the writer escapes NUL as \u0000: strings are C strings */
                jsonbuf_append_quoted(&a, cases[i].in, cases[i].len);
                jsonbuf_append_quoted(&b, out, n);
                /* The writer writes the U+FFFD it makes as \ufffd: as bytes,
                 * both must then be the same. */
                char *p;
                while ((p = strstr(a.data, "\\ufffd"))) {
                        memcpy(p, R, 3);
                        memmove(p + 3, p + 6, strlen(p + 6) + 1);
                }
                if (strcmp(a.data, b.data) != 0)
                        fail_msg("case %zu: raw quotes as %s, mapped as %s", i, a.data, b.data);
                jsonbuf_deinit(&a);
                jsonbuf_deinit(&b);
        }
}

static void test_sanitize_cuts_on_boundaries(void **state) {
        (void) state;
        char out[8];
        /* "é" twice and a bad byte: 2 + 2 + 3 bytes, 7 of room + NUL. */
        assert_int_equal(pn_utf8_sanitize(out, sizeof(out), "\xc3\xa9\xc3\xa9\xff", 5), 7);
        assert_string_equal(out, "\xc3\xa9\xc3\xa9" R);
        assert_int_equal(pn_utf8_sanitize(out, 6, "\xc3\xa9\xc3\xa9\xff", 5), 4);
        assert_string_equal(out, "\xc3\xa9\xc3\xa9");
        assert_int_equal(pn_utf8_sanitize(out, 4, "\xc3\xa9\xc3\xa9", 4), 2);
        assert_int_equal(pn_utf8_sanitize(out, 1, "abc", 3), 0);
        assert_string_equal(out, "");
        /* A whole comm of bad bytes fits PN_COMM_SIZE. */
        char comm[PN_COMM_SIZE];
        const char *ff = "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff";
        assert_int_equal(pn_utf8_sanitize(comm, sizeof(comm), ff, 15), 45);
}

static void test_sanitize_dup(void **state) {
        (void) state;
        char *s = pn_utf8_sanitize_dup("/usr/bin/bfdd");
        assert_string_equal(s, "/usr/bin/bfdd");
        free(s);
        s = pn_utf8_sanitize_dup("/tmp/\xff\xc0\xaf/x\xef\xbf\xbe");
        assert_string_equal(s, "/tmp/" R R R "/x" R);
        free(s);
}

static void test_cut(void **state) {
        (void) state;
        /* 63 'a' and an "é": 65 bytes, cut before the é, not in it. */
        char s[80];
        memset(s, 'a', 63);
        strcpy(s + 63, "\xc3\xa9z");
        assert_int_equal(pn_utf8_cut(s, 64), 63);
        assert_int_equal(pn_utf8_cut(s, 65), 65);
        assert_int_equal(pn_utf8_cut(s, 100), 66);
        assert_int_equal(pn_utf8_cut("\xf0\x9f\x98\x80\xf0\x9f\x98\x80", 7), 4);
        assert_int_equal(pn_utf8_cut("\xf0\x9f\x98\x80", 3), 0);
        assert_int_equal(pn_utf8_cut("\xff\xff\xff", 2), 2); /* invalid bytes are one each */
        assert_int_equal(pn_utf8_cut("\xe2\x82", 1), 1);     /* a truncated sequence too */
        assert_int_equal(pn_utf8_cut("", 64), 0);
        char buf[128];
        snprintf(buf, sizeof(buf), "[%.*s]", PN_UTF8_CUT(s, 64));
        assert_int_equal(strlen(buf), 65);
        assert_true(pn_utf8_is_valid(buf, strlen(buf)));
}

static void test_codepoints(void **state) {
        (void) state;
        assert_true(pn_utf8_codepoint_is_valid('a'));
        assert_true(pn_utf8_codepoint_is_valid(0xfffd));
        assert_true(pn_utf8_codepoint_is_valid(0x10fffd));
        assert_false(pn_utf8_codepoint_is_valid(0));
        assert_false(pn_utf8_codepoint_is_valid(0xd800));
        assert_false(pn_utf8_codepoint_is_valid(0xdfff));
        assert_false(pn_utf8_codepoint_is_valid(0xfdd0));
        assert_false(pn_utf8_codepoint_is_valid(0xfffe));
        assert_false(pn_utf8_codepoint_is_valid(0x2ffff));
        assert_false(pn_utf8_codepoint_is_valid(0x110000));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sanitize_table),
                cmocka_unit_test(test_sd_bus_accepts_the_mapping),
                cmocka_unit_test(test_jsonbuf_agrees),
                cmocka_unit_test(test_sanitize_cuts_on_boundaries),
                cmocka_unit_test(test_sanitize_dup),
                cmocka_unit_test(test_cut),
                cmocka_unit_test(test_codepoints),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
