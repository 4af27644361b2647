/*
 * The walk down a request's plan: after each attempt, what to do next.
 *
 * gyre_route_next() is the one place that decides it, as nginx's
 * ngx_http_upstream_next() does for nginx: it reads the plan (the candidates
 * in order, and this worker's key pools, which say whose breaker is open and
 * whose keys are resting after a 429), where the walk stands (the candidate
 * just tried, how often), how the attempt ended, the route's policy
 * (`fallback_on`, `retries`, `backoff_ms`, `backoff_max_ms`, `deadline_ms`,
 * `midstream: resume`) and the time, and returns the next step: try the same
 * candidate again after a wait, try another, resume a cut stream on one, or
 * give up and answer the last failure.  It changes nothing but the random
 * state it draws a backoff from, so it is tested without a socket
 * (tests/unit/route_next.c); the proxy only carries the step out (timers,
 * connections).
 *
 * gyre_route_record() is the failure accounting that goes with it, as nginx's
 * round robin keeps it in the balancer (ngx_http_upstream_free_round_robin_peer)
 * rather than in the relay: the outcome of an attempt, told to the key that
 * made it, which is what opens breakers and rests keys that the next
 * decision then skips.
 *
 * Weights are the planner's (gyre_route_plan() draws the pool's order by
 * weight, without replacement): walking the plan in order is the weighted
 * choice among the targets not yet tried.
 */
#ifndef GYRE_ROUTE_NEXT_H
#define GYRE_ROUTE_NEXT_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "route/keys.h"
#include "route/route.h"

/* How an attempt ended, as the route's policy reads it. */
typedef enum gyre_route_outcome_kind {
    GYRE_OUTCOME_OK = 0,      /* a whole, good answer (for gyre_route_record only) */
    GYRE_OUTCOME_CONNECT,     /* connecting failed: refused, unreachable, TLS, reset before the answer's head */
    GYRE_OUTCOME_TIMEOUT,     /* an idle, answer, attempt or first-byte timeout, or the route's deadline */
    GYRE_OUTCOME_STATUS,      /* the provider answered an error status (`status`) */
    GYRE_OUTCOME_CUT,         /* the answer ended before it was complete */
    GYRE_OUTCOME_UNAVAILABLE, /* the candidate's turn came and none of its keys was usable (breaker, 429 rest) */
    GYRE_OUTCOME_UNSERVABLE,  /* the request could not be written for the candidate (`status`: 400 when its API
                               * lacks the endpoint or cannot express the request) */
} gyre_route_outcome_kind_t;

typedef struct gyre_route_outcome {
    gyre_route_outcome_kind_t kind;
    int status;              /* STATUS: the provider's; UNSERVABLE: the error's */
    uint64_t retry_after_ms; /* STATUS: the provider's Retry-After (or retry-after-ms); 0: none given */
    int sent;                /* part of the answer already reached the client: it can only be resumed or ended */
    int resumable;           /* sent: the stream can be continued on another attempt (a chat stream re-made event
                              * by event, with no tool call begun) */
} gyre_route_outcome_t;

/*
 * Where one request's walk stands.  The plan and the pools belong to the
 * caller (the call's pool, the worker); the walk only points at them.
 */
typedef struct gyre_route_walk {
    const gyre_route_conf_t *route; /* the policy; NULL for provider/model: no retry, no fallback */
    const gyre_candidate_t *cands;  /* the plan, in order */
    size_t ncands;
    const gyre_keypool_t *keypools; /* this worker's, one per provider */
    size_t cur;                     /* the candidate being tried */
    unsigned tries_on_cur;          /* attempts made on it */
    int last_key;                   /* the key of the latest attempt (-1: none yet)... */
    size_t last_key_cur;            /* ...and the candidate it was taken for */
    uint64_t deadline_at_ms;        /* when the route's deadline passes, on the loop's clock; 0: none */
    int deadline_passed;            /* the deadline fired: nothing more is tried */
} gyre_route_walk_t;

typedef enum gyre_route_step_kind {
    GYRE_STEP_GIVE_UP = 0, /* nothing left to try */
    GYRE_STEP_RETRY,       /* the same candidate again, after wait_ms */
    GYRE_STEP_TRY,         /* candidate `cand`, after wait_ms */
    GYRE_STEP_RESUME,      /* continue the cut stream on candidate `cand` (the same one or another) after wait_ms */
} gyre_route_step_kind_t;

