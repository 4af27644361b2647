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
#include "dialect/event.h"

/*
 * The reader of an OpenAI chat-chunk stream (the stream of provider kinds
 * openai and azure): SSE bytes → events (dialect/event.h).  Each SSE event
 * is parsed once: its data goes out as a CHUNK event (the bytes as they
 * came, for a client that speaks OpenAI too), then the events read from it.
 * Nothing after [DONE] is read.  Only choices 0 to 63 are read.  Data that is not a JSON object (keep-alive
 * junk, a broken line) is passed on as its CHUNK only, unless the reader is
 * `strict` (translating for a client of another API, which cannot be given
 * what it does not say).
 */
typedef struct gyre_openai_reader {
    gyre_sse_parser_t sse;
    const gyre_event_sink_t *sink; /* during a feed */
    unsigned long long started;    /* a bit per choice whose START went out */
    unsigned named;                /* id (1), model (2), created (4) went out in a START */
    int done;                      /* [DONE] read */
    int strict;                    /* data that is not a JSON object fails the stream (-EBADMSG, `error` says why) */
    int stopped;                   /* the sink said stop, or strict reading failed: nothing more is read */
    int bad;                       /* strict reading failed */
    size_t events;                 /* SSE events read by gyre_openai_reader_feed */
    gyre_api_error_t error;        /* an error chunk's, for its ERROR event */
} gyre_openai_reader_t;

/* `max` bounds an SSE event (and a line). */
void gyre_openai_reader_init(gyre_openai_reader_t *r, size_t max);
void gyre_openai_reader_dispose(gyre_openai_reader_t *r);
/* Feeds SSE bytes (any split).  Returns 0, -1 when the sink stopped the reader, -EBADMSG when a strict reader
 * read data that is not JSON (`error` says so), or -E2BIG when an event was past the bound (it is lost; the
 * stream cannot be trusted after it). */
int gyre_openai_reader_feed(gyre_openai_reader_t *r, const char *bytes, size_t len, const gyre_event_sink_t *sink);
/* One SSE event's data (a chunk's JSON, "[DONE]", an error object).  Returns 0, -1 when the sink stopped, or
 * -EBADMSG as above. */
int gyre_openai_reader_data(gyre_openai_reader_t *r, const char *data, size_t len, const gyre_event_sink_t *sink);

/*
 * An OpenAI chat.completion.chunk stream written from events, exactly as
 * the translating provider dialects wrote it before events existed (the
 * bytes gyre_client_openai sends a client): "data: {chunk}\n\n" per event,
 * "data: [DONE]\n\n" at DONE.  The chunk head (id, created, model) is the
 * first START's, or the call's before any START.  USAGE is written only when
 * `include_usage`; CHUNK and ERROR events write nothing (the proxy writes an
 * error event itself).  The encoder holds the head in `head` (grown once).
 */
typedef struct gyre_openai_encoder {
    gyre_buf_t head; /* {"id":…,"object":"chat.completion.chunk","created":…,"model":… */
    int have_start;  /* the head is a START's */
    unsigned long long started; /* a bit per choice whose role chunk is out */
    int include_usage;
    int complete; /* data: [DONE] is out */
} gyre_openai_encoder_t;

void gyre_openai_encoder_init(gyre_openai_encoder_t *e, const char *id, const char *model, long long created,
                              int include_usage);
void gyre_openai_encoder_dispose(gyre_openai_encoder_t *e);
/* Appends the event's chunk to `out`: 0, or -1 with `out` as it was when it does not fit. */
int gyre_openai_encode(gyre_openai_encoder_t *e, const gyre_event_t *ev, gyre_buf_t *out);

typedef struct gyre_openai_tool_acc {
    gyre_buf_t id, name, arguments;
} gyre_openai_tool_acc_t;

typedef struct gyre_openai_accum {
    gyre_openai_reader_t reader; /* when fed SSE bytes or an event's data */
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
    size_t events; /* SSE events seen ([DONE] and unreadable ones included), or structured events when fed those */
} gyre_openai_accum_t;

/*
 * The accumulator as an event sink: `ctx` is the accumulator.  Events of
 * choice 0 are kept (START's id and model the first time they are not
 * empty; TEXT, tool calls by index, FINISH, USAGE); ERROR marks it errored
 * and DONE done.  Always returns 0: what does not fit marks it truncated.
 * The trace, the cache and a mid-stream resume read the same events the
 * client's encoder gets.
 */
int gyre_openai_accum_emit(void *ctx, const gyre_event_t *ev);

/*
 * `max` bounds each of the buffers (and the SSE parser's event size).  The
 * SSE parser calls back into `a`, so an accumulator is not moved once
 * initialised.  The owner disposes it.
 */
void gyre_openai_accum_init(gyre_openai_accum_t *a, size_t max);
void gyre_openai_accum_dispose(gyre_openai_accum_t *a);
/* Feeds raw SSE bytes (any split), read by the accumulator's own reader into its own events.  Returns 0, or -E2BIG when an event was
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
