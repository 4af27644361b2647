/*
 * The admin API's limits (docs/limits.md): GET /api/admin/limits lists every rule in force with its id's use now;
 * PUT /api/admin/limits/{keys,teams,agents,users}/{id} sets one rule (the body: {rpm, tpm, concurrency, budget_usd, budget_period,
 * soft, notify}; fields left out are none), DELETE removes it.  A change takes effect at once, stays over config
 * reloads until the process ends, and is recorded in the audit log with the rule before and after.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "control/audit.h"
#include "control/limits.h"
#include "proxy/respond.h"
#include "server/admin_limits.h"

/*
 * The audit log's writer.  control/audit.c (gyre_audit_record) is not in this branch's build yet: the server
 * sets this at start once it is (`gyre_admin_limits_audit = gyre_audit_record;`).  NULL: changes are made but
 * not recorded.
 */
int (*gyre_admin_limits_audit)(gyre_state_t *st, const gyre_audit_entry_t *e, char *err, size_t errlen);

static void answer_error(gyre_admin_req_t *a, int status, const char *code, const char *param, const char *msg)
{
    gyre_api_error_t err;
    gyre_api_error_set(&err, status, "invalid_request_error", code, param, "%s", msg);
    gyre_respond_error(a->req, &err);
}

static gyre_limits_t *limits_of(gyre_admin_req_t *a)
{
    gyre_limits_t *l = a->worker->server->limits;
    if (l == NULL)
        answer_error(a, 404, "limits_not_configured", NULL,
                     "this gateway has no limits: section; add one (it may be empty: limits: {}) to set limits live");
    return l;
}

static void on_list(gyre_admin_req_t *a)
{
    gyre_limits_t *l = limits_of(a);
    if (l == NULL)
        return;
    char *text = gyre_limits_to_json(l);
    gyre_respond_json(a->req, 200, text, strlen(text));
    free(text);
}

static int parse_uint(const cJSON *v, uint64_t max, uint32_t *out)
{
    if (v == NULL)
        return 1;
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > (double)max || v->valuedouble != floor(v->valuedouble))
        return 0;
    *out = (uint32_t)v->valuedouble;
    return 1;
}

