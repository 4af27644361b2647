/* Managed gateway keys (keys.h): the table's rows, creating, revoking and rotating, and what the admin side
 * shares (validation, the JSON of a key, expiry times, the audit log). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/time.h"
#include "control/audit.h"
#include "control/keys.h"
#include "control/keys_int.h"

/* ---- Validation ---- */

static int valid_name_chars(const char *s)
{
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || strchr("._:-/", *s) != NULL))
            return 0;
    return 1;
}

/* team, agent: "" or [A-Za-z0-9._:/-]{1,63}. */
static int check_ident(const char *v, const char *field, char *err, size_t errlen)
{
    if (v == NULL || v[0] == '\0')
        return 0;
    if (strlen(v) >= GYRE_PRINCIPAL_ID_MAX || !valid_name_chars(v)) {
        gyre_keys_set_err(err, errlen, "%s: must be 1 to %d characters of A-Z a-z 0-9 . _ : / -", field,
                GYRE_PRINCIPAL_ID_MAX - 1);
        return -EINVAL;
    }
    return 0;
}

/* A comma list of names: at most GYRE_KEYS_LIST_MAX of them, each a valid name, none empty. */
static int check_list(const char *v, const char *field, char *err, size_t errlen)
{
    if (v == NULL || v[0] == '\0')
        return 0;
    size_t n = 0;
    for (const char *p = v;;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        char item[GYRE_KEYS_LIST_ITEM_MAX + 1];
        if (len == 0 || len > GYRE_KEYS_LIST_ITEM_MAX) {
            gyre_keys_set_err(err, errlen, "%s: item %zu is %s", field, n + 1, len == 0 ? "empty" : "longer than 128 bytes");
            return -EINVAL;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        if (!valid_name_chars(item)) {
            gyre_keys_set_err(err, errlen, "%s: item %zu has a character other than A-Z a-z 0-9 . _ : / -", field, n + 1);
            return -EINVAL;
        }
        if (++n > GYRE_KEYS_LIST_MAX) {
            gyre_keys_set_err(err, errlen, "%s: more than %d items", field, GYRE_KEYS_LIST_MAX);
            return -EINVAL;
        }
        if (c == NULL)
            break;
        p = c + 1;
    }
    return 0;
}

static int check_spec(const gyre_key_spec_t *s, char *err, size_t errlen)
{
    if (s->name == NULL || s->name[0] == '\0') {
        gyre_keys_set_err(err, errlen, "name: is required");
        return -EINVAL;
    }
    if (strlen(s->name) > GYRE_KEYS_NAME_MAX) {
        gyre_keys_set_err(err, errlen, "name: is longer than %d bytes", GYRE_KEYS_NAME_MAX);
        return -EINVAL;
    }
    for (const char *p = s->name; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            gyre_keys_set_err(err, errlen, "name: has a control character");
            return -EINVAL;
        }
    int r;
    if ((r = check_ident(s->team, "team", err, errlen)) != 0 || (r = check_ident(s->agent, "agent", err, errlen)) != 0 ||
        (r = check_list(s->routes, "routes", err, errlen)) != 0 ||
        (r = check_list(s->models, "models", err, errlen)) != 0)
        return r;
    if (isnan(s->budget_usd)) {
        gyre_keys_set_err(err, errlen, "budget_usd: must be a number");
        return -EINVAL;
    }
    if (s->budget_usd >= 0 && (!isfinite(s->budget_usd) || s->budget_period == GYRE_BUDGET_NONE)) {
        gyre_keys_set_err(err, errlen, isfinite(s->budget_usd) ? "budget_period: is required with budget_usd (day, week or month)"
                                                     : "budget_usd: must be a finite number");
        return -EINVAL;
    }
    if (s->budget_usd < 0 && s->budget_period != GYRE_BUDGET_NONE) {
        gyre_keys_set_err(err, errlen, "budget_period: is given without budget_usd");
        return -EINVAL;
    }
    if (s->expires_us < 0) {
        gyre_keys_set_err(err, errlen, "expires: is before 1970");
        return -EINVAL;
    }
    return 0;
}

int gyre_keys_period_parse(const char *s)
{
    if (s == NULL || s[0] == '\0')
        return GYRE_BUDGET_NONE;
    if (strcmp(s, "day") == 0)
        return GYRE_BUDGET_DAY;
    if (strcmp(s, "week") == 0)
        return GYRE_BUDGET_WEEK;
    if (strcmp(s, "month") == 0)
        return GYRE_BUDGET_MONTH;
    return -1;
}

const char *gyre_keys_period_name(gyre_budget_period_t p)
{
    switch (p) {
    case GYRE_BUDGET_DAY: return "day";
    case GYRE_BUDGET_WEEK: return "week";
    case GYRE_BUDGET_MONTH: return "month";
    default: return "";
    }
}

/* ---- Rows ---- */

void gyre_key_row_dispose(gyre_key_row_t *r)
{
    if (r == NULL)
        return;
    free(r->name);
    free(r->team);
    free(r->agent);
    free(r->routes);
    free(r->models);
    memset(r, 0, sizeof(*r));
}

static void row_read(sqlite3_stmt *st, gyre_key_row_t *r)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->id, sizeof(r->id), "%s", gyre_keys_col_text(st, 0));
    r->name = gyre_strdup(gyre_keys_col_text(st, 1));
    r->team = gyre_strdup(gyre_keys_col_text(st, 2));
    r->agent = gyre_strdup(gyre_keys_col_text(st, 3));
    r->routes = gyre_strdup(gyre_keys_col_text(st, 4));
    r->models = gyre_strdup(gyre_keys_col_text(st, 5));
    r->rpm = (uint32_t)sqlite3_column_int64(st, 6);
    r->tpm = (uint32_t)sqlite3_column_int64(st, 7);
    r->budget_usd = sqlite3_column_double(st, 8);
    int period = gyre_keys_period_parse(gyre_keys_col_text(st, 9));
    r->budget_period = period < 0 ? GYRE_BUDGET_NONE : (gyre_budget_period_t)period;
    r->expires_us = sqlite3_column_int64(st, 10);
    r->created_us = sqlite3_column_int64(st, 11);
    r->revoked_us = sqlite3_column_int64(st, 12);
    r->rotated_us = sqlite3_column_int64(st, 13);
    r->previous_until_us = sqlite3_column_int64(st, 14);
}

