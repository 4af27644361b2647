/* The curation spec (src/loop/spec.c): every field, the defaults, the canonical text and exact errors. */
#include <string.h>

#include "config/redact_kinds.h"
#include "loop/spec.h"
#include "test.h"

#define NOW_US 1765000000000000LL /* 2025-12-06T05:46:40Z */

static gyre_curate_spec_t *parse(const char *yaml, char *err, size_t errlen)
{
    return gyre_curate_spec_parse(yaml, strlen(yaml), "spec.yaml", NOW_US, err, errlen);
}

static void check_error(const char *yaml, const char *want, int line)
{
    char err[512] = "";
    gyre_curate_spec_t *s = parse(yaml, err, sizeof(err));
    if (s != NULL || strcmp(err, want) != 0) {
        fprintf(stderr, "  line %d: got \"%s\", expected \"%s\"\n", line, s ? "(parsed)" : err, want);
        gyre_test_failures++;
    }
    gyre_curate_spec_free(s);
}
#define CHECK_ERROR(yaml, want) check_error(yaml, want, __LINE__)

TEST(curate_spec_an_empty_file_is_every_default)
{
    char err[512];
    gyre_curate_spec_t *s = parse("", err, sizeof(err));
    CHECK(s != NULL);
    CHECK_INT(s->dedup, 1);
    CHECK(s->dedup_threshold == 0.8);
    CHECK_INT(s->redaction, GYRE_REDACT_ALL);
    CHECK_INT(s->seed, 1);
    CHECK_INT(s->formats, GYRE_CURATE_FORMAT_OPENAI);
    CHECK_INT(s->unit, GYRE_CURATE_UNIT_TRACE);
    CHECK_INT(s->clustering, GYRE_CURATE_CLUSTERS_AUTO);
    CHECK(s->filter == NULL);
    CHECK_STR(s->canonical,
              "{\"source\":{\"from_us\":null,\"to_us\":null,\"routes\":[],\"agents\":[],\"tags\":[],\"metadata\":[],"
              "\"clusters\":null},\"clusters\":{\"mode\":\"auto\",\"k\":0},\"unit\":\"trace\",\"filter\":null,"
              "\"corrections\":false,\"dedup\":{\"threshold\":0.80000000000000004,\"on\":\"task\",\"keep\":null},"
              "\"selection\":\"all\",\"balance\":{\"cap\":0,\"floor\":0},\"target_size\":0,\"preference\":null,"
              "\"redaction\":[\"email\",\"phone\",\"card\",\"api_key\"],\"heldout\":0,\"seed\":1,"
              "\"formats\":[\"openai\"]}");
    gyre_curate_spec_free(s);
}

