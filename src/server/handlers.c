/*
 * Endpoint dispatch.  /v1/chat/completions, /v1/embeddings and Anthropic's
 * /v1/messages are read and checked before anything goes upstream, resolved
 * to a route (or one provider), planned, and answered from the route's
 * cache or handed to the proxy; every other /v1 path passes through to a
 * provider that speaks OpenAI's API, routed by the body's model when it has
 * one.
 */
#include "server/handlers.h"

#include "server/api.h"

#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/wire.h"
#include "control/access.h"
#include "dialect/anthropic.h"
#include "dialect/dialect.h"
#include "dialect/openai.h"
#include "dialect/openai_stream.h"
#include "otlp/endpoint.h"
#include "proxy/call.h"
#include "proxy/proxy.h"
#include "route/route.h"
#include "server/conn.h"
#include "server/respond.h"
#include "server/server.h"
#include "trace/record.h"
#include "trace/writer.h"

typedef struct gyre_handler {
    h2o_handler_t super;
    gyre_server_t *server;
} gyre_handler_t;

static int path_is(h2o_req_t *req, const char *s, size_t n)
{
    return h2o_memis(req->path_normalized.base, req->path_normalized.len, s, n);
}

static int method_is(h2o_req_t *req, const char *s, size_t n)
{
    return h2o_memis(req->method.base, req->method.len, s, n);
}

static void respond_method_not_allowed(h2o_req_t *req, const char *allowed)
{
    gyre_api_error_t err;
    gyre_api_error_set(&err, 405, "invalid_request_error", "method_not_allowed", NULL,
                       "%.*s %.*s is not allowed; use %s", (int)req->method.len, req->method.base,
                       (int)req->path_normalized.len, req->path_normalized.base, allowed);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allowed, strlen(allowed));
    gyre_respond_error(req, &err);
}

/*
 * A client's model is a name (common/wire.h): 1 to 256 bytes of 0x21-0x7E.
 * Anything else is refused here, before it can reach a route, an upstream
 * request or a header of the answer, with a message that says what is wrong
 * and where, without repeating the value.  Returns 0, or -1 with `err`.
 */
static int check_model(const char *model, const h2o_iovec_t *body, size_t start, size_t end, gyre_api_error_t *err)
{
    char why[96];
    size_t len = strlen(model);
    if (gyre_wire_name_problem(model, len, why, sizeof(why)) == NULL) {
        /* The parsed string ends at its first NUL: a "\u0000" in the JSON literal (the bytes at start..end)
         * would otherwise pass as the shorter name before it. */
        int nul = 0;
        for (size_t i = start; i + 1 < end && !nul; i++)
            if (body->base[i] == '\\') {
                nul = body->base[i + 1] == 'u' && i + 5 < end && memcmp(body->base + i + 2, "0000", 4) == 0;
                i++; /* the escaped byte is not the start of another escape */
            }
        if (!nul)
            return 0;
        snprintf(why, sizeof(why), "it has a control byte (0x00) at offset %zu", len);
    }
    gyre_api_error_set(err, 400, "invalid_request_error", "invalid_value", "model",
                       "'model' must be 1 to %d bytes of printable ASCII (0x21-0x7E); %s", GYRE_WIRE_NAME_MAX, why);
    return -1;
}

/* "chat", "embed", "primary/MODEL", ... for the 404 that lists what exists. */
static void append_model_names(const gyre_config_t *c, gyre_buf_t *b)
{
    size_t n = 0;
    for (size_t i = 0; i < c->nroutes; i++)
        gyre_buf_appendf(b, "%s'%s'", n++ ? ", " : "", c->routes[i].name);
    for (size_t i = 0; i < c->nproviders; i++)
        if (c->providers[i].direct) /* a provider clients may not address is not named to them either */
            gyre_buf_appendf(b, "%s'%s/<model>'", n++ ? ", " : "", c->providers[i].name);
    if (n == 0)
        gyre_buf_appends(b, "none");
}

