/*
 * The API's JSON from a backend's rows (store/backend.h), and the JSON a
 * backend stores for a trace's tags, meta and attempts: one place, so that
 * every backend answers in the same shape.
 *
 *   trace (get_trace, and each of get_session's "traces"):
 *     {"trace_id":"<32 hex>","otel_trace_id":"<32 hex>","span_id":"<16 hex>","parent_span_id":"",
 *      "request_id":"...","started_us":N,"ended_us":N,"latency_us":N,
 *      "ttft_us":N|null,"endpoint":"/v1/chat/completions","route":"...",
 *      "provider":"...","model":"...","status":200,"stream":true|false,
 *      "cache_hit":true|false,"finish_reason":"stop",
 *      "prompt_tokens":N|null,"completion_tokens":N|null,
 *      "cached_tokens":N|null,"reasoning_tokens":N|null,
 *      "cost_usd":X|null,"cost_saved_usd":X|null,"session":"...","agent":"...","user":"...",
 *      "client_key_id":"gk_...","team":"...",   (the gateway key's id and team; "" when none)
 *      "tags":["a","b"],                 (sorted, duplicates dropped)
 *      "meta":{"k":"v"},                 (sorted by key; a repeated key keeps the last value)
 *      "attempts":[{"provider":"...","model":"...","key_id":"openai#0",
 *                   "status":N,"started_us":N,"latency_us":N,"error":"..."}],
 *      "request_body":<the body as JSON when it parses, else a string, null when not captured>,
 *      "response_body":<the same>}
 *   summary (each of a page's "data"): the trace without request_body and response_body.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/utf8.h"
#include "store/backend.h"

/* ---- JSON writing with a sticky error, so a shape reads as a list of fields. ---- */

typedef struct json_writer {
    gyre_buf_t *b;
    int r;
} json_writer_t;

static void jw_raw(json_writer_t *w, const char *s, size_t n)
{
    if (w->r == 0)
        w->r = gyre_buf_append(w->b, s, n);
}

static void jw_lit(json_writer_t *w, const char *s)
{
    jw_raw(w, s, strlen(s));
}

static void jw_str(json_writer_t *w, const gyre_tstr_t *v)
{
    if (w->r == 0)
        w->r = gyre_buf_append_json_string(w->b, v->p != NULL ? v->p : "", v->p != NULL ? v->len : 0);
}

static void jw_int(json_writer_t *w, int64_t v)
{
    if (w->r == 0)
        w->r = gyre_buf_appendf(w->b, "%" PRId64, v);
}

static void jw_known(json_writer_t *w, int64_t v)
{
    if (v < 0)
        jw_lit(w, "null");
    else
        jw_int(w, v);
}

