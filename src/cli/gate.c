/*
 * gyre gate: the eval gate (issue 15, point 4) from the command line.
 *
 *   gyre gate run     replays a dataset's held-out split through a running
 *                     gyre with the candidate and the incumbent, scores,
 *                     compares and decides (src/loop/gate.h), and writes the
 *                     report (markdown and JSON);
 *   gyre gate verify  recomputes the decision of a stored report from the
 *                     report alone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/json.h"
#include "config/config.h"
#include "loop/dataset.h"
#include "loop/gate.h"

const char gyre_gate_usage[] =
    "usage: gyre gate run --dataset ID|DIR --candidate PROVIDER/MODEL --incumbent PROVIDER/MODEL --scorer NAME...\n"
    "                     [--rule RULE]... [--confidence C] [--resamples N] [--limit N] [--concurrency N] [--seed N]\n"
    "                     [--config FILE] [--url http://HOST:PORT] [--key KEY] [--out DIR] [--json]\n"
    "       gyre gate verify REPORT.json [--json]\n"
    "\n"
    "run: replays the dataset's held-out split (heldout.jsonl; a dataset id is looked up in the configuration's\n"
    "datasets directory) through the running gyre at --url (default: the configuration's listen address, with --key\n"
    "or $GYRE_API_KEY), once with the candidate and once with the incumbent; scores both answers with each --scorer\n"
    "(scorers of the configuration); compares them with paired bootstrap intervals and applies the rules:\n"
    "  --rule SCORER:MAX_DROP        the candidate's mean >= the incumbent's - MAX_DROP (the interval's lower bound)\n"
    "  --rule cost:MAX_INCREASE      cost per request at most MAX_INCREASE higher (0.1: 10 %), upper bound\n"
    "  --rule latency_p95:MAX_INCREASE, --rule error_rate:MAX_INCREASE (error_rate: an absolute difference)\n"
    "  --rule cluster_max_drop:MAX   no cluster (5 lines or more) worse by more than MAX on any scorer\n"
    "No rule: every scorer with max_drop 0.01.  The markdown report goes to stdout (--json: the JSON report);\n"
    "--out DIR also writes DIR/gate.md and DIR/gate.json.  Exit status: 0 pass, 1 fail (or the gate could not run),\n"
    "2 a wrong command line.\n"
    "\n"
    "verify: recomputes the verdict from the report's paired observations, seed and rules, and prints it.  Exit\n"
    "status: 0 pass, 1 fail (or an unreadable report), 3 the report's own verdict differs from the recomputed one.\n";

#define MAX_RULES GYRE_LOOP_MAX_RULES

static int parse_rule(const char *spec, gyre_gate_rule_t *r)
{
    const char *colon = strrchr(spec, ':');
    if (colon == NULL || colon == spec || colon[1] == '\0')
        return -1;
    char *end;
    double v = strtod(colon + 1, &end);
    if (*end != '\0' || !(v >= 0 && v < 1e9))
        return -1;
    size_t n = (size_t)(colon - spec);
    memset(r, 0, sizeof(*r));
    if (n == 4 && strncmp(spec, "cost", 4) == 0) {
        r->kind = GYRE_GATE_COST;
        r->max_increase = v;
    } else if (n == 11 && strncmp(spec, "latency_p95", 11) == 0) {
        r->kind = GYRE_GATE_LATENCY_P95;
        r->max_increase = v;
    } else if (n == 10 && strncmp(spec, "error_rate", 10) == 0) {
        r->kind = GYRE_GATE_ERROR_RATE;
        r->max_increase = v;
    } else if (n == 16 && strncmp(spec, "cluster_max_drop", 16) == 0) {
        r->kind = GYRE_GATE_CLUSTER;
        r->max_drop = v;
    } else {
        r->kind = GYRE_GATE_SCORER;
        r->scorer = strndup(spec, n);
        r->max_drop = v;
    }
    return 0;
}

static int parse_unsigned(const char *cmd, const char *name, const char *s, unsigned long long max,
                          unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v > max) {
        fprintf(stderr, "%s: %s %s is not a whole number up to %llu\n", cmd, name, s, max);
        return -1;
    }
    *out = v;
    return 0;
}

static void show_progress(void *ctx, unsigned done, unsigned total)
{
    (void)ctx;
    int w = total ? (int)((double)done / total * 30) : 30;
    fprintf(stderr, "\rreplay [%.*s%*s] %u/%u calls", w, "##############################", 30 - w, "", done, total);
    if (done == total)
        fprintf(stderr, "\n");
}

static int write_file(const char *dir, const char *name, const gyre_buf_t *b)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL || fwrite(b->base, 1, b->len, f) != b->len || fclose(f) != 0) {
        fprintf(stderr, "gyre gate run: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    const char *cmd = "gyre gate run";
    const char *dataset = NULL, *candidate = NULL, *incumbent = NULL, *config_path = NULL, *url = NULL;
    const char *key = getenv("GYRE_API_KEY"), *out_dir = NULL, *v = NULL;
    int json = 0, rc = 2;
    char *scorers[GYRE_LOOP_MAX_SCORERS];
    gyre_gate_rule_t rules[MAX_RULES];
    gyre_gate_conf_t conf = {.scorers = scorers, .rules = rules, .confidence = 0.95, .resamples = 2000,
                             .limit = 500, .concurrency = 4, .seed = 1};
    for (int i = 0; i < argc; i++) {
        int r;
        unsigned long long n;
        if ((r = gyre_cli_opt(cmd, argc, argv, &i, "--dataset", &dataset)) != 0 ||
            (r = gyre_cli_opt(cmd, argc, argv, &i, "--candidate", &candidate)) != 0 ||
            (r = gyre_cli_opt(cmd, argc, argv, &i, "--incumbent", &incumbent)) != 0 ||
            (r = gyre_cli_opt(cmd, argc, argv, &i, "--config", &config_path)) != 0 ||
            (r = gyre_cli_opt(cmd, argc, argv, &i, "--url", &url)) != 0 ||
            (r = gyre_cli_opt(cmd, argc, argv, &i, "--key", &key)) != 0 ||
            (r = gyre_cli_opt(cmd, argc, argv, &i, "--out", &out_dir)) != 0) {
            if (r < 0)
                goto out;
            continue;
        }
        if ((r = gyre_cli_opt(cmd, argc, argv, &i, "--scorer", &v)) != 0) {
            if (r < 0)
                goto out;
            if (conf.nscorers == GYRE_LOOP_MAX_SCORERS) {
                fprintf(stderr, "%s: at most %d --scorer\n", cmd, GYRE_LOOP_MAX_SCORERS);
                goto out;
            }
            scorers[conf.nscorers++] = (char *)v;
        } else if ((r = gyre_cli_opt(cmd, argc, argv, &i, "--rule", &v)) != 0) {
            if (r < 0)
                goto out;
            if (conf.nrules == MAX_RULES || parse_rule(v, &rules[conf.nrules]) != 0) {
                fprintf(stderr, "%s: --rule %s is not NAME:NUMBER (at most %d rules)\n", cmd, v, MAX_RULES);
                goto out;
            }
            conf.nrules++;
        } else if ((r = gyre_cli_opt(cmd, argc, argv, &i, "--confidence", &v)) != 0) {
            char *end;
            if (r < 0)
                goto out;
            conf.confidence = strtod(v, &end);
            if (*end != '\0' || !(conf.confidence > 0 && conf.confidence < 1)) {
                fprintf(stderr, "%s: --confidence %s is not a number between 0 and 1\n", cmd, v);
                goto out;
            }
        } else if ((r = gyre_cli_opt(cmd, argc, argv, &i, "--resamples", &v)) != 0) {
            if (r < 0 || parse_unsigned(cmd, "--resamples", v, 100000, &n) != 0 || n == 0)
                goto out;
            conf.resamples = (unsigned)n;
        } else if ((r = gyre_cli_opt(cmd, argc, argv, &i, "--limit", &v)) != 0) {
            if (r < 0 || parse_unsigned(cmd, "--limit", v, GYRE_GATE_MAX_LINES, &n) != 0 || n == 0)
                goto out;
            conf.limit = (unsigned)n;
        } else if ((r = gyre_cli_opt(cmd, argc, argv, &i, "--concurrency", &v)) != 0) {
            if (r < 0 || parse_unsigned(cmd, "--concurrency", v, 32, &n) != 0 || n == 0)
                goto out;
            conf.concurrency = (unsigned)n;
        } else if ((r = gyre_cli_opt(cmd, argc, argv, &i, "--seed", &v)) != 0) {
            if (r < 0 || parse_unsigned(cmd, "--seed", v, UINT64_MAX, &n) != 0)
                goto out;
            conf.seed = n;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else {
            fprintf(stderr, "%s: unknown argument %s\n%s", cmd, argv[i], gyre_gate_usage);
            goto out;
        }
    }
    if (dataset == NULL || candidate == NULL || incumbent == NULL || conf.nscorers == 0) {
        fprintf(stderr, "%s: --dataset, --candidate, --incumbent and a --scorer are needed\n%s", cmd, gyre_gate_usage);
        goto out;
    }
    rc = 1;
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = config_path != NULL ? gyre_config_load_unresolved(config_path, &errs) : gyre_config_default(&errs);
    if (c == NULL) {
        for (size_t i = 0; i < errs.count; i++)
            fprintf(stderr, "%s\n", errs.items[i]);
        fprintf(stderr, "%s: %zu error%s in the configuration\n", cmd, errs.count, errs.count == 1 ? "" : "s");
        gyre_config_errors_dispose(&errs);
        goto out;
    }
    gyre_json_init();
    char dir[4200];
    if (gyre_dataset_id_valid(dataset, strlen(dataset))) {
        char base[4096];
        snprintf(dir, sizeof(dir), "%s/%s", gyre_dataset_dir(c, base, sizeof(base)), dataset);
    } else {
        snprintf(dir, sizeof(dir), "%s", dataset);
    }
    gyre_gate_env_t env;
    memset(&env, 0, sizeof(env));
    env.config = c;
    env.conf = &conf;
    env.dataset_dir = dir;
    env.candidate = candidate;
    env.incumbent = incumbent;
    env.key = key;
    if (isatty(2))
        env.progress = show_progress;
    char url_buf[400], full[1200];
    if (url == NULL) {
        const char *h = strcmp(c->listen_host, "0.0.0.0") == 0 ? "127.0.0.1"
                        : strcmp(c->listen_host, "::") == 0    ? "::1"
                                                               : c->listen_host;
        int v6 = strchr(h, ':') != NULL;
        snprintf(url_buf, sizeof(url_buf), "http://%s%s%s:%u", v6 ? "[" : "", h, v6 ? "]" : "",
                 (unsigned)c->listen_port);
        url = url_buf;
    }
    size_t ul = strlen(url);
    snprintf(full, sizeof(full), "%.*s/v1/chat/completions", (int)(ul > 0 && url[ul - 1] == '/' ? ul - 1 : ul), url);
    if (gyre_httpc_parse_url(full, &env.url) != 0 || env.url.https) {
        fprintf(stderr, "%s: --url %s is not an http://HOST:PORT address\n", cmd, url);
        gyre_config_free(c);
        goto out;
    }
    gyre_buf_t rj, md;
    gyre_buf_init(&rj, GYRE_GATE_REPORT_MAX);
    gyre_buf_init(&md, GYRE_GATE_REPORT_MAX);
    int passed = 0;
    char err[512] = "";
    int r = gyre_gate_run(&env, &rj, &md, &passed, err, sizeof(err));
    if (r != 0) {
        fprintf(stderr, "%s: %s\n", cmd, err);
    } else {
        int wrote = 0;
        if (out_dir != NULL) {
            mkdir(out_dir, 0755);
            wrote = write_file(out_dir, "gate.json", &rj) | write_file(out_dir, "gate.md", &md);
        }
        const gyre_buf_t *shown = json ? &rj : &md;
        fwrite(shown->base, 1, shown->len, stdout);
        rc = wrote != 0 ? 1 : passed ? 0 : 1;
    }
    gyre_buf_dispose(&rj);
    gyre_buf_dispose(&md);
    gyre_config_free(c);
out:
    for (size_t i = 0; i < conf.nrules; i++)
        if (rules[i].kind == GYRE_GATE_SCORER)
            free(rules[i].scorer);
    return rc;
}

static int cmd_verify(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (argv[i][0] != '-' && path == NULL)
            path = argv[i];
        else {
            fprintf(stderr, "gyre gate verify: unknown argument %s\n%s", argv[i], gyre_gate_usage);
            return 2;
        }
    }
    if (path == NULL) {
        fprintf(stderr, "gyre gate verify: a report is needed\n%s", gyre_gate_usage);
        return 2;
    }
    gyre_buf_t b;
    gyre_buf_init(&b, GYRE_GATE_REPORT_MAX);
    int fr = gyre_buf_append_file(&b, path);
    if (fr != 0) {
        fprintf(stderr, "gyre gate verify: %s: %s\n", path, fr == -E2BIG ? "larger than a report may be" : strerror(-fr));
        gyre_buf_dispose(&b);
        return 1;
    }
    gyre_json_init();
    char err[512] = "";
    int r = gyre_gate_decide_report(b.base != NULL ? b.base : "", b.len, err, sizeof(err));
    gyre_buf_dispose(&b);
    if (r < 0) {
        fprintf(stderr, "gyre gate verify: %s: %s\n", path, err);
        return 1;
    }
    int mismatch = err[0] != '\0';
    if (json) {
        printf("{\"passed\":%s,\"consistent\":%s}\n", r ? "true" : "false", mismatch ? "false" : "true");
    } else {
        printf("%s: %s, recomputed from the report's observations\n", path, r ? "PASS" : "FAIL");
    }
    if (mismatch) {
        fprintf(stderr, "gyre gate verify: %s: %s\n", path, err);
        return 3;
    }
    return r ? 0 : 1;
}

int gyre_cmd_gate(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        fputs(gyre_gate_usage, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    if (strcmp(argv[0], "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(argv[0], "verify") == 0)
        return cmd_verify(argc - 1, argv + 1);
    fprintf(stderr, "gyre gate: unknown subcommand %s\n%s", argv[0], gyre_gate_usage);
    return 2;
}
