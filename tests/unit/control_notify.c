/*
 * The notifiers (src/control/notify.h, notify_body.h): each body composer
 * byte for byte against the shape its receiver documents, then the sender
 * against a loopback receiver this test runs in a thread of its own (a
 * script of statuses, the bodies recorded): retries with backoff, no retry
 * on a 4xx, digests, the queue's bound, and shutdown.
 */
#include "control/notify.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "control/notify_body.h"
#include "test.h"

/* ---- the bodies ---- */

static const gyre_notify_body_ctx_t ctx = {"ops", "http://127.0.0.1:8080", "gw1"};

/* A firing alert that moved traffic: what the alert engine sends. */
static gyre_notice_t firing(void)
{
    gyre_notice_t v = {0};
    v.alertname = "high_latency";
    v.severity = "critical";
    v.labels[0] = (gyre_notice_pair_t){"route", "chat"};
    v.labels[1] = (gyre_notice_pair_t){"provider", "openai"};
    v.nlabels = 2;
    v.annotations[0] = (gyre_notice_pair_t){"summary", "p95_latency 6200ms > 5000ms"};
    v.annotations[1] = (gyre_notice_pair_t){"actions", "failover_to_secondary: openai#0 out of route chat"};
    v.nannotations = 2;
    v.starts_us = 1765062292500000LL; /* 2025-12-06T23:04:52.5Z */
    return v;
}

static gyre_notice_t resolved(void)
{
    gyre_notice_t v = firing();
    v.alertname = "provider_degradation";
    v.severity = "warning";
    v.resolved = 1;
    v.annotations[0] = (gyre_notice_pair_t){"summary", "error_rate 7% > 5%"};
    v.ends_us = 1765062352000000LL;
    return v;
}

TEST(notify_webhook_body_is_alertmanagers_version_4_with_one_firing_alert)
{
    gyre_notice_t v = firing();
    const gyre_notice_t *one[] = {&v};
    char *s = gyre_notify_body_webhook(&ctx, one, 1, 0);
    CHECK_STR(s, "{\"receiver\":\"ops\",\"status\":\"firing\",\"alerts\":[{\"status\":\"firing\",\"labels\":{\"alertname\":"
                 "\"high_latency\",\"provider\":\"openai\",\"route\":\"chat\",\"severity\":\"critical\"},\"annotations\":"
                 "{\"actions\":\"failover_to_secondary: openai#0 out of route chat\",\"summary\":\"p95_latency 6200ms > "
                 "5000ms\"},\"startsAt\":\"2025-12-06T23:04:52.5Z\",\"endsAt\":\"0001-01-01T00:00:00Z\",\"generatorURL\":"
                 "\"http://127.0.0.1:8080/api/alerts\",\"fingerprint\":\"13015d6fc62bca99\"}],\"groupLabels\":{"
                 "\"alertname\":\"high_latency\"},\"commonLabels\":{\"alertname\":\"high_latency\",\"provider\":"
                 "\"openai\",\"route\":\"chat\",\"severity\":\"critical\"},\"commonAnnotations\":{\"actions\":"
                 "\"failover_to_secondary: openai#0 out of route chat\",\"summary\":\"p95_latency 6200ms > 5000ms\"},"
                 "\"externalURL\":\"http://127.0.0.1:8080\",\"version\":\"4\",\"groupKey\":"
                 "\"{}:{alertname=\\\"high_latency\\\"}\",\"truncatedAlerts\":0}");
    free(s);
}

TEST(notify_webhook_digest_spanning_two_rules_has_no_group_label_and_counts_truncated_alerts)
{
    gyre_notice_t v = firing(), w = resolved();
    const gyre_notice_t *two[] = {&v, &w};
    char *s = gyre_notify_body_webhook(&ctx, two, 2, 3);
    cJSON *j = cJSON_Parse(s);
    CHECK(j != NULL);
    CHECK_STR(cJSON_GetObjectItem(j, "status")->valuestring, "firing");
    char *g = cJSON_PrintUnformatted(cJSON_GetObjectItem(j, "groupLabels"));
    CHECK_STR(g, "{}");
    cJSON_free(g);
    g = cJSON_PrintUnformatted(cJSON_GetObjectItem(j, "commonLabels"));
    CHECK_STR(g, "{\"provider\":\"openai\",\"route\":\"chat\"}");
    cJSON_free(g);
    g = cJSON_PrintUnformatted(cJSON_GetObjectItem(j, "commonAnnotations"));
    CHECK_STR(g, "{\"actions\":\"failover_to_secondary: openai#0 out of route chat\"}");
    cJSON_free(g);
    CHECK_STR(cJSON_GetObjectItem(j, "groupKey")->valuestring, "{}:{}");
    CHECK_INT(cJSON_GetObjectItem(j, "truncatedAlerts")->valueint, 3);
    cJSON *a1 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "alerts"), 1);
    CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "alerts")), 2);
    CHECK_STR(cJSON_GetObjectItem(a1, "status")->valuestring, "resolved");
    CHECK_STR(cJSON_GetObjectItem(a1, "endsAt")->valuestring, "2025-12-06T23:05:52Z");
    CHECK_STR(cJSON_GetObjectItem(a1, "fingerprint")->valuestring, "c315182c4da9c0e9");
    cJSON_Delete(j);
    free(s);
}

