/* The heuristic checks (src/loop/heuristic.c) and the schema validator under them (src/loop/jsonschema.c): each
 * kind against planted passing and failing inputs, with the exact result and reason. */
#include <cjson/cJSON.h>
#include <math.h>

#include "loop/heuristic.h"
#include "loop/jsonschema.h"
#include "test.h"

static gyre_check_result_t run_text(const gyre_scorer_conf_t *conf, const char *text)
{
    char err[256] = "";
    gyre_heuristic_t *h = gyre_heuristic_compile(conf, err, sizeof(err));
    gyre_check_result_t r = {.pass = -1};
    CHECK_STR(err, "");
    if (h == NULL)
        return r;
    gyre_check_input_t in = {.text = text, .len = text ? strlen(text) : 0, .latency_us = -1, .cost_usd = NAN};
    gyre_heuristic_run(h, &in, &r);
    gyre_heuristic_free(h);
    return r;
}

#define EXPECT(r, p, why)                                                                                            \
    do {                                                                                                             \
        gyre_check_result_t r_ = (r);                                                                                \
        CHECK_INT(r_.pass, (p));                                                                                     \
        CHECK_STR(r_.reason, (why));                                                                                 \
    } while (0)

TEST(heuristic_json_valid_passes_json_and_fails_anything_else)
{
    gyre_scorer_conf_t c = {.name = "j", .kind = GYRE_SCORER_JSON_VALID};
    EXPECT(run_text(&c, "{\"a\": [1, 2, {\"b\": null}]}"), 1, "");
    EXPECT(run_text(&c, " \"just a string\" "), 1, "");
    EXPECT(run_text(&c, "{\"a\": 1,}"), 0, "the answer is not valid JSON");
    EXPECT(run_text(&c, "Sure! {\"a\": 1}"), 0, "the answer is not valid JSON");
    EXPECT(run_text(&c, ""), 0, "the answer is not valid JSON");
}

TEST(heuristic_json_schema_says_where_the_answer_breaks_the_schema)
{
    gyre_scorer_conf_t c = {.name = "s",
                            .kind = GYRE_SCORER_JSON_SCHEMA,
                            .schema_json = "{\"type\":\"object\",\"required\":[\"city\",\"days\"],"
                                           "\"additionalProperties\":false,\"properties\":{"
                                           "\"city\":{\"type\":\"string\",\"minLength\":2},"
                                           "\"days\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":14},"
                                           "\"tags\":{\"type\":\"array\",\"maxItems\":2,\"items\":{\"enum\":[\"a\",\"b\"]}}}}"};
    EXPECT(run_text(&c, "{\"city\":\"Oslo\",\"days\":3,\"tags\":[\"a\"]}"), 1, "");
    EXPECT(run_text(&c, "{\"city\":\"Oslo\"}"), 0,
           "the answer does not match the schema: $: lacks the required property 'days'");
    EXPECT(run_text(&c, "{\"city\":\"Oslo\",\"days\":2.5}"), 0,
           "the answer does not match the schema: $.days: is a number, not an integer");
    EXPECT(run_text(&c, "{\"city\":\"Oslo\",\"days\":15}"), 0,
           "the answer does not match the schema: $.days: is 15; the maximum is 14");
    EXPECT(run_text(&c, "{\"city\":\"O\",\"days\":1}"), 0,
           "the answer does not match the schema: $.city: is 1 characters long; the minimum is 2");
    EXPECT(run_text(&c, "{\"city\":\"Oslo\",\"days\":1,\"tags\":[\"a\",\"c\"]}"), 0,
           "the answer does not match the schema: $.tags[1]: is none of the schema's enum values");
    EXPECT(run_text(&c, "{\"city\":\"Oslo\",\"days\":1,\"extra\":true}"), 0,
           "the answer does not match the schema: $: has the property 'extra', which the schema does not allow");
    EXPECT(run_text(&c, "not json"), 0, "the answer is not valid JSON");
}

