/*
 * src/config/config.c: the YAML schema, key resolution, every error's text
 * (file, line, field), and the embedded default built from the environment.
 * Each test runs in its own process, so setenv/unsetenv stay local to it.
 */
#include "config/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_test.h"
#include "test.h"
#include "trace/redact.h"

/* The minimal configuration from the issue, line for line. */
static const char minimal[] = "listen: 127.0.0.1:8080\n"
                              "workers: 2\n"
                              "store: {sqlite: ./gyre.db}\n"
                              "providers:\n"
                              "  - {name: primary, kind: openai, base_url: http://127.0.0.1:9101/v1, keys: [sk-a, "
                              "env:OPENAI_API_KEY]}\n"
                              "routes:\n"
                              "  - name: chat\n"
                              "    targets: [{provider: primary, model: gpt-4o-mini, weight: 100}]\n";

static void clear_provider_env(void)
{
    const char *vars[] = {"OPENAI_API_KEY",   "GROQ_API_KEY",      "MISTRAL_API_KEY",
                          "DEEPSEEK_API_KEY", "TOGETHER_API_KEY",  "OPENROUTER_API_KEY",
                          "GYRE_MOCK_URL",    "ANTHROPIC_API_KEY", "GEMINI_API_KEY"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
}

/* Writes `contents` to a new temporary file; the caller unlinks `path`. */
static void write_temp(char *path, const char *contents)
{
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    size_t n = strlen(contents);
    CHECK(write(fd, contents, n) == (ssize_t)n);
    close(fd);
}

/* --- the minimal configuration ------------------------------------------ */

TEST(config_minimal_sets_listen_workers_and_store)
{
    setenv("OPENAI_API_KEY", "sk-from-env", 1);
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse(minimal, &errs);
    CHECK(c != NULL);
    CHECK_INT(errs.count, 0);
    CHECK_STR(c->source, "t.yaml");
    CHECK_STR(c->listen_host, "127.0.0.1");
    CHECK_INT(c->listen_port, 8080);
    CHECK_INT(c->workers, 2);
    CHECK_STR(c->store_sqlite, "./gyre.db");
    gyre_config_free(c);
}

TEST(config_minimal_provider_base_url_is_split_into_scheme_host_port_and_path)
{
    setenv("OPENAI_API_KEY", "sk-from-env", 1);
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse(minimal, &errs);
    CHECK(c != NULL);
    CHECK_INT(c->nproviders, 1);
    const gyre_provider_conf_t *p = &c->providers[0];
    CHECK_STR(p->name, "primary");
    CHECK_INT(p->kind, GYRE_PROVIDER_OPENAI);
    CHECK_STR(p->base_url, "http://127.0.0.1:9101/v1");
    CHECK_INT(p->is_https, 0);
    CHECK_STR(p->host, "127.0.0.1");
    CHECK_INT(p->port, 9101);
    CHECK_STR(p->base_path, "/v1");
    CHECK_INT(p->line, 5);
    gyre_config_free(c);
}

TEST(config_minimal_keys_resolve_literals_and_env_names_with_numbered_ids)
{
    setenv("OPENAI_API_KEY", "sk-from-env", 1);
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse(minimal, &errs);
    CHECK(c != NULL);
    const gyre_provider_conf_t *p = &c->providers[0];
    CHECK_INT(p->nkeys, 2);
    CHECK_STR(p->keys[0], "sk-a");
    CHECK_STR(p->keys[1], "sk-from-env");
    CHECK_STR(p->key_ids[0], "primary#0");
    CHECK_STR(p->key_ids[1], "primary#1");
    gyre_config_free(c);
}

TEST(config_minimal_route_lists_its_targets_with_weights)
{
    setenv("OPENAI_API_KEY", "sk-from-env", 1);
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse(minimal, &errs);
    CHECK(c != NULL);
    CHECK_INT(c->nroutes, 1);
    const gyre_route_conf_t *r = &c->routes[0];
    CHECK_STR(r->name, "chat");
    CHECK_INT(r->line, 7);
    CHECK_INT(r->ntargets, 1);
    CHECK_INT(r->targets[0].provider, 0);
    CHECK_STR(r->targets[0].model, "gpt-4o-mini");
    CHECK_INT(r->targets[0].weight, 100);
    CHECK_INT(r->total_weight, 100);
    gyre_config_free(c);
}

TEST(config_fields_left_out_take_their_defaults)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse(PROVIDER_P "routes:\n  - {name: r, targets: [{provider: p, model: m}, {provider: p, "
                                        "model: n}]}\n",
                             &errs);
    CHECK(c != NULL);
    CHECK_STR(c->listen_host, "127.0.0.1");
    CHECK_INT(c->listen_port, 8080);
    CHECK_INT(c->workers, 0);
    /* No store: section, no store (issue 12: a configured store stores every call). */
    CHECK(c->store_dsn == NULL);
    CHECK(c->store_sqlite == NULL);
    CHECK_INT(c->traces, 0);
    CHECK_INT(c->max_body_bytes, 8 * 1024 * 1024);
    CHECK_INT(c->shutdown_grace_ms, 10000);
    CHECK_INT(c->providers[0].tls_verify, 1);
    CHECK_INT(c->providers[0].timeout_ms, 120000);
    CHECK(c->providers[0].ca_file == NULL);
    CHECK_INT(c->providers[0].nkeys, 0);
    CHECK_INT(c->routes[0].targets[0].weight, 1);
    CHECK_INT(c->routes[0].total_weight, 2);
    gyre_config_free(c);
}

TEST(config_max_response_bytes_defaults_to_64_mib_and_a_provider_inherits_the_roots_unless_it_sets_its_own)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse(PROVIDER_P "routes:\n  - {name: r, targets: [{provider: p, model: m}]}\n", &errs);
    CHECK(c != NULL);
    CHECK_INT(c->max_response_bytes, 64 * 1024 * 1024);
    CHECK_INT(c->providers[0].max_response_bytes, 64 * 1024 * 1024);
    gyre_config_free(c);
    c = parse("max_response_bytes: 65536\n"
              "providers:\n"
              "  - {name: p, kind: openai, base_url: 'http://h/v1'}\n"
              "  - {name: q, kind: openai, base_url: 'http://h/v1', max_response_bytes: 2048}\n"
              "routes:\n  - {name: r, targets: [{provider: p, model: m}]}\n",
              &errs);
    CHECK(c != NULL);
    CHECK_INT(c->max_response_bytes, 65536);
    CHECK_INT(c->providers[0].max_response_bytes, 65536);
    CHECK_INT(c->providers[1].max_response_bytes, 2048);
    gyre_config_free(c);
}

