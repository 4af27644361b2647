/*
 * The trace store: a handle that carries its table of functions (h2o's
 * balancer, curl's connection filters), opened by DSN, so a backend is a
 * file (sqlite.c now, pg.c next) and nothing above src/store names one.
 *
 *   gyre_store_open("sqlite:/var/lib/gyre/gyre.db", ...)  the SQLite backend
 *   gyre_store_open("/var/lib/gyre/gyre.db", ...)         the same: a plain path is SQLite's
 *   gyre_store_open("postgres://...", ...)                -ENOTSUP: not built in this version
 *
 * A backend answers in rows (gyre_store_row_t); what the API returns is
 * rendered from rows by code shared above the backends (store.c, render.c,
 * cursor.c, text.c), so every backend answers in the same JSON, with the
 * same cursors and the same searchable text.
 *
 * Every call on a handle is made from one thread at a time (the writer's
 * or indexer's handle, each API reader thread's own).  Errors: 0 or a
 * negative errno, with `err` (a message naming what failed, never a
 * secret) filled; -EBADMSG means the database is corrupt (the trace log's
 * indexer rebuilds it from the log), -ENOSPC a full disk, -EROFS a
 * read-only one.  `gyre_store_t` is opaque here; backends see its
 * definition in store/backend.h.
 */
#ifndef GYRE_STORE_H
#define GYRE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "trace/trace.h"

typedef struct gyre_store gyre_store_t;
struct gyre_stats_answer;

/* A query over traces; zero/empty fields do not filter. */
typedef struct gyre_trace_query {
    int64_t from_us, to_us; /* started_us in [from, to); 0: open */
    const char *route, *provider, *model, *agent, *session, *user, *tag;
    const char *key_id, *team; /* the gateway key's id (`key=`) and team */
    const char *otel_trace_id; /* the W3C trace the calls belong to (trace.h) */
    int status;                /* exact status; 0: any */
    int errors_only;           /* status >= 400 */
    int64_t min_latency_us;
    const char *text;   /* free text in the prompt or the answer */
    int has_cluster;    /* 1: only the traces in `cluster` of the newest clustering run */
    int32_t cluster;
    const char *cursor; /* from the previous page, or NULL */
    size_t limit;       /* 1..1000 (default 50) */
} gyre_trace_query_t;

/* What /api/stats groups by: a bitmask (0: no groups, only the total). */
#define GYRE_STATS_BY_ROUTE 1u
#define GYRE_STATS_BY_PROVIDER 2u
#define GYRE_STATS_BY_MODEL 4u
#define GYRE_STATS_BY_AGENT 8u
#define GYRE_STATS_BY_USER 16u
#define GYRE_STATS_BY_KEY 32u  /* the gateway key's id */
#define GYRE_STATS_BY_TEAM 64u /* the gateway key's team */

/* A stats query; NULL or empty strings do not filter. */
typedef struct gyre_stats_query {
    int64_t from_us, to_us; /* started_us in [from, to); both 0: the last 24 h; from 0: 24 h before to; to 0: now */
    const char *route, *provider, *model, *agent, *user;
    const char *key_id, *team; /* the rollup does not keep these: a query that names them reads traces one by one */
    unsigned group_by; /* GYRE_STATS_BY_* */
    int64_t bucket_us; /* time buckets of this width, aligned to the unix epoch; 0: none */
} gyre_stats_query_t;

/* ---- The index's write path (the writer today; the trace log's indexer). ---- */

/* Where a trace's bodies live when the index does not hold them: a record of the trace log. */
typedef struct gyre_store_body_ref {
    uint64_t segment; /* the log segment's number; 0: no reference (the index holds the bodies) */
    uint64_t offset;  /* the record's byte offset in the segment */
    uint32_t length;  /* the record's length in bytes */
} gyre_store_body_ref_t;

typedef struct gyre_store_item {
    const gyre_trace_t *trace; /* the call; with ref.segment != 0 its bodies are read only for the text */
    gyre_store_body_ref_t ref;
    gyre_tstr_t text; /* the searchable text (gyre_store_text_extract); p == NULL: extracted from the bodies */
} gyre_store_item_t;

/* How far the index has read the log; {0, 0}: nothing yet. */
typedef struct gyre_store_mark {
    uint64_t segment, offset;
} gyre_store_mark_t;

