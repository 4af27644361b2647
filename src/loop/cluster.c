/*
 * The clusterer (cluster.h): per-example records kept compact, k-means on a
 * sample, every example assigned, parents, statistics, names by contrast.
 *
 * Where the time goes for n examples of dims d: featurising is linear in the
 * text; the fit is O(S x k x d x iterations) on a sample of at most
 * FIT_SAMPLE; choosing k adds kmax fits on at most SELECT_SAMPLE points and
 * one silhouette matrix; the assignment is one pass of O(n x k x d); the
 * statistics two sorts of n pairs (distinct sessions per leaf and parent).
 */
#include "loop/cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/rand.h"
#include "loop/featurize.h"
#include "loop/kmeans.h"

/* The final fit's sample, and the sample k is chosen on: enough for clusters of 0.1% of the traffic to hold
 * ~20 points, small enough that a fit takes well under a second. */
#define FIT_SAMPLE 20000
#define SELECT_SAMPLE 4000
/* Restarts of the final fit (the lowest inertia wins). */
#define FIT_RESTARTS 3
/* Distinct score names followed; later names are not averaged. */
#define MAX_SCORE_NAMES 64
/* Examples whose terms are kept for naming: a cluster of 1% of the examples has ~200 of them; a few MB.  Only
 * these texts' words are looked up in the featuriser's dictionary (of 1M, about 20000 x (1 + ln 50) = 98,000). */
#define NAME_SAMPLE 20000
/* The featuriser holds at most its warm-up's texts before their vectors and terms come. */
#define PENDING_MAX (GYRE_FEATURIZE_DEFAULT_WARMUP + 1)
/* A leaf is named against this many nearest other leaves. */
#define NEIGHBOURS 3

typedef struct ex_score {
    uint16_t name;
    float value;
} ex_score_t;

struct gyre_clusterer {
    gyre_cluster_opts_t o;
    gyre_featurizer_t *feat;
    size_t n, cap;
    float *vec;            /* n x dims */
    char (*tid)[33];
    uint64_t *sess;        /* the session's hash (or the trace id's, for a call without a session) */
    int64_t *started;
    uint8_t *failed;
    float *cost;           /* NaN: unknown */
    uint32_t *score_off;   /* n + 1 */
    ex_score_t *scores;
    size_t nscores, capscores;
    char *score_names[MAX_SCORE_NAMES];
    size_t nscore_names;
    int64_t min_started, max_started;
    int error; /* the first embed error; reported by finish */
    char errmsg[256];
    double featurize_s;
    /* The naming sample: the naming terms of NAME_SAMPLE examples drawn uniformly from the stream (reservoir
     * sampling, Vitter's algorithm R, seeded). */
    struct name_slot {
        size_t idx;
        uint32_t *terms;
        uint32_t n;
    } *res;
    size_t nres, drawn; /* slots filled; slots drawn (nres lags while texts are held for the warm-up) */
    uint64_t res_rng;
    struct pending {
        size_t idx, slot;
    } *pending; /* examples drawn into the sample whose terms have not come yet, in add order */
    size_t pending_head, npending;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t hash_str(const char *s, uint64_t salt)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ salt;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return mix64(h);
}

static void sink_cb(void *ctx, size_t idx, const float *vec, const uint32_t *terms, size_t nterms)
{
    gyre_clusterer_t *c = ctx;
    if (c->o.embed == NULL)
        memcpy(c->vec + idx * c->o.dims, vec, c->o.dims * sizeof(float));
    /* The slot was drawn when the example was added (the pending queue holds it until its terms come). */
    if (c->npending == 0 || c->pending[c->pending_head].idx != idx)
        return;
    size_t j = c->pending[c->pending_head].slot;
    c->pending_head = (c->pending_head + 1) % PENDING_MAX;
    c->npending--;
    struct name_slot *slot = &c->res[j];
    if (j == c->nres)
        c->nres++;
    else
        free(slot->terms);
    slot->idx = idx;
    slot->n = (uint32_t)nterms;
    slot->terms = gyre_malloc((nterms ? nterms : 1) * sizeof(uint32_t));
    memcpy(slot->terms, terms, nterms * sizeof(uint32_t));
}

