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
 * what lets both databases use a partial index).  Free text goes to an
 * FTS5 table, trace_text, fed the text of the prompt and the answer (the
 * PostgreSQL backend will use a tsvector column with a GIN index).
 *
 * JSON shapes (the query API returns these as they are):
 *
 *   trace (get_trace, and each of get_session's "traces"):
 *     {"trace_id":"<32 hex>","span_id":"<16 hex>","parent_span_id":"",
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
#include "common/zstd.h"
#include "store/store.h"

/* The largest body a read expands (a stored frame that claims more is reported as an error, not allocated). */
#define STORE_BODY_MAX (64u << 20)
/* The most calls get_session returns: an agent's trajectory, bounded so one session cannot pin a handler. */
#define STORE_SESSION_MAX 1000
#define STORE_LIMIT_DEFAULT 50
#define STORE_LIMIT_MAX 1000
#define STORE_BUSY_TIMEOUT_MS 5000

typedef struct store_migration {
    int version;
    const char *sql;
} store_migration_t;

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
        " PRIMARY KEY (trace_id, key));"},
    /* SQLite only: the PostgreSQL backend's version 2 adds a tsvector column and a GIN index instead. */
    {2, "CREATE VIRTUAL TABLE trace_text USING fts5(trace_id UNINDEXED, text);"},
};
#define STORE_SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

struct gyre_store {
    sqlite3 *db;
    int version;
    sqlite3_stmt *ins_trace, *ins_attempt, *ins_tag, *ins_meta, *ins_text;
    sqlite3_stmt *sel_trace, *sel_attempts, *sel_tags, *sel_meta, *sel_session, *sel_count;
    gyre_zstd_t *zstd;
    /* Scratch reused by every write and read, so a batch allocates nothing per trace once warm. */
    gyre_buf_t zreq, zresp, text, body;
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

/* Whether buf[0..len) is one JSON value (cJSON's idea of one, whitespace around it allowed). */
static int is_json(const char *p, size_t len)
{
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(p, len, &end, 0);
    if (v == NULL)
        return 0;
    cJSON_Delete(v);
    while (end < p + len && (unsigned char)*end <= 0x20)
        end++;
    return end == p + len;
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
                i == 24 ? "request_body" : "response_body", r == -E2BIG ? "larger than 64 MiB" : "corrupt zstd");
        return -EIO;
    }
    if (is_json(s->body.base, s->body.len))
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
    "t.user_id"
#define TRACE_COLS_FULL TRACE_COLS_HEAD ", t.request_body, t.response_body"
#define TRACE_COLS_SUMMARY TRACE_COLS_HEAD ", NULL, NULL"

static int bind_id(sqlite3_stmt *st, const char *id, int n)
{
    sqlite3_reset(st);
    return sqlite3_bind_text(st, 1, id, n, SQLITE_STATIC);
}

