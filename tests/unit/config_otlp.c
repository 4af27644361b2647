/*
 * The `otlp:` section of src/config/config.c: its defaults, every field, and
 * the errors, which never show a header's (secret) value.
 */
#include "config/config.h"

#include <stdlib.h>
#include <string.h>

#include "test.h"

static gyre_config_t *parse(const char *yaml, gyre_config_errors_t *errs)
{
    return gyre_config_parse("t.yaml", yaml, strlen(yaml), errs);
}

TEST(config_otlp_absent_means_no_export)
{
    gyre_config_errors_t e = {0};
    gyre_config_t *c = parse("listen: 127.0.0.1:1\n", &e);
    CHECK(c != NULL);
    CHECK(c->otlp.endpoint == NULL);
    CHECK_INT(c->otlp.nheaders, 0);
    gyre_config_free(c);
    gyre_config_errors_dispose(&e);
}

TEST(config_otlp_endpoint_alone_takes_the_defaults)
{
    gyre_config_errors_t e = {0};
    gyre_config_t *c = parse("otlp: {endpoint: 'http://127.0.0.1:4318/v1/traces'}\n", &e);
    CHECK(c != NULL);
    CHECK_STR(c->otlp.endpoint, "http://127.0.0.1:4318/v1/traces");
    CHECK_INT(c->otlp.timeout_ms, 10000);
    CHECK_INT(c->otlp.batch_max, 512);
    CHECK_INT(c->otlp.interval_ms, 1000);
    CHECK_INT(c->otlp.queue_max, 65536);
    CHECK_STR(c->otlp.service_name, "gyre");
    gyre_config_free(c);
    gyre_config_errors_dispose(&e);
}

TEST(config_otlp_reads_every_field_and_resolves_header_secrets)
{
    setenv("OTLP_TOKEN_T", "Bearer s3cret", 1);
    gyre_config_errors_t e = {0};
    gyre_config_t *c = parse("otlp:\n"
                             "  endpoint: https://collector.example:4318/v1/traces\n"
                             "  headers: {authorization: env:OTLP_TOKEN_T, x-team: search}\n"
                             "  timeout_ms: 2500\n"
                             "  batch_max: 64\n"
                             "  interval_ms: 200\n"
                             "  queue_max: 1000\n"
                             "  service_name: gyre-eu\n",
                             &e);
    CHECK(c != NULL);
    CHECK_INT(c->otlp.nheaders, 2);
    CHECK_STR(c->otlp.header_names[0], "authorization");
    CHECK_STR(c->otlp.header_values[0], "Bearer s3cret");
    CHECK_STR(c->otlp.header_names[1], "x-team");
    CHECK_STR(c->otlp.header_values[1], "search");
    CHECK_INT(c->otlp.timeout_ms, 2500);
    CHECK_INT(c->otlp.batch_max, 64);
    CHECK_INT(c->otlp.interval_ms, 200);
    CHECK_INT(c->otlp.queue_max, 1000);
    CHECK_STR(c->otlp.service_name, "gyre-eu");
    gyre_config_free(c);
    gyre_config_errors_dispose(&e);
}

TEST(config_otlp_errors_name_the_field_and_never_the_secret)
{
    unsetenv("OTLP_MISSING_T");
    setenv("OTLP_CRLF_T", "tok\r\nx-evil: 1", 1);
    gyre_config_errors_t e = {0};
    gyre_config_t *c = parse("otlp:\n"
                             "  endpoint: ftp://h/v1/traces\n"
                             "  headers: {authorization: env:OTLP_MISSING_T, x-a: env:OTLP_CRLF_T, 'bad name': v}\n"
                             "  batch_max: 0\n"
                             "  colour: red\n",
                             &e);
    CHECK(c == NULL);
    CHECK_INT(e.count, 6);
    if (e.count == 6) {
        CHECK_STR(e.items[0], "t.yaml:3: otlp.headers.authorization: environment variable OTLP_MISSING_T is not set");
        CHECK_STR(e.items[1], "t.yaml:3: otlp.headers.x-a: the value contains a line break");
        CHECK_STR(e.items[2], "t.yaml:3: otlp.headers: 'bad name' is not a valid header name");
        CHECK_STR(e.items[3], "t.yaml:4: otlp.batch_max: 0 is out of range (1 to 65536)");
        CHECK_STR(e.items[4], "t.yaml:5: otlp: unknown field 'colour' (known: endpoint, headers, timeout_ms, "
                              "batch_max, interval_ms, queue_max, service_name, ca_file)");
        CHECK_STR(e.items[5], "t.yaml:2: otlp.endpoint: 'ftp://h/v1/traces' is not an http:// or https:// URL with a host");
    }
    for (size_t i = 0; i < e.count; i++)
        CHECK(strstr(e.items[i], "tok") == NULL);
    gyre_config_errors_dispose(&e);
}

TEST(config_otlp_without_an_endpoint_is_an_error)
{
    gyre_config_errors_t e = {0};
    gyre_config_t *c = parse("otlp: {batch_max: 8}\n", &e);
    CHECK(c == NULL);
    CHECK_INT(e.count, 1);
    if (e.count == 1)
        CHECK_STR(e.items[0], "t.yaml:1: otlp: needs an 'endpoint' (for example http://127.0.0.1:4318/v1/traces)");
    gyre_config_errors_dispose(&e);
}
