/*
 * src/dialect/openai.c: what a client request must look like before gyre
 * forwards it (each error's status, code, param and exact message), the
 * model rewrite, and the error body OpenAI SDKs read.
 */
#include "dialect/openai.h"

#include <string.h>

#include "test.h"

#define LIT(s) s, sizeof(s) - 1

/* A chat body that passes every check, with room for one more member. */
#define CHAT_WITH(extra) "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]" extra "}"

static int parse(gyre_openai_endpoint_t ep, const char *body, gyre_openai_request_t *r, gyre_api_error_t *e)
{
    return gyre_openai_parse_request(ep, body, strlen(body), r, e);
}

/* Asserts a 400 invalid_request_error with the given code, param ("" for none) and message. */
#define CHECK_400(ep, body, code_, param_, message_)                                                                   \
    do {                                                                                                               \
        gyre_openai_request_t r_;                                                                                      \
        gyre_api_error_t e_;                                                                                           \
        CHECK_INT(parse((ep), (body), &r_, &e_), -1);                                                                  \
        CHECK(r_.json == NULL);                                                                                        \
        CHECK_INT(e_.status, 400);                                                                                     \
        CHECK_STR(e_.type, "invalid_request_error");                                                                   \
        CHECK_STR(e_.code, (code_));                                                                                   \
        CHECK_STR(e_.param, (param_));                                                                                 \
        CHECK_STR(e_.message, (message_));                                                                             \
    } while (0)

/* --- requests that pass --------------------------------------------------- */

TEST(openai_chat_request_reads_the_model_and_the_span_of_its_value)
{
    const char body[] = "{ \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"model\" : \"chat\" }";
    gyre_openai_request_t r;
    gyre_api_error_t e;
    CHECK_INT(parse(GYRE_OPENAI_CHAT, body, &r, &e), 0);
    CHECK(r.json != NULL);
    CHECK_STR(r.model, "chat");
    CHECK_INT(r.model_start, 61);
    CHECK_INT(r.model_end, 67);
    CHECK_MEM(body + r.model_start, r.model_end - r.model_start, "\"chat\"");
    CHECK_INT(r.stream, 0);
    CHECK_INT(r.include_usage, 0);
    gyre_openai_request_dispose(&r);
    CHECK(r.json == NULL);
    CHECK(r.model == NULL);
}

TEST(openai_chat_stream_request_reads_stream_and_include_usage)
{
    gyre_openai_request_t r;
    gyre_api_error_t e;
    CHECK_INT(
        parse(GYRE_OPENAI_CHAT, CHAT_WITH(",\"stream\":true,\"stream_options\":{\"include_usage\":true}"), &r, &e), 0);
    CHECK_INT(r.stream, 1);
    CHECK_INT(r.include_usage, 1);
    gyre_openai_request_dispose(&r);
}

TEST(openai_chat_stream_without_stream_options_does_not_include_usage)
{
    gyre_openai_request_t r;
    gyre_api_error_t e;
    CHECK_INT(parse(GYRE_OPENAI_CHAT, CHAT_WITH(",\"stream\":true,\"stream_options\":{}"), &r, &e), 0);
    CHECK_INT(r.stream, 1);
    CHECK_INT(r.include_usage, 0);
    gyre_openai_request_dispose(&r);
}

TEST(openai_optional_fields_set_to_null_count_as_not_given)
{
    gyre_openai_request_t r;
    gyre_api_error_t e;
    CHECK_INT(
        parse(GYRE_OPENAI_CHAT, CHAT_WITH(",\"temperature\":null,\"stream\":null,\"stream_options\":null"), &r, &e), 0);
    CHECK_INT(r.stream, 0);
    CHECK_INT(r.include_usage, 0);
    gyre_openai_request_dispose(&r);
}

