/*
 * src/config/prices.c: the built-in table, the file format and its errors
 * (each naming the field), model lookup (exact, dated ids by prefix,
 * provider/model, Bedrock regions) and the cost of a call.
 */
#include "config/prices.h"

#include <math.h>
#include <string.h>

#include "test.h"
#include "trace/record.h"

#define LIT(s) s, sizeof(s) - 1

/* Doubles that are not exact in binary (0.15, ...) are compared to 1e-12 relative. */
#define CHECK_NEAR(a, b)                                                                                               \
    do {                                                                                                               \
        double a_ = (a), b_ = (b);                                                                                     \
        if (!(fabs(a_ - b_) <= 1e-12 * (fabs(b_) > 1 ? fabs(b_) : 1))) {                                               \
            fprintf(stderr, "  %s:%d: %s == %.17g, expected %.17g\n", __FILE__, __LINE__, #a, a_, b_);                 \
            gyre_test_failures++;                                                                                      \
        }                                                                                                              \
    } while (0)

static gyre_prices_t *parse(const char *json, char *err, size_t errlen)
{
    return gyre_prices_parse(json, strlen(json), err, errlen);
}

static const gyre_price_t *find(const gyre_prices_t *p, const char *model)
{
    return gyre_prices_find(p, model, strlen(model));
}

/* Asserts that `json` is refused with exactly `message`. */
#define CHECK_REFUSED(json, message)                                                                                   \
    do {                                                                                                               \
        char err_[256] = "";                                                                                           \
        gyre_prices_t *p_ = parse((json), err_, sizeof(err_));                                                         \
        CHECK(p_ == NULL);                                                                                             \
        gyre_prices_free(p_);                                                                                          \
        CHECK_STR(err_, (message));                                                                                    \
    } while (0)

static const char table[] = "{\"version\": \"t1\", \"source\": \"tests\", \"models\": {"
                            "\"gpt-4o\": {\"input\": 2.5, \"output\": 10, \"cached_input\": 1.25},"
                            "\"gpt-4o-2024-05-13\": {\"input\": 5, \"output\": 15},"
                            "\"gpt-4o-mini\": {\"input\": 0.15, \"output\": 0.6, \"cached_input\": 0.075},"
                            "\"claude-sonnet-4\": {\"input\": 3, \"output\": 15, \"cached_input\": 0.3, "
                            "\"cache_write\": 3.75},"
                            "\"claude-sonnet-4-5\": {\"input\": 3.5, \"output\": 15},"
                            "\"anthropic.claude-3-5-sonnet-20240620-v1:0\": {\"input\": 3, \"output\": 15},"
                            "\"amazon.nova-pro-v1:0\": {\"input\": 0.8, \"output\": 3.2}"
                            "}}";

/* --- the built-in table ------------------------------------------------- */

TEST(prices_builtin_parses_and_prices_gpt_4o_mini)
{
    gyre_prices_t *p = gyre_prices_builtin();
    CHECK(p != NULL);
    CHECK_STR(gyre_prices_version(p), "2026-12-01");
    const gyre_price_t *m = find(p, "gpt-4o-mini");
    CHECK(m != NULL);
    if (m != NULL) {
        CHECK(m->input == 0.15);
        CHECK(m->output == 0.60);
        CHECK(m->cached_input == 0.075);
        CHECK(m->cache_write < 0);
    }
    gyre_prices_free(p);
}

TEST(prices_builtin_prices_the_mock_model_at_zero)
{
    gyre_prices_t *p = gyre_prices_builtin();
    const gyre_price_t *m = find(p, "mock-1");
    CHECK(m != NULL);
    if (m != NULL)
        CHECK(gyre_prices_cost(m, 1000, 100, 1000) == 0.0);
    gyre_prices_free(p);
}

TEST(prices_builtin_covers_every_provider_family)
{
    static const char *const models[] = {"gpt-4o",
                                         "gpt-4.1",
                                         "gpt-4.1-mini",
                                         "o3",
                                         "o4-mini",
                                         "gpt-5",
                                         "gpt-5-mini",
                                         "gpt-5-nano",
                                         "claude-opus-4-1-20250805",
                                         "claude-sonnet-4-5-20250929",
                                         "claude-haiku-4-5",
                                         "claude-3-7-sonnet-latest",
                                         "claude-3-5-haiku-20241022",
                                         "gemini-2.5-pro",
                                         "gemini-2.5-flash",
                                         "gemini-2.5-flash-lite",
                                         "gemini-2.0-flash",
                                         "anthropic.claude-3-5-sonnet-20240620-v1:0",
                                         "us.anthropic.claude-sonnet-4-20250514-v1:0",
                                         "amazon.nova-pro-v1:0",
                                         "meta.llama3-1-70b-instruct-v1:0",
                                         "mistral-large-latest",
                                         "mistral-small-2506",
                                         "llama-3.3-70b-versatile",
                                         "llama-3.1-8b-instant",
                                         "deepseek-chat",
                                         "deepseek-reasoner"};
    gyre_prices_t *p = gyre_prices_builtin();
    CHECK(gyre_prices_count(p) >= 60);
    for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
        const gyre_price_t *m = find(p, models[i]);
        if (m == NULL) {
            fprintf(stderr, "  no price for %s\n", models[i]);
            gyre_test_failures++;
        } else {
            CHECK(m->input > 0);
            CHECK(m->output > 0);
        }
    }
    gyre_prices_free(p);
}

