/*
 * Limits and budgets (`limits:` in the config, docs/limits.md): requests per
 * minute, tokens per minute, requests in flight and spend per period, per key,
 * team, agent and user, nested: a request passes only if every level that
 * applies to it admits it, and a level that refuses leaves nothing reserved on
 * the others (all or nothing).
 *
 * A request reserves before its call (gyre_limits_reserve: one request, an
 * estimate of its tokens and of its cost, one slot in flight) and settles when
 * it ends (gyre_limits_settle: the real tokens and cost replace the
 * estimates, the slot is given back).  A reservation that is never settled
 * expires after `reservation_ttl`, so what can overshoot a budget is bounded
 * by what is in flight (docs/limits.md states the bound; tests assert it).
 *
 * The counters sit behind a table of functions (gyre_limits_backend_t): the
 * in-memory backend (limits_local.c) is exact for one process; a Redis
 * backend is a file of its own later, with the same contract (docs/limits.md
 * says how).  This file's part is what is the same for every backend: which
 * limits apply to which id (the config's rules), the clock, the notices of
 * soft budgets, the refusal counters and the metrics.
 *
 * Ownership: gyre_limits_create copies what it needs of the config; the
 * object is shared by every worker (the backend's own locking) and freed with
 * gyre_limits_destroy once the workers are gone.
 */
#ifndef GYRE_CONTROL_LIMITS_H
#define GYRE_CONTROL_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "config/config.h"
#include "control/notify.h"
#include "control/principal.h"

typedef enum gyre_limit_level {
    GYRE_LIMIT_KEY = 0,
    GYRE_LIMIT_TEAM,
    GYRE_LIMIT_AGENT,
    GYRE_LIMIT_USER,
    GYRE_LIMIT_LEVELS,
} gyre_limit_level_t;

typedef enum gyre_limit_kind {
    GYRE_LIMIT_RPM = 0,
    GYRE_LIMIT_TPM,
    GYRE_LIMIT_CONCURRENCY,
    GYRE_LIMIT_BUDGET,
    GYRE_LIMIT_KINDS,
} gyre_limit_kind_t;

/* "key", "team", "agent", "user"; "rpm", "tpm", "concurrency", "budget". */
const char *gyre_limit_level_name(gyre_limit_level_t level);
const char *gyre_limit_kind_name(gyre_limit_kind_t kind);

/* Money inside the limits is counted in nano-dollars (1e-9 USD), as integers, so that sums are exact. */
#define GYRE_NUSD_PER_USD 1000000000LL

/* What one request asks: its id at each level (NULL or "": the level does not apply, except the key level,
 * which always applies: "" is the open gateway's one anonymous caller) and its estimates. */
typedef struct gyre_limit_ask {
    const char *ids[GYRE_LIMIT_LEVELS];
    const gyre_limit_set_t *key_limits; /* a managed key's own limits (they win over the config's), or NULL */
    uint64_t tokens;                    /* estimated tokens, input and output */
    int64_t cost_nusd;                  /* estimated cost (the dearest target of its plan), nano-USD */
} gyre_limit_ask_t;

/* The limits of one level for one request, as the rules resolved them: what the backend enforces. */
typedef struct gyre_limit_level_ask {
    const char *id;        /* NULL: the level does not apply */
    gyre_limit_set_t set;  /* 0 / budget < 0: none */
    int explicit_id;       /* the config names this id itself (not a "*" rule): its spend is a metric */
    const char *notify;    /* the notifier for its budget's thresholds, or NULL */
} gyre_limit_level_ask_t;

struct gyre_limit_entry; /* a backend's counters of one (level, id) */

/*
 * A request's reservation: filled by reserve, given back by settle exactly once.  It lives in the request (the
 * call, src/proxy/call.h) and holds what settle needs to undo the estimates.
 */
