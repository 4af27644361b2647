/*
 * OpenAI chat streams, taken apart and put together.
 *
 * The accumulator reads a stream of chat.completion.chunk events and keeps
 * what they add up to: the id, model, role, content, tool calls (by index,
 * arguments joined), finish_reason and usage.  From it gyre builds the one
 * chat.completion the stream amounts to (for the response cache, traces,
 * and the partial answer a mid-stream resume continues from).
 *
 * gyre_openai_completion_to_sse() goes the other way: one chat.completion
 * replayed as the chunk stream a provider would have sent (a cache hit for a
 * streaming client).
 */
#ifndef GYRE_DIALECT_OPENAI_STREAM_H
#define GYRE_DIALECT_OPENAI_STREAM_H

#include <stddef.h>

#include "common/buf.h"
#include "proxy/sse.h"

typedef struct gyre_openai_tool_acc {
    gyre_buf_t id, name, arguments;
} gyre_openai_tool_acc_t;

typedef struct gyre_openai_accum {
    gyre_sse_parser_t sse; /* when fed raw bytes */
    gyre_buf_t id, model, content, finish_reason;
    long long created;
    gyre_openai_tool_acc_t *tools;
    size_t ntools;
    int has_usage;
    long long prompt_tokens, completion_tokens, total_tokens, cached_tokens;
    int done;   /* [DONE] seen */
    int errored; /* an {"error":...} event seen */
    size_t events;
} gyre_openai_accum_t;

/* `max` bounds each of the buffers (and the SSE parser's event size). */
void gyre_openai_accum_init(gyre_openai_accum_t *a, size_t max);
void gyre_openai_accum_dispose(gyre_openai_accum_t *a);
/* Feeds raw SSE bytes (any split).  Returns 0, or -E2BIG past the bound. */
int gyre_openai_accum_feed(gyre_openai_accum_t *a, const char *bytes, size_t len);
/* Feeds one event's data (a chunk's JSON, "[DONE]", or an error object). */
void gyre_openai_accum_event(gyre_openai_accum_t *a, const char *data, size_t len);
/* The chat.completion the chunks add up to: object, id, created, model, choices[0] (message with
 * role, content (null when none), tool_calls when any; finish_reason), usage when seen. */
int gyre_openai_accum_completion(const gyre_openai_accum_t *a, gyre_buf_t *out);

/*
 * A chat.completion → SSE chunks: a role chunk, the content in one delta,
 * each tool call (head and arguments), a finish_reason chunk, the usage
 * chunk when `include_usage`, then data: [DONE].  Returns -1 when
 * `completion` is not a chat.completion.
 */
int gyre_openai_completion_to_sse(const char *completion, size_t len, int include_usage, gyre_buf_t *out);

#endif
