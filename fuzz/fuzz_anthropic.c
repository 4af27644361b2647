/*
 * libFuzzer driver for the Anthropic dialect (src/dialect/anthropic.c).
 *
 * The input's first byte picks what is read and how the rest is cut: its low
 * two bits choose the target, the next bits how many of the following bytes
 * (1 to 8) are a cut plan; the rest is the target's input.
 *
 *   0, 3: an Anthropic event stream → OpenAI chunks (the provider stream);
 *   1:    a /v1/messages body → gyre_anthropic_parse_request →
 *         gyre_anthropic_request_to_openai → the Anthropic provider's
 *         chat_request again;
 *   2:    an OpenAI chunk stream → events (the openai provider dialect's
 *         reader) → Anthropic events (gyre_client_anthropic's encoder).
 *
 * Streams are fed once whole and once in pieces of 0 to 15 bytes taken from
 * the plan in turn, each piece copied into an allocation of its own size so
 * that a read past it is caught.  The promises checked:
 *   - cutting never changes the output or the result;
 *   - the provider stream's output is always a sequence of complete
 *     "data: <JSON object>\n\n" events, ending in "data: [DONE]\n\n" exactly
 *     when the stream says it is complete, and a failure fills the error;
 *   - the encoder's output is always a sequence of complete
 *     "event: NAME\ndata: <JSON object whose type is NAME>\n\n" events, with
 *     message_stop last exactly when it says it is complete;
 *   - a request that parse_request accepts becomes an OpenAI request that
 *     gyre's own OpenAI checks accept, and a rejected one says why with a 400;
 *     the provider translation of that request is JSON or a 4xx.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "dialect/anthropic.h"
#include "dialect/client.h"
#include "dialect/dialect.h"
#include "../tests/unit/stream_sse.h" /* a provider stream's events as OpenAI SSE, as gyre_client_openai writes them */
#include "dialect/openai.h"

#define OUT_BOUND ((size_t)1 << 26)

