/*
 * Attempts down the plan: a usable key, the request, a pooled or new
 * connection, the attempt's timers; how an attempt fails (before or after
 * the client saw bytes), told to route/ as an outcome.  Whether the route
 * falls back on it and which attempt comes next (a retry after a backoff,
 * the next target, a resume, or the final answer) is route/next.c's
 * decision (gyre_route_next); this file carries the step out.
 */
#include <stdio.h>

#include "proxy/proxy_int.h"

static void stop_attempt_timers(gyre_proxy_t *self)
{
    gyre_timer_stop(&self->attempt_timer);
    gyre_timer_stop(&self->first_byte_timer);
    gyre_timer_stop(&self->answer_timer);
}

void gyre_proxy_drop_conn(gyre_proxy_t *self, int reusable)
{
    stop_attempt_timers(self);
    gyre_http1client_close(&self->client, reusable);
}

/* The attempt is over: its in-flight count and (when no outcome was recorded) its key slot go back. */
void gyre_proxy_end_attempt(gyre_proxy_t *self)
{
    if (self->tattempt != NULL) {
        self->tattempt->latency_us = gyre_trace_now_us() - self->tattempt->started_us;
        self->tattempt = NULL;
    }
    if (self->attempt_live) {
        self->attempt_live = 0;
        if (self->cand->state != NULL && self->cand->state->inflight != 0)
            self->cand->state->inflight--;
    }
    if (self->key_index >= 0) {
        gyre_keypool_release(self->kp, self->key_index);
        self->key_index = -1;
    }
    if (self->dstream != NULL) {
        self->dialect->stream_destroy(self->dstream);
        self->dstream = NULL;
    }
    free((char *)self->chat.model);
    self->chat.model = NULL;
}

/* The attempt's outcome, told to its key once (route/next.c keeps the failure accounting). */
static void account(gyre_proxy_t *self, const gyre_route_outcome_t *o)
{
    if (self->key_index < 0)
        return;
    gyre_route_record(self->kp, self->key_index, o, gyre_proxy_now_ms(self));
    self->key_index = -1; /* recorded: nothing to release */
    gyre_wgen_note_provider(self->gen, self->cand->provider, gyre_proxy_now_ms(self)); /* for /readyz */
}

/* Records how the provider's key did, once per attempt: a success, a 429 (rate_limited), or a failure. */
void gyre_proxy_record_outcome(gyre_proxy_t *self, int ok, int rate_limited)
{
    gyre_route_outcome_t o = {.kind = ok             ? GYRE_OUTCOME_OK
                                      : rate_limited ? GYRE_OUTCOME_STATUS
                                                     : GYRE_OUTCOME_CUT,
                              .status = rate_limited ? 429 : 0,
                              .retry_after_ms = self->retry_after_ms};
    account(self, &o);
}

/* A failure as the route's policy reads it. */
/* The next step after outcome `o`, as route/ decides it, with the walk moved on to it. */
static gyre_route_step_t next_step(gyre_proxy_t *self, const gyre_route_outcome_t *o)
{
    /* The deadline as it stands: its timer is stopped once the answer is over, and has fired when it passed. */
    self->walk.deadline_at_ms = gyre_timer_is_active(&self->deadline_timer) ? self->deadline_timer.at_ms : 0;
    gyre_route_step_t step = gyre_route_next(&self->walk, o, gyre_proxy_now_ms(self), &self->worker->rng);
    gyre_route_walk_apply(&self->walk, &step);
    return step;
}

/* The answer for a call that ran out of targets: the last provider's error
 * when it was one (translated into the client's dialect unless it speaks
 * it), else gyre's own. */