TEST(notify_webhook_group_is_resolved_only_when_every_alert_is)
{
    gyre_notice_t w = resolved();
    const gyre_notice_t *one[] = {&w};
    char *s = gyre_notify_body_webhook(&ctx, one, 1, 0);
    cJSON *j = cJSON_Parse(s);
    CHECK_STR(cJSON_GetObjectItem(j, "status")->valuestring, "resolved");
    cJSON_Delete(j);
    free(s);
}

TEST(notify_slack_body_is_one_text_with_mrkdwn_title_labels_and_annotations)
{
    gyre_notice_t v = firing();
    const gyre_notice_t *one[] = {&v};
    char *s = gyre_notify_body_slack(&ctx, one, 1, 0);
    CHECK_STR(s, "{\"text\":\"*[FIRING] high_latency* (critical)\\nprovider=openai, route=chat\\nsummary: p95_latency "
                 "6200ms &gt; 5000ms\\nactions: failover_to_secondary: openai#0 out of route chat\"}");
    free(s);
}

TEST(notify_slack_digest_lists_each_alert_under_one_header)
{
    gyre_notice_t v = firing(), w = resolved();
    const gyre_notice_t *two[] = {&v, &w};
    char *s = gyre_notify_body_slack(&ctx, two, 2, 1);
    CHECK_STR(s, "{\"text\":\"*gyre: 2 of 3 alerts (1 firing, 1 resolved)*\\n\\n*[FIRING] high_latency* (critical)\\n"
                 "provider=openai, route=chat\\nsummary: p95_latency 6200ms &gt; 5000ms\\nactions: failover_to_secondary: "
                 "openai#0 out of route chat\\n\\n*[RESOLVED] provider_degradation* (warning)\\nprovider=openai, "
                 "route=chat\\nsummary: error_rate 7% &gt; 5%\\nactions: failover_to_secondary: openai#0 out of route "
                 "chat\\n\\n... and 1 more\"}");
    free(s);
}

TEST(notify_slack_escapes_its_control_characters_so_a_label_cannot_mention_channel)
{
    gyre_notice_t v = firing();
    v.labels[0] = (gyre_notice_pair_t){"route", "<!channel> & <https://evil|click>"};
    v.nannotations = 0;
    const gyre_notice_t *one[] = {&v};
    char *s = gyre_notify_body_slack(&ctx, one, 1, 0);
    CHECK_STR(s, "{\"text\":\"*[FIRING] high_latency* (critical)\\nprovider=openai, route=&lt;!channel&gt; &amp; "
                 "&lt;https://evil|click&gt;\"}");
    free(s);
}

TEST(notify_teams_body_is_a_workflows_message_with_one_adaptive_card)
{
    gyre_notice_t v = firing();
    const gyre_notice_t *one[] = {&v};
    char *s = gyre_notify_body_teams(&ctx, one, 1, 0);
    CHECK_STR(s, "{\"type\":\"message\",\"attachments\":[{\"contentType\":\"application/vnd.microsoft.card.adaptive\","
                 "\"contentUrl\":null,\"content\":{\"$schema\":\"http://adaptivecards.io/schemas/adaptive-card.json\","
                 "\"type\":\"AdaptiveCard\",\"version\":\"1.2\",\"body\":[{\"type\":\"TextBlock\",\"text\":\"[FIRING] "
                 "high_latency (critical)\",\"weight\":\"Bolder\",\"wrap\":true},{\"type\":\"FactSet\",\"facts\":[{"
                 "\"title\":\"provider\",\"value\":\"openai\"},{\"title\":\"route\",\"value\":\"chat\"},{\"title\":"
                 "\"summary\",\"value\":\"p95_latency 6200ms > 5000ms\"},{\"title\":\"actions\",\"value\":"
                 "\"failover_to_secondary: openai#0 out of route chat\"}]}]}}]}");
    free(s);
}

