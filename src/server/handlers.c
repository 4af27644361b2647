/*
 * The stages of a request up to the proxy (their order is in stages.c), and
 * the output filter.  /v1/chat/completions, /v1/embeddings and Anthropic's
 * /v1/messages are read and checked before anything goes upstream, resolved
 * to a route (or one provider), planned, and answered from the route's
 * cache or handed to the proxy; every other /v1 path passes through to a
 * provider that speaks OpenAI's API, routed by the body's model when it has
 * one.
 */
#include "server/handlers.h"

#include "server/admin.h"
#include "server/api.h"
#include "server/feedback.h"

#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/wire.h"
#include "control/access.h"
#include "control/keys.h"
#include "dialect/client.h"
#include "dialect/dialect.h"
#include "dialect/openai.h"
#include "dialect/openai_stream.h"
#include "dialect/responses.h"
#include "otlp/endpoint.h"
#include "proxy/call.h"
#include "proxy/proxy.h"
#include "proxy/respond.h"
#include "route/route.h"
#include "route/stage.h"
#include "server/conn.h"
#include "server/previous.h"
#include "server/server.h"
#include "server/stages.h"
#include "trace/access_log.h"
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

static void respond_method_not_allowed(h2o_req_t *req, const gyre_client_dialect_t *client, const char *allowed)
{
    gyre_api_error_t err;
    gyre_api_error_set(&err, 405, "invalid_request_error", "method_not_allowed", NULL,
                       "%.*s %.*s is not allowed; use %s", (int)req->method.len, req->method.base,
                       (int)req->path_normalized.len, req->path_normalized.base, allowed);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allowed, strlen(allowed));
    gyre_respond_client_error(req, client, &err);
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

/* "chat", "embed", "primary/MODEL", ... for the 404 that lists what exists.  The list stops at the first name
 * that does not fit `b` (the message has a bound), so a cut list is the first names in order, never one with a
 * name missing from its middle; the caller cuts it where the message needs. */
static void append_model_names(const gyre_config_t *c, gyre_buf_t *b)
{
    size_t n = 0;
    for (size_t i = 0; i < c->nroutes && !gyre_buf_failed(b); i++)
        gyre_buf_appendf(b, "%s'%s'", n++ ? ", " : "", c->routes[i].name);
    for (size_t i = 0; i < c->nproviders && !gyre_buf_failed(b); i++)
        if (c->providers[i].direct) /* a provider clients may not address is not named to them either */
            gyre_buf_appendf(b, "%s'%s/<model>'", n++ ? ", " : "", c->providers[i].name);
    if (n == 0)
        gyre_buf_appends(b, "none");
}

/* The 404 for a model that is neither a route nor provider/model, in the client's dialect. */
static void respond_model_not_found(const gyre_config_t *config, h2o_req_t *req, const char *model,
                                    const gyre_client_dialect_t *client)
{
    gyre_api_error_t err;
    gyre_buf_t names;
    gyre_buf_init(&names, 400);
    append_model_names(config, &names);
    if (names.len >= 380)
        names.len = 380; /* the message has a bound; the list is long enough by then */
    gyre_api_error_set(&err, 404, "invalid_request_error", "model_not_found", "model",
                       "the model '%.200s' does not exist on this gateway; available: %s", model,
                       names.base ? names.base : "");
    gyre_buf_dispose(&names);
    gyre_respond_client_error(req, client, &err); /* Anthropic's type for a 404: not_found_error */
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
 * any client key.
 */
static int on_models(const gyre_config_t *config, h2o_req_t *req)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    gyre_buf_appends(&b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < config->nroutes; i++) {
        const gyre_route_conf_t *r = &config->routes[i];
        gyre_buf_appends(&b, i ? ",{\"id\":" : "{\"id\":");
        gyre_buf_append_json_string(&b, r->name, strlen(r->name));
        gyre_buf_appends(&b, ",\"object\":\"model\",\"created\":0,\"owned_by\":\"gyre\"}");
    }
    gyre_buf_appends(&b, "]}");
    /* The one check of the appends above: past 1 MiB (some 3,000 routes) the list is refused with a 500 that
     * says so, never sent cut. */
    if (gyre_buf_failed(&b)) {
        gyre_api_error_t err;
        gyre_api_error_set(&err, 500, "server_error", "response_too_large", NULL,
                           "the list of models is longer than 1 MiB");
        gyre_respond_error(req, &err);
    } else {
        gyre_respond_json(req, 200, b.base, b.len);
    }
    gyre_buf_dispose(&b);
    return 0;
}

