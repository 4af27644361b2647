#include "dialect/openai.h"

#include <string.h>

#include "test.h"

#define LIT(s) s, sizeof(s) - 1

static int parse(gyre_openai_endpoint_t ep, const char *body, gyre_openai_request_t *r, gyre_api_error_t *e)
{
    return gyre_openai_parse_request(ep, body, strlen(body), r, e);
}

/* Asserts a 400 with the given code, param ("" for null) and message. */
#define CHECK_400(ep, body, code_, param_, message_)                                                                 \
    do {                                                                                                             \
        gyre_openai_request_t r_;                                                                                    \
        gyre_api_error_t e_;                                                                                         \
        CHECK_INT(parse((ep), (body), &r_, &e_), -1);                                                               \
        CHECK_INT(e_.status, 400);                                                                                   \
        CHECK_STR(e_.type, "invalid_request_error");                                                                 \
        CHECK_STR(e_.code, (code_));                                                                                 \
        CHECK_STR(e_.param, (param_));                                                                               \
        CHECK_STR(e_.message, (message_));                                                                           \
    } while (0)

TEST(openai_chat_request_reads_model_its_span_and_stream_flags)
{
    const char body[] = "{ \"model\" : \"chat\", \"stream\": true, \"stream_options\": {\"include_usage\": true},"
                        " \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}";
    gyre_openai_request_t r;
    gyre_api_error_t e;
    CHECK_INT(parse(GYRE_OPENAI_CHAT, body, &r, &e), 0);
    CHECK_STR(r.model, "chat");
    CHECK_MEM(body + r.model_start, r.model_end - r.model_start, "\"chat\"");
    CHECK_INT(r.stream, 1);
    CHECK_INT(r.include_usage, 1);
    gyre_openai_request_dispose(&r);
}

TEST(openai_malformed_json_says_where_parsing_stopped)
{
    CHECK_400(GYRE_OPENAI_CHAT, "{\"model\": \"chat\",\n \"messages\": [,]}", "invalid_json", "",
              "the request body is not valid JSON: parsing stopped at line 2, column 15 (byte 32)");
    CHECK_400(GYRE_OPENAI_CHAT, "", "invalid_json", "", "the request body is empty; expected a JSON object");
    CHECK_400(GYRE_OPENAI_CHAT, "[1,2]", "invalid_json", "", "the request body must be a JSON object, got an array");
    CHECK_400(GYRE_OPENAI_CHAT, "{\"model\":\"chat\",\"messages\":[]} x", "invalid_json", "",
              "the request body is not valid JSON: unexpected data after the value at line 1, column 32 (byte 31)");
}

TEST(openai_missing_or_mistyped_model_is_named)
{
    CHECK_400(GYRE_OPENAI_CHAT, "{\"messages\":[{\"role\":\"user\"}]}", "missing_required_parameter", "model",
              "missing required parameter 'model'");
    CHECK_400(GYRE_OPENAI_CHAT, "{\"model\":null,\"messages\":[]}", "missing_required_parameter", "model",
              "missing required parameter 'model'");
    CHECK_400(GYRE_OPENAI_CHAT, "{\"model\":[\"a\"],\"messages\":[]}", "invalid_type", "model",
              "'model' must be a string, got an array");
    CHECK_400(GYRE_OPENAI_CHAT, "{\"model\":\"\",\"messages\":[]}", "missing_required_parameter", "model",
              "'model' must not be empty");
}

TEST(openai_messages_are_checked_one_by_one)
{
    CHECK_400(GYRE_OPENAI_CHAT, "{\"model\":\"m\"}", "missing_required_parameter", "messages",
              "missing required parameter 'messages'");
    CHECK_400(GYRE_OPENAI_CHAT, "{\"model\":\"m\",\"messages\":{}}", "invalid_type", "messages",
              "'messages' must be an array, got an object");
    CHECK_400(GYRE_OPENAI_CHAT, "{\"model\":\"m\",\"messages\":[]}", "empty_array", "messages",
              "'messages' must contain at least one message");
    CHECK_400(GYRE_OPENAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\"},7]}", "invalid_type",
              "messages[1]", "'messages[1]' must be an object, got a number");
    CHECK_400(GYRE_OPENAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":1}]}", "invalid_type", "messages[0].role",
              "'messages[0].role' must be a string, got a number");
    CHECK_400(GYRE_OPENAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":5}]}", "invalid_type",
              "messages[0].content",
              "'messages[0].content' must be a string, an array of content parts or null, got a number");
}

