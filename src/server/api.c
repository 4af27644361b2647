/*
 * The trace query API (see api.h): routing under /api/, the query-string
 * parser, and the readers that answer it.
 *
 * A store query runs off the workers' event loops: a stats query over a
 * day of a million traces takes 170-300 ms, a session of a thousand calls
 * with their bodies more, and a worker that ran them itself would hold
 * every proxied request on its loop that long.  The worker parses and
 * checks the request (cheap, and its errors answer at once), hands a job to
 * a small pool of reader threads (API_READERS, each with its own store
 * handle), and goes on; the reader runs the query and posts the job back
 * to the worker's loop through h2o's multithread queue (as the main thread
 * posts the shutdown message), where the answer is sent.  A request whose
 * client left meanwhile has its job dropped when it comes back: the job
 * never touches the request off the loop.
 */
#include "server/api.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/time.h"
#include "common/wire.h"
#include "loop/cluster.h"
#include "proxy/respond.h"

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
    P_KEY,
    P_TEAM,
    P_CLUSTER,
    P_COUNT
};

static const char *const param_names[P_COUNT] = {
    "from", "to",     "route",  "provider",       "model", "agent",  "session", "user",
    "tag",  "status", "errors", "min_latency_ms", "q",     "cursor", "limit",   "otel_trace_id", "key", "team",
    "cluster",
};

#define PARAM_LIST                                                                                                     \
    "from, to, route, provider, model, agent, session, user, tag, status, errors, min_latency_ms, q, cursor, limit, "  \
    "otel_trace_id, key, team, cluster"

/* /api/stats's parameters. */
enum { S_FROM, S_TO, S_ROUTE, S_PROVIDER, S_MODEL, S_AGENT, S_USER, S_GROUP_BY, S_BUCKET, S_KEY, S_TEAM, S_COUNT };

static const char *const stats_param_names[S_COUNT] = {
    "from", "to", "route", "provider", "model", "agent", "user", "group_by", "bucket", "key", "team",
};

#define STATS_PARAM_LIST "from, to, route, provider, model, agent, user, group_by, bucket, key, team"

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