gyre_clusterer_t *gyre_clusterer_new(const gyre_cluster_opts_t *o)
{
    gyre_clusterer_t *c = gyre_calloc(1, sizeof(*c));
    if (o != NULL)
        c->o = *o;
    if (c->o.min_sessions == 0)
        c->o.min_sessions = 5;
    if (c->o.seed == 0)
        c->o.seed = 1;
    if (c->o.dims == 0)
        c->o.dims = GYRE_CLUSTER_DEFAULT_DIMS;
    unsigned dims = c->o.dims <= GYRE_CLUSTER_MAX_DIMS ? c->o.dims : GYRE_CLUSTER_MAX_DIMS;
    c->feat = gyre_featurizer_new(dims, c->o.seed, 0, sink_cb, c);
    c->score_off = gyre_malloc(sizeof(uint32_t));
    c->score_off[0] = 0;
    c->res = gyre_malloc(NAME_SAMPLE * sizeof(*c->res));
    c->pending = gyre_malloc(PENDING_MAX * sizeof(*c->pending));
    c->res_rng = (uint64_t)c->o.seed * 0x9e3779b97f4a7c15ULL + 7;
    c->min_started = INT64_MAX;
    c->max_started = INT64_MIN;
    return c;
}

void gyre_clusterer_free(gyre_clusterer_t *c)
{
    if (c == NULL)
        return;
    gyre_featurizer_free(c->feat);
    free(c->vec);
    free(c->tid);
    free(c->sess);
    free(c->started);
    free(c->failed);
    free(c->cost);
    for (size_t i = 0; i < c->nres; i++)
        free(c->res[i].terms);
    free(c->res);
    free(c->pending);
    free(c->score_off);
    free(c->scores);
    for (size_t i = 0; i < c->nscore_names; i++)
        free(c->score_names[i]);
    free(c);
}

size_t gyre_clusterer_count(const gyre_clusterer_t *c)
{
    return c->n;
}

static void grow(gyre_clusterer_t *c)
{
    size_t cap = c->cap ? c->cap * 2 : 1024;
    if (cap > GYRE_CLUSTER_MAX_EXAMPLES)
        cap = GYRE_CLUSTER_MAX_EXAMPLES;
    unsigned d = c->o.dims <= GYRE_CLUSTER_MAX_DIMS ? c->o.dims : GYRE_CLUSTER_MAX_DIMS;
    c->vec = gyre_realloc(c->vec, cap * d * sizeof(float));
    c->tid = gyre_realloc(c->tid, cap * sizeof(*c->tid));
    c->sess = gyre_realloc(c->sess, cap * sizeof(*c->sess));
    c->started = gyre_realloc(c->started, cap * sizeof(*c->started));
    c->failed = gyre_realloc(c->failed, cap * sizeof(*c->failed));
    c->cost = gyre_realloc(c->cost, cap * sizeof(*c->cost));
    c->score_off = gyre_realloc(c->score_off, (cap + 1) * sizeof(*c->score_off));
    c->cap = cap;
}

static int score_name_id(gyre_clusterer_t *c, const char *name)
{
    for (size_t i = 0; i < c->nscore_names; i++)
        if (strcmp(c->score_names[i], name) == 0)
            return (int)i;
    if (c->nscore_names == MAX_SCORE_NAMES)
        return -1;
    c->score_names[c->nscore_names] = gyre_strdup(name);
    return (int)c->nscore_names++;
}

int gyre_clusterer_add(gyre_clusterer_t *c, const gyre_example_t *ex)
{
    if (c->error != 0)
        return c->error;
    if (c->n == GYRE_CLUSTER_MAX_EXAMPLES)
        return -E2BIG;
    double t0 = now_s();
    if (c->n == c->cap)
        grow(c);
    size_t i = c->n;
    unsigned d = c->o.dims <= GYRE_CLUSTER_MAX_DIMS ? c->o.dims : GYRE_CLUSTER_MAX_DIMS;
    memcpy(c->tid[i], ex->trace_id, 33);
    c->tid[i][32] = '\0';
    c->sess[i] = ex->session != NULL && ex->session[0] != '\0' ? hash_str(ex->session, 1) : hash_str(c->tid[i], 2);
    c->started[i] = ex->started_us;
    if (ex->started_us < c->min_started)
        c->min_started = ex->started_us;
    if (ex->started_us > c->max_started)
        c->max_started = ex->started_us;
    c->cost[i] = (float)ex->cost_usd;
    int failed = ex->status >= 400;
    for (size_t s = 0; s < ex->nscores; s++) {
        const gyre_example_score_t *sc = &ex->scores[s];
        if ((sc->source == GYRE_SCORE_HEURISTIC || sc->source == GYRE_SCORE_GUARDRAIL) && sc->value == 0)
            failed = 1;
        if (sc->name == NULL || isnan(sc->value))
            continue;
        int id = score_name_id(c, sc->name);
        if (id < 0)
            continue;
        if (c->nscores == c->capscores) {
            c->capscores = c->capscores ? c->capscores * 2 : 1024;
            c->scores = gyre_realloc(c->scores, c->capscores * sizeof(*c->scores));
        }
        c->scores[c->nscores].name = (uint16_t)id;
        c->scores[c->nscores].value = (float)sc->value;
        c->nscores++;
    }
    c->failed[i] = (uint8_t)failed;
    c->score_off[i + 1] = (uint32_t)c->nscores;
    const char *text = ex->task_text != NULL ? ex->task_text : "";
    size_t len = strlen(text);
    c->n++;
    if (c->o.embed != NULL) {
        int r = c->o.embed(c->o.embed_ctx, text, len, c->vec + i * d, d, c->errmsg, sizeof(c->errmsg));
        if (r != 0) {
            c->error = r < 0 ? r : -EIO;
            return c->error;
        }
    }
    /* The naming sample (algorithm R): the first NAME_SAMPLE examples, then example i replaces a random slot
     * with probability NAME_SAMPLE / (i + 1). */
    size_t slot = SIZE_MAX;
    if (c->drawn < NAME_SAMPLE) {
        slot = c->drawn++;
    } else {
        uint64_t j = gyre_rand_next(&c->res_rng) % (uint64_t)(i + 1);
        if (j < NAME_SAMPLE)
            slot = (size_t)j;
    }
    if (slot != SIZE_MAX) {
        size_t tail = (c->pending_head + c->npending) % PENDING_MAX;
        c->pending[tail].idx = i;
        c->pending[tail].slot = slot;
        c->npending++;
    }
    gyre_featurizer_add(c->feat, i, text, len, slot != SIZE_MAX);
    c->featurize_s += now_s() - t0;
    return 0;
}

