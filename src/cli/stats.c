/*
 * `gyre stats`: counts, latency and TTFT percentiles, error rate, tokens
 * and cost over a time range, grouped and bucketed in time, read from the
 * trace store through its `stats` op, the one /api/stats calls.
 * The text form is the totals, then a table per group and per time bucket;
 * --json prints the store's answer as it is.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "store/store.h"

/* The bound on the store's answer: 10000 groups and 10080 buckets of a few hundred bytes each fit. */
#define CLI_STATS_MAX ((size_t)64 << 20)

const char gyre_stats_usage[] =
    "usage: gyre stats [--since DURATION | --from TIME] [--to TIME]\n"
    "                  [--by route|provider|model|agent|user|key|team[,...]] [--bucket DURATION]\n"
    "                  [--route NAME] [--provider NAME] [--model NAME] [--agent NAME] [--user ID]\n"
    "                  [--key ID] [--team NAME]\n"
    "                  [--json] [--db PATH | --config FILE]\n"
    "\n"
    "Prints, for the traces that started in the range: requests, errors and the\n"
    "error rate, latency and time-to-first-token percentiles (p50, p95, p99, in\n"
    "ms), tokens (prompt, completion, cached, reasoning) and cost in USD; then\n"
    "the same per group (--by) and per time bucket (--bucket).  Unknown values\n"
    "(no stream for TTFT, a model without a price) show as '-'.\n"
    "\n"
    "  --since DURATION   the last DURATION: 15m, 1h, 24h (the default), 7d\n"
    "  --from TIME        from TIME: RFC 3339 (2026-12-01T10:00:00Z) or unix seconds\n"
    "  --to TIME          up to TIME (default: now)\n"
    "  --by DIMS          group by one or more of route, provider, model, agent,\n"
    "                     user, key (the gateway key's id), team, comma-separated\n"
    "                     (--by provider,model)\n"
    "  --bucket DURATION  time buckets of 1m, 5m, 15m, 1h or 1d, aligned to the\n"
    "                     unix epoch (UTC)\n"
    "  --route, --provider, --model, --agent, --user   count only these traces\n"
    "  --key ID, --team NAME   count only the calls made with this gateway key, or\n"
    "                     by this team's keys\n"
    "  --json             the store's answer, as GET /api/stats gives it\n"
    "  --db PATH          the SQLite trace store to read\n"
    "  --config FILE      read the store's path from FILE (its env: and file:\n"
    "                     secrets are not loaded, so the providers' key\n"
    "                     variables need not be set); without --db or\n"
    "                     --config: the embedded default, ./gyre.db\n"
    "  -h, --help         this text\n"
    "\n"
    "Exit status: 0, 1 when the store cannot be read, 2 for a wrong command line.\n";

static const struct {
    const char *name, *header;
    unsigned bit;
} dims[] = {
    {"route", "ROUTE", GYRE_STATS_BY_ROUTE}, {"provider", "PROVIDER", GYRE_STATS_BY_PROVIDER},
    {"model", "MODEL", GYRE_STATS_BY_MODEL}, {"agent", "AGENT", GYRE_STATS_BY_AGENT},
    {"user", "USER", GYRE_STATS_BY_USER},    {"key", "KEY", GYRE_STATS_BY_KEY},
    {"team", "TEAM", GYRE_STATS_BY_TEAM},
};
#define NDIMS (sizeof(dims) / sizeof(dims[0]))

/* The columns every stats row has, after its key columns. */
enum { S_REQS, S_ERRS, S_ERR_PCT, S_P50, S_P95, S_P99, S_TTFT50, S_TTFT95, S_IN, S_OUT, S_COST, NSTATS };
static const char *const stat_headers[NSTATS] = {"REQS",     "ERRS",     "ERR_%", "P50_MS", "P95_MS",  "P99_MS",
                                                 "TTFT_P50", "TTFT_P95", "IN",    "OUT",    "COST_USD"};

static int jnum(const cJSON *o, const char *key, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v))
        return 0;
    *out = v->valuedouble;
    return 1;
}

