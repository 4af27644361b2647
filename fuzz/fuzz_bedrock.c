/*
 * libFuzzer driver for the Bedrock dialect's readers (src/dialect/bedrock.c):
 * ConverseStream payloads inside valid AWS event-stream frames (the framing
 * itself is fuzz_eventstream.c's), whole Converse answers and error bodies,
 * and the Retry-After header parser (src/route/keys.c), all bytes a provider
 * chooses.
 *
 * The input is a list of records: one byte picks the frame's event type (or
 * an exception), one byte the payload's length, then the payload.  The frames
 * are fed whole and then cut at every 7th byte; the same bytes are also read
 * as a whole answer, an error body and a Retry-After value.
 *
 * The promises checked:
 *  - cutting never changes the translation: same result, same bytes;
 *  - the output is only whole "data: <JSON object>\n\n" events, with
 *    "data: [DONE]\n\n" last exactly when the stream is complete, and a
 *    failure comes with an error status;
 *  - a whole answer becomes a JSON object with choices, or fails with an
 *    error status and leaves the output as it was;
 *  - a Retry-After is never more than a day;
 *  - nothing leaks (LeakSanitizer).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "common/buf.h"
#include "dialect/dialect.h"
#include "../tests/unit/stream_sse.h" /* a provider stream's events as OpenAI SSE, as gyre_client_openai writes them */
#include "dialect/eventstream.h"
#include "route/keys.h"

#define OUT_BOUND ((size_t)1 << 26)

static const char *const event_types[] = {"messageStart",      "contentBlockStart", "contentBlockDelta",
                                          "contentBlockStop",  "messageStop",       "metadata"};

static void check_events(const gyre_buf_t *out, int complete)
{
    size_t pos = 0;
    int done = 0;
    while (pos < out->len) {
        if (done || out->len - pos < 8 || memcmp(out->base + pos, "data: ", 6) != 0)
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
            if (!cJSON_IsObject(chunk))
                abort();
            cJSON_Delete(chunk);
        }
        pos = (size_t)(end - out->base) + 2;
    }
    if (done != complete)
        abort();
}

static int translate(const gyre_chat_call_t *call, const gyre_buf_t *frames, size_t cut, gyre_buf_t *out,
                     gyre_api_error_t *err, int *complete)
{
    gyre_dialect_stream_t *s = sse_stream_create(&gyre_dialect_bedrock, call);
    int rc = 0;
    for (size_t pos = 0; pos < frames->len && rc == 0;) {
        size_t step = cut != 0 && cut < frames->len - pos ? cut : frames->len - pos;
        char *piece = malloc(step);
        memcpy(piece, frames->base + pos, step);
        rc = sse_stream_feed(&gyre_dialect_bedrock, s, piece, step, out, err);
        free(piece);
        pos += step;
    }
    *complete = s->complete;
    sse_stream_destroy(&gyre_dialect_bedrock, s);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gyre_provider_conf_t provider = {.name = "fuzz", .kind = GYRE_PROVIDER_BEDROCK, .max_tokens = 64};
    gyre_chat_call_t call = {.model = "anthropic.claude-3-5-sonnet-20240620-v1:0",
                             .provider = &provider,
                             .stream = 1,
                             .include_usage = size > 0 && (data[0] & 1),
                             .id = "chatcmpl-fuzz",
                             .created = 1700000000};
    gyre_buf_t frames;
    gyre_buf_init(&frames, OUT_BOUND);
    for (size_t pos = 0; pos + 2 <= size;) {
        uint8_t kind = data[pos], len = data[pos + 1];
        pos += 2;
        if (len > size - pos)
            len = (uint8_t)(size - pos);
        gyre_eventstream_header_t h[3];
        size_t nh = 0;
        if (kind % 8 < 6) {
            h[nh++] = (gyre_eventstream_header_t){":message-type", "event"};
            h[nh++] = (gyre_eventstream_header_t){":event-type", event_types[kind % 8]};
        } else {
            h[nh++] = (gyre_eventstream_header_t){":message-type", "exception"};
            h[nh++] = (gyre_eventstream_header_t){":exception-type", kind % 8 == 6 ? "throttlingException"
                                                                                  : "validationException"};
        }
        h[nh++] = (gyre_eventstream_header_t){":content-type", "application/json"};
        gyre_eventstream_encode(h, nh, data + pos, len, &frames);
        pos += len;
    }

    gyre_buf_t whole, cut;
    gyre_api_error_t e1, e2;
    int c1 = 0, c2 = 0;
    gyre_buf_init(&whole, OUT_BOUND);
    gyre_buf_init(&cut, OUT_BOUND);
    int r1 = translate(&call, &frames, 0, &whole, &e1, &c1);
    int r2 = translate(&call, &frames, 7, &cut, &e2, &c2);
    if (r1 != r2 || c1 != c2 || whole.len != cut.len || (whole.len && memcmp(whole.base, cut.base, whole.len) != 0))
        abort();
    if (r1 != 0 && (e1.status < 400 || e1.status > 599))
        abort();
    if (r1 == 0)
        check_events(&whole, c1);
    gyre_buf_dispose(&whole);
    gyre_buf_dispose(&cut);
    gyre_buf_dispose(&frames);

    /* The same bytes as a whole answer and as an error body. */
    gyre_buf_t out;
    gyre_api_error_t err;
    gyre_buf_init(&out, OUT_BOUND);
    char *body = malloc(size ? size : 1);
    memcpy(body, data, size);
    call.stream = 0;
    if (gyre_dialect_bedrock.chat_response(&call, body, size, &out, &err) == 0) {
        cJSON *c = cJSON_ParseWithLength(out.base, out.len);
        if (!cJSON_IsObject(c) || cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(c, "choices")) < 1)
            abort();
        cJSON_Delete(c);
    } else if (out.len != 0 || err.status < 400 || err.status > 599) {
        abort();
    }
    gyre_buf_reset(&out);
    gyre_dialect_bedrock.error_message(body, size, &out);
    gyre_buf_dispose(&out);
    if (gyre_retry_after_ms(body, size, (long long)time(NULL)) > 86400000ULL)
        abort();
    free(body);
    return 0;
}
