/* The fine-tuning format validator (src/loop/ftcheck.h): each rule, a line that breaks it and the exact error. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loop/ftcheck.h"
#include "test.h"

/* The report for one line checked alone (as line 1), "" when it is valid. */
static char *check_one(gyre_ft_format_t format, const char *line)
{
    gyre_ftcheck_t c;
    gyre_ftcheck_init(&c, format, 0, 1);
    gyre_ftcheck_line(&c, line, strlen(line));
    char *s = strdup(c.report.base != NULL ? c.report.base : "");
    gyre_ftcheck_dispose(&c);
    return s;
}

#define EXPECT(format, line, want)                                                                                   \
    do {                                                                                                             \
        char *got_ = check_one((format), (line));                                                                    \
        CHECK_STR(got_, (want));                                                                                     \
        free(got_);                                                                                                  \
    } while (0)

#define U "{\"role\":\"user\",\"content\":\"hi\"}"
#define A "{\"role\":\"assistant\",\"content\":\"hello\"}"

TEST(ftcheck_valid_chat_example_has_no_error)
{
    EXPECT(GYRE_FT_OPENAI, "{\"messages\":[{\"role\":\"system\",\"content\":\"s\"}," U "," A "]}", "");
}

TEST(ftcheck_line_must_be_json)
{
    EXPECT(GYRE_FT_OPENAI, "{\"messages\":[", "1: not valid JSON (at byte 13)\n");
}

TEST(ftcheck_line_must_be_an_object)
{
    EXPECT(GYRE_FT_OPENAI, "[1]", "1: must be a JSON object, not an array\n");
}

TEST(ftcheck_empty_line_is_an_error)
{
    EXPECT(GYRE_FT_OPENAI, "  ", "1: the line is empty; each line must be one JSON object\n");
}

TEST(ftcheck_messages_are_required)
{
    EXPECT(GYRE_FT_OPENAI, "{}", "1: messages: is missing; an example needs a messages array\n");
}

TEST(ftcheck_messages_must_be_a_non_empty_array)
{
    EXPECT(GYRE_FT_OPENAI, "{\"messages\":[]}", "1: messages: must be a non-empty array of messages, not an empty array\n");
    EXPECT(GYRE_FT_OPENAI, "{\"messages\":\"hi\"}", "1: messages: must be a non-empty array of messages, not a string\n");
}

TEST(ftcheck_unknown_top_level_field_is_an_error)
{
    EXPECT(GYRE_FT_OPENAI, "{\"messages\":[" U "," A "],\"prompt\":\"x\"}",
           "1: prompt: is not a field of a chat example (messages, tools, parallel_tool_calls)\n");
}

TEST(ftcheck_role_must_be_known)
{
    EXPECT(GYRE_FT_OPENAI, "{\"messages\":[{\"role\":\"bot\",\"content\":\"x\"}," A "]}",
           "1: messages[0].role: 'bot' is not a role of the chat format (system, user, assistant, tool)\n");
    EXPECT(GYRE_FT_OPENAI, "{\"messages\":[{\"content\":\"x\"}," A "]}",
           "1: messages[0].role: is missing; a message needs a role (system, user, assistant, tool)\n");
}

TEST(ftcheck_legacy_function_role_is_refused)
{
    EXPECT(GYRE_FT_OPENAI, "{\"messages\":[" U ",{\"role\":\"function\",\"name\":\"f\",\"content\":\"1\"}," A "]}",
           "1: messages[1].role: the legacy 'function' role is not taken; write the call as tool_calls and the "
           "result as a 'tool' message\n");
}

TEST(ftcheck_unknown_message_field_is_an_error)
{
    EXPECT(GYRE_FT_OPENAI, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"mood\":1}," A "]}",
           "1: messages[0].mood: is not a field of a message (role, content, name, tool_calls, tool_call_id, "
           "weight)\n");
}

TEST(ftcheck_user_message_needs_content)
{
    EXPECT(GYRE_FT_OPENAI, "{\"messages\":[{\"role\":\"user\"}," A "]}",
           "1: messages[0].content: a user message needs content\n");
    EXPECT(GYRE_FT_OPENAI, "{\"messages\":[{\"role\":\"user\",\"content\":5}," A "]}",
           "1: messages[0].content: must be a string or an array of content parts, not a number\n");
}

