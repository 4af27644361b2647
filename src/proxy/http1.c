/* HTTP/1.x response parsing and chunked decoding (see http1.h). */
#include "proxy/http1.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

static int lc_equal(const char *a, size_t alen, const char *lit)
{
    size_t n = strlen(lit);
    if (alen != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = a[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != lit[i])
            return 0;
    }
    return 1;
}

/* Whether the comma-separated list `v` contains the token `tok` (case-insensitive). */
static int has_token(const char *v, size_t len, const char *tok)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < len && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end > start && lc_equal(v + start, end - start, tok))
            return 1;
    }
    return 0;
}

static int is_tchar(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return 1;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
        return 1;
    return strchr("!#$%&'*+-.^_`|~", c) != NULL && c != 0;
}

/* Finds the end of the line that starts at `p`: returns the index of '\n', or -1. */
static ssize_t find_eol(const char *buf, size_t start, size_t len)
{
    const char *nl = memchr(buf + start, '\n', len - start);
    return nl ? nl - buf : -1;
}

ssize_t gyre_http1_parse_response(const char *buf, size_t len, gyre_http1_response_t *out)
{
    size_t scan = len < GYRE_HTTP1_MAX_HEAD ? len : GYRE_HTTP1_MAX_HEAD;
    /* The status line: HTTP/1.x SP 3DIGIT [SP reason] CRLF */
    ssize_t eol = find_eol(buf, 0, scan);
    if (eol < 0)
        return len >= GYRE_HTTP1_MAX_HEAD ? -E2BIG : (len >= 12 && memcmp(buf, "HTTP/1.", 7) != 0 ? -EBADMSG : -EAGAIN);
    size_t l = (size_t)eol;
    if (l > 0 && buf[l - 1] == '\r')
        l--;
    if (l < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || (buf[7] != '0' && buf[7] != '1') || buf[8] != ' ')
        return -EBADMSG;
    for (int i = 9; i < 12; i++)
        if (buf[i] < '0' || buf[i] > '9')
            return -EBADMSG;
    if (l > 12 && buf[12] != ' ')
        return -EBADMSG;
    out->minor_version = buf[7] - '0';
    out->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    if (out->status < 100)
        return -EBADMSG;
    out->reason = l > 13 ? buf + 13 : buf + l;
    out->reason_len = l > 13 ? l - 13 : 0;
    out->num_headers = 0;
    out->chunked = 0;
    out->content_length = SIZE_MAX;
    out->keep_alive = out->minor_version >= 1;

    size_t pos = (size_t)eol + 1;
    for (;;) {
        if (pos >= scan)
            return len >= GYRE_HTTP1_MAX_HEAD ? -E2BIG : -EAGAIN;
        eol = find_eol(buf, pos, scan);
        if (eol < 0)
            return len >= GYRE_HTTP1_MAX_HEAD ? -E2BIG : -EAGAIN;
        size_t end = (size_t)eol;
        if (end > pos && buf[end - 1] == '\r')
            end--;
        if (end == pos) /* the blank line */
            return (ssize_t)eol + 1;
        if (buf[pos] == ' ' || buf[pos] == '\t')
            return -EBADMSG; /* obsolete line folding is refused, as RFC 9112 allows */
        const char *colon = memchr(buf + pos, ':', end - pos);
        if (colon == NULL || colon == buf + pos)
            return -EBADMSG;
        for (const char *c = buf + pos; c < colon; c++)
            if (!is_tchar((unsigned char)*c))
                return -EBADMSG;
        const char *v = colon + 1, *vend = buf + end;
        while (v < vend && (*v == ' ' || *v == '\t'))
            v++;
        while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
            vend--;
        for (const char *c = v; c < vend; c++)
            if ((unsigned char)*c < 0x20 && *c != '\t')
                return -EBADMSG;
        if (out->num_headers == GYRE_HTTP1_MAX_HEADERS)
            return -E2BIG;
        gyre_http1_header_t *h = &out->headers[out->num_headers++];
        h->name = buf + pos;
        h->name_len = (size_t)(colon - (buf + pos));
        h->value = v;
        h->value_len = (size_t)(vend - v);
        if (lc_equal(h->name, h->name_len, "content-length")) {
            size_t n = 0;
            if (h->value_len == 0 || h->value_len > 18)
                return -EBADMSG;
            for (size_t i = 0; i < h->value_len; i++) {
                if (h->value[i] < '0' || h->value[i] > '9')
                    return -EBADMSG;
                n = n * 10 + (size_t)(h->value[i] - '0');
            }
            if (out->content_length != SIZE_MAX && out->content_length != n)
                return -EBADMSG; /* conflicting lengths: a smuggling risk */
            out->content_length = n;
        } else if (lc_equal(h->name, h->name_len, "transfer-encoding")) {
            if (has_token(h->value, h->value_len, "chunked"))
                out->chunked = 1;
        } else if (lc_equal(h->name, h->name_len, "connection")) {
            if (has_token(h->value, h->value_len, "close"))
                out->keep_alive = 0;
            else if (has_token(h->value, h->value_len, "keep-alive"))
                out->keep_alive = 1;
        }
        pos = (size_t)eol + 1;
    }
}