/* A member as text: `fmt` applied to the number (times `scale`), "-" when it is null or absent. */
static void fmt_num(char *buf, size_t len, const cJSON *o, const char *key, const char *fmt, double scale)
{
    double v;
    if (o != NULL && jnum(o, key, &v))
        snprintf(buf, len, fmt, v * scale);
    else
        snprintf(buf, len, "-");
}

typedef struct stat_cells {
    char c[NSTATS][48];
} stat_cells_t;

static void stat_cells(stat_cells_t *sc, const cJSON *st)
{
    const cJSON *lat = cJSON_GetObjectItemCaseSensitive(st, "latency_ms");
    const cJSON *ttft = cJSON_GetObjectItemCaseSensitive(st, "ttft_ms");
    if (!cJSON_IsObject(ttft))
        ttft = NULL;
    if (!cJSON_IsObject(lat))
        lat = NULL;
    fmt_num(sc->c[S_REQS], sizeof(sc->c[0]), st, "requests", "%.0f", 1);
    fmt_num(sc->c[S_ERRS], sizeof(sc->c[0]), st, "errors", "%.0f", 1);
    fmt_num(sc->c[S_ERR_PCT], sizeof(sc->c[0]), st, "error_rate", "%.1f", 100);
    fmt_num(sc->c[S_P50], sizeof(sc->c[0]), lat, "p50", "%.1f", 1);
    fmt_num(sc->c[S_P95], sizeof(sc->c[0]), lat, "p95", "%.1f", 1);
    fmt_num(sc->c[S_P99], sizeof(sc->c[0]), lat, "p99", "%.1f", 1);
    fmt_num(sc->c[S_TTFT50], sizeof(sc->c[0]), ttft, "p50", "%.1f", 1);
    fmt_num(sc->c[S_TTFT95], sizeof(sc->c[0]), ttft, "p95", "%.1f", 1);
    fmt_num(sc->c[S_IN], sizeof(sc->c[0]), st, "prompt_tokens", "%.0f", 1);
    fmt_num(sc->c[S_OUT], sizeof(sc->c[0]), st, "completion_tokens", "%.0f", 1);
    fmt_num(sc->c[S_COST], sizeof(sc->c[0]), st, "cost_usd", "%.6f", 1);
}

static void print_total(const cJSON *root)
{
    const cJSON *total = cJSON_GetObjectItemCaseSensitive(root, "total");
    char from[32], to[32], b[8][48];
    double v = 0;
    jnum(root, "from_us", &v);
    gyre_cli_format_time((int64_t)v, from, sizeof(from));
    v = 0;
    jnum(root, "to_us", &v);
    gyre_cli_format_time((int64_t)v, to, sizeof(to));
    printf("range        %s to %s UTC\n", from, to);
    fmt_num(b[0], sizeof(b[0]), total, "requests", "%.0f", 1);
    fmt_num(b[1], sizeof(b[1]), total, "errors", "%.0f", 1);
    fmt_num(b[2], sizeof(b[2]), total, "error_rate", "%.1f%%", 100);
    printf("requests     %s\n", b[0]);
    printf("errors       %s (%s)\n", b[1], b[2]);
    const char *names[2] = {"latency_ms", "ttft_ms"}, *labels[2] = {"latency ms", "ttft ms"};
    for (int i = 0; i < 2; i++) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(total, names[i]);
        if (!cJSON_IsObject(p))
            p = NULL;
        fmt_num(b[0], sizeof(b[0]), p, "p50", "%.1f", 1);
        fmt_num(b[1], sizeof(b[1]), p, "p95", "%.1f", 1);
        fmt_num(b[2], sizeof(b[2]), p, "p99", "%.1f", 1);
        printf("%-12s p50 %s, p95 %s, p99 %s\n", labels[i], b[0], b[1], b[2]);
    }
    fmt_num(b[0], sizeof(b[0]), total, "prompt_tokens", "%.0f", 1);
    fmt_num(b[1], sizeof(b[1]), total, "completion_tokens", "%.0f", 1);
    fmt_num(b[2], sizeof(b[2]), total, "cached_tokens", "%.0f", 1);
    fmt_num(b[3], sizeof(b[3]), total, "reasoning_tokens", "%.0f", 1);
    printf("tokens       prompt %s, completion %s, cached %s, reasoning %s\n", b[0], b[1], b[2], b[3]);
    fmt_num(b[0], sizeof(b[0]), total, "cost_usd", "%.6f", 1);
    printf("cost usd     %s\n", b[0]);
}

