/*
 * The control plane's own state: managed gateway keys, provider keys added
 * through the admin API (encrypted), the audit log, alert events, live route
 * changes.  Small, rarely written, and it must survive a restart, so it is a
 * SQLite database of its own (`state:` in the config; default: beside the
 * trace store's SQLite file, "<store>.state"), apart from the trace index so
 * that the indexer's long write transactions never delay an admin change.
 *
 * One connection, serialised by a mutex: callers take it with
 * gyre_state_lock, run their statements, and give it back.  Nothing on the
 * request path takes it (the hot-path state, limits and budgets, lives in
 * memory behind control/limits.h's backend table; see docs/decisions.md).
 * A feature keeps its tables in its own file (control/keys.c,
 * control/audit.c, control/alerts_store.c ...) and creates them with
 * gyre_state_migrate when it first opens.
 *
 * Ownership: gyre_state_open returns a handle the caller closes with
 * gyre_state_close; the server holds one for the life of the process.
 */
#ifndef GYRE_CONTROL_STATE_H
#define GYRE_CONTROL_STATE_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gyre_state gyre_state_t;

/* Opens (creating) the state database at `path`.  0, or a negative errno with `err` saying why. */
int gyre_state_open(const char *path, gyre_state_t **out, char *err, size_t errlen);
void gyre_state_close(gyre_state_t *st);
const char *gyre_state_path(const gyre_state_t *st);

/* The connection, held until gyre_state_unlock: no other thread uses it meanwhile. */
sqlite3 *gyre_state_lock(gyre_state_t *st);
void gyre_state_unlock(gyre_state_t *st);

/* Runs `sql` (one or more statements, e.g. CREATE TABLE IF NOT EXISTS ...) under the lock.  0, or -EIO with
 * `err` holding SQLite's message. */
int gyre_state_exec(gyre_state_t *st, const char *sql, char *err, size_t errlen);

/* The path of the state database for a configuration: `state:` as given, else "<store_sqlite>.state", else NULL
 * (no store and no `state:`: no state, and the features that need one answer 404 state_not_configured). */
struct gyre_config;
const char *gyre_state_path_for(const struct gyre_config *c, char *buf, size_t size);

#endif
