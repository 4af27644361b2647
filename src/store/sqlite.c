/*
 * The SQLite trace store: gyre_store_sqlite, one of the store's
 * backends (store.h, backend.h), picked by the DSN "sqlite:PATH" or a plain
 * path.  The target is a file path, or ":memory:" for a private database
 * that dies with the handle.
 *
 * The database runs in WAL mode with synchronous=NORMAL: the writer thread
 * commits a batch per transaction and readers (the query API's own
 * handles) never block it.  A power cut may lose the last batches, never
 * corrupt the file; traces are an observability record, not a ledger.
 *
 * Schema.  Versioned migrations live in `migrations[]` below; the
 * `schema_migrations` table records which ran.  Types are the ones both
 * SQLite and PostgreSQL read the same way: TEXT, INTEGER/BIGINT, REAL
 * (DOUBLE PRECISION in PostgreSQL), BLOB (BYTEA in PostgreSQL).  Strings
 * are stored as '' rather than NULL when empty; NULL means "unknown" (a
 * token count, the cost, the time to first token, a body not captured).
 * Every filter of the query API has an index that ends in
 * (started_us, trace_id), the page order, so a filtered page is an index
 * range scan; the filters that are usually empty (route, agent, session,
 * user) have partial indexes that leave the empty rows out, which keeps
 * the writer's cost down (the queries repeat the index's `<> ''`, which is
 * what lets both databases use a partial index).  A tag's page walks
 * trace_tag (tag, started_us, trace_id).  Free text goes to a contentless
 * FTS5 table, trace_fts (detail=none: it finds the calls that hold all the
 * words of a query), keyed by the traces rowid and fed the text of the
 * prompt and the answer (the PostgreSQL backend will use a tsvector column
 * with a GIN index).  Attempts, tags and meta are stored with their trace
 * as JSON in the API's shape (migration 5 says why).  /api/stats reads the
 * rollup (store/rollup.h, migration 4).
 *
 * Answers are rows (store.h's gyre_store_row_t): the API's JSON, its
 * cursors and the searchable text are the shared code's (render.c,
 * cursor.c, text.c), not this file's.
 */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "store/backend.h"
#include "store/rollup.h"

#define STORE_BUSY_TIMEOUT_MS 5000
/* How long a batch write waits for a lock another process holds (the CLI migrating, a backup, an operator's
 * sqlite3 shell): not long, since the writer thread spools what the store does not take, and while it waits
 * here the traces in memory are the ones a kill -9 would lose. */
#define STORE_WRITE_BUSY_TIMEOUT_MS 20

typedef struct sqlite_store sqlite_store_t;

typedef struct store_migration {
    int version;
    const char *sql;
    /* Run after the SQL in the same transaction (a backfill that needs C), or NULL. */
    int (*after)(sqlite_store_t *s, char *err, size_t errlen);
} store_migration_t;

static int rollup_backfill(sqlite_store_t *s, char *err, size_t errlen);

static const store_migration_t migrations[] = {
    {1, "CREATE TABLE traces ("
        " trace_id TEXT PRIMARY KEY,"
        " span_id TEXT NOT NULL,"
        " parent_span_id TEXT NOT NULL,"
        " request_id TEXT NOT NULL,"
        " started_us BIGINT NOT NULL,"
        " ended_us BIGINT NOT NULL,"
        " latency_us BIGINT NOT NULL,"
        " ttft_us BIGINT," /* NULL: not a stream */
        " endpoint TEXT NOT NULL,"
        " route TEXT NOT NULL,"
        " provider TEXT NOT NULL,"
        " model TEXT NOT NULL,"
        " status INTEGER NOT NULL,"
        " stream INTEGER NOT NULL," /* 0/1 (BOOLEAN in PostgreSQL) */
        " cache_hit INTEGER NOT NULL,"
        " finish_reason TEXT NOT NULL,"
        " prompt_tokens BIGINT," /* NULL: unknown */
        " completion_tokens BIGINT,"
        " cached_tokens BIGINT,"
        " reasoning_tokens BIGINT,"
        " cost_usd REAL," /* DOUBLE PRECISION in PostgreSQL; NULL: unknown */
        " session TEXT NOT NULL,"
        " agent TEXT NOT NULL,"
        " user_id TEXT NOT NULL," /* "user" is reserved in PostgreSQL */
        " request_body BLOB," /* zstd frame (BYTEA in PostgreSQL); NULL: not captured */
        " response_body BLOB"
        ");"
        "CREATE INDEX traces_started ON traces (started_us, trace_id);"
        "CREATE INDEX traces_provider ON traces (provider, started_us, trace_id);"
        "CREATE INDEX traces_model ON traces (model, started_us, trace_id);"
        "CREATE INDEX traces_status ON traces (status, started_us, trace_id);"
        "CREATE INDEX traces_route ON traces (route, started_us, trace_id) WHERE route <> '';"
        "CREATE INDEX traces_agent ON traces (agent, started_us, trace_id) WHERE agent <> '';"
        "CREATE INDEX traces_session ON traces (session, started_us, trace_id) WHERE session <> '';"
        "CREATE INDEX traces_user ON traces (user_id, started_us, trace_id) WHERE user_id <> '';"
        "CREATE TABLE attempts ("
        " trace_id TEXT NOT NULL,"
        " n INTEGER NOT NULL,"
        " provider TEXT NOT NULL,"
        " model TEXT NOT NULL,"
        " key_id TEXT NOT NULL,"
        " status INTEGER NOT NULL,"
        " started_us BIGINT NOT NULL,"
        " latency_us BIGINT NOT NULL,"
        " error TEXT NOT NULL,"
        " PRIMARY KEY (trace_id, n));"
        "CREATE TABLE trace_tags ("
        " trace_id TEXT NOT NULL,"
        " tag TEXT NOT NULL,"
        " PRIMARY KEY (trace_id, tag));"
        "CREATE INDEX trace_tags_tag ON trace_tags (tag, trace_id);"
        "CREATE TABLE trace_meta ("
        " trace_id TEXT NOT NULL,"
        " key TEXT NOT NULL,"
        " value TEXT NOT NULL,"
        " PRIMARY KEY (trace_id, key));", NULL},
    /* SQLite only: the PostgreSQL backend's version 2 adds a tsvector column and a GIN index instead. */
    {2, "CREATE VIRTUAL TABLE trace_text USING fts5(trace_id UNINDEXED, text);", NULL},
    /* The W3C trace a call belongs to (trace.h).  Before version 3 the trace_id was the caller's W3C trace-id,
     * so that is what the rows written then belong to. */
    {3, "ALTER TABLE traces ADD COLUMN otel_trace_id TEXT NOT NULL DEFAULT '';"
        "UPDATE traces SET otel_trace_id = trace_id;"
        "CREATE INDEX traces_otel ON traces (otel_trace_id, started_us, trace_id);", NULL},
    /*
     * The stats rollup (store/rollup.h): per minute and per hour (span_us) x
     * (route, provider, model, agent, user, status class), counts, sums and
     * two log-scale histograms in rollup.c's stored form.  write_batch
     * upserts one row per group of a batch; the histograms merge in the
     * upsert through the gyre_hist_merge() SQL function this backend
     * registers (the PostgreSQL backend: a C or plpgsql function of the
     * same name over BYTEA).  WITHOUT ROWID is SQLite's: the primary key
     * is the table, so an upsert touches one b-tree; PostgreSQL drops it.
     * The backfill rolls up the traces stored before this version.
     */
    {4,
     "CREATE TABLE trace_rollup ("
     " span_us BIGINT NOT NULL," /* 60000000 (a minute) or 3600000000 (an hour) */
     " start_us BIGINT NOT NULL," /* the span's start, a multiple of span_us */
     " route TEXT NOT NULL,"
     " provider TEXT NOT NULL,"
     " model TEXT NOT NULL,"
     " agent TEXT NOT NULL,"
     " user_id TEXT NOT NULL,"
     " status_class INTEGER NOT NULL," /* status / 100; errors are the classes 4 and 5 */
     " requests BIGINT NOT NULL,"
     " prompt_tokens BIGINT NOT NULL," /* sums of the known counts */
     " completion_tokens BIGINT NOT NULL,"
     " cached_tokens BIGINT NOT NULL,"
     " reasoning_tokens BIGINT NOT NULL,"
     " cost_usd REAL NOT NULL," /* the sum of the known costs (DOUBLE PRECISION in PostgreSQL) */
     " cost_n BIGINT NOT NULL," /* how many had a known cost: 0 reads as null */
     " ttft_n BIGINT NOT NULL," /* how many were streams with a first token */
     " lat_hist BLOB NOT NULL," /* BYTEA in PostgreSQL */
     " ttft_hist BLOB NOT NULL,"
     " PRIMARY KEY (span_us, start_us, route, provider, model, agent, user_id, status_class)"
     ") WITHOUT ROWID;",
     rollup_backfill},
    /*
     * The writer's cost (the target: 50k traces/s).  Every b-tree a trace
     * enters whose key is not in time order costs about one page written
     * per trace per batch, so this version keeps only the ones a query
     * needs:
     * - attempts, tags and meta are read only with their trace: they move
     *   into JSON columns of traces, rendered by the writer in the API's
     *   shape (sorted tags without duplicates, meta sorted by key);
     * - the tag filter's table is keyed (tag, started_us, trace_id), the
     *   page order within a tag, so a tag's page is an index range however
     *   common the tag is, and a tag's new rows append at the end of its
     *   range (trace_rowid is the traces row's rowid: a BIGINT id column
     *   in PostgreSQL);
     * - the free-text index is contentless (content=''), keyed by the
     *   traces rowid: the text was stored twice before (the body, and
     *   FTS5's copy of its text).  A contentless table cannot delete
     *   rows; retention will need contentless_delete=1 (SQLite 3.43) or
     *   rebuilding, and the PostgreSQL backend uses a tsvector column.
     *   detail=none: the index holds which rows have a word, not where in
     *   them, which cut the writer's CPU per trace by a sixth at 20k
     *   traces and by more than a quarter at 100k (bench/store); `q` then
     *   matches rows with all its words rather than the phrase
     *   (docs/api.md).  Versions 3 to 5 were never
     *   released, so this definition changed in place rather than in a
     *   version 6; a database made by the first version 5 keeps its
     *   detail=full table, which answers the same queries.
     */
    {5,
     "ALTER TABLE traces ADD COLUMN tags_json TEXT NOT NULL DEFAULT '[]';"
     "ALTER TABLE traces ADD COLUMN meta_json TEXT NOT NULL DEFAULT '{}';"
     "ALTER TABLE traces ADD COLUMN attempts_json TEXT NOT NULL DEFAULT '[]';"
     "UPDATE traces SET"
     " tags_json = COALESCE((SELECT json_group_array(tag) FROM"
     "  (SELECT tag FROM trace_tags g WHERE g.trace_id = traces.trace_id ORDER BY tag)), '[]'),"
     " meta_json = COALESCE((SELECT json_group_object(key, value) FROM"
     "  (SELECT key, value FROM trace_meta m WHERE m.trace_id = traces.trace_id ORDER BY key)), '{}'),"
     " attempts_json = COALESCE((SELECT json_group_array(json_object('provider', provider, 'model', model,"
     "  'key_id', key_id, 'status', status, 'started_us', started_us, 'latency_us', latency_us, 'error', error))"
     "  FROM (SELECT * FROM attempts a WHERE a.trace_id = traces.trace_id ORDER BY n)), '[]');"
     "CREATE TABLE trace_tag (tag TEXT NOT NULL, started_us BIGINT NOT NULL, trace_id TEXT NOT NULL,"
     " trace_rowid BIGINT NOT NULL, PRIMARY KEY (tag, started_us, trace_id)) WITHOUT ROWID;"
     "INSERT INTO trace_tag (tag, started_us, trace_id, trace_rowid)"
     " SELECT g.tag, t.started_us, t.trace_id, t.rowid FROM trace_tags g JOIN traces t USING (trace_id);"
     "CREATE VIRTUAL TABLE trace_fts USING fts5(text, content='', detail=none);"
     "INSERT INTO trace_fts (rowid, text) SELECT t.rowid, x.text FROM trace_text x JOIN traces t USING (trace_id);"
     "DROP TABLE attempts; DROP TABLE trace_meta; DROP TABLE trace_tags; DROP TABLE trace_text;",
     NULL},
    /*
     * The trace log: an index row may refer to the log's record
     * that holds its bodies (segment 0: the row holds them itself, as every
     * row written before this version does), and the index remembers how far
     * it has read the log, committed with each batch.  The partial index
     * finds a segment's rows for retention without costing the rows that
     * hold their own bodies anything.
     */
    {6,
     "ALTER TABLE traces ADD COLUMN body_segment BIGINT NOT NULL DEFAULT 0;"
     "ALTER TABLE traces ADD COLUMN body_offset BIGINT NOT NULL DEFAULT 0;"
     "ALTER TABLE traces ADD COLUMN body_length BIGINT NOT NULL DEFAULT 0;"
     "CREATE INDEX traces_body_segment ON traces (body_segment) WHERE body_segment <> 0;"
     "CREATE TABLE index_mark (id INTEGER PRIMARY KEY CHECK (id = 1), segment BIGINT NOT NULL,"
     " seg_offset BIGINT NOT NULL);",
     NULL},
    /*
     * Who called (control/keys.h): the gateway key's public id and its team.
     * Rows written before this version were made by no known key: ''.  The
     * partial indexes cost the calls without a key nothing.
     */
    {7,
     "ALTER TABLE traces ADD COLUMN client_key_id TEXT NOT NULL DEFAULT '';"
     "ALTER TABLE traces ADD COLUMN team TEXT NOT NULL DEFAULT '';"
     "CREATE INDEX traces_client_key ON traces (client_key_id, started_us, trace_id) WHERE client_key_id <> '';"
     "CREATE INDEX traces_team ON traces (team, started_us, trace_id) WHERE team <> '';",
     NULL},
    /* What a cache hit saved (trace.h's cost_saved_usd; its cost_usd is 0).  NULL: a hit whose price is
     * unknown; 0 for every other call, the rows written before this version included. */
    {8,
     "ALTER TABLE traces ADD COLUMN cost_saved_usd REAL DEFAULT 0;"
     "ALTER TABLE trace_rollup ADD COLUMN cost_saved_usd REAL NOT NULL DEFAULT 0;", /* the sum of the known ones */
     NULL},
    /*
     * The loop (issue 14): scores and feedback, and clustering runs.
     * - scores: appended, never replaced (store.h); `id` orders the scores
     *   of one instant.  A trace's scores are read by trace_id; a range's by
     *   (trace_started_us, trace_id), copied from the trace at write time
     *   so the range scan is an index range and needs no join.  A session's
     *   feedback has trace_id '' and is found by its session (a partial
     *   index: per-trace scores cost it nothing).  value NULL: a category
     *   only; label, comment, correction NULL: none.
     * - cluster_runs keeps every run's JSON; trace_clusters holds only the
     *   newest run's assignments (put_cluster_run replaces them), since only
     *   the newest run is shown and a run over 1M traces would otherwise
     *   add 1M rows each time.  The cluster filter's index is
     *   (cluster, trace_id).
     */
    {9,
     "CREATE TABLE scores ("
     " id INTEGER PRIMARY KEY," /* BIGSERIAL in PostgreSQL */
     " trace_id TEXT NOT NULL,"
     " session TEXT NOT NULL,"
     " name TEXT NOT NULL,"
     " source INTEGER NOT NULL," /* gyre_score_source_t */
     " version TEXT NOT NULL,"
     " value REAL,"
     " label TEXT,"
     " comment TEXT,"
     " correction TEXT,"
     " created_us BIGINT NOT NULL,"
     " trace_started_us BIGINT NOT NULL);"
     "CREATE INDEX scores_trace ON scores (trace_id, created_us, id);"
     "CREATE INDEX scores_started ON scores (trace_started_us, trace_id, created_us, id);"
     "CREATE INDEX scores_session ON scores (session, created_us, id) WHERE trace_id = '';"
     "CREATE TABLE cluster_runs (run_id TEXT PRIMARY KEY, created_us BIGINT NOT NULL, json TEXT NOT NULL);"
     "CREATE TABLE trace_clusters (run_id TEXT NOT NULL, trace_id TEXT NOT NULL, cluster INTEGER NOT NULL,"
     " PRIMARY KEY (trace_id, run_id)) WITHOUT ROWID;"
     "CREATE INDEX trace_clusters_cluster ON trace_clusters (cluster, trace_id);",
     NULL},
};
#define STORE_SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

