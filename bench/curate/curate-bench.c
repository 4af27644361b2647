/*
 * curate-bench: curation over a large generated store (issue 14's targets:
 * 1M traces curated in < 60 s with < 2 GB peak memory; dedup precision and
 * recall >= 0.95 on planted near-duplicates).
 *
 *   curate-bench --fill N --db PATH [--seed S]   writes N generated calls (with scores) into a new store
 *   curate-bench --db PATH [--seed S] [--spec FILE] [--json]
 *                                                curates it and prints the time per phase, the peak memory
 *                                                and dedup's precision and recall against the planted truth
 *
 * Build (after `make`): cc -O2 -D_GNU_SOURCE -DH2O_USE_LIBUV=0 -Isrc bench/curate/curate-bench.c \
 *     build/libgyre.a $(pkg-config --libs libh2o-evloop yaml-0.1 libcjson openssl sqlite3 libzstd zlib \
 *     libsodium) -lssl -lcrypto -lpthread -lm -o build/curate-bench
 *
 * The calls: 10 task families, each with its own vocabulary and sentence
 * templates; a task is 4 to 7 sentences drawn from its family with slot
 * values (names, numbers, ids); one call in ten is a planted near-duplicate
 * of an earlier original (a new id and one of: a word changed, two
 * sentences swapped, a number changed), in another session.  The truth is
 * not stored: it is a pure function of the trace's index and the seed, so
 * the precision and recall are computed from the trace ids the curation
 * returns.  Sessions: one to three calls, each later call the conversation
 * so far plus a new turn.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/rand.h"
#include "loop/curate.h"

static const char *const fam_words[10][12] = {
    {"refund", "order", "parcel", "damaged", "carrier", "receipt", "charge", "return", "label", "warehouse", "courier", "credit"},
    {"password", "login", "account", "locked", "token", "browser", "session", "reset", "email", "verify", "device", "portal"},
    {"deploy", "cluster", "pod", "rollback", "pipeline", "staging", "release", "build", "container", "config", "secret", "node"},
    {"invoice", "ledger", "quarter", "revenue", "expense", "budget", "forecast", "audit", "balance", "payroll", "tax", "margin"},
    {"contract", "clause", "liability", "termination", "notice", "party", "indemnity", "warranty", "breach", "signature", "term", "renewal"},
    {"translate", "german", "french", "tone", "glossary", "paragraph", "idiom", "locale", "spanish", "formal", "draft", "phrase"},
    {"query", "index", "table", "join", "latency", "replica", "schema", "migration", "shard", "vacuum", "cursor", "partition"},
    {"meeting", "agenda", "calendar", "attendees", "minutes", "slot", "reschedule", "invite", "room", "timezone", "recurring", "follow"},
    {"recipe", "oven", "flour", "butter", "knead", "bake", "dough", "yeast", "sugar", "whisk", "simmer", "garnish"},
    {"playlist", "song", "album", "artist", "genre", "tempo", "lyrics", "concert", "vinyl", "stream", "chorus", "remix"},
};
static const char *const common_words[] = {"the", "a", "my", "our", "please", "can", "you", "check", "why", "when",
                                           "with", "for", "and", "is", "was", "not", "again", "today", "after", "before",
                                           "need", "help", "quickly", "this", "that", "it", "on", "in", "to", "of"};
static const char *const names[] = {"Alice", "Bruno", "Chen", "Dana", "Emeka", "Farah", "Goran", "Hana", "Ivan", "Julia"};

#define NCOMMON (sizeof(common_words) / sizeof(common_words[0]))

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* The planted truth of call i: its original (itself unless a near-duplicate) and the edit. */
typedef struct plan {
    uint64_t original; /* the index whose task this call copies (i for an original) */
    int edit;          /* 0: none; 1: a word; 2: two sentences swapped; 3: a number */
    uint64_t session;  /* the session's number */
    int step;          /* 0, 1, 2: the call's place in its session */
} plan_t;

