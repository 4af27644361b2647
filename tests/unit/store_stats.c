/*
 * The stats rollup (src/store/rollup.c) without a store: the histogram's
 * layout and its 1 % bound, and the default range.  What a store answers
 * (totals, groups, buckets, edges, replays, the rollup against a full scan)
 * is in the conformance suite, store_conformance_stats.c.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/rollup.h"
#include "test.h"

/* 2026-12-01T10:00:00Z, on a whole hour. */
#define T0 1796119200000000LL
#define SEC 1000000LL
#define MIN (60 * SEC)
#define HOUR (3600 * SEC)

TEST(store_stats_histogram_layout_zero_one_and_the_last_bucket)
{
    double g = (1 + GYRE_HIST_ALPHA) / (1 - GYRE_HIST_ALPHA);
    CHECK_INT(gyre_hist_index(0), 0);
    CHECK_INT(gyre_hist_index(-5), 0); /* a clock step reads as zero */
    CHECK_INT(gyre_hist_index(1), 1);
    CHECK_INT(gyre_hist_index(2), 36); /* ceil(ln 2 / ln g) = 35 */
    CHECK_INT(gyre_hist_index(INT64_MAX), GYRE_HIST_BUCKETS - 1);
    CHECK(gyre_hist_value_us(0) == 0);
    CHECK(fabs(gyre_hist_value_us(1) - 2 / (g + 1)) < 1e-12);
}

TEST(store_stats_histogram_reads_every_value_within_one_percent)
{
    for (int64_t v = 1; v < (int64_t)1 << 40; v = v * 3 / 2 + 1) {
        double est = gyre_hist_value_us(gyre_hist_index(v));
        if (fabs(est - (double)v) / (double)v > GYRE_HIST_ALPHA + 1e-12) {
            fprintf(stderr, "  %lld reads as %f\n", (long long)v, est);
            CHECK(0);
        }
    }
}

TEST(store_stats_histogram_percentiles_are_nearest_rank)
{
    gyre_hist_t h = {0};
    CHECK(isnan(gyre_hist_percentile_us(&h, 500)));
    /* 1..20 ms: p50 is the 10th value, p95 the 19th, p99 the 20th. */
    for (int i = 1; i <= 20; i++)
        gyre_hist_add(&h, gyre_hist_index(i * 1000), 1);
    CHECK_INT(h.n, 20);
    CHECK(fabs(gyre_hist_percentile_us(&h, 500) - 10000) <= 100);
    CHECK(fabs(gyre_hist_percentile_us(&h, 950) - 19000) <= 190);
    CHECK(fabs(gyre_hist_percentile_us(&h, 990) - 20000) <= 200);
    CHECK(gyre_hist_percentile_us(&h, 500) == gyre_hist_value_us(gyre_hist_index(10000)));
    gyre_hist_dispose(&h);
}

TEST(store_stats_histogram_stored_form_is_index_deltas_and_counts)
{
    gyre_hist_t h = {0};
    gyre_hist_add(&h, 0, 2);
    gyre_hist_add(&h, 5, 1);
    gyre_hist_add(&h, 300, 3);
    gyre_buf_t b;
    gyre_buf_init(&b, 1024);
    CHECK_INT(gyre_hist_encode(&h, &b), 0);
    /* (0, 2) (5, 1) (295 = 0xa7 0x02, 3) */
    CHECK_INT(b.len, 7);
    CHECK(memcmp(b.base, "\x00\x02\x05\x01\xa7\x02\x03", 7) == 0);

    gyre_hist_t back = {0};
    CHECK_INT(gyre_hist_add_encoded(&back, b.base, b.len), 0);
    CHECK_INT(back.n, 6);
    CHECK_INT(back.c[300 - back.lo], 3);

    /* Merging {0:2, 5:1, 300:3} with {5:4, 7:1} sums bucket 5. */
    gyre_buf_t m;
    gyre_buf_init(&m, 1024);
    CHECK_INT(gyre_hist_merge_encoded(b.base, b.len, "\x05\x04\x02\x01", 4, &m), 0);
    CHECK_INT(m.len, 9);
    CHECK(memcmp(m.base, "\x00\x02\x05\x05\x02\x01\xa5\x02\x03", 9) == 0);
    /* An empty side is the other side. */
    gyre_buf_reset(&m);
    CHECK_INT(gyre_hist_merge_encoded(NULL, 0, b.base, b.len, &m), 0);
    CHECK_INT(m.len, 7);
    gyre_hist_dispose(&h);
    gyre_hist_dispose(&back);
    gyre_buf_dispose(&b);
    gyre_buf_dispose(&m);
}

TEST(store_stats_histogram_refuses_malformed_stored_forms)
{
    gyre_hist_t h = {0};
    gyre_buf_t m;
    gyre_buf_init(&m, 1024);
    CHECK_INT(gyre_hist_add_encoded(&h, "\x05", 1), -EINVAL);             /* no count */
    CHECK_INT(gyre_hist_add_encoded(&h, "\x05\x00", 2), -EINVAL);         /* a zero count */
    CHECK_INT(gyre_hist_add_encoded(&h, "\x05\x01\x00\x01", 4), -EINVAL); /* a repeated bucket */
    CHECK_INT(gyre_hist_add_encoded(&h, "\xdc\x0b\x01", 3), -EINVAL);     /* bucket 1500: past the last */
    CHECK_INT(gyre_hist_add_encoded(&h, "\x80\x80", 2), -EINVAL);         /* a varint cut short */
    CHECK_INT(gyre_hist_merge_encoded("\x05", 1, "\x01\x01", 2, &m), -EINVAL);
    gyre_hist_dispose(&h);
    gyre_buf_dispose(&m);
}

TEST(store_stats_the_histogram_reads_the_known_latencies_within_one_percent)
{
    static const struct {
        int64_t us;
        double ms;
    } cases[] = {{100000, 99.741}, {200000, 200.859}, {300000, 299.65},
                 {400000, 396.48}, {20000, 20.136},   {40000, 39.748}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double est = round(gyre_hist_value_us(gyre_hist_index(cases[i].us))) / 1000.0;
        CHECK(fabs(est - cases[i].ms) < 1e-9);
        CHECK(fabs(est * 1000 - (double)cases[i].us) / (double)cases[i].us <= 0.01);
    }
}

TEST(store_stats_the_default_range_is_the_last_24_hours)
{
    gyre_stats_query_t q = {0};
    gyre_stats_range_t r;
    CHECK_INT(gyre_stats_range_resolve(&q, T0, &r, NULL, 0), 0);
    CHECK_INT(r.to_us, T0);
    CHECK_INT(r.from_us, T0 - 24 * HOUR);
    q.to_us = T0 + HOUR;
    CHECK_INT(gyre_stats_range_resolve(&q, T0, &r, NULL, 0), 0);
    CHECK_INT(r.from_us, T0 - 23 * HOUR);
}
