/*
 * gyre's configuration: the YAML file (or the embedded default) turned into
 * plain structs, with every reference resolved and every secret loaded.
 *
 * Loading never stops at the first problem: it collects every error with the
 * file, line and field name, so `gyre check-config` can report them all at
 * once.  Error texts never contain a secret (a key's value is never echoed,
 * only where it was to come from).
 *
 * Ownership: gyre_config_load() returns a config that the caller frees with
 * gyre_config_free(); everything inside belongs to it.
 */
#ifndef GYRE_CONFIG_H
#define GYRE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "config/prices.h"

typedef enum gyre_provider_kind {
    GYRE_PROVIDER_OPENAI = 1, /* OpenAI and every OpenAI-compatible API */
    GYRE_PROVIDER_AZURE,      /* Azure OpenAI: deployment URLs, api-version, api-key header */
    GYRE_PROVIDER_ANTHROPIC,  /* the Anthropic Messages API */
    GYRE_PROVIDER_GEMINI,     /* Google Gemini generateContent / streamGenerateContent */
    GYRE_PROVIDER_BEDROCK,    /* AWS Bedrock Converse / ConverseStream, SigV4-signed */
} gyre_provider_kind_t;

/* How a provider's keys share its traffic. */
typedef enum gyre_key_strategy {
    GYRE_KEYS_ROUND_ROBIN = 0,
    GYRE_KEYS_WEIGHTED,
} gyre_key_strategy_t;

/*
 * A circuit breaker's settings (one breaker per provider key, per worker):
 * it opens after `failures` consecutive failures, or when at least
 * `min_requests` calls in the last `window_ms` failed at `error_rate_pct`
 * percent or more; after `cooldown_ms` one probe is let through (half-open),
 * whose success closes it again.  failures == 0 disables the breaker.
 */
typedef struct gyre_breaker_conf {
    unsigned failures;       /* default 5 */
    unsigned error_rate_pct; /* default 50 */
    unsigned min_requests;   /* default 20 */
    uint64_t window_ms;      /* default 10000 */
    uint64_t cooldown_ms;    /* default 5000 */
} gyre_breaker_conf_t;

typedef struct gyre_provider_conf {
    char *name;
    gyre_provider_kind_t kind;
    char *base_url;
    /* base_url, parsed */
    int is_https;
    char *host;
    uint16_t port;
    char *base_path; /* "/v1" for http://h:p/v1; "" when the URL has no path */
    /* Keys, resolved (the secret values) and their ids ("primary#0"), which
     * are what logs, traces and metrics name instead. */
    char **keys;
    char **key_ids;
    unsigned *key_weights; /* `weight:` of each key (default 1) */
    size_t nkeys;
    gyre_key_strategy_t key_strategy;
    gyre_breaker_conf_t breaker;
    /* Dialect settings.  anthropic: `anthropic-version` header (api_version,
     * default "2023-06-01"); anthropic and bedrock: the max_tokens sent when a
     * request has none (max_tokens, default 4096); azure: the api-version
     * query parameter (api_version, default "2024-10-21"); bedrock: the
     * signing region (region, default taken from the host name, else
     * "us-east-1").  Bedrock keys are "ACCESS_KEY_ID:SECRET_ACCESS_KEY" or
     * "ACCESS_KEY_ID:SECRET_ACCESS_KEY:SESSION_TOKEN" (SigV4), or a Bedrock
     * API key without ':' (sent as a bearer token). */
    char *api_version;
    unsigned max_tokens;
    char *region;
    char *ca_file;       /* extra trust anchors for https; NULL: the system store */
    int tls_verify;      /* 1 unless `tls_verify: false` */
    uint64_t timeout_ms; /* connect and per-read idle limit upstream; also the whole answer's, until gyre sends its
                          * first byte on (proxy.c) */
    size_t max_response_bytes; /* a whole (non-streamed) answer read before it is sent on; default the root's */
    /* `prices: {MODEL: {input, output, cached_input, cache_write}}`: what this provider charges (USD per 1M
     * tokens), before the shared table, for the calls it answered; NULL when it has none. */
    gyre_prices_t *prices;
    /* `direct:` whether clients may address this provider as "name/model" (default: the root's `direct:`). */
    int direct;
    /* `health_check:` an active probe (GET base_url + path with the first key, every interval; control/probe.c).
     * hc_enabled 0: none.  Defaults: 30s, 5s, "/models", 2. */
    int hc_enabled;
    uint64_t hc_interval_ms, hc_timeout_ms;
    char *hc_path;
    unsigned hc_unhealthy_after;
    int line;
} gyre_provider_conf_t;

