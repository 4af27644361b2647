/* Allocation wrappers that abort on out-of-memory (see alloc.h). */
#include "common/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static void oom(size_t n)
{
    gyre_logf("gyre: out of memory allocating %zu bytes\n", n);
    abort();
}

void *gyre_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n);
    return p;
}

void *gyre_calloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (p == NULL)
        oom(count * n);
    return p;
}

void *gyre_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n);
    return q;
}

char *gyre_strndup(const char *s, size_t n)
{
    char *d = gyre_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *gyre_strdup(const char *s)
{
    return gyre_strndup(s, strlen(s));
}
