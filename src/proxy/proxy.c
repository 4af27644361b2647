/* Upstream calls and the response relay (see proxy.h). */
#include "proxy/proxy.h"

#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "dialect/openai.h"
#include "proxy/sse.h"
#include "server/respond.h"

/* An SSE event from a provider larger than this ends the stream with an error. */
#define SSE_EVENT_MAX (4 * 1024 * 1024)

typedef struct gyre_proxy {
    h2o_generator_t super;
    h2o_req_t *req;
    gyre_worker_t *worker;
    gyre_upstream_t *up;
    h2o_http1client_t *client;
    h2o_iovec_t reqbufs[2]; /* head, body */
    h2o_doublebuffer_t sending;
    h2o_buffer_t *last_content; /* what is left when the upstream is done */
    int started;
    int had_body_error;
    int is_sse;
    int sse_done;  /* the stream's [DONE] or an error event went by */
    int sse_failed; /* the parser gave up (an event over its bound) */
    size_t sse_fed; /* bytes of the client's input buffer the parser has seen */
    gyre_sse_parser_t sse;
} gyre_proxy_t;

/* Request headers that are the client's business with gyre, or hop-by-hop. */
static int drop_request_header(const h2o_header_t *h)
{
    static const char *const names[] = {
        "connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "transfer-encoding",
        "upgrade", "host", "content-length", "authorization", "x-api-key", "api-key", "cookie", "expect",
        "accept-encoding", "x-request-id", "http2-settings",
    };
    const h2o_iovec_t *n = h2o_iovec_is_token(h->name) ? h->name : h->name;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (h2o_lcstris(n->base, n->len, names[i], strlen(names[i])))
            return 1;
    /* x-gyre-* headers steer gyre itself. */
    return n->len >= 7 && h2o_lcstris(n->base, 7, H2O_STRLIT("x-gyre-"));
}

static h2o_iovec_t build_head(gyre_proxy_t *self, h2o_iovec_t path, size_t body_len, h2o_iovec_t request_id)
{
    h2o_req_t *req = self->req;
    gyre_upstream_t *up = self->up;
    const gyre_provider_conf_t *p = up->conf;
    const char *key = NULL;
    if (p->nkeys != 0) {
        key = p->keys[up->next_key % p->nkeys];
        up->next_key++;
    }
    size_t cap = req->method.len + path.len + up->host_header.len + 256 + (key ? strlen(key) : 0) + request_id.len;
    for (size_t i = 0; i < req->headers.size; i++)
        cap += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    char *buf = h2o_mem_alloc_pool(&req->pool, cap), *o = buf;
#define PUT(s, n) (memcpy(o, (s), (n)), o += (n))
#define PUTS(lit) PUT(lit, sizeof(lit) - 1)
    PUT(req->method.base, req->method.len);
    PUTS(" ");
    PUT(path.base, path.len);
    PUTS(" HTTP/1.1\r\nhost: ");
    PUT(up->host_header.base, up->host_header.len);
    if (key != NULL) {
        PUTS("\r\nauthorization: Bearer ");
        PUT(key, strlen(key));
    }
    PUTS("\r\nx-request-id: ");
    PUT(request_id.base, request_id.len);
    if (body_len != 0 || req->entity.base != NULL)
        o += sprintf(o, "\r\ncontent-length: %zu", body_len);
    PUTS("\r\n");
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *h = &req->headers.entries[i];
        if (drop_request_header(h))
            continue;
        PUT(h->orig_name ? h->orig_name : h->name->base, h->name->len);
        PUTS(": ");
        PUT(h->value.base, h->value.len);
        PUTS("\r\n");
    }
    PUTS("\r\n");
#undef PUT
#undef PUTS
    return h2o_iovec_init(buf, (size_t)(o - buf));
}

static void respond_upstream_error(gyre_proxy_t *self, const char *stage, const char *errstr)
{
    const gyre_provider_conf_t *p = self->up->conf;
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
    if (timeout)
        gyre_api_error_set(&err, 504, "upstream_error", "upstream_timeout", NULL,
                           "provider '%s' (%s:%u) did not answer in time (%s, limit %llu ms)", p->name, p->host,
                           p->port, errstr, (unsigned long long)p->timeout_ms);
    else if (tls)
        gyre_api_error_set(&err, 502, "upstream_error", "upstream_tls_error", NULL,
                           "provider '%s' (%s:%u): TLS failed: %s", p->name, p->host, p->port, errstr);
    else
        gyre_api_error_set(&err, 502, "upstream_error",
                           strcmp(stage, "connect") == 0 ? "upstream_unreachable" : "upstream_error", NULL,
                           "provider '%s' (%s:%u) %s: %s", p->name, p->host, p->port,
                           strcmp(stage, "connect") == 0 ? "is unreachable" : "failed before answering", errstr);
    fprintf(stderr, "gyre: request %s: %s\n", gyre_request_id(self->worker, self->req).base, err.message);
    gyre_respond_error(self->req, &err);
}

