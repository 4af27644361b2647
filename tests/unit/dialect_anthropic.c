/*
 * src/dialect/anthropic.c: the Anthropic Messages API both ways.  Most
 * translations are checked against golden files in tests/fixtures/anthropic/
 * (NAME.openai.json → NAME.anthropic.json for the request to an Anthropic
 * provider, the other way for answers, .sse files for streams): JSON is
 * compared as values, SSE byte for byte, and each stream is also fed one
 * byte at a time, which must not change a byte of the output.
 */
#include "dialect/anthropic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "dialect/client.h"
#include "dialect/dialect.h"
#include "stream_sse.h"
#include "test.h"

#define FIXTURES "tests/fixtures/anthropic/"
#define LIT(s) s, sizeof(s) - 1
#define BIG ((size_t)64 << 20)

static const char CALL_ID[] = "chatcmpl-gyre0001";
static const long long CALL_CREATED = 1764000000;

/* A fixture's bytes (NUL-terminated), or NULL after a failed CHECK. */
static char *slurp(const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof(path), FIXTURES "%s", name);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (f == NULL) {
        fprintf(stderr, "  cannot open %s (run from the repository root)\n", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    fclose(f);
    s[got] = '\0';
    *len = got;
    return s;
}

static cJSON *fixture_json(const char *name)
{
    size_t len;
    char *s = slurp(name, &len);
    if (s == NULL)
        return NULL;
    cJSON *v = cJSON_ParseWithLength(s, len);
    CHECK(v != NULL);
    free(s);
    return v;
}

/* `got` must be the same JSON value as the fixture (member order aside). */
static void check_json_fixture(const char *got, size_t len, const char *name)
{
    cJSON *want = fixture_json(name), *have = cJSON_ParseWithLength(got, len);
    CHECK(have != NULL);
    int same = want != NULL && have != NULL && cJSON_Compare(want, have, 1);
    CHECK(same);
    if (!same) {
        char *w = want != NULL ? cJSON_Print(want) : NULL;
        fprintf(stderr, "  %s differs:\n  got:  %.*s\n  want: %s\n", name, (int)len, got, w != NULL ? w : "?");
        free(w);
    }
    cJSON_Delete(want);
    cJSON_Delete(have);
}

static void check_text_fixture(const gyre_buf_t *got, const char *name)
{
    size_t len;
    char *want = slurp(name, &len);
    if (want == NULL)
        return;
    int same = got->len == len && (len == 0 || memcmp(got->base, want, len) == 0);
    CHECK(same);
    if (!same)
        fprintf(stderr, "  %s differs:\n--- got ---\n%.*s--- want ---\n%s", name, (int)got->len,
                got->base != NULL ? got->base : "", want);
    free(want);
}

static gyre_chat_call_t call_of(const cJSON *req, const gyre_provider_conf_t *provider)
{
    gyre_chat_call_t c;
    memset(&c, 0, sizeof(c));
    c.req = req;
    c.model = "claude-sonnet-4-5-20250929";
    c.provider = provider;
    c.stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "stream"));
    c.include_usage = c.stream;
    c.id = CALL_ID;
    c.created = CALL_CREATED;
    return c;
}

/* --- OpenAI request → Anthropic request ----------------------------------- */

static void check_request_fixture(const char *base, const gyre_provider_conf_t *provider)
{
    char in[128], want[128];
    snprintf(in, sizeof(in), "%s.openai.json", base);
    snprintf(want, sizeof(want), "%s.anthropic.json", base);
    cJSON *req = fixture_json(in);
    gyre_chat_call_t call = call_of(req, provider);
    gyre_buf_t path, body;
    gyre_buf_init(&path, 1024);
    gyre_buf_init(&body, BIG);
    gyre_api_error_t err;
    CHECK_INT(gyre_dialect_anthropic.chat_request(&call, &path, &body, &err), 0);
    CHECK_STR(path.base, "/messages");
    check_json_fixture(body.base, body.len, want);
    gyre_buf_dispose(&path);
    gyre_buf_dispose(&body);
    cJSON_Delete(req);
}

/* Translates a literal request; returns the status, fills `err` on failure and `body`. */
static int request_of(const char *json, const gyre_provider_conf_t *provider, gyre_buf_t *body, gyre_api_error_t *err)
{
    cJSON *req = cJSON_Parse(json);
    CHECK(req != NULL);
    gyre_chat_call_t call = call_of(req, provider);
    gyre_buf_t path;
    gyre_buf_init(&path, 1024);
    gyre_buf_init(body, BIG);
    int r = gyre_dialect_anthropic.chat_request(&call, &path, body, err);
    gyre_buf_dispose(&path);
    cJSON_Delete(req);
    return r;
}

/* The value at `key` of a translated body, printed compactly; caller frees. */
static char *member_of(const gyre_buf_t *body, const char *key)
{
    cJSON *v = cJSON_Parse(body->base != NULL ? body->base : "");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(v, key);
    char *s = m != NULL ? cJSON_PrintUnformatted(m) : strdup("(absent)");
    cJSON_Delete(v);
    return s;
}

