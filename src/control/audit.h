/*
 * The audit log: every change to what gyre does (managed keys, limits,
 * provider keys, routes and weights, config reloads, alert silences, and
 * later datasets and deployments) recorded with who made it, when, what, and
 * the object before and after, as JSON with every secret left out.  Kept in
 * the control-plane database (control/state.h); read with GET /api/audit and
 * `gyre audit`.
 *
 * The rule for callers: `before` and `after` describe the object by its ids
 * and settings, never by a secret (a key is named by its id, "primary#a1",
 * "gk_..."; a notifier by its name, not its URL's token).  gyre_audit_record
 * checks it defensively: a before or after holding, at any depth, a member
 * whose name is a secret's (GYRE_AUDIT_SECRET_NAMES, or one ending in _key,
 * _secret, _token or _password, any case) with a string value longer than
 * GYRE_AUDIT_SECRET_MIN_LEN characters is refused with -EINVAL, and nothing
 * is written.  A refused record is a bug in the caller, found by its tests.
 *
 * The table is append-only: SQLite triggers refuse every UPDATE and DELETE
 * on it, so an entry, once written, stays as it was written.
 */
#ifndef GYRE_CONTROL_AUDIT_H
#define GYRE_CONTROL_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "control/state.h"

typedef struct gyre_audit_entry {
    const char *actor;  /* "admin_token", "cli:<user>", "sighup", "alert:<rule>" */
    const char *action; /* "key.create", "key.revoke", "route.update", "config.reload", ... */
    const char *object; /* what it acted on: a key id, a route name, the config file */
    const char *before; /* JSON, or NULL */
    const char *after;  /* JSON, or NULL */
} gyre_audit_entry_t;

/* The longest actor, action and object (longer is -EINVAL), and the longest before or after JSON. */
#define GYRE_AUDIT_NAME_MAX 256
#define GYRE_AUDIT_JSON_MAX ((size_t)64 * 1024)
/* Member names whose string values are taken for secrets, and the length from which they are (a longer string
 * under such a name is refused; "***", "none" or an 8-character prefix are not secrets). */
#define GYRE_AUDIT_SECRET_NAMES "key", "secret", "token", "api_key", "apikey", "password"
#define GYRE_AUDIT_SECRET_MIN_LEN 8

/* Records one change (its time is now).  0, or a negative errno with `err` filled (-EINVAL: the entry broke a
 * rule above, and `err` says which field and why, never the value). */
int gyre_audit_record(gyre_state_t *st, const gyre_audit_entry_t *e, char *err, size_t errlen);

/*
 * Whether `json` (NUL-terminated) may go into the audit log: 0, or -EINVAL with `err` naming `which` ("before",
 * "after") and the member that looks like a secret.  gyre_audit_record runs it; public for the tests.
 */
int gyre_audit_check_json(const char *json, const char *which, char *err, size_t errlen);

/* A page of the audit log, newest first. */
#define GYRE_AUDIT_LIMIT_DEFAULT 100
#define GYRE_AUDIT_LIMIT_MAX 1000

typedef struct gyre_audit_query {
    int64_t since_us, until_us; /* time >= since (0: no bound), time < until (0: no bound) */
    const char *action;         /* exact, or NULL for any */
    const char *actor;          /* exact, or NULL for any */
    int64_t cursor;             /* entries older than this id (a page's next_cursor); 0: from the newest */
    unsigned limit;             /* 1..GYRE_AUDIT_LIMIT_MAX; 0: GYRE_AUDIT_LIMIT_DEFAULT */
} gyre_audit_query_t;

/*
 * Appends the page as JSON to `out`:
 *   {"data":[{"id":N,"time":"2026-12-06T23:10:00.123Z","time_us":N,"actor":"...","action":"...",
 *             "object":"...","before":<JSON>|null,"after":<JSON>|null}, ...],
 *    "next_cursor":"N"|null}
 * next_cursor is null on the last page.  0, or a negative errno with `err` filled (-E2BIG: `out` is full).
 */
int gyre_audit_query(gyre_state_t *st, const gyre_audit_query_t *q, gyre_buf_t *out, char *err, size_t errlen);

#endif
