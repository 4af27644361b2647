/* Alert events in the control-plane database (alerts_store.h). */
#include "control/alerts_store.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"

static const char schema[] = "CREATE TABLE IF NOT EXISTS alert_events ("
                             " id INTEGER PRIMARY KEY AUTOINCREMENT,"
                             " at_us INTEGER NOT NULL,"
                             " rule TEXT NOT NULL,"
                             " state TEXT NOT NULL,"
                             " severity TEXT NOT NULL,"
                             " fingerprint TEXT NOT NULL,"
                             " labels TEXT NOT NULL,"
                             " condition TEXT NOT NULL,"
                             " value REAL,"
                             " actions TEXT NOT NULL);"
                             "CREATE INDEX IF NOT EXISTS alert_events_at ON alert_events(at_us);";

int gyre_alerts_store_migrate(gyre_state_t *st, char *err, size_t errlen)
{
    return gyre_state_exec(st, schema, err, errlen);
}

void gyre_alerts_store_event_cb(void *data, const gyre_alert_event_t *e)
{
    gyre_state_t *st = data;
    sqlite3 *db = gyre_state_lock(st);
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "INSERT INTO alert_events (at_us, rule, state, severity, fingerprint, labels, "
                                "condition, value, actions) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                -1, &q, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(q, 1, e->at_us);
        sqlite3_bind_text(q, 2, e->rule, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, e->state, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 4, e->severity, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 5, e->fingerprint, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 6, e->labels, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 7, e->condition, -1, SQLITE_STATIC);
        if (isnan(e->value))
            sqlite3_bind_null(q, 8);
        else
            sqlite3_bind_double(q, 8, e->value);
        sqlite3_bind_text(q, 9, e->actions, -1, SQLITE_STATIC);
        rc = sqlite3_step(q) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    if (rc != SQLITE_OK)
        gyre_logf("gyre: alert %s %s: not stored in %s: %s\n", e->rule, e->state, gyre_state_path(st),
                  sqlite3_errmsg(db));
    sqlite3_finalize(q);
    gyre_state_unlock(st);
}

static void put_text(gyre_buf_t *b, const char *key, const unsigned char *v)
{
    gyre_buf_appendf(b, ",\"%s\":", key);
    const char *s = v != NULL ? (const char *)v : "";
    gyre_buf_append_json_string(b, s, strlen(s));
}

int gyre_alerts_store_list(gyre_state_t *st, size_t limit, gyre_buf_t *out, char *err, size_t errlen)
{
    sqlite3 *db = gyre_state_lock(st);
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT at_us, rule, state, severity, fingerprint, labels, condition, value, actions "
                                "FROM alert_events ORDER BY id DESC LIMIT ?",
                                -1, &q, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", gyre_state_path(st), sqlite3_errmsg(db));
        gyre_state_unlock(st);
        return -EIO;
    }
    sqlite3_bind_int64(q, 1, (sqlite3_int64)limit);
    gyre_buf_appends(out, "[");
    int n = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        gyre_buf_appendf(out, "%s{\"at_us\":%lld", n++ ? "," : "", (long long)sqlite3_column_int64(q, 0));
        put_text(out, "rule", sqlite3_column_text(q, 1));
        put_text(out, "state", sqlite3_column_text(q, 2));
        put_text(out, "severity", sqlite3_column_text(q, 3));
        put_text(out, "fingerprint", sqlite3_column_text(q, 4));
        /* labels were written by the engine as a JSON object of sanitised values */
        const unsigned char *labels = sqlite3_column_text(q, 5);
        gyre_buf_appendf(out, ",\"labels\":%s", labels != NULL ? (const char *)labels : "{}");
        put_text(out, "condition", sqlite3_column_text(q, 6));
        if (sqlite3_column_type(q, 7) == SQLITE_NULL)
            gyre_buf_appends(out, ",\"value\":null");
        else
            gyre_buf_appendf(out, ",\"value\":%.17g", sqlite3_column_double(q, 7));
        put_text(out, "actions", sqlite3_column_text(q, 8));
        gyre_buf_appends(out, "}");
    }
    gyre_buf_appends(out, "]");
    if (rc != SQLITE_DONE)
        snprintf(err, errlen, "%s: %s", gyre_state_path(st), sqlite3_errmsg(db));
    sqlite3_finalize(q);
    gyre_state_unlock(st);
    if (rc != SQLITE_DONE)
        return -EIO;
    if (gyre_buf_failed(out)) {
        snprintf(err, errlen, "the list is larger than its bound");
        return -E2BIG;
    }
    return 0;
}