/* The value of a request header, or an empty iovec. */
static h2o_iovec_t header_value(h2o_req_t *req, const char *name, size_t len)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, len, -1);
    return i == -1 ? h2o_iovec_init(NULL, 0) : req->headers.entries[i].value;
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
    gyre_buf_t out;
    gyre_buf_init(&out, (size_t)256 << 20);
    int rc = 0;
    gyre_api_error_t err;
    if (call->stream) {
        rc = gyre_client_dialect_replay(call->client, completion, clen, call->include_usage, &out);
    } else {
        gyre_client_call_t cc = {.id = call->answer_id, .include_usage = call->include_usage};
        rc = call->client->response(&cc, completion, clen, &out, &err);
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
    return rc;
}

/*
 * Whether a call's trace keeps the bodies (call->capture, the one switch):
 * only when traces are stored, and then as its route says (`capture:`), or
 * as `store: {capture:}` says for calls without a route.
 */
static int call_captures(const gyre_server_t *s, const gyre_config_t *config, const gyre_route_conf_t *r)
{
    /* Bodies go where the trace goes: the store, or the OTLP collector (as message content). */
    int kept = s->writer != NULL || s->config->otlp.endpoint != NULL;
    return kept && (r != NULL ? r->capture : config->store_capture);
}

/*
 * Stage 4, route: plans the call to its target, a route (its strategy, breakers and affinity) or one provider,
 * and answers it from the route's cache when it can.  c->pivot is the request in OpenAI's shape (for the cache
 * key), or NULL.
 */
/*
 * A managed key with allow lists (control/keys.h) may call only the models and routes they name.  Checked here,
 * at the start of the route stage, because only now is the model resolved to its route; a refusal is a 403 in
 * the client's dialect that names the model (or the route), and the call's trace records it.
 */
static int key_allows_target(gyre_stage_ctx_t *sc)
{
    const gyre_target_ref_t *t = &sc->target;
    char model[512];
    if (t->route != NULL)
        snprintf(model, sizeof(model), "%s", t->route_name);
    else
        snprintf(model, sizeof(model), "%s/%.*s", sc->worker->super.config->providers[t->provider].name,
                 (int)(t->model_len < 256 ? t->model_len : 256), t->model);
    const char *what = "model";
    if (gyre_keys_allows(sc->server->keys, sc->worker->super.id, sc->principal.key_id,
                         t->route != NULL ? t->route_name : NULL, model, &what))
        return 1;
    gyre_api_error_t err;
    if (strcmp(what, "route") == 0)
        gyre_api_error_set(&err, 403, "invalid_request_error", "route_not_allowed", "model",
                           "the API key %s may not use the route of the model '%.256s': it is not in the key's "
                           "routes",
                           sc->principal.key_id, model);
    else
        gyre_api_error_set(&err, 403, "invalid_request_error", "model_not_allowed", "model",
                           "the API key %s may not use the model '%.256s': it is not in the key's models",
                           sc->principal.key_id, model);
    gyre_respond_client_error(sc->req, sc->client, &err);
    return 0;
}