TEST(notify_teams_digest_starts_with_a_header_block_and_ends_with_the_count_left_out)
{
    gyre_notice_t v = firing(), w = resolved();
    const gyre_notice_t *two[] = {&v, &w};
    char *s = gyre_notify_body_teams(&ctx, two, 2, 4);
    cJSON *j = cJSON_Parse(s);
    cJSON *body = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "attachments"), 0), "content"), "body");
    CHECK_INT(cJSON_GetArraySize(body), 6);
    CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(body, 0), "text")->valuestring,
              "gyre: 2 of 6 alerts (1 firing, 1 resolved)");
    CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(body, 3), "text")->valuestring,
              "[RESOLVED] provider_degradation (warning)");
    CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(body, 5), "text")->valuestring, "... and 4 more");
    cJSON_Delete(j);
    free(s);
}

TEST(notify_pagerduty_trigger_is_an_events_v2_event_with_the_fingerprint_as_dedup_key)
{
    gyre_notice_t v = firing();
    char *s = gyre_notify_body_pagerduty(&ctx, "R0UTINGKEY", &v);
    CHECK_STR(s, "{\"routing_key\":\"R0UTINGKEY\",\"event_action\":\"trigger\",\"dedup_key\":\"13015d6fc62bca99\","
                 "\"payload\":{\"summary\":\"high_latency: p95_latency 6200ms > 5000ms\",\"source\":\"gw1\",\"severity\":"
                 "\"critical\",\"timestamp\":\"2025-12-06T23:04:52.5Z\",\"class\":\"high_latency\",\"custom_details\":{"
                 "\"labels\":{\"provider\":\"openai\",\"route\":\"chat\"},\"annotations\":{\"actions\":"
                 "\"failover_to_secondary: openai#0 out of route chat\",\"summary\":\"p95_latency 6200ms > 5000ms\"}}},"
                 "\"client\":\"gyre\",\"client_url\":\"http://127.0.0.1:8080\"}");
    free(s);
}

TEST(notify_pagerduty_resolve_carries_only_the_routing_key_and_the_dedup_key)
{
    gyre_notice_t v = firing();
    v.resolved = 1;
    v.ends_us = 1765062352000000LL;
    char *s = gyre_notify_body_pagerduty(&ctx, "R0UTINGKEY", &v);
    /* The same dedup key as the trigger above: the resolve closes the incident that trigger opened. */
    CHECK_STR(s, "{\"routing_key\":\"R0UTINGKEY\",\"event_action\":\"resolve\",\"dedup_key\":\"13015d6fc62bca99\"}");
    free(s);
}

TEST(notify_pagerduty_sends_an_unknown_severity_as_error_and_cuts_the_summary_at_1024_bytes)
{
    gyre_notice_t v = firing();
    v.severity = "page-me";
    static char long_summary[3000];
    memset(long_summary, 'x', sizeof(long_summary) - 1);
    v.annotations[0].value = long_summary;
    char *s = gyre_notify_body_pagerduty(&ctx, "R0UTINGKEY", &v);
    cJSON *j = cJSON_Parse(s);
    cJSON *p = cJSON_GetObjectItem(j, "payload");
    CHECK_STR(cJSON_GetObjectItem(p, "severity")->valuestring, "error");
    CHECK_INT(strlen(cJSON_GetObjectItem(p, "summary")->valuestring), 1024);
    cJSON_Delete(j);
    free(s);
}

TEST(notify_fingerprint_is_the_notices_own_when_given_else_a_hash_of_name_and_labels)
{
    gyre_notice_t v = firing();
    char a[17], b[17];
    gyre_notify_fingerprint(&v, a);
    CHECK_STR(a, "13015d6fc62bca99");
    /* Annotations and times are not part of it: the same alert keeps its fingerprint while its text changes. */
    v.annotations[0].value = "p95_latency 7000ms > 5000ms";
    v.starts_us++;
    gyre_notify_fingerprint(&v, b);
    CHECK_STR(b, a);
    v.labels[0].value = "embed";
    gyre_notify_fingerprint(&v, b);
    CHECK(strcmp(a, b) != 0);
    v.fingerprint = "rule1/route=chat";
    gyre_notify_fingerprint(&v, b);
    CHECK_STR(b, "rule1/route=chat");
    /* A longer one is hashed, so two that share their first 16 bytes stay apart. */
    v.fingerprint = "high_latency/route=chat,provider=openai";
    gyre_notify_fingerprint(&v, a);
    v.fingerprint = "high_latency/route=chat,provider=anthropic";
    gyre_notify_fingerprint(&v, b);
    CHECK_INT(strlen(a), 16);
    CHECK_INT(strspn(a, "0123456789abcdef"), 16);
    CHECK(strcmp(a, b) != 0);
}