TEST(openai_chat_accepts_every_optional_field_of_the_right_type)
{
    gyre_openai_request_t r;
    gyre_api_error_t e;
    CHECK_INT(parse(GYRE_OPENAI_CHAT,
                    CHAT_WITH(",\"temperature\":0.5,\"top_p\":1,\"n\":2,\"max_tokens\":10,\"max_completion_tokens\":-1,"
                              "\"presence_penalty\":0,\"frequency_penalty\":-0.5,\"seed\":42,\"logprobs\":false,"
                              "\"top_logprobs\":3,\"parallel_tool_calls\":true,\"user\":\"u\",\"stop\":[\"x\"],"
                              "\"tools\":[],\"tool_choice\":\"auto\",\"response_format\":{},\"metadata\":{},"
                              "\"logit_bias\":{},\"unknown_field\":[1]"),
                    &r, &e),
              0);
    gyre_openai_request_dispose(&r);
}

TEST(openai_embeddings_request_reads_the_model_and_needs_no_messages)
{
    const char body[] =
        "{\"input\":[\"a\",\"b\"],\"model\":\"embed\",\"dimensions\":256,\"encoding_format\":\"float\"}";
    gyre_openai_request_t r;
    gyre_api_error_t e;
    CHECK_INT(parse(GYRE_OPENAI_EMBEDDINGS, body, &r, &e), 0);
    CHECK_STR(r.model, "embed");
    CHECK_MEM(body + r.model_start, r.model_end - r.model_start, "\"embed\"");
    CHECK_INT(r.stream, 0);
    gyre_openai_request_dispose(&r);
}

TEST(openai_other_endpoints_pass_bodies_that_are_not_json)
{
    gyre_openai_request_t r;
    gyre_api_error_t e;
    CHECK_INT(parse(GYRE_OPENAI_OTHER, "--boundary\r\nContent-Disposition: form-data", &r, &e), 0);
    CHECK(r.json == NULL);
    CHECK(r.model == NULL);
    CHECK_INT(parse(GYRE_OPENAI_OTHER, "", &r, &e), 0);
    CHECK(r.json == NULL);
    CHECK_INT(parse(GYRE_OPENAI_OTHER, "[1,2]", &r, &e), 0);
    CHECK(r.json == NULL);
}

TEST(openai_other_endpoints_read_a_model_when_there_is_one)
{
    gyre_openai_request_t r;
    gyre_api_error_t e;
    CHECK_INT(parse(GYRE_OPENAI_OTHER, "{\"input\":\"x\"}", &r, &e), 0);
    CHECK(r.json != NULL);
    CHECK(r.model == NULL);
    gyre_openai_request_dispose(&r);
    CHECK_INT(parse(GYRE_OPENAI_OTHER, "{\"model\":\"chat\",\"prompt\":5}", &r, &e), 0);
    CHECK_STR(r.model, "chat");
    CHECK_INT(r.model_start, 9);
    CHECK_INT(r.model_end, 15);
    gyre_openai_request_dispose(&r);
}

TEST(openai_other_endpoints_still_refuse_a_model_that_is_not_a_string)
{
    CHECK_400(GYRE_OPENAI_OTHER, "{\"model\":5}", "invalid_type", "model", "'model' must be a string, got a number");
}

/* --- the body as a whole ---------------------------------------------------- */

TEST(openai_malformed_json_says_where_parsing_stopped)
{
    CHECK_400(GYRE_OPENAI_CHAT, "{\"model\": \"chat\",\n \"messages\": [,]}", "invalid_json", "",
              "the request body is not valid JSON: parsing stopped at line 2, column 15 (byte 32)");
}

TEST(openai_truncated_json_stops_at_the_end_of_the_body)
{
    CHECK_400(GYRE_OPENAI_EMBEDDINGS, "{\"model\":\"m\"", "invalid_json", "",
              "the request body is not valid JSON: parsing stopped at line 1, column 12 (byte 11)");
}

