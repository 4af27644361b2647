/* Managed gateway keys (keys.h): the snapshot the workers read, the watcher, the key itself and its lookup.
 * The table's rows and the admin side are in keys_store.c. */
#include "control/keys.h"
#include "control/keys_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"

#define KEY_PREFIX "gyre-"
#define ID_PREFIX "gk_"
#define ID_RANDOM_CHARS 12

static const char base32[] = "abcdefghijklmnopqrstuvwxyz234567";

/*
 * The table.  `salt` keys BLAKE2b for this key alone, so equal keys (which
 * 256 random bits make impossible anyway) would not hash alike and a stolen
 * database gives nothing to precompute against.  A slow password hash (argon2)
 * would buy nothing: the secret is 256 random bits, not a guessable password,
 * and it would cost tens of milliseconds on every request.
 */
static const char schema[] =
    "CREATE TABLE IF NOT EXISTS gateway_keys ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " team TEXT NOT NULL DEFAULT '',"
    " agent TEXT NOT NULL DEFAULT '',"
    " routes TEXT NOT NULL DEFAULT '',"
    " models TEXT NOT NULL DEFAULT '',"
    " rpm INTEGER NOT NULL DEFAULT 0,"
    " tpm INTEGER NOT NULL DEFAULT 0,"
    " budget_usd REAL NOT NULL DEFAULT -1,"
    " budget_period TEXT NOT NULL DEFAULT '',"
    " expires_us INTEGER NOT NULL DEFAULT 0,"
    " created_us INTEGER NOT NULL,"
    " revoked_us INTEGER NOT NULL DEFAULT 0,"
    " rotated_us INTEGER NOT NULL DEFAULT 0,"
    " salt BLOB NOT NULL,"
    " hash BLOB NOT NULL,"
    " prev_salt BLOB,"
    " prev_hash BLOB,"
    " prev_until_us INTEGER NOT NULL DEFAULT 0"
    ");";

/* ---- Snapshots ----
 *
 * A snapshot is built whole and never changed after it is published.  Readers
 * use hazard pointers: a reader stores the snapshot it is about to read in its
 * own slot, then checks that it is still the current one (else it tries
 * again); a writer that replaced a snapshot frees it only when no slot holds
 * it.  Every access is sequentially consistent, so a writer that sees no slot
 * holding the old snapshot after its swap knows that any reader still about to
 * announce it will see the swap and retry without reading it.  Nothing a
 * reader touches is shared with other readers but the current pointer (read
 * only), so workers never contend.  Replaced snapshots wait in a list that is
 * retried on every swap and every watcher tick; they are a handful at most,
 * since a slot holds one only for one lookup.
 */
typedef struct snap_key {
    char id[GYRE_KEYS_ID_LEN + 1];
    unsigned char salt[SALT_LEN], hash[HASH_LEN];
    unsigned char prev_salt[SALT_LEN], prev_hash[HASH_LEN];
    int64_t prev_until_us; /* 0: no previous key */
    int64_t expires_us, revoked_us;
    char team[GYRE_PRINCIPAL_ID_MAX], agent[GYRE_PRINCIPAL_ID_MAX];
    gyre_limit_set_t limits;
    char **routes, **models; /* NULL-ended, or NULL for any */
} snap_key_t;

typedef struct snap {
    uint64_t generation;
    snap_key_t *keys;
    size_t nkeys;
    uint32_t *slots; /* open addressing by id: index + 1, 0 empty */
    size_t nslots;   /* a power of two, at least twice nkeys */
    struct snap *next_retired;
} snap_t;

typedef struct reader_slot {
    _Atomic(snap_t *) hazard;
    char pad[64 - sizeof(void *)]; /* one cache line each: workers never write a line another worker reads */
} reader_slot_t;

