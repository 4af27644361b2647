/* Canary deployments and their watch (deploy.h). */
#include "loop/deploy.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "loop/deploy_int.h"
#include "loop/serve.h"
#include "trace/record.h"

/* Every change to a deployment, from the tick's thread or an API call, is made under this lock: one change at a
 * time, each a read of the row, the route change and the write of the row. */
static pthread_mutex_t dep_lock = PTHREAD_MUTEX_INITIALIZER;
/* The store handle observations are read with (under dep_lock), reopened when the DSN changes. */
static gyre_store_t *obs_store;
static char *obs_dsn;

/* The table, created before each use (cheap, and rare: a tick reads it once a second). */
static const char schema[] = "CREATE TABLE IF NOT EXISTS deployments ("
                             " run_id TEXT PRIMARY KEY,"
                             " route TEXT NOT NULL,"
                             " state TEXT NOT NULL,"
                             " created_us INTEGER NOT NULL,"
                             " updated_us INTEGER NOT NULL,"
                             " doc TEXT NOT NULL);"
                             "CREATE INDEX IF NOT EXISTS deployments_route ON deployments(route, created_us);"
                             "CREATE INDEX IF NOT EXISTS deployments_state ON deployments(state);";

/* ---- The sequential test ---- */

double gyre_deploy_cs_radius(uint64_t n, double alpha)
{
    if (n == 0)
        return INFINITY;
    double v = (double)n / 4.0, rho = GYRE_DEPLOY_CS_N0 / 4.0;
    return sqrt((v + rho) * log((v + rho) / (rho * alpha * alpha))) / (double)n;
}

void gyre_deploy_diff_bounds(const gyre_deploy_arm_t *cand, const gyre_deploy_arm_t *inc, double alpha, double *lo,
                             double *hi)
{
    if (cand->n == 0 || inc->n == 0) {
        *lo = -INFINITY;
        *hi = INFINITY;
        return;
    }
    double mc = cand->sum / (double)cand->n, mi = inc->sum / (double)inc->n;
    double r = gyre_deploy_cs_radius(cand->n, alpha / 2) + gyre_deploy_cs_radius(inc->n, alpha / 2);
    *lo = mc - mi - r;
    *hi = mc - mi + r;
}

gyre_deploy_verdict_t gyre_deploy_decide(const gyre_deploy_conf_t *conf, const gyre_deploy_obs_t *o,
                                         const char *const *signal_names, int64_t elapsed_us, int alert_firing,
                                         const char *alert_rule, char *why, size_t whylen)
{
    if (alert_firing && conf->rollback_on_alert) {
        snprintf(why, whylen, "alert '%s' fires on the route", alert_rule != NULL ? alert_rule : "?");
        return GYRE_DEPLOY_ROLLBACK;
    }
    int shown = o->cand[0].n >= conf->min_requests && o->inc[0].n >= conf->min_requests;
    for (size_t s = 0; s < o->nsignals; s++) {
        double lo, hi;
        gyre_deploy_diff_bounds(&o->cand[s], &o->inc[s], conf->alpha, &lo, &hi);
        if (hi < -conf->max_drop) {
            snprintf(why, whylen,
                     "%s: the candidate is worse: candidate - incumbent in [%.4f, %.4f] (n %" PRIu64 " and %" PRIu64
                     "), below -%g",
                     signal_names[s], lo, hi, o->cand[s].n, o->inc[s].n, conf->max_drop);
            return GYRE_DEPLOY_ROLLBACK;
        }
        /* A scorer with no values on an arm (not sampled yet) neither blocks nor shows anything; the error rate
         * always has values. */
        if ((s == 0 || (o->cand[s].n > 0 && o->inc[s].n > 0)) && lo < -conf->max_drop)
            shown = 0;
    }
    /* The candidate's share of the calls is a mean in [0, 1] too: its upper bound below half its weight shows it
     * is kept from being called. */
    uint64_t total = o->cand[0].n + o->inc[0].n;
    if (o->percent > 0 && o->percent < 100 && total > 0 &&
        (double)o->cand[0].n / (double)total + gyre_deploy_cs_radius(total, conf->alpha) < o->percent / 200.0) {
        snprintf(why, whylen,
                 "the candidate took %" PRIu64 " of %" PRIu64 " calls, shown below half its %u %%: it is not "
                 "answering (an open breaker, a refused key?)",
                 o->cand[0].n, total, o->percent);
        return GYRE_DEPLOY_ROLLBACK;
    }
    if (shown) {
        snprintf(why, whylen,
                 "shown not worse than the incumbent by more than %g on every signal (n %" PRIu64 " and %" PRIu64 ")",
                 conf->max_drop, o->cand[0].n, o->inc[0].n);
        return GYRE_DEPLOY_PROMOTE;
    }
    if (elapsed_us >= (int64_t)conf->step_time_ms * 1000) {
        snprintf(why, whylen,
                 "the step ran its %" PRIu64 " ms and nothing showed the candidate worse (n %" PRIu64 " and %" PRIu64
                 ")",
                 conf->step_time_ms, o->cand[0].n, o->inc[0].n);
        return GYRE_DEPLOY_PROMOTE;
    }
    if (whylen)
        why[0] = '\0';
    return GYRE_DEPLOY_HOLD;
}

