/* POST /v1/traces (see endpoint.h). */
#include "otlp/endpoint.h"

#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "otlp/otlp.h"
#include "server/respond.h"
#include "trace/writer.h"

/* google.rpc.Code values for the Status of an error answer. */
#define RPC_INVALID_ARGUMENT 3
#define RPC_UNIMPLEMENTED 12
#define RPC_UNAVAILABLE 14

typedef struct ingest_ctx {
    gyre_worker_t *w;
    size_t dropped;
} ingest_ctx_t;

static void store_cb(const gyre_trace_t *t, void *arg)
{
    ingest_ctx_t *c = arg;
    /* Straight to the writer: an ingested span is not a call through this gateway (no metrics, no export). */
    if (gyre_writer_submit(c->w->server->writer, c->w->id, t) != 0)
        c->dropped++;
}

static void pb_varint(gyre_buf_t *b, uint64_t v)
{
    char tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v != 0);
    gyre_buf_append(b, tmp, n);
}

static void pb_string(gyre_buf_t *b, unsigned field, const char *s, size_t n)
{
    pb_varint(b, (uint64_t)field << 3 | 2);
    pb_varint(b, n);
    gyre_buf_append(b, s, n);
}

static void send_body(h2o_req_t *req, int status, int protobuf, gyre_buf_t *b)
{
    if (!protobuf) {
        gyre_respond_json(req, status, b->base != NULL ? b->base : "", b->len);
        return;
    }
    req->res.status = status;
    req->res.reason = status == 200 ? "OK" : status == 400 ? "Bad Request" : status == 415 ? "Unsupported Media Type"
                                                                                            : "Service Unavailable";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/x-protobuf"));
    h2o_iovec_t body = h2o_strdup(&req->pool, b->base != NULL ? b->base : "", b->len);
    req->res.content_length = body.len;
    h2o_send_inline(req, body.base, body.len);
}

/* An error as a google.rpc.Status {1: code, 2: message}, in the request's encoding. */
static void respond_status(h2o_req_t *req, int http, int protobuf, int code, const char *msg)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 4096);
    if (protobuf) {
        pb_varint(&b, 1 << 3 | 0);
        pb_varint(&b, (uint64_t)code);
        pb_string(&b, 2, msg, strlen(msg));
    } else {
        gyre_buf_appendf(&b, "{\"code\":%d,\"message\":", code);
        gyre_buf_append_json_string(&b, msg, strlen(msg));
        gyre_buf_appends(&b, "}");
    }
    send_body(req, http, protobuf, &b);
    gyre_buf_dispose(&b);
}

static h2o_iovec_t header(h2o_req_t *req, const h2o_token_t *token)
{
    ssize_t i = h2o_find_header(&req->headers, token, -1);
    return i == -1 ? h2o_iovec_init(NULL, 0) : req->headers.entries[i].value;
}

/* The media type without parameters, trimmed. */
static h2o_iovec_t media_type(h2o_iovec_t v)
{
    size_t n = 0;
    while (n < v.len && v.base[n] != ';')
        n++;
    while (n > 0 && (v.base[n - 1] == ' ' || v.base[n - 1] == '\t'))
        n--;
    return h2o_iovec_init(v.base, n);
}

int gyre_otlp_handle(gyre_worker_t *w, h2o_req_t *req)
{
    h2o_iovec_t ct = media_type(header(req, H2O_TOKEN_CONTENT_TYPE));
    int protobuf = h2o_lcstris(ct.base, ct.len, H2O_STRLIT("application/x-protobuf"));
    int json = h2o_lcstris(ct.base, ct.len, H2O_STRLIT("application/json"));
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        gyre_api_error_t err;
        gyre_api_error_set(&err, 405, "invalid_request_error", "method_not_allowed", NULL,
                           "%.*s /v1/traces is not allowed; use POST (OTLP/HTTP)", (int)req->method.len,
                           req->method.base);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("POST"));
        gyre_respond_error(req, &err);
        return 0;
    }
    if (!protobuf && !json) {
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "Content-Type '%.*s' is not supported; send application/json or application/x-protobuf",
                 (int)(ct.len < 100 ? ct.len : 100), ct.len ? ct.base : "");
        respond_status(req, 415, 0, RPC_UNIMPLEMENTED, msg);
        return 0;
    }
    h2o_iovec_t ce = header(req, H2O_TOKEN_CONTENT_ENCODING);
    if (ce.len != 0 && !h2o_lcstris(ce.base, ce.len, H2O_STRLIT("identity"))) {
        char msg[200];
        snprintf(msg, sizeof(msg), "Content-Encoding '%.*s' is not supported; send the body uncompressed",
                 (int)(ce.len < 60 ? ce.len : 60), ce.base);
        respond_status(req, 415, protobuf, RPC_UNIMPLEMENTED, msg);
        return 0;
    }
    if (w->server->writer == NULL) {
        respond_status(req, 503, protobuf, RPC_UNAVAILABLE,
                       "this gateway does not store traces (store: {traces: true} turns the store on)");
        return 0;
    }
    ingest_ctx_t ctx = {w, 0};
    gyre_otlp_ingest_result_t res;
    if (gyre_otlp_ingest(req->entity.base, req->entity.len, protobuf ? GYRE_OTLP_PROTOBUF : GYRE_OTLP_JSON, store_cb,
                         &ctx, &res) != 0) {
        respond_status(req, 400, protobuf, RPC_INVALID_ARGUMENT, res.message);
        return 0;
    }
    size_t rejected = res.rejected + ctx.dropped;
    gyre_buf_t b;
    gyre_buf_init(&b, 4096);
    if (rejected != 0) {
        char msg[400];
        if (res.rejected != 0)
            snprintf(msg, sizeof(msg), "%zu span(s) rejected; the first: %s", res.rejected, res.message);
        else
            snprintf(msg, sizeof(msg), "%zu span(s) dropped: the trace writer is at its bound", ctx.dropped);
        if (protobuf) {
            gyre_buf_t ps;
            gyre_buf_init(&ps, 1024);
            pb_varint(&ps, 1 << 3 | 0);
            pb_varint(&ps, rejected);
            pb_string(&ps, 2, msg, strlen(msg));
            pb_string(&b, 1, ps.base, ps.len);
            gyre_buf_dispose(&ps);
        } else {
            gyre_buf_appendf(&b, "{\"partialSuccess\":{\"rejectedSpans\":\"%zu\",\"errorMessage\":", rejected);
            gyre_buf_append_json_string(&b, msg, strlen(msg));
            gyre_buf_appends(&b, "}}");
        }
    } else if (!protobuf) {
        gyre_buf_appends(&b, "{}");
    }
    send_body(req, 200, protobuf, &b);
    gyre_buf_dispose(&b);
    return 0;
}
