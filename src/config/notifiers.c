/*
 * `notifiers:` where gyre tells people what it saw and what it did (src/control/notify.h sends):
 *
 *   notifiers:
 *     - {name: page_oncall, kind: pagerduty, url: https://events.pagerduty.com/v2/enqueue, routing_key: env:PD_KEY}
 *     - {name: ops, kind: webhook, url: http://127.0.0.1:9999/hook, timeout: 5s, retries: 5, digest: 5m,
 *        headers: {Authorization: env:OPS_TOKEN}}
 *     - {name: team, kind: slack, url: env:SLACK_WEBHOOK_URL}
 *     - {name: journal, kind: log}
 *
 * A URL, a routing key and a header value are secrets (a Slack or Teams webhook URL is its own credential):
 * each is loaded with gyre_cfg_resolve_key and never echoed in an error.  What logs may show of a URL is kept
 * in url_shown: the scheme and host of a literal URL, or the env:/file: spec it came from.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "common/wire.h"
#include "config/config_int.h"

/* More notifiers than this is a config error: the sender keeps per-notifier state and metric series. */
#define NOTIFIERS_MAX 64
#define NOTIFIER_HEADERS_MAX 16
#define NOTIFIER_RETRIES_MAX 20
#define NOTIFIER_TIMEOUT_MIN_US 100000LL          /* 100 ms */
#define NOTIFIER_TIMEOUT_MAX_US 60000000LL        /* 60 s */
#define NOTIFIER_DIGEST_MIN_US 1000000LL          /* 1 s */
#define NOTIFIER_DIGEST_MAX_US 86400000000LL      /* 24 h */

static const char *const kind_names[] = {"webhook", "slack", "teams", "pagerduty", "log", NULL};

static int is_secret_spec(const char *spec)
{
    return strncmp(spec, "env:", 4) == 0 || strncmp(spec, "file:", 5) == 0;
}

static void free_one(gyre_notifier_conf_t *n)
{
    if (n->url != NULL)
        explicit_bzero(n->url, strlen(n->url));
    if (n->routing_key != NULL)
        explicit_bzero(n->routing_key, strlen(n->routing_key));
    free(n->url);
    free(n->routing_key);
    free(n->url_shown);
    free(n->name);
    free(n->ca_file);
    for (size_t i = 0; i < n->nheaders; i++) {
        explicit_bzero(n->header_values[i], strlen(n->header_values[i]));
        free(n->header_values[i]);
        free(n->header_names[i]);
    }
    free(n->header_names);
    free(n->header_values);
}

void gyre_config_free_notifiers(gyre_config_t *c)
{
    for (size_t i = 0; i < c->nnotifiers; i++)
        free_one(&c->notifiers[i]);
    free(c->notifiers);
    c->notifiers = NULL;
    c->nnotifiers = 0;
}

const gyre_notifier_conf_t *gyre_config_find_notifier(const gyre_config_t *c, const char *name)
{
    for (size_t i = 0; i < c->nnotifiers; i++)
        if (c->notifiers[i].name != NULL && strcmp(c->notifiers[i].name, name) == 0)
            return &c->notifiers[i];
    return NULL;
}

/* headers: {Name: value}: values may be env:/file: secrets; a line break in one would split the request head. */
static void parse_headers(parse_ctx_t *ctx, gyre_notifier_conf_t *nf, yaml_node_t *v, size_t i)
{
    char field[200];
    if (!gyre_cfg_want_type(ctx, v, YAML_MAPPING_NODE, gyre_cfg_path_of(field, sizeof(field), "notifiers[%zu].headers", i)))
        return;
    for (yaml_node_pair_t *hp = v->data.mapping.pairs.start; hp < v->data.mapping.pairs.top; hp++) {
        yaml_node_t *hk = GYRE_CFG_KEY(ctx, hp), *hv = GYRE_CFG_VALUE(ctx, hp);
        const char *name = gyre_cfg_scalar(hk);
        if (name == NULL || !gyre_wire_is_token(name, strlen(name))) {
            ERR(ctx, hk, gyre_cfg_path_of(field, sizeof(field), "notifiers[%zu].headers", i),
                "'%.100s' is not a valid header name", name != NULL ? name : "?");
            continue;
        }
        if (strcasecmp(name, "content-type") == 0 || strcasecmp(name, "content-length") == 0 ||
            strcasecmp(name, "host") == 0 || strcasecmp(name, "connection") == 0 ||
            strcasecmp(name, "transfer-encoding") == 0) {
            ERR(ctx, hk, gyre_cfg_path_of(field, sizeof(field), "notifiers[%zu].headers", i),
                "'%s' is set by gyre and cannot be configured", name);
            continue;
        }
        if (nf->nheaders == NOTIFIER_HEADERS_MAX) {
            ERR(ctx, hk, gyre_cfg_path_of(field, sizeof(field), "notifiers[%zu].headers", i),
                "more than %d headers", NOTIFIER_HEADERS_MAX);
            return;
        }
        gyre_cfg_path_of(field, sizeof(field), "notifiers[%zu].headers.%.100s", i, name);
        if (!gyre_cfg_want_type(ctx, hv, YAML_SCALAR_NODE, field))
            continue;
        char *value = gyre_cfg_resolve_key(ctx, hv, field, gyre_cfg_scalar(hv));
        if (value == NULL)
            continue;
        if (gyre_wire_header_value_problem(value, strlen(value), 8192) != NULL) {
            /* The value may be a secret: say where it is, never what it is. */
            ERR(ctx, hv, field, "is not a valid header value (a line break, a control byte, or over 8192 bytes)");
            explicit_bzero(value, strlen(value));
            free(value);
            continue;
        }
        nf->header_names = gyre_realloc(nf->header_names, sizeof(char *) * (nf->nheaders + 1));
        nf->header_values = gyre_realloc(nf->header_values, sizeof(char *) * (nf->nheaders + 1));
        nf->header_names[nf->nheaders] = gyre_strdup(name);
        nf->header_values[nf->nheaders] = value;
        nf->nheaders++;
    }
}

