/*
 * `alerts:` in the configuration: rules the gateway evaluates in-process
 * (src/control/alerts.h).  The ClawPulse shape loads as written:
 *
 *   alerts:
 *     - name: high_latency
 *       condition: p95_latency > 5000ms
 *       action: page_oncall
 *
 * and each rule may add `window:` [1m], `for:` [0], `resolve_for:` [for, or
 * 30s when for is 0], `min_firing:` [1m], `by:` [what its actions need],
 * `actions:` (several; `action:` and `actions:` together run in that order)
 * and `severity:` [warning].
 *
 * The condition is "SIGNAL OP VALUE[UNIT]"; the unit must fit the signal
 * (ms or s for a latency, % for a rate, $ for a cost), and the value is kept
 * in the signal's own unit (config.h).  Every error names the rule and the
 * field ("alerts[1].condition: unknown signal ...") with the file and line.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "config/config.h"
#include "config/config_int.h"

static const char *const signal_names[GYRE_SIG_COUNT] = {
    "p50_latency",       "p95_latency",  "p99_latency", "ttft_p95",    "error_rate",
    "rate_limited_rate", "request_rate", "tokens_per_minute", "cost_per_hour", "inflight",
    "queue_depth",       "trace_log_lag", "trace_spool_bytes",
};

#define SIGNAL_LIST                                                                                                    \
    "p50_latency, p95_latency, p99_latency, ttft_p95, error_rate, rate_limited_rate, request_rate, "                  \
    "tokens_per_minute, cost_per_hour, inflight, queue_depth, trace_log_lag, trace_spool_bytes"

const char *gyre_alert_signal_name(gyre_alert_signal_t s)
{
    return (unsigned)s < GYRE_SIG_COUNT ? signal_names[s] : "?";
}

int gyre_alert_signal_lookup(const char *name)
{
    for (int i = 0; i < GYRE_SIG_COUNT; i++)
        if (strcmp(name, signal_names[i]) == 0)
            return i;
    return -1;
}

/* Whether a signal is the whole gateway's (a gauge with no labels), so `by:` means nothing for it. */
static int signal_is_global(gyre_alert_signal_t s)
{
    return s == GYRE_SIG_INFLIGHT || s == GYRE_SIG_QUEUE_DEPTH || s == GYRE_SIG_TRACE_LOG_LAG ||
           s == GYRE_SIG_TRACE_SPOOL_BYTES;
}

static const struct {
    const char *name;
    gyre_alert_action_kind_t kind;
    unsigned needs; /* the `by:` dimensions it acts on */
} builtins[] = {
    {"failover_to_secondary", GYRE_ACTION_FAILOVER, GYRE_ALERT_BY_ROUTE | GYRE_ALERT_BY_PROVIDER},
    {"rotate_key", GYRE_ACTION_ROTATE_KEY, GYRE_ALERT_BY_PROVIDER | GYRE_ALERT_BY_KEY},
    {"open_circuit", GYRE_ACTION_OPEN_CIRCUIT, GYRE_ALERT_BY_PROVIDER},
    {"log", GYRE_ACTION_LOG, 0},
};
#define NBUILTINS (sizeof(builtins) / sizeof(builtins[0]))

/*
 * Whether `name` is a notifier of the configuration.  THE LEAD WIRES THIS at the merge with the notifiers'
 * branch: `notifiers:` is not parsed on this branch, so every well-formed name is accepted here; with it, the
 * answer is whether c->notifiers has one of that name (config/notifiers.c parses before alerts: config.c parses
 * `alerts:` after every other section).
 */
static int notifier_known(const gyre_config_t *c, const char *name)
{
    (void)c;
    (void)name;
    return 1;
}

static const struct {
    const char *name;
    unsigned bit;
} dims[] = {
    {"route", GYRE_ALERT_BY_ROUTE},
    {"provider", GYRE_ALERT_BY_PROVIDER},
    {"key", GYRE_ALERT_BY_KEY},
    {"agent", GYRE_ALERT_BY_AGENT},
};

