/*
 * A gyre trace as an OTLP/JSON span (see otlp.h and docs/otlp.md).
 *
 * The JSON follows OTLP/HTTP's JSON mapping: ids as lowercase hex, times
 * and 64-bit integers as decimal strings, enums as numbers, attributes as
 * {key, value: {stringValue | intValue | doubleValue | boolValue |
 * arrayValue}}.  The span says three things about the call:
 *
 * - the GenAI semantic conventions (gen_ai.operation.name,
 *   gen_ai.provider.name, gen_ai.request.model, usage, finish reasons,
 *   conversation id, and the messages when the trace has bodies), for any
 *   collector and UI;
 * - the raw bodies as OpenInference's input.value / output.value, because
 *   the semantic conventions' message shape loses the request's other
 *   fields, and a second gyre must read back the same body;
 * - every other field of the trace as gyre.*, so that a second gyre's ingest
 *   reads back the same trace (attempts are span events named gyre.attempt).
 *
 * An unknown number (a token count of -1, a NaN cost, no time to first
 * token) is left out rather than written as 0.
 */
#include "otlp/otlp.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* A JSON writer that remembers the first failure, so that a span cut by the buffer's bound is noticed once, at the end. */
typedef struct jw {
    gyre_buf_t *b;
    int rc;
    int first; /* no comma before the next attribute */
} jw_t;

static void lit(jw_t *w, const char *s)
{
    if (w->rc == 0)
        w->rc = gyre_buf_appends(w->b, s);
}

static void str(jw_t *w, const char *s, size_t n)
{
    if (w->rc == 0)
        w->rc = gyre_buf_append_json_string(w->b, s != NULL ? s : "", s != NULL ? n : 0);
}

static void fmt_i64(jw_t *w, int64_t v)
{
    if (w->rc == 0)
        w->rc = gyre_buf_appendf(w->b, "\"%" PRId64 "\"", v);
}

/* Unix microseconds as the nanosecond string OTLP wants; a negative time (never from the clock) as 0. */
static void fmt_ns(jw_t *w, int64_t us)
{
    if (w->rc == 0)
        w->rc = gyre_buf_appendf(w->b, "\"%" PRIu64 "\"", us > 0 ? (uint64_t)us * 1000 : 0);
}

static void attr_begin(jw_t *w, const char *key, size_t klen)
{
    lit(w, w->first ? "{\"key\":" : ",{\"key\":");
    w->first = 0;
    str(w, key, klen);
    lit(w, ",\"value\":");
}

static void attr_str(jw_t *w, const char *key, const char *s, size_t n)
{
    attr_begin(w, key, strlen(key));
    lit(w, "{\"stringValue\":");
    str(w, s, n);
    lit(w, "}}");
}

static void attr_tstr(jw_t *w, const char *key, const gyre_tstr_t *s)
{
    if (s->len != 0)
        attr_str(w, key, s->p, s->len);
}

static void attr_int(jw_t *w, const char *key, int64_t v)
{
    attr_begin(w, key, strlen(key));
    lit(w, "{\"intValue\":");
    fmt_i64(w, v);
    lit(w, "}}");
}

static void attr_bool(jw_t *w, const char *key, int v)
{
    attr_begin(w, key, strlen(key));
    lit(w, v ? "{\"boolValue\":true}}" : "{\"boolValue\":false}}");
}

static void attr_double(jw_t *w, const char *key, double v)
{
    attr_begin(w, key, strlen(key));
    /* %.17g reads back as the same double, so the second gyre stores the same cost. */
    if (w->rc == 0)
        w->rc = gyre_buf_appendf(w->b, "{\"doubleValue\":%.17g}}", v);
}

static void attr_str_array(jw_t *w, const char *key, const gyre_tstr_t *s, size_t n)
{
    attr_begin(w, key, strlen(key));
    lit(w, "{\"arrayValue\":{\"values\":[");
    for (size_t i = 0; i < n; i++) {
        lit(w, i ? ",{\"stringValue\":" : "{\"stringValue\":");
        str(w, s[i].p, s[i].len);
        lit(w, "}");
    }
    lit(w, "]}}}");
}

