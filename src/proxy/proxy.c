/*
 * Attempts, fallbacks and the answer relay (see proxy.h).
 *
 * One gyre_proxy_t per client request, in its pool.  An attempt goes
 * through: pick the next usable target and key → build the provider's
 * request → connect (or take a pooled connection) → read the head → read
 * the body in one of three modes:
 *
 *   RELAY   bytes go to the client as they come (a stream in the client's
 *           own dialect, and pass-through endpoints), watched for a proper end;
 *   BUFFER  the whole body is read first (non-streaming answers, and every
 *           error answer): a cut or failed answer can still fall back, and a
 *           translated one is translated whole;
 *   STREAM  a stream re-made event by event: from the provider's dialect
 *           into OpenAI chunks, then, for an Anthropic client, into
 *           Anthropic events; on a resumed attempt, stitched onto the first.
 *
 * Nothing reaches the client until an answer is known to be good (a stream:
 * its first event), which is what makes fallback invisible to it.
 */
#include "proxy/proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/log.h"
#include "common/timer.h"
#include "common/wire.h"
#include "dialect/anthropic.h"
#include "dialect/dialect.h"
#include "dialect/openai.h"
#include "dialect/openai_stream.h"
#include "proxy/compose.h"
#include "proxy/http1.h"
#include "common/sse.h"
#include "proxy/upstream.h"
#include "route/keys.h"
#include "server/respond.h"
#include "trace/record.h"

/* Body bytes buffered for a slow client before gyre stops reading from the
 * provider (TCP then slows the provider down): the relay's memory bound. */
#define RELAY_HIGH_WATER (1024 * 1024)
/* An SSE line or event from a provider longer than this ends the attempt: a
 * 502 when no byte has reached the client (the route may fall back), else an
 * SSE error event and the end of the stream; the connection is closed.  Real
 * events are a few KB (a whole Gemini function call is one event); a line
 * that never ends would otherwise be read for ever. */
#define SSE_EVENT_MAX (1024 * 1024)
/* The most a translation may hold: the largest max_response_bytes allowed. */
#define BUFFER_MAX (1024 * 1024 * 1024)
/* An error answer (status 300 or more) longer than this ends the attempt with
 * a 502 naming the provider, and the connection is closed: no provider's real
 * error comes near it, and one whose body never ends would otherwise be read
 * for ever. */
#define ERROR_BODY_MAX (1024 * 1024)
/* h2o's HTTP/1 connection reads nothing from its client until the answer is
 * written, so gyre watches the client's socket itself for its close (see
 * on_watch_start); an answer quicker than this never pays for the watch. */
#define CLIENT_WATCH_AFTER_MS 50
/* Once the client sent bytes of its own (a pipelined request, a TLS alert)
 * the socket stays readable: the watch then polls for the close this often. */
#define CLIENT_POLL_MS 1000
/* What a stream accumulates for a resume or the cache. */
#define ACCUM_MAX (8 * 1024 * 1024)
/* A 429 without Retry-After keeps its key out of rotation this long. */
#define DEFAULT_COOLDOWN_MS 1000

typedef enum body_mode { MODE_RELAY = 0, MODE_BUFFER, MODE_STREAM } body_mode_t;

/* Why an attempt failed, for the route's fallback_on. */
typedef enum fail_class { FAIL_CONNECT = 1, FAIL_TIMEOUT, FAIL_STATUS, FAIL_CUT } fail_class_t;

typedef struct gyre_proxy {
    h2o_generator_t super;
    h2o_req_t *req;
    gyre_worker_t *worker;
    gyre_call_t *call;
    char chat_id[48]; /* "chatcmpl-..." for answers gyre translates */
    long long created;
    /* The walk down the plan. */
    size_t cur;            /* the candidate being tried */
    unsigned tries_on_cur; /* attempts made on it */
    unsigned attempts;     /* requests written to providers, all targets together */
    int started_any;       /* an attempt was made */
    gyre_timer_t deadline_timer, backoff_timer, attempt_timer, first_byte_timer;
    /* The answer until its first byte goes to the client: the provider's timeout_ms in all (the idle bound,
     * io_entry, alone would let a provider that trickles a byte at a time hold the attempt for ever). */
    gyre_timer_t answer_timer;
    /* The client's socket, watched for its close while the answer is pending (HTTP/1 only; NULL otherwise). */
    h2o_socket_t *client_watch;
    gyre_timer_t client_timer;
    int answered;        /* gyre gave h2o its final answer (an error, or a whole body) */
    size_t head_scanned; /* bytes of the response head already searched for a line end */
    int deadline_passed;
    /* The last failure, answered when nothing is left to try. */
    fail_class_t last_fail;
    gyre_api_error_t last_err;
    int have_last_status; /* the last failure was a provider's error answer, kept in last_* below */
    int last_status;
    gyre_buf_t last_body;
    const gyre_provider_conf_t *last_provider;
    int last_passthrough;
    /* The current attempt. */
    const gyre_candidate_t *cand;
    const gyre_provider_conf_t *prov;
    const gyre_dialect_t *dialect;
    gyre_upstream_t *up;
    gyre_keypool_t *kp;
    int key_index;          /* -1: none taken */
    int last_key;           /* the key of the latest attempt... */
    size_t last_key_cur;    /* ...and its place in the plan */
    int relay_saw_event;    /* RELAY: a stream event (not just a comment) has come */
    int attempt_live;       /* counted in the target's in-flight figure */
    int passthrough;        /* the provider speaks the client's dialect and the body went as the client wrote it */
    cJSON *pivot;           /* the OpenAI-shaped request for a translated attempt */
    gyre_chat_call_t chat;  /* what the dialect was told */
    uint64_t attempt_started_ms;
    gyre_upconnect_t *connecting;
    gyre_upconn_t *conn;
    int reused;
    gyre_buf_t uphead, upbody;
    h2o_iovec_t reqbufs[2];
    h2o_timeout_entry_t io_entry;
    int head_done;
    int keep_alive;
    int chunked;
    gyre_http1_chunked_t chunk;
    size_t body_left; /* content-length still to come; SIZE_MAX: until close */
    int status;
    uint64_t retry_after_ms;
    body_mode_t mode;
    gyre_buf_t body; /* BUFFER: the answer so far */
    gyre_dialect_stream_t *dstream;
    /* The relay to the client. */
    int response_started;
    int sent_body; /* any body byte handed to the client */
    h2o_buffer_t *recv;
    h2o_doublebuffer_t sending;
    int upstream_done;
    int had_body_error;
    int client_gone;
    int is_sse;
    int sse_done;
    int sse_failed;
    int sse_inited;
    gyre_sse_parser_t sse; /* RELAY: watches for the stream's proper end */
    /* STREAM: the OpenAI-shaped events. */
    int pivot_inited;
    gyre_sse_parser_t pivot_sse;
    int acc_inited;
    gyre_openai_accum_t acc;
    gyre_anthropic_encoder_t *enc;
    uint64_t unavailable_retry_s; /* every target is resting: Retry-After for gyre's 503 */
    size_t own_headers;    /* res.headers[0 .. own_headers) are gyre's own (x-request-id) */
    h2o_iovec_t whole;     /* a whole answer, sent in one piece (deliver_whole) */
    h2o_headers_t err_headers; /* the last error answer's headers, relayed with it */
    int resuming;        /* this attempt continues a cut stream */
    int resume_saw_role; /* ...and its role chunk was dropped */
    gyre_buf_t resume_ws; /* whitespace trimmed off the end of the prefill, not yet seen again */
    gyre_trace_attempt_t *tattempt; /* the current attempt's line in the trace, or NULL */
    int fail_at_address;            /* the failure being recorded was the provider's socket: the trace names where */
    int relay_acc;        /* RELAY of a chat stream: the accumulator reads its events for the trace */
    int relay_decode;     /* RELAY of an Anthropic stream: its events are also decoded into OpenAI chunks for the
                           * trace (tokens, finish reason, the reassembled answer) */
    int usage_asked;      /* gyre added stream_options.include_usage to a pass-through stream for the trace:
                           * the usage chunk and the chunks' "usage":null are kept from the client */
    h2o_iovec_t trace_response; /* a whole answer as the trace keeps it (OpenAI's shape when translated) */
    gyre_buf_t scratch;
} gyre_proxy_t;

