/*
 * The alert engine (src/control/alerts.c) with an injected clock and a fake
 * notifier: histogram quantiles, the state machine's hysteresis, windows,
 * actions on the routing overrides, notices once per firing, the label-set
 * bound, and a reconfiguration that keeps what fires.
 */
#include "control/alerts.h"

#include <math.h>

#include "config_test.h"
#include "control/alerts_otlp.h"
#include "route/override.h"

#define S 1000000LL /* one second in microseconds */

static gyre_tstr_t ts(const char *s)
{
    return (gyre_tstr_t){(char *)s, strlen(s)};
}

/* A finished request: one attempt per status in `statuses` on `key_ids` in turn. */
static gyre_trace_t trace(const char *route, const char *agent, int64_t latency_ms, const char *const *keys,
                          const int *statuses, size_t n)
{
    gyre_trace_t t;
    memset(&t, 0, sizeof(t));
    t.route = ts(route);
    t.provider = ts("p");
    t.agent = ts(agent);
    t.started_us = 1000 * S;
    t.ended_us = t.started_us + latency_ms * 1000;
    t.ttft_us = -1;
    t.prompt_tokens = t.completion_tokens = -1;
    t.cost_usd = NAN;
    t.status = n ? statuses[n - 1] : 200;
    for (size_t i = 0; i < n; i++) {
        t.attempts[i].provider = ts("p");
        t.attempts[i].key_id = ts(keys[i]);
        t.attempts[i].status = statuses[i];
    }
    t.nattempts = n;
    return t;
}

typedef struct sent {
    int count;
    char notifier[32];
    int resolved;
    char actions[512], key[32], fingerprint[17];
} sent_t;

static int fake_send(void *data, const char *notifier, const gyre_notice_t *n)
{
    sent_t *s = data;
    s->count++;
    snprintf(s->notifier, sizeof(s->notifier), "%s", notifier);
    s->resolved = n->resolved;
    snprintf(s->fingerprint, sizeof(s->fingerprint), "%s", n->fingerprint);
    s->key[0] = s->actions[0] = '\0';
    for (size_t i = 0; i < n->nlabels; i++)
        if (strcmp(n->labels[i].name, "key") == 0)
            snprintf(s->key, sizeof(s->key), "%s", n->labels[i].value);
    for (size_t i = 0; i < n->nannotations; i++)
        if (strcmp(n->annotations[i].name, "actions") == 0)
            snprintf(s->actions, sizeof(s->actions), "%s", n->annotations[i].value);
    return 0;
}

typedef struct seen {
    int count;
    gyre_alert_event_t last;
} seen_t;

static void fake_event(void *data, const gyre_alert_event_t *e)
{
    seen_t *s = data;
    s->count++;
    s->last = *e;
}

#define TWO_KEYS "providers:\n  - {name: p, kind: openai, base_url: 'http://h/v1', keys: [ka-0123456789, kb-0123456789]}\n"

TEST(control_alerts_histogram_buckets_are_four_per_doubling_from_one_ms)
{
    CHECK_INT(gyre_alerts_hist_bucket(0), 0);
    CHECK_INT(gyre_alerts_hist_bucket(1), 0);
    CHECK_INT(gyre_alerts_hist_bucket(2), 4);
    CHECK_INT(gyre_alerts_hist_bucket(1000), 40);
    CHECK_INT(gyre_alerts_hist_bucket(1024), 40);
    CHECK_INT(gyre_alerts_hist_bucket(1025), 41);
    CHECK_INT(gyre_alerts_hist_bucket(1e12), GYRE_ALERTS_HIST_BUCKETS - 1);
    CHECK(gyre_alerts_hist_upper(40) == 1024);
    CHECK(gyre_alerts_hist_upper(4) == 2);
}