/* The shortest text that reads back as the same double. */
static void jw_double(json_writer_t *w, double v)
{
    char tmp[40];
    if (!isfinite(v)) {
        jw_lit(w, "null");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    jw_lit(w, tmp);
}

/* A column that holds JSON, as it is (`empty` when the column is empty, which no write makes). */
static void jw_json_col(json_writer_t *w, const gyre_tstr_t *v, const char *empty)
{
    if (v->p == NULL || v->len == 0)
        jw_lit(w, empty);
    else if (w->r == 0 && !gyre_utf8_valid(v->p, v->len))
        w->r = gyre_buf_append_utf8(w->b, v->p, v->len); /* a row written before the writer's encoder replaced it */
    else
        jw_raw(w, v->p, v->len);
}

/* A body: as it is when any strict parser reads it (RFC 8259, well-formed UTF-8); any other body, a truncated
 * one, one with raw control bytes or ill-formed UTF-8, as a string, whose encoder replaces ill-formed UTF-8
 * with U+FFFD (docs/api.md), so the answer is always JSON. */
static void jw_body_bytes(json_writer_t *w, const char *p, size_t n)
{
    if (gyre_json_valid(p, n))
        jw_raw(w, p, n);
    else if (w->r == 0)
        w->r = gyre_buf_append_json_string(w->b, p, n);
}

static int jw_body(json_writer_t *w, gyre_store_t *s, const gyre_store_row_t *row, int response, char *err,
                   size_t errlen)
{
    const gyre_store_body_t *b = response ? &row->response_body : &row->request_body;
    const char *what = response ? "response_body" : "request_body";
    if (b->p == NULL) {
        jw_lit(w, "null");
        return 0;
    }
    gyre_buf_reset(&s->body);
    int r = gyre_zstd_decompress(s->zstd, &s->body, b->p, b->len);
    if (r != 0) {
        gyre_store_set_err(err, errlen, "trace %.*s: stored %s does not decompress (%s)", (int)row->trace_id.len,
                           row->trace_id.p, what, r == -E2BIG ? "larger than 64 MiB" : "corrupt zstd");
        return -EIO;
    }
    jw_body_bytes(w, s->body.base != NULL ? s->body.base : "", s->body.len);
    return 0;
}

/* Both bodies of a trace whose bodies are in the trace log, read once through the log's reader. */
static int jw_log_bodies(json_writer_t *w, gyre_store_t *s, const gyre_store_row_t *row, char *err, size_t errlen)
{
    int has_req = 0, has_resp = 0;
    if (s->body_reader == NULL) {
        /* A reader of the index alone (no log at hand) answers what it has: the bodies are not here. */
        jw_lit(w, ",\"request_body\":null,\"response_body\":null");
        return 0;
    }
    gyre_buf_reset(&s->logreq);
    gyre_buf_reset(&s->logresp);
    int r = s->body_reader(s->body_reader_ctx, &row->ref, &s->logreq, &has_req, &s->logresp, &has_resp, err, errlen);
    if (r != 0)
        return r == -ENOENT ? -EIO : r;
    jw_lit(w, ",\"request_body\":");
    if (has_req)
        jw_body_bytes(w, s->logreq.base != NULL ? s->logreq.base : "", s->logreq.len);
    else
        jw_lit(w, "null");
    jw_lit(w, ",\"response_body\":");
    if (has_resp)
        jw_body_bytes(w, s->logresp.base != NULL ? s->logresp.base : "", s->logresp.len);
    else
        jw_lit(w, "null");
    return 0;
}

int gyre_store_render_row(gyre_store_t *s, const gyre_store_row_t *row, int bodies, gyre_buf_t *out, char *err,
                          size_t errlen)
{
    json_writer_t w = {out, 0};
    size_t start = out->len;
    int r = 0;

    jw_lit(&w, "{\"trace_id\":");
    jw_str(&w, &row->trace_id);
    jw_lit(&w, ",\"otel_trace_id\":");
    jw_str(&w, &row->otel_trace_id);
    jw_lit(&w, ",\"span_id\":");
    jw_str(&w, &row->span_id);
    jw_lit(&w, ",\"parent_span_id\":");
    jw_str(&w, &row->parent_span_id);
    jw_lit(&w, ",\"request_id\":");
    jw_str(&w, &row->request_id);
    jw_lit(&w, ",\"started_us\":");
    jw_int(&w, row->started_us);
    jw_lit(&w, ",\"ended_us\":");
    jw_int(&w, row->ended_us);
    jw_lit(&w, ",\"latency_us\":");
    jw_int(&w, row->latency_us);
    jw_lit(&w, ",\"ttft_us\":");
    jw_known(&w, row->ttft_us);
    jw_lit(&w, ",\"endpoint\":");
    jw_str(&w, &row->endpoint);
    jw_lit(&w, ",\"route\":");
    jw_str(&w, &row->route);
    jw_lit(&w, ",\"provider\":");
    jw_str(&w, &row->provider);
    jw_lit(&w, ",\"model\":");
    jw_str(&w, &row->model);
    jw_lit(&w, ",\"status\":");
    jw_int(&w, row->status);
    jw_lit(&w, row->stream ? ",\"stream\":true" : ",\"stream\":false");
    jw_lit(&w, row->cache_hit ? ",\"cache_hit\":true" : ",\"cache_hit\":false");
    jw_lit(&w, ",\"finish_reason\":");
    jw_str(&w, &row->finish_reason);
    jw_lit(&w, ",\"prompt_tokens\":");
    jw_known(&w, row->prompt_tokens);
    jw_lit(&w, ",\"completion_tokens\":");
    jw_known(&w, row->completion_tokens);
    jw_lit(&w, ",\"cached_tokens\":");
    jw_known(&w, row->cached_tokens);
    jw_lit(&w, ",\"reasoning_tokens\":");
    jw_known(&w, row->reasoning_tokens);
    jw_lit(&w, ",\"cost_usd\":");
    jw_double(&w, row->cost_usd);
    jw_lit(&w, ",\"cost_saved_usd\":");
    jw_double(&w, row->cost_saved_usd);
    jw_lit(&w, ",\"session\":");
    jw_str(&w, &row->session);
    jw_lit(&w, ",\"agent\":");
    jw_str(&w, &row->agent);
    jw_lit(&w, ",\"user\":");
    jw_str(&w, &row->user);
    jw_lit(&w, ",\"client_key_id\":");
    jw_str(&w, &row->client_key_id);
    jw_lit(&w, ",\"team\":");
    jw_str(&w, &row->team);
    jw_lit(&w, ",\"tags\":");
    jw_json_col(&w, &row->tags_json, "[]");
    jw_lit(&w, ",\"meta\":");
    jw_json_col(&w, &row->meta_json, "{}");
    jw_lit(&w, ",\"attempts\":");
    jw_json_col(&w, &row->attempts_json, "[]");
    if (bodies && row->ref.segment != 0) {
        r = jw_log_bodies(&w, s, row, err, errlen);
    } else if (bodies) {
        jw_lit(&w, ",\"request_body\":");
        r = jw_body(&w, s, row, 0, err, errlen);
        if (r == 0) {
            jw_lit(&w, ",\"response_body\":");
            r = jw_body(&w, s, row, 1, err, errlen);
        }
    }
    jw_lit(&w, "}");
    if (r == 0 && w.r != 0) {
        r = -E2BIG;
        gyre_store_set_err(err, errlen, "store: the answer is larger than its buffer (%zu bytes)", out->max);
    }
    if (r != 0) {
        out->len = start;
        if (out->base != NULL)
            out->base[start] = '\0';
    }
    return r;
}

/* ---- What a backend stores with a trace: tags, meta and attempts in the API's shape. ---- */

static int tstr_cmp_cb(const void *a, const void *b)
{
    const gyre_tstr_t *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->p, y->p, n) : 0;
    return c != 0 ? c : (x->len < y->len ? -1 : x->len > y->len);
}

