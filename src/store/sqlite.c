/*
 * The SQLite trace store (issue 5): gyre_store_sqlite, one of the store's
 * backends (store.h).  The dsn is a file path, or ":memory:" for a private
 * database that dies with the handle.
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
 * JSON shapes (the query API returns these as they are):
 *
 *   trace (get_trace, and each of get_session's "traces"):
 *     {"trace_id":"<32 hex>","otel_trace_id":"<32 hex>","span_id":"<16 hex>","parent_span_id":"",
 *      "request_id":"...","started_us":N,"ended_us":N,"latency_us":N,
 *      "ttft_us":N|null,"endpoint":"/v1/chat/completions","route":"...",
 *      "provider":"...","model":"...","status":200,"stream":true|false,
 *      "cache_hit":true|false,"finish_reason":"stop",
 *      "prompt_tokens":N|null,"completion_tokens":N|null,
 *      "cached_tokens":N|null,"reasoning_tokens":N|null,
 *      "cost_usd":X|null,"session":"...","agent":"...","user":"...",
 *      "tags":["a","b"],                 (sorted, duplicates dropped)
 *      "meta":{"k":"v"},                 (sorted by key; a repeated key keeps the last value)
 *      "attempts":[{"provider":"...","model":"...","key_id":"openai#0",
 *                   "status":N,"started_us":N,"latency_us":N,"error":"..."}],
 *      "request_body":<the body as JSON when it parses, else a string, null when not captured>,
 *      "response_body":<the same>}
 *   summary (each of query_traces' "data"): the trace without
 *     request_body and response_body.
 *   page: {"data":[summaries, newest first],"next_cursor":"<started_us>_<trace_id>"|null}
 *   session: {"session":"...","traces":[traces, oldest first, at most 1000]}
 *
 * A cursor is the last row of a page, "<started_us>_<trace_id>"; the next
 * page is the rows strictly before it in (started_us, trace_id) order, so
 * traces written meanwhile never shift a page.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/json.h"
#include "common/utf8.h"
#include "common/zstd.h"
#include "store/rollup.h"
#include "store/store.h"

/* The largest body a read expands (a stored frame that claims more is reported as an error, not allocated). */
#define STORE_BODY_MAX (64u << 20)
/* The most calls get_session returns: an agent's trajectory, bounded so one session cannot pin a handler. */
#define STORE_SESSION_MAX 1000
#define STORE_LIMIT_DEFAULT 50
#define STORE_LIMIT_MAX 1000
#define STORE_BUSY_TIMEOUT_MS 5000
/* How long a batch write waits for a lock another process holds (the CLI migrating, a backup, an operator's
 * sqlite3 shell): not long, since the writer thread spools what the store does not take, and while it waits
 * here the traces in memory are the ones a kill -9 would lose. */
#define STORE_WRITE_BUSY_TIMEOUT_MS 20
/* zstd's default level 3: on bodies of a few KB it measured as fast as level 1 here (about 5-7 us per 2 KB
 * frame either way) and compresses them a little better, so the faster levels buy nothing. */
#define STORE_ZSTD_LEVEL GYRE_ZSTD_LEVEL_DEFAULT

typedef struct store_migration {
    int version;
    const char *sql;
    /* Run after the SQL in the same transaction (a backfill that needs C), or NULL. */
    int (*after)(gyre_store_t *s, char *err, size_t errlen);
} store_migration_t;

static int rollup_backfill(gyre_store_t *s, char *err, size_t errlen);

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
     * The writer's cost (issue 5's 50k traces/s).  Every b-tree a trace
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
};
#define STORE_SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

struct gyre_store {
    sqlite3 *db;
    int version;
    sqlite3_stmt *ins_trace, *ins_tag, *ins_text, *ups_rollup;
    sqlite3_stmt *sel_trace, *sel_session, *sel_count;
    gyre_zstd_t *zstd;
    fts5_api *fts5; /* owned by the connection */
    /* Scratch reused by every write and read, so a batch allocates nothing per trace once warm. */
    gyre_buf_t zreq, zresp, text, body, merge, tags_json, meta_json, attempts_json;
    /* The new traces of the batch being written, for the rollup. */
    gyre_rollup_in_t *rin;
    size_t rin_cap;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The columns of TRACE_COLS_* past the first 24, by number. */
enum { COL_OTEL_TRACE_ID = 24, COL_TAGS_JSON, COL_META_JSON, COL_ATTEMPTS_JSON, COL_REQUEST_BODY, COL_RESPONSE_BODY };

/* ---- JSON writing with a sticky error, so a shape reads as a list of fields. ---- */

typedef struct json_writer {
    gyre_buf_t *b;
    int r;
} json_writer_t;

static void jw_raw(json_writer_t *w, const char *s, size_t n)
{
    if (w->r == 0)
        w->r = gyre_buf_append(w->b, s, n);
}

static void jw_lit(json_writer_t *w, const char *s)
{
    jw_raw(w, s, strlen(s));
}

static void jw_str(json_writer_t *w, const char *s, size_t n)
{
    if (w->r == 0)
        w->r = gyre_buf_append_json_string(w->b, s != NULL ? s : "", s != NULL ? n : 0);
}

static void jw_int(json_writer_t *w, int64_t v)
{
    if (w->r == 0)
        w->r = gyre_buf_appendf(w->b, "%" PRId64, v);
}

/* The shortest text that reads back as the same double. */
static void jw_double(json_writer_t *w, double v)
{
    char tmp[40];
    if (!isfinite(v)) {
        jw_lit(w, "null");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    jw_lit(w, tmp);
}

/* ---- Columns to JSON. ---- */

static void jw_col_str(json_writer_t *w, sqlite3_stmt *st, int i)
{
    const char *p = (const char *)sqlite3_column_text(st, i);
    jw_str(w, p, (size_t)sqlite3_column_bytes(st, i));
}

static void jw_col_int_or_null(json_writer_t *w, sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        jw_lit(w, "null");
    else
        jw_int(w, sqlite3_column_int64(st, i));
}

static void jw_col_bool(json_writer_t *w, sqlite3_stmt *st, int i)
{
    jw_lit(w, sqlite3_column_int(st, i) ? "true" : "false");
}

static int jw_col_body(json_writer_t *w, gyre_store_t *s, sqlite3_stmt *st, int i, char *err, size_t errlen)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL) {
        jw_lit(w, "null");
        return 0;
    }
    const void *z = sqlite3_column_blob(st, i);
    size_t zlen = (size_t)sqlite3_column_bytes(st, i);
    gyre_buf_reset(&s->body);
    int r = gyre_zstd_decompress(s->zstd, &s->body, z, zlen);
    if (r != 0) {
        set_err(err, errlen, "trace %s: stored %s does not decompress (%s)", (const char *)sqlite3_column_text(st, 0),
                i == COL_REQUEST_BODY ? "request_body" : "response_body", r == -E2BIG ? "larger than 64 MiB" : "corrupt zstd");
        return -EIO;
    }
    /* A body goes in as it is only when any strict parser reads it (RFC 8259, well-formed UTF-8); any other
     * body, a truncated one, one with raw control bytes or ill-formed UTF-8, goes in as a string, whose encoder
     * replaces ill-formed UTF-8 with U+FFFD (docs/api.md), so the answer is always JSON. */
    if (gyre_json_valid(s->body.base, s->body.len))
        jw_raw(w, s->body.base, s->body.len);
    else
        jw_str(w, s->body.base, s->body.len);
    return 0;
}