static void respond_final_failure(gyre_proxy_t *self)
{
    if (self->client_gone)
        return;
    self->answered = 1;
    h2o_req_t *req = self->req;
    req->res.headers.size = self->own_headers;
    for (size_t i = 0; i < self->err_headers.size; i++) {
        const h2o_header_t *h = &self->err_headers.entries[i];
        h2o_add_header_by_str(&req->pool, &req->res.headers, h->name->base, h->name->len, 0, NULL, h->value.base,
                              h->value.len);
    }
    if (self->unavailable_retry_s != 0 && !self->have_last_status) {
        char *ra = h2o_mem_alloc_pool(&req->pool, 24);
        int n = snprintf(ra, 24, "%llu", (unsigned long long)self->unavailable_retry_s);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, ra, (size_t)n);
    }
    if (self->have_last_status) {
        if (self->last_passthrough) {
            req->res.status = self->last_status;
            req->res.reason = "Upstream Error";
            gyre_proxy_deliver_whole(self, self->last_body.base ? self->last_body.base : "", self->last_body.len, NULL);
            return;
        }
        gyre_api_error_t err;
        gyre_buf_t msg;
        gyre_buf_init(&msg, 2048);
        const gyre_dialect_t *d = gyre_dialect_for(self->last_provider->kind);
        d->error_message(self->last_body.base ? self->last_body.base : "", self->last_body.len, &msg);
        const char *type = self->last_status == 429 ? "rate_limit_error"
                           : self->last_status >= 500 ? "upstream_error"
                           : self->last_status == 401 ? "authentication_error"
                           : self->last_status == 403 ? "permission_error"
                           : self->last_status == 404 ? "not_found_error"
                                                      : "invalid_request_error";
        gyre_api_error_set(&err, self->last_status, type, "upstream_status", NULL, "provider '%s' answered %d: %.600s",
                           self->last_provider->name, self->last_status, msg.base ? msg.base : "");
        gyre_buf_dispose(&msg);
        gyre_proxy_add_gyre_headers(self);
        gyre_proxy_respond_error(self, &err);
        return;
    }
    gyre_proxy_add_gyre_headers(self);
    gyre_proxy_log_error(self, &self->last_err);
    gyre_proxy_respond_error(self, &self->last_err);
}

static void on_backoff_done(gyre_timer_t *t)
{
    gyre_proxy_t *self = H2O_STRUCT_FROM_MEMBER(gyre_proxy_t, backoff_timer, t);
    gyre_proxy_start_attempt(self);
}

/* The attempt's error in the trace is the client's message; a failure at the provider's socket also says where
 * (the trace is the operator's, like the log: addresses are kept out of what clients read, not out of these). */
static void set_attempt_error(gyre_proxy_t *self, const gyre_api_error_t *err)
{
    int at_address = self->fail_at_address;
    self->fail_at_address = 0; /* this attempt's only: a next attempt started from here fails on its own terms */
    if (!at_address) {
        self->tattempt->error = gyre_tstr_dup(&self->req->pool, err->message, strlen(err->message));
        return;
    }
    gyre_buf_t line;
    gyre_buf_init(&line, sizeof(err->message) + 512);
    gyre_buf_appendf(&line, "%s (at %s:%u)", err->message, self->prov->host, self->prov->port);
    /* The bound holds the message and any host (256 bytes); should the line not fit all the same, the trace
     * keeps the message without where rather than a line with a piece missing. */
    if (gyre_buf_failed(&line))
        self->tattempt->error = gyre_tstr_dup(&self->req->pool, err->message, strlen(err->message));
    else
        self->tattempt->error = gyre_tstr_dup(&self->req->pool, line.base ? line.base : "", line.len);
    gyre_buf_dispose(&line);
}

