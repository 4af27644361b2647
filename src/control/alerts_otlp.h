/*
 * Alert events as OTLP log records (`otlp:` configured): each event is one
 * record POSTed as OTLP/HTTP JSON to the collector's logs endpoint, beside
 * the traces endpoint the spans go to (".../v1/traces" becomes
 * ".../v1/logs"; any other path gets "/v1/logs" appended).  A thread of its
 * own posts them, so neither the evaluator nor a worker waits on the
 * network; the queue holds GYRE_ALERTS_OTLP_QUEUE events, past which an
 * event is dropped and counted.  A POST that fails is tried twice more,
 * 1 s and 2 s later, then dropped and counted.  The `otlp.headers` values
 * (secrets) are sent, never logged.
 */
#ifndef GYRE_CONTROL_ALERTS_OTLP_H
#define GYRE_CONTROL_ALERTS_OTLP_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "config/config.h"
#include "control/alerts.h"

#define GYRE_ALERTS_OTLP_QUEUE 64

typedef struct gyre_alerts_otlp gyre_alerts_otlp_t;

/* The sender for `c->otlp` (its endpoint set).  0, or a negative errno with `err` saying why. */
int gyre_alerts_otlp_create(const gyre_config_t *c, gyre_alerts_otlp_t **out, char *err, size_t errlen);
/* Queues a copy of `e` (any thread); never waits. */
void gyre_alerts_otlp_submit(gyre_alerts_otlp_t *x, const gyre_alert_event_t *e);
/* Posts what is queued within `grace_ms`, then stops and frees. */
void gyre_alerts_otlp_destroy(gyre_alerts_otlp_t *x, uint64_t grace_ms);
/* Records the collector took, and records dropped (queue full, retries spent, cut at shutdown). */
void gyre_alerts_otlp_stats(gyre_alerts_otlp_t *x, uint64_t *exported, uint64_t *dropped);

/* The logs endpoint's path for a traces endpoint's path ("/v1/traces" -> "/v1/logs"), written into out. */
void gyre_alerts_otlp_logs_path(const char *traces_path, char *out, size_t size);
/* The ExportLogsServiceRequest JSON body for one event.  0, or -E2BIG. */
int gyre_alerts_otlp_body(const gyre_alert_event_t *e, const char *service_name, gyre_buf_t *out);

#endif
