/*
 * src/route/route.c, gyre_route_plan(): the order in which one request tries
 * a route's targets.  The weighted orders below were computed apart from
 * gyre, from the definitions (xorshift64* from the seed, Efraimidis-Spirakis
 * keys u^(1/w) sorted highest first, u = ((x >> 11) + 0.5) / 2^53), so a
 * planner that ignored the weights, or drew them differently, fails here.
 */
#include "route/route.h"

#include <string.h>

#include "test.h"

#define SEED 12345

/* Opens at the first failure, for a second. */
#define BREAKER "breaker: {failures: 1, error_rate_pct: 0, cooldown_ms: 1000}"

static gyre_config_t *config(void)
{
    static const char yaml[] =
        "providers:\n"
        "  - {name: a, kind: openai, base_url: 'http://h/v1', " BREAKER "}\n"
        "  - {name: b, kind: openai, base_url: 'http://h/v1', " BREAKER "}\n"
        "  - {name: c, kind: openai, base_url: 'http://h/v1', " BREAKER "}\n"
        "  - {name: d, kind: openai, base_url: 'http://h/v1'}\n"
        "routes:\n"
        "  - name: three\n"
        "    targets: [{provider: a, model: x5, weight: 5}, {provider: b, model: x3, weight: 3},"
        " {provider: c, model: x2, weight: 2}]\n"
        "    fallbacks: [{provider: d, model: fb}]\n"
        "  - name: split\n"
        "    targets: [{provider: a, model: m1, weight: 3}, {provider: b, model: m2, weight: 1},"
        " {provider: c, model: standby, weight: 0}]\n"
        "    fallbacks: [{provider: d, model: fb1}, {provider: a, model: fb2}]\n"
        "  - {name: latency, strategy: least_latency, targets: [{provider: a, model: t0}, {provider: b, model: t1},"
        " {provider: c, model: t2}]}\n"
        "  - {name: inflight, strategy: least_inflight, targets: [{provider: a, model: t0}, {provider: b, model: t1},"
        " {provider: c, model: t2}]}\n"
        "  - {name: cheap, strategy: cheapest, targets: [{provider: a, model: t0}, {provider: b, model: t1},"
        " {provider: c, model: t2}]}\n"
        "  - {name: sticky, affinity: session, targets: [{provider: a, model: s0}, {provider: b, model: s1},"
        " {provider: c, model: s2}]}\n";
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = gyre_config_parse("t", yaml, strlen(yaml), &errs);
    CHECK(c != NULL);
    return c;
}

typedef struct fixture {
    gyre_config_t *c;
    gyre_keypool_t pools[4];
    gyre_target_state_t states[8];
    gyre_candidate_t out[8];
} fixture_t;

static void setup(fixture_t *f)
{
    memset(f, 0, sizeof(*f));
    f->c = config();
    for (size_t i = 0; i < 4; i++)
        gyre_keypool_init(&f->pools[i], &f->c->providers[i]);
}

static void teardown(fixture_t *f)
{
    for (size_t i = 0; i < 4; i++)
        gyre_keypool_dispose(&f->pools[i]);
    gyre_config_free(f->c);
}

static const gyre_route_conf_t *route(fixture_t *f, const char *name)
{
    return gyre_config_find_route(f->c, name, strlen(name));
}

/* The plan's models joined by spaces, in order, into buf. */
static const char *plan(fixture_t *f, const char *name, uint64_t now, uint64_t *rng, uint64_t affinity, char *buf,
                        size_t size)
{
    size_t n = gyre_route_plan(route(f, name), f->states, f->pools, now, rng, affinity, f->out);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i != 0)
            strncat(buf, " ", size - strlen(buf) - 1);
        strncat(buf, f->out[i].model, size - strlen(buf) - 1);
    }
    return buf;
}

/* Opens provider p's breaker (failures: 1) at `now`. */
static void open_breaker(fixture_t *f, size_t p, uint64_t now)
{
    CHECK_INT(gyre_keypool_pick(&f->pools[p], now, 0, -1), 0);
    gyre_keypool_record(&f->pools[p], 0, 0, now);
    CHECK_INT(gyre_keypool_available(&f->pools[p], now), 0);
}

TEST(route_plan_weighted_orders_from_seed_12345_are_the_drawn_ones)
{
    fixture_t f;
    setup(&f);
    uint64_t rng = SEED;
    char buf[128];
    static const char *const want[] = {"x3 x5 x2 fb", "x5 x3 x2 fb", "x5 x2 x3 fb",
                                       "x3 x5 x2 fb", "x2 x5 x3 fb", "x2 x5 x3 fb"};
    for (size_t i = 0; i < 6; i++)
        CHECK_STR(plan(&f, "three", 1000, &rng, 0, buf, sizeof(buf)), want[i]);
    teardown(&f);
}

