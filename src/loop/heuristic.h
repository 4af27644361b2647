/*
 * Heuristic checks (issue 14, point 2): the cheap, deterministic scorers
 * that run offline over stored traces, online on a sampled share of
 * traffic after the answer is sent, and in-line on a route as guardrails
 * (on the request or on the answer, with an action).  One compiled check
 * runs from any thread at once (it is immutable after compile); it never
 * allocates on the in-line path beyond the caller's scratch.
 *
 * The config's `scorers:` section (src/config/scorers.c) declares them; a
 * judge scorer is declared there too but runs in src/loop/judge.c.
 */
#ifndef GYRE_LOOP_HEURISTIC_H
#define GYRE_LOOP_HEURISTIC_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

typedef struct gyre_heuristic gyre_heuristic_t;

/*
 * What a check reads of its input, at most.  The text kinds (regex, refusal, toxicity) read the first
 * GYRE_HEURISTIC_TEXT_MAX bytes and no more: a pattern or a term past them is not seen (an answer that long is
 * rare, and glibc's POSIX regexec is not linear in every case).  The JSON kinds (json_valid, json_schema,
 * tool_args) read the whole value up to GYRE_HEURISTIC_JSON_MAX bytes; a longer one fails the check, saying so
 * (a guardrail fails closed rather than judging half a document).  length counts every character.
 */
#define GYRE_HEURISTIC_TEXT_MAX ((size_t)64 * 1024)
#define GYRE_HEURISTIC_JSON_MAX ((size_t)1024 * 1024)

/* What one check sees of a call.  Any field may be NULL/-1 when the caller does not have it. */
typedef struct gyre_check_input {
    const char *text; /* the answer's text (or, on the request, the last user message's text) */
    size_t len;
    const char *tool_calls_json; /* the answer's tool_calls array, OpenAI shape, or NULL */
    const char *tools_json;      /* the request's tools array, OpenAI shape, or NULL */
    int64_t latency_us;          /* -1: unknown */
    double cost_usd;             /* NaN: unknown */
} gyre_check_input_t;

typedef struct gyre_check_result {
    int pass;         /* 1: the check holds */
    double value;     /* the score stored: what the check is named after: 1/0 for json_valid, json_schema, regex and
                       * tool_args passing; 1 when refusal or toxicity FINDS one (its check fails); the measure for
                       * length (characters), latency (ms) and cost (USD).  Pass or fail is `pass` (stored as the
                       * score's label "pass"/"fail"). */
    char reason[128]; /* why it failed, for a deny's error message and the stored comment ("" on pass) */
} gyre_check_result_t;

/* Compiles the scorer `conf` (a heuristic kind); NULL with err naming the field on a bad pattern or schema. */
gyre_heuristic_t *gyre_heuristic_compile(const gyre_scorer_conf_t *conf, char *err, size_t errlen);
void gyre_heuristic_free(gyre_heuristic_t *h);
/* Runs the check; thread-safe, bounded in time by the input's length (no backtracking blow-up). */
void gyre_heuristic_run(const gyre_heuristic_t *h, const gyre_check_input_t *in, gyre_check_result_t *out);

#endif