typedef struct gyre_target_conf {
    size_t provider; /* index into config->providers */
    char *model;
    unsigned weight;
} gyre_target_conf_t;

typedef enum gyre_route_strategy {
    GYRE_STRATEGY_WEIGHTED = 0, /* random by weight (default) */
    GYRE_STRATEGY_LEAST_LATENCY, /* lowest recent latency (EWMA per target) */
    GYRE_STRATEGY_LEAST_INFLIGHT, /* fewest requests in flight */
    GYRE_STRATEGY_CHEAPEST,       /* lowest price per token (data/prices.json) */
} gyre_route_strategy_t;

/* What failures move a request on to the next target (`fallback_on:`). */
#define GYRE_FALLBACK_CONNECT 0x1u /* refused, unreachable, TLS failure, reset before an answer */
#define GYRE_FALLBACK_TIMEOUT 0x2u /* connect, first-byte, attempt or read timeout */
#define GYRE_FALLBACK_MAX_STATUSES 16

/* ---- The loop (issue 14): scorers and guardrails, feedback metrics, clusters, datasets. ---- */

/* A scorer's kind (`type:` in `scorers:`, src/config/scorers.c). */
typedef enum gyre_scorer_kind {
    GYRE_SCORER_JSON_VALID = 1, /* the answer is valid JSON */
    GYRE_SCORER_JSON_SCHEMA,    /* ... and conforms to `schema:` */
    GYRE_SCORER_REGEX,          /* `must:` patterns all match, `must_not:` none (POSIX ERE) */
    GYRE_SCORER_REFUSAL,        /* the answer refuses (a lexicon, plus `terms:`); passes when it does not */
    GYRE_SCORER_TOOL_ARGS,      /* every tool call's arguments are valid against its tool's schema */
    GYRE_SCORER_LENGTH,         /* min_chars <= the answer's length <= max_chars */
    GYRE_SCORER_LATENCY,        /* latency <= max_latency */
    GYRE_SCORER_COST,           /* cost <= max_cost */
    GYRE_SCORER_TOXICITY,       /* no term of a toxicity lexicon (plus `terms:`) */
    GYRE_SCORER_JUDGE,          /* an LLM judge through one of gyre's routes (src/loop/judge.c) */
} gyre_scorer_kind_t;

typedef struct gyre_scorer_conf {
    char *name;
    gyre_scorer_kind_t kind;
    char *version;       /* stored with every score ("1" unless given) */
    double sample;       /* online: the share of matching calls scored after the answer (0: offline only) */
    char **routes;       /* online: only these routes (none: every route) */
    size_t nroutes;
    char **agents;       /* online: only these agents (none: every agent) */
    size_t nagents;
    char *schema_json;   /* json_schema: the schema, compact JSON */
    char **must, **must_not; /* regex */
    size_t nmust, nmust_not;
    size_t min_chars, max_chars; /* length (max 0: none) */
    uint64_t max_latency_ms;     /* latency */
    double max_cost_usd;         /* cost */
    char **terms;                /* refusal, toxicity: terms added to the built-in lexicon */
    size_t nterms;
    /* judge */
    char *judge_route;   /* the route the judge's calls go through */
    char *rubric;        /* correctness | instruction_following | grounding | toxicity | tool_use | custom */
    char *prompt;        /* custom: the template ({{task}}, {{answer}}, {{reference}}, {{context}}) */
    unsigned concurrency; /* judge calls at once (default 4) */
    unsigned retries;     /* a malformed verdict is asked again this many times (default 2) */
    uint64_t timeout_ms;  /* one judge call (default 60000) */
    int line;
} gyre_scorer_conf_t;

