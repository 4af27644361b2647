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

TEST(buf_failed_is_zero_while_every_append_succeeds)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 16);
    gyre_buf_appends(&b, "12345678");
    gyre_buf_appendf(&b, "%d", 9);
    gyre_buf_append_json_string(&b, "ab", 2);
    CHECK_INT(gyre_buf_failed(&b), 0);
    CHECK_STR(b.base, "123456789\"ab\"");
    gyre_buf_dispose(&b);
}

TEST(buf_failed_keeps_the_first_error_after_later_appends_succeed)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 8);
    gyre_buf_appends(&b, "{\"a\":");
    gyre_buf_append_json_string(&b, "too long", 8); /* does not fit: the piece is lost */
    gyre_buf_appends(&b, "1}");                    /* fits: the bytes now look whole, and are not */
    CHECK_STR(b.base, "{\"a\":1}");
    CHECK_INT(gyre_buf_failed(&b), -E2BIG);
    CHECK_INT(gyre_buf_append_file(&b, "/nonexistent/gyre-buf-test"), -ENOENT);
    CHECK_INT(gyre_buf_failed(&b), -E2BIG);
    gyre_buf_dispose(&b);
}

TEST(buf_failed_is_set_by_each_kind_of_append)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 4);
    CHECK_INT(gyre_buf_appendf(&b, "%s", "12345"), -E2BIG);
    CHECK_INT(gyre_buf_failed(&b), -E2BIG);
    gyre_buf_reset(&b);
    CHECK_INT(gyre_buf_reserve(&b, 5), -E2BIG);
    CHECK_INT(gyre_buf_failed(&b), -E2BIG);
    gyre_buf_reset(&b);
    CHECK_INT(gyre_buf_append_file(&b, "/nonexistent/gyre-buf-test"), -ENOENT);
    CHECK_INT(gyre_buf_failed(&b), -ENOENT);
    gyre_buf_dispose(&b);
}

TEST(buf_reset_forgets_the_failure)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 4);
    gyre_buf_appends(&b, "12345");
    CHECK_INT(gyre_buf_failed(&b), -E2BIG);
    gyre_buf_reset(&b);
    CHECK_INT(gyre_buf_failed(&b), 0);
    CHECK_INT(gyre_buf_appends(&b, "1234"), 0);
    CHECK_INT(gyre_buf_failed(&b), 0);
    gyre_buf_dispose(&b);
}

TEST(buf_rollback_to_a_mark_forgets_only_what_came_after_it)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 8);
    gyre_buf_appends(&b, "ab");
    gyre_buf_mark_t m = gyre_buf_mark(&b);
    gyre_buf_appends(&b, "cd");
    gyre_buf_appends(&b, "0123456789");
    CHECK_INT(gyre_buf_failed(&b), -E2BIG);
    gyre_buf_rollback(&b, m);
    CHECK_STR(b.base, "ab");
    CHECK_INT(b.len, 2);
    CHECK_INT(gyre_buf_failed(&b), 0);

    /* A mark taken after a failure keeps it: rolling back does not hide what was lost before. */
    gyre_buf_appends(&b, "0123456789");
    m = gyre_buf_mark(&b);
    gyre_buf_appends(&b, "x");
    gyre_buf_rollback(&b, m);
    CHECK_STR(b.base, "ab");
    CHECK_INT(gyre_buf_failed(&b), -E2BIG);
    gyre_buf_dispose(&b);
}

TEST(buf_append_upto_takes_what_fits_and_never_marks_the_buffer)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 8);
    CHECK_INT((int)gyre_buf_append_upto(&b, "12345", 5), 5);
    CHECK_INT((int)gyre_buf_append_upto(&b, "6789ab", 6), 3);
    CHECK_STR(b.base, "12345678");
    CHECK_INT((int)gyre_buf_append_upto(&b, "x", 1), 0);
    CHECK_INT(gyre_buf_failed(&b), 0);
    gyre_buf_dispose(&b);
}