TEST(notify_rfc3339_writes_gos_zero_time_and_trims_fraction_zeros)
{
    char t[40];
    gyre_notify_rfc3339(0, t);
    CHECK_STR(t, "0001-01-01T00:00:00Z");
    gyre_notify_rfc3339(1765062292000000LL, t);
    CHECK_STR(t, "2025-12-06T23:04:52Z");
    gyre_notify_rfc3339(1765062292123450LL, t);
    CHECK_STR(t, "2025-12-06T23:04:52.12345Z");
}

TEST(notify_bodies_stay_valid_json_with_ill_formed_utf8_and_quotes_in_labels)
{
    gyre_notice_t v = firing();
    v.alertname = "a\"b\\c\n\x01";
    v.labels[0] = (gyre_notice_pair_t){"ro\xffute", "ch\xc3\x28\"at"};
    const gyre_notice_t *one[] = {&v};
    char *bodies[4] = {gyre_notify_body_webhook(&ctx, one, 1, 0), gyre_notify_body_slack(&ctx, one, 1, 0),
                       gyre_notify_body_teams(&ctx, one, 1, 0), gyre_notify_body_pagerduty(&ctx, "k", &v)};
    for (int i = 0; i < 4; i++) {
        CHECK(gyre_json_valid(bodies[i], strlen(bodies[i])));
        free(bodies[i]);
    }
    char *s = gyre_notify_body_webhook(&ctx, one, 1, 0);
    cJSON *j = cJSON_Parse(s);
    cJSON *labels = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "alerts"), 0), "labels");
    CHECK_STR(cJSON_GetObjectItem(labels, "ro\xef\xbf\xbdute")->valuestring, "ch\xef\xbf\xbd(\"at");
    CHECK_STR(cJSON_GetObjectItem(j, "groupKey")->valuestring, "{}:{alertname=\"a\\\"b\\\\c\\n\\x01\"}");
    cJSON_Delete(j);
    free(s);
}

TEST(notify_log_line_names_the_notifier_and_puts_the_summary_first)
{
    gyre_notice_t v = firing();
    char *s = gyre_notify_body_log(&ctx, &v);
    CHECK_STR(s, "notifier ops: [FIRING] high_latency (critical) provider=openai route=chat summary=\"p95_latency 6200ms "
                 "> 5000ms\" actions=\"failover_to_secondary: openai#0 out of route chat\"");
    free(s);
}

/* ---- the sender against a loopback receiver ---- */

#define RECV_MAX 64

/* A receiver: answers statuses from a script (the last one repeats), after `delay_ms`, and records bodies. */
typedef struct receiver {
    int fd;
    uint16_t port;
    pthread_t thread;
    int stop;
    int script[8];
    size_t nscript;
    long delay_ms;
    pthread_mutex_t mu;
    char *bodies[RECV_MAX];
    char *heads[RECV_MAX];
    size_t n;
} receiver_t;

static void *receiver_main(void *arg)
{
    receiver_t *r = arg;
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        struct pollfd pfd = {r->fd, POLLIN, 0};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        int c = accept(r->fd, NULL, NULL);
        if (c < 0)
            continue;
        static char buf[1 << 20];
        size_t got = 0;
        char *eoh = NULL;
        long clen = 0;
        for (;;) {
            ssize_t k = read(c, buf + got, sizeof(buf) - 1 - got);
            if (k <= 0)
                break;
            got += (size_t)k;
            buf[got] = '\0';
            if (eoh == NULL && (eoh = strstr(buf, "\r\n\r\n")) != NULL) {
                char *cl = strcasestr(buf, "content-length:");
                clen = cl != NULL ? strtol(cl + 15, NULL, 10) : 0;
            }
            if (eoh != NULL && got >= (size_t)(eoh + 4 - buf) + (size_t)clen)
                break;
        }
        if (eoh == NULL) {
            close(c);
            continue;
        }
        pthread_mutex_lock(&r->mu);
        size_t i = r->n;
        int status = r->script[i < r->nscript ? i : r->nscript - 1];
        if (i < RECV_MAX) {
            r->heads[i] = strndup(buf, (size_t)(eoh - buf));
            r->bodies[i] = strndup(eoh + 4, (size_t)clen);
            r->n++;
        }
        pthread_mutex_unlock(&r->mu);
        if (r->delay_ms > 0)
            usleep((useconds_t)r->delay_ms * 1000);
        char out[128];
        int len = snprintf(out, sizeof(out), "HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}", status);
        if (write(c, out, (size_t)len) < 0) {
            /* the sender gave up first: nothing to do */
        }
        close(c);
    }
    return NULL;
}