TEST(config_max_response_bytes_out_of_range_names_the_field)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse("max_response_bytes: 10\n"
                             "providers:\n"
                             "  - {name: p, kind: openai, base_url: 'http://h/v1', max_response_bytes: 2147483648}\n"
                             "routes:\n  - {name: r, targets: [{provider: p, model: m}]}\n",
                             &errs);
    CHECK(c == NULL);
    char *all = joined(&errs);
    CHECK(strstr(all, "t.yaml:1: max_response_bytes: ") != NULL);
    CHECK(strstr(all, "t.yaml:3: providers[0].max_response_bytes: ") != NULL);
    free(all);
    gyre_config_errors_dispose(&errs);
}

TEST(config_optional_fields_are_read)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse("listen: '[::1]:9000'\nmax_body_bytes: 2048\nshutdown_grace_ms: 0\n"
                             "providers:\n  - {name: p, kind: openai, base_url: 'http://h/v1', tls_verify: no,"
                             " timeout_ms: 500}\n",
                             &errs);
    CHECK(c != NULL);
    CHECK_STR(c->listen_host, "::1");
    CHECK_INT(c->listen_port, 9000);
    CHECK_INT(c->max_body_bytes, 2048);
    CHECK_INT(c->shutdown_grace_ms, 0);
    CHECK_INT(c->providers[0].tls_verify, 0);
    CHECK_INT(c->providers[0].timeout_ms, 500);
    gyre_config_free(c);
}

TEST(config_connection_bounds_default_and_are_read)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse("providers: []\n", &errs);
    CHECK_INT(c->max_header_bytes, 32768);
    CHECK_INT(c->max_connections, 4096);
    CHECK_INT(c->linger_ms, 30000);
    CHECK_INT(c->linger_bytes, 64 * 1024 * 1024);
    gyre_config_free(c);
    c = parse("max_header_bytes: 417792\nmax_connections: 4\nlinger_ms: 0\nlinger_bytes: 1024\n", &errs);
    CHECK_INT(c->max_header_bytes, 417792);
    CHECK_INT(c->max_connections, 4);
    CHECK_INT(c->linger_ms, 0);
    CHECK_INT(c->linger_bytes, 1024);
    gyre_config_free(c);
}

TEST(config_connection_bounds_out_of_range_are_errors)
{
    /* A head longer than h2o's own bound (8192 + 4096 * 100 bytes) never reaches gyre's check. */
    CHECK_ERRORS("max_header_bytes: 417793\nmax_connections: 0\nlinger_ms: 600001\nlinger_bytes: -1\n",
                 "t.yaml:1: max_header_bytes: 417793 is out of range (1024 to 417792)\n"
                 "t.yaml:2: max_connections: 0 is out of range (1 to 1000000)\n"
                 "t.yaml:3: linger_ms: 600001 is out of range (0 to 600000)\n"
                 "t.yaml:4: linger_bytes: expected a whole number, found '-1'\n");
}

/* --- base_url ------------------------------------------------------------ */

TEST(config_https_base_url_defaults_to_port_443_and_drops_trailing_slashes)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c =
        parse("providers:\n  - {name: groq, kind: openai, base_url: 'https://api.groq.com/openai/v1/'}\n", &errs);
    CHECK(c != NULL);
    CHECK_INT(c->providers[0].is_https, 1);
    CHECK_STR(c->providers[0].host, "api.groq.com");
    CHECK_INT(c->providers[0].port, 443);
    CHECK_STR(c->providers[0].base_path, "/openai/v1");
    gyre_config_free(c);
}

TEST(config_base_url_without_a_path_has_an_empty_base_path_and_port_80)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse("providers:\n  - {name: p, kind: openai, base_url: 'http://example.com'}\n", &errs);
    CHECK(c != NULL);
    CHECK_STR(c->providers[0].host, "example.com");
    CHECK_INT(c->providers[0].port, 80);
    CHECK_STR(c->providers[0].base_path, "");
    gyre_config_free(c);
}

TEST(config_base_url_with_an_ipv6_host_keeps_the_address_without_brackets)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse("providers:\n  - {name: a, kind: openai, base_url: 'http://[::1]:9101/v1'}\n"
                             "  - {name: b, kind: openai, base_url: 'https://[fe80::1]/v1'}\n",
                             &errs);
    CHECK(c != NULL);
    CHECK_STR(c->providers[0].host, "::1");
    CHECK_INT(c->providers[0].port, 9101);
    CHECK_STR(c->providers[1].host, "fe80::1");
    CHECK_INT(c->providers[1].port, 443);
    gyre_config_free(c);
}

TEST(config_base_url_errors_quote_the_url_and_say_what_is_wrong)
{
    CHECK_ERRORS("providers:\n"
                 "  - {name: a, kind: openai, base_url: 'ftp://h/v1'}\n"
                 "  - {name: b, kind: openai, base_url: 'http:///v1'}\n"
                 "  - {name: c, kind: openai, base_url: 'http://h:0/v1'}\n"
                 "  - {name: d, kind: openai, base_url: 'http://h/v1?x=1'}\n",
                 "t.yaml:2: providers[0].base_url: 'ftp://h/v1' must start with http:// or https://\n"
                 "t.yaml:3: providers[1].base_url: 'http:///v1' has no host\n"
                 "t.yaml:4: providers[2].base_url: 'http://h:0/v1' has an invalid port\n"
                 "t.yaml:5: providers[3].base_url: 'http://h/v1?x=1' must not contain a query or fragment\n");
}

TEST(config_base_url_with_credentials_is_refused_without_echoing_them)
{
    CHECK_ERRORS("providers:\n  - {name: p, kind: openai, base_url: 'http://user:pw@h/v1'}\n",
                 "t.yaml:2: providers[0].base_url: 'http://user:pw@h/v1' must not contain credentials (use keys:)\n");
}

/* --- keys ---------------------------------------------------------------- */

TEST(config_file_keys_are_read_and_trimmed)
{
    char path[] = "/tmp/gyre-key-XXXXXX";
    write_temp(path, "  sk-file-key\n\n");
    char yaml[512];
    snprintf(yaml, sizeof(yaml),
             "providers:\n  - {name: p, kind: openai, base_url: 'http://h/v1', keys: ['file:%s']}\n", path);
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse(yaml, &errs);
    CHECK(c != NULL);
    CHECK_INT(c->providers[0].nkeys, 1);
    CHECK_STR(c->providers[0].keys[0], "sk-file-key");
    CHECK_STR(c->providers[0].key_ids[0], "p#0");
    gyre_config_free(c);
    unlink(path);
}

