/*
 * src/control/access.c: which credential a request carries, what each one
 * allows on each path, the pass-through allow-list, and which listen
 * addresses may run without `auth:`.
 */
#include "control/access.h"

#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "test.h"

/* A string literal as (pointer, length). */
#define LIT(s) (s), (sizeof(s) - 1)

#define CLIENT_KEY "sk-gyre-client-0123456789"
#define CLIENT_KEY2 "sk-gyre-client-abcdefghij"
#define READ_TOKEN "read-token-0123456789abcdef"
#define ADMIN_TOKEN "admin-token-0123456789abcdef"

/* An access table with two client keys and both tokens (the config's strings are only read). */
static gyre_access_t *full_access(void)
{
    static char k1[] = CLIENT_KEY, k2[] = CLIENT_KEY2, rt[] = READ_TOKEN, at[] = ADMIN_TOKEN;
    static char *keys[] = {k1, k2};
    gyre_auth_conf_t auth = {GYRE_AUTH_KEYS, keys, 2, at, rt, NULL};
    return gyre_access_create(&auth);
}

static gyre_access_verdict_t decide(const gyre_access_t *a, const char *path, const char *cred)
{
    return gyre_access_decide(a, gyre_access_need_for(path, strlen(path)), cred != NULL, cred, cred ? strlen(cred) : 0);
}

TEST(access_need_for_path_healthz_open_api_and_metrics_read_traces_ingest_rest_client)
{
    CHECK_INT(gyre_access_need_for(LIT("/healthz")), GYRE_NEED_NOTHING);
    CHECK_INT(gyre_access_need_for(LIT("/metrics")), GYRE_NEED_READ);
    CHECK_INT(gyre_access_need_for(LIT("/api")), GYRE_NEED_READ);
    CHECK_INT(gyre_access_need_for(LIT("/api/traces")), GYRE_NEED_READ);
    CHECK_INT(gyre_access_need_for(LIT("/v1/traces")), GYRE_NEED_INGEST);
    CHECK_INT(gyre_access_need_for(LIT("/v1/chat/completions")), GYRE_NEED_CLIENT);
    CHECK_INT(gyre_access_need_for(LIT("/v1/models")), GYRE_NEED_CLIENT);
    CHECK_INT(gyre_access_need_for(LIT("/apix")), GYRE_NEED_CLIENT);
    CHECK_INT(gyre_access_need_for(LIT("/healthz/x")), GYRE_NEED_CLIENT);
    CHECK_INT(gyre_access_need_for(LIT("/")), GYRE_NEED_CLIENT);
}

TEST(access_credential_bearer_wins_over_x_api_key_and_is_trimmed)
{
    const char *c = NULL;
    size_t n = 0;
    CHECK_INT(gyre_access_credential(LIT("Bearer  sk-a \t"), LIT("sk-b"), &c, &n), 1);
    CHECK_MEM(c, n, "sk-a");
    CHECK_INT(gyre_access_credential(LIT("bearer sk-a"), NULL, 0, &c, &n), 1);
    CHECK_MEM(c, n, "sk-a");
    CHECK_INT(gyre_access_credential(NULL, 0, LIT("sk-b"), &c, &n), 1);
    CHECK_MEM(c, n, "sk-b");
}

TEST(access_credential_none_is_0_and_a_non_bearer_authorization_alone_is_minus_1)
{
    const char *c = NULL;
    size_t n = 0;
    CHECK_INT(gyre_access_credential(NULL, 0, NULL, 0, &c, &n), 0);
    CHECK_INT(gyre_access_credential(LIT("Bearer "), NULL, 0, &c, &n), -1);
    CHECK_INT(gyre_access_credential(LIT("Basic dXNlcjpwYXNz"), NULL, 0, &c, &n), -1);
    /* A Basic header next to an x-api-key: the key is the credential. */
    CHECK_INT(gyre_access_credential(LIT("Basic dXNlcjpwYXNz"), LIT("sk-b"), &c, &n), 1);
    CHECK_MEM(c, n, "sk-b");
}

TEST(access_identify_names_each_configured_credential_and_nothing_else)
{
    gyre_access_t *a = full_access();
    CHECK_INT(gyre_access_identify(a, LIT(CLIENT_KEY)), GYRE_ROLE_CLIENT);
    CHECK_INT(gyre_access_identify(a, LIT(CLIENT_KEY2)), GYRE_ROLE_CLIENT);
    CHECK_INT(gyre_access_identify(a, LIT(READ_TOKEN)), GYRE_ROLE_READ);
    CHECK_INT(gyre_access_identify(a, LIT(ADMIN_TOKEN)), GYRE_ROLE_ADMIN);
    /* A prefix, an extension and a one-byte change of a key are not the key. */
    CHECK_INT(gyre_access_identify(a, LIT("sk-gyre-client-012345678")), GYRE_ROLE_NONE);
    CHECK_INT(gyre_access_identify(a, LIT(CLIENT_KEY "0")), GYRE_ROLE_NONE);
    CHECK_INT(gyre_access_identify(a, LIT("sk-gyre-client-0123456788")), GYRE_ROLE_NONE);
    CHECK_INT(gyre_access_identify(a, "", 0), GYRE_ROLE_NONE);
    gyre_access_destroy(a);
}

