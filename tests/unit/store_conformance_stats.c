/*
 * The conformance suite's cases of the stats query (store_conformance.c
 * runs them for every backend): totals, groups and buckets on a known set
 * with exact answers, null cost and ttft, the edges of a range that no
 * whole minute covers, replays that must not count twice, and the rollup
 * against a full scan of random data.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/rollup.h"
#include "store_conformance.h"

#define TS(s) ((gyre_tstr_t){(char *)(s), sizeof(s) - 1})
#define STR(s) ((gyre_tstr_t){(char *)(s), strlen(s)})

/* 2026-12-01T10:00:00Z, on a whole hour. */
#define T0 1796119200000000LL
#define SEC 1000000LL
#define MIN (60 * SEC)
#define HOUR (3600 * SEC)


static void mini(gyre_trace_t *t, int n, int64_t started_us, int64_t latency_us)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->trace_id, sizeof(t->trace_id), "%032x", n);
    snprintf(t->span_id, sizeof(t->span_id), "%016x", n);
    t->started_us = started_us;
    t->ended_us = started_us + latency_us;
    t->ttft_us = -1;
    t->endpoint = TS("/v1/chat/completions");
    t->provider = TS("openai");
    t->model = TS("gpt-4o");
    t->status = 200;
    t->prompt_tokens = t->completion_tokens = t->cached_tokens = t->reasoning_tokens = -1;
    t->cost_usd = NAN;
}

static int write_all(gyre_store_t *s, gyre_trace_t *ts, size_t n)
{
    const gyre_trace_t **batch = malloc(n * sizeof(*batch));
    for (size_t i = 0; i < n; i++)
        batch[i] = &ts[i];
    char err[256] = "";
    int r = gyre_store_write_batch(s, batch, n, err, sizeof(err));
    if (r != 0)
        fprintf(stderr, "  write: %s\n", err);
    free(batch);
    return r;
}

/* The answer as a string (static storage, overwritten by the next call), or the error's text. */
static const char *stats(gyre_store_t *s, const gyre_stats_query_t *q, int *rc)
{
    static char text[1 << 16];
    gyre_buf_t b;
    char err[256] = "";
    gyre_buf_init(&b, 1 << 24);
    *rc = gyre_store_stats(s, q, &b, err, sizeof(err));
    snprintf(text, sizeof(text), "%s", *rc == 0 ? b.base : err);
    gyre_buf_dispose(&b);
    return text;
}

/* --- the histogram -------------------------------------------------------- */






/* --- a known set ---------------------------------------------------------- */

/*
 * Four calls over two hours: two to openai in the first (a 200 stream and a
 * 500), two to anthropic in the second (a 200 stream and a 429).
 */
static gyre_store_t *four(const char *dsn)
{
    gyre_store_t *s = gyre_store_case_open(dsn);
    gyre_trace_t t[4];
    mini(&t[0], 1, T0 + 10 * SEC, 100000);
    t[0].route = TS("chat");
    t[0].agent = TS("planner");
    t[0].user = TS("u1");
    t[0].stream = 1;
    t[0].ttft_us = 20000;
    t[0].prompt_tokens = 10;
    t[0].completion_tokens = 5;
    t[0].cached_tokens = 2;
    t[0].cost_usd = 0.001;
    mini(&t[1], 2, T0 + 70 * SEC, 200000);
    t[1].route = TS("chat");
    t[1].agent = TS("planner");
    t[1].user = TS("u2");
    t[1].status = 500;
    mini(&t[2], 3, T0 + HOUR + 5 * SEC, 300000);
    t[2].provider = TS("anthropic");
    t[2].model = TS("claude");
    t[2].agent = TS("coder");
    t[2].user = TS("u1");
    t[2].stream = 1;
    t[2].ttft_us = 40000;
    t[2].prompt_tokens = 20;
    t[2].completion_tokens = 10;
    t[2].reasoning_tokens = 7;
    t[2].cost_usd = 0.002;
    mini(&t[3], 4, T0 + HOUR + 65 * SEC, 400000);
    t[3].provider = TS("anthropic");
    t[3].model = TS("claude");
    t[3].agent = TS("coder");
    t[3].user = TS("u3");
    t[3].status = 429;
    write_all(s, t, 4);
    return s;
}

