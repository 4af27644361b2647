/*
 * gyre-mock as the receiver of gyre's notifiers (docs/mock.md): a webhook
 * receiver that records what it is sent, with staged failures to test
 * retries, and PagerDuty's Events API v2 endpoint.
 *
 *   POST /_mock/hooks/{name}        records the body, answers 200 {"status":"ok"} (or a staged failure)
 *   POST /_mock/hooks/{name}/fail   {"status": 500, "count": 2}: the next `count` posts to {name} get `status`
 *   GET  /_mock/hooks/{name}        the bodies {name} accepted, oldest first, as a JSON array (each body as the
 *                                   JSON it was, or as a string when it was not JSON)
 *   GET  /_mock/hooks               {"name": {"received": N, "accepted": N, "failed": N}, ...}
 *   DELETE /_mock/hooks             forgets every body, count and staged failure (as /_mock/reset does)
 *   POST /v2/enqueue                PagerDuty's Events API v2: checks the event as PagerDuty documents it,
 *                                   answers 202 {"status":"success","message":"Event processed","dedup_key":...}
 *                                   or 400 {"status":"invalid event","message":...,"errors":[...]}; recorded
 *                                   under the name "pagerduty"
 *
 * Bounds: the last HOOKS_MAX_BODIES bodies are kept, all names together (an older one is forgotten); a body
 * over HOOKS_MAX_BODY_BYTES is answered 413 and not kept; at most HOOKS_MAX_NAMES names are counted (more get
 * 507).  Only accepted (2xx) bodies are kept: "exactly one delivered body" reads straight off the array.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "mock.h"

#define HOOKS_MAX_BODIES 1000
#define HOOKS_MAX_BODY_BYTES ((size_t)1 << 20)
#define HOOKS_MAX_NAMES 256
#define HOOKS_NAME_MAX 64

typedef struct hook_name {
    char name[HOOKS_NAME_MAX + 1];
    unsigned long received, accepted, failed;
    int fail_status;
    unsigned long fail_count;
} hook_name_t;

typedef struct hook_body {
    char name[HOOKS_NAME_MAX + 1];
    char *body;
    size_t len;
} hook_body_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static hook_name_t names[HOOKS_MAX_NAMES];
static size_t nnames;
static hook_body_t ring[HOOKS_MAX_BODIES]; /* the oldest at `head` once full */
static size_t head, count;

static int valid_name(const char *s, size_t n)
{
    if (n == 0 || n > HOOKS_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
              ch == '_' || ch == '.'))
            return 0;
    }
    return 1;
}

/* The name's counters (made on first use), or NULL when HOOKS_MAX_NAMES are taken.  Under the mutex. */
static hook_name_t *name_get(const char *name)
{
    for (size_t i = 0; i < nnames; i++)
        if (strcmp(names[i].name, name) == 0)
            return &names[i];
    if (nnames == HOOKS_MAX_NAMES)
        return NULL;
    hook_name_t *h = &names[nnames++];
    memset(h, 0, sizeof(*h));
    snprintf(h->name, sizeof(h->name), "%s", name);
    return h;
}

static void keep(const char *name, const char *body, size_t len)
{
    hook_body_t *slot;
    if (count == HOOKS_MAX_BODIES) {
        slot = &ring[head];
        free(slot->body);
        head = (head + 1) % HOOKS_MAX_BODIES;
    } else {
        slot = &ring[(head + count) % HOOKS_MAX_BODIES];
        count++;
    }
    snprintf(slot->name, sizeof(slot->name), "%s", name);
    slot->body = gyre_malloc(len + 1);
    memcpy(slot->body, body, len);
    slot->body[len] = '\0';
    slot->len = len;
}

void mock_hooks_reset(void)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < count; i++)
        free(ring[(head + i) % HOOKS_MAX_BODIES].body);
    head = count = 0;
    nnames = 0;
    pthread_mutex_unlock(&mu);
}

/*
 * Counts a post to `name` and decides its answer: a staged failure's status, or 0 to go on.  413 for a body
 * over the bound, 507 when no more names can be counted.  The body is kept by the caller via accept_body.
 */
static int arrive(const char *name, size_t len)
{
    pthread_mutex_lock(&mu);
    hook_name_t *h = name_get(name);
    int status = 0;
    if (h == NULL) {
        status = 507;
    } else {
        h->received++;
        if (len > HOOKS_MAX_BODY_BYTES) {
            status = 413;
        } else if (h->fail_count > 0) {
            h->fail_count--;
            status = h->fail_status;
        }
        if (status != 0)
            h->failed++;
    }
    pthread_mutex_unlock(&mu);
    return status;
}

