/*
 * `gyre loop`: the loop as one command (src/loop/looprun.h), run by a
 * running `gyre serve`, which owns the store, the routes and the state.
 *
 *   gyre loop run --spec loop.yaml [--no-wait] [--json]   start a run and follow it to its end
 *   gyre loop history [--limit N] [--json]                the runs, newest first
 *   gyre loop show ID [--report md|json] [--json]         one run (or its gate report)
 *   gyre loop cancel ID                                   cancel a running run
 *
 * Following a run reads GET /api/loop/runs/ID twice a second: a progress
 * line on a terminal (stage, and the stage's done/total), the run's events
 * as they come, and the end; --json prints the final document alone.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/alloc.h"
#include "common/buf.h"

#define CLI_LOOP_ANSWER_MAX ((size_t)16 << 20)

const char gyre_loop_usage[] =
    "usage: gyre loop run --spec FILE [--no-wait] [--timeout DURATION] [--json] [--url URL] [--token SPEC]\n"
    "       gyre loop history [--limit N] [--json] [--url URL] [--token SPEC]\n"
    "       gyre loop show ID [--report md|json] [--json] [--url URL] [--token SPEC]\n"
    "       gyre loop cancel ID [--url URL] [--token SPEC]\n"
    "\n"
    "Runs the loop (curate, train, serve, gate, deploy, watch) on a running\n"
    "`gyre serve`, which keeps each run in its state database and resumes it\n"
    "after a restart.  `run` follows the run to its end: its stage and\n"
    "progress on a terminal, its events as they come.\n"
    "\n"
    "  --spec FILE         the loop spec (docs/loop.md)\n"
    "  --no-wait           print the run's id and return at once\n"
    "  --timeout DURATION  stop following after DURATION (the run goes on); default none\n"
    "  --limit N           history: at most N runs (1-500, default 50)\n"
    "  --report md|json    show: the run's gate report\n"
    "  --json              the run's (or the list's) JSON\n"
    "  --url URL           gyre's address (default http://127.0.0.1:8080)\n"
    "  --token SPEC        env:NAME or file:PATH; run and cancel need the admin token\n"
    "                      (default env:GYRE_ADMIN_TOKEN), history and show the read\n"
    "                      token (default env:GYRE_READ_TOKEN, else env:GYRE_ADMIN_TOKEN)\n"
    "  -h, --help          this text\n"
    "\n"
    "Exit status: 0 when the run ended done (run), or the answer was read; 1 when\n"
    "the run ended rejected, rolled_back, failed or cancelled, or gyre refused;\n"
    "2 for a wrong command line.\n";

static const char *jstr(const cJSON *o, const char *key)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
    return s != NULL ? s : "";
}

static double jnum(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* The answer's error message ({"error": {"message"}}), or the body. */
static void say_refusal(const char *cmd, int status, const gyre_buf_t *b)
{
    cJSON *j = cJSON_ParseWithLength(b->base != NULL ? b->base : "", b->len);
    const char *msg = jstr(cJSON_GetObjectItemCaseSensitive(j, "error"), "message");
    fprintf(stderr, "%s: gyre answered %d: %s\n", cmd, status, msg[0] ? msg : (b->base != NULL ? b->base : ""));
    cJSON_Delete(j);
}

static int request(gyre_cli_target_t *t, const char *method, const char *path, const char *body, gyre_buf_t *out,
                   int want)
{
    int status = 0;
    gyre_buf_reset(out);
    if (gyre_cli_http(t, method, path, body, CLI_LOOP_ANSWER_MAX, &status, out) != 0)
        return -1;
    if (status != want) {
        say_refusal(t->cmd, status, out);
        return -1;
    }
    return 0;
}

static void print_events(const cJSON *run, size_t *shown, int tty)
{
    const cJSON *events = cJSON_GetObjectItemCaseSensitive(run, "events");
    size_t n = (size_t)cJSON_GetArraySize(events);
    /* events_dropped: the oldest went; index from what is kept. */
    size_t dropped = (size_t)jnum(run, "events_dropped");
    size_t first = *shown > dropped ? *shown - dropped : 0;
    for (size_t i = first; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(events, (int)i);
        char when[32];
        gyre_cli_format_time((int64_t)jnum(e, "at_us"), when, sizeof(when));
        if (tty)
            fprintf(stderr, "\r\033[K");
        fprintf(stderr, "%s  %-8s %s\n", when, jstr(e, "stage"), jstr(e, "message"));
    }
    *shown = dropped + n;
}