#define CHECK_MEMBER(body, key, want)                                                                                  \
    do {                                                                                                               \
        char *m_ = member_of((body), (key));                                                                           \
        CHECK_STR(m_, (want));                                                                                         \
        free(m_);                                                                                                      \
    } while (0)

#define CHECK_REQUEST_400(json, param_, message_)                                                                      \
    do {                                                                                                               \
        gyre_buf_t b_;                                                                                                 \
        gyre_api_error_t e_;                                                                                           \
        CHECK_INT(request_of((json), NULL, &b_, &e_), -1);                                                             \
        CHECK_INT(e_.status, 400);                                                                                     \
        CHECK_STR(e_.type, "invalid_request_error");                                                                   \
        CHECK_STR(e_.param, (param_));                                                                                 \
        CHECK_STR(e_.message, (message_));                                                                             \
        gyre_buf_dispose(&b_);                                                                                         \
    } while (0)

TEST(anthropic_request_sends_system_user_sampling_and_metadata)
{
    check_request_fixture("chat_basic", NULL);
}

TEST(anthropic_request_joins_system_and_developer_messages_into_one_string)
{
    check_request_fixture("chat_system", NULL);
}

TEST(anthropic_request_keeps_system_blocks_when_a_part_has_cache_control)
{
    check_request_fixture("chat_system_cache", NULL);
}

TEST(anthropic_request_turns_data_urls_into_base64_images_and_http_urls_into_url_images)
{
    check_request_fixture("chat_images", NULL);
}

TEST(anthropic_request_turns_tool_calls_into_tool_use_and_merges_consecutive_tool_results)
{
    check_request_fixture("chat_tools", NULL);
}

TEST(anthropic_request_maps_stop_max_completion_tokens_top_k_stream_and_keeps_a_trailing_assistant_last)
{
    check_request_fixture("chat_stop", NULL);
}

TEST(anthropic_request_max_tokens_defaults_to_the_providers_setting_then_to_4096)
{
    const char req[] = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    gyre_provider_conf_t p;
    memset(&p, 0, sizeof(p));
    p.max_tokens = 2000;
    gyre_buf_t body;
    gyre_api_error_t err;
    CHECK_INT(request_of(req, &p, &body, &err), 0);
    CHECK_MEMBER(&body, "max_tokens", "2000");
    gyre_buf_dispose(&body);
    p.max_tokens = 0;
    CHECK_INT(request_of(req, &p, &body, &err), 0);
    CHECK_MEMBER(&body, "max_tokens", "4096");
    gyre_buf_dispose(&body);
    CHECK_INT(request_of(req, NULL, &body, &err), 0);
    CHECK_MEMBER(&body, "max_tokens", "4096");
    CHECK_MEMBER(&body, "stream", "(absent)");
    CHECK_MEMBER(&body, "system", "(absent)");
    CHECK_MEMBER(&body, "model", "\"claude-sonnet-4-5-20250929\"");
    gyre_buf_dispose(&body);
}