struct gyre_keys {
    gyre_state_t *st;
    _Atomic(snap_t *) current;
    reader_slot_t *readers;
    unsigned nreaders;
    pthread_mutex_t write_mu; /* one writer at a time: reloads and the retired list */
    snap_t *retired;
    int64_t data_version; /* PRAGMA data_version when the snapshot was last built */
    pthread_t watcher;
    int watching;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    int stop;
};

int64_t gyre_keys_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void gyre_keys_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static uint64_t id_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a: ids are random, so any spread will do */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static char **split_list(const char *s)
{
    if (s == NULL || s[0] == '\0')
        return NULL;
    size_t n = 1;
    for (const char *p = s; *p; p++)
        n += *p == ',';
    char **v = gyre_calloc(n + 1, sizeof(*v));
    size_t i = 0;
    for (const char *p = s;;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len != 0)
            v[i++] = gyre_strndup(p, len);
        if (c == NULL)
            break;
        p = c + 1;
    }
    return v;
}

static void free_list(char **v)
{
    if (v == NULL)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

static void snap_free(snap_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nkeys; i++) {
        free_list(s->keys[i].routes);
        free_list(s->keys[i].models);
    }
    sodium_memzero(s->keys, s->nkeys * sizeof(*s->keys));
    free(s->keys);
    free(s->slots);
    free(s);
}

static const snap_key_t *snap_find(const snap_t *s, const char *id, size_t len)
{
    if (s->nslots == 0 || len != GYRE_KEYS_ID_LEN)
        return NULL;
    for (size_t i = id_hash(id, len) & (s->nslots - 1);; i = (i + 1) & (s->nslots - 1)) {
        uint32_t at = s->slots[i];
        if (at == 0)
            return NULL;
        if (memcmp(s->keys[at - 1].id, id, len) == 0)
            return &s->keys[at - 1];
    }
}

static void blob_copy(sqlite3_stmt *st, int col, unsigned char *out, size_t len)
{
    const void *b = sqlite3_column_blob(st, col);
    if (b != NULL && (size_t)sqlite3_column_bytes(st, col) == len)
        memcpy(out, b, len);
    else
        memset(out, 0, len);
}

const char *gyre_keys_col_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t != NULL ? (const char *)t : "";
}

static void copy_name(char *dst, const char *src)
{
    snprintf(dst, GYRE_PRINCIPAL_ID_MAX, "%s", src);
}

/* Reads every key into a new snapshot (the state lock held).  NULL on a database error. */
static snap_t *snap_build(sqlite3 *db, uint64_t generation, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT " ROW_COLUMNS " FROM gateway_keys ORDER BY created_us, id", -1, &st, NULL) !=
        SQLITE_OK) {
        gyre_keys_set_err(err, errlen, "keys: reading the keys: %s", sqlite3_errmsg(db));
        return NULL;
    }
    snap_t *s = gyre_calloc(1, sizeof(*s));
    s->generation = generation;
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (s->nkeys == cap) {
            cap = cap ? cap * 2 : 16;
            s->keys = gyre_realloc(s->keys, cap * sizeof(*s->keys));
        }
        snap_key_t *k = &s->keys[s->nkeys];
        memset(k, 0, sizeof(*k));
        snprintf(k->id, sizeof(k->id), "%s", gyre_keys_col_text(st, 0));
        copy_name(k->team, gyre_keys_col_text(st, 2));
        copy_name(k->agent, gyre_keys_col_text(st, 3));
        k->routes = split_list(gyre_keys_col_text(st, 4));
        k->models = split_list(gyre_keys_col_text(st, 5));
        k->limits.rpm = (uint32_t)sqlite3_column_int64(st, 6);
        k->limits.tpm = (uint32_t)sqlite3_column_int64(st, 7);
        k->limits.budget_usd = sqlite3_column_double(st, 8);
        int period = gyre_keys_period_parse(gyre_keys_col_text(st, 9));
        k->limits.budget_period = period < 0 ? GYRE_BUDGET_NONE : (gyre_budget_period_t)period;
        k->expires_us = sqlite3_column_int64(st, 10);
        k->revoked_us = sqlite3_column_int64(st, 12);
        k->prev_until_us = sqlite3_column_int64(st, 14);
        blob_copy(st, 15, k->salt, SALT_LEN);
        blob_copy(st, 16, k->hash, HASH_LEN);
        if (k->prev_until_us != 0) {
            blob_copy(st, 17, k->prev_salt, SALT_LEN);
            blob_copy(st, 18, k->prev_hash, HASH_LEN);
        }
        if (strlen(k->id) == GYRE_KEYS_ID_LEN)
            s->nkeys++;
        else {
            free_list(k->routes);
            free_list(k->models);
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        gyre_keys_set_err(err, errlen, "keys: reading the keys: %s", sqlite3_errmsg(db));
        snap_free(s);
        return NULL;
    }
    s->nslots = 16;
    while (s->nslots < s->nkeys * 2)
        s->nslots *= 2;
    s->slots = gyre_calloc(s->nslots, sizeof(*s->slots));
    for (size_t j = 0; j < s->nkeys; j++) {
        size_t i = id_hash(s->keys[j].id, GYRE_KEYS_ID_LEN) & (s->nslots - 1);
        while (s->slots[i] != 0)
            i = (i + 1) & (s->nslots - 1);
        s->slots[i] = (uint32_t)(j + 1);
    }
    return s;
}

