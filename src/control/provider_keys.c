/* Provider keys added through the admin API, sealed with the master key (provider_keys.h). */
#include "control/provider_keys.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "control/audit.h"

static const char schema[] = "CREATE TABLE IF NOT EXISTS provider_keys ("
                             " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                             " id TEXT NOT NULL UNIQUE,"
                             " provider TEXT NOT NULL,"
                             " weight INTEGER NOT NULL,"
                             " nonce BLOB NOT NULL,"
                             " box BLOB NOT NULL,"
                             " created_us INTEGER NOT NULL);";

/* The most bytes read from a master key file: the longest text form (64 hex digits) with room for spaces. */
#define MASTER_FILE_MAX 256

static int ensure_schema(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "the provider keys in %s: %s", path, msg ? msg : "cannot be created");
        sqlite3_free(msg);
        return -EIO;
    }
    return 0;
}

/* sodium_init is idempotent and thread-safe; it fails only when no random source can be opened. */
static int init_sodium(char *err, size_t errlen)
{
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium cannot be initialised (no random source)");
        return -EIO;
    }
    return 0;
}

/* The master key from its text: 64 hex digits, or base64 (padded or not, standard or URL-safe) of 32 bytes,
 * spaces and newlines around it ignored.  0, or -EINVAL. */
static int master_from_text(const char *s, size_t n, unsigned char key[GYRE_MASTER_KEY_BYTES])
{
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    while (n > 0 && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
        s++, n--;
    size_t got = 0;
    const char *end = NULL;
    if (n == 2 * GYRE_MASTER_KEY_BYTES &&
        sodium_hex2bin(key, GYRE_MASTER_KEY_BYTES, s, n, NULL, &got, &end) == 0 && got == GYRE_MASTER_KEY_BYTES &&
        end == s + n)
        return 0;
    static const int variants[] = {sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
                                   sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_URLSAFE_NO_PADDING};
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++)
        if (sodium_base642bin(key, GYRE_MASTER_KEY_BYTES, s, n, NULL, &got, &end, variants[i]) == 0 &&
            got == GYRE_MASTER_KEY_BYTES && end == s + n)
            return 0;
    sodium_memzero(key, GYRE_MASTER_KEY_BYTES);
    return -EINVAL;
}

#define MASTER_FORMS "64 hex digits or the base64 of 32 bytes (make one with: head -c 32 /dev/urandom | base64)"

/* Reads a key file after checking, as ssh does for a private key, that no one but its owner may read it. */
static int master_from_file(const char *path, const char *field, unsigned char key[GYRE_MASTER_KEY_BYTES], char *err,
                            size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot open %s: %s", field, path, strerror(e));
        return -e;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "%s: %s is not a regular file", field, path);
        close(fd);
        return -EINVAL;
    }
    if ((sb.st_mode & 077) != 0) {
        snprintf(err, errlen,
                 "%s: %s may be read or written by its group or others (mode %04o): the master key must be private "
                 "to its owner; chmod 600 %s",
                 field, path, (unsigned)(sb.st_mode & 07777), path);
        close(fd);
        return -EPERM;
    }
    char buf[MASTER_FILE_MAX + 1];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof(buf) && (r = read(fd, buf + n, sizeof(buf) - n)) != 0) {
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            snprintf(err, errlen, "%s: cannot read %s: %s", field, path, strerror(e));
            close(fd);
            sodium_memzero(buf, sizeof(buf));
            return -e;
        }
        n += (size_t)r;
    }
    close(fd);
    int rc = 0;
    if (n == GYRE_MASTER_KEY_BYTES && master_from_text(buf, n, key) != 0)
        memcpy(key, buf, GYRE_MASTER_KEY_BYTES); /* 32 raw bytes (no text form is 32 bytes long) */
    else if (n > MASTER_FILE_MAX || master_from_text(buf, n, key) != 0) {
        snprintf(err, errlen, "%s: %s does not hold a master key: it must be %s, or 32 raw bytes", field, path,
                 MASTER_FORMS);
        rc = -EINVAL;
    }
    sodium_memzero(buf, sizeof(buf));
    return rc;
}

