/*
 * src/dialect/gemini_client.c: Gemini generateContent requests (body and
 * path) into the exact pivot they amount to, chat completions into the exact
 * GenerateContentResponse, the exact SSE chunk sequence of a text stream and
 * of a function-call stream, and errors in Google's shape.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialect/client.h"
#include "test.h"

#define PATH(s) (s), strlen(s)

/* Parses `body` at `path` and checks the pivot is exactly `want` (compact JSON). */
static void check_pivot(const char *path, const char *body, const char *want)
{
    gyre_client_request_t r;
    gyre_api_error_t err;
    int rc = gyre_client_gemini.parse(body, strlen(body), &r, &err);
    CHECK_INT(rc, 0);
    if (rc != 0) {
        fprintf(stderr, "  error: %s (%s)\n", err.message, err.param);
        return;
    }
    CHECK_INT(gyre_client_gemini.from_path(PATH(path), &r, &err), 1);
    char *got = cJSON_PrintUnformatted(r.pivot);
    CHECK_STR(got, want);
    cJSON_free(got);
    cJSON_Delete(r.pivot);
}

static void check_refused(const char *body, const char *param, const char *in_message)
{
    gyre_client_request_t r;
    gyre_api_error_t err;
    CHECK_INT(gyre_client_gemini.parse(body, strlen(body), &r, &err), -1);
    CHECK_INT(err.status, 400);
    CHECK_STR(err.param, param);
    CHECK(strstr(err.message, in_message) != NULL);
}

TEST(gemini_client_paths_name_the_model_and_whether_it_streams)
{
    CHECK(gyre_client_dialect_for_path(PATH("/v1beta/models/gemini-2.5-flash:generateContent")) == &gyre_client_gemini);
    CHECK(gyre_client_dialect_for_path(PATH("/v1beta/models/a/b:streamGenerateContent")) == &gyre_client_gemini);
    CHECK(gyre_client_dialect_for_path(PATH("/v1/models/m:generateContent")) == &gyre_client_gemini);
    CHECK(gyre_client_dialect_for_path(PATH("/v1beta/models/:generateContent")) == NULL);
    CHECK(gyre_client_dialect_for_path(PATH("/v1beta/models/m:countTokens")) == NULL);
    CHECK(gyre_client_dialect_for_path(PATH("/v1beta/models/m")) == NULL);
    CHECK(gyre_client_dialect_for_path(PATH("/v1/messages")) == &gyre_client_anthropic);
    check_pivot("/v1beta/models/gemini-mock:generateContent", "{\"contents\":[{\"parts\":[{\"text\":\"hi\"}]}]}",
                "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"model\":\"gemini-mock\"}");
    check_pivot("/v1beta/models/openai/gpt-4o:streamGenerateContent",
                "{\"contents\":[{\"parts\":[{\"text\":\"hi\"}]}]}",
                "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"model\":\"openai/gpt-4o\",\"stream\":true,"
                "\"stream_options\":{\"include_usage\":true}}");
    /* A NUL in the path's model (a decoded %00) is refused naming the model. */
    gyre_client_request_t r;
    gyre_api_error_t err;
    CHECK_INT(gyre_client_gemini.parse(PATH("{\"contents\":[{\"parts\":[{\"text\":\"hi\"}]}]}"), &r, &err), 0);
    static const char nul[] = "/v1beta/models/a\0b:generateContent";
    CHECK_INT(gyre_client_gemini.from_path(nul, sizeof(nul) - 1, &r, &err), -1);
    CHECK_STR(err.param, "model");
    cJSON_Delete(r.pivot);
}

