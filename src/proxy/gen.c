/* Generations of the configuration in force (gen.h). */
#include "proxy/gen.h"

#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "control/access.h"
#include "loop/guard.h"
#include "proxy/context.h"
#include "route/override.h"

gyre_gen_t *gyre_gen_create(gyre_config_t *config, unsigned nworkers)
{
    gyre_gen_t *g = gyre_calloc(1, sizeof(*g));
    g->refs = 1;
    g->config = config;
    g->nworkers = nworkers;
    size_t np = config->nproviders ? config->nproviders : 1;
    g->unusable_until = gyre_calloc(np * (nworkers ? nworkers : 1), sizeof(*g->unusable_until));
    return g;
}

void gyre_gen_retain(gyre_gen_t *g)
{
    __atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
}

void gyre_gen_release(gyre_gen_t *g)
{
    if (g == NULL)
        return;
    /* Release, then acquire on the last: whatever a thread did with the generation happens before its free. */
    if (__atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    const gyre_config_t *c = g->config;
    if (g->caches != NULL)
        for (size_t i = 0; i < c->nroutes; i++)
            if (g->caches[i] != NULL)
                gyre_cache_destroy(g->caches[i]);
    free(g->caches);
    if (g->upstream_ssl != NULL)
        for (size_t i = 0; i < c->nproviders; i++)
            if (g->upstream_ssl[i] != NULL)
                SSL_CTX_free(g->upstream_ssl[i]);
    free(g->upstream_ssl);
    if (g->access != NULL)
        gyre_access_destroy(g->access);
    gyre_overrides_destroy(g->overrides);
    gyre_guard_destroy(g->guard);
    if (g->prices != NULL)
        gyre_prices_free(g->prices);
    free(g->unusable_until);
    gyre_config_free(g->config);
    free(g);
}

gyre_wgen_t *gyre_wgen_create(gyre_gen_t *g, unsigned worker, h2o_loop_t *loop,
                              h2o_multithread_receiver_t *getaddr_receiver)
{
    const gyre_config_t *c = g->config;
    gyre_wgen_t *w = gyre_calloc(1, sizeof(*w));
    gyre_gen_retain(g);
    w->gen = g;
    w->refs = 1;
    w->worker = worker;
    w->upstreams = gyre_calloc(c->nproviders ? c->nproviders : 1, sizeof(*w->upstreams));
    w->keypools = gyre_calloc(c->nproviders ? c->nproviders : 1, sizeof(*w->keypools));
    for (size_t i = 0; i < c->nproviders; i++) {
        gyre_upstream_init(&w->upstreams[i], &c->providers[i], loop, getaddr_receiver,
                           g->upstream_ssl != NULL ? g->upstream_ssl[i] : NULL);
        gyre_keypool_init(&w->keypools[i], &c->providers[i]);
        gyre_keypool_set_overrides(&w->keypools[i], g->overrides, i); /* the alerts' key_out of this configuration */
    }
    /* Each worker measures its own targets: no state is shared on the request path. */
    w->route_states = gyre_calloc(c->nroutes ? c->nroutes : 1, sizeof(*w->route_states));
    for (size_t i = 0; i < c->nroutes; i++) {
        const gyre_route_conf_t *r = &c->routes[i];
        size_t n = r->ntargets + r->nfallbacks;
        w->route_states[i] = gyre_calloc(n ? n : 1, sizeof(**w->route_states));
        for (size_t j = 0; j < n; j++) {
            const gyre_target_conf_t *t = j < r->ntargets ? &r->targets[j] : &r->fallbacks[j - r->ntargets];
            /* The provider's own prices first (`prices:` on a provider), as a trace's cost is reckoned. */
            const gyre_price_t *pr =
                g->prices != NULL ? gyre_prices_lookup(c->providers[t->provider].prices, g->prices, t->model,
                                                       strlen(t->model))
                                  : NULL;
            w->route_states[i][j].price = pr != NULL ? pr->input + pr->output : -1;
        }
    }
    return w;
}

void gyre_wgen_release(gyre_wgen_t *w)
{
    if (w == NULL || --w->refs != 0)
        return;
    const gyre_config_t *c = w->gen->config;
    int busy = 0;
    for (size_t i = 0; i < c->nproviders; i++) {
        busy |= gyre_upstream_dispose(&w->upstreams[i]) != 0;
        gyre_keypool_dispose(&w->keypools[i]);
    }
    for (size_t i = 0; i < c->nroutes; i++)
        free(w->route_states[i]);
    free(w->route_states);
    free(w->keypools);
    if (busy) {
        /* Cannot happen (every request that used the pools has ended); if it does, the pools and the configuration
         * they read stay allocated, as the loop still points into them. */
        gyre_logf("gyre: worker %u: an upstream pool of configuration %llu still had timers at its end; kept\n",
                  w->worker, (unsigned long long)w->gen->number);
        free(w);
        return;
    }
    free(w->upstreams);
    gyre_gen_t *g = w->gen;
    free(w);
    gyre_gen_release(g);
}

void gyre_wgen_note_provider(gyre_wgen_t *w, size_t pi, uint64_t now_ms)
{
    gyre_gen_t *g = w->gen;
    if (pi >= g->config->nproviders || w->worker >= g->nworkers)
        return;
    uint64_t until = gyre_keypool_next_usable_ms(&w->keypools[pi], now_ms);
    __atomic_store_n(&g->unusable_until[pi * g->nworkers + w->worker], until, __ATOMIC_RELAXED);
}

int gyre_gen_provider_down(const gyre_gen_t *g, size_t pi, uint64_t now_ms)
{
    if (pi >= g->config->nproviders || g->nworkers == 0)
        return 0;
    for (unsigned i = 0; i < g->nworkers; i++)
        if (__atomic_load_n(&g->unusable_until[pi * g->nworkers + i], __ATOMIC_RELAXED) <= now_ms)
            return 0;
    return 1;
}

void gyre_ctx_use_gen(gyre_ctx_t *c, gyre_wgen_t *w)
{
    gyre_wgen_t *old = c->gen;
    c->gen = w;
    c->config = w->gen->config;
    c->caches = w->gen->caches;
    c->access = w->gen->access;
    c->prices = w->gen->prices;
    c->overrides = w->gen->overrides;
    c->upstreams = w->upstreams;
    c->keypools = w->keypools;
    c->route_states = w->route_states;
    gyre_wgen_release(old);
}

/* Whether two providers are the same upstream with the same keys in the same order (their key states then mean
 * the same thing).  The secrets are compared in memory, never shown. */
static int same_provider(const gyre_provider_conf_t *a, const gyre_provider_conf_t *b)
{
    if (strcmp(a->name, b->name) != 0 || strcmp(a->base_url, b->base_url) != 0 || a->nkeys != b->nkeys)
        return 0;
    for (size_t i = 0; i < a->nkeys; i++)
        if (strcmp(a->keys[i], b->keys[i]) != 0)
            return 0;
    return 1;
}

void gyre_wgen_inherit(gyre_wgen_t *to, const gyre_wgen_t *from, uint64_t now_ms)
{
    const gyre_config_t *tc = to->gen->config, *fc = from->gen->config;
    for (size_t i = 0; i < tc->nproviders; i++) {
        for (size_t j = 0; j < fc->nproviders; j++) {
            if (!same_provider(&tc->providers[i], &fc->providers[j]))
                continue;
            gyre_keypool_t *t = &to->keypools[i];
            const gyre_keypool_t *f = &from->keypools[j];
            memcpy(t->keys, f->keys, t->nkeys * sizeof(*t->keys));
            /* A probe out on the old pool reports to the old pool: the new one lets its own probe go. */
            for (size_t k = 0; k < t->nkeys; k++)
                t->keys[k].breaker.probing = 0;
            t->next = f->next;
            break;
        }
        gyre_wgen_note_provider(to, i, now_ms);
    }
}
