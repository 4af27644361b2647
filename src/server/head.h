/*
 * The framing checks RFC 9112 asks of a server that h2o 2.2.5 does not make.
 *
 * h2o reads a request's head with picohttpparser and then keeps the first
 * Content-Length, lets a Transfer-Encoding anywhere win over it, and turns an
 * obsolete folded line (obs-fold) into a header with an empty name.  A front
 * proxy that frames the same bytes differently (the last Content-Length, the
 * first Transfer-Encoding) would see other requests on the connection than
 * gyre does: request smuggling.  gyre_head_check re-reads the head's bytes and
 * says what gyre must do instead.  It is a pure function of the bytes, so it
 * is unit-tested and fuzzed without a socket (tests/unit/server_head.c,
 * fuzz/fuzz_http1_head.c); src/server/conn.c feeds it the head h2o parsed.
 */
#ifndef GYRE_SERVER_HEAD_H
#define GYRE_SERVER_HEAD_H

#include <stddef.h>

typedef enum gyre_head_verdict {
    GYRE_HEAD_OK = 0,
    /* Serve the request, then close the connection: it has both Content-Length and Transfer-Encoding (h2o reads
     * the body as chunked, as RFC 9112 §6.1 allows, and the RFC then requires the close), or Transfer-Encoding
     * in HTTP/1.0. */
    GYRE_HEAD_CLOSE,
    /* Answer 400 and close: `reason` says what is wrong (conflicting Content-Length values, obs-fold, ...). */
    GYRE_HEAD_BAD,
    /* Answer 431 and close: the head is longer than the limit (`head_len` says how long it is). */
    GYRE_HEAD_TOO_LARGE,
    /* The bytes do not start with one complete request head: nothing can be said (the caller does nothing). */
    GYRE_HEAD_UNPARSED,
} gyre_head_verdict_t;

typedef struct gyre_head_check {
    gyre_head_verdict_t verdict;
    const char *reason; /* GYRE_HEAD_BAD and GYRE_HEAD_CLOSE: one sentence, a static string with no client bytes */
    size_t head_len;    /* the head's bytes, request line to the empty line (0 when unparsed) */
    /* The request line as parsed (pointing into the bytes), so that a caller can check that these bytes are the
     * head of the request it is serving. */
    const char *method;
    size_t method_len;
    const char *path;
    size_t path_len;
} gyre_head_check_t;

/* The most headers, and the most bytes of a head, read: h2o's own limits (H2O_MAX_HEADERS, H2O_MAX_REQLEN), past
 * which h2o has already answered its own plain 400 before any handler runs. */
#define GYRE_HEAD_MAX_HEADERS 100
#define GYRE_HEAD_MAX_BYTES (8192 + 4096 * 100)

/*
 * Checks the request head at the start of `bytes` (`len` bytes; what follows the head, a body or the next
 * request, is not read).  A head longer than `max_head_bytes` is GYRE_HEAD_TOO_LARGE whatever else it holds.
 * Then, in order: any header line without a name (obs-fold) is GYRE_HEAD_BAD, so is a Content-Length that is not
 * a decimal number or that differs from an earlier one (identical repeats are accepted, RFC 9112 §6.3), and so
 * is a second Transfer-Encoding line (h2o reads only the last, another reader the first); Content-Length with
 * Transfer-Encoding, or Transfer-Encoding in HTTP/1.0, is GYRE_HEAD_CLOSE.  Reads at most GYRE_HEAD_MAX_BYTES.
 */
void gyre_head_check(const char *bytes, size_t len, size_t max_head_bytes, gyre_head_check_t *out);

#endif
