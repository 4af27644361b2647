/*
 * src/config/config.c, the access fields: `auth:` (keys from literals,
 * env:NAME and keys files, tokens, `auth: none`), `direct:` and
 * `passthrough:`, with every error naming its field and never a secret.
 * Each test runs in its own process, so setenv/unsetenv stay local to it.
 */
#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_test.h"
#include "test.h"

TEST(config_auth_absent_is_unset_and_auth_none_is_none)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse(PROVIDER_P, &errs);
    CHECK(c != NULL);
    CHECK_INT(c->auth.mode, GYRE_AUTH_UNSET);
    gyre_config_free(c);
    c = parse("auth: none\n" PROVIDER_P, &errs);
    CHECK(c != NULL);
    CHECK_INT(c->auth.mode, GYRE_AUTH_NONE);
    CHECK_INT(c->auth.nkeys, 0);
    gyre_config_free(c);
}

TEST(config_auth_loads_keys_from_literals_env_and_a_file_of_one_key_a_line)
{
    setenv("GYRE_T_KEY", "sk-from-env-0123456789", 1);
    setenv("GYRE_T_ADMIN", "admin-from-env-0123456789", 1);
    char path[] = "/tmp/gyre-auth-keys-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char *file = "# team keys\n\nsk-file-one-0123456789\n  sk-file-two-0123456789  \r\n# end\n";
    CHECK(write(fd, file, strlen(file)) == (ssize_t)strlen(file));
    close(fd);
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "auth:\n  keys: [sk-literal-0123456789, env:GYRE_T_KEY, 'file:%s']\n  admin_token: env:GYRE_T_ADMIN\n"
             "  read_token: read-literal-0123456789\n" PROVIDER_P,
             path);
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse(yaml, &errs);
    unlink(path);
    CHECK(c != NULL);
    CHECK_INT(errs.count, 0);
    CHECK_INT(c->auth.mode, GYRE_AUTH_KEYS);
    CHECK_INT(c->auth.nkeys, 4);
    CHECK_STR(c->auth.keys[0], "sk-literal-0123456789");
    CHECK_STR(c->auth.keys[1], "sk-from-env-0123456789");
    CHECK_STR(c->auth.keys[2], "sk-file-one-0123456789");
    CHECK_STR(c->auth.keys[3], "sk-file-two-0123456789");
    CHECK_STR(c->auth.admin_token, "admin-from-env-0123456789");
    CHECK_STR(c->auth.read_token, "read-literal-0123456789");
    gyre_config_free(c);
}

TEST(config_auth_unset_or_empty_env_is_an_error_naming_the_field)
{
    unsetenv("GYRE_T_UNSET");
    setenv("GYRE_T_EMPTY", "", 1);
    CHECK_ERRORS("auth:\n  keys: [sk-literal-0123456789, env:GYRE_T_UNSET, env:GYRE_T_EMPTY]\n" PROVIDER_P,
                 "t.yaml:2: auth.keys[1]: environment variable GYRE_T_UNSET is not set\n"
                 "t.yaml:2: auth.keys[2]: environment variable GYRE_T_EMPTY is not set\n");
}

TEST(config_auth_short_or_unprintable_secrets_are_errors_that_never_echo_them)
{
    setenv("GYRE_T_SHORT", "sk-short", 1);
    CHECK_ERRORS("auth:\n  keys: [sk-tiny, env:GYRE_T_SHORT, 'sk-has a space-0123456789']\n"
                 "  read_token: tooshort\n" PROVIDER_P,
                 "t.yaml:2: auth.keys[0]: is shorter than 16 characters; use a long random value (openssl rand -hex "
                 "32)\n"
                 "t.yaml:2: auth.keys[1]: is shorter than 16 characters; use a long random value (openssl rand -hex "
                 "32)\n"
                 "t.yaml:2: auth.keys[2]: has a character that is not printable ASCII (spaces included) at position "
                 "7\n"
                 "t.yaml:3: auth.read_token: is shorter than 16 characters; use a long random value (openssl rand "
                 "-hex 32)\n");
}

TEST(config_auth_keys_file_errors_name_the_field_and_line_never_the_key)
{
    char path[] = "/tmp/gyre-auth-keys-XXXXXX", empty[] = "/tmp/gyre-auth-empty-XXXXXX";
    int fd = mkstemp(path);
    const char *file = "sk-good-key-0123456789\nsk-bad\n";
    CHECK(write(fd, file, strlen(file)) == (ssize_t)strlen(file));
    close(fd);
    fd = mkstemp(empty);
    CHECK(write(fd, "# nothing\n\n", 11) == 11);
    close(fd);
    char yaml[1024], expected[1024];
    snprintf(yaml, sizeof(yaml), "auth:\n  keys: ['file:%s', 'file:%s', 'file:/nonexistent/keys']\n" PROVIDER_P, path,
             empty);
    snprintf(expected, sizeof(expected),
             "t.yaml:2: auth.keys[0]: line 2 of the key file: is shorter than 16 characters; use a long random value "
             "(openssl rand -hex 32)\n"
             "t.yaml:2: auth.keys[1]: key file %s has no key (only blank and '#' lines)\n"
             "t.yaml:2: auth.keys[2]: cannot read key file /nonexistent/keys: No such file or directory\n",
             empty);
    CHECK_ERRORS(yaml, expected);
    unlink(path);
    unlink(empty);
}

