/* AWS event-stream framing: CRC-32, the incremental decoder and the encoder (see eventstream.h). */
#include "dialect/eventstream.h"

#include <errno.h>
#include <string.h>

/* The reflected IEEE polynomial 0xedb88320, one entry per byte value. */
static const uint32_t crc_table[256] = {
    0x00000000u, 0x77073096u, 0xee0e612cu, 0x990951bau, 0x076dc419u, 0x706af48fu, 0xe963a535u, 0x9e6495a3u, 0x0edb8832u,
    0x79dcb8a4u, 0xe0d5e91eu, 0x97d2d988u, 0x09b64c2bu, 0x7eb17cbdu, 0xe7b82d07u, 0x90bf1d91u, 0x1db71064u, 0x6ab020f2u,
    0xf3b97148u, 0x84be41deu, 0x1adad47du, 0x6ddde4ebu, 0xf4d4b551u, 0x83d385c7u, 0x136c9856u, 0x646ba8c0u, 0xfd62f97au,
    0x8a65c9ecu, 0x14015c4fu, 0x63066cd9u, 0xfa0f3d63u, 0x8d080df5u, 0x3b6e20c8u, 0x4c69105eu, 0xd56041e4u, 0xa2677172u,
    0x3c03e4d1u, 0x4b04d447u, 0xd20d85fdu, 0xa50ab56bu, 0x35b5a8fau, 0x42b2986cu, 0xdbbbc9d6u, 0xacbcf940u, 0x32d86ce3u,
    0x45df5c75u, 0xdcd60dcfu, 0xabd13d59u, 0x26d930acu, 0x51de003au, 0xc8d75180u, 0xbfd06116u, 0x21b4f4b5u, 0x56b3c423u,
    0xcfba9599u, 0xb8bda50fu, 0x2802b89eu, 0x5f058808u, 0xc60cd9b2u, 0xb10be924u, 0x2f6f7c87u, 0x58684c11u, 0xc1611dabu,
    0xb6662d3du, 0x76dc4190u, 0x01db7106u, 0x98d220bcu, 0xefd5102au, 0x71b18589u, 0x06b6b51fu, 0x9fbfe4a5u, 0xe8b8d433u,
    0x7807c9a2u, 0x0f00f934u, 0x9609a88eu, 0xe10e9818u, 0x7f6a0dbbu, 0x086d3d2du, 0x91646c97u, 0xe6635c01u, 0x6b6b51f4u,
    0x1c6c6162u, 0x856530d8u, 0xf262004eu, 0x6c0695edu, 0x1b01a57bu, 0x8208f4c1u, 0xf50fc457u, 0x65b0d9c6u, 0x12b7e950u,
    0x8bbeb8eau, 0xfcb9887cu, 0x62dd1ddfu, 0x15da2d49u, 0x8cd37cf3u, 0xfbd44c65u, 0x4db26158u, 0x3ab551ceu, 0xa3bc0074u,
    0xd4bb30e2u, 0x4adfa541u, 0x3dd895d7u, 0xa4d1c46du, 0xd3d6f4fbu, 0x4369e96au, 0x346ed9fcu, 0xad678846u, 0xda60b8d0u,
    0x44042d73u, 0x33031de5u, 0xaa0a4c5fu, 0xdd0d7cc9u, 0x5005713cu, 0x270241aau, 0xbe0b1010u, 0xc90c2086u, 0x5768b525u,
    0x206f85b3u, 0xb966d409u, 0xce61e49fu, 0x5edef90eu, 0x29d9c998u, 0xb0d09822u, 0xc7d7a8b4u, 0x59b33d17u, 0x2eb40d81u,
    0xb7bd5c3bu, 0xc0ba6cadu, 0xedb88320u, 0x9abfb3b6u, 0x03b6e20cu, 0x74b1d29au, 0xead54739u, 0x9dd277afu, 0x04db2615u,
    0x73dc1683u, 0xe3630b12u, 0x94643b84u, 0x0d6d6a3eu, 0x7a6a5aa8u, 0xe40ecf0bu, 0x9309ff9du, 0x0a00ae27u, 0x7d079eb1u,
    0xf00f9344u, 0x8708a3d2u, 0x1e01f268u, 0x6906c2feu, 0xf762575du, 0x806567cbu, 0x196c3671u, 0x6e6b06e7u, 0xfed41b76u,
    0x89d32be0u, 0x10da7a5au, 0x67dd4accu, 0xf9b9df6fu, 0x8ebeeff9u, 0x17b7be43u, 0x60b08ed5u, 0xd6d6a3e8u, 0xa1d1937eu,
    0x38d8c2c4u, 0x4fdff252u, 0xd1bb67f1u, 0xa6bc5767u, 0x3fb506ddu, 0x48b2364bu, 0xd80d2bdau, 0xaf0a1b4cu, 0x36034af6u,
    0x41047a60u, 0xdf60efc3u, 0xa867df55u, 0x316e8eefu, 0x4669be79u, 0xcb61b38cu, 0xbc66831au, 0x256fd2a0u, 0x5268e236u,
    0xcc0c7795u, 0xbb0b4703u, 0x220216b9u, 0x5505262fu, 0xc5ba3bbeu, 0xb2bd0b28u, 0x2bb45a92u, 0x5cb36a04u, 0xc2d7ffa7u,
    0xb5d0cf31u, 0x2cd99e8bu, 0x5bdeae1du, 0x9b64c2b0u, 0xec63f226u, 0x756aa39cu, 0x026d930au, 0x9c0906a9u, 0xeb0e363fu,
    0x72076785u, 0x05005713u, 0x95bf4a82u, 0xe2b87a14u, 0x7bb12baeu, 0x0cb61b38u, 0x92d28e9bu, 0xe5d5be0du, 0x7cdcefb7u,
    0x0bdbdf21u, 0x86d3d2d4u, 0xf1d4e242u, 0x68ddb3f8u, 0x1fda836eu, 0x81be16cdu, 0xf6b9265bu, 0x6fb077e1u, 0x18b74777u,
    0x88085ae6u, 0xff0f6a70u, 0x66063bcau, 0x11010b5cu, 0x8f659effu, 0xf862ae69u, 0x616bffd3u, 0x166ccf45u, 0xa00ae278u,
    0xd70dd2eeu, 0x4e048354u, 0x3903b3c2u, 0xa7672661u, 0xd06016f7u, 0x4969474du, 0x3e6e77dbu, 0xaed16a4au, 0xd9d65adcu,
    0x40df0b66u, 0x37d83bf0u, 0xa9bcae53u, 0xdebb9ec5u, 0x47b2cf7fu, 0x30b5ffe9u, 0xbdbdf21cu, 0xcabac28au, 0x53b39330u,
    0x24b4a3a6u, 0xbad03605u, 0xcdd70693u, 0x54de5729u, 0x23d967bfu, 0xb3667a2eu, 0xc4614ab8u, 0x5d681b02u, 0x2a6f2b94u,
    0xb40bbe37u, 0xc30c8ea1u, 0x5a05df1bu, 0x2d02ef8du,
};

uint32_t gyre_eventstream_crc32(uint32_t crc, const void *p, size_t n)
{
    const uint8_t *b = p;
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = crc_table[(crc ^ b[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

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
    if (gyre_eventstream_crc32(0, p, 8) != get32(p + 8))
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
    if (gyre_eventstream_crc32(0, p, total - 4) != get32(p + total - 4))
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
    put32(prelude + 8, gyre_eventstream_crc32(0, prelude, 8));
    if (gyre_buf_append(out, prelude, sizeof(prelude)) != 0 || gyre_buf_append(out, headers, headers_len) != 0 ||
        gyre_buf_append(out, payload, payload_len) != 0)
        goto full;
    put32(crc, gyre_eventstream_crc32(0, out->base + start, total - 4));
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