TEST(ftcheck_content_parts_are_checked)
{
    EXPECT(GYRE_FT_OPENAI,
           "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"image_url\","
           "\"image_url\":{\"url\":\"https://x/y.png\"}}]}," A "]}",
           "");
    EXPECT(GYRE_FT_OPENAI, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"audio\"}]}," A "]}",
           "1: messages[0].content[0]: content part type 'audio' is not one of text, image_url\n");
}

TEST(ftcheck_example_needs_an_assistant_message)
{
    EXPECT(GYRE_FT_OPENAI, "{\"messages\":[" U "]}",
           "1: messages: no assistant message to learn from (every example needs one, with weight 1 or none)\n");
}

TEST(ftcheck_assistant_needs_content_or_tool_calls)
{
    EXPECT(GYRE_FT_OPENAI, "{\"messages\":[" U ",{\"role\":\"assistant\"}]}",
           "1: messages[1].content: an assistant message needs content or tool_calls\n");
}

TEST(ftcheck_weight_is_0_or_1_on_assistant_messages_only)
{
    EXPECT(GYRE_FT_OPENAI, "{\"messages\":[" U ",{\"role\":\"assistant\",\"content\":\"a\",\"weight\":0.5}]}",
           "1: messages[1].weight: must be 0 or 1\n");
    EXPECT(GYRE_FT_OPENAI, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"weight\":1}," A "]}",
           "1: messages[0].weight: only assistant messages have a weight\n");
    EXPECT(GYRE_FT_OPENAI, "{\"messages\":[" U ",{\"role\":\"assistant\",\"content\":\"a\",\"weight\":0}]}",
           "1: messages: no assistant message to learn from (every example needs one, with weight 1 or none)\n");
}

#define CALL(id, args)                                                                                               \
    "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"" id "\",\"type\":\"function\",\"function\":{\"name\":\"f\","  \
    "\"arguments\":" args "}}]}"

TEST(ftcheck_tool_call_and_its_answer_are_valid)
{
    EXPECT(GYRE_FT_OPENAI,
           "{\"messages\":[" U "," CALL("c1", "\"{\\\"a\\\":1}\"") ",{\"role\":\"tool\",\"tool_call_id\":\"c1\","
           "\"content\":\"2\"}," A "],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":"
           "{\"type\":\"object\"}}}],\"parallel_tool_calls\":false}",
           "");
}

TEST(ftcheck_tool_call_arguments_must_be_a_json_string)
{
    EXPECT(GYRE_FT_OPENAI, "{\"messages\":[" U "," CALL("c1", "{\"a\":1}") "," A "]}",
           "1: messages[1].tool_calls[0].function.arguments: must be a string holding JSON, not an object\n");
    EXPECT(GYRE_FT_OPENAI, "{\"messages\":[" U "," CALL("c1", "\"{a\"") "," A "]}",
           "1: messages[1].tool_calls[0].function.arguments: is not valid JSON\n");
}

TEST(ftcheck_tool_call_needs_id_type_and_name)
{
    EXPECT(GYRE_FT_OPENAI,
           "{\"messages\":[" U ",{\"role\":\"assistant\",\"tool_calls\":[{\"type\":\"code\",\"function\":"
           "{\"arguments\":\"{}\"}}]}]}",
           "1: messages[1].tool_calls[0].id: a tool call needs an id, a non-empty string (tool messages answer it by "
           "tool_call_id)\n"
           "1: messages[1].tool_calls[0].type: must be \"function\"\n"
           "1: messages[1].tool_calls[0].function.name: must be a non-empty string\n");
}

TEST(ftcheck_tool_message_must_answer_an_earlier_call)
{
    EXPECT(GYRE_FT_OPENAI, "{\"messages\":[" U ",{\"role\":\"tool\",\"tool_call_id\":\"c9\",\"content\":\"1\"}," A "]}",
           "1: messages[1].tool_call_id: 'c9' answers no tool call made earlier in this example\n");
    EXPECT(GYRE_FT_OPENAI, "{\"messages\":[" U ",{\"role\":\"tool\",\"content\":\"1\"}," A "]}",
           "1: messages[1].tool_call_id: a tool message needs the tool_call_id of the call it answers\n");
    EXPECT(GYRE_FT_OPENAI,
           "{\"messages\":[" U "," CALL("c1", "\"{}\"") ",{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":"
           "\"1\"},{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"1\"}," A "]}",
           "1: messages[3].tool_call_id: 'c1' was answered already\n");
}

