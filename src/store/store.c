/*
 * The store above its backends (store.h): the DSN picks the table, and the
 * answers the API returns are assembled here from the backend's rows, so a
 * backend only reads and writes its database.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/backend.h"
#include "store/rollup.h"

/* zstd's default level 3: on bodies of a few KB it measured as fast as level 1 here (about 5-7 us per 2 KB
 * frame either way) and compresses them a little better, so the faster levels buy nothing. */
#define STORE_ZSTD_LEVEL GYRE_ZSTD_LEVEL_DEFAULT

void gyre_store_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void gyre_store_init(gyre_store_t *s, const gyre_store_ops_t *ops)
{
    s->ops = ops;
    s->zstd = gyre_zstd_create(STORE_ZSTD_LEVEL);
    gyre_buf_init(&s->body, GYRE_STORE_BODY_MAX);
    gyre_buf_init(&s->logreq, GYRE_STORE_BODY_MAX);
    gyre_buf_init(&s->logresp, GYRE_STORE_BODY_MAX);
}

void gyre_store_dispose(gyre_store_t *s)
{
    gyre_zstd_destroy(s->zstd);
    gyre_buf_dispose(&s->body);
    gyre_buf_dispose(&s->logreq);
    gyre_buf_dispose(&s->logresp);
}

/* ---- The DSN. ---- */

/*
 * The backend a DSN names and the rest of it (the backend's target):
 * "sqlite:PATH" and a plain PATH are SQLite's; "NAME://..." names a
 * backend by its scheme.  NULL with err filled when none is built in.  Only
 * the scheme of a URL is echoed: the rest may hold a password.
 */
static const gyre_store_ops_t *backend_of(const char *dsn, const char **target, int *r, char *err, size_t errlen)
{
    static const gyre_store_ops_t *const backends[] = {&gyre_store_sqlite};
    size_t n = strspn(dsn, "abcdefghijklmnopqrstuvwxyz0123456789+.-");
    *r = 0;
    if (dsn[0] == '\0') {
        gyre_store_set_err(err, errlen, "the DSN is empty (expected sqlite:PATH or a file path)");
        *r = -EINVAL;
        return NULL;
    }
    if (strncmp(dsn, "sqlite:", 7) == 0) {
        *target = dsn + 7;
        if (**target == '\0') {
            gyre_store_set_err(err, errlen, "sqlite: needs a path (sqlite:PATH, or sqlite::memory:)");
            *r = -EINVAL;
            return NULL;
        }
        return &gyre_store_sqlite;
    }
    if (n > 0 && strncmp(dsn + n, "://", 3) == 0) {
        for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
            if (strlen(backends[i]->name) == n && strncmp(dsn, backends[i]->name, n) == 0) {
                *target = dsn + n + 3;
                return backends[i];
            }
        }
        if ((n == 8 && strncmp(dsn, "postgres", 8) == 0) || (n == 10 && strncmp(dsn, "postgresql", 10) == 0)) {
            gyre_store_set_err(err, errlen,
                               "%.*s:// (PostgreSQL) is not built in this version; this gyre stores traces "
                               "in SQLite (sqlite:PATH, or a file path)",
                               (int)n, dsn);
            *r = -ENOTSUP;
        } else {
            gyre_store_set_err(err, errlen, "unknown scheme '%.*s' (this gyre has: sqlite:PATH, or a file path)",
                               (int)(n < 32 ? n : 32), dsn);
            *r = -EINVAL;
        }
        return NULL;
    }
    *target = dsn; /* a plain path */
    return &gyre_store_sqlite;
}

const gyre_store_ops_t *gyre_store_backend(const char *dsn, const char **target, char *err, size_t errlen)
{
    int r;
    return backend_of(dsn, target, &r, err, errlen);
}

