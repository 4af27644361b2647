/*
 * YAML → gyre_config_t.  libyaml loads the document into a node tree whose
 * nodes carry their line; a small schema walk then checks each field, and
 * every error found is kept (see config.h).
 */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/wire.h"
#include "config/config_int.h"
#include "config/redact_kinds.h"

#define MAX_CONFIG_BYTES (4 * 1024 * 1024)
#define MAX_KEY_FILE_BYTES 4096
#define SUPPORTED_KINDS "openai, azure, anthropic, gemini, bedrock"



/* "FILE:LINE: FIELD: ", the place every config error starts with. */
static void error_place(gyre_buf_t *b, const char *source, int line, const char *field)
{
    if (line > 0)
        gyre_buf_appendf(b, "%s:%d: ", source, line);
    else
        gyre_buf_appendf(b, "%s: ", source);
    if (field != NULL && field[0] != '\0')
        gyre_buf_appendf(b, "%s: ", field);
}

void gyre_cfg_add_error(gyre_config_errors_t *errs, const char *source, int line, const char *field, const char *fmt, ...)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 4096);
    error_place(&b, source, line, field);
    va_list ap;
    va_start(ap, fmt);
    gyre_buf_vappendf(&b, fmt, ap);
    va_end(ap);
    if (gyre_buf_failed(&b) != 0) {
        /* Past the bound (a long value quoted in the message): the place, and that the message was too long,
         * rather than a message with a piece missing.  The place itself is cut first if it is that long. */
        gyre_buf_t place;
        gyre_buf_init(&place, 1024);
        error_place(&place, source, line, field);
        gyre_buf_reset(&b);
        gyre_buf_appendf(&b, "%.1024s(the error message is longer than 4096 bytes)",
                         gyre_buf_failed(&place) == 0 && place.base != NULL ? place.base : "");
        gyre_buf_dispose(&place);
    }
    errs->items = gyre_realloc(errs->items, sizeof(*errs->items) * (errs->count + 1));
    errs->items[errs->count++] = b.base != NULL ? b.base : gyre_strdup("");
}


int gyre_cfg_line_of(const yaml_node_t *n)
{
    return n != NULL ? (int)n->start_mark.line + 1 : 0;
}

const char *gyre_cfg_scalar(const yaml_node_t *n)
{
    return n != NULL && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

const char *gyre_cfg_node_type_name(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE: return "a scalar";
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_MAPPING_NODE: return "a mapping";
    default: return "empty";
    }
}

/* Field paths such as "providers[0].keys[1]" for error messages. */
const char *gyre_cfg_path_of(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return buf;
}

int gyre_cfg_want_type(parse_ctx_t *ctx, yaml_node_t *n, yaml_node_type_t type, const char *field)
{
    if (n->type == type)
        return 1;
    const char *want = type == YAML_SCALAR_NODE ? "a scalar" : type == YAML_SEQUENCE_NODE ? "a list" : "a mapping";
    ERR(ctx, n, field, "expected %s, found %s", want, gyre_cfg_node_type_name(n));
    return 0;
}

int gyre_cfg_get_string(parse_ctx_t *ctx, yaml_node_t *n, const char *field, char **out)
{
    if (!gyre_cfg_want_type(ctx, n, YAML_SCALAR_NODE, field))
        return 0;
    free(*out);
    *out = gyre_strdup(gyre_cfg_scalar(n));
    return 1;
}

int gyre_cfg_get_uint(parse_ctx_t *ctx, yaml_node_t *n, const char *field, unsigned long long min, unsigned long long max,
                    unsigned long long *out)
{
    if (!gyre_cfg_want_type(ctx, n, YAML_SCALAR_NODE, field))
        return 0;
    const char *s = gyre_cfg_scalar(n);
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] == '\0' || !isdigit((unsigned char)s[0]) || *end != '\0' || errno != 0) {
        ERR(ctx, n, field, "expected a whole number, found '%s'", s);
        return 0;
    }
    if (v < min || v > max) {
        ERR(ctx, n, field, "%llu is out of range (%llu to %llu)", v, min, max);
        return 0;
    }
    *out = v;
    return 1;
}

int gyre_cfg_get_bool(parse_ctx_t *ctx, yaml_node_t *n, const char *field, int *out)
{
    if (!gyre_cfg_want_type(ctx, n, YAML_SCALAR_NODE, field))
        return 0;
    const char *s = gyre_cfg_scalar(n);
    if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "on") == 0) {
        *out = 1;
        return 1;
    }
    if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 || strcmp(s, "off") == 0) {
        *out = 0;
        return 1;
    }
    ERR(ctx, n, field, "expected true or false, found '%s'", s);
    return 0;
}

/* "host:port", "[v6]:port" or ":port". */
static int parse_hostport(const char *s, char **host, uint16_t *port)
{
    const char *colon;
    const char *hstart = s, *hend;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return -EINVAL;
        hstart = s + 1;
        hend = close;
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -EINVAL;
        hend = colon;
    }
    char *end;
    errno = 0;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || p == 0 || p > 65535)
        return -EINVAL;
    *host = hend > hstart ? gyre_strndup(hstart, (size_t)(hend - hstart)) : gyre_strdup("0.0.0.0");
    *port = (uint16_t)p;
    return 0;
}

int gyre_cfg_valid_name(const char *s)
{
    if (s[0] == '\0')
        return 0;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.' || *p == ':'))
            return 0;
    return 1;
}

/* Splits http(s)://host[:port][/path] into the provider's fields (common/wire.c reads it with h2o_url_parse). */
static const char *parse_base_url(gyre_provider_conf_t *p)
{
    h2o_url_t url;
    const char *problem = gyre_wire_url_problem(p->base_url, 0, &url);
    if (problem != NULL)
        return problem;
    p->is_https = url.scheme == &H2O_URL_SCHEME_HTTPS;
    p->host = gyre_strndup(url.host.base, url.host.len);
    p->port = gyre_wire_url_port(&url);
    size_t plen = url.path.len;
    while (plen > 0 && url.path.base[plen - 1] == '/')
        plen--;
    p->base_path = gyre_strndup(url.path.base, plen);
    return NULL;
}

char *gyre_cfg_unresolved_secret(const char *spec)
{
    size_t len = strlen(spec), n = 11 + len;
    if (n < GYRE_AUTH_MIN_SECRET_LEN)
        n = GYRE_AUTH_MIN_SECRET_LEN;
    char *s = gyre_malloc(n + 1);
    memcpy(s, "unresolved:", 11);
    for (size_t i = 0; i < len; i++)
        s[11 + i] = (unsigned char)spec[i] <= 0x20 || (unsigned char)spec[i] >= 0x7f ? '_' : spec[i];
    for (size_t i = 11 + len; i < n; i++)
        s[i] = '_';
    s[n] = '\0';
    return s;
}

/* Loads one key from its literal, env:NAME or file:PATH form. */
char *gyre_cfg_resolve_key(parse_ctx_t *ctx, yaml_node_t *n, const char *field, const char *spec)
{
    if (ctx->unresolved && (strncmp(spec, "env:", 4) == 0 || strncmp(spec, "file:", 5) == 0))
        return gyre_cfg_unresolved_secret(spec);
    if (strncmp(spec, "env:", 4) == 0) {
        const char *name = spec + 4;
        const char *v = getenv(name);
        if (v == NULL || v[0] == '\0') {
            ERR(ctx, n, field, "environment variable %s is not set", name);
            return NULL;
        }
        return gyre_strdup(v);
    }
    if (strncmp(spec, "file:", 5) == 0) {
        const char *path = spec + 5;
        FILE *f = fopen(path, "rb");
        if (f == NULL) {
            ERR(ctx, n, field, "cannot read key file %s: %s", path, strerror(errno));
            return NULL;
        }
        char buf[MAX_KEY_FILE_BYTES + 1];
        size_t len = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        if (len > MAX_KEY_FILE_BYTES) {
            ERR(ctx, n, field, "key file %s is larger than %d bytes", path, MAX_KEY_FILE_BYTES);
            return NULL;
        }
        while (len > 0 && isspace((unsigned char)buf[len - 1]))
            len--;
        size_t start = 0;
        while (start < len && isspace((unsigned char)buf[start]))
            start++;
        if (start == len) {
            ERR(ctx, n, field, "key file %s is empty", path);
            return NULL;
        }
        return gyre_strndup(buf + start, len - start);
    }
    if (spec[0] == '\0') {
        ERR(ctx, n, field, "is empty");
        return NULL;
    }
    return gyre_strdup(spec);
}

static void parse_keys(parse_ctx_t *ctx, yaml_node_t *n, gyre_provider_conf_t *p, size_t pi)
{
    char field[128];
    yaml_node_item_t single = 0;
    yaml_node_item_t *start, *end;
    if (n->type == YAML_SCALAR_NODE) {
        /* keys: sk-x is accepted as a list of one */
        start = &single;
        end = start + 1;
    } else if (gyre_cfg_want_type(ctx, n, YAML_SEQUENCE_NODE, gyre_cfg_path_of(field, sizeof(field), "providers[%zu].keys", pi))) {
        start = n->data.sequence.items.start;
        end = n->data.sequence.items.top;
    } else {
        return;
    }
    for (yaml_node_item_t *it = start; it < end; it++) {
        size_t ki = (size_t)(it - start);
        yaml_node_t *kn = it == &single ? n : yaml_document_get_node(ctx->doc, *it);
        gyre_cfg_path_of(field, sizeof(field), "providers[%zu].keys[%zu]", pi, ki);
        unsigned weight = 1;
        yaml_node_t *value = kn;
        if (kn->type == YAML_MAPPING_NODE) {
            /* {key: env:X, weight: 3} */
            value = NULL;
            for (yaml_node_pair_t *kp = kn->data.mapping.pairs.start; kp < kn->data.mapping.pairs.top; kp++) {
                yaml_node_t *kk = yaml_document_get_node(ctx->doc, kp->key);
                yaml_node_t *kv = yaml_document_get_node(ctx->doc, kp->value);
                char sub[160];
                unsigned long long u;
                if (gyre_cfg_scalar(kk) != NULL && strcmp(gyre_cfg_scalar(kk), "key") == 0)
                    value = kv;
                else if (gyre_cfg_scalar(kk) != NULL && strcmp(gyre_cfg_scalar(kk), "weight") == 0) {
                    if (gyre_cfg_get_uint(ctx, kv, gyre_cfg_path_of(sub, sizeof(sub), "%s.weight", field), 0, 1000000, &u))
                        weight = (unsigned)u;
                } else
                    ERR(ctx, kk, field, "unknown field '%s' (known: key, weight)", gyre_cfg_scalar(kk) ? gyre_cfg_scalar(kk) : "?");
            }
            if (value == NULL) {
                ERR(ctx, kn, field, "needs a 'key'");
                continue;
            }
        }
        if (!gyre_cfg_want_type(ctx, value, YAML_SCALAR_NODE, field))
            continue;
        char *key = gyre_cfg_resolve_key(ctx, value, field, gyre_cfg_scalar(value));
        if (key == NULL)
            continue;
        p->keys = gyre_realloc(p->keys, sizeof(*p->keys) * (p->nkeys + 1));
        p->key_ids = gyre_realloc(p->key_ids, sizeof(*p->key_ids) * (p->nkeys + 1));
        p->key_weights = gyre_realloc(p->key_weights, sizeof(*p->key_weights) * (p->nkeys + 1));
        p->key_weights[p->nkeys] = weight;
        p->keys[p->nkeys] = key;
        char id[256];
        snprintf(id, sizeof(id), "%s#%zu", p->name ? p->name : "provider", ki);
        p->key_ids[p->nkeys] = gyre_strdup(id);
        p->nkeys++;
    }
}