gyre_stage_result_t gyre_stage_route(gyre_stage_ctx_t *sc)
{
    if (sc->principal.restricted && sc->server->keys != NULL && !key_allows_target(sc))
        return GYRE_STAGE_DONE;
    gyre_server_t *s = sc->server;
    h2o_req_t *req = sc->req;
    gyre_call_t *call = sc->call;
    gyre_ctx_t *w = &sc->worker->super;
    const gyre_route_conf_t *r = sc->target.route;
    call->route = r;
    call->route_name = r != NULL ? r->name : NULL;
    call->capture = call_captures(s, w->config, r); /* the route is known from here on */
    /* The decision is route/'s (gyre_route_stage); here it is only read from the request and carried out.  The
     * headers are looked for only where the route reads them (the plain path pays for no scan). */
    h2o_iovec_t session =
        r != NULL && r->affinity_session ? header_value(req, H2O_STRLIT("x-gyre-session")) : h2o_iovec_init(NULL, 0);
    h2o_iovec_t cache_control =
        r != NULL && r->cache ? header_value(req, H2O_STRLIT("cache-control")) : h2o_iovec_init(NULL, 0);
    gyre_route_env_t env = {w->config, w->route_states, w->keypools, w->caches, &w->rng, h2o_now(w->ctx.loop),
                            w->overrides};
    gyre_route_ask_t ask = {.target = sc->target,
                            .session = session.base,
                            .session_len = session.len,
                            .cache_control = cache_control.base,
                            .cache_control_len = cache_control.len,
                            .pivot = sc->pivot,
                            .chat = call->endpoint == GYRE_OPENAI_CHAT,
                            .stream = call->stream};
    gyre_route_decision_t d;
    call->cands = h2o_mem_alloc_pool(&req->pool, sizeof(*call->cands) * gyre_route_plan_len(&sc->target));
    gyre_route_stage(&env, &ask, call->cands, &d);
    call->ncands = d.ncands;
    call->affinity = d.affinity;
    if (d.keyed)
        call->cache_key = h2o_strdup(&req->pool, d.cache_key.base, d.cache_key.len);
    call->cache = d.store;
    int answered = d.hit && respond_from_cache(req, call, &d.hit_entry) == 0;
    gyre_route_decision_dispose(&d);
    return answered ? GYRE_STAGE_DONE : GYRE_STAGE_GO;
}

/* Stage 6, attempts: the proxy takes the call, and with it the relay and the finish (src/proxy/). */
gyre_stage_result_t gyre_stage_attempt(gyre_stage_ctx_t *c)
{
    gyre_proxy_start(&c->worker->super, c->req, c->call);
    return GYRE_STAGE_DONE;
}

/* The call is made by on_req, before the body is read, so that its trace covers every answer. */
static void init_call(gyre_call_t *call, h2o_req_t *req, const gyre_client_dialect_t *client,
                      gyre_openai_endpoint_t ep)
{
    call->client = client;
    call->endpoint = ep;
    call->body = req->entity;
}

/* Whether a resolved model may be called: a route always; "provider/model" where the provider has `direct: true`.
 * A refusal is the same 404 as for a provider that does not exist, so it tells nothing of which ones do. */
static int direct_allowed(const gyre_config_t *config, const gyre_target_ref_t *target)
{
    return target->route != NULL || config->providers[target->provider].direct;
}

