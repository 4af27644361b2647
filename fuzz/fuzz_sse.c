/*
 * libFuzzer driver for the SSE parser (src/proxy/sse.c): the input is fed in
 * pieces whose sizes come from the input, and the events must be the same as
 * when it is fed whole.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "proxy/sse.h"

typedef struct record {
    gyre_buf_t all;
} record_t;

static void on_event(void *ctx, const char *event, size_t elen, const char *data, size_t dlen)
{
    record_t *r = ctx;
    gyre_buf_append(&r->all, event, elen);
    gyre_buf_append(&r->all, "\x01", 1);
    gyre_buf_append(&r->all, data, dlen);
    gyre_buf_append(&r->all, "\x02", 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    record_t whole, pieces;
    gyre_buf_init(&whole.all, 1 << 24);
    gyre_buf_init(&pieces.all, 1 << 24);
    gyre_sse_parser_t a, b;
    gyre_sse_init(&a, 4096, on_event, &whole);
    gyre_sse_init(&b, 4096, on_event, &pieces);
    int ra = gyre_sse_feed(&a, (const char *)data, size);
    int rb = 0;
    for (size_t pos = 0; pos < size && rb == 0;) {
        size_t step = (size_t)(data[pos] % 7) + 1;
        if (step > size - pos)
            step = size - pos;
        rb = gyre_sse_feed(&b, (const char *)data + pos, step);
        pos += step;
    }
    /* Fed whole or in pieces, the parser must see the same events. */
    if (ra == 0 && rb == 0 &&
        (whole.all.len != pieces.all.len ||
         (whole.all.len != 0 && memcmp(whole.all.base, pieces.all.base, whole.all.len) != 0)))
        abort();
    gyre_sse_dispose(&a);
    gyre_sse_dispose(&b);
    gyre_buf_dispose(&whole.all);
    gyre_buf_dispose(&pieces.all);
    return 0;
}
