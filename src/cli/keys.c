/*
 * `gyre keys`: managed gateway keys (control/keys.h) in the control-plane
 * database, written directly; a running gyre sees a change within a second
 * (its watcher reads PRAGMA data_version).  Every change is in the audit log
 * as "cli:<user>".
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "config/config.h"
#include "control/keys.h"
#include "control/state.h"

const char gyre_keys_usage[] =
    "usage: gyre keys create --name NAME [--team TEAM] [--agent AGENT] [--routes R1,R2]\n"
    "                        [--models M1,M2] [--rpm N] [--tpm N]\n"
    "                        [--budget-usd X --budget-period day|week|month] [--expires WHEN]\n"
    "       gyre keys list [--json]\n"
    "       gyre keys show ID [--json]\n"
    "       gyre keys revoke ID\n"
    "       gyre keys rotate ID [--grace DURATION]\n"
    "  each with [--config FILE | --state PATH]\n"
    "\n"
    "Managed gateway keys: client keys made and revoked without a restart.  A key\n"
    "is printed once, when it is created or rotated: gyre keeps only a salted hash\n"
    "of it.  A running gyre sees every change within a second.\n"
    "\n"
    "  --name NAME        what the key is for (required)\n"
    "  --team, --agent    who uses it: traces, stats and limits group by them\n"
    "  --routes, --models the only routes and models the key may call (default: any)\n"
    "  --rpm, --tpm       requests and tokens per minute (0: no limit)\n"
    "  --budget-usd X     spend per --budget-period\n"
    "  --expires WHEN     a date (2027-01-31, 00:00 UTC), an RFC 3339 time, or a\n"
    "                     duration from now (90s, 12h, 30d)\n"
    "  --grace DURATION   rotate: the old key keeps working this long (default 0:\n"
    "                     it stops at once; at most 7d)\n"
    "  --json             print JSON (list, show, create, rotate)\n"
    "  --state PATH       the control-plane database\n"
    "  --config FILE      read its path from FILE (`state:`, or beside the store);\n"
    "                     without either: the embedded default's, ./gyre.db.state\n"
    "\n"
    "Exit status: 0, 1 when the work failed (no such key, no database), 2 for a\n"
    "wrong command line.\n";

static const char cmd[] = "gyre keys";

/* The state database's path, from --state or the configuration.  NULL after printing why. */
static char *state_path(const char *config_path, const char *state)
{
    if (state != NULL)
        return strdup(state);
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = config_path != NULL ? gyre_config_load(config_path, &errs) : gyre_config_default(&errs);
    if (c == NULL) {
        for (size_t i = 0; i < errs.count; i++)
            fprintf(stderr, "%s\n", errs.items[i]);
        fprintf(stderr, "%s: %zu error%s in the configuration\n", cmd, errs.count, errs.count == 1 ? "" : "s");
        gyre_config_errors_dispose(&errs);
        return NULL;
    }
    char buf[4096];
    const char *p = gyre_state_path_for(c, buf, sizeof(buf));
    char *out = p != NULL ? strdup(p) : NULL;
    if (out == NULL)
        fprintf(stderr, "%s: %s names no state database (state: PATH, or a store: {sqlite: PATH} beside it)\n", cmd,
                c->source);
    gyre_config_free(c);
    return out;
}

static const char *actor(char *buf, size_t len)
{
    const char *u = getenv("USER");
    if (u == NULL || u[0] == '\0') {
        struct passwd *pw = getpwuid(getuid());
        u = pw != NULL ? pw->pw_name : "unknown";
    }
    snprintf(buf, len, "cli:%.64s", u);
    return buf;
}

static void print_row(const gyre_key_row_t *r, int64_t now)
{
    char t[32];
    printf("id             %s\n", r->id);
    printf("name           %s\n", r->name);
    printf("team           %s\n", r->team[0] ? r->team : "-");
    printf("agent          %s\n", r->agent[0] ? r->agent : "-");
    printf("routes         %s\n", r->routes[0] ? r->routes : "any");
    printf("models         %s\n", r->models[0] ? r->models : "any");
    printf("rpm            %u\n", r->rpm);
    printf("tpm            %u\n", r->tpm);
    if (r->budget_usd >= 0)
        printf("budget         %.6f USD per %s\n", r->budget_usd, gyre_keys_period_name(r->budget_period));
    else
        printf("budget         -\n");
    gyre_cli_format_time(r->expires_us, t, sizeof(t));
    printf("expires        %s\n", r->expires_us ? t : "never");
    gyre_cli_format_time(r->created_us, t, sizeof(t));
    printf("created        %s\n", t);
    gyre_cli_format_time(r->revoked_us, t, sizeof(t));
    printf("revoked        %s\n", r->revoked_us ? t : "-");
    printf("status         %s\n", gyre_key_row_status(r, now));
}