/* Units: how each signal may be written. */
enum unit { U_NONE, U_MS, U_S, U_PCT, U_USD };

static int parse_condition(parse_ctx_t *ctx, yaml_node_t *n, const char *field, gyre_alert_rule_conf_t *r)
{
    const char *s = gyre_cfg_scalar(n);
    if (s == NULL) {
        gyre_cfg_want_type(ctx, n, YAML_SCALAR_NODE, field);
        return 0;
    }
    const char *p = s;
    while (*p == ' ')
        p++;
    const char *name = p;
    while (isalnum((unsigned char)*p) || *p == '_')
        p++;
    size_t nlen = (size_t)(p - name);
    char sig[64];
    if (nlen == 0 || nlen >= sizeof(sig)) {
        ERR(ctx, n, field, "expected SIGNAL OP VALUE, for example 'p95_latency > 5000ms', found '%.200s'", s);
        return 0;
    }
    memcpy(sig, name, nlen);
    sig[nlen] = '\0';
    int si = gyre_alert_signal_lookup(sig);
    if (si < 0) {
        ERR(ctx, n, field, "unknown signal '%s' (known: " SIGNAL_LIST ")", sig);
        return 0;
    }
    while (*p == ' ')
        p++;
    gyre_alert_op_t op;
    if (p[0] == '>' && p[1] == '=')
        op = GYRE_ALERT_GE, p += 2;
    else if (p[0] == '<' && p[1] == '=')
        op = GYRE_ALERT_LE, p += 2;
    else if (p[0] == '>')
        op = GYRE_ALERT_GT, p += 1;
    else if (p[0] == '<')
        op = GYRE_ALERT_LT, p += 1;
    else {
        ERR(ctx, n, field, "expected a comparison (>, >=, < or <=) after '%s' in '%.200s'", sig, s);
        return 0;
    }
    while (*p == ' ')
        p++;
    enum unit unit = U_NONE;
    if (*p == '$') {
        unit = U_USD;
        p++;
    }
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    if (end == p || errno != 0 || !isfinite(v) || v < 0 || *p == '-' || *p == '+') {
        ERR(ctx, n, field, "expected a number >= 0 after the comparison in '%.200s'", s);
        return 0;
    }
    p = end;
    const char *u = p;
    if (strncmp(p, "ms", 2) == 0 && unit == U_NONE)
        unit = U_MS, p += 2;
    else if (*p == 's' && unit == U_NONE)
        unit = U_S, p++;
    else if (*p == '%' && unit == U_NONE)
        unit = U_PCT, p++;
    else if (*p == '$' && unit == U_NONE)
        unit = U_USD, p++;
    while (*p == ' ')
        p++;
    if (*p != '\0') {
        ERR(ctx, n, field, "unexpected '%.50s' after the value in '%.200s' (units: ms, s, %%, $)", u, s);
        return 0;
    }
    gyre_alert_signal_t sg = (gyre_alert_signal_t)si;
    const char *want = NULL;
    switch (sg) {
    case GYRE_SIG_P50_LATENCY:
    case GYRE_SIG_P95_LATENCY:
    case GYRE_SIG_P99_LATENCY:
    case GYRE_SIG_TTFT_P95:
        if (unit == U_S)
            v *= 1000;
        else if (unit != U_NONE && unit != U_MS)
            want = "a latency: write ms or s (5000ms, 5s)";
        break;
    case GYRE_SIG_ERROR_RATE:
    case GYRE_SIG_RATE_LIMITED_RATE:
        if (unit == U_PCT)
            v /= 100;
        else if (unit != U_NONE)
            want = "a share of the calls: write a percentage (5%) or a fraction (0.05)";
        if (want == NULL && v > 1)
            want = "a share of the calls, at most 100% (1.0)";
        break;
    case GYRE_SIG_COST_PER_HOUR:
        if (unit != U_NONE && unit != U_USD)
            want = "USD per hour: write $5 or 5";
        break;
    default:
        if (unit != U_NONE)
            want = sg == GYRE_SIG_REQUEST_RATE ? "requests per second: a plain number"
                   : sg == GYRE_SIG_TOKENS_PER_MINUTE ? "tokens per minute: a plain number"
                   : (sg == GYRE_SIG_TRACE_LOG_LAG || sg == GYRE_SIG_TRACE_SPOOL_BYTES) ? "bytes: a plain number"
                                                                                         : "a count: a plain number";
        break;
    }
    if (want != NULL) {
        ERR(ctx, n, field, "'%.200s': %s is %s", s, sig, want);
        return 0;
    }
    r->signal = sg;
    r->op = op;
    r->threshold = v;
    return 1;
}

