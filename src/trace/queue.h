/*
 * A bounded single-producer single-consumer ring of owned traces: one per
 * worker, filled by that worker's event loop and emptied by the writer
 * thread (writer.h).  Lock-free with C11 atomics: the producer owns `tail`,
 * the consumer owns `head`, each on its own cache line, and each side keeps
 * a cached copy of the other's index so that it touches the shared line
 * only when the ring looks full (producer) or empty (consumer).
 *
 * The bound is the capacity, a power of two.  At the bound push does not
 * wait: it returns -EAGAIN and the caller decides (the writer's submit puts
 * the trace on its overflow list, bound for the spool).
 *
 * Exactly one thread may push and exactly one may pop; depth may be read
 * from any thread (it is a snapshot).
 */
#ifndef GYRE_TRACE_QUEUE_H
#define GYRE_TRACE_QUEUE_H

#include <stddef.h>

#include "trace/trace.h"

typedef struct gyre_trace_queue gyre_trace_queue_t;

/* A ring of at least `capacity` slots (rounded up to a power of two, at least 2). */
gyre_trace_queue_t *gyre_trace_queue_create(size_t capacity);
/* Frees the ring; traces still in it are the caller's to pop and free first. */
void gyre_trace_queue_destroy(gyre_trace_queue_t *q);
size_t gyre_trace_queue_capacity(const gyre_trace_queue_t *q);
/* Producer: 0, or -EAGAIN when full (the trace stays the caller's). */
int gyre_trace_queue_push(gyre_trace_queue_t *q, gyre_trace_t *t);
/* Consumer: the oldest trace, or NULL when empty. */
gyre_trace_t *gyre_trace_queue_pop(gyre_trace_queue_t *q);
/* How many traces are in the ring now (any thread). */
size_t gyre_trace_queue_depth(const gyre_trace_queue_t *q);

#endif
