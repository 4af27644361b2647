/*
 * Stage 3, limits (docs/limits.md): a model call reserves against every level
 * that applies to it (its key, team, agent and user: control/limits.h), or is
 * answered 429 here, in the client's dialect, naming the limit, the level and
 * when it resets, with Retry-After and OpenAI's x-ratelimit-* headers.  A
 * call that passes carries the key's x-ratelimit-* headers on its answer too,
 * as OpenAI's do.
 *
 * The reservation is settled once, when h2o disposes the request, on every
 * path: an answer, an error, a cache hit (which costs nothing against a
 * budget), a client that left.  It is an h2o shared allocation in the
 * request's pool whose dispose callback settles: h2o releases a pool's shared
 * entries newest first, and the proxy's (which finishes the trace, and with it
 * the tokens and the cost) is made after this stage, so the trace is complete
 * when the settle reads it; a call answered in the stages is finished by
 * gyre_stage_finish before the pool is cleared.
 */
#include <math.h>
#include <string.h>

#include "config/prices.h"
#include "control/limits.h"
#include "proxy/respond.h"
#include "server/stages.h"

/* What the dispose callback needs: the request's ids (copied, the principal lives on the handler's stack), its
 * reservation and its call. */
typedef struct limit_req {
    gyre_limits_t *limits;
    gyre_call_t *call;
    gyre_limit_ask_t ask;
    gyre_limit_hold_t hold;
    gyre_principal_t principal;
} limit_req_t;

static h2o_iovec_t header(h2o_req_t *req, const char *name, size_t len)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, len, -1);
    return i < 0 ? h2o_iovec_init(NULL, 0) : req->headers.entries[i].value;
}

/* An id from a header or the body: 1 to GYRE_PRINCIPAL_ID_MAX - 1 printable bytes; 0 (and a 400) otherwise. */
static int take_id(gyre_stage_ctx_t *c, char *dst, const char *src, size_t len, const char *where)
{
    int ok = len < GYRE_PRINCIPAL_ID_MAX;
    for (size_t i = 0; ok && i < len; i++)
        ok = (unsigned char)src[i] >= 0x20 && src[i] != 0x7f;
    if (!ok) {
        gyre_api_error_t err;
        gyre_api_error_set(&err, 400, "invalid_request_error", "invalid_id", where,
                           "%s must be 1 to %d printable bytes: it names who the request's limits are counted for",
                           where, GYRE_PRINCIPAL_ID_MAX - 1);
        gyre_respond_client_error(c->req, c->client != NULL ? c->client : &gyre_client_openai, &err);
        return 0;
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
    return 1;
}

/* The user (x-gyre-user, else the body's `user`) and the agent (the key's, else x-gyre-agent), where access left
 * them empty. */
static int fill_principal(gyre_stage_ctx_t *c)
{
    gyre_principal_t *p = &c->principal;
    if (p->user[0] == '\0') {
        h2o_iovec_t v = header(c->req, H2O_STRLIT("x-gyre-user"));
        if (v.len != 0) {
            if (!take_id(c, p->user, v.base, v.len, "x-gyre-user"))
                return 0;
        } else if (c->pivot != NULL) {
            const cJSON *u = cJSON_GetObjectItemCaseSensitive(c->pivot, "user");
            if (cJSON_IsString(u) && u->valuestring[0] != '\0' &&
                !take_id(c, p->user, u->valuestring, strlen(u->valuestring), "user"))
                return 0;
        }
    }
    if (p->agent[0] == '\0') {
        h2o_iovec_t v = header(c->req, H2O_STRLIT("x-gyre-agent"));
        if (v.len != 0 && !take_id(c, p->agent, v.base, v.len, "x-gyre-agent"))
            return 0;
    }
    return 1;
}

/* The output the request may ask for: its max_completion_tokens or max_tokens, else the config's default; none
 * for embeddings. */
static uint64_t output_estimate(gyre_stage_ctx_t *c, gyre_limits_t *l)
{
    if (c->endpoint == GYRE_OPENAI_EMBEDDINGS)
        return 0;
    if (c->pivot != NULL) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(c->pivot, "max_completion_tokens");
        if (!cJSON_IsNumber(m))
            m = cJSON_GetObjectItemCaseSensitive(c->pivot, "max_tokens");
        if (cJSON_IsNumber(m) && m->valuedouble >= 0 && m->valuedouble < 1e9)
            return (uint64_t)m->valuedouble;
    }
    return gyre_limits_default_max_tokens(l);
}

