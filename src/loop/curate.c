/*
 * Curation: a spec run over the store (curate.h says the order of the work
 * and the rules of each step).  One streaming pass keeps a small record per
 * example; everything after it works on those records in memory and never
 * reads a body again.
 */
#include "loop/curate.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "loop/cluster.h"
#include "loop/corpus.h"
#include "loop/curate_int.h"
#include "loop/minhash.h"

const char *const gyre_curate_phase_names[GYRE_CURATE_PHASES] = {"scan", "featurise", "dedup", "cluster", "select"};

/* ---- A string interner (sessions, score names): ids from 1, 0 for none. ---- */

typedef gyre_curate_interner_t interner_t;

static uint64_t str_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h ^ (h >> 29);
}

static uint32_t intern(interner_t *in, const char *s)
{
    if (2 * (in->n + 1) > in->nslots) {
        size_t ns = in->nslots ? in->nslots * 2 : 1024;
        uint32_t *slots = gyre_calloc(ns, sizeof(*slots));
        for (size_t i = 0; i < in->n; i++) {
            size_t j = str_hash(in->strs[i]) & (ns - 1);
            while (slots[j] != 0)
                j = (j + 1) & (ns - 1);
            slots[j] = (uint32_t)(i + 1);
        }
        free(in->slots);
        in->slots = slots;
        in->nslots = ns;
    }
    size_t j = str_hash(s) & (in->nslots - 1);
    while (in->slots[j] != 0) {
        if (strcmp(in->strs[in->slots[j] - 1], s) == 0)
            return in->slots[j];
        j = (j + 1) & (in->nslots - 1);
    }
    if (in->n == in->cap) {
        in->cap = in->cap ? in->cap * 2 : 256;
        in->strs = gyre_realloc(in->strs, in->cap * sizeof(*in->strs));
    }
    in->strs[in->n++] = gyre_strdup(s);
    in->slots[j] = (uint32_t)in->n;
    return (uint32_t)in->n;
}

static void interner_free(interner_t *in)
{
    for (size_t i = 0; i < in->n; i++)
        free(in->strs[i]);
    free(in->strs);
    free(in->slots);
}

static void progress(run_t *r, gyre_curate_phase_t phase, uint64_t done, uint64_t total, int force)
{
    if (r->hooks == NULL || r->hooks->progress_cb == NULL)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ms =
        (int64_t)(ts.tv_sec - r->last_progress.tv_sec) * 1000 + (ts.tv_nsec - r->last_progress.tv_nsec) / 1000000;
    if (!force && ms < 100)
        return;
    r->last_progress = ts;
    r->hooks->progress_cb(r->hooks->ctx, phase, done, total);
}

static const char *source_word(int source)
{
    switch (source) {
    case GYRE_SCORE_HUMAN: return "feedback";
    case GYRE_SCORE_HEURISTIC: return "heuristic";
    case GYRE_SCORE_JUDGE: return "judge";
    case GYRE_SCORE_GUARDRAIL: return "guardrail";
    default: return "score";
    }
}

static int any_of(char **v, size_t n, const char *s)
{
    if (n == 0)
        return 1;
    if (s == NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return 1;
    return 0;
}

/* The source's tags (all of them) and metadata (every key=value) against the example's rendered JSON. */
static int tags_and_meta_match(const gyre_curate_spec_t *spec, const gyre_example_t *ex)
{
    if (spec->ntags > 0) {
        cJSON *tags = ex->tags_json != NULL ? cJSON_Parse(ex->tags_json) : NULL;
        int ok = 1;
        for (size_t i = 0; i < spec->ntags && ok; i++) {
            int found = 0;
            const cJSON *t;
            cJSON_ArrayForEach(t, tags) if (cJSON_IsString(t) && strcmp(t->valuestring, spec->tags[i]) == 0) found = 1;
            ok = found;
        }
        cJSON_Delete(tags);
        if (!ok)
            return 0;
    }
    if (spec->nmetadata > 0) {
        cJSON *meta = ex->meta_json != NULL ? cJSON_Parse(ex->meta_json) : NULL;
        int ok = 1;
        for (size_t i = 0; i < spec->nmetadata && ok; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, spec->metadata[i].key);
            ok = cJSON_IsString(v) && strcmp(v->valuestring, spec->metadata[i].value) == 0;
        }
        cJSON_Delete(meta);
        if (!ok)
            return 0;
    }
    return 1;
}

