/*
 * The price table: what a model costs per million tokens, for the cost of
 * each call (logs, metrics, the store) and for the `cheapest` strategy.
 *
 * The table ships as data/prices.json, compiled into the binary; `prices:` in
 * the config replaces it with a file of the same format:
 *
 *   {"version": "2026-12-01", "source": "where the numbers came from",
 *    "models": {"gpt-4o-mini": {"input": 0.15, "output": 0.60, "cached_input": 0.075},
 *               "claude-sonnet-4-5": {"input": 3, "output": 15, "cached_input": 0.3, "cache_write": 3.75}}}
 *
 * input and output are required; cached_input (a prompt-cache hit) and
 * cache_write (writing the prompt cache, Anthropic's 5-minute price) are
 * optional.  Unknown fields are errors, so a misspelt price is not silently
 * ignored.
 *
 * A provider's `prices:` in the config is a table of its own, built with
 * gyre_prices_create(), that takes precedence over this one for the calls
 * that provider answered (gyre_prices_lookup()).
 *
 * A table is immutable once parsed and shared read-only by every worker;
 * lookups allocate nothing and take no lock.
 */
#ifndef GYRE_CONFIG_PRICES_H
#define GYRE_CONFIG_PRICES_H

#include <stddef.h>

typedef struct gyre_price {
    double input, output, cached_input, cache_write; /* USD per 1M tokens; cached_input/cache_write < 0 when unknown */
} gyre_price_t;

typedef struct gyre_prices gyre_prices_t; /* opaque, immutable after load: shared read-only by all workers */

/*
 * Parses a price table (the format above); NULL with `err` (the field named,
 * as "models.gpt-4o.input: ...") when malformed.  The caller frees the
 * result with gyre_prices_free().
 */
gyre_prices_t *gyre_prices_parse(const char *json, size_t len, char *err, size_t errlen);

/*
 * The built-in table: data/prices.json compiled into the binary, parsed
 * afresh (the caller frees it).  It is checked by the unit tests, so a
 * failure to parse is a broken build: it aborts with the reason.
 */
gyre_prices_t *gyre_prices_builtin(void);

/*
 * A table of `n` models from the config (a provider's `prices:` overrides);
 * names and prices are copied, and names must be distinct (the config
 * parser refuses a model listed twice).  Free it with gyre_prices_free().
 */
gyre_prices_t *gyre_prices_create(const char *const *models, const gyre_price_t *prices, size_t n);

void gyre_prices_free(gyre_prices_t *p);

/* The table's "version" ("" when it has none), and how many models it prices. */
const char *gyre_prices_version(const gyre_prices_t *p);
size_t gyre_prices_count(const gyre_prices_t *p);

/*
 * The price of `model`: exact match first; else the longest key that is a
 * prefix of model followed by '-' or '@' or ':' (dated ids like
 * "claude-sonnet-4-5-20250929", "gpt-4o-2024-08-06"); for "provider/model"
 * names and Bedrock ids with a region prefix ("us.anthropic...") also try
 * after the first '/' or '.'-separated region.  NULL when unknown (cost is
 * then null, not 0).
 */
const gyre_price_t *gyre_prices_find(const gyre_prices_t *p, const char *model, size_t len);

/*
 * The price of `model` for a call that a provider answered: its own table
 * (`provider`, a provider's `prices:`, or NULL) before `table` (the
 * built-in one or the root `prices:` file), both matched as
 * gyre_prices_find() does.  When both know the model, the one that lists
 * it under the longer (more specific) name wins, the provider's on a tie:
 * a provider's "gpt-4o" prices "gpt-4o" and "gpt-4o-2024-08-06", not
 * "gpt-4o-mini", which the table names itself.  NULL when neither knows it.
 */
const gyre_price_t *gyre_prices_lookup(const gyre_prices_t *provider, const gyre_prices_t *table, const char *model,
                                       size_t len);

/*
 * Cost in USD of a call, or -1 when the model is unknown (pr NULL).  cached
 * tokens are part of prompt_tokens and billed at cached_input when known
 * (else at input).  Negative counts read as 0, and cached tokens beyond the
 * prompt as the whole prompt.  Cache writes are not billed separately here:
 * a caller that has them adds count * cache_write / 1e6 itself.
 */
double gyre_prices_cost(const gyre_price_t *pr, long long prompt_tokens, long long cached_tokens,
                        long long completion_tokens);

#endif
