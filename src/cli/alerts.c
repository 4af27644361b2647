/*
 * `gyre alerts`: the alert events gyre stored in its control-plane database
 * (control/alerts_store.h), newest first, and which alerts fire now (the
 * newest event of each rule and label set, when it is "firing" or
 * "pending").  It reads the database as `gyre serve` names it and never
 * creates it; GET /api/alerts gives the running gateway's own view.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "config/config.h"
#include "control/alerts_store.h"
#include "control/state.h"

/* The bound on what is read: at most 10000 events of at most ~2 KiB. */
#define CLI_ALERTS_MAX ((size_t)32 << 20)
#define CLI_ALERTS_MAX_LIMIT 10000

const char gyre_alerts_usage[] =
    "usage: gyre alerts [--limit N] [--json] [--config FILE | --state PATH]\n"
    "\n"
    "Prints the alerts firing or pending now, then the newest alert events\n"
    "(every change of state: pending, firing, resolved, inactive) with what\n"
    "gyre did about each (docs/alerts.md).\n"
    "\n"
    "  --limit N       the newest N events (default 50, at most 10000)\n"
    "  --json          {\"alerts\":[...],\"events\":[...]} as GET /api/alerts gives them\n"
    "  --config FILE   read `state:` (or the store beside which it lives) from FILE;\n"
    "                  without --state or --config: the embedded default\n"
    "  --state PATH    the control-plane database to read\n"
    "  -h, --help      this text\n"
    "\n"
    "Exit status: 0, 1 when the database cannot be read, 2 for a wrong command line.\n";

static void when(int64_t us, char *buf, size_t size)
{
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* The alerts firing or pending now: each fingerprint's newest event, when it is one of those. */
static cJSON *current(const cJSON *events)
{
    cJSON *out = cJSON_CreateArray();
    const cJSON *e;
    int n = cJSON_GetArraySize(events);
    for (int i = 0; i < n; i++) {
        e = cJSON_GetArrayItem(events, i);
        const char *fp = str(e, "fingerprint");
        int newer = 0;
        for (int j = 0; j < i && !newer; j++)
            newer = strcmp(str(cJSON_GetArrayItem(events, j), "fingerprint"), fp) == 0;
        const char *st = str(e, "state");
        if (!newer && (strcmp(st, "firing") == 0 || strcmp(st, "pending") == 0))
            cJSON_AddItemToArray(out, cJSON_Duplicate(e, 1));
    }
    return out;
}

static void print_event(const cJSON *e)
{
    char t[32], *labels = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(e, "labels"));
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(e, "at_us"), *v = cJSON_GetObjectItemCaseSensitive(e, "value");
    when(cJSON_IsNumber(at) ? (int64_t)at->valuedouble : 0, t, sizeof(t));
    char value[32] = "-";
    if (cJSON_IsNumber(v))
        snprintf(value, sizeof(value), "%.6g", v->valuedouble);
    printf("%s  %-8s  %s %s  (%s, value %s)%s%s\n", t, str(e, "state"), str(e, "rule"), labels ? labels : "{}",
           str(e, "condition"), value, str(e, "actions")[0] ? ": " : "", str(e, "actions"));
    free(labels);
}

int gyre_cmd_alerts(int argc, char **argv)
{
    const char *cmd = "gyre alerts", *config = NULL, *state = NULL, *limit_s = NULL;
    int json = 0;
    for (int i = 0; i < argc; i++) {
        const char *v;
        int r;
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(gyre_alerts_usage, stdout);
            return 0;
        } else if ((r = gyre_cli_opt(cmd, argc, argv, &i, "--config", &v)) != 0) {
            if (r < 0)
                return 2;
            config = v;
        } else if ((r = gyre_cli_opt(cmd, argc, argv, &i, "--state", &v)) != 0) {
            if (r < 0)
                return 2;
            state = v;
        } else if ((r = gyre_cli_opt(cmd, argc, argv, &i, "--limit", &v)) != 0) {
            if (r < 0)
                return 2;
            limit_s = v;
        } else {
            fprintf(stderr, "%s: unknown option '%s'\n%s", cmd, argv[i], gyre_alerts_usage);
            return 2;
        }
    }
    long limit = 50;
    if (limit_s != NULL) {
        char *end;
        limit = strtol(limit_s, &end, 10);
        if (*limit_s == '\0' || *end != '\0' || limit < 1 || limit > CLI_ALERTS_MAX_LIMIT) {
            fprintf(stderr, "%s: --limit must be a whole number from 1 to %d, not '%s'\n", cmd, CLI_ALERTS_MAX_LIMIT,
                    limit_s);
            return 2;
        }
    }
    char path[4096];
    if (state != NULL) {
        snprintf(path, sizeof(path), "%s", state);
    } else {
        gyre_config_errors_t errs = {0};
        gyre_config_t *c = config != NULL ? gyre_config_load(config, &errs) : gyre_config_default(&errs);
        if (c == NULL) {
            for (size_t i = 0; i < errs.count; i++)
                fprintf(stderr, "%s\n", errs.items[i]);
            fprintf(stderr, "%s: %zu error%s in the configuration\n", cmd, errs.count, errs.count == 1 ? "" : "s");
            gyre_config_errors_dispose(&errs);
            return 1;
        }
        const char *p = gyre_state_path_for(c, path, sizeof(path));
        if (p == NULL) {
            fprintf(stderr, "%s: the configuration names no state database (state: PATH, or a store beside which "
                            "it lives)\n",
                    cmd);
            gyre_config_free(c);
            return 1;
        }
        if (p != path)
            snprintf(path, sizeof(path), "%s", p);
        gyre_config_free(c);
    }
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "%s: %s does not exist (no alert has been stored yet, or another path is meant)\n", cmd, path);
        return 1;
    }
    gyre_state_t *st = NULL;
    char err[512];
    if (gyre_state_open(path, &st, err, sizeof(err)) != 0 || gyre_alerts_store_migrate(st, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        gyre_state_close(st);
        return 1;
    }
    gyre_buf_t b;
    gyre_buf_init(&b, CLI_ALERTS_MAX);
    int rc = gyre_alerts_store_list(st, (size_t)limit, &b, err, sizeof(err));
    gyre_state_close(st);
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        gyre_buf_dispose(&b);
        return 1;
    }
    cJSON *events = cJSON_ParseWithLength(b.base, b.len);
    gyre_buf_dispose(&b);
    cJSON *now = current(events);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "alerts", now);
        cJSON_AddItemToObject(o, "events", events);
        char *s = cJSON_PrintUnformatted(o);
        printf("%s\n", s);
        free(s);
        cJSON_Delete(o);
        return 0;
    }
    int n = cJSON_GetArraySize(now);
    printf("firing or pending now: %d\n", n);
    for (int i = 0; i < n; i++)
        print_event(cJSON_GetArrayItem(now, i));
    n = cJSON_GetArraySize(events);
    printf("\nevents (newest first): %d\n", n);
    for (int i = 0; i < n; i++)
        print_event(cJSON_GetArrayItem(events, i));
    cJSON_Delete(now);
    cJSON_Delete(events);
    return 0;
}
