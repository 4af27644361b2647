/*
 * src/dialect/gemini.c: OpenAI chat requests as Gemini generateContent
 * requests, and Gemini's answers, errors and alt=sse streams as OpenAI's.
 * The golden files are in tests/fixtures/gemini/ (read from the repository
 * root): NAME.openai.json next to NAME.gemini.json for each direction, and
 * NAME.gemini.sse (what Gemini sends) next to NAME.openai.sse (the exact
 * bytes the client gets).
 */
#include "dialect/dialect.h"

#include <stdlib.h>
#include <string.h>

#include "stream_sse.h"
#include "test.h"

#define FIXTURES "tests/fixtures/gemini/"
#define LIT(s) s, sizeof(s) - 1

/* One expected chunk of a stream translated for call_of(): its head, then `choices`. */
#define CHUNK(choices)                                                                                                 \
    "data: {\"id\":\"chatcmpl-gyre42\",\"object\":\"chat.completion.chunk\",\"created\":1750000000,"                   \
    "\"model\":\"gemini-2.5-flash\",\"choices\":" choices "}\n\n"

/* A whole fixture file, NUL-terminated; aborts the test when it is missing. */
static char *fixture(const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof(path), FIXTURES "%s", name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "  cannot open %s (run the tests from the repository root)\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)n + 1);
    if (fread(text, 1, (size_t)n, f) != (size_t)n)
        exit(1);
    fclose(f);
    text[n] = '\0';
    if (len != NULL)
        *len = (size_t)n;
    return text;
}

static cJSON *fixture_json(const char *name)
{
    char *text = fixture(name, NULL);
    cJSON *json = cJSON_Parse(text);
    if (json == NULL) {
        fprintf(stderr, "  %s is not JSON\n", name);
        exit(1);
    }
    free(text);
    return json;
}

/* Whether `text` is the JSON of `expected`; prints both when not. */
static int json_equals(const char *what, const char *text, const cJSON *expected)
{
    cJSON *got = cJSON_Parse(text);
    int same = got != NULL && cJSON_Compare(got, expected, 1);
    if (!same) {
        char *want = cJSON_PrintUnformatted(expected);
        fprintf(stderr, "  %s:\n    got  %s\n    want %s\n", what, text, want);
        cJSON_free(want);
    }
    cJSON_Delete(got);
    return same;
}

static gyre_chat_call_t call_of(const cJSON *req, int stream, int include_usage)
{
    gyre_chat_call_t call = {.req = req,
                             .model = "gemini-2.5-flash",
                             .provider = NULL,
                             .stream = stream,
                             .include_usage = include_usage,
                             .id = "chatcmpl-gyre42",
                             .created = 1750000000};
    return call;
}

/* Translates NAME.openai.json and compares the body with NAME.gemini.json and the path with `path`. */
static void check_request(const char *name, int stream, const char *path)
{
    char file[128];
    snprintf(file, sizeof(file), "%s.openai.json", name);
    cJSON *req = fixture_json(file);
    snprintf(file, sizeof(file), "%s.gemini.json", name);
    cJSON *want = fixture_json(file);
    gyre_chat_call_t call = call_of(req, stream, 0);
    gyre_buf_t p, body;
    gyre_buf_init(&p, 4096);
    gyre_buf_init(&body, 1 << 20);
    gyre_api_error_t err;
    int rc = gyre_dialect_gemini.chat_request(&call, &p, &body, &err);
    if (rc != 0)
        fprintf(stderr, "  %s: %s\n", name, err.message);
    CHECK_INT(rc, 0);
    if (rc == 0) {
        CHECK_STR(p.base, path);
        CHECK(json_equals(name, body.base, want));
    }
    gyre_buf_dispose(&p);
    gyre_buf_dispose(&body);
    cJSON_Delete(req);
    cJSON_Delete(want);
}

/* Translates an inline OpenAI request and returns the Gemini body as JSON (NULL with `err` on failure). */
static cJSON *translate(const char *openai, gyre_api_error_t *err)
{
    cJSON *req = cJSON_Parse(openai);
    if (req == NULL) {
        fprintf(stderr, "  the test's request is not JSON: %s\n", openai);
        exit(1);
    }
    gyre_chat_call_t call = call_of(req, 0, 0);
    gyre_buf_t p, body;
    gyre_buf_init(&p, 4096);
    gyre_buf_init(&body, 1 << 20);
    cJSON *out = NULL;
    if (gyre_dialect_gemini.chat_request(&call, &p, &body, err) == 0)
        out = cJSON_Parse(body.base);
    gyre_buf_dispose(&p);
    gyre_buf_dispose(&body);
    cJSON_Delete(req);
    return out;
}

