/*
 * Writing gyre's own answers: JSON bodies, errors in OpenAI's shape, and the
 * request id that every answer carries.
 */
#ifndef GYRE_PROXY_RESPOND_H
#define GYRE_PROXY_RESPOND_H

#include <h2o.h>

#include "dialect/client.h"
#include "dialect/openai.h"
#include "proxy/context.h"

#define GYRE_REQUEST_ID_MAX 128

/*
 * The request's id: the client's x-request-id when it sent a sane one
 * (printable, at most GYRE_REQUEST_ID_MAX bytes), else a fresh random one.
 * Added to the response headers once; later calls return the same value.
 */
h2o_iovec_t gyre_request_id(gyre_ctx_t *c, h2o_req_t *req);

/* The body gyre_respond_json last sent for `req` on this thread (empty when none), forgotten once taken: the
 * trace of a request gyre answered itself keeps it. */
h2o_iovec_t gyre_respond_take_body(h2o_req_t *req);

/* Sends `body` (copied into the request's pool) as application/json. */
void gyre_respond_json(h2o_req_t *req, int status, const char *body, size_t len);
/* Sends `err` in OpenAI's error shape. */
void gyre_respond_error(h2o_req_t *req, const gyre_api_error_t *err);
/* Sends `err` in the error shape of the client's API (Anthropic's for /v1/messages). */
void gyre_respond_client_error(h2o_req_t *req, const gyre_client_dialect_t *client, const gyre_api_error_t *err);

#endif
