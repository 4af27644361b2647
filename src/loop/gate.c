/*
 * The eval gate's decision and its report (gate.h): metrics with paired
 * bootstrap intervals, the rules applied, the report written in JSON and
 * markdown, and the same decision recomputed from a stored report.  The
 * replay that makes the observations is gate_run.c.
 */
#include "loop/gate.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "loop/stats.h"

/* Doubles compared against a rule's bound: 0.99 - 1.0 is -0.010000000000000009, not below -0.01. */
#define SLACK 1e-9

/* The rules in force: the conf's, or the default (every scorer, max_drop 0.01). */
typedef struct rules {
    gyre_gate_rule_t *r;
    size_t n;
    int defaulted;
} rules_t;

static void rules_init(rules_t *rs, const gyre_gate_conf_t *conf)
{
    memset(rs, 0, sizeof(*rs));
    if (conf->nrules > 0) {
        rs->r = conf->rules;
        rs->n = conf->nrules;
        return;
    }
    rs->defaulted = 1;
    rs->n = conf->nscorers;
    rs->r = gyre_calloc(rs->n ? rs->n : 1, sizeof(*rs->r));
    for (size_t k = 0; k < conf->nscorers; k++) {
        rs->r[k].kind = GYRE_GATE_SCORER;
        rs->r[k].scorer = conf->scorers[k];
        rs->r[k].max_drop = GYRE_GATE_DEFAULT_MAX_DROP;
    }
}

static void rules_dispose(rules_t *rs)
{
    if (rs->defaulted)
        free(rs->r);
}

/* A number in the report: 17 significant digits (a double read back is the same double), null when not finite. */
static void num(gyre_buf_t *b, double v)
{
    if (isfinite(v))
        gyre_buf_appendf(b, "%.17g", v);
    else
        gyre_buf_appends(b, "null");
}

static void str(gyre_buf_t *b, const char *s)
{
    if (s == NULL)
        gyre_buf_appends(b, "null");
    else
        gyre_buf_append_json_string(b, s, strlen(s));
}

/* One metric over n pairs: the means of both sides, the statistic and its interval. */
typedef struct metric {
    char name[96];  /* "scorer:correctness", "cost", "latency_p95", "error_rate" */
    char label[96]; /* what the markdown shows */
    gyre_stats_kind_t kind;
    size_t n;
    double mean_cand, mean_inc; /* the means (latency: the p95s) */
    gyre_stats_ci_t ci;
} metric_t;

static double mean(const double *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    return n ? s / (double)n : NAN;
}

static void metric_compute(metric_t *m, const double *a, const double *b, size_t n, const gyre_gate_conf_t *conf)
{
    m->n = n;
    m->ci.point = m->ci.lo = m->ci.hi = NAN;
    m->mean_cand = m->mean_inc = NAN;
    if (n == 0)
        return;
    if (m->kind == GYRE_STATS_P95_REL) {
        double *s = gyre_malloc(n * sizeof(double));
        memcpy(s, a, n * sizeof(double));
        m->mean_cand = gyre_stats_p95(s, n);
        memcpy(s, b, n * sizeof(double));
        m->mean_inc = gyre_stats_p95(s, n);
        free(s);
    } else {
        m->mean_cand = mean(a, n);
        m->mean_inc = mean(b, n);
    }
    gyre_stats_bootstrap(m->kind, a, b, n, conf->resamples, conf->confidence, gyre_stats_seed(conf->seed, m->name), &m->ci);
}

/* A side's value for scorer k: a failed call counts 0 (it gave no good answer); NaN: no value. */
static double side_score(const gyre_gate_side_t *s, size_t k)
{
    return s->error ? 0 : s->scores[k];
}

/* The pairs of one metric over the observations `sel` (NULL: all) into a and b; returns how many. */
static size_t gather(const gyre_gate_input_t *in, const char *cluster, int what, size_t k, double *a, double *b)
{
    size_t n = 0;
    for (size_t i = 0; i < in->nobs; i++) {
        const gyre_gate_obs_t *o = &in->obs[i];
        if (cluster != NULL && strcmp(o->cluster, cluster) != 0)
            continue;
        double x, y;
        switch (what) {
        case GYRE_GATE_SCORER:
            x = side_score(&o->cand, k);
            y = side_score(&o->inc, k);
            break;
        case GYRE_GATE_COST:
            x = o->cand.cost_usd;
            y = o->inc.cost_usd;
            break;
        case GYRE_GATE_LATENCY_P95:
            x = o->cand.latency_ms;
            y = o->inc.latency_ms;
            break;
        default:
            x = o->cand.error ? 1 : 0;
            y = o->inc.error ? 1 : 0;
            break;
        }
        if (isnan(x) || isnan(y))
            continue;
        a[n] = x;
        b[n] = y;
        n++;
    }
    return n;
}

