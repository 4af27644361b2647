/*
 * k-means (kmeans.h).  Memory: the fit needs k x d centroids and sums and
 * n assignments and distances; the silhouette an n x n float matrix over
 * at most GYRE_KMEANS_SIL_SAMPLE points (9 MB).
 */
#include "loop/kmeans.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/rand.h"

static inline float dist2(const float *a, const float *b, unsigned d)
{
    float s = 0;
    for (unsigned j = 0; j < d; j++) {
        float t = a[j] - b[j];
        s += t * t;
    }
    return s;
}

/* A double in [0, 1) from the generator. */
static inline double uniform(uint64_t *st)
{
    return (double)(gyre_rand_next(st) >> 11) * (1.0 / 9007199254740992.0);
}

void gyre_kmeans_assign(const float *x, size_t n, unsigned d, const float *c, unsigned k, int32_t *assign,
                        float *dd)
{
    for (size_t i = 0; i < n; i++) {
        const float *p = x + i * d;
        float best = FLT_MAX;
        int32_t bi = 0;
        for (unsigned j = 0; j < k; j++) {
            float s = dist2(p, c + (size_t)j * d, d);
            if (s < best) {
                best = s;
                bi = (int32_t)j;
            }
        }
        assign[i] = bi;
        if (dd != NULL)
            dd[i] = best;
    }
}

/* Greedy k-means++ (as scikit-learn does): the first centre uniformly; for each next one, 2 + ln k candidates
 * drawn with probability proportional to the squared distance to the nearest centre so far, and the one that
 * lowers the total most is kept.  Plain k-means++ left one planted family split and two merged in about one
 * fit in three on the planted test; the greedy draw did not. */
static void seed_plusplus(const float *x, size_t n, unsigned d, unsigned k, uint64_t *st, float *c, float *near)
{
    size_t first = (size_t)(uniform(st) * (double)n);
    memcpy(c, x + first * d, d * sizeof(float));
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        near[i] = dist2(x + i * d, c, d);
        total += near[i];
    }
    unsigned trials = 2 + (unsigned)log((double)k);
    float *cand = gyre_malloc(n * sizeof(float)), *best_near = gyre_malloc(n * sizeof(float));
    for (unsigned j = 1; j < k; j++) {
        double best_total = INFINITY;
        size_t best_pick = 0;
        for (unsigned t = 0; t < trials; t++) {
            size_t pick = n - 1;
            if (total > 0) {
                double r = uniform(st) * total, acc = 0;
                for (size_t i = 0; i < n; i++) {
                    acc += near[i];
                    if (acc > r) {
                        pick = i;
                        break;
                    }
                }
            } else {
                /* Every point sits on a centre already: any point will do. */
                pick = (size_t)(uniform(st) * (double)n);
            }
            double tot = 0;
            const float *p = x + pick * d;
            for (size_t i = 0; i < n; i++) {
                float s = dist2(x + i * d, p, d);
                cand[i] = s < near[i] ? s : near[i];
                tot += cand[i];
            }
            if (tot < best_total) {
                best_total = tot;
                best_pick = pick;
                float *sw = best_near;
                best_near = cand;
                cand = sw;
            }
        }
        memcpy(c + (size_t)j * d, x + best_pick * d, d * sizeof(float));
        memcpy(near, best_near, n * sizeof(float));
        total = best_total;
    }
    free(cand);
    free(best_near);
}

