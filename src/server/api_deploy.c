/*
 * /api/deploy (src/loop/deploy.h): canary deployments of the loop's
 * candidates, and of models fine-tuned elsewhere.
 *
 *   GET  /api/deploy[?route=NAME]        {"deployments":[...newest first...]}      read token
 *   POST /api/deploy/{route}/begin       a canary of a candidate: the body below  admin token
 *   POST /api/deploy/{route}/promote     the next ramp step now (at 100 %: done)  admin token
 *   POST /api/deploy/{route}/rollback    {"reason": TEXT} (optional): the route as it was   admin token
 *
 * begin's body: {"run_id", "provider", "model" (required), "ramp": [5, 25, 100], "min_requests": 50,
 * "step_time": "10m" (or milliseconds), "metrics": [scorer names], "max_drop": 0.02, "alpha": 0.05,
 * "rollback_on_alert": true, "watch_window": "1h" (or milliseconds; 0: none), "adapter": {"kind": "none" |
 * "vllm" | "llamacpp", "provider", "name"}}; with an adapter, `model` is its path, loaded before the canary.
 *
 * A route name in the path is letters, digits, '.', '_' and '-'.  The calls run on the worker that took them:
 * each is a few point reads and writes of the control-plane state and one route change; begin with an adapter
 * also waits for the serving provider's load (at most GYRE_SERVE_TIMEOUT_MS).  Bodies are at most
 * GYRE_ADMIN_MAX_BODY bytes (413).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "proxy/respond.h"
#include "server/admin.h"
#include "server/api.h"
#include "server/deploy_host.h"

#define DEPLOY_ANSWER_MAX ((size_t)16 << 20)

static void fail(h2o_req_t *req, int status, const char *code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void fail(h2o_req_t *req, int status, const char *code, const char *param, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gyre_api_error_t err;
    gyre_api_error_set(&err, status, status >= 500 ? "server_error" : "invalid_request_error", code, param, "%s", msg);
    gyre_respond_error(req, &err);
}

/* The answer of a change: the route's deployments after it. */
static void respond_route(h2o_req_t *req, const gyre_deploy_host_t *h, const char *route, int status)
{
    gyre_buf_t b;
    gyre_buf_init(&b, DEPLOY_ANSWER_MAX);
    if (gyre_deploy_status_json(h, route, &b) != 0)
        fail(req, 500, "state_error", NULL, "the deployments could not be read back");
    else
        gyre_respond_json(req, status, b.base, b.len);
    gyre_buf_dispose(&b);
}

static void begin(h2o_req_t *req, const gyre_deploy_host_t *h, const char *route)
{
    gyre_deploy_request_t q;
    char param[64], err[1024] = "";
    if (gyre_deploy_request_parse(req->entity.base, req->entity.len, &q, param, sizeof(param), err, sizeof(err)) != 0) {
        fail(req, 400, param[0] ? "invalid_value" : "invalid_json", param[0] ? param : NULL, "%s", err);
        return;
    }
    int r = gyre_deploy_begin_watch(h, &q.conf, q.watch_window_ms, route, q.run_id, q.provider, q.model, &q.serve, err,
                                    sizeof(err));
    if (r == 0)
        respond_route(req, h, route, 201);
    else if (r == -EINVAL)
        fail(req, 400, "invalid_value", NULL, "%s", err);
    else if (r == -EBUSY || r == -EEXIST)
        fail(req, 409, r == -EBUSY ? "deployment_in_progress" : "run_exists", NULL, "%s", err);
    else if (r == -ENOENT)
        fail(req, 404, "not_found", NULL, "%s", err);
    else
        fail(req, 502, "deploy_failed", NULL, "%s", err);
    gyre_deploy_request_dispose(&q);
}

static int route_name_ok(const char *p, size_t n)
{
    if (n == 0 || n > 256)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9') ||
              p[i] == '.' || p[i] == '_' || p[i] == '-'))
            return 0;
    return 1;
}