TEST(ftcheck_only_assistants_make_tool_calls)
{
    EXPECT(GYRE_FT_OPENAI, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"tool_calls\":[]}," A "]}",
           "1: messages[0].tool_calls: only assistant messages make tool calls\n");
}

TEST(ftcheck_tools_must_be_function_definitions)
{
    EXPECT(GYRE_FT_OPENAI, "{\"messages\":[" U "," A "],\"tools\":{}}",
           "1: tools: must be an array of function definitions, not an object\n");
    EXPECT(GYRE_FT_OPENAI,
           "{\"messages\":[" U "," A "],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get weather\","
           "\"parameters\":[]}}]}",
           "1: tools[0].function.name: must be 1 to 64 letters, digits, '_' or '-'\n"
           "1: tools[0].function.parameters: must be a JSON Schema object, not an array\n");
}

TEST(ftcheck_parallel_tool_calls_is_a_boolean)
{
    EXPECT(GYRE_FT_OPENAI, "{\"messages\":[" U "," A "],\"parallel_tool_calls\":1}",
           "1: parallel_tool_calls: must be a boolean, not a number\n");
}

TEST(ftcheck_token_estimate_is_bytes_over_4_plus_framing)
{
    CHECK_INT(gyre_ftcheck_estimate_tokens(0, 0), 3);
    CHECK_INT(gyre_ftcheck_estimate_tokens(7, 2), 2 + 6 + 3);
    CHECK_INT(gyre_ftcheck_estimate_tokens(8, 2), 2 + 6 + 3);
}

TEST(ftcheck_example_over_the_token_limit_is_an_error)
{
    gyre_ftcheck_t c;
    gyre_ftcheck_init(&c, GYRE_FT_OPENAI, 20, 1);
    /* "hi" and "hello": 7 bytes, 2 tokens; 2 messages: 6; the reply: 3.  11 tokens. */
    const char ok[] = "{\"messages\":[" U "," A "]}";
    CHECK_INT(gyre_ftcheck_line(&c, ok, strlen(ok)), 0);
    CHECK_INT(c.max_example_tokens, 11);
    const char big[] = "{\"messages\":[" U ",{\"role\":\"assistant\",\"content\":\"0123456789012345678901234567890123"
                       "4567890123\"}]}";
    CHECK_INT(gyre_ftcheck_line(&c, big, strlen(big)), 1);
    CHECK_STR(c.report.base, "2: about 21 tokens (bytes of text / 4, plus 3 per message), over the 20-token limit of "
                             "a training example\n");
    gyre_ftcheck_dispose(&c);
}

