/* The eval gate's statistics and decision (src/loop/stats.c, src/loop/gate.c, issue 15 point 4). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "config/config.h"
#include "loop/gate.h"
#include "loop/stats.h"
#include "test.h"

/* ---- stats ---- */

TEST(stats_splitmix64_gives_the_published_sequence_from_seed_0)
{
    /* The first outputs of splitmix64 from state 0, as its reference implementation (Vigna) prints them. */
    uint64_t s = 0;
    CHECK(gyre_stats_next(&s) == 0xe220a8397b1dcdafULL);
    CHECK(gyre_stats_next(&s) == 0x6e789e6aa1b965f4ULL);
    CHECK(gyre_stats_next(&s) == 0x06c45d188009454fULL);
}

TEST(stats_index_is_the_high_half_of_draw_times_n)
{
    uint64_t s = 0, t = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = gyre_stats_next(&t);
        size_t want = (size_t)(((unsigned __int128)x * 7) >> 64);
        CHECK_INT(gyre_stats_index(&s, 7), want);
    }
}

TEST(stats_p95_is_the_nearest_rank)
{
    double a[20], b[100], c[1] = {4.5};
    for (int i = 0; i < 20; i++)
        a[i] = 20 - i; /* unsorted on purpose */
    for (int i = 0; i < 100; i++)
        b[i] = i + 1;
    CHECK(gyre_stats_p95(a, 20) == 19); /* ceil(0.95 x 20) = 19th */
    CHECK(gyre_stats_p95(b, 100) == 95);
    CHECK(gyre_stats_p95(c, 1) == 4.5);
}

TEST(stats_bootstrap_of_a_constant_difference_is_that_constant)
{
    /* Quarters over 8 pairs: every sum and mean is exact in doubles, so the difference is exactly 0.25. */
    double a[8], b[8];
    for (int i = 0; i < 8; i++) {
        a[i] = 0.5 + i;
        b[i] = 0.25 + i;
    }
    gyre_stats_ci_t ci;
    CHECK_INT(gyre_stats_bootstrap(GYRE_STATS_MEAN_DIFF, a, b, 8, 500, 0.95, 1, &ci), 0);
    CHECK(ci.point == 0.25 && ci.lo == 0.25 && ci.hi == 0.25);
}

TEST(stats_bootstrap_of_two_pairs_matches_the_enumerated_distribution)
{
    /* Differences {0, 1}: a resample's mean is 0, 0.5 or 1 with probabilities 1/4, 1/2, 1/4 (the four index
     * pairs enumerated).  With 4000 resamples the 2.5 % and 97.5 % ranks (100 and 3899) fall in the first and
     * last quarter: 0 and 1; at 40 % confidence the ranks 1200 and 2799 fall in the middle half: 0.5 both. */
    double a[2] = {0, 1}, b[2] = {0, 0};
    gyre_stats_ci_t ci;
    CHECK_INT(gyre_stats_bootstrap(GYRE_STATS_MEAN_DIFF, a, b, 2, 4000, 0.95, 42, &ci), 0);
    CHECK(ci.point == 0.5);
    CHECK(ci.lo == 0 && ci.hi == 1);
    CHECK_INT(gyre_stats_bootstrap(GYRE_STATS_MEAN_DIFF, a, b, 2, 4000, 0.40, 42, &ci), 0);
    CHECK(ci.lo == 0.5 && ci.hi == 0.5);
}