/* Asserts that an inline request translates to exactly the inline Gemini body. */
#define CHECK_TRANSLATES(openai, gemini)                                                                               \
    do {                                                                                                               \
        gyre_api_error_t e_;                                                                                           \
        cJSON *got_ = translate((openai), &e_), *want_ = cJSON_Parse(gemini);                                          \
        CHECK(want_ != NULL);                                                                                          \
        CHECK(got_ != NULL);                                                                                           \
        if (got_ != NULL && want_ != NULL && !cJSON_Compare(got_, want_, 1)) {                                         \
            char *g_ = cJSON_PrintUnformatted(got_);                                                                   \
            fprintf(stderr, "  %s:%d: got %s\n    want %s\n", __FILE__, __LINE__, g_, (gemini));                       \
            cJSON_free(g_);                                                                                            \
            gyre_test_failures++;                                                                                      \
        }                                                                                                              \
        cJSON_Delete(got_);                                                                                            \
        cJSON_Delete(want_);                                                                                           \
    } while (0)

/* Asserts a 400 for an inline request, with the param and message given. */
#define CHECK_REJECTS(openai, param_, message_)                                                                        \
    do {                                                                                                               \
        gyre_api_error_t e_;                                                                                           \
        cJSON *got_ = translate((openai), &e_);                                                                        \
        CHECK(got_ == NULL);                                                                                           \
        if (got_ == NULL) {                                                                                            \
            CHECK_INT(e_.status, 400);                                                                                 \
            CHECK_STR(e_.type, "invalid_request_error");                                                               \
            CHECK_STR(e_.param, (param_));                                                                             \
            CHECK_STR(e_.message, (message_));                                                                         \
        }                                                                                                              \
        cJSON_Delete(got_);                                                                                            \
    } while (0)

/* Translates NAME.gemini.json as a whole answer and compares it with NAME.openai.json. */
static void check_response(const char *name)
{
    char file[128];
    size_t len;
    snprintf(file, sizeof(file), "%s.gemini.json", name);
    char *body = fixture(file, &len);
    snprintf(file, sizeof(file), "%s.openai.json", name);
    cJSON *want = fixture_json(file);
    gyre_chat_call_t call = call_of(NULL, 0, 0);
    gyre_buf_t out;
    gyre_buf_init(&out, 1 << 20);
    gyre_api_error_t err;
    int rc = gyre_dialect_gemini.chat_response(&call, body, len, &out, &err);
    if (rc != 0)
        fprintf(stderr, "  %s: %s\n", name, err.message);
    CHECK_INT(rc, 0);
    if (rc == 0)
        CHECK(json_equals(name, out.base, want));
    gyre_buf_dispose(&out);
    free(body);
    cJSON_Delete(want);
}

/*
 * Feeds `len` bytes of a Gemini stream in pieces of `step` bytes (0: whole),
 * each piece copied into an allocation of its own size; returns the last
 * feed's result and leaves the output in `out`.
 */
static int feed_stream(const char *bytes, size_t len, size_t step, int include_usage, gyre_buf_t *out,
                       gyre_api_error_t *err, int *complete)
{
    gyre_chat_call_t call = call_of(NULL, 1, include_usage);
    gyre_dialect_stream_t *s = sse_stream_create(&gyre_dialect_gemini, &call);
    int rc = 0;
    if (step == 0)
        step = len;
    for (size_t pos = 0; pos < len && rc == 0; pos += step) {
        size_t n = len - pos < step ? len - pos : step;
        char *piece = malloc(n);
        memcpy(piece, bytes + pos, n);
        rc = sse_stream_feed(&gyre_dialect_gemini, s, piece, n, out, err);
        free(piece);
    }
    *complete = s->complete;
    sse_stream_destroy(&gyre_dialect_gemini, s);
    return rc;
}