TEST(openai_data_after_the_json_value_is_an_error)
{
    CHECK_400(GYRE_OPENAI_CHAT, "{\"model\":\"chat\",\"messages\":[]} x", "invalid_json", "",
              "the request body is not valid JSON: unexpected data after the value at line 1, column 32 (byte 31)");
}

TEST(openai_whitespace_after_the_json_value_is_allowed)
{
    gyre_openai_request_t r;
    gyre_api_error_t e;
    CHECK_INT(parse(GYRE_OPENAI_CHAT, CHAT_WITH("") " \r\n\t", &r, &e), 0);
    gyre_openai_request_dispose(&r);
}

TEST(openai_empty_body_is_an_error)
{
    CHECK_400(GYRE_OPENAI_CHAT, "", "invalid_json", "", "the request body is empty; expected a JSON object");
}

TEST(openai_a_body_that_is_not_an_object_is_an_error)
{
    CHECK_400(GYRE_OPENAI_CHAT, "[1,2]", "invalid_json", "", "the request body must be a JSON object, got an array");
    CHECK_400(GYRE_OPENAI_EMBEDDINGS, "\"text\"", "invalid_json", "",
              "the request body must be a JSON object, got a string");
    CHECK_400(GYRE_OPENAI_CHAT, "null", "invalid_json", "", "the request body must be a JSON object, got null");
}

/* --- model ---------------------------------------------------------------- */

TEST(openai_missing_model_is_a_missing_required_parameter)
{
    CHECK_400(GYRE_OPENAI_CHAT, "{\"messages\":[{\"role\":\"user\"}]}", "missing_required_parameter", "model",
              "missing required parameter 'model'");
}

TEST(openai_null_model_counts_as_missing)
{
    CHECK_400(GYRE_OPENAI_EMBEDDINGS, "{\"model\":null,\"input\":\"x\"}", "missing_required_parameter", "model",
              "missing required parameter 'model'");
}

TEST(openai_model_of_the_wrong_type_names_the_type)
{
    CHECK_400(GYRE_OPENAI_CHAT, "{\"model\":[\"a\"],\"messages\":[]}", "invalid_type", "model",
              "'model' must be a string, got an array");
    CHECK_400(GYRE_OPENAI_CHAT, "{\"model\":true,\"messages\":[]}", "invalid_type", "model",
              "'model' must be a string, got a boolean");
}

TEST(openai_a_second_model_member_is_refused)
{
    /* Most providers keep the last of duplicate members; gyre would route on
     * the first and forward a model it never resolved. */
    CHECK_400(GYRE_OPENAI_CHAT, CHAT_WITH(",\"model\":\"gpt-4-expensive\""), "duplicate_parameter", "model",
              "'model' must appear only once in the request body");
}

TEST(openai_a_second_model_spelled_with_escapes_is_refused)
{
    CHECK_400(GYRE_OPENAI_EMBEDDINGS, "{\"mod\\u0065l\":\"embed\",\"model\":\"other\",\"input\":\"x\"}",
              "duplicate_parameter", "model", "'model' must appear only once in the request body");
    CHECK_400(GYRE_OPENAI_OTHER, "{\"model\":null,\"model\":\"other\"}", "duplicate_parameter", "model",
              "'model' must appear only once in the request body");
}

TEST(openai_empty_model_is_refused)
{
    CHECK_400(GYRE_OPENAI_CHAT, "{\"model\":\"\",\"messages\":[]}", "missing_required_parameter", "model",
              "'model' must not be empty");
}

/* --- messages --------------------------------------------------------------- */

TEST(openai_chat_without_messages_is_a_missing_required_parameter)
{
    CHECK_400(GYRE_OPENAI_CHAT, "{\"model\":\"m\"}", "missing_required_parameter", "messages",
              "missing required parameter 'messages'");
}

TEST(openai_messages_that_are_not_an_array_are_refused)
{
    CHECK_400(GYRE_OPENAI_CHAT, "{\"model\":\"m\",\"messages\":{}}", "invalid_type", "messages",
              "'messages' must be an array, got an object");
}