/* ---- term counts per cluster, for naming ---- */

typedef struct term_map {
    uint32_t *key; /* NO_TERM: empty */
    uint32_t *count;
    size_t cap, n;
} term_map_t;

static void tm_add(term_map_t *m, uint32_t key, uint32_t by)
{
    if ((m->n + 1) * 2 > m->cap) {
        term_map_t g = {0};
        g.cap = m->cap ? m->cap * 2 : 64;
        g.key = gyre_malloc(g.cap * sizeof(uint32_t));
        g.count = gyre_malloc(g.cap * sizeof(uint32_t));
        memset(g.key, 0xff, g.cap * sizeof(uint32_t));
        for (size_t i = 0; i < m->cap; i++)
            if (m->key[i] != GYRE_FEATURIZE_NO_TERM)
                tm_add(&g, m->key[i], m->count[i]);
        free(m->key);
        free(m->count);
        *m = g;
    }
    size_t i = (size_t)mix64(key) & (m->cap - 1);
    while (m->key[i] != GYRE_FEATURIZE_NO_TERM && m->key[i] != key)
        i = (i + 1) & (m->cap - 1);
    if (m->key[i] == GYRE_FEATURIZE_NO_TERM) {
        m->key[i] = key;
        m->count[i] = 0;
        m->n++;
    }
    m->count[i] += by;
}

static uint32_t tm_get(const term_map_t *m, uint32_t key)
{
    if (m->cap == 0)
        return 0;
    size_t i = (size_t)mix64(key) & (m->cap - 1);
    while (m->key[i] != GYRE_FEATURIZE_NO_TERM) {
        if (m->key[i] == key)
            return m->count[i];
        i = (i + 1) & (m->cap - 1);
    }
    return 0;
}

typedef struct cand {
    double score;
    const char *term;
} cand_t;

/*
 * The distinctive terms of cluster `ci` among `nc` clusters (their term counts and examples in the naming
 * sample, centroids of d floats): the terms whose share of the cluster's examples most exceeds their share of
 * the NEIGHBOURS nearest clusters' examples, as Clio contrasts a cluster with its neighbours.  A term must be in at least two of the cluster's examples
 * (one example's oddity does not name a cluster).  Ties go to the alphabetically first term.
 */
