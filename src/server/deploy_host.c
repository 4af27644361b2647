/* The deployments' host and ticking thread (deploy_host.h). */
#include "server/deploy_host.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/log.h"
#include "control/alerts.h"
#include "control/notify.h"
#include "server/live.h"
#include "trace/record.h"

/* One server per process: its host and thread. */
static gyre_deploy_host_t host;
static int host_ready;
static pthread_t tick_thread;
static int tick_running;
static pthread_mutex_t tick_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tick_cond = PTHREAD_COND_INITIALIZER;
static int tick_stop;

/* GET /api/alerts' answer is at most this large; past it, no rule is taken to fire (and the log says so). */
#define ALERTS_JSON_MAX ((size_t)4 << 20)

static int set_route_cb(void *ctx, const char *actor, const char *action, const char *route, const char *route_json,
                        char *err, size_t errlen)
{
    return gyre_live_set_route(ctx, actor, action, route, route_json, err, errlen);
}

static char *route_json_cb(void *ctx, const char *route)
{
    return gyre_live_route_json(ctx, route);
}

/* The configuration gyre started with: serving reads its providers' base URLs and keys, which a reload may change
 * only for requests (a provider's URL changed by SIGHUP needs a restart to serve the loop's adapters). */
static const gyre_config_t *config_cb(void *ctx)
{
    return ((gyre_server_t *)ctx)->config;
}

static int overridden_cb(void *ctx, const char *route)
{
    return gyre_live_route_overridden(ctx, route);
}

/* Whether an alert fires now whose labels name `route` (the alert engine's current alerts). */
static int alert_firing_cb(void *ctx, const char *route, char *rule, size_t rule_size)
{
    gyre_server_t *s = ctx;
    if (s->alerts == NULL)
        return 0;
    gyre_buf_t b;
    gyre_buf_init(&b, ALERTS_JSON_MAX);
    int found = 0;
    if (gyre_alerts_render_json(s->alerts, &b) == 0) {
        cJSON *j = cJSON_ParseWithLength(b.base != NULL ? b.base : "", b.len);
        const cJSON *a;
        cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(j, "alerts"))
        {
            const cJSON *st = cJSON_GetObjectItemCaseSensitive(a, "state");
            const cJSON *r = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(a, "labels"), "route");
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(a, "rule");
            if (cJSON_IsString(st) && strcmp(st->valuestring, "firing") == 0 && cJSON_IsString(r) &&
                strcmp(r->valuestring, route) == 0) {
                snprintf(rule, rule_size, "%s", cJSON_IsString(name) ? name->valuestring : "?");
                found = 1;
                break;
            }
        }
        cJSON_Delete(j);
    } else {
        gyre_logf("gyre: deploy: the alerts are larger than %zu bytes; none is taken to fire\n", ALERTS_JSON_MAX);
    }
    gyre_buf_dispose(&b);
    return found;
}

/* A deployment's notice goes to every configured notifier. */
static void notify_cb(void *ctx, const char *title, const char *text)
{
    gyre_server_t *s = ctx;
    gyre_logf("gyre: deploy: %s: %s\n", title, text);
    if (s->notify == NULL)
        return;
    gyre_notice_t n = {.alertname = "gyre_deploy",
                       .severity = "warning",
                       .fingerprint = "gyre_deploy",
                       .starts_us = gyre_trace_now_us()};
    n.annotations[n.nannotations++] = (gyre_notice_pair_t){"summary", title};
    n.annotations[n.nannotations++] = (gyre_notice_pair_t){"description", text};
    for (size_t i = 0; i < s->config->nnotifiers; i++)
        gyre_notify_send(s->notify, s->config->notifiers[i].name, &n);
}

void gyre_deploy_host_init(gyre_server_t *s, gyre_deploy_host_t *h)
{
    memset(h, 0, sizeof(*h));
    h->ctx = s;
    h->state = s->state;
    h->store_dsn = s->config->store_dsn;
    h->set_route = set_route_cb;
    h->route_json = route_json_cb;
    h->config = config_cb;
    h->alert_firing = alert_firing_cb;
    h->notify = notify_cb;
    h->route_overridden = overridden_cb;
}

static void *tick_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&tick_lock);
    while (!tick_stop) {
        pthread_mutex_unlock(&tick_lock);
        gyre_deploy_tick(&host, gyre_trace_now_us());
        pthread_mutex_lock(&tick_lock);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        if (!tick_stop)
            pthread_cond_timedwait(&tick_cond, &tick_lock, &ts);
    }
    pthread_mutex_unlock(&tick_lock);
    return NULL;
}

int gyre_server_deploy_start(gyre_server_t *s)
{
    if (s->state == NULL)
        return 0;
    gyre_deploy_host_init(s, &host);
    host_ready = 1;
    tick_stop = 0;
    if (pthread_create(&tick_thread, NULL, tick_main, NULL) != 0) {
        gyre_logf("gyre: deploy: cannot start the deployments' thread\n");
        return -1;
    }
    tick_running = 1;
    return 0;
}

void gyre_server_deploy_stop(gyre_server_t *s)
{
    (void)s;
    if (!tick_running)
        return;
    pthread_mutex_lock(&tick_lock);
    tick_stop = 1;
    pthread_cond_signal(&tick_cond);
    pthread_mutex_unlock(&tick_lock);
    pthread_join(tick_thread, NULL);
    tick_running = 0;
}

const gyre_deploy_host_t *gyre_server_deploy_host(gyre_server_t *s)
{
    (void)s;
    return host_ready ? &host : NULL;
}