/* Feeds NAME.gemini.sse whole, then a byte at a time; both must give NAME.openai.sse exactly and end complete. */
static void check_stream(const char *name, int include_usage)
{
    char file[128];
    size_t len, want_len;
    snprintf(file, sizeof(file), "%s.gemini.sse", name);
    char *in = fixture(file, &len);
    snprintf(file, sizeof(file), "%s.openai.sse", name);
    char *want = fixture(file, &want_len);
    size_t steps[] = {0, 1};
    for (size_t i = 0; i < 2; i++) {
        gyre_buf_t out;
        gyre_buf_init(&out, 1 << 20);
        gyre_api_error_t err;
        int complete = 0;
        CHECK_INT(feed_stream(in, len, steps[i], include_usage, &out, &err, &complete), 0);
        CHECK_INT(complete, 1);
        CHECK_MEM(out.base != NULL ? out.base : "", out.len, want);
        gyre_buf_dispose(&out);
    }
    free(in);
    free(want);
}

/* --- requests ------------------------------------------------------------- */

TEST(gemini_request_path_is_generate_content_for_the_model)
{
    check_request("request_text", 0, "/models/gemini-2.5-flash:generateContent");
}

TEST(gemini_stream_request_path_is_stream_generate_content_with_alt_sse)
{
    check_request("request_text", 1, "/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
}

TEST(gemini_request_path_drops_a_models_prefix_and_percent_encodes_the_rest)
{
    cJSON *req = cJSON_Parse("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    gyre_chat_call_t call = call_of(req, 0, 0);
    call.model = "models/my model?x";
    gyre_buf_t p, body;
    gyre_buf_init(&p, 4096);
    gyre_buf_init(&body, 4096);
    gyre_api_error_t err;
    CHECK_INT(gyre_dialect_gemini.chat_request(&call, &p, &body, &err), 0);
    CHECK_STR(p.base, "/models/my%20model%3Fx:generateContent");
    gyre_buf_dispose(&p);
    gyre_buf_dispose(&body);
    cJSON_Delete(req);
}

TEST(gemini_request_text_messages_become_user_and_model_contents)
{
    check_request("request_text", 0, "/models/gemini-2.5-flash:generateContent");
}

TEST(gemini_request_system_and_developer_messages_become_the_system_instruction)
{
    check_request("request_system", 0, "/models/gemini-2.5-flash:generateContent");
}

TEST(gemini_request_data_urls_become_inline_data_and_http_urls_file_data)
{
    check_request("request_images", 0, "/models/gemini-2.5-flash:generateContent");
}

TEST(gemini_request_tools_become_function_declarations_without_rejected_schema_keys)
{
    check_request("request_tools", 0, "/models/gemini-2.5-flash:generateContent");
}

TEST(gemini_request_tool_calls_and_results_become_function_call_and_response_parts)
{
    check_request("request_tool_round_trip", 0, "/models/gemini-2.5-flash:generateContent");
}

TEST(gemini_request_sampling_settings_become_the_generation_config)
{
    check_request("request_generation_config", 0, "/models/gemini-2.5-flash:generateContent");
}

TEST(gemini_request_tool_choice_strings_become_function_calling_modes)
{
    CHECK_TRANSLATES("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tool_choice\":\"auto\"}",
                     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}],"
                     "\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"AUTO\"}}}");
    CHECK_TRANSLATES("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tool_choice\":\"none\"}",
                     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}],"
                     "\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"NONE\"}}}");
    CHECK_TRANSLATES("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tool_choice\":\"required\"}",
                     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}],"
                     "\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"ANY\"}}}");
}

TEST(gemini_request_max_tokens_is_the_output_limit_without_max_completion_tokens)
{
    CHECK_TRANSLATES("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":64,\"stop\":\"\\n\","
                     "\"response_format\":{\"type\":\"json_object\"}}",
                     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}],\"generationConfig\":"
                     "{\"maxOutputTokens\":64,\"stopSequences\":[\"\\n\"],\"responseMimeType\":\"application/json\"}}");
}

TEST(gemini_request_trailing_assistant_message_stays_the_last_model_content)
{
    CHECK_TRANSLATES("{\"messages\":[{\"role\":\"user\",\"content\":\"Count to five.\"},"
                     "{\"role\":\"assistant\",\"content\":\"1, 2, 3\"}]}",
                     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"Count to five.\"}]},"
                     "{\"role\":\"model\",\"parts\":[{\"text\":\"1, 2, 3\"}]}]}");
}

TEST(gemini_request_consecutive_messages_of_one_role_share_a_content)
{
    CHECK_TRANSLATES("{\"messages\":[{\"role\":\"user\",\"content\":\"one\"},{\"role\":\"user\",\"content\":\"two\"}]}",
                     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"one\"},{\"text\":\"two\"}]}]}");
}

