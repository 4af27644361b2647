/*
 * Timers of any length on an h2o 2.2 event loop.
 *
 * h2o 2.2's timeouts are lists with one fixed duration each (every entry in
 * a list expires in insertion order), which is cheap but cannot express "in
 * 137 ms".  A timer wheel of power-of-two durations can: a wait is made of
 * hops, each on the longest list that does not overshoot what is left, so
 * a timer fires within a millisecond of its time after at most ~20 hops and
 * nothing is allocated.  Used for retry backoff, attempt and first-byte
 * timeouts and request deadlines, whose lengths come from the config and
 * from Retry-After.
 *
 * One wheel per worker; timers belong to whoever embeds them (the request's
 * pool for the proxy), who must stop them before they are freed.
 */
#ifndef GYRE_COMMON_TIMER_H
#define GYRE_COMMON_TIMER_H

#include <h2o.h>
#include <stdint.h>

#define GYRE_TIMER_LEVELS 24 /* 1 ms .. 2^23 ms (2.3 h) per hop */

typedef struct gyre_timer_wheel {
    h2o_loop_t *loop;
    h2o_timeout_t levels[GYRE_TIMER_LEVELS];
} gyre_timer_wheel_t;

typedef struct gyre_timer gyre_timer_t;
typedef void (*gyre_timer_cb)(gyre_timer_t *t);

struct gyre_timer {
    h2o_timeout_entry_t entry;
    gyre_timer_wheel_t *wheel;
    uint64_t at_ms; /* when it is due, on the loop's clock */
    gyre_timer_cb cb;
};

void gyre_timer_wheel_init(gyre_timer_wheel_t *w, h2o_loop_t *loop);
void gyre_timer_wheel_dispose(gyre_timer_wheel_t *w);

/* Arms (or re-arms) `t` to call `cb` in `delay_ms`; 0 means on the next turn of the loop. */
void gyre_timer_start(gyre_timer_wheel_t *w, gyre_timer_t *t, uint64_t delay_ms, gyre_timer_cb cb);
void gyre_timer_stop(gyre_timer_t *t);
int gyre_timer_is_active(gyre_timer_t *t);

#endif
