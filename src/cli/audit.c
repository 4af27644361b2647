/* `gyre audit`: the audit log, newest first (control/audit.h), read from the control-plane database. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "config/config.h"
#include "control/audit.h"
#include "control/state.h"

const char gyre_audit_usage[] =
    "usage: gyre audit [--since DURATION|TIME] [--until TIME] [--action ACTION] [--actor ACTOR]\n"
    "                  [--limit N] [--cursor C] [--json] [--config FILE | --state PATH]\n"
    "\n"
    "Lists the audit log, newest first: every change made to this gateway (provider keys,\n"
    "managed keys, limits, routes, reloads) with who made it, when, and the object before\n"
    "and after. Secrets are never in it: objects are named by their ids.\n"
    "\n"
    "  --since D|T     entries from D ago (90s, 15m, 24h, 7d) or from time T\n"
    "                  (unix seconds or RFC 3339); default: all\n"
    "  --until T       entries before time T\n"
    "  --action A      only this action (provider_key.create, key.create, config.reload, ...)\n"
    "  --actor X       only this actor (admin_token, sighup, ...)\n"
    "  --limit N       at most N entries (1 to 1000, default 100)\n"
    "  --cursor C      the page after the one that printed `more: --cursor C`\n"
    "  --json          the page as GET /api/audit answers it\n"
    "  --config FILE   the configuration whose state to read (`state:`, else beside the store)\n"
    "  --state PATH    the control-plane database itself\n"
    "  -h, --help      this text\n";

/* The state database named by --state or by the configuration; NULL after saying why. */
static gyre_state_t *open_state(const char *config_path, const char *state_path)
{
    gyre_config_t *c = NULL;
    char buf[4096];
    const char *path = state_path;
    gyre_state_t *st = NULL;
    if (path == NULL) {
        gyre_config_errors_t errs = {0};
        c = config_path != NULL ? gyre_config_load(config_path, &errs) : gyre_config_default(&errs);
        if (c == NULL) {
            for (size_t i = 0; i < errs.count; i++)
                fprintf(stderr, "%s\n", errs.items[i]);
            fprintf(stderr, "gyre audit: %zu error%s in the configuration\n", errs.count, errs.count == 1 ? "" : "s");
            gyre_config_errors_dispose(&errs);
            return NULL;
        }
        if ((path = gyre_state_path_for(c, buf, sizeof(buf))) == NULL) {
            fprintf(stderr, "gyre audit: %s has no state (state: PATH, or a store beside which it lives); pass --state "
                            "PATH\n",
                    c->source);
            goto out;
        }
    }
    /* A reader must not leave an empty database behind a typo. */
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "gyre audit: no control-plane state at %s: %s\n", path, strerror(errno));
        goto out;
    }
    char err[512];
    if (gyre_state_open(path, &st, err, sizeof(err)) != 0)
        fprintf(stderr, "gyre audit: %s\n", err);
out:
    gyre_config_free(c);
    return st;
}

/* A before or after as one short line: its JSON, compact. */
static char *compact(const cJSON *v)
{
    return cJSON_IsNull(v) || v == NULL ? strdup("-") : cJSON_PrintUnformatted(v);
}

