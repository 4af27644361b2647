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
 */
#ifndef GYRE_DIALECT_EVENT_H
#define GYRE_DIALECT_EVENT_H

#include <stddef.h>

#include "dialect/openai.h"

typedef enum gyre_event_type {
    GYRE_EVENT_START = 1, /* the answer begins: id, model, created (the role is always the assistant) */
    GYRE_EVENT_TEXT,      /* text: the next piece of the assistant's text */
    GYRE_EVENT_TOOL_START, /* index, id, name: a function call begins */
    GYRE_EVENT_TOOL_ARGS, /* index, text: the next piece of that call's arguments (JSON text) */
    GYRE_EVENT_FINISH,    /* finish_reason, in OpenAI's vocabulary: stop, length, tool_calls, content_filter */
    GYRE_EVENT_USAGE,     /* usage (may come before or after FINISH, or not at all) */
    GYRE_EVENT_ERROR,     /* error: the provider ended its stream with an error of its own */
    GYRE_EVENT_DONE,      /* the provider's stream ended as its protocol says ([DONE], message_stop, ...) */
} gyre_event_type_t;

/* A borrowed string: `len` bytes at `p`, not NUL-terminated. */
typedef struct gyre_str {
    const char *p;
    size_t len;
} gyre_str_t;

typedef struct gyre_usage {
    long long input_tokens;  /* OpenAI's prompt_tokens */
    long long output_tokens; /* completion_tokens */
    long long total_tokens;
    long long cached_tokens; /* of the input, read from a cache (0 when none or unknown) */
} gyre_usage_t;

typedef struct gyre_event {
    gyre_event_type_t type;
    int index;         /* TOOL_START, TOOL_ARGS: the call's index in the answer, from 0 */
    gyre_str_t id;     /* START: the provider's answer id (may be empty); TOOL_START: the call's id */
    gyre_str_t model;  /* START: the model that answered (may be empty) */
    gyre_str_t name;   /* TOOL_START: the function's name */
    gyre_str_t text;   /* TEXT, TOOL_ARGS */
    long long created; /* START: unix seconds, 0 when the provider gave none */
    const char *finish_reason; /* FINISH: NUL-terminated, static */
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