void gyre_store_render_tags(const gyre_tstr_t *tags, size_t n, gyre_buf_t *out)
{
    gyre_tstr_t sorted[GYRE_TRACE_MAX_TAGS];
    if (n > GYRE_TRACE_MAX_TAGS)
        n = GYRE_TRACE_MAX_TAGS;
    memcpy(sorted, tags, n * sizeof(*tags));
    qsort(sorted, n, sizeof(*sorted), tstr_cmp_cb);
    gyre_buf_reset(out);
    gyre_buf_append(out, "[", 1);
    for (size_t i = 0, k = 0; i < n; i++) {
        if (i > 0 && tstr_cmp_cb(&sorted[i], &sorted[i - 1]) == 0)
            continue;
        if (k++)
            gyre_buf_append(out, ",", 1);
        gyre_buf_append_json_string(out, sorted[i].p ? sorted[i].p : "", sorted[i].len);
    }
    gyre_buf_append(out, "]", 1);
}

typedef struct meta_ref {
    const gyre_trace_meta_t *m;
    size_t order;
} meta_ref_t;

static int meta_ref_cmp_cb(const void *a, const void *b)
{
    const meta_ref_t *x = a, *y = b;
    int c = tstr_cmp_cb(&x->m->key, &y->m->key);
    return c != 0 ? c : (x->order < y->order ? -1 : x->order > y->order);
}

void gyre_store_render_meta(const gyre_trace_meta_t *meta, size_t n, gyre_buf_t *out)
{
    meta_ref_t refs[GYRE_TRACE_MAX_META];
    if (n > GYRE_TRACE_MAX_META)
        n = GYRE_TRACE_MAX_META;
    for (size_t i = 0; i < n; i++)
        refs[i] = (meta_ref_t){&meta[i], i};
    qsort(refs, n, sizeof(*refs), meta_ref_cmp_cb);
    gyre_buf_reset(out);
    gyre_buf_append(out, "{", 1);
    for (size_t i = 0, k = 0; i < n; i++) {
        if (i + 1 < n && tstr_cmp_cb(&refs[i].m->key, &refs[i + 1].m->key) == 0)
            continue; /* a later one has the same key */
        if (k++)
            gyre_buf_append(out, ",", 1);
        const gyre_trace_meta_t *m = refs[i].m;
        gyre_buf_append_json_string(out, m->key.p ? m->key.p : "", m->key.len);
        gyre_buf_append(out, ":", 1);
        gyre_buf_append_json_string(out, m->value.p ? m->value.p : "", m->value.len);
    }
    gyre_buf_append(out, "}", 1);
}

void gyre_store_render_attempts(const gyre_trace_attempt_t *a, size_t n, gyre_buf_t *out)
{
    if (n > GYRE_TRACE_MAX_ATTEMPTS)
        n = GYRE_TRACE_MAX_ATTEMPTS;
    gyre_buf_reset(out);
    gyre_buf_append(out, "[", 1);
    for (size_t i = 0; i < n; i++) {
        gyre_buf_appends(out, i ? ",{\"provider\":" : "{\"provider\":");
        gyre_buf_append_json_string(out, a[i].provider.p ? a[i].provider.p : "", a[i].provider.len);
        gyre_buf_appends(out, ",\"model\":");
        gyre_buf_append_json_string(out, a[i].model.p ? a[i].model.p : "", a[i].model.len);
        gyre_buf_appends(out, ",\"key_id\":");
        gyre_buf_append_json_string(out, a[i].key_id.p ? a[i].key_id.p : "", a[i].key_id.len);
        gyre_buf_appendf(out, ",\"status\":%d,\"started_us\":%" PRId64 ",\"latency_us\":%" PRId64 ",\"error\":",
                         a[i].status, a[i].started_us, a[i].latency_us);
        gyre_buf_append_json_string(out, a[i].error.p ? a[i].error.p : "", a[i].error.len);
        gyre_buf_append(out, "}", 1);
    }
    gyre_buf_append(out, "]", 1);
}

