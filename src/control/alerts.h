/*
 * The alert engine: `alerts:` rules evaluated in-process every second over
 * rolling windows kept in memory (never a store query), with the actions
 * they take while they fire (docs/alerts.md).
 *
 * Samples.  Each finished request is observed on its own worker
 * (gyre_alerts_observe, from gyre_ctx_trace_done): one sample per upstream
 * attempt, labelled with the request's route and agent and the attempt's
 * provider and key id (so a 429 on key A counts against A even when key B
 * answered), and the request's own figures (latency, TTFT, tokens, cost)
 * on its last attempt.  A worker adds them to cumulative counters in a
 * table of its own (GYRE_ALERTS_MAX_SERIES label sets; the next ones fold
 * into a set whose labels are all "other", counted in
 * gyre_alert_series_folded_total): one writer per counter, relaxed atomic
 * stores, no lock and no allocation on the request path.
 *
 * Evaluation.  A thread of its own wakes every second, reads every
 * worker's counters, and adds what changed since the last second into each
 * rule's window: up to 60 slots per label set (1 s each for windows up to a
 * minute, window/60 beyond).  Latencies are kept in a histogram with fixed
 * log buckets (four per doubling, from 1 ms: a quantile is the upper bound
 * of its bucket, at most 19 % above the true value).  A window with no calls
 * has no value for a rate or a quantile, and the condition is then false.
 *
 * States.  inactive -> pending (the condition holds, `for:` not yet
 * passed) -> firing -> resolved (it has been false for `resolve_for`, and
 * the alert fired at least `min_firing`); pending -> inactive when the
 * condition stops holding first.  Each transition is an event: kept in
 * memory (the last GYRE_ALERTS_EVENTS_KEPT), handed to the `event` hook
 * (the server stores it in the control-plane database), counted in
 * /metrics.  Notifications go out on firing and on resolved only, once per
 * rule and label set (the fingerprint), after the built-in actions, whose
 * outcome their annotations carry.
 *
 * Ownership: the server creates one engine (gyre_alerts_create) and
 * destroys it at exit; the configuration and the overrides it is given must
 * outlive it (or be replaced through gyre_alerts_reconfigure).
 */
#ifndef GYRE_CONTROL_ALERTS_H
#define GYRE_CONTROL_ALERTS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "config/config.h"
#include "control/notify.h"
#include "route/override.h"
#include "trace/trace.h"

/* Label sets per worker; the last is "other". */
#define GYRE_ALERTS_MAX_SERIES 256
/* Label sets per rule; the last is "other". */
#define GYRE_ALERTS_MAX_SETS 64
/* A label value's bytes kept (longer ones are cut; bytes other than printable ASCII, '"' and '\' become '?'). */
#define GYRE_ALERTS_LABEL_MAX 64
/* Latency histogram: bucket i holds values up to 2^(i/4) ms; the last one everything above 2^(79/4) ms. */
#define GYRE_ALERTS_HIST_BUCKETS 80
/* Slots per window. */
#define GYRE_ALERTS_SLOTS 60
/* Events the engine keeps in memory for GET /api/alerts. */
#define GYRE_ALERTS_EVENTS_KEPT 256

typedef struct gyre_alerts gyre_alerts_t;

typedef enum gyre_alert_state {
    GYRE_ALERT_INACTIVE = 0,
    GYRE_ALERT_PENDING,
    GYRE_ALERT_FIRING,
    GYRE_ALERT_RESOLVED,
} gyre_alert_state_t;

const char *gyre_alert_state_name(gyre_alert_state_t s);

/* One transition, as stored and listed. */
typedef struct gyre_alert_event {
    int64_t at_us; /* unix microseconds */
    char rule[128];
    char severity[32];
    char state[12]; /* "pending", "firing", "resolved", "inactive" */
    char fingerprint[17];
    char labels[4 * (GYRE_ALERTS_LABEL_MAX + 16) + 8]; /* a JSON object: {"provider":"p","key":"p#0"} */
    char condition[160];
    double value; /* the signal's value when it changed (NaN: no calls in the window) */
    char actions[1024]; /* what gyre did, or could not do, sentence by sentence */
} gyre_alert_event_t;