typedef struct gyre_limit_hold {
    struct gyre_limit_entry *entries[GYRE_LIMIT_LEVELS]; /* NULL where nothing was reserved */
    int64_t epoch;      /* the reservation's expiry bucket (backend's) */
    uint64_t tokens;    /* reserved tokens */
    int64_t cost_nusd;  /* reserved spend */
    int active;         /* 1 between reserve and settle */
} gyre_limit_hold_t;

/* Why a request was refused: the first level (key, team, agent, user) and limit that did not admit it. */
typedef struct gyre_limit_refusal {
    gyre_limit_level_t level;
    gyre_limit_kind_t kind;
    char id[GYRE_PRINCIPAL_ID_MAX];
    uint64_t limit;     /* rpm, tpm, concurrency */
    double budget_usd;  /* budget */
    gyre_budget_period_t period;
    int64_t retry_us;   /* until the request could pass (a budget: until its period ends; concurrency: 1 s) */
    int too_large;      /* the request's estimate alone is over the limit: waiting will not help */
} gyre_limit_refusal_t;

/* The key level's request and token limits after a reservation: OpenAI's x-ratelimit-* headers. */
typedef struct gyre_limit_status {
    int has_rpm, has_tpm;
    uint64_t rpm, rpm_remaining, tpm, tpm_remaining;
    int64_t rpm_reset_us, tpm_reset_us; /* until the bucket is full again */
} gyre_limit_status_t;

/* What one (level, id) has used now (GET /api/admin/limits, tests). */
typedef struct gyre_limit_usage {
    uint64_t requests_in_window; /* rpm: the bucket's debt, in requests (rounded up) */
    uint64_t tokens_in_window;   /* tpm: the bucket's debt, in tokens (rounded up) */
    uint32_t inflight;           /* live reservations (not expired) */
    int64_t reserved_nusd;       /* live reserved spend */
    int64_t spent_nusd;          /* settled spend in the current period */
    int64_t period_start_us;     /* unix µs, UTC: the current period's start (0: no budget) */
    unsigned alerted;            /* thresholds already notified this period: 1 = 50 %, 2 = 80 %, 4 = 100 % */
} gyre_limit_usage_t;

/* A soft (or notifying) budget's threshold crossed at settle: bit 1 50 %, 2 80 %, 4 100 %. */
#define GYRE_LIMIT_ALERT_50 1u
#define GYRE_LIMIT_ALERT_80 2u
#define GYRE_LIMIT_ALERT_100 4u

typedef struct gyre_limits gyre_limits_t;

/*
 * The backend's table.  Every function takes `now_us` (unix microseconds, UTC) from the caller, so tests drive
 * the clock.  reserve returns 0 with `hold` filled (and `status` for the key level), or -EAGAIN with `why`; it is
 * all or nothing over the levels.  settle gives the hold back once (a second call does nothing) and charges
 * `tokens` and `cost_nusd`; `crossed[level]` gets the budget thresholds this settle crossed for the first time
 * in their period.  usage reads one (level, id) (-ENOENT: never seen).
 */
typedef struct gyre_limits_backend {
    const char *name;
    void *(*create)(void);
    void (*destroy)(void *state);
    int (*reserve)(void *state, const gyre_limit_level_ask_t levels[GYRE_LIMIT_LEVELS], uint64_t tokens,
                   int64_t cost_nusd, int64_t ttl_us, int64_t now_us, gyre_limit_hold_t *hold,
                   gyre_limit_refusal_t *why, gyre_limit_status_t *status);
    void (*settle)(void *state, gyre_limit_hold_t *hold, uint64_t tokens, int64_t cost_nusd,
                   const gyre_limit_level_ask_t levels[GYRE_LIMIT_LEVELS], int64_t ttl_us, int64_t now_us,
                   unsigned crossed[GYRE_LIMIT_LEVELS]);
    int (*usage)(void *state, gyre_limit_level_t level, const char *id, const gyre_limit_set_t *set, int64_t ttl_us,
                 int64_t now_us, gyre_limit_usage_t *out);
} gyre_limits_backend_t;

