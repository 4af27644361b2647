/*
 * The trace query API (see api.h): routing under /api/, the query-string
 * parser, and the per-worker read handle on the store.
 *
 * Reads happen on the worker's event loop thread.  That is a deliberate
 * shortcut for now: the store runs in WAL mode, so a reader never waits for
 * the writer thread, and a page or a trace is an indexed lookup that SQLite
 * answers in well under a millisecond.  A session of a thousand calls with
 * captured bodies is the slow case, and so is /api/stats over a long range
 * or with many groups (tens to hundreds of ms at 1M traces: bench/store);
 * if it shows up in proxy latency, the reads move to a thread pool that
 * posts the answer back to the loop.
 */
#include "server/api.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/wire.h"
#include "server/respond.h"

/* The bounds on what one answer may hold.  A page is summaries only; a
 * trace may carry two bodies of up to 64 MiB each (the store's limit), JSON
 * escaping included; a session is up to 1000 traces with their bodies. */
#define API_PAGE_MAX ((size_t)32 << 20)
#define API_TRACE_MAX ((size_t)160 << 20)
#define API_SESSION_MAX ((size_t)256 << 20)
/* Stats: at most 10000 groups or 10080 buckets of about 400 bytes each. */
#define API_STATS_MAX ((size_t)16 << 20)
/* The longest session id the API looks up (ids are client header values; longer cannot have been stored usefully). */
#define API_SESSION_ID_MAX 1024
/* The longest parameter name worth reading: every known one is shorter. */
#define API_KEY_MAX 32

/*
 * One read handle per worker thread, opened on first use, so workers never
 * share a SQLite connection.  The pthread key exists only for its
 * destructor: it closes the handle when the worker thread exits, which
 * keeps the connection from leaking at shutdown.
 */
static __thread gyre_store_t *read_handle;
static pthread_key_t read_handle_key;
static pthread_once_t read_handle_once = PTHREAD_ONCE_INIT;

static void read_handle_close_cb(void *p)
{
    gyre_store_sqlite.close(p);
}

static void read_handle_key_init(void)
{
    pthread_key_create(&read_handle_key, read_handle_close_cb);
}

/* The worker's read handle, or NULL with `err` filled (the next request tries to open it again). */
static gyre_store_t *read_handle_get(const char *path, char *err, size_t errlen)
{
    if (read_handle != NULL)
        return read_handle;
    pthread_once(&read_handle_once, read_handle_key_init);
    gyre_store_t *s = NULL;
    if (gyre_store_sqlite.open(path, &s, err, errlen) != 0)
        return NULL;
    read_handle = s;
    pthread_setspecific(read_handle_key, s);
    return s;
}

/* ---- The query string. ---- */

/*
 * URL-decodes `n` bytes of `s` into `out` (room for `n` bytes: decoding
 * never grows), '+' as a space when `plus` is set (query strings, not
 * paths).  Returns the decoded length, -1 on a malformed escape, -2 on a
 * decoded NUL (it would cut the C string the store reads).
 */
static ssize_t url_decode(const char *s, size_t n, int plus, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (n - i < 3)
                return -1;
            int hi = gyre_wire_hex_digit((unsigned char)s[i + 1]), lo = gyre_wire_hex_digit((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi << 4 | lo);
            if (c == '\0')
                return -2;
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        }
        out[o++] = c;
    }
    return (ssize_t)o;
}

enum {
    P_FROM,
    P_TO,
    P_ROUTE,
    P_PROVIDER,
    P_MODEL,
    P_AGENT,
    P_SESSION,
    P_USER,
    P_TAG,
    P_STATUS,
    P_ERRORS,
    P_MIN_LATENCY_MS,
    P_Q,
    P_CURSOR,
    P_LIMIT,
    P_OTEL_TRACE_ID,
    P_COUNT
};

static const char *const param_names[P_COUNT] = {
    "from", "to",     "route",  "provider",       "model", "agent",  "session", "user",
    "tag",  "status", "errors", "min_latency_ms", "q",     "cursor", "limit",   "otel_trace_id",
};