TEST(config_a_key_file_that_cannot_be_read_names_the_path)
{
    CHECK_ERRORS("providers:\n  - {name: p, kind: openai, base_url: 'http://h/v1', keys: ['file:/nonexistent/k']}\n",
                 "t.yaml:2: providers[0].keys[0]: cannot read key file /nonexistent/k: No such file or directory\n");
}

TEST(config_a_key_file_of_only_whitespace_is_empty)
{
    char path[] = "/tmp/gyre-key-XXXXXX";
    write_temp(path, " \n\t\n");
    char yaml[512], expected[512];
    snprintf(yaml, sizeof(yaml),
             "providers:\n  - {name: p, kind: openai, base_url: 'http://h/v1', keys: ['file:%s']}\n", path);
    snprintf(expected, sizeof(expected), "t.yaml:2: providers[0].keys[0]: key file %s is empty\n", path);
    CHECK_ERRORS(yaml, expected);
    unlink(path);
}

TEST(config_a_single_key_may_be_written_without_a_list)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse("providers:\n  - {name: p, kind: openai, base_url: 'http://h/v1', keys: sk-one}\n", &errs);
    CHECK(c != NULL);
    CHECK_INT(c->providers[0].nkeys, 1);
    CHECK_STR(c->providers[0].keys[0], "sk-one");
    CHECK_STR(c->providers[0].key_ids[0], "p#0");
    gyre_config_free(c);
}

TEST(config_a_missing_env_var_is_named_and_the_line_given)
{
    unsetenv("OPENAI_API_KEY");
    CHECK_ERRORS(minimal, "t.yaml:5: providers[0].keys[1]: environment variable OPENAI_API_KEY is not set\n");
}

TEST(config_an_env_var_set_to_the_empty_string_counts_as_not_set)
{
    setenv("OPENAI_API_KEY", "", 1);
    CHECK_ERRORS(minimal, "t.yaml:5: providers[0].keys[1]: environment variable OPENAI_API_KEY is not set\n");
}

TEST(config_errors_never_contain_a_key_value)
{
    /* Every error this provider can produce, next to a literal key and an
     * env key whose values must not appear anywhere in the report. */
    setenv("GYRE_UNIT_KEY", "sk-env-SECRET-456", 1);
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse("providers:\n"
                             "  - name: p\n"
                             "    kind: nope\n"
                             "    base_url: 'http://h:99999/v1'\n"
                             "    keys: [sk-lit-SECRET-123, env:GYRE_UNIT_KEY, '', {k: sk-map-SECRET-789}]\n"
                             "    tls_verify: maybe\n"
                             "    colour: red\n",
                             &errs);
    CHECK(c == NULL);
    char *all = joined(&errs);
    CHECK_STR(all, "t.yaml:6: providers[0].tls_verify: expected true or false, found 'maybe'\n"
                   "t.yaml:7: providers[0]: unknown field 'colour' (known: name, kind, base_url, keys, key_strategy, "
                   "breaker, ca_file, tls_verify, timeout_ms, max_response_bytes, api_version, max_tokens, region, prices, direct, health_check)\n"
                   "t.yaml:3: providers[0].kind: unsupported kind 'nope' (supported: openai, azure, anthropic, gemini, "
                   "bedrock)\n"
                   "t.yaml:4: providers[0].base_url: 'http://h:99999/v1' has an invalid port\n"
                   "t.yaml:5: providers[0].keys[2]: is empty\n"
                   "t.yaml:5: providers[0].keys[3]: unknown field 'k' (known: key, weight)\n"
                   "t.yaml:5: providers[0].keys[3]: needs a 'key'\n");
    CHECK(strstr(all, "SECRET") == NULL);
    free(all);
    gyre_config_errors_dispose(&errs);
}

/* --- errors, one kind each ------------------------------------------------ */

TEST(config_unknown_fields_are_named_with_the_known_ones)
{
    CHECK_ERRORS("colour: blue\n" PROVIDER_P
                 "routes:\n  - {name: r, size: 1, targets: [{provider: p, model: m, x: 1}]}\n",
                 "t.yaml:1: unknown field 'colour' (known: listen, auth, workers, store, state, master_key_file, prices, redact, "
                 "direct, "
                 "passthrough, providers, routes, otlp, max_body_bytes, max_response_bytes, shutdown_grace_ms, "
                 "max_header_bytes, max_connections, linger_ms, linger_bytes, notifiers, alerts, limits, access_log, scorers, feedback, clusters, datasets, loops)\n"
                 "t.yaml:5: routes[0]: unknown field 'size' (known: name, targets, fallbacks, strategy, fallback_on, "
                 "retries, backoff_ms, backoff_max_ms, attempt_timeout_ms, deadline_ms, first_byte_timeout_ms, "
                 "midstream, affinity, cache, capture, redact, guardrails)\n"
                 "t.yaml:5: routes[0].targets[0]: unknown field 'x' (known: provider, model, weight)\n");
}

TEST(config_an_unknown_store_field_lists_the_known_ones)
{
    CHECK_ERRORS("store: {postgres: x}\n",
                 "t.yaml:1: store: unknown field 'postgres' (known: sqlite, dsn, traces, capture, log, fsync_ms, retention, max_bytes, segment_bytes)\n");
    CHECK_ERRORS("store: {sqlite: a.db,\n  dsn: sqlite:b.db}\n", "t.yaml:1: store: give sqlite: or dsn:, not both\n");
}

TEST(config_store_dsn_is_the_dsn_and_sqlite_path_is_its_sqlite_form)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse("store: {sqlite: /tmp/t.db}\n", &errs);
    CHECK(c != NULL);
    CHECK_STR(c->store_dsn, "sqlite:/tmp/t.db");
    CHECK_STR(c->store_sqlite, "/tmp/t.db");
    CHECK_STR(c->store_field, "store.sqlite");
    CHECK_INT(c->store_line, 1);
    gyre_config_free(c);
    c = parse("workers: 1\nstore:\n  dsn: sqlite:/tmp/u.db\n", &errs);
    CHECK(c != NULL);
    CHECK_STR(c->store_dsn, "sqlite:/tmp/u.db");
    CHECK_STR(c->store_sqlite, "/tmp/u.db");
    CHECK_STR(c->store_field, "store.dsn");
    CHECK_INT(c->store_line, 3);
    gyre_config_free(c);
    /* Not SQLite: no file to keep the log beside (opening it says whether this gyre has the backend). */
    c = parse("store: {dsn: \"postgres://db.example/gyre\"}\n", &errs);
    CHECK(c != NULL);
    CHECK_STR(c->store_dsn, "postgres://db.example/gyre");
    CHECK(c->store_sqlite == NULL);
    gyre_config_free(c);
    /* A section that names no backend: the default file. */
    c = parse("store: {capture: false}\n", &errs);
    CHECK(c != NULL);
    CHECK_STR(c->store_dsn, "sqlite:./gyre.db");
    CHECK_STR(c->store_field, "store");
    gyre_config_free(c);
}

