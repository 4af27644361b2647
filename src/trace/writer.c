/* The trace writer and indexer threads (see writer.h for the design). */
#include "trace/writer.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "trace/spool.h"

#define BACKOFF_FIRST_MS 10
#define BACKOFF_MAX_MS 1000
/* The writer thread drains at most this many traces between two looks at the clock (fsync_ms). */
#define APPEND_ROUND 1024
/* An index lag past this makes /healthz say so. */
#define LAG_DEGRADED_MS 60000
/* The indexer's niceness: below the workers, which serve traffic. */
#define INDEXER_NICE 10
/* The writer thread's: above them, when allowed (writer_main). */
#define WRITER_NICE -5

struct gyre_writer {
    const gyre_store_ops_t *ops;
    gyre_store_t *store;
    gyre_writer_config_t cfg;
    size_t nqueues;
    gyre_trace_queue_t **queues;
    gyre_tracelog_t *log;

    /* The overflow list: the only state workers share, and only when a ring is full. */
    pthread_mutex_t overflow_mu;
    gyre_trace_t **overflow, **spill;
    size_t noverflow;
    _Atomic size_t overflow_depth;

    pthread_t thread, indexer;
    int running, indexing;
    _Atomic int stop, istop;
    int drain_rc;

    _Atomic uint64_t logged, written, dropped, dropped_bound, dropped_disk, dropped_overflow, store_errors;
    _Atomic uint64_t lag_ms, retired;
    _Atomic uint64_t pos_seq, pos_off; /* the checkpoint's position, for stats on other threads */
    _Atomic int index_corrupt, store_failing;
    pthread_mutex_t msg_mu; /* guards store_msg */
    char store_msg[256];

    /* The writer thread's own. */
    gyre_trace_t **batch;
    uint64_t last_sync_ms;
    uint64_t drop_logged;

    /* The indexer's own. */
    gyre_tracelog_reader_t *reader;
    gyre_trace_t **ibatch;
    gyre_tracelog_checkpoint_t cp;
    unsigned backoff_ms;
    uint64_t backoff_until_ms, last_retention_ms;
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

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Why the log refused a trace, in words an operator acts on. */
static const char *refusal(int e)
{
    switch (e) {
    case EFBIG:
        return "the trace log is at its size bound (store.max_bytes) and the index is too far behind to retire a "
               "segment";
    case ENOSPC:
        return "the disk is full (ENOSPC)";
    case EDQUOT:
        return "the disk quota is exhausted (EDQUOT)";
    case EROFS:
        return "the file system is read-only (EROFS)";
    case EACCES:
    case EPERM:
        return "permission denied writing the trace log";
    default:
        return strerror(e);
    }
}

static void count_drop(gyre_writer_t *w, int e)
{
    uint64_t n = atomic_fetch_add(&w->dropped, 1) + 1;
    if (e == EFBIG)
        atomic_fetch_add(&w->dropped_bound, 1);
    else if (e == 0)
        atomic_fetch_add(&w->dropped_overflow, 1);
    else
        atomic_fetch_add(&w->dropped_disk, 1);
    /* Power-of-two counts only: a flood of drops must not become a flood of log lines. */
    if ((n & (n - 1)) == 0)
        gyre_logf("gyre: trace log %s: DROPPED a trace: %s; %" PRIu64 " dropped so far\n",
                  w->log != NULL ? gyre_tracelog_dir(w->log) : "?",
                  e == 0 ? "the overflow list is full: the writer thread is stuck" : refusal(e), n);
}

static size_t backlog(gyre_writer_t *w)
{
    size_t n = atomic_load(&w->overflow_depth);
    for (size_t i = 0; i < w->nqueues; i++)
        n += gyre_trace_queue_depth(w->queues[i]);
    return n;
}

/* ---- the writer thread: rings -> log ---- */

static void append_all(gyre_writer_t *w, gyre_trace_t **t, size_t n)
{
    uint64_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = gyre_tracelog_append(w->log, t[i]);
        if (rc == 0)
            ok++;
        else
            count_drop(w, -rc);
        free(t[i]);
    }
    atomic_fetch_add(&w->logged, ok);
}

