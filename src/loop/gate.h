/*
 * The eval gate (issue 15, point 4): the held-out split of a dataset is
 * replayed through gyre itself (so the calls are traced, costed and limited
 * like any other, as agent "gyre-gate"), once with the candidate model and
 * once with the incumbent; both answers are scored with the gate's scorers;
 * the paired differences get bootstrap confidence intervals (loop/stats.h),
 * overall and per cluster; the rules of the gate decide.
 *
 * The metric of a call, per scorer: a judge's score value (0..1), a
 * heuristic's pass (1 or 0), so that every scorer reads higher-is-better.
 * A call that failed (status >= 400, no answer) is not scored: it counts 0
 * on every scorer (a failed call is no good answer).  A scorer that could
 * not give a value on an answer (a judge that failed) leaves that pair out
 * of that scorer's metric.
 *
 * Cost: gyre answers no cost header, so a call's cost is its answer's usage
 * priced as gyre prices it (the provider's `prices:` over the price table,
 * config/prices.h); unknown (null) when the model has no price or the call
 * failed; the cost metric reads the pairs where both sides have one.
 *
 * The rules (gyre_gate_rule_t), at conf->confidence:
 *   scorer S:      the interval's lower bound of mean(cand) - mean(inc) >= -max_drop
 *   cost:          the upper bound of mean(cand) / mean(inc) - 1 <= max_increase
 *   latency_p95:   the upper bound of p95(cand) / p95(inc) - 1 <= max_increase
 *   error_rate:    the upper bound of rate(cand) - rate(inc) <= max_increase
 *   cluster_max_drop: for every cluster with at least GYRE_GATE_CLUSTER_MIN
 *                  lines and every scorer, the point estimate of
 *                  mean(inc) - mean(cand) <= max_drop.  The point estimate,
 *                  not the interval: a cluster holds few lines and its
 *                  interval is wide, so a bound on it would fail every
 *                  small cluster whatever the candidate did; the intervals
 *                  are in the report to read.
 * A comparison allows 1e-9 for the rounding of doubles (0.99 - 1 is not
 * below -0.01).  No rules: every scorer with max_drop 0.01.  Passed = every
 * rule passes.
 *
 * The report (JSON) holds the inputs (candidate, incumbent, dataset, the
 * gate's conf with its seed), every metric and cluster with its interval,
 * rule, pass and why, and the paired observations of every line, so that
 * gyre_gate_decide_report recomputes the verdict from the report alone
 * through the same function (gyre_gate_decide).
 */
#ifndef GYRE_LOOP_GATE_H
#define GYRE_LOOP_GATE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "config/config.h"
#include "loop/loopspec.h"
#include "otlp/httpc.h"

/* The agent every replayed call names (x-gyre-agent). */
#define GYRE_GATE_AGENT "gyre-gate"
/* A cluster is held to cluster_max_drop only with this many paired lines: fewer say little either way. */
#define GYRE_GATE_CLUSTER_MIN 5u
/* The max_drop of the default rule (every scorer) when the gate has none. */
#define GYRE_GATE_DEFAULT_MAX_DROP 0.01
/* The most held-out lines replayed (conf->limit above it is cut to it): the report keeps every pair. */
#define GYRE_GATE_MAX_LINES 20000u
/* A held-out line is read up to 8 MiB (the dataset writer leaves out a longer one). */
#define GYRE_GATE_LINE_MAX ((size_t)8 << 20)
/* heldout.jsonl is read up to 512 MiB, manifest.json up to 256 MiB (the dataset reader's bound). */
#define GYRE_GATE_HELDOUT_MAX ((size_t)512 << 20)
#define GYRE_GATE_MANIFEST_MAX ((size_t)256 << 20)
/* One replayed call: its answer up to 4 MiB, the whole exchange within 120 s. */
#define GYRE_GATE_ANSWER_MAX ((size_t)4 << 20)
#define GYRE_GATE_CALL_TIMEOUT_MS 120000u
/* A stored report is read up to 64 MiB (20000 pairs of 16 scores are about 12 MiB). */
#define GYRE_GATE_REPORT_MAX ((size_t)64 << 20)
#define GYRE_GATE_CLUSTER_NAME 24