/* The 404 for a model that is neither a route nor provider/model, in the client's dialect. */
static void respond_model_not_found(gyre_server_t *s, h2o_req_t *req, const char *model, gyre_client_dialect_t client)
{
    gyre_api_error_t err;
    gyre_buf_t names;
    gyre_buf_init(&names, 400);
    append_model_names(s->config, &names);
    if (names.len >= 380)
        names.len = 380; /* the message has a bound; the list is long enough by then */
    gyre_api_error_set(&err, 404, "invalid_request_error", "model_not_found", "model",
                       "the model '%.200s' does not exist on this gateway; available: %s", model,
                       names.base ? names.base : "");
    gyre_buf_dispose(&names);
    if (client == GYRE_CLIENT_ANTHROPIC)
        gyre_respond_anthropic_error(req, &err); /* which types by status: not_found_error */
    else
        gyre_respond_error(req, &err);
}

/* ok, or degraded with what is wrong with the trace path (writer.h): gyre still serves traffic, so 200 either way;
 * the body says what an operator must fix. */
static int on_healthz(gyre_server_t *s, h2o_req_t *req)
{
    static const char body[] = "{\"status\":\"ok\"}";
    if (s->writer == NULL) {
        gyre_respond_json(req, 200, body, sizeof(body) - 1);
        return 0;
    }
    gyre_buf_t b;
    gyre_buf_init(&b, 64 << 10);
    gyre_buf_appends(&b, "{\"status\":\"degraded\",\"problems\":[");
    if (gyre_writer_health(s->writer, &b) == 0) {
        gyre_buf_dispose(&b);
        gyre_respond_json(req, 200, body, sizeof(body) - 1);
        return 0;
    }
    gyre_buf_appends(&b, "]}");
    char *p = h2o_mem_alloc_pool(&req->pool, b.len);
    memcpy(p, b.base, b.len);
    gyre_respond_json(req, 200, p, b.len);
    gyre_buf_dispose(&b);
    return 0;
}

/*
 * GET /v1/models: the configured routes, in OpenAI's list shape, and nothing
 * else: which providers and models stand behind a route is the operator's to
 * know (the log, the traces, x-gyre-provider on an answer), not a listing for
 * any client key (issue 10).
 */
static int on_models(gyre_server_t *s, h2o_req_t *req)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    gyre_buf_appends(&b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < s->config->nroutes; i++) {
        const gyre_route_conf_t *r = &s->config->routes[i];
        gyre_buf_appends(&b, i ? ",{\"id\":" : "{\"id\":");
        gyre_buf_append_json_string(&b, r->name, strlen(r->name));
        gyre_buf_appends(&b, ",\"object\":\"model\",\"created\":0,\"owned_by\":\"gyre\"}");
    }
    gyre_buf_appends(&b, "]}");
    gyre_respond_json(req, 200, b.base, b.len);
    gyre_buf_dispose(&b);
    return 0;
}

/* The value of a request header, or an empty iovec. */
static h2o_iovec_t header_value(h2o_req_t *req, const char *name, size_t len)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, len, -1);
    return i == -1 ? h2o_iovec_init(NULL, 0) : req->headers.entries[i].value;
}

/* Cache-Control's no-cache (do not answer from the cache) and no-store (do not keep this answer either). */
static void cache_directives(h2o_req_t *req, int *no_read, int *no_store)
{
    h2o_iovec_t v = header_value(req, H2O_STRLIT("cache-control"));
    *no_read = *no_store = 0;
    for (size_t i = 0; i + 8 <= v.len; i++) {
        if (h2o_lcstris(v.base + i, 8, H2O_STRLIT("no-cache")))
            *no_read = 1;
        if (h2o_lcstris(v.base + i, 8, H2O_STRLIT("no-store")))
            *no_read = *no_store = 1;
    }
}