/* Frees the retired snapshots no reader holds (write_mu held). */
static void reclaim(gyre_keys_t *k)
{
    snap_t **pp = &k->retired;
    while (*pp != NULL) {
        snap_t *s = *pp;
        int held = 0;
        for (unsigned r = 0; r < k->nreaders && !held; r++)
            held = atomic_load(&k->readers[r].hazard) == s;
        if (held) {
            pp = &s->next_retired;
        } else {
            *pp = s->next_retired;
            snap_free(s);
        }
    }
}

static int64_t data_version(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA data_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Rebuilds and publishes the snapshot; `only_if_changed`: only when another connection committed since. */
static int reload(gyre_keys_t *k, int only_if_changed, char *err, size_t errlen)
{
    pthread_mutex_lock(&k->write_mu);
    sqlite3 *db = gyre_state_lock(k->st);
    int64_t v = data_version(db);
    snap_t *s = NULL;
    int r = 0;
    if (!only_if_changed || v != k->data_version) {
        snap_t *old = atomic_load(&k->current);
        s = snap_build(db, old != NULL ? old->generation + 1 : 1, err, errlen);
        if (s == NULL)
            r = -EIO;
        else
            k->data_version = v;
    }
    gyre_state_unlock(k->st);
    if (s != NULL) {
        snap_t *old = atomic_exchange(&k->current, s);
        if (old != NULL) {
            old->next_retired = k->retired;
            k->retired = old;
        }
    }
    reclaim(k);
    pthread_mutex_unlock(&k->write_mu);
    return r;
}

int gyre_keys_reload(gyre_keys_t *k, char *err, size_t errlen)
{
    return reload(k, 0, err, errlen);
}

uint64_t gyre_keys_generation(gyre_keys_t *k)
{
    /* Writers only: the snapshot is read under write_mu, so it cannot be freed meanwhile. */
    pthread_mutex_lock(&k->write_mu);
    uint64_t g = atomic_load(&k->current)->generation;
    pthread_mutex_unlock(&k->write_mu);
    return g;
}

int gyre_keys_open(gyre_state_t *st, unsigned nreaders, gyre_keys_t **out, char *err, size_t errlen)
{
    if (sodium_init() < 0) {
        gyre_keys_set_err(err, errlen, "keys: libsodium cannot be initialised");
        return -EIO;
    }
    int r = gyre_state_exec(st, schema, err, errlen);
    if (r != 0)
        return r;
    gyre_keys_t *k = gyre_calloc(1, sizeof(*k));
    k->st = st;
    k->nreaders = nreaders;
    k->readers = gyre_calloc(nreaders ? nreaders : 1, sizeof(*k->readers));
    k->data_version = -1;
    pthread_mutex_init(&k->write_mu, NULL);
    pthread_mutex_init(&k->stop_mu, NULL);
    pthread_cond_init(&k->stop_cv, NULL);
    if ((r = reload(k, 0, err, errlen)) != 0) {
        gyre_keys_close(k);
        return r;
    }
    *out = k;
    return 0;
}

static void *watch_main(void *arg)
{
    gyre_keys_t *k = arg;
    pthread_mutex_lock(&k->stop_mu);
    while (!k->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += GYRE_KEYS_WATCH_US / 1000000;
        ts.tv_nsec += (GYRE_KEYS_WATCH_US % 1000000) * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&k->stop_cv, &k->stop_mu, &ts);
        if (k->stop)
            break;
        pthread_mutex_unlock(&k->stop_mu);
        char err[256];
        /* A failed reload (the database locked past its busy timeout) keeps the old snapshot; the next tick
         * tries again. */
        (void)reload(k, 1, err, sizeof(err));
        pthread_mutex_lock(&k->stop_mu);
    }
    pthread_mutex_unlock(&k->stop_mu);
    return NULL;
}

