/*
 * libFuzzer driver for the eval gate's readers (src/loop/gate.c,
 * gate_run.c): a stored report (gyre gate verify reads any file it is
 * given), a held-out line of a dataset, a dataset's manifest, and the
 * report writer read back by the report reader.
 *
 * The first byte picks what the rest is:
 *   0: a report for gyre_gate_decide_report: it returns 1, 0 or -EINVAL,
 *      and the same again on the same bytes;
 *   1: a held-out line for gyre_gate_split_line: on success the messages are
 *      a JSON array one shorter than the line's;
 *   2: a manifest for gyre_gate_manifest_clusters of 4 lines: 1, 0 or
 *      -EINVAL, and every cluster a non-empty string;
 *   3: observations drawn from the bytes (up to 12 lines, 2 scorers, rules
 *      of every kind): the report gyre_gate_decide writes is read back by
 *      gyre_gate_decide_report with the same verdict.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "loop/gate.h"

static double draw(const uint8_t **p, const uint8_t *end)
{
    if (*p >= end)
        return 0;
    uint8_t b = *(*p)++;
    return b == 255 ? NAN : (double)b / 254.0;
}

static void roundtrip(const uint8_t *p, const uint8_t *end)
{
    static char *names[] = {"a", "b"};
    gyre_gate_rule_t rules[5] = {
        {.kind = GYRE_GATE_SCORER, .scorer = "a", .max_drop = 0.01},
        {.kind = GYRE_GATE_COST, .max_increase = 0.1},
        {.kind = GYRE_GATE_LATENCY_P95, .max_increase = 0.2},
        {.kind = GYRE_GATE_ERROR_RATE, .max_increase = 0.05},
        {.kind = GYRE_GATE_CLUSTER, .max_drop = 0.05},
    };
    size_t nrules = p < end ? *p++ % 6 : 0;
    gyre_gate_conf_t conf = {.scorers = names, .nscorers = 2, .rules = rules, .nrules = nrules,
                             .confidence = 0.9, .resamples = 25, .seed = p < end ? *p++ : 1};
    gyre_gate_obs_t obs[12];
    size_t n = 0;
    memset(obs, 0, sizeof(obs));
    while (n < 12 && p < end) {
        gyre_gate_obs_t *o = &obs[n];
        o->line = (unsigned)n + 1;
        snprintf(o->cluster, sizeof(o->cluster), "%d", *p++ % 3 - 1);
        gyre_gate_side_t *s[2] = {&o->cand, &o->inc};
        for (int k = 0; k < 2; k++) {
            s[k]->error = p < end ? (*p & 1) : 0;
            s[k]->latency_ms = draw(&p, end) * 1000;
            if (isnan(s[k]->latency_ms))
                s[k]->latency_ms = 1;
            s[k]->cost_usd = draw(&p, end);
            s[k]->scores[0] = draw(&p, end);
            s[k]->scores[1] = draw(&p, end);
        }
        n++;
    }
    gyre_gate_input_t in = {.candidate = "c/m", .incumbent = "i/m", .dataset = "d", .conf = &conf, .obs = obs,
                            .nobs = n};
    gyre_buf_t j, md;
    gyre_buf_init(&j, 1 << 20);
    gyre_buf_init(&md, 1 << 20);
    int passed = -1;
    char err[256];
    int rc = gyre_gate_decide(&in, &j, &md, &passed, err, sizeof(err));
    if (n == 0) {
        if (rc != -EINVAL)
            abort();
    } else {
        if (rc != 0 || (passed != 0 && passed != 1))
            abort();
        char err2[256] = "";
        int again = gyre_gate_decide_report(j.base, j.len, err2, sizeof(err2));
        if (again != passed || err2[0] != '\0') {
            fprintf(stderr, "decide %d, from the report %d (%s)\n%s\n", passed, again, err2, j.base);
            abort();
        }
    }
    gyre_buf_dispose(&j);
    gyre_buf_dispose(&md);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1 << 20))
        return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    char err[256];
    switch (data[0] % 4) {
    case 0: {
        int a = gyre_gate_decide_report(text, len, err, sizeof(err));
        int b = gyre_gate_decide_report(text, len, err, sizeof(err));
        if (a != b || (a != 0 && a != 1 && a != -EINVAL))
            abort();
        break;
    }
    case 1: {
        gyre_buf_t m, t, r;
        gyre_buf_init(&m, 1 << 20);
        gyre_buf_init(&t, 1 << 20);
        gyre_buf_init(&r, 1 << 20);
        if (gyre_gate_split_line(text, len, &m, &t, &r, err, sizeof(err)) == 0) {
            cJSON *line = cJSON_ParseWithLength(text, len);
            cJSON *msgs = cJSON_Parse(m.base);
            if (!cJSON_IsArray(msgs) ||
                cJSON_GetArraySize(msgs) + 1 != cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(line, "messages")))
                abort();
            cJSON_Delete(msgs);
            cJSON_Delete(line);
        }
        gyre_buf_dispose(&m);
        gyre_buf_dispose(&t);
        gyre_buf_dispose(&r);
        break;
    }
    case 2: {
        char cl[4][GYRE_GATE_CLUSTER_NAME];
        int rc = gyre_gate_manifest_clusters(text, len, cl, 4);
        if (rc != 1 && rc != 0 && rc != -EINVAL)
            abort();
        for (int i = 0; i < 4; i++)
            if (cl[i][0] == '\0')
                abort();
        break;
    }
    default:
        roundtrip(data + 1, data + size);
        break;
    }
    return 0;
}
