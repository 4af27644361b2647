/* Upstream calls and the response relay (see proxy.h). */
#include "proxy/proxy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "dialect/openai.h"
#include "proxy/http1.h"
#include "proxy/sse.h"
#include "proxy/upstream.h"
#include "server/respond.h"

/* Body bytes buffered for a slow client before gyre stops reading from the
 * provider (TCP then slows the provider down): the relay's memory bound. */
#define RELAY_HIGH_WATER (1024 * 1024)
/* An SSE event from a provider larger than this ends the stream with an error. */
#define SSE_EVENT_MAX (4 * 1024 * 1024)

typedef struct gyre_proxy {
    h2o_generator_t super;
    h2o_req_t *req;
    gyre_worker_t *worker;
    gyre_upstream_t *up;
    gyre_upconnect_t *connecting; /* while a new connection opens */
    gyre_upconn_t *conn;          /* while the provider is talking */
    int reused;                   /* conn came from the pool */
    unsigned attempts;            /* requests written to the provider */
    const gyre_target_ref_t *target; /* in the request's pool */
    h2o_iovec_t reqbufs[2];       /* head, body */
    h2o_timeout_entry_t io_entry;
    /* The response as it is read. */
    int head_done;
    int keep_alive;
    int chunked;
    gyre_http1_chunked_t chunk;
    size_t body_left; /* content-length still to come; SIZE_MAX: until close */
    /* The relay to the client. */
    h2o_buffer_t *recv; /* body bytes not yet handed to h2o */
    h2o_doublebuffer_t sending;
    int upstream_done; /* the provider is finished, well or not */
    int had_body_error;
    int client_gone;
    int is_sse;
    int sse_done;   /* the stream's [DONE] or an error event went by */
    int sse_failed; /* the parser gave up (an event over its bound) */
    gyre_sse_parser_t sse;
} gyre_proxy_t;

/* A header-name table entry; the length spares a strlen per comparison. */
typedef struct name_entry {
    const char *name;
    size_t len;
} name_entry_t;
#define NAME(s) {s, sizeof(s) - 1}

static int name_in(const name_entry_t *table, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (table[i].len == len && h2o_lcstris(name, len, table[i].name, len))
            return 1;
    return 0;
}

/* Request headers that are the client's business with gyre, or hop-by-hop. */
static int drop_request_header(const h2o_header_t *h)
{
    static const name_entry_t names[] = {
        NAME("connection"),        NAME("keep-alive"),    NAME("proxy-connection"), NAME("proxy-authorization"),
        NAME("te"),                NAME("trailer"),       NAME("transfer-encoding"), NAME("upgrade"),
        NAME("host"),              NAME("content-length"), NAME("authorization"),   NAME("x-api-key"),
        NAME("api-key"),           NAME("cookie"),        NAME("expect"),           NAME("accept-encoding"),
        NAME("x-request-id"),      NAME("http2-settings"),
    };
    const h2o_iovec_t *n = h->name;
    if (name_in(names, sizeof(names) / sizeof(names[0]), n->base, n->len))
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
    if (body_len != 0 || req->entity.base != NULL) {
        PUTS("\r\ncontent-length: ");
        char digits[24];
        size_t nd = 0, v = body_len;
        do
            digits[nd++] = (char)('0' + v % 10);
        while ((v /= 10) != 0);
        while (nd > 0)
            *o++ = digits[--nd];
    }
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

/* Which route, provider and model answered, and after how many attempts:
 * on every answer that went to a provider, so clients and logs can tell. */
static void add_gyre_headers(gyre_proxy_t *self)
{
    h2o_req_t *req = self->req;
    const gyre_target_ref_t *t = self->target;
    if (t->route_name != NULL)
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-gyre-route"), 0, NULL, t->route_name,
                              strlen(t->route_name));
    const char *provider = self->up->conf->name;
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-gyre-provider"), 0, NULL, provider,
                          strlen(provider));
    if (t->model != NULL)
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-gyre-model"), 0, NULL, t->model,
                              t->model_len);
    char *n = h2o_mem_alloc_pool(&req->pool, 12);
    int len = snprintf(n, 12, "%u", self->attempts);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-gyre-attempts"), 0, NULL, n, (size_t)len);
}