enum {
    CH_SIZE,         /* reading hex digits */
    CH_EXT,          /* skipping a chunk extension up to LF */
    CH_DATA,         /* inside chunk data */
    CH_DATA_CR,      /* expecting CR (or LF) after chunk data */
    CH_DATA_LF,      /* expecting LF after chunk data */
    CH_TRAILER,      /* at the start of a trailer line */
    CH_TRAILER_LINE, /* inside a trailer line */
    CH_DONE,
};

int gyre_http1_decode_chunked(gyre_http1_chunked_t *d, char *buf, size_t *len, size_t *consumed)
{
    size_t in = 0, out = 0, n = *len;
    while (in < n) {
        switch (d->state) {
        case CH_SIZE: {
            char c = buf[in];
            int v;
            if (c >= '0' && c <= '9')
                v = c - '0';
            else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
                v = (c | 0x20) - 'a' + 10;
            else if (d->hex_digits > 0 && (c == ';' || c == ' ' || c == '\t' || c == '\r')) {
                d->state = CH_EXT;
                in++;
                continue;
            } else if (d->hex_digits > 0 && c == '\n') {
                in++;
                d->hex_digits = 0;
                d->state = d->remaining == 0 ? CH_TRAILER : CH_DATA;
                continue;
            } else {
                return -EBADMSG;
            }
            if (++d->hex_digits > 15)
                return -EBADMSG; /* no chunk is that large */
            d->remaining = d->remaining * 16 + (size_t)v;
            in++;
            break;
        }
        case CH_EXT:
            if (buf[in++] == '\n') {
                d->hex_digits = 0;
                d->state = d->remaining == 0 ? CH_TRAILER : CH_DATA;
            }
            break;
        case CH_DATA: {
            size_t take = n - in < d->remaining ? n - in : d->remaining;
            memmove(buf + out, buf + in, take);
            out += take;
            in += take;
            d->remaining -= take;
            if (d->remaining == 0)
                d->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (buf[in] == '\r') {
                d->state = CH_DATA_LF;
                in++;
            } else if (buf[in] == '\n') {
                d->state = CH_SIZE;
                in++;
            } else {
                return -EBADMSG;
            }
            break;
        case CH_DATA_LF:
            if (buf[in++] != '\n')
                return -EBADMSG;
            d->state = CH_SIZE;
            break;
        case CH_TRAILER:
            if (buf[in] == '\r') {
                in++;
            } else if (buf[in] == '\n') {
                in++;
                d->state = CH_DONE;
                *len = out;
                *consumed = in;
                return 1;
            } else {
                d->state = CH_TRAILER_LINE;
            }
            break;
        case CH_TRAILER_LINE:
            if (buf[in++] == '\n')
                d->state = CH_TRAILER;
            break;
        case CH_DONE:
            *len = out;
            *consumed = in;
            return 1;
        }
    }
    *len = out;
    *consumed = in;
    return d->state == CH_DONE ? 1 : 0;
}