TEST(openai_an_empty_messages_array_is_refused)
{
    CHECK_400(GYRE_OPENAI_CHAT, "{\"model\":\"m\",\"messages\":[]}", "empty_array", "messages",
              "'messages' must contain at least one message");
}

TEST(openai_a_message_that_is_not_an_object_is_named_by_index)
{
    CHECK_400(GYRE_OPENAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\"},7]}", "invalid_type", "messages[1]",
              "'messages[1]' must be an object, got a number");
}

TEST(openai_a_message_without_a_role_is_named_by_index)
{
    CHECK_400(GYRE_OPENAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"system\"},{\"content\":\"hi\"}]}",
              "missing_required_parameter", "messages[1].role", "missing required parameter 'messages[1].role'");
}

TEST(openai_a_role_that_is_not_a_string_is_refused)
{
    CHECK_400(GYRE_OPENAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":1}]}", "invalid_type", "messages[0].role",
              "'messages[0].role' must be a string, got a number");
}

TEST(openai_content_must_be_a_string_parts_or_null)
{
    CHECK_400(GYRE_OPENAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":5}]}", "invalid_type",
              "messages[0].content",
              "'messages[0].content' must be a string, an array of content parts or null, got a number");
    gyre_openai_request_t r;
    gyre_api_error_t e;
    CHECK_INT(parse(GYRE_OPENAI_CHAT,
                    "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"content\":null},"
                    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}]}",
                    &r, &e),
              0);
    gyre_openai_request_dispose(&r);
}

/* --- optional fields -------------------------------------------------------- */

TEST(openai_temperature_as_a_string_names_the_param)
{
    CHECK_400(GYRE_OPENAI_CHAT, CHAT_WITH(",\"temperature\":\"hot\""), "invalid_type", "temperature",
              "'temperature' must be a number, got a string");
}

TEST(openai_integer_fields_refuse_fractions)
{
    CHECK_400(GYRE_OPENAI_CHAT, CHAT_WITH(",\"max_tokens\":1.5"), "invalid_type", "max_tokens",
              "'max_tokens' must be an integer, got a number");
}

TEST(openai_integer_fields_refuse_numbers_beyond_64_bits)
{
    CHECK_400(GYRE_OPENAI_CHAT, CHAT_WITH(",\"n\":1e300"), "invalid_type", "n", "'n' must be an integer, got a number");
    CHECK_400(GYRE_OPENAI_CHAT, CHAT_WITH(",\"seed\":-1e19"), "invalid_type", "seed",
              "'seed' must be an integer, got a number");
}

TEST(openai_stream_must_be_a_boolean)
{
    CHECK_400(GYRE_OPENAI_CHAT, CHAT_WITH(",\"stream\":\"yes\""), "invalid_type", "stream",
              "'stream' must be a boolean, got a string");
}

TEST(openai_tools_must_be_an_array)
{
    CHECK_400(GYRE_OPENAI_CHAT, CHAT_WITH(",\"tools\":{}"), "invalid_type", "tools",
              "'tools' must be an array, got an object");
}

TEST(openai_stop_must_be_a_string_or_an_array)
{
    CHECK_400(GYRE_OPENAI_CHAT, CHAT_WITH(",\"stop\":1"), "invalid_type", "stop",
              "'stop' must be a string or an array, got a number");
}

TEST(openai_include_usage_must_be_a_boolean)
{
    CHECK_400(GYRE_OPENAI_CHAT, CHAT_WITH(",\"stream\":true,\"stream_options\":{\"include_usage\":1}"), "invalid_type",
              "stream_options.include_usage", "'stream_options.include_usage' must be a boolean, got a number");
}

/* --- embeddings ------------------------------------------------------------- */

TEST(openai_embeddings_without_input_is_a_missing_required_parameter)
{
    CHECK_400(GYRE_OPENAI_EMBEDDINGS, "{\"model\":\"e\"}", "missing_required_parameter", "input",
              "missing required parameter 'input'");
}