static void draw_progress(const cJSON *run)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(run, "progress");
    const char *stage = jstr(run, "stage");
    double done = jnum(p, "done"), total = jnum(p, "total");
    char bar[32] = "";
    if (p != NULL && strcmp(jstr(p, "stage"), stage) == 0 && total > 0) {
        int fill = (int)(20 * (done / total) + 0.5);
        for (int i = 0; i < 20; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[20] = '\0';
        fprintf(stderr, "\r\033[K%s [%s] %.0f/%.0f", stage, bar, done, total);
    } else
        fprintf(stderr, "\r\033[K%s ...", stage);
    fflush(stderr);
}

static int cmd_run(gyre_cli_target_t *t, const char *spec_path, int wait, int json, int64_t timeout_us)
{
    gyre_buf_t spec, body, out;
    gyre_buf_init(&spec, 256 * 1024);
    int rc = gyre_buf_append_file(&spec, spec_path);
    if (rc != 0) {
        fprintf(stderr, "%s: --spec %s: %s\n", t->cmd, spec_path,
                rc == -E2BIG ? "larger than the 256 KB a spec may be" : strerror(-rc));
        gyre_buf_dispose(&spec);
        return 1;
    }
    char abs[PATH_MAX];
    if (realpath(spec_path, abs) == NULL)
        snprintf(abs, sizeof(abs), "%s", spec_path);
    gyre_buf_init(&body, 1 << 20);
    gyre_buf_appends(&body, "{\"spec\":");
    gyre_buf_append_json_string(&body, spec.base != NULL ? spec.base : "", spec.len);
    gyre_buf_appends(&body, ",\"path\":");
    gyre_buf_append_json_string(&body, abs, strlen(abs));
    gyre_buf_appends(&body, "}");
    gyre_buf_dispose(&spec);
    gyre_buf_init(&out, CLI_LOOP_ANSWER_MAX);
    rc = request(t, "POST", "/api/loop/runs", body.base, &out, 201);
    gyre_buf_dispose(&body);
    if (rc != 0) {
        gyre_buf_dispose(&out);
        return 1;
    }
    cJSON *run = cJSON_ParseWithLength(out.base, out.len);
    char id[64];
    snprintf(id, sizeof(id), "%s", jstr(run, "id"));
    cJSON_Delete(run);
    if (!wait) {
        if (json)
            fwrite(out.base, 1, out.len, stdout), putchar('\n');
        else
            printf("%s\n", id);
        gyre_buf_dispose(&out);
        return 0;
    }
    int tty = isatty(2) && !json;
    if (!json)
        fprintf(stderr, "loop run %s\n", id);
    char path[128];
    snprintf(path, sizeof(path), "/api/loop/runs/%s", id);
    size_t shown = 0;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int result = 1;
    for (;;) {
        if (request(t, "GET", path, NULL, &out, 200) != 0)
            break;
        run = cJSON_ParseWithLength(out.base, out.len);
        if (!json)
            print_events(run, &shown, tty);
        const char *status = jstr(run, "status");
        if (strcmp(status, "running") != 0) {
            if (tty)
                fprintf(stderr, "\r\033[K");
            if (json) {
                fwrite(out.base, 1, out.len, stdout);
                putchar('\n');
            } else {
                printf("%s %s: %s\n", id, status, jstr(run, "reason"));
                const cJSON *g = cJSON_GetObjectItemCaseSensitive(run, "gate");
                if (g != NULL)
                    printf("gate report: %s\n", jstr(g, "report_md"));
            }
            result = strcmp(status, "done") == 0 ? 0 : 1;
            cJSON_Delete(run);
            break;
        }
        if (tty)
            draw_progress(run);
        cJSON_Delete(run);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t el = (int64_t)(now.tv_sec - start.tv_sec) * 1000000 + (now.tv_nsec - start.tv_nsec) / 1000;
        if (timeout_us > 0 && el >= timeout_us) {
            if (tty)
                fprintf(stderr, "\r\033[K");
            fprintf(stderr, "%s: stopped following %s after --timeout; it goes on (gyre loop show %s)\n", t->cmd, id, id);
            break;
        }
        usleep(500 * 1000);
    }
    gyre_buf_dispose(&out);
    return result;
}

