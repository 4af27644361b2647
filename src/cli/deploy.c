/*
 * `gyre deploy`: the canary deployments of a running gyre, over HTTP
 * (/api/deploy, src/server/api_deploy.c):
 *
 *   gyre deploy status [ROUTE] [--json]
 *   gyre deploy promote ROUTE
 *   gyre deploy rollback ROUTE [--reason TEXT]
 *
 * The credential is read from the environment or a file, never from the
 * command line; every step of the exchange is bounded by a 30 s timeout.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/alloc.h"
#include "common/buf.h"

const char gyre_deploy_usage[] =
    "usage: gyre deploy status [ROUTE] [--json]\n"
    "       gyre deploy promote ROUTE [--json]\n"
    "       gyre deploy rollback ROUTE [--reason TEXT] [--json]\n"
    "\n"
    "The canary deployments of a running gyre (/api/deploy): a candidate model ramped behind\n"
    "a route (5 % -> 25 % -> 100 % by default), promoted when a sequential test shows it no\n"
    "worse, rolled back when it shows it worse or an alert on the route fires.\n"
    "\n"
    "  status      each deployment (of ROUTE, or all): state, step, percent, decisions\n"
    "  promote     the next ramp step now (at 100 %: done, the watch ended)\n"
    "  rollback    the route as it was before the deployment; an adapter is unloaded\n"
    "  --reason T  why (kept in the deployment's decisions)\n"
    "  --url URL   gyre's address (default http://127.0.0.1:8080)\n"
    "  --token S   the admin token (promote, rollback) or the read token (status): env:NAME or\n"
    "              file:PATH (default env:GYRE_ADMIN_TOKEN, else env:GYRE_READ_TOKEN)\n"
    "  --json      print gyre's answer as JSON\n"
    "  -h, --help  this text\n"
    "\n"
    "A deployment begins from `gyre loop run`, or by POST /api/deploy/ROUTE/begin (docs/api.md).\n";

#define DEPLOY_CLI_TIMEOUT_MS 30000
#define DEPLOY_ANSWER_MAX ((size_t)16 << 20)

static const char cmd[] = "gyre deploy";

static const char *s_of(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static void print_human(const cJSON *a)
{
    const cJSON *d;
    int any = 0;
    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(a, "deployments"))
    {
        any = 1;
        const cJSON *pct = cJSON_GetObjectItemCaseSensitive(d, "percent");
        printf("%s  run %s  %s  %s/%s at %d %%\n", s_of(d, "route"), s_of(d, "run_id"), s_of(d, "state"),
               s_of(d, "provider"), s_of(d, "model"), cJSON_IsNumber(pct) ? pct->valueint : 0);
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(d, "decisions"))
        {
            const cJSON *at = cJSON_GetObjectItemCaseSensitive(e, "at_us");
            const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "percent");
            char when[64] = "";
            if (cJSON_IsNumber(at))
                gyre_cli_format_time((int64_t)at->valuedouble, when, sizeof(when));
            printf("  %s  %-8s at %3d %%  by %s: %s\n", when, s_of(e, "action"), cJSON_IsNumber(p) ? p->valueint : 0,
                   s_of(e, "actor"), s_of(e, "why"));
        }
    }
    if (!any)
        printf("no deployments\n");
}

int gyre_cmd_deploy(int argc, char **argv)
{
    const char *sub = NULL, *route = NULL, *reason = NULL, *url = "http://127.0.0.1:8080", *token_spec = NULL, *v;
    int json = 0, r;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(gyre_deploy_usage, stdout);
            return 0;
        }
#define OPT(flag, dst)                                                                                                 \
    if ((r = gyre_cli_opt(cmd, argc, argv, &i, flag, &v)) != 0) {                                                      \
        if (r < 0)                                                                                                     \
            return 2;                                                                                                  \
        dst = v;                                                                                                       \
        continue;                                                                                                      \
    }
        OPT("--reason", reason)
        OPT("--url", url)
        OPT("--token", token_spec)
#undef OPT
        if (strcmp(arg, "--json") == 0) {
            json = 1;
        } else if (arg[0] != '-' && sub == NULL) {
            sub = arg;
        } else if (arg[0] != '-' && route == NULL) {
            route = arg;
        } else {
            fprintf(stderr, "%s: unknown argument '%s'\n%s", cmd, arg, gyre_deploy_usage);
            return 2;
        }
    }
    if (sub == NULL || (strcmp(sub, "status") != 0 && strcmp(sub, "promote") != 0 && strcmp(sub, "rollback") != 0)) {
        fprintf(stderr, "%s: say status, promote or rollback\n%s", cmd, gyre_deploy_usage);
        return 2;
    }
    if (strcmp(sub, "status") != 0 && route == NULL) {
        fprintf(stderr, "%s: %s needs the ROUTE\n", cmd, sub);
        return 2;
    }
    if (reason != NULL && strcmp(sub, "rollback") != 0) {
        fprintf(stderr, "%s: --reason goes with rollback\n", cmd);
        return 2;
    }
    gyre_cli_target_t target = {.cmd = cmd, .timeout_ms = DEPLOY_CLI_TIMEOUT_MS};
    if (gyre_cli_parse_url(url, &target) != 0) {
        fprintf(stderr, "%s: --url must be http://HOST[:PORT], got '%s'\n", cmd, url);
        return 2;
    }
    if (token_spec != NULL) {
        if ((target.token = gyre_cli_read_secret(cmd, "--token", token_spec)) == NULL)
            return 2;
    } else if ((v = getenv("GYRE_ADMIN_TOKEN")) != NULL && v[0] != '\0') {
        target.token = gyre_strdup(v);
    } else if ((v = getenv("GYRE_READ_TOKEN")) != NULL && v[0] != '\0') {
        target.token = gyre_strdup(v);
    }
    gyre_buf_t path;
    gyre_buf_init(&path, 4096);
    char *body = NULL;
    if (strcmp(sub, "status") == 0) {
        gyre_buf_appends(&path, "/api/deploy");
        if (route != NULL)
            gyre_buf_appendf(&path, "?route=%s", route);
    } else {
        gyre_buf_appendf(&path, "/api/deploy/%s/%s", route, sub);
        cJSON *b = cJSON_CreateObject();
        if (reason != NULL)
            cJSON_AddStringToObject(b, "reason", reason);
        body = cJSON_PrintUnformatted(b);
        cJSON_Delete(b);
    }
    int status = 0, rc = 1;
    gyre_buf_t answer;
    gyre_buf_init(&answer, DEPLOY_ANSWER_MAX);
    if (gyre_buf_failed(&path)) {
        fprintf(stderr, "%s: the route name is too long\n", cmd);
    } else if (gyre_cli_http(&target, body != NULL ? "POST" : "GET", path.base, body, DEPLOY_ANSWER_MAX, &status,
                             &answer) == 0) {
        cJSON *a = cJSON_Parse(answer.base != NULL ? answer.base : "");
        if (json)
            printf("%s\n", answer.base != NULL ? answer.base : "");
        if (status == 200) {
            rc = 0;
            if (!json)
                print_human(a);
        } else {
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(a, "error"), "message");
            fprintf(stderr, "%s: %d: %s\n", cmd, status, cJSON_IsString(m) ? m->valuestring : "gyre refused it");
        }
        cJSON_Delete(a);
    }
    cJSON_free(body);
    gyre_buf_dispose(&answer);
    gyre_buf_dispose(&path);
    if (target.token != NULL) {
        explicit_bzero(target.token, strlen(target.token));
        free(target.token);
    }
    return rc;
}
