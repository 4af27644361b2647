/*
 * What is the SQLite backend's own, beside the conformance suite every
 * backend runs (store_conformance.c): its schema versions and migrations,
 * the DSN rules that pick it, and what it says when the file system is in
 * the way.
 */
#include "store/store.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "store_conformance.h"

#define mini gyre_store_case_mini
#define write1 gyre_store_case_write1
#define page_ids gyre_store_case_page_ids
#define query gyre_store_case_query
#include "test.h"

#define TS(s) ((gyre_tstr_t){(char *)(s), sizeof(s) - 1})
#define STR(s) ((gyre_tstr_t){(char *)(s), strlen(s)})

static gyre_store_t *open_mem(void)
{
    gyre_store_t *s = NULL;
    char err[256] = "";
    int r = gyre_store_open("sqlite::memory:", GYRE_STORE_OPEN_WRITE, &s, err, sizeof(err));
    if (r != 0)
        fprintf(stderr, "  open: %s\n", err);
    return s;
}

TEST(store_sqlite_migrates_an_empty_database_to_version_9)
{
    gyre_store_t *s = open_mem();
    CHECK(s != NULL);
    CHECK_INT(gyre_store_schema_version(s), 9);
    CHECK_INT(gyre_store_count(s), 0);
    CHECK_STR(gyre_store_ops(s)->name, "sqlite");
    gyre_store_close(s);
}

TEST(store_sqlite_open_on_a_path_that_cannot_exist_fails_naming_the_path_and_the_os_error)
{
    gyre_store_t *s = (gyre_store_t *)1;
    char err[256] = "";
    CHECK_INT(gyre_store_open("/nonexistent-dir/x/traces.db", 0, &s, err, sizeof(err)), -EIO);
    CHECK(s == NULL);
    CHECK_STR(err, "cannot open /nonexistent-dir/x/traces.db: unable to open database file (No such file or directory)");
    /* The writer's open asks the file system first, so the reason is the OS's own. */
    CHECK_INT(gyre_store_open("sqlite:/nonexistent-dir/x/traces.db", GYRE_STORE_OPEN_WRITE, &s, err, sizeof(err)),
              -ENOENT);
    CHECK_STR(err, "cannot create /nonexistent-dir/x/traces.db: No such file or directory");
}

/* A fresh directory under /tmp (removed by the caller with rm_dir). */
static void tmp_dir(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/gyre-store-dsn-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
}

static void rm_dir(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK_INT(system(cmd), 0);
}

TEST(store_dsn_sqlite_prefix_and_a_plain_path_open_the_same_sqlite_file)
{
    char dir[64], dsn[200], path[160], err[256] = "";
    tmp_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/t.db", dir);
    snprintf(dsn, sizeof(dsn), "sqlite:%s", path);
    gyre_store_t *s = NULL;
    CHECK_INT(gyre_store_open(dsn, GYRE_STORE_OPEN_WRITE, &s, err, sizeof(err)), 0);
    gyre_trace_t t;
    mini(&t, 1, 1000);
    CHECK_INT(write1(s, &t), 0);
    gyre_store_close(s);
    CHECK_INT(gyre_store_open(path, 0, &s, err, sizeof(err)), 0);
    CHECK_STR(gyre_store_ops(s)->name, "sqlite");
    CHECK_INT(gyre_store_count(s), 1);
    gyre_store_close(s);
    rm_dir(dir);
}

