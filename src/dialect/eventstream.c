/* AWS event-stream framing: the incremental decoder and the encoder (see eventstream.h). */
#include "dialect/eventstream.h"

#include <errno.h>
#include <string.h>
#include <zlib.h>


static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Checks a prelude's CRC and lengths; sets *total.  max_message 0 means no bound beyond the format's. */
static int check_prelude(const uint8_t *p, size_t max_message, size_t *total)
{
    if ((uint32_t)crc32(0, p, 8) != get32(p + 8))
        return -EBADMSG;
    uint32_t t = get32(p), h = get32(p + 4);
    if (t < GYRE_EVENTSTREAM_MIN || h > t - GYRE_EVENTSTREAM_MIN)
        return -EBADMSG;
    if (max_message != 0 && t > max_message)
        return -E2BIG;
    *total = t;
    return 0;
}

/* The size of a fixed-size value type, or -1 for the length-prefixed ones and unknown types. */
static int value_size(uint8_t type)
{
    switch (type) {
    case GYRE_EVENTSTREAM_TRUE:
    case GYRE_EVENTSTREAM_FALSE: return 0;
    case GYRE_EVENTSTREAM_BYTE: return 1;
    case GYRE_EVENTSTREAM_SHORT: return 2;
    case GYRE_EVENTSTREAM_INT: return 4;
    case GYRE_EVENTSTREAM_LONG:
    case GYRE_EVENTSTREAM_TIMESTAMP: return 8;
    case GYRE_EVENTSTREAM_UUID: return 16;
    default: return -1;
    }
}

static int name_is(const uint8_t *name, size_t len, const char *s)
{
    return len == strlen(s) && memcmp(name, s, len) == 0;
}

/* Walks the header section, keeping the string values of the headers gyre reads. */
static int parse_headers(const uint8_t *p, size_t len, gyre_eventstream_msg_t *m)
{
    size_t off = 0;
    while (off < len) {
        size_t nlen = p[off++];
        if (nlen > len - off)
            return -EBADMSG;
        const uint8_t *name = p + off;
        off += nlen;
        if (off == len)
            return -EBADMSG;
        uint8_t type = p[off++];
        size_t vlen;
        int fixed = value_size(type);
        if (fixed >= 0) {
            vlen = (size_t)fixed;
        } else if (type == GYRE_EVENTSTREAM_BYTES || type == GYRE_EVENTSTREAM_STRING) {
            if (len - off < 2)
                return -EBADMSG;
            vlen = (size_t)p[off] << 8 | p[off + 1];
            off += 2;
        } else {
            return -EBADMSG;
        }
        if (vlen > len - off)
            return -EBADMSG;
        if (type == GYRE_EVENTSTREAM_STRING) {
            gyre_eventstream_str_t *slot = NULL;
            if (name_is(name, nlen, ":message-type"))
                slot = &m->message_type;
            else if (name_is(name, nlen, ":event-type"))
                slot = &m->event_type;
            else if (name_is(name, nlen, ":exception-type"))
                slot = &m->exception_type;
            else if (name_is(name, nlen, ":content-type"))
                slot = &m->content_type;
            else if (name_is(name, nlen, ":error-code"))
                slot = &m->error_code;
            else if (name_is(name, nlen, ":error-message"))
                slot = &m->error_message;
            if (slot != NULL) {
                slot->p = (const char *)(p + off);
                slot->len = vlen;
            }
        }
        off += vlen;
    }
    return 0;
}

int gyre_eventstream_decode(const void *bytes, size_t len, gyre_eventstream_msg_t *out)
{
    const uint8_t *p = bytes;
    size_t total;
    memset(out, 0, sizeof(*out));
    if (len < GYRE_EVENTSTREAM_PRELUDE)
        return -EBADMSG;
    int r = check_prelude(p, 0, &total);
    if (r != 0)
        return r;
    if (total != len)
        return -EBADMSG;
    if ((uint32_t)crc32(0, p, (uInt)(total - 4)) != get32(p + total - 4))
        return -EBADMSG;
    size_t hlen = get32(p + 4);
    out->headers = p + GYRE_EVENTSTREAM_PRELUDE;
    out->headers_len = hlen;
    out->payload = out->headers + hlen;
    out->payload_len = total - GYRE_EVENTSTREAM_MIN - hlen;
    r = parse_headers(out->headers, hlen, out);
    if (r != 0)
        memset(out, 0, sizeof(*out));
    return r;
}

void gyre_eventstream_init(gyre_eventstream_decoder_t *d, size_t max_message)
{
    gyre_buf_init(&d->buf, max_message);
    d->max_message = max_message;
    d->want = 0;
    d->error = 0;
}

void gyre_eventstream_dispose(gyre_eventstream_decoder_t *d)
{
    gyre_buf_dispose(&d->buf);
}

