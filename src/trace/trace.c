/*
 * The owned copy of a trace (see trace.h).  The proxy builds its trace in
 * the request's pool, which dies with the request; the writer thread may
 * see the trace much later, so the copy carries every string with it, in
 * the same allocation as the struct: one malloc and one free per trace,
 * and the copy can be handed across threads without further bookkeeping.
 */
#include "trace/trace.h"

#include <string.h>

#include "common/alloc.h"

/* Counts are bounded by the arrays; a larger one is a bug in the filler, and is clamped rather than overrun. */
static size_t clamp(size_t n, size_t max)
{
    return n > max ? max : n;
}

static size_t tstr_size(const gyre_tstr_t *s)
{
    return s->len + 1;
}

/* Copies `s` to *pos (NUL-terminated) and points `d` at it. */
static void tstr_place(gyre_tstr_t *d, const gyre_tstr_t *s, char **pos)
{
    char *p = *pos;
    if (s->len != 0)
        memcpy(p, s->p, s->len);
    p[s->len] = '\0';
    d->p = p;
    d->len = s->len;
    *pos = p + s->len + 1;
}

/* Every string of a trace, in one list, so the size pass and the copy pass cannot disagree. */
#define GYRE_TRACE_MAX_STRS (13 + 4 * GYRE_TRACE_MAX_ATTEMPTS + GYRE_TRACE_MAX_TAGS + 2 * GYRE_TRACE_MAX_META)

static size_t trace_strs(gyre_trace_t *t, gyre_tstr_t **strs)
{
    size_t n = 0;
    strs[n++] = &t->request_id;
    strs[n++] = &t->endpoint;
    strs[n++] = &t->route;
    strs[n++] = &t->provider;
    strs[n++] = &t->model;
    strs[n++] = &t->finish_reason;
    strs[n++] = &t->session;
    strs[n++] = &t->agent;
    strs[n++] = &t->user;
    strs[n++] = &t->client_key_id;
    strs[n++] = &t->team;
    strs[n++] = &t->request_body;
    strs[n++] = &t->response_body;
    for (size_t i = 0; i < t->nattempts; i++) {
        strs[n++] = &t->attempts[i].provider;
        strs[n++] = &t->attempts[i].model;
        strs[n++] = &t->attempts[i].key_id;
        strs[n++] = &t->attempts[i].error;
    }
    for (size_t i = 0; i < t->ntags; i++)
        strs[n++] = &t->tags[i];
    for (size_t i = 0; i < t->nmeta; i++) {
        strs[n++] = &t->meta[i].key;
        strs[n++] = &t->meta[i].value;
    }
    return n;
}

gyre_trace_t *gyre_trace_copy(const gyre_trace_t *t)
{
    /* The source's string fields, seen through a shallow copy so one helper lists both sides. */
    gyre_trace_t src = *t;
    src.nattempts = clamp(src.nattempts, GYRE_TRACE_MAX_ATTEMPTS);
    src.ntags = clamp(src.ntags, GYRE_TRACE_MAX_TAGS);
    src.nmeta = clamp(src.nmeta, GYRE_TRACE_MAX_META);
    src.trace_id[sizeof(src.trace_id) - 1] = '\0';
    src.otel_trace_id[sizeof(src.otel_trace_id) - 1] = '\0';
    src.span_id[sizeof(src.span_id) - 1] = '\0';
    src.parent_span_id[sizeof(src.parent_span_id) - 1] = '\0';

    gyre_tstr_t *from[GYRE_TRACE_MAX_STRS];
    size_t n = trace_strs(&src, from), total = 0;
    for (size_t i = 0; i < n; i++)
        total += tstr_size(from[i]);

    gyre_trace_t *c = gyre_malloc(sizeof(*c) + total);
    *c = src;
    gyre_tstr_t *to[GYRE_TRACE_MAX_STRS];
    trace_strs(c, to);
    char *pos = (char *)(c + 1);
    for (size_t i = 0; i < n; i++)
        tstr_place(to[i], from[i], &pos);
    /* Unused slots must not point into the pool the source came from. */
    memset(c->attempts + c->nattempts, 0, sizeof(c->attempts[0]) * (GYRE_TRACE_MAX_ATTEMPTS - c->nattempts));
    memset(c->tags + c->ntags, 0, sizeof(c->tags[0]) * (GYRE_TRACE_MAX_TAGS - c->ntags));
    memset(c->meta + c->nmeta, 0, sizeof(c->meta[0]) * (GYRE_TRACE_MAX_META - c->nmeta));
    return c;
}
