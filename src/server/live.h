/*
 * Live changes: the configuration in force is replaced while gyre serves,
 * atomically and without dropping a request.  A request keeps the
 * configuration it started with until it ends; a new one takes the new one.
 * Sources of a new configuration: SIGHUP (the config file read again), the
 * admin API (routes, weights, targets, provider keys), each recorded in the
 * audit log.  An invalid configuration is refused with its errors and the old
 * one keeps serving.
 */
#ifndef GYRE_SERVER_LIVE_H
#define GYRE_SERVER_LIVE_H

#include <stddef.h>

#include "config/config.h"
#include "server/server.h"

/*
 * Reads the configuration again (its file plus the live changes kept in the control-plane state: route
 * changes, provider keys added through the admin API), checks it and puts it in force.  Called from the main
 * thread (SIGHUP) or a worker (the admin API).  0; or -EINVAL with `err` holding every problem found (one a
 * line, no secret), the configuration in force unchanged; or another negative errno.  `actor` and `what`
 * go to the audit log ("sighup", "admin_token"; "config.reload", "route.update").
 */
int gyre_live_reload(gyre_server_t *s, const char *actor, const char *what, char *err, size_t errlen);

#endif