static void on_put_or_delete(gyre_admin_req_t *a, int level, int del)
{
    gyre_limits_t *l = limits_of(a);
    if (l == NULL)
        return;
    char id[GYRE_PRINCIPAL_ID_MAX];
    if (a->idlen == 0 || a->idlen >= sizeof(id)) {
        answer_error(a, 400, "invalid_id", "id", "the id must be 1 to 63 bytes of [A-Za-z0-9._:@-], or * for every id");
        return;
    }
    memcpy(id, a->id, a->idlen);
    id[a->idlen] = '\0';
    gyre_limit_set_t set = {.budget_usd = -1};
    char notify[129] = "";
    if (!del) {
        cJSON *body = cJSON_ParseWithLength(a->req->entity.base, a->req->entity.len);
        if (!cJSON_IsObject(body)) {
            cJSON_Delete(body);
            answer_error(a, 400, "invalid_json", NULL,
                         "the body must be a JSON object {rpm, tpm, concurrency, budget_usd, budget_period, soft, notify}");
            return;
        }
        const char *bad = NULL;
        const cJSON *f;
        cJSON_ArrayForEach(f, body)
        {
            const char *k = f->string;
            if (strcmp(k, "rpm") == 0) {
                if (!parse_uint(f, 100000000, &set.rpm))
                    bad = "rpm: a whole number from 1 to 100000000";
            } else if (strcmp(k, "tpm") == 0) {
                if (!parse_uint(f, 4000000000ULL, &set.tpm))
                    bad = "tpm: a whole number from 1 to 4000000000";
            } else if (strcmp(k, "concurrency") == 0) {
                if (!parse_uint(f, 1000000, &set.concurrency))
                    bad = "concurrency: a whole number from 1 to 1000000";
            } else if (strcmp(k, "budget_usd") == 0) {
                if (!cJSON_IsNumber(f) || !(f->valuedouble >= 0) || f->valuedouble > 1e9)
                    bad = "budget_usd: a number of US dollars from 0 to 1e9";
                else
                    set.budget_usd = f->valuedouble;
            } else if (strcmp(k, "budget_period") == 0) {
                const char *v = cJSON_IsString(f) ? f->valuestring : "";
                set.budget_period = strcmp(v, "day") == 0     ? GYRE_BUDGET_DAY
                                    : strcmp(v, "week") == 0  ? GYRE_BUDGET_WEEK
                                    : strcmp(v, "month") == 0 ? GYRE_BUDGET_MONTH
                                                              : GYRE_BUDGET_NONE;
                if (set.budget_period == GYRE_BUDGET_NONE)
                    bad = "budget_period: day, week or month (UTC calendar periods)";
            } else if (strcmp(k, "soft") == 0) {
                if (!cJSON_IsBool(f))
                    bad = "soft: true or false";
                else
                    set.budget_soft = cJSON_IsTrue(f);
            } else if (strcmp(k, "notify") == 0) {
                if (!cJSON_IsString(f) || strlen(f->valuestring) == 0 || strlen(f->valuestring) >= sizeof(notify))
                    bad = "notify: a notifier's name";
                else
                    strcpy(notify, f->valuestring);
            } else {
                bad = "unknown field (known: rpm, tpm, concurrency, budget_usd, budget_period, soft, notify)";
            }
            if (bad != NULL)
                break;
        }
        cJSON_Delete(body);
        if (bad == NULL && (set.budget_usd >= 0) != (set.budget_period != GYRE_BUDGET_NONE))
            bad = "budget_usd and budget_period go together";
        if (bad != NULL) {
            answer_error(a, 400, "invalid_limit", NULL, bad);
            return;
        }
    }
    char *before = NULL, *after = NULL;
    if (gyre_limits_set_rule(l, (gyre_limit_level_t)level, id, del ? NULL : &set, notify[0] ? notify : NULL, &before,
                             &after) != 0) {
        answer_error(a, 400, "invalid_id", "id", "the id must be 1 to 63 bytes of [A-Za-z0-9._:@-], or * for every id");
        return;
    }
    gyre_state_t *st = a->worker->server->state;
    if (gyre_admin_limits_audit != NULL && st != NULL) {
        char object[GYRE_PRINCIPAL_ID_MAX + 16], err[256];
        snprintf(object, sizeof(object), "%s/%s", gyre_limit_level_name((gyre_limit_level_t)level), id);
        gyre_audit_entry_t e = {.actor = a->actor,
                                .action = del ? "limit.delete" : "limit.update",
                                .object = object,
                                .before = before,
                                .after = after};
        gyre_admin_limits_audit(st, &e, err, sizeof(err));
    }
    const char *out = after != NULL ? after : "{}";
    gyre_respond_json(a->req, 200, out, strlen(out));
    free(before);
    free(after);
}

/* PUT and DELETE /api/admin/limits/{keys,teams,agents,users}/{id}: one line each in admin.c's table. */
#define LEVEL_FNS(name, level)                                                                                         \
    void gyre_admin_limits_put_##name(gyre_admin_req_t *a) { on_put_or_delete(a, level, 0); }                          \
    void gyre_admin_limits_delete_##name(gyre_admin_req_t *a) { on_put_or_delete(a, level, 1); }
LEVEL_FNS(key, GYRE_LIMIT_KEY)
LEVEL_FNS(team, GYRE_LIMIT_TEAM)
LEVEL_FNS(agent, GYRE_LIMIT_AGENT)
LEVEL_FNS(user, GYRE_LIMIT_USER)

/* GET /api/admin/limits. */
void gyre_admin_limits_list(gyre_admin_req_t *a)
{
    on_list(a);
}
