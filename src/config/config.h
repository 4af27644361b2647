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
#define GYRE_AUTH_MAX_KEY_FILE_BYTES ((size_t)1 << 20) /* a `file:` of client keys, one a line */

typedef struct gyre_auth_conf {
    gyre_auth_mode_t mode;
    char **keys; /* client keys, resolved */
    size_t nkeys;
    char *admin_token; /* NULL when not configured */
    char *read_token;  /* NULL when not configured */
} gyre_auth_conf_t;

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

#endif
