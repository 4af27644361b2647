/*
 * The route stage of a request, in one call: once the model is resolved
 * (gyre_route_resolve()), which candidates to try and in what order (the
 * plan: strategy and weights, breakers and resting keys, the session's own
 * target first under `affinity: session`), and whether the route's cache
 * answers the call or keeps its answer.
 *
 * It reads the request only through what it is given (two header values and
 * the request in OpenAI's shape), so it knows nothing of HTTP: the server's
 * route stage passes them in and carries the decision out (answers a hit,
 * hands the plan to the attempts).  Attempts then walk the plan with
 * gyre_route_next() (route/next.h), and pick each attempt's key with
 * gyre_route_take_key().
 */
#ifndef GYRE_ROUTE_STAGE_H
#define GYRE_ROUTE_STAGE_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "config/config.h"
#include "route/cache.h"
#include "route/keys.h"
#include "route/route.h"

/* What one worker holds for routing; everything is the worker's but `caches` (shared, locked inside). */
typedef struct gyre_route_env {
    const gyre_config_t *config;
    gyre_target_state_t **route_states; /* per route: its pool targets, then its fallbacks */
    const gyre_keypool_t *keypools;     /* per provider */
    gyre_cache_t **caches;              /* per route; NULL where the route keeps no cache */
    uint64_t *rng;
    uint64_t now_ms;
    const struct gyre_overrides *overrides; /* firing alerts' overrides (route/override.h), or NULL */
} gyre_route_env_t;

/* What the request says that routing reads. */
typedef struct gyre_route_ask {
    gyre_target_ref_t target; /* as gyre_route_resolve() gave it */
    const char *session;      /* x-gyre-session's value, or NULL */
    size_t session_len;
    const char *cache_control; /* Cache-Control's value, or NULL */
    size_t cache_control_len;
    const cJSON *pivot; /* a chat request in OpenAI's shape (the cache key's source), or NULL */
    int chat;           /* the endpoint is chat completions (the only one cached) */
    int stream;
} gyre_route_ask_t;

/*
 * The decision.  `cands` is the caller's array, of gyre_route_plan_len()
 * elements.  The buffers are the decision's: gyre_route_decision_dispose().
 */
typedef struct gyre_route_decision {
    gyre_candidate_t *cands;
    size_t ncands;
    uint64_t affinity;    /* the session's hash under `affinity: session` (never 0 then), else 0 */
    int keyed;            /* the call has a cache key, in `cache_key` */
    gyre_buf_t cache_key; /* bounded at GYRE_ROUTE_CACHE_KEY_MAX */
    gyre_cache_t *store;  /* keep a good answer in this cache under cache_key; NULL: do not keep it */
    int hit;              /* the cache holds the answer: the entry is in `hit_entry` */
    gyre_buf_t hit_entry; /* bounded at GYRE_ROUTE_CACHE_ENTRY_MAX */
} gyre_route_decision_t;

/* A cache key longer than this leaves the call uncached (the request is larger than any cache would keep). */
#define GYRE_ROUTE_CACHE_KEY_MAX ((size_t)64 << 20)
/* The largest entry a hit reads back; a larger one is a miss (no cache keeps one: values are at most max_bytes/8). */
#define GYRE_ROUTE_CACHE_ENTRY_MAX ((size_t)256 << 20)

/* How many candidates the plan for `target` can hold. */
size_t gyre_route_plan_len(const gyre_target_ref_t *target);

/*
 * Plans the call and decides on the cache.  Under a route: the plan
 * (gyre_route_plan(), with the session's affinity when the route has
 * `affinity: session` and the request names one); then, when the route keeps
 * a cache, the call is chat completions in OpenAI's shape and not a stream of
 * n > 1 choices, its key, and a lookup unless Cache-Control says no-cache or
 * no-store (no-store also keeps the answer out).  For provider/model: one
 * candidate, nothing cached.  Always succeeds; dispose the decision after.
 */
void gyre_route_stage(const gyre_route_env_t *env, const gyre_route_ask_t *ask, gyre_candidate_t *cands,
                      gyre_route_decision_t *out);

void gyre_route_decision_dispose(gyre_route_decision_t *d);

#endif