/* An attempt failed before anything reached the client: fall back, or answer. */
void gyre_proxy_attempt_failed(gyre_proxy_t *self, gyre_route_outcome_kind_t fc, const gyre_api_error_t *err)
{
    int status = fc == GYRE_OUTCOME_STATUS ? self->status : 0;
    gyre_route_outcome_t o = {.kind = fc, .status = status, .retry_after_ms = self->retry_after_ms};
    gyre_proxy_drop_conn(self, 0);
    account(self, &o); /* the breaker hears of provider failures; a 4xx other than 429 is the client's */
    self->have_last_status = fc == GYRE_OUTCOME_STATUS;
    if (fc == GYRE_OUTCOME_STATUS) {
        /* An error body may echo the request head: the provider's key goes no further than here, not to the
         * client (relayed or in gyre's own error), not to the trace, not to the attempt's error. */
        gyre_keys_scrub(self->prov, &self->body);
        gyre_buf_reset(&self->last_body);
        /* Markers longer than the keys they replace may take the body past ERROR_BODY_MAX: kept cut there. */
        gyre_buf_append_upto(&self->last_body, self->body.base ? self->body.base : "", self->body.len);
        self->last_status = status;
        self->last_provider = self->prov;
        self->last_passthrough = self->passthrough;
    } else if (err != NULL) {
        self->last_err = *err;
        gyre_proxy_log_error(self, err);
    }
    if (self->tattempt != NULL && err != NULL) {
        set_attempt_error(self, err);
    } else if (self->tattempt != NULL && fc == GYRE_OUTCOME_STATUS) {
        /* The provider's own words, as its dialect reads them from the error body. */
        gyre_buf_t msg;
        gyre_buf_init(&msg, 4096);
        self->dialect->error_message(self->body.base ? self->body.base : "", self->body.len, &msg);
        gyre_buf_t line;
        gyre_buf_init(&line, 8192);
        gyre_buf_appendf(&line, "provider '%s' answered %d: %.512s", self->prov->name, status, msg.base ? msg.base : "");
        /* 8 KiB holds a name (256 bytes) and 512 of message; should it not, the attempt's line says only the
         * status (the answer's body is in the trace) rather than something cut. */
        if (gyre_buf_failed(&line))
            self->tattempt->error = gyre_tstr_dup(&self->req->pool, H2O_STRLIT("the provider answered an error"));
        else
            self->tattempt->error = gyre_tstr_dup(&self->req->pool, line.base, line.len);
        gyre_buf_dispose(&line);
        gyre_buf_dispose(&msg);
    }
    gyre_proxy_end_attempt(self);
    if (self->client_gone)
        return;
    gyre_route_step_t step = next_step(self, &o);
    if (step.kind == GYRE_STEP_GIVE_UP) {
        respond_final_failure(self);
        return;
    }
    gyre_timer_start(&self->worker->timers, &self->backoff_timer, step.wait_ms, on_backoff_done);
}

void gyre_proxy_answer_rejected(gyre_proxy_t *self, const gyre_api_error_t *err)
{
    /* The provider answered, whole and well: its key counts a success (the breaker is for availability, not for
     * what the answer says).  The walk moves to the next candidate as after an unservable attempt: at once,
     * whatever fallback_on and retries say, since the same target would likely answer alike. */
    gyre_proxy_record_outcome(self, 1, 0);
    gyre_proxy_drop_conn(self, 0);
    self->have_last_status = 0;
    self->err_headers = (h2o_headers_t){NULL};
    self->last_err = *err;
    if (self->tattempt != NULL)
        set_attempt_error(self, err);
    gyre_proxy_end_attempt(self);
    if (self->client_gone)
        return;
    gyre_route_outcome_t o = {.kind = GYRE_OUTCOME_UNSERVABLE, .status = 400};
    gyre_route_step_t step = next_step(self, &o);
    if (step.kind == GYRE_STEP_GIVE_UP) {
        respond_final_failure(self);
        return;
    }
    gyre_timer_start(&self->worker->timers, &self->backoff_timer, step.wait_ms, on_backoff_done);
}