/* A cache hit: the stored OpenAI completion, in the client's dialect, whole or as a stream. */
static int respond_from_cache(h2o_req_t *req, gyre_call_t *call, const gyre_buf_t *entry)
{
    /* An entry is "provider\tmodel\n" then the completion. */
    const char *nl = memchr(entry->base, '\n', entry->len);
    const char *tab = nl ? memchr(entry->base, '\t', (size_t)(nl - entry->base)) : NULL;
    if (nl == NULL || tab == NULL)
        return -1;
    const char *completion = nl + 1;
    size_t clen = entry->len - (size_t)(completion - entry->base);
    gyre_buf_t out, sse;
    gyre_buf_init(&out, (size_t)256 << 20);
    gyre_buf_init(&sse, (size_t)256 << 20);
    int rc = 0;
    gyre_api_error_t err;
    if (call->stream) {
        rc = gyre_openai_completion_to_sse(completion, clen, call->include_usage, &sse);
        if (rc == 0 && call->client == GYRE_CLIENT_ANTHROPIC) {
            gyre_anthropic_encoder_t *enc = gyre_anthropic_encoder_create(NULL);
            rc = gyre_anthropic_encoder_feed(enc, sse.base, sse.len, &out);
            gyre_anthropic_encoder_destroy(enc);
        } else if (rc == 0) {
            gyre_buf_append(&out, sse.base, sse.len);
        }
    } else if (call->client == GYRE_CLIENT_ANTHROPIC) {
        rc = gyre_anthropic_response_from_openai(completion, clen, &out, &err);
    } else {
        rc = gyre_buf_append(&out, completion, clen);
    }
    if (rc == 0) {
        h2o_mem_pool_t *pool = &req->pool;
        gyre_trace_t *t = call->trace;
        t->cache_hit = 1;
        t->provider = gyre_tstr_dup(pool, entry->base, (size_t)(tab - entry->base));
        t->model = gyre_tstr_dup(pool, tab + 1, (size_t)(nl - tab - 1));
        if (call->capture)
            t->response_body = gyre_tstr_dup(pool, completion, clen);
        gyre_trace_read_completion(t, pool, completion, clen);
        gyre_wire_add_answer_header(pool, &req->res.headers, H2O_STRLIT("x-gyre-route"), call->route_name,
                                    strlen(call->route_name));
        h2o_iovec_t prov = h2o_strdup(pool, entry->base, (size_t)(tab - entry->base));
        h2o_iovec_t model = h2o_strdup(pool, tab + 1, (size_t)(nl - tab - 1));
        gyre_wire_add_answer_header(pool, &req->res.headers, H2O_STRLIT("x-gyre-provider"), prov.base, prov.len);
        gyre_wire_add_answer_header(pool, &req->res.headers, H2O_STRLIT("x-gyre-model"), model.base, model.len);
        gyre_wire_add_answer_header(pool, &req->res.headers, H2O_STRLIT("x-gyre-attempts"), H2O_STRLIT("0"));
        gyre_wire_add_answer_header(pool, &req->res.headers, H2O_STRLIT("x-gyre-cache"), H2O_STRLIT("hit"));
        if (call->stream) {
            req->res.status = 200;
            req->res.reason = "OK";
            h2o_add_header(pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                           H2O_STRLIT("text/event-stream; charset=utf-8"));
            req->res.content_length = out.len;
            h2o_send_inline(req, out.base, out.len);
        } else {
            gyre_respond_json(req, 200, out.base, out.len);
        }
    }
    gyre_buf_dispose(&out);
    gyre_buf_dispose(&sse);
    return rc;
}

/*
 * Whether a call's trace keeps the bodies (call->capture, the one switch):
 * only when traces are stored, and then as its route says (`capture:`), or
 * as `store: {capture:}` says for calls without a route.
 */
static int call_captures(const gyre_server_t *s, const gyre_route_conf_t *r)
{
    /* Bodies go where the trace goes: the store, or the OTLP collector (as message content). */
    int kept = s->writer != NULL || s->config->otlp.endpoint != NULL;
    return kept && (r != NULL ? r->capture : s->config->store_capture);
}

/*
 * Plans a call to route `target` (or to one provider) and hands it to the
 * proxy, unless the route's cache answers it.  `pivot` is the request in
 * OpenAI's shape (for the cache key), or NULL.
 */
