/*
 * src/route/breaker.c: when a circuit breaker opens (consecutive failures,
 * the error rate over its window), the cooldown and its single probe, what
 * the probe's outcome does, and what release() gives back.
 */
#include "route/breaker.h"

#include "test.h"

/* Consecutive rule only: 3 failures in a row, 500 ms cooldown. */
static const gyre_breaker_conf_t consecutive3 = {
    .failures = 3, .error_rate_pct = 0, .min_requests = 0, .window_ms = 1000, .cooldown_ms = 500};
/* Rate rule only (the consecutive limit is out of reach): 50% of >= 4 calls in 1000 ms (10 buckets of 100 ms). */
static const gyre_breaker_conf_t rate50 = {
    .failures = 1000, .error_rate_pct = 50, .min_requests = 4, .window_ms = 1000, .cooldown_ms = 500};

static void record_n(gyre_breaker_t *b, const gyre_breaker_conf_t *c, int ok, int n, uint64_t now)
{
    for (int i = 0; i < n; i++)
        gyre_breaker_record(b, c, ok, now);
}

/* Opens a consecutive3 breaker at `now`. */
static void open_at(gyre_breaker_t *b, uint64_t now)
{
    gyre_breaker_init(b);
    record_n(b, &consecutive3, 0, 3, now);
}

TEST(breaker_starts_closed_and_lets_calls_through)
{
    gyre_breaker_t b;
    gyre_breaker_init(&b);
    CHECK_INT(b.state, GYRE_BREAKER_CLOSED);
    CHECK_INT(gyre_breaker_available(&b, &consecutive3, 1000), 1);
    CHECK_INT(gyre_breaker_acquire(&b, &consecutive3, 1000), 1);
    CHECK_INT(b.state, GYRE_BREAKER_CLOSED);
    CHECK_INT(b.opens, 0);
}

TEST(breaker_opens_at_the_configured_number_of_consecutive_failures)
{
    gyre_breaker_t b;
    gyre_breaker_init(&b);
    record_n(&b, &consecutive3, 0, 2, 1000);
    CHECK_INT(b.state, GYRE_BREAKER_CLOSED);
    CHECK_INT(b.consecutive_failures, 2);
    gyre_breaker_record(&b, &consecutive3, 0, 1234);
    CHECK_INT(b.state, GYRE_BREAKER_OPEN);
    CHECK_INT(b.opened_at_ms, 1234);
    CHECK_INT(b.opens, 1);
    CHECK_INT(gyre_breaker_available(&b, &consecutive3, 1234), 0);
    CHECK_INT(gyre_breaker_acquire(&b, &consecutive3, 1234), 0);
}

TEST(breaker_success_resets_the_consecutive_count)
{
    gyre_breaker_t b;
    gyre_breaker_init(&b);
    record_n(&b, &consecutive3, 0, 2, 1000);
    gyre_breaker_record(&b, &consecutive3, 1, 1000);
    CHECK_INT(b.consecutive_failures, 0);
    record_n(&b, &consecutive3, 0, 2, 1000);
    CHECK_INT(b.state, GYRE_BREAKER_CLOSED);
    CHECK_INT(b.consecutive_failures, 2);
}

TEST(breaker_opens_when_half_of_at_least_min_requests_failed)
{
    gyre_breaker_t b;
    gyre_breaker_init(&b);
    gyre_breaker_record(&b, &rate50, 1, 10000);
    gyre_breaker_record(&b, &rate50, 0, 10010);
    gyre_breaker_record(&b, &rate50, 1, 10020);
    CHECK_INT(b.state, GYRE_BREAKER_CLOSED); /* 1 of 3 */
    gyre_breaker_record(&b, &rate50, 0, 10030);
    CHECK_INT(b.state, GYRE_BREAKER_OPEN); /* 2 of 4: 200 >= 50 * 4 */
    CHECK_INT(b.opened_at_ms, 10030);
    CHECK_INT(b.opens, 1);
}

TEST(breaker_error_rate_needs_min_requests_in_the_window)
{
    gyre_breaker_t b;
    gyre_breaker_init(&b);
    record_n(&b, &rate50, 0, 3, 10000); /* 100% failed, but only 3 calls */
    CHECK_INT(b.state, GYRE_BREAKER_CLOSED);
}

