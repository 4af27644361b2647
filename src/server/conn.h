/*
 * Client connections, below the handlers: gyre's own accept loop (so that it
 * sees accept's errno), the cap on connections (`max_connections`, all
 * workers together), what happens at the process's open-file limit, the
 * lingering close that lets an early answer (413) reach a client that is
 * still sending, and the RFC 9112 checks on each HTTP/1 request head
 * (src/server/head.h) with the answers they call for.
 *
 * The cap is shared rather than split per worker (as nginx's
 * worker_connections is): the kernel spreads connections over the workers'
 * SO_REUSEPORT listeners by a hash, so a per-worker share would refuse on one
 * worker while another has room, and the open-file limit it protects is the
 * process's.  A worker at the cap stops reading its listener (connections wait
 * in the kernel's backlog, they are not refused) and is woken when a slot frees
 * on any worker.  On EMFILE/ENFILE (or ENOBUFS/ENOMEM) a worker stops accepting
 * for GYRE_CONN_ACCEPT_PAUSE_MS instead of retrying at once: the connection
 * stays queued, so an immediate retry fails the same way, at 100 % CPU.
 */
#ifndef GYRE_SERVER_CONN_H
#define GYRE_SERVER_CONN_H

#include <h2o.h>
#include <stdint.h>

/* How long a worker stops accepting after accept() failed for want of a file descriptor or kernel memory. */
#define GYRE_CONN_ACCEPT_PAUSE_MS 100
/* The longest a lingering close waits for the next bytes from the client (nginx's lingering_timeout); linger_ms
 * bounds the whole. */
#define GYRE_CONN_LINGER_IDLE_MS 5000

/* Why a worker stopped accepting (gyre_accept_pauses_total{reason}). */
typedef enum gyre_accept_pause_reason {
    GYRE_PAUSE_MAX_CONNECTIONS, /* every max_connections slot is taken */
    GYRE_PAUSE_FD_LIMIT,        /* accept() failed with EMFILE or ENFILE */
    GYRE_PAUSE_NO_MEMORY,       /* accept() failed with ENOBUFS or ENOMEM */
    GYRE_PAUSE_REASONS
} gyre_accept_pause_reason_t;

/* A worker's share of the above (a member of gyre_worker_t; written by its worker only). */
typedef struct gyre_conn_worker {
    unsigned paused;          /* bits (1 << reason) of the reasons the listener is not read now */
    int waiting_for_slot;     /* atomic: 1 while paused at the cap, until a worker that frees a slot takes it */
    h2o_multithread_receiver_t slot_receiver; /* "a slot is free" from another worker */
    h2o_timeout_t pause_timeout; /* GYRE_CONN_ACCEPT_PAUSE_MS */
    h2o_timeout_entry_t pause_entry;
    h2o_timeout_t linger_timeout;      /* linger_ms */
    h2o_timeout_t linger_idle_timeout; /* GYRE_CONN_LINGER_IDLE_MS, or linger_ms when shorter */
    h2o_linklist_t lingering;          /* this worker's lingering closes (they stay reachable until closed) */
    uint64_t pauses[GYRE_PAUSE_REASONS]; /* times this worker stopped accepting, by reason (scrapes read them) */
} gyre_conn_worker_t;

struct gyre_worker;
struct gyre_server;

/* Sets up `w`'s accepting on its listener (w->listener, made with H2O_SOCKET_FLAG_DONT_READ) and starts it.  On
 * the worker's thread, after its h2o context exists. */
void gyre_conn_worker_start(struct gyre_worker *w);
/* Stops accepting for good and closes the listener (shutdown).  Open and lingering connections go on. */
void gyre_conn_worker_stop(struct gyre_worker *w);

/*
 * The RFC 9112 checks on `req`'s head, first thing in the handler.  Returns 1 when it answered the request
 * itself (400 for a framing fault or obs-fold, 431 for a head over max_header_bytes; in OpenAI's error shape, and
 * the connection closes after it) and 0 when the handler goes on; with Content-Length and Transfer-Encoding
 * together it goes on but the connection closes after the answer.  HTTP/2 requests are not checked (HPACK has
 * none of these ambiguities).
 */
int gyre_conn_check_head(struct gyre_worker *w, h2o_req_t *req);

/*
 * `req`'s connection will close after its answer while the client may still be sending (an answer before the
 * whole body was read): once h2o has closed it, gyre drains what the client sends on a duplicate of the socket,
 * up to linger_bytes and linger_ms, so that the client reads the answer instead of a reset.  Does nothing for a
 * connection gyre did not accept, when lingering is off, or when no file descriptor is left to duplicate.
 */
void gyre_conn_linger(h2o_req_t *req);

/* Client connections open now, all workers together (lingering closes included). */
uint64_t gyre_conn_open(struct gyre_server *s);

#endif
