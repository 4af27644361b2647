/*
 * `gyre providers`: the provider keys of a running gyre, through its admin
 * API (server/admin_providers.c):
 *
 *   gyre providers list
 *   gyre providers rotate-key --provider P --key env:NEW [--old ID] [--weight N]
 *
 * rotate-key adds the new key, waits until gyre serves with it, then removes
 * the old ones (--old ID, default every key of P added through the admin API
 * before), each removal put in force by a live reload: requests in flight
 * finish on the configuration they started with, so none fails.
 *
 * The client here is a small blocking HTTP/1.0 one (one request per
 * connection, the answer read to its end), enough for an admin call to a
 * gyre on plain HTTP; every step is bounded by --timeout.  Keys and the admin
 * token are read from the environment or a file, never from the command line
 * (where ps and shell histories would show them), and never printed.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/alloc.h"
#include "common/buf.h"

const char gyre_providers_usage[] =
    "usage: gyre providers list [--url URL] [--admin-token env:NAME|file:PATH]\n"
    "       gyre providers rotate-key --provider P --key env:NAME|file:PATH [--old ID] [--weight N]\n"
    "                                 [--url URL] [--admin-token env:NAME|file:PATH] [--timeout 30s]\n"
    "\n"
    "The provider keys of a running gyre, through its admin API.\n"
    "\n"
    "  list            every provider and its keys' ids, where each came from, and whether\n"
    "                  it is in force (never a key)\n"
    "  rotate-key      adds the new key, waits until gyre serves with it, then removes the\n"
    "                  old one(s); requests in flight finish on the keys they started with\n"
    "\n"
    "  --provider P    the provider, as named in the configuration\n"
    "  --key SPEC      the new key: env:NAME (an environment variable) or file:PATH\n"
    "  --old ID        the key to remove (e.g. openai#a3); default: every key of P added\n"
    "                  through the admin API before this one (keys of the config file stay)\n"
    "  --weight N      the new key's weight (default 1)\n"
    "  --url URL       gyre's address (default http://127.0.0.1:8080)\n"
    "  --admin-token SPEC  the admin token: env:NAME or file:PATH (default env:GYRE_ADMIN_TOKEN,\n"
    "                  none when that is unset)\n"
    "  --timeout D     how long to wait for each step (default 30s)\n"
    "  -h, --help      this text\n"
    "\n"
    "gyre needs a master key (GYRE_MASTER_KEY) to store keys added this way; see docs/admin.md.\n";

/* The longest answer read: a provider list of every provider and key id. */
#define ANSWER_MAX ((size_t)8 << 20)

typedef gyre_cli_target_t target_t;

typedef struct answer {
    int status;
    cJSON *json; /* NULL when the body is not JSON */
} answer_t;

/* One request; 0 with `ans` filled (its body as JSON, NULL when it is not), or -1 after saying why. */
static int call(const target_t *t, const char *method, const char *path, const char *body, answer_t *ans)
{
    ans->json = NULL;
    gyre_buf_t in;
    gyre_buf_init(&in, ANSWER_MAX);
    int rc = gyre_cli_http(t, method, path, body, ANSWER_MAX, &ans->status, &in);
    if (rc == 0)
        ans->json = cJSON_Parse(in.base != NULL ? in.base : "");
    gyre_buf_dispose(&in);
    return rc;
}

/* The error message of an answer in OpenAI's shape, else its status. */
static const char *error_text(const answer_t *a, char *buf, size_t size)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(a->json, "error");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    if (cJSON_IsString(m))
        snprintf(buf, size, "%d: %s", a->status, m->valuestring);
    else
        snprintf(buf, size, "HTTP status %d", a->status);
    return buf;
}

/* The provider `name` in a GET /api/admin/providers answer, or NULL. */
static const cJSON *find_provider(const cJSON *list, const char *name)
{
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(list, "providers"))
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(p, "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
            return p;
    }
    return NULL;
}

static int get_list(const target_t *t, answer_t *a)
{
    char why[1024];
    if (call(t, "GET", "/api/admin/providers", NULL, a) != 0)
        return -1;
    if (a->status != 200 || a->json == NULL) {
        fprintf(stderr, "gyre providers: GET /api/admin/providers: %s\n", error_text(a, why, sizeof(why)));
        cJSON_Delete(a->json);
        a->json = NULL;
        return -1;
    }
    return 0;
}