static int cmd_history(gyre_cli_target_t *t, const char *limit, int json)
{
    gyre_buf_t out;
    gyre_buf_init(&out, CLI_LOOP_ANSWER_MAX);
    char path[64];
    snprintf(path, sizeof(path), "/api/loop/runs?limit=%s", limit != NULL ? limit : "50");
    if (request(t, "GET", path, NULL, &out, 200) != 0) {
        gyre_buf_dispose(&out);
        return 1;
    }
    if (json) {
        fwrite(out.base, 1, out.len, stdout);
        putchar('\n');
        gyre_buf_dispose(&out);
        return 0;
    }
    cJSON *root = cJSON_ParseWithLength(out.base, out.len);
    static const char *const headers[] = {"ID", "NAME", "CREATED", "STATUS", "STAGE", "DATASET", "JOB", "GATE",
                                          "DEPLOYMENT"};
    gyre_cli_table_t tab;
    gyre_cli_table_init(&tab, 9, headers, "lllllllll", "000000000");
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(root, "runs"))
    {
        char created[32], gate[32];
        gyre_cli_format_time((int64_t)jnum(r, "created_us"), created, sizeof(created));
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(r, "gate");
        snprintf(gate, sizeof(gate), "%s", g == NULL ? "-" : cJSON_IsTrue(cJSON_GetObjectItem(g, "passed")) ? "passed" : "failed");
        const char *ds = jstr(cJSON_GetObjectItemCaseSensitive(r, "dataset"), "id");
        const char *job = jstr(cJSON_GetObjectItemCaseSensitive(r, "job"), "id");
        const char *dep = jstr(cJSON_GetObjectItemCaseSensitive(r, "deployment"), "state");
        const char *cells[9] = {jstr(r, "id"), jstr(r, "name"), created, jstr(r, "status"), jstr(r, "stage"),
                                ds[0] ? ds : "-", job[0] ? job : "-", gate, dep[0] ? dep : "-"};
        gyre_cli_table_add(&tab, cells);
    }
    gyre_cli_table_print(&tab, stdout, GYRE_CLI_WIDTH);
    gyre_cli_table_dispose(&tab);
    cJSON_Delete(root);
    gyre_buf_dispose(&out);
    return 0;
}

static int cmd_show(gyre_cli_target_t *t, const char *id, const char *report, int json)
{
    gyre_buf_t out;
    gyre_buf_init(&out, CLI_LOOP_ANSWER_MAX);
    char path[160];
    if (report != NULL)
        snprintf(path, sizeof(path), "/api/loop/runs/%s/report?format=%s", id, report);
    else
        snprintf(path, sizeof(path), "/api/loop/runs/%s", id);
    if (request(t, "GET", path, NULL, &out, 200) != 0) {
        gyre_buf_dispose(&out);
        return 1;
    }
    if (json || report != NULL) {
        fwrite(out.base, 1, out.len, stdout);
        if (out.len == 0 || out.base[out.len - 1] != '\n')
            putchar('\n');
        gyre_buf_dispose(&out);
        return 0;
    }
    cJSON *r = cJSON_ParseWithLength(out.base, out.len);
    char created[32];
    gyre_cli_format_time((int64_t)jnum(r, "created_us"), created, sizeof(created));
    printf("run         %s (%s)\n", jstr(r, "id"), jstr(r, "name"));
    printf("route       %s\n", jstr(r, "route"));
    printf("created     %s UTC (%s)\n", created, jstr(r, "trigger"));
    printf("status      %s at stage %s%s%s\n", jstr(r, "status"), jstr(r, "stage"), jstr(r, "reason")[0] ? ": " : "",
           jstr(r, "reason"));
    const cJSON *ds = cJSON_GetObjectItemCaseSensitive(r, "dataset");
    if (ds != NULL)
        printf("dataset     %s (%.0f train, %.0f held out)\n", jstr(ds, "id"), jnum(ds, "train"), jnum(ds, "heldout"));
    const cJSON *job = cJSON_GetObjectItemCaseSensitive(r, "job");
    if (job != NULL)
        printf("job         %s on %s: %s %s\n", jstr(job, "id"), jstr(job, "backend"), jstr(job, "status"),
               jstr(job, "model"));
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(r, "gate");
    if (g != NULL)
        printf("gate        %s: %s against %s (%s)\n", cJSON_IsTrue(cJSON_GetObjectItem(g, "passed")) ? "passed" : "failed",
               jstr(g, "candidate"), jstr(g, "incumbent"), jstr(g, "report_md"));
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(r, "deployment");
    if (d != NULL)
        printf("deployment  %s\n", jstr(d, "state"));
    printf("\n");
    size_t shown = 0;
    print_events(r, &shown, 0);
    cJSON_Delete(r);
    gyre_buf_dispose(&out);
    return 0;
}

