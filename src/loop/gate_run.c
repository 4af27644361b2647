/*
 * The eval gate's replay (gate.h): the held-out lines read and split, each
 * sent through gyre's own listener to the candidate and to the incumbent
 * (conf->concurrency calls at once, one thread each, every call bounded by
 * GYRE_GATE_CALL_TIMEOUT_MS and GYRE_GATE_ANSWER_MAX), each answer scored,
 * then gyre_gate_decide.
 */
#include "loop/gate.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/err.h"
#include "config/prices.h"
#include "loop/corpus.h"
#include "loop/score.h"
#include "loop/stats.h"
#include "store/store.h"

/* The most replay threads, whatever conf->concurrency says: each holds an answer of up to 4 MiB. */
#define MAX_THREADS 32u

/* ---- Reading the dataset ---- */

/* A message's text for the reference: its content (text parts joined), else its tool calls as name(arguments). */
static void message_text(const cJSON *m, gyre_buf_t *out)
{
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    if (cJSON_IsString(content)) {
        gyre_buf_appends(out, content->valuestring);
    } else if (cJSON_IsArray(content)) {
        const cJSON *p;
        cJSON_ArrayForEach(p, content)
        {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "text");
            if (cJSON_IsString(t)) {
                if (out->len > 0)
                    gyre_buf_appends(out, "\n");
                gyre_buf_appends(out, t->valuestring);
            }
        }
    }
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls"), *tc;
    cJSON_ArrayForEach(tc, calls)
    {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(tc, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(f, "arguments");
        if (!cJSON_IsString(name))
            continue;
        if (out->len > 0)
            gyre_buf_appends(out, "\n");
        gyre_buf_appendf(out, "%s(%s)", name->valuestring, cJSON_IsString(args) ? args->valuestring : "");
    }
}

int gyre_gate_split_line(const char *line, size_t len, gyre_buf_t *messages, gyre_buf_t *tools, gyre_buf_t *reference,
                         char *err, size_t errlen)
{
    if (len > GYRE_GATE_LINE_MAX) {
        gyre_errf(err, errlen, "longer than %zu bytes", GYRE_GATE_LINE_MAX);
        return -EINVAL;
    }
    cJSON *o = cJSON_ParseWithLength(line, len);
    int rc = -EINVAL;
    char *text = NULL;
    if (!cJSON_IsObject(o)) {
        gyre_errf(err, errlen, "not a JSON object");
        goto out;
    }
    cJSON *msgs = cJSON_GetObjectItemCaseSensitive(o, "messages");
    int n = cJSON_IsArray(msgs) ? cJSON_GetArraySize(msgs) : 0;
    if (n < 2) {
        gyre_errf(err, errlen, "messages: not an array of a conversation and its answer");
        goto out;
    }
    cJSON *last = cJSON_GetArrayItem(msgs, n - 1);
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(last, "role");
    if (!cJSON_IsObject(last) || !cJSON_IsString(role) || strcmp(role->valuestring, "assistant") != 0) {
        gyre_errf(err, errlen, "messages[%d].role: the last message is not the assistant's answer", n - 1);
        goto out;
    }
    const cJSON *m;
    int i = 0;
    cJSON_ArrayForEach(m, msgs)
    {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsObject(m) || !cJSON_IsString(r)) {
            gyre_errf(err, errlen, "messages[%d].role: not a string", i);
            goto out;
        }
        i++;
    }
    message_text(last, reference);
    cJSON *answer = cJSON_DetachItemFromArray(msgs, n - 1);
    cJSON_Delete(answer);
    text = cJSON_PrintUnformatted(msgs);
    if (text == NULL) {
        gyre_errf(err, errlen, "messages: cannot be written back");
        goto out;
    }
    gyre_buf_appends(messages, text);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "tools");
    if (t != NULL && !cJSON_IsNull(t)) {
        if (!cJSON_IsArray(t)) {
            gyre_errf(err, errlen, "tools: not an array");
            goto out;
        }
        free(text);
        text = cJSON_PrintUnformatted(t);
        if (text == NULL) {
            gyre_errf(err, errlen, "tools: cannot be written back");
            goto out;
        }
        gyre_buf_appends(tools, text);
    }
    if (gyre_buf_failed(messages) || gyre_buf_failed(tools) || gyre_buf_failed(reference)) {
        gyre_errf(err, errlen, "larger than its buffers");
        rc = -E2BIG;
        goto out;
    }
    rc = 0;
