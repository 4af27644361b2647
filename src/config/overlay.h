/*
 * Route overlays (overlay.c): routes changed through the admin API, as JSON
 * in the shape of a YAML route entry, laid over a configuration's routes.
 */
#ifndef GYRE_CONFIG_OVERLAY_H
#define GYRE_CONFIG_OVERLAY_H

#include <stddef.h>

#include "common/buf.h"
#include "config/config.h"

/* Lays `n` overlays over c's routes: overlay i (route_json[i], a JSON object whose `name` is names[i]) replaces
 * the route of that name or is added after the others.  0; or -EINVAL with every problem in `errs`, each named
 * "route overlay 'NAME':LINE: FIELD: message" (c's routes are then partly changed: free it). */
int gyre_config_apply_routes(gyre_config_t *c, const char *const *names, const char *const *route_json, size_t n,
                             gyre_config_errors_t *errs);

/* gyre_config_load (or gyre_config_default when `path` is NULL), then the overlays.  NULL with `errs` filled. */
gyre_config_t *gyre_config_load_with_routes(const char *path, const char *const *names,
                                            const char *const *route_json, size_t n, gyre_config_errors_t *errs);

/* Route `r` of `c` as JSON in the shape of a YAML route entry (every field the parser reads; no secret is in a
 * route).  Appended to `out`. */
void gyre_config_route_json(const gyre_config_t *c, const gyre_route_conf_t *r, gyre_buf_t *out);

#endif