int gyre_store_open(const char *dsn, unsigned flags, gyre_store_t **out, char *err, size_t errlen)
{
    const char *target = NULL;
    int r;
    *out = NULL;
    const gyre_store_ops_t *ops = backend_of(dsn, &target, &r, err, errlen);
    if (ops == NULL)
        return r;
    /* The writer's handle: what would stop it writing is said now, with the OS's reason, not at the first
     * batch. */
    if ((flags & GYRE_STORE_OPEN_WRITE) && (r = ops->probe(target, err, errlen)) != 0)
        return r;
    return ops->open(target, out, err, errlen);
}

int gyre_store_probe(const char *dsn, char *err, size_t errlen)
{
    const char *target = NULL;
    int r;
    const gyre_store_ops_t *ops = backend_of(dsn, &target, &r, err, errlen);
    if (ops == NULL)
        return r;
    return ops->probe(target, err, errlen);
}

void gyre_store_close(gyre_store_t *s)
{
    if (s != NULL)
        s->ops->close(s);
}

const gyre_store_ops_t *gyre_store_ops(const gyre_store_t *s)
{
    return s->ops;
}

void gyre_store_set_body_reader(gyre_store_t *s, gyre_store_body_read_cb cb, void *ctx)
{
    s->body_reader = cb;
    s->body_reader_ctx = ctx;
}

/* ---- Writes and the index's bookkeeping: the table's, as they are. ---- */

int gyre_store_schema_version(gyre_store_t *s)
{
    return s->ops->schema_version(s);
}

int gyre_store_write_batch(gyre_store_t *s, const gyre_trace_t *const *traces, size_t n, char *err, size_t errlen)
{
    return s->ops->write_batch(s, traces, n, err, errlen);
}

int gyre_store_insert_batch(gyre_store_t *s, const gyre_store_item_t *items, size_t n, const gyre_store_mark_t *mark,
                            char *err, size_t errlen)
{
    return s->ops->insert_batch(s, items, n, mark, err, errlen);
}

int gyre_store_get_mark(gyre_store_t *s, gyre_store_mark_t *out, char *err, size_t errlen)
{
    return s->ops->get_mark(s, out, err, errlen);
}

int gyre_store_drop_segments(gyre_store_t *s, uint64_t below, char *err, size_t errlen)
{
    return s->ops->drop_segments(s, below, err, errlen);
}

int gyre_store_reset(gyre_store_t *s, char *err, size_t errlen)
{
    return s->ops->reset(s, err, errlen);
}

int gyre_store_info(gyre_store_t *s, gyre_store_info_t *out, char *err, size_t errlen)
{
    return s->ops->info(s, out, err, errlen);
}

int64_t gyre_store_count(gyre_store_t *s)
{
    return s->ops->count(s);
}

int gyre_store_delete_traces(gyre_store_t *s, const gyre_trace_t *const *traces, size_t n, char *err, size_t errlen)
{
    return s->ops->delete_traces(s, traces, n, err, errlen);
}

int gyre_store_reclaim(gyre_store_t *s, char *err, size_t errlen)
{
    return s->ops->reclaim(s, err, errlen);
}

int gyre_store_check(gyre_store_t *s, char *err, size_t errlen)
{
    return s->ops->check(s, err, errlen);
}

/* ---- Reads: rows into the API's JSON. ---- */

/* What the row callbacks below render into. */
typedef struct render_ctx {
    gyre_store_t *s;
    gyre_buf_t *out;
    int bodies;
    size_t n, limit;   /* rows rendered, and the most a page takes (the row after them says there is more) */
    int more;          /* a row past the limit came */
    char cursor[64];   /* the last rendered row's */
    char *err;
    size_t errlen;
} render_ctx_t;