static int dispatch(gyre_server_t *s, h2o_req_t *req, gyre_call_t *call, const gyre_target_ref_t *target,
                    const cJSON *pivot)
{
    gyre_worker_t *w = (gyre_worker_t *)req->conn->ctx;
    const gyre_config_t *c = s->config;
    const gyre_route_conf_t *r = target->route;
    call->route = r;
    call->route_name = r != NULL ? r->name : NULL;
    call->capture = call_captures(s, r); /* the route is known from here on */
    if (r != NULL) {
        size_t ri = (size_t)(r - c->routes);
        call->cands = h2o_mem_alloc_pool(&req->pool, sizeof(*call->cands) * (r->ntargets + r->nfallbacks));
        if (r->affinity_session) {
            h2o_iovec_t session = header_value(req, H2O_STRLIT("x-gyre-session"));
            if (session.len != 0)
                call->affinity = gyre_hash64(session.base, session.len, 0x67797265) | 1;
        }
        call->ncands = gyre_route_plan(r, w->route_states[ri], w->keypools, h2o_now(w->ctx.loop), &w->rng,
                                       call->affinity, call->cands);
        /* A stream is stored from what it adds up to, which is its first choice only: n > 1 streams are not. */
        const cJSON *n = pivot != NULL ? cJSON_GetObjectItemCaseSensitive(pivot, "n") : NULL;
        int multi_stream = call->stream && cJSON_IsNumber(n) && n->valuedouble > 1;
        if (r->cache && call->endpoint == GYRE_OPENAI_CHAT && pivot != NULL && s->caches[ri] != NULL &&
            !multi_stream) {
            int no_read, no_store;
            cache_directives(req, &no_read, &no_store);
            gyre_buf_t key;
            gyre_buf_init(&key, (size_t)64 << 20);
            if (gyre_cache_key(pivot, r->name, &key) == 0) {
                call->cache_key = h2o_strdup(&req->pool, key.base, key.len);
                if (!no_store)
                    call->cache = s->caches[ri];
                gyre_buf_t hit;
                gyre_buf_init(&hit, (size_t)256 << 20);
                int found = !no_read && gyre_cache_get(s->caches[ri], key.base, key.len, h2o_now(w->ctx.loop), &hit);
                int answered = found && respond_from_cache(req, call, &hit) == 0;
                gyre_buf_dispose(&hit);
                gyre_buf_dispose(&key);
                if (answered)
                    return 0;
            } else {
                gyre_buf_dispose(&key);
            }
        }
    } else {
        call->cands = h2o_mem_alloc_pool(&req->pool, sizeof(*call->cands));
        call->cands[0] = (gyre_candidate_t){target->provider, target->model, target->model_len, NULL, 0};
        call->ncands = 1;
    }
    gyre_proxy_start(w, req, call);
    return 0;
}

/* The call is made by on_req, before the body is read, so that its trace covers every answer. */
static void init_call(gyre_call_t *call, h2o_req_t *req, gyre_client_dialect_t client, gyre_openai_endpoint_t ep)
{
    call->client = client;
    call->endpoint = ep;
    call->body = req->entity;
}

/* Whether a resolved model may be called: a route always; "provider/model" where the provider has `direct: true`.
 * A refusal is the same 404 as for a provider that does not exist, so it tells nothing of which ones do. */
static int direct_allowed(const gyre_server_t *s, const gyre_target_ref_t *target)
{
    return target->route != NULL || s->config->providers[target->provider].direct;
}

