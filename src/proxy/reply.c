/*
 * The provider's answer, as the upstream client (http1client.c) reports it:
 * the head (which decides how the body is read: RELAY, BUFFER or STREAM, see
 * proxy_int.h), then the body's bytes in that mode, then its end, clean or
 * cut, or the error that came instead of a head.
 */
#include <time.h>

#include "proxy/proxy_int.h"

/* Body bytes of the current attempt, in its mode.  Returns -1 when the attempt is over (failed). */
static int on_body_bytes(gyre_proxy_t *self, const char *bytes, size_t len)
{
    if (len == 0)
        return 0;
    switch (self->mode) {
    case MODE_RELAY:
        if (self->is_sse && gyre_sse_feed(&self->sse, bytes, len) != 0) {
            gyre_proxy_sse_too_large(self);
            return -1;
        }
        if (self->relay_decode)
            gyre_proxy_decode_for_trace(self, bytes, len);
        /* Comments and keep-alives only, so far: nothing is committed to this provider yet.  They are held up to
         * an event's bound; past it the stream is committed to (the client gets them), as a provider that sends
         * that much before its first event is sending something. */
        if (self->is_sse && !self->sent_body && !self->relay_saw_event && self->body.len + len <= SSE_EVENT_MAX &&
            gyre_buf_append(&self->body, bytes, len) == 0)
            return 0;
        if (self->body.len != 0) {
            /* The first event came: what was held goes first. */
            gyre_buf_t held = self->body;
            gyre_buf_init(&self->body, BUFFER_MAX);
            gyre_timer_stop(&self->first_byte_timer);
            gyre_timer_stop(&self->attempt_timer);
            if (self->cand->state != NULL)
                gyre_route_observe_latency(self->cand->state, (double)(gyre_proxy_now_ms(self) - self->attempt_started_ms));
            gyre_proxy_start_client_response(self);
            gyre_proxy_push_out(self, held.base, held.len);
            gyre_buf_dispose(&held);
        }
        gyre_timer_stop(&self->first_byte_timer);
        gyre_timer_stop(&self->attempt_timer);
        if (!self->sent_body && self->cand->state != NULL)
            gyre_route_observe_latency(self->cand->state, (double)(gyre_proxy_now_ms(self) - self->attempt_started_ms));
        gyre_proxy_start_client_response(self);
        gyre_proxy_push_out(self, bytes, len);
        return 0;
    case MODE_BUFFER: {
        gyre_api_error_t err;
        if (self->status >= 300 && self->body.len + len > ERROR_BODY_MAX) {
            /* An error answer longer than any real one: the provider is broken or hostile.  Reading on would
             * be unbounded work for an answer that is an error either way; the connection is closed (fail). */
            gyre_api_error_set(&err, 502, "upstream_error", "error_body_too_large", NULL,
                               "provider '%s' sent an error answer (status %d) longer than %d bytes; gyre stopped "
                               "reading it",
                               self->prov->name, self->status, ERROR_BODY_MAX);
            gyre_proxy_fail(self, GYRE_OUTCOME_CUT, &err);
            return -1;
        }
        if ((self->status < 300 && self->body.len + len > self->prov->max_response_bytes) ||
            gyre_buf_append(&self->body, bytes, len) != 0) {
            /* A whole answer is held in memory before it goes on: the operator's bound (max_response_bytes)
             * decides how much; past it the attempt fails like a cut answer (the route may fall back). */
            gyre_api_error_set(&err, 502, "upstream_error", "response_too_large", NULL,
                               "provider '%s' answered more than %zu bytes (max_response_bytes); gyre stopped "
                               "reading it",
                               self->prov->name, self->prov->max_response_bytes);
            gyre_proxy_fail(self, GYRE_OUTCOME_CUT, &err);
            return -1;
        }
        return 0;
    }
    case MODE_STREAM: {
        int had = self->sent_body;
        gyre_proxy_stream_bytes(self, bytes, len);
        if (self->client.conn == NULL)
            return -1; /* the provider's stream failed: the attempt is over */
        if (!had && self->sent_body) {
            gyre_timer_stop(&self->first_byte_timer);
            gyre_timer_stop(&self->attempt_timer);
            if (self->cand->state != NULL && !self->resuming)
                gyre_route_observe_latency(self->cand->state, (double)(gyre_proxy_now_ms(self) - self->attempt_started_ms));
            gyre_proxy_start_client_response(self);
        }
        return 0;
    }
    }
    return self->client.conn == NULL ? -1 : 0;
}