struct sqlite_store {
    gyre_store_t super; /* first: the table and the shared state */
    sqlite3 *db;
    int version;
    sqlite3_stmt *ins_trace, *ins_tag, *ins_text, *ups_rollup, *set_mark;
    sqlite3_stmt *sel_trace, *sel_session, *sel_count;
    /* A trace's scores: prepared on first use and kept, since a dataset export asks once per example and
     * compiling the statement each time cost more than running it. */
    sqlite3_stmt *sel_trace_scores;
    sqlite3_stmt *sel_trace_cluster; /* the same for a trace's cluster, read with every fetched trace */
    fts5_api *fts5; /* owned by the connection */
    /* Scratch reused by every write, so a batch allocates nothing per trace once warm. */
    gyre_buf_t zreq, zresp, text, merge, tags_json, meta_json, attempts_json;
    /* The new traces of the batch being written, for the rollup. */
    gyre_rollup_in_t *rin;
    size_t rin_cap;
};

static sqlite_store_t *sq(gyre_store_t *s)
{
    return (sqlite_store_t *)s;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The negative errno a failed statement reads as: a full disk and a read-only file say so. */
static int rc_errno(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_FULL: return -ENOSPC;
    case SQLITE_READONLY: return -EROFS;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return -EBADMSG; /* the trace log's indexer rebuilds the index from the log */
    default: return -EIO;
    }
}

/* ---- Rows. ---- */

/* The columns every read selects, in this order; the page query swaps the two bodies for NULLs. */
#define TRACE_COLS_HEAD                                                                                              \
    "t.trace_id, t.span_id, t.parent_span_id, t.request_id, t.started_us, t.ended_us, t.latency_us, t.ttft_us, "   \
    "t.endpoint, t.route, t.provider, t.model, t.status, t.stream, t.cache_hit, t.finish_reason, "                  \
    "t.prompt_tokens, t.completion_tokens, t.cached_tokens, t.reasoning_tokens, t.cost_usd, t.session, t.agent, "  \
    "t.user_id, t.otel_trace_id, t.tags_json, t.meta_json, t.attempts_json, t.client_key_id, t.team, t.cost_saved_usd"
#define TRACE_COLS_FULL TRACE_COLS_HEAD ", t.request_body, t.response_body, t.body_segment, t.body_offset, t.body_length"
#define TRACE_COLS_SUMMARY TRACE_COLS_HEAD ", NULL, NULL, t.body_segment, t.body_offset, t.body_length"

/* The columns of TRACE_COLS_* past the first 24, by number. */
enum {
    COL_OTEL_TRACE_ID = 24,
    COL_TAGS_JSON,
    COL_META_JSON,
    COL_ATTEMPTS_JSON,
    COL_CLIENT_KEY_ID,
    COL_TEAM,
    COL_COST_SAVED_USD,
    COL_REQUEST_BODY,
    COL_RESPONSE_BODY,
    COL_BODY_SEGMENT,
    COL_BODY_OFFSET,
    COL_BODY_LENGTH,
    COL_CLUSTER /* only in the corpus scan */
};

static gyre_tstr_t col_tstr(sqlite3_stmt *st, int i)
{
    const char *p = (const char *)sqlite3_column_text(st, i);
    return (gyre_tstr_t){(char *)(p != NULL ? p : ""), p != NULL ? (size_t)sqlite3_column_bytes(st, i) : 0};
}

static int64_t col_known(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, i);
}

static gyre_store_body_t col_body(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return (gyre_store_body_t){NULL, 0};
    const void *p = sqlite3_column_blob(st, i);
    return (gyre_store_body_t){p != NULL ? p : "", (size_t)sqlite3_column_bytes(st, i)};
}

/* One row of TRACE_COLS_* into `row` (its strings live until the statement steps again). */
static void row_read(sqlite3_stmt *st, gyre_store_row_t *row)
{
    memset(row, 0, sizeof(*row));
    row->trace_id = col_tstr(st, 0);
    row->span_id = col_tstr(st, 1);
    row->parent_span_id = col_tstr(st, 2);
    row->request_id = col_tstr(st, 3);
    row->started_us = sqlite3_column_int64(st, 4);
    row->ended_us = sqlite3_column_int64(st, 5);
    row->latency_us = sqlite3_column_int64(st, 6);
    row->ttft_us = col_known(st, 7);
    row->endpoint = col_tstr(st, 8);
    row->route = col_tstr(st, 9);
    row->provider = col_tstr(st, 10);
    row->model = col_tstr(st, 11);
    row->status = sqlite3_column_int(st, 12);
    row->stream = sqlite3_column_int(st, 13) != 0;
    row->cache_hit = sqlite3_column_int(st, 14) != 0;
    row->finish_reason = col_tstr(st, 15);
    row->prompt_tokens = col_known(st, 16);
    row->completion_tokens = col_known(st, 17);
    row->cached_tokens = col_known(st, 18);
    row->reasoning_tokens = col_known(st, 19);
    row->cost_usd = sqlite3_column_type(st, 20) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 20);
    row->session = col_tstr(st, 21);
    row->agent = col_tstr(st, 22);
    row->user = col_tstr(st, 23);
    row->otel_trace_id = col_tstr(st, COL_OTEL_TRACE_ID);
    row->tags_json = col_tstr(st, COL_TAGS_JSON);
    row->meta_json = col_tstr(st, COL_META_JSON);
    row->attempts_json = col_tstr(st, COL_ATTEMPTS_JSON);
    row->client_key_id = col_tstr(st, COL_CLIENT_KEY_ID);
    row->team = col_tstr(st, COL_TEAM);
    row->cost_saved_usd =
        sqlite3_column_type(st, COL_COST_SAVED_USD) == SQLITE_NULL ? NAN : sqlite3_column_double(st, COL_COST_SAVED_USD);
    row->request_body = col_body(st, COL_REQUEST_BODY);
    row->response_body = col_body(st, COL_RESPONSE_BODY);
    row->ref.segment = (uint64_t)sqlite3_column_int64(st, COL_BODY_SEGMENT);
    row->ref.offset = (uint64_t)sqlite3_column_int64(st, COL_BODY_OFFSET);
    row->ref.length = (uint32_t)sqlite3_column_int64(st, COL_BODY_LENGTH);
    row->cluster = sqlite3_column_count(st) > COL_CLUSTER && sqlite3_column_type(st, COL_CLUSTER) != SQLITE_NULL
                       ? (int32_t)sqlite3_column_int64(st, COL_CLUSTER)
                       : -1;
}

/* Steps `st` and hands each row to cb; stops at cb's first non-zero and returns it.  `what` names the read. */
static int rows_each(sqlite_store_t *s, sqlite3_stmt *st, gyre_store_row_cb cb, void *ctx, const char *what, char *err,
                     size_t errlen)
{
    gyre_store_row_t row;
    int rc, r = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        row_read(st, &row);
        if ((r = cb(ctx, &row)) != 0)
            return r;
    }
    if (rc != SQLITE_DONE) {
        gyre_store_set_err(err, errlen, "store: %s: %s", what, sqlite3_errmsg(s->db));
        return rc_errno(rc);
    }
    return 0;
}

/* ---- Writes. ---- */

static int bind_tstr(sqlite3_stmt *st, int i, const gyre_tstr_t *v)
{
    return sqlite3_bind_text(st, i, v->len ? v->p : "", (int)v->len, SQLITE_STATIC);
}

static int bind_known(sqlite3_stmt *st, int i, int64_t v)
{
    return v < 0 ? sqlite3_bind_null(st, i) : sqlite3_bind_int64(st, i, v);
}

