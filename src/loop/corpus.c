/*
 * The corpus (corpus.h), its second half: the scan over the store with
 * each example's newest scores, correction and cluster attached, and one
 * example fetched by id.  Each row becomes an example through
 * gyre_corpus_example_from_row (corpus_example.c).
 *
 * The scores of a scan's range are read once, before the rows, into one
 * array (strings in one pool) in the store's (trace_started_us, trace_id,
 * created_us) order, which is the rows' order too: a cursor walks the two
 * together, so attaching costs no query per row.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop/corpus.h"

/* The scratch an example is built in by the scan and by fetch (corpus_example.c's bound on one example). */
#define CORPUS_SCRATCH_MAX ((size_t)160 << 20)
#define NOPE ((size_t)-1)

/* ---- Scores on the examples. ---- */

/* One stored score, its strings in the pool. */
typedef struct kept_score {
    size_t trace_off, session_off, name_off, version_off, label_off, correction_off; /* NOPE: NULL */
    int source;
    double value;
    int64_t created_us, started_us;
} kept_score_t;

typedef struct score_list {
    kept_score_t *v;
    size_t n, cap;
    gyre_buf_t pool;
    int r;
} score_list_t;

static size_t pool_str(score_list_t *l, const char *s)
{
    if (s == NULL)
        return NOPE;
    size_t off = l->pool.len;
    if (l->r == 0)
        l->r = gyre_buf_append(&l->pool, s, strlen(s) + 1);
    return off;
}

static int keep_score_cb(void *ctx, const gyre_score_t *sc)
{
    score_list_t *l = ctx;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        kept_score_t *v = realloc(l->v, l->cap * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        l->v = v;
    }
    kept_score_t *k = &l->v[l->n++];
    k->trace_off = pool_str(l, sc->trace_id);
    k->session_off = pool_str(l, sc->session);
    k->name_off = pool_str(l, sc->name);
    k->version_off = pool_str(l, sc->version != NULL ? sc->version : "");
    k->label_off = pool_str(l, sc->label);
    /* Only feedback's corrections are demonstrations. */
    k->correction_off = sc->source == GYRE_SCORE_HUMAN ? pool_str(l, sc->correction) : NOPE;
    k->source = sc->source;
    k->value = sc->value;
    k->created_us = sc->created_us;
    k->started_us = sc->trace_started_us;
    return l->r != 0 ? -E2BIG : 0;
}

static const char *pool_at(const score_list_t *l, size_t off)
{
    return off == NOPE ? NULL : l->pool.base + off;
}

/* The newest per name among `cands` (in time order, so a later one with the same name replaces), and the
 * newest correction. */
typedef struct attach {
    gyre_example_score_t *v;
    size_t n, cap;
    const char *correction;
    int64_t correction_us, *created;
} attach_t;

static void attach_one(attach_t *a, const score_list_t *l, const kept_score_t *k)
{
    const char *name = pool_at(l, k->name_off);
    size_t i;
    for (i = 0; i < a->n; i++)
        if (strcmp(a->v[i].name, name) == 0)
            break;
    if (i == a->n) {
        if (a->n == a->cap) {
            a->cap = a->cap ? a->cap * 2 : 16;
            a->v = realloc(a->v, a->cap * sizeof(*a->v));
            a->created = realloc(a->created, a->cap * sizeof(*a->created));
            if (a->v == NULL || a->created == NULL)
                abort(); /* the project's rule: out of memory aborts (common/alloc.h) */
        }
        a->n++;
    } else if (a->created[i] > k->created_us) {
        goto correction;
    }
    a->v[i] = (gyre_example_score_t){name, k->source, pool_at(l, k->version_off), k->value, pool_at(l, k->label_off)};
    a->created[i] = k->created_us;
correction:
    if (k->correction_off != NOPE && (a->correction == NULL || k->created_us >= a->correction_us)) {
        a->correction = pool_at(l, k->correction_off);
        a->correction_us = k->created_us;
    }
}

/* ---- The scan. ---- */

typedef struct scan_ctx {
    const gyre_corpus_query_t *q;
    gyre_example_cb cb;
    void *ctx;
    gyre_buf_t scratch;
    gyre_corpus_counts_t *counts;
    score_list_t *scores; /* NULL: without scores */
    size_t cursor;        /* the first score not yet behind the rows */
    attach_t attach;
} scan_ctx_t;

static int trace_key_cmp(int64_t a_us, const char *a_id, int64_t b_us, const char *b_id)
{
    if (a_us != b_us)
        return a_us < b_us ? -1 : 1;
    return strcmp(a_id, b_id);
}

static void attach_scores(scan_ctx_t *c, gyre_example_t *ex)
{
    score_list_t *l = c->scores;
    attach_t *a = &c->attach;
    a->n = 0;
    a->correction = NULL;
    /* The session's feedback (trace_started_us 0, first in the list), then the trace's own scores: the list
     * and the rows are in the same (started_us, trace_id) order, so a cursor walks them together. */
    if (ex->session != NULL && ex->session[0] != '\0') {
        for (size_t i = 0; i < l->n && l->v[i].started_us == 0; i++) {
            const kept_score_t *k = &l->v[i];
            if (pool_at(l, k->trace_off)[0] == '\0' && strcmp(pool_at(l, k->session_off), ex->session) == 0)
                attach_one(a, l, k);
        }
    }
    while (c->cursor < l->n) {
        const kept_score_t *k = &l->v[c->cursor];
        int cmp = trace_key_cmp(k->started_us, pool_at(l, k->trace_off), ex->started_us, ex->trace_id);
        if (cmp > 0)
            break;
        if (cmp == 0 && pool_at(l, k->trace_off)[0] != '\0')
            attach_one(a, l, k);
        c->cursor++;
    }
    ex->scores = a->v;
    ex->nscores = a->n;
    ex->correction = a->correction;
}

