/*
 * libFuzzer driver for the notifiers' body composers (src/control/notify_body.c),
 * which put alert names, labels and annotations (route names, key ids, error
 * texts an upstream wrote) into bodies that Alertmanager receivers, Slack,
 * Teams and PagerDuty parse.
 *
 * Input: a first byte of flags (bit 0: the first notice is resolved, bits
 * 1-2: 1 to 3 notices in a digest, bits 3-4: truncatedAlerts), then strings
 * separated by NUL bytes: alert name, severity, fingerprint, then label and
 * annotation names and values in turn, reused for each notice.  The promises
 * checked, for any bytes:
 *   - every body is one JSON text a strict parser reads (gyre_json_valid:
 *     well-formed UTF-8, no raw control byte) and cJSON parses it;
 *   - the webhook body holds exactly the notices given in alerts[], with
 *     version "4", and truncatedAlerts as given;
 *   - Slack's text holds no raw '<' or '>' (no mention, no forged link);
 *   - PagerDuty's summary is at most 1024 bytes and its dedup_key at most 255,
 *     and the routing key is passed as given when it is printable;
 *   - the log line is made (gyre_logf escapes whatever it holds).
 */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "control/notify_body.h"

#define MAX_STRINGS (3 + 4 * GYRE_NOTICE_MAX_PAIRS)

static void check_json(const char *s)
{
    if (s == NULL || !gyre_json_valid(s, strlen(s)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    unsigned flags = data[0];
    char *copy = malloc(size);
    memcpy(copy, data + 1, size - 1);
    copy[size - 1] = '\0';
    const char *str[MAX_STRINGS];
    size_t ns = 0;
    for (char *p = copy; ns < MAX_STRINGS && p < copy + size - 1;) {
        str[ns++] = p;
        p += strlen(p) + 1;
    }
    gyre_notice_t v[3];
    const gyre_notice_t *pv[3];
    size_t n = 1 + ((flags >> 1) & 3) % 3;
    size_t truncated = (flags >> 3) & 3;
    for (size_t k = 0; k < n; k++) {
        gyre_notice_t *x = &v[k];
        memset(x, 0, sizeof(*x));
        x->alertname = ns > 0 ? str[0] : NULL;
        x->severity = ns > 1 ? str[1] : NULL;
        x->fingerprint = ns > 2 && k == 0 ? str[2] : NULL;
        x->resolved = k == 0 ? (int)(flags & 1) : (int)(k & 1);
        x->starts_us = (int64_t)(flags * 1000003LL) * (int64_t)(k + 1);
        x->ends_us = x->resolved ? x->starts_us + 5000000 : 0;
        size_t i = 3 + k; /* each notice starts its pairs one string later, so they differ */
        while (i + 1 < ns && x->nlabels < GYRE_NOTICE_MAX_PAIRS && x->nlabels < 6) {
            x->labels[x->nlabels++] = (gyre_notice_pair_t){str[i], str[i + 1]};
            i += 2;
        }
        while (i + 1 < ns && x->nannotations < GYRE_NOTICE_MAX_PAIRS) {
            x->annotations[x->nannotations++] = (gyre_notice_pair_t){str[i], str[i + 1]};
            i += 2;
        }
        pv[k] = x;
    }
    gyre_notify_body_ctx_t ctx = {ns > 3 ? str[3] : "ops", "http://127.0.0.1:8080", ns > 4 ? str[4] : "gw"};

    char *s = gyre_notify_body_webhook(&ctx, pv, n, truncated);
    check_json(s);
    cJSON *j = cJSON_Parse(s);
    if (j == NULL || cJSON_GetArraySize(cJSON_GetObjectItem(j, "alerts")) != (int)n ||
        !cJSON_IsString(cJSON_GetObjectItem(j, "version")) ||
        strcmp(cJSON_GetObjectItem(j, "version")->valuestring, "4") != 0 ||
        cJSON_GetObjectItem(j, "truncatedAlerts")->valueint != (int)truncated)
        abort();
    cJSON_Delete(j);
    free(s);

    s = gyre_notify_body_slack(&ctx, pv, n, truncated);
    check_json(s);
    j = cJSON_Parse(s);
    const cJSON *text = cJSON_GetObjectItem(j, "text");
    if (!cJSON_IsString(text) || strchr(text->valuestring, '<') != NULL || strchr(text->valuestring, '>') != NULL)
        abort();
    cJSON_Delete(j);
    free(s);

    s = gyre_notify_body_teams(&ctx, pv, n, truncated);
    check_json(s);
    j = cJSON_Parse(s);
    if (j == NULL)
        abort();
    cJSON_Delete(j);
    free(s);

    const char *key = "R0UTINGKEY0123456789abcdef012345";
    for (size_t k = 0; k < n; k++) {
        s = gyre_notify_body_pagerduty(&ctx, key, pv[k]);
        check_json(s);
        j = cJSON_Parse(s);
        const cJSON *dk = cJSON_GetObjectItem(j, "dedup_key");
        const cJSON *rk = cJSON_GetObjectItem(j, "routing_key");
        const cJSON *sum = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "payload"), "summary");
        if (!cJSON_IsString(dk) || strlen(dk->valuestring) > 255 || !cJSON_IsString(rk) ||
            strcmp(rk->valuestring, key) != 0 || (sum != NULL && strlen(sum->valuestring) > 1024) ||
            (!pv[k]->resolved && !cJSON_IsString(sum)))
            abort();
        cJSON_Delete(j);
        free(s);
        /* The log line may hold any byte: gyre_logf escapes it as a whole (common/log.h).  It must be made. */
        s = gyre_notify_body_log(&ctx, pv[k]);
        if (s == NULL)
            abort();
        free(s);
    }
    free(copy);
    return 0;
}