int gyre_provider_keys_master(const gyre_config_t *c, unsigned char key[GYRE_MASTER_KEY_BYTES], const char **source,
                              char *err, size_t errlen)
{
    const char *env = getenv("GYRE_MASTER_KEY");
    if (env != NULL && env[0] != '\0') {
        *source = "GYRE_MASTER_KEY";
        if (master_from_text(env, strlen(env), key) != 0) {
            snprintf(err, errlen, "GYRE_MASTER_KEY is not a master key: it must be %s", MASTER_FORMS);
            return -EINVAL;
        }
        return 1;
    }
    const char *file = getenv("GYRE_MASTER_KEY_FILE");
    if (file != NULL && file[0] != '\0') {
        *source = "GYRE_MASTER_KEY_FILE";
        int r = master_from_file(file, "GYRE_MASTER_KEY_FILE", key, err, errlen);
        return r == 0 ? 1 : r;
    }
    if (c != NULL && c->master_key_file != NULL) {
        *source = "master_key_file";
        int r = master_from_file(c->master_key_file, "master_key_file", key, err, errlen);
        return r == 0 ? 1 : r;
    }
    *source = NULL;
    return 0;
}

void gyre_provider_keys_seal(const unsigned char mk[GYRE_MASTER_KEY_BYTES], const char *plain, size_t len,
                             unsigned char nonce[24], unsigned char *box)
{
    randombytes_buf(nonce, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(box, (const unsigned char *)plain, len, nonce, mk);
}

int gyre_provider_keys_open(const unsigned char mk[GYRE_MASTER_KEY_BYTES], const unsigned char nonce[24],
                            const unsigned char *box, size_t boxlen, char *plain)
{
    if (boxlen < crypto_secretbox_MACBYTES ||
        crypto_secretbox_open_easy((unsigned char *)plain, box, boxlen, nonce, mk) != 0)
        return -EBADMSG;
    plain[boxlen - crypto_secretbox_MACBYTES] = '\0';
    return 0;
}

const char *gyre_provider_keys_problem(const char *key, size_t len)
{
    if (len == 0)
        return "is empty";
    if (len > GYRE_PROVIDER_KEY_MAX)
        return "is longer than 4096 bytes";
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)key[i] < 0x21 || (unsigned char)key[i] > 0x7e)
            return "has a byte that is not printable ASCII (a space, a control byte or a non-ASCII byte)";
    return NULL;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The audit log's view of a key: its id, provider and weight (never the key). */
static void describe(char *buf, size_t size, const char *id, const char *provider, unsigned weight)
{
    /* Ids and provider names are [A-Za-z0-9._:#-] (config names and gyre's own numbering): nothing to escape. */
    snprintf(buf, size, "{\"id\":\"%s\",\"provider\":\"%s\",\"weight\":%u}", id, provider, weight);
}