static void add_action(parse_ctx_t *ctx, const gyre_config_t *c, yaml_node_t *n, const char *field,
                       gyre_alert_rule_conf_t *r)
{
    const char *s = gyre_cfg_scalar(n);
    if (s == NULL) {
        gyre_cfg_want_type(ctx, n, YAML_SCALAR_NODE, field);
        return;
    }
    gyre_alert_action_kind_t kind = GYRE_ACTION_NOTIFY;
    for (size_t i = 0; i < NBUILTINS; i++)
        if (strcmp(s, builtins[i].name) == 0)
            kind = builtins[i].kind;
    if (kind == GYRE_ACTION_NOTIFY) {
        if (!gyre_cfg_valid_name(s)) {
            ERR(ctx, n, field, "'%.100s' is not a valid name (letters, digits and ._:-)", s);
            return;
        }
        if (!notifier_known(c, s)) {
            ERR(ctx, n, field,
                "unknown action '%.100s': neither a built-in (failover_to_secondary, rotate_key, open_circuit, log) "
                "nor a notifier of notifiers:",
                s);
            return;
        }
    }
    r->actions = gyre_realloc(r->actions, (r->nactions + 1) * sizeof(*r->actions));
    r->actions[r->nactions++] = (gyre_alert_action_conf_t){kind, gyre_strdup(s)};
}

static unsigned action_needs(gyre_alert_action_kind_t kind)
{
    for (size_t i = 0; i < NBUILTINS; i++)
        if (builtins[i].kind == kind)
            return builtins[i].needs;
    return 0;
}

static unsigned dim_bit(parse_ctx_t *ctx, yaml_node_t *d, const char *field)
{
    const char *s = gyre_cfg_scalar(d);
    for (size_t i = 0; s != NULL && i < sizeof(dims) / sizeof(dims[0]); i++)
        if (strcmp(s, dims[i].name) == 0)
            return dims[i].bit;
    ERR(ctx, d, field, "unknown dimension '%.100s' (known: route, provider, key, agent)", s ? s : "?");
    return 0;
}

/* `by: [route, provider]`, or one dimension written alone (`by: provider`). */
static void parse_by(parse_ctx_t *ctx, yaml_node_t *n, const char *field, unsigned *out)
{
    *out = 0;
    if (n->type == YAML_SCALAR_NODE) {
        *out = dim_bit(ctx, n, field);
        return;
    }
    if (!gyre_cfg_want_type(ctx, n, YAML_SEQUENCE_NODE, field))
        return;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++)
        *out |= dim_bit(ctx, yaml_document_get_node(ctx->doc, *it), field);
}