static int scorer_index(const gyre_gate_conf_t *conf, const char *name)
{
    for (size_t k = 0; k < conf->nscorers; k++)
        if (name != NULL && strcmp(conf->scorers[k], name) == 0)
            return (int)k;
    return -1;
}

/* One rule applied to its metric: pass, and why in a sentence. */
typedef struct verdict {
    int pass;
    char rule[96];
    char why[320];
} verdict_t;

static void judge_rule(const gyre_gate_rule_t *r, const metric_t *m, double confidence, verdict_t *v)
{
    int pct = (int)lround(confidence * 100);
    if (r->kind == GYRE_GATE_SCORER) {
        snprintf(v->rule, sizeof(v->rule), "difference >= %g", -r->max_drop);
        if (m->n == 0) {
            v->pass = 0;
            snprintf(v->why, sizeof(v->why), "%s: no pair has a value on both sides", m->label);
            return;
        }
        v->pass = m->ci.lo >= -r->max_drop - SLACK;
        snprintf(v->why, sizeof(v->why), "%s: the %d %% interval's lower bound %+.4f is %s -%g (max_drop)", m->label,
                 pct, m->ci.lo, v->pass ? "at or above" : "below", r->max_drop);
        return;
    }
    int relative = r->kind != GYRE_GATE_ERROR_RATE;
    if (relative)
        snprintf(v->rule, sizeof(v->rule), "increase <= %g %%", r->max_increase * 100);
    else
        snprintf(v->rule, sizeof(v->rule), "difference <= %g", r->max_increase);
    if (m->n == 0) {
        v->pass = 0;
        snprintf(v->why, sizeof(v->why), "%s: no pair has a value on both sides (unknown prices?)", m->label);
        return;
    }
    v->pass = m->ci.hi <= r->max_increase + SLACK;
    if (relative)
        snprintf(v->why, sizeof(v->why), "%s: the %d %% interval's upper bound %+.2f %% is %s %+g %% (max_increase)",
                 m->label, pct, m->ci.hi * 100, v->pass ? "at or below" : "above", r->max_increase * 100);
    else
        snprintf(v->why, sizeof(v->why), "%s: the %d %% interval's upper bound %+.4f is %s %g (max_increase)", m->label,
                 pct, m->ci.hi, v->pass ? "at or below" : "above", r->max_increase);
}

static int cmp_cluster(const void *x, const void *y)
{
    const char *a = *(const char *const *)x, *b = *(const char *const *)y;
    char *ea, *eb;
    long la = strtol(a, &ea, 10), lb = strtol(b, &eb, 10);
    if (*a != '\0' && *ea == '\0' && *b != '\0' && *eb == '\0')
        return la < lb ? -1 : la > lb ? 1 : 0;
    return strcmp(a, b);
}

/* The metric's value as the markdown shows it. */
static void md_value(gyre_buf_t *md, const metric_t *m, double v)
{
    if (!isfinite(v))
        gyre_buf_appends(md, "n/a");
    else if (strcmp(m->name, "cost") == 0)
        gyre_buf_appendf(md, "%.6g", v);
    else if (strcmp(m->name, "latency_p95") == 0)
        gyre_buf_appendf(md, "%.1f", v);
    else
        gyre_buf_appendf(md, "%.3f", v);
}

static void md_diff(gyre_buf_t *md, gyre_stats_kind_t kind, const gyre_stats_ci_t *ci, size_t n)
{
    if (n == 0) {
        gyre_buf_appends(md, "n/a");
        return;
    }
    if (kind == GYRE_STATS_MEAN_DIFF)
        gyre_buf_appendf(md, "%+.3f [%+.3f, %+.3f]", ci->point, ci->lo, ci->hi);
    else
        gyre_buf_appendf(md, "%+.1f %% [%+.1f %%, %+.1f %%]", ci->point * 100, ci->lo * 100, ci->hi * 100);
}

static void json_ci(gyre_buf_t *j, const gyre_stats_ci_t *ci)
{
    gyre_buf_appends(j, "[");
    num(j, ci->lo);
    gyre_buf_appends(j, ",");
    num(j, ci->hi);
    gyre_buf_appends(j, "]");
}

static void json_side(gyre_buf_t *j, const gyre_gate_side_t *s, size_t nscorers)
{
    gyre_buf_appendf(j, "{\"error\":%s,\"latency_ms\":", s->error ? "true" : "false");
    num(j, s->latency_ms);
    gyre_buf_appends(j, ",\"cost_usd\":");
    num(j, s->cost_usd);
    gyre_buf_appends(j, ",\"scores\":[");
    for (size_t k = 0; k < nscorers; k++) {
        if (k)
            gyre_buf_appends(j, ",");
        num(j, s->scores[k]);
    }
    gyre_buf_appends(j, "]}");
}