extern const gyre_limits_backend_t gyre_limits_local; /* limits_local.c: this process's memory */

/* Where soft budgets' notices go: gyre_notify_send's shape, set at start (NULL: none sent). */
typedef int (*gyre_limits_notify_fn)(void *arg, const char *notifier, const gyre_notice_t *notice);

/* From `limits:` (NULL when the config has none: then nothing is limited and the stage costs nothing). */
gyre_limits_t *gyre_limits_create(const gyre_config_t *config);
void gyre_limits_destroy(gyre_limits_t *l);
/* A live change: the next config's rules replace these; counters of every (level, id) are kept. */
void gyre_limits_reconfigure(gyre_limits_t *l, const gyre_config_t *next);
/* Test hooks and wiring: the clock (default: the real time) and the notifier (default: none). */
void gyre_limits_set_clock(gyre_limits_t *l, int64_t (*now_us)(void *arg), void *arg);
void gyre_limits_set_notify(gyre_limits_t *l, gyre_limits_notify_fn fn, void *arg);
int64_t gyre_limits_now(const gyre_limits_t *l);
/* The config's default output estimate (`default_max_tokens`) and whether any level has a budget. */
uint64_t gyre_limits_default_max_tokens(const gyre_limits_t *l);
int gyre_limits_has_budgets(const gyre_limits_t *l);

/* Reserves for one request: 0, or -EAGAIN with `why` filled (the refusal is counted). */
int gyre_limits_reserve(gyre_limits_t *l, const gyre_limit_ask_t *ask, gyre_limit_hold_t *hold,
                        gyre_limit_refusal_t *why, gyre_limit_status_t *status);
/* Settles a hold once (a hold already settled, or never reserved, is left alone); `ask` is the same ids as at
 * reserve (the notices name them). */
void gyre_limits_settle(gyre_limits_t *l, const gyre_limit_ask_t *ask, gyre_limit_hold_t *hold, uint64_t tokens,
                        int64_t cost_nusd);
/* One (level, id)'s use now (-ENOENT when it was never seen). */
int gyre_limits_usage(gyre_limits_t *l, gyre_limit_level_t level, const char *id, gyre_limit_usage_t *out);

/* The UTC calendar period `now_us` is in: its start (a day from 00:00, a week from Monday 00:00, a month from
 * the 1st 00:00), and in *next_us the next one's start. */
int64_t gyre_limits_period_start(int64_t now_us, gyre_budget_period_t period, int64_t *next_us);

/*
 * The admin API's change of one rule (PUT /api/admin/limits/{level}/{id}): `set` (NULL: the rule is removed) replaces
 * the rule of `id` ("*" included) at `level` now, and stays over every later config reload until the process
 * ends (docs/limits.md).  `before` and `after` get the rule as JSON (NULL when there was none / is none; the caller
 * frees them).  0, or -EINVAL when `id` is not a valid id.
 */
int gyre_limits_set_rule(gyre_limits_t *l, gyre_limit_level_t level, const char *id, const gyre_limit_set_t *set,
                         const char *notify, char **before, char **after);
/* Every rule in force with its id's use now, as JSON (GET /api/admin/limits); the caller frees it. */
char *gyre_limits_to_json(gyre_limits_t *l);

/* The refusal's message: "rate limit of 60 requests per minute for key svc-a reached; resets in 12 s". */
void gyre_limits_describe(const gyre_limit_refusal_t *why, char *out, size_t len);
/* A duration as OpenAI's x-ratelimit-reset-* headers write it: "20ms", "1s", "8.64s", "6m0s". */
size_t gyre_limits_format_reset(int64_t us, char *out, size_t len);

/* Appends gyre_limit_refusals_total{level,limit}, gyre_budget_spent_usd{level,id} (ids the config names)
 * and gyre_limit_queue_depth (0: there is no queue) to a Prometheus exposition; `l` may be NULL. */
void gyre_limits_render_metrics(gyre_limits_t *l, gyre_buf_t *out);

#endif
