#include "common/zstd.h"

#include <errno.h>

#include "test.h"

TEST(zstd_round_trips_a_body_through_a_context)
{
    gyre_zstd_t *z = gyre_zstd_create(GYRE_ZSTD_LEVEL_DEFAULT);
    gyre_buf_t c, d;
    gyre_buf_init(&c, 1 << 20);
    gyre_buf_init(&d, 1 << 20);
    const char body[] = "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hello hello hello hello\"}]}";
    CHECK_INT(gyre_zstd_compress(z, &c, body, sizeof(body) - 1), 0);
    CHECK(c.len > 0 && c.len < sizeof(body) - 1);
    CHECK_INT(gyre_zstd_decompress(z, &d, c.base, c.len), 0);
    CHECK_MEM(d.base, d.len, body);
    /* The same context again: its state must not leak from one frame to the next. */
    gyre_buf_reset(&d);
    CHECK_INT(gyre_zstd_decompress(z, &d, c.base, c.len), 0);
    CHECK_MEM(d.base, d.len, body);
    gyre_buf_dispose(&c);
    gyre_buf_dispose(&d);
    gyre_zstd_destroy(z);
}

TEST(zstd_without_a_context_appends_after_what_is_there)
{
    gyre_buf_t c, d;
    gyre_buf_init(&c, 1 << 20);
    gyre_buf_init(&d, 1 << 20);
    CHECK_INT(gyre_zstd_compress(NULL, &c, "abc", 3), 0);
    gyre_buf_appends(&d, "x:");
    CHECK_INT(gyre_zstd_decompress(NULL, &d, c.base, c.len), 0);
    CHECK_STR(d.base, "x:abc");
    CHECK_INT(d.len, 5);
    gyre_buf_dispose(&c);
    gyre_buf_dispose(&d);
}

TEST(zstd_decompress_stops_at_the_buffer_max_with_e2big_and_keeps_contents)
{
    static char big[100000];
    memset(big, 'a', sizeof(big));
    gyre_buf_t c, d;
    gyre_buf_init(&c, 1 << 20);
    gyre_buf_init(&d, 1000);
    CHECK_INT(gyre_zstd_compress(NULL, &c, big, sizeof(big)), 0);
    CHECK(c.len < 1000); /* a tiny frame that claims 100000 bytes */
    gyre_buf_appends(&d, "keep");
    CHECK_INT(gyre_zstd_decompress(NULL, &d, c.base, c.len), -E2BIG);
    CHECK_STR(d.base, "keep");
    gyre_buf_dispose(&c);
    gyre_buf_dispose(&d);
}

TEST(zstd_decompress_fills_a_buffer_to_exactly_its_max)
{
    gyre_buf_t c, d;
    gyre_buf_init(&c, 1 << 20);
    gyre_buf_init(&d, 5);
    CHECK_INT(gyre_zstd_compress(NULL, &c, "hello", 5), 0);
    CHECK_INT(gyre_zstd_decompress(NULL, &d, c.base, c.len), 0);
    CHECK_STR(d.base, "hello");
    gyre_buf_dispose(&c);
    gyre_buf_dispose(&d);
}

TEST(zstd_decompress_rejects_garbage_truncation_and_empty_input_with_einval)
{
    gyre_buf_t c, d;
    gyre_buf_init(&c, 1 << 20);
    gyre_buf_init(&d, 1 << 20);
    CHECK_INT(gyre_zstd_decompress(NULL, &d, "not zstd at all", 15), -EINVAL);
    CHECK_INT(gyre_zstd_decompress(NULL, &d, "", 0), -EINVAL);
    CHECK_INT(gyre_zstd_compress(NULL, &c, "some text to compress, some text", 32), 0);
    CHECK_INT(gyre_zstd_decompress(NULL, &d, c.base, c.len - 3), -EINVAL);
    CHECK_INT(d.len, 0);
    gyre_buf_dispose(&c);
    gyre_buf_dispose(&d);
}

TEST(zstd_compress_past_the_buffer_max_fails_with_e2big_and_keeps_contents)
{
    gyre_buf_t c;
    gyre_buf_init(&c, 16);
    gyre_buf_appends(&c, "ab");
    CHECK_INT(gyre_zstd_compress(NULL, &c, "0123456789abcdef0123456789", 26), -E2BIG);
    CHECK_STR(c.base, "ab");
    CHECK_INT(c.len, 2);
    gyre_buf_dispose(&c);
}