/* breaker: {failures: 5, error_rate_pct: 50, min_requests: 20, window_ms: 10000, cooldown_ms: 5000} */
static void parse_breaker(parse_ctx_t *ctx, yaml_node_t *n, gyre_breaker_conf_t *b, size_t pi)
{
    char field[160];
    if (n->type == YAML_SCALAR_NODE && strcmp(gyre_cfg_scalar(n), "off") == 0) {
        b->failures = 0;
        return;
    }
    if (!gyre_cfg_want_type(ctx, n, YAML_MAPPING_NODE, gyre_cfg_path_of(field, sizeof(field), "providers[%zu].breaker", pi)))
        return;
    for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(ctx->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(ctx->doc, pair->value);
        const char *key = gyre_cfg_scalar(k) ? gyre_cfg_scalar(k) : "?";
        unsigned long long u;
        gyre_cfg_path_of(field, sizeof(field), "providers[%zu].breaker.%s", pi, key);
        if (strcmp(key, "failures") == 0) {
            if (gyre_cfg_get_uint(ctx, v, field, 0, 1000000, &u))
                b->failures = (unsigned)u;
        } else if (strcmp(key, "error_rate_pct") == 0) {
            if (gyre_cfg_get_uint(ctx, v, field, 0, 100, &u))
                b->error_rate_pct = (unsigned)u;
        } else if (strcmp(key, "min_requests") == 0) {
            if (gyre_cfg_get_uint(ctx, v, field, 1, 1000000, &u))
                b->min_requests = (unsigned)u;
        } else if (strcmp(key, "window_ms") == 0) {
            if (gyre_cfg_get_uint(ctx, v, field, 10, 3600000, &u))
                b->window_ms = u;
        } else if (strcmp(key, "cooldown_ms") == 0) {
            if (gyre_cfg_get_uint(ctx, v, field, 1, 3600000, &u))
                b->cooldown_ms = u;
        } else {
            ERR(ctx, k, gyre_cfg_path_of(field, sizeof(field), "providers[%zu].breaker", pi),
                "unknown field '%s' (known: failures, error_rate_pct, min_requests, window_ms, cooldown_ms)", key);
        }
    }
}

/* A price: a number >= 0, in USD per million tokens. */
/*
 * A size with an optional unit: "20GB", "64MB", "512KB", "4096" (bytes).  Units are powers of 1024 (GB is GiB),
 * as disks are sized for a log; "B" is accepted.
 */
int gyre_cfg_get_size(parse_ctx_t *ctx, yaml_node_t *n, const char *field, uint64_t min, uint64_t *out)
{
    if (!gyre_cfg_want_type(ctx, n, YAML_SCALAR_NODE, field))
        return 0;
    const char *s = gyre_cfg_scalar(n);
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    static const struct {
        const char *unit;
        int shift;
    } units[] = {{"", 0}, {"B", 0}, {"KB", 10}, {"K", 10}, {"MB", 20}, {"M", 20}, {"GB", 30}, {"G", 30}, {"TB", 40}, {"T", 40}};
    int shift = -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && isdigit((unsigned char)s[0]) && errno == 0; i++)
        if (strcasecmp(end, units[i].unit) == 0)
            shift = units[i].shift;
    if (shift < 0 || (shift != 0 && v > (UINT64_MAX >> shift))) {
        ERR(ctx, n, field, "expected a size such as 20GB, 64MB or 4096 (bytes), found '%s'", s);
        return 0;
    }
    uint64_t bytes = (uint64_t)v << shift;
    if (bytes < min) {
        ERR(ctx, n, field, "%s is below the least allowed, %llu bytes", s, (unsigned long long)min);
        return 0;
    }
    *out = bytes;
    return 1;
}

/* A duration "30d", "12h", "15m", "90s", "500ms" in microseconds; "0" alone is 0. */
int gyre_cfg_get_duration(parse_ctx_t *ctx, yaml_node_t *n, const char *field, int64_t *out_us)
{
    if (!gyre_cfg_want_type(ctx, n, YAML_SCALAR_NODE, field))
        return 0;
    const char *s = gyre_cfg_scalar(n);
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    static const struct {
        const char *unit;
        int64_t us;
    } units[] = {{"ms", 1000}, {"s", 1000000}, {"m", 60000000}, {"h", 3600000000LL}, {"d", 86400000000LL},
                 {"w", 604800000000LL}};
    int64_t mul = -1;
    if (isdigit((unsigned char)s[0]) && errno == 0) {
        if (*end == '\0' && v == 0)
            mul = 1;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
            if (strcmp(end, units[i].unit) == 0)
                mul = units[i].us;
    }
    if (mul < 0 || v > (unsigned long long)(INT64_MAX / mul)) {
        ERR(ctx, n, field, "expected a duration such as 30d, 12h, 15m, 90s or 500ms, found '%s'", s);
        return 0;
    }
    *out_us = (int64_t)v * mul;
    return 1;
}

/* The trace log's fields of `store:` (config.h); 0 when `key` is not one of them. */
static int parse_store_log(parse_ctx_t *ctx, gyre_config_t *c, const char *key, yaml_node_t *v)
{
    unsigned long long u;
    int64_t us;
    if (strcmp(key, "log") == 0) {
        gyre_cfg_get_string(ctx, v, "store.log", &c->store_log);
    } else if (strcmp(key, "fsync_ms") == 0) {
        if (gyre_cfg_get_uint(ctx, v, "store.fsync_ms", 1, 3600000, &u))
            c->store_fsync_ms = (unsigned)u;
    } else if (strcmp(key, "retention") == 0) {
        if (gyre_cfg_get_duration(ctx, v, "store.retention", &us))
            c->store_retention_us = us == 0 ? -1 : us;
    } else if (strcmp(key, "max_bytes") == 0) {
        gyre_cfg_get_size(ctx, v, "store.max_bytes", 65536, &c->store_max_bytes);
    } else if (strcmp(key, "segment_bytes") == 0) {
        gyre_cfg_get_size(ctx, v, "store.segment_bytes", 4096, &c->store_segment_bytes);
    } else {
        return 0;
    }
    return 1;
}

int gyre_cfg_get_price(parse_ctx_t *ctx, yaml_node_t *n, const char *field, double *out)
{
    if (!gyre_cfg_want_type(ctx, n, YAML_SCALAR_NODE, field))
        return 0;
    const char *s = gyre_cfg_scalar(n);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (s[0] == '\0' || *end != '\0' || errno != 0 || !(v >= 0) || v > 1e9) {
        ERR(ctx, n, field, "expected a price >= 0 in USD per million tokens, found '%s'", s);
        return 0;
    }
    *out = v;
    return 1;
}

/* prices: {MODEL: {input: X, output: Y, cached_input: Z, cache_write: W}} on a provider. */
static void parse_provider_prices(parse_ctx_t *ctx, yaml_node_t *n, gyre_provider_conf_t *p, size_t pi)
{
    char field[256];
    if (!gyre_cfg_want_type(ctx, n, YAML_MAPPING_NODE, gyre_cfg_path_of(field, sizeof(field), "providers[%zu].prices", pi)))
        return;
    size_t cap = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start), count = 0;
    const char **models = gyre_calloc(cap ? cap : 1, sizeof(*models));
    gyre_price_t *prices = gyre_calloc(cap ? cap : 1, sizeof(*prices));
    int ok = 1;
    for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(ctx->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(ctx->doc, pair->value);
        const char *model = gyre_cfg_scalar(k);
        if (model == NULL || model[0] == '\0') {
            ERR(ctx, k, gyre_cfg_path_of(field, sizeof(field), "providers[%zu].prices", pi), "a model name is empty");
            ok = 0;
            continue;
        }
        gyre_cfg_path_of(field, sizeof(field), "providers[%zu].prices.%.160s", pi, model);
        for (size_t j = 0; j < count; j++)
            if (strcmp(models[j], model) == 0) {
                ERR(ctx, k, field, "listed twice");
                ok = 0;
            }
        if (!gyre_cfg_want_type(ctx, v, YAML_MAPPING_NODE, field)) {
            ok = 0;
            continue;
        }
        gyre_price_t pr = {-1, -1, -1, -1};
        int have_input = 0, have_output = 0;
        for (yaml_node_pair_t *fp = v->data.mapping.pairs.start; fp < v->data.mapping.pairs.top; fp++) {
            yaml_node_t *fk = yaml_document_get_node(ctx->doc, fp->key);
            yaml_node_t *fv = yaml_document_get_node(ctx->doc, fp->value);
            const char *name = gyre_cfg_scalar(fk) != NULL ? gyre_cfg_scalar(fk) : "?";
            char sub[300];
            double *slot = strcmp(name, "input") == 0          ? &pr.input
                           : strcmp(name, "output") == 0       ? &pr.output
                           : strcmp(name, "cached_input") == 0 ? &pr.cached_input
                           : strcmp(name, "cache_write") == 0  ? &pr.cache_write
                                                               : NULL;
            if (slot == NULL) {
                ERR(ctx, fk, field, "unknown field '%s' (known: input, output, cached_input, cache_write)", name);
                ok = 0;
            } else {
                have_input |= slot == &pr.input;
                have_output |= slot == &pr.output;
                if (!gyre_cfg_get_price(ctx, fv, gyre_cfg_path_of(sub, sizeof(sub), "%s.%s", field, name), slot))
                    ok = 0;
            }
        }
        if (!have_input || !have_output) {
            /* Both, or the cost would be a guess; the missing one is named. */
            char sub[300];
            if (!have_input)
                ERR(ctx, v, gyre_cfg_path_of(sub, sizeof(sub), "%s.input", field), "is required");
            if (!have_output)
                ERR(ctx, v, gyre_cfg_path_of(sub, sizeof(sub), "%s.output", field), "is required");
            ok = 0;
        }
        models[count] = model;
        prices[count++] = pr;
    }
    if (ok) {
        gyre_prices_free(p->prices);
        p->prices = gyre_prices_create(models, prices, count);
    }
    free(models);
    free(prices);
}

/* `health_check: true` (the defaults) or a mapping of interval, timeout, path and unhealthy_after. */
static void parse_health_check(parse_ctx_t *ctx, yaml_node_t *n, gyre_provider_conf_t *p, size_t pi)
{
    char field[128];
    gyre_cfg_path_of(field, sizeof(field), "providers[%zu].health_check", pi);
    p->hc_interval_ms = 30000;
    p->hc_timeout_ms = 5000;
    p->hc_unhealthy_after = 2;
    free(p->hc_path);
    p->hc_path = NULL;
    if (n->type == YAML_SCALAR_NODE) {
        gyre_cfg_get_bool(ctx, n, field, &p->hc_enabled);
    } else if (gyre_cfg_want_type(ctx, n, YAML_MAPPING_NODE, field)) {
        p->hc_enabled = 1;
        for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
            yaml_node_t *k = yaml_document_get_node(ctx->doc, pair->key);
            yaml_node_t *v = yaml_document_get_node(ctx->doc, pair->value);
            const char *key = gyre_cfg_scalar(k) ? gyre_cfg_scalar(k) : "?";
            unsigned long long u;
            int64_t us;
            gyre_cfg_path_of(field, sizeof(field), "providers[%zu].health_check.%s", pi, key);
            if (strcmp(key, "interval") == 0 || strcmp(key, "timeout") == 0) {
                /* 10ms to an hour: a shorter interval would be a load test of the provider, a longer one useless. */
                if (gyre_cfg_get_duration(ctx, v, field, &us)) {
                    if (us < 10000 || us > 3600000000LL)
                        ERR(ctx, v, field, "must be between 10ms and 1h");
                    else if (key[0] == 'i')
                        p->hc_interval_ms = (uint64_t)us / 1000;
                    else
                        p->hc_timeout_ms = (uint64_t)us / 1000;
                }
            } else if (strcmp(key, "path") == 0) {
                free(p->hc_path);
                p->hc_path = NULL;
                if (gyre_cfg_get_string(ctx, v, field, &p->hc_path)) {
                    /* It goes into a request line: a '/'-led path of visible ASCII, nothing a header could split. */
                    int ok = p->hc_path[0] == '/' && strlen(p->hc_path) <= 512;
                    for (const char *c = p->hc_path; ok && *c; c++)
                        ok = *c > 0x20 && *c < 0x7f;
                    if (!ok)
                        ERR(ctx, v, field, "must start with '/' and be at most 512 visible ASCII characters");
                }
            } else if (strcmp(key, "unhealthy_after") == 0) {
                if (gyre_cfg_get_uint(ctx, v, field, 1, 1000, &u))
                    p->hc_unhealthy_after = (unsigned)u;
            } else {
                ERR(ctx, k, gyre_cfg_path_of(field, sizeof(field), "providers[%zu].health_check", pi),
                    "unknown field '%s' (known: interval, timeout, path, unhealthy_after)", key);
            }
        }
    }
    if (p->hc_enabled && p->hc_path == NULL)
        p->hc_path = strdup("/models");
}