static void name_cluster(const gyre_featurizer_t *f, const term_map_t *maps, const uint64_t *vol, const float *cent,
                         unsigned d, size_t nc, size_t ci, gyre_cluster_info_t *out)
{
    size_t nb[NEIGHBOURS];
    float nbd[NEIGHBOURS];
    size_t nnb = 0;
    for (size_t j = 0; j < nc; j++) {
        if (j == ci || vol[j] == 0)
            continue;
        float s = 0;
        for (unsigned t = 0; t < d; t++) {
            float x = cent[ci * d + t] - cent[j * d + t];
            s += x * x;
        }
        size_t at = nnb;
        while (at > 0 && nbd[at - 1] > s)
            at--;
        if (at == NEIGHBOURS)
            continue;
        size_t last = nnb < NEIGHBOURS ? nnb : NEIGHBOURS - 1;
        memmove(&nb[at + 1], &nb[at], (last - at) * sizeof(nb[0]));
        memmove(&nbd[at + 1], &nbd[at], (last - at) * sizeof(nbd[0]));
        nb[at] = j;
        nbd[at] = s;
        if (nnb < NEIGHBOURS)
            nnb++;
    }
    uint64_t nvol = 0;
    for (size_t j = 0; j < nnb; j++)
        nvol += vol[nb[j]];
    cand_t best[GYRE_CLUSTER_TERMS];
    size_t nbest = 0;
    const term_map_t *m = &maps[ci];
    for (size_t i = 0; i < m->cap; i++) {
        if (m->key[i] == GYRE_FEATURIZE_NO_TERM || m->count[i] < 2)
            continue;
        uint64_t other = 0;
        for (size_t j = 0; j < nnb; j++)
            other += tm_get(&maps[nb[j]], m->key[i]);
        double s = (double)m->count[i] / (double)vol[ci] - (nvol ? (double)other / (double)nvol : 0.0);
        if (s <= 0)
            continue;
        const char *term = gyre_featurizer_term(f, m->key[i]);
        size_t at = nbest;
        while (at > 0 && (best[at - 1].score < s || (best[at - 1].score == s && strcmp(best[at - 1].term, term) > 0)))
            at--;
        if (at == GYRE_CLUSTER_TERMS)
            continue;
        size_t last = nbest < GYRE_CLUSTER_TERMS ? nbest : GYRE_CLUSTER_TERMS - 1;
        memmove(&best[at + 1], &best[at], (last - at) * sizeof(best[0]));
        best[at].score = s;
        best[at].term = term;
        if (nbest < GYRE_CLUSTER_TERMS)
            nbest++;
    }
    gyre_buf_t name;
    gyre_buf_init(&name, 1024);
    for (size_t i = 0; i < nbest; i++) {
        out->terms[i] = gyre_strdup(best[i].term);
        if (i < 3)
            gyre_buf_appendf(&name, "%s%s", i ? ", " : "", best[i].term);
    }
    if (nbest == 0)
        gyre_buf_appendf(&name, "cluster %d", (int)out->id);
    out->name = gyre_strdup(name.base);
    gyre_buf_dispose(&name);
}

/* ---- distinct sessions ---- */

typedef struct sess_pair {
    int32_t cluster;
    uint64_t sess;
} sess_pair_t;

static int cmp_sess_pair(const void *a, const void *b)
{
    const sess_pair_t *x = a, *y = b;
    if (x->cluster != y->cluster)
        return x->cluster < y->cluster ? -1 : 1;
    return x->sess < y->sess ? -1 : x->sess > y->sess;
}

static void count_sessions(const int32_t *cl, const uint64_t *sess, size_t n, gyre_cluster_info_t *info,
                           int32_t base)
{
    sess_pair_t *p = gyre_malloc((n ? n : 1) * sizeof(*p));
    for (size_t i = 0; i < n; i++) {
        p[i].cluster = cl[i];
        p[i].sess = sess[i];
    }
    qsort(p, n, sizeof(*p), cmp_sess_pair);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || p[i].cluster != p[i - 1].cluster || p[i].sess != p[i - 1].sess)
            info[p[i].cluster - base].sessions++;
    free(p);
}

/* ---- finish ---- */

typedef struct near_ex {
    float d;
    size_t idx;
} near_ex_t;

static void keep_near(near_ex_t *k, size_t *nk, float d, size_t idx)
{
    size_t at = *nk;
    while (at > 0 && k[at - 1].d > d)
        at--;
    if (at == GYRE_CLUSTER_EXAMPLES)
        return;
    size_t last = *nk < GYRE_CLUSTER_EXAMPLES ? *nk : GYRE_CLUSTER_EXAMPLES - 1;
    memmove(&k[at + 1], &k[at], (last - at) * sizeof(k[0]));
    k[at].d = d;
    k[at].idx = idx;
    if (*nk < GYRE_CLUSTER_EXAMPLES)
        (*nk)++;
}

typedef struct vol_order {
    uint64_t vol;
    uint32_t old;
} vol_order_t;

static int cmp_vol_desc(const void *a, const void *b)
{
    const vol_order_t *x = a, *y = b;
    if (x->vol != y->vol)
        return x->vol > y->vol ? -1 : 1;
    return x->old < y->old ? -1 : x->old > y->old;
}

/* Renumbers clusters 0..k-1 by volume, largest first, dropping empty ones: map[old] = new or -1.  Returns how
 * many are left. */
