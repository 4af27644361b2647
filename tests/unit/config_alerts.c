/*
 * `alerts:` (src/config/alerts.c): the ClawPulse shape loads as written, the
 * defaults, every unit, and the errors, each naming the rule and the field.
 */
#include <math.h>

#include "config_test.h"

TEST(config_alerts_the_clawpulse_shape_loads_as_written)
{
    gyre_config_errors_t e = {0};
    gyre_config_t *c = parse(PROVIDER_P "alerts:\n"
                                        "  - name: high_latency\n"
                                        "    condition: p95_latency > 5000ms\n"
                                        "    action: page_oncall\n"
                                        "  - name: provider_degradation\n"
                                        "    condition: error_rate > 5%\n"
                                        "    action: failover_to_secondary\n",
                             &e);
    CHECK(c != NULL);
    CHECK_INT(e.count, 0);
    CHECK_INT(c->nalerts, 2);
    const gyre_alert_rule_conf_t *r = &c->alerts[0];
    CHECK_STR(r->name, "high_latency");
    CHECK_STR(r->condition, "p95_latency > 5000ms");
    CHECK_INT(r->signal, GYRE_SIG_P95_LATENCY);
    CHECK_INT(r->op, GYRE_ALERT_GT);
    CHECK(r->threshold == 5000);
    CHECK_INT(r->window_us, 60000000);
    CHECK_INT(r->for_us, 0);
    CHECK_INT(r->resolve_for_us, 30000000);
    CHECK_INT(r->min_firing_us, 60000000);
    CHECK_STR(r->severity, "warning");
    CHECK_INT(r->by, 0);
    CHECK_INT(r->nactions, 1);
    CHECK_INT(r->actions[0].kind, GYRE_ACTION_NOTIFY);
    CHECK_STR(r->actions[0].name, "page_oncall");
    r = &c->alerts[1];
    CHECK_INT(r->signal, GYRE_SIG_ERROR_RATE);
    CHECK(r->threshold == 0.05);
    CHECK_INT(r->actions[0].kind, GYRE_ACTION_FAILOVER);
    /* Without by:, a rule is grouped by what its actions act on. */
    CHECK_INT(r->by, GYRE_ALERT_BY_ROUTE | GYRE_ALERT_BY_PROVIDER);
    gyre_config_free(c);
    gyre_config_errors_dispose(&e);
}

TEST(config_alerts_every_field_and_action_and_unit)
{
    gyre_config_errors_t e = {0};
    gyre_config_t *c = parse(PROVIDER_P "alerts:\n"
                                        "  - name: keys\n"
                                        "    condition: rate_limited_rate>=0.2\n"
                                        "    window: 5m\n"
                                        "    for: 1m\n"
                                        "    by: [provider, key, route, agent]\n"
                                        "    severity: critical\n"
                                        "    action: rotate_key\n"
                                        "    actions: [log, ops, open_circuit]\n"
                                        "  - {name: slow, condition: 'p99_latency <= 2.5s', for: 10s, resolve_for: 0, "
                                        "min_firing: 0}\n"
                                        "  - {name: spend, condition: cost_per_hour > $12.5}\n"
                                        "  - {name: spend2, condition: cost_per_hour < 3$}\n"
                                        "  - {name: tokens, condition: tokens_per_minute > 100000, by: agent}\n"
                                        "  - {name: lag, condition: trace_log_lag > 1048576}\n",
                             &e);
    CHECK(c != NULL);
    CHECK_INT(e.count, 0);
    const gyre_alert_rule_conf_t *r = &c->alerts[0];
    CHECK_INT(r->op, GYRE_ALERT_GE);
    CHECK(r->threshold == 0.2);
    CHECK_INT(r->window_us, 300000000);
    CHECK_INT(r->for_us, 60000000);
    CHECK_INT(r->resolve_for_us, 60000000); /* resolve_for defaults to for */
    CHECK_INT(r->by, GYRE_ALERT_BY_ROUTE | GYRE_ALERT_BY_PROVIDER | GYRE_ALERT_BY_KEY | GYRE_ALERT_BY_AGENT);
    CHECK_STR(r->severity, "critical");
    CHECK_INT(r->nactions, 4);
    CHECK_INT(r->actions[0].kind, GYRE_ACTION_ROTATE_KEY);
    CHECK_INT(r->actions[1].kind, GYRE_ACTION_LOG);
    CHECK_INT(r->actions[2].kind, GYRE_ACTION_NOTIFY);
    CHECK_STR(r->actions[2].name, "ops");
    CHECK_INT(r->actions[3].kind, GYRE_ACTION_OPEN_CIRCUIT);
    r = &c->alerts[1];
    CHECK_INT(r->op, GYRE_ALERT_LE);
    CHECK(r->threshold == 2500);
    CHECK_INT(r->resolve_for_us, 0);
    CHECK_INT(r->min_firing_us, 0);
    CHECK(c->alerts[2].threshold == 12.5);
    CHECK_INT(c->alerts[3].op, GYRE_ALERT_LT);
    CHECK(c->alerts[3].threshold == 3);
    CHECK_INT(c->alerts[4].by, GYRE_ALERT_BY_AGENT);
    CHECK_INT(c->alerts[5].signal, GYRE_SIG_TRACE_LOG_LAG);
    CHECK(c->alerts[5].threshold == 1048576);
    gyre_config_free(c);
    gyre_config_errors_dispose(&e);
}

