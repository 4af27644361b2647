/*
 * The `notifiers:` section (src/config/notifiers.c): the issue's example as
 * written, every field and default, and the errors, each naming
 * notifiers[i].field with its line and never a secret (a webhook URL is its
 * own credential; a routing key and a header value are secrets).
 */
#include "config/config.h"

#include <stdlib.h>
#include <string.h>

#include "config_test.h"
#include "test.h"

TEST(config_notifiers_load_the_issues_example_as_written)
{
    setenv("PD_ROUTING_KEY", "pdkey0123456789abcdef0123456789ab", 1);
    setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T000/B000/XXXXSECRET", 1);
    gyre_config_errors_t e = {0};
    gyre_config_t *c = parse("notifiers:\n"
                             "  - {name: page_oncall, kind: pagerduty, url: https://events.pagerduty.com/v2/enqueue, "
                             "routing_key: env:PD_ROUTING_KEY}\n"
                             "  - {name: ops, kind: webhook, url: http://127.0.0.1:9999/hook}\n"
                             "  - {name: team, kind: slack, url: env:SLACK_WEBHOOK_URL}\n",
                             &e);
    CHECK(c != NULL);
    CHECK_INT(e.count, 0);
    CHECK_INT(c->nnotifiers, 3);
    const gyre_notifier_conf_t *pd = gyre_config_find_notifier(c, "page_oncall");
    CHECK(pd == &c->notifiers[0]);
    CHECK_INT(pd->kind, GYRE_NOTIFIER_PAGERDUTY);
    CHECK_STR(pd->url, "https://events.pagerduty.com/v2/enqueue");
    CHECK_STR(pd->url_shown, "https://events.pagerduty.com");
    CHECK_STR(pd->routing_key, "pdkey0123456789abcdef0123456789ab");
    CHECK_INT(pd->line, 2);
    const gyre_notifier_conf_t *ops = &c->notifiers[1];
    CHECK_STR(ops->name, "ops");
    CHECK_INT(ops->kind, GYRE_NOTIFIER_WEBHOOK);
    CHECK_STR(ops->url_shown, "http://127.0.0.1:9999");
    CHECK_INT(ops->timeout_ms, 5000);
    CHECK_INT(ops->retries, 5);
    CHECK_INT(ops->digest_ms, 0);
    CHECK(ops->routing_key == NULL);
    const gyre_notifier_conf_t *team = &c->notifiers[2];
    CHECK_INT(team->kind, GYRE_NOTIFIER_SLACK);
    CHECK_STR(team->url, "https://hooks.slack.com/services/T000/B000/XXXXSECRET");
    /* What logs may show of a URL from the environment is where it came from. */
    CHECK_STR(team->url_shown, "env:SLACK_WEBHOOK_URL");
    CHECK(gyre_config_find_notifier(c, "nobody") == NULL);
    gyre_config_free(c);
    gyre_config_errors_dispose(&e);
}

TEST(config_notifiers_read_timeout_retries_digest_headers_and_the_log_kind)
{
    setenv("GYRE_TEST_OPS_TOKEN", "Bearer t0ken", 1);
    gyre_config_errors_t e = {0};
    gyre_config_t *c = parse("notifiers:\n"
                             "  - name: ops\n"
                             "    kind: teams\n"
                             "    url: 'https://example.webhook.office.com/workflows/abc?sig=SECRET'\n"
                             "    timeout: 2s\n"
                             "    retries: 0\n"
                             "    digest: 5m\n"
                             "    headers: {Authorization: 'env:GYRE_TEST_OPS_TOKEN', X-Team: sre}\n"
                             "  - {name: journal, kind: log}\n",
                             &e);
    CHECK(c != NULL);
    const gyre_notifier_conf_t *ops = &c->notifiers[0];
    CHECK_INT(ops->kind, GYRE_NOTIFIER_TEAMS);
    CHECK_STR(ops->url_shown, "https://example.webhook.office.com");
    CHECK_INT(ops->timeout_ms, 2000);
    CHECK_INT(ops->retries, 0);
    CHECK_INT(ops->digest_ms, 300000);
    CHECK_INT(ops->nheaders, 2);
    CHECK_STR(ops->header_names[0], "Authorization");
    CHECK_STR(ops->header_values[0], "Bearer t0ken");
    CHECK_STR(ops->header_values[1], "sre");
    CHECK_INT(c->notifiers[1].kind, GYRE_NOTIFIER_LOG);
    CHECK(c->notifiers[1].url == NULL);
    gyre_config_free(c);
    gyre_config_errors_dispose(&e);
}