TEST(control_alerts_quantiles_are_the_upper_bound_of_their_bucket)
{
    uint32_t h[GYRE_ALERTS_HIST_BUCKETS] = {0};
    CHECK(isnan(gyre_alerts_hist_quantile(h, 0.95)));
    h[gyre_alerts_hist_bucket(100)] = 90;  /* 90 calls of 100 ms: bucket up to 2^(27/4) = 107.6 ms */
    h[gyre_alerts_hist_bucket(4000)] = 10; /* 10 of 4 s: bucket up to 2^12 = 4096 ms */
    CHECK(gyre_alerts_hist_quantile(h, 0.50) == exp2(27.0 / 4));
    CHECK(gyre_alerts_hist_quantile(h, 0.90) == exp2(27.0 / 4)); /* rank 90 is the last fast one */
    CHECK(gyre_alerts_hist_quantile(h, 0.91) == 4096);
    CHECK(gyre_alerts_hist_quantile(h, 0.95) == 4096);
}

TEST(control_alerts_the_state_machine_waits_for_for_then_holds_for_resolve_for_and_min_firing)
{
    gyre_alert_rule_conf_t r = {.for_us = 2 * S, .resolve_for_us = 3 * S, .min_firing_us = 10 * S};
    gyre_alert_fsm_t f = {0};
    CHECK_INT(gyre_alert_fsm_step(&f, &r, 0, 0), -1);
    CHECK_INT(gyre_alert_fsm_step(&f, &r, 1, 1 * S), GYRE_ALERT_PENDING);
    CHECK_INT(gyre_alert_fsm_step(&f, &r, 1, 2 * S), -1);
    CHECK_INT(gyre_alert_fsm_step(&f, &r, 1, 3 * S), GYRE_ALERT_FIRING); /* held 2 s */
    CHECK_INT(f.fired_at_us, 3 * S);
    /* False for 3 s, but the alert has fired only 6 s: it keeps firing until 10 s have passed. */
    CHECK_INT(gyre_alert_fsm_step(&f, &r, 0, 4 * S), -1);
    CHECK_INT(gyre_alert_fsm_step(&f, &r, 0, 7 * S), -1);
    CHECK_INT(gyre_alert_fsm_step(&f, &r, 0, 12 * S), -1);
    CHECK_INT(gyre_alert_fsm_step(&f, &r, 0, 13 * S), GYRE_ALERT_RESOLVED);
    /* Pending that stops holding goes back to inactive. */
    CHECK_INT(gyre_alert_fsm_step(&f, &r, 1, 20 * S), GYRE_ALERT_PENDING);
    CHECK_INT(gyre_alert_fsm_step(&f, &r, 0, 21 * S), GYRE_ALERT_INACTIVE);
}

TEST(control_alerts_a_flapping_condition_resets_resolve_for)
{
    gyre_alert_rule_conf_t r = {.for_us = 0, .resolve_for_us = 3 * S, .min_firing_us = 0};
    gyre_alert_fsm_t f = {0};
    CHECK_INT(gyre_alert_fsm_step(&f, &r, 1, 0), GYRE_ALERT_FIRING); /* for: 0 fires at once */
    CHECK_INT(gyre_alert_fsm_step(&f, &r, 0, 1 * S), -1);
    CHECK_INT(gyre_alert_fsm_step(&f, &r, 0, 3 * S), -1);
    CHECK_INT(gyre_alert_fsm_step(&f, &r, 1, 4 * S), -1); /* true again: the 3 s start over */
    CHECK_INT(gyre_alert_fsm_step(&f, &r, 0, 5 * S), -1);
    CHECK_INT(gyre_alert_fsm_step(&f, &r, 0, 7 * S), -1);
    CHECK_INT(gyre_alert_fsm_step(&f, &r, 0, 8 * S), GYRE_ALERT_RESOLVED);
}