/* ---- The row ---- */

static int ensure(gyre_state_t *st, char *err, size_t errlen)
{
    return gyre_state_exec(st, schema, err, errlen);
}

static int save(gyre_state_t *st, cJSON *doc, char *err, size_t errlen)
{
    char *text = cJSON_PrintUnformatted(doc);
    if (text == NULL) {
        snprintf(err, errlen, "deploy: out of memory");
        return -ENOMEM;
    }
    const cJSON *began = cJSON_GetObjectItemCaseSensitive(doc, "began_us");
    sqlite3 *db = gyre_state_lock(st);
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "INSERT INTO deployments(run_id, route, state, created_us, updated_us, doc) "
                                "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(run_id) DO UPDATE SET "
                                "state = excluded.state, updated_us = excluded.updated_us, doc = excluded.doc",
                                -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(s, 1, cJSON_GetObjectItemCaseSensitive(doc, "run_id")->valuestring, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 2, cJSON_GetObjectItemCaseSensitive(doc, "route")->valuestring, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 3, cJSON_GetObjectItemCaseSensitive(doc, "state")->valuestring, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 4, (sqlite3_int64)began->valuedouble);
        sqlite3_bind_int64(s, 5, gyre_trace_now_us());
        sqlite3_bind_text(s, 6, text, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    if (rc != SQLITE_OK)
        snprintf(err, errlen, "deploy: the state database: %s", sqlite3_errmsg(db));
    sqlite3_finalize(s);
    gyre_state_unlock(st);
    cJSON_free(text);
    return rc == SQLITE_OK ? 0 : -EIO;
}

/* Deployments as parsed documents: `where` is a condition on route/state/run_id with ?1 bound to `arg` (may be
 * NULL when the condition has none), newest first. */
static size_t load(gyre_state_t *st, const char *where, const char *arg, cJSON **out, size_t max)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT doc FROM deployments WHERE %s ORDER BY created_us DESC, rowid DESC", where);
    sqlite3 *db = gyre_state_lock(st);
    sqlite3_stmt *s = NULL;
    size_t n = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK) {
        if (arg != NULL)
            sqlite3_bind_text(s, 1, arg, -1, SQLITE_TRANSIENT);
        while (n < max && sqlite3_step(s) == SQLITE_ROW) {
            const char *t = (const char *)sqlite3_column_text(s, 0);
            cJSON *d = t != NULL ? cJSON_Parse(t) : NULL;
            if (d != NULL)
                out[n++] = d;
        }
    }
    sqlite3_finalize(s);
    gyre_state_unlock(st);
    return n;
}

static const char *str(const cJSON *d, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static double numv(const cJSON *d, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* `n` under key `k` of `d`, in place of the one there (so the JSON keeps its order) or added.  A value neither call
 * attached is deleted: cJSON (1.7.15) gives a replacement its key before it looks for the item to replace, and
 * neither call frees what it did not attach, so such a value and its key would leak. */
static void set_item(cJSON *d, const char *k, cJSON *n)
{
    if (n == NULL)
        return;
    int attached = cJSON_GetObjectItemCaseSensitive(d, k) != NULL ? cJSON_ReplaceItemInObjectCaseSensitive(d, k, n)
                                                                   : cJSON_AddItemToObject(d, k, n);
    if (!attached)
        cJSON_Delete(n);
}

static void set_num(cJSON *d, const char *k, double v)
{
    set_item(d, k, cJSON_CreateNumber(v));
}

static void set_str(cJSON *d, const char *k, const char *v)
{
    set_item(d, k, cJSON_CreateString(v));
}

/* The deploy section back from a document; metric names point into it. */
static void conf_of(const cJSON *d, gyre_deploy_conf_t *c, const char **names, size_t max)
{
    memset(c, 0, sizeof(*c));
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(d, "ramp")) if (c->nramp < GYRE_LOOP_MAX_RAMP)
        c->ramp[c->nramp++] = (unsigned)e->valuedouble;
    c->min_requests = (unsigned)numv(d, "min_requests");
    c->step_time_ms = (uint64_t)numv(d, "step_time_ms");
    c->max_drop = numv(d, "max_drop");
    c->alpha = numv(d, "alpha");
    c->rollback_on_alert = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "rollback_on_alert"));
    size_t n = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(d, "metrics")) if (n < max && cJSON_IsString(e)) names[n++] =
        e->valuestring;
    c->metrics = (char **)names;
    c->nmetrics = n;
}

static void serve_of(const cJSON *d, gyre_serve_conf_t *s)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(d, "adapter");
    const char *kind = str(a, "kind");
    s->adapter = strcmp(kind, "vllm") == 0       ? GYRE_ADAPTER_VLLM
                 : strcmp(kind, "llamacpp") == 0 ? GYRE_ADAPTER_LLAMACPP
                                                 : GYRE_ADAPTER_NONE;
    s->provider = (char *)str(a, "provider");
    s->name = (char *)str(a, "name");
}

