/*
 * src/server/api.c: how GET /api/traces reads its query string (each
 * parameter's exact value, URL decoding, times as unix milliseconds or
 * RFC 3339) and each 400 it answers (code, param and exact message).
 */
#include "server/api.h"
#include "common/time.h"

#include <string.h>

#include "test.h"

static int parse(const char *qs, gyre_api_query_t *q, gyre_api_error_t *e)
{
    return gyre_api_parse_traces_query(qs, strlen(qs), q, e);
}

/* Asserts a 400 invalid_request_error with the given code, param ("" for none) and message. */
#define CHECK_400(qs, code_, param_, message_)                                                                         \
    do {                                                                                                               \
        gyre_api_query_t q_;                                                                                           \
        gyre_api_error_t e_;                                                                                           \
        CHECK_INT(parse((qs), &q_, &e_), -1);                                                                          \
        CHECK_INT(e_.status, 400);                                                                                     \
        CHECK_STR(e_.type, "invalid_request_error");                                                                   \
        CHECK_STR(e_.code, (code_));                                                                                   \
        CHECK_STR(e_.param, (param_));                                                                                 \
        CHECK_STR(e_.message, (message_));                                                                             \
    } while (0)

static int64_t time_of(const char *s)
{
    int64_t us = 12345;
    if (gyre_time_parse(s, &us) != 0)
        return -999;
    return us;
}

/* --- queries that pass ---------------------------------------------------- */

TEST(server_api_an_empty_query_filters_nothing)
{
    gyre_api_query_t q;
    gyre_api_error_t e;
    CHECK_INT(gyre_api_parse_traces_query(NULL, 0, &q, &e), 0);
    CHECK_INT(q.q.from_us, 0);
    CHECK_INT(q.q.to_us, 0);
    CHECK(q.q.route == NULL && q.q.provider == NULL && q.q.model == NULL && q.q.agent == NULL);
    CHECK(q.q.session == NULL && q.q.user == NULL && q.q.tag == NULL && q.q.text == NULL && q.q.cursor == NULL);
    CHECK_INT(q.q.status, 0);
    CHECK_INT(q.q.errors_only, 0);
    CHECK_INT(q.q.min_latency_us, 0);
    CHECK_INT(q.q.limit, 0);
}

TEST(server_api_every_parameter_sets_its_field)
{
    gyre_api_query_t q;
    gyre_api_error_t e;
    CHECK_INT(parse("from=1796119200000&to=2026-12-01T15:30:00Z&route=chat&provider=openai&model=gpt-4o"
                    "&agent=planner&session=s1&user=u7&tag=prod&status=502&errors=1&min_latency_ms=250"
                    "&q=hello&cursor=1796119200000000_0123456789abcdef0123456789abcdef&limit=20"
                    "&otel_trace_id=0af7651916cd43dd8448eb211c80319c",
                    &q, &e),
              0);
    CHECK_INT(q.q.from_us, 1796119200000000);
    CHECK_INT(q.q.to_us, 1796139000000000);
    CHECK_STR(q.q.route, "chat");
    CHECK_STR(q.q.provider, "openai");
    CHECK_STR(q.q.model, "gpt-4o");
    CHECK_STR(q.q.agent, "planner");
    CHECK_STR(q.q.session, "s1");
    CHECK_STR(q.q.user, "u7");
    CHECK_STR(q.q.tag, "prod");
    CHECK_INT(q.q.status, 502);
    CHECK_INT(q.q.errors_only, 1);
    CHECK_INT(q.q.min_latency_us, 250000);
    CHECK_STR(q.q.text, "hello");
    CHECK_STR(q.q.cursor, "1796119200000000_0123456789abcdef0123456789abcdef");
    CHECK_INT(q.q.limit, 20);
    CHECK_STR(q.q.otel_trace_id, "0af7651916cd43dd8448eb211c80319c");
}

