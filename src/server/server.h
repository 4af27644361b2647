/*
 * The server: one h2o event loop per worker thread, each with its own
 * SO_REUSEPORT listener and its own upstream socket pools, so workers share
 * nothing on the request path.  The main thread only starts the workers and
 * waits for SIGTERM/SIGINT, then asks each worker to stop accepting and to
 * finish what is in flight within the grace period.
 */
#ifndef GYRE_SERVER_H
#define GYRE_SERVER_H

#include <h2o.h>
#include <pthread.h>
#include <stdint.h>

#include "common/timer.h"
#include "common/version.h"
#include "config/config.h"
#include "proxy/context.h"
#include "server/conn.h"
#include "route/cache.h"
#include "route/keys.h"
#include "config/prices.h"
#include "route/route.h"

/* A worker thread: its context (what the proxy and the stages share, src/proxy/context.h) and what the server
 * needs to run it. */
typedef struct gyre_worker {
    gyre_ctx_t super; /* first: handlers find their worker from req->conn->ctx */
    struct gyre_server *server;
    pthread_t thread;
    int listen_fd;
    h2o_socket_t *listener;
    h2o_accept_ctx_t accept_ctx;
    h2o_multithread_receiver_t shutdown_receiver;
    h2o_multithread_message_t shutdown_message;
    h2o_multithread_receiver_t live_receiver; /* a new configuration is in force (src/server/live.c) */
    int live_ready;                           /* live_receiver is registered (under live.c's lock) */
    h2o_timeout_t grace_timeout;
    h2o_timeout_entry_t grace_entry;
    gyre_conn_worker_t conn; /* accepting, the cap's wake-ups, lingering closes (src/server/conn.h) */
} gyre_worker_t;

typedef struct gyre_server {
    /* The configuration gyre started with.  Only what a live change cannot change is read here (listen, workers,
     * the store, state, otlp, the connection bounds: src/server/live.c refuses a new value); the rest is read from
     * the generation in force, gen below (a request: its worker's, gyre_ctx_t's config). */
    gyre_config_t *config;
    /* The configuration in force and what is made from it (proxy/gen.h; src/server/live.c replaces it, under its
     * lock, and holds one reference).  The four fields after it point into it (the main thread's view; a worker
     * reads its own context's). */
    struct gyre_gen *gen;
    h2o_globalconf_t globalconf;
    SSL_CTX **upstream_ssl; /* per provider; NULL for http */
    gyre_cache_t **caches;  /* per route; NULL where the route has no cache (shared by every worker) */
    gyre_prices_t *prices;  /* the price table (read-only once loaded) */
    struct gyre_store *store;   /* the trace store the writer writes to */
    struct gyre_writer *writer; /* takes every request's trace from the workers */
    struct gyre_access *access; /* `auth:`'s keys and tokens, as digests (src/control/access.h); read-only */
    /* The control plane: each NULL when its feature is not configured. */
    struct gyre_state *state;         /* the control-plane database (src/control/state.h) */
    struct gyre_notify *notify;       /* notifiers' sender (src/control/notify.h) */
    struct gyre_overrides *overrides; /* what firing alerts do to routing (src/route/override.h) */
    struct gyre_alerts *alerts;       /* the alert engine (src/control/alerts.h) */
    struct gyre_limits *limits;       /* limits and budgets (src/control/limits.h) */
    struct gyre_keys *keys;           /* managed gateway keys (src/control/keys.h) */
    struct gyre_probe *probe;         /* active health checks (src/control/probe.h); always made, may be idle */
    struct gyre_access_log *access_log; /* `access_log:` (src/trace/access_log.h), NULL when off */
    struct gyre_scoring *scoring;       /* online scorers (src/loop/score.h), NULL without a store */
    struct gyre_cluster_sched *clusters; /* `clusters: every:` (src/loop/cluster.h), NULL without a store */
    struct gyre_loop_runner *loop;       /* the loop's runs (src/loop/looprun.h), NULL without state */
    char internal_key[96];               /* gyre_server_internal_key: minted once, wiped at exit */
    gyre_worker_t *workers;
    unsigned nworkers;
    int64_t started_us; /* unix microseconds (gyre_start_time_seconds) */
    size_t connections_open; /* atomic: client connections held, all workers; at most config->max_connections */
} gyre_server_t;

/* Runs until SIGTERM or SIGINT (SIGHUP reloads the configuration: src/server/live.h); returns the process exit
 * status. */
int gyre_server_run(gyre_config_t *config, unsigned nworkers);

/* Alerts (server/server_alerts.c): the overrides always, the engine when `alerts:` has rules.  0, or -1 after
 * logging why; stop ends the evaluator. */
int gyre_server_alerts_start(gyre_server_t *s);
void gyre_server_alerts_stop(gyre_server_t *s);
/* The alert families of /metrics (the engine's and its OTLP log sender's); 0 or -E2BIG. */
int gyre_server_alerts_metrics(gyre_server_t *s, gyre_buf_t *b);

/* The online scorers (server/server_scoring.c), when traces are stored in a file: s->scoring, and the judges'
 * internal key minted.  0 (s->scoring NULL when nothing is stored), or 1 after logging why. */
int gyre_server_scoring_start(gyre_server_t *s);
/* The internal key (control/access.h) this gyre's own threads call its listener with, minted on first use; NULL
 * when it cannot be. */
const char *gyre_server_internal_key(gyre_server_t *s);
/* http://host:port`path` of this gyre's listener (a wildcard listener on loopback). */
void gyre_server_self_url(const gyre_server_t *s, const char *path, char *url, size_t size);
/* server/loop_host.c: the loop runner, made before the workers (the API reads and submits runs from the start),
 * stepping once they run (its gate calls the listener: gyre_server_loop_go); stop before they end. */
int gyre_server_loop_start(gyre_server_t *s);
void gyre_server_loop_go(gyre_server_t *s);
void gyre_server_loop_stop(gyre_server_t *s);

/* GET (or HEAD) /metrics on worker `w`: every worker's metrics summed, in Prometheus' text format; 405 for
 * other methods.  Returns 0, as an h2o handler does. */
int gyre_server_serve_metrics(gyre_worker_t *w, h2o_req_t *req);

/* GET /readyz on worker `w` (src/server/readyz.c): 200 when every route has a usable target, else 503 naming the
 * routes that have none and why.  Returns 0, as an h2o handler does. */
int gyre_server_serve_readyz(gyre_worker_t *w, h2o_req_t *req);

/* POST /v1/traces on worker `w` (src/server/otlp.c hands src/otlp/endpoint.c the worker's bounds, redaction
 * and writer).  Returns 0, as an h2o handler does. */
int gyre_otlp_handle(gyre_worker_t *w, h2o_req_t *req);

#endif