int gyre_keys_watch(gyre_keys_t *k)
{
    if (k->watching)
        return 0;
    int r = pthread_create(&k->watcher, NULL, watch_main, k);
    if (r != 0)
        return -r;
    k->watching = 1;
    return 0;
}

void gyre_keys_close(gyre_keys_t *k)
{
    if (k == NULL)
        return;
    if (k->watching) {
        pthread_mutex_lock(&k->stop_mu);
        k->stop = 1;
        pthread_cond_signal(&k->stop_cv);
        pthread_mutex_unlock(&k->stop_mu);
        pthread_join(k->watcher, NULL);
    }
    snap_free(atomic_load(&k->current));
    while (k->retired != NULL) {
        snap_t *n = k->retired->next_retired;
        snap_free(k->retired);
        k->retired = n;
    }
    pthread_mutex_destroy(&k->write_mu);
    pthread_mutex_destroy(&k->stop_mu);
    pthread_cond_destroy(&k->stop_cv);
    free(k->readers);
    free(k);
}

/* ---- Keys and hashes ---- */

void gyre_keys_hash(const char *key, size_t len, const unsigned char salt[SALT_LEN], unsigned char out[HASH_LEN])
{
    crypto_generichash(out, HASH_LEN, (const unsigned char *)key, len, salt, SALT_LEN);
}

