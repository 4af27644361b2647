/* The control plane's SQLite database (state.h). */
#include "control/state.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "config/config.h"

struct gyre_state {
    sqlite3 *db;
    pthread_mutex_t mu;
    char *path;
};

/* How long a statement waits for a lock another process holds (gyre keys run while gyre serves). */
#define STATE_BUSY_TIMEOUT_MS 5000

int gyre_state_open(const char *path, gyre_state_t **out, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "cannot open the state database %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return -EIO;
    }
    sqlite3_busy_timeout(db, STATE_BUSY_TIMEOUT_MS);
    char *msg = NULL;
    if (sqlite3_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;", NULL,
                     NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "the state database %s: %s", path, msg ? msg : "cannot be set up");
        sqlite3_free(msg);
        sqlite3_close(db);
        return -EIO;
    }
    gyre_state_t *st = gyre_calloc(1, sizeof(*st));
    st->db = db;
    st->path = gyre_strdup(path);
    pthread_mutex_init(&st->mu, NULL);
    *out = st;
    return 0;
}

void gyre_state_close(gyre_state_t *st)
{
    if (st == NULL)
        return;
    sqlite3_close(st->db);
    pthread_mutex_destroy(&st->mu);
    free(st->path);
    free(st);
}

const char *gyre_state_path(const gyre_state_t *st)
{
    return st->path;
}

sqlite3 *gyre_state_lock(gyre_state_t *st)
{
    pthread_mutex_lock(&st->mu);
    return st->db;
}

void gyre_state_unlock(gyre_state_t *st)
{
    pthread_mutex_unlock(&st->mu);
}

int gyre_state_exec(gyre_state_t *st, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    sqlite3 *db = gyre_state_lock(st);
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    gyre_state_unlock(st);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "the state database %s: %s", st->path, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return -EIO;
    }
    return 0;
}

const char *gyre_state_path_for(const struct gyre_config *c, char *buf, size_t size)
{
    if (c->state_path != NULL)
        return c->state_path;
    if (c->store_sqlite == NULL)
        return NULL;
    if ((size_t)snprintf(buf, size, "%s.state", c->store_sqlite) >= size)
        return NULL;
    return buf;
}
