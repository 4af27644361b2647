/* The scoring runtime (see score.h): compiled scorers, the online queue and its threads, the metrics. */
#include "loop/score.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/rand.h"
#include "loop/heuristic.h"
#include "store/backend.h"
#include "trace/record.h"

/* A session's other calls shown to a judge: at most this many, and this many bytes (the section is cut
 * further, judge.h). */
#define TRAJECTORY_CALLS 64
#define TRAJECTORY_BYTES (64u * 1024)

/* ---- The compiled set ---- */

struct gyre_scorer_set {
    gyre_config_t *copy; /* holds the scorer confs (only scorers: copied field by field below) */
    gyre_scorer_conf_t *confs;
    gyre_heuristic_t **heuristics; /* NULL for a judge */
    size_t n;
    unsigned *inflight; /* judge calls now per scorer (under the runtime's lock) */
    unsigned refs;      /* the runtime's and each thread's holding it (under the runtime's lock) */
};

static char **dup_strv(char *const *v, size_t n)
{
    char **out = gyre_calloc(n ? n : 1, sizeof(*out));
    for (size_t i = 0; i < n; i++)
        out[i] = v[i] != NULL ? gyre_strdup(v[i]) : NULL;
    return out;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        free(v[i]);
    free(v);
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? gyre_strdup(s) : NULL;
}

/* A deep copy of one scorer's conf, so that a set outlives the config it came from (a reload frees it). */
static void conf_copy(gyre_scorer_conf_t *d, const gyre_scorer_conf_t *s)
{
    *d = *s;
    d->name = dup_or_null(s->name);
    d->version = dup_or_null(s->version);
    d->routes = dup_strv(s->routes, s->nroutes);
    d->agents = dup_strv(s->agents, s->nagents);
    d->schema_json = dup_or_null(s->schema_json);
    d->must = dup_strv(s->must, s->nmust);
    d->must_not = dup_strv(s->must_not, s->nmust_not);
    d->terms = dup_strv(s->terms, s->nterms);
    d->judge_route = dup_or_null(s->judge_route);
    d->rubric = dup_or_null(s->rubric);
    d->prompt = dup_or_null(s->prompt);
}

static void conf_free(gyre_scorer_conf_t *d)
{
    free(d->name);
    free(d->version);
    free_strv(d->routes, d->nroutes);
    free_strv(d->agents, d->nagents);
    free(d->schema_json);
    free_strv(d->must, d->nmust);
    free_strv(d->must_not, d->nmust_not);
    free_strv(d->terms, d->nterms);
    free(d->judge_route);
    free(d->rubric);
    free(d->prompt);
}

gyre_scorer_set_t *gyre_scorer_set_create(const gyre_config_t *c, char *err, size_t errlen)
{
    gyre_scorer_set_t *set = gyre_calloc(1, sizeof(*set));
    set->n = c->nscorers;
    set->confs = gyre_calloc(set->n ? set->n : 1, sizeof(*set->confs));
    set->heuristics = gyre_calloc(set->n ? set->n : 1, sizeof(*set->heuristics));
    set->inflight = gyre_calloc(set->n ? set->n : 1, sizeof(*set->inflight));
    set->refs = 1;
    for (size_t i = 0; i < set->n; i++) {
        const gyre_scorer_conf_t *sc = &c->scorers[i];
        conf_copy(&set->confs[i], sc);
        if (sc->kind == GYRE_SCORER_JUDGE) {
            if (!gyre_judge_rubric_known(sc->rubric != NULL ? sc->rubric : "correctness") ||
                sc->judge_route == NULL) {
                snprintf(err, errlen, "scorers[%zu] (%s): %s", i, sc->name,
                         sc->judge_route == NULL ? "a judge needs a route" : "unknown rubric");
                gyre_scorer_set_free(set);
                return NULL;
            }
            continue;
        }
        char why[256] = "";
        if ((set->heuristics[i] = gyre_heuristic_compile(sc, why, sizeof(why))) == NULL) {
            snprintf(err, errlen, "scorers[%zu] (%s): %s", i, sc->name, why);
            gyre_scorer_set_free(set);
            return NULL;
        }
    }
    return set;
}