int gyre_provider_keys_add(gyre_state_t *st, const gyre_config_t *c, const char *actor, const char *provider,
                           const char *key, size_t keylen, unsigned weight, char *id, size_t idlen, char *err,
                           size_t errlen)
{
    int r;
    if ((r = init_sodium(err, errlen)) != 0)
        return r;
    const gyre_provider_conf_t *p = gyre_config_find_provider(c, provider, strlen(provider));
    if (p == NULL) {
        snprintf(err, errlen, "no provider '%.64s' in the configuration", provider);
        return -ENOENT;
    }
    const char *problem = gyre_provider_keys_problem(key, keylen);
    if (problem != NULL) {
        snprintf(err, errlen, "'key' %s", problem);
        return -EINVAL;
    }
    if (weight > GYRE_PROVIDER_KEY_WEIGHT_MAX) {
        snprintf(err, errlen, "'weight' must be from 0 to %d", GYRE_PROVIDER_KEY_WEIGHT_MAX);
        return -EINVAL;
    }
    unsigned char mk[GYRE_MASTER_KEY_BYTES];
    const char *source = NULL;
    r = gyre_provider_keys_master(c, mk, &source, err, errlen);
    if (r == 0) {
        snprintf(err, errlen,
                 "no master key: provider keys added through the admin API are stored encrypted; start gyre with "
                 "GYRE_MASTER_KEY (%s), GYRE_MASTER_KEY_FILE or master_key_file: set",
                 MASTER_FORMS);
        return -ENOKEY;
    }
    if (r < 0)
        return r;
    size_t boxlen = keylen + crypto_secretbox_MACBYTES;
    unsigned char nonce[crypto_secretbox_NONCEBYTES], *box = gyre_malloc(boxlen);
    gyre_provider_keys_seal(mk, key, keylen, nonce, box);
    sodium_memzero(mk, sizeof(mk));

    sqlite3 *db = gyre_state_lock(st);
    sqlite3_stmt *s = NULL;
    int64_t seq = 0;
    if ((r = ensure_schema(db, gyre_state_path(st), err, errlen)) != 0)
        goto out;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        goto db_error;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM provider_keys", -1, &s, NULL) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW)
        goto db_error_rollback;
    if (sqlite3_column_int64(s, 0) >= GYRE_PROVIDER_KEYS_MAX) {
        snprintf(err, errlen, "there are already %d provider keys added through the admin API; remove one first",
                 GYRE_PROVIDER_KEYS_MAX);
        r = -ENOSPC;
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        goto out;
    }
    sqlite3_finalize(s);
    s = NULL;
    /* The id needs the row's number, which only the insert gives: a placeholder first (unique within the
     * transaction), then the id. */
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO provider_keys (id, provider, weight, nonce, box, created_us)"
                           " VALUES ('-', ?, ?, ?, ?, ?)",
                           -1, &s, NULL) != SQLITE_OK)
        goto db_error_rollback;
    sqlite3_bind_text(s, 1, p->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, weight);
    sqlite3_bind_blob(s, 3, nonce, sizeof(nonce), SQLITE_STATIC);
    sqlite3_bind_blob(s, 4, box, (int)boxlen, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, now_us());
    if (sqlite3_step(s) != SQLITE_DONE)
        goto db_error_rollback;
    seq = sqlite3_last_insert_rowid(db);
    sqlite3_finalize(s);
    s = NULL;
    snprintf(id, idlen, "%s#a%" PRId64, p->name, seq);
    if (sqlite3_prepare_v2(db, "UPDATE provider_keys SET id = ? WHERE seq = ?", -1, &s, NULL) != SQLITE_OK)
        goto db_error_rollback;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, seq);
    if (sqlite3_step(s) != SQLITE_DONE || sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto db_error_rollback;
    r = 0;
    goto out;
db_error_rollback:
    snprintf(err, errlen, "the provider keys in %s: %s", gyre_state_path(st), sqlite3_errmsg(db));
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    r = -EIO;
    goto out;
db_error:
    snprintf(err, errlen, "the provider keys in %s: %s", gyre_state_path(st), sqlite3_errmsg(db));
    r = -EIO;
out:
    sqlite3_finalize(s);
    gyre_state_unlock(st);
    sodium_memzero(box, boxlen);
    free(box);
    if (r != 0)
        return r;
    char after[256];
    describe(after, sizeof(after), id, p->name, weight);
    gyre_audit_entry_t e = {actor, "provider_key.create", id, NULL, after};
    return gyre_audit_record(st, &e, err, errlen);
}

