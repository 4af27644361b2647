/* A cache hit's price (src/trace/record.c, gyre_trace_price): it costs 0, and what it saved is the cost the same
 * answer had when a provider made it, exactly. */
#include <math.h>
#include <string.h>

#include "config/prices.h"
#include "test.h"
#include "trace/record.h"

static void call(gyre_trace_t *t, int hit, const char *model)
{
    memset(t, 0, sizeof(*t));
    t->model = (gyre_tstr_t){(char *)model, strlen(model)};
    t->prompt_tokens = 1234;
    t->cached_tokens = 200;
    t->completion_tokens = 567;
    t->cost_usd = NAN;
    t->cache_hit = hit;
}

TEST(trace_price_of_a_cache_hit_is_0_and_saves_what_the_call_cost)
{
    gyre_prices_t *p = gyre_prices_builtin();
    gyre_trace_t made, hit;
    call(&made, 0, "gpt-4o-mini");
    gyre_trace_price(&made, p, NULL);
    CHECK(made.cost_usd > 0);
    CHECK(made.cost_saved_usd == 0);
    call(&hit, 1, "gpt-4o-mini");
    gyre_trace_price(&hit, p, NULL);
    CHECK(hit.cost_usd == 0);
    CHECK(hit.cost_saved_usd == made.cost_usd);
    gyre_prices_free(p);
}

TEST(trace_price_of_a_cache_hit_with_an_unknown_price_is_0_and_saves_an_unknown_amount)
{
    gyre_prices_t *p = gyre_prices_builtin();
    gyre_trace_t hit;
    call(&hit, 1, "no-such-model");
    gyre_trace_price(&hit, p, NULL);
    CHECK(hit.cost_usd == 0);
    CHECK(isnan(hit.cost_saved_usd));
    call(&hit, 1, "gpt-4o-mini");
    hit.prompt_tokens = -1; /* usage unknown */
    gyre_trace_price(&hit, p, NULL);
    CHECK(hit.cost_usd == 0);
    CHECK(isnan(hit.cost_saved_usd));
    gyre_prices_free(p);
}