void gyre_scorer_set_free(gyre_scorer_set_t *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->n; i++) {
        gyre_heuristic_free(set->heuristics[i]);
        conf_free(&set->confs[i]);
    }
    free(set->heuristics);
    free(set->confs);
    free(set->inflight);
    free(set);
}

int gyre_scorer_set_find(const gyre_scorer_set_t *set, const char *name)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->confs[i].name, name) == 0)
            return (int)i;
    return -1;
}

const gyre_scorer_conf_t *gyre_scorer_set_conf(const gyre_scorer_set_t *set, size_t i)
{
    return i < set->n ? &set->confs[i] : NULL;
}

size_t gyre_scorer_set_count(const gyre_scorer_set_t *set)
{
    return set->n;
}

/* The answer's tool_calls array (compact JSON, malloc'd), or NULL. */
static char *answer_tool_calls(const gyre_example_t *ex)
{
    if (ex->answer_json == NULL)
        return NULL;
    cJSON *a = cJSON_Parse(ex->answer_json);
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(a, "tool_calls");
    char *out = cJSON_IsArray(tc) && cJSON_GetArraySize(tc) > 0 ? cJSON_PrintUnformatted(tc) : NULL;
    cJSON_Delete(a);
    return out;
}

typedef struct trajectory_ctx {
    gyre_buf_t *out;
    const char *skip; /* the call being judged: shown last, from the example itself */
    unsigned calls;
} trajectory_ctx_t;

static int trajectory_cb(void *arg, const gyre_example_t *ex)
{
    trajectory_ctx_t *t = arg;
    if (strcmp(ex->trace_id, t->skip) == 0)
        return 0;
    if (++t->calls > TRAJECTORY_CALLS)
        return 1;
    gyre_buf_appendf(t->out, "--- call %u (%s)\nREQUEST: %s\nANSWER: %s\n", t->calls, ex->trace_id,
                     ex->task_text != NULL ? ex->task_text : "", ex->answer_text != NULL ? ex->answer_text : "");
    return gyre_buf_failed(t->out) != 0;
}

/* The session's calls before this one, then this one: what an instruction-following judge reads. */
static void trajectory(const gyre_example_t *ex, gyre_store_t *store, gyre_buf_t *out)
{
    trajectory_ctx_t t = {out, ex->trace_id, 0};
    if (store != NULL && ex->session != NULL && ex->session[0] != '\0') {
        gyre_corpus_query_t q;
        memset(&q, 0, sizeof(q));
        q.q.session = ex->session;
        q.q.to_us = ex->started_us; /* the calls before it: a later call is not part of what it was asked */
        char err[256];
        gyre_corpus_scan(store, &q, trajectory_cb, &t, err, sizeof(err));
    }
    /* What did not fit is cut: the call being judged is always shown whole (as its own section allows). */
    gyre_buf_t *b = out;
    if (gyre_buf_failed(b) != 0)
        gyre_buf_reset(b);
    gyre_buf_t tail;
    gyre_buf_init(&tail, TRAJECTORY_BYTES);
    gyre_buf_appendf(&tail, "--- call %u (this call, %s)\nREQUEST: %s\nANSWER: %s", t.calls + 1, ex->trace_id,
                     ex->task_text != NULL ? ex->task_text : "", ex->answer_text != NULL ? ex->answer_text : "");
    gyre_buf_append(b, tail.base != NULL ? tail.base : "", tail.len);
    gyre_buf_append(b, "", 1);
    gyre_buf_dispose(&tail);
}

