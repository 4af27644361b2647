/*
 * The stage driver: the one place where the order of a request's stages is written (see stages.h and
 * docs/architecture.md).  Stages still to come (guardrails) are here as stages that let every request
 * go on, so that filling one in changes its function and nothing around it.  (None is left: the guardrails
 * stage is src/server/guard_stage.c.)
 */
#include "server/stages.h"

#include "trace/access_log.h"

static const struct {
    const char *name;
    gyre_stage_fn run;
} stages[] = {
    /* 1 parse and validate, the HTTP part: the framing (RFC 9112) and the head's bound, the request id. */
    {"head", gyre_stage_head},
    /* /healthz, before access: a load balancer's probe carries no credential. */
    {"health", gyre_stage_health},
    /* 2 access: the credential against what the path needs (401/403).  Before the body is read, so that a
     * request without the right credential learns nothing of how its body would have been taken. */
    {"access", gyre_stage_access},
    /* 1 parse and validate, the request line: the path and method.  gyre's own endpoints (/metrics, /api,
     * /v1/traces, /v1/models) answer here; a model call goes on. */
    {"endpoint", gyre_stage_endpoint},
    /* 1 parse and validate, the body: parsed in the client's dialect, its model checked and resolved. */
    {"parse", gyre_stage_parse},
    /* 3 limits: rpm, tpm, concurrency and budgets per key, team, agent and user; reserved now, settled when the
     * request is disposed (src/server/limits_stage.c). */
    {"limits", gyre_stage_limits},
    /* 4 route: the plan (strategy, breakers, affinity), and the route's cache, which may answer. */
    {"route", gyre_stage_route},
    /* 5 guardrails on the request: deny (400) or flag (src/server/guard_stage.c). */
    {"guardrails", gyre_stage_guardrails},
    /* 6 attempt(s), 7 relay and 8 finish: the proxy's, as the providers answer (src/proxy/). */
    {"attempt", gyre_stage_attempt},
};

int gyre_stages_run(gyre_stage_ctx_t *c)
{
    for (size_t i = 0; i < sizeof(stages) / sizeof(stages[0]); i++)
        if (stages[i].run(c) != GYRE_STAGE_GO)
            break;
    gyre_access_entry_note(c->access, c->call != NULL ? c->call->trace : NULL, c->principal.key_id);
    gyre_stage_finish(c);
    return c->rc;
}
