/*
 * Feedback (issue 14, point 1): a person's or an application's judgement of
 * a call or a session, on a metric the config declares (`feedback:
 * metrics:`), stored as a score of source GYRE_SCORE_HUMAN (store.h).
 * POST /v1/feedback (server/feedback.c) and `gyre feedback` (cli/feedback.c,
 * over HTTP) read and answer through here, so the checks and the answer's
 * shape are in one place:
 *
 *   request  {"trace_id":"<32 hex>" | "session_id":"...", "name":"helpful",
 *             "value":true | 0.8 | "rude", "comment":"..."?, "correction":"..."?}
 *   answer   {"trace_id":"<32 hex>"|null,"session_id":"..."|null,"name":"helpful",
 *             "value":1|0.8|null,"label":"rude"|null,"comment":...|null,
 *             "correction":...|null,"created_us":N}
 */
#ifndef GYRE_LOOP_FEEDBACK_H
#define GYRE_LOOP_FEEDBACK_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "config/config.h"
#include "store/store.h"

/* The bounds of a feedback body: the whole body, a comment, a correction (a demonstration: a whole answer). */
#define GYRE_FEEDBACK_BODY_MAX ((size_t)2 << 20)
#define GYRE_FEEDBACK_COMMENT_MAX 4096
#define GYRE_FEEDBACK_CORRECTION_MAX ((size_t)1 << 20)
#define GYRE_FEEDBACK_SESSION_MAX 1024
/*
 * How long feedback on a trace not found yet waits for it before it is a
 * 404: a trace reaches the index through the writer and the trace log's
 * indexer a moment after its call's answer (tens of milliseconds; about a
 * second under a burst), and feedback given right after the answer (the
 * application's own thumbs-up) must not miss it.  Two seconds covers that
 * lag with room; longer would let unknown ids hold the API's reader
 * threads.  It is looked up again after 20, 40, 80 ... ms, up to this.
 */
#define GYRE_FEEDBACK_WAIT_MS 2000

/* A checked feedback; strings owned (gyre_feedback_dispose). */
typedef struct gyre_feedback {
    char trace_id[33]; /* "" when given by session */
    char *session;     /* by session: its id; by trace: filled from the trace by gyre_feedback_record */
    char *name;
    double value;      /* a boolean as 1/0; NaN for a category */
    char *label;       /* a category's value, else NULL */
    char *comment, *correction; /* NULL: none */
    int64_t created_us;         /* set by gyre_feedback_record */
    int64_t trace_started_us;
} gyre_feedback_t;

/*
 * Reads and checks a request body against the config's metrics.  0, or
 * -EINVAL with `param` set to the field at fault ("trace_id", "session_id",
 * "name", "value", "comment", "correction", or NULL for the body as a
 * whole) and err saying what was wrong.
 */
int gyre_feedback_parse(const gyre_config_t *c, const char *body, size_t len, gyre_feedback_t *out,
                        const char **param, char *err, size_t errlen);
void gyre_feedback_dispose(gyre_feedback_t *f);

/*
 * Stores the feedback: finds its trace (or a call of its session), waiting
 * up to wait_ms for it to be indexed, then writes it with created_us = now.
 * 0; -ENOENT when no such trace or session (err: "no trace '...'"); another
 * negative errno when the store fails (err says how).
 */
int gyre_feedback_record(gyre_store_t *s, gyre_feedback_t *f, int64_t wait_ms, char *err, size_t errlen);

/* The answer's JSON (above), appended to out. */
int gyre_feedback_render(const gyre_feedback_t *f, gyre_buf_t *out);

#endif
