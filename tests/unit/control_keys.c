/*
 * src/control/keys.c: managed gateway keys.  The key's form, the salted hash
 * that alone is stored, the lock-free lookup by id, revocation, expiry,
 * rotation with and without a grace period, the allow lists, and the watcher
 * that sees a change another process commits.
 */
#include "control/keys.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

typedef struct fixture {
    char dir[64], path[128];
    gyre_state_t *st;
    gyre_keys_t *k;
} fixture_t;

static void open_fixture(fixture_t *f)
{
    char err[256] = "";
    strcpy(f->dir, "/tmp/gyre-keys-XXXXXX");
    CHECK(mkdtemp(f->dir) != NULL);
    snprintf(f->path, sizeof(f->path), "%s/state.db", f->dir);
    CHECK_INT(gyre_state_open(f->path, &f->st, err, sizeof(err)), 0);
    CHECK_INT(gyre_keys_open(f->st, 2, &f->k, err, sizeof(err)), 0);
}

static void close_fixture(fixture_t *f)
{
    char cmd[160];
    gyre_keys_close(f->k);
    gyre_state_close(f->st);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    CHECK_INT(system(cmd), 0);
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static gyre_key_verdict_t auth(gyre_keys_t *k, const char *key, int64_t at, gyre_principal_t *p)
{
    memset(p, 0, sizeof(*p));
    return gyre_keys_authenticate(k, 0, key, strlen(key), at, p);
}

static int is_b32(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7');
}

static int is_b64url(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

TEST(control_keys_a_key_is_gyre_dash_its_id_and_43_base64url_characters_of_32_random_bytes)
{
    fixture_t f;
    open_fixture(&f);
    gyre_key_spec_t spec = {.name = "ci", .budget_usd = -1};
    char key[GYRE_KEYS_KEY_SIZE], err[256] = "";
    gyre_key_row_t row;
    CHECK_INT(gyre_keys_create(f.k, &spec, key, &row, err, sizeof(err)), 0);
    CHECK_INT((int)strlen(key), 64);
    CHECK(strncmp(key, "gyre-gk_", 8) == 0);
    CHECK_INT((int)strlen(row.id), 15);
    CHECK(strncmp(key + 5, row.id, 15) == 0);
    for (int i = 3; i < 15; i++)
        CHECK(is_b32(row.id[i]));
    CHECK(key[20] == '_');
    for (int i = 21; i < 64; i++)
        CHECK(is_b64url(key[i]));
    unsigned char raw[64];
    size_t rawlen = 0;
    CHECK_INT(sodium_base642bin(raw, sizeof(raw), key + 21, 43, NULL, &rawlen, NULL,
                                sodium_base64_VARIANT_URLSAFE_NO_PADDING),
              0);
    CHECK_INT((int)rawlen, 32);
    CHECK_INT(gyre_keys_is_managed_form(key, 64), 1);
    CHECK_INT(gyre_keys_is_managed_form(key, 63), 0);
    CHECK_INT(gyre_keys_is_managed_form("sk-gyre-client-7f3a9c1e5b2d4f60", 31), 0);
    CHECK_STR(row.name, "ci");
    CHECK_STR(gyre_key_row_status(&row, now_us()), "active");
    gyre_key_row_dispose(&row);
    close_fixture(&f);
}

TEST(control_keys_only_a_blake2b_hash_keyed_with_the_keys_own_salt_is_stored)
{
    fixture_t f;
    open_fixture(&f);
    gyre_key_spec_t spec = {.name = "a", .budget_usd = -1};
    char k1[GYRE_KEYS_KEY_SIZE], k2[GYRE_KEYS_KEY_SIZE], err[256] = "";
    gyre_key_row_t r1, r2;
    CHECK_INT(gyre_keys_create(f.k, &spec, k1, &r1, err, sizeof(err)), 0);
    CHECK_INT(gyre_keys_create(f.k, &spec, k2, &r2, err, sizeof(err)), 0);
    sqlite3 *db = gyre_state_lock(f.st);
    sqlite3_stmt *s = NULL;
    CHECK_INT(sqlite3_prepare_v2(db, "SELECT salt, hash FROM gateway_keys WHERE id = ?", -1, &s, NULL), SQLITE_OK);
    unsigned char salts[2][16];
    const char *keys[2] = {k1, k2}, *ids[2] = {r1.id, r2.id};
    for (int i = 0; i < 2; i++) {
        sqlite3_bind_text(s, 1, ids[i], -1, SQLITE_STATIC);
        CHECK_INT(sqlite3_step(s), SQLITE_ROW);
        CHECK_INT(sqlite3_column_bytes(s, 0), 16);
        CHECK_INT(sqlite3_column_bytes(s, 1), 32);
        memcpy(salts[i], sqlite3_column_blob(s, 0), 16);
        unsigned char want[32];
        crypto_generichash(want, 32, (const unsigned char *)keys[i], 64, salts[i], 16);
        CHECK(memcmp(sqlite3_column_blob(s, 1), want, 32) == 0);
        sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    gyre_state_unlock(f.st);
    CHECK(memcmp(salts[0], salts[1], 16) != 0);
    /* Neither the key nor its secret part is anywhere in the database's files. */
    gyre_keys_close(f.k);
    gyre_state_close(f.st);
    f.k = NULL;
    f.st = NULL;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "cat %s/* | grep -a -c -e '%s' -e '%.43s' >/dev/null", f.dir, k1, k1 + 21);
    CHECK_INT(WEXITSTATUS(system(cmd)), 1);
    gyre_key_row_dispose(&r1);
    gyre_key_row_dispose(&r2);
    close_fixture(&f);
}

TEST(control_keys_lookup_finds_the_key_by_its_id_and_fills_the_principal)
{
    fixture_t f;
    open_fixture(&f);
    gyre_key_spec_t spec = {.name = "bot",
                            .team = "search",
                            .agent = "planner",
                            .rpm = 60,
                            .tpm = 10000,
                            .budget_usd = 12.5,
                            .budget_period = GYRE_BUDGET_WEEK};
    char key[GYRE_KEYS_KEY_SIZE], err[256] = "";
    gyre_key_row_t row;
    CHECK_INT(gyre_keys_create(f.k, &spec, key, &row, err, sizeof(err)), 0);
    gyre_principal_t p;
    CHECK_INT(auth(f.k, key, now_us(), &p), GYRE_KEY_VALID);
    CHECK_STR(p.key_id, row.id);
    CHECK_INT(p.managed, 1);
    CHECK_STR(p.team, "search");
    CHECK_STR(p.agent, "planner");
    CHECK_INT((int)p.key_limits.rpm, 60);
    CHECK_INT((int)p.key_limits.tpm, 10000);
    CHECK(p.key_limits.budget_usd == 12.5);
    CHECK_INT(p.key_limits.budget_period, GYRE_BUDGET_WEEK);
    CHECK_INT(p.restricted, 0);
    /* The right id with another secret, an id no key has, and a credential of another form. */
    char wrong[GYRE_KEYS_KEY_SIZE];
    strcpy(wrong, key);
    wrong[40] = wrong[40] == 'A' ? 'B' : 'A';
    CHECK_INT(auth(f.k, wrong, now_us(), &p), GYRE_KEY_UNKNOWN);
    CHECK_STR(p.key_id, "");
    char other[GYRE_KEYS_KEY_SIZE];
    strcpy(other, key);
    memcpy(other + 8, "zzzzzzzzzzzz", 12);
    CHECK_INT(auth(f.k, other, now_us(), &p), GYRE_KEY_UNKNOWN);
    CHECK_INT(auth(f.k, "sk-gyre-client-7f3a9c1e5b2d4f60", now_us(), &p), GYRE_KEY_NOT_MANAGED);
    /* A reader without a slot is refused rather than read unsafely. */
    CHECK_INT(gyre_keys_authenticate(f.k, 2, key, 64, now_us(), &p), GYRE_KEY_UNKNOWN);
    gyre_key_row_dispose(&row);
    close_fixture(&f);
}

TEST(control_keys_a_revoked_key_is_refused_at_once_and_revoking_twice_or_an_unknown_id_is_an_error)
{
    fixture_t f;
    open_fixture(&f);
    gyre_key_spec_t spec = {.name = "bot", .budget_usd = -1};
    char key[GYRE_KEYS_KEY_SIZE], err[256] = "";
    gyre_key_row_t row, before, after;
    CHECK_INT(gyre_keys_create(f.k, &spec, key, &row, err, sizeof(err)), 0);
    uint64_t gen = gyre_keys_generation(f.k);
    CHECK_INT(gyre_keys_revoke(f.k, row.id, &before, &after, err, sizeof(err)), 0);
    CHECK_INT((int)(gyre_keys_generation(f.k) - gen), 1);
    CHECK(before.revoked_us == 0);
    CHECK(after.revoked_us != 0);
    CHECK_STR(gyre_key_row_status(&after, now_us()), "revoked");
    gyre_principal_t p;
    CHECK_INT(auth(f.k, key, now_us(), &p), GYRE_KEY_REVOKED);
    CHECK_STR(p.key_id, row.id);
    CHECK_INT(p.managed, 0);
    gyre_key_row_dispose(&before);
    gyre_key_row_dispose(&after);
    CHECK_INT(gyre_keys_revoke(f.k, row.id, &before, NULL, err, sizeof(err)), -EALREADY);
    char want[128];
    snprintf(want, sizeof(want), "key %s was revoked already", row.id);
    CHECK_STR(err, want);
    gyre_key_row_dispose(&before);
    CHECK_INT(gyre_keys_revoke(f.k, "gk_aaaaaaaaaaaa", NULL, NULL, err, sizeof(err)), -ENOENT);
    CHECK_STR(err, "no key has the id gk_aaaaaaaaaaaa");
    gyre_key_row_dispose(&row);
    close_fixture(&f);
}

TEST(control_keys_a_key_expires_at_its_expiry_to_the_microsecond)
{
    fixture_t f;
    open_fixture(&f);
    int64_t at = now_us() + 3600 * (int64_t)1000000;
    gyre_key_spec_t spec = {.name = "bot", .budget_usd = -1, .expires_us = at};
    char key[GYRE_KEYS_KEY_SIZE], err[256] = "";
    gyre_key_row_t row;
    CHECK_INT(gyre_keys_create(f.k, &spec, key, &row, err, sizeof(err)), 0);
    CHECK(row.expires_us == at);
    gyre_principal_t p;
    CHECK_INT(auth(f.k, key, at - 1, &p), GYRE_KEY_VALID);
    CHECK_INT(auth(f.k, key, at, &p), GYRE_KEY_EXPIRED);
    CHECK_STR(p.key_id, row.id);
    CHECK_STR(gyre_key_row_status(&row, at - 1), "active");
    CHECK_STR(gyre_key_row_status(&row, at), "expired");
    gyre_key_row_dispose(&row);
    close_fixture(&f);
}

TEST(control_keys_rotation_keeps_the_id_and_without_grace_the_old_key_stops_at_once)
{
    fixture_t f;
    open_fixture(&f);
    gyre_key_spec_t spec = {.name = "bot", .team = "ops", .budget_usd = -1};
    char old[GYRE_KEYS_KEY_SIZE], fresh[GYRE_KEYS_KEY_SIZE], err[256] = "";
    gyre_key_row_t row, before, after;
    CHECK_INT(gyre_keys_create(f.k, &spec, old, &row, err, sizeof(err)), 0);
    CHECK_INT(gyre_keys_rotate(f.k, row.id, 0, fresh, &before, &after, err, sizeof(err)), 0);
    CHECK(strncmp(fresh, old, 21) == 0); /* "gyre-" + the same id + "_" */
    CHECK(strcmp(fresh, old) != 0);
    CHECK_STR(after.id, row.id);
    CHECK_STR(after.team, "ops");
    CHECK(after.rotated_us != 0);
    CHECK(after.previous_until_us == 0);
    gyre_principal_t p;
    CHECK_INT(auth(f.k, fresh, now_us(), &p), GYRE_KEY_VALID);
    CHECK_INT(auth(f.k, old, now_us(), &p), GYRE_KEY_UNKNOWN);
    gyre_key_row_dispose(&before);
    gyre_key_row_dispose(&after);
    gyre_key_row_dispose(&row);
    close_fixture(&f);
}

TEST(control_keys_rotation_with_a_grace_period_keeps_the_old_key_until_it_ends_and_revoking_ends_it)
{
    fixture_t f;
    open_fixture(&f);
    gyre_key_spec_t spec = {.name = "bot", .budget_usd = -1};
    char old[GYRE_KEYS_KEY_SIZE], fresh[GYRE_KEYS_KEY_SIZE], err[256] = "";
    gyre_key_row_t row, before, after;
    CHECK_INT(gyre_keys_create(f.k, &spec, old, &row, err, sizeof(err)), 0);
    int64_t hour = 3600 * (int64_t)1000000;
    CHECK_INT(gyre_keys_rotate(f.k, row.id, hour, fresh, &before, &after, err, sizeof(err)), 0);
    CHECK(after.previous_until_us == after.rotated_us + hour);
    gyre_principal_t p;
    CHECK_INT(auth(f.k, old, after.previous_until_us - 1, &p), GYRE_KEY_VALID);
    CHECK_INT(auth(f.k, old, after.previous_until_us, &p), GYRE_KEY_UNKNOWN);
    CHECK_INT(auth(f.k, fresh, after.previous_until_us, &p), GYRE_KEY_VALID);
    gyre_key_row_dispose(&before);
    gyre_key_row_dispose(&after);
    /* A second rotation drops the first key: only the one just replaced overlaps. */
    char third[GYRE_KEYS_KEY_SIZE];
    CHECK_INT(gyre_keys_rotate(f.k, row.id, hour, third, NULL, NULL, err, sizeof(err)), 0);
    CHECK_INT(auth(f.k, old, now_us(), &p), GYRE_KEY_UNKNOWN);
    CHECK_INT(auth(f.k, fresh, now_us(), &p), GYRE_KEY_VALID);
    CHECK_INT(gyre_keys_revoke(f.k, row.id, NULL, NULL, err, sizeof(err)), 0);
    CHECK_INT(auth(f.k, fresh, now_us(), &p), GYRE_KEY_UNKNOWN);
    CHECK_INT(auth(f.k, third, now_us(), &p), GYRE_KEY_REVOKED);
    CHECK_INT(gyre_keys_rotate(f.k, row.id, 0, third, NULL, NULL, err, sizeof(err)), -EINVAL);
    CHECK_INT(gyre_keys_rotate(f.k, row.id, 8 * 24 * hour, third, NULL, NULL, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "grace: must be between 0 and 7d");
    gyre_key_row_dispose(&row);
    close_fixture(&f);
}

TEST(control_keys_allow_lists_admit_only_the_models_and_routes_they_name)
{
    fixture_t f;
    open_fixture(&f);
    gyre_key_spec_t spec = {.name = "bot", .models = "chat,openai/gpt-4o", .routes = "chat", .budget_usd = -1};
    char key[GYRE_KEYS_KEY_SIZE], err[256] = "";
    gyre_key_row_t row;
    CHECK_INT(gyre_keys_create(f.k, &spec, key, &row, err, sizeof(err)), 0);
    CHECK_STR(row.models, "chat,openai/gpt-4o");
    gyre_principal_t p;
    CHECK_INT(auth(f.k, key, now_us(), &p), GYRE_KEY_VALID);
    CHECK_INT(p.restricted, 1);
    const char *what = NULL;
    CHECK_INT(gyre_keys_allows(f.k, 1, row.id, "chat", "chat", &what), 1);
    CHECK_INT(gyre_keys_allows(f.k, 1, row.id, "embed", "embed", &what), 0);
    CHECK_STR(what, "model");
    /* A model the key names, on a target outside its routes. */
    CHECK_INT(gyre_keys_allows(f.k, 1, row.id, NULL, "openai/gpt-4o", &what), 0);
    CHECK_STR(what, "route");
    /* A key without lists allows everything; an id no key has, nothing. */
    gyre_key_spec_t open = {.name = "open", .budget_usd = -1};
    gyre_key_row_t orow;
    CHECK_INT(gyre_keys_create(f.k, &open, key, &orow, err, sizeof(err)), 0);
    CHECK_INT(gyre_keys_allows(f.k, 1, orow.id, NULL, "anything/at-all", &what), 1);
    CHECK_INT(gyre_keys_allows(f.k, 1, "gk_aaaaaaaaaaaa", "chat", "chat", &what), 0);
    gyre_key_row_dispose(&row);
    gyre_key_row_dispose(&orow);
    close_fixture(&f);
}

TEST(control_keys_create_refuses_each_bad_field_naming_it)
{
    fixture_t f;
    open_fixture(&f);
    static const struct {
        gyre_key_spec_t spec;
        const char *err;
    } cases[] = {
        {{.budget_usd = -1}, "name: is required"},
        {{.name = "a", .team = "has space", .budget_usd = -1},
         "team: must be 1 to 63 characters of A-Z a-z 0-9 . _ : / -"},
        {{.name = "a", .agent = "a\"b", .budget_usd = -1}, "agent: must be 1 to 63 characters of A-Z a-z 0-9 . _ : / -"},
        {{.name = "a", .models = "chat,,embed", .budget_usd = -1}, "models: item 2 is empty"},
        {{.name = "a", .routes = "ch at", .budget_usd = -1},
         "routes: item 1 has a character other than A-Z a-z 0-9 . _ : / -"},
        {{.name = "a", .budget_usd = 5}, "budget_period: is required with budget_usd (day, week or month)"},
        {{.name = "a", .budget_usd = -1, .budget_period = GYRE_BUDGET_DAY}, "budget_period: is given without budget_usd"},
        {{.name = "line\nbreak", .budget_usd = -1}, "name: has a control character"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char key[GYRE_KEYS_KEY_SIZE], err[256] = "";
        CHECK_INT(gyre_keys_create(f.k, &cases[i].spec, key, NULL, err, sizeof(err)), -EINVAL);
        CHECK_STR(err, cases[i].err);
    }
    gyre_key_row_t *rows = NULL;
    size_t n = 9;
    char err[256] = "";
    CHECK_INT(gyre_keys_list(f.k, &rows, &n, err, sizeof(err)), 0);
    CHECK_INT((int)n, 0);
    free(rows);
    close_fixture(&f);
}

TEST(control_keys_expires_reads_a_date_an_rfc3339_time_or_a_duration_from_now)
{
    int64_t t = 0, now = 1796000000000000;
    CHECK_INT(gyre_keys_parse_expires("2027-01-31", now, &t), 0);
    CHECK(t == (int64_t)1801353600 * 1000000);
    CHECK_INT(gyre_keys_parse_expires("2027-01-31T12:00:00Z", now, &t), 0);
    CHECK(t == (int64_t)1801396800 * 1000000);
    CHECK_INT(gyre_keys_parse_expires("90s", now, &t), 0);
    CHECK(t == now + 90 * (int64_t)1000000);
    CHECK_INT(gyre_keys_parse_expires("30d", now, &t), 0);
    CHECK(t == now + 30 * 86400 * (int64_t)1000000);
    CHECK_INT(gyre_keys_parse_expires("tomorrow", now, &t), -1);
    CHECK_INT(gyre_keys_parse_expires("1801267200000", now, &t), -1);
    CHECK_INT(gyre_keys_parse_expires("2027-13-01", now, &t), -1);
    CHECK_INT(gyre_keys_parse_expires("", now, &t), -1);
    /* Ten years at most: a longer duration is a typo, and it could overflow (the fuzzer's find). */
    CHECK_INT(gyre_keys_parse_expires("3650d", now, &t), 0);
    CHECK(t == now + 3650 * 86400 * (int64_t)1000000);
    CHECK_INT(gyre_keys_parse_expires("3651d", now, &t), -1);
    CHECK_INT(gyre_keys_parse_expires("208750027d", now, &t), -1);
    int64_t g = -1;
    CHECK_INT(gyre_keys_parse_grace("0", &g), 0);
    CHECK(g == 0);
    CHECK_INT(gyre_keys_parse_grace("1h", &g), 0);
    CHECK(g == 3600 * (int64_t)1000000);
    CHECK_INT(gyre_keys_parse_grace("8d", &g), -1);
}

TEST(control_keys_a_change_another_process_commits_is_seen_within_a_second_of_the_watcher)
{
    fixture_t f;
    open_fixture(&f);
    CHECK_INT(gyre_keys_watch(f.k), 0);
    /* `gyre keys` is another connection to the same file. */
    gyre_state_t *st2 = NULL;
    gyre_keys_t *k2 = NULL;
    char err[256] = "", key[GYRE_KEYS_KEY_SIZE];
    CHECK_INT(gyre_state_open(f.path, &st2, err, sizeof(err)), 0);
    CHECK_INT(gyre_keys_open(st2, 0, &k2, err, sizeof(err)), 0);
    gyre_key_spec_t spec = {.name = "cli", .budget_usd = -1};
    gyre_key_row_t row;
    uint64_t gen = gyre_keys_generation(f.k);
    int64_t t0 = now_us();
    CHECK_INT(gyre_keys_create(k2, &spec, key, &row, err, sizeof(err)), 0);
    gyre_principal_t p;
    while (auth(f.k, key, now_us(), &p) != GYRE_KEY_VALID && now_us() - t0 < 3000000)
        usleep(10000);
    int64_t seen = now_us() - t0;
    CHECK(seen <= GYRE_KEYS_WATCH_US + 200000);
    CHECK(gyre_keys_generation(f.k) > gen);
    t0 = now_us();
    CHECK_INT(gyre_keys_revoke(k2, row.id, NULL, NULL, err, sizeof(err)), 0);
    while (auth(f.k, key, now_us(), &p) != GYRE_KEY_REVOKED && now_us() - t0 < 3000000)
        usleep(10000);
    CHECK(now_us() - t0 <= GYRE_KEYS_WATCH_US + 200000);
    gyre_key_row_dispose(&row);
    gyre_keys_close(k2);
    gyre_state_close(st2);
    close_fixture(&f);
}