TEST(ftcheck_file_needs_ten_examples)
{
    char path[] = "/tmp/gyre-ftcheck-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char line[] = "{\"messages\":[" U "," A "]}\n";
    for (int i = 0; i < 9; i++)
        CHECK_INT(write(fd, line, strlen(line)), (long long)strlen(line));
    close(fd);
    gyre_ftcheck_t c;
    gyre_ftcheck_init(&c, GYRE_FT_OPENAI, 0, 0);
    char err[128];
    CHECK_INT(gyre_ftcheck_file(&c, path, err, sizeof(err)), 1);
    CHECK_STR(c.report.base, "9: file: 9 examples; a training file needs at least 10\n");
    gyre_ftcheck_dispose(&c);
    fd = open(path, O_WRONLY | O_APPEND);
    CHECK_INT(write(fd, line, strlen(line)), (long long)strlen(line));
    close(fd);
    gyre_ftcheck_init(&c, GYRE_FT_OPENAI, 0, 0);
    CHECK_INT(gyre_ftcheck_file(&c, path, err, sizeof(err)), 0);
    CHECK_INT(c.examples, 10);
    gyre_ftcheck_dispose(&c);
    unlink(path);
}

#define PIN "\"input\":{\"messages\":[" U "]}"
#define OUT(t) "[{\"role\":\"assistant\",\"content\":\"" t "\"}]"

TEST(ftcheck_valid_preference_example_has_no_error)
{
    EXPECT(GYRE_FT_PREFERENCE, "{" PIN ",\"preferred_output\":" OUT("good") ",\"non_preferred_output\":" OUT("bad") "}",
           "");
}

TEST(ftcheck_preference_needs_input_and_both_outputs)
{
    EXPECT(GYRE_FT_PREFERENCE, "{\"preferred_output\":" OUT("good") "}",
           "1: input: must be an object with messages, not missing\n"
           "1: non_preferred_output: is missing; a preference example needs both outputs\n");
}

TEST(ftcheck_preference_output_is_one_text_assistant_message)
{
    EXPECT(GYRE_FT_PREFERENCE,
           "{" PIN ",\"preferred_output\":[" A "," A "],\"non_preferred_output\":" OUT("bad") "}",
           "1: preferred_output: must be an array of exactly one assistant message\n");
    EXPECT(GYRE_FT_PREFERENCE,
           "{" PIN ",\"preferred_output\":[" U "],\"non_preferred_output\":" OUT("bad") "}",
           "1: preferred_output[0].role: an output must be an assistant message, not 'user'\n");
    EXPECT(GYRE_FT_PREFERENCE,
           "{" PIN ",\"preferred_output\":" OUT("good") ",\"non_preferred_output\":[" CALL("c1", "\"{}\"") "]}",
           "1: non_preferred_output[0].tool_calls: preference outputs are text only (OpenAI's DPO takes text inputs "
           "and outputs)\n");
}

TEST(ftcheck_preference_outputs_must_differ)
{
    EXPECT(GYRE_FT_PREFERENCE, "{" PIN ",\"preferred_output\":" OUT("same") ",\"non_preferred_output\":" OUT("same") "}",
           "1: non_preferred_output[0].content: is the same text as preferred_output: no preference to learn\n");
}

TEST(ftcheck_preference_unknown_field_is_an_error)
{
    EXPECT(GYRE_FT_PREFERENCE,
           "{" PIN ",\"preferred_output\":" OUT("a") ",\"non_preferred_output\":" OUT("b") ",\"messages\":[]}",
           "1: messages: is not a field of a preference example (input, preferred_output, non_preferred_output)\n");
}

TEST(ftcheck_report_stops_at_its_bound_and_the_count_goes_on)
{
    gyre_ftcheck_t c;
    gyre_ftcheck_init(&c, GYRE_FT_OPENAI, 0, 1);
    for (int i = 0; i < GYRE_FTCHECK_REPORT_MAX + 50; i++)
        gyre_ftcheck_line(&c, "[]", 2);
    CHECK_INT(c.errors, GYRE_FTCHECK_REPORT_MAX + 50);
    size_t lines = 0;
    for (const char *p = c.report.base; *p; p++)
        lines += *p == '\n';
    CHECK_INT(lines, GYRE_FTCHECK_REPORT_MAX);
    gyre_ftcheck_dispose(&c);
}

TEST(ftcheck_control_bytes_in_field_names_do_not_break_the_report)
{
    EXPECT(GYRE_FT_OPENAI, "{\"messages\":[" U "," A "],\"a\\nb\":1}",
           "1: a?b: is not a field of a chat example (messages, tools, parallel_tool_calls)\n");
}

TEST(ftcheck_tool_call_id_may_come_back_once_answered_but_not_while_waiting)
{
    EXPECT(GYRE_FT_OPENAI,
           "{\"messages\":[" U "," CALL("c1", "\"{}\"") ",{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":"
           "\"1\"}," CALL("c1", "\"{}\"") ",{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"2\"}," A "]}",
           "");
    EXPECT(GYRE_FT_OPENAI,
           "{\"messages\":[" U ",{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
           "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}},{\"id\":\"c1\",\"type\":\"function\",\"function\":"
           "{\"name\":\"g\",\"arguments\":\"{}\"}}]}," A "]}",
           "1: messages[1].tool_calls[1].id: 'c1' is the id of an earlier tool call not answered yet\n");
}