/* What the last failure leaves the client with, when the walk gives up. */
typedef enum gyre_route_final {
    GYRE_FINAL_LAST_FAILURE = 0, /* the last attempt's failure: the provider's error answer, or gyre's own error */
    GYRE_FINAL_UNAVAILABLE,      /* every candidate left is resting: gyre's 503 with Retry-After: retry_after_s */
} gyre_route_final_t;

typedef struct gyre_route_step {
    gyre_route_step_kind_t kind;
    size_t cand;              /* RETRY, TRY, RESUME: the candidate to try */
    uint64_t wait_ms;         /* RETRY, TRY, RESUME: how long to wait first */
    gyre_route_final_t final; /* GIVE_UP: what the answer is */
    int end_stream;           /* GIVE_UP: part of the answer went out: end the stream with the error instead */
    uint64_t retry_after_s;   /* GIVE_UP with GYRE_FINAL_UNAVAILABLE and no byte sent: whole seconds, >= 1 */
} gyre_route_step_t;

/* A walk at the plan's start.  `deadline_at_ms` 0: the route has no deadline. */
void gyre_route_walk_init(gyre_route_walk_t *w, const gyre_route_conf_t *route, const gyre_candidate_t *cands,
                          size_t ncands, const gyre_keypool_t *keypools, uint64_t deadline_at_ms);

/*
 * The next step after attempt `o` on w->cur, at `now_ms`.  Pure but for *rng,
 * from which a backoff is drawn (full jitter).  The rules, in order:
 *
 *   UNAVAILABLE  the next candidate with a usable key, at once, whatever
 *                `fallback_on` says; none: give up, GYRE_FINAL_UNAVAILABLE,
 *                Retry-After the soonest any candidate of the plan is back.
 *   UNSERVABLE   status 400 and a candidate after this one: that one (the
 *                attempt there finds out whether it is usable); else give up.
 *   sent         resumed only when the route has `midstream: resume`, the
 *                stream is resumable and `fallback_on` covers the failure (a
 *                status counts as a cut); else the stream ends with the error.
 *   otherwise    given up unless `fallback_on` covers the failure (connect
 *                and cuts: `connect`; timeouts: `timeout`; a status: the
 *                listed statuses).  A route without a policy never moves on.
 *
 * Moving on: never after the deadline passed.  The same candidate is tried
 * again while it has had no more than `retries` extra tries, after a backoff
 * (uniform in [0, min(backoff_max_ms, backoff_ms * 2^(tries-1))]): at once
 * after a 429 or 529 before any byte was sent when another of its keys is
 * usable (the rate limit was the key's), and when none is, after the first
 * key is back, but only if no
 * later candidate is usable now.  A wait longer than what is left of the
 * deadline (without one: backoff_max_ms) is not waited.  Else the next
 * candidate with a usable key, at once; none: give up.
 */
gyre_route_step_t gyre_route_next(const gyre_route_walk_t *w, const gyre_route_outcome_t *o, uint64_t now_ms,
                                  uint64_t *rng);

/* Moves the walk to the step's candidate (a new one starts with no tries). */
void gyre_route_walk_apply(gyre_route_walk_t *w, const gyre_route_step_t *step);

/*
 * The key for an attempt on w->cur (see gyre_keypool_pick()), remembered by
 * the walk: a retry of the same candidate avoids the key that just failed,
 * while another is usable.  -1: none of the candidate's keys is usable.
 */
int gyre_route_take_key(gyre_route_walk_t *w, gyre_keypool_t *kp, uint64_t now_ms, uint64_t affinity);

/*
 * The failure accounting: the outcome of an attempt, on the key that made it
 * (taken by gyre_route_take_key()).  A 429 or 529 before any byte was sent
 * rests the key until the Retry-After (GYRE_KEYS_DEFAULT_COOLDOWN_MS without
 * one) and counts on its breaker; another status under 500 before any byte
 * was sent is the client's error and counts as a success (the provider
 * answered); everything else after a byte was sent, and every other failure,
 * counts as a failure.  OK counts as a success.
 */
void gyre_route_record(gyre_keypool_t *kp, int key, const gyre_route_outcome_t *o, uint64_t now_ms);

#endif
