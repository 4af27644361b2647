/*
 * A fast per-thread pseudo-random generator (xorshift64*): each worker owns
 * its state, so drawing takes no lock.  Not for secrets: the route's weighted
 * draw, trace and span ids, request ids.
 */
#ifndef GYRE_COMMON_RAND_H
#define GYRE_COMMON_RAND_H

#include <stdint.h>

/* The next number of the sequence; *state must be non-zero. */
static inline uint64_t gyre_rand_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

#endif