TEST(control_alerts_429s_on_one_key_fire_once_rotate_the_key_notify_once_and_resolve)
{
    gyre_config_errors_t e = {0};
    gyre_config_t *c = parse(TWO_KEYS "alerts:\n"
                                      "  - name: limited\n"
                                      "    condition: rate_limited_rate > 20%\n"
                                      "    window: 5s\n"
                                      "    resolve_for: 2s\n"
                                      "    min_firing: 0s\n"
                                      "    by: [provider, key]\n"
                                      "    actions: [rotate_key, ops]\n",
                             &e);
    CHECK(c != NULL);
    gyre_overrides_t *o = gyre_overrides_create(c);
    sent_t sent = {0};
    seen_t seen = {0};
    gyre_alerts_hooks_t h = {.send = fake_send, .send_data = &sent, .event = fake_event, .event_data = &seen};
    gyre_alerts_t *a = gyre_alerts_create(c, o, 2, &h);
    const char *ka[] = {"p#0"}, *kb[] = {"p#1"}, *kab[] = {"p#0", "p#1"};
    int ok[] = {200}, limited_then_ok[] = {429, 200};
    /* Second 100: key a gets 4 calls, 1 of them a 429 (25 %); b gets 4 good ones. */
    for (int i = 0; i < 3; i++) {
        gyre_trace_t t = trace("chat", "", 10, ka, ok, 1);
        gyre_alerts_observe(a, 0, &t);
    }
    gyre_trace_t t1 = trace("chat", "", 10, kab, limited_then_ok, 2);
    gyre_alerts_observe(a, 1, &t1);
    for (int i = 0; i < 3; i++) {
        gyre_trace_t t = trace("chat", "", 10, kb, ok, 1);
        gyre_alerts_observe(a, 1, &t);
    }
    gyre_alerts_tick(a, 100 * S);
    CHECK_INT(seen.count, 1);
    CHECK_STR(seen.last.state, "firing");
    CHECK_STR(seen.last.labels, "{\"provider\":\"p\",\"key\":\"p#0\"}");
    CHECK(seen.last.value == 0.25);
    CHECK_STR(seen.last.actions, "gyre moved provider p's traffic off key p#0 to p#1; notified ops");
    CHECK_INT(gyre_overrides_key_out(o, 0, 0), 1);
    CHECK_INT(gyre_overrides_key_out(o, 0, 1), 0);
    CHECK_INT(sent.count, 1);
    CHECK_STR(sent.notifier, "ops");
    CHECK_INT(sent.resolved, 0);
    CHECK_STR(sent.key, "p#0");
    CHECK_STR(sent.actions, "gyre moved provider p's traffic off key p#0 to p#1");
    CHECK_STR(sent.fingerprint, seen.last.fingerprint);
    /* Still in the window: it keeps firing, nothing more is sent. */
    gyre_alerts_tick(a, 101 * S);
    gyre_alerts_tick(a, 104 * S);
    CHECK_INT(sent.count, 1);
    CHECK_INT(seen.count, 1);
    /* Second 105: the window (101..105) holds no call on a: no value, so false; 2 s later it resolves. */
    gyre_alerts_tick(a, 105 * S);
    gyre_alerts_tick(a, 106 * S);
    CHECK_INT(seen.count, 1);
    gyre_alerts_tick(a, 107 * S);
    CHECK_INT(seen.count, 2);
    CHECK_STR(seen.last.state, "resolved");
    CHECK(isnan(seen.last.value));
    CHECK_STR(seen.last.actions, "gyre put key p#0 back into provider p's rotation; notified ops");
    CHECK_INT(gyre_overrides_key_out(o, 0, 0), 0);
    CHECK_INT(sent.count, 2);
    CHECK_INT(sent.resolved, 1);
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    CHECK_INT(gyre_alerts_render_metrics(a, &b), 0);
    CHECK(strstr(b.base, "gyre_alert_transitions_total{rule=\"limited\",state=\"firing\"} 1\n") != NULL);
    CHECK(strstr(b.base, "gyre_alert_transitions_total{rule=\"limited\",state=\"resolved\"} 1\n") != NULL);
    CHECK(strstr(b.base, "gyre_alerts_firing{rule=\"limited\"} 0\n") != NULL);
    gyre_buf_dispose(&b);
    gyre_alerts_destroy(a);
    gyre_overrides_destroy(o);
    gyre_config_free(c);
    gyre_config_errors_dispose(&e);
}