int gyre_provider_keys_remove(gyre_state_t *st, const char *actor, const char *provider, const char *id, char *err,
                              size_t errlen)
{
    sqlite3 *db = gyre_state_lock(st);
    sqlite3_stmt *s = NULL;
    int r;
    unsigned weight = 0;
    if ((r = ensure_schema(db, gyre_state_path(st), err, errlen)) != 0)
        goto out;
    if (sqlite3_prepare_v2(db, "DELETE FROM provider_keys WHERE id = ? AND provider = ? RETURNING weight", -1, &s,
                           NULL) != SQLITE_OK) {
        snprintf(err, errlen, "the provider keys in %s: %s", gyre_state_path(st), sqlite3_errmsg(db));
        r = -EIO;
        goto out;
    }
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, provider, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        weight = (unsigned)sqlite3_column_int64(s, 0);
        rc = sqlite3_step(s);
    } else if (rc == SQLITE_DONE) {
        snprintf(err, errlen, "provider '%.64s' has no key '%.96s' added through the admin API", provider, id);
        r = -ENOENT;
        goto out;
    }
    if (rc != SQLITE_DONE) {
        snprintf(err, errlen, "the provider keys in %s: %s", gyre_state_path(st), sqlite3_errmsg(db));
        r = -EIO;
    }
out:
    sqlite3_finalize(s);
    gyre_state_unlock(st);
    if (r != 0)
        return r;
    char before[256];
    describe(before, sizeof(before), id, provider, weight);
    gyre_audit_entry_t e = {actor, "provider_key.delete", id, before, NULL};
    return gyre_audit_record(st, &e, err, errlen);
}

int gyre_provider_keys_list(gyre_state_t *st, gyre_provider_key_info_t **out, size_t *n, char *err, size_t errlen)
{
    sqlite3 *db = gyre_state_lock(st);
    sqlite3_stmt *s = NULL;
    gyre_provider_key_info_t *v = NULL;
    size_t count = 0;
    int r, rc;
    if ((r = ensure_schema(db, gyre_state_path(st), err, errlen)) != 0)
        goto out;
    if (sqlite3_prepare_v2(db, "SELECT id, provider, weight, created_us FROM provider_keys ORDER BY seq", -1, &s,
                           NULL) != SQLITE_OK) {
        rc = SQLITE_ERROR;
        goto fail;
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        v = gyre_realloc(v, sizeof(*v) * (count + 1));
        gyre_provider_key_info_t *k = &v[count++];
        snprintf(k->id, sizeof(k->id), "%s", (const char *)sqlite3_column_text(s, 0));
        snprintf(k->provider, sizeof(k->provider), "%s", (const char *)sqlite3_column_text(s, 1));
        k->weight = (unsigned)sqlite3_column_int64(s, 2);
        k->created_us = sqlite3_column_int64(s, 3);
    }
    if (rc == SQLITE_DONE)
        goto out;
fail:
    snprintf(err, errlen, "the provider keys in %s: %s", gyre_state_path(st), sqlite3_errmsg(db));
    r = -EIO;
    free(v);
    v = NULL;
    count = 0;
out:
    sqlite3_finalize(s);
    gyre_state_unlock(st);
    *out = v;
    *n = count;
    return r;
}

/* One stored key, opened. */
typedef struct opened {
    char *id, *key;
    size_t provider; /* index in the configuration, or SIZE_MAX when it has no such provider */
    unsigned weight;
} opened_t;

static void free_opened(opened_t *o, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(o[i].id);
        if (o[i].key != NULL) {
            sodium_memzero(o[i].key, strlen(o[i].key));
            free(o[i].key);
        }
    }
    free(o);
}

static int has_id(const gyre_provider_conf_t *p, const char *id)
{
    for (size_t i = 0; i < p->nkeys; i++)
        if (p->key_ids[i] != NULL && strcmp(p->key_ids[i], id) == 0)
            return 1;
    return 0;
}