static void accept_body(const char *name, const char *body, size_t len)
{
    pthread_mutex_lock(&mu);
    hook_name_t *h = name_get(name);
    if (h != NULL)
        h->accepted++;
    keep(name, body, len);
    pthread_mutex_unlock(&mu);
}

static int respond_status(mock_conn_t *c, const mock_request_t *r, int status, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", status >= 200 && status < 300 ? "ok" : "error");
    cJSON_AddStringToObject(o, "message", message);
    int ret = mock_http_respond_json(c, r, status, o);
    cJSON_Delete(o);
    return ret;
}

static int list_bodies(mock_conn_t *c, const mock_request_t *r, const char *name)
{
    cJSON *arr = cJSON_CreateArray();
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < count; i++) {
        const hook_body_t *b = &ring[(head + i) % HOOKS_MAX_BODIES];
        if (strcmp(b->name, name) != 0)
            continue;
        cJSON *v = cJSON_ParseWithLength(b->body, b->len);
        cJSON_AddItemToArray(arr, v != NULL ? v : cJSON_CreateString(b->body));
    }
    pthread_mutex_unlock(&mu);
    int ret = mock_http_respond_json(c, r, 200, arr);
    cJSON_Delete(arr);
    return ret;
}

static int list_names(mock_conn_t *c, const mock_request_t *r)
{
    cJSON *o = cJSON_CreateObject();
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < nnames; i++) {
        cJSON *n = cJSON_AddObjectToObject(o, names[i].name);
        cJSON_AddNumberToObject(n, "received", (double)names[i].received);
        cJSON_AddNumberToObject(n, "accepted", (double)names[i].accepted);
        cJSON_AddNumberToObject(n, "failed", (double)names[i].failed);
    }
    pthread_mutex_unlock(&mu);
    int ret = mock_http_respond_json(c, r, 200, o);
    cJSON_Delete(o);
    return ret;
}

/* POST /_mock/hooks/{name}/fail {"status": 500, "count": 2} */
static int stage_failure(mock_conn_t *c, const mock_request_t *r, const char *name)
{
    cJSON *j = cJSON_ParseWithLength(r->body, r->body_len);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(j, "count");
    int ok = cJSON_IsNumber(st) && st->valuedouble >= 100 && st->valuedouble <= 599 &&
             (ct == NULL || (cJSON_IsNumber(ct) && ct->valuedouble >= 0 && ct->valuedouble <= 1e6));
    int status = ok ? (int)st->valuedouble : 0;
    unsigned long n = ok ? (ct != NULL ? (unsigned long)ct->valuedouble : 1) : 0;
    cJSON_Delete(j);
    if (!ok)
        return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "invalid_value", "status",
                                       "The body must be {\"status\": 100..599, \"count\": N (default 1)}.");
    pthread_mutex_lock(&mu);
    hook_name_t *h = name_get(name);
    if (h != NULL) {
        h->fail_status = status;
        h->fail_count = n;
    }
    pthread_mutex_unlock(&mu);
    if (h == NULL)
        return respond_status(c, r, 507, "too many hook names");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "status", status);
    cJSON_AddNumberToObject(o, "count", (double)n);
    int ret = mock_http_respond_json(c, r, 200, o);
    cJSON_Delete(o);
    return ret;
}

/* What PagerDuty's Events API v2 requires of an event; the first problem, or NULL. */
static const char *pagerduty_problem(const cJSON *j)
{
    if (!cJSON_IsObject(j))
        return "Event object is invalid";
    const cJSON *rk = cJSON_GetObjectItemCaseSensitive(j, "routing_key");
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(j, "event_action");
    const cJSON *dk = cJSON_GetObjectItemCaseSensitive(j, "dedup_key");
    if (!cJSON_IsString(rk) || rk->valuestring[0] == '\0')
        return "'routing_key' is missing or blank";
    if (!cJSON_IsString(act) || (strcmp(act->valuestring, "trigger") != 0 &&
                                 strcmp(act->valuestring, "acknowledge") != 0 && strcmp(act->valuestring, "resolve") != 0))
        return "'event_action' is invalid (must be trigger, acknowledge or resolve)";
    if (dk != NULL && (!cJSON_IsString(dk) || strlen(dk->valuestring) > 255))
        return "'dedup_key' must be a string of at most 255 characters";
    if (strcmp(act->valuestring, "trigger") != 0) {
        if (dk == NULL)
            return "'dedup_key' is required for acknowledge and resolve";
        return NULL;
    }
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "payload");
    if (!cJSON_IsObject(p))
        return "'payload' is missing";
    const cJSON *sum = cJSON_GetObjectItemCaseSensitive(p, "summary");
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(p, "source");
    const cJSON *sev = cJSON_GetObjectItemCaseSensitive(p, "severity");
    if (!cJSON_IsString(sum) || sum->valuestring[0] == '\0' || strlen(sum->valuestring) > 1024)
        return "'payload.summary' is missing, blank or longer than 1024 characters";
    if (!cJSON_IsString(src) || src->valuestring[0] == '\0')
        return "'payload.source' is missing or blank";
    if (!cJSON_IsString(sev) ||
        (strcmp(sev->valuestring, "critical") != 0 && strcmp(sev->valuestring, "error") != 0 &&
         strcmp(sev->valuestring, "warning") != 0 && strcmp(sev->valuestring, "info") != 0))
        return "'payload.severity' is invalid (must be critical, error, warning or info)";
    return NULL;
}

