/*
 * `limits:` limits and budgets per key, team, agent and user (docs/limits.md):
 *
 *   limits:
 *     default: {rpm: 600}                      # every key without a rule of its own
 *     keys:   {svc-a: {rpm: 60, tpm: 100000, concurrency: 4, budget_usd: 10, budget_period: day}}
 *     teams:  {search: {budget_usd: 500, budget_period: month, soft: true, notify: ops}}
 *     agents: {planner: {rpm: 120}}
 *     users:  {"*": {rpm: 30}}                 # each user their own
 *     reservation_ttl: 15m                     # an unsettled reservation is given back after this long
 *     default_max_tokens: 4096                 # the output estimate of a request without max_tokens
 *     notify: ops                              # where budgets' 50/80/100 % notices go unless a rule says
 *
 * Ids are checked as names of the principal (at most GYRE_PRINCIPAL_ID_MAX - 1 bytes, [A-Za-z0-9._:@-] or "*"),
 * so that what the config names is what a request can be.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "config/config_int.h"

#define LIMIT_ID_MAX 63 /* GYRE_PRINCIPAL_ID_MAX - 1: control/principal.h is above config/ */
#define LIMIT_RULES_MAX 10000 /* rules per level: the config is read into memory, the bound says how much */

static const char *const level_fields[GYRE_LIMIT_CONF_LEVELS] = {"keys", "teams", "agents", "users"};

static int valid_id(const char *s)
{
    if (strcmp(s, "*") == 0)
        return 1;
    size_t n = strlen(s);
    if (n == 0 || n > LIMIT_ID_MAX)
        return 0;
    for (const char *p = s; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("._:@-[]", *p) != NULL))
            return 0;
    return 1;
}

static int get_budget(parse_ctx_t *ctx, yaml_node_t *n, const char *field, double *out)
{
    if (!gyre_cfg_want_type(ctx, n, YAML_SCALAR_NODE, field))
        return 0;
    const char *s = gyre_cfg_scalar(n);
    const char *digits = s[0] == '$' ? s + 1 : s; /* "$10" reads as it is written */
    char *end;
    errno = 0;
    double v = strtod(digits, &end);
    if (digits[0] == '\0' || *end != '\0' || errno != 0 || !(v >= 0) || v > 1e9) {
        ERR(ctx, n, field, "expected an amount in USD >= 0 (for example 10 or 2.50), found '%s'", s);
        return 0;
    }
    *out = v;
    return 1;
}

/* One rule, {rpm, tpm, concurrency, budget_usd, budget_period, soft, notify}. */
static void parse_rule(parse_ctx_t *ctx, yaml_node_t *n, const char *field, gyre_limit_conf_t *r)
{
    r->budget_usd = -1;
    r->line = gyre_cfg_line_of(n);
    if (!gyre_cfg_want_type(ctx, n, YAML_MAPPING_NODE, field))
        return;
    yaml_node_t *period = NULL, *soft = NULL, *budget = NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = GYRE_CFG_KEY(ctx, p), *v = GYRE_CFG_VALUE(ctx, p);
        const char *key = gyre_cfg_scalar(k) != NULL ? gyre_cfg_scalar(k) : "?";
        char sub[256];
        gyre_cfg_path_of(sub, sizeof(sub), "%s.%s", field, key);
        unsigned long long u;
        if (strcmp(key, "rpm") == 0) {
            if (gyre_cfg_get_uint(ctx, v, sub, 1, 100000000, &u))
                r->rpm = (uint32_t)u;
        } else if (strcmp(key, "tpm") == 0) {
            if (gyre_cfg_get_uint(ctx, v, sub, 1, 4000000000ULL, &u))
                r->tpm = (uint32_t)u;
        } else if (strcmp(key, "concurrency") == 0) {
            if (gyre_cfg_get_uint(ctx, v, sub, 1, 1000000, &u))
                r->concurrency = (uint32_t)u;
        } else if (strcmp(key, "budget_usd") == 0) {
            get_budget(ctx, v, sub, &r->budget_usd);
            budget = v;
        } else if (strcmp(key, "budget_period") == 0) {
            static const char *const periods[] = {"day", "week", "month", NULL};
            int i = gyre_cfg_get_choice(ctx, v, sub, periods);
            if (i >= 0)
                r->budget_period = i + 1;
            period = v;
        } else if (strcmp(key, "soft") == 0) {
            gyre_cfg_get_bool(ctx, v, sub, &r->soft);
            soft = v;
        } else if (strcmp(key, "notify") == 0) {
            if (gyre_cfg_get_string(ctx, v, sub, &r->notify) && !gyre_cfg_valid_name(r->notify))
                ERR(ctx, v, sub, "'%s' is not a notifier name ([A-Za-z0-9._:-]+)", r->notify);
        } else {
            ERR(ctx, k, field,
                "unknown field '%s' (known: rpm, tpm, concurrency, budget_usd, budget_period, soft, notify)", key);
        }
    }
    if (r->budget_usd >= 0 && r->budget_period == 0 && period == NULL)
        ERR(ctx, n, field, "budget_usd needs a budget_period (day, week or month; UTC calendar periods)");
    if (budget == NULL && period != NULL)
        ERR(ctx, period, field, "budget_period without a budget_usd");
    if (budget == NULL && soft != NULL)
        ERR(ctx, soft, field, "soft applies to a budget: this rule has no budget_usd");
}

