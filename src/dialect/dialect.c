/*
 * The dialect table (see dialect.h), and the two providers that speak
 * OpenAI's own API: kind openai (OpenAI and every compatible server) and
 * kind azure (the same bodies behind deployment URLs).  Their whole answers
 * pass through untouched; their streams are read into events by the OpenAI
 * chunk reader (openai_stream.h) when the client or the trace needs them.
 */
#include "dialect/dialect.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/wire.h"
#include "dialect/openai_stream.h"

const gyre_dialect_t *gyre_dialect_for(gyre_provider_kind_t kind)
{
    switch (kind) {
    case GYRE_PROVIDER_OPENAI: return &gyre_dialect_openai;
    case GYRE_PROVIDER_AZURE: return &gyre_dialect_azure;
    case GYRE_PROVIDER_ANTHROPIC: return &gyre_dialect_anthropic;
    case GYRE_PROVIDER_GEMINI: return &gyre_dialect_gemini;
    case GYRE_PROVIDER_BEDROCK: return &gyre_dialect_bedrock;
    }
    return &gyre_dialect_openai;
}

const char *gyre_dialect_finish_reason(const char *r)
{
    static const struct {
        const char *from, *to;
    } map[] = {
        {"end_turn", "stop"},       {"stop_sequence", "stop"},    {"stop", "stop"},
        {"STOP", "stop"},           {"max_tokens", "length"},     {"MAX_TOKENS", "length"},
        {"length", "length"},       {"tool_use", "tool_calls"},   {"tool_calls", "tool_calls"},
        {"refusal", "content_filter"}, {"SAFETY", "content_filter"}, {"content_filtered", "content_filter"},
        {"guardrail_intervened", "content_filter"},
    };
    if (r == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(r, map[i].from) == 0)
            return map[i].to;
    return "stop";
}

/* The request with `model` set to the target's: a copy, re-serialised. */
static int openai_body(const gyre_chat_call_t *call, gyre_buf_t *body, gyre_api_error_t *err)
{
    cJSON *copy = cJSON_Duplicate(call->req, 1);
    cJSON_DeleteItemFromObjectCaseSensitive(copy, "model");
    cJSON_AddStringToObject(copy, "model", call->model);
    char *text = cJSON_PrintUnformatted(copy);
    cJSON_Delete(copy);
    int r = text != NULL ? gyre_buf_appends(body, text) : -1;
    cJSON_free(text);
    if (r != 0)
        gyre_api_error_set(err, 400, "invalid_request_error", "request_too_large", NULL,
                           "the request is too large to send to provider '%s'", call->provider->name);
    return r;
}

static int openai_chat_request(const gyre_chat_call_t *call, gyre_buf_t *path, gyre_buf_t *body, gyre_api_error_t *err)
{
    if (gyre_buf_appends(path, "/chat/completions") != 0) {
        gyre_api_error_set(err, 400, "invalid_request_error", "request_too_large", NULL,
                           "the request path is too long for provider '%s'", call->provider->name);
        return -1;
    }
    return openai_body(call, body, err);
}

static int openai_auth(const gyre_chat_call_t *call, const char *key, const char *host, const char *path,
                       const char *body, size_t body_len, long long now, gyre_buf_t *headers)
{
    (void)call, (void)host, (void)path, (void)body, (void)body_len, (void)now;
    return key != NULL ? gyre_buf_appendf(headers, "authorization: Bearer %s\r\n", key) : 0;
}

/* Only the error side is ever asked of an OpenAI-speaking dialect: the message, for a client of another dialect. */
static void openai_error_message(const char *body, size_t len, gyre_buf_t *out)
{
    cJSON *j = cJSON_ParseWithLength(body, len);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"), "message");
    /* Cut to what `out` holds: a long message is still its beginning, not nothing. */
    if (cJSON_IsString(m))
        gyre_buf_append_upto(out, m->valuestring, strlen(m->valuestring));
    else
        gyre_buf_append_upto(out, body, len);
    cJSON_Delete(j);
}

/* Azure OpenAI: /openai/deployments/{deployment}/chat/completions?api-version=..., the deployment being the
 * target's model, and the key in an api-key header. */
static int azure_chat_request(const gyre_chat_call_t *call, gyre_buf_t *path, gyre_buf_t *body, gyre_api_error_t *err)
{
    const char *v = call->provider->api_version ? call->provider->api_version : "2024-10-21";
    int r = gyre_buf_appends(path, "/openai/deployments/");
    if (r == 0)
        r = gyre_wire_append_segment(path, call->model, strlen(call->model));
    if (r == 0)
        r = gyre_buf_appends(path, "/chat/completions?api-version=");
    if (r == 0)
        r = gyre_wire_append_query_value(path, v, strlen(v));
    if (r != 0) {
        gyre_api_error_set(err, 400, "invalid_request_error", "invalid_value", "model",
                           r == -EINVAL ? "'model' cannot be sent to provider '%s' as a path segment: it is empty or "
                                          "has a dot-segment ('.' or '..')"
                                        : "'model' is too long for a request path of provider '%s'",
                           call->provider->name);
        return -1;
    }
    return openai_body(call, body, err);
}

