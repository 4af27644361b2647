/*
 * src/otlp/encode.c: a trace as an OTLP/JSON span, with the GenAI semantic
 * conventions, the raw bodies, gyre's own fields and its attempts as events;
 * unknown numbers are left out, and a span that does not fit is not cut.
 */
#include "otlp/otlp.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

#define TS(s) ((gyre_tstr_t){(char *)(s), sizeof(s) - 1})

static const char request[] = "{\"model\":\"chat\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                              "{\"role\":\"user\",\"content\":\"Weather in Oslo?\"}]}";
static const char response[] =
    "{\"id\":\"chatcmpl-9\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,"
    "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
    "\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}]},\"finish_reason\":\"tool_calls\"}]}";

static void sample(gyre_trace_t *t)
{
    memset(t, 0, sizeof(*t));
    strcpy(t->trace_id, "0123456789abcdef0123456789abcdef");
    strcpy(t->otel_trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    strcpy(t->span_id, "00f067aa0ba902b7");
    strcpy(t->parent_span_id, "00f067aa0ba902b6");
    t->request_id = TS("req-1");
    t->started_us = 1764583200000000;
    t->ended_us = 1764583200250000;
    t->ttft_us = 1200;
    t->endpoint = TS("/v1/chat/completions");
    t->route = TS("chat");
    t->provider = TS("primary");
    t->model = TS("gpt-4o-mini");
    t->status = 200;
    t->stream = 1;
    t->finish_reason = TS("tool_calls");
    t->prompt_tokens = 12;
    t->completion_tokens = 5;
    t->cached_tokens = 4;
    t->reasoning_tokens = -1;
    t->cost_usd = 0.000123;
    t->session = TS("sess-1");
    t->agent = TS("planner");
    t->user = TS("u-1");
    t->ntags = 2;
    t->tags[0] = TS("alpha");
    t->tags[1] = TS("beta");
    t->nmeta = 1;
    t->meta[0].key = TS("team");
    t->meta[0].value = TS("search");
    t->nattempts = 1;
    t->attempts[0] = (gyre_trace_attempt_t){TS("primary"), TS("gpt-4o-mini"), TS("primary#0"), 200,
                                            1764583200001000, 240000, {NULL, 0}};
    t->request_body = TS(request);
    t->response_body = TS(response);
}

static gyre_config_t *config_with_primary(void)
{
    static const char yaml[] = "providers:\n  - {name: primary, kind: anthropic, base_url: 'http://h/v1'}\n";
    gyre_config_errors_t e = {0};
    gyre_config_t *c = gyre_config_parse("t.yaml", yaml, strlen(yaml), &e);
    gyre_config_errors_dispose(&e);
    return c;
}

static const cJSON *attr(const cJSON *attrs, const char *key)
{
    const cJSON *a;
    cJSON_ArrayForEach(a, attrs)
    {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(a, "key");
        if (cJSON_IsString(k) && strcmp(k->valuestring, key) == 0)
            return cJSON_GetObjectItemCaseSensitive(a, "value");
    }
    return NULL;
}

static const char *sattr(const cJSON *attrs, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(attr(attrs, key), "stringValue");
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *iattr(const cJSON *attrs, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(attr(attrs, key), "intValue");
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static cJSON *encode(const gyre_trace_t *t, const gyre_config_t *c)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    CHECK_INT(gyre_otlp_encode_span(&b, t, c), 0);
    cJSON *j = cJSON_ParseWithLength(b.base, b.len);
    CHECK(j != NULL);
    gyre_buf_dispose(&b);
    return j;
}

TEST(otlp_encode_span_ids_times_kind_and_name)
{
    gyre_trace_t t;
    sample(&t);
    cJSON *j = encode(&t, NULL);
    CHECK_STR(cJSON_GetObjectItem(j, "traceId")->valuestring, "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK_STR(cJSON_GetObjectItem(j, "spanId")->valuestring, "00f067aa0ba902b7");
    CHECK_STR(cJSON_GetObjectItem(j, "parentSpanId")->valuestring, "00f067aa0ba902b6");
    CHECK_STR(cJSON_GetObjectItem(j, "name")->valuestring, "chat gpt-4o-mini");
    CHECK_INT(cJSON_GetObjectItem(j, "kind")->valueint, 3);
    CHECK_STR(cJSON_GetObjectItem(j, "startTimeUnixNano")->valuestring, "1764583200000000000");
    CHECK_STR(cJSON_GetObjectItem(j, "endTimeUnixNano")->valuestring, "1764583200250000000");
    CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "status")), 0);
    cJSON_Delete(j);
}

TEST(otlp_encode_genai_attributes_with_the_provider_kind_from_the_config)
{
    gyre_trace_t t;
    sample(&t);
    gyre_config_t *c = config_with_primary();
    cJSON *j = encode(&t, c);
    const cJSON *a = cJSON_GetObjectItem(j, "attributes");
    CHECK_STR(sattr(a, "gen_ai.operation.name"), "chat");
    CHECK_STR(sattr(a, "gen_ai.provider.name"), "anthropic");
    CHECK_STR(sattr(a, "gen_ai.request.model"), "gpt-4o-mini");
    CHECK_STR(sattr(a, "gen_ai.response.id"), "chatcmpl-9");
    CHECK_STR(iattr(a, "gen_ai.usage.input_tokens"), "12");
    CHECK_STR(iattr(a, "gen_ai.usage.output_tokens"), "5");
    CHECK_STR(iattr(a, "gen_ai.usage.cache_read.input_tokens"), "4");
    CHECK_STR(sattr(a, "gen_ai.conversation.id"), "sess-1");
    CHECK_STR(iattr(a, "http.response.status_code"), "200");
    const cJSON *fr = cJSON_GetObjectItem(cJSON_GetObjectItem(attr(a, "gen_ai.response.finish_reasons"), "arrayValue"),
                                          "values");
    CHECK_INT(cJSON_GetArraySize(fr), 1);
    CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(fr, 0), "stringValue")->valuestring, "tool_calls");
    CHECK(attr(a, "error.type") == NULL);
    cJSON_Delete(j);
    gyre_config_free(c);
}

