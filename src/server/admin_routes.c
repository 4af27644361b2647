/*
 * /api/admin/routes: the routes in force, and changes to them while gyre
 * serves (src/server/live.h).  A change is a whole route in the shape of a
 * YAML route entry (JSON is YAML: the file's route parser reads it, with the
 * file's checks), kept in the control-plane state as an overlay on the
 * file's route of that name, and put in force as a new generation of the
 * configuration: requests in flight finish on the routes they began with.
 *
 *   GET    /api/admin/routes                  every route in force
 *   PUT    /api/admin/routes/NAME             a whole route (replaces, or adds)
 *   PATCH  /api/admin/routes/NAME             {"targets": [...]} or {"weights": {"PROVIDER/MODEL": N}}
 *   DELETE /api/admin/routes/NAME/override    back to the file's route (or none)
 *
 * Errors name the field; a route the configuration refuses answers 400 with
 * every problem in "errors", as check-config prints them.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/wire.h"
#include "proxy/respond.h"
#include "server/admin.h"
#include "server/live.h"

#define ROUTES_JSON_MAX ((size_t)8 << 20)

/* The route's name from the path: the rule of a route name in the config, so nothing else reaches the state. */
static int route_name(gyre_admin_req_t *a, char *out, size_t size)
{
    char why[96];
    if (a->idlen >= size || gyre_wire_name_problem(a->id, a->idlen, why, sizeof(why)) != NULL ||
        memchr(a->id, '/', a->idlen) != NULL) {
        gyre_admin_error(a->req, 400, "invalid_route_name", "name",
                        "the route name in the path must be 1 to %d printable characters without '/'",
                        GYRE_WIRE_NAME_MAX);
        return -1;
    }
    memcpy(out, a->id, a->idlen);
    out[a->idlen] = '\0';
    return 0;
}

/* The outcome of gyre_live_set_route, answered: the route in force (200), or why not. */
/* A 400 listing every problem, one a line, as check-config prints them: the first in the message, all in
 * "errors". */
static void respond_problems(h2o_req_t *req, const char *code, const char *err)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 256 * 1024);
    const char *nl = strchr(err, '\n');
    gyre_buf_appends(&b, "{\"error\":{\"message\":");
    gyre_buf_append_json_string(&b, err, nl != NULL ? (size_t)(nl - err) : strlen(err));
    gyre_buf_appendf(&b, ",\"type\":\"invalid_request_error\",\"code\":\"%s\",\"param\":null,\"errors\":[", code);
    for (const char *p = err; *p != '\0';) {
        const char *e = strchr(p, '\n');
        size_t len = e != NULL ? (size_t)(e - p) : strlen(p);
        gyre_buf_appends(&b, p == err ? "" : ",");
        gyre_buf_append_json_string(&b, p, len);
        p += len + (e != NULL);
    }
    gyre_buf_appends(&b, "]}}");
    if (gyre_buf_failed(&b))
        gyre_admin_error(req, 400, code, NULL, "%.700s", err);
    else
        gyre_respond_json(req, 400, b.base, b.len);
    gyre_buf_dispose(&b);
}

static void respond_change(gyre_admin_req_t *a, const char *name, int rc, const char *err)
{
    h2o_req_t *req = a->req;
    if (rc == 0) {
        char *json = gyre_live_route_json(a->worker->server, name);
        if (json == NULL) /* removed, and the file has no route of that name */
            gyre_respond_json(req, 200, H2O_STRLIT("{\"deleted\":true}"));
        else
            gyre_respond_json(req, 200, json, strlen(json));
        free(json);
        return;
    }
    if (rc == -ENOTSUP) {
        gyre_admin_error(req, 404, "state_not_configured", NULL, "%s", err);
        return;
    }
    if (rc == -ENOENT) {
        gyre_admin_error(req, 404, "no_override", NULL, "%s", err);
        return;
    }
    if (rc != -EINVAL) {
        gyre_admin_error(req, 500, "state_error", NULL, "%s", err);
        return;
    }
    respond_problems(req, "invalid_route", err);
}

/* The body as a JSON object, or NULL after answering 400. */
static cJSON *body_object(gyre_admin_req_t *a)
{
    h2o_req_t *req = a->req;
    cJSON *j = cJSON_ParseWithLength(req->entity.base, req->entity.len);
    if (j == NULL || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        gyre_admin_error(req, 400, "invalid_json", NULL, "the body must be a JSON object");
        return NULL;
    }
    return j;
}

/* Puts `route` (an object) in force as route `name`. */
static void set_route(gyre_admin_req_t *a, const char *name, cJSON *route, const char *action)
{
    char *json = cJSON_PrintUnformatted(route);
    char err[16384];
    int rc = gyre_live_set_route(a->worker->server, a->actor, action, name, json, err, sizeof(err));
    cJSON_free(json);
    respond_change(a, name, rc, err);
}

void gyre_admin_routes_list(gyre_admin_req_t *a)
{
    gyre_buf_t b;
    gyre_buf_init(&b, ROUTES_JSON_MAX);
    if (gyre_live_routes_json(a->worker->server, &b) != 0)
        gyre_admin_error(a->req, 500, "response_too_large", NULL, "the routes are more than %zu bytes of JSON",
                        ROUTES_JSON_MAX);
    else
        gyre_respond_json(a->req, 200, b.base, b.len);
    gyre_buf_dispose(&b);
}