/* What `gyre store stats` shows of the index. */
typedef struct gyre_store_info {
    int64_t traces;              /* rows in the index */
    int64_t oldest_us, newest_us; /* their started_us range; 0 when empty */
    gyre_store_mark_t mark;
    uint64_t bytes; /* on disk, the database and its write-ahead log */
} gyre_store_info_t;

/* ---- What a backend answers reads with. ---- */

/* A stored body as the backend keeps it: one zstd frame, or p == NULL when the call kept none. */
typedef struct gyre_store_body {
    const void *p;
    size_t len;
} gyre_store_body_t;

/* One trace's columns; the strings live until the row callback returns. */
typedef struct gyre_store_row {
    gyre_tstr_t trace_id, otel_trace_id, span_id, parent_span_id, request_id;
    gyre_tstr_t endpoint, route, provider, model, finish_reason, session, agent, user;
    gyre_tstr_t client_key_id, team; /* the gateway key's id and team; "" when none */
    int64_t started_us, ended_us, latency_us;
    int64_t ttft_us; /* -1: not a stream with a first token */
    int status, stream, cache_hit;
    int64_t prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens; /* -1: unknown */
    double cost_usd;                                                           /* NaN: unknown */
    /* Rendered at write time in the API's shape (gyre_store_render_tags and the others). */
    gyre_tstr_t tags_json, meta_json, attempts_json;
    /* Only in rows read with bodies (find_trace, scan_session). */
    gyre_store_body_t request_body, response_body;
    gyre_store_body_ref_t ref; /* bodies in the trace log instead (ref.segment != 0) */
    double cost_saved_usd;     /* a cache hit's saved cost (trace.h); NaN: unknown */
    int32_t cluster;           /* only in scan_bodies' rows: the newest clustering's cluster; -1: none */
} gyre_store_row_t;

/* Called once per row, in order; a non-zero return stops the scan and is returned by it. */
typedef int (*gyre_store_row_cb)(void *ctx, const gyre_store_row_t *row);

/* A page boundary: the last row of the previous page, "<started_us>_<trace_id>" in the API (cursor.c). */
typedef struct gyre_store_cursor {
    int64_t started_us;
    char trace_id[33];
} gyre_store_cursor_t;

/*
 * Reads the bodies of the trace log's record at `ref` (raw, as captured):
 * appended to req and resp, *has_req / *has_resp 0 for a body the call did
 * not keep.  Called from any number of API reader threads at once, so it
 * must be thread-safe.  0, -ENOENT (the segment is gone), -EIO.
 */
typedef int (*gyre_store_body_read_cb)(void *ctx, const gyre_store_body_ref_t *ref, gyre_buf_t *req, int *has_req,
                                       gyre_buf_t *resp, int *has_resp, char *err, size_t errlen);

struct gyre_score;
struct gyre_cluster_assign;
typedef int (*gyre_score_cb)(void *ctx, const struct gyre_score *score);

/* ---- The table of functions a backend provides (one `static const` instance per backend file). ---- */

/* open's flags. */
#define GYRE_STORE_OPEN_WRITE 1u /* the writer's or indexer's handle: the store must be writable, or open fails */

