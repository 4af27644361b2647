/*
 * src/dialect/responses.c: Responses requests into the exact pivot (OpenAI
 * chat) they amount to, chat completions into Response objects, the exact
 * event sequence of a text stream and of a tool-call stream, errors, the
 * bounds, and previous_response_id's history.
 */
#include "dialect/responses.h"

#include <stdio.h>
#include <string.h>

#include "test.h"

/* Parses `body` and checks its pivot is exactly `want` (compact JSON). */
static void check_pivot(const char *body, const char *want)
{
    gyre_client_request_t r;
    gyre_api_error_t err;
    int rc = gyre_responses_parse(body, strlen(body), &r, &err);
    CHECK_INT(rc, 0);
    if (rc != 0) {
        fprintf(stderr, "  error: %s (%s)\n", err.message, err.param);
        return;
    }
    char *got = cJSON_PrintUnformatted(r.pivot);
    CHECK_STR(got, want);
    cJSON_free(got);
    cJSON_Delete(r.pivot);
}

/* Parses `body`, which must fail with `status`, `code` and `param`. */
static void check_refused(const char *body, const char *code, const char *param)
{
    gyre_client_request_t r;
    gyre_api_error_t err;
    CHECK_INT(gyre_responses_parse(body, strlen(body), &r, &err), -1);
    CHECK_INT(err.status, 400);
    CHECK_STR(err.code, code);
    CHECK_STR(err.param, param);
    CHECK(r.pivot == NULL);
}

TEST(responses_string_input_with_instructions_becomes_system_and_user_messages)
{
    check_pivot("{\"model\":\"m\",\"instructions\":\"Be brief.\",\"input\":\"Hello\",\"max_output_tokens\":50,"
                "\"temperature\":0.5,\"top_p\":0.9,\"store\":false,\"metadata\":{\"k\":\"v\"}}",
                "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\","
                "\"content\":\"Hello\"}],\"max_completion_tokens\":50,\"temperature\":0.5,\"top_p\":0.9}");
}

TEST(responses_message_items_become_chat_messages_with_parts)
{
    check_pivot("{\"model\":\"m\",\"input\":["
                "{\"role\":\"developer\",\"content\":\"Rules.\"},"
                "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"What is "
                "this?\"},{\"type\":\"input_image\",\"image_url\":\"https://x/cat.png\",\"detail\":\"low\"}]},"
                "{\"type\":\"message\",\"role\":\"assistant\",\"id\":\"msg_1\",\"status\":\"completed\",\"content\":["
                "{\"type\":\"output_text\",\"text\":\"A cat\",\"annotations\":[]},{\"type\":\"output_text\",\"text\":"
                "\".\"}]}]}",
                "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"Rules.\"},{\"role\":\"user\","
                "\"content\":[{\"type\":\"text\",\"text\":\"What is this?\"},{\"type\":\"image_url\",\"image_url\":{"
                "\"url\":\"https://x/cat.png\",\"detail\":\"low\"}}]},{\"role\":\"assistant\",\"content\":\"A "
                "cat.\"}]}");
}

TEST(responses_function_calls_and_outputs_become_tool_calls_and_tool_messages)
{
    /* Two calls in a row are one assistant turn (parallel calls), each output a tool message of its own. */
    check_pivot("{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":\"Weather?\"},"
                "{\"type\":\"function_call\",\"call_id\":\"c1\",\"name\":\"get_weather\",\"arguments\":"
                "\"{\\\"city\\\":\\\"Paris\\\"}\",\"id\":\"fc_1\",\"status\":\"completed\"},"
                "{\"type\":\"function_call\",\"call_id\":\"c2\",\"name\":\"get_time\",\"arguments\":\"{}\"},"
                "{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[]},"
                "{\"type\":\"function_call_output\",\"call_id\":\"c1\",\"output\":\"18C\"},"
                "{\"type\":\"function_call_output\",\"call_id\":\"c2\",\"output\":[{\"type\":\"input_text\","
                "\"text\":\"noon\"}]}]}",
                "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"Weather?\"},{\"role\":\"assistant\","
                "\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":"
                "\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},{\"id\":\"c2\",\"type\":"
                "\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":\"{}\"}}]},{\"role\":\"tool\","
                "\"tool_call_id\":\"c1\",\"content\":\"18C\"},{\"role\":\"tool\",\"tool_call_id\":\"c2\","
                "\"content\":\"noon\"}]}");
}