/* What an in-line guardrail does when its check fails. */
typedef enum gyre_guard_action {
    GYRE_GUARD_DENY = 1, /* a 4xx in the client's dialect naming the check */
    GYRE_GUARD_RETRY,    /* the answer failed: try the route's next target */
    GYRE_GUARD_FLAG,     /* answer as it is; the trace records the failed check */
} gyre_guard_action_t;

/* A route's `guardrails:` entry. */
typedef struct gyre_guardrail_conf {
    size_t scorer;    /* index into config->scorers (a heuristic kind) */
    int on_request;   /* `on: request` (the last user message) rather than `on: response` (the default) */
    gyre_guard_action_t action;
    int line;
} gyre_guardrail_conf_t;

/* A feedback metric (`feedback: metrics:`, src/config/feedback.c). */
typedef enum gyre_metric_kind {
    GYRE_METRIC_BOOLEAN = 1,
    GYRE_METRIC_NUMBER,
    GYRE_METRIC_CATEGORY,
} gyre_metric_kind_t;

typedef struct gyre_feedback_metric_conf {
    char *name;
    gyre_metric_kind_t kind;
    double min, max;    /* number: the range (both 0: any) */
    char **categories;  /* category: the allowed values */
    size_t ncategories;
    int higher_is_better; /* default 1 (`optimize: max`); 0 for `optimize: min` */
    int line;
} gyre_feedback_metric_conf_t;

/* `clusters:` (src/config/clusters.c). */
typedef struct gyre_clusters_conf {
    unsigned k;              /* 0: chosen automatically */
    unsigned min_sessions;   /* a cluster with fewer distinct sessions is not shown by name or example (default 5) */
    char *embeddings_route;  /* NULL: the built-in local featuriser */
    char *naming_route;      /* NULL: named by distinctive terms only */
    uint64_t every_ms;       /* gyre serve re-clusters this often (0: only on demand) */
    int64_t window_us;       /* over the traces of this long before now (default 7d) */
    unsigned seed;           /* default 1 */
    int line;
} gyre_clusters_conf_t;

typedef struct gyre_route_conf {
    char *name;
    gyre_target_conf_t *targets; /* the pool the strategy chooses from */
    size_t ntargets;
    unsigned total_weight;
    gyre_target_conf_t *fallbacks; /* tried in order once the pool is exhausted */
    size_t nfallbacks;
    gyre_route_strategy_t strategy;
    unsigned fallback_on;                                 /* GYRE_FALLBACK_* */
    unsigned short fallback_statuses[GYRE_FALLBACK_MAX_STATUSES]; /* default 429 500 502 503 504 529 */
    size_t nfallback_statuses;
    unsigned retries;           /* extra tries of one target before moving on (default 0) */
    uint64_t backoff_ms;        /* first retry's backoff ceiling (full jitter), doubling (default 100) */
    uint64_t backoff_max_ms;    /* the ceiling's ceiling (default 5000) */
    uint64_t attempt_timeout_ms; /* one attempt, until its answer is complete (0: none) */
    uint64_t deadline_ms;        /* every attempt together (0: none) */
    uint64_t first_byte_timeout_ms; /* a stream's first event (0: none) */
    int midstream_resume;        /* `midstream: resume` */
    int affinity_session;        /* `affinity: session` */
    int cache;                   /* `cache:` present and enabled */
    uint64_t cache_ttl_ms;       /* default 300000 */
    size_t cache_max_bytes;      /* default 64 MiB */
    int capture;                 /* `capture:` the traces keep request and response bodies (default true) */
    unsigned redact;             /* `redact:` GYRE_REDACT_* bits (config/redact_kinds.h); default the root's */
    gyre_guardrail_conf_t *guardrails; /* `guardrails:` in-line checks, in order (src/config/scorers.c) */
    size_t nguardrails;
    int line;
} gyre_route_conf_t;

