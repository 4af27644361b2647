/*
 * Deploying a candidate as a canary behind a route, and watching it after
 * full promotion (issue 15, points 5 and 6).
 *
 * A deployment is a row of table `deployments` in the control-plane state
 * (control/state.h): the route, the run, the candidate, the route as it was
 * before (the incumbent, in force again on a rollback), the ramp, the step
 * and when it began, the state, and every decision taken with its figures.
 * gyre_deploy_tick (every second, from the server's thread) advances each
 * active one from what is stored alone: the observations of a step are the
 * route's traces since the step began, read back from the trace store with
 * their scores, so a decision after a restart is the one it would have been.
 *
 * Canary: a live route overlay (server/live.h) with the incumbent's targets
 * and the candidate as one more, weights (100-p, p), strategy weighted.  At
 * 100 % the candidate is the only target and the incumbent's targets its
 * first fallbacks (instant rollback).  A rollback puts the route as it was
 * (its overlay, or none) and unloads an adapter.  Every change goes through
 * the host's set_route, which is atomic (a new generation; no request is
 * dropped) and audited, with actor "loop:<run>" or the caller's.
 *
 * The sequential test: each arm's mean of each watched signal (1 - error,
 * and each scorer in `metrics`: a heuristic's pass as 1/0, a score in [0,1]
 * as it is; higher is better) gets an always-valid confidence sequence
 * (gyre_deploy_cs_radius), at alpha/2 per arm, so the difference
 * candidate - incumbent lies in [lo, hi] at every moment at once with
 * probability at least 1 - alpha, however often it is looked at.  Roll back
 * as soon as hi < -max_drop for a signal (shown worse) or an alert on the
 * route fires; promote when both arms have min_requests and lo >= -max_drop
 * for every signal (shown not worse), or when step_time passed with nothing
 * shown worse.
 *
 * Watch: after 100 %, once the watch window has passed, a report per
 * cluster (the newest clustering's, else one cluster "all"): scores, cost,
 * latency and error rate in the window after promotion against the same
 * length before the deployment began, each difference with a normal
 * confidence interval at 1 - alpha.  A quality or error regression beyond
 * max_drop (shown at the interval's upper bound) notifies and rolls back;
 * else the deployment is done.
 */
#ifndef GYRE_LOOP_DEPLOY_H
#define GYRE_LOOP_DEPLOY_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "config/config.h"
#include "control/state.h"
#include "loop/loopspec.h"

/* Traces read for one step's (or one watch window's) observations: the newest this many; past it the oldest are
 * left out (a step with more calls than this has long been decided). */
#define GYRE_DEPLOY_MAX_OBS 200000
/* Decisions kept in a deployment's history (the newest; a held step records no decision). */
#define GYRE_DEPLOY_MAX_DECISIONS 64
/* The confidence sequence's mixing: it is tightest near this many observations per arm. */
#define GYRE_DEPLOY_CS_N0 10.0

typedef struct gyre_deploy_host { /* the server fills it (server/loop_host.c, lead; server/deploy_host.c) */
    void *ctx;
    gyre_state_t *state;   /* deployments live in table `deployments` */
    const char *store_dsn; /* observations: traces of the route and their scores */
    /* Puts route_json (a route in the YAML shape, JSON) in force for `route`, atomically, audited; NULL removes
     * the live overlay (the file's route again). */
    int (*set_route)(void *ctx, const char *actor, const char *action, const char *route, const char *route_json,
                     char *err, size_t errlen);
    char *(*route_json)(void *ctx, const char *route); /* the route in force (malloc'd) */
    const gyre_config_t *(*config)(void *ctx);         /* the generation in force (valid until the next call) */
    int (*alert_firing)(void *ctx, const char *route, char *rule, size_t rule_size); /* 1: a rule fires */
    void (*notify)(void *ctx, const char *title, const char *text); /* through the config's notifiers */
    /* Added: whether `route` has a live overlay now (a rollback then restores it; else it removes the overlay). */
    int (*route_overridden)(void *ctx, const char *route);
} gyre_deploy_host_t;

/* Starts a canary of `candidate_model` on `candidate_provider` for `route` (ramp step 0).  One per route.  With
 * serve->adapter vllm or llamacpp, candidate_model is the artifact (the adapter's path): it is loaded first
 * (gyre_serve_load) and the route targets the adapter's name.  watch_window_ms 0: done at 100 %.  0; -EBUSY (a
 * deployment of the route is active); -ENOENT (no such route); -EINVAL (a bad argument: err names it); another
 * negative errno. */
int gyre_deploy_begin(const gyre_deploy_host_t *h, const gyre_deploy_conf_t *conf, const char *route,
                      const char *run_id, const char *candidate_provider, const char *candidate_model,
                      const gyre_serve_conf_t *serve, char *err, size_t errlen);
/* The same with the watch window (gyre_deploy_begin watches for 1 h, the spec's default). */
int gyre_deploy_begin_watch(const gyre_deploy_host_t *h, const gyre_deploy_conf_t *conf, uint64_t watch_window_ms,
                            const char *route, const char *run_id, const char *candidate_provider,
                            const char *candidate_model, const gyre_serve_conf_t *serve, char *err, size_t errlen);