/* Latency percentiles as the histogram reads 100, 200, 300, 400, 20 and 40 ms (each within 1 %). */
#define L100 "99.741"
#define L200 "200.859"
#define L300 "299.65"
#define L400 "396.48"
#define L20 "20.136"
#define L40 "39.748"


void gyre_store_case_stats_totals_groups_and_hour_buckets_of_a_known_set(const char *dsn)
{
    gyre_store_t *s = four(dsn);
    gyre_stats_query_t q = {
        .from_us = T0, .to_us = T0 + 2 * HOUR, .group_by = GYRE_STATS_BY_PROVIDER, .bucket_us = HOUR};
    int rc;
    const char *got = stats(s, &q, &rc);
    CHECK_INT(rc, 0);
    CHECK_STR(got, "{\"from_us\":1796119200000000,\"to_us\":1796126400000000,\"bucket_us\":3600000000,"
                   "\"total\":{\"requests\":4,\"errors\":2,\"error_rate\":0.5,"
                   "\"latency_ms\":{\"p50\":" L200 ",\"p95\":" L400 ",\"p99\":" L400 "},"
                   "\"ttft_ms\":{\"p50\":" L20 ",\"p95\":" L40 ",\"p99\":" L40 "},"
                   "\"prompt_tokens\":30,\"completion_tokens\":15,\"cached_tokens\":2,\"reasoning_tokens\":7,"
                   "\"cost_usd\":0.003,\"cost_saved_usd\":0},"
                   "\"groups\":[{\"key\":{\"provider\":\"anthropic\"},\"requests\":2,\"errors\":1,\"error_rate\":0.5,"
                   "\"latency_ms\":{\"p50\":" L300 ",\"p95\":" L400 ",\"p99\":" L400 "},"
                   "\"ttft_ms\":{\"p50\":" L40 ",\"p95\":" L40 ",\"p99\":" L40 "},"
                   "\"prompt_tokens\":20,\"completion_tokens\":10,\"cached_tokens\":0,\"reasoning_tokens\":7,"
                   "\"cost_usd\":0.002,\"cost_saved_usd\":0},"
                   "{\"key\":{\"provider\":\"openai\"},\"requests\":2,\"errors\":1,\"error_rate\":0.5,"
                   "\"latency_ms\":{\"p50\":" L100 ",\"p95\":" L200 ",\"p99\":" L200 "},"
                   "\"ttft_ms\":{\"p50\":" L20 ",\"p95\":" L20 ",\"p99\":" L20 "},"
                   "\"prompt_tokens\":10,\"completion_tokens\":5,\"cached_tokens\":2,\"reasoning_tokens\":0,"
                   "\"cost_usd\":0.001,\"cost_saved_usd\":0}],"
                   "\"buckets\":[{\"start_us\":1796119200000000,\"requests\":2,\"errors\":1,\"error_rate\":0.5,"
                   "\"latency_ms\":{\"p50\":" L100 ",\"p95\":" L200 ",\"p99\":" L200 "},"
                   "\"ttft_ms\":{\"p50\":" L20 ",\"p95\":" L20 ",\"p99\":" L20 "},"
                   "\"prompt_tokens\":10,\"completion_tokens\":5,\"cached_tokens\":2,\"reasoning_tokens\":0,"
                   "\"cost_usd\":0.001,\"cost_saved_usd\":0},"
                   "{\"start_us\":1796122800000000,\"requests\":2,\"errors\":1,\"error_rate\":0.5,"
                   "\"latency_ms\":{\"p50\":" L300 ",\"p95\":" L400 ",\"p99\":" L400 "},"
                   "\"ttft_ms\":{\"p50\":" L40 ",\"p95\":" L40 ",\"p99\":" L40 "},"
                   "\"prompt_tokens\":20,\"completion_tokens\":10,\"cached_tokens\":0,\"reasoning_tokens\":7,"
                   "\"cost_usd\":0.002,\"cost_saved_usd\":0}]}");
    gyre_store_close(s);
}

