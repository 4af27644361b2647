#include "common/log.h"

#include "common/buf.h"
#include "test.h"

/* Every line the hook received, in order, and how many. */
static gyre_buf_t seen;
static int nseen;
static uint64_t fake_now;

static void capture(void *ctx, const char *line, size_t len)
{
    (void)ctx;
    gyre_buf_append(&seen, line, len);
    nseen++;
}

static uint64_t fake_clock(void)
{
    return fake_now;
}

static void setup(void)
{
    gyre_buf_init(&seen, 1 << 20);
    nseen = 0;
    fake_now = 1000000000ull;
    gyre_log_reset();
    gyre_log_set_clock(fake_clock);
    gyre_log_set_hook(capture, NULL);
}

TEST(log_escapes_cr_lf_so_a_path_cannot_start_a_line_of_its_own)
{
    setup();
    gyre_logf("gyre: worker %u: %s\n", 0u, "/v1/x\r\ngyre: worker 0: FAKE LOG LINE");
    CHECK_STR(seen.base, "gyre: worker 0: /v1/x\\r\\ngyre: worker 0: FAKE LOG LINE\n");
    CHECK_INT(nseen, 1);
}

TEST(log_escapes_nul_esc_del_tab_backslash_and_every_byte_from_0x80)
{
    setup();
    const char s[] = "a\tb\x1b[31mc\x7f\\d\xc3\xa9\xff";
    gyre_logf("x %.*s", (int)sizeof(s) - 1, s);
    CHECK_STR(seen.base, "x a\\tb\\x1b[31mc\\x7f\\\\d\\xc3\\xa9\\xff\n");
    char out[64];
    size_t n = gyre_log_escape(out, sizeof(out), "n\0l", 3);
    CHECK_MEM(out, n, "n\\x00l\n");
}

TEST(log_keeps_one_trailing_newline_and_adds_one_when_missing)
{
    setup();
    gyre_logf("one\n\n");
    gyre_logf("two");
    CHECK_STR(seen.base, "one\\n\ntwo\n");
    CHECK_INT(nseen, 2);
}

TEST(log_cuts_a_line_past_4_kib_at_a_whole_escape_with_a_marker)
{
    setup();
    static char big[5000];
    memset(big, 'a', sizeof(big) - 1);
    gyre_logf("%s\n", big);
    CHECK_INT(seen.len, GYRE_LOG_LINE_MAX + strlen(GYRE_LOG_TRUNCATED) + 1);
    CHECK_STR(seen.base + GYRE_LOG_LINE_MAX, " [truncated]\n");
    /* 4095 bytes of 'a' then an escape of four: it does not fit whole, so it is left out. */
    gyre_buf_reset(&seen);
    memset(big, 'a', GYRE_LOG_LINE_MAX - 1);
    big[GYRE_LOG_LINE_MAX - 1] = '\x01';
    big[GYRE_LOG_LINE_MAX] = '\0';
    gyre_logf("%s", big);
    CHECK_INT(seen.len, GYRE_LOG_LINE_MAX - 1 + strlen(GYRE_LOG_TRUNCATED) + 1);
    CHECK_STR(seen.base + GYRE_LOG_LINE_MAX - 1, " [truncated]\n");
}

TEST(log_a_burst_of_1000_writes_the_bucket_then_one_line_with_the_exact_suppressed_count)
{
    setup();
    for (int i = 0; i < 1000; i++)
        gyre_logf("gyre: request %d: upstream failed\n", i);
    CHECK_INT(nseen, GYRE_LOG_BURST);
    CHECK(strstr(seen.base, "gyre: request 19: upstream failed\n") != NULL);
    CHECK(strstr(seen.base, "gyre: request 20:") == NULL);
    gyre_buf_reset(&seen);
    gyre_log_flush();
    CHECK_STR(seen.base, "gyre: 980 similar lines suppressed: request %d: upstream failed\n");
    CHECK_INT(nseen, GYRE_LOG_BURST + 1);
    /* Flushed counts are not said twice. */
    gyre_log_flush();
    CHECK_INT(nseen, GYRE_LOG_BURST + 1);
}

TEST(log_the_next_line_that_passes_says_first_how_many_were_suppressed)
{
    setup();
    for (int i = 0; i < 25; i++)
        gyre_logf("gyre: try %d\n", i);
    gyre_buf_reset(&seen);
    fake_now += 1000000000ull / GYRE_LOG_PER_SECOND; /* one line's worth of refill */
    gyre_logf("gyre: try %d\n", 25);
    gyre_logf("gyre: try %d\n", 26);
    CHECK_STR(seen.base, "gyre: 5 similar lines suppressed: try %d\ngyre: try 25\n");
    CHECK_INT(nseen, GYRE_LOG_BURST + 2);
}

TEST(log_limits_each_call_site_on_its_own)
{
    setup();
    for (int i = 0; i < 30; i++)
        gyre_logf("gyre: site a %d\n", i);
    gyre_logf("gyre: site b\n");
    CHECK_INT(nseen, GYRE_LOG_BURST + 1);
    CHECK(strstr(seen.base, "gyre: site b\n") != NULL);
}

TEST(log_refills_the_bucket_at_the_documented_rate)
{
    setup();
    for (int i = 0; i < GYRE_LOG_BURST + 5; i++)
        gyre_logf("gyre: steady\n");
    CHECK_INT(nseen, GYRE_LOG_BURST);
    fake_now += 1000000000ull; /* a second: GYRE_LOG_PER_SECOND more lines, no more */
    for (int i = 0; i < 100; i++)
        gyre_logf("gyre: steady\n");
    /* 10 lines, plus the count of the 5 suppressed before them. */
    CHECK_INT(nseen, GYRE_LOG_BURST + GYRE_LOG_PER_SECOND + 1);
    gyre_buf_reset(&seen);
    gyre_log_flush();
    CHECK_STR(seen.base, "gyre: 90 similar lines suppressed: steady\n");
}
