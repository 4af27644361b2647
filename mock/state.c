/*
 * gyre-mock's shared state: the options each request reads when it starts
 * (set on the command line, changed by POST /_mock/config), the statistics
 * GET /_mock/stats reports, and the counter that spreads faults over
 * requests.  One mutex guards all of it: the mock is a test peer, and the
 * lock is held for microseconds.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "mock.h"

/* Bounds on the options, so that a typo cannot park a test for hours. */
#define MAX_LATENCY_MS 600000L
#define MAX_TOKENS_PER_SEC 1e6
#define FAULT_KINDS                                                                                                    \
    "429, 500, 503, 529, reset, hang, truncate, slow-first-byte, echo_headers, endless-error, endless-line, "          \
    "endless-head"

const char *const mock_fault_kinds[] = {
    "429",          "500",           "503",          "529",          "reset", "hang", "truncate", "slow-first-byte",
    "echo_headers", "endless-error", "endless-line", "endless-head", NULL};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static mock_options_t options;
static unsigned long long fault_counter; /* provider requests that met a fault setting since the last reset */
static cJSON *stats;                     /* {"requests":N,"paths":{},"models":{},"keys":{},"last_request":null|{}} */
/* Outside the lock: an endless answer counts every write, and a test polls them while they grow. */
static _Atomic unsigned long long bytes_sent; /* written in answers to provider requests since the last reset */
static _Atomic long active;                   /* provider requests being answered now */

static int is_fault_kind(const char *kind)
{
    for (const char *const *k = mock_fault_kinds; *k != NULL; k++)
        if (strcmp(kind, *k) == 0)
            return 1;
    return 0;
}

const char *mock_options_check(const mock_options_t *o, const char **param)
{
    if (o->latency_ms < 0 || o->latency_ms > MAX_LATENCY_MS) {
        *param = "latency_ms";
        return "latency_ms must be a whole number of milliseconds from 0 to 600000";
    }
    if (!(o->tokens_per_sec >= 0 && o->tokens_per_sec <= MAX_TOKENS_PER_SEC)) {
        *param = "tokens_per_sec";
        return "tokens_per_sec must be a number from 0 to 1000000";
    }
    if (!(o->fault_rate >= 0 && o->fault_rate <= 1)) {
        *param = "fault_rate";
        return "fault_rate must be a number from 0 to 1";
    }
    if (o->fault[0] != '\0' && !is_fault_kind(o->fault)) {
        *param = "fault";
        return "fault must be one of " FAULT_KINDS;
    }
    return NULL;
}

static void stats_reset(void)
{
    cJSON_Delete(stats);
    stats = cJSON_CreateObject();
    cJSON_AddNumberToObject(stats, "requests", 0);
    cJSON_AddObjectToObject(stats, "paths");
    cJSON_AddObjectToObject(stats, "models");
    cJSON_AddObjectToObject(stats, "keys");
    cJSON_AddNullToObject(stats, "last_request");
}

void mock_state_init(const mock_options_t *o)
{
    pthread_mutex_lock(&lock);
    options = *o;
    fault_counter = 0;
    stats_reset();
    pthread_mutex_unlock(&lock);
}

void mock_state_dispose(void)
{
    pthread_mutex_lock(&lock);
    cJSON_Delete(stats);
    stats = NULL;
    pthread_mutex_unlock(&lock);
}

mock_options_t mock_state_options(void)
{
    pthread_mutex_lock(&lock);
    mock_options_t o = options;
    pthread_mutex_unlock(&lock);
    return o;
}

static cJSON *options_json(const mock_options_t *o)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "latency_ms", (double)o->latency_ms);
    cJSON_AddNumberToObject(j, "tokens_per_sec", o->tokens_per_sec);
    cJSON_AddItemToObject(j, "fault", o->fault[0] ? cJSON_CreateString(o->fault) : cJSON_CreateNull());
    cJSON_AddNumberToObject(j, "fault_rate", o->fault_rate);
    cJSON_AddItemToObject(j, "fault_key", o->fault_key[0] ? cJSON_CreateString(o->fault_key) : cJSON_CreateNull());
    return j;
}

cJSON *mock_state_options_json(void)
{
    mock_options_t o = mock_state_options();
    return options_json(&o);
}

const char *mock_state_configure(const cJSON *json, const char **param)
{
    *param = NULL;
    if (!cJSON_IsObject(json))
        return "the body must be a JSON object";
    const char *err = NULL;
    int reschedule = 0;
    pthread_mutex_lock(&lock);
    mock_options_t o = options;
    const cJSON *v;
    cJSON_ArrayForEach(v, json)
    {
        *param = v->string;
        if (strcmp(v->string, "latency_ms") == 0) {
            if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > 1e9)
                err = "latency_ms must be a whole number of milliseconds from 0 to 600000";
            else
                o.latency_ms = (long)v->valuedouble;
        } else if (strcmp(v->string, "tokens_per_sec") == 0) {
            if (!cJSON_IsNumber(v))
                err = "tokens_per_sec must be a number from 0 to 1000000";
            else
                o.tokens_per_sec = v->valuedouble;
        } else if (strcmp(v->string, "fault_rate") == 0) {
            if (!cJSON_IsNumber(v))
                err = "fault_rate must be a number from 0 to 1";
            else
                o.fault_rate = v->valuedouble;
            reschedule = 1;
        } else if (strcmp(v->string, "fault") == 0) {
            if (cJSON_IsNull(v))
                o.fault[0] = '\0';
            else if (cJSON_IsString(v) && is_fault_kind(v->valuestring))
                snprintf(o.fault, sizeof(o.fault), "%s", v->valuestring);
            else
                err = "fault must be null or one of " FAULT_KINDS;
            reschedule = 1;
        } else if (strcmp(v->string, "fault_key") == 0) {
            /* Per-key faults: one key of a provider rate-limited while its others answer. */
            if (cJSON_IsNull(v))
                o.fault_key[0] = '\0';
            else if (cJSON_IsString(v) && strlen(v->valuestring) < sizeof(o.fault_key))
                snprintf(o.fault_key, sizeof(o.fault_key), "%s", v->valuestring);
            else
                err = "fault_key must be null or a key of fewer than 256 bytes";
            reschedule = 1;
        } else {
            err = "unknown option: the options are latency_ms, tokens_per_sec, fault, fault_rate and fault_key";
        }
        if (err != NULL)
            break;
    }
    if (err == NULL)
        err = mock_options_check(&o, param);
    if (err == NULL) {
        options = o;
        /* A new fault setting starts its schedule afresh, so its pattern is predictable. */
        if (reschedule)
            fault_counter = 0;
        *param = NULL;
    }
    pthread_mutex_unlock(&lock);
    return err;
}

