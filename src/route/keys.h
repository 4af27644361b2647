/*
 * A provider's API keys on one worker: which key the next call uses, which
 * keys are resting after a 429, and each key's circuit breaker.
 *
 * Everything here is per worker and lock-free: a pool is built once when the
 * worker starts (one allocation) and never allocates again.  A pick is
 * O(keys).  Session affinity needs no shared state either: rendezvous hashing
 * gives every worker the same answer for the same session and the same set
 * of usable keys.
 *
 * Key weights (`weight:` in the config) shape the weighted strategy and the
 * affinity hash.  A key of weight 0 is a standby: it takes calls only while
 * no key with a weight is usable.
 */
#ifndef GYRE_ROUTE_KEYS_H
#define GYRE_ROUTE_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "route/breaker.h"

/* A 429 without a usable Retry-After rests the key this long. */
#define GYRE_KEYS_DEFAULT_COOLDOWN_MS 1000
/*
 * The longest rest a provider's Retry-After can impose.  A quota that resets
 * tomorrow, or a garbled date, must not silence a key for a day: after five
 * minutes one call finds out again, which costs one 429.
 */
#define GYRE_KEYS_MAX_COOLDOWN_MS 300000

typedef struct gyre_key_state {
    gyre_breaker_t breaker;
    uint64_t cooldown_until_ms; /* after a 429: skipped until then */
    int wrr_current;            /* smooth weighted round robin */
} gyre_key_state_t;

/* Embedded in its owner; init/dispose. `conf` must outlive the pool. */
typedef struct gyre_keypool {
    const gyre_provider_conf_t *conf;
    gyre_key_state_t *keys;
    size_t nkeys; /* conf->nkeys, or 1 when the provider has no key (one slot, key NULL, still with a breaker) */
    size_t next;  /* round robin: where the next scan starts */
    /* Firing alerts' overrides (route/override.h), or NULL: a key out is skipped like a resting key unless no
     * other key is usable; a provider held open has no usable key. */
    const struct gyre_overrides *overrides;
    size_t provider; /* this pool's provider index in the overrides */
} gyre_keypool_t;

/* Allocates keys[] once. */
void gyre_keypool_init(gyre_keypool_t *kp, const gyre_provider_conf_t *conf);
void gyre_keypool_dispose(gyre_keypool_t *kp);
/* The pool reads alert overrides for provider `provider` (o NULL: none). */
void gyre_keypool_set_overrides(gyre_keypool_t *kp, const struct gyre_overrides *o, size_t provider);

/* Whether any key could take a call now (not cooling down, breaker available). */
int gyre_keypool_available(const gyre_keypool_t *kp, uint64_t now_ms);

/*
 * Picks and acquires a key: its index, or -1 when none is usable.
 * affinity != 0: rendezvous (highest-random-weight) hashing of `affinity`
 * over the usable keys, weighted by key weight, so the same session keeps the
 * same key while it is usable, on every worker, with no shared state (keys
 * are told apart by their ids, "provider#0", so the answer does not depend on
 * a worker's history); else round robin (GYRE_KEYS_ROUND_ROBIN, skipping
 * unusable keys) or smooth weighted round robin (GYRE_KEYS_WEIGHTED, nginx's
 * algorithm, over the usable keys).  `exclude` is a key index to avoid when
 * another is usable (the one that just failed), or -1.
 *
 * Each index returned must be given back exactly once: _record() with the
 * outcome, _cooldown() for a 429, or _release() when there was none.
 */
int gyre_keypool_pick(gyre_keypool_t *kp, uint64_t now_ms, uint64_t affinity, int exclude);

/*
 * A 429 (or 529) on key i: skip it until `until_ms`, and record a failure on
 * its breaker.  The caller passes now + the provider's retry delay (see
 * gyre_retry_after_ms()); an `until_ms` not after now (0: the provider gave
 * none) rests the key GYRE_KEYS_DEFAULT_COOLDOWN_MS, and no rest is longer
 * than GYRE_KEYS_MAX_COOLDOWN_MS.  A rest already longer is kept.
 */
void gyre_keypool_cooldown(gyre_keypool_t *kp, int i, uint64_t until_ms, uint64_t now_ms);

/* The outcome of a call on key i (ok: 1 for success). */
void gyre_keypool_record(gyre_keypool_t *kp, int i, int ok, uint64_t now_ms);

/* A call on key i that ended without an outcome (the client went away). */
void gyre_keypool_release(gyre_keypool_t *kp, int i);

/*
 * The earliest time any key becomes usable again (for a Retry-After when
 * every key is cooling down); 0 when one is usable now.  A key whose breaker
 * has its probe out counts as usable at now + 1: the probe may come back at
 * any moment.
 */
uint64_t gyre_keypool_next_usable_ms(const gyre_keypool_t *kp, uint64_t now_ms);

/*
 * A 64-bit hash for affinity ids and rendezvous scores: FNV-1a over the bytes,
 * started from the seed, then the splitmix64 finaliser, so that every input
 * bit moves every output bit.  Not for secrets: it is fast, not keyed.
 */
uint64_t gyre_hash64(const void *p, size_t n, uint64_t seed);

/*
 * A Retry-After header's value (RFC 9110, 10.2.3) as milliseconds from now:
 * delta-seconds, also fractional ("1.5" is 1500; a fraction of a
 * millisecond rounds up), or an HTTP-date (IMF-fixdate, RFC 850 or asctime
 * form) compared with `now_unix`.  0 when unreadable, and for "0" or a date
 * not in the future, which the caller treats as "no delay given".  Anything
 * longer than GYRE_RETRY_AFTER_MAX_MS reads as that, so now + the result
 * never overflows.
 *
 * Some providers (OpenAI) also send `retry-after-ms`, a plain count of
 * milliseconds, which is the more precise of the two when both are present:
 * the caller reads that header itself and prefers it.
 */
#define GYRE_RETRY_AFTER_MAX_MS 86400000ULL /* one day */
uint64_t gyre_retry_after_ms(const char *value, size_t len, long long now_unix);

/*
 * Scrubs a provider's own secrets from text gyre relays or keeps: an upstream
 * error body that echoes the request head ("Authorization: Bearer sk-...")
 * must not hand the gateway's key to the client, nor to the trace store.
 * Every occurrence in b of one of conf's keys (for a Bedrock
 * "AKID:SECRET[:TOKEN]" key, each of its parts as well) becomes
 * GYRE_KEYS_SCRUB_MARKER, longest match first.  Parts shorter than
 * GYRE_KEYS_SCRUB_MIN bytes are not looked for: such a string cannot be told
 * from ordinary text, and is no secret.  Encoded forms (base64,
 * percent-encoding) are not looked for.  The result fits: it is built in a
 * buffer sized for the worst case (every GYRE_KEYS_SCRUB_MIN bytes a marker),
 * and b's own maximum is raised to that when it must grow.  Returns how many
 * occurrences were replaced; b is untouched when there were none (no
 * allocation then).
 */
#define GYRE_KEYS_SCRUB_MARKER "[REDACTED:provider_key]"
#define GYRE_KEYS_SCRUB_MIN 8
struct gyre_buf;
size_t gyre_keys_scrub(const gyre_provider_conf_t *conf, struct gyre_buf *b);

#endif