/* Prints `rows` (groups or buckets) as a table: the key columns (`nkeys` of them), then the stats. */
static void print_rows(const char *title, const cJSON *rows, const char *const *key_headers,
                       const char *const *key_names, size_t nkeys, int is_bucket)
{
    const char *headers[NDIMS + NSTATS];
    char align[NDIMS + NSTATS + 1], shrink[NDIMS + NSTATS];
    size_t n = nkeys + NSTATS;
    for (size_t i = 0; i < nkeys; i++) {
        headers[i] = key_headers[i];
        align[i] = 'l';
        shrink[i] = 1;
    }
    for (size_t i = 0; i < NSTATS; i++) {
        headers[nkeys + i] = stat_headers[i];
        align[nkeys + i] = 'r';
        shrink[nkeys + i] = 0;
    }
    align[n] = '\0';

    gyre_cli_table_t tab;
    gyre_cli_table_init(&tab, n, headers, align, shrink);
    const cJSON *row;
    cJSON_ArrayForEach(row, rows)
    {
        const char *cells[NDIMS + NSTATS];
        char start[32];
        stat_cells_t sc;
        const cJSON *key = cJSON_GetObjectItemCaseSensitive(row, "key");
        for (size_t i = 0; i < nkeys; i++) {
            if (is_bucket) {
                double v = 0;
                jnum(row, "start_us", &v);
                gyre_cli_format_time((int64_t)v, start, sizeof(start));
                cells[i] = start;
            } else {
                const cJSON *k = cJSON_GetObjectItemCaseSensitive(key, key_names[i]);
                cells[i] = cJSON_IsString(k) && k->valuestring[0] != '\0' ? k->valuestring : "-";
            }
        }
        stat_cells(&sc, row);
        for (size_t i = 0; i < NSTATS; i++)
            cells[nkeys + i] = sc.c[i];
        gyre_cli_table_add(&tab, cells);
    }
    printf("\n%s (%zu):\n", title, tab.nrows);
    if (tab.nrows != 0)
        gyre_cli_table_print(&tab, stdout, GYRE_CLI_WIDTH);
    gyre_cli_table_dispose(&tab);
}

/* Reads "provider,model" into the dimensions, in the order given.  0, or -1 after printing which is wrong. */
static int parse_by(const char *cmd, const char *v, unsigned *mask, size_t *order, size_t *norder)
{
    const char *p = v;
    *norder = 0;
    while (1) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        size_t d = NDIMS;
        for (size_t i = 0; i < NDIMS; i++)
            if (strlen(dims[i].name) == len && strncmp(p, dims[i].name, len) == 0)
                d = i;
        if (d == NDIMS) {
            fprintf(stderr, "%s: --by: unknown dimension '%.*s' (known: route, provider, model, agent, user, key, team)\n", cmd,
                    (int)len, p);
            return -1;
        }
        if (!(*mask & dims[d].bit))
            order[(*norder)++] = d;
        *mask |= dims[d].bit;
        if (comma == NULL)
            return 0;
        p = comma + 1;
    }
}

int gyre_cmd_stats(int argc, char **argv)
{
    static const char cmd[] = "gyre stats";
    gyre_stats_query_t q = {0};
    const char *config = NULL, *db = NULL, *since = NULL, *from = NULL, *to = NULL, *by = NULL, *bucket = NULL,
               *v = NULL;
    int json = 0;
    size_t order[NDIMS], norder = 0;
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
            fputs(gyre_stats_usage, stdout);
            return 0;
        }
        if (strcmp(a, "--json") == 0) {
            json = 1;
            continue;
        }
        STRING_OPT("--config", config)
        STRING_OPT("-c", config)
        STRING_OPT("--db", db)
        STRING_OPT("--since", since)
        STRING_OPT("--from", from)
        STRING_OPT("--to", to)
        STRING_OPT("--by", by)
        STRING_OPT("--bucket", bucket)
        STRING_OPT("--route", q.route)
        STRING_OPT("--provider", q.provider)
        STRING_OPT("--model", q.model)
        STRING_OPT("--agent", q.agent)
        STRING_OPT("--user", q.user)
        STRING_OPT("--key", q.key_id)
        STRING_OPT("--team", q.team)
