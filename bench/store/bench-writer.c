/*
 * bench-writer: how fast the trace store takes traces (issue 5's target:
 * >= 50k traces/s of 2 KB bodies into SQLite).  Two figures:
 *
 *   batch   ops->write_batch in batches of 512, timed around the calls
 *           only (the traces are generated before each call);
 *   writer  the whole writer: gyre_writer_submit from one producer thread
 *           (the copy, the ring) to the writer thread's append to the trace
 *           log and the indexer's write_batch, timed from the first submit
 *           until drain_and_stop returns (everything logged and indexed);
 *   log     the trace log alone (issue 12): gyre_tracelog_append of N
 *           traces, CPU per append, and the bytes on disk per trace against
 *           the trace's raw bytes (its encoding before compression: the
 *           bodies as captured and every field); then the indexer's read of
 *           the log back (read, CRC, decompress, decode), CPU per trace.
 *
 * The traces are realistic: 5 routes, 4 providers, 10 models, 50 agents,
 * 1000 users, 10k sessions, 5 % errors, half of them streams, a request
 * and a response body of about 2 KB each (chat JSON whose text is drawn
 * from a vocabulary, so it compresses like prose, not like zeros).
 *
 *   bench-writer [--n N] [--db PATH] [--mode batch|writer|both] [--json] [--random-ids]
 *   bench-writer --fill N --db PATH [--hours H]   fills a store for bench-api.mjs:
 *                N traces spread over the H hours (24) before now
 *   bench-writer --scan --db PATH   the corpus scan (issue 14) over a filled store: gyre_store_scan_bodies
 *                (one statement, every body expanded), then gyre_corpus_scan (each row read as an example);
 *                wall and CPU seconds of each, the store left as it is
 *
 * The database is removed first (it is the benchmark's, not yours).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/json.h"
#include "loop/corpus.h"
#include "store/store.h"
#include "trace/spool.h"
#include "trace/tracelog.h"
#include "trace/writer.h"

#define BATCH 512
#define BODY_TARGET 2048

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* This thread's CPU time: on a machine shared with other work, the figure that the neighbours disturb least. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char *const routes[] = {"chat", "code", "search", "summarize", "agent"};
static const char *const providers[] = {"openai", "anthropic", "gemini", "bedrock"};
static const char *const models[] = {"gpt-4o",         "gpt-4o-mini",      "claude-sonnet-4", "claude-haiku-4",
                                     "gemini-2.5-pro", "gemini-2.5-flash", "nova-pro",        "llama-3.3-70b",
                                     "o3-mini",        "mistral-large"};
static const char *const tag_names[] = {"prod", "eval", "beta", "canary"};

/* Common English words, so that the text compresses like prose. */
static const char *const words[] = {
    "the",     "of",       "and",     "to",       "in",         "is",       "you",      "that",   "it",
    "he",      "was",      "for",     "on",       "are",        "as",       "with",     "his",    "they",
    "at",      "be",       "this",    "have",     "from",       "or",       "one",      "had",    "by",
    "word",    "but",      "not",     "what",     "all",        "were",     "we",       "when",   "your",
    "can",     "said",     "there",   "use",      "an",         "each",     "which",    "she",    "do",
    "how",     "their",    "if",      "will",     "up",         "other",    "about",    "out",    "many",
    "then",    "them",     "these",   "so",       "some",       "her",      "would",    "make",   "like",
    "him",     "into",     "time",    "has",      "look",       "two",      "more",     "write",  "go",
    "see",     "number",   "no",      "way",      "could",      "people",   "my",       "than",   "first",
    "water",   "been",     "call",    "who",      "oil",        "its",      "now",      "find",   "long",
    "down",    "day",      "did",     "get",      "come",       "made",     "may",      "part",   "function",
    "return",  "value",    "error",   "request",  "server",     "model",    "token",    "query",  "result",
    "file",    "config",   "stream",  "retry",    "latency",    "cache",    "provider", "route",  "agent",
    "session", "user",     "answer",  "question", "summary",    "document", "search",   "code",   "python",
    "rust",    "table",    "index",   "database", "network",    "memory",   "thread",   "buffer", "parse",
    "JSON",    "string",   "list",    "map",      "key",        "field",    "test",     "build",  "deploy",
    "review",  "change",   "issue",   "fix",      "bug",        "feature",  "design",   "plan",   "step",
    "task",    "goal",     "because", "however",  "therefore",  "example",  "please",   "thanks", "help",
    "explain", "describe", "compare", "improve",  "lighthouse", "cliff",    "harbor",   "ocean",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

static void words_init(void)
{
}

/* Appends words until `n` bytes of text are written. */
static size_t put_text(char *out, size_t n)
{
    size_t used = 0;
    while (used + 12 < n) {
        /* Zipf-ish: low word numbers are common. */
        uint64_t r = rng() % NWORDS;
        const char *w = words[(r * r) / NWORDS]; /* low numbers, the common words, more often */
        size_t len = strlen(w);
        memcpy(out + used, w, len);
        used += len;
        out[used++] = ' ';
    }
    return used;
}

/* A trace and the bytes its strings point at. */
typedef struct gen_trace {
    gyre_trace_t t;
    char names[6][32];
    char req[BODY_TARGET + 512], resp[BODY_TARGET + 512];
} gen_trace_t;

#define S(p) ((gyre_tstr_t){(char *)(p), strlen(p)})

/* --random-ids: the key pattern of gyre's ids before they were time-ordered (to compare). */
static int random_ids;

static void gen(gen_trace_t *g, uint64_t i, int64_t started_us)
{
    gyre_trace_t *t = &g->t;
    memset(t, 0, sizeof(*t));
    uint64_t a = rng(), b = rng();
    if (random_ids) {
        /* The ids gyre made before they were time-ordered: every key a random place in its b-tree. */
        snprintf(t->trace_id, sizeof(t->trace_id), "%016" PRIx64 "%016" PRIx64, a, i);
        snprintf(t->otel_trace_id, sizeof(t->otel_trace_id), "%016" PRIx64 "%016" PRIx64, b, i / 4);
    } else {
        /* gyre_trace_begin's: 48 bits of milliseconds, 80 random bits.  A quarter of the calls come with a
         * caller's traceparent (an instrumented agent, four calls per W3C trace: a random id); the rest
         * belong to their own trace. */
        snprintf(t->trace_id, sizeof(t->trace_id), "%012" PRIx64 "%016" PRIx64 "%04x",
                 (uint64_t)(started_us / 1000) & UINT64_C(0xffffffffffff), a, (unsigned)(b & 0xffff));
        if (i % 16 < 4)
            snprintf(t->otel_trace_id, sizeof(t->otel_trace_id), "%016" PRIx64 "%016" PRIx64, b, i / 4);
        else
            memcpy(t->otel_trace_id, t->trace_id, sizeof(t->otel_trace_id));
    }
    snprintf(t->span_id, sizeof(t->span_id), "%016" PRIx64, a ^ b);
    unsigned session = (unsigned)(rng() % 10000), user = session % 1000, agent = user % 50, route = agent % 5;
    unsigned prov = route % 4, model = (route * 2 + (unsigned)(i % 2)) % 10;
    int fallback = rng() % 10 == 0;
    if (fallback) {
        prov = (prov + 1) % 4;
        model = (model + 3) % 10;
    }
    snprintf(g->names[0], 32, "agent-%02u", agent);
    snprintf(g->names[1], 32, "user-%04u", user);
    snprintf(g->names[2], 32, "sess-%05u", session);
    snprintf(g->names[3], 32, "req-%" PRIu64, i);
    snprintf(g->names[4], 32, "%s#%u", providers[prov], (unsigned)(i % 3));
    snprintf(g->names[5], 32, "team-%u", agent % 7);
    t->request_id = S(g->names[3]);
    t->started_us = started_us;
    int64_t latency = (int64_t)(200000.0 * exp(((double)(rng() % 1000) / 1000.0 - 0.5) * 4.0)); /* 27 ms .. 1.5 s */
    t->ended_us = started_us + latency;
    t->stream = rng() % 2;
    t->ttft_us = t->stream ? latency / 5 : -1;
    t->endpoint = S("/v1/chat/completions");
    t->route = S(routes[route]);
    t->provider = S(providers[prov]);
    t->model = S(models[model]);
    uint64_t e = rng() % 100;
    t->status = e < 3 ? 500 : e < 5 ? 429 : 200;
    t->finish_reason = S(t->status == 200 ? "stop" : "");
    t->prompt_tokens = t->status == 200 ? (int64_t)(200 + rng() % 2000) : -1;
    t->completion_tokens = t->status == 200 ? (int64_t)(10 + rng() % 500) : -1;
    t->cached_tokens = t->status == 200 ? (int64_t)(rng() % 200) : -1;
    t->reasoning_tokens = -1;
    t->cost_usd =
        t->status == 200 && model != 7 ? (double)(t->prompt_tokens * 3 + t->completion_tokens * 15) / 1e6 : NAN;
    t->nattempts = fallback ? 2 : 1;
    if (fallback)
        t->attempts[0] = (gyre_trace_attempt_t){
            S(providers[route % 4]), S(models[(route * 2) % 10]), S("x#0"), 503, started_us, 1000, S("upstream 503")};
    t->attempts[t->nattempts - 1] = (gyre_trace_attempt_t){t->provider,       t->model,       S(g->names[4]), t->status,
                                                           started_us + 1000, latency - 1000, S("")};
    t->session = S(g->names[2]);
    t->agent = S(g->names[0]);
    t->user = S(g->names[1]);
    t->ntags = rng() % 3;
    for (size_t k = 0; k < t->ntags; k++)
        t->tags[k] = S(tag_names[(i + k) % 4]);
    t->nmeta = 1;
    t->meta[0] = (gyre_trace_meta_t){S("team"), S(g->names[5])};

    int n = snprintf(g->req, sizeof(g->req),
                     "{\"model\":\"%s\",\"stream\":%s,\"messages\":[{\"role\":\"system\",\"content\":\"You are a "
                     "helpful assistant.\"},{\"role\":\"user\",\"content\":\"",
                     routes[route], t->stream ? "true" : "false");
    /* A rare word (one call in a thousand) for bench-api's free-text query; the common ones match most calls. */
    if (i % 1000 == 7)
        n += snprintf(g->req + n, sizeof(g->req) - (size_t)n, "zeppelin ");
    n += (int)put_text(g->req + n, BODY_TARGET - (size_t)n - 4);
    n += snprintf(g->req + n, sizeof(g->req) - (size_t)n, "\"}]}");
    t->request_body = (gyre_tstr_t){g->req, (size_t)n};
    n = snprintf(g->resp, sizeof(g->resp),
                 "{\"id\":\"chatcmpl-%" PRIu64 "\",\"object\":\"chat.completion\",\"model\":\"%s\",\"choices\":[{"
                 "\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"",
                 i, models[model]);
    n += (int)put_text(g->resp + n, BODY_TARGET - 120 - (size_t)n);
    n += snprintf(g->resp + n, sizeof(g->resp) - (size_t)n,
                  "\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":%" PRId64
                  ",\"completion_tokens\":%" PRId64 "}}",
                  t->prompt_tokens, t->completion_tokens);
    t->response_body = (gyre_tstr_t){g->resp, (size_t)n};
}

static gyre_store_t *open_fresh(const char *db)
{
    char err[512] = "", side[4096];
    unlink(db);
    snprintf(side, sizeof(side), "%s-wal", db);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", db);
    unlink(side);
    snprintf(side, sizeof(side), "rm -rf '%s.log'", db);
    if (system(side) != 0)
        exit(1);
    gyre_store_t *s = NULL;
    if (gyre_store_open(db, GYRE_STORE_OPEN_WRITE, &s, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench-writer: %s\n", err);
        exit(1);
    }
    return s;
}

/* write_batch in batches of 512 traces started over [start, start + span); the seconds spent in write_batch (and in
 * *cpu, the CPU seconds the calls took). */
static double run_batches(gyre_store_t *s, uint64_t n, int64_t start_us, int64_t span_us, int progress, double *cpu)
{
    static gen_trace_t g[BATCH];
    const gyre_trace_t *batch[BATCH];
    double spent = 0, last = now_s();
    char err[512] = "";
    for (uint64_t i = 0; i < n;) {
        size_t k = n - i < BATCH ? (size_t)(n - i) : BATCH;
        for (size_t j = 0; j < k; j++) {
            gen(&g[j], i + j, start_us + (int64_t)((double)(i + j) * (double)span_us / (double)n));
            batch[j] = &g[j].t;
        }
        double t0 = now_s(), c0 = cpu_s();
        if (gyre_store_write_batch(s, batch, k, err, sizeof(err)) != 0) {
            fprintf(stderr, "bench-writer: %s\n", err);
            exit(1);
        }
        spent += now_s() - t0;
        *cpu += cpu_s() - c0;
        i += k;
        if (progress && now_s() - last > 2) {
            last = now_s();
            fprintf(stderr, "bench-writer: %" PRIu64 " / %" PRIu64 " (%.0f traces/s)\n", i, n, (double)i / spent);
        }
    }
    return spent;
}

/* The whole writer; the seconds from the first submit to the end of the drain. */
static double run_writer(gyre_store_t *s, const char *db, uint64_t n, uint64_t *spooled)
{
    char err[512] = "", logdir[4096];
    snprintf(logdir, sizeof(logdir), "%s.log", db);
    gyre_writer_t *w = NULL;
    gyre_writer_config_t cfg = {0};
    if (gyre_writer_create(gyre_store_ops(s), s, logdir, NULL, 1, &cfg, &w, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench-writer: %s\n", err);
        exit(1);
    }
    static gen_trace_t g;
    gyre_writer_stats_t st;
    int64_t start = wall_us();
    double t0 = now_s();
    for (uint64_t i = 0; i < n; i++) {
        gen(&g, i, start + (int64_t)i * 20);
        /* A producer that backs off at a quarter of the ring, so no trace goes to the overflow list. */
        for (;;) {
            gyre_writer_stats(w, &st);
            if (st.queued < 1024)
                break;
            usleep(200);
        }
        gyre_writer_submit(w, 0, &g.t);
    }
    int r = gyre_writer_drain_and_stop(w);
    double spent = now_s() - t0;
    gyre_writer_stats(w, &st);
    *spooled = st.logged;
    if (r != 0 || st.written != n)
        fprintf(stderr, "bench-writer: the writer wrote %" PRIu64 " of %" PRIu64 " (drain %d)\n", st.written, n, r);
    gyre_writer_destroy(w);
    return spent;
}

/* The trace log alone: appends, then reads back (the indexer's read).  Fills the figures in. */
static void run_log(const char *db, uint64_t n, double *append_cpu_us, double *read_cpu_us, double *raw_per_trace,
                    double *disk_per_trace)
{
    char dir[4096], cmd[4200], err[512] = "";
    snprintf(dir, sizeof(dir), "%s.log", db);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        exit(1);
    gyre_tracelog_t *l;
    if (gyre_tracelog_open(dir, NULL, 0, &l, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench-writer: %s\n", err);
        exit(1);
    }
    static gen_trace_t g;
    gyre_buf_t raw;
    gyre_buf_init(&raw, (size_t)64 << 20);
    double cpu = 0, rawbytes = 0;
    int64_t start = wall_us();
    for (uint64_t i = 0; i < n; i++) {
        gen(&g, i, start + (int64_t)i * 20);
        gyre_buf_reset(&raw);
        gyre_spool_encode_payload(&g.t, &raw);
        rawbytes += (double)raw.len;
        double c0 = cpu_s();
        if (gyre_tracelog_append(l, &g.t) != 0) {
            fprintf(stderr, "bench-writer: append failed\n");
            exit(1);
        }
        cpu += cpu_s() - c0;
    }
    gyre_tracelog_sync(l);
    gyre_tracelog_stats_t st;
    gyre_tracelog_stats(l, &st);
    *append_cpu_us = cpu / (double)n * 1e6;
    *raw_per_trace = rawbytes / (double)n;
    *disk_per_trace = (double)st.bytes / (double)n;
    gyre_tracelog_reader_t *r = gyre_tracelog_reader_create(l);
    gyre_tracelog_pos_t pos = gyre_tracelog_start(l);
    static gyre_trace_t *batch[BATCH];
    uint64_t got = 0;
    double c0 = cpu_s();
    for (int k; (k = gyre_tracelog_read(r, &pos, batch, BATCH, 0)) > 0;) {
        got += (uint64_t)k;
        for (int i = 0; i < k; i++)
            free(batch[i]);
    }
    *read_cpu_us = (cpu_s() - c0) / (double)n * 1e6;
    if (got != n)
        fprintf(stderr, "bench-writer: read %" PRIu64 " of %" PRIu64 " back\n", got, n);
    gyre_tracelog_reader_destroy(r);
    gyre_tracelog_close(l);
    gyre_buf_dispose(&raw);
}

typedef struct scan_sum {
    uint64_t rows, bytes;
} scan_sum_t;

static int scan_row_cb(void *ctx, const gyre_store_row_t *row)
{
    scan_sum_t *c = ctx;
    c->rows++;
    c->bytes += row->request_body.len + row->response_body.len;
    return 0;
}

static int scan_example_cb(void *ctx, const gyre_example_t *ex)
{
    scan_sum_t *c = ctx;
    c->rows++;
    c->bytes += strlen(ex->task_text) + strlen(ex->answer_text);
    return 0;
}

/* The corpus scan over an existing store: both figures on stderr (and as JSON with --json). */
static int run_scan(const char *db, int json)
{
    gyre_store_t *s = NULL;
    char err[512] = "";
    if (gyre_store_open(db, 0, &s, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench-writer: %s\n", err);
        return 1;
    }
    scan_sum_t a = {0, 0}, b = {0, 0};
    gyre_trace_query_t q = {0};
    double t0 = now_s(), c0 = cpu_s();
    if (gyre_store_scan_bodies(s, &q, scan_row_cb, &a, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench-writer: %s\n", err);
        return 1;
    }
    double scan_s = now_s() - t0, scan_cpu = cpu_s() - c0;
    gyre_corpus_query_t cq = {.q = {0}};
    gyre_corpus_counts_t n;
    t0 = now_s();
    c0 = cpu_s();
    if (gyre_corpus_scan_counted(s, &cq, scan_example_cb, &b, &n, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench-writer: %s\n", err);
        return 1;
    }
    double corpus_s = now_s() - t0, corpus_cpu = cpu_s() - c0;
    gyre_store_close(s);
    fprintf(stderr,
            "bench-writer: scan_bodies: %" PRIu64 " traces, %.0f MB of bodies in %.1f s (%.1f s of CPU, %.1f us/trace)\n"
            "bench-writer: corpus scan: %" PRIu64 " examples (%" PRIu64 " skipped) in %.1f s (%.1f s of CPU, %.1f us/trace)\n",
            a.rows, (double)a.bytes / 1e6, scan_s, scan_cpu, scan_cpu / (double)(a.rows ? a.rows : 1) * 1e6, n.examples,
            n.skipped, corpus_s, corpus_cpu, corpus_cpu / (double)(n.rows ? n.rows : 1) * 1e6);
    if (json)
        printf("{\"scan_traces\":%" PRIu64 ",\"scan_bodies_s\":%.2f,\"scan_bodies_cpu_s\":%.2f,\"corpus_examples\":%" PRIu64
               ",\"corpus_skipped\":%" PRIu64 ",\"corpus_s\":%.2f,\"corpus_cpu_s\":%.2f}\n",
               a.rows, scan_s, scan_cpu, n.examples, n.skipped, corpus_s, corpus_cpu);
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t n = 200000, fill = 0;
    const char *db = "/tmp/gyre-bench-writer.db", *mode = "both";
    int json = 0, scan = 0;
    double hours = 24;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--n") == 0 && i + 1 < argc)
            n = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--fill") == 0 && i + 1 < argc)
            fill = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--db") == 0 && i + 1 < argc)
            db = argv[++i];
        else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc)
            mode = argv[++i];
        else if (strcmp(argv[i], "--hours") == 0 && i + 1 < argc)
            hours = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--scan") == 0)
            scan = 1;
        else if (strcmp(argv[i], "--random-ids") == 0)
            random_ids = 1;
        else {
            fprintf(stderr,
                    "usage: bench-writer [--n N] [--db PATH] [--mode batch|writer|log|both] [--json] [--random-ids]\n"
                    "       bench-writer --fill N --db PATH [--hours H]\n"
                    "       bench-writer --scan --db PATH [--json]\n");
            return 2;
        }
    }
    if (scan) {
        gyre_json_init(); /* as gyre's main does: cJSON's nodes from the per-thread arena */
        return run_scan(db, json);
    }
    words_init();
    if (fill > 0) {
        gyre_store_t *s = open_fresh(db);
        int64_t span = (int64_t)(hours * 3600e6);
        double cpu = 0, spent = run_batches(s, fill, wall_us() - span, span, 1, &cpu);
        fprintf(stderr, "bench-writer: filled %s with %" PRIu64 " traces over %.0f h in %.1f s (%.0f traces/s)\n", db,
                fill, hours, spent, (double)fill / spent);
        gyre_store_close(s);
        return 0;
    }
    double batch_rate = 0, writer_rate = 0, batch_cpu_us = 0;
    uint64_t spooled = 0;
    if (strcmp(mode, "batch") == 0 || strcmp(mode, "both") == 0) {
        gyre_store_t *s = open_fresh(db);
        double cpu = 0, spent = run_batches(s, n, wall_us(), (int64_t)n * 20, 0, &cpu);
        batch_rate = (double)n / spent;
        batch_cpu_us = cpu / (double)n * 1e6;
        gyre_store_close(s);
        fprintf(stderr,
                "bench-writer: write_batch x%d: %" PRIu64 " traces in %.2f s: %.0f traces/s, %.1f us of CPU each\n",
                BATCH, n, spent, batch_rate, batch_cpu_us);
    }
    double append_us = 0, read_us = 0, raw_b = 0, disk_b = 0;
    if (strcmp(mode, "log") == 0 || strcmp(mode, "both") == 0) {
        run_log(db, n, &append_us, &read_us, &raw_b, &disk_b);
        fprintf(stderr,
                "bench-writer: trace log: %.1f us of CPU per append, %.1f us per trace read back; %.0f raw bytes per "
                "trace, %.0f on disk (%.1fx smaller)\n",
                append_us, read_us, raw_b, disk_b, raw_b / disk_b);
    }
    if (strcmp(mode, "writer") == 0 || strcmp(mode, "both") == 0) {
        gyre_store_t *s = open_fresh(db);
        double spent = run_writer(s, db, n, &spooled);
        writer_rate = (double)n / spent;
        gyre_store_close(s);
        fprintf(stderr,
                "bench-writer: whole writer (log and index): %" PRIu64 " traces in %.2f s: %.0f traces/s (%" PRIu64 " logged)\n", n,
                spent, writer_rate, spooled);
    }
    if (json)
        printf(
            "{\"traces\":%" PRIu64
            ",\"body_bytes\":%d,\"batch\":%d,\"write_batch_traces_per_s\":%.0f,\"write_batch_cpu_us_per_trace\":%.1f,"
            "\"writer_traces_per_s\":%.0f,\"writer_logged\":%" PRIu64 ",\"log_append_cpu_us_per_trace\":%.1f,"
            "\"log_read_cpu_us_per_trace\":%.1f,\"raw_bytes_per_trace\":%.0f,\"log_bytes_per_trace\":%.0f}\n",
            n, BODY_TARGET, BATCH, batch_rate, batch_cpu_us, writer_rate, spooled, append_us, read_us, raw_b, disk_b);
    return 0;
}
