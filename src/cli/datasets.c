/*
 * `gyre datasets`: the curated datasets kept in the configuration's
 * `datasets:` directory (src/loop/dataset.h), and the validator of OpenAI's
 * fine-tuning formats (src/loop/ftcheck.h).
 *
 *   gyre datasets list [--json]
 *   gyre datasets show ID [--json]
 *   gyre datasets export ID --format openai|preference|heldout --out DIR
 *   gyre datasets validate FILE [--format openai|preference]
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "config/config.h"
#include "loop/dataset.h"
#include "loop/ftcheck.h"

/* A listing is the manifests' first lines (each at most 64 KiB); 10,000 datasets of them fit. */
#define CLI_LIST_MAX ((size_t)64 << 20)
/* A manifest shown (loop/dataset.c's bound on what it writes). */
#define CLI_MANIFEST_MAX ((size_t)320 << 20)

const char gyre_datasets_usage[] =
    "usage: gyre datasets list [--json] [--config FILE | --dir DIR]\n"
    "       gyre datasets show ID [--json] [--config FILE | --dir DIR]\n"
    "       gyre datasets export ID --format openai|preference|heldout --out DIR [--config FILE | --dir DIR]\n"
    "       gyre datasets validate FILE [--format openai|preference] [--max-tokens N] [--min-examples N]\n"
    "\n"
    "The datasets `gyre curate` wrote (docs/datasets.md): immutable, named by\n"
    "their content's hash.\n"
    "\n"
    "  list            every dataset, newest first: id, created, examples per file\n"
    "  show ID         its manifest: the spec, counts per cluster, score distributions,\n"
    "                  provenance (--json: manifest.json as it is)\n"
    "  export ID       copies one file into DIR: openai (train.jsonl, OpenAI's chat\n"
    "                  fine-tuning JSONL), preference (preference.jsonl, DPO), heldout\n"
    "                  (heldout.jsonl)\n"
    "  validate FILE   checks a file against OpenAI's fine-tuning format rules\n"
    "                  (roles, tool calls, weights, tools, a token estimate per example,\n"
    "                  at least 10 examples); prints FILE:LINE: FIELD: message per error\n"
    "\n"
    "  --config FILE   read `datasets:` (or the store beside which they live) from FILE;\n"
    "                  without --dir or --config: the embedded default\n"
    "  --dir DIR       the datasets directory itself\n"
    "  --max-tokens N  validate: an example's token limit (default 65536)\n"
    "  --min-examples N validate: the fewest examples a file may have (default 10)\n"
    "  -h, --help      this text\n"
    "\n"
    "Exit status: 0, 1 when the dataset is not there or the file is not valid,\n"
    "2 for a wrong command line.\n";

typedef struct args {
    const char *config, *dir, *format, *out, *max_tokens, *min_examples;
    int json;
    const char *pos[2];
    int npos;
} args_t;

static int parse_args(int argc, char **argv, args_t *a)
{
    for (int i = 0; i < argc; i++) {
        const char *v;
        int r;
        if (strcmp(argv[i], "--json") == 0) {
            a->json = 1;
            continue;
        }
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(gyre_datasets_usage, stdout);
            return 0;
        }
        static const char *const names[] = {"--config", "--dir", "--format", "--out", "--max-tokens", "--min-examples"};
        const char **slots[] = {&a->config, &a->dir, &a->format, &a->out, &a->max_tokens, &a->min_examples};
        int matched = 0;
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]) && !matched; k++) {
            r = gyre_cli_opt("gyre datasets", argc, argv, &i, names[k], &v);
            if (r < 0)
                return 2;
            if (r == 1) {
                *slots[k] = v;
                matched = 1;
            }
        }
        if (matched)
            continue;
        if (argv[i][0] == '-' || a->npos == 2) {
            fprintf(stderr, "gyre datasets: unexpected '%s'\n\n%s", argv[i], gyre_datasets_usage);
            return 2;
        }
        a->pos[a->npos++] = argv[i];
    }
    return -1;
}

