/*
 * The W3C Trace Context traceparent header, read strictly
 * (gyre_trace_parse_traceparent): a valid one continues the caller's trace,
 * anything else is as if absent.  One case per rule of the specification.
 */
#include <errno.h>
#include <string.h>

#include "test.h"
#include "trace/record.h"

#define TID "4bf92f3577b34da6a3ce929d0e0e4736"
#define PID "00f067aa0ba902b7"

static int parse(const char *v)
{
    char t[33] = "", p[17] = "";
    return gyre_trace_parse_traceparent(v, strlen(v), t, p);
}

TEST(traceparent_version_00_with_every_field_valid_gives_the_trace_and_parent_ids)
{
    char t[33], p[17];
    static const char v[] = "00-" TID "-" PID "-01";
    CHECK_INT(gyre_trace_parse_traceparent(v, strlen(v), t, p), 0);
    CHECK_STR(t, TID);
    CHECK_STR(p, PID);
    CHECK_INT(parse("00-" TID "-" PID "-00"), 0);
}

TEST(traceparent_version_ff_is_invalid)
{
    CHECK_INT(parse("ff-" TID "-" PID "-01"), -EINVAL);
}

TEST(traceparent_version_00_must_be_exactly_55_bytes)
{
    CHECK_INT(parse("00-" TID "-" PID "-01-"), -EINVAL);
    CHECK_INT(parse("00-" TID "-" PID "-01x"), -EINVAL);
    CHECK_INT(parse("00-" TID "-" PID "-01-extra"), -EINVAL);
    CHECK_INT(parse("00-" TID "-" PID "-1"), -EINVAL);
}

TEST(traceparent_a_later_version_may_go_on_after_a_dash_only)
{
    CHECK_INT(parse("01-" TID "-" PID "-01-future"), 0);
    CHECK_INT(parse("01-" TID "-" PID "-01"), 0);
    CHECK_INT(parse("01-" TID "-" PID "-01future"), -EINVAL);
}

TEST(traceparent_hex_must_be_lower_case)
{
    CHECK_INT(parse("00-4BF92F3577B34DA6A3CE929D0E0E4736-" PID "-01"), -EINVAL);
    CHECK_INT(parse("00-" TID "-00F067AA0BA902B7-01"), -EINVAL);
    CHECK_INT(parse("0A-" TID "-" PID "-01"), -EINVAL);
    CHECK_INT(parse("00-" TID "-" PID "-0A"), -EINVAL);
}

TEST(traceparent_flags_must_be_two_hex_digits)
{
    CHECK_INT(parse("00-" TID "-" PID "-zz"), -EINVAL);
    CHECK_INT(parse("00-" TID "-" PID "-0g"), -EINVAL);
    CHECK_INT(parse("00-" TID "-" PID "- 1"), -EINVAL);
}

TEST(traceparent_all_zero_trace_or_parent_id_is_invalid)
{
    CHECK_INT(parse("00-00000000000000000000000000000000-" PID "-01"), -EINVAL);
    CHECK_INT(parse("00-" TID "-0000000000000000-01"), -EINVAL);
}

TEST(traceparent_with_misplaced_dashes_or_short_fields_is_invalid)
{
    CHECK_INT(parse("00_" TID "-" PID "-01"), -EINVAL);
    CHECK_INT(parse("00-" TID "_" PID "-01"), -EINVAL);
    CHECK_INT(parse("00-" TID "-" PID "_01"), -EINVAL);
    CHECK_INT(parse("00-4bf92f3577b34da6a3ce929d0e0e473-" PID "-01"), -EINVAL);
    CHECK_INT(parse(""), -EINVAL);
}
