/*
 * Clusters of what the agents do (issue 14, point 3).  Each example's task
 * text becomes a short vector (the local featuriser in featurize.h, or a
 * configured embeddings route through `embed`); k-means over a sample of
 * the vectors finds the clusters (k chosen by silhouette unless given),
 * every example is then assigned to its nearest centroid, a second k-means
 * over the centroids groups clusters into parents, and each cluster is
 * named by its distinctive terms: those whose share in the cluster most
 * exceeds their share in its neighbouring clusters (contrast, as Anthropic's
 * Clio does).
 *
 * Streaming: a curation of 1M traces feeds the examples one by one
 * (gyre_corpus_scan's callback) and the clusterer keeps only a compact
 * record per example (the vector of `dims` floats, the trace id, the
 * session's hash, time, status, cost, a few scores and the ids of a few
 * terms), about 350 bytes at 64 dims; the text itself is not kept.
 *
 *   gyre_clusterer_t *c = gyre_clusterer_new(&opts);
 *   gyre_clusterer_add(c, ex);            for each example, in order
 *   gyre_clusterer_finish(c, &res, err, sizeof(err));
 *   gyre_cluster_result_json(res, &buf);  the run as gyre_store_put_cluster_run stores it
 *   gyre_cluster_result_free(res); gyre_clusterer_free(c);
 *
 * Deterministic: the same examples in the same order with the same options
 * (seed included) give the same result, byte for byte in its JSON.
 * Not thread-safe: one clusterer belongs to one thread.
 */
#ifndef GYRE_LOOP_CLUSTER_H
#define GYRE_LOOP_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "config/config.h"
#include "loop/corpus.h"

/* The most examples one clusterer takes (gyre_clusterer_add answers -E2BIG past it): 4M x ~350 bytes. */
#define GYRE_CLUSTER_MAX_EXAMPLES ((size_t)4 << 20)
/* k: given, at most this; automatic, chosen in [2, GYRE_CLUSTER_AUTO_K_MAX]. */
#define GYRE_CLUSTER_MAX_K 256
#define GYRE_CLUSTER_AUTO_K_MAX 24
/* Vector dimensions: default and bounds. */
#define GYRE_CLUSTER_DEFAULT_DIMS 64
#define GYRE_CLUSTER_MAX_DIMS 1024
/* Terms that name a cluster, example traces a shown cluster lists. */
#define GYRE_CLUSTER_TERMS 5
#define GYRE_CLUSTER_EXAMPLES 5

/*
 * An embeddings function (a configured embeddings route): writes the text's
 * vector of exactly `dims` floats into `out` (the caller's adapter projects
 * a provider's longer vector down, gyre_featurize_project_dense).  0, or a
 * negative errno with err set; an error stops the clustering (finish
 * answers it).
 */
typedef int (*gyre_cluster_embed_fn)(void *ctx, const char *text, size_t len, float *out, size_t dims, char *err,
                                     size_t errlen);

typedef struct gyre_cluster_opts {
    unsigned k;            /* 0: automatic (silhouette, see kmeans.h); else 1..GYRE_CLUSTER_MAX_K */
    unsigned min_sessions; /* privacy: fewer distinct sessions hide a cluster's name and examples (0: 5) */
    unsigned seed;         /* 0: 1 */
    unsigned dims;         /* 0: GYRE_CLUSTER_DEFAULT_DIMS */
    /* The window the trend splits in halves; both 0: the oldest and newest started_us added. */
    int64_t window_from_us, window_to_us;
    gyre_cluster_embed_fn embed; /* NULL: the local featuriser */
    void *embed_ctx;
} gyre_cluster_opts_t;

typedef struct gyre_clusterer gyre_clusterer_t;

/* A score's mean over a cluster's examples that have it. */
typedef struct gyre_cluster_score_mean {
    const char *name;
    double mean;
    uint64_t n;
} gyre_cluster_score_mean_t;

typedef struct gyre_cluster_info {
    int32_t id;     /* leaves 0..nleaves-1 by volume, largest first; parents after them */
    int32_t parent; /* a leaf's parent's id; -1 for a parent */
    int level;      /* 0: a leaf cluster, 1: a parent */
    char *name;     /* its first terms joined with ", " */
    char *terms[GYRE_CLUSTER_TERMS]; /* distinctive terms, most distinctive first; NULL past the last */
    uint64_t volume;                 /* examples */
    uint64_t sessions;               /* distinct sessions (an example without one counts as its own) */
    int shown;                       /* sessions >= min_sessions */
    uint64_t first_half, second_half; /* volume in each half of the window */
    double trend;                     /* second_half / first_half; NaN when first_half is 0 */
    gyre_cluster_score_mean_t *scores; /* per score name, sorted by name */
    size_t nscores;
    double failure_rate; /* share of examples with status >= 400 or a failed heuristic or guardrail (value 0) */
    double cost_usd;     /* the examples' cost summed (unknown costs skipped) */
    char examples[GYRE_CLUSTER_EXAMPLES][33]; /* the trace ids nearest the centroid; "" past the last or when hidden */
} gyre_cluster_info_t;

