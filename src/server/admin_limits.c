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
#include <sqlite3.h>
#include <stdio.h>

#include "common/log.h"
#include "control/audit.h"
#include "control/limits.h"
#include "proxy/respond.h"
#include "server/admin_limits.h"


static void answer_error(gyre_admin_req_t *a, int status, const char *code, const char *param, const char *msg)
{
    gyre_admin_error(a->req, status, code, param, "%s", msg);
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

/*
 * Rules set through the API are kept in the control-plane database (one row per level and id, the body as it
 * was accepted, NULL for a delete) and applied again at start, after the config's, in the order they were made:
 * a restart keeps what an operator set live, as a reload does.
 */
static const char LIMIT_RULES_SQL[] = "CREATE TABLE IF NOT EXISTS limit_rules (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                                      " level INTEGER NOT NULL, id TEXT NOT NULL, body TEXT, UNIQUE (level, id));";

/* Parses a rule's JSON body into `set` and `notify`; NULL, or what was wrong (for a 400). */
static const char *parse_rule(const char *text, size_t len, gyre_limit_set_t *set, char *notify, size_t nsize)
{
    cJSON *body = cJSON_ParseWithLength(text, len);
    if (!cJSON_IsObject(body)) {
        cJSON_Delete(body);
        return "the body must be a JSON object {rpm, tpm, concurrency, budget_usd, budget_period, soft, notify}";
    }
    const char *bad = NULL;
    const cJSON *f;
    cJSON_ArrayForEach(f, body)
    {
        const char *k = f->string;
        if (strcmp(k, "rpm") == 0) {
            if (!parse_uint(f, 100000000, &set->rpm))
                bad = "rpm: a whole number from 1 to 100000000";
        } else if (strcmp(k, "tpm") == 0) {
            if (!parse_uint(f, 4000000000ULL, &set->tpm))
                bad = "tpm: a whole number from 1 to 4000000000";
        } else if (strcmp(k, "concurrency") == 0) {
            if (!parse_uint(f, 1000000, &set->concurrency))
                bad = "concurrency: a whole number from 1 to 1000000";
        } else if (strcmp(k, "budget_usd") == 0) {
            if (!cJSON_IsNumber(f) || !(f->valuedouble >= 0) || f->valuedouble > 1e9)
                bad = "budget_usd: a number of US dollars from 0 to 1e9";
            else
                set->budget_usd = f->valuedouble;
        } else if (strcmp(k, "budget_period") == 0) {
            const char *v = cJSON_IsString(f) ? f->valuestring : "";
            set->budget_period = strcmp(v, "day") == 0     ? GYRE_BUDGET_DAY
                                 : strcmp(v, "week") == 0  ? GYRE_BUDGET_WEEK
                                 : strcmp(v, "month") == 0 ? GYRE_BUDGET_MONTH
                                                           : GYRE_BUDGET_NONE;
            if (set->budget_period == GYRE_BUDGET_NONE)
                bad = "budget_period: day, week or month (UTC calendar periods)";
        } else if (strcmp(k, "soft") == 0) {
            if (!cJSON_IsBool(f))
                bad = "soft: true or false";
            else
                set->budget_soft = cJSON_IsTrue(f);
        } else if (strcmp(k, "notify") == 0) {
            if (!cJSON_IsString(f) || strlen(f->valuestring) == 0 || strlen(f->valuestring) >= nsize)
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
    if (bad == NULL && (set->budget_usd >= 0) != (set->budget_period != GYRE_BUDGET_NONE))
        bad = "budget_usd and budget_period go together";
    return bad;
}

/* Keeps one change in the database (body NULL: a delete); 0, or -EIO with `err` filled. */
static int keep_rule(gyre_state_t *st, int level, const char *id, const char *body, size_t len, char *err,
                     size_t errlen)
{
    if (gyre_state_exec(st, LIMIT_RULES_SQL, err, errlen) != 0)
        return -EIO;
    sqlite3 *db = gyre_state_lock(st);
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO limit_rules (level, id, body) VALUES (?, ?, ?)", -1, &q,
                                NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int(q, 1, level);
        sqlite3_bind_text(q, 2, id, -1, SQLITE_TRANSIENT);
        if (body != NULL)
            sqlite3_bind_text(q, 3, body, (int)len, SQLITE_TRANSIENT);
        else
            sqlite3_bind_null(q, 3);
        rc = sqlite3_step(q) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    if (rc != SQLITE_OK)
        snprintf(err, errlen, "the state database: %s", sqlite3_errmsg(db));
    sqlite3_finalize(q);
    gyre_state_unlock(st);
    return rc == SQLITE_OK ? 0 : -EIO;
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
        const char *bad = parse_rule(a->req->entity.base, a->req->entity.len, &set, notify, sizeof(notify));
        if (bad != NULL) {
            answer_error(a, 400, strncmp(bad, "the body", 8) == 0 ? "invalid_json" : "invalid_limit", NULL, bad);
            return;
        }
    }
    gyre_state_t *st = a->worker->server->state;
    char err[256];
    char *before = NULL, *after = NULL;
    if (gyre_limits_set_rule(l, (gyre_limit_level_t)level, id, del ? NULL : &set, notify[0] ? notify : NULL, &before,
                             &after) != 0) {
        answer_error(a, 400, "invalid_id", "id", "the id must be 1 to 63 bytes of [A-Za-z0-9._:@-], or * for every id");
        return;
    }
    if (st != NULL) {
        if (keep_rule(st, level, id, del ? NULL : a->req->entity.base, a->req->entity.len, err, sizeof(err)) != 0)
            gyre_logf("gyre: limits: %s/%s is in force but not kept for the next start: %s\n",
                      gyre_limit_level_name((gyre_limit_level_t)level), id, err);
        char object[GYRE_PRINCIPAL_ID_MAX + 16];
        snprintf(object, sizeof(object), "%s/%s", gyre_limit_level_name((gyre_limit_level_t)level), id);
        gyre_audit_entry_t e = {.actor = a->actor,
                                .action = del ? "limit.delete" : "limit.update",
                                .object = object,
                                .before = before,
                                .after = after};
        if (gyre_audit_record(st, &e, err, sizeof(err)) != 0)
            gyre_logf("gyre: audit: %s\n", err);
    }
    const char *out = after != NULL ? after : "{}";
    gyre_respond_json(a->req, 200, out, strlen(out));
    free(before);
    free(after);
}

int gyre_admin_limits_restore(gyre_limits_t *l, gyre_state_t *st, char *err, size_t errlen)
{
    if (l == NULL || st == NULL)
        return 0;
    if (gyre_state_exec(st, LIMIT_RULES_SQL, err, errlen) != 0)
        return -EIO;
    sqlite3 *db = gyre_state_lock(st);
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT level, id, body FROM limit_rules ORDER BY seq", -1, &q, NULL);
    int n = 0;
    while (rc == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW) {
        int level = sqlite3_column_int(q, 0);
        const char *id = (const char *)sqlite3_column_text(q, 1);
        const char *body = (const char *)sqlite3_column_text(q, 2);
        gyre_limit_set_t set = {.budget_usd = -1};
        char notify[129] = "";
        if (level < 0 || level >= GYRE_LIMIT_LEVELS || id == NULL ||
            (body != NULL && parse_rule(body, (size_t)sqlite3_column_bytes(q, 2), &set, notify, sizeof(notify)) != NULL))
            continue; /* not one this gyre wrote: left alone, as a config would leave an unknown row */
        char *before = NULL, *after = NULL;
        if (gyre_limits_set_rule(l, (gyre_limit_level_t)level, id, body != NULL ? &set : NULL,
                                 notify[0] ? notify : NULL, &before, &after) == 0)
            n++;
        free(before);
        free(after);
    }
    if (rc != SQLITE_OK)
        snprintf(err, errlen, "the state database: %s", sqlite3_errmsg(db));
    sqlite3_finalize(q);
    gyre_state_unlock(st);
    return rc == SQLITE_OK ? n : -EIO;
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