TEST(config_notifiers_without_a_section_has_none)
{
    gyre_config_errors_t e = {0};
    gyre_config_t *c = parse("listen: 127.0.0.1:1\n", &e);
    CHECK(c != NULL);
    CHECK_INT(c->nnotifiers, 0);
    gyre_config_free(c);
    gyre_config_errors_dispose(&e);
}

TEST(config_notifiers_name_the_missing_fields_with_their_lines)
{
    CHECK_ERRORS("notifiers:\n"
                 "  - {name: a, kind: webhook}\n"
                 "  - {kind: slack, url: 'http://h/'}\n"
                 "  - {name: 'b c', url: 'http://h'}\n"
                 "  - {name: d, kind: pagerduty, url: 'https://events.pagerduty.com/v2/enqueue'}\n",
                 "t.yaml:2: notifiers[0]: a 'webhook' notifier needs a 'url'\n"
                 "t.yaml:3: notifiers[1]: needs a 'name'\n"
                 "t.yaml:4: notifiers[2].name: 'b c' is not a valid name (letters, digits, '.', '_', ':', '-')\n"
                 "t.yaml:4: notifiers[2]: needs a 'kind' (webhook, slack, teams, pagerduty or log)\n"
                 "t.yaml:5: notifiers[3]: a 'pagerduty' notifier needs a 'routing_key' (its Events API v2 integration "
                 "key)\n");
}

TEST(config_notifiers_refuse_an_unknown_kind_listing_the_known_ones)
{
    CHECK_ERRORS("notifiers:\n  - {name: a, kind: email, url: 'http://h/'}\n",
                 "t.yaml:2: notifiers[0].kind: unknown value 'email' (supported: webhook, slack, teams, pagerduty, "
                 "log)\n");
}

TEST(config_notifiers_never_echo_a_bad_url_nor_a_secret)
{
    unsetenv("GYRE_TEST_NOT_SET");
    CHECK_ERRORS("notifiers:\n"
                 "  - {name: b, kind: slack, url: 'ftp://hooks.slack.com/services/T/B/SECRETTOKEN', routing_key: x}\n"
                 "  - {name: c, kind: slack, url: 'env:GYRE_TEST_NOT_SET'}\n"
                 "  - {name: b, kind: log, url: 'http://h/'}\n",
                 "t.yaml:2: notifiers[0].url: is not an http:// or https:// URL with a host\n"
                 "t.yaml:2: notifiers[0].routing_key: only a 'pagerduty' notifier takes a routing_key\n"
                 "t.yaml:3: notifiers[1].url: environment variable GYRE_TEST_NOT_SET is not set\n"
                 "t.yaml:4: notifiers[2].url: a 'log' notifier posts nothing: it takes no url\n"
                 "t.yaml:4: notifiers[2].name: 'b' is already the name of notifiers[0]\n");
}

TEST(config_notifiers_bound_timeout_retries_and_digest)
{
    CHECK_ERRORS("notifiers:\n"
                 "  - {name: a, kind: webhook, url: 'http://h/', timeout: 90s, retries: 21, digest: 500ms, colour: red}\n",
                 "t.yaml:2: notifiers[0].timeout: must be between 100ms and 60s\n"
                 "t.yaml:2: notifiers[0].retries: 21 is out of range (0 to 20)\n"
                 "t.yaml:2: notifiers[0].digest: must be 0 (off) or between 1s and 24h\n"
                 "t.yaml:2: notifiers[0]: unknown field 'colour' (known: name, kind, url, routing_key, timeout, retries, "
                 "digest, headers, ca_file)\n");
}

TEST(config_notifiers_check_header_names_and_values)
{
    setenv("GYRE_TEST_CRLF", "a\r\nInjected: yes", 1);
    CHECK_ERRORS("notifiers:\n"
                 "  - {name: a, kind: webhook, url: 'http://h/', headers: {'bad header': x, Host: y, X-T: "
                 "'env:GYRE_TEST_CRLF'}}\n",
                 "t.yaml:2: notifiers[0].headers: 'bad header' is not a valid header name\n"
                 "t.yaml:2: notifiers[0].headers: 'Host' is set by gyre and cannot be configured\n"
                 "t.yaml:2: notifiers[0].headers.X-T: is not a valid header value (a line break, a control byte, or "
                 "over 8192 bytes)\n");
}

TEST(config_notifiers_must_be_a_list)
{
    CHECK_ERRORS("notifiers: {name: a}\n", "t.yaml:1: notifiers: expected a list, found a mapping\n");
}