TEST(control_alerts_rotate_key_never_takes_a_providers_last_key)
{
    gyre_config_errors_t e = {0};
    gyre_config_t *c = parse("providers:\n  - {name: p, kind: openai, base_url: 'http://h/v1', keys: [ka-0123456789]}\n"
                             "alerts:\n  - {name: l, condition: rate_limited_rate > 0, window: 1s, by: [provider, key], "
                             "action: rotate_key}\n",
                             &e);
    CHECK(c != NULL);
    gyre_overrides_t *o = gyre_overrides_create(c);
    seen_t seen = {0};
    gyre_alerts_hooks_t h = {.event = fake_event, .event_data = &seen};
    gyre_alerts_t *a = gyre_alerts_create(c, o, 1, &h);
    const char *k[] = {"p#0"};
    int st[] = {429};
    gyre_trace_t t = trace("", "", 5, k, st, 1);
    gyre_alerts_observe(a, 0, &t);
    gyre_alerts_tick(a, 10 * S);
    CHECK_STR(seen.last.state, "firing");
    CHECK_STR(seen.last.actions, "gyre could not move provider p's traffic off key p#0: it is the provider's last usable key");
    CHECK_INT(gyre_overrides_key_out(o, 0, 0), 0);
    gyre_alerts_destroy(a);
    gyre_overrides_destroy(o);
    gyre_config_free(c);
    gyre_config_errors_dispose(&e);
}

TEST(control_alerts_windows_give_exact_rates_and_forget_what_left_them)
{
    gyre_config_errors_t e = {0};
    gyre_config_t *c = parse(TWO_KEYS "alerts:\n"
                                      "  - {name: busy, condition: request_rate > 1, window: 5s, resolve_for: 0, "
                                      "min_firing: 0, by: route}\n"
                                      "  - {name: slow, condition: p95_latency > 1000ms, window: 2s, resolve_for: 0, "
                                      "min_firing: 0}\n",
                             &e);
    CHECK(c != NULL);
    seen_t seen = {0};
    gyre_alerts_hooks_t h = {.event = fake_event, .event_data = &seen};
    gyre_alerts_t *a = gyre_alerts_create(c, NULL, 1, &h);
    const char *k[] = {"p#0"};
    int ok[] = {200};
    for (int i = 0; i < 10; i++) {
        gyre_trace_t t = trace("chat", "", i < 9 ? 50 : 4000, k, ok, 1);
        gyre_alerts_observe(a, 0, &t);
    }
    gyre_alerts_tick(a, 200 * S);
    /* 10 calls in a 5 s window: 2 per second, over 1; one of 10 took 4 s: the p95 is 4096 ms, over 1000. */
    CHECK_INT(seen.count, 2);
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    gyre_alerts_render_json(a, &b);
    CHECK(strstr(b.base, "{\"rule\":\"busy\",\"state\":\"firing\",\"severity\":\"warning\"") != NULL);
    CHECK(strstr(b.base, "\"labels\":{\"route\":\"chat\"},\"since_us\":200000000,\"value\":2}") != NULL);
    CHECK(strstr(b.base, "\"labels\":{},\"since_us\":200000000,\"value\":4096}") != NULL);
    gyre_buf_dispose(&b);
    /* Two seconds on, the 2 s window is empty: slow resolves; busy's 5 s window still holds them. */
    gyre_alerts_tick(a, 202 * S);
    CHECK_INT(seen.count, 3);
    CHECK_STR(seen.last.rule, "slow");
    CHECK_STR(seen.last.state, "resolved");
    gyre_alerts_tick(a, 204 * S);
    CHECK_INT(seen.count, 3);
    gyre_alerts_tick(a, 205 * S);
    CHECK_INT(seen.count, 4);
    CHECK_STR(seen.last.rule, "busy");
    CHECK_STR(seen.last.state, "resolved");
    CHECK(seen.last.value == 0);
    gyre_alerts_destroy(a);
    gyre_config_free(c);
    gyre_config_errors_dispose(&e);
}

