/*
 * libFuzzer driver for the Gemini client dialect (src/dialect/gemini_client.c).
 *
 * The input's first byte picks the target, the rest is its input:
 *   0:    a generateContent body → parse, with the path's model and stream;
 *   1:    a path → gyre_client_dialect_for_path and the Gemini from_path;
 *   2:    a body as a provider's chat.completion → the GenerateContentResponse;
 *   3:    lines as OpenAI chunk data → gyre's OpenAI chunk reader → events →
 *         the Gemini stream encoder, as a translated stream reaches it.
 * Promises checked:
 *   - a parsed request's pivot is a chat request that gyre's own OpenAI
 *     checks accept; a refused one is a 400 with a message;
 *   - a path is the dialect's only when from_path says so, and its model is
 *     then the pivot's;
 *   - an answer written from any completion is a JSON object, or a refusal;
 *   - a stream is always whole "data: <JSON object>\r\n\r\n" chunks, each a
 *     GenerateContentResponse or an error, and nothing follows its end.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "dialect/client.h"
#include "dialect/openai.h"
#include "dialect/openai_stream.h"

#define check(ok)                                                                                                      \
    do {                                                                                                               \
        if (!(ok)) {                                                                                                   \
            fprintf(stderr, "fuzz_gemini_client.c:%d: check(%s) failed\n", __LINE__, #ok);                             \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

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
    if (gyre_client_gemini.parse(body, len, &r, &err) != 0) {
        check(err.status == 400 && err.message[0] != '\0');
        return;
    }
    static const char path[] = "/v1beta/models/m:streamGenerateContent";
    check(gyre_client_gemini.from_path(path, sizeof(path) - 1, &r, &err) == 1);
    check(r.model != NULL && strcmp(r.model, "m") == 0 && r.stream == 1);
    check_pivot(r.pivot);
    cJSON_Delete(r.pivot);
}

static void fuzz_path(const char *path, size_t len)
{
    const gyre_client_dialect_t *d = gyre_client_dialect_for_path(path, len);
    gyre_client_request_t r = {.pivot = cJSON_CreateObject()};
    gyre_api_error_t err;
    int rc = gyre_client_gemini.from_path(path, len, &r, &err);
    check(rc == 1 || rc == 0 || rc == -1);
    check((d == &gyre_client_gemini) == (rc != 0));
    if (rc == 1) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(r.pivot, "model");
        check(cJSON_IsString(m) && r.model == m->valuestring && strlen(r.model) > 0 && strlen(r.model) < len);
    } else if (rc == -1) {
        check(err.status == 400);
    }
    cJSON_Delete(r.pivot);
}

static void fuzz_response(const char *data, size_t len)
{
    gyre_client_call_t call = {.model = "m", .id = "id-1", .created = 1};
    gyre_buf_t out;
    gyre_buf_init(&out, (size_t)1 << 26);
    gyre_api_error_t err;
    if (gyre_client_gemini.response(&call, data, len, &out, &err) == 0) {
        cJSON *v = cJSON_ParseWithLength(out.base, out.len);
        check(cJSON_IsObject(v) && cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(v, "candidates")));
        cJSON_Delete(v);
    } else {
        check(err.status >= 400 && out.len == 0);
    }
    gyre_buf_dispose(&out);
}

static void check_chunks(const gyre_buf_t *out)
{
    const char *p = out->base != NULL ? out->base : "", *end = p + out->len;
    while (p < end) {
        check(end - p > 6 && memcmp(p, "data: ", 6) == 0);
        const char *data = p + 6;
        const char *stop = memmem(data, (size_t)(end - data), "\r\n\r\n", 4);
        check(stop != NULL);
        cJSON *d = cJSON_ParseWithLength(data, (size_t)(stop - data));
        check(cJSON_IsObject(d) && (cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(d, "candidates")) ||
                                    cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(d, "error"))));
        cJSON_Delete(d);
        p = stop + 4;
    }
}

typedef struct stream_sink {
    void *enc;
    gyre_buf_t *out;
    int ended;
} stream_sink_t;

static int stream_emit(void *ctx, const gyre_event_t *ev)
{
    stream_sink_t *s = ctx;
    size_t before = s->out->len;
    if (gyre_client_gemini.encode(s->enc, ev, s->out) != 0)
        check(s->out->len == before); /* whole chunks or nothing */
    if (s->ended)
        check(s->out->len == before); /* nothing after the end */
    s->ended |= gyre_client_gemini.encoder_complete(s->enc) || ev->type == GYRE_EVENT_ERROR;
    return 0;
}

static void fuzz_stream(const char *data, size_t len)
{
    gyre_client_call_t call = {.model = "m", .id = "id-1", .created = 1, .include_usage = 1};
    void *enc = calloc(1, gyre_client_gemini.encoder_size);
    gyre_client_gemini.encoder_init(enc, &call);
    gyre_buf_t out;
    gyre_buf_init(&out, (size_t)1 << 26);
    gyre_openai_reader_t reader;
    gyre_openai_reader_init(&reader, (size_t)1 << 20);
    stream_sink_t ss = {enc, &out, 0};
    gyre_event_sink_t sink = {stream_emit, &ss};
    size_t at = 0;
    while (at < len) {
        const char *nl = memchr(data + at, '\n', len - at);
        size_t n = nl != NULL ? (size_t)(nl - (data + at)) : len - at;
        gyre_openai_reader_data(&reader, data + at, n, &sink);
        at += n + 1;
    }
    gyre_openai_reader_dispose(&reader);
    check_chunks(&out);
    gyre_client_gemini.encoder_dispose(enc);
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
    case 1: fuzz_path(body, len); break;
    case 2: fuzz_response(body, len); break;
    case 3: fuzz_stream(body, len); break;
    default: fuzz_parse(body, len); break;
    }
    free(body);
    return 0;
}