static void decision(cJSON *d, int64_t now_us, const char *action, const char *actor, const char *why, cJSON *obs)
{
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(d, "decisions");
    /* A row without its list (written by hand, or cut short) gets one: the decision would be lost otherwise, and
     * adding to no array frees nothing, so the entry and its observations would leak. */
    if (!cJSON_IsArray(arr)) {
        cJSON_DeleteItemFromObjectCaseSensitive(d, "decisions");
        arr = cJSON_AddArrayToObject(d, "decisions");
    }
    while (cJSON_GetArraySize(arr) >= GYRE_DEPLOY_MAX_DECISIONS)
        cJSON_DeleteItemFromArray(arr, 0);
    cJSON *e = cJSON_CreateObject();
    if (e == NULL) {
        cJSON_Delete(obs);
        return;
    }
    cJSON_AddNumberToObject(e, "at_us", (double)now_us);
    cJSON_AddNumberToObject(e, "step", numv(d, "step"));
    cJSON_AddNumberToObject(e, "percent", numv(d, "percent"));
    cJSON_AddStringToObject(e, "action", action);
    cJSON_AddStringToObject(e, "actor", actor);
    cJSON_AddStringToObject(e, "why", why != NULL ? why : "");
    if (obs != NULL && !cJSON_AddItemToObject(e, "observations", obs))
        cJSON_Delete(obs);
    if (!cJSON_AddItemToArray(arr, e))
        cJSON_Delete(e);
}

/* ---- Route changes ---- */

static cJSON *target(const char *provider, const char *model, double weight)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "provider", provider);
    cJSON_AddStringToObject(t, "model", model);
    cJSON_AddNumberToObject(t, "weight", weight);
    return t;
}

static int same_target(const cJSON *t, const char *provider, const char *model)
{
    return strcmp(str(t, "provider"), provider) == 0 && strcmp(str(t, "model"), model) == 0;
}

/* The route with the candidate at `percent`: below 100 the incumbent's targets keep their shares of 100 - p and
 * the candidate has p, strategy weighted; at 100 the candidate alone, the incumbent's targets (then its
 * fallbacks) as the fallbacks. */
static char *route_at(const cJSON *incumbent, const char *route, const char *provider, const char *model,
                      unsigned percent)
{
    cJSON *r = cJSON_Duplicate(incumbent, 1);
    if (r == NULL)
        return NULL; /* no incumbent route (or no memory): nothing below could be attached to it */
    set_str(r, "name", route);
    const cJSON *old = cJSON_GetObjectItemCaseSensitive(incumbent, "targets");
    cJSON *targets = cJSON_CreateArray();
    const cJSON *t;
    if (percent >= 100) {
        cJSON_AddItemToArray(targets, target(provider, model, 1));
        cJSON *fb = cJSON_CreateArray();
        cJSON_ArrayForEach(t, old) if (!same_target(t, provider, model))
            cJSON_AddItemToArray(fb, cJSON_Duplicate(t, 1));
        cJSON_ArrayForEach(
            t, cJSON_GetObjectItemCaseSensitive(incumbent, "fallbacks")) if (!same_target(t, provider, model))
            cJSON_AddItemToArray(fb, cJSON_Duplicate(t, 1));
        cJSON_DeleteItemFromObjectCaseSensitive(r, "fallbacks");
        if (cJSON_GetArraySize(fb) > 0)
            cJSON_AddItemToObject(r, "fallbacks", fb);
        else
            cJSON_Delete(fb);
    } else {
        double total = 0;
        cJSON_ArrayForEach(t, old) if (!same_target(t, provider, model))
        {
            const cJSON *w = cJSON_GetObjectItemCaseSensitive(t, "weight");
            double wv = cJSON_IsNumber(w) ? w->valuedouble : 1;
            total += wv;
            cJSON *c = cJSON_Duplicate(t, 1);
            set_num(c, "weight", wv * (100 - percent));
            cJSON_AddItemToArray(targets, c);
        }
        cJSON_AddItemToArray(targets, target(provider, model, (total > 0 ? total : 1) * percent));
        set_str(r, "strategy", "weighted");
    }
    /* In place when the incumbent has targets (a route always has), so the JSON reads in the same order. */
    set_item(r, "targets", targets);
    char *s = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    return s;
}

char *gyre_deploy_route_at(const char *incumbent_json, size_t len, const char *route, const char *provider,
                           const char *model, unsigned percent)
{
    cJSON *inc = cJSON_ParseWithLength(incumbent_json, len);
    char *r = cJSON_IsObject(inc) ? route_at(inc, route, provider, model, percent) : NULL;
    cJSON_Delete(inc);
    return r;
}

