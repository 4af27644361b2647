/*
 * The bodies the notifiers post, as pure functions of the notices (no clock,
 * no I/O), so that each is unit-tested byte for byte and fuzzed:
 *
 *   webhook    Prometheus Alertmanager's webhook payload, version "4"
 *   slack      Slack's incoming-webhook message: {"text": ...} (mrkdwn)
 *   teams      a Microsoft Teams Workflows message carrying one Adaptive Card
 *   pagerduty  a PagerDuty Events API v2 event (trigger or resolve)
 *   log        one log line (gyre_logf escapes it)
 *
 * This file is the one place where a notice's strings are encoded for a
 * receiver: every string is cut to a bound (at a character boundary) and made
 * well-formed UTF-8 (U+FFFD for ill-formed bytes), Slack's control characters
 * (& < >) are escaped so that a label cannot mention @channel or forge a
 * link, and cJSON escapes the rest, so whatever a label holds the body is
 * valid JSON (fuzz/fuzz_notify_body.c).
 */
#ifndef GYRE_CONTROL_NOTIFY_BODY_H
#define GYRE_CONTROL_NOTIFY_BODY_H

#include <stddef.h>
#include <stdint.h>

#include "control/notify.h"

/* Bounds on what one notice puts in a body, in bytes (cut at a character boundary). */
#define GYRE_NOTIFY_NAME_MAX 128          /* a label's or an annotation's name, the alert's name */
#define GYRE_NOTIFY_VALUE_MAX 4096        /* a label's or an annotation's value */
#define GYRE_NOTIFY_PD_SUMMARY_MAX 1024   /* PagerDuty's payload.summary (its documented maximum) */
#define GYRE_NOTIFY_PD_DEDUP_MAX 255      /* PagerDuty's dedup_key (its documented maximum) */

/* What a body says about the gateway itself. */
typedef struct gyre_notify_body_ctx {
    const char *receiver;     /* the notifier's name (Alertmanager's `receiver`) */
    const char *external_url; /* where gyre listens ("http://127.0.0.1:8080"): externalURL, generatorURL */
    const char *source;       /* PagerDuty's payload.source: the host gyre runs on */
} gyre_notify_body_ctx_t;

/*
 * Each returns a NUL-terminated body the caller frees with free().  `v` holds
 * `n` notices (n >= 1) to be sent as one body (a digest); `truncated` more
 * were left out (Alertmanager's truncatedAlerts; "and N more" for people).
 */
char *gyre_notify_body_webhook(const gyre_notify_body_ctx_t *x, const gyre_notice_t *const *v, size_t n,
                               size_t truncated);
char *gyre_notify_body_slack(const gyre_notify_body_ctx_t *x, const gyre_notice_t *const *v, size_t n,
                             size_t truncated);
char *gyre_notify_body_teams(const gyre_notify_body_ctx_t *x, const gyre_notice_t *const *v, size_t n,
                             size_t truncated);
/* PagerDuty has no batching: one event per notice. */
char *gyre_notify_body_pagerduty(const gyre_notify_body_ctx_t *x, const char *routing_key, const gyre_notice_t *v);
/* The `log` notifier's line (without the newline): "notifier NAME: [FIRING] alertname (severity) k=v ...". */
char *gyre_notify_body_log(const gyre_notify_body_ctx_t *x, const gyre_notice_t *v);

/* The notice's fingerprint: its own when it is at most 16 printable bytes, else 16 hex digits of a hash of it
 * (or, without one, of its alert name and labels). */
void gyre_notify_fingerprint(const gyre_notice_t *v, char out[17]);
/* Unix microseconds as RFC 3339 in UTC, fractional seconds without trailing zeros, as Go's time.Time
 * marshals ("2026-12-06T23:04:52.5Z"); 0 is Go's zero time "0001-01-01T00:00:00Z". */
void gyre_notify_rfc3339(int64_t us, char out[40]);

#endif