/* A new id and key: "gk_" + 12 base32 characters of 60 random bits; the key adds 32 random bytes. */
void gyre_keys_make(char id[GYRE_KEYS_ID_LEN + 1], char key[GYRE_KEYS_KEY_SIZE], const char *keep_id)
{
    if (keep_id != NULL) {
        memcpy(id, keep_id, GYRE_KEYS_ID_LEN + 1);
    } else {
        unsigned char r[ID_RANDOM_CHARS];
        randombytes_buf(r, sizeof(r));
        memcpy(id, ID_PREFIX, 3);
        for (int i = 0; i < ID_RANDOM_CHARS; i++)
            id[3 + i] = base32[r[i] & 31];
        id[GYRE_KEYS_ID_LEN] = '\0';
    }
    unsigned char secret[GYRE_KEYS_SECRET_BYTES];
    randombytes_buf(secret, sizeof(secret));
    char b64[64];
    sodium_bin2base64(b64, sizeof(b64), secret, sizeof(secret), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    /* "gyre-" (5) + id (15) + "_" + 43 base64url characters = GYRE_KEYS_KEY_LEN. */
    memcpy(key, KEY_PREFIX, 5);
    memcpy(key + 5, id, GYRE_KEYS_ID_LEN);
    key[5 + GYRE_KEYS_ID_LEN] = '_';
    memcpy(key + 6 + GYRE_KEYS_ID_LEN, b64, 43);
    key[GYRE_KEYS_KEY_LEN] = '\0';
    sodium_memzero(secret, sizeof(secret));
    sodium_memzero(b64, sizeof(b64));
}

int gyre_keys_is_managed_form(const char *cred, size_t len)
{
    return len == GYRE_KEYS_KEY_LEN && memcmp(cred, KEY_PREFIX ID_PREFIX, 8) == 0 &&
           cred[5 + GYRE_KEYS_ID_LEN] == '_';
}

gyre_key_verdict_t gyre_keys_authenticate(gyre_keys_t *k, unsigned reader, const char *cred, size_t len,
                                          int64_t now, gyre_principal_t *p)
{
    if (!gyre_keys_is_managed_form(cred, len))
        return GYRE_KEY_NOT_MANAGED;
    if (reader >= k->nreaders)
        return GYRE_KEY_UNKNOWN; /* a caller without a slot cannot read safely: it is a bug, refused */
    unsigned char h[HASH_LEN], hp[HASH_LEN];
    _Atomic(snap_t *) *slot = &k->readers[reader].hazard;
    snap_t *s;
    do {
        s = atomic_load(&k->current);
        atomic_store(slot, s);
    } while (s != atomic_load(&k->current));
    gyre_key_verdict_t v = GYRE_KEY_UNKNOWN;
    const snap_key_t *key = snap_find(s, cred + 5, GYRE_KEYS_ID_LEN);
    if (key != NULL) {
        gyre_keys_hash(cred, len, key->salt, h);
        int ok = sodium_memcmp(h, key->hash, HASH_LEN) == 0;
        if (!ok && key->prev_until_us > now) {
            gyre_keys_hash(cred, len, key->prev_salt, hp);
            ok = sodium_memcmp(hp, key->prev_hash, HASH_LEN) == 0;
        }
        if (ok) {
            memcpy(p->key_id, key->id, GYRE_KEYS_ID_LEN + 1);
            if (key->revoked_us != 0 && key->revoked_us <= now) {
                v = GYRE_KEY_REVOKED;
            } else if (key->expires_us != 0 && key->expires_us <= now) {
                v = GYRE_KEY_EXPIRED;
            } else {
                v = GYRE_KEY_VALID;
                p->managed = 1;
                memcpy(p->team, key->team, sizeof(p->team));
                if (key->agent[0] != '\0')
                    memcpy(p->agent, key->agent, sizeof(p->agent));
                p->key_limits = key->limits;
                p->restricted = key->routes != NULL || key->models != NULL;
            }
        }
    }
    atomic_store(slot, NULL);
    return v;
}

static int listed(char *const *list, const char *name)
{
    if (list == NULL)
        return 1;
    if (name == NULL)
        return 0;
    for (char *const *p = list; *p; p++)
        if (strcmp(*p, name) == 0)
            return 1;
    return 0;
}

int gyre_keys_allows(gyre_keys_t *k, unsigned reader, const char *key_id, const char *route, const char *model,
                     const char **what)
{
    *what = "model";
    if (reader >= k->nreaders)
        return 0;
    _Atomic(snap_t *) *slot = &k->readers[reader].hazard;
    snap_t *s;
    do {
        s = atomic_load(&k->current);
        atomic_store(slot, s);
    } while (s != atomic_load(&k->current));
    const snap_key_t *key = snap_find(s, key_id, strlen(key_id));
    int ok = 0;
    if (key != NULL) {
        ok = listed(key->models, model);
        if (ok && !listed(key->routes, route)) {
            ok = 0;
            *what = "route";
        }
    }
    atomic_store(slot, NULL);
    return ok;
}

gyre_state_t *gyre_keys_state(gyre_keys_t *k)
{
    return k->st;
}