/* ---- What the loop adds to one trace (issue 14): its feedback, its scores and its cluster. ---- */

typedef struct loop_render {
    json_writer_t fb, sc; /* the feedback into the answer, the other scores into their own buffer */
    size_t nfb, nsc;
} loop_render_t;

static void jw_cstr(json_writer_t *w, const char *v)
{
    if (v == NULL) {
        jw_lit(w, "null");
        return;
    }
    gyre_tstr_t t = {(char *)v, strlen(v)};
    jw_str(w, &t);
}

/* One pass over the trace's scores: feedback (GYRE_SCORE_HUMAN) and the others go to their two arrays. */
static int loop_score_cb(void *arg, const gyre_score_t *sc)
{
    loop_render_t *c = arg;
    int human = sc->source == GYRE_SCORE_HUMAN;
    json_writer_t *w = human ? &c->fb : &c->sc;
    size_t *n = human ? &c->nfb : &c->nsc;
    jw_lit(w, (*n)++ ? ",{\"name\":" : "{\"name\":");
    jw_cstr(w, sc->name);
    if (!human) {
        jw_lit(w, ",\"source\":");
        jw_cstr(w, gyre_store_score_source_name(sc->source));
        jw_lit(w, ",\"version\":");
        jw_cstr(w, sc->version != NULL ? sc->version : "");
    }
    jw_lit(w, ",\"value\":");
    jw_double(w, sc->value);
    jw_lit(w, ",\"label\":");
    jw_cstr(w, sc->label);
    jw_lit(w, ",\"comment\":");
    jw_cstr(w, sc->comment);
    if (human) {
        jw_lit(w, ",\"correction\":");
        jw_cstr(w, sc->correction);
        jw_lit(w, ",\"session\":");
        jw_lit(w, sc->trace_id != NULL && sc->trace_id[0] == '\0' ? "true" : "false");
        jw_lit(w, ",\"created_us\":");
        jw_int(w, sc->created_us);
    }
    jw_lit(w, "}");
    return 0;
}

const char *gyre_store_score_source_name(int source)
{
    switch (source) {
    case GYRE_SCORE_HUMAN: return "human";
    case GYRE_SCORE_HEURISTIC: return "heuristic";
    case GYRE_SCORE_JUDGE: return "judge";
    case GYRE_SCORE_GUARDRAIL: return "guardrail";
    default: return "unknown";
    }
}

int gyre_store_render_loop(gyre_store_t *s, const char *trace_id, gyre_buf_t *out, char *err, size_t errlen)
{
    gyre_buf_t scores;
    gyre_buf_init(&scores, out->max);
    loop_render_t c = {{out, 0}, {&scores, 0}, 0, 0};
    int32_t cluster = -1;
    char run[64];
    jw_lit(&c.fb, ",\"feedback\":[");
    int r = gyre_store_trace_scores(s, trace_id, loop_score_cb, &c, err, errlen);
    jw_lit(&c.fb, "],\"scores\":[");
    if (c.sc.r == 0 && scores.len > 0)
        jw_raw(&c.fb, scores.base, scores.len);
    else if (c.sc.r != 0)
        c.fb.r = c.sc.r;
    gyre_buf_dispose(&scores);
    jw_lit(&c.fb, "],\"cluster\":");
    if (r == 0) {
        r = gyre_store_trace_cluster(s, trace_id, &cluster, run, sizeof(run), err, errlen);
        if (r == 0) {
            jw_lit(&c.fb, "{\"id\":");
            jw_int(&c.fb, cluster);
            jw_lit(&c.fb, ",\"run\":");
            jw_cstr(&c.fb, run);
            jw_lit(&c.fb, "}");
        } else if (r == -ENOENT) {
            jw_lit(&c.fb, "null");
            r = 0;
        }
    }
    if (r == 0 && c.fb.r != 0) {
        r = -E2BIG;
        gyre_store_set_err(err, errlen, "store: the answer is larger than its buffer (%zu bytes)", out->max);
    }
    return r;
}