out:
    free(text);
    cJSON_Delete(o);
    return rc;
}

int gyre_gate_manifest_clusters(const char *manifest, size_t len, char (*clusters)[GYRE_GATE_CLUSTER_NAME],
                                size_t nlines)
{
    for (size_t i = 0; i < nlines; i++)
        snprintf(clusters[i], GYRE_GATE_CLUSTER_NAME, "all");
    cJSON *o = cJSON_ParseWithLength(manifest, len);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return -EINVAL;
    }
    unsigned char *seen = gyre_calloc(nlines ? nlines : 1, 1);
    size_t named = 0;
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(o, "examples"), *e;
    if (!cJSON_IsArray(ex))
        ex = NULL;
    cJSON_ArrayForEach(e, ex)
    {
        const cJSON *file = cJSON_GetObjectItemCaseSensitive(e, "file");
        const cJSON *line = cJSON_GetObjectItemCaseSensitive(e, "line");
        const cJSON *cl = cJSON_GetObjectItemCaseSensitive(e, "cluster");
        if (!cJSON_IsString(file) || strcmp(file->valuestring, "heldout.jsonl") != 0 || !cJSON_IsNumber(line) ||
            !cJSON_IsNumber(cl))
            continue;
        double l = line->valuedouble, c = cl->valuedouble;
        if (!(l >= 1 && l <= (double)nlines) || l != floor(l) || !(c >= -2147483648.0 && c <= 2147483647.0) ||
            c != floor(c))
            continue;
        size_t k = (size_t)l - 1;
        if (!seen[k]) {
            seen[k] = 1;
            named++;
        }
        snprintf(clusters[k], GYRE_GATE_CLUSTER_NAME, "%ld", (long)c);
    }
    free(seen);
    cJSON_Delete(o);
    if (named == nlines)
        return 1;
    for (size_t i = 0; i < nlines; i++)
        snprintf(clusters[i], GYRE_GATE_CLUSTER_NAME, "all");
    return 0;
}

/* ---- The replay ---- */

typedef struct line {
    unsigned number;                  /* heldout.jsonl's line, from 1 */
    char *request_cand, *request_inc; /* the two request bodies */
    size_t len_cand, len_inc;
    char *reference; /* meta_json {"reference": the line's answer}, for the judges */
} line_t;

typedef struct replay {
    const gyre_gate_env_t *env;
    const gyre_scorer_set_t *set;
    int idx[GYRE_LOOP_MAX_SCORERS]; /* conf->scorers[k]'s index in set */
    const gyre_prices_t *table;
    const gyre_prices_t *prov_prices[2]; /* candidate's, incumbent's provider's own prices (may be NULL) */
    const char *provider[2], *model[2];  /* split from "provider/model" (copies) */
    line_t *lines;
    gyre_gate_obs_t *obs;
    size_t n;
    pthread_mutex_t mu;
    size_t next, done;   /* calls: 2 per line */
    char first_err[256]; /* why the first failed call failed (under mu) */
} replay_t;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int64_t usage_int(const cJSON *u, const char *name)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(u, name);
    return cJSON_IsNumber(x) && x->valuedouble >= 0 ? (int64_t)x->valuedouble : -1;
}