/* Puts the route at ramp step `step` in force. */
static int apply_step(const gyre_deploy_host_t *h, cJSON *d, unsigned step, const char *actor, const char *action,
                      char *err, size_t errlen)
{
    gyre_deploy_conf_t c;
    const char *names[GYRE_LOOP_MAX_SCORERS];
    conf_of(d, &c, names, GYRE_LOOP_MAX_SCORERS);
    if (step >= c.nramp)
        step = (unsigned)c.nramp - 1;
    const cJSON *inc = cJSON_GetObjectItemCaseSensitive(d, "incumbent");
    if (!cJSON_IsObject(inc)) {
        snprintf(err, errlen, "incumbent: the deployment of run %s has no incumbent route to ramp from",
                 str(d, "run_id"));
        return -EPROTO;
    }
    char *json = route_at(inc, str(d, "route"), str(d, "provider"), str(d, "model"), c.ramp[step]);
    int r = json != NULL ? h->set_route(h->ctx, actor, action, str(d, "route"), json, err, errlen) : -ENOMEM;
    cJSON_free(json);
    if (r == 0) {
        set_num(d, "step", step);
        set_num(d, "percent", c.ramp[step]);
    }
    return r;
}

static void end_state(cJSON *d, const char *state, int64_t now_us)
{
    set_str(d, "state", state);
    set_num(d, "ended_us", (double)now_us);
}

/* The route as it was, the adapter unloaded; the deployment rolled back. */
static int do_rollback(const gyre_deploy_host_t *h, cJSON *d, int64_t now_us, const char *actor, const char *why,
                       cJSON *obs, char *err, size_t errlen)
{
    int r;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "incumbent_overlay"))) {
        char *json = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(d, "incumbent"));
        r = h->set_route(h->ctx, actor, "deploy.rollback", str(d, "route"), json, err, errlen);
        cJSON_free(json);
    } else {
        r = h->set_route(h->ctx, actor, "deploy.rollback", str(d, "route"), NULL, err, errlen);
        if (r == -ENOENT)
            r = 0; /* the overlay is gone already: the file's route is in force */
    }
    if (r != 0) {
        cJSON_Delete(obs);
        return r;
    }
    char text[1024];
    snprintf(text, sizeof(text), "%s", why != NULL ? why : "");
    gyre_serve_conf_t sv;
    serve_of(d, &sv);
    if (sv.adapter != GYRE_ADAPTER_NONE && h->config != NULL) {
        char msg[512];
        const char *name = sv.adapter == GYRE_ADAPTER_LLAMACPP ? str(d, "artifact") : str(d, "model");
        if (gyre_serve_unload(h->config(h->ctx), &sv, name, msg, sizeof(msg)) != 0)
            snprintf(text + strlen(text), sizeof(text) - strlen(text), "%sthe adapter stays loaded: %s",
                     text[0] ? "; " : "", msg);
        else
            cJSON_AddBoolToObject(d, "adapter_unloaded", 1);
    }
    decision(d, now_us, "rollback", actor, text, obs);
    end_state(d, "rolled_back", now_us);
    return 0;
}

/* A tick's failure, logged when it changes: the same one each second (no store, a locked database) is said once. */
static char last_logged[512];

static void log_change(const char *run, const char *what, const char *err)
{
    char line[512];
    snprintf(line, sizeof(line), "gyre: deploy %s: %s: %s\n", run, what, err);
    if (strcmp(line, last_logged) == 0)
        return;
    snprintf(last_logged, sizeof(last_logged), "%s", line);
    gyre_logf("%s", line);
}

/* ---- Observations ---- */

static gyre_store_t *store_for(const gyre_deploy_host_t *h, char *err, size_t errlen)
{
    if (h->store_dsn == NULL) {
        snprintf(err, errlen, "deploy: no trace store is configured, so nothing can be observed");
        return NULL;
    }
    if (obs_store != NULL && obs_dsn != NULL && strcmp(obs_dsn, h->store_dsn) == 0)
        return obs_store;
    if (obs_store != NULL)
        gyre_store_close(obs_store);
    free(obs_dsn);
    obs_store = NULL;
    obs_dsn = NULL;
    if (gyre_store_open(h->store_dsn, 0, &obs_store, err, errlen) != 0)
        return NULL;
    obs_dsn = gyre_strdup(h->store_dsn);
    return obs_store;
}

static cJSON *obs_json(const gyre_deploy_obs_t *o, const char *const *names, double alpha)
{
    cJSON *j = cJSON_CreateObject();
    for (size_t s = 0; s < o->nsignals; s++) {
        double lo, hi;
        gyre_deploy_diff_bounds(&o->cand[s], &o->inc[s], alpha, &lo, &hi);
        cJSON *e = cJSON_AddObjectToObject(j, names[s]);
        cJSON_AddNumberToObject(e, "candidate_n", (double)o->cand[s].n);
        cJSON_AddNumberToObject(e, "incumbent_n", (double)o->inc[s].n);
        if (o->cand[s].n)
            cJSON_AddNumberToObject(e, "candidate_mean", o->cand[s].sum / (double)o->cand[s].n);
        if (o->inc[s].n)
            cJSON_AddNumberToObject(e, "incumbent_mean", o->inc[s].sum / (double)o->inc[s].n);
        if (isfinite(lo)) {
            cJSON_AddNumberToObject(e, "lo", lo);
            cJSON_AddNumberToObject(e, "hi", hi);
        }
    }
    return j;
}

