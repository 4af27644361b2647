/*
 * The trace store: a table of functions, so that a backend is a file
 * (sqlite.c now, pg.c next).  Every call is made from one thread at a time
 * per store handle (the writer thread writes; query handlers open their
 * own read handle).  Errors: 0 or a negative errno, with `err` (a message
 * naming what failed, never a secret) filled; -EBADMSG means the database
 * is corrupt (the indexer rebuilds it from the trace log, trace/writer.h).
 */
#ifndef GYRE_STORE_H
#define GYRE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "trace/trace.h"

typedef struct gyre_store gyre_store_t;

/* A query over traces; zero/empty fields do not filter. */
typedef struct gyre_trace_query {
    int64_t from_us, to_us; /* started_us in [from, to); 0: open */
    const char *route, *provider, *model, *agent, *session, *user, *tag;
    const char *otel_trace_id; /* the W3C trace the calls belong to (trace.h) */
    int status;                /* exact status; 0: any */
    int errors_only;           /* status >= 400 */
    int64_t min_latency_us;
    const char *text;   /* free text in the prompt or the answer */
    const char *cursor; /* from the previous page, or NULL */
    size_t limit;       /* 1..1000 (default 50) */
} gyre_trace_query_t;

/* What /api/stats groups by: a bitmask (0: no groups, only the total). */
#define GYRE_STATS_BY_ROUTE 1u
#define GYRE_STATS_BY_PROVIDER 2u
#define GYRE_STATS_BY_MODEL 4u
#define GYRE_STATS_BY_AGENT 8u
#define GYRE_STATS_BY_USER 16u

/* A stats query; NULL or empty strings do not filter. */
typedef struct gyre_stats_query {
    int64_t from_us, to_us; /* started_us in [from, to); both 0: the last 24 h; from 0: 24 h before to; to 0: now */
    const char *route, *provider, *model, *agent, *user;
    unsigned group_by; /* GYRE_STATS_BY_* */
    int64_t bucket_us; /* time buckets of this width, aligned to the unix epoch; 0: none */
} gyre_stats_query_t;

typedef struct gyre_store_ops {
    const char *name; /* "sqlite" */
    /* Opens (creating and migrating the schema to the current version). */
    int (*open)(const char *dsn, gyre_store_t **out, char *err, size_t errlen);
    void (*close)(gyre_store_t *s);
    /* The schema version the store is at after open. */
    int (*schema_version)(gyre_store_t *s);
    /* Writes traces in one transaction (all or none). */
    int (*write_batch)(gyre_store_t *s, const gyre_trace_t *const *traces, size_t n, char *err, size_t errlen);
    /* One trace as JSON (the API's shape, bodies decompressed), appended to `out`; -ENOENT when none. */
    int (*get_trace)(gyre_store_t *s, const char *trace_id, gyre_buf_t *out, char *err, size_t errlen);
    /* A page of traces, newest first: {"data":[...summaries...],"next_cursor":"..."|null}. */
    int (*query_traces)(gyre_store_t *s, const gyre_trace_query_t *q, gyre_buf_t *out, char *err, size_t errlen);
    /* A session's calls in order: {"session":ID,"traces":[...]}; -ENOENT when none. */
    int (*get_session)(gyre_store_t *s, const char *session, gyre_buf_t *out, char *err, size_t errlen);
    /*
     * Counts, percentiles, tokens and cost over a time range (store/rollup.h
     * for how, docs/api.md for the answer's shape), appended to `out`.
     * -EINVAL for a query it cannot answer (err names the parameter first:
     * "bucket: ..."), -E2BIG past the answer's bounds, -EIO.
     */
    int (*stats)(gyre_store_t *s, const gyre_stats_query_t *q, gyre_buf_t *out, char *err, size_t errlen);
    /* How many traces are stored (for tests and the writer's accounting). */
    int64_t (*count)(gyre_store_t *s);
    /* Retention (issue 12): deletes these traces with everything that indexes them (free text, tags; rollup
     * spans that end before the oldest trace left); a trace not stored is skipped.  0 or a negative errno. */
    int (*delete_traces)(gyre_store_t *s, const gyre_trace_t *const *traces, size_t n, char *err, size_t errlen);
    /* Returns free space to the file system.  0 or a negative errno. */
    int (*reclaim)(gyre_store_t *s, char *err, size_t errlen);
    /* A consistency check: 0, or -EBADMSG when the index is corrupt (err says how). */
    int (*check)(gyre_store_t *s, char *err, size_t errlen);
} gyre_store_ops_t;

extern const gyre_store_ops_t gyre_store_sqlite;

#endif
