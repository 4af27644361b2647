/*
 * What a new operator meets first: the embedded default `make run` starts gyre on (which provider answers
 * which route, given the key variables set), and a configuration read by the commands that only read the
 * store, which need none of the providers' secrets.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "config/config_int.h"
#include "config_test.h"
#include "test.h"

static void clear_env(void)
{
    const char *vars[] = {"OPENAI_API_KEY",   "GROQ_API_KEY",     "MISTRAL_API_KEY",   "DEEPSEEK_API_KEY",
                          "TOGETHER_API_KEY", "OPENROUTER_API_KEY", "GYRE_MOCK_URL", "ANTHROPIC_API_KEY",
                          "GEMINI_API_KEY",   "DAYONE_TEST_KEY",  "DAYONE_TEST_TOKEN"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
}

TEST(config_default_yaml_with_only_anthropic_routes_chat_to_it_and_nothing_to_the_mock)
{
    clear_env();
    setenv("ANTHROPIC_API_KEY", "sk-ant-x", 1);
    setenv("GYRE_MOCK_URL", "http://127.0.0.1:9101/v1", 1);
    char *y = gyre_config_default_yaml();
    CHECK_STR(y, "listen: 127.0.0.1:8080\n"
                 "store: {sqlite: ./gyre.db, traces: true}\n"
                 "feedback: {metrics: [{name: thumbs, type: boolean}, "
                 "{name: rating, type: number, min: 1, max: 5}]}\n"
                 "providers:\n"
                 "  - {name: anthropic, kind: anthropic, base_url: \"https://api.anthropic.com/v1\", keys: "
                 "[\"env:ANTHROPIC_API_KEY\"]}\n"
                 "  - {name: mock, kind: openai, base_url: \"http://127.0.0.1:9101/v1\", keys: [sk-mock]}\n"
                 "routes:\n"
                 "  - {name: chat, targets: [{provider: anthropic, model: \"claude-haiku-4-5\"}]}\n");
    free(y);
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = gyre_config_default(&errs);
    CHECK(c != NULL);
    CHECK_INT(c->nroutes, 1);
    CHECK_INT(c->nnotes, 1);
    CHECK_STR(c->notes[0], "provider 'anthropic' (https://api.anthropic.com/v1) from ANTHROPIC_API_KEY");
    gyre_config_free(c);
}

TEST(config_default_yaml_with_only_gemini_routes_chat_to_gemini_and_has_no_embed_route)
{
    clear_env();
    setenv("GEMINI_API_KEY", "g-key", 1);
    char *y = gyre_config_default_yaml();
    CHECK_STR(y, "listen: 127.0.0.1:8080\n"
                 "store: {sqlite: ./gyre.db, traces: true}\n"
                 "feedback: {metrics: [{name: thumbs, type: boolean}, "
                 "{name: rating, type: number, min: 1, max: 5}]}\n"
                 "providers:\n"
                 "  - {name: gemini, kind: gemini, base_url: \"https://generativelanguage.googleapis.com/v1beta\", "
                 "keys: [\"env:GEMINI_API_KEY\"]}\n"
                 "routes:\n"
                 "  - {name: chat, targets: [{provider: gemini, model: \"gemini-2.5-flash\"}]}\n");
    free(y);
}

TEST(config_default_yaml_with_anthropic_and_gemini_falls_back_from_one_to_the_other)
{
    clear_env();
    setenv("ANTHROPIC_API_KEY", "sk-ant-x", 1);
    setenv("GEMINI_API_KEY", "g-key", 1);
    char *y = gyre_config_default_yaml();
    CHECK(y != NULL && strstr(y, "  - {name: chat, targets: [{provider: anthropic, model: \"claude-haiku-4-5\"}], "
                                 "fallbacks: [{provider: gemini, model: \"gemini-2.5-flash\"}]}\n") != NULL);
    CHECK(y != NULL && strstr(y, "mock") == NULL);
    CHECK(y != NULL && strstr(y, "embed") == NULL);
    free(y);
}

TEST(config_default_yaml_with_no_key_routes_chat_and_embed_to_the_mock)
{
    clear_env();
    setenv("GYRE_MOCK_URL", "http://127.0.0.1:9101/v1", 1);
    char *y = gyre_config_default_yaml();
    CHECK_STR(y, "listen: 127.0.0.1:8080\n"
                 "store: {sqlite: ./gyre.db, traces: true}\n"
                 "feedback: {metrics: [{name: thumbs, type: boolean}, "
                 "{name: rating, type: number, min: 1, max: 5}]}\n"
                 "providers:\n"
                 "  - {name: mock, kind: openai, base_url: \"http://127.0.0.1:9101/v1\", keys: [sk-mock]}\n"
                 "routes:\n"
                 "  - {name: chat, targets: [{provider: mock, model: \"gpt-4o-mini\"}]}\n"
                 "  - {name: embed, targets: [{provider: mock, model: \"text-embedding-3-small\"}]}\n");
    free(y);
}

static const char with_secrets[] = "store: {sqlite: ./x.db}\n"
                                   "auth: {keys: [env:DAYONE_TEST_KEY, file:/nonexistent/keys], admin_token: "
                                   "env:DAYONE_TEST_TOKEN}\n"
                                   "providers:\n"
                                   "  - {name: p, kind: openai, base_url: 'http://h/v1', keys: [env:DAYONE_TEST_KEY]}\n"
                                   "  - {name: b, kind: bedrock, base_url: 'https://bedrock-runtime.eu-west-1."
                                   "amazonaws.com', keys: [file:/nonexistent/aws]}\n"
                                   "routes:\n"
                                   "  - {name: chat, targets: [{provider: p, model: m}]}\n";

static char *write_config(const char *text)
{
    static char path[] = "/tmp/gyre-dayone-XXXXXX";
    strcpy(path, "/tmp/gyre-dayone-XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    return path;
}

TEST(config_load_unresolved_reads_a_config_whose_secret_variables_and_files_are_missing)
{
    clear_env();
    char *path = write_config(with_secrets);
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = gyre_config_load_unresolved(path, &errs);
    CHECK(c != NULL);
    CHECK_INT(errs.count, 0);
    CHECK_STR(c->store_sqlite, "./x.db");
    CHECK_INT(c->nproviders, 2);
    CHECK_STR(c->providers[0].keys[0], "unresolved:env:DAYONE_TEST_KEY");
    CHECK_STR(c->providers[0].key_ids[0], "p#0");
    CHECK_STR(c->providers[1].keys[0], "unresolved:file:/nonexistent/aws");
    CHECK_INT(c->auth.nkeys, 2);
    CHECK_STR(c->auth.keys[1], "unresolved:file:/nonexistent/keys");
    CHECK_STR(c->auth.admin_token, "unresolved:env:DAYONE_TEST_TOKEN");
    gyre_config_free(c);
    gyre_config_errors_dispose(&errs);
    unlink(path);
}

TEST(config_load_of_the_same_file_still_reports_each_missing_secret)
{
    clear_env();
    char *path = write_config(with_secrets);
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = gyre_config_load(path, &errs);
    CHECK(c == NULL);
    CHECK_INT(errs.count, 5);
    const char *tails[] = {"2: auth.keys[0]: environment variable DAYONE_TEST_KEY is not set",
                           "2: auth.keys[1]: cannot read key file /nonexistent/keys: No such file or directory",
                           "2: auth.admin_token: environment variable DAYONE_TEST_TOKEN is not set",
                           "4: providers[0].keys[0]: environment variable DAYONE_TEST_KEY is not set",
                           "5: providers[1].keys[0]: cannot read key file /nonexistent/aws: No such file or directory"};
    for (size_t i = 0; i < errs.count && i < 5; i++) {
        char want[256];
        snprintf(want, sizeof(want), "%s:%s", path, tails[i]);
        CHECK_STR(errs.items[i], want);
    }
    gyre_config_errors_dispose(&errs);
    unlink(path);
}

TEST(config_load_unresolved_still_reports_every_other_error)
{
    clear_env();
    char *path = write_config("providers: [{name: p, kind: openai, base_url: 'http://h/v1', keys: [env:X], "
                              "colour: red}]\n");
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = gyre_config_load_unresolved(path, &errs);
    CHECK(c == NULL);
    CHECK_INT(errs.count, 1);
    CHECK(errs.count == 1 && strstr(errs.items[0], "providers[0]: unknown field 'colour'") != NULL);
    gyre_config_errors_dispose(&errs);
    unlink(path);
}

TEST(config_unresolved_secret_is_long_enough_and_printable)
{
    char *s = gyre_cfg_unresolved_secret("env:A");
    CHECK_STR(s, "unresolved:env:A");
    free(s);
    s = gyre_cfg_unresolved_secret("file:/a b\tc");
    CHECK_STR(s, "unresolved:file:/a_b_c");
    free(s);
    s = gyre_cfg_unresolved_secret("");
    CHECK_STR(s, "unresolved:_____");
    free(s);
}
