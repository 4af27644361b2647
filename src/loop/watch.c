/*
 * What a deployment observes (deploy_int.h): the route's traces read back
 * from the trace store with the watched scorers' values, folded into the
 * sequential test's arms, and the watch's before/after report per cluster.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "loop/deploy_int.h"

typedef struct collect {
    const char *provider, *model;
    gyre_deploy_trace_t *t;
    size_t n, cap;
    gyre_store_cursor_t last;
    size_t page;
} collect_t;

static int tstr_is(gyre_tstr_t s, const char *v)
{
    size_t n = strlen(v);
    return s.len == n && (n == 0 || memcmp(s.p, v, n) == 0);
}

static int row_cb(void *arg, const gyre_store_row_t *row)
{
    collect_t *c = arg;
    c->page++;
    c->last.started_us = row->started_us;
    snprintf(c->last.trace_id, sizeof(c->last.trace_id), "%.*s", (int)row->trace_id.len, row->trace_id.p);
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        c->t = gyre_realloc(c->t, c->cap * sizeof(*c->t));
    }
    gyre_deploy_trace_t *t = &c->t[c->n++];
    memset(t, 0, sizeof(*t));
    snprintf(t->id, sizeof(t->id), "%s", c->last.trace_id);
    t->cand_answer = tstr_is(row->provider, c->provider) && tstr_is(row->model, c->model);
    t->cand_first = t->cand_answer;
    t->err = row->status >= 500 || row->status == 0;
    /* The first attempt says which arm the weighted pick chose, and whether that target failed: with retries or
     * fallbacks the client may still get an answer, from the incumbent. */
    cJSON *a = row->attempts_json.len ? cJSON_ParseWithLength(row->attempts_json.p, row->attempts_json.len) : NULL;
    const cJSON *first = cJSON_IsArray(a) ? cJSON_GetArrayItem(a, 0) : NULL;
    if (first != NULL) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(first, "provider");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(first, "model");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(first, "status");
        t->cand_first = cJSON_IsString(p) && cJSON_IsString(m) && strcmp(p->valuestring, c->provider) == 0 &&
                        strcmp(m->valuestring, c->model) == 0;
        if (cJSON_IsNumber(st))
            t->err = st->valueint >= 500 || st->valueint == 0;
    }
    cJSON_Delete(a);
    t->cost_usd = row->cost_usd;
    t->latency_ms = (double)row->latency_us / 1000.0;
    t->cluster = -1;
    for (size_t i = 0; i < GYRE_LOOP_MAX_SCORERS; i++)
        t->val[i] = NAN;
    return 0;
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const gyre_deploy_trace_t *)a)->id, ((const gyre_deploy_trace_t *)b)->id);
}

typedef struct score_ctx {
    gyre_deploy_trace_t *t;
    size_t n, which;
} score_ctx_t;

/* A score as a value in [0, 1], higher is better: a heuristic's label says pass or fail (its value may mean
 * "found", as refusal's does); another score counts when it is already in [0, 1]. */
static int score_cb(void *arg, const gyre_score_t *s)
{
    score_ctx_t *c = arg;
    gyre_deploy_trace_t key;
    snprintf(key.id, sizeof(key.id), "%s", s->trace_id != NULL ? s->trace_id : "");
    gyre_deploy_trace_t *t = bsearch(&key, c->t, c->n, sizeof(*c->t), by_id);
    if (t == NULL)
        return 0;
    double v = NAN;
    if (s->label != NULL && strcmp(s->label, "pass") == 0)
        v = 1;
    else if (s->label != NULL && strcmp(s->label, "fail") == 0)
        v = 0;
    else if (isfinite(s->value) && s->value >= 0 && s->value <= 1)
        v = s->value;
    if (!isnan(v))
        t->val[c->which] = v; /* scores come oldest first: the newest stays */
    return 0;
}

