/*
 * Generations of the configuration in force.  A live change (SIGHUP, the
 * admin API: src/server/live.c) never edits what requests are reading: it
 * builds a whole new generation and publishes it, and each request keeps the
 * generation it started with until it is disposed.
 *
 *   gyre_gen_t   what every worker shares for one configuration: the config
 *                itself, the price table, the access digests, the routes'
 *                caches, the providers' TLS contexts, the alert overrides.
 *                Reference-counted across threads (an atomic count): the
 *                server holds one while it is the current generation, each
 *                worker one while it keeps state for it.
 *   gyre_wgen_t  one worker's own state for a generation: its upstream
 *                connection pools, key pools (cooldowns, breakers) and route
 *                states.  Counted by its worker alone (no atomics): one while
 *                it is the worker's current state, one per request that began
 *                under it.  The last release closes its idle connections,
 *                frees it and lets go of the shared generation.
 *
 * Readiness (/readyz) needs to know, from any worker, whether a provider is
 * usable on every worker: each worker publishes, after every outcome it
 * records on a provider's keys, the time until which that provider has no
 * usable key on it (0: usable now), as a relaxed atomic store into its own
 * slot of the generation's table.  The request path takes no lock for it.
 */
#ifndef GYRE_PROXY_GEN_H
#define GYRE_PROXY_GEN_H

#include <h2o.h>
#include <stdint.h>

#include "config/config.h"
#include "config/prices.h"
#include "proxy/upstream.h"
#include "route/cache.h"
#include "route/keys.h"
#include "route/route.h"

struct gyre_access;
struct gyre_overrides;
struct gyre_guard;

typedef struct gyre_gen {
    size_t refs;     /* atomic: the server's while current, and each worker's that keeps state for it */
    uint64_t number; /* 1 for the configuration gyre started with, then one more per change put in force */
    /* Owned: freed with the generation. */
    gyre_config_t *config;
    gyre_prices_t *prices;            /* the price table (`prices:`, or the built-in one) */
    struct gyre_access *access;       /* `auth:` as digests */
    gyre_cache_t **caches;            /* per route; NULL where the route has no cache */
    SSL_CTX **upstream_ssl;           /* per provider; NULL for http */
    struct gyre_overrides *overrides; /* what firing alerts do to routing */
    struct gyre_guard *guard;         /* the routes' in-line guardrails (loop/guard.h), compiled per worker */
    /* Per provider and worker ([provider * nworkers + worker]): until when the provider has no usable key on that
     * worker (unix ms as h2o_now gives it; 0: usable).  Atomic, relaxed: written by its worker, read by /readyz. */
    uint64_t *unusable_until;
    unsigned nworkers;
} gyre_gen_t;

typedef struct gyre_wgen {
    gyre_gen_t *gen; /* one reference held for as long as this state lives */
    size_t refs;     /* this worker's: 1 while current, 1 per request begun under it */
    unsigned worker; /* the worker's number */
    gyre_upstream_t *upstreams;         /* one per provider, same order as the config */
    gyre_keypool_t *keypools;           /* one per provider */
    gyre_target_state_t **route_states; /* per route: its targets then fallbacks */
} gyre_wgen_t;

/* A generation holding `config` (owned from now on) and nothing else yet, with one reference (the caller's). */
gyre_gen_t *gyre_gen_create(gyre_config_t *config, unsigned nworkers);
void gyre_gen_retain(gyre_gen_t *g);
/* Lets go of one reference; the last frees the generation and everything it owns.  Any thread. */
void gyre_gen_release(gyre_gen_t *g);

/* A worker's state for `g` (takes its own reference on g), on `loop`, with one reference (the worker's). */
gyre_wgen_t *gyre_wgen_create(gyre_gen_t *g, unsigned worker, h2o_loop_t *loop,
                              h2o_multithread_receiver_t *getaddr_receiver);
static inline void gyre_wgen_retain(gyre_wgen_t *w)
{
    w->refs++;
}
/* Lets go of one reference; the last closes the pools' idle connections and frees the state.  Its worker only. */
void gyre_wgen_release(gyre_wgen_t *w);

/* A new configuration keeps what the worker learnt of each provider that did not change (same name, base_url and
 * keys): its keys' rests and breakers come from `from` (a probe out on the old pool stays the old pool's), and
 * /readyz's table is filled for every provider of `to`. */
void gyre_wgen_inherit(gyre_wgen_t *to, const gyre_wgen_t *from, uint64_t now_ms);

/* After an outcome on provider `pi`'s keys: publishes until when the provider has no usable key on this worker. */
void gyre_wgen_note_provider(gyre_wgen_t *w, size_t pi, uint64_t now_ms);
/* Whether provider `pi` has no usable key on any worker at `now_ms` (its breakers are open or its keys rest
 * everywhere).  Any thread. */
int gyre_gen_provider_down(const gyre_gen_t *g, size_t pi, uint64_t now_ms);

#endif