/*
 * `otlp:` spans exported to an OpenTelemetry collector over OTLP/HTTP JSON
 * (src/otlp/otlp.h).  endpoint NULL: no export.  Header values may be
 * secrets (env:NAME, file:PATH, as provider keys are): they are sent, never
 * logged or echoed in an error.
 */
typedef struct gyre_otlp_conf {
    char *endpoint;       /* http(s)://host[:port]/path, e.g. http://127.0.0.1:4318/v1/traces */
    char **header_names;  /* `headers: {name: value}` */
    char **header_values; /* resolved */
    size_t nheaders;
    uint64_t timeout_ms;  /* one POST, connect to answer [10000] */
    size_t batch_max;     /* spans per POST [512] */
    uint64_t interval_ms; /* a batch that is not full is posted this long after its first span [1000] */
    size_t queue_max;     /* spans waiting, all workers together; past it they are dropped and counted [65536] */
    char *service_name;   /* the resource's service.name ["gyre"] */
    char *ca_file;        /* extra trust anchors for an https endpoint; NULL: the system store */
} gyre_otlp_conf_t;

/*
 * `auth:` who may use the gateway (src/control/access.h decides per request).
 * Client keys call models (and may post spans to /v1/traces); the read token
 * reads /api (and under it) and /metrics; the admin token may do all of that.  Every
 * secret is loaded here (literal, env:NAME, file:PATH; a keys file holds one
 * key a line) and is never echoed in an error.
 */
typedef enum gyre_auth_mode {
    GYRE_AUTH_UNSET = 0, /* no `auth:` section: open, which only a loopback listener may be */
    GYRE_AUTH_NONE,      /* `auth: none`: open on purpose, on any address (with a warning) */
    GYRE_AUTH_KEYS,      /* `auth: {keys, admin_token, read_token}` */
} gyre_auth_mode_t;

#define GYRE_AUTH_MIN_SECRET_LEN 16  /* shorter keys and tokens are a config error: too easy to guess */
#define GYRE_AUTH_MAX_SECRET_LEN 512 /* longer ones are a config error: they travel in one header */
#define GYRE_AUTH_KEY_NAME_MAX 63 /* a config key's id, team and agent (control/principal.h's bound) */
#define GYRE_AUTH_MAX_KEY_FILE_BYTES ((size_t)1 << 20) /* a `file:` of client keys, one a line */

/* Who a client key of `auth: keys:` is: its mapping form {key, id, team, agent}; a plain string gets the id
 * "auth.keys[N]" (N its place among the resolved keys, a keys file's lines counted one by one) and no team. */
typedef struct gyre_auth_key_meta {
    char *id, *team, *agent; /* team, agent: "" when not given */
} gyre_auth_key_meta_t;

typedef struct gyre_auth_conf {
    gyre_auth_mode_t mode;
    char **keys; /* client keys, resolved */
    size_t nkeys;
    char *admin_token; /* NULL when not configured */
    char *read_token;  /* NULL when not configured */
    gyre_auth_key_meta_t *key_meta; /* one per key, in the same order (NULL: plain ids "auth.keys[N]") */
} gyre_auth_conf_t;

/*
 * `notifiers:` where alerts and budget warnings are sent (src/control/notify.h sends them).  Each is named; an
 * alert's action names one.  `url` and `routing_key` are secrets (literal, env:NAME or file:PATH) loaded here
 * and never echoed: logs and errors name the notifier, and `url_shown` is what may be shown of its URL
 * ("https://events.pagerduty.com" for a literal URL: its scheme and host only; "env:SLACK_WEBHOOK_URL" for one
 * from the environment).
 */
typedef enum gyre_notifier_kind {
    GYRE_NOTIFIER_WEBHOOK = 1, /* Prometheus Alertmanager's webhook body (version 4) */
    GYRE_NOTIFIER_SLACK,       /* Slack's incoming-webhook body */
    GYRE_NOTIFIER_TEAMS,       /* Microsoft Teams (Workflows): an Adaptive Card message */
    GYRE_NOTIFIER_PAGERDUTY,   /* PagerDuty Events API v2 */
    GYRE_NOTIFIER_LOG,         /* a log line, nothing posted */
} gyre_notifier_kind_t;

