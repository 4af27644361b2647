/*
 * src/control/limits.c and limits_local.c: requests and tokens per minute at
 * their window's edges, tokens reserved then settled, nested levels admitted
 * all or nothing, budgets reserved, settled and expired, soft budgets'
 * thresholds notified once each per period, live changes that keep the
 * counters, and many threads at once, all with exact counts and an injected
 * clock.
 */
#include "control/limits.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "config_test.h"
#include "test.h"

/* 2026-12-07 12:00:00 UTC, a Monday. */
#define T0 ((int64_t)1796644800 * 1000000)
#define SEC ((int64_t)1000000)

static int64_t now_us = T0;
static int64_t test_clock(void *arg)
{
    (void)arg;
    return now_us;
}

static gyre_limits_t *make(const char *yaml, gyre_config_t **cfg)
{
    gyre_config_errors_t errs = {0};
    *cfg = parse(yaml, &errs);
    if (*cfg == NULL) {
        for (size_t i = 0; i < errs.count; i++)
            fprintf(stderr, "  %s\n", errs.items[i]);
        gyre_config_errors_dispose(&errs);
        return NULL;
    }
    gyre_limits_t *l = gyre_limits_create(*cfg);
    gyre_limits_set_clock(l, test_clock, NULL);
    now_us = T0;
    return l;
}

static gyre_limit_ask_t ask_of(const char *key, const char *team, const char *agent, const char *user, uint64_t tokens,
                               int64_t cost_nusd)
{
    gyre_limit_ask_t a;
    memset(&a, 0, sizeof(a));
    a.ids[GYRE_LIMIT_KEY] = key;
    a.ids[GYRE_LIMIT_TEAM] = team;
    a.ids[GYRE_LIMIT_AGENT] = agent;
    a.ids[GYRE_LIMIT_USER] = user;
    a.tokens = tokens;
    a.cost_nusd = cost_nusd;
    return a;
}

/* How many of `n` requests, made at once, are admitted. */
static int admit_n(gyre_limits_t *l, const gyre_limit_ask_t *a, int n, gyre_limit_refusal_t *last_why)
{
    int ok = 0;
    for (int i = 0; i < n; i++) {
        gyre_limit_hold_t h;
        gyre_limit_status_t st;
        if (gyre_limits_reserve(l, a, &h, last_why, &st) == 0)
            ok++;
    }
    return ok;
}

#define LIMITS_PREFIX PROVIDER_P "limits:\n"

TEST(limits_rpm_admits_exactly_its_limit_at_once_then_one_more_per_interval)
{
    gyre_config_t *c;
    gyre_limits_t *l = make(LIMITS_PREFIX "  keys: {svc-a: {rpm: 10}}\n", &c);
    gyre_limit_ask_t a = ask_of("svc-a", NULL, NULL, NULL, 0, 0);
    gyre_limit_refusal_t why;
    CHECK_INT(admit_n(l, &a, 15, &why), 10);
    CHECK_INT(why.level, GYRE_LIMIT_KEY);
    CHECK_INT(why.kind, GYRE_LIMIT_RPM);
    CHECK_INT(why.retry_us, 6 * SEC); /* one request frees every 60/10 s */
    char msg[256];
    gyre_limits_describe(&why, msg, sizeof(msg));
    CHECK_STR(msg, "rate limit of 10 requests per minute for key svc-a reached; resets in 6 s");
    /* The window's edge: one microsecond before the next request frees, still refused; at it, one passes. */
    now_us = T0 + 6 * SEC - 1;
    CHECK_INT(admit_n(l, &a, 1, &why), 0);
    CHECK_INT(why.retry_us, 1);
    now_us = T0 + 6 * SEC;
    CHECK_INT(admit_n(l, &a, 2, &why), 1);
    /* A whole minute later the bucket is full again: 10 more, not 11. */
    now_us = T0 + 66 * SEC;
    CHECK_INT(admit_n(l, &a, 11, &why), 10);
    /* Another key has its own counters (no rule for it: not limited at all). */
    gyre_limit_ask_t b = ask_of("svc-b", NULL, NULL, NULL, 0, 0);
    CHECK_INT(admit_n(l, &b, 100, &why), 100);
    gyre_limits_destroy(l);
    gyre_config_free(c);
}