int gyre_deploy_collect(gyre_store_t *s, const char *route, const char *provider, const char *model, int64_t from_us,
                        int64_t to_us, const char *const *metrics, size_t nmetrics, int with_cluster,
                        gyre_deploy_trace_t **out, size_t *n, char *err, size_t errlen)
{
    collect_t c = {.provider = provider, .model = model};
    const gyre_store_ops_t *ops = gyre_store_ops(s);
    gyre_trace_query_t q = {.from_us = from_us, .to_us = to_us, .route = route};
    int r = 0;
    /* Pages of 1000, newest first, each after the last row of the one before; at most GYRE_DEPLOY_MAX_OBS. */
    for (int firstpage = 1; c.n < GYRE_DEPLOY_MAX_OBS; firstpage = 0) {
        c.page = 0;
        gyre_store_cursor_t after = c.last;
        if ((r = ops->scan_traces(s, &q, firstpage ? NULL : &after, 1000, row_cb, &c, err, errlen)) != 0)
            break;
        if (c.page < 1000)
            break;
    }
    if (r == 0 && c.n > 0) {
        qsort(c.t, c.n, sizeof(*c.t), by_id);
        for (size_t m = 0; m < nmetrics && m < GYRE_LOOP_MAX_SCORERS && r == 0; m++) {
            score_ctx_t sc = {c.t, c.n, m};
            r = gyre_store_scan_scores(s, from_us, to_us, metrics[m], score_cb, &sc, err, errlen);
        }
        for (size_t i = 0; with_cluster && r == 0 && i < c.n; i++) {
            char run[64], msg[128];
            int32_t cl = -1;
            if (gyre_store_trace_cluster(s, c.t[i].id, &cl, run, sizeof(run), msg, sizeof(msg)) == 0)
                c.t[i].cluster = cl;
        }
    }
    if (r != 0) {
        free(c.t);
        return r;
    }
    *out = c.t;
    *n = c.n;
    return 0;
}

void gyre_deploy_observe(const gyre_deploy_trace_t *t, size_t n, size_t nmetrics, gyre_deploy_obs_t *o)
{
    memset(o, 0, sizeof(*o));
    if (nmetrics > GYRE_LOOP_MAX_SCORERS)
        nmetrics = GYRE_LOOP_MAX_SCORERS;
    o->nsignals = 1 + nmetrics;
    for (size_t i = 0; i < n; i++) {
        gyre_deploy_arm_t *a = t[i].cand_first ? &o->cand[0] : &o->inc[0];
        a->n++;
        a->sum += t[i].err ? 0 : 1;
        for (size_t m = 0; m < nmetrics; m++) {
            if (isnan(t[i].val[m]))
                continue;
            a = t[i].cand_answer ? &o->cand[1 + m] : &o->inc[1 + m];
            a->n++;
            a->sum += t[i].val[m];
        }
    }
}

/* ---- The watch's report ---- */

typedef struct moments {
    double n, sum, sq;
} moments_t;

static void add(moments_t *m, double v)
{
    if (isnan(v))
        return;
    m->n++;
    m->sum += v;
    m->sq += v * v;
}

static double mean(const moments_t *m)
{
    return m->n > 0 ? m->sum / m->n : NAN;
}

/* The standard error of the mean; NaN below two values. */
static double se(const moments_t *m)
{
    if (m->n < 2)
        return NAN;
    double mu = m->sum / m->n, var = (m->sq - m->n * mu * mu) / (m->n - 1);
    return sqrt(var > 0 ? var / m->n : 0);
}

/* Signals per side: 0 ok (1 - error), 1 latency, 2 cost, 3.. the metrics. */
#define W_OK 0
#define W_LAT 1
#define W_COST 2
#define W_FIXED 3

typedef struct side {
    moments_t s[W_FIXED + GYRE_LOOP_MAX_SCORERS];
} side_t;

typedef struct cluster_acc {
    int32_t id; /* -2: "all" */
    side_t before, after;
} cluster_acc_t;

static cluster_acc_t *cluster_of(cluster_acc_t **cs, size_t *n, int32_t id)
{
    for (size_t i = 0; i < *n; i++)
        if ((*cs)[i].id == id)
            return &(*cs)[i];
    *cs = gyre_realloc(*cs, (*n + 1) * sizeof(**cs));
    memset(&(*cs)[*n], 0, sizeof(**cs));
    (*cs)[*n].id = id;
    return &(*cs)[(*n)++];
}

static void fold(side_t *s, const gyre_deploy_trace_t *t, size_t nmetrics)
{
    add(&s->s[W_OK], t->err ? 0 : 1);
    add(&s->s[W_LAT], t->latency_ms);
    add(&s->s[W_COST], t->cost_usd);
    for (size_t m = 0; m < nmetrics; m++)
        add(&s->s[W_FIXED + m], t->val[m]);
}