double gyre_kmeans_fit(const float *x, size_t n, unsigned d, unsigned k, uint64_t seed, unsigned max_iter,
                       float *c, int32_t *assign_out)
{
    uint64_t st = seed * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL;
    if (st == 0)
        st = 1;
    float *near = gyre_malloc(n * sizeof(float));
    int32_t *as = assign_out != NULL ? assign_out : gyre_malloc(n * sizeof(int32_t));
    double *sum = gyre_malloc((size_t)k * d * sizeof(double));
    size_t *cnt = gyre_malloc(k * sizeof(size_t));
    seed_plusplus(x, n, d, k, &st, c, near);
    for (size_t i = 0; i < n; i++)
        as[i] = -1;
    for (unsigned it = 0; it < max_iter; it++) {
        size_t moved = 0;
        for (size_t i = 0; i < n; i++) {
            const float *p = x + i * d;
            float best = FLT_MAX;
            int32_t bi = 0;
            for (unsigned j = 0; j < k; j++) {
                float s = dist2(p, c + (size_t)j * d, d);
                if (s < best) {
                    best = s;
                    bi = (int32_t)j;
                }
            }
            near[i] = best;
            if (as[i] != bi) {
                as[i] = bi;
                moved++;
            }
        }
        if (moved == 0)
            break;
        memset(sum, 0, (size_t)k * d * sizeof(double));
        memset(cnt, 0, k * sizeof(size_t));
        for (size_t i = 0; i < n; i++) {
            double *s = sum + (size_t)as[i] * d;
            const float *p = x + i * d;
            for (unsigned j = 0; j < d; j++)
                s[j] += p[j];
            cnt[as[i]]++;
        }
        for (unsigned j = 0; j < k; j++) {
            float *cj = c + (size_t)j * d;
            if (cnt[j] == 0) {
                /* An empty cluster takes the point farthest from its centre (which then counts as moved). */
                size_t far = 0;
                for (size_t i = 1; i < n; i++)
                    if (near[i] > near[far])
                        far = i;
                memcpy(cj, x + far * d, d * sizeof(float));
                near[far] = 0;
                continue;
            }
            for (unsigned t = 0; t < d; t++)
                cj[t] = (float)(sum[(size_t)j * d + t] / (double)cnt[j]);
        }
    }
    gyre_kmeans_assign(x, n, d, c, k, as, near);
    double inertia = 0;
    for (size_t i = 0; i < n; i++)
        inertia += near[i];
    free(near);
    free(sum);
    free(cnt);
    if (as != assign_out)
        free(as);
    return inertia;
}

double gyre_kmeans_silhouette(const float *dm, size_t n, const int32_t *as, unsigned k)
{
    double *per = gyre_malloc(k * sizeof(double));
    size_t *cnt = gyre_calloc(k, sizeof(size_t));
    for (size_t i = 0; i < n; i++)
        cnt[as[i]]++;
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        if (cnt[as[i]] <= 1)
            continue; /* a singleton's silhouette is 0 */
        memset(per, 0, k * sizeof(double));
        const float *row = dm + i * n;
        for (size_t j = 0; j < n; j++)
            per[as[j]] += row[j];
        double a = per[as[i]] / (double)(cnt[as[i]] - 1), b = DBL_MAX;
        for (unsigned c = 0; c < k; c++)
            if ((int32_t)c != as[i] && cnt[c] > 0 && per[c] / (double)cnt[c] < b)
                b = per[c] / (double)cnt[c];
        double m = a > b ? a : b;
        if (b != DBL_MAX && m > 0)
            total += (b - a) / m;
    }
    free(per);
    free(cnt);
    return n > 0 ? total / (double)n : 0;
}

unsigned gyre_kmeans_choose_k(const float *x, size_t n, unsigned d, unsigned kmin, unsigned kmax, uint64_t seed,
                              double *silhouette)
{
    if (kmax > n - 1)
        kmax = (unsigned)(n - 1);
    if (kmin < 2)
        kmin = 2;
    if (kmax < kmin) {
        *silhouette = NAN;
        return kmin <= n ? kmin : (unsigned)n;
    }
    size_t s = n < GYRE_KMEANS_SIL_SAMPLE ? n : GYRE_KMEANS_SIL_SAMPLE;
    float *dm = gyre_malloc(s * s * sizeof(float));
    for (size_t i = 0; i < s; i++) {
        dm[i * s + i] = 0;
        for (size_t j = i + 1; j < s; j++)
            dm[i * s + j] = dm[j * s + i] = sqrtf(dist2(x + i * d, x + j * d, d));
    }
    float *c = gyre_malloc((size_t)kmax * d * sizeof(float));
    int32_t *as = gyre_malloc(n * sizeof(int32_t));
    unsigned best_k = kmin;
    double best = -2;
    for (unsigned k = kmin; k <= kmax; k++) {
        gyre_kmeans_fit(x, n, d, k, seed + k, 30, c, as);
        double sil = gyre_kmeans_silhouette(dm, s, as, k);
        if (sil > best + 1e-9) {
            best = sil;
            best_k = k;
        }
    }
    free(dm);
    free(c);
    free(as);
    *silhouette = best;
    return best_k;
}
