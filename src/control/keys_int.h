/*
 * What keys.c (the snapshot and the lookup) and keys_store.c (the table's
 * rows and the admin side) share; nothing outside control/keys*.c includes it.
 */
#ifndef GYRE_CONTROL_KEYS_INT_H
#define GYRE_CONTROL_KEYS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "control/keys.h"

#define SALT_LEN 16 /* a key's own random salt, BLAKE2b's key */
#define HASH_LEN 32 /* BLAKE2b-256 */

/* The columns every read of gateway_keys selects, in this order. */
#define ROW_COLUMNS                                                                                                   \
    "id, name, team, agent, routes, models, rpm, tpm, budget_usd, budget_period, expires_us, created_us, revoked_us, " \
    "rotated_us, prev_until_us, salt, hash, prev_salt, prev_hash"

gyre_state_t *gyre_keys_state(gyre_keys_t *k);
int64_t gyre_keys_now_us(void);
/* A text column, "" for NULL. */
const char *gyre_keys_col_text(sqlite3_stmt *st, int col);
void gyre_keys_set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* BLAKE2b-256 of the whole key, keyed with its salt. */
void gyre_keys_hash(const char *key, size_t len, const unsigned char salt[SALT_LEN], unsigned char out[HASH_LEN]);
/* A new key into `key` (GYRE_KEYS_KEY_SIZE); a new id into `id` too, unless `keep_id` (a rotation) gives it. */
void gyre_keys_make(char id[GYRE_KEYS_ID_LEN + 1], char key[GYRE_KEYS_KEY_SIZE], const char *keep_id);

#endif