#define GYRE_NOTIFIER_DEFAULT_TIMEOUT_MS 5000
#define GYRE_NOTIFIER_DEFAULT_RETRIES 5

typedef struct gyre_notifier_conf {
    char *name;
    gyre_notifier_kind_t kind;
    char *url;         /* the secret URL, resolved; NULL for `log` */
    char *url_shown;   /* what logs may say of it (never a secret) */
    char *routing_key; /* pagerduty only: the integration's routing key (a secret) */
    uint64_t timeout_ms; /* one POST, connecting included [5000] */
    unsigned retries;    /* tries after the first, exponential backoff with jitter from 1 s, capped at 60 s [5] */
    uint64_t digest_ms;  /* 0: each notice alone; else notices within this interval go as one body */
    char *ca_file;       /* extra trust anchors for https; NULL: the system store */
    char **header_names, **header_values; /* `headers:`, values resolved (they may be secrets) */
    size_t nheaders;
    int line; /* where it was defined */
} gyre_notifier_conf_t;

/*
 * `alerts:` rules the gateway evaluates in-process every second (src/control/alerts.h; docs/alerts.md).  The
 * condition "SIGNAL OP VALUE[UNIT]" is parsed here; `threshold` is in the signal's own unit: milliseconds for
 * latencies, a fraction (0.05 for 5%) for rates, requests per second, tokens per minute, USD per hour, a count
 * for inflight and queue_depth, bytes for the trace log's lag and spool.
 */
typedef enum gyre_alert_signal {
    GYRE_SIG_P50_LATENCY = 0,
    GYRE_SIG_P95_LATENCY,
    GYRE_SIG_P99_LATENCY,
    GYRE_SIG_TTFT_P95,
    GYRE_SIG_ERROR_RATE,
    GYRE_SIG_RATE_LIMITED_RATE,
    GYRE_SIG_REQUEST_RATE,
    GYRE_SIG_TOKENS_PER_MINUTE,
    GYRE_SIG_COST_PER_HOUR,
    GYRE_SIG_INFLIGHT,
    GYRE_SIG_QUEUE_DEPTH,
    GYRE_SIG_TRACE_LOG_LAG,
    GYRE_SIG_TRACE_SPOOL_BYTES,
    GYRE_SIG_COUNT
} gyre_alert_signal_t;

typedef enum gyre_alert_op { GYRE_ALERT_GT = 0, GYRE_ALERT_GE, GYRE_ALERT_LT, GYRE_ALERT_LE } gyre_alert_op_t;

/* `by:` dimensions (bits). */
#define GYRE_ALERT_BY_ROUTE 0x1u
#define GYRE_ALERT_BY_PROVIDER 0x2u
#define GYRE_ALERT_BY_KEY 0x4u /* the provider key's id ("openai#0"), never the key */
#define GYRE_ALERT_BY_AGENT 0x8u

typedef enum gyre_alert_action_kind {
    GYRE_ACTION_FAILOVER = 1, /* failover_to_secondary */
    GYRE_ACTION_ROTATE_KEY,   /* rotate_key */
    GYRE_ACTION_OPEN_CIRCUIT, /* open_circuit */
    GYRE_ACTION_LOG,          /* log */
    GYRE_ACTION_NOTIFY,       /* a notifier of `notifiers:`, by name */
} gyre_alert_action_kind_t;

typedef struct gyre_alert_action_conf {
    gyre_alert_action_kind_t kind;
    char *name; /* as written: the built-in's name or the notifier's */
} gyre_alert_action_conf_t;

typedef struct gyre_alert_rule_conf {
    char *name;
    char *condition; /* as written */
    gyre_alert_signal_t signal;
    gyre_alert_op_t op;
    double threshold;
    int64_t window_us;      /* `window:` [1m] */
    int64_t for_us;         /* `for:` how long the condition holds before firing [0] */
    int64_t resolve_for_us; /* `resolve_for:` how long it is false before resolving [for, or 30s when for is 0] */
    int64_t min_firing_us;  /* `min_firing:` the shortest a firing alert lasts [1m] */
    unsigned by;            /* GYRE_ALERT_BY_* */
    char *severity;         /* `severity:` [warning] */
    gyre_alert_action_conf_t *actions; /* `action:` and/or `actions:`, in order */
    size_t nactions;
    int line;
} gyre_alert_rule_conf_t;

