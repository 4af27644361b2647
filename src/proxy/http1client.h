/*
 * The upstream HTTP/1 client: one request to a provider and its answer, as
 * h2o's http1client has it (lib/common/http1client.c).  It takes a pooled
 * keep-alive connection or opens one (upstream.c), writes the request, reads
 * the head (http1.c's parser; 1xx answers skipped) and the body as its
 * framing says (content-length, chunked, or until close), and reports each
 * step to its owner through a table of callbacks:
 *
 *   on_head → on_body … → on_body_end          the answer
 *   on_error                                    no head: connect, TLS, the head itself, or the idle bound
 *
 * Errors are constants compared by pointer: the gyre_http1client_error_*
 * below, upstream.c's gyre_upstream_error_*, h2o's h2o_socket_error_*, or
 * whatever h2o's resolver and TLS handshake said (their text is only for
 * people).  The owner may close the client from any callback (it then
 * returns -1 from on_body); the client touches nothing of itself after a
 * callback that may have closed it.
 *
 * Bounds: the head at GYRE_HTTP1_MAX_HEAD bytes and GYRE_HTTP1_MAX_HEADERS
 * headers (error_head_too_large, error_too_many_headers); each wait for bytes
 * at the provider's timeout_ms (error_io_timeout, the upstream's io_timeout);
 * the body is the owner's to bound (on_body), and so is the memory it holds
 * for a slow reader (gyre_http1client_pause).
 */
#ifndef GYRE_PROXY_HTTP1CLIENT_H
#define GYRE_PROXY_HTTP1CLIENT_H

#include <h2o.h>

#include "proxy/http1.h"
#include "proxy/upstream.h"

extern const char gyre_http1client_error_io_timeout[];          /* no byte within the idle bound */
extern const char gyre_http1client_error_closed_before_head[];  /* the connection closed before a head */
extern const char gyre_http1client_error_invalid_head[];        /* the head is not valid HTTP/1.1 */
extern const char gyre_http1client_error_head_too_large[];      /* past GYRE_HTTP1_MAX_HEAD bytes */
extern const char gyre_http1client_error_too_many_headers[];    /* past GYRE_HTTP1_MAX_HEADERS headers */
extern const char gyre_http1client_error_invalid_chunked[];     /* the chunked framing is broken */
extern const char gyre_http1client_error_closed_mid_body[];     /* the connection closed before the body's end */

/* Where an error happened, for the owner's words ("connect", "head", "body"). */
typedef enum gyre_http1client_phase {
    GYRE_HTTP1CLIENT_CONNECT = 0,
    GYRE_HTTP1CLIENT_HEAD,
    GYRE_HTTP1CLIENT_BODY,
} gyre_http1client_phase_t;

typedef struct gyre_http1client gyre_http1client_t;

typedef struct gyre_http1client_callbacks {
    /* The answer's head; `res` points into the read buffer and lives for this call only. */
    void (*on_head)(gyre_http1client_t *c, const gyre_http1_response_t *res);
    /* Body bytes, unframed.  Returns 0 to read on, -1 when the owner closed the client (the call is over). */
    int (*on_body)(gyre_http1client_t *c, const char *bytes, size_t len);
    /* The body ended: `err` NULL when it ended as its framing said (then c->keep_alive says whether the
     * connection may carry another request), else one of the errors above or the socket's. */
    void (*on_body_end)(gyre_http1client_t *c, const char *err);
    /* A read of the body was taken and the answer goes on: the owner may pause the client here. */
    void (*on_body_read)(gyre_http1client_t *c);
    /* The call failed before its head was complete. */
    void (*on_error)(gyre_http1client_t *c, gyre_http1client_phase_t phase, const char *err);
    /* A pooled connection that the provider had just closed never saw the request: it goes again on a new
     * connection (once), and the owner may count it. */
    void (*on_resend)(gyre_http1client_t *c);
} gyre_http1client_callbacks_t;

/* Embedded in its owner (proxy.c's gyre_proxy_t); the fields are the owner's to read, not to write. */
struct gyre_http1client {
    const gyre_http1client_callbacks_t *cb;
    void *data; /* the owner's */
    gyre_upstream_t *up;
    gyre_upconnect_t *connecting; /* a new connection on its way, or NULL */
    gyre_upconn_t *conn;          /* the connection the request went on, or NULL */
    int reused;                   /* conn came from the pool */
    int head_only;                /* the request was HEAD: its answer has no body */
    const h2o_iovec_t *bufs;      /* the request, the owner's until the call ends */
    size_t nbufs;
    h2o_timeout_entry_t io_entry; /* the idle bound: each wait for bytes */
    int head_done;
    size_t head_scanned; /* bytes of the head already searched for a line end */
    int keep_alive;      /* the connection may carry another request once the body is read */
    int chunked;
    gyre_http1_chunked_t chunk;
    size_t body_left; /* content-length still to come; SIZE_MAX: until close (or the chunked end) */
};

void gyre_http1client_init(gyre_http1client_t *c, const gyre_http1client_callbacks_t *cb, void *data);
/* Sends `bufs` (which must live until the call ends) to `up`, on a pooled connection when there is one (the
 * request is written before this returns) or a new one; the answer comes through the callbacks. */
void gyre_http1client_start(gyre_http1client_t *c, gyre_upstream_t *up, const h2o_iovec_t *bufs, size_t nbufs,
                            int head_only);
/* Ends the call at once: a connection on its way is cancelled, the one in use goes back to the pool when
 * `reusable` (its answer was read whole) or is closed.  No callback follows.  Safe when nothing is open. */
void gyre_http1client_close(gyre_http1client_t *c, int reusable);
/* Stops reading the answer (the owner holds enough), and starts again; the idle bound waits meanwhile. */
void gyre_http1client_pause(gyre_http1client_t *c);
void gyre_http1client_resume(gyre_http1client_t *c);

#endif