int gyre_provider_keys_apply(gyre_state_t *st, gyre_config_t *c, char *err, size_t errlen)
{
    int r;
    if ((r = init_sodium(err, errlen)) != 0)
        return r;
    unsigned char mk[GYRE_MASTER_KEY_BYTES];
    const char *source = NULL;
    /* A master key that is configured but unusable (malformed, a file others may read) is an error even with no
     * key stored yet: better at start than at the first key added. */
    int have = gyre_provider_keys_master(c, mk, &source, err, errlen);
    if (have < 0)
        return have;
    opened_t *o = NULL;
    size_t n = 0;
    sqlite3 *db = gyre_state_lock(st);
    sqlite3_stmt *s = NULL;
    if ((r = ensure_schema(db, gyre_state_path(st), err, errlen)) != 0)
        goto out;
    if (sqlite3_prepare_v2(db, "SELECT id, provider, weight, nonce, box FROM provider_keys ORDER BY seq", -1, &s,
                           NULL) != SQLITE_OK)
        goto db_error;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(s, 0);
        const char *provider = (const char *)sqlite3_column_text(s, 1);
        /* Only a stored key needs the master key: a gyre that never had one may run without. */
        if (have == 0) {
            snprintf(err, errlen,
                     "provider keys were added through the admin API and are stored encrypted in %s, but no master "
                     "key is set: set GYRE_MASTER_KEY (or GYRE_MASTER_KEY_FILE, or master_key_file:) to the master "
                     "key they were added with",
                     gyre_state_path(st));
            r = -ENOKEY;
            goto out;
        }
        const void *nonce = sqlite3_column_blob(s, 3);
        int nlen = sqlite3_column_bytes(s, 3);
        const void *box = sqlite3_column_blob(s, 4);
        size_t boxlen = (size_t)sqlite3_column_bytes(s, 4);
        char *plain = gyre_malloc(boxlen + 1);
        if (nlen != crypto_secretbox_NONCEBYTES || box == NULL ||
            gyre_provider_keys_open(mk, nonce, box, boxlen, plain) != 0) {
            snprintf(err, errlen,
                     "provider key '%.96s' (provider '%.64s') in %s cannot be decrypted with the master key from %s: "
                     "it is not the master key the key was added with, or the stored key was altered",
                     id ? id : "?", provider ? provider : "?", gyre_state_path(st), source);
            free(plain);
            r = -EBADMSG;
            goto out;
        }
        o = gyre_realloc(o, sizeof(*o) * (n + 1));
        opened_t *k = &o[n++];
        k->id = gyre_strdup(id ? id : "");
        k->key = plain;
        k->weight = (unsigned)sqlite3_column_int64(s, 2);
        k->provider = SIZE_MAX;
        for (size_t i = 0; provider != NULL && i < c->nproviders; i++)
            if (c->providers[i].name != NULL && strcmp(c->providers[i].name, provider) == 0)
                k->provider = i;
        if (k->provider == SIZE_MAX)
            gyre_logf("gyre: provider key '%s' is for provider '%s', which the configuration does not have: it is "
                      "not used\n",
                      k->id, provider ? provider : "?");
    }
    if (rc != SQLITE_DONE)
        goto db_error;
    r = 0;
    goto out;
db_error:
    snprintf(err, errlen, "the provider keys in %s: %s", gyre_state_path(st), sqlite3_errmsg(db));
    r = -EIO;
out:
    sqlite3_finalize(s);
    gyre_state_unlock(st);
    sodium_memzero(mk, sizeof(mk));
    if (r == 0)
        for (size_t i = 0; i < n; i++) {
            if (o[i].provider == SIZE_MAX)
                continue;
            gyre_provider_conf_t *p = &c->providers[o[i].provider];
            if (has_id(p, o[i].id))
                continue;
            p->keys = gyre_realloc(p->keys, sizeof(*p->keys) * (p->nkeys + 1));
            p->key_ids = gyre_realloc(p->key_ids, sizeof(*p->key_ids) * (p->nkeys + 1));
            p->key_weights = gyre_realloc(p->key_weights, sizeof(*p->key_weights) * (p->nkeys + 1));
            p->keys[p->nkeys] = o[i].key;
            p->key_ids[p->nkeys] = o[i].id;
            p->key_weights[p->nkeys] = o[i].weight;
            p->nkeys++;
            o[i].key = o[i].id = NULL; /* the configuration owns them now */
        }
    free_opened(o, n);
    return r;
}