/* The provider's body ended: `why` is NULL when it ended as its framing said. */
static void on_body_end(gyre_proxy_t *self, const char *why)
{
    int reusable = why == NULL && self->client.keep_alive;
    switch (self->mode) {
    case MODE_BUFFER:
        gyre_proxy_drop_conn(self, reusable);
        if (why != NULL) {
            gyre_proxy_fail_upstream(self, GYRE_HTTP1CLIENT_BODY, why);
            return;
        }
        if (self->status >= 300) {
            /* An error answer: the route's fallback_on decides whether it moves on (a 4xx other than
             * 408/409/429 never does, and goes back as it is). */
            gyre_proxy_attempt_failed(self, GYRE_OUTCOME_STATUS, NULL);
            return;
        }
        gyre_proxy_deliver_buffered(self);
        return;
    case MODE_RELAY:
        gyre_proxy_drop_conn(self, reusable);
        if (self->is_sse && self->status == 200 && !self->sse_done) {
            if (!self->sent_body) {
                gyre_proxy_fail_upstream(self, GYRE_HTTP1CLIENT_HEAD, why ? why : "the stream ended before its first event");
                return;
            }
            gyre_api_error_t err;
            gyre_api_error_set(&err, 502, "upstream_error", "stream_interrupted", NULL,
                               "provider '%s' ended the stream before it was complete (%s)", self->prov->name,
                               why ? why : "the connection closed before [DONE]");
            gyre_proxy_stream_failed(self, GYRE_OUTCOME_CUT, &err);
            return;
        }
        if (why != NULL && !self->is_sse) {
            if (!self->response_started) {
                gyre_proxy_fail_upstream(self, GYRE_HTTP1CLIENT_HEAD, why);
                return;
            }
            gyre_proxy_record_outcome(self, 0, 0);
            gyre_proxy_end_attempt(self);
            self->upstream_done = 1;
            self->had_body_error = 1;
            if (self->sending.bytes_inflight == 0)
                gyre_proxy_do_send(self);
            return;
        }
        gyre_proxy_record_outcome(self, 1, 0);
        gyre_proxy_end_attempt(self);
        gyre_proxy_guard_stream_end(self); /* the bytes are out: a failed check flags the trace */
        gyre_proxy_finish_client_stream(self, NULL);
        return;
    case MODE_STREAM:
        gyre_proxy_drop_conn(self, reusable);
        if (self->sse_failed || !gyre_proxy_stream_complete(self)) {
            gyre_api_error_t err;
            gyre_api_error_set(&err, 502, "upstream_error", "stream_interrupted", NULL,
                               "provider '%s' ended the stream before it was complete (%s)", self->prov->name,
                               self->sse_failed ? "an event was over gyre's size limit"
                               : why            ? why
                                                : "the connection closed before the stream's end");
            gyre_proxy_fail(self, GYRE_OUTCOME_CUT, &err);
            return;
        }
        gyre_proxy_record_outcome(self, 1, 0);
        gyre_proxy_end_attempt(self);
        /* Only a whole, clean, single-choice stream is worth keeping. */
        if (self->call->cache != NULL && self->acc_inited && self->acc.done && !self->acc.truncated &&
            !self->acc.errored) {
            gyre_buf_t c;
            gyre_buf_init(&c, ACCUM_MAX * 2);
            if (gyre_openai_accum_completion(&self->acc, &c) == 0)
                gyre_proxy_store_in_cache(self, c.base, c.len);
            gyre_buf_dispose(&c);
        }
        gyre_proxy_guard_stream_end(self); /* the bytes are out: a failed check flags the trace */
        gyre_proxy_finish_client_stream(self, NULL);
        return;
    }
}

static int drop_response_header(const gyre_http1_header_t *h)
{
    static const gyre_wire_name_t names[] = {
        GYRE_WIRE_NAME("connection"),       GYRE_WIRE_NAME("keep-alive"),
        GYRE_WIRE_NAME("proxy-connection"), GYRE_WIRE_NAME("te"),
        GYRE_WIRE_NAME("trailer"),          GYRE_WIRE_NAME("upgrade"),
        GYRE_WIRE_NAME("content-length"),   GYRE_WIRE_NAME("transfer-encoding"),
        GYRE_WIRE_NAME("server"),           GYRE_WIRE_NAME("date"),
    };
    return gyre_wire_name_in(names, sizeof(names) / sizeof(names[0]), h->name, h->name_len);
}

/* Headers a translated answer keeps from the provider's. */
static int keep_when_translated(const char *name, size_t len)
{
    static const gyre_wire_name_t names[] = {GYRE_WIRE_NAME("retry-after"), GYRE_WIRE_NAME("x-upstream-request-id")};
    return gyre_wire_name_in(names, sizeof(names) / sizeof(names[0]), name, len) ||
           (len > 10 && h2o_lcstris(name, 10, H2O_STRLIT("ratelimit-"))) ||
           (len > 12 && h2o_lcstris(name, 12, H2O_STRLIT("x-ratelimit-")));
}

