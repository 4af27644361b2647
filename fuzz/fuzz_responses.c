/*
 * libFuzzer driver for the Responses client dialect (src/dialect/responses.c).
 *
 * The input's first byte picks the target, the rest is its input:
 *   0:    a /v1/responses body → gyre_responses_parse;
 *   1:    a body as an earlier turn's request and answer (cut at its first
 *         NUL) → gyre_responses_turn_messages, prepended to a pivot;
 *   2:    a body as a provider's chat.completion → the Response object, and as
 *         a native Response → the chat.completion the trace reads;
 *   3:    lines as OpenAI chunk data → gyre's OpenAI chunk reader
 *         (dialect/openai_stream.h) → events → the stream encoder, as a
 *         translated stream reaches it.
 * Promises checked:
 *   - a parsed request's pivot is a chat request that gyre's own OpenAI
 *     checks accept, its model located in the body when located at all; a
 *     refused one is a 400 naming why;
 *   - the history of an earlier turn is an array of messages, and the pivot it
 *     is prepended to is still a chat request the OpenAI checks accept;
 *   - a Response written from any completion is a JSON object, or a refusal;
 *   - a stream is always whole "event: T\ndata: <JSON object of type T>\n\n"
 *     events numbered from 0, and nothing follows its last one.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "dialect/openai.h"
#include "dialect/openai_stream.h"
#include "dialect/responses.h"

#define check(ok)                                                                                                      \
    do {                                                                                                               \
        if (!(ok)) {                                                                                                   \
            fprintf(stderr, "fuzz_responses.c:%d: check(%s) failed\n", __LINE__, #ok);                                 \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

/* The pivot as text, read back by gyre's OpenAI checks. */
static void check_pivot(const cJSON *pivot)
{
    char *text = cJSON_PrintUnformatted(pivot);
    check(text != NULL);
    gyre_openai_request_t r;
    gyre_api_error_t err;
    int rc = gyre_openai_parse_request(GYRE_OPENAI_CHAT, text, strlen(text), &r, &err);
    if (rc != 0)
        fprintf(stderr, "pivot refused: %s (%s)\n%s\n", err.message, err.param, text);
    check(rc == 0);
    gyre_openai_request_dispose(&r);
    cJSON_free(text);
}

static void fuzz_parse(const char *body, size_t len)
{
    gyre_client_request_t r;
    gyre_api_error_t err;
    if (gyre_responses_parse(body, len, &r, &err) != 0) {
        check(err.status == 400 && err.message[0] != '\0');
        return;
    }
    check(r.pivot != NULL && r.model != NULL);
    check(r.model_end == 0 || (r.model_start < r.model_end && r.model_end <= len && body[r.model_start] == '"'));
    /* With previous_response_id the input may be empty: the earlier turns fill it. */
    cJSON *messages = cJSON_GetObjectItemCaseSensitive(r.pivot, "messages");
    if (cJSON_GetArraySize(messages) == 0)
        cJSON_AddItemToArray(messages, cJSON_Parse("{\"role\":\"user\",\"content\":\"earlier\"}"));
    check_pivot(r.pivot);
    cJSON_Delete(r.pivot);
}

static void fuzz_history(const char *data, size_t len)
{
    const char *nul = memchr(data, '\0', len);
    size_t rlen = nul != NULL ? (size_t)(nul - data) : len;
    const char *answer = nul != NULL ? nul + 1 : "";
    size_t alen = nul != NULL ? len - rlen - 1 : 0;
    char prev[GYRE_RESPONSES_ID_MAX + 1];
    gyre_api_error_t err;
    cJSON *h = gyre_responses_turn_messages(data, rlen, answer, alen, prev, &err);
    check(strlen(prev) <= GYRE_RESPONSES_ID_MAX);
    if (h == NULL) {
        check(err.status == 400);
        return;
    }
    check(cJSON_IsArray(h));
    static const char base[] = "{\"model\":\"m\",\"instructions\":\"i\",\"input\":\"x\"}";
    gyre_client_request_t r;
    check(gyre_responses_parse(base, sizeof(base) - 1, &r, &err) == 0);
    gyre_responses_prepend_history(r.pivot, h);
    check_pivot(r.pivot);
    cJSON_Delete(r.pivot);
}