static void parse_rule(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n, size_t idx)
{
    char base[64], field[96];
    gyre_cfg_path_of(base, sizeof(base), "alerts[%zu]", idx);
    if (!gyre_cfg_want_type(ctx, n, YAML_MAPPING_NODE, base))
        return;
    gyre_alert_rule_conf_t *r = &c->alerts[idx];
    r->line = gyre_cfg_line_of(n);
    r->window_us = 60 * 1000000LL;
    r->resolve_for_us = -1;
    r->min_firing_us = 60 * 1000000LL;
    int have_cond = 0, have_by = 0;
    yaml_node_t *by_node = NULL, *action_node = NULL;
    for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = GYRE_CFG_KEY(ctx, pair), *v = GYRE_CFG_VALUE(ctx, pair);
        const char *key = gyre_cfg_scalar(k);
        if (key == NULL) {
            ERR(ctx, k, base, "field names must be scalars");
            continue;
        }
        gyre_cfg_path_of(field, sizeof(field), "%s.%s", base, key);
        int64_t us;
        if (strcmp(key, "name") == 0) {
            if (gyre_cfg_get_string(ctx, v, field, &r->name) && !gyre_cfg_valid_name(r->name))
                ERR(ctx, v, field, "'%.100s' is not a valid name (letters, digits and ._:-)", r->name);
        } else if (strcmp(key, "condition") == 0) {
            have_cond = 1;
            if (parse_condition(ctx, v, field, r)) {
                free(r->condition); /* a second `condition:` replaces the first */
                r->condition = gyre_strdup(gyre_cfg_scalar(v));
            }
        } else if (strcmp(key, "window") == 0) {
            if (gyre_cfg_get_duration(ctx, v, field, &us)) {
                if (us < 1000000 || us > GYRE_ALERTS_MAX_WINDOW_US || us % 1000000 != 0)
                    ERR(ctx, v, field, "a window is whole seconds, from 1s to 24h; found '%s'", gyre_cfg_scalar(v));
                else
                    r->window_us = us;
            }
        } else if (strcmp(key, "for") == 0) {
            if (gyre_cfg_get_duration(ctx, v, field, &us)) {
                if (us > GYRE_ALERTS_MAX_WINDOW_US)
                    ERR(ctx, v, field, "at most 24h; found '%s'", gyre_cfg_scalar(v));
                else
                    r->for_us = us;
            }
        } else if (strcmp(key, "resolve_for") == 0) {
            if (gyre_cfg_get_duration(ctx, v, field, &us)) {
                if (us > GYRE_ALERTS_MAX_WINDOW_US)
                    ERR(ctx, v, field, "at most 24h; found '%s'", gyre_cfg_scalar(v));
                else
                    r->resolve_for_us = us;
            }
        } else if (strcmp(key, "min_firing") == 0) {
            if (gyre_cfg_get_duration(ctx, v, field, &us)) {
                if (us > GYRE_ALERTS_MAX_WINDOW_US)
                    ERR(ctx, v, field, "at most 24h; found '%s'", gyre_cfg_scalar(v));
                else
                    r->min_firing_us = us;
            }
        } else if (strcmp(key, "by") == 0) {
            have_by = 1;
            by_node = v;
            parse_by(ctx, v, field, &r->by);
        } else if (strcmp(key, "severity") == 0) {
            if (gyre_cfg_get_string(ctx, v, field, &r->severity) && !gyre_cfg_valid_name(r->severity))
                ERR(ctx, v, field, "'%.100s' is not a valid severity (critical, warning, info, ...)", r->severity);
        } else if (strcmp(key, "action") == 0) {
            action_node = action_node ? action_node : v;
            add_action(ctx, c, v, field, r);
        } else if (strcmp(key, "actions") == 0) {
            action_node = action_node ? action_node : v;
            if (gyre_cfg_want_type(ctx, v, YAML_SEQUENCE_NODE, field)) {
                size_t i = 0;
                for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++, i++) {
                    char f[128];
                    gyre_cfg_path_of(f, sizeof(f), "%s[%zu]", field, i);
                    add_action(ctx, c, yaml_document_get_node(ctx->doc, *it), f, r);
                }
            }
        } else if (strcmp(key, "digest") == 0) {
            /* The notifier's setting (notifiers:), accepted here for the rules that name it per alert. */
        } else {
            ERR(ctx, k, base,
                "unknown field '%s' (known: name, condition, window, for, resolve_for, min_firing, by, severity, "
                "action, actions)",
                key);
        }
    }
    if (r->name == NULL)
        ERR(ctx, n, base, "needs a 'name'");
    if (!have_cond)
        ERR(ctx, n, base, "needs a 'condition' (for example p95_latency > 5000ms)");
    if (r->severity == NULL)
        r->severity = gyre_strdup("warning");
    if (r->resolve_for_us < 0)
        r->resolve_for_us = r->for_us > 0 ? r->for_us : 30 * 1000000LL;
    unsigned needs = 0;
    for (size_t i = 0; i < r->nactions; i++)
        needs |= action_needs(r->actions[i].kind);
    if (have_cond && r->condition != NULL && signal_is_global(r->signal)) {
        if (have_by && r->by != 0) {
            gyre_cfg_path_of(field, sizeof(field), "%s.by", base);
            ERR(ctx, by_node, field, "%s is the whole gateway's figure: it has no route, provider, key or agent",
                gyre_alert_signal_name(r->signal));
        } else if (needs != 0) {
            gyre_cfg_path_of(field, sizeof(field), "%s.actions", base);
            ERR(ctx, action_node, field,
                "%s is the whole gateway's figure: failover_to_secondary, rotate_key and open_circuit need a "
                "provider to act on",
                gyre_alert_signal_name(r->signal));
        }
        return;
    }
    /* Without `by:`, a rule is grouped by what its actions act on (the ClawPulse shape writes none). */
    if (!have_by) {
        r->by = needs;
    } else {
        for (size_t i = 0; i < r->nactions; i++) {
            unsigned need = action_needs(r->actions[i].kind);
            if ((r->by & need) != need) {
                gyre_cfg_path_of(field, sizeof(field), "%s.by", base);
                ERR(ctx, by_node, field, "%s needs by: to include %s", r->actions[i].name,
                    need == (GYRE_ALERT_BY_PROVIDER | GYRE_ALERT_BY_KEY)     ? "provider and key"
                    : need == (GYRE_ALERT_BY_ROUTE | GYRE_ALERT_BY_PROVIDER) ? "route and provider"
                                                                             : "provider");
            }
        }
    }
}