static int scan_cb(void *arg, const gyre_example_t *ex)
{
    run_t *r = arg;
    const gyre_curate_spec_t *spec = r->spec;
    if (!any_of(spec->routes, spec->nroutes, ex->route) || !any_of(spec->agents, spec->nagents, ex->agent) ||
        !tags_and_meta_match(spec, ex))
        return 0;
    if (r->n == GYRE_CURATE_MAX_EXAMPLES) {
        snprintf(r->err, r->errlen, "source: more than %zu examples; narrow it (since, until, routes, agents)",
                 GYRE_CURATE_MAX_EXAMPLES);
        r->err_rc = -E2BIG;
        return -E2BIG;
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 4096;
        r->recs = gyre_realloc(r->recs, r->cap * sizeof(*r->recs));
    }
    rec_t *rc = &r->recs[r->n];
    memset(rc, 0, sizeof(*rc));
    memcpy(rc->trace_id, ex->trace_id, sizeof(rc->trace_id));
    rc->trace_id[32] = '\0';
    rc->session = ex->session != NULL && ex->session[0] != '\0' ? intern(&r->sessions, ex->session) : 0;
    rc->cluster = ex->cluster;
    rc->started_us = ex->started_us;
    size_t len =
        (ex->task_text != NULL ? strlen(ex->task_text) : 0) + (ex->answer_text != NULL ? strlen(ex->answer_text) : 0);
    rc->length = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
    rc->flags = F_IN;
    if (ex->correction != NULL && ex->correction[0] != '\0')
        rc->flags |= F_CORR;
    int passed = spec->filter == NULL || gyre_predicate_eval(spec->filter, ex) ||
                 (spec->use_corrections && (rc->flags & F_CORR));
    if (passed && spec->selection == GYRE_CURATE_SELECT_JUDGE)
        passed = gyre_predicate_eval(spec->judge, ex);
    if (passed)
        rc->flags |= F_PASSED;
    rc->keep = spec->dedup_keep_ref != NULL ? (float)gyre_predicate_number(spec->dedup_keep_ref, ex) : NAN;
    rc->contrast = spec->contrast_ref != NULL ? (float)gyre_predicate_number(spec->contrast_ref, ex) : NAN;

    /* Numeric scores, for the distributions of the selected and the default dedup order. */
    rc->score_off = (uint32_t)r->nscores;
    double qsum = 0;
    unsigned qn = 0;
    for (size_t i = 0; i < ex->nscores && rc->nscores < UINT16_MAX; i++) {
        const gyre_example_score_t *sc = &ex->scores[i];
        if (isnan(sc->value) || sc->name == NULL)
            continue;
        char key[256];
        snprintf(key, sizeof(key), "%s.%s", source_word(sc->source), sc->name);
        uint32_t k = intern(&r->keys, key);
        if (k > UINT16_MAX)
            continue; /* past 65,535 score names the rest are not in the distributions: a bound, not an error */
        if (r->nscores == r->capscores) {
            r->capscores = r->capscores ? r->capscores * 2 : 4096;
            r->scores = gyre_realloc(r->scores, r->capscores * sizeof(*r->scores));
        }
        r->scores[r->nscores++] = (score_entry_t){(uint16_t)(k - 1), (float)sc->value};
        rc->nscores++;
        if (sc->value >= 0 && sc->value <= 1) {
            qsum += sc->value;
            qn++;
        }
    }
    rc->quality = qn > 0 ? (float)(qsum / qn) : NAN;

    if (r->feat != NULL) {
        int frc = gyre_curate_feat_add(r->feat, ex, (uint32_t)r->n);
        if (frc != 0) {
            r->err_rc = frc;
            return frc;
        }
    }
    r->n++;
    if ((r->n & 1023) == 0)
        progress(r, GYRE_CURATE_PHASE_SCAN, r->n, r->progress_total, 0);
    return 0;
}

