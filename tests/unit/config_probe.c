/*
 * `health_check:` on a provider (src/config/config.c parse_health_check): absent is no probe, `true` the
 * defaults, a mapping overrides them, and each wrong value names its field.
 */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config_test.h"
#include "test.h"

#define ROUTE "routes:\n  - {name: r, targets: [{provider: p, model: m}]}\n"

static gyre_config_t *with(const char *hc)
{
    char yaml[1024];
    snprintf(yaml, sizeof(yaml), "providers:\n  - {name: p, kind: openai, base_url: 'http://h/v1'%s}\n" ROUTE, hc);
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = parse(yaml, &errs);
    gyre_config_errors_dispose(&errs);
    return c;
}

TEST(config_health_check_absent_is_no_probe)
{
    gyre_config_t *c = with("");
    CHECK(c != NULL);
    CHECK_INT(c->providers[0].hc_enabled, 0);
    CHECK(c->providers[0].hc_path == NULL);
    gyre_config_free(c);
}

TEST(config_health_check_true_takes_the_defaults_30s_5s_models_2)
{
    gyre_config_t *c = with(", health_check: true");
    CHECK(c != NULL);
    CHECK_INT(c->providers[0].hc_enabled, 1);
    CHECK_INT(c->providers[0].hc_interval_ms, 30000);
    CHECK_INT(c->providers[0].hc_timeout_ms, 5000);
    CHECK_STR(c->providers[0].hc_path, "/models");
    CHECK_INT(c->providers[0].hc_unhealthy_after, 2);
    gyre_config_free(c);
    c = with(", health_check: false");
    CHECK(c != NULL);
    CHECK_INT(c->providers[0].hc_enabled, 0);
    gyre_config_free(c);
}

TEST(config_health_check_mapping_overrides_each_default)
{
    gyre_config_t *c = with(", health_check: {interval: 200ms, timeout: 2s, path: /health, unhealthy_after: 5}");
    CHECK(c != NULL);
    CHECK_INT(c->providers[0].hc_enabled, 1);
    CHECK_INT(c->providers[0].hc_interval_ms, 200);
    CHECK_INT(c->providers[0].hc_timeout_ms, 2000);
    CHECK_STR(c->providers[0].hc_path, "/health");
    CHECK_INT(c->providers[0].hc_unhealthy_after, 5);
    gyre_config_free(c);
    c = with(", health_check: {}");
    CHECK(c != NULL);
    CHECK_INT(c->providers[0].hc_interval_ms, 30000);
    CHECK_STR(c->providers[0].hc_path, "/models");
    gyre_config_free(c);
}

TEST(config_health_check_errors_name_the_field)
{
    CHECK_ERRORS(
        "providers:\n  - {name: p, kind: openai, base_url: 'http://h/v1', health_check: {colour: red}}\n" ROUTE,
        "t.yaml:2: providers[0].health_check: unknown field 'colour' (known: interval, timeout, path, "
        "unhealthy_after)\n");
    CHECK_ERRORS("providers:\n  - {name: p, kind: openai, base_url: 'http://h/v1', health_check: {interval: 1ms, "
                 "unhealthy_after: 0, path: 'models x'}}\n" ROUTE,
                 "t.yaml:2: providers[0].health_check.interval: must be between 10ms and 1h\n"
                 "t.yaml:2: providers[0].health_check.unhealthy_after: 0 is out of range (1 to 1000)\n"
                 "t.yaml:2: providers[0].health_check.path: must start with '/' and be at most 512 visible ASCII "
                 "characters\n");
    CHECK_ERRORS("providers:\n  - {name: p, kind: openai, base_url: 'http://h/v1', health_check: sometimes}\n" ROUTE,
                 "t.yaml:2: providers[0].health_check: expected true or false, found 'sometimes'\n");
}