TEST(jsonschema_any_one_all_of_and_const)
{
    cJSON *s = cJSON_Parse("{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"integer\"}]}");
    cJSON *one = cJSON_Parse("{\"oneOf\":[{\"type\":\"number\"},{\"type\":\"integer\"}]}");
    cJSON *all = cJSON_Parse("{\"allOf\":[{\"type\":\"object\"},{\"required\":[\"k\"]}]}");
    cJSON *cst = cJSON_Parse("{\"properties\":{\"v\":{\"const\":{\"x\":[1]}}}}");
    cJSON *d1 = cJSON_Parse("\"s\""), *d2 = cJSON_Parse("true"), *d3 = cJSON_Parse("2"), *d4 = cJSON_Parse("2.5");
    cJSON *d5 = cJSON_Parse("{}"), *d6 = cJSON_Parse("{\"v\":{\"x\":[1]}}"), *d7 = cJSON_Parse("{\"v\":{\"x\":[2]}}");
    char why[200];
    CHECK_INT(gyre_jsonschema_validate(s, d1, why, sizeof(why)), 1);
    CHECK_INT(gyre_jsonschema_validate(s, d2, why, sizeof(why)), 0);
    CHECK_STR(why, "$: matches none of the 2 schemas of anyOf");
    CHECK_INT(gyre_jsonschema_validate(one, d3, why, sizeof(why)), 0); /* an integer is also a number */
    CHECK_STR(why, "$: matches 2 of the 2 schemas of oneOf; exactly one must match");
    CHECK_INT(gyre_jsonschema_validate(one, d4, why, sizeof(why)), 1);
    CHECK_INT(gyre_jsonschema_validate(all, d5, why, sizeof(why)), 0);
    CHECK_STR(why, "$: lacks the required property 'k'");
    CHECK_INT(gyre_jsonschema_validate(cst, d6, why, sizeof(why)), 1);
    CHECK_INT(gyre_jsonschema_validate(cst, d7, why, sizeof(why)), 0);
    CHECK_STR(why, "$.v: is not the value the schema's const requires");
    cJSON *list[] = {s, one, all, cst, d1, d2, d3, d4, d5, d6, d7};
    for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++)
        cJSON_Delete(list[i]);
}

TEST(jsonschema_a_schema_nested_past_the_bound_fails_closed)
{
    /* {"items": {"items": ... 40 deep}} against [[[...]]] 40 deep. */
    char schema[1024] = "", doc[256] = "";
    for (int i = 0; i < 40; i++)
        strcat(schema, "{\"items\":");
    strcat(schema, "true");
    for (int i = 0; i < 40; i++)
        strcat(schema, "}");
    for (int i = 0; i < 40; i++)
        strcat(doc, "[");
    for (int i = 0; i < 40; i++)
        strcat(doc, "]");
    cJSON *s = cJSON_Parse(schema), *d = cJSON_Parse(doc);
    char why[200];
    CHECK_INT(gyre_jsonschema_validate(s, d, why, sizeof(why)), 0);
    CHECK_STR(why, "the schema is too deep or too complex to check (over 32 levels or 100000 steps)");
    char err[200];
    CHECK_INT(gyre_jsonschema_check(s, err, sizeof(err)), -1);
    cJSON_Delete(s);
    cJSON_Delete(d);
}