static void start_attempt(gyre_proxy_t *self);
static void on_read(h2o_socket_t *sock, const char *err);
static void on_connected(gyre_upconn_t *conn, const char *err, void *data);

/* ---- small helpers ---- */


static uint64_t now_ms(gyre_proxy_t *self)
{
    return h2o_now(self->worker->ctx.loop);
}

static const gyre_config_t *config_of(gyre_proxy_t *self)
{
    return self->worker->server->config;
}

/* ---- the request ---- */

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

/* The body with its model value replaced: a splice when its bytes were located, else a rebuild. */
static int splice_model(gyre_proxy_t *self, const char *model, size_t model_len, gyre_buf_t *out)
{
    const gyre_call_t *call = self->call;
    const char *body = call->body.base;
    size_t len = call->body.len;
    if (call->model_end > call->model_start) {
        gyre_buf_reserve(out, len + 6 * model_len + 2);
        gyre_buf_append(out, body, call->model_start);
        gyre_buf_append_json_string(out, model, model_len);
        return gyre_buf_append(out, body + call->model_end, len - call->model_end);
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
        int r = gyre_buf_append(&out, b->base + i + 1, b->len - i - 1);
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

/* The OpenAI-shaped request of a translated attempt (the client's, or its
 * Anthropic request translated), with the partial answer appended as an
 * assistant message when the attempt resumes a cut stream. */
static cJSON *build_pivot(gyre_proxy_t *self, gyre_api_error_t *err)
{
    const gyre_call_t *call = self->call;
    cJSON *pivot;
    if (call->client == GYRE_CLIENT_ANTHROPIC) {
        cJSON *a = cJSON_ParseWithLength(call->body.base, call->body.len);
        if (a == NULL) {
            gyre_api_error_set(err, 400, "invalid_request_error", "invalid_json", NULL, "the body is not JSON");
            return NULL;
        }
        pivot = gyre_anthropic_request_to_openai(a, err);
        cJSON_Delete(a);
        if (pivot == NULL)
            return NULL;
    } else {
        pivot = cJSON_ParseWithLength(call->body.base, call->body.len);
        if (pivot == NULL) {
            gyre_api_error_set(err, 400, "invalid_request_error", "invalid_json", NULL, "the body is not JSON");
            return NULL;
        }
    }
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
        gyre_buf_append(&self->resume_ws, self->acc.content.base + n, self->acc.content.len - n);
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
static int build_request(gyre_proxy_t *self, const char *key, gyre_api_error_t *err)
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
        int same_dialect = call->client == GYRE_CLIENT_OPENAI ? self->dialect->speaks_openai
                                                              : self->prov->kind == GYRE_PROVIDER_ANTHROPIC;
        self->passthrough = same_dialect && !self->resuming;
        if (self->passthrough) {
            in.endpoint = call->client == GYRE_CLIENT_OPENAI ? GYRE_COMPOSE_CHAT : GYRE_COMPOSE_MESSAGES;
            if (splice_model(self, c->model, c->model_len, &self->upbody) != 0) {
                gyre_api_error_set(err, 500, "server_error", "rewrite_failed", "model",
                                   "gyre could not rewrite 'model' for provider '%s'", self->prov->name);
                rc = -1;
                goto out;
            }
            if (call->client == GYRE_CLIENT_OPENAI && call->stream && !call->include_usage &&
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

/* ---- answer headers ---- */

/* Which route, provider and model answered, and after how many attempts. */
static void add_gyre_headers(gyre_proxy_t *self)
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

static void log_error(gyre_proxy_t *self, const gyre_api_error_t *err)
{
    h2o_iovec_t id = gyre_request_id(self->worker, self->req);
    gyre_logf("gyre: request %.*s: %s\n", (int)id.len, id.base, err->message);
}

/* An error answer in the client's dialect. */
static void respond_error(gyre_proxy_t *self, const gyre_api_error_t *err)
{
    if (self->call->client == GYRE_CLIENT_ANTHROPIC)
        gyre_respond_anthropic_error(self->req, err);
    else
        gyre_respond_error(self->req, err);
}

/* ---- the relay to the client ---- */

static void do_send(gyre_proxy_t *self)
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

static void push_out(gyre_proxy_t *self, const char *bytes, size_t len)
{
    if (len == 0)
        return;
    h2o_iovec_t dst = h2o_buffer_reserve(&self->recv, len);
    memcpy(dst.base, bytes, len);
    self->recv->size += len;
    self->sent_body = 1;
}

static void start_client_response(gyre_proxy_t *self)
{
    if (self->response_started || self->client_gone)
        return;
    self->response_started = 1;
    /* From the first byte on, the client decides how long it waits (it may leave, which cancels the attempt);
     * the idle bound between reads and the route's deadline still hold. */
    gyre_timer_stop(&self->answer_timer);
    if (self->call->stream)
        self->call->trace->ttft_us = gyre_trace_now_us() - self->call->trace->started_us;
    add_gyre_headers(self);
    h2o_start_response(self->req, &self->super);
}

static void on_proceed(h2o_generator_t *generator, h2o_req_t *req)
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
    do_send(self);
    if (self->conn != NULL && !h2o_socket_is_reading(self->conn->sock) && self->recv->size < RELAY_HIGH_WATER) {
        h2o_socket_read_start(self->conn->sock, on_read);
        h2o_timeout_link(self->up->loop, &self->up->io_timeout, &self->io_entry);
    }
}

/* The last words of a stream that failed after it began: an SSE error event
 * in the client's dialect, so its SDK raises instead of seeing a clean end. */
static void append_stream_error(gyre_proxy_t *self, const gyre_api_error_t *err)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 8192);
    if (self->call->client == GYRE_CLIENT_ANTHROPIC) {
        gyre_buf_appends(&b, "\n\n");
        gyre_anthropic_error_event(err, &b);
    } else {
        gyre_buf_appends(&b, "\n\ndata: ");
        gyre_api_error_to_json(err, &b);
        gyre_buf_appends(&b, "\n\n");
    }
    push_out(self, b.base, b.len);
    gyre_buf_dispose(&b);
    log_error(self, err);
}

/* ---- the attempt's connection and timers ---- */

static void stop_attempt_timers(gyre_proxy_t *self)
{
    if (h2o_timeout_is_linked(&self->io_entry))
        h2o_timeout_unlink(&self->io_entry);
    gyre_timer_stop(&self->attempt_timer);
    gyre_timer_stop(&self->first_byte_timer);
    gyre_timer_stop(&self->answer_timer);
}

static void drop_conn(gyre_proxy_t *self, int reusable)
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
static void end_attempt(gyre_proxy_t *self)
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
static void record_outcome(gyre_proxy_t *self, int ok, int rate_limited)
{
    if (self->key_index < 0)
        return;
    uint64_t now = now_ms(self);
    if (rate_limited)
        gyre_keypool_cooldown(self->kp, self->key_index,
                              now + (self->retry_after_ms ? self->retry_after_ms : DEFAULT_COOLDOWN_MS), now);
    else
        gyre_keypool_record(self->kp, self->key_index, ok, now);
    self->key_index = -1; /* recorded: nothing to release */
}

/* ---- finishing ---- */

/* The answer is complete on the provider's side (`why` NULL) or was cut. */
static void finish_client_stream(gyre_proxy_t *self, const gyre_api_error_t *err)
{
    self->upstream_done = 1;
    if (err != NULL) {
        self->had_body_error = 1;
        /* A stream says why in an event; any other body can only end uncleanly. */
        if (self->is_sse || self->mode == MODE_STREAM)
            append_stream_error(self, err);
        else
            log_error(self, err);
    }
    gyre_timer_stop(&self->deadline_timer);
    if (!self->response_started)
        start_client_response(self);
    if (self->sending.bytes_inflight == 0)
        do_send(self);
}

static void store_in_cache(gyre_proxy_t *self, const char *completion, size_t len)
{
    const gyre_call_t *call = self->call;
    if (call->cache == NULL)
        return;
    /* An entry is "provider\tmodel\n" then the completion, so a hit can say who answered first. */
    gyre_buf_t entry;
    gyre_buf_init(&entry, (size_t)BUFFER_MAX + 4096);
    gyre_buf_appendf(&entry, "%s\t%.*s\n", self->prov->name, (int)self->cand->model_len, self->cand->model);
    if (gyre_buf_append(&entry, completion, len) == 0)
        gyre_cache_put(call->cache, call->cache_key.base, call->cache_key.len, entry.base, entry.len, now_ms(self));
    gyre_buf_dispose(&entry);
}

/* Sends a whole answer (already in the client's dialect) with the provider's status. */
static void deliver_whole(gyre_proxy_t *self, const char *body, size_t len, const char *content_type)
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
    add_gyre_headers(self);
    h2o_start_response(req, &self->super);
    h2o_send(req, &self->whole, 1, H2O_SEND_STATE_FINAL);
}

/* ---- failures ---- */

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
            deliver_whole(self, self->last_body.base ? self->last_body.base : "", self->last_body.len, NULL);
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
        add_gyre_headers(self);
        respond_error(self, &err);
        return;
    }
    add_gyre_headers(self);
    log_error(self, &self->last_err);
    respond_error(self, &self->last_err);
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
    uint64_t now = now_ms(self);
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
    start_attempt(self);
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
static void attempt_failed(gyre_proxy_t *self, fail_class_t fc, const gyre_api_error_t *err)
{
    int status = fc == FAIL_STATUS ? self->status : 0;
    drop_conn(self, 0);
    /* The breaker hears of provider failures; a 4xx other than 429 is the client's. */
    if (fc == FAIL_STATUS && (status == 429 || status == 529))
        record_outcome(self, 0, 1);
    else
        record_outcome(self, fc == FAIL_STATUS && status < 500, 0);
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
        log_error(self, err);
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
    end_attempt(self);
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
static void stream_failed(gyre_proxy_t *self, fail_class_t fc, const gyre_api_error_t *err)
{
    drop_conn(self, 0);
    record_outcome(self, 0, 0);
    if (self->tattempt != NULL && err != NULL)
        set_attempt_error(self, err);
    end_attempt(self);
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
                             self->attempts + 1, config_of(self)->providers[next->provider].name,
                             (int)next->model_len, next->model, self->acc.content.len,
                             err != NULL ? err->message : "cut");
            push_out(self, b.base, b.len);
            gyre_buf_dispose(&b);
            if (err != NULL)
                log_error(self, err);
            if (self->sending.bytes_inflight == 0)
                do_send(self);
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
    finish_client_stream(self, err);
}

