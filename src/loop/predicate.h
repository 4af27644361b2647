/*
 * The quality filter of a curation spec (issue 14, point 5): a small
 * boolean language over an example's scores, feedback and call fields,
 *
 *     judge.correctness >= 0.8 and not heuristic.toxicity == 0
 *     feedback.thumbs == true or feedback.rating >= 4
 *     cost_usd < 0.01 and status == 200 and has(correction)
 *     (route == "support" or agent != 'triage') and not heuristic.refusal
 *
 * Grammar (keywords are lower-case; `and` binds tighter than `or`):
 *     expr    := and ( "or" and )*
 *     and     := unary ( "and" unary )*
 *     unary   := "not" unary | "(" expr ")" | "has" "(" NAME ")" | operand [ CMP operand ]
 *     operand := NAME | NUMBER | STRING | "true" | "false"
 *     CMP     := "==" | "!=" | "<" | "<=" | ">" | ">="
 * A STRING is '...' or "..." with \\ and \" (or \') escapes.  At least one
 * side of a comparison is a NAME.
 *
 * Names.  A call field: status, cost_usd, latency_ms, prompt_tokens,
 * completion_tokens, stream, cluster (numbers), route, agent, model,
 * provider, session, user, team, endpoint (strings).  A score by its
 * source and name: judge.NAME, heuristic.NAME, feedback.NAME (a human's
 * feedback), guardrail.NAME, or score.NAME (any source: the newest score of
 * that name).  The rest of the name after the first dot is the scorer's or
 * metric's name as the config declares it, dots included.  A bare NAME that
 * is not a field is score.NAME.  `correction` (in has()) is the feedback
 * correction; `answer` (in has()) an answer the call returned.
 *
 * Values.  A score compares by its number (a boolean is 0 or 1, so
 * `feedback.thumbs == true` is `== 1`) or, compared with a string, by its
 * category's label.  Alone (no comparison) a name is true when it is
 * present and non-zero (a string: non-empty).  A heuristic score is 1 when
 * the check PASSES (heuristic.h): `heuristic.refusal` holds for an answer
 * that does not refuse, `not heuristic.refusal` for one that does.
 *
 * Missing values.  A score the example does not have, an unknown cost or
 * token count is missing: a comparison with it is false and a name alone
 * is false, and `not` negates that (so `not judge.x >= 0.8` holds when
 * there is no judge.x score).  has(NAME) asks for presence.
 *
 * Errors name the byte position (from 1) and what was expected:
 * "position 19: expected a value after '>='".  Bounds: a predicate is at
 * most GYRE_PREDICATE_MAX_LEN bytes and nests at most
 * GYRE_PREDICATE_MAX_DEPTH deep (parsing is recursive; the bound keeps the
 * stack small for any input).
 */
#ifndef GYRE_LOOP_PREDICATE_H
#define GYRE_LOOP_PREDICATE_H

#include <stddef.h>

#include "loop/corpus.h"

#define GYRE_PREDICATE_MAX_LEN 4096
#define GYRE_PREDICATE_MAX_DEPTH 32

typedef struct gyre_predicate gyre_predicate_t;

/* Compiles `text`; NULL with err ("position N: ...") on a syntax error. */
gyre_predicate_t *gyre_predicate_parse(const char *text, char *err, size_t errlen);
void gyre_predicate_free(gyre_predicate_t *p);
/* 1 when the example satisfies it, else 0.  Thread-safe (a compiled predicate is immutable). */
int gyre_predicate_eval(const gyre_predicate_t *p, const gyre_example_t *ex);
/* 1 when the predicate is one name alone (what a spec's `dedup.keep` and `preference.score` take). */
int gyre_predicate_is_name(const gyre_predicate_t *p);
/* A one-name predicate's number on the example (a score's value, a numeric field); NaN when missing, a string or
 * a category only, or when the predicate is not one name. */
double gyre_predicate_number(const gyre_predicate_t *p, const gyre_example_t *ex);
/* The predicate's canonical text (parenthesised only where `and` and `or` need it, one space between tokens, strings in
 * double quotes, numbers as %.17g writes them), appended to `out`: a predicate written with other spacing, quotes or
 * redundant parentheses gives the same text.  The spec's canonical form (and so a dataset's id) is made of it. */
void gyre_predicate_canonical(const gyre_predicate_t *p, gyre_buf_t *out);

#endif
