/*
 * Reading HTTP/1.x responses from providers: the status line and headers,
 * and chunked transfer decoding.  Both take bytes as they arrive from the
 * network and never read past what they were given; both are fuzzed
 * (fuzz/fuzz_http1.c).  The header parser points into the caller's buffer
 * and copies nothing.
 */
#ifndef GYRE_PROXY_HTTP1_H
#define GYRE_PROXY_HTTP1_H

#include <stddef.h>
#include <sys/types.h>

#define GYRE_HTTP1_MAX_HEADERS 100
#define GYRE_HTTP1_MAX_HEAD (64 * 1024)

typedef struct gyre_http1_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} gyre_http1_header_t;

typedef struct gyre_http1_response {
    int minor_version;
    int status;
    const char *reason;
    size_t reason_len;
    gyre_http1_header_t headers[GYRE_HTTP1_MAX_HEADERS];
    size_t num_headers;
    /* The body's framing, from the headers. */
    int chunked;
    size_t content_length; /* SIZE_MAX when the response has none */
    int keep_alive;        /* the connection may carry another request */
} gyre_http1_response_t;

/*
 * Parses a response head from buf[0..len).  Returns the head's length
 * (headers and the blank line), -EAGAIN when more bytes are needed, -EBADMSG
 * when the bytes are not a valid response, -E2BIG when the head is longer
 * than GYRE_HTTP1_MAX_HEAD or has more than GYRE_HTTP1_MAX_HEADERS headers.
 */
ssize_t gyre_http1_parse_response(const char *buf, size_t len, gyre_http1_response_t *out);

typedef struct gyre_http1_chunked {
    int state;
    size_t remaining; /* bytes left in the current chunk */
    size_t hex_digits;
} gyre_http1_chunked_t;

/*
 * Decodes chunked data in place: buf[0..*len) in, the decoded bytes out at
 * the front of buf with *len set to their count.  *consumed is set to the
 * input bytes used; the caller keeps buf[*consumed..len) (a partial chunk
 * header) for the next call.  Returns 1 when the final chunk and trailers
 * have been read, 0 when more input is needed, -EBADMSG on malformed input.
 */
int gyre_http1_decode_chunked(gyre_http1_chunked_t *d, char *buf, size_t *len, size_t *consumed);

#endif