#define GYRE_ALERTS_MAX_RULES 64
#define GYRE_ALERTS_MAX_WINDOW_US (24LL * 3600 * 1000000) /* a day: windows are kept in 60 slots each */

/*
 * `limits:` limits and budgets per key, team, agent and user (src/config/limits.c; docs/limits.md).  Each level's
 * rules are in the order gyre_limit_level_t names them (key, team, agent, user); a rule's id "*" is every id of
 * its level without a rule of its own (`default:` is the key level's "*"), each id with its own counters.
 */
typedef struct gyre_limit_conf {
    char *id;
    uint32_t rpm, tpm, concurrency; /* 0: none */
    double budget_usd;              /* < 0: none */
    int budget_period;              /* gyre_budget_period_t (control/principal.h): 1 day, 2 week, 3 month (UTC) */
    int soft;                       /* `soft: true`: the budget notifies at 50/80/100 %, never refuses */
    char *notify;                   /* the notifier its thresholds go to, or NULL (the section's `notify:`) */
    int line;
} gyre_limit_conf_t;

#define GYRE_LIMIT_CONF_LEVELS 4
#define GYRE_DEFAULT_RESERVATION_TTL_MS ((uint64_t)15 * 60 * 1000)

typedef struct gyre_limits_conf {
    int present;                                       /* the config has a `limits:` section */
    gyre_limit_conf_t *rules[GYRE_LIMIT_CONF_LEVELS];  /* keys, teams, agents, users */
    size_t nrules[GYRE_LIMIT_CONF_LEVELS];
    uint64_t reservation_ttl_ms; /* an unsettled reservation is given back after this long [15m] */
    unsigned default_max_tokens; /* the output estimate of a request without max_tokens [4096] */
    char *notify;                /* the default notifier of budgets' thresholds, or NULL */
} gyre_limits_conf_t;

