/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one mapping that makes a string from the kernel or /proc (comm, exe,
 * cmdline, cgroup, unit) valid for both sinks, and the checks that go with
 * it.
 *
 * A process names itself with any bytes. D-Bus (sd-bus) refuses a string
 * that is not valid UTF-8, that holds a noncharacter or a NUL, and would not
 * send the signal at all; JSON would carry it escaped. So every such string
 * is mapped once, where it enters the broker, and both sinks send the same
 * text: every byte that does not start a well-formed UTF-8 sequence (a stray
 * continuation byte, 0xc0/0xc1/0xf5..0xff, the lead of an overlong form, of
 * an encoded surrogate, of a value past U+10FFFF or of a truncated sequence)
 * becomes U+FFFD on its own, scanning on at the next byte; a well-formed
 * noncharacter (U+FDD0..U+FDEF, U+xxFFFE and U+xxFFFF) becomes one U+FFFD;
 * a NUL becomes U+FFFD. Everything else, control characters included, is
 * kept byte for byte (JSON escapes controls; logs must escape them too).
 * The mapping is idempotent, and a valid string is left unchanged. It is
 * lossy on purpose: a reversible escape would have to escape its own escape
 * character, changing names that are valid today.
 *
 * Pure, no allocation but in pn_utf8_sanitize_dup(); shared by the daemon
 * and clients.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes U+FFFD takes in UTF-8: the most one input byte can grow to. */
#define PN_UTF8_REPLACEMENT "\xef\xbf\xbd"
#define PN_UTF8_MAX_GROWTH 3

/* A kernel comm (TASK_COMM_LEN 16: at most 15 bytes) after the mapping,
 * with its NUL. */
#define PN_COMM_SIZE (15 * PN_UTF8_MAX_GROWTH + 1)

/* Whether cp is a character both sinks can carry: a Unicode scalar value
 * (at most U+10FFFF, no surrogate), not a noncharacter, not NUL. */
bool pn_utf8_codepoint_is_valid(uint32_t cp);

/* Length (1 to 4) of the character at s (n >= 1 bytes available) if it is
 * one that both sinks can carry: well-formed UTF-8, not a noncharacter, not
 * NUL. 0 if the byte at s does not start one. */
size_t pn_utf8_char_len(const char *s, size_t n);

/* When pn_utf8_char_len(s, n) is 0: how many bytes at s the mapping
 * replaces with one U+FFFD (a whole noncharacter, else one byte). */
size_t pn_utf8_replaced_len(const char *s, size_t n);

/* Whether s[0..n) is all such characters (so, no NUL inside). */
bool pn_utf8_is_valid(const char *s, size_t n);

/* Write the mapping of s[0..n) into dst (size >= 1 bytes), NUL-terminated,
 * cut on a character boundary when it does not fit (size >=
 * n * PN_UTF8_MAX_GROWTH + 1 always fits). Returns the length written. */
size_t pn_utf8_sanitize(char *dst, size_t size, const char *s, size_t n);

/* The mapping of the C string s, newly allocated; s itself copied when it is
 * valid already. NULL when out of memory (errno ENOMEM). */
char *pn_utf8_sanitize_dup(const char *s);

/* The length of the longest prefix of the C string s of at most max bytes
 * that does not end inside a multi-byte character: for "%.*s" instead of
 * "%.64s", which can cut one in two. A character that is invalid anyway
 * counts as one byte. */
size_t pn_utf8_cut(const char *s, size_t max);

/* printf arguments for "%.*s": s cut by pn_utf8_cut() to at most max bytes. */
#define PN_UTF8_CUT(s, max) (int) pn_utf8_cut((s), (max)), (s)
