/* A deployment asked for over HTTP: POST /api/deploy/{route}/begin's body (deploy.h). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop/deploy.h"

/* A duration as milliseconds: a number, or a number followed by ms, s, m or h. */
static int duration_ms(const cJSON *v, uint64_t *out)
{
    if (cJSON_IsNumber(v)) {
        if (!(v->valuedouble >= 0 && v->valuedouble < 1e15))
            return -1;
        *out = (uint64_t)v->valuedouble;
        return 0;
    }
    if (!cJSON_IsString(v))
        return -1;
    char *end = NULL;
    double d = strtod(v->valuestring, &end);
    if (end == v->valuestring || !(d >= 0 && d < 1e12))
        return -1;
    double mul = strcmp(end, "ms") == 0  ? 1
                 : strcmp(end, "s") == 0 ? 1e3
                 : strcmp(end, "m") == 0 ? 6e4
                 : strcmp(end, "h") == 0 ? 3.6e6
                                         : -1;
    if (mul < 0)
        return -1;
    *out = (uint64_t)(d * mul);
    return 0;
}

void gyre_deploy_request_dispose(gyre_deploy_request_t *r)
{
    cJSON_Delete(r->doc);
    r->doc = NULL;
}

int gyre_deploy_request_parse(const char *body, size_t len, gyre_deploy_request_t *out, char *param, size_t plen,
                              char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->conf = (gyre_deploy_conf_t){.ramp = {5, 25, 100},
                                     .nramp = 3,
                                     .min_requests = 50,
                                     .step_time_ms = 600000,
                                     .max_drop = 0.02,
                                     .alpha = 0.05,
                                     .rollback_on_alert = 1};
    out->watch_window_ms = 3600000;
    out->conf.metrics = out->metrics;
    snprintf(param, plen, "%s", "");
    cJSON *b = len <= GYRE_DEPLOY_REQUEST_MAX ? cJSON_ParseWithLength(body != NULL ? body : "", len) : NULL;
    if (!cJSON_IsObject(b)) {
        cJSON_Delete(b);
        snprintf(err, errlen, "the body must be a JSON object of at most %zu bytes", GYRE_DEPLOY_REQUEST_MAX);
        return -EINVAL;
    }
    gyre_deploy_conf_t *c = &out->conf;
    const char *bad = NULL, *why = NULL;
    const cJSON *e, *x;
    cJSON_ArrayForEach(e, b)
    {
        const char *k = e->string != NULL ? e->string : "";
        if (strcmp(k, "run_id") == 0 || strcmp(k, "provider") == 0 || strcmp(k, "model") == 0) {
            if (!cJSON_IsString(e) || e->valuestring[0] == '\0')
                bad = k, why = "must be a non-empty string";
            else
                *(strcmp(k, "run_id") == 0     ? &out->run_id
                  : strcmp(k, "provider") == 0 ? &out->provider
                                               : &out->model) = e->valuestring;
        } else if (strcmp(k, "ramp") == 0) {
            c->nramp = 0;
            if (!cJSON_IsArray(e))
                bad = k, why = "must be an array of percentages";
            const cJSON *list = cJSON_IsArray(e) ? e : NULL;
            cJSON_ArrayForEach(x, list)
            {
                if (!cJSON_IsNumber(x) || c->nramp == GYRE_LOOP_MAX_RAMP || !(x->valuedouble >= 1) ||
                    x->valuedouble > 100 || x->valuedouble != floor(x->valuedouble)) {
                    bad = k, why = "must be at most 8 whole percentages from 1 to 100";
                    break;
                }
                c->ramp[c->nramp++] = (unsigned)x->valuedouble;
            }
        } else if (strcmp(k, "min_requests") == 0) {
            if (!cJSON_IsNumber(e) || !(e->valuedouble >= 0) || e->valuedouble > 1e9 ||
                e->valuedouble != floor(e->valuedouble))
                bad = k, why = "must be a whole number up to 1000000000";
            else
                c->min_requests = (unsigned)e->valuedouble;
        } else if (strcmp(k, "step_time") == 0 || strcmp(k, "watch_window") == 0) {
            if (duration_ms(e, strcmp(k, "step_time") == 0 ? &c->step_time_ms : &out->watch_window_ms) != 0)
                bad = k, why = "must be milliseconds or a duration such as 500ms, 30s, 10m, 1h";
        } else if (strcmp(k, "max_drop") == 0 || strcmp(k, "alpha") == 0) {
            if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble))
                bad = k, why = "must be a number";
            else
                *(strcmp(k, "alpha") == 0 ? &c->alpha : &c->max_drop) = e->valuedouble;
        } else if (strcmp(k, "rollback_on_alert") == 0) {
            if (!cJSON_IsBool(e))
                bad = k, why = "must be true or false";
            else
                c->rollback_on_alert = cJSON_IsTrue(e);
        } else if (strcmp(k, "metrics") == 0) {
            c->nmetrics = 0;
            if (!cJSON_IsArray(e))
                bad = k, why = "must be an array of scorer names";
            const cJSON *list = cJSON_IsArray(e) ? e : NULL;
            cJSON_ArrayForEach(x, list)
            {
                if (!cJSON_IsString(x) || x->valuestring[0] == '\0' || strlen(x->valuestring) > 128 ||
                    c->nmetrics == GYRE_LOOP_MAX_SCORERS) {
                    bad = k, why = "must be at most 16 scorer names";
                    break;
                }
                out->metrics[c->nmetrics++] = x->valuestring;
            }
        } else if (strcmp(k, "adapter") == 0) {
            const cJSON *kind = cJSON_GetObjectItemCaseSensitive(e, "kind");
            const cJSON *ap = cJSON_GetObjectItemCaseSensitive(e, "provider");
            const cJSON *an = cJSON_GetObjectItemCaseSensitive(e, "name");
            if (!cJSON_IsObject(e) || !cJSON_IsString(kind) || (ap != NULL && !cJSON_IsString(ap)) ||
                (an != NULL && !cJSON_IsString(an)))
                bad = k, why = "must be {\"kind\": none|vllm|llamacpp, \"provider\": NAME, \"name\": NAME}";
            else if (strcmp(kind->valuestring, "vllm") == 0)
                out->serve.adapter = GYRE_ADAPTER_VLLM;
            else if (strcmp(kind->valuestring, "llamacpp") == 0)
                out->serve.adapter = GYRE_ADAPTER_LLAMACPP;
            else if (strcmp(kind->valuestring, "none") == 0)
                out->serve.adapter = GYRE_ADAPTER_NONE;
            else
                bad = "adapter.kind", why = "must be none, vllm or llamacpp";
            if (bad == NULL) {
                out->serve.provider = ap != NULL ? ap->valuestring : NULL;
                out->serve.name = an != NULL ? an->valuestring : NULL;
            }
        } else {
            bad = k, why = "is not a field of a deployment (known: run_id, provider, model, ramp, min_requests, "
                           "step_time, metrics, max_drop, alpha, rollback_on_alert, watch_window, adapter)";
        }
        if (bad != NULL)
            break;
    }
    if (bad == NULL && (out->run_id == NULL || out->provider == NULL || out->model == NULL)) {
        bad = out->run_id == NULL ? "run_id" : out->provider == NULL ? "provider" : "model";
        why = "is required";
    }
    if (bad != NULL) {
        snprintf(param, plen, "%.*s", (int)(plen > 0 ? plen - 1 : 0), bad);
        snprintf(err, errlen, "%.64s: %s", bad, why);
        cJSON_Delete(b);
        memset(out, 0, sizeof(*out));
        return -EINVAL;
    }
    if (out->serve.provider == NULL)
        out->serve.provider = (char *)out->provider;
    out->doc = b;
    return 0;
}
