/*
 * gyre score: runs one scorer of the configuration over the stored corpus
 * (offline scoring, issue 14 point 2) and stores every score, as the online
 * scorers do.  A judge's calls go to the running gyre at --url (the
 * configuration's listen address by default), so they are traced, costed
 * and limited like any call.  Calls are read oldest first; a judge with
 * `concurrency: N` scores N at once (one thread each), any other scorer one
 * at a time.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/alloc.h"
#include "common/json.h"
#include "config/config.h"
#include "loop/corpus.h"
#include "loop/score.h"
#include "store/store.h"

const char gyre_score_usage[] =
    "usage: gyre score --scorer NAME [--since DURATION | --from T] [--until T] [--route R] [--agent A]\n"
    "                  [--url http://HOST:PORT] [--key KEY] [--config FILE] [--db PATH] [--json]\n"
    "\n"
    "Runs the scorer NAME of the configuration's scorers: over the stored calls that started in the range\n"
    "(--since 24h: the last 24 hours; --until T: before T) and stores each score with the scorer's name and\n"
    "version.  A judge's calls go through the running gyre at --url (default: the configuration's listen\n"
    "address), with --key (or $GYRE_API_KEY) as its API key when auth: is on.  On a terminal a progress bar\n"
    "goes to stderr; --json prints {\"scored\",\"passed\",\"failed\",\"errors\",\"mean\"}.\n";

/* A judge's calls are slow (seconds): with `concurrency: N` above 1, N threads score at once, each with its own
 * store handle, fed through a queue of at most JOBS_PER_THREAD x N copied examples (the scan waits when it is
 * full, so memory stays bounded whatever the range). */
#define JOBS_PER_THREAD 2
#define MAX_THREADS 64

typedef struct job {
    struct job *next;
    gyre_example_t ex; /* a deep copy: the scan's strings live only until its callback returns */
} job_t;

typedef struct run {
    const gyre_scorer_set_t *set;
    size_t scorer;
    const gyre_judge_client_t *judge;
    const char *dsn;
    gyre_store_t *store;  /* the scan's handle: it only reads (its snapshot is as old as the scan) */
    gyre_store_t *writer; /* the sequential path's handle: it writes, and reads a judge's trajectory */
    int progress;
    int64_t from_us, to_us;
    /* Under mu once threads run. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job_t *head, *tail;
    size_t njobs, max_jobs;
    int done, write_failed;
    uint64_t scored, passed, failed, errors;
    double sum;
} run_t;

static void show_progress(const run_t *r, int64_t started_us)
{
    if (!r->progress)
        return;
    /* The bar is the share of the range's time covered: the count is not known before the scan ends. */
    double done = r->to_us > r->from_us ? (double)(started_us - r->from_us) / (double)(r->to_us - r->from_us) : 1;
    if (done < 0)
        done = 0;
    if (done > 1)
        done = 1;
    int w = (int)(done * 30);
    fprintf(stderr, "\r[%.*s%*s] %3d%%  %llu scored, %llu errors", w, "##############################", 30 - w, "",
            (int)(done * 100), (unsigned long long)r->scored, (unsigned long long)r->errors);
}

/* Scores one example and stores the score with `store`; the counts and the progress under r->mu. */
static void score_one(run_t *r, const gyre_example_t *ex, gyre_store_t *store, gyre_store_t *reader)
{
    gyre_score_outcome_t o;
    char err[512];
    const gyre_scorer_conf_t *conf = gyre_scorer_set_conf(r->set, r->scorer);
    gyre_score_env_t env = {reader, r->judge};
    int rc = gyre_scorer_set_run(r->set, r->scorer, ex, &env, &o, err, sizeof(err));
    int stored = 0;
    if (rc == 0) {
        gyre_score_t sc;
        gyre_score_to_store(conf, ex, &o, gyre_cli_now_us(), &sc);
        stored = gyre_store_write_scores(store, &sc, 1, err, sizeof(err)) == 0;
    }
    pthread_mutex_lock(&r->mu);
    if (rc != 0) {
        r->errors++;
        if (!r->progress)
            fprintf(stderr, "gyre score: %s: %s\n", ex->trace_id, err);
    } else if (!stored) {
        fprintf(stderr, "%sgyre score: cannot store the score of %s: %s\n", r->progress ? "\n" : "", ex->trace_id,
                err);
        r->write_failed = 1;
    } else {
        r->scored++;
        r->sum += o.value;
        if (o.pass)
            r->passed++;
        else
            r->failed++;
    }
    show_progress(r, ex->started_us);
    pthread_mutex_unlock(&r->mu);
}