/* The URL's problem (NULL: fine); url_shown gets its scheme and host when it was written literally. */
static const char *check_url(gyre_notifier_conf_t *nf, const char *spec)
{
    h2o_url_t url;
    const char *problem = gyre_wire_url_problem(nf->url, 1, &url);
    if (problem != NULL)
        return problem;
    if (is_secret_spec(spec)) {
        nf->url_shown = gyre_strdup(spec);
    } else {
        /* A literal URL's path and query may hold a token (Slack's and Teams' do): only scheme://host[:port]. */
        char shown[512];
        int https = url.scheme == &H2O_URL_SCHEME_HTTPS;
        int v6 = memchr(url.host.base, ':', url.host.len) != NULL;
        uint16_t port = gyre_wire_url_port(&url);
        int n = snprintf(shown, sizeof(shown), "%s://%s%.*s%s", https ? "https" : "http", v6 ? "[" : "",
                         (int)(url.host.len > 255 ? 255 : url.host.len), url.host.base, v6 ? "]" : "");
        if (port != (https ? 443 : 80))
            snprintf(shown + n, sizeof(shown) - (size_t)n, ":%u", port);
        nf->url_shown = gyre_strdup(shown);
    }
    return NULL;
}

static void parse_one(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n, size_t i)
{
    gyre_notifier_conf_t *nf = &c->notifiers[i];
    char field[200];
    nf->timeout_ms = GYRE_NOTIFIER_DEFAULT_TIMEOUT_MS;
    nf->retries = GYRE_NOTIFIER_DEFAULT_RETRIES;
    nf->line = gyre_cfg_line_of(n);
    if (!gyre_cfg_want_type(ctx, n, YAML_MAPPING_NODE, gyre_cfg_path_of(field, sizeof(field), "notifiers[%zu]", i)))
        return;
    yaml_node_t *url_node = NULL, *key_node = NULL, *kind_node = NULL;
    int kind = -1;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = GYRE_CFG_KEY(ctx, p), *v = GYRE_CFG_VALUE(ctx, p);
        const char *key = gyre_cfg_scalar(k) != NULL ? gyre_cfg_scalar(k) : "?";
        unsigned long long u;
        int64_t us;
        gyre_cfg_path_of(field, sizeof(field), "notifiers[%zu].%.40s", i, key);
        if (strcmp(key, "name") == 0) {
            if (gyre_cfg_get_string(ctx, v, field, &nf->name) && !gyre_cfg_valid_name(nf->name))
                ERR(ctx, v, field, "'%.100s' is not a valid name (letters, digits, '.', '_', ':', '-')", nf->name);
        } else if (strcmp(key, "kind") == 0) {
            kind_node = v;
            kind = gyre_cfg_get_choice(ctx, v, field, kind_names);
            if (kind >= 0)
                nf->kind = (gyre_notifier_kind_t)(GYRE_NOTIFIER_WEBHOOK + kind);
        } else if (strcmp(key, "url") == 0) {
            if (gyre_cfg_want_type(ctx, v, YAML_SCALAR_NODE, field)) {
                url_node = v;
                nf->url = gyre_cfg_resolve_key(ctx, v, field, gyre_cfg_scalar(v));
            }
        } else if (strcmp(key, "routing_key") == 0) {
            if (gyre_cfg_want_type(ctx, v, YAML_SCALAR_NODE, field)) {
                key_node = v;
                nf->routing_key = gyre_cfg_resolve_key(ctx, v, field, gyre_cfg_scalar(v));
            }
        } else if (strcmp(key, "timeout") == 0) {
            if (gyre_cfg_get_duration(ctx, v, field, &us)) {
                if (us < NOTIFIER_TIMEOUT_MIN_US || us > NOTIFIER_TIMEOUT_MAX_US)
                    ERR(ctx, v, field, "must be between 100ms and 60s");
                else
                    nf->timeout_ms = (uint64_t)us / 1000;
            }
        } else if (strcmp(key, "retries") == 0) {
            if (gyre_cfg_get_uint(ctx, v, field, 0, NOTIFIER_RETRIES_MAX, &u))
                nf->retries = (unsigned)u;
        } else if (strcmp(key, "digest") == 0) {
            if (gyre_cfg_get_duration(ctx, v, field, &us)) {
                if (us != 0 && (us < NOTIFIER_DIGEST_MIN_US || us > NOTIFIER_DIGEST_MAX_US))
                    ERR(ctx, v, field, "must be 0 (off) or between 1s and 24h");
                else
                    nf->digest_ms = (uint64_t)us / 1000;
            }
        } else if (strcmp(key, "ca_file") == 0) {
            if (gyre_cfg_get_string(ctx, v, field, &nf->ca_file)) {
                FILE *f = fopen(nf->ca_file, "r");
                if (f == NULL)
                    ERR(ctx, v, field, "cannot read %s: %s", nf->ca_file, strerror(errno));
                else
                    fclose(f);
            }
        } else if (strcmp(key, "headers") == 0) {
            parse_headers(ctx, nf, v, i);
        } else {
            ERR(ctx, k, gyre_cfg_path_of(field, sizeof(field), "notifiers[%zu]", i),
                "unknown field '%.100s' (known: name, kind, url, routing_key, timeout, retries, digest, headers, "
                "ca_file)",
                key);
        }
    }
    if (nf->name == NULL)
        ERR(ctx, n, gyre_cfg_path_of(field, sizeof(field), "notifiers[%zu]", i), "needs a 'name'");
    if (kind_node == NULL)
        ERR(ctx, n, gyre_cfg_path_of(field, sizeof(field), "notifiers[%zu]", i),
            "needs a 'kind' (webhook, slack, teams, pagerduty or log)");
    if (kind < 0)
        return;
    if (nf->kind == GYRE_NOTIFIER_LOG) {
        if (url_node != NULL)
            ERR(ctx, url_node, gyre_cfg_path_of(field, sizeof(field), "notifiers[%zu].url", i),
                "a 'log' notifier posts nothing: it takes no url");
    } else if (url_node == NULL) {
        ERR(ctx, n, gyre_cfg_path_of(field, sizeof(field), "notifiers[%zu]", i),
            "a '%s' notifier needs a 'url'", kind_names[kind]);
    } else if (nf->url != NULL) {
        const char *problem = check_url(nf, gyre_cfg_scalar(url_node));
        if (problem != NULL)
            /* Never the URL itself: a webhook URL is its own credential. */
            ERR(ctx, url_node, gyre_cfg_path_of(field, sizeof(field), "notifiers[%zu].url", i),
                "is not an http:// or https:// URL with a host");
    }
    if (nf->kind == GYRE_NOTIFIER_PAGERDUTY && key_node == NULL)
        ERR(ctx, n, gyre_cfg_path_of(field, sizeof(field), "notifiers[%zu]", i),
            "a 'pagerduty' notifier needs a 'routing_key' (its Events API v2 integration key)");
    if (nf->kind != GYRE_NOTIFIER_PAGERDUTY && key_node != NULL)
        ERR(ctx, key_node, gyre_cfg_path_of(field, sizeof(field), "notifiers[%zu].routing_key", i),
            "only a 'pagerduty' notifier takes a routing_key");
    if (nf->routing_key != NULL && gyre_wire_header_value_problem(nf->routing_key, strlen(nf->routing_key), 255))
        ERR(ctx, key_node, gyre_cfg_path_of(field, sizeof(field), "notifiers[%zu].routing_key", i),
            "is not a routing key (printable, at most 255 bytes)");
}

void gyre_cfg_parse_notifiers(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n)
{
    if (!gyre_cfg_want_type(ctx, n, YAML_SEQUENCE_NODE, "notifiers"))
        return;
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count > NOTIFIERS_MAX) {
        ERR(ctx, n, "notifiers", "more than %d notifiers", NOTIFIERS_MAX);
        return;
    }
    gyre_config_free_notifiers(c);
    c->notifiers = gyre_calloc(count ? count : 1, sizeof(*c->notifiers));
    c->nnotifiers = count;
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = yaml_document_get_node(ctx->doc, n->data.sequence.items.start[i]);
        parse_one(ctx, c, item, i);
        for (size_t j = 0; j < i && c->notifiers[i].name != NULL; j++)
            if (c->notifiers[j].name != NULL && strcmp(c->notifiers[j].name, c->notifiers[i].name) == 0) {
                char field[64];
                ERR(ctx, item, gyre_cfg_path_of(field, sizeof(field), "notifiers[%zu].name", i),
                    "'%s' is already the name of notifiers[%zu]", c->notifiers[i].name, j);
                break;
            }
    }
}
