#include "common/buf.h"

#include <errno.h>

#include "test.h"

TEST(buf_append_grows_and_stays_nul_terminated)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 1024);
    CHECK_INT(gyre_buf_appends(&b, "hello"), 0);
    CHECK_INT(gyre_buf_appendf(&b, ", %s #%d", "world", 7), 0);
    CHECK_STR(b.base, "hello, world #7");
    CHECK_INT(b.len, 15);
    gyre_buf_dispose(&b);
}

TEST(buf_append_past_max_fails_with_e2big_and_keeps_contents)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 8);
    CHECK_INT(gyre_buf_appends(&b, "12345"), 0);
    CHECK_INT(gyre_buf_appends(&b, "6789"), -E2BIG);
    CHECK_STR(b.base, "12345");
    CHECK_INT(gyre_buf_appends(&b, "678"), 0);
    CHECK_STR(b.base, "12345678");
    gyre_buf_dispose(&b);
}

TEST(buf_json_string_escapes_quotes_controls_and_backslashes)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 1024);
    const char s[] = "a\"b\\c\nd\x01";
    CHECK_INT(gyre_buf_append_json_string(&b, s, sizeof(s) - 1), 0);
    CHECK_STR(b.base, "\"a\\\"b\\\\c\\nd\\u0001\"");
    gyre_buf_dispose(&b);
}

TEST(buf_consume_drops_the_prefix)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 1024);
    gyre_buf_appends(&b, "data: x\n\nrest");
    gyre_buf_consume(&b, 9);
    CHECK_STR(b.base, "rest");
    gyre_buf_consume(&b, 100);
    CHECK_INT(b.len, 0);
    gyre_buf_dispose(&b);
}