/* The columns every read selects, in this order; the page query swaps the two bodies for NULLs. */
#define TRACE_COLS_HEAD                                                                                              \
    "t.trace_id, t.span_id, t.parent_span_id, t.request_id, t.started_us, t.ended_us, t.latency_us, t.ttft_us, "   \
    "t.endpoint, t.route, t.provider, t.model, t.status, t.stream, t.cache_hit, t.finish_reason, "                  \
    "t.prompt_tokens, t.completion_tokens, t.cached_tokens, t.reasoning_tokens, t.cost_usd, t.session, t.agent, "  \
    "t.user_id, t.otel_trace_id, t.tags_json, t.meta_json, t.attempts_json"
#define TRACE_COLS_FULL TRACE_COLS_HEAD ", t.request_body, t.response_body"
#define TRACE_COLS_SUMMARY TRACE_COLS_HEAD ", NULL, NULL"

static int bind_id(sqlite3_stmt *st, const char *id, int n)
{
    sqlite3_reset(st);
    return sqlite3_bind_text(st, 1, id, n, SQLITE_STATIC);
}

/* A column that holds JSON, as it is (`empty` when the column is empty, which no write makes). */
static void jw_col_raw(json_writer_t *w, sqlite3_stmt *st, int i, const char *empty)
{
    const char *p = (const char *)sqlite3_column_text(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    if (p == NULL || n == 0)
        jw_lit(w, empty);
    else if (w->r == 0 && !gyre_utf8_valid(p, n))
        w->r = gyre_buf_append_utf8(w->b, p, n); /* a row written before the writer's encoder replaced it */
    else
        jw_raw(w, p, n);
}

/* One row of TRACE_COLS_* as a trace object (bodies included when `bodies`), appended to w. */
static int row_to_json(gyre_store_t *s, sqlite3_stmt *st, int bodies, json_writer_t *w, char *err, size_t errlen)
{
    int r = 0;

    jw_lit(w, "{\"trace_id\":");
    jw_col_str(w, st, 0);
    jw_lit(w, ",\"otel_trace_id\":");
    jw_col_str(w, st, COL_OTEL_TRACE_ID);
    jw_lit(w, ",\"span_id\":");
    jw_col_str(w, st, 1);
    jw_lit(w, ",\"parent_span_id\":");
    jw_col_str(w, st, 2);
    jw_lit(w, ",\"request_id\":");
    jw_col_str(w, st, 3);
    jw_lit(w, ",\"started_us\":");
    jw_int(w, sqlite3_column_int64(st, 4));
    jw_lit(w, ",\"ended_us\":");
    jw_int(w, sqlite3_column_int64(st, 5));
    jw_lit(w, ",\"latency_us\":");
    jw_int(w, sqlite3_column_int64(st, 6));
    jw_lit(w, ",\"ttft_us\":");
    jw_col_int_or_null(w, st, 7);
    jw_lit(w, ",\"endpoint\":");
    jw_col_str(w, st, 8);
    jw_lit(w, ",\"route\":");
    jw_col_str(w, st, 9);
    jw_lit(w, ",\"provider\":");
    jw_col_str(w, st, 10);
    jw_lit(w, ",\"model\":");
    jw_col_str(w, st, 11);
    jw_lit(w, ",\"status\":");
    jw_int(w, sqlite3_column_int64(st, 12));
    jw_lit(w, ",\"stream\":");
    jw_col_bool(w, st, 13);
    jw_lit(w, ",\"cache_hit\":");
    jw_col_bool(w, st, 14);
    jw_lit(w, ",\"finish_reason\":");
    jw_col_str(w, st, 15);
    jw_lit(w, ",\"prompt_tokens\":");
    jw_col_int_or_null(w, st, 16);
    jw_lit(w, ",\"completion_tokens\":");
    jw_col_int_or_null(w, st, 17);
    jw_lit(w, ",\"cached_tokens\":");
    jw_col_int_or_null(w, st, 18);
    jw_lit(w, ",\"reasoning_tokens\":");
    jw_col_int_or_null(w, st, 19);
    jw_lit(w, ",\"cost_usd\":");
    if (sqlite3_column_type(st, 20) == SQLITE_NULL)
        jw_lit(w, "null");
    else
        jw_double(w, sqlite3_column_double(st, 20));
    jw_lit(w, ",\"session\":");
    jw_col_str(w, st, 21);
    jw_lit(w, ",\"agent\":");
    jw_col_str(w, st, 22);
    jw_lit(w, ",\"user\":");
    jw_col_str(w, st, 23);

    /* Rendered by the writer in this shape (render_tags and the others below). */
    jw_lit(w, ",\"tags\":");
    jw_col_raw(w, st, COL_TAGS_JSON, "[]");
    jw_lit(w, ",\"meta\":");
    jw_col_raw(w, st, COL_META_JSON, "{}");
    jw_lit(w, ",\"attempts\":");
    jw_col_raw(w, st, COL_ATTEMPTS_JSON, "[]");

    if (bodies) {
        jw_lit(w, ",\"request_body\":");
        if ((r = jw_col_body(w, s, st, COL_REQUEST_BODY, err, errlen)) != 0)
            return r;
        jw_lit(w, ",\"response_body\":");
        if ((r = jw_col_body(w, s, st, COL_RESPONSE_BODY, err, errlen)) != 0)
            return r;
    }
    jw_lit(w, "}");
    return 0;
}

/* The output buffer's bound reached: say so, and leave the buffer as it was. */
static int json_done(json_writer_t *w, size_t start, int r, char *err, size_t errlen)
{
    if (r == 0 && w->r != 0) {
        r = w->r;
        set_err(err, errlen, "store: the answer is larger than its buffer (%zu bytes)", w->b->max);
    }
    if (r != 0) {
        w->b->len = start;
        if (w->b->base != NULL)
            w->b->base[start] = '\0';
    }
    return r;
}

/* ---- Free text: what of a body is worth searching. ---- */

/* Members whose strings are what a person wrote or a model answered (OpenAI, Anthropic and Gemini shapes). */
static int is_text_key(const char *k)
{
    static const char *const keys[] = {"content", "text", "prompt", "input", "system", "instructions",
                                       "arguments", "reasoning_content", "thinking", "output_text"};
    if (k == NULL)
        return 0;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(k, keys[i]) == 0)
            return 1;
    return 0;
}

