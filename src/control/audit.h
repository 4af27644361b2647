/*
 * The audit log: every change to what gyre does (managed keys, limits,
 * provider keys, routes and weights, config reloads, alert silences, and
 * later datasets and deployments) recorded with who made it, when, what, and
 * the object before and after, as JSON with every secret left out.  Kept in
 * the control-plane database (control/state.h); read with GET /api/audit and
 * `gyre audit`.
 */
#ifndef GYRE_CONTROL_AUDIT_H
#define GYRE_CONTROL_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "control/state.h"

typedef struct gyre_audit_entry {
    const char *actor;  /* "admin_token", "cli:<user>", "sighup", "alert:<rule>" */
    const char *action; /* "key.create", "key.revoke", "route.update", "config.reload", ... */
    const char *object; /* what it acted on: a key id, a route name, the config file */
    const char *before; /* JSON, or NULL */
    const char *after;  /* JSON, or NULL */
} gyre_audit_entry_t;

/* Records one change (its time is now).  0, or a negative errno with `err` filled. */
int gyre_audit_record(gyre_state_t *st, const gyre_audit_entry_t *e, char *err, size_t errlen);

#endif
