/*
 * `clusters:` what the agents do, clustered (issue 14; src/loop/cluster.h):
 *
 *   clusters:
 *     k: 0               # 0: chosen automatically (silhouette), else 1-256
 *     min_sessions: 5    # a cluster of fewer distinct sessions is not shown by name or example
 *     embeddings: ROUTE  # vectors from this route's embeddings; the built-in local featuriser otherwise
 *     naming: ROUTE      # names from an LLM through this route; distinctive terms otherwise
 *     every: 6h          # gyre serve re-clusters this often (0, the default: only on demand)
 *     window: 7d         # over the traces of this long before now
 *     seed: 1
 *
 * Parsed after `routes:` (wherever the two stand in the file), since embeddings and naming name routes.
 */
#include <string.h>

#include "common/alloc.h"
#include "config/config_int.h"

/* The most traces the window may reach back: a year (a longer window is a typo, and a rebuild reads it all). */
#define CLUSTERS_MAX_WINDOW_US ((int64_t)366 * 86400 * 1000000)
/* Re-clustering at most once a minute: a rebuild of a large store takes tens of seconds. */
#define CLUSTERS_MIN_EVERY_US ((int64_t)60 * 1000000)

void gyre_cfg_clusters_defaults(gyre_clusters_conf_t *cl)
{
    memset(cl, 0, sizeof(*cl));
    cl->min_sessions = 5;
    cl->window_us = (int64_t)7 * 86400 * 1000000;
    cl->seed = 1;
}

static void route_name(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *v, const char *field, char **out)
{
    char *s = NULL;
    if (!gyre_cfg_get_string(ctx, v, field, &s))
        return;
    if (gyre_config_find_route(c, s, strlen(s)) == NULL) {
        ERR(ctx, v, field, "no route is named '%s'", s);
        free(s);
        return;
    }
    free(*out);
    *out = s;
}

void gyre_cfg_parse_clusters(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n)
{
    gyre_clusters_conf_t *cl = &c->clusters;
    cl->line = gyre_cfg_line_of(n);
    if (!gyre_cfg_want_type(ctx, n, YAML_MAPPING_NODE, "clusters"))
        return;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = GYRE_CFG_KEY(ctx, p), *v = GYRE_CFG_VALUE(ctx, p);
        const char *key = gyre_cfg_scalar(k) != NULL ? gyre_cfg_scalar(k) : "?";
        unsigned long long u;
        int64_t us;
        if (strcmp(key, "k") == 0) {
            if (gyre_cfg_get_uint(ctx, v, "clusters.k", 0, 256, &u))
                cl->k = (unsigned)u;
        } else if (strcmp(key, "min_sessions") == 0) {
            if (gyre_cfg_get_uint(ctx, v, "clusters.min_sessions", 1, 1000000, &u))
                cl->min_sessions = (unsigned)u;
        } else if (strcmp(key, "embeddings") == 0) {
            route_name(ctx, c, v, "clusters.embeddings", &cl->embeddings_route);
        } else if (strcmp(key, "naming") == 0) {
            route_name(ctx, c, v, "clusters.naming", &cl->naming_route);
        } else if (strcmp(key, "every") == 0) {
            if (gyre_cfg_get_duration(ctx, v, "clusters.every", &us)) {
                if (us != 0 && us < CLUSTERS_MIN_EVERY_US)
                    ERR(ctx, v, "clusters.every", "is below the least allowed, 1m (0 turns it off)");
                else
                    cl->every_ms = (uint64_t)(us / 1000);
            }
        } else if (strcmp(key, "window") == 0) {
            if (gyre_cfg_get_duration(ctx, v, "clusters.window", &us)) {
                if (us <= 0)
                    ERR(ctx, v, "clusters.window", "must be longer than 0 (for example 7d)");
                else if (us > CLUSTERS_MAX_WINDOW_US)
                    ERR(ctx, v, "clusters.window", "is above the most allowed, 366d");
                else
                    cl->window_us = us;
            }
        } else if (strcmp(key, "seed") == 0) {
            if (gyre_cfg_get_uint(ctx, v, "clusters.seed", 1, 4294967295ULL, &u))
                cl->seed = (unsigned)u;
        } else {
            ERR(ctx, k, "clusters", "unknown field '%s' (known: k, min_sessions, embeddings, naming, every, window, seed)",
                key);
        }
    }
}

void gyre_cfg_free_clusters(gyre_clusters_conf_t *cl)
{
    free(cl->embeddings_route);
    free(cl->naming_route);
    cl->embeddings_route = cl->naming_route = NULL;
}