static void fuzz_response(const char *data, size_t len)
{
    cJSON *req = cJSON_Parse("{\"model\":\"m\",\"input\":\"x\",\"tools\":[]}");
    gyre_client_call_t call = {.model = "m", .id = "resp_1", .created = 1, .request = req};
    gyre_buf_t out;
    gyre_buf_init(&out, (size_t)1 << 26);
    gyre_api_error_t err;
    if (gyre_client_responses.response(&call, data, len, &out, &err) == 0) {
        cJSON *v = cJSON_ParseWithLength(out.base, out.len);
        check(cJSON_IsObject(v));
        cJSON_Delete(v);
    } else {
        check(err.status >= 400);
    }
    /* The same bytes as a native Response (or the event that ends a native stream) → a chat.completion. */
    gyre_buf_reset(&out);
    if (gyre_responses_to_completion(data, len, &out) == 0) {
        cJSON *v = cJSON_ParseWithLength(out.base, out.len);
        check(cJSON_IsObject(v));
        cJSON_Delete(v);
    }
    gyre_buf_dispose(&out);
    cJSON_Delete(req);
}

static void check_events(const gyre_buf_t *out, int complete)
{
    const char *p = out->base != NULL ? out->base : "", *end = p + out->len;
    long long n = 0;
    const char *last = NULL;
    while (p < end) {
        check(end - p > 7 && memcmp(p, "event: ", 7) == 0);
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        check(nl != NULL && end - nl > 7 && memcmp(nl + 1, "data: ", 6) == 0);
        const char *data = nl + 7;
        const char *stop = memmem(data, (size_t)(end - data), "\n\n", 2);
        check(stop != NULL);
        cJSON *d = cJSON_ParseWithLength(data, (size_t)(stop - data));
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(d, "type");
        check(cJSON_IsString(type) && strlen(type->valuestring) == (size_t)(nl - p - 7) &&
              memcmp(type->valuestring, p + 7, (size_t)(nl - p - 7)) == 0);
        check(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(d, "sequence_number")) == (double)n);
        last = p + 7;
        cJSON_Delete(d);
        n++;
        p = stop + 2;
    }
    if (complete)
        check(last != NULL && (strncmp(last, "response.completed", 18) == 0 ||
                               strncmp(last, "response.incomplete", 19) == 0 ||
                               strncmp(last, "response.failed", 15) == 0));
}

typedef struct stream_sink {
    void *enc;
    gyre_buf_t *out;
} stream_sink_t;

static int stream_emit(void *ctx, const gyre_event_t *ev)
{
    stream_sink_t *s = ctx;
    int complete = gyre_client_responses.encoder_complete(s->enc);
    size_t before = s->out->len;
    check(gyre_client_responses.encode(s->enc, ev, s->out) == 0);
    if (complete)
        check(s->out->len == before); /* nothing after the end */
    return 0;
}

static void fuzz_stream(const char *data, size_t len)
{
    cJSON *req = cJSON_Parse("{\"model\":\"m\",\"input\":\"x\"}");
    gyre_client_call_t call = {.model = "m", .id = "resp_1", .created = 1, .include_usage = 1, .request = req};
    void *enc = calloc(1, gyre_client_responses.encoder_size);
    gyre_client_responses.encoder_init(enc, &call);
    cJSON_Delete(req);
    gyre_buf_t out;
    gyre_buf_init(&out, (size_t)1 << 26);
    gyre_openai_reader_t reader;
    gyre_openai_reader_init(&reader, (size_t)1 << 20);
    stream_sink_t ss = {enc, &out};
    gyre_event_sink_t sink = {stream_emit, &ss};
    size_t at = 0;
    while (at < len) {
        const char *nl = memchr(data + at, '\n', len - at);
        size_t n = nl != NULL ? (size_t)(nl - (data + at)) : len - at;
        gyre_openai_reader_data(&reader, data + at, n, &sink);
        at += n + 1;
    }
    gyre_openai_reader_dispose(&reader);
    check_events(&out, gyre_client_responses.encoder_complete(enc));
    gyre_client_responses.encoder_dispose(enc);
    free(enc);
    gyre_buf_dispose(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* A copy of the exact size, so a read past the end is caught. */
    size_t len = size - 1;
    char *body = malloc(len ? len : 1);
    memcpy(body, data + 1, len);
    switch (data[0] & 3) {
    case 1: fuzz_history(body, len); break;
    case 2: fuzz_response(body, len); break;
    case 3: fuzz_stream(body, len); break;
    default: fuzz_parse(body, len); break;
    }
    free(body);
    return 0;
}
