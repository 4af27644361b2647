/*
 * `scorers:` (issue 14): the checks that grade calls, each named, of one kind (`type:`), with the fields of its
 * kind; and a route's `guardrails:`, which run heuristic scorers in-line (docs/guardrails.md):
 *
 *   scorers:
 *     - {name: no_ssn, type: regex, must_not: ['[0-9]{3}-[0-9]{2}-[0-9]{4}']}
 *     - {name: shape, type: json_schema, schema: {type: object, required: [answer]}}
 *     - {name: correct, type: judge, route: judge, rubric: correctness, sample: 0.1}
 *   routes:
 *     - name: chat
 *       guardrails:
 *         - {check: no_ssn, on: request, action: deny}
 *
 * A field that does not belong to the scorer's type is an error naming it (so a `schema:` under `type: regex`
 * is not silently ignored); a pattern that does not compile (POSIX extended, as the check runs it) and a schema
 * that is not JSON are errors naming the field at its line.  The schema's keywords are checked where the check
 * is compiled (src/loop/jsonschema.c), at start.  Scorers are parsed before routes (a guardrail names one);
 * the routes a scorer names are checked after them.
 */
#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/json.h"
#include "config/config_int.h"

/* The most scorers, patterns or terms one list may hold: a config is written by people. */
#define MAX_SCORERS 256
#define MAX_LIST 256
/* A schema, as JSON: a tool schema is a few KB. */
#define MAX_SCHEMA_BYTES ((size_t)256 * 1024)

static const char *const kind_names[] = {"json_valid", "json_schema", "regex",    "refusal",  "tool_args",
                                         "length",     "latency",     "cost",     "toxicity", "judge", NULL};
static const char *const rubrics[] = {"correctness", "instruction_following", "grounding", "toxicity",
                                      "tool_use",    "custom",                NULL};

#define K(kind) (1u << (kind))
#define ALL_KINDS 0xFFFFu

/* Every field of a scorer and the kinds it belongs to: one table for the parser and its "known:" list. */
static const struct {
    const char *name;
    unsigned kinds;
} fields[] = {
    {"name", ALL_KINDS},
    {"type", ALL_KINDS},
    {"version", ALL_KINDS},
    {"sample", ALL_KINDS},
    {"routes", ALL_KINDS},
    {"agents", ALL_KINDS},
    {"schema", K(GYRE_SCORER_JSON_SCHEMA)},
    {"must", K(GYRE_SCORER_REGEX)},
    {"must_not", K(GYRE_SCORER_REGEX)},
    {"terms", K(GYRE_SCORER_REFUSAL) | K(GYRE_SCORER_TOXICITY)},
    {"min_chars", K(GYRE_SCORER_LENGTH)},
    {"max_chars", K(GYRE_SCORER_LENGTH)},
    {"max_latency", K(GYRE_SCORER_LATENCY)},
    {"max_cost", K(GYRE_SCORER_COST)},
    {"route", K(GYRE_SCORER_JUDGE)},
    {"rubric", K(GYRE_SCORER_JUDGE)},
    {"prompt", K(GYRE_SCORER_JUDGE)},
    {"concurrency", K(GYRE_SCORER_JUDGE)},
    {"retries", K(GYRE_SCORER_JUDGE)},
    {"timeout", K(GYRE_SCORER_JUDGE)},
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static const char KNOWN[] = "name, type, version, sample, routes, agents, schema, must, must_not, terms, min_chars, "
                            "max_chars, max_latency, max_cost, route, rubric, prompt, concurrency, retries, timeout";

/* A list of strings (or one string, as a list of one) into *out. */
static void get_strings(parse_ctx_t *ctx, yaml_node_t *v, const char *field, char ***out, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free((*out)[i]);
    free(*out);
    *out = NULL;
    *n = 0;
    if (v->type == YAML_SCALAR_NODE) {
        *out = gyre_calloc(1, sizeof(**out));
        if (gyre_cfg_get_string(ctx, v, field, &(*out)[0]))
            *n = 1;
        return;
    }
    if (!gyre_cfg_want_type(ctx, v, YAML_SEQUENCE_NODE, field))
        return;
    size_t count = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (count > MAX_LIST) {
        ERR(ctx, v, field, "has %zu entries; at most %d", count, MAX_LIST);
        return;
    }
    *out = gyre_calloc(count + 1, sizeof(**out));
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *e = yaml_document_get_node(ctx->doc, v->data.sequence.items.start[i]);
        char sub[160];
        gyre_cfg_path_of(sub, sizeof(sub), "%s[%zu]", field, i);
        if (gyre_cfg_get_string(ctx, e, sub, &(*out)[*n]))
            (*n)++;
    }
}