#define TOOLS_WITH(choice)                                                                                             \
    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[{\"type\":\"function\","        \
    "\"function\":{\"name\":\"f\"}}]" choice "}"

TEST(anthropic_request_maps_each_tool_choice)
{
    gyre_buf_t body;
    gyre_api_error_t err;
    CHECK_INT(request_of(TOOLS_WITH(",\"tool_choice\":\"auto\""), NULL, &body, &err), 0);
    CHECK_MEMBER(&body, "tool_choice", "{\"type\":\"auto\"}");
    CHECK_MEMBER(&body, "tools", "[{\"name\":\"f\",\"input_schema\":{\"type\":\"object\",\"properties\":{}}}]");
    gyre_buf_dispose(&body);
    CHECK_INT(request_of(TOOLS_WITH(",\"tool_choice\":\"none\",\"parallel_tool_calls\":false"), NULL, &body, &err), 0);
    CHECK_MEMBER(&body, "tool_choice", "{\"type\":\"none\"}");
    gyre_buf_dispose(&body);
    CHECK_INT(request_of(TOOLS_WITH(",\"parallel_tool_calls\":false"), NULL, &body, &err), 0);
    CHECK_MEMBER(&body, "tool_choice", "{\"type\":\"auto\",\"disable_parallel_tool_use\":true}");
    gyre_buf_dispose(&body);
    CHECK_INT(request_of(TOOLS_WITH(",\"parallel_tool_calls\":true"), NULL, &body, &err), 0);
    CHECK_MEMBER(&body, "tool_choice", "(absent)");
    gyre_buf_dispose(&body);
}

TEST(anthropic_request_rejects_tool_call_arguments_that_are_not_json)
{
    CHECK_REQUEST_400("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\","
                      "\"content\":null,\"tool_calls\":[{\"id\":\"a\",\"type\":\"function\",\"function\":{\"name\":"
                      "\"f\",\"arguments\":\"{}\"}},{\"id\":\"b\",\"type\":\"function\",\"function\":{\"name\":\"f\","
                      "\"arguments\":\"{city: Paris}\"}}]}]}",
                      "messages[1].tool_calls[1].function.arguments",
                      "'messages[1].tool_calls[1].function.arguments' must be a JSON object encoded as a string");
}

TEST(anthropic_request_rejects_what_the_messages_api_cannot_express)
{
    CHECK_REQUEST_400("{\"model\":\"m\",\"messages\":[{\"role\":\"function\",\"content\":\"x\"}]}", "messages[0].role",
                      "'messages[0].role': the role \"function\" cannot be sent to an Anthropic provider");
    CHECK_REQUEST_400("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\","
                      "\"input_audio\":{}}]}]}",
                      "messages[0].content[0].type",
                      "'messages[0].content[0].type': content parts of type \"input_audio\" cannot be sent to an "
                      "Anthropic provider");
    CHECK_REQUEST_400("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                      "\"image_url\":{\"url\":\"ftp://x/y.png\"}}]}]}",
                      "messages[0].content[0].image_url.url",
                      "'messages[0].content[0].image_url.url' must be a base64 data: URL or an http(s) URL");
    CHECK_REQUEST_400("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                      "\"image_url\":{\"url\":\"data:image/png,abc\"}}]}]}",
                      "messages[0].content[0].image_url.url",
                      "'messages[0].content[0].image_url.url' must be a base64 data: URL (data:<media "
                      "type>;base64,<data>) or an http(s) URL");
    CHECK_REQUEST_400("{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
                      "messages[0].tool_call_id", "'messages[0].tool_call_id' must be a string");
    CHECK_REQUEST_400("{\"model\":\"m\",\"messages\":[],\"stop\":[\"a\",1]}", "stop[1]",
                      "'stop[1]' must be a string, got a number");
    CHECK_REQUEST_400("{\"model\":\"m\",\"messages\":[],\"tools\":[{\"type\":\"custom\"}]}", "tools[0].type",
                      "'tools[0].type' must be \"function\"");
}

/* --- auth headers --------------------------------------------------------- */

static void headers_of(const char *key, const gyre_provider_conf_t *p, gyre_buf_t *h)
{
    gyre_chat_call_t call;
    memset(&call, 0, sizeof(call));
    call.provider = p;
    gyre_buf_init(h, 4096);
    CHECK_INT(gyre_dialect_anthropic.auth_headers(&call, key, "api.anthropic.com", "/v1/messages", LIT("{}"), 0, h), 0);
}

TEST(anthropic_auth_headers_send_the_key_the_version_and_the_content_type)
{
    gyre_buf_t h;
    headers_of("sk-ant-test", NULL, &h);
    CHECK_STR(h.base, "x-api-key: sk-ant-test\r\nanthropic-version: 2023-06-01\r\ncontent-type: application/json\r\n");
    gyre_buf_dispose(&h);
}

TEST(anthropic_auth_headers_use_the_configured_version_and_omit_a_missing_key)
{
    gyre_provider_conf_t p;
    memset(&p, 0, sizeof(p));
    p.api_version = "2025-01-01";
    gyre_buf_t h;
    headers_of(NULL, &p, &h);
    CHECK_STR(h.base, "anthropic-version: 2025-01-01\r\ncontent-type: application/json\r\n");
    gyre_buf_dispose(&h);
}

/* --- Anthropic message → chat.completion ---------------------------------- */

static void check_response_fixture(const char *base)
{
    char in[128], want[128];
    snprintf(in, sizeof(in), "%s.anthropic.json", base);
    snprintf(want, sizeof(want), "%s.openai.json", base);
    size_t len;
    char *body = slurp(in, &len);
    if (body == NULL)
        return;
    gyre_chat_call_t call = call_of(NULL, NULL);
    gyre_buf_t out;
    gyre_buf_init(&out, BIG);
    gyre_api_error_t err;
    CHECK_INT(gyre_dialect_anthropic.chat_response(&call, body, len, &out, &err), 0);
    check_json_fixture(out.base, out.len, want);
    gyre_buf_dispose(&out);
    free(body);
}

TEST(anthropic_response_joins_text_blocks_into_the_content)
{
    check_response_fixture("message_text");
}

TEST(anthropic_response_turns_tool_use_blocks_into_tool_calls_and_drops_thinking)
{
    check_response_fixture("message_tool_use");
}

TEST(anthropic_response_counts_cached_input_in_prompt_tokens_and_keeps_the_raw_cache_counts)
{
    check_response_fixture("message_cache");
}

static char *finish_of(const char *stop_reason_json)
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"type\":\"message\",\"model\":\"m\",\"content\":[],\"stop_reason\":%s,\"usage\":{}}", stop_reason_json);
    gyre_chat_call_t call = call_of(NULL, NULL);
    gyre_buf_t out;
    gyre_buf_init(&out, BIG);
    gyre_api_error_t err;
    CHECK_INT(gyre_dialect_anthropic.chat_response(&call, body, strlen(body), &out, &err), 0);
    cJSON *v = cJSON_Parse(out.base);
    const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItem(v, "choices"), 0);
    char *s = cJSON_PrintUnformatted(cJSON_GetObjectItem(choice, "finish_reason"));
    cJSON_Delete(v);
    gyre_buf_dispose(&out);
    return s;
}

#define CHECK_FINISH(stop, want)                                                                                       \
    do {                                                                                                               \
        char *f_ = finish_of(stop);                                                                                    \
        CHECK_STR(f_, want);                                                                                           \
        free(f_);                                                                                                      \
    } while (0)

