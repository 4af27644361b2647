/*
 * In-line guardrails (guard.h): the routes' checks compiled per worker, run in order, counted per worker, and
 * marked on the trace.  Nothing here allocates on the request path but the trace's marks (in the request's pool)
 * and what a check itself parses (heuristic.h).
 */
#include "loop/guard.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "trace/record.h"

/* The counters of one guardrail, on one worker. */
enum { C_PASS = 0, C_FAIL, C_DENY, C_RETRY, C_FLAG, C_COUNT };

struct gyre_guard {
    const gyre_config_t *config; /* the generation's (it outlives the guard) */
    unsigned nworkers;
    size_t nscorers;
    gyre_heuristic_t **checks; /* [worker * nscorers + scorer]; NULL for a scorer no guardrail runs */
    size_t *slot_base;         /* per route: its first guardrail's slot */
    unsigned *has;             /* per route, [ri * 2 + on_request]: GYRE_GUARD_ANY | GYRE_GUARD_NEEDS_* */
    size_t nslots;
    uint64_t *counts; /* [(worker * nslots + slot) * C_COUNT + counter] */
};

gyre_guard_t *gyre_guard_create(const gyre_config_t *c, unsigned nworkers, char *err, size_t errlen)
{
    gyre_guard_t *g = gyre_calloc(1, sizeof(*g));
    g->config = c;
    g->nworkers = nworkers ? nworkers : 1;
    g->nscorers = c->nscorers;
    g->slot_base = gyre_calloc(c->nroutes + 1, sizeof(*g->slot_base));
    g->has = gyre_calloc(c->nroutes * 2 + 1, sizeof(*g->has));
    int *used = gyre_calloc(c->nscorers + 1, sizeof(*used));
    for (size_t ri = 0; ri < c->nroutes; ri++) {
        const gyre_route_conf_t *r = &c->routes[ri];
        g->slot_base[ri] = g->nslots;
        g->nslots += r->nguardrails;
        for (size_t i = 0; i < r->nguardrails; i++) {
            const gyre_guardrail_conf_t *gr = &r->guardrails[i];
            used[gr->scorer] = 1;
            unsigned *h = &g->has[ri * 2 + (gr->on_request ? 1 : 0)];
            *h |= GYRE_GUARD_ANY;
            if (c->scorers[gr->scorer].kind == GYRE_SCORER_TOOL_ARGS)
                *h |= GYRE_GUARD_NEEDS_TOOLS;
        }
    }
    g->checks = gyre_calloc((size_t)g->nworkers * (c->nscorers ? c->nscorers : 1), sizeof(*g->checks));
    for (unsigned w = 0; w < g->nworkers; w++)
        for (size_t s = 0; s < c->nscorers; s++) {
            if (!used[s])
                continue;
            char why[256];
            gyre_heuristic_t *h = gyre_heuristic_compile(&c->scorers[s], why, sizeof(why));
            if (h == NULL) {
                snprintf(err, errlen, "scorer '%s': %s", c->scorers[s].name, why);
                free(used);
                gyre_guard_destroy(g);
                return NULL;
            }
            g->checks[w * c->nscorers + s] = h;
        }
    free(used);
    g->counts = gyre_calloc((size_t)g->nworkers * (g->nslots ? g->nslots : 1) * C_COUNT, sizeof(*g->counts));
    return g;
}

void gyre_guard_destroy(gyre_guard_t *g)
{
    if (g == NULL)
        return;
    for (size_t i = 0; g->checks != NULL && i < (size_t)g->nworkers * g->nscorers; i++)
        gyre_heuristic_free(g->checks[i]);
    free(g->checks);
    free(g->slot_base);
    free(g->has);
    free(g->counts);
    free(g);
}

/* The route's index in the guard's config, or -1 (NULL, or a route of another generation). */
static long route_index(const gyre_guard_t *g, const gyre_route_conf_t *r)
{
    if (g == NULL || r == NULL || g->config->nroutes == 0 || r < g->config->routes ||
        r >= g->config->routes + g->config->nroutes)
        return -1;
    return (long)(r - g->config->routes);
}

unsigned gyre_guard_has(const gyre_guard_t *g, const gyre_route_conf_t *r, int on_request)
{
    long ri = route_index(g, r);
    return ri < 0 ? 0 : g->has[ri * 2 + (on_request ? 1 : 0)];
}