TEST(responses_function_tools_tool_choice_and_json_schema_format_are_translated)
{
    check_pivot("{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"function\",\"name\":\"get_weather\","
                "\"description\":\"Weather now\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{"
                "\"type\":\"string\"}},\"required\":[\"city\"]},\"strict\":true}],\"tool_choice\":{\"type\":"
                "\"function\",\"name\":\"get_weather\"},\"parallel_tool_calls\":false,\"text\":{\"format\":{\"type\":"
                "\"json_schema\",\"name\":\"w\",\"schema\":{\"type\":\"object\"},\"strict\":true}}}",
                "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":"
                "\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather now\",\"parameters\":"
                "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]},"
                "\"strict\":true}}],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}},"
                "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"w\",\"schema\":{\"type\":"
                "\"object\"},\"strict\":true}},\"parallel_tool_calls\":false}");
    check_pivot("{\"model\":\"m\",\"input\":\"x\",\"tool_choice\":\"required\",\"text\":{\"format\":{\"type\":"
                "\"text\"}}}",
                "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"required\"}");
}

TEST(responses_stream_asks_the_pivot_for_usage_and_locates_the_model)
{
    const char *body = "{\"input\":\"x\", \"model\":\"gpt-4o\",\"stream\":true}";
    gyre_client_request_t r;
    gyre_api_error_t err;
    CHECK_INT(gyre_responses_parse(body, strlen(body), &r, &err), 0);
    CHECK_INT(r.stream, 1);
    CHECK_INT(r.include_usage, 1);
    CHECK_STR(r.model, "gpt-4o");
    CHECK_MEM(body + r.model_start, r.model_end - r.model_start, "\"gpt-4o\"");
    char *got = cJSON_PrintUnformatted(r.pivot);
    CHECK_STR(got, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":true,"
                   "\"stream_options\":{\"include_usage\":true}}");
    cJSON_free(got);
    cJSON_Delete(r.pivot);
}

TEST(responses_bad_requests_are_refused_naming_the_field)
{
    check_refused("[1]", "invalid_json", "");
    check_refused("{\"input\":\"x\"}", "missing_required_parameter", "model");
    check_refused("{\"model\":\"m\"}", "missing_required_parameter", "input");
    check_refused("{\"model\":\"m\",\"input\":5}", "invalid_value", "input");
    check_refused("{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"robot\","
                  "\"content\":\"b\"}]}",
                  "invalid_value", "input[1].role");
    check_refused("{\"model\":\"m\",\"input\":[{\"type\":\"function_call\",\"call_id\":\"c\",\"name\":\"f\"}]}",
                  "invalid_value", "input[0].arguments");
    check_refused("{\"model\":\"m\",\"input\":[{\"type\":\"function_call_output\",\"output\":\"o\"}]}",
                  "invalid_value", "input[0].call_id");
    check_refused("{\"model\":\"m\",\"input\":\"x\",\"max_output_tokens\":0}", "invalid_value", "max_output_tokens");
    check_refused("{\"model\":\"m\",\"input\":\"x\",\"temperature\":\"hot\"}", "invalid_value", "temperature");
    check_refused("{\"model\":\"m\",\"input\":\"x\",\"tool_choice\":\"sometimes\"}", "invalid_value", "tool_choice");
    check_refused("{\"model\":\"m\",\"input\":\"x\",\"stream\":\"yes\"}", "invalid_value", "stream");
    check_refused("{\"model\":\"m\",\"input\":\"x\",\"previous_response_id\":7}", "invalid_value",
                  "previous_response_id");
    check_refused("{\"model\":\"m\",\"input\":\"x\",\"text\":{\"format\":{\"type\":\"json_schema\",\"schema\":{}}}}",
                  "invalid_value", "text.format.name");
}

TEST(responses_what_only_openai_serves_is_refused_as_native_only)
{
    const char *bodies[] = {
        "{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"web_search\"}]}",
        "{\"model\":\"m\",\"input\":[{\"type\":\"item_reference\",\"id\":\"msg_1\"}]}",
        "{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_file\",\"file_id\":\"f\"}]}]}",
        "{\"model\":\"m\",\"input\":\"x\",\"background\":true}",
        "{\"model\":\"m\",\"input\":\"x\",\"tool_choice\":{\"type\":\"web_search_preview\"}}",
    };
    const char *params[] = {"tools[0].type", "input[0].type", "input[0].content[0].type", "background",
                            "tool_choice"};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        gyre_client_request_t r;
        gyre_api_error_t err;
        CHECK_INT(gyre_responses_parse(bodies[i], strlen(bodies[i]), &r, &err), -1);
        CHECK(err.code == gyre_responses_native_only);
        CHECK_STR(err.param, params[i]);
    }
}

