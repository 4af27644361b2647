/*
 * src/common/json.c: locating a top-level member's value in the bytes the
 * client sent (so the model rewrite is a splice), and byte offset → line and
 * column for error messages.
 */
#include "common/json.h"

#include <string.h>

#include "test.h"

/* The value of `key` as written, or NULL when gyre_json_find_member finds none. */
static const char *member(const char *json, const char *key)
{
    static char out[256];
    size_t s, e;
    if (gyre_json_find_member(json, strlen(json), key, &s, &e) != 0)
        return NULL;
    memcpy(out, json + s, e - s);
    out[e - s] = '\0';
    return out;
}

TEST(json_member_span_of_a_string_includes_its_quotes)
{
    const char j[] = "{\"model\":\"gpt-4o\"}";
    size_t s = 99, e = 99;
    CHECK_INT(gyre_json_find_member(j, strlen(j), "model", &s, &e), 0);
    CHECK_INT(s, 9);
    CHECK_INT(e, 17);
}

TEST(json_member_finds_values_of_every_kind)
{
    const char j[] = "{\"s\":\"x\",\"a\":[1,{\"c\":2}],\"o\":{\"e\":\"}\"},\"n\":-1.5e3,\"t\":true,\"z\":null}";
    CHECK_STR(member(j, "s"), "\"x\"");
    CHECK_STR(member(j, "a"), "[1,{\"c\":2}]");
    CHECK_STR(member(j, "o"), "{\"e\":\"}\"}");
    CHECK_STR(member(j, "n"), "-1.5e3");
    CHECK_STR(member(j, "t"), "true");
    CHECK_STR(member(j, "z"), "null");
}

TEST(json_member_skips_whitespace_around_keys_colons_and_commas)
{
    const char j[] = " \n{ \"a\" :\t1 ,\r\n  \"model\"  :  \"m\"  \n}";
    CHECK_STR(member(j, "model"), "\"m\"");
    CHECK_STR(member(j, "a"), "1");
}

TEST(json_member_treats_control_bytes_as_whitespace_as_cjson_does)
{
    /* cJSON accepts any byte up to 0x20 between tokens; the string after the
     * \x01 holds a comma, which must not end the value. */
    const char j[] = "{\"a\":1\x01,\"model\":\x01\"x,y\"\f}";
    CHECK_STR(member(j, "model"), "\"x,y\"");
    CHECK_STR(member(j, "a"), "1");
}

TEST(json_member_does_not_match_model_keys_in_nested_objects)
{
    const char j[] = "{\"messages\":[{\"model\":\"inner\"}],\"meta\":{\"model\":2}}";
    CHECK(member(j, "model") == NULL);
}

TEST(json_member_finds_the_top_level_key_after_nested_ones)
{
    const char j[] = "{\"meta\":{\"model\":2,\"x\":[{\"model\":3}]},\"model\":\"outer\"}";
    CHECK_STR(member(j, "model"), "\"outer\"");
}

TEST(json_member_does_not_match_a_key_written_inside_a_string)
{
    const char j[] = "{\"note\":\"\\\"model\\\":\\\"x\\\"\",\"model\":\"real\"}";
    CHECK_STR(member(j, "model"), "\"real\"");
}

TEST(json_member_handles_escaped_quotes_and_backslashes_in_strings)
{
    /* "a\"}" keeps going past an escaped quote; "b\\" ends at the quote after
     * an escaped backslash. */
    const char j[] = "{\"x\":\"a\\\"}\",\"y\":\"b\\\\\",\"k\\\"ey\":1,\"model\":\"m\"}";
    CHECK_STR(member(j, "x"), "\"a\\\"}\"");
    CHECK_STR(member(j, "y"), "\"b\\\\\"");
    CHECK_STR(member(j, "model"), "\"m\"");
}

TEST(json_member_brackets_inside_strings_do_not_count_as_nesting)
{
    const char j[] = "{\"a\":[\"]\",{\"b\":\"}}\"}],\"model\":\"m\"}";
    CHECK_STR(member(j, "a"), "[\"]\",{\"b\":\"}}\"}]");
    CHECK_STR(member(j, "model"), "\"m\"");
}

TEST(json_member_missing_key_is_not_found)
{
    CHECK(member("{\"a\":1,\"b\":{\"c\":2}}", "model") == NULL);
    CHECK(member("{}", "model") == NULL);
}

TEST(json_member_compares_whole_keys_not_prefixes)
{
    CHECK(member("{\"models\":1,\"mode\":2}", "model") == NULL);
}

TEST(json_member_does_not_match_a_key_spelled_with_escapes)
{
    CHECK(member("{\"mod\\u0065l\":\"m\"}", "model") == NULL);
}

TEST(json_member_returns_the_first_of_duplicate_keys)
{
    CHECK_STR(member("{\"model\":\"one\",\"model\":\"two\"}", "model"), "\"one\"");
}

TEST(json_member_of_something_that_is_not_an_object_is_not_found)
{
    CHECK(member("[{\"model\":\"m\"}]", "model") == NULL);
    CHECK(member("\"model\"", "model") == NULL);
    CHECK(member("", "model") == NULL);
}

TEST(json_member_reads_only_len_bytes)
{
    const char j[] = "{\"a\":1,\"model\":\"m\"}";
    size_t s, e;
    CHECK_INT(gyre_json_find_member(j, 7, "model", &s, &e), -1);
    CHECK_INT(gyre_json_find_member(j, sizeof(j) - 1, "model", &s, &e), 0);
}

TEST(json_position_counts_lines_and_columns_from_one)
{
    unsigned line = 0, col = 0;
    gyre_json_position("ab\ncd\nef", 8, 4, &line, &col);
    CHECK_INT(line, 2);
    CHECK_INT(col, 2);
}

TEST(json_position_of_the_first_byte_is_line_1_column_1)
{
    unsigned line = 0, col = 0;
    gyre_json_position("x", 1, 0, &line, &col);
    CHECK_INT(line, 1);
    CHECK_INT(col, 1);
}

TEST(json_position_of_a_newline_is_on_the_line_it_ends)
{
    unsigned line = 0, col = 0;
    gyre_json_position("ab\ncd", 5, 2, &line, &col);
    CHECK_INT(line, 1);
    CHECK_INT(col, 3);
    gyre_json_position("ab\ncd", 5, 3, &line, &col);
    CHECK_INT(line, 2);
    CHECK_INT(col, 1);
}

TEST(json_position_past_the_end_stops_at_the_end)
{
    unsigned line = 0, col = 0;
    gyre_json_position("a\nbc", 4, 100, &line, &col);
    CHECK_INT(line, 2);
    CHECK_INT(col, 3);
}
