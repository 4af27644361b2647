/*
 * /api/admin/keys: managed gateway keys (control/keys.h) through the admin API.
 *
 *   POST   /api/admin/keys              {"name", "team", "agent", "routes": [...], "models": [...], "rpm", "tpm",
 *                                        "budget_usd", "budget_period", "expires"}  -> 201 {"key", "data": KEY}
 *   GET    /api/admin/keys              -> {"data": [KEY, ...]}
 *   GET    /api/admin/keys/ID           -> KEY
 *   DELETE /api/admin/keys/ID           revokes it -> KEY
 *   POST   /api/admin/keys/ID/rotate    {"grace": "1h"} (optional) -> {"key", "data": KEY}
 *
 * KEY is gyre_key_row_json's object, which holds no secret; "key" is the new
 * key, in this answer only.  The workers' snapshot is rebuilt before the answer
 * goes, so the next request anywhere sees the change.  Each change is in the
 * audit log.
 */
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "control/keys.h"
#include "proxy/respond.h"
#include "server/admin.h"
#include "trace/record.h"

#define BAD(a, code, param, ...) gyre_admin_error((a)->req, 400, (code), (param), __VA_ARGS__)

static gyre_keys_t *keys_of(gyre_admin_req_t *a)
{
    gyre_keys_t *k = a->worker->server->keys;
    if (k == NULL)
        gyre_admin_error(a->req, 404, "state_not_configured", NULL,
                         "this gateway keeps no control-plane state, so it has no managed keys: the config has "
                         "neither a store (store: {sqlite: PATH}) nor state: PATH");
    return k;
}

/* The path's id as a C string; 0, or -1 after a 404 (an id is "gk_" and 12 characters). */
static int path_id(gyre_admin_req_t *a, char id[GYRE_KEYS_ID_LEN + 1])
{
    if (a->idlen != GYRE_KEYS_ID_LEN || memcmp(a->id, "gk_", 3) != 0) {
        gyre_admin_error(a->req, 404, "key_not_found", NULL,
                         "no key has the id %.*s (a managed key's id is gk_ and 12 characters)",
                         (int)(a->idlen < 64 ? a->idlen : 64), a->id);
        return -1;
    }
    memcpy(id, a->id, GYRE_KEYS_ID_LEN);
    id[GYRE_KEYS_ID_LEN] = '\0';
    return 0;
}

static void respond_errno(gyre_admin_req_t *a, int r, const char *msg)
{
    int status = r == -ENOENT ? 404 : r == -EINVAL ? 400 : r == -EALREADY ? 409 : r == -ENOSPC ? 507 : 500;
    const char *code = r == -ENOENT     ? "key_not_found"
                       : r == -EINVAL   ? "invalid_value"
                       : r == -EALREADY ? "key_already_revoked"
                       : r == -ENOSPC   ? "too_many_keys"
                                        : "state_error";
    gyre_admin_error(a->req, status, code, NULL, "%s", msg);
}

/* Answers `row` (with `key` first when given: a new key, shown this once). */
static void respond_row(gyre_admin_req_t *a, int status, const gyre_key_row_t *row, const char *key)
{
    gyre_buf_t b;
    gyre_buf_init(&b, (size_t)1 << 20);
    int64_t now = gyre_trace_now_us();
    if (key != NULL) {
        gyre_buf_appendf(&b, "{\"key\":\"%s\",\"data\":", key);
        gyre_key_row_json(row, now, &b);
        gyre_buf_appends(&b, "}");
    } else {
        gyre_key_row_json(row, now, &b);
    }
    gyre_respond_json(a->req, status, b.base, b.len);
    /* The answer was copied into the request's pool: the key leaves no copy in this buffer. */
    if (b.base != NULL)
        explicit_bzero(b.base, b.cap);
    gyre_buf_dispose(&b);
}

/* The request's body as a JSON object (or NULL when it has none and `optional`).  -1 after a 400. */
static int body_object(gyre_admin_req_t *a, int optional, cJSON **out)
{
    *out = NULL;
    if (a->req->entity.len == 0 && optional)
        return 0;
    cJSON *o = cJSON_ParseWithLength(a->req->entity.base, a->req->entity.len);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        BAD(a, "invalid_json", NULL, "the body must be a JSON object");
        return -1;
    }
    *out = o;
    return 0;
}

