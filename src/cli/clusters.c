/*
 * `gyre clusters`: what the agents do, as clusters of their tasks
 * (src/loop/cluster.h).  Shows the newest clustering run kept in the store;
 * --rebuild clusters the window's traces now and stores the run (which
 * /api/clusters and every trace's `cluster` then show).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "config/config.h"
#include "loop/cluster.h"
#include "store/store.h"

/* The bound on a run's JSON: 256 clusters and their parents of at most ~2 KB each, with room to spare. */
#define CLI_CLUSTERS_MAX ((size_t)16 << 20)

const char gyre_clusters_usage[] =
    "usage: gyre clusters [--rebuild [--since DURATION] [--k N]] [--json]\n"
    "                     [--db PATH | --config FILE]\n"
    "\n"
    "Shows the newest clustering of the stored traces: per cluster its id, its\n"
    "parent, its name (its most distinctive terms), volume, distinct sessions,\n"
    "trend (volume in the second half of the window over the first), failure\n"
    "rate, cost and score means.  A cluster of fewer than `clusters:\n"
    "min_sessions` sessions (5) shows only its id and volume.\n"
    "\n"
    "  --rebuild          cluster the traces now (the local featuriser, k-means)\n"
    "                     and store the run; the newest run is what traces show\n"
    "  --since DURATION   with --rebuild: the traces of the last DURATION (default:\n"
    "                     `clusters: window:`, 7d)\n"
    "  --k N              with --rebuild: N clusters (1-256); default `clusters:\n"
    "                     k:`, 0 (chosen by the silhouette)\n"
    "  --json             the run's JSON, as GET /api/clusters gives it\n"
    "  --db PATH          the SQLite trace store\n"
    "  --config FILE      read the store's path and `clusters:` from FILE; without\n"
    "                     --db or --config: the embedded default, ./gyre.db\n"
    "  -h, --help         this text\n"
    "\n"
    "Exit status: 0, 1 when the store cannot be read or there is no run (or no\n"
    "trace to cluster), 2 for a wrong command line.\n";

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void cell_num(char *buf, size_t len, double v, const char *fmt, double scale)
{
    if (isnan(v))
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, fmt, v * scale);
}

static int print_run(const char *json, size_t len)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (root == NULL) {
        fprintf(stderr, "gyre clusters: the stored run is not JSON\n");
        return 1;
    }
    char from[32], to[32];
    const cJSON *win = cJSON_GetObjectItemCaseSensitive(root, "window");
    gyre_cli_format_time((int64_t)jnum(win, "from_us"), from, sizeof(from));
    gyre_cli_format_time((int64_t)jnum(win, "to_us"), to, sizeof(to));
    printf("run          %s\n", jstr(root, "run_id") ? jstr(root, "run_id") : "-");
    printf("window       %s to %s UTC\n", from, to);
    printf("traces       %.0f in %.0f clusters (k %s), %.0f parents\n", jnum(root, "examples"), jnum(root, "k"),
           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "k_auto")) ? "chosen by silhouette" : "given",
           jnum(root, "parents"));
    printf("\n");
    static const char *const headers[] = {"ID", "PARENT", "NAME", "VOLUME", "SESSIONS", "TREND", "FAIL_%", "COST_USD",
                                          "SCORES"};
    gyre_cli_table_t t;
    gyre_cli_table_init(&t, 9, headers, "rrlrrrrrl", "001000001");
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(root, "clusters"))
    {
        char cells[9][256];
        const char *cp[9];
        snprintf(cells[0], sizeof(cells[0]), "%.0f", jnum(c, "id"));
        cell_num(cells[3], sizeof(cells[3]), jnum(c, "volume"), "%.0f", 1);
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "hidden"))) {
            snprintf(cells[1], sizeof(cells[1]), "-");
            snprintf(cells[2], sizeof(cells[2]), "(hidden: fewer than %.0f sessions)", jnum(root, "min_sessions"));
            for (int i = 4; i < 9; i++)
                snprintf(cells[i], sizeof(cells[i]), "-");
        } else {
            double parent = jnum(c, "parent");
            cell_num(cells[1], sizeof(cells[1]), parent < 0 ? NAN : parent, "%.0f", 1);
            snprintf(cells[2], sizeof(cells[2]), "%s%s", jnum(c, "level") == 1 ? "* " : "",
                     jstr(c, "name") ? jstr(c, "name") : "-");
            cell_num(cells[4], sizeof(cells[4]), jnum(c, "sessions"), "%.0f", 1);
            cell_num(cells[5], sizeof(cells[5]), jnum(c, "trend"), "%.2f", 1);
            cell_num(cells[6], sizeof(cells[6]), jnum(c, "failure_rate"), "%.1f", 100);
            cell_num(cells[7], sizeof(cells[7]), jnum(c, "cost_usd"), "%.6f", 1);
            gyre_buf_t sb;
            gyre_buf_init(&sb, sizeof(cells[8]) - 1);
            const cJSON *sc;
            cJSON_ArrayForEach(sc, cJSON_GetObjectItemCaseSensitive(c, "scores"))
                gyre_buf_appendf(&sb, "%s%s=%.3g", sb.len ? " " : "", sc->string, jnum(sc, "mean"));
            snprintf(cells[8], sizeof(cells[8]), "%s", sb.len ? sb.base : "-");
            gyre_buf_dispose(&sb);
        }
        for (int i = 0; i < 9; i++)
            cp[i] = cells[i];
        gyre_cli_table_add(&t, cp);
    }
    gyre_cli_table_print(&t, stdout, GYRE_CLI_WIDTH);
    gyre_cli_table_dispose(&t);
    printf("\n(* a parent: a group of clusters)\n");
    cJSON_Delete(root);
    return 0;
}

