/*
 * The stages every request passes through, in order (docs/architecture.md, "The path of a request"):
 *
 *   head → health → access → endpoint → parse → limits → route → guardrails → attempt
 *
 * then, in proxy/, as the provider answers: attempts → relay → finish.  A stage is a function with one
 * contract: it reads and fills the request's gyre_stage_ctx_t, and returns GYRE_STAGE_GO (the next stage
 * runs) or GYRE_STAGE_DONE (the request is answered, or handed on; no later stage runs).  gyre_stages_run
 * walks them top to bottom and then finishes what was answered here; adding a stage is adding its function
 * (in a file of its own) and its line in the table in stages.c.
 */
#ifndef GYRE_SERVER_STAGES_H
#define GYRE_SERVER_STAGES_H

#include <h2o.h>

#include "control/principal.h"
#include "dialect/client.h"
#include "dialect/openai.h"
#include "proxy/call.h"
#include "route/route.h"
#include "server/server.h"

typedef enum gyre_stage_result {
    GYRE_STAGE_GO = 0, /* on to the next stage */
    GYRE_STAGE_DONE,   /* answered (or handed to the proxy): the stages end here */
} gyre_stage_result_t;

/* One request's way through the stages, on the handler's stack: each field says which stage fills it. */
typedef struct gyre_stage_ctx {
    gyre_server_t *server;
    gyre_worker_t *worker;
    h2o_req_t *req;
    int rc; /* what the handler returns to h2o: 0, answered (the default), or a handler's own verdict */
    /* access: who the request is (its key's id, team, agent, user and the key's own limits). */
    gyre_principal_t principal;
    /* endpoint: a model call, in which dialect and to which endpoint. */
    const gyre_client_dialect_t *client;
    gyre_openai_endpoint_t endpoint;
    /* parse: the call (its trace begun), the body as parsed, and the target its model resolved to.  The
     * parsed JSON lives in the worker's JSON arena, open from parse until the stages are finished. */
    gyre_call_t *call;
    int in_arena;
    gyre_target_ref_t target;
    const cJSON *pivot; /* the request in OpenAI's shape (the cache key is made from it), or NULL */
    gyre_openai_request_t openai;
    int have_openai;
    cJSON *client_pivot;    /* the pivot a request in another client dialect amounts to (owned), else NULL */
    /* head: the request's access log entry (trace/access_log.h), NULL when the log is off. */
    struct gyre_access_entry *access;
} gyre_stage_ctx_t;

typedef gyre_stage_result_t (*gyre_stage_fn)(gyre_stage_ctx_t *c);

/* Runs the stages for `c` (server, worker and req set, the rest zero) and returns c->rc for h2o. */
int gyre_stages_run(gyre_stage_ctx_t *c);

/* The stages, in src/server/handlers.c unless the table in stages.c says otherwise. */
gyre_stage_result_t gyre_stage_head(gyre_stage_ctx_t *c);
gyre_stage_result_t gyre_stage_health(gyre_stage_ctx_t *c);
gyre_stage_result_t gyre_stage_access(gyre_stage_ctx_t *c);
gyre_stage_result_t gyre_stage_endpoint(gyre_stage_ctx_t *c);
gyre_stage_result_t gyre_stage_parse(gyre_stage_ctx_t *c);
/* src/server/limits_stage.c */
gyre_stage_result_t gyre_stage_limits(gyre_stage_ctx_t *c);
gyre_stage_result_t gyre_stage_route(gyre_stage_ctx_t *c);
/* src/server/guard_stage.c */
gyre_stage_result_t gyre_stage_guardrails(gyre_stage_ctx_t *c);
gyre_stage_result_t gyre_stage_attempt(gyre_stage_ctx_t *c);
/* After the stages, always: a call answered here (a bad request, an unknown model, a cache hit) gets its
 * trace now; one the proxy took is finished by the proxy when its answer is over. */
void gyre_stage_finish(gyre_stage_ctx_t *c);

#endif
