/*
 * The stream pipeline: SSE events watched on a relayed stream, or re-made
 * event by event (the provider's dialect into OpenAI chunks, then, for an
 * Anthropic client, Anthropic events), stitched onto a cut stream when a
 * resumed attempt continues it, and accumulated for the trace and the cache.
 */
#include "proxy/proxy_int.h"

/* A stream line or event past SSE_EVENT_MAX: the attempt ends, whatever the stream's mode.  The parser would
 * refuse every later byte of the line anyway, so reading on is only work; the connection is closed (fail). */
void gyre_proxy_sse_too_large(gyre_proxy_t *self)
{
    gyre_api_error_t err;
    self->sse_failed = 1;
    gyre_api_error_set(&err, 502, "upstream_error", "stream_event_too_large", NULL,
                       "provider '%s' sent a stream line or event longer than %d bytes; gyre stopped reading it",
                       self->prov->name, SSE_EVENT_MAX);
    gyre_proxy_drop_conn(self, 0);
    gyre_proxy_fail(self, FAIL_CUT, &err);
}

/* RELAY: watching a pass-through stream for its proper end. */
void gyre_proxy_on_relay_sse_event(void *ctx, const char *event, size_t elen, const char *data, size_t dlen)
{
    gyre_proxy_t *self = ctx;
    self->relay_saw_event = 1;
    if (self->relay_acc)
        gyre_openai_accum_event(&self->acc, data, dlen);
    else if (self->call->client == GYRE_CLIENT_OPENAI && dlen > 9 && memmem(data, dlen, "\"usage\":{", 9) != NULL)
        gyre_trace_read_completion(self->call->trace, &self->req->pool, data, dlen); /* the usage chunk */
    if (dlen == 6 && memcmp(data, "[DONE]", 6) == 0)
        self->sse_done = 1;
    else if (dlen >= 9 && memcmp(data, "{\"error\":", 9) == 0)
        self->sse_done = 1; /* the provider ended the stream with an error of its own */
    else if ((elen == 12 && memcmp(event, "message_stop", 12) == 0) || (elen == 5 && memcmp(event, "error", 5) == 0))
        self->sse_done = 1; /* Anthropic's end, or its error event */
}

/* A chunk of a stream whose usage gyre asked for carries "usage":null, which the client did not ask for.
 * Quotes inside JSON strings are escaped, so the unescaped bytes can only be the member itself. */
static void strip_null_usage(gyre_buf_t *s)
{
    static const char m[] = ",\"usage\":null";
    char *p = memmem(s->base, s->len, m, sizeof(m) - 1);
    if (p == NULL)
        return;
    size_t at = (size_t)(p - s->base), n = sizeof(m) - 1;
    memmove(p, p + n, s->len - at - n);
    s->len -= n;
}

/* STREAM: one OpenAI-shaped event on its way to the client. */
static void emit_pivot_event(gyre_proxy_t *self, const char *data, size_t len)
{
    gyre_buf_t *s = &self->scratch;
    gyre_buf_reset(s);
    if (self->resuming && !(len == 6 && memcmp(data, "[DONE]", 6) == 0)) {
        /* A continuation's chunks become the first answer's: its id, and no second role. */
        cJSON *j = cJSON_ParseWithLength(data, len);
        if (j != NULL && cJSON_IsObject(j) && !cJSON_HasObjectItem(j, "error")) {
            if (self->acc.id.len != 0) {
                cJSON_DeleteItemFromObjectCaseSensitive(j, "id");
                cJSON_AddStringToObject(j, "id", self->acc.id.base);
            }
            cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
            cJSON *delta = cJSON_GetObjectItemCaseSensitive(choice, "delta");
            cJSON *text = cJSON_GetObjectItemCaseSensitive(delta, "content");
            if (self->resume_ws.len != 0 && cJSON_IsString(text) && text->valuestring[0] != '\0') {
                /* The client has the whitespace the prefill lost; a continuation that starts with it again
                 * would double it. */
                size_t k = 0, tl = strlen(text->valuestring);
                while (k < tl && k < self->resume_ws.len && text->valuestring[k] == self->resume_ws.base[k])
                    k++;
                if (k != 0) {
                    char *rest = gyre_strdup(text->valuestring + k);
                    cJSON_SetValuestring(text, rest);
                    free(rest);
                }
                gyre_buf_reset(&self->resume_ws);
            }
            if (cJSON_HasObjectItem(delta, "role")) {
                cJSON_DeleteItemFromObjectCaseSensitive(delta, "role");
                cJSON *content = cJSON_GetObjectItemCaseSensitive(delta, "content");
                if (content != NULL && (cJSON_IsNull(content) || (cJSON_IsString(content) && content->valuestring[0] == '\0')))
                    cJSON_DeleteItemFromObjectCaseSensitive(delta, "content");
                cJSON *fr = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");
                if (cJSON_GetArraySize(delta) == 0 && (fr == NULL || cJSON_IsNull(fr)) &&
                    !cJSON_HasObjectItem(j, "usage")) {
                    cJSON_Delete(j);
                    return; /* the role chunk alone: the client had it from the first attempt */
                }
            }
            char *printed = cJSON_PrintUnformatted(j);
            cJSON_Delete(j);
            if (printed != NULL) {
                gyre_buf_appends(s, "data: ");
                gyre_buf_appends(s, printed);
                gyre_buf_appends(s, "\n\n");
                cJSON_free(printed);
            }
        } else {
            cJSON_Delete(j);
        }
    }
    if (s->len == 0) {
        gyre_buf_appends(s, "data: ");
        gyre_buf_append(s, data, len);
        gyre_buf_appends(s, "\n\n");
    }
    /* The accumulator sees what the client sees, and the usage the client did not ask for. */
    gyre_openai_accum_event(&self->acc, s->base + 6, s->len - 8);
    if (!self->call->include_usage && memmem(s->base, s->len, "\"choices\":[]", 12) != NULL &&
        memmem(s->base, s->len, "\"usage\":", 8) != NULL)
        return;
    if (self->usage_asked)
        strip_null_usage(s);
    if (self->enc != NULL) {
        gyre_buf_t out;
        gyre_buf_init(&out, SSE_EVENT_MAX * 2);
        gyre_anthropic_encoder_feed(self->enc, s->base, s->len, &out);
        gyre_proxy_push_out(self, out.base, out.len);
        gyre_buf_dispose(&out);
    } else {
        gyre_proxy_push_out(self, s->base, s->len);
    }
}