TEST(openai_embeddings_input_must_be_a_string_or_an_array)
{
    CHECK_400(GYRE_OPENAI_EMBEDDINGS, "{\"model\":\"e\",\"input\":3}", "invalid_type", "input",
              "'input' must be a string or an array, got a number");
}

TEST(openai_embeddings_dimensions_and_encoding_format_are_type_checked)
{
    CHECK_400(GYRE_OPENAI_EMBEDDINGS, "{\"model\":\"e\",\"input\":\"x\",\"dimensions\":1.5}", "invalid_type",
              "dimensions", "'dimensions' must be an integer, got a number");
    CHECK_400(GYRE_OPENAI_EMBEDDINGS, "{\"model\":\"e\",\"input\":\"x\",\"encoding_format\":0}", "invalid_type",
              "encoding_format", "'encoding_format' must be a string, got a number");
}

/* --- the model rewrite ------------------------------------------------------ */

TEST(openai_rewrite_splices_the_model_and_keeps_every_other_byte)
{
    const char body[] =
        "{\"messages\":[{\"role\":\"user\",\"content\":\"model: x\"}],  \"model\":\"chat\" ,\"top_p\":1.50}";
    gyre_openai_request_t r;
    gyre_api_error_t e;
    CHECK_INT(parse(GYRE_OPENAI_CHAT, body, &r, &e), 0);
    gyre_buf_t out;
    gyre_buf_init(&out, 4096);
    CHECK_INT(gyre_openai_rewrite_model(&r, LIT(body), LIT("gpt-4o"), &out), 0);
    CHECK_STR(out.base,
              "{\"messages\":[{\"role\":\"user\",\"content\":\"model: x\"}],  \"model\":\"gpt-4o\" ,\"top_p\":1.50}");
    gyre_buf_dispose(&out);
    gyre_openai_request_dispose(&r);
}

TEST(openai_rewrite_escapes_the_new_model_as_a_json_string)
{
    const char body[] = "{\"model\":\"chat\",\"input\":\"x\"}";
    gyre_openai_request_t r;
    gyre_api_error_t e;
    CHECK_INT(parse(GYRE_OPENAI_EMBEDDINGS, body, &r, &e), 0);
    gyre_buf_t out;
    gyre_buf_init(&out, 4096);
    CHECK_INT(gyre_openai_rewrite_model(&r, LIT(body), LIT("a\"b\\c"), &out), 0);
    CHECK_STR(out.base, "{\"model\":\"a\\\"b\\\\c\",\"input\":\"x\"}");
    gyre_buf_dispose(&out);
    gyre_openai_request_dispose(&r);
}

TEST(openai_rewrite_of_an_escaped_model_value_still_splices)
{
    const char body[] = "{\"model\":\"ch\\u0061t\",\"input\":\"x\"}";
    gyre_openai_request_t r;
    gyre_api_error_t e;
    CHECK_INT(parse(GYRE_OPENAI_EMBEDDINGS, body, &r, &e), 0);
    CHECK_STR(r.model, "chat");
    gyre_buf_t out;
    gyre_buf_init(&out, 4096);
    CHECK_INT(gyre_openai_rewrite_model(&r, LIT(body), LIT("e-3"), &out), 0);
    CHECK_STR(out.base, "{\"model\":\"e-3\",\"input\":\"x\"}");
    gyre_buf_dispose(&out);
    gyre_openai_request_dispose(&r);
}

