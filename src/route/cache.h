/*
 * The response cache: exact-match, in memory, one per route that enables it
 * (`cache:` in the config), shared by every worker thread.
 *
 * A key is the canonical form of a chat request (gyre_cache_key), so two
 * requests that differ only in key order, whitespace or members that do not
 * change the answer (stream, user, ...) share an entry.  A value is opaque
 * bytes; the proxy stores the complete chat.completion and, for a streaming
 * client, replays it with gyre_openai_completion_to_sse().
 *
 * Bounds: entries live `ttl_ms`, and the cache never holds more than
 * `max_bytes`, counting for each entry its key, its value and
 * GYRE_CACHE_ENTRY_OVERHEAD; the least recently used entries make room.  A
 * value (or a key) larger than max_bytes/8 is refused, so one answer can
 * never flush the cache.
 *
 * Locking: one mutex, held for the table operation itself.  Copies of keys
 * and values are made and freed outside it, except that a hit copies its
 * value into the caller's buffer under the lock (see cache.c for why).
 *
 * Ownership: the cache owns copies of everything stored; gyre_cache_get()
 * copies out into a buffer the caller owns.  Whoever creates a cache destroys
 * it, after every thread has stopped using it.
 */
#ifndef GYRE_ROUTE_CACHE_H
#define GYRE_ROUTE_CACHE_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* What each entry costs beyond its key and value bytes (its header, its slot in the table); stats.bytes counts it. */
#define GYRE_CACHE_ENTRY_OVERHEAD 64

typedef struct gyre_cache gyre_cache_t;

/* A cache of at most `max_bytes`; entries expire `ttl_ms` after they were stored (0: never). */
gyre_cache_t *gyre_cache_create(size_t max_bytes, uint64_t ttl_ms);
void gyre_cache_destroy(gyre_cache_t *c);

/*
 * Appends to `key` the cache key of an OpenAI chat request for `route`: the
 * route as a JSON string, then a canonical serialisation of the request
 * (object keys sorted bytewise at every depth, no whitespace, numbers
 * printed canonically so that 1, 1.0 and 1e0 agree, strings re-escaped) with
 * the top-level members that do not change the answer removed: stream,
 * stream_options, user, metadata, store, service_tier.  Everything else is
 * kept, n and parallel_tool_calls included.  Numbers are compared as cJSON
 * reads them, as doubles: two integers beyond 2^53 that round to the same
 * double share a key.  Returns 0, -EINVAL when `req` is not an object, or
 * -E2BIG past `key`'s bound or when `req` nests deeper than 128 levels (then
 * `key` is as it was, and the request is not cached).
 */
int gyre_cache_key(const cJSON *req, const char *route, gyre_buf_t *key);

/*
 * 1 and the value appended to `out` on a fresh hit (the entry becomes the
 * most recently used); 0 on a miss (an expired entry is removed then);
 * -E2BIG when `out` cannot hold the value (`out` unchanged, counted as
 * neither).  A hit is an entry with exactly these key bytes.
 */
int gyre_cache_get(gyre_cache_t *c, const char *key, size_t klen, uint64_t now_ms, gyre_buf_t *out);

/*
 * Stores a copy of `value` under a copy of `key`, replacing an entry with the
 * same key, and evicts least recently used entries until the cache fits.
 * Returns 0, or -E2BIG (nothing stored) when the value or the key is larger
 * than max_bytes/8.
 */
int gyre_cache_put(gyre_cache_t *c, const char *key, size_t klen, const char *value, size_t vlen, uint64_t now_ms);

typedef struct gyre_cache_stats {
    uint64_t hits, misses; /* gyre_cache_get() answers; an expired entry is a miss */
    uint64_t evictions;    /* fresh entries dropped to make room */
    uint64_t expirations;  /* expired entries dropped, on a get or while making room */
    size_t entries, bytes; /* now; bytes as the bound counts them */
} gyre_cache_stats_t;

void gyre_cache_stats(gyre_cache_t *c, gyre_cache_stats_t *out);

#endif