/* The datasets directory: --dir, else the configuration's. 0, or 1 after saying why. */
static int datasets_dir(const args_t *a, char *buf, size_t len)
{
    if (a->dir != NULL) {
        snprintf(buf, len, "%s", a->dir);
        return 0;
    }
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = a->config != NULL ? gyre_config_load_unresolved(a->config, &errs) : gyre_config_default(&errs);
    if (c == NULL) {
        for (size_t i = 0; i < errs.count; i++)
            fprintf(stderr, "%s\n", errs.items[i]);
        fprintf(stderr, "gyre datasets: %zu error%s in the configuration\n", errs.count, errs.count == 1 ? "" : "s");
        gyre_config_errors_dispose(&errs);
        return 1;
    }
    int rc = 0;
    if (gyre_dataset_dir(c, buf, len) == NULL) {
        fprintf(stderr, "gyre datasets: %s configures neither datasets: nor a store; pass --dir DIR\n", c->source);
        rc = 1;
    }
    gyre_config_free(c);
    gyre_config_errors_dispose(&errs);
    return rc;
}

static long long count_of(const cJSON *counts, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(counts, k);
    return cJSON_IsNumber(v) ? (long long)v->valuedouble : 0;
}

static int cmd_list(const args_t *a, const char *dir)
{
    gyre_buf_t b;
    gyre_buf_init(&b, CLI_LIST_MAX);
    char err[512];
    int rc = 1;
    if (gyre_dataset_list_json(dir, &b, err, sizeof(err)) != 0) {
        fprintf(stderr, "gyre datasets: %s\n", err);
        goto out;
    }
    rc = 0;
    if (a->json) {
        printf("%s\n", b.base);
        goto out;
    }
    cJSON *o = cJSON_Parse(b.base);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(o, "datasets"), *d;
    static const char *const headers[] = {"ID", "CREATED", "TRAIN", "HELDOUT", "PREFERENCE", "CORRECTIONS"};
    gyre_cli_table_t t;
    gyre_cli_table_init(&t, 6, headers, "llrrrr", "\0\0\0\0\0\0");
    cJSON_ArrayForEach(d, list)
    {
        const cJSON *counts = cJSON_GetObjectItemCaseSensitive(d, "counts");
        char n[4][24];
        snprintf(n[0], sizeof(n[0]), "%lld", count_of(counts, "train"));
        snprintf(n[1], sizeof(n[1]), "%lld", count_of(counts, "heldout"));
        snprintf(n[2], sizeof(n[2]), "%lld", count_of(counts, "preference"));
        snprintf(n[3], sizeof(n[3]), "%lld", count_of(counts, "corrections"));
        const char *cells[6] = {cJSON_GetObjectItemCaseSensitive(d, "id")->valuestring,
                                cJSON_GetObjectItemCaseSensitive(d, "created")->valuestring, n[0], n[1], n[2], n[3]};
        gyre_cli_table_add(&t, cells);
    }
    if (t.nrows == 0)
        printf("no datasets in %s (gyre curate --spec FILE makes one)\n", dir);
    else
        gyre_cli_table_print(&t, stdout, GYRE_CLI_WIDTH);
    gyre_cli_table_dispose(&t);
    cJSON_Delete(o);
out:
    gyre_buf_dispose(&b);
    return rc;
}

static int read_dataset_file(const char *dir, const char *id, const char *file, gyre_buf_t *b)
{
    char err[512];
    int r = gyre_dataset_read_file(dir, id, file, b, err, sizeof(err));
    if (r == -ENOENT)
        fprintf(stderr, "gyre datasets: no dataset '%.64s' in %s\n", id, dir);
    else if (r != 0)
        fprintf(stderr, "gyre datasets: %s\n", err);
    return r == 0 ? 0 : 1;
}

