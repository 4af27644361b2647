/*
 * GET /api/alerts: the alerts pending or firing now and the recent events
 * (the engine's memory: the last GYRE_ALERTS_EVENTS_KEPT transitions),
 * {"alerts":[...],"events":[...]}; read token (the access stage checks it
 * as for every /api path).  Without `alerts:` in the configuration both
 * lists are empty.  `gyre alerts` reads the stored events instead.
 */
#include <h2o.h>
#include <string.h>

#include "common/buf.h"
#include "control/alerts.h"
#include "proxy/respond.h"
#include "server/api.h"

/* The answer's bound: 256 events of at most ~2 KiB each, and the current alerts of 64 rules x 64 label sets. */
#define API_ALERTS_MAX ((size_t)16 << 20)

int gyre_api_alerts_handle(gyre_worker_t *w, h2o_req_t *req, h2o_iovec_t path)
{
    if (!h2o_memis(path.base, path.len, H2O_STRLIT("/api/alerts")))
        return 0;
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"))) {
        gyre_api_error_t err;
        gyre_api_error_set(&err, 405, "invalid_request_error", "method_not_allowed", NULL,
                           "%.*s /api/alerts is not allowed; use GET", (int)(req->method.len < 32 ? req->method.len : 32),
                           req->method.base);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET"));
        gyre_respond_error(req, &err);
        return 1;
    }
    gyre_buf_t b;
    gyre_buf_init(&b, API_ALERTS_MAX);
    int rc = 0;
    if (w->server->alerts != NULL)
        rc = gyre_alerts_render_json(w->server->alerts, &b);
    else
        gyre_buf_appends(&b, "{\"alerts\":[],\"events\":[]}");
    if (rc != 0 || gyre_buf_failed(&b)) {
        gyre_api_error_t err;
        gyre_api_error_set(&err, 500, "server_error", "response_too_large", NULL, "the alert list is larger than %zu bytes",
                           API_ALERTS_MAX);
        gyre_respond_error(req, &err);
    } else {
        gyre_respond_json(req, 200, b.base, b.len);
    }
    gyre_buf_dispose(&b);
    return 1;
}
