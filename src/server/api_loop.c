/*
 * /api/loop/runs (api.h): the loop's runs (loop/looprun.h).
 *
 *   GET  /api/loop/runs?limit=N              {"runs": [run, ...]}, newest first (read token)
 *   GET  /api/loop/runs/{id}                 one run's document (read token)
 *   GET  /api/loop/runs/{id}/report?format=md|json   its gate report (read token)
 *   POST /api/loop/runs                      {"spec": "<the loop spec's YAML>", "path": "/abs/loop.yaml"}: starts a
 *                                            run, 201 with its document (admin token: a run trains, loads
 *                                            adapters and changes a route)
 *   POST /api/loop/runs/{id}/cancel          cancels it (admin token)
 *
 * Each call is a few point reads or writes of the state database under
 * its lock, on the worker that took it, as the admin API's are; a report
 * is read from its file, at most API_LOOP_REPORT_MAX bytes.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <h2o.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "loop/looprun.h"
#include "proxy/respond.h"
#include "server/api.h"

#define API_LOOP_BODY_MAX ((size_t)300 * 1024) /* a spec (256 KB) and its JSON escaping's usual growth */
#define API_LOOP_RUN_MAX ((size_t)4 << 20)
#define API_LOOP_LIST_MAX ((size_t)64 << 20)
#define API_LOOP_REPORT_MAX ((size_t)16 << 20)

static void fail(h2o_req_t *req, int status, const char *code, const char *fmt, const char *msg)
{
    gyre_api_error_t err;
    gyre_api_error_set(&err, status, status >= 500 ? "server_error" : "invalid_request_error", code, NULL, fmt, msg);
    gyre_respond_error(req, &err);
}

static int is_method(h2o_req_t *req, const char *m)
{
    return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

static void wrong_method(h2o_req_t *req, const char *allow)
{
    gyre_api_error_t err;
    gyre_api_error_set(&err, 405, "invalid_request_error", "method_not_allowed", NULL,
                       "%.*s is not allowed here; use %s", (int)(req->method.len < 32 ? req->method.len : 32),
                       req->method.base, allow);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, strlen(allow));
    gyre_respond_error(req, &err);
}

/* `name`=value of the query string, or an empty iovec. */
static h2o_iovec_t query_param(h2o_req_t *req, const char *name)
{
    if (req->query_at == SIZE_MAX)
        return h2o_iovec_init(NULL, 0);
    const char *q = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    size_t nl = strlen(name);
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp != NULL ? amp : end;
        if ((size_t)(stop - q) > nl && memcmp(q, name, nl) == 0 && q[nl] == '=')
            return h2o_iovec_init(q + nl + 1, (size_t)(stop - q - nl - 1));
        q = stop + 1;
    }
    return h2o_iovec_init(NULL, 0);
}

static void submit(gyre_worker_t *w, h2o_req_t *req)
{
    gyre_server_t *s = w->server;
    if (req->entity.len > API_LOOP_BODY_MAX) {
        fail(req, 413, "body_too_large", "a loop run's body is at most %s bytes", "307200");
        return;
    }
    cJSON *body = cJSON_ParseWithLength(req->entity.base != NULL ? req->entity.base : "", req->entity.len);
    const char *spec = cJSON_GetStringValue(cJSON_GetObjectItem(body, "spec"));
    const cJSON *pathv = cJSON_GetObjectItem(body, "path");
    const char *path = cJSON_GetStringValue(pathv);
    if (body == NULL || !cJSON_IsObject(body)) {
        fail(req, 400, "invalid_json", "%s", "the body must be a JSON object: {\"spec\": \"<YAML>\", \"path\": \"...\"}");
    } else if (spec == NULL) {
        fail(req, 400, "invalid_spec", "%s", "`spec` must be the loop spec's YAML as a string");
    } else if (pathv != NULL && (path == NULL || path[0] != '/' || strlen(path) > 4000)) {
        fail(req, 400, "invalid_path", "%s", "`path` must be the spec file's absolute path (it resolves `curate:`)");
    } else {
        char id[GYRE_LOOP_RUN_ID_MAX], err[1024] = "";
        gyre_buf_t b;
        gyre_buf_init(&b, API_LOOP_RUN_MAX);
        int rc = gyre_loop_submit_doc(s->loop, spec, strlen(spec), path, "api", id, sizeof(id), &b, err, sizeof(err));
        if (rc == -EINVAL)
            fail(req, 400, "invalid_spec", "%s", err);
        else if (rc == -EBUSY)
            fail(req, 409, "run_in_progress", "%s", err);
        else if (rc != 0)
            fail(req, 500, "state_error", "%s", err);
        else if (gyre_buf_failed(&b))
            fail(req, 500, "state_error", "%s", "the run's document is larger than an answer holds");
        else
            gyre_respond_json(req, 201, b.base, b.len);
        gyre_buf_dispose(&b);
    }
    cJSON_Delete(body);
}