const char *gyre_otlp_provider_name(gyre_provider_kind_t kind)
{
    switch (kind) {
    case GYRE_PROVIDER_OPENAI: return "openai";
    case GYRE_PROVIDER_AZURE: return "azure.ai.openai";
    case GYRE_PROVIDER_ANTHROPIC: return "anthropic";
    case GYRE_PROVIDER_GEMINI: return "gcp.gemini";
    case GYRE_PROVIDER_BEDROCK: return "aws.bedrock";
    }
    return NULL;
}

static int tstr_is(const gyre_tstr_t *s, const char *lit_)
{
    size_t n = strlen(lit_);
    return s->len == n && memcmp(s->p, lit_, n) == 0;
}

/* gen_ai.operation.name from the endpoint the client called. */
static const char *operation_name(const gyre_trace_t *t)
{
    if (tstr_is(&t->endpoint, "/v1/chat/completions") || tstr_is(&t->endpoint, "/v1/messages"))
        return "chat";
    if (tstr_is(&t->endpoint, "/v1/embeddings"))
        return "embeddings";
    if (tstr_is(&t->endpoint, "/v1/completions"))
        return "text_completion";
    return "gyre.passthrough";
}

/* ---- Messages in the semantic conventions' shape, from OpenAI's or Anthropic's bodies. ---- */

static cJSON *text_part(const char *text)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "type", "text");
    cJSON_AddStringToObject(p, "content", text);
    return p;
}

/* A tool call's arguments: the JSON they hold when they parse, else the string as it is. */
static cJSON *arguments(const cJSON *a)
{
    if (cJSON_IsString(a)) {
        cJSON *j = cJSON_Parse(a->valuestring);
        return j != NULL ? j : cJSON_CreateString(a->valuestring);
    }
    return a != NULL ? cJSON_Duplicate(a, 1) : cJSON_CreateObject();
}

static const char *get_str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Content (a string, or a list of OpenAI or Anthropic blocks) into parts. */
static void content_parts(const cJSON *content, cJSON *parts)
{
    if (cJSON_IsString(content)) {
        if (content->valuestring[0] != '\0')
            cJSON_AddItemToArray(parts, text_part(content->valuestring));
        return;
    }
    const cJSON *block;
    cJSON_ArrayForEach(block, content)
    {
        const char *type = get_str(block, "type");
        if (type == NULL)
            continue;
        if (strcmp(type, "text") == 0 && get_str(block, "text") != NULL) {
            cJSON_AddItemToArray(parts, text_part(get_str(block, "text")));
        } else if (strcmp(type, "tool_use") == 0) {
            cJSON *p = cJSON_CreateObject();
            cJSON_AddStringToObject(p, "type", "tool_call");
            cJSON_AddStringToObject(p, "id", get_str(block, "id") ? get_str(block, "id") : "");
            cJSON_AddStringToObject(p, "name", get_str(block, "name") ? get_str(block, "name") : "");
            cJSON_AddItemToObject(p, "arguments", arguments(cJSON_GetObjectItemCaseSensitive(block, "input")));
            cJSON_AddItemToArray(parts, p);
        } else if (strcmp(type, "tool_result") == 0) {
            cJSON *p = cJSON_CreateObject();
            cJSON_AddStringToObject(p, "type", "tool_call_response");
            cJSON_AddStringToObject(p, "id", get_str(block, "tool_use_id") ? get_str(block, "tool_use_id") : "");
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(block, "content");
            cJSON_AddItemToObject(p, "response", c != NULL ? cJSON_Duplicate(c, 1) : cJSON_CreateString(""));
            cJSON_AddItemToArray(parts, p);
        }
    }
}

static void tool_call_parts(const cJSON *calls, cJSON *parts)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, calls)
    {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(c, "function");
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "type", "tool_call");
        cJSON_AddStringToObject(p, "id", get_str(c, "id") ? get_str(c, "id") : "");
        cJSON_AddStringToObject(p, "name", get_str(fn, "name") ? get_str(fn, "name") : "");
        cJSON_AddItemToObject(p, "arguments", arguments(cJSON_GetObjectItemCaseSensitive(fn, "arguments")));
        cJSON_AddItemToArray(parts, p);
    }
}

