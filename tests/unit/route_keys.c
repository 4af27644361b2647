/*
 * src/route/keys.c: which key a provider's next call uses (round robin,
 * nginx's smooth weighted round robin, rendezvous affinity), the 429 rest,
 * breakers per key, the earliest usable time, the 64-bit hash and the
 * Retry-After header.
 */
#include "route/keys.h"

#include "common/buf.h"
#include "test.h"

#define LIT(s) s, sizeof(s) - 1

static char *ids[] = {"p#0", "p#1", "p#2", "p#3"};
static char *secrets[] = {"k0", "k1", "k2", "k3"};

/* A provider of n keys with the given weights, a 3-failure breaker and a 500 ms cooldown. */
static gyre_provider_conf_t provider(size_t n, unsigned *weights, gyre_key_strategy_t strategy)
{
    gyre_provider_conf_t p;
    memset(&p, 0, sizeof(p));
    p.name = "p";
    p.keys = n > 0 ? secrets : NULL;
    p.key_ids = n > 0 ? ids : NULL;
    p.key_weights = n > 0 ? weights : NULL;
    p.nkeys = n;
    p.key_strategy = strategy;
    p.breaker = (gyre_breaker_conf_t){.failures = 3, .error_rate_pct = 0, .window_ms = 10000, .cooldown_ms = 500};
    return p;
}

static unsigned ones[] = {1, 1, 1, 1};

/* --- round robin ------------------------------------------------------- */

TEST(keypool_without_keys_has_one_slot_with_a_breaker)
{
    gyre_provider_conf_t p = provider(0, NULL, GYRE_KEYS_ROUND_ROBIN);
    gyre_keypool_t kp;
    gyre_keypool_init(&kp, &p);
    CHECK_INT(kp.nkeys, 1);
    CHECK_INT(gyre_keypool_pick(&kp, 1000, 0, -1), 0);
    CHECK_INT(gyre_keypool_pick(&kp, 1000, 12345, -1), 0);
    for (int i = 0; i < 3; i++)
        gyre_keypool_record(&kp, 0, 0, 1000);
    CHECK_INT(kp.keys[0].breaker.state, GYRE_BREAKER_OPEN);
    CHECK_INT(gyre_keypool_pick(&kp, 1000, 0, -1), -1);
    gyre_keypool_dispose(&kp);
    CHECK(kp.keys == NULL);
}

TEST(keypool_round_robin_takes_the_keys_in_order)
{
    gyre_provider_conf_t p = provider(3, ones, GYRE_KEYS_ROUND_ROBIN);
    gyre_keypool_t kp;
    gyre_keypool_init(&kp, &p);
    int got[7];
    for (int i = 0; i < 7; i++)
        got[i] = gyre_keypool_pick(&kp, 1000, 0, -1);
    int want[7] = {0, 1, 2, 0, 1, 2, 0};
    for (int i = 0; i < 7; i++)
        CHECK_INT(got[i], want[i]);
    gyre_keypool_dispose(&kp);
}

TEST(keypool_round_robin_skips_a_cooling_key_and_takes_it_back_after)
{
    gyre_provider_conf_t p = provider(3, ones, GYRE_KEYS_ROUND_ROBIN);
    gyre_keypool_t kp;
    gyre_keypool_init(&kp, &p);
    CHECK_INT(gyre_keypool_pick(&kp, 1000, 0, -1), 0);
    gyre_keypool_cooldown(&kp, 1, 3000, 1000); /* a 429 on key 1, Retry-After: 2 */
    CHECK_INT(kp.keys[1].cooldown_until_ms, 3000);
    CHECK_INT(gyre_keypool_pick(&kp, 1000, 0, -1), 2);
    CHECK_INT(gyre_keypool_pick(&kp, 1000, 0, -1), 0);
    CHECK_INT(gyre_keypool_pick(&kp, 2999, 0, -1), 2);
    CHECK_INT(gyre_keypool_pick(&kp, 2999, 0, -1), 0);
    CHECK_INT(gyre_keypool_pick(&kp, 3000, 0, -1), 1);
    CHECK_INT(gyre_keypool_pick(&kp, 3000, 0, -1), 2);
    gyre_keypool_dispose(&kp);
}

