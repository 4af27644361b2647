/*
 * POST /v1/traces on a worker: what src/otlp/endpoint.c needs of it (the
 * body bound, the root's redaction, the writer and this worker's queue in
 * it), handed down, so that otlp/ includes nothing of server/.
 */
#include "otlp/endpoint.h"
#include "server/server.h"

int gyre_otlp_handle(gyre_worker_t *w, h2o_req_t *req)
{
    const gyre_otlp_endpoint_t ep = {.max_body_bytes = w->server->config->max_body_bytes,
                                     .redact = w->super.config->redact, /* the configuration in force */
                                     .writer = w->server->writer,
                                     .worker_id = w->super.id};
    return gyre_otlp_endpoint_handle(&ep, req);
}