/* The "requests" of the total, the groups' keys and requests, and the buckets' starts and requests. */
static void summary(const char *json, char *out, size_t outlen)
{
    cJSON *v = cJSON_Parse(json);
    size_t used = 0;
    out[0] = '\0';
    if (v == NULL)
        return;
    used += (size_t)snprintf(out + used, outlen - used, "total=%d",
                             cJSON_GetObjectItem(cJSON_GetObjectItem(v, "total"), "requests")->valueint);
    const cJSON *g;
    cJSON_ArrayForEach(g, cJSON_GetObjectItem(v, "groups"))
    {
        char *key = cJSON_PrintUnformatted(cJSON_GetObjectItem(g, "key"));
        used +=
            (size_t)snprintf(out + used, outlen - used, " %s=%d", key, cJSON_GetObjectItem(g, "requests")->valueint);
        free(key);
    }
    cJSON_ArrayForEach(g, cJSON_GetObjectItem(v, "buckets"))
    {
        used += (size_t)snprintf(out + used, outlen - used, " @%lld=%d",
                                 (long long)((cJSON_GetObjectItem(g, "start_us")->valuedouble - (double)T0) / MIN),
                                 cJSON_GetObjectItem(g, "requests")->valueint);
    }
    cJSON_Delete(v);
}

void gyre_store_case_stats_filters_and_groups_by_each_dimension(const char *dsn)
{
    gyre_store_t *s = four(dsn);
    static const struct {
        gyre_stats_query_t q;
        const char *want;
    } cases[] = {
        {{.from_us = T0, .to_us = T0 + 2 * HOUR, .route = "chat"}, "total=2"},
        {{.from_us = T0, .to_us = T0 + 2 * HOUR, .provider = "anthropic"}, "total=2"},
        {{.from_us = T0, .to_us = T0 + 2 * HOUR, .model = "gpt-4o"}, "total=2"},
        {{.from_us = T0, .to_us = T0 + 2 * HOUR, .agent = "coder"}, "total=2"},
        {{.from_us = T0, .to_us = T0 + 2 * HOUR, .user = "u1"}, "total=2"},
        {{.from_us = T0, .to_us = T0 + 2 * HOUR, .user = "u1", .provider = "openai"}, "total=1"},
        {{.from_us = T0, .to_us = T0 + 2 * HOUR, .user = "nobody"}, "total=0"},
        {{.from_us = T0, .to_us = T0 + 2 * HOUR, .group_by = GYRE_STATS_BY_USER},
         "total=4 {\"user\":\"u1\"}=2 {\"user\":\"u2\"}=1 {\"user\":\"u3\"}=1"},
        {{.from_us = T0, .to_us = T0 + 2 * HOUR, .group_by = GYRE_STATS_BY_ROUTE | GYRE_STATS_BY_AGENT},
         "total=4 {\"route\":\"\",\"agent\":\"coder\"}=2 {\"route\":\"chat\",\"agent\":\"planner\"}=2"},
        {{.from_us = T0, .to_us = T0 + 2 * HOUR, .group_by = GYRE_STATS_BY_MODEL, .user = "u1"},
         "total=2 {\"model\":\"claude\"}=1 {\"model\":\"gpt-4o\"}=1"},
        /* 5-minute buckets read minute rows; only the non-empty ones are listed. */
        {{.from_us = T0, .to_us = T0 + 2 * HOUR, .bucket_us = 5 * MIN}, "total=4 @0=2 @60=2"},
        {{.from_us = T0, .to_us = T0 + 2 * HOUR, .bucket_us = MIN}, "total=4 @0=1 @1=1 @60=1 @61=1"},
        {{.from_us = T0, .to_us = T0 + 2 * HOUR, .bucket_us = 24 * HOUR}, "total=4 @-600=4"},
    };
    char got[1024];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc;
        const char *json = stats(s, &cases[i].q, &rc);
        CHECK_INT(rc, 0);
        summary(json, got, sizeof(got));
        if (strcmp(got, cases[i].want) != 0)
            fprintf(stderr, "  case %zu:\n", i);
        CHECK_STR(got, cases[i].want);
    }
    gyre_store_close(s);
}