static const char *rule_metric_name(const gyre_gate_rule_t *r)
{
    switch (r->kind) {
    case GYRE_GATE_COST:
        return "cost";
    case GYRE_GATE_LATENCY_P95:
        return "latency_p95";
    case GYRE_GATE_ERROR_RATE:
        return "error_rate";
    case GYRE_GATE_CLUSTER:
        return "cluster_max_drop";
    default:
        return r->scorer;
    }
}

static void json_conf(gyre_buf_t *j, const gyre_gate_conf_t *conf, const rules_t *rs)
{
    gyre_buf_appends(j, "{\"scorers\":[");
    for (size_t k = 0; k < conf->nscorers; k++) {
        if (k)
            gyre_buf_appends(j, ",");
        str(j, conf->scorers[k]);
    }
    gyre_buf_appends(j, "],\"rules\":[");
    for (size_t i = 0; i < conf->nrules; i++) {
        const gyre_gate_rule_t *r = &conf->rules[i];
        gyre_buf_appends(j, i ? ",{" : "{");
        if (r->kind == GYRE_GATE_CLUSTER) {
            gyre_buf_appends(j, "\"cluster_max_drop\":");
            num(j, r->max_drop);
        } else {
            gyre_buf_appends(j, "\"metric\":");
            str(j, rule_metric_name(r));
            if (r->kind == GYRE_GATE_SCORER) {
                gyre_buf_appends(j, ",\"max_drop\":");
                num(j, r->max_drop);
            } else {
                gyre_buf_appends(j, ",\"max_increase\":");
                num(j, r->max_increase);
            }
        }
        gyre_buf_appends(j, "}");
    }
    gyre_buf_appends(j, "],\"confidence\":");
    num(j, conf->confidence);
    /* The seed as a string: a JSON number is a double to most readers, and a 64-bit seed would lose bits. */
    gyre_buf_appendf(j, ",\"resamples\":%u,\"limit\":%u,\"concurrency\":%u,\"seed\":\"%" PRIu64 "\",\"default_rules\":%s}",
                     conf->resamples, conf->limit, conf->concurrency, conf->seed, rs->defaulted ? "true" : "false");
}

