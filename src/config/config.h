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

typedef enum gyre_provider_kind {
    GYRE_PROVIDER_OPENAI = 1,
} gyre_provider_kind_t;

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
    size_t nkeys;
    char *ca_file;       /* extra trust anchors for https; NULL: the system store */
    int tls_verify;      /* 1 unless `tls_verify: false` */
    uint64_t timeout_ms; /* connect and per-read idle limit upstream */
    int line;
} gyre_provider_conf_t;

typedef struct gyre_target_conf {
    size_t provider; /* index into config->providers */
    char *model;
    unsigned weight;
} gyre_target_conf_t;

typedef struct gyre_route_conf {
    char *name;
    gyre_target_conf_t *targets;
    size_t ntargets;
    unsigned total_weight;
    int line;
} gyre_route_conf_t;

typedef struct gyre_config {
    char *source; /* the file name, or "<embedded default>" */
    char *listen_host;
    uint16_t listen_port;
    unsigned workers; /* 0: one per core */
    char *store_sqlite;
    size_t max_body_bytes;
    uint64_t shutdown_grace_ms;
    gyre_provider_conf_t *providers;
    size_t nproviders;
    gyre_route_conf_t *routes;
    size_t nroutes;
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
#define GYRE_DEFAULT_GRACE_MS 10000

/* Parses YAML text.  Returns NULL and fills `errs` when anything is wrong. */
gyre_config_t *gyre_config_parse(const char *source, const char *text, size_t len, gyre_config_errors_t *errs);
/* Reads and parses a file. */
gyre_config_t *gyre_config_load(const char *path, gyre_config_errors_t *errs);
/*
 * The embedded default: loopback on port 8080, SQLite ./gyre.db, a provider
 * for each of the usual API-key environment variables that is set, and one
 * pointing at gyre-mock when GYRE_MOCK_URL is set.
 */
gyre_config_t *gyre_config_default(gyre_config_errors_t *errs);
/* The YAML text that gyre_config_default() parses (keys as env:NAME). */
char *gyre_config_default_yaml(void);
void gyre_config_free(gyre_config_t *c);
void gyre_config_errors_dispose(gyre_config_errors_t *errs);

/* Sets listen_host/listen_port from "HOST:PORT" (as `listen:` takes it); -EINVAL if malformed. */
int gyre_config_set_listen(gyre_config_t *c, const char *hostport);

const gyre_provider_conf_t *gyre_config_find_provider(const gyre_config_t *c, const char *name, size_t len);
const gyre_route_conf_t *gyre_config_find_route(const gyre_config_t *c, const char *name, size_t len);

#endif