TEST(anthropic_response_maps_every_stop_reason_to_a_finish_reason)
{
    CHECK_FINISH("\"end_turn\"", "\"stop\"");
    CHECK_FINISH("\"stop_sequence\"", "\"stop\"");
    CHECK_FINISH("\"max_tokens\"", "\"length\"");
    CHECK_FINISH("\"tool_use\"", "\"tool_calls\"");
    CHECK_FINISH("\"refusal\"", "\"content_filter\"");
    CHECK_FINISH("\"pause_turn\"", "\"stop\"");
    CHECK_FINISH("null", "null");
}

TEST(anthropic_response_that_is_not_a_message_is_a_502)
{
    gyre_chat_call_t call = call_of(NULL, NULL);
    gyre_buf_t out;
    gyre_buf_init(&out, BIG);
    gyre_api_error_t err;
    CHECK_INT(gyre_dialect_anthropic.chat_response(&call, LIT("{\"type\":\"message\"}"), &out, &err), -1);
    CHECK_INT(err.status, 502);
    CHECK_STR(err.type, "upstream_error");
    CHECK_STR(err.message, "the Anthropic provider's answer is not a message object");
    CHECK_INT(gyre_dialect_anthropic.chat_response(&call, LIT("not json"), &out, &err), -1);
    CHECK_INT(out.len, 0);
    gyre_buf_dispose(&out);
}

TEST(anthropic_error_message_is_the_error_bodys_message_or_the_body)
{
    gyre_buf_t out;
    gyre_buf_init(&out, 4096);
    gyre_dialect_anthropic.error_message(
        LIT("{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\",\"message\":\"model: claude-x\"}}"), &out);
    CHECK_STR(out.base, "model: claude-x");
    gyre_buf_reset(&out);
    gyre_dialect_anthropic.error_message(LIT("upstream connect error"), &out);
    CHECK_STR(out.base, "upstream connect error");
    gyre_buf_dispose(&out);
}

/* --- Anthropic event stream → OpenAI chunks ------------------------------- */

/* Feeds a stream whole, or one byte at a time; returns the last feed's result. */
static int run_stream(const char *bytes, size_t len, int include_usage, int bytewise, gyre_buf_t *out,
                      gyre_api_error_t *err, int *complete)
{
    gyre_chat_call_t call = call_of(NULL, NULL);
    call.stream = 1;
    call.include_usage = include_usage;
    gyre_dialect_stream_t *s = sse_stream_create(&gyre_dialect_anthropic, &call);
    CHECK_INT(s->complete, 0);
    gyre_buf_init(out, BIG);
    int r = 0;
    if (!bytewise)
        r = sse_stream_feed(&gyre_dialect_anthropic, s, bytes, len, out, err);
    for (size_t i = 0; bytewise && i < len && r == 0; i++)
        r = sse_stream_feed(&gyre_dialect_anthropic, s, bytes + i, 1, out, err);
    *complete = s->complete;
    sse_stream_destroy(&gyre_dialect_anthropic, s);
    return r;
}

static void check_stream_fixture(const char *base, int include_usage)
{
    char in[128], want[128];
    snprintf(in, sizeof(in), "%s.anthropic.sse", base);
    snprintf(want, sizeof(want), "%s.openai.sse", base);
    size_t len;
    char *bytes = slurp(in, &len);
    if (bytes == NULL)
        return;
    for (int bytewise = 0; bytewise <= 1; bytewise++) {
        gyre_buf_t out;
        gyre_api_error_t err;
        int complete;
        CHECK_INT(run_stream(bytes, len, include_usage, bytewise, &out, &err, &complete), 0);
        CHECK_INT(complete, 1);
        check_text_fixture(&out, want);
        gyre_buf_dispose(&out);
    }
    free(bytes);
}

TEST(anthropic_stream_text_becomes_role_content_finish_and_usage_chunks)
{
    check_stream_fixture("stream_text", 1);
}

TEST(anthropic_stream_tool_use_blocks_become_indexed_tool_call_deltas_and_thinking_is_dropped)
{
    check_stream_fixture("stream_tool", 0);
}

TEST(anthropic_stream_error_event_fails_with_the_providers_type_and_message)
{
    size_t len;
    char *bytes = slurp("stream_error.anthropic.sse", &len);
    if (bytes == NULL)
        return;
    for (int bytewise = 0; bytewise <= 1; bytewise++) {
        gyre_buf_t out;
        gyre_api_error_t err;
        int complete;
        CHECK_INT(run_stream(bytes, len, 1, bytewise, &out, &err, &complete), -1);
        CHECK_INT(complete, 0);
        CHECK_INT(err.status, 529);
        CHECK_STR(err.type, "upstream_error");
        CHECK_STR(err.code, "overloaded_error");
        CHECK_STR(err.message, "Overloaded");
        check_text_fixture(&out, "stream_error.openai.sse");
        gyre_buf_dispose(&out);
    }
    free(bytes);
}