/* Round-robin over the rings so that one busy worker cannot starve the others. */
static size_t collect(gyre_writer_t *w, size_t max)
{
    size_t n = 0;
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

static void sync_log(gyre_writer_t *w, uint64_t now)
{
    int rc = gyre_tracelog_sync(w->log);
    if (rc != 0)
        gyre_logf("gyre: trace log %s: fdatasync failed: %s\n", gyre_tracelog_dir(w->log), strerror(-rc));
    w->last_sync_ms = now;
}

static void *writer_main(void *arg)
{
    gyre_writer_t *w = arg;
    /* The kill -9 bound is how soon this thread gets the CPU after a trace is queued: above the workers when the
     * process may (CAP_SYS_NICE, root), as nginx's worker_priority; its work per trace is a few microseconds. */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), WRITER_NICE) != 0) {
        /* Not permitted: it runs at the workers' priority, and a machine saturated by other work stretches the bound. */
    }
    for (;;) {
        /* Read the flag before draining: once it is seen, a round that finds nothing means nothing is left. */
        int stopping = atomic_load(&w->stop);
        size_t nover = take_overflow(w);
        append_all(w, w->spill, nover);
        size_t n = collect(w, APPEND_ROUND);
        append_all(w, w->batch, n);
        uint64_t now = now_ms();
        if (now - w->last_sync_ms >= w->cfg.fsync_ms)
            sync_log(w, now);
        if (stopping && n == 0 && nover == 0 && backlog(w) == 0)
            break;
        if (n < APPEND_ROUND)
            sleep_ms(w->cfg.poll_ms);
    }
    sync_log(w, now_ms());
    return NULL;
}

/* ---- the indexer thread: log -> store ---- */

static void set_store_msg(gyre_writer_t *w, const char *msg)
{
    pthread_mutex_lock(&w->msg_mu);
    snprintf(w->store_msg, sizeof(w->store_msg), "%s", msg);
    pthread_mutex_unlock(&w->msg_mu);
}

static void save_checkpoint(gyre_writer_t *w)
{
    atomic_store(&w->pos_seq, w->cp.pos.seq);
    atomic_store(&w->pos_off, w->cp.pos.off);
    int rc = gyre_tracelog_checkpoint_save(gyre_tracelog_dir(w->log), &w->cp);
    if (rc != 0) {
        static _Atomic uint64_t fails;
        uint64_t n = atomic_fetch_add(&fails, 1) + 1;
        if ((n & (n - 1)) == 0)
            gyre_logf("gyre: trace log %s: writing index.pos failed: %s (the index re-reads from the last one "
                      "saved after a restart)\n",
                      gyre_tracelog_dir(w->log), strerror(-rc));
    }
}

static void store_failed(gyre_writer_t *w, int rc, uint64_t now)
{
    atomic_fetch_add(&w->store_errors, 1);
    atomic_store(&w->store_failing, 1);
    set_store_msg(w, w->err);
    if (rc == -EBADMSG) {
        /* The flag for the next start is on disk before anyone can read index_corrupt (stats, /healthz). */
        w->cp.flags |= GYRE_TRACELOG_REBUILD;
        save_checkpoint(w);
        atomic_store(&w->index_corrupt, 1);
        gyre_logf("gyre: trace index (the %s store) is CORRUPT: %s; indexing stops, every trace stays in the log "
                  "%s, and the next start rebuilds the index from it (or run `gyre store reindex`)\n",
                  w->ops->name, w->err, gyre_tracelog_dir(w->log));
        return;
    }
    w->backoff_ms = w->backoff_ms == 0                     ? BACKOFF_FIRST_MS
                    : w->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                         : w->backoff_ms * 2;
    w->backoff_until_ms = now + w->backoff_ms;
    if (w->backoff_ms == BACKOFF_FIRST_MS || w->backoff_ms == BACKOFF_MAX_MS)
        gyre_logf("gyre: trace indexer: the %s store failed a batch (%d: %s); the traces wait in the log, retrying "
                  "in %u ms\n",
                  w->ops->name, rc, w->err, w->backoff_ms);
}