/* The provider failed after the client had part of the stream. */
void gyre_proxy_stream_failed(gyre_proxy_t *self, gyre_route_outcome_kind_t fc, const gyre_api_error_t *err)
{
    /* Only a stream re-made event by event can be continued, and not once a tool call has begun. */
    gyre_route_outcome_t o = {.kind = fc,
                              .status = fc == GYRE_OUTCOME_STATUS ? self->status : 0,
                              .sent = 1,
                              .resumable = self->mode == MODE_STREAM && self->acc_inited && self->acc.ntools == 0};
    gyre_proxy_drop_conn(self, 0);
    account(self, &o);
    if (self->tattempt != NULL && err != NULL)
        set_attempt_error(self, err);
    gyre_proxy_end_attempt(self);
    if (self->client_gone)
        return;
    gyre_route_step_t step = next_step(self, &o);
    if (step.kind == GYRE_STEP_RESUME) {
        /* The seam, as an SSE comment the SDKs skip: which attempt took over, after how much. */
        const gyre_candidate_t *next = &self->call->cands[step.cand];
        gyre_buf_t b;
        gyre_buf_init(&b, 4096);
        gyre_buf_appendf(&b, ": gyre-resume attempt=%u provider=%s model=%.*s after_chars=%zu reason=\"%s\"\n\n",
                         self->attempts + 1, gyre_proxy_config(self)->providers[next->provider].name,
                         (int)next->model_len, next->model, self->acc.content.len, err != NULL ? err->message : "cut");
        /* The seam is a comment for whoever reads the stream, nothing an SDK needs: one that does not fit is left
         * out (the trace still has each attempt), never sent cut, which would end the comment inside an event. */
        if (!gyre_buf_failed(&b))
            gyre_proxy_push_out(self, b.base, b.len);
        gyre_buf_dispose(&b);
        if (err != NULL)
            gyre_proxy_log_error(self, err);
        if (self->sending.bytes_inflight == 0)
            gyre_proxy_do_send(self);
        self->resuming = 1;
        gyre_timer_start(&self->worker->timers, &self->backoff_timer, step.wait_ms, on_backoff_done);
        return;
    }
    gyre_api_error_t e;
    if (err == NULL) {
        gyre_api_error_set(&e, 502, "upstream_error", "stream_interrupted", NULL,
                           "provider '%s' ended the stream before it was complete", self->prov->name);
        err = &e;
    }
    gyre_proxy_finish_client_stream(self, err);
}

/* Any failure of the current attempt: before or after the client saw bytes. */
void gyre_proxy_fail(gyre_proxy_t *self, gyre_route_outcome_kind_t fc, const gyre_api_error_t *err)
{
    if (self->sent_body || self->response_started)
        gyre_proxy_stream_failed(self, fc, err);
    else
        gyre_proxy_attempt_failed(self, fc, err);
}

void gyre_proxy_fail_upstream(gyre_proxy_t *self, gyre_http1client_phase_t phase, const char *errstr)
{
    static const char *const stages[] = {"connect", "head", "body"}; /* the log's words for the phase */
    const gyre_provider_conf_t *p = self->prov;
    gyre_api_error_t err;
    /* Errors are constants, told apart by pointer (http1client.h); the text is for people. */
    int timeout = errstr == gyre_http1client_error_io_timeout || errstr == gyre_upstream_error_connect_timeout;
    /* h2o reports a failed handshake in OpenSSL's words ("self-signed
     * certificate", "hostname mismatch", ...); what is not one of its socket
     * errors, while connecting to an https provider, is TLS. */
    const char *const socket_errors[] = {h2o_socket_error_conn_fail, gyre_upstream_error_socket_create,
                                         h2o_socket_error_io, h2o_socket_error_closed, h2o_socket_error_out_of_memory};
    int tls = 0;
    if (p->is_https && phase == GYRE_HTTP1CLIENT_CONNECT && !timeout) {
        tls = 1;
        for (size_t i = 0; i < sizeof(socket_errors) / sizeof(socket_errors[0]); i++)
            if (errstr == socket_errors[i])
                tls = 0;
    }
    /* The client is told which provider failed and how, never where it is: the address goes to the log and the
     * trace (set_attempt_error). */
    h2o_iovec_t id = gyre_request_id(self->worker, self->req);
    gyre_logf("gyre: request %.*s: provider '%s' at %s:%u: %s: %s\n", (int)id.len, id.base, p->name, p->host, p->port,
              stages[phase], errstr);
    if (timeout)
        gyre_api_error_set(&err, 504, "upstream_error", "upstream_timeout", NULL,
                           "provider '%s' did not answer in time (%s, limit %llu ms)", p->name, errstr,
                           (unsigned long long)p->timeout_ms);
    else if (tls)
        gyre_api_error_set(&err, 502, "upstream_error", "upstream_tls_error", NULL, "provider '%s': TLS failed: %s",
                           p->name, errstr);
    else if (phase == GYRE_HTTP1CLIENT_CONNECT)
        gyre_api_error_set(&err, 502, "upstream_error", "upstream_unreachable", NULL,
                           "provider '%s' is unreachable: %s", p->name, errstr);
    else if (phase == GYRE_HTTP1CLIENT_BODY)
        gyre_api_error_set(&err, 502, "upstream_error", "stream_interrupted", NULL,
                           "provider '%s' ended the answer before it was complete (%s)", p->name, errstr);
    else
        gyre_api_error_set(&err, 502, "upstream_error", "upstream_error", NULL,
                           "provider '%s' failed before answering: %s", p->name, errstr);
    self->fail_at_address = 1;
    gyre_proxy_fail(self, timeout ? GYRE_OUTCOME_TIMEOUT : phase == GYRE_HTTP1CLIENT_BODY ? GYRE_OUTCOME_CUT : GYRE_OUTCOME_CONNECT, &err);
}