static const char *request_json = "{\"model\":\"m\",\"instructions\":\"Be brief.\",\"input\":\"Hi\",\"store\":false}";

/* A call as the pipeline makes it, with the client's request parsed. */
static gyre_client_call_t make_call(cJSON **req)
{
    *req = cJSON_Parse(request_json);
    return (gyre_client_call_t){.model = "m", .id = "resp_abc", .created = 1700000000, .request = *req};
}

#define ECHO_HEAD "\"instructions\":\"Be brief.\",\"max_output_tokens\":null"
#define ECHO_TAIL                                                                                                    \
    "\"parallel_tool_calls\":true,\"previous_response_id\":null,\"reasoning\":{\"effort\":null,\"summary\":null},"   \
    "\"store\":false,\"temperature\":1,\"text\":{\"format\":{\"type\":\"text\"}},\"tool_choice\":\"auto\","           \
    "\"tools\":[],\"top_p\":1,\"truncation\":\"disabled\",\"user\":null,\"metadata\":{}"

TEST(responses_completion_becomes_a_response_object)
{
    cJSON *req;
    gyre_client_call_t call = make_call(&req);
    const char *completion =
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":5,\"model\":\"claude-x\",\"choices\":[{"
        "\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello there\"},\"finish_reason\":\"stop\"}],"
        "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11,\"prompt_tokens_details\":{"
        "\"cached_tokens\":4},\"completion_tokens_details\":{\"reasoning_tokens\":1}}}";
    gyre_buf_t out;
    gyre_buf_init(&out, 1 << 20);
    gyre_api_error_t err;
    CHECK_INT(gyre_client_responses.response(&call, completion, strlen(completion), &out, &err), 0);
    CHECK_STR(out.base,
              "{\"id\":\"resp_abc\",\"object\":\"response\",\"created_at\":1700000000,\"status\":\"completed\","
              "\"background\":false,\"error\":null,\"incomplete_details\":null," ECHO_HEAD ",\"model\":\"claude-x\","
              "\"output\":[{\"id\":\"msg_abc_0\",\"type\":\"message\",\"status\":\"completed\",\"content\":[{\"type\":"
              "\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":\"Hello there\"}],\"role\":\"assistant\"}],"
              ECHO_TAIL ",\"usage\":{\"input_tokens\":9,\"input_tokens_details\":{\"cached_tokens\":4},"
              "\"output_tokens\":2,\"output_tokens_details\":{\"reasoning_tokens\":1},\"total_tokens\":11}}");
    gyre_buf_dispose(&out);
    cJSON_Delete(req);
}

TEST(responses_completion_with_tool_calls_becomes_function_call_items)
{
    cJSON *req;
    gyre_client_call_t call = make_call(&req);
    const char *completion =
        "{\"model\":\"g\",\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":"
        "\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":"
        "\\\"Paris\\\"}\"}}]},\"finish_reason\":\"tool_calls\"}]}";
    gyre_buf_t out;
    gyre_buf_init(&out, 1 << 20);
    gyre_api_error_t err;
    CHECK_INT(gyre_client_responses.response(&call, completion, strlen(completion), &out, &err), 0);
    cJSON *r = cJSON_Parse(out.base);
    char *output = cJSON_PrintUnformatted(cJSON_GetObjectItem(r, "output"));
    CHECK_STR(output, "[{\"id\":\"fc_abc_0\",\"type\":\"function_call\",\"status\":\"completed\",\"arguments\":"
                      "\"{\\\"city\\\":\\\"Paris\\\"}\",\"call_id\":\"call_1\",\"name\":\"get_weather\"}]");
    CHECK_STR(cJSON_GetObjectItem(r, "status")->valuestring, "completed");
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(r, "usage"))); /* the provider gave none */
    cJSON_free(output);
    cJSON_Delete(r);
    gyre_buf_dispose(&out);
    cJSON_Delete(req);
}

