/* `gyre serve`: load the configuration and run the gateway. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/alloc.h"
#include "common/log.h"
#include "config/config.h"
#include "control/access.h"
#include "server/server.h"

const char gyre_serve_usage[] =
    "usage: gyre serve [--config FILE] [--listen HOST:PORT] [--workers N]\n"
    "\n"
    "Runs the gateway until SIGTERM or SIGINT, then stops accepting, lets\n"
    "requests in flight finish (shutdown_grace_ms, default 10000) and exits 0.\n"
    "SIGHUP does not reload the configuration yet: gyre logs that and keeps serving.\n"
    "\n"
    "  --config FILE       YAML configuration (see `gyre check-config`). Without it\n"
    "                      gyre uses its embedded default: 127.0.0.1:8080, SQLite\n"
    "                      ./gyre.db, and a provider for each of OPENAI_API_KEY,\n"
    "                      GROQ_API_KEY, MISTRAL_API_KEY, DEEPSEEK_API_KEY,\n"
    "                      TOGETHER_API_KEY and OPENROUTER_API_KEY that is set, plus\n"
    "                      gyre-mock when GYRE_MOCK_URL is set (as `make run` does).\n"
    "  --listen HOST:PORT  overrides `listen:` in the configuration. On an address\n"
    "                      other than loopback (127.0.0.0/8, ::1, localhost) the\n"
    "                      configuration must have `auth:` (or `auth: none`)\n"
    "  --workers N         event-loop threads; overrides `workers:` (default: one per core)\n"
    "  -h, --help          this text\n";

int gyre_cmd_serve(int argc, char **argv)
{
    const char *config_path = NULL, *listen = NULL;
    long workers = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(gyre_serve_usage, stdout);
            return 0;
        } else if ((strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) && i + 1 < argc) {
            config_path = argv[++i];
        } else if (strcmp(a, "--listen") == 0 && i + 1 < argc) {
            listen = argv[++i];
        } else if (strcmp(a, "--workers") == 0 && i + 1 < argc) {
            char *end;
            workers = strtol(argv[++i], &end, 10);
            if (*end != '\0' || workers < 1 || workers > 256) {
                fprintf(stderr, "gyre serve: --workers must be a number from 1 to 256, got '%s'\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "gyre serve: unknown or incomplete option '%s'\n\n%s", a, gyre_serve_usage);
            return 2;
        }
    }

    gyre_config_errors_t errs = {0};
    gyre_config_t *c = config_path != NULL ? gyre_config_load(config_path, &errs) : gyre_config_default(&errs);
    if (c == NULL) {
        for (size_t i = 0; i < errs.count; i++)
            fprintf(stderr, "%s\n", errs.items[i]);
        fprintf(stderr, "gyre serve: %zu error%s in the configuration; nothing started\n", errs.count,
                errs.count == 1 ? "" : "s");
        gyre_config_errors_dispose(&errs);
        return 1;
    }
    if (listen != NULL && gyre_config_set_listen(c, listen) != 0) {
        fprintf(stderr, "gyre serve: --listen must be HOST:PORT, got '%s'\n", listen);
        gyre_config_free(c);
        return 2;
    }
    /* On the address gyre will really listen on (--listen applied): an open gateway off loopback is refused. */
    char why[1024];
    gyre_exposure_t exposure = gyre_access_exposure(c, why, sizeof(why));
    if (exposure == GYRE_EXPOSURE_REFUSED) {
        fprintf(stderr, "gyre serve: %s; nothing started\n", why);
        gyre_config_free(c);
        return 1;
    }
    if (exposure == GYRE_EXPOSURE_OPEN)
        fprintf(stderr, "gyre: warning: %s\n", why);
    /* A store that cannot be written is said now, with its path and the OS's reason, not found empty later. */
    char store[1024];
    if (gyre_cli_check_store(c, store, sizeof(store)) != 0) {
        fprintf(stderr, "%s\ngyre serve: 1 error in the configuration; nothing started\n", store);
        gyre_config_free(c);
        return 1;
    }
    if (workers != 0)
        c->workers = (unsigned)workers;
    if (c->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->workers = n > 0 ? (unsigned)n : 1;
    }
    for (size_t i = 0; i < c->nnotes; i++)
        fprintf(stderr, "gyre: %s\n", c->notes[i]);
    for (size_t i = 0; i < c->nroutes; i++) {
        const gyre_route_conf_t *r = &c->routes[i];
        fprintf(stderr, "gyre: route '%s' -> ", r->name);
        for (size_t j = 0; j < r->ntargets; j++)
            fprintf(stderr, "%s%s/%s (weight %u)", j ? ", " : "", c->providers[r->targets[j].provider].name,
                    r->targets[j].model, r->targets[j].weight);
        fprintf(stderr, "\n");
    }
    /* Library lines go to stderr through the default hook; suppressed counts are reported every
     * GYRE_LOG_FLUSH_MS and once more at exit, so a count is never lost. */
    if (gyre_log_start_flusher() != 0)
        fprintf(stderr, "gyre: could not start the log flusher; suppressed-line counts are reported at exit only\n");
    int rc = gyre_server_run(c, c->workers);
    gyre_log_flush();
    /* Workers are stopped but h2o's per-thread state still points into the
     * configuration; it is left to the process exit. */
    return rc;
}