/* The body of a call on an OpenAI endpoint: parsed and checked, its model resolved to a target. */
static gyre_stage_result_t parse_openai(gyre_stage_ctx_t *c)
{
    const gyre_config_t *config = c->worker->super.config; /* the configuration in force on this worker */
    h2o_req_t *req = c->req;
    gyre_openai_endpoint_t ep = c->endpoint;
    gyre_call_t *call = c->call;
    gyre_openai_request_t parsed;
    gyre_api_error_t err;
    if (gyre_openai_parse_request(ep, req->entity.base, req->entity.len, &parsed, &err) != 0) {
        gyre_respond_error(req, &err);
        return GYRE_STAGE_DONE;
    }
    init_call(call, req, &gyre_client_openai, ep);
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
        return GYRE_STAGE_DONE;
    }
    if (parsed.model != NULL) {
        if (gyre_route_resolve(config, parsed.model, strlen(parsed.model), &target) != 0 ||
            !direct_allowed(config, &target)) {
            respond_model_not_found(config, req, parsed.model, &gyre_client_openai);
            gyre_openai_request_dispose(&parsed);
            return GYRE_STAGE_DONE;
        }
        /* "provider/model" points into the parsed body, which dies with this call. */
        if (target.route == NULL)
            target.model = h2o_strdup(&req->pool, target.model, target.model_len).base;
    } else {
        /* A pass-through call with no model (file uploads, GET /v1/files/...):
         * the first provider that speaks OpenAI's API takes it. */
        size_t i = 0;
        while (i < config->nproviders && !gyre_dialect_for(config->providers[i].kind)->speaks_openai)
            i++;
        if (i == config->nproviders) {
            gyre_api_error_set(&err, 503, "upstream_error", "no_provider", NULL,
                               "no provider of kind openai or azure is configured to take %.*s",
                               (int)req->path_normalized.len, req->path_normalized.base);
            gyre_respond_error(req, &err);
            gyre_openai_request_dispose(&parsed);
            return GYRE_STAGE_DONE;
        }
        target = (gyre_target_ref_t){.provider = i, .model = "", .model_len = 0};
    }
    /* The parsed body lives until the stages are finished: the route's cache key is made from it. */
    c->target = target;
    c->openai = parsed;
    c->have_openai = 1;
    c->pivot = ep == GYRE_OPENAI_CHAT ? c->openai.json : NULL;
    return GYRE_STAGE_GO;
}

/* The body of a call in a client dialect of the table other than the pivot's (/v1/messages, ...): read by the
 * dialect into the pivot, its model resolved to a target. */
/*
 * A Responses request that only OpenAI can serve (hosted tools, item references, a response id that is not
 * gyre's) goes on as an OpenAI pass-through of POST /v1/responses, which plans only OpenAI-speaking providers.
 */
static gyre_stage_result_t parse_as_passthrough(gyre_stage_ctx_t *c)
{
    c->call->answer_id = NULL;
    c->client = &gyre_client_openai;
    c->endpoint = GYRE_OPENAI_OTHER;
    return parse_openai(c);
}

static gyre_stage_result_t parse_client(gyre_stage_ctx_t *c)
{
    h2o_req_t *req = c->req;
    gyre_call_t *call = c->call;
    gyre_ctx_t *w = &c->worker->super;
    const gyre_client_dialect_t *client = c->client;
    gyre_api_error_t err;
    gyre_client_request_t creq;
    if (client->parse(req->entity.base, req->entity.len, &creq, &err) != 0) {
        if (client == &gyre_client_responses && err.code == gyre_responses_native_only)
            return parse_as_passthrough(c);
        gyre_respond_client_error(req, client, &err);
        return GYRE_STAGE_DONE;
    }
    c->client_pivot = creq.pivot; /* deleted when the stages are finished */
    /* An API whose path names the model (Gemini's): the path's part of the request. */
    if (client->from_path != NULL &&
        client->from_path(req->path_normalized.base, req->path_normalized.len, &creq, &err) < 0) {
        gyre_respond_client_error(req, client, &err);
        return GYRE_STAGE_DONE;
    }
    if (client->request_id_header != NULL) {
        /* Some APIs carry the answer's id in a header of their own, which their SDK reports. */
        h2o_iovec_t id = gyre_request_id(w, req);
        gyre_wire_add_answer_header(&req->pool, &req->res.headers, client->request_id_header,
                                    strlen(client->request_id_header), id.base, id.len);
    }
    init_call(call, req, client, GYRE_OPENAI_CHAT);
    call->stream = creq.stream;
    call->include_usage = creq.include_usage;
    call->has_stream_options = creq.has_stream_options;
    call->model_start = creq.model_start;
    call->model_end = creq.model_end;
    const char *model = creq.model != NULL ? creq.model : "";
    if (check_model(model, &req->entity, call->model_start, call->model_end, &err) != 0) {
        gyre_respond_client_error(req, client, &err);
        return GYRE_STAGE_DONE;
    }
    if (client == &gyre_client_responses) {
        /* gyre's answer id names its trace; previous_response_id is read back from the store (server/previous.h),
         * its earlier turns going into the pivot (and so into the cache key). */
        gyre_previous_answer_id(req, call);
        switch (gyre_previous_resolve(c->worker, req, call, creq.pivot, &err)) {
        case GYRE_PREVIOUS_ERROR:
            gyre_respond_client_error(req, client, &err);
            return GYRE_STAGE_DONE;
        case GYRE_PREVIOUS_NATIVE:
            return parse_as_passthrough(c);
        default: break;
        }
    }
    gyre_target_ref_t target;
    if (gyre_route_resolve(w->config, model, strlen(model), &target) != 0 || !direct_allowed(w->config, &target)) {
        respond_model_not_found(w->config, req, model, client);
        return GYRE_STAGE_DONE;
    }
    if (target.route == NULL)
        target.model = h2o_strdup(&req->pool, target.model, target.model_len).base;
    c->target = target;
    c->pivot = creq.pivot;
    return GYRE_STAGE_GO;
}