static void on_attempt_timeout(gyre_timer_t *t)
{
    gyre_proxy_t *self = H2O_STRUCT_FROM_MEMBER(gyre_proxy_t, attempt_timer, t);
    gyre_api_error_t err;
    gyre_api_error_set(&err, 504, "upstream_error", "upstream_timeout", NULL,
                       "provider '%s' did not complete the attempt in time (attempt_timeout_ms %llu)",
                       self->prov->name, (unsigned long long)self->call->route->attempt_timeout_ms);
    gyre_proxy_fail(self, GYRE_OUTCOME_TIMEOUT, &err);
}

static void on_answer_timeout(gyre_timer_t *t)
{
    gyre_proxy_t *self = H2O_STRUCT_FROM_MEMBER(gyre_proxy_t, answer_timer, t);
    const gyre_http1client_t *c = &self->client;
    if (c->conn == NULL || (!c->head_done && c->conn->sock->input->size == 0)) {
        /* Nothing came at all: the idle bound's own words, as it would have said at the same moment. */
        gyre_proxy_fail_upstream(self, c->conn == NULL ? GYRE_HTTP1CLIENT_CONNECT : GYRE_HTTP1CLIENT_HEAD, gyre_http1client_error_io_timeout);
        return;
    }
    /* Bytes came, but never an answer: a provider that trickles its head or its body. */
    gyre_api_error_t err;
    gyre_api_error_set(&err, 504, "upstream_error", "upstream_timeout", NULL,
                       "provider '%s' did not complete its answer in time (timeout_ms %llu)", self->prov->name,
                       (unsigned long long)self->prov->timeout_ms);
    gyre_proxy_fail(self, GYRE_OUTCOME_TIMEOUT, &err);
}

static void on_first_byte_timeout(gyre_timer_t *t)
{
    gyre_proxy_t *self = H2O_STRUCT_FROM_MEMBER(gyre_proxy_t, first_byte_timer, t);
    gyre_api_error_t err;
    gyre_api_error_set(&err, 504, "upstream_error", "first_byte_timeout", NULL,
                       "provider '%s' sent no stream event in time (first_byte_timeout_ms %llu)", self->prov->name,
                       (unsigned long long)self->call->route->first_byte_timeout_ms);
    gyre_proxy_fail(self, GYRE_OUTCOME_TIMEOUT, &err);
}

void gyre_proxy_on_deadline(gyre_timer_t *t)
{
    gyre_proxy_t *self = H2O_STRUCT_FROM_MEMBER(gyre_proxy_t, deadline_timer, t);
    self->walk.deadline_passed = 1;
    gyre_api_error_t err;
    gyre_api_error_set(&err, 504, "upstream_error", "deadline_exceeded", NULL,
                       "route '%s' ran past its deadline (deadline_ms %llu) after %u attempt%s",
                       self->call->route_name, (unsigned long long)self->call->route->deadline_ms, self->attempts,
                       self->attempts == 1 ? "" : "s");
    if (gyre_timer_is_active(&self->backoff_timer)) {
        gyre_timer_stop(&self->backoff_timer);
        self->last_err = err;
        self->have_last_status = 0;
        if (self->sent_body)
            gyre_proxy_finish_client_stream(self, &err);
        else
            respond_final_failure(self);
        return;
    }
    if (self->upstream_done || self->client_gone)
        return;
    gyre_proxy_fail(self, GYRE_OUTCOME_TIMEOUT, &err);
}