static void collect_text(const cJSON *v, int wanted, gyre_buf_t *out)
{
    if (cJSON_IsString(v)) {
        if (wanted && v->valuestring[0] != '\0') {
            gyre_buf_append(out, v->valuestring, strlen(v->valuestring));
            gyre_buf_append(out, "\n", 1);
        }
        return;
    }
    for (const cJSON *c = v->child; c != NULL; c = c->next)
        collect_text(c, cJSON_IsObject(v) ? is_text_key(c->string) : wanted, out);
}

/*
 * Appends the searchable text of a body: the strings under the text-bearing
 * members when it is JSON, the bytes as they are otherwise.  At the text
 * buffer's bound the rest is not indexed (the body itself is still stored
 * whole).
 */
static void body_text(const gyre_tstr_t *body, gyre_buf_t *out)
{
    if (body->len == 0)
        return;
    cJSON *v = cJSON_ParseWithLength(body->p, body->len);
    if (v == NULL) {
        size_t room = out->max - out->len;
        gyre_buf_append(out, body->p, body->len < room ? body->len : room);
    } else {
        collect_text(v, 0, out);
        cJSON_Delete(v);
    }
    gyre_buf_append(out, "\n", 1);
}

/* ---- Writes. ---- */

/* The error of the last call: -EBADMSG when the database is corrupt (the trace log's indexer rebuilds it from
 * the log then, trace/writer.h), else -EIO. */
static int store_errno(gyre_store_t *s)
{
    int c = sqlite3_errcode(s->db) & 0xff;
    return c == SQLITE_CORRUPT || c == SQLITE_NOTADB ? -EBADMSG : -EIO;
}

static int bind_tstr(sqlite3_stmt *st, int i, const gyre_tstr_t *v)
{
    return sqlite3_bind_text(st, i, v->len ? v->p : "", (int)v->len, SQLITE_STATIC);
}

static int bind_known(sqlite3_stmt *st, int i, int64_t v)
{
    return v < 0 ? sqlite3_bind_null(st, i) : sqlite3_bind_int64(st, i, v);
}

static int bind_body(gyre_store_t *s, sqlite3_stmt *st, int i, const gyre_tstr_t *body, gyre_buf_t *z)
{
    if (body->len == 0)
        return sqlite3_bind_null(st, i);
    gyre_buf_reset(z);
    int r = gyre_zstd_compress(s->zstd, z, body->p, body->len);
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

/* ---- What the writer renders for get_trace: tags, meta and attempts in the API's shape. ---- */

static int tstr_cmp_cb(const void *a, const void *b)
{
    const gyre_tstr_t *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->p, y->p, n) : 0;
    return c != 0 ? c : (x->len < y->len ? -1 : x->len > y->len);
}

/* Sorted, duplicates dropped. */
static void render_tags(const gyre_tstr_t *tags, size_t n, gyre_buf_t *out)
{
    gyre_tstr_t sorted[GYRE_TRACE_MAX_TAGS];
    memcpy(sorted, tags, n * sizeof(*tags));
    qsort(sorted, n, sizeof(*sorted), tstr_cmp_cb);
    gyre_buf_reset(out);
    gyre_buf_append(out, "[", 1);
    for (size_t i = 0, k = 0; i < n; i++) {
        if (i > 0 && tstr_cmp_cb(&sorted[i], &sorted[i - 1]) == 0)
            continue;
        if (k++)
            gyre_buf_append(out, ",", 1);
        gyre_buf_append_json_string(out, sorted[i].p ? sorted[i].p : "", sorted[i].len);
    }
    gyre_buf_append(out, "]", 1);
}

typedef struct meta_ref {
    const gyre_trace_meta_t *m;
    size_t order;
} meta_ref_t;

static int meta_ref_cmp_cb(const void *a, const void *b)
{
    const meta_ref_t *x = a, *y = b;
    int c = tstr_cmp_cb(&x->m->key, &y->m->key);
    return c != 0 ? c : (x->order < y->order ? -1 : x->order > y->order);
}

/* Sorted by key; a repeated key keeps its last value. */
static void render_meta(const gyre_trace_meta_t *meta, size_t n, gyre_buf_t *out)
{
    meta_ref_t refs[GYRE_TRACE_MAX_META];
    for (size_t i = 0; i < n; i++)
        refs[i] = (meta_ref_t){&meta[i], i};
    qsort(refs, n, sizeof(*refs), meta_ref_cmp_cb);
    gyre_buf_reset(out);
    gyre_buf_append(out, "{", 1);
    for (size_t i = 0, k = 0; i < n; i++) {
        if (i + 1 < n && tstr_cmp_cb(&refs[i].m->key, &refs[i + 1].m->key) == 0)
            continue; /* a later one has the same key */
        if (k++)
            gyre_buf_append(out, ",", 1);
        const gyre_trace_meta_t *m = refs[i].m;
        gyre_buf_append_json_string(out, m->key.p ? m->key.p : "", m->key.len);
        gyre_buf_append(out, ":", 1);
        gyre_buf_append_json_string(out, m->value.p ? m->value.p : "", m->value.len);
    }
    gyre_buf_append(out, "}", 1);
}