TEST(config_a_duplicate_provider_name_names_the_first_use)
{
    CHECK_ERRORS(PROVIDER_P "  - {name: p, kind: openai, base_url: 'http://g/v1'}\n",
                 "t.yaml:3: providers[1].name: 'p' is already used by providers[0]\n");
}

TEST(config_a_duplicate_route_name_names_the_first_use)
{
    CHECK_ERRORS(PROVIDER_P "routes:\n"
                            "  - {name: chat, targets: [{provider: p, model: m}]}\n"
                            "  - {name: chat, targets: [{provider: p, model: n}]}\n",
                 "t.yaml:5: routes[1].name: 'chat' is already used by routes[0]\n");
}

TEST(config_a_route_to_an_unknown_provider_names_it)
{
    CHECK_ERRORS(PROVIDER_P "routes:\n  - name: chat\n    targets:\n      - {provider: zz, model: m}\n",
                 "t.yaml:6: routes[0].targets[0].provider: no provider is named 'zz'\n");
}

TEST(config_required_fields_are_reported_at_their_parent)
{
    CHECK_ERRORS("providers:\n  - {keys: []}\nroutes:\n  - {targets: [{}]}\n  - {name: r}\n",
                 "t.yaml:2: providers[0].name: is required\n"
                 "t.yaml:2: providers[0].kind: is required (supported: openai, azure, anthropic, gemini, bedrock)\n"
                 "t.yaml:2: providers[0].base_url: is required\n"
                 "t.yaml:4: routes[0].name: is required\n"
                 "t.yaml:4: routes[0].targets[0].provider: is required\n"
                 "t.yaml:4: routes[0].targets[0].model: is required\n"
                 "t.yaml:5: routes[1].targets: is required\n");
}

TEST(config_invalid_names_are_refused_and_route_names_may_not_contain_a_slash)
{
    CHECK_ERRORS("providers:\n  - {name: 'a b', kind: openai, base_url: 'http://h/v1'}\n"
                 "routes:\n  - {name: 'x/y', targets: [{provider: 'a b', model: m}]}\n",
                 "t.yaml:2: providers[0].name: 'a b' is not a valid name (letters, digits, '-', '_', '.', ':')\n"
                 "t.yaml:4: routes[0].name: 'x/y' is not a valid route name (letters, digits, '-', '_', '.', ':'; "
                 "no '/')\n");
}

TEST(config_names_and_target_models_are_at_most_256_bytes_and_models_printable_ascii)
{
    /* The same rule as a client's model (common/wire.h): route and provider names and target models reach
     * upstream request paths and gyre's answer headers. */
    char long_name[258], yaml[2048], want[1024];
    memset(long_name, 'n', 257);
    long_name[257] = '\0';
    snprintf(yaml, sizeof(yaml),
             "providers:\n  - {name: %s, kind: openai, base_url: 'http://h/v1'}\n"
             "  - {name: p, kind: openai, base_url: 'http://h/v1'}\n"
             "routes:\n  - {name: %s, targets: [{provider: p, model: m}]}\n"
             "  - {name: r2, targets: [{provider: p, model: 'a b'}, {provider: p, model: \"x\\ty\"}]}\n"
             "  - {name: r3, targets: [{provider: p, model: %s}]}\n",
             long_name, long_name, long_name);
    snprintf(want, sizeof(want),
             "t.yaml:2: providers[0].name: is 257 bytes long; a name is at most 256\n"
             "t.yaml:5: routes[0].name: is 257 bytes long; a name is at most 256\n"
             "t.yaml:6: routes[1].targets[0].model: must be 1 to 256 bytes of printable ASCII (0x21-0x7E); it has a "
             "space at offset 1\n"
             "t.yaml:6: routes[1].targets[1].model: must be 1 to 256 bytes of printable ASCII (0x21-0x7E); it has a "
             "control byte (0x09) at offset 1\n"
             "t.yaml:7: routes[2].targets[0].model: must be 1 to 256 bytes of printable ASCII (0x21-0x7E); it is 257 "
             "bytes long\n");
    CHECK_ERRORS(yaml, want);
}

TEST(config_values_of_the_wrong_shape_say_what_was_expected)
{
    CHECK_ERRORS("listen: [a]\nstore: x\nproviders: {}\nroutes: 3\n",
                 "t.yaml:1: listen: expected a scalar, found a list\n"
                 "t.yaml:2: store: expected a mapping, found a scalar\n"
                 "t.yaml:3: providers: expected a list, found a mapping\n"
                 "t.yaml:4: routes: expected a list, found a scalar\n");
}

TEST(config_numbers_out_of_range_or_not_whole_are_errors)
{
    CHECK_ERRORS("workers: 0\nmax_body_bytes: 12.5\nshutdown_grace_ms: -1\n",
                 "t.yaml:1: workers: 0 is out of range (1 to 256)\n"
                 "t.yaml:2: max_body_bytes: expected a whole number, found '12.5'\n"
                 "t.yaml:3: shutdown_grace_ms: expected a whole number, found '-1'\n");
}

TEST(config_listen_that_is_not_host_port_is_an_error)
{
    CHECK_ERRORS("listen: localhost\n",
                 "t.yaml:1: listen: 'localhost' is not HOST:PORT (for example 127.0.0.1:8080)\n");
}

TEST(config_an_empty_target_list_and_all_zero_weights_are_errors)
{
    CHECK_ERRORS(PROVIDER_P "routes:\n"
                            "  - {name: a, targets: []}\n"
                            "  - {name: b, targets: [{provider: p, model: m, weight: 0}]}\n",
                 "t.yaml:4: routes[0].targets: needs at least one target\n"
                 "t.yaml:5: routes[1].targets: the weights of the targets add up to 0\n");
}

