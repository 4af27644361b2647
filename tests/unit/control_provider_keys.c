/*
 * src/control/provider_keys.c: provider keys added through the admin API are
 * sealed with the master key (a wrong master key or an altered box does not
 * open, every seal has its own nonce), the database never holds one in
 * clear, and applying them to a configuration appends each once.
 */
#include "control/provider_keys.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "control/audit.h"
#include "test.h"

#define MASTER_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
/* The same 32 bytes in base64. */
#define MASTER_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define OTHER_HEX "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define PROVIDER_KEY "sk-provider-live-4b1d9e7c2a5f8036"

typedef struct fixture {
    char dir[64], path[128];
    gyre_state_t *st;
    gyre_config_t *c;
} fixture_t;

static void setup(fixture_t *f)
{
    char err[256];
    CHECK(sodium_init() >= 0);
    unsetenv("GYRE_MASTER_KEY_FILE");
    setenv("GYRE_MASTER_KEY", MASTER_HEX, 1);
    snprintf(f->dir, sizeof(f->dir), "/tmp/gyre-pkeys-XXXXXX");
    CHECK(mkdtemp(f->dir) != NULL);
    snprintf(f->path, sizeof(f->path), "%s/state.db", f->dir);
    CHECK_INT(gyre_state_open(f->path, &f->st, err, sizeof(err)), 0);
    static const char yaml[] = "providers:\n"
                               "  - {name: mock, kind: openai, base_url: 'http://h/v1', keys: [sk-from-the-file-0]}\n"
                               "  - {name: other, kind: openai, base_url: 'http://h/v1'}\n";
    gyre_config_errors_t errs = {0};
    f->c = gyre_config_parse("t.yaml", yaml, strlen(yaml), &errs);
    CHECK(f->c != NULL);
    gyre_config_errors_dispose(&errs);
}

static void teardown(fixture_t *f)
{
    char cmd[160];
    gyre_state_close(f->st);
    gyre_config_free(f->c);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    CHECK_INT(system(cmd), 0);
}

static void master(const char *hex, unsigned char mk[32])
{
    size_t n = 0;
    CHECK_INT(sodium_hex2bin(mk, 32, hex, strlen(hex), NULL, &n, NULL), 0);
    CHECK_INT(n, 32);
}

TEST(provider_keys_seal_opens_with_the_same_master_key_only)
{
    unsigned char mk[32], other[32], nonce[24], box[sizeof(PROVIDER_KEY) - 1 + 16];
    char plain[sizeof(PROVIDER_KEY)];
    CHECK(sodium_init() >= 0);
    master(MASTER_HEX, mk);
    master(OTHER_HEX, other);
    gyre_provider_keys_seal(mk, PROVIDER_KEY, strlen(PROVIDER_KEY), nonce, box);
    CHECK(memmem(box, sizeof(box), "sk-provider", 11) == NULL);
    CHECK_INT(gyre_provider_keys_open(other, nonce, box, sizeof(box), plain), -EBADMSG);
    CHECK_INT(gyre_provider_keys_open(mk, nonce, box, sizeof(box), plain), 0);
    CHECK_STR(plain, PROVIDER_KEY);
}

TEST(provider_keys_seal_uses_a_fresh_nonce_each_time)
{
    unsigned char mk[32], n1[24], n2[24], b1[sizeof(PROVIDER_KEY) - 1 + 16], b2[sizeof(b1)];
    CHECK(sodium_init() >= 0);
    master(MASTER_HEX, mk);
    gyre_provider_keys_seal(mk, PROVIDER_KEY, strlen(PROVIDER_KEY), n1, b1);
    gyre_provider_keys_seal(mk, PROVIDER_KEY, strlen(PROVIDER_KEY), n2, b2);
    CHECK(memcmp(n1, n2, 24) != 0);
    CHECK(memcmp(b1, b2, sizeof(b1)) != 0);
}

TEST(provider_keys_open_detects_an_altered_box_or_nonce)
{
    unsigned char mk[32], nonce[24], box[sizeof(PROVIDER_KEY) - 1 + 16];
    char plain[sizeof(PROVIDER_KEY)];
    CHECK(sodium_init() >= 0);
    master(MASTER_HEX, mk);
    gyre_provider_keys_seal(mk, PROVIDER_KEY, strlen(PROVIDER_KEY), nonce, box);
    for (size_t i = 0; i < sizeof(box); i++) {
        box[i] ^= 0x01;
        CHECK_INT(gyre_provider_keys_open(mk, nonce, box, sizeof(box), plain), -EBADMSG);
        box[i] ^= 0x01;
    }
    nonce[5] ^= 0x80;
    CHECK_INT(gyre_provider_keys_open(mk, nonce, box, sizeof(box), plain), -EBADMSG);
    nonce[5] ^= 0x80;
    CHECK_INT(gyre_provider_keys_open(mk, nonce, box, 15, plain), -EBADMSG);
    CHECK_INT(gyre_provider_keys_open(mk, nonce, box, sizeof(box), plain), 0);
}