static void render_attempts(const gyre_trace_attempt_t *a, size_t n, gyre_buf_t *out)
{
    gyre_buf_reset(out);
    gyre_buf_append(out, "[", 1);
    for (size_t i = 0; i < n; i++) {
        gyre_buf_appends(out, i ? ",{\"provider\":" : "{\"provider\":");
        gyre_buf_append_json_string(out, a[i].provider.p ? a[i].provider.p : "", a[i].provider.len);
        gyre_buf_appends(out, ",\"model\":");
        gyre_buf_append_json_string(out, a[i].model.p ? a[i].model.p : "", a[i].model.len);
        gyre_buf_appends(out, ",\"key_id\":");
        gyre_buf_append_json_string(out, a[i].key_id.p ? a[i].key_id.p : "", a[i].key_id.len);
        gyre_buf_appendf(out, ",\"status\":%d,\"started_us\":%" PRId64 ",\"latency_us\":%" PRId64 ",\"error\":",
                         a[i].status, a[i].started_us, a[i].latency_us);
        gyre_buf_append_json_string(out, a[i].error.p ? a[i].error.p : "", a[i].error.len);
        gyre_buf_append(out, "}", 1);
    }
    gyre_buf_append(out, "]", 1);
}

static int write_one(gyre_store_t *s, const gyre_trace_t *t, char *err, size_t errlen)
{
    sqlite3_stmt *st = s->ins_trace;
    size_t nattempts = t->nattempts < GYRE_TRACE_MAX_ATTEMPTS ? t->nattempts : GYRE_TRACE_MAX_ATTEMPTS;
    size_t ntags = t->ntags < GYRE_TRACE_MAX_TAGS ? t->ntags : GYRE_TRACE_MAX_TAGS;
    size_t nmeta = t->nmeta < GYRE_TRACE_MAX_META ? t->nmeta : GYRE_TRACE_MAX_META;
    int rc, r;
    const char *what = "traces";

    if (strnlen(t->trace_id, sizeof(t->trace_id)) == 0 || strnlen(t->trace_id, sizeof(t->trace_id)) == sizeof(t->trace_id)) {
        set_err(err, errlen, "store: a trace without a trace_id");
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
    render_tags(t->tags, ntags, &s->tags_json);
    render_meta(t->meta, nmeta, &s->meta_json);
    render_attempts(t->attempts, nattempts, &s->attempts_json);
    sqlite3_bind_text(st, 28, s->tags_json.base, (int)s->tags_json.len, SQLITE_STATIC);
    sqlite3_bind_text(st, 29, s->meta_json.base, (int)s->meta_json.len, SQLITE_STATIC);
    sqlite3_bind_text(st, 30, s->attempts_json.base, (int)s->attempts_json.len, SQLITE_STATIC);
    if ((r = bind_body(s, st, 25, &t->request_body, &s->zreq)) != 0 ||
        (r = bind_body(s, st, 26, &t->response_body, &s->zresp)) != 0) {
        sqlite3_reset(st);
        set_err(err, errlen, "store: trace %s: a body does not compress into its bound", t->trace_id);
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
    if (t->request_body.len != 0 || t->response_body.len != 0) {
        gyre_buf_reset(&s->text);
        body_text(&t->request_body, &s->text);
        body_text(&t->response_body, &s->text);
        sqlite3_bind_int64(s->ins_text, 1, rowid);
        sqlite3_bind_text(s->ins_text, 2, s->text.base != NULL ? s->text.base : "", (int)s->text.len, SQLITE_STATIC);
        if ((rc = step_done(s->ins_text)) != SQLITE_OK)
            goto db_error;
    }
    return 0;

db_error:
    if ((rc & 0xff) == SQLITE_CONSTRAINT && strcmp(what, "traces") == 0) {
        /* Already stored: the spool replays what a crash left, and some of it may have been committed just
         * before the crash.  Writing a trace twice is a no-op, so replay is safe. */
        return 1;
    }
    set_err(err, errlen, "store: writing trace %s into %s: %s", t->trace_id, what, sqlite3_errmsg(s->db));
    return store_errno(s);
}

static int exec_sql(gyre_store_t *s, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        set_err(err, errlen, "store: %s: %s", sql, msg != NULL ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return store_errno(s);
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

typedef struct rollup_write {
    gyre_store_t *s;
    sqlite3_stmt *st;
    char *err;
    size_t errlen;
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
    int rc = step_done(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_OK) {
        set_err(rw->err, rw->errlen, "store: writing the stats rollup: %s", sqlite3_errmsg(rw->s->db));
        return -EIO;
    }
    return 0;
}

static void rin_reserve(gyre_store_t *s, size_t n)
{
    if (n <= s->rin_cap)
        return;
    s->rin_cap = n < 512 ? 512 : n;
    s->rin = gyre_realloc(s->rin, s->rin_cap * sizeof(*s->rin));
}

/* gyre_hist_merge(a, b): the stored form of the two histograms' sum (NULL reads as empty). */
static void hist_merge_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    gyre_store_t *s = sqlite3_user_data(ctx);
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
static int rollup_backfill(gyre_store_t *s, char *err, size_t errlen)
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
        set_err(err, errlen, "store: preparing the rollup backfill: %s", sqlite3_errmsg(s->db));
        r = -EIO;
        goto out;
    }
    rollup_write_t rw = {s, ups, err, errlen};
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
            set_err(err, errlen, "store: reading traces for the rollup backfill: %s", sqlite3_errmsg(s->db));
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

static int sqlite_write_batch(gyre_store_t *s, const gyre_trace_t *const *traces, size_t n, char *err, size_t errlen)
{
    int r;
    size_t nr = 0;
    if (n == 0)
        return 0;
    rin_reserve(s, n);
    sqlite3_busy_timeout(s->db, STORE_WRITE_BUSY_TIMEOUT_MS);
    if ((r = exec_sql(s, "BEGIN IMMEDIATE", err, errlen)) != 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        if ((r = write_one(s, traces[i], err, errlen)) < 0) {
            /* All or none: the writer retries or drops the batch as a whole, and says how many it lost. */
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return r;
        }
        /* A trace already stored (a replay) is already in the rollup. */
        if (r == 0)
            gyre_rollup_in_from_trace(&s->rin[nr++], traces[i]);
    }
    rollup_write_t rw = {s, s->ups_rollup, err, errlen};
    if ((r = gyre_rollup_batch(s->rin, nr, rollup_upsert_cb, &rw)) != 0) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return r;
    }
    if ((r = exec_sql(s, "COMMIT", err, errlen)) != 0) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return r;
    }
    return 0;
}

/* ---- Reads. ---- */

static int sqlite_get_trace(gyre_store_t *s, const char *trace_id, gyre_buf_t *out, char *err, size_t errlen)
{
    json_writer_t w = {out, 0};
    size_t start = out->len;
    int rc, r = 0;
    sqlite3_stmt *st = s->sel_trace;
    bind_id(st, trace_id, -1);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        set_err(err, errlen, "trace %s: not found", trace_id);
        r = -ENOENT;
    } else if (rc != SQLITE_ROW) {
        set_err(err, errlen, "store: reading trace %s: %s", trace_id, sqlite3_errmsg(s->db));
        r = -EIO;
    } else {
        r = row_to_json(s, st, 1, &w, err, errlen);
    }
    sqlite3_reset(st);
    if (r == -ENOENT)
        return r;
    return json_done(&w, start, r, err, errlen);
}