static int cmd_show(const args_t *a, const char *dir, const char *id)
{
    gyre_buf_t b;
    gyre_buf_init(&b, CLI_MANIFEST_MAX);
    int rc = read_dataset_file(dir, id, "manifest.json", &b);
    if (rc != 0 || a->json) {
        if (rc == 0)
            fputs(b.base, stdout);
        gyre_buf_dispose(&b);
        return rc;
    }
    cJSON *m = cJSON_Parse(b.base);
    gyre_buf_dispose(&b);
    const cJSON *counts = cJSON_GetObjectItemCaseSensitive(m, "counts");
    printf("dataset     %s\ncreated     %s\nfolder      %s/%s\n", id,
           cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "created")), dir, id);
    printf("examples    %lld train, %lld held out, %lld preference pairs (%lld corrections, %lld left out)\n",
           count_of(counts, "train"), count_of(counts, "heldout"), count_of(counts, "preference"),
           count_of(counts, "corrections"), count_of(counts, "skipped"));
    const cJSON *x;
    static const char *const ch[] = {"CLUSTER", "TRAIN", "HELDOUT", "PREFERENCE"};
    gyre_cli_table_t t;
    gyre_cli_table_init(&t, 4, ch, "rrrr", "\0\0\0\0");
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(m, "clusters"))
    {
        char n[4][24];
        long long c = count_of(x, "cluster");
        snprintf(n[0], sizeof(n[0]), c < 0 ? "none" : "%lld", c);
        snprintf(n[1], sizeof(n[1]), "%lld", count_of(x, "train"));
        snprintf(n[2], sizeof(n[2]), "%lld", count_of(x, "heldout"));
        snprintf(n[3], sizeof(n[3]), "%lld", count_of(x, "preference"));
        const char *cells[4] = {n[0], n[1], n[2], n[3]};
        gyre_cli_table_add(&t, cells);
    }
    printf("\n");
    gyre_cli_table_print(&t, stdout, GYRE_CLI_WIDTH);
    gyre_cli_table_dispose(&t);
    static const char *const sh[] = {"SCORE", "N", "MEAN", "MIN", "P50", "MAX"};
    gyre_cli_table_init(&t, 6, sh, "lrrrrr", "\1\0\0\0\0\0");
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(m, "scores"))
    {
        char n[5][32];
        static const char *const k[] = {"n", "mean", "min", "p50", "max"};
        for (int i = 0; i < 5; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(x, k[i]);
            snprintf(n[i], sizeof(n[i]), "%.4g", cJSON_IsNumber(v) ? v->valuedouble : 0);
        }
        const char *cells[6] = {x->string, n[0], n[1], n[2], n[3], n[4]};
        gyre_cli_table_add(&t, cells);
    }
    if (t.nrows > 0) {
        printf("\n");
        gyre_cli_table_print(&t, stdout, GYRE_CLI_WIDTH);
    }
    gyre_cli_table_dispose(&t);
    printf("\nspec        %s\n", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "spec")));
    cJSON_Delete(m);
    return 0;
}

/* Copies the dataset's file into `out` (made when missing), streaming: files may be GBs. */
static int cmd_export(const char *dir, const char *id, const char *format, const char *outdir)
{
    const char *file = strcmp(format, "openai") == 0       ? "train.jsonl"
                       : strcmp(format, "preference") == 0 ? "preference.jsonl"
                       : strcmp(format, "heldout") == 0    ? "heldout.jsonl"
                                                           : NULL;
    if (file == NULL) {
        fprintf(stderr, "gyre datasets: --format '%s' is none of openai, preference, heldout\n", format);
        return 2;
    }
    if (!gyre_dataset_id_valid(id, strlen(id))) {
        fprintf(stderr, "gyre datasets: no dataset '%.64s' (ids are 32 lowercase hex digits)\n", id);
        return 1;
    }
    char src[4096 + 128], dst[4096 + 128];
    snprintf(src, sizeof(src), "%s/%s/%s", dir, id, file);
    snprintf(dst, sizeof(dst), "%s/%s", outdir, file);
    FILE *in = fopen(src, "rb");
    if (in == NULL) {
        fprintf(stderr, "gyre datasets: no dataset '%s' in %s\n", id, dir);
        return 1;
    }
    if (mkdir(outdir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "gyre datasets: cannot make %s: %s\n", outdir, strerror(errno));
        fclose(in);
        return 1;
    }
    FILE *out = fopen(dst, "wb");
    if (out == NULL) {
        fprintf(stderr, "gyre datasets: cannot write %s: %s\n", dst, strerror(errno));
        fclose(in);
        return 1;
    }
    char chunk[65536];
    size_t n, total = 0;
    int bad = 0;
    while (!bad && (n = fread(chunk, 1, sizeof(chunk), in)) > 0) {
        bad = fwrite(chunk, 1, n, out) != n;
        total += n;
    }
    bad |= ferror(in) || fclose(out) != 0;
    fclose(in);
    if (bad) {
        fprintf(stderr, "gyre datasets: writing %s failed: %s\n", dst, strerror(errno));
        return 1;
    }
    printf("%s (%zu bytes)\n", dst, total);
    return 0;
}