TEST(server_api_values_are_url_decoded_with_plus_as_a_space)
{
    gyre_api_query_t q;
    gyre_api_error_t e;
    CHECK_INT(parse("q=hello+big%20world%21&model=openai%2Fgpt-4o&session=a%2bb&tag=%E2%9C%93", &q, &e), 0);
    CHECK_STR(q.q.text, "hello big world!");
    CHECK_STR(q.q.model, "openai/gpt-4o");
    CHECK_STR(q.q.session, "a+b");
    CHECK_STR(q.q.tag, "\xE2\x9C\x93");
}

TEST(server_api_parameter_names_are_url_decoded_too)
{
    gyre_api_query_t q;
    gyre_api_error_t e;
    CHECK_INT(parse("min%5Flatency_ms=5", &q, &e), 0);
    CHECK_INT(q.q.min_latency_us, 5000);
}

TEST(server_api_an_empty_value_is_the_same_as_no_parameter)
{
    gyre_api_query_t q;
    gyre_api_error_t e;
    CHECK_INT(parse("from=&to=&route=&status=&errors=&min_latency_ms=&q=&cursor=&limit=&model=m", &q, &e), 0);
    CHECK_INT(q.q.from_us, 0);
    CHECK_INT(q.q.to_us, 0);
    CHECK(q.q.route == NULL);
    CHECK_INT(q.q.status, 0);
    CHECK(q.q.text == NULL);
    CHECK(q.q.cursor == NULL);
    CHECK_INT(q.q.limit, 0);
    CHECK_STR(q.q.model, "m");
}

TEST(server_api_empty_parts_and_a_name_without_a_value_are_skipped)
{
    gyre_api_query_t q;
    gyre_api_error_t e;
    CHECK_INT(parse("&&model=m&&agent&", &q, &e), 0);
    CHECK_STR(q.q.model, "m");
    CHECK(q.q.agent == NULL);
}

TEST(server_api_errors_reads_1_0_true_and_false)
{
    gyre_api_query_t q;
    gyre_api_error_t e;
    CHECK_INT(parse("errors=true", &q, &e), 0);
    CHECK_INT(q.q.errors_only, 1);
    CHECK_INT(parse("errors=0", &q, &e), 0);
    CHECK_INT(q.q.errors_only, 0);
    CHECK_INT(parse("errors=false", &q, &e), 0);
    CHECK_INT(q.q.errors_only, 0);
}

TEST(server_api_limit_and_status_accept_their_bounds)
{
    gyre_api_query_t q;
    gyre_api_error_t e;
    CHECK_INT(parse("limit=1&status=100", &q, &e), 0);
    CHECK_INT(q.q.limit, 1);
    CHECK_INT(q.q.status, 100);
    CHECK_INT(parse("limit=1000&status=599", &q, &e), 0);
    CHECK_INT(q.q.limit, 1000);
    CHECK_INT(q.q.status, 599);
}

/* --- times ---------------------------------------------------------------- */

TEST(server_api_times_read_unix_milliseconds)
{
    CHECK_INT(time_of("1796119200000"), 1796119200000000);
    CHECK_INT(time_of("0"), 0);
    CHECK_INT(time_of("1000000000000000"), 1000000000000000000);
    CHECK_INT(time_of("1000000000000001"), -999); /* past the year 33000 */
}

TEST(server_api_times_read_rfc3339_in_utc_with_offsets_and_fractions)
{
    CHECK_INT(time_of("2026-12-01T10:00:00Z"), 1796119200000000);
    CHECK_INT(time_of("2026-12-01t10:00:00z"), 1796119200000000);
    CHECK_INT(time_of("2026-12-01T10:00:00.25+01:00"), 1796115600250000);
    CHECK_INT(time_of("2026-12-01T10:00:00.250000999+01:00"), 1796115600250000); /* past microseconds: cut */
    CHECK_INT(time_of("2026-12-01T05:00:00-05:00"), 1796119200000000);
    CHECK_INT(time_of("2028-02-29T23:59:59Z"), 1835481599000000);
    CHECK_INT(time_of("1969-12-31T23:00:00Z"), -3600000000);
}

