/*
 * The `openai` training backend: OpenAI's fine-tuning API, and any service
 * that speaks it.  start uploads train.jsonl (preference.jsonl for dpo) and
 * heldout.jsonl (sft only, as the validation file) with purpose fine-tune,
 * then POSTs /fine_tuning/jobs; poll GETs the job and its events (which the
 * service lists newest first: the new ones are those before the cursor's id,
 * reported oldest first); cancel POSTs .../cancel.  train.learning_rate is
 * sent as the learning_rate_multiplier, the only rate this API takes.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "loop/train_int.h"

/* Events asked for per poll: more than a service emits between two polls; a gap beyond it is not reported. */
#define OPENAI_EVENTS_QUERY "?limit=100"

int gyre_train_openai_request(const gyre_train_conf_t *conf, const char *training_file, const char *validation_file,
                              gyre_buf_t *out)
{
    int dpo = conf->method != NULL && strcmp(conf->method, "dpo") == 0;
    const char *base = conf->base_model != NULL ? conf->base_model : "";
    gyre_buf_appends(out, "{\"model\":");
    gyre_buf_append_json_string(out, base, strlen(base));
    gyre_buf_appends(out, ",\"training_file\":");
    gyre_buf_append_json_string(out, training_file, strlen(training_file));
    if (validation_file != NULL) {
        gyre_buf_appends(out, ",\"validation_file\":");
        gyre_buf_append_json_string(out, validation_file, strlen(validation_file));
    }
    if (conf->suffix != NULL) {
        gyre_buf_appends(out, ",\"suffix\":");
        gyre_buf_append_json_string(out, conf->suffix, strlen(conf->suffix));
    }
    gyre_buf_appendf(out, ",\"method\":{\"type\":\"%s\",\"%s\":{\"hyperparameters\":{", dpo ? "dpo" : "supervised",
                     dpo ? "dpo" : "supervised");
    const char *sep = "";
    if (conf->epochs != 0) {
        gyre_buf_appendf(out, "\"n_epochs\":%u", conf->epochs);
        sep = ",";
    }
    if (conf->batch_size != 0) {
        gyre_buf_appendf(out, "%s\"batch_size\":%u", sep, conf->batch_size);
        sep = ",";
    }
    if (conf->learning_rate > 0)
        gyre_buf_appendf(out, "%s\"learning_rate_multiplier\":%.17g", sep, conf->learning_rate);
    gyre_buf_appends(out, "}}}}");
    return gyre_buf_failed(out);
}

int gyre_train_openai_parse_job(const char *json, size_t len, gyre_train_job_t *job, char *err, size_t errlen)
{
    cJSON *o = cJSON_ParseWithLength(json, len);
    int rc = -EINVAL;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");
    char idbuf[sizeof(job->id)];
    if (!cJSON_IsObject(o) || !cJSON_IsString(id) || !cJSON_IsString(st) ||
        gyre_train_copy_id(idbuf, sizeof(idbuf), id->valuestring) != 0) {
        snprintf(err, errlen, "the fine-tuning job's answer is not a job object with an id and a status");
        goto out;
    }
    const char *s = st->valuestring, *mapped = NULL;
    if (strcmp(s, "validating_files") == 0 || strcmp(s, "queued") == 0)
        mapped = "queued";
    else if (strcmp(s, "running") == 0)
        mapped = "running";
    else if (strcmp(s, "succeeded") == 0 || strcmp(s, "failed") == 0 || strcmp(s, "cancelled") == 0)
        mapped = s;
    if (mapped == NULL) {
        char shown[64];
        gyre_train_copy_text(shown, sizeof(shown), s);
        snprintf(err, errlen, "the fine-tuning job has an unknown status \"%s\"", shown);
        goto out;
    }
    char model[sizeof(job->model)] = "";
    if (strcmp(mapped, "succeeded") == 0) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "fine_tuned_model");
        if (!cJSON_IsString(m) || m->valuestring[0] == '\0' || strlen(m->valuestring) >= sizeof(model)) {
            snprintf(err, errlen, "the fine-tuning job succeeded without a usable fine_tuned_model");
            goto out;
        }
        gyre_train_copy_text(model, sizeof(model), m->valuestring);
    }
    if (strcmp(mapped, "failed") == 0) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
        const cJSON *m = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "message") : NULL;
        gyre_train_copy_text(job->error, sizeof(job->error),
                             cJSON_IsString(m) && m->valuestring[0] != '\0' ? m->valuestring : "the job failed");
    }
    gyre_train_job_apply(job, idbuf, model, mapped);
    rc = 0;
out:
    cJSON_Delete(o);
    return rc;
}

