/*
 * The loop as one command (issue 15, point 7): a run takes a loop spec
 * (loopspec.h) from a dataset to a watched deployment,
 *
 *   curate -> train -> serve -> gate -> deploy -> watch -> done
 *
 * and ends `done`, `rejected` (the gate said no), `rolled_back` (the canary
 * or the watch regressed), `failed` (a stage could not go on: the job
 * failed, the adapter was refused, the dataset is empty) or `cancelled`.
 *
 * A run lives in the control-plane state database (control/state.h, table
 * loop_runs) as one JSON document, written after every step; one runner
 * thread inside `gyre serve` advances every running run a step at a time.
 * Every step is resumable from the document alone: after a restart the
 * runner reloads the running runs and goes on (a training job is polled
 * again by its service's id, a command's exit status is read from its file,
 * a canary goes on from its stored step: loop/deploy.h), so a restart
 * mid-job costs nothing but the time it was down.
 *
 * Scheduled mode: `loops:` in the config names spec files; a spec with
 * `schedule: {every: 24h}` starts a run when its last run began that long
 * ago, `schedule: {new_traces: N}` when N traces of its route came after
 * its last run began; never while a run of the same name is running.
 */
#ifndef GYRE_LOOP_LOOPRUN_H
#define GYRE_LOOP_LOOPRUN_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "control/state.h"
#include "loop/deploy.h"
#include "otlp/httpc.h"

/* A run's id: "run_" and 16 hex digits. */
#define GYRE_LOOP_RUN_ID_MAX 24
/* A run keeps its last events (stage changes, job events, decisions): older ones are dropped, counted. */
#define GYRE_LOOP_RUN_EVENTS 200
/* The runs a listing answers at most. */
#define GYRE_LOOP_RUNS_LIST_MAX 500

typedef struct gyre_loop_host {
    const gyre_deploy_host_t *deploy; /* the canary's host: route changes, the config in force, alerts */
    gyre_state_t *state;
    const char *store_dsn;            /* curation reads it, the scheduler counts new traces in it */
    gyre_httpc_url_t listener;        /* gyre's own listener, .../v1/chat/completions (the gate's replays) */
    const char *key;                  /* gyre's internal key (copied) */
    const char *work_dir;             /* where each run's folder is made: <work_dir>/<run id>/ */
    const char *const *spec_paths;    /* `loops:`: the scheduled specs */
    size_t nspecs;
} gyre_loop_host_t;

typedef struct gyre_loop_runner gyre_loop_runner_t;

/* Creates the table if needed and starts the runner thread, which takes no step before gyre_loop_runner_go (runs
 * can be submitted and read from the start; a step may call the listener, so it waits for the workers).  NULL
 * with err. */
gyre_loop_runner_t *gyre_loop_runner_start(const gyre_loop_host_t *host, char *err, size_t errlen);
/* The workers answer: the runner may take steps. */
void gyre_loop_runner_go(gyre_loop_runner_t *r);
/* Ends the thread (a step in progress finishes first: a curation, one poll, a gate's replay). */
void gyre_loop_runner_stop(gyre_loop_runner_t *r);

/*
 * Starts a run of the spec `text` (its file's bytes; `path` resolves a
 * relative `curate:` and names it in errors).  0 with the id in id_out, or
 * -EINVAL (the spec's error in err), -EBUSY (a run of that name is running:
 * err names it).
 */
int gyre_loop_submit(gyre_loop_runner_t *r, const char *text, size_t len, const char *path, const char *trigger,
                     char *id_out, size_t id_size, char *err, size_t errlen);
/* The same, appending the run's document as it was submitted to `doc` (the runner may have stepped since). */
int gyre_loop_submit_doc(gyre_loop_runner_t *r, const char *text, size_t len, const char *path, const char *trigger,
                         char *id_out, size_t id_size, gyre_buf_t *doc, char *err, size_t errlen);
/* Cancels a running run (its training job too).  0, -ENOENT, or -EALREADY (it had ended). */
int gyre_loop_cancel(gyre_loop_runner_t *r, const char *id, char *err, size_t errlen);

/* {"runs": [run, ...]} newest first, at most `limit`, appended to out.  0 or a negative errno. */
int gyre_loop_runs_json(gyre_state_t *st, size_t limit, gyre_buf_t *out, char *err, size_t errlen);
/* One run's document.  0, -ENOENT, or a negative errno. */
int gyre_loop_run_json(gyre_state_t *st, const char *id, gyre_buf_t *out, char *err, size_t errlen);
/* The gate report of a run (`md` or `json`), read from its folder.  0, -ENOENT (no run, or no gate yet). */
int gyre_loop_run_report(gyre_state_t *st, const char *id, int markdown, gyre_buf_t *out, char *err, size_t errlen);

/* Whether `id` has a run id's shape. */
int gyre_loop_run_id_ok(const char *id, size_t len);

#endif