static int scan_row_cb(void *arg, const gyre_store_row_t *row)
{
    scan_ctx_t *c = arg;
    gyre_example_t ex;
    char err[256];
    if (c->counts != NULL)
        c->counts->rows++;
    gyre_buf_reset(&c->scratch);
    int r = gyre_corpus_example_from_row(row, row->request_body.p, row->request_body.len, row->response_body.p,
                                         row->response_body.len, &c->scratch, &ex, err, sizeof(err));
    if (r != 0) {
        if (c->counts != NULL)
            c->counts->skipped++;
        return 0;
    }
    if (c->q->ok_only && (ex.status < 200 || ex.status >= 300 || ex.answer_json == NULL))
        return 0;
    if (c->scores != NULL)
        attach_scores(c, &ex);
    if (c->counts != NULL)
        c->counts->examples++;
    return c->cb(c->ctx, &ex);
}

int gyre_corpus_scan_counted(gyre_store_t *s, const gyre_corpus_query_t *q, gyre_example_cb cb, void *ctx,
                             gyre_corpus_counts_t *counts, char *err, size_t errlen)
{
    scan_ctx_t c = {.q = q, .cb = cb, .ctx = ctx, .counts = counts};
    score_list_t scores = {0};
    int r = 0;
    if (counts != NULL)
        *counts = (gyre_corpus_counts_t){0, 0, 0};
    gyre_buf_init(&c.scratch, CORPUS_SCRATCH_MAX);
    if (q->with_scores) {
        /* Every score of the range, once, in the rows' order (store.h): memory grows with the scores, not with
         * the traces' bodies. */
        gyre_buf_init(&scores.pool, (size_t)1 << 32);
        r = gyre_store_scan_scores(s, q->q.from_us, q->q.to_us, NULL, keep_score_cb, &scores, err, errlen);
        if (r == -E2BIG || r == -ENOMEM)
            snprintf(err, errlen, "the scores of the range do not fit in memory");
        c.scores = &scores;
    }
    if (r == 0)
        r = gyre_store_scan_bodies(s, &q->q, scan_row_cb, &c, err, errlen);
    gyre_buf_dispose(&c.scratch);
    gyre_buf_dispose(&scores.pool);
    free(scores.v);
    free(c.attach.v);
    free(c.attach.created);
    return r;
}

int gyre_corpus_scan(gyre_store_t *s, const gyre_corpus_query_t *q, gyre_example_cb cb, void *ctx, char *err,
                     size_t errlen)
{
    return gyre_corpus_scan_counted(s, q, cb, ctx, NULL, err, errlen);
}

/* ---- One example. ---- */

typedef struct fetch_ctx {
    gyre_store_t *s;
    gyre_example_cb cb;
    void *ctx;
    int found, r;
    char *err;
    size_t errlen;
} fetch_ctx_t;

static int fetch_score_cb(void *ctx, const gyre_score_t *sc)
{
    gyre_score_t one = *sc;
    one.trace_started_us = 1; /* all of one trace: the cursor's order does not matter here */
    return keep_score_cb(ctx, &one);
}

static int fetch_row_cb(void *arg, const gyre_store_row_t *row)
{
    fetch_ctx_t *f = arg;
    gyre_example_t ex;
    gyre_buf_t scratch;
    score_list_t scores = {0};
    attach_t a = {0};
    f->found = 1;
    gyre_buf_init(&scratch, CORPUS_SCRATCH_MAX);
    gyre_buf_init(&scores.pool, (size_t)64 << 20);
    int r = gyre_corpus_example_from_row(row, row->request_body.p, row->request_body.len, row->response_body.p,
                                         row->response_body.len, &scratch, &ex, f->err, f->errlen);
    if (r == 0)
        r = gyre_store_trace_scores(f->s, ex.trace_id, fetch_score_cb, &scores, f->err, f->errlen);
    if (r == 0) {
        for (size_t i = 0; i < scores.n; i++)
            attach_one(&a, &scores, &scores.v[i]);
        ex.scores = a.v;
        ex.nscores = a.n;
        ex.correction = a.correction;
        r = f->cb(f->ctx, &ex);
    }
    gyre_buf_dispose(&scratch);
    gyre_buf_dispose(&scores.pool);
    free(scores.v);
    free(a.v);
    free(a.created);
    return r;
}

int gyre_corpus_fetch(gyre_store_t *s, const char *trace_id, gyre_example_cb cb, void *ctx, char *err, size_t errlen)
{
    fetch_ctx_t f = {s, cb, ctx, 0, 0, err, errlen};
    int r = gyre_store_find_row(s, trace_id, fetch_row_cb, &f, err, errlen);
    if (r == 0 && !f.found) {
        snprintf(err, errlen, "trace %s: not found", trace_id);
        return -ENOENT;
    }
    return r;
}