static void stream_error_of(const char *type, int status)
{
    char bytes[256];
    snprintf(bytes, sizeof(bytes),
             "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"m\"}}\n\n", type);
    gyre_buf_t out;
    gyre_api_error_t err;
    int complete;
    CHECK_INT(run_stream(bytes, strlen(bytes), 0, 0, &out, &err, &complete), -1);
    CHECK_INT(err.status, status);
    CHECK_INT(out.len, 0);
    gyre_buf_dispose(&out);
}

TEST(anthropic_stream_error_types_map_to_statuses)
{
    stream_error_of("overloaded_error", 529);
    stream_error_of("rate_limit_error", 429);
    stream_error_of("api_error", 500);
    stream_error_of("invalid_request_error", 502);
    stream_error_of("something_new", 502);
}

TEST(anthropic_stream_event_that_is_not_json_is_a_502)
{
    gyre_buf_t out;
    gyre_api_error_t err;
    int complete;
    CHECK_INT(
        run_stream(LIT("event: message_start\ndata: {\"type\":\"message_start\"\n\n"), 0, 0, &out, &err, &complete),
        -1);
    CHECK_INT(err.status, 502);
    CHECK_STR(err.message, "the Anthropic stream sent an event that is not JSON");
    gyre_buf_dispose(&out);
}

TEST(anthropic_stream_delta_for_a_block_that_is_not_open_is_a_502)
{
    gyre_buf_t out;
    gyre_api_error_t err;
    int complete;
    CHECK_INT(
        run_stream(LIT("data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
                       "\"text\":\"\"}}\n\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":"
                       "\"text_delta\",\"text\":\"x\"}}\n\n"),
                   0, 0, &out, &err, &complete),
        -1);
    CHECK_STR(err.message, "the Anthropic stream sent a content_block_delta for a block that is not open");
    gyre_buf_dispose(&out);
}

TEST(anthropic_stream_cut_before_message_stop_is_not_complete)
{
    gyre_buf_t out;
    gyre_api_error_t err;
    int complete;
    CHECK_INT(run_stream(LIT("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"c\","
                             "\"usage\":{\"input_tokens\":1}}}\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\n"),
                         1, 0, &out, &err, &complete),
              0);
    CHECK_INT(complete, 0);
    CHECK_STR(out.base,
              "data: {\"id\":\"chatcmpl-gyre0001\",\"object\":\"chat.completion.chunk\",\"created\":1764000000,"
              "\"model\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
              "\"finish_reason\":null}]}\n\n");
    gyre_buf_dispose(&out);
}

TEST(anthropic_stream_bytes_after_message_stop_are_ignored_even_past_the_bound)
{
    /* An event name longer than the SSE parser's 256-byte bound, after the end. */
    char bytes[1024];
    int n = snprintf(bytes, sizeof(bytes), "data: {\"type\":\"message_stop\"}\n\nevent: %0300d\ndata: {}\n\n", 0);
    gyre_buf_t out;
    gyre_api_error_t err;
    int complete;
    CHECK_INT(run_stream(bytes, (size_t)n, 0, 0, &out, &err, &complete), 0);
    CHECK_INT(complete, 1);
    CHECK(out.len > 14 && memcmp(out.base + out.len - 14, "data: [DONE]\n\n", 14) == 0);
    gyre_buf_dispose(&out);
}

/* --- /v1/messages requests ------------------------------------------------- */

#define CHECK_PARSE_400(body, param_, message_)                                                                        \
    do {                                                                                                               \
        gyre_api_error_t e_;                                                                                           \
        cJSON *r_ = gyre_anthropic_parse_request((body), strlen(body), &e_);                                           \
        CHECK(r_ == NULL);                                                                                             \
        cJSON_Delete(r_);                                                                                              \
        CHECK_INT(e_.status, 400);                                                                                     \
        CHECK_STR(e_.type, "invalid_request_error");                                                                   \
        CHECK_STR(e_.param, (param_));                                                                                 \
        CHECK_STR(e_.message, (message_));                                                                             \
    } while (0)

#define MSGS_WITH(extra)                                                                                               \
    "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]" extra "}"

TEST(anthropic_parse_request_accepts_the_documented_shapes)
{
    static const char *const names[] = {"messages_basic.anthropic.json", "messages_tools.anthropic.json"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t len;
        char *body = slurp(names[i], &len);
        if (body == NULL)
            continue;
        gyre_api_error_t err;
        cJSON *req = gyre_anthropic_parse_request(body, len, &err);
        CHECK(req != NULL);
        if (req == NULL)
            fprintf(stderr, "  %s: %s\n", names[i], err.message);
        cJSON_Delete(req);
        free(body);
    }
}

TEST(anthropic_parse_request_requires_model_max_tokens_and_messages)
{
    CHECK_PARSE_400("{\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", "model",
                    "model: field required");
    CHECK_PARSE_400("{\"model\":\"\",\"max_tokens\":10,\"messages\":[]}", "model", "model: must be a non-empty string");
    CHECK_PARSE_400("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", "max_tokens",
                    "max_tokens: field required");
    CHECK_PARSE_400("{\"model\":\"m\",\"max_tokens\":0,\"messages\":[]}", "max_tokens",
                    "max_tokens: must be a positive integer");
    CHECK_PARSE_400("{\"model\":\"m\",\"max_tokens\":1.5,\"messages\":[]}", "max_tokens",
                    "max_tokens: must be a positive integer");
    CHECK_PARSE_400("{\"model\":\"m\",\"max_tokens\":\"10\",\"messages\":[]}", "max_tokens",
                    "max_tokens: must be a positive integer");
    CHECK_PARSE_400("{\"model\":\"m\",\"max_tokens\":10}", "messages", "messages: field required");
    CHECK_PARSE_400("{\"model\":\"m\",\"max_tokens\":10,\"messages\":[]}", "messages",
                    "messages: must be a non-empty array");
}