TEST(keypool_skips_a_key_whose_breaker_is_open)
{
    gyre_provider_conf_t p = provider(2, ones, GYRE_KEYS_ROUND_ROBIN);
    gyre_keypool_t kp;
    gyre_keypool_init(&kp, &p);
    for (int i = 0; i < 3; i++)
        gyre_keypool_record(&kp, 0, 0, 1000);
    CHECK_INT(gyre_keypool_pick(&kp, 1000, 0, -1), 1);
    CHECK_INT(gyre_keypool_pick(&kp, 1000, 0, -1), 1);
    /* After the cooldown key 0 gets one probe, then is skipped while it is out. */
    CHECK_INT(gyre_keypool_pick(&kp, 1500, 0, -1), 0);
    CHECK_INT(kp.keys[0].breaker.state, GYRE_BREAKER_HALF_OPEN);
    CHECK_INT(gyre_keypool_pick(&kp, 1500, 0, -1), 1);
    CHECK_INT(gyre_keypool_pick(&kp, 1500, 0, -1), 1);
    gyre_keypool_record(&kp, 0, 1, 1600);
    CHECK_INT(kp.keys[0].breaker.state, GYRE_BREAKER_CLOSED);
    gyre_keypool_dispose(&kp);
}

TEST(keypool_release_gives_back_a_probe_slot)
{
    gyre_provider_conf_t p = provider(1, ones, GYRE_KEYS_ROUND_ROBIN);
    gyre_keypool_t kp;
    gyre_keypool_init(&kp, &p);
    for (int i = 0; i < 3; i++)
        gyre_keypool_record(&kp, 0, 0, 1000);
    CHECK_INT(gyre_keypool_pick(&kp, 1500, 0, -1), 0);
    CHECK_INT(gyre_keypool_pick(&kp, 1500, 0, -1), -1);
    gyre_keypool_release(&kp, 0);
    CHECK_INT(gyre_keypool_pick(&kp, 1500, 0, -1), 0);
    gyre_keypool_dispose(&kp);
}

TEST(keypool_exclude_avoids_the_key_that_just_failed_when_another_is_usable)
{
    gyre_provider_conf_t p = provider(2, ones, GYRE_KEYS_ROUND_ROBIN);
    gyre_keypool_t kp;
    gyre_keypool_init(&kp, &p);
    CHECK_INT(gyre_keypool_pick(&kp, 1000, 0, 0), 1);
    CHECK_INT(gyre_keypool_pick(&kp, 1000, 0, 0), 1);
    CHECK_INT(gyre_keypool_pick(&kp, 1000, 0, 1), 0);
    gyre_keypool_cooldown(&kp, 1, 5000, 1000);
    CHECK_INT(gyre_keypool_pick(&kp, 1000, 0, 0), 0); /* the only usable key, so it is used */
    gyre_keypool_dispose(&kp);
}

TEST(keypool_pick_is_minus_1_when_every_key_rests)
{
    gyre_provider_conf_t p = provider(2, ones, GYRE_KEYS_ROUND_ROBIN);
    gyre_keypool_t kp;
    gyre_keypool_init(&kp, &p);
    gyre_keypool_cooldown(&kp, 0, 5000, 1000);
    gyre_keypool_cooldown(&kp, 1, 4000, 1000);
    CHECK_INT(gyre_keypool_available(&kp, 1000), 0);
    CHECK_INT(gyre_keypool_pick(&kp, 1000, 0, -1), -1);
    CHECK_INT(gyre_keypool_pick(&kp, 1000, 99, -1), -1);
    CHECK_INT(gyre_keypool_available(&kp, 4000), 1);
    CHECK_INT(gyre_keypool_pick(&kp, 4000, 0, -1), 1);
    gyre_keypool_dispose(&kp);
}

/* --- weighted ---------------------------------------------------------- */