static char *dup_opt(const char *s)
{
    return s != NULL ? gyre_strdup(s) : NULL;
}

static void example_dup(gyre_example_t *d, const gyre_example_t *s)
{
    *d = *s;
    d->scores = NULL; /* a scorer reads the correction, not the other scores */
    d->nscores = 0;
    const char **fields[] = {&d->session, &d->agent, &d->route, &d->provider, &d->model, &d->user, &d->team,
                             &d->endpoint, &d->tags_json, &d->meta_json, &d->messages_json, &d->tools_json,
                             &d->answer_json, &d->task_text, &d->answer_text, &d->last_user_text, &d->correction};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        *fields[i] = dup_opt(*fields[i]);
}

static void example_free(gyre_example_t *d)
{
    const char *fields[] = {d->session, d->agent, d->route, d->provider, d->model, d->user, d->team, d->endpoint,
                            d->tags_json, d->meta_json, d->messages_json, d->tools_json, d->answer_json,
                            d->task_text, d->answer_text, d->last_user_text, d->correction};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        free((char *)fields[i]);
}

static void *worker_main(void *arg)
{
    run_t *r = arg;
    gyre_store_t *store = NULL;
    char err[512];
    if (gyre_store_open(r->dsn, GYRE_STORE_OPEN_WRITE, &store, err, sizeof(err)) != 0) {
        pthread_mutex_lock(&r->mu);
        fprintf(stderr, "gyre score: %s\n", err);
        r->write_failed = 1;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        return NULL;
    }
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (r->head == NULL && !r->done && !r->write_failed)
            pthread_cond_wait(&r->cv, &r->mu);
        if (r->head == NULL || r->write_failed)
            break;
        job_t *j = r->head;
        r->head = j->next;
        if (r->head == NULL)
            r->tail = NULL;
        r->njobs--;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        score_one(r, &j->ex, store, store);
        example_free(&j->ex);
        free(j);
        pthread_mutex_lock(&r->mu);
    }
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    gyre_store_close(store);
    return NULL;
}