int gyre_gate_decide(const gyre_gate_input_t *in, gyre_buf_t *report_json, gyre_buf_t *report_md, int *passed,
                     char *err, size_t errlen)
{
    /* The defaults applied here, so that the report states the values that were used. */
    gyre_gate_conf_t eff = *in->conf;
    if (!(eff.confidence > 0 && eff.confidence < 1))
        eff.confidence = 0.95;
    if (eff.resamples == 0)
        eff.resamples = 2000;
    const gyre_gate_conf_t *conf = &eff;
    *passed = 0;
    if (conf->resamples > GYRE_STATS_MAX_RESAMPLES) {
        gyre_errf(err, errlen, "gate: resamples: more than %u", GYRE_STATS_MAX_RESAMPLES);
        return -EINVAL;
    }
    if (in->nobs == 0) {
        gyre_errf(err, errlen, "gate: no held-out line to compare on");
        return -EINVAL;
    }
    if (conf->nscorers > GYRE_LOOP_MAX_SCORERS) {
        gyre_errf(err, errlen, "gate: scorers: more than %d", GYRE_LOOP_MAX_SCORERS);
        return -EINVAL;
    }
    for (size_t i = 0; i < conf->nrules; i++) {
        const gyre_gate_rule_t *r = &conf->rules[i];
        if (r->kind < GYRE_GATE_SCORER || r->kind > GYRE_GATE_CLUSTER) {
            gyre_errf(err, errlen, "gate: rules[%zu]: an unknown metric", i);
            return -EINVAL;
        }
        if (r->kind == GYRE_GATE_SCORER && scorer_index(conf, r->scorer) < 0) {
            gyre_errf(err, errlen, "gate: rules[%zu]: metric %s is not one of the gate's scorers", i,
                      r->scorer != NULL ? r->scorer : "(none)");
            return -EINVAL;
        }
    }
    double confidence = conf->confidence;
    rules_t rs;
    rules_init(&rs, conf);
    double *a = gyre_malloc(in->nobs * sizeof(double)), *b = gyre_malloc(in->nobs * sizeof(double));

    /* The overall metrics: each scorer, then cost, latency and error rate. */
    size_t nm = conf->nscorers + 3;
    metric_t *ms = gyre_calloc(nm, sizeof(*ms));
    for (size_t k = 0; k < nm; k++) {
        metric_t *m = &ms[k];
        int what;
        if (k < conf->nscorers) {
            what = GYRE_GATE_SCORER;
            snprintf(m->name, sizeof(m->name), "scorer:%s", conf->scorers[k]);
            snprintf(m->label, sizeof(m->label), "%s", conf->scorers[k]);
            m->kind = GYRE_STATS_MEAN_DIFF;
        } else if (k == conf->nscorers) {
            what = GYRE_GATE_COST;
            snprintf(m->name, sizeof(m->name), "cost");
            snprintf(m->label, sizeof(m->label), "cost per request (USD)");
            m->kind = GYRE_STATS_MEAN_REL;
        } else if (k == conf->nscorers + 1) {
            what = GYRE_GATE_LATENCY_P95;
            snprintf(m->name, sizeof(m->name), "latency_p95");
            snprintf(m->label, sizeof(m->label), "latency p95 (ms)");
            m->kind = GYRE_STATS_P95_REL;
        } else {
            what = GYRE_GATE_ERROR_RATE;
            snprintf(m->name, sizeof(m->name), "error_rate");
            snprintf(m->label, sizeof(m->label), "error rate");
            m->kind = GYRE_STATS_MEAN_DIFF;
        }
        size_t n = gather(in, NULL, what, k, a, b);
        metric_compute(m, a, b, n, conf);
    }

    /* The clusters, in order (numbers by value). */
    const char **names = gyre_calloc(in->nobs, sizeof(*names));
    size_t nc = 0;
    for (size_t i = 0; i < in->nobs; i++) {
        size_t j = 0;
        while (j < nc && strcmp(names[j], in->obs[i].cluster) != 0)
            j++;
        if (j == nc)
            names[nc++] = in->obs[i].cluster;
    }
    qsort(names, nc, sizeof(*names), cmp_cluster);
    size_t ncm = nc * conf->nscorers;
    metric_t *cm = gyre_calloc(ncm ? ncm : 1, sizeof(*cm));
    size_t *clines = gyre_calloc(nc ? nc : 1, sizeof(size_t));
    for (size_t c = 0; c < nc; c++) {
        for (size_t i = 0; i < in->nobs; i++)
            clines[c] += strcmp(in->obs[i].cluster, names[c]) == 0;
        for (size_t k = 0; k < conf->nscorers; k++) {
            metric_t *m = &cm[c * conf->nscorers + k];
            snprintf(m->name, sizeof(m->name), "cluster:%.40s:%.40s", names[c], conf->scorers[k]);
            snprintf(m->label, sizeof(m->label), "cluster %.40s, %.40s", names[c], conf->scorers[k]);
            m->kind = GYRE_STATS_MEAN_DIFF;
            metric_compute(m, a, b, gather(in, names[c], GYRE_GATE_SCORER, k, a, b), conf);
        }
    }

    /* The rules. */
    int all = 1;
    char(*reasons)[320] = gyre_calloc(rs.n + ncm + 1, sizeof(*reasons));
    size_t nreasons = 0;
    verdict_t *vs = gyre_calloc(rs.n ? rs.n : 1, sizeof(*vs));
    /* Per cluster metric: whether it is held and whether it passes every cluster rule. */
    int *cheld = gyre_calloc(ncm ? ncm : 1, sizeof(int)), *cpass = gyre_calloc(ncm ? ncm : 1, sizeof(int));
    double cluster_max = -1;
    for (size_t i = 0; i < rs.n; i++) {
        const gyre_gate_rule_t *r = &rs.r[i];
        verdict_t *v = &vs[i];
        if (r->kind == GYRE_GATE_CLUSTER) {
            if (cluster_max < 0 || r->max_drop < cluster_max)
                cluster_max = r->max_drop;
            continue;
        }
        const metric_t *m = r->kind == GYRE_GATE_SCORER ? &ms[scorer_index(conf, r->scorer)]
                            : r->kind == GYRE_GATE_COST  ? &ms[conf->nscorers]
                            : r->kind == GYRE_GATE_LATENCY_P95 ? &ms[conf->nscorers + 1]
                                                                : &ms[conf->nscorers + 2];
        judge_rule(r, m, confidence, v);
        if (!v->pass) {
            all = 0;
            memcpy(reasons[nreasons++], v->why, sizeof(v->why));
        }
    }
    if (cluster_max >= 0) {
        for (size_t c = 0; c < nc; c++)
            for (size_t k = 0; k < conf->nscorers; k++) {
                size_t x = c * conf->nscorers + k;
                const metric_t *m = &cm[x];
                cheld[x] = clines[c] >= GYRE_GATE_CLUSTER_MIN && m->n > 0;
                cpass[x] = !cheld[x] || -m->ci.point <= cluster_max + SLACK;
                if (!cpass[x]) {
                    char *why = reasons[nreasons++];
                    snprintf(why, sizeof(*reasons), "cluster %s, %s: the candidate is worse by %.4f (%.3f against %.3f), "
                             "more than %g (cluster_max_drop)", names[c], conf->scorers[k], -m->ci.point,
                             m->mean_cand, m->mean_inc, cluster_max);
                    all = 0;
                }
            }
    }
    *passed = all;

    if (report_json != NULL) {
        gyre_buf_t *j = report_json;
        gyre_buf_appends(j, "{\"gate\":1,\"candidate\":");
        str(j, in->candidate);
        gyre_buf_appends(j, ",\"incumbent\":");
        str(j, in->incumbent);
        gyre_buf_appends(j, ",\"dataset\":");
        str(j, in->dataset);
        gyre_buf_appends(j, ",\"cost_source\":");
        str(j, in->cost_source);
        gyre_buf_appends(j, ",\"conf\":");
        json_conf(j, conf, &rs);
        gyre_buf_appendf(j, ",\"passed\":%s,\"reasons\":[", all ? "true" : "false");
        for (size_t i = 0; i < nreasons; i++) {
            gyre_buf_appends(j, i ? "," : "");
            str(j, reasons[i]);
        }
        gyre_buf_appends(j, "],\"metrics\":[");
        for (size_t k = 0; k < nm; k++) {
            const metric_t *m = &ms[k];
            gyre_buf_appends(j, k ? ",{\"metric\":" : "{\"metric\":");
            str(j, m->name);
            gyre_buf_appendf(j, ",\"statistic\":\"%s\",\"n\":%zu,\"incumbent\":",
                             m->kind == GYRE_STATS_MEAN_DIFF ? "mean difference"
                             : m->kind == GYRE_STATS_MEAN_REL ? "relative increase of the mean"
                                                             : "relative increase of the p95",
                             m->n);
            num(j, m->mean_inc);
            gyre_buf_appends(j, ",\"candidate\":");
            num(j, m->mean_cand);
            gyre_buf_appends(j, ",\"diff\":");
            num(j, m->ci.point);
            gyre_buf_appends(j, ",\"ci\":");
            json_ci(j, &m->ci);
            gyre_buf_appends(j, ",\"rules\":[");
            size_t nr = 0;
            for (size_t i = 0; i < rs.n; i++) {
                const gyre_gate_rule_t *r = &rs.r[i];
                int mine = (r->kind == GYRE_GATE_SCORER && k < conf->nscorers && strcmp(r->scorer, conf->scorers[k]) == 0) ||
                           (r->kind == GYRE_GATE_COST && k == conf->nscorers) ||
                           (r->kind == GYRE_GATE_LATENCY_P95 && k == conf->nscorers + 1) ||
                           (r->kind == GYRE_GATE_ERROR_RATE && k == conf->nscorers + 2);
                if (!mine)
                    continue;
                gyre_buf_appends(j, nr++ ? ",{\"rule\":" : "{\"rule\":");
                str(j, vs[i].rule);
                gyre_buf_appendf(j, ",\"pass\":%s,\"why\":", vs[i].pass ? "true" : "false");
                str(j, vs[i].why);
                gyre_buf_appends(j, "}");
            }
            gyre_buf_appends(j, "]}");
        }
        gyre_buf_appends(j, "],\"clusters\":[");
        for (size_t c = 0; c < nc; c++) {
            gyre_buf_appends(j, c ? ",{\"cluster\":" : "{\"cluster\":");
            str(j, names[c]);
            gyre_buf_appendf(j, ",\"lines\":%zu,\"held\":%s,\"scorers\":[", clines[c],
                             clines[c] >= GYRE_GATE_CLUSTER_MIN ? "true" : "false");
            for (size_t k = 0; k < conf->nscorers; k++) {
                size_t x = c * conf->nscorers + k;
                const metric_t *m = &cm[x];
                gyre_buf_appends(j, k ? ",{\"scorer\":" : "{\"scorer\":");
                str(j, conf->scorers[k]);
                gyre_buf_appendf(j, ",\"n\":%zu,\"incumbent\":", m->n);
                num(j, m->mean_inc);
                gyre_buf_appends(j, ",\"candidate\":");
                num(j, m->mean_cand);
                gyre_buf_appends(j, ",\"diff\":");
                num(j, m->ci.point);
                gyre_buf_appends(j, ",\"ci\":");
                json_ci(j, &m->ci);
                if (cluster_max >= 0)
                    gyre_buf_appendf(j, ",\"pass\":%s", cpass[x] ? "true" : "false");
                else
                    gyre_buf_appends(j, ",\"pass\":null");
                gyre_buf_appends(j, "}");
            }
            gyre_buf_appends(j, "]}");
        }
        gyre_buf_appends(j, "],\"observations\":[");
        for (size_t i = 0; i < in->nobs; i++) {
            const gyre_gate_obs_t *o = &in->obs[i];
            gyre_buf_appendf(j, "%s{\"line\":%u,\"cluster\":", i ? "," : "", o->line);
            str(j, o->cluster);
            gyre_buf_appends(j, ",\"candidate\":");
            json_side(j, &o->cand, conf->nscorers);
            gyre_buf_appends(j, ",\"incumbent\":");
            json_side(j, &o->inc, conf->nscorers);
            gyre_buf_appends(j, "}");
        }
        gyre_buf_appends(j, "]}\n");
    }

    if (report_md != NULL) {
        gyre_buf_t *md = report_md;
        gyre_buf_appendf(md, "# Eval gate: %s\n\n", all ? "PASS" : "FAIL");
        gyre_buf_appendf(md,
                         "Candidate `%s` against incumbent `%s` on dataset `%s`: %zu held-out lines, paired "
                         "bootstrap intervals at %g %% (%u resamples, seed %" PRIu64 ").%s\n\n",
                         in->candidate ? in->candidate : "?", in->incumbent ? in->incumbent : "?",
                         in->dataset ? in->dataset : "?", in->nobs, confidence * 100,
                         conf->resamples, conf->seed,
                         rs.defaulted ? " No rules were given: every scorer may drop by 0.01 at most." : "");
        gyre_buf_appends(md, "Scores read higher-is-better (a judge's score, a heuristic's pass as 1 or 0; a failed "
                             "call counts 0). Cost and latency differences are relative.\n\n");
        gyre_buf_appends(md, "| metric | incumbent | candidate | difference [CI] | rule | result |\n"
                             "| --- | ---: | ---: | --- | --- | --- |\n");
        for (size_t k = 0; k < nm; k++) {
            const metric_t *m = &ms[k];
            gyre_buf_appendf(md, "| %s | ", m->label);
            md_value(md, m, m->mean_inc);
            gyre_buf_appends(md, " | ");
            md_value(md, m, m->mean_cand);
            gyre_buf_appends(md, " | ");
            md_diff(md, m->kind, &m->ci, m->n);
            gyre_buf_appends(md, " | ");
            int any = 0, ok = 1;
            for (size_t i = 0; i < rs.n; i++) {
                const gyre_gate_rule_t *r = &rs.r[i];
                int mine = (r->kind == GYRE_GATE_SCORER && k < conf->nscorers && strcmp(r->scorer, conf->scorers[k]) == 0) ||
                           (r->kind == GYRE_GATE_COST && k == conf->nscorers) ||
                           (r->kind == GYRE_GATE_LATENCY_P95 && k == conf->nscorers + 1) ||
                           (r->kind == GYRE_GATE_ERROR_RATE && k == conf->nscorers + 2);
                if (!mine)
                    continue;
                gyre_buf_appendf(md, "%s%s", any++ ? "; " : "", vs[i].rule);
                ok &= vs[i].pass;
            }
            gyre_buf_appendf(md, "%s | %s |\n", any ? "" : "-", any ? (ok ? "PASS" : "**FAIL**") : "-");
        }
        if (nc > 0 && conf->nscorers > 0) {
            gyre_buf_appendf(md, "\n## Per cluster\n\n");
            if (cluster_max >= 0)
                gyre_buf_appendf(md, "Rule: no cluster of %u lines or more worse by more than %g on any scorer "
                                     "(the point estimate).\n\n", GYRE_GATE_CLUSTER_MIN, cluster_max);
            gyre_buf_appends(md, "| cluster | lines | scorer | incumbent | candidate | difference [CI] | result |\n"
                                 "| --- | ---: | --- | ---: | ---: | --- | --- |\n");
            for (size_t c = 0; c < nc; c++)
                for (size_t k = 0; k < conf->nscorers; k++) {
                    size_t x = c * conf->nscorers + k;
                    const metric_t *m = &cm[x];
                    gyre_buf_appendf(md, "| %s | %zu | %s | ", names[c], clines[c], conf->scorers[k]);
                    md_value(md, m, m->mean_inc);
                    gyre_buf_appends(md, " | ");
                    md_value(md, m, m->mean_cand);
                    gyre_buf_appends(md, " | ");
                    md_diff(md, m->kind, &m->ci, m->n);
                    gyre_buf_appendf(md, " | %s |\n",
                                     cluster_max < 0 ? "-" : !cheld[x] ? "not held (too few lines)"
                                                         : cpass[x]    ? "PASS"
                                                                       : "**FAIL**");
                }
        }
        gyre_buf_appendf(md, "\n## Verdict\n\n**%s**", all ? "PASS" : "FAIL");
        if (all) {
            gyre_buf_appends(md, ": every rule holds.\n");
        } else {
            gyre_buf_appends(md, ":\n\n");
            for (size_t i = 0; i < nreasons; i++)
                gyre_buf_appendf(md, "- %s\n", reasons[i]);
        }
    }

    free(cheld);
    free(cpass);
    free(vs);
    free(reasons);
    free(clines);
    free(cm);
    free(names);
    free(ms);
    free(a);
    free(b);
    rules_dispose(&rs);
    if ((report_json != NULL && gyre_buf_failed(report_json)) || (report_md != NULL && gyre_buf_failed(report_md))) {
        gyre_errf(err, errlen, "gate: the report is larger than its bound");
        return -E2BIG;
    }
    return 0;
}

