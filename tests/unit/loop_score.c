/*
 * src/loop/score.c and src/loop/judge.c: the online sampling (exact shares
 * from a seeded generator), the queue's bounds, the judge's strict verdict
 * parser against malformed verdicts (each with its exact error), the
 * prompt templates with their section markers, the chunked body framing of
 * the HTTP client the judge reads answers with, and gyre's internal key.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "control/access.h"
#include "loop/judge.h"
#include "loop/score.h"
#include "otlp/httpc.h"
#include "test.h"

TEST(score_draw_is_uniform_and_a_share_is_exact_for_a_seed)
{
    uint64_t rng = 12345;
    unsigned kept = 0, n = 100000;
    for (unsigned i = 0; i < n; i++) {
        double u = gyre_score_draw(&rng);
        CHECK(u >= 0 && u < 1);
        kept += u < 0.25;
    }
    /* The same seed gives the same count, every run: this is the count for seed 12345 (2 standard deviations
     * from 25000, as a uniform draw may be). */
    CHECK_INT(kept, 24733);
    rng = 12345;
    unsigned again = 0;
    for (unsigned i = 0; i < n; i++)
        again += gyre_score_draw(&rng) < 0.25;
    CHECK_INT(again, kept);
}

static gyre_scorer_conf_t judge_conf(const char *rubric, const char *prompt)
{
    gyre_scorer_conf_t c;
    memset(&c, 0, sizeof(c));
    c.name = "correct";
    c.kind = GYRE_SCORER_JUDGE;
    c.judge_route = "judge";
    c.rubric = (char *)rubric;
    c.prompt = (char *)prompt;
    c.sample = 1;
    return c;
}

static gyre_config_t *config_with(gyre_scorer_conf_t *scorers, size_t n)
{
    gyre_config_t *c = gyre_calloc(1, sizeof(*c));
    c->scorers = scorers;
    c->nscorers = n;
    return c;
}

static gyre_trace_t trace_of(const char *route, const char *agent, size_t body_bytes, char *body)
{
    gyre_trace_t t;
    memset(&t, 0, sizeof(t));
    memcpy(t.trace_id, "0123456789abcdef0123456789abcdef", 33);
    t.route = (gyre_tstr_t){(char *)route, strlen(route)};
    t.agent = (gyre_tstr_t){(char *)agent, strlen(agent)};
    t.response_body = (gyre_tstr_t){body, body_bytes};
    t.status = 200;
    return t;
}

TEST(score_offer_samples_only_matching_calls_and_never_the_judge)
{
    char *routes[] = {"chat"};
    gyre_scorer_conf_t sc = judge_conf("correctness", NULL);
    sc.routes = routes;
    sc.nroutes = 1;
    gyre_config_t *c = config_with(&sc, 1);
    char err[256] = "";
    gyre_scoring_opts_t o = {.no_threads = 1};
    gyre_scoring_t *s = gyre_score_start(c, &o, err, sizeof(err));
    CHECK_STR(err, "");
    uint64_t rng = 7;
    gyre_trace_t other = trace_of("other", "", 0, NULL), judge = trace_of("chat", "gyre-judge", 0, NULL),
                 chat = trace_of("chat", "support", 0, NULL);
    CHECK_INT(gyre_score_offer(s, c, &rng, &other), 0);
    CHECK_INT(gyre_score_offer(s, c, &rng, &judge), 0);
    CHECK_INT(gyre_score_offer(s, c, &rng, &chat), 1);
    chat.status = 500;
    CHECK_INT(gyre_score_offer(s, c, &rng, &chat), 0);
    gyre_score_stats_t st;
    gyre_score_stats(s, &st);
    CHECK_INT(st.queued, 1);
    CHECK_INT(st.dropped, 0);
    gyre_score_stop(s);
    free(c);
}