typedef struct gyre_store_ops {
    const char *name; /* "sqlite": the DSN scheme that picks it */
    /* Whether open(target, GYRE_STORE_OPEN_WRITE) would succeed, without creating anything (check-config). */
    int (*probe)(const char *target, char *err, size_t errlen);
    /* Opens (creating and migrating the schema to the current version); `target` is the DSN past its scheme.
     * gyre_store_open runs probe first for a writer's handle (GYRE_STORE_OPEN_WRITE). */
    int (*open)(const char *target, gyre_store_t **out, char *err, size_t errlen);
    void (*close)(gyre_store_t *s);
    /* The schema version the store is at after open. */
    int (*schema_version)(gyre_store_t *s);

    /* Writes traces with their bodies in one transaction (all or none): insert_batch with no refs, no mark. */
    int (*write_batch)(gyre_store_t *s, const gyre_trace_t *const *traces, size_t n, char *err, size_t errlen);
    /*
     * Indexes items in one transaction (all or none); a trace_id already
     * there is skipped, so a replay is a no-op.  `mark` (NULL: unchanged)
     * commits with them, so an indexer resumes after the last batch that
     * committed.  -EIO, -ENOSPC, -EROFS.
     */
    int (*insert_batch)(gyre_store_t *s, const gyre_store_item_t *items, size_t n, const gyre_store_mark_t *mark,
                        char *err, size_t errlen);
    int (*get_mark)(gyre_store_t *s, gyre_store_mark_t *out, char *err, size_t errlen);
    /* Retention: removes the traces whose ref.segment is in [1, below) and their tag rows; the rollup stays. */
    int (*drop_segments)(gyre_store_t *s, uint64_t below, char *err, size_t errlen);
    /* Empties the index (traces, tags, free text, rollup, mark) in one transaction: a reindex starts here. */
    int (*reset)(gyre_store_t *s, char *err, size_t errlen);
    int (*info)(gyre_store_t *s, gyre_store_info_t *out, char *err, size_t errlen);

    /* One trace with its bodies; -ENOENT when none. */
    int (*find_trace)(gyre_store_t *s, const char *trace_id, gyre_store_row_cb cb, void *ctx, char *err,
                      size_t errlen);
    /* Up to `limit` rows (without bodies) matching q, strictly after `after` (NULL: from the newest), newest
     * first in (started_us, trace_id) order.  q's cursor and limit are already read into `after` and `limit`. */
    int (*scan_traces)(gyre_store_t *s, const gyre_trace_query_t *q, const gyre_store_cursor_t *after, size_t limit,
                       gyre_store_row_cb cb, void *ctx, char *err, size_t errlen);
    /* A session's first `limit` calls with their bodies, oldest first. */
    int (*scan_session)(gyre_store_t *s, const char *session, size_t limit, gyre_store_row_cb cb, void *ctx,
                        char *err, size_t errlen);
    /* Adds to `a` the traces started in [from, to) read one by one (span_us 0), or the rollup rows of that span
     * starting in [from, to) (store/rollup.h), filtered as q says. */
    int (*stats_scan)(gyre_store_t *s, const gyre_stats_query_t *q, int64_t span_us, int64_t from_us, int64_t to_us,
                      struct gyre_stats_answer *a, char *err, size_t errlen);
    /* How many traces are stored (-1 on error). */
    int64_t (*count)(gyre_store_t *s);
    /* Retention (the trace log's indexer): deletes these traces with everything that indexes them
     * (free text, tags; rollup spans that end before the oldest trace left); a trace not stored is skipped. */
    int (*delete_traces)(gyre_store_t *s, const gyre_trace_t *const *traces, size_t n, char *err, size_t errlen);
    /* Returns free space to the file system. */
    int (*reclaim)(gyre_store_t *s, char *err, size_t errlen);
    /* A consistency check: 0, or -EBADMSG when the index is corrupt (err says how). */
    int (*check)(gyre_store_t *s, char *err, size_t errlen);

    /* ---- The loop's (issue 14): each as its gyre_store_* wrapper below says. ---- */
    int (*write_scores)(gyre_store_t *s, const struct gyre_score *scores, size_t n, char *err, size_t errlen);
    int (*trace_scores)(gyre_store_t *s, const char *trace_id, gyre_score_cb cb, void *ctx, char *err, size_t errlen);
    int (*scan_scores)(gyre_store_t *s, int64_t from_us, int64_t to_us, const char *name, gyre_score_cb cb, void *ctx,
                       char *err, size_t errlen);
    int (*put_cluster_run)(gyre_store_t *s, const char *run_id, int64_t created_us, const char *json, size_t json_len,
                           const struct gyre_cluster_assign *assign, size_t n, char *err, size_t errlen);
    int (*get_cluster_run)(gyre_store_t *s, gyre_buf_t *out, char *err, size_t errlen);
    /* The trace's cluster in the newest run and that run's id; -ENOENT when it has none. */
    int (*trace_cluster)(gyre_store_t *s, const char *trace_id, int32_t *cluster, char *run_id, size_t run_len,
                         char *err, size_t errlen);
    /* The traces matching q, oldest first, with their bodies as stored (zstd frames, or ref) and `cluster`
     * set; the shared wrapper gyre_store_scan_bodies expands the bodies. */
    int (*scan_bodies)(gyre_store_t *s, const gyre_trace_query_t *q, gyre_store_row_cb cb, void *ctx, char *err,
                       size_t errlen);
} gyre_store_ops_t;

/* ---- The store's API. ---- */

