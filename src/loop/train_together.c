/*
 * The `together` training backend: Together's fine-tuning API.  start
 * uploads train.jsonl (preference.jsonl for dpo) and heldout.jsonl (sft: the
 * validation file) to /files/upload (file, file_name, purpose=fine-tune), then
 * POSTs /fine-tunes with training_type {Lora|Full} and training_method
 * {sft|dpo}; poll GETs the job (status, output_name) and /fine-tunes/ID/events
 * (oldest first, with no event id: the cursor is how many were reported);
 * cancel POSTs /fine-tunes/ID/cancel.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/time.h"
#include "loop/train_int.h"

int gyre_train_together_request(const gyre_train_conf_t *conf, const char *training_file, const char *validation_file,
                                gyre_buf_t *out)
{
    int dpo = conf->method != NULL && strcmp(conf->method, "dpo") == 0;
    int full = conf->training_type != NULL && strcmp(conf->training_type, "full") == 0;
    const char *base = conf->base_model != NULL ? conf->base_model : "";
    gyre_buf_appends(out, "{\"training_file\":");
    gyre_buf_append_json_string(out, training_file, strlen(training_file));
    if (validation_file != NULL) {
        /* Together evaluates on the validation file only when asked to evaluate at least once. */
        gyre_buf_appends(out, ",\"validation_file\":");
        gyre_buf_append_json_string(out, validation_file, strlen(validation_file));
        gyre_buf_appends(out, ",\"n_evals\":1");
    }
    gyre_buf_appends(out, ",\"model\":");
    gyre_buf_append_json_string(out, base, strlen(base));
    if (conf->epochs != 0)
        gyre_buf_appendf(out, ",\"n_epochs\":%u", conf->epochs);
    if (conf->learning_rate > 0)
        gyre_buf_appendf(out, ",\"learning_rate\":%.17g", conf->learning_rate);
    if (conf->batch_size != 0)
        gyre_buf_appendf(out, ",\"batch_size\":%u", conf->batch_size);
    if (conf->suffix != NULL) {
        gyre_buf_appends(out, ",\"suffix\":");
        gyre_buf_append_json_string(out, conf->suffix, strlen(conf->suffix));
    }
    gyre_buf_appendf(out, ",\"training_type\":{\"type\":\"%s\"", full ? "Full" : "Lora");
    if (!full && conf->lora_rank != 0)
        gyre_buf_appendf(out, ",\"lora_r\":%u", conf->lora_rank);
    gyre_buf_appendf(out, "},\"training_method\":{\"method\":\"%s\"}}", dpo ? "dpo" : "sft");
    return gyre_buf_failed(out);
}

int gyre_train_together_parse_job(const char *json, size_t len, gyre_train_job_t *job, char *err, size_t errlen)
{
    cJSON *o = cJSON_ParseWithLength(json, len);
    int rc = -EINVAL;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");
    char idbuf[sizeof(job->id)];
    if (!cJSON_IsObject(o) || !cJSON_IsString(id) || !cJSON_IsString(st) ||
        gyre_train_copy_id(idbuf, sizeof(idbuf), id->valuestring) != 0) {
        snprintf(err, errlen, "the fine-tune's answer is not a job object with an id and a status");
        goto out;
    }
    const char *s = st->valuestring, *mapped = NULL;
    if (strcmp(s, "pending") == 0 || strcmp(s, "queued") == 0)
        mapped = "queued";
    else if (strcmp(s, "running") == 0 || strcmp(s, "compressing") == 0 || strcmp(s, "uploading") == 0)
        mapped = "running";
    else if (strcmp(s, "completed") == 0)
        mapped = "succeeded";
    else if (strcmp(s, "error") == 0 || strcmp(s, "failed") == 0)
        mapped = "failed";
    else if (strcmp(s, "cancelled") == 0 || strcmp(s, "cancel_requested") == 0)
        mapped = "cancelled";
    if (mapped == NULL) {
        char shown[64];
        gyre_train_copy_text(shown, sizeof(shown), s);
        snprintf(err, errlen, "the fine-tune has an unknown status \"%s\"", shown);
        goto out;
    }
    char model[sizeof(job->model)] = "";
    if (strcmp(mapped, "succeeded") == 0) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "output_name");
        if (!cJSON_IsString(m) || m->valuestring[0] == '\0' || strlen(m->valuestring) >= sizeof(model)) {
            snprintf(err, errlen, "the fine-tune completed without a usable output_name");
            goto out;
        }
        gyre_train_copy_text(model, sizeof(model), m->valuestring);
    }
    if (strcmp(mapped, "failed") == 0) {
        /* The reason: an error member when there is one, else the last event's message. */
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
        const cJSON *m = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "message") : e;
        if (!cJSON_IsString(m) || m->valuestring[0] == '\0') {
            const cJSON *ev = cJSON_GetObjectItemCaseSensitive(o, "events");
            int n = cJSON_IsArray(ev) ? cJSON_GetArraySize(ev) : 0;
            m = n > 0 ? cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(ev, n - 1), "message") : NULL;
        }
        gyre_train_copy_text(job->error, sizeof(job->error),
                             cJSON_IsString(m) && m->valuestring[0] != '\0' ? m->valuestring : "the job failed");
    }
    gyre_train_job_apply(job, idbuf, model, mapped);
    rc = 0;