/* One call of line l on side s (0: candidate, 1: incumbent): sent, timed, priced and scored into side. */
static void replay_one(replay_t *r, const line_t *l, int s, gyre_gate_side_t *side)
{
    const gyre_gate_env_t *env = r->env;
    const gyre_gate_conf_t *conf = env->conf;
    for (size_t k = 0; k < GYRE_LOOP_MAX_SCORERS; k++)
        side->scores[k] = NAN;
    side->cost_usd = NAN;
    side->error = 1;
    char authz[300] = "";
    gyre_httpc_header_t h[3];
    size_t nh = 0;
    h[nh++] = (gyre_httpc_header_t){"x-gyre-agent", GYRE_GATE_AGENT};
    if (env->key != NULL && env->key[0] != '\0') {
        snprintf(authz, sizeof(authz), "Bearer %s", env->key);
        h[nh++] = (gyre_httpc_header_t){"Authorization", authz};
    }
    gyre_buf_t answer;
    gyre_buf_init(&answer, GYRE_GATE_ANSWER_MAX);
    const char *body = s == 0 ? l->request_cand : l->request_inc;
    size_t blen = s == 0 ? l->len_cand : l->len_inc;
    int status = 0;
    char err[256] = "";
    double t0 = now_ms();
    int rc = gyre_httpc_post_read(&env->url, NULL, h, nh, "application/json", body, blen, GYRE_GATE_CALL_TIMEOUT_MS,
                                  &status, &answer, err, sizeof(err));
    side->latency_ms = now_ms() - t0;
    explicit_bzero(authz, sizeof(authz));
    cJSON *o = rc == 0 && status >= 200 && status < 400 ? cJSON_ParseWithLength(answer.base, answer.len) : NULL;
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(o, "choices");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(choices, 0), "message");
    if (!cJSON_IsObject(msg)) {
        pthread_mutex_lock(&r->mu);
        if (r->first_err[0] == '\0') {
            if (rc != 0)
                snprintf(r->first_err, sizeof(r->first_err), "%s", err);
            else if (status >= 400)
                snprintf(r->first_err, sizeof(r->first_err), "gyre answered %d", status);
            else
                snprintf(r->first_err, sizeof(r->first_err), "the answer is not a chat completion");
        }
        pthread_mutex_unlock(&r->mu);
        goto out;
    }
    side->error = 0;
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(o, "usage");
    int64_t pt = usage_int(u, "prompt_tokens"), ct = usage_int(u, "completion_tokens");
    int64_t cached = usage_int(cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens_details"), "cached_tokens");
    const gyre_price_t *pr =
        r->model[s] != NULL ? gyre_prices_lookup(r->prov_prices[s], r->table, r->model[s], strlen(r->model[s])) : NULL;
    if (pr != NULL && pt >= 0 && ct >= 0)
        side->cost_usd = gyre_prices_cost(pr, pt, cached > 0 ? cached : 0, ct);

    /* The call as the scorers read a stored one: the same example builder the corpus uses. */
    gyre_store_row_t row;
    memset(&row, 0, sizeof(row));
    row.endpoint = (gyre_tstr_t){(char *)"/v1/chat/completions", strlen("/v1/chat/completions")};
    row.agent = (gyre_tstr_t){(char *)GYRE_GATE_AGENT, strlen(GYRE_GATE_AGENT)};
    if (r->provider[s] != NULL)
        row.provider = (gyre_tstr_t){(char *)r->provider[s], strlen(r->provider[s])};
    if (r->model[s] != NULL)
        row.model = (gyre_tstr_t){(char *)r->model[s], strlen(r->model[s])};
    row.meta_json = (gyre_tstr_t){l->reference, strlen(l->reference)};
    row.status = status;
    row.latency_us = (int64_t)(side->latency_ms * 1000);
    row.prompt_tokens = pt;
    row.completion_tokens = ct;
    row.cached_tokens = -1;
    row.reasoning_tokens = -1;
    row.ttft_us = -1;
    row.cost_usd = side->cost_usd;
    row.cost_saved_usd = NAN;
    row.cluster = -1;
    gyre_buf_t scratch;
    gyre_buf_init(&scratch, GYRE_GATE_ANSWER_MAX + GYRE_GATE_LINE_MAX * 3);
    gyre_example_t ex;
    if (gyre_corpus_example_from_row(&row, body, blen, answer.base, answer.len, &scratch, &ex, err, sizeof(err)) != 0) {
        side->error = 1;
        gyre_buf_dispose(&scratch);
        goto out;
    }
    gyre_judge_client_t jc;
    memset(&jc, 0, sizeof(jc));
    jc.url = env->url;
    jc.key = env->key;
    gyre_score_env_t senv = {.store = NULL, .judge = &jc};
    for (size_t k = 0; k < conf->nscorers; k++) {
        gyre_score_outcome_t out;
        memset(&out, 0, sizeof(out));
        if (gyre_scorer_set_run(r->set, (size_t)r->idx[k], &ex, &senv, &out, err, sizeof(err)) != 0)
            continue; /* no value: the pair is left out of this scorer's metric */
        const gyre_scorer_conf_t *sc = gyre_scorer_set_conf(r->set, (size_t)r->idx[k]);
        side->scores[k] = sc->kind == GYRE_SCORER_JUDGE ? out.value : (out.pass ? 1 : 0);
    }
    gyre_buf_dispose(&scratch);
out:
    cJSON_Delete(o);
    gyre_buf_dispose(&answer);
}

