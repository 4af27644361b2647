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

#include "common/buf.h"

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

/*
 * The same POST, reading the answer's body into `answer` (the LLM judge,
 * src/loop/judge.c): framed by Content-Length, chunked coding or the
 * connection's close.  The byte bound is answer's maximum (set by the
 * caller; a larger body is -EMSGSIZE, a Content-Length over it fails before
 * reading); the time bound is timeout_ms for the whole exchange, as above.
 */
int gyre_httpc_post_read(const gyre_httpc_url_t *u, SSL_CTX *ssl, const gyre_httpc_header_t *headers,
                         size_t nheaders, const char *content_type, const char *body, size_t len, unsigned timeout_ms,
                         int *status, gyre_buf_t *answer, char *err, size_t errlen);

/*
 * The general request (the training backends, src/loop/train*.c): `method` is "GET" or "POST" (anything else is
 * -EINVAL); a POST sends Content-Length (0 when len is 0), and content_type when it is not NULL.  The answer's
 * body is read into `answer` (NULL: drained and dropped) with the bounds of gyre_httpc_post_read: answer's
 * maximum in bytes, timeout_ms for the whole exchange.
 */
int gyre_httpc_request(const gyre_httpc_url_t *u, SSL_CTX *ssl, const char *method,
                       const gyre_httpc_header_t *headers, size_t nheaders, const char *content_type, const char *body,
                       size_t len, unsigned timeout_ms, int *status, gyre_buf_t *answer, char *err, size_t errlen);

/* One part of a multipart/form-data body (RFC 7578). */
typedef struct gyre_httpc_part {
    const char *name;         /* the form field's name */
    const char *filename;     /* NULL: a plain field, else sent as the part's filename */
    const char *content_type; /* NULL: none (a plain field's text) */
    const char *data;
    size_t len;
} gyre_httpc_part_t;

/*
 * Appends a multipart/form-data body of `parts` to `out` (bounded by out's maximum: -E2BIG, out as it was) and
 * writes the matching "multipart/form-data; boundary=..." into content_type.  The boundary is one that no part
 * holds, derived from the parts (the same parts give the same bytes).  Names, filenames and content types are
 * checked, never escaped: 1 to 100 (filename 255) bytes of printable ASCII without '"' and '\' (-EINVAL, err
 * says which part).  The one composer of form bodies gyre sends.
 */
int gyre_httpc_multipart(const gyre_httpc_part_t *parts, size_t nparts, gyre_buf_t *out, char *content_type,
                         size_t ctlen, char *err, size_t errlen);
/* A GET reading the answer's body into `answer`, bounded as gyre_httpc_post_read (llama.cpp's GET /lora-adapters,
 * src/loop/serve.c). */
int gyre_httpc_get_read(const gyre_httpc_url_t *u, SSL_CTX *ssl, const gyre_httpc_header_t *headers, size_t nheaders,
                        unsigned timeout_ms, int *status, gyre_buf_t *answer, char *err, size_t errlen);

/* Decodes a whole chunked body (RFC 9112 7.1) in raw[0, len) into out: 1 when the last chunk and the trailers
 * are all there, 0 when more bytes are needed, -EPROTO on bad framing, -EMSGSIZE past out's maximum.  out is
 * appended to; a caller that decodes again after more bytes came resets it first. */
int gyre_httpc_chunked_decode(const char *raw, size_t len, gyre_buf_t *out);

#endif
