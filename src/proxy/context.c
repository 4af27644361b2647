/* A worker's context (see context.h): the end of a request, as every request has one. */
#include "proxy/context.h"

#include "control/alerts.h"
#include "loop/score.h"
#include "metrics/metrics.h"
#include "otlp/otlp.h"
#include "trace/record.h"
#include "trace/writer.h"

void gyre_ctx_trace_done(gyre_ctx_t *c, gyre_trace_t *t, h2o_mem_pool_t *pool, const gyre_route_conf_t *route,
                         const gyre_provider_conf_t *provider)
{
    /* The answering provider's own prices first. */
    gyre_trace_price(t, c->prices, provider != NULL ? provider->prices : NULL);
    /* Redacted before anything keeps it (the store, the collector): the route's kinds, or the root's for
     * provider/model calls.  Metrics read no text, so a trace nothing keeps is not scanned. */
    if (c->writer != NULL || c->otlp_exporter != NULL)
        gyre_trace_redact(t, pool, route != NULL ? route->redact : c->config->redact);
    gyre_metrics_observe(c->metrics, t);
    if (c->alerts != NULL)
        gyre_alerts_observe(c->alerts, c->id, t);
    if (c->writer != NULL)
        gyre_writer_submit(c->writer, c->id, t);
    if (c->otlp_exporter != NULL)
        gyre_otlp_exporter_submit(c->otlp_exporter, c->id, t);
    /* After the answer was sent: a sampled call is copied for the scorer threads (never waits on them). */
    if (c->scoring != NULL)
        gyre_score_offer(c->scoring, c->config, &c->rng, t);
}

void gyre_ctx_check_done(gyre_ctx_t *c)
{
    if (c->shutting_down && c->inflight == 0)
        c->done = 1;
}

void gyre_ctx_request_done(gyre_ctx_t *c)
{
    /* A whole store: a scrape on another worker reads it (gyre_requests_in_flight). */
    __atomic_store_n(&c->inflight, c->inflight - 1, __ATOMIC_RELAXED);
    gyre_ctx_check_done(c);
}