TEST(config_collects_every_error_in_one_pass)
{
    unsetenv("GYRE_UNIT_MISSING");
    CHECK_ERRORS("listen: nope\n"
                 "workers: 0\n"
                 "colour: blue\n"
                 "providers:\n"
                 "  - {name: a, kind: openai, base_url: 'http://h:99999/v1', keys: [env:GYRE_UNIT_MISSING]}\n"
                 "  - {name: a, base_url: 'http://h/v1'}\n"
                 "routes:\n"
                 "  - {name: 'x/y', targets: [{provider: zz}]}\n",
                 "t.yaml:1: listen: 'nope' is not HOST:PORT (for example 127.0.0.1:8080)\n"
                 "t.yaml:2: workers: 0 is out of range (1 to 256)\n"
                 "t.yaml:3: unknown field 'colour' (known: listen, auth, workers, store, state, master_key_file, prices, redact, "
                 "direct, "
                 "passthrough, providers, routes, otlp, max_body_bytes, max_response_bytes, shutdown_grace_ms, "
                 "max_header_bytes, max_connections, linger_ms, linger_bytes, notifiers, alerts, limits, access_log, scorers, feedback, clusters, datasets, loops)\n"
                 "t.yaml:5: providers[0].base_url: 'http://h:99999/v1' has an invalid port\n"
                 "t.yaml:5: providers[0].keys[0]: environment variable GYRE_UNIT_MISSING is not set\n"
                 "t.yaml:6: providers[1].kind: is required (supported: openai, azure, anthropic, gemini, bedrock)\n"
                 "t.yaml:6: providers[1].name: 'a' is already used by providers[0]\n"
                 "t.yaml:8: routes[0].name: 'x/y' is not a valid route name (letters, digits, '-', '_', '.', "
                 "':'; no '/')\n"
                 "t.yaml:8: routes[0].targets[0].provider: no provider is named 'zz'\n"
                 "t.yaml:8: routes[0].targets[0].model: is required\n");
}

TEST(config_errors_are_appended_to_those_already_collected)
{
    gyre_config_errors_t errs = {0};
    CHECK(parse("workers: 0\n", &errs) == NULL);
    CHECK(parse("workers: x\n", &errs) == NULL);
    char *all = joined(&errs);
    CHECK_STR(all, "t.yaml:1: workers: 0 is out of range (1 to 256)\n"
                   "t.yaml:1: workers: expected a whole number, found 'x'\n");
    free(all);
    gyre_config_errors_dispose(&errs);
    CHECK_INT(errs.count, 0);
    CHECK(errs.items == NULL);
}

TEST(config_invalid_yaml_names_the_line_and_the_problem)
{
    CHECK_ERRORS("workers: 2\nlisten: a: b\nstore: {sqlite: x}\n",
                 "t.yaml:2: invalid YAML: mapping values are not allowed in this context\n");
}

TEST(config_an_empty_file_is_an_error)
{
    CHECK_ERRORS("", "t.yaml: the file is empty\n");
}

TEST(config_a_top_level_that_is_not_a_mapping_is_an_error)
{
    CHECK_ERRORS("- listen\n", "t.yaml:1: (top level): expected a mapping, found a list\n");
}

/* --- loading from a file -------------------------------------------------- */

TEST(config_load_names_errors_after_the_file)
{
    char path[] = "/tmp/gyre-conf-XXXXXX";
    write_temp(path, "workers: 1\nlisten: x\n");
    char expected[512];
    snprintf(expected, sizeof(expected), "%s:2: listen: 'x' is not HOST:PORT (for example 127.0.0.1:8080)", path);
    gyre_config_errors_t errs = {0};
    CHECK(gyre_config_load(path, &errs) == NULL);
    CHECK_INT(errs.count, 1);
    CHECK_STR(errs.items[0], expected);
    gyre_config_errors_dispose(&errs);
    unlink(path);
}

TEST(config_load_of_a_missing_file_says_it_cannot_open_it)
{
    gyre_config_errors_t errs = {0};
    CHECK(gyre_config_load("/nonexistent/gyre.yaml", &errs) == NULL);
    CHECK_INT(errs.count, 1);
    CHECK_STR(errs.items[0], "/nonexistent/gyre.yaml: cannot open: No such file or directory");
    gyre_config_errors_dispose(&errs);
}

/* --- helpers -------------------------------------------------------------- */

TEST(config_set_listen_takes_host_port_bracketed_v6_and_port_alone)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse("workers: 1\n", &errs);
    CHECK(c != NULL);
    CHECK_INT(gyre_config_set_listen(c, "0.0.0.0:9000"), 0);
    CHECK_STR(c->listen_host, "0.0.0.0");
    CHECK_INT(c->listen_port, 9000);
    CHECK_INT(gyre_config_set_listen(c, "[::]:443"), 0);
    CHECK_STR(c->listen_host, "::");
    CHECK_INT(c->listen_port, 443);
    CHECK_INT(gyre_config_set_listen(c, ":8081"), 0);
    CHECK_STR(c->listen_host, "0.0.0.0");
    CHECK_INT(c->listen_port, 8081);
    gyre_config_free(c);
}

TEST(config_set_listen_refuses_malformed_values_and_keeps_the_old_one)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse("listen: 127.0.0.1:8080\n", &errs);
    CHECK(c != NULL);
    CHECK_INT(gyre_config_set_listen(c, "8080"), -EINVAL);
    CHECK_INT(gyre_config_set_listen(c, "h:0"), -EINVAL);
    CHECK_INT(gyre_config_set_listen(c, "h:65536"), -EINVAL);
    CHECK_INT(gyre_config_set_listen(c, "h:80x"), -EINVAL);
    CHECK_INT(gyre_config_set_listen(c, "[::1]8080"), -EINVAL);
    CHECK_STR(c->listen_host, "127.0.0.1");
    CHECK_INT(c->listen_port, 8080);
    gyre_config_free(c);
}

TEST(config_find_compares_names_by_length_not_by_prefix)
{
    setenv("OPENAI_API_KEY", "sk-from-env", 1);
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse(minimal, &errs);
    CHECK(c != NULL);
    CHECK(gyre_config_find_provider(c, "primary/x", 7) == &c->providers[0]);
    CHECK(gyre_config_find_provider(c, "prim", 4) == NULL);
    CHECK(gyre_config_find_route(c, "chatty", 4) == &c->routes[0]);
    CHECK(gyre_config_find_route(c, "chatty", 6) == NULL);
    gyre_config_free(c);
}

/* --- the embedded default --------------------------------------------------- */

TEST(config_default_with_no_keys_has_no_providers_and_says_what_to_do)
{
    clear_provider_env();
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = gyre_config_default(&errs);
    CHECK(c != NULL);
    CHECK_INT(errs.count, 0);
    CHECK_STR(c->source, "<embedded default>");
    CHECK_STR(c->listen_host, "127.0.0.1");
    CHECK_INT(c->listen_port, 8080);
    CHECK_STR(c->store_sqlite, "./gyre.db");
    CHECK_INT(c->nproviders, 0);
    CHECK_INT(c->nroutes, 0);
    CHECK_INT(c->nnotes, 1);
    CHECK_STR(c->notes[0], "no provider configured: set OPENAI_API_KEY (or GROQ_API_KEY, MISTRAL_API_KEY, ...) or "
                           "pass --config FILE; every model request will answer 404 until then");
    gyre_config_free(c);
}