static uint64_t parse_retry_after(const gyre_http1_response_t *res)
{
    for (size_t i = 0; i < res->num_headers; i++) {
        const gyre_http1_header_t *h = &res->headers[i];
        if (h->name_len == 14 && h2o_lcstris(h->name, 14, H2O_STRLIT("retry-after-ms"))) {
            char tmp[32];
            size_t n = h->value_len < sizeof(tmp) - 1 ? h->value_len : sizeof(tmp) - 1;
            memcpy(tmp, h->value, n);
            tmp[n] = '\0';
            double v = strtod(tmp, NULL);
            if (v > 0 && v < 86400000)
                return (uint64_t)v;
        }
    }
    for (size_t i = 0; i < res->num_headers; i++) {
        const gyre_http1_header_t *h = &res->headers[i];
        if (h->name_len == 11 && h2o_lcstris(h->name, 11, H2O_STRLIT("retry-after")))
            return gyre_retry_after_ms(h->value, h->value_len, (long long)time(NULL));
    }
    return 0;
}

/* The provider's head: decides how the body is read. */
static void on_head(gyre_proxy_t *self, const gyre_http1_response_t *res)
{
    h2o_req_t *req = self->req;
    const gyre_call_t *call = self->call;
    self->status = res->status;
    self->retry_after_ms = parse_retry_after(res);
    if (self->tattempt != NULL)
        self->tattempt->status = res->status;
    int is_sse = 0, translated = !self->passthrough;
    for (size_t i = 0; i < res->num_headers; i++) {
        const gyre_http1_header_t *h = &res->headers[i];
        if (h->name_len == 12 && h2o_lcstris(h->name, 12, H2O_STRLIT("content-type")) && h->value_len >= 17 &&
            h2o_lcstris(h->value, 17, H2O_STRLIT("text/event-stream")))
            is_sse = 1;
    }
    gyre_buf_reset(&self->body);
    /* A declared length within the answer's bound is allocated at once; a larger one is the provider's claim
     * only, and the body's bound (on_body_bytes) refuses it as its bytes come. */
    if (res->content_length != SIZE_MAX && !res->chunked &&
        res->content_length <= (res->status >= 300 ? (size_t)ERROR_BODY_MAX : self->prov->max_response_bytes))
        gyre_buf_reserve(&self->body, res->content_length);
    if (res->status >= 300) {
        /* An error: its headers are the client's only if it is relayed, as it is. */
        self->mode = MODE_BUFFER;
        self->err_headers = (h2o_headers_t){NULL};
        for (size_t i = 0; i < res->num_headers; i++) {
            const gyre_http1_header_t *h = &res->headers[i];
            if (drop_response_header(h))
                continue;
            h2o_iovec_t name = h2o_strdup(&req->pool, h->name, h->name_len);
            h2o_strtolower(name.base, name.len);
            if (h2o_memis(name.base, name.len, H2O_STRLIT("x-request-id")))
                name = h2o_iovec_init(H2O_STRLIT("x-upstream-request-id"));
            if (!self->passthrough && !keep_when_translated(name.base, name.len))
                continue;
            h2o_iovec_t value = h2o_strdup(&req->pool, h->value, h->value_len);
            h2o_add_header_by_str(&req->pool, &self->err_headers, name.base, name.len, 1, NULL, value.base,
                                  value.len);
        }
        return;
    }
    /* The provider's headers, for the client (translated answers keep only a few). */
    if (!self->response_started) {
        req->res.headers.size = self->own_headers;
        req->res.status = res->status;
        req->res.reason = h2o_strdup(&req->pool, res->reason, res->reason_len).base;
        for (size_t i = 0; i < res->num_headers; i++) {
            const gyre_http1_header_t *h = &res->headers[i];
            if (drop_response_header(h))
                continue;
            h2o_iovec_t name = h2o_strdup(&req->pool, h->name, h->name_len);
            h2o_strtolower(name.base, name.len);
            if (h2o_memis(name.base, name.len, H2O_STRLIT("x-request-id")))
                name = h2o_iovec_init(H2O_STRLIT("x-upstream-request-id"));
            if (translated && !keep_when_translated(name.base, name.len))
                continue;
            if (call->limit_headers && name.len > 12 && memcmp(name.base, "x-ratelimit-", 12) == 0)
                continue; /* gyre's own, for the client's key, are already there (src/server/limits_stage.c) */
            h2o_iovec_t value = h2o_strdup(&req->pool, h->value, h->value_len);
            h2o_add_header_by_str(&req->pool, &req->res.headers, name.base, name.len, 1, NULL, value.base,
                                  value.len);
        }
        if (translated && call->stream)
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                           H2O_STRLIT("text/event-stream; charset=utf-8"));
    }
    if (call->endpoint == GYRE_OPENAI_CHAT && call->stream) {
        const gyre_route_conf_t *r = call->route;
        /* Another API's stream passed natively (Responses to openai) is relayed as it came: gyre re-makes only
         * chat chunks, so such a stream is neither cached nor resumed. */
        int native_other = !translated && call->client->native_completion != NULL;
        int need_events = !native_other && (translated || call->cache != NULL || (r != NULL && r->midstream_resume) ||
                                            self->usage_asked);
        if (need_events) {
            gyre_proxy_start_stream_mode(self);
        } else {
            self->mode = MODE_RELAY;
            self->is_sse = is_sse;
            if (is_sse) {
                gyre_proxy_restart_sse(&self->sse, gyre_proxy_on_relay_sse_event, self);
                /* The trace keeps what the stream adds up to: its tokens always, its answer when it captures. */
                if (native_other) {
                    /* The watcher reads the stream's last event, the whole answer, for the trace. */
                } else if (self->dialect->speaks_openai) {
                    if (call->capture || gyre_proxy_guard_wants(self))
                        gyre_proxy_ensure_accum(self);
                    self->relay_acc = self->acc_inited;
                } else {
                    /* The client speaks the provider's own API: the provider's dialect reads its events too. */
                    self->dstream = self->dialect->stream_create(&self->chat);
                    gyre_proxy_ensure_accum(self);
                    self->relay_decode = self->dstream != NULL;
                }
            }
        }
        return;
    }
    if (call->endpoint == GYRE_OPENAI_CHAT || call->endpoint == GYRE_OPENAI_EMBEDDINGS) {
        self->mode = MODE_BUFFER;
        return;
    }
    /* Other endpoints pass through as they come, with the provider's framing. */
    self->mode = MODE_RELAY;
    self->is_sse = is_sse;
    if (is_sse)
        gyre_proxy_restart_sse(&self->sse, gyre_proxy_on_relay_sse_event, self);
    if (res->content_length != SIZE_MAX && !res->chunked)
        req->res.content_length = res->content_length;
    gyre_proxy_start_client_response(self);
}