TEST(control_alerts_label_sets_past_the_bound_fold_into_other_and_are_counted)
{
    gyre_config_errors_t e = {0};
    gyre_config_t *c = parse(TWO_KEYS "alerts:\n  - {name: agents, condition: request_rate > 0, window: 1s, by: agent}\n",
                             &e);
    CHECK(c != NULL);
    gyre_alerts_t *a = gyre_alerts_create(c, NULL, 1, NULL);
    const char *k[] = {"p#0"};
    int ok[] = {200};
    char name[32];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "agent-%d", i);
        gyre_trace_t t = trace("chat", name, 5, k, ok, 1);
        gyre_alerts_observe(a, 0, &t);
    }
    gyre_alerts_tick(a, 50 * S);
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    gyre_alerts_render_metrics(a, &b);
    /* Series 0 is "other": 255 label sets fit, the last 45 agents fold. */
    CHECK(strstr(b.base, "gyre_alert_series_folded_total 45\n") != NULL);
    /* The rule's sets: the worker's "other" series comes first (agent "other", 45 calls), then 62 agents of their
     * own; the 193 agents after them go to the set "other" as well: 63 sets fire, "other" with 238 calls. */
    CHECK(strstr(b.base, "gyre_alerts_firing{rule=\"agents\"} 63\n") != NULL);
    gyre_buf_dispose(&b);
    gyre_buf_init(&b, 1 << 22);
    gyre_alerts_render_json(a, &b);
    CHECK(strstr(b.base, "\"labels\":{\"agent\":\"other\"},\"since_us\":50000000,\"value\":238}") != NULL);
    gyre_buf_dispose(&b);
    gyre_alerts_destroy(a);
    gyre_config_free(c);
    gyre_config_errors_dispose(&e);
}

TEST(control_alerts_failover_takes_a_target_out_but_never_a_routes_last)
{
    gyre_config_errors_t e = {0};
    gyre_config_t *c = parse("providers:\n"
                             "  - {name: p, kind: openai, base_url: 'http://h/v1', keys: [ka-0123456789]}\n"
                             "  - {name: q, kind: openai, base_url: 'http://h/v1', keys: [kb-0123456789]}\n"
                             "routes:\n"
                             "  - {name: chat, targets: [{provider: p, model: m}, {provider: q, model: m}]}\n"
                             "  - {name: solo, targets: [{provider: p, model: m}]}\n"
                             "alerts:\n  - {name: bad, condition: error_rate > 50%, window: 1s, "
                             "action: failover_to_secondary}\n",
                             &e);
    CHECK(c != NULL);
    gyre_overrides_t *o = gyre_overrides_create(c);
    seen_t seen = {0};
    gyre_alerts_hooks_t h = {.event = fake_event, .event_data = &seen};
    gyre_alerts_t *a = gyre_alerts_create(c, o, 1, &h);
    const char *k[] = {"p#0"};
    int bad[] = {500};
    gyre_trace_t t = trace("chat", "", 5, k, bad, 1);
    gyre_alerts_observe(a, 0, &t);
    gyre_alerts_tick(a, 10 * S);
    CHECK_STR(seen.last.actions, "gyre took route chat's target p/m out of rotation");
    CHECK_INT(gyre_overrides_target_out(o, 0, 0), 1);
    t = trace("solo", "", 5, k, bad, 1);
    gyre_alerts_observe(a, 0, &t);
    gyre_alerts_tick(a, 11 * S);
    CHECK_STR(seen.last.labels, "{\"route\":\"solo\",\"provider\":\"p\"}");
    CHECK_STR(seen.last.actions, "gyre could not take route solo's target p/m out of rotation: it is the route's last "
                                 "usable target");
    CHECK_INT(gyre_overrides_target_out(o, 1, 0), 0);
    gyre_alerts_destroy(a);
    gyre_overrides_destroy(o);
    gyre_config_free(c);
    gyre_config_errors_dispose(&e);
}

TEST(control_alerts_a_reconfiguration_keeps_a_firing_alert_and_applies_its_action_again_by_name)
{
    gyre_config_errors_t e = {0};
    const char *yaml = TWO_KEYS "alerts:\n  - {name: l, condition: rate_limited_rate > 0, window: 10s, "
                                "by: [provider, key], action: rotate_key}\n";
    gyre_config_t *c = parse(yaml, &e);
    gyre_config_t *next = parse(yaml, &e);
    CHECK(c != NULL && next != NULL);
    gyre_overrides_t *o = gyre_overrides_create(c), *o2 = gyre_overrides_create(next);
    seen_t seen = {0};
    gyre_alerts_hooks_t h = {.event = fake_event, .event_data = &seen};
    gyre_alerts_t *a = gyre_alerts_create(c, o, 1, &h);
    const char *k[] = {"p#1"};
    int st[] = {429};
    gyre_trace_t t = trace("", "", 5, k, st, 1);
    gyre_alerts_observe(a, 0, &t);
    gyre_alerts_tick(a, 10 * S);
    CHECK_INT(gyre_overrides_key_out(o, 0, 1), 1);
    CHECK_INT(gyre_alerts_reconfigure(a, next, o2), 0);
    CHECK_INT(gyre_overrides_key_out(o2, 0, 1), 1);
    gyre_config_free(c); /* the old configuration may go once reconfigure returned */
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    gyre_alerts_render_json(a, &b);
    CHECK(strstr(b.base, "\"alerts\":[{\"rule\":\"l\",\"state\":\"firing\"") != NULL);
    gyre_buf_dispose(&b);
    CHECK_INT(seen.count, 1); /* no new event: nothing changed for anyone watching */
    gyre_alerts_destroy(a);
    gyre_overrides_destroy(o);
    gyre_overrides_destroy(o2);
    gyre_config_free(next);
    gyre_config_errors_dispose(&e);
}

