/*
 * `gyre curate --spec FILE`: runs a curation spec (loop/spec.h) over the
 * configured store and writes the dataset it selects (loop/dataset.h); prints
 * the dataset's id.  The same spec over the same store prints the same id.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "config/config.h"
#include "loop/curate.h"
#include "loop/dataset.h"
#include "loop/dataset_curate.h"
#include "loop/spec.h"

/* What --json prints: a few hundred bytes per cluster; 10,000 clusters fit. */
#define CLI_CURATE_JSON_MAX ((size_t)16 << 20)

const char gyre_curate_usage[] =
    "usage: gyre curate --spec FILE [--json] [--decisions FILE] [--config FILE | --db PATH] [--dir DIR]\n"
    "\n"
    "Runs a curation spec (docs/datasets.md) over the stored traces: source,\n"
    "filter, near-duplicates, clusters, balanced selection, the held-out split and\n"
    "preference pairs; then writes the dataset (train.jsonl, heldout.jsonl,\n"
    "preference.jsonl, manifest.json) under the datasets directory and prints its\n"
    "id.  The id is the hash of the files: the same spec over the same store gives\n"
    "the same id, and a dataset that exists already is not written again.\n"
    "\n"
    "  --spec FILE       the curation spec (YAML)\n"
    "  --json            print {id, existed, counts, clusters, timings_ms, files}\n"
    "  --decisions FILE  write one JSON line per source trace: trace_id, cluster,\n"
    "                    dup_of, passed, selected, split (for measuring dedup and clusters)\n"
    "  --config FILE     the configuration: its store and `datasets:` (default: the\n"
    "                    embedded one, ./gyre.db)\n"
    "  --db PATH         the trace store to read (datasets go to PATH.datasets)\n"
    "  --dir DIR         where the dataset goes (default: `datasets:`)\n"
    "  -h, --help        this text\n"
    "\n"
    "On a terminal, stderr shows each phase's progress.\n"
    "Exit status: 0, 1 when the spec, the store or the writing failed, 2 for a wrong\n"
    "command line.\n";

static const char *const write_phase = "write";

typedef struct progress {
    int tty;
    int phase;    /* the phase last drawn (-1: none) */
    double start; /* when it began */
} progress_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One line per phase, redrawn in place: "scan       [##########----------]  51234/100000". */
static void draw(progress_t *p, int phase, const char *name, uint64_t done, uint64_t total)
{
    if (!p->tty)
        return;
    if (phase != p->phase) {
        if (p->phase >= 0)
            fputc('\n', stderr);
        p->phase = phase;
        p->start = now_s();
    }
    char bar[21];
    int fill = total > 0 ? (int)(20 * (done > total ? total : done) / total) : 20;
    for (int i = 0; i < 20; i++)
        bar[i] = i < fill ? '#' : '-';
    bar[20] = '\0';
    fprintf(stderr, "\r%-10s [%s] %10llu/%-10llu %6.1fs", name, bar, (unsigned long long)done,
            (unsigned long long)total, now_s() - p->start);
    fflush(stderr);
}

static void curate_progress_cb(void *ctx, gyre_curate_phase_t phase, uint64_t done, uint64_t total)
{
    draw(ctx, (int)phase, gyre_curate_phase_names[phase], done, total);
}

static void write_progress_cb(void *ctx, uint64_t done, uint64_t total)
{
    draw(ctx, GYRE_CURATE_PHASES, write_phase, done, total);
}

/* One line per source example (loop/curate.h's decision hook): trace ids are 32 hex digits, so nothing needs
 * escaping. */
static void decision_cb(void *ctx, const gyre_curate_decision_t *d)
{
    FILE *f = ctx;
    fprintf(f, "{\"trace_id\":\"%s\",\"cluster\":%d,\"dup_of\":", d->trace_id, (int)d->cluster);
    if (d->dup_of != NULL)
        fprintf(f, "\"%s\"", d->dup_of);
    else
        fputs("null", f);
    const char *split = !d->selected ? "null" : d->split == GYRE_CURATE_HELDOUT ? "\"heldout\"" : "\"train\"";
    fprintf(f, ",\"passed\":%s,\"selected\":%s,\"split\":%s}\n", d->passed ? "true" : "false",
            d->selected ? "true" : "false", split);
}

