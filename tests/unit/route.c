/*
 * src/route/route.c: a request's `model` names a route (one target drawn by
 * weight) or addresses a provider directly as "provider/model".
 */
#include "route/route.h"

#include <errno.h>
#include <string.h>

#include "test.h"

static gyre_config_t *config(void)
{
    static const char yaml[] = "providers:\n"
                               "  - {name: primary, kind: openai, base_url: 'http://h/v1'}\n"
                               "  - {name: backup, kind: openai, base_url: 'http://h/v1'}\n"
                               "routes:\n"
                               "  - {name: chat, targets: [{provider: primary, model: gpt-4o-mini}]}\n"
                               "  - name: split\n"
                               "    targets: [{provider: primary, model: m1, weight: 3}, {provider: backup, model: m2,"
                               " weight: 1}, {provider: backup, model: never, weight: 0}]\n";
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = gyre_config_parse("t", yaml, strlen(yaml), &errs);
    CHECK(c != NULL);
    return c;
}

/* Draws `n` times from the "split" route; counts[i] is how often target i came up. */
static void draw(const gyre_config_t *c, uint64_t seed, int n, int counts[3])
{
    uint64_t rng = seed;
    counts[0] = counts[1] = counts[2] = 0;
    for (int i = 0; i < n; i++) {
        gyre_target_ref_t t;
        CHECK_INT(gyre_route_resolve(c, "split", 5, &rng, &t), 0);
        counts[strcmp(t.model, "m1") == 0 ? 0 : strcmp(t.model, "m2") == 0 ? 1 : 2]++;
    }
}

TEST(route_name_resolves_to_its_target)
{
    gyre_config_t *c = config();
    uint64_t rng = 1;
    gyre_target_ref_t t;
    CHECK_INT(gyre_route_resolve(c, "chat", 4, &rng, &t), 0);
    CHECK_INT(t.provider, 0);
    CHECK_MEM(t.model, t.model_len, "gpt-4o-mini");
    CHECK_STR(t.route_name, "chat");
    gyre_config_free(c);
}

TEST(route_name_is_compared_over_the_given_length_only)
{
    gyre_config_t *c = config();
    uint64_t rng = 1;
    gyre_target_ref_t t;
    CHECK_INT(gyre_route_resolve(c, "chat-and-more", 4, &rng, &t), 0);
    CHECK_STR(t.route_name, "chat");
    gyre_config_free(c);
}

TEST(route_weights_3_to_1_split_40000_draws_within_2_percent)
{
    gyre_config_t *c = config();
    int counts[3];
    draw(c, 12345, 40000, counts);
    /* 30000:10000 expected; ±2% of all draws is ±800. */
    CHECK(counts[0] >= 29200 && counts[0] <= 30800);
    CHECK(counts[1] >= 9200 && counts[1] <= 10800);
    gyre_config_free(c);
}

TEST(route_weighted_draw_is_deterministic_for_a_seed)
{
    /* xorshift64* from 12345, pick = value % 4: pick < 3 is m1, 3 is m2
     * (counted independently of gyre, from the generator's definition). */
    gyre_config_t *c = config();
    int counts[3];
    draw(c, 12345, 40000, counts);
    CHECK_INT(counts[0], 29921);
    CHECK_INT(counts[1], 10079);
    gyre_config_free(c);
}

TEST(route_target_of_weight_zero_is_never_chosen)
{
    gyre_config_t *c = config();
    for (uint64_t seed = 1; seed <= 8; seed++) {
        int counts[3];
        draw(c, seed, 5000, counts);
        CHECK_INT(counts[2], 0);
    }
    gyre_config_free(c);
}

TEST(route_provider_slash_model_addresses_a_provider_directly)
{
    gyre_config_t *c = config();
    uint64_t rng = 1;
    gyre_target_ref_t t;
    CHECK_INT(gyre_route_resolve(c, "backup/gpt-4o", 13, &rng, &t), 0);
    CHECK_INT(t.provider, 1);
    CHECK_MEM(t.model, t.model_len, "gpt-4o");
    CHECK(t.route_name == NULL);
    gyre_config_free(c);
}

TEST(route_provider_slash_model_keeps_further_slashes_in_the_model)
{
    gyre_config_t *c = config();
    uint64_t rng = 1;
    gyre_target_ref_t t;
    const char m[] = "primary/openai/gpt-4o";
    CHECK_INT(gyre_route_resolve(c, m, strlen(m), &rng, &t), 0);
    CHECK_INT(t.provider, 0);
    CHECK_MEM(t.model, t.model_len, "openai/gpt-4o");
    CHECK(t.route_name == NULL);
    gyre_config_free(c);
}

TEST(route_unknown_name_is_enoent)
{
    gyre_config_t *c = config();
    uint64_t rng = 1;
    gyre_target_ref_t t;
    CHECK_INT(gyre_route_resolve(c, "gpt-4o", 6, &rng, &t), -ENOENT);
    CHECK_INT(gyre_route_resolve(c, "cha", 3, &rng, &t), -ENOENT);
    CHECK_INT(gyre_route_resolve(c, "", 0, &rng, &t), -ENOENT);
    gyre_config_free(c);
}

TEST(route_unknown_provider_or_empty_model_after_the_slash_is_enoent)
{
    gyre_config_t *c = config();
    uint64_t rng = 1;
    gyre_target_ref_t t;
    CHECK_INT(gyre_route_resolve(c, "nobody/gpt-4o", 13, &rng, &t), -ENOENT);
    CHECK_INT(gyre_route_resolve(c, "primary/", 8, &rng, &t), -ENOENT);
    CHECK_INT(gyre_route_resolve(c, "/gpt-4o", 7, &rng, &t), -ENOENT);
    CHECK_INT(gyre_route_resolve(c, "chat/gpt-4o", 11, &rng, &t), -ENOENT);
    gyre_config_free(c);
}

TEST(rand_next_is_xorshift64_star)
{
    uint64_t s = 1;
    CHECK(gyre_rand_next(&s) == 0x47E4CE4B896CDD1DULL);
    CHECK(s == 0x2000001ULL);
}
