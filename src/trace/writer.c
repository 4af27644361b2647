/* The trace writer thread (see writer.h for the design). */
#include "trace/writer.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/log.h"
#include "trace/spool.h"

#define BACKOFF_FIRST_MS 10
#define BACKOFF_MAX_MS 1000

struct gyre_writer {
    const gyre_store_ops_t *ops;
    gyre_store_t *store;
    gyre_writer_config_t cfg;
    size_t nqueues;
    gyre_trace_queue_t **queues;

    /* The overflow list: the only state workers share, and only when a ring is full. */
    pthread_mutex_t overflow_mu;
    gyre_trace_t **overflow;
    size_t noverflow;
    _Atomic size_t overflow_depth;

    pthread_t thread;
    int running;
    _Atomic int stop;
    int drain_rc;

    _Atomic uint64_t written, spooled, replayed, dropped, store_errors, spool_records, spool_bytes;

    /* The writer thread's own. */
    gyre_spool_t *spool;
    gyre_trace_t **batch, **spill, **replay;
    uint64_t backoff_until_ms, last_sync_ms;
    unsigned backoff_ms;
    uint64_t drop_logged; /* drops are logged at 1, 2, 4, 8, ...: loud but bounded */
    char err[256];
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int64_t unix_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* How long ago, in ms, the oldest trace of the batch ended (its answer went out just before it was submitted);
 * 0 when none says (ended_us 0: a trace without an end time is never spilled for its age). */
static int64_t oldest_age_ms(gyre_writer_t *w, size_t n)
{
    int64_t oldest = 0;
    for (size_t i = 0; i < n; i++)
        if (w->batch[i]->ended_us > 0 && (oldest == 0 || w->batch[i]->ended_us < oldest))
            oldest = w->batch[i]->ended_us;
    if (oldest == 0)
        return 0;
    int64_t age = unix_us() - oldest;
    return age > 0 ? age / 1000 : 0;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void count_drop(gyre_writer_t *w, const char *why)
{
    uint64_t n = atomic_fetch_add(&w->dropped, 1) + 1;
    /* Power-of-two counts only: a flood of drops must not become a flood of log lines. */
    if ((n & (n - 1)) == 0)
        gyre_logf("gyre: trace writer: DROPPED a trace (%s); %llu dropped so far\n", why, (unsigned long long)n);
}

static size_t backlog(gyre_writer_t *w)
{
    size_t n = atomic_load(&w->overflow_depth);
    for (size_t i = 0; i < w->nqueues; i++)
        n += gyre_trace_queue_depth(w->queues[i]);
    return n;
}

static void publish_spool(gyre_writer_t *w)
{
    gyre_spool_stats_t st;
    gyre_spool_stats(w->spool, &st);
    atomic_store(&w->spool_records, st.records);
    atomic_store(&w->spool_bytes, st.bytes);
}

static void sync_spool(gyre_writer_t *w, uint64_t now)
{
    int rc = gyre_spool_sync(w->spool);
    if (rc != 0)
        gyre_logf("gyre: trace writer: fdatasync of the spool failed: %s\n", strerror(-rc));
    w->last_sync_ms = now;
}

/* Appends traces to the spool and frees them. */
static void spool_all(gyre_writer_t *w, gyre_trace_t **t, size_t n)
{
    uint64_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = gyre_spool_append(w->spool, t[i]);
        if (rc == 0)
            ok++;
        else
            count_drop(w, rc == -ENOSPC ? "the spool is at its size bound" : strerror(-rc));
        free(t[i]);
    }
    if (n == 0)
        return;
    publish_spool(w);
    /* Counted after the spool's figures are published, so a reader that sees the count sees them. */
    atomic_fetch_add(&w->spooled, ok);
}

static void store_failed(gyre_writer_t *w, int rc, uint64_t now)
{
    atomic_fetch_add(&w->store_errors, 1);
    w->backoff_ms = w->backoff_ms == 0 ? BACKOFF_FIRST_MS
                    : w->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                          : w->backoff_ms * 2;
    w->backoff_until_ms = now + w->backoff_ms;
    if (w->backoff_ms == BACKOFF_FIRST_MS || w->backoff_ms == BACKOFF_MAX_MS)
        gyre_logf("gyre: trace writer: the %s store failed a batch (%d: %s); spooling, retrying in %u ms\n",
                  w->ops->name, rc, w->err, w->backoff_ms);
}

/* One write_batch; 0 or its error.  The spool is synced first: the store may take a while. */
static int store_write(gyre_writer_t *w, gyre_trace_t **t, size_t n)
{
    sync_spool(w, now_ms());
    w->err[0] = '\0';
    int rc = w->ops->write_batch(w->store, (const gyre_trace_t *const *)t, n, w->err, sizeof(w->err));
    uint64_t now = now_ms();
    if (rc != 0) {
        store_failed(w, rc, now);
        return rc;
    }
    w->backoff_ms = 0;
    w->backoff_until_ms = 0;
    atomic_fetch_add(&w->written, n);
    return 0;
}

/* Round-robin over the rings so that one busy worker cannot starve the others. */
static size_t collect(gyre_writer_t *w)
{
    size_t n = 0, max = w->cfg.batch_max;
    for (int more = 1; more && n < max;) {
        more = 0;
        for (size_t i = 0; i < w->nqueues && n < max; i++) {
            gyre_trace_t *t = gyre_trace_queue_pop(w->queues[i]);
            if (t != NULL) {
                w->batch[n++] = t;
                more = 1;
            }
        }
    }
    return n;
}

static size_t take_overflow(gyre_writer_t *w)
{
    pthread_mutex_lock(&w->overflow_mu);
    size_t n = w->noverflow;
    gyre_trace_t **t = w->overflow;
    w->overflow = w->spill;
    w->spill = t;
    w->noverflow = 0;
    atomic_store(&w->overflow_depth, 0);
    pthread_mutex_unlock(&w->overflow_mu);
    return n;
}

/* One batch from the spool into the store; 1 when one was written. */
static int replay_one(gyre_writer_t *w)
{
    int n = gyre_spool_read(w->spool, w->replay, w->cfg.batch_max);
    if (n < 0) {
        gyre_logf("gyre: trace writer: reading the spool failed: %s\n", strerror(-n));
        return 0;
    }
    if (n == 0)
        return 0;
    int rc = store_write(w, w->replay, (size_t)n);
    for (int i = 0; i < n; i++)
        free(w->replay[i]);
    if (rc != 0)
        return 0;
    if ((rc = gyre_spool_ack(w->spool)) != 0)
        gyre_logf("gyre: trace writer: truncating the spool failed: %s\n", strerror(-rc));
    publish_spool(w);
    /* Counted after the spool's figures are published, so a reader that sees the count sees the spool emptied. */
    atomic_fetch_add(&w->replayed, (uint64_t)n);
    return 1;
}

static void *writer_main(void *arg)
{
    gyre_writer_t *w = arg;
    uint64_t drain_deadline = 0;
    for (;;) {
        /* Read the flag before draining: once it is seen, a round that finds nothing means nothing is left. */
        int stopping = atomic_load(&w->stop);
        uint64_t now = now_ms();
        if (stopping && drain_deadline == 0)
            drain_deadline = now + w->cfg.drain_timeout_ms;
        size_t n = collect(w);
        size_t nover = take_overflow(w);
        spool_all(w, w->spill, nover);
        size_t left = backlog(w);
        int store_ok = now >= w->backoff_until_ms;
        /* A batch that has already waited spill_age_ms in memory (the store's last write took that long) goes to
         * the spool now: a write(2) there survives a kill -9, the store's next commit might not come in time. */
        int aged = n != 0 && !stopping && oldest_age_ms(w, n) > (int64_t)w->cfg.spill_age_ms;
        if (n != 0) {
            if (store_ok && !aged && (stopping || left <= w->cfg.spill_threshold)) {
                if (store_write(w, w->batch, n) == 0) {
                    for (size_t i = 0; i < n; i++)
                        free(w->batch[i]);
                } else {
                    spool_all(w, w->batch, n);
                }
            } else {
                spool_all(w, w->batch, n);
            }
        }
        int replayed = 0;
        if (atomic_load(&w->spool_records) != 0 && now_ms() >= w->backoff_until_ms &&
            (stopping || left <= w->cfg.batch_max))
            replayed = replay_one(w);
        now = now_ms();
        if (now - w->last_sync_ms >= w->cfg.sync_interval_ms)
            sync_spool(w, now);
        if (stopping && n == 0 && nover == 0 && left == 0) {
            if (atomic_load(&w->spool_records) == 0)
                break;
            if (now >= drain_deadline) {
                gyre_logf("gyre: trace writer: the store still fails after %u ms; %llu traces stay in the spool "
                          "for the next start\n",
                          w->cfg.drain_timeout_ms, (unsigned long long)atomic_load(&w->spool_records));
                w->drain_rc = -EIO;
                break;
            }
        }
        if (n < w->cfg.batch_max && !replayed) {
            unsigned ms = w->cfg.batch_interval_ms;
            if (stopping && now < w->backoff_until_ms && w->backoff_until_ms - now < ms)
                ms = (unsigned)(w->backoff_until_ms - now);
            sleep_ms(ms);
        }
    }
    sync_spool(w, now_ms());
    return NULL;
}

static void config_defaults(gyre_writer_config_t *c, size_t nqueues)
{
    if (c->queue_capacity == 0)
        c->queue_capacity = 4096;
    if (c->batch_max == 0)
        c->batch_max = 512;
    if (c->batch_interval_ms == 0)
        c->batch_interval_ms = 5;
    if (c->spill_threshold == 0)
        c->spill_threshold = c->queue_capacity * nqueues / 2;
    if (c->overflow_max == 0)
        c->overflow_max = 65536;
    if (c->spool_max_bytes == 0)
        c->spool_max_bytes = GYRE_SPOOL_DEFAULT_MAX_BYTES;
    if (c->sync_interval_ms == 0)
        c->sync_interval_ms = 20;
    if (c->drain_timeout_ms == 0)
        c->drain_timeout_ms = 30000;
    if (c->spill_age_ms == 0)
        c->spill_age_ms = 25;
}

int gyre_writer_create(const gyre_store_ops_t *ops, gyre_store_t *store, const char *spool_path, size_t nqueues,
                       const gyre_writer_config_t *config, gyre_writer_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (nqueues == 0) {
        snprintf(err, errlen, "trace writer: no queues");
        return -EINVAL;
    }
    gyre_spool_t *spool;
    gyre_writer_config_t cfg = config != NULL ? *config : (gyre_writer_config_t){0};
    config_defaults(&cfg, nqueues);
    int rc = gyre_spool_open(spool_path, cfg.spool_max_bytes, &spool, err, errlen);
    if (rc != 0)
        return rc;
    gyre_writer_t *w = gyre_calloc(1, sizeof(*w));
    w->ops = ops;
    w->store = store;
    w->cfg = cfg;
    w->nqueues = nqueues;
    w->queues = gyre_calloc(nqueues, sizeof(*w->queues));
    for (size_t i = 0; i < nqueues; i++)
        w->queues[i] = gyre_trace_queue_create(cfg.queue_capacity);
    pthread_mutex_init(&w->overflow_mu, NULL);
    w->overflow = gyre_calloc(cfg.overflow_max, sizeof(*w->overflow));
    w->spill = gyre_calloc(cfg.overflow_max, sizeof(*w->spill));
    w->batch = gyre_calloc(cfg.batch_max, sizeof(*w->batch));
    w->replay = gyre_calloc(cfg.batch_max, sizeof(*w->replay));
    w->spool = spool;
    w->last_sync_ms = now_ms();
    publish_spool(w);
    gyre_spool_stats_t st;
    gyre_spool_stats(spool, &st);
    if (st.recovered != 0)
        gyre_logf("gyre: trace writer: replaying %llu traces left in the spool %s\n", (unsigned long long)st.recovered,
                  spool_path);
    /* The thread starts with every signal blocked: signals are the main thread's (it sigwaits for SIGTERM),
     * and a second SIGTERM arriving while the writer drains must not kill gyre through this thread. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&w->thread, NULL, writer_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "trace writer: starting its thread: %s", strerror(rc));
        w->running = 0;
        gyre_writer_destroy(w);
        return -rc;
    }
    w->running = 1;
    *out = w;
    return 0;
}

gyre_trace_queue_t *gyre_writer_queue(gyre_writer_t *w, size_t i)
{
    return w->queues[i];
}

int gyre_writer_submit(gyre_writer_t *w, size_t i, const gyre_trace_t *t)
{
    gyre_trace_t *c = gyre_trace_copy(t);
    if (gyre_trace_queue_push(w->queues[i], c) == 0)
        return 0;
    pthread_mutex_lock(&w->overflow_mu);
    if (w->noverflow < w->cfg.overflow_max) {
        w->overflow[w->noverflow++] = c;
        atomic_fetch_add(&w->overflow_depth, 1);
        pthread_mutex_unlock(&w->overflow_mu);
        return 0;
    }
    pthread_mutex_unlock(&w->overflow_mu);
    free(c);
    count_drop(w, "the overflow list is full: the writer thread is stuck");
    return -ENOSPC;
}

int gyre_writer_drain_and_stop(gyre_writer_t *w)
{
    if (w->running) {
        atomic_store(&w->stop, 1);
        pthread_join(w->thread, NULL);
        w->running = 0;
    }
    return w->drain_rc;
}

void gyre_writer_destroy(gyre_writer_t *w)
{
    if (w == NULL)
        return;
    gyre_writer_drain_and_stop(w);
    for (size_t i = 0; i < w->nqueues; i++) {
        /* Only when the thread never ran (a failed create) can anything be left here. */
        for (gyre_trace_t *t; (t = gyre_trace_queue_pop(w->queues[i])) != NULL;)
            free(t);
        gyre_trace_queue_destroy(w->queues[i]);
    }
    for (size_t i = 0; i < w->noverflow; i++)
        free(w->overflow[i]);
    free(w->queues);
    free(w->overflow);
    free(w->spill);
    free(w->batch);
    free(w->replay);
    pthread_mutex_destroy(&w->overflow_mu);
    gyre_spool_close(w->spool);
    free(w);
}

void gyre_writer_stats(gyre_writer_t *w, gyre_writer_stats_t *st)
{
    st->queued = backlog(w);
    st->spool_records = atomic_load(&w->spool_records);
    st->spool_bytes = atomic_load(&w->spool_bytes);
    st->written = atomic_load(&w->written);
    st->spooled = atomic_load(&w->spooled);
    st->replayed = atomic_load(&w->replayed);
    st->dropped = atomic_load(&w->dropped);
    st->store_errors = atomic_load(&w->store_errors);
}
