/*
 * Notifiers (`notifiers:` in the config): where gyre tells people what it saw
 * and what it already did.  Kinds: `webhook` (Prometheus Alertmanager's
 * webhook body, version 4), `slack` and `teams` (their incoming-webhook
 * bodies), `pagerduty` (Events API v2, trigger and resolve by dedup key),
 * `log` (a log line).  gyre_notify_send copies the notice into a bounded
 * queue and returns at once: a sender thread posts it, retried with
 * exponential backoff, never on a worker; failures and drops are counted
 * (gyre_notifications_total{notifier,kind,result}).
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

/*
 * Bounds.  GYRE_NOTIFY_QUEUE_MAX notices are held at once, all notifiers together: queued, waiting in a
 * digest, or in a body waiting for its next try.  Past it gyre_notify_send drops the notice and counts it
 * (result="dropped"): a receiver that is down for long costs bounded memory, and the newest notices are the
 * ones lost, as the oldest are already in bodies being retried.  A digest body holds at most
 * GYRE_NOTIFY_DIGEST_MAX notices; more in the same interval are left out of it and counted in
 * Alertmanager's truncatedAlerts ("... and N more" for Slack and Teams).
 */
#define GYRE_NOTIFY_QUEUE_MAX 1024
#define GYRE_NOTIFY_DIGEST_MAX 64
/* Retries back off exponentially from 1 s, doubling, capped at 60 s, each wait drawn between half and all of
 * it (jitter, so that notifiers that failed together do not retry together). */
#define GYRE_NOTIFY_BACKOFF_BASE_MS 1000
#define GYRE_NOTIFY_BACKOFF_MAX_MS 60000

/* Starts the sender thread for the config's notifiers (none configured: a handle that sends nothing). */
gyre_notify_t *gyre_notify_create(const gyre_config_t *c);
/* The same with other bounds (tests shorten the backoff); a zero field takes the default above. */
typedef struct gyre_notify_options {
    size_t queue_max;
    uint64_t backoff_base_ms, backoff_max_ms;
} gyre_notify_options_t;
gyre_notify_t *gyre_notify_create_with(const gyre_config_t *c, const gyre_notify_options_t *o);
/* Posts what is queued (digests at once, retries as they come due) within `grace_ms`, then stops; what is left
 * is dropped and counted.  NULL is fine. */
void gyre_notify_destroy(gyre_notify_t *n, uint64_t grace_ms);

/* Queues `notice` for the notifier named `notifier` (copied, each string cut to its bound).  Never waits on
 * the network: a mutex held for a list operation.  0, -ENOENT (no such notifier), -ENOBUFS (queue full:
 * dropped and counted). */
int gyre_notify_send(gyre_notify_t *n, const char *notifier, const gyre_notice_t *notice);

/* Whether the config has a notifier of that name. */
int gyre_notify_exists(const gyre_config_t *c, const char *name);

/*
 * Puts `next`'s notifiers in force (the main thread, SIGHUP, while workers send).  A notifier whose name
 * stays keeps its counters and what it holds, and sends it with its new settings (URL, key, headers); one
 * that is gone drops what it holds (counted) and leaves /metrics; a new one starts.  0, or -E2BIG when the
 * names ever configured would pass 256 (the old set stays).
 */
int gyre_notify_reconfigure(gyre_notify_t *n, const gyre_config_t *next);

/* One notifier's counters for /metrics (gyre_notifications_total{notifier,kind,result}). */
typedef struct gyre_notify_stat {
    const char *name, *kind; /* valid while `n` lives */
    uint64_t sent;           /* bodies a receiver took (2xx); a log line written */
    uint64_t failed;         /* bodies given up: refused (4xx but 429), or every retry spent */
    uint64_t dropped;        /* notices lost: the queue full, the notifier removed, or cut at shutdown */
    uint64_t retried;        /* tries after a failed one (429, 5xx, a connection error, a timeout) */
} gyre_notify_stat_t;
/* Fills up to `max` stats (configured notifiers, in config order); returns how many there are. */
size_t gyre_notify_stats(gyre_notify_t *n, gyre_notify_stat_t *out, size_t max);
/* Notices held now (queued, in digests, awaiting a retry). */
size_t gyre_notify_held(gyre_notify_t *n);

#endif
