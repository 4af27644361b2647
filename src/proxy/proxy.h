/*
 * The request pipeline's upstream half: send the request to the chosen
 * provider over a pooled keep-alive connection, relay the answer to the
 * client as it arrives (SSE chunk by chunk, never buffered whole), and turn
 * every upstream failure into a clear error that names the provider but
 * never its key.
 *
 * Lifetime: the proxy's state lives in the request's memory pool; when the
 * client goes away, h2o disposes the pool and the upstream call is cancelled.
 */
#ifndef GYRE_PROXY_H
#define GYRE_PROXY_H

#include <h2o.h>

#include "route/route.h"
#include "server/server.h"

/* `path` and `body` must live as long as the request (its pool). */
void gyre_proxy_start(gyre_worker_t *w, h2o_req_t *req, const gyre_target_ref_t *target, h2o_iovec_t path,
                      h2o_iovec_t body);

#endif
