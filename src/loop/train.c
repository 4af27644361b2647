/* The training backends' table, the job's JSON, and what the hosted backends share (see train.h, train_int.h). */
#include "loop/train.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/utf8.h"
#include "loop/train_int.h"

static const gyre_train_backend_t *const backends[] = {&gyre_train_openai, &gyre_train_together, &gyre_train_command};

const gyre_train_backend_t *gyre_train_backend_find(const char *name)
{
    for (size_t i = 0; name != NULL && i < sizeof(backends) / sizeof(backends[0]); i++)
        if (strcmp(backends[i]->name, name) == 0)
            return backends[i];
    return NULL;
}

static const char *const statuses[] = {"queued", "running", "succeeded", "failed", "cancelled"};

int gyre_train_job_done(const gyre_train_job_t *job)
{
    return strcmp(job->status, "succeeded") == 0 || strcmp(job->status, "failed") == 0 ||
           strcmp(job->status, "cancelled") == 0;
}

void gyre_train_set_status(gyre_train_job_t *job, const char *status)
{
    snprintf(job->status, sizeof(job->status), "%s", status);
    if (gyre_train_job_done(job) && job->finished_us == 0)
        job->finished_us = gyre_train_now_us();
}

int64_t gyre_train_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void gyre_train_copy_text(char *dst, size_t size, const char *s)
{
    if (size == 0)
        return;
    size_t n = 0, at = 0, len = s != NULL ? strlen(s) : 0;
    /* Whole sequences only, so that a cut never leaves half of one: the job's JSON must read back as it was. */
    while (at < len) {
        size_t bad = 0, k = gyre_utf8_next(s + at, len - at, &bad);
        size_t adv = k != 0 ? k : bad;
        if (k == 0 ? n + 2 > size : n + k + 1 > size)
            break;
        if (k == 0)
            dst[n++] = '?';
        else if (k == 1)
            dst[n++] = (unsigned char)s[at] < 0x20 || s[at] == 0x7f ? ' ' : s[at];
        else {
            memcpy(dst + n, s + at, k);
            n += k;
        }
        at += adv;
    }
    dst[n] = '\0';
}

int gyre_train_copy_id(char *dst, size_t size, const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n >= size)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || strchr("/?#%\\\"", s[i]) != NULL)
            return -EINVAL;
    memcpy(dst, s, n + 1);
    return 0;
}

void gyre_train_job_json(const gyre_train_job_t *job, gyre_buf_t *out)
{
    gyre_buf_appends(out, "{\"backend\":");
    gyre_buf_append_json_string(out, job->backend, strlen(job->backend));
    gyre_buf_appends(out, ",\"id\":");
    gyre_buf_append_json_string(out, job->id, strlen(job->id));
    gyre_buf_appends(out, ",\"file_id\":");
    gyre_buf_append_json_string(out, job->file_id, strlen(job->file_id));
    gyre_buf_appends(out, ",\"status\":");
    gyre_buf_append_json_string(out, job->status, strlen(job->status));
    gyre_buf_appends(out, ",\"model\":");
    gyre_buf_append_json_string(out, job->model, strlen(job->model));
    gyre_buf_appends(out, ",\"error\":");
    gyre_buf_append_json_string(out, job->error, strlen(job->error));
    /* %.17g gives back the same double when read. */
    gyre_buf_appendf(out, ",\"progress\":%.17g,\"cursor\":", job->progress);
    gyre_buf_append_json_string(out, job->cursor, strlen(job->cursor));
    gyre_buf_appendf(out, ",\"started_us\":%" PRId64 ",\"finished_us\":%" PRId64 ",\"pid\":%ld}", job->started_us,
                     job->finished_us, job->pid);
}

/* A string member into a fixed field: 0, or -EINVAL when it is missing, not a string, or does not fit. */
static int take_string(const cJSON *o, const char *name, char *dst, size_t size)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    /* Only what gyre_train_job_json writes: well-formed UTF-8 that fits, so the job reads back byte for byte. */
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= size ||
        !gyre_utf8_valid(v->valuestring, strlen(v->valuestring)))
        return -EINVAL;
    memcpy(dst, v->valuestring, strlen(v->valuestring) + 1);
    return 0;
}