/* Who called, on the call's trace: the gateway key's id and team, and its agent (which wins over x-gyre-agent). */
static void principal_to_trace(gyre_stage_ctx_t *c)
{
    gyre_trace_t *t = c->call->trace;
    h2o_mem_pool_t *pool = &c->req->pool;
    const gyre_principal_t *p = &c->principal;
    if (p->key_id[0] != '\0')
        t->client_key_id = gyre_tstr_dup(pool, p->key_id, strlen(p->key_id));
    if (p->team[0] != '\0')
        t->team = gyre_tstr_dup(pool, p->team, strlen(p->team));
    if (p->agent[0] != '\0')
        t->agent = gyre_tstr_dup(pool, p->agent, strlen(p->agent));
}

/* A call and its trace, for a request on a model endpoint. */
static gyre_call_t *begin_call(gyre_worker_t *w, h2o_req_t *req)
{
    gyre_call_t *call = h2o_mem_alloc_pool(&req->pool, sizeof(*call));
    memset(call, 0, sizeof(*call));
    /* Every call has a trace, stored or not: metrics are read from it.  Bodies are kept only when the trace
     * goes somewhere (the store, the OTLP collector) and its route captures them (call->capture is the one switch for them); until the route stage
     * knows the route, the calls without one say (a bad request never gets one). */
    call->trace = h2o_mem_alloc_pool(&req->pool, sizeof(*call->trace));
    gyre_trace_begin(call->trace, req, &w->super.rng, gyre_request_id(&w->super, req));
    call->capture = call_captures(w->server, w->super.config, NULL);
    gyre_respond_take_body(req); /* an earlier request's, on this thread */
    return call;
}

/*
 * Stage 1, parse and validate, the body (a model call's): the call and its trace begin, and the body is read in
 * the client's dialect.  Its JSON lives in the worker's arena until the stages are finished.
 */
gyre_stage_result_t gyre_stage_parse(gyre_stage_ctx_t *c)
{
    c->call = begin_call(c->worker, c->req);
    principal_to_trace(c);
    gyre_json_arena_begin();
    c->in_arena = 1;
    /* The pivot's own API reads every OpenAI endpoint (embeddings, passed-through paths); the table's other
     * dialects, their own. */
    return c->client == &gyre_client_openai ? parse_openai(c) : parse_client(c);
}

/* A call gyre answered itself (a bad request, an unknown model, a cache hit): its trace is complete now. */
static void end_local_call(gyre_worker_t *w, h2o_req_t *req, gyre_call_t *call)
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
        t->provider.len != 0 ? gyre_config_find_provider(w->super.config, t->provider.p, t->provider.len) : NULL;
    gyre_ctx_trace_done(&w->super, t, &req->pool, call->route, p);
}