TEST(access_decide_follows_the_table_of_credentials_and_paths)
{
    gyre_access_t *a = full_access();
    /* model calls */
    CHECK_INT(decide(a, "/v1/chat/completions", CLIENT_KEY), GYRE_ACCESS_ALLOW);
    CHECK_INT(decide(a, "/v1/chat/completions", ADMIN_TOKEN), GYRE_ACCESS_ALLOW);
    CHECK_INT(decide(a, "/v1/chat/completions", READ_TOKEN), GYRE_ACCESS_FORBIDDEN);
    CHECK_INT(decide(a, "/v1/chat/completions", "sk-wrong-wrong-wrong-wrong"), GYRE_ACCESS_UNRECOGNISED);
    CHECK_INT(decide(a, "/v1/chat/completions", NULL), GYRE_ACCESS_NO_CREDENTIAL);
    /* reading */
    CHECK_INT(decide(a, "/api/traces", READ_TOKEN), GYRE_ACCESS_ALLOW);
    CHECK_INT(decide(a, "/metrics", ADMIN_TOKEN), GYRE_ACCESS_ALLOW);
    CHECK_INT(decide(a, "/metrics", CLIENT_KEY), GYRE_ACCESS_FORBIDDEN);
    CHECK_INT(decide(a, "/api/stats", NULL), GYRE_ACCESS_NO_CREDENTIAL);
    /* ingest */
    CHECK_INT(decide(a, "/v1/traces", CLIENT_KEY), GYRE_ACCESS_ALLOW);
    CHECK_INT(decide(a, "/v1/traces", ADMIN_TOKEN), GYRE_ACCESS_ALLOW);
    CHECK_INT(decide(a, "/v1/traces", READ_TOKEN), GYRE_ACCESS_FORBIDDEN);
    CHECK_INT(decide(a, "/v1/traces", NULL), GYRE_ACCESS_NO_CREDENTIAL);
    /* health */
    CHECK_INT(decide(a, "/healthz", NULL), GYRE_ACCESS_ALLOW);
    /* an Authorization that is not Bearer */
    CHECK_INT(gyre_access_decide(a, GYRE_NEED_CLIENT, -1, NULL, 0), GYRE_ACCESS_UNRECOGNISED);
    gyre_access_destroy(a);
}

TEST(access_decide_allows_everything_without_auth_and_with_auth_none)
{
    gyre_auth_conf_t unset = {GYRE_AUTH_UNSET, NULL, 0, NULL, NULL, NULL}, none = {GYRE_AUTH_NONE, NULL, 0, NULL, NULL, NULL};
    gyre_access_t *a = gyre_access_create(&unset), *b = gyre_access_create(&none);
    CHECK_INT(decide(a, "/v1/chat/completions", NULL), GYRE_ACCESS_ALLOW);
    CHECK_INT(decide(a, "/api/traces", "anything"), GYRE_ACCESS_ALLOW);
    CHECK_INT(decide(b, "/metrics", NULL), GYRE_ACCESS_ALLOW);
    CHECK_INT(decide(b, "/v1/traces", NULL), GYRE_ACCESS_ALLOW);
    gyre_access_destroy(a);
    gyre_access_destroy(b);
}

TEST(access_message_says_what_was_wrong_never_the_credential)
{
    CHECK_STR(gyre_access_message(GYRE_ACCESS_NO_CREDENTIAL, GYRE_NEED_CLIENT),
              "no API key was sent: send a key of this gateway as 'Authorization: Bearer KEY' or 'x-api-key: KEY'");
    CHECK_STR(gyre_access_message(GYRE_ACCESS_UNRECOGNISED, GYRE_NEED_CLIENT),
              "the API key sent is not recognised by this gateway");
    CHECK_STR(gyre_access_message(GYRE_ACCESS_FORBIDDEN, GYRE_NEED_READ),
              "a client key does not give access to this path: it needs the read_token or the admin_token");
}

/* A config with only what gyre_access_passthrough reads. */
static gyre_config_t *passthrough_config(const char *const *prefixes, size_t n)
{
    gyre_config_t *c = gyre_calloc(1, sizeof(*c));
    c->passthrough = gyre_calloc(n ? n : 1, sizeof(*c->passthrough));
    for (size_t i = 0; i < n; i++)
        c->passthrough[i] = gyre_strdup(prefixes[i]);
    c->npassthrough = n;
    return c;
}