TEST(prices_builtin_anthropic_prices_carry_cache_read_and_cache_write)
{
    gyre_prices_t *p = gyre_prices_builtin();
    const gyre_price_t *m = find(p, "claude-sonnet-4-5-20250929");
    CHECK(m != NULL);
    if (m != NULL) {
        CHECK(m->input == 3.0);
        CHECK(m->output == 15.0);
        CHECK_NEAR(m->cached_input, 0.30);
        CHECK(m->cache_write == 3.75);
    }
    gyre_prices_free(p);
}

/* --- lookup ------------------------------------------------------------- */

TEST(prices_find_exact_name)
{
    char err[128];
    gyre_prices_t *p = parse(table, err, sizeof(err));
    CHECK(p != NULL);
    const gyre_price_t *m = find(p, "gpt-4o");
    CHECK(m != NULL && m->input == 2.5 && m->output == 10 && m->cached_input == 1.25 && m->cache_write < 0);
    gyre_prices_free(p);
}

TEST(prices_find_exact_wins_over_a_prefix)
{
    gyre_prices_t *p = parse(table, NULL, 0);
    const gyre_price_t *m = find(p, "gpt-4o-2024-05-13");
    CHECK(m != NULL && m->input == 5 && m->cached_input < 0);
    gyre_prices_free(p);
}

TEST(prices_find_dated_id_by_its_longest_prefix)
{
    gyre_prices_t *p = parse(table, NULL, 0);
    const gyre_price_t *m = find(p, "gpt-4o-2024-08-06");
    CHECK(m != NULL && m->input == 2.5);
    m = find(p, "gpt-4o-mini-2024-07-18");
    CHECK(m != NULL && m->output == 0.6);
    m = find(p, "claude-sonnet-4-5-20250929");
    CHECK(m != NULL && m->input == 3.5);
    m = find(p, "claude-sonnet-4-20250514");
    CHECK(m != NULL && m->input == 3);
    gyre_prices_free(p);
}

TEST(prices_find_prefix_must_end_at_dash_at_or_colon)
{
    gyre_prices_t *p = parse(table, NULL, 0);
    CHECK(find(p, "gpt-4o@2024-08-06") == find(p, "gpt-4o"));
    CHECK(find(p, "gpt-4o:free") == find(p, "gpt-4o"));
    CHECK(find(p, "gpt-4omega") == NULL);
    CHECK(find(p, "gpt-4o.1") == NULL);
    CHECK(find(p, "gpt-4") == NULL);
    gyre_prices_free(p);
}

