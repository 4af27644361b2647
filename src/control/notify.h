/*
 * Notifiers (`notifiers:` in the config): where gyre tells people what it saw
 * and what it already did.  Kinds: `webhook` (Prometheus Alertmanager's
 * webhook body, version 4), `slack` and `teams` (their incoming-webhook
 * bodies), `pagerduty` (Events API v2, trigger and resolve by dedup key),
 * `log` (a log line).  gyre_notify_send copies the notice into a bounded
 * queue and returns at once: a sender thread posts it, retried with
 * exponential backoff, never on a worker; failures and drops are counted
 * (gyre_notifications_total{notifier,result}).
 *
 * A notice carries ids and names only (key ids, routes, providers), never a
 * secret; the notifiers' own URLs and routing keys are secrets (env:NAME) and
 * appear in no log or error.
 */
#ifndef GYRE_CONTROL_NOTIFY_H
#define GYRE_CONTROL_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

#define GYRE_NOTICE_MAX_PAIRS 16

typedef struct gyre_notice_pair {
    const char *name, *value;
} gyre_notice_pair_t;

typedef struct gyre_notice {
    const char *alertname;   /* the rule's name, or "budget" ... */
    const char *severity;    /* "critical", "warning", "info" */
    int resolved;            /* 0: firing, 1: resolved */
    const char *fingerprint; /* stable per rule and label set: Alertmanager's fingerprint, PagerDuty's dedup_key */
    gyre_notice_pair_t labels[GYRE_NOTICE_MAX_PAIRS];
    size_t nlabels;
    gyre_notice_pair_t annotations[GYRE_NOTICE_MAX_PAIRS]; /* summary, description, actions (what gyre did) */
    size_t nannotations;
    int64_t starts_us, ends_us; /* unix microseconds; ends_us 0 while firing */
} gyre_notice_t;

typedef struct gyre_notify gyre_notify_t;

/* Starts the sender thread for the config's notifiers (none configured: a handle that sends nothing). */
gyre_notify_t *gyre_notify_create(const gyre_config_t *c);
/* Posts what is queued within `grace_ms`, then stops. */
void gyre_notify_destroy(gyre_notify_t *n, uint64_t grace_ms);

/* Queues `notice` for the notifier named `notifier` (copied).  0, -ENOENT (no such notifier), -ENOBUFS (queue
 * full: dropped and counted). */
int gyre_notify_send(gyre_notify_t *n, const char *notifier, const gyre_notice_t *notice);

/* Whether the config has a notifier of that name. */
int gyre_notify_exists(const gyre_config_t *c, const char *name);

#endif