/* Any failure of the current attempt: before or after the client saw bytes. */
static void fail(gyre_proxy_t *self, fail_class_t fc, const gyre_api_error_t *err)
{
    if (self->sent_body || self->response_started)
        stream_failed(self, fc, err);
    else
        attempt_failed(self, fc, err);
}

static void fail_upstream(gyre_proxy_t *self, const char *stage, const char *errstr)
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
    fail(self, timeout ? FAIL_TIMEOUT : strcmp(stage, "body") == 0 ? FAIL_CUT : FAIL_CONNECT, &err);
}

/* ---- the answer's body ---- */

/* A stream line or event past SSE_EVENT_MAX: the attempt ends, whatever the stream's mode.  The parser would
 * refuse every later byte of the line anyway, so reading on is only work; the connection is closed (fail). */
static void sse_too_large(gyre_proxy_t *self)
{
    gyre_api_error_t err;
    self->sse_failed = 1;
    gyre_api_error_set(&err, 502, "upstream_error", "stream_event_too_large", NULL,
                       "provider '%s' sent a stream line or event longer than %d bytes; gyre stopped reading it",
                       self->prov->name, SSE_EVENT_MAX);
    drop_conn(self, 0);
    fail(self, FAIL_CUT, &err);
}

/* RELAY: watching a pass-through stream for its proper end. */
static void on_relay_sse_event(void *ctx, const char *event, size_t elen, const char *data, size_t dlen)
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
        push_out(self, out.base, out.len);
        gyre_buf_dispose(&out);
    } else {
        push_out(self, s->base, s->len);
    }
}

