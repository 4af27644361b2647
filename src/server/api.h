/*
 * The trace query API: read-only HTTP endpoints over the trace
 * store.
 *
 *   GET /api/traces?from=&to=&route=&provider=&model=&agent=&session=
 *                   &user=&tag=&status=&errors=&min_latency_ms=&q=&cursor=&limit=&otel_trace_id=
 *       a page of trace summaries, newest first (the store's page JSON)
 *   GET /api/stats?from=&to=&route=&provider=&model=&agent=&user=&group_by=&bucket=
 *       counts, percentiles, tokens and cost (the store's stats JSON; docs/api.md)
 *   GET /api/traces/{id}     one trace, or 404 trace_not_found
 *   GET /api/sessions/{id}   a session's calls, oldest first, or 404 session_not_found
 *
 * Errors are in gyre's (OpenAI's) JSON error shape and name the offending
 * parameter.  The query-string parser is public so that it can be tested
 * without a server.
 */
#ifndef GYRE_SERVER_API_H
#define GYRE_SERVER_API_H

#include <h2o.h>
#include <stddef.h>
#include <stdint.h>

#include "dialect/openai.h"
#include "server/server.h"
#include "store/store.h"

/* The longest query string /api/traces reads (it bounds the decoded strings below; longer is a 400). */
#define GYRE_API_QUERY_MAX 4096

/* A parsed /api/traces query: `q`'s strings point into `strings`, so the two live and die together. */
typedef struct gyre_api_query {
    gyre_trace_query_t q;
    char strings[GYRE_API_QUERY_MAX + 1];
} gyre_api_query_t;

/* A parsed /api/stats query, the same way. */
typedef struct gyre_api_stats_query {
    gyre_stats_query_t q;
    char strings[GYRE_API_QUERY_MAX + 1];
} gyre_api_stats_query_t;

/*
 * Answers the request when its path is /api or under /api/ and returns 1;
 * returns 0 (leaving the request alone) for every other path.
 */
int gyre_api_handle(gyre_worker_t *w, h2o_req_t *req);

/* /api/datasets (server/api_datasets.c): GET the list, a manifest or a file; POST a curation spec.  1 when
 * `path` is under it (answered), else 0. */
int gyre_api_datasets_handle(gyre_worker_t *w, h2o_req_t *req, h2o_iovec_t path);
/* /api/loop/runs (server/api_loop.c): the loop's runs; 1 when `path` is under it (answered), else 0. */
int gyre_api_loop_handle(gyre_worker_t *w, h2o_req_t *req, h2o_iovec_t path);
/*
 * Store work of another endpoint (POST /v1/feedback) run the way /api's
 * queries are: on the API's reader threads, each with its own store handle,
 * never on a worker's event loop, answered back on the worker's loop.
 * `run` runs on a reader thread with the reader's handle (the store's
 * failure to open is answered 503 without calling it); `respond` on the
 * worker's loop, only when the client is still there; `dispose` always,
 * last, on the worker's loop.  At the readers' queue bound the request is
 * answered 503 store_busy (and disposed).  The caller checked that the
 * config has a store.
 */
typedef struct gyre_api_work gyre_api_work_t;
struct gyre_api_work {
    void (*run)(gyre_api_work_t *work, gyre_store_t *store);
    void (*respond)(gyre_api_work_t *work, h2o_req_t *req);
    void (*dispose)(gyre_api_work_t *work);
};
void gyre_api_submit_work(gyre_worker_t *w, h2o_req_t *req, gyre_api_work_t *work);

/* /api/deploy (server/api_deploy.c): deployments' status, begin, promote, rollback.  1 when `path` is under it. */
int gyre_api_deploy_handle(gyre_worker_t *w, h2o_req_t *req, h2o_iovec_t path);

/* GET /api/alerts (server/api_alerts.c): 1 when `path` is it (answered), else 0. */
int gyre_api_alerts_handle(gyre_worker_t *w, h2o_req_t *req, h2o_iovec_t path);

/*
 * One trace as the API answers it (GET /api/traces/ID), read through the worker thread's read handle, for
 * gyre's own use (previous_response_id).  `trace_id` is 32 lowercase hex digits.  0, -ENOENT when the store
 * has no such trace, -ENOTSUP when no store is configured, or another negative errno with `err` filled.
 */
int gyre_api_read_trace(const gyre_config_t *config, const char *trace_id, gyre_buf_t *out, char *err, size_t errlen);

/*
 * GET /api/audit?since=&until=&action=&actor=&limit=&cursor= (src/server/api_audit.c): a page of the audit log,
 * newest first (control/audit.h).  Answers and returns 1 for that path, 0 for any other.
 */
int gyre_api_audit_handle(gyre_worker_t *w, h2o_req_t *req);

/*
 * The query-string reader every /api endpoint shares: splits `qs`, URL-decodes the values into `strings`
 * (GYRE_API_QUERY_MAX + 1 bytes; the values point into it), refuses unknown (not among the `count` `names`;
 * `list` is what the error offers) and repeated names, skips empty values, and hands each other value to `set`
 * with its index in `names`.  0, or -1 with `err` filled as a 400 naming the parameter.
 */
int gyre_api_parse_params(const char *qs, size_t len, const char *const *names, int count, const char *list,
                          int (*set)(void *ctx, int which, const char *v, gyre_api_error_t *err), void *ctx,
                          char *strings, gyre_api_error_t *err);

/*
 * Parses a query string (the bytes after '?', `len` of them; NULL or empty
 * for none) into `out`.  Values are URL-decoded (%XX and '+'); an empty
 * value is the same as the parameter not given.  Returns 0, or -1 with
 * `err` filled as a 400 naming the parameter.
 */
int gyre_api_parse_traces_query(const char *qs, size_t len, gyre_api_query_t *out, gyre_api_error_t *err);

/*
 * The same for /api/stats: from, to, route, provider, model, agent, user,
 * group_by (a comma list of route, provider, model, agent, user) and
 * bucket (1m, 5m, 15m, 1h or 1d).
 */
int gyre_api_parse_stats_query(const char *qs, size_t len, gyre_api_stats_query_t *out, gyre_api_error_t *err);

#endif