static void parse_provider(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n, size_t pi)
{
    char field[128];
    gyre_provider_conf_t *p = &c->providers[pi];
    memset(p, 0, sizeof(*p));
    p->tls_verify = 1;
    p->timeout_ms = GYRE_DEFAULT_TIMEOUT_MS;
    p->max_response_bytes = c->max_response_bytes; /* the root's, parsed before any provider */
    p->breaker = (gyre_breaker_conf_t){5, 50, 20, 10000, 5000};
    p->direct = c->direct; /* the root's, unless the provider says */
    p->line = gyre_cfg_line_of(n);
    if (!gyre_cfg_want_type(ctx, n, YAML_MAPPING_NODE, gyre_cfg_path_of(field, sizeof(field), "providers[%zu]", pi)))
        return;
    yaml_node_t *keys_node = NULL, *kind_node = NULL, *url_node = NULL;
    for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(ctx->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(ctx->doc, pair->value);
        const char *key = gyre_cfg_scalar(k);
        unsigned long long u;
        if (key == NULL) {
            ERR(ctx, k, gyre_cfg_path_of(field, sizeof(field), "providers[%zu]", pi), "field names must be scalars");
        } else if (strcmp(key, "name") == 0) {
            if (gyre_cfg_get_string(ctx, v, gyre_cfg_path_of(field, sizeof(field), "providers[%zu].name", pi), &p->name) &&
                strlen(p->name) > GYRE_WIRE_NAME_MAX)
                ERR(ctx, v, field, "is %zu bytes long; a name is at most %d", strlen(p->name), GYRE_WIRE_NAME_MAX);
            else if (p->name != NULL && !gyre_cfg_valid_name(p->name))
                ERR(ctx, v, field, "'%s' is not a valid name (letters, digits, '-', '_', '.', ':')", p->name);
        } else if (strcmp(key, "kind") == 0) {
            kind_node = v;
        } else if (strcmp(key, "base_url") == 0) {
            url_node = v;
            gyre_cfg_get_string(ctx, v, gyre_cfg_path_of(field, sizeof(field), "providers[%zu].base_url", pi), &p->base_url);
        } else if (strcmp(key, "keys") == 0) {
            keys_node = v; /* after the name, which key ids use */
        } else if (strcmp(key, "ca_file") == 0) {
            if (gyre_cfg_get_string(ctx, v, gyre_cfg_path_of(field, sizeof(field), "providers[%zu].ca_file", pi), &p->ca_file)) {
                FILE *f = fopen(p->ca_file, "r");
                if (f == NULL)
                    ERR(ctx, v, field, "cannot read %s: %s", p->ca_file, strerror(errno));
                else
                    fclose(f);
            }
        } else if (strcmp(key, "tls_verify") == 0) {
            gyre_cfg_get_bool(ctx, v, gyre_cfg_path_of(field, sizeof(field), "providers[%zu].tls_verify", pi), &p->tls_verify);
        } else if (strcmp(key, "timeout_ms") == 0) {
            if (gyre_cfg_get_uint(ctx, v, gyre_cfg_path_of(field, sizeof(field), "providers[%zu].timeout_ms", pi), 1, 3600000, &u))
                p->timeout_ms = u;
        } else if (strcmp(key, "max_response_bytes") == 0) {
            if (gyre_cfg_get_uint(ctx, v, gyre_cfg_path_of(field, sizeof(field), "providers[%zu].max_response_bytes", pi), 1024,
                         (unsigned long long)1 << 30, &u))
                p->max_response_bytes = (size_t)u;
        } else if (strcmp(key, "key_strategy") == 0) {
            if (gyre_cfg_want_type(ctx, v, YAML_SCALAR_NODE, gyre_cfg_path_of(field, sizeof(field), "providers[%zu].key_strategy", pi))) {
                if (strcmp(gyre_cfg_scalar(v), "round_robin") == 0)
                    p->key_strategy = GYRE_KEYS_ROUND_ROBIN;
                else if (strcmp(gyre_cfg_scalar(v), "weighted") == 0)
                    p->key_strategy = GYRE_KEYS_WEIGHTED;
                else
                    ERR(ctx, v, field, "unknown key strategy '%s' (supported: round_robin, weighted)", gyre_cfg_scalar(v));
            }
        } else if (strcmp(key, "breaker") == 0) {
            parse_breaker(ctx, v, &p->breaker, pi);
        } else if (strcmp(key, "api_version") == 0) {
            gyre_cfg_get_string(ctx, v, gyre_cfg_path_of(field, sizeof(field), "providers[%zu].api_version", pi), &p->api_version);
        } else if (strcmp(key, "region") == 0) {
            gyre_cfg_get_string(ctx, v, gyre_cfg_path_of(field, sizeof(field), "providers[%zu].region", pi), &p->region);
        } else if (strcmp(key, "max_tokens") == 0) {
            if (gyre_cfg_get_uint(ctx, v, gyre_cfg_path_of(field, sizeof(field), "providers[%zu].max_tokens", pi), 1, 10000000, &u))
                p->max_tokens = (unsigned)u;
        } else if (strcmp(key, "prices") == 0) {
            parse_provider_prices(ctx, v, p, pi);
        } else if (strcmp(key, "health_check") == 0) {
            parse_health_check(ctx, v, p, pi);
        } else if (strcmp(key, "direct") == 0) {
            gyre_cfg_get_bool(ctx, v, gyre_cfg_path_of(field, sizeof(field), "providers[%zu].direct", pi), &p->direct);
        } else {
            ERR(ctx, k, gyre_cfg_path_of(field, sizeof(field), "providers[%zu]", pi),
                "unknown field '%s' (known: name, kind, base_url, keys, key_strategy, breaker, ca_file, tls_verify, "
                "timeout_ms, max_response_bytes, api_version, max_tokens, region, prices, direct, health_check)",
                key);
        }
    }
    if (p->name == NULL)
        ERR(ctx, n, gyre_cfg_path_of(field, sizeof(field), "providers[%zu].name", pi), "is required");
    if (kind_node == NULL) {
        ERR(ctx, n, gyre_cfg_path_of(field, sizeof(field), "providers[%zu].kind", pi), "is required (supported: " SUPPORTED_KINDS ")");
    } else if (gyre_cfg_want_type(ctx, kind_node, YAML_SCALAR_NODE, gyre_cfg_path_of(field, sizeof(field), "providers[%zu].kind", pi))) {
        static const struct {
            const char *name;
            gyre_provider_kind_t kind;
        } kinds[] = {{"openai", GYRE_PROVIDER_OPENAI},
                     {"azure", GYRE_PROVIDER_AZURE},
                     {"anthropic", GYRE_PROVIDER_ANTHROPIC},
                     {"gemini", GYRE_PROVIDER_GEMINI},
                     {"bedrock", GYRE_PROVIDER_BEDROCK}};
        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
            if (strcmp(gyre_cfg_scalar(kind_node), kinds[i].name) == 0)
                p->kind = kinds[i].kind;
        if (p->kind == 0)
            ERR(ctx, kind_node, field, "unsupported kind '%s' (supported: " SUPPORTED_KINDS ")", gyre_cfg_scalar(kind_node));
    }
    if (url_node == NULL) {
        ERR(ctx, n, gyre_cfg_path_of(field, sizeof(field), "providers[%zu].base_url", pi), "is required");
    } else if (p->base_url != NULL) {
        const char *err = parse_base_url(p);
        if (err != NULL)
            ERR(ctx, url_node, gyre_cfg_path_of(field, sizeof(field), "providers[%zu].base_url", pi), "'%s' %s", p->base_url,
                err);
    }
    if (keys_node != NULL)
        parse_keys(ctx, keys_node, p, pi);
    if (p->max_tokens == 0)
        p->max_tokens = GYRE_DEFAULT_MAX_TOKENS;
    if (p->api_version == NULL && p->kind == GYRE_PROVIDER_AZURE)
        p->api_version = gyre_strdup("2024-10-21");
    if (p->api_version == NULL && p->kind == GYRE_PROVIDER_ANTHROPIC)
        p->api_version = gyre_strdup("2023-06-01");
    if (p->region == NULL && p->kind == GYRE_PROVIDER_BEDROCK && p->host != NULL) {
        /* bedrock-runtime.REGION.amazonaws.com */
        const char *h = p->host;
        if (strncmp(h, "bedrock-runtime.", 16) == 0 && strchr(h + 16, '.') != NULL)
            p->region = gyre_strndup(h + 16, (size_t)(strchr(h + 16, '.') - (h + 16)));
        else
            p->region = gyre_strdup("us-east-1");
    }
    if (p->kind == GYRE_PROVIDER_BEDROCK)
        for (size_t i = 0; i < p->nkeys; i++) {
            const char *colon = strchr(p->keys[i], ':');
            if (colon != NULL && (colon == p->keys[i] || colon[1] == '\0' || colon[1] == ':'))
                ERR(ctx, keys_node, gyre_cfg_path_of(field, sizeof(field), "providers[%zu].keys[%zu]", pi, i),
                    "a bedrock key is ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN] or a Bedrock API key");
        }
    for (size_t j = 0; j < pi; j++)
        if (p->name != NULL && c->providers[j].name != NULL && strcmp(p->name, c->providers[j].name) == 0)
            ERR(ctx, n, gyre_cfg_path_of(field, sizeof(field), "providers[%zu].name", pi),
                "'%s' is already used by providers[%zu]", p->name, j);
}

static void parse_target(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n, gyre_target_conf_t *t, size_t ri,
                         const char *list, size_t ti)
{
    char field[128];
    t->weight = 1;
    t->provider = SIZE_MAX;
    if (!gyre_cfg_want_type(ctx, n, YAML_MAPPING_NODE, gyre_cfg_path_of(field, sizeof(field), "routes[%zu].%s[%zu]", ri, list, ti)))
        return;
    yaml_node_t *prov_node = NULL;
    for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(ctx->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(ctx->doc, pair->value);
        const char *key = gyre_cfg_scalar(k);
        unsigned long long u;
        if (key != NULL && strcmp(key, "provider") == 0) {
            prov_node = v;
        } else if (key != NULL && strcmp(key, "model") == 0) {
            gyre_cfg_get_string(ctx, v, gyre_cfg_path_of(field, sizeof(field), "routes[%zu].%s[%zu].model", ri, list, ti), &t->model);
        } else if (key != NULL && strcmp(key, "weight") == 0) {
            if (gyre_cfg_get_uint(ctx, v, gyre_cfg_path_of(field, sizeof(field), "routes[%zu].%s[%zu].weight", ri, list, ti), 0, 1000000,
                         &u))
                t->weight = (unsigned)u;
        } else {
            ERR(ctx, k, gyre_cfg_path_of(field, sizeof(field), "routes[%zu].%s[%zu]", ri, list, ti),
                "unknown field '%s' (known: provider, model, weight)", key ? key : "?");
        }
    }
    if (prov_node == NULL) {
        ERR(ctx, n, gyre_cfg_path_of(field, sizeof(field), "routes[%zu].%s[%zu].provider", ri, list, ti), "is required");
    } else if (gyre_cfg_want_type(ctx, prov_node, YAML_SCALAR_NODE,
                         gyre_cfg_path_of(field, sizeof(field), "routes[%zu].%s[%zu].provider", ri, list, ti))) {
        const char *name = gyre_cfg_scalar(prov_node);
        for (size_t i = 0; i < c->nproviders; i++)
            if (c->providers[i].name != NULL && strcmp(c->providers[i].name, name) == 0)
                t->provider = i;
        if (t->provider == SIZE_MAX)
            ERR(ctx, prov_node, field, "no provider is named '%s'", name);
    }
    char why[96];
    if (t->model == NULL)
        ERR(ctx, n, gyre_cfg_path_of(field, sizeof(field), "routes[%zu].%s[%zu].model", ri, list, ti), "is required");
    else if (gyre_wire_name_problem(t->model, strlen(t->model), why, sizeof(why)) != NULL)
        /* The same rule as a client's model: it is sent upstream and echoed in x-gyre-model. */
        ERR(ctx, n, gyre_cfg_path_of(field, sizeof(field), "routes[%zu].%s[%zu].model", ri, list, ti),
            "must be 1 to %d bytes of printable ASCII (0x21-0x7E); %s", GYRE_WIRE_NAME_MAX, why);
}