/* ---- Ordering helpers. ---- */

static uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

uint64_t gyre_curate_seeded_rank(uint64_t seed, const char *s)
{
    return mix64(str_hash(s) ^ mix64(seed + 0x9e3779b97f4a7c15ULL));
}

static int cmp_nan_high(float a, float b)
{
    /* 1 when a ranks above b (higher is better, a missing value lowest), -1 below, 0 equal. */
    int an = isnan(a), bn = isnan(b);
    if (an || bn)
        return an == bn ? 0 : (an ? -1 : 1);
    return a > b ? 1 : a < b ? -1 : 0;
}

int gyre_curate_better(const run_t *r, const rec_t *a, const rec_t *b)
{
    int c;
    if (r->spec->dedup_keep_ref != NULL) {
        if ((c = cmp_nan_high(a->keep, b->keep)) != 0)
            return c > 0;
    } else {
        if (r->spec->use_corrections && (a->flags & F_CORR) != (b->flags & F_CORR))
            return (a->flags & F_CORR) != 0;
        if ((c = cmp_nan_high(a->quality, b->quality)) != 0)
            return c > 0;
        if (a->length != b->length)
            return a->length > b->length;
    }
    if (a->started_us != b->started_us)
        return a->started_us < b->started_us;
    return strcmp(a->trace_id, b->trace_id) < 0;
}

/* ---- Selection. ---- */

/* A candidate for selection, carrying what its order needs (qsort's comparators take no context, and two
 * curations may run at once on two threads). */
typedef struct cand {
    uint32_t idx;
    int32_t cluster;
    uint64_t key;         /* the selection's order: ascending */
    const char *trace_id; /* the tie-break */
} cand_t;

static int cand_cmp_cb(const void *x, const void *y)
{
    const cand_t *a = x, *b = y;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return strcmp(a->trace_id, b->trace_id);
}

static int cand_cluster_cmp_cb(const void *x, const void *y)
{
    const cand_t *a = x, *b = y;
    int32_t ca = a->cluster, cb = b->cluster;
    if (ca != cb)
        return ca < cb ? -1 : 1;
    return cand_cmp_cb(x, y);
}

/* ---- The result. ---- */

static int item_cmp_cb(const void *x, const void *y)
{
    const gyre_curate_item_t *a = x, *b = y;
    if (a->role != b->role)
        return a->role < b->role ? -1 : 1;
    int c = strcmp(a->trace_id, b->trace_id);
    return c != 0 ? c : strcmp(a->rejected_id, b->rejected_id);
}

static int dup_cmp_cb(const void *x, const void *y)
{
    return strcmp(((const gyre_curate_dup_group_t *)x)->kept, ((const gyre_curate_dup_group_t *)y)->kept);
}

static int id_cmp_cb(const void *x, const void *y)
{
    return strcmp((const char *)x, (const char *)y);
}

int gyre_curate_i32_cmp_cb(const void *x, const void *y)
{
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    return (a > b) - (a < b);
}

void gyre_curate_add_item(gyre_curation_t *c, size_t *cap, const run_t *r, const rec_t *rc, gyre_curate_role_t role,
                          const rec_t *rejected, int use_correction, gyre_curate_split_t split)
{
    if (c->nitems == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        c->items = gyre_realloc(c->items, *cap * sizeof(*c->items));
    }
    gyre_curate_item_t *it = &c->items[c->nitems++];
    memset(it, 0, sizeof(*it));
    memcpy(it->trace_id, rc->trace_id, 33);
    if (rejected != NULL)
        memcpy(it->rejected_id, rejected->trace_id, 33);
    it->session = gyre_strdup(rc->session ? r->sessions.strs[rc->session - 1] : "");
    it->cluster = rc->cluster;
    it->split = split;
    it->role = role;
    it->use_correction = use_correction;
}