TEST(config_alerts_an_unknown_signal_names_the_rule_the_field_and_the_known_ones)
{
    CHECK_ERRORS("alerts:\n"
                 "  - name: a\n"
                 "    condition: p95_latency > 1ms\n"
                 "  - name: b\n"
                 "    condition: p95_latncy > 5000ms\n",
                 "t.yaml:5: alerts[1].condition: unknown signal 'p95_latncy' (known: p50_latency, p95_latency, "
                 "p99_latency, ttft_p95, error_rate, rate_limited_rate, request_rate, tokens_per_minute, "
                 "cost_per_hour, inflight, queue_depth, trace_log_lag, trace_spool_bytes)\n");
}

TEST(config_alerts_a_unit_that_does_not_fit_the_signal_is_an_error)
{
    CHECK_ERRORS("alerts:\n"
                 "  - {name: a, condition: error_rate > 5ms}\n"
                 "  - {name: b, condition: p95_latency > 5%}\n"
                 "  - {name: c, condition: error_rate > 150%}\n"
                 "  - {name: d, condition: request_rate > 5s}\n"
                 "  - {name: e, condition: cost_per_hour > 5%}\n",
                 "t.yaml:2: alerts[0].condition: 'error_rate > 5ms': error_rate is a share of the calls: write a "
                 "percentage (5%) or a fraction (0.05)\n"
                 "t.yaml:3: alerts[1].condition: 'p95_latency > 5%': p95_latency is a latency: write ms or s (5000ms, "
                 "5s)\n"
                 "t.yaml:4: alerts[2].condition: 'error_rate > 150%': error_rate is a share of the calls, at most 100% "
                 "(1.0)\n"
                 "t.yaml:5: alerts[3].condition: 'request_rate > 5s': request_rate is requests per second: a plain "
                 "number\n"
                 "t.yaml:6: alerts[4].condition: 'cost_per_hour > 5%': cost_per_hour is USD per hour: write $5 or 5\n");
}

TEST(config_alerts_a_malformed_condition_says_what_was_expected)
{
    CHECK_ERRORS("alerts:\n"
                 "  - {name: a, condition: error_rate = 5%}\n"
                 "  - {name: b, condition: error_rate > much}\n"
                 "  - {name: c, condition: error_rate > 5% or more}\n"
                 "  - {name: d, condition: '> 5'}\n",
                 "t.yaml:2: alerts[0].condition: expected a comparison (>, >=, < or <=) after 'error_rate' in "
                 "'error_rate = 5%'\n"
                 "t.yaml:3: alerts[1].condition: expected a number >= 0 after the comparison in 'error_rate > much'\n"
                 "t.yaml:4: alerts[2].condition: unexpected '% or more' after the value in 'error_rate > 5% or more' "
                 "(units: ms, s, %, $)\n"
                 "t.yaml:5: alerts[3].condition: expected SIGNAL OP VALUE, for example 'p95_latency > 5000ms', found "
                 "'> 5'\n");
}

TEST(config_alerts_missing_fields_unknown_fields_and_duplicate_names)
{
    CHECK_ERRORS("alerts:\n"
                 "  - {condition: inflight > 10}\n"
                 "  - {name: b}\n"
                 "  - {name: c, condition: inflight > 10, colour: red}\n"
                 "  - {name: c, condition: inflight > 10}\n",
                 "t.yaml:2: alerts[0]: needs a 'name'\n"
                 "t.yaml:3: alerts[1]: needs a 'condition' (for example p95_latency > 5000ms)\n"
                 "t.yaml:4: alerts[2]: unknown field 'colour' (known: name, condition, window, for, resolve_for, "
                 "min_firing, by, severity, action, actions)\n"
                 "t.yaml:5: alerts[3].name: 'c' is also the name of alerts[2]: rule names are unique\n");
}

TEST(config_alerts_by_must_hold_what_the_actions_act_on)
{
    CHECK_ERRORS("alerts:\n"
                 "  - {name: a, condition: rate_limited_rate > 5%, by: [provider], action: rotate_key}\n"
                 "  - {name: b, condition: error_rate > 5%, by: [route, colour]}\n"
                 "  - {name: c, condition: inflight > 100, by: [route]}\n"
                 "  - {name: d, condition: queue_depth > 100, action: open_circuit}\n",
                 "t.yaml:2: alerts[0].by: rotate_key needs by: to include provider and key\n"
                 "t.yaml:3: alerts[1].by: unknown dimension 'colour' (known: route, provider, key, agent)\n"
                 "t.yaml:4: alerts[2].by: inflight is the whole gateway's figure: it has no route, provider, key or "
                 "agent\n"
                 "t.yaml:5: alerts[3].actions: queue_depth is the whole gateway's figure: failover_to_secondary, "
                 "rotate_key and open_circuit need a provider to act on\n");
}

TEST(config_alerts_windows_are_whole_seconds_up_to_a_day)
{
    CHECK_ERRORS("alerts:\n"
                 "  - {name: a, condition: error_rate > 5%, window: 500ms}\n"
                 "  - {name: b, condition: error_rate > 5%, window: 2d}\n"
                 "  - {name: c, condition: error_rate > 5%, for: soon}\n",
                 "t.yaml:2: alerts[0].window: a window is whole seconds, from 1s to 24h; found '500ms'\n"
                 "t.yaml:3: alerts[1].window: a window is whole seconds, from 1s to 24h; found '2d'\n"
                 "t.yaml:4: alerts[2].for: expected a duration such as 30d, 12h, 15m, 90s or 500ms, found 'soon'\n");
}

TEST(config_alerts_signal_names_round_trip)
{
    for (int i = 0; i < GYRE_SIG_COUNT; i++)
        CHECK_INT(gyre_alert_signal_lookup(gyre_alert_signal_name((gyre_alert_signal_t)i)), i);
    CHECK_INT(gyre_alert_signal_lookup("p95"), -1);
}