void gyre_store_case_stats_edges_that_no_whole_minute_covers_are_read_from_the_traces(const char *dsn)
{
    gyre_store_t *s = four(dsn);
    static const struct {
        int64_t from, to;
        const char *want;
    } cases[] = {
        {T0 + 10 * SEC, T0 + 10 * SEC + 1, "total=1"},        /* inside one minute */
        {T0 + 11 * SEC, T0 + HOUR + 6 * SEC, "total=2"},      /* 70 s and 1 h 5 s */
        {T0 - 30 * SEC, T0 + 2 * HOUR + 30 * SEC, "total=4"}, /* every kind of piece */
        {T0 + 70 * SEC, T0 + HOUR + 65 * SEC, "total=2"},     /* from is in, to is out */
        {T0 + 71 * SEC, T0 + HOUR + 5 * SEC, "total=0"},
    };
    char got[1024];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gyre_stats_query_t q = {.from_us = cases[i].from, .to_us = cases[i].to};
        int rc;
        summary(stats(s, &q, &rc), got, sizeof(got));
        CHECK_INT(rc, 0);
        if (strcmp(got, cases[i].want) != 0)
            fprintf(stderr, "  case %zu:\n", i);
        CHECK_STR(got, cases[i].want);
    }
    gyre_store_close(s);
}

void gyre_store_case_stats_an_empty_range_has_zero_requests_and_null_percentiles(const char *dsn)
{
    gyre_store_t *s = four(dsn);
    gyre_stats_query_t q = {
        .from_us = T0 + 5 * HOUR, .to_us = T0 + 6 * HOUR, .group_by = GYRE_STATS_BY_MODEL, .bucket_us = HOUR};
    int rc;
    CHECK_STR(stats(s, &q, &rc),
              "{\"from_us\":1796137200000000,\"to_us\":1796140800000000,\"bucket_us\":3600000000,"
              "\"total\":{\"requests\":0,\"errors\":0,\"error_rate\":0,\"latency_ms\":null,\"ttft_ms\":null,"
              "\"prompt_tokens\":0,\"completion_tokens\":0,\"cached_tokens\":0,\"reasoning_tokens\":0,"
              "\"cost_usd\":null,\"cost_saved_usd\":0},\"groups\":[],\"buckets\":[]}");
    CHECK_INT(rc, 0);
    gyre_store_close(s);
}

void gyre_store_case_stats_cost_is_null_when_no_call_had_a_known_cost_and_ttft_null_without_streams(const char *dsn)
{
    gyre_store_t *s = gyre_store_case_open(dsn);
    gyre_trace_t t[2];
    mini(&t[0], 1, T0 + SEC, 1000);
    mini(&t[1], 2, T0 + 2 * SEC, 3000);
    t[1].cost_usd = 0; /* known and free is 0, not null */
    CHECK_INT(write_all(s, t, 1), 0);
    gyre_stats_query_t q = {.from_us = T0, .to_us = T0 + HOUR};
    int rc;
    const char *got = stats(s, &q, &rc);
    CHECK(strstr(got, "\"ttft_ms\":null") != NULL);
    CHECK(strstr(got, "\"cost_usd\":null,\"cost_saved_usd\":0}") != NULL);
    CHECK_INT(write_all(s, t + 1, 1), 0);
    got = stats(s, &q, &rc);
    CHECK(strstr(got, "\"cost_usd\":0,\"cost_saved_usd\":0}") != NULL);
    gyre_store_close(s);
}