/* Each pattern compiles as the regex check will compile it. */
static void check_patterns(parse_ctx_t *ctx, yaml_node_t *v, const char *field, char **pats, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        regex_t re;
        int rc = regcomp(&re, pats[i], REG_EXTENDED | REG_NOSUB);
        yaml_node_t *at = v->type == YAML_SEQUENCE_NODE && i < (size_t)(v->data.sequence.items.top - v->data.sequence.items.start)
                              ? yaml_document_get_node(ctx->doc, v->data.sequence.items.start[i])
                              : v;
        char sub[160];
        gyre_cfg_path_of(sub, sizeof(sub), "%s[%zu]", field, i);
        if (rc != 0) {
            char msg[128];
            regerror(rc, &re, msg, sizeof(msg));
            ERR(ctx, at, sub, "'%.100s' is not a POSIX extended regular expression: %s", pats[i], msg);
        } else {
            regfree(&re);
        }
    }
}

/* A YAML value as JSON text: plain scalars that are JSON numbers, true, false or null stay so; others are strings. */
static int yaml_to_json(parse_ctx_t *ctx, yaml_node_t *n, gyre_buf_t *out, unsigned depth)
{
    if (n == NULL || depth > 64)
        return -1;
    switch (n->type) {
    case YAML_SCALAR_NODE: {
        const char *s = gyre_cfg_scalar(n);
        size_t len = strlen(s);
        if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
            if (strcmp(s, "~") == 0 || strcmp(s, "null") == 0)
                return gyre_buf_appends(out, "null");
            if (len != 0 && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9') || strcmp(s, "true") == 0 ||
                             strcmp(s, "false") == 0) &&
                gyre_json_valid(s, len))
                return gyre_buf_append(out, s, len);
        }
        return gyre_buf_append_json_string(out, s, len);
    }
    case YAML_SEQUENCE_NODE:
        gyre_buf_appends(out, "[");
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
            if (it != n->data.sequence.items.start)
                gyre_buf_appends(out, ",");
            if (yaml_to_json(ctx, yaml_document_get_node(ctx->doc, *it), out, depth + 1) != 0)
                return -1;
        }
        return gyre_buf_appends(out, "]");
    case YAML_MAPPING_NODE:
        gyre_buf_appends(out, "{");
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
            const char *k = gyre_cfg_scalar(GYRE_CFG_KEY(ctx, p));
            if (k == NULL)
                return -1;
            if (p != n->data.mapping.pairs.start)
                gyre_buf_appends(out, ",");
            gyre_buf_append_json_string(out, k, strlen(k));
            gyre_buf_appends(out, ":");
            if (yaml_to_json(ctx, GYRE_CFG_VALUE(ctx, p), out, depth + 1) != 0)
                return -1;
        }
        return gyre_buf_appends(out, "}");
    default: return -1;
    }
}

/* `schema:` a mapping (YAML) or a string of JSON; kept as compact JSON. */
static void get_schema(parse_ctx_t *ctx, yaml_node_t *v, const char *field, gyre_scorer_conf_t *s)
{
    free(s->schema_json);
    s->schema_json = NULL;
    gyre_buf_t json;
    gyre_buf_init(&json, MAX_SCHEMA_BYTES);
    int ok;
    if (v->type == YAML_SCALAR_NODE) {
        const char *t = gyre_cfg_scalar(v);
        ok = gyre_json_valid(t, strlen(t)) && gyre_buf_appends(&json, t) == 0;
    } else {
        ok = v->type == YAML_MAPPING_NODE && yaml_to_json(ctx, v, &json, 0) == 0 && !gyre_buf_failed(&json);
    }
    size_t i = 0;
    while (ok && i < json.len && (json.base[i] == ' ' || json.base[i] == '\n' || json.base[i] == '\t' || json.base[i] == '\r'))
        i++;
    if (!ok)
        ERR(ctx, v, field, "is not JSON (write a mapping, or a JSON object as a string, of at most %zu bytes)",
            MAX_SCHEMA_BYTES);
    else if (i == json.len || (json.base[i] != '{' && strncmp(json.base + i, "true", 4) != 0 &&
                               strncmp(json.base + i, "false", 5) != 0))
        ERR(ctx, v, field, "is not a JSON schema (an object, or true or false)");
    else
        s->schema_json = gyre_strndup(json.base, json.len);
    gyre_buf_dispose(&json);
}

