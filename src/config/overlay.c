/*
 * Route overlays: routes changed through the admin API (PUT / PATCH
 * /api/admin/routes/NAME), kept in the control-plane database as JSON in the
 * shape of a YAML route entry, and laid over the file's routes whenever a
 * configuration is built (at start, on SIGHUP, on each change).  JSON is
 * YAML, so an overlay is read by the file's own route parser, with the same
 * checks and the same messages; its errors name the overlay ("route overlay
 * 'chat'") where a file's name its file.
 *
 * The reverse, a route as JSON, is what GET /api/admin/routes shows and what
 * a PATCH starts from: every field the parser reads, so that what is written
 * back reads as the same route.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "config/config_int.h"
#include "config/overlay.h"
#include "config/redact_kinds.h"

static void route_dispose(gyre_route_conf_t *r)
{
    for (size_t j = 0; j < r->ntargets; j++)
        free(r->targets[j].model);
    free(r->targets);
    for (size_t j = 0; j < r->nfallbacks; j++)
        free(r->fallbacks[j].model);
    free(r->fallbacks);
    free(r->name);
    free(r->guardrails);
    memset(r, 0, sizeof(*r));
}

/* One overlay, parsed on its own against c's providers, then put in place of the route of its name or added. */
static int apply_one(gyre_config_t *c, const char *name, const char *json, gyre_config_errors_t *errs)
{
    char source[160];
    snprintf(source, sizeof(source), "route overlay '%.64s'", name);
    size_t before = errs->count;
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)json, strlen(json));
    if (!yaml_parser_load(&parser, &doc)) {
        gyre_cfg_add_error(errs, source, (int)parser.problem_mark.line + 1, NULL, "invalid JSON: %s",
                           parser.problem ? parser.problem : "syntax error");
        yaml_parser_delete(&parser);
        return -EINVAL;
    }
    parse_ctx_t ctx = {source, &doc, errs, 0}; /* routes hold no secret: nothing to leave unresolved */
    /* A scratch configuration that shares c's providers (targets name them) and has one route slot, so that the
     * parser's check for a name used twice sees no other route. */
    gyre_config_t scratch;
    memset(&scratch, 0, sizeof(scratch));
    scratch.providers = c->providers;
    scratch.nproviders = c->nproviders;
    scratch.redact = c->redact;
    scratch.scorers = c->scorers; /* guardrails name them */
    scratch.nscorers = c->nscorers;
    gyre_route_conf_t r;
    memset(&r, 0, sizeof(r));
    scratch.routes = &r;
    scratch.nroutes = 1;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root == NULL)
        gyre_cfg_add_error(errs, source, 0, NULL, "is empty");
    else
        gyre_cfg_parse_route(&ctx, &scratch, root, 0);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (errs->count == before && (r.name == NULL || strcmp(r.name, name) != 0))
        gyre_cfg_add_error(errs, source, 0, "name", "'%s' is not the overlay's route (%s)", r.name ? r.name : "",
                           name);
    if (errs->count != before) {
        route_dispose(&r);
        return -EINVAL;
    }
    for (size_t i = 0; i < c->nroutes; i++)
        if (strcmp(c->routes[i].name, name) == 0) {
            r.line = 0; /* not a line of the file */
            route_dispose(&c->routes[i]);
            c->routes[i] = r;
            return 0;
        }
    c->routes = gyre_realloc(c->routes, (c->nroutes + 1) * sizeof(*c->routes));
    r.line = 0;
    c->routes[c->nroutes++] = r;
    return 0;
}

int gyre_config_apply_routes(gyre_config_t *c, const char *const *names, const char *const *route_json, size_t n,
                             gyre_config_errors_t *errs)
{
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        if (apply_one(c, names[i], route_json[i], errs) != 0)
            rc = -EINVAL;
    return rc;
}

gyre_config_t *gyre_config_load_with_routes(const char *path, const char *const *names,
                                            const char *const *route_json, size_t n, gyre_config_errors_t *errs)
{
    gyre_config_t *c = path != NULL ? gyre_config_load(path, errs) : gyre_config_default(errs);
    if (c != NULL && gyre_config_apply_routes(c, names, route_json, n, errs) != 0) {
        gyre_config_free(c);
        c = NULL;
    }
    return c;
}