TEST(control_alerts_otlp_logs_go_beside_the_traces_endpoint)
{
    char p[128];
    gyre_alerts_otlp_logs_path("/v1/traces", p, sizeof(p));
    CHECK_STR(p, "/v1/logs");
    gyre_alerts_otlp_logs_path("/otel/v1/traces?tenant=a", p, sizeof(p));
    CHECK_STR(p, "/otel/v1/logs?tenant=a");
    gyre_alerts_otlp_logs_path("/collector/", p, sizeof(p));
    CHECK_STR(p, "/collector/v1/logs");
    gyre_alerts_otlp_logs_path("/", p, sizeof(p));
    CHECK_STR(p, "/v1/logs");
}

TEST(control_alerts_an_event_is_one_otlp_log_record_with_its_labels_as_attributes)
{
    gyre_alert_event_t e;
    memset(&e, 0, sizeof(e));
    e.at_us = 1700000000123456LL;
    strcpy(e.rule, "limited");
    strcpy(e.severity, "critical");
    strcpy(e.state, "firing");
    strcpy(e.fingerprint, "00112233aabbccdd");
    strcpy(e.labels, "{\"provider\":\"p\",\"key\":\"p#0\"}");
    strcpy(e.condition, "rate_limited_rate > 20%");
    e.value = 0.5;
    strcpy(e.actions, "gyre moved provider p's traffic off key p#0 to p#1");
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 16);
    CHECK_INT(gyre_alerts_otlp_body(&e, "gyre", &b), 0);
    CHECK_MEM(b.base, b.len,
              "{\"resourceLogs\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":"
              "\"gyre\"}}]},\"scopeLogs\":[{\"scope\":{\"name\":\"gyre.alerts\"},\"logRecords\":[{\"timeUnixNano\":"
              "\"1700000000123456000\",\"severityNumber\":17,\"severityText\":\"critical\",\"body\":{\"stringValue\":"
              "\"alert limited firing: rate_limited_rate > 20% {\\\"provider\\\":\\\"p\\\",\\\"key\\\":\\\"p#0\\\"}; "
              "gyre moved provider p's traffic off key p#0 to p#1\"},\"attributes\":[{\"key\":\"gyre.alert.rule\","
              "\"value\":{\"stringValue\":\"limited\"}},{\"key\":\"gyre.alert.state\",\"value\":{\"stringValue\":"
              "\"firing\"}},{\"key\":\"gyre.alert.fingerprint\",\"value\":{\"stringValue\":\"00112233aabbccdd\"}},"
              "{\"key\":\"gyre.alert.condition\",\"value\":{\"stringValue\":\"rate_limited_rate > 20%\"}},{\"key\":"
              "\"gyre.alert.actions\",\"value\":{\"stringValue\":\"gyre moved provider p's traffic off key p#0 to "
              "p#1\"}},{\"key\":\"gyre.alert.label.provider\",\"value\":{\"stringValue\":\"p\"}},{\"key\":"
              "\"gyre.alert.label.key\",\"value\":{\"stringValue\":\"p#0\"}},{\"key\":\"gyre.alert.value\",\"value\":"
              "{\"doubleValue\":0.5}}]}]}]}]}");
    gyre_buf_dispose(&b);
}