TEST(jsonschema_check_names_the_keyword_that_is_wrong)
{
    const struct {
        const char *schema, *err;
    } cases[] = {
        {"{\"type\":\"text\"}", "type: is not one of object, array, string, number, integer, boolean, null (or a list of them)"},
        {"{\"properties\":{\"age\":{\"minimum\":\"3\"}}}", "properties.age.minimum: is not a number"},
        {"{\"required\":\"a\"}", "required: is not a list of property names"},
        {"{\"anyOf\":[]}", "anyOf: is not a non-empty list of schemas"},
        {"{\"items\":5}", "items: a schema is an object or a boolean"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *s = cJSON_Parse(cases[i].schema);
        char err[200] = "";
        CHECK_INT(gyre_jsonschema_check(s, err, sizeof(err)), -1);
        CHECK_STR(err, cases[i].err);
        cJSON_Delete(s);
    }
    cJSON *ok = cJSON_Parse("{\"type\":[\"string\",\"null\"],\"description\":\"x\",\"format\":\"date\"}");
    char err[200] = "";
    CHECK_INT(gyre_jsonschema_check(ok, err, sizeof(err)), 0);
    cJSON_Delete(ok);
}

TEST(heuristic_regex_must_and_must_not)
{
    char *must[] = {"[Tt]otal: [0-9]+"};
    char *must_not[] = {"[0-9]{3}-[0-9]{2}-[0-9]{4}", "password"};
    gyre_scorer_conf_t c = {.name = "r", .kind = GYRE_SCORER_REGEX, .must = must, .nmust = 1, .must_not = must_not,
                            .nmust_not = 2};
    EXPECT(run_text(&c, "Total: 42 items"), 1, "");
    EXPECT(run_text(&c, "no figure here"), 0, "must[0] '[Tt]otal: [0-9]+' does not match");
    EXPECT(run_text(&c, "Total: 1, SSN 123-45-6789"), 0, "must_not[0] '[0-9]{3}-[0-9]{2}-[0-9]{4}' matches");
    EXPECT(run_text(&c, "total: 3 and the password"), 0, "must_not[1] 'password' matches");
}

TEST(heuristic_regex_reads_the_first_64_KiB_only)
{
    char *must_not[] = {"secret"};
    gyre_scorer_conf_t c = {.name = "r", .kind = GYRE_SCORER_REGEX, .must_not = must_not, .nmust_not = 1};
    size_t n = GYRE_HEURISTIC_TEXT_MAX + 16;
    char *text = malloc(n + 1);
    memset(text, 'x', n);
    memcpy(text + GYRE_HEURISTIC_TEXT_MAX + 4, "secret", 6); /* past the bound: not seen */
    text[n] = '\0';
    EXPECT(run_text(&c, text), 1, "");
    memcpy(text + GYRE_HEURISTIC_TEXT_MAX - 6, "secret", 6); /* the last bytes read */
    EXPECT(run_text(&c, text), 0, "must_not[0] 'secret' matches");
    free(text);
}

TEST(heuristic_regex_that_does_not_compile_is_an_error_naming_the_field)
{
    char *must[] = {"ok", "(unclosed"};
    gyre_scorer_conf_t c = {.name = "r", .kind = GYRE_SCORER_REGEX, .must = must, .nmust = 2};
    char err[256];
    CHECK(gyre_heuristic_compile(&c, err, sizeof(err)) == NULL);
    CHECK_STR(err, "must[1]: '(unclosed' is not a POSIX extended regular expression: Unmatched ( or \\(");
}

TEST(heuristic_refusal_finds_the_lexicon_and_the_operators_terms)
{
    char *terms[] = {"Not My Department"};
    gyre_scorer_conf_t c = {.name = "ref", .kind = GYRE_SCORER_REFUSAL, .terms = terms, .nterms = 1};
    EXPECT(run_text(&c, "Here is the recipe: flour, water, salt."), 1, "");
    EXPECT(run_text(&c, "I'm sorry, but I can't share that."), 0, "the answer refuses ('i'm sorry, but i can't')");
    /* The score names what it measures: 1 when the answer refuses, 0 when it does not. */
    CHECK(run_text(&c, "I'm sorry, but I can't share that.").value == 1);
    CHECK(run_text(&c, "Here is your refund.").value == 0);
    /* The typographic apostrophe, other case, a line break inside the phrase. */
    EXPECT(run_text(&c, "Well... I\xE2\x80\x99M SORRY, BUT\n  I CANNOT do this."), 0,
           "the answer refuses ('i'm sorry, but i cannot')");
    EXPECT(run_text(&c, "As an AI, I have no opinions."), 0, "the answer refuses ('as an ai')");
    EXPECT(run_text(&c, "That is not my department, sorry."), 0, "the answer refuses ('not my department')");
    /* Whole words only: "as an aim" is no refusal. */
    EXPECT(run_text(&c, "Take this as an aim for next year."), 1, "");
}

TEST(heuristic_toxicity_matches_whole_words_only)
{
    gyre_scorer_conf_t c = {.name = "tox", .kind = GYRE_SCORER_TOXICITY};
    EXPECT(run_text(&c, "The classic assessment passed."), 1, "");
    EXPECT(run_text(&c, "Only an idiot would ask that."), 0, "the text has a toxic term ('idiot')");
    CHECK(run_text(&c, "Only an idiot would ask that.").value == 1);
    CHECK(run_text(&c, "Thank you for asking.").value == 0);
    EXPECT(run_text(&c, "SHUT   UP and listen"), 0, "the text has a toxic term ('shut up')");
    EXPECT(run_text(&c, "idiotic"), 1, "");
}

static gyre_check_result_t run_tools(const char *calls, const char *tools)
{
    gyre_scorer_conf_t c = {.name = "ta", .kind = GYRE_SCORER_TOOL_ARGS};
    char err[128];
    gyre_heuristic_t *h = gyre_heuristic_compile(&c, err, sizeof(err));
    gyre_check_input_t in = {.tool_calls_json = calls, .tools_json = tools, .latency_us = -1, .cost_usd = NAN};
    gyre_check_result_t r;
    gyre_heuristic_run(h, &in, &r);
    gyre_heuristic_free(h);
    return r;
}

TEST(heuristic_tool_args_checks_every_call_against_its_tools_schema)
{
    const char *tools = "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{"
                        "\"type\":\"object\",\"required\":[\"city\"],\"properties\":{\"city\":{\"type\":\"string\"},"
                        "\"unit\":{\"enum\":[\"c\",\"f\"]}}}}},"
                        "{\"type\":\"function\",\"function\":{\"name\":\"now\"}}]";
    EXPECT(run_tools(NULL, tools), 1, "");
    EXPECT(run_tools("[{\"id\":\"1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                     "\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\",\\\"unit\\\":\\\"c\\\"}\"}},"
                     "{\"id\":\"2\",\"type\":\"function\",\"function\":{\"name\":\"now\",\"arguments\":\"{}\"}}]",
                     tools),
           1, "");
    EXPECT(run_tools("[{\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"unit\\\":\\\"k\\\"}\"}}]", tools),
           0, "tool call 'get_weather': $: lacks the required property 'city'");
    EXPECT(run_tools("[{\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":1}\"}}]", tools), 0,
           "tool call 'get_weather': $.city: is an integer, not a string");
    EXPECT(run_tools("[{\"function\":{\"name\":\"get_weather\",\"arguments\":\"{city: Oslo}\"}}]", tools), 0,
           "tool call 'get_weather': the arguments are not valid JSON");
    EXPECT(run_tools("[{\"function\":{\"name\":\"launch\",\"arguments\":\"{}\"}}]", tools), 0,
           "tool call 'launch' names no tool of the request");
    EXPECT(run_tools("[{\"function\":{\"name\":\"now\",\"arguments\":\"{}\"}}]", NULL), 0,
           "tool call 'now' names no tool of the request");
}