static void free_passthrough_config(gyre_config_t *c)
{
    for (size_t i = 0; i < c->npassthrough; i++)
        free(c->passthrough[i]);
    free(c->passthrough);
    free(c);
}

#define PASS(c, p) gyre_access_passthrough((c), (p), strlen(p))

TEST(access_passthrough_matches_prefixes_on_segment_boundaries_query_aside)
{
    static const char *const list[] = {"/v1/images", "/v1/completions"};
    gyre_config_t *c = passthrough_config(list, 2);
    CHECK_INT(PASS(c, "/v1/images"), GYRE_PASS_ALLOWED);
    CHECK_INT(PASS(c, "/v1/images/generations"), GYRE_PASS_ALLOWED);
    CHECK_INT(PASS(c, "/v1/completions?x=1"), GYRE_PASS_ALLOWED);
    CHECK_INT(PASS(c, "/v1/imagesx"), GYRE_PASS_NOT_LISTED);
    CHECK_INT(PASS(c, "/v1/files/abc"), GYRE_PASS_NOT_LISTED);
    CHECK_INT(PASS(c, "/v1"), GYRE_PASS_NOT_LISTED);
    free_passthrough_config(c);
}

TEST(access_passthrough_never_passes_admin_or_organization_paths_even_when_listed)
{
    static const char *const list[] = {"/v1"};
    gyre_config_t *c = passthrough_config(list, 1);
    CHECK_INT(PASS(c, "/v1/organization/admin_api_keys"), GYRE_PASS_NEVER);
    CHECK_INT(PASS(c, "/v1/Organization/projects"), GYRE_PASS_NEVER);
    CHECK_INT(PASS(c, "/v1/organizations"), GYRE_PASS_NEVER);
    CHECK_INT(PASS(c, "/v1/x/admin"), GYRE_PASS_NEVER);
    CHECK_INT(PASS(c, "/v1/admin_api_keys"), GYRE_PASS_NEVER);
    CHECK_INT(PASS(c, "/v1/admin-keys/1"), GYRE_PASS_NEVER);
    CHECK_INT(PASS(c, "/v1/administrators"), GYRE_PASS_ALLOWED); /* a segment that only starts with "admin" */
    CHECK_INT(PASS(c, "/v1/files"), GYRE_PASS_ALLOWED);
    free_passthrough_config(c);
}

TEST(access_host_is_loopback_for_127_8_ipv6_loopback_and_localhost_only)
{
    CHECK_INT(gyre_access_host_is_loopback("127.0.0.1"), 1);
    CHECK_INT(gyre_access_host_is_loopback("127.1.2.3"), 1);
    CHECK_INT(gyre_access_host_is_loopback("::1"), 1);
    CHECK_INT(gyre_access_host_is_loopback("::ffff:127.0.0.1"), 1);
    CHECK_INT(gyre_access_host_is_loopback("localhost"), 1);
    CHECK_INT(gyre_access_host_is_loopback("0.0.0.0"), 0);
    CHECK_INT(gyre_access_host_is_loopback("::"), 0);
    CHECK_INT(gyre_access_host_is_loopback("192.168.1.10"), 0);
    CHECK_INT(gyre_access_host_is_loopback("128.0.0.1"), 0);
    CHECK_INT(gyre_access_host_is_loopback("example.com"), 0);
}

TEST(access_exposure_refuses_an_open_gateway_off_loopback_and_warns_for_auth_none)
{
    gyre_config_t c;
    memset(&c, 0, sizeof(c));
    char host[16] = "0.0.0.0", msg[1024];
    c.listen_host = host;
    c.listen_port = 8080;
    CHECK_INT(gyre_access_exposure(&c, msg, sizeof(msg)), GYRE_EXPOSURE_REFUSED);
    CHECK_STR(msg, "0.0.0.0:8080 is not a loopback address and the configuration has no auth: section, so anyone who "
                   "reaches it could spend the provider keys and read every stored prompt; add auth: {keys: "
                   "[env:GYRE_CLIENT_KEY]} (clients then send that key as their API key), or write auth: none to run "
                   "open on purpose");
    c.auth.mode = GYRE_AUTH_NONE;
    CHECK_INT(gyre_access_exposure(&c, msg, sizeof(msg)), GYRE_EXPOSURE_OPEN);
    CHECK_STR(msg, "auth: none: the gateway is open: anyone who reaches 0.0.0.0:8080 may call every model with the "
                   "provider keys and read /api and /metrics");
    c.auth.mode = GYRE_AUTH_KEYS;
    CHECK_INT(gyre_access_exposure(&c, msg, sizeof(msg)), GYRE_EXPOSURE_OK);
    c.auth.mode = GYRE_AUTH_UNSET;
    strcpy(host, "127.0.0.1");
    CHECK_INT(gyre_access_exposure(&c, msg, sizeof(msg)), GYRE_EXPOSURE_OK);
    strcpy(host, "::");
    CHECK_INT(gyre_access_exposure(&c, msg, sizeof(msg)), GYRE_EXPOSURE_REFUSED);
    CHECK(strncmp(msg, "[::]:8080 is not a loopback address", 35) == 0);
}