static int set_time(const char *name, const char *v, int64_t *us, gyre_api_error_t *err)
{
    if (gyre_time_parse(v, us) != 0) {
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
    case P_KEY: q->key_id = v; return 0;
    case P_TEAM: q->team = v; return 0;
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
    case P_CLUSTER:
        /* A cluster's id in the newest clustering run (src/loop/cluster.h): a small whole number. */
        if (parse_uint(v, 2147483647, &u) != 0) {
            BAD_PARAM(err, "invalid_value", name, "'cluster' must be a cluster's id, a whole number, got '%.64s'", v);
            return -1;
        }
        q->has_cluster = 1;
        q->cluster = (int32_t)u;
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

int gyre_api_parse_params(const char *qs, size_t len, const char *const *names, int count, const char *list,
                          int (*set)(void *ctx, int which, const char *v, gyre_api_error_t *err), void *ctx,
                          char *strings, gyre_api_error_t *err)
{
    const param_table_t t = {names, count, list, set};
    return parse_query(qs, len, &t, ctx, strings, err);
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
    static const char *const dims[] = {"route", "provider", "model", "agent", "user", "key", "team"};
    static const unsigned bits[] = {GYRE_STATS_BY_ROUTE, GYRE_STATS_BY_PROVIDER, GYRE_STATS_BY_MODEL,
                                    GYRE_STATS_BY_AGENT, GYRE_STATS_BY_USER,     GYRE_STATS_BY_KEY,
                                    GYRE_STATS_BY_TEAM};
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
    case S_KEY: q->key_id = v; return 0;
    case S_TEAM: q->team = v; return 0;
    case S_GROUP_BY:
        for (const char *p = v; *p;) {
            size_t n = strcspn(p, ",");
            unsigned bit = 0;
            for (size_t d = 0; d < sizeof(dims) / sizeof(dims[0]); d++)
                if (strlen(dims[d]) == n && memcmp(p, dims[d], n) == 0)
                    bit = bits[d];
            if (bit == 0 && n > 0) {
                BAD_PARAM(err, "invalid_value", name,
                          "'group_by' takes a comma list of route, provider, model, agent, user, key, team; got '%.*s'",
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

/* ---- The readers: store queries off the event loops. ---- */

/* Reader threads: two, so that a slow query (a long stats range, a big session) does not hold a trace lookup
 * behind it, and few, since each holds a store handle (64 MiB of page cache at most) and the store's reads
 * share the machine's cores with the workers. */
#define API_READERS 2
/* Jobs waiting for a reader, all workers together; past it /api answers 503 store_busy at once rather than
 * queue without bound (a job is a parsed query of about 4 KiB, its answer up to the endpoint's bound). */
#define API_QUEUE_MAX 64
/* The readers' nice value: CFS gives a nice-0 worker about nine tenths of a core it shares with one. */
#define API_READER_NICE 10

enum { EP_TRACES, EP_TRACE, EP_SESSION, EP_STATS, EP_WORK, EP_CLUSTERS, EP_CLUSTERS_REBUILD };

/* A clustering run's JSON (GET /api/clusters, POST /api/clusters/rebuild): 256 clusters and their parents of a
 * few KB each fit many times over. */
#define API_CLUSTERS_MAX ((size_t)16 << 20)

typedef struct api_job api_job_t;

/* What ties a job to its request: in the request's pool, so that the request going away (the client left)
 * unties them.  Read and written on the worker's thread only. */
typedef struct api_link {
    api_job_t *job;
    h2o_req_t *req;
} api_link_t;

struct api_job {
    h2o_multithread_message_t super; /* first: the message posted back to the worker's loop */
    h2o_multithread_receiver_t *receiver; /* the worker's */
    api_link_t *link;                     /* NULL once the request is gone (worker's thread only) */
    api_job_t *next;                      /* in the readers' queue */
    int ep;
    const char *dsn;
    gyre_clusters_conf_t clusters; /* EP_CLUSTERS_REBUILD: the config's numbers (its strings not kept) */
    union {
        gyre_api_query_t traces;
        gyre_api_stats_query_t stats;
        char trace_id[33];
        char session[API_SESSION_ID_MAX + 1];
        gyre_api_work_t *work; /* EP_WORK: another endpoint's store work (gyre_api_submit_work) */
    } q;
    /* The answer, filled by the reader. */
    int r;
    const char *what; /* on an error: what failed ("reading traces", "opening the trace store") */
    char msg[512];
    gyre_buf_t out;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    api_job_t *head, *tail;
    size_t n;
    int64_t delay_ms; /* GYRE_TEST_API_DELAY_MS (tests only, with GYRE_TEST=1): each read waits this long first */
} readers = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, 0};
static pthread_once_t readers_once = PTHREAD_ONCE_INIT;
static int readers_failed;

/* Each worker's receiver for the jobs its readers finish; registered on the worker's first /api request. */
static __thread h2o_multithread_receiver_t answers;
static __thread int answers_registered;

/* The reader's own store handle, opened on its first job (the next job tries again after a failure). */
static __thread gyre_store_t *reader_store;

static void run_job(api_job_t *j)
{
    j->what = NULL;
    if (reader_store == NULL && gyre_store_open(j->dsn, 0, &reader_store, j->msg, sizeof(j->msg)) != 0) {
        reader_store = NULL;
        j->r = -EIO;
        j->what = "opening the trace store";
        return;
    }
    if (readers.delay_ms > 0) {
        struct timespec ts = {readers.delay_ms / 1000, (long)(readers.delay_ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    switch (j->ep) {
    case EP_TRACES:
        gyre_buf_init(&j->out, API_PAGE_MAX);
        j->r = gyre_store_query_traces(reader_store, &j->q.traces.q, &j->out, j->msg, sizeof(j->msg));
        break;
    case EP_STATS:
        gyre_buf_init(&j->out, API_STATS_MAX);
        j->r = gyre_store_stats(reader_store, &j->q.stats.q, &j->out, j->msg, sizeof(j->msg));
        break;
    case EP_TRACE:
        gyre_buf_init(&j->out, API_TRACE_MAX);
        j->r = gyre_store_get_trace(reader_store, j->q.trace_id, &j->out, j->msg, sizeof(j->msg));
        break;
    case EP_SESSION:
        gyre_buf_init(&j->out, API_SESSION_MAX);
        j->r = gyre_store_get_session(reader_store, j->q.session, &j->out, j->msg, sizeof(j->msg));
        break;
    case EP_CLUSTERS:
        gyre_buf_init(&j->out, API_CLUSTERS_MAX);
        j->r = gyre_store_get_cluster_run(reader_store, &j->out, j->msg, sizeof(j->msg));
        break;
    case EP_CLUSTERS_REBUILD: {
        /* On this reader, for as long as the run takes (the other reader answers meanwhile); one run at a time
         * in the process (-EBUSY), so a read token can keep at most one reader busy with it. */
        gyre_cluster_rebuild_opts_t ro = {.conf = &j->clusters};
        gyre_buf_init(&j->out, API_CLUSTERS_MAX);
        j->r = gyre_cluster_rebuild(reader_store, &ro, &j->out, j->msg, sizeof(j->msg));
        break;
    }
    case EP_WORK:
        j->q.work->run(j->q.work, reader_store);
        break;
    }
}

static void *reader_main(void *arg)
{
    (void)arg;
    /* Below the workers: where a query and the proxied requests want the same core, the requests win (on
     * Linux a thread has its own nice value; failing to set it leaves the reader at the workers' priority). */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), API_READER_NICE);
    for (;;) {
        pthread_mutex_lock(&readers.mu);
        while (readers.head == NULL)
            pthread_cond_wait(&readers.cond, &readers.mu);
        api_job_t *j = readers.head;
        readers.head = j->next;
        if (readers.head == NULL)
            readers.tail = NULL;
        readers.n--;
        pthread_mutex_unlock(&readers.mu);
        run_job(j);
        h2o_multithread_send_message(j->receiver, &j->super);
    }
    return NULL;
}

static void readers_start(void)
{
    const char *test = getenv("GYRE_TEST"), *delay = getenv("GYRE_TEST_API_DELAY_MS");
    if (test != NULL && strcmp(test, "1") == 0 && delay != NULL)
        readers.delay_ms = strtoll(delay, NULL, 10);
    int started = 0;
    for (int i = 0; i < API_READERS; i++) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        started += pthread_create(&t, &attr, reader_main, NULL) == 0;
        pthread_attr_destroy(&attr);
    }
    readers_failed = started == 0; /* one reader is enough to answer; none is an error on every request */
}

/* Queues a job for the readers; 0, or -EBUSY at the queue's bound. */
static int readers_submit(api_job_t *j)
{
    pthread_mutex_lock(&readers.mu);
    if (readers.n >= API_QUEUE_MAX) {
        pthread_mutex_unlock(&readers.mu);
        return -EBUSY;
    }
    j->next = NULL;
    if (readers.tail != NULL)
        readers.tail->next = j;
    else
        readers.head = j;
    readers.tail = j;
    readers.n++;
    pthread_cond_signal(&readers.cond);
    pthread_mutex_unlock(&readers.mu);
    return 0;
}

/* ---- The endpoints' answers (on the worker's loop). ---- */

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

static void respond_job(h2o_req_t *req, api_job_t *j)
{
    gyre_api_error_t err;
    int r = j->r;
    if (j->what != NULL) {
        respond_store_error(req, r, j->what, j->msg);
        return;
    }
    if (j->ep == EP_WORK) {
        j->q.work->respond(j->q.work, req);
        return;
    }
    if (r == 0) {
        gyre_respond_json(req, 200, j->out.base, j->out.len);
        return;
    }
    switch (j->ep) {
    case EP_TRACES:
        if (r == -EINVAL) {
            /* The store checks what only it can read: the cursor's shape (and the text's length, which the
             * query bound already keeps within the store's). */
            const char *param = strncmp(j->msg, "cursor:", 7) == 0 ? "cursor"
                                : strncmp(j->msg, "text:", 5) == 0  ? "q"
                                                                     : NULL;
            gyre_api_error_set(&err, 400, "invalid_request_error", "invalid_value", param, "%s", j->msg);
            gyre_respond_error(req, &err);
        } else {
            respond_store_error(req, r, "reading traces", j->msg);
        }
        break;
    case EP_STATS: {
        const char *param = store_error_param(j->msg);
        if (r == -EINVAL || (r == -E2BIG && param != NULL)) {
            /* What only the store can check: the bucket count over the defaulted range, the number of groups. */
            gyre_api_error_set(&err, 400, "invalid_request_error", "invalid_value", param, "%s", j->msg);
            gyre_respond_error(req, &err);
        } else {
            respond_store_error(req, r, "reading stats", j->msg);
        }
        break;
    }
    case EP_TRACE:
        if (r == -ENOENT) {
            gyre_api_error_set(&err, 404, "invalid_request_error", "trace_not_found", NULL, "no trace '%s'",
                               j->q.trace_id);
            gyre_respond_error(req, &err);
        } else {
            respond_store_error(req, r, "reading a trace", j->msg);
        }
        break;
    case EP_SESSION:
        if (r == -ENOENT) {
            gyre_api_error_set(&err, 404, "invalid_request_error", "session_not_found", NULL, "no session '%.200s'",
                               j->q.session);
            gyre_respond_error(req, &err);
        } else {
            respond_store_error(req, r, "reading a session", j->msg);
        }
        break;
    case EP_CLUSTERS:
    case EP_CLUSTERS_REBUILD:
        if (r == -ENOENT) {
            gyre_api_error_set(&err, 404, "invalid_request_error", "no_clusters", NULL,
                               "no clustering has run yet: POST /api/clusters/rebuild or gyre clusters --rebuild");
        } else if (r == -ENODATA) {
            gyre_api_error_set(&err, 404, "invalid_request_error", "no_traces", NULL, "%s", j->msg);
        } else if (r == -EBUSY) {
            gyre_api_error_set(&err, 409, "invalid_request_error", "clustering_running", NULL, "%s", j->msg);
        } else {
            respond_store_error(req, r, j->ep == EP_CLUSTERS ? "reading the clusters" : "clustering", j->msg);
            break;
        }
        gyre_respond_error(req, &err);
        break;
    }
}

static void job_free(api_job_t *j)
{
    if (j->ep == EP_WORK)
        j->q.work->dispose(j->q.work);
    gyre_buf_dispose(&j->out);
    free(j);
}

/* The jobs the readers finished for this worker: each answers its request, unless the client left. */
static void on_answers_cb(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    while (!h2o_linklist_is_empty(messages)) {
        api_job_t *j = H2O_STRUCT_FROM_MEMBER(api_job_t, super.link, messages->next);
        h2o_linklist_unlink(&j->super.link);
        if (j->link != NULL) {
            j->link->job = NULL;
            respond_job(j->link->req, j);
        }
        job_free(j);
    }
}

/* The request is gone before its job came back: the job is dropped when it does. */
static void on_link_dispose_cb(void *p)
{
    api_link_t *link = p;
    if (link->job != NULL)
        link->job->link = NULL;
}

/* Hands the parsed job to the readers; the answer comes back on this worker's loop. */
static void submit(gyre_worker_t *w, h2o_req_t *req, api_job_t *j)
{
    if (!answers_registered) {
        h2o_multithread_register_receiver(w->super.ctx.queue, &answers, on_answers_cb);
        answers_registered = 1;
    }
    pthread_once(&readers_once, readers_start);
    j->receiver = &answers;
    j->dsn = w->server->config->store_dsn;
    j->clusters = w->server->config->clusters;
    j->clusters.embeddings_route = j->clusters.naming_route = NULL;
    api_link_t *link = h2o_mem_alloc_shared(&req->pool, sizeof(*link), on_link_dispose_cb);
    link->job = j;
    link->req = req;
    j->link = link;
    int r = readers_failed ? -EAGAIN : readers_submit(j);
    if (r != 0) {
        gyre_api_error_t err;
        link->job = NULL;
        gyre_api_error_set(&err, 503, "server_error", "store_busy", NULL,
                           r == -EBUSY ? "the trace store has %d queries waiting; try again shortly"
                                       : "the trace store's reader threads could not be started (%d)",
                           API_QUEUE_MAX);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
        gyre_respond_error(req, &err);
        job_free(j);
    }
}

/* ---- The endpoints' checks (on the worker's loop: cheap, and their errors answer at once). ---- */

static int is_trace_id(const char *s, size_t n)
{
    if (n != 32)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* The job for the request, or NULL after answering it with the error its parameters earn. */
static api_job_t *parse_job(h2o_req_t *req, int ep, const char *id, size_t idlen)
{
    gyre_api_error_t err;
    size_t qlen;
    const char *qs;
    api_job_t *j = gyre_calloc(1, sizeof(*j));
    j->ep = ep;
    switch (ep) {
    case EP_TRACES:
        qs = query_string(req, &qlen);
        if (gyre_api_parse_traces_query(qs, qlen, &j->q.traces, &err) != 0)
            goto refuse;
        break;
    case EP_STATS:
        qs = query_string(req, &qlen);
        if (gyre_api_parse_stats_query(qs, qlen, &j->q.stats, &err) != 0)
            goto refuse;
        break;
    case EP_TRACE:
        if (!is_trace_id(id, idlen)) {
            gyre_api_error_set(&err, 404, "invalid_request_error", "trace_not_found", NULL,
                               "no trace '%.*s': trace ids are 32 lowercase hex digits (x-gyre-trace-id)",
                               (int)(idlen < 64 ? idlen : 64), id);
            goto refuse;
        }
        memcpy(j->q.trace_id, id, 32);
        j->q.trace_id[32] = '\0';
        break;
    case EP_SESSION: {
        ssize_t n = idlen <= API_SESSION_ID_MAX ? url_decode(id, idlen, 0, j->q.session) : -3;
        if (n < 0) {
            gyre_api_error_set(&err, 404, "invalid_request_error", "session_not_found", NULL,
                               n == -3 ? "no session: session ids are at most %d bytes"
                                       : "no session: the id has a malformed percent escape or a %%00 (ids are at "
                                         "most %d bytes)",
                               API_SESSION_ID_MAX);
            goto refuse;
        }
        j->q.session[n] = '\0';
        break;
    }
    }
    return j;
refuse:
    gyre_respond_error(req, &err);
    free(j);
    return NULL;
}

static int has_prefix(const char *p, size_t n, const char *prefix, size_t plen)
{
    return n >= plen && memcmp(p, prefix, plen) == 0;
}

int gyre_api_handle(gyre_worker_t *w, h2o_req_t *req)
{
    h2o_iovec_t norm = req->path_normalized;
    if (!h2o_memis(norm.base, norm.len, H2O_STRLIT("/api")) && !has_prefix(norm.base, norm.len, H2O_STRLIT("/api/")))
        return 0;
    if (gyre_api_audit_handle(w, req))
        return 1;

    /* The ids come from the path as sent (up to the query), decoded here: a session id may hold any byte,
     * and how h2o's normalisation treats escapes is not this API's contract.  A path that only normalises
     * to /api/ (dot segments) is read in its normalised form. */
    h2o_iovec_t path = h2o_iovec_init(req->path.base, req->query_at != SIZE_MAX ? req->query_at : req->path.len);
    if (!has_prefix(path.base, path.len, H2O_STRLIT("/api/")))
        path = norm;

    if (gyre_api_alerts_handle(w, req, path))
        return 1;
    if (gyre_api_datasets_handle(w, req, path))
        return 1;
    if (gyre_api_deploy_handle(w, req, path))
        return 1;
    if (gyre_api_loop_handle(w, req, path))
        return 1;
    int ep;
    const char *id = NULL;
    size_t idlen = 0;
    if (h2o_memis(path.base, path.len, H2O_STRLIT("/api/traces"))) {
        ep = EP_TRACES;
    } else if (h2o_memis(path.base, path.len, H2O_STRLIT("/api/stats"))) {
        ep = EP_STATS;
    } else if (h2o_memis(path.base, path.len, H2O_STRLIT("/api/clusters"))) {
        ep = EP_CLUSTERS;
    } else if (h2o_memis(path.base, path.len, H2O_STRLIT("/api/clusters/rebuild"))) {
        ep = EP_CLUSTERS_REBUILD;
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
                           "unknown path %.*s; the API serves /api/traces, /api/traces/{id}, /api/alerts, "
                           "/api/sessions/{id}, /api/stats, /api/clusters and /api/clusters/rebuild",
                           (int)(path.len < 256 ? path.len : 256), path.base);
        gyre_respond_error(req, &err);
        return 1;
    }

    const char *method = ep == EP_CLUSTERS_REBUILD ? "POST" : "GET";
    if (!h2o_memis(req->method.base, req->method.len, method, strlen(method))) {
        gyre_api_error_t err;
        gyre_api_error_set(&err, 405, "invalid_request_error", "method_not_allowed", NULL,
                           "%.*s %.*s is not allowed; use %s", (int)(req->method.len < 32 ? req->method.len : 32),
                           req->method.base, (int)(path.len < 256 ? path.len : 256), path.base, method);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, method, strlen(method));
        gyre_respond_error(req, &err);
        return 1;
    }

    if (w->server->config->store_dsn == NULL) {
        gyre_api_error_t err;
        gyre_api_error_set(&err, 404, "invalid_request_error", "store_not_configured", NULL,
                           "this gateway keeps no traces: the config has no store (store: {sqlite: PATH})");
        gyre_respond_error(req, &err);
        return 1;
    }
    api_job_t *j = parse_job(req, ep, id, idlen);
    if (j != NULL)
        submit(w, req, j);
    return 1;
}

void gyre_api_submit_work(gyre_worker_t *w, h2o_req_t *req, gyre_api_work_t *work)
{
    api_job_t *j = gyre_calloc(1, sizeof(*j));
    j->ep = EP_WORK;
    j->q.work = work;
    submit(w, req, j);
}

/* A point lookup by id on the calling (worker's) thread: its own handle, opened on first use and kept for the
 * thread's life.  One indexed read, unlike the queries above, which go to the reader threads. */
static __thread gyre_store_t *caller_store;

int gyre_api_read_trace(const gyre_config_t *config, const char *trace_id, gyre_buf_t *out, char *err, size_t errlen)
{
    if (config->store_dsn == NULL)
        return -ENOTSUP;
    if (caller_store == NULL && gyre_store_open(config->store_dsn, 0, &caller_store, err, errlen) != 0)
        return -EIO;
    return gyre_store_get_trace(caller_store, trace_id, out, err, errlen);
}