/* RELAY of an Anthropic stream: its events decoded into OpenAI chunks, for the trace only. */
static void on_trace_sse_event(void *ctx, const char *event, size_t elen, const char *data, size_t dlen)
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
static void restart_sse(gyre_sse_parser_t *p, int *inited, gyre_sse_event_cb cb, void *ctx)
{
    if (*inited)
        gyre_sse_dispose(p);
    gyre_sse_init(p, SSE_EVENT_MAX, cb, ctx);
    *inited = 1;
}

/* The accumulator lives across attempts: a resumed stream continues what the first one started. */
static void ensure_accum(gyre_proxy_t *self)
{
    if (!self->acc_inited) {
        self->acc_inited = 1;
        gyre_openai_accum_init(&self->acc, ACCUM_MAX);
    }
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

/* A pass-through answer for the trace: an Anthropic message is read in OpenAI's shape, as a translated answer
 * and a stream's reassembly are, so that every trace's response reads the same way. */
static void keep_passthrough_response(gyre_proxy_t *self, const char *p, size_t len)
{
    if (self->call->client != GYRE_CLIENT_ANTHROPIC || self->call->endpoint != GYRE_OPENAI_CHAT) {
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

static void start_stream_mode(gyre_proxy_t *self)
{
    self->mode = MODE_STREAM;
    if (!self->dialect->speaks_openai)
        self->dstream = self->dialect->stream_create(&self->chat);
    restart_sse(&self->pivot_sse, &self->pivot_inited, on_pivot_sse_event, self);
    ensure_accum(self);
    if (self->call->client == GYRE_CLIENT_ANTHROPIC && self->enc == NULL)
        self->enc = gyre_anthropic_encoder_create(NULL); /* the model the chunks name, as a whole answer has it */
}

/* Whether the stream that reached the client has ended as its protocol says. */
static int stream_complete(gyre_proxy_t *self)
{
    if (self->mode == MODE_RELAY)
        return self->sse_done;
    if (self->enc != NULL)
        return gyre_anthropic_encoder_complete(self->enc);
    return self->acc.done;
}

static void stream_bytes(gyre_proxy_t *self, const char *bytes, size_t len)
{
    if (self->dstream != NULL) {
        gyre_buf_t out;
        gyre_api_error_t err;
        gyre_buf_init(&out, SSE_EVENT_MAX * 2);
        int r = self->dialect->stream_feed(self->dstream, bytes, len, &out, &err);
        int too_large = out.len != 0 && gyre_sse_feed(&self->pivot_sse, out.base, out.len) != 0;
        gyre_buf_dispose(&out);
        if (too_large) {
            sse_too_large(self);
            return;
        }
        if (r != 0) {
            if (err.status == 429 || err.status == 529)
                self->status = err.status;
            drop_conn(self, 0);
            fail(self, self->sent_body ? FAIL_CUT : FAIL_STATUS, &err);
            return;
        }
    } else if (gyre_sse_feed(&self->pivot_sse, bytes, len) != 0) {
        sse_too_large(self);
    }
}

/* RELAY of an Anthropic stream: the client gets the provider's bytes as they are; the trace reads them decoded.
 * A decoding error only ends the decoding: the stream is the client's either way. */
static void decode_for_trace(gyre_proxy_t *self, const char *bytes, size_t len)
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

/* Body bytes of the current attempt, in its mode.  Returns -1 when the attempt is over (failed). */
static int on_body_bytes(gyre_proxy_t *self, const char *bytes, size_t len)
{
    if (len == 0)
        return 0;
    switch (self->mode) {
    case MODE_RELAY:
        if (self->is_sse && gyre_sse_feed(&self->sse, bytes, len) != 0) {
            sse_too_large(self);
            return -1;
        }
        if (self->relay_decode)
            decode_for_trace(self, bytes, len);
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
                gyre_route_observe_latency(self->cand->state, (double)(now_ms(self) - self->attempt_started_ms));
            start_client_response(self);
            push_out(self, held.base, held.len);
            gyre_buf_dispose(&held);
        }
        gyre_timer_stop(&self->first_byte_timer);
        gyre_timer_stop(&self->attempt_timer);
        if (!self->sent_body && self->cand->state != NULL)
            gyre_route_observe_latency(self->cand->state, (double)(now_ms(self) - self->attempt_started_ms));
        start_client_response(self);
        push_out(self, bytes, len);
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
            fail(self, FAIL_CUT, &err);
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
            fail(self, FAIL_CUT, &err);
            return -1;
        }
        return 0;
    }
    case MODE_STREAM: {
        int had = self->sent_body;
        stream_bytes(self, bytes, len);
        if (self->conn == NULL)
            return -1; /* the provider's stream failed: the attempt is over */
        if (!had && self->sent_body) {
            gyre_timer_stop(&self->first_byte_timer);
            gyre_timer_stop(&self->attempt_timer);
            if (self->cand->state != NULL && !self->resuming)
                gyre_route_observe_latency(self->cand->state, (double)(now_ms(self) - self->attempt_started_ms));
            start_client_response(self);
        }
        return 0;
    }
    }
    return self->conn == NULL ? -1 : 0;
}

