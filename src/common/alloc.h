/*
 * Allocation wrappers.  Out of memory is not a condition gyre tries to limp
 * through: like redis' zmalloc, these abort with a message, so callers never
 * check for NULL.  Bounds on what may be allocated are enforced earlier, where
 * the size comes from (body limits, buffer maxima).
 */
#ifndef GYRE_COMMON_ALLOC_H
#define GYRE_COMMON_ALLOC_H

#include <stddef.h>

void *gyre_malloc(size_t n);
void *gyre_calloc(size_t count, size_t n);
void *gyre_realloc(void *p, size_t n);
char *gyre_strdup(const char *s);
char *gyre_strndup(const char *s, size_t n);

#endif
