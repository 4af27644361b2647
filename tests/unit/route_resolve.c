#include "route/route.h"

#include <errno.h>
#include <string.h>

#include "test.h"

static gyre_config_t *config(void)
{
    static const char yaml[] = "providers:\n"
                               "  - {name: a, kind: openai, base_url: 'http://h/v1'}\n"
                               "  - {name: b, kind: openai, base_url: 'http://h/v1'}\n"
                               "routes:\n"
                               "  - name: chat\n"
                               "    targets: [{provider: a, model: m1, weight: 3}, {provider: b, model: m2, weight: 1},"
                               " {provider: b, model: never, weight: 0}]\n";
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = gyre_config_parse("t", yaml, strlen(yaml), &errs);
    CHECK(c != NULL);
    return c;
}

TEST(route_name_resolves_to_one_of_its_targets)
{
    gyre_config_t *c = config();
    uint64_t rng = 1;
    gyre_target_ref_t t;
    CHECK_INT(gyre_route_resolve(c, "chat", 4, &rng, &t), 0);
    CHECK_STR(t.route_name, "chat");
    CHECK(strcmp(t.model, "m1") == 0 || strcmp(t.model, "m2") == 0);
    gyre_config_free(c);
}

TEST(route_weights_split_draws_in_proportion_and_weight_zero_is_never_drawn)
{
    gyre_config_t *c = config();
    uint64_t rng = 12345;
    int counts[3] = {0, 0, 0};
    for (int i = 0; i < 40000; i++) {
        gyre_target_ref_t t;
        gyre_route_resolve(c, "chat", 4, &rng, &t);
        counts[strcmp(t.model, "m1") == 0 ? 0 : strcmp(t.model, "m2") == 0 ? 1 : 2]++;
    }
    /* 3:1 of 40000 is 30000:10000; the draw is seeded, so this 2 % window is stable. */
    CHECK_INT(counts[2], 0);
    CHECK_INT(counts[0] + counts[1], 40000);
    CHECK(counts[0] > 29400 && counts[0] < 30600);
    gyre_config_free(c);
}

TEST(route_provider_slash_model_addresses_a_provider_directly)
{
    gyre_config_t *c = config();
    uint64_t rng = 1;
    gyre_target_ref_t t;
    const char m[] = "b/openai/gpt-4o";
    CHECK_INT(gyre_route_resolve(c, m, strlen(m), &rng, &t), 0);
    CHECK_INT(t.provider, 1);
    CHECK_MEM(t.model, t.model_len, "openai/gpt-4o");
    CHECK(t.route_name == NULL);
    gyre_config_free(c);
}

TEST(route_unknown_names_are_enoent)
{
    gyre_config_t *c = config();
    uint64_t rng = 1;
    gyre_target_ref_t t;
    CHECK_INT(gyre_route_resolve(c, "gpt-4o", 6, &rng, &t), -ENOENT);
    CHECK_INT(gyre_route_resolve(c, "z/gpt-4o", 8, &rng, &t), -ENOENT);
    CHECK_INT(gyre_route_resolve(c, "a/", 2, &rng, &t), -ENOENT);
    CHECK_INT(gyre_route_resolve(c, "cha", 3, &rng, &t), -ENOENT);
    gyre_config_free(c);
}