/* A list of targets (`targets:` or `fallbacks:`); returns the count parsed. */
static size_t parse_target_list(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *list, size_t ri, const char *name,
                                gyre_target_conf_t **out)
{
    char field[128];
    if (!gyre_cfg_want_type(ctx, list, YAML_SEQUENCE_NODE, gyre_cfg_path_of(field, sizeof(field), "routes[%zu].%s", ri, name)))
        return 0;
    size_t nt = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
    if (nt == 0)
        return 0;
    *out = gyre_calloc(nt, sizeof(**out));
    for (size_t ti = 0; ti < nt; ti++)
        parse_target(ctx, c, yaml_document_get_node(ctx->doc, list->data.sequence.items.start[ti]), &(*out)[ti], ri,
                     name, ti);
    return nt;
}

/* fallback_on: [connect, timeout, 429, 500, ...] */
static void parse_fallback_on(parse_ctx_t *ctx, yaml_node_t *n, gyre_route_conf_t *r, size_t ri)
{
    char field[128];
    if (!gyre_cfg_want_type(ctx, n, YAML_SEQUENCE_NODE, gyre_cfg_path_of(field, sizeof(field), "routes[%zu].fallback_on", ri)))
        return;
    r->fallback_on = 0;
    r->nfallback_statuses = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        yaml_node_t *v = yaml_document_get_node(ctx->doc, *it);
        gyre_cfg_path_of(field, sizeof(field), "routes[%zu].fallback_on[%zu]", ri, (size_t)(it - n->data.sequence.items.start));
        if (!gyre_cfg_want_type(ctx, v, YAML_SCALAR_NODE, field))
            continue;
        const char *t = gyre_cfg_scalar(v);
        char *end;
        long code = strtol(t, &end, 10);
        if (strcmp(t, "connect") == 0)
            r->fallback_on |= GYRE_FALLBACK_CONNECT;
        else if (strcmp(t, "timeout") == 0)
            r->fallback_on |= GYRE_FALLBACK_TIMEOUT;
        else if (*t != '\0' && *end == '\0' && code >= 400 && code <= 599) {
            if (code < 500 && code != 408 && code != 409 && code != 429)
                ERR(ctx, v, field, "%ld is the client's mistake, which another target would answer the same way "
                                   "(allowed: 408, 409, 429 and 5xx)", code);
            else if (r->nfallback_statuses == GYRE_FALLBACK_MAX_STATUSES)
                ERR(ctx, v, field, "at most %d statuses", GYRE_FALLBACK_MAX_STATUSES);
            else
                r->fallback_statuses[r->nfallback_statuses++] = (unsigned short)code;
        } else
            ERR(ctx, v, field, "'%s' is not a failure gyre falls back on (connect, timeout, or a status 408-599)", t);
    }
}

/* cache: true | {ttl_ms: 300000, max_bytes: 67108864} */
static void parse_cache(parse_ctx_t *ctx, yaml_node_t *n, gyre_route_conf_t *r, size_t ri)
{
    char field[128];
    if (n->type == YAML_SCALAR_NODE) {
        gyre_cfg_get_bool(ctx, n, gyre_cfg_path_of(field, sizeof(field), "routes[%zu].cache", ri), &r->cache);
        return;
    }
    if (!gyre_cfg_want_type(ctx, n, YAML_MAPPING_NODE, gyre_cfg_path_of(field, sizeof(field), "routes[%zu].cache", ri)))
        return;
    r->cache = 1;
    for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(ctx->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(ctx->doc, pair->value);
        const char *key = gyre_cfg_scalar(k) ? gyre_cfg_scalar(k) : "?";
        unsigned long long u;
        gyre_cfg_path_of(field, sizeof(field), "routes[%zu].cache.%s", ri, key);
        if (strcmp(key, "ttl_ms") == 0) {
            if (gyre_cfg_get_uint(ctx, v, field, 1, 30ULL * 24 * 3600 * 1000, &u))
                r->cache_ttl_ms = u;
        } else if (strcmp(key, "max_bytes") == 0) {
            if (gyre_cfg_get_uint(ctx, v, field, 4096, (unsigned long long)1 << 36, &u))
                r->cache_max_bytes = (size_t)u;
        } else if (strcmp(key, "enabled") == 0) {
            gyre_cfg_get_bool(ctx, v, field, &r->cache);
        } else {
            ERR(ctx, k, gyre_cfg_path_of(field, sizeof(field), "routes[%zu].cache", ri),
                "unknown field '%s' (known: enabled, ttl_ms, max_bytes)", key);
        }
    }
}

/* A scalar that must be one of `names` (NULL-terminated); returns its index, or -1 after an error. */
int gyre_cfg_get_choice(parse_ctx_t *ctx, yaml_node_t *n, const char *field, const char *const *names)
{
    if (!gyre_cfg_want_type(ctx, n, YAML_SCALAR_NODE, field))
        return -1;
    gyre_buf_t known;
    gyre_buf_init(&known, 1024);
    for (int i = 0; names[i] != NULL; i++) {
        if (strcmp(gyre_cfg_scalar(n), names[i]) == 0) {
            gyre_buf_dispose(&known);
            return i;
        }
        gyre_buf_appendf(&known, "%s%s", i ? ", " : "", names[i]);
    }
    ERR(ctx, n, field, "unknown value '%s' (supported: %s)", gyre_cfg_scalar(n),
        gyre_buf_failed(&known) == 0 ? known.base : "too many to list");
    gyre_buf_dispose(&known);
    return -1;
}

unsigned gyre_config_redact_kind(const char *name)
{
    static const struct {
        const char *name;
        unsigned kind;
    } names[] = {{"email", GYRE_REDACT_EMAIL},
                 {"phone", GYRE_REDACT_PHONE},
                 {"card", GYRE_REDACT_CARD},
                 {"api_key", GYRE_REDACT_API_KEY}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(name, names[i].name) == 0)
            return names[i].kind;
    return 0;
}

/* redact: true | false | [email, phone, card, api_key] */
static void parse_redact(parse_ctx_t *ctx, yaml_node_t *n, const char *field, unsigned *out)
{
    if (n->type == YAML_SCALAR_NODE) {
        int on;
        if (gyre_cfg_get_bool(ctx, n, field, &on))
            *out = on ? GYRE_REDACT_ALL : 0;
        return;
    }
    if (!gyre_cfg_want_type(ctx, n, YAML_SEQUENCE_NODE, field))
        return;
    unsigned kinds = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        yaml_node_t *v = yaml_document_get_node(ctx->doc, *it);
        char sub[160];
        gyre_cfg_path_of(sub, sizeof(sub), "%s[%zu]", field, (size_t)(it - n->data.sequence.items.start));
        if (!gyre_cfg_want_type(ctx, v, YAML_SCALAR_NODE, sub))
            continue;
        unsigned k = gyre_config_redact_kind(gyre_cfg_scalar(v));
        if (k == 0)
            ERR(ctx, v, sub, "unknown kind '%s' (known: email, phone, card, api_key)", gyre_cfg_scalar(v));
        kinds |= k;
    }
    *out = kinds;
}

static void parse_route(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n, size_t ri)
{
    static const char *const strategies[] = {"weighted", "least_latency", "least_inflight", "cheapest", NULL};
    static const char *const midstream[] = {"error", "resume", NULL};
    static const char *const affinity[] = {"none", "session", NULL};
    char field[128];
    gyre_route_conf_t *r = &c->routes[ri];
    memset(r, 0, sizeof(*r));
    r->line = gyre_cfg_line_of(n);
    r->fallback_on = GYRE_FALLBACK_CONNECT | GYRE_FALLBACK_TIMEOUT;
    static const unsigned short default_statuses[] = {429, 500, 502, 503, 504, 529};
    memcpy(r->fallback_statuses, default_statuses, sizeof(default_statuses));
    r->nfallback_statuses = sizeof(default_statuses) / sizeof(default_statuses[0]);
    r->backoff_ms = 100;
    r->backoff_max_ms = 5000;
    r->cache_ttl_ms = 300000;
    r->cache_max_bytes = (size_t)64 << 20;
    r->capture = 1;
    r->redact = c->redact; /* the root's `redact:` is read before any route */
    if (!gyre_cfg_want_type(ctx, n, YAML_MAPPING_NODE, gyre_cfg_path_of(field, sizeof(field), "routes[%zu]", ri)))
        return;
    yaml_node_t *targets = NULL, *fallbacks = NULL;
    for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(ctx->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(ctx->doc, pair->value);
        const char *key = gyre_cfg_scalar(k) ? gyre_cfg_scalar(k) : "?";
        unsigned long long u;
        int choice;
        gyre_cfg_path_of(field, sizeof(field), "routes[%zu].%s", ri, key);
        if (strcmp(key, "name") == 0) {
            if (gyre_cfg_get_string(ctx, v, field, &r->name) && strlen(r->name) > GYRE_WIRE_NAME_MAX)
                ERR(ctx, v, field, "is %zu bytes long; a name is at most %d", strlen(r->name), GYRE_WIRE_NAME_MAX);
            else if (r->name != NULL && !gyre_cfg_valid_name(r->name))
                ERR(ctx, v, field, "'%s' is not a valid route name (letters, digits, '-', '_', '.', ':'; no '/')",
                    r->name);
        } else if (strcmp(key, "targets") == 0) {
            targets = v;
        } else if (strcmp(key, "fallbacks") == 0) {
            fallbacks = v;
        } else if (strcmp(key, "strategy") == 0) {
            if ((choice = gyre_cfg_get_choice(ctx, v, field, strategies)) >= 0)
                r->strategy = (gyre_route_strategy_t)choice;
        } else if (strcmp(key, "fallback_on") == 0) {
            parse_fallback_on(ctx, v, r, ri);
        } else if (strcmp(key, "retries") == 0) {
            if (gyre_cfg_get_uint(ctx, v, field, 0, 10, &u))
                r->retries = (unsigned)u;
        } else if (strcmp(key, "backoff_ms") == 0) {
            if (gyre_cfg_get_uint(ctx, v, field, 0, 600000, &u))
                r->backoff_ms = u;
        } else if (strcmp(key, "backoff_max_ms") == 0) {
            if (gyre_cfg_get_uint(ctx, v, field, 0, 600000, &u))
                r->backoff_max_ms = u;
        } else if (strcmp(key, "attempt_timeout_ms") == 0) {
            if (gyre_cfg_get_uint(ctx, v, field, 1, 3600000, &u))
                r->attempt_timeout_ms = u;
        } else if (strcmp(key, "deadline_ms") == 0) {
            if (gyre_cfg_get_uint(ctx, v, field, 1, 3600000, &u))
                r->deadline_ms = u;
        } else if (strcmp(key, "first_byte_timeout_ms") == 0) {
            if (gyre_cfg_get_uint(ctx, v, field, 1, 3600000, &u))
                r->first_byte_timeout_ms = u;
        } else if (strcmp(key, "midstream") == 0) {
            if ((choice = gyre_cfg_get_choice(ctx, v, field, midstream)) >= 0)
                r->midstream_resume = choice == 1;
        } else if (strcmp(key, "affinity") == 0) {
            if ((choice = gyre_cfg_get_choice(ctx, v, field, affinity)) >= 0)
                r->affinity_session = choice == 1;
        } else if (strcmp(key, "cache") == 0) {
            parse_cache(ctx, v, r, ri);
        } else if (strcmp(key, "capture") == 0) {
            gyre_cfg_get_bool(ctx, v, field, &r->capture);
        } else if (strcmp(key, "redact") == 0) {
            parse_redact(ctx, v, field, &r->redact);
        } else if (strcmp(key, "guardrails") == 0) {
            gyre_cfg_parse_guardrails(ctx, c, v, r, ri);
        } else {
            ERR(ctx, k, gyre_cfg_path_of(field, sizeof(field), "routes[%zu]", ri),
                "unknown field '%s' (known: name, targets, fallbacks, strategy, fallback_on, retries, backoff_ms, "
                "backoff_max_ms, attempt_timeout_ms, deadline_ms, first_byte_timeout_ms, midstream, affinity, cache, "
                "capture, redact, guardrails)",
                key);
        }
    }
    if (r->name == NULL)
        ERR(ctx, n, gyre_cfg_path_of(field, sizeof(field), "routes[%zu].name", ri), "is required");
    for (size_t j = 0; j < ri; j++)
        if (r->name != NULL && c->routes[j].name != NULL && strcmp(r->name, c->routes[j].name) == 0)
            ERR(ctx, n, gyre_cfg_path_of(field, sizeof(field), "routes[%zu].name", ri), "'%s' is already used by routes[%zu]",
                r->name, j);
    if (fallbacks != NULL)
        r->nfallbacks = parse_target_list(ctx, c, fallbacks, ri, "fallbacks", &r->fallbacks);
    if (targets == NULL) {
        ERR(ctx, n, gyre_cfg_path_of(field, sizeof(field), "routes[%zu].targets", ri), "is required");
        return;
    }
    r->ntargets = parse_target_list(ctx, c, targets, ri, "targets", &r->targets);
    if (r->ntargets == 0) {
        if (targets->type == YAML_SEQUENCE_NODE)
            ERR(ctx, targets, gyre_cfg_path_of(field, sizeof(field), "routes[%zu].targets", ri), "needs at least one target");
        return;
    }
    for (size_t ti = 0; ti < r->ntargets; ti++)
        r->total_weight += r->targets[ti].weight;
    if (r->total_weight == 0)
        ERR(ctx, targets, gyre_cfg_path_of(field, sizeof(field), "routes[%zu].targets", ri),
            "the weights of the targets add up to 0");
    if (r->backoff_max_ms < r->backoff_ms)
        ERR(ctx, n, gyre_cfg_path_of(field, sizeof(field), "routes[%zu].backoff_max_ms", ri),
            "%llu is less than backoff_ms (%llu)", (unsigned long long)r->backoff_max_ms,
            (unsigned long long)r->backoff_ms);
}