static int cmd_list(const target_t *t)
{
    answer_t a;
    if (get_list(t, &a) != 0)
        return 1;
    static const char *const headers[] = {"PROVIDER", "KEY ID", "SOURCE", "WEIGHT", "IN FORCE"};
    gyre_cli_table_t tab;
    gyre_cli_table_init(&tab, 5, headers, "lllrl", "\0\0\0\0\0");
    const cJSON *p, *k;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(a.json, "providers"))
    {
        cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(p, "keys"))
        {
            char weight[24];
            snprintf(weight, sizeof(weight), "%d", cJSON_GetObjectItemCaseSensitive(k, "weight")->valueint);
            const char *cells[5] = {cJSON_GetObjectItemCaseSensitive(p, "name")->valuestring,
                                    cJSON_GetObjectItemCaseSensitive(k, "id")->valuestring,
                                    cJSON_GetObjectItemCaseSensitive(k, "source")->valuestring, weight,
                                    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(k, "in_force")) ? "yes" : "no"};
            gyre_cli_table_add(&tab, cells);
        }
    }
    gyre_cli_table_print(&tab, stdout, GYRE_CLI_WIDTH);
    gyre_cli_table_dispose(&tab);
    cJSON_Delete(a.json);
    return 0;
}

/* Whether key `id` of provider `name` is in force now. 1, 0, or -1 after saying why. */
static int in_force(const target_t *t, const char *name, const char *id)
{
    answer_t a;
    if (get_list(t, &a) != 0)
        return -1;
    int yes = 0;
    const cJSON *k;
    cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(find_provider(a.json, name), "keys"))
    {
        const cJSON *kid = cJSON_GetObjectItemCaseSensitive(k, "id");
        if (cJSON_IsString(kid) && strcmp(kid->valuestring, id) == 0)
            yes = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(k, "in_force"));
    }
    cJSON_Delete(a.json);
    return yes;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A key id in a path: its '#' as %23 (ids are otherwise [A-Za-z0-9._:-]). */
static void id_path(char *out, size_t size, const char *provider, const char *id)
{
    size_t o = (size_t)snprintf(out, size, "/api/admin/providers/%s/keys/", provider);
    for (const char *p = id; *p && o + 4 < size; p++) {
        if (*p == '#')
            o += (size_t)snprintf(out + o, size - o, "%%23");
        else
            out[o++] = *p;
    }
    out[o < size ? o : size - 1] = '\0';
}

static int cmd_rotate(const target_t *t, const char *provider, const char *key_spec, const char *old, long weight)
{
    char why[1024], path[512];
    answer_t list;
    if (get_list(t, &list) != 0)
        return 1;
    const cJSON *p = find_provider(list.json, provider);
    if (p == NULL) {
        fprintf(stderr, "gyre providers: gyre has no provider '%s'\n", provider);
        cJSON_Delete(list.json);
        return 1;
    }
    /* The keys to remove once the new one serves: --old, or every key of P added through the API before. */
    char **olds = NULL;
    size_t nold = 0;
    const cJSON *k;
    cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(p, "keys"))
    {
        const char *id = cJSON_GetObjectItemCaseSensitive(k, "id")->valuestring;
        const char *src = cJSON_GetObjectItemCaseSensitive(k, "source")->valuestring;
        if (old != NULL ? strcmp(id, old) == 0 : strcmp(src, "api") == 0) {
            olds = gyre_realloc(olds, sizeof(*olds) * (nold + 1));
            olds[nold++] = gyre_strdup(id);
        }
    }
    cJSON_Delete(list.json);
    int rc = 1;
    char *key = NULL;
    if (old != NULL && nold == 0) {
        fprintf(stderr, "gyre providers: provider '%s' has no key '%s'\n", provider, old);
        goto out;
    }
    if ((key = gyre_cli_read_secret("gyre providers", "--key", key_spec)) == NULL)
        goto out;
    gyre_buf_t body;
    gyre_buf_init(&body, 16384);
    gyre_buf_appends(&body, "{\"key\":");
    gyre_buf_append_json_string(&body, key, strlen(key));
    gyre_buf_appendf(&body, ",\"weight\":%ld}", weight);
    explicit_bzero(key, strlen(key));
    snprintf(path, sizeof(path), "/api/admin/providers/%s/keys", provider);
    answer_t add;
    int r = call(t, "POST", path, gyre_buf_failed(&body) ? "" : body.base, &add);
    explicit_bzero(body.base, body.len);
    gyre_buf_dispose(&body);
    if (r != 0)
        goto out;
    const cJSON *idv = cJSON_GetObjectItemCaseSensitive(add.json, "id");
    if ((add.status != 201 && add.status != 202) || !cJSON_IsString(idv)) {
        fprintf(stderr, "gyre providers: adding the key: %s\n", error_text(&add, why, sizeof(why)));
        cJSON_Delete(add.json);
        goto out;
    }
    char id[128];
    snprintf(id, sizeof(id), "%s", idv->valuestring);
    if (add.status == 202) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(add.json, "message");
        fprintf(stderr, "gyre providers: the new key %s is saved but not in force (%s); the old keys stay\n", id,
                cJSON_IsString(m) ? m->valuestring : "no reason given");
        cJSON_Delete(add.json);
        goto out;
    }
    cJSON_Delete(add.json);
    /* In force by the answer; checked once more, and waited for, before anything is taken away. */
    int64_t deadline = now_ms() + t->timeout_ms;
    while ((r = in_force(t, provider, id)) == 0 && now_ms() < deadline)
        usleep(100 * 1000);
    if (r != 1) {
        if (r == 0)
            fprintf(stderr, "gyre providers: the new key %s is not in force after %d ms; the old keys stay\n", id,
                    t->timeout_ms);
        goto out;
    }
    printf("added %s to %s (in force)\n", id, provider);
    rc = 0;
    for (size_t i = 0; i < nold; i++) {
        answer_t del;
        id_path(path, sizeof(path), provider, olds[i]);
        if (call(t, "DELETE", path, NULL, &del) != 0) {
            rc = 1;
            continue;
        }
        if (del.status == 200)
            printf("removed %s\n", olds[i]);
        else {
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(del.json, "message");
            fprintf(stderr, "gyre providers: removing %s: %s\n", olds[i],
                    del.status == 202 && cJSON_IsString(m) ? m->valuestring : error_text(&del, why, sizeof(why)));
            rc = 1;
        }
        cJSON_Delete(del.json);
    }