TEST(responses_completion_cut_at_the_token_limit_is_incomplete)
{
    cJSON *req;
    gyre_client_call_t call = make_call(&req);
    const char *completion = "{\"choices\":[{\"message\":{\"content\":\"Hel\"},\"finish_reason\":\"length\"}]}";
    gyre_buf_t out;
    gyre_buf_init(&out, 1 << 20);
    gyre_api_error_t err;
    CHECK_INT(gyre_client_responses.response(&call, completion, strlen(completion), &out, &err), 0);
    cJSON *r = cJSON_Parse(out.base);
    CHECK_STR(cJSON_GetObjectItem(r, "status")->valuestring, "incomplete");
    CHECK_STR(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "incomplete_details"), "reason")->valuestring,
              "max_output_tokens");
    CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "output"), 0), "status")->valuestring,
              "incomplete");
    CHECK_STR(cJSON_GetObjectItem(r, "model")->valuestring, "m"); /* the answer named none: the client's */
    cJSON_Delete(r);
    gyre_buf_dispose(&out);
    CHECK_INT(gyre_client_responses.response(&call, "{\"choices\":[]}", 14, &out, &err), -1);
    CHECK_INT(err.status, 502);
    cJSON_Delete(req);
}

/* ---- streams ---- */

typedef struct stream {
    cJSON *req;
    gyre_client_call_t call;
    void *enc;
    gyre_buf_t out;
} stream_t;

static void stream_open(stream_t *s)
{
    s->call = make_call(&s->req);
    s->enc = calloc(1, gyre_client_responses.encoder_size);
    gyre_client_responses.encoder_init(s->enc, &s->call);
    gyre_buf_init(&s->out, 1 << 20);
}

static void stream_close(stream_t *s)
{
    gyre_responses_encoder_dispose(s->enc);
    free(s->enc);
    gyre_buf_dispose(&s->out);
    cJSON_Delete(s->req);
}

static void emit(stream_t *s, gyre_event_t ev)
{
    CHECK_INT(gyre_client_responses.encode(s->enc, &ev, &s->out), 0);
}

static gyre_str_t S(const char *s)
{
    return (gyre_str_t){s, strlen(s)};
}

/*
 * The stream's events as "type/sequence_number" joined by spaces, each checked on the way: the SSE event name
 * is the data's type, the data is JSON, the events are numbered from 0.  `datas` gets the parsed data.
 */
static void split_events(const gyre_buf_t *out, gyre_buf_t *names, cJSON *datas)
{
    const char *p = out->base, *end = out->base + out->len;
    int n = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        CHECK(strncmp(p, "event: ", 7) == 0 && nl != NULL);
        if (nl == NULL)
            return;
        const char *data = nl + 1, *stop = strstr(data, "\n\n");
        CHECK(strncmp(data, "data: ", 6) == 0 && stop != NULL);
        if (stop == NULL)
            return;
        cJSON *d = cJSON_ParseWithLength(data + 6, (size_t)(stop - data - 6));
        CHECK(d != NULL);
        const cJSON *type = cJSON_GetObjectItem(d, "type");
        CHECK(cJSON_IsString(type) && strlen(type->valuestring) == (size_t)(nl - p - 7) &&
              memcmp(type->valuestring, p + 7, (size_t)(nl - p - 7)) == 0);
        CHECK_INT(cJSON_GetObjectItem(d, "sequence_number")->valueint, n);
        gyre_buf_appendf(names, "%s%.*s/%d", n ? " " : "", (int)(nl - p - 7), p + 7, n);
        cJSON_AddItemToArray(datas, d);
        n++;
        p = stop + 2;
    }
}

static char *member_json(const cJSON *datas, int i, const char *key)
{
    return cJSON_PrintUnformatted(cJSON_GetObjectItem(cJSON_GetArrayItem(datas, i), key));
}