static void count(cJSON *obj, const char *key)
{
    cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (n == NULL)
        cJSON_AddNumberToObject(obj, key, 1);
    else
        cJSON_SetNumberValue(n, n->valuedouble + 1);
}

/*
 * The key a request carried, in the first place each dialect puts it: a
 * bearer token (OpenAI, Bedrock API keys), api-key (Azure), x-api-key
 * (Anthropic), x-goog-api-key or ?key= (Gemini), or the access key id of a
 * SigV4 Authorization (Bedrock).  Written into `out`; returns 0, or -1 when
 * the request has none.
 */
static int request_key(const mock_request_t *r, char *out, size_t size)
{
    const char *auth = mock_request_header(r, "authorization"), *key = NULL;
    if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0)
        key = auth + 7;
    if (key == NULL)
        key = mock_request_header(r, "api-key");
    if (key == NULL)
        key = mock_request_header(r, "x-api-key");
    if (key == NULL)
        key = mock_request_header(r, "x-goog-api-key");
    if (key != NULL) {
        snprintf(out, size, "%s", key);
        return 0;
    }
    if (mock_request_query(r, "key", out, size) >= 0)
        return 0;
    const char *cred = auth != NULL && strncmp(auth, "AWS4-HMAC-SHA256 ", 17) == 0 ? strstr(auth, "Credential=") : NULL;
    if (cred != NULL) {
        cred += strlen("Credential=");
        snprintf(out, size, "%.*s", (int)strcspn(cred, "/, "), cred);
        return 0;
    }
    return -1;
}

void mock_state_record(const mock_request_t *r, const char *model)
{
    size_t path_len = strcspn(r->path, "?");
    char path[sizeof(r->path)], key[sizeof(r->path)];
    memcpy(path, r->path, path_len);
    path[path_len] = '\0';
    int has_key = request_key(r, key, sizeof(key)) == 0;
    /* The last request is built outside the lock: it copies the whole body. */
    cJSON *last = cJSON_CreateObject();
    cJSON_AddStringToObject(last, "method", r->method);
    cJSON_AddStringToObject(last, "path", r->path);
    cJSON_AddItemToObject(last, "headers", cJSON_Duplicate(r->headers, 1));
    cJSON_AddStringToObject(last, "body", r->body);

    pthread_mutex_lock(&lock);
    cJSON *n = cJSON_GetObjectItemCaseSensitive(stats, "requests");
    cJSON_SetNumberValue(n, n->valuedouble + 1);
    count(cJSON_GetObjectItemCaseSensitive(stats, "paths"), path);
    if (model != NULL)
        count(cJSON_GetObjectItemCaseSensitive(stats, "models"), model);
    if (has_key)
        count(cJSON_GetObjectItemCaseSensitive(stats, "keys"), key);
    cJSON_ReplaceItemInObjectCaseSensitive(stats, "last_request", last);
    pthread_mutex_unlock(&lock);
}

cJSON *mock_state_stats_json(void)
{
    pthread_mutex_lock(&lock);
    cJSON *copy = cJSON_Duplicate(stats, 1);
    pthread_mutex_unlock(&lock);
    cJSON_AddNumberToObject(copy, "bytes_sent", (double)atomic_load(&bytes_sent));
    cJSON_AddNumberToObject(copy, "active", (double)atomic_load(&active));
    return copy;
}

void mock_state_add_sent(size_t n)
{
    atomic_fetch_add(&bytes_sent, (unsigned long long)n);
}

void mock_state_active(int delta)
{
    atomic_fetch_add(&active, (long)delta);
}

void mock_state_reset(void)
{
    pthread_mutex_lock(&lock);
    stats_reset();
    fault_counter = 0;
    atomic_store(&bytes_sent, 0);
    pthread_mutex_unlock(&lock);
}

/*
 * Request n (from 0, counted since the last reset or fault setting) is
 * faulted when floor((n+1)·rate) > floor(n·rate): exactly `rate` of them,
 * spread evenly, and the same sequence on every run.
 */
int mock_state_fault_now(double rate)
{
    pthread_mutex_lock(&lock);
    unsigned long long n = fault_counter++;
    pthread_mutex_unlock(&lock);
    if (rate >= 1)
        return 1;
    if (rate <= 0)
        return 0;
    return floor((double)(n + 1) * rate) > floor((double)n * rate);
}

int mock_state_fault_for(const mock_options_t *o, const mock_request_t *r)
{
    if (o->fault_key[0] == '\0')
        return 1;
    char key[512];
    return request_key(r, key, sizeof(key)) == 0 && strcmp(key, o->fault_key) == 0;
}
