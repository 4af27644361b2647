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
#include "common/sse.h"

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
    int done;    /* [DONE] seen */
    int errored; /* an {"error":...} event seen */
    /* Something did not fit: a piece of content or arguments past `max`, an
     * event past the SSE bound, a tool index past 128.  From then on no text
     * is appended anywhere (finish_reason, usage and done still are), so the
     * completion is a prefix of the real one and must not be cached. */
    int truncated;
    size_t events; /* events seen, [DONE] and unreadable ones included */
} gyre_openai_accum_t;

/*
 * `max` bounds each of the buffers (and the SSE parser's event size).  The
 * SSE parser calls back into `a`, so an accumulator is not moved once
 * initialised.  The owner disposes it.
 */
void gyre_openai_accum_init(gyre_openai_accum_t *a, size_t max);
void gyre_openai_accum_dispose(gyre_openai_accum_t *a);
/* Feeds raw SSE bytes (any split).  Returns 0, or -E2BIG when an event was
 * past the bound (it is lost, and `truncated` set). */
int gyre_openai_accum_feed(gyre_openai_accum_t *a, const char *bytes, size_t len);
/*
 * Feeds one event's data (a chunk's JSON, "[DONE]", or an error object).
 * Only the choice with index 0 is read (with n > 1 the others are ignored);
 * data that is not a JSON object is counted and otherwise ignored.
 */
void gyre_openai_accum_event(gyre_openai_accum_t *a, const char *data, size_t len);
/*
 * Appends the chat.completion the chunks add up to, compact JSON in this order:
 * id, object, created (0 when never seen), model, choices[0] (index, message
 * with role, content (null when empty), tool_calls when any; finish_reason,
 * null when none), usage when seen (prompt_tokens_details only when
 * cached_tokens is not 0).  Returns 0, or -E2BIG with `out` as it was.
 */
int gyre_openai_accum_completion(const gyre_openai_accum_t *a, gyre_buf_t *out);

/*
 * A chat.completion → SSE chunks, each "data: {compact JSON}\n\n": a role
 * chunk (content "" or, for tool calls only, null), the content in one
 * delta, each tool call in one chunk (index, id, type, name and all its
 * arguments), a finish_reason chunk, the usage chunk ("choices":[]) when
 * `include_usage` and the completion has usage, then data: [DONE].  Members
 * the accumulator does not keep (logprobs, refusal, system_fingerprint) are
 * not replayed, so accumulating the replay gives back what
 * gyre_openai_accum_completion() wrote.  Returns 0, -1 when `completion` is
 * not a chat.completion with choices[0].message, or -E2BIG; on failure `out`
 * is as it was.
 */
int gyre_openai_completion_to_sse(const char *completion, size_t len, int include_usage, gyre_buf_t *out);

#endif