/* One batch from the log into the store; the number indexed (0: caught up, or the store failed). */
static size_t index_one(gyre_writer_t *w)
{
    gyre_tracelog_pos_t pos = w->cp.pos;
    int n = gyre_tracelog_read(w->reader, &pos, w->ibatch, w->cfg.index_batch_max, 0);
    if (n < 0) {
        snprintf(w->err, sizeof(w->err), "reading the trace log: %s", strerror(-n));
        store_failed(w, n, now_ms());
        return 0;
    }
    if (n == 0) {
        atomic_store(&w->lag_ms, 0);
        if (pos.seq != w->cp.pos.seq || pos.off != w->cp.pos.off) {
            w->cp.pos = pos; /* skipped bad bytes, or moved past a dropped segment */
            save_checkpoint(w);
        }
        return 0;
    }
    /* A trace without an end time (ended_us 0) says nothing about the lag. */
    int64_t age = w->ibatch[0]->ended_us > 0 ? unix_us() - w->ibatch[0]->ended_us : 0;
    atomic_store(&w->lag_ms, age > 0 ? (uint64_t)age / 1000 : 0);
    w->err[0] = '\0';
    int rc = w->ops->write_batch(w->store, (const gyre_trace_t *const *)w->ibatch, (size_t)n, w->err, sizeof(w->err));
    for (int i = 0; i < n; i++)
        free(w->ibatch[i]);
    if (rc != 0) {
        store_failed(w, rc, now_ms());
        return 0;
    }
    w->backoff_ms = 0;
    w->backoff_until_ms = 0;
    atomic_store(&w->store_failing, 0);
    w->cp.pos = pos;
    save_checkpoint(w);
    atomic_fetch_add(&w->written, (uint64_t)n);
    return (size_t)n;
}

/* Drops one segment if one is due (writer.h); 1 when one was. */
static int retire_one(gyre_writer_t *w)
{
    gyre_tracelog_segment_info_t seg[2];
    size_t nsegs = gyre_tracelog_segments(w->log, seg, 2);
    if (nsegs < 2 || seg[0].seq >= w->cp.pos.seq)
        return 0; /* the active segment stays, and so does one not wholly indexed */
    gyre_tracelog_stats_t ls;
    gyre_tracelog_stats(w->log, &ls);
    uint64_t max = w->cfg.log.max_bytes != 0 ? w->cfg.log.max_bytes : GYRE_TRACELOG_DEFAULT_MAX_BYTES;
    uint64_t seg_bytes = seg[0].bytes;
    int over = ls.bytes + seg_bytes > max; /* keep room for one more segment */
    int old = w->cfg.retention_us >= 0 && unix_us() - seg[0].mtime_us > w->cfg.retention_us;
    if (!over && !old)
        return 0;
    if (w->ops->delete_traces != NULL) {
        gyre_tracelog_pos_t pos = {seg[0].seq, 0};
        for (;;) {
            int n = gyre_tracelog_read(w->reader, &pos, w->ibatch, w->cfg.index_batch_max, 1);
            if (n <= 0) {
                if (n < 0) {
                    gyre_logf("gyre: trace log retention: reading segment %016" PRIx64 ": %s; kept\n", seg[0].seq,
                              strerror(-n));
                    return 0;
                }
                break;
            }
            w->err[0] = '\0';
            int rc = w->ops->delete_traces(w->store, (const gyre_trace_t *const *)w->ibatch, (size_t)n, w->err,
                                           sizeof(w->err));
            for (int i = 0; i < n; i++)
                free(w->ibatch[i]);
            if (rc != 0) {
                store_failed(w, rc, now_ms());
                return 0;
            }
        }
    }
    int rc = gyre_tracelog_remove(w->log, seg[0].seq);
    if (rc != 0) {
        gyre_logf("gyre: trace log retention: removing segment %016" PRIx64 ": %s\n", seg[0].seq, strerror(-rc));
        return 0;
    }
    atomic_fetch_add(&w->retired, 1);
    if (w->ops->reclaim != NULL && (rc = w->ops->reclaim(w->store, w->err, sizeof(w->err))) != 0)
        gyre_logf("gyre: trace index: giving freed pages back failed: %s\n", w->err);
    return 1;
}