static int take_int(const cJSON *o, const char *name, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    /* Integers up to 2^53 are exact in a double; times in microseconds and process ids are far below it.  The
     * range is checked before the cast, which is undefined outside it. */
    if (!cJSON_IsNumber(v) || !(v->valuedouble <= 9007199254740992.0 && v->valuedouble >= -9007199254740992.0) ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return -EINVAL;
    *out = (int64_t)v->valuedouble;
    return 0;
}

int gyre_train_job_from_json(const char *json, size_t len, gyre_train_job_t *job)
{
    gyre_train_job_t j;
    memset(&j, 0, sizeof(j));
    cJSON *o = cJSON_ParseWithLength(json, len);
    int rc = -EINVAL;
    int64_t pid = 0;
    if (!cJSON_IsObject(o))
        goto out;
    if (take_string(o, "backend", j.backend, sizeof(j.backend)) != 0 || take_string(o, "id", j.id, sizeof(j.id)) != 0 ||
        take_string(o, "file_id", j.file_id, sizeof(j.file_id)) != 0 ||
        take_string(o, "status", j.status, sizeof(j.status)) != 0 ||
        take_string(o, "model", j.model, sizeof(j.model)) != 0 ||
        take_string(o, "error", j.error, sizeof(j.error)) != 0 ||
        take_string(o, "cursor", j.cursor, sizeof(j.cursor)) != 0 || take_int(o, "started_us", &j.started_us) != 0 ||
        take_int(o, "finished_us", &j.finished_us) != 0 || take_int(o, "pid", &pid) != 0)
        goto out;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "progress");
    if (!cJSON_IsNumber(p) || !(p->valuedouble == -1 || (p->valuedouble >= 0 && p->valuedouble <= 1)))
        goto out;
    j.progress = p->valuedouble;
    if (pid < 0 || pid > 0x7fffffff)
        goto out;
    j.pid = (long)pid;
    int known = 0;
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        known |= strcmp(j.status, statuses[i]) == 0;
    if (!known)
        goto out;
    *job = j;
    rc = 0;
out:
    cJSON_Delete(o);
    return rc;
}

int gyre_train_timeout(const gyre_train_backend_t *b, const gyre_train_env_t *env, gyre_train_job_t *job, char *err,
                       size_t errlen)
{
    int rc = b->cancel(env, job, err, errlen);
    double s = env->conf != NULL ? (double)env->conf->timeout_ms / 1000.0 : 0;
    snprintf(job->error, sizeof(job->error), "the job ran past train.timeout (%gs) and was cancelled", s);
    snprintf(job->status, sizeof(job->status), "failed");
    if (job->finished_us == 0)
        job->finished_us = gyre_train_now_us();
    return rc;
}

int gyre_train_http_open(const gyre_train_env_t *env, gyre_train_http_t *h, char *err, size_t errlen)
{
    memset(h, 0, sizeof(*h));
    const char *name = env->conf->provider;
    const gyre_provider_conf_t *p =
        name != NULL && env->config != NULL ? gyre_config_find_provider(env->config, name, strlen(name)) : NULL;
    if (p == NULL) {
        snprintf(err, errlen, "train.provider: %s%s%s", name != NULL ? "no provider named " : "missing",
                 name != NULL ? name : "", name != NULL ? " in the configuration" : "");
        return -EINVAL;
    }
    if (p->kind != GYRE_PROVIDER_OPENAI) {
        snprintf(err, errlen, "train.provider: provider %s is not OpenAI-compatible (type openai)", p->name);
        return -EINVAL;
    }
    snprintf(h->provider, sizeof(h->provider), "%s", p->name);
    if (gyre_httpc_parse_url(p->base_url, &h->url) != 0 || strlen(h->url.path) >= sizeof(h->base_path)) {
        snprintf(err, errlen, "train.provider: provider %s: its base_url cannot be used", p->name);
        return -EINVAL;
    }
    /* The base path is the prefix of every request; a trailing slash would double. */
    snprintf(h->base_path, sizeof(h->base_path), "%s", h->url.path);
    size_t bl = strlen(h->base_path);
    while (bl > 0 && h->base_path[bl - 1] == '/')
        h->base_path[--bl] = '\0';
    if (h->url.https) {
        h->ssl = gyre_httpc_ssl_create(h->url.host, p->ca_file, err, errlen);
        if (h->ssl == NULL)
            return -EINVAL;
        if (!p->tls_verify)
            SSL_CTX_set_verify(h->ssl, SSL_VERIFY_NONE, NULL);
    }
    if (p->nkeys > 0 && p->keys[0] != NULL && p->keys[0][0] != '\0') {
        size_t n = strlen(p->keys[0]) + 8;
        h->authz = gyre_malloc(n);
        snprintf(h->authz, n, "Bearer %s", p->keys[0]);
    }
    return 0;
}