TEST(limits_key_status_gives_openai_headers_values)
{
    gyre_config_t *c;
    gyre_limits_t *l = make(LIMITS_PREFIX "  default: {rpm: 60, tpm: 1000}\n", &c);
    gyre_limit_ask_t a = ask_of("", NULL, NULL, NULL, 100, 0);
    gyre_limit_hold_t h;
    gyre_limit_refusal_t why;
    gyre_limit_status_t st;
    CHECK_INT(gyre_limits_reserve(l, &a, &h, &why, &st), 0);
    CHECK_INT(st.has_rpm, 1);
    CHECK_INT(st.rpm, 60);
    CHECK_INT(st.rpm_remaining, 59);
    CHECK_INT(st.rpm_reset_us, 1 * SEC);
    CHECK_INT(st.tpm, 1000);
    CHECK_INT(st.tpm_remaining, 900);
    CHECK_INT(st.tpm_reset_us, 6 * SEC);
    char v[32];
    gyre_limits_format_reset(st.tpm_reset_us, v, sizeof(v));
    CHECK_STR(v, "6s");
    gyre_limits_format_reset(360 * SEC, v, sizeof(v));
    CHECK_STR(v, "6m0s");
    gyre_limits_format_reset(8640000, v, sizeof(v));
    CHECK_STR(v, "8.64s");
    gyre_limits_format_reset(20000, v, sizeof(v));
    CHECK_STR(v, "20ms");
    gyre_limits_format_reset(3723 * SEC, v, sizeof(v));
    CHECK_STR(v, "1h2m3s");
    gyre_limits_format_reset(0, v, sizeof(v));
    CHECK_STR(v, "0s");
    gyre_limits_destroy(l);
    gyre_config_free(c);
}

TEST(limits_tpm_reserves_the_estimate_and_settles_to_the_real_usage)
{
    gyre_config_t *c;
    gyre_limits_t *l = make(LIMITS_PREFIX "  keys: {k: {tpm: 1000}}\n", &c);
    gyre_limit_ask_t a = ask_of("k", NULL, NULL, NULL, 400, 0);
    gyre_limit_hold_t h1, h2, h3;
    gyre_limit_refusal_t why;
    gyre_limit_status_t st;
    CHECK_INT(gyre_limits_reserve(l, &a, &h1, &why, &st), 0);
    CHECK_INT(gyre_limits_reserve(l, &a, &h2, &why, &st), 0);
    /* 800 reserved: a third 400 does not fit. */
    CHECK_INT(gyre_limits_reserve(l, &a, &h3, &why, &st), -EAGAIN);
    CHECK_INT(why.kind, GYRE_LIMIT_TPM);
    CHECK_INT(why.too_large, 0);
    CHECK_INT(why.retry_us, 12 * SEC); /* 200 tokens at 1000 a minute */
    /* The first used 100: 300 come back, and now it fits. */
    gyre_limits_settle(l, &a, &h1, 100, 0);
    gyre_limit_usage_t u;
    CHECK_INT(gyre_limits_usage(l, GYRE_LIMIT_KEY, "k", &u), 0);
    CHECK_INT(u.tokens_in_window, 500);
    CHECK_INT(gyre_limits_reserve(l, &a, &h3, &why, &st), 0);
    CHECK_INT(st.tpm_remaining, 100);
    /* Settled twice, a hold counts once. */
    gyre_limits_settle(l, &a, &h1, 0, 0);
    CHECK_INT(gyre_limits_usage(l, GYRE_LIMIT_KEY, "k", &u), 0);
    CHECK_INT(u.tokens_in_window, 900);
    /* Used more than reserved: the bucket takes the difference. */
    gyre_limits_settle(l, &a, &h2, 500, 0);
    CHECK_INT(gyre_limits_usage(l, GYRE_LIMIT_KEY, "k", &u), 0);
    CHECK_INT(u.tokens_in_window, 1000);
    /* A request whose estimate alone is over the limit is refused as too large, whatever the bucket holds. */
    now_us += 3600 * SEC;
    gyre_limit_ask_t big = ask_of("k", NULL, NULL, NULL, 1001, 0);
    CHECK_INT(gyre_limits_reserve(l, &big, &h3, &why, &st), -EAGAIN);
    CHECK_INT(why.too_large, 1);
    gyre_limits_destroy(l);
    gyre_config_free(c);
}