static int openai_native_path(const gyre_provider_conf_t *p, const char *model, size_t model_len, const char *rest,
                              size_t rest_len, const char *query, size_t query_len, gyre_buf_t *path)
{
    (void)p, (void)model, (void)model_len;
    int r = gyre_buf_append(path, rest, rest_len);
    if (query_len != 0) {
        r |= gyre_buf_appends(path, "?");
        r |= gyre_buf_append(path, query, query_len);
    }
    return r != 0 ? -E2BIG : 0;
}

/* Azure serves every OpenAI path under its deployment: /embeddings → /openai/deployments/D/embeddings?api-version=V
 * (then the client's own query). */
static int azure_native_path(const gyre_provider_conf_t *p, const char *model, size_t model_len, const char *rest,
                             size_t rest_len, const char *query, size_t query_len, gyre_buf_t *path)
{
    const char *v = p->api_version != NULL ? p->api_version : "2024-10-21";
    int r = gyre_buf_appends(path, "/openai/deployments/");
    if (r == 0 && (r = gyre_wire_append_segment(path, model, model_len)) != 0)
        return r;
    r |= gyre_buf_append(path, rest, rest_len);
    r |= gyre_buf_appends(path, "?api-version=");
    r |= gyre_wire_append_query_value(path, v, strlen(v));
    if (query_len != 0) {
        r |= gyre_buf_appends(path, "&");
        r |= gyre_buf_append(path, query, query_len);
    }
    return r != 0 ? -E2BIG : 0;
}

static int azure_auth(const gyre_chat_call_t *call, const char *key, const char *host, const char *path,
                      const char *body, size_t body_len, long long now, gyre_buf_t *headers)
{
    (void)call, (void)host, (void)path, (void)body, (void)body_len, (void)now;
    return key != NULL ? gyre_buf_appendf(headers, "api-key: %s\r\n", key) : 0;
}

/* --- streams: OpenAI chunks → events ----------------------------------------- */

/* One SSE event of an OpenAI stream; a chunk is a few hundred bytes, a whole tool call's arguments at most a few
 * hundred KiB. */
#define OPENAI_EVENT_MAX ((size_t)4 * 1024 * 1024)

typedef struct openai_stream {
    gyre_dialect_stream_t super;
    gyre_openai_reader_t reader;
} openai_stream_t;

static gyre_dialect_stream_t *openai_stream_create(const gyre_chat_call_t *call)
{
    (void)call;
    openai_stream_t *s = gyre_calloc(1, sizeof(*s));
    gyre_openai_reader_init(&s->reader, OPENAI_EVENT_MAX);
    s->reader.strict = 1; /* its events go to a client of another API */
    return &s->super;
}

static int openai_stream_feed(gyre_dialect_stream_t *super, const char *bytes, size_t len,
                              const gyre_event_sink_t *sink, gyre_api_error_t *err)
{
    openai_stream_t *s = (openai_stream_t *)super;
    if (s->super.complete)
        return 0; /* bytes after [DONE] are not the client's */
    int r = gyre_openai_reader_feed(&s->reader, bytes, len, sink);
    s->super.complete = s->reader.done;
    if (r == 0)
        return 0;
    if (r == -EBADMSG)
        *err = s->reader.error;
    else if (r == -E2BIG)
        gyre_api_error_set(err, 502, "upstream_error", "stream_event_too_large", NULL,
                           "the provider sent a stream event larger than %zu bytes", OPENAI_EVENT_MAX);
    else
        gyre_api_error_set(err, 502, "upstream_error", "bad_upstream_response", NULL,
                           "the translated stream outgrew gyre's buffer");
    return -1;
}

static void openai_stream_destroy(gyre_dialect_stream_t *super)
{
    openai_stream_t *s = (openai_stream_t *)super;
    if (s == NULL)
        return;
    gyre_openai_reader_dispose(&s->reader);
    free(s);
}

const gyre_dialect_t gyre_dialect_openai = {
    .kind = "openai",
    .speaks_openai = 1,
    .chat_request = openai_chat_request,
    .auth_headers = openai_auth,
    .native_path = openai_native_path,
    .error_message = openai_error_message,
    .stream_create = openai_stream_create,
    .stream_feed = openai_stream_feed,
    .stream_destroy = openai_stream_destroy,
};

const gyre_dialect_t gyre_dialect_azure = {
    .kind = "azure",
    .speaks_openai = 1,
    .chat_request = azure_chat_request,
    .auth_headers = azure_auth,
    .native_path = azure_native_path,
    .error_message = openai_error_message,
    .stream_create = openai_stream_create,
    .stream_feed = openai_stream_feed,
    .stream_destroy = openai_stream_destroy,
};