static int get_number(parse_ctx_t *ctx, yaml_node_t *v, const char *field, double min, double max, double *out)
{
    if (!gyre_cfg_want_type(ctx, v, YAML_SCALAR_NODE, field))
        return 0;
    const char *s = gyre_cfg_scalar(v);
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (s[0] == '\0' || *end != '\0' || errno != 0 || !(d >= min) || !(d <= max)) {
        ERR(ctx, v, field, "expected a number from %g to %g, found '%s'", min, max, s);
        return 0;
    }
    *out = d;
    return 1;
}

static void parse_scorer(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n, size_t si)
{
    char field[160];
    gyre_scorer_conf_t *s = &c->scorers[si];
    memset(s, 0, sizeof(*s));
    s->line = gyre_cfg_line_of(n);
    s->concurrency = 4;
    s->retries = 2;
    s->timeout_ms = 60000;
    if (!gyre_cfg_want_type(ctx, n, YAML_MAPPING_NODE, gyre_cfg_path_of(field, sizeof(field), "scorers[%zu]", si)))
        return;
    /* The type first: it says which fields belong. */
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const char *key = gyre_cfg_scalar(GYRE_CFG_KEY(ctx, p));
        if (key != NULL && strcmp(key, "type") == 0) {
            int k = gyre_cfg_get_choice(ctx, GYRE_CFG_VALUE(ctx, p),
                                        gyre_cfg_path_of(field, sizeof(field), "scorers[%zu].type", si), kind_names);
            if (k >= 0)
                s->kind = (gyre_scorer_kind_t)(k + 1);
        }
    }
    yaml_node_t *must = NULL, *must_not = NULL;
    int have_type = 0, have_schema = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = GYRE_CFG_KEY(ctx, p), *v = GYRE_CFG_VALUE(ctx, p);
        const char *key = gyre_cfg_scalar(k) ? gyre_cfg_scalar(k) : "?";
        gyre_cfg_path_of(field, sizeof(field), "scorers[%zu].%s", si, key);
        size_t fi = 0;
        while (fi < NFIELDS && strcmp(fields[fi].name, key) != 0)
            fi++;
        if (fi == NFIELDS) {
            ERR(ctx, k, gyre_cfg_path_of(field, sizeof(field), "scorers[%zu]", si), "unknown field '%s' (known: %s)",
                key, KNOWN);
            continue;
        }
        if (s->kind != 0 && !(fields[fi].kinds & K(s->kind))) {
            ERR(ctx, k, field, "does not apply to type %s", kind_names[s->kind - 1]);
            continue;
        }
        unsigned long long u;
        int64_t us;
        double d;
        if (strcmp(key, "type") == 0) {
            have_type = 1; /* read above */
        } else if (strcmp(key, "name") == 0) {
            if (gyre_cfg_get_string(ctx, v, field, &s->name) && !gyre_cfg_valid_name(s->name))
                ERR(ctx, v, field, "'%s' is not a valid scorer name (letters, digits, '-', '_', '.', ':')", s->name);
        } else if (strcmp(key, "version") == 0) {
            free(s->version);
            s->version = NULL;
            gyre_cfg_get_string(ctx, v, field, &s->version);
        } else if (strcmp(key, "sample") == 0) {
            if (get_number(ctx, v, field, 0, 1, &d))
                s->sample = d;
        } else if (strcmp(key, "routes") == 0) {
            get_strings(ctx, v, field, &s->routes, &s->nroutes);
        } else if (strcmp(key, "agents") == 0) {
            get_strings(ctx, v, field, &s->agents, &s->nagents);
        } else if (strcmp(key, "schema") == 0) {
            get_schema(ctx, v, field, s);
            have_schema = 1;
        } else if (strcmp(key, "must") == 0) {
            get_strings(ctx, v, field, &s->must, &s->nmust);
            check_patterns(ctx, v, field, s->must, s->nmust);
            must = v;
        } else if (strcmp(key, "must_not") == 0) {
            get_strings(ctx, v, field, &s->must_not, &s->nmust_not);
            check_patterns(ctx, v, field, s->must_not, s->nmust_not);
            must_not = v;
        } else if (strcmp(key, "terms") == 0) {
            get_strings(ctx, v, field, &s->terms, &s->nterms);
            for (size_t i = 0; i < s->nterms; i++)
                if (s->terms[i][0] == '\0' || strlen(s->terms[i]) > 200)
                    ERR(ctx, v, field, "terms[%zu] is empty or longer than 200 bytes", i);
        } else if (strcmp(key, "min_chars") == 0) {
            if (gyre_cfg_get_uint(ctx, v, field, 0, 1ull << 32, &u))
                s->min_chars = (size_t)u;
        } else if (strcmp(key, "max_chars") == 0) {
            if (gyre_cfg_get_uint(ctx, v, field, 1, 1ull << 32, &u))
                s->max_chars = (size_t)u;
        } else if (strcmp(key, "max_latency") == 0) {
            if (gyre_cfg_get_duration(ctx, v, field, &us)) {
                if (us < 1000)
                    ERR(ctx, v, field, "must be at least 1ms");
                else
                    s->max_latency_ms = (uint64_t)us / 1000;
            }
        } else if (strcmp(key, "max_cost") == 0) {
            if (get_number(ctx, v, field, 0, 1e6, &d))
                s->max_cost_usd = d;
        } else if (strcmp(key, "route") == 0) {
            gyre_cfg_get_string(ctx, v, field, &s->judge_route);
        } else if (strcmp(key, "rubric") == 0) {
            int r = gyre_cfg_get_choice(ctx, v, field, rubrics);
            if (r >= 0)
                s->rubric = gyre_strdup(rubrics[r]);
        } else if (strcmp(key, "prompt") == 0) {
            gyre_cfg_get_string(ctx, v, field, &s->prompt);
        } else if (strcmp(key, "concurrency") == 0) {
            if (gyre_cfg_get_uint(ctx, v, field, 1, 256, &u))
                s->concurrency = (unsigned)u;
        } else if (strcmp(key, "retries") == 0) {
            if (gyre_cfg_get_uint(ctx, v, field, 0, 10, &u))
                s->retries = (unsigned)u;
        } else if (strcmp(key, "timeout") == 0) {
            if (gyre_cfg_get_duration(ctx, v, field, &us)) {
                if (us < 1000 || us > 3600000000LL)
                    ERR(ctx, v, field, "must be between 1ms and 1h");
                else
                    s->timeout_ms = (uint64_t)us / 1000;
            }
        }
    }
    char base[64];
    gyre_cfg_path_of(base, sizeof(base), "scorers[%zu]", si);
    if (s->name == NULL)
        ERR(ctx, n, gyre_cfg_path_of(field, sizeof(field), "%s.name", base), "is required");
    if (!have_type)
        ERR(ctx, n, gyre_cfg_path_of(field, sizeof(field), "%s.type", base),
            "is required (supported: json_valid, json_schema, regex, refusal, tool_args, length, latency, cost, "
            "toxicity, judge)");
    for (size_t j = 0; s->name != NULL && j < si; j++)
        if (c->scorers[j].name != NULL && strcmp(c->scorers[j].name, s->name) == 0)
            ERR(ctx, n, gyre_cfg_path_of(field, sizeof(field), "%s.name", base), "'%s' is already used by scorers[%zu]",
                s->name, j);
    if (s->version == NULL)
        s->version = gyre_strdup("1");
    switch (s->kind) {
    case GYRE_SCORER_JSON_SCHEMA:
        if (!have_schema)
            ERR(ctx, n, gyre_cfg_path_of(field, sizeof(field), "%s.schema", base), "is required for type json_schema");
        break;
    case GYRE_SCORER_REGEX:
        if (must == NULL && must_not == NULL)
            ERR(ctx, n, base, "type regex needs must, must_not or both");
        break;
    case GYRE_SCORER_LENGTH:
        if (s->max_chars != 0 && s->min_chars > s->max_chars)
            ERR(ctx, n, base, "min_chars (%zu) is above max_chars (%zu)", s->min_chars, s->max_chars);
        else if (s->max_chars == 0 && s->min_chars == 0)
            ERR(ctx, n, base, "type length needs min_chars, max_chars or both");
        break;
    case GYRE_SCORER_LATENCY:
        if (s->max_latency_ms == 0)
            ERR(ctx, n, gyre_cfg_path_of(field, sizeof(field), "%s.max_latency", base), "is required for type latency");
        break;
    case GYRE_SCORER_COST: {
        int have = 0;
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
            const char *key = gyre_cfg_scalar(GYRE_CFG_KEY(ctx, p));
            have |= key != NULL && strcmp(key, "max_cost") == 0;
        }
        if (!have)
            ERR(ctx, n, gyre_cfg_path_of(field, sizeof(field), "%s.max_cost", base), "is required for type cost");
        break;
    }
    case GYRE_SCORER_JUDGE:
        if (s->judge_route == NULL)
            ERR(ctx, n, gyre_cfg_path_of(field, sizeof(field), "%s.route", base), "is required for type judge");
        if (s->rubric == NULL)
            ERR(ctx, n, gyre_cfg_path_of(field, sizeof(field), "%s.rubric", base),
                "is required for type judge (supported: correctness, instruction_following, grounding, toxicity, "
                "tool_use, custom)");
        else if (strcmp(s->rubric, "custom") == 0 && s->prompt == NULL)
            ERR(ctx, n, gyre_cfg_path_of(field, sizeof(field), "%s.prompt", base), "is required for rubric custom");
        else if (strcmp(s->rubric, "custom") != 0 && s->prompt != NULL)
            ERR(ctx, n, gyre_cfg_path_of(field, sizeof(field), "%s.prompt", base),
                "applies to rubric custom only (rubric %s has its own template)", s->rubric);
        break;
    default: break;
    }
}