static int bind_body(sqlite_store_t *s, sqlite3_stmt *st, int i, const gyre_tstr_t *body, gyre_buf_t *z)
{
    if (body->len == 0)
        return sqlite3_bind_null(st, i);
    gyre_buf_reset(z);
    int r = gyre_zstd_compress(s->super.zstd, z, body->p, body->len);
    if (r != 0)
        return r;
    return sqlite3_bind_blob(st, i, z->base, (int)z->len, SQLITE_STATIC);
}

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* One trace into the index: 0, 1 when it is there already (a replay), or a negative errno. */
static int write_one(sqlite_store_t *s, const gyre_store_item_t *item, char *err, size_t errlen)
{
    const gyre_trace_t *t = item->trace;
    sqlite3_stmt *st = s->ins_trace;
    size_t ntags = t->ntags < GYRE_TRACE_MAX_TAGS ? t->ntags : GYRE_TRACE_MAX_TAGS;
    int in_log = item->ref.segment != 0;
    int rc, r;
    const char *what = "traces";

    if (strnlen(t->trace_id, sizeof(t->trace_id)) == 0 || strnlen(t->trace_id, sizeof(t->trace_id)) == sizeof(t->trace_id)) {
        gyre_store_set_err(err, errlen, "store: a trace without a trace_id");
        return -EINVAL;
    }
    sqlite3_bind_text(st, 1, t->trace_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->span_id, (int)strnlen(t->span_id, sizeof(t->span_id)), SQLITE_STATIC);
    sqlite3_bind_text(st, 3, t->parent_span_id, (int)strnlen(t->parent_span_id, sizeof(t->parent_span_id)),
                      SQLITE_STATIC);
    bind_tstr(st, 4, &t->request_id);
    sqlite3_bind_int64(st, 5, t->started_us);
    sqlite3_bind_int64(st, 6, t->ended_us);
    sqlite3_bind_int64(st, 7, t->ended_us - t->started_us);
    bind_known(st, 8, t->ttft_us);
    bind_tstr(st, 9, &t->endpoint);
    bind_tstr(st, 10, &t->route);
    bind_tstr(st, 11, &t->provider);
    bind_tstr(st, 12, &t->model);
    sqlite3_bind_int(st, 13, t->status);
    sqlite3_bind_int(st, 14, t->stream != 0);
    sqlite3_bind_int(st, 15, t->cache_hit != 0);
    bind_tstr(st, 16, &t->finish_reason);
    bind_known(st, 17, t->prompt_tokens);
    bind_known(st, 18, t->completion_tokens);
    bind_known(st, 19, t->cached_tokens);
    bind_known(st, 20, t->reasoning_tokens);
    if (isfinite(t->cost_usd))
        sqlite3_bind_double(st, 21, t->cost_usd);
    else
        sqlite3_bind_null(st, 21);
    bind_tstr(st, 22, &t->session);
    bind_tstr(st, 23, &t->agent);
    bind_tstr(st, 24, &t->user);
    /* A trace from before otel_trace_id existed (an old spool record) belongs to its own W3C trace. */
    if (t->otel_trace_id[0] != '\0')
        sqlite3_bind_text(st, 27, t->otel_trace_id, (int)strnlen(t->otel_trace_id, sizeof(t->otel_trace_id)),
                          SQLITE_STATIC);
    else
        sqlite3_bind_text(st, 27, t->trace_id, -1, SQLITE_STATIC);
    gyre_store_render_tags(t->tags, ntags, &s->tags_json);
    gyre_store_render_meta(t->meta, t->nmeta, &s->meta_json);
    gyre_store_render_attempts(t->attempts, t->nattempts, &s->attempts_json);
    sqlite3_bind_text(st, 28, s->tags_json.base, (int)s->tags_json.len, SQLITE_STATIC);
    sqlite3_bind_text(st, 29, s->meta_json.base, (int)s->meta_json.len, SQLITE_STATIC);
    sqlite3_bind_text(st, 30, s->attempts_json.base, (int)s->attempts_json.len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 31, (sqlite3_int64)item->ref.segment);
    sqlite3_bind_int64(st, 32, (sqlite3_int64)item->ref.offset);
    sqlite3_bind_int64(st, 33, (sqlite3_int64)item->ref.length);
    bind_tstr(st, 34, &t->client_key_id);
    bind_tstr(st, 35, &t->team);
    if (isfinite(t->cost_saved_usd))
        sqlite3_bind_double(st, 36, t->cost_saved_usd);
    else
        sqlite3_bind_null(st, 36);
    /* Bodies the log holds are not stored twice. */
    static const gyre_tstr_t none = {NULL, 0};
    if ((r = bind_body(s, st, 25, in_log ? &none : &t->request_body, &s->zreq)) != 0 ||
        (r = bind_body(s, st, 26, in_log ? &none : &t->response_body, &s->zresp)) != 0) {
        sqlite3_reset(st);
        gyre_store_set_err(err, errlen, "store: trace %s: a body does not compress into its bound", t->trace_id);
        return r;
    }
    if ((rc = step_done(st)) != SQLITE_OK)
        goto db_error;

    /* The tag filter's rows and the free text are keyed by the row just inserted. */
    sqlite3_int64 rowid = sqlite3_last_insert_rowid(s->db);
    what = "trace_tag";
    for (size_t i = 0; i < ntags; i++) {
        bind_tstr(s->ins_tag, 1, &t->tags[i]);
        sqlite3_bind_int64(s->ins_tag, 2, t->started_us);
        sqlite3_bind_text(s->ins_tag, 3, t->trace_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s->ins_tag, 4, rowid);
        if ((rc = step_done(s->ins_tag)) != SQLITE_OK)
            goto db_error;
    }
    what = "trace_fts";
    const char *text = item->text.p;
    size_t textlen = item->text.len;
    if (text == NULL && (t->request_body.len != 0 || t->response_body.len != 0)) {
        gyre_buf_reset(&s->text);
        gyre_store_text_extract(t->request_body.p, t->request_body.len, &s->text);
        gyre_store_text_extract(t->response_body.p, t->response_body.len, &s->text);
        text = s->text.base != NULL ? s->text.base : "";
        textlen = s->text.len;
    }
    if (text != NULL && textlen != 0) {
        sqlite3_bind_int64(s->ins_text, 1, rowid);
        sqlite3_bind_text(s->ins_text, 2, text, (int)textlen, SQLITE_STATIC);
        if ((rc = step_done(s->ins_text)) != SQLITE_OK)
            goto db_error;
    }
    return 0;

db_error:
    if ((rc & 0xff) == SQLITE_CONSTRAINT && strcmp(what, "traces") == 0) {
        /* Already stored: the spool (or the log) replays what a crash left, and some of it may have been
         * committed just before the crash.  Writing a trace twice is a no-op, so replay is safe. */
        return 1;
    }
    gyre_store_set_err(err, errlen, "store: writing trace %s into %s: %s", t->trace_id, what, sqlite3_errmsg(s->db));
    return rc_errno(rc);
}

static int exec_sql(sqlite_store_t *s, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        gyre_store_set_err(err, errlen, "store: %s: %s", sql, msg != NULL ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return rc_errno(rc);
    }
    return 0;
}

/* ---- The stats rollup's writes. ---- */

#define ROLLUP_COLS                                                                                                  \
    "span_us, start_us, route, provider, model, agent, user_id, status_class, requests, prompt_tokens,"             \
    " completion_tokens, cached_tokens, reasoning_tokens, cost_usd, cost_n, ttft_n, lat_hist, ttft_hist"
#define ROLLUP_UPSERT                                                                                                \
    "INSERT INTO trace_rollup (" ROLLUP_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"     \
    " ON CONFLICT (span_us, start_us, route, provider, model, agent, user_id, status_class) DO UPDATE SET"          \
    " requests = requests + excluded.requests, prompt_tokens = prompt_tokens + excluded.prompt_tokens,"             \
    " completion_tokens = completion_tokens + excluded.completion_tokens,"                                          \
    " cached_tokens = cached_tokens + excluded.cached_tokens,"                                                      \
    " reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens, cost_usd = cost_usd + excluded.cost_usd,"    \
    " cost_n = cost_n + excluded.cost_n, ttft_n = ttft_n + excluded.ttft_n,"                                        \
    " lat_hist = gyre_hist_merge(lat_hist, excluded.lat_hist),"                                                     \
    " ttft_hist = gyre_hist_merge(ttft_hist, excluded.ttft_hist)"
/* The upsert of the current schema: ROLLUP_UPSERT (which version 4's backfill runs, before the columns added
 * since exist) and what a cache hit saved (version 7). */
#define ROLLUP_UPSERT_SAVED                                                                                          \
    "INSERT INTO trace_rollup (" ROLLUP_COLS ", cost_saved_usd)"                                                   \
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"                                             \
    " ON CONFLICT (span_us, start_us, route, provider, model, agent, user_id, status_class) DO UPDATE SET"          \
    " requests = requests + excluded.requests, prompt_tokens = prompt_tokens + excluded.prompt_tokens,"             \
    " completion_tokens = completion_tokens + excluded.completion_tokens,"                                          \
    " cached_tokens = cached_tokens + excluded.cached_tokens,"                                                      \
    " reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens, cost_usd = cost_usd + excluded.cost_usd,"    \
    " cost_n = cost_n + excluded.cost_n, ttft_n = ttft_n + excluded.ttft_n,"                                        \
    " lat_hist = gyre_hist_merge(lat_hist, excluded.lat_hist),"                                                     \
    " ttft_hist = gyre_hist_merge(ttft_hist, excluded.ttft_hist),"                                                  \
    " cost_saved_usd = cost_saved_usd + excluded.cost_saved_usd"

typedef struct rollup_write {
    sqlite_store_t *s;
    sqlite3_stmt *st;
    char *err;
    size_t errlen;
    int saved; /* the statement is ROLLUP_UPSERT_SAVED */
} rollup_write_t;

static int bind_blob0(sqlite3_stmt *st, int i, const void *p, size_t n)
{
    /* A NULL pointer would bind NULL; an empty histogram is an empty blob. */
    return sqlite3_bind_blob(st, i, n ? p : "", (int)n, SQLITE_STATIC);
}

static int rollup_upsert_cb(void *arg, const gyre_rollup_group_t *g)
{
    rollup_write_t *rw = arg;
    sqlite3_stmt *st = rw->st;
    sqlite3_bind_int64(st, 1, g->span_us);
    sqlite3_bind_int64(st, 2, g->start_us);
    bind_tstr(st, 3, &g->route);
    bind_tstr(st, 4, &g->provider);
    bind_tstr(st, 5, &g->model);
    bind_tstr(st, 6, &g->agent);
    bind_tstr(st, 7, &g->user);
    sqlite3_bind_int(st, 8, g->status_class);
    sqlite3_bind_int64(st, 9, g->requests);
    sqlite3_bind_int64(st, 10, g->prompt_tokens);
    sqlite3_bind_int64(st, 11, g->completion_tokens);
    sqlite3_bind_int64(st, 12, g->cached_tokens);
    sqlite3_bind_int64(st, 13, g->reasoning_tokens);
    sqlite3_bind_double(st, 14, g->cost_usd);
    sqlite3_bind_int64(st, 15, g->cost_n);
    sqlite3_bind_int64(st, 16, g->ttft_n);
    bind_blob0(st, 17, g->lat_hist, g->lat_len);
    bind_blob0(st, 18, g->ttft_hist, g->ttft_len);
    if (rw->saved)
        sqlite3_bind_double(st, 19, g->cost_saved_usd);
    int rc = step_done(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_OK) {
        gyre_store_set_err(rw->err, rw->errlen, "store: writing the stats rollup: %s", sqlite3_errmsg(rw->s->db));
        return rc_errno(rc);
    }
    return 0;
}

static void rin_reserve(sqlite_store_t *s, size_t n)
{
    if (n <= s->rin_cap)
        return;
    s->rin_cap = n < 512 ? 512 : n;
    s->rin = gyre_realloc(s->rin, s->rin_cap * sizeof(*s->rin));
}