/*
 * Opens the store a DSN names: "sqlite:PATH" or a plain PATH (SQLite;
 * "sqlite::memory:" a private in-memory store); "postgres://..." is
 * -ENOTSUP (not built in this version); any other "scheme://" is -EINVAL.
 * The DSN is never echoed whole in `err` (a PostgreSQL one may hold a
 * password); a path is.
 */
int gyre_store_open(const char *dsn, unsigned flags, gyre_store_t **out, char *err, size_t errlen);
/* The table a DSN names and the DSN past its scheme (`target`, what ops->open takes), or NULL with err
 * filled as gyre_store_open fills it (for code that opens through the table itself, as the trace log's
 * indexer does when it rebuilds the index). */
const gyre_store_ops_t *gyre_store_backend(const char *dsn, const char **target, char *err, size_t errlen);
/* Whether a writable open of `dsn` would succeed (the same checks and messages), without creating anything. */
int gyre_store_probe(const char *dsn, char *err, size_t errlen);
void gyre_store_close(gyre_store_t *s);
/* The handle's table (for gyre_writer_create). */
const gyre_store_ops_t *gyre_store_ops(const gyre_store_t *s);
/* Rendering a trace whose bodies are in the log asks `cb` for them; without one such a body reads as null. */
void gyre_store_set_body_reader(gyre_store_t *s, gyre_store_body_read_cb cb, void *ctx);

int gyre_store_schema_version(gyre_store_t *s);
int gyre_store_write_batch(gyre_store_t *s, const gyre_trace_t *const *traces, size_t n, char *err, size_t errlen);
int gyre_store_insert_batch(gyre_store_t *s, const gyre_store_item_t *items, size_t n, const gyre_store_mark_t *mark,
                            char *err, size_t errlen);
int gyre_store_get_mark(gyre_store_t *s, gyre_store_mark_t *out, char *err, size_t errlen);
int gyre_store_drop_segments(gyre_store_t *s, uint64_t below, char *err, size_t errlen);
int gyre_store_reset(gyre_store_t *s, char *err, size_t errlen);
int gyre_store_info(gyre_store_t *s, gyre_store_info_t *out, char *err, size_t errlen);
int64_t gyre_store_count(gyre_store_t *s);
int gyre_store_delete_traces(gyre_store_t *s, const gyre_trace_t *const *traces, size_t n, char *err, size_t errlen);
int gyre_store_reclaim(gyre_store_t *s, char *err, size_t errlen);
int gyre_store_check(gyre_store_t *s, char *err, size_t errlen);

/* One trace as JSON (the API's shape, bodies included), appended to `out`; -ENOENT when none. */
int gyre_store_get_trace(gyre_store_t *s, const char *trace_id, gyre_buf_t *out, char *err, size_t errlen);
/* A page of traces, newest first: {"data":[...summaries...],"next_cursor":"..."|null}; -EINVAL for a bad
 * cursor ("cursor: ..."), limit ("limit: ...") or text ("text: ..."). */
int gyre_store_query_traces(gyre_store_t *s, const gyre_trace_query_t *q, gyre_buf_t *out, char *err, size_t errlen);
/* A session's calls in order: {"session":ID,"traces":[...]}; -ENOENT when none. */
int gyre_store_get_session(gyre_store_t *s, const char *session, gyre_buf_t *out, char *err, size_t errlen);
/*
 * Counts, percentiles, tokens and cost over a time range (store/rollup.h
 * for how, docs/api.md for the answer's shape), appended to `out`.
 * -EINVAL for a query it cannot answer (err names the parameter first:
 * "bucket: ..."), -E2BIG past the answer's bounds, -EIO.
 */
int gyre_store_stats(gyre_store_t *s, const gyre_stats_query_t *q, gyre_buf_t *out, char *err, size_t errlen);

/*
 * The searchable text of a body (text.c): the strings under the members
 * that hold what a person wrote or a model answered when it is JSON, the
 * bytes as they are otherwise, then a newline; what passes out's bound is
 * not indexed.
 */
void gyre_store_text_extract(const char *body, size_t len, gyre_buf_t *out);

/* ---- Scores, feedback and clusters (issue 14: src/loop/ reads and writes them through these). ---- */