void gyre_store_case_stats_a_replayed_trace_is_not_counted_twice(const char *dsn)
{
    gyre_store_t *s = four(dsn);
    gyre_trace_t again;
    mini(&again, 1, T0 + 10 * SEC, 100000); /* trace 1, as a spool replay writes it again */
    CHECK_INT(write_all(s, &again, 1), 0);
    gyre_stats_query_t q = {.from_us = T0, .to_us = T0 + 2 * HOUR};
    char got[256];
    int rc;
    summary(stats(s, &q, &rc), got, sizeof(got));
    CHECK_STR(got, "total=4");
    gyre_store_close(s);
}

void gyre_store_case_stats_too_many_buckets_is_einval_naming_bucket(const char *dsn)
{
    gyre_store_t *s = gyre_store_case_open(dsn);
    gyre_stats_query_t q = {.from_us = T0, .to_us = T0 + 30 * 24 * HOUR, .bucket_us = MIN};
    int rc;
    CHECK_STR(stats(s, &q, &rc),
              "bucket: 43200 buckets over this range, more than 10080; use a larger bucket or a shorter range");
    CHECK_INT(rc, -EINVAL);
    q = (gyre_stats_query_t){.from_us = T0, .to_us = T0 + HOUR, .bucket_us = 90 * SEC};
    CHECK_STR(stats(s, &q, &rc), "bucket: must be a whole number of minutes");
    CHECK_INT(rc, -EINVAL);
    q = (gyre_stats_query_t){.from_us = T0 + HOUR, .to_us = T0};
    CHECK_STR(stats(s, &q, &rc), "to: must be later than from");
    CHECK_INT(rc, -EINVAL);
    gyre_store_close(s);
}


/* --- the rollup against a full scan ---------------------------------------- */

static unsigned long long rng_state = 88172645463325252ull;
static unsigned long long rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The exact nearest-rank percentile of v[0..n) (sorted). */
static double exact_pct(const int64_t *v, size_t n, int permille)
{
    size_t k = ((size_t)permille * n + 999) / 1000;
    return (double)v[(k ? k : 1) - 1];
}

