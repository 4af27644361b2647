/*
 * A trace: the record of one client request, written for every answer,
 * success or failure.  The proxy fills one per request in the
 * request's pool; gyre_trace_copy() makes the owned copy that travels
 * through a worker's queue to the writer thread and into the store.
 *
 * Ids: trace_id names this record: 32 lowercase hex digits, fresh for every
 * call, what x-gyre-trace-id returns and the store's key.  otel_trace_id is
 * the W3C trace the call belongs to: the caller's traceparent trace-id, so
 * that the many calls of one agent run share it, or trace_id when the
 * caller sent none.  span_id is 16 hex digits, this call's span.  Times are unix microseconds.
 * Secrets never enter a trace: attempts name a key by its id ("openai#0").
 * Numbers that can be unknown use -1 (tokens) or NaN (cost: unknown models
 * cost null, not 0).
 */
#ifndef GYRE_TRACE_H
#define GYRE_TRACE_H

#include <stddef.h>
#include <stdint.h>

#define GYRE_TRACE_MAX_ATTEMPTS 16
#define GYRE_TRACE_MAX_TAGS 16
#define GYRE_TRACE_MAX_META 16

/* A string a trace owns: bytes and length (not necessarily NUL-terminated in the pool; copies are). */
typedef struct gyre_tstr {
    char *p;
    size_t len;
} gyre_tstr_t;

typedef struct gyre_trace_attempt {
    gyre_tstr_t provider, model, key_id;
    int status;            /* HTTP status, or 0 when none came (connect error, timeout) */
    int64_t started_us;
    int64_t latency_us;
    gyre_tstr_t error;     /* gyre's message, or empty */
} gyre_trace_attempt_t;

typedef struct gyre_trace_meta {
    gyre_tstr_t key, value;
} gyre_trace_meta_t;

typedef struct gyre_trace {
    char trace_id[33];
    char otel_trace_id[33];  /* the W3C trace-id (traceparent's, or trace_id) */
    char span_id[17];
    char parent_span_id[17]; /* from traceparent, or "" */
    gyre_tstr_t request_id;
    int64_t started_us, ended_us;
    int64_t ttft_us;          /* time to the first token of a stream; -1 when not a stream */
    gyre_tstr_t endpoint;     /* "/v1/chat/completions", "/v1/messages", ... */
    gyre_tstr_t route;        /* empty for provider/model */
    gyre_tstr_t provider, model; /* the final target */
    int status;               /* what the client got */
    int stream;
    int cache_hit;
    gyre_tstr_t finish_reason;
    int64_t prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens; /* -1: unknown */
    double cost_usd;          /* NaN: unknown */
    gyre_trace_attempt_t attempts[GYRE_TRACE_MAX_ATTEMPTS];
    size_t nattempts;
    /* Trajectory and client metadata. */
    gyre_tstr_t session, agent, user;
    /* Who called: the gateway key's public id ("gk_...", or a config key's id) and its team; "" when none. */
    gyre_tstr_t client_key_id, team;
    gyre_tstr_t tags[GYRE_TRACE_MAX_TAGS];
    size_t ntags;
    gyre_trace_meta_t meta[GYRE_TRACE_MAX_META];
    size_t nmeta;
    /* Bodies (a stream's response reassembled into one completion), empty when the route does not capture them. */
    gyre_tstr_t request_body, response_body;
    /* A cache hit costs nothing (cost_usd is 0, in budgets and sums too); what its answer would have cost, priced
     * as the call that made it was, is here (NaN: the price is unknown).  0 for every call that is not a hit. */
    double cost_saved_usd;
} gyre_trace_t;

/* A deep copy in one allocation (free with free()). */
gyre_trace_t *gyre_trace_copy(const gyre_trace_t *t);

#endif