TEST(store_dsn_postgres_is_not_built_in_this_version_and_the_dsn_is_not_echoed)
{
    gyre_store_t *s = (gyre_store_t *)1;
    char err[256] = "";
    CHECK_INT(gyre_store_open("postgres://gyre:s3cret@db.example/gyre", 0, &s, err, sizeof(err)), -ENOTSUP);
    CHECK(s == NULL);
    CHECK_STR(err, "postgres:// (PostgreSQL) is not built in this version; this gyre stores traces in SQLite "
                   "(sqlite:PATH, or a file path)");
    CHECK_INT(gyre_store_probe("postgresql://gyre:s3cret@db.example/gyre", err, sizeof(err)), -ENOTSUP);
    CHECK(strstr(err, "s3cret") == NULL);
    CHECK_INT(gyre_store_open("mysql://u:p@h/d", 0, &s, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "unknown scheme 'mysql' (this gyre has: sqlite:PATH, or a file path)");
    CHECK_INT(gyre_store_open("", 0, &s, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "the DSN is empty (expected sqlite:PATH or a file path)");
    CHECK_INT(gyre_store_open("sqlite:", 0, &s, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "sqlite: needs a path (sqlite:PATH, or sqlite::memory:)");
}

TEST(store_dsn_names_the_backend_and_the_target_its_open_takes)
{
    const char *target = NULL;
    char err[256] = "";
    const gyre_store_ops_t *ops = gyre_store_backend("sqlite:/var/lib/gyre/gyre.db", &target, err, sizeof(err));
    CHECK(ops != NULL && strcmp(ops->name, "sqlite") == 0);
    CHECK_STR(target, "/var/lib/gyre/gyre.db");
    ops = gyre_store_backend("./a:b.db", &target, err, sizeof(err)); /* a colon alone is not a scheme */
    CHECK(ops != NULL && strcmp(ops->name, "sqlite") == 0);
    CHECK_STR(target, "./a:b.db");
    CHECK(gyre_store_backend("postgres://h/d", &target, err, sizeof(err)) == NULL);
}

TEST(store_sqlite_probe_says_what_stops_a_writer_and_creates_nothing)
{
    char dir[64], path[160], err[512] = "";
    tmp_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/new.db", dir);
    /* A new file in a writable directory: fine, and not created by asking. */
    CHECK_INT(gyre_store_probe(path, err, sizeof(err)), 0);
    CHECK_INT(access(path, F_OK), -1);
    CHECK_INT(gyre_store_probe("sqlite:/nonexistent/dir/gyre.db", err, sizeof(err)), -ENOENT);
    CHECK_STR(err, "cannot create /nonexistent/dir/gyre.db: No such file or directory");
    CHECK_INT(gyre_store_probe(dir, err, sizeof(err)), -EISDIR);
    char want[256];
    snprintf(want, sizeof(want), "cannot open %s: it is a directory, not a database file", dir);
    CHECK_STR(err, want);
    /* A file where the directory should be. */
    char file[160], under[200];
    snprintf(file, sizeof(file), "%s/plain", dir);
    FILE *f = fopen(file, "w");
    CHECK(f != NULL);
    fputs("not a database, and not a directory\n", f);
    fclose(f);
    snprintf(under, sizeof(under), "%s/gyre.db", file);
    CHECK_INT(gyre_store_probe(under, err, sizeof(err)), -ENOTDIR);
    snprintf(want, sizeof(want), "cannot open %s: Not a directory", under);
    CHECK_STR(err, want);
    /* An existing file that is not a database (zeroed, truncated, overwritten) is a corrupt index: the writer
     * moves it aside and rebuilds it from the trace log at start, so the probe lets gyre start. */
    CHECK_INT(gyre_store_probe(file, err, sizeof(err)), 0);
    rm_dir(dir);
}

TEST(store_sqlite_probe_refuses_a_store_from_a_newer_gyre)
{
    char dir[64], path[160], err[512] = "";
    tmp_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/new.db", dir);
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db,
                           "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_us BIGINT NOT NULL);"
                           "INSERT INTO schema_migrations VALUES (99, 1);",
                           NULL, NULL, NULL),
              SQLITE_OK);
    sqlite3_close(db);
    CHECK_INT(gyre_store_probe(path, err, sizeof(err)), -EPROTO);
    char want[256];
    snprintf(want, sizeof(want), "%s is at schema version 99, newer than this gyre's 9", path);
    CHECK_STR(err, want);
    rm_dir(dir);
}

















/* A database as gyre wrote it at schema version 2 (migrations 1 and 2 as they shipped), with one trace. */
static const char v2_schema[] =
"CREATE TABLE traces ("
        " trace_id TEXT PRIMARY KEY,"
        " span_id TEXT NOT NULL,"
        " parent_span_id TEXT NOT NULL,"
        " request_id TEXT NOT NULL,"
        " started_us BIGINT NOT NULL,"
        " ended_us BIGINT NOT NULL,"
        " latency_us BIGINT NOT NULL,"
        " ttft_us BIGINT," 
        " endpoint TEXT NOT NULL,"
        " route TEXT NOT NULL,"
        " provider TEXT NOT NULL,"
        " model TEXT NOT NULL,"
        " status INTEGER NOT NULL,"
        " stream INTEGER NOT NULL," 
        " cache_hit INTEGER NOT NULL,"
        " finish_reason TEXT NOT NULL,"
        " prompt_tokens BIGINT," 
        " completion_tokens BIGINT,"
        " cached_tokens BIGINT,"
        " reasoning_tokens BIGINT,"
        " cost_usd REAL," 
        " session TEXT NOT NULL,"
        " agent TEXT NOT NULL,"
        " user_id TEXT NOT NULL," 
        " request_body BLOB," 
        " response_body BLOB"
        ");"
        "CREATE INDEX traces_started ON traces (started_us, trace_id);"
        "CREATE INDEX traces_provider ON traces (provider, started_us, trace_id);"
        "CREATE INDEX traces_model ON traces (model, started_us, trace_id);"
        "CREATE INDEX traces_status ON traces (status, started_us, trace_id);"
        "CREATE INDEX traces_route ON traces (route, started_us, trace_id) WHERE route <> '';"
        "CREATE INDEX traces_agent ON traces (agent, started_us, trace_id) WHERE agent <> '';"
        "CREATE INDEX traces_session ON traces (session, started_us, trace_id) WHERE session <> '';"
        "CREATE INDEX traces_user ON traces (user_id, started_us, trace_id) WHERE user_id <> '';"
        "CREATE TABLE attempts ("
        " trace_id TEXT NOT NULL,"
        " n INTEGER NOT NULL,"
        " provider TEXT NOT NULL,"
        " model TEXT NOT NULL,"
        " key_id TEXT NOT NULL,"
        " status INTEGER NOT NULL,"
        " started_us BIGINT NOT NULL,"
        " latency_us BIGINT NOT NULL,"
        " error TEXT NOT NULL,"
        " PRIMARY KEY (trace_id, n));"
        "CREATE TABLE trace_tags ("
        " trace_id TEXT NOT NULL,"
        " tag TEXT NOT NULL,"
        " PRIMARY KEY (trace_id, tag));"
        "CREATE INDEX trace_tags_tag ON trace_tags (tag, trace_id);"
        "CREATE TABLE trace_meta ("
        " trace_id TEXT NOT NULL,"
        " key TEXT NOT NULL,"
        " value TEXT NOT NULL,"
        " PRIMARY KEY (trace_id, key));"
"CREATE VIRTUAL TABLE trace_text USING fts5(trace_id UNINDEXED, text);";

TEST(store_sqlite_migrates_a_version_2_database_to_7_keeping_every_field_and_rolling_up_its_traces)
{
    char path[] = "/tmp/gyre-store-v2-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db, v2_schema, NULL, NULL, NULL), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db,
                           "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_us BIGINT NOT NULL);"
                           "INSERT INTO schema_migrations VALUES (1, 1), (2, 2);"
                           "INSERT INTO traces VALUES ('4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', '', 'r1',"
                           " 1796119210000000, 1796119210250000, 250000, 50000, '/v1/chat/completions', 'chat',"
                           " 'openai', 'gpt-4o', 200, 1, 0, 'stop', 10, 5, NULL, NULL, 0.5, 's', 'a', 'u', NULL, NULL);"
                           "INSERT INTO attempts VALUES ('4bf92f3577b34da6a3ce929d0e0e4736', 1, 'openai', 'gpt-4o',"
                           " 'openai#1', 200, 1796119210003000, 247000, ''),"
                           " ('4bf92f3577b34da6a3ce929d0e0e4736', 0, 'anthropic', 'claude', 'anthropic#0', 429,"
                           " 1796119210000000, 3000, 'rate \"limited\"');"
                           "INSERT INTO trace_tags VALUES ('4bf92f3577b34da6a3ce929d0e0e4736', 'prod'),"
                           " ('4bf92f3577b34da6a3ce929d0e0e4736', 'eval');"
                           "INSERT INTO trace_meta VALUES ('4bf92f3577b34da6a3ce929d0e0e4736', 'team', 'search'),"
                           " ('4bf92f3577b34da6a3ce929d0e0e4736', 'env', 'dev');"
                           "INSERT INTO trace_text VALUES ('4bf92f3577b34da6a3ce929d0e0e4736', 'where is the lighthouse');",
                           NULL, NULL, NULL),
              SQLITE_OK);
    sqlite3_close(db);

    gyre_store_t *s = NULL;
    char err[256] = "";
    CHECK_INT(gyre_store_open(path, GYRE_STORE_OPEN_WRITE, &s, err, sizeof(err)), 0);
    CHECK_INT(gyre_store_schema_version(s), 9);
    CHECK_INT(gyre_store_count(s), 1);
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    /* A call stored before version 3 belonged to the W3C trace its trace_id named. */
    CHECK_INT(gyre_store_get_trace(s, "4bf92f3577b34da6a3ce929d0e0e4736", &b, err, sizeof(err)), 0);
    CHECK_STR(b.base,
              "{\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"otel_trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
              "\"span_id\":\"00f067aa0ba902b7\",\"parent_span_id\":\"\",\"request_id\":\"r1\","
              "\"started_us\":1796119210000000,\"ended_us\":1796119210250000,\"latency_us\":250000,\"ttft_us\":50000,"
              "\"endpoint\":\"/v1/chat/completions\",\"route\":\"chat\",\"provider\":\"openai\",\"model\":\"gpt-4o\","
              "\"status\":200,\"stream\":true,\"cache_hit\":false,\"finish_reason\":\"stop\",\"prompt_tokens\":10,"
              "\"completion_tokens\":5,\"cached_tokens\":null,\"reasoning_tokens\":null,\"cost_usd\":0.5,\"cost_saved_usd\":0,"
              "\"session\":\"s\",\"agent\":\"a\",\"user\":\"u\",\"client_key_id\":\"\",\"team\":\"\","
              "\"tags\":[\"eval\",\"prod\"],"
              "\"meta\":{\"env\":\"dev\",\"team\":\"search\"},"
              "\"attempts\":[{\"provider\":\"anthropic\",\"model\":\"claude\",\"key_id\":\"anthropic#0\","
              "\"status\":429,\"started_us\":1796119210000000,\"latency_us\":3000,\"error\":\"rate \\\"limited\\\"\"},"
              "{\"provider\":\"openai\",\"model\":\"gpt-4o\",\"key_id\":\"openai#1\",\"status\":200,"
              "\"started_us\":1796119210003000,\"latency_us\":247000,\"error\":\"\"}],"
              "\"request_body\":null,\"response_body\":null,\"feedback\":[],\"scores\":[],\"cluster\":null}");
    /* Its tags and its text still find it. */
    char ids[256];
    gyre_trace_query_t tq = {.tag = "eval"};
    CHECK_INT(query(s, &tq, ids, sizeof(ids)), 0);
    CHECK(strcmp(ids, "") != 0);
    tq = (gyre_trace_query_t){.text = "lighthouse"};
    CHECK_INT(query(s, &tq, ids, sizeof(ids)), 0);
    CHECK(strcmp(ids, "") != 0);
    /* ...and is in the stats: the migration rolled it up. */
    gyre_buf_reset(&b);
    gyre_stats_query_t sq = {.from_us = 1796119200000000, .to_us = 1796122800000000};
    CHECK_INT(gyre_store_stats(s, &sq, &b, err, sizeof(err)), 0);
    CHECK(strstr(b.base, "\"total\":{\"requests\":1,\"errors\":0,") != NULL);
    CHECK(strstr(b.base, "\"prompt_tokens\":10,\"completion_tokens\":5,\"cached_tokens\":0,\"reasoning_tokens\":0,"
                         "\"cost_usd\":0.5,\"cost_saved_usd\":0}") != NULL);
    /* New writes keep going into the migrated file. */
    gyre_trace_t t;
    mini(&t, 9, 1796119220000000);
    CHECK_INT(write1(s, &t), 0);
    CHECK_INT(gyre_store_count(s), 2);
    gyre_buf_dispose(&b);
    gyre_store_close(s);
    char other[64];
    unlink(path);
    snprintf(other, sizeof(other), "%s-wal", path);
    unlink(other);
    snprintf(other, sizeof(other), "%s-shm", path);
    unlink(other);
}