int gyre_scorer_set_run(const gyre_scorer_set_t *set, size_t i, const gyre_example_t *ex, const gyre_score_env_t *env,
                        gyre_score_outcome_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    const gyre_scorer_conf_t *conf = &set->confs[i];
    if (conf->kind != GYRE_SCORER_JUDGE) {
        char *tool_calls = answer_tool_calls(ex);
        gyre_check_input_t in = {
            .text = ex->answer_text != NULL ? ex->answer_text : "",
            .len = ex->answer_text != NULL ? strlen(ex->answer_text) : 0,
            .tool_calls_json = tool_calls,
            .tools_json = ex->tools_json,
            .latency_us = ex->latency_us,
            .cost_usd = ex->cost_usd,
        };
        gyre_check_result_t r;
        memset(&r, 0, sizeof(r));
        gyre_heuristic_run(set->heuristics[i], &in, &r);
        free(tool_calls);
        out->pass = r.pass;
        out->value = r.value;
        snprintf(out->comment, sizeof(out->comment), "%s", r.reason);
        return 0;
    }
    if (env == NULL || env->judge == NULL) {
        snprintf(err, errlen, "scorer %s: a judge needs gyre's address to call", conf->name);
        return -EINVAL;
    }
    gyre_buf_t traj, scratch;
    gyre_buf_init(&traj, TRAJECTORY_BYTES);
    gyre_buf_init(&scratch, GYRE_JUDGE_PROMPT_MAX);
    int need_trajectory = conf->rubric != NULL && (strcmp(conf->rubric, "instruction_following") == 0 ||
                                                   (conf->prompt != NULL && strstr(conf->prompt, "{{trajectory}}")));
    if (need_trajectory)
        trajectory(ex, env->store, &traj);
    gyre_judge_input_t in;
    gyre_judge_input_from_example(ex, need_trajectory ? traj.base : NULL, &scratch, &in);
    gyre_judge_client_t jc = *env->judge;
    jc.judged_trace = ex->trace_id;
    gyre_verdict_t v;
    int rc = gyre_judge_run(&jc, conf, &in, &v, &out->judge, err, errlen);
    if (rc == 0) {
        out->pass = v.pass;
        out->value = v.score;
        snprintf(out->comment, sizeof(out->comment), "%s", v.reasoning);
    }
    gyre_buf_dispose(&traj);
    gyre_buf_dispose(&scratch);
    return rc;
}

void gyre_score_to_store(const gyre_scorer_conf_t *conf, const gyre_example_t *ex, const gyre_score_outcome_t *out,
                         int64_t now_us, gyre_score_t *score)
{
    memset(score, 0, sizeof(*score));
    score->trace_id = ex->trace_id;
    score->session = ex->session != NULL ? ex->session : "";
    score->name = conf->name;
    score->source = conf->kind == GYRE_SCORER_JUDGE ? GYRE_SCORE_JUDGE : GYRE_SCORE_HEURISTIC;
    score->version = conf->version != NULL ? conf->version : "1";
    score->value = out->value;
    score->label = out->pass ? "pass" : "fail";
    score->comment = out->comment[0] != '\0' ? out->comment : NULL;
    score->created_us = now_us;
    score->trace_started_us = ex->started_us;
}

/* ---- Online ---- */

typedef struct item {
    struct item *next;
    gyre_trace_t *t;
    double u;     /* the draw: scorers whose sample is above it score the call */
    size_t bytes; /* what the copy holds, for the byte bound */
} item_t;

/* Per scorer name: what it did (under the runtime's lock). */
typedef struct counter {
    char name[128];
    uint64_t pass, fail, error, judge_calls, judge_malformed;
} counter_t;

struct gyre_scoring {
    pthread_mutex_t mu;
    pthread_cond_t cond;     /* an item came, or stop */
    pthread_cond_t judge_cv; /* a judge call ended */
    item_t *head, *tail;
    size_t nqueued, queued_bytes;
    uint64_t dropped;
    int stop;
    gyre_scorer_set_t *set;
    pthread_t threads[GYRE_SCORE_THREADS];
    unsigned nthreads;
    char *dsn;
    gyre_judge_client_t judge;
    char *judge_key;
    counter_t counters[GYRE_SCORE_MAX_SCORERS + 1]; /* the last: "other" */
    size_t ncounters;
};