#define PARAM_LIST                                                                                                     \
    "from, to, route, provider, model, agent, session, user, tag, status, errors, min_latency_ms, q, cursor, limit, "  \
    "otel_trace_id"

/* /api/stats's parameters. */
enum { S_FROM, S_TO, S_ROUTE, S_PROVIDER, S_MODEL, S_AGENT, S_USER, S_GROUP_BY, S_BUCKET, S_COUNT };

static const char *const stats_param_names[S_COUNT] = {
    "from", "to", "route", "provider", "model", "agent", "user", "group_by", "bucket",
};

#define STATS_PARAM_LIST "from, to, route, provider, model, agent, user, group_by, bucket"

#define BAD_PARAM(err, code, param, ...)                                                                               \
    gyre_api_error_set((err), 400, "invalid_request_error", (code), (param), __VA_ARGS__)

/* A whole number of at most `max` in decimal digits only (no sign, no spaces).  0, or -1. */
static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (*s == '\0')
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Exactly `n` digits at `s`, as a number; -1 when any is not a digit. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (the civil-from-days inverse; no timegm, which C11 lacks). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
        return 29;
    return days[m - 1];
}

/* RFC 3339's date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM), 't' and 'z' in either case. */
static int parse_rfc3339(const char *s, int64_t *us)
{
    size_t n = strlen(s);
    if (n < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':')
        return -1;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
    int h = digits(s + 11, 2), mi = digits(s + 14, 2), sec = digits(s + 17, 2);
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h < 0 || h > 23 || mi < 0 || mi > 59 ||
        sec < 0 || sec > 60) /* 60: a leap second, read as the next minute's first second */
        return -1;
    const char *p = s + 19;
    int64_t frac_us = 0;
    if (*p == '.') {
        int nd = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, nd++)
            if (nd < 6)
                frac_us = frac_us * 10 + (*p - '0');
        if (nd == 0)
            return -1;
        for (; nd < 6; nd++)
            frac_us *= 10;
    }
    int64_t offset_s = 0;
    if ((p[0] == 'Z' || p[0] == 'z') && p[1] == '\0') {
        offset_s = 0;
    } else if ((p[0] == '+' || p[0] == '-') && strlen(p) == 6 && p[3] == ':') {
        int oh = digits(p + 1, 2), om = digits(p + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return -1;
        offset_s = (int64_t)(oh * 3600 + om * 60) * (p[0] == '+' ? 1 : -1);
    } else {
        return -1;
    }
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset_s;
    *us = secs * 1000000 + frac_us;
    return 0;
}

int gyre_api_parse_time(const char *s, int64_t *us)
{
    uint64_t ms;
    /* 10^15 ms is past the year 33000: far enough, and its microseconds still fit in 63 bits. */
    if (parse_uint(s, 1000000000000000ull, &ms) == 0) {
        *us = (int64_t)ms * 1000;
        return 0;
    }
    return parse_rfc3339(s, us);
}

static int set_time(const char *name, const char *v, int64_t *us, gyre_api_error_t *err)
{
    if (gyre_api_parse_time(v, us) != 0) {
        BAD_PARAM(err, "invalid_value", name,
                  "'%s' must be unix milliseconds or an RFC 3339 time such as 2026-12-01T10:00:00Z, got '%.64s'", name,
                  v);
        return -1;
    }
    return 0;
}