static int model_request(gyre_server_t *s, h2o_req_t *req, gyre_openai_endpoint_t ep, gyre_call_t *call)
{
    gyre_worker_t *w = (gyre_worker_t *)req->conn->ctx;
    gyre_openai_request_t parsed;
    gyre_api_error_t err;
    if (gyre_openai_parse_request(ep, req->entity.base, req->entity.len, &parsed, &err) != 0) {
        gyre_respond_error(req, &err);
        return 0;
    }
    init_call(call, req, GYRE_CLIENT_OPENAI, ep);
    call->stream = parsed.stream;
    call->include_usage = parsed.include_usage;
    call->has_stream_options = parsed.has_stream_options;
    call->model_start = parsed.model_start;
    call->model_end = parsed.model_end;
    gyre_target_ref_t target;
    if (parsed.model != NULL &&
        check_model(parsed.model, &req->entity, parsed.model_start, parsed.model_end, &err) != 0) {
        gyre_respond_error(req, &err);
        gyre_openai_request_dispose(&parsed);
        return 0;
    }
    if (parsed.model != NULL) {
        if (gyre_route_resolve(s->config, parsed.model, strlen(parsed.model), &w->rng, &target) != 0 ||
            !direct_allowed(s, &target)) {
            respond_model_not_found(s, req, parsed.model, GYRE_CLIENT_OPENAI);
            gyre_openai_request_dispose(&parsed);
            return 0;
        }
        /* "provider/model" points into the parsed body, which dies with this call. */
        if (target.route == NULL)
            target.model = h2o_strdup(&req->pool, target.model, target.model_len).base;
    } else {
        /* A pass-through call with no model (file uploads, GET /v1/files/...):
         * the first provider that speaks OpenAI's API takes it. */
        size_t i = 0;
        while (i < s->config->nproviders && !gyre_dialect_for(s->config->providers[i].kind)->speaks_openai)
            i++;
        if (i == s->config->nproviders) {
            gyre_api_error_set(&err, 503, "upstream_error", "no_provider", NULL,
                               "no provider of kind openai or azure is configured to take %.*s",
                               (int)req->path_normalized.len, req->path_normalized.base);
            gyre_respond_error(req, &err);
            gyre_openai_request_dispose(&parsed);
            return 0;
        }
        target = (gyre_target_ref_t){.provider = i, .model = "", .model_len = 0};
    }
    int r = dispatch(s, req, call, &target, ep == GYRE_OPENAI_CHAT ? parsed.json : NULL);
    gyre_openai_request_dispose(&parsed);
    return r;
}

/* POST /v1/messages: Anthropic's Messages API, for Anthropic SDK clients. */
static int messages_request(gyre_server_t *s, h2o_req_t *req, gyre_call_t *call)
{
    gyre_worker_t *w = (gyre_worker_t *)req->conn->ctx;
    gyre_api_error_t err;
    cJSON *json = gyre_anthropic_parse_request(req->entity.base, req->entity.len, &err);
    if (json == NULL) {
        gyre_respond_anthropic_error(req, &err);
        return 0;
    }
    /* Anthropic's answers carry their id as request-id, which its SDK reports. */
    h2o_iovec_t id = gyre_request_id(w, req);
    gyre_wire_add_answer_header(&req->pool, &req->res.headers, H2O_STRLIT("request-id"), id.base, id.len);
    init_call(call, req, GYRE_CLIENT_ANTHROPIC, GYRE_OPENAI_CHAT);
    call->stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(json, "stream"));
    call->include_usage = 1;
    if (gyre_json_find_member(req->entity.base, req->entity.len, "model", &call->model_start, &call->model_end) != 0)
        call->model_start = call->model_end = 0;
    const char *model = cJSON_GetObjectItemCaseSensitive(json, "model")->valuestring;
    if (check_model(model, &req->entity, call->model_start, call->model_end, &err) != 0) {
        gyre_respond_anthropic_error(req, &err);
        cJSON_Delete(json);
        return 0;
    }
    gyre_target_ref_t target;
    if (gyre_route_resolve(s->config, model, strlen(model), &w->rng, &target) != 0 || !direct_allowed(s, &target)) {
        respond_model_not_found(s, req, model, GYRE_CLIENT_ANTHROPIC);
        cJSON_Delete(json);
        return 0;
    }
    if (target.route == NULL)
        target.model = h2o_strdup(&req->pool, target.model, target.model_len).base;
    cJSON *pivot = NULL;
    if (target.route != NULL && target.route->cache)
        pivot = gyre_anthropic_request_to_openai(json, &err);
    int r = dispatch(s, req, call, &target, pivot);
    cJSON_Delete(pivot);
    cJSON_Delete(json);
    return r;
}

/* A call and its trace, for a request on a model endpoint. */
static gyre_call_t *begin_call(gyre_worker_t *w, h2o_req_t *req)
{
    gyre_call_t *call = h2o_mem_alloc_pool(&req->pool, sizeof(*call));
    memset(call, 0, sizeof(*call));
    /* Every call has a trace, stored or not: metrics are read from it.  Bodies are kept only when the trace
     * goes somewhere (the store, the OTLP collector) and its route captures them (call->capture is the one switch for them); until dispatch
     * knows the route, the calls without one say (a bad request never gets one). */
    call->trace = h2o_mem_alloc_pool(&req->pool, sizeof(*call->trace));
    gyre_trace_begin(call->trace, req, &w->rng, gyre_request_id(w, req));
    call->capture = call_captures(w->server, NULL);
    gyre_respond_take_body(req); /* an earlier request's, on this thread */
    return call;
}