static int example_cb(void *arg, const gyre_example_t *ex)
{
    run_t *r = arg;
    /* A judge's own calls are never scored, offline as online. */
    if (ex->agent != NULL && strcmp(ex->agent, GYRE_JUDGE_AGENT) == 0)
        return 0;
    if (r->max_jobs == 0) {
        /* One at a time, written through a handle of its own: the scan's handle holds a read snapshot as old as
         * the scan, which SQLite will not turn into a write once a running gyre has written since (a judge's
         * own calls do), and a trajectory's scan inside the scan's callback would share its statement. */
        score_one(r, ex, r->writer, r->writer);
        return r->write_failed;
    }
    job_t *j = gyre_malloc(sizeof(*j));
    j->next = NULL;
    example_dup(&j->ex, ex);
    pthread_mutex_lock(&r->mu);
    while (r->njobs >= r->max_jobs && !r->write_failed)
        pthread_cond_wait(&r->cv, &r->mu);
    int stop = r->write_failed;
    if (!stop) {
        if (r->tail != NULL)
            r->tail->next = j;
        else
            r->head = j;
        r->tail = j;
        r->njobs++;
        pthread_cond_broadcast(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
    if (stop) {
        example_free(&j->ex);
        free(j);
    }
    return stop;
}

int gyre_cmd_score(int argc, char **argv)
{
    const char *scorer = NULL, *since = NULL, *from = NULL, *until = NULL, *route = NULL, *agent = NULL;
    const char *url = NULL, *key = getenv("GYRE_API_KEY"), *config_path = NULL, *db = NULL;
    int json = 0;
    for (int i = 0; i < argc; i++) {
        int r;
        if ((r = gyre_cli_opt("gyre score", argc, argv, &i, "--scorer", &scorer)) != 0 ||
            (r = gyre_cli_opt("gyre score", argc, argv, &i, "--since", &since)) != 0 ||
            (r = gyre_cli_opt("gyre score", argc, argv, &i, "--from", &from)) != 0 ||
            (r = gyre_cli_opt("gyre score", argc, argv, &i, "--until", &until)) != 0 ||
            (r = gyre_cli_opt("gyre score", argc, argv, &i, "--route", &route)) != 0 ||
            (r = gyre_cli_opt("gyre score", argc, argv, &i, "--agent", &agent)) != 0 ||
            (r = gyre_cli_opt("gyre score", argc, argv, &i, "--url", &url)) != 0 ||
            (r = gyre_cli_opt("gyre score", argc, argv, &i, "--key", &key)) != 0 ||
            (r = gyre_cli_opt("gyre score", argc, argv, &i, "--config", &config_path)) != 0 ||
            (r = gyre_cli_opt("gyre score", argc, argv, &i, "--db", &db)) != 0) {
            if (r < 0)
                return 2;
            continue;
        }
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
            continue;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(gyre_score_usage, stdout);
            return 0;
        }
        fprintf(stderr, "gyre score: unknown argument %s\n%s", argv[i], gyre_score_usage);
        return 2;
    }
    if (scorer == NULL) {
        fprintf(stderr, "gyre score: --scorer NAME is required\n%s", gyre_score_usage);
        return 2;
    }
    int64_t now = gyre_cli_now_us(), from_us = 0, to_us = 0, d = 0;
    if (since != NULL && (gyre_cli_parse_duration(since, &d) != 0)) {
        fprintf(stderr, "gyre score: --since %s is not a duration (such as 90s, 15m, 24h, 7d)\n", since);
        return 2;
    }
    if (from != NULL && gyre_cli_parse_time(from, &from_us) != 0) {
        fprintf(stderr, "gyre score: --from %s is not a time (unix seconds or RFC 3339)\n", from);
        return 2;
    }
    if (until != NULL && gyre_cli_parse_time(until, &to_us) != 0) {
        fprintf(stderr, "gyre score: --until %s is not a time (unix seconds or RFC 3339)\n", until);
        return 2;
    }
    if (since != NULL)
        from_us = now - d;
    if (since == NULL && from == NULL)
        from_us = now - (int64_t)24 * 3600 * 1000000; /* the last 24 hours, as --since 24h */

    gyre_config_errors_t errs = {0};
    gyre_config_t *c = config_path != NULL ? gyre_config_load_unresolved(config_path, &errs) : gyre_config_default(&errs);
    if (c == NULL) {
        for (size_t i = 0; i < errs.count; i++)
            fprintf(stderr, "%s\n", errs.items[i]);
        fprintf(stderr, "gyre score: %zu error%s in the configuration\n", errs.count, errs.count == 1 ? "" : "s");
        gyre_config_errors_dispose(&errs);
        return 1;
    }
    int rc = 1;
    gyre_store_t *store = NULL;
    char err[512] = "";
    gyre_json_init();
    gyre_scorer_set_t *set = gyre_scorer_set_create(c, err, sizeof(err));
    if (set == NULL) {
        fprintf(stderr, "gyre score: %s\n", err);
        goto out;
    }
    int idx = gyre_scorer_set_find(set, scorer);
    if (idx < 0) {
        fprintf(stderr, "gyre score: %s has no scorer named %s\n", c->source, scorer);
        goto out;
    }
    gyre_judge_client_t jc;
    memset(&jc, 0, sizeof(jc));
    char url_buf[400];
    if (url == NULL) {
        const char *h = strcmp(c->listen_host, "0.0.0.0") == 0 ? "127.0.0.1"
                        : strcmp(c->listen_host, "::") == 0    ? "::1"
                                                               : c->listen_host;
        int v6 = strchr(h, ':') != NULL;
        snprintf(url_buf, sizeof(url_buf), "http://%s%s%s:%u", v6 ? "[" : "", h, v6 ? "]" : "",
                 (unsigned)c->listen_port);
        url = url_buf;
    }
    char full[1200];
    size_t ul = strlen(url);
    snprintf(full, sizeof(full), "%.*s/v1/chat/completions", (int)(ul > 0 && url[ul - 1] == '/' ? ul - 1 : ul), url);
    if (gyre_httpc_parse_url(full, &jc.url) != 0 || jc.url.https) {
        fprintf(stderr, "gyre score: --url %s is not an http://HOST:PORT address\n", url);
        rc = 2;
        goto out;
    }
    jc.key = key;
    /* Scores are written: the store's writer handle (another gyre may be writing traces to it: SQLite's WAL). */
    /* The scan reads through this handle; scores are written through others (run_t). */
    if (gyre_cli_store_open("gyre score", config_path, db, &store) != 0)
        goto out;
    const char *dsn = db != NULL ? db : c->store_dsn;
    run_t r;
    memset(&r, 0, sizeof(r));
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    r.set = set;
    r.scorer = (size_t)idx;
    r.judge = &jc;
    r.dsn = dsn;
    r.store = store;
    r.progress = isatty(2);
    r.from_us = from_us;
    r.to_us = to_us != 0 ? to_us : now;
    const gyre_scorer_conf_t *conf = gyre_scorer_set_conf(set, (size_t)idx);
    unsigned nthreads = conf->kind == GYRE_SCORER_JUDGE && conf->concurrency > 1 ? conf->concurrency : 0;
    if (nthreads > MAX_THREADS)
        nthreads = MAX_THREADS;
    pthread_t threads[MAX_THREADS];
    unsigned started = 0;
    r.max_jobs = (size_t)nthreads * JOBS_PER_THREAD;
    for (; started < nthreads; started++)
        if (pthread_create(&threads[started], NULL, worker_main, &r) != 0)
            break;
    if (nthreads != 0 && started == 0)
        r.max_jobs = 0; /* no thread could start: one at a time */
    if (r.max_jobs == 0 && gyre_store_open(dsn, GYRE_STORE_OPEN_WRITE, &r.writer, err, sizeof(err)) != 0) {
        fprintf(stderr, "gyre score: %s\n", err);
        r.write_failed = 1;
    }
    gyre_corpus_query_t q;
    memset(&q, 0, sizeof(q));
    q.q.from_us = from_us;
    q.q.to_us = to_us;
    q.q.route = route;
    q.q.agent = agent;
    q.with_scores = 1; /* a correctness judge reads the feedback's correction */
    q.ok_only = 1;
    int sr = r.write_failed ? 0 : gyre_corpus_scan(store, &q, example_cb, &r, err, sizeof(err));
    pthread_mutex_lock(&r.mu);
    r.done = 1;
    pthread_cond_broadcast(&r.cv);
    pthread_mutex_unlock(&r.mu);
    for (unsigned i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    /* What a failed write left queued is not scored. */
    for (job_t *j = r.head, *next; j != NULL; j = next) {
        next = j->next;
        example_free(&j->ex);
        free(j);
    }
    if (r.writer != NULL)
        gyre_store_close(r.writer);
    pthread_mutex_destroy(&r.mu);
    pthread_cond_destroy(&r.cv);
    if (r.write_failed)
        goto out; /* said above */
    if (r.progress)
        fputc('\n', stderr);
    if (sr < 0) {
        fprintf(stderr, "gyre score: reading the corpus: %s\n", err);
        goto out;
    }
    if (sr > 0)
        goto out; /* a score that could not be stored, said above */
    double mean = r.scored != 0 ? r.sum / (double)r.scored : 0;
    char mean_text[32] = "null";
    if (r.scored != 0)
        snprintf(mean_text, sizeof(mean_text), "%.6g", mean);
    if (json)
        printf("{\"scorer\":\"%s\",\"scored\":%llu,\"passed\":%llu,\"failed\":%llu,\"errors\":%llu,\"mean\":%s}\n",
               scorer, (unsigned long long)r.scored, (unsigned long long)r.passed, (unsigned long long)r.failed,
               (unsigned long long)r.errors, mean_text);
    if (!json)
        printf("%s: %llu scored (%llu passed, %llu failed), %llu errors, mean %.4f\n", scorer,
               (unsigned long long)r.scored, (unsigned long long)r.passed, (unsigned long long)r.failed,
               (unsigned long long)r.errors, mean);
    rc = r.errors != 0 ? 1 : 0;
out:
    gyre_scorer_set_free(set);
    if (store != NULL)
        gyre_store_close(store);
    gyre_config_free(c);
    return rc;
}