/* Sets one parameter from its decoded, non-empty value; 0, or -1 with err filled. */
static int set_param(void *ctx, int which, const char *v, gyre_api_error_t *err)
{
    gyre_trace_query_t *q = ctx;
    const char *name = param_names[which];
    uint64_t u;
    switch (which) {
    case P_FROM:
    case P_TO: return set_time(name, v, which == P_FROM ? &q->from_us : &q->to_us, err);
    case P_ROUTE: q->route = v; return 0;
    case P_PROVIDER: q->provider = v; return 0;
    case P_MODEL: q->model = v; return 0;
    case P_AGENT: q->agent = v; return 0;
    case P_SESSION: q->session = v; return 0;
    case P_USER: q->user = v; return 0;
    case P_TAG: q->tag = v; return 0;
    case P_Q: q->text = v; return 0;
    case P_CURSOR: q->cursor = v; return 0;
    case P_OTEL_TRACE_ID: q->otel_trace_id = v; return 0;
    case P_STATUS:
        if (parse_uint(v, 999, &u) != 0 || u < 100 || u > 599) {
            BAD_PARAM(err, "invalid_value", name, "'status' must be an HTTP status from 100 to 599, got '%.64s'", v);
            return -1;
        }
        q->status = (int)u;
        return 0;
    case P_ERRORS:
        if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0) {
            q->errors_only = 1;
        } else if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0) {
            q->errors_only = 0;
        } else {
            BAD_PARAM(err, "invalid_value", name, "'errors' must be 1 or 0 (or true or false), got '%.64s'", v);
            return -1;
        }
        return 0;
    case P_MIN_LATENCY_MS:
        /* A bound that no latency reaches (about 31 years), so the microseconds cannot overflow. */
        if (parse_uint(v, 1000000000000ull, &u) != 0) {
            BAD_PARAM(err, "invalid_value", name,
                      "'min_latency_ms' must be a whole number of milliseconds, got '%.64s'", v);
            return -1;
        }
        q->min_latency_us = (int64_t)u * 1000;
        return 0;
    case P_LIMIT:
        if (parse_uint(v, 1000000, &u) != 0 || u < 1 || u > 1000) {
            BAD_PARAM(err, "invalid_value", name, "'limit' must be a whole number from 1 to 1000, got '%.64s'", v);
            return -1;
        }
        q->limit = (size_t)u;
        return 0;
    }
    return 0;
}

/* One endpoint's parameters: their names, the list an unknown one is answered with, and the setter. */
typedef struct param_table {
    const char *const *names;
    int count;
    const char *list;
    int (*set)(void *ctx, int which, const char *v, gyre_api_error_t *err);
} param_table_t;

/*
 * The query-string loop both endpoints share: splits, URL-decodes into
 * `strings` (GYRE_API_QUERY_MAX + 1 bytes), refuses unknown and repeated
 * names, skips empty values, and hands the rest to the table's setter.
 */
