/*
 * What alerts do to routing while they fire (control/alerts.c writes, every
 * worker reads on each plan): a target out of its route's rotation
 * (`failover_to_secondary`), a provider key out of its pool (`rotate_key`), a
 * provider's breakers held open (`open_circuit`).  Flags are atomics indexed
 * as the configuration is (routes' targets then fallbacks; providers' keys),
 * so reading them costs a relaxed load and no lock.
 *
 * An override never takes a route's last usable target or a provider's last
 * key: gyre_overrides_set refuses (returns -EBUSY) and the alert records that
 * it could not act.  A configuration reload makes a new table; the alert
 * engine re-applies what still fires by name.
 *
 * Ownership: created per configuration by the server, shared by every worker.
 */
#ifndef GYRE_ROUTE_OVERRIDE_H
#define GYRE_ROUTE_OVERRIDE_H

#include <stdatomic.h>
#include <stddef.h>

#include "config/config.h"

typedef struct gyre_overrides gyre_overrides_t;

gyre_overrides_t *gyre_overrides_create(const gyre_config_t *c);
void gyre_overrides_destroy(gyre_overrides_t *o);

/* Target `ti` of route `ri` (targets first, then fallbacks, as gyre_route_plan numbers them). */
int gyre_overrides_target_out(const gyre_overrides_t *o, size_t ri, size_t ti);
/* Key `ki` of provider `pi`. */
int gyre_overrides_key_out(const gyre_overrides_t *o, size_t pi, size_t ki);
/* Provider `pi`'s circuit held open. */
int gyre_overrides_provider_open(const gyre_overrides_t *o, size_t pi);

/* Sets or clears one; 0, -EBUSY when setting would leave nothing usable, -ERANGE for a bad index. */
int gyre_overrides_set_target_out(gyre_overrides_t *o, size_t ri, size_t ti, int out);
int gyre_overrides_set_key_out(gyre_overrides_t *o, size_t pi, size_t ki, int out);
int gyre_overrides_set_provider_open(gyre_overrides_t *o, size_t pi, int open);

#endif
