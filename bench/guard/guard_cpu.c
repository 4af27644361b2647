/*
 * guard-cpu: what an in-line guardrail adds to a request (issue 14's target: a heuristic guardrail adds < 5 µs p99
 * per request for a 2 KB answer).
 *
 * Two measurements, on one thread, on a 2,048-byte answer of plain English prose (no match for any check, so each
 * check reads all of it, the costly case):
 *
 *   1. gyre_heuristic_run alone, per kind: regex (must_not, an SSN pattern), refusal and toxicity (the built-in
 *      lexicons), json_valid, length.
 *   2. The in-line path on the answer as src/proxy/guard.c runs it (check_completion): the first choice's text read
 *      out of the OpenAI chat.completion the proxy holds (gyre_guard_answer_text; the prose has line breaks, so
 *      it is decoded into the request's pool, the costlier case), and gyre_guard_run over the route's checks
 *      (counting, marking nothing since every check passes).
 *      Once with one check (the regex: "a heuristic guardrail"), once with three (regex, refusal, toxicity).
 *
 * Timing: clock_gettime(CLOCK_MONOTONIC) around each call, so the tail is the tail of single requests; the clock
 * pair's own cost is printed and NOT subtracted (the p99 printed is an upper bound).  10,000 warm-up calls first.
 *
 * Usage: guard-cpu [--calls N] [--json]   (exit 3 when the one-check in-line p99 misses 5 µs)
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <h2o.h>

#include "common/buf.h"
#include "common/json.h"
#include "config/config.h"
#include "loop/guard.h"
#include "loop/heuristic.h"

#define WARMUP 10000
#define ANSWER_BYTES 2048

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static uint32_t at(const uint32_t *s, size_t n, double q)
{
    size_t i = (size_t)(q * (double)n);
    return s[i < n ? i : n - 1];
}

static const char PROSE[] =
    "The quarterly report shows steady growth in the northern region, where the new distribution centre "
    "opened in March. Shipping times fell by two days on average, and customer satisfaction rose to its "
    "highest level since the survey began. The team recommends extending the same model to the southern "
    "warehouses next year, starting with the two largest sites.\n\n";

typedef struct timing {
    uint32_t p50, p99, p999;
} timing_t;

typedef struct bench_ctx {
    gyre_guard_t *guard;
    const gyre_route_conf_t *route;
    const char *completion;
    size_t completion_len;
    gyre_trace_t *trace;
    h2o_mem_pool_t *pool;
    const gyre_heuristic_t *h;
    const char *text;
    size_t len;
} bench_ctx_t;

/* One answer through the in-line path, as src/proxy/guard.c's check_completion runs it for text checks (the text
 * read out of the completion where it lies, decoded into the pool when escaped); returns the action. */
static int inline_path(bench_ctx_t *b)
{
    gyre_check_input_t in = {.latency_us = 1000, .cost_usd = NAN};
    if (gyre_guard_answer_text(b->completion, b->completion_len, b->pool, &in.text, &in.len) != 0)
        return 9;
    gyre_guard_outcome_t out;
    gyre_guard_run(b->guard, 0, b->route, 0, 0, &in, b->trace, b->pool, &out);
    return (int)out.action;
}

static int heuristic_only(bench_ctx_t *b)
{
    gyre_check_input_t in = {.text = b->text, .len = b->len, .latency_us = -1, .cost_usd = NAN};
    gyre_check_result_t r;
    gyre_heuristic_run(b->h, &in, &r);
    return r.pass ? 0 : 1;
}

/* The request's pool is let go between calls, untimed, as each request's is when it ends. */
static void reset(bench_ctx_t *b)
{
    h2o_mem_clear_pool(b->pool);
    h2o_mem_init_pool(b->pool);
}

static timing_t measure(int (*fn)(bench_ctx_t *), bench_ctx_t *b, uint32_t *t, size_t calls, unsigned *bad)
{
    for (size_t i = 0; i < WARMUP; i++) {
        *bad += (unsigned)fn(b);
        reset(b);
    }
    for (size_t i = 0; i < calls; i++) {
        reset(b);
        uint64_t t0 = now_ns();
        *bad += (unsigned)fn(b);
        uint64_t t1 = now_ns();
        t[i] = (uint32_t)(t1 - t0 > UINT32_MAX ? UINT32_MAX : t1 - t0);
    }
    qsort(t, calls, sizeof(*t), cmp_u32);
    return (timing_t){at(t, calls, 0.50), at(t, calls, 0.99), at(t, calls, 0.999)};
}

