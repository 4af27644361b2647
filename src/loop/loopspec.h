/*
 * The loop spec (issue 15): a YAML file that says how one route's model is
 * improved, from curation to a watched deployment.  `gyre loop run --spec
 * loop.yaml` and the scheduler of `gyre serve` read it (src/loop/loopspec.c);
 * every other part of the loop gets its own section as one of the structs
 * below, already checked:
 *
 *   name: support                  # the loop's name (default: the route's)
 *   route: support                 # the route whose model is improved; its first target is the incumbent
 *   curate: curate.yaml            # a curation spec (relative to this file), or
 *   dataset: 3f0c...               # an existing dataset's id (one of the two)
 *   train:                         # src/loop/train.h
 *     backend: together            # openai | together | command
 *     provider: together           # the provider of gyre's config whose base_url and key train (openai, together)
 *     base_model: meta-llama/Llama-3.1-8B-Instruct
 *     method: sft                  # sft | dpo (dpo trains on preference.jsonl)
 *     training_type: lora          # lora | full (together)
 *     epochs: 3
 *     learning_rate: 1e-5
 *     batch_size: 8
 *     lora_rank: 16
 *     suffix: support-v2
 *     command: "python train.py --train {train} --valid {heldout} --out {out}"   # command
 *     timeout: 6h
 *     poll: 10s
 *   serve:                         # src/loop/serve.h
 *     provider: vllm               # the provider of gyre's config that serves the candidate
 *     adapter: vllm                # none (a hosted model: default) | vllm | llamacpp: load a LoRA adapter first
 *     name: support-v2             # the adapter's name (default: the run's id)
 *   gate:                          # src/loop/gate.h
 *     scorers: [correctness, no_refusal]   # scorers of gyre's config, run on both sides
 *     rules:
 *       - {metric: correctness, max_drop: 0.01}       # candidate >= incumbent - 0.01 (CI's lower bound)
 *       - {metric: cost, max_increase: 0}             # also: latency_p95, error_rate
 *       - {cluster_max_drop: 0.05}                    # no cluster worse by more than 5 points, any scorer
 *     confidence: 0.95
 *     resamples: 2000
 *     limit: 500                   # held-out examples replayed at most
 *     concurrency: 4
 *     seed: 1
 *   deploy:                        # src/loop/deploy.h
 *     ramp: [5, 25, 100]
 *     min_requests: 50             # per arm, before a step may be promoted
 *     step_time: 10m               # the longest a step is held (promoted then, unless it regressed)
 *     metrics: [no_refusal]        # live scores watched (scorers with an online `sample:`); error rate always
 *     max_drop: 0.02               # tolerance of the sequential test
 *     alpha: 0.05
 *     rollback_on_alert: true
 *   watch:
 *     window: 1h                   # the before/after report after full promotion
 *   schedule:                      # gyre serve's scheduled mode (`loop_specs:` in the config)
 *     every: 24h
 *     new_traces: 1000             # or when this many new traces match the curation's source
 *
 * Errors are "FILE:LINE: FIELD: message", an unknown field is an error.
 */
#ifndef GYRE_LOOP_LOOPSPEC_H
#define GYRE_LOOP_LOOPSPEC_H

#include <stddef.h>
#include <stdint.h>

#define GYRE_LOOP_SPEC_MAX_BYTES (256 * 1024)
#define GYRE_LOOP_MAX_RAMP 8
#define GYRE_LOOP_MAX_RULES 32
#define GYRE_LOOP_MAX_SCORERS 16

typedef struct gyre_train_conf {
    char *backend;    /* "openai" | "together" | "command" */
    char *provider;   /* openai, together: a provider of the config (its base_url and first key) */
    char *base_model;
    char *method;     /* "sft" (default) | "dpo" */
    char *training_type; /* "lora" (default) | "full" */
    unsigned epochs;     /* 0: the service's default */
    double learning_rate; /* 0: the service's default */
    unsigned batch_size;  /* 0: the service's default */
    unsigned lora_rank;   /* 0: the service's default */
    char *suffix;
    char *command;        /* command: a template with {train} {heldout} {preference} {out} {dataset} {run} */
    uint64_t timeout_ms;  /* the job is cancelled and failed after this long (default 24h) */
    uint64_t poll_ms;     /* how often a hosted job is polled (default 10s) */
} gyre_train_conf_t;