void gyre_cfg_parse_route(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n, size_t ri)
{
    parse_route(ctx, c, n, ri);
}

/*
 * otlp: {endpoint: URL, headers: {name: value}, timeout_ms, batch_max, interval_ms, queue_max, service_name,
 * ca_file}.
 * Header values are resolved like keys (env:NAME, file:PATH) and never appear in an error.
 */
/*
 * `store:` a section configures the trace store, and with it every call is stored with its bodies
 * (`traces:` defaults to true here).  `sqlite: PATH` and `dsn: DSN` name it (one of them; neither: ./gyre.db);
 * `traces: false` keeps none, `capture: false` keeps the calls without a route without their bodies.
 */
static void parse_store(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *v)
{
    char *sqlite = NULL, *dsn = NULL;
    int sqlite_line = 0, dsn_line = 0;
    if (!gyre_cfg_want_type(ctx, v, YAML_MAPPING_NODE, "store"))
        return;
    c->traces = 1;
    c->store_field = "store";
    c->store_line = gyre_cfg_line_of(v);
    for (yaml_node_pair_t *sp = v->data.mapping.pairs.start; sp < v->data.mapping.pairs.top; sp++) {
        yaml_node_t *sk = yaml_document_get_node(ctx->doc, sp->key);
        yaml_node_t *sv = yaml_document_get_node(ctx->doc, sp->value);
        const char *k = gyre_cfg_scalar(sk) != NULL ? gyre_cfg_scalar(sk) : "?";
        if (strcmp(k, "sqlite") == 0) {
            if (gyre_cfg_get_string(ctx, sv, "store.sqlite", &sqlite))
                sqlite_line = gyre_cfg_line_of(sv);
        } else if (strcmp(k, "dsn") == 0) {
            if (gyre_cfg_get_string(ctx, sv, "store.dsn", &dsn))
                dsn_line = gyre_cfg_line_of(sv);
        } else if (strcmp(k, "traces") == 0) {
            gyre_cfg_get_bool(ctx, sv, "store.traces", &c->traces);
        } else if (strcmp(k, "capture") == 0) {
            gyre_cfg_get_bool(ctx, sv, "store.capture", &c->store_capture);
        } else if (!parse_store_log(ctx, c, k, sv)) {
            ERR(ctx, sk, "store",
                "unknown field '%s' (known: sqlite, dsn, traces, capture, log, fsync_ms, retention, max_bytes, "
                "segment_bytes)",
                k);
        }
    }
    if (sqlite != NULL && dsn != NULL)
        ERR(ctx, v, "store", "give sqlite: or dsn:, not both");
    if (sqlite != NULL && sqlite[0] == '\0')
        ERR(ctx, v, "store.sqlite", "the path is empty");
    free(c->store_dsn);
    free(c->store_sqlite);
    c->store_dsn = c->store_sqlite = NULL;
    if (dsn != NULL) {
        c->store_field = "store.dsn";
        c->store_line = dsn_line;
        /* The SQLite file, when the DSN names one: the trace log lives beside it. */
        if (strncmp(dsn, "sqlite:", 7) == 0)
            c->store_sqlite = gyre_strdup(dsn + 7);
        else if (strstr(dsn, "://") == NULL)
            c->store_sqlite = gyre_strdup(dsn);
        c->store_dsn = dsn;
        free(sqlite);
        return;
    }
    if (sqlite != NULL) {
        c->store_field = "store.sqlite";
        c->store_line = sqlite_line;
    }
    c->store_sqlite = sqlite != NULL ? sqlite : gyre_strdup("./gyre.db");
    size_t n = strlen(c->store_sqlite) + 8;
    c->store_dsn = gyre_malloc(n);
    snprintf(c->store_dsn, n, "sqlite:%s", c->store_sqlite);
}

static void parse_otlp(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n)
{
    gyre_otlp_conf_t *o = &c->otlp;
    o->timeout_ms = 10000;
    o->batch_max = 512;
    o->interval_ms = 1000;
    o->queue_max = 65536;
    free(o->service_name);
    o->service_name = gyre_strdup("gyre");
    if (!gyre_cfg_want_type(ctx, n, YAML_MAPPING_NODE, "otlp"))
        return;
    yaml_node_t *endpoint = NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(ctx->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(ctx->doc, p->value);
        const char *key = gyre_cfg_scalar(k) != NULL ? gyre_cfg_scalar(k) : "?";
        unsigned long long u;
        if (strcmp(key, "endpoint") == 0) {
            if (gyre_cfg_get_string(ctx, v, "otlp.endpoint", &o->endpoint))
                endpoint = v;
        } else if (strcmp(key, "headers") == 0) {
            if (!gyre_cfg_want_type(ctx, v, YAML_MAPPING_NODE, "otlp.headers"))
                continue;
            for (yaml_node_pair_t *hp = v->data.mapping.pairs.start; hp < v->data.mapping.pairs.top; hp++) {
                yaml_node_t *hk = yaml_document_get_node(ctx->doc, hp->key);
                yaml_node_t *hv = yaml_document_get_node(ctx->doc, hp->value);
                char field[160];
                const char *name = gyre_cfg_scalar(hk);
                int ok = name != NULL && name[0] != '\0';
                for (const char *q = name; ok && *q != '\0'; q++)
                    ok = isalnum((unsigned char)*q) || strchr("!#$%&'*+-.^_`|~", *q) != NULL;
                if (!ok) {
                    ERR(ctx, hk, "otlp.headers", "'%s' is not a valid header name", name != NULL ? name : "?");
                    continue;
                }
                gyre_cfg_path_of(field, sizeof(field), "otlp.headers.%.100s", name);
                if (!gyre_cfg_want_type(ctx, hv, YAML_SCALAR_NODE, field))
                    continue;
                char *value = gyre_cfg_resolve_key(ctx, hv, field, gyre_cfg_scalar(hv));
                if (value == NULL)
                    continue;
                if (strpbrk(value, "\r\n") != NULL) {
                    /* The value itself is a secret: say where it came from, not what it is. */
                    ERR(ctx, hv, field, "the value contains a line break");
                    explicit_bzero(value, strlen(value));
                    free(value);
                    continue;
                }
                o->header_names = gyre_realloc(o->header_names, sizeof(*o->header_names) * (o->nheaders + 1));
                o->header_values = gyre_realloc(o->header_values, sizeof(*o->header_values) * (o->nheaders + 1));
                o->header_names[o->nheaders] = gyre_strdup(name);
                o->header_values[o->nheaders] = value;
                o->nheaders++;
            }
        } else if (strcmp(key, "timeout_ms") == 0) {
            if (gyre_cfg_get_uint(ctx, v, "otlp.timeout_ms", 1, 600000, &u))
                o->timeout_ms = u;
        } else if (strcmp(key, "batch_max") == 0) {
            if (gyre_cfg_get_uint(ctx, v, "otlp.batch_max", 1, 65536, &u))
                o->batch_max = (size_t)u;
        } else if (strcmp(key, "interval_ms") == 0) {
            if (gyre_cfg_get_uint(ctx, v, "otlp.interval_ms", 1, 3600000, &u))
                o->interval_ms = u;
        } else if (strcmp(key, "queue_max") == 0) {
            if (gyre_cfg_get_uint(ctx, v, "otlp.queue_max", 1, (unsigned long long)1 << 24, &u))
                o->queue_max = (size_t)u;
        } else if (strcmp(key, "ca_file") == 0) {
            if (gyre_cfg_get_string(ctx, v, "otlp.ca_file", &o->ca_file)) {
                FILE *f = fopen(o->ca_file, "r");
                if (f == NULL)
                    ERR(ctx, v, "otlp.ca_file", "cannot read %s: %s", o->ca_file, strerror(errno));
                else
                    fclose(f);
            }
        } else if (strcmp(key, "service_name") == 0) {
            if (gyre_cfg_get_string(ctx, v, "otlp.service_name", &o->service_name) && o->service_name[0] == '\0')
                ERR(ctx, v, "otlp.service_name", "is empty");
        } else {
            ERR(ctx, k, "otlp",
                "unknown field '%s' (known: endpoint, headers, timeout_ms, batch_max, interval_ms, queue_max, "
                "service_name, ca_file)",
                key);
        }
    }
    if (o->endpoint == NULL) {
        ERR(ctx, n, "otlp", "needs an 'endpoint' (for example http://127.0.0.1:4318/v1/traces)");
        return;
    }
    /* Read as the exporter reads it (gyre_httpc_parse_url), so check-config refuses what it would. */
    h2o_url_t url;
    if (gyre_wire_url_problem(o->endpoint, 1, &url) != NULL)
        ERR(ctx, endpoint, "otlp.endpoint", "'%s' is not an http:// or https:// URL with a host", o->endpoint);
}

/*
 * A client key or token of `auth:`: printable ASCII without spaces (it travels in one header), between
 * GYRE_AUTH_MIN_SECRET_LEN and GYRE_AUTH_MAX_SECRET_LEN bytes.  `where` says which line of a keys file it came
 * from ("" otherwise).  The value itself is never part of the error.
 */
static int auth_secret_ok(parse_ctx_t *ctx, yaml_node_t *n, const char *field, const char *where, const char *s,
                          size_t len)
{
    if (len < GYRE_AUTH_MIN_SECRET_LEN) {
        ERR(ctx, n, field, "%sis shorter than %d characters; use a long random value (openssl rand -hex 32)", where,
            GYRE_AUTH_MIN_SECRET_LEN);
        return 0;
    }
    if (len > GYRE_AUTH_MAX_SECRET_LEN) {
        ERR(ctx, n, field, "%sis longer than %d characters", where, GYRE_AUTH_MAX_SECRET_LEN);
        return 0;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) {
            ERR(ctx, n, field, "%shas a character that is not printable ASCII (spaces included) at position %zu", where,
                i + 1);
            return 0;
        }
    return 1;
}

static void add_auth_key(gyre_auth_conf_t *a, const char *s, size_t len)
{
    a->keys = gyre_realloc(a->keys, sizeof(*a->keys) * (a->nkeys + 1));
    a->key_meta = gyre_realloc(a->key_meta, sizeof(*a->key_meta) * (a->nkeys + 1));
    char id[48];
    snprintf(id, sizeof(id), "auth.keys[%zu]", a->nkeys);
    a->key_meta[a->nkeys] = (gyre_auth_key_meta_t){gyre_strdup(id), gyre_strdup(""), gyre_strdup("")};
    a->keys[a->nkeys++] = gyre_strndup(s, len);
}