static void *indexer_main(void *arg)
{
    gyre_writer_t *w = arg;
    /* Below the workers: indexing waits when the CPU is needed for traffic (the log holds what waits). */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), INDEXER_NICE) != 0) {
        /* Best effort: without it the indexer competes at the workers' priority. */
    }
    if (w->cfg.check_at_start && w->ops->check != NULL) {
        /* A large database is checked here, while gyre serves, rather than before it listens. */
        w->err[0] = '\0';
        if (w->ops->check(w->store, w->err, sizeof(w->err)) == -EBADMSG)
            store_failed(w, -EBADMSG, now_ms());
    }
    uint64_t drain_deadline = 0;
    for (;;) {
        int stopping = atomic_load(&w->istop);
        uint64_t now = now_ms();
        if (stopping && drain_deadline == 0)
            drain_deadline = now + w->cfg.drain_timeout_ms;
        size_t n = 0;
        if (!atomic_load(&w->index_corrupt) && now >= w->backoff_until_ms) {
            n = index_one(w);
            if (now - w->last_retention_ms >= w->cfg.retention_check_ms) {
                w->last_retention_ms = now;
                while (!atomic_load(&w->index_corrupt) && retire_one(w))
                    ;
            }
        }
        if (stopping) {
            gyre_tracelog_pos_t end = gyre_tracelog_end(w->log);
            int caught_up = n == 0 && !atomic_load(&w->store_failing) &&
                            gyre_tracelog_bytes_after(w->log, w->cp.pos) == 0 && end.seq >= w->cp.pos.seq;
            if (caught_up)
                break;
            if (atomic_load(&w->index_corrupt) || now_ms() >= drain_deadline) {
                gyre_logf("gyre: trace indexer: stopping with %" PRIu64 " bytes of the log not indexed; the next "
                          "start indexes them\n",
                          gyre_tracelog_bytes_after(w->log, w->cp.pos));
                w->drain_rc = -EIO;
                break;
            }
        }
        if (n < w->cfg.index_batch_max) {
            unsigned ms = w->cfg.index_interval_ms;
            if (w->backoff_until_ms > now && w->backoff_until_ms - now < ms)
                ms = (unsigned)(w->backoff_until_ms - now);
            sleep_ms(stopping && ms > 5 ? 5 : ms);
        }
    }
    return NULL;
}

/* ---- create, submit, stop ---- */

static void config_defaults(gyre_writer_config_t *c)
{
    if (c->queue_capacity == 0)
        c->queue_capacity = 4096;
    if (c->overflow_max == 0)
        c->overflow_max = 65536;
    if (c->poll_ms == 0)
        c->poll_ms = 1;
    if (c->fsync_ms == 0)
        c->fsync_ms = 20;
    if (c->index_batch_max == 0)
        c->index_batch_max = 2048;
    if (c->index_interval_ms == 0)
        c->index_interval_ms = 20;
    if (c->drain_timeout_ms == 0)
        c->drain_timeout_ms = 30000;
    if (c->retention_us == 0)
        c->retention_us = GYRE_TRACELOG_DEFAULT_RETENTION_US;
    if (c->retention_check_ms == 0)
        c->retention_check_ms = 1000;
}