TEST(config_default_with_openai_key_routes_chat_and_embed_to_openai)
{
    clear_provider_env();
    setenv("OPENAI_API_KEY", "sk-o", 1);
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = gyre_config_default(&errs);
    CHECK(c != NULL);
    CHECK_INT(c->nproviders, 1);
    const gyre_provider_conf_t *p = &c->providers[0];
    CHECK_STR(p->name, "openai");
    CHECK_INT(p->is_https, 1);
    CHECK_STR(p->host, "api.openai.com");
    CHECK_INT(p->port, 443);
    CHECK_STR(p->base_path, "/v1");
    CHECK_INT(p->nkeys, 1);
    CHECK_STR(p->keys[0], "sk-o");
    CHECK_STR(p->key_ids[0], "openai#0");
    CHECK_INT(c->nroutes, 2);
    CHECK_STR(c->routes[0].name, "chat");
    CHECK_INT(c->routes[0].targets[0].provider, 0);
    CHECK_STR(c->routes[0].targets[0].model, "gpt-4o-mini");
    CHECK_STR(c->routes[1].name, "embed");
    CHECK_INT(c->routes[1].targets[0].provider, 0);
    CHECK_STR(c->routes[1].targets[0].model, "text-embedding-3-small");
    CHECK_INT(c->nnotes, 1);
    CHECK_STR(c->notes[0], "provider 'openai' (https://api.openai.com/v1) from OPENAI_API_KEY");
    gyre_config_free(c);
}

TEST(config_default_yaml_names_the_env_var_and_never_holds_the_key)
{
    clear_provider_env();
    setenv("OPENAI_API_KEY", "sk-very-secret", 1);
    char *yaml = gyre_config_default_yaml();
    CHECK(strstr(yaml, "keys: [\"env:OPENAI_API_KEY\"]") != NULL);
    CHECK(strstr(yaml, "sk-very-secret") == NULL);
    free(yaml);
}

TEST(config_default_takes_embeddings_from_the_first_provider_that_has_them)
{
    clear_provider_env();
    setenv("GROQ_API_KEY", "gsk-g", 1);
    setenv("MISTRAL_API_KEY", "m-k", 1);
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = gyre_config_default(&errs);
    CHECK(c != NULL);
    CHECK_INT(c->nproviders, 2);
    CHECK_STR(c->providers[0].name, "groq");
    CHECK_STR(c->providers[0].base_path, "/openai/v1");
    CHECK_STR(c->providers[1].name, "mistral");
    CHECK_STR(c->routes[0].name, "chat");
    CHECK_INT(c->routes[0].targets[0].provider, 0);
    CHECK_STR(c->routes[0].targets[0].model, "llama-3.1-8b-instant");
    CHECK_STR(c->routes[1].name, "embed");
    CHECK_INT(c->routes[1].targets[0].provider, 1);
    CHECK_STR(c->routes[1].targets[0].model, "mistral-embed");
    gyre_config_free(c);
}

TEST(config_default_with_the_mock_url_routes_chat_and_embed_to_it)
{
    clear_provider_env();
    setenv("GYRE_MOCK_URL", "http://127.0.0.1:9101/v1", 1);
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = gyre_config_default(&errs);
    CHECK(c != NULL);
    CHECK_INT(c->nproviders, 1);
    const gyre_provider_conf_t *p = &c->providers[0];
    CHECK_STR(p->name, "mock");
    CHECK_INT(p->is_https, 0);
    CHECK_STR(p->host, "127.0.0.1");
    CHECK_INT(p->port, 9101);
    CHECK_STR(p->base_path, "/v1");
    CHECK_INT(p->nkeys, 1);
    CHECK_STR(p->keys[0], "sk-mock");
    CHECK_INT(c->nroutes, 2);
    CHECK_STR(c->routes[0].name, "chat");
    CHECK_STR(c->routes[0].targets[0].model, "gpt-4o-mini");
    CHECK_STR(c->routes[1].name, "embed");
    CHECK_STR(c->routes[1].targets[0].model, "text-embedding-3-small");
    CHECK_INT(c->nnotes, 1);
    CHECK_STR(c->notes[0], "no provider API key in the environment: routing to gyre-mock at http://127.0.0.1:9101/v1, "
                           "a fake provider with canned answers (set OPENAI_API_KEY or pass --config for real "
                           "providers)");
    gyre_config_free(c);
}

TEST(config_default_prefers_a_real_provider_to_the_mock_for_routes)
{
    clear_provider_env();
    setenv("OPENAI_API_KEY", "sk-o", 1);
    setenv("GYRE_MOCK_URL", "http://127.0.0.1:9101/v1", 1);
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = gyre_config_default(&errs);
    CHECK(c != NULL);
    CHECK_INT(c->nproviders, 2);
    CHECK_STR(c->providers[0].name, "openai");
    CHECK_STR(c->providers[1].name, "mock");
    CHECK_INT(c->routes[0].targets[0].provider, 0);
    CHECK_INT(c->routes[1].targets[0].provider, 0);
    gyre_config_free(c);
}

TEST(config_default_builds_anthropic_and_gemini_providers_the_chat_route_falls_back_to)
{
    clear_provider_env();
    setenv("OPENAI_API_KEY", "sk-o", 1);
    setenv("ANTHROPIC_API_KEY", "sk-ant", 1);
    setenv("GEMINI_API_KEY", "g-key", 1);
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = gyre_config_default(&errs);
    CHECK(c != NULL);
    CHECK_INT(c->nproviders, 3);
    CHECK_STR(c->providers[1].name, "anthropic");
    CHECK_INT(c->providers[1].kind, GYRE_PROVIDER_ANTHROPIC);
    CHECK_STR(c->providers[1].base_path, "/v1");
    CHECK_STR(c->providers[1].keys[0], "sk-ant");
    CHECK_STR(c->providers[2].name, "gemini");
    CHECK_INT(c->providers[2].kind, GYRE_PROVIDER_GEMINI);
    CHECK_STR(c->providers[2].base_path, "/v1beta");
    CHECK_STR(c->routes[0].name, "chat");
    CHECK_INT(c->routes[0].targets[0].provider, 0);
    CHECK_INT(c->routes[0].nfallbacks, 2);
    CHECK_STR(c->routes[0].fallbacks[0].model, "claude-haiku-4-5");
    CHECK_INT(c->routes[0].fallbacks[1].provider, 2);
    CHECK_STR(c->routes[0].fallbacks[1].model, "gemini-2.5-flash");
    CHECK_INT(c->nnotes, 3);
    CHECK_STR(c->notes[1], "provider 'anthropic' (https://api.anthropic.com/v1) from ANTHROPIC_API_KEY");
    gyre_config_free(c);
}