/* After the stages: the parsed body is let go, the arena closed, and a call answered here finished. */
void gyre_stage_finish(gyre_stage_ctx_t *c)
{
    if (c->have_openai)
        gyre_openai_request_dispose(&c->openai);
    cJSON_Delete(c->client_pivot);
    if (c->in_arena)
        gyre_json_arena_end();
    if (c->call != NULL)
        end_local_call(c->worker, c->req, c->call);
}

/*
 * The key of a Gemini API request: its x-goog-api-key header, else its ?key= query parameter (which only the
 * access check reads: traces and logs record the normalised path, which has no query).
 */
static h2o_iovec_t gemini_key(h2o_req_t *req)
{
    h2o_iovec_t k = header_value(req, H2O_STRLIT("x-goog-api-key"));
    if (k.len != 0 || req->query_at == SIZE_MAX)
        return k;
    const char *q = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp != NULL ? amp : end;
        if (stop - q > 4 && memcmp(q, "key=", 4) == 0)
            return h2o_iovec_init(q + 4, (size_t)(stop - q - 4));
        q = stop + 1;
    }
    return k;
}

/*
 * Stage 2, access: the request's credential against what its path needs (src/control/access.h).  A refusal is
 * answered here, 401 (with WWW-Authenticate: Bearer) or 403, in the client's dialect: Anthropic's for
 * /v1/messages, OpenAI's for everything else.  Nothing of the credential is echoed.
 */
static int access_allowed(gyre_stage_ctx_t *c)
{
    gyre_server_t *s = c->server;
    h2o_req_t *req = c->req;
    gyre_principal_t *p = &c->principal;
    gyre_access_need_t need = gyre_access_need_for(req->path_normalized.base, req->path_normalized.len);
    /* POST /api/datasets runs a curation over every stored body and writes files; POST /api/loop/runs[/ID/cancel]
     * trains, loads adapters and changes a route: the admin token, as the admin API (reading stays with the read
     * token). */
    if (need == GYRE_NEED_READ && h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST")) &&
        (h2o_memis(req->path_normalized.base, req->path_normalized.len, H2O_STRLIT("/api/datasets")) ||
         (req->path_normalized.len >= 14 && memcmp(req->path_normalized.base, "/api/loop/runs", 14) == 0)))
        need = GYRE_NEED_ADMIN;
    /* POST /api/deploy/{route}/begin|promote|rollback changes a route: the admin token (GET stays reading). */
    if (need == GYRE_NEED_READ && !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
        req->path_normalized.len > 12 && memcmp(req->path_normalized.base, "/api/deploy/", 12) == 0)
        need = GYRE_NEED_ADMIN;
    h2o_iovec_t authz = header_value(req, H2O_STRLIT("authorization"));
    h2o_iovec_t xkey = header_value(req, H2O_STRLIT("x-api-key"));
    const gyre_client_dialect_t *client =
        gyre_client_dialect_for_path(req->path_normalized.base, req->path_normalized.len);
    if (xkey.len == 0 && client == &gyre_client_gemini)
        xkey = gemini_key(req); /* Google's SDKs send their key so; it is a client key like x-api-key */
    const char *cred = NULL;
    size_t clen = 0;
    int found = gyre_access_credential(authz.base, authz.len, xkey.base, xkey.len, &cred, &clen);
    gyre_access_verdict_t v;
    gyre_key_verdict_t kv = GYRE_KEY_NOT_MANAGED;
    /* A managed key (control/keys.h) names its id: it is looked up by it in the workers' snapshot.  Any other
     * credential is one of `auth:`'s. */
    if (found == 1 && s->keys != NULL && gyre_keys_is_managed_form(cred, clen))
        kv = gyre_keys_authenticate(s->keys, c->worker->super.id, cred, clen, gyre_trace_now_us(), p);
    if (kv == GYRE_KEY_VALID) {
        p->role = GYRE_ROLE_CLIENT;
        v = gyre_access_decide_role(c->worker->super.access, need, GYRE_ROLE_CLIENT);
    } else if (kv == GYRE_KEY_REVOKED || kv == GYRE_KEY_EXPIRED) {
        gyre_api_error_t err;
        gyre_api_error_set(&err, 401, "invalid_request_error", kv == GYRE_KEY_REVOKED ? "key_revoked" : "key_expired",
                           NULL, "the API key %s %s; ask for a new key", p->key_id,
                           kv == GYRE_KEY_REVOKED ? "has been revoked" : "has expired");
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, H2O_STRLIT("Bearer"));
        gyre_respond_client_error(req, client != NULL ? client : &gyre_client_openai, &err);
        return 0;
    } else if (found == 1) {
        size_t index = 0;
        gyre_access_role_t role = gyre_access_identify_key(c->worker->super.access, cred, clen, &index);
        const char *id, *team, *agent;
        p->role = role;
        if (role == GYRE_ROLE_CLIENT && gyre_access_key_meta(c->worker->super.access, index, &id, &team, &agent) == 0) {
            snprintf(p->key_id, sizeof(p->key_id), "%s", id);
            snprintf(p->team, sizeof(p->team), "%s", team);
            snprintf(p->agent, sizeof(p->agent), "%s", agent);
        }
        v = gyre_access_decide_role(c->worker->super.access, need, role);
    } else {
        v = gyre_access_decide(c->worker->super.access, need, found, cred, clen);
    }
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
    gyre_respond_client_error(req, client != NULL ? client : &gyre_client_openai, &err);
    return 0;
}

