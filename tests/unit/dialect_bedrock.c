/*
 * src/dialect/bedrock.c: OpenAI chat requests as Bedrock Converse requests,
 * Converse answers and ConverseStream event streams back as OpenAI's, and
 * the request's authentication (SigV4 or a Bedrock API key).
 *
 * Golden fixtures are in tests/fixtures/bedrock/: request_NAME.openai.json
 * → request_NAME.bedrock.json, response_NAME.bedrock.json →
 * response_NAME.openai.json, and stream_NAME.events.json (a list of
 * {"event-type", "payload"} that the test frames with the event-stream
 * encoder) → stream_NAME.openai.sse.  JSON is compared after a compact
 * reprint of both sides, so member order counts and spacing does not.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialect/dialect.h"
#include "dialect/eventstream.h"
#include "stream_sse.h"
#include "test.h"

#define FIXTURES "tests/fixtures/bedrock/"
#define MODEL "anthropic.claude-3-5-sonnet-20240620-v1:0"
#define NOW 1440938160LL /* 2015-08-30T12:36:00Z, as in dialect_sigv4.c */

static char *read_fixture(const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), FIXTURES "%s", name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "  cannot open %s (run from the repository root)\n", path);
        exit(1);
    }
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 22);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        gyre_buf_append(&b, chunk, n);
    fclose(f);
    return b.base;
}

/* The compact reprint of a JSON text, or NULL when it does not parse. */
static char *compact(const char *json, size_t len)
{
    cJSON *j = cJSON_ParseWithLength(json, len);
    char *s = j != NULL ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    return s;
}

static gyre_provider_conf_t provider(void)
{
    gyre_provider_conf_t p;
    memset(&p, 0, sizeof(p));
    p.name = "aws";
    p.kind = GYRE_PROVIDER_BEDROCK;
    p.max_tokens = 4096;
    return p;
}

static gyre_chat_call_t call_for(const cJSON *req, const gyre_provider_conf_t *p, int stream, int include_usage)
{
    gyre_chat_call_t c = {.req = req,
                          .model = MODEL,
                          .provider = p,
                          .stream = stream,
                          .include_usage = include_usage,
                          .id = "chatcmpl-bedrock1",
                          .created = 1732000000};
    return c;
}

/* --- requests --------------------------------------------------------------- */

static void check_request_fixture(const char *name)
{
    char in_name[128], out_name[128];
    snprintf(in_name, sizeof(in_name), "request_%s.openai.json", name);
    snprintf(out_name, sizeof(out_name), "request_%s.bedrock.json", name);
    char *in = read_fixture(in_name), *want_text = read_fixture(out_name);
    char *want = compact(want_text, strlen(want_text));
    cJSON *req = cJSON_Parse(in);
    CHECK(req != NULL && want != NULL);
    gyre_provider_conf_t p = provider();
    gyre_chat_call_t call = call_for(req, &p, 0, 0);
    gyre_buf_t path, body;
    gyre_buf_init(&path, 1024);
    gyre_buf_init(&body, 1 << 20);
    gyre_api_error_t err;
    CHECK_INT(gyre_dialect_bedrock.chat_request(&call, &path, &body, &err), 0);
    CHECK_STR(path.base, "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse");
    CHECK_STR(body.base, want);
    gyre_buf_dispose(&path);
    gyre_buf_dispose(&body);
    cJSON_Delete(req);
    free(in);
    free(want_text);
    cJSON_free(want);
}

TEST(bedrock_request_text_becomes_a_text_block_with_inference_config)
{
    check_request_fixture("text");
}

TEST(bedrock_request_system_and_developer_messages_become_system_blocks_and_a_trailing_assistant_stays_last)
{
    check_request_fixture("system");
}

TEST(bedrock_request_image_data_urls_become_image_blocks_with_their_format)
{
    check_request_fixture("image");
}

TEST(bedrock_request_tools_become_tool_specs_and_required_becomes_any)
{
    check_request_fixture("tools");
}