static unsigned order_by_volume(const int32_t *as, size_t n, unsigned k, int32_t *map)
{
    vol_order_t *o = gyre_calloc(k, sizeof(*o));
    for (unsigned j = 0; j < k; j++)
        o[j].old = j;
    for (size_t i = 0; i < n; i++)
        o[as[i]].vol++;
    qsort(o, k, sizeof(*o), cmp_vol_desc);
    unsigned left = 0;
    for (unsigned j = 0; j < k; j++)
        map[o[j].old] = o[j].vol > 0 ? (int32_t)left++ : -1;
    free(o);
    return left;
}

int gyre_clusterer_finish(gyre_clusterer_t *c, gyre_cluster_result_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (c->error != 0) {
        snprintf(err, errlen, "embeddings: %s", c->errmsg[0] ? c->errmsg : "failed");
        return c->error;
    }
    if (c->o.k > GYRE_CLUSTER_MAX_K) {
        snprintf(err, errlen, "k: %u is above the most allowed, %d", c->o.k, GYRE_CLUSTER_MAX_K);
        return -EINVAL;
    }
    if (c->o.dims < 2 || c->o.dims > GYRE_CLUSTER_MAX_DIMS) {
        snprintf(err, errlen, "dims: %u is not within 2-%d", c->o.dims, GYRE_CLUSTER_MAX_DIMS);
        return -EINVAL;
    }
    double t0 = now_s();
    gyre_featurizer_flush(c->feat);
    size_t n = c->n;
    if (n == 0) {
        snprintf(err, errlen, "no trace to cluster");
        return -ENODATA;
    }
    unsigned d = c->o.dims;
    uint64_t st = (uint64_t)c->o.seed * 0x2545F4914F6CDD1DULL + 1;

    /* The sample, in a seeded random order (the silhouette reads its first points). */
    size_t ns = n < FIT_SAMPLE ? n : FIT_SAMPLE;
    uint32_t *idx = gyre_malloc(n * sizeof(uint32_t));
    for (size_t i = 0; i < n; i++)
        idx[i] = (uint32_t)i;
    for (size_t i = 0; i < ns; i++) {
        size_t j = i + (size_t)(gyre_rand_next(&st) % (uint64_t)(n - i));
        uint32_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
    float *xs = gyre_malloc(ns * d * sizeof(float));
    for (size_t i = 0; i < ns; i++)
        memcpy(xs + i * d, c->vec + (size_t)idx[i] * d, d * sizeof(float));
    free(idx);

    gyre_cluster_result_t *r = gyre_calloc(1, sizeof(*r));
    r->silhouette = NAN;
    unsigned k;
    if (c->o.k != 0) {
        k = c->o.k < ns ? c->o.k : (unsigned)ns;
    } else if (ns < 3) {
        k = 1;
    } else {
        r->k_auto = 1;
        k = gyre_kmeans_choose_k(xs, ns < SELECT_SAMPLE ? ns : SELECT_SAMPLE, d, 2, GYRE_CLUSTER_AUTO_K_MAX,
                                 c->o.seed, &r->silhouette);
    }
    float *cent = gyre_malloc((size_t)k * d * sizeof(float)), *tryc = gyre_malloc((size_t)k * d * sizeof(float));
    double best = INFINITY;
    for (unsigned t = 0; t < FIT_RESTARTS; t++) {
        double in = gyre_kmeans_fit(xs, ns, d, k, (uint64_t)c->o.seed * 1000003u + t, GYRE_KMEANS_MAX_ITER, tryc, NULL);
        if (in < best) {
            best = in;
            memcpy(cent, tryc, (size_t)k * d * sizeof(float));
        }
    }
    free(tryc);
    free(xs);

    /* Everyone to the nearest centroid, then leaves renumbered by volume (an emptied one dropped). */
    int32_t *as = gyre_malloc(n * sizeof(int32_t));
    float *dd = gyre_malloc(n * sizeof(float));
    gyre_kmeans_assign(c->vec, n, d, cent, k, as, dd);
    int32_t *map = gyre_malloc(k * sizeof(int32_t));
    unsigned nl = order_by_volume(as, n, k, map);
    float *lc = gyre_malloc((size_t)nl * d * sizeof(float));
    for (unsigned j = 0; j < k; j++)
        if (map[j] >= 0)
            memcpy(lc + (size_t)map[j] * d, cent + (size_t)j * d, d * sizeof(float));
    for (size_t i = 0; i < n; i++)
        as[i] = map[as[i]];
    free(map);
    free(cent);

    /* Parents: k-means over the leaves' centroids, sqrt(leaves) of them (one for three leaves or fewer). */
    unsigned kp = nl <= 3 ? 1 : (unsigned)lround(sqrt((double)nl));
    float *pc = gyre_malloc((size_t)kp * d * sizeof(float));
    int32_t *lp = gyre_malloc(nl * sizeof(int32_t));
    gyre_kmeans_fit(lc, nl, d, kp, (uint64_t)c->o.seed * 7919u, GYRE_KMEANS_MAX_ITER, pc, lp);
    int32_t *pas = gyre_malloc(n * sizeof(int32_t));
    for (size_t i = 0; i < n; i++)
        pas[i] = lp[as[i]];
    int32_t *pmap = gyre_malloc(kp * sizeof(int32_t));
    unsigned np = order_by_volume(pas, n, kp, pmap);
    float *pcent = gyre_malloc((size_t)(np ? np : 1) * d * sizeof(float));
    for (unsigned j = 0; j < kp; j++)
        if (pmap[j] >= 0)
            memcpy(pcent + (size_t)pmap[j] * d, pc + (size_t)j * d, d * sizeof(float));
    for (unsigned j = 0; j < nl; j++)
        lp[j] = pmap[lp[j]] + (int32_t)nl;
    for (size_t i = 0; i < n; i++)
        pas[i] = lp[as[i]];
    free(pmap);
    free(pc);

    size_t nc = nl + np;
    r->n = n;
    r->nleaves = nl;
    r->nclusters = nc;
    r->cluster = as;
    r->parent = pas;
    r->clusters = gyre_calloc(nc, sizeof(*r->clusters));
    r->min_sessions = c->o.min_sessions;
    r->seed = c->o.seed;
    r->dims = d;
    r->featurizer = c->o.embed != NULL ? "embeddings" : "local";
    r->window_from_us = c->o.window_from_us || c->o.window_to_us ? c->o.window_from_us : c->min_started;
    r->window_to_us = c->o.window_from_us || c->o.window_to_us ? c->o.window_to_us : c->max_started;
    int64_t mid = r->window_from_us + (r->window_to_us - r->window_from_us) / 2;
    for (size_t j = 0; j < nc; j++) {
        r->clusters[j].id = (int32_t)j;
        r->clusters[j].level = j < nl ? 0 : 1;
        r->clusters[j].parent = j < nl ? lp[j] : -1;
    }
    free(lp);

    /* Statistics in one pass over the examples. */
    size_t nsn = c->nscore_names;
    double *ssum = gyre_calloc(nc * (nsn ? nsn : 1), sizeof(double));
    uint64_t *scnt = gyre_calloc(nc * (nsn ? nsn : 1), sizeof(uint64_t));
    uint64_t *fails = gyre_calloc(nc, sizeof(uint64_t));
    near_ex_t (*near)[GYRE_CLUSTER_EXAMPLES] = gyre_calloc(nc, sizeof(*near));
    size_t *nnear = gyre_calloc(nc, sizeof(size_t));
    term_map_t *maps = gyre_calloc(nc, sizeof(*maps));
    for (size_t i = 0; i < n; i++) {
        size_t two[2] = {(size_t)as[i], (size_t)pas[i]};
        for (int l = 0; l < 2; l++) {
            size_t j = two[l];
            gyre_cluster_info_t *ci = &r->clusters[j];
            ci->volume++;
            if (c->started[i] < mid)
                ci->first_half++;
            else
                ci->second_half++;
            fails[j] += c->failed[i];
            if (!isnan(c->cost[i]))
                ci->cost_usd += c->cost[i];
            for (uint32_t s = c->score_off[i]; s < c->score_off[i + 1]; s++) {
                ssum[j * nsn + c->scores[s].name] += c->scores[s].value;
                scnt[j * nsn + c->scores[s].name]++;
            }
            keep_near(near[j], &nnear[j], dd[i], i);
        }
    }
    /* Term counts over the naming sample, per leaf and parent. */
    uint64_t *svol = gyre_calloc(nc, sizeof(uint64_t));
    for (size_t q = 0; q < c->nres; q++) {
        size_t two[2] = {(size_t)as[c->res[q].idx], (size_t)pas[c->res[q].idx]};
        for (int l = 0; l < 2; l++) {
            svol[two[l]]++;
            for (uint32_t t = 0; t < c->res[q].n; t++)
                tm_add(&maps[two[l]], c->res[q].terms[t], 1);
        }
    }
    free(dd);
    count_sessions(as, c->sess, n, r->clusters, 0);
    count_sessions(pas, c->sess, n, r->clusters, 0);
    for (size_t j = 0; j < nc; j++) {
        gyre_cluster_info_t *ci = &r->clusters[j];
        ci->shown = ci->sessions >= c->o.min_sessions;
        ci->trend = ci->first_half ? (double)ci->second_half / (double)ci->first_half : NAN;
        ci->failure_rate = ci->volume ? (double)fails[j] / (double)ci->volume : 0;
        for (size_t s = 0; s < nsn; s++)
            if (scnt[j * nsn + s] != 0)
                ci->nscores++;
        ci->scores = gyre_calloc(ci->nscores ? ci->nscores : 1, sizeof(*ci->scores));
        size_t q = 0;
        for (size_t s = 0; s < nsn; s++)
            if (scnt[j * nsn + s] != 0) {
                ci->scores[q].name = c->score_names[s];
                ci->scores[q].mean = ssum[j * nsn + s] / (double)scnt[j * nsn + s];
                ci->scores[q].n = scnt[j * nsn + s];
                q++;
            }
        for (size_t a = 1; a < ci->nscores; a++)
            for (size_t b = a; b > 0 && strcmp(ci->scores[b - 1].name, ci->scores[b].name) > 0; b--) {
                gyre_cluster_score_mean_t t = ci->scores[b];
                ci->scores[b] = ci->scores[b - 1];
                ci->scores[b - 1] = t;
            }
        if (ci->shown)
            for (size_t e = 0; e < nnear[j]; e++)
                memcpy(ci->examples[e], c->tid[near[j][e].idx], 33);
        if (j < nl)
            name_cluster(c->feat, maps, svol, lc, d, nl, j, ci);
        else
            name_cluster(c->feat, maps + nl, svol + nl, pcent, d, np, j - nl, ci);
    }
    /* The score names are the clusterer's; the result keeps its own copies. */
    for (size_t j = 0; j < nc; j++)
        for (size_t s = 0; s < r->clusters[j].nscores; s++)
            r->clusters[j].scores[s].name = gyre_strdup(r->clusters[j].scores[s].name);
    for (size_t j = 0; j < nc; j++) {
        free(maps[j].key);
        free(maps[j].count);
    }
    free(maps);
    free(svol);
    free(ssum);
    free(scnt);
    free(fails);
    free(near);
    free(nnear);
    free(lc);
    free(pcent);
    r->trace_ids = gyre_malloc(n * sizeof(*r->trace_ids));
    memcpy(r->trace_ids, c->tid, n * sizeof(*r->trace_ids));
    r->featurize_s = c->featurize_s;
    r->cluster_s = now_s() - t0;
    *out = r;
    return 0;
}

void gyre_cluster_result_free(gyre_cluster_result_t *r)
{
    if (r == NULL)
        return;
    for (size_t j = 0; j < r->nclusters; j++) {
        gyre_cluster_info_t *ci = &r->clusters[j];
        free(ci->name);
        for (size_t t = 0; t < GYRE_CLUSTER_TERMS; t++)
            free(ci->terms[t]);
        for (size_t s = 0; s < ci->nscores; s++)
            free((char *)ci->scores[s].name);
        free(ci->scores);
    }
    free(r->clusters);
    free(r->cluster);
    free(r->parent);
    free(r->trace_ids);
    free(r);
}

void gyre_cluster_run_id(int64_t created_us, unsigned seed, char out[24])
{
    snprintf(out, 24, "cr_%016" PRIx64, mix64((uint64_t)created_us ^ ((uint64_t)seed << 48)));
}

/* A double as JSON: NaN and infinities as null. */
static void num(gyre_buf_t *b, const char *key, double v)
{
    if (isnan(v) || isinf(v))
        gyre_buf_appendf(b, "\"%s\":null", key);
    else
        gyre_buf_appendf(b, "\"%s\":%.6g", key, v);
}

int gyre_cluster_result_json(const gyre_cluster_result_t *r, const char *run_id, int64_t created_us,
                             gyre_buf_t *b)
{
    gyre_buf_appends(b, "{\"run_id\":");
    gyre_buf_append_json_string(b, run_id, strlen(run_id));
    gyre_buf_appendf(b, ",\"created_us\":%" PRId64 ",\"examples\":%zu,\"k\":%zu,\"parents\":%zu,\"k_auto\":%s,", created_us,
                     r->n, r->nleaves, r->nclusters - r->nleaves, r->k_auto ? "true" : "false");
    num(b, "silhouette", r->silhouette);
    gyre_buf_appendf(b,
                     ",\"min_sessions\":%u,\"seed\":%u,\"dims\":%u,\"featurizer\":\"%s\",\"window\":{\"from_us\":%" PRId64
                     ",\"to_us\":%" PRId64 "},\"clusters\":[",
                     r->min_sessions, r->seed, r->dims, r->featurizer, r->window_from_us, r->window_to_us);
    for (size_t j = 0; j < r->nclusters; j++) {
        const gyre_cluster_info_t *ci = &r->clusters[j];
        if (j)
            gyre_buf_appends(b, ",");
        if (!ci->shown) {
            /* Privacy: a cluster of too few sessions is only a count. */
            gyre_buf_appendf(b, "{\"id\":%d,\"volume\":%" PRIu64 ",\"hidden\":true}", (int)ci->id, ci->volume);
            continue;
        }
        gyre_buf_appendf(b, "{\"id\":%d,\"parent\":%d,\"level\":%d,\"name\":", (int)ci->id, (int)ci->parent, ci->level);
        gyre_buf_append_json_string(b, ci->name, strlen(ci->name));
        gyre_buf_appends(b, ",\"terms\":[");
        for (size_t t = 0; t < GYRE_CLUSTER_TERMS && ci->terms[t] != NULL; t++) {
            if (t)
                gyre_buf_appends(b, ",");
            gyre_buf_append_json_string(b, ci->terms[t], strlen(ci->terms[t]));
        }
        gyre_buf_appendf(b,
                         "],\"volume\":%" PRIu64 ",\"sessions\":%" PRIu64 ",\"shown\":true,\"first_half\":%" PRIu64
                         ",\"second_half\":%" PRIu64 ",",
                         ci->volume, ci->sessions, ci->first_half, ci->second_half);
        num(b, "trend", ci->trend);
        gyre_buf_appends(b, ",\"scores\":{");
        for (size_t s = 0; s < ci->nscores; s++) {
            if (s)
                gyre_buf_appends(b, ",");
            gyre_buf_append_json_string(b, ci->scores[s].name, strlen(ci->scores[s].name));
            gyre_buf_appends(b, ":{");
            num(b, "mean", ci->scores[s].mean);
            gyre_buf_appendf(b, ",\"n\":%" PRIu64 "}", ci->scores[s].n);
        }
        gyre_buf_appends(b, "},");
        num(b, "failure_rate", ci->failure_rate);
        gyre_buf_appends(b, ",");
        num(b, "cost_usd", ci->cost_usd);
        gyre_buf_appends(b, ",\"examples\":[");
        for (size_t e = 0; e < GYRE_CLUSTER_EXAMPLES && ci->examples[e][0] != '\0'; e++)
            gyre_buf_appendf(b, "%s\"%s\"", e ? "," : "", ci->examples[e]);
        gyre_buf_appends(b, "]}");
    }
    gyre_buf_appends(b, "]}");
    return gyre_buf_failed(b);
}

/* ---- the adjusted Rand index ---- */

typedef struct label_pair {
    int32_t a, b;
} label_pair_t;

static int cmp_pair(const void *x, const void *y)
{
    const label_pair_t *p = x, *q = y;
    if (p->a != q->a)
        return p->a < q->a ? -1 : 1;
    return p->b < q->b ? -1 : p->b > q->b;
}

static int cmp_i32(const void *x, const void *y)
{
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    return a < b ? -1 : a > b;
}

static double choose2(double v)
{
    return v * (v - 1) / 2;
}

/* Sum over the runs of equal values in a sorted array of C(run, 2). */
static double runs_choose2(const int32_t *v, size_t n)
{
    double s = 0;
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        run++;
        if (i + 1 == n || v[i + 1] != v[i]) {
            s += choose2((double)run);
            run = 0;
        }
    }
    return s;
}

double gyre_cluster_ari(const int32_t *a, const int32_t *b, size_t n)
{
    if (n < 2)
        return 1.0;
    label_pair_t *p = gyre_malloc(n * sizeof(*p));
    int32_t *sa = gyre_malloc(n * sizeof(int32_t)), *sb = gyre_malloc(n * sizeof(int32_t));
    for (size_t i = 0; i < n; i++) {
        p[i].a = sa[i] = a[i];
        p[i].b = sb[i] = b[i];
    }
    qsort(p, n, sizeof(*p), cmp_pair);
    qsort(sa, n, sizeof(int32_t), cmp_i32);
    qsort(sb, n, sizeof(int32_t), cmp_i32);
    double sij = 0;
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        run++;
        if (i + 1 == n || p[i + 1].a != p[i].a || p[i + 1].b != p[i].b) {
            sij += choose2((double)run);
            run = 0;
        }
    }
    double si = runs_choose2(sa, n), sj = runs_choose2(sb, n);
    free(p);
    free(sa);
    free(sb);
    double expected = si * sj / choose2((double)n), maxi = (si + sj) / 2;
    if (maxi == expected)
        return 1.0; /* both partitions trivial (all in one, or all apart) and so identical */
    return (sij - expected) / (maxi - expected);
}