void gyre_cfg_parse_scorers(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n)
{
    if (!gyre_cfg_want_type(ctx, n, YAML_SEQUENCE_NODE, "scorers"))
        return;
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count > MAX_SCORERS) {
        ERR(ctx, n, "scorers", "has %zu entries; at most %d", count, MAX_SCORERS);
        return;
    }
    c->scorers = gyre_calloc(count ? count : 1, sizeof(*c->scorers));
    c->nscorers = count;
    for (size_t i = 0; i < count; i++)
        parse_scorer(ctx, c, yaml_document_get_node(ctx->doc, n->data.sequence.items.start[i]), i);
}

void gyre_cfg_check_scorers(parse_ctx_t *ctx, gyre_config_t *c)
{
    for (size_t i = 0; i < c->nscorers; i++) {
        const gyre_scorer_conf_t *s = &c->scorers[i];
        char field[96];
        for (size_t j = 0; j < s->nroutes; j++)
            if (gyre_config_find_route(c, s->routes[j], strlen(s->routes[j])) == NULL)
                gyre_cfg_add_error(ctx->errs, ctx->source, s->line,
                                   gyre_cfg_path_of(field, sizeof(field), "scorers[%zu].routes[%zu]", i, j),
                                   "no route is named '%s'", s->routes[j]);
        if (s->judge_route != NULL && gyre_config_find_route(c, s->judge_route, strlen(s->judge_route)) == NULL)
            gyre_cfg_add_error(ctx->errs, ctx->source, s->line,
                               gyre_cfg_path_of(field, sizeof(field), "scorers[%zu].route", i), "no route is named '%s'",
                               s->judge_route);
    }
}