int gyre_cmd_clusters(int argc, char **argv)
{
    static const char cmd[] = "gyre clusters";
    const char *config_path = NULL, *db = NULL, *since = NULL, *kstr = NULL, *v = NULL;
    int json = 0, rebuild = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int r;
#define STRING_OPT(name, field)                                                                                        \
    if ((r = gyre_cli_opt(cmd, argc, argv, &i, name, &v)) != 0) {                                                      \
        if (r < 0)                                                                                                     \
            return 2;                                                                                                  \
        field = v;                                                                                                     \
        continue;                                                                                                      \
    }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(gyre_clusters_usage, stdout);
            return 0;
        }
        if (strcmp(a, "--json") == 0) {
            json = 1;
            continue;
        }
        if (strcmp(a, "--rebuild") == 0) {
            rebuild = 1;
            continue;
        }
        STRING_OPT("--config", config_path)
        STRING_OPT("-c", config_path)
        STRING_OPT("--db", db)
        STRING_OPT("--since", since)
        STRING_OPT("--k", kstr)
#undef STRING_OPT
        fprintf(stderr, "%s: %s '%s'\n\n%s", cmd, a[0] == '-' ? "unknown option" : "unexpected argument", a,
                gyre_clusters_usage);
        return 2;
    }
    if (config_path != NULL && db != NULL) {
        fprintf(stderr, "%s: --db and --config both name the store; pass one\n", cmd);
        return 2;
    }
    if (!rebuild && (since != NULL || kstr != NULL)) {
        fprintf(stderr, "%s: --since and --k choose what --rebuild clusters; pass --rebuild with them\n", cmd);
        return 2;
    }
    gyre_cluster_rebuild_opts_t ro = {0};
    int64_t d = 0;
    if (since != NULL && gyre_cli_parse_duration(since, &d) != 0) {
        fprintf(stderr, "%s: --since must be a duration such as 24h or 7d, got '%s'\n", cmd, since);
        return 2;
    }
    if (kstr != NULL) {
        char *end;
        unsigned long k = strtoul(kstr, &end, 10);
        if (*kstr == '\0' || *end != '\0' || k < 1 || k > GYRE_CLUSTER_MAX_K) {
            fprintf(stderr, "%s: --k must be a number from 1 to %d, got '%s'\n", cmd, GYRE_CLUSTER_MAX_K, kstr);
            return 2;
        }
        ro.k = (unsigned)k;
    }
    gyre_config_t *config = NULL;
    if (config_path != NULL && rebuild) {
        gyre_config_errors_t errs = {0};
        config = gyre_config_load_unresolved(config_path, &errs);
        if (config == NULL) {
            for (size_t i = 0; i < errs.count; i++)
                fprintf(stderr, "%s: %s\n", cmd, errs.items[i]);
            gyre_config_errors_dispose(&errs);
            return 1;
        }
        ro.conf = &config->clusters;
    }
    if (since != NULL) {
        ro.to_us = gyre_cli_now_us();
        ro.from_us = ro.to_us - d;
    }
    gyre_store_t *s = NULL;
    int rc = gyre_cli_store_open(cmd, config_path, db, &s);
    if (rc != 0) {
        gyre_config_free(config);
        return rc;
    }
    gyre_buf_t out;
    gyre_buf_init(&out, CLI_CLUSTERS_MAX);
    char err[512] = "";
    int r = rebuild ? gyre_cluster_rebuild(s, &ro, &out, err, sizeof(err))
                    : gyre_store_get_cluster_run(s, &out, err, sizeof(err));
    if (r == -ENOENT && !rebuild) {
        fprintf(stderr, "%s: no clustering has run yet; run gyre clusters --rebuild\n", cmd);
        rc = 1;
    } else if (r == -ENODATA) {
        fprintf(stderr, "%s: no trace in the window to cluster\n", cmd);
        rc = 1;
    } else if (r != 0) {
        fprintf(stderr, "%s: %s\n", cmd, err[0] ? err : strerror(-r));
        rc = 1;
    } else if (json) {
        fwrite(out.base, 1, out.len, stdout);
        fputc('\n', stdout);
    } else {
        rc = print_run(out.base, out.len);
    }
    gyre_buf_dispose(&out);
    gyre_store_close(s);
    gyre_config_free(config);
    return rc;
}