TEST(config_route_routing_fields_are_read_with_their_defaults)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse("providers:\n"
                             "  - {name: a, kind: anthropic, base_url: 'http://h/v1', keys: [{key: k1, weight: 3}, k2],"
                             " key_strategy: weighted, breaker: {failures: 3, cooldown_ms: 250}}\n"
                             "  - {name: b, kind: bedrock, base_url: 'https://bedrock-runtime.eu-west-3.amazonaws.com',"
                             " keys: ['AKID:SECRET']}\n"
                             "routes:\n"
                             "  - name: chat\n"
                             "    strategy: least_latency\n"
                             "    targets: [{provider: a, model: m}]\n"
                             "    fallbacks: [{provider: b, model: n}]\n"
                             "    fallback_on: [connect, 429, 503]\n"
                             "    retries: 2\n"
                             "    backoff_ms: 50\n"
                             "    deadline_ms: 9000\n"
                             "    first_byte_timeout_ms: 700\n"
                             "    midstream: resume\n"
                             "    affinity: session\n"
                             "    cache: {ttl_ms: 1000, max_bytes: 65536}\n"
                             "  - {name: plain, targets: [{provider: a, model: m}]}\n",
                             &errs);
    CHECK(c != NULL);
    const gyre_provider_conf_t *a = &c->providers[0], *b = &c->providers[1];
    CHECK_INT(a->key_weights[0], 3);
    CHECK_INT(a->key_weights[1], 1);
    CHECK_INT(a->key_strategy, GYRE_KEYS_WEIGHTED);
    CHECK_INT(a->breaker.failures, 3);
    CHECK_INT(a->breaker.cooldown_ms, 250);
    CHECK_INT(a->breaker.error_rate_pct, 50);
    CHECK_STR(a->api_version, "2023-06-01");
    CHECK_INT(a->max_tokens, 4096);
    CHECK_STR(b->region, "eu-west-3");
    const gyre_route_conf_t *r = &c->routes[0];
    CHECK_INT(r->strategy, GYRE_STRATEGY_LEAST_LATENCY);
    CHECK_INT(r->nfallbacks, 1);
    CHECK_STR(r->fallbacks[0].model, "n");
    CHECK_INT(r->fallback_on, GYRE_FALLBACK_CONNECT);
    CHECK_INT(r->nfallback_statuses, 2);
    CHECK_INT(r->fallback_statuses[0], 429);
    CHECK_INT(r->fallback_statuses[1], 503);
    CHECK_INT(r->retries, 2);
    CHECK_INT(r->backoff_ms, 50);
    CHECK_INT(r->backoff_max_ms, 5000);
    CHECK_INT(r->deadline_ms, 9000);
    CHECK_INT(r->first_byte_timeout_ms, 700);
    CHECK_INT(r->midstream_resume, 1);
    CHECK_INT(r->affinity_session, 1);
    CHECK_INT(r->cache, 1);
    CHECK_INT(r->cache_ttl_ms, 1000);
    CHECK_INT(r->cache_max_bytes, 65536);
    const gyre_route_conf_t *p = &c->routes[1];
    CHECK_INT(p->strategy, GYRE_STRATEGY_WEIGHTED);
    CHECK_INT(p->fallback_on, GYRE_FALLBACK_CONNECT | GYRE_FALLBACK_TIMEOUT);
    CHECK_INT(p->nfallback_statuses, 6);
    CHECK_INT(p->fallback_statuses[5], 529);
    CHECK_INT(p->midstream_resume, 0);
    CHECK_INT(p->cache, 0);
    gyre_config_free(c);
}

TEST(config_routing_mistakes_are_named)
{
    CHECK_ERRORS("providers:\n"
                 "  - {name: a, kind: openai, base_url: 'http://h/v1', breaker: {failures: x}}\n"
                 "  - {name: b, kind: bedrock, base_url: 'http://h', keys: ['AKID:']}\n"
                 "routes:\n"
                 "  - {name: chat, targets: [{provider: a, model: m}], strategy: fastest, fallback_on: [404, boom],"
                 " midstream: maybe, backoff_ms: 10, backoff_max_ms: 5, fallbacks: [{provider: zz, model: m}]}\n",
                 "t.yaml:2: providers[0].breaker.failures: expected a whole number, found 'x'\n"
                 "t.yaml:3: providers[1].keys[0]: a bedrock key is ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN] or "
                 "a Bedrock API key\n"
                 "t.yaml:5: routes[0].strategy: unknown value 'fastest' (supported: weighted, least_latency, "
                 "least_inflight, cheapest)\n"
                 "t.yaml:5: routes[0].fallback_on[0]: 404 is the client's mistake, which another target would answer "
                 "the same way (allowed: 408, 409, 429 and 5xx)\n"
                 "t.yaml:5: routes[0].fallback_on[1]: 'boom' is not a failure gyre falls back on (connect, timeout, or "
                 "a status 408-599)\n"
                 "t.yaml:5: routes[0].midstream: unknown value 'maybe' (supported: error, resume)\n"
                 "t.yaml:5: routes[0].fallbacks[0].provider: no provider is named 'zz'\n"
                 "t.yaml:5: routes[0].backoff_max_ms: 5 is less than backoff_ms (10)\n");
}

TEST(config_traces_are_on_whenever_a_store_is_configured_and_off_when_it_says_so)
{
    gyre_config_errors_t errs = {0};
    /* The README's minimal store: every call is stored (issue 12). */
    gyre_config_t *c = parse("store: {sqlite: /tmp/t.db}\n", &errs);
    CHECK(c != NULL);
    CHECK_INT(c->traces, 1);
    CHECK_INT(c->store_capture, 1);
    gyre_config_free(c);
    c = parse("store: {sqlite: /tmp/t.db, traces: false}\n", &errs);
    CHECK(c != NULL);
    CHECK_INT(c->traces, 0);
    CHECK_STR(c->store_sqlite, "/tmp/t.db");
    gyre_config_free(c);
    c = parse("store: {sqlite: /tmp/t.db, traces: true}\n", &errs);
    CHECK(c != NULL);
    CHECK_INT(c->traces, 1);
    gyre_config_free(c);
    CHECK_ERRORS("store: {traces: sometimes}\n", "t.yaml:1: store.traces: expected true or false, found 'sometimes'\n");
    clear_provider_env();
    c = gyre_config_default(&errs);
    CHECK(c != NULL);
    CHECK_INT(c->traces, 1);
    CHECK_STR(c->store_sqlite, "./gyre.db");
    gyre_config_free(c);
}