static int cmp_d(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

TEST(stats_bootstrap_equals_an_independent_computation_of_the_documented_algorithm)
{
    /* The documented algorithm written again here, plainly: splitmix64, multiply-shift indices, the sorted
     * resample means, ranks floor(R (1 - c) / 2) and R - 1 - that. */
    enum { N = 13, R = 1000 };
    double a[N], b[N];
    for (int i = 0; i < N; i++) {
        a[i] = (i * 37 % 11) / 10.0;
        b[i] = (i * 17 % 7) / 6.0;
    }
    uint64_t st = 99;
    double means[R];
    for (int r = 0; r < R; r++) {
        double sa = 0, sb = 0;
        for (int i = 0; i < N; i++) {
            uint64_t z = (st += 0x9e3779b97f4a7c15ULL);
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
            z ^= z >> 31;
            size_t k = (size_t)(((unsigned __int128)z * N) >> 64);
            sa += a[k];
            sb += b[k];
        }
        means[r] = sa / N - sb / N;
    }
    qsort(means, R, sizeof(double), cmp_d);
    gyre_stats_ci_t ci;
    CHECK_INT(gyre_stats_bootstrap(GYRE_STATS_MEAN_DIFF, a, b, N, R, 0.9, 99, &ci), 0);
    CHECK(ci.lo == means[50]);
    CHECK(ci.hi == means[949]);
}

TEST(stats_bootstrap_is_the_same_for_the_same_seed_and_not_for_another)
{
    double a[30], b[30];
    for (int i = 0; i < 30; i++) {
        a[i] = (i * 7 % 10) / 9.0;
        b[i] = (i * 3 % 5) / 4.0;
    }
    gyre_stats_ci_t x, y, z;
    CHECK_INT(gyre_stats_bootstrap(GYRE_STATS_P95_REL, a, b, 30, 300, 0.95, 5, &x), 0);
    CHECK_INT(gyre_stats_bootstrap(GYRE_STATS_P95_REL, a, b, 30, 300, 0.95, 5, &y), 0);
    CHECK(memcmp(&x, &y, sizeof(x)) == 0);
    CHECK_INT(gyre_stats_bootstrap(GYRE_STATS_MEAN_DIFF, a, b, 30, 300, 0.95, 5, &x), 0);
    CHECK_INT(gyre_stats_bootstrap(GYRE_STATS_MEAN_DIFF, a, b, 30, 300, 0.95, 6, &z), 0);
    CHECK(x.lo != z.lo || x.hi != z.hi);
    CHECK(gyre_stats_seed(1, "cost") == gyre_stats_seed(1, "cost"));
    CHECK(gyre_stats_seed(1, "cost") != gyre_stats_seed(1, "latency_p95"));
}

TEST(stats_relative_statistics_divide_by_the_incumbent)
{
    double a[4] = {2, 2, 2, 2}, b[4] = {1, 1, 1, 1}, z[4] = {0, 0, 0, 0};
    CHECK(gyre_stats_statistic(GYRE_STATS_MEAN_REL, a, b, 4) == 1.0);
    CHECK(gyre_stats_statistic(GYRE_STATS_P95_REL, b, a, 4) == -0.5);
    CHECK(gyre_stats_statistic(GYRE_STATS_MEAN_REL, z, z, 4) == 0);
    CHECK(isinf(gyre_stats_statistic(GYRE_STATS_MEAN_REL, a, z, 4)));
    gyre_stats_ci_t ci;
    CHECK_INT(gyre_stats_bootstrap(GYRE_STATS_MEAN_DIFF, a, b, 0, 10, 0.95, 1, &ci), -EINVAL);
    CHECK_INT(gyre_stats_bootstrap(GYRE_STATS_MEAN_DIFF, a, b, 4, 10, 1.0, 1, &ci), -EINVAL);
    CHECK_INT(gyre_stats_bootstrap(GYRE_STATS_MEAN_DIFF, a, b, 4, 0, 0.95, 1, &ci), -EINVAL);
}

/* ---- the decision on planted observations ---- */

static char *scorer_names[] = {"correct", "polite"};

static void plant(gyre_gate_obs_t *o, size_t n, double cand, double inc)
{
    memset(o, 0, n * sizeof(*o));
    for (size_t i = 0; i < n; i++) {
        o[i].line = (unsigned)i + 1;
        snprintf(o[i].cluster, sizeof(o[i].cluster), "%zu", i % 2);
        o[i].cand.scores[0] = cand;
        o[i].inc.scores[0] = inc;
        o[i].cand.scores[1] = o[i].inc.scores[1] = i % 2;
        o[i].cand.latency_ms = o[i].inc.latency_ms = 100 + (double)i;
        o[i].cand.cost_usd = o[i].inc.cost_usd = 0.001;
    }
}

static gyre_gate_conf_t conf_with(gyre_gate_rule_t *rules, size_t nrules)
{
    gyre_gate_conf_t c = {.scorers = scorer_names,
                          .nscorers = 2,
                          .rules = rules,
                          .nrules = nrules,
                          .confidence = 0.95,
                          .resamples = 500,
                          .limit = 500,
                          .concurrency = 4,
                          .seed = 1};
    return c;
}

static int decide(const gyre_gate_conf_t *c, const gyre_gate_obs_t *o, size_t n, gyre_buf_t *json, gyre_buf_t *md)
{
    gyre_gate_input_t in = {
        .candidate = "p/cand", .incumbent = "p/inc", .dataset = "ds", .conf = c, .obs = o, .nobs = n};
    int passed = -1;
    char err[256] = "";
    int rc = gyre_gate_decide(&in, json, md, &passed, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "  decide: %s\n", err);
        return rc;
    }
    return passed;
}