/* A whole 2xx answer, read: translated as needed and sent on. */
static void deliver_buffered(gyre_proxy_t *self)
{
    const gyre_call_t *call = self->call;
    if (self->cand->state != NULL)
        gyre_route_observe_latency(self->cand->state, (double)(now_ms(self) - self->attempt_started_ms));
    if (self->passthrough) {
        record_outcome(self, 1, 0);
        if (call->endpoint == GYRE_OPENAI_CHAT && call->client == GYRE_CLIENT_OPENAI) {
            store_in_cache(self, self->body.base, self->body.len);
        } else if (call->endpoint == GYRE_OPENAI_CHAT && call->cache != NULL) {
            /* The cache keeps OpenAI's shape, whatever the client speaks. */
            gyre_buf_t openai;
            gyre_api_error_t err;
            gyre_buf_init(&openai, BUFFER_MAX);
            if (self->dialect->chat_response(&self->chat, self->body.base ? self->body.base : "", self->body.len,
                                             &openai, &err) == 0)
                store_in_cache(self, openai.base, openai.len);
            gyre_buf_dispose(&openai);
        }
        keep_passthrough_response(self, self->body.base ? self->body.base : "", self->body.len);
        deliver_whole(self, self->body.base ? self->body.base : "", self->body.len, NULL);
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
        fail(self, FAIL_CUT, &err);
        return;
    }
    record_outcome(self, 1, 0);
    store_in_cache(self, openai.base, openai.len);
    keep_response(self, openai.base, openai.len);
    if (call->client == GYRE_CLIENT_ANTHROPIC) {
        if (gyre_anthropic_response_from_openai(openai.base, openai.len, &out, &err) != 0) {
            gyre_buf_dispose(&openai);
            gyre_buf_dispose(&out);
            fail(self, FAIL_CUT, &err);
            return;
        }
        deliver_whole(self, out.base, out.len, "application/json");
    } else {
        deliver_whole(self, openai.base, openai.len, "application/json");
    }
    gyre_buf_dispose(&openai);
    gyre_buf_dispose(&out);
}

/* The provider's body ended: `why` is NULL when it ended as its framing said. */
static void on_body_end(gyre_proxy_t *self, const char *why)
{
    int reusable = why == NULL && self->keep_alive;
    switch (self->mode) {
    case MODE_BUFFER:
        drop_conn(self, reusable);
        if (why != NULL) {
            fail_upstream(self, "body", why);
            return;
        }
        if (self->status >= 300) {
            /* An error answer: the route's fallback_on decides whether it moves on (a 4xx other than
             * 408/409/429 never does, and goes back as it is). */
            attempt_failed(self, FAIL_STATUS, NULL);
            return;
        }
        deliver_buffered(self);
        return;
    case MODE_RELAY:
        drop_conn(self, reusable);
        if (self->is_sse && self->status == 200 && !self->sse_done) {
            if (!self->sent_body) {
                fail_upstream(self, "head", why ? why : "the stream ended before its first event");
                return;
            }
            gyre_api_error_t err;
            gyre_api_error_set(&err, 502, "upstream_error", "stream_interrupted", NULL,
                               "provider '%s' ended the stream before it was complete (%s)", self->prov->name,
                               why ? why : "the connection closed before [DONE]");
            stream_failed(self, FAIL_CUT, &err);
            return;
        }
        if (why != NULL && !self->is_sse) {
            if (!self->response_started) {
                fail_upstream(self, "head", why);
                return;
            }
            record_outcome(self, 0, 0);
            end_attempt(self);
            self->upstream_done = 1;
            self->had_body_error = 1;
            if (self->sending.bytes_inflight == 0)
                do_send(self);
            return;
        }
        record_outcome(self, 1, 0);
        end_attempt(self);
        finish_client_stream(self, NULL);
        return;
    case MODE_STREAM:
        drop_conn(self, reusable);
        if (self->sse_failed || !stream_complete(self)) {
            gyre_api_error_t err;
            gyre_api_error_set(&err, 502, "upstream_error", "stream_interrupted", NULL,
                               "provider '%s' ended the stream before it was complete (%s)", self->prov->name,
                               self->sse_failed ? "an event was over gyre's size limit"
                               : why            ? why
                                                : "the connection closed before the stream's end");
            fail(self, FAIL_CUT, &err);
            return;
        }
        record_outcome(self, 1, 0);
        end_attempt(self);
        /* Only a whole, clean, single-choice stream is worth keeping. */
        if (self->call->cache != NULL && self->acc_inited && self->acc.done && !self->acc.truncated &&
            !self->acc.errored) {
            gyre_buf_t c;
            gyre_buf_init(&c, ACCUM_MAX * 2);
            if (gyre_openai_accum_completion(&self->acc, &c) == 0)
                store_in_cache(self, c.base, c.len);
            gyre_buf_dispose(&c);
        }
        finish_client_stream(self, NULL);
        return;
    }
}

