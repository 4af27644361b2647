/* The curation filter language (src/loop/predicate.c): parsing, exact errors, evaluation and the canonical text. */
#include <math.h>
#include <string.h>

#include "loop/predicate.h"
#include "test.h"

static const gyre_example_score_t scores[] = {
    {"correctness", GYRE_SCORE_JUDGE, "2", 0.9, NULL}, {"refusal", GYRE_SCORE_HEURISTIC, "1", 1, NULL},
    {"thumbs", GYRE_SCORE_HUMAN, "", 0, NULL},         {"rating", GYRE_SCORE_HUMAN, "", 4, NULL},
    {"topic", GYRE_SCORE_HUMAN, "", NAN, "billing"},   {"my.scorer", GYRE_SCORE_HEURISTIC, "1", 0.25, NULL},
};

static gyre_example_t example(void)
{
    gyre_example_t ex;
    memset(&ex, 0, sizeof(ex));
    strcpy(ex.trace_id, "0123456789abcdef0123456789abcdef");
    ex.route = "support";
    ex.agent = "triage";
    ex.model = "gpt-4o-mini";
    ex.session = "s1";
    ex.status = 200;
    ex.cost_usd = 0.004;
    ex.latency_us = 1500000;
    ex.prompt_tokens = 120;
    ex.completion_tokens = -1;
    ex.cluster = 3;
    ex.answer_json = "{\"role\":\"assistant\",\"content\":\"hi\"}";
    ex.answer_text = "hi";
    ex.scores = scores;
    ex.nscores = sizeof(scores) / sizeof(scores[0]);
    return ex;
}

/* 1/0 for the predicate on the example, -1 when it does not parse. */
static int eval_on(const char *text, const gyre_example_t *ex)
{
    char err[256];
    gyre_predicate_t *p = gyre_predicate_parse(text, err, sizeof(err));
    if (p == NULL) {
        fprintf(stderr, "  parse %s: %s\n", text, err);
        return -1;
    }
    int r = gyre_predicate_eval(p, ex);
    gyre_predicate_free(p);
    return r;
}

static void check_error(const char *text, const char *want, int line)
{
    char err[256] = "";
    gyre_predicate_t *p = gyre_predicate_parse(text, err, sizeof(err));
    if (p != NULL || strcmp(err, want) != 0) {
        fprintf(stderr, "  line %d: %s: got \"%s\", expected \"%s\"\n", line, text, p ? "(parsed)" : err, want);
        gyre_test_failures++;
    }
    gyre_predicate_free(p);
}
#define CHECK_ERROR(text, want) check_error(text, want, __LINE__)

TEST(predicate_compares_scores_by_source_and_name)
{
    gyre_example_t ex = example();
    CHECK_INT(eval_on("judge.correctness >= 0.8", &ex), 1);
    CHECK_INT(eval_on("judge.correctness > 0.9", &ex), 0);
    CHECK_INT(eval_on("heuristic.correctness >= 0.8", &ex), 0); /* no heuristic score of that name */
    CHECK_INT(eval_on("score.correctness == 0.9", &ex), 1);
    CHECK_INT(eval_on("correctness == 0.9", &ex), 1);
    CHECK_INT(eval_on("feedback.rating >= 4", &ex), 1);
    CHECK_INT(eval_on("heuristic.my.scorer < 0.5", &ex), 1);
    CHECK_INT(eval_on("0.5 > heuristic.my.scorer", &ex), 1);
}

TEST(predicate_booleans_are_one_and_zero_and_a_name_alone_is_non_zero)
{
    gyre_example_t ex = example();
    CHECK_INT(eval_on("feedback.thumbs == false", &ex), 1);
    CHECK_INT(eval_on("feedback.thumbs == true", &ex), 0);
    CHECK_INT(eval_on("feedback.thumbs", &ex), 0);
    CHECK_INT(eval_on("heuristic.refusal", &ex), 1);
    CHECK_INT(eval_on("not heuristic.refusal", &ex), 0);
    CHECK_INT(eval_on("feedback.thumbs == true or feedback.rating >= 4", &ex), 1);
}

TEST(predicate_a_missing_score_is_false_and_not_negates_it)
{
    gyre_example_t ex = example();
    CHECK_INT(eval_on("judge.grounding >= 0", &ex), 0);
    CHECK_INT(eval_on("judge.grounding != 1", &ex), 0);
    CHECK_INT(eval_on("judge.grounding", &ex), 0);
    CHECK_INT(eval_on("not judge.grounding >= 0.5", &ex), 1);
    CHECK_INT(eval_on("has(judge.grounding)", &ex), 0);
    CHECK_INT(eval_on("has(judge.correctness)", &ex), 1);
    CHECK_INT(eval_on("completion_tokens < 100", &ex), 0); /* unknown */
    ex.cost_usd = NAN;
    CHECK_INT(eval_on("cost_usd < 0.01", &ex), 0);
}