TEST(limits_nested_levels_admit_all_or_nothing)
{
    gyre_config_t *c;
    gyre_limits_t *l = make(LIMITS_PREFIX "  keys: {k: {rpm: 100, concurrency: 10}}\n"
                                          "  teams: {t: {rpm: 100}}\n"
                                          "  agents: {planner: {rpm: 100}}\n"
                                          "  users: {\"*\": {rpm: 3}}\n",
                            &c);
    gyre_limit_ask_t alice = ask_of("k", "t", "planner", "alice", 0, 0);
    gyre_limit_ask_t bob = ask_of("k", "t", "planner", "bob", 0, 0);
    gyre_limit_refusal_t why;
    /* Each user their own 3. */
    CHECK_INT(admit_n(l, &alice, 5, &why), 3);
    CHECK_INT(why.level, GYRE_LIMIT_USER);
    CHECK_STR(why.id, "alice");
    CHECK_INT(admit_n(l, &bob, 5, &why), 3);
    /* The user level refused 4 requests: the key, team and agent counted only the 6 that passed. */
    gyre_limit_usage_t u;
    CHECK_INT(gyre_limits_usage(l, GYRE_LIMIT_KEY, "k", &u), 0);
    CHECK_INT(u.requests_in_window, 6);
    CHECK_INT(u.inflight, 6);
    CHECK_INT(gyre_limits_usage(l, GYRE_LIMIT_TEAM, "t", &u), 0);
    CHECK_INT(u.requests_in_window, 6);
    CHECK_INT(gyre_limits_usage(l, GYRE_LIMIT_AGENT, "planner", &u), 0);
    CHECK_INT(u.requests_in_window, 6);
    CHECK_INT(gyre_limits_usage(l, GYRE_LIMIT_USER, "alice", &u), 0);
    CHECK_INT(u.requests_in_window, 3);
    /* A level above refusing takes nothing from the ones below it: 4 more in flight fill the key's 10. */
    gyre_limit_ask_t carol = ask_of("k", "t", "planner", "carol", 0, 0), dave = ask_of("k", "t", "planner", "dave", 0, 0);
    CHECK_INT(admit_n(l, &carol, 3, &why), 3);
    CHECK_INT(admit_n(l, &dave, 2, &why), 1);
    CHECK_INT(why.level, GYRE_LIMIT_KEY);
    CHECK_INT(why.kind, GYRE_LIMIT_CONCURRENCY);
    CHECK_INT(gyre_limits_usage(l, GYRE_LIMIT_USER, "dave", &u), 0);
    CHECK_INT(u.requests_in_window, 1);
    CHECK_INT(u.inflight, 1);
    CHECK_INT(gyre_limits_usage(l, GYRE_LIMIT_TEAM, "t", &u), 0);
    CHECK_INT(u.requests_in_window, 10);
    /* A request without a team, an agent or a user is held to its key's limits only. */
    gyre_limit_ask_t bare = ask_of("k", NULL, "", NULL, 0, 0);
    CHECK_INT(admit_n(l, &bare, 1, &why), 0);
    CHECK_INT(why.kind, GYRE_LIMIT_CONCURRENCY);
    gyre_limits_destroy(l);
    gyre_config_free(c);
}

