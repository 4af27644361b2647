/* Alert events as OTLP log records (alerts_otlp.h). */
#include "control/alerts_otlp.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/log.h"
#include "otlp/httpc.h"

/* One record is at most ~3 KiB of JSON: the bound leaves room. */
#define BODY_MAX ((size_t)64 << 10)
#define RETRIES 2

struct gyre_alerts_otlp {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    gyre_alert_event_t q[GYRE_ALERTS_OTLP_QUEUE];
    size_t head, n;
    int stop;
    uint64_t stop_by_ms; /* when stopping: the grace's end */
    uint64_t exported, dropped;
    gyre_httpc_url_t url;
    SSL_CTX *ssl;
    gyre_httpc_header_t *headers;
    size_t nheaders;
    unsigned timeout_ms;
    char *service;
    pthread_t thread;
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void gyre_alerts_otlp_logs_path(const char *traces_path, char *out, size_t size)
{
    size_t n = strlen(traces_path);
    const char *q = strchr(traces_path, '?');
    size_t plen = q != NULL ? (size_t)(q - traces_path) : n;
    if (plen >= 7 && memcmp(traces_path + plen - 7, "/traces", 7) == 0)
        snprintf(out, size, "%.*s/logs%s", (int)(plen - 7), traces_path, q != NULL ? q : "");
    else
        snprintf(out, size, "%.*s%sv1/logs%s", (int)plen, traces_path,
                 plen > 0 && traces_path[plen - 1] == '/' ? "" : "/", q != NULL ? q : "");
}

static void attr_str(cJSON *attrs, const char *key, const char *value)
{
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "key", key);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(a, "value"), "stringValue", value);
    cJSON_AddItemToArray(attrs, a);
}

/* OpenTelemetry's severity numbers: INFO 9, WARN 13, ERROR 17. */
static int severity_number(const char *s)
{
    if (strcmp(s, "critical") == 0 || strcmp(s, "error") == 0 || strcmp(s, "page") == 0)
        return 17;
    if (strcmp(s, "info") == 0)
        return 9;
    return 13;
}

int gyre_alerts_otlp_body(const gyre_alert_event_t *e, const char *service_name, gyre_buf_t *out)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *rl = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "resourceLogs"), rl);
    attr_str(cJSON_AddArrayToObject(cJSON_AddObjectToObject(rl, "resource"), "attributes"), "service.name",
             service_name);
    cJSON *sl = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(rl, "scopeLogs"), sl);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(sl, "scope"), "name", "gyre.alerts");
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(sl, "logRecords"), rec);
    char nanos[32];
    snprintf(nanos, sizeof(nanos), "%lld000", (long long)e->at_us);
    cJSON_AddStringToObject(rec, "timeUnixNano", nanos);
    cJSON_AddNumberToObject(rec, "severityNumber", severity_number(e->severity));
    cJSON_AddStringToObject(rec, "severityText", e->severity);
    char body[2048];
    snprintf(body, sizeof(body), "alert %s %s: %s %s%s%s", e->rule, e->state, e->condition, e->labels,
             e->actions[0] ? "; " : "", e->actions);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(rec, "body"), "stringValue", body);
    cJSON *attrs = cJSON_AddArrayToObject(rec, "attributes");
    attr_str(attrs, "gyre.alert.rule", e->rule);
    attr_str(attrs, "gyre.alert.state", e->state);
    attr_str(attrs, "gyre.alert.fingerprint", e->fingerprint);
    attr_str(attrs, "gyre.alert.condition", e->condition);
    attr_str(attrs, "gyre.alert.actions", e->actions);
    /* The labels, one attribute each (the engine wrote them as a flat JSON object of strings). */
    cJSON *labels = cJSON_Parse(e->labels);
    const cJSON *l;
    cJSON_ArrayForEach(l, labels)
    {
        if (cJSON_IsString(l)) {
            char key[64];
            snprintf(key, sizeof(key), "gyre.alert.label.%s", l->string);
            attr_str(attrs, key, l->valuestring);
        }
    }
    cJSON_Delete(labels);
    if (!isnan(e->value)) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "key", "gyre.alert.value");
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(a, "value"), "doubleValue", e->value);
        cJSON_AddItemToArray(attrs, a);
    }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    int rc = s != NULL ? gyre_buf_appends(out, s) : -ENOMEM;
    free(s);
    return rc != 0 || gyre_buf_failed(out) ? -E2BIG : 0;
}

