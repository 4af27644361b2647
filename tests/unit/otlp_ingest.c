/*
 * src/otlp/ingest.c: OTLP/JSON and OTLP/protobuf requests into traces.  A
 * span of gyre's own export reads back as the trace that was encoded;
 * foreign spans map the vocabularies' fields; spans that are not model
 * calls are skipped; a malformed body stores nothing.
 */
#include "otlp/otlp.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "test.h"

#define TS(s) ((gyre_tstr_t){(char *)(s), sizeof(s) - 1})

/* What the callback got: owned copies. */
typedef struct got {
    gyre_trace_t *t[8];
    size_t n;
} got_t;

static void keep_cb(const gyre_trace_t *t, void *ctx)
{
    got_t *g = ctx;
    if (g->n < 8)
        g->t[g->n++] = gyre_trace_copy(t);
}

static void got_free(got_t *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->t[i]);
}

static int ingest_json(const char *body, got_t *g, gyre_otlp_ingest_result_t *res)
{
    return gyre_otlp_ingest(body, strlen(body), GYRE_OTLP_JSON, keep_cb, g, res);
}

static void tcheck(const gyre_tstr_t *s, const char *want, const char *what)
{
    if (s->len != strlen(want) || (s->len != 0 && memcmp(s->p, want, s->len) != 0)) {
        fprintf(stderr, "  %s == \"%.*s\", expected \"%s\"\n", what, (int)s->len, s->p ? s->p : "", want);
        gyre_test_failures++;
    }
}
#define CHECK_TSTR(s, want) tcheck(&(s), (want), #s)