int gyre_api_deploy_handle(gyre_worker_t *w, h2o_req_t *req, h2o_iovec_t path)
{
    static const char prefix[] = "/api/deploy";
    size_t plen = sizeof(prefix) - 1;
    if (path.len < plen || memcmp(path.base, prefix, plen) != 0 || (path.len > plen && path.base[plen] != '/'))
        return 0;
    const gyre_deploy_host_t *h = gyre_server_deploy_host(w->server);
    int get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"));
    int post = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"));
    if (path.len == plen) {
        if (!get) {
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET"));
            fail(req, 405, "method_not_allowed", NULL,
                 "/api/deploy takes GET; changes are POST /api/deploy/{route}/"
                 "begin, promote or rollback");
            return 1;
        }
        if (h == NULL) {
            fail(req, 404, "state_not_configured", NULL,
                 "this gateway keeps no deployments: the config has neither a "
                 "store (store: {sqlite: PATH}) nor state: PATH");
            return 1;
        }
        char strings[GYRE_API_QUERY_MAX + 1] = "";
        const char *route = NULL;
        if (req->query_at != SIZE_MAX) {
            const char *qs = req->path.base + req->query_at + 1;
            size_t qlen = req->path.len - req->query_at - 1;
            if (qlen < 6 || memcmp(qs, "route=", 6) != 0 || !route_name_ok(qs + 6, qlen - 6)) {
                fail(req, 400, "invalid_value", "route",
                     "the only parameter is route=NAME (letters, digits, '.', '_', "
                     "'-')");
                return 1;
            }
            memcpy(strings, qs + 6, qlen - 6);
            route = strings;
        }
        respond_route(req, h, route, 200);
        return 1;
    }
    /* /api/deploy/{route}/{action} */
    const char *seg = path.base + plen + 1, *end = path.base + path.len;
    const char *slash = memchr(seg, '/', (size_t)(end - seg));
    const char *action = slash != NULL ? slash + 1 : NULL;
    size_t alen = action != NULL ? (size_t)(end - action) : 0;
    int which = action == NULL                                    ? -1
                : h2o_memis(action, alen, H2O_STRLIT("begin"))    ? 0
                : h2o_memis(action, alen, H2O_STRLIT("promote"))  ? 1
                : h2o_memis(action, alen, H2O_STRLIT("rollback")) ? 2
                                                                  : -1;
    if (which < 0 || !route_name_ok(seg, (size_t)(slash - seg))) {
        fail(req, 404, "unknown_url", NULL,
             "unknown path %.*s; deployments are at /api/deploy and "
             "/api/deploy/{route}/begin|promote|rollback (route: letters, digits, '.', "
             "'_', '-')",
             (int)(path.len < 256 ? path.len : 256), path.base);
        return 1;
    }
    /* The access stage asked for the admin token on the normalised path: a change is made only when that is the
     * path written ("/api/deploy/../x" normalises elsewhere). */
    if (!h2o_memis(req->path_normalized.base, req->path_normalized.len, path.base, path.len)) {
        fail(req, 400, "invalid_path", NULL, "a deployment's path must be written plainly, without dot segments");
        return 1;
    }
    if (!post) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("POST"));
        fail(req, 405, "method_not_allowed", NULL, "%.*s takes POST", (int)(path.len < 256 ? path.len : 256),
             path.base);
        return 1;
    }
    if (h == NULL) {
        fail(req, 404, "state_not_configured", NULL,
             "this gateway keeps no deployments: the config has neither a "
             "store (store: {sqlite: PATH}) nor state: PATH");
        return 1;
    }
    if (req->entity.len > GYRE_ADMIN_MAX_BODY) {
        fail(req, 413, "request_too_large", NULL, "a deployment request body is at most %zu bytes",
             GYRE_ADMIN_MAX_BODY);
        return 1;
    }
    char route[257];
    snprintf(route, sizeof(route), "%.*s", (int)(slash - seg), seg);
    if (which == 0) {
        begin(req, h, route);
        return 1;
    }
    const char *actor = w->super.config->auth.mode == GYRE_AUTH_KEYS ? "admin_token" : "anonymous";
    char err[1024] = "", reason[1024] = "";
    if (which == 2 && req->entity.len > 0) {
        cJSON *b = cJSON_ParseWithLength(req->entity.base, req->entity.len);
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(b, "reason");
        if (!cJSON_IsObject(b) || (r != NULL && !cJSON_IsString(r))) {
            cJSON_Delete(b);
            fail(req, 400, "invalid_value", "reason", "the body is {\"reason\": TEXT}, or none");
            return 1;
        }
        if (r != NULL)
            snprintf(reason, sizeof(reason), "%s", r->valuestring);
        cJSON_Delete(b);
    }
    int r = which == 1 ? gyre_deploy_promote(h, route, actor, err, sizeof(err))
                       : gyre_deploy_rollback(h, route, actor, reason, err, sizeof(err));
    if (r == 0)
        respond_route(req, h, route, 200);
    else if (r == -ENOENT)
        fail(req, 404, "no_deployment", NULL, "%s", err);
    else
        fail(req, 502, "deploy_failed", NULL, "%s", err);
    return 1;
}
