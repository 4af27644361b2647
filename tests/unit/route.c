/*
 * src/route/route.c: a request's `model` names a route or addresses a
 * provider directly as "provider/model"; a route's plan orders its targets
 * by strategy and weight (the planner production uses, gyre_route_plan).
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

TEST(route_name_resolves_to_the_route_and_leaves_the_targets_to_the_plan)
{
    gyre_config_t *c = config();
    gyre_target_ref_t t;
    CHECK_INT(gyre_route_resolve(c, "chat", 4, &t), 0);
    CHECK(t.route == &c->routes[0]);
    CHECK_STR(t.route_name, "chat");
    CHECK(t.model == NULL);
    CHECK_INT(t.model_len, 0);
    gyre_config_free(c);
}

TEST(route_name_is_compared_over_the_given_length_only)
{
    gyre_config_t *c = config();
    gyre_target_ref_t t;
    CHECK_INT(gyre_route_resolve(c, "chat-and-more", 4, &t), 0);
    CHECK_STR(t.route_name, "chat");
    gyre_config_free(c);
}

TEST(route_provider_slash_model_addresses_a_provider_directly)
{
    gyre_config_t *c = config();
    gyre_target_ref_t t;
    CHECK_INT(gyre_route_resolve(c, "backup/gpt-4o", 13, &t), 0);
    CHECK_INT(t.provider, 1);
    CHECK_MEM(t.model, t.model_len, "gpt-4o");
    CHECK(t.route_name == NULL);
    gyre_config_free(c);
}

TEST(route_provider_slash_model_keeps_further_slashes_in_the_model)
{
    gyre_config_t *c = config();
    gyre_target_ref_t t;
    const char m[] = "primary/openai/gpt-4o";
    CHECK_INT(gyre_route_resolve(c, m, strlen(m), &t), 0);
    CHECK_INT(t.provider, 0);
    CHECK_MEM(t.model, t.model_len, "openai/gpt-4o");
    CHECK(t.route_name == NULL);
    gyre_config_free(c);
}

TEST(route_unknown_name_is_enoent)
{
    gyre_config_t *c = config();
    gyre_target_ref_t t;
    CHECK_INT(gyre_route_resolve(c, "gpt-4o", 6, &t), -ENOENT);
    CHECK_INT(gyre_route_resolve(c, "cha", 3, &t), -ENOENT);
    CHECK_INT(gyre_route_resolve(c, "", 0, &t), -ENOENT);
    gyre_config_free(c);
}

TEST(route_unknown_provider_or_empty_model_after_the_slash_is_enoent)
{
    gyre_config_t *c = config();
    gyre_target_ref_t t;
    CHECK_INT(gyre_route_resolve(c, "nobody/gpt-4o", 13, &t), -ENOENT);
    CHECK_INT(gyre_route_resolve(c, "primary/", 8, &t), -ENOENT);
    CHECK_INT(gyre_route_resolve(c, "/gpt-4o", 7, &t), -ENOENT);
    CHECK_INT(gyre_route_resolve(c, "chat/gpt-4o", 11, &t), -ENOENT);
    gyre_config_free(c);
}

TEST(rand_next_is_xorshift64_star)
{
    uint64_t s = 1;
    CHECK(gyre_rand_next(&s) == 0x47E4CE4B896CDD1DULL);
    CHECK(s == 0x2000001ULL);
}