TEST(prices_find_provider_slash_model_tries_the_model)
{
    gyre_prices_t *p = parse(table, NULL, 0);
    CHECK(find(p, "openai/gpt-4o-mini") == find(p, "gpt-4o-mini"));
    CHECK(find(p, "azure/gpt-4o-2024-08-06") == find(p, "gpt-4o"));
    CHECK(find(p, "openai/") == NULL);
    CHECK(find(p, "openai/nothing") == NULL);
    gyre_prices_free(p);
}

TEST(prices_find_bedrock_id_after_a_region_prefix)
{
    gyre_prices_t *p = parse(table, NULL, 0);
    const gyre_price_t *want = find(p, "anthropic.claude-3-5-sonnet-20240620-v1:0");
    CHECK(want != NULL);
    CHECK(find(p, "us.anthropic.claude-3-5-sonnet-20240620-v1:0") == want);
    CHECK(find(p, "global.anthropic.claude-3-5-sonnet-20240620-v1:0") == want);
    CHECK(find(p, "us-gov.amazon.nova-pro-v1:0") == find(p, "amazon.nova-pro-v1:0"));
    CHECK(find(p, "bedrock/eu.amazon.nova-pro-v1:0") == find(p, "amazon.nova-pro-v1:0"));
    CHECK(find(p, "us.gpt-4o") == NULL); /* a region comes before a vendor.model id only */
    gyre_prices_free(p);
}

TEST(prices_find_unknown_model_is_null)
{
    gyre_prices_t *p = parse(table, NULL, 0);
    CHECK(find(p, "llama-9") == NULL);
    CHECK(find(p, "") == NULL);
    CHECK(gyre_prices_find(p, NULL, 0) == NULL);
    CHECK(gyre_prices_find(NULL, LIT("gpt-4o")) == NULL);
    gyre_prices_free(p);
}

TEST(prices_find_reads_the_given_length_only)
{
    gyre_prices_t *p = parse(table, NULL, 0);
    CHECK(gyre_prices_find(p, "gpt-4o-mini", 6) == find(p, "gpt-4o"));
    gyre_prices_free(p);
}

/* --- cost --------------------------------------------------------------- */

TEST(prices_cost_bills_cached_tokens_at_the_cached_price)
{
    gyre_price_t pr = {2.5, 10, 1.25, -1};
    /* 800 * 2.5 + 200 * 1.25 + 500 * 10 = 7250 micro-dollars */
    CHECK(gyre_prices_cost(&pr, 1000, 200, 500) == 0.00725);
}

TEST(prices_cost_bills_cached_tokens_at_input_when_the_cached_price_is_unknown)
{
    gyre_price_t pr = {2.5, 10, -1, -1};
    CHECK(gyre_prices_cost(&pr, 1000, 200, 500) == 0.0075);
}

TEST(prices_cost_of_an_unknown_model_is_minus_1)
{
    CHECK(gyre_prices_cost(NULL, 1000, 0, 1000) == -1);
}

TEST(prices_cost_clamps_negative_counts_and_cached_beyond_the_prompt)
{
    gyre_price_t pr = {2, 8, 0.5, -1};
    CHECK(gyre_prices_cost(&pr, -5, -1, -7) == 0);
    CHECK(gyre_prices_cost(&pr, 100, 400, 0) == 0.00005); /* 100 cached * 0.5 */
}

TEST(prices_cost_of_gpt_4o_mini_for_a_million_each_way_is_75_cents)
{
    gyre_prices_t *p = gyre_prices_builtin();
    const gyre_price_t *m = find(p, "gpt-4o-mini");
    CHECK_NEAR(gyre_prices_cost(m, 1000000, 0, 1000000), 0.75);
    CHECK_NEAR(gyre_prices_cost(m, 1000000, 1000000, 0), 0.075);
    CHECK_NEAR(gyre_prices_cost(m, 1200, 200, 300), 0.000345); /* 1000*0.15 + 200*0.075 + 300*0.6 = 345 */
    gyre_prices_free(p);
}

/* --- the file format ---------------------------------------------------- */