TEST(gemini_request_rejects_a_tool_message_answering_no_known_tool_call)
{
    CHECK_REJECTS("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
                  "{\"role\":\"tool\",\"tool_call_id\":\"call_x\",\"content\":\"42\"}]}",
                  "messages[1].tool_call_id",
                  "'messages[1].tool_call_id' is 'call_x', which no earlier assistant tool call has as its id "
                  "(Gemini needs the function's name)");
}

TEST(gemini_request_rejects_tool_call_arguments_that_are_not_a_json_object)
{
    CHECK_REJECTS("{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\","
                  "\"function\":{\"name\":\"f\",\"arguments\":\"[1,2]\"}}]}]}",
                  "messages[0].tool_calls[0].function.arguments",
                  "'messages[0].tool_calls[0].function.arguments' must be a JSON object in a string");
}

TEST(gemini_request_rejects_a_data_url_that_is_not_base64)
{
    CHECK_REJECTS("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                  "\"image_url\":{\"url\":\"data:image/png,abc\"}}]}]}",
                  "messages[0].content[0].image_url.url",
                  "'messages[0].content[0].image_url.url' must be a base64 data URL with a media type "
                  "(data:image/png;base64,...)");
}

TEST(gemini_request_rejects_more_candidates_than_gemini_returns)
{
    CHECK_REJECTS("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"n\":9}", "n",
                  "'n' must be from 1 to 8 for Gemini");
}

TEST(gemini_request_rejects_an_unknown_role)
{
    CHECK_REJECTS("{\"messages\":[{\"role\":\"narrator\",\"content\":\"hi\"}]}", "messages[0].role",
                  "'messages[0].role' is 'narrator', not one of system, developer, user, assistant, tool");
}

TEST(gemini_request_body_past_its_bound_is_a_413)
{
    cJSON *req = cJSON_Parse("{\"messages\":[{\"role\":\"user\",\"content\":\"a long enough message\"}]}");
    gyre_chat_call_t call = call_of(req, 0, 0);
    gyre_buf_t p, body;
    gyre_buf_init(&p, 4096);
    gyre_buf_init(&body, 16);
    gyre_api_error_t err;
    CHECK_INT(gyre_dialect_gemini.chat_request(&call, &p, &body, &err), -1);
    CHECK_INT(err.status, 413);
    CHECK_STR(err.code, "request_too_large");
    CHECK_INT(body.len, 0);
    gyre_buf_dispose(&p);
    gyre_buf_dispose(&body);
    cJSON_Delete(req);
}

/* --- headers -------------------------------------------------------------- */

TEST(gemini_auth_headers_send_the_key_as_x_goog_api_key)
{
    gyre_buf_t h;
    gyre_buf_init(&h, 1024);
    CHECK_INT(gyre_dialect_gemini.auth_headers(NULL, "AIzaSyKEY", "generativelanguage.googleapis.com",
                                               "/v1beta/models/m:generateContent", "{}", 2, 0, &h),
              0);
    CHECK_STR(h.base, "x-goog-api-key: AIzaSyKEY\r\ncontent-type: application/json\r\n");
    gyre_buf_dispose(&h);
}

TEST(gemini_auth_headers_without_a_key_send_only_the_content_type)
{
    gyre_buf_t h;
    gyre_buf_init(&h, 1024);
    CHECK_INT(gyre_dialect_gemini.auth_headers(NULL, NULL, "localhost", "/", "{}", 2, 0, &h), 0);
    CHECK_STR(h.base, "content-type: application/json\r\n");
    gyre_buf_dispose(&h);
}

/* --- answers -------------------------------------------------------------- */

TEST(gemini_response_text_parts_are_joined_without_thoughts)
{
    check_response("response_text");
}

TEST(gemini_response_function_calls_become_tool_calls_with_deterministic_ids)
{
    check_response("response_function_call");
}

TEST(gemini_response_max_tokens_finishes_with_length)
{
    check_response("response_max_tokens");
}

TEST(gemini_response_blocked_prompt_is_an_empty_content_filter_answer)
{
    check_response("response_prompt_blocked");
}

TEST(gemini_response_safety_stopped_candidate_finishes_with_content_filter)
{
    check_response("response_candidate_safety");
}

TEST(gemini_response_usage_counts_cached_and_thinking_tokens)
{
    check_response("response_usage_cached_thoughts");
}

