/*
 * The eval gate's statistics (issue 15, point 4): paired bootstrap
 * confidence intervals, seeded and deterministic on every machine.
 *
 * The random numbers are splitmix64 (Steele, Lea and Flood, 2014), written
 * here in a few lines and never rand(), so that a stored report's seed gives
 * the same intervals wherever its decision is recomputed
 * (gyre_gate_decide_report).  A resample draws n indices i = (x * n) >> 64
 * (the high half of the 128-bit product of a 64-bit draw x and n: Lemire's
 * multiply-shift; its bias, at most n / 2^64, is far below anything a report
 * shows) and computes the statistic over those pairs.  The interval is the
 * percentile one: the R statistics sorted, lo = the one at rank
 * floor(R * (1 - confidence) / 2), hi = the one at rank
 * R - 1 - floor(R * (1 - confidence) / 2), ranks from 0.
 */
#ifndef GYRE_LOOP_STATS_H
#define GYRE_LOOP_STATS_H

#include <stddef.h>
#include <stdint.h>

/* The most resamples one interval takes (a bound on the time and memory one metric costs: R doubles). */
#define GYRE_STATS_MAX_RESAMPLES 100000u

/* The next splitmix64 number of the stream *state (which it advances). */
uint64_t gyre_stats_next(uint64_t *state);
/* A uniform index in [0, n) from the stream (the multiply-shift above). */
size_t gyre_stats_index(uint64_t *state, size_t n);
/* A seed of its own for each named metric: the gate's seed mixed with the name's FNV-1a, so that a metric's
 * interval does not depend on the order the metrics are computed in. */
uint64_t gyre_stats_seed(uint64_t seed, const char *name);

typedef enum gyre_stats_kind {
    GYRE_STATS_MEAN_DIFF = 1, /* mean(a) - mean(b) */
    GYRE_STATS_MEAN_REL,      /* mean(a) / mean(b) - 1 (a relative increase: 0.1 is 10 % more) */
    GYRE_STATS_P95_REL,       /* p95(a) / p95(b) - 1 */
} gyre_stats_kind_t;

typedef struct gyre_stats_ci {
    double point; /* the statistic over the observed pairs */
    double lo, hi;
} gyre_stats_ci_t;

/* The 95th percentile by nearest rank: the sorted values' element ceil(0.95 n) - 1 (x is sorted in place). */
double gyre_stats_p95(double *x, size_t n);

/* The statistic of `kind` over the pairs (a[i], b[i]) (a: the candidate, b: the incumbent).  A ratio whose
 * denominator is 0 is 0 when its numerator is 0 too, else +infinity. */
double gyre_stats_statistic(gyre_stats_kind_t kind, const double *a, const double *b, size_t n);

/*
 * The paired bootstrap: `resamples` resamples of the n pairs with the
 * stream seeded by `seed`, the percentile interval at `confidence` (in
 * (0, 1)).  0 with *out; -EINVAL for n = 0, a confidence outside (0, 1) or
 * resamples outside [1, GYRE_STATS_MAX_RESAMPLES].
 */
int gyre_stats_bootstrap(gyre_stats_kind_t kind, const double *a, const double *b, size_t n, unsigned resamples,
                         double confidence, uint64_t seed, gyre_stats_ci_t *out);

#endif
