/*
 * Managed gateway keys: client keys made and revoked while gyre runs (the
 * admin API, `gyre keys`), on top of the keys `auth:` declares in the config.
 *
 * A key reads "gyre-gk_XXXXXXXXXXXX_SECRET": its public id ("gk_" and 12
 * base32 characters) and 32 random bytes in base64url.  Only a BLAKE2b hash
 * of the whole key, keyed with a random salt of its own, is stored (the
 * control-plane database, table gateway_keys); the key is shown once, when it
 * is created or rotated.  Because the id travels in the key, the request path
 * finds the key by id in a hash table and compares one hash, in constant time.
 *
 * The request path reads an immutable snapshot of every key, without a lock:
 * a writer (the admin API, or the watcher that sees `gyre keys` change the
 * database from another process) builds a new snapshot and swaps the pointer.
 * A worker announces the snapshot it reads in its own hazard slot (one cache
 * line per worker) for the few hundred nanoseconds of a lookup; a replaced
 * snapshot is freed once no slot holds it (see keys.c, "Snapshots").
 *
 * Ownership: gyre_keys_open returns an object the caller destroys with
 * gyre_keys_close (after the workers have stopped); it borrows the state
 * handle, which must outlive it.
 */
#ifndef GYRE_CONTROL_KEYS_H
#define GYRE_CONTROL_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "control/principal.h"
#include "control/state.h"

#define GYRE_KEYS_ID_LEN 15          /* "gk_" + 12 base32 characters */
#define GYRE_KEYS_SECRET_BYTES 32    /* random bytes in a key */
#define GYRE_KEYS_KEY_LEN 64         /* "gyre-" + id + "_" + 43 base64url characters */
#define GYRE_KEYS_KEY_SIZE (GYRE_KEYS_KEY_LEN + 1)
#define GYRE_KEYS_NAME_MAX 128       /* a key's name, in bytes */
#define GYRE_KEYS_LIST_MAX 64        /* routes or models one key may list */
#define GYRE_KEYS_LIST_ITEM_MAX 128  /* one route or model name, in bytes */
#define GYRE_KEYS_MAX 100000         /* managed keys in one database: past it create answers -ENOSPC */
#define GYRE_KEYS_GRACE_MAX_US ((int64_t)7 * 24 * 3600 * 1000000) /* the longest overlap of a rotation: a week */
#define GYRE_KEYS_WATCH_US 1000000   /* how often the watcher looks for changes made by another process */

typedef struct gyre_keys gyre_keys_t;

/* What `create` takes; NULL strings are empty.  Lists are comma-separated names. */
typedef struct gyre_key_spec {
    const char *name;
    const char *team, *agent;
    const char *routes, *models;
    uint32_t rpm, tpm;
    double budget_usd; /* < 0: none */
    gyre_budget_period_t budget_period;
    int64_t expires_us; /* unix microseconds; 0: never */
} gyre_key_spec_t;

/* A key as stored, its secret and hash aside (free with gyre_key_row_dispose). */
typedef struct gyre_key_row {
    char id[GYRE_KEYS_ID_LEN + 1];
    char *name, *team, *agent, *routes, *models; /* routes, models: comma-separated, "" for any */
    uint32_t rpm, tpm;
    double budget_usd; /* < 0: none */
    gyre_budget_period_t budget_period;
    int64_t expires_us, created_us, revoked_us, rotated_us; /* 0: never */
    int64_t previous_until_us; /* after a rotation with a grace period: the old key works until then; 0: not */
} gyre_key_row_t;

/* Opens the keys of `st` (creating their table) and loads the first snapshot.  `nreaders`: how many threads
 * may call gyre_keys_authenticate (one hazard slot each; 0 for a process that only writes).  0, or a negative
 * errno with `err` filled. */
int gyre_keys_open(gyre_state_t *st, unsigned nreaders, gyre_keys_t **out, char *err, size_t errlen);
/* Stops the watcher and frees everything; no reader may be running. */
void gyre_keys_close(gyre_keys_t *k);

/* Starts the thread that reloads the snapshot within GYRE_KEYS_WATCH_US of a change another process commits
 * (PRAGMA data_version).  0, or a negative errno. */
int gyre_keys_watch(gyre_keys_t *k);
/* Rebuilds the snapshot from the database now (after a change made through this process, or by the watcher).
 * 0, or a negative errno with `err` filled (the old snapshot keeps serving). */
int gyre_keys_reload(gyre_keys_t *k, char *err, size_t errlen);
/* The snapshot's generation: 1 after open, one more per reload. */
uint64_t gyre_keys_generation(gyre_keys_t *k);

/* ---- The admin side: each writes the database, then reloads the snapshot.  Errors name the field. ---- */