TEST(gemini_response_that_is_not_json_is_a_502)
{
    gyre_chat_call_t call = call_of(NULL, 0, 0);
    gyre_buf_t out;
    gyre_buf_init(&out, 4096);
    gyre_api_error_t err;
    CHECK_INT(gyre_dialect_gemini.chat_response(&call, LIT("<html>"), &out, &err), -1);
    CHECK_INT(err.status, 502);
    CHECK_STR(err.type, "upstream_error");
    CHECK_STR(err.message, "Gemini's answer is not a JSON object");
    CHECK_INT(out.len, 0);
    gyre_buf_dispose(&out);
}

TEST(gemini_error_message_is_the_error_objects_message)
{
    size_t len;
    char *body = fixture("error.json", &len);
    gyre_buf_t out;
    gyre_buf_init(&out, 4096);
    gyre_dialect_gemini.error_message(body, len, &out);
    CHECK_STR(out.base, "API key not valid. Please pass a valid API key.");
    gyre_buf_dispose(&out);
    free(body);
}

TEST(gemini_error_message_of_an_unrecognised_body_is_the_body)
{
    gyre_buf_t out;
    gyre_buf_init(&out, 4096);
    gyre_dialect_gemini.error_message(LIT("upstream connect error"), &out);
    CHECK_STR(out.base, "upstream connect error");
    gyre_buf_dispose(&out);
}

/* --- streams -------------------------------------------------------------- */

TEST(gemini_stream_text_becomes_chunks_usage_and_done)
{
    check_stream("stream_text", 1);
}

TEST(gemini_stream_function_calls_become_whole_tool_call_deltas)
{
    check_stream("stream_function_call", 0);
}

TEST(gemini_stream_without_a_finish_reason_is_not_complete)
{
    const char in[] =
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Grey\"}],\"role\":\"model\"}}]}\r\n\r\n";
    gyre_buf_t out;
    gyre_buf_init(&out, 1 << 20);
    gyre_api_error_t err;
    int complete = 1;
    CHECK_INT(feed_stream(LIT(in), 0, 0, &out, &err, &complete), 0);
    CHECK_INT(complete, 0);
    CHECK(strstr(out.base, "[DONE]") == NULL);
    gyre_buf_dispose(&out);
}

TEST(gemini_stream_error_event_fails_with_its_status_and_code)
{
    size_t len, want_len;
    char *in = fixture("stream_error.gemini.sse", &len);
    char *want = fixture("stream_error.openai.sse", &want_len);
    size_t steps[] = {0, 1};
    for (size_t i = 0; i < 2; i++) {
        gyre_buf_t out;
        gyre_buf_init(&out, 1 << 20);
        gyre_api_error_t err;
        int complete = 1;
        CHECK_INT(feed_stream(in, len, steps[i], 0, &out, &err, &complete), -1);
        CHECK_INT(complete, 0);
        CHECK_INT(err.status, 503);
        CHECK_STR(err.type, "upstream_error");
        CHECK_STR(err.code, "UNAVAILABLE");
        CHECK_STR(err.message, "The model is overloaded. Please try again later.");
        CHECK_MEM(out.base, out.len, want);
        gyre_buf_dispose(&out);
    }
    free(in);
    free(want);
}

TEST(gemini_stream_event_that_is_not_json_is_a_502)
{
    gyre_buf_t out;
    gyre_buf_init(&out, 1 << 20);
    gyre_api_error_t err;
    int complete = 1;
    CHECK_INT(feed_stream(LIT("data: {\"candidates\":[\r\n\r\n"), 0, 0, &out, &err, &complete), -1);
    CHECK_INT(err.status, 502);
    CHECK_STR(err.message, "Gemini's stream has an event that is not a JSON object");
    CHECK_INT(out.len, 0);
    gyre_buf_dispose(&out);
}

TEST(gemini_stream_blocked_prompt_ends_with_content_filter)
{
    const char in[] = "data: {\"promptFeedback\":{\"blockReason\":\"PROHIBITED_CONTENT\"},"
                      "\"usageMetadata\":{\"promptTokenCount\":4,\"totalTokenCount\":4},\"modelVersion\":\"gemini-x\"}"
                      "\r\n\r\n";
    gyre_buf_t out;
    gyre_buf_init(&out, 1 << 20);
    gyre_api_error_t err;
    int complete = 0;
    CHECK_INT(feed_stream(LIT(in), 0, 0, &out, &err, &complete), 0);
    CHECK_INT(complete, 1);
    CHECK_STR(
        out.base,
        "data: {\"id\":\"chatcmpl-gyre42\",\"object\":\"chat.completion.chunk\",\"created\":1750000000,"
        "\"model\":\"gemini-x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
        "\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"chatcmpl-gyre42\",\"object\":\"chat.completion.chunk\",\"created\":1750000000,"
        "\"model\":\"gemini-x\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"content_filter\"}]}\n\n"
        "data: [DONE]\n\n");
    gyre_buf_dispose(&out);
}

