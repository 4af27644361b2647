/*
 * The answer to the client: gyre's headers, the send loop that follows the
 * client's pace (a memory bound stops reading from the provider), whole
 * answers in one send, buffered answers translated whole, and the error
 * answers and stream error events in the client's dialect.
 */
#include "proxy/proxy_int.h"

/* Decimal digits of v into buf (at least 20 bytes); returns their count.  No printf on the hot path. */
static size_t format_uint(char *buf, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

/* Which route, provider and model answered, and after how many attempts. */
void gyre_proxy_add_gyre_headers(gyre_proxy_t *self)
{
    h2o_req_t *req = self->req;
    const gyre_call_t *call = self->call;
    h2o_headers_t *hs = &req->res.headers;
    if (call->route_name != NULL)
        gyre_wire_add_answer_header(&req->pool, hs, H2O_STRLIT("x-gyre-route"), call->route_name,
                                    strlen(call->route_name));
    if (self->prov != NULL)
        gyre_wire_add_answer_header(&req->pool, hs, H2O_STRLIT("x-gyre-provider"), self->prov->name,
                                    strlen(self->prov->name));
    if (self->cand != NULL && self->cand->model_len != 0)
        gyre_wire_add_answer_header(&req->pool, hs, H2O_STRLIT("x-gyre-model"), self->cand->model,
                                    self->cand->model_len);
    char *n = h2o_mem_alloc_pool(&req->pool, 20);
    size_t len = format_uint(n, self->attempts);
    gyre_wire_add_answer_header(&req->pool, hs, H2O_STRLIT("x-gyre-attempts"), n, len);
    if (call->route != NULL && call->route->cache)
        gyre_wire_add_answer_header(&req->pool, hs, H2O_STRLIT("x-gyre-cache"), H2O_STRLIT("miss"));
}

void gyre_proxy_log_error(gyre_proxy_t *self, const gyre_api_error_t *err)
{
    h2o_iovec_t id = gyre_request_id(self->worker, self->req);
    gyre_logf("gyre: request %.*s: %s\n", (int)id.len, id.base, err->message);
}

/* An error answer in the client's dialect. */
void gyre_proxy_respond_error(gyre_proxy_t *self, const gyre_api_error_t *err)
{
    gyre_respond_client_error(self->req, self->call->client, err);
}

void gyre_proxy_do_send(gyre_proxy_t *self)
{
    if (self->client_gone || !self->response_started)
        return;
    h2o_send_state_t state;
    h2o_iovec_t vec = h2o_doublebuffer_prepare(&self->sending, &self->recv, self->req->preferred_chunk_size);
    if (self->upstream_done && vec.len == self->sending.buf->size && self->recv->size == 0) {
        state = self->had_body_error ? H2O_SEND_STATE_ERROR : H2O_SEND_STATE_FINAL;
        self->answered = 1;
    } else {
        if (vec.len == 0)
            return;
        state = H2O_SEND_STATE_IN_PROGRESS;
    }
    h2o_send(self->req, &vec, vec.len != 0 ? 1 : 0, state);
}

void gyre_proxy_push_out(gyre_proxy_t *self, const char *bytes, size_t len)
{
    if (len == 0)
        return;
    h2o_iovec_t dst = h2o_buffer_reserve(&self->recv, len);
    memcpy(dst.base, bytes, len);
    self->recv->size += len;
    self->sent_body = 1;
}

void gyre_proxy_start_client_response(gyre_proxy_t *self)
{
    if (self->response_started || self->client_gone)
        return;
    self->response_started = 1;
    /* From the first byte on, the client decides how long it waits (it may leave, which cancels the attempt);
     * the idle bound between reads and the route's deadline still hold. */
    gyre_timer_stop(&self->answer_timer);
    if (self->call->stream)
        self->call->trace->ttft_us = gyre_trace_now_us() - self->call->trace->started_us;
    gyre_proxy_add_gyre_headers(self);
    h2o_start_response(self->req, &self->super);
}

void gyre_proxy_on_proceed(h2o_generator_t *generator, h2o_req_t *req)
{
    gyre_proxy_t *self = (void *)generator;
    if (self->whole.base != NULL)
        return; /* a whole answer went in one final send */
    if (self->client_gone) {
        /* The client left while this send was in flight (client_left): the response ends here, and h2o closes
         * the connection and disposes the request, `self` with it. */
        h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    h2o_doublebuffer_consume(&self->sending);
    gyre_proxy_do_send(self);
    if (self->recv->size < RELAY_HIGH_WATER)
        gyre_http1client_resume(&self->client);
}

/* The last words of a stream that failed after it began: an SSE error event
 * in the client's dialect, so its SDK raises instead of seeing a clean end. */
static void append_stream_error(gyre_proxy_t *self, const gyre_api_error_t *err)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 8192);
    gyre_buf_appends(&b, "\n\n"); /* ends an event the provider left half-written */
    if (self->mode == MODE_STREAM && self->enc != NULL) {
        /* The client's encoder has begun: the error is its next event (numbered on, where its API numbers them,
         * and followed by whatever ends such a stream: Responses' response.failed). */
        gyre_event_t ev = {.type = GYRE_EVENT_ERROR, .error = err};
        size_t before = b.len;
        if (self->call->client->encode(self->enc, &ev, &b) != 0 || b.len == before)
            self->call->client->error_event(err, &b); /* an encoder that leaves errors to error_event (OpenAI's) */
    } else {
        self->call->client->error_event(err, &b);
    }
    /* An error event is a few hundred bytes (the message is bounded); should it not fit 8 KiB, the client gets
     * the blank line alone, i.e. a stream that ends without its [DONE] or stop event, which its SDK also raises
     * on, rather than half an event. */
    if (gyre_buf_failed(&b))
        b.len = 2;
    gyre_proxy_push_out(self, b.base, b.len);
    gyre_buf_dispose(&b);
    gyre_proxy_log_error(self, err);
}