/* An id, team or agent of a key in its mapping form: [A-Za-z0-9._:/-], 1 to GYRE_AUTH_KEY_NAME_MAX bytes. */
static char *auth_key_name(parse_ctx_t *ctx, yaml_node_t *n, const char *field)
{
    char *v = NULL;
    if (!gyre_cfg_get_string(ctx, n, field, &v))
        return NULL;
    size_t len = strlen(v);
    int ok = len != 0 && len <= GYRE_AUTH_KEY_NAME_MAX;
    for (size_t i = 0; ok && i < len; i++)
        ok = isalnum((unsigned char)v[i]) || strchr("._:/-", v[i]) != NULL;
    if (!ok) {
        ERR(ctx, n, field, "must be 1 to %d characters of A-Z a-z 0-9 . _ : / -", GYRE_AUTH_KEY_NAME_MAX);
        free(v);
        return NULL;
    }
    return v;
}

/* A key in its mapping form: {key: SPEC, id: NAME, team: NAME, agent: NAME}; key and id are required. */
static void auth_key_mapping(parse_ctx_t *ctx, yaml_node_t *kn, const char *field, gyre_auth_conf_t *a)
{
    char sub[96];
    char *value = NULL, *id = NULL, *team = NULL, *agent = NULL;
    int bad = 0;
    for (yaml_node_pair_t *p = kn->data.mapping.pairs.start; p < kn->data.mapping.pairs.top; p++) {
        yaml_node_t *k = GYRE_CFG_KEY(ctx, p), *v = GYRE_CFG_VALUE(ctx, p);
        const char *name = gyre_cfg_scalar(k) ? gyre_cfg_scalar(k) : "?";
        gyre_cfg_path_of(sub, sizeof(sub), "%s.%s", field, name);
        char **slot = strcmp(name, "key") == 0 ? &value : strcmp(name, "id") == 0 ? &id
                                                      : strcmp(name, "team") == 0 ? &team
                                                      : strcmp(name, "agent") == 0 ? &agent : NULL;
        if (slot == NULL) {
            ERR(ctx, k, field, "unknown field '%s' (known: key, id, team, agent)", name);
            bad = 1;
        } else if (*slot != NULL) {
            ERR(ctx, k, field, "'%s' is given twice", name);
            bad = 1;
        } else if (slot == &value) {
            if (gyre_cfg_want_type(ctx, v, YAML_SCALAR_NODE, sub)) {
                value = gyre_cfg_resolve_key(ctx, v, sub, gyre_cfg_scalar(v));
                if (value != NULL && !auth_secret_ok(ctx, v, sub, "", value, strlen(value))) {
                    explicit_bzero(value, strlen(value));
                    free(value);
                    value = gyre_strdup(""); /* reported; only marks the field as given */
                    bad = 1;
                }
            }
            bad |= value == NULL;
        } else if ((*slot = auth_key_name(ctx, v, sub)) == NULL) {
            bad = 1;
        }
    }
    if (value == NULL && !bad)
        ERR(ctx, kn, field, "has no 'key' (write {key: env:NAME, id: NAME, team: NAME, agent: NAME})");
    if (id == NULL && !bad)
        ERR(ctx, kn, field, "has no 'id': a key in this form names its id, which traces and stats show");
    for (size_t i = 0; id != NULL && i < a->nkeys; i++)
        if (strcmp(a->key_meta[i].id, id) == 0) {
            ERR(ctx, kn, field, "id '%s' is the id of another key; each key's id must be distinct", id);
            bad = 1;
        }
    if (!bad && value != NULL && id != NULL) {
        add_auth_key(a, value, strlen(value));
        gyre_auth_key_meta_t *m = &a->key_meta[a->nkeys - 1];
        free(m->id);
        free(m->team);
        free(m->agent);
        m->id = id;
        m->team = team != NULL ? team : gyre_strdup("");
        m->agent = agent != NULL ? agent : gyre_strdup("");
        id = team = agent = NULL;
    }
    if (value != NULL) {
        explicit_bzero(value, strlen(value));
        free(value);
    }
    free(id);
    free(team);
    free(agent);
}

/* `file:PATH` in auth.keys: one key a line; blank lines and lines starting with '#' are skipped. */
static void auth_keys_file(parse_ctx_t *ctx, yaml_node_t *n, const char *field, const char *path, gyre_auth_conf_t *a)
{
    if (ctx->unresolved) {
        /* Not read: one placeholder stands for the file's keys. */
        char *spec = gyre_malloc(strlen(path) + 6);
        sprintf(spec, "file:%s", path);
        char *placeholder = gyre_cfg_unresolved_secret(spec);
        add_auth_key(a, placeholder, strlen(placeholder));
        free(placeholder);
        free(spec);
        return;
    }
    gyre_buf_t b;
    gyre_buf_init(&b, GYRE_AUTH_MAX_KEY_FILE_BYTES);
    int r = gyre_buf_append_file(&b, path);
    if (r == -E2BIG)
        ERR(ctx, n, field, "key file %s is larger than %zu bytes", path, GYRE_AUTH_MAX_KEY_FILE_BYTES);
    else if (r != 0)
        ERR(ctx, n, field, "cannot read key file %s: %s", path, strerror(-r));
    size_t found = 0, lineno = 0;
    for (size_t at = 0; r == 0 && at < b.len;) {
        const char *line = b.base + at, *nl = memchr(line, '\n', b.len - at);
        size_t len = nl != NULL ? (size_t)(nl - line) : b.len - at;
        at += len + 1;
        lineno++;
        while (len > 0 && isspace((unsigned char)line[len - 1]))
            len--;
        while (len > 0 && isspace((unsigned char)line[0])) {
            line++;
            len--;
        }
        if (len == 0 || line[0] == '#')
            continue;
        char where[64];
        snprintf(where, sizeof(where), "line %zu of the key file: ", lineno);
        if (auth_secret_ok(ctx, n, field, where, line, len)) {
            add_auth_key(a, line, len);
            found++;
        }
    }
    if (r == 0 && found == 0 && lineno == 0)
        ERR(ctx, n, field, "key file %s is empty", path);
    else if (r == 0 && found == 0)
        ERR(ctx, n, field, "key file %s has no key (only blank and '#' lines)", path);
    if (b.base != NULL)
        explicit_bzero(b.base, b.cap);
    gyre_buf_dispose(&b);
}

/* A token of `auth:` (admin_token, read_token): a literal, env:NAME or file:PATH holding one value. */
static char *auth_token(parse_ctx_t *ctx, yaml_node_t *n, const char *field)
{
    if (!gyre_cfg_want_type(ctx, n, YAML_SCALAR_NODE, field))
        return NULL;
    char *v = gyre_cfg_resolve_key(ctx, n, field, gyre_cfg_scalar(n));
    if (v != NULL && !auth_secret_ok(ctx, n, field, "", v, strlen(v))) {
        explicit_bzero(v, strlen(v));
        free(v);
        v = NULL;
    }
    return v;
}

/* auth: none, or auth: {keys: [sk-..., env:NAME, file:PATH], admin_token: SPEC, read_token: SPEC} */
static void parse_auth(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n)
{
    gyre_auth_conf_t *a = &c->auth;
    char field[64];
    if (a->mode != GYRE_AUTH_UNSET) {
        ERR(ctx, n, "auth", "is given twice");
        return;
    }
    if (n->type == YAML_SCALAR_NODE && strcmp(gyre_cfg_scalar(n), "none") == 0) {
        a->mode = GYRE_AUTH_NONE;
        return;
    }
    if (n->type != YAML_MAPPING_NODE) {
        ERR(ctx, n, "auth", "expected 'none' or a mapping {keys: [...], admin_token: ..., read_token: ...}, found %s",
            n->type == YAML_SCALAR_NODE ? "another scalar" : gyre_cfg_node_type_name(n));
        return;
    }
    a->mode = GYRE_AUTH_KEYS;
    yaml_node_t *admin = NULL, *read = NULL;
    for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(ctx->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(ctx->doc, pair->value);
        const char *key = gyre_cfg_scalar(k) ? gyre_cfg_scalar(k) : "?";
        if (strcmp(key, "keys") == 0) {
            if (!gyre_cfg_want_type(ctx, v, YAML_SEQUENCE_NODE, "auth.keys"))
                continue;
            for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
                yaml_node_t *kn = yaml_document_get_node(ctx->doc, *it);
                gyre_cfg_path_of(field, sizeof(field), "auth.keys[%zu]", (size_t)(it - v->data.sequence.items.start));
                if (kn->type == YAML_MAPPING_NODE) {
                    auth_key_mapping(ctx, kn, field, a);
                    continue;
                }
                if (!gyre_cfg_want_type(ctx, kn, YAML_SCALAR_NODE, field))
                    continue;
                if (strncmp(gyre_cfg_scalar(kn), "file:", 5) == 0) {
                    auth_keys_file(ctx, kn, field, gyre_cfg_scalar(kn) + 5, a);
                    continue;
                }
                char *key_value = gyre_cfg_resolve_key(ctx, kn, field, gyre_cfg_scalar(kn));
                if (key_value != NULL && auth_secret_ok(ctx, kn, field, "", key_value, strlen(key_value)))
                    add_auth_key(a, key_value, strlen(key_value));
                if (key_value != NULL) {
                    explicit_bzero(key_value, strlen(key_value));
                    free(key_value);
                }
            }
        } else if ((strcmp(key, "admin_token") == 0 && admin != NULL) ||
                   (strcmp(key, "read_token") == 0 && read != NULL)) {
            ERR(ctx, k, "auth", "'%s' is given twice", key);
        } else if (strcmp(key, "admin_token") == 0) {
            admin = v;
            a->admin_token = auth_token(ctx, v, "auth.admin_token");
        } else if (strcmp(key, "read_token") == 0) {
            read = v;
            a->read_token = auth_token(ctx, v, "auth.read_token");
        } else {
            ERR(ctx, k, "auth", "unknown field '%s' (known: keys, admin_token, read_token; or write auth: none)", key);
        }
    }
    if (a->nkeys == 0 && admin == NULL && read == NULL)
        ERR(ctx, n, "auth", "has no keys and no token: add keys: [...] (or write auth: none to run open on purpose)");
    /* One credential, one meaning: a value that is both a client key and a token would be ambiguous. */
    if (a->admin_token != NULL && a->read_token != NULL && strcmp(a->admin_token, a->read_token) == 0)
        ERR(ctx, read, "auth.read_token", "is the same as auth.admin_token; each credential must be distinct");
    for (size_t i = 0; i < a->nkeys; i++)
        if ((a->admin_token != NULL && strcmp(a->keys[i], a->admin_token) == 0) ||
            (a->read_token != NULL && strcmp(a->keys[i], a->read_token) == 0))
            ERR(ctx, n, "auth.keys",
                "key %zu (counting keys files line by line) is the same as a token; each "
                "credential must be distinct",
                i + 1);
}

int gyre_config_path_never_passed(const char *path, size_t len)
{
    for (size_t at = 0; at < len;) {
        while (at < len && path[at] == '/')
            at++;
        const char *seg = path + at;
        size_t n = 0;
        while (at < len && path[at] != '/')
            at++, n++;
        if ((n == 12 && strncasecmp(seg, "organization", 12) == 0) ||
            (n == 13 && strncasecmp(seg, "organizations", 13) == 0) || (n == 5 && strncasecmp(seg, "admin", 5) == 0) ||
            (n > 5 && strncasecmp(seg, "admin", 5) == 0 && (seg[5] == '_' || seg[5] == '-')))
            return 1;
    }
    return 0;
}

static void add_passthrough(gyre_config_t *c, const char *s, size_t len)
{
    c->passthrough = gyre_realloc(c->passthrough, sizeof(*c->passthrough) * (c->npassthrough + 1));
    c->passthrough[c->npassthrough++] = gyre_strndup(s, len);
}