/* A call gyre answered itself (a bad request, an unknown model, a cache hit): its trace is complete now. */
static void end_local_call(gyre_server_t *s, gyre_worker_t *w, h2o_req_t *req, gyre_call_t *call)
{
    if (call->proxied)
        return; /* the proxy finishes it when the answer is over */
    gyre_trace_t *t = call->trace;
    t->ended_us = gyre_trace_now_us();
    t->status = req->res.status;
    t->stream = call->stream;
    if (call->route_name != NULL)
        t->route = gyre_tstr_dup(&req->pool, call->route_name, strlen(call->route_name));
    if (call->capture && req->entity.len != 0)
        t->request_body = (gyre_tstr_t){req->entity.base, req->entity.len};
    h2o_iovec_t answered = gyre_respond_take_body(req);
    if (call->capture && t->response_body.len == 0 && answered.len != 0)
        t->response_body = (gyre_tstr_t){answered.base, answered.len};
    /* A cache hit names the provider that answered when the entry was stored: its own prices apply. */
    const gyre_provider_conf_t *p =
        t->provider.len != 0 ? gyre_config_find_provider(s->config, t->provider.p, t->provider.len) : NULL;
    gyre_worker_trace_done(w, t, &req->pool, call->route, p);
}

/* The body's JSON lives in the worker's arena for the length of this call. */
static int on_model_request(gyre_server_t *s, h2o_req_t *req, gyre_openai_endpoint_t ep)
{
    gyre_worker_t *w = (gyre_worker_t *)req->conn->ctx;
    gyre_call_t *call = begin_call(w, req);
    gyre_json_arena_begin();
    int r = model_request(s, req, ep, call);
    gyre_json_arena_end();
    end_local_call(s, w, req, call);
    return r;
}

static int on_messages_request(gyre_server_t *s, h2o_req_t *req)
{
    gyre_worker_t *w = (gyre_worker_t *)req->conn->ctx;
    gyre_call_t *call = begin_call(w, req);
    gyre_json_arena_begin();
    int r = messages_request(s, req, call);
    gyre_json_arena_end();
    end_local_call(s, w, req, call);
    return r;
}

/*
 * Stage 2, access: the request's credential against what its path needs (src/control/access.h).  A refusal is
 * answered here, 401 (with WWW-Authenticate: Bearer) or 403, in the client's dialect: Anthropic's for
 * /v1/messages, OpenAI's for everything else.  Nothing of the credential is echoed.
 */
static int access_allowed(gyre_server_t *s, h2o_req_t *req)
{
    gyre_access_need_t need = gyre_access_need_for(req->path_normalized.base, req->path_normalized.len);
    h2o_iovec_t authz = header_value(req, H2O_STRLIT("authorization"));
    h2o_iovec_t xkey = header_value(req, H2O_STRLIT("x-api-key"));
    const char *cred = NULL;
    size_t clen = 0;
    int found = gyre_access_credential(authz.base, authz.len, xkey.base, xkey.len, &cred, &clen);
    gyre_access_verdict_t v = gyre_access_decide(s->access, need, found, cred, clen);
    if (v == GYRE_ACCESS_ALLOW)
        return 1;
    gyre_api_error_t err;
    if (v == GYRE_ACCESS_FORBIDDEN) {
        gyre_api_error_set(&err, 403, "invalid_request_error", "insufficient_permissions", NULL, "%s",
                           gyre_access_message(v, need));
    } else {
        gyre_api_error_set(&err, 401, "invalid_request_error", "invalid_api_key", NULL, "%s",
                           gyre_access_message(v, need));
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, H2O_STRLIT("Bearer"));
    }
    if (path_is(req, H2O_STRLIT("/v1/messages")))
        gyre_respond_anthropic_error(req, &err);
    else
        gyre_respond_error(req, &err);
    return 0;
}

/*
 * A pass-through path is forwarded only under a `passthrough:` prefix, and an admin or organization path never.
 * Both the normalised path and the path as sent are checked: the raw one is what goes upstream.
 */