out:
    cJSON_Delete(o);
    return rc;
}

int gyre_train_together_parse_events(const char *json, size_t len, gyre_train_job_t *job, gyre_train_event_cb cb,
                                     void *ctx)
{
    cJSON *o = cJSON_ParseWithLength(json, len);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
    if (!cJSON_IsArray(data)) {
        cJSON_Delete(o);
        return -EINVAL;
    }
    /* Oldest first, no ids: the cursor counts the events reported. */
    char *end = NULL;
    long seen = strtol(job->cursor, &end, 10);
    if (end == job->cursor || seen < 0)
        seen = 0;
    int n = cJSON_GetArraySize(data);
    for (int i = (int)(seen < n ? seen : n); i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(data, i);
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
        const cJSON *lvl = cJSON_GetObjectItemCaseSensitive(e, "level");
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(e, "created_at");
        const cJSON *step = cJSON_GetObjectItemCaseSensitive(e, "step");
        const cJSON *total = cJSON_GetObjectItemCaseSensitive(e, "total_steps");
        if (cJSON_IsNumber(step) && cJSON_IsNumber(total) && total->valuedouble > 0 && step->valuedouble >= 0 &&
            step->valuedouble <= total->valuedouble)
            job->progress = step->valuedouble / total->valuedouble;
        int64_t at_us = 0;
        if (!cJSON_IsString(at) || gyre_time_parse(at->valuestring, &at_us) != 0)
            at_us = 0;
        if (cb != NULL && cJSON_IsString(msg)) {
            char text[1024], level[16];
            gyre_train_copy_text(text, sizeof(text), msg->valuestring);
            gyre_train_copy_text(level, sizeof(level), cJSON_IsString(lvl) ? lvl->valuestring : "info");
            cb(ctx, at_us, level, text);
        }
    }
    if (n > seen)
        snprintf(job->cursor, sizeof(job->cursor), "%d", n);
    cJSON_Delete(o);
    return 0;
}

static int together_start(const gyre_train_env_t *env, gyre_train_job_t *job, char *err, size_t errlen)
{
    const gyre_train_conf_t *c = env->conf;
    gyre_train_http_t h;
    gyre_buf_t body, answer;
    gyre_buf_init(&body, 64 * 1024);
    gyre_buf_init(&answer, GYRE_TRAIN_ANSWER_MAX);
    char train[4096], heldout[4096], valid[sizeof(job->file_id)] = "";
    int dpo = c->method != NULL && strcmp(c->method, "dpo") == 0;
    const char *train_name = dpo ? "preference.jsonl" : "train.jsonl";
    memset(job, 0, sizeof(*job));
    snprintf(job->backend, sizeof(job->backend), "together");
    job->progress = -1;
    int rc = gyre_train_http_open(env, &h, err, errlen);
    if (rc != 0)
        goto out;
    snprintf(train, sizeof(train), "%s/%s", env->dataset_dir, train_name);
    snprintf(heldout, sizeof(heldout), "%s/heldout.jsonl", env->dataset_dir);
    gyre_httpc_part_t fields[2] = {{"file_name", NULL, NULL, train_name, strlen(train_name)},
                                   {"purpose", NULL, NULL, "fine-tune", 9}};
    if ((rc = gyre_train_upload(&h, "/files/upload", train, fields, 2, job->file_id, sizeof(job->file_id), err,
                                errlen)) != 0)
        goto out;
    if (!dpo && access(heldout, R_OK) == 0) {
        fields[0] = (gyre_httpc_part_t){"file_name", NULL, NULL, "heldout.jsonl", 13};
        if ((rc = gyre_train_upload(&h, "/files/upload", heldout, fields, 2, valid, sizeof(valid), err, errlen)) != 0)
            goto out;
    }
    if (gyre_train_together_request(c, job->file_id, valid[0] != '\0' ? valid : NULL, &body) != 0) {
        snprintf(err, errlen, "the fine-tune's request is larger than its bound");
        rc = -E2BIG;
        goto out;
    }
    if ((rc = gyre_train_http_json(&h, "POST", "/fine-tunes", body.base, body.len, &answer, err, errlen)) != 0)
        goto out;
    job->started_us = gyre_train_now_us();
    rc = gyre_train_together_parse_job(answer.base, answer.len, job, err, errlen);
out:
    gyre_train_http_close(&h);
    gyre_buf_dispose(&body);
    gyre_buf_dispose(&answer);
    return rc;
}

static const gyre_train_service_t together_service = {"/fine-tunes", "", "fine-tune", gyre_train_together_parse_job,
                                                      gyre_train_together_parse_events};

static int together_poll(const gyre_train_env_t *env, gyre_train_job_t *job, gyre_train_event_cb cb, void *ctx, char *err,
                       size_t errlen)
{
    return gyre_train_service_poll(&together_service, env, job, cb, ctx, err, errlen);
}

static int together_cancel(const gyre_train_env_t *env, gyre_train_job_t *job, char *err, size_t errlen)
{
    return gyre_train_service_cancel(&together_service, env, job, err, errlen);
}

const gyre_train_backend_t gyre_train_together = {"together", together_start, together_poll, together_cancel};