TEST(breaker_error_rate_just_below_the_threshold_stays_closed)
{
    gyre_breaker_t b;
    gyre_breaker_init(&b);
    record_n(&b, &rate50, 1, 6, 10000);
    record_n(&b, &rate50, 0, 5, 10000); /* 5 of 11: 500 < 550 */
    CHECK_INT(b.state, GYRE_BREAKER_CLOSED);
    gyre_breaker_record(&b, &rate50, 0, 10000); /* 6 of 12: 600 >= 600 */
    CHECK_INT(b.state, GYRE_BREAKER_OPEN);
}

TEST(breaker_error_rate_window_still_holds_calls_from_its_oldest_bucket)
{
    gyre_breaker_t b;
    gyre_breaker_init(&b);
    record_n(&b, &rate50, 1, 3, 10000);
    gyre_breaker_record(&b, &rate50, 0, 10000);
    gyre_breaker_record(&b, &rate50, 0, 10999); /* bucket [10900,11000): the 10000 bucket is still in */
    CHECK_INT(b.state, GYRE_BREAKER_CLOSED);    /* 2 of 5 */
    gyre_breaker_record(&b, &rate50, 0, 10999);
    CHECK_INT(b.state, GYRE_BREAKER_OPEN); /* 3 of 6 */
}

TEST(breaker_error_rate_window_forgets_calls_older_than_window_ms)
{
    gyre_breaker_t b;
    gyre_breaker_init(&b);
    record_n(&b, &rate50, 1, 3, 10000);
    gyre_breaker_record(&b, &rate50, 0, 10000);
    /* At 11000 the bucket [10000,10100) has left the window: 3 of 3 is under min_requests. */
    record_n(&b, &rate50, 0, 3, 11000);
    CHECK_INT(b.state, GYRE_BREAKER_CLOSED);
    gyre_breaker_record(&b, &rate50, 0, 11000);
    CHECK_INT(b.state, GYRE_BREAKER_OPEN); /* 4 of 4 */
}

TEST(breaker_error_rate_window_is_empty_after_a_long_quiet_spell)
{
    gyre_breaker_t b;
    gyre_breaker_init(&b);
    record_n(&b, &rate50, 1, 2, 10000);
    record_n(&b, &rate50, 0, 1, 10000);
    record_n(&b, &rate50, 0, 3, 5000000);
    CHECK_INT(b.state, GYRE_BREAKER_CLOSED);
    unsigned ok = 0, failed = 0;
    for (size_t i = 0; i < GYRE_BREAKER_BUCKETS; i++) {
        ok += b.ok[i];
        failed += b.failed[i];
    }
    CHECK_INT(ok, 0);
    CHECK_INT(failed, 3);
}

TEST(breaker_error_rate_pct_0_disables_the_rate_rule)
{
    gyre_breaker_conf_t c = rate50;
    c.error_rate_pct = 0;
    c.min_requests = 1;
    gyre_breaker_t b;
    gyre_breaker_init(&b);
    record_n(&b, &c, 0, 50, 10000);
    CHECK_INT(b.state, GYRE_BREAKER_CLOSED);
}

TEST(breaker_open_refuses_until_the_cooldown_has_passed)
{
    gyre_breaker_t b;
    open_at(&b, 1000);
    CHECK_INT(gyre_breaker_available(&b, &consecutive3, 1499), 0);
    CHECK_INT(gyre_breaker_acquire(&b, &consecutive3, 1499), 0);
    CHECK_INT(b.state, GYRE_BREAKER_OPEN);
    CHECK_INT(gyre_breaker_available(&b, &consecutive3, 1500), 1);
    CHECK_INT(b.state, GYRE_BREAKER_OPEN); /* available() changes nothing */
}

TEST(breaker_after_cooldown_lets_exactly_one_probe_through)
{
    gyre_breaker_t b;
    open_at(&b, 1000);
    CHECK_INT(gyre_breaker_acquire(&b, &consecutive3, 1500), 1);
    CHECK_INT(b.state, GYRE_BREAKER_HALF_OPEN);
    CHECK_INT(b.probing, 1);
    CHECK_INT(gyre_breaker_available(&b, &consecutive3, 1501), 0);
    CHECK_INT(gyre_breaker_acquire(&b, &consecutive3, 1501), 0);
    CHECK_INT(gyre_breaker_acquire(&b, &consecutive3, 9000), 0);
}