TEST(responses_text_stream_is_the_documented_event_sequence)
{
    stream_t s;
    stream_open(&s);
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_START, .id = S("chatcmpl-1"), .model = S("claude-x")});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_TEXT, .text = S("Hello")});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_TEXT, .text = S(" there")});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_FINISH, .finish_reason = "stop"});
    CHECK_INT(gyre_client_responses.encoder_complete(s.enc), 0);
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_USAGE, .usage = {9, 2, 11, 0}});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_DONE});
    CHECK_INT(gyre_client_responses.encoder_complete(s.enc), 1);
    gyre_buf_t names;
    gyre_buf_init(&names, 4096);
    cJSON *d = cJSON_CreateArray();
    split_events(&s.out, &names, d);
    CHECK_STR(names.base, "response.created/0 response.in_progress/1 response.output_item.added/2 "
                          "response.content_part.added/3 response.output_text.delta/4 response.output_text.delta/5 "
                          "response.output_text.done/6 response.content_part.done/7 response.output_item.done/8 "
                          "response.completed/9");
    char *j;
    CHECK_STR(j = member_json(d, 0, "response"),
              "{\"id\":\"resp_abc\",\"object\":\"response\",\"created_at\":1700000000,\"status\":\"in_progress\","
              "\"background\":false,\"error\":null,\"incomplete_details\":null," ECHO_HEAD ",\"model\":\"claude-x\","
              "\"output\":[]," ECHO_TAIL ",\"usage\":null}");
    cJSON_free(j);
    CHECK_STR(j = member_json(d, 2, "item"), "{\"id\":\"msg_abc_0\",\"type\":\"message\",\"status\":\"in_progress\","
                                             "\"content\":[],\"role\":\"assistant\"}");
    cJSON_free(j);
    CHECK_STR(j = cJSON_PrintUnformatted(cJSON_GetArrayItem(d, 4)),
              "{\"type\":\"response.output_text.delta\",\"sequence_number\":4,\"item_id\":\"msg_abc_0\","
              "\"output_index\":0,\"content_index\":0,\"logprobs\":[],\"delta\":\"Hello\"}");
    cJSON_free(j);
    CHECK_STR(j = member_json(d, 6, "text"), "\"Hello there\"");
    cJSON_free(j);
    CHECK_STR(j = member_json(d, 8, "item"),
              "{\"id\":\"msg_abc_0\",\"type\":\"message\",\"status\":\"completed\",\"content\":[{\"type\":"
              "\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":\"Hello there\"}],\"role\":\"assistant\"}");
    cJSON_free(j);
    CHECK_STR(j = member_json(d, 9, "response"),
              "{\"id\":\"resp_abc\",\"object\":\"response\",\"created_at\":1700000000,\"status\":\"completed\","
              "\"background\":false,\"error\":null,\"incomplete_details\":null," ECHO_HEAD ",\"model\":\"claude-x\","
              "\"output\":[{\"id\":\"msg_abc_0\",\"type\":\"message\",\"status\":\"completed\",\"content\":[{\"type\":"
              "\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":\"Hello there\"}],\"role\":\"assistant\"}],"
              ECHO_TAIL ",\"usage\":{\"input_tokens\":9,\"input_tokens_details\":{\"cached_tokens\":0},"
              "\"output_tokens\":2,\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":11}}");
    cJSON_free(j);
    /* Nothing follows the end. */
    size_t len = s.out.len;
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_TEXT, .text = S("late")});
    CHECK_INT(s.out.len, len);
    cJSON_Delete(d);
    gyre_buf_dispose(&names);
    stream_close(&s);
}

TEST(responses_tool_call_stream_is_the_documented_event_sequence)
{
    stream_t s;
    stream_open(&s);
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_START});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_TEXT, .text = S("Let me check.")});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_TOOL_START, .index = 0, .id = S("call_1"), .name = S("get_weather")});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_TOOL_ARGS, .index = 0, .text = S("{\"city\":")});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_TOOL_ARGS, .index = 0, .text = S("\"Paris\"}")});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_FINISH, .finish_reason = "tool_calls"});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_USAGE, .usage = {9, 7, 0, 3}});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_DONE});
    gyre_buf_t names;
    gyre_buf_init(&names, 4096);
    cJSON *d = cJSON_CreateArray();
    split_events(&s.out, &names, d);
    CHECK_STR(names.base,
              "response.created/0 response.in_progress/1 response.output_item.added/2 response.content_part.added/3 "
              "response.output_text.delta/4 response.output_text.done/5 response.content_part.done/6 "
              "response.output_item.done/7 response.output_item.added/8 response.function_call_arguments.delta/9 "
              "response.function_call_arguments.delta/10 response.function_call_arguments.done/11 "
              "response.output_item.done/12 response.completed/13");
    char *j;
    CHECK_STR(j = member_json(d, 8, "item"), "{\"id\":\"fc_abc_1\",\"type\":\"function_call\",\"status\":"
                                             "\"in_progress\",\"arguments\":\"\",\"call_id\":\"call_1\",\"name\":"
                                             "\"get_weather\"}");
    cJSON_free(j);
    CHECK_STR(j = cJSON_PrintUnformatted(cJSON_GetArrayItem(d, 10)),
              "{\"type\":\"response.function_call_arguments.delta\",\"sequence_number\":10,\"item_id\":\"fc_abc_1\","
              "\"output_index\":1,\"delta\":\"\\\"Paris\\\"}\"}");
    cJSON_free(j);
    CHECK_STR(j = cJSON_PrintUnformatted(cJSON_GetArrayItem(d, 11)),
              "{\"type\":\"response.function_call_arguments.done\",\"sequence_number\":11,\"item_id\":\"fc_abc_1\","
              "\"output_index\":1,\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}");
    cJSON_free(j);
    cJSON *completed = cJSON_GetObjectItem(cJSON_GetArrayItem(d, 13), "response");
    CHECK_STR(j = cJSON_PrintUnformatted(cJSON_GetObjectItem(completed, "output")),
              "[{\"id\":\"msg_abc_0\",\"type\":\"message\",\"status\":\"completed\",\"content\":[{\"type\":"
              "\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":\"Let me check.\"}],\"role\":"
              "\"assistant\"},{\"id\":\"fc_abc_1\",\"type\":\"function_call\",\"status\":\"completed\",\"arguments\":"
              "\"{\\\"city\\\":\\\"Paris\\\"}\",\"call_id\":\"call_1\",\"name\":\"get_weather\"}]");
    cJSON_free(j);
    /* A total the provider left out is the sum; cached tokens are the input's. */
    CHECK_STR(j = cJSON_PrintUnformatted(cJSON_GetObjectItem(completed, "usage")),
              "{\"input_tokens\":9,\"input_tokens_details\":{\"cached_tokens\":3},\"output_tokens\":7,"
              "\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":16}");
    cJSON_free(j);
    cJSON_Delete(d);
    gyre_buf_dispose(&names);
    stream_close(&s);
}

