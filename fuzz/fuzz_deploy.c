/*
 * libFuzzer driver for the deployments' parsers and composer (src/loop/deploy.h, serve.h): the begin body of
 * POST /api/deploy/{route}/begin, llama.cpp's GET /lora-adapters answer (a serving provider's bytes), and the
 * canary route composed from the route in force (whose JSON comes from the config and the admin API).
 *
 * The input is read as all three.  The promises checked:
 *   - a parsed request has its three required strings, at most 8 ramp steps from 1 to 100 and at most 16
 *     metrics; a refused one names the field (or says the body is not an object);
 *   - the llama.cpp reader answers 0, -ENOENT or -EPROTO, and an id it finds is 0..1000000;
 *   - a composed route is one JSON object named as asked, whose targets hold the candidate: alone at 100 %,
 *     with weight percent x (the others' weights, or 1) below it, and strategy "weighted".
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loop/deploy.h"
#include "loop/serve.h"

static void check_route(const char *json, unsigned percent)
{
    cJSON *r = cJSON_Parse(json);
    if (!cJSON_IsObject(r))
        abort();
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(r, "name");
    const cJSON *targets = cJSON_GetObjectItemCaseSensitive(r, "targets");
    if (!cJSON_IsString(name) || strcmp(name->valuestring, "chat") != 0 || !cJSON_IsArray(targets))
        abort();
    int found = 0, n = cJSON_GetArraySize(targets);
    const cJSON *t;
    cJSON_ArrayForEach(t, targets)
    {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(t, "provider");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(t, "model");
        found += cJSON_IsString(p) && cJSON_IsString(m) && strcmp(p->valuestring, "cand") == 0 &&
                 strcmp(m->valuestring, "ft-1") == 0;
    }
    if (found != 1 || (percent >= 100 && n != 1))
        abort();
    if (percent < 100) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(r, "strategy");
        if (!cJSON_IsString(s) || strcmp(s->valuestring, "weighted") != 0)
            abort();
    }
    cJSON_Delete(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    gyre_deploy_request_t q;
    char param[64], err[512];
    if (gyre_deploy_request_parse(body, size, &q, param, sizeof(param), err, sizeof(err)) == 0) {
        if (q.run_id == NULL || q.provider == NULL || q.model == NULL || q.conf.nramp > GYRE_LOOP_MAX_RAMP ||
            q.conf.nmetrics > GYRE_LOOP_MAX_SCORERS || q.serve.provider == NULL)
            abort();
        for (size_t i = 0; i < q.conf.nramp; i++)
            if (q.conf.ramp[i] < 1 || q.conf.ramp[i] > 100)
                abort();
        gyre_deploy_request_dispose(&q);
    } else if (err[0] == '\0') {
        abort();
    }

    long id = -1;
    int r = gyre_serve_llamacpp_id(body, size, "/models/a.gguf", &id);
    if (r != 0 && r != -ENOENT && r != -EPROTO)
        abort();
    if (r == 0 && (id < 0 || id > 1000000))
        abort();

    unsigned percent = size > 0 ? data[0] % 101 + 1 : 5;
    char *route = gyre_deploy_route_at(body, size, "chat", "cand", "ft-1", percent > 100 ? 100 : percent);
    if (route != NULL) {
        check_route(route, percent);
        cJSON_free(route);
    }
    return 0;
}