static void print_json_row(const gyre_key_row_t *r, int64_t now, const char *key)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    if (key != NULL) {
        gyre_buf_appendf(&b, "{\"key\":\"%s\",\"data\":", key);
        gyre_key_row_json(r, now, &b);
        gyre_buf_appends(&b, "}");
    } else {
        gyre_key_row_json(r, now, &b);
    }
    printf("%s\n", b.base ? b.base : "{}");
    gyre_buf_dispose(&b);
}

/* The new key, once, with what to do with it. */
static void print_key(const char *key, const gyre_key_row_t *r, int json, int64_t now)
{
    if (json) {
        print_json_row(r, now, key);
    } else {
        printf("key            %s\n", key);
        print_row(r, now);
    }
    fprintf(stderr, "%s: this key is shown once and never again (gyre stores only a hash of it): give it to its user "
                    "now\n",
            cmd);
}

static int parse_u32(const char *opt, const char *v, uint32_t *out)
{
    char *end = NULL;
    unsigned long long n = strtoull(v, &end, 10);
    if (v[0] < '0' || v[0] > '9' || *end != '\0' || n > 1000000000ull) {
        fprintf(stderr, "%s: %s: expected a whole number from 0 to 1000000000, got '%s'\n", cmd, opt, v);
        return -1;
    }
    *out = (uint32_t)n;
    return 0;
}