TEST(anthropic_parse_request_names_the_message_field_that_is_wrong)
{
    CHECK_PARSE_400("{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":"
                    "\"assistant\",\"content\":\"b\"},{\"role\":\"system\",\"content\":\"c\"}]}",
                    "messages[2].role", "messages[2].role: must be \"user\" or \"assistant\"");
    CHECK_PARSE_400("{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"content\":\"a\"}]}", "messages[0].role",
                    "messages[0].role: field required");
    CHECK_PARSE_400("{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":5}]}",
                    "messages[0].content",
                    "messages[0].content: must be a string or an array of content blocks, got a number");
    CHECK_PARSE_400("{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":[]}]}",
                    "messages[0].content", "messages[0].content: must not be an empty array");
    CHECK_PARSE_400("{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"a\"}"
                    "]}]}",
                    "messages[0].content[0].type", "messages[0].content[0].type: field required");
    CHECK_PARSE_400("{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":"
                    "\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":\"{}\"}]}]}",
                    "messages[0].content[0].input", "messages[0].content[0].input: must be an object");
    CHECK_PARSE_400("{\"model\":\"m\",\"max_tokens\":10,\"messages\":[\"hi\"]}", "messages[0]",
                    "messages[0]: must be an object, got a string");
}

TEST(anthropic_parse_request_checks_the_optional_fields_types)
{
    CHECK_PARSE_400(MSGS_WITH(",\"stream\":\"yes\""), "stream", "stream: must be a boolean, got a string");
    CHECK_PARSE_400(MSGS_WITH(",\"system\":5"), "system",
                    "system: must be a string or an array of text blocks, got a number");
    CHECK_PARSE_400(MSGS_WITH(",\"system\":[{\"type\":\"image\"}]"), "system[0].type",
                    "system[0].type: must be \"text\"");
    CHECK_PARSE_400(MSGS_WITH(",\"stop_sequences\":[\"a\",null]"), "stop_sequences[1]",
                    "stop_sequences[1]: must be a string, got null");
    CHECK_PARSE_400(MSGS_WITH(",\"temperature\":\"hot\""), "temperature",
                    "temperature: must be a number, got a string");
    CHECK_PARSE_400(MSGS_WITH(",\"tools\":[{\"description\":\"d\"}]"), "tools[0].name",
                    "tools[0].name: field required");
    CHECK_PARSE_400("{\"model\":\"m\"", "",
                    "the request body is not valid JSON: parsing stopped at line 1, column 12 (byte 11)");
}

/* --- /v1/messages request → OpenAI request -------------------------------- */

static void check_to_openai_fixture(const char *base)
{
    char in[128], want[128];
    snprintf(in, sizeof(in), "%s.anthropic.json", base);
    snprintf(want, sizeof(want), "%s.openai.json", base);
    size_t len;
    char *body = slurp(in, &len);
    if (body == NULL)
        return;
    gyre_api_error_t err;
    cJSON *req = gyre_anthropic_parse_request(body, len, &err);
    CHECK(req != NULL);
    cJSON *oa = req != NULL ? gyre_anthropic_request_to_openai(req, &err) : NULL;
    CHECK(oa != NULL);
    char *s = oa != NULL ? cJSON_PrintUnformatted(oa) : NULL;
    if (s != NULL)
        check_json_fixture(s, strlen(s), want);
    free(s);
    cJSON_Delete(oa);
    cJSON_Delete(req);
    free(body);
}

/* The OpenAI request a literal Messages request becomes, compactly; caller frees. */
static char *to_openai(const char *body, gyre_api_error_t *err)
{
    cJSON *req = gyre_anthropic_parse_request(body, strlen(body), err);
    CHECK(req != NULL);
    cJSON *oa = req != NULL ? gyre_anthropic_request_to_openai(req, err) : NULL;
    char *s = oa != NULL ? cJSON_PrintUnformatted(oa) : NULL;
    cJSON_Delete(oa);
    cJSON_Delete(req);
    return s;
}

TEST(anthropic_to_openai_maps_system_images_sampling_stop_stream_and_metadata)
{
    check_to_openai_fixture("messages_basic");
}

TEST(anthropic_to_openai_puts_tool_results_before_user_text_and_tool_use_into_tool_calls)
{
    check_to_openai_fixture("messages_tools");
}