TEST(config_auth_without_credentials_other_scalars_and_unknown_fields_are_errors)
{
    CHECK_ERRORS("auth: {}\n" PROVIDER_P,
                 "t.yaml:1: auth: has no keys and no token: add keys: [...] (or write auth: none to run open on "
                 "purpose)\n");
    CHECK_ERRORS("auth: off\n" PROVIDER_P, "t.yaml:1: auth: expected 'none' or a mapping {keys: [...], admin_token: "
                                           "..., read_token: ...}, found another scalar\n");
    CHECK_ERRORS("auth: {keys: [sk-literal-0123456789], token: x}\n" PROVIDER_P,
                 "t.yaml:1: auth: unknown field 'token' (known: keys, admin_token, read_token; or write auth: none)\n");
}

TEST(config_auth_or_a_token_given_twice_is_an_error)
{
    CHECK_ERRORS("auth: none\nauth: none\n" PROVIDER_P, "t.yaml:2: auth: is given twice\n");
    CHECK_ERRORS("auth: {read_token: read-literal-0123456789, read_token: read-literal-9876543210}\n" PROVIDER_P,
                 "t.yaml:1: auth: 'read_token' is given twice\n");
}

TEST(config_auth_a_credential_used_twice_is_an_error)
{
    CHECK_ERRORS("auth:\n  keys: [same-value-0123456789]\n  admin_token: same-value-0123456789\n" PROVIDER_P,
                 "t.yaml:2: auth.keys: key 1 (counting keys files line by line) is the same as a token; each "
                 "credential must be distinct\n");
}

TEST(config_direct_defaults_true_the_root_sets_it_and_a_provider_overrides_it)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse("direct: false\nproviders:\n  - {name: a, kind: openai, base_url: 'http://h/v1'}\n"
                             "  - {name: b, kind: openai, base_url: 'http://h/v1', direct: true}\n",
                             &errs);
    CHECK(c != NULL);
    CHECK_INT(c->direct, 0);
    CHECK_INT(c->providers[0].direct, 0);
    CHECK_INT(c->providers[1].direct, 1);
    gyre_config_free(c);
    c = parse(PROVIDER_P, &errs);
    CHECK_INT(c->direct, 1);
    CHECK_INT(c->providers[0].direct, 1);
    gyre_config_free(c);
}

TEST(config_passthrough_defaults_to_openai_inference_endpoints_and_a_list_replaces_them)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse(PROVIDER_P, &errs);
    CHECK_INT(c->npassthrough, 5);
    CHECK_STR(c->passthrough[0], "/v1/completions");
    CHECK_STR(c->passthrough[1], "/v1/moderations");
    CHECK_STR(c->passthrough[2], "/v1/images");
    CHECK_STR(c->passthrough[3], "/v1/audio");
    CHECK_STR(c->passthrough[4], "/v1/responses");
    gyre_config_free(c);
    c = parse("passthrough: [/v1/files/, /v1/batches]\n" PROVIDER_P, &errs);
    CHECK_INT(c->npassthrough, 2);
    CHECK_STR(c->passthrough[0], "/v1/files");
    CHECK_STR(c->passthrough[1], "/v1/batches");
    gyre_config_free(c);
    c = parse("passthrough: []\n" PROVIDER_P, &errs);
    CHECK_INT(c->npassthrough, 0);
    gyre_config_free(c);
}

TEST(config_passthrough_refuses_admin_organization_and_malformed_paths)
{
    CHECK_ERRORS(
        "passthrough: [/v1/organization/admin_api_keys, /v1/x/admin, /files, /v1/a/../b, /v1/a?b]\n" PROVIDER_P,
        "t.yaml:1: passthrough[0]: '/v1/organization/admin_api_keys' is an admin or organization path, which "
        "gyre never passes: it would act on the provider account with the gateway's key\n"
        "t.yaml:1: passthrough[1]: '/v1/x/admin' is an admin or organization path, which gyre never passes: "
        "it would act on the provider account with the gateway's key\n"
        "t.yaml:1: passthrough[2]: '/files' is not a path under /v1/ (letters, digits, '-', '_', '.', '/'; "
        "no empty, '.' or '..' segment)\n"
        "t.yaml:1: passthrough[3]: '/v1/a/../b' is not a path under /v1/ (letters, digits, '-', '_', '.', "
        "'/'; no empty, '.' or '..' segment)\n"
        "t.yaml:1: passthrough[4]: '/v1/a?b' is not a path under /v1/ (letters, digits, '-', '_', '.', '/'; "
        "no empty, '.' or '..' segment)\n");
}
