/*
 * A circuit breaker: one per provider key, per worker.
 *
 * Closed, calls go.  It opens after conf->failures consecutive failures, or
 * when the error-rate window (the last window_ms, kept in GYRE_BREAKER_BUCKETS
 * buckets) holds at least min_requests outcomes of which error_rate_pct
 * percent or more failed.  Open, calls are refused until cooldown_ms has
 * passed; then exactly one call, the probe, is let through (half-open).  The
 * probe's success closes the breaker with every counter cleared; its failure
 * opens it again for another cooldown.
 *
 * The state belongs to one worker's event loop: no locks, no allocation, and
 * every call is O(GYRE_BREAKER_BUCKETS) at worst.  Times are milliseconds from
 * a monotonic clock, passed in as `now_ms`, so tests drive time by hand.
 */
#ifndef GYRE_ROUTE_BREAKER_H
#define GYRE_ROUTE_BREAKER_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

typedef enum gyre_breaker_state {
    GYRE_BREAKER_CLOSED = 0,
    GYRE_BREAKER_OPEN,
    GYRE_BREAKER_HALF_OPEN,
} gyre_breaker_state_t;

#define GYRE_BREAKER_BUCKETS 10 /* the error-rate window in 10 buckets of window_ms/10 */

/* Embedded in its owner (a key's state); gyre_breaker_init() is all it needs. */
typedef struct gyre_breaker {
    gyre_breaker_state_t state;
    unsigned consecutive_failures;
    uint64_t opened_at_ms;
    int probing;              /* half-open: the one probe is out */
    uint64_t bucket_start_ms; /* when the current bucket began */
    unsigned ok[GYRE_BREAKER_BUCKETS], failed[GYRE_BREAKER_BUCKETS];
    size_t bucket;  /* the current bucket's index */
    unsigned opens; /* times it opened, for metrics */
} gyre_breaker_t;

void gyre_breaker_init(gyre_breaker_t *b);

/*
 * Whether a call may go now, without changing anything (routing skips targets
 * that would be refused).  Open: no, until cooldown_ms has passed since it
 * opened (then yes: a probe); half-open: no while the probe is out.
 */
int gyre_breaker_available(const gyre_breaker_t *b, const gyre_breaker_conf_t *c, uint64_t now_ms);

/*
 * Like _available, and takes the slot: an open breaker past its cooldown
 * becomes half-open with probing = 1.  Returns 1 when the call may go.
 */
int gyre_breaker_acquire(gyre_breaker_t *b, const gyre_breaker_conf_t *c, uint64_t now_ms);

/*
 * The outcome of a call that acquire() let through.  Half-open: success
 * closes (counters reset), failure re-opens (opened_at = now).  Closed:
 * failure counts consecutive and in the window; opens at `failures`
 * consecutive, or when the window holds >= min_requests calls with
 * failed*100 >= error_rate_pct*total (error_rate_pct 0 disables the rate
 * rule).  Success resets consecutive.
 *
 * Open: the outcome is dropped.  It belongs to a call that left before the
 * breaker opened, and the cooldown must not be stretched or cut short by it.
 */
void gyre_breaker_record(gyre_breaker_t *b, const gyre_breaker_conf_t *c, int ok, uint64_t now_ms);

/*
 * A call that acquire() let through but that ended without an outcome (the
 * client went away): frees a half-open probe slot, so the next call probes.
 */
void gyre_breaker_release(gyre_breaker_t *b);

#endif
