/* `gyre check-config FILE`: report every error in a configuration file. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "config/config.h"
#include "config/fields.h"
#include "control/access.h"
#include "loop/heuristic.h"
#include "store/store.h"

const char gyre_check_config_usage[] =
    "usage: gyre check-config FILE\n"
    "       gyre check-config --fields-markdown   (docs/config.md's field reference)\n"
    "\n"
    "Reads FILE as `gyre serve --config FILE` would and reports every error,\n"
    "each with its line and the field's name; exits 1 when there is any, 0 when\n"
    "the file is good. Keys given as env:NAME or file:PATH are loaded, so a\n"
    "missing variable or unreadable file is reported too (their values never are).\n"
    "\n"
    "The format (every field but providers and routes is optional):\n"
    "  listen: 127.0.0.1:8080      # off loopback, auth: is required\n"
    "  auth:                       # who may call; without it gyre runs open (loopback only)\n"
    "    keys: [env:GYRE_CLIENT_KEY, file:/run/secrets/gyre-keys]\n"
    "                              # client keys (Authorization: Bearer KEY or x-api-key: KEY)\n"
    "                              # for model calls and POST /v1/traces; a file: holds one key\n"
    "                              # a line ('#' lines and blank lines skipped); each key and\n"
    "                              # token at least 16 printable characters\n"
    "    read_token: env:GYRE_READ_TOKEN    # /api/* and /metrics\n"
    "    admin_token: env:GYRE_ADMIN_TOKEN  # all of the above\n"
    "                              # or `auth: none`: open on purpose, on any address\n"
    "  direct: true                # clients may send model: PROVIDER/MODEL (per provider too)\n"
    "  passthrough: [/v1/completions, /v1/moderations, /v1/images, /v1/audio, /v1/responses]\n"
    "                              # /v1 paths passed as they are (the default shown; files,\n"
    "                              # batches, fine_tuning, ... only when listed; admin and\n"
    "                              # organization paths never)\n"
    "  workers: 2                  # default: one per core\n"
    "  store: {sqlite: ./gyre.db}  # every call is stored with its bodies; the file must be\n"
    "                              # writable (checked here); traces: false stores none,\n"
    "                              # capture: false keeps no bodies for calls without a route;\n"
    "                              # dsn: sqlite:PATH is the same as sqlite: PATH\n"
    "  max_body_bytes: 8388608     # larger request bodies get 413\n"
    "  max_response_bytes: 67108864  # a larger whole answer from a provider gets 502\n"
    "  shutdown_grace_ms: 10000\n"
    "  max_header_bytes: 32768     # a longer request head (request line and headers) gets 431\n"
    "  max_connections: 4096       # client connections at once, all workers; more wait to be accepted\n"
    "  linger_ms: 30000            # after an early answer (413), read what the client still sends for\n"
    "  linger_bytes: 67108864      #   at most this long and this much, so that it gets the answer\n"
    "  providers:\n"
    "    - name: primary\n"
    "      kind: openai            # any OpenAI-compatible API\n"
    "      base_url: https://api.openai.com/v1\n"
    "      keys: [sk-..., env:OPENAI_API_KEY, file:/run/secrets/openai]\n"
    "      timeout_ms: 120000      # connect and idle-read limit, and the answer's until its first byte\n"
    "      max_response_bytes: 67108864  # default: the root's\n"
    "      ca_file: /path/ca.pem   # extra trust anchors for https\n"
    "      tls_verify: true\n"
    "      direct: false           # overrides the root's direct:\n"
    "  routes:\n"
    "    - name: chat              # clients send model: chat (or primary/gpt-4o-mini)\n"
    "      targets: [{provider: primary, model: gpt-4o-mini, weight: 100}]\n"
    "  alerts:                     # evaluated in-process every second (docs/alerts.md)\n"
    "    - name: key_rate_limited\n"
    "      condition: rate_limited_rate > 20%  # p50/p95/p99_latency, ttft_p95, error_rate,\n"
    "                              # request_rate, tokens_per_minute, cost_per_hour, inflight,\n"
    "                              # queue_depth, trace_log_lag, trace_spool_bytes; ms s % $\n"
    "      window: 1m              # for: 0, resolve_for: for or 30s, min_firing: 1m,\n"
    "                              # severity: warning (the defaults)\n"
    "      by: [provider, key]     # of route, provider, key (its id), agent\n"
    "      actions: [rotate_key, log]  # failover_to_secondary, open_circuit, or a notifier\n"
    "\n"
    "Every field (src/config/fields.c; docs/config.md is generated from the same table):\n";

/* The field table, as --help or --fields-markdown prints it. */
static int print_fields(int markdown)
{
    gyre_buf_t b;
    gyre_buf_init(&b, (size_t)1 << 20); /* the table is about 20 KB */
    if (markdown)
        gyre_config_fields_markdown(&b);
    else
        gyre_config_fields_text(&b);
    int rc = gyre_buf_failed(&b) != 0 ? 1 : 0;
    if (rc == 0)
        fwrite(b.base, 1, b.len, stdout);
    gyre_buf_dispose(&b);
    return rc;
}

