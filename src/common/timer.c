/* Timers of any length as hops on power-of-two h2o timeouts (see timer.h). */
#include "common/timer.h"

#include <string.h>

void gyre_timer_wheel_init(gyre_timer_wheel_t *w, h2o_loop_t *loop)
{
    w->loop = loop;
    /* Level 0 is "the next turn of the loop"; level i waits 2^(i-1) ms. */
    for (size_t i = 0; i < GYRE_TIMER_LEVELS; i++)
        h2o_timeout_init(loop, &w->levels[i], i == 0 ? 0 : (uint64_t)1 << (i - 1));
}

void gyre_timer_wheel_dispose(gyre_timer_wheel_t *w)
{
    for (size_t i = 0; i < GYRE_TIMER_LEVELS; i++)
        h2o_timeout_dispose(w->loop, &w->levels[i]);
}

/* The longest level that does not overshoot `left`. */
static size_t level_for(uint64_t left)
{
    if (left == 0)
        return 0;
    size_t i = 1;
    while (i + 1 < GYRE_TIMER_LEVELS && ((uint64_t)1 << i) <= left)
        i++;
    return i;
}

static void on_hop(h2o_timeout_entry_t *entry)
{
    gyre_timer_t *t = H2O_STRUCT_FROM_MEMBER(gyre_timer_t, entry, entry);
    uint64_t now = h2o_now(t->wheel->loop);
    if (now < t->at_ms) {
        h2o_timeout_link(t->wheel->loop, &t->wheel->levels[level_for(t->at_ms - now)], &t->entry);
        return;
    }
    t->cb(t);
}

void gyre_timer_start(gyre_timer_wheel_t *w, gyre_timer_t *t, uint64_t delay_ms, gyre_timer_cb cb)
{
    if (h2o_timeout_is_linked(&t->entry))
        h2o_timeout_unlink(&t->entry);
    t->entry.cb = on_hop;
    t->wheel = w;
    t->cb = cb;
    t->at_ms = h2o_now(w->loop) + delay_ms;
    h2o_timeout_link(w->loop, &w->levels[level_for(delay_ms)], &t->entry);
}

void gyre_timer_stop(gyre_timer_t *t)
{
    if (h2o_timeout_is_linked(&t->entry))
        h2o_timeout_unlink(&t->entry);
}

int gyre_timer_is_active(gyre_timer_t *t)
{
    return h2o_timeout_is_linked(&t->entry);
}