static plan_t plan_of(uint64_t i, uint64_t seed)
{
    /* Sessions: blocks of 3 indexes; a block is one session of 1..3 calls or, for calls past its length, each its
     * own session. */
    plan_t p;
    uint64_t block = i / 3, within = i % 3;
    unsigned len = 1 + (unsigned)(mix(block ^ seed * 7) % 3);
    p.session = within < len ? block * 3 : i;
    p.step = within < len ? (int)within : 0;
    p.original = i;
    p.edit = 0;
    uint64_t h = mix(i ^ (seed * 0x9e3779b97f4a7c15ULL));
    /* One call in ten (a first step, past the first thousand) is a near-duplicate of an earlier original's first
     * step. */
    if (p.step == 0 && i >= 1000 && h % 10 == 0) {
        for (uint64_t t = 0; t < 16; t++) {
            uint64_t o = mix(h + t) % (i - 999);
            plan_t q = plan_of(o, seed);
            if (q.original == o && q.step == 0) {
                p.original = o;
                p.edit = 1 + (int)((h >> 20) % 3);
                break;
            }
        }
    }
    return p;
}

/* The task of an original (its first step), written into b. */
static void task_of(uint64_t o, uint64_t seed, const plan_t *p, uint64_t i, gyre_buf_t *b)
{
    uint64_t st = mix(o * 31 + seed) | 1;
    unsigned fam = (unsigned)(gyre_rand_next(&st) % 10);
    unsigned nsent = 4 + (unsigned)(gyre_rand_next(&st) % 4);
    char sent[8][256];
    for (unsigned s = 0; s < nsent; s++) {
        size_t n = 0;
        unsigned words = 8 + (unsigned)(gyre_rand_next(&st) % 6);
        for (unsigned w = 0; w < words; w++) {
            uint64_t r = gyre_rand_next(&st);
            const char *word = r % 3 == 0 ? common_words[(r >> 8) % NCOMMON] : fam_words[fam][(r >> 8) % 12];
            if (r % 17 == 0)
                word = names[(r >> 16) % 10];
            n += (size_t)snprintf(sent[s] + n, sizeof(sent[s]) - n, "%s%s", w ? " " : "", word);
        }
        if (s == 0)
            n += (size_t)snprintf(sent[s] + n, sizeof(sent[s]) - n, " order %u",
                                  (unsigned)(gyre_rand_next(&st) % 100000));
    }
    if (p->edit != 0) {
        uint64_t e = mix(i ^ 0xabcdef);
        unsigned s = (unsigned)(e % nsent);
        if (p->edit == 1) {
            /* One word replaced: the last word of a sentence (at most 2 shingles change). */
            char *sp = strrchr(sent[s], ' ');
            if (sp != NULL)
                snprintf(sp + 1, sizeof(sent[s]) - (size_t)(sp + 1 - sent[s]), "%s", fam_words[fam][(e >> 8) % 12]);
        } else if (p->edit == 2) {
            unsigned t = (s + 1) % nsent;
            char tmp[256];
            memcpy(tmp, sent[s], sizeof(tmp));
            memcpy(sent[s], sent[t], sizeof(tmp));
            memcpy(sent[t], tmp, sizeof(tmp));
        } else {
            char *o2 = strstr(sent[0], " order ");
            if (o2 != NULL)
                snprintf(o2, sizeof(sent[0]) - (size_t)(o2 - sent[0]), " order %u", (unsigned)(e % 100000));
        }
    }
    for (unsigned s = 0; s < nsent; s++) {
        if (s)
            gyre_buf_appends(b, ". ");
        gyre_buf_appends(b, sent[s]);
    }
    gyre_buf_appends(b, ".");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fill(const char *db, uint64_t n, uint64_t seed)
{
    char err[512];
    unlink(db);
    char dsn[1024];
    snprintf(dsn, sizeof(dsn), "sqlite:%s", db);
    gyre_store_t *s;
    if (gyre_store_open(dsn, GYRE_STORE_OPEN_WRITE, &s, err, sizeof(err)) != 0) {
        fprintf(stderr, "curate-bench: %s\n", err);
        return 1;
    }
    enum { BATCH = 2000 };
    gyre_trace_t *t = calloc(BATCH, sizeof(*t));
    const gyre_trace_t **ptr = calloc(BATCH, sizeof(*ptr));
    gyre_score_t *sc = calloc(BATCH, sizeof(*sc));
    char(*sess)[32] = calloc(BATCH, 32);
    gyre_buf_t *req = calloc(BATCH, sizeof(*req)), *resp = calloc(BATCH, sizeof(*resp));
    for (size_t k = 0; k < BATCH; k++) {
        gyre_buf_init(&req[k], 1 << 20);
        gyre_buf_init(&resp[k], 1 << 16);
    }
    gyre_buf_t task, turn;
    gyre_buf_init(&task, 1 << 16);
    gyre_buf_init(&turn, 1 << 16);
    double t0 = now_s();
    for (uint64_t base = 0; base < n; base += BATCH) {
        size_t m = n - base < BATCH ? (size_t)(n - base) : BATCH;
        for (size_t k = 0; k < m; k++) {
            uint64_t i = base + k;
            plan_t p = plan_of(i, seed);
            gyre_trace_t *x = &t[k];
            memset(x, 0, sizeof(*x));
            snprintf(x->trace_id, sizeof(x->trace_id), "%032llx", (unsigned long long)i + 1);
            snprintf(x->span_id, sizeof(x->span_id), "%016llx", (unsigned long long)i + 1);
            x->started_us = 1700000000000000LL + (int64_t)i * 1000;
            x->ended_us = x->started_us + 900;
            x->ttft_us = -1;
            x->endpoint = (gyre_tstr_t){"/v1/chat/completions", 20};
            x->provider = (gyre_tstr_t){"openai", 6};
            x->model = (gyre_tstr_t){"gpt-4o-mini", 11};
            x->route = (gyre_tstr_t){"agents", 6};
            x->agent = (gyre_tstr_t){"bench", 5};
            x->status = 200;
            x->prompt_tokens = 100;
            x->completion_tokens = 20;
            x->cached_tokens = x->reasoning_tokens = -1;
            x->cost_usd = 0.0001;
            snprintf(sess[k], 32, "s%llu", (unsigned long long)p.session);
            x->session = (gyre_tstr_t){sess[k], strlen(sess[k])};
            /* The conversation: the session's first task, then a turn per later step. */
            uint64_t first = p.session == i ? i : p.session;
            plan_t fp = p.step == 0 ? p : plan_of(first, seed);
            gyre_buf_reset(&task);
            task_of(fp.original, seed, &fp, p.step == 0 ? i : first, &task);
            gyre_buf_t *r = &req[k];
            gyre_buf_reset(r);
            gyre_buf_appends(r, "{\"model\":\"agents\",\"messages\":[{\"role\":\"system\",\"content\":\"You are a "
                                "helpful agent. Answer briefly and use the tools when they help.\"},"
                                "{\"role\":\"user\",\"content\":");
            gyre_buf_append_json_string(r, task.base, task.len);
            gyre_buf_appends(r, "}");
            for (int st = 1; st <= p.step; st++) {
                gyre_buf_reset(&turn);
                task_of(first + 1000003ULL * (uint64_t)st, seed, &(plan_t){0, 0, 0, 0}, 0, &turn);
                gyre_buf_appends(r, ",{\"role\":\"assistant\",\"content\":\"Noted, working on it.\"},"
                                    "{\"role\":\"user\",\"content\":");
                gyre_buf_append_json_string(r, turn.base, turn.len);
                gyre_buf_appends(r, "}");
            }
            gyre_buf_appends(r, "]}");
            gyre_buf_reset(&resp[k]);
            gyre_buf_appendf(&resp[k],
                             "{\"id\":\"c%llu\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":"
                             "{\"role\":\"assistant\",\"content\":\"Here is what I found about case %llu.\"},"
                             "\"finish_reason\":\"stop\"}]}",
                             (unsigned long long)i, (unsigned long long)(mix(i) % 1000));
            x->request_body = (gyre_tstr_t){req[k].base, req[k].len};
            x->response_body = (gyre_tstr_t){resp[k].base, resp[k].len};
            ptr[k] = x;
            sc[k] = (gyre_score_t){x->trace_id, sess[k], "correctness", GYRE_SCORE_JUDGE, "1",
                                   (double)(mix(i ^ 77) % 1000) / 1000.0, NULL, NULL, NULL, x->started_us + 1,
                                   x->started_us};
        }
        if (gyre_store_write_batch(s, ptr, m, err, sizeof(err)) != 0 ||
            gyre_store_write_scores(s, sc, m, err, sizeof(err)) != 0) {
            fprintf(stderr, "curate-bench: %s\n", err);
            return 1;
        }
        if ((base / BATCH) % 50 == 0)
            fprintf(stderr, "\rfilled %llu", (unsigned long long)(base + m));
    }
    fprintf(stderr, "\rfilled %llu traces in %.1f s\n", (unsigned long long)n, now_s() - t0);
    gyre_store_close(s);
    return 0;
}

/* Pairwise precision and recall of the predicted near-duplicate groups against the planted ones. */
typedef struct cell {
    uint64_t pred, truth;
} cell_t;

static int cell_cmp_cb(const void *a, const void *b)
{
    const cell_t *x = a, *y = b;
    if (x->pred != y->pred)
        return x->pred < y->pred ? -1 : 1;
    return (x->truth > y->truth) - (x->truth < y->truth);
}

static int u64_cmp_cb(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static double pairs(uint64_t k)
{
    return (double)k * (double)(k - 1) / 2;
}

static int curate(const char *db, uint64_t seed, const char *spec_path, int json)
{
    char err[512];
    char dsn[1024];
    snprintf(dsn, sizeof(dsn), "sqlite:%s", db);
    gyre_store_t *s;
    if (gyre_store_open(dsn, 0, &s, err, sizeof(err)) != 0) {
        fprintf(stderr, "curate-bench: %s\n", err);
        return 1;
    }
    const char *default_spec = "dedup: {threshold: 0.8}\nbalance: {cap: 50000, floor: 100}\ntarget_size: 200000\n"
                               "heldout: 0.1\nseed: 1\nformats: [openai, preference]\n"
                               "preference: {score: judge.correctness, margin: 0.5}\n";
    gyre_curate_spec_t *spec = spec_path != NULL ? gyre_curate_spec_load(spec_path, 0, err, sizeof(err))
                                                 : gyre_curate_spec_parse(default_spec, strlen(default_spec), "bench",
                                                                          0, err, sizeof(err));
    if (spec == NULL) {
        fprintf(stderr, "curate-bench: %s\n", err);
        return 1;
    }
    gyre_curation_t *c = NULL;
    double t0 = now_s();
    int rc = gyre_curate_run(s, spec, NULL, &c, err, sizeof(err));
    double total = now_s() - t0;
    if (rc != 0) {
        fprintf(stderr, "curate-bench: %s\n", err);
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);

    /* Every example that passed is in one predicted group (its kept one's index) and one planted group. */
    uint64_t n = c->in_source;
    uint64_t *pred = malloc((n + 1) * sizeof(*pred));
    for (uint64_t i = 0; i < n; i++)
        pred[i] = i;
    for (size_t g = 0; g < c->ndups; g++) {
        uint64_t kept = strtoull(c->dups[g].kept + 16, NULL, 16) - 1;
        for (size_t d = 0; d < c->dups[g].ndropped; d++) {
            uint64_t x = strtoull(c->dups[g].dropped[d] + 16, NULL, 16) - 1;
            if (x < n)
                pred[x] = kept;
        }
    }
    cell_t *cells = malloc((n + 1) * sizeof(*cells));
    uint64_t *tr = malloc((n + 1) * sizeof(*tr));
    for (uint64_t i = 0; i < n; i++) {
        plan_t p = plan_of(i, seed);
        /* Later steps of a session are their own tasks (the conversation grew): truth groups only first steps. */
        uint64_t truth = p.step == 0 ? p.original : i;
        cells[i] = (cell_t){pred[i], truth};
        tr[i] = truth;
    }
    qsort(cells, n, sizeof(*cells), cell_cmp_cb);
    double tp = 0, pp = 0, tpairs = 0;
    for (uint64_t i = 0; i < n;) {
        uint64_t j = i;
        while (j < n && cells[j].pred == cells[i].pred && cells[j].truth == cells[i].truth)
            j++;
        tp += pairs(j - i);
        i = j;
    }
    for (uint64_t i = 0; i < n; i++)
        tr[i] = cells[i].pred;
    qsort(tr, n, sizeof(*tr), u64_cmp_cb);
    for (uint64_t i = 0; i < n;) {
        uint64_t j = i;
        while (j < n && tr[j] == tr[i])
            j++;
        pp += pairs(j - i);
        i = j;
    }
    for (uint64_t i = 0; i < n; i++)
        tr[i] = cells[i].truth;
    qsort(tr, n, sizeof(*tr), u64_cmp_cb);
    for (uint64_t i = 0; i < n;) {
        uint64_t j = i;
        while (j < n && tr[j] == tr[i])
            j++;
        tpairs += pairs(j - i);
        i = j;
    }
    double precision = pp > 0 ? tp / pp : 1, recall = tpairs > 0 ? tp / tpairs : 1;
    if (json) {
        printf("{\"traces\":%llu,\"total_s\":%.3f,\"peak_rss_mb\":%.1f", (unsigned long long)c->scanned, total,
               (double)ru.ru_maxrss / 1024.0);
        for (int p = 0; p < GYRE_CURATE_PHASES; p++)
            printf(",\"%s_s\":%.3f,\"%s_cpu_s\":%.3f", gyre_curate_phase_names[p], c->phase_ms[p] / 1000,
                   gyre_curate_phase_names[p], c->phase_cpu_ms[p] / 1000);
        printf(",\"minhash_cpu_s\":%.3f,\"cpu_s\":%.3f", c->sign_cpu_ms / 1000,
               (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                   (double)ru.ru_stime.tv_usec / 1e6);
        printf(",\"selected\":%llu,\"heldout\":%llu,\"pairs\":%zu,\"dup_groups\":%zu,\"pairs_compared\":%llu,"
               "\"dedup_precision\":%.4f,\"dedup_recall\":%.4f,\"clusters\":%zu}\n",
               (unsigned long long)c->selected, (unsigned long long)c->heldout, c->npairs, c->ndups,
               (unsigned long long)c->pairs_compared, precision, recall, c->nclusters);
    } else {
        printf("curated %llu traces in %.2f s (CPU %.2f s), peak memory %.0f MB\n", (unsigned long long)c->scanned,
               total,
               (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                   (double)ru.ru_stime.tv_usec / 1e6,
               (double)ru.ru_maxrss / 1024.0);
        printf("  phase        wall s    CPU s\n");
        for (int p = 0; p < GYRE_CURATE_PHASES; p++)
            printf("  %-9s %9.2f %8.2f\n", gyre_curate_phase_names[p], c->phase_ms[p] / 1000,
                   c->phase_cpu_ms[p] / 1000);
        printf("  (of featurise: MinHash %.2f s CPU)\n", c->sign_cpu_ms / 1000);
        printf("selected %llu (held out %llu), %zu preference pairs, %zu clusters\n", (unsigned long long)c->selected,
               (unsigned long long)c->heldout, c->npairs, c->nclusters);
        printf("dedup: %zu groups, %llu pairs compared, precision %.4f recall %.4f\n", c->ndups,
               (unsigned long long)c->pairs_compared, precision, recall);
    }
    free(pred);
    free(cells);
    free(tr);
    gyre_curation_free(c);
    gyre_curate_spec_free(spec);
    gyre_store_close(s);
    return 0;
}

int main(int argc, char **argv)
{
    const char *db = NULL, *spec = NULL;
    uint64_t n = 0, seed = 1;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--fill") == 0 && i + 1 < argc)
            n = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--db") == 0 && i + 1 < argc)
            db = argv[++i];
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--spec") == 0 && i + 1 < argc)
            spec = argv[++i];
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else {
            fprintf(stderr, "usage: curate-bench [--fill N] --db PATH [--seed S] [--spec FILE] [--json]\n");
            return 2;
        }
    }
    if (db == NULL) {
        fprintf(stderr, "curate-bench: --db PATH is required\n");
        return 2;
    }
    if (n > 0)
        return fill(db, n, seed);
    return curate(db, seed, spec, json);
}
