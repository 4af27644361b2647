/* The audit log (audit.h): one append-only table in the control-plane database. */
#include "control/audit.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/json.h"

/* The table and the triggers that keep it append-only; run before every use (CREATE ... IF NOT EXISTS costs a
 * schema lookup, and audit writes are rare), so that any process that opens the state may record or read. */
static const char schema[] =
    "CREATE TABLE IF NOT EXISTS audit ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " time_us INTEGER NOT NULL,"
    " actor TEXT NOT NULL,"
    " action TEXT NOT NULL,"
    " object TEXT NOT NULL,"
    " before TEXT,"
    " after TEXT);"
    "CREATE INDEX IF NOT EXISTS audit_time ON audit(time_us);"
    "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;";

static int ensure_schema(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "the audit log in %s: %s", path, msg ? msg : "cannot be created");
        sqlite3_free(msg);
        return -EIO;
    }
    return 0;
}

/* Whether a member name is a secret's: one of GYRE_AUDIT_SECRET_NAMES, or ends in _key, _secret, _token or
 * _password (routing_key, admin_token, client_secret), any case. */
static int secret_name(const char *name)
{
    static const char *const exact[] = {GYRE_AUDIT_SECRET_NAMES};
    static const char *const suffixes[] = {"_key", "_secret", "_token", "_password"};
    for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
        if (strcasecmp(name, exact[i]) == 0)
            return 1;
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        size_t s = strlen(suffixes[i]);
        if (n > s && strcasecmp(name + n - s, suffixes[i]) == 0)
            return 1;
    }
    return 0;
}

/* The first member, at any depth, that holds what looks like a secret; NULL when there is none. */
static const char *find_secret(const cJSON *v)
{
    for (const cJSON *c = v != NULL ? v->child : NULL; c != NULL; c = c->next) {
        if (c->string != NULL && cJSON_IsString(c) && c->valuestring != NULL &&
            strlen(c->valuestring) > GYRE_AUDIT_SECRET_MIN_LEN && secret_name(c->string))
            return c->string;
        const char *inner = find_secret(c);
        if (inner != NULL)
            return inner;
    }
    return NULL;
}

int gyre_audit_check_json(const char *json, const char *which, char *err, size_t errlen)
{
    size_t len = strlen(json);
    if (len > GYRE_AUDIT_JSON_MAX) {
        snprintf(err, errlen, "audit: '%s' is longer than %zu bytes", which, GYRE_AUDIT_JSON_MAX);
        return -EINVAL;
    }
    if (!gyre_json_valid(json, len)) {
        snprintf(err, errlen, "audit: '%s' is not valid JSON", which);
        return -EINVAL;
    }
    cJSON *v = cJSON_ParseWithLength(json, len);
    if (v == NULL) {
        snprintf(err, errlen, "audit: '%s' cannot be parsed", which);
        return -EINVAL;
    }
    const char *name = find_secret(v);
    int r = 0;
    if (name != NULL) {
        snprintf(err, errlen,
                 "audit: '%s' has a member '%.64s' holding a string of more than %d characters; the audit log never "
                 "holds a secret: name the object by its id",
                 which, name, GYRE_AUDIT_SECRET_MIN_LEN);
        r = -EINVAL;
    }
    cJSON_Delete(v);
    return r;
}

static int check_name(const char *v, const char *field, int may_be_empty, char *err, size_t errlen)
{
    if (v == NULL || (!may_be_empty && v[0] == '\0')) {
        snprintf(err, errlen, "audit: '%s' is required", field);
        return -EINVAL;
    }
    if (strlen(v) > GYRE_AUDIT_NAME_MAX) {
        snprintf(err, errlen, "audit: '%s' is longer than %d bytes", field, GYRE_AUDIT_NAME_MAX);
        return -EINVAL;
    }
    return 0;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int gyre_audit_record(gyre_state_t *st, const gyre_audit_entry_t *e, char *err, size_t errlen)
{
    int r;
    if ((r = check_name(e->actor, "actor", 0, err, errlen)) != 0 ||
        (r = check_name(e->action, "action", 0, err, errlen)) != 0 ||
        (r = check_name(e->object, "object", 1, err, errlen)) != 0)
        return r;
    if ((e->before != NULL && (r = gyre_audit_check_json(e->before, "before", err, errlen)) != 0) ||
        (e->after != NULL && (r = gyre_audit_check_json(e->after, "after", err, errlen)) != 0))
        return r;
    sqlite3 *db = gyre_state_lock(st);
    sqlite3_stmt *s = NULL;
    if ((r = ensure_schema(db, gyre_state_path(st), err, errlen)) != 0)
        goto out;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO audit (time_us, actor, action, object, before, after) VALUES (?,?,?,?,?,?)",
                           -1, &s, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "the audit log in %s: %s", gyre_state_path(st), sqlite3_errmsg(db));
        r = -EIO;
        goto out;
    }
    sqlite3_bind_int64(s, 1, now_us());
    sqlite3_bind_text(s, 2, e->actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, e->action, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, e->object, -1, SQLITE_STATIC);
    if (e->before != NULL)
        sqlite3_bind_text(s, 5, e->before, -1, SQLITE_STATIC);
    if (e->after != NULL)
        sqlite3_bind_text(s, 6, e->after, -1, SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_DONE) {
        snprintf(err, errlen, "the audit log in %s: %s", gyre_state_path(st), sqlite3_errmsg(db));
        r = -EIO;
    }