static int passthrough_allowed(gyre_server_t *s, h2o_req_t *req)
{
    gyre_pass_verdict_t n = gyre_access_passthrough(s->config, req->path_normalized.base, req->path_normalized.len);
    gyre_pass_verdict_t r = gyre_access_passthrough(s->config, req->path.base, req->path.len);
    if (n == GYRE_PASS_ALLOWED && r == GYRE_PASS_ALLOWED)
        return 1;
    gyre_api_error_t err;
    const char *why = n == GYRE_PASS_NEVER || r == GYRE_PASS_NEVER
                          ? "this gateway never passes admin or organization paths to a provider"
                          : "this gateway passes only the paths its passthrough: list names";
    gyre_api_error_set(&err, 403, "invalid_request_error", "path_not_allowed", NULL, "%.*s %.*s is not allowed: %s",
                       (int)req->method.len, req->method.base, (int)req->path_normalized.len, req->path_normalized.base,
                       why);
    gyre_respond_error(req, &err);
    return 0;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    gyre_server_t *s = ((gyre_handler_t *)self)->server;
    gyre_worker_t *w = (gyre_worker_t *)req->conn->ctx;
    gyre_request_id(w, req);
    /* HTTP/1 framing (RFC 9112) and the bound on the head, before anything reads the request. */
    if (gyre_conn_check_head(w, req))
        return 0;
    /* While shutting down, a kept-alive connection is closed after its
     * current answer, so clients move on before the process exits. */
    if (w->shutting_down)
        req->http1_is_persistent = 0;

    if (path_is(req, H2O_STRLIT("/healthz")))
        return on_healthz(s, req);
    if (!access_allowed(s, req))
        return 0;
    if (path_is(req, H2O_STRLIT("/metrics")))
        return gyre_server_serve_metrics(w, req);
    if (gyre_api_handle(w, req))
        return 0;
    /* A /v1 path is checked as it came, before it is routed: gyre routes on h2o's normalised path but passes
     * the raw one on (GYRE_OPENAI_OTHER), so a dot-segment, raw or percent-encoded ("/v1/%2e%2e/x",
     * "..;"), an encoded slash or backslash or an empty segment would reach the provider as its own path. */
    if ((req->path.len >= 4 && memcmp(req->path.base, "/v1/", 4) == 0) ||
        (req->path_normalized.len >= 4 && memcmp(req->path_normalized.base, "/v1/", 4) == 0)) {
        const char *problem = gyre_wire_target_problem(req->path.base, req->path.len, 1);
        if (problem != NULL) {
            gyre_api_error_t err;
            gyre_api_error_set(&err, 400, "invalid_request_error", "invalid_path", NULL,
                               "the path %s; gyre refuses it rather than pass it to a provider", problem);
            gyre_respond_error(req, &err);
            return 0;
        }
    }
    if (path_is(req, H2O_STRLIT("/v1/traces")))
        return gyre_otlp_handle(w, req); /* OTLP/HTTP ingest, not a model call */
    if (path_is(req, H2O_STRLIT("/v1/models"))) {
        if (!method_is(req, H2O_STRLIT("GET")) && !method_is(req, H2O_STRLIT("HEAD"))) {
            respond_method_not_allowed(req, "GET");
            return 0;
        }
        return on_models(s, req);
    }
    if (path_is(req, H2O_STRLIT("/v1/chat/completions")) || path_is(req, H2O_STRLIT("/v1/embeddings"))) {
        if (!method_is(req, H2O_STRLIT("POST"))) {
            respond_method_not_allowed(req, "POST");
            return 0;
        }
        return on_model_request(s, req,
                                path_is(req, H2O_STRLIT("/v1/embeddings")) ? GYRE_OPENAI_EMBEDDINGS : GYRE_OPENAI_CHAT);
    }
    if (path_is(req, H2O_STRLIT("/v1/messages"))) {
        if (!method_is(req, H2O_STRLIT("POST"))) {
            gyre_api_error_t err;
            gyre_api_error_set(&err, 405, "invalid_request_error", "method_not_allowed", NULL,
                               "%.*s /v1/messages is not allowed; use POST", (int)req->method.len, req->method.base);
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("POST"));
            gyre_respond_anthropic_error(req, &err);
            return 0;
        }
        return on_messages_request(s, req);
    }
    if (req->path_normalized.len >= 4 && memcmp(req->path_normalized.base, "/v1/", 4) == 0) {
        if (!passthrough_allowed(s, req))
            return 0;
        return on_model_request(s, req, GYRE_OPENAI_OTHER);
    }

    gyre_api_error_t err;
    gyre_api_error_set(&err, 404, "invalid_request_error", "unknown_url", NULL,
                       "unknown path %.*s; gyre serves /v1/chat/completions, /v1/messages, /v1/embeddings, "
                       "/v1/models, other /v1/ paths (passed through) and /healthz",
                       (int)req->path_normalized.len, req->path_normalized.base);
    gyre_respond_error(req, &err);
    return 0;
}