/* One line per upstream failure on stderr.  The request id is not
 * NUL-terminated (it may point into the client's header), hence %.*s. */
static void log_error(gyre_proxy_t *self, const gyre_api_error_t *err)
{
    h2o_iovec_t id = gyre_request_id(self->worker, self->req);
    fprintf(stderr, "gyre: request %.*s: %s\n", (int)id.len, id.base, err->message);
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
    log_error(self, &err);
    add_gyre_headers(self);
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

/* Appends body bytes for the client, letting the SSE parser see them first. */
static void push_body(gyre_proxy_t *self, const char *bytes, size_t len)
{
    if (len == 0)
        return;
    if (self->is_sse && !self->sse_failed && gyre_sse_feed(&self->sse, bytes, len) != 0)
        self->sse_failed = 1;
    h2o_iovec_t dst = h2o_buffer_reserve(&self->recv, len);
    memcpy(dst.base, bytes, len);
    self->recv->size += len;
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
    h2o_iovec_t dst = h2o_buffer_reserve(&self->recv, b.len);
    memcpy(dst.base, b.base, b.len);
    self->recv->size += b.len;
    gyre_buf_dispose(&b);
    log_error(self, &err);
}

static void do_send(gyre_proxy_t *self)
{
    if (self->client_gone)
        return;
    h2o_send_state_t state;
    h2o_iovec_t vec = h2o_doublebuffer_prepare(&self->sending, &self->recv, self->req->preferred_chunk_size);
    if (self->upstream_done && vec.len == self->sending.buf->size && self->recv->size == 0) {
        state = self->had_body_error ? H2O_SEND_STATE_ERROR : H2O_SEND_STATE_FINAL;
    } else {
        if (vec.len == 0)
            return;
        state = H2O_SEND_STATE_IN_PROGRESS;
    }
    h2o_send(self->req, &vec, vec.len != 0 ? 1 : 0, state);
}

static void on_read(h2o_socket_t *sock, const char *err);

static void on_proceed(h2o_generator_t *generator, h2o_req_t *req)
{
    gyre_proxy_t *self = (void *)generator;
    (void)req;
    h2o_doublebuffer_consume(&self->sending);
    do_send(self);
    if (self->conn != NULL && !h2o_socket_is_reading(self->conn->sock) && self->recv->size < RELAY_HIGH_WATER) {
        h2o_socket_read_start(self->conn->sock, on_read);
        h2o_timeout_link(self->up->loop, &self->up->io_timeout, &self->io_entry);
    }
}

/* Lets go of the provider's connection: back to the pool when the response
 * was read to its end and the connection may be reused, else closed. */
static void drop_conn(gyre_proxy_t *self, int reusable)
{
    if (h2o_timeout_is_linked(&self->io_entry))
        h2o_timeout_unlink(&self->io_entry);
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

/* The response body ended: `why` is NULL when it ended as its framing said. */
static void finish_body(gyre_proxy_t *self, const char *why)
{
    drop_conn(self, why == NULL && self->keep_alive);
    self->upstream_done = 1;
    if (why != NULL) {
        self->had_body_error = 1;
        if (self->is_sse && !self->sse_done)
            append_stream_error(self, why);
    } else if (self->is_sse && !self->sse_done && self->req->res.status == 200) {
        /* A clean end without [DONE] is a cut stream all the same. */
        self->had_body_error = 1;
        append_stream_error(self, "the connection closed before [DONE]");
    }
    if (self->sending.bytes_inflight == 0)
        do_send(self);
}

static void on_stop(h2o_generator_t *generator, h2o_req_t *req)
{
    gyre_proxy_t *self = (void *)generator;
    (void)req;
    /* The client went away: stop the provider's work too. */
    self->client_gone = 1;
    drop_conn(self, 0);
}

static int drop_response_header(const gyre_http1_header_t *h)
{
    static const name_entry_t names[] = {
        NAME("connection"), NAME("keep-alive"),     NAME("proxy-connection"), NAME("te"),   NAME("trailer"),
        NAME("upgrade"),    NAME("content-length"), NAME("transfer-encoding"), NAME("server"), NAME("date"),
    };
    return name_in(names, sizeof(names) / sizeof(names[0]), h->name, h->name_len);
}

/* Copies the provider's status and headers to the client's response. */
static void start_response(gyre_proxy_t *self, const gyre_http1_response_t *res)
{
    h2o_req_t *req = self->req;
    req->res.status = res->status;
    req->res.reason = h2o_strdup(&req->pool, res->reason, res->reason_len).base;
    for (size_t i = 0; i < res->num_headers; i++) {
        const gyre_http1_header_t *h = &res->headers[i];
        if (drop_response_header(h))
            continue;
        h2o_iovec_t name = h2o_strdup(&req->pool, h->name, h->name_len);
        h2o_iovec_t value = h2o_strdup(&req->pool, h->value, h->value_len);
        h2o_strtolower(name.base, name.len);
        if (h2o_memis(name.base, name.len, H2O_STRLIT("x-request-id"))) {
            /* gyre's id stays x-request-id; the provider's own is kept beside it. */
            name = h2o_iovec_init(H2O_STRLIT("x-upstream-request-id"));
        } else if (h2o_memis(name.base, name.len, H2O_STRLIT("content-type")) && value.len >= 17 &&
                   h2o_lcstris(value.base, 17, H2O_STRLIT("text/event-stream"))) {
            self->is_sse = 1;
        }
        h2o_add_header_by_str(&req->pool, &req->res.headers, name.base, name.len, 1, NULL, value.base, value.len);
    }
    if (res->content_length != SIZE_MAX && !res->chunked)
        req->res.content_length = res->content_length;
    if (self->is_sse)
        gyre_sse_init(&self->sse, SSE_EVENT_MAX, on_sse_event, self);
    add_gyre_headers(self);
    h2o_start_response(req, &self->super);
}

static void send_request(gyre_proxy_t *self);
static void on_connected(gyre_upconn_t *conn, const char *err, void *data);

static void fail_before_response(gyre_proxy_t *self, const char *stage, const char *err)
{
    drop_conn(self, 0);
    if (!self->client_gone)
        respond_upstream_error(self, stage, err);
}

/* Reads the response: the head first, then the body in its framing. */
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
                drop_conn(self, 0);
                self->reused = 0;
                self->connecting = gyre_upstream_connect(self->up, on_connected, self);
                return;
            }
            fail_before_response(self, "head", "the connection closed before a response");
            return;
        }
        gyre_http1_response_t res;
        for (;;) {
            ssize_t n = gyre_http1_parse_response((*input)->bytes, (*input)->size, &res);
            if (n == -EAGAIN) {
                h2o_timeout_link(self->up->loop, &self->up->io_timeout, &self->io_entry);
                return;
            }
            if (n < 0) {
                fail_before_response(self, "head",
                                     n == -E2BIG ? "the response head is too large"
                                                 : "the response is not valid HTTP/1.1");
                return;
            }
            if (res.status >= 100 && res.status < 200) {
                h2o_buffer_consume(input, (size_t)n); /* 1xx: informational, the real head follows */
                continue;
            }
            self->head_done = 1;
            self->keep_alive = res.keep_alive;
            self->chunked = res.chunked;
            int no_body = h2o_memis(self->req->method.base, self->req->method.len, H2O_STRLIT("HEAD")) ||
                          res.status == 204 || res.status == 304;
            self->body_left = no_body ? 0 : res.chunked ? SIZE_MAX : res.content_length;
            if (self->body_left == SIZE_MAX && !res.chunked)
                self->keep_alive = 0; /* the body ends when the connection does */
            start_response(self, &res);
            h2o_buffer_consume(input, (size_t)n);
            break;
        }
        if (self->body_left == 0 && !self->chunked) {
            finish_body(self, NULL);
            return;
        }
    }

    /* The body. */
    if ((*input)->size != 0) {
        if (self->chunked) {
            size_t len = (*input)->size, used = 0;
            int r = gyre_http1_decode_chunked(&self->chunk, (*input)->bytes, &len, &used);
            push_body(self, (*input)->bytes, len);
            h2o_buffer_consume(input, used);
            if (r < 0) {
                finish_body(self, "invalid chunked encoding");
                return;
            }
            if (r == 1) {
                if ((*input)->size != 0)
                    self->keep_alive = 0;
                finish_body(self, NULL);
                return;
            }
        } else {
            size_t take = (*input)->size;
            if (self->body_left != SIZE_MAX && take > self->body_left) {
                take = self->body_left;
                self->keep_alive = 0; /* bytes past the body: the connection cannot be trusted */
            }
            push_body(self, (*input)->bytes, take);
            h2o_buffer_consume(input, (*input)->size);
            if (self->body_left != SIZE_MAX) {
                self->body_left -= take;
                if (self->body_left == 0) {
                    finish_body(self, NULL);
                    return;
                }
            }
        }
    }
    if (err != NULL) {
        finish_body(self, self->body_left == SIZE_MAX && !self->chunked ? NULL : "the connection closed mid-response");
        return;
    }
    if (self->recv->size >= RELAY_HIGH_WATER) {
        /* The client reads slower than the provider writes: stop reading
         * from the provider until the client has taken what is buffered.
         * Waiting on the client is not the provider's delay, so no timer. */
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
        fail_before_response(self, "head", "I/O timeout");
    else
        finish_body(self, "I/O timeout");
}

