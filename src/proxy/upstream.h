/*
 * Connections to providers, per worker.
 *
 * Each worker keeps its own keep-alive pool per provider: idle connections
 * stay registered with the worker's event loop (so a provider closing one is
 * noticed at once) and are reused most-recent-first.  Nothing is shared
 * between workers, so the pool needs no lock, and a connection never
 * leaves its loop.  (h2o 2.2's shared socket pool detaches and re-attaches
 * the socket around every request — five system calls each time — which is
 * what this replaces; see docs/decisions.md.)
 *
 * New connections: DNS through h2o's resolver threads when the host is a
 * name, TCP connect, then TLS for https with the provider's SSL_CTX (SNI and
 * hostname verification on by default), all bounded by the provider's timeout.
 */
#ifndef GYRE_PROXY_UPSTREAM_H
#define GYRE_PROXY_UPSTREAM_H

#include <h2o.h>

#include "config/config.h"

typedef struct gyre_upstream {
    const gyre_provider_conf_t *conf;
    h2o_loop_t *loop;
    h2o_multithread_receiver_t *getaddr_receiver;
    SSL_CTX *ssl_ctx;             /* NULL for http */
    struct sockaddr_storage addr; /* when the host is an IP address */
    socklen_t addrlen;            /* 0 when the host needs DNS */
    h2o_timeout_t io_timeout;     /* connect, and each wait for bytes */
    h2o_timeout_t idle_timeout;   /* how long a pooled connection is kept */
    h2o_timeout_t zero_timeout;   /* "on the next turn of the loop" */
    h2o_linklist_t idle;          /* gyre_upconn_t, most recent first */
    size_t nidle;
    size_t next_key; /* round robin over conf->keys */
    h2o_iovec_t host_header;
} gyre_upstream_t;

/* One connection to a provider.  Owned by the pool while idle, by the
 * request (proxy.c) while in use; freed when its socket is closed. */
typedef struct gyre_upconn {
    h2o_socket_t *sock;
    gyre_upstream_t *up;
    h2o_linklist_t link;
    h2o_timeout_entry_t idle_entry;
    unsigned requests; /* served on this connection so far */
} gyre_upconn_t;

/* A new connection's own errors, compared by pointer; the others are h2o's (h2o_socket_error_*, the resolver's,
 * the TLS handshake's). */
extern const char gyre_upstream_error_connect_timeout[]; /* no connection within the provider's timeout_ms */
extern const char gyre_upstream_error_socket_create[];   /* no socket could be made (descriptors, memory) */

typedef struct gyre_upconnect gyre_upconnect_t;
/* `err` is NULL on success; then `conn` is the caller's. */
typedef void (*gyre_upconnect_cb)(gyre_upconn_t *conn, const char *err, void *data);

void gyre_upstream_init(gyre_upstream_t *up, const gyre_provider_conf_t *conf, h2o_loop_t *loop,
                        h2o_multithread_receiver_t *getaddr_receiver, SSL_CTX *ssl_ctx);

/* A pooled connection, or NULL when there is none. */
/* The pool is let go (its configuration was replaced and no request uses it): idle connections are closed and
 * its timeouts leave the loop.  0; or -EBUSY when a timeout still had an entry (a bug: then `up` must stay
 * allocated, as the loop still points into it). */
int gyre_upstream_dispose(gyre_upstream_t *up);

gyre_upconn_t *gyre_upstream_take_idle(gyre_upstream_t *up);
/* Gives a connection whose last response was read completely back to the pool. */
void gyre_upstream_release(gyre_upconn_t *conn);
/* Closes a connection that must not be reused. */
void gyre_upconn_close(gyre_upconn_t *conn);

/*
 * Opens a new connection.  `cb` is always called later, from the loop,
 * unless the attempt is cancelled first; the returned handle is valid until
 * then.
 */
gyre_upconnect_t *gyre_upstream_connect(gyre_upstream_t *up, gyre_upconnect_cb cb, void *data);
void gyre_upconnect_cancel(gyre_upconnect_t *c);

#endif
