/*
 * src/trace/writer.c against a fake store (no SQLite): every trace goes to
 * the trace log and from it to the index; a fast store gets every trace in
 * order; a slow or failing one makes the index lag while the log keeps
 * every trace, which reaches the store later, none lost and none twice;
 * drain leaves nothing behind; a log left by a killed writer is indexed on
 * start; retention drops whole indexed segments and their rows; a corrupt
 * store stops the indexer and flags a rebuild; the log's bound says so.
 */
#include "trace/writer.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

#define MAXN 20000

/* The fake store: records which trace numbers it took, in order; can sleep per batch or fail. */
struct gyre_store {
    pthread_mutex_t mu;
    int order[MAXN];
    size_t n;
    unsigned sleep_ms;
    _Atomic int failing; /* -errno write_batch returns, 0: none */
    int deleted[MAXN];
    size_t ndeleted;
};

static int fake_write_batch(gyre_store_t *s, const gyre_trace_t *const *t, size_t n, char *err, size_t errlen)
{
    if (s->sleep_ms != 0) {
        struct timespec ts = {0, (long)s->sleep_ms * 1000000};
        nanosleep(&ts, NULL);
    }
    int f = atomic_load(&s->failing);
    if (f != 0) {
        snprintf(err, errlen, "fake store: failing on purpose");
        return f;
    }
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n && s->n < MAXN; i++)
        s->order[s->n++] = (int)strtol(t[i]->trace_id, NULL, 16);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static int64_t fake_count(gyre_store_t *s)
{
    pthread_mutex_lock(&s->mu);
    int64_t n = (int64_t)s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static int fake_delete(gyre_store_t *s, const gyre_trace_t *const *t, size_t n, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n && s->ndeleted < MAXN; i++)
        s->deleted[s->ndeleted++] = (int)strtol(t[i]->trace_id, NULL, 16);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static const gyre_store_ops_t fake_ops = {
    .name = "fake", .write_batch = fake_write_batch, .count = fake_count, .delete_traces = fake_delete};

static gyre_store_t *fake_store(unsigned sleep_ms, int failing)
{
    gyre_store_t *s = calloc(1, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    s->sleep_ms = sleep_ms;
    atomic_init(&s->failing, failing ? -EIO : 0);
    return s;
}

static void fake_store_free(gyre_store_t *s)
{
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static size_t store_count(gyre_store_t *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Every number 0..n-1 exactly once. */
static int each_once(gyre_store_t *s, size_t n)
{
    if (s->n != n)
        return 0;
    static unsigned char seen[MAXN];
    memset(seen, 0, sizeof(seen));
    for (size_t i = 0; i < s->n; i++) {
        if (s->order[i] < 0 || (size_t)s->order[i] >= n || seen[s->order[i]])
            return 0;
        seen[s->order[i]] = 1;
    }
    return 1;
}

static int in_order(gyre_store_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->order[i] != (int)i)
            return 0;
    return 1;
}

static char path[64];

static void rm_dir(const char *p)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p);
    CHECK_INT(system(cmd), 0);
}

/* A fresh log directory for this test. */
static const char *log_path(void)
{
    snprintf(path, sizeof(path), "/tmp/gyre-writer-test-%d", (int)getpid());
    rm_dir(path);
    return path;
}

static void make_trace(gyre_trace_t *t, int n)
{
    static char body[2048];
    memset(body, 'x', sizeof(body));
    memset(t, 0, sizeof(*t));
    snprintf(t->trace_id, sizeof(t->trace_id), "%032x", n);
    t->status = 200;
    t->cost_usd = 0.5;
    t->request_body = (gyre_tstr_t){body, sizeof(body)};
}

static gyre_writer_t *writer(gyre_store_t *s, const char *p, const gyre_writer_config_t *cfg)
{
    gyre_writer_t *w = NULL;
    char err[256];
    CHECK_INT(gyre_writer_create(&fake_ops, s, p, NULL, 1, cfg, &w, err, sizeof(err)), 0);
    return w;
}

static void submit_range(gyre_writer_t *w, int from, int to)
{
    gyre_trace_t t;
    for (int i = from; i < to; i++) {
        make_trace(&t, i);
        CHECK_INT(gyre_writer_submit(w, 0, &t), 0);
    }
}

/* Polls the stats until `field` reaches `want` or 5 s pass. */
#define WAIT_FOR(w, field, want)                                                                                     \
    do {                                                                                                             \
        gyre_writer_stats_t st_;                                                                                     \
        for (int k_ = 0; k_ < 5000; k_++) {                                                                          \
            gyre_writer_stats(w, &st_);                                                                              \
            if (st_.field >= (want))                                                                                 \
                break;                                                                                               \
            usleep(1000);                                                                                            \
        }                                                                                                            \
    } while (0)

/* Bodies of `n` random bytes, which zstd cannot shrink, so every record has the same size. */
static void make_noisy_trace(gyre_trace_t *t, int n, size_t len)
{
    static char body[4096];
    uint32_t x = 2463534242u ^ (uint32_t)(n * 2654435761u);
    for (size_t i = 0; i < len && i < sizeof(body); i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        body[i] = (char)(x >> 24);
    }
    make_trace(t, n);
    t->request_body = (gyre_tstr_t){body, len < sizeof(body) ? len : sizeof(body)};
}

/* How many uncompressed records (log.zstd_level -1) of make_noisy_trace(len) a segment of segment_bytes holds. */
static int per_segment(size_t len, uint64_t segment_bytes)
{
    gyre_trace_t t;
    make_noisy_trace(&t, 0, len);
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    CHECK_INT(gyre_tracelog_encode(&t, -1, &b), 0);
    int n = (int)((segment_bytes - GYRE_TRACELOG_SEGMENT_HEADER_SIZE) / b.len);
    gyre_buf_dispose(&b);
    return n;
}

TEST(trace_writer_fast_store_gets_every_trace_in_order)
{
    gyre_store_t *s = fake_store(0, 0);
    gyre_writer_config_t cfg = {.queue_capacity = 16384};
    gyre_writer_t *w = writer(s, log_path(), &cfg);
    submit_range(w, 0, 5000);
    CHECK_INT(gyre_writer_drain_and_stop(w), 0);
    gyre_writer_stats_t st;
    gyre_writer_stats(w, &st);
    CHECK_INT(st.logged, 5000);
    CHECK_INT(st.written, 5000);
    CHECK_INT(st.dropped, 0);
    CHECK_INT(st.index_lag_bytes, 0);
    CHECK_INT(s->n, 5000);
    CHECK(in_order(s));
    gyre_writer_destroy(w);
    fake_store_free(s);
    rm_dir(path);
}

TEST(trace_writer_slow_store_lags_behind_the_log_and_loses_nothing)
{
    gyre_store_t *s = fake_store(20, 0);
    gyre_writer_config_t cfg = {.queue_capacity = 256, .index_batch_max = 512};
    gyre_writer_t *w = writer(s, log_path(), &cfg);
    submit_range(w, 0, 5000);
    WAIT_FOR(w, logged, 5000);
    gyre_writer_stats_t st;
    gyre_writer_stats(w, &st);
    CHECK_INT(st.logged, 5000);
    CHECK(st.written < 5000); /* 20 ms a batch of 512: the index is behind the log */
    CHECK_INT(gyre_writer_drain_and_stop(w), 0);
    gyre_writer_stats(w, &st);
    CHECK_INT(st.written, 5000);
    CHECK_INT(st.dropped, 0);
    CHECK(each_once(s, 5000)); /* not in order: a full ring's overflow list is appended first */
    gyre_writer_destroy(w);
    fake_store_free(s);
    rm_dir(path);
}

TEST(trace_writer_failing_store_keeps_traces_in_the_log_and_indexes_them_once_it_recovers)
{
    gyre_store_t *s = fake_store(0, 1);
    gyre_writer_t *w = writer(s, log_path(), NULL);
    submit_range(w, 0, 1000);
    WAIT_FOR(w, logged, 1000);
    WAIT_FOR(w, store_errors, 1);
    gyre_writer_stats_t st;
    gyre_writer_stats(w, &st);
    CHECK_INT(st.logged, 1000);
    CHECK(st.index_lag_bytes > 0);
    CHECK(st.store_errors > 0);
    CHECK_INT(store_count(s), 0);
    gyre_buf_t h;
    gyre_buf_init(&h, 1 << 16);
    CHECK_INT(gyre_writer_health(w, &h), 1);
    CHECK(strstr(h.base, "trace index is failing (fake store: failing on purpose): traces wait in the log") != NULL);
    atomic_store(&s->failing, 0);
    WAIT_FOR(w, written, 1000); /* before any stop: the indexer catches up on its own */
    gyre_writer_stats(w, &st);
    CHECK_INT(st.written, 1000);
    CHECK_INT(st.index_lag_bytes, 0);
    gyre_buf_reset(&h);
    CHECK_INT(gyre_writer_health(w, &h), 0);
    gyre_buf_dispose(&h);
    CHECK_INT(gyre_writer_drain_and_stop(w), 0);
    CHECK(each_once(s, 1000));
    CHECK(in_order(s));
    gyre_writer_destroy(w);
    fake_store_free(s);
    rm_dir(path);
}

TEST(trace_writer_indexes_a_log_left_by_a_killed_writer)
{
    const char *p = log_path();
    pid_t pid = fork();
    if (pid == 0) {
        /* The "previous run": its store is down, so nothing is indexed; then it is killed. */
        gyre_store_t *s = fake_store(0, 1);
        gyre_writer_t *w = writer(s, p, NULL);
        submit_range(w, 0, 500);
        WAIT_FOR(w, logged, 500);
        raise(SIGKILL);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    gyre_store_t *s = fake_store(0, 0);
    gyre_writer_t *w = writer(s, p, NULL);
    CHECK_INT(gyre_writer_drain_and_stop(w), 0);
    gyre_writer_stats_t st;
    gyre_writer_stats(w, &st);
    CHECK_INT(st.written, 500);
    CHECK_INT(s->n, 500);
    CHECK(in_order(s));
    gyre_writer_destroy(w);
    fake_store_free(s);
    rm_dir(p);
}

TEST(trace_writer_drain_against_a_dead_store_keeps_the_traces_in_the_log_for_the_next_start)
{
    gyre_store_t *s = fake_store(0, 1);
    gyre_writer_config_t cfg = {.drain_timeout_ms = 100};
    const char *p = log_path();
    gyre_writer_t *w = writer(s, p, &cfg);
    submit_range(w, 0, 100);
    CHECK_INT(gyre_writer_drain_and_stop(w), -EIO);
    gyre_writer_stats_t st;
    gyre_writer_stats(w, &st);
    CHECK_INT(st.logged, 100);
    CHECK(st.index_lag_bytes > 0);
    CHECK_INT(st.dropped, 0);
    gyre_writer_destroy(w);
    gyre_store_t *s2 = fake_store(0, 0);
    w = writer(s2, p, NULL);
    CHECK_INT(gyre_writer_drain_and_stop(w), 0);
    CHECK_INT(s2->n, 100);
    CHECK(in_order(s2));
    gyre_writer_destroy(w);
    fake_store_free(s);
    fake_store_free(s2);
    rm_dir(p);
}

TEST(trace_writer_retention_drops_the_oldest_indexed_segments_and_their_rows_to_stay_under_max_bytes)
{
    gyre_store_t *s = fake_store(0, 0);
    /* Records of about 1.1 KB, 4 a segment of 5000 bytes: 200 records are about 220 KB, over 24 KB. */
    gyre_writer_config_t cfg = {.retention_check_ms = 1, .index_interval_ms = 1,
                                .log = {.max_bytes = 24576, .segment_bytes = 5000, .zstd_level = -1}};
    int per = per_segment(1000, 5000);
    CHECK_INT(per, 4);
    gyre_writer_t *w = writer(s, log_path(), &cfg);
    gyre_trace_t t;
    for (int i = 0; i < 200; i++) {
        make_noisy_trace(&t, i, 1000);
        CHECK_INT(gyre_writer_submit(w, 0, &t), 0);
        /* The index keeps up and retention makes room before the next trace (at most 5 s each), so the bound is
         * never what decides: this test is about what retention drops, not about a race with it. */
        WAIT_FOR(w, written, (uint64_t)i + 1);
        gyre_writer_stats_t now;
        for (int k = 0; k < 5000; k++) {
            gyre_writer_stats(w, &now);
            if (now.log_bytes + 5000 <= 24576)
                break;
            usleep(1000);
        }
    }
    WAIT_FOR(w, written, 200);
    CHECK_INT(gyre_writer_drain_and_stop(w), 0);
    gyre_writer_stats_t st;
    gyre_writer_stats(w, &st);
    CHECK_INT(st.dropped, 0);
    CHECK_INT(st.written, 200);
    CHECK(st.log_bytes <= 24576);
    /* Everything but the segments the bound holds was retired: 50 segments, at most 4 of about 4.5 KB kept
     * under 24 KB less one segment's room. */
    CHECK(st.segments_retired >= 45);
    CHECK_INT(st.segments_retired + st.log_segments, 50);
    /* The rows deleted are exactly the oldest traces, whole segments of 4. */
    CHECK_INT(s->ndeleted, st.segments_retired * 4);
    for (size_t i = 0; i < s->ndeleted; i++)
        CHECK_INT(s->deleted[i], (int)i);
    gyre_writer_destroy(w);
    fake_store_free(s);
    rm_dir(path);
}

TEST(trace_writer_retention_by_age_drops_every_closed_indexed_segment_older_than_it)
{
    gyre_store_t *s = fake_store(0, 0);
    gyre_writer_config_t cfg = {.retention_check_ms = 1, .retention_us = 1000, .log = {.segment_bytes = 5000, .zstd_level = -1}};
    CHECK_INT(per_segment(1000, 5000), 4);
    gyre_writer_t *w = writer(s, log_path(), &cfg);
    gyre_trace_t t;
    for (int i = 0; i < 40; i++) {
        make_noisy_trace(&t, i, 1000);
        CHECK_INT(gyre_writer_submit(w, 0, &t), 0);
    }
    WAIT_FOR(w, written, 40);
    WAIT_FOR(w, segments_retired, 9);
    gyre_writer_stats_t st;
    gyre_writer_stats(w, &st);
    /* 40 records, 4 a segment: 10 segments, the last one active and kept. */
    CHECK_INT(st.segments_retired, 9);
    CHECK_INT(st.log_segments, 1);
    CHECK_INT(s->ndeleted, 36);
    CHECK_INT(gyre_writer_drain_and_stop(w), 0);
    gyre_writer_destroy(w);
    fake_store_free(s);
    rm_dir(path);
}

TEST(trace_writer_corrupt_store_stops_the_indexer_and_flags_a_rebuild_for_the_next_start)
{
    gyre_store_t *s = fake_store(0, 0);
    atomic_store(&s->failing, -EBADMSG);
    gyre_writer_config_t cfg = {.drain_timeout_ms = 100};
    const char *p = log_path();
    gyre_writer_t *w = writer(s, p, &cfg);
    submit_range(w, 0, 10);
    WAIT_FOR(w, logged, 10);
    WAIT_FOR(w, index_corrupt, 1);
    gyre_writer_stats_t st;
    gyre_writer_stats(w, &st);
    CHECK_INT(st.index_corrupt, 1);
    CHECK_INT(st.logged, 10);
    gyre_buf_t h;
    gyre_buf_init(&h, 1 << 16);
    CHECK_INT(gyre_writer_health(w, &h), 1);
    CHECK(strstr(h.base, "trace index is corrupt (fake store: failing on purpose): indexing stopped") != NULL);
    gyre_buf_dispose(&h);
    gyre_tracelog_checkpoint_t cp;
    CHECK_INT(gyre_tracelog_checkpoint_load(p, &cp), 0);
    CHECK_INT(cp.flags & GYRE_TRACELOG_REBUILD, GYRE_TRACELOG_REBUILD);
    CHECK_INT(gyre_writer_drain_and_stop(w), -EIO);
    gyre_writer_destroy(w);
    fake_store_free(s);
    rm_dir(p);
}

TEST(trace_writer_log_at_its_bound_drops_new_traces_and_says_so)
{
    gyre_store_t *s = fake_store(0, 1); /* nothing is indexed, so nothing can be retired */
    gyre_writer_config_t cfg = {.drain_timeout_ms = 50, .log = {.max_bytes = 65536, .segment_bytes = 8192}};
    gyre_writer_t *w = writer(s, log_path(), &cfg);
    gyre_trace_t t;
    for (int i = 0; i < 100; i++) {
        make_noisy_trace(&t, i, 1000);
        CHECK_INT(gyre_writer_submit(w, 0, &t), 0);
    }
    WAIT_FOR(w, dropped, 1);
    usleep(20000);
    gyre_writer_stats_t st;
    gyre_writer_stats(w, &st);
    CHECK(st.logged > 0);
    CHECK_INT(st.logged + st.dropped, 100);
    CHECK_INT(st.dropped_bound, st.dropped);
    CHECK(st.log_bytes <= 65536);
    gyre_buf_t h;
    gyre_buf_init(&h, 1 << 16);
    CHECK_INT(gyre_writer_health(w, &h), 1);
    CHECK(strstr(h.base, "new traces are DROPPED: the trace log is at its size bound (store.max_bytes)") != NULL);
    gyre_buf_dispose(&h);
    gyre_writer_drain_and_stop(w);
    gyre_writer_destroy(w);
    fake_store_free(s);
    rm_dir(path);
}

static int fake_check_corrupt(gyre_store_t *s, char *err, size_t errlen)
{
    (void)s;
    snprintf(err, errlen, "fake store: the database is corrupt: page 7 is never used");
    return -EBADMSG;
}

TEST(trace_writer_check_at_start_of_a_large_index_finds_it_corrupt_while_the_log_keeps_every_trace)
{
    gyre_store_t *s = fake_store(0, 0);
    gyre_store_ops_t ops = fake_ops;
    ops.check = fake_check_corrupt;
    gyre_writer_config_t cfg = {.check_at_start = 1, .drain_timeout_ms = 100};
    const char *p = log_path();
    gyre_writer_t *w = NULL;
    char err[256];
    CHECK_INT(gyre_writer_create(&ops, s, p, NULL, 1, &cfg, &w, err, sizeof(err)), 0);
    submit_range(w, 0, 20);
    WAIT_FOR(w, logged, 20);
    WAIT_FOR(w, index_corrupt, 1);
    gyre_writer_stats_t st;
    gyre_writer_stats(w, &st);
    CHECK_INT(st.index_corrupt, 1);
    CHECK_INT(st.logged, 20);
    CHECK_INT(st.written, 0);
    gyre_tracelog_checkpoint_t cp;
    CHECK_INT(gyre_tracelog_checkpoint_load(p, &cp), 0);
    CHECK_INT(cp.flags & GYRE_TRACELOG_REBUILD, GYRE_TRACELOG_REBUILD);
    CHECK_INT(gyre_writer_drain_and_stop(w), -EIO);
    gyre_writer_destroy(w);
    fake_store_free(s);
    rm_dir(p);
}
