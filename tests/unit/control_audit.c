/*
 * src/control/audit.c: the audit log records who, what, when, before and
 * after; refuses a before or after that holds a secret; cannot be changed
 * once written; and reads back newest first, filtered and paged.
 */
#include "control/audit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

typedef struct fixture {
    char dir[64], path[128];
    gyre_state_t *st;
} fixture_t;

static void open_state(fixture_t *f)
{
    char err[256];
    snprintf(f->dir, sizeof(f->dir), "/tmp/gyre-audit-XXXXXX");
    CHECK(mkdtemp(f->dir) != NULL);
    snprintf(f->path, sizeof(f->path), "%s/state.db", f->dir);
    CHECK_INT(gyre_state_open(f->path, &f->st, err, sizeof(err)), 0);
}

static void close_state(fixture_t *f)
{
    char cmd[160];
    gyre_state_close(f->st);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    CHECK_INT(system(cmd), 0);
}

static int record(gyre_state_t *st, const char *actor, const char *action, const char *object, const char *before,
                  const char *after)
{
    char err[256];
    gyre_audit_entry_t e = {actor, action, object, before, after};
    return gyre_audit_record(st, &e, err, sizeof(err));
}

/* The page for `q` as a string (caller frees). */
static char *page(gyre_state_t *st, const gyre_audit_query_t *q)
{
    char err[256];
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    CHECK_INT(gyre_audit_query(st, q, &b, err, sizeof(err)), 0);
    char *s = strdup(b.base ? b.base : "");
    gyre_buf_dispose(&b);
    return s;
}