/* The cluster names of a stored run ({"clusters":[{"id":..,"name":..}]}), into names[id] for ids < n. */
static void stored_names(gyre_store_t *s, char **names, size_t n)
{
    gyre_buf_t b;
    char err[256];
    gyre_buf_init(&b, (size_t)64 << 20);
    if (gyre_store_get_cluster_run(s, &b, err, sizeof(err)) == 0) {
        cJSON *j = cJSON_Parse(b.base);
        const cJSON *cl;
        cJSON_ArrayForEach(cl, cJSON_GetObjectItemCaseSensitive(j, "clusters"))
        {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(cl, "id");
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(cl, "name");
            if (cJSON_IsNumber(id) && cJSON_IsString(name) && id->valuedouble >= 0 && id->valuedouble < (double)n)
                names[(size_t)id->valuedouble] = gyre_strdup(name->valuestring);
        }
        cJSON_Delete(j);
    }
    gyre_buf_dispose(&b);
}

int gyre_curate_run(gyre_store_t *s, const gyre_curate_spec_t *spec, const gyre_curate_hooks_t *hooks,
                    gyre_curation_t **out, char *err, size_t errlen)
{
    *out = NULL;
    run_t r;
    memset(&r, 0, sizeof(r));
    r.spec = spec;
    r.hooks = hooks;
    r.err = err;
    r.errlen = errlen;
    r.sign = spec->dedup || spec->contrast_ref != NULL;
    clock_gettime(CLOCK_MONOTONIC, &r.last_progress);
    int rc = 0;
    gyre_curation_t *c = gyre_calloc(1, sizeof(*c));
    char **cnames = NULL;
    size_t ncnames = 0;
    uint32_t *group = NULL;
    uint64_t *best = NULL;
    uint8_t *side = NULL;

    if (spec->clustering == GYRE_CURATE_CLUSTERS_STORED) {
        gyre_buf_t b;
        gyre_buf_init(&b, (size_t)64 << 20);
        rc = gyre_store_get_cluster_run(s, &b, err, errlen);
        gyre_buf_dispose(&b);
        if (rc == -ENOENT) {
            snprintf(err, errlen,
                     "clusters: stored: the store has no clustering run (run `gyre clusters` first, "
                     "or use clusters: auto)");
            rc = -EINVAL;
        }
        if (rc != 0)
            goto out;
    } else {
        gyre_cluster_opts_t o;
        memset(&o, 0, sizeof(o));
        o.k = spec->k;
        o.seed = (unsigned)(spec->seed % 0xffffffffu) + 1;
        r.clusterer = gyre_clusterer_new(&o);
    }

    /* 1. The scan. */
    double t0 = now_s(), c0 = cpu_s();
    int64_t total = gyre_store_count(s);
    r.progress_total = total > 0 ? (uint64_t)total : 0;
    gyre_corpus_query_t q;
    memset(&q, 0, sizeof(q));
    q.q.from_us = spec->from_us;
    q.q.to_us = spec->to_us;
    if (spec->nroutes == 1)
        q.q.route = spec->routes[0];
    if (spec->nagents == 1)
        q.q.agent = spec->agents[0];
    if (spec->ntags == 1)
        q.q.tag = spec->tags[0];
    q.with_scores = 1;
    q.ok_only = 1; /* an example needs an answer: an error or an empty reply teaches nothing */
    gyre_corpus_counts_t counts;
    if (r.sign || r.clusterer != NULL)
        r.feat = gyre_curate_feat_start(&r);
    rc = gyre_corpus_scan_counted(s, &q, scan_cb, &r, &counts, err, errlen);
    if (r.feat != NULL) {
        int frc = gyre_curate_feat_finish(r.feat);
        if (rc == 0 || r.err_rc != 0)
            rc = frc != 0 ? frc : rc;
    }
    if (rc != 0) {
        if (r.err_rc == 0 && err[0] == '\0')
            snprintf(err, errlen, "scan: %s", strerror(-rc));
        goto out;
    }
    c->scanned = counts.examples;
    c->skipped = counts.skipped;
    double scan_s = now_s() - t0, scan_cpu_s = cpu_s() - c0;
    /* Signing and the clusterer's features ran beside the scan (curate_feat.c): their wall time overlaps the
     * scan's and their CPU time is the worker's (taken out of the scan's when they ran inline). */
    double feat_s = r.sign_s + r.cluster_add_s, feat_cpu_s = r.sign_cpu_s + r.cluster_add_cpu_s;
    c->phase_ms[GYRE_CURATE_PHASE_FEATURISE] = feat_s * 1000;
    c->phase_ms[GYRE_CURATE_PHASE_SCAN] = (scan_s - (r.feat_inline ? feat_s : 0)) * 1000;
    c->phase_cpu_ms[GYRE_CURATE_PHASE_FEATURISE] = feat_cpu_s * 1000;
    c->phase_cpu_ms[GYRE_CURATE_PHASE_SCAN] = (scan_cpu_s - (r.feat_inline ? feat_cpu_s : 0)) * 1000;
    c->sign_cpu_ms = r.sign_cpu_s * 1000;
    progress(&r, GYRE_CURATE_PHASE_SCAN, r.n, r.n, 1);

    /* `unit: session`: only a session's last call (by started_us, then trace id; the scan is oldest first). */
    if (spec->unit == GYRE_CURATE_UNIT_SESSION && r.sessions.n > 0) {
        uint32_t *last = gyre_malloc(r.sessions.n * sizeof(*last));
        for (size_t i = 0; i < r.sessions.n; i++)
            last[i] = UINT32_MAX;
        for (size_t i = 0; i < r.n; i++) {
            rec_t *x = &r.recs[i];
            if (x->session == 0)
                continue;
            uint32_t *l = &last[x->session - 1];
            if (*l == UINT32_MAX || x->started_us > r.recs[*l].started_us ||
                (x->started_us == r.recs[*l].started_us && strcmp(x->trace_id, r.recs[*l].trace_id) > 0))
                *l = (uint32_t)i;
        }
        for (size_t i = 0; i < r.n; i++)
            if (r.recs[i].session != 0 && last[r.recs[i].session - 1] != i)
                r.recs[i].flags &= (uint8_t)~F_IN;
        free(last);
    }

    /* 2. Clusters. */
    t0 = now_s();
    c0 = cpu_s();
    if (r.clusterer != NULL && r.n > 0) {
        gyre_cluster_result_t *res = NULL;
        rc = gyre_clusterer_finish(r.clusterer, &res, err, errlen);
        if (rc != 0) {
            char inner[256];
            snprintf(inner, sizeof(inner), "%s", err);
            snprintf(err, errlen, "clustering: %s", inner);
            goto out;
        }
        for (size_t i = 0; i < r.n && i < res->n; i++)
            r.recs[i].cluster = res->cluster[i];
        ncnames = res->nleaves;
        cnames = gyre_calloc(ncnames ? ncnames : 1, sizeof(*cnames));
        for (size_t i = 0; i < res->nclusters; i++) {
            const gyre_cluster_info_t *ci = &res->clusters[i];
            if (ci->level == 0 && ci->id >= 0 && (size_t)ci->id < ncnames && ci->shown && ci->name != NULL)
                cnames[ci->id] = gyre_strdup(ci->name);
        }
        gyre_cluster_result_free(res);
    } else if (spec->clustering == GYRE_CURATE_CLUSTERS_STORED) {
        int32_t maxc = -1;
        for (size_t i = 0; i < r.n; i++)
            if (r.recs[i].cluster > maxc)
                maxc = r.recs[i].cluster;
        ncnames = maxc >= 0 && maxc < 1000000 ? (size_t)maxc + 1 : 0;
        cnames = gyre_calloc(ncnames ? ncnames : 1, sizeof(*cnames));
        stored_names(s, cnames, ncnames);
    }
    if (spec->clusters != NULL)
        for (size_t i = 0; i < r.n; i++)
            if (spec->nclusters == 0 || bsearch(&r.recs[i].cluster, spec->clusters, spec->nclusters, sizeof(int32_t),
                                                gyre_curate_i32_cmp_cb) == NULL)
                r.recs[i].flags &= (uint8_t)~F_IN;
    c->phase_ms[GYRE_CURATE_PHASE_CLUSTER] = (now_s() - t0) * 1000;
    c->phase_cpu_ms[GYRE_CURATE_PHASE_CLUSTER] = (cpu_s() - c0) * 1000;
    progress(&r, GYRE_CURATE_PHASE_CLUSTER, r.n, r.n, 1);

    /* 3. Near-duplicates among the source's examples; in each group the best that passed is kept. */
    t0 = now_s();
    c0 = cpu_s();
    group = gyre_malloc((r.n ? r.n : 1) * sizeof(*group));
    for (size_t i = 0; i < r.n; i++)
        group[i] = (uint32_t)i;
    if (r.sign && r.n > 1) {
        uint8_t *include = gyre_malloc(r.n);
        uint32_t *sess = gyre_malloc(r.n * sizeof(*sess));
        for (size_t i = 0; i < r.n; i++) {
            include[i] = (r.recs[i].flags & F_IN) != 0;
            sess[i] = r.recs[i].session;
        }
        c->pairs_compared = gyre_minhash_group(r.sigs, r.n, include, sess, spec->dedup_threshold, group);
        free(include);
        free(sess);
    }
    best = gyre_malloc((r.n ? r.n : 1) * sizeof(*best));
    for (size_t i = 0; i < r.n; i++)
        best[i] = UINT64_MAX;
    for (size_t i = 0; i < r.n; i++) {
        const rec_t *x = &r.recs[i];
        if ((x->flags & (F_IN | F_PASSED)) != (F_IN | F_PASSED))
            continue;
        uint64_t *b = &best[group[i]];
        if (*b == UINT64_MAX || gyre_curate_better(&r, x, &r.recs[*b]))
            *b = i;
    }
    if (spec->dedup) {
        /* The groups, for the manifest and the bench's precision and recall. */
        size_t *ndrop = gyre_calloc(r.n ? r.n : 1, sizeof(*ndrop));
        for (size_t i = 0; i < r.n; i++) {
            rec_t *x = &r.recs[i];
            if ((x->flags & (F_IN | F_PASSED)) == (F_IN | F_PASSED) && best[group[i]] != i) {
                x->flags |= F_DROPPED;
                ndrop[group[i]]++;
            }
        }
        size_t *slot = gyre_malloc((r.n ? r.n : 1) * sizeof(*slot)), ngroups = 0;
        for (size_t g = 0; g < r.n; g++)
            ngroups += ndrop[g] > 0;
        c->dups = gyre_calloc(ngroups ? ngroups : 1, sizeof(*c->dups));
        for (size_t g = 0; g < r.n; g++)
            if (ndrop[g] > 0) {
                gyre_curate_dup_group_t *d = &c->dups[c->ndups];
                memcpy(d->kept, r.recs[best[g]].trace_id, 33);
                d->dropped = gyre_malloc(ndrop[g] * sizeof(*d->dropped));
                d->ndropped = 0;
                slot[g] = c->ndups++;
            }
        for (size_t i = 0; i < r.n; i++)
            if (r.recs[i].flags & F_DROPPED) {
                gyre_curate_dup_group_t *d = &c->dups[slot[group[i]]];
                memcpy(d->dropped[d->ndropped++], r.recs[i].trace_id, 33);
            }
        for (size_t i = 0; i < c->ndups; i++)
            qsort(c->dups[i].dropped, c->dups[i].ndropped, 33, id_cmp_cb);
        if (c->ndups > 1)
            qsort(c->dups, c->ndups, sizeof(*c->dups), dup_cmp_cb);
        free(slot);
        free(ndrop);
    }
    c->phase_ms[GYRE_CURATE_PHASE_DEDUP] = (now_s() - t0) * 1000;
    c->phase_cpu_ms[GYRE_CURATE_PHASE_DEDUP] = (cpu_s() - c0) * 1000;
    progress(&r, GYRE_CURATE_PHASE_DEDUP, r.n, r.n, 1);

    /* 4. Selection, with balance. */
    t0 = now_s();
    c0 = cpu_s();
    size_t ncand = 0;
    cand_t *cand = gyre_malloc((r.n ? r.n : 1) * sizeof(*cand));
    for (size_t i = 0; i < r.n; i++) {
        const rec_t *x = &r.recs[i];
        if ((x->flags & (F_IN | F_PASSED | F_DROPPED)) != (F_IN | F_PASSED))
            continue;
        uint64_t key = spec->selection == GYRE_CURATE_SELECT_LONGEST_N
                           ? (uint64_t)(UINT32_MAX - x->length)
                           : gyre_curate_seeded_rank(spec->seed, x->trace_id);
        cand[ncand++] = (cand_t){(uint32_t)i, x->cluster, key, x->trace_id};
    }
    uint64_t target = spec->target_size;
    if (spec->selection == GYRE_CURATE_SELECT_LONGEST_N && (target == 0 || spec->longest_n < target))
        target = spec->longest_n;
    if (spec->cap == 0 && spec->floor == 0) {
        if (ncand > 1)
            qsort(cand, ncand, sizeof(*cand), cand_cmp_cb);
        size_t take = target != 0 && target < ncand ? (size_t)target : ncand;
        for (size_t i = 0; i < take; i++)
            r.recs[cand[i].idx].flags |= F_SELECTED;
    } else {
        if (ncand > 1)
            qsort(cand, ncand, sizeof(*cand), cand_cluster_cmp_cb);
        size_t k = 0;
        for (size_t i = 0; i < ncand; i++)
            if (i == 0 || r.recs[cand[i].idx].cluster != r.recs[cand[i - 1].idx].cluster)
                k++;
        uint64_t *a = gyre_calloc(k ? k : 1, sizeof(uint64_t)), *lo = gyre_calloc(k ? k : 1, sizeof(uint64_t));
        uint64_t *hi = gyre_calloc(k ? k : 1, sizeof(uint64_t)), *alloc = gyre_calloc(k ? k : 1, sizeof(uint64_t));
        size_t *start = gyre_calloc(k ? k : 1, sizeof(size_t));
        for (size_t i = 0, ci = (size_t)-1; i < ncand; i++) {
            if (i == 0 || r.recs[cand[i].idx].cluster != r.recs[cand[i - 1].idx].cluster)
                start[++ci] = i;
            a[ci]++;
        }
        uint64_t sum_hi = 0;
        for (size_t ci = 0; ci < k; ci++) {
            hi[ci] = spec->cap != 0 && spec->cap < a[ci] ? spec->cap : a[ci];
            lo[ci] = spec->floor < hi[ci] ? spec->floor : hi[ci];
            sum_hi += hi[ci];
        }
        gyre_curate_allocate(a, lo, hi, k, target != 0 ? target : sum_hi, alloc);
        for (size_t ci = 0; ci < k; ci++)
            for (size_t j = 0; j < alloc[ci]; j++)
                r.recs[cand[start[ci] + j].idx].flags |= F_SELECTED;
        free(a);
        free(lo);
        free(hi);
        free(alloc);
        free(start);
    }
    free(cand);

    /* 5. The held-out split: whole sessions, stratified by cluster (curate.h). */
    side = gyre_calloc(r.sessions.n + 1, 1); /* per session: 0 none selected, 1 train, 2 held out */
    if (spec->heldout > 0)
        gyre_curate_split_heldout(&r, side);

    /* 6. The items: SFT examples, then preference pairs. */
    size_t cap = 0;
    for (size_t i = 0; i < r.n; i++)
        if (r.recs[i].flags & F_SELECTED)
            gyre_curate_add_item(c, &cap, &r, &r.recs[i], GYRE_CURATE_SFT, NULL,
                                 spec->use_corrections && (r.recs[i].flags & F_CORR),
                                 (r.recs[i].flags & F_HELDOUT) ? GYRE_CURATE_HELDOUT : GYRE_CURATE_TRAIN);
    c->nsft = c->nitems;
    if (spec->formats & GYRE_CURATE_FORMAT_PREFERENCE) {
        for (size_t i = 0; i < r.n; i++)
            if ((r.recs[i].flags & (F_IN | F_CORR)) == (F_IN | F_CORR))
                gyre_curate_add_item(c, &cap, &r, &r.recs[i], GYRE_CURATE_PREFERENCE, NULL, 1,
                                     gyre_curate_pair_split(&r, side, &r.recs[i]));
        if (spec->contrast_ref != NULL)
            gyre_curate_contrast_pairs(&r, group, side, c, &cap);
    }
    c->npairs = c->nitems - c->nsft;
    if (c->nitems > 1)
        qsort(c->items, c->nitems, sizeof(*c->items), item_cmp_cb);

    if (hooks != NULL && hooks->decision_cb != NULL)
        for (size_t i = 0; i < r.n; i++) {
            const rec_t *x = &r.recs[i];
            if (!(x->flags & F_IN))
                continue;
            gyre_curate_decision_t d = {x->trace_id,
                                        x->cluster,
                                        (x->flags & F_DROPPED) ? r.recs[best[group[i]]].trace_id : NULL,
                                        (x->flags & F_PASSED) != 0,
                                        (x->flags & F_SELECTED) != 0,
                                        (x->flags & F_HELDOUT) ? GYRE_CURATE_HELDOUT : GYRE_CURATE_TRAIN};
            hooks->decision_cb(hooks->decision_ctx, &d);
        }

    /* Counts per cluster, totals and the score distributions of the selected. */
    gyre_curate_count_clusters(&r, c, cnames, ncnames);
    gyre_curate_score_distributions(&r, c);
    c->spec_canonical = gyre_strdup(spec->canonical != NULL ? spec->canonical : "");
    c->phase_ms[GYRE_CURATE_PHASE_SELECT] = (now_s() - t0) * 1000;
    c->phase_cpu_ms[GYRE_CURATE_PHASE_SELECT] = (cpu_s() - c0) * 1000;
    progress(&r, GYRE_CURATE_PHASE_SELECT, r.n, r.n, 1);

out:
    free(group);
    free(best);
    free(side);
    for (size_t i = 0; i < ncnames; i++)
        free(cnames[i]);
    free(cnames);
    gyre_clusterer_free(r.clusterer);
    interner_free(&r.sessions);
    interner_free(&r.keys);
    gyre_curate_feat_free(r.feat);
    free(r.recs);
    free(r.sigs);
    free(r.scores);
    if (rc != 0) {
        gyre_curation_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void gyre_curation_free(gyre_curation_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nitems; i++)
        free(c->items[i].session);
    free(c->items);
    for (size_t i = 0; i < c->nclusters; i++)
        free(c->clusters[i].name);
    free(c->clusters);
    for (size_t i = 0; i < c->nscores; i++)
        free(c->scores[i].name);
    free(c->scores);
    for (size_t i = 0; i < c->ndups; i++)
        free(c->dups[i].dropped);
    free(c->dups);
    free(c->spec_canonical);
    free(c);
}