typedef struct gyre_cluster_result {
    size_t n;               /* examples, in add order */
    int32_t *cluster;       /* [n] each example's leaf cluster */
    int32_t *parent;        /* [n] ... and that cluster's parent */
    char (*trace_ids)[33];  /* [n] each example's trace id */
    gyre_cluster_info_t *clusters; /* leaves first, then parents */
    size_t nclusters, nleaves;
    unsigned k_auto;  /* 1 when k was chosen automatically */
    double silhouette; /* the chosen k's silhouette on the sample (NaN when not computed) */
    unsigned min_sessions, seed, dims;
    int64_t window_from_us, window_to_us;
    const char *featurizer; /* "local" or "embeddings" */
    double featurize_s, cluster_s; /* seconds spent in add (featurising) and in finish */
} gyre_cluster_result_t;

/* A clusterer with these options (NULL: defaults); never NULL.  Bad options are reported by finish. */
gyre_clusterer_t *gyre_clusterer_new(const gyre_cluster_opts_t *o);
/* Featurises the example's task_text (an example without one is featurised from an empty text) and keeps
 * its record.  0; -E2BIG past GYRE_CLUSTER_MAX_EXAMPLES; or the embed function's error. */
int gyre_clusterer_add(gyre_clusterer_t *c, const gyre_example_t *ex);
/* Examples added so far. */
size_t gyre_clusterer_count(const gyre_clusterer_t *c);
/* Clusters what was added.  0 with *out set (the caller frees it); -EINVAL (bad options, err names the
 * option) or -ENODATA (no example).  With fewer examples than k, k is the number of examples. */
int gyre_clusterer_finish(gyre_clusterer_t *c, gyre_cluster_result_t **out, char *err, size_t errlen);
void gyre_clusterer_free(gyre_clusterer_t *c);

/*
 * The run as JSON (what /api/clusters answers and the store keeps):
 *   {"run_id":..,"created_us":..,"examples":N,"k":K,"k_auto":true,"silhouette":..,"min_sessions":5,"seed":1,
 *    "dims":64,"featurizer":"local","window":{"from_us":..,"to_us":..},
 *    "clusters":[{"id":0,"parent":5,"level":0,"name":"refund, invoice","terms":[..],"volume":..,"sessions":..,
 *      "shown":true,"trend":1.2,"first_half":..,"second_half":..,"scores":{"NAME":{"mean":..,"n":..}},
 *      "failure_rate":..,"cost_usd":..,"examples":["TRACEID",..]}, ...]}
 * A hidden cluster (shown false) is written as {"id":..,"volume":..,"hidden":true}: never its name, terms,
 * examples or statistics (the stored run never holds them).  run_id and created_us are the caller's (gyre_cluster_run_id).
 */
int gyre_cluster_result_json(const gyre_cluster_result_t *r, const char *run_id, int64_t created_us,
                             gyre_buf_t *out);
/* A run's id: "cr_" and 16 hex digits of a hash of the time and the seed. */
void gyre_cluster_run_id(int64_t created_us, unsigned seed, char out[24]);
void gyre_cluster_result_free(gyre_cluster_result_t *r);

/* The adjusted Rand index of two labellings of n items (Hubert and Arabie, 1985): 1 for identical
 * partitions, about 0 for independent ones.  Labels are any int32 (not necessarily dense). */
double gyre_cluster_ari(const int32_t *a, const int32_t *b, size_t n);

/* ---- Runs over the store (cluster_run.c). ---- */

typedef struct gyre_cluster_rebuild_opts {
    const gyre_clusters_conf_t *conf; /* k, min_sessions, window, seed; NULL: the defaults */
    int64_t from_us, to_us;           /* the traces started in [from, to); 0: to now, from `window` before to */
    unsigned k;                       /* non-zero: overrides conf's k */
} gyre_cluster_rebuild_opts_t;

/*
 * Clusters the stored traces of the window (every call, errors included: the failure rate counts them) and
 * stores the run (gyre_store_put_cluster_run: its JSON and every trace's cluster, the run traces then show).
 * The run's JSON is appended to json_out.  0; -ENODATA (no trace in the window); -EBUSY (a run is going on in
 * this process); -E2BIG (more than GYRE_CLUSTER_MAX_EXAMPLES traces); or the store's error; err says which.
 * Runs on the caller's thread: never a worker's.
 */
int gyre_cluster_rebuild(gyre_store_t *s, const gyre_cluster_rebuild_opts_t *ro, gyre_buf_t *json_out, char *err,
                         size_t errlen);

/*
 * `clusters: every:` in gyre serve: a thread of its own, at the lowest priority (nice 19), that rebuilds every
 * `every` with its own store handle; failures are logged.  Started with no store: *out is NULL (nothing to do).
 * reconfigure (the main thread, on a reload) takes the new `clusters:` numbers (every, window, k, seed,
 * min_sessions) for the next run; stop waits for a run in progress.
 */
typedef struct gyre_cluster_sched gyre_cluster_sched_t;
int gyre_cluster_sched_start(const gyre_config_t *config, gyre_cluster_sched_t **out);
void gyre_cluster_sched_reconfigure(gyre_cluster_sched_t *sc, const gyre_config_t *next);
void gyre_cluster_sched_stop(gyre_cluster_sched_t *sc);

#endif
