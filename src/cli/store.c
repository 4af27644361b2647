/*
 * `gyre store stats` and `gyre store reindex`: the trace log and
 * its index as an operator sees them.  stats reads the log (read-only, so
 * it works beside a running gyre) and the index: segments, bytes, traces,
 * the oldest trace, how far the index lags.  reindex rebuilds the index
 * from the log: the old database is moved aside (kept, not deleted), a new
 * one is written from every record of the log, and the checkpoint is set to
 * the log's end; it takes the log's lock, so gyre must be stopped.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "config/config.h"
#include "store/store.h"
#include "trace/tracelog.h"
#include "trace/writer.h"

/* Traces per write_batch while reindexing. */
#define REINDEX_BATCH 2048

const char gyre_store_usage[] =
    "usage: gyre store stats [--json] [--config FILE | --db PATH [--log DIR]]\n"
    "       gyre store reindex [--config FILE | --db PATH [--log DIR]]\n"
    "\n"
    "stats: the trace log's segments and bytes, the traces in the index, the\n"
    "oldest trace in the log, and the index's lag (traces and bytes of the log\n"
    "it has not taken yet).  It reads the log without locking it: gyre may run.\n"
    "\n"
    "reindex: rebuilds the index (the SQLite store) from the trace log.  The old\n"
    "database is moved aside to PATH.corrupt-<unix seconds> and kept.  gyre must\n"
    "be stopped (reindex takes the log's lock).\n"
    "\n"
    "  --json          stats as one JSON object\n"
    "  --config FILE   read store.sqlite and store.log from FILE (default: the\n"
    "                  embedded configuration, ./gyre.db)\n"
    "  --db PATH       the SQLite index; the log is PATH.log unless --log says\n"
    "  --log DIR       the trace log's directory\n"
    "  -h, --help      this text\n"
    "\n"
    "Exit status: 0, 1 when the log or the store cannot be read or written, 2\n"
    "for a wrong command line.\n";

typedef struct {
    char db[4096], log[4096];
    int json;
} store_args_t;

static int parse(const char *cmd, int argc, char **argv, store_args_t *a)
{
    const char *config = NULL, *db = NULL, *log = NULL;
    for (int i = 0; i < argc; i++) {
        const char *v;
        int r;
        if (strcmp(argv[i], "--json") == 0) {
            a->json = 1;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(gyre_store_usage, stdout);
            return 0;
        } else if ((r = gyre_cli_opt(cmd, argc, argv, &i, "--config", &v)) != 0) {
            if (r < 0)
                return 2;
            config = v;
        } else if ((r = gyre_cli_opt(cmd, argc, argv, &i, "--db", &v)) != 0) {
            if (r < 0)
                return 2;
            db = v;
        } else if ((r = gyre_cli_opt(cmd, argc, argv, &i, "--log", &v)) != 0) {
            if (r < 0)
                return 2;
            log = v;
        } else {
            fprintf(stderr, "%s: unknown option '%s'\n%s", cmd, argv[i], gyre_store_usage);
            return 2;
        }
    }
    if (db == NULL) {
        gyre_config_errors_t errs = {0};
        gyre_config_t *c = config != NULL ? gyre_config_load_unresolved(config, &errs) : gyre_config_default(&errs);
        if (c == NULL) {
            for (size_t i = 0; i < errs.count; i++)
                fprintf(stderr, "%s\n", errs.items[i]);
            fprintf(stderr, "%s: %zu error%s in the configuration\n", cmd, errs.count, errs.count == 1 ? "" : "s");
            gyre_config_errors_dispose(&errs);
            return 1;
        }
        snprintf(a->db, sizeof(a->db), "%s", c->store_sqlite);
        gyre_tracelog_dir_for(log != NULL ? log : c->store_log, c->store_sqlite, a->log, sizeof(a->log));
        gyre_config_free(c);
    } else {
        snprintf(a->db, sizeof(a->db), "%s", db);
        gyre_tracelog_dir_for(log, db, a->log, sizeof(a->log));
    }
    return -1;
}

