/*
 * The admin API's limits endpoints (src/server/admin_limits.c; docs/limits.md): their lines are in admin.c's
 * table.
 */
#ifndef GYRE_SERVER_ADMIN_LIMITS_H
#define GYRE_SERVER_ADMIN_LIMITS_H

#include "control/audit.h"
#include "control/limits.h"
#include "control/state.h"
#include "server/admin.h"

void gyre_admin_limits_list(gyre_admin_req_t *a);
/* At start, after the config's: the rules set through the API before (kept in the control-plane database),
 * applied again in the order they were made.  The number applied, or -EIO with `err` filled. */
int gyre_admin_limits_restore(gyre_limits_t *l, gyre_state_t *st, char *err, size_t errlen);
void gyre_admin_limits_put_key(gyre_admin_req_t *a);
void gyre_admin_limits_put_team(gyre_admin_req_t *a);
void gyre_admin_limits_put_agent(gyre_admin_req_t *a);
void gyre_admin_limits_put_user(gyre_admin_req_t *a);
void gyre_admin_limits_delete_key(gyre_admin_req_t *a);
void gyre_admin_limits_delete_team(gyre_admin_req_t *a);
void gyre_admin_limits_delete_agent(gyre_admin_req_t *a);
void gyre_admin_limits_delete_user(gyre_admin_req_t *a);

#endif