TEST(gemini_stream_ignores_bytes_after_it_completed)
{
    size_t len, want_len;
    char *in = fixture("stream_function_call.gemini.sse", &len);
    char *want = fixture("stream_function_call.openai.sse", &want_len);
    char *more = malloc(len + 32);
    memcpy(more, in, len);
    memcpy(more + len, "data: not json\r\n\r\n", 18);
    gyre_buf_t out;
    gyre_buf_init(&out, 1 << 20);
    gyre_api_error_t err;
    int complete = 0;
    CHECK_INT(feed_stream(more, len + 18, 0, 0, &out, &err, &complete), 0);
    CHECK_INT(complete, 1);
    CHECK_MEM(out.base, out.len, want);
    gyre_buf_dispose(&out);
    free(in);
    free(want);
    free(more);
}

TEST(gemini_response_each_candidate_becomes_a_choice)
{
    const char body[] =
        "{\"candidates\":["
        "{\"content\":{\"parts\":[{\"text\":\"Yes\"}],\"role\":\"model\"},\"finishReason\":\"STOP\","
        "\"index\":0},"
        "{\"content\":{\"parts\":[{\"text\":\"No\"}],\"role\":\"model\"},\"finishReason\":\"MAX_TOKENS\","
        "\"index\":1}]}";
    gyre_chat_call_t call = call_of(NULL, 0, 0);
    gyre_buf_t out;
    gyre_buf_init(&out, 1 << 20);
    gyre_api_error_t err;
    CHECK_INT(gyre_dialect_gemini.chat_response(&call, LIT(body), &out, &err), 0);
    CHECK_STR(out.base,
              "{\"id\":\"chatcmpl-gyre42\",\"object\":\"chat.completion\",\"created\":1750000000,"
              "\"model\":\"gemini-2.5-flash\",\"choices\":["
              "{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Yes\"},\"finish_reason\":\"stop\"},"
              "{\"index\":1,\"message\":{\"role\":\"assistant\",\"content\":\"No\"},\"finish_reason\":\"length\"}"
              "]}");
    gyre_buf_dispose(&out);
}

TEST(gemini_stream_with_two_candidates_completes_when_both_have_finished)
{
    const char first[] = "data: {\"candidates\":["
                         "{\"content\":{\"parts\":[{\"text\":\"Yes\"}],\"role\":\"model\"},\"finishReason\":\"STOP\","
                         "\"index\":0},"
                         "{\"content\":{\"parts\":[{\"text\":\"N\"}],\"role\":\"model\"},\"index\":1}]}\r\n\r\n";
    const char second[] = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"o\"}],\"role\":\"model\"},"
                          "\"finishReason\":\"STOP\",\"index\":1}]}\r\n\r\n";
    gyre_chat_call_t call = call_of(NULL, 1, 0);
    gyre_dialect_stream_t *s = sse_stream_create(&gyre_dialect_gemini, &call);
    gyre_buf_t out;
    gyre_buf_init(&out, 1 << 20);
    gyre_api_error_t err;
    CHECK_INT(sse_stream_feed(&gyre_dialect_gemini, s, LIT(first), &out, &err), 0);
    CHECK_INT(s->complete, 0);
    CHECK(strstr(out.base, "[DONE]") == NULL);
    CHECK_INT(sse_stream_feed(&gyre_dialect_gemini, s, LIT(second), &out, &err), 0);
    CHECK_INT(s->complete, 1);
    /* clang-format off */
    CHECK_STR(out.base,
              CHUNK("[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]")
              CHUNK("[{\"index\":0,\"delta\":{\"content\":\"Yes\"},\"finish_reason\":null}]")
              CHUNK("[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]")
              CHUNK("[{\"index\":1,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]")
              CHUNK("[{\"index\":1,\"delta\":{\"content\":\"N\"},\"finish_reason\":null}]")
              CHUNK("[{\"index\":1,\"delta\":{\"content\":\"o\"},\"finish_reason\":null}]")
              CHUNK("[{\"index\":1,\"delta\":{},\"finish_reason\":\"stop\"}]")
              "data: [DONE]\n\n");
    /* clang-format on */
    gyre_buf_dispose(&out);
    sse_stream_destroy(&gyre_dialect_gemini, s);
}
