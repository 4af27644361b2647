/*
 * The audit log (audit.h), the least of it: one row per change in the control-plane database.  A placeholder so
 * that live changes record themselves on a branch without the admin API's audit log; that one replaces this file
 * (same table, same columns).
 */
#include "control/audit.h"

#include <errno.h>
#include <stdio.h>

#include "trace/record.h"

int gyre_audit_record(gyre_state_t *st, const gyre_audit_entry_t *e, char *err, size_t errlen)
{
    if (gyre_state_exec(st,
                        "CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, time_us INTEGER NOT "
                        "NULL, actor TEXT NOT NULL, action TEXT NOT NULL, object TEXT NOT NULL, before TEXT, after TEXT)",
                        err, errlen) != 0)
        return -EIO;
    sqlite3 *db = gyre_state_lock(st);
    sqlite3_stmt *s = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(db, "INSERT INTO audit (time_us, actor, action, object, before, after) VALUES (?, ?, ?, ?, ?, ?)",
                           -1, &s, NULL) != SQLITE_OK) {
        rc = -EIO;
    } else {
        sqlite3_bind_int64(s, 1, gyre_trace_now_us());
        sqlite3_bind_text(s, 2, e->actor, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, e->action, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, e->object, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 5, e->before, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 6, e->after, -1, SQLITE_STATIC);
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = -EIO;
    }
    if (rc != 0)
        snprintf(err, errlen, "the audit log in %s: %s", gyre_state_path(st), sqlite3_errmsg(db));
    sqlite3_finalize(s);
    gyre_state_unlock(st);
    return rc;
}