static void *replay_thread(void *arg)
{
    replay_t *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        size_t j = r->next < 2 * r->n ? r->next++ : (size_t)-1;
        pthread_mutex_unlock(&r->mu);
        if (j == (size_t)-1)
            break;
        /* Calls alternate candidate, incumbent, line by line, so that both sides meet the same load over time. */
        size_t i = j / 2;
        int s = (int)(j % 2);
        replay_one(r, &r->lines[i], s, s == 0 ? &r->obs[i].cand : &r->obs[i].inc);
        /* The callback runs under the lock, one call at a time and in order: the loop runner's updates one
         * document (its progress, then a save), and two threads changing it at once lost a value ("done", added
         * by one while the other replaced it: a leak) or could free one the other was reading. */
        pthread_mutex_lock(&r->mu);
        r->done++;
        if (r->env->progress != NULL)
            r->env->progress(r->env->progress_ctx, (unsigned)r->done, (unsigned)(2 * r->n));
        pthread_mutex_unlock(&r->mu);
    }
    return NULL;
}

/* "provider/model" into its two parts (copies); a name without '/' is a route or a model: provider NULL. */
static void split_target(const char *t, char **provider, char **model)
{
    const char *slash = t != NULL ? strchr(t, '/') : NULL;
    *provider = NULL;
    *model = t != NULL ? gyre_strdup(slash != NULL ? slash + 1 : t) : NULL;
    if (slash != NULL) {
        *provider = gyre_malloc((size_t)(slash - t) + 1);
        memcpy(*provider, t, (size_t)(slash - t));
        (*provider)[slash - t] = '\0';
    }
}

static int request_body(const char *model, const gyre_buf_t *messages, const gyre_buf_t *tools, char **out, size_t *len)
{
    gyre_buf_t b;
    gyre_buf_init(&b, messages->len + tools->len + strlen(model) * 6 + 64);
    gyre_buf_appends(&b, "{\"model\":");
    gyre_buf_append_json_string(&b, model, strlen(model));
    gyre_buf_appends(&b, ",\"messages\":");
    gyre_buf_append(&b, messages->base, messages->len);
    if (tools->len > 0) {
        gyre_buf_appends(&b, ",\"tools\":");
        gyre_buf_append(&b, tools->base, tools->len);
    }
    gyre_buf_appends(&b, "}");
    if (gyre_buf_failed(&b)) {
        gyre_buf_dispose(&b);
        return -E2BIG;
    }
    *out = b.base;
    *len = b.len;
    return 0;
}