/* ---- Steps ---- */

/* One canary step's decision and what follows from it. */
static void tick_canary(const gyre_deploy_host_t *h, cJSON *d, int64_t now_us)
{
    gyre_deploy_conf_t c;
    const char *names[1 + GYRE_LOOP_MAX_SCORERS];
    conf_of(d, &c, names + 1, GYRE_LOOP_MAX_SCORERS);
    names[0] = "error";
    char err[512], why[1024], rule[128] = "";
    int64_t started = (int64_t)numv(d, "step_started_us");
    gyre_store_t *s = store_for(h, err, sizeof(err));
    gyre_deploy_trace_t *t = NULL;
    size_t n = 0;
    if (s == NULL || gyre_deploy_collect(s, str(d, "route"), str(d, "provider"), str(d, "model"), started, now_us + 1,
                                         names + 1, c.nmetrics, 0, &t, &n, err, sizeof(err)) != 0) {
        log_change(str(d, "run_id"), "observations", err);
        return;
    }
    gyre_deploy_obs_t o;
    gyre_deploy_observe(t, n, c.nmetrics, &o);
    o.percent = (unsigned)numv(d, "percent");
    free(t);
    int alert = h->alert_firing != NULL && h->alert_firing(h->ctx, str(d, "route"), rule, sizeof(rule)) == 1;
    gyre_deploy_verdict_t v = gyre_deploy_decide(&c, &o, names, now_us - started, alert, rule, why, sizeof(why));
    char actor[300];
    snprintf(actor, sizeof(actor), "loop:%s", str(d, "run_id"));
    if (v == GYRE_DEPLOY_ROLLBACK) {
        if (do_rollback(h, d, now_us, actor, why, obs_json(&o, names, c.alpha), err, sizeof(err)) != 0)
            log_change(str(d, "run_id"), "rollback", err);
        else if (h->notify != NULL) {
            char title[512];
            snprintf(title, sizeof(title), "gyre rolled back the canary of %s on route %s", str(d, "model"),
                     str(d, "route"));
            h->notify(h->ctx, title, why);
        }
    } else if (v == GYRE_DEPLOY_PROMOTE) {
        unsigned step = (unsigned)numv(d, "step") + 1;
        if (apply_step(h, d, step, actor, "deploy.promote", err, sizeof(err)) != 0) {
            log_change(str(d, "run_id"), "promote", err);
            return;
        }
        set_num(d, "step_started_us", (double)now_us);
        decision(d, now_us, "promote", actor, why, obs_json(&o, names, c.alpha));
        if (numv(d, "percent") >= 100) {
            set_num(d, "promoted_us", (double)now_us);
            set_str(d, "state", "promoted");
            if (numv(d, "watch_window_ms") <= 0) {
                decision(d, now_us, "done", actor, "no watch window", NULL);
                end_state(d, "done", now_us);
            }
        }
    }
}

/* After 100 %: the watch's report once its window has passed. */
static void tick_watch(const gyre_deploy_host_t *h, cJSON *d, int64_t now_us)
{
    gyre_deploy_conf_t c;
    const char *names[GYRE_LOOP_MAX_SCORERS];
    conf_of(d, &c, names, GYRE_LOOP_MAX_SCORERS);
    char err[512], why[1024], rule[128] = "", actor[300];
    snprintf(actor, sizeof(actor), "loop:%s", str(d, "run_id"));
    if (c.rollback_on_alert && h->alert_firing != NULL &&
        h->alert_firing(h->ctx, str(d, "route"), rule, sizeof(rule)) == 1) {
        snprintf(why, sizeof(why), "alert '%s' fires on the route while it is watched", rule);
        if (do_rollback(h, d, now_us, actor, why, NULL, err, sizeof(err)) != 0)
            log_change(str(d, "run_id"), "rollback", err);
        return;
    }
    int64_t window = (int64_t)numv(d, "watch_window_ms") * 1000;
    int64_t promoted = (int64_t)numv(d, "promoted_us"), began = (int64_t)numv(d, "began_us");
    if (now_us < promoted + window)
        return;
    gyre_store_t *s = store_for(h, err, sizeof(err));
    gyre_deploy_trace_t *before = NULL, *after = NULL;
    size_t nb = 0, na = 0;
    if (s == NULL ||
        gyre_deploy_collect(s, str(d, "route"), str(d, "provider"), str(d, "model"), began - window, began, names,
                            c.nmetrics, 1, &before, &nb, err, sizeof(err)) != 0 ||
        gyre_deploy_collect(s, str(d, "route"), str(d, "provider"), str(d, "model"), promoted, promoted + window, names,
                            c.nmetrics, 1, &after, &na, err, sizeof(err)) != 0) {
        free(before);
        log_change(str(d, "run_id"), "watch", err);
        return;
    }
    int regressed = 0;
    cJSON *report = gyre_deploy_watch_report(before, nb, after, na, names, c.nmetrics, c.alpha, c.max_drop, &regressed,
                                             why, sizeof(why));
    free(before);
    free(after);
    cJSON_DeleteItemFromObjectCaseSensitive(d, "report");
    cJSON_AddItemToObject(d, "report", report);
    if (!regressed) {
        decision(d, now_us, "done", actor, "the watch window passed with no regression", NULL);
        end_state(d, "done", now_us);
        return;
    }
    if (h->notify != NULL) {
        char title[512];
        snprintf(title, sizeof(title), "gyre: %s regressed on route %s after its promotion; rolling back",
                 str(d, "model"), str(d, "route"));
        h->notify(h->ctx, title, why);
    }
    if (do_rollback(h, d, now_us, actor, why, NULL, err, sizeof(err)) != 0)
        log_change(str(d, "run_id"), "rollback", err);
}

