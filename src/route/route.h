/*
 * Route resolution and planning.
 *
 * The `model` a client sends names a route from the config or addresses one
 * provider directly as "provider/model".  A route's plan for one request is
 * the ordered list of targets to try: the pool (`targets:`) ordered by the
 * route's strategy (weighted random, least latency, least in flight,
 * cheapest), the session's own target first under `affinity: session`, then
 * the fallbacks in their order.  The proxy walks the plan, skipping targets
 * whose provider has no usable key (breaker open, rate-limited), retrying
 * and falling back as the route says.
 *
 * Everything here is per worker and allocation-free: the random state, the
 * latency and in-flight figures and the key pools belong to the calling
 * worker, and a plan is written into the caller's array.
 */
#ifndef GYRE_ROUTE_H
#define GYRE_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "common/rand.h" /* gyre_rand_next: the draws below take the worker's state */
#include "config/config.h"
#include "route/keys.h"

typedef struct gyre_target_ref {
    size_t provider;   /* index into config->providers (provider/model only) */
    const char *model; /* the model to ask the provider for (provider/model only) */
    size_t model_len;
    const char *route_name; /* the route, or NULL for provider/model */
    const gyre_route_conf_t *route; /* NULL for provider/model */
} gyre_target_ref_t;

/* What one worker knows of one target of a route (pool first, then fallbacks). */
typedef struct gyre_target_state {
    double ewma_ms;    /* recent latency: time to the first byte of a stream, or to a whole answer */
    unsigned samples;  /* latencies seen (0: unknown, tried first by least_latency) */
    unsigned inflight; /* attempts on it now */
    double price;      /* input + output USD per 1M tokens; < 0 when unknown */
} gyre_target_state_t;

typedef struct gyre_candidate {
    size_t provider;
    const char *model;
    size_t model_len;
    gyre_target_state_t *state; /* NULL for provider/model */
    int is_fallback;
} gyre_candidate_t;

/*
 * What `model` names: a route (out->route; provider and model are then
 * unset, the plan chooses the targets) or one provider's model.  Returns 0,
 * or -ENOENT when `model` is neither a route nor provider/model.
 */
int gyre_route_resolve(const gyre_config_t *c, const char *model, size_t len, gyre_target_ref_t *out);

/*
 * Writes the plan for one request on route `r` into out[0 .. r->ntargets +
 * r->nfallbacks) and returns its length.  `states` is this worker's array
 * for the route (same order as targets then fallbacks), `keypools` its
 * per-provider key pools; `affinity` is a hash of the session id, or 0.
 */
size_t gyre_route_plan(const gyre_route_conf_t *r, gyre_target_state_t *states, const gyre_keypool_t *keypools,
                       uint64_t now_ms, uint64_t *rng, uint64_t affinity, gyre_candidate_t *out);

/*
 * Moves the candidates an alert took out of route `ri`'s rotation (`failover_to_secondary`) to the end of the
 * plan, in their order: they are tried only when every other candidate is unusable or has failed, so a route
 * never loses its last usable target.  `states` is the route's array the plan's candidates point into (a
 * candidate's index is its state's).
 */
struct gyre_overrides;
void gyre_route_plan_overrides(gyre_candidate_t *cands, size_t n, const gyre_target_state_t *states,
                               const struct gyre_overrides *o, size_t ri);

/* Folds one latency sample into a target's moving average. */
void gyre_route_observe_latency(gyre_target_state_t *s, double ms);

#endif
