/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* See utf8.h for the mapping and why. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

/* Length of the well-formed UTF-8 sequence at s (n >= 1 bytes available), 0
 * if the byte at s does not start one (Unicode table 3-7: no overlong form,
 * no surrogate, nothing past U+10FFFF, no truncated sequence). The code
 * point goes to *cp. */
static size_t well_formed_len(const unsigned char *s, size_t n, uint32_t *cp) {
        unsigned char c = s[0];
        unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
        size_t len;

        if (c < 0x80) {
                *cp = c;
                return 1;
        }
        if (c >= 0xc2 && c <= 0xdf)
                len = 2, *cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
                len = 3, *cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
                len = 4, *cp = c & 0x07;
        else
                return 0;
        if (c == 0xe0)
                lo = 0xa0; /* else overlong */
        else if (c == 0xed)
                hi = 0x9f; /* else a surrogate */
        else if (c == 0xf0)
                lo = 0x90; /* else overlong */
        else if (c == 0xf4)
                hi = 0x8f; /* else past U+10FFFF */
        if (len > n || s[1] < lo || s[1] > hi)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                *cp = (*cp << 6) | (s[i] & 0x3f);
        }
        return len;
}

bool pn_utf8_codepoint_is_valid(uint32_t cp) {
        if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return false;
        /* Noncharacters: U+FDD0..U+FDEF, and the last two of every plane. */
        return !((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe);
}

size_t pn_utf8_char_len(const char *s, size_t n) {
        uint32_t cp;
        size_t len = well_formed_len((const unsigned char *) s, n, &cp);

        if (len == 0 || !pn_utf8_codepoint_is_valid(cp))
                return 0;
        return len;
}

size_t pn_utf8_replaced_len(const char *s, size_t n) {
        uint32_t cp;
        size_t len = well_formed_len((const unsigned char *) s, n, &cp);
        return len ? len : 1;
}

bool pn_utf8_is_valid(const char *s, size_t n) {
        for (size_t i = 0; i < n;) {
                /* Plain ASCII, the common case, without the call. */
                if ((unsigned char) s[i] - 1u < 0x7fu) {
                        i++;
                        continue;
                }
                size_t l = pn_utf8_char_len(s + i, n - i);
                if (l == 0)
                        return false;
                i += l;
        }
        return true;
}

size_t pn_utf8_sanitize(char *dst, size_t size, const char *s, size_t n) {
        size_t o = 0;

        for (size_t i = 0; i < n;) {
                /* Plain ASCII, the common case, byte by byte. */
                if ((unsigned char) s[i] - 1u < 0x7fu) {
                        if (o + 1 >= size)
                                break;
                        dst[o++] = s[i++];
                        continue;
                }
                const char *piece = s + i;
                size_t l = pn_utf8_char_len(s + i, n - i), step = l;
                if (l == 0) {
                        step = pn_utf8_replaced_len(s + i, n - i);
                        piece = PN_UTF8_REPLACEMENT;
                        l = strlen(PN_UTF8_REPLACEMENT);
                }
                if (o + l >= size)
                        break;
                memcpy(dst + o, piece, l);
                o += l;
                i += step;
        }
        dst[o] = 0;
        return o;
}

char *pn_utf8_sanitize_dup(const char *s) {
        size_t n = strlen(s);
        char *d;

        if (pn_utf8_is_valid(s, n))
                return strdup(s);
        if (n > (SIZE_MAX - 1) / PN_UTF8_MAX_GROWTH) {
                errno = ENOMEM;
                return NULL;
        }
        d = malloc(n * PN_UTF8_MAX_GROWTH + 1);
        if (!d)
                return NULL;
        size_t len = pn_utf8_sanitize(d, n * PN_UTF8_MAX_GROWTH + 1, s, n);
        char *shrunk = realloc(d, len + 1);
        return shrunk ? shrunk : d;
}

size_t pn_utf8_cut(const char *s, size_t max) {
        size_t i = 0;

        while (s[i]) {
                uint32_t cp;
                size_t l = well_formed_len((const unsigned char *) s + i, strnlen(s + i, 4), &cp);
                if (l == 0)
                        l = 1;
                if (i + l > max)
                        break;
                i += l;
        }
        return i;
}