/* --- privacy: capture and redact (issue 5, point 8) ---------------------- */

TEST(config_capture_and_redact_default_to_bodies_kept_and_all_four_kinds)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse(PROVIDER_P "routes:\n  - {name: r, targets: [{provider: p, model: m}]}\n", &errs);
    CHECK(c != NULL);
    CHECK_INT(c->store_capture, 1);
    CHECK_INT(c->redact, GYRE_REDACT_ALL);
    CHECK_INT(c->routes[0].capture, 1);
    CHECK_INT(c->routes[0].redact, GYRE_REDACT_ALL);
    gyre_config_free(c);
}

TEST(config_route_capture_false_and_store_capture_false_are_read)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse("store: {traces: true, capture: false}\n" PROVIDER_P
                             "routes:\n  - {name: r, capture: false, targets: [{provider: p, model: m}]}\n"
                             "  - {name: s, capture: true, targets: [{provider: p, model: m}]}\n",
                             &errs);
    CHECK(c != NULL);
    CHECK_INT(c->store_capture, 0);
    CHECK_INT(c->routes[0].capture, 0);
    CHECK_INT(c->routes[1].capture, 1);
    gyre_config_free(c);
}

TEST(config_root_redact_is_every_route_default_and_a_route_overrides_it)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse(PROVIDER_P "routes:\n  - {name: r, targets: [{provider: p, model: m}]}\n"
                                        "  - {name: s, redact: [api_key], targets: [{provider: p, model: m}]}\n"
                                        "  - {name: t, redact: true, targets: [{provider: p, model: m}]}\n"
                                        "redact: [email, card]\n",
                             &errs);
    CHECK(c != NULL);
    CHECK_INT(c->redact, GYRE_REDACT_EMAIL | GYRE_REDACT_CARD);
    CHECK_INT(c->routes[0].redact, GYRE_REDACT_EMAIL | GYRE_REDACT_CARD);
    CHECK_INT(c->routes[1].redact, GYRE_REDACT_API_KEY);
    CHECK_INT(c->routes[2].redact, GYRE_REDACT_ALL);
    gyre_config_free(c);
}

TEST(config_redact_false_and_an_empty_list_turn_it_off)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse("redact: false\n" PROVIDER_P
                             "routes:\n  - {name: r, redact: [], targets: [{provider: p, model: m}]}\n",
                             &errs);
    CHECK(c != NULL);
    CHECK_INT(c->redact, 0);
    CHECK_INT(c->routes[0].redact, 0);
    gyre_config_free(c);
}

TEST(config_redact_errors_name_the_field_the_line_and_the_known_kinds)
{
    CHECK_ERRORS("redact: [email, ssn]\n", "t.yaml:1: redact[1]: unknown kind 'ssn' (known: email, phone, card, "
                                           "api_key)\n");
    CHECK_ERRORS("redact: sometimes\n", "t.yaml:1: redact: expected true or false, found 'sometimes'\n");
    CHECK_ERRORS(PROVIDER_P "routes:\n  - name: r\n    targets: [{provider: p, model: m}]\n    redact: {email: 1}\n"
                            "    capture: maybe\n",
                 "t.yaml:6: routes[0].redact: expected a list, found a mapping\n"
                 "t.yaml:7: routes[0].capture: expected true or false, found 'maybe'\n");
    CHECK_ERRORS("store: {capture: 2}\n", "t.yaml:1: store.capture: expected true or false, found '2'\n");
}

/* --- price overrides on a provider (issue 5, point 3) -------------------- */

TEST(config_provider_prices_are_read_into_the_providers_own_table)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse("providers:\n"
                             "  - name: p\n"
                             "    kind: openai\n"
                             "    base_url: 'http://h/v1'\n"
                             "    prices:\n"
                             "      gpt-4o: {input: 2, output: 8, cached_input: 0.5}\n"
                             "      my-model: {input: 0.25, output: 1}\n",
                             &errs);
    CHECK(c != NULL);
    CHECK_INT(errs.count, 0);
    const gyre_prices_t *pr = c->providers[0].prices;
    CHECK(pr != NULL);
    CHECK_INT(gyre_prices_count(pr), 2);
    const gyre_price_t *g = gyre_prices_find(pr, "gpt-4o", 6);
    CHECK(g != NULL && g->input == 2 && g->output == 8 && g->cached_input == 0.5 && g->cache_write == -1);
    const gyre_price_t *m = gyre_prices_find(pr, "my-model", 8);
    CHECK(m != NULL && m->input == 0.25 && m->output == 1 && m->cached_input == -1);
    gyre_config_free(c);
}

TEST(config_a_provider_without_prices_has_no_table)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse(PROVIDER_P, &errs);
    CHECK(c != NULL);
    CHECK(c->providers[0].prices == NULL);
    gyre_config_free(c);
}

TEST(config_provider_price_errors_name_the_model_the_field_and_the_line)
{
    CHECK_ERRORS("providers:\n"
                 "  - name: p\n"
                 "    kind: openai\n"
                 "    base_url: 'http://h/v1'\n"
                 "    prices:\n"
                 "      a: {input: cheap, output: 1}\n"
                 "      b: {input: -1, output: 1}\n"
                 "      c: {input: 1, outptu: 2}\n"
                 "      d: {output: 1}\n"
                 "      e: 3\n",
                 "t.yaml:6: providers[0].prices.a.input: expected a price >= 0 in USD per million tokens, found "
                 "'cheap'\n"
                 "t.yaml:7: providers[0].prices.b.input: expected a price >= 0 in USD per million tokens, found '-1'\n"
                 "t.yaml:8: providers[0].prices.c: unknown field 'outptu' (known: input, output, cached_input, "
                 "cache_write)\n"
                 "t.yaml:8: providers[0].prices.c.output: is required\n"
                 "t.yaml:9: providers[0].prices.d.input: is required\n"
                 "t.yaml:10: providers[0].prices.e: expected a mapping, found a scalar\n");
}

TEST(config_provider_prices_list_a_model_once)
{
    CHECK_ERRORS("providers:\n"
                 "  - name: p\n"
                 "    kind: openai\n"
                 "    base_url: 'http://h/v1'\n"
                 "    prices: {m: {input: 1, output: 2}, m: {input: 3, output: 4}}\n",
                 "t.yaml:5: providers[0].prices.m: listed twice\n");
    CHECK_ERRORS(PROVIDER_P "  - {name: q, kind: openai, base_url: 'http://h/v1', prices: [gpt-4o]}\n",
                 "t.yaml:3: providers[1].prices: expected a mapping, found a list\n");
}
