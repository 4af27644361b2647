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
#include <yaml.h>

#include "common/alloc.h"
#include "common/buf.h"

#define MAX_CONFIG_BYTES (4 * 1024 * 1024)
#define MAX_KEY_FILE_BYTES 4096

typedef struct parse_ctx {
    const char *source;
    yaml_document_t *doc;
    gyre_config_errors_t *errs;
} parse_ctx_t;

static void add_error(gyre_config_errors_t *errs, const char *source, int line, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void add_error(gyre_config_errors_t *errs, const char *source, int line, const char *field, const char *fmt, ...)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 4096);
    if (line > 0)
        gyre_buf_appendf(&b, "%s:%d: ", source, line);
    else
        gyre_buf_appendf(&b, "%s: ", source);
    if (field != NULL && field[0] != '\0')
        gyre_buf_appendf(&b, "%s: ", field);
    va_list ap;
    va_start(ap, fmt);
    gyre_buf_vappendf(&b, fmt, ap);
    va_end(ap);
    errs->items = gyre_realloc(errs->items, sizeof(*errs->items) * (errs->count + 1));
    errs->items[errs->count++] = b.base != NULL ? b.base : gyre_strdup("");
}

#define ERR(ctx, node, field, ...) add_error((ctx)->errs, (ctx)->source, line_of(node), (field), __VA_ARGS__)

static int line_of(const yaml_node_t *n)
{
    return n != NULL ? (int)n->start_mark.line + 1 : 0;
}

static const char *scalar(const yaml_node_t *n)
{
    return n != NULL && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static const char *node_type_name(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE: return "a scalar";
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_MAPPING_NODE: return "a mapping";
    default: return "empty";
    }
}