TEST(responses_stream_cut_at_the_token_limit_ends_incomplete)
{
    stream_t s;
    stream_open(&s);
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_TEXT, .text = S("Hel")}); /* no START: the stream begins anyway */
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_FINISH, .finish_reason = "length"});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_DONE});
    gyre_buf_t names;
    gyre_buf_init(&names, 4096);
    cJSON *d = cJSON_CreateArray();
    split_events(&s.out, &names, d);
    CHECK_STR(names.base, "response.created/0 response.in_progress/1 response.output_item.added/2 "
                          "response.content_part.added/3 response.output_text.delta/4 response.output_text.done/5 "
                          "response.content_part.done/6 response.output_item.done/7 response.incomplete/8");
    cJSON *r = cJSON_GetObjectItem(cJSON_GetArrayItem(d, 8), "response");
    CHECK_STR(cJSON_GetObjectItem(r, "status")->valuestring, "incomplete");
    CHECK_STR(cJSON_GetObjectItem(r, "model")->valuestring, "m");
    cJSON_Delete(d);
    gyre_buf_dispose(&names);
    stream_close(&s);
}

TEST(responses_stream_error_is_an_error_event_then_response_failed)
{
    stream_t s;
    stream_open(&s);
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_START});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_TEXT, .text = S("Hi")});
    gyre_api_error_t err;
    gyre_api_error_set(&err, 529, "upstream_error", "overloaded", NULL, "provider 'a' is overloaded");
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_ERROR, .error = &err});
    CHECK_INT(gyre_client_responses.encoder_complete(s.enc), 1);
    gyre_buf_t names;
    gyre_buf_init(&names, 4096);
    cJSON *d = cJSON_CreateArray();
    split_events(&s.out, &names, d);
    CHECK_STR(names.base, "response.created/0 response.in_progress/1 response.output_item.added/2 "
                          "response.content_part.added/3 response.output_text.delta/4 error/5 response.failed/6");
    char *j;
    CHECK_STR(j = cJSON_PrintUnformatted(cJSON_GetArrayItem(d, 5)),
              "{\"type\":\"error\",\"sequence_number\":5,\"code\":\"overloaded\",\"message\":\"provider 'a' is "
              "overloaded\",\"param\":null}");
    cJSON_free(j);
    cJSON *r = cJSON_GetObjectItem(cJSON_GetArrayItem(d, 6), "response");
    CHECK_STR(cJSON_GetObjectItem(r, "status")->valuestring, "failed");
    CHECK_STR(j = cJSON_PrintUnformatted(cJSON_GetObjectItem(r, "error")),
              "{\"code\":\"server_error\",\"message\":\"provider 'a' is overloaded\"}");
    cJSON_free(j);
    cJSON_Delete(d);
    gyre_buf_dispose(&names);
    stream_close(&s);
    /* Before any stream, the table's error event stands alone. */
    gyre_buf_t out;
    gyre_buf_init(&out, 4096);
    CHECK_INT(gyre_client_responses.error_event(&err, &out), 0);
    CHECK_STR(out.base, "event: error\ndata: {\"type\":\"error\",\"sequence_number\":0,\"code\":\"overloaded\","
                        "\"message\":\"provider 'a' is overloaded\",\"param\":null}\n\n");
    gyre_buf_reset(&out);
    CHECK_INT(gyre_client_responses.error_body(&err, &out), 0);
    CHECK_STR(out.base, "{\"error\":{\"message\":\"provider 'a' is overloaded\",\"type\":\"upstream_error\","
                        "\"param\":null,\"code\":\"overloaded\"}}");
    gyre_buf_dispose(&out);
}