/* One row by id (the state lock held).  0, -ENOENT, -EIO. */
static int row_get(sqlite3 *db, const char *id, gyre_key_row_t *r, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = -EIO;
    if (sqlite3_prepare_v2(db, "SELECT " ROW_COLUMNS " FROM gateway_keys WHERE id = ?", -1, &st, NULL) != SQLITE_OK) {
        gyre_keys_set_err(err, errlen, "keys: %s", sqlite3_errmsg(db));
        return -EIO;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        if (r != NULL)
            row_read(st, r);
        rc = 0;
    } else if (s == SQLITE_DONE) {
        gyre_keys_set_err(err, errlen, "no key has the id %.64s", id);
        rc = -ENOENT;
    } else {
        gyre_keys_set_err(err, errlen, "keys: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    return rc;
}

int gyre_keys_get(gyre_keys_t *k, const char *id, gyre_key_row_t *row, char *err, size_t errlen)
{
    sqlite3 *db = gyre_state_lock(gyre_keys_state(k));
    int r = row_get(db, id, row, err, errlen);
    gyre_state_unlock(gyre_keys_state(k));
    return r;
}

int gyre_keys_list(gyre_keys_t *k, gyre_key_row_t **rows, size_t *n, char *err, size_t errlen)
{
    *rows = NULL;
    *n = 0;
    sqlite3 *db = gyre_state_lock(gyre_keys_state(k));
    sqlite3_stmt *st = NULL;
    int r = 0, rc;
    if (sqlite3_prepare_v2(db, "SELECT " ROW_COLUMNS " FROM gateway_keys ORDER BY created_us, id", -1, &st, NULL) !=
        SQLITE_OK) {
        gyre_keys_set_err(err, errlen, "keys: %s", sqlite3_errmsg(db));
        gyre_state_unlock(gyre_keys_state(k));
        return -EIO;
    }
    size_t cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *rows = gyre_realloc(*rows, cap * sizeof(**rows));
        }
        row_read(st, &(*rows)[(*n)++]);
    }
    if (rc != SQLITE_DONE) {
        gyre_keys_set_err(err, errlen, "keys: %s", sqlite3_errmsg(db));
        r = -EIO;
    }
    sqlite3_finalize(st);
    gyre_state_unlock(gyre_keys_state(k));
    return r;
}