TEST(limits_concurrency_slots_come_back_at_settle)
{
    gyre_config_t *c;
    gyre_limits_t *l = make(LIMITS_PREFIX "  keys: {k: {concurrency: 2}}\n", &c);
    gyre_limit_ask_t a = ask_of("k", NULL, NULL, NULL, 0, 0);
    gyre_limit_hold_t h[3];
    gyre_limit_refusal_t why;
    gyre_limit_status_t st;
    CHECK_INT(gyre_limits_reserve(l, &a, &h[0], &why, &st), 0);
    CHECK_INT(gyre_limits_reserve(l, &a, &h[1], &why, &st), 0);
    CHECK_INT(gyre_limits_reserve(l, &a, &h[2], &why, &st), -EAGAIN);
    char msg[256];
    gyre_limits_describe(&why, msg, sizeof(msg));
    CHECK_STR(msg, "concurrency limit of 2 requests in flight for key k reached; retry when one ends");
    gyre_limits_settle(l, &a, &h[0], 0, 0);
    CHECK_INT(gyre_limits_reserve(l, &a, &h[2], &why, &st), 0);
    CHECK_INT(gyre_limits_reserve(l, &a, &h[0], &why, &st), -EAGAIN);
    gyre_limits_destroy(l);
    gyre_config_free(c);
}

TEST(limits_budget_refuses_the_request_that_would_exceed_it_and_counts_spend_exactly)
{
    gyre_config_t *c;
    gyre_limits_t *l = make(LIMITS_PREFIX "  keys: {k: {budget_usd: 1, budget_period: day}}\n", &c);
    /* Each request reserves $0.30: three fit in $1, the fourth would exceed it. */
    gyre_limit_ask_t a = ask_of("k", NULL, NULL, NULL, 0, 300000000);
    gyre_limit_hold_t h[4];
    gyre_limit_refusal_t why;
    gyre_limit_status_t st;
    for (int i = 0; i < 3; i++)
        CHECK_INT(gyre_limits_reserve(l, &a, &h[i], &why, &st), 0);
    CHECK_INT(gyre_limits_reserve(l, &a, &h[3], &why, &st), -EAGAIN);
    CHECK_INT(why.kind, GYRE_LIMIT_BUDGET);
    CHECK_INT(why.retry_us, 12 * 3600 * SEC); /* until 00:00 UTC */
    char msg[256];
    gyre_limits_describe(&why, msg, sizeof(msg));
    CHECK_STR(msg, "budget of $1.00 per day (UTC) for key k reached; resets in 43200 s");
    /* They cost $0.10 each in the end: $0.70 is left, two more fit ($0.10 + 0.30 + 0.30 = 0.70 reserved). */
    for (int i = 0; i < 3; i++)
        gyre_limits_settle(l, &a, &h[i], 0, 100000000);
    gyre_limit_usage_t u;
    CHECK_INT(gyre_limits_usage(l, GYRE_LIMIT_KEY, "k", &u), 0);
    CHECK_INT(u.spent_nusd, 300000000);
    CHECK_INT(u.reserved_nusd, 0);
    CHECK_INT(u.inflight, 0);
    CHECK_INT(admit_n(l, &a, 3, &why), 2);
    /* The next day starts at 0. */
    now_us = T0 + 12 * 3600 * SEC;
    CHECK_INT(gyre_limits_usage(l, GYRE_LIMIT_KEY, "k", &u), 0);
    CHECK_INT(u.spent_nusd, 0);
    CHECK_INT(u.period_start_us, T0 + 12 * 3600 * SEC);
    gyre_limits_destroy(l);
    gyre_config_free(c);
}

