/*
 * Curation's steps after dedup (curate.h says the rules): each cluster's
 * share under balance, the held-out split by session stratified by
 * cluster, preference pairs from score contrasts, and the counts and score
 * distributions of the result.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "loop/curate_int.h"

/*
 * Each cluster's share of `target`: proportional to what it has (a[c]),
 * clipped to [lo[c], hi[c]]; floors win when they add up to more than the
 * target; the remainder after rounding down goes by largest fraction (ties:
 * the earlier cluster).  Bisection on the proportion keeps it exact and
 * deterministic.
 */
void gyre_curate_allocate(const uint64_t *a, const uint64_t *lo, const uint64_t *hi, size_t k, uint64_t target,
                          uint64_t *out)
{
    uint64_t sum_lo = 0, sum_hi = 0;
    for (size_t c = 0; c < k; c++) {
        sum_lo += lo[c];
        sum_hi += hi[c];
    }
    if (target >= sum_hi) {
        memcpy(out, hi, k * sizeof(*out));
        return;
    }
    if (sum_lo >= target) {
        memcpy(out, lo, k * sizeof(*out));
        return;
    }
    double l = 0, h = 1;
    for (size_t c = 0; c < k; c++)
        if (a[c] > 0 && (double)hi[c] / (double)a[c] > h)
            h = (double)hi[c] / (double)a[c];
    for (int it = 0; it < 200; it++) {
        double m = (l + h) / 2, s = 0;
        for (size_t c = 0; c < k; c++) {
            double v = m * (double)a[c];
            s += v < (double)lo[c] ? (double)lo[c] : v > (double)hi[c] ? (double)hi[c] : v;
        }
        if (s < (double)target)
            l = m;
        else
            h = m;
    }
    double *frac = gyre_malloc((k ? k : 1) * sizeof(*frac));
    uint64_t sum = 0;
    for (size_t c = 0; c < k; c++) {
        double v = h * (double)a[c];
        v = v < (double)lo[c] ? (double)lo[c] : v > (double)hi[c] ? (double)hi[c] : v;
        out[c] = (uint64_t)floor(v);
        if (out[c] > hi[c])
            out[c] = hi[c];
        frac[c] = v - (double)out[c];
        sum += out[c];
    }
    while (sum > target) { /* the bisection's upper side may round over: take back from the largest share */
        size_t best = k;
        for (size_t c = 0; c < k; c++)
            if (out[c] > lo[c] && (best == k || out[c] > out[best]))
                best = c;
        if (best == k)
            break;
        out[best]--;
        sum--;
    }
    while (sum < target) {
        size_t best = k;
        for (size_t c = 0; c < k; c++)
            if (out[c] < hi[c] && (best == k || frac[c] > frac[best]))
                best = c;
        if (best == k)
            break;
        out[best]++;
        frac[best] = -1;
        sum++;
    }
    free(frac);
}

static int dist_cmp_cb(const void *x, const void *y)
{
    return strcmp(((const gyre_curate_score_dist_t *)x)->name, ((const gyre_curate_score_dist_t *)y)->name);
}

/* ---- The held-out split. ---- */

typedef struct sess_group {
    uint64_t skey;   /* the session's id, or 2^32 + the record's index for a call without one */
    size_t first, n; /* its members in the sorted (skey, idx) array */
    int32_t stratum; /* the cluster most of its members are in (ties: the smaller id) */
    uint64_t rank;   /* seeded */
    const char *name;
} sess_group_t;

static int u64pair_cmp_cb(const void *x, const void *y)
{
    const uint64_t *a = x, *b = y;
    if (a[0] != b[0])
        return a[0] < b[0] ? -1 : 1;
    return (a[1] > b[1]) - (a[1] < b[1]);
}

static int sess_group_cmp_cb(const void *x, const void *y)
{
    const sess_group_t *a = x, *b = y;
    if (a->stratum != b->stratum)
        return a->stratum < b->stratum ? -1 : 1;
    if (a->rank != b->rank)
        return a->rank < b->rank ? -1 : 1;
    return strcmp(a->name, b->name);
}

static const char *rec_session_name(const run_t *r, const rec_t *x)
{
    return x->session ? r->sessions.strs[x->session - 1] : x->trace_id;
}