/* passthrough: [/v1/completions, /v1/files, ...]: path prefixes, each whole segments under /v1/. */
static void parse_passthrough(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n)
{
    char field[64];
    if (!gyre_cfg_want_type(ctx, n, YAML_SEQUENCE_NODE, "passthrough"))
        return;
    /* A list given, even an empty one, replaces the default (or an earlier `passthrough:`). */
    for (size_t i = 0; i < c->npassthrough; i++)
        free(c->passthrough[i]);
    c->npassthrough = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        yaml_node_t *pn = yaml_document_get_node(ctx->doc, *it);
        gyre_cfg_path_of(field, sizeof(field), "passthrough[%zu]", (size_t)(it - n->data.sequence.items.start));
        if (!gyre_cfg_want_type(ctx, pn, YAML_SCALAR_NODE, field))
            continue;
        const char *p = gyre_cfg_scalar(pn);
        size_t len = strlen(p);
        while (len > 1 && p[len - 1] == '/')
            len--;
        int ok = len > 4 && strncmp(p, "/v1/", 4) == 0 && strstr(p, "//") == NULL;
        for (size_t i = 0; ok && i < len; i++)
            ok = isalnum((unsigned char)p[i]) || strchr("/-_.", p[i]) != NULL;
        for (const char *s = strstr(p, "/."); ok && s != NULL; s = strstr(s + 1, "/."))
            ok = !(s[2] == '/' || s[2] == '\0' || (s[2] == '.' && (s[3] == '/' || s[3] == '\0')));
        if (!ok)
            ERR(ctx, pn, field,
                "'%.200s' is not a path under /v1/ (letters, digits, '-', '_', '.', '/'; no empty, "
                "'.' or '..' segment)",
                p);
        else if (gyre_config_path_never_passed(p, len))
            ERR(ctx, pn, field,
                "'%.200s' is an admin or organization path, which gyre never passes: it would act "
                "on the provider account with the gateway's key",
                p);
        else
            add_passthrough(c, p, len);
    }
}