int gyre_cli_check_store(const gyre_config_t *c, char *msg, size_t len)
{
    char err[768] = "";
    if (c->store_dsn == NULL || !c->traces || gyre_store_probe(c->store_dsn, err, sizeof(err)) == 0)
        return 0;
    if (c->store_line > 0)
        snprintf(msg, len, "%s:%d: %s: %s", c->source, c->store_line, c->store_field, err);
    else
        snprintf(msg, len, "%s: %s: %s", c->source, c->store_field, err);
    return -1;
}

/* Whether `gyre serve` could open the access log for appending, asked without creating it: the file when it
 * exists, else its directory.  0, or -1 with `msg` set. */
static int check_access_log(const gyre_config_t *c, char *msg, size_t len)
{
    if (c->access_log == NULL || strcmp(c->access_log, "stderr") == 0)
        return 0;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", c->access_log);
    const char *target = access(c->access_log, F_OK) == 0 ? c->access_log : dirname(dir);
    if (access(target, W_OK) == 0)
        return 0;
    snprintf(msg, len, "%s: access_log: cannot append to %s: %s", c->source, c->access_log, strerror(errno));
    return -1;
}

/* Every heuristic scorer compiles as gyre serve compiles it (a schema's keywords are checked there, not by the
 * config's parser, which only knows it is JSON): the first that does not, as FILE:LINE: scorers[i].FIELD. */
static int check_scorers(const gyre_config_t *c, char *msg, size_t len)
{
    for (size_t i = 0; i < c->nscorers; i++) {
        if (c->scorers[i].kind == GYRE_SCORER_JUDGE)
            continue;
        char err[256];
        gyre_heuristic_t *h = gyre_heuristic_compile(&c->scorers[i], err, sizeof(err));
        if (h == NULL) {
            snprintf(msg, len, "%s:%d: scorers[%zu].%s", c->source, c->scorers[i].line, i, err);
            return -1;
        }
        gyre_heuristic_free(h);
    }
    return 0;
}

int gyre_cmd_check_config(int argc, char **argv)
{
    if (argc == 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
        fputs(gyre_check_config_usage, stdout);
        return print_fields(0);
    }
    if (argc == 1 && strcmp(argv[0], "--fields-markdown") == 0)
        return print_fields(1);
    if (argc != 1) {
        fputs(gyre_check_config_usage, stderr);
        return 2;
    }
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = gyre_config_load(argv[0], &errs);
    if (c == NULL) {
        for (size_t i = 0; i < errs.count; i++)
            printf("%s\n", errs.items[i]);
        printf("%zu error%s\n", errs.count, errs.count == 1 ? "" : "s");
        gyre_config_errors_dispose(&errs);
        return 1;
    }
    char why[1024];
    gyre_exposure_t exposure = gyre_access_exposure(c, why, sizeof(why));
    if (exposure == GYRE_EXPOSURE_REFUSED) {
        if (c->listen_line > 0)
            printf("%s:%d: listen: %s\n1 error\n", argv[0], c->listen_line, why);
        else
            printf("%s: listen: %s\n1 error\n", argv[0], why);
        gyre_config_free(c);
        return 1;
    }
    char store[1024];
    if (gyre_cli_check_store(c, store, sizeof(store)) != 0) {
        printf("%s\n1 error\n", store);
        gyre_config_free(c);
        return 1;
    }
    if (check_access_log(c, store, sizeof(store)) != 0) {
        printf("%s\n1 error\n", store);
        gyre_config_free(c);
        return 1;
    }
    if (check_scorers(c, store, sizeof(store)) != 0) {
        printf("%s\n1 error\n", store);
        gyre_config_free(c);
        return 1;
    }
    if (exposure == GYRE_EXPOSURE_OPEN)
        printf("%s: warning: %s\n", argv[0], why);
    printf("%s: ok (%zu provider%s, %zu route%s)\n", argv[0], c->nproviders, c->nproviders == 1 ? "" : "s", c->nroutes,
           c->nroutes == 1 ? "" : "s");
    gyre_config_free(c);
    return 0;
}