/* keys: {ID: RULE, ...} (one level). */
static void parse_level(parse_ctx_t *ctx, yaml_node_t *n, size_t level, gyre_limits_conf_t *l)
{
    char field[128];
    gyre_cfg_path_of(field, sizeof(field), "limits.%s", level_fields[level]);
    if (!gyre_cfg_want_type(ctx, n, YAML_MAPPING_NODE, field))
        return;
    size_t count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    if (count > LIMIT_RULES_MAX) {
        ERR(ctx, n, field, "has %zu rules; at most %d", count, LIMIT_RULES_MAX);
        return;
    }
    size_t base = l->nrules[level];
    l->rules[level] = gyre_realloc(l->rules[level], (base + count + 1) * sizeof(gyre_limit_conf_t));
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = GYRE_CFG_KEY(ctx, p), *v = GYRE_CFG_VALUE(ctx, p);
        const char *id = gyre_cfg_scalar(k);
        char sub[256];
        if (id == NULL || !valid_id(id)) {
            ERR(ctx, k, field, "'%.80s' is not an id: 1 to %d of [A-Za-z0-9._:@-], or \"*\" for every id", id ? id : "?",
                LIMIT_ID_MAX);
            continue;
        }
        gyre_cfg_path_of(sub, sizeof(sub), "%s.%s", field, id);
        int dup = 0;
        for (size_t i = 0; i < l->nrules[level]; i++)
            dup |= strcmp(l->rules[level][i].id, id) == 0;
        if (dup) {
            ERR(ctx, k, sub, "is given twice%s", level == 0 && strcmp(id, "*") == 0 ? " (limits.default is keys.\"*\")" : "");
            continue;
        }
        gyre_limit_conf_t *r = &l->rules[level][l->nrules[level]++];
        memset(r, 0, sizeof(*r));
        r->id = gyre_strdup(id);
        parse_rule(ctx, v, sub, r);
    }
}

void gyre_cfg_parse_limits(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n)
{
    gyre_limits_conf_t *l = &c->limits;
    if (l->present) {
        ERR(ctx, n, "limits", "is given twice");
        return;
    }
    l->present = 1;
    l->reservation_ttl_ms = GYRE_DEFAULT_RESERVATION_TTL_MS;
    l->default_max_tokens = GYRE_DEFAULT_MAX_TOKENS;
    if (!gyre_cfg_want_type(ctx, n, YAML_MAPPING_NODE, "limits"))
        return;
    yaml_node_t *def = NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = GYRE_CFG_KEY(ctx, p), *v = GYRE_CFG_VALUE(ctx, p);
        const char *key = gyre_cfg_scalar(k) != NULL ? gyre_cfg_scalar(k) : "?";
        unsigned long long u;
        int64_t us;
        int level = -1;
        for (int i = 0; i < GYRE_LIMIT_CONF_LEVELS; i++)
            if (strcmp(key, level_fields[i]) == 0)
                level = i;
        if (level >= 0) {
            parse_level(ctx, v, (size_t)level, l);
        } else if (strcmp(key, "default") == 0) {
            def = v;
        } else if (strcmp(key, "reservation_ttl") == 0) {
            /* At least a second (the buckets that expire reservations are an eighth of it wide), at most a day. */
            if (gyre_cfg_get_duration(ctx, v, "limits.reservation_ttl", &us)) {
                if (us < 1000000 || us > 86400LL * 1000000)
                    ERR(ctx, v, "limits.reservation_ttl", "must be between 1s and 24h");
                else
                    l->reservation_ttl_ms = (uint64_t)us / 1000;
            }
        } else if (strcmp(key, "default_max_tokens") == 0) {
            if (gyre_cfg_get_uint(ctx, v, "limits.default_max_tokens", 1, 10000000, &u))
                l->default_max_tokens = (unsigned)u;
        } else if (strcmp(key, "notify") == 0) {
            if (gyre_cfg_get_string(ctx, v, "limits.notify", &l->notify) && !gyre_cfg_valid_name(l->notify))
                ERR(ctx, v, "limits.notify", "'%s' is not a notifier name ([A-Za-z0-9._:-]+)", l->notify);
        } else {
            ERR(ctx, k, "limits",
                "unknown field '%s' (known: default, keys, teams, agents, users, reservation_ttl, default_max_tokens, "
                "notify)",
                key);
        }
    }
    /* `default:` is the key level's "*", after the keys' own rules so that naming both is caught as a twice. */
    if (def != NULL) {
        size_t i = l->nrules[0];
        for (size_t j = 0; j < i; j++)
            if (strcmp(l->rules[0][j].id, "*") == 0) {
                ERR(ctx, def, "limits.default", "is given twice (limits.keys has \"*\" too)");
                return;
            }
        l->rules[0] = gyre_realloc(l->rules[0], (i + 1) * sizeof(gyre_limit_conf_t));
        gyre_limit_conf_t *r = &l->rules[0][l->nrules[0]++];
        memset(r, 0, sizeof(*r));
        r->id = gyre_strdup("*");
        parse_rule(ctx, def, "limits.default", r);
    }
}

void gyre_cfg_free_limits(gyre_limits_conf_t *l)
{
    for (int i = 0; i < GYRE_LIMIT_CONF_LEVELS; i++) {
        for (size_t j = 0; j < l->nrules[i]; j++) {
            free(l->rules[i][j].id);
            free(l->rules[i][j].notify);
        }
        free(l->rules[i]);
    }
    free(l->notify);
    memset(l, 0, sizeof(*l));
}