/* The answer is complete on the provider's side (`why` NULL) or was cut. */
void gyre_proxy_finish_client_stream(gyre_proxy_t *self, const gyre_api_error_t *err)
{
    self->upstream_done = 1;
    if (err != NULL) {
        self->had_body_error = 1;
        /* A stream says why in an event; any other body can only end uncleanly. */
        if (self->is_sse || self->mode == MODE_STREAM)
            append_stream_error(self, err);
        else
            gyre_proxy_log_error(self, err);
    }
    gyre_timer_stop(&self->deadline_timer);
    if (!self->response_started)
        gyre_proxy_start_client_response(self);
    if (self->sending.bytes_inflight == 0)
        gyre_proxy_do_send(self);
}

void gyre_proxy_store_in_cache(gyre_proxy_t *self, const char *completion, size_t len)
{
    const gyre_call_t *call = self->call;
    if (call->cache == NULL)
        return;
    /* An entry is "provider\tmodel\n" then the completion, so a hit can say who answered first. */
    gyre_buf_t entry;
    gyre_buf_init(&entry, (size_t)BUFFER_MAX + 4096);
    gyre_buf_appendf(&entry, "%s\t%.*s\n", self->prov->name, (int)self->cand->model_len, self->cand->model);
    gyre_buf_append(&entry, completion, len);
    /* An entry that lost a piece is not kept: a hit must be the whole answer. */
    if (!gyre_buf_failed(&entry))
        gyre_cache_put(call->cache, call->cache_key.base, call->cache_key.len, entry.base, entry.len, gyre_proxy_now_ms(self));
    gyre_buf_dispose(&entry);
}

/* Sends a whole answer (already in the client's dialect) with the provider's status. */
void gyre_proxy_deliver_whole(gyre_proxy_t *self, const char *body, size_t len, const char *content_type)
{
    h2o_req_t *req = self->req;
    if (content_type != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type,
                       strlen(content_type));
    req->res.content_length = len;
    self->upstream_done = 1;
    gyre_timer_stop(&self->deadline_timer);
    if (self->client_gone)
        return;
    self->answered = 1;
    /* One send, straight from where the answer is (it lives until the request does): no copy, no relay. */
    self->whole = h2o_iovec_init(h2o_mem_alloc_pool(&req->pool, len), len);
    memcpy(self->whole.base, body, len);
    self->sent_body = 1;
    self->response_started = 1;
    gyre_proxy_add_gyre_headers(self);
    h2o_start_response(req, &self->super);
    h2o_send(req, &self->whole, 1, H2O_SEND_STATE_FINAL);
}

/* A whole answer in OpenAI's shape, for the trace: kept as it is when the trace captures bodies, else read
 * now for its tokens, finish reason and model. */
static void keep_response(gyre_proxy_t *self, const char *p, size_t len)
{
    if (self->call->capture)
        self->trace_response = h2o_strdup(&self->req->pool, p, len);
    else
        gyre_trace_read_completion(self->call->trace, &self->req->pool, p, len);
}

/* A native answer in the client's own API other than chat's (a Response): the trace reads it as the
 * chat.completion it amounts to. */
void gyre_proxy_keep_native_answer(gyre_proxy_t *self, const char *p, size_t len)
{
    gyre_buf_t openai;
    gyre_buf_init(&openai, BUFFER_MAX);
    if (self->call->client->native_completion(p, len, &openai) == 0)
        keep_response(self, openai.base, openai.len);
    gyre_buf_dispose(&openai);
}

/* A pass-through answer for the trace: one in a provider's own API other than OpenAI's (an Anthropic message) is
 * read in OpenAI's shape, as a translated answer and a stream's reassembly are, so that every trace's response
 * reads the same way. */