int main(int argc, char **argv)
{
    size_t calls = 200000;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--calls") == 0 && i + 1 < argc) {
            calls = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else {
            fprintf(stderr, "usage: guard-cpu [--calls N] [--json]\n");
            return 2;
        }
    }
    if (calls < 100) {
        fprintf(stderr, "guard-cpu: --calls must be at least 100\n");
        return 2;
    }
    gyre_json_init();
    static const char yaml[] = "providers:\n  - {name: p, kind: openai, base_url: 'http://127.0.0.1:9/v1'}\n"
                               "scorers:\n"
                               "  - {name: no_ssn, type: regex, must_not: ['[0-9]{3}-[0-9]{2}-[0-9]{4}']}\n"
                               "  - {name: refusal, type: refusal}\n"
                               "  - {name: toxicity, type: toxicity}\n"
                               "  - {name: json, type: json_valid}\n"
                               "  - {name: length, type: length, min_chars: 1, max_chars: 100000}\n"
                               "routes:\n"
                               "  - {name: one, targets: [{provider: p, model: m}], guardrails: [{check: no_ssn, action: deny}]}\n"
                               "  - {name: three, targets: [{provider: p, model: m}], guardrails: [{check: no_ssn, action: deny},\n"
                               "     {check: refusal, action: retry}, {check: toxicity, action: deny}]}\n";
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = gyre_config_parse("guard-cpu", yaml, strlen(yaml), &errs);
    char err[256];
    gyre_guard_t *g = c != NULL ? gyre_guard_create(c, 1, err, sizeof(err)) : NULL;
    if (g == NULL) {
        fprintf(stderr, "guard-cpu: the benchmark's configuration does not load\n");
        return 1;
    }
    /* The answer: 2,048 bytes of prose, and the chat.completion that carries it. */
    char text[ANSWER_BYTES + 1];
    for (size_t i = 0; i < ANSWER_BYTES; i++)
        text[i] = PROSE[i % (sizeof(PROSE) - 1)];
    text[ANSWER_BYTES] = '\0';
    gyre_buf_t completion;
    gyre_buf_init(&completion, 1 << 20);
    gyre_buf_appends(&completion, "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"created\":1700000000,"
                                  "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                                  "\"assistant\",\"content\":");
    gyre_buf_append_json_string(&completion, text, ANSWER_BYTES);
    gyre_buf_appends(&completion, "},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":50,"
                                  "\"completion_tokens\":420,\"total_tokens\":470}}");
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    gyre_trace_t trace;
    memset(&trace, 0, sizeof(trace));
    bench_ctx_t b = {.guard = g, .completion = completion.base, .completion_len = completion.len, .trace = &trace,
                     .pool = &pool, .text = text, .len = ANSWER_BYTES};
    uint32_t *t = malloc(calls * sizeof(*t));
    unsigned bad = 0;

    static const char *const kinds[] = {"regex", "refusal", "toxicity", "json_valid", "length"};
    timing_t kt[5];
    for (size_t k = 0; k < 5; k++) {
        gyre_heuristic_t *h = gyre_heuristic_compile(&c->scorers[k], err, sizeof(err));
        b.h = h;
        unsigned want_fail = k == 3; /* prose is not JSON: json_valid fails, every call, as counted below */
        unsigned before = bad;
        kt[k] = measure(heuristic_only, &b, t, calls, &bad);
        if (want_fail)
            bad = before + (bad - before == WARMUP + calls ? 0 : 1);
        gyre_heuristic_free(h);
    }
    b.route = &c->routes[0];
    timing_t one = measure(inline_path, &b, t, calls, &bad);
    b.route = &c->routes[1];
    timing_t three = measure(inline_path, &b, t, calls, &bad);
    for (size_t i = 0; i < calls; i++) {
        uint64_t t0 = now_ns();
        uint64_t t1 = now_ns();
        t[i] = (uint32_t)(t1 - t0);
    }
    qsort(t, calls, sizeof(*t), cmp_u32);
    uint32_t clk = at(t, calls, 0.5);
    if (bad != 0 || trace.ntags != 0) {
        fprintf(stderr, "guard-cpu: a check did not give the expected result (%u, %zu marks)\n", bad, trace.ntags);
        return 1;
    }
    int met = one.p99 < 5000;
    if (json) {
        printf("{\"calls\":%zu,\"answer_bytes\":%d", calls, ANSWER_BYTES);
        for (size_t k = 0; k < 5; k++)
            printf(",\"%s\":{\"p50_ns\":%u,\"p99_ns\":%u}", kinds[k], kt[k].p50, kt[k].p99);
        printf(",\"inline_one_check\":{\"p50_ns\":%u,\"p99_ns\":%u,\"p999_ns\":%u},\"inline_three_checks\":{\"p50_ns\":%u,"
               "\"p99_ns\":%u,\"p999_ns\":%u},\"clock_pair_p50_ns\":%u,\"target_p99_ns\":5000,\"met\":%s}\n",
               one.p50, one.p99, one.p999, three.p50, three.p99, three.p999, clk, met ? "true" : "false");
    } else {
        printf("* guardrails on a 2 KB answer, %zu calls timed one by one: the in-line path (the completion parsed, "
               "the route's checks run) with one regex check **p50 %u ns, p99 %u ns** (target: p99 < 5 µs%s), with "
               "three (regex, refusal, toxicity) p50 %u ns, p99 %u ns; gyre_heuristic_run alone, p99: regex %u ns, "
               "refusal %u ns, toxicity %u ns, json_valid %u ns, length %u ns; the clock_gettime pair, %u ns, not "
               "subtracted.\n",
               calls, one.p50, one.p99, met ? ", met" : ", NOT met", three.p50, three.p99, kt[0].p99, kt[1].p99,
               kt[2].p99, kt[3].p99, kt[4].p99, clk);
    }
    free(t);
    gyre_buf_dispose(&completion);
    h2o_mem_clear_pool(&pool);
    gyre_guard_destroy(g);
    gyre_config_free(c);
    gyre_config_errors_dispose(&errs);
    return met ? 0 : 3;
}