static void on_write_done(h2o_socket_t *sock, const char *err)
{
    /* Reading starts with the write, and a connection that fails a write
     * fails its reads too: the read path handles it (and decides whether a
     * second try is safe), and the I/O timeout bounds the rest. */
    (void)sock;
    (void)err;
}

static void send_request(gyre_proxy_t *self)
{
    h2o_socket_t *sock = self->conn->sock;
    sock->data = self;
    self->conn->requests++;
    self->attempts++;
    h2o_socket_write(sock, self->reqbufs, self->reqbufs[1].len != 0 ? 2 : 1, on_write_done);
    h2o_socket_read_start(sock, on_read);
    h2o_timeout_link(self->up->loop, &self->up->io_timeout, &self->io_entry);
}

static void on_connected(gyre_upconn_t *conn, const char *err, void *data)
{
    gyre_proxy_t *self = data;
    self->connecting = NULL;
    if (err != NULL) {
        fail_before_response(self, "connect", err);
        return;
    }
    self->conn = conn;
    send_request(self);
}

static void on_dispose(void *p)
{
    gyre_proxy_t *self = p;
    drop_conn(self, 0);
    if (self->is_sse)
        gyre_sse_dispose(&self->sse);
    h2o_buffer_dispose(&self->recv);
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
    gyre_target_ref_t *t = h2o_mem_alloc_pool(&req->pool, sizeof(*t));
    *t = *target;
    self->target = t;
    self->io_entry.cb = on_io_timeout;
    h2o_buffer_init(&self->recv, &h2o_socket_buffer_prototype);
    h2o_doublebuffer_init(&self->sending, &h2o_socket_buffer_prototype);
    w->inflight++;
    self->reqbufs[0] = build_head(self, path, body.len, gyre_request_id(w, req));
    self->reqbufs[1] = body;
    if ((self->conn = gyre_upstream_take_idle(self->up)) != NULL) {
        self->reused = 1;
        send_request(self);
    } else {
        self->connecting = gyre_upstream_connect(self->up, on_connected, self);
    }
}
