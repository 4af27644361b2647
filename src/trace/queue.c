/* The per-worker SPSC trace ring (see queue.h). */
#include "trace/queue.h"

#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/alloc.h"
#include "common/log.h"

#define CACHE_LINE 64

struct gyre_trace_queue {
    /* Read-only after create: shared by both sides without contention. */
    alignas(CACHE_LINE) size_t mask;
    gyre_trace_t **slots;
    /* The producer's line. */
    alignas(CACHE_LINE) _Atomic size_t tail;
    size_t head_cache;
    /* The consumer's line. */
    alignas(CACHE_LINE) _Atomic size_t head;
    size_t tail_cache;
};

gyre_trace_queue_t *gyre_trace_queue_create(size_t capacity)
{
    size_t cap = 2;
    while (cap < capacity)
        cap <<= 1;
    /* aligned_alloc wants a size that is a multiple of the alignment. */
    size_t size = (sizeof(gyre_trace_queue_t) + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    gyre_trace_queue_t *q = aligned_alloc(CACHE_LINE, size);
    if (q == NULL) {
        gyre_logf("gyre: out of memory allocating a trace queue\n");
        abort();
    }
    q->mask = cap - 1;
    q->slots = gyre_calloc(cap, sizeof(*q->slots));
    atomic_init(&q->tail, 0);
    q->head_cache = 0;
    atomic_init(&q->head, 0);
    q->tail_cache = 0;
    return q;
}

void gyre_trace_queue_destroy(gyre_trace_queue_t *q)
{
    if (q == NULL)
        return;
    free(q->slots);
    free(q);
}

size_t gyre_trace_queue_capacity(const gyre_trace_queue_t *q)
{
    return q->mask + 1;
}

int gyre_trace_queue_push(gyre_trace_queue_t *q, gyre_trace_t *t)
{
    size_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    if (tail - q->head_cache > q->mask) {
        /* Looks full: refresh the consumer's index (acquire: its slot reads are done). */
        q->head_cache = atomic_load_explicit(&q->head, memory_order_acquire);
        if (tail - q->head_cache > q->mask)
            return -EAGAIN;
    }
    q->slots[tail & q->mask] = t;
    /* Release: the slot is written before the consumer can see it. */
    atomic_store_explicit(&q->tail, tail + 1, memory_order_release);
    return 0;
}

gyre_trace_t *gyre_trace_queue_pop(gyre_trace_queue_t *q)
{
    size_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    if (head == q->tail_cache) {
        q->tail_cache = atomic_load_explicit(&q->tail, memory_order_acquire);
        if (head == q->tail_cache)
            return NULL;
    }
    gyre_trace_t *t = q->slots[head & q->mask];
    atomic_store_explicit(&q->head, head + 1, memory_order_release);
    return t;
}

size_t gyre_trace_queue_depth(const gyre_trace_queue_t *q)
{
    /* head first: tail only grows, so the difference read this way is never negative. */
    size_t head = atomic_load_explicit(&q->head, memory_order_acquire);
    size_t tail = atomic_load_explicit(&q->tail, memory_order_acquire);
    return tail - head;
}