TEST(anthropic_to_openai_maps_each_tool_choice)
{
    gyre_api_error_t err;
    char *s = to_openai(MSGS_WITH(",\"tool_choice\":{\"type\":\"auto\"}"), &err);
    CHECK_STR(s, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tool_choice\":\"auto\","
                 "\"max_tokens\":10}");
    free(s);
    s = to_openai(MSGS_WITH(",\"tool_choice\":{\"type\":\"none\"}"), &err);
    CHECK_STR(s, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tool_choice\":\"none\","
                 "\"max_tokens\":10}");
    free(s);
    s = to_openai(MSGS_WITH(",\"tool_choice\":{\"type\":\"tool\",\"name\":\"f\"}"), &err);
    CHECK_STR(s, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tool_choice\":{\"type\":"
                 "\"function\",\"function\":{\"name\":\"f\"}},\"max_tokens\":10}");
    free(s);
}

TEST(anthropic_to_openai_refuses_anthropics_server_tools_and_documents)
{
    gyre_api_error_t err;
    char *s = to_openai(MSGS_WITH(",\"tools\":[{\"type\":\"web_search_20250305\",\"name\":\"web_search\"}]"), &err);
    CHECK(s == NULL);
    CHECK_INT(err.status, 400);
    CHECK_STR(err.param, "tools[0].type");
    CHECK_STR(
        err.message,
        "tools[0].type: the tool type \"web_search_20250305\" is Anthropic's own and cannot be sent to this provider");
    s = to_openai("{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                  "\"document\",\"source\":{}}]}]}",
                  &err);
    CHECK(s == NULL);
    CHECK_STR(err.param, "messages[0].content[0].type");
    CHECK_STR(err.message, "messages[0].content[0].type: \"document\" blocks cannot be sent to this provider");
}

/* --- chat.completion → Anthropic message ---------------------------------- */

static void check_from_openai_fixture(const char *base)
{
    char in[128], want[128];
    snprintf(in, sizeof(in), "%s.openai.json", base);
    snprintf(want, sizeof(want), "%s.anthropic.json", base);
    size_t len;
    char *body = slurp(in, &len);
    if (body == NULL)
        return;
    gyre_buf_t out;
    gyre_buf_init(&out, BIG);
    gyre_api_error_t err;
    CHECK_INT(gyre_anthropic_response_from_openai(body, len, &out, &err), 0);
    check_json_fixture(out.base, out.len, want);
    gyre_buf_dispose(&out);
    free(body);
}

TEST(anthropic_from_openai_text_answer_counts_cached_tokens_apart)
{
    check_from_openai_fixture("completion_text");
}

TEST(anthropic_from_openai_tool_calls_become_tool_use_blocks_with_parsed_input)
{
    check_from_openai_fixture("completion_tools");
}

TEST(anthropic_from_openai_rejects_what_is_not_a_chat_completion)
{
    gyre_buf_t out;
    gyre_buf_init(&out, BIG);
    gyre_api_error_t err;
    CHECK_INT(gyre_anthropic_response_from_openai(LIT("{\"choices\":[]}"), &out, &err), -1);
    CHECK_INT(err.status, 502);
    CHECK_STR(err.message, "the provider's answer is not a chat.completion");
    CHECK_INT(
        gyre_anthropic_response_from_openai(
            LIT("{\"choices\":[{\"message\":{\"tool_calls\":[{\"function\":{\"arguments\":\"[1\"}}]}}]}"), &out, &err),
        -1);
    CHECK_STR(err.message, "the provider's tool call arguments are not a JSON object");
    CHECK_INT(out.len, 0);
    gyre_buf_dispose(&out);
}

/* --- OpenAI chunks → events → Anthropic events ----------------------------- */

/* The Anthropic client's encoder, fed by the OpenAI provider dialect's reader as the proxy feeds it. */
typedef struct encoder_run {
    unsigned char enc[256];
    gyre_buf_t *out;
    int saw_error;
} encoder_run_t;

static int encoder_run_emit(void *ctx, const gyre_event_t *ev)
{
    encoder_run_t *r = ctx;
    if (ev->type == GYRE_EVENT_ERROR)
        r->saw_error = 1;
    return gyre_client_anthropic.encode(r->enc, ev, r->out);
}

/* Returns 0, or -1 when the stream ended with an error event (the provider's, or the proxy's for a stream it
 * could not read, written by the client dialect's error_event as the proxy writes it). */
static int run_encoder(const char *bytes, size_t len, int bytewise, gyre_buf_t *out, int *complete)
{
    encoder_run_t run = {.out = out};
    CHECK(gyre_client_anthropic.encoder_size <= sizeof(run.enc));
    gyre_client_call_t call = {.model = "claude-via-gyre", .id = NULL, .include_usage = 1};
    gyre_client_anthropic.encoder_init(run.enc, &call);
    gyre_chat_call_t chat = call_of(NULL, NULL);
    gyre_dialect_stream_t *s = gyre_dialect_openai.stream_create(&chat);
    gyre_event_sink_t sink = {encoder_run_emit, &run};
    gyre_api_error_t err;
    gyre_buf_init(out, BIG);
    int r = 0;
    if (!bytewise)
        r = gyre_dialect_openai.stream_feed(s, bytes, len, &sink, &err);
    for (size_t i = 0; bytewise && i < len && r == 0; i++)
        r = gyre_dialect_openai.stream_feed(s, bytes + i, 1, &sink, &err);
    if (r != 0)
        gyre_client_anthropic.error_event(&err, out);
    *complete = gyre_client_anthropic.encoder_complete(run.enc);
    gyre_dialect_openai.stream_destroy(s);
    return r != 0 || run.saw_error ? -1 : 0;
}