double gyre_score_draw(uint64_t *rng)
{
    return (double)(gyre_rand_next(rng) >> 11) * (1.0 / 9007199254740992.0);
}

static int in_list(char *const *v, size_t n, const char *s, size_t len)
{
    if (n == 0)
        return 1;
    for (size_t i = 0; i < n; i++)
        if (strlen(v[i]) == len && memcmp(v[i], s, len) == 0)
            return 1;
    return 0;
}

int gyre_score_matches(const gyre_scorer_conf_t *conf, const char *route, size_t rlen, const char *agent,
                       size_t alen)
{
    return in_list(conf->routes, conf->nroutes, route != NULL ? route : "", route != NULL ? rlen : 0) &&
           in_list(conf->agents, conf->nagents, agent != NULL ? agent : "", agent != NULL ? alen : 0);
}

static int is_judge_call(const gyre_trace_t *t)
{
    return t->agent.len == sizeof(GYRE_JUDGE_AGENT) - 1 && memcmp(t->agent.p, GYRE_JUDGE_AGENT, t->agent.len) == 0;
}

int gyre_score_offer(gyre_scoring_t *s, const gyre_config_t *c, uint64_t *rng, const gyre_trace_t *t)
{
    /* Only answered calls are scored (as offline: `gyre score` reads the calls answered 2xx). */
    if (s == NULL || c->nscorers == 0 || t->status < 200 || t->status > 299 || is_judge_call(t))
        return 0;
    double share = 0;
    for (size_t i = 0; i < c->nscorers; i++) {
        const gyre_scorer_conf_t *sc = &c->scorers[i];
        if (sc->sample > share && gyre_score_matches(sc, t->route.p, t->route.len, t->agent.p, t->agent.len))
            share = sc->sample;
    }
    if (share <= 0)
        return 0;
    double u = gyre_score_draw(rng);
    if (u >= share)
        return 0;
    size_t bytes = sizeof(gyre_trace_t) + t->request_body.len + t->response_body.len;
    pthread_mutex_lock(&s->mu);
    int full = s->nqueued >= GYRE_SCORE_QUEUE_MAX || s->queued_bytes + bytes > GYRE_SCORE_QUEUE_BYTES;
    if (full)
        s->dropped++;
    else
        s->queued_bytes += bytes; /* reserved now, so two workers cannot both pass the bound */
    if (!full)
        s->nqueued++;
    pthread_mutex_unlock(&s->mu);
    if (full)
        return -ENOSPC;
    /* The copy is made outside the lock: the other workers do not wait on it. */
    item_t *it = gyre_malloc(sizeof(*it));
    it->next = NULL;
    it->t = gyre_trace_copy(t);
    it->u = u;
    it->bytes = bytes;
    pthread_mutex_lock(&s->mu);
    if (s->tail != NULL)
        s->tail->next = it;
    else
        s->head = it;
    s->tail = it;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
    return 1;
}

static counter_t *counter_for(gyre_scoring_t *s, const char *name)
{
    for (size_t i = 0; i < s->ncounters; i++)
        if (strcmp(s->counters[i].name, name) == 0)
            return &s->counters[i];
    if (s->ncounters < GYRE_SCORE_MAX_SCORERS) {
        counter_t *c = &s->counters[s->ncounters++];
        snprintf(c->name, sizeof(c->name), "%s", name);
        return c;
    }
    counter_t *other = &s->counters[GYRE_SCORE_MAX_SCORERS];
    snprintf(other->name, sizeof(other->name), "other");
    return other;
}

/* The row a stored trace would be, from the trace itself: the scorer reads the call before (or whether or not)
 * the writer has indexed it. */
