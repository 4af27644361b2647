#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

static const char minimal[] = "listen: 127.0.0.1:8080\n"
                              "workers: 2\n"
                              "store: {sqlite: ./gyre.db}\n"
                              "providers:\n"
                              "  - {name: primary, kind: openai, base_url: http://127.0.0.1:9101/v1, keys: [sk-a, "
                              "env:OPENAI_API_KEY]}\n"
                              "routes:\n"
                              "  - name: chat\n"
                              "    targets: [{provider: primary, model: gpt-4o-mini, weight: 100}]\n";

static gyre_config_t *parse(const char *yaml, gyre_config_errors_t *errs)
{
    return gyre_config_parse("t.yaml", yaml, strlen(yaml), errs);
}

/* All errors joined by newlines, for exact comparison. */
static char *joined(const gyre_config_errors_t *errs)
{
    size_t n = 1;
    for (size_t i = 0; i < errs->count; i++)
        n += strlen(errs->items[i]) + 1;
    char *s = calloc(1, n);
    for (size_t i = 0; i < errs->count; i++) {
        strcat(s, errs->items[i]);
        strcat(s, "\n");
    }
    return s;
}

TEST(config_minimal_shape_loads_every_field)
{
    setenv("OPENAI_API_KEY", "sk-from-env", 1);
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse(minimal, &errs);
    CHECK(c != NULL);
    CHECK_INT(errs.count, 0);
    CHECK_STR(c->listen_host, "127.0.0.1");
    CHECK_INT(c->listen_port, 8080);
    CHECK_INT(c->workers, 2);
    CHECK_STR(c->store_sqlite, "./gyre.db");
    CHECK_INT(c->max_body_bytes, 8 * 1024 * 1024);
    CHECK_INT(c->nproviders, 1);
    const gyre_provider_conf_t *p = &c->providers[0];
    CHECK_STR(p->name, "primary");
    CHECK_INT(p->kind, GYRE_PROVIDER_OPENAI);
    CHECK_INT(p->is_https, 0);
    CHECK_STR(p->host, "127.0.0.1");
    CHECK_INT(p->port, 9101);
    CHECK_STR(p->base_path, "/v1");
    CHECK_INT(p->nkeys, 2);
    CHECK_STR(p->keys[0], "sk-a");
    CHECK_STR(p->keys[1], "sk-from-env");
    CHECK_STR(p->key_ids[0], "primary#0");
    CHECK_STR(p->key_ids[1], "primary#1");
    CHECK_INT(p->tls_verify, 1);
    CHECK_INT(p->timeout_ms, 120000);
    CHECK_INT(c->nroutes, 1);
    CHECK_STR(c->routes[0].name, "chat");
    CHECK_INT(c->routes[0].ntargets, 1);
    CHECK_INT(c->routes[0].targets[0].provider, 0);
    CHECK_STR(c->routes[0].targets[0].model, "gpt-4o-mini");
    CHECK_INT(c->routes[0].targets[0].weight, 100);
    CHECK_INT(c->routes[0].total_weight, 100);
    gyre_config_free(c);
}

TEST(config_https_base_url_defaults_to_port_443_and_keeps_a_deeper_path)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse("providers:\n  - {name: groq, kind: openai, base_url: 'https://api.groq.com/openai/v1/'}\n",
                             &errs);
    CHECK(c != NULL);
    CHECK_INT(c->providers[0].is_https, 1);
    CHECK_STR(c->providers[0].host, "api.groq.com");
    CHECK_INT(c->providers[0].port, 443);
    CHECK_STR(c->providers[0].base_path, "/openai/v1");
    CHECK_INT(c->providers[0].nkeys, 0);
    gyre_config_free(c);
}

TEST(config_file_keys_are_read_and_trimmed)
{
    char path[] = "/tmp/gyre-key-XXXXXX";
    int fd = mkstemp(path);
    CHECK(write(fd, "  sk-file-key\n\n", 15) == 15);
    close(fd);
    char yaml[512];
    snprintf(yaml, sizeof(yaml), "providers:\n  - {name: p, kind: openai, base_url: 'http://h/v1', keys: ['file:%s']}\n",
             path);
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse(yaml, &errs);
    CHECK(c != NULL);
    CHECK_STR(c->providers[0].keys[0], "sk-file-key");
    gyre_config_free(c);
    unlink(path);
}