static void receiver_start(receiver_t *r, const int *script, size_t n, long delay_ms)
{
    memset(r, 0, sizeof(*r));
    memcpy(r->script, script, n * sizeof(int));
    r->nscript = n;
    r->delay_ms = delay_ms;
    pthread_mutex_init(&r->mu, NULL);
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(r->fd, (struct sockaddr *)&a, sizeof(a));
    listen(r->fd, 64);
    socklen_t al = sizeof(a);
    getsockname(r->fd, (struct sockaddr *)&a, &al);
    r->port = ntohs(a.sin_port);
    pthread_create(&r->thread, NULL, receiver_main, r);
}

static size_t receiver_count(receiver_t *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static void receiver_stop(receiver_t *r)
{
    __atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
    pthread_join(r->thread, NULL);
    close(r->fd);
    for (size_t i = 0; i < r->n; i++) {
        free(r->bodies[i]);
        free(r->heads[i]);
    }
}

static gyre_config_t *config_for(const char *fmt, uint16_t port)
{
    char yaml[2048];
    snprintf(yaml, sizeof(yaml), fmt, port);
    gyre_config_errors_t e = {0};
    gyre_config_t *c = gyre_config_parse("t.yaml", yaml, strlen(yaml), &e);
    for (size_t i = 0; i < e.count; i++)
        fprintf(stderr, "  %s\n", e.items[i]);
    gyre_config_errors_dispose(&e);
    return c;
}

static gyre_notify_stat_t stat_of(gyre_notify_t *n)
{
    gyre_notify_stat_t s[4] = {0};
    gyre_notify_stats(n, s, 4);
    return s[0];
}

/* Waits (up to 10 s) until the first notifier has sent + failed >= want. */
static void wait_done(gyre_notify_t *n, uint64_t want)
{
    for (int i = 0; i < 1000; i++) {
        gyre_notify_stat_t s = stat_of(n);
        if (s.sent + s.failed >= want)
            return;
        usleep(10000);
    }
}

static const gyre_notify_options_t fast = {0, 20, 200}; /* backoff 20 ms doubling, capped at 200 ms */

TEST(notify_sender_retries_500s_with_backoff_then_delivers_exactly_one_body)
{
    receiver_t r;
    receiver_start(&r, (const int[]){500, 429, 200}, 3, 0);
    gyre_config_t *c = config_for("notifiers:\n  - {name: ops, kind: webhook, url: 'http://127.0.0.1:%u/hook'}\n", r.port);
    gyre_notify_t *n = gyre_notify_create_with(c, &fast);
    gyre_notice_t v = firing();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_INT(gyre_notify_send(n, "ops", &v), 0);
    wait_done(n, 1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    usleep(100000); /* a further try would have come by now */
    gyre_notify_stat_t s = stat_of(n);
    CHECK_STR(s.name, "ops");
    CHECK_STR(s.kind, "webhook");
    CHECK_INT(s.sent, 1);
    CHECK_INT(s.retried, 2);
    CHECK_INT(s.failed, 0);
    CHECK_INT(s.dropped, 0);
    CHECK_INT(receiver_count(&r), 3);
    /* The same body each time; the waits were at least half of 20 ms, then of 40 ms. */
    CHECK_STR(r.bodies[1], r.bodies[0]);
    CHECK_STR(r.bodies[2], r.bodies[0]);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    CHECK(ms >= 30);
    CHECK(strstr(r.heads[0], "POST /hook HTTP/1.1\r\n") == r.heads[0]);
    CHECK(strstr(r.heads[0], "Content-Type: application/json\r\n") != NULL);
    CHECK_INT(gyre_notify_held(n), 0);
    gyre_notify_destroy(n, 1000);
    gyre_config_free(c);
    receiver_stop(&r);
}

TEST(notify_sender_does_not_retry_a_400)
{
    receiver_t r;
    receiver_start(&r, (const int[]){400, 200}, 2, 0);
    gyre_config_t *c = config_for("notifiers:\n  - {name: ops, kind: slack, url: 'http://127.0.0.1:%u/s'}\n", r.port);
    gyre_notify_t *n = gyre_notify_create_with(c, &fast);
    gyre_notice_t v = firing();
    CHECK_INT(gyre_notify_send(n, "ops", &v), 0);
    wait_done(n, 1);
    usleep(150000);
    gyre_notify_stat_t s = stat_of(n);
    CHECK_INT(s.failed, 1);
    CHECK_INT(s.retried, 0);
    CHECK_INT(s.sent, 0);
    CHECK_INT(receiver_count(&r), 1);
    gyre_notify_destroy(n, 1000);
    gyre_config_free(c);
    receiver_stop(&r);
}

TEST(notify_sender_gives_up_after_its_retries_and_counts_one_failure)
{
    receiver_t r;
    receiver_start(&r, (const int[]){503}, 1, 0);
    gyre_config_t *c =
        config_for("notifiers:\n  - {name: ops, kind: teams, url: 'http://127.0.0.1:%u/t', retries: 2}\n", r.port);
    gyre_notify_t *n = gyre_notify_create_with(c, &fast);
    gyre_notice_t v = firing();
    CHECK_INT(gyre_notify_send(n, "ops", &v), 0);
    wait_done(n, 1);
    usleep(100000);
    gyre_notify_stat_t s = stat_of(n);
    CHECK_INT(s.failed, 1);
    CHECK_INT(s.retried, 2);
    CHECK_INT(receiver_count(&r), 3);
    gyre_notify_destroy(n, 1000);
    gyre_config_free(c);
    receiver_stop(&r);
}

TEST(notify_sender_sends_a_digests_notices_as_one_body)
{
    receiver_t r;
    receiver_start(&r, (const int[]){200}, 1, 0);
    gyre_config_t *c =
        config_for("notifiers:\n  - {name: ops, kind: webhook, url: 'http://127.0.0.1:%u/h', digest: 1s}\n", r.port);
    gyre_notify_t *n = gyre_notify_create_with(c, &fast);
    gyre_notice_t v = firing(), w = resolved(), x = firing();
    x.labels[0].value = "embed";
    CHECK_INT(gyre_notify_send(n, "ops", &v), 0);
    CHECK_INT(gyre_notify_send(n, "ops", &w), 0);
    CHECK_INT(gyre_notify_send(n, "ops", &x), 0);
    usleep(300000);
    CHECK_INT(receiver_count(&r), 0); /* still within the interval */
    CHECK_INT(gyre_notify_held(n), 3);
    wait_done(n, 1);
    usleep(100000);
    CHECK_INT(receiver_count(&r), 1);
    cJSON *j = cJSON_Parse(r.bodies[0]);
    CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "alerts")), 3);
    CHECK_STR(cJSON_GetObjectItem(j, "receiver")->valuestring, "ops");
    cJSON_Delete(j);
    CHECK_INT(stat_of(n).sent, 1);
    gyre_notify_destroy(n, 1000);
    gyre_config_free(c);
    receiver_stop(&r);
}

