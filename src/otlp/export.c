/*
 * The OTLP exporter thread (see otlp.h).
 *
 * - Each worker has its own ring (trace/queue.h) of owned trace copies, so
 *   an event loop hands a trace over without a lock and never waits.  One
 *   count, `queued`, bounds every ring and the batch in flight together at
 *   queue_max: past it a trace is dropped and counted (and logged at 1, 2,
 *   4, 8, ... drops), which is what happens while the collector is down
 *   for long.
 *
 * - The thread gathers up to batch_max spans and posts them as one
 *   ExportTraceServiceRequest (application/json) when the batch is full or
 *   interval_ms after its first span.  A POST that fails to connect, times
 *   out, or gets 429 or a 5xx is retried after 100 ms, doubling to 5 s, at
 *   most RETRY_MAX times (once at shutdown); then the batch is dropped and
 *   counted.  Any other answer (a 4xx: the collector will not take this
 *   body) drops it at once.
 *
 * - At shutdown (flush_and_stop) the workers have stopped; the thread posts
 *   what is left until the deadline, and drops and counts what it could not
 *   send by then, so SIGTERM is never held for longer than that bound.
 */
#include "otlp/otlp.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/log.h"
#include "otlp/httpc.h"
#include "trace/queue.h"

#define RETRY_MAX 5
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000
/* The largest body one POST carries; a batch that would be larger goes in several POSTs. */
#define POST_BODY_MAX ((size_t)32 << 20)
/* How often an idle thread looks at the rings. */
#define POLL_MS 20

struct gyre_otlp_exporter {
    const gyre_config_t *config;
    gyre_otlp_conf_t conf; /* config->otlp with the defaults filled in (strings still the config's) */
    gyre_httpc_url_t url;
    SSL_CTX *ssl;
    gyre_httpc_header_t *headers;
    size_t nqueues;
    gyre_trace_queue_t **queues;

    pthread_t thread;
    int running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic int stop;
    _Atomic int64_t stop_deadline_ms;

    _Atomic uint64_t exported, dropped, failed_posts;
    _Atomic size_t queued;

    /* The thread's own. */
    gyre_trace_t **batch;
    size_t nbatch;
    int64_t batch_started_ms;
    gyre_buf_t body;
    uint64_t fail_logged;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps up to `ms`, waking early when stop is asked for. */
static void nap(gyre_otlp_exporter_t *e, int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&e->mu);
    if (!atomic_load(&e->stop))
        pthread_cond_timedwait(&e->cv, &e->mu, &ts);
    pthread_mutex_unlock(&e->mu);
}

static void count_drops(gyre_otlp_exporter_t *e, uint64_t n, const char *why)
{
    if (n == 0)
        return;
    uint64_t before = atomic_fetch_add(&e->dropped, n), after = before + n;
    /* Logged when the count crosses a power of two: loud, but bounded. */
    uint64_t p = 1;
    while (p <= before)
        p <<= 1;
    if (p <= after)
        gyre_logf("gyre: otlp: DROPPED %llu span(s) (%s); %llu dropped so far\n", (unsigned long long)n, why,
                  (unsigned long long)after);
}

/* Frees the first n spans of the batch and moves the rest up. */
static void batch_consume(gyre_otlp_exporter_t *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(e->batch[i]);
    memmove(e->batch, e->batch + n, (e->nbatch - n) * sizeof(*e->batch));
    e->nbatch -= n;
    atomic_fetch_sub(&e->queued, n);
    e->batch_started_ms = e->nbatch != 0 ? now_ms() : 0;
}

static void collect(gyre_otlp_exporter_t *e)
{
    for (int more = 1; more && e->nbatch < e->conf.batch_max;) {
        more = 0;
        for (size_t i = 0; i < e->nqueues && e->nbatch < e->conf.batch_max; i++) {
            gyre_trace_t *t = gyre_trace_queue_pop(e->queues[i]);
            if (t != NULL) {
                e->batch[e->nbatch++] = t;
                more = 1;
            }
        }
    }
    if (e->nbatch != 0 && e->batch_started_ms == 0)
        e->batch_started_ms = now_ms();
}

static void log_failure(gyre_otlp_exporter_t *e, int rc, int status, const char *err, const char *then)
{
    uint64_t n = atomic_load(&e->failed_posts);
    if ((n & (n - 1)) != 0)
        return;
    if (rc != 0)
        gyre_logf("gyre: otlp: POST to %s:%u%s failed: %s; %s (%llu failed so far)\n", e->url.host, e->url.port,
                  e->url.path, err[0] ? err : strerror(-rc), then, (unsigned long long)n);
    else
        gyre_logf("gyre: otlp: POST to %s:%u%s answered %d; %s (%llu failed so far)\n", e->url.host, e->url.port,
                  e->url.path, status, then, (unsigned long long)n);
}