static int render_cb(void *arg, const gyre_store_row_t *row)
{
    render_ctx_t *c = arg;
    if (c->limit != 0 && c->n == c->limit) {
        c->more = 1;
        return 1;
    }
    if (c->n++ && gyre_buf_append(c->out, ",", 1) != 0)
        goto too_big;
    int r = gyre_store_render_row(c->s, row, c->bodies, c->out, c->err, c->errlen);
    if (r != 0)
        return r;
    if (c->limit != 0)
        gyre_store_cursor_format(row, c->cursor, sizeof(c->cursor));
    return 0;
too_big:
    gyre_store_set_err(c->err, c->errlen, "store: the answer is larger than its buffer (%zu bytes)", c->out->max);
    return -E2BIG;
}

/* Leaves `out` as it was when r != 0; the buffer's bound reached while appending is -E2BIG. */
static int done(gyre_buf_t *out, size_t start, int r, int append_r, char *err, size_t errlen)
{
    if (r == 0 && append_r != 0) {
        r = -E2BIG;
        gyre_store_set_err(err, errlen, "store: the answer is larger than its buffer (%zu bytes)", out->max);
    }
    if (r != 0) {
        out->len = start;
        if (out->base != NULL)
            out->base[start] = '\0';
    }
    return r;
}

int gyre_store_get_trace(gyre_store_t *s, const char *trace_id, gyre_buf_t *out, char *err, size_t errlen)
{
    render_ctx_t c = {s, out, 1, 0, 0, 0, "", err, errlen};
    size_t start = out->len;
    int r = s->ops->find_trace(s, trace_id, render_cb, &c, err, errlen);
    if (r == 0 && c.n == 0) {
        gyre_store_set_err(err, errlen, "trace %s: not found", trace_id);
        return -ENOENT;
    }
    /* The loop's members go before the trace object's closing brace. */
    if (r == 0 && out->len > start && out->base[out->len - 1] == '}') {
        out->len--;
        r = gyre_store_render_loop(s, trace_id, out, err, errlen);
        if (r == 0 && gyre_buf_append(out, "}", 1) != 0) {
            gyre_store_set_err(err, errlen, "store: the answer is larger than its buffer (%zu bytes)", out->max);
            r = -E2BIG;
        }
    }
    return done(out, start, r, 0, err, errlen);
}

int gyre_store_query_traces(gyre_store_t *s, const gyre_trace_query_t *q, gyre_buf_t *out, char *err, size_t errlen)
{
    size_t limit = q->limit == 0 ? GYRE_STORE_LIMIT_DEFAULT : q->limit;
    gyre_store_cursor_t after;
    int have_cursor = q->cursor != NULL && q->cursor[0] != '\0';
    int r;
    if (limit > GYRE_STORE_LIMIT_MAX) {
        gyre_store_set_err(err, errlen, "limit: %zu is more than %d", limit, GYRE_STORE_LIMIT_MAX);
        return -EINVAL;
    }
    if (have_cursor && (r = gyre_store_cursor_parse(q->cursor, &after, err, errlen)) != 0)
        return r;
    if (q->text != NULL && strlen(q->text) > GYRE_STORE_TEXT_MAX) {
        gyre_store_set_err(err, errlen, "text: longer than %d bytes", GYRE_STORE_TEXT_MAX);
        return -EINVAL;
    }
    size_t start = out->len;
    render_ctx_t c = {s, out, 0, 0, limit, 0, "", err, errlen};
    int ar = gyre_buf_appends(out, "{\"data\":[");
    /* One row more than the page says whether there is a next one. */
    r = s->ops->scan_traces(s, q, have_cursor ? &after : NULL, limit + 1, render_cb, &c, err, errlen);
    if (r == 1)
        r = 0; /* the callback stopped the scan at the row past the page */
    if (r == 0 && ar == 0)
        ar = gyre_buf_appends(out, "],\"next_cursor\":");
    if (r == 0 && ar == 0)
        ar = c.more ? gyre_buf_append_json_string(out, c.cursor, strlen(c.cursor)) : gyre_buf_appends(out, "null");
    if (r == 0 && ar == 0)
        ar = gyre_buf_appends(out, "}");
    return done(out, start, r, ar, err, errlen);
}