/* Moves what an older gyre left in its spool into the log, then removes the spool (writer.h). */
static int import_spool(gyre_writer_t *w, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (path == NULL || stat(path, &st) != 0)
        return 0;
    gyre_spool_t *sp;
    int rc = gyre_spool_open(path, 0, &sp, err, errlen);
    if (rc == -EBUSY)
        return rc;
    if (rc != 0) {
        /* Not a spool we can read (a corrupt header): kept aside for a person, never a reason not to start. */
        char aside[4200];
        snprintf(aside, sizeof(aside), "%s.unreadable", path);
        rename(path, aside);
        gyre_logf("gyre: %s; moved to %s, gyre starts without it\n", err, aside);
        return 0;
    }
    uint64_t n = 0;
    for (int got; (got = gyre_spool_read(sp, w->ibatch, w->cfg.index_batch_max)) > 0;) {
        for (int i = 0; i < got; i++) {
            if (gyre_tracelog_append(w->log, w->ibatch[i]) == 0)
                n++;
            free(w->ibatch[i]);
        }
        gyre_spool_ack(sp);
    }
    gyre_tracelog_sync(w->log);
    gyre_spool_close(sp);
    unlink(path);
    gyre_logf("gyre: trace log %s: imported %" PRIu64 " traces from the spool %s an older gyre left\n",
              gyre_tracelog_dir(w->log), n, path);
    return 0;
}

int gyre_writer_create(const gyre_store_ops_t *ops, gyre_store_t *store, const char *log_dir, const char *legacy_spool,
                       size_t nqueues, const gyre_writer_config_t *config, gyre_writer_t **out, char *err,
                       size_t errlen)
{
    *out = NULL;
    if (nqueues == 0) {
        snprintf(err, errlen, "trace writer: no queues");
        return -EINVAL;
    }
    gyre_writer_config_t cfg = config != NULL ? *config : (gyre_writer_config_t){0};
    config_defaults(&cfg);
    gyre_tracelog_t *log;
    int rc = gyre_tracelog_open(log_dir, &cfg.log, 0, &log, err, errlen);
    if (rc != 0)
        return rc;
    gyre_writer_t *w = gyre_calloc(1, sizeof(*w));
    w->ops = ops;
    w->store = store;
    w->cfg = cfg;
    w->log = log;
    w->nqueues = nqueues;
    w->queues = gyre_calloc(nqueues, sizeof(*w->queues));
    for (size_t i = 0; i < nqueues; i++)
        w->queues[i] = gyre_trace_queue_create(cfg.queue_capacity);
    pthread_mutex_init(&w->overflow_mu, NULL);
    pthread_mutex_init(&w->msg_mu, NULL);
    w->overflow = gyre_calloc(cfg.overflow_max, sizeof(*w->overflow));
    w->spill = gyre_calloc(cfg.overflow_max, sizeof(*w->spill));
    w->batch = gyre_calloc(APPEND_ROUND, sizeof(*w->batch));
    w->ibatch = gyre_calloc(cfg.index_batch_max, sizeof(*w->ibatch));
    w->reader = gyre_tracelog_reader_create(log);
    w->last_sync_ms = now_ms();
    if ((rc = import_spool(w, legacy_spool, err, errlen)) != 0) {
        gyre_writer_destroy(w);
        return rc;
    }

    /* Where the index stands.  An index that holds nothing starts from the log's start (a new or rebuilt
     * store); otherwise from the start of the checkpoint's segment (writer.h: a power cut). */
    gyre_tracelog_checkpoint_load(log_dir, &w->cp);
    gyre_tracelog_pos_t start = gyre_tracelog_start(log);
    int64_t held = ops->count != NULL ? ops->count(store) : -1;
    if (w->cp.pos.seq < start.seq || held == 0)
        w->cp.pos = start;
    else
        w->cp.pos.off = GYRE_TRACELOG_SEGMENT_HEADER_SIZE;
    w->cp.flags &= ~GYRE_TRACELOG_REBUILD; /* the caller rebuilt the store when it was asked for */
    atomic_store(&w->pos_seq, w->cp.pos.seq);
    atomic_store(&w->pos_off, w->cp.pos.off);

    /* The threads start with every signal blocked: signals are the main thread's (it sigwaits for SIGTERM),
     * and a second SIGTERM arriving while the writer drains must not kill gyre through these threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&w->thread, NULL, writer_main, w);
    if (rc == 0) {
        w->running = 1;
        rc = pthread_create(&w->indexer, NULL, indexer_main, w);
        if (rc == 0)
            w->indexing = 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "trace writer: starting its threads: %s", strerror(rc));
        gyre_writer_destroy(w);
        return -rc;
    }
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
    count_drop(w, 0);
    return -ENOSPC;
}

int gyre_writer_drain_and_stop(gyre_writer_t *w)
{
    if (w->running) {
        atomic_store(&w->stop, 1);
        pthread_join(w->thread, NULL);
        w->running = 0;
    }
    if (w->indexing) {
        atomic_store(&w->istop, 1);
        pthread_join(w->indexer, NULL);
        w->indexing = 0;
    }
    return w->drain_rc;
}

void gyre_writer_destroy(gyre_writer_t *w)
{
    if (w == NULL)
        return;
    gyre_writer_drain_and_stop(w);
    for (size_t i = 0; i < w->nqueues; i++) {
        /* Only when the threads never ran (a failed create) can anything be left here. */
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
    free(w->ibatch);
    gyre_tracelog_reader_destroy(w->reader);
    pthread_mutex_destroy(&w->overflow_mu);
    pthread_mutex_destroy(&w->msg_mu);
    gyre_tracelog_close(w->log);
    free(w);
}

