/*
 * The server's side of the online scorers (src/loop/score.h): started after
 * the trace writer, with the address of this gyre's own listener for the
 * LLM judges and the internal key they call it with.
 */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "control/access.h"
#include "loop/score.h"
#include "server/server.h"

/* Only this process knows the key (control/access.h); it is wiped here once the runtime holds its copy. */
int gyre_server_scoring_start(gyre_server_t *s)
{
    const gyre_config_t *config = s->config;
    /* An in-memory store is one per handle: the scorer threads' scores would land where nothing reads them. */
    if (!config->traces || s->store == NULL ||
        (config->store_sqlite != NULL && strcmp(config->store_sqlite, ":memory:") == 0))
        return 0;
    char key[96], url[400], err[512];
    if (gyre_access_internal_mint(key, sizeof(key)) != 0) {
        gyre_logf("gyre: scorers: cannot mint the judge's internal key\n");
        return 1;
    }
    const char *h = config->listen_host;
    /* A wildcard listener is reached on loopback. */
    const char *host = strcmp(h, "0.0.0.0") == 0 ? "127.0.0.1" : strcmp(h, "::") == 0 ? "::1" : h;
    int v6 = strchr(host, ':') != NULL;
    snprintf(url, sizeof(url), "http://%s%s%s:%u/v1/chat/completions", v6 ? "[" : "", host, v6 ? "]" : "",
             (unsigned)config->listen_port);
    gyre_scoring_opts_t o = {.store_dsn = config->store_dsn, .judge_url = url, .judge_key = key};
    s->scoring = gyre_score_start(s->gen->config, &o, err, sizeof(err));
    explicit_bzero(key, sizeof(key));
    if (s->scoring == NULL) {
        gyre_logf("gyre: %s\n", err);
        return 1;
    }
    return 0;
}