int gyre_api_loop_handle(gyre_worker_t *w, h2o_req_t *req, h2o_iovec_t path)
{
    static const char prefix[] = "/api/loop/runs";
    const size_t pl = sizeof(prefix) - 1;
    if (!(path.len >= pl && memcmp(path.base, prefix, pl) == 0 && (path.len == pl || path.base[pl] == '/')))
        return 0;
    gyre_server_t *s = w->server;
    if (s->loop == NULL || s->state == NULL) {
        fail(req, 404, "loop_not_available", "%s",
             "the loop needs the control-plane state (`state:`, or a SQLite store beside which it is kept)");
        return 1;
    }
    /* What follows the prefix: "", "/ID", "/ID/report" or "/ID/cancel". */
    const char *rest = path.base + pl + (path.len > pl ? 1 : 0);
    size_t restlen = path.len > pl ? path.len - pl - 1 : 0;
    if (path.len == pl || restlen == 0) {
        if (is_method(req, "POST")) {
            submit(w, req);
            return 1;
        }
        if (!is_method(req, "GET")) {
            wrong_method(req, "GET, POST");
            return 1;
        }
        size_t limit = 50;
        h2o_iovec_t l = query_param(req, "limit");
        if (l.len > 0) {
            char tmp[16];
            size_t n = l.len < sizeof(tmp) - 1 ? l.len : sizeof(tmp) - 1;
            memcpy(tmp, l.base, n);
            tmp[n] = '\0';
            char *end;
            unsigned long v = strtoul(tmp, &end, 10);
            if (l.len >= sizeof(tmp) || *end != '\0' || v == 0 || v > GYRE_LOOP_RUNS_LIST_MAX) {
                fail(req, 400, "invalid_limit", "%s", "`limit` must be a whole number from 1 to 500");
                return 1;
            }
            limit = v;
        }
        gyre_buf_t b;
        char err[512] = "";
        gyre_buf_init(&b, API_LOOP_LIST_MAX);
        if (gyre_loop_runs_json(s->state, limit, &b, err, sizeof(err)) == 0)
            gyre_respond_json(req, 200, b.base, b.len);
        else
            fail(req, 500, "state_error", "%s", err[0] ? err : "the listing is too large");
        gyre_buf_dispose(&b);
        return 1;
    }
    const char *slash = memchr(rest, '/', restlen);
    size_t idlen = slash != NULL ? (size_t)(slash - rest) : restlen;
    const char *action = slash != NULL ? slash + 1 : "";
    size_t actlen = slash != NULL ? restlen - idlen - 1 : 0;
    if (!gyre_loop_run_id_ok(rest, idlen)) {
        fail(req, 404, "run_not_found", "%s", "no such loop run (an id is run_ and 16 hex digits)");
        return 1;
    }
    char id[GYRE_LOOP_RUN_ID_MAX], err[1024] = "";
    memcpy(id, rest, idlen);
    id[idlen] = '\0';
    gyre_buf_t b;
    gyre_buf_init(&b, API_LOOP_REPORT_MAX);
    if (actlen == 0) {
        if (!is_method(req, "GET"))
            wrong_method(req, "GET");
        else if (gyre_loop_run_json(s->state, id, &b, err, sizeof(err)) == 0)
            gyre_respond_json(req, 200, b.base, b.len);
        else
            fail(req, 404, "run_not_found", "%s", err);
    } else if (actlen == 6 && memcmp(action, "report", 6) == 0) {
        h2o_iovec_t f = query_param(req, "format");
        int md = f.len == 2 && memcmp(f.base, "md", 2) == 0;
        if (!is_method(req, "GET"))
            wrong_method(req, "GET");
        else if (f.len > 0 && !md && !(f.len == 4 && memcmp(f.base, "json", 4) == 0))
            fail(req, 400, "invalid_format", "%s", "`format` is md or json");
        else if (gyre_loop_run_report(s->state, id, md, &b, err, sizeof(err)) != 0)
            fail(req, 404, "report_not_found", "%s", err);
        else if (md) {
            req->res.status = 200;
            req->res.reason = "OK";
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                           H2O_STRLIT("text/markdown; charset=utf-8"));
            h2o_iovec_t body = h2o_strdup(&req->pool, b.base != NULL ? b.base : "", b.len);
            h2o_send_inline(req, body.base, body.len);
        } else
            gyre_respond_json(req, 200, b.base, b.len);
    } else if (actlen == 6 && memcmp(action, "cancel", 6) == 0) {
        if (!is_method(req, "POST"))
            wrong_method(req, "POST");
        else {
            int rc = gyre_loop_cancel(s->loop, id, err, sizeof(err));
            if (rc == -ENOENT)
                fail(req, 404, "run_not_found", "%s", err);
            else if (rc == -EALREADY)
                fail(req, 409, "run_ended", "%s", err);
            else if (rc != 0)
                fail(req, 500, "state_error", "%s", err);
            else
                gyre_respond_json(req, 202, "{\"cancelling\":true}", 19);
        }
    } else
        fail(req, 404, "unknown_url", "%s", "a loop run has /report and /cancel");
    gyre_buf_dispose(&b);
    return 1;
}
