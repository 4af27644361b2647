/*
 * The deployments' host in the server (src/loop/deploy.h): what a canary
 * needs from the running gyre (route changes through server/live.h, the
 * alerts firing, the notifiers), and the thread that ticks the deployments
 * once a second, so that a decision never waits more than a second.
 */
#ifndef GYRE_SERVER_DEPLOY_HOST_H
#define GYRE_SERVER_DEPLOY_HOST_H

#include "loop/deploy.h"
#include "server/server.h"

/* Fills `h` from the server: its state, store, live routes, alerts and notifiers. */
void gyre_deploy_host_init(gyre_server_t *s, gyre_deploy_host_t *h);
/* Starts the ticking thread (nothing without a control-plane state).  0, or -1 after logging why. */
int gyre_server_deploy_start(gyre_server_t *s);
/* Stops it (waits for a tick in progress). */
void gyre_server_deploy_stop(gyre_server_t *s);
/* The host the API's calls use; NULL when no control-plane state is configured. */
const gyre_deploy_host_t *gyre_server_deploy_host(gyre_server_t *s);

#endif