typedef struct gyre_alerts_hooks {
    /* A notifier's notice (server.c: gyre_notify_send).  0, or a negative errno. */
    int (*send)(void *data, const char *notifier, const gyre_notice_t *notice);
    void *send_data;
    /* Each event, on the evaluator's thread (server.c: stored by alerts_store.c). */
    void (*event)(void *data, const gyre_alert_event_t *ev);
    void *event_data;
    /* The whole gateway's gauges: inflight, queue_depth, trace_log_lag, trace_spool_bytes. */
    double (*gauge)(void *data, gyre_alert_signal_t s);
    void *gauge_data;
} gyre_alerts_hooks_t;

/* An engine for `c`'s rules, acting on `o` (may be NULL: the built-in actions then say they could not act). */
gyre_alerts_t *gyre_alerts_create(const gyre_config_t *c, gyre_overrides_t *o, unsigned nworkers,
                                  const gyre_alerts_hooks_t *hooks);
/* Starts the evaluator thread (a tick every second on the wall clock).  0 or a negative errno. */
int gyre_alerts_start(gyre_alerts_t *a);
/* Stops the thread and frees the engine (firing overrides are left as they are: the process is ending). */
void gyre_alerts_destroy(gyre_alerts_t *a);

/* A finished request on worker `worker` (< nworkers): its samples.  Only that worker calls it for its index. */
void gyre_alerts_observe(gyre_alerts_t *a, unsigned worker, const gyre_trace_t *t);

/* One evaluation at `now_us` (the thread calls it each second; tests call it with their own clock). */
void gyre_alerts_tick(gyre_alerts_t *a, int64_t now_us);

/*
 * The live-reload helper's call, from the main thread while workers run: the rules become `next`'s and the
 * overrides `next_overrides` (the old table is the caller's to free after).  An alert that fires under a rule
 * of the same name keeps firing, and its built-in actions are applied again on the new table by name (route,
 * provider, key id); the windows start empty.  Rules that are gone end without a notification.  0.
 */
int gyre_alerts_reconfigure(gyre_alerts_t *a, const gyre_config_t *next, gyre_overrides_t *next_overrides);

/* GET /api/alerts: {"alerts":[current pending and firing ones],"events":[newest first]}.  0 or -E2BIG. */
int gyre_alerts_render_json(gyre_alerts_t *a, gyre_buf_t *out);
/* gyre_alert_transitions_total{rule,state}, gyre_alerts_firing{rule}, gyre_alert_series_folded_total. */
int gyre_alerts_render_metrics(gyre_alerts_t *a, gyre_buf_t *out);

/* ---- Pure pieces, public for their tests ---- */

/* The histogram bucket of a value in ms, and the upper bound of a bucket (ms). */
size_t gyre_alerts_hist_bucket(double ms);
double gyre_alerts_hist_upper(size_t bucket);
/* The q-quantile (0 < q <= 1) of a histogram: the upper bound of the bucket holding it; NaN when empty. */
double gyre_alerts_hist_quantile(const uint32_t *hist, double q);

/* One label set's state under a rule. */
typedef struct gyre_alert_fsm {
    gyre_alert_state_t state;
    int64_t true_since_us;  /* when the condition last became true (pending's start) */
    int64_t false_since_us; /* while firing: when it last became false; 0 while it holds */
    int64_t fired_at_us;
} gyre_alert_fsm_t;

/* Steps the state machine with the condition's value at `now_us`; the new state when it changed, else -1. */
int gyre_alert_fsm_step(gyre_alert_fsm_t *f, const gyre_alert_rule_conf_t *r, int cond, int64_t now_us);

#endif