TEST(gate_a_better_candidate_passes)
{
    gyre_gate_obs_t o[20];
    plant(o, 20, 0.9, 0.6);
    gyre_gate_rule_t r[] = {{.kind = GYRE_GATE_SCORER, .scorer = "correct", .max_drop = 0.01}};
    gyre_gate_conf_t c = conf_with(r, 1);
    gyre_buf_t j, md;
    gyre_buf_init(&j, 1 << 20);
    gyre_buf_init(&md, 1 << 20);
    CHECK_INT(decide(&c, o, 20, &j, &md), 1);
    CHECK(strstr(j.base, "\"passed\":true,\"reasons\":[]") != NULL);
    CHECK(strstr(md.base, "# Eval gate: PASS") != NULL);
    CHECK(strstr(md.base, "| correct | 0.600 | 0.900 | +0.300 [+0.300, +0.300] | difference >= -0.01 | PASS |") !=
          NULL);
    gyre_buf_dispose(&j);
    gyre_buf_dispose(&md);
}

TEST(gate_a_candidate_worse_by_more_than_max_drop_fails_naming_the_metric)
{
    gyre_gate_obs_t o[20];
    plant(o, 20, 0.5, 0.6);
    gyre_gate_rule_t r[] = {{.kind = GYRE_GATE_SCORER, .scorer = "correct", .max_drop = 0.05},
                            {.kind = GYRE_GATE_SCORER, .scorer = "polite", .max_drop = 0.05}};
    gyre_gate_conf_t c = conf_with(r, 2);
    gyre_buf_t j, md;
    gyre_buf_init(&j, 1 << 20);
    gyre_buf_init(&md, 1 << 20);
    CHECK_INT(decide(&c, o, 20, &j, &md), 0);
    CHECK(strstr(j.base,
                 "\"reasons\":[\"correct: the 95 % interval's lower bound -0.1000 is below -0.05 (max_drop)\"]") !=
          NULL);
    CHECK(strstr(md.base, "| correct | 0.600 | 0.500 | -0.100 [-0.100, -0.100] | difference >= -0.05 | **FAIL** |") !=
          NULL);
    CHECK(strstr(md.base, "| polite | 0.500 | 0.500 | +0.000 [+0.000, +0.000] | difference >= -0.05 | PASS |") != NULL);
    CHECK(strstr(md.base, "**FAIL**:\n\n- correct: ") != NULL);
    gyre_buf_dispose(&j);
    gyre_buf_dispose(&md);
}

TEST(gate_within_max_drop_passes_at_the_bound)
{
    gyre_gate_obs_t o[10];
    plant(o, 10, 0.99, 1.0); /* 0.99 - 1.0 is -0.010000000000000009 in doubles: still within 0.01 */
    gyre_gate_rule_t r[] = {{.kind = GYRE_GATE_SCORER, .scorer = "correct", .max_drop = 0.01}};
    gyre_gate_conf_t c = conf_with(r, 1);
    CHECK_INT(decide(&c, o, 10, NULL, NULL), 1);
}

TEST(gate_a_cost_increase_beyond_max_increase_fails)
{
    gyre_gate_obs_t o[20];
    plant(o, 20, 0.6, 0.6);
    for (int i = 0; i < 20; i++)
        o[i].cand.cost_usd = 0.0013; /* 30 % dearer */
    gyre_gate_rule_t r[] = {{.kind = GYRE_GATE_COST, .max_increase = 0.1}};
    gyre_gate_conf_t c = conf_with(r, 1);
    gyre_buf_t j;
    gyre_buf_init(&j, 1 << 20);
    CHECK_INT(decide(&c, o, 20, &j, NULL), 0);
    CHECK(strstr(j.base,
                 "\"reasons\":[\"cost per request (USD): the 95 % interval's upper bound +30.00 % is above +10 % "
                 "(max_increase)\"]") != NULL);
    r[0].max_increase = 0.35;
    CHECK_INT(decide(&c, o, 20, NULL, NULL), 1);
    gyre_buf_dispose(&j);
}