TEST(server_api_times_reject_what_is_not_a_time)
{
    CHECK_INT(time_of(""), -999);
    CHECK_INT(time_of("-5"), -999);
    CHECK_INT(time_of("12ab"), -999);
    CHECK_INT(time_of("2026-12-01"), -999);           /* a date is not a date-time */
    CHECK_INT(time_of("2026-12-01T10:00:00"), -999);  /* no zone */
    CHECK_INT(time_of("2026-12-01 10:00:00Z"), -999); /* a space for the T */
    CHECK_INT(time_of("2026-13-01T10:00:00Z"), -999);
    CHECK_INT(time_of("2026-00-01T10:00:00Z"), -999);
    CHECK_INT(time_of("2027-02-29T10:00:00Z"), -999); /* not a leap year */
    CHECK_INT(time_of("2026-04-31T10:00:00Z"), -999);
    CHECK_INT(time_of("2026-12-01T24:00:00Z"), -999);
    CHECK_INT(time_of("2026-12-01T10:60:00Z"), -999);
    CHECK_INT(time_of("2026-12-01T10:00:61Z"), -999);
    CHECK_INT(time_of("2026-12-01T10:00:00.Z"), -999);
    CHECK_INT(time_of("2026-12-01T10:00:00+1:00"), -999);
    CHECK_INT(time_of("2026-12-01T10:00:00+24:00"), -999);
    CHECK_INT(time_of("2026-12-01T10:00:00Zjunk"), -999);
}

/* --- each 400 ------------------------------------------------------------- */

TEST(server_api_an_unknown_parameter_is_named_with_the_list_of_known_ones)
{
    CHECK_400("model=m&modle=x", "unknown_parameter", "modle",
              "unknown parameter 'modle'; expected one of from, to, route, provider, model, agent, session, user, "
              "tag, status, errors, min_latency_ms, q, cursor, limit, otel_trace_id, key, team, cluster");
}

TEST(server_api_a_long_unknown_parameter_is_named_by_its_first_32_bytes)
{
    CHECK_400("abcdefghijklmnopqrstuvwxyz0123456789=1", "unknown_parameter", "abcdefghijklmnopqrstuvwxyz012345",
              "unknown parameter 'abcdefghijklmnopqrstuvwxyz012345'; expected one of from, to, route, provider, "
              "model, agent, session, user, tag, status, errors, min_latency_ms, q, cursor, limit, otel_trace_id, key, team, cluster");
}

TEST(server_api_a_repeated_parameter_is_a_400)
{
    CHECK_400("tag=a&tag=b", "duplicate_parameter", "tag", "'tag' is given more than once");
}

TEST(server_api_a_malformed_escape_is_a_400_naming_the_parameter)
{
    CHECK_400("model=gpt%zz", "invalid_encoding", "model", "'model' has a malformed percent escape");
    CHECK_400("model=gpt%4", "invalid_encoding", "model", "'model' has a malformed percent escape");
    CHECK_400("model=gpt%", "invalid_encoding", "model", "'model' has a malformed percent escape");
    CHECK_400("mo%g1del=x", "invalid_encoding", "", "a parameter name has a malformed percent escape");
}

TEST(server_api_a_nul_byte_in_a_value_is_a_400)
{
    CHECK_400("session=a%00b", "invalid_encoding", "session", "'session' contains a NUL byte (%00)");
}

TEST(server_api_a_bad_time_is_a_400_that_shows_the_expected_forms)
{
    CHECK_400("from=yesterday", "invalid_value", "from",
              "'from' must be unix milliseconds or an RFC 3339 time such as 2026-12-01T10:00:00Z, got 'yesterday'");
    CHECK_400("to=2026-12-01T10%3A00%3A00", "invalid_value", "to",
              "'to' must be unix milliseconds or an RFC 3339 time such as 2026-12-01T10:00:00Z, "
              "got '2026-12-01T10:00:00'");
}

TEST(server_api_to_must_be_later_than_from)
{
    CHECK_400("from=2026-12-01T10:00:00Z&to=1796119200000", "invalid_value", "to", "'to' must be later than 'from'");
    CHECK_400("to=1000&from=2000", "invalid_value", "to", "'to' must be later than 'from'");
}