/* Checks one STATS object against the traces in [from, to) that `pick` selects. */
static void check_against_scan(const cJSON *st, const gyre_trace_t *t, size_t n, int64_t from, int64_t to,
                               const char *provider, int64_t bucket_start, int64_t bucket_us)
{
    int64_t *lat = malloc(n * sizeof(*lat)), *ttft = malloc(n * sizeof(*ttft));
    size_t nl = 0, nt = 0;
    long long errors = 0, prompt = 0, completion = 0, cached = 0, reasoning = 0, cost_n = 0;
    double cost = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i].started_us < from || t[i].started_us >= to)
            continue;
        if (provider != NULL &&
            (t[i].provider.len != strlen(provider) || memcmp(t[i].provider.p, provider, t[i].provider.len)))
            continue;
        if (bucket_us > 0 && (t[i].started_us < bucket_start || t[i].started_us >= bucket_start + bucket_us))
            continue;
        lat[nl++] = t[i].ended_us - t[i].started_us;
        if (t[i].ttft_us >= 0)
            ttft[nt++] = t[i].ttft_us;
        errors += t[i].status >= 400;
        prompt += t[i].prompt_tokens > 0 ? t[i].prompt_tokens : 0;
        completion += t[i].completion_tokens > 0 ? t[i].completion_tokens : 0;
        cached += t[i].cached_tokens > 0 ? t[i].cached_tokens : 0;
        reasoning += t[i].reasoning_tokens > 0 ? t[i].reasoning_tokens : 0;
        if (isfinite(t[i].cost_usd)) {
            cost += t[i].cost_usd;
            cost_n++;
        }
    }
    CHECK_INT(cJSON_GetObjectItem(st, "requests")->valuedouble, nl);
    CHECK_INT(cJSON_GetObjectItem(st, "errors")->valuedouble, errors);
    CHECK_INT(cJSON_GetObjectItem(st, "prompt_tokens")->valuedouble, prompt);
    CHECK_INT(cJSON_GetObjectItem(st, "completion_tokens")->valuedouble, completion);
    CHECK_INT(cJSON_GetObjectItem(st, "cached_tokens")->valuedouble, cached);
    CHECK_INT(cJSON_GetObjectItem(st, "reasoning_tokens")->valuedouble, reasoning);
    const cJSON *c = cJSON_GetObjectItem(st, "cost_usd");
    CHECK(cost_n ? fabs(c->valuedouble - cost) < 1e-8 : cJSON_IsNull(c));
    qsort(lat, nl, sizeof(*lat), cmp_i64);
    qsort(ttft, nt, sizeof(*ttft), cmp_i64);
    static const int pm[] = {500, 950, 990};
    static const char *const names[] = {"p50", "p95", "p99"};
    for (int k = 0; k < 3; k++) {
        if (nl) {
            double want = exact_pct(lat, nl, pm[k]) / 1000.0;
            double got = cJSON_GetObjectItem(cJSON_GetObjectItem(st, "latency_ms"), names[k])->valuedouble;
            /* 1 % of the histogram, and the answer's rounding to the microsecond. */
            if (fabs(got - want) > want * GYRE_HIST_ALPHA + 0.0005) {
                fprintf(stderr, "  latency %s: %f, exact %f\n", names[k], got, want);
                CHECK(0);
            }
        }
        if (nt) {
            double want = exact_pct(ttft, nt, pm[k]) / 1000.0;
            double got = cJSON_GetObjectItem(cJSON_GetObjectItem(st, "ttft_ms"), names[k])->valuedouble;
            if (fabs(got - want) > want * GYRE_HIST_ALPHA + 0.0005) {
                fprintf(stderr, "  ttft %s: %f, exact %f\n", names[k], got, want);
                CHECK(0);
            }
        } else {
            CHECK(cJSON_IsNull(cJSON_GetObjectItem(st, "ttft_ms")));
        }
    }
    free(lat);
    free(ttft);
}