TEST(keypool_weighted_3_to_1_is_the_smooth_wrr_sequence)
{
    unsigned w[] = {3, 1};
    gyre_provider_conf_t p = provider(2, w, GYRE_KEYS_WEIGHTED);
    gyre_keypool_t kp;
    gyre_keypool_init(&kp, &p);
    int want[8] = {0, 0, 1, 0, 0, 0, 1, 0};
    for (int i = 0; i < 8; i++)
        CHECK_INT(gyre_keypool_pick(&kp, 1000, 0, -1), want[i]);
    gyre_keypool_dispose(&kp);
}

TEST(keypool_weighted_5_1_1_matches_nginx_a_a_b_a_c_a_a)
{
    unsigned w[] = {5, 1, 1};
    gyre_provider_conf_t p = provider(3, w, GYRE_KEYS_WEIGHTED);
    gyre_keypool_t kp;
    gyre_keypool_init(&kp, &p);
    int want[14] = {0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0};
    for (int i = 0; i < 14; i++)
        CHECK_INT(gyre_keypool_pick(&kp, 1000, 0, -1), want[i]);
    gyre_keypool_dispose(&kp);
}

TEST(keypool_weighted_skips_a_cooling_key)
{
    unsigned w[] = {3, 1};
    gyre_provider_conf_t p = provider(2, w, GYRE_KEYS_WEIGHTED);
    gyre_keypool_t kp;
    gyre_keypool_init(&kp, &p);
    gyre_keypool_cooldown(&kp, 0, 2000, 1000);
    for (int i = 0; i < 4; i++)
        CHECK_INT(gyre_keypool_pick(&kp, 1000, 0, -1), 1);
    gyre_keypool_dispose(&kp);
}

TEST(keypool_weight_0_key_is_a_standby_used_only_when_no_other_is_usable)
{
    unsigned w[] = {1, 0};
    gyre_provider_conf_t p = provider(2, w, GYRE_KEYS_WEIGHTED);
    gyre_keypool_t kp;
    gyre_keypool_init(&kp, &p);
    for (int i = 0; i < 3; i++)
        CHECK_INT(gyre_keypool_pick(&kp, 1000, 0, -1), 0);
    CHECK_INT(gyre_keypool_pick(&kp, 1000, 77, -1), 0);
    gyre_keypool_cooldown(&kp, 0, 2000, 1000);
    CHECK_INT(gyre_keypool_pick(&kp, 1000, 0, -1), 1);
    CHECK_INT(gyre_keypool_pick(&kp, 1000, 77, -1), 1);
    CHECK_INT(gyre_keypool_pick(&kp, 2000, 0, -1), 0);
    gyre_keypool_dispose(&kp);
}

/* --- affinity ---------------------------------------------------------- */

static uint64_t session(int n)
{
    char s[32];
    int len = snprintf(s, sizeof(s), "session-%d", n);
    return gyre_hash64(s, (size_t)len, 0);
}

TEST(keypool_affinity_keeps_a_session_on_one_key_on_every_worker)
{
    gyre_provider_conf_t p = provider(4, ones, GYRE_KEYS_ROUND_ROBIN);
    gyre_keypool_t w1, w2;
    gyre_keypool_init(&w1, &p);
    gyre_keypool_init(&w2, &p);
    /* Worker 2 has served other traffic first: affinity must not depend on that. */
    for (int i = 0; i < 5; i++)
        gyre_keypool_pick(&w2, 1000, 0, -1);
    for (int s = 0; s < 50; s++) {
        int first = gyre_keypool_pick(&w1, 1000, session(s), -1);
        CHECK(first >= 0);
        for (int i = 0; i < 5; i++)
            CHECK_INT(gyre_keypool_pick(&w1, 1000, session(s), -1), first);
        CHECK_INT(gyre_keypool_pick(&w2, 1000, session(s), -1), first);
    }
    gyre_keypool_dispose(&w1);
    gyre_keypool_dispose(&w2);
}