typedef struct gyre_config {
    char *source; /* the file name, or "<embedded default>" */
    char *listen_host;
    uint16_t listen_port;
    unsigned workers; /* 0: one per core */
    /* The trace store: a `store:` section configures one, and then every call is stored with its
     * bodies unless `traces: false` (or `capture: false`) says otherwise.  No section: no store, no traces.
     * `store_dsn`: what gyre_store_open takes ("sqlite:PATH" for `sqlite: PATH`, or `dsn:` as given; the
     * section without either is "sqlite:./gyre.db"); NULL without a section.  `store_sqlite`: the SQLite
     * file's path (the trace log lives beside it), NULL when there is no store or the DSN is not SQLite's.
     * `store_field` and `store_line` name where the DSN came from ("store.sqlite", "store.dsn" or "store";
     * line 0: the embedded default), for errors about the store that only opening it finds. */
    char *store_dsn;
    char *store_sqlite;
    const char *store_field;
    int store_line;
    /* `store: {traces: false}` turns the store's writing off; true whenever a store is configured. */
    int traces;
    /* `store: {capture: false}`: calls without a route (provider/model, pass-through) keep no bodies.  Default
     * true; a route says it for its own calls with `capture:`. */
    int store_capture;
    /* The trace log (src/trace/tracelog.h): `store: {log: DIR}` (NULL: `<sqlite path>.log`),
     * `fsync_ms` (the power-cut bound, default 20), `retention` (a duration, default 30d; 0 keeps every
     * segment), `max_bytes` (the log's disk bound, default 20GB), `segment_bytes` (default 64MB, or max_bytes / 8
     * when smaller).  Zero: the default. */
    char *store_log;
    /* `state:` the control plane's SQLite file (src/control/state.h); NULL: "<store_sqlite>.state". */
    char *state_path;
    /* `master_key_file:` the file holding the master key that seals provider keys added through the admin API
     * (src/control/provider_keys.h); NULL: none (GYRE_MASTER_KEY and GYRE_MASTER_KEY_FILE come first). */
    char *master_key_file;
    unsigned store_fsync_ms;
    int64_t store_retention_us; /* -1: never (`retention: 0`) */
    uint64_t store_max_bytes, store_segment_bytes;
    /* `redact:` GYRE_REDACT_* bits (config/redact_kinds.h) for calls without a route and the default of every route:
     * all four kinds unless `redact: false` or a list (docs/privacy.md). */
    unsigned redact;
    char *prices_file; /* `prices:` a JSON price table replacing the shipped one; NULL: data/prices.json as built in */
    size_t max_body_bytes;
    size_t max_response_bytes; /* every provider's default for its own max_response_bytes */
    uint64_t shutdown_grace_ms;
    size_t max_header_bytes; /* a request head (request line and headers) longer than this gets 431 */
    size_t max_connections;  /* client connections held at once, all workers together (src/server/conn.h) */
    uint64_t linger_ms;      /* a lingering close after an early answer lasts at most this long (0: none) */
    uint64_t linger_bytes;   /* ... and reads at most this much (0: none) */
    gyre_provider_conf_t *providers;
    size_t nproviders;
    gyre_route_conf_t *routes;
    size_t nroutes;
    gyre_otlp_conf_t otlp;
    gyre_auth_conf_t auth;
    gyre_notifier_conf_t *notifiers; /* `notifiers:` (src/config/notifiers.c) */
    size_t nnotifiers;
    gyre_alert_rule_conf_t *alerts; /* `alerts:` (src/config/alerts.c) */
    size_t nalerts;
    gyre_limits_conf_t limits; /* `limits:` (zeroes when absent) */
    int listen_line; /* the line of `listen:`, 0 when the default */
    /* `direct:` the default of every provider's `direct:` (1 unless `direct: false`). */
    int direct;
    /* `passthrough:` the /v1 path prefixes (segment boundaries) passed to an OpenAI-compatible provider as they
     * are; GYRE_CONFIG_DEFAULT_PASSTHROUGH unless given.  Admin and organization paths are never among them. */
    char **passthrough;
    size_t npassthrough;
    /* `access_log:` the file the per-request JSON lines go to, "stderr", or NULL (off, the default); each
     * worker's buffer (default GYRE_DEFAULT_ACCESS_LOG_BUFFER) and how often it is written at least (default
     * GYRE_DEFAULT_ACCESS_LOG_FLUSH_MS).  Zero: the default.  src/trace/access_log.h. */
    char *access_log;
    /* The loop (issue 14). */
    gyre_scorer_conf_t *scorers; /* `scorers:` (src/config/scorers.c) */
    size_t nscorers;
    gyre_feedback_metric_conf_t *feedback_metrics; /* `feedback: metrics:` (src/config/feedback.c) */
    size_t nfeedback_metrics;
    gyre_clusters_conf_t clusters; /* `clusters:` (zeroes and defaults when absent) */
    char *datasets_dir;            /* `datasets:` where datasets are kept; NULL: "<store_sqlite>.datasets" */
    char **loop_specs;             /* `loops:` the loop specs gyre serve schedules (src/loop/looprun.h) */
    size_t nloop_specs;
    size_t access_log_buffer_bytes;
    unsigned access_log_flush_ms;
    /* Human-readable notes gathered while building the embedded default
     * (which providers came from which environment variables). */
    char **notes;
    size_t nnotes;
} gyre_config_t;

typedef struct gyre_config_errors {
    char **items; /* "FILE:LINE: FIELD: message" */
    size_t count;
} gyre_config_errors_t;