static double z_of(double alpha)
{
    /* Two-sided normal quantiles for the usual levels; else 1.96. */
    return alpha <= 0.01 ? 2.5758 : alpha <= 0.05 ? 1.96 : alpha <= 0.1 ? 1.6449 : 1.2816;
}

static void num(cJSON *o, const char *k, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

cJSON *gyre_deploy_watch_report(const gyre_deploy_trace_t *before, size_t nbefore, const gyre_deploy_trace_t *after,
                                size_t nafter, const char *const *metrics, size_t nmetrics, double alpha,
                                double max_drop, int *regressed, char *why, size_t whylen)
{
    if (nmetrics > GYRE_LOOP_MAX_SCORERS)
        nmetrics = GYRE_LOOP_MAX_SCORERS;
    cluster_acc_t *cs = NULL;
    size_t ncs = 0;
    int any_cluster = 0;
    for (size_t i = 0; i < nbefore; i++)
        any_cluster |= before[i].cluster >= 0;
    for (size_t i = 0; i < nafter; i++)
        any_cluster |= after[i].cluster >= 0;
    for (size_t i = 0; i < nbefore; i++)
        fold(&cluster_of(&cs, &ncs, any_cluster ? before[i].cluster : -2)->before, &before[i], nmetrics);
    for (size_t i = 0; i < nafter; i++)
        fold(&cluster_of(&cs, &ncs, any_cluster ? after[i].cluster : -2)->after, &after[i], nmetrics);
    double z = z_of(alpha);
    *regressed = 0;
    if (whylen)
        why[0] = '\0';
    cJSON *report = cJSON_CreateObject();
    cJSON_AddNumberToObject(report, "confidence", 1 - alpha);
    cJSON *arr = cJSON_AddArrayToObject(report, "clusters");
    for (size_t c = 0; c < ncs; c++) {
        cJSON *o = cJSON_CreateObject();
        char name[16];
        if (cs[c].id == -2)
            snprintf(name, sizeof(name), "all");
        else if (cs[c].id == -1)
            snprintf(name, sizeof(name), "none");
        else
            snprintf(name, sizeof(name), "%d", (int)cs[c].id);
        cJSON_AddStringToObject(o, "cluster", name);
        cJSON_AddNumberToObject(o, "before_n", cs[c].before.s[W_OK].n);
        cJSON_AddNumberToObject(o, "after_n", cs[c].after.s[W_OK].n);
        cJSON *sig = cJSON_AddObjectToObject(o, "signals");
        for (size_t k = 0; k < W_FIXED + nmetrics; k++) {
            const char *sname = k == W_OK     ? "error_rate"
                                : k == W_LAT  ? "latency_ms"
                                : k == W_COST ? "cost_usd"
                                              : metrics[k - W_FIXED];
            const moments_t *b = &cs[c].before.s[k], *a = &cs[c].after.s[k];
            double mb = mean(b), ma = mean(a), sb = se(b), sa = se(a);
            if (k == W_OK) { /* reported as the error rate, tested as 1 - error */
                mb = 1 - mb;
                ma = 1 - ma;
            }
            double d = ma - mb, h = z * sqrt(sb * sb + sa * sa);
            cJSON *e = cJSON_AddObjectToObject(sig, sname);
            num(e, "before", mb);
            num(e, "after", ma);
            num(e, "diff", d);
            num(e, "lo", d - h);
            num(e, "hi", d + h);
            /* Quality (higher is better) regresses when after - before < -max_drop at the upper bound; the
             * error rate (lower is better) when after - before > max_drop at the lower bound.  Cost and latency are
             * reported, not decided on (a dearer, slower candidate passed the gate on them already). */
            int bad = 0;
            if (isfinite(h) && k == W_OK)
                bad = d - h > max_drop;
            else if (isfinite(h) && k >= W_FIXED)
                bad = d + h < -max_drop;
            if (bad) {
                cJSON_AddTrueToObject(e, "regressed");
                if (!*regressed && whylen)
                    snprintf(why, whylen,
                             "cluster %s: %s went from %.4f to %.4f (difference in [%.4f, %.4f] at %.0f %%)", name,
                             sname, mb, ma, d - h, d + h, (1 - alpha) * 100);
                *regressed = 1;
            }
        }
        cJSON_AddItemToArray(arr, o);
    }
    cJSON_AddBoolToObject(report, "regressed", *regressed);
    free(cs);
    return report;
}
