/* POST /v1/traces (see endpoint.h). */
#include "otlp/endpoint.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "common/buf.h"
#include "otlp/otlp.h"
#include "trace/record.h"
#include "trace/writer.h"

/* google.rpc.Code values for the Status of an error answer. */
#define RPC_INVALID_ARGUMENT 3
#define RPC_UNIMPLEMENTED 12
#define RPC_UNAVAILABLE 14

typedef struct ingest_ctx {
    const gyre_otlp_endpoint_t *ep;
    h2o_req_t *req;
    size_t dropped;
} ingest_ctx_t;

static void store_cb(const gyre_trace_t *t, void *arg)
{
    ingest_ctx_t *c = arg;
    /* Redacted as a call's trace is (the root's `redact:`), before it is stored. */
    gyre_trace_t r = *t;
    gyre_trace_redact(&r, &c->req->pool, c->ep->redact);
    /* Straight to the writer: an ingested span is not a call through this gateway (no metrics, no export). */
    if (gyre_writer_submit(c->ep->writer, c->ep->worker_id, &r) != 0)
        c->dropped++;
}

/* A gzip body (what the OpenTelemetry Collector's otlphttp exporter sends by default), inflated into the pool.
 * 0, -E2BIG past `max`, or -EINVAL when it is not gzip. */
static int gunzip(h2o_req_t *req, h2o_iovec_t in, size_t max, h2o_iovec_t *out)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        return -EINVAL;
    gyre_buf_t b;
    gyre_buf_init(&b, max);
    z.next_in = (Bytef *)in.base;
    z.avail_in = (uInt)in.len;
    int rc = 0;
    for (;;) {
        if (b.len >= max) {
            rc = -E2BIG;
            break;
        }
        size_t room = max - b.len < 64 * 1024 ? max - b.len : 64 * 1024;
        if (gyre_buf_reserve(&b, room) != 0) {
            rc = -E2BIG;
            break;
        }
        z.next_out = (Bytef *)b.base + b.len;
        z.avail_out = (uInt)room;
        int zr = inflate(&z, Z_NO_FLUSH);
        b.len += room - z.avail_out;
        if (zr == Z_STREAM_END)
            break;
        /* An error, or input that ended inside the stream (nothing left to read, room left to write). */
        if ((zr != Z_OK && zr != Z_BUF_ERROR) || (z.avail_in == 0 && z.avail_out != 0)) {
            rc = -EINVAL;
            break;
        }
    }
    if (rc == 0)
        *out = h2o_strdup(&req->pool, b.base != NULL ? b.base : "", b.len);
    inflateEnd(&z);
    gyre_buf_dispose(&b);
    return rc;
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

/* Sends an answer in the request's encoding.  Nothing here is a model call, so nothing keeps the body for a
 * trace: the endpoint answers through h2o itself. */
static void send_body(h2o_req_t *req, int status, int protobuf, gyre_buf_t *b)
{
    if (gyre_buf_failed(b) != 0) {
        /* One check for every append that built the answer (pb_varint, pb_string and the JSON): bounded messages
         * make it unreachable, and an answer with a piece missing is never sent. */
        status = 500;
        gyre_buf_reset(b);
    }
    req->res.status = status;
    req->res.reason = status == 200   ? "OK"
                      : status == 400 ? "Bad Request"
                      : status == 405 ? "Method Not Allowed"
                      : status == 413 ? "Payload Too Large"
                      : status == 415 ? "Unsupported Media Type"
                      : status == 500 ? "Internal Server Error"
                                      : "Service Unavailable";
    if (protobuf)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                       H2O_STRLIT("application/x-protobuf"));
    else
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
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

int gyre_otlp_endpoint_handle(const gyre_otlp_endpoint_t *ep, h2o_req_t *req)
{
    h2o_iovec_t ct = media_type(header(req, H2O_TOKEN_CONTENT_TYPE));
    int protobuf = h2o_lcstris(ct.base, ct.len, H2O_STRLIT("application/x-protobuf"));
    int json = h2o_lcstris(ct.base, ct.len, H2O_STRLIT("application/json"));
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        /* A google.rpc.Status as every other error of this endpoint (OTLP/HTTP), in JSON: the method says
         * nothing of the encoding the client reads. */
        char msg[200];
        snprintf(msg, sizeof(msg), "%.*s /v1/traces is not allowed; use POST (OTLP/HTTP)",
                 (int)(req->method.len < 32 ? req->method.len : 32), req->method.base);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("POST"));
        respond_status(req, 405, 0, RPC_UNIMPLEMENTED, msg);
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
    h2o_iovec_t ce = header(req, H2O_TOKEN_CONTENT_ENCODING), body = req->entity;
    if (ce.len != 0 && h2o_lcstris(ce.base, ce.len, H2O_STRLIT("gzip"))) {
        int r = gunzip(req, req->entity, ep->max_body_bytes, &body);
        if (r != 0) {
            char msg[200];
            if (r == -E2BIG)
                snprintf(msg, sizeof(msg), "the gzip body inflates past %zu bytes (max_body_bytes)", ep->max_body_bytes);
            else
                snprintf(msg, sizeof(msg), "the body is not valid gzip (Content-Encoding: gzip)");
            respond_status(req, r == -E2BIG ? 413 : 400, protobuf, RPC_INVALID_ARGUMENT, msg);
            return 0;
        }
    } else if (ce.len != 0 && !h2o_lcstris(ce.base, ce.len, H2O_STRLIT("identity"))) {
        char msg[200];
        snprintf(msg, sizeof(msg), "Content-Encoding '%.*s' is not supported; send it uncompressed or as gzip",
                 (int)(ce.len < 60 ? ce.len : 60), ce.base);
        respond_status(req, 415, protobuf, RPC_UNIMPLEMENTED, msg);
        return 0;
    }
    if (ep->writer == NULL) {
        respond_status(req, 503, protobuf, RPC_UNAVAILABLE,
                       "this gateway does not store traces (store: {traces: true} turns the store on)");
        return 0;
    }
    ingest_ctx_t ctx = {ep, req, 0};
    gyre_otlp_ingest_result_t res;
    if (gyre_otlp_ingest(body.base, body.len, protobuf ? GYRE_OTLP_PROTOBUF : GYRE_OTLP_JSON, store_cb,
                         &ctx, &res) != 0) {
        respond_status(req, 400, protobuf, RPC_INVALID_ARGUMENT, res.message);
        return 0;
    }
    size_t rejected = res.rejected + ctx.dropped;
    int lost = 0; /* a piece of the answer did not fit its buffer (unreachable: the messages are bounded) */
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
            lost = gyre_buf_failed(&ps) != 0;
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
    send_body(req, lost ? 500 : 200, protobuf, &b);
    gyre_buf_dispose(&b);
    return 0;
}