/* One message {role, content, tool_calls, tool_call_id} into {role, parts}. */
static cJSON *message(const cJSON *m, const char *finish_reason)
{
    const char *role = get_str(m, "role");
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "role", role != NULL ? role : "assistant");
    cJSON *parts = cJSON_AddArrayToObject(out, "parts");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    if (role != NULL && strcmp(role, "tool") == 0) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "type", "tool_call_response");
        cJSON_AddStringToObject(p, "id", get_str(m, "tool_call_id") ? get_str(m, "tool_call_id") : "");
        cJSON_AddItemToObject(p, "response", content != NULL ? cJSON_Duplicate(content, 1) : cJSON_CreateString(""));
        cJSON_AddItemToArray(parts, p);
    } else {
        content_parts(content, parts);
        tool_call_parts(cJSON_GetObjectItemCaseSensitive(m, "tool_calls"), parts);
    }
    if (finish_reason != NULL)
        cJSON_AddStringToObject(out, "finish_reason", finish_reason);
    return out;
}

/* gen_ai.input.messages from a request body (OpenAI's messages, Anthropic's system + messages); NULL when it has none. */
static cJSON *input_messages(const cJSON *req)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(req, "messages");
    if (!cJSON_IsArray(msgs))
        return NULL;
    cJSON *out = cJSON_CreateArray();
    const cJSON *system = cJSON_GetObjectItemCaseSensitive(req, "system");
    if (system != NULL) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "role", "system");
        content_parts(system, cJSON_AddArrayToObject(s, "parts"));
        cJSON_AddItemToArray(out, s);
    }
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs)
    cJSON_AddItemToArray(out, message(m, NULL));
    return out;
}

/* gen_ai.output.messages from a completion (OpenAI's choices, or Anthropic's message); NULL when it has none. */
static cJSON *output_messages(const cJSON *res)
{
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(res, "choices");
    cJSON *out = cJSON_CreateArray();
    if (cJSON_IsArray(choices)) {
        const cJSON *c;
        cJSON_ArrayForEach(c, choices)
        {
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(c, "message");
            if (cJSON_IsObject(m))
                cJSON_AddItemToArray(out, message(m, get_str(c, "finish_reason")));
        }
    } else if (cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(res, "content"))) {
        cJSON_AddItemToArray(out, message(res, get_str(res, "stop_reason")));
    }
    if (cJSON_GetArraySize(out) == 0) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

static void attr_json(jw_t *w, const char *key, cJSON *v)
{
    if (v == NULL)
        return;
    char *s = cJSON_PrintUnformatted(v);
    if (s != NULL)
        attr_str(w, key, s, strlen(s));
    cJSON_free(s);
    cJSON_Delete(v);
}

static void body_attrs(jw_t *w, const gyre_trace_t *t)
{
    if (t->request_body.len != 0) {
        cJSON *req = cJSON_ParseWithLength(t->request_body.p, t->request_body.len);
        attr_json(w, "gen_ai.input.messages", cJSON_IsObject(req) ? input_messages(req) : NULL);
        cJSON_Delete(req);
        attr_tstr(w, "input.value", &t->request_body);
        attr_str(w, "input.mime_type", req != NULL ? "application/json" : "text/plain",
                 req != NULL ? strlen("application/json") : strlen("text/plain"));
    }
    if (t->response_body.len != 0) {
        cJSON *res = cJSON_ParseWithLength(t->response_body.p, t->response_body.len);
        if (cJSON_IsObject(res)) {
            attr_json(w, "gen_ai.output.messages", output_messages(res));
            const char *id = get_str(res, "id");
            if (id != NULL && id[0] != '\0')
                attr_str(w, "gen_ai.response.id", id, strlen(id));
        }
        cJSON_Delete(res);
        attr_tstr(w, "output.value", &t->response_body);
        attr_str(w, "output.mime_type", res != NULL ? "application/json" : "text/plain",
                 res != NULL ? strlen("application/json") : strlen("text/plain"));
    }
}

static void ids(jw_t *w, const gyre_trace_t *t)
{
    lit(w, "{\"traceId\":");
    str(w, t->otel_trace_id, strnlen(t->otel_trace_id, 32));
    lit(w, ",\"spanId\":");
    str(w, t->span_id, strnlen(t->span_id, 16));
    if (t->parent_span_id[0] != '\0') {
        lit(w, ",\"parentSpanId\":");
        str(w, t->parent_span_id, strnlen(t->parent_span_id, 16));
    }
}