TEST(curate_spec_reads_every_field)
{
    const char *yaml = "source:\n"
                       "  since: 7d\n"
                       "  until: 2025-12-06T00:00:00Z\n"
                       "  routes: [support, billing, support]\n"
                       "  agents: triage\n"
                       "  tags: [prod]\n"
                       "  metadata: {env: prod, app: shop}\n"
                       "  clusters: [7, 3]\n"
                       "clusters: {k: 12}\n"
                       "unit: session\n"
                       "filter: judge.correctness >= 0.8 and heuristic.refusal\n"
                       "corrections: {use: true}\n"
                       "dedup: {threshold: 0.9, on: task+answer, keep: judge.correctness}\n"
                       "selection: {judge: \"feedback.thumbs == true\"}\n"
                       "balance: {cap: 500, floor: 20}\n"
                       "target_size: 5000\n"
                       "preference: {score: judge.correctness, margin: 0.3}\n"
                       "redaction: [email, card]\n"
                       "heldout: {fraction: 0.1}\n"
                       "seed: 42\n"
                       "formats: [preference, openai]\n";
    char err[512];
    gyre_curate_spec_t *s = parse(yaml, err, sizeof(err));
    if (s == NULL) {
        fprintf(stderr, "  %s\n", err);
        CHECK(0);
        return;
    }
    CHECK_INT(s->from_us, NOW_US - 7 * 86400 * 1000000LL);
    CHECK_INT(s->to_us, 1764979200000000LL);
    CHECK_INT(s->nroutes, 2);
    CHECK_STR(s->routes[0], "billing");
    CHECK_STR(s->routes[1], "support");
    CHECK_INT(s->nagents, 1);
    CHECK_STR(s->agents[0], "triage");
    CHECK_INT(s->nmetadata, 2);
    CHECK_STR(s->metadata[0].key, "app");
    CHECK_INT(s->nclusters, 2);
    CHECK_INT(s->clusters[0], 3);
    CHECK_INT(s->k, 12);
    CHECK_INT(s->unit, GYRE_CURATE_UNIT_SESSION);
    CHECK(s->filter != NULL);
    CHECK_INT(s->use_corrections, 1);
    CHECK(s->dedup_threshold == 0.9);
    CHECK_INT(s->dedup_on, GYRE_CURATE_DEDUP_TASK_ANSWER);
    CHECK_STR(s->dedup_keep, "judge.correctness");
    CHECK_INT(s->selection, GYRE_CURATE_SELECT_JUDGE);
    CHECK_INT(s->cap, 500);
    CHECK_INT(s->floor, 20);
    CHECK_INT(s->target_size, 5000);
    CHECK_STR(s->contrast_score, "judge.correctness");
    CHECK(s->contrast_margin == 0.3);
    CHECK_INT(s->redaction, GYRE_REDACT_EMAIL | GYRE_REDACT_CARD);
    CHECK(s->heldout == 0.1);
    CHECK_INT(s->seed, 42);
    CHECK_INT(s->formats, GYRE_CURATE_FORMAT_OPENAI | GYRE_CURATE_FORMAT_PREFERENCE);
    CHECK_STR(
        s->canonical,
        "{\"source\":{\"from_us\":1764395200000000,\"to_us\":1764979200000000,\"routes\":[\"billing\",\"support\"],"
        "\"agents\":[\"triage\"],\"tags\":[\"prod\"],\"metadata\":[[\"app\",\"shop\"],[\"env\",\"prod\"]],"
        "\"clusters\":[3,7]},\"clusters\":{\"mode\":\"auto\",\"k\":12},\"unit\":\"session\","
        "\"filter\":\"judge.correctness >= 0.80000000000000004 and heuristic.refusal\",\"corrections\":true,"
        "\"dedup\":{\"threshold\":0.90000000000000002,\"on\":\"task+answer\",\"keep\":\"judge.correctness\"},"
        "\"selection\":{\"judge\":\"feedback.thumbs == true\"},\"balance\":{\"cap\":500,\"floor\":20},"
        "\"target_size\":5000,\"preference\":{\"score\":\"judge.correctness\",\"margin\":0.29999999999999999},"
        "\"redaction\":[\"email\",\"card\"],\"heldout\":0.10000000000000001,\"seed\":42,"
        "\"formats\":[\"openai\",\"preference\"]}");
    gyre_curate_spec_free(s);
}

TEST(curate_spec_two_spellings_of_one_spec_have_one_canonical_text)
{
    char err[512];
    gyre_curate_spec_t *a = parse("filter: \"status==200 and (cost_usd<0.01)\"\nheldout: 0.2\n"
                                  "source: {routes: [b, a]}\ndedup: on\ncorrections: false\n",
                                  err, sizeof(err));
    gyre_curate_spec_t *b = parse("source:\n  routes:\n    - a\n    - b\n    - a\nheldout: {fraction: 0.2}\n"
                                  "filter: 'status == 200 and cost_usd < 0.01'\n",
                                  err, sizeof(err));
    CHECK(a != NULL && b != NULL);
    if (a != NULL && b != NULL)
        CHECK_STR(a->canonical, b->canonical);
    gyre_curate_spec_free(a);
    gyre_curate_spec_free(b);
}

TEST(curate_spec_dedup_off_selection_longest_n_stored_clusters_and_no_redaction)
{
    char err[512];
    gyre_curate_spec_t *s =
        parse("dedup: off\nselection: {longest_n: 100}\nclusters: stored\nredaction: none\n", err, sizeof(err));
    CHECK(s != NULL);
    CHECK_INT(s->dedup, 0);
    CHECK_INT(s->selection, GYRE_CURATE_SELECT_LONGEST_N);
    CHECK_INT(s->longest_n, 100);
    CHECK_INT(s->clustering, GYRE_CURATE_CLUSTERS_STORED);
    CHECK_INT(s->redaction, 0);
    gyre_curate_spec_free(s);
}