int gyre_train_openai_parse_events(const char *json, size_t len, gyre_train_job_t *job, gyre_train_event_cb cb,
                                   void *ctx)
{
    cJSON *o = cJSON_ParseWithLength(json, len);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
    if (!cJSON_IsArray(data)) {
        cJSON_Delete(o);
        return -EINVAL;
    }
    /* Newest first: the new events are those before the one the cursor names (all of the page when it is not
     * there). */
    int n = cJSON_GetArraySize(data), fresh = n;
    for (int i = 0; i < n; i++) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(data, i), "id");
        if (job->cursor[0] != '\0' && cJSON_IsString(id) && strcmp(id->valuestring, job->cursor) == 0) {
            fresh = i;
            break;
        }
    }
    for (int i = fresh - 1; i >= 0; i--) {
        const cJSON *e = cJSON_GetArrayItem(data, i);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
        const cJSON *lvl = cJSON_GetObjectItemCaseSensitive(e, "level");
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(e, "created_at");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "data");
        if (!cJSON_IsString(id) || gyre_train_copy_id(job->cursor, sizeof(job->cursor), id->valuestring) != 0)
            continue; /* an event without a usable id cannot be a cursor: it is skipped, never reported twice */
        const cJSON *step = cJSON_IsObject(d) ? cJSON_GetObjectItemCaseSensitive(d, "step") : NULL;
        const cJSON *total = cJSON_IsObject(d) ? cJSON_GetObjectItemCaseSensitive(d, "total_steps") : NULL;
        if (cJSON_IsNumber(step) && cJSON_IsNumber(total) && total->valuedouble > 0 && step->valuedouble >= 0 &&
            step->valuedouble <= total->valuedouble)
            job->progress = step->valuedouble / total->valuedouble;
        if (cb != NULL && cJSON_IsString(msg)) {
            char text[1024], level[16];
            gyre_train_copy_text(text, sizeof(text), msg->valuestring);
            gyre_train_copy_text(level, sizeof(level), cJSON_IsString(lvl) ? lvl->valuestring : "info");
            double secs = cJSON_IsNumber(at) && at->valuedouble > 0 && at->valuedouble < 1e11 ? at->valuedouble : 0;
            cb(ctx, (int64_t)(secs * 1e6), level, text);
        }
    }
    cJSON_Delete(o);
    return 0;
}

static int openai_start(const gyre_train_env_t *env, gyre_train_job_t *job, char *err, size_t errlen)
{
    const gyre_train_conf_t *c = env->conf;
    gyre_train_http_t h;
    gyre_buf_t body, answer;
    gyre_buf_init(&body, 64 * 1024);
    gyre_buf_init(&answer, GYRE_TRAIN_ANSWER_MAX);
    char train[4096], heldout[4096], valid[sizeof(job->file_id)] = "";
    int dpo = c->method != NULL && strcmp(c->method, "dpo") == 0;
    memset(job, 0, sizeof(*job));
    snprintf(job->backend, sizeof(job->backend), "openai");
    job->progress = -1;
    int rc = gyre_train_http_open(env, &h, err, errlen);
    if (rc != 0)
        goto out;
    snprintf(train, sizeof(train), "%s/%s", env->dataset_dir, dpo ? "preference.jsonl" : "train.jsonl");
    snprintf(heldout, sizeof(heldout), "%s/heldout.jsonl", env->dataset_dir);
    const gyre_httpc_part_t purpose = {"purpose", NULL, NULL, "fine-tune", 9};
    if ((rc = gyre_train_upload(&h, "/files", train, &purpose, 1, job->file_id, sizeof(job->file_id), err, errlen)) !=
        0)
        goto out;
    /* The held-out split is the validation file of a supervised job (a dpo job's lines are pairs, not its shape). */
    if (!dpo && access(heldout, R_OK) == 0 &&
        (rc = gyre_train_upload(&h, "/files", heldout, &purpose, 1, valid, sizeof(valid), err, errlen)) != 0)
        goto out;
    if (gyre_train_openai_request(c, job->file_id, valid[0] != '\0' ? valid : NULL, &body) != 0) {
        snprintf(err, errlen, "the job's request is larger than its bound");
        rc = -E2BIG;
        goto out;
    }
    if ((rc = gyre_train_http_json(&h, "POST", "/fine_tuning/jobs", body.base, body.len, &answer, err, errlen)) != 0)
        goto out;
    job->started_us = gyre_train_now_us();
    rc = gyre_train_openai_parse_job(answer.base, answer.len, job, err, errlen);
out:
    gyre_train_http_close(&h);
    gyre_buf_dispose(&body);
    gyre_buf_dispose(&answer);
    return rc;
}

static const gyre_train_service_t openai_service = {"/fine_tuning/jobs", OPENAI_EVENTS_QUERY, "job",
                                                    gyre_train_openai_parse_job, gyre_train_openai_parse_events};

static int openai_poll(const gyre_train_env_t *env, gyre_train_job_t *job, gyre_train_event_cb cb, void *ctx, char *err,
                       size_t errlen)
{
    return gyre_train_service_poll(&openai_service, env, job, cb, ctx, err, errlen);
}

static int openai_cancel(const gyre_train_env_t *env, gyre_train_job_t *job, char *err, size_t errlen)
{
    return gyre_train_service_cancel(&openai_service, env, job, err, errlen);
}

const gyre_train_backend_t gyre_train_openai = {"openai", openai_start, openai_poll, openai_cancel};
