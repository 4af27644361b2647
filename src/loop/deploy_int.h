/* What deploy.c and watch.c share (not an interface: src/loop/deploy.h is). */
#ifndef GYRE_LOOP_DEPLOY_INT_H
#define GYRE_LOOP_DEPLOY_INT_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "loop/deploy.h"
#include "store/store.h"

/* One trace of the route, as the test and the watch read it. */
typedef struct gyre_deploy_trace {
    char id[33];
    int cand_first;  /* the first attempt went to the candidate (the weighted pick's arm) */
    int err;         /* that attempt failed: a status >= 500, or none (connection error, timeout) */
    int cand_answer; /* the answer came from the candidate (its scores are the candidate's) */
    double cost_usd; /* NaN: unknown */
    double latency_ms;
    int32_t cluster;                   /* -1: none */
    double val[GYRE_LOOP_MAX_SCORERS]; /* each watched scorer's value in [0, 1]; NaN: not scored */
} gyre_deploy_trace_t;

/* The route's traces started in [from, to) (the newest GYRE_DEPLOY_MAX_OBS), sorted by id, with the watched
 * scorers' values; with_cluster: each one's cluster (one lookup each).  *out is malloc'd.  0 or a negative errno. */
int gyre_deploy_collect(gyre_store_t *s, const char *route, const char *provider, const char *model, int64_t from_us,
                        int64_t to_us, const char *const *metrics, size_t nmetrics, int with_cluster,
                        gyre_deploy_trace_t **out, size_t *n, char *err, size_t errlen);

/* Folds traces into a step's observations. */
void gyre_deploy_observe(const gyre_deploy_trace_t *t, size_t n, size_t nmetrics, gyre_deploy_obs_t *o);

/* watch.c: the before/after report per cluster; *regressed 1 when a quality signal or the error rate is shown
 * worse by more than max_drop in a cluster (why says which).  The report is a new cJSON object. */
cJSON *gyre_deploy_watch_report(const gyre_deploy_trace_t *before, size_t nbefore, const gyre_deploy_trace_t *after,
                                size_t nafter, const char *const *metrics, size_t nmetrics, double alpha,
                                double max_drop, int *regressed, char *why, size_t whylen);

#endif