typedef enum gyre_adapter_kind {
    GYRE_ADAPTER_NONE = 0, /* a hosted model: the job's fine_tuned_model is a target on serve.provider */
    GYRE_ADAPTER_VLLM,     /* POST {base_url}/load_lora_adapter, /unload_lora_adapter (base_url ends in /v1) */
    GYRE_ADAPTER_LLAMACPP, /* POST {server}/lora-adapters (the server's root, base_url without /v1) */
} gyre_adapter_kind_t;

typedef struct gyre_serve_conf {
    char *provider;            /* the provider the candidate is served by (default: train.provider) */
    gyre_adapter_kind_t adapter;
    char *name;                /* the adapter's name (NULL: "gyre-<run id>") */
} gyre_serve_conf_t;

typedef enum gyre_gate_metric_kind {
    GYRE_GATE_SCORER = 1,   /* a scorer's mean (a heuristic's pass rate, a judge's score) */
    GYRE_GATE_COST,         /* cost per request (USD) */
    GYRE_GATE_LATENCY_P95,  /* p95 latency (ms) */
    GYRE_GATE_ERROR_RATE,   /* the share of replayed requests that failed */
    GYRE_GATE_CLUSTER,      /* every scorer, per cluster: cluster_max_drop */
} gyre_gate_metric_kind_t;

typedef struct gyre_gate_rule {
    gyre_gate_metric_kind_t kind;
    char *scorer;       /* GYRE_GATE_SCORER: its name */
    double max_drop;    /* higher-is-better metrics: candidate - incumbent >= -max_drop, at the CI's lower bound */
    double max_increase; /* cost, latency, error rate: candidate - incumbent <= max_increase (relative for cost and
                          * latency: 0.1 is 10 %), at the CI's upper bound */
    int line;
} gyre_gate_rule_t;

typedef struct gyre_gate_conf {
    char **scorers;
    size_t nscorers;
    gyre_gate_rule_t *rules;
    size_t nrules;
    double confidence; /* default 0.95 */
    unsigned resamples; /* default 2000 */
    unsigned limit;     /* default 500 */
    unsigned concurrency; /* default 4 */
    uint64_t seed;        /* default 1 */
} gyre_gate_conf_t;

typedef struct gyre_deploy_conf {
    unsigned ramp[GYRE_LOOP_MAX_RAMP]; /* percentages, increasing, the last 100 (default 5 25 100) */
    size_t nramp;
    unsigned min_requests;  /* default 50 */
    uint64_t step_time_ms;  /* default 10 min */
    char **metrics;         /* scorer names watched live */
    size_t nmetrics;
    double max_drop;        /* default 0.02 */
    double alpha;           /* default 0.05 */
    int rollback_on_alert;  /* default 1 */
} gyre_deploy_conf_t;

typedef struct gyre_loop_spec {
    char *name;
    char *route;
    char *curate_path; /* absolute, or NULL */
    char *dataset;     /* or NULL */
    gyre_train_conf_t train;
    gyre_serve_conf_t serve;
    gyre_gate_conf_t gate;
    gyre_deploy_conf_t deploy;
    uint64_t watch_window_ms; /* default 1h */
    uint64_t every_ms;        /* schedule (0: none) */
    uint64_t new_traces;      /* schedule (0: none) */
    char *path;               /* the file it was read from */
    char *text;               /* the file's bytes, kept with each run */
} gyre_loop_spec_t;

/* Reads and checks a loop spec.  NULL with err "FILE:LINE: FIELD: message". */
gyre_loop_spec_t *gyre_loop_spec_load(const char *path, char *err, size_t errlen);
/* The same from bytes (`path` names them in errors and resolves a relative `curate:`). */
gyre_loop_spec_t *gyre_loop_spec_parse(const char *text, size_t len, const char *path, char *err, size_t errlen);
void gyre_loop_spec_free(gyre_loop_spec_t *s);

#endif