/* ---- the answer's head ---- */

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
        int need_events = translated || call->cache != NULL || (r != NULL && r->midstream_resume) || self->usage_asked;
        if (need_events) {
            start_stream_mode(self);
        } else {
            self->mode = MODE_RELAY;
            self->is_sse = is_sse;
            if (is_sse) {
                restart_sse(&self->sse, &self->sse_inited, on_relay_sse_event, self);
                /* The trace keeps what the stream adds up to: its tokens always, its answer when it captures. */
                if (call->client == GYRE_CLIENT_OPENAI) {
                    if (call->capture)
                        ensure_accum(self);
                    self->relay_acc = self->acc_inited;
                } else if (self->prov->kind == GYRE_PROVIDER_ANTHROPIC) {
                    self->dstream = self->dialect->stream_create(&self->chat);
                    restart_sse(&self->pivot_sse, &self->pivot_inited, on_trace_sse_event, self);
                    ensure_accum(self);
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
        restart_sse(&self->sse, &self->sse_inited, on_relay_sse_event, self);
    if (res->content_length != SIZE_MAX && !res->chunked)
        req->res.content_length = res->content_length;
    start_client_response(self);
}

/* ---- reading ---- */

static void on_read(h2o_socket_t *sock, const char *err)
{
    gyre_proxy_t *self = sock->data;
    h2o_buffer_t **input = &sock->input;
    h2o_timeout_unlink(&self->io_entry);

    if (!self->head_done) {
        if (err != NULL) {
            if (self->reused && (*input)->size == 0) {
                /* A pooled connection the provider had just closed: it never
                 * saw the request, so one more try on a new connection is safe. */
                h2o_socket_read_stop(self->conn->sock);
                gyre_upconn_close(self->conn);
                self->conn = NULL;
                self->reused = 0;
                self->attempts++;
                self->connecting = gyre_upstream_connect(self->up, on_connected, self);
                return;
            }
            fail_upstream(self, "head", "the connection closed before a response");
            return;
        }
        gyre_http1_response_t res;
        for (;;) {
            /* Only a new line end can complete the head: bytes without one are not parsed again, so a head that
             * arrives a byte at a time costs its length, not its length squared.  At GYRE_HTTP1_MAX_HEAD the
             * parser refuses it (below). */
            size_t size = (*input)->size;
            int may_end = size >= GYRE_HTTP1_MAX_HEAD ||
                          memchr((*input)->bytes + self->head_scanned, '\n', size - self->head_scanned) != NULL;
            self->head_scanned = size;
            ssize_t n = may_end ? gyre_http1_parse_response((*input)->bytes, size, &res) : -EAGAIN;
            if (n == -EAGAIN) {
                h2o_timeout_link(self->up->loop, &self->up->io_timeout, &self->io_entry);
                return;
            }
            if (n == -E2BIG) {
                /* A head past the parser's bounds: the provider is broken or hostile, and its connection is
                 * closed (fail); the route may fall back. */
                gyre_api_error_t e;
                if (size >= GYRE_HTTP1_MAX_HEAD)
                    gyre_api_error_set(&e, 502, "upstream_error", "response_head_too_large", NULL,
                                       "provider '%s' failed before answering: the response head is larger than %d "
                                       "bytes",
                                       self->prov->name, GYRE_HTTP1_MAX_HEAD);
                else
                    gyre_api_error_set(&e, 502, "upstream_error", "response_head_too_large", NULL,
                                       "provider '%s' failed before answering: the response head has more than %d "
                                       "headers",
                                       self->prov->name, GYRE_HTTP1_MAX_HEADERS);
                fail(self, FAIL_CONNECT, &e);
                return;
            }
            if (n < 0) {
                fail_upstream(self, "head", "the response is not valid HTTP/1.1");
                return;
            }
            if (res.status >= 100 && res.status < 200) {
                h2o_buffer_consume(input, (size_t)n);
                self->head_scanned = 0;
                continue;
            }
            self->head_done = 1;
            self->keep_alive = res.keep_alive;
            self->chunked = res.chunked;
            int no_body = h2o_memis(self->req->method.base, self->req->method.len, H2O_STRLIT("HEAD")) ||
                          res.status == 204 || res.status == 304;
            self->body_left = no_body ? 0 : res.chunked ? SIZE_MAX : res.content_length;
            if (self->body_left == SIZE_MAX && !res.chunked)
                self->keep_alive = 0;
            on_head(self, &res);
            h2o_buffer_consume(input, (size_t)n);
            break;
        }
        if (self->body_left == 0 && !self->chunked) {
            on_body_end(self, NULL);
            return;
        }
    }

    if ((*input)->size != 0) {
        if (self->chunked) {
            size_t len = (*input)->size, used = 0;
            int r = gyre_http1_decode_chunked(&self->chunk, (*input)->bytes, &len, &used);
            if (on_body_bytes(self, (*input)->bytes, len) != 0)
                return;
            h2o_buffer_consume(input, used);
            if (r < 0) {
                on_body_end(self, "invalid chunked encoding");
                return;
            }
            if (r == 1) {
                if ((*input)->size != 0)
                    self->keep_alive = 0;
                on_body_end(self, NULL);
                return;
            }
        } else {
            size_t take = (*input)->size;
            if (self->body_left != SIZE_MAX && take > self->body_left) {
                take = self->body_left;
                self->keep_alive = 0;
            }
            if (on_body_bytes(self, (*input)->bytes, take) != 0)
                return;
            h2o_buffer_consume(input, (*input)->size);
            if (self->body_left != SIZE_MAX) {
                self->body_left -= take;
                if (self->body_left == 0) {
                    on_body_end(self, NULL);
                    return;
                }
            }
        }
    }
    if (err != NULL) {
        on_body_end(self, self->body_left == SIZE_MAX && !self->chunked ? NULL : "the connection closed mid-response");
        return;
    }
    if (self->recv->size >= RELAY_HIGH_WATER) {
        /* The client reads slower than the provider writes: stop reading
         * from the provider until the client has taken what is buffered. */
        h2o_socket_read_stop(sock);
    } else {
        h2o_timeout_link(self->up->loop, &self->up->io_timeout, &self->io_entry);
    }
    if (self->sending.bytes_inflight == 0)
        do_send(self);
}

static void on_io_timeout(h2o_timeout_entry_t *entry)
{
    gyre_proxy_t *self = H2O_STRUCT_FROM_MEMBER(gyre_proxy_t, io_entry, entry);
    if (!self->head_done)
        fail_upstream(self, "head", "I/O timeout");
    else
        fail_upstream(self, "body", "I/O timeout");
}

static void on_attempt_timeout(gyre_timer_t *t)
{
    gyre_proxy_t *self = H2O_STRUCT_FROM_MEMBER(gyre_proxy_t, attempt_timer, t);
    gyre_api_error_t err;
    gyre_api_error_set(&err, 504, "upstream_error", "upstream_timeout", NULL,
                       "provider '%s' did not complete the attempt in time (attempt_timeout_ms %llu)",
                       self->prov->name, (unsigned long long)self->call->route->attempt_timeout_ms);
    fail(self, FAIL_TIMEOUT, &err);
}

static void on_answer_timeout(gyre_timer_t *t)
{
    gyre_proxy_t *self = H2O_STRUCT_FROM_MEMBER(gyre_proxy_t, answer_timer, t);
    if (self->conn == NULL || (!self->head_done && self->conn->sock->input->size == 0)) {
        /* Nothing came at all: the idle bound's own words, as it would have said at the same moment. */
        fail_upstream(self, self->conn == NULL ? "connect" : "head", "I/O timeout");
        return;
    }
    /* Bytes came, but never an answer: a provider that trickles its head or its body. */
    gyre_api_error_t err;
    gyre_api_error_set(&err, 504, "upstream_error", "upstream_timeout", NULL,
                       "provider '%s' did not complete its answer in time (timeout_ms %llu)", self->prov->name,
                       (unsigned long long)self->prov->timeout_ms);
    fail(self, FAIL_TIMEOUT, &err);
}

static void on_first_byte_timeout(gyre_timer_t *t)
{
    gyre_proxy_t *self = H2O_STRUCT_FROM_MEMBER(gyre_proxy_t, first_byte_timer, t);
    gyre_api_error_t err;
    gyre_api_error_set(&err, 504, "upstream_error", "first_byte_timeout", NULL,
                       "provider '%s' sent no stream event in time (first_byte_timeout_ms %llu)", self->prov->name,
                       (unsigned long long)self->call->route->first_byte_timeout_ms);
    fail(self, FAIL_TIMEOUT, &err);
}

static void on_deadline(gyre_timer_t *t)
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
            finish_client_stream(self, &err);
        else
            respond_final_failure(self);
        return;
    }
    if (self->upstream_done || self->client_gone)
        return;
    fail(self, FAIL_TIMEOUT, &err);
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
    h2o_socket_read_start(sock, on_read);
    h2o_timeout_link(self->up->loop, &self->up->io_timeout, &self->io_entry);
}