out:
    if (key != NULL)
        free(key);
    for (size_t i = 0; i < nold; i++)
        free(olds[i]);
    free(olds);
    return rc;
}

int gyre_cmd_providers(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0) {
        fputs(gyre_providers_usage, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    const char *sub = argv[0], *url = "http://127.0.0.1:8080", *token_spec = NULL, *provider = NULL,
               *key_spec = NULL, *old = NULL, *v = NULL;
    long weight = 1;
    int64_t timeout_us = 30 * 1000000LL;
    if (strcmp(sub, "list") != 0 && strcmp(sub, "rotate-key") != 0) {
        fprintf(stderr, "gyre providers: unknown subcommand '%s'\n\n%s", sub, gyre_providers_usage);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        int r;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(gyre_providers_usage, stdout);
            return 0;
        } else if ((r = gyre_cli_opt("gyre providers", argc, argv, &i, "--url", &url)) != 0 ||
                   (r = gyre_cli_opt("gyre providers", argc, argv, &i, "--admin-token", &token_spec)) != 0 ||
                   (r = gyre_cli_opt("gyre providers", argc, argv, &i, "--provider", &provider)) != 0 ||
                   (r = gyre_cli_opt("gyre providers", argc, argv, &i, "--key", &key_spec)) != 0 ||
                   (r = gyre_cli_opt("gyre providers", argc, argv, &i, "--old", &old)) != 0) {
            if (r < 0)
                return 2;
        } else if ((r = gyre_cli_opt("gyre providers", argc, argv, &i, "--weight", &v)) != 0) {
            char *end;
            weight = r > 0 ? strtol(v, &end, 10) : -1;
            if (r < 0 || *end != '\0' || weight < 0 || weight > 1000000) {
                fprintf(stderr, "gyre providers: --weight must be a number from 0 to 1000000\n");
                return 2;
            }
        } else if ((r = gyre_cli_opt("gyre providers", argc, argv, &i, "--timeout", &v)) != 0) {
            if (r < 0 || gyre_cli_parse_duration(v, &timeout_us) != 0 || timeout_us > 600 * 1000000LL) {
                fprintf(stderr, "gyre providers: --timeout must be a duration up to 10m (30s, 2m)\n");
                return 2;
            }
        } else {
            fprintf(stderr, "gyre providers: unknown or incomplete option '%s'\n\n%s", argv[i], gyre_providers_usage);
            return 2;
        }
    }
    target_t t = {.cmd = "gyre providers", .timeout_ms = (int)(timeout_us / 1000)};
    if (t.timeout_ms < 1)
        t.timeout_ms = 1;
    if (gyre_cli_parse_url(url, &t) != 0) {
        fprintf(stderr, "gyre providers: --url must be http://HOST[:PORT], got '%s'\n", url);
        return 2;
    }
    if (token_spec != NULL) {
        if ((t.token = gyre_cli_read_secret("gyre providers", "--admin-token", token_spec)) == NULL)
            return 2;
    } else if (getenv("GYRE_ADMIN_TOKEN") != NULL && getenv("GYRE_ADMIN_TOKEN")[0] != '\0') {
        t.token = gyre_strdup(getenv("GYRE_ADMIN_TOKEN"));
    }
    int rc;
    if (strcmp(sub, "list") == 0) {
        rc = cmd_list(&t);
    } else if (provider == NULL || key_spec == NULL) {
        fprintf(stderr, "gyre providers: rotate-key needs --provider and --key\n");
        rc = 2;
    } else {
        rc = cmd_rotate(&t, provider, key_spec, old, weight);
    }
    if (t.token != NULL) {
        explicit_bzero(t.token, strlen(t.token));
        free(t.token);
    }
    return rc;
}
