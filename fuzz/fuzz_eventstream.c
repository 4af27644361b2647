/*
 * libFuzzer driver for the AWS event-stream decoder (src/dialect/eventstream.c).
 *
 * The input's first byte says how many of the next bytes (1 to 16) are a cut
 * plan (its low four bits), and whether the stream's CRCs are to be made
 * right first (its top bit), so that mutations get past the CRC checks to
 * the lengths and headers behind them; the rest is the stream.  It is fed once whole and once in pieces
 * whose sizes, 0 to 31 bytes, come from the plan in turn, each piece copied
 * into an allocation of its own size, so that a read past it is caught.
 *
 * The promises checked:
 *  - every message a callback sees lies within the message it came in: the
 *    header section and the payload inside it, each string header inside
 *    the header section, and the total no larger than the bound;
 *  - re-encoding a message (its header section and payload) and decoding
 *    that gives the same headers and payload, and re-encoding its four
 *    string headers alone gives the same four values back;
 *  - cutting never changes the messages: the pieces see exactly what the
 *    whole feed sees, and fail with the same error when it fails.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include <zlib.h>
#include "dialect/eventstream.h"

#define BOUND 4096

typedef struct ctx {
    gyre_buf_t log; /* every message, as headers and payload with their lengths */
} ctx_t;

static int inside(const void *p, size_t n, const void *base, size_t len)
{
    const uint8_t *x = p, *b = base;
    return x >= b && n <= len && (size_t)(x - b) <= len - n;
}

static void check_str(gyre_eventstream_str_t s, const gyre_eventstream_msg_t *m)
{
    if (s.p != NULL && !inside(s.p, s.len, m->headers, m->headers_len))
        abort();
}