/* gyre_hist_merge(a, b): the stored form of the two histograms' sum (NULL reads as empty). */
static void hist_merge_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    sqlite_store_t *s = sqlite3_user_data(ctx);
    (void)argc;
    gyre_buf_reset(&s->merge);
    int r = gyre_hist_merge_encoded(sqlite3_value_blob(argv[0]), (size_t)sqlite3_value_bytes(argv[0]),
                                    sqlite3_value_blob(argv[1]), (size_t)sqlite3_value_bytes(argv[1]), &s->merge);
    if (r != 0) {
        sqlite3_result_error(ctx, r == -EINVAL ? "gyre_hist_merge: a corrupt histogram" : "gyre_hist_merge: too large",
                             -1);
        return;
    }
    sqlite3_result_blob(ctx, s->merge.len ? s->merge.base : "", (int)s->merge.len, SQLITE_TRANSIENT);
}
/* Migration 4's backfill: rolls up the traces already stored, a chunk at a time. */
static int rollup_backfill(sqlite_store_t *s, char *err, size_t errlen)
{
    enum { CHUNK = 4096 };
    sqlite3_stmt *sel = NULL, *ups = NULL;
    gyre_rollup_in_t *in = gyre_calloc(CHUNK, sizeof(*in));
    size_t n = 0;
    int rc, r = 0;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT started_us, latency_us, ttft_us, status, route, provider, model, agent, user_id,"
                           " prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost_usd FROM traces",
                           -1, &sel, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, ROLLUP_UPSERT, -1, &ups, NULL) != SQLITE_OK) {
        gyre_store_set_err(err, errlen, "store: preparing the rollup backfill: %s", sqlite3_errmsg(s->db));
        r = -EIO;
        goto out;
    }
    rollup_write_t rw = {s, ups, err, errlen, 0};
    for (;;) {
        rc = sqlite3_step(sel);
        if (rc == SQLITE_ROW) {
            gyre_rollup_in_t *t = &in[n++];
            t->started_us = sqlite3_column_int64(sel, 0);
            t->latency_us = sqlite3_column_int64(sel, 1);
            t->ttft_us = sqlite3_column_type(sel, 2) == SQLITE_NULL ? -1 : sqlite3_column_int64(sel, 2);
            t->status = sqlite3_column_int(sel, 3);
            gyre_tstr_t *dims[] = {&t->route, &t->provider, &t->model, &t->agent, &t->user};
            for (int d = 0; d < 5; d++) {
                const char *p = (const char *)sqlite3_column_text(sel, 4 + d);
                size_t len = (size_t)sqlite3_column_bytes(sel, 4 + d);
                *dims[d] = (gyre_tstr_t){gyre_strndup(p != NULL ? p : "", len), len};
            }
            int64_t *tok[] = {&t->prompt_tokens, &t->completion_tokens, &t->cached_tokens, &t->reasoning_tokens};
            for (int k = 0; k < 4; k++)
                *tok[k] = sqlite3_column_type(sel, 9 + k) == SQLITE_NULL ? -1 : sqlite3_column_int64(sel, 9 + k);
            t->cost_usd = sqlite3_column_type(sel, 13) == SQLITE_NULL ? NAN : sqlite3_column_double(sel, 13);
        } else if (rc != SQLITE_DONE) {
            gyre_store_set_err(err, errlen, "store: reading traces for the rollup backfill: %s", sqlite3_errmsg(s->db));
            r = -EIO;
        }
        if (n == CHUNK || (rc != SQLITE_ROW && n > 0)) {
            if (r == 0)
                r = gyre_rollup_batch(in, n, rollup_upsert_cb, &rw);
            for (size_t i = 0; i < n; i++) {
                free(in[i].route.p);
                free(in[i].provider.p);
                free(in[i].model.p);
                free(in[i].agent.p);
                free(in[i].user.p);
            }
            n = 0;
        }
        if (rc != SQLITE_ROW || r != 0)
            break;
    }
out:
    sqlite3_finalize(sel);
    sqlite3_finalize(ups);
    free(in);
    return r;
}


/* The items (or, with items NULL, the traces with their bodies) in one transaction, the mark with them. */
static int write_items(sqlite_store_t *s, const gyre_store_item_t *items, const gyre_trace_t *const *traces, size_t n,
                       const gyre_store_mark_t *mark, char *err, size_t errlen)
{
    int r;
    size_t nr = 0;
    if (n == 0 && mark == NULL)
        return 0;
    rin_reserve(s, n);
    sqlite3_busy_timeout(s->db, STORE_WRITE_BUSY_TIMEOUT_MS);
    if ((r = exec_sql(s, "BEGIN IMMEDIATE", err, errlen)) != 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        gyre_store_item_t one = {traces != NULL ? traces[i] : NULL, {0, 0, 0}, {NULL, 0}};
        const gyre_store_item_t *item = items != NULL ? &items[i] : &one;
        if ((r = write_one(s, item, err, errlen)) < 0)
            goto rollback; /* all or none: the writer retries or drops the batch as a whole, and says how many */
        /* A trace already stored (a replay) is already in the rollup. */
        if (r == 0)
            gyre_rollup_in_from_trace(&s->rin[nr++], item->trace);
    }
    rollup_write_t rw = {s, s->ups_rollup, err, errlen, 1};
    if ((r = gyre_rollup_batch(s->rin, nr, rollup_upsert_cb, &rw)) != 0)
        goto rollback;
    if (mark != NULL) {
        sqlite3_bind_int64(s->set_mark, 1, (sqlite3_int64)mark->segment);
        sqlite3_bind_int64(s->set_mark, 2, (sqlite3_int64)mark->offset);
        int rc = step_done(s->set_mark);
        if (rc != SQLITE_OK) {
            gyre_store_set_err(err, errlen, "store: writing the index mark: %s", sqlite3_errmsg(s->db));
            r = rc_errno(rc);
            goto rollback;
        }
    }
    if ((r = exec_sql(s, "COMMIT", err, errlen)) != 0)
        goto rollback;
    return 0;
rollback:
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return r;
}

static int sqlite_write_batch(gyre_store_t *s, const gyre_trace_t *const *traces, size_t n, char *err, size_t errlen)
{
    return write_items(sq(s), NULL, traces, n, NULL, err, errlen);
}

static int sqlite_insert_batch(gyre_store_t *s, const gyre_store_item_t *items, size_t n, const gyre_store_mark_t *mark,
                               char *err, size_t errlen)
{
    return write_items(sq(s), items, NULL, n, mark, err, errlen);
}

static int sqlite_get_mark(gyre_store_t *gs, gyre_store_mark_t *out, char *err, size_t errlen)
{
    sqlite_store_t *s = sq(gs);
    sqlite3_stmt *st = NULL;
    int rc;
    *out = (gyre_store_mark_t){0, 0};
    if (sqlite3_prepare_v2(s->db, "SELECT segment, seg_offset FROM index_mark WHERE id = 1", -1, &st, NULL) != SQLITE_OK)
        goto fail;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = (gyre_store_mark_t){(uint64_t)sqlite3_column_int64(st, 0), (uint64_t)sqlite3_column_int64(st, 1)};
    else if (rc != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(st);
    return 0;
fail:
    gyre_store_set_err(err, errlen, "store: reading the index mark: %s", sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
    return -EIO;
}

/*
 * Retention.  The free-text rows of the dropped traces stay: the table is
 * contentless, and SQLite before 3.43 deletes from one only when given the
 * text again.  They match no trace (a search joins traces), and a reset
 * (reindex) returns their space.
 */
static int sqlite_drop_segments(gyre_store_t *gs, uint64_t below, char *err, size_t errlen)
{
    sqlite_store_t *s = sq(gs);
    char sql[1024];
    int r;
    if ((r = exec_sql(s, "BEGIN IMMEDIATE", err, errlen)) != 0)
        return r;
    snprintf(sql, sizeof(sql),
             "DELETE FROM trace_tag WHERE trace_rowid IN (SELECT rowid FROM traces WHERE body_segment <> 0 AND "
             "body_segment < %" PRIu64 ");"
             "DELETE FROM scores WHERE trace_id <> '' AND trace_id IN (SELECT trace_id FROM traces WHERE "
             "body_segment <> 0 AND body_segment < %" PRIu64 ");"
             "DELETE FROM trace_clusters WHERE trace_id IN (SELECT trace_id FROM traces WHERE body_segment <> 0 AND "
             "body_segment < %" PRIu64 ");"
             "DELETE FROM traces WHERE body_segment <> 0 AND body_segment < %" PRIu64 ";",
             below, below, below, below);
    if ((r = exec_sql(s, sql, err, errlen)) != 0 || (r = exec_sql(s, "COMMIT", err, errlen)) != 0) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return r;
    }
    return 0;
}

static int sqlite_reset(gyre_store_t *gs, char *err, size_t errlen)
{
    sqlite_store_t *s = sq(gs);
    int r;
    if ((r = exec_sql(s, "BEGIN IMMEDIATE", err, errlen)) != 0)
        return r;
    if ((r = exec_sql(s,
                      "DELETE FROM trace_tag; DELETE FROM traces; DELETE FROM trace_rollup; DELETE FROM index_mark;"
                      /* Scores, feedback and clusterings are not in the trace log, so a reindex could not bring
                       * them back: they stay, keyed by trace id, and meet their traces again as the log is read. */
                      "INSERT INTO trace_fts (trace_fts) VALUES ('delete-all');",
                      err, errlen)) != 0 ||
        (r = exec_sql(s, "COMMIT", err, errlen)) != 0) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return r;
    }
    return 0;
}