static void attempt_events(jw_t *w, const gyre_trace_t *t)
{
    lit(w, ",\"events\":[");
    size_t n = t->nattempts < GYRE_TRACE_MAX_ATTEMPTS ? t->nattempts : GYRE_TRACE_MAX_ATTEMPTS;
    for (size_t i = 0; i < n; i++) {
        const gyre_trace_attempt_t *a = &t->attempts[i];
        lit(w, i ? ",{\"timeUnixNano\":" : "{\"timeUnixNano\":");
        fmt_ns(w, a->started_us);
        lit(w, ",\"name\":\"gyre.attempt\",\"attributes\":[");
        w->first = 1;
        attr_str(w, "gyre.attempt.provider", a->provider.p, a->provider.len);
        attr_str(w, "gyre.attempt.model", a->model.p, a->model.len);
        attr_tstr(w, "gyre.attempt.key_id", &a->key_id);
        attr_int(w, "gyre.attempt.status", a->status);
        attr_int(w, "gyre.attempt.latency_us", a->latency_us);
        attr_tstr(w, "gyre.attempt.error", &a->error);
        lit(w, "]}");
    }
    lit(w, "]");
}

int gyre_otlp_encode_span(gyre_buf_t *out, const gyre_trace_t *t, const gyre_config_t *config)
{
    gyre_buf_mark_t mark = gyre_buf_mark(out);
    jw_t w = {out, 0, 1};
    const char *op = operation_name(t);
    ids(&w, t);
    lit(&w, ",\"name\":");
    char name[GYRE_OTLP_FIELD_MAX + 64];
    int nn = snprintf(name, sizeof(name), "%s%s%.*s", op, t->model.len ? " " : "",
                      (int)(t->model.len < GYRE_OTLP_FIELD_MAX ? t->model.len : GYRE_OTLP_FIELD_MAX),
                      t->model.p ? t->model.p : "");
    str(&w, name, nn > 0 && (size_t)nn < sizeof(name) ? (size_t)nn : strlen(name));
    /* SPAN_KIND_CLIENT: gyre calls the model on the application's behalf. */
    lit(&w, ",\"kind\":3,\"startTimeUnixNano\":");
    fmt_ns(&w, t->started_us);
    lit(&w, ",\"endTimeUnixNano\":");
    fmt_ns(&w, t->ended_us);
    lit(&w, ",\"attributes\":[");

    /* The GenAI semantic conventions. */
    attr_str(&w, "gen_ai.operation.name", op, strlen(op));
    const gyre_provider_conf_t *p =
        config != NULL && t->provider.len != 0 ? gyre_config_find_provider(config, t->provider.p, t->provider.len) : NULL;
    const char *pname = p != NULL ? gyre_otlp_provider_name(p->kind) : NULL;
    if (pname != NULL)
        attr_str(&w, "gen_ai.provider.name", pname, strlen(pname));
    attr_tstr(&w, "gen_ai.request.model", &t->model);
    if (t->prompt_tokens >= 0)
        attr_int(&w, "gen_ai.usage.input_tokens", t->prompt_tokens);
    if (t->completion_tokens >= 0)
        attr_int(&w, "gen_ai.usage.output_tokens", t->completion_tokens);
    if (t->cached_tokens >= 0)
        attr_int(&w, "gen_ai.usage.cache_read.input_tokens", t->cached_tokens);
    if (t->finish_reason.len != 0)
        attr_str_array(&w, "gen_ai.response.finish_reasons", &t->finish_reason, 1);
    attr_tstr(&w, "gen_ai.conversation.id", &t->session);
    if (t->status != 0)
        attr_int(&w, "http.response.status_code", t->status);
    char status[16];
    if (t->status >= 400) {
        snprintf(status, sizeof(status), "%d", t->status);
        attr_str(&w, "error.type", status, strlen(status));
    }
    body_attrs(&w, t);

    /* gyre's own fields. */
    attr_str(&w, "gyre.trace_id", t->trace_id, strnlen(t->trace_id, 32));
    attr_tstr(&w, "gyre.request_id", &t->request_id);
    attr_tstr(&w, "gyre.endpoint", &t->endpoint);
    attr_tstr(&w, "gyre.route", &t->route);
    attr_tstr(&w, "gyre.provider", &t->provider);
    attr_bool(&w, "gyre.stream", t->stream);
    attr_bool(&w, "gyre.cache_hit", t->cache_hit);
    if (t->ttft_us >= 0)
        attr_int(&w, "gyre.ttft_us", t->ttft_us);
    if (!isnan(t->cost_usd))
        attr_double(&w, "gyre.cost_usd", t->cost_usd);
    if (t->cache_hit && !isnan(t->cost_saved_usd))
        attr_double(&w, "gyre.cost_saved_usd", t->cost_saved_usd);
    if (t->cached_tokens >= 0)
        attr_int(&w, "gyre.usage.cached_tokens", t->cached_tokens);
    if (t->reasoning_tokens >= 0)
        attr_int(&w, "gyre.usage.reasoning_tokens", t->reasoning_tokens);
    attr_tstr(&w, "gyre.agent", &t->agent);
    attr_tstr(&w, "gyre.user", &t->user);
    size_t ntags = t->ntags < GYRE_TRACE_MAX_TAGS ? t->ntags : GYRE_TRACE_MAX_TAGS;
    if (ntags != 0)
        attr_str_array(&w, "gyre.tags", t->tags, ntags);
    size_t nmeta = t->nmeta < GYRE_TRACE_MAX_META ? t->nmeta : GYRE_TRACE_MAX_META;
    for (size_t i = 0; i < nmeta; i++) {
        char key[GYRE_OTLP_FIELD_MAX + 16];
        size_t kl = t->meta[i].key.len < GYRE_OTLP_FIELD_MAX ? t->meta[i].key.len : GYRE_OTLP_FIELD_MAX;
        memcpy(key, "gyre.meta.", 10);
        if (kl != 0)
            memcpy(key + 10, t->meta[i].key.p, kl);
        key[10 + kl] = '\0';
        attr_str(&w, key, t->meta[i].value.p, t->meta[i].value.len);
    }
    lit(&w, "]");
    attempt_events(&w, t);
    if (t->status >= 400) {
        /* STATUS_CODE_ERROR, with the last attempt's message when gyre has one. */
        const gyre_tstr_t *msg = t->nattempts != 0 ? &t->attempts[t->nattempts - 1].error : NULL;
        lit(&w, ",\"status\":{\"code\":2");
        if (msg != NULL && msg->len != 0) {
            lit(&w, ",\"message\":");
            str(&w, msg->p, msg->len);
        }
        lit(&w, "}}");
    } else {
        lit(&w, ",\"status\":{}}");
    }
    if (w.rc != 0) {
        gyre_buf_rollback(out, mark); /* the span goes whole or not at all, and `out` is as it was */
        return -E2BIG;
    }
    return 0;
}