static int sqlite_get_session(gyre_store_t *s, const char *session, gyre_buf_t *out, char *err, size_t errlen)
{
    json_writer_t w = {out, 0};
    size_t start = out->len;
    int rc, r = 0, n = 0;
    sqlite3_stmt *st = s->sel_session;

    if (session == NULL || session[0] == '\0') {
        set_err(err, errlen, "session: empty id");
        return -ENOENT;
    }
    jw_lit(&w, "{\"session\":");
    jw_str(&w, session, strlen(session));
    jw_lit(&w, ",\"traces\":[");
    bind_id(st, session, -1);
    sqlite3_bind_int(st, 2, STORE_SESSION_MAX);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n++)
            jw_lit(&w, ",");
        if ((r = row_to_json(s, st, 1, &w, err, errlen)) != 0)
            break;
    }
    if (r == 0 && rc != SQLITE_DONE) {
        set_err(err, errlen, "store: reading session %s: %s", session, sqlite3_errmsg(s->db));
        r = -EIO;
    }
    sqlite3_reset(st);
    jw_lit(&w, "]}");
    if (r == 0 && n == 0) {
        set_err(err, errlen, "session %s: not found", session);
        r = -ENOENT;
    }
    return json_done(&w, start, r, err, errlen);
}

typedef struct query_param {
    const char *s; /* NULL: an integer */
    int64_t i;
} query_param_t;

#define QUERY_MAX_PARAMS 20

/* Reads "<started_us>_<trace_id>"; 0, or -EINVAL with the reason in err. */
static int cursor_parse(const char *c, int64_t *started_us, const char **trace_id, char *err, size_t errlen)
{
    const char *p = c;
    int64_t v = 0;
    size_t digits = 0, idlen = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        if (v > (INT64_MAX - (*p - '0')) / 10)
            goto bad;
        v = v * 10 + (*p - '0');
    }
    if (digits == 0 || *p != '_')
        goto bad;
    *trace_id = ++p;
    for (; (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'); p++)
        idlen++;
    if (*p != '\0' || idlen == 0 || idlen > 32)
        goto bad;
    *started_us = v;
    return 0;
bad:
    set_err(err, errlen, "cursor: \"%.64s\" is not one this API returned (expected <started_us>_<trace_id>)", c);
    return -EINVAL;
}

/* Adds " AND <col> = ?" for a non-empty filter; a partial-index column repeats the index's condition. */
static void filter_eq(gyre_buf_t *sql, query_param_t *params, size_t *np, const char *col, int partial, const char *v)
{
    if (v == NULL || v[0] == '\0')
        return;
    gyre_buf_appendf(sql, partial ? " AND t.%s = ? AND t.%s <> ''" : " AND t.%s = ?", col, col);
    params[(*np)++] = (query_param_t){v, 0};
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
static int fts_all_words(gyre_store_t *s, const char *text, gyre_buf_t *out, size_t *nwords)
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

static int sqlite_query_traces(gyre_store_t *s, const gyre_trace_query_t *q, gyre_buf_t *out, char *err, size_t errlen)
{
    query_param_t params[QUERY_MAX_PARAMS];
    size_t np = 0;
    size_t limit = q->limit == 0 ? STORE_LIMIT_DEFAULT : q->limit;
    int64_t cur_us = 0;
    const char *cur_id = NULL;
    gyre_buf_t sql, words;
    sqlite3_stmt *st = NULL;
    json_writer_t w = {out, 0};
    size_t start = out->len, n = 0;
    int rc, r = 0;
    char last_cursor[64] = "";

    if (limit > STORE_LIMIT_MAX) {
        set_err(err, errlen, "limit: %zu is more than %d", limit, STORE_LIMIT_MAX);
        return -EINVAL;
    }
    if (q->cursor != NULL && q->cursor[0] != '\0' && (r = cursor_parse(q->cursor, &cur_us, &cur_id, err, errlen)) != 0)
        return r;

    /* Generous bounds: the SQL is a fixed text plus one clause per filter; the words are the client's text's
     * tokens, each quoted (a token of one byte and its separator become four bytes). */
    gyre_buf_init(&sql, 4096);
    gyre_buf_init(&words, 4 * 4096 + 16);
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
    if (q->from_us != 0) {
        gyre_buf_appendf(&sql, " AND %s.started_us >= ?", o);
        params[np++] = (query_param_t){NULL, q->from_us};
    }
    if (q->to_us != 0) {
        gyre_buf_appendf(&sql, " AND %s.started_us < ?", o);
        params[np++] = (query_param_t){NULL, q->to_us};
    }
    filter_eq(&sql, params, &np, "route", 1, q->route);
    filter_eq(&sql, params, &np, "provider", 0, q->provider);
    filter_eq(&sql, params, &np, "model", 0, q->model);
    filter_eq(&sql, params, &np, "agent", 1, q->agent);
    filter_eq(&sql, params, &np, "session", 1, q->session);
    filter_eq(&sql, params, &np, "user_id", 1, q->user);
    filter_eq(&sql, params, &np, "otel_trace_id", 0, q->otel_trace_id);
    if (q->status != 0) {
        gyre_buf_appends(&sql, " AND t.status = ?");
        params[np++] = (query_param_t){NULL, q->status};
    }
    if (q->errors_only)
        gyre_buf_appends(&sql, " AND t.status >= 400");
    if (q->min_latency_us > 0) {
        gyre_buf_appends(&sql, " AND t.latency_us >= ?");
        params[np++] = (query_param_t){NULL, q->min_latency_us};
    }
    if (q->text != NULL && q->text[0] != '\0') {
        if (strlen(q->text) > 4096) {
            set_err(err, errlen, "text: longer than 4096 bytes");
            r = -EINVAL;
            goto out;
        }
        size_t nwords = 0;
        if (fts_all_words(s, q->text, &words, &nwords) != 0) {
            set_err(err, errlen, "store: the free-text tokenizer failed on q");
            r = -EIO;
            goto out;
        }
        if (nwords == 0) {
            /* Only separators: no word to find, so no call has them all. */
            gyre_buf_appends(&sql, " AND 0 = 1");
        } else {
            gyre_buf_appends(&sql, " AND t.rowid IN (SELECT rowid FROM trace_fts WHERE trace_fts MATCH ?)");
            params[np++] = (query_param_t){words.base, 0};
        }
    }
    if (cur_id != NULL) {
        gyre_buf_appendf(&sql, " AND (%s.started_us, %s.trace_id) < (?, ?)", o, o);
        params[np++] = (query_param_t){NULL, cur_us};
        params[np++] = (query_param_t){cur_id, 0};
    }
    /* One row more than the page says whether there is a next one. */
    gyre_buf_appendf(&sql, " ORDER BY %s.started_us DESC, %s.trace_id DESC LIMIT ?", o, o);
    params[np++] = (query_param_t){NULL, (int64_t)limit + 1};

    if (sqlite3_prepare_v2(s->db, sql.base, (int)sql.len, &st, NULL) != SQLITE_OK) {
        set_err(err, errlen, "store: preparing the trace query: %s", sqlite3_errmsg(s->db));
        r = -EIO;
        goto out;
    }
    for (size_t i = 0; i < np; i++) {
        if (params[i].s != NULL)
            sqlite3_bind_text(st, (int)i + 1, params[i].s, -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(st, (int)i + 1, params[i].i);
    }

    jw_lit(&w, "{\"data\":[");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == limit)
            break;
        if (n++)
            jw_lit(&w, ",");
        if ((r = row_to_json(s, st, 0, &w, err, errlen)) != 0)
            goto out;
        snprintf(last_cursor, sizeof(last_cursor), "%" PRId64 "_%.32s", (int64_t)sqlite3_column_int64(st, 4),
                 (const char *)sqlite3_column_text(st, 0));
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        set_err(err, errlen, "store: running the trace query: %s", sqlite3_errmsg(s->db));
        r = -EIO;
        goto out;
    }
    jw_lit(&w, "],\"next_cursor\":");
    if (rc == SQLITE_ROW)
        jw_str(&w, last_cursor, strlen(last_cursor));
    else
        jw_lit(&w, "null");
    jw_lit(&w, "}");

out:
    sqlite3_finalize(st);
    gyre_buf_dispose(&sql);
    gyre_buf_dispose(&words);
    return json_done(&w, start, r, err, errlen);
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
}

static int64_t ceil_to(int64_t t, int64_t span)
{
    int64_t f = t / span * span;
    if (f > t)
        f -= span;
    return f == t ? t : f + span;
}

static int64_t floor_to_span(int64_t t, int64_t span)
{
    int64_t f = t / span * span;
    return f > t ? f - span : f;
}

static int64_t col_known(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, i);
}