void gyre_curate_split_heldout(run_t *r, uint8_t *side)
{
    size_t m = 0;
    for (size_t i = 0; i < r->n; i++)
        m += (r->recs[i].flags & F_SELECTED) != 0;
    if (m == 0)
        return;
    uint64_t *keys = gyre_malloc(m * 2 * sizeof(uint64_t));
    size_t k = 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->recs[i].flags & F_SELECTED) {
            keys[2 * k] = r->recs[i].session ? r->recs[i].session : ((uint64_t)1 << 32) + i;
            keys[2 * k + 1] = i;
            k++;
        }
    qsort(keys, m, 2 * sizeof(uint64_t), u64pair_cmp_cb);
    sess_group_t *g = gyre_malloc(m * sizeof(*g));
    size_t ng = 0;
    int32_t *cl = gyre_malloc(m * sizeof(*cl));
    for (size_t i = 0; i < m;) {
        size_t j = i;
        while (j < m && keys[2 * j] == keys[2 * i])
            j++;
        /* The stratum: the most frequent cluster among the members (sorted, then counted). */
        for (size_t t = i; t < j; t++)
            cl[t - i] = r->recs[keys[2 * t + 1]].cluster;
        qsort(cl, j - i, sizeof(*cl), gyre_curate_i32_cmp_cb);
        int32_t stratum = cl[0];
        size_t best = 0;
        for (size_t t = 0; t < j - i;) {
            size_t u = t;
            while (u < j - i && cl[u] == cl[t])
                u++;
            if (u - t > best) {
                best = u - t;
                stratum = cl[t];
            }
            t = u;
        }
        const rec_t *first = &r->recs[keys[2 * i + 1]];
        const char *name = rec_session_name(r, first);
        g[ng++] = (sess_group_t){
            keys[2 * i], i, j - i, stratum, gyre_curate_seeded_rank(r->spec->seed ^ 0x68656c646f7574ULL, name), name};
        i = j;
    }
    free(cl);
    qsort(g, ng, sizeof(*g), sess_group_cmp_cb);
    for (size_t i = 0; i < ng;) {
        size_t j = i;
        uint64_t examples = 0;
        while (j < ng && g[j].stratum == g[i].stratum)
            examples += g[j++].n;
        uint64_t want = (uint64_t)llround(r->spec->heldout * (double)examples), held = 0;
        for (size_t t = i; t < j; t++) {
            int out = held < want;
            if (out)
                held += g[t].n;
            for (size_t u = 0; u < g[t].n; u++)
                if (out)
                    r->recs[keys[2 * (g[t].first + u) + 1]].flags |= F_HELDOUT;
            if (g[t].skey < ((uint64_t)1 << 32))
                side[g[t].skey] = out ? 2 : 1;
        }
        i = j;
    }
    free(g);
    free(keys);
}

/* A pair's side: its session's, when the session has selected examples; else a seeded draw at the fraction. */
gyre_curate_split_t gyre_curate_pair_split(const run_t *r, const uint8_t *side, const rec_t *x)
{
    if (r->spec->heldout <= 0)
        return GYRE_CURATE_TRAIN;
    if (x->session != 0 && side[x->session] != 0)
        return side[x->session] == 2 ? GYRE_CURATE_HELDOUT : GYRE_CURATE_TRAIN;
    double u = (double)(gyre_curate_seeded_rank(r->spec->seed ^ 0x70616972ULL, rec_session_name(r, x)) >> 11) /
               9007199254740992.0;
    return u < r->spec->heldout ? GYRE_CURATE_HELDOUT : GYRE_CURATE_TRAIN;
}

/* Pairs from score contrasts: in each near-duplicate group the best and the worst by the contrast score. */
void gyre_curate_contrast_pairs(run_t *r, const uint32_t *group, const uint8_t *side, gyre_curation_t *c, size_t *cap)
{
    uint32_t *hi = gyre_malloc((r->n ? r->n : 1) * sizeof(*hi)), *lo = gyre_malloc((r->n ? r->n : 1) * sizeof(*lo));
    for (size_t i = 0; i < r->n; i++)
        hi[i] = lo[i] = UINT32_MAX;
    for (size_t i = 0; i < r->n; i++) {
        const rec_t *x = &r->recs[i];
        if (!(x->flags & F_IN) || isnan(x->contrast))
            continue;
        uint32_t g = group[i];
        if (hi[g] == UINT32_MAX || x->contrast > r->recs[hi[g]].contrast ||
            (x->contrast == r->recs[hi[g]].contrast && gyre_curate_better(r, x, &r->recs[hi[g]])))
            hi[g] = (uint32_t)i;
        if (lo[g] == UINT32_MAX || x->contrast < r->recs[lo[g]].contrast ||
            (x->contrast == r->recs[lo[g]].contrast && gyre_curate_better(r, &r->recs[lo[g]], x)))
            lo[g] = (uint32_t)i;
    }
    for (size_t g = 0; g < r->n; g++) {
        if (hi[g] == UINT32_MAX || hi[g] == lo[g])
            continue;
        const rec_t *h = &r->recs[hi[g]], *l = &r->recs[lo[g]];
        if ((h->flags & F_PASSED) && (double)h->contrast - (double)l->contrast >= r->spec->contrast_margin - 1e-6)
            gyre_curate_add_item(c, cap, r, h, GYRE_CURATE_PREFERENCE, l, 0, gyre_curate_pair_split(r, side, h));
    }
    free(hi);
    free(lo);
}