static void keep_passthrough_response(gyre_proxy_t *self, const char *p, size_t len)
{
    if (self->call->client->native_completion != NULL && self->call->endpoint == GYRE_OPENAI_CHAT) {
        gyre_proxy_keep_native_answer(self, p, len);
        return;
    }
    if (self->dialect->speaks_openai || self->call->endpoint != GYRE_OPENAI_CHAT) {
        keep_response(self, p, len);
        return;
    }
    gyre_buf_t openai;
    gyre_api_error_t err;
    gyre_buf_init(&openai, BUFFER_MAX);
    if (self->dialect->chat_response(&self->chat, p, len, &openai, &err) == 0)
        keep_response(self, openai.base, openai.len);
    gyre_buf_dispose(&openai);
}

/* A whole 2xx answer, read: translated as needed and sent on. */
void gyre_proxy_deliver_buffered(gyre_proxy_t *self)
{
    const gyre_call_t *call = self->call;
    if (self->cand->state != NULL)
        gyre_route_observe_latency(self->cand->state, (double)(gyre_proxy_now_ms(self) - self->attempt_started_ms));
    if (self->passthrough) {
        if (gyre_proxy_guard_passthrough(self))
            return; /* denied, or moved on to the next target */
        gyre_proxy_record_outcome(self, 1, 0);
        if (call->endpoint == GYRE_OPENAI_CHAT && call->client->native_completion != NULL) {
            /* Another API's own answer (a Response): the cache keeps the chat.completion it amounts to. */
            gyre_buf_t openai;
            gyre_buf_init(&openai, BUFFER_MAX);
            if (call->cache != NULL &&
                call->client->native_completion(self->body.base ? self->body.base : "", self->body.len, &openai) == 0)
                gyre_proxy_store_in_cache(self, openai.base, openai.len);
            gyre_buf_dispose(&openai);
        } else if (call->endpoint == GYRE_OPENAI_CHAT && self->dialect->speaks_openai) {
            gyre_proxy_store_in_cache(self, self->body.base, self->body.len);
        } else if (call->endpoint == GYRE_OPENAI_CHAT && call->cache != NULL) {
            /* The cache keeps OpenAI's shape, whatever the client speaks. */
            gyre_buf_t openai;
            gyre_api_error_t err;
            gyre_buf_init(&openai, BUFFER_MAX);
            if (self->dialect->chat_response(&self->chat, self->body.base ? self->body.base : "", self->body.len,
                                             &openai, &err) == 0)
                gyre_proxy_store_in_cache(self, openai.base, openai.len);
            gyre_buf_dispose(&openai);
        }
        keep_passthrough_response(self, self->body.base ? self->body.base : "", self->body.len);
        gyre_proxy_deliver_whole(self, self->body.base ? self->body.base : "", self->body.len, NULL);
        return;
    }
    gyre_buf_t openai, out;
    gyre_api_error_t err;
    gyre_buf_init(&openai, BUFFER_MAX);
    gyre_buf_init(&out, BUFFER_MAX);
    int r = 0;
    if (self->dialect->speaks_openai)
        r = gyre_buf_append(&openai, self->body.base ? self->body.base : "", self->body.len);
    else
        r = self->dialect->chat_response(&self->chat, self->body.base ? self->body.base : "", self->body.len, &openai,
                                         &err);
    if (r != 0) {
        if (self->dialect->speaks_openai)
            gyre_api_error_set(&err, 502, "upstream_error", "response_too_large", NULL, "the answer is too large");
        gyre_buf_dispose(&openai);
        gyre_buf_dispose(&out);
        gyre_proxy_fail(self, GYRE_OUTCOME_CUT, &err);
        return;
    }
    if (gyre_proxy_guard_answer(self, openai.base ? openai.base : "", openai.len)) {
        gyre_buf_dispose(&openai); /* denied, or moved on to the next target */
        gyre_buf_dispose(&out);
        return;
    }
    gyre_proxy_record_outcome(self, 1, 0);
    gyre_proxy_store_in_cache(self, openai.base, openai.len);
    keep_response(self, openai.base, openai.len);
    /* The pivot's answer, in the client's API (for an OpenAI client, itself). */
    /* An API that echoes its request in its answer (Responses) reads it again here. */
    cJSON *request = call->client != &gyre_client_openai ? cJSON_ParseWithLength(call->body.base, call->body.len) : NULL;
    gyre_client_call_t cc = {.model = NULL, .id = call->answer_id != NULL ? call->answer_id : self->chat_id,
                             .created = self->created, .include_usage = call->include_usage, .request = request};
    int rr = call->client->response(&cc, openai.base, openai.len, &out, &err);
    cJSON_Delete(request);
    if (rr != 0) {
        gyre_buf_dispose(&openai);
        gyre_buf_dispose(&out);
        gyre_proxy_fail(self, GYRE_OUTCOME_CUT, &err);
        return;
    }
    gyre_proxy_deliver_whole(self, out.base, out.len, "application/json");
    gyre_buf_dispose(&openai);
    gyre_buf_dispose(&out);
}