/* Validates `spec`, makes a key, stores its hash.  `key_out` (GYRE_KEYS_KEY_SIZE bytes) gets the key, the only
 * time it exists outside the client; `row` (may be NULL) the stored row.  0, -EINVAL (a field, `err` says which),
 * -ENOSPC or -EIO. */
int gyre_keys_create(gyre_keys_t *k, const gyre_key_spec_t *spec, char *key_out, gyre_key_row_t *row, char *err,
                     size_t errlen);
/* 0, or -ENOENT when there is no key `id`. */
int gyre_keys_get(gyre_keys_t *k, const char *id, gyre_key_row_t *row, char *err, size_t errlen);
/* Every key, oldest first (free each with gyre_key_row_dispose, then the array). */
int gyre_keys_list(gyre_keys_t *k, gyre_key_row_t **rows, size_t *n, char *err, size_t errlen);
/* Revokes key `id` (at once: the next request with it is refused).  0; -ENOENT; -EALREADY when it was revoked
 * already (nothing changes).  `before`/`after` (may be NULL) get the row on either side, for the audit log. */
int gyre_keys_revoke(gyre_keys_t *k, const char *id, gyre_key_row_t *before, gyre_key_row_t *after, char *err,
                     size_t errlen);
/* A new secret for key `id` (same id, same settings).  The old key stops working at once (grace_us 0) or
 * keeps working grace_us more (at most GYRE_KEYS_GRACE_MAX_US).  0; -ENOENT; -EINVAL (revoked, or the grace). */
int gyre_keys_rotate(gyre_keys_t *k, const char *id, int64_t grace_us, char *key_out, gyre_key_row_t *before,
                     gyre_key_row_t *after, char *err, size_t errlen);

/* Records a change in the audit log (control/audit.h): `action` "key.create", "key.revoke", "key.rotate", the
 * rows before and after as gyre_key_row_json gives them (NULL: none).  0, or a negative errno. */
int gyre_keys_audit(gyre_keys_t *k, const char *actor, const char *action, const char *id,
                    const gyre_key_row_t *before, const gyre_key_row_t *after, char *err, size_t errlen);

void gyre_key_row_dispose(gyre_key_row_t *row);
/* "active", "revoked" or "expired" at `now_us`. */
const char *gyre_key_row_status(const gyre_key_row_t *row, int64_t now_us);
/* The row as a JSON object (no secret, no hash).  0 or -E2BIG. */
int gyre_key_row_json(const gyre_key_row_t *row, int64_t now_us, gyre_buf_t *out);

/*
 * When a key expires, as `--expires` and the admin API's "expires" give it: a date ("2027-01-31", its 00:00 UTC),
 * an RFC 3339 time ("2027-01-31T12:00:00Z"), or a duration from `now_us` ("90s", "15m", "12h", "30d", "2w").
 * 0 with *out set, or -1.
 */
int gyre_keys_parse_expires(const char *s, int64_t now_us, int64_t *out);
/* A rotation's grace period: "0", or a duration as above, at most GYRE_KEYS_GRACE_MAX_US.  0, or -1. */
int gyre_keys_parse_grace(const char *s, int64_t *out_us);

/* "day" -> GYRE_BUDGET_DAY ...; -1 for anything else. */
int gyre_keys_period_parse(const char *s);
const char *gyre_keys_period_name(gyre_budget_period_t p);

/* ---- The request path. ---- */

typedef enum gyre_key_verdict {
    GYRE_KEY_NOT_MANAGED = 0, /* not of a managed key's form: the config's keys decide */
    GYRE_KEY_VALID,
    GYRE_KEY_UNKNOWN, /* the form of one, but no key of this gateway */
    GYRE_KEY_REVOKED,
    GYRE_KEY_EXPIRED,
} gyre_key_verdict_t;

/* Whether `cred` has a managed key's form ("gyre-gk_..."). */
int gyre_keys_is_managed_form(const char *cred, size_t len);

/*
 * Who `cred` is, by reader `reader` (< nreaders, one per worker) at `now_us`: on GYRE_KEY_VALID (and on
 * REVOKED, EXPIRED, for the message) `p` gets the key's id; on VALID also its team, agent, limits and whether
 * it has allow lists.  Lock-free; the hash is compared in constant time.
 */
gyre_key_verdict_t gyre_keys_authenticate(gyre_keys_t *k, unsigned reader, const char *cred, size_t len,
                                          int64_t now_us, gyre_principal_t *p);

/*
 * Whether key `key_id` may call `model` (what the client asked for) on route `route` (NULL: a provider/model
 * target).  A key without lists allows everything; a key no longer in the snapshot allows nothing.  1 or 0;
 * on 0, `what` says "model" or "route".
 */
int gyre_keys_allows(gyre_keys_t *k, unsigned reader, const char *key_id, const char *route, const char *model,
                     const char **what);

#endif