TEST(responses_encode_writes_whole_events_or_nothing_at_the_output_bound)
{
    stream_t s;
    stream_open(&s);
    gyre_buf_t small;
    gyre_buf_init(&small, 100); /* less than response.created */
    gyre_event_t ev = {.type = GYRE_EVENT_START};
    CHECK_INT(gyre_client_responses.encode(s.enc, &ev, &small), -1);
    CHECK_INT(small.len, 0);
    gyre_buf_dispose(&small);
    stream_close(&s);
}

/* ---- previous_response_id ---- */

TEST(responses_earlier_turn_becomes_history_after_the_instructions)
{
    const char *req1 = "{\"model\":\"m\",\"instructions\":\"Old rules.\",\"input\":\"My name is Ada.\","
                       "\"previous_response_id\":\"resp_0\"}";
    const char *ans1 = "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"Hello Ada.\"}}]}";
    char prev[GYRE_RESPONSES_ID_MAX + 1];
    gyre_api_error_t err;
    cJSON *h = gyre_responses_turn_messages(req1, strlen(req1), ans1, strlen(ans1), prev, &err);
    CHECK(h != NULL);
    CHECK_STR(prev, "resp_0");
    const char *body = "{\"model\":\"m\",\"instructions\":\"New rules.\",\"input\":\"What is my name?\","
                       "\"previous_response_id\":\"resp_1\"}";
    gyre_client_request_t r;
    CHECK_INT(gyre_responses_parse(body, strlen(body), &r, &err), 0);
    gyre_responses_prepend_history(r.pivot, h);
    char *got = cJSON_PrintUnformatted(r.pivot);
    CHECK_STR(got, "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"New rules.\"},{\"role\":"
                   "\"user\",\"content\":\"My name is Ada.\"},{\"role\":\"assistant\",\"content\":\"Hello Ada.\"},"
                   "{\"role\":\"user\",\"content\":\"What is my name?\"}]}");
    cJSON_free(got);
    cJSON_Delete(r.pivot);
}

TEST(responses_earlier_turn_reads_a_response_object_and_refuses_what_it_cannot_read)
{
    const char *req1 = "{\"model\":\"m\",\"input\":\"Weather?\",\"tools\":[{\"type\":\"function\",\"name\":\"w\"}]}";
    const char *ans1 = "{\"object\":\"response\",\"output\":[{\"type\":\"function_call\",\"id\":\"fc_1\",\"call_id\":"
                       "\"c1\",\"name\":\"w\",\"arguments\":\"{}\",\"status\":\"completed\"}]}";
    char prev[GYRE_RESPONSES_ID_MAX + 1];
    gyre_api_error_t err;
    cJSON *h = gyre_responses_turn_messages(req1, strlen(req1), ans1, strlen(ans1), prev, &err);
    char *got = cJSON_PrintUnformatted(h);
    CHECK_STR(got, "[{\"role\":\"user\",\"content\":\"Weather?\"},{\"role\":\"assistant\",\"content\":null,"
                   "\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"w\",\"arguments\":"
                   "\"{}\"}}]}]");
    CHECK_STR(prev, "");
    cJSON_free(got);
    cJSON_Delete(h);
    CHECK(gyre_responses_turn_messages(req1, strlen(req1), "data: x", 7, prev, &err) == NULL);
    CHECK_INT(err.status, 400);
    CHECK_STR(err.param, "previous_response_id");
}