/* The upstream client's callbacks (http1client.h): each step of the answer, into the functions above. */

static void on_client_head(gyre_http1client_t *c, const gyre_http1_response_t *res)
{
    on_head(c->data, res);
}

static int on_client_body(gyre_http1client_t *c, const char *bytes, size_t len)
{
    return on_body_bytes(c->data, bytes, len);
}

static void on_client_body_end(gyre_http1client_t *c, const char *err)
{
    on_body_end(c->data, err);
}

static void on_client_body_read(gyre_http1client_t *c)
{
    gyre_proxy_t *self = c->data;
    if (self->recv->size >= RELAY_HIGH_WATER) {
        /* The client reads slower than the provider writes: stop reading
         * from the provider until the client has taken what is buffered. */
        gyre_http1client_pause(c);
    }
    if (self->sending.bytes_inflight == 0)
        gyre_proxy_do_send(self);
}

static void on_client_error(gyre_http1client_t *c, gyre_http1client_phase_t phase, const char *err)
{
    gyre_proxy_t *self = c->data;
    if (err == gyre_http1client_error_head_too_large || err == gyre_http1client_error_too_many_headers) {
        /* A head past the parser's bounds: the provider is broken or hostile, and its connection is
         * closed (fail); the route may fall back. */
        gyre_api_error_t e;
        if (err == gyre_http1client_error_head_too_large)
            gyre_api_error_set(&e, 502, "upstream_error", "response_head_too_large", NULL,
                               "provider '%s' failed before answering: the response head is larger than %d "
                               "bytes",
                               self->prov->name, GYRE_HTTP1_MAX_HEAD);
        else
            gyre_api_error_set(&e, 502, "upstream_error", "response_head_too_large", NULL,
                               "provider '%s' failed before answering: the response head has more than %d "
                               "headers",
                               self->prov->name, GYRE_HTTP1_MAX_HEADERS);
        gyre_proxy_fail(self, GYRE_OUTCOME_CONNECT, &e);
        return;
    }
    gyre_proxy_fail_upstream(self, phase, err);
}

static void on_client_resend(gyre_http1client_t *c)
{
    gyre_proxy_t *self = c->data;
    self->attempts++;
}

const gyre_http1client_callbacks_t gyre_proxy_client_callbacks = {
    .on_head = on_client_head,
    .on_body = on_client_body,
    .on_body_end = on_client_body_end,
    .on_body_read = on_client_body_read,
    .on_error = on_client_error,
    .on_resend = on_client_resend,
};