TEST(limits_an_unsettled_reservation_expires_between_ttl_and_nine_eighths_of_it)
{
    gyre_config_t *c;
    gyre_limits_t *l =
        make(LIMITS_PREFIX "  reservation_ttl: 80s\n  keys: {k: {budget_usd: 1, budget_period: day, concurrency: 1}}\n",
             &c);
    gyre_limit_ask_t a = ask_of("k", NULL, NULL, NULL, 0, 1000000000);
    gyre_limit_hold_t h1, h2;
    gyre_limit_refusal_t why;
    gyre_limit_status_t st;
    /* T0 is on a 10 s slice's edge: the reservation is made at the start of its slice, and lives 80 to 90 s. */
    CHECK_INT(gyre_limits_reserve(l, &a, &h1, &why, &st), 0);
    now_us = T0 + 80 * SEC - 1;
    CHECK_INT(gyre_limits_reserve(l, &a, &h2, &why, &st), -EAGAIN);
    CHECK_INT(why.kind, GYRE_LIMIT_CONCURRENCY);
    now_us = T0 + 90 * SEC - 1;
    CHECK_INT(gyre_limits_reserve(l, &a, &h2, &why, &st), -EAGAIN);
    now_us = T0 + 90 * SEC;
    gyre_limit_usage_t u;
    CHECK_INT(gyre_limits_usage(l, GYRE_LIMIT_KEY, "k", &u), 0);
    CHECK_INT(u.inflight, 0);
    CHECK_INT(u.reserved_nusd, 0);
    CHECK_INT(gyre_limits_reserve(l, &a, &h2, &why, &st), 0);
    /* The late settle of the expired one charges its spend, and gives back nothing of the live one's. */
    gyre_limits_settle(l, &a, &h1, 0, 250000000);
    CHECK_INT(gyre_limits_usage(l, GYRE_LIMIT_KEY, "k", &u), 0);
    CHECK_INT(u.inflight, 1);
    CHECK_INT(u.reserved_nusd, 1000000000);
    CHECK_INT(u.spent_nusd, 250000000);
    gyre_limits_destroy(l);
    gyre_config_free(c);
}

TEST(limits_budget_overshoot_is_bounded_by_what_is_in_flight)
{
    /* 64 requests at once against $1 with $0.10 reserved each: exactly 10 are admitted.  Each then costs $0.25
     * (its estimate was low): the spend is 10 x 0.25 = $2.50, an overshoot of $1.50, which is exactly the bound
     * docs/limits.md states: the sum over admitted requests of what each cost beyond its reservation. */
    gyre_config_t *c;
    gyre_limits_t *l = make(LIMITS_PREFIX "  keys: {k: {budget_usd: 1, budget_period: month}}\n", &c);
    gyre_limit_ask_t a = ask_of("k", NULL, NULL, NULL, 0, 100000000);
    gyre_limit_hold_t h[64];
    gyre_limit_refusal_t why;
    gyre_limit_status_t st;
    int admitted = 0;
    for (int i = 0; i < 64; i++)
        admitted += gyre_limits_reserve(l, &a, &h[i], &why, &st) == 0;
    CHECK_INT(admitted, 10);
    for (int i = 0; i < 64; i++)
        gyre_limits_settle(l, &a, &h[i], 0, 250000000);
    gyre_limit_usage_t u;
    CHECK_INT(gyre_limits_usage(l, GYRE_LIMIT_KEY, "k", &u), 0);
    CHECK_INT(u.spent_nusd, 2500000000);
    /* Spent past the budget: nothing more, not even a request estimated at 0. */
    gyre_limit_ask_t zero = ask_of("k", NULL, NULL, NULL, 0, 0);
    CHECK_INT(admit_n(l, &zero, 1, &why), 0);
    gyre_limits_destroy(l);
    gyre_config_free(c);
}

static int nsent;
static char sent[8][256];
static int fake_notify(void *arg, const char *notifier, const gyre_notice_t *n)
{
    (void)arg;
    if (nsent < 8)
        snprintf(sent[nsent], sizeof(sent[nsent]), "%s %s %s %s=%s %s=%s %s", notifier, n->alertname, n->severity,
                 n->labels[1].name, n->labels[1].value, n->labels[2].name, n->labels[2].value,
                 n->annotations[0].value);
    nsent++;
    return 0;
}