void gyre_cfg_parse_guardrails(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n, gyre_route_conf_t *r, size_t ri)
{
    static const char *const ons[] = {"request", "response", NULL};
    static const char *const actions[] = {"deny", "retry", "flag", NULL};
    char field[160];
    if (!gyre_cfg_want_type(ctx, n, YAML_SEQUENCE_NODE, gyre_cfg_path_of(field, sizeof(field), "routes[%zu].guardrails", ri)))
        return;
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count > MAX_LIST) {
        ERR(ctx, n, field, "has %zu entries; at most %d", count, MAX_LIST);
        return;
    }
    free(r->guardrails);
    r->guardrails = gyre_calloc(count ? count : 1, sizeof(*r->guardrails));
    r->nguardrails = 0;
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *e = yaml_document_get_node(ctx->doc, n->data.sequence.items.start[i]);
        char base[96];
        gyre_cfg_path_of(base, sizeof(base), "routes[%zu].guardrails[%zu]", ri, i);
        if (!gyre_cfg_want_type(ctx, e, YAML_MAPPING_NODE, base))
            continue;
        gyre_guardrail_conf_t g = {.scorer = SIZE_MAX, .on_request = 0, .action = 0, .line = gyre_cfg_line_of(e)};
        yaml_node_t *action_node = NULL;
        int bad = 0;
        for (yaml_node_pair_t *p = e->data.mapping.pairs.start; p < e->data.mapping.pairs.top; p++) {
            yaml_node_t *k = GYRE_CFG_KEY(ctx, p), *v = GYRE_CFG_VALUE(ctx, p);
            const char *key = gyre_cfg_scalar(k) ? gyre_cfg_scalar(k) : "?";
            gyre_cfg_path_of(field, sizeof(field), "%s.%s", base, key);
            int ch;
            if (strcmp(key, "check") == 0) {
                if (!gyre_cfg_want_type(ctx, v, YAML_SCALAR_NODE, field)) {
                    bad = 1;
                    continue;
                }
                const char *name = gyre_cfg_scalar(v);
                for (size_t j = 0; j < c->nscorers; j++)
                    if (c->scorers[j].name != NULL && strcmp(c->scorers[j].name, name) == 0)
                        g.scorer = j;
                if (g.scorer == SIZE_MAX) {
                    ERR(ctx, v, field, "no scorer is named '%s'", name);
                    bad = 1;
                } else if (c->scorers[g.scorer].kind == GYRE_SCORER_JUDGE) {
                    ERR(ctx, v, field, "'%s' is a judge; a guardrail runs heuristic scorers only", name);
                    bad = 1;
                }
            } else if (strcmp(key, "on") == 0) {
                if ((ch = gyre_cfg_get_choice(ctx, v, field, ons)) >= 0)
                    g.on_request = ch == 0;
                else
                    bad = 1;
            } else if (strcmp(key, "action") == 0) {
                action_node = v;
                if ((ch = gyre_cfg_get_choice(ctx, v, field, actions)) >= 0)
                    g.action = (gyre_guard_action_t)(ch + 1);
                else
                    bad = 1;
            } else {
                ERR(ctx, k, base, "unknown field '%s' (known: check, on, action)", key);
                bad = 1;
            }
        }
        if (g.scorer == SIZE_MAX && !bad) {
            ERR(ctx, e, gyre_cfg_path_of(field, sizeof(field), "%s.check", base), "is required (a scorer's name)");
            bad = 1;
        }
        if (g.action == 0 && !bad) {
            ERR(ctx, e, gyre_cfg_path_of(field, sizeof(field), "%s.action", base), "is required (deny, retry or flag)");
            bad = 1;
        }
        if (!bad && g.on_request && g.action == GYRE_GUARD_RETRY) {
            ERR(ctx, action_node, gyre_cfg_path_of(field, sizeof(field), "%s.action", base),
                "retry applies on: response only (a request that fails has no other target to try)");
            bad = 1;
        }
        if (!bad)
            r->guardrails[r->nguardrails++] = g;
    }
}

void gyre_cfg_free_scorers(gyre_config_t *c)
{
    for (size_t i = 0; i < c->nscorers; i++) {
        gyre_scorer_conf_t *s = &c->scorers[i];
        char **lists[] = {s->routes, s->agents, s->must, s->must_not, s->terms};
        size_t counts[] = {s->nroutes, s->nagents, s->nmust, s->nmust_not, s->nterms};
        for (size_t l = 0; l < 5; l++) {
            for (size_t j = 0; j < counts[l]; j++)
                free(lists[l][j]);
            free(lists[l]);
        }
        free(s->name);
        free(s->version);
        free(s->schema_json);
        free(s->judge_route);
        free(s->rubric);
        free(s->prompt);
    }
    free(c->scorers);
    c->scorers = NULL;
    c->nscorers = 0;
}