TEST(route_plan_weights_5_3_2_give_each_full_order_its_share_of_60000_plans)
{
    /* Drawn without replacement: P(x5 x3 x2) = 5/10 * 3/5 = 0.3 (18000), x5 x2 x3 0.2 (12000), x3 x5 x2
     * 3/10 * 5/7 (12857), x3 x2 x5 (5143), x2 x5 x3 2/10 * 5/8 (7500), x2 x3 x5 (4500).  The counts are the
     * seed's exact ones, each within 1% of all plans (600) of its share. */
    fixture_t f;
    setup(&f);
    uint64_t rng = SEED;
    static const char *const orders[] = {"x5 x3 x2 fb", "x5 x2 x3 fb", "x3 x5 x2 fb",
                                         "x3 x2 x5 fb", "x2 x5 x3 fb", "x2 x3 x5 fb"};
    int counts[6] = {0};
    char buf[128];
    for (int i = 0; i < 60000; i++) {
        plan(&f, "three", 1000, &rng, 0, buf, sizeof(buf));
        for (size_t j = 0; j < 6; j++)
            if (strcmp(buf, orders[j]) == 0)
                counts[j]++;
    }
    int want[6] = {17940, 12054, 12951, 5055, 7496, 4504};
    for (size_t j = 0; j < 6; j++)
        CHECK_INT(counts[j], want[j]);
    teardown(&f);
}

TEST(route_plan_weights_3_to_1_put_the_heavier_target_first_in_three_plans_of_four)
{
    fixture_t f;
    setup(&f);
    uint64_t rng = SEED;
    int m1_first = 0;
    char buf[128];
    for (int i = 0; i < 60000; i++)
        m1_first += strncmp(plan(&f, "split", 1000, &rng, 0, buf, sizeof(buf)), "m1 ", 3) == 0;
    CHECK_INT(m1_first, 44968); /* 45000 expected */
    teardown(&f);
}

TEST(route_plan_weight_zero_target_comes_after_every_weighted_one_then_the_fallbacks_in_order)
{
    fixture_t f;
    setup(&f);
    uint64_t rng = SEED;
    char buf[128];
    CHECK_STR(plan(&f, "split", 1000, &rng, 0, buf, sizeof(buf)), "m1 m2 standby fb1 fb2");
    CHECK_STR(plan(&f, "split", 1000, &rng, 0, buf, sizeof(buf)), "m2 m1 standby fb1 fb2");
    for (int i = 0; i < 1000; i++) {
        plan(&f, "split", 1000, &rng, 0, buf, sizeof(buf));
        CHECK(strcmp(buf, "m1 m2 standby fb1 fb2") == 0 || strcmp(buf, "m2 m1 standby fb1 fb2") == 0);
    }
    /* Every candidate says where it goes and which of them are fallbacks. */
    CHECK_INT(f.out[2].provider, 2);
    CHECK_INT(f.out[2].is_fallback, 0);
    CHECK(f.out[2].state == &f.states[2]);
    CHECK_INT(f.out[3].provider, 3);
    CHECK_INT(f.out[3].is_fallback, 1);
    CHECK(f.out[3].state == &f.states[3]);
    CHECK_INT(f.out[4].provider, 0);
    CHECK_INT(f.out[4].is_fallback, 1);
    CHECK_MEM(f.out[4].model, f.out[4].model_len, "fb2");
    CHECK(f.out[4].state == &f.states[4]);
    teardown(&f);
}

TEST(route_plan_plain_order_keeps_targets_whose_breaker_is_open_for_the_walk_to_skip)
{
    /* The plan is the order; skipping what is unusable at the moment of the attempt is the walk's
     * (gyre_route_next), so the order does not change with a breaker. */
    fixture_t f;
    setup(&f);
    open_breaker(&f, 1, 1000);
    uint64_t rng = SEED;
    char buf[128];
    CHECK_STR(plan(&f, "three", 1000, &rng, 0, buf, sizeof(buf)), "x3 x5 x2 fb");
    teardown(&f);
}