static int64_t price_nusd(const gyre_price_t *p, uint64_t in, uint64_t out)
{
    /* USD per million tokens times tokens is micro-dollars; a thousand nano-dollars each. */
    return p == NULL ? 0 : llround(((double)in * p->input + (double)out * p->output) * 1000.0);
}

/* The estimate of the cost: the dearest target the plan may try (its pool and its fallbacks), so that the
 * reservation covers whichever answers.  A model without a price costs 0 (docs/limits.md). */
static int64_t cost_estimate(gyre_stage_ctx_t *c, uint64_t in, uint64_t out)
{
    const gyre_config_t *cfg = c->worker->super.config; /* the configuration in force: the target indexes it */
    const gyre_prices_t *table = c->worker->super.prices;
    const gyre_target_ref_t *t = &c->target;
    int64_t worst = 0;
    if (t->route == NULL) {
        if (t->model == NULL || t->provider >= cfg->nproviders)
            return 0;
        return price_nusd(gyre_prices_lookup(cfg->providers[t->provider].prices, table, t->model, t->model_len), in,
                          out);
    }
    for (int f = 0; f < 2; f++) {
        const gyre_target_conf_t *ts = f == 0 ? t->route->targets : t->route->fallbacks;
        size_t n = f == 0 ? t->route->ntargets : t->route->nfallbacks;
        for (size_t i = 0; i < n; i++) {
            const gyre_price_t *p =
                gyre_prices_lookup(cfg->providers[ts[i].provider].prices, table, ts[i].model, strlen(ts[i].model));
            int64_t v = price_nusd(p, in, out);
            if (v > worst)
                worst = v;
        }
    }
    return worst;
}

/*
 * The request's dispose: the real tokens and cost replace the estimates.  A cache hit costs nothing.  A call
 * whose usage gyre never saw (a client that left mid-stream, an answer cut off) is charged what it reserved: the
 * provider may well have billed it, and a budget should not be undercounted.  A call that failed without usage
 * (an error answer) is charged nothing.
 */
static void on_request_disposed(void *p)
{
    limit_req_t *r = p;
    const gyre_trace_t *t = r->call->trace;
    uint64_t tokens;
    int64_t cost;
    int known = t->prompt_tokens >= 0 || t->completion_tokens >= 0;
    if (t->cache_hit) {
        tokens = 0;
        cost = 0;
    } else if (known) {
        tokens = (uint64_t)(t->prompt_tokens > 0 ? t->prompt_tokens : 0) +
                 (uint64_t)(t->completion_tokens > 0 ? t->completion_tokens : 0);
        cost = isfinite(t->cost_usd) && t->cost_usd > 0 ? llround(t->cost_usd * (double)GYRE_NUSD_PER_USD) : 0;
    } else if (t->status == 499 || (t->status >= 200 && t->status < 300)) {
        tokens = r->hold.tokens;
        cost = r->hold.cost_nusd;
    } else {
        tokens = 0;
        cost = 0;
    }
    gyre_limits_settle(r->limits, &r->ask, &r->hold, tokens, cost);
}

static void add_header(h2o_req_t *req, const char *name, size_t len, const char *value, size_t vlen)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, len, 0, NULL, h2o_strdup(&req->pool, value, vlen).base,
                          vlen);
}

/* OpenAI's x-ratelimit-* headers for the key's request and token limits. */
static void add_status_headers(h2o_req_t *req, const gyre_limit_status_t *st)
{
    char v[32];
    size_t n;
    if (st->has_rpm) {
        n = (size_t)snprintf(v, sizeof(v), "%llu", (unsigned long long)st->rpm);
        add_header(req, H2O_STRLIT("x-ratelimit-limit-requests"), v, n);
        n = (size_t)snprintf(v, sizeof(v), "%llu", (unsigned long long)st->rpm_remaining);
        add_header(req, H2O_STRLIT("x-ratelimit-remaining-requests"), v, n);
        n = gyre_limits_format_reset(st->rpm_reset_us, v, sizeof(v));
        add_header(req, H2O_STRLIT("x-ratelimit-reset-requests"), v, n);
    }
    if (st->has_tpm) {
        n = (size_t)snprintf(v, sizeof(v), "%llu", (unsigned long long)st->tpm);
        add_header(req, H2O_STRLIT("x-ratelimit-limit-tokens"), v, n);
        n = (size_t)snprintf(v, sizeof(v), "%llu", (unsigned long long)st->tpm_remaining);
        add_header(req, H2O_STRLIT("x-ratelimit-remaining-tokens"), v, n);
        n = gyre_limits_format_reset(st->tpm_reset_us, v, sizeof(v));
        add_header(req, H2O_STRLIT("x-ratelimit-reset-tokens"), v, n);
    }
}