/* RELAY of an Anthropic stream: its events decoded into OpenAI chunks, for the trace only. */
void gyre_proxy_on_trace_sse_event(void *ctx, const char *event, size_t elen, const char *data, size_t dlen)
{
    gyre_proxy_t *self = ctx;
    (void)event, (void)elen;
    gyre_openai_accum_event(&self->acc, data, dlen);
}

static void on_pivot_sse_event(void *ctx, const char *event, size_t elen, const char *data, size_t dlen)
{
    (void)event, (void)elen;
    emit_pivot_event(ctx, data, dlen);
}

/* (Re)starts an SSE parser: each attempt's stream starts clean. */
void gyre_proxy_restart_sse(gyre_sse_parser_t *p, int *inited, gyre_sse_event_cb cb, void *ctx)
{
    if (*inited)
        gyre_sse_dispose(p);
    gyre_sse_init(p, SSE_EVENT_MAX, cb, ctx);
    *inited = 1;
}

/* The accumulator lives across attempts: a resumed stream continues what the first one started. */
void gyre_proxy_ensure_accum(gyre_proxy_t *self)
{
    if (!self->acc_inited) {
        self->acc_inited = 1;
        gyre_openai_accum_init(&self->acc, ACCUM_MAX);
    }
}

void gyre_proxy_start_stream_mode(gyre_proxy_t *self)
{
    self->mode = MODE_STREAM;
    if (!self->dialect->speaks_openai)
        self->dstream = self->dialect->stream_create(&self->chat);
    gyre_proxy_restart_sse(&self->pivot_sse, &self->pivot_inited, on_pivot_sse_event, self);
    gyre_proxy_ensure_accum(self);
    if (self->call->client == GYRE_CLIENT_ANTHROPIC && self->enc == NULL)
        self->enc = gyre_anthropic_encoder_create(NULL); /* the model the chunks name, as a whole answer has it */
}

/* Whether the stream that reached the client has ended as its protocol says. */
int gyre_proxy_stream_complete(gyre_proxy_t *self)
{
    if (self->mode == MODE_RELAY)
        return self->sse_done;
    if (self->enc != NULL)
        return gyre_anthropic_encoder_complete(self->enc);
    return self->acc.done;
}

void gyre_proxy_stream_bytes(gyre_proxy_t *self, const char *bytes, size_t len)
{
    if (self->dstream != NULL) {
        gyre_buf_t out;
        gyre_api_error_t err;
        gyre_buf_init(&out, SSE_EVENT_MAX * 2);
        int r = self->dialect->stream_feed(self->dstream, bytes, len, &out, &err);
        int too_large = out.len != 0 && gyre_sse_feed(&self->pivot_sse, out.base, out.len) != 0;
        gyre_buf_dispose(&out);
        if (too_large) {
            gyre_proxy_sse_too_large(self);
            return;
        }
        if (r != 0) {
            if (err.status == 429 || err.status == 529)
                self->status = err.status;
            gyre_proxy_drop_conn(self, 0);
            gyre_proxy_fail(self, self->sent_body ? FAIL_CUT : FAIL_STATUS, &err);
            return;
        }
    } else if (gyre_sse_feed(&self->pivot_sse, bytes, len) != 0) {
        gyre_proxy_sse_too_large(self);
    }
}

/* RELAY of an Anthropic stream: the client gets the provider's bytes as they are; the trace reads them decoded.
 * A decoding error only ends the decoding: the stream is the client's either way. */
void gyre_proxy_decode_for_trace(gyre_proxy_t *self, const char *bytes, size_t len)
{
    gyre_buf_t out;
    gyre_api_error_t err;
    gyre_buf_init(&out, SSE_EVENT_MAX * 2);
    int r = self->dialect->stream_feed(self->dstream, bytes, len, &out, &err);
    if (out.len != 0 && gyre_sse_feed(&self->pivot_sse, out.base, out.len) != 0)
        r = -1;
    gyre_buf_dispose(&out);
    if (r != 0)
        self->relay_decode = 0;
}