int gyre_eventstream_pending(const gyre_eventstream_decoder_t *d)
{
    return d->buf.len != 0;
}

static int deliver(const uint8_t *p, size_t len, gyre_eventstream_cb cb, void *ctx)
{
    gyre_eventstream_msg_t m;
    int r = gyre_eventstream_decode(p, len, &m);
    if (r != 0)
        return r;
    return cb(ctx, &m);
}

static int feed(gyre_eventstream_decoder_t *d, const uint8_t *p, size_t len, gyre_eventstream_cb cb, void *ctx)
{
    int r;
    while (len > 0) {
        /* Whole messages in the input are decoded where they lie, without a copy. */
        if (d->buf.len == 0 && len >= GYRE_EVENTSTREAM_PRELUDE) {
            size_t total;
            if ((r = check_prelude(p, d->max_message, &total)) != 0)
                return r;
            if (len >= total) {
                if ((r = deliver(p, total, cb, ctx)) != 0)
                    return r;
                p += total;
                len -= total;
                continue;
            }
            d->want = total;
        }
        /* Otherwise the prelude, then the rest of the message, go into the buffer. */
        size_t goal = d->buf.len < GYRE_EVENTSTREAM_PRELUDE ? GYRE_EVENTSTREAM_PRELUDE : d->want;
        size_t take = goal - d->buf.len < len ? goal - d->buf.len : len;
        if (gyre_buf_append(&d->buf, p, take) != 0)
            return -E2BIG;
        p += take;
        len -= take;
        if (d->buf.len == GYRE_EVENTSTREAM_PRELUDE && d->want == 0) {
            if ((r = check_prelude((const uint8_t *)d->buf.base, d->max_message, &d->want)) != 0)
                return r;
        }
        if (d->want != 0 && d->buf.len == d->want) {
            r = deliver((const uint8_t *)d->buf.base, d->buf.len, cb, ctx);
            gyre_buf_reset(&d->buf);
            d->want = 0;
            if (r != 0)
                return r;
        }
    }
    return 0;
}

int gyre_eventstream_feed(gyre_eventstream_decoder_t *d, const void *bytes, size_t len, gyre_eventstream_cb cb,
                          void *ctx)
{
    if (d->error != 0)
        return d->error;
    int r = feed(d, bytes, len, cb, ctx);
    if (r != 0)
        d->error = r;
    return r;
}

int gyre_eventstream_encode_raw(const void *headers, size_t headers_len, const void *payload, size_t payload_len,
                                gyre_buf_t *out)
{
    if (headers_len > UINT32_MAX - GYRE_EVENTSTREAM_MIN ||
        payload_len > UINT32_MAX - GYRE_EVENTSTREAM_MIN - headers_len)
        return -EINVAL;
    size_t total = GYRE_EVENTSTREAM_MIN + headers_len + payload_len, start = out->len;
    uint8_t prelude[GYRE_EVENTSTREAM_PRELUDE], crc[4];
    put32(prelude, (uint32_t)total);
    put32(prelude + 4, (uint32_t)headers_len);
    put32(prelude + 8, (uint32_t)crc32(0, prelude, 8));
    if (gyre_buf_append(out, prelude, sizeof(prelude)) != 0 || gyre_buf_append(out, headers, headers_len) != 0 ||
        gyre_buf_append(out, payload, payload_len) != 0)
        goto full;
    put32(crc, (uint32_t)crc32(0, (const Bytef *)out->base + start, (uInt)(total - 4)));
    if (gyre_buf_append(out, crc, sizeof(crc)) != 0)
        goto full;
    return 0;
full:
    out->len = start;
    if (out->base != NULL)
        out->base[start] = '\0';
    return -E2BIG;
}

int gyre_eventstream_encode(const gyre_eventstream_header_t *headers, size_t nheaders, const void *payload,
                            size_t payload_len, gyre_buf_t *out)
{
    gyre_buf_t h;
    gyre_buf_init(&h, out->max);
    int r = 0;
    for (size_t i = 0; i < nheaders && r == 0; i++) {
        size_t nlen = strlen(headers[i].name), vlen = strlen(headers[i].value);
        if (nlen > 255 || vlen > 65535) {
            r = -EINVAL;
            break;
        }
        uint8_t n = (uint8_t)nlen, tv[3] = {GYRE_EVENTSTREAM_STRING, (uint8_t)(vlen >> 8), (uint8_t)vlen};
        if (gyre_buf_append(&h, &n, 1) != 0 || gyre_buf_append(&h, headers[i].name, nlen) != 0 ||
            gyre_buf_append(&h, tv, 3) != 0 || gyre_buf_append(&h, headers[i].value, vlen) != 0)
            r = -E2BIG;
    }
    if (r == 0)
        r = gyre_eventstream_encode_raw(h.base, h.len, payload, payload_len, out);
    gyre_buf_dispose(&h);
    return r;
}