void gyre_admin_route_put(gyre_admin_req_t *a)
{
    char name[GYRE_WIRE_NAME_MAX + 1];
    if (route_name(a, name, sizeof(name)) != 0)
        return;
    cJSON *j = body_object(a);
    if (j == NULL)
        return;
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(j, "name");
    if (n == NULL) {
        cJSON_AddStringToObject(j, "name", name);
    } else if (!cJSON_IsString(n) || strcmp(n->valuestring, name) != 0) {
        gyre_admin_error(a->req, 400, "invalid_route", "name", "name must be the route's name in the path ('%s')", name);
        cJSON_Delete(j);
        return;
    }
    set_route(a, name, j, "route.update");
    cJSON_Delete(j);
}

/* {"weights": {"PROVIDER/MODEL": N, ...}}: each names a target (or fallback) of the route in force. */
static int apply_weights(gyre_admin_req_t *a, cJSON *route, const cJSON *weights)
{
    if (!cJSON_IsObject(weights)) {
        gyre_admin_error(a->req, 400, "invalid_route", "weights", "weights must be an object {\"PROVIDER/MODEL\": N}");
        return -1;
    }
    const cJSON *w;
    cJSON_ArrayForEach(w, weights)
    {
        if (!cJSON_IsNumber(w) || w->valuedouble < 0 || w->valuedouble > 1000000 ||
            w->valuedouble != (double)(long long)w->valuedouble) {
            gyre_admin_error(a->req, 400, "invalid_route", "weights", "weights.%.200s must be a whole number from 0 to "
                            "1000000", w->string);
            return -1;
        }
        int found = 0;
        static const char *const lists[] = {"targets", "fallbacks"};
        for (size_t l = 0; l < 2; l++) {
            cJSON *t;
            cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(route, lists[l]))
            {
                const char *p = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "provider"));
                const char *m = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "model"));
                size_t pl = p != NULL ? strlen(p) : 0;
                if (p != NULL && m != NULL && strncmp(w->string, p, pl) == 0 && w->string[pl] == '/' &&
                    strcmp(w->string + pl + 1, m) == 0) {
                    /* A target written without its weight gets one; a replacement that replaced nothing is
                     * neither attached nor freed by cJSON, and would leak with its key. */
                    cJSON *nw = cJSON_CreateNumber(w->valuedouble);
                    if (!(cJSON_GetObjectItemCaseSensitive(t, "weight") != NULL
                              ? cJSON_ReplaceItemInObjectCaseSensitive(t, "weight", nw)
                              : cJSON_AddItemToObject(t, "weight", nw)))
                        cJSON_Delete(nw);
                    found = 1;
                }
            }
        }
        if (!found) {
            gyre_admin_error(a->req, 400, "invalid_route", "weights",
                            "weights.%.200s: the route has no target of that provider/model", w->string);
            return -1;
        }
    }
    return 0;
}

void gyre_admin_route_patch(gyre_admin_req_t *a)
{
    char name[GYRE_WIRE_NAME_MAX + 1];
    if (route_name(a, name, sizeof(name)) != 0)
        return;
    cJSON *patch = body_object(a);
    if (patch == NULL)
        return;
    cJSON *route = NULL;
    char *current = gyre_live_route_json(a->worker->server, name);
    if (current == NULL) {
        gyre_admin_error(a->req, 404, "route_not_found", NULL, "no route is named '%s' (PUT makes one)", name);
        goto out;
    }
    route = cJSON_Parse(current);
    cJSON *targets = cJSON_GetObjectItemCaseSensitive(patch, "targets");
    const cJSON *weights = cJSON_GetObjectItemCaseSensitive(patch, "weights");
    if ((targets == NULL) == (weights == NULL) || cJSON_GetArraySize(patch) != 1) {
        gyre_admin_error(a->req, 400, "invalid_route", NULL,
                        "a PATCH has one field: targets (a list of {provider, model, weight}) or weights "
                        "({\"PROVIDER/MODEL\": N}); PUT replaces a whole route");
        goto out;
    }
    if (targets != NULL) {
        /* cJSON frees nothing it did not attach: a route without targets gets them added, and with no route at all
         * the copy is deleted here. */
        cJSON *dup = cJSON_Duplicate(targets, 1);
        if (!cJSON_ReplaceItemInObjectCaseSensitive(route, "targets", dup) &&
            !cJSON_AddItemToObject(route, "targets", dup))
            cJSON_Delete(dup);
    } else if (apply_weights(a, route, weights) != 0)
        goto out;
    set_route(a, name, route, targets != NULL ? "route.targets" : "route.weights");
out:
    free(current);
    cJSON_Delete(route);
    cJSON_Delete(patch);
}

void gyre_admin_route_override_delete(gyre_admin_req_t *a)
{
    char name[GYRE_WIRE_NAME_MAX + 1];
    if (route_name(a, name, sizeof(name)) != 0)
        return;
    char err[16384];
    int rc = gyre_live_set_route(a->worker->server, a->actor, "route.restore", name, NULL, err, sizeof(err));
    respond_change(a, name, rc, err);
}

/* POST /api/admin/reload: the configuration file read again, as SIGHUP does, and its answer said. */
void gyre_admin_reload(gyre_admin_req_t *a)
{
    char err[16384];
    int rc = gyre_live_reload(a->worker->server, a->actor, "config.reload", err, sizeof(err));
    if (rc == 0)
        gyre_respond_json(a->req, 200, H2O_STRLIT("{\"reloaded\":true}"));
    else if (rc == -EINVAL)
        respond_problems(a->req, "invalid_config", err);
    else
        gyre_admin_error(a->req, 500, "reload_failed", NULL, "%s", err);
}