void gyre_store_case_stats_the_rollup_equals_a_full_scan_of_random_traces(const char *dsn)
{
    enum { N = 4000 };
    static const char *const providers[] = {"openai", "anthropic", "gemini", "bedrock"};
    static const char *const models[] = {"m1", "m2", "m3", "m4", "m5"};
    static const char *const users[] = {"", "u1", "u2", "u3", "u4", "u5", "u6", "u7"};
    gyre_trace_t *t = calloc(N, sizeof(*t));
    gyre_store_t *s = gyre_store_case_open(dsn);
    for (int i = 0; i < N; i++) {
        /* Log-uniform latencies from 1 ms to about 20 s, over three hours and a bit either side. */
        int64_t lat = (int64_t)(1000.0 * exp((double)(rng() % 10000) / 10000.0 * 10.0));
        mini(&t[i], i + 1, T0 - 20 * MIN + (int64_t)(rng() % (uint64_t)(3 * HOUR + 40 * MIN)), lat);
        /* One draw each: STR() reads its argument twice. */
        const char *provider = providers[rng() % 4], *model = models[rng() % 5], *user = users[rng() % 8];
        t[i].provider = STR(provider);
        t[i].model = STR(model);
        t[i].user = STR(user);
        t[i].agent = rng() % 2 ? TS("a") : TS("");
        t[i].status = rng() % 20 == 0 ? 502 : rng() % 30 == 0 ? 429 : 200;
        if (rng() % 2) {
            t[i].stream = 1;
            t[i].ttft_us = (int64_t)(rng() % (uint64_t)lat);
        }
        if (rng() % 5) {
            t[i].cost_usd = (double)(rng() % 100000) / 1e7;
            t[i].prompt_tokens = (int64_t)(rng() % 5000);
            t[i].completion_tokens = (int64_t)(rng() % 500);
        }
        if (rng() % 3 == 0)
            t[i].cached_tokens = (int64_t)(rng() % 100);
    }
    /* Batches of random sizes, so groups are upserted and their histograms merged many times. */
    for (int i = 0; i < N;) {
        int k = 1 + (int)(rng() % 600);
        if (k > N - i)
            k = N - i;
        CHECK_INT(write_all(s, t + i, (size_t)k), 0);
        i += k;
    }
    static const struct {
        int64_t from, to, bucket;
        unsigned group_by;
    } cases[] = {
        {T0, T0 + 3 * HOUR, 0, 0},                                 /* hour rows */
        {T0 - 7 * MIN - 13 * SEC, T0 + 2 * HOUR + 31 * SEC, 0, 0}, /* raw edges, minutes, hours */
        {T0 - 19 * MIN, T0 + 3 * HOUR + 19 * MIN, 15 * MIN, 0},    /* minute rows in buckets */
        {T0 - 30 * SEC, T0 + 3 * HOUR, HOUR, GYRE_STATS_BY_PROVIDER},
        {0, T0 + 3 * HOUR, 0, GYRE_STATS_BY_PROVIDER}, /* the default 24 h before `to` */
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        gyre_stats_query_t q = {.from_us = cases[c].from,
                                .to_us = cases[c].to,
                                .bucket_us = cases[c].bucket,
                                .group_by = cases[c].group_by};
        int64_t from = q.from_us ? q.from_us : q.to_us - 24 * HOUR;
        gyre_buf_t b;
        char err[256] = "";
        gyre_buf_init(&b, 1 << 24);
        CHECK_INT(gyre_store_stats(s, &q, &b, err, sizeof(err)), 0);
        cJSON *v = cJSON_Parse(b.base);
        CHECK(v != NULL);
        if (v == NULL)
            continue;
        check_against_scan(cJSON_GetObjectItem(v, "total"), t, N, from, q.to_us, NULL, 0, 0);
        const cJSON *g;
        int ngroups = 0, nbuckets = 0;
        cJSON_ArrayForEach(g, cJSON_GetObjectItem(v, "groups"))
        {
            const char *p = cJSON_GetObjectItem(cJSON_GetObjectItem(g, "key"), "provider")->valuestring;
            check_against_scan(g, t, N, from, q.to_us, p, 0, 0);
            ngroups++;
        }
        CHECK_INT(ngroups, q.group_by ? 4 : 0);
        cJSON_ArrayForEach(g, cJSON_GetObjectItem(v, "buckets"))
        {
            check_against_scan(g, t, N, from, q.to_us, NULL, (int64_t)cJSON_GetObjectItem(g, "start_us")->valuedouble,
                               q.bucket_us);
            nbuckets++;
        }
        CHECK_INT(nbuckets, c == 2 ? 16 : c == 3 ? 4 : 0);
        cJSON_Delete(v);
        gyre_buf_dispose(&b);
    }
    gyre_store_close(s);
    free(t);
}

