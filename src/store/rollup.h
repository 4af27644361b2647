/*
 * The stats rollup (GET /api/stats): the part of the store that
 * does not depend on the database, so the SQLite backend and the
 * PostgreSQL one compute the same numbers.
 *
 * - A log-scale histogram (gyre_hist_*) with a fixed bucket layout: bucket
 *   i >= 1 holds the values in (G^(i-2), G^(i-1)] microseconds with
 *   G = (1 + a) / (1 - a), a = GYRE_HIST_ALPHA; bucket 0 holds 0 (and
 *   negative values, a clock step).  A bucket reads back as 2 G^(i-1) /
 *   (G + 1), which is within a (1 %) of every value in it, so a percentile
 *   read from the histogram is within 1 % of the exact nearest-rank
 *   percentile of the same values (DDSketch's bound).  Stored form: the
 *   non-empty buckets in ascending order as varint pairs (index delta,
 *   count), so a histogram of a few calls is a few bytes, and two stored
 *   histograms merge without decoding into a dense array.
 *
 * - Batch grouping (gyre_rollup_batch): the writer hands the new traces of
 *   a batch; each trace counts in its minute and in its hour, keyed by
 *   (route, provider, model, agent, user, status class).  Grouping happens
 *   here, in C, so a batch costs the store one upsert per group, not one
 *   per trace.
 *
 * - The answer (gyre_stats_answer_*): partial aggregates (a rollup row, or
 *   one trace read from the edges of the range that no whole minute
 *   covers) are added in any order into the total, the groups and the time
 *   buckets; gyre_stats_answer_json writes the API's shape (docs/api.md).
 */
#ifndef GYRE_STORE_ROLLUP_H
#define GYRE_STORE_ROLLUP_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "store/store.h"
#include "trace/trace.h"

#define GYRE_HIST_ALPHA 0.01
#define GYRE_HIST_BUCKETS 1500 /* values up to 2^42 us (50 days) have their own bucket; longer ones share the last */

#define GYRE_ROLLUP_MINUTE_US ((int64_t)60 * 1000000)
#define GYRE_ROLLUP_HOUR_US ((int64_t)3600 * 1000000)

/* The most groups and time buckets one answer holds (past them the query is refused with -E2BIG). */
#define GYRE_STATS_GROUPS_MAX 10000
#define GYRE_STATS_BUCKETS_MAX 10080 /* a week of minutes */
#define GYRE_STATS_DEFAULT_RANGE_US ((int64_t)24 * 3600 * 1000000)

/* A dense window over the buckets in use: counts c[0..hi-lo) for buckets lo..hi-1.  Zero-initialise; dispose. */
typedef struct gyre_hist {
    uint64_t *c;
    int lo, hi;
    uint64_t n; /* values added */
} gyre_hist_t;

int gyre_hist_index(int64_t v_us);
double gyre_hist_value_us(int index);
void gyre_hist_add(gyre_hist_t *h, int index, uint64_t count);
/* Adds a stored histogram.  0, or -EINVAL when the bytes are not one (h may then hold part of it). */
int gyre_hist_add_encoded(gyre_hist_t *h, const void *p, size_t len);
/* Appends the stored form. */
int gyre_hist_encode(const gyre_hist_t *h, gyre_buf_t *out);
/* Merges two stored histograms into `out` (appended).  0, or -EINVAL when either is malformed. */
int gyre_hist_merge_encoded(const void *a, size_t alen, const void *b, size_t blen, gyre_buf_t *out);
/* The nearest-rank percentile (per mille: 500, 950, 990) in microseconds, or NaN when empty. */
double gyre_hist_percentile_us(const gyre_hist_t *h, int permille);
void gyre_hist_dispose(gyre_hist_t *h);

/* What of a trace the rollup reads.  Unknown tokens are -1, an unknown cost NaN, no ttft -1. */
typedef struct gyre_rollup_in {
    int64_t started_us, latency_us, ttft_us;
    int status;
    gyre_tstr_t route, provider, model, agent, user;
    int64_t prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens;
    double cost_usd;
    double cost_saved_usd; /* a cache hit's (trace.h); NaN: unknown */
} gyre_rollup_in_t;

void gyre_rollup_in_from_trace(gyre_rollup_in_t *in, const gyre_trace_t *t);

/* One group of a batch: the upsert's values.  The strings and histograms live until the callback returns. */
typedef struct gyre_rollup_group {
    int64_t span_us, start_us;
    gyre_tstr_t route, provider, model, agent, user;
    int status_class; /* status / 100 */
    int64_t requests;
    int64_t prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens; /* sums of the known ones */
    double cost_usd;                                                           /* sum of the known costs */
    int64_t cost_n;                                                            /* how many had a known cost */
    int64_t ttft_n;                                                            /* how many had a ttft */
    const void *lat_hist, *ttft_hist;
    size_t lat_len, ttft_len;
    double cost_saved_usd; /* sum of the known amounts cache hits saved */
} gyre_rollup_group_t;

typedef int (*gyre_rollup_group_cb)(void *arg, const gyre_rollup_group_t *g);

/* Groups n traces by minute and by hour and calls cb once per group; stops at (and returns) cb's first non-zero. */
int gyre_rollup_batch(const gyre_rollup_in_t *in, size_t n, gyre_rollup_group_cb cb, void *arg);

/* The range and buckets a query covers once its defaults are applied (now_us: the clock). */
typedef struct gyre_stats_range {
    int64_t from_us, to_us, bucket_us;
} gyre_stats_range_t;

/* Applies the defaults (the 24 h to now) and checks the bucket count.  0, or -EINVAL / -E2BIG with err filled. */
int gyre_stats_range_resolve(const gyre_stats_query_t *q, int64_t now_us, gyre_stats_range_t *out, char *err,
                             size_t errlen);

typedef struct gyre_stats_answer gyre_stats_answer_t;

/* A partial aggregate: a rollup row, or one trace (requests 1, its latency and ttft as single values). */
typedef struct gyre_stats_part {
    int64_t t_us; /* where it falls in time (a row's start, a trace's start) */
    gyre_tstr_t route, provider, model, agent, user;
    gyre_tstr_t key_id, team; /* traces only: empty in a rollup row */
    int status_class;
    int64_t requests;
    int64_t prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens;
    double cost_usd;
    int64_t cost_n, ttft_n;
    /* Either stored histograms (lat_hist != NULL), or one value each (ttft_us < 0: none). */
    const void *lat_hist, *ttft_hist;
    size_t lat_len, ttft_len;
    int64_t latency_us, ttft_us;
    double cost_saved_usd; /* what cache hits saved (known amounts) */
} gyre_stats_part_t;

gyre_stats_answer_t *gyre_stats_answer_create(const gyre_stats_range_t *range, unsigned group_by);
/* 0, -EINVAL (a corrupt histogram) or -E2BIG (past GYRE_STATS_GROUPS_MAX groups), with err filled. */
int gyre_stats_answer_add(gyre_stats_answer_t *a, const gyre_stats_part_t *p, char *err, size_t errlen);
/* Appends the answer's JSON; 0 or -E2BIG (the buffer's bound). */
int gyre_stats_answer_json(gyre_stats_answer_t *a, gyre_buf_t *out);
void gyre_stats_answer_destroy(gyre_stats_answer_t *a);

#endif
