/*
 * Prometheus metrics: every finished call's trace is
 * counted into its worker's own metrics, and GET /metrics renders the sum
 * of every worker's in the Prometheus text format (version 0.0.4).  The
 * families, their labels and what they mean are listed in docs/metrics.md.
 *
 * Design: the hot path costs a few hash probes and plain stores.
 *
 * - Each worker owns one gyre_metrics_t, made before the workers start.
 *   It holds three series tables (calls, upstream attempts, agents), each
 *   a dense append-only array of series with a fixed capacity, and a
 *   worker-private open-addressing index into it.  Nothing is allocated
 *   per request.
 *
 * - Only the owning worker writes.  A counter is bumped with a relaxed
 *   atomic load and a relaxed atomic store (no lock prefix: there is one
 *   writer), so a scrape on another thread reads whole values without a
 *   lock.  A new series is written completely and then published by a
 *   release store of the table's count; a reader loads the count with
 *   acquire and reads only the series below it, whose labels never change.
 *
 * - Cardinality is bounded.  Label values are cut to GYRE_METRICS_LABEL_MAX
 *   bytes (at a character boundary; bytes that are not UTF-8 and control
 *   characters other than tab and newline become '?').  When a table is
 *   nearly full, a new label set is counted under model="other" (calls,
 *   attempts) or agent="other" (agents), in a headroom kept for those; when
 *   even that is full, under a series whose every label is "other".  Each
 *   observation counted that way adds one to gyre_metrics_folded_total.
 *
 * - Rendering (the scrape) allocates and sorts: it runs on whichever worker
 *   took GET /metrics, groups series by each family's labels, and writes
 *   families and samples in a fixed order, so equal inputs give equal text.
 */
#ifndef GYRE_METRICS_H
#define GYRE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "trace/access_log.h"
#include "trace/trace.h"
#include "trace/writer.h"

#define GYRE_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* The longest label value kept, in bytes; longer (client-supplied) values are cut. */
#define GYRE_METRICS_LABEL_MAX 128
/* Series per table per worker when gyre_metrics_create is given 0. */
#define GYRE_METRICS_DEFAULT_CAPACITY 1024
/* What a scrape may produce; past it GET /metrics answers 500 and says so. */
#define GYRE_METRICS_RENDER_MAX (64u << 20)

typedef struct gyre_metrics gyre_metrics_t;

/* One worker's metrics, `capacity` series per table (0: the default; at least 8).  Free with destroy. */
gyre_metrics_t *gyre_metrics_create(size_t capacity);
void gyre_metrics_destroy(gyre_metrics_t *m);

/* Counts a finished call.  Only the worker that owns `m` may call it. */
void gyre_metrics_observe(gyre_metrics_t *m, const gyre_trace_t *t);

/* The reasons of gyre_accept_pauses_total. */
#define GYRE_METRICS_ACCEPT_PAUSE_REASONS 3

/* The OTLP exporter's counters, as the caller read them (gyre_otlp_stats_t): metrics/ and otlp/ sit side by
 * side in the layers and include neither the other. */
typedef struct gyre_metrics_otlp {
    uint64_t exported;     /* spans the collector took (2xx) */
    uint64_t dropped;      /* spans lost: queue full, retries exhausted, refused (4xx), cut at shutdown */
    uint64_t failed_posts; /* POSTs that did not get a 2xx (each retry counts) */
    uint64_t queued;       /* spans waiting now (rings and the batch being sent) */
} gyre_metrics_otlp_t;

/* One notifier's counters, as the caller read them (gyre_notify_stat_t, src/control/notify.h). */
typedef struct gyre_metrics_notifier {
    const char *name, *kind;
    uint64_t sent, failed, dropped, retried;
} gyre_metrics_notifier_t;

/* What the rendering needs besides the workers' series. */
typedef struct gyre_metrics_process {
    const char *version;               /* gyre_build_info{version} */
    int64_t start_time_us;             /* unix microseconds the process started */
    uint64_t inflight;                 /* proxied requests now, summed over the workers */
    uint64_t queue_depth;              /* requests waiting on a limit now (the limits stage's gauge; 0 without one) */
    const gyre_writer_stats_t *writer; /* NULL when traces are not stored: the writer's families are left out */
    const gyre_metrics_otlp_t *otlp;    /* NULL when nothing is exported: the exporter's families are left out */
    uint64_t connections_open;         /* client connections held now, all workers (lingering closes included) */
    uint64_t connections_max;          /* max_connections */
    /* Times a worker stopped accepting, by reason, in this order: max_connections, fd_limit, no_memory
     * (src/server/conn.h). */
    uint64_t accept_pauses[GYRE_METRICS_ACCEPT_PAUSE_REASONS];
    /* Live changes (src/server/live.h): new configurations put in force and refused; the one in force. */
    uint64_t config_reloads_ok, config_reloads_error, config_generation;
    const gyre_metrics_notifier_t *notifiers; /* gyre_notifications_total; left out when there are none */
    size_t nnotifiers;
    const gyre_access_log_stats_t *access_log; /* NULL when `access_log:` is off: its families are left out */
} gyre_metrics_process_t;

/*
 * Appends the text exposition of the sum of `n` workers' metrics and of `p`
 * to `out`.  Any thread may call it while the workers observe.  0, or
 * -E2BIG when `out`'s maximum was reached (what was appended is then cut).
 */
int gyre_metrics_render(gyre_metrics_t *const *workers, size_t n, const gyre_metrics_process_t *p, gyre_buf_t *out);

#endif
