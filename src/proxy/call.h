/*
 * One client call, as the handlers hand it to the proxy: what the client
 * speaks, what it asked for, and the plan of targets to try.  Built in the
 * request's pool by src/server/handlers.c.
 */
#ifndef GYRE_PROXY_CALL_H
#define GYRE_PROXY_CALL_H

#include <h2o.h>
#include <stdint.h>

#include "config/config.h"
#include "dialect/client.h"
#include "dialect/openai.h"
#include "route/cache.h"
#include "route/route.h"
#include "trace/trace.h"

typedef struct gyre_call {
    /* The API the client speaks (dialect/client.h): gyre_client_openai for /v1/chat/completions, /v1/embeddings
     * and other /v1 paths; the table's entry for its path otherwise. */
    const gyre_client_dialect_t *client;
    gyre_openai_endpoint_t endpoint; /* GYRE_OPENAI_CHAT for every client dialect's endpoint */
    const gyre_route_conf_t *route;  /* NULL for provider/model and model-less pass-through */
    const char *route_name;
    gyre_candidate_t *cands; /* the plan, in order */
    size_t ncands;
    h2o_iovec_t body;        /* the client's body */
    size_t model_start;      /* the body's model value, quotes included... */
    size_t model_end;        /* ...or 0, 0 when not located (or no model) */
    int stream;
    int include_usage;       /* the client asked for stream usage (always, for Anthropic clients: the events carry it) */
    int has_stream_options;  /* the client's body has a stream_options object (an OpenAI stream) */
    uint64_t affinity;       /* hash of x-gyre-session under `affinity: session`, else 0 */
    gyre_cache_t *cache;     /* the route's cache when this call may be stored in it, else NULL */
    h2o_iovec_t cache_key;
    gyre_trace_t *trace;     /* this request's trace (in the pool), always filled: metrics read it; the proxy
                              * finishes it when it took the call */
    int capture;             /* the trace keeps the bodies: it is stored and the route captures them */
    int proxied;             /* gyre_proxy_start() took the call (and with it the trace) */
    /* The id gyre gives its answer when it writes the answer itself ("resp_gyre_<trace id>" for a Responses
     * call, which previous_response_id finds the trace by), or NULL: the provider's id, or gyre's chatcmpl-. */
    const char *answer_id;
    /* Earlier turns' messages, a JSON array (previous_response_id, read from the trace store), put before the
     * pivot's own after its instructions; len 0: none.  A call with history never goes natively: the provider
     * does not know gyre's ids. */
    h2o_iovec_t history;
    /* The limits stage's reservation (control/limits.h), settled once when the request is disposed; NULL when
     * nothing was reserved.  limit_headers: gyre's own x-ratelimit-* headers are on the answer (the key's limits),
     * so the provider's, which describe gyre's provider key, are not passed on. */
    struct gyre_limit_hold *limit_hold;
    int limit_headers;
    /* The request's tools as OpenAI JSON (in the pool), kept by the guardrails stage when a tool_args guardrail
     * checks the answer's tool calls against them; NULL otherwise (src/server/guard_stage.c). */
    const char *guard_tools;
} gyre_call_t;

#endif