static uint64_t file_bytes(const char *path, const char *suffix)
{
    char p[4096];
    struct stat st;
    snprintf(p, sizeof(p), "%s%s", path, suffix);
    return stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static int sqlite_info(gyre_store_t *gs, gyre_store_info_t *out, char *err, size_t errlen)
{
    sqlite_store_t *s = sq(gs);
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof(*out));
    if (sqlite3_prepare_v2(s->db, "SELECT COUNT(*), COALESCE(MIN(started_us), 0), COALESCE(MAX(started_us), 0) FROM traces",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        gyre_store_set_err(err, errlen, "store: counting traces: %s", sqlite3_errmsg(s->db));
        sqlite3_finalize(st);
        return -EIO;
    }
    out->traces = sqlite3_column_int64(st, 0);
    out->oldest_us = sqlite3_column_int64(st, 1);
    out->newest_us = sqlite3_column_int64(st, 2);
    sqlite3_finalize(st);
    const char *path = sqlite3_db_filename(s->db, "main");
    if (path != NULL && path[0] != '\0')
        out->bytes = file_bytes(path, "") + file_bytes(path, "-wal");
    return sqlite_get_mark(gs, &out->mark, err, errlen);
}

/*
 * Retention: the traces of a log segment being dropped leave the
 * index with everything that points at them.  The free-text index is
 * contentless, so a row leaves it through FTS5's 'delete' command given the
 * text it was indexed with, which the trace itself gives again (the shared
 * extraction, as write_one computed it).  The rollup keeps its counts for
 * the minutes and hours that still hold a trace; rows of spans that end
 * before the oldest trace left are deleted, so /api/stats does not count
 * traces that are gone.  (Written by the tracelog helper; moved here with
 * the ops table.)
 */
static int sqlite_delete_traces(gyre_store_t *gs, const gyre_trace_t *const *traces, size_t n, char *err, size_t errlen)
{
    sqlite_store_t *s = sq(gs);
    sqlite3_stmt *sel = NULL, *del = NULL, *del_fts = NULL, *del_tag = NULL, *rollup = NULL, *del_scores = NULL,
                 *del_cluster = NULL;
    int r, rc = SQLITE_OK;
    if (n == 0)
        return 0;
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
    if ((r = exec_sql(s, "BEGIN IMMEDIATE", err, errlen)) != 0)
        return r;
    if (sqlite3_prepare_v2(s->db, "SELECT rowid FROM traces WHERE trace_id = ?", -1, &sel, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "DELETE FROM traces WHERE rowid = ?", -1, &del, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "INSERT INTO trace_fts (trace_fts, rowid, text) VALUES ('delete', ?, ?)", -1,
                           &del_fts, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "DELETE FROM trace_tag WHERE tag = ? AND started_us = ? AND trace_id = ?", -1,
                           &del_tag, NULL) != SQLITE_OK ||
        /* A trace's scores and cluster go with it (a session's feedback stays with the session). */
        sqlite3_prepare_v2(s->db, "DELETE FROM scores WHERE trace_id = ?", -1, &del_scores, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "DELETE FROM trace_clusters WHERE trace_id = ?", -1, &del_cluster, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(s->db,
                           "DELETE FROM trace_rollup WHERE start_us + span_us <="
                           " COALESCE((SELECT MIN(started_us) FROM traces), 9223372036854775807)",
                           -1, &rollup, NULL) != SQLITE_OK) {
        gyre_store_set_err(err, errlen, "store: preparing the retention delete: %s", sqlite3_errmsg(s->db));
        r = rc_errno(sqlite3_errcode(s->db));
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const gyre_trace_t *t = traces[i];
        sqlite3_bind_text(sel, 1, t->trace_id, -1, SQLITE_STATIC);
        rc = sqlite3_step(sel);
        sqlite3_int64 rowid = rc == SQLITE_ROW ? sqlite3_column_int64(sel, 0) : 0;
        sqlite3_reset(sel);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            goto db_error;
        if (rc == SQLITE_DONE)
            continue; /* never indexed, or deleted before */
        if (t->request_body.len != 0 || t->response_body.len != 0) {
            gyre_buf_reset(&s->text);
            gyre_store_text_extract(t->request_body.p, t->request_body.len, &s->text);
            gyre_store_text_extract(t->response_body.p, t->response_body.len, &s->text);
            sqlite3_bind_int64(del_fts, 1, rowid);
            sqlite3_bind_text(del_fts, 2, s->text.base != NULL ? s->text.base : "", (int)s->text.len, SQLITE_STATIC);
            if ((rc = step_done(del_fts)) != SQLITE_OK)
                goto db_error;
        }
        for (size_t k = 0; k < t->ntags && k < GYRE_TRACE_MAX_TAGS; k++) {
            bind_tstr(del_tag, 1, &t->tags[k]);
            sqlite3_bind_int64(del_tag, 2, t->started_us);
            sqlite3_bind_text(del_tag, 3, t->trace_id, -1, SQLITE_STATIC);
            if ((rc = step_done(del_tag)) != SQLITE_OK)
                goto db_error;
        }
        sqlite3_bind_text(del_scores, 1, t->trace_id, -1, SQLITE_STATIC);
        if ((rc = step_done(del_scores)) != SQLITE_OK)
            goto db_error;
        sqlite3_bind_text(del_cluster, 1, t->trace_id, -1, SQLITE_STATIC);
        if ((rc = step_done(del_cluster)) != SQLITE_OK)
            goto db_error;
        sqlite3_bind_int64(del, 1, rowid);
        if ((rc = step_done(del)) != SQLITE_OK)
            goto db_error;
    }
    if ((rc = step_done(rollup)) != SQLITE_OK)
        goto db_error;
    r = exec_sql(s, "COMMIT", err, errlen);
    goto out;
db_error:
    gyre_store_set_err(err, errlen, "store: deleting traces for retention: %s", sqlite3_errmsg(s->db));
    r = rc_errno(rc);
out:
    if (r != 0)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_finalize(sel);
    sqlite3_finalize(del);
    sqlite3_finalize(del_fts);
    sqlite3_finalize(del_tag);
    sqlite3_finalize(rollup);
    sqlite3_finalize(del_scores);
    sqlite3_finalize(del_cluster);
    return r;
}

/* Gives the free pages back to the file system: an incremental vacuum (the database is created with
 * auto_vacuum=INCREMENTAL), then a checkpoint that truncates the WAL, so the files really shrink. */
static int sqlite_reclaim(gyre_store_t *gs, char *err, size_t errlen)
{
    sqlite_store_t *s = sq(gs);
    int r;
    if ((r = exec_sql(s, "PRAGMA incremental_vacuum", err, errlen)) != 0)
        return r;
    return exec_sql(s, "PRAGMA wal_checkpoint(TRUNCATE)", err, errlen);
}

/* SQLite's quick_check: 0 when it says "ok", -EBADMSG with its first complaint otherwise. */
static int sqlite_check(gyre_store_t *gs, char *err, size_t errlen)
{
    sqlite_store_t *s = sq(gs);
    sqlite3_stmt *st = NULL;
    int r = 0, rc;
    if ((rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check(1)", -1, &st, NULL)) != SQLITE_OK) {
        gyre_store_set_err(err, errlen, "store: quick_check: %s", sqlite3_errmsg(s->db));
        return rc_errno(rc) == -EBADMSG ? -EBADMSG : -EIO;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        if (v == NULL || strcmp(v, "ok") != 0) {
            gyre_store_set_err(err, errlen, "store: the database is corrupt: %.200s", v != NULL ? v : "?");
            r = -EBADMSG;
        }
    } else {
        gyre_store_set_err(err, errlen, "store: quick_check: %s", sqlite3_errmsg(s->db));
        r = rc_errno(rc) == -EBADMSG ? -EBADMSG : -EIO;
    }
    sqlite3_finalize(st);
    return r;
}

/* ---- Reads. ---- */

static int sqlite_find_trace(gyre_store_t *gs, const char *trace_id, gyre_store_row_cb cb, void *ctx, char *err,
                             size_t errlen)
{
    sqlite_store_t *s = sq(gs);
    sqlite3_stmt *st = s->sel_trace;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, trace_id, -1, SQLITE_STATIC);
    int r = rows_each(s, st, cb, ctx, "reading a trace", err, errlen);
    sqlite3_reset(st);
    return r;
}

static int sqlite_scan_session(gyre_store_t *gs, const char *session, size_t limit, gyre_store_row_cb cb, void *ctx,
                               char *err, size_t errlen)
{
    sqlite_store_t *s = sq(gs);
    sqlite3_stmt *st = s->sel_session;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, session, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    int r = rows_each(s, st, cb, ctx, "reading a session", err, errlen);
    sqlite3_reset(st);
    return r;
}

typedef struct query_param {
    const char *s; /* NULL: an integer */
    int64_t i;
} query_param_t;

#define QUERY_MAX_PARAMS 20

/* Adds " AND <col> = ?" for a non-empty filter; a partial-index column repeats the index's condition. */
static void filter_eq(gyre_buf_t *sql, query_param_t *params, size_t *np, const char *col, int partial, const char *v)
{
    if (v == NULL || v[0] == '\0')
        return;
    gyre_buf_appendf(sql, partial ? " AND t.%s = ? AND t.%s <> ''" : " AND t.%s = ?", col, col);
    params[(*np)++] = (query_param_t){v, 0};
}

static void bind_params(sqlite3_stmt *st, const query_param_t *params, size_t np)
{
    for (size_t i = 0; i < np; i++) {
        if (params[i].s != NULL)
            sqlite3_bind_text(st, (int)i + 1, params[i].s, -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(st, (int)i + 1, params[i].i);
    }
}

typedef struct fts_words {
    gyre_buf_t *out;
    size_t n;
} fts_words_t;

static int fts_word_cb(void *ctx, int tflags, const char *tok, int ntok, int start, int end)
{
    fts_words_t *w = ctx;
    (void)start;
    (void)end;
    if (tflags & FTS5_TOKEN_COLOCATED)
        return SQLITE_OK;
    int r = w->n++ ? gyre_buf_append(w->out, " \"", 2) : gyre_buf_append(w->out, "\"", 1);
    for (int i = 0; i < ntok && r == 0; i++) {
        if (tok[i] == '"')
            r = gyre_buf_append(w->out, "\"", 1);
        if (r == 0)
            r = gyre_buf_append(w->out, &tok[i], 1);
    }
    if (r == 0)
        r = gyre_buf_append(w->out, "\"", 1);
    return r == 0 ? SQLITE_OK : SQLITE_TOOBIG;
}

/*
 * The FTS5 query that matches the rows holding every word of `text`: the
 * tokens the table's own tokenizer (unicode61) makes of it, each quoted,
 * space-separated (FTS5's AND).  Tokenizing here rather than quoting the
 * text whole is what detail=none needs: a quoted string of two tokens is a
 * phrase, which it refuses.  Quotes and operators in the text are
 * separators or words, never syntax.  0 and the number of words, or -EIO
 * (no tokenizer, or the words past their buffer's bound).
 */
static int fts_all_words(sqlite_store_t *s, const char *text, gyre_buf_t *out, size_t *nwords)
{
    fts5_tokenizer api;
    Fts5Tokenizer *tok = NULL;
    void *ud = NULL;
    fts_words_t w = {out, 0};
    if (s->fts5 == NULL || s->fts5->xFindTokenizer(s->fts5, "unicode61", &ud, &api) != SQLITE_OK ||
        api.xCreate(ud, NULL, 0, &tok) != SQLITE_OK)
        return -EIO;
    int rc = api.xTokenize(tok, &w, FTS5_TOKENIZE_QUERY, text, (int)strlen(text), fts_word_cb);
    api.xDelete(tok);
    *nwords = w.n;
    return rc == SQLITE_OK ? 0 : -EIO;
}

/* The FTS5 extension's API of this connection (NULL when SQLite was built without it). */
static fts5_api *fts5_api_of(sqlite3 *db)
{
    fts5_api *api = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
    sqlite3_step(st);
    sqlite3_finalize(st);
    return api;
}

/*
 * The WHERE clause of a query over traces (`o` is the table whose (started_us, trace_id) give the order: "g"
 * for a tag's walk, else "t"), its parameters appended to params.  0, or -EIO (err filled).
 */
static int trace_where(sqlite_store_t *s, const gyre_trace_query_t *q, const char *o, gyre_buf_t *sql,
                       query_param_t *params, size_t *pnp, gyre_buf_t *words, char *err, size_t errlen)
{
    size_t np = *pnp;
    if (q->from_us != 0) {
        gyre_buf_appendf(sql, " AND %s.started_us >= ?", o);
        params[np++] = (query_param_t){NULL, q->from_us};
    }
    if (q->to_us != 0) {
        gyre_buf_appendf(sql, " AND %s.started_us < ?", o);
        params[np++] = (query_param_t){NULL, q->to_us};
    }
    filter_eq(sql, params, &np, "route", 1, q->route);
    filter_eq(sql, params, &np, "provider", 0, q->provider);
    filter_eq(sql, params, &np, "model", 0, q->model);
    filter_eq(sql, params, &np, "agent", 1, q->agent);
    filter_eq(sql, params, &np, "client_key_id", 1, q->key_id);
    filter_eq(sql, params, &np, "team", 1, q->team);
    filter_eq(sql, params, &np, "session", 1, q->session);
    filter_eq(sql, params, &np, "user_id", 1, q->user);
    filter_eq(sql, params, &np, "otel_trace_id", 0, q->otel_trace_id);
    if (q->status != 0) {
        gyre_buf_appends(sql, " AND t.status = ?");
        params[np++] = (query_param_t){NULL, q->status};
    }
    if (q->errors_only)
        gyre_buf_appends(sql, " AND t.status >= 400");
    if (q->min_latency_us > 0) {
        gyre_buf_appends(sql, " AND t.latency_us >= ?");
        params[np++] = (query_param_t){NULL, q->min_latency_us};
    }
    /* trace_clusters holds the newest run's assignments only (migration 9), so no run is named here. */
    if (q->has_cluster) {
        gyre_buf_appends(sql, " AND t.trace_id IN (SELECT trace_id FROM trace_clusters WHERE cluster = ?)");
        params[np++] = (query_param_t){NULL, q->cluster};
    }
    if (q->text != NULL && q->text[0] != '\0') {
        size_t nwords = 0;
        if (fts_all_words(s, q->text, words, &nwords) != 0) {
            gyre_store_set_err(err, errlen, "store: the free-text tokenizer failed on q");
            return -EIO;
        }
        if (nwords == 0) {
            /* Only separators: no word to find, so no call has them all. */
            gyre_buf_appends(sql, " AND 0 = 1");
        } else {
            gyre_buf_appends(sql, " AND t.rowid IN (SELECT rowid FROM trace_fts WHERE trace_fts MATCH ?)");
            params[np++] = (query_param_t){words->base, 0};
        }
    }
    *pnp = np;
    return 0;
}

static int sqlite_scan_traces(gyre_store_t *gs, const gyre_trace_query_t *q, const gyre_store_cursor_t *after,
                              size_t limit, gyre_store_row_cb cb, void *ctx, char *err, size_t errlen)
{
    sqlite_store_t *s = sq(gs);
    query_param_t params[QUERY_MAX_PARAMS];
    size_t np = 0;
    gyre_buf_t sql, words;
    sqlite3_stmt *st = NULL;
    int r = 0;

    /* Generous bounds: the SQL is a fixed text plus one clause per filter; the words are the client's text's
     * tokens, each quoted (a token of one byte and its separator become four bytes). */
    gyre_buf_init(&sql, 4096);
    gyre_buf_init(&words, 4 * GYRE_STORE_TEXT_MAX + 16);
    /* A tag's page walks the tag's index in page order and joins each row's trace (CROSS JOIN keeps that
     * order); every other page walks an index of traces.  `o` is the table whose (started_us, trace_id)
     * give the order. */
    int by_tag = q->tag != NULL && q->tag[0] != '\0';
    const char *o = by_tag ? "g" : "t";
    if (by_tag) {
        gyre_buf_appends(&sql, "SELECT " TRACE_COLS_SUMMARY
                               " FROM trace_tag g CROSS JOIN traces t ON t.rowid = g.trace_rowid WHERE g.tag = ?");
        params[np++] = (query_param_t){q->tag, 0};
    } else {
        gyre_buf_appends(&sql, "SELECT " TRACE_COLS_SUMMARY " FROM traces t WHERE 1 = 1");
    }
    if ((r = trace_where(s, q, o, &sql, params, &np, &words, err, errlen)) != 0)
        goto out;
    if (after != NULL) {
        gyre_buf_appendf(&sql, " AND (%s.started_us, %s.trace_id) < (?, ?)", o, o);
        params[np++] = (query_param_t){NULL, after->started_us};
        params[np++] = (query_param_t){after->trace_id, 0};
    }
    gyre_buf_appendf(&sql, " ORDER BY %s.started_us DESC, %s.trace_id DESC LIMIT ?", o, o);
    params[np++] = (query_param_t){NULL, (int64_t)limit};

    if (sqlite3_prepare_v2(s->db, sql.base, (int)sql.len, &st, NULL) != SQLITE_OK) {
        gyre_store_set_err(err, errlen, "store: preparing the trace query: %s", sqlite3_errmsg(s->db));
        r = -EIO;
        goto out;
    }
    bind_params(st, params, np);
    r = rows_each(s, st, cb, ctx, "running the trace query", err, errlen);
out:
    sqlite3_finalize(st);
    gyre_buf_dispose(&sql);
    gyre_buf_dispose(&words);
    return r;
}

/*
 * The corpus scan: every trace matching q, oldest first, with its stored
 * bodies (zstd frames, or the log reference) and the newest clustering's
 * cluster, in one statement stepped to the end; the shared wrapper
 * (scores.c) expands the bodies.  The cluster is a LEFT JOIN on
 * trace_clusters' primary key, a seek per row inside the same statement.
 */
static int sqlite_scan_bodies(gyre_store_t *gs, const gyre_trace_query_t *q, gyre_store_row_cb cb, void *ctx,
                              char *err, size_t errlen)
{
    sqlite_store_t *s = sq(gs);
    query_param_t params[QUERY_MAX_PARAMS];
    size_t np = 0;
    gyre_buf_t sql, words;
    sqlite3_stmt *st = NULL;
    int r = 0;
    gyre_buf_init(&sql, 4096);
    gyre_buf_init(&words, 4 * GYRE_STORE_TEXT_MAX + 16);
    /* A scan reads every page of its range once: mapped, SQLite hands rows from the file's pages instead of
     * copying each into its page cache (the bodies' overflow pages are most of them).  256 MiB of address
     * space, not of memory; where mmap is unavailable SQLite reads as before. */
    sqlite3_exec(s->db, "PRAGMA mmap_size = 268435456", NULL, NULL, NULL);
    int by_tag = q->tag != NULL && q->tag[0] != '\0';
    const char *o = by_tag ? "g" : "t";
    if (by_tag) {
        gyre_buf_appends(&sql, "SELECT " TRACE_COLS_FULL ", c.cluster FROM trace_tag g CROSS JOIN traces t"
                               " ON t.rowid = g.trace_rowid LEFT JOIN trace_clusters c ON c.trace_id = t.trace_id"
                               " WHERE g.tag = ?");
        params[np++] = (query_param_t){q->tag, 0};
    } else {
        gyre_buf_appends(&sql, "SELECT " TRACE_COLS_FULL ", c.cluster FROM traces t"
                               " LEFT JOIN trace_clusters c ON c.trace_id = t.trace_id WHERE 1 = 1");
    }
    if ((r = trace_where(s, q, o, &sql, params, &np, &words, err, errlen)) != 0)
        goto out;
    gyre_buf_appendf(&sql, " ORDER BY %s.started_us, %s.trace_id", o, o);
    if (sqlite3_prepare_v2(s->db, sql.base, (int)sql.len, &st, NULL) != SQLITE_OK) {
        gyre_store_set_err(err, errlen, "store: preparing the corpus scan: %s", sqlite3_errmsg(s->db));
        r = -EIO;
        goto out;
    }
    bind_params(st, params, np);
    r = rows_each(s, st, cb, ctx, "running the corpus scan", err, errlen);
out:
    sqlite3_finalize(st);
    gyre_buf_dispose(&sql);
    gyre_buf_dispose(&words);
    return r;
}

/* ---- Scores, feedback and clustering runs (migration 9). ---- */

#define SCORE_COLS "trace_id, session, name, source, version, value, label, comment, correction, created_us, trace_started_us"

static const char *col_cstr_or_null(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NULL : (const char *)sqlite3_column_text(st, i);
}

static const char *col_cstr(sqlite3_stmt *st, int i)
{
    const char *p = (const char *)sqlite3_column_text(st, i);
    return p != NULL ? p : "";
}

/* Steps a statement selecting SCORE_COLS, handing each score to cb; stops at cb's first non-zero. */
static int scores_each(sqlite_store_t *s, sqlite3_stmt *st, gyre_score_cb cb, void *ctx, const char *what, char *err,
                       size_t errlen)
{
    int rc, r = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        gyre_score_t sc = {
            .trace_id = col_cstr(st, 0),
            .session = col_cstr(st, 1),
            .name = col_cstr(st, 2),
            .source = sqlite3_column_int(st, 3),
            .version = col_cstr(st, 4),
            .value = sqlite3_column_type(st, 5) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 5),
            .label = col_cstr_or_null(st, 6),
            .comment = col_cstr_or_null(st, 7),
            .correction = col_cstr_or_null(st, 8),
            .created_us = sqlite3_column_int64(st, 9),
            .trace_started_us = sqlite3_column_int64(st, 10),
        };
        if ((r = cb(ctx, &sc)) != 0)
            return r;
    }
    if (rc != SQLITE_DONE) {
        gyre_store_set_err(err, errlen, "store: %s: %s", what, sqlite3_errmsg(s->db));
        return rc_errno(rc);
    }
    return 0;
}

static void bind_cstr_or_null(sqlite3_stmt *st, int i, const char *v)
{
    if (v == NULL)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

static int sqlite_write_scores(gyre_store_t *gs, const gyre_score_t *scores, size_t n, char *err, size_t errlen)
{
    sqlite_store_t *s = sq(gs);
    sqlite3_stmt *st = NULL;
    int r, rc = SQLITE_OK;
    if (n == 0)
        return 0;
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
    if ((r = exec_sql(s, "BEGIN IMMEDIATE", err, errlen)) != 0)
        return r;
    if (sqlite3_prepare_v2(s->db, "INSERT INTO scores (" SCORE_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", -1,
                           &st, NULL) != SQLITE_OK) {
        rc = sqlite3_errcode(s->db);
        goto db_error;
    }
    for (size_t i = 0; i < n; i++) {
        const gyre_score_t *sc = &scores[i];
        if (sc->name == NULL || sc->name[0] == '\0') {
            gyre_store_set_err(err, errlen, "store: a score without a name");
            r = -EINVAL;
            goto out;
        }
        sqlite3_bind_text(st, 1, sc->trace_id != NULL ? sc->trace_id : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, sc->session != NULL ? sc->session : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, sc->name, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, sc->source);
        sqlite3_bind_text(st, 5, sc->version != NULL ? sc->version : "", -1, SQLITE_STATIC);
        if (isfinite(sc->value))
            sqlite3_bind_double(st, 6, sc->value);
        else
            sqlite3_bind_null(st, 6);
        bind_cstr_or_null(st, 7, sc->label);
        bind_cstr_or_null(st, 8, sc->comment);
        bind_cstr_or_null(st, 9, sc->correction);
        sqlite3_bind_int64(st, 10, sc->created_us);
        sqlite3_bind_int64(st, 11, sc->trace_started_us);
        if ((rc = step_done(st)) != SQLITE_OK)
            goto db_error;
    }
    r = exec_sql(s, "COMMIT", err, errlen);
    goto out;
db_error:
    gyre_store_set_err(err, errlen, "store: writing scores: %s", sqlite3_errmsg(s->db));
    r = rc_errno(rc);
out:
    if (r != 0)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_finalize(st);
    return r;
}

static int sqlite_trace_scores(gyre_store_t *gs, const char *trace_id, gyre_score_cb cb, void *ctx, char *err,
                               size_t errlen)
{
    sqlite_store_t *s = sq(gs);
    /* The trace's own scores and its session's feedback (scores_session), by time, then insertion.  The id is
     * compared as `?1 || ''` rather than a bare ?1: the planner checks a bare parameter against the partial
     * index's `trace_id = ''` by its bound value, which made SQLite re-compile the statement at every new id. */
    if (s->sel_trace_scores == NULL &&
        sqlite3_prepare_v2(s->db,
                           "SELECT " SCORE_COLS " FROM scores WHERE trace_id = (?1 || '') OR (trace_id = '' AND"
                           " session <> '' AND session = (SELECT session FROM traces WHERE trace_id = ?1))"
                           " ORDER BY created_us, id",
                           -1, &s->sel_trace_scores, NULL) != SQLITE_OK) {
        gyre_store_set_err(err, errlen, "store: preparing the scores query: %s", sqlite3_errmsg(s->db));
        sqlite3_finalize(s->sel_trace_scores);
        s->sel_trace_scores = NULL;
        return -EIO;
    }
    sqlite3_stmt *st = s->sel_trace_scores;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, trace_id, -1, SQLITE_STATIC);
    int r = scores_each(s, st, cb, ctx, "reading a trace's scores", err, errlen);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return r;
}

static int sqlite_scan_scores(gyre_store_t *gs, int64_t from_us, int64_t to_us, const char *name, gyre_score_cb cb,
                              void *ctx, char *err, size_t errlen)
{
    sqlite_store_t *s = sq(gs);
    sqlite3_stmt *st = NULL;
    int64_t from = from_us, to = to_us != 0 ? to_us : INT64_MAX;
    /* The traces' scores are a range of scores_started; a session's feedback comes first (its
     * trace_started_us is 0) when the session has a trace in range. */
    if (sqlite3_prepare_v2(
            s->db,
            "SELECT " SCORE_COLS " FROM scores WHERE trace_id = '' AND session <> ''"
            " AND (?3 IS NULL OR name = ?3) AND session IN (SELECT session FROM traces t WHERE t.session <> ''"
            " AND t.started_us >= ?1 AND t.started_us < ?2)"
            " UNION ALL SELECT " SCORE_COLS " FROM scores WHERE trace_id <> '' AND trace_started_us >= ?1"
            " AND trace_started_us < ?2 AND (?3 IS NULL OR name = ?3)"
            " ORDER BY trace_started_us, trace_id, created_us",
            -1, &st, NULL) != SQLITE_OK) {
        gyre_store_set_err(err, errlen, "store: preparing the scores scan: %s", sqlite3_errmsg(s->db));
        sqlite3_finalize(st);
        return -EIO;
    }
    sqlite3_bind_int64(st, 1, from);
    sqlite3_bind_int64(st, 2, to);
    bind_cstr_or_null(st, 3, name);
    int r = scores_each(s, st, cb, ctx, "scanning scores", err, errlen);
    sqlite3_finalize(st);
    return r;
}

/* A run newer than (or as new as) every stored one replaces the assignments; an older one keeps only its JSON. */
static int sqlite_put_cluster_run(gyre_store_t *gs, const char *run_id, int64_t created_us, const char *json,
                                  size_t json_len, const gyre_cluster_assign_t *assign, size_t n, char *err,
                                  size_t errlen)
{
    sqlite_store_t *s = sq(gs);
    sqlite3_stmt *newest = NULL, *ins_run = NULL, *ins = NULL;
    int r, rc = SQLITE_OK;
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
    if ((r = exec_sql(s, "BEGIN IMMEDIATE", err, errlen)) != 0)
        return r;
    if (sqlite3_prepare_v2(s->db, "SELECT COALESCE(MAX(created_us), -9223372036854775807) FROM cluster_runs", -1,
                           &newest, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "INSERT INTO cluster_runs (run_id, created_us, json) VALUES (?, ?, ?)", -1, &ins_run,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO trace_clusters (run_id, trace_id, cluster) VALUES (?, ?, ?)",
                           -1, &ins, NULL) != SQLITE_OK) {
        rc = sqlite3_errcode(s->db);
        goto db_error;
    }
    if ((rc = sqlite3_step(newest)) != SQLITE_ROW)
        goto db_error;
    int replaces = created_us >= sqlite3_column_int64(newest, 0);
    sqlite3_reset(newest);
    sqlite3_bind_text(ins_run, 1, run_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins_run, 2, created_us);
    sqlite3_bind_text(ins_run, 3, json != NULL ? json : "", (int)json_len, SQLITE_STATIC);
    if ((rc = step_done(ins_run)) != SQLITE_OK) {
        if ((rc & 0xff) == SQLITE_CONSTRAINT) {
            gyre_store_set_err(err, errlen, "store: clustering run %s is stored already", run_id);
            r = -EEXIST;
            goto out;
        }
        goto db_error;
    }
    if (replaces) {
        if ((r = exec_sql(s, "DELETE FROM trace_clusters", err, errlen)) != 0)
            goto out;
        for (size_t i = 0; i < n; i++) {
            sqlite3_bind_text(ins, 1, run_id, -1, SQLITE_STATIC);
            sqlite3_bind_text(ins, 2, assign[i].trace_id, -1, SQLITE_STATIC);
            sqlite3_bind_int64(ins, 3, assign[i].cluster);
            if ((rc = step_done(ins)) != SQLITE_OK)
                goto db_error;
        }
    }
    r = exec_sql(s, "COMMIT", err, errlen);
    goto out;
db_error:
    gyre_store_set_err(err, errlen, "store: writing a clustering run: %s", sqlite3_errmsg(s->db));
    r = rc_errno(rc);
out:
    if (r != 0)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_finalize(newest);
    sqlite3_finalize(ins_run);
    sqlite3_finalize(ins);
    return r;
}

static int sqlite_get_cluster_run(gyre_store_t *gs, gyre_buf_t *out, char *err, size_t errlen)
{
    sqlite_store_t *s = sq(gs);
    sqlite3_stmt *st = NULL;
    int r = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT json FROM cluster_runs ORDER BY created_us DESC, rowid DESC LIMIT 1", -1, &st,
                           NULL) != SQLITE_OK) {
        gyre_store_set_err(err, errlen, "store: reading the clustering run: %s", sqlite3_errmsg(s->db));
        return -EIO;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (gyre_buf_append(out, sqlite3_column_blob(st, 0) != NULL ? sqlite3_column_blob(st, 0) : "",
                            (size_t)sqlite3_column_bytes(st, 0)) != 0) {
            gyre_store_set_err(err, errlen, "store: the clustering run is larger than its buffer (%zu bytes)",
                               out->max);
            r = -E2BIG;
        }
    } else if (rc == SQLITE_DONE) {
        gyre_store_set_err(err, errlen, "no clustering run is stored");
        r = -ENOENT;
    } else {
        gyre_store_set_err(err, errlen, "store: reading the clustering run: %s", sqlite3_errmsg(s->db));
        r = rc_errno(rc);
    }
    sqlite3_finalize(st);
    return r;
}

