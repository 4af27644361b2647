/*
 * Provider keys added through the admin API, encrypted at rest.
 *
 * Each key is sealed with libsodium's crypto_secretbox_easy (XSalsa20 and
 * Poly1305) under the master key, with a random 24-byte nonce of its own,
 * and kept in the control-plane database (control/state.h, table
 * provider_keys) with its provider, weight and id ("primary#a1": the
 * provider, "#a" for "added", and a number never used twice).  The database
 * never holds a key in clear, and a box that was altered does not open.
 *
 * The master key, 32 bytes, comes from the first of:
 *   GYRE_MASTER_KEY        64 hex digits, or the base64 of 32 bytes
 *                          (`head -c 32 /dev/urandom | base64`);
 *   GYRE_MASTER_KEY_FILE   a file holding that text (or the 32 raw bytes);
 *   `master_key_file:`     the same, named in the configuration.
 * A key file that its group or others may read or write is refused, as ssh
 * refuses such a private key.  Without a master key, adding a key is refused
 * (-ENOKEY), and so is a start with keys stored.
 *
 * gyre_provider_keys_apply appends the stored keys to their providers' key
 * lists in a configuration, after the keys of the file, so that the key
 * pools use them like any other (their ids, never their values, are what
 * traces, logs and metrics name).  The server calls it at start; a live
 * reload calls it on each configuration it loads.
 */
#ifndef GYRE_CONTROL_PROVIDER_KEYS_H
#define GYRE_CONTROL_PROVIDER_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "control/state.h"

#define GYRE_MASTER_KEY_BYTES 32
/* The longest provider key accepted through the API: longer is a 400 (Bedrock's session tokens run to about
 * 1,200 bytes; a key travels in one header). */
#define GYRE_PROVIDER_KEY_MAX 4096
/* The most keys added through the API, all providers together: the key pools scan their keys on every pick. */
#define GYRE_PROVIDER_KEYS_MAX 256
/* The largest weight, as the configuration's keys[].weight. */
#define GYRE_PROVIDER_KEY_WEIGHT_MAX 1000000

/*
 * The master key: 1 with `key` filled and *source naming where it came from ("GYRE_MASTER_KEY",
 * "GYRE_MASTER_KEY_FILE", "master_key_file"); 0 when none is configured; or a negative errno with `err` saying
 * what is wrong with the one configured (never its value): -EINVAL malformed, -EPERM a file others may read,
 * another for a file that cannot be read.
 */
int gyre_provider_keys_master(const gyre_config_t *c, unsigned char key[GYRE_MASTER_KEY_BYTES], const char **source,
                              char *err, size_t errlen);

/* Seals `plain` (len bytes) with a fresh random nonce: `box` gets len + 16 bytes (crypto_secretbox_MACBYTES). */
void gyre_provider_keys_seal(const unsigned char mk[GYRE_MASTER_KEY_BYTES], const char *plain, size_t len,
                             unsigned char nonce[24], unsigned char *box);
/* Opens a box of `boxlen` bytes into `plain` (boxlen - 16 bytes, then a NUL).  0, or -EBADMSG when the master key
 * is not the one it was sealed with or the box was altered. */
int gyre_provider_keys_open(const unsigned char mk[GYRE_MASTER_KEY_BYTES], const unsigned char nonce[24],
                            const unsigned char *box, size_t boxlen, char *plain);

/* Whether `key` may be a provider key: 1 to GYRE_PROVIDER_KEY_MAX bytes of 0x21-0x7E (it goes into a header).
 * NULL, or what is wrong with it (never the key). */
const char *gyre_provider_keys_problem(const char *key, size_t len);

/*
 * Stores a new key for `provider` (which must be in `c`) with `weight` and records it in the audit log as
 * `actor` (action "provider_key.create"; after: id, provider, weight).  0 with `id` filled, or a negative errno
 * with `err`: -ENOKEY no master key, -ENOENT no such provider, -EINVAL a bad key or weight, -ENOSPC at
 * GYRE_PROVIDER_KEYS_MAX, -EIO the database.
 */
int gyre_provider_keys_add(gyre_state_t *st, const gyre_config_t *c, const char *actor, const char *provider,
                           const char *key, size_t keylen, unsigned weight, char *id, size_t idlen, char *err,
                           size_t errlen);

/* Removes the key `id` of `provider` and records it (action "provider_key.delete"; before: id, provider, weight).
 * 0, -ENOENT when the database has no such key of that provider, or -EIO. */
int gyre_provider_keys_remove(gyre_state_t *st, const char *actor, const char *provider, const char *id, char *err,
                              size_t errlen);

/* What the database holds, without the keys. */
typedef struct gyre_provider_key_info {
    char id[96];
    char provider[64];
    unsigned weight;
    int64_t created_us;
} gyre_provider_key_info_t;

/* Every stored key, oldest first: 0 with *out (free it) and *n set, or -EIO. */
int gyre_provider_keys_list(gyre_state_t *st, gyre_provider_key_info_t **out, size_t *n, char *err, size_t errlen);

/*
 * Appends every stored key to its provider's keys, key_ids and key_weights in `c`, skipping ids `c` already
 * has (so a second call on the same configuration changes nothing).  A key whose provider `c` no longer has is
 * left out, and said so once in the log.  0; -ENOKEY when keys are stored and no master key is configured;
 * -EBADMSG when one does not open (`err` names its id: a wrong master key, or an altered row); another negative
 * errno for the database or a bad master key.  `c` is unchanged unless 0 is returned.
 */
int gyre_provider_keys_apply(gyre_state_t *st, gyre_config_t *c, char *err, size_t errlen);

#endif
