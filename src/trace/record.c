/* Filling a request's trace (see record.h). */
#include "trace/record.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/time.h>

#include "common/json.h"
#include "common/rand.h"
#include "common/wire.h"
#include "trace/redact.h"

int64_t gyre_trace_now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

gyre_tstr_t gyre_tstr_dup(h2o_mem_pool_t *pool, const char *p, size_t len)
{
    gyre_tstr_t s = {NULL, len};
    if (p == NULL || len == 0)
        return (gyre_tstr_t){NULL, 0};
    s.p = h2o_mem_alloc_pool(pool, len + 1);
    memcpy(s.p, p, len);
    s.p[len] = '\0';
    return s;
}

static int is_hex(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return 0;
    return 1;
}

static h2o_iovec_t header(h2o_req_t *req, const char *name, size_t len)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, len, -1);
    return i == -1 ? h2o_iovec_init(NULL, 0) : req->headers.entries[i].value;
}

int gyre_trace_parse_traceparent(const char *v, size_t len, char trace_id[33], char parent_id[17])
{
    static const char zeros[32] = "00000000000000000000000000000000";
    if (len < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-')
        return -EINVAL;
    if (!is_hex(v, 2) || !is_hex(v + 3, 32) || !is_hex(v + 36, 16) || !is_hex(v + 53, 2))
        return -EINVAL;
    if (v[0] == 'f' && v[1] == 'f')
        return -EINVAL; /* version 255 is forbidden */
    if (v[0] == '0' && v[1] == '0' ? len != 55 : len > 55 && v[55] != '-')
        return -EINVAL; /* 00 has nothing after the flags; a later version's extra fields follow a '-' */
    if (memcmp(v + 3, zeros, 32) == 0 || memcmp(v + 36, zeros, 16) == 0)
        return -EINVAL; /* all zeros is invalid */
    memcpy(trace_id, v + 3, 32);
    trace_id[32] = '\0';
    memcpy(parent_id, v + 36, 16);
    parent_id[16] = '\0';
    return 0;
}

/* A valid traceparent: the trace continues the caller's.  An invalid one is ignored, as if absent. */
static void read_traceparent(gyre_trace_t *t, h2o_iovec_t v)
{
    char trace_id[33], parent_id[17];
    if (v.base == NULL || gyre_trace_parse_traceparent(v.base, v.len, trace_id, parent_id) != 0)
        return;
    memcpy(t->otel_trace_id, trace_id, 33);
    memcpy(t->parent_span_id, parent_id, 17);
}

void gyre_trace_begin(gyre_trace_t *t, h2o_req_t *req, uint64_t *rng, h2o_iovec_t request_id)
{
    h2o_mem_pool_t *pool = &req->pool;
    memset(t, 0, sizeof(*t));
    t->started_us = gyre_trace_now_us();
    t->ttft_us = -1;
    t->prompt_tokens = t->completion_tokens = t->cached_tokens = t->reasoning_tokens = -1;
    t->cost_usd = NAN;
    /* Time-ordered, like a UUIDv7: 48 bits of unix milliseconds (12 hex digits), then 80 random bits (20 hex
     * digits).  The store's b-trees keyed by trace_id (and by otel_trace_id, which is this id when the caller
     * sent no traceparent) then append at their right edge instead of touching a random page per trace; 80
     * random bits keep the calls of one millisecond apart (a million of them collide with a chance of about
     * 2^-41). */
    gyre_wire_hex_u64(t->trace_id, (uint64_t)(t->started_us / 1000) & UINT64_C(0xffffffffffff), 12);
    gyre_wire_hex_u64(t->trace_id + 12, gyre_rand_next(rng), 16);
    gyre_wire_hex_u64(t->trace_id + 28, gyre_rand_next(rng), 4);
    memcpy(t->otel_trace_id, t->trace_id, sizeof(t->otel_trace_id));
    gyre_wire_hex_u64(t->span_id, gyre_rand_next(rng), 16);
    read_traceparent(t, header(req, H2O_STRLIT("traceparent")));
    t->request_id = gyre_tstr_dup(pool, request_id.base, request_id.len);
    t->endpoint = gyre_tstr_dup(pool, req->path_normalized.base, req->path_normalized.len);
    h2o_iovec_t v;
    v = header(req, H2O_STRLIT("x-gyre-session"));
    t->session = gyre_tstr_dup(pool, v.base, v.len < 256 ? v.len : 256);
    v = header(req, H2O_STRLIT("x-gyre-agent"));
    t->agent = gyre_tstr_dup(pool, v.base, v.len < 256 ? v.len : 256);
    v = header(req, H2O_STRLIT("x-gyre-user"));
    t->user = gyre_tstr_dup(pool, v.base, v.len < 256 ? v.len : 256);
    v = header(req, H2O_STRLIT("x-gyre-tags"));
    for (size_t i = 0; i < v.len && t->ntags < GYRE_TRACE_MAX_TAGS;) {
        size_t j = i;
        while (j < v.len && v.base[j] != ',')
            j++;
        size_t a = i, b = j;
        while (a < b && (v.base[a] == ' ' || v.base[a] == '\t'))
            a++;
        while (b > a && (v.base[b - 1] == ' ' || v.base[b - 1] == '\t'))
            b--;
        if (b > a)
            t->tags[t->ntags++] = gyre_tstr_dup(pool, v.base + a, b - a < 128 ? b - a : 128);
        i = j + 1;
    }
    for (size_t i = 0; i < req->headers.size && t->nmeta < GYRE_TRACE_MAX_META; i++) {
        const h2o_header_t *h = &req->headers.entries[i];
        if (h->name->len > 12 && h2o_lcstris(h->name->base, 12, H2O_STRLIT("x-gyre-meta-"))) {
            t->meta[t->nmeta].key = gyre_tstr_dup(pool, h->name->base + 12, h->name->len - 12);
            t->meta[t->nmeta].value = gyre_tstr_dup(pool, h->value.base, h->value.len < 1024 ? h->value.len : 1024);
            t->nmeta++;
        }
    }
    gyre_wire_add_answer_header(pool, &req->res.headers, H2O_STRLIT("x-gyre-trace-id"), t->trace_id, 32);
}

gyre_trace_attempt_t *gyre_trace_add_attempt(gyre_trace_t *t, h2o_mem_pool_t *pool, const char *provider,
                                             const char *model, size_t model_len, const char *key_id)
{
    if (t->nattempts == GYRE_TRACE_MAX_ATTEMPTS)
        return NULL;
    gyre_trace_attempt_t *a = &t->attempts[t->nattempts++];
    memset(a, 0, sizeof(*a));
    a->provider = gyre_tstr_dup(pool, provider, strlen(provider));
    a->model = gyre_tstr_dup(pool, model, model_len);
    if (key_id != NULL)
        a->key_id = gyre_tstr_dup(pool, key_id, strlen(key_id));
    a->started_us = gyre_trace_now_us();
    return a;
}

static int64_t number(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 9e15 ? (int64_t)v->valuedouble : -1;
}

void gyre_trace_read_completion(gyre_trace_t *t, h2o_mem_pool_t *pool, const char *json, size_t len)
{
    /* Every answer is read here, traces stored or not: its values come from the arena, not malloc. */
    int own = gyre_json_arena_enter();
    cJSON *j = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        if (own)
            gyre_json_arena_end();
        return;
    }
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(j, "usage");
    if (cJSON_IsObject(usage)) {
        t->prompt_tokens = number(usage, "prompt_tokens");
        t->completion_tokens = number(usage, "completion_tokens");
        /* Absent details are unknown (null), not 0: not every provider reports them. */
        t->cached_tokens = number(cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens_details"), "cached_tokens");
        t->reasoning_tokens =
            number(cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens_details"), "reasoning_tokens");
    }
    const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
    const cJSON *fr = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");
    if (cJSON_IsString(fr))
        t->finish_reason = gyre_tstr_dup(pool, fr->valuestring, strlen(fr->valuestring));
    cJSON_Delete(j);
    if (own)
        gyre_json_arena_end();
}

void gyre_trace_price(gyre_trace_t *t, const gyre_prices_t *prices, const gyre_prices_t *provider_prices)
{
    double c = -1;
    const gyre_price_t *p = NULL;
    if (t->model.len != 0 && t->prompt_tokens >= 0 && t->completion_tokens >= 0)
        p = gyre_prices_lookup(provider_prices, prices, t->model.p, t->model.len);
    if (p != NULL)
        c = gyre_prices_cost(p, t->prompt_tokens, t->cached_tokens > 0 ? t->cached_tokens : 0, t->completion_tokens);
    if (t->cache_hit) {
        /* Served from the cache: no provider was paid.  The answer's own cost is what was saved. */
        t->cost_usd = 0;
        t->cost_saved_usd = c >= 0 ? c : NAN;
        return;
    }
    if (c >= 0)
        t->cost_usd = c;
}

/* Appends to a bounded output; gyre_redact_bound() says the bound is never reached, but a bug must not write past it. */
static size_t put(char *out, size_t cap, size_t o, const char *p, size_t n)
{
    if (o < cap)
        memcpy(out + o, p, n < cap - o ? n : cap - o);
    return o + n < cap ? o + n : cap;
}

/* `s` redacted: the same bytes when nothing matched, else a copy in `pool` (NUL-terminated, like the others). */
static gyre_tstr_t redact_str(h2o_mem_pool_t *pool, gyre_tstr_t s, unsigned kinds)
{
    gyre_redact_scan_t scan;
    gyre_redact_match_t m;
    if (s.len == 0)
        return s;
    gyre_redact_scan_init(&scan, kinds, s.p, s.len);
    if (!gyre_redact_scan_next(&scan, &m))
        return s; /* the common case: one pass, nothing written */
    size_t cap = gyre_redact_bound(s.len);
    char *out = h2o_mem_alloc_pool(pool, cap + 1);
    size_t o = 0, from = 0;
    do {
        const char *tok = gyre_redact_token(m.kind);
        o = put(out, cap, o, s.p + from, m.start - from);
        o = put(out, cap, o, tok, strlen(tok));
        from = m.end;
    } while (gyre_redact_scan_next(&scan, &m));
    o = put(out, cap, o, s.p + from, s.len - from);
    out[o] = '\0';
    return (gyre_tstr_t){out, o};
}

void gyre_trace_redact(gyre_trace_t *t, h2o_mem_pool_t *pool, unsigned kinds)
{
    if (kinds == 0)
        return;
    t->request_body = redact_str(pool, t->request_body, kinds);
    t->response_body = redact_str(pool, t->response_body, kinds);
    for (size_t i = 0; i < t->nattempts; i++)
        t->attempts[i].error = redact_str(pool, t->attempts[i].error, kinds);
    for (size_t i = 0; i < t->nmeta; i++)
        t->meta[i].value = redact_str(pool, t->meta[i].value, kinds);
}