TEST(provider_keys_master_reads_hex_and_base64_from_gyre_master_key_and_refuses_anything_else)
{
    unsigned char k[32], want[32];
    const char *source = NULL;
    char err[256];
    master(MASTER_HEX, want);
    unsetenv("GYRE_MASTER_KEY_FILE");
    setenv("GYRE_MASTER_KEY", MASTER_HEX "\n", 1);
    CHECK_INT(gyre_provider_keys_master(NULL, k, &source, err, sizeof(err)), 1);
    CHECK(memcmp(k, want, 32) == 0);
    CHECK_STR(source, "GYRE_MASTER_KEY");
    setenv("GYRE_MASTER_KEY", MASTER_B64, 1);
    CHECK_INT(gyre_provider_keys_master(NULL, k, &source, err, sizeof(err)), 1);
    CHECK(memcmp(k, want, 32) == 0);
    setenv("GYRE_MASTER_KEY", "not-a-master-key-at-all", 1);
    CHECK_INT(gyre_provider_keys_master(NULL, k, &source, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "GYRE_MASTER_KEY is not a master key: it must be 64 hex digits or the base64 of 32 bytes (make one "
                   "with: head -c 32 /dev/urandom | base64)");
    /* 31 bytes in hex is not a master key either. */
    setenv("GYRE_MASTER_KEY", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e", 1);
    CHECK_INT(gyre_provider_keys_master(NULL, k, &source, err, sizeof(err)), -EINVAL);
    unsetenv("GYRE_MASTER_KEY");
    CHECK_INT(gyre_provider_keys_master(NULL, k, &source, err, sizeof(err)), 0);
}

TEST(provider_keys_master_file_must_be_private_to_its_owner_as_ssh_requires)
{
    unsigned char k[32], want[32];
    const char *source = NULL;
    char err[512], dir[64], path[128];
    master(MASTER_HEX, want);
    snprintf(dir, sizeof(dir), "/tmp/gyre-master-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/master.key", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK_INT(write(fd, MASTER_B64 "\n", strlen(MASTER_B64) + 1), (long long)strlen(MASTER_B64) + 1);
    close(fd);
    CHECK_INT(chmod(path, 0644), 0);
    unsetenv("GYRE_MASTER_KEY");
    setenv("GYRE_MASTER_KEY_FILE", path, 1);
    CHECK_INT(gyre_provider_keys_master(NULL, k, &source, err, sizeof(err)), -EPERM);
    char want_err[512];
    snprintf(want_err, sizeof(want_err),
             "GYRE_MASTER_KEY_FILE: %s may be read or written by its group or others (mode 0644): the master key "
             "must be private to its owner; chmod 600 %s",
             path, path);
    CHECK_STR(err, want_err);
    CHECK_INT(chmod(path, 0640), 0);
    CHECK_INT(gyre_provider_keys_master(NULL, k, &source, err, sizeof(err)), -EPERM);
    CHECK_INT(chmod(path, 0600), 0);
    CHECK_INT(gyre_provider_keys_master(NULL, k, &source, err, sizeof(err)), 1);
    CHECK(memcmp(k, want, 32) == 0);
    CHECK_STR(source, "GYRE_MASTER_KEY_FILE");
    /* 32 raw bytes, named by master_key_file: in the configuration. */
    unsetenv("GYRE_MASTER_KEY_FILE");
    fd = open(path, O_WRONLY | O_TRUNC);
    CHECK_INT(write(fd, want, 32), 32);
    close(fd);
    gyre_config_t c;
    memset(&c, 0, sizeof(c));
    c.master_key_file = path;
    memset(k, 0, sizeof(k));
    CHECK_INT(gyre_provider_keys_master(&c, k, &source, err, sizeof(err)), 1);
    CHECK(memcmp(k, want, 32) == 0);
    CHECK_STR(source, "master_key_file");
    unlink(path);
    rmdir(dir);
}

/* Whether the file at `path` (and its WAL) holds `needle` anywhere. */
static int file_holds(const char *path, const char *needle)
{
    int found = 0;
    char p[160];
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof(p), "%s%s", path, i ? "-wal" : "");
        gyre_buf_t b;
        gyre_buf_init(&b, 64 << 20);
        if (gyre_buf_append_file(&b, p) == 0 && b.len != 0 && memmem(b.base, b.len, needle, strlen(needle)) != NULL)
            found = 1;
        gyre_buf_dispose(&b);
    }
    return found;
}

TEST(provider_keys_add_stores_no_key_in_clear_and_numbers_ids_per_row)
{
    fixture_t f;
    setup(&f);
    char id[96], id2[96], err[512];
    CHECK_INT(gyre_provider_keys_add(f.st, f.c, "admin_token", "mock", PROVIDER_KEY, strlen(PROVIDER_KEY), 3, id,
                                     sizeof(id), err, sizeof(err)),
              0);
    CHECK_STR(id, "mock#a1");
    CHECK_INT(gyre_provider_keys_add(f.st, f.c, "admin_token", "other", "sk-other-key-0123456789", 23, 1, id2,
                                     sizeof(id2), err, sizeof(err)),
              0);
    CHECK_STR(id2, "other#a2");
    CHECK(!file_holds(f.path, PROVIDER_KEY));
    CHECK(!file_holds(f.path, "sk-other-key"));
    gyre_provider_key_info_t *list = NULL;
    size_t n = 0;
    CHECK_INT(gyre_provider_keys_list(f.st, &list, &n, err, sizeof(err)), 0);
    CHECK_INT(n, 2);
    CHECK_STR(list[0].id, "mock#a1");
    CHECK_STR(list[0].provider, "mock");
    CHECK_INT(list[0].weight, 3);
    CHECK_STR(list[1].id, "other#a2");
    free(list);
    teardown(&f);
}

TEST(provider_keys_add_is_refused_without_a_master_key_for_an_unknown_provider_and_for_a_bad_key)
{
    fixture_t f;
    setup(&f);
    char id[96], err[512];
    unsetenv("GYRE_MASTER_KEY");
    CHECK_INT(gyre_provider_keys_add(f.st, f.c, "admin_token", "mock", PROVIDER_KEY, strlen(PROVIDER_KEY), 1, id,
                                     sizeof(id), err, sizeof(err)),
              -ENOKEY);
    CHECK_STR(err, "no master key: provider keys added through the admin API are stored encrypted; start gyre with "
                   "GYRE_MASTER_KEY (64 hex digits or the base64 of 32 bytes (make one with: head -c 32 /dev/urandom "
                   "| base64)), GYRE_MASTER_KEY_FILE or master_key_file: set");
    setenv("GYRE_MASTER_KEY", MASTER_HEX, 1);
    CHECK_INT(gyre_provider_keys_add(f.st, f.c, "admin_token", "nope", PROVIDER_KEY, strlen(PROVIDER_KEY), 1, id,
                                     sizeof(id), err, sizeof(err)),
              -ENOENT);
    CHECK_STR(err, "no provider 'nope' in the configuration");
    CHECK_INT(gyre_provider_keys_add(f.st, f.c, "admin_token", "mock", "sk bad key", 10, 1, id, sizeof(id), err,
                                     sizeof(err)),
              -EINVAL);
    CHECK_STR(err, "'key' has a byte that is not printable ASCII (a space, a control byte or a non-ASCII byte)");
    CHECK_INT(gyre_provider_keys_add(f.st, f.c, "admin_token", "mock", "", 0, 1, id, sizeof(id), err, sizeof(err)),
              -EINVAL);
    CHECK_STR(err, "'key' is empty");
    gyre_provider_key_info_t *list = NULL;
    size_t n = 0;
    CHECK_INT(gyre_provider_keys_list(f.st, &list, &n, err, sizeof(err)), 0);
    CHECK_INT(n, 0);
    free(list);
    teardown(&f);
}

TEST(provider_keys_apply_appends_each_stored_key_once_after_the_files_keys)
{
    fixture_t f;
    setup(&f);
    char id[96], err[512];
    CHECK_INT(gyre_provider_keys_add(f.st, f.c, "admin_token", "mock", PROVIDER_KEY, strlen(PROVIDER_KEY), 5, id,
                                     sizeof(id), err, sizeof(err)),
              0);
    CHECK_INT(gyre_provider_keys_apply(f.st, f.c, err, sizeof(err)), 0);
    const gyre_provider_conf_t *p = &f.c->providers[0];
    CHECK_INT(p->nkeys, 2);
    CHECK_STR(p->key_ids[0], "mock#0");
    CHECK_STR(p->keys[0], "sk-from-the-file-0");
    CHECK_STR(p->key_ids[1], "mock#a1");
    CHECK_STR(p->keys[1], PROVIDER_KEY);
    CHECK_INT(p->key_weights[1], 5);
    CHECK_INT(f.c->providers[1].nkeys, 0);
    /* Again on the same configuration: nothing more. */
    CHECK_INT(gyre_provider_keys_apply(f.st, f.c, err, sizeof(err)), 0);
    CHECK_INT(p->nkeys, 2);
    teardown(&f);
}

TEST(provider_keys_apply_with_a_wrong_master_key_names_the_key_by_its_id_and_changes_nothing)
{
    fixture_t f;
    setup(&f);
    char id[96], err[512];
    CHECK_INT(gyre_provider_keys_add(f.st, f.c, "admin_token", "mock", PROVIDER_KEY, strlen(PROVIDER_KEY), 1, id,
                                     sizeof(id), err, sizeof(err)),
              0);
    setenv("GYRE_MASTER_KEY", OTHER_HEX, 1);
    CHECK_INT(gyre_provider_keys_apply(f.st, f.c, err, sizeof(err)), -EBADMSG);
    char want[512];
    snprintf(want, sizeof(want),
             "provider key 'mock#a1' (provider 'mock') in %s cannot be decrypted with the master key from "
             "GYRE_MASTER_KEY: it is not the master key the key was added with, or the stored key was altered",
             f.path);
    CHECK_STR(err, want);
    CHECK_INT(f.c->providers[0].nkeys, 1);
    unsetenv("GYRE_MASTER_KEY");
    CHECK_INT(gyre_provider_keys_apply(f.st, f.c, err, sizeof(err)), -ENOKEY);
    CHECK_INT(f.c->providers[0].nkeys, 1);
    teardown(&f);
}

TEST(provider_keys_apply_detects_a_box_altered_in_the_database)
{
    fixture_t f;
    setup(&f);
    char id[96], err[512];
    CHECK_INT(gyre_provider_keys_add(f.st, f.c, "admin_token", "mock", PROVIDER_KEY, strlen(PROVIDER_KEY), 1, id,
                                     sizeof(id), err, sizeof(err)),
              0);
    CHECK_INT(gyre_state_exec(f.st, "UPDATE provider_keys SET box = zeroblob(length(box))", err, sizeof(err)), 0);
    CHECK_INT(gyre_provider_keys_apply(f.st, f.c, err, sizeof(err)), -EBADMSG);
    CHECK(strstr(err, "provider key 'mock#a1'") != NULL);
    teardown(&f);
}

TEST(provider_keys_apply_without_stored_keys_needs_no_master_key)
{
    fixture_t f;
    setup(&f);
    char err[512];
    unsetenv("GYRE_MASTER_KEY");
    CHECK_INT(gyre_provider_keys_apply(f.st, f.c, err, sizeof(err)), 0);
    CHECK_INT(f.c->providers[0].nkeys, 1);
    teardown(&f);
}

TEST(provider_keys_add_and_remove_are_audited_with_ids_and_weights_only)
{
    fixture_t f;
    setup(&f);
    char id[96], err[512];
    CHECK_INT(gyre_provider_keys_add(f.st, f.c, "admin_token", "mock", PROVIDER_KEY, strlen(PROVIDER_KEY), 2, id,
                                     sizeof(id), err, sizeof(err)),
              0);
    CHECK_INT(gyre_provider_keys_remove(f.st, "admin_token", "other", "mock#a1", err, sizeof(err)), -ENOENT);
    CHECK_STR(err, "provider 'other' has no key 'mock#a1' added through the admin API");
    CHECK_INT(gyre_provider_keys_remove(f.st, "admin_token", "mock", "mock#a1", err, sizeof(err)), 0);
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    gyre_audit_query_t q = {0};
    CHECK_INT(gyre_audit_query(f.st, &q, &b, err, sizeof(err)), 0);
    CHECK(strstr(b.base, "\"action\":\"provider_key.delete\",\"object\":\"mock#a1\",\"before\":{\"id\":\"mock#a1\","
                         "\"provider\":\"mock\",\"weight\":2},\"after\":null") != NULL);
    CHECK(strstr(b.base, "\"action\":\"provider_key.create\",\"object\":\"mock#a1\",\"before\":null,\"after\":{\"id\":"
                         "\"mock#a1\",\"provider\":\"mock\",\"weight\":2}") != NULL);
    CHECK(strstr(b.base, "sk-provider") == NULL);
    gyre_buf_dispose(&b);
    gyre_provider_key_info_t *list = NULL;
    size_t n = 0;
    CHECK_INT(gyre_provider_keys_list(f.st, &list, &n, err, sizeof(err)), 0);
    CHECK_INT(n, 0);
    free(list);
    teardown(&f);
}
