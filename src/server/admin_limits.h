/*
 * The admin API's limits endpoints (src/server/admin_limits.c; docs/limits.md): their lines are in admin.c's
 * table.
 */
#ifndef GYRE_SERVER_ADMIN_LIMITS_H
#define GYRE_SERVER_ADMIN_LIMITS_H

#include "control/audit.h"
#include "server/admin.h"

void gyre_admin_limits_list(gyre_admin_req_t *a);
void gyre_admin_limits_put_key(gyre_admin_req_t *a);
void gyre_admin_limits_put_team(gyre_admin_req_t *a);
void gyre_admin_limits_put_agent(gyre_admin_req_t *a);
void gyre_admin_limits_put_user(gyre_admin_req_t *a);
void gyre_admin_limits_delete_key(gyre_admin_req_t *a);
void gyre_admin_limits_delete_team(gyre_admin_req_t *a);
void gyre_admin_limits_delete_agent(gyre_admin_req_t *a);
void gyre_admin_limits_delete_user(gyre_admin_req_t *a);

/* The audit log's writer for these changes: gyre_audit_record once control/audit.c is in the build (the server
 * sets it at start); NULL: changes are made, not recorded. */
extern int (*gyre_admin_limits_audit)(gyre_state_t *st, const gyre_audit_entry_t *e, char *err, size_t errlen);

#endif