static void on_connected(gyre_upconn_t *conn, const char *err, void *data)
{
    gyre_proxy_t *self = data;
    self->connecting = NULL;
    if (err != NULL) {
        fail_upstream(self, "connect", err);
        return;
    }
    self->conn = conn;
    send_request(self);
}

/* ---- attempts ---- */

static void start_attempt(gyre_proxy_t *self)
{
    const gyre_call_t *call = self->call;
    const gyre_config_t *cfg = config_of(self);
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
        uint64_t now = now_ms(self);
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
                finish_client_stream(self, &self->last_err);
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
    if (build_request(self, key, &err) != 0) {
        /* This target cannot take the call (an endpoint its API lacks, a request it cannot express). */
        gyre_keypool_release(self->kp, self->key_index);
        self->key_index = -1;
        self->last_err = err;
        self->have_last_status = 0;
        if (err.status == 400 && self->cur + 1 < call->ncands) {
            self->cur++;
            self->tries_on_cur = 0;
            start_attempt(self);
            return;
        }
        if (self->sent_body)
            finish_client_stream(self, &err);
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
    self->attempt_started_ms = now_ms(self);
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
        self->connecting = gyre_upstream_connect(self->up, on_connected, self);
    }
}

/* ---- the client leaving ---- */

static void stop_client_watch(gyre_proxy_t *self)
{
    gyre_timer_stop(&self->client_timer);
    if (self->client_watch != NULL) {
        h2o_socket_close(self->client_watch); /* its own descriptor, a duplicate: the client's stays h2o's */
        self->client_watch = NULL;
    }
}

/*
 * The client went away before its answer was complete: everything done for
 * it stops at once.  The current attempt's connection is closed (never
 * pooled: the provider is mid-answer), no timer is left to start another
 * attempt, a backoff or a fallback, and the trace (written when h2o disposes
 * the request) says 499 with the attempt that was cut.
 */
static void cancel_for_client(gyre_proxy_t *self)
{
    if (self->client_gone)
        return;
    self->client_gone = 1;
    if (self->tattempt != NULL && self->tattempt->error.len == 0)
        self->tattempt->error = gyre_tstr_dup(&self->req->pool, H2O_STRLIT("the client closed the request before its answer"));
    drop_conn(self, 0);
    end_attempt(self);
    gyre_timer_stop(&self->backoff_timer);
    gyre_timer_stop(&self->deadline_timer);
    stop_client_watch(self);
}

/* The watch saw the client's close.  The last thing its callers do: the answer may dispose the request. */
static void client_left(gyre_proxy_t *self)
{
    stop_client_watch(self);
    if (self->client_gone || self->answered)
        return;
    cancel_for_client(self);
    h2o_req_t *req = self->req;
    if (!self->response_started) {
        /* h2o holds the request until it has an answer to write: a last one, which the client will not read,
         * makes it close the connection and dispose the request. */
        self->answered = 1;
        h2o_send_error_generic(req, 499, "Client Closed Request", "", H2O_SEND_ERROR_HTTP1_CLOSE_CONNECTION);
    } else if (self->sending.bytes_inflight == 0) {
        h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR); /* may dispose the request, and `self`, at once */
    }
    /* else the send in flight ends it: on_proceed, or its failure (on_stop) */
}

