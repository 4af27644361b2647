/*
 * Guardrails on the answer (src/loop/guard.h decides, this file carries it out; docs/guardrails.md): a whole
 * answer is checked once it is in, before gyre sends it, in OpenAI's shape (the form the proxy already has for
 * a translated answer; a pass-through one is read into it only when the route has checks on the answer):
 *
 *   deny   422 in the client's dialect naming the check: the request was well formed (a 400 says it was not),
 *          and the answer the route produced is one its policy does not let out;
 *   retry  the attempt counts as failed and the route's next target is tried at once (whatever fallback_on
 *          says: the route asked for it by name); when no target is left, 502 naming the check (the last answer
 *          failed the check, so it is not sent);
 *   flag   sent as it is; the trace is marked.
 *
 * A stream is checked at its end, on the text the client was sent (the accumulator's): its bytes are out, so a
 * failing check can only flag, whatever its action.
 */
#include <math.h>

#include "loop/guard.h"
#include "proxy/proxy_int.h"

static gyre_guard_t *guard_of(gyre_proxy_t *self)
{
    return self->gen->gen->guard;
}

/* The latency a check sees is this attempt's: a target too slow is judged on its own time, not on the time the
 * targets before it took (so a retry can pass on a faster one). */
static int64_t attempt_latency_us(gyre_proxy_t *self)
{
    return (int64_t)(gyre_proxy_now_ms(self) - self->attempt_started_ms) * 1000;
}

int gyre_proxy_guard_wants(gyre_proxy_t *self)
{
    return self->call->endpoint == GYRE_OPENAI_CHAT &&
           (gyre_guard_has(guard_of(self), self->call->route, 0) & GYRE_GUARD_ANY) != 0;
}

/* deny: the provider answered well (its key counts a success); the client gets gyre's 422 instead. */
static void deny(gyre_proxy_t *self, const gyre_guard_outcome_t *out)
{
    gyre_proxy_record_outcome(self, 1, 0);
    gyre_proxy_end_attempt(self);
    gyre_timer_stop(&self->deadline_timer);
    self->upstream_done = 1;
    if (self->client_gone)
        return;
    self->answered = 1;
    h2o_req_t *req = self->req;
    req->res.headers.size = self->own_headers;
    gyre_api_error_t err;
    gyre_api_error_set(&err, 422, "invalid_request_error", "guardrail_failed", NULL,
                       "guardrail '%s' failed on the answer: %s", out->check, out->reason);
    gyre_proxy_add_gyre_headers(self);
    gyre_proxy_respond_error(self, &err);
}

/* Runs the answer's checks on `in`; carries out a deny or retry (1), or lets the answer go (0). */
static int carry_out(gyre_proxy_t *self, const gyre_check_input_t *in, int stream)
{
    gyre_guard_outcome_t out;
    gyre_guard_run(guard_of(self), self->worker->id, self->call->route, 0, stream, in, self->call->trace,
                   &self->req->pool, &out);
    if (out.action == GYRE_GUARD_DENY) {
        deny(self, &out);
        return 1;
    }
    if (out.action == GYRE_GUARD_RETRY) {
        gyre_api_error_t err;
        gyre_api_error_set(&err, 502, "upstream_error", "guardrail_failed", NULL,
                           "guardrail '%s' failed on the answer of provider '%s': %s", out.check, self->prov->name,
                           out.reason);
        gyre_proxy_answer_rejected(self, &err);
        return 1;
    }
    return 0;
}

/* The checks on an answer in OpenAI's chat.completion shape: its first choice's text and tool calls. */
static int check_completion(gyre_proxy_t *self, const char *json, size_t len, int stream)
{
    unsigned has = gyre_guard_has(guard_of(self), self->call->route, 0);
    if (!(has & GYRE_GUARD_NEEDS_TOOLS)) {
        /* The text alone: read where it lies, no tree built (the trace reads the answer once more when it is
         * finished, as it always did).  Bytes that are not a chat.completion are checked as they are. */
        gyre_check_input_t in = {.text = json, .len = len, .latency_us = attempt_latency_us(self), .cost_usd = NAN};
        if (gyre_guard_answer_text(json, len, &self->req->pool, &in.text, &in.len) != 0) {
            in.text = json;
            in.len = len;
        }
        return carry_out(self, &in, stream);
    }
    int arena = gyre_json_arena_enter(); /* a callback: no scope is open; the values die before it ends */
    cJSON *doc = cJSON_ParseWithLength(json, len);
    const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "choices"), 0);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(choice, "message");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");
    char *calls_json = (has & GYRE_GUARD_NEEDS_TOOLS) && cJSON_IsArray(calls) ? cJSON_PrintUnformatted(calls) : NULL;
    gyre_check_input_t in = {.text = cJSON_IsString(content) ? content->valuestring : "",
                             .len = cJSON_IsString(content) ? strlen(content->valuestring) : 0,
                             .tool_calls_json = calls_json,
                             .tools_json = self->call->guard_tools,
                             .latency_us = attempt_latency_us(self),
                             .cost_usd = NAN}; /* priced when the trace is finished, after the answer */
    int handled = carry_out(self, &in, stream);
    if (calls_json != NULL)
        cJSON_free(calls_json);
    cJSON_Delete(doc);
    if (arena)
        gyre_json_arena_end();
    return handled;
}

int gyre_proxy_guard_answer(gyre_proxy_t *self, const char *openai, size_t len)
{
    if (!gyre_proxy_guard_wants(self))
        return 0;
    return check_completion(self, openai, len, 0);
}

int gyre_proxy_guard_passthrough(gyre_proxy_t *self)
{
    if (!gyre_proxy_guard_wants(self))
        return 0;
    const char *body = self->body.base ? self->body.base : "";
    if (self->call->client->native_completion == NULL && self->dialect->speaks_openai)
        return check_completion(self, body, self->body.len, 0);
    /* Another API's own answer (an Anthropic message, a Response), read into OpenAI's shape for the checks. */
    gyre_buf_t openai;
    gyre_api_error_t err;
    gyre_buf_init(&openai, BUFFER_MAX);
    int r = self->call->client->native_completion != NULL
                ? self->call->client->native_completion(body, self->body.len, &openai)
                : self->dialect->chat_response(&self->chat, body, self->body.len, &openai, &err);
    int handled = r == 0 && check_completion(self, openai.base ? openai.base : "", openai.len, 0);
    gyre_buf_dispose(&openai);
    return handled;
}

void gyre_proxy_guard_stream_end(gyre_proxy_t *self)
{
    if (!gyre_proxy_guard_wants(self) || !self->acc_inited)
        return;
    if (gyre_guard_has(guard_of(self), self->call->route, 0) & GYRE_GUARD_NEEDS_TOOLS) {
        gyre_buf_t c;
        gyre_buf_init(&c, ACCUM_MAX * 2);
        if (gyre_openai_accum_completion(&self->acc, &c) == 0)
            check_completion(self, c.base ? c.base : "", c.len, 1);
        gyre_buf_dispose(&c);
        return;
    }
    /* The text as the client was sent it, straight from the accumulator: nothing to parse. */
    gyre_check_input_t in = {.text = self->acc.content.base ? self->acc.content.base : "",
                             .len = self->acc.content.len,
                             .latency_us = attempt_latency_us(self),
                             .cost_usd = NAN};
    carry_out(self, &in, 1);
}