/* A list member: an array of strings or one comma-separated string, as "a,b" in `buf`.  0, or -1 after a 400. */
static int list_member(gyre_admin_req_t *a, const cJSON *v, const char *name, gyre_buf_t *buf)
{
    if (cJSON_IsString(v)) {
        gyre_buf_appends(buf, v->valuestring);
        return 0;
    }
    if (!cJSON_IsArray(v)) {
        BAD(a, "invalid_type", name, "'%s' must be an array of names", name);
        return -1;
    }
    const cJSON *it;
    int i = 0;
    cJSON_ArrayForEach(it, v)
    {
        if (!cJSON_IsString(it)) {
            BAD(a, "invalid_type", name, "'%s'[%d] must be a string", name, i);
            return -1;
        }
        if (i++)
            gyre_buf_appends(buf, ",");
        gyre_buf_appends(buf, it->valuestring);
    }
    if (gyre_buf_failed(buf)) {
        BAD(a, "invalid_value", name, "'%s' is too long", name);
        return -1;
    }
    return 0;
}

static int uint_member(gyre_admin_req_t *a, const cJSON *v, const char *name, uint32_t *out)
{
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e9 || floor(v->valuedouble) != v->valuedouble) {
        BAD(a, "invalid_value", name, "'%s' must be a whole number from 0 to 1000000000", name);
        return -1;
    }
    *out = (uint32_t)v->valuedouble;
    return 0;
}

void gyre_admin_keys_create(gyre_admin_req_t *a)
{
    gyre_keys_t *k = keys_of(a);
    cJSON *body = NULL;
    if (k == NULL || body_object(a, 0, &body) != 0)
        return;
    gyre_key_spec_t spec = {.budget_usd = -1};
    gyre_buf_t routes, models;
    gyre_buf_init(&routes, GYRE_KEYS_LIST_MAX * (GYRE_KEYS_LIST_ITEM_MAX + 1) + 1);
    gyre_buf_init(&models, GYRE_KEYS_LIST_MAX * (GYRE_KEYS_LIST_ITEM_MAX + 1) + 1);
    const cJSON *m;
    int bad = 0;
    cJSON_ArrayForEach(m, body)
    {
        const char *n = m->string;
        if (strcmp(n, "name") == 0 || strcmp(n, "team") == 0 || strcmp(n, "agent") == 0 ||
            strcmp(n, "budget_period") == 0 || strcmp(n, "expires") == 0) {
            if (cJSON_IsNull(m) && strcmp(n, "name") != 0)
                continue;
            if (!cJSON_IsString(m)) {
                BAD(a, "invalid_type", n, "'%s' must be a string", n);
                bad = 1;
                break;
            }
            const char *s = m->valuestring;
            if (strcmp(n, "name") == 0)
                spec.name = s;
            else if (strcmp(n, "team") == 0)
                spec.team = s;
            else if (strcmp(n, "agent") == 0)
                spec.agent = s;
            else if (strcmp(n, "budget_period") == 0) {
                int p = gyre_keys_period_parse(s);
                if (p <= 0) {
                    BAD(a, "invalid_value", n, "'budget_period' must be day, week or month");
                    bad = 1;
                    break;
                }
                spec.budget_period = (gyre_budget_period_t)p;
            } else if (gyre_keys_parse_expires(s, gyre_trace_now_us(), &spec.expires_us) != 0) {
                BAD(a, "invalid_value", n,
                    "'expires' must be a date (2027-01-31), an RFC 3339 time or a duration from now (90s, 12h, 30d)");
                bad = 1;
                break;
            }
        } else if (strcmp(n, "routes") == 0 || strcmp(n, "models") == 0) {
            if (!cJSON_IsNull(m) && list_member(a, m, n, strcmp(n, "routes") == 0 ? &routes : &models) != 0) {
                bad = 1;
                break;
            }
        } else if (strcmp(n, "rpm") == 0 || strcmp(n, "tpm") == 0) {
            if (uint_member(a, m, n, strcmp(n, "rpm") == 0 ? &spec.rpm : &spec.tpm) != 0) {
                bad = 1;
                break;
            }
        } else if (strcmp(n, "budget_usd") == 0) {
            if (cJSON_IsNull(m))
                continue;
            if (!cJSON_IsNumber(m) || !(m->valuedouble >= 0) || !isfinite(m->valuedouble)) {
                BAD(a, "invalid_value", n, "'budget_usd' must be a number of dollars >= 0");
                bad = 1;
                break;
            }
            spec.budget_usd = m->valuedouble;
        } else {
            BAD(a, "unknown_parameter", n,
                "unknown field '%.64s' (known: name, team, agent, routes, models, rpm, tpm, budget_usd, "
                "budget_period, expires)",
                n);
            bad = 1;
            break;
        }
    }
    if (!bad) {
        spec.routes = routes.base;
        spec.models = models.base;
        char key[GYRE_KEYS_KEY_SIZE], err[512] = "";
        gyre_key_row_t row;
        int r = gyre_keys_create(k, &spec, key, &row, err, sizeof(err));
        if (r == -EINVAL) {
            /* The library's message starts with the field: "team: must be ...". */
            char param[32] = "";
            sscanf(err, "%31[a-z_]:", param);
            BAD(a, "invalid_value", param[0] ? param : NULL, "%s", err);
        } else if (r != 0) {
            respond_errno(a, r, err);
        } else {
            if (gyre_keys_audit(k, a->actor, "key.create", row.id, NULL, &row, err, sizeof(err)) != 0)
                gyre_logf("gyre: audit: key.create %s: %s\n", row.id, err);
            respond_row(a, 201, &row, key);
            explicit_bzero(key, sizeof(key));
            gyre_key_row_dispose(&row);
        }
    }
    gyre_buf_dispose(&routes);
    gyre_buf_dispose(&models);
    cJSON_Delete(body);
}