#undef STRING_OPT
        if (a[0] == '-')
            fprintf(stderr, "%s: unknown option '%s'\n\n%s", cmd, a, gyre_stats_usage);
        else
            fprintf(stderr, "%s: unexpected argument '%s'\n\n%s", cmd, a, gyre_stats_usage);
        return 2;
    }
    if (config != NULL && db != NULL) {
        fprintf(stderr, "%s: --db and --config both name the store; pass one\n", cmd);
        return 2;
    }
    if (since != NULL && from != NULL) {
        fprintf(stderr, "%s: --since and --from both set the start; pass one\n", cmd);
        return 2;
    }
    int64_t d;
    if (since != NULL) {
        if (gyre_cli_parse_duration(since, &d) != 0) {
            fprintf(stderr, "%s: --since must be a duration such as 15m, 1h, 24h or 7d, got '%s'\n", cmd, since);
            return 2;
        }
        q.to_us = gyre_cli_now_us();
        q.from_us = q.to_us - d;
    }
    if (from != NULL && gyre_cli_parse_time(from, &q.from_us) != 0) {
        fprintf(stderr, "%s: --from must be an RFC 3339 time (2026-12-01T10:00:00Z) or unix seconds, got '%s'\n", cmd,
                from);
        return 2;
    }
    if (to != NULL && gyre_cli_parse_time(to, &q.to_us) != 0) {
        fprintf(stderr, "%s: --to must be an RFC 3339 time (2026-12-01T10:00:00Z) or unix seconds, got '%s'\n", cmd,
                to);
        return 2;
    }
    if (q.from_us != 0 && q.to_us != 0 && q.to_us <= q.from_us) {
        fprintf(stderr, "%s: --to must be later than the start\n", cmd);
        return 2;
    }
    if (by != NULL && parse_by(cmd, by, &q.group_by, order, &norder) != 0)
        return 2;
    if (bucket != NULL) {
        if (gyre_cli_parse_duration(bucket, &d) != 0) {
            fprintf(stderr, "%s: --bucket must be a duration: 1m, 5m, 15m, 1h or 1d, got '%s'\n", cmd, bucket);
            return 2;
        }
        q.bucket_us = d;
    }

    gyre_store_t *s = NULL;
    int rc = gyre_cli_store_open(cmd, config, db, &s);
    if (rc != 0)
        return rc;
    char err[512] = "";
    gyre_buf_t b;
    gyre_buf_init(&b, CLI_STATS_MAX);
    int r = gyre_store_stats(s, &q, &b, err, sizeof(err));
    rc = 1;
    if (r == -EINVAL) {
        /* The store names the parameter first ("bucket: ..."): the flag of the same name. */
        fprintf(stderr, "%s: --%s\n", cmd, err);
        rc = 2;
    } else if (r != 0) {
        fprintf(stderr, "%s: %s\n", cmd, err);
    } else if (json) {
        fwrite(b.base, 1, b.len, stdout);
        fputc('\n', stdout);
        rc = 0;
    } else {
        cJSON *root = cJSON_ParseWithLength(b.base, b.len);
        if (root == NULL) {
            fprintf(stderr, "%s: the store's answer is not JSON (%zu bytes)\n", cmd, b.len);
        } else {
            print_total(root);
            if (norder != 0) {
                const char *kh[NDIMS], *kn[NDIMS];
                for (size_t i = 0; i < norder; i++) {
                    kh[i] = dims[order[i]].header;
                    kn[i] = dims[order[i]].name;
                }
                print_rows("groups", cJSON_GetObjectItemCaseSensitive(root, "groups"), kh, kn, norder, 0);
            }
            if (q.bucket_us != 0) {
                static const char *const bh[1] = {"START (UTC)"};
                print_rows("buckets", cJSON_GetObjectItemCaseSensitive(root, "buckets"), bh, NULL, 1, 1);
            }
            cJSON_Delete(root);
            rc = 0;
        }
    }
    gyre_buf_dispose(&b);
    gyre_store_close(s);
    return rc;
}