static void parse_root(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *root)
{
    yaml_node_t *providers = NULL, *routes = NULL, *alerts = NULL, *scorers = NULL;
    yaml_node_t *clusters = NULL;
    for (yaml_node_pair_t *pair = root->data.mapping.pairs.start; pair < root->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(ctx->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(ctx->doc, pair->value);
        const char *key = gyre_cfg_scalar(k);
        unsigned long long u;
        if (key == NULL) {
            ERR(ctx, k, "", "field names must be scalars");
        } else if (strcmp(key, "listen") == 0) {
            if (gyre_cfg_want_type(ctx, v, YAML_SCALAR_NODE, "listen")) {
                c->listen_line = gyre_cfg_line_of(v);
                free(c->listen_host);
                c->listen_host = NULL;
                if (parse_hostport(gyre_cfg_scalar(v), &c->listen_host, &c->listen_port) != 0)
                    ERR(ctx, v, "listen", "'%s' is not HOST:PORT (for example 127.0.0.1:8080)", gyre_cfg_scalar(v));
            }
        } else if (strcmp(key, "workers") == 0) {
            if (gyre_cfg_get_uint(ctx, v, "workers", 1, 256, &u))
                c->workers = (unsigned)u;
        } else if (strcmp(key, "max_body_bytes") == 0) {
            if (gyre_cfg_get_uint(ctx, v, "max_body_bytes", 1024, (unsigned long long)1 << 30, &u))
                c->max_body_bytes = (size_t)u;
        } else if (strcmp(key, "max_response_bytes") == 0) {
            if (gyre_cfg_get_uint(ctx, v, "max_response_bytes", 1024, (unsigned long long)1 << 30, &u))
                c->max_response_bytes = (size_t)u;
        } else if (strcmp(key, "shutdown_grace_ms") == 0) {
            if (gyre_cfg_get_uint(ctx, v, "shutdown_grace_ms", 0, 3600000, &u))
                c->shutdown_grace_ms = u;
        } else if (strcmp(key, "max_header_bytes") == 0) {
            if (gyre_cfg_get_uint(ctx, v, "max_header_bytes", 1024, GYRE_MAX_HEADER_BYTES_LIMIT, &u))
                c->max_header_bytes = (size_t)u;
        } else if (strcmp(key, "max_connections") == 0) {
            if (gyre_cfg_get_uint(ctx, v, "max_connections", 1, 1000000, &u))
                c->max_connections = (size_t)u;
        } else if (strcmp(key, "linger_ms") == 0) {
            if (gyre_cfg_get_uint(ctx, v, "linger_ms", 0, 600000, &u))
                c->linger_ms = u;
        } else if (strcmp(key, "linger_bytes") == 0) {
            if (gyre_cfg_get_uint(ctx, v, "linger_bytes", 0, (unsigned long long)1 << 40, &u))
                c->linger_bytes = u;
        } else if (strcmp(key, "store") == 0) {
            parse_store(ctx, c, v);
        } else if (strcmp(key, "state") == 0) {
            gyre_cfg_get_string(ctx, v, "state", &c->state_path);
        } else if (strcmp(key, "master_key_file") == 0) {
            gyre_cfg_get_string(ctx, v, "master_key_file", &c->master_key_file);
        } else if (strcmp(key, "prices") == 0) {
            if (gyre_cfg_get_string(ctx, v, "prices", &c->prices_file)) {
                FILE *f = fopen(c->prices_file, "r");
                if (f == NULL)
                    ERR(ctx, v, "prices", "cannot read %s: %s", c->prices_file, strerror(errno));
                else
                    fclose(f);
            }
        } else if (strcmp(key, "otlp") == 0) {
            parse_otlp(ctx, c, v);
        } else if (strcmp(key, "redact") == 0) {
            parse_redact(ctx, v, "redact", &c->redact);
        } else if (strcmp(key, "auth") == 0) {
            parse_auth(ctx, c, v);
        } else if (strcmp(key, "limits") == 0) {
            gyre_cfg_parse_limits(ctx, c, v);
        } else if (strcmp(key, "direct") == 0) {
            gyre_cfg_get_bool(ctx, v, "direct", &c->direct);
        } else if (strcmp(key, "passthrough") == 0) {
            parse_passthrough(ctx, c, v);
        } else if (strcmp(key, "access_log") == 0) {
            gyre_cfg_parse_access_log(ctx, c, v);
        } else if (strcmp(key, "feedback") == 0) {
            gyre_cfg_parse_feedback(ctx, c, v);
        } else if (strcmp(key, "datasets") == 0) {
            gyre_cfg_parse_datasets(ctx, c, v);
        } else if (strcmp(key, "loops") == 0) {
            gyre_cfg_parse_loops(ctx, c, v);
        } else if (strcmp(key, "providers") == 0) {
            providers = v;
        } else if (strcmp(key, "routes") == 0) {
            routes = v;
        } else if (strcmp(key, "notifiers") == 0) {
            gyre_cfg_parse_notifiers(ctx, c, v);
        } else if (strcmp(key, "alerts") == 0) {
            alerts = v;
        } else if (strcmp(key, "scorers") == 0) {
            scorers = v;
        } else if (strcmp(key, "clusters") == 0) {
            clusters = v;
        } else {
            ERR(ctx, k, "",
                "unknown field '%s' (known: listen, auth, workers, store, state, master_key_file, prices, redact, direct, passthrough, "
                "providers, routes, otlp, max_body_bytes, max_response_bytes, shutdown_grace_ms, max_header_bytes, "
                "max_connections, linger_ms, linger_bytes, notifiers, alerts, limits, access_log, scorers, feedback, clusters, datasets, loops)",
                key);
        }
    }
    /* Providers first: routes refer to them by name. */
    if (providers != NULL && gyre_cfg_want_type(ctx, providers, YAML_SEQUENCE_NODE, "providers")) {
        size_t np = (size_t)(providers->data.sequence.items.top - providers->data.sequence.items.start);
        c->providers = gyre_calloc(np, sizeof(*c->providers));
        c->nproviders = np;
        for (size_t i = 0; i < np; i++)
            parse_provider(ctx, c, yaml_document_get_node(ctx->doc, providers->data.sequence.items.start[i]), i);
    }
    /* Scorers before routes: a route's guardrails name them. */
    if (scorers != NULL)
        gyre_cfg_parse_scorers(ctx, c, scorers);
    if (routes != NULL && gyre_cfg_want_type(ctx, routes, YAML_SEQUENCE_NODE, "routes")) {
        size_t nr = (size_t)(routes->data.sequence.items.top - routes->data.sequence.items.start);
        c->routes = gyre_calloc(nr, sizeof(*c->routes));
        c->nroutes = nr;
        for (size_t i = 0; i < nr; i++)
            parse_route(ctx, c, yaml_document_get_node(ctx->doc, routes->data.sequence.items.start[i]), i);
    }
    if (alerts != NULL)
        gyre_cfg_parse_alerts(ctx, c, alerts);
    gyre_cfg_check_scorers(ctx, c);
    if (clusters != NULL)
        gyre_cfg_parse_clusters(ctx, c, clusters);
    /* A budget's notices go to a notifier by name: it must be one of `notifiers:` (parsed above, wherever the
     * two sections stand in the file). */
    static const char *const level_names[GYRE_LIMIT_CONF_LEVELS] = {"keys", "teams", "agents", "users"};
    if (c->limits.notify != NULL && gyre_config_find_notifier(c, c->limits.notify) == NULL)
        gyre_cfg_add_error(ctx->errs, ctx->source, 0, "limits.notify", "no notifier is named '%s'", c->limits.notify);
    for (size_t lv = 0; lv < GYRE_LIMIT_CONF_LEVELS; lv++)
        for (size_t i = 0; i < c->limits.nrules[lv]; i++) {
            const gyre_limit_conf_t *r = &c->limits.rules[lv][i];
            if (r->notify != NULL && gyre_config_find_notifier(c, r->notify) == NULL)
                gyre_cfg_add_error(ctx->errs, ctx->source, r->line, "limits", "%s.%s.notify: no notifier is named '%s'",
                                   level_names[lv], r->id, r->notify);
        }
}

static gyre_config_t *config_parse(const char *source, const char *text, size_t len, int unresolved,
                                   gyre_config_errors_t *errs);

gyre_config_t *gyre_config_parse(const char *source, const char *text, size_t len, gyre_config_errors_t *errs)
{
    return config_parse(source, text, len, 0, errs);
}

static gyre_config_t *config_parse(const char *source, const char *text, size_t len, int unresolved,
                                   gyre_config_errors_t *errs)
{
    gyre_config_t *c = gyre_calloc(1, sizeof(*c));
    c->source = gyre_strdup(source);
    c->listen_host = gyre_strdup("127.0.0.1");
    c->listen_port = 8080;
    c->max_body_bytes = GYRE_DEFAULT_MAX_BODY_BYTES;
    c->max_response_bytes = GYRE_DEFAULT_MAX_RESPONSE_BYTES;
    c->shutdown_grace_ms = GYRE_DEFAULT_GRACE_MS;
    c->max_header_bytes = GYRE_DEFAULT_MAX_HEADER_BYTES;
    c->max_connections = GYRE_DEFAULT_MAX_CONNECTIONS;
    c->linger_ms = GYRE_DEFAULT_LINGER_MS;
    c->linger_bytes = GYRE_DEFAULT_LINGER_BYTES;
    c->store_capture = 1;
    gyre_cfg_clusters_defaults(&c->clusters);
    c->redact = GYRE_REDACT_ALL;
    c->direct = 1;
    static const char *const default_passthrough[] = {GYRE_CONFIG_DEFAULT_PASSTHROUGH};
    for (size_t i = 0; i < sizeof(default_passthrough) / sizeof(default_passthrough[0]); i++)
        add_passthrough(c, default_passthrough[i], strlen(default_passthrough[i]));
    size_t errs_before = errs->count;

    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        gyre_cfg_add_error(errs, source, (int)parser.problem_mark.line + 1, NULL, "invalid YAML: %s%s%s",
                  parser.problem ? parser.problem : "syntax error", parser.context ? " " : "",
                  parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        gyre_config_free(c);
        return NULL;
    }
    parse_ctx_t ctx = {source, &doc, errs, unresolved};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root == NULL) {
        gyre_cfg_add_error(errs, source, 0, NULL, "the file is empty");
    } else if (gyre_cfg_want_type(&ctx, root, YAML_MAPPING_NODE, "(top level)")) {
        parse_root(&ctx, c, root);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (errs->count != errs_before) {
        gyre_config_free(c);
        return NULL;
    }
    return c;
}

static gyre_config_t *config_load(const char *path, int unresolved, gyre_config_errors_t *errs);

gyre_config_t *gyre_config_load(const char *path, gyre_config_errors_t *errs)
{
    return config_load(path, 0, errs);
}

gyre_config_t *gyre_config_load_unresolved(const char *path, gyre_config_errors_t *errs)
{
    return config_load(path, 1, errs);
}

static gyre_config_t *config_load(const char *path, int unresolved, gyre_config_errors_t *errs)
{
    gyre_buf_t b;
    gyre_buf_init(&b, MAX_CONFIG_BYTES);
    int r = gyre_buf_append_file(&b, path);
    gyre_config_t *c = NULL;
    if (r == -E2BIG)
        gyre_cfg_add_error(errs, path, 0, NULL, "larger than %d bytes", MAX_CONFIG_BYTES);
    else if (r == -EIO)
        gyre_cfg_add_error(errs, path, 0, NULL, "read error");
    else if (r != 0)
        gyre_cfg_add_error(errs, path, 0, NULL, "cannot open: %s", strerror(-r));
    else
        c = config_parse(path, b.base ? b.base : "", b.len, unresolved, errs);
    gyre_buf_dispose(&b);
    return c;
}

/* Providers the embedded default builds from the usual environment variables. */
static const struct {
    const char *env, *name, *kind, *base_url, *chat_model, *embed_model;
} known_providers[] = {
    {"OPENAI_API_KEY", "openai", "openai", "https://api.openai.com/v1", "gpt-4o-mini", "text-embedding-3-small"},
    {"ANTHROPIC_API_KEY", "anthropic", "anthropic", "https://api.anthropic.com/v1", "claude-haiku-4-5", NULL},
    {"GEMINI_API_KEY", "gemini", "gemini", "https://generativelanguage.googleapis.com/v1beta", "gemini-2.5-flash",
     NULL},
    {"GROQ_API_KEY", "groq", "openai", "https://api.groq.com/openai/v1", "llama-3.1-8b-instant", NULL},
    {"MISTRAL_API_KEY", "mistral", "openai", "https://api.mistral.ai/v1", "mistral-small-latest", "mistral-embed"},
    {"DEEPSEEK_API_KEY", "deepseek", "openai", "https://api.deepseek.com/v1", "deepseek-chat", NULL},
    {"TOGETHER_API_KEY", "together", "openai", "https://api.together.xyz/v1",
     "meta-llama/Llama-3.3-70B-Instruct-Turbo", NULL},
    {"OPENROUTER_API_KEY", "openrouter", "openai", "https://openrouter.ai/api/v1", "openai/gpt-4o-mini", NULL},
};

static int env_set(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0';
}

char *gyre_config_default_yaml(void)
{
    gyre_buf_t b, fallbacks;
    gyre_buf_init(&b, 64 * 1024);
    gyre_buf_init(&fallbacks, 16 * 1024);
    /* Two feedback metrics every gateway can take without a config (thumbs up or down, a 1-5 rating), as the
     * observability tools have them; a config file declares its own. */
    gyre_buf_appends(&b, "listen: 127.0.0.1:8080\nstore: {sqlite: ./gyre.db, traces: true}\n"
                         "feedback: {metrics: [{name: thumbs, type: boolean}, "
                         "{name: rating, type: number, min: 1, max: 5}]}\n"
                         "providers:\n");
    const char *chat_p = NULL, *chat_m = NULL, *embed_p = NULL, *embed_m = NULL;
    int any = 0;
    for (size_t i = 0; i < sizeof(known_providers) / sizeof(known_providers[0]); i++) {
        if (!env_set(known_providers[i].env))
            continue;
        gyre_buf_appendf(&b, "  - {name: %s, kind: %s, base_url: \"%s\", keys: [\"env:%s\"]}\n",
                         known_providers[i].name, known_providers[i].kind, known_providers[i].base_url,
                         known_providers[i].env);
        any = 1;
        if (chat_p == NULL) {
            chat_p = known_providers[i].name;
            chat_m = known_providers[i].chat_model;
        } else {
            /* Every further provider backs the first one up. */
            gyre_buf_appendf(&fallbacks, "%s{provider: %s, model: \"%s\"}", fallbacks.len ? ", " : "",
                             known_providers[i].name, known_providers[i].chat_model);
        }
        if (embed_p == NULL && known_providers[i].embed_model != NULL) {
            embed_p = known_providers[i].name;
            embed_m = known_providers[i].embed_model;
        }
    }
    int real = any; /* a provider key was in the environment */
    const char *mock = getenv("GYRE_MOCK_URL");
    if (mock != NULL && mock[0] != '\0') {
        gyre_buf_appendf(&b, "  - {name: mock, kind: openai, base_url: \"%s\", keys: [sk-mock]}\n", mock);
        any = 1;
        if (chat_p == NULL) {
            chat_p = "mock";
            chat_m = "gpt-4o-mini";
        }
        /* With a real provider, the mock serves no route: `make run` with only ANTHROPIC_API_KEY set must not
         * answer `embed` with canned vectors.  It stays addressable as mock/MODEL. */
        if (embed_p == NULL && !real) {
            embed_p = "mock";
            embed_m = "text-embedding-3-small";
        }
    }
    if (!any)
        gyre_buf_appends(&b, "  []\n");
    gyre_buf_appends(&b, "routes:\n");
    if (chat_p != NULL)
        gyre_buf_appendf(&b, "  - {name: chat, targets: [{provider: %s, model: \"%s\"}]%s%s%s}\n", chat_p, chat_m,
                         fallbacks.len ? ", fallbacks: [" : "", fallbacks.len ? fallbacks.base : "",
                         fallbacks.len ? "]" : "");
    if (embed_p != NULL)
        gyre_buf_appendf(&b, "  - {name: embed, targets: [{provider: %s, model: \"%s\"}]}\n", embed_p, embed_m);
    if (chat_p == NULL && embed_p == NULL)
        gyre_buf_appends(&b, "  []\n");
    /* One check for every append above: a default that lost a piece is no default (a GYRE_MOCK_URL of 60 KiB). */
    int failed = gyre_buf_failed(&b) != 0 || gyre_buf_failed(&fallbacks) != 0;
    gyre_buf_dispose(&fallbacks);
    if (failed) {
        gyre_buf_dispose(&b);
        return NULL;
    }
    return b.base;
}

static void add_note(gyre_config_t *c, const char *note)
{
    c->notes = gyre_realloc(c->notes, sizeof(*c->notes) * (c->nnotes + 1));
    c->notes[c->nnotes++] = gyre_strdup(note);
}

gyre_config_t *gyre_config_default(gyre_config_errors_t *errs)
{
    char *yaml = gyre_config_default_yaml();
    if (yaml == NULL) {
        gyre_cfg_add_error(errs, "<embedded default>", 0, NULL, "is longer than 64 KiB (is GYRE_MOCK_URL that long?)");
        return NULL;
    }
    gyre_config_t *c = gyre_config_parse("<embedded default>", yaml, strlen(yaml), errs);
    free(yaml);
    if (c == NULL)
        return NULL;
    char note[512];
    for (size_t i = 0; i < sizeof(known_providers) / sizeof(known_providers[0]); i++)
        if (env_set(known_providers[i].env)) {
            snprintf(note, sizeof(note), "provider '%s' (%s) from %s", known_providers[i].name,
                     known_providers[i].base_url, known_providers[i].env);
            add_note(c, note);
        }
    int real = 0;
    for (size_t i = 0; i < sizeof(known_providers) / sizeof(known_providers[0]); i++)
        real |= env_set(known_providers[i].env);
    if (env_set("GYRE_MOCK_URL") && !real) {
        snprintf(note, sizeof(note),
                 "no provider API key in the environment: routing to gyre-mock at %s, a fake provider with canned "
                 "answers (set OPENAI_API_KEY or pass --config for real providers)",
                 getenv("GYRE_MOCK_URL"));
        add_note(c, note);
    } else if (c->nproviders == 0) {
        add_note(c, "no provider configured: set OPENAI_API_KEY (or GROQ_API_KEY, MISTRAL_API_KEY, ...) or pass "
                    "--config FILE; every model request will answer 404 until then");
    }
    return c;
}

static void free_provider(gyre_provider_conf_t *p)
{
    free(p->name);
    free(p->base_url);
    free(p->host);
    free(p->base_path);
    for (size_t i = 0; i < p->nkeys; i++) {
        /* Secrets are wiped before their memory goes back to the allocator. */
        explicit_bzero(p->keys[i], strlen(p->keys[i]));
        free(p->keys[i]);
        free(p->key_ids[i]);
    }
    free(p->keys);
    free(p->key_ids);
    free(p->key_weights);
    free(p->ca_file);
    free(p->api_version);
    free(p->region);
    free(p->hc_path);
    gyre_prices_free(p->prices);
}

void gyre_config_free(gyre_config_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nproviders; i++)
        free_provider(&c->providers[i]);
    free(c->providers);
    for (size_t i = 0; i < c->nroutes; i++) {
        for (size_t j = 0; j < c->routes[i].ntargets; j++)
            free(c->routes[i].targets[j].model);
        free(c->routes[i].targets);
        for (size_t j = 0; j < c->routes[i].nfallbacks; j++)
            free(c->routes[i].fallbacks[j].model);
        free(c->routes[i].fallbacks);
        free(c->routes[i].name);
        free(c->routes[i].guardrails);
    }
    free(c->routes);
    gyre_cfg_free_scorers(c);
    for (size_t i = 0; i < c->nnotes; i++)
        free(c->notes[i]);
    free(c->notes);
    free(c->source);
    free(c->listen_host);
    free(c->store_dsn);
    free(c->store_sqlite);
    free(c->store_log);
    free(c->state_path);
    free(c->master_key_file);
    free(c->prices_file);
    gyre_cfg_free_limits(&c->limits);
    gyre_cfg_free_clusters(&c->clusters);
    free(c->access_log);
    free(c->datasets_dir);
    for (size_t i = 0; i < c->nloop_specs; i++)
        free(c->loop_specs[i]);
    free(c->loop_specs);
    for (size_t i = 0; i < c->otlp.nheaders; i++) {
        explicit_bzero(c->otlp.header_values[i], strlen(c->otlp.header_values[i]));
        free(c->otlp.header_values[i]);
        free(c->otlp.header_names[i]);
    }
    free(c->otlp.header_names);
    free(c->otlp.header_values);
    free(c->otlp.endpoint);
    free(c->otlp.service_name);
    free(c->otlp.ca_file);
    for (size_t i = 0; i < c->auth.nkeys; i++) {
        explicit_bzero(c->auth.keys[i], strlen(c->auth.keys[i]));
        free(c->auth.keys[i]);
        free(c->auth.key_meta[i].id);
        free(c->auth.key_meta[i].team);
        free(c->auth.key_meta[i].agent);
    }
    free(c->auth.keys);
    free(c->auth.key_meta);
    if (c->auth.admin_token != NULL)
        explicit_bzero(c->auth.admin_token, strlen(c->auth.admin_token));
    if (c->auth.read_token != NULL)
        explicit_bzero(c->auth.read_token, strlen(c->auth.read_token));
    free(c->auth.admin_token);
    free(c->auth.read_token);
    for (size_t i = 0; i < c->npassthrough; i++)
        free(c->passthrough[i]);
    free(c->passthrough);
    gyre_config_free_notifiers(c);
    gyre_config_alerts_free(c);
    gyre_cfg_free_feedback(c);
    free(c);
}

void gyre_config_errors_dispose(gyre_config_errors_t *errs)
{
    for (size_t i = 0; i < errs->count; i++)
        free(errs->items[i]);
    free(errs->items);
    errs->items = NULL;
    errs->count = 0;
}

int gyre_config_set_listen(gyre_config_t *c, const char *hostport)
{
    char *host;
    uint16_t port;
    if (parse_hostport(hostport, &host, &port) != 0)
        return -EINVAL;
    free(c->listen_host);
    c->listen_host = host;
    c->listen_port = port;
    return 0;
}

const gyre_provider_conf_t *gyre_config_find_provider(const gyre_config_t *c, const char *name, size_t len)
{
    for (size_t i = 0; i < c->nproviders; i++)
        if (strlen(c->providers[i].name) == len && memcmp(c->providers[i].name, name, len) == 0)
            return &c->providers[i];
    return NULL;
}

const gyre_route_conf_t *gyre_config_find_route(const gyre_config_t *c, const char *name, size_t len)
{
    for (size_t i = 0; i < c->nroutes; i++)
        if (strlen(c->routes[i].name) == len && memcmp(c->routes[i].name, name, len) == 0)
            return &c->routes[i];
    return NULL;
}