/* ---- The decision from a stored report ---- */

static int get_number(const cJSON *o, const char *name, int nullable, double *v, char *err, size_t errlen,
                      const char *where)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, name);
    if (nullable && (x == NULL || cJSON_IsNull(x))) {
        *v = NAN;
        return 0;
    }
    if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble)) {
        gyre_errf(err, errlen, "gate report: %s%s: not a finite number", where, name);
        return -EINVAL;
    }
    *v = x->valuedouble;
    return 0;
}

static int read_side(const cJSON *s, size_t nscorers, gyre_gate_side_t *side, char *err, size_t errlen,
                     const char *where)
{
    if (!cJSON_IsObject(s)) {
        gyre_errf(err, errlen, "gate report: %s: not an object", where);
        return -EINVAL;
    }
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(s, "error");
    if (!cJSON_IsBool(e)) {
        gyre_errf(err, errlen, "gate report: %s.error: not a boolean", where);
        return -EINVAL;
    }
    side->error = cJSON_IsTrue(e);
    char w[96];
    snprintf(w, sizeof(w), "%s.", where);
    if (get_number(s, "latency_ms", 0, &side->latency_ms, err, errlen, w) != 0 ||
        get_number(s, "cost_usd", 1, &side->cost_usd, err, errlen, w) != 0)
        return -EINVAL;
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(s, "scores");
    if (!cJSON_IsArray(sc) || (size_t)cJSON_GetArraySize(sc) != nscorers) {
        gyre_errf(err, errlen, "gate report: %s.scores: not an array of %zu scores", where, nscorers);
        return -EINVAL;
    }
    size_t k = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, sc)
    {
        if (cJSON_IsNull(v)) {
            side->scores[k++] = NAN;
        } else if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
            side->scores[k++] = v->valuedouble;
        } else {
            gyre_errf(err, errlen, "gate report: %s.scores[%zu]: not a number or null", where, k);
            return -EINVAL;
        }
    }
    return 0;
}