TEST(score_queue_drops_past_its_call_bound_and_counts_them)
{
    gyre_scorer_conf_t sc = judge_conf("correctness", NULL);
    gyre_config_t *c = config_with(&sc, 1);
    char err[256] = "";
    gyre_scoring_opts_t o = {.no_threads = 1};
    gyre_scoring_t *s = gyre_score_start(c, &o, err, sizeof(err));
    uint64_t rng = 7;
    gyre_trace_t t = trace_of("chat", "", 0, NULL);
    unsigned queued = 0, dropped = 0;
    for (unsigned i = 0; i < GYRE_SCORE_QUEUE_MAX + 100; i++) {
        int r = gyre_score_offer(s, c, &rng, &t);
        queued += r == 1;
        dropped += r == -ENOSPC;
    }
    CHECK_INT(queued, GYRE_SCORE_QUEUE_MAX);
    CHECK_INT(dropped, 100);
    gyre_score_stats_t st;
    gyre_score_stats(s, &st);
    CHECK_INT(st.dropped, 100);
    gyre_buf_t m;
    gyre_buf_init(&m, 1 << 20);
    CHECK_INT(gyre_score_render_metrics(s, &m), 0);
    gyre_buf_append(&m, "", 1);
    CHECK(strstr(m.base, "\ngyre_scores_dropped_total 100\n") != NULL);
    CHECK(strstr(m.base, "\ngyre_score_queue_depth 1024\n") != NULL);
    gyre_buf_dispose(&m);
    gyre_score_stop(s);
    free(c);
}

TEST(score_queue_drops_past_its_byte_bound)
{
    gyre_scorer_conf_t sc = judge_conf("correctness", NULL);
    gyre_config_t *c = config_with(&sc, 1);
    char err[256] = "";
    gyre_scoring_opts_t o = {.no_threads = 1};
    gyre_scoring_t *s = gyre_score_start(c, &o, err, sizeof(err));
    uint64_t rng = 7;
    size_t big = (size_t)4 << 20; /* 4 MiB answers: 15 fit in 64 MiB with their records */
    char *body = gyre_calloc(1, big);
    gyre_trace_t t = trace_of("chat", "", big, body);
    unsigned queued = 0;
    for (unsigned i = 0; i < 20; i++)
        queued += gyre_score_offer(s, c, &rng, &t) == 1;
    CHECK_INT(queued, 15);
    gyre_score_stats_t st;
    gyre_score_stats(s, &st);
    CHECK_INT(st.dropped, 5);
    CHECK(st.queued_bytes <= GYRE_SCORE_QUEUE_BYTES);
    gyre_score_stop(s);
    free(body);
    free(c);
}

TEST(score_a_share_of_a_half_keeps_the_calls_below_the_draw)
{
    gyre_scorer_conf_t sc = judge_conf("correctness", NULL);
    sc.sample = 0.5;
    gyre_config_t *c = config_with(&sc, 1);
    char err[256] = "";
    gyre_scoring_opts_t o = {.no_threads = 1};
    gyre_scoring_t *s = gyre_score_start(c, &o, err, sizeof(err));
    uint64_t rng = 99, mirror = 99;
    gyre_trace_t t = trace_of("chat", "", 0, NULL);
    unsigned expect = 0, kept = 0;
    for (unsigned i = 0; i < 1000; i++) {
        expect += gyre_score_draw(&mirror) < 0.5;
        kept += gyre_score_offer(s, c, &rng, &t) == 1;
    }
    CHECK_INT(kept, expect);
    CHECK(kept > 400 && kept < 600);
    gyre_score_stop(s);
    free(c);
}

TEST(score_matches_routes_and_agents_lists)
{
    char *routes[] = {"a", "b"}, *agents[] = {"x"};
    gyre_scorer_conf_t sc = judge_conf("correctness", NULL);
    CHECK_INT(gyre_score_matches(&sc, "any", 3, "", 0), 1);
    sc.routes = routes;
    sc.nroutes = 2;
    sc.agents = agents;
    sc.nagents = 1;
    CHECK_INT(gyre_score_matches(&sc, "b", 1, "x", 1), 1);
    CHECK_INT(gyre_score_matches(&sc, "bb", 2, "x", 1), 0);
    CHECK_INT(gyre_score_matches(&sc, "a", 1, "y", 1), 0);
}

