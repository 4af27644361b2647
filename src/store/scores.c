/*
 * Scores, feedback, clustering runs and the corpus scan (store.h, issue 14).
 * PLACEHOLDER of the lead's contract commit: the store helper replaces every
 * function here with the backends' implementation (ops in the table).
 */
#include <errno.h>
#include <stdio.h>

#include "store/store.h"

static int not_yet(char *err, size_t errlen)
{
    snprintf(err, errlen, "not built yet");
    return -ENOSYS;
}

int gyre_store_write_scores(gyre_store_t *s, const gyre_score_t *scores, size_t n, char *err, size_t errlen)
{
    (void)s, (void)scores, (void)n;
    return not_yet(err, errlen);
}

int gyre_store_trace_scores(gyre_store_t *s, const char *trace_id, gyre_score_cb cb, void *ctx, char *err,
                            size_t errlen)
{
    (void)s, (void)trace_id, (void)cb, (void)ctx;
    return not_yet(err, errlen);
}

int gyre_store_scan_scores(gyre_store_t *s, int64_t from_us, int64_t to_us, const char *name, gyre_score_cb cb,
                           void *ctx, char *err, size_t errlen)
{
    (void)s, (void)from_us, (void)to_us, (void)name, (void)cb, (void)ctx;
    return not_yet(err, errlen);
}

int gyre_store_put_cluster_run(gyre_store_t *s, const char *run_id, int64_t created_us, const char *json,
                               size_t json_len, const gyre_cluster_assign_t *assign, size_t n, char *err,
                               size_t errlen)
{
    (void)s, (void)run_id, (void)created_us, (void)json, (void)json_len, (void)assign, (void)n;
    return not_yet(err, errlen);
}

int gyre_store_get_cluster_run(gyre_store_t *s, gyre_buf_t *out, char *err, size_t errlen)
{
    (void)s, (void)out;
    return not_yet(err, errlen);
}

int gyre_store_scan_bodies(gyre_store_t *s, const gyre_trace_query_t *q, gyre_store_row_cb cb, void *ctx, char *err,
                           size_t errlen)
{
    (void)s, (void)q, (void)cb, (void)ctx;
    return not_yet(err, errlen);
}
