/*
 * libFuzzer driver for the Gemini dialect (src/dialect/gemini.c), which
 * reads what a provider sends: alt=sse streams and whole answers.
 *
 * The input's first byte says how many of the next bytes (1 to 16) are a cut
 * plan, and (its top bit) whether the client asked for usage; the rest is
 * the provider's bytes.  They are translated as a stream once whole and once
 * in pieces whose sizes, 0 to 7 bytes, come from the plan in turn, each
 * piece copied into an allocation of its own size so that a read past it is
 * caught.  The same bytes are then read as a whole answer, an error body and
 * (when they are a JSON object) an OpenAI request.
 *
 * The promises checked:
 *  - cutting never changes a stream's translation: same result, same bytes;
 *  - a stream's output is only whole "data: <JSON object>\n\n" events, with
 *    "data: [DONE]\n\n" last exactly when the stream is complete, and a
 *    failure comes with an error status;
 *  - a whole answer becomes a JSON object with a non-empty `choices` array,
 *    or fails with an error status and leaves the output as it was;
 *  - a request that translates is a JSON object sent to a /models/ path;
 *  - nothing leaks (LeakSanitizer).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/buf.h"
#include "dialect/dialect.h"
#include "../tests/unit/stream_sse.h" /* a provider stream's events as OpenAI SSE, as gyre_client_openai writes them */

#define OUT_BOUND ((size_t)1 << 26)

/* Checks the shape of a translated stream; `complete` says whether [DONE] must end it. */
static void check_events(const gyre_buf_t *out, int complete)
{
    size_t pos = 0;
    int done = 0;
    while (pos < out->len) {
        if (done)
            abort(); /* nothing may follow [DONE] */
        if (out->len - pos < 8 || memcmp(out->base + pos, "data: ", 6) != 0)
            abort();
        const char *data = out->base + pos + 6;
        const char *end = memmem(data, out->len - pos - 6, "\n\n", 2);
        if (end == NULL)
            abort();
        size_t n = (size_t)(end - data);
        if (n == 6 && memcmp(data, "[DONE]", 6) == 0) {
            done = 1;
        } else {
            cJSON *chunk = cJSON_ParseWithLength(data, n);
            if (!cJSON_IsObject(chunk) || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(chunk, "choices")))
                abort();
            cJSON_Delete(chunk);
        }
        pos = (size_t)(end - out->base) + 2;
    }
    if (done != complete)
        abort();
}

/* Feeds a copy of exactly `len` bytes, so that reading past it is caught. */
static int feed_copy(gyre_dialect_stream_t *s, const uint8_t *bytes, size_t len, gyre_buf_t *out, gyre_api_error_t *err)
{
    char *piece = malloc(len ? len : 1);
    memcpy(piece, bytes, len);
    int rc = sse_stream_feed(&gyre_dialect_gemini, s, piece, len, out, err);
    free(piece);
    return rc;
}

/* Translates `bytes` as a stream, whole (plan NULL) or cut as the plan says; an empty piece is followed by one byte. */
static int translate(const gyre_chat_call_t *call, const uint8_t *plan, size_t nplan, const uint8_t *bytes, size_t len,
                     gyre_buf_t *out, gyre_api_error_t *err, int *complete)
{
    gyre_dialect_stream_t *s = sse_stream_create(&gyre_dialect_gemini, call);
    int rc = 0;
    for (size_t pos = 0, k = 0; pos < len && rc == 0; k++) {
        size_t step = plan != NULL ? (size_t)(plan[k % nplan] % 8) : len;
        if (step > len - pos)
            step = len - pos;
        rc = feed_copy(s, bytes + pos, step, out, err);
        if (step == 0 && rc == 0) {
            step = 1;
            rc = feed_copy(s, bytes + pos, step, out, err);
        }
        pos += step;
    }
    *complete = s->complete;
    sse_stream_destroy(&gyre_dialect_gemini, s);
    return rc;
}

static void check_answer(const gyre_chat_call_t *call, const uint8_t *bytes, size_t len)
{
    gyre_buf_t out;
    gyre_api_error_t err;
    gyre_buf_init(&out, OUT_BOUND);
    char *body = malloc(len ? len : 1);
    memcpy(body, bytes, len);
    if (gyre_dialect_gemini.chat_response(call, body, len, &out, &err) == 0) {
        cJSON *c = cJSON_ParseWithLength(out.base, out.len);
        if (!cJSON_IsObject(c) || cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(c, "choices")) < 1)
            abort();
        cJSON_Delete(c);
    } else if (out.len != 0 || err.status < 400 || err.status > 599) {
        abort();
    }
    gyre_buf_reset(&out);
    gyre_dialect_gemini.error_message(body, len, &out);
    gyre_buf_dispose(&out);
    free(body);
}

static void check_request(const gyre_chat_call_t *base, const uint8_t *bytes, size_t len)
{
    cJSON *req = cJSON_ParseWithLength((const char *)bytes, len);
    if (cJSON_IsObject(req)) {
        gyre_chat_call_t call = *base;
        call.req = req;
        gyre_buf_t path, body;
        gyre_api_error_t err;
        gyre_buf_init(&path, 4096);
        gyre_buf_init(&body, OUT_BOUND);
        if (gyre_dialect_gemini.chat_request(&call, &path, &body, &err) == 0) {
            cJSON *b = cJSON_ParseWithLength(body.base, body.len);
            if (!cJSON_IsObject(b) || strncmp(path.base, "/models/", 8) != 0)
                abort();
            cJSON_Delete(b);
        } else if (err.status < 400 || err.status > 599) {
            abort();
        }
        gyre_buf_dispose(&path);
        gyre_buf_dispose(&body);
    }
    cJSON_Delete(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t nplan = (size_t)(data[0] % 16) + 1;
    if (nplan > size - 1)
        nplan = size - 1;
    const uint8_t *plan = data + 1, *bytes = data + 1 + nplan;
    size_t len = size - 1 - nplan;
    gyre_chat_call_t call = {.model = "gemini-2.5-flash",
                             .stream = 1,
                             .include_usage = (data[0] & 0x80) != 0,
                             .id = "chatcmpl-fuzz",
                             .created = 1750000000};

    gyre_buf_t whole, pieces;
    gyre_api_error_t ew, ep;
    int cw, cp;
    gyre_buf_init(&whole, OUT_BOUND);
    gyre_buf_init(&pieces, OUT_BOUND);
    int rw = translate(&call, NULL, 0, bytes, len, &whole, &ew, &cw);
    int rp = translate(&call, plan, nplan, bytes, len, &pieces, &ep, &cp);
    if (rw != rp || cw != cp || whole.len != pieces.len ||
        (whole.len != 0 && memcmp(whole.base, pieces.base, whole.len) != 0))
        abort();
    if (rw != 0 &&
        (ew.status < 400 || ew.status > 599 || ew.status != ep.status || strcmp(ew.message, ep.message) != 0))
        abort();
    check_events(&whole, cw);
    gyre_buf_dispose(&whole);
    gyre_buf_dispose(&pieces);

    check_answer(&call, bytes, len);
    check_request(&call, bytes, len);
    return 0;
}
