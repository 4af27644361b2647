/*
 * Filling a request's trace (trace.h) as the request goes: its ids and
 * client metadata when it arrives, each attempt, what the answer said
 * (tokens, finish reason, model) and its cost when it ends.  Strings point
 * into the request's pool; the writer gets an owned copy at submit time.
 */
#ifndef GYRE_TRACE_RECORD_H
#define GYRE_TRACE_RECORD_H

#include <h2o.h>

#include "config/prices.h"
#include "trace/trace.h"

/* Unix microseconds now. */
int64_t gyre_trace_now_us(void);

/*
 * Starts `t` for `req`: a fresh trace id (or the W3C traceparent's, whose
 * span becomes the parent), a span id, the start time, the endpoint, and
 * x-gyre-session / -agent / -user / -tags (comma list) / -meta-<key>.  Adds
 * `x-gyre-trace-id` to the answer's headers.
 */
void gyre_trace_begin(gyre_trace_t *t, h2o_req_t *req, uint64_t *rng, h2o_iovec_t request_id);

/*
 * A W3C Trace Context traceparent header, read strictly: "VV-TTTT-PPPP-FF"
 * with lower-case hex only; version ff is invalid; version 00 is exactly 55
 * bytes, while a later version may go on after a '-' (its fields are read as
 * 00's); the trace id (32 hex) and the parent id (16 hex) are not all zeros;
 * the flags are 2 hex digits.  Returns 0 with `trace_id` and `parent_id`
 * filled (NUL-terminated), or -EINVAL: the caller treats an invalid header
 * as absent (a fresh trace, no parent), as the specification says.
 */
int gyre_trace_parse_traceparent(const char *v, size_t len, char trace_id[33], char parent_id[17]);

/* Appends an attempt (at most GYRE_TRACE_MAX_ATTEMPTS; later ones are not recorded). */
gyre_trace_attempt_t *gyre_trace_add_attempt(gyre_trace_t *t, h2o_mem_pool_t *pool, const char *provider,
                                             const char *model, size_t model_len, const char *key_id);

/* Reads usage, finish_reason and model from an OpenAI chat.completion (or embeddings answer). */
void gyre_trace_read_completion(gyre_trace_t *t, h2o_mem_pool_t *pool, const char *json, size_t len);

/*
 * The cost of the recorded tokens: the answering provider's own `prices:`
 * (`provider_prices`, or NULL) first, then `prices`; NaN when neither prices
 * the model or the tokens are unknown.
 */
void gyre_trace_price(gyre_trace_t *t, const gyre_prices_t *prices, const gyre_prices_t *provider_prices);

/*
 * Redacts `kinds` (GYRE_REDACT_* bits, trace/redact.h) in the request and
 * response bodies, the attempts' error texts and the metadata values, before
 * the trace is stored or exported.  A text with a match is replaced by a
 * redacted copy in `pool`; one without keeps its bytes (no copy).
 */
void gyre_trace_redact(gyre_trace_t *t, h2o_mem_pool_t *pool, unsigned kinds);

/* A pool copy of bytes as a trace string. */
gyre_tstr_t gyre_tstr_dup(h2o_mem_pool_t *pool, const char *p, size_t len);

#endif
