/*
 * POST /v1/traces: OTLP/HTTP trace ingest.  Bodies are
 * application/json or application/x-protobuf ExportTraceServiceRequests,
 * bounded by max_body_bytes; each span that is a model call becomes a trace
 * handed straight to the writer (not counted as a gateway request, not
 * exported again).  Answers follow OTLP/HTTP, in the request's encoding:
 * 200 with an ExportTraceServiceResponse ({} or a partialSuccess naming the
 * rejected spans), 400 for a malformed body, 405 for another method, 415
 * for another content type or a compressed body, 503 when traces are not
 * stored; errors carry a google.rpc.Status {code, message}.
 */
#ifndef GYRE_OTLP_ENDPOINT_H
#define GYRE_OTLP_ENDPOINT_H

#include <h2o.h>

struct gyre_writer;

/* What the endpoint needs of the worker that took the request, filled by the server (server.c
 * gyre_otlp_handle): no more, so that otlp/ needs nothing of server/. */
typedef struct gyre_otlp_endpoint {
    size_t max_body_bytes;      /* what a gzip body may inflate to: what gyre takes uncompressed */
    unsigned redact;            /* GYRE_REDACT_* bits applied before a span is stored (the root's `redact:`) */
    struct gyre_writer *writer; /* where ingested traces go; NULL when traces are not stored (503) */
    unsigned worker_id;         /* the worker's queue in the writer */
} gyre_otlp_endpoint_t;

/* Answers the request (whatever its method); returns 0 as an h2o handler does. */
int gyre_otlp_endpoint_handle(const gyre_otlp_endpoint_t *ep, h2o_req_t *req);

#endif