TEST(notify_sender_sends_each_pagerduty_event_even_with_a_digest)
{
    receiver_t r;
    receiver_start(&r, (const int[]){202}, 1, 0);
    gyre_config_t *c = config_for("notifiers:\n  - {name: pd, kind: pagerduty, url: 'http://127.0.0.1:%u/v2/enqueue', "
                                  "routing_key: R0UTINGKEY, digest: 1h}\n",
                                  r.port);
    gyre_notify_t *n = gyre_notify_create_with(c, &fast);
    gyre_notice_t v = firing(), w = firing();
    w.resolved = 1;
    CHECK_INT(gyre_notify_send(n, "pd", &v), 0);
    CHECK_INT(gyre_notify_send(n, "pd", &w), 0);
    wait_done(n, 2);
    CHECK_INT(receiver_count(&r), 2);
    CHECK(strstr(r.bodies[0], "\"event_action\":\"trigger\"") != NULL);
    CHECK(strstr(r.bodies[1], "\"event_action\":\"resolve\"") != NULL);
    gyre_notify_destroy(n, 1000);
    gyre_config_free(c);
    receiver_stop(&r);
}

TEST(notify_send_past_the_queue_bound_is_dropped_and_counted)
{
    receiver_t r;
    receiver_start(&r, (const int[]){200}, 1, 300); /* slow: the first two stay held */
    gyre_config_t *c = config_for("notifiers:\n  - {name: ops, kind: webhook, url: 'http://127.0.0.1:%u/h'}\n", r.port);
    gyre_notify_options_t o = fast;
    o.queue_max = 2;
    gyre_notify_t *n = gyre_notify_create_with(c, &o);
    gyre_notice_t v = firing();
    CHECK_INT(gyre_notify_send(n, "ops", &v), 0);
    CHECK_INT(gyre_notify_send(n, "ops", &v), 0);
    CHECK_INT(gyre_notify_send(n, "ops", &v), -ENOBUFS);
    CHECK_INT(gyre_notify_send(n, "ops", &v), -ENOBUFS);
    CHECK_INT(stat_of(n).dropped, 2);
    wait_done(n, 2);
    CHECK_INT(stat_of(n).sent, 2);
    CHECK_INT(gyre_notify_send(n, "ops", &v), 0); /* room again */
    gyre_notify_destroy(n, 2000);
    gyre_config_free(c);
    receiver_stop(&r);
}

