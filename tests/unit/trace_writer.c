/*
 * src/trace/writer.c against a fake store (no SQLite): a fast store gets
 * every trace in order; a slow or failing one makes traces spill to the
 * spool and reach the store later, none lost and none twice; drain leaves
 * nothing behind; a spool left by a killed writer is replayed on start.
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
    _Atomic int failing;
};

static int fake_write_batch(gyre_store_t *s, const gyre_trace_t *const *t, size_t n, char *err, size_t errlen)
{
    if (s->sleep_ms != 0) {
        struct timespec ts = {0, (long)s->sleep_ms * 1000000};
        nanosleep(&ts, NULL);
    }
    if (atomic_load(&s->failing)) {
        snprintf(err, errlen, "fake store: failing on purpose");
        return -EIO;
    }
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n && s->n < MAXN; i++)
        s->order[s->n++] = (int)strtol(t[i]->trace_id, NULL, 16);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static const gyre_store_ops_t fake_ops = {.name = "fake", .write_batch = fake_write_batch};

static gyre_store_t *fake_store(unsigned sleep_ms, int failing)
{
    gyre_store_t *s = calloc(1, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    s->sleep_ms = sleep_ms;
    atomic_init(&s->failing, failing);
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

static const char *spool_path(void)
{
    snprintf(path, sizeof(path), "/tmp/gyre-writer-test-%d", (int)getpid());
    unlink(path);
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
    CHECK_INT(gyre_writer_create(&fake_ops, s, p, 1, cfg, &w, err, sizeof(err)), 0);
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

static long long file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

TEST(trace_writer_fast_store_gets_every_trace_in_order)
{
    gyre_store_t *s = fake_store(0, 0);
    gyre_writer_config_t cfg = {.queue_capacity = 16384};
    gyre_writer_t *w = writer(s, spool_path(), &cfg);
    submit_range(w, 0, 5000);
    CHECK_INT(gyre_writer_drain_and_stop(w), 0);
    gyre_writer_stats_t st;
    gyre_writer_stats(w, &st);
    CHECK_INT(st.written, 5000);
    CHECK_INT(st.spooled, 0);
    CHECK_INT(st.dropped, 0);
    CHECK_INT(s->n, 5000);
    CHECK(in_order(s));
    gyre_writer_destroy(w);
    fake_store_free(s);
    unlink(path);
}

TEST(trace_writer_slow_store_spills_to_the_spool_and_loses_nothing)
{
    gyre_store_t *s = fake_store(20, 0);
    gyre_writer_config_t cfg = {.queue_capacity = 256, .batch_max = 512};
    gyre_writer_t *w = writer(s, spool_path(), &cfg);
    submit_range(w, 0, 5000);
    CHECK_INT(gyre_writer_drain_and_stop(w), 0);
    gyre_writer_stats_t st;
    gyre_writer_stats(w, &st);
    CHECK(st.spooled > 0);
    CHECK_INT(st.replayed, st.spooled);
    CHECK_INT(st.written, 5000);
    CHECK_INT(st.dropped, 0);
    CHECK(each_once(s, 5000));
    gyre_writer_destroy(w);
    fake_store_free(s);
    unlink(path);
}

TEST(trace_writer_failing_store_spools_then_replays_once_it_recovers)
{
    gyre_store_t *s = fake_store(0, 1);
    gyre_writer_t *w = writer(s, spool_path(), NULL);
    submit_range(w, 0, 1000);
    WAIT_FOR(w, spooled, 1000);
    gyre_writer_stats_t st;
    gyre_writer_stats(w, &st);
    CHECK_INT(st.spooled, 1000);
    CHECK_INT(st.spool_records, 1000);
    CHECK(st.store_errors > 0);
    CHECK_INT(store_count(s), 0);
    atomic_store(&s->failing, 0);
    WAIT_FOR(w, replayed, 1000); /* before any stop: replay happens on its own */
    gyre_writer_stats(w, &st);
    CHECK_INT(st.replayed, 1000);
    CHECK_INT(st.written, 1000);
    CHECK_INT(st.spool_records, 0);
    CHECK_INT(gyre_writer_drain_and_stop(w), 0);
    CHECK(each_once(s, 1000));
    CHECK(in_order(s)); /* spooled in order, replayed in order */
    gyre_writer_destroy(w);
    fake_store_free(s);
    unlink(path);
}

