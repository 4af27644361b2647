/*
 * Curation (issue 14, point 5): a spec (spec.h) run over the store gives
 * the list of examples a dataset is made of; the datasets module
 * (src/loop/dataset.c) fetches their bodies and writes the files.
 *
 * How: ONE streaming pass over the corpus (gyre_corpus_scan) keeps per
 * example only what selection needs (~100 bytes of fields, a 256-byte
 * MinHash signature, its numeric scores as 6 bytes each): the source's
 * checks, the filter's and the selection predicate's results, the dedup
 * keep score and the contrast score, the task's signature, the cluster (or
 * the clusterer's input, handed to the clusterer as the scan goes).  Then,
 * in memory: clusters, dedup (minhash.h), selection with balance, the
 * held-out split and the preference pairs.  Memory is O(examples), about
 * 400 bytes each, plus the clusterer's.
 *
 * The order of the work:
 *   1. scan: source (time, routes, agents, tags, metadata) -> unit (a
 *      session's last call) -> filter (or a correction, when used) -> the
 *      selection predicate; every source example is signed and clustered
 *   2. clusters: the clusterer's (or the stored run's) cluster of each
 *      example; source.clusters drops the other clusters
 *   3. dedup: groups among the source examples (two calls of one session
 *      are never joined: they are steps of one trajectory); in each group,
 *      of the members that passed the filter and the selection predicate
 *      the best is kept (the greatest `dedup.keep` score, a missing one
 *      lowest; without `keep`: a correction first when corrections are
 *      used, then the mean of its scores in [0, 1], then the longer; ties:
 *      the earlier started_us, then the smaller trace id), the others are
 *      dropped.  The text compared is the task without its system lines
 *      (an agent's fixed instructions) and, with `on: task+answer`, the
 *      answer
 *   4. select: the kept examples in the selection's order (seeded random for
 *      all and judge, longest first for longest_n, ties by trace id); without
 *      balance the first target_size (or longest_n) of them; with balance,
 *      each cluster's share of the target is proportional to what it has,
 *      clipped to [min(floor, has), min(cap, has)] (floors win over the
 *      target when they add up to more), the remainder by largest fraction
 *   5. heldout: sessions (a trace without one is its own) are split, each
 *      into the stratum of the cluster most of its selected examples are in
 *      (ties: the smaller id); in each stratum sessions in a seeded random
 *      order go held-out until round(heldout * the stratum's examples) are
 *   6. preference pairs: every source example with a correction (preferred:
 *      the correction; non-preferred: its answer); and, with `preference:`,
 *      in every near-duplicate group the best and the worst by that score
 *      when they differ by at least the margin and the best passed the filter
 *
 * Deterministic: the same spec and the same store give the same result in
 * the same order (items sorted by role, then trace id; random choices are
 * seeded by spec->seed and the trace id, never by the scan's order).
 */
#ifndef GYRE_LOOP_CURATE_H
#define GYRE_LOOP_CURATE_H

#include <stddef.h>
#include <stdint.h>

#include "loop/spec.h"
#include "store/store.h"

typedef enum gyre_curate_split {
    GYRE_CURATE_TRAIN = 0,
    GYRE_CURATE_HELDOUT = 1,
} gyre_curate_split_t;

typedef enum gyre_curate_role {
    GYRE_CURATE_SFT = 0,        /* one chat example: the trace's messages and answer (or its correction) */
    GYRE_CURATE_PREFERENCE = 1, /* a pair: the trace's input with a preferred and a non-preferred answer */
} gyre_curate_role_t;

/* One example of the dataset. */
typedef struct gyre_curate_item {
    char trace_id[33];    /* SFT: the example; a pair: the input and the preferred answer's call */
    char rejected_id[33]; /* a pair from a score contrast: the call whose answer is non-preferred; "" otherwise */
    char *session;        /* "" when the call has none */
    int32_t cluster;      /* -1: none */
    gyre_curate_split_t split;
    gyre_curate_role_t role;
    /* SFT: the trace's feedback correction replaces its answer.  A pair with rejected_id "": the correction
     * is the preferred answer and the trace's own answer the non-preferred one. */
    int use_correction;
} gyre_curate_item_t;

/* Counts per cluster, in cluster id order (-1, the unclustered, first when present). */
typedef struct gyre_curate_cluster_count {
    int32_t cluster;
    char *name;        /* the clusterer's or the stored run's label; NULL when none */
    uint64_t scanned;  /* source examples (after `unit`) */
    uint64_t passed;   /* ... that passed the filter and the selection predicate */
    uint64_t deduped;  /* ... left after dedup */
    uint64_t selected; /* SFT examples selected (train and held-out) */
    uint64_t heldout;  /* ... of them held out */
} gyre_curate_cluster_count_t;