void gyre_admin_keys_list(gyre_admin_req_t *a)
{
    gyre_keys_t *k = keys_of(a);
    if (k == NULL)
        return;
    gyre_key_row_t *rows = NULL;
    size_t n = 0;
    char err[512] = "";
    int r = gyre_keys_list(k, &rows, &n, err, sizeof(err));
    if (r != 0) {
        respond_errno(a, r, err);
        return;
    }
    gyre_buf_t b;
    gyre_buf_init(&b, (size_t)256 << 20);
    int64_t now = gyre_trace_now_us();
    gyre_buf_appends(&b, "{\"data\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            gyre_buf_appends(&b, ",");
        gyre_key_row_json(&rows[i], now, &b);
        gyre_key_row_dispose(&rows[i]);
    }
    gyre_buf_appends(&b, "]}");
    free(rows);
    gyre_respond_json(a->req, 200, b.base, b.len);
    gyre_buf_dispose(&b);
}

void gyre_admin_keys_show(gyre_admin_req_t *a)
{
    gyre_keys_t *k = keys_of(a);
    char id[GYRE_KEYS_ID_LEN + 1], err[512] = "";
    if (k == NULL || path_id(a, id) != 0)
        return;
    gyre_key_row_t row;
    int r = gyre_keys_get(k, id, &row, err, sizeof(err));
    if (r != 0) {
        respond_errno(a, r, err);
        return;
    }
    respond_row(a, 200, &row, NULL);
    gyre_key_row_dispose(&row);
}

void gyre_admin_keys_revoke(gyre_admin_req_t *a)
{
    gyre_keys_t *k = keys_of(a);
    char id[GYRE_KEYS_ID_LEN + 1], err[512] = "";
    if (k == NULL || path_id(a, id) != 0)
        return;
    gyre_key_row_t before, after;
    memset(&before, 0, sizeof(before));
    int r = gyre_keys_revoke(k, id, &before, &after, err, sizeof(err));
    if (r != 0) {
        respond_errno(a, r, err);
        gyre_key_row_dispose(&before);
        return;
    }
    if (gyre_keys_audit(k, a->actor, "key.revoke", id, &before, &after, err, sizeof(err)) != 0)
        gyre_logf("gyre: audit: key.revoke %s: %s\n", id, err);
    respond_row(a, 200, &after, NULL);
    gyre_key_row_dispose(&before);
    gyre_key_row_dispose(&after);
}

void gyre_admin_keys_rotate(gyre_admin_req_t *a)
{
    gyre_keys_t *k = keys_of(a);
    char id[GYRE_KEYS_ID_LEN + 1], err[512] = "";
    cJSON *body = NULL;
    if (k == NULL || path_id(a, id) != 0 || body_object(a, 1, &body) != 0)
        return;
    int64_t grace = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, body)
    {
        if (strcmp(m->string, "grace") != 0) {
            BAD(a, "unknown_parameter", m->string, "unknown field '%.64s' (known: grace)", m->string);
            cJSON_Delete(body);
            return;
        }
        if (!cJSON_IsString(m) || gyre_keys_parse_grace(m->valuestring, &grace) != 0) {
            BAD(a, "invalid_value", "grace", "'grace' must be \"0\" or a duration up to 7d (90s, 1h, 2d)");
            cJSON_Delete(body);
            return;
        }
    }
    cJSON_Delete(body);
    char key[GYRE_KEYS_KEY_SIZE];
    gyre_key_row_t before, after;
    memset(&before, 0, sizeof(before));
    int r = gyre_keys_rotate(k, id, grace, key, &before, &after, err, sizeof(err));
    if (r != 0) {
        respond_errno(a, r, err);
        gyre_key_row_dispose(&before);
        return;
    }
    if (gyre_keys_audit(k, a->actor, "key.rotate", id, &before, &after, err, sizeof(err)) != 0)
        gyre_logf("gyre: audit: key.rotate %s: %s\n", id, err);
    respond_row(a, 200, &after, key);
    explicit_bzero(key, sizeof(key));
    gyre_key_row_dispose(&before);
    gyre_key_row_dispose(&after);
}
