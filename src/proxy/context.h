/*
 * One worker thread's context, as h2o_context_t is h2o's: what everything
 * that runs on the thread shares, below the server that made it.  The
 * server (src/server/server.c) fills one per worker before the worker's loop
 * runs, as the first member of its gyre_worker_t, so that `req->conn->ctx`
 * is both; the proxy and the stages read it, and a request's end goes
 * through it (gyre_ctx_trace_done, gyre_ctx_request_done), so nothing
 * below the server calls up into it.
 *
 * Ownership: everything it points to belongs to the server and lives as long
 * as the process; the per-provider and per-route state is this worker's
 * alone (no locks on the request path).
 */
#ifndef GYRE_PROXY_CONTEXT_H
#define GYRE_PROXY_CONTEXT_H

#include <h2o.h>
#include <stdint.h>

#include "common/timer.h"
#include "config/config.h"
#include "config/prices.h"
#include "proxy/gen.h"
#include "proxy/upstream.h"
#include "route/keys.h"
#include "route/route.h"
#include "trace/trace.h"

struct gyre_metrics;
struct gyre_writer;
struct gyre_otlp_exporter;
struct gyre_overrides;
struct gyre_alerts;
struct gyre_limits;
struct gyre_scoring;

typedef struct gyre_ctx {
    h2o_context_t ctx; /* first: h2o's context for this thread (its loop, its queue) */
    /* The configuration in force on this worker (proxy/gen.h), and below, the fields a new request reads from it.
     * A request keeps the generation it began with (a reference on `gen`); these change, on this worker's own
     * loop, when a live change is put in force (gyre_ctx_use_gen). */
    gyre_wgen_t *gen;
    const gyre_config_t *config;
    gyre_cache_t **caches;      /* per route; NULL where the route has no cache */
    struct gyre_access *access; /* `auth:` as digests */
    unsigned id;  /* the worker's number: its queue in the trace writer and the OTLP exporter */
    uint64_t rng; /* this thread's random numbers (common/rand.h) */
    gyre_timer_wheel_t timers;
    gyre_upstream_t *upstreams;         /* one per provider, same order as the config */
    gyre_keypool_t *keypools;           /* one per provider: its keys' cooldowns and breakers, on this worker */
    gyre_target_state_t **route_states; /* per route: its targets then fallbacks (latency, in flight, price) */
    size_t inflight; /* proxied requests not yet disposed (written by this worker only; /metrics reads it) */
    int shutting_down; /* no new connections: the worker ends once nothing is in flight (done) */
    int done;          /* the worker's loop ends */
    /* Where a finished trace goes (gyre_ctx_trace_done). */
    const gyre_prices_t *prices;               /* the price table (read-only once loaded) */
    struct gyre_metrics *metrics;              /* this worker's counters (src/metrics/metrics.h) */
    struct gyre_writer *writer;                /* the trace writer, or NULL when traces are not stored */
    struct gyre_otlp_exporter *otlp_exporter; /* the OTLP exporter, or NULL when nothing is exported */
    /* The control plane, read on the request path (NULL when not configured). */
    struct gyre_overrides *overrides; /* firing alerts' changes to routing (route/override.h) */
    struct gyre_alerts *alerts;       /* each finished request is a sample in the alert windows */
    struct gyre_limits *limits;       /* reserve in the limits stage, settle when the request ends */
    struct gyre_access_log *access_log; /* `access_log:` one line per request (trace/access_log.h), or NULL */
    struct gyre_scoring *scoring;       /* online scorers (loop/score.h), or NULL: a finished call may be sampled */
} gyre_ctx_t;

/* A request's trace is complete (every request has one): it is priced (`provider` answered it, or NULL),
 * redacted when something keeps it (`route`'s policy, the root's without one; copies go into `pool`),
 * counted in the metrics, and handed to the writer and the OTLP exporter when they run (copied; never waits). */
void gyre_ctx_trace_done(gyre_ctx_t *c, gyre_trace_t *t, h2o_mem_pool_t *pool, const gyre_route_conf_t *route,
                         const gyre_provider_conf_t *provider);

/* Puts `w` (a new reference, handed over) in force for the requests that begin from now on, and lets go of the
 * worker's reference on the state it replaces (freed once its last request ends).  The worker's thread only. */
void gyre_ctx_use_gen(gyre_ctx_t *c, gyre_wgen_t *w);

/* A proxied request was disposed: one less in flight (gyre_proxy_start counted it). */
void gyre_ctx_request_done(gyre_ctx_t *c);

/* While shutting down, the worker is done once nothing is in flight. */
void gyre_ctx_check_done(gyre_ctx_t *c);

#endif