int gyre_otlp_encode_request(gyre_buf_t *out, const gyre_trace_t *const *t, size_t n, const char *service_name,
                             const gyre_config_t *config, size_t *nencoded)
{
    gyre_buf_mark_t mark = gyre_buf_mark(out);
    jw_t w = {out, 0, 1};
    *nencoded = 0;
    lit(&w, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
    attr_str(&w, "service.name", service_name, strlen(service_name));
    lit(&w, "]},\"scopeSpans\":[{\"scope\":{\"name\":\"gyre\"},\"spans\":[");
    /* The closing bytes are kept free so that the spans that fit always make a whole request. */
    static const char tail[] = "]}]}]}";
    size_t saved_max = out->max;
    if (w.rc == 0 && out->max >= sizeof(tail))
        out->max -= sizeof(tail) - 1;
    for (size_t i = 0; i < n && w.rc == 0; i++) {
        /* A span that does not fit ends the batch: it and its comma go, and so does the error they met. */
        gyre_buf_mark_t before = gyre_buf_mark(out);
        if ((i != 0 && gyre_buf_appends(out, ",") != 0) || gyre_otlp_encode_span(out, t[i], config) != 0) {
            gyre_buf_rollback(out, before);
            break;
        }
        (*nencoded)++;
    }
    out->max = saved_max;
    lit(&w, tail);
    if (w.rc != 0 || (*nencoded == 0 && n != 0)) {
        gyre_buf_rollback(out, mark);
        *nencoded = 0;
        return -E2BIG;
    }
    return 0;
}
