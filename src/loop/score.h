/*
 * The scoring runtime (issue 14, point 2): the scorers of the config's
 * `scorers:` section run over calls and their results are stored as
 * scores (gyre_store_write_scores), each with its scorer's name, version
 * and source (heuristic or judge).
 *
 * Online: when a call is finished (gyre_ctx_trace_done, after its answer
 * was sent), gyre_score_offer draws one number u in [0, 1) from the
 * worker's own random numbers; the call is kept when u is below the largest
 * `sample:` of the scorers whose `routes:`/`agents:` match it, and each
 * matching scorer whose sample is above u scores it (so every scorer sees
 * exactly its share of the calls, and a scorer of a smaller share sees a
 * subset of a larger one's).  A kept call is copied onto a bounded queue
 * (GYRE_SCORE_QUEUE_MAX calls and GYRE_SCORE_QUEUE_BYTES bytes of copies:
 * at either bound the call is not scored and gyre_scores_dropped_total
 * counts it; the worker never waits).  GYRE_SCORE_THREADS scorer threads,
 * each with its own store handle, take calls from the queue, turn each
 * into an example (gyre_corpus_example_from_row), run the heuristics and
 * the judges (a judge's calls at once bounded by its `concurrency`) and
 * write the scores.  Calls of the agent "gyre-judge" (the judges' own) are
 * never offered.
 *
 * Offline: `gyre score` (src/cli/score.c) runs one scorer over the stored
 * corpus with gyre_scorer_set_run, the same function the threads run.
 */
#ifndef GYRE_LOOP_SCORE_H
#define GYRE_LOOP_SCORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "config/config.h"
#include "loop/corpus.h"
#include "loop/judge.h"
#include "store/store.h"
#include "trace/trace.h"

/* The queue's bounds: calls waiting, and the bytes their copies hold (bodies included).  1024 calls is a few
 * seconds of a busy gateway's sampled share; 64 MiB bounds the memory a burst of large bodies can take. */
#define GYRE_SCORE_QUEUE_MAX 1024u
#define GYRE_SCORE_QUEUE_BYTES ((size_t)64 << 20)
/* Scorer threads: the most judge calls online at once (a scorer's `concurrency` bounds it further). */
#define GYRE_SCORE_THREADS 4u
/* The most scorers the runtime counts metrics for (more are scored, and counted under "other"). */
#define GYRE_SCORE_MAX_SCORERS 64u

/* ---- Scorers compiled from a config: online and offline run them through here. ---- */

typedef struct gyre_scorer_set gyre_scorer_set_t;

/* Compiles every scorer of `c` (heuristics compiled, judges' rubrics checked); NULL with err naming the
 * scorer and field.  Copies what it needs: `c` may be freed after. */
gyre_scorer_set_t *gyre_scorer_set_create(const gyre_config_t *c, char *err, size_t errlen);
void gyre_scorer_set_free(gyre_scorer_set_t *set);
/* The index of the scorer named `name`, or -1. */
int gyre_scorer_set_find(const gyre_scorer_set_t *set, const char *name);
const gyre_scorer_conf_t *gyre_scorer_set_conf(const gyre_scorer_set_t *set, size_t i);
size_t gyre_scorer_set_count(const gyre_scorer_set_t *set);

/* One scorer's result on one example. */
typedef struct gyre_score_outcome {
    int pass;
    double value;
    char comment[640]; /* the reason (a heuristic's failure, a judge's reasoning); "" when none */
    gyre_judge_stats_t judge;
} gyre_score_outcome_t;

/* Where a run reads the session's other calls (a judge's trajectory; NULL: the call alone) and sends judge calls. */
typedef struct gyre_score_env {
    gyre_store_t *store;
    const gyre_judge_client_t *judge;
} gyre_score_env_t;

/* Runs scorer i on `ex`.  0 with *out, or a negative errno with err (a judge that could not give a verdict). */
int gyre_scorer_set_run(const gyre_scorer_set_t *set, size_t i, const gyre_example_t *ex, const gyre_score_env_t *env,
                        gyre_score_outcome_t *out, char *err, size_t errlen);

/* The score to store for an outcome (strings point into conf, ex and out). */
void gyre_score_to_store(const gyre_scorer_conf_t *conf, const gyre_example_t *ex, const gyre_score_outcome_t *out,
                         int64_t now_us, gyre_score_t *score);

/* ---- Online ---- */

typedef struct gyre_scoring gyre_scoring_t;

typedef struct gyre_scoring_opts {
    const char *store_dsn;    /* where the threads write (each opens its own handle); NULL: no threads run */
    const char *judge_url;    /* gyre's own listener, http://host:port/v1/chat/completions */
    const char *judge_key;    /* the credential for it (gyre_access_internal_mint), or NULL; copied, never logged */
    unsigned threads;         /* 0: GYRE_SCORE_THREADS; tests start none to look at the queue */
    int no_threads;           /* 1: no thread (the unit tests) */
} gyre_scoring_opts_t;

/* Starts the runtime over c's scorers; NULL with err (a scorer that does not compile, a store that won't open). */
gyre_scoring_t *gyre_score_start(const gyre_config_t *c, const gyre_scoring_opts_t *o, char *err, size_t errlen);
/* Stops the threads (each finishes the call it holds; calls still queued are not scored) and frees it. */
void gyre_score_stop(gyre_scoring_t *s);

/* A uniform draw in [0, 1) from a worker's random numbers (53 bits). */
double gyre_score_draw(uint64_t *rng);
/* Whether scorer `conf` applies to a call of this route and agent (its routes:/agents:, none: every one). */
int gyre_score_matches(const gyre_scorer_conf_t *conf, const char *route, size_t rlen, const char *agent,
                       size_t alen);

/*
 * A finished call, on its worker (after its answer was sent): when answered
 * 2xx and not a judge's own, sampled with
 * `rng` against the scorers of `c` (the worker's generation) and, when kept,
 * copied onto the queue.  Returns 1 when queued, 0 when not sampled, -ENOSPC
 * when the queue was at a bound (counted as dropped).  Never waits beyond
 * the queue's lock, held for a push.
 */
int gyre_score_offer(gyre_scoring_t *s, const gyre_config_t *c, uint64_t *rng, const gyre_trace_t *t);

/* Live reload: the threads score with next's scorers from the next call on.  0, or -EINVAL with err (the
 * scorers in force stay).  The main thread's, while workers run. */
int gyre_score_reconfigure(gyre_scoring_t *s, const gyre_config_t *next, char *err, size_t errlen);

/* Queue and counters, for tests and /metrics. */
typedef struct gyre_score_stats {
    uint64_t queued, dropped; /* calls waiting now; calls not scored because the queue was at a bound */
    size_t queued_bytes;
} gyre_score_stats_t;
void gyre_score_stats(gyre_scoring_t *s, gyre_score_stats_t *st);

/* Appends gyre_scores_total{scorer,result}, gyre_scores_dropped_total, gyre_score_queue_depth and
 * gyre_judge_calls_total{scorer,outcome}.  0, or -E2BIG when out is full. */
int gyre_score_render_metrics(gyre_scoring_t *s, gyre_buf_t *out);

#endif
