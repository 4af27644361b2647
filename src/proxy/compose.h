/*
 * The one place an upstream request is composed: request line, headers and
 * (for a translated call) body, for every provider kind.
 *
 * Every value that reaches the request line or a header goes through
 * common/wire.h's rule for its kind: the model or deployment as one
 * percent-encoded path segment (dot-segments refused), the api-version as a
 * query value, the client's pass-through path checked as it came, the whole
 * target checked again once composed (no dot-segment, only the bytes RFC
 * 3986 allows), the method as a token, every header name a token and every
 * value free of control bytes and bounded.  So one attempt is exactly one
 * well-formed HTTP/1.1 request, whatever the client put in `model` or the
 * path (fuzz/fuzz_compose.c checks it with picohttpparser).
 *
 * Pure: no socket, no clock (the caller passes `now`), no global state; the
 * dialects' chat_request and auth_headers are the only calls out.
 */
#ifndef GYRE_PROXY_COMPOSE_H
#define GYRE_PROXY_COMPOSE_H

#include <h2o.h>

#include "common/buf.h"
#include "dialect/dialect.h"

/* The head of an upstream request is at most this long; a longer one (huge client headers) is refused with a
 * 400 rather than sent. */
#define GYRE_COMPOSE_HEAD_MAX (64 * 1024)

typedef enum gyre_compose_endpoint {
    GYRE_COMPOSE_CHAT = 0, /* an OpenAI chat completion (POST .../chat/completions, or the dialect's own path) */
    GYRE_COMPOSE_MESSAGES, /* an Anthropic Messages call passed to an Anthropic provider (POST .../messages) */
    GYRE_COMPOSE_OTHER,    /* another /v1 path passed through to an OpenAI-speaking provider */
} gyre_compose_endpoint_t;

/* One attempt's request, as the proxy knows it.  Everything is borrowed. */
typedef struct gyre_compose {
    const gyre_provider_conf_t *provider;
    h2o_iovec_t host;                 /* the Host header's value (the upstream's host[:port]) */
    gyre_compose_endpoint_t endpoint;
    int translated;                   /* the dialect writes path and body from chat->req (CHAT only) */
    h2o_iovec_t method;               /* OTHER: the client's method; the others are POST */
    h2o_iovec_t model;                /* the target's model or deployment; may be empty for OTHER */
    h2o_iovec_t client_path;          /* OTHER: the client's path with its query, as it came */
    const gyre_chat_call_t *chat;     /* for the dialect: chat_request (translated) and auth_headers */
    const char *key;                  /* the provider's secret, or NULL */
    long long now;                    /* unix seconds, for SigV4 */
    h2o_iovec_t request_id;           /* sent as x-request-id */
    const h2o_header_t *client_headers; /* the client's headers; those that make sense upstream are sent on */
    size_t nclient_headers;
    int has_body;                     /* a content-length is sent (even 0: the client sent a body) */
} gyre_compose_t;

/*
 * Composes one request: for a translated call the dialect's body is
 * appended to `body`; otherwise `body` is what the caller prepared (the
 * client's, model spliced) and is sent as it is.  `head` gets the request
 * line and headers, ending in the blank line.  Returns 0, or -1 with `err`:
 * 400 naming the field for a value that cannot be sent (model, path, a
 * header), 500 for a provider whose own configuration cannot be sent (its
 * key or base path).  The error never repeats a key; on error `head` is
 * left empty.
 */
int gyre_compose_request(const gyre_compose_t *in, gyre_buf_t *body, gyre_buf_t *head, gyre_api_error_t *err);

/* Whether the client's header `name` is kept from the provider: hop-by-hop, gyre's own business, the client's
 * credentials, where the client is (X-Forwarded-For and kin), or, for a translated call, its dialect's. */
int gyre_compose_drops_header(const char *name, size_t len, int translated);

#endif