TEST(bedrock_request_tool_round_trip_merges_tool_results_and_the_next_user_turn_into_one_user_message)
{
    check_request_fixture("tool_round_trip");
}

/* Runs chat_request on an inline request; returns its result with the body or error. */
static int request(const char *json, int stream, gyre_buf_t *path, gyre_buf_t *body, gyre_api_error_t *err)
{
    cJSON *req = cJSON_Parse(json);
    CHECK(req != NULL);
    gyre_provider_conf_t p = provider();
    gyre_chat_call_t call = call_for(req, &p, stream, 0);
    gyre_buf_init(path, 1024);
    gyre_buf_init(body, 1 << 20);
    int r = gyre_dialect_bedrock.chat_request(&call, path, body, err);
    cJSON_Delete(req);
    return r;
}

TEST(bedrock_request_stream_goes_to_converse_stream)
{
    gyre_buf_t path, body;
    gyre_api_error_t err;
    CHECK_INT(request("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true}", 1,
                      &path, &body, &err),
              0);
    CHECK_STR(path.base, "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream");
    CHECK_STR(body.base, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"hi\"}]}],"
                         "\"inferenceConfig\":{\"maxTokens\":4096}}");
    gyre_buf_dispose(&path);
    gyre_buf_dispose(&body);
}

TEST(bedrock_request_tool_choice_none_keeps_the_tools_and_sends_no_choice)
{
    gyre_buf_t path, body;
    gyre_api_error_t err;
    CHECK_INT(request("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tool_choice\":\"none\","
                      "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":"
                      "\"object\"}}}]}",
                      0, &path, &body, &err),
              0);
    CHECK_STR(body.base, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"hi\"}]}],"
                         "\"inferenceConfig\":{\"maxTokens\":4096},"
                         "\"toolConfig\":{\"tools\":[{\"toolSpec\":{\"name\":\"f\",\"inputSchema\":{\"json\":{"
                         "\"type\":\"object\"}}}}]}}");
    gyre_buf_dispose(&path);
    gyre_buf_dispose(&body);
}

TEST(bedrock_request_tool_choice_auto_becomes_auto)
{
    gyre_buf_t path, body;
    gyre_api_error_t err;
    CHECK_INT(request("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tool_choice\":\"auto\","
                      "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}",
                      0, &path, &body, &err),
              0);
    CHECK(strstr(body.base, ",\"toolChoice\":{\"auto\":{}}}}") != NULL);
    gyre_buf_dispose(&path);
    gyre_buf_dispose(&body);
}

TEST(bedrock_request_image_by_http_url_is_a_400)
{
    gyre_buf_t path, body;
    gyre_api_error_t err;
    CHECK_INT(
        request("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"x\"},"
                "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://example.com/cat.png\"}}]}]}",
                0, &path, &body, &err),
        -1);
    CHECK_INT(err.status, 400);
    CHECK_STR(err.type, "invalid_request_error");
    CHECK_STR(err.param, "messages[0].content[1].image_url.url");
    CHECK_STR(err.message, "bedrock accepts images as base64 data URLs only");
    gyre_buf_dispose(&path);
    gyre_buf_dispose(&body);
}