#define GYRE_DEFAULT_MAX_BODY_BYTES ((size_t)8 * 1024 * 1024)
#define GYRE_DEFAULT_TIMEOUT_MS 120000
#define GYRE_DEFAULT_MAX_RESPONSE_BYTES ((size_t)64 * 1024 * 1024)
#define GYRE_DEFAULT_GRACE_MS 10000
#define GYRE_DEFAULT_MAX_HEADER_BYTES ((size_t)32 * 1024)
/* The largest max_header_bytes: h2o reads no longer head (H2O_MAX_REQLEN; past it, its own plain 400). */
#define GYRE_MAX_HEADER_BYTES_LIMIT ((size_t)8192 + 4096 * 100)
#define GYRE_DEFAULT_MAX_CONNECTIONS 4096
#define GYRE_DEFAULT_LINGER_MS 30000
#define GYRE_DEFAULT_LINGER_BYTES ((uint64_t)64 * 1024 * 1024)
#define GYRE_DEFAULT_MAX_TOKENS 4096
#define GYRE_DEFAULT_ACCESS_LOG_BUFFER ((size_t)1 << 20)
#define GYRE_DEFAULT_ACCESS_LOG_FLUSH_MS 1000

/* Parses YAML text.  Returns NULL and fills `errs` when anything is wrong. */
gyre_config_t *gyre_config_parse(const char *source, const char *text, size_t len, gyre_config_errors_t *errs);
/* Reads and parses a file. */
gyre_config_t *gyre_config_load(const char *path, gyre_config_errors_t *errs);
/*
 * The same, for the commands that only read what gyre stored (stats, traces, store, keys, audit): a secret given
 * as env:NAME or file:PATH is not loaded (a placeholder stands in for it, see gyre_cfg_unresolved_secret), so
 * those commands run without the providers' key variables set.  Everything else is checked as gyre_config_load
 * checks it.  Never serve with such a config.
 */
gyre_config_t *gyre_config_load_unresolved(const char *path, gyre_config_errors_t *errs);
/*
 * The embedded default: loopback on port 8080, SQLite ./gyre.db, a provider
 * for each of the usual API-key environment variables that is set, and one
 * pointing at gyre-mock when GYRE_MOCK_URL is set.
 */
gyre_config_t *gyre_config_default(gyre_config_errors_t *errs);
/* The YAML text that gyre_config_default() parses (keys as env:NAME); NULL if it would pass 64 KiB. */
char *gyre_config_default_yaml(void);
void gyre_config_free(gyre_config_t *c);
void gyre_config_errors_dispose(gyre_config_errors_t *errs);
/* Frees `notifiers:` (their secrets wiped); gyre_config_free calls it. */
void gyre_config_free_notifiers(gyre_config_t *c);
/* The notifier named `name`, or NULL. */
const gyre_notifier_conf_t *gyre_config_find_notifier(const gyre_config_t *c, const char *name);

/* What `passthrough:` is when the configuration does not say: OpenAI's documented inference endpoints.  Paths
 * that change the provider account (files, batches, fine_tuning, vector_stores, assistants, ...) are opt-in. */
#define GYRE_CONFIG_DEFAULT_PASSTHROUGH "/v1/completions", "/v1/moderations", "/v1/images", "/v1/audio", "/v1/responses"

/*
 * Whether a request path (percent-decoded) is one gyre never passes upstream,
 * listed or not: it has a segment "organization(s)" or "admin" (or one that
 * starts with "admin_" or "admin-"), any case.  Those act on the provider
 * account with the gateway's key.
 */
int gyre_config_path_never_passed(const char *path, size_t len);

/* Sets listen_host/listen_port from "HOST:PORT" (as `listen:` takes it); -EINVAL if malformed. */
int gyre_config_set_listen(gyre_config_t *c, const char *hostport);

const gyre_provider_conf_t *gyre_config_find_provider(const gyre_config_t *c, const char *name, size_t len);
const gyre_route_conf_t *gyre_config_find_route(const gyre_config_t *c, const char *name, size_t len);

/* The name of an alert signal ("p95_latency"), and the one of a name (-1 when unknown). */
const char *gyre_alert_signal_name(gyre_alert_signal_t s);
int gyre_alert_signal_lookup(const char *name);
/* Frees `alerts:` (config_free calls it). */
void gyre_config_alerts_free(gyre_config_t *c);

#endif