static void col_tstr(sqlite3_stmt *st, int i, gyre_tstr_t *v)
{
    v->p = (char *)sqlite3_column_text(st, i);
    v->len = (size_t)sqlite3_column_bytes(st, i);
}

/*
 * Adds to `a` the traces started in [from, to) (raw: read one by one, for
 * the edges that no whole minute covers) or the rollup rows of span
 * `span_us` that start in [from, to).
 */
static int stats_scan(gyre_store_t *s, const gyre_stats_query_t *q, gyre_stats_answer_t *a, int64_t span_us,
                      int64_t from, int64_t to, char *err, size_t errlen)
{
    query_param_t params[QUERY_MAX_PARAMS];
    size_t np = 0;
    gyre_buf_t sql;
    sqlite3_stmt *st = NULL;
    int rc, r = 0;
    if (from >= to)
        return 0;
    gyre_buf_init(&sql, 4096);
    if (span_us == 0) {
        gyre_buf_appends(&sql, "SELECT t.started_us, t.route, t.provider, t.model, t.agent, t.user_id, t.status,"
                               " t.prompt_tokens, t.completion_tokens, t.cached_tokens, t.reasoning_tokens,"
                               " t.cost_usd, t.latency_us, t.ttft_us"
                               " FROM traces t WHERE t.started_us >= ? AND t.started_us < ?");
    } else {
        gyre_buf_appends(&sql, "SELECT t.start_us, t.route, t.provider, t.model, t.agent, t.user_id, t.status_class,"
                               " t.prompt_tokens, t.completion_tokens, t.cached_tokens, t.reasoning_tokens,"
                               " t.cost_usd, t.requests, t.cost_n, t.ttft_n, t.lat_hist, t.ttft_hist"
                               " FROM trace_rollup t WHERE t.span_us = ? AND t.start_us >= ? AND t.start_us < ?");
        params[np++] = (query_param_t){NULL, span_us};
    }
    params[np++] = (query_param_t){NULL, from};
    params[np++] = (query_param_t){NULL, to};
    stats_filters(q, &sql, params, &np, span_us == 0);
    if (sqlite3_prepare_v2(s->db, sql.base, (int)sql.len, &st, NULL) != SQLITE_OK) {
        set_err(err, errlen, "store: preparing the stats query: %s", sqlite3_errmsg(s->db));
        r = -EIO;
        goto out;
    }
    for (size_t i = 0; i < np; i++) {
        if (params[i].s != NULL)
            sqlite3_bind_text(st, (int)i + 1, params[i].s, -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(st, (int)i + 1, params[i].i);
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        gyre_stats_part_t p = {.t_us = sqlite3_column_int64(st, 0)};
        col_tstr(st, 1, &p.route);
        col_tstr(st, 2, &p.provider);
        col_tstr(st, 3, &p.model);
        col_tstr(st, 4, &p.agent);
        col_tstr(st, 5, &p.user);
        p.prompt_tokens = col_known(st, 7);
        p.completion_tokens = col_known(st, 8);
        p.cached_tokens = col_known(st, 9);
        p.reasoning_tokens = col_known(st, 10);
        if (span_us == 0) {
            p.status_class = sqlite3_column_int(st, 6) / 100;
            p.requests = 1;
            p.cost_n = sqlite3_column_type(st, 11) != SQLITE_NULL;
            p.cost_usd = p.cost_n ? sqlite3_column_double(st, 11) : 0;
            p.latency_us = sqlite3_column_int64(st, 12);
            p.ttft_us = sqlite3_column_type(st, 13) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 13);
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
        }
        if ((r = gyre_stats_answer_add(a, &p, err, errlen)) != 0)
            goto out;
    }
    if (rc != SQLITE_DONE) {
        set_err(err, errlen, "store: running the stats query: %s", sqlite3_errmsg(s->db));
        r = -EIO;
    }
out:
    sqlite3_finalize(st);
    gyre_buf_dispose(&sql);
    return r;
}

