/*
 * Alert events in the control-plane database (control/state.h): the table
 * `alert_events`, written by the evaluator's thread (one INSERT per
 * transition, rare), read by `gyre alerts`.  Never on the evaluation path's
 * critical part: a write that fails is logged and the event stays in the
 * engine's memory.
 */
#ifndef GYRE_CONTROL_ALERTS_STORE_H
#define GYRE_CONTROL_ALERTS_STORE_H

#include <stddef.h>

#include "common/buf.h"
#include "control/alerts.h"
#include "control/state.h"

/* Creates the table when it is not there.  0, or -EIO with `err` saying why. */
int gyre_alerts_store_migrate(gyre_state_t *st, char *err, size_t errlen);
/* Stores one event (a gyre_alerts_hooks_t `event` hook: `data` is the gyre_state_t). */
void gyre_alerts_store_event_cb(void *data, const gyre_alert_event_t *ev);
/* The newest `limit` events as a JSON array, newest first.  0, or -EIO / -E2BIG with `err` set. */
int gyre_alerts_store_list(gyre_state_t *st, size_t limit, gyre_buf_t *out, char *err, size_t errlen);

#endif
