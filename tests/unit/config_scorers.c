/* `scorers:` and a route's `guardrails:` (src/config/scorers.c): what each kind reads, and the exact errors. */
#include "config_test.h"

#define ROUTE_R "routes:\n  - {name: r, targets: [{provider: p, model: m}]}\n"

TEST(config_scorers_every_kind_reads_its_fields)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse(PROVIDER_P
                             "scorers:\n"
                             "  - {name: j, type: json_valid, sample: 0.25, routes: [r], agents: [a1, a2]}\n"
                             "  - name: s\n"
                             "    type: json_schema\n"
                             "    version: '3'\n"
                             "    schema: {type: object, required: [answer], properties: {n: {type: integer, minimum: -2}}}\n"
                             "  - {name: s2, type: json_schema, schema: '{\"type\": \"array\"}'}\n"
                             "  - {name: re, type: regex, must: 'ok', must_not: ['[0-9]{3}-[0-9]{2}-[0-9]{4}']}\n"
                             "  - {name: ref, type: refusal, terms: [nope]}\n"
                             "  - {name: ta, type: tool_args}\n"
                             "  - {name: len, type: length, min_chars: 2, max_chars: 10}\n"
                             "  - {name: lat, type: latency, max_latency: 2s}\n"
                             "  - {name: cost, type: cost, max_cost: 0.05}\n"
                             "  - {name: tox, type: toxicity}\n"
                             "  - {name: judge, type: judge, route: r, rubric: custom, prompt: 'Rate {{answer}}',\n"
                             "     concurrency: 2, retries: 1, timeout: 30s}\n" ROUTE_R,
                             &errs);
    CHECK(c != NULL);
    CHECK_INT(errs.count, 0);
    if (c == NULL)
        return;
    CHECK_INT(c->nscorers, 11);
    CHECK_INT(c->scorers[0].kind, GYRE_SCORER_JSON_VALID);
    CHECK(c->scorers[0].sample == 0.25);
    CHECK_STR(c->scorers[0].routes[0], "r");
    CHECK_INT(c->scorers[0].nagents, 2);
    CHECK_STR(c->scorers[0].version, "1");
    CHECK_STR(c->scorers[1].version, "3");
    CHECK_STR(c->scorers[1].schema_json,
              "{\"type\":\"object\",\"required\":[\"answer\"],\"properties\":{\"n\":{\"type\":\"integer\",\"minimum\":-2}}}");
    CHECK_STR(c->scorers[2].schema_json, "{\"type\": \"array\"}");
    CHECK_INT(c->scorers[3].nmust, 1);
    CHECK_STR(c->scorers[3].must_not[0], "[0-9]{3}-[0-9]{2}-[0-9]{4}");
    CHECK_STR(c->scorers[4].terms[0], "nope");
    CHECK_INT(c->scorers[6].min_chars, 2);
    CHECK_INT(c->scorers[6].max_chars, 10);
    CHECK_INT(c->scorers[7].max_latency_ms, 2000);
    CHECK(c->scorers[8].max_cost_usd == 0.05);
    CHECK_INT(c->scorers[9].kind, GYRE_SCORER_TOXICITY);
    CHECK_STR(c->scorers[10].judge_route, "r");
    CHECK_STR(c->scorers[10].rubric, "custom");
    CHECK_STR(c->scorers[10].prompt, "Rate {{answer}}");
    CHECK_INT(c->scorers[10].concurrency, 2);
    CHECK_INT(c->scorers[10].retries, 1);
    CHECK_INT(c->scorers[10].timeout_ms, 30000);
    gyre_config_free(c);
}

TEST(config_scorers_judge_defaults)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c =
        parse(PROVIDER_P "scorers:\n  - {name: judge, type: judge, route: r, rubric: correctness}\n" ROUTE_R, &errs);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    CHECK_INT(c->scorers[0].concurrency, 4);
    CHECK_INT(c->scorers[0].retries, 2);
    CHECK_INT(c->scorers[0].timeout_ms, 60000);
    CHECK(c->scorers[0].sample == 0);
    gyre_config_free(c);
}