void gyre_train_http_close(gyre_train_http_t *h)
{
    if (h->authz != NULL) {
        explicit_bzero(h->authz, strlen(h->authz));
        free(h->authz);
        h->authz = NULL;
    }
    if (h->ssl != NULL)
        SSL_CTX_free(h->ssl);
    h->ssl = NULL;
}

/* The service's own words for a failed call: error.message (OpenAI), message or error (Together), cut. */
static void service_message(const char *body, size_t len, char *out, size_t size)
{
    out[0] = '\0';
    cJSON *o = cJSON_ParseWithLength(body, len);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    const cJSON *m = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "message") : NULL;
    if (!cJSON_IsString(m))
        m = cJSON_IsString(e) ? e : cJSON_GetObjectItemCaseSensitive(o, "message");
    if (cJSON_IsString(m))
        gyre_train_copy_text(out, size, m->valuestring);
    cJSON_Delete(o);
}

static int exchange(gyre_train_http_t *h, const char *method, const char *path, const char *ctype, const char *body,
                    size_t len, unsigned timeout_ms, gyre_buf_t *answer, char *err, size_t errlen)
{
    gyre_httpc_url_t u = h->url;
    if ((size_t)snprintf(u.path, sizeof(u.path), "%s%s", h->base_path, path) >= sizeof(u.path)) {
        snprintf(err, errlen, "provider %s: the request path is too long", h->provider);
        return -ENAMETOOLONG;
    }
    gyre_httpc_header_t hd[2];
    size_t nh = 0;
    hd[nh++] = (gyre_httpc_header_t){"Accept", "application/json"};
    if (h->authz != NULL)
        hd[nh++] = (gyre_httpc_header_t){"Authorization", h->authz};
    int status = 0;
    char why[256] = "";
    gyre_buf_reset(answer);
    int rc =
        gyre_httpc_request(&u, h->ssl, method, hd, nh, ctype, body, len, timeout_ms, &status, answer, why, sizeof(why));
    if (rc != 0) {
        snprintf(err, errlen, "provider %s: %s %s%s: %s", h->provider, method, h->base_path, path, why);
        return rc;
    }
    if (status < 200 || status > 299) {
        char msg[256];
        service_message(answer->base != NULL ? answer->base : "", answer->len, msg, sizeof(msg));
        snprintf(err, errlen, "provider %s: %s %s%s answered %d%s%s", h->provider, method, h->base_path, path, status,
                 msg[0] != '\0' ? ": " : "", msg);
        return -EREMOTEIO;
    }
    return 0;
}

int gyre_train_http_json(gyre_train_http_t *h, const char *method, const char *path, const char *body, size_t len,
                         gyre_buf_t *answer, char *err, size_t errlen)
{
    return exchange(h, method, path, body != NULL ? "application/json" : NULL, body, len, GYRE_TRAIN_HTTP_TIMEOUT_MS,
                    answer, err, errlen);
}

int gyre_train_upload(gyre_train_http_t *h, const char *path, const char *file, const gyre_httpc_part_t *fields,
                      size_t nfields, char *file_id, size_t idlen, char *err, size_t errlen)
{
    gyre_buf_t data, form, answer;
    gyre_buf_init(&data, GYRE_TRAIN_UPLOAD_MAX);
    gyre_buf_init(&form, GYRE_TRAIN_UPLOAD_MAX + 64 * 1024);
    gyre_buf_init(&answer, GYRE_TRAIN_ANSWER_MAX);
    gyre_httpc_part_t parts[8];
    char ctype[128];
    int rc = gyre_buf_append_file(&data, file);
    if (rc != 0) {
        if (rc == -E2BIG)
            snprintf(err, errlen, "%s is larger than %zu MiB, the bound on an upload", file,
                     GYRE_TRAIN_UPLOAD_MAX >> 20);
        else
            snprintf(err, errlen, "cannot read %s: %s", file, strerror(-rc));
        goto out;
    }
    if (nfields > 7) {
        rc = -EINVAL;
        snprintf(err, errlen, "too many form fields");
        goto out;
    }
    memcpy(parts, fields, nfields * sizeof(*fields));
    const char *base = strrchr(file, '/') != NULL ? strrchr(file, '/') + 1 : file;
    parts[nfields] =
        (gyre_httpc_part_t){"file", base, "application/jsonl", data.base != NULL ? data.base : "", data.len};
    if ((rc = gyre_httpc_multipart(parts, nfields + 1, &form, ctype, sizeof(ctype), err, errlen)) != 0)
        goto out;
    if ((rc = exchange(h, "POST", path, ctype, form.base, form.len, GYRE_TRAIN_UPLOAD_TIMEOUT_MS, &answer, err,
                       errlen)) != 0)
        goto out;
    cJSON *o = cJSON_ParseWithLength(answer.base != NULL ? answer.base : "", answer.len);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    rc = cJSON_IsString(id) ? gyre_train_copy_id(file_id, idlen, id->valuestring) : -EINVAL;
    if (rc != 0)
        snprintf(err, errlen, "provider %s: the upload of %s answered no usable file id", h->provider, base);
    cJSON_Delete(o);
out:
    gyre_buf_dispose(&data);
    gyre_buf_dispose(&form);
    gyre_buf_dispose(&answer);
    return rc;
}

