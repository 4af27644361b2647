/* Route resolution and weighted target choice (see route.h). */
#include "route/route.h"

#include <errno.h>
#include <string.h>

uint64_t gyre_rand_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

int gyre_route_resolve(const gyre_config_t *c, const char *model, size_t len, uint64_t *rng, gyre_target_ref_t *out)
{
    const gyre_route_conf_t *r = gyre_config_find_route(c, model, len);
    if (r != NULL) {
        unsigned pick = (unsigned)(gyre_rand_next(rng) % r->total_weight);
        const gyre_target_conf_t *t = &r->targets[0];
        for (size_t i = 0; i < r->ntargets; i++) {
            if (pick < r->targets[i].weight) {
                t = &r->targets[i];
                break;
            }
            pick -= r->targets[i].weight;
        }
        out->provider = t->provider;
        out->model = t->model;
        out->model_len = strlen(t->model);
        out->route_name = r->name;
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
            return 0;
        }
    }
    return -ENOENT;
}
