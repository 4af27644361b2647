/* Paired bootstrap confidence intervals for the eval gate (stats.h says how they are drawn). */
#include "loop/stats.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

uint64_t gyre_stats_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

size_t gyre_stats_index(uint64_t *state, size_t n)
{
    return (size_t)(((unsigned __int128)gyre_stats_next(state) * (unsigned __int128)n) >> 64);
}

uint64_t gyre_stats_seed(uint64_t seed, const char *name)
{
    uint64_t h = 14695981039346656037ULL;
    for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    /* One splitmix64 step over the mix, so that seeds 1 and 2 do not give streams one step apart. */
    uint64_t s = seed ^ h;
    return gyre_stats_next(&s);
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b ? 1 : 0;
}

double gyre_stats_p95(double *x, size_t n)
{
    if (n == 0)
        return NAN;
    qsort(x, n, sizeof(*x), cmp_double);
    /* ceil(0.95 n) in integers: (95 n + 99) / 100, exact where 0.95 * n in doubles is not. */
    size_t rank = (95 * n + 99) / 100;
    return x[rank - 1];
}

static double ratio(double num, double den)
{
    if (den == 0)
        return num == 0 ? 0 : INFINITY;
    return num / den - 1;
}

/* The statistic over pairs idx[0..n) (idx NULL: the pairs in order); scratch holds 2n doubles for the p95s. */
static double statistic_at(gyre_stats_kind_t kind, const double *a, const double *b, const size_t *idx, size_t n,
                           double *scratch)
{
    if (kind == GYRE_STATS_P95_REL) {
        for (size_t i = 0; i < n; i++) {
            size_t k = idx != NULL ? idx[i] : i;
            scratch[i] = a[k];
            scratch[n + i] = b[k];
        }
        return ratio(gyre_stats_p95(scratch, n), gyre_stats_p95(scratch + n, n));
    }
    double sa = 0, sb = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = idx != NULL ? idx[i] : i;
        sa += a[k];
        sb += b[k];
    }
    if (kind == GYRE_STATS_MEAN_REL)
        return ratio(sa / (double)n, sb / (double)n);
    return sa / (double)n - sb / (double)n;
}

double gyre_stats_statistic(gyre_stats_kind_t kind, const double *a, const double *b, size_t n)
{
    if (n == 0)
        return NAN;
    double *scratch = kind == GYRE_STATS_P95_REL ? gyre_malloc(2 * n * sizeof(double)) : NULL;
    double v = statistic_at(kind, a, b, NULL, n, scratch);
    free(scratch);
    return v;
}

int gyre_stats_bootstrap(gyre_stats_kind_t kind, const double *a, const double *b, size_t n, unsigned resamples,
                         double confidence, uint64_t seed, gyre_stats_ci_t *out)
{
    if (n == 0 || !(confidence > 0 && confidence < 1) || resamples == 0 || resamples > GYRE_STATS_MAX_RESAMPLES)
        return -EINVAL;
    double *stats = gyre_malloc((size_t)resamples * sizeof(double));
    size_t *idx = gyre_malloc(n * sizeof(size_t));
    double *scratch = kind == GYRE_STATS_P95_REL ? gyre_malloc(2 * n * sizeof(double)) : NULL;
    out->point = statistic_at(kind, a, b, NULL, n, scratch);
    uint64_t state = seed;
    for (unsigned r = 0; r < resamples; r++) {
        for (size_t i = 0; i < n; i++)
            idx[i] = gyre_stats_index(&state, n);
        stats[r] = statistic_at(kind, a, b, idx, n, scratch);
    }
    qsort(stats, resamples, sizeof(*stats), cmp_double);
    /* floor(R (1 - c) / 2), with a small allowance so that 2000 x 0.025 = 50 is 50 and not 49.999... */
    size_t cut = (size_t)floor((double)resamples * (1 - confidence) / 2 + 1e-9);
    if (cut >= resamples)
        cut = resamples - 1;
    out->lo = stats[cut];
    out->hi = stats[resamples - 1 - cut];
    free(stats);
    free(idx);
    free(scratch);
    return 0;
}