/*
 * The range [from, to) splits into the partial minutes at its edges (read
 * from the traces), the whole minutes up to the first whole hour and after
 * the last one (minute rows), and the whole hours (hour rows).  Buckets
 * narrower than an hour, or not a whole number of hours, read minute rows
 * only, so that no row straddles two buckets.
 */
static int sqlite_stats(gyre_store_t *s, const gyre_stats_query_t *q, gyre_buf_t *out, char *err, size_t errlen)
{
    gyre_stats_range_t range;
    int r = gyre_stats_range_resolve(q, now_us(), &range, err, errlen);
    if (r != 0)
        return r;
    const int64_t M = GYRE_ROLLUP_MINUTE_US, H = GYRE_ROLLUP_HOUR_US;
    int64_t from = range.from_us, to = range.to_us;
    int64_t m0 = ceil_to(from, M), m1 = floor_to_span(to, M);
    gyre_stats_answer_t *a = gyre_stats_answer_create(&range, q->group_by);
    if (m0 >= m1) {
        r = stats_scan(s, q, a, 0, from, to, err, errlen);
    } else {
        int64_t h0 = ceil_to(m0, H), h1 = floor_to_span(m1, H);
        int hours = (range.bucket_us == 0 || range.bucket_us % H == 0) && h0 < h1;
        if (r == 0)
            r = stats_scan(s, q, a, 0, from, m0, err, errlen);
        if (r == 0 && hours) {
            r = stats_scan(s, q, a, M, m0, h0, err, errlen);
            if (r == 0)
                r = stats_scan(s, q, a, H, h0, h1, err, errlen);
            if (r == 0)
                r = stats_scan(s, q, a, M, h1, m1, err, errlen);
        } else if (r == 0) {
            r = stats_scan(s, q, a, M, m0, m1, err, errlen);
        }
        if (r == 0)
            r = stats_scan(s, q, a, 0, m1, to, err, errlen);
    }
    if (r == 0 && (r = gyre_stats_answer_json(a, out)) != 0)
        set_err(err, errlen, "store: the stats answer is larger than its buffer (%zu bytes)", out->max);
    gyre_stats_answer_destroy(a);
    return r;
}

/*
 * Retention (issue 12): the traces of a log segment being dropped leave the
 * index with everything that points at them.  The free-text index is
 * contentless, so a row leaves it through FTS5's 'delete' command given the
 * text it was indexed with, which the trace itself gives again (body_text,
 * as write_one computed it).  The rollup keeps its counts for the minutes
 * and hours that still hold a trace; rows of spans that end before the
 * oldest trace left are deleted, so /api/stats does not count traces that
 * are gone.
 */
static int sqlite_delete_traces(gyre_store_t *s, const gyre_trace_t *const *traces, size_t n, char *err, size_t errlen)
{
    sqlite3_stmt *sel = NULL, *del = NULL, *del_fts = NULL, *del_tag = NULL, *rollup = NULL;
    int r;
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
        sqlite3_prepare_v2(s->db,
                           "DELETE FROM trace_rollup WHERE start_us + span_us <="
                           " COALESCE((SELECT MIN(started_us) FROM traces), 9223372036854775807)",
                           -1, &rollup, NULL) != SQLITE_OK) {
        set_err(err, errlen, "store: preparing the retention delete: %s", sqlite3_errmsg(s->db));
        r = store_errno(s);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const gyre_trace_t *t = traces[i];
        sqlite3_bind_text(sel, 1, t->trace_id, -1, SQLITE_STATIC);
        int rc = sqlite3_step(sel);
        sqlite3_int64 rowid = rc == SQLITE_ROW ? sqlite3_column_int64(sel, 0) : 0;
        sqlite3_reset(sel);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            goto db_error;
        if (rc == SQLITE_DONE)
            continue; /* never indexed, or deleted before */
        if (t->request_body.len != 0 || t->response_body.len != 0) {
            gyre_buf_reset(&s->text);
            body_text(&t->request_body, &s->text);
            body_text(&t->response_body, &s->text);
            sqlite3_bind_int64(del_fts, 1, rowid);
            sqlite3_bind_text(del_fts, 2, s->text.base != NULL ? s->text.base : "", (int)s->text.len, SQLITE_STATIC);
            if (step_done(del_fts) != SQLITE_OK)
                goto db_error;
        }
        for (size_t k = 0; k < t->ntags && k < GYRE_TRACE_MAX_TAGS; k++) {
            bind_tstr(del_tag, 1, &t->tags[k]);
            sqlite3_bind_int64(del_tag, 2, t->started_us);
            sqlite3_bind_text(del_tag, 3, t->trace_id, -1, SQLITE_STATIC);
            if (step_done(del_tag) != SQLITE_OK)
                goto db_error;
        }
        sqlite3_bind_int64(del, 1, rowid);
        if (step_done(del) != SQLITE_OK)
            goto db_error;
    }
    if (step_done(rollup) != SQLITE_OK)
        goto db_error;
    r = exec_sql(s, "COMMIT", err, errlen);
    goto out;
db_error:
    set_err(err, errlen, "store: deleting traces for retention: %s", sqlite3_errmsg(s->db));
    r = store_errno(s);
out:
    if (r != 0)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_finalize(sel);
    sqlite3_finalize(del);
    sqlite3_finalize(del_fts);
    sqlite3_finalize(del_tag);
    sqlite3_finalize(rollup);
    return r;
}

/* Gives the free pages back to the file system: an incremental vacuum (the database is created with
 * auto_vacuum=INCREMENTAL), then a checkpoint that truncates the WAL, so the files really shrink. */
static int sqlite_reclaim(gyre_store_t *s, char *err, size_t errlen)
{
    int r;
    if ((r = exec_sql(s, "PRAGMA incremental_vacuum", err, errlen)) != 0)
        return r;
    return exec_sql(s, "PRAGMA wal_checkpoint(TRUNCATE)", err, errlen);
}

