/*
 * The admin API, /api/admin/...: changes to what gyre does, behind the admin
 * token (the access stage refuses every other credential with 403).  Each
 * endpoint is a line in the table in admin.c and a function in a file of its
 * own (admin_keys.c, admin_routes.c, ...); every change it makes is recorded
 * in the audit log (control/audit.h) with the object before and after.
 *
 * Admin calls are rare and small: they run on the worker that took them, with
 * the control-plane database's lock held for a few point writes at most.
 * Bodies are JSON objects, at most GYRE_ADMIN_MAX_BODY bytes (413 past it);
 * errors are in OpenAI's error shape and name the field.
 */
#ifndef GYRE_SERVER_ADMIN_H
#define GYRE_SERVER_ADMIN_H

#include <h2o.h>

#include "server/server.h"

#define GYRE_ADMIN_MAX_BODY ((size_t)64 * 1024)

/* One admin request: `id` is the path segment after the endpoint's prefix ("" for the collection). */
typedef struct gyre_admin_req {
    gyre_worker_t *worker;
    h2o_req_t *req;
    const char *id;
    size_t idlen;
    const char *sub; /* the last segment, for a suffix that ends in '/' ("keys/": the key's id); else "" */
    size_t sublen;
    const char *actor; /* who, for the audit log: "admin_token" */
} gyre_admin_req_t;

typedef struct gyre_admin_endpoint {
    const char *method; /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *prefix; /* "/api/admin/keys" */
    int with_id;        /* 0: the path is `prefix`; 1: `prefix`/ID, one segment */
    const char *suffix; /* with_id: an action segment after the id ("rotate" for /keys/ID/rotate), or NULL;
                         * ending in '/' ("keys/"): that segment and one more, any (the request's `sub`) */
    void (*fn)(gyre_admin_req_t *a);
} gyre_admin_endpoint_t;

/* admin_routes.c: the routes in force and live changes to them (server/live.h). */
void gyre_admin_routes_list(gyre_admin_req_t *a);
void gyre_admin_reload(gyre_admin_req_t *a); /* admin_routes.c: POST /api/admin/reload, as SIGHUP */
void gyre_admin_route_put(gyre_admin_req_t *a);
void gyre_admin_route_patch(gyre_admin_req_t *a);
void gyre_admin_route_override_delete(gyre_admin_req_t *a);
/* The endpoints, one file each. */
void gyre_admin_providers_list(gyre_admin_req_t *a);    /* admin_providers.c */
void gyre_admin_providers_add_key(gyre_admin_req_t *a); /* admin_providers.c */
void gyre_admin_providers_remove_key(gyre_admin_req_t *a);

/* What the endpoints share (admin.c): a JSON answer, and the 404 of a gateway with no control-plane state. */
void gyre_admin_respond_json(gyre_admin_req_t *a, int status, const char *json, size_t len);
void gyre_admin_respond_no_state(gyre_admin_req_t *a);
/* An admin endpoint's error in OpenAI's shape: `type` is server_error for a 5xx, invalid_request_error else. */
void gyre_admin_error(h2o_req_t *req, int status, const char *code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* /api/admin/keys: managed gateway keys (admin_keys.c). */
void gyre_admin_keys_create(gyre_admin_req_t *a);
void gyre_admin_keys_list(gyre_admin_req_t *a);
void gyre_admin_keys_show(gyre_admin_req_t *a);
void gyre_admin_keys_revoke(gyre_admin_req_t *a);
void gyre_admin_keys_rotate(gyre_admin_req_t *a);

/* Answers the request when its path is /api/admin or under it and returns 1; 0 for any other path. */
int gyre_admin_handle(gyre_worker_t *w, h2o_req_t *req);

#endif