TEST(config_collects_every_error_with_line_and_field)
{
    unsetenv("GYRE_UNIT_MISSING");
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse("listen: nope\n"
                             "workers: 0\n"
                             "colour: blue\n"
                             "providers:\n"
                             "  - {name: a, kind: openai, base_url: 'http://h:99999/v1', keys: [env:GYRE_UNIT_MISSING]}\n"
                             "  - {name: a, base_url: 'http://h/v1'}\n"
                             "routes:\n"
                             "  - {name: 'x/y', targets: [{provider: zz}]}\n",
                             &errs);
    CHECK(c == NULL);
    char *all = joined(&errs);
    CHECK_STR(all, "t.yaml:1: listen: 'nope' is not HOST:PORT (for example 127.0.0.1:8080)\n"
                   "t.yaml:2: workers: 0 is out of range (1 to 256)\n"
                   "t.yaml:3: unknown field 'colour' (known: listen, workers, store, providers, routes, "
                   "max_body_bytes, shutdown_grace_ms)\n"
                   "t.yaml:5: providers[0].base_url: 'http://h:99999/v1' has an invalid port\n"
                   "t.yaml:5: providers[0].keys[0]: environment variable GYRE_UNIT_MISSING is not set\n"
                   "t.yaml:6: providers[1].kind: is required (supported: openai)\n"
                   "t.yaml:6: providers[1].name: 'a' is already used by providers[0]\n"
                   "t.yaml:8: routes[0].name: 'x/y' is not a valid route name (letters, digits, '-', '_', '.', "
                   "':'; no '/')\n"
                   "t.yaml:8: routes[0].targets[0].provider: no provider is named 'zz'\n"
                   "t.yaml:8: routes[0].targets[0].model: is required\n");
    free(all);
    gyre_config_errors_dispose(&errs);
}

TEST(config_errors_never_contain_a_key_value)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse("providers:\n  - {name: p, kind: nope, base_url: 'http://h/v1', keys: [sk-secret-123, ''],"
                             " tls_verify: maybe}\n",
                             &errs);
    CHECK(c == NULL);
    char *all = joined(&errs);
    CHECK(strstr(all, "sk-secret-123") == NULL);
    CHECK(strstr(all, "providers[0].keys[1]: is empty") != NULL);
    CHECK(strstr(all, "providers[0].tls_verify: expected true or false, found 'maybe'") != NULL);
    free(all);
    gyre_config_errors_dispose(&errs);
}

TEST(config_invalid_yaml_names_the_line)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse("listen: 127.0.0.1:8080\nproviders: [\n  {name: a\n", &errs);
    CHECK(c == NULL);
    CHECK_INT(errs.count, 1);
    CHECK(strncmp(errs.items[0], "t.yaml:4: invalid YAML: ", 24) == 0);
    gyre_config_errors_dispose(&errs);
}

TEST(config_route_weights_that_add_up_to_zero_are_an_error)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse("providers:\n  - {name: p, kind: openai, base_url: 'http://h/v1'}\nroutes:\n"
                             "  - {name: r, targets: [{provider: p, model: m, weight: 0}]}\n",
                             &errs);
    CHECK(c == NULL);
    CHECK_INT(errs.count, 1);
    CHECK_STR(errs.items[0], "t.yaml:4: routes[0].targets: the weights of the targets add up to 0");
    gyre_config_errors_dispose(&errs);
}

static void clear_provider_env(void)
{
    const char *vars[] = {"OPENAI_API_KEY",   "GROQ_API_KEY",       "MISTRAL_API_KEY", "DEEPSEEK_API_KEY",
                          "TOGETHER_API_KEY", "OPENROUTER_API_KEY", "GYRE_MOCK_URL",   "ANTHROPIC_API_KEY",
                          "GEMINI_API_KEY"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
}

TEST(config_default_with_no_keys_has_no_providers_and_says_what_to_do)
{
    clear_provider_env();
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = gyre_config_default(&errs);
    CHECK(c != NULL);
    CHECK_STR(c->source, "<embedded default>");
    CHECK_STR(c->listen_host, "127.0.0.1");
    CHECK_INT(c->listen_port, 8080);
    CHECK_STR(c->store_sqlite, "./gyre.db");
    CHECK_INT(c->nproviders, 0);
    CHECK_INT(c->nroutes, 0);
    CHECK_INT(c->nnotes, 1);
    CHECK(strncmp(c->notes[0], "no provider configured: set OPENAI_API_KEY", 42) == 0);
    gyre_config_free(c);
}

TEST(config_default_with_openai_and_groq_keys_routes_to_the_first)
{
    clear_provider_env();
    setenv("OPENAI_API_KEY", "sk-o", 1);
    setenv("GROQ_API_KEY", "gsk-g", 1);
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = gyre_config_default(&errs);
    CHECK(c != NULL);
    CHECK_INT(c->nproviders, 2);
    CHECK_STR(c->providers[0].name, "openai");
    CHECK_STR(c->providers[0].host, "api.openai.com");
    CHECK_STR(c->providers[0].keys[0], "sk-o");
    CHECK_STR(c->providers[1].name, "groq");
    CHECK_STR(c->providers[1].base_path, "/openai/v1");
    CHECK_INT(c->nroutes, 2);
    CHECK_STR(c->routes[0].name, "chat");
    CHECK_STR(c->routes[0].targets[0].model, "gpt-4o-mini");
    CHECK_STR(c->routes[1].name, "embed");
    CHECK_STR(c->routes[1].targets[0].model, "text-embedding-3-small");
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
    CHECK_STR(c->providers[0].name, "mock");
    CHECK_INT(c->providers[0].port, 9101);
    CHECK_STR(c->routes[0].name, "chat");
    CHECK_STR(c->routes[1].name, "embed");
    CHECK(strstr(c->notes[c->nnotes - 1], "routing to gyre-mock at http://127.0.0.1:9101/v1") != NULL);
    gyre_config_free(c);
}