static void refuse(gyre_stage_ctx_t *c, const gyre_limit_refusal_t *why, const gyre_limit_status_t *st)
{
    h2o_req_t *req = c->req;
    gyre_api_error_t err;
    char msg[512];
    gyre_limits_describe(why, msg, sizeof(msg));
    /* OpenAI's shapes: a rate limit is type "requests" or "tokens" with code rate_limit_exceeded; a spent budget is
     * insufficient_quota (LiteLLM's budget_exceeded as the code says which). */
    if (why->kind == GYRE_LIMIT_BUDGET)
        gyre_api_error_set(&err, 429, "insufficient_quota", "budget_exceeded", NULL, "%s", msg);
    else
        gyre_api_error_set(&err, 429, why->kind == GYRE_LIMIT_TPM ? "tokens" : "requests",
                           why->kind == GYRE_LIMIT_CONCURRENCY ? "concurrency_limit_exceeded" : "rate_limit_exceeded",
                           NULL, "%s", msg);
    if (!why->too_large) {
        char v[32];
        int64_t secs = why->retry_us <= 0 ? 1 : (why->retry_us + 999999) / 1000000;
        size_t n = (size_t)snprintf(v, sizeof(v), "%lld", (long long)secs);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, h2o_strdup(&req->pool, v, n).base, n);
        n = (size_t)snprintf(v, sizeof(v), "%lld", (long long)((why->retry_us + 999) / 1000));
        add_header(req, H2O_STRLIT("retry-after-ms"), v, n);
    }
    add_status_headers(req, st);
    gyre_respond_client_error(req, c->client != NULL ? c->client : &gyre_client_openai, &err);
}

gyre_stage_result_t gyre_stage_limits(gyre_stage_ctx_t *c)
{
    gyre_limits_t *l = c->worker->super.limits;
    if (l == NULL || c->call == NULL)
        return GYRE_STAGE_GO;
    if (!fill_principal(c))
        return GYRE_STAGE_DONE;
    h2o_req_t *req = c->req;
    limit_req_t *r = h2o_mem_alloc_shared(&req->pool, sizeof(*r), on_request_disposed);
    memset(r, 0, sizeof(*r));
    r->limits = l;
    r->call = c->call;
    r->principal = c->principal;
    const gyre_principal_t *p = &r->principal;
    r->ask.ids[GYRE_LIMIT_KEY] = p->key_id;
    r->ask.ids[GYRE_LIMIT_TEAM] = p->team;
    r->ask.ids[GYRE_LIMIT_AGENT] = p->agent;
    r->ask.ids[GYRE_LIMIT_USER] = p->user;
    r->ask.key_limits = p->managed ? &p->key_limits : NULL;
    /* The estimate: the body's bytes / 4 for the input (about a token per four bytes of English and JSON), plus
     * the output it may ask for. */
    uint64_t in = (c->call->body.len + 3) / 4, out = output_estimate(c, l);
    r->ask.tokens = in + out;
    r->ask.cost_nusd = gyre_limits_has_budgets(l) ? cost_estimate(c, in, out) : 0;
    gyre_limit_refusal_t why;
    gyre_limit_status_t st;
    if (gyre_limits_reserve(l, &r->ask, &r->hold, &why, &st) != 0) {
        refuse(c, &why, &st);
        return GYRE_STAGE_DONE;
    }
    c->call->limit_hold = &r->hold;
    c->call->limit_headers = st.has_rpm || st.has_tpm;
    add_status_headers(req, &st);
    return GYRE_STAGE_GO;
}
