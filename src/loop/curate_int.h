/*
 * What curate.c and curate_select.c share: the per-example record the scan
 * keeps, the run's state, and the steps after dedup (selection's balance,
 * the held-out split, preference pairs, counts and distributions).
 * Nothing outside these two files includes it.
 */
#ifndef GYRE_LOOP_CURATE_INT_H
#define GYRE_LOOP_CURATE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/buf.h"
#include "loop/cluster.h"
#include "loop/curate.h"
#include "loop/minhash.h"

/* A string interner (sessions, score names): ids from 1, 0 for none. */
typedef struct gyre_curate_interner {
    char **strs; /* [id - 1] */
    size_t n, cap;
    uint32_t *slots; /* open addressing: an id, or 0 */
    size_t nslots;   /* a power of two, kept at least twice n */
} gyre_curate_interner_t;

/* ---- The per-example record. ---- */

#define F_IN 0x1u      /* in the source, after `unit` */
#define F_PASSED 0x2u  /* passed the filter and the selection predicate */
#define F_CORR 0x4u    /* has a feedback correction */
#define F_DROPPED 0x8u /* dropped as a near-duplicate of a better one */
#define F_SELECTED 0x10u
#define F_HELDOUT 0x20u

typedef struct rec {
    char trace_id[33];
    uint8_t flags;
    uint16_t nscores;
    uint32_t session; /* interned; 0: none */
    int32_t cluster;
    uint32_t length; /* bytes of the task and the answer text */
    uint32_t score_off;
    int64_t started_us;
    float keep, contrast, quality; /* NaN: missing */
} rec_t;

typedef struct score_entry {
    uint16_t key; /* interned "source.name", minus one */
    float value;
} score_entry_t;

typedef struct run {
    const gyre_curate_spec_t *spec;
    const gyre_curate_hooks_t *hooks;
    rec_t *recs;
    size_t n, cap;
    gyre_minhash_sig_t *sigs; /* [n] when signing; grown only while the featuriser is idle (curate_feat.c) */
    size_t capsigs;
    struct gyre_curate_feat *feat;
    int feat_inline; /* the featuriser ran on the scan's thread (no second thread could start) */
    int sign;
    score_entry_t *scores;
    size_t nscores, capscores;
    gyre_curate_interner_t sessions, keys;
    gyre_clusterer_t *clusterer;
    double sign_s, cluster_add_s;         /* wall seconds inside the scan */
    double sign_cpu_s, cluster_add_cpu_s; /* CPU seconds of the thread that did it */
    uint64_t progress_total;
    struct timespec last_progress;
    int err_rc;
    char *err;
    size_t errlen;
} run_t;

/* A seeded random rank that depends only on the seed and the string (never on the scan's order). */
uint64_t gyre_curate_seeded_rank(uint64_t seed, const char *s);
/* 1 when a should be kept over b in a near-duplicate group (curate.h's order). */
int gyre_curate_better(const run_t *r, const rec_t *a, const rec_t *b);
int gyre_curate_i32_cmp_cb(const void *x, const void *y);
void gyre_curate_add_item(gyre_curation_t *c, size_t *cap, const run_t *r, const rec_t *rc, gyre_curate_role_t role,
                          const rec_t *rejected, int use_correction, gyre_curate_split_t split);

/* curate_feat.c: signatures and the clusterer's features on a second thread, beside the scan. */
typedef struct gyre_curate_feat gyre_curate_feat_t;
gyre_curate_feat_t *gyre_curate_feat_start(run_t *r);
/* Queues a copy of the example (record idx); 0, or an error of the worker's (r->err says it at finish). */
int gyre_curate_feat_add(gyre_curate_feat_t *f, const gyre_example_t *ex, uint32_t idx);
/* Waits for every queued example and stops the worker; 0 or its first error (r->err filled); fills r's times. */
int gyre_curate_feat_finish(gyre_curate_feat_t *f);
void gyre_curate_feat_free(gyre_curate_feat_t *f);

/* curate_select.c */
void gyre_curate_allocate(const uint64_t *a, const uint64_t *lo, const uint64_t *hi, size_t k, uint64_t target,
                          uint64_t *out);
/* Marks F_HELDOUT; side[session id] = 1 (train) or 2 (held out) for every session with selected examples. */
void gyre_curate_split_heldout(run_t *r, uint8_t *side);
gyre_curate_split_t gyre_curate_pair_split(const run_t *r, const uint8_t *side, const rec_t *x);
void gyre_curate_contrast_pairs(run_t *r, const uint32_t *group, const uint8_t *side, gyre_curation_t *c, size_t *cap);
void gyre_curate_count_clusters(const run_t *r, gyre_curation_t *c, char **cnames, size_t ncnames);
void gyre_curate_score_distributions(const run_t *r, gyre_curation_t *c);

/* Wall time (monotonic) and this thread's CPU time, in seconds: on a machine shared with other work the CPU time
 * says what a phase costs, where wall time says how long it took. */
static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
