/*
 * alerts-cpu: what alert evaluation costs (the control issue's target: < 1 % of one core at 20k req/s with
 * 20 rules), and what a finished request pays on its worker for its samples.
 *
 * It runs the engine (src/control/alerts.h) as the server does, without a server: 20 rules of every kind
 * of signal and grouping (by route, provider, key, agent, their pairs, none), windows of 1 and 5 minutes,
 * over 4 workers' tables, and 20,000 synthetic finished requests per simulated second (one attempt each,
 * spread over 4 routes x 2 providers x 4 keys x 8 agents, 1 % of them 429s, latencies 20..2000 ms) fed
 * through gyre_alerts_observe on this thread, then one gyre_alerts_tick per simulated second, as the
 * evaluator thread runs it.  Each tick's CPU time is measured with CLOCK_THREAD_CPUTIME_ID (only the tick
 * is inside the measurement); the observations' time is measured apart, per request.  Thresholds are set
 * so that nothing fires: the steady state, which is where the cost recurs.
 *
 * Usage: alerts-cpu [--seconds N] [--rate R] [--json]
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control/alerts.h"

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const char config_yaml[] =
    "providers:\n"
    "  - {name: pa, kind: openai, base_url: 'http://h/v1', keys: [ka0-012345678, ka1-012345678, ka2-012345678, "
    "ka3-012345678]}\n"
    "  - {name: pb, kind: openai, base_url: 'http://h/v1', keys: [kb0-012345678, kb1-012345678, kb2-012345678, "
    "kb3-012345678]}\n"
    "alerts:\n"
    "  - {name: r1, condition: p95_latency > 60s, by: route}\n"
    "  - {name: r2, condition: p99_latency > 60s, by: [route, provider], window: 5m}\n"
    "  - {name: r3, condition: p50_latency > 60s}\n"
    "  - {name: r4, condition: ttft_p95 > 60s, by: provider}\n"
    "  - {name: r5, condition: error_rate > 50%, by: provider}\n"
    "  - {name: r6, condition: error_rate > 50%, by: [route, provider], window: 5m}\n"
    "  - {name: r7, condition: rate_limited_rate > 50%, by: [provider, key]}\n"
    "  - {name: r8, condition: rate_limited_rate > 50%, by: [provider, key], window: 5m}\n"
    "  - {name: r9, condition: request_rate > 1000000, by: route}\n"
    "  - {name: r10, condition: request_rate > 1000000}\n"
    "  - {name: r11, condition: tokens_per_minute > 1000000000, by: agent}\n"
    "  - {name: r12, condition: tokens_per_minute > 1000000000, by: [route, agent], window: 5m}\n"
    "  - {name: r13, condition: cost_per_hour > $100000, by: agent}\n"
    "  - {name: r14, condition: cost_per_hour > $100000}\n"
    "  - {name: r15, condition: p95_latency > 60s, by: [route, provider, key, agent]}\n"
    "  - {name: r16, condition: error_rate > 50%, by: [route, provider, key, agent], window: 5m}\n"
    "  - {name: r17, condition: inflight > 100000}\n"
    "  - {name: r18, condition: queue_depth > 100000}\n"
    "  - {name: r19, condition: trace_log_lag > 1000000000000}\n"
    "  - {name: r20, condition: p95_latency > 60s, by: agent, window: 5m}\n";

int main(int argc, char **argv)
{
    int seconds = 120, rate = 20000, json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc)
            rate = atoi(argv[++i]);
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else {
            fprintf(stderr, "usage: alerts-cpu [--seconds N] [--rate R] [--json]\n");
            return 2;
        }
    }
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = gyre_config_parse("bench", config_yaml, strlen(config_yaml), &errs);
    if (c == NULL) {
        for (size_t i = 0; i < errs.count; i++)
            fprintf(stderr, "%s\n", errs.items[i]);
        return 1;
    }
    const unsigned nworkers = 4;
    gyre_alerts_t *a = gyre_alerts_create(c, NULL, nworkers, NULL);
    static const char *const routes[] = {"chat", "embed", "fast", "smart"}, *const provs[] = {"pa", "pb"};
    static const char *const agents[] = {"a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7"};
    char keyids[2][4][8];
    for (int p = 0; p < 2; p++)
        for (int k = 0; k < 4; k++)
            snprintf(keyids[p][k], sizeof(keyids[p][k]), "%s#%d", provs[p], k);
    gyre_trace_t t;
    memset(&t, 0, sizeof(t));
    t.nattempts = 1;
    uint64_t rng = 0x9E3779B97F4A7C15ULL, observe_ns = 0, tick_total = 0, tick_max = 0, n = 0;
    int64_t now = 1700000000LL * 1000000;
    for (int s = 0; s < seconds; s++) {
        uint64_t t0 = cpu_ns();
        for (int i = 0; i < rate; i++, n++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            int r = (int)(rng % 4), p = (int)((rng >> 8) % 2), k = (int)((rng >> 16) % 4), g = (int)((rng >> 24) % 8);
            t.route = (gyre_tstr_t){(char *)routes[r], strlen(routes[r])};
            t.provider = t.attempts[0].provider = (gyre_tstr_t){(char *)provs[p], 2};
            t.attempts[0].key_id = (gyre_tstr_t){keyids[p][k], strlen(keyids[p][k])};
            t.agent = (gyre_tstr_t){(char *)agents[g], 2};
            t.status = t.attempts[0].status = (rng >> 32) % 100 == 0 ? 429 : 200;
            t.started_us = now;
            t.ended_us = now + 20000 + (int64_t)((rng >> 40) % 1980000);
            t.ttft_us = (rng >> 20) % 2 ? (t.ended_us - t.started_us) / 4 : -1;
            t.prompt_tokens = 500;
            t.completion_tokens = 200;
            t.cost_usd = 0.0004;
            gyre_alerts_observe(a, (unsigned)(i % (int)nworkers), &t);
        }
        observe_ns += cpu_ns() - t0;
        now += 1000000;
        uint64_t c0 = cpu_ns();
        gyre_alerts_tick(a, now);
        uint64_t d = cpu_ns() - c0;
        tick_total += d;
        if (d > tick_max)
            tick_max = d;
    }
    double mean_ms = (double)tick_total / seconds / 1e6, max_ms = (double)tick_max / 1e6;
    double pct = mean_ms / 1000.0 * 100.0, obs_ns = (double)observe_ns / (double)n;
    if (json)
        printf("{\"bench\":\"alerts-cpu\",\"rules\":%zu,\"rate\":%d,\"seconds\":%d,\"tick_cpu_ms_mean\":%.4f,"
               "\"tick_cpu_ms_max\":%.4f,\"core_pct\":%.4f,\"observe_ns_per_request\":%.1f}\n",
               c->nalerts, rate, seconds, mean_ms, max_ms, pct, obs_ns);
    else
        printf("alerts-cpu: %zu rules at %d req/s over %d s: evaluation %.3f ms CPU per second (max %.3f ms) = "
               "%.3f %% of one core (target < 1 %%); samples %.0f ns per request on its worker\n",
               c->nalerts, rate, seconds, mean_ms, max_ms, pct, obs_ns);
    gyre_alerts_destroy(a);
    gyre_config_free(c);
    return 0;
}
