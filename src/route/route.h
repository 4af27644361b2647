/*
 * Route resolution: the `model` a client sends names a route from the config
 * or addresses one provider directly as "provider/model".  Resolution picks
 * one target (weighted random) and is allocation-free and lock-free: the
 * random state belongs to the calling worker.
 */
#ifndef GYRE_ROUTE_H
#define GYRE_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

typedef struct gyre_target_ref {
    size_t provider;   /* index into config->providers */
    const char *model; /* the model to ask the provider for */
    size_t model_len;
    const char *route_name; /* the route, or NULL for provider/model */
} gyre_target_ref_t;

/* Returns 0, or -ENOENT when `model` is neither a route nor provider/model. */
int gyre_route_resolve(const gyre_config_t *c, const char *model, size_t len, uint64_t *rng, gyre_target_ref_t *out);

/* A fast per-thread pseudo-random step (xorshift64*); *state must be non-zero. */
uint64_t gyre_rand_next(uint64_t *state);

#endif