TEST(openai_optional_fields_of_the_wrong_type_are_named)
{
    CHECK_400(GYRE_OPENAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}],\"max_tokens\":1.5}",
              "invalid_type", "max_tokens", "'max_tokens' must be an integer, got a number");
    CHECK_400(GYRE_OPENAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}],\"stream\":\"yes\"}",
              "invalid_type", "stream", "'stream' must be a boolean, got a string");
    CHECK_400(GYRE_OPENAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}],\"tools\":{}}", "invalid_type",
              "tools", "'tools' must be an array, got an object");
    /* null means "not given", as OpenAI treats it */
    gyre_openai_request_t r;
    gyre_api_error_t e;
    CHECK_INT(parse(GYRE_OPENAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}],\"temperature\":null}", &r, &e),
              0);
    gyre_openai_request_dispose(&r);
}

TEST(openai_embeddings_need_input)
{
    CHECK_400(GYRE_OPENAI_EMBEDDINGS, "{\"model\":\"e\"}", "missing_required_parameter", "input",
              "missing required parameter 'input'");
    CHECK_400(GYRE_OPENAI_EMBEDDINGS, "{\"model\":\"e\",\"input\":3}", "invalid_type", "input",
              "'input' must be a string or an array, got a number");
    gyre_openai_request_t r;
    gyre_api_error_t e;
    CHECK_INT(parse(GYRE_OPENAI_EMBEDDINGS, "{\"model\":\"e\",\"input\":[\"a\"]}", &r, &e), 0);
    CHECK_STR(r.model, "e");
    gyre_openai_request_dispose(&r);
}

TEST(openai_other_endpoints_accept_bodies_that_are_not_json)
{
    gyre_openai_request_t r;
    gyre_api_error_t e;
    CHECK_INT(parse(GYRE_OPENAI_OTHER, "--boundary\r\nContent-Disposition: form-data", &r, &e), 0);
    CHECK(r.json == NULL);
    CHECK(r.model == NULL);
    CHECK_INT(parse(GYRE_OPENAI_OTHER, "{\"input\":\"x\"}", &r, &e), 0);
    CHECK(r.model == NULL);
    gyre_openai_request_dispose(&r);
    CHECK_INT(parse(GYRE_OPENAI_OTHER, "{\"model\":\"chat\",\"input\":\"x\"}", &r, &e), 0);
    CHECK_STR(r.model, "chat");
    gyre_openai_request_dispose(&r);
}

TEST(openai_rewrite_splices_the_model_and_keeps_every_other_byte)
{
    const char body[] = "{\"messages\":[{\"role\":\"user\",\"content\":\"model: x\"}],  \"model\":\"chat\" ,\"top_p\":1.50}";
    gyre_openai_request_t r;
    gyre_api_error_t e;
    CHECK_INT(parse(GYRE_OPENAI_CHAT, body, &r, &e), 0);
    gyre_buf_t out;
    gyre_buf_init(&out, 4096);
    CHECK_INT(gyre_openai_rewrite_model(&r, LIT(body), LIT("gpt-\"4o\""), &out), 0);
    CHECK_STR(out.base, "{\"messages\":[{\"role\":\"user\",\"content\":\"model: x\"}],  \"model\":\"gpt-\\\"4o\\\"\" ,\"top_p\":1.50}");
    gyre_buf_dispose(&out);
    gyre_openai_request_dispose(&r);
}

TEST(openai_rewrite_of_an_escaped_key_falls_back_to_cjson)
{
    const char body[] = "{\"mod\\u0065l\":\"chat\",\"messages\":[{\"role\":\"user\"}]}";
    gyre_openai_request_t r;
    gyre_api_error_t e;
    CHECK_INT(parse(GYRE_OPENAI_CHAT, body, &r, &e), 0);
    CHECK_STR(r.model, "chat");
    CHECK_INT(r.model_end, 0);
    gyre_buf_t out;
    gyre_buf_init(&out, 4096);
    CHECK_INT(gyre_openai_rewrite_model(&r, LIT(body), LIT("gpt-4o"), &out), 0);
    CHECK_STR(out.base, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\"}]}");
    gyre_buf_dispose(&out);
    gyre_openai_request_dispose(&r);
}

TEST(openai_error_json_has_the_sdk_shape)
{
    gyre_api_error_t e;
    gyre_api_error_set(&e, 404, "invalid_request_error", "model_not_found", "model", "no \"%s\"", "x");
    gyre_buf_t b;
    gyre_buf_init(&b, 4096);
    gyre_api_error_to_json(&e, &b);
    CHECK_STR(b.base, "{\"error\":{\"message\":\"no \\\"x\\\"\",\"type\":\"invalid_request_error\",\"param\":\"model\","
                      "\"code\":\"model_not_found\"}}");
    gyre_buf_reset(&b);
    gyre_api_error_set(&e, 502, "upstream_error", NULL, NULL, "down");
    gyre_api_error_to_json(&e, &b);
    CHECK_STR(b.base, "{\"error\":{\"message\":\"down\",\"type\":\"upstream_error\",\"param\":null,\"code\":null}}");
    gyre_buf_dispose(&b);
}
