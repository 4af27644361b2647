/*
 * Attempts down the plan: a usable key, the request, a pooled or new
 * connection, the attempt's timers; how an attempt fails (before or after
 * the client saw bytes), whether the route falls back on that failure, and
 * which attempt comes next (a retry after a backoff, or the next target).
 */
#include <stdio.h>

#include "proxy/proxy_int.h"

/* A 429 without Retry-After keeps its key out of rotation this long. */
#define DEFAULT_COOLDOWN_MS 1000

static void stop_attempt_timers(gyre_proxy_t *self)
{
    if (h2o_timeout_is_linked(&self->io_entry))
        h2o_timeout_unlink(&self->io_entry);
    gyre_timer_stop(&self->attempt_timer);
    gyre_timer_stop(&self->first_byte_timer);
    gyre_timer_stop(&self->answer_timer);
}

void gyre_proxy_drop_conn(gyre_proxy_t *self, int reusable)
{
    stop_attempt_timers(self);
    if (self->connecting != NULL) {
        gyre_upconnect_cancel(self->connecting);
        self->connecting = NULL;
    }
    if (self->conn != NULL) {
        h2o_socket_read_stop(self->conn->sock);
        if (reusable)
            gyre_upstream_release(self->conn);
        else
            gyre_upconn_close(self->conn);
        self->conn = NULL;
    }
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

/* Records how the provider's key did, once per attempt. */
void gyre_proxy_record_outcome(gyre_proxy_t *self, int ok, int rate_limited)
{
    if (self->key_index < 0)
        return;
    uint64_t now = gyre_proxy_now_ms(self);
    if (rate_limited)
        gyre_keypool_cooldown(self->kp, self->key_index,
                              now + (self->retry_after_ms ? self->retry_after_ms : DEFAULT_COOLDOWN_MS), now);
    else
        gyre_keypool_record(self->kp, self->key_index, ok, now);
    self->key_index = -1; /* recorded: nothing to release */
}

static int route_falls_back_on(const gyre_route_conf_t *r, fail_class_t fc, int status)
{
    if (r == NULL)
        return 0;
    switch (fc) {
    case FAIL_CONNECT:
    case FAIL_CUT: return (r->fallback_on & GYRE_FALLBACK_CONNECT) != 0;
    case FAIL_TIMEOUT: return (r->fallback_on & GYRE_FALLBACK_TIMEOUT) != 0;
    case FAIL_STATUS:
        for (size_t i = 0; i < r->nfallback_statuses; i++)
            if (r->fallback_statuses[i] == status)
                return 1;
        return 0;
    }
    return 0;
}

/* Full jitter: a uniform wait in [0, min(max, base * 2^n)]. */
static uint64_t backoff_ms(gyre_proxy_t *self, unsigned n)
{
    const gyre_route_conf_t *r = self->call->route;
    uint64_t ceiling = r->backoff_ms;
    for (unsigned i = 0; i < n && ceiling < r->backoff_max_ms; i++)
        ceiling *= 2;
    if (ceiling > r->backoff_max_ms)
        ceiling = r->backoff_max_ms;
    return ceiling == 0 ? 0 : gyre_rand_next(&self->worker->rng) % (ceiling + 1);
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

/* The first candidate at or after `from` whose provider has a usable key, or call->ncands. */
static size_t next_usable(gyre_proxy_t *self, size_t from, uint64_t now)
{
    const gyre_call_t *call = self->call;
    while (from < call->ncands && !gyre_keypool_available(&self->worker->keypools[call->cands[from].provider], now))
        from++;
    return from;
}

/* The next attempt: a retry of the same target (after a backoff), or the
 * next target in the plan that has a usable key, at once.  Returns the wait
 * in ms, or -1 when nothing is left. */
static int64_t choose_next(gyre_proxy_t *self, int same_target_ok)
{
    const gyre_call_t *call = self->call;
    const gyre_route_conf_t *r = call->route;
    uint64_t now = gyre_proxy_now_ms(self);
    if (self->deadline_passed)
        return -1;
    if (same_target_ok && r != NULL && self->tries_on_cur <= r->retries && self->cur < call->ncands) {
        const gyre_candidate_t *c = &call->cands[self->cur];
        gyre_keypool_t *kp = &self->worker->keypools[c->provider];
        uint64_t wait = backoff_ms(self, self->tries_on_cur - 1);
        int later_usable = next_usable(self, self->cur + 1, now) < call->ncands;
        /* Another key of this target can take it now (a 429's Retry-After binds only its own key); else the
         * retry waits for the first key to come back, unless another target can take the call at once or
         * the wait is longer than the route allows (its deadline, else backoff_max_ms). */
        int retry = 1;
        if (!gyre_keypool_available(kp, now)) {
            uint64_t at = gyre_keypool_next_usable_ms(kp, now);
            if (at > now && at - now > wait)
                wait = at - now;
            retry = !later_usable;
        } else if (self->have_last_status && (self->last_status == 429 || self->last_status == 529)) {
            wait = 0; /* the rate limit was that key's: another is free now */
        }
        uint64_t limit = r->backoff_max_ms;
        if (gyre_timer_is_active(&self->deadline_timer))
            limit = self->deadline_timer.at_ms > now ? self->deadline_timer.at_ms - now : 0;
        if (retry && wait <= limit)
            return (int64_t)wait;
    }
    /* Move on down the plan, skipping targets with no usable key. */
    size_t i = next_usable(self, self->cur + 1, now);
    if (i == call->ncands)
        return -1;
    self->cur = i;
    self->tries_on_cur = 0;
    return 0;
}

static void on_backoff_done(gyre_timer_t *t)
{
    gyre_proxy_t *self = H2O_STRUCT_FROM_MEMBER(gyre_proxy_t, backoff_timer, t);
    gyre_proxy_start_attempt(self);
}

/* The attempt's error in the trace is the client's message; a failure at the provider's socket also says where
 * (the trace is the operator's, like the log: issue 10 keeps addresses out of what clients read, not out of these). */
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
    self->tattempt->error = gyre_tstr_dup(&self->req->pool, line.base ? line.base : "", line.len);
    gyre_buf_dispose(&line);
}

/* An attempt failed before anything reached the client: fall back, or answer. */
void gyre_proxy_attempt_failed(gyre_proxy_t *self, fail_class_t fc, const gyre_api_error_t *err)
{
    int status = fc == FAIL_STATUS ? self->status : 0;
    gyre_proxy_drop_conn(self, 0);
    /* The breaker hears of provider failures; a 4xx other than 429 is the client's. */
    if (fc == FAIL_STATUS && (status == 429 || status == 529))
        gyre_proxy_record_outcome(self, 0, 1);
    else
        gyre_proxy_record_outcome(self, fc == FAIL_STATUS && status < 500, 0);
    self->last_fail = fc;
    self->have_last_status = fc == FAIL_STATUS;
    if (fc == FAIL_STATUS) {
        /* An error body may echo the request head: the provider's key goes no further than here, not to the
         * client (relayed or in gyre's own error), not to the trace, not to the attempt's error. */
        gyre_keys_scrub(self->prov, &self->body);
        gyre_buf_reset(&self->last_body);
        /* Markers longer than the keys they replace may take the body past ERROR_BODY_MAX: kept cut there. */
        gyre_buf_append(&self->last_body, self->body.base ? self->body.base : "",
                        self->body.len < ERROR_BODY_MAX ? self->body.len : ERROR_BODY_MAX);
        self->last_status = status;
        self->last_provider = self->prov;
        self->last_passthrough = self->passthrough;
    } else if (err != NULL) {
        self->last_err = *err;
        gyre_proxy_log_error(self, err);
    }
    if (self->tattempt != NULL && err != NULL) {
        set_attempt_error(self, err);
    } else if (self->tattempt != NULL && fc == FAIL_STATUS) {
        /* The provider's own words, as its dialect reads them from the error body. */
        gyre_buf_t msg;
        gyre_buf_init(&msg, 4096);
        self->dialect->error_message(self->body.base ? self->body.base : "", self->body.len, &msg);
        gyre_buf_t line;
        gyre_buf_init(&line, 8192);
        gyre_buf_appendf(&line, "provider '%s' answered %d: %.512s", self->prov->name, status, msg.base ? msg.base : "");
        self->tattempt->error = gyre_tstr_dup(&self->req->pool, line.base, line.len);
        gyre_buf_dispose(&line);
        gyre_buf_dispose(&msg);
    }
    gyre_proxy_end_attempt(self);
    if (self->client_gone)
        return;
    int64_t wait = route_falls_back_on(self->call->route, fc, status) ? choose_next(self, 1) : -1;
    if (wait < 0) {
        respond_final_failure(self);
        return;
    }
    gyre_timer_start(&self->worker->timers, &self->backoff_timer, (uint64_t)wait, on_backoff_done);
}

/* The provider failed after the client had part of the stream. */
void gyre_proxy_stream_failed(gyre_proxy_t *self, fail_class_t fc, const gyre_api_error_t *err)
{
    gyre_proxy_drop_conn(self, 0);
    gyre_proxy_record_outcome(self, 0, 0);
    if (self->tattempt != NULL && err != NULL)
        set_attempt_error(self, err);
    gyre_proxy_end_attempt(self);
    if (self->client_gone)
        return;
    const gyre_route_conf_t *r = self->call->route;
    if (r != NULL && r->midstream_resume && self->mode == MODE_STREAM && self->acc_inited && self->acc.ntools == 0 &&
        route_falls_back_on(r, fc == FAIL_STATUS ? FAIL_CUT : fc, 0)) {
        int64_t wait = choose_next(self, 1);
        if (wait >= 0) {
            /* The seam, as an SSE comment the SDKs skip: which attempt took over, after how much. */
            const gyre_candidate_t *next = &self->call->cands[self->cur];
            gyre_buf_t b;
            gyre_buf_init(&b, 4096);
            gyre_buf_appendf(&b, ": gyre-resume attempt=%u provider=%s model=%.*s after_chars=%zu reason=\"%s\"\n\n",
                             self->attempts + 1, gyre_proxy_config(self)->providers[next->provider].name,
                             (int)next->model_len, next->model, self->acc.content.len,
                             err != NULL ? err->message : "cut");
            gyre_proxy_push_out(self, b.base, b.len);
            gyre_buf_dispose(&b);
            if (err != NULL)
                gyre_proxy_log_error(self, err);
            if (self->sending.bytes_inflight == 0)
                gyre_proxy_do_send(self);
            self->resuming = 1;
            self->resume_saw_role = 0;
            gyre_timer_start(&self->worker->timers, &self->backoff_timer, (uint64_t)wait, on_backoff_done);
            return;
        }
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
void gyre_proxy_fail(gyre_proxy_t *self, fail_class_t fc, const gyre_api_error_t *err)
{
    if (self->sent_body || self->response_started)
        gyre_proxy_stream_failed(self, fc, err);
    else
        gyre_proxy_attempt_failed(self, fc, err);
}

void gyre_proxy_fail_upstream(gyre_proxy_t *self, const char *stage, const char *errstr)
{
    const gyre_provider_conf_t *p = self->prov;
    gyre_api_error_t err;
    int timeout = strstr(errstr, "timeout") != NULL;
    /* h2o reports a failed handshake in OpenSSL's words ("self-signed
     * certificate", "hostname mismatch", ...); what is not one of its socket
     * errors, while connecting to an https provider, is TLS. */
    static const char *const socket_errors[] = {"connection failure", "socket create error", "I/O error",
                                                "socket closed by peer", "out of memory"};
    int tls = 0;
    if (p->is_https && strcmp(stage, "connect") == 0 && !timeout) {
        tls = 1;
        for (size_t i = 0; i < sizeof(socket_errors) / sizeof(socket_errors[0]); i++)
            if (strcmp(errstr, socket_errors[i]) == 0)
                tls = 0;
    }
    /* The client is told which provider failed and how, never where it is: the address goes to the log and the
     * trace (set_attempt_error). */
    h2o_iovec_t id = gyre_request_id(self->worker, self->req);
    gyre_logf("gyre: request %.*s: provider '%s' at %s:%u: %s: %s\n", (int)id.len, id.base, p->name, p->host, p->port,
              stage, errstr);
    if (timeout)
        gyre_api_error_set(&err, 504, "upstream_error", "upstream_timeout", NULL,
                           "provider '%s' did not answer in time (%s, limit %llu ms)", p->name, errstr,
                           (unsigned long long)p->timeout_ms);
    else if (tls)
        gyre_api_error_set(&err, 502, "upstream_error", "upstream_tls_error", NULL, "provider '%s': TLS failed: %s",
                           p->name, errstr);
    else if (strcmp(stage, "connect") == 0)
        gyre_api_error_set(&err, 502, "upstream_error", "upstream_unreachable", NULL,
                           "provider '%s' is unreachable: %s", p->name, errstr);
    else if (strcmp(stage, "body") == 0)
        gyre_api_error_set(&err, 502, "upstream_error", "stream_interrupted", NULL,
                           "provider '%s' ended the answer before it was complete (%s)", p->name, errstr);
    else
        gyre_api_error_set(&err, 502, "upstream_error", "upstream_error", NULL,
                           "provider '%s' failed before answering: %s", p->name, errstr);
    self->fail_at_address = 1;
    gyre_proxy_fail(self, timeout ? FAIL_TIMEOUT : strcmp(stage, "body") == 0 ? FAIL_CUT : FAIL_CONNECT, &err);
}

void gyre_proxy_on_io_timeout(h2o_timeout_entry_t *entry)
{
    gyre_proxy_t *self = H2O_STRUCT_FROM_MEMBER(gyre_proxy_t, io_entry, entry);
    if (!self->head_done)
        gyre_proxy_fail_upstream(self, "head", "I/O timeout");
    else
        gyre_proxy_fail_upstream(self, "body", "I/O timeout");
}

static void on_attempt_timeout(gyre_timer_t *t)
{
    gyre_proxy_t *self = H2O_STRUCT_FROM_MEMBER(gyre_proxy_t, attempt_timer, t);
    gyre_api_error_t err;
    gyre_api_error_set(&err, 504, "upstream_error", "upstream_timeout", NULL,
                       "provider '%s' did not complete the attempt in time (attempt_timeout_ms %llu)",
                       self->prov->name, (unsigned long long)self->call->route->attempt_timeout_ms);
    gyre_proxy_fail(self, FAIL_TIMEOUT, &err);
}

static void on_answer_timeout(gyre_timer_t *t)
{
    gyre_proxy_t *self = H2O_STRUCT_FROM_MEMBER(gyre_proxy_t, answer_timer, t);
    if (self->conn == NULL || (!self->head_done && self->conn->sock->input->size == 0)) {
        /* Nothing came at all: the idle bound's own words, as it would have said at the same moment. */
        gyre_proxy_fail_upstream(self, self->conn == NULL ? "connect" : "head", "I/O timeout");
        return;
    }
    /* Bytes came, but never an answer: a provider that trickles its head or its body. */
    gyre_api_error_t err;
    gyre_api_error_set(&err, 504, "upstream_error", "upstream_timeout", NULL,
                       "provider '%s' did not complete its answer in time (timeout_ms %llu)", self->prov->name,
                       (unsigned long long)self->prov->timeout_ms);
    gyre_proxy_fail(self, FAIL_TIMEOUT, &err);
}

static void on_first_byte_timeout(gyre_timer_t *t)
{
    gyre_proxy_t *self = H2O_STRUCT_FROM_MEMBER(gyre_proxy_t, first_byte_timer, t);
    gyre_api_error_t err;
    gyre_api_error_set(&err, 504, "upstream_error", "first_byte_timeout", NULL,
                       "provider '%s' sent no stream event in time (first_byte_timeout_ms %llu)", self->prov->name,
                       (unsigned long long)self->call->route->first_byte_timeout_ms);
    gyre_proxy_fail(self, FAIL_TIMEOUT, &err);
}

void gyre_proxy_on_deadline(gyre_timer_t *t)
{
    gyre_proxy_t *self = H2O_STRUCT_FROM_MEMBER(gyre_proxy_t, deadline_timer, t);
    self->deadline_passed = 1;
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
    gyre_proxy_fail(self, FAIL_TIMEOUT, &err);
}

static void on_write_done(h2o_socket_t *sock, const char *err)
{
    /* Reading starts with the write, and a connection that fails a write
     * fails its reads too: the read path handles it. */
    (void)sock;
    (void)err;
}

static void send_request(gyre_proxy_t *self)
{
    h2o_socket_t *sock = self->conn->sock;
    sock->data = self;
    self->conn->requests++;
    h2o_socket_write(sock, self->reqbufs, self->reqbufs[1].len != 0 ? 2 : 1, on_write_done);
    h2o_socket_read_start(sock, gyre_proxy_on_read);
    h2o_timeout_link(self->up->loop, &self->up->io_timeout, &self->io_entry);
}

void gyre_proxy_on_connected(gyre_upconn_t *conn, const char *err, void *data)
{
    gyre_proxy_t *self = data;
    self->connecting = NULL;
    if (err != NULL) {
        gyre_proxy_fail_upstream(self, "connect", err);
        return;
    }
    self->conn = conn;
    send_request(self);
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
        self->cand = &call->cands[self->cur];
        self->prov = &cfg->providers[self->cand->provider];
        self->dialect = gyre_dialect_for(self->prov->kind);
        self->up = &self->worker->upstreams[self->cand->provider];
        self->kp = &self->worker->keypools[self->cand->provider];
        uint64_t now = gyre_proxy_now_ms(self);
        /* A retry of the same target avoids the key that just failed, while another is usable. */
        int exclude = self->tries_on_cur > 0 && self->last_key_cur == self->cur ? self->last_key : -1;
        self->key_index = gyre_keypool_pick(self->kp, now, call->affinity, exclude);
        if (self->key_index >= 0)
            break;
        /* Every key of this target is cooling down or its breaker is open: on to the next, at once. */
        gyre_api_error_set(&self->last_err, 503, "upstream_error", "target_unavailable", NULL,
                           "provider '%s' is unavailable (circuit open or rate-limited); retry in %llu ms",
                           self->prov->name, (unsigned long long)(gyre_keypool_next_usable_ms(self->kp, now) - now));
        self->have_last_status = 0;
        size_t i = next_usable(self, self->cur + 1, now);
        if (i >= call->ncands) {
            if (self->sent_body) {
                gyre_proxy_finish_client_stream(self, &self->last_err);
            } else {
                /* The soonest any target of the plan can be tried again. */
                uint64_t soonest = 0;
                for (size_t j = 0; j < call->ncands; j++) {
                    uint64_t at = gyre_keypool_next_usable_ms(&self->worker->keypools[call->cands[j].provider], now);
                    if (at > now && (soonest == 0 || at < soonest))
                        soonest = at;
                }
                self->unavailable_retry_s = soonest > now ? (soonest - now + 999) / 1000 : 1;
                respond_final_failure(self);
            }
            return;
        }
        self->cur = i;
        self->tries_on_cur = 0;
    }
    self->last_key = self->key_index;
    self->last_key_cur = self->cur;
    const char *key = self->prov->nkeys != 0 ? self->prov->keys[self->key_index] : NULL;
    if (gyre_proxy_build_request(self, key, &err) != 0) {
        /* This target cannot take the call (an endpoint its API lacks, a request it cannot express). */
        gyre_keypool_release(self->kp, self->key_index);
        self->key_index = -1;
        self->last_err = err;
        self->have_last_status = 0;
        if (err.status == 400 && self->cur + 1 < call->ncands) {
            self->cur++;
            self->tries_on_cur = 0;
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
    self->tries_on_cur++;
    self->started_any = 1;
    self->tattempt = gyre_trace_add_attempt(call->trace, &self->req->pool, self->prov->name, self->cand->model,
                                                self->cand->model_len,
                                                self->prov->nkeys != 0 ? self->prov->key_ids[self->key_index]
                                                                       : NULL);
    self->head_done = 0;
    self->head_scanned = 0;
    self->chunk = (gyre_http1_chunked_t){0};
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
    if ((self->conn = gyre_upstream_take_idle(self->up)) != NULL) {
        self->reused = 1;
        send_request(self);
    } else {
        self->reused = 0;
        self->connecting = gyre_upstream_connect(self->up, gyre_proxy_on_connected, self);
    }
}