TEST(otlp_encode_messages_in_the_semantic_conventions_shape_and_raw_bodies)
{
    gyre_trace_t t;
    sample(&t);
    cJSON *j = encode(&t, NULL);
    const cJSON *a = cJSON_GetObjectItem(j, "attributes");
    CHECK_STR(sattr(a, "gen_ai.input.messages"),
              "[{\"role\":\"system\",\"parts\":[{\"type\":\"text\",\"content\":\"Be brief.\"}]},"
              "{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":\"Weather in Oslo?\"}]}]");
    CHECK_STR(sattr(a, "gen_ai.output.messages"),
              "[{\"role\":\"assistant\",\"parts\":[{\"type\":\"tool_call\",\"id\":\"call_1\",\"name\":\"get_weather\","
              "\"arguments\":{\"city\":\"Oslo\"}}],\"finish_reason\":\"tool_calls\"}]");
    CHECK_STR(sattr(a, "input.value"), request);
    CHECK_STR(sattr(a, "input.mime_type"), "application/json");
    CHECK_STR(sattr(a, "output.value"), response);
    cJSON_Delete(j);
}

TEST(otlp_encode_a_trace_without_bodies_carries_no_content)
{
    gyre_trace_t t;
    sample(&t);
    t.request_body = t.response_body = (gyre_tstr_t){NULL, 0};
    cJSON *j = encode(&t, NULL);
    const cJSON *a = cJSON_GetObjectItem(j, "attributes");
    CHECK(attr(a, "gen_ai.input.messages") == NULL);
    CHECK(attr(a, "gen_ai.output.messages") == NULL);
    CHECK(attr(a, "input.value") == NULL);
    CHECK(attr(a, "output.value") == NULL);
    cJSON_Delete(j);
}

TEST(otlp_encode_gyre_fields_and_attempts_as_events)
{
    gyre_trace_t t;
    sample(&t);
    cJSON *j = encode(&t, NULL);
    const cJSON *a = cJSON_GetObjectItem(j, "attributes");
    CHECK_STR(sattr(a, "gyre.trace_id"), "0123456789abcdef0123456789abcdef");
    CHECK_STR(sattr(a, "gyre.request_id"), "req-1");
    CHECK_STR(sattr(a, "gyre.endpoint"), "/v1/chat/completions");
    CHECK_STR(sattr(a, "gyre.route"), "chat");
    CHECK_STR(sattr(a, "gyre.provider"), "primary");
    CHECK_STR(sattr(a, "gyre.agent"), "planner");
    CHECK_STR(sattr(a, "gyre.user"), "u-1");
    CHECK_STR(sattr(a, "gyre.meta.team"), "search");
    CHECK_STR(iattr(a, "gyre.ttft_us"), "1200");
    CHECK_STR(iattr(a, "gyre.usage.cached_tokens"), "4");
    CHECK(attr(a, "gyre.usage.reasoning_tokens") == NULL); /* unknown: left out, not 0 */
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(attr(a, "gyre.stream"), "boolValue")));
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(attr(a, "gyre.cache_hit"), "boolValue")));
    CHECK(cJSON_GetObjectItem(attr(a, "gyre.cost_usd"), "doubleValue")->valuedouble == 0.000123);
    const cJSON *tags = cJSON_GetObjectItem(cJSON_GetObjectItem(attr(a, "gyre.tags"), "arrayValue"), "values");
    CHECK_INT(cJSON_GetArraySize(tags), 2);
    const cJSON *ev = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "events"), 0);
    CHECK_STR(cJSON_GetObjectItem(ev, "name")->valuestring, "gyre.attempt");
    CHECK_STR(cJSON_GetObjectItem(ev, "timeUnixNano")->valuestring, "1764583200001000000");
    const cJSON *ea = cJSON_GetObjectItem(ev, "attributes");
    CHECK_STR(sattr(ea, "gyre.attempt.provider"), "primary");
    CHECK_STR(sattr(ea, "gyre.attempt.key_id"), "primary#0");
    CHECK_STR(iattr(ea, "gyre.attempt.status"), "200");
    CHECK_STR(iattr(ea, "gyre.attempt.latency_us"), "240000");
    CHECK(attr(ea, "gyre.attempt.error") == NULL);
    cJSON_Delete(j);
}