void gyre_proxy_start_attempt(gyre_proxy_t *self)
{
    const gyre_call_t *call = self->call;
    const gyre_config_t *cfg = gyre_proxy_config(self);
    gyre_api_error_t err;
    if (self->client_gone)
        return;
    self->fail_at_address = 0;
    for (;;) {
        self->cand = &call->cands[self->walk.cur];
        self->prov = &cfg->providers[self->cand->provider];
        self->dialect = gyre_dialect_for(self->prov->kind);
        self->up = &self->gen->upstreams[self->cand->provider];
        self->kp = &self->gen->keypools[self->cand->provider];
        uint64_t now = gyre_proxy_now_ms(self);
        /* A retry of the same target avoids the key that just failed, while another is usable. */
        self->key_index = gyre_route_take_key(&self->walk, self->kp, now, call->affinity);
        if (self->key_index >= 0)
            break;
        /* Every key of this target is cooling down or its breaker is open: on to the next, at once. */
        gyre_api_error_set(&self->last_err, 503, "upstream_error", "target_unavailable", NULL,
                           "provider '%s' is unavailable (circuit open or rate-limited); retry in %llu ms",
                           self->prov->name, (unsigned long long)(gyre_keypool_next_usable_ms(self->kp, now) - now));
        self->have_last_status = 0;
        gyre_route_outcome_t o = {.kind = GYRE_OUTCOME_UNAVAILABLE, .sent = self->sent_body};
        gyre_route_step_t step = next_step(self, &o);
        if (step.kind == GYRE_STEP_GIVE_UP) {
            if (step.end_stream) {
                gyre_proxy_finish_client_stream(self, &self->last_err);
            } else {
                self->unavailable_retry_s = step.retry_after_s; /* the soonest any target can be tried again */
                respond_final_failure(self);
            }
            return;
        }
    }
    const char *key = self->prov->nkeys != 0 ? self->prov->keys[self->key_index] : NULL;
    if (gyre_proxy_build_request(self, key, &err) != 0) {
        /* This target cannot take the call (an endpoint its API lacks, a request it cannot express). */
        gyre_keypool_release(self->kp, self->key_index);
        self->key_index = -1;
        self->last_err = err;
        self->have_last_status = 0;
        gyre_route_outcome_t o = {.kind = GYRE_OUTCOME_UNSERVABLE, .status = err.status, .sent = self->sent_body};
        if (next_step(self, &o).kind != GYRE_STEP_GIVE_UP) {
            gyre_proxy_start_attempt(self);
            return;
        }
        if (self->sent_body)
            gyre_proxy_finish_client_stream(self, &err);
        else
            respond_final_failure(self);
        return;
    }
    self->attempts++;
    self->walk.tries_on_cur++;
    self->tattempt = gyre_trace_add_attempt(call->trace, &self->req->pool, self->prov->name, self->cand->model,
                                                self->cand->model_len,
                                                self->prov->nkeys != 0 ? self->prov->key_ids[self->key_index]
                                                                       : NULL);
    self->mode = MODE_RELAY;
    self->status = 0;
    self->relay_saw_event = 0;
    self->attempt_started_ms = gyre_proxy_now_ms(self);
    self->attempt_live = 1;
    if (self->cand->state != NULL)
        self->cand->state->inflight++;
    const gyre_route_conf_t *r = call->route;
    if (r != NULL && r->attempt_timeout_ms != 0)
        gyre_timer_start(&self->worker->timers, &self->attempt_timer, r->attempt_timeout_ms, on_attempt_timeout);
    if (r != NULL && r->first_byte_timeout_ms != 0 && call->stream)
        gyre_timer_start(&self->worker->timers, &self->first_byte_timer, r->first_byte_timeout_ms,
                         on_first_byte_timeout);
    if (!self->response_started)
        gyre_timer_start(&self->worker->timers, &self->answer_timer, self->prov->timeout_ms, on_answer_timeout);
    gyre_http1client_start(&self->client, self->up, self->reqbufs, self->reqbufs[1].len != 0 ? 2 : 1,
                           h2o_memis(self->req->method.base, self->req->method.len, H2O_STRLIT("HEAD")));
}