TEST(access_need_for_the_admin_api_is_the_admin_token_and_only_under_api_admin)
{
    CHECK_INT(gyre_access_need_for(LIT("/api/admin")), GYRE_NEED_ADMIN);
    CHECK_INT(gyre_access_need_for(LIT("/api/admin/")), GYRE_NEED_ADMIN);
    CHECK_INT(gyre_access_need_for(LIT("/api/admin/providers/mock/keys")), GYRE_NEED_ADMIN);
    /* A segment that only begins with "admin" is no part of the admin API. */
    CHECK_INT(gyre_access_need_for(LIT("/api/administrators")), GYRE_NEED_READ);
    CHECK_INT(gyre_access_need_for(LIT("/api/audit")), GYRE_NEED_READ);
    CHECK_INT(gyre_access_need_for(LIT("/api/traces/admin")), GYRE_NEED_READ);
}

TEST(access_decide_gives_the_admin_api_to_the_admin_token_alone)
{
    gyre_access_t *a = full_access();
    CHECK_INT(decide(a, "/api/admin/providers", ADMIN_TOKEN), GYRE_ACCESS_ALLOW);
    CHECK_INT(decide(a, "/api/admin", ADMIN_TOKEN), GYRE_ACCESS_ALLOW);
    CHECK_INT(decide(a, "/api/admin/providers", READ_TOKEN), GYRE_ACCESS_FORBIDDEN);
    CHECK_INT(decide(a, "/api/admin/providers", CLIENT_KEY), GYRE_ACCESS_FORBIDDEN);
    CHECK_INT(decide(a, "/api/admin/providers", "sk-wrong-wrong-wrong-wrong"), GYRE_ACCESS_UNRECOGNISED);
    CHECK_INT(decide(a, "/api/admin/providers", NULL), GYRE_ACCESS_NO_CREDENTIAL);
    /* Reading the audit log is reading: the read token does, a client key does not. */
    CHECK_INT(decide(a, "/api/audit", READ_TOKEN), GYRE_ACCESS_ALLOW);
    CHECK_INT(decide(a, "/api/audit", ADMIN_TOKEN), GYRE_ACCESS_ALLOW);
    CHECK_INT(decide(a, "/api/audit", CLIENT_KEY), GYRE_ACCESS_FORBIDDEN);
    CHECK_INT(decide(a, "/api/audit", NULL), GYRE_ACCESS_NO_CREDENTIAL);
    gyre_access_destroy(a);
}

TEST(access_decide_without_an_admin_token_configured_refuses_every_credential_on_the_admin_api)
{
    static char k1[] = CLIENT_KEY, rt[] = READ_TOKEN;
    static char *keys[] = {k1};
    gyre_auth_conf_t auth = {GYRE_AUTH_KEYS, keys, 1, NULL, rt, NULL};
    gyre_access_t *a = gyre_access_create(&auth);
    CHECK_INT(decide(a, "/api/admin/providers", READ_TOKEN), GYRE_ACCESS_FORBIDDEN);
    CHECK_INT(decide(a, "/api/admin/providers", CLIENT_KEY), GYRE_ACCESS_FORBIDDEN);
    CHECK_INT(decide(a, "/api/admin/providers", ADMIN_TOKEN), GYRE_ACCESS_UNRECOGNISED);
    gyre_access_destroy(a);
}

TEST(access_message_for_the_admin_api_names_the_admin_token)
{
    CHECK_STR(gyre_access_message(GYRE_ACCESS_FORBIDDEN, GYRE_NEED_ADMIN),
              "the admin API needs the admin_token: neither a client key nor the read_token gives access to it");
    CHECK_STR(gyre_access_message(GYRE_ACCESS_NO_CREDENTIAL, GYRE_NEED_ADMIN),
              "no token was sent: the admin API needs the admin_token of this gateway, as 'Authorization: Bearer "
              "TOKEN'");
    CHECK_STR(gyre_access_message(GYRE_ACCESS_UNRECOGNISED, GYRE_NEED_ADMIN),
              "the token sent is not recognised by this gateway");
}
