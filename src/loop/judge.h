/*
 * The LLM judge (issue 14, point 2): a scorer that asks a model, through
 * one of gyre's own routes, to grade a call against a rubric.  Its calls
 * are ordinary calls to gyre's listener (POST /v1/chat/completions with
 * model = the scorer's `route`), so they are traced, costed and limited
 * like any other; they carry `x-gyre-agent: gyre-judge`, and the scoring
 * runtime (score.c) never scores a call of that agent, so a judge never
 * judges itself.
 *
 * A verdict is asked for as JSON (response_format json_schema named
 * "gyre_verdict": {"score": 0..1, "verdict": "pass"|"fail", "reasoning"})
 * and parsed strictly (gyre_judge_parse_verdict): one malformed answer is
 * asked again, with the reason, up to the scorer's `retries`.
 *
 * The prompt is a rubric's instruction then sections between explicit
 * markers (=====TASK=====, =====ANSWER=====, =====REFERENCE=====,
 * =====CONTEXT=====, =====TRAJECTORY=====, each closed by =====END NAME=====),
 * so that a model, and gyre-mock's deterministic judge (docs/mock.md), can
 * tell the parts apart.
 */
#ifndef GYRE_LOOP_JUDGE_H
#define GYRE_LOOP_JUDGE_H

#include <stddef.h>

#include "common/buf.h"
#include "config/config.h"
#include "loop/corpus.h"
#include "otlp/httpc.h"

/* The agent every judge call names (x-gyre-agent): calls of this agent are never scored. */
#define GYRE_JUDGE_AGENT "gyre-judge"
/* The first line of the message that asks again after a malformed verdict (gyre-mock keys on it). */
#define GYRE_JUDGE_RETRY_NOTE "GYRE-VERDICT-RETRY: your previous answer was not a valid verdict"
/* A section's text is cut at this many bytes (with a note), so that one huge call cannot make a prompt
 * larger than a judge model takes; the whole prompt is bounded by GYRE_JUDGE_PROMPT_MAX. */
#define GYRE_JUDGE_SECTION_MAX (24u * 1024)
#define GYRE_JUDGE_PROMPT_MAX (128u * 1024)
/* A judge's answer is read up to this many bytes (a verdict is a few hundred; more is not a verdict). */
#define GYRE_JUDGE_ANSWER_MAX (256u * 1024)

typedef struct gyre_verdict {
    double score; /* 0..1 */
    int pass;     /* "pass" */
    char reasoning[512];
} gyre_verdict_t;

/* What a prompt is made from (any NULL: the section is left out, or "(none)" where the rubric needs it). */
typedef struct gyre_judge_input {
    const char *task;       /* the conversation up to the answer */
    const char *answer;     /* the answer's text */
    const char *reference;  /* the feedback correction, or the trace's `reference` metadata */
    const char *context;    /* the given context (system prompt and tool results), for grounding */
    const char *trajectory; /* the session's calls, oldest first, for instruction following */
    const char *tools;      /* the request's tools (JSON), for tool use */
} gyre_judge_input_t;

/* Whether `rubric` is one this file has a template for (custom included). */
int gyre_judge_rubric_known(const char *rubric);

/* Appends the prompt for the scorer's rubric (its `prompt` for custom, with {{task}}, {{answer}},
 * {{reference}}, {{context}}, {{trajectory}} replaced).  0, or -EINVAL with err naming the rubric. */
int gyre_judge_render(const gyre_scorer_conf_t *conf, const gyre_judge_input_t *in, gyre_buf_t *out, char *err,
                      size_t errlen);

/* The judge inputs of an example: the reference from its correction or its `reference` metadata, the context
 * from its system and tool messages.  Strings go into `scratch` (kept until it is reset). */
void gyre_judge_input_from_example(const gyre_example_t *ex, const char *trajectory, gyre_buf_t *scratch,
                                   gyre_judge_input_t *in);

/* The chat request asking for a verdict: model = route, the prompt, and (on a retry) the malformed answer and
 * the reason it was refused. */
int gyre_judge_request(const char *route, const char *prompt, const char *bad_answer, const char *why,
                       gyre_buf_t *out);

/* Parses a verdict object, strictly: a JSON object with exactly "score" (a number in [0, 1]), "verdict"
 * ("pass" or "fail") and "reasoning" (a string); anything else is -EINVAL with err saying what. */
int gyre_judge_parse_verdict(const char *json, size_t len, gyre_verdict_t *v, char *err, size_t errlen);

/* The verdict in a chat completion's answer (choices[0].message.content); -EINVAL as above, or saying the
 * answer is not a chat completion.  *content (may be NULL) gets a copy of the content to show on a retry. */
int gyre_judge_parse_answer(const char *body, size_t len, gyre_verdict_t *v, char **content, char *err,
                            size_t errlen);

/* Where the judge's calls go: gyre's own listener, and the credential (may be NULL: an open gateway). */
typedef struct gyre_judge_client {
    gyre_httpc_url_t url; /* .../v1/chat/completions */
    const char *key;      /* a bearer key; never logged */
    const char *judged_trace; /* set per call: x-gyre-meta-judged-trace (may be NULL) */
} gyre_judge_client_t;

/* Counts of what a run did, for the caller's metrics. */
typedef struct gyre_judge_stats {
    unsigned calls;     /* judge calls made */
    unsigned malformed; /* verdicts refused and asked again (or given up on) */
} gyre_judge_stats_t;

/*
 * Asks the judge: renders, posts, parses, asks again on a malformed verdict
 * up to conf->retries, each call bounded by conf->timeout_ms.  0 with *v, or
 * a negative errno with err (the call failed, a non-2xx status, or every
 * verdict was malformed: -EBADMSG).  Blocking: a scorer thread's.
 */
int gyre_judge_run(const gyre_judge_client_t *c, const gyre_scorer_conf_t *conf, const gyre_judge_input_t *in,
                   gyre_verdict_t *v, gyre_judge_stats_t *stats, char *err, size_t errlen);

#endif