/*
 * A pass-through path is forwarded only under a `passthrough:` prefix, and an admin or organization path never.
 * Both the normalised path and the path as sent are checked: the raw one is what goes upstream.
 */
static int passthrough_allowed(const gyre_config_t *config, h2o_req_t *req)
{
    gyre_pass_verdict_t n = gyre_access_passthrough(config, req->path_normalized.base, req->path_normalized.len);
    gyre_pass_verdict_t r = gyre_access_passthrough(config, req->path.base, req->path.len);
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

/* Stage 1, parse and validate, the HTTP part: HTTP/1 framing (RFC 9112) and the bound on the head, before
 * anything reads the request; every answer from here on carries the request's id. */
gyre_stage_result_t gyre_stage_head(gyre_stage_ctx_t *c)
{
    gyre_worker_t *w = c->worker;
    h2o_req_t *req = c->req;
    gyre_request_id(&w->super, req);
    c->access = gyre_access_log_begin(w->super.access_log, w->super.id, req);
    if (gyre_conn_check_head(w, req))
        return GYRE_STAGE_DONE;
    /* While shutting down, a kept-alive connection is closed after its
     * current answer, so clients move on before the process exits. */
    if (w->super.shutting_down)
        req->http1_is_persistent = 0;
    return GYRE_STAGE_GO;
}

/* /healthz, answered before access: a load balancer's probe has no credential. */
gyre_stage_result_t gyre_stage_health(gyre_stage_ctx_t *c)
{
    if (path_is(c->req, H2O_STRLIT("/readyz"))) {
        c->rc = gyre_server_serve_readyz(c->worker, c->req); /* src/server/readyz.c */
        return GYRE_STAGE_DONE;
    }
    if (!path_is(c->req, H2O_STRLIT("/healthz")))
        return GYRE_STAGE_GO;
    c->rc = on_healthz(c->server, c->req);
    return GYRE_STAGE_DONE;
}

gyre_stage_result_t gyre_stage_access(gyre_stage_ctx_t *c)
{
    return access_allowed(c) ? GYRE_STAGE_GO : GYRE_STAGE_DONE;
}

/*
 * Stage 1, parse and validate, the request line: gyre's own endpoints answer here; a model call (chat
 * completions, embeddings, Anthropic's messages, a pass-through /v1 path) goes on with its dialect and endpoint
 * in `c`; anything else is a 404.
 */
gyre_stage_result_t gyre_stage_endpoint(gyre_stage_ctx_t *c)
{
    gyre_worker_t *w = c->worker;
    h2o_req_t *req = c->req;
    if (path_is(req, H2O_STRLIT("/metrics"))) {
        c->rc = gyre_server_serve_metrics(w, req);
        return GYRE_STAGE_DONE;
    }
    if (gyre_admin_handle(w, req))
        return GYRE_STAGE_DONE;
    if (gyre_api_handle(w, req))
        return GYRE_STAGE_DONE;
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
            return GYRE_STAGE_DONE;
        }
    }
    if (path_is(req, H2O_STRLIT("/v1/traces"))) {
        c->rc = gyre_otlp_handle(w, req); /* OTLP/HTTP ingest, not a model call */
        return GYRE_STAGE_DONE;
    }
    if (gyre_feedback_handle(w, req))
        return GYRE_STAGE_DONE;
    if (path_is(req, H2O_STRLIT("/v1/models"))) {
        if (!method_is(req, H2O_STRLIT("GET")) && !method_is(req, H2O_STRLIT("HEAD"))) {
            respond_method_not_allowed(req, &gyre_client_openai, "GET");
            return GYRE_STAGE_DONE;
        }
        c->rc = on_models(w->super.config, req);
        return GYRE_STAGE_DONE;
    }
    /* A client dialect's endpoint (the table in dialect/client.c), or OpenAI's embeddings. */
    const gyre_client_dialect_t *client =
        gyre_client_dialect_for_path(req->path_normalized.base, req->path_normalized.len);
    if (client != NULL || path_is(req, H2O_STRLIT("/v1/embeddings"))) {
        if (client == NULL)
            client = &gyre_client_openai;
        if (!method_is(req, H2O_STRLIT("POST"))) {
            respond_method_not_allowed(req, client, "POST");
            return GYRE_STAGE_DONE;
        }
        c->client = client;
        c->endpoint = path_is(req, H2O_STRLIT("/v1/embeddings")) ? GYRE_OPENAI_EMBEDDINGS : GYRE_OPENAI_CHAT;
        return GYRE_STAGE_GO;
    }
    /* One of gyre's own Responses, read back from the trace store (server/previous.h). */
    if (gyre_previous_retrieve(w, req))
        return GYRE_STAGE_DONE;
    if (req->path_normalized.len >= 4 && memcmp(req->path_normalized.base, "/v1/", 4) == 0) {
        if (!passthrough_allowed(w->super.config, req))
            return GYRE_STAGE_DONE;
        c->client = &gyre_client_openai;
        c->endpoint = GYRE_OPENAI_OTHER;
        return GYRE_STAGE_GO;
    }

    gyre_api_error_t err;
    gyre_api_error_set(&err, 404, "invalid_request_error", "unknown_url", NULL,
                       "unknown path %.*s; gyre serves /v1/chat/completions, /v1/messages, /v1/embeddings, "
                       "/v1/models, other /v1/ paths (passed through) and /healthz",
                       (int)req->path_normalized.len, req->path_normalized.base);
    gyre_respond_error(req, &err);
    return GYRE_STAGE_DONE;
}

/* Every request on "/" goes through the stages (src/server/stages.c). */
static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    gyre_stage_ctx_t c = {
        .server = ((gyre_handler_t *)self)->server,
        .worker = (gyre_worker_t *)req->conn->ctx,
        .req = req,
    };
    return gyre_stages_run(&c);
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
    gyre_request_id((gyre_ctx_t *)req->conn->ctx, req);
    gyre_access_log_begin(((gyre_ctx_t *)req->conn->ctx)->access_log, ((gyre_ctx_t *)req->conn->ctx)->id, req);
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