static void check_encoder_fixture(const char *base)
{
    char in[128], want[128];
    snprintf(in, sizeof(in), "%s.openai.sse", base);
    snprintf(want, sizeof(want), "%s.anthropic.sse", base);
    size_t len;
    char *bytes = slurp(in, &len);
    if (bytes == NULL)
        return;
    for (int bytewise = 0; bytewise <= 1; bytewise++) {
        gyre_buf_t out;
        int complete;
        CHECK_INT(run_encoder(bytes, len, bytewise, &out, &complete), 0);
        CHECK_INT(complete, 1);
        check_text_fixture(&out, want);
        gyre_buf_dispose(&out);
    }
    free(bytes);
}

TEST(anthropic_encoder_text_stream_waits_for_usage_before_message_delta)
{
    check_encoder_fixture("chunks_text");
}

TEST(anthropic_encoder_tool_calls_become_tool_use_blocks_with_input_json_deltas)
{
    check_encoder_fixture("chunks_tools");
}

TEST(anthropic_encoder_openai_error_event_becomes_an_anthropic_error_event)
{
    gyre_buf_t out;
    int complete;
    CHECK_INT(run_encoder(LIT("data: {\"error\":{\"message\":\"Rate limit reached\",\"type\":\"requests\",\"code\":"
                              "\"rate_limit_exceeded\"}}\n\n"),
                          0, &out, &complete),
              -1);
    CHECK_INT(complete, 0);
    CHECK_STR(out.base, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":"
                        "\"Rate limit reached\"}}\n\n");
    gyre_buf_dispose(&out);
}

TEST(anthropic_encoder_event_that_is_not_json_ends_with_an_api_error)
{
    gyre_buf_t out;
    int complete;
    CHECK_INT(run_encoder(LIT("data: {oops\n\ndata: [DONE]\n\n"), 0, &out, &complete), -1);
    CHECK_INT(complete, 0);
    CHECK_STR(out.base, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":"
                        "\"the provider's stream sent an event that is not JSON\"}}\n\n");
    gyre_buf_dispose(&out);
}

TEST(anthropic_encoder_empty_stream_still_sends_a_whole_message)
{
    gyre_buf_t out;
    int complete;
    CHECK_INT(run_encoder(LIT("data: [DONE]\n\n"), 0, &out, &complete), 0);
    CHECK_INT(complete, 1);
    CHECK_STR(out.base,
              "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_\",\"type\":"
              "\"message\",\"role\":\"assistant\",\"model\":\"claude-via-gyre\",\"content\":[],\"stop_reason\":null,"
              "\"stop_sequence\":null,\"usage\":{\"input_tokens\":0,\"output_tokens\":0}}}\n\n"
              "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
              "\"stop_sequence\":null},\"usage\":{\"output_tokens\":0}}\n\n"
              "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    gyre_buf_dispose(&out);
}

/* --- errors in Anthropic's shape ------------------------------------------ */

static char *error_json_of(int status)
{
    gyre_api_error_t err;
    gyre_api_error_set(&err, status, "upstream_error", NULL, NULL, "m");
    gyre_buf_t out;
    gyre_buf_init(&out, 4096);
    CHECK_INT(gyre_anthropic_error_to_json(&err, &out), 0);
    return out.base;
}

#define CHECK_ERROR_TYPE(status, type)                                                                                 \
    do {                                                                                                               \
        char *j_ = error_json_of(status);                                                                              \
        CHECK_STR(j_, "{\"type\":\"error\",\"error\":{\"type\":\"" type "\",\"message\":\"m\"}}");                     \
        free(j_);                                                                                                      \
    } while (0)

TEST(anthropic_error_json_uses_anthropics_type_for_each_status)
{
    CHECK_ERROR_TYPE(400, "invalid_request_error");
    CHECK_ERROR_TYPE(401, "authentication_error");
    CHECK_ERROR_TYPE(403, "permission_error");
    CHECK_ERROR_TYPE(404, "not_found_error");
    CHECK_ERROR_TYPE(413, "request_too_large");
    CHECK_ERROR_TYPE(429, "rate_limit_error");
    CHECK_ERROR_TYPE(500, "api_error");
    CHECK_ERROR_TYPE(502, "api_error");
    CHECK_ERROR_TYPE(503, "api_error");
    CHECK_ERROR_TYPE(529, "overloaded_error");
}

TEST(anthropic_error_event_is_an_sse_error_event_with_the_escaped_message)
{
    gyre_api_error_t err;
    gyre_api_error_set(&err, 529, "upstream_error", NULL, NULL, "busy \"now\"");
    gyre_buf_t out;
    gyre_buf_init(&out, 4096);
    CHECK_INT(gyre_anthropic_error_event(&err, &out), 0);
    CHECK_STR(out.base, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
                        "\"busy \\\"now\\\"\"}}\n\n");
    gyre_buf_dispose(&out);
}