/* Whether the client's end of the connection is closed (or failed), without reading what it may have sent. */
static int client_closed(h2o_socket_t *watch)
{
    struct pollfd p = {h2o_socket_get_fd(watch), POLLRDHUP, 0};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

static void on_client_poll(gyre_timer_t *t)
{
    gyre_proxy_t *self = H2O_STRUCT_FROM_MEMBER(gyre_proxy_t, client_timer, t);
    if (client_closed(self->client_watch)) {
        client_left(self);
        return;
    }
    gyre_timer_start(&self->worker->timers, &self->client_timer, CLIENT_POLL_MS, on_client_poll);
}

static void on_client_event(h2o_socket_t *watch, const char *err)
{
    gyre_proxy_t *self = watch->data;
    if (err != NULL || client_closed(watch)) {
        client_left(self);
        return;
    }
    /* Bytes from the client while its answer is pending (a pipelined request, or a TLS record ahead of the
     * close): they are h2o's to read, for the next request, and the socket stays readable until then, so the
     * watch turns to polling for the close. */
    h2o_socket_read_stop(watch);
    gyre_timer_start(&self->worker->timers, &self->client_timer, CLIENT_POLL_MS, on_client_poll);
}

/*
 * h2o 2.2's HTTP/1 connection stops reading its socket once a request is
 * read, and notices the client's close only when a write fails: before the
 * first byte of the answer, never.  So the proxy watches a duplicate of the
 * client's descriptor with h2o's DONT_READ flag, which reports readiness and
 * reads nothing (the client's bytes stay h2o's).  HTTP/2 needs none of this:
 * h2o reads that connection throughout and disposes a request whose stream or
 * connection closes (on_dispose).
 */
static void on_watch_start(gyre_timer_t *t)
{
    gyre_proxy_t *self = H2O_STRUCT_FROM_MEMBER(gyre_proxy_t, client_timer, t);
    h2o_req_t *req = self->req;
    if (self->answered || self->client_gone || req->version >= 0x200 || req->conn->callbacks->get_socket == NULL)
        return;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    int fd = sock != NULL ? fcntl(h2o_socket_get_fd(sock), F_DUPFD_CLOEXEC, 0) : -1;
    if (fd < 0)
        return; /* out of descriptors: the close is then noticed at the first write, as h2o does by itself */
    self->client_watch = h2o_evloop_socket_create(self->worker->ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    self->client_watch->data = self;
    h2o_socket_read_start(self->client_watch, on_client_event);
}

static void on_stop(h2o_generator_t *generator, h2o_req_t *req)
{
    gyre_proxy_t *self = (void *)generator;
    (void)req;
    /* The client went away mid-answer (h2o's write failed): stop the provider's work too. */
    cancel_for_client(self);
}

/* The request is over: its trace gets the outcome and goes to the writer. */
static void finish_trace(gyre_proxy_t *self)
{
    gyre_trace_t *t = self->call->trace;
    h2o_req_t *req = self->req;
    h2o_mem_pool_t *pool = &req->pool;
    const gyre_call_t *call = self->call;
    t->ended_us = gyre_trace_now_us();
    /* 499: the client closed the request before its answer (nginx's convention). */
    t->status = self->client_gone && !self->upstream_done ? 499 : req->res.status;
    t->stream = call->stream;
    if (call->route_name != NULL)
        t->route = gyre_tstr_dup(pool, call->route_name, strlen(call->route_name));
    if (self->prov != NULL)
        t->provider = gyre_tstr_dup(pool, self->prov->name, strlen(self->prov->name));
    if (self->cand != NULL)
        t->model = gyre_tstr_dup(pool, self->cand->model, self->cand->model_len);
    if (call->capture && (call->endpoint == GYRE_OPENAI_CHAT || call->endpoint == GYRE_OPENAI_EMBEDDINGS))
        t->request_body = (gyre_tstr_t){call->body.base, call->body.len};
    if (self->acc_inited && self->acc.events != 0) {
        gyre_buf_t c;
        gyre_buf_init(&c, ACCUM_MAX * 2);
        if (gyre_openai_accum_completion(&self->acc, &c) == 0) {
            if (call->capture)
                t->response_body = gyre_tstr_dup(pool, c.base, c.len);
            gyre_trace_read_completion(t, pool, c.base, c.len);
        }
        gyre_buf_dispose(&c);
    } else if (self->trace_response.base != NULL) {
        t->response_body = (gyre_tstr_t){self->trace_response.base, self->trace_response.len};
        gyre_trace_read_completion(t, pool, self->trace_response.base, self->trace_response.len);
    } else if (!call->capture) {
        /* no bodies */
    } else if (self->have_last_status && self->last_body.len != 0) {
        t->response_body = gyre_tstr_dup(pool, self->last_body.base, self->last_body.len);
    } else if (self->last_err.message[0] != '\0') {
        gyre_buf_t e;
        gyre_buf_init(&e, 4096);
        gyre_api_error_to_json(&self->last_err, &e);
        t->response_body = gyre_tstr_dup(pool, e.base, e.len);
        gyre_buf_dispose(&e);
    }
    gyre_worker_trace_done(self->worker, t, pool, call->route, self->prov);
}

static void on_dispose(void *p)
{
    gyre_proxy_t *self = p;
    /* Disposed before gyre answered: the client's connection or stream closed (HTTP/2, or an HTTP/1 connection
     * h2o closed), which cancels what is left as the client leaving does. */
    if (!self->answered && !self->upstream_done)
        cancel_for_client(self);
    stop_client_watch(self);
    drop_conn(self, 0);
    end_attempt(self);
    finish_trace(self);
    gyre_timer_stop(&self->backoff_timer);
    gyre_timer_stop(&self->deadline_timer);
    if (self->sse_inited)
        gyre_sse_dispose(&self->sse);
    if (self->pivot_inited)
        gyre_sse_dispose(&self->pivot_sse);
    if (self->acc_inited)
        gyre_openai_accum_dispose(&self->acc);
    if (self->enc != NULL)
        gyre_anthropic_encoder_destroy(self->enc);
    if (self->pivot != NULL)
        cJSON_Delete(self->pivot);
    gyre_buf_dispose(&self->uphead);
    gyre_buf_dispose(&self->upbody);
    gyre_buf_dispose(&self->body);
    gyre_buf_dispose(&self->last_body);
    gyre_buf_dispose(&self->scratch);
    gyre_buf_dispose(&self->resume_ws);
    h2o_buffer_dispose(&self->recv);
    h2o_doublebuffer_dispose(&self->sending);
    gyre_worker_request_done(self->worker);
}

void gyre_proxy_start(gyre_worker_t *w, h2o_req_t *req, gyre_call_t *call)
{
    gyre_proxy_t *self = h2o_mem_alloc_shared(&req->pool, sizeof(*self), on_dispose);
    memset(self, 0, sizeof(*self));
    self->super.proceed = on_proceed;
    self->super.stop = on_stop;
    self->req = req;
    self->worker = w;
    self->call = call;
    call->proxied = 1;
    /* The body is read again at the end, for the trace, when h2o may have let go of its buffer. */
    if (call->body.len != 0 && call->capture)
        call->body = h2o_strdup(&req->pool, call->body.base, call->body.len);
    self->key_index = -1;
    self->io_entry.cb = on_io_timeout;
    self->created = (long long)time(NULL);
    /* The id of answers gyre builds itself (translated ones): "chatcmpl-gyre-" and 16 hex digits. */
    static const char hex[] = "0123456789abcdef";
    uint64_t r = gyre_rand_next(&w->rng);
    memcpy(self->chat_id, "chatcmpl-gyre-", 14);
    for (int i = 0; i < 16; i++)
        self->chat_id[14 + i] = hex[(r >> (60 - 4 * i)) & 15];
    self->chat_id[30] = '\0';
    gyre_buf_init(&self->uphead, 1024 * 1024);
    gyre_buf_init(&self->upbody, 6 * (size_t)req->entity.len + 4 * 1024 * 1024);
    gyre_buf_init(&self->body, BUFFER_MAX);
    gyre_buf_init(&self->last_body, ERROR_BODY_MAX);
    gyre_buf_init(&self->scratch, SSE_EVENT_MAX * 2);
    gyre_buf_init(&self->resume_ws, 4096);
    h2o_buffer_init(&self->recv, &h2o_socket_buffer_prototype);
    h2o_doublebuffer_init(&self->sending, &h2o_socket_buffer_prototype);
    self->own_headers = req->res.headers.size;
    __atomic_store_n(&w->inflight, w->inflight + 1, __ATOMIC_RELAXED); /* /metrics reads it from another thread */
    if (call->route != NULL && call->route->deadline_ms != 0)
        gyre_timer_start(&w->timers, &self->deadline_timer, call->route->deadline_ms, on_deadline);
    gyre_timer_start(&w->timers, &self->client_timer, CLIENT_WATCH_AFTER_MS, on_watch_start);
    start_attempt(self);
}