TEST(config_scorers_a_pattern_that_does_not_compile_is_named_at_its_line)
{
    CHECK_ERRORS("scorers:\n"
                 "  - name: re\n"
                 "    type: regex\n"
                 "    must:\n"
                 "      - fine\n"
                 "      - '(open'\n",
                 "t.yaml:6: scorers[0].must[1]: '(open' is not a POSIX extended regular expression: Unmatched ( or \\(\n");
    CHECK_ERRORS("scorers:\n  - {name: re, type: regex, must_not: 'a{2,1}'}\n",
                 "t.yaml:2: scorers[0].must_not[0]: 'a{2,1}' is not a POSIX extended regular expression: Invalid "
                 "content of \\{\\}\n");
}

TEST(config_scorers_a_schema_that_is_not_json_is_named_at_its_line)
{
    CHECK_ERRORS("scorers:\n"
                 "  - name: s\n"
                 "    type: json_schema\n"
                 "    schema: '{\"type\": \"object\",}'\n",
                 "t.yaml:4: scorers[0].schema: is not JSON (write a mapping, or a JSON object as a string, of at most "
                 "262144 bytes)\n");
    CHECK_ERRORS("scorers:\n  - {name: s, type: json_schema, schema: '[1]'}\n",
                 "t.yaml:2: scorers[0].schema: is not a JSON schema (an object, or true or false)\n");
}

TEST(config_scorers_a_field_of_another_type_is_an_error)
{
    CHECK_ERRORS("scorers:\n  - {name: re, type: regex, must: a, schema: {type: object}}\n",
                 "t.yaml:2: scorers[0].schema: does not apply to type regex\n");
    CHECK_ERRORS("scorers:\n  - {name: x, type: length, colour: red, max_chars: 3}\n",
                 "t.yaml:2: scorers[0]: unknown field 'colour' (known: name, type, version, sample, routes, agents, "
                 "schema, must, must_not, terms, min_chars, max_chars, max_latency, max_cost, route, rubric, prompt, "
                 "concurrency, retries, timeout)\n");
}

TEST(config_scorers_required_fields_per_type)
{
    CHECK_ERRORS("scorers:\n"
                 "  - {type: json_valid}\n"
                 "  - {name: a}\n"
                 "  - {name: b, type: json_schema}\n"
                 "  - {name: c, type: regex}\n"
                 "  - {name: d, type: length}\n"
                 "  - {name: e, type: latency}\n"
                 "  - {name: f, type: cost}\n"
                 "  - {name: g, type: judge}\n"
                 "  - {name: h, type: judge, route: r, rubric: custom}\n"
                 "  - {name: i, type: judge, route: r, rubric: grounding, prompt: x}\n"
                 "  - {name: a, type: bleu}\n" PROVIDER_P ROUTE_R,
                 "t.yaml:2: scorers[0].name: is required\n"
                 "t.yaml:3: scorers[1].type: is required (supported: json_valid, json_schema, regex, refusal, "
                 "tool_args, length, latency, cost, toxicity, judge)\n"
                 "t.yaml:4: scorers[2].schema: is required for type json_schema\n"
                 "t.yaml:5: scorers[3]: type regex needs must, must_not or both\n"
                 "t.yaml:6: scorers[4]: type length needs min_chars, max_chars or both\n"
                 "t.yaml:7: scorers[5].max_latency: is required for type latency\n"
                 "t.yaml:8: scorers[6].max_cost: is required for type cost\n"
                 "t.yaml:9: scorers[7].route: is required for type judge\n"
                 "t.yaml:9: scorers[7].rubric: is required for type judge (supported: correctness, "
                 "instruction_following, grounding, toxicity, tool_use, custom)\n"
                 "t.yaml:10: scorers[8].prompt: is required for rubric custom\n"
                 "t.yaml:11: scorers[9].prompt: applies to rubric custom only (rubric grounding has its own template)\n"
                 "t.yaml:12: scorers[10].type: unknown value 'bleu' (supported: json_valid, json_schema, regex, "
                 "refusal, tool_args, length, latency, cost, toxicity, judge)\n"
                 "t.yaml:12: scorers[10].name: 'a' is already used by scorers[1]\n");
}