void gyre_cfg_parse_alerts(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n)
{
    if (!gyre_cfg_want_type(ctx, n, YAML_SEQUENCE_NODE, "alerts"))
        return;
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count > GYRE_ALERTS_MAX_RULES) {
        ERR(ctx, n, "alerts", "%zu rules; at most %d", count, GYRE_ALERTS_MAX_RULES);
        return;
    }
    c->alerts = gyre_calloc(count ? count : 1, sizeof(*c->alerts));
    c->nalerts = count;
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = yaml_document_get_node(ctx->doc, n->data.sequence.items.start[i]);
        parse_rule(ctx, c, item, i);
        for (size_t j = 0; j < i && c->alerts[i].name != NULL; j++)
            if (c->alerts[j].name != NULL && strcmp(c->alerts[j].name, c->alerts[i].name) == 0) {
                char f[64];
                gyre_cfg_path_of(f, sizeof(f), "alerts[%zu].name", i);
                ERR(ctx, item, f, "'%s' is also the name of alerts[%zu]: rule names are unique", c->alerts[i].name, j);
                break;
            }
    }
}

void gyre_config_alerts_free(gyre_config_t *c)
{
    for (size_t i = 0; i < c->nalerts; i++) {
        gyre_alert_rule_conf_t *r = &c->alerts[i];
        free(r->name);
        free(r->condition);
        free(r->severity);
        for (size_t j = 0; j < r->nactions; j++)
            free(r->actions[j].name);
        free(r->actions);
    }
    free(c->alerts);
    c->alerts = NULL;
    c->nalerts = 0;
}