TEST(keypool_affinity_moves_only_while_its_key_is_unusable_and_comes_back)
{
    gyre_provider_conf_t p = provider(3, ones, GYRE_KEYS_ROUND_ROBIN);
    gyre_keypool_t kp;
    gyre_keypool_init(&kp, &p);
    uint64_t a = session(7);
    int home = gyre_keypool_pick(&kp, 1000, a, -1);
    CHECK(home >= 0);
    gyre_keypool_cooldown(&kp, home, 2000, 1000);
    int away = gyre_keypool_pick(&kp, 1000, a, -1);
    CHECK(away >= 0);
    CHECK(away != home);
    CHECK_INT(gyre_keypool_pick(&kp, 1500, a, -1), away);
    CHECK_INT(gyre_keypool_pick(&kp, 2000, a, -1), home);
    /* exclude moves it too, for one call */
    int other = gyre_keypool_pick(&kp, 2000, a, home);
    CHECK(other != home && other >= 0);
    CHECK_INT(gyre_keypool_pick(&kp, 2000, a, -1), home);
    gyre_keypool_dispose(&kp);
}

TEST(keypool_affinity_losing_a_key_moves_only_that_keys_sessions)
{
    gyre_provider_conf_t p = provider(4, ones, GYRE_KEYS_ROUND_ROBIN);
    gyre_keypool_t kp;
    gyre_keypool_init(&kp, &p);
    int before[400];
    for (int s = 0; s < 400; s++)
        before[s] = gyre_keypool_pick(&kp, 1000, session(s), -1);
    gyre_keypool_cooldown(&kp, 2, 9000, 1000);
    int moved = 0;
    for (int s = 0; s < 400; s++) {
        int now = gyre_keypool_pick(&kp, 1000, session(s), -1);
        CHECK(now != 2);
        if (before[s] != 2)
            CHECK_INT(now, before[s]);
        else
            moved++;
    }
    CHECK(moved > 0);
    gyre_keypool_dispose(&kp);
}

TEST(keypool_affinity_spreads_sessions_by_weight_within_5_percent)
{
    unsigned w[] = {3, 1};
    gyre_provider_conf_t p = provider(2, w, GYRE_KEYS_WEIGHTED);
    gyre_keypool_t kp;
    gyre_keypool_init(&kp, &p);
    int on0 = 0;
    for (int s = 0; s < 8000; s++)
        on0 += gyre_keypool_pick(&kp, 1000, session(s), -1) == 0;
    CHECK(on0 >= 5700 && on0 <= 6300); /* 75% of 8000 = 6000 */
    gyre_keypool_dispose(&kp);

    gyre_provider_conf_t q = provider(4, ones, GYRE_KEYS_ROUND_ROBIN);
    gyre_keypool_init(&kp, &q);
    int count[4] = {0};
    for (int s = 0; s < 8000; s++)
        count[gyre_keypool_pick(&kp, 1000, session(s), -1)]++;
    for (int i = 0; i < 4; i++)
        CHECK(count[i] >= 1900 && count[i] <= 2100);
    gyre_keypool_dispose(&kp);
}

/* --- 429 rests, next usable time ---------------------------------------- */

TEST(keypool_429_without_retry_after_rests_the_key_1000_ms_and_counts_a_failure)
{
    gyre_provider_conf_t p = provider(2, ones, GYRE_KEYS_ROUND_ROBIN);
    gyre_keypool_t kp;
    gyre_keypool_init(&kp, &p);
    gyre_keypool_cooldown(&kp, 0, 0, 5000);
    CHECK_INT(kp.keys[0].cooldown_until_ms, 6000);
    CHECK_INT(kp.keys[0].breaker.consecutive_failures, 1);
    gyre_keypool_cooldown(&kp, 1, 4000, 5000); /* a time already past counts as none given */
    CHECK_INT(kp.keys[1].cooldown_until_ms, 6000);
    gyre_keypool_dispose(&kp);
}

TEST(keypool_429_rest_is_capped_at_five_minutes_and_never_shortened)
{
    gyre_provider_conf_t p = provider(1, ones, GYRE_KEYS_ROUND_ROBIN);
    gyre_keypool_t kp;
    gyre_keypool_init(&kp, &p);
    gyre_keypool_cooldown(&kp, 0, 1000 + 3600000, 1000);
    CHECK_INT(kp.keys[0].cooldown_until_ms, 1000 + 300000);
    gyre_keypool_cooldown(&kp, 0, 2000, 1500);
    CHECK_INT(kp.keys[0].cooldown_until_ms, 1000 + 300000);
    gyre_keypool_dispose(&kp);
}