TEST(gate_latency_and_error_rate_rules_read_their_upper_bounds)
{
    gyre_gate_obs_t o[20];
    plant(o, 20, 0.6, 0.6);
    for (int i = 0; i < 20; i++)
        o[i].cand.latency_ms = 2 * o[i].inc.latency_ms;
    o[3].cand.error = 1;
    gyre_gate_rule_t r[] = {{.kind = GYRE_GATE_LATENCY_P95, .max_increase = 0.5}};
    gyre_gate_conf_t c = conf_with(r, 1);
    CHECK_INT(decide(&c, o, 20, NULL, NULL), 0);
    r[0].max_increase = 1.0;
    CHECK_INT(decide(&c, o, 20, NULL, NULL), 1);
    gyre_gate_rule_t e[] = {{.kind = GYRE_GATE_ERROR_RATE, .max_increase = 0}};
    c = conf_with(e, 1);
    CHECK_INT(decide(&c, o, 20, NULL, NULL), 0);
    /* One failed line in 20: a resample holds it 4 times or more with probability 1.6 %, so the 97.5 % rank is at
     * most 3 / 20 = 0.15, within 0.2. */
    e[0].max_increase = 0.2;
    CHECK_INT(decide(&c, o, 20, NULL, NULL), 1);
}

TEST(gate_a_failed_call_counts_zero_on_every_scorer)
{
    gyre_gate_obs_t o[10];
    plant(o, 10, 1.0, 1.0);
    for (int i = 0; i < 10; i++) {
        o[i].cand.error = 1;
        o[i].cand.scores[0] = NAN; /* a failed call is not scored */
    }
    gyre_gate_rule_t r[] = {{.kind = GYRE_GATE_SCORER, .scorer = "correct", .max_drop = 0.5}};
    gyre_gate_conf_t c = conf_with(r, 1);
    gyre_buf_t j;
    gyre_buf_init(&j, 1 << 20);
    CHECK_INT(decide(&c, o, 10, &j, NULL), 0);
    CHECK(strstr(j.base, "{\"metric\":\"scorer:correct\",\"statistic\":\"mean difference\",\"n\":10,\"incumbent\":1,"
                         "\"candidate\":0,\"diff\":-1,") != NULL);
    gyre_buf_dispose(&j);
}

TEST(gate_a_cluster_dropping_more_than_cluster_max_drop_fails_naming_the_cluster)
{
    gyre_gate_obs_t o[20];
    plant(o, 20, 0.8, 0.8);
    for (int i = 1; i < 20; i += 2)
        o[i].cand.scores[0] = 0.5; /* cluster "1" drops by 0.3, the whole by 0.15 */
    gyre_gate_rule_t r[] = {{.kind = GYRE_GATE_SCORER, .scorer = "correct", .max_drop = 0.3},
                            {.kind = GYRE_GATE_CLUSTER, .max_drop = 0.05}};
    gyre_gate_conf_t c = conf_with(r, 2);
    gyre_buf_t j, md;
    gyre_buf_init(&j, 1 << 20);
    gyre_buf_init(&md, 1 << 20);
    CHECK_INT(decide(&c, o, 20, &j, &md), 0);
    CHECK(strstr(j.base, "\"reasons\":[\"cluster 1, correct: the candidate is worse by 0.3000 (0.500 against 0.800), "
                         "more than 0.05 (cluster_max_drop)\"]") != NULL);
    CHECK(strstr(md.base, "| 0 | 10 | correct | 0.800 | 0.800 | +0.000 [+0.000, +0.000] | PASS |") != NULL);
    CHECK(strstr(md.base, "| 1 | 10 | correct | 0.800 | 0.500 | -0.300 [-0.300, -0.300] | **FAIL** |") != NULL);
    gyre_buf_dispose(&j);
    gyre_buf_dispose(&md);
}