static int pagerduty_enqueue(mock_conn_t *c, const mock_request_t *r)
{
    int staged = arrive("pagerduty", r->body_len);
    if (staged != 0)
        return respond_status(c, r, staged, "staged failure");
    cJSON *j = cJSON_ParseWithLength(r->body, r->body_len);
    const char *problem = pagerduty_problem(j);
    cJSON *o = cJSON_CreateObject();
    int status;
    if (problem != NULL) {
        status = 400;
        cJSON_AddStringToObject(o, "status", "invalid event");
        cJSON_AddStringToObject(o, "message", "Event object is invalid");
        cJSON *errs = cJSON_AddArrayToObject(o, "errors");
        cJSON_AddItemToArray(errs, cJSON_CreateString(problem));
        pthread_mutex_lock(&mu);
        hook_name_t *h = name_get("pagerduty");
        if (h != NULL)
            h->failed++;
        pthread_mutex_unlock(&mu);
    } else {
        status = 202;
        const cJSON *dk = cJSON_GetObjectItemCaseSensitive(j, "dedup_key");
        cJSON_AddStringToObject(o, "status", "success");
        cJSON_AddStringToObject(o, "message", "Event processed");
        /* Without a dedup_key PagerDuty makes one; a fixed one here keeps answers stable. */
        cJSON_AddStringToObject(o, "dedup_key", cJSON_IsString(dk) ? dk->valuestring : "gyre-mock-dedup-key");
        accept_body("pagerduty", r->body, r->body_len);
    }
    cJSON_Delete(j);
    int ret = mock_http_respond_json(c, r, status, o);
    cJSON_Delete(o);
    return ret;
}

int mock_hooks_handle(mock_conn_t *c, const mock_request_t *r)
{
    size_t len = strcspn(r->path, "?");
    int post = strcmp(r->method, "POST") == 0, get = strcmp(r->method, "GET") == 0;
    if (len == 11 && strncmp(r->path, "/v2/enqueue", 11) == 0) {
        if (!post)
            return respond_status(c, r, 405, "use POST");
        return pagerduty_enqueue(c, r);
    }
    const char *rest = r->path + 12; /* after "/_mock/hooks" */
    size_t rlen = len - 12;
    if (rlen == 0 || (rlen == 1 && rest[0] == '/')) {
        if (strcmp(r->method, "DELETE") == 0) {
            mock_hooks_reset();
            return respond_status(c, r, 200, "forgotten");
        }
        return get ? list_names(c, r) : respond_status(c, r, 405, "use GET or DELETE");
    }
    if (rest[0] != '/')
        return respond_status(c, r, 404, "unknown path");
    rest++;
    rlen--;
    int fail = rlen > 5 && strncmp(rest + rlen - 5, "/fail", 5) == 0;
    size_t nlen = fail ? rlen - 5 : rlen;
    if (!valid_name(rest, nlen))
        return respond_status(c, r, 404, "a hook name is 1 to 64 of [A-Za-z0-9._-]");
    char name[HOOKS_NAME_MAX + 1];
    memcpy(name, rest, nlen);
    name[nlen] = '\0';
    if (fail)
        return post ? stage_failure(c, r, name) : respond_status(c, r, 405, "use POST");
    if (get)
        return list_bodies(c, r, name);
    if (!post)
        return respond_status(c, r, 405, "use POST or GET");
    int staged = arrive(name, r->body_len);
    if (staged != 0)
        return respond_status(c, r, staged, staged == 413 ? "body over 1 MiB" : "staged failure");
    accept_body(name, r->body, r->body_len);
    return respond_status(c, r, 200, "recorded");
}

int mock_hooks_match(const mock_request_t *r)
{
    size_t len = strcspn(r->path, "?");
    return (len == 11 && strncmp(r->path, "/v2/enqueue", 11) == 0) ||
           (len >= 12 && strncmp(r->path, "/_mock/hooks", 12) == 0 && (len == 12 || r->path[12] == '/'));
}