static int parse_query(const char *qs, size_t len, const param_table_t *t, void *ctx, char *strings,
                       gyre_api_error_t *err)
{
    unsigned seen = 0;
    size_t used = 0;
    strings[0] = '\0';
    if (len > GYRE_API_QUERY_MAX) {
        BAD_PARAM(err, "query_too_long", NULL, "the query string is longer than %d bytes", GYRE_API_QUERY_MAX);
        return -1;
    }
    for (size_t i = 0; i < len;) {
        const char *part = qs + i;
        const char *amp = memchr(part, '&', len - i);
        size_t plen = amp ? (size_t)(amp - part) : len - i;
        i += plen + 1;
        if (plen == 0)
            continue; /* "a=1&&b=2": an empty part names nothing */
        const char *eq = memchr(part, '=', plen);
        size_t klen = eq ? (size_t)(eq - part) : plen;
        const char *val = eq ? eq + 1 : part + plen;
        size_t vlen = plen - klen - (eq ? 1 : 0);

        char key[API_KEY_MAX + 1];
        ssize_t kd = klen <= API_KEY_MAX ? url_decode(part, klen, 1, key) : (ssize_t)API_KEY_MAX + 1;
        if (kd == -1 || kd == -2) {
            BAD_PARAM(err, "invalid_encoding", NULL, "a parameter name has a malformed percent escape");
            return -1;
        }
        int which = -1;
        if (kd <= API_KEY_MAX) {
            key[kd] = '\0';
            for (int p = 0; p < t->count; p++)
                if (strcmp(key, t->names[p]) == 0)
                    which = p;
        }
        if (which < 0) {
            if (kd > API_KEY_MAX)
                snprintf(key, sizeof(key), "%.*s", (int)(klen < API_KEY_MAX ? klen : API_KEY_MAX), part);
            BAD_PARAM(err, "unknown_parameter", key, "unknown parameter '%s'; expected one of %s", key, t->list);
            return -1;
        }
        const char *name = t->names[which];
        if (seen & (1u << which)) {
            BAD_PARAM(err, "duplicate_parameter", name, "'%s' is given more than once", name);
            return -1;
        }
        seen |= 1u << which;

        /* Decoding never grows a value, and every value was preceded by at least its '=' in the query, so the
         * values and their terminators fit in GYRE_API_QUERY_MAX + 1 bytes; the check is for the reader. */
        if (used + vlen + 1 > GYRE_API_QUERY_MAX + 1) {
            BAD_PARAM(err, "query_too_long", NULL, "the query string is longer than %d bytes", GYRE_API_QUERY_MAX);
            return -1;
        }
        char *v = strings + used;
        ssize_t vd = url_decode(val, vlen, 1, v);
        if (vd == -1) {
            BAD_PARAM(err, "invalid_encoding", name, "'%s' has a malformed percent escape", name);
            return -1;
        }
        if (vd == -2) {
            BAD_PARAM(err, "invalid_encoding", name, "'%s' contains a NUL byte (%%00)", name);
            return -1;
        }
        v[vd] = '\0';
        used += (size_t)vd + 1;
        if (vd == 0)
            continue; /* "from=": a form's empty field filters nothing */
        if (t->set(ctx, which, v, err) != 0)
            return -1;
    }
    return 0;
}

int gyre_api_parse_traces_query(const char *qs, size_t len, gyre_api_query_t *out, gyre_api_error_t *err)
{
    static const param_table_t table = {param_names, P_COUNT, PARAM_LIST, set_param};
    memset(&out->q, 0, sizeof(out->q));
    if (parse_query(qs, len, &table, &out->q, out->strings, err) != 0)
        return -1;
    if (out->q.from_us != 0 && out->q.to_us != 0 && out->q.to_us <= out->q.from_us) {
        BAD_PARAM(err, "invalid_value", "to", "'to' must be later than 'from'");
        return -1;
    }
    return 0;
}

/* The bucket widths /api/stats offers. */
static const struct {
    const char *name;
    int64_t us;
} stats_buckets[] = {
    {"1m", (int64_t)60 * 1000000},   {"5m", (int64_t)300 * 1000000},   {"15m", (int64_t)900 * 1000000},
    {"1h", (int64_t)3600 * 1000000}, {"1d", (int64_t)86400 * 1000000},
};

static int set_stats_param(void *ctx, int which, const char *v, gyre_api_error_t *err)
{
    static const char *const dims[] = {"route", "provider", "model", "agent", "user"};
    static const unsigned bits[] = {GYRE_STATS_BY_ROUTE, GYRE_STATS_BY_PROVIDER, GYRE_STATS_BY_MODEL,
                                    GYRE_STATS_BY_AGENT, GYRE_STATS_BY_USER};
    gyre_stats_query_t *q = ctx;
    const char *name = stats_param_names[which];
    switch (which) {
    case S_FROM: return set_time(name, v, &q->from_us, err);
    case S_TO: return set_time(name, v, &q->to_us, err);
    case S_ROUTE: q->route = v; return 0;
    case S_PROVIDER: q->provider = v; return 0;
    case S_MODEL: q->model = v; return 0;
    case S_AGENT: q->agent = v; return 0;
    case S_USER: q->user = v; return 0;
    case S_GROUP_BY:
        for (const char *p = v; *p;) {
            size_t n = strcspn(p, ",");
            unsigned bit = 0;
            for (size_t d = 0; d < sizeof(dims) / sizeof(dims[0]); d++)
                if (strlen(dims[d]) == n && memcmp(p, dims[d], n) == 0)
                    bit = bits[d];
            if (bit == 0 && n > 0) {
                BAD_PARAM(err, "invalid_value", name,
                          "'group_by' takes a comma list of route, provider, model, agent, user; got '%.*s'",
                          (int)(n < 64 ? n : 64), p);
                return -1;
            }
            q->group_by |= bit;
            p += n;
            if (*p == ',')
                p++;
        }
        return 0;
    case S_BUCKET:
        for (size_t i = 0; i < sizeof(stats_buckets) / sizeof(stats_buckets[0]); i++) {
            if (strcmp(v, stats_buckets[i].name) == 0) {
                q->bucket_us = stats_buckets[i].us;
                return 0;
            }
        }
        BAD_PARAM(err, "invalid_value", name, "'bucket' must be one of 1m, 5m, 15m, 1h, 1d, got '%.64s'", v);
        return -1;
    }
    return 0;
}