static const char *opt_string(const cJSON *root, const char *name)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(root, name);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

int gyre_gate_decide_report(const char *report_json, size_t len, char *err, size_t errlen)
{
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (len > GYRE_GATE_REPORT_MAX) {
        gyre_errf(err, errlen, "gate report: larger than %zu bytes", GYRE_GATE_REPORT_MAX);
        return -EINVAL;
    }
    cJSON *root = cJSON_ParseWithLength(report_json, len);
    gyre_gate_conf_t conf;
    memset(&conf, 0, sizeof(conf));
    char *scorers[GYRE_LOOP_MAX_SCORERS];
    gyre_gate_rule_t rules[GYRE_LOOP_MAX_RULES];
    gyre_gate_obs_t *obs = NULL;
    int rc = -EINVAL;
    if (!cJSON_IsObject(root)) {
        gyre_errf(err, errlen, "gate report: not a JSON object");
        goto out;
    }
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "conf");
    if (!cJSON_IsObject(c)) {
        gyre_errf(err, errlen, "gate report: conf: not an object");
        goto out;
    }
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(c, "scorers"), *x;
    if (!cJSON_IsArray(sc) || cJSON_GetArraySize(sc) > GYRE_LOOP_MAX_SCORERS) {
        gyre_errf(err, errlen, "gate report: conf.scorers: not an array of at most %d names", GYRE_LOOP_MAX_SCORERS);
        goto out;
    }
    cJSON_ArrayForEach(x, sc)
    {
        if (!cJSON_IsString(x)) {
            gyre_errf(err, errlen, "gate report: conf.scorers[%zu]: not a string", conf.nscorers);
            goto out;
        }
        scorers[conf.nscorers++] = x->valuestring;
    }
    conf.scorers = scorers;
    const cJSON *rl = cJSON_GetObjectItemCaseSensitive(c, "rules");
    if (!cJSON_IsArray(rl) || cJSON_GetArraySize(rl) > GYRE_LOOP_MAX_RULES) {
        gyre_errf(err, errlen, "gate report: conf.rules: not an array of at most %d rules", GYRE_LOOP_MAX_RULES);
        goto out;
    }
    cJSON_ArrayForEach(x, rl)
    {
        gyre_gate_rule_t *r = &rules[conf.nrules];
        memset(r, 0, sizeof(*r));
        char w[48];
        snprintf(w, sizeof(w), "conf.rules[%zu].", conf.nrules);
        const char *metric = opt_string(x, "metric");
        if (cJSON_GetObjectItemCaseSensitive(x, "cluster_max_drop") != NULL) {
            r->kind = GYRE_GATE_CLUSTER;
            if (get_number(x, "cluster_max_drop", 0, &r->max_drop, err, errlen, w) != 0)
                goto out;
        } else if (metric == NULL) {
            gyre_errf(err, errlen, "gate report: %smetric: not a string", w);
            goto out;
        } else if (strcmp(metric, "cost") == 0 || strcmp(metric, "latency_p95") == 0 ||
                   strcmp(metric, "error_rate") == 0) {
            r->kind = metric[0] == 'c' ? GYRE_GATE_COST : metric[0] == 'l' ? GYRE_GATE_LATENCY_P95 : GYRE_GATE_ERROR_RATE;
            if (get_number(x, "max_increase", 0, &r->max_increase, err, errlen, w) != 0)
                goto out;
        } else {
            r->kind = GYRE_GATE_SCORER;
            r->scorer = (char *)metric;
            if (get_number(x, "max_drop", 0, &r->max_drop, err, errlen, w) != 0)
                goto out;
        }
        conf.nrules++;
    }
    conf.rules = rules;
    double d;
    if (get_number(c, "confidence", 0, &conf.confidence, err, errlen, "conf.") != 0)
        goto out;
    if (!(conf.confidence > 0 && conf.confidence < 1)) {
        gyre_errf(err, errlen, "gate report: conf.confidence: not in (0, 1)");
        goto out;
    }
    if (get_number(c, "resamples", 0, &d, err, errlen, "conf.") != 0)
        goto out;
    if (!(d >= 1 && d <= GYRE_STATS_MAX_RESAMPLES) || d != floor(d)) {
        gyre_errf(err, errlen, "gate report: conf.resamples: not an integer in [1, %u]", GYRE_STATS_MAX_RESAMPLES);
        goto out;
    }
    conf.resamples = (unsigned)d;
    const char *seed = opt_string(c, "seed");
    char *end = NULL;
    errno = 0;
    if (seed == NULL || seed[0] < '0' || seed[0] > '9' || (conf.seed = strtoull(seed, &end, 10), errno != 0) ||
        *end != '\0') {
        gyre_errf(err, errlen, "gate report: conf.seed: not a string of decimal digits");
        goto out;
    }
    const cJSON *ob = cJSON_GetObjectItemCaseSensitive(root, "observations");
    if (!cJSON_IsArray(ob) || cJSON_GetArraySize(ob) > (int)GYRE_GATE_MAX_LINES) {
        gyre_errf(err, errlen, "gate report: observations: not an array of at most %u", GYRE_GATE_MAX_LINES);
        goto out;
    }
    size_t n = (size_t)cJSON_GetArraySize(ob), i = 0;
    obs = gyre_calloc(n ? n : 1, sizeof(*obs));
    cJSON_ArrayForEach(x, ob)
    {
        gyre_gate_obs_t *o = &obs[i];
        char w[64];
        snprintf(w, sizeof(w), "observations[%zu]", i);
        const cJSON *line = cJSON_GetObjectItemCaseSensitive(x, "line");
        const char *cl = opt_string(x, "cluster");
        if (!cJSON_IsNumber(line) || !(line->valuedouble >= 1 && line->valuedouble <= 4294967295.0) ||
            line->valuedouble != floor(line->valuedouble)) {
            gyre_errf(err, errlen, "gate report: %s.line: not a line number", w);
            goto out;
        }
        if (cl == NULL || strlen(cl) >= sizeof(o->cluster)) {
            gyre_errf(err, errlen, "gate report: %s.cluster: not a string of at most %d bytes", w,
                      GYRE_GATE_CLUSTER_NAME - 1);
            goto out;
        }
        o->line = (unsigned)line->valuedouble;
        snprintf(o->cluster, sizeof(o->cluster), "%s", cl);
        char ws[80];
        snprintf(ws, sizeof(ws), "%s.candidate", w);
        if (read_side(cJSON_GetObjectItemCaseSensitive(x, "candidate"), conf.nscorers, &o->cand, err, errlen, ws) != 0)
            goto out;
        snprintf(ws, sizeof(ws), "%s.incumbent", w);
        if (read_side(cJSON_GetObjectItemCaseSensitive(x, "incumbent"), conf.nscorers, &o->inc, err, errlen, ws) != 0)
            goto out;
        i++;
    }
    gyre_gate_input_t in = {.candidate = opt_string(root, "candidate"),
                            .incumbent = opt_string(root, "incumbent"),
                            .dataset = opt_string(root, "dataset"),
                            .cost_source = opt_string(root, "cost_source"),
                            .conf = &conf,
                            .obs = obs,
                            .nobs = n};
    int passed = 0;
    char why[256] = "";
    rc = gyre_gate_decide(&in, NULL, NULL, &passed, why, sizeof(why));
    if (rc != 0) {
        gyre_errf(err, errlen, "gate report: %s", why);
        goto out;
    }
    rc = passed;
    const cJSON *stored = cJSON_GetObjectItemCaseSensitive(root, "passed");
    if (cJSON_IsBool(stored) && cJSON_IsTrue(stored) != passed)
        gyre_errf(err, errlen, "gate report: it says %s, its observations give %s", cJSON_IsTrue(stored) ? "pass" : "fail",
                  passed ? "pass" : "fail");
out:
    free(obs);
    cJSON_Delete(root);
    return rc;
}
