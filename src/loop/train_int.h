/*
 * What the training backends share (train.c) and the parsers and composers
 * each exposes to the unit tests and to fuzz/fuzz_train.c.  Not for callers
 * outside src/loop/train*.c.
 */
#ifndef GYRE_LOOP_TRAIN_INT_H
#define GYRE_LOOP_TRAIN_INT_H

#include "loop/train.h"
#include "otlp/httpc.h"

/* The bound on a service's answer: job objects and event pages are a few KiB; more is not one of them. */
#define GYRE_TRAIN_ANSWER_MAX ((size_t)4 << 20)
/* The bound on an uploaded dataset file: it is read whole into memory to be sent as one form body.  A larger file
 * fails the start with an error naming the file and the bound (nothing is uploaded). */
#define GYRE_TRAIN_UPLOAD_MAX ((size_t)64 << 20)
/* The time bound of one exchange with a service, and of an upload (which carries the dataset). */
#define GYRE_TRAIN_HTTP_TIMEOUT_MS 60000u
#define GYRE_TRAIN_UPLOAD_TIMEOUT_MS 600000u

/* One service: the provider's base URL (its path the prefix of every request) and its first key. */
typedef struct gyre_train_http {
    gyre_httpc_url_t url;
    char base_path[1024];
    SSL_CTX *ssl;
    char *authz; /* "Bearer KEY" (wiped and freed by close), or NULL without a key */
    char provider[128];
} gyre_train_http_t;

/* Finds env->conf->provider in env->config: 0, or -EINVAL (no such provider, not OpenAI-compatible, a bad URL). */
int gyre_train_http_open(const gyre_train_env_t *env, gyre_train_http_t *h, char *err, size_t errlen);
void gyre_train_http_close(gyre_train_http_t *h);
/* One JSON exchange with `path` under the base path (body NULL: none).  0 with the 2xx answer in `answer`, or
 * -EREMOTEIO with err holding the status and the service's own message, or the transport's negative errno. */
int gyre_train_http_json(gyre_train_http_t *h, const char *method, const char *path, const char *body, size_t len,
                         gyre_buf_t *answer, char *err, size_t errlen);
/* Uploads the file at `file` (bounded by GYRE_TRAIN_UPLOAD_MAX) as the form part "file", after `fields`, to
 * `path`; the answer's "id" into file_id.  0, or a negative errno with err set. */
int gyre_train_upload(gyre_train_http_t *h, const char *path, const char *file, const gyre_httpc_part_t *fields,
                      size_t nfields, char *file_id, size_t idlen, char *err, size_t errlen);

/* What a hosted service's job API differs in (train_openai.c, train_together.c): where its jobs are, how its
 * events are asked for, and how its answers read. */
typedef struct gyre_train_service {
    const char *jobs;         /* the jobs' collection under the base path: "/fine_tuning/jobs", "/fine-tunes" */
    const char *events_query; /* after ".../{id}/events": "?limit=100", or "" */
    const char *noun;         /* in errors: "job", "fine-tune" */
    int (*parse_job)(const char *json, size_t len, gyre_train_job_t *job, char *err, size_t errlen);
    int (*parse_events)(const char *json, size_t len, gyre_train_job_t *job, gyre_train_event_cb cb, void *ctx);
} gyre_train_service_t;
/* A poll: the events first (so that the last ones, a failure's reason or "succeeded", come before the status),
 * then the job.  0 with *job updated, or a negative errno with *job as it was. */
int gyre_train_service_poll(const gyre_train_service_t *sv, const gyre_train_env_t *env, gyre_train_job_t *job,
                            gyre_train_event_cb cb, void *ctx, char *err, size_t errlen);
/* POST .../{id}/cancel; the job's status "cancelled" when the service took it. */
int gyre_train_service_cancel(const gyre_train_service_t *sv, const gyre_train_env_t *env, gyre_train_job_t *job,
                              char *err, size_t errlen);

/* Copies s into dst, cut to size between whole UTF-8 sequences, with every control byte made a space and every
 * ill-formed sequence a '?': text from a service that ends up on a terminal, in an error, in the job's JSON. */
void gyre_train_copy_text(char *dst, size_t size, const char *s);
/* Copies an identifier into dst: 0, or -EINVAL when it is empty, longer than size - 1, or holds a byte that is
 * not printable ASCII (ids are put into URL paths: '/', '?', '#', '%' and spaces are refused too). */
int gyre_train_copy_id(char *dst, size_t size, const char *s);
int64_t gyre_train_now_us(void);
void gyre_train_set_status(gyre_train_job_t *job, const char *status);
/* What a service's job answer said, put into the job once the whole answer has been read: its id, its model
 * (empty: none yet; a model means the job is done, progress 1) and its status. */
void gyre_train_job_apply(gyre_train_job_t *job, const char *id, const char *model, const char *status);

/* The answers' parsers (untrusted bytes; fuzzed).  0, or -EINVAL with err set (job unchanged on error). */
int gyre_train_openai_parse_job(const char *json, size_t len, gyre_train_job_t *job, char *err, size_t errlen);
int gyre_train_openai_parse_events(const char *json, size_t len, gyre_train_job_t *job, gyre_train_event_cb cb,
                                   void *ctx);
int gyre_train_together_parse_job(const char *json, size_t len, gyre_train_job_t *job, char *err, size_t errlen);
int gyre_train_together_parse_events(const char *json, size_t len, gyre_train_job_t *job, gyre_train_event_cb cb,
                                     void *ctx);
/* The job creation requests (composers of upstream bodies; fuzzed through the conf's strings). */
int gyre_train_openai_request(const gyre_train_conf_t *conf, const char *training_file, const char *validation_file,
                              gyre_buf_t *out);
int gyre_train_together_request(const gyre_train_conf_t *conf, const char *training_file, const char *validation_file,
                                gyre_buf_t *out);

/* The values a command template's placeholders stand for. */
typedef struct gyre_train_vars {
    const char *train, *heldout, *preference, *out, *dataset, *run;
} gyre_train_vars_t;
/* Expands {train} {heldout} {preference} {out} {dataset} {run} in tmpl, each value single-quoted for sh (the one
 * place a value enters the command line); "${" is left to the shell.  0, or -EINVAL naming an unknown
 * placeholder, or -E2BIG past out's maximum. */
int gyre_train_command_compose(const char *tmpl, const gyre_train_vars_t *v, gyre_buf_t *out, char *err, size_t errlen);

extern const gyre_train_backend_t gyre_train_openai;
extern const gyre_train_backend_t gyre_train_together;
extern const gyre_train_backend_t gyre_train_command;

#endif