static void row_from_trace(const gyre_trace_t *t, gyre_buf_t *tags, gyre_buf_t *meta, gyre_store_row_t *row)
{
    memset(row, 0, sizeof(*row));
    row->cluster = -1; /* a call just answered is in no clustering yet (a zeroed row would read as cluster 0) */
    row->trace_id = (gyre_tstr_t){(char *)t->trace_id, strlen(t->trace_id)};
    row->otel_trace_id = (gyre_tstr_t){(char *)t->otel_trace_id, strlen(t->otel_trace_id)};
    row->span_id = (gyre_tstr_t){(char *)t->span_id, strlen(t->span_id)};
    row->parent_span_id = (gyre_tstr_t){(char *)t->parent_span_id, strlen(t->parent_span_id)};
    row->request_id = t->request_id;
    row->endpoint = t->endpoint;
    row->route = t->route;
    row->provider = t->provider;
    row->model = t->model;
    row->finish_reason = t->finish_reason;
    row->session = t->session;
    row->agent = t->agent;
    row->user = t->user;
    row->client_key_id = t->client_key_id;
    row->team = t->team;
    row->started_us = t->started_us;
    row->ended_us = t->ended_us;
    row->latency_us = t->ended_us - t->started_us;
    row->ttft_us = t->ttft_us;
    row->status = t->status;
    row->stream = t->stream;
    row->cache_hit = t->cache_hit;
    row->prompt_tokens = t->prompt_tokens;
    row->completion_tokens = t->completion_tokens;
    row->cached_tokens = t->cached_tokens;
    row->reasoning_tokens = t->reasoning_tokens;
    row->cost_usd = t->cost_usd;
    row->cost_saved_usd = t->cost_saved_usd;
    gyre_store_render_tags(t->tags, t->ntags, tags);
    gyre_store_render_meta(t->meta, t->nmeta, meta);
    row->tags_json = (gyre_tstr_t){tags->base, tags->len};
    row->meta_json = (gyre_tstr_t){meta->base, meta->len};
}

/* Scores one queued call with every scorer of `set` that it was sampled for. */
static void score_item(gyre_scoring_t *s, gyre_scorer_set_t *set, gyre_store_t *store, const item_t *it)
{
    const gyre_trace_t *t = it->t;
    gyre_buf_t tags, meta, scratch;
    gyre_buf_init(&tags, 64 * 1024);
    gyre_buf_init(&meta, 64 * 1024);
    gyre_buf_init(&scratch, (size_t)64 << 20);
    gyre_store_row_t row;
    row_from_trace(t, &tags, &meta, &row);
    gyre_example_t ex;
    char err[512];
    /* A call the loop cannot read (bodies not captured, an endpoint it does not read) is an error for each
     * scorer it was drawn for: counted, not logged per call. */
    int readable = gyre_corpus_example_from_row(&row, t->request_body.p, t->request_body.len, t->response_body.p,
                                                t->response_body.len, &scratch, &ex, err, sizeof(err)) == 0;
    gyre_score_env_t env = {store, &s->judge};
    for (size_t i = 0; i < set->n; i++) {
        const gyre_scorer_conf_t *conf = &set->confs[i];
        if (!(conf->sample > it->u) || !gyre_score_matches(conf, t->route.p, t->route.len, t->agent.p, t->agent.len))
            continue;
        if (!readable) {
            pthread_mutex_lock(&s->mu);
            counter_for(s, conf->name)->error++;
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        int judge = conf->kind == GYRE_SCORER_JUDGE;
        if (judge) {
            unsigned most = conf->concurrency != 0 ? conf->concurrency : 4;
            pthread_mutex_lock(&s->mu);
            while (set->inflight[i] >= most && !s->stop)
                pthread_cond_wait(&s->judge_cv, &s->mu);
            set->inflight[i]++;
            pthread_mutex_unlock(&s->mu);
        }
        gyre_score_outcome_t o;
        int rc = gyre_scorer_set_run(set, i, &ex, &env, &o, err, sizeof(err));
        if (rc == 0) {
            gyre_score_t sc;
            gyre_score_to_store(conf, &ex, &o, gyre_trace_now_us(), &sc);
            if ((rc = gyre_store_write_scores(store, &sc, 1, err, sizeof(err))) != 0)
                gyre_logf("gyre: scorer %s: cannot store the score of %s: %s\n", conf->name, ex.trace_id, err);
        } else {
            gyre_logf("gyre: scorer %s on %s: %s\n", conf->name, ex.trace_id, err);
        }
        pthread_mutex_lock(&s->mu);
        if (judge) {
            set->inflight[i]--;
            pthread_cond_broadcast(&s->judge_cv);
        }
        counter_t *c = counter_for(s, conf->name);
        if (rc != 0)
            c->error++;
        else if (o.pass)
            c->pass++;
        else
            c->fail++;
        c->judge_calls += o.judge.calls;
        c->judge_malformed += o.judge.malformed;
        pthread_mutex_unlock(&s->mu);
    }
    gyre_buf_dispose(&tags);
    gyre_buf_dispose(&meta);
    gyre_buf_dispose(&scratch);
}

static void set_release(gyre_scorer_set_t *set)
{
    /* Under the runtime's lock. */
    if (--set->refs == 0)
        gyre_scorer_set_free(set);
}

static void *thread_main(void *arg)
{
    gyre_scoring_t *s = arg;
    gyre_store_t *store = NULL;
    int tried = 0;
    char err[512];
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (s->head == NULL && !s->stop)
            pthread_cond_wait(&s->cond, &s->mu);
        if (s->stop)
            break;
        item_t *it = s->head;
        s->head = it->next;
        if (s->head == NULL)
            s->tail = NULL;
        gyre_scorer_set_t *set = s->set;
        set->refs++;
        pthread_mutex_unlock(&s->mu);
        /* The handle is opened for the first call: a gyre whose scorers never sample opens none. */
        if (!tried && (tried = 1) && gyre_store_open(s->dsn, GYRE_STORE_OPEN_WRITE, &store, err, sizeof(err)) != 0) {
            gyre_logf("gyre: scorers: cannot open the store: %s; this scorer thread scores nothing\n", err);
            store = NULL;
        }
        if (store != NULL)
            score_item(s, set, store, it);
        pthread_mutex_lock(&s->mu);
        set_release(set);
        s->nqueued--;
        s->queued_bytes -= it->bytes;
        free(it->t);
        free(it);
    }
    pthread_mutex_unlock(&s->mu);
    if (store != NULL)
        gyre_store_close(store);
    return NULL;
}