TEST(limits_soft_budget_notifies_at_50_80_and_100_percent_once_each_per_period)
{
    gyre_config_t *c;
    gyre_limits_t *l =
        make(LIMITS_PREFIX "  teams: {search: {budget_usd: 10, budget_period: week, soft: true, notify: ops}}\n", &c);
    gyre_limits_set_notify(l, fake_notify, NULL);
    nsent = 0;
    gyre_limit_ask_t a = ask_of("k", "search", NULL, NULL, 0, 1 * GYRE_NUSD_PER_USD);
    gyre_limit_hold_t h;
    gyre_limit_refusal_t why;
    gyre_limit_status_t st;
    /* $4, $1 (50 %), $2.99 (79.9 %), $0.01 (80 %), $3 (110 %: soft, still admitted), $1 (nothing new). */
    static const int64_t costs[] = {400, 100, 299, 1, 300, 100};
    static const int after[] = {0, 1, 1, 2, 3, 3};
    for (size_t i = 0; i < sizeof(costs) / sizeof(costs[0]); i++) {
        CHECK_INT(gyre_limits_reserve(l, &a, &h, &why, &st), 0);
        gyre_limits_settle(l, &a, &h, 0, costs[i] * 10000000);
        CHECK_INT(nsent, after[i]);
    }
    CHECK_STR(sent[0], "ops budget warning id=search threshold_pct=50 team search has spent $5.00 of its $10.00 weekly "
                       "budget (50 %)");
    CHECK_STR(sent[1], "ops budget warning id=search threshold_pct=80 team search has spent $8.00 of its $10.00 weekly "
                       "budget (80 %)");
    CHECK_STR(sent[2], "ops budget critical id=search threshold_pct=100 team search has spent $11.00 of its $10.00 "
                       "weekly budget (110 %); the budget is soft: requests go on");
    /* Next Monday: a new period, the thresholds notify again. */
    now_us = T0 + 7 * 86400 * SEC;
    CHECK_INT(gyre_limits_reserve(l, &a, &h, &why, &st), 0);
    gyre_limits_settle(l, &a, &h, 0, 6 * GYRE_NUSD_PER_USD);
    CHECK_INT(nsent, 4);
    gyre_limits_destroy(l);
    gyre_config_free(c);
}

TEST(limits_period_starts_are_utc_calendar_days_weeks_and_months)
{
    int64_t next;
    /* 2026-12-09 15:30 UTC, a Wednesday. */
    int64_t t = ((int64_t)1796644800 + 2 * 86400 + 3 * 3600 + 1800) * SEC;
    CHECK_INT(gyre_limits_period_start(t, GYRE_BUDGET_DAY, &next), ((int64_t)1796644800 + 2 * 86400 - 12 * 3600) * SEC);
    CHECK_INT(next, ((int64_t)1796644800 + 3 * 86400 - 12 * 3600) * SEC);
    CHECK_INT(gyre_limits_period_start(t, GYRE_BUDGET_WEEK, &next), ((int64_t)1796644800 - 12 * 3600) * SEC);
    CHECK_INT(next, ((int64_t)1796644800 + 7 * 86400 - 12 * 3600) * SEC);
    /* 2026-12-01 00:00 and 2027-01-01 00:00 UTC. */
    CHECK_INT(gyre_limits_period_start(t, GYRE_BUDGET_MONTH, &next), (int64_t)1796083200 * SEC);
    CHECK_INT(next, (int64_t)1798761600 * SEC);
}

TEST(limits_reconfigure_keeps_the_counters_of_ids_that_still_have_rules)
{
    gyre_config_t *c, *c2;
    gyre_limits_t *l = make(LIMITS_PREFIX "  keys: {k: {rpm: 5}, gone: {rpm: 1}}\n", &c);
    gyre_limit_ask_t a = ask_of("k", NULL, NULL, NULL, 0, 0);
    gyre_limit_refusal_t why;
    CHECK_INT(admit_n(l, &a, 3, &why), 3);
    gyre_config_errors_t errs = {0};
    c2 = parse(LIMITS_PREFIX "  keys: {k: {rpm: 4}}\n", &errs);
    CHECK(c2 != NULL);
    gyre_limits_reconfigure(l, c2);
    /* 3 of the new 4 are used already: one more passes. */
    CHECK_INT(admit_n(l, &a, 3, &why), 1);
    CHECK_INT(why.limit, 4);
    /* The removed rule limits nothing any more. */
    gyre_limit_ask_t g = ask_of("gone", NULL, NULL, NULL, 0, 0);
    CHECK_INT(admit_n(l, &g, 5, &why), 5);
    gyre_limits_destroy(l);
    gyre_config_free(c);
    gyre_config_free(c2);
}