TEST(bedrock_request_image_of_another_format_is_a_400_naming_it)
{
    gyre_buf_t path, body;
    gyre_api_error_t err;
    CHECK_INT(request("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":["
                      "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/tiff;base64,AAAA\"}}]}]}",
                      0, &path, &body, &err),
              -1);
    CHECK_INT(err.status, 400);
    CHECK_STR(err.message, "bedrock accepts png, jpeg, gif and webp images only, not 'image/tiff'");
    gyre_buf_dispose(&path);
    gyre_buf_dispose(&body);
}

TEST(bedrock_request_tool_call_arguments_that_are_not_json_are_a_400)
{
    gyre_buf_t path, body;
    gyre_api_error_t err;
    CHECK_INT(request("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\","
                      "\"tool_calls\":[{\"id\":\"t1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
                      "\"arguments\":\"{not json\"}}]}]}",
                      0, &path, &body, &err),
              -1);
    CHECK_INT(err.status, 400);
    CHECK_STR(err.param, "messages[1].tool_calls[0]");
    CHECK_STR(err.message, "messages[1].tool_calls[0].function.arguments is not valid JSON");
    gyre_buf_dispose(&path);
    gyre_buf_dispose(&body);
}

TEST(bedrock_request_model_id_bytes_outside_the_unreserved_set_are_percent_encoded)
{
    cJSON *req = cJSON_Parse("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    gyre_provider_conf_t p = provider();
    gyre_chat_call_t call = call_for(req, &p, 0, 0);
    call.model = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku";
    gyre_buf_t path, body;
    gyre_buf_init(&path, 1024);
    gyre_buf_init(&body, 1 << 20);
    gyre_api_error_t err;
    CHECK_INT(gyre_dialect_bedrock.chat_request(&call, &path, &body, &err), 0);
    CHECK_STR(path.base, "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2F"
                         "us.anthropic.claude-3-haiku/converse");
    gyre_buf_dispose(&path);
    gyre_buf_dispose(&body);
    cJSON_Delete(req);
}

/* --- authentication ---------------------------------------------------------- */

#define SIGV4_BODY                                                                                                     \
    "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"Hello\"}]}],\"inferenceConfig\":{\"maxTokens\":512}}"

static int auth(const gyre_provider_conf_t *p, const char *key, const char *host, const char *path, gyre_buf_t *h)
{
    gyre_chat_call_t call = call_for(NULL, p, 0, 0);
    gyre_buf_init(h, 8192);
    return gyre_dialect_bedrock.auth_headers(&call, key, host, path, SIGV4_BODY, strlen(SIGV4_BODY), NOW, h);
}

TEST(bedrock_auth_signs_with_sigv4_taking_the_region_from_the_host_as_botocore_does)
{
    gyre_provider_conf_t p = provider();
    gyre_buf_t h;
    CHECK_INT(auth(&p, "AKIDEXAMPLE:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                   "bedrock-runtime.us-east-1.amazonaws.com",
                   "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse", &h),
              0);
    CHECK_STR(h.base, "content-type: application/json\r\n"
                      "accept: application/json\r\n"
                      "x-amz-date: 20150830T123600Z\r\n"
                      "x-amz-content-sha256: 6def7c6359539009ac44de49a0f0ea85ca70bc19dab1bb6012799a505f6cff13\r\n"
                      "authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, "
                      "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, "
                      "Signature=e7d95d071b374b18c72c0fea28cc22c749348db95a845c8e457a636ba421de29\r\n");
    gyre_buf_dispose(&h);
}

TEST(bedrock_auth_stream_accepts_the_event_stream_and_signs_the_session_token)
{
    gyre_provider_conf_t p = provider();
    gyre_buf_t h;
    CHECK_INT(auth(&p, "AKIDEXAMPLE:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY:FQoGZXIvYXdzEXAMPLETOKEN/+=",
                   "bedrock-runtime.eu-west-3.amazonaws.com",
                   "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream", &h),
              0);
    CHECK_STR(h.base, "content-type: application/json\r\n"
                      "accept: application/vnd.amazon.eventstream\r\n"
                      "x-amz-date: 20150830T123600Z\r\n"
                      "x-amz-content-sha256: 6def7c6359539009ac44de49a0f0ea85ca70bc19dab1bb6012799a505f6cff13\r\n"
                      "x-amz-security-token: FQoGZXIvYXdzEXAMPLETOKEN/+=\r\n"
                      "authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-3/bedrock/aws4_request, "
                      "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, "
                      "Signature=08292d0926786adc6b3ca261856ac41da09862c44f111efdb9cd318397f869a5\r\n");
    gyre_buf_dispose(&h);
}

TEST(bedrock_auth_region_setting_wins_over_the_host)
{
    gyre_provider_conf_t p = provider();
    p.region = "ap-south-1";
    gyre_buf_t h;
    CHECK_INT(auth(&p, "AKID:SECRET", "bedrock-runtime.us-west-2.amazonaws.com", "/model/m/converse", &h), 0);
    CHECK(strstr(h.base, "Credential=AKID/20150830/ap-south-1/bedrock/aws4_request, ") != NULL);
    gyre_buf_dispose(&h);
}

TEST(bedrock_auth_region_is_us_east_1_for_a_host_that_names_none)
{
    gyre_provider_conf_t p = provider();
    gyre_buf_t h;
    CHECK_INT(auth(&p, "AKID:SECRET", "127.0.0.1:9000", "/model/m/converse", &h), 0);
    CHECK(strstr(h.base, "Credential=AKID/20150830/us-east-1/bedrock/aws4_request, ") != NULL);
    gyre_buf_dispose(&h);
}

TEST(bedrock_auth_key_without_a_colon_is_a_bearer_api_key)
{
    gyre_provider_conf_t p = provider();
    gyre_buf_t h;
    CHECK_INT(auth(&p, "ABSKbedrockapikey", "bedrock-runtime.us-east-1.amazonaws.com", "/model/m/converse", &h), 0);
    CHECK_STR(h.base, "content-type: application/json\r\n"
                      "accept: application/json\r\n"
                      "authorization: Bearer ABSKbedrockapikey\r\n");
    gyre_buf_dispose(&h);
}

TEST(bedrock_auth_refuses_a_key_with_a_line_break_and_appends_nothing)
{
    gyre_provider_conf_t p = provider();
    gyre_buf_t h;
    CHECK_INT(auth(&p, "AKID:SE\r\nCRET", "h", "/model/m/converse", &h), -1);
    CHECK_INT(h.len, 0);
    gyre_buf_dispose(&h);
}

/* --- answers -------------------------------------------------------------------- */

static void check_response_fixture(const char *name)
{
    char in_name[128], out_name[128];
    snprintf(in_name, sizeof(in_name), "response_%s.bedrock.json", name);
    snprintf(out_name, sizeof(out_name), "response_%s.openai.json", name);
    char *in = read_fixture(in_name), *want_text = read_fixture(out_name);
    char *want = compact(want_text, strlen(want_text));
    gyre_provider_conf_t p = provider();
    gyre_chat_call_t call = call_for(NULL, &p, 0, 0);
    gyre_buf_t out;
    gyre_buf_init(&out, 1 << 20);
    gyre_api_error_t err;
    CHECK_INT(gyre_dialect_bedrock.chat_response(&call, in, strlen(in), &out, &err), 0);
    char *got = compact(out.base, out.len);
    CHECK(got != NULL);
    CHECK_STR(got, want);
    cJSON_free(got);
    cJSON_free(want);
    gyre_buf_dispose(&out);
    free(in);
    free(want_text);
}

TEST(bedrock_response_text_blocks_join_into_the_content_and_cache_reads_count_as_prompt_tokens)
{
    check_response_fixture("text");
}

TEST(bedrock_response_tool_use_blocks_become_tool_calls)
{
    check_response_fixture("tool_use");
}

TEST(bedrock_response_max_tokens_finishes_with_length)
{
    check_response_fixture("max_tokens");
}

TEST(bedrock_response_guardrail_intervened_finishes_with_content_filter)
{
    const char body[] = "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":[{\"text\":\"Sorry.\"}]}},"
                        "\"stopReason\":\"guardrail_intervened\",\"usage\":{\"inputTokens\":1,\"outputTokens\":2,"
                        "\"totalTokens\":3},\"metrics\":{\"latencyMs\":1}}";
    gyre_chat_call_t call = call_for(NULL, NULL, 0, 0);
    gyre_buf_t out;
    gyre_buf_init(&out, 1 << 20);
    gyre_api_error_t err;
    CHECK_INT(gyre_dialect_bedrock.chat_response(&call, body, sizeof(body) - 1, &out, &err), 0);
    CHECK(strstr(out.base, "\"finish_reason\":\"content_filter\"") != NULL);
    gyre_buf_dispose(&out);
}

TEST(bedrock_response_that_is_not_a_converse_answer_is_a_502)
{
    gyre_chat_call_t call = call_for(NULL, NULL, 0, 0);
    gyre_buf_t out;
    gyre_buf_init(&out, 1 << 20);
    gyre_api_error_t err;
    CHECK_INT(gyre_dialect_bedrock.chat_response(&call, "{\"output\":{}}", 13, &out, &err), -1);
    CHECK_INT(err.status, 502);
    CHECK_STR(err.message, "Bedrock's answer is not a Converse response (no output.message.content)");
    CHECK_INT(out.len, 0);
    gyre_buf_dispose(&out);
}

TEST(bedrock_error_message_reads_message_or_Message_else_gives_the_body)
{
    gyre_buf_t out;
    gyre_buf_init(&out, 4096);
    gyre_dialect_bedrock.error_message("{\"message\":\"The security token included in the request is invalid.\"}", 69,
                                       &out);
    CHECK_STR(out.base, "The security token included in the request is invalid.");
    gyre_buf_reset(&out);
    gyre_dialect_bedrock.error_message("{\"Message\":\"User is not authorized\"}", 36, &out);
    CHECK_STR(out.base, "User is not authorized");
    gyre_buf_reset(&out);
    gyre_dialect_bedrock.error_message("Bad Gateway", 11, &out);
    CHECK_STR(out.base, "Bad Gateway");
    gyre_buf_dispose(&out);
}

/* --- streams ---------------------------------------------------------------------- */

/* Frames a fixture's events ({"event-type", "payload"}, or {"exception-type", "payload"}) as Bedrock sends them. */
static void encode_events(const char *name, gyre_buf_t *frames)
{
    char *text = read_fixture(name);
    cJSON *events = cJSON_Parse(text);
    CHECK(cJSON_IsArray(events));
    gyre_buf_init(frames, 1 << 20);
    for (const cJSON *e = events != NULL ? events->child : NULL; e != NULL; e = e->next) {
        const cJSON *et = cJSON_GetObjectItem(e, "event-type"), *xt = cJSON_GetObjectItem(e, "exception-type");
        char *payload = cJSON_PrintUnformatted(cJSON_GetObjectItem(e, "payload"));
        gyre_eventstream_header_t h[3] = {{cJSON_IsString(xt) ? ":exception-type" : ":event-type",
                                           cJSON_IsString(xt) ? xt->valuestring : et->valuestring},
                                          {":content-type", "application/json"},
                                          {":message-type", cJSON_IsString(xt) ? "exception" : "event"}};
        CHECK_INT(gyre_eventstream_encode(h, 3, payload, strlen(payload), frames), 0);
        cJSON_free(payload);
    }
    cJSON_Delete(events);
    free(text);
}

/* Feeds `frames` cut at `cut` (cut == len: whole) and returns the OpenAI bytes; *complete as the stream says. */
static int translate(const gyre_buf_t *frames, size_t cut, int include_usage, gyre_buf_t *out, int *complete,
                     gyre_api_error_t *err)
{
    gyre_chat_call_t call = call_for(NULL, NULL, 1, include_usage);
    gyre_dialect_stream_t *s = sse_stream_create(&gyre_dialect_bedrock, &call);
    gyre_buf_init(out, 1 << 20);
    int r = sse_stream_feed(&gyre_dialect_bedrock, s, frames->base, cut, out, err);
    if (r == 0)
        r = sse_stream_feed(&gyre_dialect_bedrock, s, frames->base + cut, frames->len - cut, out, err);
    *complete = s->complete;
    sse_stream_destroy(&gyre_dialect_bedrock, s);
    return r;
}

static void check_stream_fixture(const char *name, int include_usage)
{
    char in_name[128], out_name[128];
    snprintf(in_name, sizeof(in_name), "stream_%s.events.json", name);
    snprintf(out_name, sizeof(out_name), "stream_%s.openai.sse", name);
    gyre_buf_t frames;
    encode_events(in_name, &frames);
    char *want = read_fixture(out_name);
    /* Whole, then cut at every byte: the translation never depends on where the reads fell. */
    for (size_t cut = frames.len; cut != (size_t)-1; cut--) {
        gyre_buf_t out;
        gyre_api_error_t err;
        int complete = 0;
        CHECK_INT(translate(&frames, cut, include_usage, &out, &complete, &err), 0);
        CHECK_STR(out.base, want);
        CHECK_INT(complete, 1);
        gyre_buf_dispose(&out);
        if (gyre_test_failures > 0)
            break;
    }
    gyre_buf_dispose(&frames);
    free(want);
}

TEST(bedrock_stream_text_becomes_role_content_finish_usage_and_done)
{
    check_stream_fixture("text", 1);
}

TEST(bedrock_stream_tool_uses_become_tool_call_heads_and_argument_deltas_indexed_by_tool)
{
    check_stream_fixture("tools", 0);
}

TEST(bedrock_stream_is_not_complete_before_metadata)
{
    gyre_chat_call_t call = call_for(NULL, NULL, 1, 0);
    gyre_dialect_stream_t *s = sse_stream_create(&gyre_dialect_bedrock, &call);
    gyre_buf_t frames, out;
    gyre_buf_init(&frames, 4096);
    gyre_buf_init(&out, 1 << 20);
    gyre_eventstream_header_t h[] = {{":event-type", "messageStop"}, {":message-type", "event"}};
    CHECK_INT(gyre_eventstream_encode(h, 2, "{\"stopReason\":\"end_turn\"}", 25, &frames), 0);
    gyre_api_error_t err;
    CHECK_INT(sse_stream_feed(&gyre_dialect_bedrock, s, frames.base, frames.len, &out, &err), 0);
    CHECK_INT(s->complete, 0);
    CHECK(strstr(out.base, "\"finish_reason\":\"stop\"") != NULL);
    CHECK(strstr(out.base, "[DONE]") == NULL);
    sse_stream_destroy(&gyre_dialect_bedrock, s);
    gyre_buf_dispose(&frames);
    gyre_buf_dispose(&out);
}

static int exception_status(const char *type, const char *payload, gyre_api_error_t *err)
{
    gyre_chat_call_t call = call_for(NULL, NULL, 1, 0);
    gyre_dialect_stream_t *s = sse_stream_create(&gyre_dialect_bedrock, &call);
    gyre_buf_t frames, out;
    gyre_buf_init(&frames, 4096);
    gyre_buf_init(&out, 1 << 20);
    gyre_eventstream_header_t start[] = {{":event-type", "messageStart"}, {":message-type", "event"}};
    gyre_eventstream_header_t exc[] = {{":exception-type", type}, {":message-type", "exception"}};
    gyre_eventstream_encode(start, 2, "{\"role\":\"assistant\"}", 20, &frames);
    gyre_eventstream_encode(exc, 2, payload, strlen(payload), &frames);
    CHECK_INT(sse_stream_feed(&gyre_dialect_bedrock, s, frames.base, frames.len, &out, err), -1);
    /* The role chunk went out before the exception; nothing after it. */
    CHECK(strstr(out.base, "{\"role\":\"assistant\",\"content\":\"\"}") != NULL);
    CHECK(strstr(out.base, "[DONE]") == NULL);
    CHECK_INT(s->complete, 0);
    /* A stream that failed keeps failing, with the same error. */
    gyre_api_error_t again;
    CHECK_INT(sse_stream_feed(&gyre_dialect_bedrock, s, "x", 1, &out, &again), -1);
    CHECK_INT(again.status, err->status);
    CHECK_STR(again.message, err->message);
    sse_stream_destroy(&gyre_dialect_bedrock, s);
    gyre_buf_dispose(&frames);
    gyre_buf_dispose(&out);
    return err->status;
}

TEST(bedrock_stream_exceptions_become_errors_with_their_status_and_message)
{
    gyre_api_error_t err;
    CHECK_INT(exception_status("throttlingException", "{\"message\":\"Too many requests, please wait.\"}", &err), 429);
    CHECK_STR(err.type, "upstream_error");
    CHECK_STR(err.message, "Bedrock: throttlingException: Too many requests, please wait.");
    CHECK_INT(exception_status("serviceUnavailableException", "{\"message\":\"busy\"}", &err), 503);
    CHECK_INT(exception_status("modelStreamErrorException", "{\"message\":\"m\"}", &err), 500);
    CHECK_INT(exception_status("internalServerException", "{\"Message\":\"oops\"}", &err), 500);
    CHECK_STR(err.message, "Bedrock: internalServerException: oops");
    CHECK_INT(exception_status("validationException", "{\"message\":\"bad\"}", &err), 400);
    CHECK_INT(exception_status("somethingNewException", "not json", &err), 502);
    CHECK_STR(err.message, "Bedrock: somethingNewException: no message");
}

TEST(bedrock_stream_with_a_bad_crc_is_a_502)
{
    gyre_buf_t frames;
    encode_events("stream_text.events.json", &frames);
    frames.base[frames.len - 1] ^= 1;
    gyre_buf_t out;
    gyre_api_error_t err;
    int complete = 0;
    CHECK_INT(translate(&frames, frames.len, 1, &out, &complete, &err), -1);
    CHECK_INT(err.status, 502);
    CHECK_STR(err.message, "Bedrock's event stream is corrupt (a CRC or a length does not match)");
    CHECK_INT(complete, 0);
    CHECK(strstr(out.base, "[DONE]") == NULL);
    gyre_buf_dispose(&out);
    gyre_buf_dispose(&frames);
}

TEST(bedrock_stream_event_whose_payload_is_not_json_is_a_502)
{
    gyre_chat_call_t call = call_for(NULL, NULL, 1, 0);
    gyre_dialect_stream_t *s = sse_stream_create(&gyre_dialect_bedrock, &call);
    gyre_buf_t frames, out;
    gyre_buf_init(&frames, 4096);
    gyre_buf_init(&out, 1 << 20);
    gyre_eventstream_header_t h[] = {{":event-type", "contentBlockDelta"}, {":message-type", "event"}};
    gyre_eventstream_encode(h, 2, "{\"delta\":", 9, &frames);
    gyre_api_error_t err;
    CHECK_INT(sse_stream_feed(&gyre_dialect_bedrock, s, frames.base, frames.len, &out, &err), -1);
    CHECK_INT(err.status, 502);
    CHECK_STR(err.message, "Bedrock sent a contentBlockDelta event whose payload is not a JSON object");
    CHECK_INT(out.len, 0);
    sse_stream_destroy(&gyre_dialect_bedrock, s);
    gyre_buf_dispose(&frames);
    gyre_buf_dispose(&out);
}

TEST(bedrock_stream_events_after_metadata_add_nothing)
{
    /* Found by fuzz/fuzz_bedrock.c: a second metadata event wrote a second usage chunk and [DONE]. */
    gyre_buf_t frames, out;
    encode_events("stream_text.events.json", &frames);
    size_t once = frames.len;
    gyre_eventstream_header_t h[3] = {
        {":event-type", "metadata"}, {":content-type", "application/json"}, {":message-type", "event"}};
    static const char meta[] = "{\"usage\":{\"inputTokens\":9,\"outputTokens\":9,\"totalTokens\":18}}";
    CHECK_INT(gyre_eventstream_encode(h, 3, meta, sizeof(meta) - 1, &frames), 0);
    char *want = read_fixture("stream_text.openai.sse");
    gyre_api_error_t err;
    int complete = 0;
    CHECK_INT(translate(&frames, once, 1, &out, &complete, &err), 0);
    CHECK_STR(out.base, want);
    CHECK_INT(complete, 1);
    gyre_buf_dispose(&out);
    gyre_buf_dispose(&frames);
    free(want);
}
