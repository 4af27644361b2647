/* Alert overrides on routing (override.h). */
#include "route/override.h"

#include <errno.h>
#include <stdlib.h>

#include "common/alloc.h"

struct gyre_overrides {
    const gyre_config_t *config;
    atomic_uchar **target_out;  /* per route: targets then fallbacks */
    atomic_uchar **key_out;     /* per provider: its keys */
    atomic_uchar *provider_open; /* per provider */
};

gyre_overrides_t *gyre_overrides_create(const gyre_config_t *c)
{
    gyre_overrides_t *o = gyre_calloc(1, sizeof(*o));
    o->config = c;
    o->target_out = gyre_calloc(c->nroutes ? c->nroutes : 1, sizeof(*o->target_out));
    for (size_t i = 0; i < c->nroutes; i++)
        o->target_out[i] = gyre_calloc(c->routes[i].ntargets + c->routes[i].nfallbacks + 1, sizeof(atomic_uchar));
    o->key_out = gyre_calloc(c->nproviders ? c->nproviders : 1, sizeof(*o->key_out));
    for (size_t i = 0; i < c->nproviders; i++)
        o->key_out[i] = gyre_calloc(c->providers[i].nkeys + 1, sizeof(atomic_uchar));
    o->provider_open = gyre_calloc(c->nproviders ? c->nproviders : 1, sizeof(atomic_uchar));
    return o;
}

void gyre_overrides_destroy(gyre_overrides_t *o)
{
    if (o == NULL)
        return;
    for (size_t i = 0; i < o->config->nroutes; i++)
        free(o->target_out[i]);
    for (size_t i = 0; i < o->config->nproviders; i++)
        free(o->key_out[i]);
    free(o->target_out);
    free(o->key_out);
    free(o->provider_open);
    free(o);
}

static size_t route_size(const gyre_overrides_t *o, size_t ri)
{
    return o->config->routes[ri].ntargets + o->config->routes[ri].nfallbacks;
}

int gyre_overrides_target_out(const gyre_overrides_t *o, size_t ri, size_t ti)
{
    if (o == NULL || ri >= o->config->nroutes || ti >= route_size(o, ri))
        return 0;
    return atomic_load_explicit(&o->target_out[ri][ti], memory_order_relaxed);
}

int gyre_overrides_key_out(const gyre_overrides_t *o, size_t pi, size_t ki)
{
    if (o == NULL || pi >= o->config->nproviders || ki >= o->config->providers[pi].nkeys)
        return 0;
    return atomic_load_explicit(&o->key_out[pi][ki], memory_order_relaxed);
}

int gyre_overrides_provider_open(const gyre_overrides_t *o, size_t pi)
{
    if (o == NULL || pi >= o->config->nproviders)
        return 0;
    return atomic_load_explicit(&o->provider_open[pi], memory_order_relaxed);
}

int gyre_overrides_set_target_out(gyre_overrides_t *o, size_t ri, size_t ti, int out)
{
    if (ri >= o->config->nroutes || ti >= route_size(o, ri))
        return -ERANGE;
    if (out) {
        /* The route keeps at least one target that is not out. */
        size_t left = 0;
        for (size_t i = 0; i < route_size(o, ri); i++)
            if (i != ti && !atomic_load(&o->target_out[ri][i]))
                left++;
        if (left == 0)
            return -EBUSY;
    }
    atomic_store(&o->target_out[ri][ti], (unsigned char)(out != 0));
    return 0;
}

int gyre_overrides_set_key_out(gyre_overrides_t *o, size_t pi, size_t ki, int out)
{
    if (pi >= o->config->nproviders || ki >= o->config->providers[pi].nkeys)
        return -ERANGE;
    if (out) {
        size_t left = 0;
        for (size_t i = 0; i < o->config->providers[pi].nkeys; i++)
            if (i != ki && !atomic_load(&o->key_out[pi][i]))
                left++;
        if (left == 0)
            return -EBUSY;
    }
    atomic_store(&o->key_out[pi][ki], (unsigned char)(out != 0));
    return 0;
}

int gyre_overrides_set_provider_open(gyre_overrides_t *o, size_t pi, int open)
{
    if (pi >= o->config->nproviders)
        return -ERANGE;
    atomic_store(&o->provider_open[pi], (unsigned char)(open != 0));
    return 0;
}
