/* Circuit breakers (see breaker.h). */
#include "route/breaker.h"

#include <limits.h>
#include <string.h>

void gyre_breaker_init(gyre_breaker_t *b)
{
    memset(b, 0, sizeof(*b));
    b->state = GYRE_BREAKER_CLOSED;
}

/* A bucket's width; a window shorter than 10 ms still gets 1 ms buckets. */
static uint64_t bucket_width(const gyre_breaker_conf_t *c)
{
    uint64_t w = c->window_ms / GYRE_BREAKER_BUCKETS;
    return w > 0 ? w : 1;
}

static void clear_window(gyre_breaker_t *b)
{
    memset(b->ok, 0, sizeof(b->ok));
    memset(b->failed, 0, sizeof(b->failed));
}

/*
 * Moves the window up to `now`: every bucket that began more than a bucket's
 * width ago and is now out of the window is emptied and reused.  Bucket
 * starts stay on multiples of the width, so a quiet spell costs at most one
 * pass over the buckets however long it lasted.
 */
static void advance(gyre_breaker_t *b, const gyre_breaker_conf_t *c, uint64_t now_ms)
{
    uint64_t w = bucket_width(c);
    if (now_ms < b->bucket_start_ms || now_ms - b->bucket_start_ms < w)
        return; /* same bucket (or a clock that stepped back: stay put) */
    uint64_t n = (now_ms - b->bucket_start_ms) / w;
    if (n >= GYRE_BREAKER_BUCKETS) {
        clear_window(b);
    } else {
        for (uint64_t k = 0; k < n; k++) {
            b->bucket = (b->bucket + 1) % GYRE_BREAKER_BUCKETS;
            b->ok[b->bucket] = 0;
            b->failed[b->bucket] = 0;
        }
    }
    b->bucket_start_ms += n * w;
}

static void trip(gyre_breaker_t *b, uint64_t now_ms)
{
    b->state = GYRE_BREAKER_OPEN;
    b->opened_at_ms = now_ms;
    b->probing = 0;
    b->opens++;
}

static void reset_closed(gyre_breaker_t *b, uint64_t now_ms)
{
    b->state = GYRE_BREAKER_CLOSED;
    b->probing = 0;
    b->consecutive_failures = 0;
    clear_window(b);
    b->bucket = 0;
    b->bucket_start_ms = now_ms;
}

static int cooled_down(const gyre_breaker_t *b, const gyre_breaker_conf_t *c, uint64_t now_ms)
{
    return now_ms >= b->opened_at_ms && now_ms - b->opened_at_ms >= c->cooldown_ms;
}

int gyre_breaker_available(const gyre_breaker_t *b, const gyre_breaker_conf_t *c, uint64_t now_ms)
{
    if (c->failures == 0)
        return 1;
    switch (b->state) {
    case GYRE_BREAKER_CLOSED: return 1;
    case GYRE_BREAKER_OPEN: return cooled_down(b, c, now_ms);
    case GYRE_BREAKER_HALF_OPEN: return !b->probing;
    }
    return 0;
}

int gyre_breaker_acquire(gyre_breaker_t *b, const gyre_breaker_conf_t *c, uint64_t now_ms)
{
    if (c->failures == 0)
        return 1;
    switch (b->state) {
    case GYRE_BREAKER_CLOSED: return 1;
    case GYRE_BREAKER_OPEN:
        if (!cooled_down(b, c, now_ms))
            return 0;
        b->state = GYRE_BREAKER_HALF_OPEN;
        b->probing = 1;
        return 1;
    case GYRE_BREAKER_HALF_OPEN:
        if (b->probing)
            return 0;
        b->probing = 1;
        return 1;
    }
    return 0;
}

/* Whether the window's failure share has reached the configured rate. */
static int rate_exceeded(const gyre_breaker_t *b, const gyre_breaker_conf_t *c)
{
    if (c->error_rate_pct == 0)
        return 0;
    uint64_t ok = 0, failed = 0;
    for (size_t i = 0; i < GYRE_BREAKER_BUCKETS; i++) {
        ok += b->ok[i];
        failed += b->failed[i];
    }
    uint64_t total = ok + failed;
    return total >= c->min_requests && failed * 100 >= (uint64_t)c->error_rate_pct * total;
}

void gyre_breaker_record(gyre_breaker_t *b, const gyre_breaker_conf_t *c, int ok, uint64_t now_ms)
{
    if (c->failures == 0)
        return;
    switch (b->state) {
    case GYRE_BREAKER_OPEN: return;
    case GYRE_BREAKER_HALF_OPEN:
        if (ok)
            reset_closed(b, now_ms);
        else
            trip(b, now_ms);
        return;
    case GYRE_BREAKER_CLOSED: break;
    }
    advance(b, c, now_ms);
    if (ok) {
        if (b->ok[b->bucket] < UINT_MAX)
            b->ok[b->bucket]++;
        b->consecutive_failures = 0;
        return;
    }
    if (b->failed[b->bucket] < UINT_MAX)
        b->failed[b->bucket]++;
    if (b->consecutive_failures < UINT_MAX)
        b->consecutive_failures++;
    if (b->consecutive_failures >= c->failures || rate_exceeded(b, c))
        trip(b, now_ms);
}

void gyre_breaker_release(gyre_breaker_t *b)
{
    if (b->state == GYRE_BREAKER_HALF_OPEN)
        b->probing = 0;
}