void gyre_deploy_tick(const gyre_deploy_host_t *h, int64_t now_us)
{
    if (h->state == NULL)
        return;
    char err[512];
    pthread_mutex_lock(&dep_lock);
    if (ensure(h->state, err, sizeof(err)) != 0) {
        pthread_mutex_unlock(&dep_lock);
        return;
    }
    cJSON *docs[64];
    size_t n = load(h->state, "state IN ('canary', 'promoted')", NULL, docs, 64);
    for (size_t i = 0; i < n; i++) {
        char before[16];
        snprintf(before, sizeof(before), "%s", str(docs[i], "state"));
        double step = numv(docs[i], "step");
        size_t ndec = (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(docs[i], "decisions"));
        if (strcmp(before, "canary") == 0)
            tick_canary(h, docs[i], now_us);
        else
            tick_watch(h, docs[i], now_us);
        /* A held step changes nothing: only a decision is written. */
        if (strcmp(before, str(docs[i], "state")) != 0 || step != numv(docs[i], "step") ||
            ndec != (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(docs[i], "decisions")) ||
            cJSON_GetObjectItemCaseSensitive(docs[i], "report") != NULL)
            if (save(h->state, docs[i], err, sizeof(err)) != 0)
                log_change(str(docs[i], "run_id"), "saving", err);
        cJSON_Delete(docs[i]);
    }
    pthread_mutex_unlock(&dep_lock);
}

/* ---- The calls ---- */

static int check_name(const char *what, const char *v, size_t max, char *err, size_t errlen)
{
    if (v == NULL || v[0] == '\0' || strlen(v) > max) {
        snprintf(err, errlen, "%s: must be a non-empty string of at most %zu bytes", what, max);
        return -EINVAL;
    }
    return 0;
}