TEST(gemini_client_contents_system_and_generation_config_become_the_pivot)
{
    check_pivot("/v1beta/models/m:generateContent",
                "{\"systemInstruction\":{\"parts\":[{\"text\":\"Be \"},{\"text\":\"brief.\"}]},"
                "\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"Look:\"},{\"inlineData\":{\"mimeType\":"
                "\"image/png\",\"data\":\"iVBO\"}}]},{\"role\":\"model\",\"parts\":[{\"text\":\"A cat.\"}]},"
                "{\"role\":\"user\",\"parts\":[{\"text\":\"Thanks\"}]}],"
                "\"generationConfig\":{\"temperature\":0.5,\"topP\":0.9,\"maxOutputTokens\":100,"
                "\"stopSequences\":[\"END\"]}}",
                "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":["
                "{\"type\":\"text\",\"text\":\"Look:\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
                "\"data:image/png;base64,iVBO\"}}]},{\"role\":\"assistant\",\"content\":\"A cat.\"},"
                "{\"role\":\"user\",\"content\":\"Thanks\"}],\"temperature\":0.5,\"top_p\":0.9,\"max_tokens\":100,"
                "\"stop\":[\"END\"],\"model\":\"m\"}");
}

TEST(gemini_client_function_calls_responses_tools_and_tool_config_are_translated)
{
    check_pivot("/v1beta/models/m:generateContent",
                "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"Weather?\"}]},"
                "{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"w\",\"args\":{\"city\":\"Oslo\"}}},"
                "{\"functionCall\":{\"name\":\"w\",\"args\":{\"city\":\"Rome\"}}}]},"
                "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"w\",\"response\":{\"t\":1}}},"
                "{\"functionResponse\":{\"name\":\"w\",\"response\":{\"t\":2}}}]}],"
                "\"tools\":[{\"functionDeclarations\":[{\"name\":\"w\",\"description\":\"Weather\",\"parameters\":"
                "{\"type\":\"OBJECT\",\"properties\":{\"city\":{\"type\":\"STRING\"}}}}]}],"
                "\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"ANY\",\"allowedFunctionNames\":[\"w\"]}}}",
                "{\"messages\":[{\"role\":\"user\",\"content\":\"Weather?\"},{\"role\":\"assistant\",\"tool_calls\":["
                "{\"id\":\"call_0\",\"type\":\"function\",\"function\":{\"name\":\"w\",\"arguments\":"
                "\"{\\\"city\\\":\\\"Oslo\\\"}\"}},{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":"
                "\"w\",\"arguments\":\"{\\\"city\\\":\\\"Rome\\\"}\"}}],\"content\":null},"
                "{\"role\":\"tool\",\"tool_call_id\":\"call_0\",\"content\":\"{\\\"t\\\":1}\"},"
                "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"{\\\"t\\\":2}\"}],"
                "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"w\",\"description\":\"Weather\","
                "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}],"
                "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"w\"}},\"model\":\"m\"}");
    check_pivot("/v1beta/models/m:generateContent",
                "{\"contents\":[{\"parts\":[{\"text\":\"x\"}]}],\"toolConfig\":{\"functionCallingConfig\":{\"mode\":"
                "\"NONE\"}},\"tools\":[{\"functionDeclarations\":[{\"name\":\"f\"}]}],\"generationConfig\":{"
                "\"responseMimeType\":\"application/json\"}}",
                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\",\"function\":"
                "{\"name\":\"f\"}}],\"tool_choice\":\"none\",\"response_format\":{\"type\":\"json_object\"},"
                "\"model\":\"m\"}");
}

TEST(gemini_client_bad_requests_are_refused_naming_the_field)
{
    check_refused("[]", "", "JSON object");
    check_refused("{\"contents\":[]}", "contents", "non-empty");
    check_refused("{\"contents\":[{\"role\":\"bot\",\"parts\":[]}]}", "contents[0]", "user or model");
    /* A turn of no part: Gemini refuses it, and it would leave no message (fuzz_gemini_client's CI run). */
    check_refused("{\"contents\":[{\"rol\":\"user\",\"parts\":[]}]}", "contents[0]", "must not be empty");
    check_refused("{\"contents\":[{\"parts\":[{\"text\":\"x\"}]},{\"role\":\"model\",\"parts\":[]}]}", "contents[1]",
                  "must not be empty");
    check_refused("{\"contents\":[{\"parts\":[{\"fileData\":{}}]}]}", "contents[0]", "parts[0]");
    check_refused("{\"contents\":[{\"parts\":[{\"text\":\"x\"}]}],\"tools\":[{\"googleSearch\":{}}]}", "tools",
                  "functionDeclarations");
    check_refused("{\"contents\":[{\"parts\":[{\"text\":\"x\"}]}],\"generationConfig\":{\"temperature\":\"hot\"}}",
                  "generationConfig.temperature", "number");
    check_refused("{\"contents\":[{\"parts\":[{\"text\":\"x\"}]}],\"generationConfig\":{\"candidateCount\":2}}",
                  "generationConfig.candidateCount", "must be 1");
}

static char *answer(const char *completion)
{
    gyre_buf_t out;
    gyre_buf_init(&out, 1 << 20);
    gyre_api_error_t err;
    gyre_client_call_t call = {.model = "m", .id = "id-1"};
    CHECK_INT(gyre_client_gemini.response(&call, completion, strlen(completion), &out, &err), 0);
    return out.base;
}

TEST(gemini_client_completion_becomes_a_generate_content_response)
{
    char *got =
        answer("{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,"
               "\"message\":{\"role\":\"assistant\",\"content\":\"Hi \\\"there\\\"\"},\"finish_reason\":"
               "\"length\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3,\"total_tokens\":8,"
               "\"prompt_tokens_details\":{\"cached_tokens\":2}}}");
    CHECK_STR(got, "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi \\\"there\\\"\"}],\"role\":\"model\"},"
                   "\"finishReason\":\"MAX_TOKENS\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":5,"
                   "\"candidatesTokenCount\":3,\"totalTokenCount\":8,\"cachedContentTokenCount\":2},"
                   "\"modelVersion\":\"gpt-4o\",\"responseId\":\"chatcmpl-1\"}");
    free(got);
    got =
        answer("{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\","
               "\"type\":\"function\",\"function\":{\"name\":\"w\",\"arguments\":\"{\\\"city\\\": \\\"Oslo\\\"}\"}}]},"
               "\"finish_reason\":\"tool_calls\"}]}");
    CHECK_STR(got, "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"w\",\"args\":{\"city\":"
                   "\"Oslo\"}}}],\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}],\"modelVersion\":\"m\","
                   "\"responseId\":\"id-1\"}");
    free(got);
}

typedef struct {
    void *enc;
    gyre_buf_t out;
} stream_t;

static void stream_open(stream_t *s)
{
    s->enc = calloc(1, gyre_client_gemini.encoder_size);
    gyre_client_call_t call = {.model = "m", .id = "gyre-1", .include_usage = 1};
    gyre_client_gemini.encoder_init(s->enc, &call);
    gyre_buf_init(&s->out, 1 << 20);
}

static void emit(stream_t *s, gyre_event_t ev)
{
    CHECK_INT(gyre_client_gemini.encode(s->enc, &ev, &s->out), 0);
}

static void stream_close(stream_t *s)
{
    gyre_client_gemini.encoder_dispose(s->enc);
    free(s->enc);
    gyre_buf_dispose(&s->out);
}

#define S(lit) ((gyre_str_t){(lit), sizeof(lit) - 1})

TEST(gemini_client_text_stream_is_the_documented_chunk_sequence)
{
    stream_t s;
    stream_open(&s);
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_START, .id = S("chatcmpl-9"), .model = S("gpt-4o")});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_TEXT, .text = S("Hello")});
    CHECK(!gyre_client_gemini.encoder_complete(s.enc));
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_TEXT, .text = S(" world")});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_TEXT, .choice = 1, .text = S("other candidate")});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_FINISH, .finish_reason = "stop"});
    emit(&s,
         (gyre_event_t){.type = GYRE_EVENT_USAGE, .usage = {.input_tokens = 4, .output_tokens = 2, .total_tokens = 6}});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_DONE});
    CHECK(gyre_client_gemini.encoder_complete(s.enc));
    CHECK_STR(
        s.out.base,
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hello\"}],\"role\":\"model\"},\"index\":0}],"
        "\"modelVersion\":\"gpt-4o\",\"responseId\":\"chatcmpl-9\"}\r\n\r\n"
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\" world\"}],\"role\":\"model\"},\"index\":0}],"
        "\"modelVersion\":\"gpt-4o\",\"responseId\":\"chatcmpl-9\"}\r\n\r\n"
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\"}],\"role\":\"model\"},\"finishReason\":"
        "\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":2,"
        "\"totalTokenCount\":6},\"modelVersion\":\"gpt-4o\",\"responseId\":\"chatcmpl-9\"}\r\n\r\n");
    stream_close(&s);
}