TEST(prices_parse_reads_version_and_the_optional_prices_as_unknown)
{
    gyre_prices_t *p = parse("{\"models\": {\"m\": {\"input\": 1, \"output\": 2}}}", NULL, 0);
    CHECK(p != NULL);
    CHECK_STR(gyre_prices_version(p), "");
    CHECK_INT(gyre_prices_count(p), 1);
    const gyre_price_t *m = find(p, "m");
    CHECK(m != NULL && m->input == 1 && m->output == 2 && m->cached_input == -1 && m->cache_write == -1);
    gyre_prices_free(p);
    p = parse(table, NULL, 0);
    CHECK_STR(gyre_prices_version(p), "t1");
    CHECK_INT(gyre_prices_count(p), 7);
    gyre_prices_free(p);
}

TEST(prices_parse_accepts_an_empty_table)
{
    gyre_prices_t *p = parse("{\"models\": {}}", NULL, 0);
    CHECK(p != NULL);
    CHECK_INT(gyre_prices_count(p), 0);
    CHECK(find(p, "gpt-4o") == NULL);
    gyre_prices_free(p);
}

TEST(prices_parse_refuses_what_is_not_json)
{
    CHECK_REFUSED("{\"models\": {", "not valid JSON: parsing stopped at line 1, column 12");
    CHECK_REFUSED("{\"models\": {}}\n{}", "not valid JSON: unexpected data after the table at line 2, column 1");
    CHECK_REFUSED("", "not valid JSON: parsing stopped at line 1, column 1");
}

TEST(prices_parse_refuses_a_bad_top_level_naming_the_field)
{
    CHECK_REFUSED("[]", "the price table must be a JSON object with \"models\"");
    CHECK_REFUSED("{}", "models: missing");
    CHECK_REFUSED("{\"models\": []}", "models: must be an object of model names");
    CHECK_REFUSED("{\"version\": 1, \"models\": {}}", "version: must be a string");
    CHECK_REFUSED("{\"modles\": {}}", "unknown field \"modles\" (known: version, source, models)");
}

TEST(prices_parse_refuses_a_bad_model_naming_the_field)
{
    CHECK_REFUSED("{\"models\": {\"m\": 3}}", "models.m: must be an object with \"input\" and \"output\"");
    CHECK_REFUSED("{\"models\": {\"m\": {\"input\": 1}}}", "models.m.output: missing");
    CHECK_REFUSED("{\"models\": {\"m\": {\"output\": 1}}}", "models.m.input: missing");
    CHECK_REFUSED("{\"models\": {\"m\": {\"input\": -1, \"output\": 1}}}",
                  "models.m.input: must be a number >= 0 (USD per 1M tokens)");
    CHECK_REFUSED("{\"models\": {\"m\": {\"input\": 1, \"output\": \"2\"}}}",
                  "models.m.output: must be a number >= 0 (USD per 1M tokens)");
    CHECK_REFUSED("{\"models\": {\"m\": {\"input\": 1e999, \"output\": 1}}}",
                  "models.m.input: must be a number >= 0 (USD per 1M tokens)");
    CHECK_REFUSED("{\"models\": {\"m\": {\"input\": 1, \"output\": 1, \"cahced_input\": 1}}}",
                  "models.m: unknown field \"cahced_input\" (known: input, output, cached_input, cache_write)");
    CHECK_REFUSED("{\"models\": {\"m\": {\"input\": 1, \"output\": 1, \"cache_write\": null}}}",
                  "models.m.cache_write: must be a number >= 0 (USD per 1M tokens)");
}

TEST(prices_parse_refuses_duplicate_and_empty_names)
{
    CHECK_REFUSED("{\"models\": {\"m\": {\"input\": 1, \"output\": 1}, \"m\": {\"input\": 2, \"output\": 2}}}",
                  "models.m: listed twice");
    CHECK_REFUSED("{\"models\": {\"\": {\"input\": 1, \"output\": 1}}}", "models: a model name is empty");
}

TEST(prices_parse_error_text_is_cut_to_the_buffer)
{
    char err[8];
    memset(err, 'x', sizeof(err));
    CHECK(parse("{}", err, sizeof(err)) == NULL);
    CHECK_STR(err, "models:");
    CHECK(parse("{}", NULL, 0) == NULL);
}

/* --- a provider's own prices (config `prices:` on a provider) ------------ */

