#include "common/json.h"

#include <string.h>

#include "test.h"

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

TEST(json_member_finds_top_level_values_of_every_kind)
{
    const char j[] = " { \"a\" : \"x\\\"y\" , \"b\":[1,{\"c\":2}], \"d\":{\"e\":\"}\"}, \"n\": -1.5e3 ,\"t\":true}";
    CHECK_STR(member(j, "a"), "\"x\\\"y\"");
    CHECK_STR(member(j, "b"), "[1,{\"c\":2}]");
    CHECK_STR(member(j, "d"), "{\"e\":\"}\"}");
    CHECK_STR(member(j, "n"), "-1.5e3");
    CHECK_STR(member(j, "t"), "true");
}

TEST(json_member_ignores_nested_keys_and_keys_inside_strings)
{
    const char j[] = "{\"messages\":[{\"model\":\"inner\"}],\"note\":\"\\\"model\\\":1\",\"meta\":{\"model\":2}}";
    CHECK(member(j, "model") == NULL);
    const char k[] = "{\"meta\":{\"model\":2},\"model\":\"outer\"}";
    CHECK_STR(member(k, "model"), "\"outer\"");
}

TEST(json_member_returns_the_first_of_duplicate_keys)
{
    CHECK_STR(member("{\"model\":\"one\",\"model\":\"two\"}", "model"), "\"one\"");
}

TEST(json_position_counts_lines_and_columns_from_one)
{
    unsigned line, col;
    gyre_json_position("ab\ncd\nef", 8, 4, &line, &col);
    CHECK_INT(line, 2);
    CHECK_INT(col, 2);
    gyre_json_position("x", 1, 0, &line, &col);
    CHECK_INT(line, 1);
    CHECK_INT(col, 1);
}