TEST(limits_a_managed_keys_own_limits_win_over_the_configs)
{
    gyre_config_t *c;
    gyre_limits_t *l = make(LIMITS_PREFIX "  default: {rpm: 100}\n", &c);
    gyre_limit_ask_t a = ask_of("gk_abc", NULL, NULL, NULL, 0, 0);
    gyre_limit_set_t own = {.rpm = 2, .budget_usd = -1};
    a.key_limits = &own;
    gyre_limit_refusal_t why;
    CHECK_INT(admit_n(l, &a, 4, &why), 2);
    CHECK_INT(why.limit, 2);
    gyre_limits_destroy(l);
    gyre_config_free(c);
}

typedef struct {
    gyre_limits_t *l;
    int admitted;
    int max_seen;
} worker_t;

static _Atomic int in_flight;

static void *hammer(void *p)
{
    worker_t *w = p;
    for (int i = 0; i < 20000; i++) {
        gyre_limit_ask_t a = ask_of("k", "t", NULL, (i & 1) ? "u1" : "u2", 0, 0);
        gyre_limit_hold_t h;
        gyre_limit_refusal_t why;
        gyre_limit_status_t st;
        if (gyre_limits_reserve(w->l, &a, &h, &why, &st) == 0) {
            int n = ++in_flight;
            if (n > w->max_seen)
                w->max_seen = n;
            w->admitted++;
            --in_flight;
            gyre_limits_settle(w->l, &a, &h, 0, 1);
        }
    }
    return NULL;
}

TEST(limits_eight_threads_at_once_never_pass_the_concurrency_limit_and_count_every_request)
{
    gyre_config_t *c;
    gyre_limits_t *l = make(LIMITS_PREFIX "  keys: {k: {concurrency: 3}}\n"
                                          "  teams: {t: {rpm: 100000000, budget_usd: 1000, budget_period: day}}\n",
                            &c);
    pthread_t th[8];
    worker_t w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (worker_t){l, 0, 0};
        pthread_create(&th[i], NULL, hammer, &w[i]);
    }
    int admitted = 0, max_seen = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        admitted += w[i].admitted;
        if (w[i].max_seen > max_seen)
            max_seen = w[i].max_seen;
    }
    CHECK(max_seen <= 3);
    gyre_limit_usage_t u;
    CHECK_INT(gyre_limits_usage(l, GYRE_LIMIT_TEAM, "t", &u), 0);
    CHECK_INT(u.requests_in_window, admitted);
    CHECK_INT(u.spent_nusd, admitted); /* one nano-dollar each, settled exactly once */
    CHECK_INT(u.inflight, 0);
    CHECK_INT(gyre_limits_usage(l, GYRE_LIMIT_KEY, "k", &u), 0);
    CHECK_INT(u.inflight, 0);
    gyre_limits_destroy(l);
    gyre_config_free(c);
}

TEST(limits_metrics_name_refusals_by_level_and_limit_and_spend_of_configured_ids)
{
    gyre_config_t *c;
    gyre_limits_t *l = make(LIMITS_PREFIX "  keys: {k: {rpm: 1}}\n  teams: {t: {budget_usd: 5, budget_period: day}}\n"
                                          "  users: {\"*\": {budget_usd: 1, budget_period: day}}\n",
                            &c);
    gyre_limit_ask_t a = ask_of("k", "t", NULL, "someone", 0, 0);
    gyre_limit_hold_t h;
    gyre_limit_refusal_t why;
    gyre_limit_status_t st;
    CHECK_INT(gyre_limits_reserve(l, &a, &h, &why, &st), 0);
    gyre_limits_settle(l, &a, &h, 0, 1250000000);
    CHECK_INT(admit_n(l, &a, 2, &why), 0);
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    gyre_limits_render_metrics(l, &b);
    gyre_buf_append(&b, "", 1);
    CHECK(strstr(b.base, "gyre_limit_refusals_total{level=\"key\",limit=\"rpm\"} 2\n") != NULL);
    CHECK(strstr(b.base, "gyre_limit_refusals_total{level=\"team\",limit=\"budget\"} 0\n") != NULL);
    CHECK(strstr(b.base, "gyre_budget_spent_usd{level=\"team\",id=\"t\"} 1.250000000\n") != NULL);
    /* Users under "*" are not labels: their number is not bounded by the config. */
    CHECK(strstr(b.base, "someone") == NULL);
    CHECK(strstr(b.base, "gyre_limit_queue_depth 0\n") != NULL);
    gyre_buf_dispose(&b);
    gyre_limits_destroy(l);
    gyre_config_free(c);
}

