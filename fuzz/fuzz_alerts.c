/*
 * libFuzzer driver for the alert engine's samples and what it writes
 * (src/control/alerts.c, alerts_act.c, alerts_otlp.c): a request's route,
 * agent and key id come from clients and providers, and they become label
 * values in GET /api/alerts, in /metrics, in the log line, in the notices
 * and in the OTLP log records.
 *
 * The input is split on NUL bytes into label values (route, agent, key id,
 * in turn) and one status byte per request; the requests are observed on
 * two workers, the engine ticks, and what it renders is checked:
 *   - GET /api/alerts' body is valid JSON, and every event's OTLP body is too;
 *   - every label value in /metrics lies between quotes with no '"', '\' or
 *     newline inside (the exposition format's escapes are never needed);
 *   - no rule or label set beyond the bounds is made (the renders stay within
 *     their buffers' maxima).
 */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/alerts.h"
#include "control/alerts_otlp.h"

static const char yaml[] = "providers:\n"
                           "  - {name: p, kind: openai, base_url: 'http://h/v1', keys: [ka-0123456789, kb-0123456789]}\n"
                           "alerts:\n"
                           "  - {name: a, condition: error_rate > 10%, window: 5s, by: [route, provider, key, agent], "
                           "action: log}\n"
                           "  - {name: b, condition: request_rate > 0, window: 1s, by: agent}\n"
                           "  - {name: c, condition: rate_limited_rate > 0, window: 2s, by: [provider, key], "
                           "action: rotate_key}\n";

static gyre_config_t *config;
static int events_ok = 1;

static void on_event(void *data, const gyre_alert_event_t *e)
{
    (void)data;
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    if (gyre_alerts_otlp_body(e, "gyre", &b) != 0)
        abort();
    cJSON *j = cJSON_ParseWithLength(b.base, b.len);
    if (j == NULL)
        events_ok = 0;
    cJSON_Delete(j);
    gyre_buf_dispose(&b);
    cJSON *l = cJSON_Parse(e->labels);
    if (!cJSON_IsObject(l))
        events_ok = 0;
    cJSON_Delete(l);
}

static void check_metrics(const char *s, size_t n)
{
    /* Each sample line: NAME{k="v",...} VALUE; inside the quotes nothing needs escaping. */
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '"')
            continue;
        size_t j = i + 1;
        while (j < n && s[j] != '"') {
            if (s[j] == '\\' || s[j] == '\n')
                abort();
            j++;
        }
        if (j == n)
            abort();
        i = j;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (config == NULL) {
        gyre_config_errors_t errs = {0};
        config = gyre_config_parse("fuzz", yaml, strlen(yaml), &errs);
        if (config == NULL)
            abort();
    }
    gyre_overrides_t *o = gyre_overrides_create(config);
    gyre_alerts_hooks_t h = {.event = on_event};
    gyre_alerts_t *a = gyre_alerts_create(config, o, 2, &h);
    char *copy = malloc(size + 1);
    memcpy(copy, data, size);
    copy[size] = '\0';
    /* Fields: route, agent, key id, status byte; repeated. */
    const char *f[3];
    size_t fl[3];
    size_t pos = 0;
    unsigned n = 0;
    while (pos < size) {
        for (int k = 0; k < 3; k++) {
            f[k] = copy + pos;
            size_t e = pos;
            while (e < size && copy[e] != '\0')
                e++;
            fl[k] = e - pos;
            pos = e < size ? e + 1 : e;
        }
        int status = pos < size ? (unsigned char)copy[pos++] : 200;
        static const int statuses[] = {200, 429, 500, 0};
        gyre_trace_t t;
        memset(&t, 0, sizeof(t));
        t.route = (gyre_tstr_t){(char *)f[0], fl[0]};
        t.agent = (gyre_tstr_t){(char *)f[1], fl[1]};
        t.provider = (gyre_tstr_t){"p", 1};
        t.attempts[0].provider = t.provider;
        t.attempts[0].key_id = (gyre_tstr_t){(char *)f[2], fl[2]};
        t.attempts[0].status = statuses[status % 4];
        t.nattempts = status % 5 == 4 ? 0 : 1;
        t.status = t.attempts[0].status;
        t.started_us = 1000;
        t.ended_us = 1000 + (int64_t)status * 10000;
        t.ttft_us = status % 2 ? 500 : -1;
        t.prompt_tokens = status;
        t.completion_tokens = -1;
        t.cost_usd = status % 3 ? 0.001 * status : __builtin_nan("");
        gyre_alerts_observe(a, n++ % 2, &t);
    }
    gyre_alerts_tick(a, 100 * 1000000LL);
    gyre_alerts_tick(a, 110 * 1000000LL);
    gyre_buf_t b;
    gyre_buf_init(&b, 64 << 20);
    if (gyre_alerts_render_json(a, &b) != 0)
        abort();
    cJSON *j = cJSON_ParseWithLength(b.base, b.len);
    if (j == NULL)
        abort();
    cJSON_Delete(j);
    gyre_buf_dispose(&b);
    gyre_buf_init(&b, 64 << 20);
    if (gyre_alerts_render_metrics(a, &b) != 0)
        abort();
    check_metrics(b.base, b.len);
    gyre_buf_dispose(&b);
    if (!events_ok)
        abort();
    gyre_alerts_destroy(a);
    gyre_overrides_destroy(o);
    free(copy);
    return 0;
}