static int sqlite_trace_cluster(gyre_store_t *gs, const char *trace_id, int32_t *cluster, char *run_id,
                                size_t run_len, char *err, size_t errlen)
{
    sqlite_store_t *s = sq(gs);
    int r = -ENOENT;
    if (s->sel_trace_cluster == NULL &&
        sqlite3_prepare_v2(s->db, "SELECT cluster, run_id FROM trace_clusters WHERE trace_id = ?", -1,
                           &s->sel_trace_cluster, NULL) != SQLITE_OK) {
        gyre_store_set_err(err, errlen, "store: reading a trace's cluster: %s", sqlite3_errmsg(s->db));
        sqlite3_finalize(s->sel_trace_cluster);
        s->sel_trace_cluster = NULL;
        return -EIO;
    }
    sqlite3_stmt *st = s->sel_trace_cluster;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, trace_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *cluster = (int32_t)sqlite3_column_int64(st, 0);
        snprintf(run_id, run_len, "%s", col_cstr(st, 1));
        r = 0;
    } else if (rc != SQLITE_DONE) {
        gyre_store_set_err(err, errlen, "store: reading a trace's cluster: %s", sqlite3_errmsg(s->db));
        r = rc_errno(rc);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return r;
}

/* ---- Stats. ---- */

/* The filters of a stats query, on the traces table (raw) or the rollup (same column names). */
static void stats_filters(const gyre_stats_query_t *q, gyre_buf_t *sql, query_param_t *params, size_t *np, int raw)
{
    filter_eq(sql, params, np, "route", raw, q->route);
    filter_eq(sql, params, np, "provider", 0, q->provider);
    filter_eq(sql, params, np, "model", 0, q->model);
    filter_eq(sql, params, np, "agent", raw, q->agent);
    filter_eq(sql, params, np, "user_id", raw, q->user);
    if (raw) { /* the rollup has no such columns: gyre_store_stats reads traces when these are asked for */
        filter_eq(sql, params, np, "client_key_id", 1, q->key_id);
        filter_eq(sql, params, np, "team", 1, q->team);
    }
}

