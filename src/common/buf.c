/* Bounded growable buffer (see buf.h). */
#include "common/buf.h"

#include <errno.h>
#include <h2o/string_.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/utf8.h"

void gyre_buf_init(gyre_buf_t *b, size_t max)
{
    b->base = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
    b->failed = 0;
}

/* Marks the buffer with its first error and returns `err`: every failing path of an append goes through here. */
static int set_failed(gyre_buf_t *b, int err)
{
    if (b->failed == 0)
        b->failed = err;
    return err;
}

void gyre_buf_dispose(gyre_buf_t *b)
{
    free(b->base);
    b->base = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}

void gyre_buf_reset(gyre_buf_t *b)
{
    b->len = 0;
    b->failed = 0;
    if (b->base != NULL)
        b->base[0] = '\0';
}

void gyre_buf_rollback(gyre_buf_t *b, gyre_buf_mark_t m)
{
    if (m.len < b->len) {
        b->len = m.len;
        b->base[m.len] = '\0';
    }
    b->failed = m.failed;
}

static int reserve(gyre_buf_t *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return set_failed(b, -E2BIG);
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->base = gyre_realloc(b->base, cap);
    b->cap = cap;
    return 0;
}

int gyre_buf_reserve(gyre_buf_t *b, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return set_failed(b, -E2BIG);
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    b->base = gyre_realloc(b->base, need);
    b->cap = need;
    return 0;
}

int gyre_buf_append(gyre_buf_t *b, const void *p, size_t n)
{
    int r;
    if ((r = reserve(b, n)) != 0)
        return r;
    if (n != 0)
        memcpy(b->base + b->len, p, n);
    b->len += n;
    b->base[b->len] = '\0';
    return 0;
}

size_t gyre_buf_append_upto(gyre_buf_t *b, const void *p, size_t n)
{
    size_t room = b->len < b->max ? b->max - b->len : 0;
    if (n > room)
        n = room;
    if (n == 0 || reserve(b, n) != 0)
        return 0;
    memcpy(b->base + b->len, p, n);
    b->len += n;
    b->base[b->len] = '\0';
    return n;
}

int gyre_buf_appends(gyre_buf_t *b, const char *s)
{
    return gyre_buf_append(b, s, strlen(s));
}

int gyre_buf_vappendf(gyre_buf_t *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0)
        return set_failed(b, -EINVAL);
    int r;
    if ((r = reserve(b, (size_t)n)) != 0)
        return r;
    vsnprintf(b->base + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int gyre_buf_appendf(gyre_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = gyre_buf_vappendf(b, fmt, ap);
    va_end(ap);
    return r;
}

/* `bytes`: bytes from 0x80 go as they are (gyre_buf_append_json_bytes); else ill-formed UTF-8 becomes U+FFFD. */
static int json_string(gyre_buf_t *b, const char *s, size_t n, int bytes)
{
    gyre_buf_mark_t start = gyre_buf_mark(b);
    int r = 0;
    if ((r = gyre_buf_append(b, "\"", 1)) != 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        /* A run of bytes that need no escaping goes in with one append (a body is mostly such runs). */
        size_t run = i;
        while (run < n && (unsigned char)s[run] >= 0x20 && (unsigned char)s[run] < 0x80 && s[run] != '"' &&
               s[run] != '\\')
            run++;
        if (run > i) {
            if ((r = gyre_buf_append(b, s + i, run - i)) != 0)
                goto fail;
            i = run - 1;
            continue;
        }
        unsigned char c = (unsigned char)s[i];
        char esc[7]; /* "\\u00" and two hex digits, and the NUL h2o_hex_encode adds */
        const char *out = NULL;
        size_t outlen = 0;
        switch (c) {
        case '"':
            out = "\\\"";
            outlen = 2;
            break;
        case '\\':
            out = "\\\\";
            outlen = 2;
            break;
        case '\n':
            out = "\\n";
            outlen = 2;
            break;
        case '\r':
            out = "\\r";
            outlen = 2;
            break;
        case '\t':
            out = "\\t";
            outlen = 2;
            break;
        default:
            if (c < 0x20) {
                esc[0] = '\\';
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                h2o_hex_encode(esc + 4, &c, 1);
                out = esc;
                outlen = 6;
            } else if (c >= 0x80 && !bytes) {
                /* A JSON text is UTF-8 (RFC 8259 8.1): what is not well-formed is replaced, never passed on. */
                size_t bad, len = gyre_utf8_next(s + i, n - i, &bad);
                if (len != 0) {
                    out = s + i;
                    outlen = len;
                    i += len - 1;
                } else {
                    out = GYRE_UTF8_REPLACEMENT;
                    outlen = sizeof(GYRE_UTF8_REPLACEMENT) - 1;
                    i += bad - 1;
                }
            }
        }
        if (out != NULL)
            r = gyre_buf_append(b, out, outlen);
        else
            r = gyre_buf_append(b, s + i, 1);
        if (r != 0)
            goto fail;
    }
    if ((r = gyre_buf_append(b, "\"", 1)) != 0)
        goto fail;
    return 0;
fail:
    /* The string goes whole or not at all; the buffer keeps the error (the caller lost a piece). */
    gyre_buf_rollback(b, start);
    return set_failed(b, r);
}

int gyre_buf_append_json_string(gyre_buf_t *b, const char *s, size_t n)
{
    return json_string(b, s, n, 0);
}

int gyre_buf_append_json_bytes(gyre_buf_t *b, const char *s, size_t n)
{
    return json_string(b, s, n, 1);
}

void gyre_buf_consume(gyre_buf_t *b, size_t n)
{
    if (n >= b->len) {
        gyre_buf_reset(b);
        return;
    }
    memmove(b->base, b->base + n, b->len - n);
    b->len -= n;
    b->base[b->len] = '\0';
}

int gyre_buf_append_file(gyre_buf_t *b, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return set_failed(b, -errno);
    char chunk[8192];
    size_t n;
    int r = 0;
    while (r == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        r = gyre_buf_append(b, chunk, n);
    if (r == 0 && ferror(f))
        r = set_failed(b, -EIO);
    fclose(f);
    return r;
}