#define GYRE_CURATE_HIST_BINS 10

/* The distribution of one score over the selected SFT examples. */
typedef struct gyre_curate_score_dist {
    char *name; /* "judge.correctness", "feedback.thumbs", ...: the source and the score's name */
    uint64_t n;
    double mean, min, max;
    /* GYRE_CURATE_HIST_BINS equal bins over [min, max] (the last holds max; all in bin 0 when min == max). */
    uint64_t hist[GYRE_CURATE_HIST_BINS];
} gyre_curate_score_dist_t;

/* A near-duplicate group among the examples that passed: the kept one and those dropped for it. */
typedef struct gyre_curate_dup_group {
    char kept[33];
    char (*dropped)[33]; /* sorted */
    size_t ndropped;
} gyre_curate_dup_group_t;

typedef enum gyre_curate_phase {
    GYRE_CURATE_PHASE_SCAN = 0,  /* reading the store, source checks, predicates */
    GYRE_CURATE_PHASE_FEATURISE, /* MinHash signatures and the clusterer's features: on a second thread beside
                                  * the scan (curate_feat.c), so its wall time overlaps the scan's */
    GYRE_CURATE_PHASE_DEDUP,
    GYRE_CURATE_PHASE_CLUSTER,
    GYRE_CURATE_PHASE_SELECT, /* selection, balance, held-out split, pairs */
    GYRE_CURATE_PHASES
} gyre_curate_phase_t;

/* The phases' names: "scan", "featurise", "dedup", "cluster", "select". */
extern const char *const gyre_curate_phase_names[GYRE_CURATE_PHASES];

/* A curation's result.  Free with gyre_curation_free. */
typedef struct gyre_curation {
    gyre_curate_item_t *items; /* SFT examples first, then pairs; each by trace id (then rejected_id) */
    size_t nitems;
    size_t nsft, npairs;
    gyre_curate_cluster_count_t *clusters;
    size_t nclusters;
    gyre_curate_score_dist_t *scores; /* by name */
    size_t nscores;
    gyre_curate_dup_group_t *dups; /* by kept id */
    size_t ndups;
    /* Totals. */
    uint64_t scanned; /* examples the scan read (before unit and the source's checks) */
    uint64_t skipped; /* stored rows the corpus could not read as a call */
    uint64_t in_source, passed, deduped, selected, heldout;
    uint64_t pairs_compared;                 /* LSH candidate comparisons */
    double phase_ms[GYRE_CURATE_PHASES];     /* wall time */
    double phase_cpu_ms[GYRE_CURATE_PHASES]; /* the calling thread's CPU time */
    double sign_cpu_ms;                      /* of featurise: MinHash signatures (the rest: the clusterer's features) */
    char *spec_canonical;                    /* a copy of spec->canonical */
} gyre_curation_t;

/* What the curation decided for one source example (the benchmark scores dedup and clusters from these). */
typedef struct gyre_curate_decision {
    const char *trace_id; /* 32 hex */
    int32_t cluster;      /* -1: none */
    const char *dup_of;   /* the kept trace of its near-duplicate group when it was dropped for it, else NULL */
    int passed;           /* it passed the filter and the selection predicate */
    int selected;         /* an SFT example of the dataset */
    gyre_curate_split_t split;
} gyre_curate_decision_t;

/* Hooks, all optional, called from the calling thread. */
typedef struct gyre_curate_hooks {
    /* Progress: at most every 100 ms and at each phase's end (done == total). */
    void (*progress_cb)(void *ctx, gyre_curate_phase_t phase, uint64_t done, uint64_t total);
    void *ctx;
    /* Once per source example (after `unit` and source.clusters), in the scan's order, after selection; the
     * strings live until it returns. */
    void (*decision_cb)(void *ctx, const gyre_curate_decision_t *d);
    void *decision_ctx;
} gyre_curate_hooks_t;

/*
 * Runs `spec` over the store.  0 with *out set, or a negative errno with
 * err saying what failed (-EINVAL: a spec the store cannot answer, such as
 * `clusters: stored` with no stored run; the store's errors as they are).
 * hooks may be NULL.
 */
int gyre_curate_run(gyre_store_t *s, const gyre_curate_spec_t *spec, const gyre_curate_hooks_t *hooks,
                    gyre_curation_t **out, char *err, size_t errlen);
void gyre_curation_free(gyre_curation_t *c);

#endif