/* Four calls of three gateway keys in two teams, across two hours (the rollup keeps no key: these read traces). */
static gyre_store_t *keyed(const char *dsn)
{
    gyre_store_t *s = gyre_store_case_open(dsn);
    gyre_trace_t t[4];
    static const struct {
        const char *key, *team;
        int64_t at;
        double cost;
    } calls[] = {
        {"gk_aaaaaaaaaaaa", "search", T0 + 10 * SEC, 0.25},
        {"gk_aaaaaaaaaaaa", "search", T0 + HOUR + 5 * SEC, 0.125},
        {"gk_bbbbbbbbbbbb", "search", T0 + 70 * SEC, 0.5},
        {"svc-a", "ads", T0 + HOUR + 65 * SEC, 1.0},
    };
    for (int i = 0; i < 4; i++) {
        mini(&t[i], i + 1, calls[i].at, 100000);
        t[i].client_key_id = (gyre_tstr_t){(char *)calls[i].key, strlen(calls[i].key)};
        t[i].team = (gyre_tstr_t){(char *)calls[i].team, strlen(calls[i].team)};
        t[i].cost_usd = calls[i].cost;
    }
    write_all(s, t, 4);
    return s;
}

/* "total=N $cost {key}=N $cost ..." */
static void cost_summary(const char *json, char *out, size_t outlen)
{
    cJSON *v = cJSON_Parse(json);
    size_t used = 0;
    out[0] = '\0';
    if (v == NULL)
        return;
    const cJSON *total = cJSON_GetObjectItem(v, "total");
    used += (size_t)snprintf(out + used, outlen - used, "total=%d $%g", cJSON_GetObjectItem(total, "requests")->valueint,
                             cJSON_GetObjectItem(total, "cost_usd")->valuedouble);
    const cJSON *g;
    cJSON_ArrayForEach(g, cJSON_GetObjectItem(v, "groups"))
    {
        char *key = cJSON_PrintUnformatted(cJSON_GetObjectItem(g, "key"));
        used += (size_t)snprintf(out + used, outlen - used, " %s=%d $%g", key,
                                 cJSON_GetObjectItem(g, "requests")->valueint,
                                 cJSON_GetObjectItem(g, "cost_usd")->valuedouble);
        free(key);
    }
    cJSON_Delete(v);
}

void gyre_store_case_stats_group_by_key_and_team_sums_the_cost_exactly(const char *dsn)
{
    gyre_store_t *s = keyed(dsn);
    static const struct {
        gyre_stats_query_t q;
        const char *want;
    } cases[] = {
        /* Costs that are sums of powers of two add exactly in binary: the sums are exact, not rounded. */
        {{.from_us = T0, .to_us = T0 + 2 * HOUR, .group_by = GYRE_STATS_BY_TEAM},
         "total=4 $1.875 {\"team\":\"search\"}=3 $0.875 {\"team\":\"ads\"}=1 $1"},
        {{.from_us = T0, .to_us = T0 + 2 * HOUR, .group_by = GYRE_STATS_BY_KEY},
         "total=4 $1.875 {\"key\":\"gk_aaaaaaaaaaaa\"}=2 $0.375 {\"key\":\"gk_bbbbbbbbbbbb\"}=1 $0.5 "
         "{\"key\":\"svc-a\"}=1 $1"},
        {{.from_us = T0, .to_us = T0 + 2 * HOUR, .team = "search", .group_by = GYRE_STATS_BY_KEY},
         "total=3 $0.875 {\"key\":\"gk_aaaaaaaaaaaa\"}=2 $0.375 {\"key\":\"gk_bbbbbbbbbbbb\"}=1 $0.5"},
        {{.from_us = T0, .to_us = T0 + 2 * HOUR, .key_id = "svc-a"}, "total=1 $1"},
        {{.from_us = T0, .to_us = T0 + 2 * HOUR, .key_id = "gk_nobody00000"}, "total=0 $0"},
    };
    char got[1024];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc;
        const char *json = stats(s, &cases[i].q, &rc);
        CHECK_INT(rc, 0);
        cost_summary(json, got, sizeof(got));
        if (strcmp(got, cases[i].want) != 0)
            fprintf(stderr, "  case %zu:\n", i);
        CHECK_STR(got, cases[i].want);
    }
    gyre_store_close(s);
}
