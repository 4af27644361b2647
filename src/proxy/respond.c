/* gyre's own answers (see respond.h). */
#include "proxy/respond.h"

#include "common/rand.h"
#include "common/wire.h"
#include "dialect/client.h"

static const char *reason_of(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Error";
    }
}

static int sane_id(h2o_iovec_t v)
{
    if (v.len == 0 || v.len > GYRE_REQUEST_ID_MAX)
        return 0;
    for (size_t i = 0; i < v.len; i++)
        if (v.base[i] <= 0x20 || v.base[i] >= 0x7f)
            return 0;
    return 1;
}

h2o_iovec_t gyre_request_id(gyre_ctx_t *c, h2o_req_t *req)
{
    ssize_t i = h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("x-request-id"), -1);
    if (i != -1)
        return req->res.headers.entries[i].value;
    h2o_iovec_t id = {NULL, 0};
    i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);
    if (i != -1 && sane_id(req->headers.entries[i].value)) {
        id = req->headers.entries[i].value;
    } else {
        char *buf = h2o_mem_alloc_pool(&req->pool, 33); /* 32 hex digits and the NUL gyre_wire_hex_u64 adds */
        gyre_wire_hex_u64(buf, gyre_rand_next(&c->rng), 16);
        gyre_wire_hex_u64(buf + 16, gyre_rand_next(&c->rng), 16);
        id = h2o_iovec_init(buf, 32);
    }
    gyre_wire_add_answer_header(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), id.base, id.len);
    return id;
}

/* The last answer gyre built itself on this thread, for the trace of the request it answered (the handler's
 * end_local_call reads it right after, on the same thread). */
static __thread h2o_req_t *last_req;
static __thread h2o_iovec_t last_body;

h2o_iovec_t gyre_respond_take_body(h2o_req_t *req)
{
    h2o_iovec_t b = req == last_req ? last_body : h2o_iovec_init(NULL, 0);
    last_req = NULL;
    last_body = h2o_iovec_init(NULL, 0);
    return b;
}

void gyre_respond_json(h2o_req_t *req, int status, const char *body, size_t len)
{
    /* What h2o_send_inline does, with its one copy into the pool kept for the trace (gyre_respond_take_body)
     * instead of a second one: /metrics and /api answers can be megabytes. */
    static h2o_generator_t generator = {NULL, NULL};
    h2o_iovec_t buf = h2o_strdup(&req->pool, body, len);
    last_req = req;
    last_body = buf;
    req->res.status = status;
    req->res.reason = reason_of(status);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    /* gyre's answers have a length, so clients need no chunked decoding for them. */
    req->res.content_length = len;
    h2o_start_response(req, &generator);
    if (h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD")))
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    else
        h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
}

void gyre_respond_error(h2o_req_t *req, const gyre_api_error_t *err)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 4096);
    gyre_api_error_to_json(err, &b);
    gyre_respond_json(req, err->status, b.base, b.len);
    gyre_buf_dispose(&b);
}

void gyre_respond_client_error(h2o_req_t *req, const gyre_client_dialect_t *client, const gyre_api_error_t *err)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 4096);
    client->error_body(err, &b);
    gyre_respond_json(req, err->status, b.base, b.len);
    gyre_buf_dispose(&b);
}