TEST(notify_send_to_an_unknown_notifier_is_enoent)
{
    gyre_config_t *c = config_for("notifiers:\n  - {name: journal, kind: log}\n# %u\n", 0);
    gyre_notify_t *n = gyre_notify_create(c);
    gyre_notice_t v = firing();
    CHECK_INT(gyre_notify_send(n, "nobody", &v), -ENOENT);
    CHECK_INT(gyre_notify_send(NULL, "journal", &v), -ENOENT);
    CHECK(gyre_notify_exists(c, "journal"));
    CHECK(!gyre_notify_exists(c, "nobody"));
    gyre_notify_destroy(n, 0);
    gyre_config_free(c);
}

TEST(notify_log_notifier_counts_its_line_as_sent)
{
    gyre_config_t *c = config_for("notifiers:\n  - {name: journal, kind: log}\n# %u\n", 0);
    gyre_notify_t *n = gyre_notify_create(c);
    gyre_notice_t v = firing();
    CHECK_INT(gyre_notify_send(n, "journal", &v), 0);
    wait_done(n, 1);
    gyre_notify_stat_t s = stat_of(n);
    CHECK_STR(s.kind, "log");
    CHECK_INT(s.sent, 1);
    gyre_notify_destroy(n, 0);
    gyre_config_free(c);
}

TEST(notify_destroy_posts_a_pending_digest_within_its_grace)
{
    receiver_t r;
    receiver_start(&r, (const int[]){200}, 1, 0);
    gyre_config_t *c =
        config_for("notifiers:\n  - {name: ops, kind: slack, url: 'http://127.0.0.1:%u/h', digest: 1h}\n", r.port);
    gyre_notify_t *n = gyre_notify_create_with(c, &fast);
    gyre_notice_t v = firing();
    CHECK_INT(gyre_notify_send(n, "ops", &v), 0);
    usleep(50000);
    CHECK_INT(receiver_count(&r), 0);
    gyre_notify_destroy(n, 2000);
    CHECK_INT(receiver_count(&r), 1);
    gyre_config_free(c);
    receiver_stop(&r);
}

TEST(notify_destroy_drops_what_is_still_failing_when_the_grace_ends)
{
    receiver_t r;
    receiver_start(&r, (const int[]){500}, 1, 0);
    gyre_config_t *c = config_for("notifiers:\n  - {name: ops, kind: webhook, url: 'http://127.0.0.1:%u/h'}\n", r.port);
    gyre_notify_options_t o = {0, 60000, 60000}; /* the retry would come a minute after the grace */
    gyre_notify_t *n = gyre_notify_create_with(c, &o);
    gyre_notice_t v = firing();
    CHECK_INT(gyre_notify_send(n, "ops", &v), 0);
    for (int i = 0; i < 200 && stat_of(n).retried == 0; i++)
        usleep(10000);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    gyre_notify_destroy(n, 100);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    CHECK(ms < 30000); /* the grace (0.1 s), not the retry's minute: far apart, so a loaded machine cannot blur them */
    CHECK_INT(receiver_count(&r), 1);
    gyre_config_free(c);
    receiver_stop(&r);
}

TEST(notify_sender_sends_the_configured_headers)
{
    receiver_t r;
    receiver_start(&r, (const int[]){200}, 1, 0);
    setenv("GYRE_TEST_HOOK_TOKEN", "Bearer s3cret-hook-token", 1);
    gyre_config_t *c = config_for("notifiers:\n  - {name: ops, kind: webhook, url: 'http://127.0.0.1:%u/h', headers: "
                                  "{Authorization: 'env:GYRE_TEST_HOOK_TOKEN'}}\n",
                                  r.port);
    gyre_notify_t *n = gyre_notify_create_with(c, &fast);
    gyre_notice_t v = firing();
    CHECK_INT(gyre_notify_send(n, "ops", &v), 0);
    wait_done(n, 1);
    CHECK_INT(receiver_count(&r), 1);
    CHECK(strstr(r.heads[0], "\r\nAuthorization: Bearer s3cret-hook-token") != NULL);
    gyre_notify_destroy(n, 1000);
    gyre_config_free(c);
    receiver_stop(&r);
}