void gyre_writer_stats(gyre_writer_t *w, gyre_writer_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    st->queued = backlog(w);
    st->logged = atomic_load(&w->logged);
    st->written = atomic_load(&w->written);
    st->dropped = atomic_load(&w->dropped);
    st->dropped_bound = atomic_load(&w->dropped_bound);
    st->dropped_disk = atomic_load(&w->dropped_disk);
    st->dropped_overflow = atomic_load(&w->dropped_overflow);
    st->store_errors = atomic_load(&w->store_errors);
    gyre_tracelog_stats_t ls;
    gyre_tracelog_stats(w->log, &ls);
    st->log_segments = ls.segments;
    st->log_bytes = ls.bytes;
    st->last_log_errno = ls.last_errno;
    gyre_tracelog_pos_t pos = {atomic_load(&w->pos_seq), atomic_load(&w->pos_off)};
    st->index_lag_bytes = gyre_tracelog_bytes_after(w->log, pos);
    st->index_lag_ms = atomic_load(&w->lag_ms);
    gyre_tracelog_damage_t d;
    gyre_tracelog_damage(w->log, &d);
    st->damaged_regions = d.regions;
    st->damaged_bytes = d.bytes;
    st->segments_retired = atomic_load(&w->retired);
    st->index_corrupt = atomic_load(&w->index_corrupt);
}