/* Posts the head of the batch (as much as one body holds), retrying as the header comment says. */
static void send_some(gyre_otlp_exporter_t *e)
{
    size_t n = 0;
    gyre_buf_reset(&e->body);
    if (gyre_otlp_encode_request(&e->body, (const gyre_trace_t *const *)e->batch, e->nbatch, e->conf.service_name,
                                 e->config, &n) != 0) {
        count_drops(e, 1, "one span is larger than a POST may be");
        batch_consume(e, 1);
        return;
    }
    unsigned backoff = BACKOFF_FIRST_MS;
    for (int attempt = 0;; attempt++) {
        unsigned timeout = (unsigned)e->conf.timeout_ms;
        if (atomic_load(&e->stop)) {
            int64_t left = atomic_load(&e->stop_deadline_ms) - now_ms();
            if (left <= 0) {
                count_drops(e, n, "shutting down and out of time to send them");
                break;
            }
            if ((int64_t)timeout > left)
                timeout = (unsigned)left;
        }
        int status = 0;
        char err[256];
        int rc = gyre_httpc_post(&e->url, e->ssl, e->headers, e->conf.nheaders, "application/json", e->body.base,
                                 e->body.len, timeout, &status, err, sizeof(err));
        if (rc == 0 && status >= 200 && status < 300) {
            atomic_fetch_add(&e->exported, n);
            break;
        }
        atomic_fetch_add(&e->failed_posts, 1);
        int retry = rc != 0 || status == 429 || status >= 500;
        if (!retry) {
            log_failure(e, rc, status, err, "the collector refused the batch");
            count_drops(e, n, "the collector refused them");
            break;
        }
        /* At shutdown one retry is all a batch gets: the process is on its way out, and the bound is for all. */
        if (attempt == RETRY_MAX || (atomic_load(&e->stop) && attempt >= 1)) {
            log_failure(e, rc, status, err, "giving up on the batch");
            count_drops(e, n, "the collector kept failing");
            break;
        }
        log_failure(e, rc, status, err, "retrying");
        if (atomic_load(&e->stop)) {
            int64_t left = atomic_load(&e->stop_deadline_ms) - now_ms();
            int64_t wait = backoff < left ? backoff : left;
            struct timespec ts = {wait / 1000, (wait % 1000) * 1000000};
            if (wait > 0)
                nanosleep(&ts, NULL);
        } else {
            nap(e, backoff);
        }
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    batch_consume(e, n);
}

static size_t rings_depth(gyre_otlp_exporter_t *e)
{
    size_t n = 0;
    for (size_t i = 0; i < e->nqueues; i++)
        n += gyre_trace_queue_depth(e->queues[i]);
    return n;
}

static void *export_main(void *arg)
{
    gyre_otlp_exporter_t *e = arg;
    for (;;) {
        /* Read before collecting: once seen, a round that finds nothing means nothing is left. */
        int stopping = atomic_load(&e->stop);
        collect(e);
        int64_t now = now_ms();
        if (stopping && now >= atomic_load(&e->stop_deadline_ms)) {
            size_t left = e->nbatch;
            batch_consume(e, e->nbatch);
            for (size_t i = 0; i < e->nqueues; i++)
                for (gyre_trace_t *t; (t = gyre_trace_queue_pop(e->queues[i])) != NULL; left++) {
                    free(t);
                    atomic_fetch_sub(&e->queued, 1);
                }
            count_drops(e, left, "shutting down and out of time to send them");
            break;
        }
        if (e->nbatch != 0 && (stopping || e->nbatch >= e->conf.batch_max ||
                               now - e->batch_started_ms >= (int64_t)e->conf.interval_ms)) {
            send_some(e);
            continue;
        }
        if (stopping && e->nbatch == 0 && rings_depth(e) == 0)
            break;
        int64_t wait = POLL_MS;
        if (e->nbatch != 0 && e->batch_started_ms + (int64_t)e->conf.interval_ms - now < wait)
            wait = e->batch_started_ms + (int64_t)e->conf.interval_ms - now;
        nap(e, wait);
    }
    return NULL;
}

int gyre_otlp_exporter_create(const gyre_config_t *config, size_t nqueues, gyre_otlp_exporter_t **out, char *err,
                              size_t errlen)
{
    *out = NULL;
    const gyre_otlp_conf_t *c = &config->otlp;
    gyre_httpc_url_t url;
    if (c->endpoint == NULL || nqueues == 0) {
        snprintf(err, errlen, "otlp: no endpoint");
        return -EINVAL;
    }
    if (gyre_httpc_parse_url(c->endpoint, &url) != 0) {
        snprintf(err, errlen, "otlp.endpoint '%s' is not an http(s)://host[:port]/path URL", c->endpoint);
        return -EINVAL;
    }
    SSL_CTX *ssl = NULL;
    if (url.https && (ssl = gyre_httpc_ssl_create(url.host, c->ca_file, err, errlen)) == NULL)
        return -EINVAL;
    gyre_otlp_exporter_t *e = gyre_calloc(1, sizeof(*e));
    e->config = config;
    e->conf = *c;
    if (e->conf.timeout_ms == 0)
        e->conf.timeout_ms = 10000;
    if (e->conf.batch_max == 0)
        e->conf.batch_max = 512;
    if (e->conf.interval_ms == 0)
        e->conf.interval_ms = 1000;
    if (e->conf.queue_max == 0)
        e->conf.queue_max = 65536;
    if (e->conf.service_name == NULL)
        e->conf.service_name = "gyre";
    e->url = url;
    e->ssl = ssl;
    e->headers = gyre_calloc(c->nheaders ? c->nheaders : 1, sizeof(*e->headers));
    for (size_t i = 0; i < c->nheaders; i++)
        e->headers[i] = (gyre_httpc_header_t){c->header_names[i], c->header_values[i]};
    e->nqueues = nqueues;
    e->queues = gyre_calloc(nqueues, sizeof(*e->queues));
    /* The shared count is the bound; each ring only needs room for its share of it, with slack for an uneven load. */
    size_t cap = e->conf.queue_max / nqueues * 2;
    if (cap < 1024)
        cap = 1024;
    if (cap > e->conf.queue_max)
        cap = e->conf.queue_max;
    for (size_t i = 0; i < nqueues; i++)
        e->queues[i] = gyre_trace_queue_create(cap);
    e->batch = gyre_calloc(e->conf.batch_max, sizeof(*e->batch));
    gyre_buf_init(&e->body, POST_BODY_MAX);
    pthread_mutex_init(&e->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e->cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&e->thread, NULL, export_main, e);
    if (rc != 0) {
        snprintf(err, errlen, "otlp: starting the exporter thread: %s", strerror(rc));
        gyre_otlp_exporter_destroy(e);
        return -rc;
    }
    e->running = 1;
    *out = e;
    return 0;
}

int gyre_otlp_exporter_submit(gyre_otlp_exporter_t *e, size_t i, const gyre_trace_t *t)
{
    if (atomic_fetch_add(&e->queued, 1) >= e->conf.queue_max) {
        atomic_fetch_sub(&e->queued, 1);
        count_drops(e, 1, "the export queue is full (otlp.queue_max): the collector is slow or down");
        return -ENOSPC;
    }
    gyre_trace_t *c = gyre_trace_copy(t);
    if (gyre_trace_queue_push(e->queues[i], c) != 0) {
        free(c);
        atomic_fetch_sub(&e->queued, 1);
        count_drops(e, 1, "this worker's export ring is full: the collector is slow or down");
        return -ENOSPC;
    }
    return 0;
}

int gyre_otlp_exporter_flush_and_stop(gyre_otlp_exporter_t *e, unsigned timeout_ms)
{
    if (!e->running)
        return 0;
    uint64_t dropped_before = atomic_load(&e->dropped);
    atomic_store(&e->stop_deadline_ms, now_ms() + timeout_ms);
    pthread_mutex_lock(&e->mu);
    atomic_store(&e->stop, 1);
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->thread, NULL);
    e->running = 0;
    gyre_otlp_stats_t st;
    gyre_otlp_exporter_stats(e, &st);
    gyre_logf("gyre: otlp: stopped (%llu spans exported, %llu dropped, %llu failed posts)\n",
              (unsigned long long)st.exported, (unsigned long long)st.dropped, (unsigned long long)st.failed_posts);
    return st.dropped != dropped_before ? -ETIMEDOUT : 0;
}

void gyre_otlp_exporter_destroy(gyre_otlp_exporter_t *e)
{
    if (e == NULL)
        return;
    gyre_otlp_exporter_flush_and_stop(e, 0);
    for (size_t i = 0; i < e->nqueues; i++) {
        /* Only when the thread never ran can anything be left here. */
        for (gyre_trace_t *t; (t = gyre_trace_queue_pop(e->queues[i])) != NULL;)
            free(t);
        gyre_trace_queue_destroy(e->queues[i]);
    }
    for (size_t i = 0; i < e->nbatch; i++)
        free(e->batch[i]);
    free(e->queues);
    free(e->batch);
    free(e->headers);
    gyre_buf_dispose(&e->body);
    if (e->ssl != NULL)
        SSL_CTX_free(e->ssl);
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

void gyre_otlp_exporter_stats(gyre_otlp_exporter_t *e, gyre_otlp_stats_t *st)
{
    st->exported = atomic_load(&e->exported);
    st->dropped = atomic_load(&e->dropped);
    st->failed_posts = atomic_load(&e->failed_posts);
    st->queued = atomic_load(&e->queued);
}