/*
 * The output filter.  h2o answers some bad requests itself before any
 * handler runs (a body over max_request_entity_size gets 413, a malformed
 * chunked body 400), as plain text.  gyre's own answers are all JSON, so a
 * text/plain error here is h2o's: its body is replaced by the OpenAI shape,
 * and it gets its x-request-id like every other answer.
 */
typedef struct error_ostream {
    h2o_ostream_t super;
    h2o_iovec_t body;
    int sent;
} error_ostream_t;

static void error_ostream_send(h2o_ostream_t *self_, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                               h2o_send_state_t state)
{
    error_ostream_t *self = (void *)self_;
    (void)bufs;
    (void)bufcnt;
    if (!self->sent) {
        self->sent = 1;
        h2o_ostream_send_next(&self->super, req, &self->body, 1, state);
    } else {
        h2o_ostream_send_next(&self->super, req, NULL, 0, state);
    }
}

static int has_prefix(h2o_iovec_t v, const char *p, size_t n)
{
    return v.len >= n && memcmp(v.base, p, n) == 0;
}

/* On the fallback path, where h2o's own errors land (see above).  Answers
 * from the handler on "/" get their id in on_req. */
static void on_setup_error_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    (void)self;
    gyre_request_id((gyre_worker_t *)req->conn->ctx, req);
    /* h2o closes the connection after these answers (a body over max_body_bytes, a broken chunked body) while the
     * client may still be sending its body: a lingering close lets the answer reach it instead of a reset. */
    if (req->res.status >= 400 && !req->http1_is_persistent)
        gyre_conn_linger(req);
    ssize_t ct = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (req->res.status >= 400 && ct != -1 &&
        has_prefix(req->res.headers.entries[ct].value, H2O_STRLIT("text/plain"))) {
        gyre_api_error_t err;
        if (req->res.status == 413)
            gyre_api_error_set(&err, 413, "invalid_request_error", "request_too_large", NULL,
                               "the request body is larger than this gateway's limit of %zu bytes (max_body_bytes)",
                               req->conn->ctx->globalconf->max_request_entity_size);
        else
            gyre_api_error_set(&err, req->res.status, "invalid_request_error", "bad_request", NULL,
                               "the HTTP request could not be read (%s)", req->res.reason ? req->res.reason : "error");
        gyre_buf_t b;
        gyre_buf_init(&b, 4096);
        gyre_api_error_to_json(&err, &b);
        error_ostream_t *os = (void *)h2o_add_ostream(req, sizeof(*os), slot);
        os->body = h2o_strdup(&req->pool, b.base, b.len);
        os->sent = 0;
        os->super.do_send = error_ostream_send;
        gyre_buf_dispose(&b);
        req->res.headers.entries[ct].value = h2o_iovec_init(H2O_STRLIT("application/json"));
        req->res.content_length = os->body.len;
        slot = &os->super.next;
    }
    h2o_setup_next_ostream(req, slot);
}

void gyre_handlers_register(h2o_globalconf_t *conf, gyre_server_t *server)
{
    h2o_hostconf_t *host = h2o_config_register_host(conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    gyre_handler_t *h = (void *)h2o_create_handler(path, sizeof(*h));
    h->super.on_req = on_req;
    h->server = server;
    /* Errors raised before routing (body too large) use the fallback path. */
    h2o_create_filter(&host->fallback_path, sizeof(h2o_filter_t))->on_setup_ostream = on_setup_error_ostream;
}