int gyre_deploy_begin_watch(const gyre_deploy_host_t *h, const gyre_deploy_conf_t *conf, uint64_t watch_window_ms,
                            const char *route, const char *run_id, const char *candidate_provider,
                            const char *candidate_model, const gyre_serve_conf_t *serve, char *err, size_t errlen)
{
    if (h->state == NULL) {
        snprintf(err, errlen, "deployments are kept in the control-plane state, and none is configured (state: PATH)");
        return -ENOTSUP;
    }
    if (check_name("route", route, 256, err, errlen) != 0 || check_name("run_id", run_id, 128, err, errlen) != 0 ||
        check_name("provider", candidate_provider, 256, err, errlen) != 0 ||
        check_name("model", candidate_model, 1024, err, errlen) != 0)
        return -EINVAL;
    if (conf->nramp == 0 || conf->nramp > GYRE_LOOP_MAX_RAMP || conf->ramp[conf->nramp - 1] != 100) {
        snprintf(err, errlen, "ramp: must be 1 to %d increasing percentages ending in 100", GYRE_LOOP_MAX_RAMP);
        return -EINVAL;
    }
    for (size_t i = 0; i < conf->nramp; i++)
        if (conf->ramp[i] == 0 || conf->ramp[i] > 100 || (i > 0 && conf->ramp[i] <= conf->ramp[i - 1])) {
            snprintf(err, errlen, "ramp[%zu]: must be above the step before it, from 1 to 100", i);
            return -EINVAL;
        }
    if (!(conf->alpha > 0 && conf->alpha < 1) || !(conf->max_drop >= 0 && conf->max_drop <= 1) ||
        conf->nmetrics > GYRE_LOOP_MAX_SCORERS) {
        snprintf(err, errlen, "%s",
                 !(conf->alpha > 0 && conf->alpha < 1)    ? "alpha: must be in (0, 1)"
                 : conf->nmetrics > GYRE_LOOP_MAX_SCORERS ? "metrics: too many"
                                                          : "max_drop: must be in [0, 1]");
        return -EINVAL;
    }
    int r = 0;
    pthread_mutex_lock(&dep_lock);
    cJSON *docs[1] = {NULL};
    char *incumbent = NULL;
    cJSON *d = NULL;
    if ((r = ensure(h->state, err, errlen)) != 0)
        goto out;
    if (load(h->state, "route = ?1 AND state IN ('canary', 'promoted')", route, docs, 1) == 1) {
        snprintf(err, errlen, "route '%s' has a deployment in progress (run %s): promote or roll it back first", route,
                 str(docs[0], "run_id"));
        r = -EBUSY;
        goto out;
    }
    cJSON_Delete(docs[0]);
    docs[0] = NULL;
    if (load(h->state, "run_id = ?1", run_id, docs, 1) == 1) {
        snprintf(err, errlen, "run_id: '%s' has a deployment already", run_id);
        r = -EEXIST;
        goto out;
    }
    if ((incumbent = h->route_json(h->ctx, route)) == NULL) {
        snprintf(err, errlen, "route: no route is named '%s'", route);
        r = -ENOENT;
        goto out;
    }
    char model[1024];
    snprintf(model, sizeof(model), "%s", candidate_model);
    gyre_serve_conf_t none = {0};
    if (serve == NULL)
        serve = &none;
    char name[300];
    snprintf(name, sizeof(name), "%s", serve->name != NULL && serve->name[0] ? serve->name : "");
    if (name[0] == '\0')
        snprintf(name, sizeof(name), "gyre-%s", run_id);
    if (serve->adapter != GYRE_ADAPTER_NONE && h->config == NULL) {
        snprintf(err, errlen, "adapter: this host cannot load adapters (it has no configuration)");
        r = -ENOTSUP;
        goto out;
    }
    if (serve->adapter != GYRE_ADAPTER_NONE &&
        (r = gyre_serve_load(h->config(h->ctx), serve, candidate_model, name, model, sizeof(model), err, errlen)) != 0)
        goto out;
    int64_t now = gyre_trace_now_us();
    d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "run_id", run_id);
    cJSON_AddStringToObject(d, "route", route);
    cJSON_AddStringToObject(d, "state", "canary");
    cJSON_AddStringToObject(d, "provider", candidate_provider);
    cJSON_AddStringToObject(d, "model", model);
    cJSON_AddStringToObject(d, "artifact", candidate_model);
    cJSON *ad = cJSON_AddObjectToObject(d, "adapter");
    cJSON_AddStringToObject(ad, "kind",
                            serve->adapter == GYRE_ADAPTER_VLLM       ? "vllm"
                            : serve->adapter == GYRE_ADAPTER_LLAMACPP ? "llamacpp"
                                                                      : "none");
    cJSON_AddStringToObject(ad, "provider", serve->provider != NULL ? serve->provider : candidate_provider);
    cJSON_AddStringToObject(ad, "name", serve->adapter != GYRE_ADAPTER_NONE ? name : "");
    cJSON *ramp = cJSON_AddArrayToObject(d, "ramp");
    for (size_t i = 0; i < conf->nramp; i++)
        cJSON_AddItemToArray(ramp, cJSON_CreateNumber(conf->ramp[i]));
    cJSON_AddNumberToObject(d, "min_requests", conf->min_requests);
    cJSON_AddNumberToObject(d, "step_time_ms", (double)conf->step_time_ms);
    cJSON *ms = cJSON_AddArrayToObject(d, "metrics");
    for (size_t i = 0; i < conf->nmetrics; i++)
        cJSON_AddItemToArray(ms, cJSON_CreateString(conf->metrics[i]));
    cJSON_AddNumberToObject(d, "max_drop", conf->max_drop);
    cJSON_AddNumberToObject(d, "alpha", conf->alpha);
    cJSON_AddBoolToObject(d, "rollback_on_alert", conf->rollback_on_alert);
    cJSON_AddNumberToObject(d, "watch_window_ms", (double)watch_window_ms);
    cJSON *inc = cJSON_Parse(incumbent);
    cJSON_AddItemToObject(d, "incumbent", inc != NULL ? inc : cJSON_CreateObject());
    cJSON_AddBoolToObject(d, "incumbent_overlay", h->route_overridden != NULL && h->route_overridden(h->ctx, route));
    cJSON_AddNumberToObject(d, "step", 0);
    cJSON_AddNumberToObject(d, "percent", conf->ramp[0]);
    cJSON_AddNumberToObject(d, "began_us", (double)now);
    cJSON_AddNumberToObject(d, "step_started_us", (double)now);
    cJSON_AddNullToObject(d, "promoted_us");
    cJSON_AddNullToObject(d, "ended_us");
    cJSON_AddArrayToObject(d, "decisions");
    char actor[300];
    snprintf(actor, sizeof(actor), "loop:%s", run_id);
    if ((r = apply_step(h, d, 0, actor, "deploy.canary", err, errlen)) != 0) {
        char msg[256];
        if (serve->adapter != GYRE_ADAPTER_NONE)
            gyre_serve_unload(h->config(h->ctx), serve,
                              serve->adapter == GYRE_ADAPTER_LLAMACPP ? candidate_model : name, msg, sizeof(msg));
        goto out;
    }
    decision(d, now, "begin", actor, "the candidate's first ramp step", NULL);
    r = save(h->state, d, err, errlen);
out:
    cJSON_Delete(docs[0]);
    cJSON_Delete(d);
    free(incumbent);
    pthread_mutex_unlock(&dep_lock);
    return r;
}