TEST(route_plan_least_latency_tries_unmeasured_targets_first_then_the_fastest)
{
    fixture_t f;
    setup(&f);
    uint64_t rng = SEED;
    char buf[128];
    gyre_route_observe_latency(&f.states[0], 300);
    gyre_route_observe_latency(&f.states[2], 100);
    CHECK_STR(plan(&f, "latency", 1000, &rng, 0, buf, sizeof(buf)), "t1 t2 t0");
    gyre_route_observe_latency(&f.states[1], 200);
    CHECK_STR(plan(&f, "latency", 1000, &rng, 0, buf, sizeof(buf)), "t2 t1 t0");
    /* A slow sample moves the average by 0.3 of the difference: t2 at 100 then 400 is 190, now behind t1. */
    gyre_route_observe_latency(&f.states[2], 400);
    CHECK(f.states[2].ewma_ms > 189.99 && f.states[2].ewma_ms < 190.01);
    CHECK_STR(plan(&f, "latency", 1000, &rng, 0, buf, sizeof(buf)), "t2 t1 t0");
    gyre_route_observe_latency(&f.states[2], 400);
    CHECK_STR(plan(&f, "latency", 1000, &rng, 0, buf, sizeof(buf)), "t1 t2 t0");
    teardown(&f);
}

TEST(route_plan_least_inflight_tries_the_target_with_fewest_attempts_in_flight_first)
{
    fixture_t f;
    setup(&f);
    uint64_t rng = SEED;
    char buf[128];
    f.states[0].inflight = 2;
    f.states[1].inflight = 0;
    f.states[2].inflight = 1;
    CHECK_STR(plan(&f, "inflight", 1000, &rng, 0, buf, sizeof(buf)), "t1 t2 t0");
    f.states[1].inflight = 5;
    CHECK_STR(plan(&f, "inflight", 1000, &rng, 0, buf, sizeof(buf)), "t2 t0 t1");
    teardown(&f);
}

TEST(route_plan_cheapest_tries_known_prices_lowest_first_and_unknown_ones_last)
{
    fixture_t f;
    setup(&f);
    uint64_t rng = SEED;
    char buf[128];
    f.states[0].price = -1; /* unknown */
    f.states[1].price = 10;
    f.states[2].price = 0.5;
    CHECK_STR(plan(&f, "cheap", 1000, &rng, 0, buf, sizeof(buf)), "t2 t1 t0");
    teardown(&f);
}

TEST(route_plan_strategy_ties_are_broken_by_the_weighted_draw)
{
    /* Three equal in-flight counts: the order is the draw's, the same as under `weighted` from the same seed
     * (equal weights: every order as likely; from 12345 the first two are these). */
    fixture_t f;
    setup(&f);
    uint64_t rng = SEED;
    char buf[128];
    CHECK_STR(plan(&f, "inflight", 1000, &rng, 0, buf, sizeof(buf)), "t1 t0 t2");
    CHECK_STR(plan(&f, "inflight", 1000, &rng, 0, buf, sizeof(buf)), "t0 t2 t1");
    teardown(&f);
}

TEST(route_plan_session_affinity_puts_the_same_target_first_whatever_the_draw)
{
    fixture_t f;
    setup(&f);
    char buf[128], first[128];
    uint64_t session = gyre_hash64("user-42", 7, 0x67797265) | 1;
    uint64_t rng = SEED;
    plan(&f, "sticky", 1000, &rng, session, first, sizeof(first));
    for (uint64_t seed = 1; seed <= 50; seed++) {
        rng = seed;
        plan(&f, "sticky", 1000, &rng, session, buf, sizeof(buf));
        CHECK(strncmp(buf, first, 2) == 0);
    }
    /* Sessions spread over the targets: 300 sessions put each of the three first at least 60 times. */
    int firsts[3] = {0};
    for (int s = 0; s < 300; s++) {
        char id[16];
        int n = snprintf(id, sizeof(id), "s-%d", s);
        rng = SEED;
        plan(&f, "sticky", 1000, &rng, gyre_hash64(id, (size_t)n, 0x67797265) | 1, buf, sizeof(buf));
        firsts[buf[1] - '0']++;
    }
    CHECK(firsts[0] >= 60 && firsts[1] >= 60 && firsts[2] >= 60);
    teardown(&f);
}

TEST(route_plan_session_moves_off_a_target_whose_breaker_is_open_and_back_when_it_may_probe)
{
    fixture_t f;
    setup(&f);
    char buf[128], first[128];
    uint64_t session = gyre_hash64("user-42", 7, 0x67797265) | 1;
    uint64_t rng = SEED;
    plan(&f, "sticky", 1000, &rng, session, first, sizeof(first));
    size_t home = (size_t)(first[1] - '0'); /* s0 is on provider a (0), s1 on b, s2 on c */
    open_breaker(&f, home, 1000);
    plan(&f, "sticky", 1500, &rng, session, buf, sizeof(buf));
    CHECK(strncmp(buf, first, 2) != 0);
    /* The cooldown (1000 ms) is over: the breaker lets a probe through, and the session comes home. */
    plan(&f, "sticky", 2000, &rng, session, buf, sizeof(buf));
    CHECK(strncmp(buf, first, 2) == 0);
    teardown(&f);
}