/* A broken promise: say which one, then abort so libFuzzer keeps the input. */
#define check(ok)                                                                                                      \
    do {                                                                                                               \
        if (!(ok)) {                                                                                                   \
            fprintf(stderr, "fuzz_anthropic.c:%d: check(%s) failed\n", __LINE__, #ok);                                 \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

static int is_json_object(const char *s, size_t len)
{
    cJSON *v = cJSON_ParseWithLength(s, len);
    int ok = cJSON_IsObject(v);
    cJSON_Delete(v);
    return ok;
}

/* "data: <JSON object>\n\n"..., with "data: [DONE]\n\n" last iff `complete`. */
static void check_openai_sse(const gyre_buf_t *out, int complete)
{
    const char *p = out->base != NULL ? out->base : "", *end = p + out->len;
    int done = 0;
    while (p < end) {
        check(!done); /* nothing after [DONE] */
        check((size_t)(end - p) > 6 && memcmp(p, "data: ", 6) == 0);
        p += 6;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        check(nl != NULL && nl + 1 < end && nl[1] == '\n');
        size_t len = (size_t)(nl - p);
        if (len == 6 && memcmp(p, "[DONE]", 6) == 0)
            done = 1;
        else
            check(is_json_object(p, len));
        p = nl + 2;
    }
    check(done == complete);
}

/* "event: NAME\ndata: {"type":"NAME",...}\n\n"..., message_stop last iff `complete`. */
static void check_anthropic_sse(const gyre_buf_t *out, int complete)
{
    const char *p = out->base != NULL ? out->base : "", *end = p + out->len;
    int stopped = 0;
    while (p < end) {
        check(!stopped);
        check((size_t)(end - p) > 7 && memcmp(p, "event: ", 7) == 0);
        p += 7;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        check(nl != NULL);
        char name[64];
        size_t nlen = (size_t)(nl - p);
        check(nlen > 0 && nlen < sizeof(name));
        memcpy(name, p, nlen);
        name[nlen] = '\0';
        p = nl + 1;
        check((size_t)(end - p) > 6 && memcmp(p, "data: ", 6) == 0);
        p += 6;
        nl = memchr(p, '\n', (size_t)(end - p));
        check(nl != NULL && nl + 1 < end && nl[1] == '\n');
        cJSON *v = cJSON_ParseWithLength(p, (size_t)(nl - p));
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(v, "type");
        check(cJSON_IsString(type) && strcmp(type->valuestring, name) == 0);
        cJSON_Delete(v);
        if (strcmp(name, "message_stop") == 0)
            stopped = 1;
        p = nl + 2;
    }
    check(stopped == complete);
}

/* Feeds a copy of exactly `len` bytes, so that reading past it is caught. */
static int feed_stream(gyre_dialect_stream_t *s, const uint8_t *bytes, size_t len, gyre_buf_t *out,
                       gyre_api_error_t *err)
{
    char *piece = malloc(len ? len : 1);
    memcpy(piece, bytes, len);
    int r = sse_stream_feed(&gyre_dialect_anthropic, s, piece, len, out, err);
    free(piece);
    return r;
}

/* The Anthropic client's encoder fed by the OpenAI provider dialect's reader, as the proxy feeds it. */
typedef struct encoder_run {
    unsigned char enc[256];
    gyre_buf_t *out;
    gyre_dialect_stream_t *s;
    int rc;
} encoder_run_t;

static int encoder_emit(void *ctx, const gyre_event_t *ev)
{
    encoder_run_t *r = ctx;
    return gyre_client_anthropic.encode(r->enc, ev, r->out);
}

static void encoder_start(encoder_run_t *r, gyre_buf_t *out, const char *model)
{
    memset(r, 0, sizeof(*r));
    check(gyre_client_anthropic.encoder_size <= sizeof(r->enc));
    r->out = out;
    gyre_chat_call_t chat;
    memset(&chat, 0, sizeof(chat));
    r->s = gyre_dialect_openai.stream_create(&chat);
    gyre_client_call_t call = {.model = model, .include_usage = 1};
    gyre_client_anthropic.encoder_init(r->enc, &call);
}

/* Feeds a copy of exactly `len` bytes; a failed read ends the stream with the client's error event, as the
 * proxy ends it. */
static int feed_encoder(encoder_run_t *r, const uint8_t *bytes, size_t len)
{
    if (r->rc != 0)
        return r->rc;
    char *piece = malloc(len ? len : 1);
    memcpy(piece, bytes, len);
    gyre_event_sink_t sink = {encoder_emit, r};
    gyre_api_error_t err;
    r->rc = gyre_dialect_openai.stream_feed(r->s, piece, len, &sink, &err);
    free(piece);
    if (r->rc != 0) {
        check(err.status >= 400 && err.message[0] != '\0');
        gyre_client_anthropic.error_event(&err, r->out);
    }
    return r->rc;
}

static void fuzz_provider_stream(const uint8_t *plan, size_t nplan, const uint8_t *in, size_t len)
{
    gyre_chat_call_t call;
    memset(&call, 0, sizeof(call));
    call.model = "claude";
    call.stream = 1;
    call.include_usage = nplan % 2;
    call.id = "chatcmpl-fuzz";
    call.created = 1;
    gyre_buf_t whole, pieces;
    gyre_buf_init(&whole, OUT_BOUND);
    gyre_buf_init(&pieces, OUT_BOUND);
    gyre_api_error_t ea, eb;
    memset(&ea, 0, sizeof(ea));
    memset(&eb, 0, sizeof(eb));

    gyre_dialect_stream_t *a = sse_stream_create(&gyre_dialect_anthropic, &call);
    int ra = feed_stream(a, in, len, &whole, &ea);
    gyre_dialect_stream_t *b = sse_stream_create(&gyre_dialect_anthropic, &call);
    int rb = 0;
    for (size_t pos = 0, k = 0; pos < len && rb == 0; k++) {
        size_t step = (size_t)(plan[k % nplan] % 16);
        if (step > len - pos)
            step = len - pos;
        rb = feed_stream(b, in + pos, step, &pieces, &eb);
        pos += step;
        if (step == 0 && rb == 0) {
            rb = feed_stream(b, in + pos, 1, &pieces, &eb);
            pos++;
        }
    }

    check(ra == rb && a->complete == b->complete);
    check(whole.len == pieces.len && (whole.len == 0 || memcmp(whole.base, pieces.base, whole.len) == 0));
    check_openai_sse(&whole, a->complete);
    if (ra != 0) {
        check(ea.status >= 400 && ea.message[0] != '\0' && strcmp(ea.message, eb.message) == 0);
        check(!a->complete);
    }
    sse_stream_destroy(&gyre_dialect_anthropic, a);
    sse_stream_destroy(&gyre_dialect_anthropic, b);
    gyre_buf_dispose(&whole);
    gyre_buf_dispose(&pieces);
}

static void fuzz_encoder(const uint8_t *plan, size_t nplan, const uint8_t *in, size_t len)
{
    gyre_buf_t whole, pieces;
    gyre_buf_init(&whole, OUT_BOUND);
    gyre_buf_init(&pieces, OUT_BOUND);
    encoder_run_t a, b;
    encoder_start(&a, &whole, nplan % 2 ? "claude" : NULL);
    encoder_start(&b, &pieces, nplan % 2 ? "claude" : NULL);
    int ra = feed_encoder(&a, in, len);
    int rb = 0;
    for (size_t pos = 0, k = 0; pos < len && rb == 0; k++) {
        size_t step = (size_t)(plan[k % nplan] % 16);
        if (step > len - pos)
            step = len - pos;
        rb = feed_encoder(&b, in + pos, step);
        pos += step;
        if (step == 0 && rb == 0) {
            rb = feed_encoder(&b, in + pos, 1);
            pos++;
        }
    }
    int complete = gyre_client_anthropic.encoder_complete(a.enc);
    check(ra == rb && complete == gyre_client_anthropic.encoder_complete(b.enc));
    check(whole.len == pieces.len && (whole.len == 0 || memcmp(whole.base, pieces.base, whole.len) == 0));
    check_anthropic_sse(&whole, complete);
    check(!(ra != 0 && complete));
    gyre_dialect_openai.stream_destroy(a.s);
    gyre_dialect_openai.stream_destroy(b.s);
    gyre_buf_dispose(&whole);
    gyre_buf_dispose(&pieces);
}

static void fuzz_request(const uint8_t *in, size_t len)
{
    char *body = malloc(len ? len : 1);
    memcpy(body, in, len);
    gyre_api_error_t err;
    memset(&err, 0, sizeof(err));
    cJSON *req = gyre_anthropic_parse_request(body, len, &err);
    free(body);
    if (req == NULL) {
        check(err.status == 400 && err.message[0] != '\0');
        return;
    }
    cJSON *oa = gyre_anthropic_request_to_openai(req, &err);
    if (oa == NULL) {
        check(err.status == 400 && err.message[0] != '\0');
        cJSON_Delete(req);
        return;
    }
    char *text = cJSON_PrintUnformatted(oa);
    check(text != NULL);
    gyre_openai_request_t r;
    check(gyre_openai_parse_request(GYRE_OPENAI_CHAT, text, strlen(text), &r, &err) == 0);
    gyre_openai_request_dispose(&r);
    cJSON_free(text);

    gyre_chat_call_t call;
    memset(&call, 0, sizeof(call));
    call.req = oa;
    call.model = "claude";
    call.stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(oa, "stream"));
    gyre_buf_t path, out;
    gyre_buf_init(&path, 1024);
    gyre_buf_init(&out, OUT_BOUND);
    if (gyre_dialect_anthropic.chat_request(&call, &path, &out, &err) == 0)
        check(is_json_object(out.base, out.len) && strcmp(path.base, "/messages") == 0);
    else
        check(err.status >= 400 && err.status < 500 && err.message[0] != '\0');
    gyre_buf_dispose(&path);
    gyre_buf_dispose(&out);
    cJSON_Delete(oa);
    cJSON_Delete(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned target = data[0] & 3;
    size_t nplan = (size_t)((data[0] >> 2) % 8) + 1;
    if (nplan > size - 1)
        nplan = size - 1;
    const uint8_t *plan = data + 1, *in = data + 1 + nplan;
    size_t len = size - 1 - nplan;
    if (target == 1)
        fuzz_request(in, len);
    else if (target == 2)
        fuzz_encoder(plan, nplan, in, len);
    else
        fuzz_provider_stream(plan, nplan, in, len);
    return 0;
}