int gyre_cmd_curate(int argc, char **argv)
{
    const char *spec_path = NULL, *config = NULL, *db = NULL, *dir = NULL, *decisions = NULL;
    int json = 0;
    for (int i = 0; i < argc; i++) {
        const char *v;
        int r;
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
            continue;
        }
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(gyre_curate_usage, stdout);
            return 0;
        }
        static const char *const names[] = {"--spec", "--config", "--db", "--dir", "--decisions"};
        const char **slots[] = {&spec_path, &config, &db, &dir, &decisions};
        int matched = 0;
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]) && !matched; k++) {
            r = gyre_cli_opt("gyre curate", argc, argv, &i, names[k], &v);
            if (r < 0)
                return 2;
            if (r == 1) {
                *slots[k] = v;
                matched = 1;
            }
        }
        if (!matched) {
            fprintf(stderr, "gyre curate: unexpected '%s'\n\n%s", argv[i], gyre_curate_usage);
            return 2;
        }
    }
    if (spec_path == NULL) {
        fprintf(stderr, "gyre curate: needs --spec FILE\n\n%s", gyre_curate_usage);
        return 2;
    }
    char err[1024] = "";
    gyre_curate_spec_t *spec = gyre_curate_spec_load(spec_path, gyre_cli_now_us(), err, sizeof(err));
    if (spec == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    /* Where the dataset goes: --dir; else beside --db; else the configuration's. */
    char dirbuf[4096];
    int rc = 1;
    gyre_store_t *s = NULL;
    FILE *df = NULL;
    if (dir == NULL && db != NULL) {
        snprintf(dirbuf, sizeof(dirbuf), "%s.datasets", db);
        dir = dirbuf;
    } else if (dir == NULL) {
        gyre_config_errors_t errs = {0};
        gyre_config_t *c = config != NULL ? gyre_config_load_unresolved(config, &errs) : gyre_config_default(&errs);
        if (c == NULL) {
            for (size_t i = 0; i < errs.count; i++)
                fprintf(stderr, "%s\n", errs.items[i]);
            fprintf(stderr, "gyre curate: %zu error%s in the configuration\n", errs.count, errs.count == 1 ? "" : "s");
            gyre_config_errors_dispose(&errs);
            goto out;
        }
        dir = gyre_dataset_dir(c, dirbuf, sizeof(dirbuf));
        gyre_config_free(c);
        gyre_config_errors_dispose(&errs);
        if (dir == NULL) {
            fprintf(stderr, "gyre curate: the configuration names neither datasets: nor a store; pass --dir DIR\n");
            goto out;
        }
    }
    if (gyre_cli_store_open("gyre curate", config, db, &s) != 0)
        goto out;
    if (decisions != NULL && (df = fopen(decisions, "w")) == NULL) {
        fprintf(stderr, "gyre curate: cannot write %s: %s\n", decisions, strerror(errno));
        goto out;
    }
    progress_t p = {.tty = isatty(2) && !json, .phase = -1};
    gyre_curate_hooks_t hooks = {.progress_cb = curate_progress_cb, .ctx = &p};
    if (df != NULL) {
        hooks.decision_cb = decision_cb;
        hooks.decision_ctx = df;
    }
    gyre_dataset_run_t run;
    int r = gyre_dataset_curate(s, spec, dir, &hooks, write_progress_cb, &p, gyre_cli_now_us(), &run, err,
                                sizeof(err));
    if (p.tty && p.phase >= 0)
        fputc('\n', stderr);
    if (r != 0) {
        fprintf(stderr, "gyre curate: %s\n", err);
        gyre_dataset_run_dispose(&run);
        goto out;
    }
    if (json) {
        gyre_buf_t b;
        gyre_buf_init(&b, CLI_CURATE_JSON_MAX);
        gyre_dataset_run_json(&run, &b);
        printf("%s\n", b.base);
        gyre_buf_dispose(&b);
    } else {
        printf("%s\n", run.res.id);
        if (isatty(2))
            fprintf(stderr, "%s%s: %zu train, %zu held out, %zu preference pairs\n", run.res.path,
                    run.res.existed ? " (existed already)" : "", run.res.lines[0], run.res.lines[1],
                    run.res.lines[2]);
    }
    gyre_dataset_run_dispose(&run);
    rc = 0;
out:
    if (df != NULL && fclose(df) != 0 && rc == 0) {
        fprintf(stderr, "gyre curate: writing %s failed\n", decisions);
        rc = 1;
    }
    if (s != NULL)
        gyre_store_close(s);
    gyre_curate_spec_free(spec);
    return rc;
}
