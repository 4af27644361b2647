/* Route resolution, plans and strategies (see route.h). */
#include "route/route.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "route/override.h"

/* The weight of the newest latency sample in the moving average. */
#define EWMA_ALPHA 0.3

int gyre_route_resolve(const gyre_config_t *c, const char *model, size_t len, gyre_target_ref_t *out)
{
    const gyre_route_conf_t *r = gyre_config_find_route(c, model, len);
    if (r != NULL) {
        /* Which of the route's targets, in what order, is the plan's to say (gyre_route_plan), per request. */
        *out = (gyre_target_ref_t){.route_name = r->name, .route = r};
        return 0;
    }
    const char *slash = memchr(model, '/', len);
    if (slash != NULL && slash + 1 < model + len) {
        const gyre_provider_conf_t *p = gyre_config_find_provider(c, model, (size_t)(slash - model));
        if (p != NULL) {
            out->provider = (size_t)(p - c->providers);
            out->model = slash + 1;
            out->model_len = len - (size_t)(slash + 1 - model);
            out->route_name = NULL;
            out->route = NULL;
            return 0;
        }
    }
    return -ENOENT;
}

void gyre_route_observe_latency(gyre_target_state_t *s, double ms)
{
    s->ewma_ms = s->samples == 0 ? ms : EWMA_ALPHA * ms + (1 - EWMA_ALPHA) * s->ewma_ms;
    s->samples++;
}

/* A uniform double in (0, 1). */
static double unit(uint64_t x)
{
    return ((double)(x >> 11) + 0.5) / 9007199254740992.0;
}

static int usable(const gyre_keypool_t *keypools, size_t provider, uint64_t now_ms)
{
    return gyre_keypool_available(&keypools[provider], now_ms);
}

/* Whether target a should be tried before b under the strategy (ties go to `tie`). */
static int before(gyre_route_strategy_t strategy, const gyre_target_state_t *a, const gyre_target_state_t *b,
                  double tie_a, double tie_b)
{
    switch (strategy) {
    case GYRE_STRATEGY_LEAST_LATENCY:
        /* A target never measured is tried first, so every target gets measured. */
        if ((a->samples == 0) != (b->samples == 0))
            return a->samples == 0;
        if (a->ewma_ms != b->ewma_ms)
            return a->ewma_ms < b->ewma_ms;
        break;
    case GYRE_STRATEGY_LEAST_INFLIGHT:
        if (a->inflight != b->inflight)
            return a->inflight < b->inflight;
        break;
    case GYRE_STRATEGY_CHEAPEST:
        if ((a->price < 0) != (b->price < 0))
            return a->price >= 0; /* known prices before unknown ones */
        if (a->price != b->price)
            return a->price < b->price;
        break;
    case GYRE_STRATEGY_WEIGHTED: break;
    }
    return tie_a > tie_b;
}

size_t gyre_route_plan(const gyre_route_conf_t *r, gyre_target_state_t *states, const gyre_keypool_t *keypools,
                       uint64_t now_ms, uint64_t *rng, uint64_t affinity, gyre_candidate_t *out)
{
    size_t n = r->ntargets;
    /* Each pool target gets a weighted random key (Efraimidis-Spirakis: u^(1/w), highest first), which is a
     * weighted draw without replacement; the strategies use it to break ties.  A target of weight 0 is tried
     * only after every weighted one. */
    double keys[n];
    size_t order[n];
    for (size_t i = 0; i < n; i++) {
        unsigned w = r->targets[i].weight;
        keys[i] = w == 0 ? -1 : n == 1 ? 1 : pow(unit(gyre_rand_next(rng)), 1.0 / w);
        order[i] = i;
    }
    /* Insertion sort: pools are a handful of targets. */
    for (size_t i = 1; i < n; i++) {
        size_t x = order[i], j = i;
        while (j > 0 && before(r->strategy, &states[x], &states[order[j - 1]], keys[x], keys[order[j - 1]])) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = x;
    }
    if (affinity != 0) {
        /* Rendezvous hashing: every worker, with no shared state, puts the same session on the same usable
         * target, and it moves only while that target is unusable. */
        size_t best = SIZE_MAX;
        double best_score = 0;
        for (size_t i = 0; i < n; i++) {
            const gyre_target_conf_t *t = &r->targets[i];
            if (t->weight == 0 || !usable(keypools, t->provider, now_ms))
                continue;
            uint64_t h = gyre_hash64(t->model, strlen(t->model), affinity ^ (0x9E3779B97F4A7C15ULL * (t->provider + 1)));
            double score = -(double)t->weight / log(unit(h));
            if (best == SIZE_MAX || score > best_score) {
                best = i;
                best_score = score;
            }
        }
        if (best != SIZE_MAX) {
            size_t j = 0;
            while (order[j] != best)
                j++;
            memmove(&order[1], &order[0], j * sizeof(order[0]));
            order[0] = best;
        }
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const gyre_target_conf_t *t = &r->targets[order[i]];
        out[k++] = (gyre_candidate_t){t->provider, t->model, strlen(t->model), &states[order[i]], 0};
    }
    for (size_t i = 0; i < r->nfallbacks; i++) {
        const gyre_target_conf_t *t = &r->fallbacks[i];
        out[k++] = (gyre_candidate_t){t->provider, t->model, strlen(t->model), &states[n + i], 1};
    }
    return k;
}

void gyre_route_plan_overrides(gyre_candidate_t *cands, size_t n, const gyre_target_state_t *states,
                               const struct gyre_overrides *o, size_t ri)
{
    gyre_candidate_t out[n ? n : 1];
    size_t k = 0;
    /* Two stable passes: the ones in rotation, then the ones out of it. */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < n; i++) {
            size_t ti = cands[i].state != NULL ? (size_t)(cands[i].state - states) : SIZE_MAX;
            int is_out = ti != SIZE_MAX && gyre_overrides_target_out(o, ri, ti);
            if (is_out == pass)
                out[k++] = cands[i];
        }
    memcpy(cands, out, n * sizeof(*cands));
}