TEST(notify_reconfigure_keeps_a_notifiers_counters_and_drops_a_removed_ones_notices)
{
    receiver_t r;
    receiver_start(&r, (const int[]){200}, 1, 0);
    gyre_config_t *c = config_for("notifiers:\n  - {name: ops, kind: webhook, url: 'http://127.0.0.1:%u/a'}\n"
                                  "  - {name: gone, kind: slack, url: 'http://127.0.0.1:1/x', digest: 1h}\n",
                                  r.port);
    gyre_notify_t *n = gyre_notify_create_with(c, &fast);
    gyre_notice_t v = firing();
    CHECK_INT(gyre_notify_send(n, "ops", &v), 0);
    CHECK_INT(gyre_notify_send(n, "gone", &v), 0);
    wait_done(n, 1);
    gyre_config_t *next =
        config_for("notifiers:\n  - {name: ops, kind: webhook, url: 'http://127.0.0.1:%u/b'}\n", r.port);
    CHECK_INT(gyre_notify_reconfigure(n, next), 0);
    CHECK_INT(gyre_notify_send(n, "gone", &v), -ENOENT);
    CHECK_INT(gyre_notify_send(n, "ops", &v), 0);
    wait_done(n, 2);
    gyre_notify_stat_t s[4];
    CHECK_INT(gyre_notify_stats(n, s, 4), 1);
    CHECK_INT(s[0].sent, 2);
    CHECK_INT(gyre_notify_held(n), 0);
    CHECK_INT(receiver_count(&r), 2);
    CHECK(strstr(r.heads[1], "POST /b ") == r.heads[1]);
    gyre_notify_destroy(n, 1000);
    gyre_config_free(c);
    gyre_config_free(next);
    receiver_stop(&r);
}

/* Every log line the sender writes, gathered for the test below. */
static char logged[16384];
static size_t logged_len;
static pthread_mutex_t logged_mu = PTHREAD_MUTEX_INITIALIZER;

static void gather_cb(void *ctx, const char *line, size_t len)
{
    (void)ctx;
    pthread_mutex_lock(&logged_mu);
    if (logged_len + len < sizeof(logged)) {
        memcpy(logged + logged_len, line, len);
        logged_len += len;
        logged[logged_len] = '\0';
    }
    pthread_mutex_unlock(&logged_mu);
}

TEST(notify_log_lines_name_the_notifier_and_host_but_never_the_urls_token_nor_the_routing_key)
{
    receiver_t r;
    receiver_start(&r, (const int[]){500, 400}, 2, 0);
    gyre_log_set_hook(gather_cb, NULL);
    gyre_config_t *c = config_for("notifiers:\n  - {name: pd, kind: pagerduty, url: "
                                  "'http://127.0.0.1:%u/services/T0/B0/sEcReTtOkEn?sig=sIgSeCrEt', "
                                  "routing_key: R0uT1nGsEcReT}\n",
                                  r.port);
    gyre_notify_t *n = gyre_notify_create_with(c, &fast);
    gyre_notice_t v = firing();
    CHECK_INT(gyre_notify_send(n, "pd", &v), 0);
    wait_done(n, 1);
    gyre_notify_destroy(n, 1000);
    gyre_log_set_hook(NULL, NULL);
    char expect[200];
    snprintf(expect, sizeof(expect),
             "gyre: notifier pd (pagerduty, http://127.0.0.1:%u) answered HTTP 500; retry 1 of 5 in ", r.port);
    CHECK(strstr(logged, expect) == logged);
    snprintf(expect, sizeof(expect),
             "gyre: notifier pd (pagerduty, http://127.0.0.1:%u) refused a notification with HTTP 400; not retried\n",
             r.port);
    CHECK(strstr(logged, expect) != NULL);
    CHECK(strstr(logged, "sEcReTtOkEn") == NULL);
    CHECK(strstr(logged, "sIgSeCrEt") == NULL);
    CHECK(strstr(logged, "R0uT1nGsEcReT") == NULL);
    /* ... while the receiver got both, in the path and the body. */
    CHECK(strstr(r.heads[0], "POST /services/T0/B0/sEcReTtOkEn?sig=sIgSeCrEt HTTP/1.1") == r.heads[0]);
    CHECK(strstr(r.bodies[0], "\"routing_key\":\"R0uT1nGsEcReT\"") != NULL);
    gyre_config_free(c);
    receiver_stop(&r);
}