static void on_sse_event(void *ctx, const char *event, size_t elen, const char *data, size_t dlen)
{
    gyre_proxy_t *self = ctx;
    (void)event;
    (void)elen;
    if (dlen == 6 && memcmp(data, "[DONE]", 6) == 0)
        self->sse_done = 1;
    else if (dlen >= 9 && memcmp(data, "{\"error\":", 9) == 0)
        self->sse_done = 1; /* the provider ended the stream with an error of its own */
}

static void feed_sse(gyre_proxy_t *self, h2o_buffer_t *in)
{
    if (!self->is_sse || self->sse_failed)
        return;
    if (in->size > self->sse_fed &&
        gyre_sse_feed(&self->sse, in->bytes + self->sse_fed, in->size - self->sse_fed) != 0)
        self->sse_failed = 1;
    self->sse_fed = in->size;
}

/* The last words of a stream that the provider cut: an SSE error event, so
 * the client's SDK raises instead of seeing a clean end. */
static void append_stream_error(gyre_proxy_t *self, const char *why)
{
    const gyre_provider_conf_t *p = self->up->conf;
    gyre_api_error_t err;
    gyre_api_error_set(&err, 502, "upstream_error", "stream_interrupted", NULL,
                       "provider '%s' ended the stream before it was complete (%s)", p->name, why);
    gyre_buf_t b;
    gyre_buf_init(&b, 4096);
    gyre_buf_appends(&b, "\n\ndata: ");
    gyre_api_error_to_json(&err, &b);
    gyre_buf_appends(&b, "\n\n");
    h2o_iovec_t dst = h2o_buffer_reserve(&self->last_content, b.len);
    memcpy(dst.base, b.base, b.len);
    self->last_content->size += b.len;
    gyre_buf_dispose(&b);
    fprintf(stderr, "gyre: request %s: %s\n", gyre_request_id(self->worker, self->req).base, err.message);
}

static void do_send(gyre_proxy_t *self)
{
    h2o_iovec_t vec;
    h2o_send_state_t state;
    vec = h2o_doublebuffer_prepare(&self->sending, self->client != NULL ? &self->client->sock->input : &self->last_content,
                                   self->req->preferred_chunk_size);
    if (self->client != NULL)
        self->sse_fed = self->client->sock->input->size;
    if (self->client == NULL && vec.len == self->sending.buf->size && self->last_content->size == 0) {
        state = self->had_body_error ? H2O_SEND_STATE_ERROR : H2O_SEND_STATE_FINAL;
    } else {
        if (vec.len == 0)
            return;
        state = H2O_SEND_STATE_IN_PROGRESS;
    }
    h2o_send(self->req, &vec, vec.len != 0 ? 1 : 0, state);
}

static void on_proceed(h2o_generator_t *generator, h2o_req_t *req)
{
    gyre_proxy_t *self = (void *)generator;
    (void)req;
    h2o_doublebuffer_consume(&self->sending);
    do_send(self);
}

static void on_stop(h2o_generator_t *generator, h2o_req_t *req)
{
    gyre_proxy_t *self = (void *)generator;
    (void)req;
    /* The client went away: stop the provider's work too. */
    if (self->client != NULL) {
        h2o_http1client_cancel(self->client);
        self->client = NULL;
    }
}

static int on_body(h2o_http1client_t *client, const char *errstr)
{
    gyre_proxy_t *self = client->data;
    feed_sse(self, client->sock->input);
    if (errstr != NULL) {
        /* The upstream is done, well or not: keep what it sent last. */
        h2o_buffer_t *tmp = self->last_content;
        self->last_content = client->sock->input;
        client->sock->input = tmp;
        self->client = NULL;
        if (errstr != h2o_http1client_error_is_eos) {
            self->had_body_error = 1;
            if (self->is_sse && !self->sse_done)
                append_stream_error(self, errstr);
        } else if (self->is_sse && !self->sse_done && self->req->res.status == 200) {
            /* A clean close without [DONE] is a cut stream all the same. */
            self->had_body_error = 1;
            append_stream_error(self, "connection closed before [DONE]");
        }
    }
    if (self->sending.bytes_inflight == 0)
        do_send(self);
    return 0;
}

static int drop_response_header(const h2o_header_t *h)
{
    static const char *const names[] = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
                                        "transfer-encoding", "upgrade", "content-length", "server", "date"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (h2o_lcstris(h->name->base, h->name->len, names[i], strlen(names[i])))
            return 1;
    return 0;
}

