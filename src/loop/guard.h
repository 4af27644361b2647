/*
 * In-line guardrails (issue 14, docs/guardrails.md): a route's `guardrails:` entries, each a heuristic scorer
 * run on the request (the last user message, before any attempt) or on the answer (before gyre sends it; a
 * stream's at its end), with an action when it fails: deny, retry or flag.
 *
 * One gyre_guard_t per configuration generation (proxy/gen.h), made from the checked config at start and on
 * each live change; it holds the checks compiled once per worker (glibc's regexec takes a lock inside its
 * compiled pattern: one copy per worker keeps workers from sharing it) and each worker's counters, written by
 * that worker alone (relaxed atomic stores, as src/metrics/metrics.c does) and summed by a scrape.
 *
 * What this module decides is which action to carry out; the caller carries it out (server/guard_stage.c on
 * the request, proxy/guard.c on the answer).  Every failed check is marked on the trace: a tag
 * "guardrail:NAME:ACTION" (the action taken: deny, retry or flag) and a metadata entry "guardrail.NAME" with the
 * reason, within the trace's bounds (16 tags, 16 entries; past them the mark is dropped, the metric still counts).
 */
#ifndef GYRE_LOOP_GUARD_H
#define GYRE_LOOP_GUARD_H

#include <h2o.h>
#include <stddef.h>

#include "common/buf.h"
#include "config/config.h"
#include "loop/heuristic.h"
#include "trace/trace.h"

typedef struct gyre_guard gyre_guard_t;

/* What the caller must do after the checks of one side. */
typedef struct gyre_guard_outcome {
    gyre_guard_action_t action; /* 0: go on (every check passed, or only flagged); GYRE_GUARD_DENY or _RETRY */
    const char *check;          /* the check that decided it (the scorer's name), or NULL */
    char reason[128];           /* its reason */
    unsigned needs;             /* (gyre_guard_needs) */
} gyre_guard_outcome_t;

/* What a side's checks read besides the text, so that the caller builds only that. */
#define GYRE_GUARD_NEEDS_TOOLS 0x1u /* a tool_args check: the answer's tool calls and the request's tools */

/* The guardrails of `c` compiled for `nworkers` workers; NULL with `err` ("scorer 'x': schema: ...") when a
 * check does not compile.  A config without guardrails gives an empty guard (never NULL on success). */
gyre_guard_t *gyre_guard_create(const gyre_config_t *c, unsigned nworkers, char *err, size_t errlen);
void gyre_guard_destroy(gyre_guard_t *g);

/* Whether route `r` (one of the guard's config's routes, or NULL) has checks on that side: the cheap question
 * the request path asks first.  Returns GYRE_GUARD_NEEDS_* bits plus 0x100 when it has any check. */
#define GYRE_GUARD_ANY 0x100u
unsigned gyre_guard_has(const gyre_guard_t *g, const gyre_route_conf_t *r, int on_request);

/*
 * Runs route r's checks of one side in order on worker `worker`, counting each, marking each failure on `t`
 * (copies in `pool`).  A failing deny or retry check stops the walk and is returned in `out`; a failing flag
 * check is marked and the walk goes on.  `stream`: the answer already went out, so every failure only flags.
 */
void gyre_guard_run(gyre_guard_t *g, unsigned worker, const gyre_route_conf_t *r, int on_request, int stream,
                    const gyre_check_input_t *in, gyre_trace_t *t, h2o_mem_pool_t *pool, gyre_guard_outcome_t *out);

/*
 * The text of the first choice of an OpenAI chat.completion in json[0..len) (bytes that may be anything: a
 * provider's answer passed through), without building a tree: the members on the way are skipped, the content
 * string is pointed at where it lies when nothing in it is escaped, else decoded into `pool`.  0 (a null or absent
 * content is the empty text), or -1 when the bytes are not such an answer.  Linear in len; brackets nested past
 * 1024 are refused.
 */
int gyre_guard_answer_text(const char *json, size_t len, h2o_mem_pool_t *pool, const char **text, size_t *tlen);

/* The families gyre_guardrail_checks_total{route,check,on,result} and gyre_guardrail_actions_total{route,check,
 * on,action}, summed over the workers, appended to out (nothing when there are no guardrails).  Any thread. */
void gyre_guard_render(const gyre_guard_t *g, gyre_buf_t *out);

#endif
