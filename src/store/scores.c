/*
 * Scores, feedback, clustering runs and the corpus scan (store.h, issue 14):
 * the shared wrappers over the backend's table.  What is shared beyond
 * dispatch is the corpus scan's body expansion: a backend hands its bodies
 * as it keeps them (zstd frames in the index, or a reference into the
 * trace log) and this file turns them into the raw bytes the loop reads,
 * through the same zstd context and log reader the API's rendering uses.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "store/backend.h"

int gyre_store_write_scores(gyre_store_t *s, const gyre_score_t *scores, size_t n, char *err, size_t errlen)
{
    return s->ops->write_scores(s, scores, n, err, errlen);
}

int gyre_store_trace_scores(gyre_store_t *s, const char *trace_id, gyre_score_cb cb, void *ctx, char *err,
                            size_t errlen)
{
    return s->ops->trace_scores(s, trace_id, cb, ctx, err, errlen);
}

int gyre_store_scan_scores(gyre_store_t *s, int64_t from_us, int64_t to_us, const char *name, gyre_score_cb cb,
                           void *ctx, char *err, size_t errlen)
{
    return s->ops->scan_scores(s, from_us, to_us, name, cb, ctx, err, errlen);
}

int gyre_store_put_cluster_run(gyre_store_t *s, const char *run_id, int64_t created_us, const char *json,
                               size_t json_len, const gyre_cluster_assign_t *assign, size_t n, char *err,
                               size_t errlen)
{
    if (run_id == NULL || run_id[0] == '\0' || strlen(run_id) > 63) {
        gyre_store_set_err(err, errlen, "store: a clustering run's id must be 1 to 63 bytes");
        return -EINVAL;
    }
    return s->ops->put_cluster_run(s, run_id, created_us, json, json_len, assign, n, err, errlen);
}

int gyre_store_get_cluster_run(gyre_store_t *s, gyre_buf_t *out, char *err, size_t errlen)
{
    return s->ops->get_cluster_run(s, out, err, errlen);
}

int gyre_store_trace_cluster(gyre_store_t *s, const char *trace_id, int32_t *cluster, char *run_id, size_t run_len,
                             char *err, size_t errlen)
{
    *cluster = -1;
    if (run_len > 0)
        run_id[0] = '\0';
    return s->ops->trace_cluster(s, trace_id, cluster, run_id, run_len, err, errlen);
}

typedef struct expand_ctx {
    gyre_store_t *s;
    gyre_store_row_cb cb;
    void *ctx;
} expand_ctx_t;

/* One stored zstd body into `into`; a frame that does not expand reads as not kept (the corpus counts the row
 * as one it cannot read, rather than one bad frame stopping a scan of a million). */
static gyre_store_body_t expand(gyre_store_t *s, const gyre_store_body_t *b, gyre_buf_t *into)
{
    if (b->p == NULL)
        return (gyre_store_body_t){NULL, 0};
    gyre_buf_reset(into);
    if (gyre_zstd_decompress(s->zstd, into, b->p, b->len) != 0)
        return (gyre_store_body_t){NULL, 0};
    return (gyre_store_body_t){into->base != NULL ? into->base : "", into->len};
}

static int expand_cb(void *arg, const gyre_store_row_t *row)
{
    expand_ctx_t *c = arg;
    gyre_store_t *s = c->s;
    gyre_store_row_t raw = *row;
    if (row->ref.segment != 0) {
        int has_req = 0, has_resp = 0;
        char err[256];
        raw.request_body = raw.response_body = (gyre_store_body_t){NULL, 0};
        gyre_buf_reset(&s->logreq);
        gyre_buf_reset(&s->logresp);
        /* A segment gone (retention racing the scan) or unreadable: the row is handed without bodies. */
        if (s->body_reader != NULL && s->body_reader(s->body_reader_ctx, &row->ref, &s->logreq, &has_req, &s->logresp,
                                                     &has_resp, err, sizeof(err)) == 0) {
            if (has_req)
                raw.request_body = (gyre_store_body_t){s->logreq.base != NULL ? s->logreq.base : "", s->logreq.len};
            if (has_resp)
                raw.response_body =
                    (gyre_store_body_t){s->logresp.base != NULL ? s->logresp.base : "", s->logresp.len};
        }
    } else {
        raw.request_body = expand(s, &row->request_body, &s->logreq);
        raw.response_body = expand(s, &row->response_body, &s->logresp);
    }
    raw.ref = (gyre_store_body_ref_t){0, 0, 0};
    return c->cb(c->ctx, &raw);
}

int gyre_store_scan_bodies(gyre_store_t *s, const gyre_trace_query_t *q, gyre_store_row_cb cb, void *ctx, char *err,
                           size_t errlen)
{
    expand_ctx_t c = {s, cb, ctx};
    if (q->text != NULL && strlen(q->text) > GYRE_STORE_TEXT_MAX) {
        gyre_store_set_err(err, errlen, "text: longer than %d bytes", GYRE_STORE_TEXT_MAX);
        return -EINVAL;
    }
    return s->ops->scan_bodies(s, q, expand_cb, &c, err, errlen);
}

/* One row of find_trace: its cluster read (find_trace does not join the clustering), then expanded. */
static int find_cb(void *arg, const gyre_store_row_t *row)
{
    expand_ctx_t *c = arg;
    gyre_store_row_t r = *row;
    char id[33], run[64], err[256];
    snprintf(id, sizeof(id), "%.*s", (int)(row->trace_id.len < 32 ? row->trace_id.len : 32), row->trace_id.p);
    if (gyre_store_trace_cluster(c->s, id, &r.cluster, run, sizeof(run), err, sizeof(err)) != 0)
        r.cluster = -1;
    return expand_cb(c, &r);
}

int gyre_store_find_row(gyre_store_t *s, const char *trace_id, gyre_store_row_cb cb, void *ctx, char *err,
                        size_t errlen)
{
    expand_ctx_t c = {s, cb, ctx};
    return s->ops->find_trace(s, trace_id, find_cb, &c, err, errlen);
}
