/*
 * The server's side of the online scorers (src/loop/score.h): started after
 * the trace writer, with the address of this gyre's own listener for the
 * LLM judges and the internal key they call it with (which the loop's gate
 * uses too: src/server/loop_host.c).
 */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "control/access.h"
#include "loop/score.h"
#include "server/server.h"

const char *gyre_server_internal_key(gyre_server_t *s)
{
    /* Minted once: a second mint would replace the key the scorers hold (control/access.h). */
    if (s->internal_key[0] == '\0' && gyre_access_internal_mint(s->internal_key, sizeof(s->internal_key)) != 0) {
        s->internal_key[0] = '\0';
        return NULL;
    }
    return s->internal_key;
}

void gyre_server_self_url(const gyre_server_t *s, const char *path, char *url, size_t size)
{
    const char *h = s->config->listen_host;
    /* A wildcard listener is reached on loopback. */
    const char *host = strcmp(h, "0.0.0.0") == 0 ? "127.0.0.1" : strcmp(h, "::") == 0 ? "::1" : h;
    int v6 = strchr(host, ':') != NULL;
    snprintf(url, size, "http://%s%s%s:%u%s", v6 ? "[" : "", host, v6 ? "]" : "", (unsigned)s->config->listen_port,
             path);
}

/* Only this process knows the key (control/access.h): the server holds it for its threads (the scorers, the loop's
 * gate) and wipes it at exit. */
int gyre_server_scoring_start(gyre_server_t *s)
{
    const gyre_config_t *config = s->config;
    /* An in-memory store is one per handle: the scorer threads' scores would land where nothing reads them. */
    if (!config->traces || s->store == NULL ||
        (config->store_sqlite != NULL && strcmp(config->store_sqlite, ":memory:") == 0))
        return 0;
    char url[400], err[512];
    const char *key = gyre_server_internal_key(s);
    if (key == NULL) {
        gyre_logf("gyre: scorers: cannot mint the judge's internal key\n");
        return 1;
    }
    gyre_server_self_url(s, "/v1/chat/completions", url, sizeof(url));
    gyre_scoring_opts_t o = {.store_dsn = config->store_dsn, .judge_url = url, .judge_key = key};
    s->scoring = gyre_score_start(s->gen->config, &o, err, sizeof(err));
    if (s->scoring == NULL) {
        gyre_logf("gyre: %s\n", err);
        return 1;
    }
    return 0;
}
