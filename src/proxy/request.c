/*
 * The provider's request for the current attempt: the client's body with
 * its model spliced in (pass-through), or the OpenAI-shaped pivot handed to
 * the provider's dialect (translated); the head is composed in compose.c.
 */
#include <time.h>

#include "proxy/proxy_int.h"

/* The body with its model value replaced: a splice when its bytes were located, else a rebuild. */
static int splice_model(gyre_proxy_t *self, const char *model, size_t model_len, gyre_buf_t *out)
{
    const gyre_call_t *call = self->call;
    const char *body = call->body.base;
    size_t len = call->body.len;
    if (call->model_end > call->model_start) {
        /* Each piece is checked: a body with a piece missing must never go to a provider (rewrite_failed). */
        int r = gyre_buf_reserve(out, len + 6 * model_len + 2);
        r |= gyre_buf_append(out, body, call->model_start);
        r |= gyre_buf_append_json_string(out, model, model_len);
        return r | gyre_buf_append(out, body + call->model_end, len - call->model_end);
    }
    cJSON *j = cJSON_ParseWithLength(body, len);
    if (j == NULL)
        return -1;
    cJSON_DeleteItemFromObjectCaseSensitive(j, "model");
    char *m = gyre_strndup(model, model_len);
    cJSON_AddStringToObject(j, "model", m);
    free(m);
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    int r = text ? gyre_buf_appends(out, text) : -1;
    cJSON_free(text);
    return r;
}

/*
 * A pass-through OpenAI stream whose client did not ask for usage: the
 * trace needs it, so gyre asks (stream_options.include_usage) and keeps the
 * usage chunk from the client (emit_pivot_event).  Without a stream_options
 * object in the body, one is inserted after the opening brace, a splice;
 * with one (include_usage false or absent) the body is rebuilt.
 */
static int ask_stream_usage(gyre_proxy_t *self)
{
    gyre_buf_t *b = &self->upbody;
    self->usage_asked = 1;
    if (!self->call->has_stream_options) {
        size_t i = 0;
        while (i < b->len && (b->base[i] == ' ' || b->base[i] == '\t' || b->base[i] == '\r' || b->base[i] == '\n'))
            i++;
        if (i == b->len || b->base[i] != '{')
            return -1;
        size_t k = i + 1;
        while (k < b->len && (b->base[k] == ' ' || b->base[k] == '\t' || b->base[k] == '\r' || b->base[k] == '\n'))
            k++;
        static const char field[] = "\"stream_options\":{\"include_usage\":true}";
        int empty = k < b->len && b->base[k] == '}';
        gyre_buf_t out;
        gyre_buf_init(&out, b->len + sizeof(field) + 1 > b->max ? b->len + sizeof(field) + 1 : b->max);
        gyre_buf_append(&out, b->base, i + 1);
        gyre_buf_append(&out, field, sizeof(field) - 1);
        if (!empty)
            gyre_buf_appends(&out, ",");
        gyre_buf_append(&out, b->base + i + 1, b->len - i - 1);
        /* `out` is new: its sticky error is that of the four appends above, and a body that lost a piece is
         * refused by the caller (rewrite_failed), never sent. */
        int r = gyre_buf_failed(&out);
        gyre_buf_dispose(b);
        *b = out;
        return r;
    }
    cJSON *j = cJSON_ParseWithLength(b->base, b->len);
    cJSON *so = cJSON_GetObjectItemCaseSensitive(j, "stream_options");
    if (!cJSON_IsObject(so)) {
        cJSON_Delete(j);
        return -1;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(so, "include_usage");
    cJSON_AddTrueToObject(so, "include_usage");
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    gyre_buf_reset(b);
    int r = text ? gyre_buf_appends(b, text) : -1;
    cJSON_free(text);
    return r;
}

/* The OpenAI-shaped request of a translated attempt (the client's request read by its dialect), with the
 * partial answer appended as an assistant message when the attempt resumes a cut stream. */
static cJSON *build_pivot(gyre_proxy_t *self, gyre_api_error_t *err)
{
    const gyre_call_t *call = self->call;
    gyre_client_request_t creq;
    if (call->client->parse(call->body.base, call->body.len, &creq, err) != 0)
        return NULL;
    cJSON *pivot = creq.pivot;
    /* An API whose path names the model (Gemini's): the body alone is not the whole request. */
    if (call->client->from_path != NULL &&
        call->client->from_path(self->req->path_normalized.base, self->req->path_normalized.len, &creq, err) < 0) {
        cJSON_Delete(pivot);
        return NULL;
    }
    if (call->history.len != 0) /* earlier turns gyre read back (previous_response_id) */
        gyre_responses_prepend_history(pivot, cJSON_ParseWithLength(call->history.base, call->history.len));
    if (self->resuming && self->acc.content.len != 0) {
        cJSON *messages = cJSON_GetObjectItemCaseSensitive(pivot, "messages");
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "assistant");
        /* Providers refuse a prefill that ends in whitespace (Anthropic does): the continuation brings it back. */
        size_t n = self->acc.content.len;
        while (n > 0 && (self->acc.content.base[n - 1] == ' ' || self->acc.content.base[n - 1] == '\n' ||
                         self->acc.content.base[n - 1] == '\t' || self->acc.content.base[n - 1] == '\r'))
            n--;
        /* What was trimmed, the continuation may well repeat: it is dropped from its start (emit_pivot_event). */
        gyre_buf_reset(&self->resume_ws);
        /* Kept up to its bound (4 KiB): of a longer run of whitespace at the cut, which no model writes, the
         * continuation's repeat past the first 4 KiB reaches the client twice (whitespace only, never text). */
        gyre_buf_append_upto(&self->resume_ws, self->acc.content.base + n, self->acc.content.len - n);
        char *prefix = gyre_strndup(self->acc.content.base, n);
        cJSON_AddStringToObject(m, "content", prefix);
        free(prefix);
        cJSON_AddItemToArray(messages, m);
    }
    return pivot;
}

