/* The route stage: plan, affinity and the cache decision of one request (see stage.h). */
#include "route/stage.h"

#include <string.h>

/* The seed of the session hash: every worker must agree on it, so that a session lands on the same target. */
#define SESSION_SEED 0x67797265

size_t gyre_route_plan_len(const gyre_target_ref_t *target)
{
    return target->route != NULL ? target->route->ntargets + target->route->nfallbacks : 1;
}

/* Whether the 8 bytes at p are `word` (lower case), in any case: header values are ASCII. */
static int word_at(const char *p, const char *word)
{
    for (size_t i = 0; i < 8; i++) {
        char c = p[i] >= 'A' && p[i] <= 'Z' ? (char)(p[i] - 'A' + 'a') : p[i];
        if (c != word[i])
            return 0;
    }
    return 1;
}

/* Cache-Control's no-cache (do not answer from the cache) and no-store (do not keep this answer either). */
static void cache_directives(const char *v, size_t len, int *no_read, int *no_store)
{
    *no_read = *no_store = 0;
    for (size_t i = 0; v != NULL && i + 8 <= len; i++) {
        if (word_at(v + i, "no-cache"))
            *no_read = 1;
        if (word_at(v + i, "no-store"))
            *no_read = *no_store = 1;
    }
}

static void decide_cache(const gyre_route_env_t *env, const gyre_route_ask_t *ask, size_t ri,
                         gyre_route_decision_t *out)
{
    const gyre_route_conf_t *r = ask->target.route;
    gyre_cache_t *cache = env->caches[ri];
    /* A stream is stored from what it adds up to, which is its first choice only: n > 1 streams are not. */
    const cJSON *n = ask->pivot != NULL ? cJSON_GetObjectItemCaseSensitive(ask->pivot, "n") : NULL;
    int multi_stream = ask->stream && cJSON_IsNumber(n) && n->valuedouble > 1;
    if (!r->cache || !ask->chat || ask->pivot == NULL || cache == NULL || multi_stream)
        return;
    int no_read, no_store;
    cache_directives(ask->cache_control, ask->cache_control_len, &no_read, &no_store);
    if (gyre_cache_key(ask->pivot, r->name, &out->cache_key) != 0)
        return;
    out->keyed = 1;
    if (!no_store)
        out->store = cache;
    /* A value past the entry's bound is no hit (-E2BIG): the call goes to the provider. */
    out->hit =
        !no_read && gyre_cache_get(cache, out->cache_key.base, out->cache_key.len, env->now_ms, &out->hit_entry) == 1;
}

void gyre_route_stage(const gyre_route_env_t *env, const gyre_route_ask_t *ask, gyre_candidate_t *cands,
                      gyre_route_decision_t *out)
{
    memset(out, 0, sizeof(*out));
    gyre_buf_init(&out->cache_key, GYRE_ROUTE_CACHE_KEY_MAX);
    gyre_buf_init(&out->hit_entry, GYRE_ROUTE_CACHE_ENTRY_MAX);
    out->cands = cands;
    const gyre_route_conf_t *r = ask->target.route;
    if (r == NULL) {
        cands[0] = (gyre_candidate_t){ask->target.provider, ask->target.model, ask->target.model_len, NULL, 0};
        out->ncands = 1;
        return;
    }
    size_t ri = (size_t)(r - env->config->routes);
    if (r->affinity_session && ask->session != NULL && ask->session_len != 0)
        out->affinity = gyre_hash64(ask->session, ask->session_len, SESSION_SEED) | 1;
    out->ncands = gyre_route_plan(r, env->route_states[ri], env->keypools, env->now_ms, env->rng, out->affinity, cands);
    if (env->overrides != NULL)
        gyre_route_plan_overrides(cands, out->ncands, env->route_states[ri], env->overrides, ri);
    decide_cache(env, ask, ri, out);
}

void gyre_route_decision_dispose(gyre_route_decision_t *d)
{
    gyre_buf_dispose(&d->cache_key);
    gyre_buf_dispose(&d->hit_entry);
}
