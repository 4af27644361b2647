/*
 * The client dialect table (see client.h), and the OpenAI chat completions
 * entry, gyre's pivot: its requests are the pivot already, its whole answers
 * are the pivot's chat.completion as it is, and its stream is the
 * chat.completion.chunk stream written from events (openai_stream.h).
 */
#include "dialect/client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

#include "dialect/dialect.h"
#include "dialect/openai_stream.h"

static int openai_client_parse(const char *body, size_t len, gyre_client_request_t *out, gyre_api_error_t *err)
{
    gyre_openai_request_t r;
    memset(out, 0, sizeof(*out));
    if (gyre_openai_parse_request(GYRE_OPENAI_CHAT, body, len, &r, err) != 0)
        return -1;
    out->pivot = r.json;
    out->model = r.model;
    out->stream = r.stream;
    out->include_usage = r.include_usage;
    out->has_stream_options = r.has_stream_options;
    out->model_start = r.model_start;
    out->model_end = r.model_end;
    return 0;
}

/* The pivot is this API's own answer. */
static int openai_client_response(const gyre_client_call_t *call, const char *completion, size_t len,
                                  gyre_buf_t *out, gyre_api_error_t *err)
{
    (void)call;
    if (gyre_buf_append(out, completion, len) == 0)
        return 0;
    gyre_api_error_set(err, 502, "upstream_error", "response_too_large", NULL, "the answer is too large");
    return -1;
}

static void openai_encoder_init(void *enc, const gyre_client_call_t *call)
{
    gyre_openai_encoder_init(enc, call->id, call->model, call->created, call->include_usage);
}

static int openai_encode(void *enc, const gyre_event_t *ev, gyre_buf_t *out)
{
    return gyre_openai_encode(enc, ev, out);
}

static void openai_encoder_dispose(void *enc)
{
    gyre_openai_encoder_dispose(enc);
}

static int openai_encoder_complete(const void *enc)
{
    return ((const gyre_openai_encoder_t *)enc)->complete;
}

/* The last words of a stream: an error chunk, which OpenAI's SDKs raise. */
static int openai_error_event(const gyre_api_error_t *err, gyre_buf_t *out)
{
    size_t start = out->len;
    int r = gyre_buf_appends(out, "data: ");
    r |= gyre_api_error_to_json(err, out);
    r |= gyre_buf_appends(out, "\n\n");
    if (r != 0) {
        out->len = start;
        if (out->base != NULL)
            out->base[start] = '\0';
        return -1;
    }
    return 0;
}

/* [DONE], or the provider's own error chunk, which ends its stream too. */
static int openai_stream_ends(const char *event, size_t event_len, const char *data, size_t data_len)
{
    (void)event, (void)event_len;
    return (data_len == 6 && memcmp(data, "[DONE]", 6) == 0) ||
           (data_len >= 9 && memcmp(data, "{\"error\":", 9) == 0);
}

const gyre_client_dialect_t gyre_client_openai = {
    .name = "openai",
    .path = "/v1/chat/completions",
    .native = GYRE_KINDS_OPENAI,
    .served = GYRE_KINDS_ALL,
    .parse = openai_client_parse,
    .response = openai_client_response,
    .encoder_size = sizeof(gyre_openai_encoder_t),
    .encoder_init = openai_encoder_init,
    .encode = openai_encode,
    .encoder_dispose = openai_encoder_dispose,
    .encoder_complete = openai_encoder_complete,
    .error_body = gyre_api_error_to_json,
    .error_event = openai_error_event,
    .stream_ends = openai_stream_ends,
    .request_id_header = NULL,
};

const gyre_client_dialect_t *const gyre_client_dialects[] = {
    &gyre_client_openai,
    &gyre_client_anthropic,
    &gyre_client_responses,
    &gyre_client_gemini,
    NULL,
};

const gyre_client_dialect_t *gyre_client_dialect_for_path(const char *path, size_t len)
{
    for (size_t i = 0; gyre_client_dialects[i] != NULL; i++) {
        const char *p = gyre_client_dialects[i]->path;
        if (gyre_client_dialects[i]->from_path != NULL) {
            if (gyre_client_dialects[i]->from_path(path, len, NULL, NULL) == 1)
                return gyre_client_dialects[i];
        } else if (strlen(p) == len && memcmp(p, path, len) == 0)
            return gyre_client_dialects[i];
    }
    return NULL;
}

int gyre_client_dialect_serves(const gyre_client_dialect_t *client, gyre_openai_endpoint_t endpoint,
                               gyre_provider_kind_t kind)
{
    if (endpoint == GYRE_OPENAI_CHAT)
        return client != NULL && (client->served & GYRE_KIND_BIT(kind)) != 0;
    /* Embeddings and every other OpenAI path go as the client wrote them: only a provider speaking OpenAI can
     * take them. */
    return gyre_dialect_for(kind)->speaks_openai;
}

typedef struct replay_sink {
    const gyre_client_dialect_t *client;
    void *enc;
    gyre_buf_t *out;
} replay_sink_t;

static int replay_emit(void *ctx, const gyre_event_t *ev)
{
    replay_sink_t *r = ctx;
    return r->client->encode(r->enc, ev, r->out);
}

int gyre_client_dialect_replay(const gyre_client_dialect_t *client, const char *completion, size_t len,
                               int include_usage, gyre_buf_t *out)
{
    if (client == &gyre_client_openai)
        return gyre_openai_completion_to_sse(completion, len, include_usage, out) == 0 ? 0 : -1;
    /* Another API: the replay is read as a provider's stream would be (the usage always: the encoder decides). */
    gyre_buf_t sse;
    gyre_buf_init(&sse, out->max);
    int r = gyre_openai_completion_to_sse(completion, len, 1, &sse);
    if (r == 0) {
        gyre_client_call_t call = {.include_usage = include_usage};
        replay_sink_t rs = {client, gyre_calloc(1, client->encoder_size), out};
        client->encoder_init(rs.enc, &call);
        gyre_openai_reader_t reader;
        gyre_openai_reader_init(&reader, sse.len + 1);
        reader.strict = 1;
        gyre_event_sink_t sink = {replay_emit, &rs};
        r = gyre_openai_reader_feed(&reader, sse.base, sse.len, &sink);
        if (r == 0 && !client->encoder_complete(rs.enc))
            r = -1;
        gyre_openai_reader_dispose(&reader);
        if (client->encoder_dispose != NULL)
            client->encoder_dispose(rs.enc);
        free(rs.enc);
    }
    gyre_buf_dispose(&sse);
    return r == 0 ? 0 : -1;
}
