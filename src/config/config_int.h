/*
 * What the files of config/ share to parse their sections: the parse context
 * (the source's name, the YAML document, the errors gathered) and the readers
 * of one value, each of which records a "FILE:LINE: FIELD: message" error and
 * returns 0 (or NULL, or -1 for gyre_cfg_get_choice) when the value is wrong.
 *
 * A new section of the configuration is a file of its own (config/alerts.c,
 * config/limits.c, ...) with one function the root's dispatch in config.c
 * calls; nothing outside config/ includes this header.
 */
#ifndef GYRE_CONFIG_INT_H
#define GYRE_CONFIG_INT_H

#include <stdint.h>
#include <yaml.h>

#include "config/config.h"

typedef struct parse_ctx {
    const char *source;
    yaml_document_t *doc;
    gyre_config_errors_t *errs;
    /* 1 for gyre_config_load_unresolved: env:NAME and file:PATH secrets are not loaded (gyre_cfg_resolve_key
     * returns a placeholder), for the commands that only read the store. */
    int unresolved;
} parse_ctx_t;

void gyre_cfg_add_error(gyre_config_errors_t *errs, const char *source, int line, const char *field, const char *fmt,
                        ...) __attribute__((format(printf, 5, 6)));
#define ERR(ctx, node, field, ...) gyre_cfg_add_error((ctx)->errs, (ctx)->source, gyre_cfg_line_of(node), (field), __VA_ARGS__)

int gyre_cfg_line_of(const yaml_node_t *n);
/* The node's text when it is a scalar, else NULL. */
const char *gyre_cfg_scalar(const yaml_node_t *n);
const char *gyre_cfg_node_type_name(const yaml_node_t *n);
/* Field paths such as "providers[0].keys[1]" for error messages, written into buf. */
const char *gyre_cfg_path_of(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int gyre_cfg_want_type(parse_ctx_t *ctx, yaml_node_t *n, yaml_node_type_t type, const char *field);
int gyre_cfg_get_string(parse_ctx_t *ctx, yaml_node_t *n, const char *field, char **out);
int gyre_cfg_get_uint(parse_ctx_t *ctx, yaml_node_t *n, const char *field, unsigned long long min,
                      unsigned long long max, unsigned long long *out);
int gyre_cfg_get_bool(parse_ctx_t *ctx, yaml_node_t *n, const char *field, int *out);
/* "20GB", "64MB", "4096" in bytes (powers of 1024). */
int gyre_cfg_get_size(parse_ctx_t *ctx, yaml_node_t *n, const char *field, uint64_t min, uint64_t *out);
/* "30d", "12h", "15m", "90s", "500ms" in microseconds; "0" alone is 0. */
int gyre_cfg_get_duration(parse_ctx_t *ctx, yaml_node_t *n, const char *field, int64_t *out_us);
/* The index of the scalar's value in the NULL-ended `names`, or -1 (with an error listing them). */
int gyre_cfg_get_choice(parse_ctx_t *ctx, yaml_node_t *n, const char *field, const char *const *names);
/* A secret from its literal, env:NAME or file:PATH form (never echoed in an error); NULL on error.  When
 * ctx->unresolved, an env: or file: secret is not loaded: the placeholder gyre_cfg_unresolved_secret gives
 * stands in for it. */
char *gyre_cfg_resolve_key(parse_ctx_t *ctx, yaml_node_t *n, const char *field, const char *spec);
/* The stand-in for the secret `spec` names when secrets are not resolved: "unresolved:" and the spec, spaces and
 * control bytes as '_', at least GYRE_AUTH_MIN_SECRET_LEN long, so that it passes the checks a real secret does
 * and two specs stay two values.  The caller frees it. */
char *gyre_cfg_unresolved_secret(const char *spec);
/* Names of providers, routes, ...: [A-Za-z0-9._:-]+. */
int gyre_cfg_valid_name(const char *s);
/* A price: a number >= 0 (USD per million tokens). */
int gyre_cfg_get_price(parse_ctx_t *ctx, yaml_node_t *n, const char *field, double *out);

/* One route entry (a YAML mapping) into c->routes[ri], with the checks of a file's (config/overlay.c reads a
 * route changed through the admin API with it). */
void gyre_cfg_parse_route(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n, size_t ri);
/* `notifiers:` (config/notifiers.c). */
void gyre_cfg_parse_notifiers(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n);
/* `alerts:` (config/alerts.c); called after providers, routes (and notifiers) are parsed. */
void gyre_cfg_parse_alerts(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n);
/* `limits:` (config/limits.c): parses the section into c->limits; frees it. */
void gyre_cfg_parse_limits(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n);
void gyre_cfg_free_limits(gyre_limits_conf_t *l);
/* The sections parsed in files of their own (config/NAME.c), called from the root's dispatch in config.c. */
void gyre_cfg_parse_access_log(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n);
/* `scorers:` (config/scorers.c), parsed before the routes (a route's guardrails name scorers); the routes its
 * scorers name are checked once the routes are parsed (gyre_cfg_check_scorers). */
void gyre_cfg_parse_scorers(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n);
void gyre_cfg_check_scorers(parse_ctx_t *ctx, gyre_config_t *c);
void gyre_cfg_free_scorers(gyre_config_t *c);
/* A route's `guardrails:` into r (config/scorers.c); c->scorers must be parsed. */
void gyre_cfg_parse_guardrails(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n, gyre_route_conf_t *r, size_t ri);
/* `clusters:` (config/clusters.c): defaults set before parsing; parsed after routes; freed by gyre_config_free. */
void gyre_cfg_clusters_defaults(gyre_clusters_conf_t *cl);
void gyre_cfg_parse_clusters(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n);
void gyre_cfg_free_clusters(gyre_clusters_conf_t *cl);
/* `feedback:` (config/feedback.c); gyre_cfg_free_feedback frees its metrics. */
void gyre_cfg_parse_feedback(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n);
void gyre_cfg_free_feedback(gyre_config_t *c);
void gyre_cfg_parse_datasets(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n);
void gyre_cfg_parse_loops(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n);

/* Iterating a mapping's pairs: for (yaml_node_pair_t *p = GYRE_CFG_PAIRS(n)) ... */
#define GYRE_CFG_KEY(ctx, pair) yaml_document_get_node((ctx)->doc, (pair)->key)
#define GYRE_CFG_VALUE(ctx, pair) yaml_document_get_node((ctx)->doc, (pair)->value)

#endif