static void targets_json(const gyre_config_t *c, const gyre_target_conf_t *t, size_t n, gyre_buf_t *out)
{
    gyre_buf_appends(out, "[");
    for (size_t i = 0; i < n; i++) {
        gyre_buf_appends(out, i ? ",{\"provider\":" : "{\"provider\":");
        const char *p = c->providers[t[i].provider].name;
        gyre_buf_append_json_string(out, p, strlen(p));
        gyre_buf_appends(out, ",\"model\":");
        gyre_buf_append_json_string(out, t[i].model, strlen(t[i].model));
        gyre_buf_appendf(out, ",\"weight\":%u}", t[i].weight);
    }
    gyre_buf_appends(out, "]");
}

void gyre_config_route_json(const gyre_config_t *c, const gyre_route_conf_t *r, gyre_buf_t *out)
{
    static const char *const strategies[] = {"weighted", "least_latency", "least_inflight", "cheapest"};
    gyre_buf_appends(out, "{\"name\":");
    gyre_buf_append_json_string(out, r->name, strlen(r->name));
    gyre_buf_appends(out, ",\"targets\":");
    targets_json(c, r->targets, r->ntargets, out);
    if (r->nfallbacks != 0) {
        gyre_buf_appends(out, ",\"fallbacks\":");
        targets_json(c, r->fallbacks, r->nfallbacks, out);
    }
    gyre_buf_appendf(out, ",\"strategy\":\"%s\"", strategies[r->strategy]);
    gyre_buf_appends(out, ",\"fallback_on\":[");
    int n = 0;
    if (r->fallback_on & GYRE_FALLBACK_CONNECT)
        gyre_buf_appends(out, n++ ? ",\"connect\"" : "\"connect\"");
    if (r->fallback_on & GYRE_FALLBACK_TIMEOUT)
        gyre_buf_appends(out, n++ ? ",\"timeout\"" : "\"timeout\"");
    for (size_t i = 0; i < r->nfallback_statuses; i++)
        gyre_buf_appendf(out, n++ ? ",%u" : "%u", r->fallback_statuses[i]);
    gyre_buf_appendf(out, "],\"retries\":%u,\"backoff_ms\":%llu,\"backoff_max_ms\":%llu", r->retries,
                     (unsigned long long)r->backoff_ms, (unsigned long long)r->backoff_max_ms);
    /* 0 means none for these, and the parser takes none of them as 0: a field left out is the same. */
    if (r->attempt_timeout_ms != 0)
        gyre_buf_appendf(out, ",\"attempt_timeout_ms\":%llu", (unsigned long long)r->attempt_timeout_ms);
    if (r->deadline_ms != 0)
        gyre_buf_appendf(out, ",\"deadline_ms\":%llu", (unsigned long long)r->deadline_ms);
    if (r->first_byte_timeout_ms != 0)
        gyre_buf_appendf(out, ",\"first_byte_timeout_ms\":%llu", (unsigned long long)r->first_byte_timeout_ms);
    gyre_buf_appendf(out, ",\"midstream\":\"%s\",\"affinity\":\"%s\"", r->midstream_resume ? "resume" : "error",
                     r->affinity_session ? "session" : "none");
    gyre_buf_appendf(out, ",\"cache\":{\"enabled\":%s,\"ttl_ms\":%llu,\"max_bytes\":%zu}", r->cache ? "true" : "false",
                     (unsigned long long)r->cache_ttl_ms, r->cache_max_bytes);
    gyre_buf_appendf(out, ",\"capture\":%s,\"redact\":[", r->capture ? "true" : "false");
    static const struct {
        unsigned bit;
        const char *name;
    } kinds[] = {{GYRE_REDACT_EMAIL, "email"},
                 {GYRE_REDACT_PHONE, "phone"},
                 {GYRE_REDACT_CARD, "card"},
                 {GYRE_REDACT_API_KEY, "api_key"}};
    n = 0;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (r->redact & kinds[i].bit)
            gyre_buf_appendf(out, n++ ? ",\"%s\"" : "\"%s\"", kinds[i].name);
    gyre_buf_appends(out, "]");
    if (r->nguardrails != 0) {
        static const char *const actions[] = {"", "deny", "retry", "flag"};
        gyre_buf_appends(out, ",\"guardrails\":[");
        for (size_t i = 0; i < r->nguardrails; i++) {
            const gyre_guardrail_conf_t *g = &r->guardrails[i];
            gyre_buf_appends(out, i ? ",{\"check\":" : "{\"check\":");
            const char *name = c->scorers[g->scorer].name;
            gyre_buf_append_json_string(out, name, strlen(name));
            gyre_buf_appendf(out, ",\"on\":\"%s\",\"action\":\"%s\"}", g->on_request ? "request" : "response",
                             actions[g->action]);
        }
        gyre_buf_appends(out, "]");
    }
    gyre_buf_appends(out, "}");
}