gyre_scoring_t *gyre_score_start(const gyre_config_t *c, const gyre_scoring_opts_t *o, char *err, size_t errlen)
{
    gyre_scorer_set_t *set = gyre_scorer_set_create(c, err, errlen);
    if (set == NULL)
        return NULL;
    gyre_scoring_t *s = gyre_calloc(1, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cond, NULL);
    pthread_cond_init(&s->judge_cv, NULL);
    s->set = set;
    s->dsn = dup_or_null(o->store_dsn);
    s->judge_key = dup_or_null(o->judge_key);
    s->judge.key = s->judge_key;
    if (o->judge_url != NULL && gyre_httpc_parse_url(o->judge_url, &s->judge.url) != 0) {
        snprintf(err, errlen, "scorers: the judge's address %s is not an http URL", o->judge_url);
        gyre_score_stop(s);
        return NULL;
    }
    if (o->no_threads || s->dsn == NULL)
        return s;
    unsigned n = o->threads != 0 && o->threads < GYRE_SCORE_THREADS ? o->threads : GYRE_SCORE_THREADS;
    for (unsigned i = 0; i < n; i++) {
        if (pthread_create(&s->threads[i], NULL, thread_main, s) != 0) {
            snprintf(err, errlen, "scorers: cannot start a scorer thread");
            gyre_score_stop(s);
            return NULL;
        }
        s->nthreads++;
    }
    return s;
}

void gyre_score_stop(gyre_scoring_t *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_cond_broadcast(&s->judge_cv);
    pthread_mutex_unlock(&s->mu);
    for (unsigned i = 0; i < s->nthreads; i++)
        pthread_join(s->threads[i], NULL);
    for (item_t *it = s->head, *next; it != NULL; it = next) {
        next = it->next;
        free(it->t);
        free(it);
    }
    gyre_scorer_set_free(s->set);
    if (s->judge_key != NULL) {
        explicit_bzero(s->judge_key, strlen(s->judge_key));
        free(s->judge_key);
    }
    free(s->dsn);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    pthread_cond_destroy(&s->judge_cv);
    free(s);
}

