/*
 * Active health probes (`health_check:` on a provider): one thread that, every interval, sends
 * GET base_url + path to each provider that has one, with the provider's first key as that kind sends it, and
 * keeps per provider NAME whether it is healthy: `unhealthy_after` consecutive failures (a non-2xx answer, a
 * timeout, a connection or TLS error) make it unhealthy, one success healthy again.  Bedrock (SigV4) is checked
 * for reachability only: any HTTP answer counts as healthy, no key is sent.
 *
 * Routing is not changed by a probe (the breakers react to live traffic); /readyz counts an unhealthy
 * provider's targets unusable, and /metrics shows gyre_provider_healthy and gyre_provider_health_checks_total.
 * The thread never runs on a worker; readers take a mutex the prober holds only to copy or update a few fields
 * (never across a network call).  No key is logged; a provider's name is logged when its health changes.
 */
#ifndef GYRE_CONTROL_PROBE_H
#define GYRE_CONTROL_PROBE_H

#include <stddef.h>

#include "common/buf.h"
#include "config/config.h"

typedef struct gyre_probe gyre_probe_t;

/* The prober, with its thread started (every signal blocked in it); NULL when out of memory or threads. */
gyre_probe_t *gyre_probe_create(const gyre_config_t *c);
/* Takes the providers of `next` (a live reload): state is kept by provider name, a provider gone is forgotten,
 * a new one starts healthy and is probed at once.  From the main thread while workers run. */
void gyre_probe_reconfigure(gyre_probe_t *p, const gyre_config_t *next);
/* Stops the thread (waits for a probe in flight, at most its timeout) and frees everything. */
void gyre_probe_destroy(gyre_probe_t *p);
/* 1 when `provider` has a health check that is failing now, with why ("health check failing (3 in a row: 503)")
 * written into `why`; 0 otherwise (no check, or healthy). */
int gyre_probe_unhealthy(gyre_probe_t *p, const char *provider, char *why, size_t len);
/* gyre_provider_healthy and gyre_provider_health_checks_total for the providers with a check.  0, or -1 when
 * `b` ran out. */
int gyre_probe_render_metrics(gyre_probe_t *p, gyre_buf_t *b);

#endif