out:
    sqlite3_finalize(s);
    gyre_state_unlock(st);
    return r;
}

/* RFC 3339 in UTC with milliseconds. */
static void format_time(int64_t us, char *buf, size_t size)
{
    time_t sec = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(us % 1000000 / 1000));
}

/* A stored JSON column as it goes out: embedded when it is valid JSON (it was checked when written), else as a
 * string (a database file altered by hand must not break the answer's JSON). */
static void append_json_column(gyre_buf_t *out, sqlite3_stmt *s, int col)
{
    const char *v = (const char *)sqlite3_column_text(s, col);
    size_t n = (size_t)sqlite3_column_bytes(s, col);
    if (v == NULL)
        gyre_buf_appends(out, "null");
    else if (gyre_json_valid(v, n))
        gyre_buf_append(out, v, n);
    else
        gyre_buf_append_json_string(out, v, n);
}

int gyre_audit_query(gyre_state_t *st, const gyre_audit_query_t *q, gyre_buf_t *out, char *err, size_t errlen)
{
    unsigned limit = q->limit == 0 ? GYRE_AUDIT_LIMIT_DEFAULT : q->limit;
    if (limit > GYRE_AUDIT_LIMIT_MAX)
        limit = GYRE_AUDIT_LIMIT_MAX;
    int r = 0;
    sqlite3 *db = gyre_state_lock(st);
    sqlite3_stmt *s = NULL;
    if ((r = ensure_schema(db, gyre_state_path(st), err, errlen)) != 0)
        goto out;
    /* One row more than the page, to know whether there is a next one. */
    if (sqlite3_prepare_v2(db,
                           "SELECT id, time_us, actor, action, object, before, after FROM audit"
                           " WHERE (?1 = 0 OR time_us >= ?1) AND (?2 = 0 OR time_us < ?2)"
                           " AND (?3 IS NULL OR action = ?3) AND (?4 IS NULL OR actor = ?4)"
                           " AND (?5 = 0 OR id < ?5) ORDER BY id DESC LIMIT ?6",
                           -1, &s, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "the audit log in %s: %s", gyre_state_path(st), sqlite3_errmsg(db));
        r = -EIO;
        goto out;
    }
    sqlite3_bind_int64(s, 1, q->since_us);
    sqlite3_bind_int64(s, 2, q->until_us);
    if (q->action != NULL)
        sqlite3_bind_text(s, 3, q->action, -1, SQLITE_STATIC);
    if (q->actor != NULL)
        sqlite3_bind_text(s, 4, q->actor, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, q->cursor);
    sqlite3_bind_int64(s, 6, (sqlite3_int64)limit + 1);
    gyre_buf_appends(out, "{\"data\":[");
    unsigned n = 0;
    int64_t last = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == limit)
            break; /* the one more: there is a next page, after `last` */
        int64_t id = sqlite3_column_int64(s, 0), t = sqlite3_column_int64(s, 1);
        char when[64];
        format_time(t, when, sizeof(when));
        gyre_buf_appendf(out, "%s{\"id\":%" PRId64 ",\"time\":\"%s\",\"time_us\":%" PRId64 ",\"actor\":", n ? "," : "",
                         id, when, t);
        for (int col = 2; col <= 4; col++) {
            gyre_buf_append_json_string(out, (const char *)sqlite3_column_text(s, col),
                                        (size_t)sqlite3_column_bytes(s, col));
            gyre_buf_appends(out, col == 2 ? ",\"action\":" : col == 3 ? ",\"object\":" : ",\"before\":");
        }
        append_json_column(out, s, 5);
        gyre_buf_appends(out, ",\"after\":");
        append_json_column(out, s, 6);
        gyre_buf_appends(out, "}");
        last = id;
        n++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        snprintf(err, errlen, "the audit log in %s: %s", gyre_state_path(st), sqlite3_errmsg(db));
        r = -EIO;
        goto out;
    }
    if (rc == SQLITE_ROW)
        gyre_buf_appendf(out, "],\"next_cursor\":\"%" PRId64 "\"}", last);
    else
        gyre_buf_appends(out, "],\"next_cursor\":null}");
    if (gyre_buf_failed(out)) {
        snprintf(err, errlen, "the audit page is larger than %zu bytes", out->max);
        r = -E2BIG;
    }
out:
    sqlite3_finalize(s);
    gyre_state_unlock(st);
    return r;
}