TEST(responses_stream_takes_whole_calls_and_ignores_other_choices_and_repeated_starts)
{
    stream_t s;
    stream_open(&s);
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_START, .model = S("gemini-x")});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_START, .model = S("other")}); /* a later chunk naming the model */
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_TEXT, .choice = 1, .text = S("ignored")});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_CHUNK, .text = S("{}")});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_TOOL_START, .id = S("c1"), .name = S("f"), .text = S("{\"a\":1}")});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_FINISH, .finish_reason = "tool_calls"});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_USAGE, .usage = {.input_tokens = 5, .output_tokens = 4,
                                                                .total_tokens = 9, .reasoning_tokens = 2}});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_DONE});
    gyre_buf_t names;
    gyre_buf_init(&names, 4096);
    cJSON *d = cJSON_CreateArray();
    split_events(&s.out, &names, d);
    CHECK_STR(names.base, "response.created/0 response.in_progress/1 response.output_item.added/2 "
                          "response.function_call_arguments.delta/3 response.function_call_arguments.done/4 "
                          "response.output_item.done/5 response.completed/6");
    cJSON *r = cJSON_GetObjectItem(cJSON_GetArrayItem(d, 6), "response");
    CHECK_STR(cJSON_GetObjectItem(r, "model")->valuestring, "gemini-x");
    char *j;
    CHECK_STR(j = member_json(d, 4, "arguments"), "\"{\\\"a\\\":1}\"");
    cJSON_free(j);
    CHECK_INT(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "usage"), "output_tokens_details"),
                                  "reasoning_tokens")->valueint, 2);
    cJSON_Delete(d);
    gyre_buf_dispose(&names);
    stream_close(&s);
}

TEST(responses_native_stream_ends_at_its_last_events)
{
    const char *data = "{\"type\":\"response.completed\",\"sequence_number\":9}";
    CHECK_INT(gyre_client_responses.stream_ends("response.completed", 18, data, strlen(data)), 1);
    CHECK_INT(gyre_client_responses.stream_ends("error", 5, "{}", 2), 1);
    CHECK_INT(gyre_client_responses.stream_ends("", 0, data, strlen(data)), 1);
    CHECK_INT(gyre_client_responses.stream_ends("response.output_text.delta", 26, "{}", 2), 0);
    CHECK_INT(gyre_client_responses.stream_ends("", 0, "{\"type\":\"response.created\"}", 27), 0);
}

TEST(responses_native_answer_reads_as_the_chat_completion_it_amounts_to)
{
    const char *resp = "{\"id\":\"resp_1\",\"object\":\"response\",\"created_at\":7,\"model\":\"gpt-x\",\"output\":[{\"type\":"
                       "\"message\",\"content\":[{\"type\":\"output_text\",\"text\":\"Hi \"},{\"type\":\"output_text\","
                       "\"text\":\"there\"}]},{\"type\":\"function_call\",\"call_id\":\"c1\",\"name\":\"f\",\"arguments\":"
                       "\"{}\"}],\"usage\":{\"input_tokens\":5,\"input_tokens_details\":{\"cached_tokens\":1},"
                       "\"output_tokens\":3,\"output_tokens_details\":{\"reasoning_tokens\":2},\"total_tokens\":8}}";
    gyre_buf_t out;
    gyre_buf_init(&out, 1 << 20);
    CHECK_INT(gyre_responses_to_completion(resp, strlen(resp), &out), 0);
    CHECK_STR(out.base, "{\"id\":\"resp_1\",\"object\":\"chat.completion\",\"created\":7,\"model\":\"gpt-x\",\"choices\":[{"
                        "\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hi there\",\"tool_calls\":[{\"id\":"
                        "\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
                        "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3,"
                        "\"total_tokens\":8,\"prompt_tokens_details\":{\"cached_tokens\":1},"
                        "\"completion_tokens_details\":{\"reasoning_tokens\":2}}}");
    /* The event that ends a native stream carries the Response as its `response`. */
    gyre_buf_reset(&out);
    const char *ev = "{\"type\":\"response.incomplete\",\"sequence_number\":9,\"response\":{\"object\":\"response\","
                     "\"incomplete_details\":{\"reason\":\"max_output_tokens\"},\"output\":[]}}";
    CHECK_INT(gyre_responses_to_completion(ev, strlen(ev), &out), 0);
    CHECK(strstr(out.base, "\"content\":\"\"},\"finish_reason\":\"length\"") != NULL);
    gyre_buf_reset(&out);
    CHECK_INT(gyre_responses_to_completion("{\"choices\":[]}", 14, &out), -1);
    gyre_buf_dispose(&out);
}
