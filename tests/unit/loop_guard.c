/* In-line guardrails (src/loop/guard.c): the answer's text read out of a chat.completion, the checks of a route
 * run in order with their actions, the trace's marks and the counters. */
#include <math.h>

#include "config/config.h"
#include "loop/guard.h"
#include "test.h"

static void text_of(const char *json, int want_rc, const char *want)
{
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    const char *t = NULL;
    size_t n = 0;
    int rc = gyre_guard_answer_text(json, strlen(json), &pool, &t, &n);
    CHECK_INT(rc, want_rc);
    if (rc == 0 && want != NULL)
        CHECK_MEM(t, n, want);
    h2o_mem_clear_pool(&pool);
}

TEST(guard_answer_text_reads_the_first_choices_content)
{
    text_of("{\"id\":\"x\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hi there\"}}]}", 0,
            "Hi there");
    /* Members before it of every kind are skipped, strings with quotes and brackets in them included. */
    text_of("{\"a\":{\"b\":[1,{\"c\":\"]}\\\"\"}]},\"n\":-1.5e3,\"t\":true,\"choices\":[{\"message\":{\"tool_calls\":[],"
            "\"content\":\"x\"}},{\"message\":{\"content\":\"second\"}}]}",
            0, "x");
    /* Escapes are decoded: line breaks, quotes, \\u with a surrogate pair, a lone surrogate as U+FFFD. */
    text_of("{\"choices\":[{\"message\":{\"content\":\"a\\nb \\\"q\\\" \\u00e9 \\ud83d\\ude00 \\ud800!\"}}]}", 0,
            "a\nb \"q\" \xC3\xA9 \xF0\x9F\x98\x80 \xEF\xBF\xBD!");
    text_of("{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":[{}]}}]}", 0, "");
    text_of("{\"choices\":[]}", -1, NULL);
    text_of("{\"choices\":[{\"message\":{\"content\":\"unterminated}}]}", -1, NULL);
    text_of("not json at all", -1, NULL);
    text_of("", -1, NULL);
    /* Cut off after the member's colon: no answer (the old code read the byte past the end: fuzz_heuristic, CI). */
    text_of("{\"choices\":[{\"message\":{\"role\":\"at\",\"content\":", -1, NULL);
}

TEST(guard_runs_a_routes_checks_in_order_marks_the_trace_and_counts)
{
    static const char yaml[] = "providers:\n  - {name: p, kind: openai, base_url: 'http://h/v1'}\n"
                               "scorers:\n"
                               "  - {name: no_ssn, type: regex, must_not: ['[0-9]{3}-[0-9]{2}-[0-9]{4}']}\n"
                               "  - {name: short, type: length, max_chars: 10}\n"
                               "routes:\n"
                               "  - name: r\n"
                               "    targets: [{provider: p, model: m}]\n"
                               "    guardrails:\n"
                               "      - {check: short, action: flag}\n"
                               "      - {check: no_ssn, action: deny}\n"
                               "      - {check: short, on: request, action: deny}\n";
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = gyre_config_parse("t.yaml", yaml, strlen(yaml), &errs);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    char err[256];
    gyre_guard_t *g = gyre_guard_create(c, 2, err, sizeof(err));
    CHECK(g != NULL);
    CHECK_INT(gyre_guard_has(g, &c->routes[0], 0), GYRE_GUARD_ANY);
    CHECK_INT(gyre_guard_has(g, &c->routes[0], 1), GYRE_GUARD_ANY);
    CHECK_INT(gyre_guard_has(g, NULL, 0), 0);
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    gyre_trace_t t;
    memset(&t, 0, sizeof(t));
    const char *answer = "my number is 123-45-6789";
    gyre_check_input_t in = {.text = answer, .len = strlen(answer), .latency_us = -1, .cost_usd = NAN};
    gyre_guard_outcome_t out;
    gyre_guard_run(g, 1, &c->routes[0], 0, 0, &in, &t, &pool, &out);
    CHECK_INT(out.action, GYRE_GUARD_DENY);
    CHECK_STR(out.check, "no_ssn");
    CHECK_STR(out.reason, "must_not[0] '[0-9]{3}-[0-9]{2}-[0-9]{4}' matches");
    CHECK_INT(t.ntags, 2);
    CHECK_MEM(t.tags[0].p, t.tags[0].len, "guardrail:short:flag");
    CHECK_MEM(t.tags[1].p, t.tags[1].len, "guardrail:no_ssn:deny");
    CHECK_MEM(t.meta[0].key.p, t.meta[0].key.len, "guardrail.short");
    CHECK_MEM(t.meta[0].value.p, t.meta[0].value.len, "24 characters; the maximum is 10");
    /* A stream only flags: the same failure is marked, and nothing is returned to carry out. */
    gyre_guard_run(g, 0, &c->routes[0], 0, 1, &in, &t, &pool, &out);
    CHECK_INT(out.action, 0);
    CHECK_MEM(t.tags[3].p, t.tags[3].len, "guardrail:no_ssn:flag");
    /* On the request, only the request's check runs. */
    in.text = "ok";
    in.len = 2;
    gyre_guard_run(g, 0, &c->routes[0], 1, 0, &in, &t, &pool, &out);
    CHECK_INT(out.action, 0);
    gyre_buf_t m;
    gyre_buf_init(&m, 1 << 16);
    gyre_guard_render(g, &m);
    CHECK(strstr(m.base, "gyre_guardrail_checks_total{route=\"r\",check=\"no_ssn\",on=\"response\",result=\"fail\"} 2\n") != NULL);
    CHECK(strstr(m.base, "gyre_guardrail_checks_total{route=\"r\",check=\"short\",on=\"request\",result=\"pass\"} 1\n") != NULL);
    CHECK(strstr(m.base, "gyre_guardrail_actions_total{route=\"r\",check=\"no_ssn\",on=\"response\",action=\"deny\"} 1\n") != NULL);
    CHECK(strstr(m.base, "gyre_guardrail_actions_total{route=\"r\",check=\"no_ssn\",on=\"response\",action=\"flag\"} 1\n") != NULL);
    CHECK(strstr(m.base, "gyre_guardrail_actions_total{route=\"r\",check=\"short\",on=\"response\",action=\"flag\"} 2\n") != NULL);
    gyre_buf_dispose(&m);
    h2o_mem_clear_pool(&pool);
    gyre_guard_destroy(g);
    gyre_config_free(c);
}

TEST(guard_create_names_a_scorer_whose_schema_does_not_compile)
{
    static const char yaml[] = "providers:\n  - {name: p, kind: openai, base_url: 'http://h/v1'}\n"
                               "scorers:\n  - {name: shape, type: json_schema, schema: {type: text}}\n"
                               "routes:\n  - {name: r, targets: [{provider: p, model: m}], guardrails: [{check: shape, action: deny}]}\n";
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = gyre_config_parse("t.yaml", yaml, strlen(yaml), &errs);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    char err[256] = "";
    CHECK(gyre_guard_create(c, 1, err, sizeof(err)) == NULL);
    CHECK_STR(err, "scorer 'shape': schema: type: is not one of object, array, string, number, integer, boolean, null "
                   "(or a list of them)");
    gyre_config_free(c);
}