int gyre_cmd_audit(int argc, char **argv)
{
    const char *config_path = NULL, *state_path = NULL, *v = NULL;
    gyre_audit_query_t q = {0};
    int json = 0;
    for (int i = 0; i < argc; i++) {
        int r;
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(gyre_audit_usage, stdout);
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if ((r = gyre_cli_opt("gyre audit", argc, argv, &i, "--config", &config_path)) != 0 ||
                   (r = gyre_cli_opt("gyre audit", argc, argv, &i, "--state", &state_path)) != 0 ||
                   (r = gyre_cli_opt("gyre audit", argc, argv, &i, "--action", &q.action)) != 0 ||
                   (r = gyre_cli_opt("gyre audit", argc, argv, &i, "--actor", &q.actor)) != 0) {
            if (r < 0)
                return 2;
        } else if ((r = gyre_cli_opt("gyre audit", argc, argv, &i, "--since", &v)) != 0) {
            int64_t d;
            if (r < 0)
                return 2;
            if (gyre_cli_parse_duration(v, &d) == 0)
                q.since_us = gyre_cli_now_us() - d;
            else if (gyre_cli_parse_time(v, &q.since_us) != 0) {
                fprintf(stderr, "gyre audit: --since must be a duration (24h) or a time, got '%s'\n", v);
                return 2;
            }
        } else if ((r = gyre_cli_opt("gyre audit", argc, argv, &i, "--until", &v)) != 0) {
            if (r < 0)
                return 2;
            if (gyre_cli_parse_time(v, &q.until_us) != 0) {
                fprintf(stderr, "gyre audit: --until must be a time (unix seconds or RFC 3339), got '%s'\n", v);
                return 2;
            }
        } else if ((r = gyre_cli_opt("gyre audit", argc, argv, &i, "--limit", &v)) != 0) {
            char *end;
            long n = r > 0 ? strtol(v, &end, 10) : 0;
            if (r < 0 || *end != '\0' || n < 1 || n > GYRE_AUDIT_LIMIT_MAX) {
                fprintf(stderr, "gyre audit: --limit must be a number from 1 to %d\n", GYRE_AUDIT_LIMIT_MAX);
                return 2;
            }
            q.limit = (unsigned)n;
        } else if ((r = gyre_cli_opt("gyre audit", argc, argv, &i, "--cursor", &v)) != 0) {
            char *end;
            long long n = r > 0 ? strtoll(v, &end, 10) : 0;
            if (r < 0 || *end != '\0' || n < 1) {
                fprintf(stderr, "gyre audit: --cursor must be what a page printed after `more: --cursor`\n");
                return 2;
            }
            q.cursor = n;
        } else {
            fprintf(stderr, "gyre audit: unknown or incomplete option '%s'\n\n%s", a, gyre_audit_usage);
            return 2;
        }
    }
    gyre_state_t *st = open_state(config_path, state_path);
    if (st == NULL)
        return 1;
    gyre_buf_t b;
    gyre_buf_init(&b, (size_t)256 << 20);
    char err[512];
    int rc = 1;
    if (gyre_audit_query(st, &q, &b, err, sizeof(err)) != 0) {
        fprintf(stderr, "gyre audit: %s\n", err);
        goto out;
    }
    if (json) {
        printf("%s\n", b.base);
        rc = 0;
        goto out;
    }
    cJSON *page = cJSON_ParseWithLength(b.base, b.len);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(page, "data");
    static const char *const headers[] = {"TIME", "ACTOR", "ACTION", "OBJECT", "BEFORE", "AFTER"};
    gyre_cli_table_t t;
    /* Before and after are what the log is read for: never cut (the table may be wider than the terminal). */
    gyre_cli_table_init(&t, 6, headers, "llllll", "\0\0\0\0\0\0");
    const cJSON *e;
    cJSON_ArrayForEach(e, data)
    {
        char when[32];
        gyre_cli_format_time((int64_t)cJSON_GetObjectItemCaseSensitive(e, "time_us")->valuedouble, when, sizeof(when));
        char *before = compact(cJSON_GetObjectItemCaseSensitive(e, "before"));
        char *after = compact(cJSON_GetObjectItemCaseSensitive(e, "after"));
        const char *cells[6] = {when, cJSON_GetObjectItemCaseSensitive(e, "actor")->valuestring,
                                cJSON_GetObjectItemCaseSensitive(e, "action")->valuestring,
                                cJSON_GetObjectItemCaseSensitive(e, "object")->valuestring, before, after};
        gyre_cli_table_add(&t, cells);
        free(before);
        free(after);
    }
    if (t.nrows == 0)
        printf("no audit entries\n");
    else
        gyre_cli_table_print(&t, stdout, GYRE_CLI_WIDTH);
    gyre_cli_table_dispose(&t);
    const cJSON *next = cJSON_GetObjectItemCaseSensitive(page, "next_cursor");
    if (cJSON_IsString(next))
        printf("more: --cursor %s\n", next->valuestring);
    cJSON_Delete(page);
    rc = 0;
out:
    gyre_buf_dispose(&b);
    gyre_state_close(st);
    return rc;
}
