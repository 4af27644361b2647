/*
 * The structured stream event: what every provider dialect's stream reader
 * produces and every client dialect's encoder consumes (MAP.md stage 7).
 *
 * Between a provider and a client in different dialects the answer is
 * parsed once (the provider's bytes → events) and encoded once (events →
 * the client's bytes): no intermediate SSE text, no re-parse.  An event
 * borrows its strings from the reader's buffers: they are valid only for
 * the duration of the emit call, and are not NUL-terminated.
 *
 * The vocabulary is the union of what the five provider APIs and the
 * client APIs stream (OpenAI chat chunks, Anthropic Messages events,
 * Responses events, Gemini candidates, Bedrock ConverseStream): an answer
 * starts, text and tool calls arrive in pieces, it finishes with a reason,
 * usage is reported, and the stream ends properly or with an error.
 *
 * The order a reader emits: START of a choice before anything else of that
 * choice; FINISH of each choice, then USAGE (when the provider reported it),
 * then DONE.  A START may come again for a choice already started, when a
 * later OpenAI chunk first names the id, model or created the first lacked:
 * encoders use a choice's first START only.  A consumer ignores event types it has no use for (CHUNK, say,
 * and choices other than 0 for an API without `n`).
 */
#ifndef GYRE_DIALECT_EVENT_H
#define GYRE_DIALECT_EVENT_H

#include <stddef.h>

#include "dialect/openai.h"

typedef enum gyre_event_type {
    GYRE_EVENT_START = 1,  /* choice, id, model, created: the answer (that choice of it) begins, as the assistant */
    GYRE_EVENT_TEXT,       /* choice, text: the next piece of the assistant's text (never empty) */
    GYRE_EVENT_TOOL_START, /* choice, index, id, name, text: a function call begins; `text` is the part of its
                            * arguments already known (empty, or all of them for a provider that sends calls whole) */
    GYRE_EVENT_TOOL_ARGS,  /* choice, index, text: the next piece of that call's arguments (JSON text, never empty) */
    GYRE_EVENT_FINISH,     /* choice, finish_reason, in OpenAI's vocabulary: stop, length, tool_calls, content_filter */
    GYRE_EVENT_USAGE,      /* usage (after the FINISHes, or not at all) */
    GYRE_EVENT_ERROR,      /* error: an OpenAI-speaking provider's error chunk ({"error":...}) mid-stream.  The
                            * other readers end with -1 and their `err` instead (the attempt fails there). */
    GYRE_EVENT_DONE,       /* the provider's stream ended as its protocol says ([DONE], message_stop, ...) */
    GYRE_EVENT_CHUNK,      /* text: an OpenAI-speaking provider's chunk as it came (the data of one SSE event,
                            * "[DONE]" excepted), before the events read from it; for a client that speaks
                            * OpenAI too, which gets the provider's bytes as they are */
} gyre_event_type_t;

/* A borrowed string: `len` bytes at `p`, not NUL-terminated. */
typedef struct gyre_str {
    const char *p;
    size_t len;
} gyre_str_t;

/* Which of the optional usage members the provider reported (what an OpenAI usage object then shows). */
enum {
    GYRE_USAGE_CACHED = 1,      /* prompt_tokens_details.cached_tokens */
    GYRE_USAGE_REASONING = 2,   /* completion_tokens_details.reasoning_tokens */
    GYRE_USAGE_CACHE_WRITE = 4, /* Anthropic's cache_creation_input_tokens and cache_read_input_tokens */
};

typedef struct gyre_usage {
    long long input_tokens;       /* OpenAI's prompt_tokens: every prompt token, cached ones included */
    long long output_tokens;      /* completion_tokens, reasoning included */
    long long total_tokens;
    long long cached_tokens;      /* of the input, read from a cache (0 when none or unknown) */
    long long cache_write_tokens; /* of the input, written to a cache (Anthropic, Bedrock; 0 otherwise) */
    long long reasoning_tokens;   /* of the output, thinking (0 when none or unknown) */
    unsigned details;             /* GYRE_USAGE_* */
} gyre_usage_t;

typedef struct gyre_event {
    gyre_event_type_t type;
    int choice;        /* the choice (OpenAI's n, Gemini's candidates) this event belongs to, from 0 */
    int index;         /* TOOL_START, TOOL_ARGS: the call's index in the choice, from 0 */
    gyre_str_t id;     /* START: the provider's answer id (may be empty); TOOL_START: the call's id */
    gyre_str_t model;  /* START: the model that answered (may be empty) */
    gyre_str_t name;   /* TOOL_START: the function's name */
    gyre_str_t text;   /* TEXT, TOOL_START, TOOL_ARGS, CHUNK */
    long long created; /* START: unix seconds, 0 when the provider gave none */
    const char *finish_reason; /* FINISH: NUL-terminated, valid during the emit call */
    gyre_usage_t usage;        /* USAGE */
    const gyre_api_error_t *error; /* ERROR */
} gyre_event_t;

/*
 * Where a reader sends its events.  `emit` returns 0, or -1 to stop the
 * reader (the consumer failed: its output bound, an encoding error); the
 * reader then returns -1 from its feed without reading further.
 */
typedef struct gyre_event_sink {
    int (*emit)(void *ctx, const gyre_event_t *ev);
    void *ctx;
} gyre_event_sink_t;

#endif