static int64_t count_keys(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM gateway_keys", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

int gyre_keys_create(gyre_keys_t *k, const gyre_key_spec_t *spec, char *key_out, gyre_key_row_t *row, char *err,
                     size_t errlen)
{
    int r = check_spec(spec, err, errlen);
    if (r != 0)
        return r;
    char id[GYRE_KEYS_ID_LEN + 1];
    unsigned char salt[SALT_LEN], hash[HASH_LEN];
    sqlite3 *db = gyre_state_lock(gyre_keys_state(k));
    int64_t n = count_keys(db);
    if (n >= GYRE_KEYS_MAX) {
        gyre_state_unlock(gyre_keys_state(k));
        gyre_keys_set_err(err, errlen, "keys: this gateway has %d keys already, the most it keeps", GYRE_KEYS_MAX);
        return -ENOSPC;
    }
    sqlite3_stmt *st = NULL;
    r = -EIO;
    /* 60 random bits make a clash of ids all but impossible; a clash is refused by the primary key and retried. */
    for (int tries = 0; tries < 4 && r == -EIO; tries++) {
        gyre_keys_make(id, key_out, NULL);
        randombytes_buf(salt, SALT_LEN);
        gyre_keys_hash(key_out, GYRE_KEYS_KEY_LEN, salt, hash);
        if (sqlite3_prepare_v2(db,
                               "INSERT INTO gateway_keys (id, name, team, agent, routes, models, rpm, tpm, budget_usd,"
                               " budget_period, expires_us, created_us, salt, hash)"
                               " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               -1, &st, NULL) != SQLITE_OK)
            break;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, spec->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, spec->team ? spec->team : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, spec->agent ? spec->agent : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, spec->routes ? spec->routes : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, spec->models ? spec->models : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, spec->rpm);
        sqlite3_bind_int64(st, 8, spec->tpm);
        sqlite3_bind_double(st, 9, spec->budget_usd < 0 ? -1 : spec->budget_usd);
        sqlite3_bind_text(st, 10, gyre_keys_period_name(spec->budget_period), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 11, spec->expires_us);
        sqlite3_bind_int64(st, 12, gyre_keys_now_us());
        sqlite3_bind_blob(st, 13, salt, SALT_LEN, SQLITE_STATIC);
        sqlite3_bind_blob(st, 14, hash, HASH_LEN, SQLITE_STATIC);
        int s = sqlite3_step(st);
        if (s == SQLITE_DONE)
            r = 0;
        else if (s != SQLITE_CONSTRAINT)
            break;
        sqlite3_finalize(st);
        st = NULL;
    }
    if (r != 0)
        gyre_keys_set_err(err, errlen, "keys: storing the key: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    if (r == 0 && row != NULL)
        r = row_get(db, id, row, err, errlen);
    gyre_state_unlock(gyre_keys_state(k));
    if (r != 0)
        sodium_memzero(key_out, GYRE_KEYS_KEY_SIZE);
    else
        r = gyre_keys_reload(k, err, errlen);
    return r;
}

int gyre_keys_revoke(gyre_keys_t *k, const char *id, gyre_key_row_t *before, gyre_key_row_t *after, char *err,
                     size_t errlen)
{
    gyre_key_row_t cur;
    sqlite3 *db = gyre_state_lock(gyre_keys_state(k));
    int r = row_get(db, id, &cur, err, errlen);
    if (r != 0) {
        gyre_state_unlock(gyre_keys_state(k));
        return r;
    }
    if (cur.revoked_us != 0) {
        gyre_keys_set_err(err, errlen, "key %s was revoked already", id);
        r = -EALREADY;
    } else {
        sqlite3_stmt *st = NULL;
        /* The previous key of a rotation goes too: a revoked key has no secret that works. */
        if (sqlite3_prepare_v2(db, "UPDATE gateway_keys SET revoked_us = ?, prev_until_us = 0 WHERE id = ?", -1, &st,
                               NULL) != SQLITE_OK) {
            r = -EIO;
        } else {
            sqlite3_bind_int64(st, 1, gyre_keys_now_us());
            sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
            r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
        }
        if (r != 0)
            gyre_keys_set_err(err, errlen, "keys: revoking: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        if (r == 0 && after != NULL)
            r = row_get(db, id, after, err, errlen);
    }
    gyre_state_unlock(gyre_keys_state(k));
    if (before != NULL)
        *before = cur;
    else
        gyre_key_row_dispose(&cur);
    return r == 0 ? gyre_keys_reload(k, err, errlen) : r;
}

int gyre_keys_rotate(gyre_keys_t *k, const char *id, int64_t grace_us, char *key_out, gyre_key_row_t *before,
                     gyre_key_row_t *after, char *err, size_t errlen)
{
    if (grace_us < 0 || grace_us > GYRE_KEYS_GRACE_MAX_US) {
        gyre_keys_set_err(err, errlen, "grace: must be between 0 and 7d");
        return -EINVAL;
    }
    gyre_key_row_t cur;
    sqlite3 *db = gyre_state_lock(gyre_keys_state(k));
    int r = row_get(db, id, &cur, err, errlen);
    if (r == -ENOENT || r == -EIO) {
        gyre_state_unlock(gyre_keys_state(k));
        return r;
    }
    if (cur.revoked_us != 0) {
        gyre_keys_set_err(err, errlen, "key %s is revoked: create a new key instead", id);
        r = -EINVAL;
    }
    unsigned char salt[SALT_LEN], hash[HASH_LEN];
    if (r == 0) {
        gyre_keys_make(cur.id, key_out, cur.id);
        randombytes_buf(salt, SALT_LEN);
        gyre_keys_hash(key_out, GYRE_KEYS_KEY_LEN, salt, hash);
        int64_t now = gyre_keys_now_us();
        sqlite3_stmt *st = NULL;
        /* With a grace period the current hash becomes the previous one; without, the previous one is dropped. */
        if (sqlite3_prepare_v2(db,
                               "UPDATE gateway_keys SET prev_salt = salt, prev_hash = hash, prev_until_us = ?,"
                               " salt = ?, hash = ?, rotated_us = ? WHERE id = ?",
                               -1, &st, NULL) != SQLITE_OK) {
            r = -EIO;
        } else {
            sqlite3_bind_int64(st, 1, grace_us > 0 ? now + grace_us : 0);
            sqlite3_bind_blob(st, 2, salt, SALT_LEN, SQLITE_STATIC);
            sqlite3_bind_blob(st, 3, hash, HASH_LEN, SQLITE_STATIC);
            sqlite3_bind_int64(st, 4, now);
            sqlite3_bind_text(st, 5, id, -1, SQLITE_STATIC);
            r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
        }
        if (r != 0)
            gyre_keys_set_err(err, errlen, "keys: rotating: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        if (r == 0 && after != NULL)
            r = row_get(db, id, after, err, errlen);
    }
    gyre_state_unlock(gyre_keys_state(k));
    if (r != 0)
        sodium_memzero(key_out, GYRE_KEYS_KEY_SIZE);
    if (before != NULL)
        *before = cur;
    else
        gyre_key_row_dispose(&cur);
    return r == 0 ? gyre_keys_reload(k, err, errlen) : r;
}

const char *gyre_key_row_status(const gyre_key_row_t *row, int64_t now)
{
    if (row->revoked_us != 0)
        return "revoked";
    if (row->expires_us != 0 && row->expires_us <= now)
        return "expired";
    return "active";
}

static int json_time(gyre_buf_t *out, const char *name, int64_t us)
{
    if (us == 0)
        return gyre_buf_appendf(out, ",\"%s\":null", name);
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char b[32];
    strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return gyre_buf_appendf(out, ",\"%s\":\"%s\"", name, b);
}

static int json_list(gyre_buf_t *out, const char *name, const char *csv)
{
    int r = gyre_buf_appendf(out, ",\"%s\":[", name);
    int first = 1;
    for (const char *p = csv; *p;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len != 0) {
            r |= gyre_buf_appends(out, first ? "" : ",");
            r |= gyre_buf_append_json_string(out, p, len);
            first = 0;
        }
        if (c == NULL)
            break;
        p = c + 1;
    }
    return r | gyre_buf_appends(out, "]");
}

int gyre_key_row_json(const gyre_key_row_t *row, int64_t now, gyre_buf_t *out)
{
    int r = gyre_buf_appendf(out, "{\"id\":\"%s\",\"name\":", row->id);
    r |= gyre_buf_append_json_string(out, row->name, strlen(row->name));
    r |= gyre_buf_appends(out, ",\"team\":");
    r |= gyre_buf_append_json_string(out, row->team, strlen(row->team));
    r |= gyre_buf_appends(out, ",\"agent\":");
    r |= gyre_buf_append_json_string(out, row->agent, strlen(row->agent));
    r |= json_list(out, "routes", row->routes);
    r |= json_list(out, "models", row->models);
    r |= gyre_buf_appendf(out, ",\"rpm\":%u,\"tpm\":%u", row->rpm, row->tpm);
    if (row->budget_usd >= 0)
        r |= gyre_buf_appendf(out, ",\"budget_usd\":%.17g,\"budget_period\":\"%s\"", row->budget_usd,
                              gyre_keys_period_name(row->budget_period));
    else
        r |= gyre_buf_appends(out, ",\"budget_usd\":null,\"budget_period\":null");
    r |= json_time(out, "expires", row->expires_us);
    r |= json_time(out, "created", row->created_us);
    r |= json_time(out, "revoked", row->revoked_us);
    r |= json_time(out, "rotated", row->rotated_us);
    r |= json_time(out, "previous_valid_until", row->previous_until_us > now ? row->previous_until_us : 0);
    r |= gyre_buf_appendf(out, ",\"status\":\"%s\"}", gyre_key_row_status(row, now));
    return r != 0 ? -E2BIG : 0;
}

/* ---- Times ---- */

/* "90s", "15m", "12h", "30d", "2w": one number and one unit.  0, or -1. */
static int parse_duration(const char *s, int64_t *us)
{
    char *end = NULL;
    if (s[0] < '0' || s[0] > '9')
        return -1;
    unsigned long long n = strtoull(s, &end, 10);
    int64_t unit = 0;
    if (strcmp(end, "s") == 0)
        unit = 1000000;
    else if (strcmp(end, "m") == 0)
        unit = (int64_t)60 * 1000000;
    else if (strcmp(end, "h") == 0)
        unit = (int64_t)3600 * 1000000;
    else if (strcmp(end, "d") == 0)
        unit = (int64_t)86400 * 1000000;
    else if (strcmp(end, "w") == 0)
        unit = (int64_t)7 * 86400 * 1000000;
    /* At most ten years (3.2e14 us): anything longer is a typo, and `now` plus it stays far from overflow. */
    const unsigned long long ten_years_us = 10ull * 365 * 86400 * 1000000;
    if (unit == 0 || n > ten_years_us / (unsigned long long)unit)
        return -1;
    *us = (int64_t)n * unit;
    return 0;
}

int gyre_keys_parse_expires(const char *s, int64_t now, int64_t *out)
{
    int64_t us;
    if (s == NULL || s[0] == '\0')
        return -1;
    if (parse_duration(s, &us) == 0) {
        *out = now + us;
        return 0;
    }
    /* A date alone is its midnight, UTC. */
    int y, mo, d, used = 0;
    if (strlen(s) == 10 && sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &used) == 3 && used == 10) {
        char full[32];
        snprintf(full, sizeof(full), "%sT00:00:00Z", s);
        return gyre_time_parse(full, out) == 0 ? 0 : -1;
    }
    /* RFC 3339 only: gyre_time_parse also reads unix milliseconds, which a date typed by hand never is. */
    if (strchr(s, 'T') == NULL || gyre_time_parse(s, out) != 0)
        return -1;
    return 0;
}

int gyre_keys_parse_grace(const char *s, int64_t *out)
{
    if (strcmp(s, "0") == 0) {
        *out = 0;
        return 0;
    }
    return parse_duration(s, out) == 0 && *out <= GYRE_KEYS_GRACE_MAX_US ? 0 : -1;
}

int gyre_keys_audit(gyre_keys_t *k, const char *actor, const char *action, const char *id,
                    const gyre_key_row_t *before, const gyre_key_row_t *after, char *err, size_t errlen)
{
    gyre_buf_t b, a;
    gyre_buf_init(&b, GYRE_AUDIT_JSON_MAX);
    gyre_buf_init(&a, GYRE_AUDIT_JSON_MAX);
    int64_t now = gyre_keys_now_us();
    int r = 0;
    if (before != NULL)
        r |= gyre_key_row_json(before, now, &b);
    if (after != NULL)
        r |= gyre_key_row_json(after, now, &a);
    if (r == 0) {
        gyre_audit_entry_t e = {.actor = actor,
                                .action = action,
                                .object = id,
                                .before = before != NULL ? b.base : NULL,
                                .after = after != NULL ? a.base : NULL};
        r = gyre_audit_record(gyre_keys_state(k), &e, err, errlen);
    } else {
        gyre_keys_set_err(err, errlen, "keys: a key's row is larger than the audit log takes");
        r = -E2BIG;
    }
    gyre_buf_dispose(&b);
    gyre_buf_dispose(&a);
    return r;
}
