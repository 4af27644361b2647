/*
 * POST /v1/feedback (loop/feedback.h): a judgement of a call or a session,
 * stored as a human score.  The worker reads and checks the body (cheap; a
 * 400 answers at once), then the store work, which may wait for the trace
 * to be indexed (GYRE_FEEDBACK_WAIT_MS), runs on the API's reader threads
 * (gyre_api_submit_work), never on the worker's event loop.
 *
 * Access (control/access.h): a client key, the read token or the admin
 * token.  Answers: 201 with the stored feedback; 400 naming the field at
 * fault (`param`); 404 trace_not_found / session_not_found; 404
 * store_not_configured; 405 for another method; 503 store_busy or
 * store_unavailable.
 */
#include "server/feedback.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "loop/feedback.h"
#include "proxy/respond.h"
#include "server/api.h"

typedef struct feedback_work {
    gyre_api_work_t super; /* first */
    gyre_feedback_t fb;
    int r;
    char msg[512];
} feedback_work_t;

static void run_cb(gyre_api_work_t *work, gyre_store_t *store)
{
    feedback_work_t *fw = (feedback_work_t *)work;
    fw->r = gyre_feedback_record(store, &fw->fb, GYRE_FEEDBACK_WAIT_MS, fw->msg, sizeof(fw->msg));
}

static void respond_cb(gyre_api_work_t *work, h2o_req_t *req)
{
    feedback_work_t *fw = (feedback_work_t *)work;
    gyre_api_error_t err;
    if (fw->r == 0) {
        gyre_buf_t out;
        gyre_buf_init(&out, GYRE_FEEDBACK_BODY_MAX * 2);
        if (gyre_feedback_render(&fw->fb, &out) == 0) {
            gyre_respond_json(req, 201, out.base, out.len);
        } else {
            gyre_api_error_set(&err, 500, "server_error", "response_too_large", NULL,
                               "the stored feedback does not fit its answer");
            gyre_respond_error(req, &err);
        }
        gyre_buf_dispose(&out);
        return;
    }
    if (fw->r == -ENOENT) {
        int by_trace = fw->fb.trace_id[0] != '\0';
        gyre_api_error_set(&err, 404, "invalid_request_error", by_trace ? "trace_not_found" : "session_not_found",
                           by_trace ? "trace_id" : "session_id", "%s", fw->msg);
    } else {
        gyre_api_error_set(&err, 503, "server_error", "store_unavailable", NULL, "storing feedback: %s", fw->msg);
    }
    gyre_respond_error(req, &err);
}

static void dispose_cb(gyre_api_work_t *work)
{
    feedback_work_t *fw = (feedback_work_t *)work;
    gyre_feedback_dispose(&fw->fb);
    free(fw);
}

int gyre_feedback_handle(gyre_worker_t *w, h2o_req_t *req)
{
    h2o_iovec_t p = req->path_normalized;
    gyre_api_error_t err;
    if (!h2o_memis(p.base, p.len, H2O_STRLIT("/v1/feedback")))
        return 0;
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        gyre_api_error_set(&err, 405, "invalid_request_error", "method_not_allowed", NULL,
                           "%.*s /v1/feedback is not allowed; use POST", (int)(req->method.len < 32 ? req->method.len : 32),
                           req->method.base);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("POST"));
        gyre_respond_error(req, &err);
        return 1;
    }
    const gyre_config_t *config = w->server->config;
    if (config->store_dsn == NULL) {
        gyre_api_error_set(&err, 404, "invalid_request_error", "store_not_configured", NULL,
                           "this gateway keeps no traces, so no feedback: the config has no store (store: {sqlite: PATH})");
        gyre_respond_error(req, &err);
        return 1;
    }
    feedback_work_t *fw = gyre_calloc(1, sizeof(*fw));
    const char *param = NULL;
    char msg[512];
    if (gyre_feedback_parse(config, req->entity.base, req->entity.len, &fw->fb, &param, msg, sizeof(msg)) != 0) {
        free(fw);
        gyre_api_error_set(&err, 400, "invalid_request_error", "invalid_value", param, "%s", msg);
        gyre_respond_error(req, &err);
        return 1;
    }
    fw->super = (gyre_api_work_t){run_cb, respond_cb, dispose_cb};
    gyre_api_submit_work(w, req, &fw->super);
    return 1;
}
