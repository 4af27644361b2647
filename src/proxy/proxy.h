/*
 * The request pipeline's upstream half.
 *
 * A call arrives planned (call.h): the client's dialect, the body, the
 * ordered targets to try.  The proxy makes attempts down that plan: it
 * picks a usable key, builds the provider's request in the provider's
 * dialect, sends it over a pooled keep-alive connection, and relays the
 * answer to the client as it arrives (streams event by event, translated
 * when the provider speaks another API).  A failure the route falls back on
 * (connect errors, timeouts, 429, 5xx by default) moves the call to a retry
 * or to the next target, as long as nothing has reached the client; after
 * that a stream ends with an error event the client's SDK raises, or, with
 * `midstream: resume`, continues on the next target from the partial answer.
 *
 * Lifetime: the proxy's state lives in the request's memory pool; when the
 * client goes away, h2o disposes the pool and the upstream call is cancelled.
 */
#ifndef GYRE_PROXY_H
#define GYRE_PROXY_H

#include <h2o.h>

#include "proxy/call.h"
#include "proxy/context.h"

/* `call` and everything it points to must live as long as the request (its pool). */
void gyre_proxy_start(gyre_ctx_t *w, h2o_req_t *req, gyre_call_t *call);

#endif