int gyre_api_parse_stats_query(const char *qs, size_t len, gyre_api_stats_query_t *out, gyre_api_error_t *err)
{
    static const param_table_t table = {stats_param_names, S_COUNT, STATS_PARAM_LIST, set_stats_param};
    memset(&out->q, 0, sizeof(out->q));
    if (parse_query(qs, len, &table, &out->q, out->strings, err) != 0)
        return -1;
    if (out->q.from_us != 0 && out->q.to_us != 0 && out->q.to_us <= out->q.from_us) {
        BAD_PARAM(err, "invalid_value", "to", "'to' must be later than 'from'");
        return -1;
    }
    return 0;
}

/* ---- The endpoints. ---- */

static void respond_store_error(h2o_req_t *req, int r, const char *what, const char *msg)
{
    gyre_api_error_t err;
    if (r == -E2BIG)
        gyre_api_error_set(&err, 500, "server_error", "response_too_large", NULL, "%s: %s", what, msg);
    else
        gyre_api_error_set(&err, 503, "server_error", "store_unavailable", NULL, "%s: %s", what, msg);
    gyre_respond_error(req, &err);
}

/* The request's query string after '?', or NULL (qlen 0) when it has none. */
static const char *query_string(h2o_req_t *req, size_t *qlen)
{
    *qlen = 0;
    if (req->query_at == SIZE_MAX)
        return NULL;
    *qlen = req->path.len - req->query_at - 1;
    return req->path.base + req->query_at + 1;
}

static void on_traces(gyre_store_t *s, h2o_req_t *req)
{
    gyre_api_query_t query;
    gyre_api_error_t err;
    size_t qlen;
    const char *qs = query_string(req, &qlen);
    if (gyre_api_parse_traces_query(qs, qlen, &query, &err) != 0) {
        gyre_respond_error(req, &err);
        return;
    }
    char msg[512] = "";
    gyre_buf_t out;
    gyre_buf_init(&out, API_PAGE_MAX);
    int r = gyre_store_sqlite.query_traces(s, &query.q, &out, msg, sizeof(msg));
    if (r == 0) {
        gyre_respond_json(req, 200, out.base, out.len);
    } else if (r == -EINVAL) {
        /* The store checks what only it can read: the cursor's shape (and the text's length, which the
         * query bound already keeps within the store's). */
        const char *param = strncmp(msg, "cursor:", 7) == 0 ? "cursor" : strncmp(msg, "text:", 5) == 0 ? "q" : NULL;
        gyre_api_error_set(&err, 400, "invalid_request_error", "invalid_value", param, "%s", msg);
        gyre_respond_error(req, &err);
    } else {
        respond_store_error(req, r, "reading traces", msg);
    }
    gyre_buf_dispose(&out);
}

/* The store's message starts with the parameter it refuses ("bucket: ..."): that is the 400's param. */
static const char *store_error_param(const char *msg)
{
    static const char *const names[] = {"bucket", "group_by", "from", "to"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t n = strlen(names[i]);
        if (strncmp(msg, names[i], n) == 0 && msg[n] == ':')
            return names[i];
    }
    return NULL;
}

