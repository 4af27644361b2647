/*
 * src/common/wire.c gyre_wire_url_problem: the one reader of the URLs gyre
 * connects to (a provider's base_url, otlp.endpoint), h2o_url_parse with
 * gyre's rules on top.
 */
#include "common/wire.h"

#include "test.h"

static const char *problem(const char *url, int allow_query)
{
    h2o_url_t u;
    return gyre_wire_url_problem(url, allow_query, &u);
}

TEST(wire_url_splits_scheme_host_port_and_path)
{
    h2o_url_t u;
    CHECK(gyre_wire_url_problem("https://api.example.com:8443/v1/x", 0, &u) == NULL);
    CHECK(u.scheme == &H2O_URL_SCHEME_HTTPS);
    CHECK_INT((int)u.host.len, 15);
    CHECK(memcmp(u.host.base, "api.example.com", 15) == 0);
    CHECK_INT(gyre_wire_url_port(&u), 8443);
    CHECK_INT((int)u.path.len, 5);
    CHECK(memcmp(u.path.base, "/v1/x", 5) == 0);
}

TEST(wire_url_without_a_port_takes_the_schemes_and_without_a_path_takes_a_slash)
{
    h2o_url_t u;
    CHECK(gyre_wire_url_problem("http://h", 0, &u) == NULL);
    CHECK(u.scheme == &H2O_URL_SCHEME_HTTP);
    CHECK_INT(gyre_wire_url_port(&u), 80);
    CHECK_INT((int)u.path.len, 1);
    CHECK(gyre_wire_url_problem("https://h/", 0, &u) == NULL);
    CHECK_INT(gyre_wire_url_port(&u), 443);
}

TEST(wire_url_ipv6_host_is_read_without_its_brackets)
{
    h2o_url_t u;
    CHECK(gyre_wire_url_problem("http://[::1]:9101/v1", 0, &u) == NULL);
    CHECK_INT((int)u.host.len, 3);
    CHECK(memcmp(u.host.base, "::1", 3) == 0);
    CHECK_INT(gyre_wire_url_port(&u), 9101);
}

TEST(wire_url_refusals_say_what_is_wrong)
{
    CHECK_STR(problem("ftp://h/v1", 0), "must start with http:// or https://");
    CHECK_STR(problem("HTTP://h/v1", 0), "must start with http:// or https://");
    CHECK_STR(problem("http:///v1", 0), "has no host");
    CHECK_STR(problem("http://user:pw@h/v1", 0), "must not contain credentials (use keys:)");
    CHECK_STR(problem("http://h:0/v1", 0), "has an invalid port");
    CHECK_STR(problem("http://h:65535/v1", 0), "has an invalid port");
    CHECK_STR(problem("http://h:80x/v1", 0), "has an invalid port");
    CHECK_STR(problem("http://[::1/v1", 0), "has an invalid port");
    CHECK_STR(problem("http://h/v1?x=1", 0), "must not contain a query or fragment");
    CHECK_STR(problem("http://h?x=1", 0), "must not contain a query or fragment");
    CHECK_STR(problem("http://h/v1#top", 0), "must not contain a query or fragment");
    CHECK_STR(problem("http://h/v 1", 0), "has a control byte or a space");
    CHECK_STR(problem("http://h/v1\r\nX: y", 0), "has a control byte or a space");
}

TEST(wire_url_with_allow_query_keeps_the_query_in_the_path_only)
{
    h2o_url_t u;
    CHECK(gyre_wire_url_problem("http://h:4318/v1/traces?tenant=a", 1, &u) == NULL);
    CHECK_INT((int)u.path.len, 19);
    CHECK(memcmp(u.path.base, "/v1/traces?tenant=a", 19) == 0);
    CHECK_STR(problem("http://h?tenant=a", 1), "must not contain a fragment or a query before the path");
    CHECK_STR(problem("http://h/v1#x", 1), "must not contain a fragment or a query before the path");
}
