/*
 * The server's side of alerts: the overrides every worker reads, the
 * engine and what it reads of the server (its gauges), where its events go
 * (the control-plane database) and how its notices leave (the notifiers).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "control/alerts.h"
#include "control/alerts_otlp.h"
#include "control/alerts_store.h"
#include "control/notify.h"
#include "control/state.h"
#include "route/override.h"
#include "server/server.h"
#include "trace/writer.h"

static int send_cb(void *data, const char *notifier, const gyre_notice_t *notice)
{
    gyre_server_t *s = data;
    if (s->notify == NULL)
        return -ENOSYS;
    return gyre_notify_send(s->notify, notifier, notice);
}

/* The alert events' OTLP log sender when `otlp:` is configured (one server per process, as the span exporter). */
static gyre_alerts_otlp_t *otlp_logs;
/* How long the log sender may take at shutdown to post what is queued. */
#define ALERTS_OTLP_GRACE_MS 2000

/* Each event: stored, and exported as an OTLP log record. */
static void event_cb(void *data, const gyre_alert_event_t *ev)
{
    gyre_server_t *s = data;
    if (s->state != NULL)
        gyre_alerts_store_event_cb(s->state, ev);
    if (otlp_logs != NULL)
        gyre_alerts_otlp_submit(otlp_logs, ev);
}

static double gauge_cb(void *data, gyre_alert_signal_t sig)
{
    gyre_server_t *s = data;
    switch (sig) {
    case GYRE_SIG_INFLIGHT: {
        uint64_t n = 0;
        for (unsigned i = 0; i < s->nworkers; i++)
            n += __atomic_load_n(&s->workers[i].super.inflight, __ATOMIC_RELAXED);
        return (double)n;
    }
    case GYRE_SIG_QUEUE_DEPTH:
        /* The limits stage's gauge: the lead wires gyre_limits_queue_depth(s->limits) here at the merge. */
        return 0;
    case GYRE_SIG_TRACE_LOG_LAG:
    case GYRE_SIG_TRACE_SPOOL_BYTES: {
        if (s->writer == NULL)
            return 0;
        gyre_writer_stats_t st;
        gyre_writer_stats(s->writer, &st);
        return (double)(sig == GYRE_SIG_TRACE_LOG_LAG ? st.index_lag_bytes : st.log_bytes);
    }
    default: return 0;
    }
}

int gyre_server_alerts_start(gyre_server_t *s)
{
    /* The configuration in force (src/server/live.c made it, and its overrides; a reload replaces both through
     * gyre_alerts_reconfigure), which route changes made through the admin API may have made differ from the
     * file's. */
    const gyre_config_t *c = s->gen != NULL ? s->gen->config : s->config;
    if (s->overrides == NULL)
        s->overrides = gyre_overrides_create(c);
    if (c->nalerts == 0)
        return 0;
    gyre_alerts_hooks_t hooks = {
        .send = send_cb, .send_data = s, .event = event_cb, .event_data = s, .gauge = gauge_cb, .gauge_data = s};
    char path[4096], err[512];
    if (s->state == NULL && gyre_state_path_for(c, path, sizeof(path)) != NULL &&
        gyre_state_open(path, &s->state, err, sizeof(err)) != 0) {
        gyre_logf("gyre: alerts: %s\n", err);
        return -1;
    }
    if (s->state != NULL) {
        if (gyre_alerts_store_migrate(s->state, err, sizeof(err)) != 0) {
            gyre_logf("gyre: alerts: %s\n", err);
            return -1;
        }
    }
    if (c->otlp.endpoint != NULL && gyre_alerts_otlp_create(c, &otlp_logs, err, sizeof(err)) != 0) {
        gyre_logf("gyre: alerts: %s\n", err);
        return -1;
    }
    s->alerts = gyre_alerts_create(c, s->overrides, s->nworkers, &hooks);
    int rc = gyre_alerts_start(s->alerts);
    if (rc != 0) {
        gyre_logf("gyre: alerts: cannot start the evaluator thread: %s\n", strerror(-rc));
        return -1;
    }
    return 0;
}

void gyre_server_alerts_stop(gyre_server_t *s)
{
    gyre_alerts_destroy(s->alerts);
    s->alerts = NULL;
    gyre_alerts_otlp_destroy(otlp_logs, ALERTS_OTLP_GRACE_MS);
    otlp_logs = NULL;
}

int gyre_server_alerts_metrics(gyre_server_t *s, gyre_buf_t *b)
{
    if (s->alerts == NULL)
        return 0;
    int rc = gyre_alerts_render_metrics(s->alerts, b);
    if (otlp_logs != NULL) {
        uint64_t exported, dropped;
        gyre_alerts_otlp_stats(otlp_logs, &exported, &dropped);
        gyre_buf_appendf(b,
                         "# HELP gyre_alert_logs_exported_total Alert events the OTLP collector took as log records.\n"
                         "# TYPE gyre_alert_logs_exported_total counter\n"
                         "gyre_alert_logs_exported_total %llu\n"
                         "# HELP gyre_alert_logs_dropped_total Alert events not exported: queue full, retries spent, "
                         "cut at shutdown.\n"
                         "# TYPE gyre_alert_logs_dropped_total counter\n"
                         "gyre_alert_logs_dropped_total %llu\n",
                         (unsigned long long)exported, (unsigned long long)dropped);
    }
    return rc != 0 || gyre_buf_failed(b) ? -E2BIG : 0;
}