int gyre_deploy_begin(const gyre_deploy_host_t *h, const gyre_deploy_conf_t *conf, const char *route,
                      const char *run_id, const char *candidate_provider, const char *candidate_model,
                      const gyre_serve_conf_t *serve, char *err, size_t errlen)
{
    return gyre_deploy_begin_watch(h, conf, 3600000, route, run_id, candidate_provider, candidate_model, serve, err,
                                   errlen);
}

int gyre_deploy_status_json(const gyre_deploy_host_t *h, const char *route, gyre_buf_t *out)
{
    char err[256];
    if (h->state == NULL)
        return -ENOTSUP;
    pthread_mutex_lock(&dep_lock);
    if (ensure(h->state, err, sizeof(err)) != 0) {
        pthread_mutex_unlock(&dep_lock);
        return -EIO;
    }
    cJSON *docs[100];
    size_t n = route != NULL ? load(h->state, "route = ?1", route, docs, 100) : load(h->state, "1", NULL, docs, 100);
    pthread_mutex_unlock(&dep_lock);
    gyre_buf_appends(out, "{\"deployments\":[");
    for (size_t i = 0; i < n; i++) {
        char *t = cJSON_PrintUnformatted(docs[i]);
        if (i)
            gyre_buf_appends(out, ",");
        gyre_buf_appends(out, t != NULL ? t : "null");
        cJSON_free(t);
        cJSON_Delete(docs[i]);
    }
    gyre_buf_appends(out, "]}");
    return gyre_buf_failed(out) ? -E2BIG : 0;
}

int gyre_deploy_promote(const gyre_deploy_host_t *h, const char *route, const char *actor, char *err, size_t errlen)
{
    if (h->state == NULL)
        return -ENOTSUP;
    pthread_mutex_lock(&dep_lock);
    cJSON *d = NULL;
    int r = ensure(h->state, err, errlen);
    if (r == 0 && load(h->state, "route = ?1 AND state IN ('canary', 'promoted')", route, &d, 1) != 1) {
        snprintf(err, errlen, "route '%s' has no deployment in progress", route);
        r = -ENOENT;
    }
    int64_t now = gyre_trace_now_us();
    if (r == 0 && strcmp(str(d, "state"), "promoted") == 0) {
        decision(d, now, "done", actor, "promoted by hand: the watch ended", NULL);
        end_state(d, "done", now);
    } else if (r == 0 &&
               (r = apply_step(h, d, (unsigned)numv(d, "step") + 1, actor, "deploy.promote", err, errlen)) == 0) {
        set_num(d, "step_started_us", (double)now);
        decision(d, now, "promote", actor, "promoted by hand", NULL);
        if (numv(d, "percent") >= 100) {
            set_num(d, "promoted_us", (double)now);
            set_str(d, "state", "promoted");
            if (numv(d, "watch_window_ms") <= 0)
                end_state(d, "done", now);
        }
    }
    if (r == 0)
        r = save(h->state, d, err, errlen);
    cJSON_Delete(d);
    pthread_mutex_unlock(&dep_lock);
    return r;
}

int gyre_deploy_rollback(const gyre_deploy_host_t *h, const char *route, const char *actor, const char *reason,
                         char *err, size_t errlen)
{
    if (h->state == NULL)
        return -ENOTSUP;
    pthread_mutex_lock(&dep_lock);
    cJSON *d = NULL;
    int r = ensure(h->state, err, errlen);
    /* The newest deployment of the route, unless it ended already by a rollback. */
    if (r == 0 && (load(h->state, "route = ?1", route, &d, 1) != 1 || strcmp(str(d, "state"), "rolled_back") == 0)) {
        snprintf(err, errlen, "route '%s' has no deployment to roll back", route);
        r = -ENOENT;
    }
    char why[600];
    snprintf(why, sizeof(why), "rolled back by hand%s%.500s", reason != NULL && reason[0] ? ": " : "",
             reason != NULL ? reason : "");
    if (r == 0)
        r = do_rollback(h, d, gyre_trace_now_us(), actor, why, NULL, err, errlen);
    if (r == 0)
        r = save(h->state, d, err, errlen);
    cJSON_Delete(d);
    pthread_mutex_unlock(&dep_lock);
    return r;
}

int gyre_deploy_run_state(const gyre_deploy_host_t *h, const char *run_id, char *state, size_t size, gyre_buf_t *json)
{
    if (h->state == NULL)
        return -ENOTSUP;
    char err[256];
    pthread_mutex_lock(&dep_lock);
    cJSON *d = NULL;
    int r = ensure(h->state, err, sizeof(err)) != 0             ? -EIO
            : load(h->state, "run_id = ?1", run_id, &d, 1) == 1 ? 0
                                                                : -ENOENT;
    pthread_mutex_unlock(&dep_lock);
    if (r == 0) {
        snprintf(state, size, "%s", str(d, "state"));
        if (json != NULL) {
            char *t = cJSON_PrintUnformatted(d);
            gyre_buf_appends(json, t != NULL ? t : "null");
            cJSON_free(t);
        }
    }
    cJSON_Delete(d);
    return r;
}