TEST(keypool_out_of_range_index_is_ignored)
{
    gyre_provider_conf_t p = provider(1, ones, GYRE_KEYS_ROUND_ROBIN);
    gyre_keypool_t kp;
    gyre_keypool_init(&kp, &p);
    gyre_keypool_cooldown(&kp, 1, 5000, 1000);
    gyre_keypool_cooldown(&kp, -1, 5000, 1000);
    gyre_keypool_record(&kp, 7, 0, 1000);
    gyre_keypool_release(&kp, -1);
    CHECK_INT(gyre_keypool_pick(&kp, 1000, 0, -1), 0);
    CHECK_INT(kp.keys[0].breaker.consecutive_failures, 0);
    gyre_keypool_dispose(&kp);
}

TEST(keypool_next_usable_is_0_while_a_key_is_usable)
{
    gyre_provider_conf_t p = provider(2, ones, GYRE_KEYS_ROUND_ROBIN);
    gyre_keypool_t kp;
    gyre_keypool_init(&kp, &p);
    CHECK_INT(gyre_keypool_next_usable_ms(&kp, 1000), 0);
    gyre_keypool_cooldown(&kp, 0, 3000, 1000);
    CHECK_INT(gyre_keypool_next_usable_ms(&kp, 1000), 0);
    gyre_keypool_dispose(&kp);
}

TEST(keypool_next_usable_is_the_earliest_end_of_a_rest_or_a_breaker_cooldown)
{
    gyre_provider_conf_t p = provider(3, ones, GYRE_KEYS_ROUND_ROBIN);
    gyre_keypool_t kp;
    gyre_keypool_init(&kp, &p);
    gyre_keypool_cooldown(&kp, 0, 9000, 1000);
    gyre_keypool_cooldown(&kp, 1, 7000, 1000);
    for (int i = 0; i < 3; i++)
        gyre_keypool_record(&kp, 2, 0, 1000); /* open: usable again at 1500 */
    CHECK_INT(gyre_keypool_next_usable_ms(&kp, 1200), 1500);
    CHECK_INT(gyre_keypool_pick(&kp, 1500, 0, -1), 2);       /* the probe */
    CHECK_INT(gyre_keypool_next_usable_ms(&kp, 1600), 1601); /* probe out: any moment */
    gyre_keypool_record(&kp, 2, 0, 1700);                    /* probe failed: open until 2200 */
    CHECK_INT(gyre_keypool_next_usable_ms(&kp, 1800), 2200);
    gyre_keypool_dispose(&kp);
}

TEST(keypool_next_usable_waits_for_both_the_rest_and_the_breaker)
{
    gyre_provider_conf_t p = provider(1, ones, GYRE_KEYS_ROUND_ROBIN);
    gyre_keypool_t kp;
    gyre_keypool_init(&kp, &p);
    gyre_keypool_record(&kp, 0, 0, 1000);
    gyre_keypool_record(&kp, 0, 0, 1000);
    gyre_keypool_cooldown(&kp, 0, 1200, 1000); /* third failure: open until 1500; rest until 1200 */
    CHECK_INT(kp.keys[0].breaker.state, GYRE_BREAKER_OPEN);
    CHECK_INT(gyre_keypool_next_usable_ms(&kp, 1100), 1500);
    gyre_keypool_dispose(&kp);
}

/* --- hash --------------------------------------------------------------- */

TEST(hash64_is_fnv1a_from_the_seed_then_splitmix64)
{
    /* Values from an independent implementation of the same definition. */
    CHECK(gyre_hash64("", 0, 0) == 0xf52a15e9a9b5e89bULL);
    CHECK(gyre_hash64("abc", 3, 0) == 0x9ddd0b206061ad94ULL);
    CHECK(gyre_hash64("abc", 3, 1) == 0xe89aadab05c6f266ULL);
    CHECK(gyre_hash64("session-42", 10, 7) == 0x32c79db81a89b961ULL);
}