TEST(otlp_encode_an_error_answer_has_status_error_and_error_type)
{
    gyre_trace_t t;
    sample(&t);
    t.status = 503;
    t.cost_usd = NAN;
    t.attempts[0].status = 503;
    t.attempts[0].error = TS("upstream answered 503");
    cJSON *j = encode(&t, NULL);
    const cJSON *a = cJSON_GetObjectItem(j, "attributes");
    CHECK_STR(sattr(a, "error.type"), "503");
    CHECK(attr(a, "gyre.cost_usd") == NULL);
    const cJSON *st = cJSON_GetObjectItem(j, "status");
    CHECK_INT(cJSON_GetObjectItem(st, "code")->valueint, 2);
    CHECK_STR(cJSON_GetObjectItem(st, "message")->valuestring, "upstream answered 503");
    cJSON_Delete(j);
}

TEST(otlp_encode_request_fits_what_it_can_and_stays_whole)
{
    gyre_trace_t t;
    sample(&t);
    const gyre_trace_t *ts[3] = {&t, &t, &t};
    gyre_buf_t one;
    gyre_buf_init(&one, 1 << 20);
    CHECK_INT(gyre_otlp_encode_span(&one, &t, NULL), 0);
    /* Room for the envelope and two spans, not three. */
    gyre_buf_t b;
    gyre_buf_init(&b, 2 * one.len + 400);
    size_t n = 0;
    CHECK_INT(gyre_otlp_encode_request(&b, ts, 3, "gyre-test", NULL, &n), 0);
    CHECK_INT(n, 2);
    cJSON *j = cJSON_ParseWithLength(b.base, b.len);
    CHECK(j != NULL);
    const cJSON *rs = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "resourceSpans"), 0);
    CHECK_STR(sattr(cJSON_GetObjectItem(cJSON_GetObjectItem(rs, "resource"), "attributes"), "service.name"),
              "gyre-test");
    const cJSON *ss = cJSON_GetArrayItem(cJSON_GetObjectItem(rs, "scopeSpans"), 0);
    CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(ss, "spans")), 2);
    cJSON_Delete(j);
    /* Not even one fits: nothing is written. */
    gyre_buf_t tiny;
    gyre_buf_init(&tiny, 300);
    CHECK_INT(gyre_otlp_encode_request(&tiny, ts, 1, "gyre", NULL, &n), -E2BIG);
    CHECK_INT(n, 0);
    CHECK_INT(tiny.len, 0);
    gyre_buf_dispose(&tiny);
    gyre_buf_dispose(&b);
    gyre_buf_dispose(&one);
}

TEST(otlp_provider_names_are_the_semantic_conventions_well_known_values)
{
    CHECK_STR(gyre_otlp_provider_name(GYRE_PROVIDER_OPENAI), "openai");
    CHECK_STR(gyre_otlp_provider_name(GYRE_PROVIDER_AZURE), "azure.ai.openai");
    CHECK_STR(gyre_otlp_provider_name(GYRE_PROVIDER_ANTHROPIC), "anthropic");
    CHECK_STR(gyre_otlp_provider_name(GYRE_PROVIDER_GEMINI), "gcp.gemini");
    CHECK_STR(gyre_otlp_provider_name(GYRE_PROVIDER_BEDROCK), "aws.bedrock");
}

TEST(otlp_encode_a_cache_hit_costs_0_with_gyre_cost_saved_usd_beside_it)
{
    gyre_trace_t t;
    sample(&t);
    t.cache_hit = 1;
    t.cost_usd = 0;
    t.cost_saved_usd = 0.000123;
    cJSON *j = encode(&t, NULL);
    const cJSON *a = cJSON_GetObjectItem(j, "attributes");
    CHECK(cJSON_GetObjectItem(attr(a, "gyre.cost_usd"), "doubleValue")->valuedouble == 0);
    CHECK(cJSON_GetObjectItem(attr(a, "gyre.cost_saved_usd"), "doubleValue")->valuedouble == 0.000123);
    cJSON_Delete(j);
    sample(&t); /* not a hit: nothing saved, no attribute */
    j = encode(&t, NULL);
    CHECK(attr(cJSON_GetObjectItem(j, "attributes"), "gyre.cost_saved_usd") == NULL);
    cJSON_Delete(j);
}