/* Where a score came from. */
typedef enum gyre_score_source {
    GYRE_SCORE_HUMAN = 1,     /* feedback: POST /v1/feedback, `gyre feedback` */
    GYRE_SCORE_HEURISTIC = 2, /* a heuristic scorer (src/loop/heuristic.h), online or offline */
    GYRE_SCORE_JUDGE = 3,     /* an LLM judge through gyre's own routes */
    GYRE_SCORE_GUARDRAIL = 4, /* an in-line guardrail's verdict on the call */
} gyre_score_source_t;

/*
 * One score or piece of feedback on a trace (or, for feedback given by
 * session, on a session: trace_id "" and session set).  Strings are the
 * caller's, valid for the call (write) or until the callback returns (scan).
 */
typedef struct gyre_score {
    const char *trace_id; /* 32 lower-case hex, or "" for a session's feedback */
    const char *session;  /* the trace's session ("" when none) */
    const char *name;     /* the metric's or scorer's name */
    int source;           /* gyre_score_source_t */
    const char *version;  /* the scorer's version ("" for feedback) */
    double value;         /* a boolean is 0 or 1; NaN: a category only */
    const char *label;    /* a category's value, or NULL */
    const char *comment;  /* NULL: none */
    const char *correction; /* the answer the model should have given (a demonstration), or NULL */
    int64_t created_us;
    int64_t trace_started_us; /* the trace's started_us (0 for a session's feedback), so a range scan is indexed */
} gyre_score_t;

/* Appends scores in one transaction (all or none).  A score is never replaced: a later one with the same
 * name is newer (created_us, then insertion order). */
int gyre_store_write_scores(gyre_store_t *s, const gyre_score_t *scores, size_t n, char *err, size_t errlen);
/* A trace's scores (and its session's feedback), oldest first. */
int gyre_store_trace_scores(gyre_store_t *s, const char *trace_id, gyre_score_cb cb, void *ctx, char *err,
                            size_t errlen);
/* Every score of the traces started in [from, to) (0: open), `name` NULL for every name, ordered by
 * (trace_started_us, trace_id, created_us); sessions' feedback too when its session has a trace in range. */
int gyre_store_scan_scores(gyre_store_t *s, int64_t from_us, int64_t to_us, const char *name, gyre_score_cb cb,
                           void *ctx, char *err, size_t errlen);

/* A clustering's result: which cluster each trace is in (parent clusters are in the run's JSON). */
typedef struct gyre_cluster_assign {
    const char *trace_id;
    int32_t cluster; /* the cluster's id in its run */
} gyre_cluster_assign_t;

/* Stores a clustering run: its JSON (src/loop/cluster.h says its shape) and its assignments, in one
 * transaction; the newest run is the one traces show (`cluster` in /api/traces/{id}, `cluster=` in a query). */
int gyre_store_put_cluster_run(gyre_store_t *s, const char *run_id, int64_t created_us, const char *json,
                               size_t json_len, const gyre_cluster_assign_t *assign, size_t n, char *err,
                               size_t errlen);
/* The newest run's JSON appended to `out`; -ENOENT when there is none. */
int gyre_store_get_cluster_run(gyre_store_t *s, gyre_buf_t *out, char *err, size_t errlen);

/* The trace's cluster in the newest clustering run and that run's id (run_id: at least 64 bytes); -ENOENT
 * when it has none. */
int gyre_store_trace_cluster(gyre_store_t *s, const char *trace_id, int32_t *cluster, char *run_id, size_t run_len,
                             char *err, size_t errlen);

/* One trace as a row as scan_bodies hands them (raw bodies, its cluster); -ENOENT when none. */
int gyre_store_find_row(gyre_store_t *s, const char *trace_id, gyre_store_row_cb cb, void *ctx, char *err,
                        size_t errlen);

/*
 * Every trace matching q (its cursor and limit ignored), oldest first, with
 * its bodies (a trace log's are read through the body reader): the corpus
 * that src/loop/corpus.c reads for scoring, clustering and curation.  One
 * statement, streamed: memory does not grow with the number of rows.
 * The rows' request_body and response_body hold the RAW bytes (expanded
 * from zstd, or read from the trace log; p NULL: not kept, or not readable:
 * a corrupt frame, a log segment gone), ref is zero, and `cluster` is the
 * newest clustering's (-1: none).
 */
int gyre_store_scan_bodies(gyre_store_t *s, const gyre_trace_query_t *q, gyre_store_row_cb cb, void *ctx, char *err,
                           size_t errlen);

#endif