int gyre_store_get_session(gyre_store_t *s, const char *session, gyre_buf_t *out, char *err, size_t errlen)
{
    if (session == NULL || session[0] == '\0') {
        gyre_store_set_err(err, errlen, "session: empty id");
        return -ENOENT;
    }
    size_t start = out->len;
    render_ctx_t c = {s, out, 1, 0, 0, 0, "", err, errlen};
    int ar = gyre_buf_appends(out, "{\"session\":");
    if (ar == 0)
        ar = gyre_buf_append_json_string(out, session, strlen(session));
    if (ar == 0)
        ar = gyre_buf_appends(out, ",\"traces\":[");
    int r = ar == 0 ? s->ops->scan_session(s, session, GYRE_STORE_SESSION_MAX, render_cb, &c, err, errlen) : 0;
    if (r == 0 && ar == 0)
        ar = gyre_buf_appends(out, "]}");
    if (r == 0 && ar == 0 && c.n == 0) {
        gyre_store_set_err(err, errlen, "session %s: not found", session);
        r = -ENOENT;
    }
    return done(out, start, r, ar, err, errlen);
}

/* ---- Stats: the range's pieces, each read by the backend. ---- */

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
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

static int scan(gyre_store_t *s, const gyre_stats_query_t *q, gyre_stats_answer_t *a, int64_t span, int64_t from,
                int64_t to, char *err, size_t errlen)
{
    return from < to ? s->ops->stats_scan(s, q, span, from, to, a, err, errlen) : 0;
}

/*
 * The range [from, to) splits into the partial minutes at its edges (read
 * from the traces), the whole minutes up to the first whole hour and after
 * the last one (minute rows), and the whole hours (hour rows).  Buckets
 * narrower than an hour, or not a whole number of hours, read minute rows
 * only, so that no row straddles two buckets.
 */
int gyre_store_stats(gyre_store_t *s, const gyre_stats_query_t *q, gyre_buf_t *out, char *err, size_t errlen)
{
    gyre_stats_range_t range;
    int r = gyre_stats_range_resolve(q, now_us(), &range, err, errlen);
    if (r != 0)
        return r;
    const int64_t M = GYRE_ROLLUP_MINUTE_US, H = GYRE_ROLLUP_HOUR_US;
    int64_t from = range.from_us, to = range.to_us;
    int64_t m0 = ceil_to(from, M), m1 = floor_to_span(to, M);
    gyre_stats_answer_t *a = gyre_stats_answer_create(&range, q->group_by);
    /* The rollup keeps no gateway key or team: a query by them reads the traces, exactly, one by one. */
    int by_key = (q->group_by & (GYRE_STATS_BY_KEY | GYRE_STATS_BY_TEAM)) != 0 || (q->key_id && q->key_id[0]) ||
                 (q->team && q->team[0]);
    if (m0 >= m1 || by_key) {
        r = scan(s, q, a, 0, from, to, err, errlen);
    } else {
        int64_t h0 = ceil_to(m0, H), h1 = floor_to_span(m1, H);
        int hours = (range.bucket_us == 0 || range.bucket_us % H == 0) && h0 < h1;
        r = scan(s, q, a, 0, from, m0, err, errlen);
        if (r == 0 && hours) {
            r = scan(s, q, a, M, m0, h0, err, errlen);
            if (r == 0)
                r = scan(s, q, a, H, h0, h1, err, errlen);
            if (r == 0)
                r = scan(s, q, a, M, h1, m1, err, errlen);
        } else if (r == 0) {
            r = scan(s, q, a, M, m0, m1, err, errlen);
        }
        if (r == 0)
            r = scan(s, q, a, 0, m1, to, err, errlen);
    }
    if (r == 0 && (r = gyre_stats_answer_json(a, out)) != 0)
        gyre_store_set_err(err, errlen, "store: the stats answer is larger than its buffer (%zu bytes)", out->max);
    gyre_stats_answer_destroy(a);
    return r;
}