TEST(predicate_reads_call_fields_and_categories)
{
    gyre_example_t ex = example();
    CHECK_INT(eval_on("status == 200 and cost_usd < 0.01", &ex), 1);
    CHECK_INT(eval_on("latency_ms <= 1500 and prompt_tokens == 120 and cluster == 3", &ex), 1);
    CHECK_INT(eval_on("route == \"support\" and agent != 'billing'", &ex), 1);
    CHECK_INT(eval_on("model == 'gpt-4o'", &ex), 0);
    CHECK_INT(eval_on("feedback.topic == \"billing\"", &ex), 1);
    CHECK_INT(eval_on("feedback.topic != 'billing'", &ex), 0);
    CHECK_INT(eval_on("feedback.topic >= 1", &ex), 0); /* a category has no number */
    CHECK_INT(eval_on("has(answer)", &ex), 1);
    CHECK_INT(eval_on("has(correction)", &ex), 0);
    ex.correction = "Refunds take 5 days.";
    CHECK_INT(eval_on("has(correction)", &ex), 1);
    CHECK_INT(eval_on("judge.correctness >= feedback.rating", &ex), 0);
    CHECK_INT(eval_on("feedback.rating > judge.correctness", &ex), 1);
}

TEST(predicate_and_binds_tighter_than_or_and_parentheses_group)
{
    gyre_example_t ex = example();
    CHECK_INT(eval_on("status == 500 and status == 500 or status == 200", &ex), 1);
    CHECK_INT(eval_on("status == 500 and (status == 500 or status == 200)", &ex), 0);
    CHECK_INT(eval_on("not not (status == 200)", &ex), 1);
}

TEST(predicate_errors_name_the_position_and_what_was_expected)
{
    CHECK_ERROR("judge.correctness >=", "position 21: expected a value after '>=', found the end");
    CHECK_ERROR("judge.correctness >= 0.8 and", "position 29: expected a condition, found the end");
    CHECK_ERROR("(status == 200", "position 15: expected ')' to close the '(' at position 1, found the end");
    CHECK_ERROR("status == 200 status", "position 15: expected and, or or the end, found 'status'");
    CHECK_ERROR("status = 200", "position 8: '=' is not an operator (comparisons are ==, !=, <, <=, >, >=)");
    CHECK_ERROR("route == 'support", "position 10: a string that is never closed");
    CHECK_ERROR("status == \"200\"", "position 1: status is a number: compare it with a number");
    CHECK_ERROR("route == 5", "position 1: this field is a string: compare it with a quoted string");
    CHECK_ERROR("route < 'a'", "position 7: a string compares only with == or !=");
    CHECK_ERROR("5 == 5", "position 6: two values compared: one side must be a name");
    CHECK_ERROR("true", "position 1: a value alone is not a condition: compare it with a name");
    CHECK_ERROR("judge. >= 1", "position 1: 'judge.' names no score after the dot");
    CHECK_ERROR("has status", "position 5: expected '(' after has, found 'status'");
    CHECK_ERROR("status == 2x", "position 11: not a number");
    CHECK_ERROR("status == 1e", "position 11: a number with an empty exponent");
    CHECK_ERROR("", "position 1: expected a condition, found the end");
    CHECK_ERROR("status == 200 & x", "position 15: unexpected character '&'");
}

TEST(predicate_nesting_past_the_bound_is_an_error_not_a_deep_stack)
{
    char text[200];
    size_t n = 0;
    for (int i = 0; i < 40; i++)
        text[n++] = '(';
    memcpy(text + n, "status", 7);
    char err[256] = "";
    CHECK(gyre_predicate_parse(text, err, sizeof(err)) == NULL);
    CHECK_STR(err, "position 33: nested deeper than 32");
}

TEST(predicate_canonical_text_ignores_spacing_quotes_and_redundant_parentheses)
{
    char err[256];
    gyre_predicate_t *a = gyre_predicate_parse("(judge.correctness>=0.80) and not heuristic.refusal or "
                                               "route=='support'",
                                               err, sizeof(err));
    gyre_predicate_t *b = gyre_predicate_parse("judge.correctness >= 8e-1  and  (not heuristic.refusal)  or  "
                                               "route == \"support\"",
                                               err, sizeof(err));
    gyre_buf_t ba, bb;
    gyre_buf_init(&ba, 4096);
    gyre_buf_init(&bb, 4096);
    gyre_predicate_canonical(a, &ba);
    gyre_predicate_canonical(b, &bb);
    CHECK_STR(ba.base, "judge.correctness >= 0.80000000000000004 and not heuristic.refusal or route == \"support\"");
    CHECK_STR(bb.base, ba.base);
    gyre_predicate_free(a);
    gyre_predicate_free(b);
    /* Parentheses stay where the binding needs them, and a chain of one operator is flat. */
    a = gyre_predicate_parse("not (status == 200 or (status == 201 or status == 202)) and (a or b) and c", err,
                             sizeof(err));
    gyre_buf_reset(&ba);
    gyre_predicate_canonical(a, &ba);
    CHECK_STR(ba.base, "not (status == 200 or status == 201 or status == 202) and (score.a or score.b) and score.c");
    gyre_predicate_free(a);
    gyre_buf_dispose(&ba);
    gyre_buf_dispose(&bb);
}

TEST(predicate_a_name_alone_gives_its_number)
{
    gyre_example_t ex = example();
    char err[256];
    gyre_predicate_t *p = gyre_predicate_parse("judge.correctness", err, sizeof(err));
    CHECK(gyre_predicate_is_name(p));
    CHECK(gyre_predicate_number(p, &ex) == 0.9);
    gyre_predicate_free(p);
    p = gyre_predicate_parse("judge.missing", err, sizeof(err));
    CHECK(isnan(gyre_predicate_number(p, &ex)));
    gyre_predicate_free(p);
    p = gyre_predicate_parse("status == 200", err, sizeof(err));
    CHECK(!gyre_predicate_is_name(p));
    gyre_predicate_free(p);
}
