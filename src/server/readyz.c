/*
 * GET /readyz: whether each route has a target a request could use now, for
 * a load balancer or an orchestrator deciding where to send traffic
 * (/healthz stays the liveness probe: the process answers).  Open like
 * /healthz, before access: a probe carries no credential, and the answer
 * names routes and providers, nothing secret.
 *
 * A target is unusable when an alert took it out of its route
 * (gyre_overrides_target_out), holds its provider's circuit open
 * (gyre_overrides_provider_open) or took every key of its provider out
 * (gyre_overrides_key_out), or when its provider has no usable key on any
 * worker: every key's breaker open or every key resting after a 429
 * (gyre_gen_provider_down reads what each worker published after its last
 * outcome on that provider; no lock is taken on the request path).  A route
 * with no usable target makes gyre not ready: 503, the route named with the
 * reason.
 */
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "dialect/openai.h"
#include "control/probe.h"
#include "proxy/gen.h"
#include "proxy/respond.h"
#include "route/override.h"
#include "server/server.h"

#define READYZ_MAX ((size_t)4 << 20)

/* Why target `ti` of route `ri` cannot be used now, or NULL when it can. */
static const char *unusable(const gyre_gen_t *g, gyre_probe_t *probe, size_t ri, size_t ti, size_t pi,
                            uint64_t now_ms, char *buf, size_t len)
{
    if (gyre_overrides_target_out(g->overrides, ri, ti))
        return "taken out of the route by an alert";
    if (gyre_overrides_provider_open(g->overrides, pi))
        return "circuit held open by an alert";
    const gyre_provider_conf_t *p = &g->config->providers[pi];
    size_t out = 0;
    for (size_t k = 0; k < p->nkeys; k++)
        out += gyre_overrides_key_out(g->overrides, pi, k) != 0;
    if (p->nkeys != 0 && out == p->nkeys)
        return "every key taken out by an alert";
    if (gyre_gen_provider_down(g, pi, now_ms))
        return "circuit open or every key resting after 429s, on every worker";
    if (gyre_probe_unhealthy(probe, p->name, buf, len))
        return buf;
    return NULL;
}

int gyre_server_serve_readyz(gyre_worker_t *w, h2o_req_t *req)
{
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
        !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        gyre_api_error_t err;
        gyre_api_error_set(&err, 405, "invalid_request_error", "method_not_allowed", NULL,
                           "%.*s /readyz is not allowed; use GET", (int)(req->method.len < 32 ? req->method.len : 32),
                           req->method.base);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET"));
        gyre_respond_error(req, &err);
        return 0;
    }
    /* This worker's generation: held by the worker while it is current, so it stays for this synchronous call. */
    const gyre_gen_t *g = w->super.gen->gen;
    const gyre_config_t *c = g->config;
    uint64_t now = h2o_now(w->super.ctx.loop);
    gyre_buf_t b;
    gyre_buf_init(&b, READYZ_MAX);
    int ready = 1;
    gyre_buf_appends(&b, "{\"routes\":{");
    for (size_t ri = 0; ri < c->nroutes; ri++) {
        const gyre_route_conf_t *r = &c->routes[ri];
        size_t n = r->ntargets + r->nfallbacks, usable = 0;
        const char *why = NULL;
        size_t why_pi = 0;
        char hbuf[2][128]; /* a health check's reason: the first one kept, the next ones written beside it */
        for (size_t ti = 0; ti < n; ti++) {
            size_t pi = ti < r->ntargets ? r->targets[ti].provider : r->fallbacks[ti - r->ntargets].provider;
            const char *u = unusable(g, w->server->probe, ri, ti, pi, now, hbuf[why != NULL], sizeof(hbuf[0]));
            if (u == NULL) {
                usable++;
            } else if (why == NULL) {
                why = u;
                why_pi = pi;
            }
        }
        gyre_buf_appends(&b, ri ? "," : "");
        gyre_buf_append_json_string(&b, r->name, strlen(r->name));
        gyre_buf_appendf(&b, ":{\"usable\":%zu,\"targets\":%zu", usable, n);
        if (usable == 0) {
            ready = 0;
            gyre_buf_appends(&b, ",\"reason\":");
            char reason[256];
            snprintf(reason, sizeof(reason), "provider '%s': %s", c->providers[why_pi].name, why);
            gyre_buf_append_json_string(&b, reason, strlen(reason));
        }
        gyre_buf_appends(&b, "}");
    }
    gyre_buf_appendf(&b, "},\"generation\":%llu,\"status\":\"%s\"}", (unsigned long long)g->number,
                     ready ? "ready" : "not_ready");
    if (gyre_buf_failed(&b)) {
        gyre_api_error_t err;
        gyre_api_error_set(&err, 500, "server_error", "response_too_large", NULL,
                           "the readiness of every route is more than %zu bytes", READYZ_MAX);
        gyre_respond_error(req, &err);
    } else {
        gyre_respond_json(req, ready ? 200 : 503, b.base, b.len);
    }
    gyre_buf_dispose(&b);
    return 0;
}