static int64_t col_or_zero(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, i);
}

static int sqlite_stats_scan(gyre_store_t *gs, const gyre_stats_query_t *q, int64_t span_us, int64_t from, int64_t to,
                             gyre_stats_answer_t *a, char *err, size_t errlen)
{
    sqlite_store_t *s = sq(gs);
    query_param_t params[QUERY_MAX_PARAMS];
    size_t np = 0;
    gyre_buf_t sql;
    sqlite3_stmt *st = NULL;
    int rc, r = 0;
    gyre_buf_init(&sql, 4096);
    if (span_us == 0) {
        gyre_buf_appends(&sql, "SELECT t.started_us, t.route, t.provider, t.model, t.agent, t.user_id, t.status,"
                               " t.prompt_tokens, t.completion_tokens, t.cached_tokens, t.reasoning_tokens,"
                               " t.cost_usd, t.latency_us, t.ttft_us, t.client_key_id, t.team, t.cost_saved_usd"
                               " FROM traces t WHERE t.started_us >= ? AND t.started_us < ?");
    } else {
        gyre_buf_appends(&sql, "SELECT t.start_us, t.route, t.provider, t.model, t.agent, t.user_id, t.status_class,"
                               " t.prompt_tokens, t.completion_tokens, t.cached_tokens, t.reasoning_tokens,"
                               " t.cost_usd, t.requests, t.cost_n, t.ttft_n, t.lat_hist, t.ttft_hist, t.cost_saved_usd"
                               " FROM trace_rollup t WHERE t.span_us = ? AND t.start_us >= ? AND t.start_us < ?");
        params[np++] = (query_param_t){NULL, span_us};
    }
    params[np++] = (query_param_t){NULL, from};
    params[np++] = (query_param_t){NULL, to};
    stats_filters(q, &sql, params, &np, span_us == 0);
    if (sqlite3_prepare_v2(s->db, sql.base, (int)sql.len, &st, NULL) != SQLITE_OK) {
        gyre_store_set_err(err, errlen, "store: preparing the stats query: %s", sqlite3_errmsg(s->db));
        r = -EIO;
        goto out;
    }
    bind_params(st, params, np);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        gyre_stats_part_t p = {.t_us = sqlite3_column_int64(st, 0)};
        p.route = col_tstr(st, 1);
        p.provider = col_tstr(st, 2);
        p.model = col_tstr(st, 3);
        p.agent = col_tstr(st, 4);
        p.user = col_tstr(st, 5);
        p.prompt_tokens = col_or_zero(st, 7);
        p.completion_tokens = col_or_zero(st, 8);
        p.cached_tokens = col_or_zero(st, 9);
        p.reasoning_tokens = col_or_zero(st, 10);
        if (span_us == 0) {
            p.status_class = sqlite3_column_int(st, 6) / 100;
            p.requests = 1;
            p.cost_n = sqlite3_column_type(st, 11) != SQLITE_NULL;
            p.cost_usd = p.cost_n ? sqlite3_column_double(st, 11) : 0;
            p.latency_us = sqlite3_column_int64(st, 12);
            p.ttft_us = sqlite3_column_type(st, 13) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 13);
            p.key_id = col_tstr(st, 14);
            p.team = col_tstr(st, 15);
            p.cost_saved_usd = sqlite3_column_double(st, 16); /* NULL (unknown) reads as 0: a sum of the known */
        } else {
            p.status_class = sqlite3_column_int(st, 6);
            p.cost_usd = sqlite3_column_double(st, 11);
            p.requests = sqlite3_column_int64(st, 12);
            p.cost_n = sqlite3_column_int64(st, 13);
            p.ttft_n = sqlite3_column_int64(st, 14);
            /* A zero-length blob reads as NULL: "" keeps the part a stored one. */
            p.lat_hist = sqlite3_column_blob(st, 15);
            p.lat_len = (size_t)sqlite3_column_bytes(st, 15);
            if (p.lat_hist == NULL)
                p.lat_hist = "";
            p.ttft_hist = sqlite3_column_blob(st, 16);
            p.ttft_len = (size_t)sqlite3_column_bytes(st, 16);
            p.cost_saved_usd = sqlite3_column_double(st, 17);
        }
        if ((r = gyre_stats_answer_add(a, &p, err, errlen)) != 0)
            goto out;
    }
    if (rc != SQLITE_DONE) {
        gyre_store_set_err(err, errlen, "store: running the stats query: %s", sqlite3_errmsg(s->db));
        r = -EIO;
    }
out:
    sqlite3_finalize(st);
    gyre_buf_dispose(&sql);
    return r;
}

static int64_t sqlite_count(gyre_store_t *gs)
{
    sqlite_store_t *s = sq(gs);
    int64_t n = -1;
    if (sqlite3_step(s->sel_count) == SQLITE_ROW)
        n = sqlite3_column_int64(s->sel_count, 0);
    sqlite3_reset(s->sel_count);
    return n;
}

static int sqlite_schema_version(gyre_store_t *s)
{
    return sq(s)->version;
}
/* Runs the migrations the database lacks, all in one transaction, so two processes opening at once cannot both apply one. */
static int migrate(sqlite_store_t *s, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int r, version = 0;
    if ((r = exec_sql(s, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_us BIGINT NOT NULL)",
                      err, errlen)) != 0)
        return r;
    if ((r = exec_sql(s, "BEGIN IMMEDIATE", err, errlen)) != 0)
        return r;
    if (sqlite3_prepare_v2(s->db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        gyre_store_set_err(err, errlen, "store: reading the schema version: %s", sqlite3_errmsg(s->db));
        r = -EIO;
        goto out;
    }
    version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (version > STORE_SCHEMA_VERSION) {
        gyre_store_set_err(err, errlen, "store: the database is at schema version %d, newer than this gyre's %d", version,
                STORE_SCHEMA_VERSION);
        r = -EPROTO;
        goto out;
    }
    for (int i = 0; i < STORE_SCHEMA_VERSION; i++) {
        const store_migration_t *m = &migrations[i];
        if (m->version <= version)
            continue;
        if ((r = exec_sql(s, m->sql, err, errlen)) != 0)
            goto out;
        if (m->after != NULL && (r = m->after(s, err, errlen)) != 0)
            goto out;
        char ins[128];
        snprintf(ins, sizeof(ins), "INSERT INTO schema_migrations (version, applied_us) VALUES (%d, %" PRId64 ")",
                 m->version, now_us());
        if ((r = exec_sql(s, ins, err, errlen)) != 0)
            goto out;
        version = m->version;
    }
    r = exec_sql(s, "COMMIT", err, errlen);
out:
    sqlite3_finalize(st);
    if (r != 0)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    else
        s->version = version;
    return r;
}