TEST(gate_a_cluster_of_fewer_than_five_lines_is_not_held_to_cluster_max_drop)
{
    gyre_gate_obs_t o[8];
    plant(o, 8, 0.8, 0.8);
    for (int i = 0; i < 8; i++)
        snprintf(o[i].cluster, sizeof(o[i].cluster), "%s", i < 4 ? "small" : "big");
    for (int i = 0; i < 4; i++)
        o[i].cand.scores[0] = 0; /* "small" drops by 0.8 with 4 lines */
    gyre_gate_rule_t r[] = {{.kind = GYRE_GATE_CLUSTER, .max_drop = 0.05}};
    gyre_gate_conf_t c = conf_with(r, 1);
    gyre_buf_t md;
    gyre_buf_init(&md, 1 << 20);
    CHECK_INT(decide(&c, o, 8, NULL, &md), 1);
    CHECK(strstr(md.base, "| small | 4 | correct | 0.800 | 0.000 | -0.800 [") != NULL);
    CHECK(strstr(md.base, "| not held (too few lines) |") != NULL);
    gyre_buf_dispose(&md);
}

TEST(gate_without_rules_holds_every_scorer_to_a_drop_of_0_01)
{
    gyre_gate_obs_t o[10];
    plant(o, 10, 0.7, 0.72);
    gyre_gate_conf_t c = conf_with(NULL, 0);
    gyre_buf_t j;
    gyre_buf_init(&j, 1 << 20);
    CHECK_INT(decide(&c, o, 10, &j, NULL), 0);
    CHECK(strstr(j.base, "\"default_rules\":true") != NULL);
    CHECK(strstr(j.base, "is below -0.01 (max_drop)") != NULL);
    plant(o, 10, 0.715, 0.72);
    CHECK_INT(decide(&c, o, 10, NULL, NULL), 1);
    gyre_buf_dispose(&j);
}

