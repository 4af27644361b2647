/* The access log (see access_log.h): the line's encoder, the entries, the per-worker buffers and the writer. */
#include "trace/access_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "trace/record.h"

/* ---- the encoder: the one place a value becomes JSON ---- */

/* Appends `s` as a JSON string (common/buf.h's encoder: escapes, ill-formed UTF-8 as U+FFFD, a sequence cut at
 * the bound included), cut at `max` bytes.  Returns 1 when it was cut. */
static int append_jstr(gyre_buf_t *b, gyre_access_str_t s, size_t max)
{
    int cut = s.len > max;
    gyre_buf_append_json_string(b, s.p != NULL ? s.p : "", cut ? max : s.len);
    return cut;
}

static void append_key(gyre_buf_t *b, const char *key)
{
    gyre_buf_appendf(b, ",\"%s\":", key);
}

/* A field that may be absent: null when empty. */
static void append_opt(gyre_buf_t *b, const char *key, gyre_access_str_t s)
{
    append_key(b, key);
    if (s.len == 0)
        gyre_buf_appends(b, "null");
    else
        append_jstr(b, s, GYRE_ACCESS_LOG_FIELD_MAX);
}

int gyre_access_log_format(const gyre_access_fields_t *f, gyre_buf_t *out)
{
    size_t start = out->len;
    /* RFC 3339 in UTC with milliseconds: what log shippers parse without a format string. */
    time_t secs = (time_t)(f->time_us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char when[40];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    gyre_buf_appendf(out, "{\"time\":\"%s.%03dZ\"", when, (int)((f->time_us % 1000000) / 1000));
    append_key(out, "request_id");
    append_jstr(out, f->request_id, GYRE_ACCESS_LOG_FIELD_MAX);
    append_key(out, "remote_addr");
    append_jstr(out, f->remote, GYRE_ACCESS_LOG_FIELD_MAX);
    append_key(out, "method");
    append_jstr(out, f->method, GYRE_ACCESS_LOG_FIELD_MAX);
    append_key(out, "path");
    int cut = append_jstr(out, f->path, GYRE_ACCESS_LOG_PATH_MAX);
    if (cut)
        gyre_buf_appends(out, ",\"path_truncated\":true");
    append_opt(out, "query_keys", f->query_keys);
    double ms = isfinite(f->duration_ms) && f->duration_ms >= 0 ? f->duration_ms : 0;
    gyre_buf_appendf(out, ",\"status\":%d,\"bytes_in\":%llu,\"bytes_out\":%llu,\"duration_ms\":%.3f", f->status,
                     (unsigned long long)f->bytes_in, (unsigned long long)f->bytes_out, ms);
    append_opt(out, "route", f->route);
    append_opt(out, "provider", f->provider);
    append_opt(out, "model", f->model);
    append_opt(out, "key_id", f->key_id);
    if (f->call)
        gyre_buf_appendf(out, ",\"cache\":\"%s\",\"attempts\":%d", f->cache_hit ? "hit" : "miss", f->attempts);
    else
        gyre_buf_appends(out, ",\"cache\":null,\"attempts\":0");
    append_opt(out, "trace_id", f->trace_id);
    gyre_buf_appends(out, "}\n");
    if (gyre_buf_failed(out) != 0 || out->len - start > GYRE_ACCESS_LOG_LINE_MAX) {
        out->len = start;
        if (out->base != NULL)
            out->base[start] = '\0';
        return -E2BIG;
    }
    return 0;
}

/* ---- the log: per-worker buffers and the writer thread ---- */

typedef struct worker_buf {
    pthread_mutex_t mu; /* shared with the writer thread only */
    char *base;
    size_t len;
} worker_buf_t;

struct gyre_access_log {
    int fd;
    int own_fd; /* 0 for stderr */
    char *path;
    size_t cap;
    unsigned flush_ms;
    unsigned nworkers;
    worker_buf_t *w;
    char *spare; /* the writer's own buffer, swapped with a worker's */
    pthread_t thread;
    pthread_mutex_t mu; /* the writer's sleep and the stop flag */
    pthread_cond_t cv;
    int stop;
    uint64_t lines, dropped, write_errors; /* atomics */
};

struct gyre_access_entry {
    gyre_access_log_t *log;
    unsigned worker;
    h2o_req_t *req;
    int64_t time_us;
    gyre_access_str_t request_id, remote, method, path, query_keys;
    const gyre_trace_t *trace;
    char key_id[64];
};

static void write_all(gyre_access_log_t *log, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(log->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            __atomic_add_fetch(&log->write_errors, 1, __ATOMIC_RELAXED);
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Takes each worker's lines (a swap under its mutex) and writes them outside it. */
static void drain(gyre_access_log_t *log)
{
    for (unsigned i = 0; i < log->nworkers; i++) {
        worker_buf_t *w = &log->w[i];
        pthread_mutex_lock(&w->mu);
        char *full = w->base;
        size_t n = w->len;
        w->base = log->spare;
        w->len = 0;
        pthread_mutex_unlock(&w->mu);
        log->spare = full;
        if (n != 0)
            write_all(log, full, n);
    }
}

static void *writer_main(void *arg)
{
    gyre_access_log_t *log = arg;
    uint64_t reported = 0;
    struct timespec last_report = {0, 0};
    pthread_mutex_lock(&log->mu);
    while (!log->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += log->flush_ms / 1000;
        until.tv_nsec += (long)(log->flush_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&log->cv, &log->mu, &until);
        pthread_mutex_unlock(&log->mu);
        drain(log);
        /* Drops are said, at most every 10 s, so that a full disk or a slow pipe is seen. */
        uint64_t dropped = __atomic_load_n(&log->dropped, __ATOMIC_RELAXED);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (dropped != reported && now.tv_sec - last_report.tv_sec >= 10) {
            gyre_logf("gyre: access log %s: %llu line(s) dropped so far (a worker's buffer of %zu bytes was full)\n",
                      log->path, (unsigned long long)dropped, log->cap);
            reported = dropped;
            last_report = now;
        }
        pthread_mutex_lock(&log->mu);
    }
    pthread_mutex_unlock(&log->mu);
    drain(log);
    return NULL;
}

int gyre_access_log_open(const gyre_config_t *config, unsigned nworkers, gyre_access_log_t **out, char *err,
                         size_t errlen)
{
    *out = NULL;
    if (config->access_log == NULL)
        return 0;
    int fd = 2, own = 0;
    if (strcmp(config->access_log, "stderr") != 0) {
        fd = open(config->access_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0) {
            int e = errno;
            snprintf(err, errlen, "access_log: cannot open %s for appending: %s", config->access_log, strerror(e));
            return -e;
        }
        own = 1;
    }
    gyre_access_log_t *log = gyre_calloc(1, sizeof(*log));
    log->fd = fd;
    log->own_fd = own;
    log->path = gyre_strdup(config->access_log);
    log->cap = config->access_log_buffer_bytes != 0 ? config->access_log_buffer_bytes : GYRE_DEFAULT_ACCESS_LOG_BUFFER;
    log->flush_ms = config->access_log_flush_ms != 0 ? config->access_log_flush_ms : GYRE_DEFAULT_ACCESS_LOG_FLUSH_MS;
    log->nworkers = nworkers;
    log->w = gyre_calloc(nworkers ? nworkers : 1, sizeof(*log->w));
    for (unsigned i = 0; i < nworkers; i++) {
        pthread_mutex_init(&log->w[i].mu, NULL);
        log->w[i].base = gyre_malloc(log->cap);
    }
    log->spare = gyre_malloc(log->cap);
    pthread_mutex_init(&log->mu, NULL);
    pthread_cond_init(&log->cv, NULL);
    pthread_create(&log->thread, NULL, writer_main, log);
    *out = log;
    return 0;
}

void gyre_access_log_close(gyre_access_log_t *log)
{
    if (log == NULL)
        return;
    pthread_mutex_lock(&log->mu);
    log->stop = 1;
    pthread_cond_signal(&log->cv);
    pthread_mutex_unlock(&log->mu);
    pthread_join(log->thread, NULL);
    for (unsigned i = 0; i < log->nworkers; i++) {
        pthread_mutex_destroy(&log->w[i].mu);
        free(log->w[i].base);
    }
    free(log->w);
    free(log->spare);
    if (log->own_fd)
        close(log->fd);
    pthread_mutex_destroy(&log->mu);
    pthread_cond_destroy(&log->cv);
    free(log->path);
    free(log);
}

void gyre_access_log_stats(gyre_access_log_t *log, gyre_access_log_stats_t *out)
{
    out->lines = __atomic_load_n(&log->lines, __ATOMIC_RELAXED);
    out->dropped = __atomic_load_n(&log->dropped, __ATOMIC_RELAXED);
    out->write_errors = __atomic_load_n(&log->write_errors, __ATOMIC_RELAXED);
}

/* A line into worker `i`'s buffer, or dropped and counted when it does not fit: never a wait on the disk. */
static void submit(gyre_access_log_t *log, unsigned i, const char *line, size_t n)
{
    worker_buf_t *w = &log->w[i < log->nworkers ? i : 0];
    int wake = 0, ok = 0;
    pthread_mutex_lock(&w->mu);
    if (w->len + n <= log->cap) {
        memcpy(w->base + w->len, line, n);
        w->len += n;
        ok = 1;
        wake = w->len >= log->cap / 2 && w->len - n < log->cap / 2;
    }
    pthread_mutex_unlock(&w->mu);
    __atomic_add_fetch(ok ? &log->lines : &log->dropped, 1, __ATOMIC_RELAXED);
    if (wake)
        pthread_cond_signal(&log->cv); /* without the writer's mutex: at worst it wakes at its next flush_ms */
}

/* ---- the entries ---- */

static gyre_access_str_t pool_copy(h2o_mem_pool_t *pool, const char *p, size_t n, size_t max)
{
    if (n > max + 1)
        n = max + 1; /* one more than kept, so the encoder sees that it was cut */
    h2o_iovec_t v = h2o_strdup(pool, p, n);
    return (gyre_access_str_t){v.base, v.len};
}

static void on_entry_dispose(void *p)
{
    gyre_access_entry_t *e = p;
    h2o_req_t *req = e->req;
    const gyre_trace_t *t = e->trace;
    gyre_access_fields_t f = {
        .time_us = e->time_us,
        .request_id = e->request_id,
        .remote = e->remote,
        .method = e->method,
        .path = e->path,
        .query_keys = e->query_keys,
        .status = req->res.status,
        .bytes_in = req->entity.base != NULL ? req->entity.len : 0,
        .bytes_out = req->bytes_sent,
        .key_id = {e->key_id, strlen(e->key_id)},
    };
    int64_t now = gyre_trace_now_us();
    f.duration_ms = (double)(now - e->time_us) / 1000.0;
    if (t != NULL) {
        /* The trace's status is the client's view: 499 when it left before its answer. */
        if (t->status != 0)
            f.status = t->status;
        f.route = (gyre_access_str_t){t->route.p, t->route.len};
        f.provider = (gyre_access_str_t){t->provider.p, t->provider.len};
        f.model = (gyre_access_str_t){t->model.p, t->model.len};
        f.trace_id = (gyre_access_str_t){t->trace_id, strlen(t->trace_id)};
        f.call = 1;
        f.cache_hit = t->cache_hit;
        f.attempts = (int)t->nattempts;
    }
    /* One buffer per thread, reused: a line costs no allocation once the first has grown it. */
    static __thread gyre_buf_t b;
    static __thread int b_ready;
    if (!b_ready) {
        gyre_buf_init(&b, GYRE_ACCESS_LOG_LINE_MAX);
        b_ready = 1;
    }
    gyre_buf_reset(&b);
    if (gyre_access_log_format(&f, &b) == 0)
        submit(e->log, e->worker, b.base, b.len);
    else
        __atomic_add_fetch(&e->log->dropped, 1, __ATOMIC_RELAXED);
}

/* The names of the query's parameters, comma-separated, without their values (which may be keys: Gemini's
 * `?key=`). */
static gyre_access_str_t query_names(h2o_mem_pool_t *pool, const char *q, size_t n)
{
    if (n > GYRE_ACCESS_LOG_FIELD_MAX * 4)
        n = GYRE_ACCESS_LOG_FIELD_MAX * 4;
    char *out = h2o_mem_alloc_pool(pool, n + 1);
    size_t len = 0;
    for (size_t at = 0; at < n;) {
        size_t end = at;
        while (end < n && q[end] != '&')
            end++;
        size_t name_end = at;
        while (name_end < end && q[name_end] != '=')
            name_end++;
        if (name_end > at) {
            if (len != 0)
                out[len++] = ',';
            memcpy(out + len, q + at, name_end - at);
            len += name_end - at;
        }
        at = end + 1;
    }
    return (gyre_access_str_t){out, len};
}

gyre_access_entry_t *gyre_access_log_begin(gyre_access_log_t *log, unsigned worker, h2o_req_t *req)
{
    if (log == NULL)
        return NULL;
    gyre_access_entry_t *e = h2o_mem_alloc_shared(&req->pool, sizeof(*e), on_entry_dispose);
    memset(e, 0, sizeof(*e));
    e->log = log;
    e->worker = worker;
    e->req = req;
    e->time_us = (int64_t)req->timestamps.request_begin_at.tv_sec * 1000000 + req->timestamps.request_begin_at.tv_usec;
    if (e->time_us == 0)
        e->time_us = gyre_trace_now_us();
    ssize_t i = h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("x-request-id"), -1);
    if (i != -1)
        e->request_id = pool_copy(&req->pool, req->res.headers.entries[i].value.base,
                                  req->res.headers.entries[i].value.len, GYRE_ACCESS_LOG_FIELD_MAX);
    struct sockaddr_storage ss;
    socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    char addr[INET6_ADDRSTRLEN + 8] = "";
    if (sl != 0 && ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof(addr));
    else if (sl != 0 && ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof(addr));
    else if (sl != 0 && ss.ss_family == AF_UNIX)
        snprintf(addr, sizeof(addr), "unix");
    e->remote = pool_copy(&req->pool, addr, strlen(addr), GYRE_ACCESS_LOG_FIELD_MAX);
    e->method = pool_copy(&req->pool, req->input.method.base, req->input.method.len, GYRE_ACCESS_LOG_FIELD_MAX);
    /* The path as the client sent it, without its query: the query's values may be secrets (a Gemini
     * client's ?key=), so only the parameters' names are kept. */
    const char *path = req->input.path.base;
    size_t plen = req->input.path.len;
    const char *q = plen != 0 ? memchr(path, '?', plen) : NULL;
    size_t before = q != NULL ? (size_t)(q - path) : plen;
    e->path = pool_copy(&req->pool, path, before, GYRE_ACCESS_LOG_PATH_MAX);
    if (q != NULL)
        e->query_keys = query_names(&req->pool, q + 1, plen - before - 1);
    return e;
}

void gyre_access_entry_note(gyre_access_entry_t *entry, const gyre_trace_t *trace, const char *key_id)
{
    if (entry == NULL)
        return;
    if (trace != NULL)
        entry->trace = trace;
    if (key_id != NULL)
        snprintf(entry->key_id, sizeof(entry->key_id), "%s", key_id);
}