/* ---- Counts and distributions. ---- */

void gyre_curate_count_clusters(const run_t *r, gyre_curation_t *c, char **cnames, size_t ncnames)
{
    int32_t *ids = gyre_malloc((r->n ? r->n : 1) * sizeof(*ids));
    size_t m = 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->recs[i].flags & F_IN)
            ids[m++] = r->recs[i].cluster;
    qsort(ids, m, sizeof(*ids), gyre_curate_i32_cmp_cb);
    size_t k = 0;
    for (size_t i = 0; i < m; i++)
        if (k == 0 || ids[k - 1] != ids[i])
            ids[k++] = ids[i];
    c->clusters = gyre_calloc(k ? k : 1, sizeof(*c->clusters));
    c->nclusters = k;
    for (size_t i = 0; i < k; i++) {
        c->clusters[i].cluster = ids[i];
        if (ids[i] >= 0 && (size_t)ids[i] < ncnames && cnames[ids[i]] != NULL)
            c->clusters[i].name = gyre_strdup(cnames[ids[i]]);
    }
    for (size_t i = 0; i < r->n; i++) {
        const rec_t *x = &r->recs[i];
        if (!(x->flags & F_IN))
            continue;
        int32_t *hit = bsearch(&x->cluster, ids, k, sizeof(*ids), gyre_curate_i32_cmp_cb);
        gyre_curate_cluster_count_t *cc = &c->clusters[hit - ids];
        cc->scanned++;
        c->in_source++;
        if (x->flags & F_PASSED) {
            cc->passed++;
            c->passed++;
            if (!(x->flags & F_DROPPED)) {
                cc->deduped++;
                c->deduped++;
            }
        }
        if (x->flags & F_SELECTED) {
            cc->selected++;
            c->selected++;
            if (x->flags & F_HELDOUT) {
                cc->heldout++;
                c->heldout++;
            }
        }
    }
    free(ids);
}

void gyre_curate_score_distributions(const run_t *r, gyre_curation_t *c)
{
    size_t nk = r->keys.n;
    if (nk == 0)
        return;
    gyre_curate_score_dist_t *d = gyre_calloc(nk, sizeof(*d));
    for (size_t i = 0; i < nk; i++) {
        d[i].min = INFINITY;
        d[i].max = -INFINITY;
    }
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < r->n; i++) {
            const rec_t *x = &r->recs[i];
            if (!(x->flags & F_SELECTED))
                continue;
            for (size_t j = 0; j < x->nscores; j++) {
                const score_entry_t *e = &r->scores[x->score_off + j];
                gyre_curate_score_dist_t *s = &d[e->key];
                double v = e->value;
                if (pass == 0) {
                    s->n++;
                    s->mean += v; /* the sum, divided below */
                    if (v < s->min)
                        s->min = v;
                    if (v > s->max)
                        s->max = v;
                } else {
                    size_t b = 0;
                    if (s->max > s->min) {
                        double f = (v - s->min) / (s->max - s->min) * GYRE_CURATE_HIST_BINS;
                        b = f >= GYRE_CURATE_HIST_BINS ? GYRE_CURATE_HIST_BINS - 1 : (size_t)f;
                    }
                    s->hist[b]++;
                }
            }
        }
    size_t k = 0;
    for (size_t i = 0; i < nk; i++) {
        if (d[i].n == 0)
            continue;
        d[k] = d[i];
        d[k].mean /= (double)d[k].n;
        d[k].name = gyre_strdup(r->keys.strs[i]);
        k++;
    }
    qsort(d, k, sizeof(*d), dist_cmp_cb);
    c->scores = d;
    c->nscores = k;
}