/* SQLite's quick_check: 0 when it says "ok", -EBADMSG with its first complaint otherwise. */
static int sqlite_check(gyre_store_t *s, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int r = 0;
    if (sqlite3_prepare_v2(s->db, "PRAGMA quick_check(1)", -1, &st, NULL) != SQLITE_OK) {
        set_err(err, errlen, "store: quick_check: %s", sqlite3_errmsg(s->db));
        return store_errno(s) == -EBADMSG ? -EBADMSG : -EIO;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        if (v == NULL || strcmp(v, "ok") != 0) {
            set_err(err, errlen, "store: the database is corrupt: %.200s", v != NULL ? v : "?");
            r = -EBADMSG;
        }
    } else {
        set_err(err, errlen, "store: quick_check: %s", sqlite3_errmsg(s->db));
        r = store_errno(s) == -EBADMSG ? -EBADMSG : -EIO;
        if ((sqlite3_errcode(s->db) & 0xff) == SQLITE_CORRUPT)
            r = -EBADMSG;
    }
    sqlite3_finalize(st);
    return r;
}

static int64_t sqlite_count(gyre_store_t *s)
{
    int64_t n = -1;
    if (sqlite3_step(s->sel_count) == SQLITE_ROW)
        n = sqlite3_column_int64(s->sel_count, 0);
    sqlite3_reset(s->sel_count);
    return n;
}

static int sqlite_schema_version(gyre_store_t *s)
{
    return s->version;
}

/* ---- Open and close. ---- */

/* Runs the migrations the database lacks, all in one transaction, so two processes opening at once cannot both apply one. */
static int migrate(gyre_store_t *s, char *err, size_t errlen)
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
        set_err(err, errlen, "store: reading the schema version: %s", sqlite3_errmsg(s->db));
        r = -EIO;
        goto out;
    }
    version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (version > STORE_SCHEMA_VERSION) {
        set_err(err, errlen, "store: the database is at schema version %d, newer than this gyre's %d", version,
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

static void sqlite_close(gyre_store_t *s)
{
    if (s == NULL)
        return;
    sqlite3_stmt **stmts[] = {&s->ins_trace, &s->ins_tag,     &s->ins_text, &s->ups_rollup,
                              &s->sel_trace, &s->sel_session, &s->sel_count};
    for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++)
        sqlite3_finalize(*stmts[i]);
    sqlite3_close(s->db);
    gyre_zstd_destroy(s->zstd);
    gyre_buf_dispose(&s->zreq);
    gyre_buf_dispose(&s->zresp);
    gyre_buf_dispose(&s->text);
    gyre_buf_dispose(&s->body);
    gyre_buf_dispose(&s->merge);
    gyre_buf_dispose(&s->tags_json);
    gyre_buf_dispose(&s->meta_json);
    gyre_buf_dispose(&s->attempts_json);
    free(s->rin);
    free(s);
}

static int sqlite_open(const char *dsn, gyre_store_t **out, char *err, size_t errlen)
{
    gyre_store_t *s = gyre_calloc(1, sizeof(*s));
    int r = 0;
    struct {
        sqlite3_stmt **st;
        const char *sql;
    } stmts[] = {
        {&s->ins_trace, "INSERT INTO traces (trace_id, span_id, parent_span_id, request_id, started_us, ended_us, latency_us,"
                        " ttft_us, endpoint, route, provider, model, status, stream, cache_hit, finish_reason,"
                        " prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost_usd, session, agent,"
                        " user_id, request_body, response_body, otel_trace_id, tags_json, meta_json, attempts_json)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"},
        {&s->ups_rollup, ROLLUP_UPSERT},
        /* Tags are a set: a repeat is not an error that should cost the whole batch. */
        {&s->ins_tag, "INSERT OR IGNORE INTO trace_tag (tag, started_us, trace_id, trace_rowid) VALUES (?, ?, ?, ?)"},
        {&s->ins_text, "INSERT INTO trace_fts (rowid, text) VALUES (?, ?)"},
        {&s->sel_trace, "SELECT " TRACE_COLS_FULL " FROM traces t WHERE t.trace_id = ?"},
        {&s->sel_session, "SELECT " TRACE_COLS_FULL " FROM traces t WHERE t.session = ?1 AND t.session <> ''"
                          " ORDER BY t.started_us, t.trace_id LIMIT ?2"},
        {&s->sel_count, "SELECT COUNT(*) FROM traces"},
    };

    *out = NULL;
    s->zstd = gyre_zstd_create(STORE_ZSTD_LEVEL);
    gyre_buf_init(&s->zreq, (size_t)INT32_MAX);
    gyre_buf_init(&s->zresp, (size_t)INT32_MAX);
    gyre_buf_init(&s->text, 1u << 20); /* what of a body is searchable: its first MiB of text */
    gyre_buf_init(&s->body, STORE_BODY_MAX);
    gyre_buf_init(&s->merge, (size_t)GYRE_HIST_BUCKETS * 20);
    /* Bounded by what a trace can hold (16 tags, 16 meta, 16 attempts); past it the JSON would be cut, so the
     * bound is generous. */
    gyre_buf_init(&s->tags_json, (size_t)64 << 20);
    gyre_buf_init(&s->meta_json, (size_t)64 << 20);
    gyre_buf_init(&s->attempts_json, (size_t)64 << 20);

    if (sqlite3_open_v2(dsn, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        set_err(err, errlen, "store: opening %s: %s", dsn, s->db != NULL ? sqlite3_errmsg(s->db) : "out of memory");
        r = -EIO;
        goto fail;
    }
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
    if (sqlite3_create_function(s->db, "gyre_hist_merge", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, s, hist_merge_fn, NULL,
                                NULL) != SQLITE_OK) {
        set_err(err, errlen, "store: registering gyre_hist_merge: %s", sqlite3_errmsg(s->db));
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
            set_err(err, errlen, "store: preparing \"%.60s\": %s", stmts[i].sql, sqlite3_errmsg(s->db));
            r = -EIO;
            goto fail;
        }
    }
    *out = s;
    return 0;
fail:
    sqlite_close(s);
    return r;
}

const gyre_store_ops_t gyre_store_sqlite = {
    .name = "sqlite",
    .open = sqlite_open,
    .close = sqlite_close,
    .schema_version = sqlite_schema_version,
    .write_batch = sqlite_write_batch,
    .get_trace = sqlite_get_trace,
    .query_traces = sqlite_query_traces,
    .get_session = sqlite_get_session,
    .stats = sqlite_stats,
    .count = sqlite_count,
    .delete_traces = sqlite_delete_traces,
    .reclaim = sqlite_reclaim,
    .check = sqlite_check,
};