static uint64_t file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static int cmd_stats(store_args_t *a)
{
    const char *cmd = "gyre store stats";
    gyre_tracelog_t *l;
    char err[512] = "";
    if (gyre_tracelog_open(a->log, NULL, GYRE_TRACELOG_READONLY, &l, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        return 1;
    }
    gyre_tracelog_stats_t ls;
    gyre_tracelog_stats(l, &ls);
    gyre_tracelog_checkpoint_t cp;
    gyre_tracelog_checkpoint_load(a->log, &cp);
    gyre_tracelog_pos_t start = gyre_tracelog_start(l);
    if (cp.pos.seq < start.seq)
        cp.pos = start;
    uint64_t lag_bytes = gyre_tracelog_bytes_after(l, cp.pos);

    /* The oldest trace is the log's first record; the lag in traces is the records after the checkpoint. */
    gyre_tracelog_reader_t *r = gyre_tracelog_reader_create(l);
    gyre_trace_t *batch[256];
    gyre_tracelog_pos_t pos = start;
    char oldest_id[33] = "";
    int64_t oldest_us = 0;
    int n = gyre_tracelog_read(r, &pos, batch, 1, 0);
    if (n == 1) {
        snprintf(oldest_id, sizeof(oldest_id), "%s", batch[0]->trace_id);
        oldest_us = batch[0]->started_us;
        free(batch[0]);
    }
    uint64_t lag_traces = 0;
    pos = cp.pos;
    for (int k; (k = gyre_tracelog_read(r, &pos, batch, 256, 0)) > 0;) {
        lag_traces += (uint64_t)k;
        for (int i = 0; i < k; i++)
            free(batch[i]);
    }
    gyre_tracelog_reader_destroy(r);

    int64_t traces = -1;
    gyre_store_t *s = NULL;
    struct stat st;
    if (stat(a->db, &st) == 0 && gyre_store_open(a->db, 0, &s, err, sizeof(err)) == 0) {
        traces = gyre_store_count(s);
        gyre_store_close(s);
    }
    char wal[4200];
    snprintf(wal, sizeof(wal), "%s-wal", a->db);
    uint64_t index_bytes = file_size(a->db) + file_size(wal);
    if (a->json) {
        gyre_buf_t b;
        gyre_buf_init(&b, 1 << 16);
        gyre_buf_appendf(&b, "{\"log\":");
        gyre_buf_append_json_string(&b, a->log, strlen(a->log));
        gyre_buf_appendf(&b, ",\"segments\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"index\":", ls.segments, ls.bytes);
        gyre_buf_append_json_string(&b, a->db, strlen(a->db));
        gyre_buf_appendf(&b, ",\"index_bytes\":%" PRIu64 ",\"traces\":", index_bytes);
        if (traces >= 0)
            gyre_buf_appendf(&b, "%" PRId64, traces);
        else
            gyre_buf_appends(&b, "null");
        gyre_buf_appends(&b, ",\"oldest_trace\":");
        if (oldest_id[0] != '\0') {
            gyre_buf_appends(&b, "{\"trace_id\":");
            gyre_buf_append_json_string(&b, oldest_id, strlen(oldest_id));
            gyre_buf_appendf(&b, ",\"started_us\":%" PRId64 "}", oldest_us);
        } else {
            gyre_buf_appends(&b, "null");
        }
        gyre_buf_appendf(&b, ",\"index_lag\":{\"traces\":%" PRIu64 ",\"bytes\":%" PRIu64 "}}\n", lag_traces,
                         lag_bytes);
        fwrite(b.base, 1, b.len, stdout);
        gyre_buf_dispose(&b);
    } else {
        char when[32] = "-";
        if (oldest_us != 0)
            gyre_cli_format_time(oldest_us, when, sizeof(when));
        printf("log          %s\n", a->log);
        printf("segments     %" PRIu64 "\n", ls.segments);
        printf("bytes        %" PRIu64 "\n", ls.bytes);
        printf("index        %s (%" PRIu64 " bytes)\n", a->db, index_bytes);
        if (traces >= 0)
            printf("traces       %" PRId64 "\n", traces);
        else
            printf("traces       - (no index)\n");
        printf("oldest       %s %s\n", oldest_id[0] ? oldest_id : "-", when);
        printf("index lag    %" PRIu64 " traces, %" PRIu64 " bytes\n", lag_traces, lag_bytes);
    }
    gyre_tracelog_close(l);
    return 0;
}

static int cmd_reindex(store_args_t *a)
{
    const char *cmd = "gyre store reindex";
    gyre_tracelog_t *l;
    char err[512] = "";
    /* Not read-only: the lock keeps a running gyre out; the new segment it starts stays empty and is removed. */
    if (gyre_tracelog_open(a->log, NULL, 0, &l, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s%s\n", cmd, err, strstr(err, "another gyre") ? ": stop gyre first" : "");
        return 1;
    }
    char aside[4400];
    struct stat st;
    if (stat(a->db, &st) == 0 && gyre_writer_move_index_aside(a->db, "gyre store reindex", aside, sizeof(aside)) != 0) {
        fprintf(stderr, "%s: cannot move %s aside: %s\n", cmd, a->db, strerror(errno));
        gyre_tracelog_close(l);
        return 1;
    }
    gyre_store_t *s;
    if (gyre_store_open(a->db, GYRE_STORE_OPEN_WRITE, &s, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        gyre_tracelog_close(l);
        return 1;
    }
    gyre_tracelog_reader_t *r = gyre_tracelog_reader_create(l);
    gyre_trace_t **batch = calloc(REINDEX_BATCH, sizeof(*batch));
    gyre_tracelog_pos_t pos = gyre_tracelog_start(l);
    uint64_t total = 0;
    int rc = 0;
    for (int k; (k = gyre_tracelog_read(r, &pos, batch, REINDEX_BATCH, 0)) > 0;) {
        int w = gyre_store_write_batch(s, (const gyre_trace_t *const *)batch, (size_t)k, err, sizeof(err));
        for (int i = 0; i < k; i++)
            free(batch[i]);
        if (w != 0) {
            fprintf(stderr, "%s: %s\n", cmd, err);
            rc = 1;
            break;
        }
        total += (uint64_t)k;
    }
    if (rc == 0) {
        gyre_tracelog_checkpoint_t cp = {.pos = pos};
        gyre_tracelog_checkpoint_t old;
        gyre_tracelog_checkpoint_load(a->log, &old);
        cp.gen = old.gen;
        gyre_tracelog_checkpoint_save(a->log, &cp);
        gyre_tracelog_damage_t d;
        gyre_tracelog_damage(l, &d);
        printf("reindexed %" PRIu64 " traces from %s into %s", total, a->log, a->db);
        if (d.regions != 0)
            printf(" (%" PRIu64 " corrupt bytes skipped in %" PRIu64 " regions)", d.bytes, d.regions);
        printf("\n");
    }
    free(batch);
    gyre_tracelog_reader_destroy(r);
    gyre_store_close(s);
    gyre_tracelog_close(l);
    return rc;
}

int gyre_cmd_store(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0) {
        fputs(gyre_store_usage, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    store_args_t a = {0};
    int stats = strcmp(argv[0], "stats") == 0;
    if (!stats && strcmp(argv[0], "reindex") != 0) {
        fprintf(stderr, "gyre store: unknown subcommand '%s' (stats, reindex)\n", argv[0]);
        return 2;
    }
    int r = parse(stats ? "gyre store stats" : "gyre store reindex", argc - 1, argv + 1, &a);
    if (r >= 0)
        return r;
    return stats ? cmd_stats(&a) : cmd_reindex(&a);
}
