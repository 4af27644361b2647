/*
 * previous_response_id for the Responses API calls gyre answers itself
 * (translated to a provider of another kind): each such answer's id is
 * "resp_gyre_" + its trace id, and a later request naming it gets the
 * earlier turns' messages, read back from the trace store (their request and
 * response bodies, kept when the route captures), before its own.
 *
 * An id that is not gyre's (an OpenAI response id) can only be continued by
 * OpenAI itself: the call then goes to openai providers as the client wrote
 * it.  The server layer does this because it reads the store; the dialect
 * (dialect/responses.h) only turns a turn's bodies into messages.
 */
#ifndef GYRE_SERVER_PREVIOUS_H
#define GYRE_SERVER_PREVIOUS_H

#include <cjson/cJSON.h>
#include <h2o.h>

#include "dialect/openai.h"
#include "proxy/call.h"
#include "server/server.h"

/* How many earlier turns a chain is followed back; a longer chain is refused (a 400 naming the field). */
#define GYRE_PREVIOUS_DEPTH_MAX 256
/* The earlier turns' messages together, as JSON text; past it the request is refused (413-like 400). */
#define GYRE_PREVIOUS_HISTORY_MAX ((size_t)64 << 20)
/* A trace not stored yet (its answer ended a few ms ago) is waited for, polling the store every
 * GYRE_PREVIOUS_POLL_MS, at most GYRE_PREVIOUS_WAIT_MS, and only while it may be on its way: the writer holds
 * traces not yet written, or the call began less than GYRE_PREVIOUS_RECENT_MS ago. */
#define GYRE_PREVIOUS_WAIT_MS 100
#define GYRE_PREVIOUS_POLL_MS 5
#define GYRE_PREVIOUS_RECENT_MS (15 * 60 * 1000)

/* Outcomes of gyre_previous_resolve. */
typedef enum gyre_previous {
    GYRE_PREVIOUS_NONE = 0, /* no previous_response_id: nothing to do */
    GYRE_PREVIOUS_FOUND,    /* gyre's id: call->history is set, and the earlier turns are in `pivot` */
    GYRE_PREVIOUS_NATIVE,   /* another's id (OpenAI's): only a provider speaking the API natively can continue it */
    GYRE_PREVIOUS_ERROR,    /* a 400 in `err` naming previous_response_id */
} gyre_previous_t;

/* Sets call->answer_id ("resp_gyre_<trace id>", in the request's pool). */
void gyre_previous_answer_id(h2o_req_t *req, gyre_call_t *call);

/*
 * Reads `body`'s previous_response_id and, when it is gyre's, follows the chain back through the store:
 * the earlier turns' messages go into `pivot` (after its instructions) and, as JSON text in the request's
 * pool, into call->history.
 */
gyre_previous_t gyre_previous_resolve(gyre_worker_t *w, h2o_req_t *req, gyre_call_t *call, cJSON *pivot,
                                      gyre_api_error_t *err);

/*
 * GET /v1/responses/{id} for one of gyre's ids: the Response read back from the trace store, answered here
 * (404 in OpenAI's shape when gyre does not hold it, or it was made with store: false).  Returns 1 when the
 * path is such a request and has been answered, 0 when it is not (another's id: it passes through to OpenAI).
 */
int gyre_previous_retrieve(gyre_worker_t *w, h2o_req_t *req);

#endif
