/*
 * An incremental parser for server-sent events (the WHATWG event-stream
 * format) as providers send them: bytes arrive in arbitrary pieces, lines end
 * in CRLF, LF or CR, `data:` lines of one event are joined with '\n', lines
 * starting with ':' are comments, and a blank line ends the event.
 *
 * The relay feeds it the upstream's bytes as they pass through, to know
 * whether a stream ended properly ([DONE]) or was cut; the traces
 * read usage and content from the same events.  Memory is bounded: an event
 * larger than `max` bytes is an error (-E2BIG), never an unbounded buffer.
 */
#ifndef GYRE_COMMON_SSE_H
#define GYRE_COMMON_SSE_H

#include <stddef.h>

#include "common/buf.h"

/* Called once per complete event; `event` is "" when the event had no `event:` line. */
typedef void (*gyre_sse_event_cb)(void *ctx, const char *event, size_t event_len, const char *data, size_t data_len);

typedef struct gyre_sse_parser {
    gyre_buf_t line;  /* the current, unfinished line */
    gyre_buf_t data;  /* data of the current event */
    gyre_buf_t event; /* event name of the current event */
    int has_data;
    int last_was_cr; /* a CR ended the previous piece: a following LF belongs to it */
    gyre_sse_event_cb cb;
    void *ctx;
} gyre_sse_parser_t;

void gyre_sse_init(gyre_sse_parser_t *p, size_t max, gyre_sse_event_cb cb, void *ctx);
void gyre_sse_dispose(gyre_sse_parser_t *p);
/* Returns 0, or -E2BIG when a line or an event grew past the bound. */
int gyre_sse_feed(gyre_sse_parser_t *p, const char *bytes, size_t len);

#endif
