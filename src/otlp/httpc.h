/*
 * A small blocking HTTP/1.1 client for the OTLP exporter thread: one POST
 * per connection (Connection: close), over TCP or TLS, every step bounded
 * by one deadline.  It runs on the exporter's own thread, never on an event
 * loop, which is why blocking is fine here.
 *
 * Errors are negative errnos with `err` filled; an error text never holds a
 * header value (they may be secrets).
 */
#ifndef GYRE_OTLP_HTTPC_H
#define GYRE_OTLP_HTTPC_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gyre_httpc_url {
    int https;
    char host[256]; /* without the brackets of an IPv6 literal */
    uint16_t port;
    char path[1024]; /* "/" when the URL has none; the query string included */
} gyre_httpc_url_t;

/* Parses http(s)://host[:port][/path].  0, or -EINVAL. */
int gyre_httpc_parse_url(const char *url, gyre_httpc_url_t *u);

/* A TLS context that verifies the server's certificate for `host` against the system's anchors and `ca_file` (may be NULL). */
SSL_CTX *gyre_httpc_ssl_create(const char *host, const char *ca_file, char *err, size_t errlen);

typedef struct gyre_httpc_header {
    const char *name, *value;
} gyre_httpc_header_t;

/*
 * POSTs `body` to `u` and reads the answer's status (the body is read and
 * discarded, up to a bound).  `ssl` is needed for https.  Returns 0 with
 * *status set, -ETIMEDOUT when `timeout_ms` ran out, or another negative
 * errno for a connection that failed (refused, reset, TLS).
 */
int gyre_httpc_post(const gyre_httpc_url_t *u, SSL_CTX *ssl, const gyre_httpc_header_t *headers, size_t nheaders,
                    const char *content_type, const char *body, size_t len, unsigned timeout_ms, int *status,
                    char *err, size_t errlen);

/* The same as a GET with no body (the health probes of control/probe.c): the status only, the answer drained up
 * to the same bound, the whole exchange within timeout_ms. */
int gyre_httpc_get(const gyre_httpc_url_t *u, SSL_CTX *ssl, const gyre_httpc_header_t *headers, size_t nheaders,
                   unsigned timeout_ms, int *status, char *err, size_t errlen);

#endif