/* ---- Open and close. ---- */

static void sqlite_close(gyre_store_t *gs)
{
    sqlite_store_t *s = sq(gs);
    if (s == NULL)
        return;
    sqlite3_stmt **stmts[] = {&s->ins_trace, &s->ins_tag,     &s->ins_text,  &s->ups_rollup, &s->set_mark,
                              &s->sel_trace, &s->sel_session, &s->sel_count, &s->sel_trace_scores,
                              &s->sel_trace_cluster};
    for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++)
        sqlite3_finalize(*stmts[i]);
    sqlite3_close(s->db);
    gyre_store_dispose(&s->super);
    gyre_buf_dispose(&s->zreq);
    gyre_buf_dispose(&s->zresp);
    gyre_buf_dispose(&s->text);
    gyre_buf_dispose(&s->merge);
    gyre_buf_dispose(&s->tags_json);
    gyre_buf_dispose(&s->meta_json);
    gyre_buf_dispose(&s->attempts_json);
    free(s->rin);
    free(s);
}

/* The directory a database file lives in (its write-ahead log and shared memory go there too). */
static void dir_of(const char *path, char *dir, size_t len)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", path);
    snprintf(dir, len, "%s", dirname(tmp));
}

/*
 * Whether the writer could open `path` and write to it, asked of the file
 * system so that the answer names the OS's reason (SQLite's own is "unable
 * to open database file" whatever happened): the file, when it exists, is
 * a readable and writable regular file; its directory exists and takes new
 * files (the write-ahead log, and the database itself when it is new).
 * Creates nothing.
 */
static int check_path(const char *path, char *err, size_t errlen)
{
    struct stat st;
    char dir[4096];
    if (strcmp(path, ":memory:") == 0)
        return 0;
    dir_of(path, dir, sizeof(dir));
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            gyre_store_set_err(err, errlen, "cannot open %s: it is a directory, not a database file", path);
            return -EISDIR;
        }
        if (access(path, R_OK | W_OK) != 0) {
            int e = errno;
            gyre_store_set_err(err, errlen, "cannot write %s: %s", path, strerror(e));
            return -e;
        }
        if (access(dir, W_OK | X_OK) != 0) {
            int e = errno;
            gyre_store_set_err(err, errlen, "cannot write in %s, where %s keeps its write-ahead log: %s", dir, path,
                               strerror(e));
            return -e;
        }
        return 0;
    }
    if (errno != ENOENT) {
        int e = errno;
        gyre_store_set_err(err, errlen, "cannot open %s: %s", path, strerror(e));
        return -e;
    }
    int e = 0;
    if (stat(dir, &st) != 0)
        e = errno;
    else if (!S_ISDIR(st.st_mode))
        e = ENOTDIR;
    else if (access(dir, W_OK | X_OK) != 0)
        e = errno;
    if (e != 0) {
        gyre_store_set_err(err, errlen, "cannot create %s: %s", path, strerror(e));
        return -e;
    }
    return 0;
}

/* Probe: the path's checks, then, for an existing file, that SQLite reads it as a gyre store it can migrate. */
static int sqlite_probe(const char *path, char *err, size_t errlen)
{
    struct stat st;
    int r = check_path(path, err, errlen);
    if (r != 0 || strcmp(path, ":memory:") == 0 || stat(path, &st) != 0 || st.st_size == 0)
        return r;
    sqlite3 *db = NULL;
    sqlite3_stmt *st2 = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        gyre_store_set_err(err, errlen, "cannot open %s: %s", path, db != NULL ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return -EIO;
    }
    sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
    int rc = sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'schema_migrations'", -1, &st2, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st2);
    int has = rc == SQLITE_ROW ? sqlite3_column_int(st2, 0) : 0;
    /* A corrupt database is not a reason to refuse to start: it is an index, and the trace log's writer moves it
     * aside and rebuilds it from the log when it opens it (trace/writer.h).  Only what stops gyre from writing
     * (no directory, no permission, a newer schema) is refused here. */
    int corrupt = rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB || sqlite3_errcode(db) == SQLITE_CORRUPT ||
                  sqlite3_errcode(db) == SQLITE_NOTADB;
    if (rc != SQLITE_ROW && !corrupt) {
        gyre_store_set_err(err, errlen, "cannot read %s: %s", path, sqlite3_errmsg(db));
        r = -EIO;
    }
    sqlite3_finalize(st2);
    st2 = NULL;
    if (r == 0 && has) {
        rc = sqlite3_prepare_v2(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", -1, &st2, NULL);
        if (rc == SQLITE_OK && sqlite3_step(st2) == SQLITE_ROW && sqlite3_column_int(st2, 0) > STORE_SCHEMA_VERSION) {
            gyre_store_set_err(err, errlen, "%s is at schema version %d, newer than this gyre's %d", path,
                               sqlite3_column_int(st2, 0), STORE_SCHEMA_VERSION);
            r = -EPROTO;
        }
        sqlite3_finalize(st2);
    }
    sqlite3_close(db);
    return r;
}

static int sqlite_open(const char *path, gyre_store_t **out, char *err, size_t errlen)
{
    sqlite_store_t *s = gyre_calloc(1, sizeof(*s));
    int r = 0;
    struct {
        sqlite3_stmt **st;
        const char *sql;
    } stmts[] = {
        {&s->ins_trace, "INSERT INTO traces (trace_id, span_id, parent_span_id, request_id, started_us, ended_us, latency_us,"
                        " ttft_us, endpoint, route, provider, model, status, stream, cache_hit, finish_reason,"
                        " prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost_usd, session, agent,"
                        " user_id, request_body, response_body, otel_trace_id, tags_json, meta_json, attempts_json,"
                        " body_segment, body_offset, body_length, client_key_id, team, cost_saved_usd)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                        " ?, ?, ?, ?, ?, ?)"},
        {&s->ups_rollup, ROLLUP_UPSERT_SAVED},
        /* Tags are a set: a repeat is not an error that should cost the whole batch. */
        {&s->ins_tag, "INSERT OR IGNORE INTO trace_tag (tag, started_us, trace_id, trace_rowid) VALUES (?, ?, ?, ?)"},
        {&s->ins_text, "INSERT INTO trace_fts (rowid, text) VALUES (?, ?)"},
        {&s->set_mark, "INSERT INTO index_mark (id, segment, seg_offset) VALUES (1, ?1, ?2)"
                       " ON CONFLICT (id) DO UPDATE SET segment = ?1, seg_offset = ?2"},
        {&s->sel_trace, "SELECT " TRACE_COLS_FULL " FROM traces t WHERE t.trace_id = ?"},
        {&s->sel_session, "SELECT " TRACE_COLS_FULL " FROM traces t WHERE t.session = ?1 AND t.session <> ''"
                          " ORDER BY t.started_us, t.trace_id LIMIT ?2"},
        {&s->sel_count, "SELECT COUNT(*) FROM traces"},
    };

    *out = NULL;
    gyre_store_init(&s->super, &gyre_store_sqlite);
    gyre_buf_init(&s->zreq, (size_t)INT32_MAX);
    gyre_buf_init(&s->zresp, (size_t)INT32_MAX);
    gyre_buf_init(&s->text, 1u << 20); /* what of a body is searchable: its first MiB of text */
    gyre_buf_init(&s->merge, (size_t)GYRE_HIST_BUCKETS * 20);
    /* Bounded by what a trace can hold (16 tags, 16 meta, 16 attempts); past it the JSON would be cut, so the
     * bound is generous. */
    gyre_buf_init(&s->tags_json, (size_t)64 << 20);
    gyre_buf_init(&s->meta_json, (size_t)64 << 20);
    gyre_buf_init(&s->attempts_json, (size_t)64 << 20);

    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        int e = s->db != NULL ? sqlite3_system_errno(s->db) : 0;
        gyre_store_set_err(err, errlen, "cannot open %s: %s%s%s%s", path,
                           s->db != NULL ? sqlite3_errmsg(s->db) : "out of memory", e ? " (" : "",
                           e ? strerror(e) : "", e ? ")" : "");
        r = -EIO;
        goto fail;
    }
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
    if (sqlite3_create_function(s->db, "gyre_hist_merge", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, s, hist_merge_fn, NULL,
                                NULL) != SQLITE_OK) {
        gyre_store_set_err(err, errlen, "store: registering gyre_hist_merge: %s", sqlite3_errmsg(s->db));
        r = -EIO;
        goto fail;
    }
    /* Retention gives pages back (sqlite_reclaim): only a database created with this keeps track of them;
     * on an existing one without it this does nothing, and freed pages are reused instead. */
    if ((r = exec_sql(s, "PRAGMA auto_vacuum = INCREMENTAL", err, errlen)) != 0 ||
        (r = exec_sql(s, "PRAGMA journal_mode = WAL", err, errlen)) != 0 ||
        (r = exec_sql(s, "PRAGMA synchronous = NORMAL", err, errlen)) != 0 ||
        (r = exec_sql(s, "PRAGMA temp_store = MEMORY", err, errlen)) != 0 ||
        /* 64 MiB of page cache (a bound, not an allocation): the b-trees whose keys are not in time order
         * (trace_id, otel_trace_id, session, user) stay in memory between batches instead of being read back. */
        (r = exec_sql(s, "PRAGMA cache_size = -65536", err, errlen)) != 0 ||
        /* Checkpoint every 64 MiB of WAL rather than 4: a page that every batch rewrites is copied into the
         * database once per checkpoint, not once per few batches.  (SQLite's default, 1000 pages, measured 9 %
         * more CPU per trace over 100k traces in bench/store.) */
        (r = exec_sql(s, "PRAGMA wal_autocheckpoint = 16384", err, errlen)) != 0)
        goto fail;
    if ((r = migrate(s, err, errlen)) != 0)
        goto fail;
    s->fts5 = fts5_api_of(s->db);
    for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
        if (sqlite3_prepare_v3(s->db, stmts[i].sql, -1, SQLITE_PREPARE_PERSISTENT, stmts[i].st, NULL) != SQLITE_OK) {
            gyre_store_set_err(err, errlen, "store: preparing \"%.60s\": %s", stmts[i].sql, sqlite3_errmsg(s->db));
            r = -EIO;
            goto fail;
        }
    }
    *out = &s->super;
    return 0;
fail:
    sqlite_close(&s->super);
    return r;
}

const gyre_store_ops_t gyre_store_sqlite = {
    .name = "sqlite",
    .probe = sqlite_probe,
    .open = sqlite_open,
    .close = sqlite_close,
    .schema_version = sqlite_schema_version,
    .write_batch = sqlite_write_batch,
    .insert_batch = sqlite_insert_batch,
    .get_mark = sqlite_get_mark,
    .drop_segments = sqlite_drop_segments,
    .reset = sqlite_reset,
    .info = sqlite_info,
    .find_trace = sqlite_find_trace,
    .scan_traces = sqlite_scan_traces,
    .scan_session = sqlite_scan_session,
    .stats_scan = sqlite_stats_scan,
    .count = sqlite_count,
    .delete_traces = sqlite_delete_traces,
    .reclaim = sqlite_reclaim,
    .check = sqlite_check,
    .write_scores = sqlite_write_scores,
    .trace_scores = sqlite_trace_scores,
    .scan_scores = sqlite_scan_scores,
    .put_cluster_run = sqlite_put_cluster_run,
    .get_cluster_run = sqlite_get_cluster_run,
    .trace_cluster = sqlite_trace_cluster,
    .scan_bodies = sqlite_scan_bodies,
};