static void check_verdict_error(const char *json, const char *expect)
{
    gyre_verdict_t v;
    char err[256] = "";
    int r = gyre_judge_parse_verdict(json, strlen(json), &v, err, sizeof(err));
    CHECK_INT(r, -EINVAL);
    CHECK_STR(err, expect);
}

TEST(judge_verdict_parser_takes_a_strict_verdict)
{
    gyre_verdict_t v;
    char err[256] = "";
    const char *ok = "{\"score\":0.75,\"verdict\":\"pass\",\"reasoning\":\"close enough\"}";
    CHECK_INT(gyre_judge_parse_verdict(ok, strlen(ok), &v, err, sizeof(err)), 0);
    CHECK(v.score == 0.75);
    CHECK_INT(v.pass, 1);
    CHECK_STR(v.reasoning, "close enough");
    const char *fenced = "```json\n{\"score\":0,\"verdict\":\"fail\",\"reasoning\":\"\"}\n```\n";
    CHECK_INT(gyre_judge_parse_verdict(fenced, strlen(fenced), &v, err, sizeof(err)), 0);
    CHECK_INT(v.pass, 0);
}

TEST(judge_verdict_parser_refuses_malformed_verdicts_with_exact_errors)
{
    check_verdict_error("", "the verdict is not JSON");
    check_verdict_error("score: 1", "the verdict is not JSON");
    check_verdict_error("[1]", "the verdict is not a JSON object");
    check_verdict_error("{\"score\":1,\"verdict\":\"pass\",\"reasoning\":\"\"} and more",
                        "the verdict has text after its JSON object");
    check_verdict_error("{\"score\":1,\"verdict\":\"pass\"}", "verdict: missing \"reasoning\"");
    check_verdict_error("{\"verdict\":\"pass\",\"reasoning\":\"\"}", "verdict: missing \"score\"");
    check_verdict_error("{\"score\":1.5,\"verdict\":\"pass\",\"reasoning\":\"\"}",
                        "verdict: \"score\" must be a number from 0 to 1");
    check_verdict_error("{\"score\":\"1\",\"verdict\":\"pass\",\"reasoning\":\"\"}",
                        "verdict: \"score\" must be a number from 0 to 1");
    check_verdict_error("{\"score\":1,\"verdict\":\"maybe\",\"reasoning\":\"\"}",
                        "verdict: \"verdict\" must be \"pass\" or \"fail\"");
    check_verdict_error("{\"score\":1,\"verdict\":\"pass\",\"reasoning\":2}",
                        "verdict: \"reasoning\" must be a string");
    check_verdict_error("{\"score\":1,\"verdict\":\"pass\",\"reasoning\":\"\",\"extra\":1}",
                        "verdict: unknown member \"extra\"");
    check_verdict_error("{\"score\":1,\"score\":0,\"verdict\":\"pass\",\"reasoning\":\"\"}",
                        "verdict: \"score\" appears twice");
    check_verdict_error("```json\n{\"score\":1,\"verdict\":\"pass\",\"reasoning\":\"\"}",
                        "the verdict's code fence is not closed");
}

