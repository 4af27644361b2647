/*
 * Feedback (feedback.h): the body's checks against the declared metrics,
 * the store write, and the answer.
 */
#include "loop/feedback.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"

static int refuse(const char **param, const char *which, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int refuse(const char **param, const char *which, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    *param = which;
    return -EINVAL;
}

static int is_trace_id(const char *s)
{
    size_t n = strlen(s);
    if (n != 32)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* An optional string member: 0 (absent or null), 1 (a string of at most max bytes), or -1 (refused). */
static int opt_string(const cJSON *o, const char *key, size_t max, char **out, const char **param, char *err,
                      size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v)) {
        refuse(param, key, err, errlen, "'%s' must be a string", key);
        return -1;
    }
    if (strlen(v->valuestring) > max) {
        refuse(param, key, err, errlen, "'%s' is longer than %zu bytes", key, max);
        return -1;
    }
    *out = gyre_strdup(v->valuestring);
    return 1;
}

static void metric_list(const gyre_config_t *c, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < c->nfeedback_metrics && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", c->feedback_metrics[i].name);
}

/* The value, checked against its metric. */
static int read_value(const gyre_feedback_metric_conf_t *m, const cJSON *v, gyre_feedback_t *f, const char **param,
                      char *err, size_t errlen)
{
    if (v == NULL)
        return refuse(param, "value", err, errlen, "'value' is required");
    switch (m->kind) {
    case GYRE_METRIC_BOOLEAN:
        if (!cJSON_IsBool(v))
            return refuse(param, "value", err, errlen, "'value' must be true or false for the boolean metric '%s'",
                          m->name);
        f->value = cJSON_IsTrue(v) ? 1 : 0;
        return 0;
    case GYRE_METRIC_NUMBER:
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
            return refuse(param, "value", err, errlen, "'value' must be a number for the number metric '%s'",
                          m->name);
        if ((m->min != 0 || m->max != 0) && (v->valuedouble < m->min || v->valuedouble > m->max))
            return refuse(param, "value", err, errlen, "'value' %g is outside the range of '%s' (%g to %g)",
                          v->valuedouble, m->name, m->min, m->max);
        f->value = v->valuedouble;
        return 0;
    case GYRE_METRIC_CATEGORY:
        if (cJSON_IsString(v)) {
            for (size_t i = 0; i < m->ncategories; i++) {
                if (strcmp(m->categories[i], v->valuestring) == 0) {
                    f->value = NAN;
                    f->label = gyre_strdup(v->valuestring);
                    return 0;
                }
            }
        }
        {
            char list[1024];
            size_t used = 0;
            list[0] = '\0';
            for (size_t i = 0; i < m->ncategories && used < sizeof(list); i++)
                used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", m->categories[i]);
            return refuse(param, "value", err, errlen, "'value' must be one of the categories of '%s': %s", m->name,
                          list);
        }
    }
    return refuse(param, "value", err, errlen, "'value': the metric '%s' has no type", m->name);
}