int gyre_cmd_keys(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0) {
        fputs(gyre_keys_usage, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    const char *sub = argv[0];
    if (strcmp(sub, "create") != 0 && strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0 &&
        strcmp(sub, "revoke") != 0 && strcmp(sub, "rotate") != 0) {
        fprintf(stderr, "%s: unknown subcommand '%s' (create, list, show, revoke, rotate)\n\n%s", cmd, sub,
                gyre_keys_usage);
        return 2;
    }
    gyre_key_spec_t spec = {.budget_usd = -1};
    const char *config = NULL, *state = NULL, *id = NULL, *v = NULL, *budget = NULL, *period = NULL,
               *expires = NULL, *grace = NULL;
    int json = 0;
    int wants_id = strcmp(sub, "show") == 0 || strcmp(sub, "revoke") == 0 || strcmp(sub, "rotate") == 0;
    int is_create = strcmp(sub, "create") == 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r;
#define OPT(name, field, allowed)                                                                                      \
    if ((r = gyre_cli_opt(cmd, argc, argv, &i, name, &v)) != 0) {                                                      \
        if (r < 0)                                                                                                     \
            return 2;                                                                                                  \
        if (!(allowed)) {                                                                                              \
            fprintf(stderr, "%s %s: %s is not an option of this subcommand\n", cmd, sub, name);                        \
            return 2;                                                                                                  \
        }                                                                                                              \
        field = v;                                                                                                     \
        continue;                                                                                                      \
    }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(gyre_keys_usage, stdout);
            return 0;
        }
        if (strcmp(a, "--json") == 0) {
            json = 1;
            continue;
        }
        OPT("--config", config, 1)
        OPT("-c", config, 1)
        OPT("--state", state, 1)
        OPT("--name", spec.name, is_create)
        OPT("--team", spec.team, is_create)
        OPT("--agent", spec.agent, is_create)
        OPT("--routes", spec.routes, is_create)
        OPT("--models", spec.models, is_create)
        OPT("--budget-usd", budget, is_create)
        OPT("--budget-period", period, is_create)
        OPT("--expires", expires, is_create)
        OPT("--grace", grace, strcmp(sub, "rotate") == 0)
        if ((r = gyre_cli_opt(cmd, argc, argv, &i, "--rpm", &v)) != 0) {
            if (r < 0 || !is_create || parse_u32("--rpm", v, &spec.rpm) != 0)
                return 2;
            continue;
        }
        if ((r = gyre_cli_opt(cmd, argc, argv, &i, "--tpm", &v)) != 0) {
            if (r < 0 || !is_create || parse_u32("--tpm", v, &spec.tpm) != 0)
                return 2;
            continue;
        }
#undef OPT
        if (a[0] != '-' && wants_id && id == NULL) {
            id = a;
            continue;
        }
        fprintf(stderr, "%s %s: %s '%s'\n\n%s", cmd, sub, a[0] == '-' ? "unknown option" : "unexpected argument", a,
                gyre_keys_usage);
        return 2;
    }
    if (config != NULL && state != NULL) {
        fprintf(stderr, "%s: --config and --state both name the database; pass one\n", cmd);
        return 2;
    }
    if (wants_id && id == NULL) {
        fprintf(stderr, "%s %s: which key? (gyre keys %s ID; gyre keys list shows the ids)\n", cmd, sub, sub);
        return 2;
    }
    int64_t now = gyre_cli_now_us();
    if (is_create) {
        if (spec.name == NULL) {
            fprintf(stderr, "%s create: --name is required\n", cmd);
            return 2;
        }
        if (budget != NULL) {
            char *end = NULL;
            spec.budget_usd = strtod(budget, &end);
            if (end == budget || *end != '\0' || !(spec.budget_usd >= 0)) {
                fprintf(stderr, "%s create: --budget-usd: expected a number of dollars >= 0, got '%s'\n", cmd, budget);
                return 2;
            }
        }
        if (period != NULL) {
            int p = gyre_keys_period_parse(period);
            if (p <= 0) {
                fprintf(stderr, "%s create: --budget-period: expected day, week or month, got '%s'\n", cmd, period);
                return 2;
            }
            spec.budget_period = (gyre_budget_period_t)p;
        }
        if ((budget != NULL) != (period != NULL)) {
            fprintf(stderr, "%s create: --budget-usd and --budget-period go together\n", cmd);
            return 2;
        }
        if (expires != NULL && gyre_keys_parse_expires(expires, now, &spec.expires_us) != 0) {
            fprintf(stderr,
                    "%s create: --expires: expected a date (2027-01-31), an RFC 3339 time (2027-01-31T12:00:00Z) or "
                    "a duration (90s, 12h, 30d), got '%s'\n",
                    cmd, expires);
            return 2;
        }
    }
    int64_t grace_us = 0;
    if (grace != NULL && gyre_keys_parse_grace(grace, &grace_us) != 0) {
        fprintf(stderr, "%s rotate: --grace: expected 0 or a duration up to 7d (90s, 1h, 2d), got '%s'\n", cmd, grace);
        return 2;
    }

    char *path = state_path(config, state);
    if (path == NULL)
        return 1;
    /* Only create makes the database: a reader or a revoke must not leave an empty one behind a typo. */
    struct stat sb;
    if (!is_create && stat(path, &sb) != 0) {
        fprintf(stderr, "%s: no state database at %s (%s): no key was ever created there\n", cmd, path,
                strerror(errno));
        free(path);
        return 1;
    }
    char err[512] = "", who[80], key[GYRE_KEYS_KEY_SIZE];
    gyre_state_t *st = NULL;
    gyre_keys_t *k = NULL;
    int rc = 1;
    if (gyre_state_open(path, &st, err, sizeof(err)) != 0 || gyre_keys_open(st, 0, &k, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        goto out;
    }
    if (is_create) {
        gyre_key_row_t row;
        if (gyre_keys_create(k, &spec, key, &row, err, sizeof(err)) != 0) {
            fprintf(stderr, "%s create: %s\n", cmd, err);
            goto out;
        }
        if (gyre_keys_audit(k, actor(who, sizeof(who)), "key.create", row.id, NULL, &row, err, sizeof(err)) != 0)
            fprintf(stderr, "%s create: the key was made but the audit log did not take it: %s\n", cmd, err);
        print_key(key, &row, json, now);
        explicit_bzero(key, sizeof(key));
        gyre_key_row_dispose(&row);
        rc = 0;
    } else if (strcmp(sub, "list") == 0) {
        gyre_key_row_t *rows = NULL;
        size_t n = 0;
        if (gyre_keys_list(k, &rows, &n, err, sizeof(err)) != 0) {
            fprintf(stderr, "%s list: %s\n", cmd, err);
            goto out;
        }
        if (json) {
            gyre_buf_t b;
            gyre_buf_init(&b, (size_t)256 << 20);
            gyre_buf_appends(&b, "{\"data\":[");
            for (size_t i = 0; i < n; i++) {
                if (i)
                    gyre_buf_appends(&b, ",");
                gyre_key_row_json(&rows[i], now, &b);
            }
            gyre_buf_appends(&b, "]}");
            printf("%s\n", b.base);
            gyre_buf_dispose(&b);
        } else {
            static const char *const headers[] = {"ID", "NAME", "TEAM", "AGENT", "STATUS", "EXPIRES", "CREATED"};
            static const char shrink[] = {0, 1, 1, 1, 0, 0, 0};
            gyre_cli_table_t tab;
            gyre_cli_table_init(&tab, 7, headers, "lllllll", shrink);
            for (size_t i = 0; i < n; i++) {
                char exp[32], created[32];
                gyre_cli_format_time(rows[i].expires_us, exp, sizeof(exp));
                gyre_cli_format_time(rows[i].created_us, created, sizeof(created));
                const char *cells[] = {rows[i].id,
                                       rows[i].name,
                                       rows[i].team[0] ? rows[i].team : "-",
                                       rows[i].agent[0] ? rows[i].agent : "-",
                                       gyre_key_row_status(&rows[i], now),
                                       rows[i].expires_us ? exp : "never",
                                       created};
                gyre_cli_table_add(&tab, cells);
            }
            if (n != 0)
                gyre_cli_table_print(&tab, stdout, GYRE_CLI_WIDTH);
            else
                printf("no keys\n");
            gyre_cli_table_dispose(&tab);
        }
        for (size_t i = 0; i < n; i++)
            gyre_key_row_dispose(&rows[i]);
        free(rows);
        rc = 0;
    } else if (strcmp(sub, "show") == 0) {
        gyre_key_row_t row;
        if (gyre_keys_get(k, id, &row, err, sizeof(err)) != 0) {
            fprintf(stderr, "%s show: %s\n", cmd, err);
            goto out;
        }
        if (json)
            print_json_row(&row, now, NULL);
        else
            print_row(&row, now);
        gyre_key_row_dispose(&row);
        rc = 0;
    } else if (strcmp(sub, "revoke") == 0) {
        gyre_key_row_t before, after;
        memset(&before, 0, sizeof(before));
        if (gyre_keys_revoke(k, id, &before, &after, err, sizeof(err)) != 0) {
            fprintf(stderr, "%s revoke: %s\n", cmd, err);
            gyre_key_row_dispose(&before);
            goto out;
        }
        if (gyre_keys_audit(k, actor(who, sizeof(who)), "key.revoke", id, &before, &after, err, sizeof(err)) != 0)
            fprintf(stderr, "%s revoke: the key was revoked but the audit log did not take it: %s\n", cmd, err);
        printf("revoked %s: a running gyre refuses it within a second\n", id);
        gyre_key_row_dispose(&before);
        gyre_key_row_dispose(&after);
        rc = 0;
    } else {
        gyre_key_row_t before, after;
        memset(&before, 0, sizeof(before));
        if (gyre_keys_rotate(k, id, grace_us, key, &before, &after, err, sizeof(err)) != 0) {
            fprintf(stderr, "%s rotate: %s\n", cmd, err);
            gyre_key_row_dispose(&before);
            goto out;
        }
        if (gyre_keys_audit(k, actor(who, sizeof(who)), "key.rotate", id, &before, &after, err, sizeof(err)) != 0)
            fprintf(stderr, "%s rotate: the key was rotated but the audit log did not take it: %s\n", cmd, err);
        print_key(key, &after, json, now);
        explicit_bzero(key, sizeof(key));
        gyre_key_row_dispose(&before);
        gyre_key_row_dispose(&after);
        rc = 0;
    }
out:
    gyre_keys_close(k);
    gyre_state_close(st);
    free(path);
    return rc;
}
