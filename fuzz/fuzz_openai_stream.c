/*
 * libFuzzer driver for the OpenAI chunk reader (src/dialect/openai_stream.c):
 * an OpenAI chat-chunk SSE stream → structured events, as the openai and
 * azure provider dialects read a provider's stream, then written back as
 * chunks by gyre_client_openai's encoder and accumulated into the
 * chat.completion the trace keeps.
 *
 * The first byte is the cut plan's length (1 to 8 bytes of plan follow); the
 * rest is the stream.  It is fed once whole and once in pieces of 0 to 15
 * bytes taken from the plan in turn, each piece copied into an allocation of
 * its own size so that a read past it is caught.  The promises checked:
 *   - cutting never changes the events, the result, or what is accumulated;
 *   - the encoder's output is a sequence of complete "data: <JSON object>\n\n"
 *     events, "data: [DONE]\n\n" last exactly when the reader read [DONE];
 *   - the strict reader (translating for another API) fails only with a
 *     filled error, and the lenient one (the accumulator's) never fails below
 *     its bound;
 *   - the accumulated completion is always a JSON object.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "dialect/client.h"
#include "dialect/dialect.h"
#include "dialect/openai_stream.h"

#define OUT_BOUND ((size_t)1 << 26)
#define EVENT_BOUND ((size_t)1 << 16)

#define check(ok)                                                                                                      \
    do {                                                                                                               \
        if (!(ok)) {                                                                                                   \
            fprintf(stderr, "fuzz_openai_stream.c:%d: check(%s) failed\n", __LINE__, #ok);                             \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

typedef struct run {
    gyre_openai_reader_t reader;
    gyre_openai_encoder_t enc;
    gyre_openai_accum_t acc;
    gyre_buf_t out;
    int rc;
} run_t;

static int emit(void *ctx, const gyre_event_t *ev)
{
    run_t *r = ctx;
    /* Every borrowed string is readable for its whole length (ASan says when not). */
    volatile char sink = 0;
    for (size_t i = 0; i < ev->text.len; i++)
        sink ^= ev->text.p[i];
    for (size_t i = 0; i < ev->id.len; i++)
        sink ^= ev->id.p[i];
    (void)sink;
    check(ev->type >= GYRE_EVENT_START && ev->type <= GYRE_EVENT_CHUNK);
    check(ev->type != GYRE_EVENT_ERROR || (ev->error != NULL && ev->error->status >= 400));
    check(ev->type != GYRE_EVENT_FINISH || ev->finish_reason != NULL);
    gyre_openai_accum_emit(&r->acc, ev);
    return gyre_openai_encode(&r->enc, ev, &r->out);
}

static void run_init(run_t *r, int strict)
{
    memset(r, 0, sizeof(*r));
    gyre_openai_reader_init(&r->reader, EVENT_BOUND);
    r->reader.strict = strict;
    gyre_openai_encoder_init(&r->enc, "chatcmpl-fuzz", "m", 1, 1);
    gyre_openai_accum_init(&r->acc, EVENT_BOUND);
    gyre_buf_init(&r->out, OUT_BOUND);
}

static void run_dispose(run_t *r)
{
    gyre_openai_reader_dispose(&r->reader);
    gyre_openai_encoder_dispose(&r->enc);
    gyre_openai_accum_dispose(&r->acc);
    gyre_buf_dispose(&r->out);
}

static void feed(run_t *r, const uint8_t *bytes, size_t len)
{
    if (r->rc != 0)
        return;
    char *piece = malloc(len ? len : 1);
    memcpy(piece, bytes, len);
    gyre_event_sink_t sink = {emit, r};
    r->rc = gyre_openai_reader_feed(&r->reader, piece, len, &sink);
    free(piece);
}

/* "data: <JSON object>\n\n"..., with "data: [DONE]\n\n" last iff `done`. */
static void check_sse(const gyre_buf_t *out, int done)
{
    const char *p = out->base != NULL ? out->base : "", *end = p + out->len;
    int seen_done = 0;
    while (p < end) {
        check(!seen_done);
        check((size_t)(end - p) > 6 && memcmp(p, "data: ", 6) == 0);
        p += 6;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        check(nl != NULL && nl + 1 < end && nl[1] == '\n');
        size_t n = (size_t)(nl - p);
        if (n == 6 && memcmp(p, "[DONE]", 6) == 0) {
            seen_done = 1;
        } else {
            cJSON *v = cJSON_ParseWithLength(p, n);
            check(cJSON_IsObject(v));
            cJSON_Delete(v);
        }
        p = nl + 2;
    }
    check(seen_done == done);
}

static void one(int strict, const uint8_t *plan, size_t nplan, const uint8_t *in, size_t len)
{
    run_t a, b;
    run_init(&a, strict);
    run_init(&b, strict);
    feed(&a, in, len);
    for (size_t pos = 0, k = 0; pos < len && b.rc == 0; k++) {
        size_t step = (size_t)(plan[k % nplan] % 16);
        if (step > len - pos)
            step = len - pos;
        feed(&b, in + pos, step);
        pos += step;
        if (step == 0 && b.rc == 0) {
            feed(&b, in + pos, 1);
            pos++;
        }
    }
    check(a.rc == b.rc);
    check(a.rc == 0 || a.rc == -E2BIG || (strict && a.rc == -EBADMSG && a.reader.error.message[0] != '\0'));
    check(a.out.len == b.out.len && (a.out.len == 0 || memcmp(a.out.base, b.out.base, a.out.len) == 0));
    if (a.rc == 0)
        check_sse(&a.out, a.reader.done);
    gyre_buf_t ca, cb;
    gyre_buf_init(&ca, OUT_BOUND);
    gyre_buf_init(&cb, OUT_BOUND);
    check(gyre_openai_accum_completion(&a.acc, &ca) == 0 && gyre_openai_accum_completion(&b.acc, &cb) == 0);
    check(ca.len == cb.len && memcmp(ca.base, cb.base, ca.len) == 0);
    cJSON *v = cJSON_ParseWithLength(ca.base, ca.len);
    check(cJSON_IsObject(v));
    cJSON_Delete(v);
    gyre_buf_dispose(&ca);
    gyre_buf_dispose(&cb);
    run_dispose(&a);
    run_dispose(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t nplan = (size_t)(data[0] % 8) + 1;
    if (size < 1 + nplan)
        return 0;
    const uint8_t *plan = data + 1, *in = data + 1 + nplan;
    size_t len = size - 1 - nplan;
    one(0, plan, nplan, in, len);
    one(1, plan, nplan, in, len);
    return 0;
}