int gyre_feedback_parse(const gyre_config_t *c, const char *body, size_t len, gyre_feedback_t *f, const char **param,
                        char *err, size_t errlen)
{
    memset(f, 0, sizeof(*f));
    f->value = NAN;
    *param = NULL;
    if (len > GYRE_FEEDBACK_BODY_MAX)
        return refuse(param, NULL, err, errlen, "the body is larger than %zu bytes", GYRE_FEEDBACK_BODY_MAX);
    cJSON *o = cJSON_ParseWithLength(body != NULL ? body : "", len);
    int r = 0;
    if (o == NULL || !cJSON_IsObject(o)) {
        r = refuse(param, NULL, err, errlen, "the body must be a JSON object");
        goto out;
    }
    const cJSON *tid = cJSON_GetObjectItemCaseSensitive(o, "trace_id");
    const cJSON *sid = cJSON_GetObjectItemCaseSensitive(o, "session_id");
    int has_t = tid != NULL && !cJSON_IsNull(tid), has_s = sid != NULL && !cJSON_IsNull(sid);
    if (has_t && has_s) {
        r = refuse(param, "trace_id", err, errlen, "pass 'trace_id' or 'session_id', not both");
        goto out;
    }
    if (!has_t && !has_s) {
        r = refuse(param, "trace_id", err, errlen, "'trace_id' or 'session_id' is required");
        goto out;
    }
    if (has_t) {
        if (!cJSON_IsString(tid) || !is_trace_id(tid->valuestring)) {
            r = refuse(param, "trace_id", err, errlen,
                       "'trace_id' must be 32 lowercase hex digits (the x-gyre-trace-id of the call)");
            goto out;
        }
        memcpy(f->trace_id, tid->valuestring, 33);
    } else {
        if (!cJSON_IsString(sid) || sid->valuestring[0] == '\0' ||
            strlen(sid->valuestring) > GYRE_FEEDBACK_SESSION_MAX) {
            r = refuse(param, "session_id", err, errlen, "'session_id' must be a string of 1 to %d bytes",
                       GYRE_FEEDBACK_SESSION_MAX);
            goto out;
        }
        f->session = gyre_strdup(sid->valuestring);
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
    if (!cJSON_IsString(name)) {
        r = refuse(param, "name", err, errlen, "'name' (the metric's) is required, a string");
        goto out;
    }
    const gyre_feedback_metric_conf_t *m = NULL;
    for (size_t i = 0; i < c->nfeedback_metrics; i++)
        if (c->feedback_metrics[i].name != NULL && strcmp(c->feedback_metrics[i].name, name->valuestring) == 0)
            m = &c->feedback_metrics[i];
    if (m == NULL) {
        char list[1024];
        metric_list(c, list, sizeof(list));
        r = c->nfeedback_metrics == 0
                ? refuse(param, "name", err, errlen,
                         "unknown metric '%.64s': this gateway declares none (feedback: metrics: in the config)",
                         name->valuestring)
                : refuse(param, "name", err, errlen, "unknown metric '%.64s' (this gateway's metrics: %s)",
                         name->valuestring, list);
        goto out;
    }
    f->name = gyre_strdup(m->name);
    if ((r = read_value(m, cJSON_GetObjectItemCaseSensitive(o, "value"), f, param, err, errlen)) != 0)
        goto out;
    if (opt_string(o, "comment", GYRE_FEEDBACK_COMMENT_MAX, &f->comment, param, err, errlen) < 0 ||
        opt_string(o, "correction", GYRE_FEEDBACK_CORRECTION_MAX, &f->correction, param, err, errlen) < 0) {
        r = -EINVAL;
        goto out;
    }
out:
    cJSON_Delete(o);
    if (r != 0)
        gyre_feedback_dispose(f);
    return r;
}

void gyre_feedback_dispose(gyre_feedback_t *f)
{
    free(f->session);
    free(f->name);
    free(f->label);
    free(f->comment);
    free(f->correction);
    f->session = f->name = f->label = f->comment = f->correction = NULL;
}

/* ---- The store. ---- */

typedef struct found {
    int n;
    int64_t started_us;
    char *session;
} found_t;

static int trace_found_cb(void *ctx, const gyre_store_row_t *row)
{
    found_t *f = ctx;
    f->n++;
    f->started_us = row->started_us;
    free(f->session);
    f->session = gyre_strndup(row->session.p != NULL ? row->session.p : "", row->session.len);
    return 0;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int lookup(gyre_store_t *s, gyre_feedback_t *f, found_t *fd, char *err, size_t errlen)
{
    fd->n = 0;
    if (f->trace_id[0] != '\0')
        return gyre_store_ops(s)->find_trace(s, f->trace_id, trace_found_cb, fd, err, errlen);
    return gyre_store_ops(s)->scan_session(s, f->session, 1, trace_found_cb, fd, err, errlen);
}

int gyre_feedback_record(gyre_store_t *s, gyre_feedback_t *f, int64_t wait_ms, char *err, size_t errlen)
{
    found_t fd = {0, 0, NULL};
    int64_t waited = 0, step = 20;
    int r;
    for (;;) {
        if ((r = lookup(s, f, &fd, err, errlen)) != 0)
            goto out;
        if (fd.n > 0 || waited >= wait_ms)
            break;
        int64_t d = step < wait_ms - waited ? step : wait_ms - waited;
        struct timespec ts = {d / 1000, (long)(d % 1000) * 1000000};
        nanosleep(&ts, NULL);
        waited += d;
        step *= 2;
    }
    if (fd.n == 0) {
        if (f->trace_id[0] != '\0')
            snprintf(err, errlen, "no trace '%s'", f->trace_id);
        else
            snprintf(err, errlen, "no session '%.200s'", f->session);
        r = -ENOENT;
        goto out;
    }
    f->created_us = now_us();
    if (f->trace_id[0] != '\0') {
        free(f->session);
        f->session = fd.session;
        fd.session = NULL;
        f->trace_started_us = fd.started_us;
    }
    gyre_score_t sc = {f->trace_id, f->session, f->name, GYRE_SCORE_HUMAN, "", f->value, f->label, f->comment,
                       f->correction, f->created_us, f->trace_id[0] != '\0' ? f->trace_started_us : 0};
    r = gyre_store_write_scores(s, &sc, 1, err, errlen);
out:
    free(fd.session);
    return r;
}

/* ---- The answer. ---- */

static int str_or_null(gyre_buf_t *out, const char *s)
{
    return s != NULL ? gyre_buf_append_json_string(out, s, strlen(s)) : gyre_buf_appends(out, "null");
}

int gyre_feedback_render(const gyre_feedback_t *f, gyre_buf_t *out)
{
    int r = gyre_buf_appends(out, "{\"trace_id\":");
    if (r == 0)
        r = f->trace_id[0] != '\0' ? gyre_buf_append_json_string(out, f->trace_id, strlen(f->trace_id))
                                   : gyre_buf_appends(out, "null");
    if (r == 0)
        r = gyre_buf_appends(out, ",\"session_id\":");
    if (r == 0)
        r = str_or_null(out, f->session != NULL && f->session[0] != '\0' ? f->session : NULL);
    if (r == 0)
        r = gyre_buf_appends(out, ",\"name\":");
    if (r == 0)
        r = str_or_null(out, f->name);
    if (r == 0) {
        if (isnan(f->value)) {
            r = gyre_buf_appends(out, ",\"value\":null");
        } else {
            char tmp[40];
            for (int prec = 15; prec <= 17; prec++) {
                snprintf(tmp, sizeof(tmp), "%.*g", prec, f->value);
                if (strtod(tmp, NULL) == f->value)
                    break;
            }
            r = gyre_buf_appendf(out, ",\"value\":%s", tmp);
        }
    }
    if (r == 0)
        r = gyre_buf_appends(out, ",\"label\":");
    if (r == 0)
        r = str_or_null(out, f->label);
    if (r == 0)
        r = gyre_buf_appends(out, ",\"comment\":");
    if (r == 0)
        r = str_or_null(out, f->comment);
    if (r == 0)
        r = gyre_buf_appends(out, ",\"correction\":");
    if (r == 0)
        r = str_or_null(out, f->correction);
    if (r == 0)
        r = gyre_buf_appendf(out, ",\"created_us\":%lld}", (long long)f->created_us);
    return r;
}