/* One writer per counter (its worker): a relaxed load and store, no lock prefix. */
static void bump(uint64_t *c)
{
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

static void mark(gyre_trace_t *t, h2o_mem_pool_t *pool, const char *name, const char *action, const char *reason)
{
    if (t == NULL || pool == NULL)
        return;
    char tag[160];
    int n = snprintf(tag, sizeof(tag), "guardrail:%s:%s", name, action);
    if (t->ntags < GYRE_TRACE_MAX_TAGS && n > 0 && (size_t)n < sizeof(tag))
        t->tags[t->ntags++] = gyre_tstr_dup(pool, tag, (size_t)n);
    char key[160];
    n = snprintf(key, sizeof(key), "guardrail.%s", name);
    if (t->nmeta < GYRE_TRACE_MAX_META && n > 0 && (size_t)n < sizeof(key)) {
        t->meta[t->nmeta].key = gyre_tstr_dup(pool, key, (size_t)n);
        t->meta[t->nmeta].value = gyre_tstr_dup(pool, reason, strlen(reason));
        t->nmeta++;
    }
}

void gyre_guard_run(gyre_guard_t *g, unsigned worker, const gyre_route_conf_t *r, int on_request, int stream,
                    const gyre_check_input_t *in, gyre_trace_t *t, h2o_mem_pool_t *pool, gyre_guard_outcome_t *out)
{
    static const char *const action_names[] = {"", "deny", "retry", "flag"};
    out->action = 0;
    out->check = NULL;
    out->reason[0] = '\0';
    long ri = route_index(g, r);
    if (ri < 0)
        return;
    if (worker >= g->nworkers)
        worker = 0; /* never: a worker's number is below the count it was made for */
    for (size_t i = 0; i < r->nguardrails; i++) {
        const gyre_guardrail_conf_t *gr = &r->guardrails[i];
        if ((gr->on_request != 0) != (on_request != 0))
            continue;
        const gyre_heuristic_t *h = g->checks[worker * g->nscorers + gr->scorer];
        uint64_t *cnt = &g->counts[((size_t)worker * g->nslots + g->slot_base[ri] + i) * C_COUNT];
        gyre_check_result_t res;
        gyre_heuristic_run(h, in, &res);
        if (res.pass) {
            bump(&cnt[C_PASS]);
            continue;
        }
        bump(&cnt[C_FAIL]);
        gyre_guard_action_t act = stream ? GYRE_GUARD_FLAG : gr->action;
        bump(&cnt[act == GYRE_GUARD_DENY ? C_DENY : act == GYRE_GUARD_RETRY ? C_RETRY : C_FLAG]);
        const char *name = g->config->scorers[gr->scorer].name;
        mark(t, pool, name, action_names[act], res.reason);
        if (act == GYRE_GUARD_FLAG)
            continue;
        out->action = act;
        out->check = name;
        memcpy(out->reason, res.reason, sizeof(out->reason));
        return;
    }
}

void gyre_guard_render(const gyre_guard_t *g, gyre_buf_t *out)
{
    if (g == NULL || g->nslots == 0)
        return;
    static const char *const results[] = {"pass", "fail"};
    static const char *const actions[] = {"deny", "retry", "flag"};
    for (int family = 0; family < 2; family++) {
        if (family == 0)
            gyre_buf_appends(out, "# HELP gyre_guardrail_checks_total In-line guardrail checks run, by result.\n"
                                  "# TYPE gyre_guardrail_checks_total counter\n");
        else
            gyre_buf_appends(out, "# HELP gyre_guardrail_actions_total Actions taken on failed guardrail checks.\n"
                                  "# TYPE gyre_guardrail_actions_total counter\n");
        for (size_t ri = 0; ri < g->config->nroutes; ri++) {
            const gyre_route_conf_t *r = &g->config->routes[ri];
            for (size_t i = 0; i < r->nguardrails; i++) {
                const gyre_guardrail_conf_t *gr = &r->guardrails[i];
                size_t slot = g->slot_base[ri] + i;
                int first = family == 0 ? C_PASS : C_DENY, n = family == 0 ? 2 : 3;
                for (int k = 0; k < n; k++) {
                    uint64_t sum = 0;
                    for (unsigned w = 0; w < g->nworkers; w++)
                        sum += __atomic_load_n(&g->counts[((size_t)w * g->nslots + slot) * C_COUNT + first + k],
                                               __ATOMIC_RELAXED);
                    gyre_buf_appendf(out, "%s{route=\"%s\",check=\"%s\",on=\"%s\",%s=\"%s\"} %llu\n",
                                     family == 0 ? "gyre_guardrail_checks_total" : "gyre_guardrail_actions_total",
                                     r->name, g->config->scorers[gr->scorer].name,
                                     gr->on_request ? "request" : "response", family == 0 ? "result" : "action",
                                     family == 0 ? results[k] : actions[k], (unsigned long long)sum);
                }
            }
        }
    }
}