static void problem(gyre_buf_t *out, int *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void problem(gyre_buf_t *out, int *n, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if ((*n)++ != 0)
        gyre_buf_appends(out, ",");
    gyre_buf_append_json_string(out, msg, strlen(msg));
}

int gyre_writer_health(gyre_writer_t *w, gyre_buf_t *out)
{
    gyre_writer_stats_t st;
    gyre_writer_stats(w, &st);
    int n = 0;
    const char *dir = gyre_tracelog_dir(w->log);
    if (st.last_log_errno != 0)
        problem(out, &n, "trace log %s: new traces are DROPPED: %s (%" PRIu64 " dropped so far)", dir,
                refusal(st.last_log_errno), st.dropped);
    if (st.index_corrupt) {
        char msg[256];
        pthread_mutex_lock(&w->msg_mu);
        snprintf(msg, sizeof(msg), "%s", w->store_msg);
        pthread_mutex_unlock(&w->msg_mu);
        problem(out, &n, "trace index is corrupt (%s): indexing stopped; traces are kept in the log and the next "
                         "start rebuilds the index from it", msg);
    } else if (atomic_load(&w->store_failing)) {
        char msg[256];
        pthread_mutex_lock(&w->msg_mu);
        snprintf(msg, sizeof(msg), "%s", w->store_msg);
        pthread_mutex_unlock(&w->msg_mu);
        problem(out, &n, "trace index is failing (%s): traces wait in the log", msg);
    }
    if (st.index_lag_ms > LAG_DEGRADED_MS)
        problem(out, &n, "trace index lags the log by %" PRIu64 " s (%" PRIu64 " bytes)", st.index_lag_ms / 1000,
                st.index_lag_bytes);
    gyre_tracelog_damage_t d;
    gyre_tracelog_damage(w->log, &d);
    if (d.bad_headers != 0)
        problem(out, &n, "trace log %s: %" PRIu64 " segment header(s) corrupt (their records are read by their own "
                         "checks)", dir, d.bad_headers);
    if (st.damaged_regions != 0) {
        problem(out, &n, "trace log %s: %" PRIu64 " corrupt region(s), %" PRIu64 " bytes skipped (the last in "
                         "segment %016" PRIx64 " at offset %" PRIu64 ")", dir, d.regions, d.bytes, d.last_seq,
                d.last_off);
    }
    return n != 0;
}

/* ---- opening the index ---- */

int gyre_writer_move_index_aside(const char *dsn, const char *why, char *aside, size_t asidelen)
{
    snprintf(aside, asidelen, "%s.corrupt-%lld", dsn, (long long)(unix_us() / 1000000));
    if (rename(dsn, aside) != 0 && errno != ENOENT)
        return -errno;
    static const char *const sfx[] = {"-wal", "-shm"};
    for (size_t i = 0; i < 2; i++) {
        char from[4200], to[4300];
        snprintf(from, sizeof(from), "%s%s", dsn, sfx[i]);
        snprintf(to, sizeof(to), "%s%s", aside, sfx[i]);
        if (rename(from, to) != 0 && errno != ENOENT)
            unlink(from);
    }
    gyre_logf("gyre: trace index %s: %s; moved to %s and rebuilt from the trace log\n", dsn, why, aside);
    return 0;
}

int gyre_writer_open_index(const gyre_store_ops_t *ops, const char *dsn, const char *log_dir, gyre_store_t **out,
                           int *check_later, char *err, size_t errlen)
{
    *out = NULL;
    *check_later = 0;
    gyre_tracelog_checkpoint_t cp;
    gyre_tracelog_checkpoint_load(log_dir, &cp);
    int rebuilt = 0;
    char aside[4400], why[512];
    if (cp.flags & GYRE_TRACELOG_REBUILD) {
        if (gyre_writer_move_index_aside(dsn, "the last run found it corrupt", aside, sizeof(aside)) != 0)
            unlink(dsn);
        rebuilt = 1;
    }
    gyre_store_t *s = NULL;
    int rc = ops->open(dsn, &s, err, errlen);
    if (rc == -EBADMSG) {
        snprintf(why, sizeof(why), "it does not open (%s)", err);
        if (gyre_writer_move_index_aside(dsn, why, aside, sizeof(aside)) != 0)
            unlink(dsn);
        rebuilt = 1;
        rc = ops->open(dsn, &s, err, errlen);
    }
    if (rc != 0)
        return rc;
    struct stat st;
    int small = stat(dsn, &st) != 0 || (uint64_t)st.st_size <= GYRE_WRITER_CHECK_AT_OPEN_MAX;
    if (ops->check != NULL && !small)
        *check_later = 1;
    if (ops->check != NULL && small && ops->check(s, err, errlen) == -EBADMSG) {
        snprintf(why, sizeof(why), "its check failed (%s)", err);
        ops->close(s);
        s = NULL;
        if (gyre_writer_move_index_aside(dsn, why, aside, sizeof(aside)) != 0)
            unlink(dsn);
        rebuilt = 1;
        if ((rc = ops->open(dsn, &s, err, errlen)) != 0)
            return rc;
    }
    if (rebuilt) {
        cp.pos = (gyre_tracelog_pos_t){0, 0};
        cp.flags &= ~GYRE_TRACELOG_REBUILD;
        gyre_tracelog_checkpoint_save(log_dir, &cp);
    }
    *out = s;
    return 0;
}