static int same_str(gyre_eventstream_str_t a, gyre_eventstream_str_t b)
{
    if (a.p == NULL || b.p == NULL)
        return a.p == b.p;
    return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

/* A string header's value as a NUL-terminated copy, or NULL when absent. */
static char *dup_str(gyre_eventstream_str_t s)
{
    if (s.p == NULL)
        return NULL;
    char *c = malloc(s.len + 1);
    memcpy(c, s.p, s.len);
    c[s.len] = '\0';
    return c;
}

static void check_reencode(const gyre_eventstream_msg_t *m)
{
    gyre_buf_t out;
    gyre_buf_init(&out, (size_t)1 << 20);
    if (gyre_eventstream_encode_raw(m->headers, m->headers_len, m->payload, m->payload_len, &out) != 0)
        abort();
    gyre_eventstream_msg_t again;
    if (gyre_eventstream_decode(out.base, out.len, &again) != 0)
        abort();
    if (again.headers_len != m->headers_len || memcmp(again.headers, m->headers, m->headers_len) != 0 ||
        again.payload_len != m->payload_len || memcmp(again.payload, m->payload, m->payload_len) != 0 ||
        !same_str(again.message_type, m->message_type) || !same_str(again.event_type, m->event_type) ||
        !same_str(again.exception_type, m->exception_type) || !same_str(again.content_type, m->content_type))
        abort();

    /* The string headers alone, through the string encoder.  A value holding a NUL cannot go through it. */
    gyre_eventstream_str_t fields[4] = {m->message_type, m->event_type, m->exception_type, m->content_type};
    static const char *const names[4] = {":message-type", ":event-type", ":exception-type", ":content-type"};
    gyre_eventstream_header_t h[4];
    char *values[4];
    size_t n = 0;
    int has_nul = 0;
    for (size_t i = 0; i < 4; i++) {
        values[i] = dup_str(fields[i]);
        if (values[i] == NULL)
            continue;
        if (strlen(values[i]) != fields[i].len)
            has_nul = 1;
        h[n].name = names[i];
        h[n].value = values[i];
        n++;
    }
    if (!has_nul) {
        gyre_buf_reset(&out);
        if (gyre_eventstream_encode(h, n, m->payload, m->payload_len, &out) != 0)
            abort();
        if (gyre_eventstream_decode(out.base, out.len, &again) != 0)
            abort();
        if (!same_str(again.message_type, m->message_type) || !same_str(again.event_type, m->event_type) ||
            !same_str(again.exception_type, m->exception_type) || !same_str(again.content_type, m->content_type) ||
            again.payload_len != m->payload_len || memcmp(again.payload, m->payload, m->payload_len) != 0)
            abort();
    }
    for (size_t i = 0; i < 4; i++)
        free(values[i]);
    gyre_buf_dispose(&out);
}

static int on_msg(void *arg, const gyre_eventstream_msg_t *m)
{
    ctx_t *c = arg;
    size_t total = GYRE_EVENTSTREAM_MIN + m->headers_len + m->payload_len;
    if (total > BOUND || m->headers_len > total || m->payload != m->headers + m->headers_len)
        abort();
    check_str(m->message_type, m);
    check_str(m->event_type, m);
    check_str(m->exception_type, m);
    check_str(m->content_type, m);
    check_str(m->error_code, m);
    check_str(m->error_message, m);
    check_reencode(m);
    uint32_t lens[2] = {(uint32_t)m->headers_len, (uint32_t)m->payload_len};
    gyre_buf_append(&c->log, lens, sizeof(lens));
    gyre_buf_append(&c->log, m->headers, m->headers_len);
    gyre_buf_append(&c->log, m->payload, m->payload_len);
    return 0;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* Rewrites each frame's two CRCs to match, as far as the lengths lead from frame to frame. */
static void fix_crcs(uint8_t *p, size_t len)
{
    for (size_t pos = 0; len - pos >= GYRE_EVENTSTREAM_PRELUDE;) {
        uint8_t *m = p + pos;
        put32(m + 8, (uint32_t)crc32(0, m, 8));
        size_t total = (size_t)m[0] << 24 | (size_t)m[1] << 16 | (size_t)m[2] << 8 | m[3];
        if (total < GYRE_EVENTSTREAM_MIN || total > len - pos)
            return;
        put32(m + total - 4, (uint32_t)crc32(0, m, (uInt)(total - 4)));
        pos += total;
    }
}

static int feed_copy(gyre_eventstream_decoder_t *d, const uint8_t *bytes, size_t len, ctx_t *c)
{
    uint8_t *piece = malloc(len ? len : 1);
    memcpy(piece, bytes, len);
    int r = gyre_eventstream_feed(d, piece, len, on_msg, c);
    free(piece);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t nplan = (size_t)(data[0] % 16) + 1;
    if (nplan > size - 1)
        nplan = size - 1;
    const uint8_t *plan = data + 1;
    size_t len = size - 1 - nplan;
    uint8_t *stream = malloc(len ? len : 1);
    memcpy(stream, data + 1 + nplan, len);
    if (data[0] & 0x80)
        fix_crcs(stream, len);

    ctx_t whole, pieces;
    gyre_buf_init(&whole.log, (size_t)1 << 26);
    gyre_buf_init(&pieces.log, (size_t)1 << 26);
    gyre_eventstream_decoder_t a, b;
    gyre_eventstream_init(&a, BOUND);
    gyre_eventstream_init(&b, BOUND);

    int ra = feed_copy(&a, stream, len, &whole);
    int rb = 0;
    for (size_t pos = 0, k = 0; pos < len && rb == 0; k++) {
        size_t step = (size_t)(plan[k % nplan] % 32);
        if (step > len - pos)
            step = len - pos;
        rb = feed_copy(&b, stream + pos, step, &pieces);
        if (step == 0 && rb == 0) {
            step = 1;
            rb = feed_copy(&b, stream + pos, step, &pieces);
        }
        pos += step;
    }

    if (ra != rb)
        abort();
    if (ra != 0 && ra != -EBADMSG && ra != -E2BIG)
        abort();
    if (whole.log.len != pieces.log.len ||
        (whole.log.len != 0 && memcmp(whole.log.base, pieces.log.base, whole.log.len) != 0))
        abort();
    if (ra == 0 && gyre_eventstream_pending(&a) != gyre_eventstream_pending(&b))
        abort();
    /* A failed decoder stays failed. */
    if (ra != 0 && gyre_eventstream_feed(&a, "", 0, on_msg, &whole) != ra)
        abort();
    gyre_eventstream_dispose(&a);
    gyre_eventstream_dispose(&b);
    gyre_buf_dispose(&whole.log);
    gyre_buf_dispose(&pieces.log);
    free(stream);
    return 0;
}
