/*
 * A clustering run over the store (cluster.h: gyre_cluster_rebuild) and the
 * scheduler that repeats it in `gyre serve` (`clusters: every:`).
 *
 * One run at a time in a process: a rebuild holds ~350 bytes per trace and
 * a core for as long as it takes, so a second one (the API's while the
 * scheduler's runs) is refused with -EBUSY rather than doubled.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "loop/cluster.h"

static pthread_mutex_t running = PTHREAD_MUTEX_INITIALIZER;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int add_cb(void *ctx, const gyre_example_t *ex)
{
    return gyre_clusterer_add(ctx, ex);
}

int gyre_cluster_rebuild(gyre_store_t *s, const gyre_cluster_rebuild_opts_t *ro, gyre_buf_t *json_out, char *err,
                         size_t errlen)
{
    if (pthread_mutex_trylock(&running) != 0) {
        snprintf(err, errlen, "a clustering is running already; try again when it is done");
        return -EBUSY;
    }
    int64_t created = now_us();
    int64_t to = ro->to_us != 0 ? ro->to_us : created;
    int64_t window = ro->conf != NULL && ro->conf->window_us > 0 ? ro->conf->window_us : (int64_t)7 * 86400 * 1000000;
    int64_t from = ro->from_us != 0 ? ro->from_us : to - window;
    gyre_cluster_opts_t o = {
        .k = ro->k != 0 ? ro->k : ro->conf != NULL ? ro->conf->k : 0,
        .min_sessions = ro->conf != NULL ? ro->conf->min_sessions : 0,
        .seed = ro->conf != NULL ? ro->conf->seed : 0,
        .window_from_us = from,
        .window_to_us = to,
    };
    gyre_clusterer_t *c = gyre_clusterer_new(&o);
    gyre_corpus_query_t q = {.with_scores = 1};
    q.q.from_us = from;
    q.q.to_us = to;
    gyre_cluster_result_t *res = NULL;
    gyre_cluster_assign_t *assign = NULL;
    int r = gyre_corpus_scan(s, &q, add_cb, c, err, errlen);
    if (r > 0 || r == -E2BIG) {
        snprintf(err, errlen, "more than %zu traces in the window; give a shorter one", GYRE_CLUSTER_MAX_EXAMPLES);
        r = -E2BIG;
    }
    if (r == 0)
        r = gyre_clusterer_finish(c, &res, err, errlen);
    if (r == 0) {
        char run_id[24];
        gyre_cluster_run_id(created, o.seed, run_id);
        size_t start = json_out->len;
        r = gyre_cluster_result_json(res, run_id, created, json_out);
        if (r != 0) {
            snprintf(err, errlen, "the run's JSON is larger than %zu bytes", json_out->max);
        } else {
            assign = gyre_malloc((res->n ? res->n : 1) * sizeof(*assign));
            for (size_t i = 0; i < res->n; i++) {
                assign[i].trace_id = res->trace_ids[i];
                assign[i].cluster = res->cluster[i];
            }
            r = gyre_store_put_cluster_run(s, run_id, created, json_out->base + start, json_out->len - start, assign,
                                           res->n, err, errlen);
        }
        if (r == 0)
            gyre_logf("clusters: run %s: %zu traces, %zu clusters, featurising %.2f s, clustering %.2f s", run_id,
                      res->n, res->nleaves, res->featurize_s, res->cluster_s);
    }
    free(assign);
    gyre_cluster_result_free(res);
    gyre_clusterer_free(c);
    pthread_mutex_unlock(&running);
    return r;
}

/* ---- The scheduler: `clusters: every:` in gyre serve. ---- */

/* The run's JSON in memory while it is stored: a run of 256 clusters is ~200 KB. */
#define SCHED_JSON_MAX ((size_t)16 << 20)
/* Its thread's nice value: the lowest priority, below the workers and the API's readers. */
#define SCHED_NICE 19

struct gyre_cluster_sched {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int stop;
    char *dsn;
    gyre_clusters_conf_t conf; /* the strings are not kept: a rebuild reads only the numbers */
};

static void *sched_main(void *arg)
{
    gyre_cluster_sched_t *sc = arg;
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), SCHED_NICE);
    gyre_store_t *s = NULL;
    pthread_mutex_lock(&sc->mu);
    while (!sc->stop) {
        uint64_t every = sc->conf.every_ms;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        uint64_t wait_ms = every != 0 ? every : 60000; /* off: look again in a minute (a reload may turn it on) */
        until.tv_sec += (time_t)(wait_ms / 1000);
        until.tv_nsec += (long)(wait_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        while (!sc->stop && pthread_cond_timedwait(&sc->cond, &sc->mu, &until) != ETIMEDOUT)
            ;
        if (sc->stop || every == 0 || sc->conf.every_ms == 0)
            continue;
        gyre_clusters_conf_t conf = sc->conf;
        pthread_mutex_unlock(&sc->mu);
        char err[256] = "";
        int r = 0;
        if (s == NULL)
            r = gyre_store_open(sc->dsn, 0, &s, err, sizeof(err));
        if (r == 0) {
            gyre_buf_t json;
            gyre_buf_init(&json, SCHED_JSON_MAX);
            gyre_cluster_rebuild_opts_t ro = {.conf = &conf};
            r = gyre_cluster_rebuild(s, &ro, &json, err, sizeof(err));
            gyre_buf_dispose(&json);
        } else {
            s = NULL;
        }
        if (r != 0 && r != -ENODATA)
            gyre_logf("clusters: the scheduled clustering failed: %s", err);
        pthread_mutex_lock(&sc->mu);
    }
    pthread_mutex_unlock(&sc->mu);
    if (s != NULL)
        gyre_store_close(s);
    return NULL;
}

int gyre_cluster_sched_start(const gyre_config_t *config, gyre_cluster_sched_t **out)
{
    *out = NULL;
    if (config->store_dsn == NULL)
        return 0;
    gyre_cluster_sched_t *sc = gyre_calloc(1, sizeof(*sc));
    pthread_mutex_init(&sc->mu, NULL);
    pthread_cond_init(&sc->cond, NULL);
    sc->dsn = gyre_strdup(config->store_dsn);
    sc->conf = config->clusters;
    sc->conf.embeddings_route = sc->conf.naming_route = NULL;
    /* The thread takes no signal: gyre serve's main thread waits for them with sigwait. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = pthread_create(&sc->thread, NULL, sched_main, sc);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        free(sc->dsn);
        free(sc);
        return -r;
    }
    *out = sc;
    return 0;
}

void gyre_cluster_sched_reconfigure(gyre_cluster_sched_t *sc, const gyre_config_t *next)
{
    if (sc == NULL)
        return;
    pthread_mutex_lock(&sc->mu);
    sc->conf = next->clusters;
    sc->conf.embeddings_route = sc->conf.naming_route = NULL;
    pthread_cond_signal(&sc->cond);
    pthread_mutex_unlock(&sc->mu);
}

void gyre_cluster_sched_stop(gyre_cluster_sched_t *sc)
{
    if (sc == NULL)
        return;
    pthread_mutex_lock(&sc->mu);
    sc->stop = 1;
    pthread_cond_signal(&sc->cond);
    pthread_mutex_unlock(&sc->mu);
    /* A run in progress finishes first (it cannot be cut without losing it); the store's own bounds keep it finite. */
    pthread_join(sc->thread, NULL);
    pthread_mutex_destroy(&sc->mu);
    pthread_cond_destroy(&sc->cond);
    free(sc->dsn);
    free(sc);
}
