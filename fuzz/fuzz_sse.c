/*
 * libFuzzer driver for the SSE parser (src/common/sse.c).
 *
 * The input's first byte says how many of the next bytes (1 to 16) are a cut
 * plan; the rest is the stream.  The stream is fed once whole and once in
 * pieces whose sizes, 0 to 7 bytes, come from the plan in turn (an empty
 * piece is followed by one byte, so that feeding moves on).  Each piece is
 * copied into an allocation of its own size, so a read past it is caught.
 *
 * The promise checked: cutting never changes the events.  Cut, an unfinished
 * line is buffered and counts against the bound, so the pieces may fail
 * sooner: when they fail, their events must be a prefix of the whole feed's;
 * when they succeed, the whole feed must too, with the same events.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/sse.h"

#define BOUND 4096
#define EVENT_NAME_BOUND 256 /* as sse.c sets it */

static void on_event(void *ctx, const char *event, size_t elen, const char *data, size_t dlen)
{
    gyre_buf_t *all = ctx;
    if (elen > EVENT_NAME_BOUND || dlen > BOUND)
        abort();
    gyre_buf_append(all, event, elen);
    gyre_buf_append(all, "\x01", 1);
    gyre_buf_append(all, data, dlen);
    gyre_buf_append(all, "\x02", 1);
}

/* Feeds a copy of exactly `len` bytes, so that reading past it is caught. */
static int feed_copy(gyre_sse_parser_t *p, const uint8_t *bytes, size_t len)
{
    char *piece = malloc(len ? len : 1);
    memcpy(piece, bytes, len);
    int r = gyre_sse_feed(p, piece, len);
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
    const uint8_t *plan = data + 1, *stream = data + 1 + nplan;
    size_t len = size - 1 - nplan;

    gyre_buf_t whole, pieces;
    gyre_buf_init(&whole, (size_t)1 << 26);
    gyre_buf_init(&pieces, (size_t)1 << 26);
    gyre_sse_parser_t a, b;
    gyre_sse_init(&a, BOUND, on_event, &whole);
    gyre_sse_init(&b, BOUND, on_event, &pieces);

    int ra = feed_copy(&a, stream, len);
    int rb = 0;
    for (size_t pos = 0, k = 0; pos < len && rb == 0; k++) {
        size_t step = (size_t)(plan[k % nplan] % 8);
        if (step > len - pos)
            step = len - pos;
        rb = feed_copy(&b, stream + pos, step);
        if (step == 0 && rb == 0) {
            step = 1;
            rb = feed_copy(&b, stream + pos, step);
        }
        pos += step;
    }

    if (rb == 0 && ra != 0)
        abort();
    if (rb == 0 && (whole.len != pieces.len || (whole.len != 0 && memcmp(whole.base, pieces.base, whole.len) != 0)))
        abort();
    if (rb != 0 && (pieces.len > whole.len || (pieces.len != 0 && memcmp(whole.base, pieces.base, pieces.len) != 0)))
        abort();
    gyre_sse_dispose(&a);
    gyre_sse_dispose(&b);
    gyre_buf_dispose(&whole);
    gyre_buf_dispose(&pieces);
    return 0;
}