TEST(server_api_a_bad_status_is_a_400)
{
    CHECK_400("status=99", "invalid_value", "status", "'status' must be an HTTP status from 100 to 599, got '99'");
    CHECK_400("status=600", "invalid_value", "status", "'status' must be an HTTP status from 100 to 599, got '600'");
    CHECK_400("status=5xx", "invalid_value", "status", "'status' must be an HTTP status from 100 to 599, got '5xx'");
}

TEST(server_api_a_bad_errors_flag_is_a_400)
{
    CHECK_400("errors=yes", "invalid_value", "errors", "'errors' must be 1 or 0 (or true or false), got 'yes'");
}

TEST(server_api_a_bad_min_latency_is_a_400)
{
    CHECK_400("min_latency_ms=-1", "invalid_value", "min_latency_ms",
              "'min_latency_ms' must be a whole number of milliseconds, got '-1'");
    CHECK_400("min_latency_ms=1.5", "invalid_value", "min_latency_ms",
              "'min_latency_ms' must be a whole number of milliseconds, got '1.5'");
    CHECK_400("min_latency_ms=1000000000001", "invalid_value", "min_latency_ms",
              "'min_latency_ms' must be a whole number of milliseconds, got '1000000000001'");
}

TEST(server_api_a_limit_outside_1_to_1000_is_a_400)
{
    CHECK_400("limit=0", "invalid_value", "limit", "'limit' must be a whole number from 1 to 1000, got '0'");
    CHECK_400("limit=1001", "invalid_value", "limit", "'limit' must be a whole number from 1 to 1000, got '1001'");
    CHECK_400("limit=ten", "invalid_value", "limit", "'limit' must be a whole number from 1 to 1000, got 'ten'");
}

TEST(server_api_a_value_is_echoed_at_most_64_bytes)
{
    CHECK_400("limit=12345678901234567890123456789012345678901234567890123456789012345678901234567890", "invalid_value",
              "limit",
              "'limit' must be a whole number from 1 to 1000, got "
              "'1234567890123456789012345678901234567890123456789012345678901234'");
}

TEST(server_api_a_query_over_4096_bytes_is_a_400)
{
    static char qs[GYRE_API_QUERY_MAX + 2];
    memcpy(qs, "q=", 2);
    memset(qs + 2, 'a', sizeof(qs) - 3);
    qs[sizeof(qs) - 1] = '\0';
    CHECK_INT(strlen(qs), GYRE_API_QUERY_MAX + 1);
    CHECK_400(qs, "query_too_long", "", "the query string is longer than 4096 bytes");
    /* At the bound it is read whole. */
    qs[GYRE_API_QUERY_MAX] = '\0';
    gyre_api_query_t q;
    gyre_api_error_t e;
    CHECK_INT(parse(qs, &q, &e), 0);
    CHECK_INT(strlen(q.q.text), GYRE_API_QUERY_MAX - 2);
}

/* --- /api/stats ----------------------------------------------------------- */

static int parse_stats(const char *qs, gyre_api_stats_query_t *q, gyre_api_error_t *e)
{
    return gyre_api_parse_stats_query(qs, strlen(qs), q, e);
}

#define CHECK_STATS_400(qs, code_, param_, message_)                                                                   \
    do {                                                                                                               \
        gyre_api_stats_query_t q_;                                                                                     \
        gyre_api_error_t e_;                                                                                           \
        CHECK_INT(parse_stats((qs), &q_, &e_), -1);                                                                    \
        CHECK_INT(e_.status, 400);                                                                                     \
        CHECK_STR(e_.type, "invalid_request_error");                                                                   \
        CHECK_STR(e_.code, (code_));                                                                                   \
        CHECK_STR(e_.param, (param_));                                                                                 \
        CHECK_STR(e_.message, (message_));                                                                             \
    } while (0)

TEST(server_api_stats_an_empty_query_is_the_last_24_hours_without_groups_or_buckets)
{
    gyre_api_stats_query_t q;
    gyre_api_error_t e;
    CHECK_INT(gyre_api_parse_stats_query(NULL, 0, &q, &e), 0);
    CHECK_INT(q.q.from_us, 0);
    CHECK_INT(q.q.to_us, 0);
    CHECK(q.q.route == NULL && q.q.provider == NULL && q.q.model == NULL && q.q.agent == NULL && q.q.user == NULL);
    CHECK_INT(q.q.group_by, 0);
    CHECK_INT(q.q.bucket_us, 0);
}

