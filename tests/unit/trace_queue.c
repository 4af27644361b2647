/*
 * src/trace/queue.c: the per-worker SPSC ring keeps order, loses nothing
 * under two threads, and refuses a push when full instead of waiting.
 */
#include "trace/queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>

#include "test.h"

/* The ring never looks inside a trace: numbered fake pointers let the tests check order cheaply. */
#define FAKE(i) ((gyre_trace_t *)(uintptr_t)((i) + 1))
#define INDEX(t) ((size_t)(uintptr_t)(t) - 1)

TEST(trace_queue_capacity_rounds_up_to_a_power_of_two)
{
    gyre_trace_queue_t *q = gyre_trace_queue_create(1000);
    CHECK_INT(gyre_trace_queue_capacity(q), 1024);
    gyre_trace_queue_destroy(q);
    q = gyre_trace_queue_create(0);
    CHECK_INT(gyre_trace_queue_capacity(q), 2);
    gyre_trace_queue_destroy(q);
}

TEST(trace_queue_pop_on_an_empty_ring_returns_null)
{
    gyre_trace_queue_t *q = gyre_trace_queue_create(4);
    CHECK(gyre_trace_queue_pop(q) == NULL);
    CHECK_INT(gyre_trace_queue_depth(q), 0);
    gyre_trace_queue_destroy(q);
}

TEST(trace_queue_full_ring_refuses_with_eagain_and_keeps_its_contents)
{
    gyre_trace_queue_t *q = gyre_trace_queue_create(4);
    for (size_t i = 0; i < 4; i++)
        CHECK_INT(gyre_trace_queue_push(q, FAKE(i)), 0);
    CHECK_INT(gyre_trace_queue_push(q, FAKE(4)), -EAGAIN);
    CHECK_INT(gyre_trace_queue_depth(q), 4);
    CHECK(gyre_trace_queue_pop(q) == FAKE(0));
    CHECK_INT(gyre_trace_queue_push(q, FAKE(4)), 0);
    for (size_t i = 1; i <= 4; i++)
        CHECK(gyre_trace_queue_pop(q) == FAKE(i));
    CHECK(gyre_trace_queue_pop(q) == NULL);
    gyre_trace_queue_destroy(q);
}

#define MANY 1000000

static void *produce(void *arg)
{
    gyre_trace_queue_t *q = arg;
    for (size_t i = 0; i < MANY;)
        if (gyre_trace_queue_push(q, FAKE(i)) == 0)
            i++;
    return NULL;
}

TEST(trace_queue_two_threads_pass_a_million_items_in_order_with_none_lost)
{
    gyre_trace_queue_t *q = gyre_trace_queue_create(256);
    pthread_t th;
    pthread_create(&th, NULL, produce, q);
    size_t next = 0, misordered = 0;
    while (next < MANY) {
        gyre_trace_t *t = gyre_trace_queue_pop(q);
        if (t == NULL)
            continue;
        if (INDEX(t) != next)
            misordered++;
        next++;
    }
    pthread_join(th, NULL);
    CHECK_INT(misordered, 0);
    CHECK_INT(next, MANY);
    CHECK(gyre_trace_queue_pop(q) == NULL);
    gyre_trace_queue_destroy(q);
}