TEST(openai_rewrite_splices_the_whole_string_after_control_byte_whitespace)
{
    const char body[] = "{\"model\":\x01\"primary/a,b\",\"input\":\"x\"}";
    gyre_openai_request_t r;
    gyre_api_error_t e;
    CHECK_INT(parse(GYRE_OPENAI_EMBEDDINGS, body, &r, &e), 0);
    CHECK_STR(r.model, "primary/a,b");
    gyre_buf_t out;
    gyre_buf_init(&out, 4096);
    CHECK_INT(gyre_openai_rewrite_model(&r, LIT(body), LIT("a"), &out), 0);
    CHECK_STR(out.base, "{\"model\":\x01\"a\",\"input\":\"x\"}");
    gyre_buf_dispose(&out);
    gyre_openai_request_dispose(&r);
}

TEST(openai_rewrite_of_an_escaped_key_falls_back_to_reserialisation)
{
    const char body[] = "{\"mod\\u0065l\" : \"chat\", \"messages\":[{\"role\":\"user\"}], \"top_p\":1}";
    gyre_openai_request_t r;
    gyre_api_error_t e;
    CHECK_INT(parse(GYRE_OPENAI_CHAT, body, &r, &e), 0);
    CHECK_STR(r.model, "chat");
    CHECK_INT(r.model_start, 0);
    CHECK_INT(r.model_end, 0);
    gyre_buf_t out;
    gyre_buf_init(&out, 4096);
    CHECK_INT(gyre_openai_rewrite_model(&r, LIT(body), LIT("gpt-4o"), &out), 0);
    CHECK_STR(out.base, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\"}],\"top_p\":1}");
    gyre_buf_dispose(&out);
    gyre_openai_request_dispose(&r);
}

TEST(openai_rewrite_past_the_buffer_bound_fails)
{
    const char body[] = "{\"model\":\"chat\",\"input\":\"x\"}";
    gyre_openai_request_t r;
    gyre_api_error_t e;
    CHECK_INT(parse(GYRE_OPENAI_EMBEDDINGS, body, &r, &e), 0);
    gyre_buf_t out;
    gyre_buf_init(&out, 16);
    CHECK(gyre_openai_rewrite_model(&r, LIT(body), LIT("a-much-longer-model-name"), &out) != 0);
    gyre_buf_dispose(&out);
    gyre_openai_request_dispose(&r);
}

/* --- the error body ----------------------------------------------------------- */

TEST(openai_error_json_has_the_sdk_shape)
{
    gyre_api_error_t e;
    gyre_api_error_set(&e, 404, "invalid_request_error", "model_not_found", "model", "no route or provider '%s'", "x");
    CHECK_INT(e.status, 404);
    gyre_buf_t b;
    gyre_buf_init(&b, 4096);
    CHECK_INT(gyre_api_error_to_json(&e, &b), 0);
    CHECK_STR(b.base, "{\"error\":{\"message\":\"no route or provider 'x'\",\"type\":\"invalid_request_error\","
                      "\"param\":\"model\",\"code\":\"model_not_found\"}}");
    gyre_buf_dispose(&b);
}

TEST(openai_error_json_writes_null_for_no_param_and_no_code)
{
    gyre_api_error_t e;
    gyre_api_error_set(&e, 502, "upstream_error", NULL, NULL, "down");
    gyre_buf_t b;
    gyre_buf_init(&b, 4096);
    CHECK_INT(gyre_api_error_to_json(&e, &b), 0);
    CHECK_STR(b.base, "{\"error\":{\"message\":\"down\",\"type\":\"upstream_error\",\"param\":null,\"code\":null}}");
    gyre_buf_dispose(&b);
}

TEST(openai_error_json_escapes_the_message)
{
    gyre_api_error_t e;
    gyre_api_error_set(&e, 400, "invalid_request_error", NULL, NULL, "bad \"%s\"\n\\", "x");
    gyre_buf_t b;
    gyre_buf_init(&b, 4096);
    CHECK_INT(gyre_api_error_to_json(&e, &b), 0);
    CHECK_STR(b.base, "{\"error\":{\"message\":\"bad \\\"x\\\"\\n\\\\\",\"type\":\"invalid_request_error\","
                      "\"param\":null,\"code\":null}}");
    gyre_buf_dispose(&b);
}