TEST(limits_a_rule_set_live_applies_at_once_and_stays_over_a_reload)
{
    gyre_config_t *c, *c2;
    gyre_limits_t *l = make(LIMITS_PREFIX "  agents: {a: {rpm: 100}}\n", &c);
    gyre_limit_ask_t a = ask_of("", NULL, "a", NULL, 0, 0), b = ask_of("", NULL, "b", NULL, 0, 0);
    gyre_limit_refusal_t why;
    char *before, *after;
    gyre_limit_set_t two = {.rpm = 2, .budget_usd = -1};
    CHECK_INT(gyre_limits_set_rule(l, GYRE_LIMIT_AGENT, "b", &two, NULL, &before, &after), 0);
    CHECK(before == NULL);
    CHECK_STR(after, "{\"rpm\":2}");
    free(after);
    CHECK_INT(admit_n(l, &b, 3, &why), 2);
    gyre_limit_set_t one = {.rpm = 1, .budget_usd = 5, .budget_period = GYRE_BUDGET_WEEK, .budget_soft = 1};
    CHECK_INT(gyre_limits_set_rule(l, GYRE_LIMIT_AGENT, "a", &one, "ops", &before, &after), 0);
    CHECK_STR(before, "{\"rpm\":100}");
    CHECK_STR(after, "{\"rpm\":1,\"budget_usd\":5,\"budget_period\":\"week\",\"soft\":true,\"notify\":\"ops\"}");
    free(before);
    free(after);
    CHECK_INT(admit_n(l, &a, 3, &why), 1);
    /* A reload of the same file keeps the admin's rules over the config's. */
    gyre_config_errors_t errs = {0};
    c2 = parse(LIMITS_PREFIX "  agents: {a: {rpm: 100}}\n", &errs);
    gyre_limits_reconfigure(l, c2);
    now_us += 60 * SEC;
    CHECK_INT(admit_n(l, &a, 3, &why), 1);
    CHECK_INT(admit_n(l, &b, 3, &why), 2);
    /* Removed: the agent is free. */
    CHECK_INT(gyre_limits_set_rule(l, GYRE_LIMIT_AGENT, "b", NULL, NULL, &before, &after), 0);
    CHECK_STR(before, "{\"rpm\":2}");
    CHECK(after == NULL);
    free(before);
    CHECK_INT(admit_n(l, &b, 10, &why), 10);
    CHECK_INT(gyre_limits_set_rule(l, GYRE_LIMIT_AGENT, "bad id", &two, NULL, &before, &after), -EINVAL);
    /* Two admitted in two minutes, neither settled: both still in flight. */
    char *json = gyre_limits_to_json(l);
    CHECK_STR(json, "{\"reservation_ttl_ms\":900000,\"default_max_tokens\":4096,\"queue_depth\":0,\"keys\":[],"
                    "\"teams\":[],\"agents\":[{\"rpm\":1,\"budget_usd\":5,\"budget_period\":\"week\",\"soft\":true,"
                    "\"notify\":\"ops\",\"id\":\"a\",\"usage\":{\"requests_in_window\":1,\"tokens_in_window\":0,"
                    "\"inflight\":2,\"reserved_usd\":0,\"spent_usd\":0}}],\"users\":[]}");
    free(json);
    gyre_limits_destroy(l);
    gyre_config_free(c);
    gyre_config_free(c2);
}