/* Field paths such as "providers[0].keys[1]" for error messages. */
static const char *path_of(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static const char *path_of(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return buf;
}

static int want_type(parse_ctx_t *ctx, yaml_node_t *n, yaml_node_type_t type, const char *field)
{
    if (n->type == type)
        return 1;
    const char *want = type == YAML_SCALAR_NODE ? "a scalar" : type == YAML_SEQUENCE_NODE ? "a list" : "a mapping";
    ERR(ctx, n, field, "expected %s, found %s", want, node_type_name(n));
    return 0;
}

static int get_string(parse_ctx_t *ctx, yaml_node_t *n, const char *field, char **out)
{
    if (!want_type(ctx, n, YAML_SCALAR_NODE, field))
        return 0;
    free(*out);
    *out = gyre_strdup(scalar(n));
    return 1;
}

static int get_uint(parse_ctx_t *ctx, yaml_node_t *n, const char *field, unsigned long long min, unsigned long long max,
                    unsigned long long *out)
{
    if (!want_type(ctx, n, YAML_SCALAR_NODE, field))
        return 0;
    const char *s = scalar(n);
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

static int get_bool(parse_ctx_t *ctx, yaml_node_t *n, const char *field, int *out)
{
    if (!want_type(ctx, n, YAML_SCALAR_NODE, field))
        return 0;
    const char *s = scalar(n);
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

static int valid_name(const char *s)
{
    if (s[0] == '\0')
        return 0;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.' || *p == ':'))
            return 0;
    return 1;
}

/* Splits http(s)://host[:port][/path] into the provider's fields. */
static const char *parse_base_url(gyre_provider_conf_t *p)
{
    const char *u = p->base_url, *rest;
    if (strncmp(u, "http://", 7) == 0) {
        p->is_https = 0;
        rest = u + 7;
    } else if (strncmp(u, "https://", 8) == 0) {
        p->is_https = 1;
        rest = u + 8;
    } else {
        return "must start with http:// or https://";
    }
    const char *slash = strchr(rest, '/');
    size_t authlen = slash ? (size_t)(slash - rest) : strlen(rest);
    if (authlen == 0)
        return "has no host";
    char *auth = gyre_strndup(rest, authlen);
    const char *err = NULL;
    if (strchr(auth, '@') != NULL) {
        err = "must not contain credentials (use keys:)";
    } else if (strchr(auth[0] == '[' && strchr(auth, ']') != NULL ? strchr(auth, ']') : auth, ':') != NULL) {
        /* An explicit port; for "[v6]:port" only a colon after the bracket counts. */
        if (parse_hostport(auth, &p->host, &p->port) != 0)
            err = "has an invalid port";
    } else {
        p->host = auth[0] == '[' ? gyre_strndup(auth + 1, authlen - 2) : gyre_strdup(auth);
        p->port = p->is_https ? 443 : 80;
    }
    free(auth);
    if (err == NULL) {
        const char *path = slash ? slash : "";
        size_t plen = strlen(path);
        while (plen > 0 && path[plen - 1] == '/')
            plen--;
        if (strpbrk(path, "?#") != NULL)
            err = "must not contain a query or fragment";
        else
            p->base_path = gyre_strndup(path, plen);
    }
    return err;
}

/* Loads one key from its literal, env:NAME or file:PATH form. */
static char *resolve_key(parse_ctx_t *ctx, yaml_node_t *n, const char *field, const char *spec)
{
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
    } else if (want_type(ctx, n, YAML_SEQUENCE_NODE, path_of(field, sizeof(field), "providers[%zu].keys", pi))) {
        start = n->data.sequence.items.start;
        end = n->data.sequence.items.top;
    } else {
        return;
    }
    for (yaml_node_item_t *it = start; it < end; it++) {
        size_t ki = (size_t)(it - start);
        yaml_node_t *kn = it == &single ? n : yaml_document_get_node(ctx->doc, *it);
        path_of(field, sizeof(field), "providers[%zu].keys[%zu]", pi, ki);
        if (!want_type(ctx, kn, YAML_SCALAR_NODE, field))
            continue;
        char *key = resolve_key(ctx, kn, field, scalar(kn));
        if (key == NULL)
            continue;
        p->keys = gyre_realloc(p->keys, sizeof(*p->keys) * (p->nkeys + 1));
        p->key_ids = gyre_realloc(p->key_ids, sizeof(*p->key_ids) * (p->nkeys + 1));
        p->keys[p->nkeys] = key;
        char id[256];
        snprintf(id, sizeof(id), "%s#%zu", p->name ? p->name : "provider", ki);
        p->key_ids[p->nkeys] = gyre_strdup(id);
        p->nkeys++;
    }
}

static void parse_provider(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n, size_t pi)
{
    char field[128];
    gyre_provider_conf_t *p = &c->providers[pi];
    memset(p, 0, sizeof(*p));
    p->tls_verify = 1;
    p->timeout_ms = GYRE_DEFAULT_TIMEOUT_MS;
    p->line = line_of(n);
    if (!want_type(ctx, n, YAML_MAPPING_NODE, path_of(field, sizeof(field), "providers[%zu]", pi)))
        return;
    yaml_node_t *keys_node = NULL, *kind_node = NULL, *url_node = NULL;
    for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(ctx->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(ctx->doc, pair->value);
        const char *key = scalar(k);
        unsigned long long u;
        if (key == NULL) {
            ERR(ctx, k, path_of(field, sizeof(field), "providers[%zu]", pi), "field names must be scalars");
        } else if (strcmp(key, "name") == 0) {
            if (get_string(ctx, v, path_of(field, sizeof(field), "providers[%zu].name", pi), &p->name) &&
                !valid_name(p->name))
                ERR(ctx, v, field, "'%s' is not a valid name (letters, digits, '-', '_', '.', ':')", p->name);
        } else if (strcmp(key, "kind") == 0) {
            kind_node = v;
        } else if (strcmp(key, "base_url") == 0) {
            url_node = v;
            get_string(ctx, v, path_of(field, sizeof(field), "providers[%zu].base_url", pi), &p->base_url);
        } else if (strcmp(key, "keys") == 0) {
            keys_node = v; /* after the name, which key ids use */
        } else if (strcmp(key, "ca_file") == 0) {
            if (get_string(ctx, v, path_of(field, sizeof(field), "providers[%zu].ca_file", pi), &p->ca_file)) {
                FILE *f = fopen(p->ca_file, "r");
                if (f == NULL)
                    ERR(ctx, v, field, "cannot read %s: %s", p->ca_file, strerror(errno));
                else
                    fclose(f);
            }
        } else if (strcmp(key, "tls_verify") == 0) {
            get_bool(ctx, v, path_of(field, sizeof(field), "providers[%zu].tls_verify", pi), &p->tls_verify);
        } else if (strcmp(key, "timeout_ms") == 0) {
            if (get_uint(ctx, v, path_of(field, sizeof(field), "providers[%zu].timeout_ms", pi), 1, 3600000, &u))
                p->timeout_ms = u;
        } else {
            ERR(ctx, k, path_of(field, sizeof(field), "providers[%zu]", pi),
                "unknown field '%s' (known: name, kind, base_url, keys, ca_file, tls_verify, timeout_ms)", key);
        }
    }
    if (p->name == NULL)
        ERR(ctx, n, path_of(field, sizeof(field), "providers[%zu].name", pi), "is required");
    if (kind_node == NULL) {
        ERR(ctx, n, path_of(field, sizeof(field), "providers[%zu].kind", pi), "is required (supported: openai)");
    } else if (want_type(ctx, kind_node, YAML_SCALAR_NODE, path_of(field, sizeof(field), "providers[%zu].kind", pi))) {
        if (strcmp(scalar(kind_node), "openai") == 0)
            p->kind = GYRE_PROVIDER_OPENAI;
        else
            ERR(ctx, kind_node, field, "unsupported kind '%s' (supported: openai)", scalar(kind_node));
    }
    if (url_node == NULL) {
        ERR(ctx, n, path_of(field, sizeof(field), "providers[%zu].base_url", pi), "is required");
    } else if (p->base_url != NULL) {
        const char *err = parse_base_url(p);
        if (err != NULL)
            ERR(ctx, url_node, path_of(field, sizeof(field), "providers[%zu].base_url", pi), "'%s' %s", p->base_url,
                err);
    }
    if (keys_node != NULL)
        parse_keys(ctx, keys_node, p, pi);
    for (size_t j = 0; j < pi; j++)
        if (p->name != NULL && c->providers[j].name != NULL && strcmp(p->name, c->providers[j].name) == 0)
            ERR(ctx, n, path_of(field, sizeof(field), "providers[%zu].name", pi),
                "'%s' is already used by providers[%zu]", p->name, j);
}

static void parse_target(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n, gyre_target_conf_t *t, size_t ri,
                         size_t ti)
{
    char field[128];
    t->weight = 1;
    t->provider = SIZE_MAX;
    if (!want_type(ctx, n, YAML_MAPPING_NODE, path_of(field, sizeof(field), "routes[%zu].targets[%zu]", ri, ti)))
        return;
    yaml_node_t *prov_node = NULL;
    for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(ctx->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(ctx->doc, pair->value);
        const char *key = scalar(k);
        unsigned long long u;
        if (key != NULL && strcmp(key, "provider") == 0) {
            prov_node = v;
        } else if (key != NULL && strcmp(key, "model") == 0) {
            get_string(ctx, v, path_of(field, sizeof(field), "routes[%zu].targets[%zu].model", ri, ti), &t->model);
        } else if (key != NULL && strcmp(key, "weight") == 0) {
            if (get_uint(ctx, v, path_of(field, sizeof(field), "routes[%zu].targets[%zu].weight", ri, ti), 0, 1000000,
                         &u))
                t->weight = (unsigned)u;
        } else {
            ERR(ctx, k, path_of(field, sizeof(field), "routes[%zu].targets[%zu]", ri, ti),
                "unknown field '%s' (known: provider, model, weight)", key ? key : "?");
        }
    }
    if (prov_node == NULL) {
        ERR(ctx, n, path_of(field, sizeof(field), "routes[%zu].targets[%zu].provider", ri, ti), "is required");
    } else if (want_type(ctx, prov_node, YAML_SCALAR_NODE,
                         path_of(field, sizeof(field), "routes[%zu].targets[%zu].provider", ri, ti))) {
        const char *name = scalar(prov_node);
        for (size_t i = 0; i < c->nproviders; i++)
            if (c->providers[i].name != NULL && strcmp(c->providers[i].name, name) == 0)
                t->provider = i;
        if (t->provider == SIZE_MAX)
            ERR(ctx, prov_node, field, "no provider is named '%s'", name);
    }
    if (t->model == NULL)
        ERR(ctx, n, path_of(field, sizeof(field), "routes[%zu].targets[%zu].model", ri, ti), "is required");
}

static void parse_route(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n, size_t ri)
{
    char field[128];
    gyre_route_conf_t *r = &c->routes[ri];
    memset(r, 0, sizeof(*r));
    r->line = line_of(n);
    if (!want_type(ctx, n, YAML_MAPPING_NODE, path_of(field, sizeof(field), "routes[%zu]", ri)))
        return;
    yaml_node_t *targets = NULL;
    for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(ctx->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(ctx->doc, pair->value);
        const char *key = scalar(k);
        if (key != NULL && strcmp(key, "name") == 0) {
            if (get_string(ctx, v, path_of(field, sizeof(field), "routes[%zu].name", ri), &r->name) &&
                !valid_name(r->name))
                ERR(ctx, v, field, "'%s' is not a valid route name (letters, digits, '-', '_', '.', ':'; no '/')",
                    r->name);
        } else if (key != NULL && strcmp(key, "targets") == 0) {
            targets = v;
        } else {
            ERR(ctx, k, path_of(field, sizeof(field), "routes[%zu]", ri), "unknown field '%s' (known: name, targets)",
                key ? key : "?");
        }
    }
    if (r->name == NULL)
        ERR(ctx, n, path_of(field, sizeof(field), "routes[%zu].name", ri), "is required");
    for (size_t j = 0; j < ri; j++)
        if (r->name != NULL && c->routes[j].name != NULL && strcmp(r->name, c->routes[j].name) == 0)
            ERR(ctx, n, path_of(field, sizeof(field), "routes[%zu].name", ri), "'%s' is already used by routes[%zu]",
                r->name, j);
    if (targets == NULL) {
        ERR(ctx, n, path_of(field, sizeof(field), "routes[%zu].targets", ri), "is required");
        return;
    }
    if (!want_type(ctx, targets, YAML_SEQUENCE_NODE, path_of(field, sizeof(field), "routes[%zu].targets", ri)))
        return;
    size_t nt = (size_t)(targets->data.sequence.items.top - targets->data.sequence.items.start);
    if (nt == 0) {
        ERR(ctx, targets, field, "needs at least one target");
        return;
    }
    r->targets = gyre_calloc(nt, sizeof(*r->targets));
    r->ntargets = nt;
    for (size_t ti = 0; ti < nt; ti++) {
        parse_target(ctx, c, yaml_document_get_node(ctx->doc, targets->data.sequence.items.start[ti]), &r->targets[ti],
                     ri, ti);
        r->total_weight += r->targets[ti].weight;
    }
    if (r->total_weight == 0)
        ERR(ctx, targets, field, "the weights of the targets add up to 0");
}

static void parse_root(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *root)
{
    yaml_node_t *providers = NULL, *routes = NULL;
    for (yaml_node_pair_t *pair = root->data.mapping.pairs.start; pair < root->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(ctx->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(ctx->doc, pair->value);
        const char *key = scalar(k);
        unsigned long long u;
        if (key == NULL) {
            ERR(ctx, k, "", "field names must be scalars");
        } else if (strcmp(key, "listen") == 0) {
            if (want_type(ctx, v, YAML_SCALAR_NODE, "listen")) {
                free(c->listen_host);
                c->listen_host = NULL;
                if (parse_hostport(scalar(v), &c->listen_host, &c->listen_port) != 0)
                    ERR(ctx, v, "listen", "'%s' is not HOST:PORT (for example 127.0.0.1:8080)", scalar(v));
            }
        } else if (strcmp(key, "workers") == 0) {
            if (get_uint(ctx, v, "workers", 1, 256, &u))
                c->workers = (unsigned)u;
        } else if (strcmp(key, "max_body_bytes") == 0) {
            if (get_uint(ctx, v, "max_body_bytes", 1024, (unsigned long long)1 << 30, &u))
                c->max_body_bytes = (size_t)u;
        } else if (strcmp(key, "shutdown_grace_ms") == 0) {
            if (get_uint(ctx, v, "shutdown_grace_ms", 0, 3600000, &u))
                c->shutdown_grace_ms = u;
        } else if (strcmp(key, "store") == 0) {
            if (want_type(ctx, v, YAML_MAPPING_NODE, "store")) {
                for (yaml_node_pair_t *sp = v->data.mapping.pairs.start; sp < v->data.mapping.pairs.top; sp++) {
                    yaml_node_t *sk = yaml_document_get_node(ctx->doc, sp->key);
                    yaml_node_t *sv = yaml_document_get_node(ctx->doc, sp->value);
                    if (scalar(sk) != NULL && strcmp(scalar(sk), "sqlite") == 0)
                        get_string(ctx, sv, "store.sqlite", &c->store_sqlite);
                    else
                        ERR(ctx, sk, "store", "unknown store '%s' (supported: sqlite)", scalar(sk) ? scalar(sk) : "?");
                }
            }
        } else if (strcmp(key, "providers") == 0) {
            providers = v;
        } else if (strcmp(key, "routes") == 0) {
            routes = v;
        } else {
            ERR(ctx, k, "",
                "unknown field '%s' (known: listen, workers, store, providers, routes, max_body_bytes, "
                "shutdown_grace_ms)",
                key);
        }
    }
    /* Providers first: routes refer to them by name. */
    if (providers != NULL && want_type(ctx, providers, YAML_SEQUENCE_NODE, "providers")) {
        size_t np = (size_t)(providers->data.sequence.items.top - providers->data.sequence.items.start);
        c->providers = gyre_calloc(np, sizeof(*c->providers));
        c->nproviders = np;
        for (size_t i = 0; i < np; i++)
            parse_provider(ctx, c, yaml_document_get_node(ctx->doc, providers->data.sequence.items.start[i]), i);
    }
    if (routes != NULL && want_type(ctx, routes, YAML_SEQUENCE_NODE, "routes")) {
        size_t nr = (size_t)(routes->data.sequence.items.top - routes->data.sequence.items.start);
        c->routes = gyre_calloc(nr, sizeof(*c->routes));
        c->nroutes = nr;
        for (size_t i = 0; i < nr; i++)
            parse_route(ctx, c, yaml_document_get_node(ctx->doc, routes->data.sequence.items.start[i]), i);
    }
}

gyre_config_t *gyre_config_parse(const char *source, const char *text, size_t len, gyre_config_errors_t *errs)
{
    gyre_config_t *c = gyre_calloc(1, sizeof(*c));
    c->source = gyre_strdup(source);
    c->listen_host = gyre_strdup("127.0.0.1");
    c->listen_port = 8080;
    c->store_sqlite = gyre_strdup("./gyre.db");
    c->max_body_bytes = GYRE_DEFAULT_MAX_BODY_BYTES;
    c->shutdown_grace_ms = GYRE_DEFAULT_GRACE_MS;
    size_t errs_before = errs->count;

    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        add_error(errs, source, (int)parser.problem_mark.line + 1, NULL, "invalid YAML: %s%s%s",
                  parser.problem ? parser.problem : "syntax error", parser.context ? " " : "",
                  parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        gyre_config_free(c);
        return NULL;
    }
    parse_ctx_t ctx = {source, &doc, errs};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root == NULL) {
        add_error(errs, source, 0, NULL, "the file is empty");
    } else if (want_type(&ctx, root, YAML_MAPPING_NODE, "(top level)")) {
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

gyre_config_t *gyre_config_load(const char *path, gyre_config_errors_t *errs)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        add_error(errs, path, 0, NULL, "cannot open: %s", strerror(errno));
        return NULL;
    }
    gyre_buf_t b;
    gyre_buf_init(&b, MAX_CONFIG_BYTES);
    char chunk[8192];
    size_t n;
    int toolarge = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (gyre_buf_append(&b, chunk, n) != 0) {
            toolarge = 1;
            break;
        }
    int rerr = ferror(f);
    fclose(f);
    gyre_config_t *c = NULL;
    if (toolarge)
        add_error(errs, path, 0, NULL, "larger than %d bytes", MAX_CONFIG_BYTES);
    else if (rerr)
        add_error(errs, path, 0, NULL, "read error");
    else
        c = gyre_config_parse(path, b.base ? b.base : "", b.len, errs);
    gyre_buf_dispose(&b);
    return c;
}

/* Providers the embedded default builds from the usual environment variables. */
static const struct {
    const char *env, *name, *base_url, *chat_model, *embed_model;
} known_providers[] = {
    {"OPENAI_API_KEY", "openai", "https://api.openai.com/v1", "gpt-4o-mini", "text-embedding-3-small"},
    {"GROQ_API_KEY", "groq", "https://api.groq.com/openai/v1", "llama-3.1-8b-instant", NULL},
    {"MISTRAL_API_KEY", "mistral", "https://api.mistral.ai/v1", "mistral-small-latest", "mistral-embed"},
    {"DEEPSEEK_API_KEY", "deepseek", "https://api.deepseek.com/v1", "deepseek-chat", NULL},
    {"TOGETHER_API_KEY", "together", "https://api.together.xyz/v1", "meta-llama/Llama-3.3-70B-Instruct-Turbo", NULL},
    {"OPENROUTER_API_KEY", "openrouter", "https://openrouter.ai/api/v1", "openai/gpt-4o-mini", NULL},
};

static int env_set(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0';
}

char *gyre_config_default_yaml(void)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 64 * 1024);
    gyre_buf_appends(&b, "listen: 127.0.0.1:8080\nstore: {sqlite: ./gyre.db}\nproviders:\n");
    const char *chat_p = NULL, *chat_m = NULL, *embed_p = NULL, *embed_m = NULL;
    int any = 0;
    for (size_t i = 0; i < sizeof(known_providers) / sizeof(known_providers[0]); i++) {
        if (!env_set(known_providers[i].env))
            continue;
        gyre_buf_appendf(&b, "  - {name: %s, kind: openai, base_url: \"%s\", keys: [\"env:%s\"]}\n",
                         known_providers[i].name, known_providers[i].base_url, known_providers[i].env);
        any = 1;
        if (chat_p == NULL) {
            chat_p = known_providers[i].name;
            chat_m = known_providers[i].chat_model;
        }
        if (embed_p == NULL && known_providers[i].embed_model != NULL) {
            embed_p = known_providers[i].name;
            embed_m = known_providers[i].embed_model;
        }
    }
    const char *mock = getenv("GYRE_MOCK_URL");
    if (mock != NULL && mock[0] != '\0') {
        gyre_buf_appendf(&b, "  - {name: mock, kind: openai, base_url: \"%s\", keys: [sk-mock]}\n", mock);
        any = 1;
        if (chat_p == NULL) {
            chat_p = "mock";
            chat_m = "gpt-4o-mini";
        }
        if (embed_p == NULL) {
            embed_p = "mock";
            embed_m = "text-embedding-3-small";
        }
    }
    if (!any)
        gyre_buf_appends(&b, "  []\n");
    gyre_buf_appends(&b, "routes:\n");
    if (chat_p != NULL)
        gyre_buf_appendf(&b, "  - {name: chat, targets: [{provider: %s, model: \"%s\"}]}\n", chat_p, chat_m);
    if (embed_p != NULL)
        gyre_buf_appendf(&b, "  - {name: embed, targets: [{provider: %s, model: \"%s\"}]}\n", embed_p, embed_m);
    if (chat_p == NULL && embed_p == NULL)
        gyre_buf_appends(&b, "  []\n");
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
    if (env_set("ANTHROPIC_API_KEY") || env_set("GEMINI_API_KEY"))
        add_note(c, "ANTHROPIC_API_KEY/GEMINI_API_KEY are set, but this build speaks only the OpenAI dialect; "
                    "those providers are not configured");
    if (env_set("GYRE_MOCK_URL")) {
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
    free(p->ca_file);
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
        free(c->routes[i].name);
    }
    free(c->routes);
    for (size_t i = 0; i < c->nnotes; i++)
        free(c->notes[i]);
    free(c->notes);
    free(c->source);
    free(c->listen_host);
    free(c->store_sqlite);
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
