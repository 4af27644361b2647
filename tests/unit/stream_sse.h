/*
 * Test adapter: a provider dialect's stream read into events and written as
 * OpenAI SSE by gyre_client_openai's encoder, the bytes an OpenAI client of
 * a translated stream gets.  The dialects' stream fixtures were written as
 * those bytes before streams were events, so they check the reader and the
 * encoder together, byte for byte.  The encoder of each open stream is kept
 * here, by the stream's address (tests have one or two open at a time).
 */
#ifndef GYRE_TEST_STREAM_SSE_H
#define GYRE_TEST_STREAM_SSE_H

#include <stdlib.h>
#include <string.h>

#include "dialect/dialect.h"
#include "dialect/openai_stream.h"

typedef struct sse_adapter {
    const gyre_dialect_stream_t *stream;
    gyre_openai_encoder_t enc;
    gyre_buf_t *out;
} sse_adapter_t;

static sse_adapter_t sse_adapters[4];

static int sse_adapter_emit(void *ctx, const gyre_event_t *ev)
{
    sse_adapter_t *a = ctx;
    return gyre_openai_encode(&a->enc, ev, a->out);
}

static sse_adapter_t *sse_adapter_of(const gyre_dialect_stream_t *s)
{
    for (size_t i = 0; i < sizeof(sse_adapters) / sizeof(sse_adapters[0]); i++)
        if (sse_adapters[i].stream == s)
            return &sse_adapters[i];
    return NULL;
}

static gyre_dialect_stream_t *sse_stream_create(const gyre_dialect_t *d, const gyre_chat_call_t *call)
{
    gyre_dialect_stream_t *s = d->stream_create(call);
    sse_adapter_t *a = sse_adapter_of(NULL);
    if (a == NULL)
        abort();
    a->stream = s;
    gyre_openai_encoder_init(&a->enc, call->id, call->model, call->created, call->include_usage);
    return s;
}

static int sse_stream_feed(const gyre_dialect_t *d, gyre_dialect_stream_t *s, const char *bytes, size_t len,
                           gyre_buf_t *out, gyre_api_error_t *err)
{
    sse_adapter_t *a = sse_adapter_of(s);
    a->out = out;
    gyre_event_sink_t sink = {sse_adapter_emit, a};
    return d->stream_feed(s, bytes, len, &sink, err);
}

static void sse_stream_destroy(const gyre_dialect_t *d, gyre_dialect_stream_t *s)
{
    sse_adapter_t *a = sse_adapter_of(s);
    if (a != NULL) {
        gyre_openai_encoder_dispose(&a->enc);
        memset(a, 0, sizeof(*a));
    }
    d->stream_destroy(s);
}

#endif
