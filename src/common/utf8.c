/* Well-formed UTF-8 and the replacement of what is not (see utf8.h). */
#include "common/utf8.h"

#include <errno.h>
#include <string.h>

size_t gyre_utf8_next(const char *s, size_t n, size_t *bad)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    /* The continuation bytes a lead allows (Table 3-7): the second byte's range is narrower after E0 (no
     * overlongs), ED (no surrogates), F0 (no overlongs) and F4 (nothing past U+10FFFF). */
    size_t need;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        *bad = 1; /* a continuation byte on its own, C0, C1 or F5..FF */
        return 0;
    }
    size_t i = 1;
    for (; i <= need && i < n; i++) {
        if (p[i] < lo || p[i] > hi)
            break;
        lo = 0x80;
        hi = 0xbf;
    }
    if (i == need + 1)
        return i;
    *bad = i;
    return 0;
}

int gyre_utf8_valid(const char *s, size_t n)
{
    size_t bad;
    for (size_t i = 0; i < n;) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        size_t len = gyre_utf8_next(s + i, n - i, &bad);
        if (len == 0)
            return 0;
        i += len;
    }
    return 1;
}

int gyre_buf_append_utf8(gyre_buf_t *b, const char *s, size_t n)
{
    size_t start = b->len, from = 0, bad;
    for (size_t i = 0; i < n;) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        size_t len = gyre_utf8_next(s + i, n - i, &bad);
        if (len != 0) {
            i += len;
            continue;
        }
        if (gyre_buf_append(b, s + from, i - from) != 0 ||
            gyre_buf_append(b, GYRE_UTF8_REPLACEMENT, sizeof(GYRE_UTF8_REPLACEMENT) - 1) != 0)
            goto fail;
        i += bad;
        from = i;
    }
    if (gyre_buf_append(b, s + from, n - from) == 0)
        return 0;
fail:
    /* All or nothing, as every append to a gyre_buf is. */
    b->len = start;
    if (b->base != NULL)
        b->base[start] = '\0';
    return -E2BIG;
}