TEST(gemini_client_tool_call_stream_sends_each_call_whole_in_the_last_chunk)
{
    stream_t s;
    stream_open(&s);
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_START});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_TOOL_START, .id = S("c1"), .name = S("w"), .text = S("")});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_TOOL_ARGS, .text = S("{\"city\":")});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_TOOL_ARGS, .text = S("\"Oslo\"}")});
    CHECK_INT((int)s.out.len, 0);
    emit(&s, (gyre_event_t){
                 .type = GYRE_EVENT_TOOL_START, .index = 1, .id = S("c2"), .name = S("t"), .text = S("not json")});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_FINISH, .finish_reason = "tool_calls"});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_DONE});
    CHECK_STR(s.out.base,
              "data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"w\",\"args\":{\"city\":"
              "\"Oslo\"}}},{\"functionCall\":{\"name\":\"t\",\"args\":{}}}],\"role\":\"model\"},\"finishReason\":"
              "\"STOP\",\"index\":0}],\"modelVersion\":\"m\",\"responseId\":\"gyre-1\"}\r\n\r\n");
    stream_close(&s);
}

TEST(gemini_client_errors_are_googles_shape_whole_and_as_the_streams_last_event)
{
    gyre_api_error_t err;
    gyre_api_error_set(&err, 429, "rate_limit_error", "rate_limited", NULL, "slow \"down\"");
    gyre_buf_t out;
    gyre_buf_init(&out, 1 << 16);
    CHECK_INT(gyre_client_gemini.error_body(&err, &out), 0);
    CHECK_STR(out.base,
              "{\"error\":{\"code\":429,\"message\":\"slow \\\"down\\\"\",\"status\":\"RESOURCE_EXHAUSTED\"}}");
    gyre_buf_reset(&out);
    gyre_api_error_set(&err, 502, "upstream_error", NULL, NULL, "cut");
    stream_t s;
    stream_open(&s);
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_TEXT, .text = S("a")});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_ERROR, .error = &err});
    emit(&s, (gyre_event_t){.type = GYRE_EVENT_DONE});
    CHECK(strstr(s.out.base,
                 "\r\n\r\ndata: {\"error\":{\"code\":502,\"message\":\"cut\",\"status\":\"INTERNAL\"}}\r\n\r\n") !=
          NULL);
    CHECK(strstr(s.out.base, "finishReason") == NULL);
    CHECK(!gyre_client_gemini.encoder_complete(s.enc));
    stream_close(&s);
    gyre_buf_dispose(&out);
}

TEST(gemini_client_encode_writes_whole_chunks_or_nothing_at_the_output_bound)
{
    stream_t s;
    stream_open(&s);
    gyre_buf_t small;
    gyre_buf_init(&small, 40);
    gyre_event_t ev = {.type = GYRE_EVENT_TEXT, .text = S("Hello")};
    CHECK_INT(gyre_client_gemini.encode(s.enc, &ev, &small), -1);
    CHECK_INT((int)small.len, 0);
    gyre_buf_dispose(&small);
    stream_close(&s);
}