/* One row of TRACE_COLS_* as a trace object (bodies included when `bodies`), appended to w. */
static int row_to_json(gyre_store_t *s, sqlite3_stmt *st, int bodies, json_writer_t *w, char *err, size_t errlen)
{
    const char *id = (const char *)sqlite3_column_text(st, 0);
    int idlen = sqlite3_column_bytes(st, 0);
    int rc, r = 0;

    jw_lit(w, "{\"trace_id\":");
    jw_col_str(w, st, 0);
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

    jw_lit(w, ",\"tags\":[");
    bind_id(s->sel_tags, id, idlen);
    for (int n = 0; (rc = sqlite3_step(s->sel_tags)) == SQLITE_ROW; n++) {
        if (n)
            jw_lit(w, ",");
        jw_col_str(w, s->sel_tags, 0);
    }
    sqlite3_reset(s->sel_tags);
    if (rc != SQLITE_DONE)
        goto db_error;

    jw_lit(w, "],\"meta\":{");
    bind_id(s->sel_meta, id, idlen);
    for (int n = 0; (rc = sqlite3_step(s->sel_meta)) == SQLITE_ROW; n++) {
        if (n)
            jw_lit(w, ",");
        jw_col_str(w, s->sel_meta, 0);
        jw_lit(w, ":");
        jw_col_str(w, s->sel_meta, 1);
    }
    sqlite3_reset(s->sel_meta);
    if (rc != SQLITE_DONE)
        goto db_error;

    jw_lit(w, "},\"attempts\":[");
    sqlite3_stmt *a = s->sel_attempts;
    bind_id(a, id, idlen);
    for (int n = 0; (rc = sqlite3_step(a)) == SQLITE_ROW; n++) {
        jw_lit(w, n ? ",{\"provider\":" : "{\"provider\":");
        jw_col_str(w, a, 0);
        jw_lit(w, ",\"model\":");
        jw_col_str(w, a, 1);
        jw_lit(w, ",\"key_id\":");
        jw_col_str(w, a, 2);
        jw_lit(w, ",\"status\":");
        jw_int(w, sqlite3_column_int64(a, 3));
        jw_lit(w, ",\"started_us\":");
        jw_int(w, sqlite3_column_int64(a, 4));
        jw_lit(w, ",\"latency_us\":");
        jw_int(w, sqlite3_column_int64(a, 5));
        jw_lit(w, ",\"error\":");
        jw_col_str(w, a, 6);
        jw_lit(w, "}");
    }
    sqlite3_reset(a);
    if (rc != SQLITE_DONE)
        goto db_error;
    jw_lit(w, "]");

    if (bodies) {
        jw_lit(w, ",\"request_body\":");
        if ((r = jw_col_body(w, s, st, 24, err, errlen)) != 0)
            return r;
        jw_lit(w, ",\"response_body\":");
        if ((r = jw_col_body(w, s, st, 25, err, errlen)) != 0)
            return r;
    }
    jw_lit(w, "}");
    return 0;

db_error:
    set_err(err, errlen, "store: reading trace %.*s: %s", idlen, id, sqlite3_errmsg(s->db));
    return -EIO;
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
    if ((r = bind_body(s, st, 25, &t->request_body, &s->zreq)) != 0 ||
        (r = bind_body(s, st, 26, &t->response_body, &s->zresp)) != 0) {
        sqlite3_reset(st);
        set_err(err, errlen, "store: trace %s: a body does not compress into its bound", t->trace_id);
        return r;
    }
    if ((rc = step_done(st)) != SQLITE_OK)
        goto db_error;

    what = "attempts";
    for (size_t i = 0; i < nattempts; i++) {
        const gyre_trace_attempt_t *a = &t->attempts[i];
        sqlite3_stmt *ia = s->ins_attempt;
        sqlite3_bind_text(ia, 1, t->trace_id, -1, SQLITE_STATIC);
        sqlite3_bind_int(ia, 2, (int)i);
        bind_tstr(ia, 3, &a->provider);
        bind_tstr(ia, 4, &a->model);
        bind_tstr(ia, 5, &a->key_id);
        sqlite3_bind_int(ia, 6, a->status);
        sqlite3_bind_int64(ia, 7, a->started_us);
        sqlite3_bind_int64(ia, 8, a->latency_us);
        bind_tstr(ia, 9, &a->error);
        if ((rc = step_done(ia)) != SQLITE_OK)
            goto db_error;
    }
    what = "trace_tags";
    for (size_t i = 0; i < ntags; i++) {
        sqlite3_bind_text(s->ins_tag, 1, t->trace_id, -1, SQLITE_STATIC);
        bind_tstr(s->ins_tag, 2, &t->tags[i]);
        if ((rc = step_done(s->ins_tag)) != SQLITE_OK)
            goto db_error;
    }
    what = "trace_meta";
    for (size_t i = 0; i < nmeta; i++) {
        sqlite3_bind_text(s->ins_meta, 1, t->trace_id, -1, SQLITE_STATIC);
        bind_tstr(s->ins_meta, 2, &t->meta[i].key);
        bind_tstr(s->ins_meta, 3, &t->meta[i].value);
        if ((rc = step_done(s->ins_meta)) != SQLITE_OK)
            goto db_error;
    }
    what = "trace_text";
    if (t->request_body.len != 0 || t->response_body.len != 0) {
        gyre_buf_reset(&s->text);
        body_text(&t->request_body, &s->text);
        body_text(&t->response_body, &s->text);
        sqlite3_bind_text(s->ins_text, 1, t->trace_id, -1, SQLITE_STATIC);
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
    return -EIO;
}

static int exec_sql(gyre_store_t *s, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        set_err(err, errlen, "store: %s: %s", sql, msg != NULL ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return -EIO;
    }
    return 0;
}

static int sqlite_write_batch(gyre_store_t *s, const gyre_trace_t *const *traces, size_t n, char *err, size_t errlen)
{
    int r;
    if (n == 0)
        return 0;
    if ((r = exec_sql(s, "BEGIN IMMEDIATE", err, errlen)) != 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        if ((r = write_one(s, traces[i], err, errlen)) < 0) {
            /* All or none: the writer retries or drops the batch as a whole, and says how many it lost. */
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return r;
        }
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

/* An FTS5 query that matches the words of `text` as one phrase: the text is quoted, its quotes doubled. */
static void fts_phrase(const char *text, gyre_buf_t *out)
{
    gyre_buf_append(out, "\"", 1);
    for (const char *p = text; *p; p++) {
        if (*p == '"')
            gyre_buf_append(out, "\"", 1);
        gyre_buf_append(out, p, 1);
    }
    gyre_buf_append(out, "\"", 1);
}

static int sqlite_query_traces(gyre_store_t *s, const gyre_trace_query_t *q, gyre_buf_t *out, char *err, size_t errlen)
{
    query_param_t params[QUERY_MAX_PARAMS];
    size_t np = 0;
    size_t limit = q->limit == 0 ? STORE_LIMIT_DEFAULT : q->limit;
    int64_t cur_us = 0;
    const char *cur_id = NULL;
    gyre_buf_t sql, phrase;
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

    /* Generous bounds: the SQL is a fixed text plus one clause per filter; the phrase is the client's text. */
    gyre_buf_init(&sql, 4096);
    gyre_buf_init(&phrase, 2 * 4096 + 2);
    gyre_buf_appends(&sql, "SELECT " TRACE_COLS_SUMMARY " FROM traces t WHERE 1 = 1");
    if (q->from_us != 0) {
        gyre_buf_appends(&sql, " AND t.started_us >= ?");
        params[np++] = (query_param_t){NULL, q->from_us};
    }
    if (q->to_us != 0) {
        gyre_buf_appends(&sql, " AND t.started_us < ?");
        params[np++] = (query_param_t){NULL, q->to_us};
    }
    filter_eq(&sql, params, &np, "route", 1, q->route);
    filter_eq(&sql, params, &np, "provider", 0, q->provider);
    filter_eq(&sql, params, &np, "model", 0, q->model);
    filter_eq(&sql, params, &np, "agent", 1, q->agent);
    filter_eq(&sql, params, &np, "session", 1, q->session);
    filter_eq(&sql, params, &np, "user_id", 1, q->user);
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
    if (q->tag != NULL && q->tag[0] != '\0') {
        gyre_buf_appends(&sql, " AND t.trace_id IN (SELECT trace_id FROM trace_tags WHERE tag = ?)");
        params[np++] = (query_param_t){q->tag, 0};
    }
    if (q->text != NULL && q->text[0] != '\0') {
        if (strlen(q->text) > 4096) {
            set_err(err, errlen, "text: longer than 4096 bytes");
            r = -EINVAL;
            goto out;
        }
        fts_phrase(q->text, &phrase);
        gyre_buf_appends(&sql, " AND t.trace_id IN (SELECT trace_id FROM trace_text WHERE trace_text MATCH ?)");
        params[np++] = (query_param_t){phrase.base, 0};
    }
    if (cur_id != NULL) {
        gyre_buf_appends(&sql, " AND (t.started_us, t.trace_id) < (?, ?)");
        params[np++] = (query_param_t){NULL, cur_us};
        params[np++] = (query_param_t){cur_id, 0};
    }
    /* One row more than the page says whether there is a next one. */
    gyre_buf_appends(&sql, " ORDER BY t.started_us DESC, t.trace_id DESC LIMIT ?");
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
    gyre_buf_dispose(&phrase);
    return json_done(&w, start, r, err, errlen);
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
    sqlite3_stmt **stmts[] = {&s->ins_trace, &s->ins_attempt, &s->ins_tag,      &s->ins_meta,    &s->ins_text,  &s->sel_trace,
                              &s->sel_attempts, &s->sel_tags, &s->sel_meta, &s->sel_session, &s->sel_count};
    for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++)
        sqlite3_finalize(*stmts[i]);
    sqlite3_close(s->db);
    gyre_zstd_destroy(s->zstd);
    gyre_buf_dispose(&s->zreq);
    gyre_buf_dispose(&s->zresp);
    gyre_buf_dispose(&s->text);
    gyre_buf_dispose(&s->body);
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
                        " user_id, request_body, response_body)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"},
        {&s->ins_attempt, "INSERT INTO attempts (trace_id, n, provider, model, key_id, status, started_us, latency_us, error)"
                          " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"},
        /* Tags are a set and meta a map: a repeat is not an error that should cost the whole batch. */
        {&s->ins_tag, "INSERT OR IGNORE INTO trace_tags (trace_id, tag) VALUES (?, ?)"},
        {&s->ins_meta, "INSERT OR REPLACE INTO trace_meta (trace_id, key, value) VALUES (?, ?, ?)"},
        {&s->ins_text, "INSERT INTO trace_text (trace_id, text) VALUES (?, ?)"},
        {&s->sel_trace, "SELECT " TRACE_COLS_FULL " FROM traces t WHERE t.trace_id = ?"},
        {&s->sel_attempts, "SELECT provider, model, key_id, status, started_us, latency_us, error FROM attempts"
                           " WHERE trace_id = ? ORDER BY n"},
        {&s->sel_tags, "SELECT tag FROM trace_tags WHERE trace_id = ? ORDER BY tag"},
        {&s->sel_meta, "SELECT key, value FROM trace_meta WHERE trace_id = ? ORDER BY key"},
        {&s->sel_session, "SELECT " TRACE_COLS_FULL " FROM traces t WHERE t.session = ?1 AND t.session <> ''"
                          " ORDER BY t.started_us, t.trace_id LIMIT ?2"},
        {&s->sel_count, "SELECT COUNT(*) FROM traces"},
    };

    *out = NULL;
    s->zstd = gyre_zstd_create(GYRE_ZSTD_LEVEL_DEFAULT);
    gyre_buf_init(&s->zreq, (size_t)INT32_MAX);
    gyre_buf_init(&s->zresp, (size_t)INT32_MAX);
    gyre_buf_init(&s->text, 1u << 20); /* what of a body is searchable: its first MiB of text */
    gyre_buf_init(&s->body, STORE_BODY_MAX);

    if (sqlite3_open_v2(dsn, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        set_err(err, errlen, "store: opening %s: %s", dsn, s->db != NULL ? sqlite3_errmsg(s->db) : "out of memory");
        r = -EIO;
        goto fail;
    }
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
    if ((r = exec_sql(s, "PRAGMA journal_mode = WAL", err, errlen)) != 0 ||
        (r = exec_sql(s, "PRAGMA synchronous = NORMAL", err, errlen)) != 0 ||
        (r = exec_sql(s, "PRAGMA temp_store = MEMORY", err, errlen)) != 0)
        goto fail;
    if ((r = migrate(s, err, errlen)) != 0)
        goto fail;
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
    .count = sqlite_count,
};