TEST(breaker_probe_success_closes_with_every_counter_cleared)
{
    gyre_breaker_t b;
    open_at(&b, 1000);
    CHECK_INT(gyre_breaker_acquire(&b, &consecutive3, 1500), 1);
    gyre_breaker_record(&b, &consecutive3, 1, 1600);
    CHECK_INT(b.state, GYRE_BREAKER_CLOSED);
    CHECK_INT(b.probing, 0);
    CHECK_INT(b.consecutive_failures, 0);
    unsigned total = 0;
    for (size_t i = 0; i < GYRE_BREAKER_BUCKETS; i++)
        total += b.ok[i] + b.failed[i];
    CHECK_INT(total, 0);
    CHECK_INT(b.opens, 1);
    CHECK_INT(gyre_breaker_available(&b, &consecutive3, 1600), 1);
    /* It takes the full run of failures to open it again. */
    record_n(&b, &consecutive3, 0, 2, 1700);
    CHECK_INT(b.state, GYRE_BREAKER_CLOSED);
    gyre_breaker_record(&b, &consecutive3, 0, 1700);
    CHECK_INT(b.state, GYRE_BREAKER_OPEN);
    CHECK_INT(b.opens, 2);
}

TEST(breaker_probe_failure_reopens_for_a_fresh_cooldown)
{
    gyre_breaker_t b;
    open_at(&b, 1000);
    CHECK_INT(gyre_breaker_acquire(&b, &consecutive3, 1500), 1);
    gyre_breaker_record(&b, &consecutive3, 0, 1600);
    CHECK_INT(b.state, GYRE_BREAKER_OPEN);
    CHECK_INT(b.opened_at_ms, 1600);
    CHECK_INT(b.probing, 0);
    CHECK_INT(b.opens, 2);
    CHECK_INT(gyre_breaker_available(&b, &consecutive3, 2099), 0);
    CHECK_INT(gyre_breaker_available(&b, &consecutive3, 2100), 1);
}

TEST(breaker_release_frees_the_probe_slot_for_the_next_call)
{
    gyre_breaker_t b;
    open_at(&b, 1000);
    CHECK_INT(gyre_breaker_acquire(&b, &consecutive3, 1500), 1);
    gyre_breaker_release(&b);
    CHECK_INT(b.state, GYRE_BREAKER_HALF_OPEN);
    CHECK_INT(b.probing, 0);
    CHECK_INT(gyre_breaker_available(&b, &consecutive3, 1501), 1);
    CHECK_INT(gyre_breaker_acquire(&b, &consecutive3, 1501), 1);
    CHECK_INT(b.probing, 1);
    CHECK_INT(gyre_breaker_acquire(&b, &consecutive3, 1502), 0);
}

TEST(breaker_release_while_closed_changes_nothing)
{
    gyre_breaker_t b;
    gyre_breaker_init(&b);
    record_n(&b, &consecutive3, 0, 2, 1000);
    gyre_breaker_release(&b);
    CHECK_INT(b.state, GYRE_BREAKER_CLOSED);
    CHECK_INT(b.consecutive_failures, 2);
}

TEST(breaker_outcomes_arriving_while_open_are_dropped)
{
    gyre_breaker_t b;
    open_at(&b, 1000);
    gyre_breaker_record(&b, &consecutive3, 0, 1400);
    gyre_breaker_record(&b, &consecutive3, 1, 1450);
    CHECK_INT(b.state, GYRE_BREAKER_OPEN);
    CHECK_INT(b.opened_at_ms, 1000);
    CHECK_INT(b.opens, 1);
    CHECK_INT(gyre_breaker_available(&b, &consecutive3, 1500), 1);
}

TEST(breaker_with_failures_0_is_disabled)
{
    gyre_breaker_conf_t off = consecutive3;
    off.failures = 0;
    gyre_breaker_t b;
    gyre_breaker_init(&b);
    record_n(&b, &off, 0, 100, 1000);
    CHECK_INT(b.state, GYRE_BREAKER_CLOSED);
    CHECK_INT(b.opens, 0);
    CHECK_INT(gyre_breaker_available(&b, &off, 1000), 1);
    CHECK_INT(gyre_breaker_acquire(&b, &off, 1000), 1);
    CHECK_INT(gyre_breaker_acquire(&b, &off, 1000), 1);
}
