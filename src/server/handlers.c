/*
 * Endpoint dispatch.  /v1/chat/completions and /v1/embeddings are read and
 * checked before anything goes upstream; every other /v1 path passes
 * through to a provider of kind openai, routed by the body's model when it
 * has one.
 */
#include "server/handlers.h"

#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "dialect/openai.h"
#include "proxy/proxy.h"
#include "route/route.h"
#include "server/respond.h"
#include "server/server.h"

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

/* "chat", "embed", "primary/MODEL", ... for the 404 that lists what exists. */
static void append_model_names(const gyre_config_t *c, gyre_buf_t *b)
{
    size_t n = 0;
    for (size_t i = 0; i < c->nroutes; i++, n++)
        gyre_buf_appendf(b, "%s'%s'", n ? ", " : "", c->routes[i].name);
    for (size_t i = 0; i < c->nproviders; i++, n++)
        gyre_buf_appendf(b, "%s'%s/<model>'", n ? ", " : "", c->providers[i].name);
    if (n == 0)
        gyre_buf_appends(b, "none: no provider is configured");
}

static void respond_model_not_found(gyre_server_t *s, h2o_req_t *req, const char *model)
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
    gyre_respond_error(req, &err);
}

static int on_healthz(h2o_req_t *req)
{
    static const char body[] = "{\"status\":\"ok\"}";
    gyre_respond_json(req, 200, body, sizeof(body) - 1);
    return 0;
}

/* GET /v1/models: the configured routes, in OpenAI's list shape. */
static int on_models(gyre_server_t *s, h2o_req_t *req)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    gyre_buf_appends(&b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < s->config->nroutes; i++) {
        const gyre_route_conf_t *r = &s->config->routes[i];
        gyre_buf_appends(&b, i ? ",{\"id\":" : "{\"id\":");
        gyre_buf_append_json_string(&b, r->name, strlen(r->name));
        gyre_buf_appends(&b, ",\"object\":\"model\",\"created\":0,\"owned_by\":\"gyre\",\"targets\":[");
        for (size_t j = 0; j < r->ntargets; j++) {
            char t[512];
            snprintf(t, sizeof(t), "%s/%s", s->config->providers[r->targets[j].provider].name, r->targets[j].model);
            if (j)
                gyre_buf_appends(&b, ",");
            gyre_buf_append_json_string(&b, t, strlen(t));
        }
        gyre_buf_appends(&b, "]}");
    }
    gyre_buf_appends(&b, "]}");
    gyre_respond_json(req, 200, b.base, b.len);
    gyre_buf_dispose(&b);
    return 0;
}

/*
 * The path the provider sees: its base path, then the client's path after
 * "/v1".  http://h/openai/v1 + /v1/chat/completions → /openai/v1/chat/completions.
 */
static h2o_iovec_t upstream_path(h2o_req_t *req, const gyre_provider_conf_t *p)
{
    h2o_iovec_t in = req->path;
    size_t skip = in.len >= 3 && memcmp(in.base, "/v1", 3) == 0 ? 3 : 0;
    size_t blen = strlen(p->base_path);
    h2o_iovec_t out;
    out.len = blen + in.len - skip;
    out.base = h2o_mem_alloc_pool(&req->pool, out.len + 1);
    memcpy(out.base, p->base_path, blen);
    memcpy(out.base + blen, in.base + skip, in.len - skip);
    out.base[out.len] = '\0';
    return out;
}

static int model_request(gyre_server_t *s, h2o_req_t *req, gyre_openai_endpoint_t ep)
{
    gyre_worker_t *w = (gyre_worker_t *)req->conn->ctx;
    gyre_openai_request_t parsed;
    gyre_api_error_t err;
    if (gyre_openai_parse_request(ep, req->entity.base, req->entity.len, &parsed, &err) != 0) {
        gyre_respond_error(req, &err);
        return 0;
    }
    gyre_target_ref_t target;
    h2o_iovec_t body = req->entity;
    if (parsed.model != NULL) {
        if (gyre_route_resolve(s->config, parsed.model, strlen(parsed.model), &w->rng, &target) != 0) {
            respond_model_not_found(s, req, parsed.model);
            gyre_openai_request_dispose(&parsed);
            return 0;
        }
        /* "provider/model" points into the parsed body, which dies with this
         * call; the request keeps its own copy. */
        if (target.route_name == NULL)
            target.model = h2o_strdup(&req->pool, target.model, target.model_len).base;
        /* The provider is asked for the target's model, not the route's name. */
        if (strlen(parsed.model) != target.model_len || memcmp(parsed.model, target.model, target.model_len) != 0) {
            /* A splice needs len + the model; a rebuild through cJSON (the key
             * spelled with escapes) can write each byte as \u00XX, six times. */
            gyre_buf_t nb;
            gyre_buf_init(&nb, 6 * req->entity.len + 2 * target.model_len + 64);
            int r = gyre_openai_rewrite_model(&parsed, req->entity.base, req->entity.len, target.model,
                                              target.model_len, &nb);
            if (r == 0)
                body = h2o_strdup(&req->pool, nb.base, nb.len);
            gyre_buf_dispose(&nb);
            if (r != 0) {
                /* Never forward the route's name to a provider that does not know it. */
                gyre_api_error_set(&err, 500, "server_error", "rewrite_failed", "model",
                                   "gyre could not rewrite 'model' for provider '%s'",
                                   s->config->providers[target.provider].name);
                gyre_respond_error(req, &err);
                gyre_openai_request_dispose(&parsed);
                return 0;
            }
        }
    } else {
        /* A pass-through call with no model (file uploads, GET /v1/files/...):
         * the first provider of kind openai takes it. */
        if (s->config->nproviders == 0) {
            gyre_api_error_set(&err, 503, "upstream_error", "no_provider", NULL,
                               "no provider is configured to take %.*s", (int)req->path_normalized.len,
                               req->path_normalized.base);
            gyre_respond_error(req, &err);
            return 0;
        }
        target.provider = 0;
        target.model = NULL;
        target.model_len = 0;
        target.route_name = NULL;
    }
    gyre_openai_request_dispose(&parsed);
    gyre_proxy_start(w, req, &target, upstream_path(req, &s->config->providers[target.provider]), body);
    return 0;
}

/* The body's JSON lives in the worker's arena for the length of this call. */
static int on_model_request(gyre_server_t *s, h2o_req_t *req, gyre_openai_endpoint_t ep)
{
    gyre_json_arena_begin();
    int r = model_request(s, req, ep);
    gyre_json_arena_end();
    return r;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    gyre_server_t *s = ((gyre_handler_t *)self)->server;
    gyre_worker_t *w = (gyre_worker_t *)req->conn->ctx;
    gyre_request_id(w, req);
    /* While shutting down, a kept-alive connection is closed after its
     * current answer, so clients move on before the process exits. */
    if (w->shutting_down)
        req->http1_is_persistent = 0;

    if (path_is(req, H2O_STRLIT("/healthz")))
        return on_healthz(req);
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
    if (req->path_normalized.len >= 4 && memcmp(req->path_normalized.base, "/v1/", 4) == 0)
        return on_model_request(s, req, GYRE_OPENAI_OTHER);

    gyre_api_error_t err;
    gyre_api_error_set(&err, 404, "invalid_request_error", "unknown_url", NULL,
                       "unknown path %.*s; gyre serves /v1/chat/completions, /v1/embeddings, /v1/models, other /v1/ "
                       "paths (passed through) and /healthz",
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