static int post(gyre_alerts_otlp_t *x, const gyre_alert_event_t *e)
{
    gyre_buf_t b;
    gyre_buf_init(&b, BODY_MAX);
    int ok = 0;
    if (gyre_alerts_otlp_body(e, x->service, &b) == 0) {
        for (int attempt = 0; attempt <= RETRIES && !ok; attempt++) {
            if (attempt > 0) {
                /* 1 s, then 2 s; a stop cuts the wait short (and the grace bounds the rest). */
                pthread_mutex_lock(&x->mu);
                struct timespec until;
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_sec += attempt;
                while (!x->stop && pthread_cond_timedwait(&x->cv, &x->mu, &until) != ETIMEDOUT)
                    ;
                int late = x->stop && mono_ms() >= x->stop_by_ms;
                pthread_mutex_unlock(&x->mu);
                if (late)
                    break;
            }
            int status = 0;
            char err[256];
            int rc = gyre_httpc_post(&x->url, x->ssl, x->headers, x->nheaders, "application/json", b.base, b.len,
                                     x->timeout_ms, &status, err, sizeof(err));
            ok = rc == 0 && status >= 200 && status < 300;
            if (rc == 0 && status >= 400 && status < 500 && status != 429)
                break; /* refused: the same body would be refused again */
        }
    }
    gyre_buf_dispose(&b);
    return ok;
}

static void *sender_main(void *arg)
{
    gyre_alerts_otlp_t *x = arg;
    gyre_alert_event_t e;
    pthread_mutex_lock(&x->mu);
    for (;;) {
        while (x->n == 0 && !x->stop)
            pthread_cond_wait(&x->cv, &x->mu);
        if (x->n == 0 || (x->stop && mono_ms() >= x->stop_by_ms))
            break;
        e = x->q[x->head];
        x->head = (x->head + 1) % GYRE_ALERTS_OTLP_QUEUE;
        x->n--;
        pthread_mutex_unlock(&x->mu);
        int ok = post(x, &e);
        pthread_mutex_lock(&x->mu);
        if (ok)
            x->exported++;
        else
            x->dropped++;
    }
    x->dropped += x->n; /* cut at shutdown */
    x->n = 0;
    pthread_mutex_unlock(&x->mu);
    return NULL;
}

int gyre_alerts_otlp_create(const gyre_config_t *c, gyre_alerts_otlp_t **out, char *err, size_t errlen)
{
    gyre_alerts_otlp_t *x = gyre_calloc(1, sizeof(*x));
    if (gyre_httpc_parse_url(c->otlp.endpoint, &x->url) != 0) {
        snprintf(err, errlen, "otlp.endpoint: not a URL for alert logs");
        free(x);
        return -EINVAL;
    }
    char path[sizeof(x->url.path)];
    gyre_alerts_otlp_logs_path(x->url.path, path, sizeof(path));
    memcpy(x->url.path, path, sizeof(path));
    if (x->url.https && (x->ssl = gyre_httpc_ssl_create(x->url.host, c->otlp.ca_file, err, errlen)) == NULL) {
        free(x);
        return -EINVAL;
    }
    x->nheaders = c->otlp.nheaders;
    x->headers = gyre_calloc(x->nheaders + 1, sizeof(*x->headers));
    for (size_t i = 0; i < x->nheaders; i++)
        x->headers[i] = (gyre_httpc_header_t){c->otlp.header_names[i], c->otlp.header_values[i]};
    x->timeout_ms = c->otlp.timeout_ms ? (unsigned)c->otlp.timeout_ms : 10000;
    x->service = gyre_strdup(c->otlp.service_name ? c->otlp.service_name : "gyre");
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->cv, NULL);
    int rc = pthread_create(&x->thread, NULL, sender_main, x);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the alert log sender: %s", strerror(rc));
        if (x->ssl != NULL)
            SSL_CTX_free(x->ssl);
        free(x->headers);
        free(x->service);
        free(x);
        return -rc;
    }
    *out = x;
    return 0;
}

void gyre_alerts_otlp_submit(gyre_alerts_otlp_t *x, const gyre_alert_event_t *e)
{
    pthread_mutex_lock(&x->mu);
    if (x->n == GYRE_ALERTS_OTLP_QUEUE || x->stop) {
        x->dropped++;
    } else {
        x->q[(x->head + x->n) % GYRE_ALERTS_OTLP_QUEUE] = *e;
        x->n++;
        pthread_cond_signal(&x->cv);
    }
    pthread_mutex_unlock(&x->mu);
}

void gyre_alerts_otlp_stats(gyre_alerts_otlp_t *x, uint64_t *exported, uint64_t *dropped)
{
    pthread_mutex_lock(&x->mu);
    *exported = x->exported;
    *dropped = x->dropped;
    pthread_mutex_unlock(&x->mu);
}

void gyre_alerts_otlp_destroy(gyre_alerts_otlp_t *x, uint64_t grace_ms)
{
    if (x == NULL)
        return;
    pthread_mutex_lock(&x->mu);
    x->stop = 1;
    x->stop_by_ms = mono_ms() + grace_ms;
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
    pthread_join(x->thread, NULL);
    if (x->ssl != NULL)
        SSL_CTX_free(x->ssl);
    pthread_mutex_destroy(&x->mu);
    pthread_cond_destroy(&x->cv);
    free(x->headers);
    free(x->service);
    free(x);
}