static gyre_prices_t *override_table(void)
{
    static const char *const models[] = {"gpt-4o", "house-model"};
    static const gyre_price_t prices[] = {{1, 4, 0.5, -1}, {0.25, 0.5, -1, -1}};
    return gyre_prices_create(models, prices, 2);
}

TEST(prices_created_from_the_config_copy_names_and_sort_them)
{
    static const char *const models[] = {"zeta", "alpha"};
    static const gyre_price_t prices[] = {{1, 2, -1, -1}, {3, 4, -1, -1}};
    gyre_prices_t *p = gyre_prices_create(models, prices, 2);
    CHECK_INT(gyre_prices_count(p), 2);
    CHECK_STR(gyre_prices_version(p), "");
    CHECK(find(p, "alpha") != NULL && find(p, "alpha")->input == 3);
    CHECK(find(p, "zeta") != NULL && find(p, "zeta")->output == 2);
    gyre_prices_free(p);
}

TEST(prices_lookup_takes_the_providers_own_price_before_the_table)
{
    char err[256];
    gyre_prices_t *t = parse(table, err, sizeof(err));
    gyre_prices_t *o = override_table();
    const gyre_price_t *p = gyre_prices_lookup(o, t, LIT("gpt-4o"));
    CHECK(p != NULL && p->input == 1 && p->output == 4 && p->cached_input == 0.5);
    /* The override's matching rules are the table's: a dated id finds its family. */
    p = gyre_prices_lookup(o, t, LIT("gpt-4o-2024-08-06"));
    CHECK(p != NULL && p->input == 1);
    gyre_prices_free(o);
    gyre_prices_free(t);
}

TEST(prices_lookup_falls_back_to_the_table_and_is_null_when_neither_knows)
{
    char err[256];
    gyre_prices_t *t = parse(table, err, sizeof(err));
    gyre_prices_t *o = override_table();
    /* The override's "gpt-4o" would cover "gpt-4o-mini", but the table names it: the more specific wins. */
    const gyre_price_t *p = gyre_prices_lookup(o, t, LIT("gpt-4o-mini"));
    CHECK(p != NULL && p->input == 0.15);
    p = gyre_prices_lookup(o, t, LIT("claude-sonnet-4-5"));
    CHECK(p != NULL && p->input == 3.5);
    p = gyre_prices_lookup(NULL, t, LIT("gpt-4o"));
    CHECK(p != NULL && p->input == 2.5);
    p = gyre_prices_lookup(o, NULL, LIT("house-model"));
    CHECK(p != NULL && p->input == 0.25);
    CHECK(gyre_prices_lookup(o, t, LIT("unknown-model")) == NULL);
    CHECK(gyre_prices_lookup(NULL, NULL, LIT("gpt-4o")) == NULL);
    gyre_prices_free(o);
    gyre_prices_free(t);
}

TEST(prices_trace_cost_uses_the_answering_providers_prices_and_is_nan_when_unknown)
{
    char err[256];
    gyre_prices_t *t = parse(table, err, sizeof(err));
    gyre_prices_t *o = override_table();
    gyre_trace_t tr;
    memset(&tr, 0, sizeof(tr));
    tr.model = (gyre_tstr_t){"gpt-4o", 6};
    tr.prompt_tokens = 1000000;
    tr.cached_tokens = 200000;
    tr.completion_tokens = 500000;
    tr.cost_usd = NAN;
    gyre_trace_price(&tr, t, o);
    CHECK_NEAR(tr.cost_usd, 0.8 * 1 + 0.2 * 0.5 + 0.5 * 4); /* 2.9 at the override */
    tr.cost_usd = NAN;
    gyre_trace_price(&tr, t, NULL);
    CHECK_NEAR(tr.cost_usd, 0.8 * 2.5 + 0.2 * 1.25 + 0.5 * 10); /* 7.25 at the table */
    tr.model = (gyre_tstr_t){"unknown-model", 13};
    tr.cost_usd = NAN;
    gyre_trace_price(&tr, t, o);
    CHECK(isnan(tr.cost_usd));
    gyre_prices_free(o);
    gyre_prices_free(t);
}
