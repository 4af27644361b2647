/*
 * Stage 5, guardrails on the request (src/loop/guard.h, docs/guardrails.md): the route's `on: request` checks
 * run on the last user message's text, after the body is parsed and the route known, before any attempt.  A
 * failing `deny` check answers 400 in the client's dialect naming the check; a failing `flag` check marks the
 * trace and lets the request on.  When the route checks the answer's tool calls (tool_args on the response), the
 * request's tools are kept on the call here, from the parsed body, for the proxy to check against.
 */
#include <cjson/cJSON.h>
#include <math.h>

#include "loop/guard.h"
#include "proxy/respond.h"
#include "server/stages.h"
#include "trace/record.h"

/* The text of a message's content: a string as it is, or its text parts joined by newlines (in the pool, up to
 * what a check reads). */
static const char *content_text(h2o_mem_pool_t *pool, const cJSON *content, size_t *len)
{
    if (cJSON_IsString(content)) {
        *len = strlen(content->valuestring);
        return content->valuestring;
    }
    size_t total = 0;
    const cJSON *part;
    cJSON_ArrayForEach(part, content)
    {
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (cJSON_IsString(text))
            total += strlen(text->valuestring) + 1;
    }
    if (total > GYRE_HEURISTIC_JSON_MAX)
        total = GYRE_HEURISTIC_JSON_MAX;
    char *buf = h2o_mem_alloc_pool(pool, total + 1);
    size_t n = 0;
    cJSON_ArrayForEach(part, content)
    {
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (!cJSON_IsString(text))
            continue;
        size_t l = strlen(text->valuestring);
        if (n != 0 && n < total)
            buf[n++] = '\n';
        if (l > total - n)
            l = total - n;
        memcpy(buf + n, text->valuestring, l);
        n += l;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

gyre_stage_result_t gyre_stage_guardrails(gyre_stage_ctx_t *c)
{
    gyre_call_t *call = c->call;
    if (call == NULL || call->route == NULL || call->route->nguardrails == 0 || c->pivot == NULL)
        return GYRE_STAGE_GO;
    gyre_ctx_t *w = &c->worker->super;
    gyre_guard_t *g = w->gen->gen->guard;
    if (gyre_guard_has(g, call->route, 0) & GYRE_GUARD_NEEDS_TOOLS) {
        const cJSON *tools = cJSON_GetObjectItemCaseSensitive(c->pivot, "tools");
        char *json = tools != NULL ? cJSON_PrintUnformatted(tools) : NULL;
        if (json != NULL) {
            call->guard_tools = h2o_strdup(&c->req->pool, json, SIZE_MAX).base;
            cJSON_free(json);
        }
    }
    if (!(gyre_guard_has(g, call->route, 1) & GYRE_GUARD_ANY))
        return GYRE_STAGE_GO;
    /* The last user message: what the client asks now (earlier turns were checked when they were sent). */
    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(c->pivot, "messages");
    const cJSON *last = NULL, *m;
    cJSON_ArrayForEach(m, messages)
    {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (cJSON_IsString(role) && strcmp(role->valuestring, "user") == 0)
            last = m;
    }
    size_t len = 0;
    const char *text = last != NULL ? content_text(&c->req->pool, cJSON_GetObjectItemCaseSensitive(last, "content"), &len)
                                    : "";
    gyre_check_input_t in = {.text = text, .len = len, .latency_us = -1, .cost_usd = NAN};
    gyre_guard_outcome_t out;
    gyre_guard_run(g, w->id, call->route, 1, 0, &in, call->trace, &c->req->pool, &out);
    if (out.action != GYRE_GUARD_DENY)
        return GYRE_STAGE_GO;
    gyre_api_error_t err;
    gyre_api_error_set(&err, 400, "invalid_request_error", "guardrail_failed", "messages",
                       "guardrail '%s' failed on the request: %s", out.check, out.reason);
    gyre_respond_client_error(c->req, c->client, &err);
    return GYRE_STAGE_DONE;
}