TEST(hash64_reads_only_the_given_length)
{
    CHECK(gyre_hash64("abcdef", 3, 0) == gyre_hash64("abc", 3, 0));
    CHECK(gyre_hash64("abc", 3, 0) != gyre_hash64("abc\0", 4, 0));
}

/* --- Retry-After --------------------------------------------------------- */

static uint64_t ra(const char *s, long long now)
{
    return gyre_retry_after_ms(s, strlen(s), now);
}

TEST(retry_after_delta_seconds_is_milliseconds_from_now)
{
    CHECK_INT(ra("120", 0), 120000);
    CHECK_INT(ra("1", 0), 1000);
    CHECK_INT(ra(" 7\t", 0), 7000);
}

TEST(retry_after_fractional_seconds_round_up_to_the_millisecond)
{
    CHECK_INT(ra("1.5", 0), 1500);
    CHECK_INT(ra("0.25", 0), 250);
    CHECK_INT(ra("1.2345", 0), 1235);
    CHECK_INT(ra("0.0001", 0), 1);
    CHECK_INT(ra("2.000", 0), 2000);
}

TEST(retry_after_unreadable_or_zero_is_0)
{
    CHECK_INT(ra("", 0), 0);
    CHECK_INT(ra("   ", 0), 0);
    CHECK_INT(ra("0", 0), 0);
    CHECK_INT(ra("-1", 0), 0);
    CHECK_INT(ra("1.", 0), 0);
    CHECK_INT(ra(".5", 0), 0);
    CHECK_INT(ra("1.5s", 0), 0);
    CHECK_INT(ra("1 2", 0), 0);
    CHECK_INT(ra("soon", 0), 0);
    CHECK_INT(gyre_retry_after_ms(NULL, 0, 0), 0);
}

TEST(retry_after_is_read_over_the_given_length_only)
{
    CHECK_INT(gyre_retry_after_ms("30junk", 2, 0), 30000);
}

TEST(retry_after_huge_values_saturate_at_one_day)
{
    CHECK_INT(ra("99999999999999999999999", 0), 86400000);
    CHECK_INT(ra("86401", 0), 86400000);
    CHECK_INT(ra("86399", 0), 86399000);
}