TEST(judge_answer_parser_reads_the_chat_completion_content)
{
    gyre_verdict_t v;
    char err[256] = "", *content = NULL;
    const char *body = "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":"
                       "\"{\\\"score\\\":1,\\\"verdict\\\":\\\"pass\\\",\\\"reasoning\\\":\\\"ok\\\"}\"}}]}";
    CHECK_INT(gyre_judge_parse_answer(body, strlen(body), &v, &content, err, sizeof(err)), 0);
    CHECK_INT(v.pass, 1);
    CHECK_STR(content, "{\"score\":1,\"verdict\":\"pass\",\"reasoning\":\"ok\"}");
    free(content);
    const char *bad = "{\"error\":{\"message\":\"no\"}}";
    CHECK_INT(gyre_judge_parse_answer(bad, strlen(bad), &v, &content, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "the judge's answer is not a chat completion with a text message");
    CHECK(content == NULL);
}

TEST(judge_correctness_template_puts_each_part_between_its_markers)
{
    gyre_scorer_conf_t c = judge_conf("correctness", NULL);
    gyre_judge_input_t in = {.task = "user: what is 2+2?", .answer = "4", .reference = "4"};
    gyre_buf_t b;
    gyre_buf_init(&b, GYRE_JUDGE_PROMPT_MAX);
    char err[256] = "";
    CHECK_INT(gyre_judge_render(&c, &in, &b, err, sizeof(err)), 0);
    gyre_buf_append(&b, "", 1);
    CHECK(strstr(b.base, "\n=====TASK=====\nuser: what is 2+2?\n=====END TASK=====\n") != NULL);
    CHECK(strstr(b.base, "\n=====ANSWER=====\n4\n=====END ANSWER=====\n") != NULL);
    CHECK(strstr(b.base, "\n=====REFERENCE=====\n4\n=====END REFERENCE=====\n") != NULL);
    CHECK(strstr(b.base, "=====CONTEXT=====") == NULL);
    CHECK(strstr(b.base, "\"verdict\": \"pass\" or \"fail\"") != NULL);
    gyre_buf_dispose(&b);
}

TEST(judge_grounding_without_context_shows_none)
{
    gyre_scorer_conf_t c = judge_conf("grounding", NULL);
    gyre_judge_input_t in = {.task = "t", .answer = "a"};
    gyre_buf_t b;
    gyre_buf_init(&b, GYRE_JUDGE_PROMPT_MAX);
    char err[256] = "";
    CHECK_INT(gyre_judge_render(&c, &in, &b, err, sizeof(err)), 0);
    gyre_buf_append(&b, "", 1);
    CHECK(strstr(b.base, "\n=====CONTEXT=====\n(none)\n=====END CONTEXT=====\n") != NULL);
    gyre_buf_dispose(&b);
}

TEST(judge_custom_template_replaces_placeholders_and_refuses_unknown_ones)
{
    gyre_scorer_conf_t c = judge_conf("custom", "Is it polite?{{answer}}Thanks.");
    gyre_judge_input_t in = {.answer = "hello"};
    gyre_buf_t b;
    gyre_buf_init(&b, GYRE_JUDGE_PROMPT_MAX);
    char err[256] = "";
    CHECK_INT(gyre_judge_render(&c, &in, &b, err, sizeof(err)), 0);
    gyre_buf_append(&b, "", 1);
    CHECK(strncmp(b.base, "Is it polite?\n=====ANSWER=====\nhello\n=====END ANSWER=====\nThanks.\n", 66) == 0);
    gyre_buf_reset(&b);
    c.prompt = "{{answr}}";
    CHECK_INT(gyre_judge_render(&c, &in, &b, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "prompt: unknown placeholder {{answr}} (known: {{task}}, {{answer}}, {{reference}}, {{context}}, "
                   "{{trajectory}}, {{tools}})");
    c.rubric = "vibes";
    CHECK_INT(gyre_judge_render(&c, &in, &b, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "scorer correct: unknown rubric vibes (correctness, instruction_following, grounding, toxicity, "
                   "tool_use or custom)");
    gyre_buf_dispose(&b);
}

TEST(judge_section_is_cut_at_its_bound)
{
    gyre_scorer_conf_t c = judge_conf("toxicity", NULL);
    size_t n = GYRE_JUDGE_SECTION_MAX + 100;
    char *big = gyre_malloc(n + 1);
    memset(big, 'x', n);
    big[n] = '\0';
    gyre_judge_input_t in = {.task = "t", .answer = big};
    gyre_buf_t b;
    gyre_buf_init(&b, GYRE_JUDGE_PROMPT_MAX);
    char err[256] = "";
    CHECK_INT(gyre_judge_render(&c, &in, &b, err, sizeof(err)), 0);
    gyre_buf_append(&b, "", 1);
    CHECK(strstr(b.base, "\n[... 100 more bytes cut]\n=====END ANSWER=====") != NULL);
    gyre_buf_dispose(&b);
    free(big);
}

TEST(judge_request_asks_for_the_verdict_schema_and_carries_a_retry)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    CHECK_INT(gyre_judge_request("judge", "P", "nope", "the verdict is not JSON", &b), 0);
    gyre_buf_append(&b, "", 1);
    CHECK(strstr(b.base, "\"model\":\"judge\"") != NULL);
    CHECK(strstr(b.base, "\"json_schema\":{\"name\":\"gyre_verdict\",\"strict\":true") != NULL);
    CHECK(strstr(b.base, "{\"role\":\"assistant\",\"content\":\"nope\"}") != NULL);
    CHECK(strstr(b.base, GYRE_JUDGE_RETRY_NOTE " (the verdict is not JSON).") != NULL);
    gyre_buf_dispose(&b);
}

static int decode(const char *raw, gyre_buf_t *out)
{
    gyre_buf_reset(out);
    return gyre_httpc_chunked_decode(raw, strlen(raw), out);
}

TEST(httpc_chunked_decoder_frames_bodies_and_refuses_bad_framing)
{
    gyre_buf_t out;
    gyre_buf_init(&out, 16);
    CHECK_INT(decode("5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n", &out), 1);
    CHECK_MEM(out.base, out.len, "hello world");
    CHECK_INT(decode("5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n", &out), 1);
    CHECK_INT(decode("5\r\nhel", &out), 0);
    CHECK_INT(decode("5\r\nhello\r\n0\r\n", &out), 0);
    CHECK_INT(decode("zz\r\nhello\r\n", &out), -EPROTO);
    CHECK_INT(decode("5\r\nhelloXY0\r\n\r\n", &out), -EPROTO);
    CHECK_INT(decode("11\r\n01234567890123456\r\n0\r\n\r\n", &out), -EMSGSIZE);
    CHECK_INT(decode("ffffffffffffffff\r\n", &out), -EPROTO);
    gyre_buf_dispose(&out);
}

TEST(access_internal_key_is_a_client_key_named_gyre_internal)
{
    gyre_auth_conf_t auth;
    memset(&auth, 0, sizeof(auth));
    auth.mode = GYRE_AUTH_KEYS;
    char *keys[] = {"sk-client-one"};
    auth.keys = keys;
    auth.nkeys = 1;
    gyre_access_t *a = gyre_access_create(&auth);
    char key[96];
    CHECK_INT(gyre_access_internal_mint(key, sizeof(key)), 0);
    CHECK_INT(strlen(key), strlen(GYRE_ACCESS_INTERNAL_PREFIX) + 64);
    size_t index = 0;
    CHECK_INT(gyre_access_identify_key(a, key, strlen(key), &index), GYRE_ROLE_CLIENT);
    CHECK(index == GYRE_ACCESS_INTERNAL_INDEX);
    const char *id, *team, *agent;
    CHECK_INT(gyre_access_key_meta(a, index, &id, &team, &agent), 0);
    CHECK_STR(id, "gyre-internal");
    CHECK_STR(agent, "gyre-judge");
    CHECK_INT(gyre_access_identify_key(a, "sk-client-one", 13, &index), GYRE_ROLE_CLIENT);
    CHECK_INT(index, 0);
    key[20] ^= 1;
    CHECK_INT(gyre_access_identify_key(a, key, strlen(key), &index), GYRE_ROLE_NONE);
    gyre_access_destroy(a);
}

typedef struct seen_scores {
    int n, source;
    double value;
    char name[64], label[16];
} seen_scores_t;

static int seen_cb(void *arg, const gyre_score_t *sc)
{
    seen_scores_t *s = arg;
    s->n++;
    s->source = sc->source;
    s->value = sc->value;
    snprintf(s->name, sizeof(s->name), "%s", sc->name);
    snprintf(s->label, sizeof(s->label), "%s", sc->label != NULL ? sc->label : "");
    return 0;
}

/* Human feedback is a scorer like the others to what reads scores: curation's `feedback.NAME` predicates read it
 * through gyre_store_scan_scores, with source human, beside a heuristic's score on the same trace. */
TEST(score_feedback_reads_back_through_the_scores_scan_with_source_human)
{
    gyre_store_t *st = NULL;
    char err[256] = "";
    CHECK_INT(gyre_store_open("sqlite::memory:", GYRE_STORE_OPEN_WRITE, &st, err, sizeof(err)), 0);
    const char *id = "0123456789abcdef0123456789abcdef";
    gyre_score_t in[2] = {
        {.trace_id = id, .session = "s1", .name = "helpful", .source = GYRE_SCORE_HUMAN, .version = "",
         .value = 1, .created_us = 2000, .trace_started_us = 1000},
        {.trace_id = id, .session = "s1", .name = "short", .source = GYRE_SCORE_HEURISTIC, .version = "3",
         .value = 0, .label = "fail", .created_us = 2001, .trace_started_us = 1000},
    };
    CHECK_INT(gyre_store_write_scores(st, in, 2, err, sizeof(err)), 0);
    seen_scores_t seen = {0};
    CHECK_INT(gyre_store_scan_scores(st, 500, 1500, "helpful", seen_cb, &seen, err, sizeof(err)), 0);
    CHECK_INT(seen.n, 1);
    CHECK_INT(seen.source, GYRE_SCORE_HUMAN);
    CHECK_STR(seen.name, "helpful");
    CHECK(seen.value == 1);
    memset(&seen, 0, sizeof(seen));
    CHECK_INT(gyre_store_scan_scores(st, 500, 1500, NULL, seen_cb, &seen, err, sizeof(err)), 0);
    CHECK_INT(seen.n, 2);
    gyre_store_close(st);
}

/* The offline and online paths run a heuristic through the same set and store the same score. */
TEST(score_set_runs_a_heuristic_and_makes_the_score_to_store)
{
    gyre_scorer_conf_t sc;
    memset(&sc, 0, sizeof(sc));
    sc.name = "short";
    sc.kind = GYRE_SCORER_LENGTH;
    sc.max_chars = 5;
    gyre_config_t *c = config_with(&sc, 1);
    char err[256] = "";
    gyre_scorer_set_t *set = gyre_scorer_set_create(c, err, sizeof(err));
    CHECK_STR(err, "");
    CHECK_INT(gyre_scorer_set_find(set, "short"), 0);
    CHECK_INT(gyre_scorer_set_find(set, "long"), -1);
    gyre_example_t ex;
    memset(&ex, 0, sizeof(ex));
    memcpy(ex.trace_id, "0123456789abcdef0123456789abcdef", 33);
    ex.answer_text = "hello world";
    ex.started_us = 1234;
    ex.latency_us = -1;
    ex.cost_usd = NAN;
    gyre_score_outcome_t o;
    CHECK_INT(gyre_scorer_set_run(set, 0, &ex, NULL, &o, err, sizeof(err)), 0);
    CHECK_INT(o.pass, 0);
    gyre_score_t s;
    gyre_score_to_store(gyre_scorer_set_conf(set, 0), &ex, &o, 99, &s);
    CHECK_STR(s.name, "short");
    CHECK_STR(s.version, "1");
    CHECK_INT(s.source, GYRE_SCORE_HEURISTIC);
    CHECK_STR(s.label, "fail");
    CHECK_STR(s.session, "");
    CHECK_INT(s.trace_started_us, 1234);
    CHECK(s.comment != NULL && s.comment[0] != '\0');
    gyre_scorer_set_free(set);
    free(c);
}
