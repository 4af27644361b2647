/*
 * UTF-8 as RFC 3629 and Unicode's Table 3-7 define it: no overlong forms, no
 * surrogates (ED A0..BF), nothing past U+10FFFF.  Everything gyre puts into a
 * JSON answer is UTF-8 (RFC 8259 8.1), whatever bytes a client or a provider
 * sent: an ill-formed sequence becomes U+FFFD, one per maximal subpart, the
 * way the WHATWG Encoding Standard's decoder (a browser's TextDecoder)
 * reads it, so what gyre shows is what a strict reader would have shown.
 */
#ifndef GYRE_COMMON_UTF8_H
#define GYRE_COMMON_UTF8_H

#include <stddef.h>

#include "common/buf.h"

#define GYRE_UTF8_REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */

/*
 * The length (1 to 4) of the well-formed sequence at s (n > 0 bytes left),
 * or 0 when it is ill-formed; then *bad is the length (1 to 3) of its
 * maximal subpart: the bytes one U+FFFD stands for.
 */
size_t gyre_utf8_next(const char *s, size_t n, size_t *bad);

/* Whether s[0..n) is all well-formed UTF-8. */
int gyre_utf8_valid(const char *s, size_t n);

/* Appends s[0..n) with every ill-formed sequence replaced by U+FFFD: 0, or -E2BIG past b's maximum. */
int gyre_buf_append_utf8(gyre_buf_t *b, const char *s, size_t n);

#endif