static h2o_http1client_body_cb on_head(h2o_http1client_t *client, const char *errstr, int minor_version, int status,
                                       h2o_iovec_t msg, h2o_header_t *headers, size_t num_headers, int rlen)
{
    gyre_proxy_t *self = client->data;
    h2o_req_t *req = self->req;
    (void)minor_version;
    (void)rlen;
    if (errstr != NULL && errstr != h2o_http1client_error_is_eos) {
        self->client = NULL;
        respond_upstream_error(self, "head", errstr);
        return NULL;
    }
    req->res.status = status;
    req->res.reason = h2o_strdup(&req->pool, msg.base, msg.len).base;
    for (size_t i = 0; i < num_headers; i++) {
        h2o_header_t *h = &headers[i];
        if (h2o_lcstris(h->name->base, h->name->len, H2O_STRLIT("content-length"))) {
            size_t cl = h2o_strtosize(h->value.base, h->value.len);
            if (cl == SIZE_MAX || req->res.content_length != SIZE_MAX) {
                self->client = NULL;
                respond_upstream_error(self, "head", "invalid content-length in the response");
                return NULL;
            }
            req->res.content_length = cl;
            continue;
        }
        if (drop_response_header(h))
            continue;
        h2o_iovec_t name = h2o_strdup(&req->pool, h->name->base, h->name->len);
        h2o_iovec_t value = h2o_strdup(&req->pool, h->value.base, h->value.len);
        if (h2o_lcstris(name.base, name.len, H2O_STRLIT("x-request-id"))) {
            /* gyre's id stays x-request-id; the provider's own is kept beside it. */
            name = h2o_iovec_init(H2O_STRLIT("x-upstream-request-id"));
        } else if (h2o_lcstris(name.base, name.len, H2O_STRLIT("content-type")) && value.len >= 17 &&
                   h2o_lcstris(value.base, 17, H2O_STRLIT("text/event-stream"))) {
            self->is_sse = 1;
        }
        /* Names go out in lower case (as HTTP/2 requires anyway). */
        h2o_add_header_by_str(&req->pool, &req->res.headers, name.base, name.len, 1, NULL, value.base, value.len);
    }
    if (self->is_sse)
        gyre_sse_init(&self->sse, SSE_EVENT_MAX, on_sse_event, self);
    self->started = 1;
    h2o_start_response(req, &self->super);
    if (errstr == h2o_http1client_error_is_eos) {
        self->client = NULL;
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return NULL;
    }
    return on_body;
}

static h2o_http1client_head_cb on_connect(h2o_http1client_t *client, const char *errstr, h2o_iovec_t **reqbufs,
                                          size_t *reqbufcnt, int *method_is_head)
{
    gyre_proxy_t *self = client->data;
    if (errstr != NULL) {
        self->client = NULL;
        respond_upstream_error(self, "connect", errstr);
        return NULL;
    }
    *reqbufs = self->reqbufs;
    *reqbufcnt = self->reqbufs[1].len != 0 ? 2 : 1;
    *method_is_head = h2o_memis(self->req->method.base, self->req->method.len, H2O_STRLIT("HEAD"));
    return on_head;
}

static void on_dispose(void *p)
{
    gyre_proxy_t *self = p;
    if (self->client != NULL) {
        h2o_http1client_cancel(self->client);
        self->client = NULL;
    }
    if (self->is_sse)
        gyre_sse_dispose(&self->sse);
    h2o_buffer_dispose(&self->last_content);
    h2o_doublebuffer_dispose(&self->sending);
    gyre_worker_request_done(self->worker);
}

void gyre_proxy_start(gyre_worker_t *w, h2o_req_t *req, const gyre_target_ref_t *target, h2o_iovec_t path,
                      h2o_iovec_t body)
{
    gyre_proxy_t *self = h2o_mem_alloc_shared(&req->pool, sizeof(*self), on_dispose);
    memset(self, 0, sizeof(*self));
    self->super.proceed = on_proceed;
    self->super.stop = on_stop;
    self->req = req;
    self->worker = w;
    self->up = &w->upstreams[target->provider];
    h2o_buffer_init(&self->last_content, &h2o_socket_buffer_prototype);
    h2o_doublebuffer_init(&self->sending, &h2o_socket_buffer_prototype);
    w->inflight++;
    self->reqbufs[0] = build_head(self, path, body.len, gyre_request_id(w, req));
    self->reqbufs[1] = body;
    h2o_http1client_connect_with_pool(&self->client, self, &self->up->client_ctx, &self->up->pool, on_connect);
}