int gyre_gate_run(const gyre_gate_env_t *env, gyre_buf_t *report_json, gyre_buf_t *report_md, int *passed, char *err,
                  size_t errlen)
{
    const gyre_gate_conf_t *conf = env->conf;
    *passed = 0;
    if (env->candidate == NULL || env->incumbent == NULL || conf == NULL || env->dataset_dir == NULL) {
        gyre_errf(err, errlen, "gate: a candidate, an incumbent, a gate conf and a dataset are needed");
        return -EINVAL;
    }
    if (conf->nscorers == 0 || conf->nscorers > GYRE_LOOP_MAX_SCORERS) {
        gyre_errf(err, errlen, "gate: scorers: between 1 and %d are needed", GYRE_LOOP_MAX_SCORERS);
        return -EINVAL;
    }
    replay_t r;
    memset(&r, 0, sizeof(r));
    r.env = env;
    gyre_buf_t file, mbuf;
    gyre_buf_init(&file, GYRE_GATE_HELDOUT_MAX);
    gyre_buf_init(&mbuf, GYRE_GATE_MANIFEST_MAX);
    char(*clusters)[GYRE_GATE_CLUSTER_NAME] = NULL;
    gyre_scorer_set_t *set = NULL;
    gyre_prices_t *owned_table = NULL;
    char *parts[4] = {NULL, NULL, NULL, NULL};
    size_t *order = NULL;
    int rc = -EINVAL;
    char why[320] = "";
    char path[4200];

    set = gyre_scorer_set_create(env->config, why, sizeof(why));
    if (set == NULL) {
        gyre_errf(err, errlen, "gate: %s", why);
        goto out;
    }
    r.set = set;
    for (size_t k = 0; k < conf->nscorers; k++) {
        r.idx[k] = gyre_scorer_set_find(set, conf->scorers[k]);
        if (r.idx[k] < 0) {
            gyre_errf(err, errlen, "gate: scorers[%zu]: %s is not a scorer of the configuration", k, conf->scorers[k]);
            goto out;
        }
    }
    if (env->config->prices_file != NULL) {
        int fr = gyre_buf_append_file(&mbuf, env->config->prices_file);
        owned_table = fr == 0 ? gyre_prices_parse(mbuf.base ? mbuf.base : "", mbuf.len, why, sizeof(why)) : NULL;
        gyre_buf_reset(&mbuf);
        if (owned_table == NULL) {
            gyre_errf(err, errlen, "gate: prices %s: %s", env->config->prices_file, fr != 0 ? strerror(-fr) : why);
            goto out;
        }
    } else {
        owned_table = gyre_prices_builtin();
    }
    r.table = owned_table;
    split_target(env->candidate, &parts[0], &parts[1]);
    split_target(env->incumbent, &parts[2], &parts[3]);
    for (int s = 0; s < 2; s++) {
        r.provider[s] = parts[2 * s];
        r.model[s] = parts[2 * s + 1];
        const gyre_provider_conf_t *p =
            r.provider[s] != NULL ? gyre_config_find_provider(env->config, r.provider[s], strlen(r.provider[s])) : NULL;
        r.prov_prices[s] = p != NULL ? p->prices : NULL;
    }

    snprintf(path, sizeof(path), "%s/heldout.jsonl", env->dataset_dir);
    int fr = gyre_buf_append_file(&file, path);
    if (fr != 0) {
        gyre_errf(err, errlen, "gate: %s: %s", path, fr == -E2BIG ? "larger than its bound" : strerror(-fr));
        rc = fr;
        goto out;
    }
    /* The lines: offsets of each non-empty line. */
    size_t nlines = 0, cap = 0;
    size_t(*spans)[2] = NULL;
    for (size_t at = 0; at < file.len;) {
        const char *nl = memchr(file.base + at, '\n', file.len - at);
        size_t end = nl != NULL ? (size_t)(nl - file.base) : file.len;
        if (nlines == cap) {
            cap = cap ? cap * 2 : 64;
            spans = realloc(spans, cap * sizeof(*spans));
            if (spans == NULL)
                abort();
        }
        spans[nlines][0] = at;
        spans[nlines][1] = end;
        nlines++;
        at = end + 1;
    }
    /* A trailing empty line is not a line of the file. */
    while (nlines > 0 && spans[nlines - 1][0] == spans[nlines - 1][1])
        nlines--;
    if (nlines == 0) {
        gyre_errf(err, errlen, "gate: %s: no held-out line", path);
        free(spans);
        goto out;
    }
    clusters = gyre_calloc(nlines, sizeof(*clusters));
    snprintf(path, sizeof(path), "%s/manifest.json", env->dataset_dir);
    if (gyre_buf_append_file(&mbuf, path) == 0)
        gyre_gate_manifest_clusters(mbuf.base ? mbuf.base : "", mbuf.len, clusters, nlines);
    else
        for (size_t i = 0; i < nlines; i++)
            snprintf(clusters[i], GYRE_GATE_CLUSTER_NAME, "all");
    gyre_buf_dispose(&mbuf);

    /* At most `limit` lines: a seeded choice (a partial Fisher-Yates shuffle), kept in the file's order. */
    unsigned limit = conf->limit != 0 ? conf->limit : 500;
    if (limit > GYRE_GATE_MAX_LINES)
        limit = GYRE_GATE_MAX_LINES;
    order = gyre_malloc(nlines * sizeof(size_t));
    for (size_t i = 0; i < nlines; i++)
        order[i] = i;
    size_t n = nlines;
    if (nlines > limit) {
        uint64_t st = gyre_stats_seed(conf->seed, "lines");
        for (size_t i = 0; i < limit; i++) {
            size_t j = i + gyre_stats_index(&st, nlines - i);
            size_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        n = limit;
        for (size_t i = 1; i < n; i++) /* insertion sort: a few hundred */
            for (size_t j = i; j > 0 && order[j - 1] > order[j]; j--) {
                size_t t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
    }
    r.n = n;
    r.lines = gyre_calloc(n, sizeof(*r.lines));
    r.obs = gyre_calloc(n, sizeof(*r.obs));
    gyre_buf_t msgs, tools, ref;
    gyre_buf_init(&msgs, GYRE_GATE_LINE_MAX);
    gyre_buf_init(&tools, GYRE_GATE_LINE_MAX);
    gyre_buf_init(&ref, GYRE_GATE_LINE_MAX);
    for (size_t i = 0; i < n; i++) {
        size_t li = order[i];
        gyre_buf_reset(&msgs);
        gyre_buf_reset(&tools);
        gyre_buf_reset(&ref);
        if (gyre_gate_split_line(file.base + spans[li][0], spans[li][1] - spans[li][0], &msgs, &tools, &ref, why,
                                 sizeof(why)) != 0 ||
            request_body(env->candidate, &msgs, &tools, &r.lines[i].request_cand, &r.lines[i].len_cand) != 0 ||
            request_body(env->incumbent, &msgs, &tools, &r.lines[i].request_inc, &r.lines[i].len_inc) != 0) {
            gyre_errf(err, errlen, "gate: heldout.jsonl:%zu: %s", li + 1, why[0] ? why : "larger than its bound");
            n = i;
            break;
        }
        r.lines[i].number = (unsigned)(li + 1);
        gyre_buf_t mj;
        gyre_buf_init(&mj, ref.len * 6 + 32);
        gyre_buf_appends(&mj, "{\"reference\":");
        gyre_buf_append_json_string(&mj, ref.base != NULL ? ref.base : "", ref.len);
        gyre_buf_appends(&mj, "}");
        r.lines[i].reference = mj.base != NULL ? mj.base : gyre_strdup("{}");
        r.obs[i].line = r.lines[i].number;
        snprintf(r.obs[i].cluster, sizeof(r.obs[i].cluster), "%s", clusters[li]);
    }
    gyre_buf_dispose(&msgs);
    gyre_buf_dispose(&tools);
    gyre_buf_dispose(&ref);
    free(spans);
    if (n < r.n) {
        r.n = n + 1; /* the lines made so far are freed below */
        for (size_t i = 0; i < r.n; i++) {
            free(r.lines[i].request_cand);
            free(r.lines[i].request_inc);
            free(r.lines[i].reference);
        }
        free(r.lines);
        free(r.obs);
        goto out;
    }
    gyre_buf_dispose(&file);

    pthread_mutex_init(&r.mu, NULL);
    unsigned nt = conf->concurrency != 0 ? conf->concurrency : 4;
    if (nt > MAX_THREADS)
        nt = MAX_THREADS;
    if (nt > 2 * r.n)
        nt = (unsigned)(2 * r.n);
    pthread_t th[MAX_THREADS];
    unsigned started = 0;
    for (unsigned t = 0; t < nt; t++)
        if (pthread_create(&th[t], NULL, replay_thread, &r) == 0)
            started++;
    if (started == 0)
        replay_thread(&r); /* no thread could start: the calls run here, one at a time */
    for (unsigned t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    pthread_mutex_destroy(&r.mu);
    /* Not one call answered, on either side: gyre is not there (or refuses the key), which says nothing of the
     * candidate; the gate did not run rather than failing it. */
    size_t answered = 0;
    for (size_t i = 0; i < r.n; i++)
        answered += !r.obs[i].cand.error || !r.obs[i].inc.error;

    char dataset[256];
    const char *slash = strrchr(env->dataset_dir, '/');
    snprintf(dataset, sizeof(dataset), "%s", slash != NULL && slash[1] != '\0' ? slash + 1 : env->dataset_dir);
    gyre_gate_input_t in = {.candidate = env->candidate,
                            .incumbent = env->incumbent,
                            .dataset = dataset,
                            .cost_source = "the answer's usage priced with gyre's prices (the provider's prices: "
                                           "over the price table); gyre answers no cost header",
                            .conf = conf,
                            .obs = r.obs,
                            .nobs = r.n};
    if (answered == 0) {
        gyre_errf(err, errlen, "gate: no replayed call was answered, by either model (the first: %s)", r.first_err);
        rc = -EIO;
    } else {
        rc = gyre_gate_decide(&in, report_json, report_md, passed, err, errlen);
    }
    for (size_t i = 0; i < r.n; i++) {
        free(r.lines[i].request_cand);
        free(r.lines[i].request_inc);
        free(r.lines[i].reference);
    }
    free(r.lines);
    free(r.obs);
out:
    gyre_buf_dispose(&file);
    gyre_buf_dispose(&mbuf);
    free(order);
    free(clusters);
    for (int i = 0; i < 4; i++)
        free(parts[i]);
    gyre_prices_free(owned_table);
    gyre_scorer_set_free(set);
    return rc;
}