int gyre_score_reconfigure(gyre_scoring_t *s, const gyre_config_t *next, char *err, size_t errlen)
{
    gyre_scorer_set_t *set = gyre_scorer_set_create(next, err, errlen);
    if (set == NULL)
        return -EINVAL;
    pthread_mutex_lock(&s->mu);
    gyre_scorer_set_t *old = s->set;
    s->set = set;
    set_release(old);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void gyre_score_stats(gyre_scoring_t *s, gyre_score_stats_t *st)
{
    pthread_mutex_lock(&s->mu);
    st->queued = s->nqueued;
    st->dropped = s->dropped;
    st->queued_bytes = s->queued_bytes;
    pthread_mutex_unlock(&s->mu);
}

int gyre_score_render_metrics(gyre_scoring_t *s, gyre_buf_t *out)
{
    if (s == NULL)
        return 0;
    pthread_mutex_lock(&s->mu);
    gyre_buf_appends(out, "# HELP gyre_scores_total Scores the online scorers stored (pass, fail) or could not give "
                          "(error), by scorer.\n# TYPE gyre_scores_total counter\n");
    for (size_t k = 0; k < GYRE_SCORE_MAX_SCORERS + 1; k++) {
        const counter_t *c = &s->counters[k];
        if (k >= s->ncounters && k != GYRE_SCORE_MAX_SCORERS)
            continue;
        if (c->name[0] == '\0')
            continue;
        gyre_buf_appendf(out,
                         "gyre_scores_total{scorer=\"%s\",result=\"pass\"} %llu\n"
                         "gyre_scores_total{scorer=\"%s\",result=\"fail\"} %llu\n"
                         "gyre_scores_total{scorer=\"%s\",result=\"error\"} %llu\n",
                         c->name, (unsigned long long)c->pass, c->name, (unsigned long long)c->fail, c->name,
                         (unsigned long long)c->error);
    }
    gyre_buf_appends(out, "# HELP gyre_judge_calls_total Calls the LLM judges made through gyre's routes, by scorer "
                          "and outcome (malformed: a verdict refused and asked again or given up on).\n"
                          "# TYPE gyre_judge_calls_total counter\n");
    for (size_t k = 0; k < GYRE_SCORE_MAX_SCORERS + 1; k++) {
        const counter_t *c = &s->counters[k];
        if ((k >= s->ncounters && k != GYRE_SCORE_MAX_SCORERS) || c->name[0] == '\0' ||
            (c->judge_calls == 0 && c->judge_malformed == 0))
            continue;
        gyre_buf_appendf(out,
                         "gyre_judge_calls_total{scorer=\"%s\",outcome=\"made\"} %llu\n"
                         "gyre_judge_calls_total{scorer=\"%s\",outcome=\"malformed\"} %llu\n",
                         c->name, (unsigned long long)c->judge_calls, c->name,
                         (unsigned long long)c->judge_malformed);
    }
    gyre_buf_appendf(out,
                     "# HELP gyre_scores_dropped_total Sampled calls not scored because the scoring queue was at its "
                     "bound (%u calls or %zu bytes).\n# TYPE gyre_scores_dropped_total counter\n"
                     "gyre_scores_dropped_total %llu\n"
                     "# HELP gyre_score_queue_depth Sampled calls waiting for a scorer thread.\n"
                     "# TYPE gyre_score_queue_depth gauge\ngyre_score_queue_depth %zu\n",
                     GYRE_SCORE_QUEUE_MAX, GYRE_SCORE_QUEUE_BYTES, (unsigned long long)s->dropped, s->nqueued);
    pthread_mutex_unlock(&s->mu);
    return gyre_buf_failed(out) != 0 ? -E2BIG : 0;
}
