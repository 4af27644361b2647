/*
 * OpenTelemetry interop: gyre's traces as OTLP spans, both
 * ways.
 *
 *   encode.c  a trace -> one OTLP/JSON span, with the GenAI semantic
 *             conventions (gen_ai.*), OpenInference's input.value /
 *             output.value for the raw bodies, and gyre's own fields as
 *             gyre.* attributes, so that a second gyre reads it back as the
 *             same trace.
 *   export.c  the exporter thread: per-worker rings, batches, POSTs to the
 *             collector with retries, bounded memory, flushed at shutdown.
 *   ingest.c  OTLP/HTTP bodies (JSON or protobuf) -> gyre traces, from
 *             gyre's own export and from apps instrumented with the GenAI
 *             conventions (current and older names), OpenLLMetry or
 *             OpenInference.
 *   endpoint.c POST /v1/traces (endpoint.h).
 *
 * docs/otlp.md lists every attribute written and read.
 */
#ifndef GYRE_OTLP_H
#define GYRE_OTLP_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "config/config.h"
#include "trace/trace.h"

/* ---- Encoding (encode.c). ---- */

/* The gen_ai.provider.name of a provider kind ("openai", "anthropic", "gcp.gemini", "aws.bedrock", "azure.ai.openai"). */
const char *gyre_otlp_provider_name(gyre_provider_kind_t kind);

/*
 * Appends one span (a JSON object of ExportTraceServiceRequest's spans[])
 * for `t` to `out`.  `config` names the providers' kinds (may be NULL: no
 * gen_ai.provider.name then).  0, or -E2BIG when `out` reached its bound, in
 * which case `out` is as it was before the call.
 */
int gyre_otlp_encode_span(gyre_buf_t *out, const gyre_trace_t *t, const gyre_config_t *config);

/*
 * Appends a whole ExportTraceServiceRequest holding spans for as many of
 * `t[0..n)` as fit in `out`'s bound, in order, and sets *nencoded to how
 * many that was.  0, or -E2BIG when not even the first fits (out unchanged).
 */
int gyre_otlp_encode_request(gyre_buf_t *out, const gyre_trace_t *const *t, size_t n, const char *service_name,
                             const gyre_config_t *config, size_t *nencoded);

/* ---- Ingest (ingest.c). ---- */

typedef enum gyre_otlp_format {
    GYRE_OTLP_JSON = 1,
    GYRE_OTLP_PROTOBUF,
} gyre_otlp_format_t;

/* Bounds on what one span may carry into a trace (longer strings are cut, more items are ignored). */
#define GYRE_OTLP_FIELD_MAX 1024            /* ids, names, provider, model, session, ... */
#define GYRE_OTLP_BODY_MAX ((size_t)16 << 20) /* request_body, response_body */

typedef struct gyre_otlp_ingest_result {
    size_t spans;    /* spans in the request */
    size_t stored;   /* handed to the callback */
    size_t skipped;  /* not model calls (an HTTP server span, a tool span): accepted, not stored */
    size_t rejected; /* model-call spans that could not be read (an invalid id) */
    char message[256]; /* why the first one was rejected, or why the request is malformed */
} gyre_otlp_ingest_result_t;

/* Gets each trace read from the request; `t` and its strings live only for the call. */
typedef void (*gyre_otlp_trace_cb)(const gyre_trace_t *t, void *ctx);

/*
 * Reads an ExportTraceServiceRequest and calls `cb` once per span that is a
 * model call.  Returns 0 (the counts in *res), or -EINVAL when the body is
 * malformed (res->message says what and where; no callback has been made:
 * the body is checked whole before any span is handed on).
 */
int gyre_otlp_ingest(const char *body, size_t len, gyre_otlp_format_t format, gyre_otlp_trace_cb cb, void *ctx,
                     gyre_otlp_ingest_result_t *res);

/*
 * The gyre trace_id of a foreign span: 32 hex digits derived from its
 * (traceId, spanId), so that a retried export names the same trace and the
 * store keeps one copy.
 */
void gyre_otlp_derive_trace_id(const uint8_t trace_id[16], const uint8_t span_id[8], char out[33]);

/* ---- Export (export.c). ---- */

typedef struct gyre_otlp_exporter gyre_otlp_exporter_t;

/* The exporter's counters, readable from any thread (for /metrics). */
typedef struct gyre_otlp_stats {
    uint64_t exported;     /* spans the collector took (2xx) */
    uint64_t dropped;      /* spans lost: queue full, retries exhausted, refused (4xx), cut at shutdown */
    uint64_t failed_posts; /* POSTs that did not get a 2xx (each retry counts) */
    uint64_t queued;       /* spans waiting now (rings and the batch being sent) */
} gyre_otlp_stats_t;

/*
 * Starts the exporter thread for config->otlp, with one ring per worker.
 * `config` must outlive the exporter.  0, or a negative errno with `err`
 * filled (never with a header's value).
 */
int gyre_otlp_exporter_create(const gyre_config_t *config, size_t nqueues, gyre_otlp_exporter_t **out, char *err,
                              size_t errlen);
/* From worker i only: copies `t` and queues it; never waits.  0, or -ENOSPC when it was dropped (counted). */
int gyre_otlp_exporter_submit(gyre_otlp_exporter_t *e, size_t i, const gyre_trace_t *t);
/*
 * The workers have stopped submitting: posts what is queued, giving up after
 * `timeout_ms` (what is left then is dropped and counted), and stops the
 * thread.  0, or -ETIMEDOUT when something was dropped on the way out.
 */
int gyre_otlp_exporter_flush_and_stop(gyre_otlp_exporter_t *e, unsigned timeout_ms);
/* Stops the thread if it runs (as flush_and_stop with no time to flush) and frees the exporter. */
void gyre_otlp_exporter_destroy(gyre_otlp_exporter_t *e);
void gyre_otlp_exporter_stats(gyre_otlp_exporter_t *e, gyre_otlp_stats_t *st);

#endif