/* Sun, 06 Nov 1994 08:49:37 GMT is 784111777 seconds after the epoch. */
TEST(retry_after_imf_fixdate_is_the_time_until_that_date)
{
    CHECK_INT(ra("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 - 30), 30000);
    CHECK_INT(ra("Tue, 01 Dec 2026 00:00:05 GMT", 1796083200), 5000);
}

TEST(retry_after_rfc850_and_asctime_dates_are_read_too)
{
    CHECK_INT(ra("Sunday, 06-Nov-94 08:49:37 GMT", 784111777 - 30), 30000);
    CHECK_INT(ra("Sun Nov  6 08:49:37 1994", 784111777 - 30), 30000);
    CHECK_INT(ra("Sun Nov 16 08:49:37 1994", 784111777 + 10 * 86400 - 2), 2000);
}

TEST(retry_after_date_in_the_past_or_malformed_is_0)
{
    CHECK_INT(ra("Sun, 06 Nov 1994 08:49:37 GMT", 784111777), 0);
    CHECK_INT(ra("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 + 5), 0);
    CHECK_INT(ra("Sun, 06 Nov 1994 08:49:37 UTC", 0), 0);
    CHECK_INT(ra("Sun, 06 Foo 1994 08:49:37 GMT", 0), 0);
    CHECK_INT(ra("Sun, 32 Nov 1994 08:49:37 GMT", 0), 0);
    CHECK_INT(ra("Sun, 06 Nov 1994 24:00:00 GMT", 0), 0);
    CHECK_INT(ra("Sun, 6 Nov 1994 08:49:37 GMT", 0), 0);
    CHECK_INT(ra("Sun, 06 Nov 1994 08:49:37 GMT x", 0), 0);
}

TEST(retry_after_far_future_date_saturates_at_one_day)
{
    CHECK_INT(ra("Tue, 08 Dec 2026 00:00:00 GMT", 1796083200), 86400000);
}

/* --- scrubbing the provider's own secrets ------------------------------- */

static char *scrub_secrets[] = {"sk-test-123456789", "sk-test-1234", "AKIDEXAMPLE1:wJalrXUtnFEMIsecret:tok3n-session"};

static gyre_provider_conf_t scrub_provider(size_t n)
{
    gyre_provider_conf_t p;
    memset(&p, 0, sizeof(p));
    p.name = "p";
    p.keys = scrub_secrets;
    p.nkeys = n;
    return p;
}

static size_t scrub(const gyre_provider_conf_t *p, const char *text, gyre_buf_t *b)
{
    gyre_buf_init(b, 4096);
    gyre_buf_appends(b, text);
    return gyre_keys_scrub(p, b);
}

TEST(keys_scrub_replaces_every_occurrence_of_a_key_echoed_in_an_error_body)
{
    gyre_provider_conf_t p = scrub_provider(1);
    gyre_buf_t b;
    CHECK_INT(
        scrub(&p, "{\"error\":{\"message\":\"Authorization: Bearer sk-test-123456789, again sk-test-123456789\"}}", &b),
        2);
    CHECK_STR(b.base, "{\"error\":{\"message\":\"Authorization: Bearer [REDACTED:provider_key], again "
                      "[REDACTED:provider_key]\"}}");
    gyre_buf_dispose(&b);
}

TEST(keys_scrub_prefers_the_longest_key_that_matches)
{
    gyre_provider_conf_t p = scrub_provider(2);
    gyre_buf_t b;
    CHECK_INT(scrub(&p, "x sk-test-123456789 y sk-test-1234 z", &b), 2);
    CHECK_STR(b.base, "x [REDACTED:provider_key] y [REDACTED:provider_key] z");
    gyre_buf_dispose(&b);
}

TEST(keys_scrub_replaces_each_part_of_a_bedrock_key_and_the_key_whole)
{
    static char *bedrock[] = {"AKIDEXAMPLE1:wJalrXUtnFEMIsecret:tok3n-session"};
    gyre_provider_conf_t p = scrub_provider(0);
    p.keys = bedrock;
    p.nkeys = 1;
    gyre_buf_t b;
    CHECK_INT(scrub(&p,
                    "Credential=AKIDEXAMPLE1/2024 secret=wJalrXUtnFEMIsecret token=tok3n-session "
                    "all=AKIDEXAMPLE1:wJalrXUtnFEMIsecret:tok3n-session",
                    &b),
              4);
    CHECK_STR(b.base, "Credential=[REDACTED:provider_key]/2024 secret=[REDACTED:provider_key] "
                      "token=[REDACTED:provider_key] all=[REDACTED:provider_key]");
    gyre_buf_dispose(&b);
}

TEST(keys_scrub_leaves_text_without_a_key_untouched_and_skips_keys_under_8_bytes)
{
    static char *short_key[] = {"k0"};
    gyre_provider_conf_t p = scrub_provider(1);
    gyre_buf_t b;
    CHECK_INT(scrub(&p, "sk-test-12345678 is not the key: it differs in its last byte", &b), 0);
    CHECK_STR(b.base, "sk-test-12345678 is not the key: it differs in its last byte");
    gyre_buf_dispose(&b);
    p.keys = short_key;
    CHECK_INT(scrub(&p, "k0k0", &b), 0);
    CHECK_STR(b.base, "k0k0");
    gyre_buf_dispose(&b);
}

TEST(keys_scrub_grows_past_the_buffer_maximum_when_markers_are_longer_than_keys)
{
    static char *eight[] = {"12345678"};
    gyre_provider_conf_t p = scrub_provider(1);
    p.keys = eight;
    gyre_buf_t b;
    gyre_buf_init(&b, 16);
    gyre_buf_appends(&b, "1234567812345678");
    CHECK_INT(gyre_keys_scrub(&p, &b), 2);
    CHECK_STR(b.base, "[REDACTED:provider_key][REDACTED:provider_key]");
    gyre_buf_dispose(&b);
}