TEST(gate_a_rule_naming_a_scorer_the_gate_does_not_run_is_an_error)
{
    gyre_gate_obs_t o[3];
    plant(o, 3, 1, 1);
    gyre_gate_rule_t r[] = {{.kind = GYRE_GATE_SCORER, .scorer = "tone", .max_drop = 0.01}};
    gyre_gate_conf_t c = conf_with(r, 1);
    gyre_gate_input_t in = {.conf = &c, .obs = o, .nobs = 3};
    int passed;
    char err[256];
    CHECK_INT(gyre_gate_decide(&in, NULL, NULL, &passed, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "gate: rules[0]: metric tone is not one of the gate's scorers");
    in.nobs = 0;
    CHECK_INT(gyre_gate_decide(&in, NULL, NULL, &passed, err, sizeof(err)), -EINVAL);
}

/* ---- the decision from a stored report ---- */

static void noisy(gyre_gate_obs_t *o, size_t n)
{
    plant(o, n, 0, 0);
    for (size_t i = 0; i < n; i++) {
        o[i].cand.scores[0] = (double)((i * 7) % 10) / 9.0;
        o[i].inc.scores[0] = (double)((i * 3) % 10) / 9.0;
        o[i].cand.latency_ms = 10 + (double)((i * 13) % 17) / 3.0;
        o[i].cand.cost_usd = i % 5 == 0 ? NAN : 0.000123 * (double)(i % 3 + 1);
    }
}

TEST(gate_decide_report_gives_the_stored_verdict_from_the_report_alone)
{
    gyre_gate_obs_t o[40];
    noisy(o, 40);
    gyre_gate_rule_t r[] = {{.kind = GYRE_GATE_SCORER, .scorer = "correct", .max_drop = 0.01},
                            {.kind = GYRE_GATE_COST, .max_increase = 0.5},
                            {.kind = GYRE_GATE_CLUSTER, .max_drop = 0.05}};
    gyre_gate_conf_t c = conf_with(r, 3);
    c.seed = 18446744073709551615ULL; /* a seed no double holds: the report keeps it as a string */
    for (int want = 0; want < 2; want++) {
        gyre_buf_t j;
        gyre_buf_init(&j, 1 << 20);
        int passed = decide(&c, o, 40, &j, NULL);
        CHECK(passed == 0 || passed == 1);
        char err[256] = "";
        CHECK_INT(gyre_gate_decide_report(j.base, j.len, err, sizeof(err)), passed);
        CHECK_STR(err, "");
        gyre_buf_dispose(&j);
        r[0].max_drop = 1; /* the second round: a verdict of the other kind */
        r[1].max_increase = 10;
        r[2].max_drop = 1;
    }
}

TEST(gate_decide_report_follows_a_tampered_reports_observations)
{
    gyre_gate_obs_t o[10];
    plant(o, 10, 1, 1);
    gyre_gate_rule_t r[] = {{.kind = GYRE_GATE_SCORER, .scorer = "correct", .max_drop = 0.01}};
    gyre_gate_conf_t c = conf_with(r, 1);
    gyre_buf_t j;
    gyre_buf_init(&j, 1 << 20);
    CHECK_INT(decide(&c, o, 10, &j, NULL), 1);
    /* The candidate's first score on every line becomes 0: its observations now fail it. */
    char *p = j.base;
    int changed = 0;
    while ((p = strstr(p, "\"candidate\":{\"error\":false,\"latency_ms\":")) != NULL) {
        char *s = strstr(p, "\"scores\":[1,");
        if (s == NULL)
            break;
        s[strlen("\"scores\":[")] = '0';
        changed++;
        p = s;
    }
    CHECK_INT(changed, 10);
    char err[256] = "";
    CHECK_INT(gyre_gate_decide_report(j.base, j.len, err, sizeof(err)), 0);
    CHECK_STR(err, "gate report: it says pass, its observations give fail");
    gyre_buf_dispose(&j);
}

TEST(gate_decide_report_refuses_a_report_it_cannot_read)
{
    char err[256];
    CHECK_INT(gyre_gate_decide_report("[]", 2, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "gate report: not a JSON object");
    const char *noseed = "{\"conf\":{\"scorers\":[\"a\"],\"rules\":[],\"confidence\":0.95,\"resamples\":10,\"seed\":1},"
                         "\"observations\":[]}";
    CHECK_INT(gyre_gate_decide_report(noseed, strlen(noseed), err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "gate report: conf.seed: not a string of decimal digits");
    const char *short_scores =
        "{\"conf\":{\"scorers\":[\"a\"],\"rules\":[],\"confidence\":0.95,\"resamples\":10,\"seed\":\"1\"},"
        "\"observations\":[{\"line\":1,\"cluster\":\"all\",\"candidate\":{\"error\":false,\"latency_ms\":1,"
        "\"cost_usd\":null,\"scores\":[]},\"incumbent\":{}}]}";
    CHECK_INT(gyre_gate_decide_report(short_scores, strlen(short_scores), err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "gate report: observations[0].candidate.scores: not an array of 1 scores");
    const char *empty = "{\"conf\":{\"scorers\":[\"a\"],\"rules\":[],\"confidence\":0.95,\"resamples\":10,"
                        "\"seed\":\"1\"},\"observations\":[]}";
    CHECK_INT(gyre_gate_decide_report(empty, strlen(empty), err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "gate report: gate: no held-out line to compare on");
}

/* ---- the dataset's lines ---- */

TEST(gate_split_line_drops_the_final_answer_and_keeps_it_as_the_reference)
{
    const char *line = "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":"
                       "\"Capital of France?\"},{\"role\":\"assistant\",\"content\":\"Paris.\"}],\"tools\":[{\"type\":"
                       "\"function\",\"function\":{\"name\":\"f\"}}]}";
    gyre_buf_t m, t, ref;
    gyre_buf_init(&m, 1 << 16);
    gyre_buf_init(&t, 1 << 16);
    gyre_buf_init(&ref, 1 << 16);
    char err[128] = "";
    CHECK_INT(gyre_gate_split_line(line, strlen(line), &m, &t, &ref, err, sizeof(err)), 0);
    CHECK_STR(m.base, "[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Capital of "
                      "France?\"}]");
    CHECK_STR(t.base, "[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]");
    CHECK_STR(ref.base, "Paris.");
    gyre_buf_reset(&m);
    gyre_buf_reset(&t);
    gyre_buf_reset(&ref);
    const char *call = "{\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"},{\"role\":\"assistant\","
                       "\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                       "\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}]}]}";
    CHECK_INT(gyre_gate_split_line(call, strlen(call), &m, &t, &ref, err, sizeof(err)), 0);
    CHECK_STR(ref.base, "get_weather({\"city\":\"Oslo\"})");
    CHECK_INT(t.len, 0);
    const char *noanswer =
        "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"b\"}]}";
    CHECK_INT(gyre_gate_split_line(noanswer, strlen(noanswer), &m, &t, &ref, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "messages[1].role: the last message is not the assistant's answer");
    CHECK_INT(gyre_gate_split_line("{", 1, &m, &t, &ref, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "not a JSON object");
    gyre_buf_dispose(&m);
    gyre_buf_dispose(&t);
    gyre_buf_dispose(&ref);
}

TEST(gate_manifest_maps_each_heldout_line_to_its_cluster_or_all_of_them_to_all)
{
    const char *man = "{\"id\":\"x\",\"examples\":[{\"file\":\"train.jsonl\",\"line\":1,\"cluster\":9},"
                      "{\"file\":\"heldout.jsonl\",\"line\":1,\"trace_id\":\"t\",\"cluster\":3},"
                      "{\"file\":\"heldout.jsonl\",\"line\":2,\"cluster\":-1}]}";
    char cl[3][GYRE_GATE_CLUSTER_NAME];
    CHECK_INT(gyre_gate_manifest_clusters(man, strlen(man), cl, 2), 1);
    CHECK_STR(cl[0], "3");
    CHECK_STR(cl[1], "-1");
    /* A third line the manifest does not name: every line is "all". */
    CHECK_INT(gyre_gate_manifest_clusters(man, strlen(man), cl, 3), 0);
    CHECK_STR(cl[0], "all");
    CHECK_STR(cl[2], "all");
    CHECK_INT(gyre_gate_manifest_clusters("nope", 4, cl, 2), -EINVAL);
    CHECK_STR(cl[1], "all");
}

/* ---- the replay's progress ---- */

typedef struct progress_probe {
    int inside, overlapped, calls, out_of_order;
    unsigned last;
} progress_probe_t;

static void probe_progress(void *ctx, unsigned done, unsigned total)
{
    progress_probe_t *p = ctx;
    (void)total;
    if (__atomic_add_fetch(&p->inside, 1, __ATOMIC_SEQ_CST) != 1)
        __atomic_store_n(&p->overlapped, 1, __ATOMIC_SEQ_CST);
    usleep(2000); /* long enough for another thread's call to end meanwhile, were the calls not serialized */
    if (done != p->last + 1)
        p->out_of_order = 1;
    p->last = done;
    p->calls++;
    __atomic_sub_fetch(&p->inside, 1, __ATOMIC_SEQ_CST);
}

/* The loop runner's callback updates one document; two threads in it at once lost a value (a leak). */
TEST(gate_progress_is_called_one_call_at_a_time_in_order_from_the_replay_threads)
{
    char dir[] = "/tmp/gyre-gate-XXXXXX", path[128];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/heldout.jsonl", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    for (int i = 0; i < 8; i++)
        fprintf(f, "{\"messages\":[{\"role\":\"user\",\"content\":\"q%d\"},"
                   "{\"role\":\"assistant\",\"content\":\"a%d\"}]}\n",
                i, i);
    fclose(f);
    gyre_scorer_conf_t sc = {.name = "len", .kind = GYRE_SCORER_LENGTH, .max_chars = 100};
    gyre_config_t config;
    memset(&config, 0, sizeof(config));
    config.scorers = &sc;
    config.nscorers = 1;
    char *names[] = {"len"};
    gyre_gate_conf_t conf = {.scorers = names, .nscorers = 1, .confidence = 0.95, .resamples = 100, .limit = 500,
                             .concurrency = 4, .seed = 1};
    progress_probe_t probe = {0};
    gyre_gate_env_t env = {.config = &config,
                           .conf = &conf,
                           .dataset_dir = dir,
                           .candidate = "ft/c",
                           .incumbent = "primary/i",
                           .key = "k",
                           .progress = probe_progress,
                           .progress_ctx = &probe};
    /* Port 1 on loopback refuses at once: every call fails fast, and each still reports its progress. */
    CHECK_INT(gyre_httpc_parse_url("http://127.0.0.1:1/v1/chat/completions", &env.url), 0);
    gyre_buf_t json, md;
    gyre_buf_init(&json, 1 << 20);
    gyre_buf_init(&md, 1 << 20);
    int passed = 1;
    char err[512];
    CHECK(gyre_gate_run(&env, &json, &md, &passed, err, sizeof(err)) != 0); /* nothing answered */
    CHECK_INT(passed, 0);
    CHECK_INT(probe.calls, 16);
    CHECK_INT((int)probe.last, 16);
    CHECK_INT(probe.overlapped, 0);
    CHECK_INT(probe.out_of_order, 0);
    gyre_buf_dispose(&json);
    gyre_buf_dispose(&md);
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK_INT(system(cmd), 0);
}