TEST(otlp_ingest_reads_back_what_encode_wrote)
{
    gyre_trace_t t;
    memset(&t, 0, sizeof(t));
    strcpy(t.trace_id, "0123456789abcdef0123456789abcdef");
    strcpy(t.otel_trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    strcpy(t.span_id, "00f067aa0ba902b7");
    t.request_id = TS("req-1");
    t.started_us = 1764583200000001;
    t.ended_us = 1764583200250002;
    t.ttft_us = -1;
    t.endpoint = TS("/v1/messages");
    t.route = TS("chat");
    t.provider = TS("primary");
    t.model = TS("claude-x");
    t.status = 429;
    t.cache_hit = 1;
    t.finish_reason = TS("stop");
    t.prompt_tokens = 12;
    t.completion_tokens = -1;
    t.cached_tokens = 0;
    t.reasoning_tokens = 3;
    t.cost_usd = 0.1 + 0.2;
    t.session = TS("s");
    t.agent = TS("a");
    t.user = TS("u");
    t.ntags = 1;
    t.tags[0] = TS("x");
    t.nmeta = 1;
    t.meta[0].key = TS("k");
    t.meta[0].value = TS("v");
    t.nattempts = 2;
    t.attempts[0] = (gyre_trace_attempt_t){TS("p1"), TS("m1"), TS("p1#0"), 0, 1764583200000100, 5, TS("refused")};
    t.attempts[1] = (gyre_trace_attempt_t){TS("p2"), TS("m2"), {NULL, 0}, 429, 1764583200000200, 7, {NULL, 0}};
    t.request_body = TS("{\"a\":1}");
    t.response_body = TS("not json");

    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    const gyre_trace_t *ts[1] = {&t};
    size_t n;
    CHECK_INT(gyre_otlp_encode_request(&b, ts, 1, "gyre", NULL, &n), 0);
    got_t g = {0};
    gyre_otlp_ingest_result_t res;
    CHECK_INT(gyre_otlp_ingest(b.base, b.len, GYRE_OTLP_JSON, keep_cb, &g, &res), 0);
    CHECK_INT(res.spans, 1);
    CHECK_INT(res.stored, 1);
    CHECK_INT(g.n, 1);
    if (g.n == 1) {
        const gyre_trace_t *r = g.t[0];
        CHECK_STR(r->trace_id, t.trace_id);
        CHECK_STR(r->otel_trace_id, t.otel_trace_id);
        CHECK_STR(r->span_id, t.span_id);
        CHECK_STR(r->parent_span_id, "");
        CHECK_TSTR(r->request_id, "req-1");
        CHECK_INT(r->started_us, t.started_us);
        CHECK_INT(r->ended_us, t.ended_us);
        CHECK_INT(r->ttft_us, -1);
        CHECK_TSTR(r->endpoint, "/v1/messages");
        CHECK_TSTR(r->route, "chat");
        CHECK_TSTR(r->provider, "primary");
        CHECK_TSTR(r->model, "claude-x");
        CHECK_INT(r->status, 429);
        CHECK_INT(r->stream, 0);
        CHECK_INT(r->cache_hit, 1);
        CHECK_TSTR(r->finish_reason, "stop");
        CHECK_INT(r->prompt_tokens, 12);
        CHECK_INT(r->completion_tokens, -1);
        CHECK_INT(r->cached_tokens, 0);
        CHECK_INT(r->reasoning_tokens, 3);
        CHECK(r->cost_usd == t.cost_usd);
        CHECK_TSTR(r->session, "s");
        CHECK_TSTR(r->agent, "a");
        CHECK_TSTR(r->user, "u");
        CHECK_INT(r->ntags, 1);
        CHECK_TSTR(r->tags[0], "x");
        CHECK_INT(r->nmeta, 1);
        CHECK_TSTR(r->meta[0].key, "k");
        CHECK_TSTR(r->meta[0].value, "v");
        CHECK_INT(r->nattempts, 2);
        CHECK_TSTR(r->attempts[0].provider, "p1");
        CHECK_TSTR(r->attempts[0].key_id, "p1#0");
        CHECK_TSTR(r->attempts[0].error, "refused");
        CHECK_INT(r->attempts[0].status, 0);
        CHECK_INT(r->attempts[0].started_us, 1764583200000100);
        CHECK_INT(r->attempts[0].latency_us, 5);
        CHECK_TSTR(r->attempts[1].model, "m2");
        CHECK_TSTR(r->attempts[1].key_id, "");
        CHECK_INT(r->attempts[1].status, 429);
        CHECK_TSTR(r->request_body, "{\"a\":1}");
        CHECK_TSTR(r->response_body, "not json");
    }
    got_free(&g);
    gyre_buf_dispose(&b);
}

static const char foreign[] =
    "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"app\"}}]},"
    "\"scopeSpans\":[{\"spans\":["
    "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\",\"name\":\"chat gpt-4o\","
    "\"kind\":3,\"startTimeUnixNano\":\"1000\",\"endTimeUnixNano\":\"5000\",\"attributes\":["
    "{\"key\":\"gen_ai.operation.name\",\"value\":{\"stringValue\":\"chat\"}},"
    "{\"key\":\"gen_ai.provider.name\",\"value\":{\"stringValue\":\"openai\"}},"
    "{\"key\":\"gen_ai.request.model\",\"value\":{\"stringValue\":\"gpt-4o\"}},"
    "{\"key\":\"gen_ai.usage.input_tokens\",\"value\":{\"intValue\":\"7\"}},"
    "{\"key\":\"gen_ai.usage.output_tokens\",\"value\":{\"intValue\":2}},"
    "{\"key\":\"error.type\",\"value\":{\"stringValue\":\"timeout\"}}],"
    "\"status\":{\"code\":2}},"
    "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b175\",\"name\":\"GET /\","
    "\"kind\":2,\"attributes\":[{\"key\":\"http.request.method\",\"value\":{\"stringValue\":\"GET\"}}]}"
    "]}]}]}";

TEST(otlp_ingest_maps_a_foreign_genai_span_and_skips_an_http_span)
{
    got_t g = {0};
    gyre_otlp_ingest_result_t res;
    CHECK_INT(ingest_json(foreign, &g, &res), 0);
    CHECK_INT(res.spans, 2);
    CHECK_INT(res.stored, 1);
    CHECK_INT(res.skipped, 1);
    CHECK_INT(res.rejected, 0);
    if (g.n == 1) {
        const gyre_trace_t *r = g.t[0];
        CHECK_STR(r->trace_id, "dc26cd37cc243fff8d43658cbf970807");
        CHECK_STR(r->otel_trace_id, "5b8efff798038103d269b633813fc60c");
        CHECK_TSTR(r->endpoint, "otlp");
        CHECK_TSTR(r->provider, "openai");
        CHECK_TSTR(r->model, "gpt-4o");
        CHECK_TSTR(r->agent, "app");
        CHECK_INT(r->prompt_tokens, 7);
        CHECK_INT(r->completion_tokens, 2);
        CHECK_INT(r->started_us, 1);
        CHECK_INT(r->ended_us, 5);
        CHECK_INT(r->status, 500); /* ERROR with a non-numeric error.type */
        CHECK(isnan(r->cost_usd));
        CHECK_INT(r->request_body.len, 0);
    }
    got_free(&g);
}

TEST(otlp_ingest_the_derived_trace_id_is_fixed_by_the_two_ids)
{
    const uint8_t tid[16] = {0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03,
                             0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c};
    const uint8_t sid[8] = {0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74};
    char out[33];
    gyre_otlp_derive_trace_id(tid, sid, out);
    CHECK_STR(out, "dc26cd37cc243fff8d43658cbf970807");
}

TEST(otlp_ingest_a_malformed_json_body_stores_nothing_and_says_where)
{
    static const char body[] = "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
                               "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
                               "\"attributes\":[{\"key\":\"gen_ai.system\",\"value\":{\"stringValue\":\"x\"}}]},"
                               "{\"attributes\":[{\"value\":{}}]}]}]}]}";
    got_t g = {0};
    gyre_otlp_ingest_result_t res;
    CHECK_INT(ingest_json(body, &g, &res), -EINVAL);
    CHECK_INT(g.n, 0);
    CHECK_STR(res.message, "resourceSpans[0].scopeSpans[0].spans[1]: attributes[0] has no string 'key'");
    CHECK_INT(ingest_json("[]", &g, &res), -EINVAL);
    CHECK_STR(res.message, "the body is not a JSON object (an ExportTraceServiceRequest)");
    CHECK_INT(ingest_json("{}", &g, &res), 0);
    CHECK_INT(res.spans, 0);
}

TEST(otlp_ingest_a_model_call_with_a_bad_id_is_rejected_not_stored)
{
    static const char body[] = "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
                               "{\"traceId\":\"00000000000000000000000000000000\",\"spanId\":\"eee19b7ec3c1b174\","
                               "\"attributes\":[{\"key\":\"llm.model_name\",\"value\":{\"stringValue\":\"m\"}}]}]}]}]}";
    got_t g = {0};
    gyre_otlp_ingest_result_t res;
    CHECK_INT(ingest_json(body, &g, &res), 0);
    CHECK_INT(res.rejected, 1);
    CHECK_INT(res.stored, 0);
    CHECK_INT(g.n, 0);
}

/* ---- Protobuf, written by hand from trace.proto's field numbers. ---- */

static void put(gyre_buf_t *b, const void *p, size_t n)
{
    gyre_buf_append(b, p, n);
}

static void varint(gyre_buf_t *b, uint64_t v)
{
    do {
        uint8_t c = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        put(b, &c, 1);
        v >>= 7;
    } while (v != 0);
}

static void lenf(gyre_buf_t *b, unsigned field, const void *p, size_t n)
{
    varint(b, (uint64_t)field << 3 | 2);
    varint(b, n);
    put(b, p, n);
}

static void fixed64(gyre_buf_t *b, unsigned field, uint64_t v)
{
    varint(b, (uint64_t)field << 3 | 1);
    for (int i = 0; i < 8; i++) {
        uint8_t c = (uint8_t)(v >> (8 * i));
        put(b, &c, 1);
    }
}

/* A KeyValue with a string (or int when s is NULL) value, as field `field`. */
static void kv(gyre_buf_t *b, unsigned field, const char *key, const char *s, int64_t i)
{
    gyre_buf_t any, pair;
    gyre_buf_init(&any, 4096);
    gyre_buf_init(&pair, 4096);
    if (s != NULL) {
        lenf(&any, 1, s, strlen(s));
    } else {
        varint(&any, 3 << 3 | 0);
        varint(&any, (uint64_t)i);
    }
    lenf(&pair, 1, key, strlen(key));
    lenf(&pair, 2, any.base, any.len);
    lenf(b, field, pair.base, pair.len);
    gyre_buf_dispose(&any);
    gyre_buf_dispose(&pair);
}

static void pb_request(gyre_buf_t *out)
{
    static const uint8_t tid[16] = {0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03,
                                    0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c};
    static const uint8_t sid[8] = {0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74};
    gyre_buf_t span, res, scope, rs;
    gyre_buf_init(&span, 1 << 16);
    gyre_buf_init(&res, 1 << 16);
    gyre_buf_init(&scope, 1 << 16);
    gyre_buf_init(&rs, 1 << 16);
    lenf(&span, 1, tid, 16);
    lenf(&span, 2, sid, 8);
    lenf(&span, 5, "openai.chat", 11);
    fixed64(&span, 7, 2000000);
    fixed64(&span, 8, 3000000);
    kv(&span, 9, "llm.request.type", "chat", 0);
    kv(&span, 9, "gen_ai.system", "openai", 0);
    kv(&span, 9, "gen_ai.request.model", "gpt-4o-mini", 0);
    kv(&span, 9, "gen_ai.usage.prompt_tokens", NULL, 11);
    kv(&span, 9, "gen_ai.prompt.0.role", "user", 0);
    kv(&span, 9, "gen_ai.prompt.0.content", "hi", 0);
    kv(&res, 1, "service.name", "pb-app", 0);
    lenf(&scope, 2, span.base, span.len);
    lenf(&rs, 1, res.base, res.len);
    lenf(&rs, 2, scope.base, scope.len);
    lenf(out, 1, rs.base, rs.len);
    gyre_buf_dispose(&span);
    gyre_buf_dispose(&res);
    gyre_buf_dispose(&scope);
    gyre_buf_dispose(&rs);
}

TEST(otlp_ingest_reads_a_protobuf_request)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 16);
    pb_request(&b);
    got_t g = {0};
    gyre_otlp_ingest_result_t res;
    CHECK_INT(gyre_otlp_ingest(b.base, b.len, GYRE_OTLP_PROTOBUF, keep_cb, &g, &res), 0);
    CHECK_INT(res.stored, 1);
    if (g.n == 1) {
        const gyre_trace_t *r = g.t[0];
        CHECK_STR(r->trace_id, "dc26cd37cc243fff8d43658cbf970807");
        CHECK_TSTR(r->provider, "openai");
        CHECK_TSTR(r->model, "gpt-4o-mini");
        CHECK_TSTR(r->agent, "pb-app");
        CHECK_INT(r->prompt_tokens, 11);
        CHECK_INT(r->started_us, 2000);
        CHECK_INT(r->ended_us, 3000);
        CHECK_INT(r->status, 200);
        CHECK_TSTR(r->request_body, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
        CHECK_INT(r->nmeta, 1);
        CHECK_TSTR(r->meta[0].key, "otel.span_name");
        CHECK_TSTR(r->meta[0].value, "openai.chat");
    }
    got_free(&g);
    /* Every truncation of it is malformed, and stores nothing. */
    for (size_t cut = 1; cut < b.len; cut++) {
        got_t none = {0};
        int rc = gyre_otlp_ingest(b.base, cut, GYRE_OTLP_PROTOBUF, keep_cb, &none, &res);
        /* A cut at a field boundary can still be a valid (shorter) request; anything else stores nothing. */
        if (rc == -EINVAL)
            CHECK_INT(none.n, 0);
        else
            CHECK_INT(rc, 0);
        got_free(&none);
    }
    CHECK_INT(gyre_otlp_ingest(b.base, b.len - 1, GYRE_OTLP_PROTOBUF, keep_cb, &g, &res), -EINVAL);
    gyre_buf_dispose(&b);
}