int gyre_train_service_poll(const gyre_train_service_t *sv, const gyre_train_env_t *env, gyre_train_job_t *job,
                            gyre_train_event_cb cb, void *ctx, char *err, size_t errlen)
{
    gyre_train_http_t h;
    memset(&h, 0, sizeof(h));
    gyre_buf_t answer;
    gyre_buf_init(&answer, GYRE_TRAIN_ANSWER_MAX);
    char path[512], idcheck[sizeof(job->id)];
    gyre_train_job_t next = *job;
    int rc = gyre_train_copy_id(idcheck, sizeof(idcheck), job->id);
    if (rc != 0) {
        snprintf(err, errlen, "the job's id cannot be put into a URL");
        goto out;
    }
    if ((rc = gyre_train_http_open(env, &h, err, errlen)) != 0)
        goto out;
    snprintf(path, sizeof(path), "%s/%s/events%s", sv->jobs, job->id, sv->events_query);
    if ((rc = gyre_train_http_json(&h, "GET", path, NULL, 0, &answer, err, errlen)) != 0)
        goto out;
    if (sv->parse_events(answer.base, answer.len, &next, cb, ctx) != 0) {
        snprintf(err, errlen, "provider %s: the %s's events are not a list", h.provider, sv->noun);
        rc = -EBADMSG;
        goto out;
    }
    snprintf(path, sizeof(path), "%s/%s", sv->jobs, job->id);
    if ((rc = gyre_train_http_json(&h, "GET", path, NULL, 0, &answer, err, errlen)) != 0)
        goto out;
    if ((rc = sv->parse_job(answer.base, answer.len, &next, err, errlen)) != 0)
        goto out;
    *job = next;
out:
    gyre_train_http_close(&h);
    gyre_buf_dispose(&answer);
    return rc;
}

int gyre_train_service_cancel(const gyre_train_service_t *sv, const gyre_train_env_t *env, gyre_train_job_t *job,
                              char *err, size_t errlen)
{
    gyre_train_http_t h;
    memset(&h, 0, sizeof(h));
    gyre_buf_t answer;
    gyre_buf_init(&answer, GYRE_TRAIN_ANSWER_MAX);
    char path[512], idcheck[sizeof(job->id)];
    int rc = gyre_train_copy_id(idcheck, sizeof(idcheck), job->id);
    if (rc != 0)
        snprintf(err, errlen, "the job's id cannot be put into a URL");
    else
        rc = gyre_train_http_open(env, &h, err, errlen);
    if (rc == 0) {
        snprintf(path, sizeof(path), "%s/%s/cancel", sv->jobs, job->id);
        rc = gyre_train_http_json(&h, "POST", path, NULL, 0, &answer, err, errlen);
    }
    if (rc == 0)
        gyre_train_set_status(job, "cancelled");
    gyre_train_http_close(&h);
    gyre_buf_dispose(&answer);
    return rc;
}

void gyre_train_job_apply(gyre_train_job_t *job, const char *id, const char *model, const char *status)
{
    snprintf(job->id, sizeof(job->id), "%s", id);
    if (model[0] != '\0') {
        snprintf(job->model, sizeof(job->model), "%s", model);
        job->progress = 1;
    }
    gyre_train_set_status(job, status);
}
