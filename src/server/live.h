/*
 * Live changes: the configuration in force is replaced while gyre serves,
 * atomically and without dropping a request.  A request keeps the
 * configuration it started with until it ends; a new one takes the new one.
 * Sources of a new configuration: SIGHUP (the config file read again), the
 * admin API (routes, weights, targets, provider keys), each recorded in the
 * audit log.  An invalid configuration is refused with its errors and the old
 * one keeps serving.
 *
 * How (docs/live.md): the main thread (or the worker that took an admin
 * call) builds a whole new generation (proxy/gen.h) under one lock, checks
 * it, publishes it as the server's, and sends each worker a message with a
 * reference to it; the worker makes its own state for it (pools, breakers,
 * route states) and puts it in force for the requests that begin after; the
 * old state goes when its last request ends, the old generation when every
 * worker let go of it.  What needs a restart (listen, workers, store, state,
 * otlp, the connection bounds) is refused, naming the field.
 */
#ifndef GYRE_SERVER_LIVE_H
#define GYRE_SERVER_LIVE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "config/config.h"
#include "server/server.h"

/*
 * Reads the configuration again (its file plus the live changes kept in the control-plane state: route
 * changes, provider keys added through the admin API), checks it and puts it in force.  Called from the main
 * thread (SIGHUP) or a worker (the admin API).  0; or -EINVAL with `err` holding every problem found (one a
 * line, no secret), the configuration in force unchanged; or another negative errno.  `actor` and `what`
 * name the change in the log ("sighup", "admin_token"; "config.reload", "provider_key.create"); a reload of the
 * file ("config.reload") is recorded in the audit log, while a caller that changed something else (a provider
 * key) records its own change, with its object before and after.
 */
int gyre_live_reload(gyre_server_t *s, const char *actor, const char *what, char *err, size_t errlen);

/* At start, before any worker: the first generation (the file, the route overlays kept in the state).  0, or -1
 * with `err` saying why (gyre does not start). */
int gyre_live_start(gyre_server_t *s, char *err, size_t errlen);

/* On a worker's thread as it starts: its state for the generation in force, and its receiver of the next. */
void gyre_live_worker_init(gyre_worker_t *w);

/*
 * A route changed through the admin API: `route_json` (a JSON object in the shape of a YAML route entry, its
 * `name` being `name`) replaces the route of that name, or is added; NULL removes the overlay (the file's route,
 * or none, is back).  Kept in the control-plane state, so it survives a restart and a SIGHUP, and put in force as
 * gyre_live_reload does.  0; -EINVAL with `err` (the configuration it would make is wrong: every problem);
 * -ENOENT (NULL, and the route has no overlay); -ENOTSUP (no state is configured); another negative errno.
 */
int gyre_live_set_route(gyre_server_t *s, const char *actor, const char *action, const char *name,
                        const char *route_json, char *err, size_t errlen);

/* Route `name` in force, as JSON in the shape of a YAML route entry (malloc'd), or NULL when there is none. */
char *gyre_live_route_json(gyre_server_t *s, const char *name);

/* Every route in force: {"generation":N,"routes":[{...route..., "overridden":BOOL}]}, appended to `out`.  0, or
 * -E2BIG when `out`'s bound was reached. */
int gyre_live_routes_json(gyre_server_t *s, gyre_buf_t *out);

/* Whether route `name` has an overlay now. */
int gyre_live_route_overridden(gyre_server_t *s, const char *name);

/* The counts /metrics shows: reloads put in force and refused, and the generation in force. */
typedef struct gyre_live_stats {
    uint64_t ok, error, generation;
} gyre_live_stats_t;
void gyre_live_stats(gyre_live_stats_t *st);

#endif