TEST(heuristic_length_counts_characters_not_bytes)
{
    gyre_scorer_conf_t c = {.name = "len", .kind = GYRE_SCORER_LENGTH, .min_chars = 3, .max_chars = 5};
    gyre_check_result_t r = run_text(&c, "h\xC3\xA9llo"); /* 5 characters, 6 bytes */
    EXPECT(r, 1, "");
    CHECK(r.value == 5);
    EXPECT(run_text(&c, "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"), 1, ""); /* 5 characters in 10 bytes */
    EXPECT(run_text(&c, "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"), 0, "6 characters; the maximum is 5");
    EXPECT(run_text(&c, "hi"), 0, "2 characters; the minimum is 3");
    EXPECT(run_text(&c, "hello!"), 0, "6 characters; the maximum is 5");
}

TEST(heuristic_latency_and_cost_thresholds)
{
    gyre_scorer_conf_t lat = {.name = "lat", .kind = GYRE_SCORER_LATENCY, .max_latency_ms = 500};
    gyre_scorer_conf_t cost = {.name = "cost", .kind = GYRE_SCORER_COST, .max_cost_usd = 0.01};
    char err[128];
    gyre_heuristic_t *hl = gyre_heuristic_compile(&lat, err, sizeof(err));
    gyre_heuristic_t *hc = gyre_heuristic_compile(&cost, err, sizeof(err));
    gyre_check_result_t r;
    gyre_check_input_t in = {.latency_us = 499000, .cost_usd = 0.02};
    gyre_heuristic_run(hl, &in, &r);
    EXPECT(r, 1, "");
    CHECK(r.value == 499);
    in.latency_us = 750000;
    gyre_heuristic_run(hl, &in, &r);
    EXPECT(r, 0, "took 750 ms; the maximum is 500 ms");
    in.latency_us = -1; /* unknown: nothing to judge */
    gyre_heuristic_run(hl, &in, &r);
    EXPECT(r, 1, "");
    CHECK(isnan(r.value));
    gyre_heuristic_run(hc, &in, &r);
    EXPECT(r, 0, "cost $0.020000; the maximum is $0.010000");
    in.cost_usd = 0.005;
    gyre_heuristic_run(hc, &in, &r);
    EXPECT(r, 1, "");
    gyre_heuristic_free(hl);
    gyre_heuristic_free(hc);
}

TEST(heuristic_a_judge_is_not_compiled_as_a_heuristic)
{
    gyre_scorer_conf_t c = {.name = "j", .kind = GYRE_SCORER_JUDGE};
    char err[128];
    CHECK(gyre_heuristic_compile(&c, err, sizeof(err)) == NULL);
    CHECK_STR(err, "type: 'j' is not a heuristic (a judge runs through a route)");
}
