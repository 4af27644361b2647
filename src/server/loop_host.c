/*
 * The server's side of the loop (src/loop/looprun.h): the runner gets the
 * control-plane state, the store, this gyre's own listener and internal key
 * (the gate replays through them), and the deployment host
 * (server/deploy_host.c: live route changes, the config in force, alerts).
 * Without `state:` there is no runner and /api/loop answers 404.
 */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "control/state.h"
#include "loop/deploy.h"
#include "loop/looprun.h"
#include "server/deploy_host.h"
#include "server/server.h"

int gyre_server_loop_start(gyre_server_t *s)
{
    const gyre_config_t *config = s->config;
    if (s->state == NULL)
        return 0;
    char url[400], work[4096], err[1024];
    const char *key = gyre_server_internal_key(s);
    if (key == NULL) {
        gyre_logf("gyre: loop: cannot mint the internal key its gate calls with\n");
        return 1;
    }
    gyre_server_self_url(s, "/v1/chat/completions", url, sizeof(url));
    gyre_loop_host_t h;
    memset(&h, 0, sizeof(h));
    h.deploy = gyre_server_deploy_host(s);
    if (h.deploy == NULL)
        return 0;
    h.state = s->state;
    h.store_dsn = config->store_dsn;
    if (gyre_httpc_parse_url(url, &h.listener) != 0) {
        gyre_logf("gyre: loop: cannot reach the listener at %s\n", url);
        return 1;
    }
    h.key = key;
    snprintf(work, sizeof(work), "%s.loop", gyre_state_path(s->state));
    h.work_dir = work;
    h.spec_paths = (const char *const *)config->loop_specs;
    h.nspecs = config->nloop_specs;
    s->loop = gyre_loop_runner_start(&h, err, sizeof(err));
    if (s->loop == NULL) {
        gyre_logf("gyre: loop: %s\n", err);
        return 1;
    }
    return 0;
}

void gyre_server_loop_go(gyre_server_t *s)
{
    gyre_loop_runner_go(s->loop);
}

void gyre_server_loop_stop(gyre_server_t *s)
{
    gyre_loop_runner_stop(s->loop);
    s->loop = NULL;
}