TEST(curate_spec_errors_name_the_file_the_line_and_the_field)
{
    CHECK_ERROR("seed: 1\nfliter: x\n",
                "spec.yaml:2: (top level): unknown field 'fliter' (known: source, clusters, unit, filter, corrections, "
                "dedup, selection, balance, target_size, preference, redaction, heldout, seed, formats)");
    CHECK_ERROR("filter: judge.correctness >=\n",
                "spec.yaml:1: filter: position 21: expected a value after '>=', found the end");
    CHECK_ERROR("source:\n  since: yesterday\n",
                "spec.yaml:2: source.since: expected a time (2026-12-01T00:00:00Z, unix milliseconds) or a duration "
                "before now (90s, 15m, 24h, 7d, 2w), found 'yesterday'");
    CHECK_ERROR("source:\n  since: 2025-12-06T00:00:00Z\n  until: 1d\n",
                "spec.yaml:2: source: the range is empty: since/from must come before until/to");
    CHECK_ERROR("source:\n  route: support\n",
                "spec.yaml:2: source: unknown field 'route' (known: since, from, until, to, routes, agents, tags, "
                "metadata, clusters)");
    CHECK_ERROR("dedup:\n  threshold: 1.5\n", "spec.yaml:2: dedup.threshold: 1.5 is out of range (0.05 to 1)");
    CHECK_ERROR("dedup: maybe\n",
                "spec.yaml:1: dedup: expected off, on or a mapping (threshold, on, keep), found 'maybe'");
    CHECK_ERROR("dedup: {keep: \"judge.x > 1\"}\n",
                "spec.yaml:1: dedup.keep: expected one score's name (judge.NAME, feedback.NAME, ...), found "
                "'judge.x > 1'");
    CHECK_ERROR("balance: {cap: 10, floor: 20}\n", "spec.yaml:1: balance.floor: the floor (20) is above the cap (10)");
    CHECK_ERROR("heldout: 1\n", "spec.yaml:1: heldout: 1 is out of range (0 to 1, exclusive)");
    CHECK_ERROR("heldout:\n  share: 0.1\n", "spec.yaml:2: heldout: unknown field 'share' (known: fraction)");
    CHECK_ERROR("formats: [openai, csv]\n", "spec.yaml:1: formats: unknown format 'csv' (known: openai, preference)");
    CHECK_ERROR("redaction: [email, ssn]\n",
                "spec.yaml:1: redaction: unknown kind 'ssn' (known: email, phone, card, api_key; or all, none)");
    CHECK_ERROR("unit: turn\n", "spec.yaml:1: unit: unknown value 'turn' (known: trace, session)");
    CHECK_ERROR("selection: {longest_n: 0}\n", "spec.yaml:1: selection.longest_n: 0 is out of range (1 to 4294967295)");
    CHECK_ERROR("selection: some\n",
                "spec.yaml:1: selection: expected all, {longest_n: N} or {judge: PREDICATE}, found 'some'");
    CHECK_ERROR("preference: {margin: 0.1}\n",
                "spec.yaml:1: preference.score: required: the score whose contrast makes a pair");
    CHECK_ERROR("target_size: -3\n", "spec.yaml:1: target_size: expected a whole number, found '-3'");
    CHECK_ERROR("source: {clusters: [1, x]}\n",
                "spec.yaml:1: source.clusters: expected cluster ids (whole numbers), found 'x'");
    CHECK_ERROR("clusters: {mode: stored, k: 4}\n",
                "spec.yaml:1: clusters.k: k is for clusters made in-process (mode: auto), not a stored run");
    CHECK_ERROR("- a\n- b\n", "spec.yaml:1: (top level): expected a mapping, found a list");
    CHECK_ERROR("seed: [1\n",
                "spec.yaml:2: invalid YAML: did not find expected ',' or ']' while parsing a flow sequence");
}

TEST(curate_spec_a_file_over_the_bound_is_refused_before_parsing)
{
    size_t n = GYRE_CURATE_SPEC_MAX_BYTES + 1;
    char *big = malloc(n + 1);
    memset(big, '#', n);
    big[n] = '\0';
    char err[512];
    CHECK(gyre_curate_spec_parse(big, n, "big.yaml", NOW_US, err, sizeof(err)) == NULL);
    CHECK_STR(err, "big.yaml: larger than 262144 bytes");
    free(big);
}