typedef struct gyre_gate_env {
    const gyre_config_t *config; /* the scorers, the prices */
    const gyre_gate_conf_t *conf;
    const char *dataset_dir;           /* heldout.jsonl (and manifest.json: each line's trace and cluster) */
    const char *candidate, *incumbent; /* the `model` values sent to gyre ("provider/model", direct addressing) */
    gyre_httpc_url_t url;              /* gyre's own listener, .../v1/chat/completions */
    const char *key;                   /* gyre's internal key */
    /* Called from the replay threads (any of them) after each call, one call at a time (under the gate's lock, so
     * it must not call the gate): done and total count calls, two per line. */
    void (*progress)(void *ctx, unsigned done, unsigned total);
    void *progress_ctx;
} gyre_gate_env_t;

/* Replays, scores, compares, decides.  report_json/report_md filled; *passed 1 or 0.  Negative errno when the
 * gate could not run at all (err says why). */
int gyre_gate_run(const gyre_gate_env_t *env, gyre_buf_t *report_json, gyre_buf_t *report_md, int *passed, char *err,
                  size_t errlen);
/* The decision again from a stored report alone (its paired observations, seed, rules): 1 pass, 0 fail, <0 bad
 * report (err says what).  When the report's own "passed" differs from the recomputed verdict, err says so (the
 * recomputed verdict is still returned). */
int gyre_gate_decide_report(const char *report_json, size_t len, char *err, size_t errlen);

/* ---- The pieces, for the tests, the fuzz driver and the CLI ---- */

/* One side of a pair: what one replayed call gave. */
typedef struct gyre_gate_side {
    int error;                            /* 1: status >= 400 or no answer */
    double latency_ms;                    /* measured around the call */
    double cost_usd;                      /* NaN: unknown */
    double scores[GYRE_LOOP_MAX_SCORERS]; /* per conf->scorers[k]; NaN: the scorer gave no value */
} gyre_gate_side_t;

typedef struct gyre_gate_obs {
    unsigned line;                        /* heldout.jsonl's line, from 1 */
    char cluster[GYRE_GATE_CLUSTER_NAME]; /* the manifest's cluster ("-1": none), or "all" */
    gyre_gate_side_t cand, inc;
} gyre_gate_obs_t;

typedef struct gyre_gate_input {
    const char *candidate, *incumbent, *dataset; /* named in the report */
    const char *cost_source;                     /* how costs were found (a sentence), or NULL */
    const gyre_gate_conf_t *conf;                /* scorers, rules, confidence, resamples, seed */
    const gyre_gate_obs_t *obs;
    size_t nobs;
} gyre_gate_input_t;

/* Computes every metric, applies the rules, writes the report (JSON with the observations, and markdown; either
 * may be NULL) and *passed.  0, or -EINVAL with err (a rule naming a scorer the gate does not run, no pairs). */
int gyre_gate_decide(const gyre_gate_input_t *in, gyre_buf_t *report_json, gyre_buf_t *report_md, int *passed,
                     char *err, size_t errlen);

/* One held-out line split for the replay: `messages` gets the messages without the final assistant one (compact
 * JSON array), `tools` the line's tools array (empty when none), `reference` the final answer's text (its content,
 * or its tool calls as "name(arguments)" lines).  0, or -EINVAL with err naming the field. */
int gyre_gate_split_line(const char *line, size_t len, gyre_buf_t *messages, gyre_buf_t *tools, gyre_buf_t *reference,
                         char *err, size_t errlen);
/* The clusters of heldout.jsonl's lines 1..nlines from a manifest's provenance (`examples`: {file
 * "heldout.jsonl", line, cluster}): clusters[i] gets line i+1's cluster as a decimal ("-1": the line had none).
 * Returns 1 when the manifest names every line, 0 when it does not (then every line is "all": a partial map
 * would compare clusters of unknown make-up), -EINVAL when it is not JSON. */
int gyre_gate_manifest_clusters(const char *manifest, size_t len, char (*clusters)[GYRE_GATE_CLUSTER_NAME],
                                size_t nlines);

#endif