TEST(trace_writer_drain_and_stop_leaves_nothing_queued_or_spooled)
{
    gyre_store_t *s = fake_store(5, 0);
    gyre_writer_config_t cfg = {.queue_capacity = 64, .batch_max = 128};
    gyre_writer_t *w = writer(s, spool_path(), &cfg);
    submit_range(w, 0, 3000);
    CHECK_INT(gyre_writer_drain_and_stop(w), 0);
    gyre_writer_stats_t st;
    gyre_writer_stats(w, &st);
    CHECK_INT(st.queued, 0);
    CHECK_INT(st.spool_records, 0);
    CHECK_INT(st.spool_bytes, 0);
    CHECK_INT(file_size(path), 8);
    CHECK(each_once(s, 3000));
    gyre_writer_destroy(w);
    fake_store_free(s);
    unlink(path);
}

TEST(trace_writer_replays_a_spool_left_by_a_killed_writer)
{
    const char *p = spool_path();
    pid_t pid = fork();
    if (pid == 0) {
        /* The "previous run": its store is down, so everything goes to the spool; then it is killed. */
        gyre_store_t *s = fake_store(0, 1);
        gyre_writer_t *w = writer(s, p, NULL);
        submit_range(w, 0, 500);
        WAIT_FOR(w, spooled, 500);
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
    CHECK_INT(st.replayed, 500);
    CHECK_INT(s->n, 500);
    CHECK(in_order(s));
    CHECK_INT(file_size(p), 8);
    gyre_writer_destroy(w);
    fake_store_free(s);
    unlink(p);
}

TEST(trace_writer_drain_against_a_dead_store_keeps_the_traces_in_the_spool)
{
    gyre_store_t *s = fake_store(0, 1);
    gyre_writer_config_t cfg = {.drain_timeout_ms = 100};
    gyre_writer_t *w = writer(s, spool_path(), &cfg);
    submit_range(w, 0, 100);
    CHECK_INT(gyre_writer_drain_and_stop(w), -EIO);
    gyre_writer_stats_t st;
    gyre_writer_stats(w, &st);
    CHECK_INT(st.spool_records, 100);
    CHECK_INT(st.dropped, 0);
    gyre_writer_destroy(w);
    fake_store_free(s);
    unlink(path);
}

static int64_t unix_us_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

TEST(trace_writer_spools_a_batch_that_waited_longer_than_spill_age_then_replays_it)
{
    gyre_store_t *s = fake_store(0, 0);
    /* The backlog bound is far away: only the trace's age can send it to the spool. */
    gyre_writer_config_t cfg = {.spill_threshold = 1u << 20, .spill_age_ms = 25};
    gyre_writer_t *w = writer(s, spool_path(), &cfg);
    gyre_trace_t t;
    make_trace(&t, 0);
    t.ended_us = unix_us_now() - 1000000; /* its answer went out a second ago: the writer was stalled */
    CHECK_INT(gyre_writer_submit(w, 0, &t), 0);
    WAIT_FOR(w, replayed, 1);
    gyre_writer_stats_t st;
    gyre_writer_stats(w, &st);
    CHECK_INT(st.spooled, 1);
    CHECK_INT(st.replayed, 1);
    CHECK_INT(st.written, 1);
    CHECK_INT(gyre_writer_drain_and_stop(w), 0);
    CHECK_INT(store_count(s), 1);
    CHECK_INT(s->order[0], 0);
    gyre_writer_destroy(w);
    fake_store_free(s);
    unlink(path);
}

TEST(trace_writer_writes_a_fresh_trace_straight_to_the_store)
{
    gyre_store_t *s = fake_store(0, 0);
    gyre_writer_config_t cfg = {.spill_threshold = 1u << 20, .spill_age_ms = 1000};
    gyre_writer_t *w = writer(s, spool_path(), &cfg);
    gyre_trace_t t;
    make_trace(&t, 7);
    t.ended_us = unix_us_now();
    CHECK_INT(gyre_writer_submit(w, 0, &t), 0);
    WAIT_FOR(w, written, 1);
    gyre_writer_stats_t st;
    gyre_writer_stats(w, &st);
    CHECK_INT(st.written, 1);
    CHECK_INT(st.spooled, 0);
    CHECK_INT(gyre_writer_drain_and_stop(w), 0);
    CHECK_INT(store_count(s), 1);
    CHECK_INT(s->order[0], 7);
    gyre_writer_destroy(w);
    fake_store_free(s);
    unlink(path);
}