static int parse_count(const char *flag, const char *v, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = v != NULL ? strtoull(v, &end, 10) : 0;
    if (v == NULL)
        return 0;
    if (errno != 0 || *end != '\0' || v[0] == '-' || n == 0 || n > 100000000ULL) {
        fprintf(stderr, "gyre datasets: %s must be a whole number from 1 to 100000000, not '%s'\n", flag, v);
        return -1;
    }
    *out = (size_t)n;
    return 0;
}

static int cmd_validate(const args_t *a, const char *path)
{
    gyre_ft_format_t f = GYRE_FT_OPENAI;
    if (a->format != NULL && strcmp(a->format, "preference") == 0)
        f = GYRE_FT_PREFERENCE;
    else if (a->format != NULL && strcmp(a->format, "openai") != 0) {
        fprintf(stderr, "gyre datasets: --format '%s' is neither openai nor preference\n", a->format);
        return 2;
    }
    size_t max_tokens = 0, min_examples = 0;
    if (parse_count("--max-tokens", a->max_tokens, &max_tokens) != 0 ||
        parse_count("--min-examples", a->min_examples, &min_examples) != 0)
        return 2;
    gyre_ftcheck_t c;
    gyre_ftcheck_init(&c, f, max_tokens, min_examples);
    char err[512];
    long n = gyre_ftcheck_file(&c, path, err, sizeof(err));
    if (n < 0) {
        fprintf(stderr, "gyre datasets: %s\n", err);
        gyre_ftcheck_dispose(&c);
        return 1;
    }
    /* The report's lines are "LINE: FIELD: message": each is printed as FILE:LINE: ..., as compilers do. */
    for (const char *p = c.report.base; p != NULL && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        printf("%s:%.*s\n", path, (int)len, p);
        p += len + (nl != NULL);
    }
    if (c.errors > GYRE_FTCHECK_REPORT_MAX)
        printf("%s: ... and %zu more errors\n", path, c.errors - GYRE_FTCHECK_REPORT_MAX);
    printf("%s: %zu line%s, %zu valid example%s, %zu error%s (%s format; largest example about %zu tokens, limit "
           "%zu)\n",
           path, c.lines, c.lines == 1 ? "" : "s", c.examples, c.examples == 1 ? "" : "s", c.errors,
           c.errors == 1 ? "" : "s", f == GYRE_FT_OPENAI ? "openai chat" : "preference", c.max_example_tokens,
           c.max_tokens);
    int rc = c.errors == 0 ? 0 : 1;
    gyre_ftcheck_dispose(&c);
    return rc;
}

int gyre_cmd_datasets(int argc, char **argv)
{
    if (argc < 1) {
        fputs(gyre_datasets_usage, stderr);
        return 2;
    }
    const char *sub = argv[0];
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
        fputs(gyre_datasets_usage, stdout);
        return 0;
    }
    args_t a = {0};
    int r = parse_args(argc - 1, argv + 1, &a);
    if (r >= 0)
        return r;
    int want = strcmp(sub, "list") == 0 ? 0 : 1;
    if (strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0 && strcmp(sub, "export") != 0 &&
        strcmp(sub, "validate") != 0) {
        fprintf(stderr, "gyre datasets: unknown subcommand '%s'\n\n%s", sub, gyre_datasets_usage);
        return 2;
    }
    if (a.npos != want) {
        fprintf(stderr, "gyre datasets %s: %s\n\n%s", sub,
                want == 0 ? "takes no argument" : strcmp(sub, "validate") == 0 ? "needs a FILE" : "needs an ID",
                gyre_datasets_usage);
        return 2;
    }
    if (strcmp(sub, "validate") == 0)
        return cmd_validate(&a, a.pos[0]);
    if (strcmp(sub, "export") == 0 && (a.format == NULL || a.out == NULL)) {
        fprintf(stderr, "gyre datasets export: needs --format openai|preference|heldout and --out DIR\n");
        return 2;
    }
    char dir[4096];
    if (datasets_dir(&a, dir, sizeof(dir)) != 0)
        return 1;
    if (strcmp(sub, "list") == 0)
        return cmd_list(&a, dir);
    if (strcmp(sub, "show") == 0)
        return cmd_show(&a, dir, a.pos[0]);
    return cmd_export(dir, a.pos[0], a.format, a.out);
}