/* Builds the current attempt's request: the body here (the client's with its model spliced, or the pivot for
 * the dialect), the request line and headers in gyre_compose_request, the one place they are composed.
 * Returns 0, or -1 with `err` (the provider cannot take this call: the next target may). */
int gyre_proxy_build_request(gyre_proxy_t *self, const char *key, gyre_api_error_t *err)
{
    const gyre_call_t *call = self->call;
    const gyre_candidate_t *c = self->cand;
    gyre_buf_reset(&self->upbody);
    if (self->pivot != NULL) {
        cJSON_Delete(self->pivot);
        self->pivot = NULL;
    }
    char *model = gyre_strndup(c->model, c->model_len);
    int rc = 0;
    self->chat = (gyre_chat_call_t){
        .req = NULL,
        .model = model,
        .provider = self->prov,
        .stream = call->stream,
        /* The trace needs the usage of every stream: it is asked for always, and kept from a client that
         * did not ask (emit_pivot_event). */
        .include_usage = call->stream ? 1 : call->include_usage,
        .id = self->chat_id,
        .created = self->created,
    };
    gyre_compose_t in = {
        .provider = self->prov,
        .host = self->up->host_header,
        .endpoint = GYRE_COMPOSE_CHAT,
        .method = self->req->method,
        .model = h2o_iovec_init(c->model, c->model_len),
        .client_path = self->req->path,
        .chat = &self->chat,
        .key = key,
        .now = (long long)time(NULL),
        .request_id = gyre_request_id(self->worker, self->req),
        .client_headers = self->req->headers.entries,
        .nclient_headers = self->req->headers.size,
    };
    if (call->endpoint != GYRE_OPENAI_CHAT) {
        /* Embeddings and other OpenAI paths: only providers that speak OpenAI take them. */
        if (!self->dialect->speaks_openai) {
            gyre_api_error_set(err, 400, "invalid_request_error", "unsupported_endpoint", NULL,
                               "provider '%s' is of kind %s, which does not serve %.*s", self->prov->name,
                               self->dialect->kind, (int)self->req->path_normalized.len,
                               self->req->path_normalized.base);
            rc = -1;
            goto out;
        }
        self->passthrough = 1;
        in.endpoint = GYRE_COMPOSE_OTHER;
        if (c->model_len != 0 && call->model_end > call->model_start)
            rc = splice_model(self, c->model, c->model_len, &self->upbody);
        else
            rc = gyre_buf_append(&self->upbody, call->body.base, call->body.len);
        if (rc != 0) {
            gyre_api_error_set(err, 500, "server_error", "rewrite_failed", "model",
                               "gyre could not rewrite 'model' for provider '%s'", self->prov->name);
            goto out;
        }
    } else {
        /* A call carrying earlier turns gyre read back never goes natively: the provider does not know gyre's
         * response ids. */
        int same_dialect = (call->client->native & GYRE_KIND_BIT(self->prov->kind)) != 0 && call->history.len == 0;
        self->passthrough = same_dialect && !self->resuming;
        if (self->passthrough) {
            /* The client's body goes to the provider's own endpoint for it: chat completions, messages, or another
             * API's path as the client sent it (POST /v1/responses). */
            in.endpoint = call->client == &gyre_client_openai      ? GYRE_COMPOSE_CHAT
                          : call->client == &gyre_client_anthropic ? GYRE_COMPOSE_MESSAGES
                                                                   : GYRE_COMPOSE_OTHER;
            if (splice_model(self, c->model, c->model_len, &self->upbody) != 0) {
                gyre_api_error_set(err, 500, "server_error", "rewrite_failed", "model",
                                   "gyre could not rewrite 'model' for provider '%s'", self->prov->name);
                rc = -1;
                goto out;
            }
            if (self->dialect->speaks_openai && call->stream && !call->include_usage &&
                ask_stream_usage(self) != 0) {
                gyre_api_error_set(err, 500, "server_error", "rewrite_failed", "stream_options",
                                   "gyre could not add stream_options for provider '%s'", self->prov->name);
                rc = -1;
                goto out;
            }
        } else {
            if ((self->pivot = build_pivot(self, err)) == NULL) {
                rc = -1;
                goto out;
            }
            self->chat.req = self->pivot;
            in.translated = 1;
        }
    }
    in.has_body = self->upbody.len != 0 || self->req->entity.base != NULL || in.translated;
    rc = gyre_compose_request(&in, &self->upbody, &self->uphead, err);
    if (self->pivot != NULL) {
        /* The pivot may come from the handler's JSON arena, which ends before the answer does; the
         * dialects read the request only in gyre_compose_request. */
        cJSON_Delete(self->pivot);
        self->pivot = NULL;
        self->chat.req = NULL;
    }
    if (rc == 0) {
        self->reqbufs[0] = h2o_iovec_init(self->uphead.base, self->uphead.len);
        self->reqbufs[1] = h2o_iovec_init(self->upbody.base, self->upbody.len);
    }
out:
    /* The dialect keeps call->model for the answer's translation: it lives as long as the attempt. */
    if (rc != 0) {
        free(model);
        self->chat.model = NULL;
    }
    return rc;
}