int gyre_cmd_loop(int argc, char **argv)
{
    static const char cmd[] = "gyre loop";
    if (argc < 1 || strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0) {
        fputs(gyre_loop_usage, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    const char *sub = argv[0];
    const char *url = "http://127.0.0.1:8080", *token_spec = NULL, *spec = NULL, *limit = NULL, *report = NULL,
               *timeout = NULL, *id = NULL, *v;
    int json = 0, wait = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r;
#define OPT(name, field)                                                                                               \
    if ((r = gyre_cli_opt(cmd, argc, argv, &i, name, &v)) != 0) {                                                      \
        if (r < 0)                                                                                                     \
            return 2;                                                                                                  \
        field = v;                                                                                                     \
        continue;                                                                                                      \
    }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(gyre_loop_usage, stdout);
            return 0;
        }
        if (strcmp(a, "--json") == 0) {
            json = 1;
            continue;
        }
        if (strcmp(a, "--no-wait") == 0) {
            wait = 0;
            continue;
        }
        OPT("--url", url)
        OPT("--token", token_spec)
        OPT("--spec", spec)
        OPT("--limit", limit)
        OPT("--report", report)
        OPT("--timeout", timeout)
#undef OPT
        if (a[0] != '-' && id == NULL) {
            id = a;
            continue;
        }
        fprintf(stderr, "%s: unknown argument '%s'\n%s", cmd, a, gyre_loop_usage);
        return 2;
    }
    int is_run = strcmp(sub, "run") == 0, is_hist = strcmp(sub, "history") == 0, is_show = strcmp(sub, "show") == 0,
        is_cancel = strcmp(sub, "cancel") == 0;
    if (!is_run && !is_hist && !is_show && !is_cancel) {
        fprintf(stderr, "%s: unknown subcommand '%s' (run, history, show, cancel)\n", cmd, sub);
        return 2;
    }
    if (is_run && spec == NULL) {
        fprintf(stderr, "%s run: --spec FILE is required\n", cmd);
        return 2;
    }
    if ((is_show || is_cancel) && id == NULL) {
        fprintf(stderr, "%s %s: the run's id is required\n", cmd, sub);
        return 2;
    }
    if (id != NULL && (strlen(id) != 20 || strncmp(id, "run_", 4) != 0 || strspn(id + 4, "0123456789abcdef") != 16)) {
        fprintf(stderr, "%s: '%s' is not a run's id (run_ and 16 hex digits)\n", cmd, id);
        return 2;
    }
    if (report != NULL && strcmp(report, "md") != 0 && strcmp(report, "json") != 0) {
        fprintf(stderr, "%s: --report is md or json\n", cmd);
        return 2;
    }
    if (limit != NULL && (strspn(limit, "0123456789") != strlen(limit) || atoi(limit) < 1 || atoi(limit) > 500)) {
        fprintf(stderr, "%s: --limit must be a whole number from 1 to 500\n", cmd);
        return 2;
    }
    int64_t timeout_us = 0;
    if (timeout != NULL && gyre_cli_parse_duration(timeout, &timeout_us) != 0) {
        fprintf(stderr, "%s: --timeout must be a duration (90s, 15m, 2h)\n", cmd);
        return 2;
    }
    gyre_cli_target_t target = {.cmd = cmd, .timeout_ms = 30000};
    if (gyre_cli_parse_url(url, &target) != 0) {
        fprintf(stderr, "%s: --url must be http://HOST[:PORT], got '%s'\n", cmd, url);
        return 2;
    }
    if (token_spec != NULL) {
        if ((target.token = gyre_cli_read_secret(cmd, "--token", token_spec)) == NULL)
            return 2;
    } else if (!(is_run || is_cancel) && (v = getenv("GYRE_READ_TOKEN")) != NULL && v[0] != '\0')
        target.token = gyre_strdup(v);
    else if ((v = getenv("GYRE_ADMIN_TOKEN")) != NULL && v[0] != '\0')
        target.token = gyre_strdup(v);
    int rc;
    if (is_run)
        rc = cmd_run(&target, spec, wait, json, timeout_us);
    else if (is_hist)
        rc = cmd_history(&target, limit, json);
    else if (is_show)
        rc = cmd_show(&target, id, report, json);
    else {
        gyre_buf_t out;
        gyre_buf_init(&out, 1 << 16);
        char path[128];
        snprintf(path, sizeof(path), "/api/loop/runs/%s/cancel", id);
        rc = request(&target, "POST", path, "{}", &out, 202) == 0 ? 0 : 1;
        if (rc == 0)
            printf("cancelling %s\n", id);
        gyre_buf_dispose(&out);
    }
    if (target.token != NULL) {
        explicit_bzero(target.token, strlen(target.token));
        free(target.token);
    }
    return rc;
}
