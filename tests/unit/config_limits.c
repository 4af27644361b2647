/*
 * src/config/limits.c: the `limits:` section, its levels, rules and defaults,
 * and every error naming its field.
 */
#include "config/config.h"

#include <string.h>

#include "config_test.h"
#include "test.h"

TEST(config_limits_absent_is_not_present)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse(PROVIDER_P, &errs);
    CHECK(c != NULL);
    CHECK_INT(c->limits.present, 0);
    gyre_config_free(c);
}

TEST(config_limits_reads_every_level_and_the_defaults)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse(PROVIDER_P "limits:\n"
                                        "  default: {rpm: 600}\n"
                                        "  keys: {svc-a: {rpm: 60, tpm: 100000, concurrency: 4, budget_usd: 10, "
                                        "budget_period: day}}\n"
                                        "  teams: {search: {budget_usd: $500, budget_period: month, soft: true, "
                                        "notify: ops}}\n"
                                        "  agents: {planner: {rpm: 120}}\n"
                                        "  users: {\"*\": {rpm: 30}}\n",
                             &errs);
    CHECK(c != NULL);
    const gyre_limits_conf_t *l = &c->limits;
    CHECK_INT(l->present, 1);
    CHECK_INT(l->reservation_ttl_ms, 15 * 60 * 1000);
    CHECK_INT(l->default_max_tokens, 4096);
    CHECK_INT(l->nrules[0], 2);
    CHECK_STR(l->rules[0][0].id, "svc-a");
    CHECK_INT(l->rules[0][0].rpm, 60);
    CHECK_INT(l->rules[0][0].tpm, 100000);
    CHECK_INT(l->rules[0][0].concurrency, 4);
    CHECK_INT((long long)(l->rules[0][0].budget_usd * 100), 1000);
    CHECK_INT(l->rules[0][0].budget_period, 1);
    CHECK_STR(l->rules[0][1].id, "*");
    CHECK_INT(l->rules[0][1].rpm, 600);
    CHECK_INT((long long)l->rules[0][1].budget_usd, -1);
    CHECK_STR(l->rules[1][0].id, "search");
    CHECK_INT((long long)l->rules[1][0].budget_usd, 500);
    CHECK_INT(l->rules[1][0].budget_period, 3);
    CHECK_INT(l->rules[1][0].soft, 1);
    CHECK_STR(l->rules[1][0].notify, "ops");
    CHECK_INT(l->rules[2][0].rpm, 120);
    CHECK_STR(l->rules[3][0].id, "*");
    CHECK_INT(l->rules[3][0].rpm, 30);
    gyre_config_free(c);
    c = parse(PROVIDER_P "limits: {reservation_ttl: 2m, default_max_tokens: 512, notify: ops}\n", &errs);
    CHECK(c != NULL);
    CHECK_INT(c->limits.reservation_ttl_ms, 120000);
    CHECK_INT(c->limits.default_max_tokens, 512);
    CHECK_STR(c->limits.notify, "ops");
    gyre_config_free(c);
}

TEST(config_limits_errors_name_the_field)
{
    CHECK_ERRORS(PROVIDER_P "limits:\n"
                            "  keys: {a: {rpm: 0, colour: red}, 'b c': {rpm: 1}}\n"
                            "  teams: {t: {budget_usd: -3, budget_period: day}, u: {budget_usd: 5}}\n"
                            "  agents: {x: {budget_period: year}}\n"
                            "  users: {v: {soft: true}}\n"
                            "  reservation_ttl: 10ms\n"
                            "  size: 3\n",
                 "t.yaml:4: limits.keys.a.rpm: 0 is out of range (1 to 100000000)\n"
                 "t.yaml:4: limits.keys.a: unknown field 'colour' (known: rpm, tpm, concurrency, budget_usd, "
                 "budget_period, soft, notify)\n"
                 "t.yaml:4: limits.keys: 'b c' is not an id: 1 to 63 of [A-Za-z0-9._:@-], or \"*\" for every id\n"
                 "t.yaml:5: limits.teams.t.budget_usd: expected an amount in USD >= 0 (for example 10 or 2.50), "
                 "found '-3'\n"
                 "t.yaml:5: limits.teams.u: budget_usd needs a budget_period (day, week or month; UTC calendar "
                 "periods)\n"
                 "t.yaml:6: limits.agents.x.budget_period: unknown value 'year' (supported: day, week, month)\n"
                 "t.yaml:6: limits.agents.x: budget_period without a budget_usd\n"
                 "t.yaml:7: limits.users.v: soft applies to a budget: this rule has no budget_usd\n"
                 "t.yaml:8: limits.reservation_ttl: must be between 1s and 24h\n"
                 "t.yaml:9: limits: unknown field 'size' (known: default, keys, teams, agents, users, reservation_ttl, "
                 "default_max_tokens, notify)\n");
}

TEST(config_limits_default_and_keys_star_are_one_rule)
{
    CHECK_ERRORS(PROVIDER_P "limits:\n  keys: {\"*\": {rpm: 1}}\n  default: {rpm: 2}\n",
                 "t.yaml:5: limits.default: is given twice (limits.keys has \"*\" too)\n");
}
