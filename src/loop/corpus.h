/*
 * The corpus: stored traces read back as examples (issue 14).  Scoring,
 * clustering, dedup and curation all read traces through here, so there
 * is one place that turns a stored call (in whichever client dialect it
 * came: OpenAI chat, Anthropic messages, the Responses API) into the shape
 * the loop works in: OpenAI chat messages, its tools and the answer as an
 * assistant message, plus the normalised task text that featurising and
 * MinHash read.
 *
 * Streaming by design: 1M traces do not fit in memory with their bodies
 * (issue 14's target is 2 GB peak for 1M), so gyre_corpus_scan hands each
 * example to a callback with its strings valid only until it returns; a
 * consumer keeps what it needs (a vector, a signature, the trace id) and
 * fetches the few examples it exports again with gyre_corpus_fetch.
 */
#ifndef GYRE_LOOP_CORPUS_H
#define GYRE_LOOP_CORPUS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "store/store.h"

/* One score on the example (the newest per name; feedback included, source GYRE_SCORE_HUMAN). */
typedef struct gyre_example_score {
    const char *name;
    int source;        /* gyre_score_source_t */
    const char *version;
    double value;      /* NaN: a category only */
    const char *label; /* a category's value, or NULL */
} gyre_example_score_t;

/* One stored call as the loop sees it.  Strings are NUL-terminated; NULL where the call has none. */
typedef struct gyre_example {
    char trace_id[33];
    const char *session, *agent, *route, *provider, *model, *user, *team, *endpoint;
    int64_t started_us, latency_us;
    int status;      /* the HTTP status gyre answered with */
    int stream;
    double cost_usd; /* NaN: unknown */
    int64_t prompt_tokens, completion_tokens; /* -1: unknown */
    const char *tags_json, *meta_json;        /* as the API renders them */
    /* The call in OpenAI's chat shape, compact JSON: the request's `messages` array (system, user,
     * assistant with tool_calls, tool), its `tools` array (NULL: none), and the answer as one assistant
     * message object ({"role":"assistant","content":...,"tool_calls":[...]}; NULL: no answer, e.g. an error). */
    const char *messages_json, *tools_json, *answer_json;
    /* Plain text: the task (every message's text up to the answer, "role: text" lines, whitespace
     * collapsed) and the answer's text (tool calls as "name(arguments)"). */
    const char *task_text, *answer_text;
    const char *last_user_text; /* the last user message's text: what a guardrail on the request reads */
    const gyre_example_score_t *scores;
    size_t nscores;
    const char *correction; /* the newest feedback correction, or NULL */
    int32_t cluster;        /* the newest clustering's cluster, -1: none */
} gyre_example_t;

typedef struct gyre_corpus_query {
    gyre_trace_query_t q; /* which traces (cursor and limit ignored) */
    int with_scores;      /* attach scores and corrections (one extra scan of the scores) */
    int ok_only;          /* only calls answered 2xx with an answer */
} gyre_corpus_query_t;

/* Called once per example, oldest first; a non-zero return stops the scan and is returned by it. */
typedef int (*gyre_example_cb)(void *ctx, const gyre_example_t *ex);

/* What a scan read: rows, examples handed to the callback, and rows skipped because their bodies are not a
 * call the loop reads (not kept, not JSON, another endpoint, an example past its buffer). */
typedef struct gyre_corpus_counts {
    uint64_t rows, examples, skipped;
} gyre_corpus_counts_t;

/* Streams the examples; err names what failed.  With q->with_scores every score of q's time range is read
 * first (held in memory: about 100 bytes a score), then walked beside the rows. */
int gyre_corpus_scan(gyre_store_t *s, const gyre_corpus_query_t *q, gyre_example_cb cb, void *ctx, char *err,
                     size_t errlen);
/* The same, saying what it read in *counts (NULL: not wanted). */
int gyre_corpus_scan_counted(gyre_store_t *s, const gyre_corpus_query_t *q, gyre_example_cb cb, void *ctx,
                             gyre_corpus_counts_t *counts, char *err, size_t errlen);
/* One trace as an example (with its scores); -ENOENT when none. */
int gyre_corpus_fetch(gyre_store_t *s, const char *trace_id, gyre_example_cb cb, void *ctx, char *err,
                      size_t errlen);

/*
 * Turns one stored row into an example, without scores.  `req` is the
 * client's request body as captured, in the client's API, which the row's
 * endpoint names: /v1/chat/completions (OpenAI chat), /v1/messages
 * (Anthropic Messages), /v1/responses (the Responses API).  `resp` is
 * gyre's answer as the trace keeps it: an OpenAI chat.completion whatever
 * the client's API (trace.h; a stream's answer reassembled into one
 * completion, not its SSE bytes); an Anthropic message or a Response
 * object is read too.  An answer is read only for a 2xx status.  The row's
 * `cluster` is copied (-1 for a row that has none).  `scratch` holds the
 * example's strings until it is reset (its maximum bounds the example).
 * 0; -EINVAL when the bodies are not a call the loop reads (err says why:
 * "endpoint ...", "request: ..."; the scan skips such rows and counts
 * them); -E2BIG past scratch's maximum.
 *
 * The shapes written (compact, members in this order):
 *   message: {"role":R,"content":S|null|[parts],"name":S?,"tool_calls":[{"id":S,"type":"function",
 *             "function":{"name":S,"arguments":S}}]?,"tool_call_id":S?}
 *   content: one string (text parts joined by "\n"); an OpenAI message with non-text parts (images) keeps
 *            its parts array; Anthropic's and the Responses API's non-text blocks are left out.
 *   Anthropic: system -> a system message; tool_use blocks -> tool_calls (arguments: the input's JSON text);
 *              tool_result blocks -> tool messages, before the user's words of the same turn.
 *   Responses: instructions -> a system message; a string input -> a user message; function_call items
 *              (consecutive ones together) -> an assistant message with tool_calls; function_call_output
 *              -> a tool message; the developer role -> system (OpenAI's too).
 *   tools:   [{"type":"function","function":{"name":S,"description":S?,"parameters":{...}?}}]
 *   task_text: one "role: text" line per message (tool calls appended as name(arguments)), whitespace
 *              runs collapsed to one space, cut at 256 KiB.
 */
int gyre_corpus_example_from_row(const gyre_store_row_t *row, const char *req, size_t req_len, const char *resp,
                                 size_t resp_len, gyre_buf_t *scratch, gyre_example_t *out, char *err,
                                 size_t errlen);

#endif