/* Advances every active deployment: step decisions, watch.  Any thread; one change at a time. */
void gyre_deploy_tick(const gyre_deploy_host_t *h, int64_t now_us);
/* {"deployments":[...newest first...]} (of `route`, or all when NULL).  0, or a negative errno. */
int gyre_deploy_status_json(const gyre_deploy_host_t *h, const char *route /* NULL: all */, gyre_buf_t *out);
/* The next ramp step now (at 100 %: done, the watch ended).  -ENOENT: nothing active on the route. */
int gyre_deploy_promote(const gyre_deploy_host_t *h, const char *route, const char *actor, char *err, size_t errlen);
/* The route as it was before, the adapter unloaded.  -ENOENT: no deployment of the route to roll back. */
int gyre_deploy_rollback(const gyre_deploy_host_t *h, const char *route, const char *actor, const char *reason,
                         char *err, size_t errlen);
/* The state of the deployment a run made: "canary" | "promoted" (100 %, watching) | "done" | "rolled_back".
 * json (may be NULL) gets the deployment's JSON.  0, or -ENOENT. */
int gyre_deploy_run_state(const gyre_deploy_host_t *h, const char *run_id, char *state, size_t size, gyre_buf_t *json);

/* ---- A deployment asked for over HTTP (POST /api/deploy/{route}/begin; deploy_req.c) ---- */

/* The longest begin body read (bigger is the caller's 413). */
#define GYRE_DEPLOY_REQUEST_MAX ((size_t)64 * 1024)

typedef struct gyre_deploy_request {
    const char *run_id, *provider, *model; /* required */
    gyre_deploy_conf_t conf;               /* defaults: ramp 5 25 100, 50, 10 min, 0.02, 0.05, rollback on alert */
    char *metrics[GYRE_LOOP_MAX_SCORERS];
    gyre_serve_conf_t serve;  /* adapter {"kind","provider","name"}; provider defaults to the candidate's */
    uint64_t watch_window_ms; /* default 1 h; 0: none */
    void *doc;                /* the parsed body, which the strings point into (gyre_deploy_request_dispose) */
} gyre_deploy_request_t;

/*
 * Reads a begin body: {"run_id", "provider", "model", "ramp", "min_requests", "step_time", "metrics", "max_drop",
 * "alpha", "rollback_on_alert", "watch_window", "adapter"} (durations as milliseconds or "500ms", "30s", "10m",
 * "1h").  0; or -EINVAL with `param` (at least 32 bytes) naming the field and `err` saying why, nothing to dispose.
 * The checks of the values together (the ramp's order, alpha's range) are gyre_deploy_begin's.
 */
int gyre_deploy_request_parse(const char *body, size_t len, gyre_deploy_request_t *out, char *param, size_t plen,
                              char *err, size_t errlen);
void gyre_deploy_request_dispose(gyre_deploy_request_t *r);

/* ---- Pure pieces, public for their tests ---- */

/* The route JSON with the candidate at `percent` (below 100: weighted beside the incumbent's targets; 100: alone,
 * the incumbent's targets and fallbacks after it as fallbacks), from the incumbent's route JSON.  malloc'd (free
 * with cJSON_free), or NULL when `incumbent_json` is not a JSON object. */
char *gyre_deploy_route_at(const char *incumbent_json, size_t len, const char *route, const char *provider,
                           const char *model, unsigned percent);

/*
 * The radius of the two-sided normal-mixture confidence sequence (Robbins; Howard et al. 2021) for the mean of n
 * observations in [0, 1] (sub-Gaussian with variance 1/4): with v = n/4 and rho = GYRE_DEPLOY_CS_N0/4,
 *   r(n) = sqrt((v + rho) * ln((v + rho) / (rho * alpha^2))) / n,
 * so that P(for some n, |mean_n - mu| > r(n)) <= alpha.  +inf for n = 0.
 */
double gyre_deploy_cs_radius(uint64_t n, double alpha);

/* One arm's observations of one signal (values in [0, 1], higher is better). */
typedef struct gyre_deploy_arm {
    uint64_t n;
    double sum;
} gyre_deploy_arm_t;

/* Bounds on candidate - incumbent, each arm at alpha/2.  lo = -inf, hi = +inf when an arm has none. */
void gyre_deploy_diff_bounds(const gyre_deploy_arm_t *cand, const gyre_deploy_arm_t *inc, double alpha, double *lo,
                             double *hi);

/* A step's observations: signal 0 is 1 - error, signals 1..nmetrics the watched scorers. */
typedef struct gyre_deploy_obs {
    unsigned percent; /* the candidate's weight in the step (0: not said, and its share is not checked) */
    size_t nsignals;
    gyre_deploy_arm_t cand[1 + GYRE_LOOP_MAX_SCORERS], inc[1 + GYRE_LOOP_MAX_SCORERS];
} gyre_deploy_obs_t;

typedef enum gyre_deploy_verdict {
    GYRE_DEPLOY_HOLD = 0,
    GYRE_DEPLOY_PROMOTE,
    GYRE_DEPLOY_ROLLBACK,
} gyre_deploy_verdict_t;

/* The step's decision from its observations, how long it has run and whether an alert fires on the route (why
 * says which signal or rule, and the bounds).  A candidate whose share of the step's calls is shown below half its
 * weight (the share's confidence sequence at alpha) is rolled back: something keeps it from being called (an open
 * breaker, a refused key), which the traces of its own calls cannot show. */
gyre_deploy_verdict_t gyre_deploy_decide(const gyre_deploy_conf_t *conf, const gyre_deploy_obs_t *o,
                                         const char *const *signal_names, int64_t elapsed_us, int alert_firing,
                                         const char *alert_rule, char *why, size_t whylen);

#endif