/* The page with every "time" and "time_us" value replaced by T, so that pages compare exactly. */
static char *page_untimed(gyre_state_t *st, const gyre_audit_query_t *q)
{
    char *s = page(st, q), *o = malloc(strlen(s) + 1), *w = o;
    for (const char *p = s; *p;) {
        if (strncmp(p, "\"time\":\"", 8) == 0) {
            w += sprintf(w, "\"time\":T");
            p = strchr(p + 8, '"') + 1;
        } else if (strncmp(p, "\"time_us\":", 10) == 0) {
            w += sprintf(w, "\"time_us\":T");
            p += 10;
            while (*p >= '0' && *p <= '9')
                p++;
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
    free(s);
    return o;
}

TEST(audit_record_keeps_actor_action_object_and_the_exact_before_and_after)
{
    fixture_t f;
    open_state(&f);
    CHECK_INT(record(f.st, "admin_token", "provider_key.create", "mock#a1", NULL,
                     "{\"id\":\"mock#a1\",\"provider\":\"mock\",\"weight\":2}"),
              0);
    gyre_audit_query_t q = {0};
    char *s = page_untimed(f.st, &q);
    CHECK_STR(s, "{\"data\":[{\"id\":1,\"time\":T,\"time_us\":T,\"actor\":\"admin_token\",\"action\":"
                 "\"provider_key.create\",\"object\":\"mock#a1\",\"before\":null,\"after\":{\"id\":\"mock#a1\","
                 "\"provider\":\"mock\",\"weight\":2}}],\"next_cursor\":null}");
    free(s);
    close_state(&f);
}

TEST(audit_record_time_is_now_in_rfc3339_utc_with_milliseconds)
{
    fixture_t f;
    open_state(&f);
    time_t before = time(NULL);
    CHECK_INT(record(f.st, "sighup", "config.reload", "gyre.yaml", NULL, NULL), 0);
    time_t after = time(NULL);
    gyre_audit_query_t q = {0};
    char *s = page(f.st, &q);
    const char *t = strstr(s, "\"time_us\":");
    CHECK(t != NULL);
    long long us = t ? atoll(t + 10) : 0;
    CHECK(us / 1000000 >= before && us / 1000000 <= after);
    const char *iso = strstr(s, "\"time\":\"");
    CHECK(iso != NULL && strlen(iso) > 32 && iso[8 + 4] == '-' && iso[8 + 10] == 'T' && iso[8 + 19] == '.' &&
          iso[8 + 23] == 'Z');
    free(s);
    close_state(&f);
}

TEST(audit_record_refuses_a_before_or_after_holding_a_secret_and_writes_nothing)
{
    fixture_t f;
    open_state(&f);
    char err[256];
    gyre_audit_entry_t e = {"admin_token", "provider_key.create", "mock#a1", NULL,
                            "{\"id\":\"mock#a1\",\"key\":\"sk-live-0123456789\"}"};
    CHECK_INT(gyre_audit_record(f.st, &e, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "audit: 'after' has a member 'key' holding a string of more than 8 characters; the audit log "
                   "never holds a secret: name the object by its id");
    CHECK(strstr(err, "sk-live") == NULL);
    /* At any depth, in arrays too, and under the names that end like a secret's, any case. */
    e.after = NULL;
    e.before = "{\"notifier\":{\"targets\":[{\"Routing_Key\":\"R0123456789abcdef\"}]}}";
    CHECK_INT(gyre_audit_record(f.st, &e, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "audit: 'before' has a member 'Routing_Key' holding a string of more than 8 characters; the audit "
                   "log never holds a secret: name the object by its id");
    const char *refused[] = {"{\"secret\":\"123456789\"}", "{\"token\":\"abcdefghij\"}", "{\"api_key\":\"abcdefghij\"}",
                             "{\"password\":\"hunter2hunter2\"}", "{\"admin_token\":\"abcdefghij\"}",
                             "{\"client_secret\":\"abcdefghij\"}"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        CHECK_INT(gyre_audit_check_json(refused[i], "after", err, sizeof(err)), -EINVAL);
    gyre_audit_query_t q = {0};
    char *s = page(f.st, &q);
    CHECK_STR(s, "{\"data\":[],\"next_cursor\":null}");
    free(s);
    close_state(&f);
}

TEST(audit_check_lets_ids_short_values_and_non_strings_under_secret_names_pass)
{
    char err[256];
    /* A key's id, 8 characters or fewer, a number, a boolean, null, and names that only contain "key". */
    const char *allowed[] = {"{\"key_id\":\"mock#a1-with-a-long-id\"}", "{\"key\":\"12345678\"}",
                             "{\"key\":42,\"token\":true,\"secret\":null}", "{\"keys\":[\"mock#0\",\"mock#a1\"]}",
                             "{\"monkey\":\"a-long-string-value\"}", "[\"key\",\"a-long-string-value\"]", "null"};
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
        CHECK_INT(gyre_audit_check_json(allowed[i], "after", err, sizeof(err)), 0);
}

TEST(audit_record_refuses_json_that_is_not_json_and_missing_names)
{
    fixture_t f;
    open_state(&f);
    char err[256];
    gyre_audit_entry_t e = {"admin_token", "route.update", "chat", "{\"weight\":", NULL};
    CHECK_INT(gyre_audit_record(f.st, &e, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "audit: 'before' is not valid JSON");
    gyre_audit_entry_t e2 = {NULL, "route.update", "chat", NULL, NULL};
    CHECK_INT(gyre_audit_record(f.st, &e2, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "audit: 'actor' is required");
    gyre_audit_entry_t e3 = {"admin_token", "", "chat", NULL, NULL};
    CHECK_INT(gyre_audit_record(f.st, &e3, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "audit: 'action' is required");
    close_state(&f);
}

TEST(audit_log_is_append_only_an_update_or_delete_is_refused_by_the_database)
{
    fixture_t f;
    open_state(&f);
    CHECK_INT(record(f.st, "admin_token", "key.create", "gk_1", NULL, "{\"name\":\"ci\"}"), 0);
    char err[256];
    CHECK_INT(gyre_state_exec(f.st, "UPDATE audit SET actor = 'someone else'", err, sizeof(err)), -EIO);
    CHECK(strstr(err, "the audit log is append-only") != NULL);
    CHECK_INT(gyre_state_exec(f.st, "DELETE FROM audit", err, sizeof(err)), -EIO);
    CHECK(strstr(err, "the audit log is append-only") != NULL);
    gyre_audit_query_t q = {0};
    char *s = page_untimed(f.st, &q);
    CHECK_STR(s, "{\"data\":[{\"id\":1,\"time\":T,\"time_us\":T,\"actor\":\"admin_token\",\"action\":\"key.create\","
                 "\"object\":\"gk_1\",\"before\":null,\"after\":{\"name\":\"ci\"}}],\"next_cursor\":null}");
    free(s);
    close_state(&f);
}

TEST(audit_query_is_newest_first_filtered_by_action_and_actor_and_paged_by_cursor)
{
    fixture_t f;
    open_state(&f);
    CHECK_INT(record(f.st, "admin_token", "key.create", "gk_1", NULL, NULL), 0);
    CHECK_INT(record(f.st, "cli:ops", "key.create", "gk_2", NULL, NULL), 0);
    CHECK_INT(record(f.st, "admin_token", "key.revoke", "gk_1", NULL, NULL), 0);
    CHECK_INT(record(f.st, "admin_token", "key.create", "gk_3", NULL, NULL), 0);

    gyre_audit_query_t q = {.action = "key.create", .limit = 2};
    char *s = page_untimed(f.st, &q);
    CHECK_STR(s, "{\"data\":[{\"id\":4,\"time\":T,\"time_us\":T,\"actor\":\"admin_token\",\"action\":\"key.create\","
                 "\"object\":\"gk_3\",\"before\":null,\"after\":null},{\"id\":2,\"time\":T,\"time_us\":T,\"actor\":"
                 "\"cli:ops\",\"action\":\"key.create\",\"object\":\"gk_2\",\"before\":null,\"after\":null}],"
                 "\"next_cursor\":\"2\"}");
    free(s);
    q.cursor = 2;
    s = page_untimed(f.st, &q);
    CHECK_STR(s, "{\"data\":[{\"id\":1,\"time\":T,\"time_us\":T,\"actor\":\"admin_token\",\"action\":\"key.create\","
                 "\"object\":\"gk_1\",\"before\":null,\"after\":null}],\"next_cursor\":null}");
    free(s);
    gyre_audit_query_t by_actor = {.actor = "cli:ops"};
    s = page_untimed(f.st, &by_actor);
    CHECK_STR(s, "{\"data\":[{\"id\":2,\"time\":T,\"time_us\":T,\"actor\":\"cli:ops\",\"action\":\"key.create\","
                 "\"object\":\"gk_2\",\"before\":null,\"after\":null}],\"next_cursor\":null}");
    free(s);
    close_state(&f);
}

TEST(audit_query_since_and_until_bound_the_time)
{
    fixture_t f;
    open_state(&f);
    CHECK_INT(record(f.st, "admin_token", "key.create", "gk_1", NULL, NULL), 0);
    gyre_audit_query_t all = {0};
    char *s = page(f.st, &all);
    long long t = atoll(strstr(s, "\"time_us\":") + 10);
    free(s);
    gyre_audit_query_t later = {.since_us = t + 1};
    s = page(f.st, &later);
    CHECK_STR(s, "{\"data\":[],\"next_cursor\":null}");
    free(s);
    gyre_audit_query_t earlier = {.until_us = t};
    s = page(f.st, &earlier);
    CHECK_STR(s, "{\"data\":[],\"next_cursor\":null}");
    free(s);
    gyre_audit_query_t around = {.since_us = t, .until_us = t + 1};
    s = page(f.st, &around);
    CHECK(strstr(s, "\"object\":\"gk_1\"") != NULL);
    free(s);
    close_state(&f);
}