TEST(server_api_stats_every_parameter_sets_its_field)
{
    gyre_api_stats_query_t q;
    gyre_api_error_t e;
    CHECK_INT(parse_stats("from=1796119200000&to=2026-12-01T15:30:00Z&route=chat&provider=openai&model=gpt-4o"
                          "&agent=planner&user=u7&group_by=provider,model&bucket=15m",
                          &q, &e),
              0);
    CHECK_INT(q.q.from_us, 1796119200000000);
    CHECK_INT(q.q.to_us, 1796139000000000);
    CHECK_STR(q.q.route, "chat");
    CHECK_STR(q.q.provider, "openai");
    CHECK_STR(q.q.model, "gpt-4o");
    CHECK_STR(q.q.agent, "planner");
    CHECK_STR(q.q.user, "u7");
    CHECK_INT(q.q.group_by, GYRE_STATS_BY_PROVIDER | GYRE_STATS_BY_MODEL);
    CHECK_INT(q.q.bucket_us, 900000000);
}

TEST(server_api_stats_group_by_reads_each_dimension_and_skips_empty_items)
{
    gyre_api_stats_query_t q;
    gyre_api_error_t e;
    CHECK_INT(parse_stats("group_by=route,provider,model,agent,user", &q, &e), 0);
    CHECK_INT(q.q.group_by, 31);
    CHECK_INT(parse_stats("group_by=user,,user,", &q, &e), 0);
    CHECK_INT(q.q.group_by, GYRE_STATS_BY_USER);
    CHECK_INT(parse_stats("group_by=agent%2Croute", &q, &e), 0);
    CHECK_INT(q.q.group_by, GYRE_STATS_BY_AGENT | GYRE_STATS_BY_ROUTE);
}

TEST(server_api_stats_bucket_reads_each_width)
{
    static const struct {
        const char *qs;
        long long us;
    } cases[] = {{"bucket=1m", 60000000LL},
                 {"bucket=5m", 300000000LL},
                 {"bucket=15m", 900000000LL},
                 {"bucket=1h", 3600000000LL},
                 {"bucket=1d", 86400000000LL}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gyre_api_stats_query_t q;
        gyre_api_error_t e;
        CHECK_INT(parse_stats(cases[i].qs, &q, &e), 0);
        CHECK_INT(q.q.bucket_us, cases[i].us);
    }
}

TEST(server_api_stats_an_unknown_parameter_is_named_with_the_list_of_known_ones)
{
    CHECK_STATS_400("tag=prod", "unknown_parameter", "tag",
                    "unknown parameter 'tag'; expected one of from, to, route, provider, model, agent, user, group_by, "
                    "bucket, key, team");
}

TEST(server_api_stats_a_bad_group_by_is_a_400_naming_the_dimension)
{
    CHECK_STATS_400("group_by=provider,session", "invalid_value", "group_by",
                    "'group_by' takes a comma list of route, provider, model, agent, user, key, team; got 'session'");
}

TEST(server_api_stats_a_bad_bucket_is_a_400_listing_the_widths)
{
    CHECK_STATS_400("bucket=2h", "invalid_value", "bucket", "'bucket' must be one of 1m, 5m, 15m, 1h, 1d, got '2h'");
    CHECK_STATS_400("bucket=60", "invalid_value", "bucket", "'bucket' must be one of 1m, 5m, 15m, 1h, 1d, got '60'");
}

TEST(server_api_stats_bad_times_and_repeats_are_400s)
{
    CHECK_STATS_400("from=yesterday", "invalid_value", "from",
                    "'from' must be unix milliseconds or an RFC 3339 time such as 2026-12-01T10:00:00Z, got "
                    "'yesterday'");
    CHECK_STATS_400("to=1000&from=2000", "invalid_value", "to", "'to' must be later than 'from'");
    CHECK_STATS_400("bucket=1h&bucket=1d", "duplicate_parameter", "bucket", "'bucket' is given more than once");
}