TEST(config_scorers_routes_they_name_must_exist)
{
    CHECK_ERRORS(PROVIDER_P ROUTE_R "scorers:\n"
                                    "  - {name: j, type: json_valid, routes: [r, nowhere]}\n"
                                    "  - {name: k, type: judge, route: gone, rubric: correctness}\n",
                 "t.yaml:6: scorers[0].routes[1]: no route is named 'nowhere'\n"
                 "t.yaml:7: scorers[1].route: no route is named 'gone'\n");
}

TEST(config_guardrails_are_read_in_order_with_their_scorer)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse(PROVIDER_P
                             "routes:\n"
                             "  - name: r\n"
                             "    targets: [{provider: p, model: m}]\n"
                             "    guardrails:\n"
                             "      - {check: ssn, on: request, action: deny}\n"
                             "      - {check: shape, action: retry}\n"
                             "      - {check: ssn, on: response, action: flag}\n"
                             "scorers:\n"
                             "  - {name: shape, type: json_valid}\n"
                             "  - {name: ssn, type: regex, must_not: ['[0-9]{3}-[0-9]{2}-[0-9]{4}']}\n",
                             &errs);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    const gyre_route_conf_t *r = &c->routes[0];
    CHECK_INT(r->nguardrails, 3);
    CHECK_INT(r->guardrails[0].scorer, 1);
    CHECK_INT(r->guardrails[0].on_request, 1);
    CHECK_INT(r->guardrails[0].action, GYRE_GUARD_DENY);
    CHECK_INT(r->guardrails[1].scorer, 0);
    CHECK_INT(r->guardrails[1].on_request, 0); /* on: response is the default */
    CHECK_INT(r->guardrails[1].action, GYRE_GUARD_RETRY);
    CHECK_INT(r->guardrails[2].action, GYRE_GUARD_FLAG);
    CHECK_INT(r->guardrails[2].line, 9);
    gyre_config_free(c);
}

TEST(config_guardrails_errors)
{
    CHECK_ERRORS(PROVIDER_P
                 "scorers:\n"
                 "  - {name: j, type: judge, route: r, rubric: correctness}\n"
                 "  - {name: ok, type: json_valid}\n"
                 "routes:\n"
                 "  - name: r\n"
                 "    targets: [{provider: p, model: m}]\n"
                 "    guardrails:\n"
                 "      - {check: missing, action: deny}\n"
                 "      - {check: j, action: flag}\n"
                 "      - {check: ok, on: request, action: retry}\n"
                 "      - {check: ok, on: sideways, action: flag}\n"
                 "      - {check: ok}\n"
                 "      - {action: deny}\n"
                 "      - {check: ok, action: flag, when: always}\n",
                 "t.yaml:10: routes[0].guardrails[0].check: no scorer is named 'missing'\n"
                 "t.yaml:11: routes[0].guardrails[1].check: 'j' is a judge; a guardrail runs heuristic scorers only\n"
                 "t.yaml:12: routes[0].guardrails[2].action: retry applies on: response only (a request that fails "
                 "has no other target to try)\n"
                 "t.yaml:13: routes[0].guardrails[3].on: unknown value 'sideways' (supported: request, response)\n"
                 "t.yaml:14: routes[0].guardrails[4].action: is required (deny, retry or flag)\n"
                 "t.yaml:15: routes[0].guardrails[5].check: is required (a scorer's name)\n"
                 "t.yaml:16: routes[0].guardrails[6]: unknown field 'when' (known: check, on, action)\n");
}
