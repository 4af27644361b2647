/*
 * Training backends (issue 15, point 1): one table of functions per way of
 * fine-tuning a model, one file each (train_openai.c, train_together.c,
 * train_command.c).  A job is a small struct that the loop runner persists as
 * JSON (gyre_train_job_json) and resumes from that JSON alone after a gyre
 * restart: a hosted job is polled again by its service id, a command by its
 * process group and the exit file its wrapper writes.
 *
 * start and poll never block longer than their HTTP exchanges (each bounded
 * by a deadline, see train_int.h); the caller polls every conf->poll_ms and
 * calls gyre_train_timeout after conf->timeout_ms.
 *
 * A new backend (Fireworks, Tinker) is a new file with a gyre_train_backend_t
 * and a line in train.c's table: its start uploads what it needs from
 * env->dataset_dir, its poll maps the service's statuses onto the five below.
 */
#ifndef GYRE_LOOP_TRAIN_H
#define GYRE_LOOP_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "config/config.h"
#include "loop/loopspec.h"

typedef struct gyre_train_job {
    char backend[16];
    char id[160];      /* the service's job id; command: "cmd-<run>" */
    char file_id[160]; /* the uploaded training file (hosted) */
    char status[16];   /* "queued" | "running" | "succeeded" | "failed" | "cancelled" */
    char model[1024];  /* on success: fine_tuned_model / output_name / the command's artifact (adapter path or URL) */
    char error[512];
    double progress;  /* 0..1, or -1 when the service does not say */
    char cursor[160]; /* the newest event already reported (openai: its id; together: how many; command: the log's
                       * byte offset) */
    int64_t started_us, finished_us;
    long pid; /* command: the child's process group */
} gyre_train_job_t;

typedef struct gyre_train_env {
    const gyre_config_t *config; /* providers: base_url and the first key of conf->provider */
    const gyre_train_conf_t *conf;
    const char *dataset_dir; /* <datasets>/<id>: train.jsonl, heldout.jsonl, preference.jsonl */
    const char *work_dir;    /* the run's own folder (exists): command's log, exit status, {out} */
    const char *run_id;
} gyre_train_env_t;

/* An event of the job, oldest first, each reported once (the job's cursor says which were). */
typedef void (*gyre_train_event_cb)(void *ctx, int64_t at_us, const char *level, const char *message);

typedef struct gyre_train_backend {
    const char *name;
    /* Starts the job: fills job (backend, id, status, started_us, ...).  0, or a negative errno with err set. */
    int (*start)(const gyre_train_env_t *env, gyre_train_job_t *job, char *err, size_t errlen);
    /* Asks where the job is: updates status, progress, model, error and the cursor; reports new events through
     * cb (may be NULL).  0, or a negative errno when the service could not be asked (the job is unchanged: ask
     * again later). */
    int (*poll)(const gyre_train_env_t *env, gyre_train_job_t *job, gyre_train_event_cb cb, void *ctx, char *err,
                size_t errlen);
    /* Cancels the job (status "cancelled").  0, or a negative errno. */
    int (*cancel)(const gyre_train_env_t *env, gyre_train_job_t *job, char *err, size_t errlen);
} gyre_train_backend_t;

/* The backend named `name` ("openai", "together", "command"), or NULL. */
const gyre_train_backend_t *gyre_train_backend_find(const char *name);

/* The job as one JSON object (every field, in the order of the struct), appended to out. */
void gyre_train_job_json(const gyre_train_job_t *job, gyre_buf_t *out);
/* The job again from that JSON: 0, or -EINVAL when it is not such an object (a field of the wrong type, a string
 * longer than its field, an unknown status). */
int gyre_train_job_from_json(const char *json, size_t len, gyre_train_job_t *job);

/* Whether the job's status is final (succeeded, failed, cancelled). */
int gyre_train_job_done(const gyre_train_job_t *job);

/* The job ran past conf->timeout_ms: cancels it through the backend (a command's process group is killed) and
 * marks it failed, saying so in job->error.  0, or the cancel's negative errno (the job is failed all the same). */
int gyre_train_timeout(const gyre_train_backend_t *b, const gyre_train_env_t *env, gyre_train_job_t *job, char *err,
                       size_t errlen);

#endif