static void on_stats(gyre_store_t *s, h2o_req_t *req)
{
    gyre_api_stats_query_t query;
    gyre_api_error_t err;
    size_t qlen;
    const char *qs = query_string(req, &qlen);
    if (gyre_api_parse_stats_query(qs, qlen, &query, &err) != 0) {
        gyre_respond_error(req, &err);
        return;
    }
    char msg[512] = "";
    gyre_buf_t out;
    gyre_buf_init(&out, API_STATS_MAX);
    int r = gyre_store_sqlite.stats(s, &query.q, &out, msg, sizeof(msg));
    const char *param = store_error_param(msg);
    if (r == 0) {
        gyre_respond_json(req, 200, out.base, out.len);
    } else if (r == -EINVAL || (r == -E2BIG && param != NULL)) {
        /* What only the store can check: the bucket count over the defaulted range, the number of groups. */
        gyre_api_error_set(&err, 400, "invalid_request_error", "invalid_value", param, "%s", msg);
        gyre_respond_error(req, &err);
    } else {
        respond_store_error(req, r, "reading stats", msg);
    }
    gyre_buf_dispose(&out);
}

static int is_trace_id(const char *s, size_t n)
{
    if (n != 32)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static void on_trace(gyre_store_t *s, h2o_req_t *req, const char *id, size_t idlen)
{
    gyre_api_error_t err;
    if (!is_trace_id(id, idlen)) {
        gyre_api_error_set(&err, 404, "invalid_request_error", "trace_not_found", NULL,
                           "no trace '%.*s': trace ids are 32 lowercase hex digits (x-gyre-trace-id)",
                           (int)(idlen < 64 ? idlen : 64), id);
        gyre_respond_error(req, &err);
        return;
    }
    char tid[33], msg[512] = "";
    memcpy(tid, id, 32);
    tid[32] = '\0';
    gyre_buf_t out;
    gyre_buf_init(&out, API_TRACE_MAX);
    int r = gyre_store_sqlite.get_trace(s, tid, &out, msg, sizeof(msg));
    if (r == 0) {
        gyre_respond_json(req, 200, out.base, out.len);
    } else if (r == -ENOENT) {
        gyre_api_error_set(&err, 404, "invalid_request_error", "trace_not_found", NULL, "no trace '%s'", tid);
        gyre_respond_error(req, &err);
    } else {
        respond_store_error(req, r, "reading a trace", msg);
    }
    gyre_buf_dispose(&out);
}

static void on_session(gyre_store_t *s, h2o_req_t *req, const char *raw, size_t rawlen)
{
    gyre_api_error_t err;
    char id[API_SESSION_ID_MAX + 1], msg[512] = "";
    ssize_t n = rawlen <= API_SESSION_ID_MAX ? url_decode(raw, rawlen, 0, id) : -3;
    if (n < 0) {
        gyre_api_error_set(&err, 404, "invalid_request_error", "session_not_found", NULL,
                           n == -3 ? "no session: session ids are at most %d bytes"
                                   : "no session: the id has a malformed percent escape or a %%00 (ids are at "
                                     "most %d bytes)",
                           API_SESSION_ID_MAX);
        gyre_respond_error(req, &err);
        return;
    }
    id[n] = '\0';
    gyre_buf_t out;
    gyre_buf_init(&out, API_SESSION_MAX);
    int r = gyre_store_sqlite.get_session(s, id, &out, msg, sizeof(msg));
    if (r == 0) {
        gyre_respond_json(req, 200, out.base, out.len);
    } else if (r == -ENOENT) {
        gyre_api_error_set(&err, 404, "invalid_request_error", "session_not_found", NULL, "no session '%.200s'", id);
        gyre_respond_error(req, &err);
    } else {
        respond_store_error(req, r, "reading a session", msg);
    }
    gyre_buf_dispose(&out);
}

static int has_prefix(const char *p, size_t n, const char *prefix, size_t plen)
{
    return n >= plen && memcmp(p, prefix, plen) == 0;
}

enum { EP_TRACES, EP_TRACE, EP_SESSION, EP_STATS };

int gyre_api_handle(gyre_worker_t *w, h2o_req_t *req)
{
    h2o_iovec_t norm = req->path_normalized;
    if (!h2o_memis(norm.base, norm.len, H2O_STRLIT("/api")) && !has_prefix(norm.base, norm.len, H2O_STRLIT("/api/")))
        return 0;

    /* The ids come from the path as sent (up to the query), decoded here: a session id may hold any byte,
     * and how h2o's normalisation treats escapes is not this API's contract.  A path that only normalises
     * to /api/ (dot segments) is read in its normalised form. */
    h2o_iovec_t path = h2o_iovec_init(req->path.base, req->query_at != SIZE_MAX ? req->query_at : req->path.len);
    if (!has_prefix(path.base, path.len, H2O_STRLIT("/api/")))
        path = norm;

    int ep;
    const char *id = NULL;
    size_t idlen = 0;
    if (h2o_memis(path.base, path.len, H2O_STRLIT("/api/traces"))) {
        ep = EP_TRACES;
    } else if (h2o_memis(path.base, path.len, H2O_STRLIT("/api/stats"))) {
        ep = EP_STATS;
    } else if (has_prefix(path.base, path.len, H2O_STRLIT("/api/traces/")) && path.len > 12 &&
               memchr(path.base + 12, '/', path.len - 12) == NULL) {
        ep = EP_TRACE;
        id = path.base + 12;
        idlen = path.len - 12;
    } else if (has_prefix(path.base, path.len, H2O_STRLIT("/api/sessions/")) && path.len > 14 &&
               memchr(path.base + 14, '/', path.len - 14) == NULL) {
        ep = EP_SESSION;
        id = path.base + 14;
        idlen = path.len - 14;
    } else {
        gyre_api_error_t err;
        gyre_api_error_set(&err, 404, "invalid_request_error", "unknown_url", NULL,
                           "unknown path %.*s; the trace API serves /api/traces, /api/traces/{id}, "
                           "/api/sessions/{id} and /api/stats",
                           (int)(path.len < 256 ? path.len : 256), path.base);
        gyre_respond_error(req, &err);
        return 1;
    }

    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"))) {
        gyre_api_error_t err;
        gyre_api_error_set(&err, 405, "invalid_request_error", "method_not_allowed", NULL,
                           "%.*s %.*s is not allowed; use GET", (int)(req->method.len < 32 ? req->method.len : 32),
                           req->method.base, (int)(path.len < 256 ? path.len : 256), path.base);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET"));
        gyre_respond_error(req, &err);
        return 1;
    }

    const char *store_path = w->server->config->store_sqlite;
    if (store_path == NULL) {
        gyre_api_error_t err;
        gyre_api_error_set(&err, 404, "invalid_request_error", "store_not_configured", NULL,
                           "this gateway keeps no traces: the config has no store (store: {sqlite: PATH})");
        gyre_respond_error(req, &err);
        return 1;
    }
    char msg[512] = "";
    gyre_store_t *s = read_handle_get(store_path, msg, sizeof(msg));
    if (s == NULL) {
        respond_store_error(req, -EIO, "opening the trace store", msg);
        return 1;
    }

    switch (ep) {
    case EP_TRACES: on_traces(s, req); break;
    case EP_TRACE: on_trace(s, req, id, idlen); break;
    case EP_SESSION: on_session(s, req, id, idlen); break;
    case EP_STATS: on_stats(s, req); break;
    }
    return 1;
}

int gyre_api_read_trace(const gyre_config_t *config, const char *trace_id, gyre_buf_t *out, char *err, size_t errlen)
{
    if (config->store_sqlite == NULL)
        return -ENOTSUP;
    gyre_store_t *s = read_handle_get(config->store_sqlite, err, errlen);
    if (s == NULL)
        return -EIO;
    return gyre_store_sqlite.get_trace(s, trace_id, out, err, errlen);
}
