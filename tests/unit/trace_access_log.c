/* The access log's line encoder (src/trace/access_log.c): the exact line, and every value made safe in it. */
#include <string.h>

#include "common/buf.h"
#include "test.h"
#include "trace/access_log.h"

#define S(x) ((gyre_access_str_t){(x), sizeof(x) - 1})

static char *format(const gyre_access_fields_t *f)
{
    static gyre_buf_t b;
    gyre_buf_init(&b, GYRE_ACCESS_LOG_LINE_MAX);
    CHECK_INT(gyre_access_log_format(f, &b), 0);
    return b.base;
}

TEST(access_log_format_writes_a_call_as_one_exact_line)
{
    gyre_access_fields_t f = {
        .time_us = 1796600467412345LL,
        .request_id = S("req-1"),
        .remote = S("127.0.0.1"),
        .method = S("POST"),
        .path = S("/v1/chat/completions"),
        .status = 200,
        .bytes_in = 74,
        .bytes_out = 291,
        .duration_ms = 12.8044,
        .route = S("chat"),
        .provider = S("openai"),
        .model = S("gpt-4o-mini"),
        .key_id = S("gk_3f2a"),
        .trace_id = S("5f0c8e0b8a6d4b7c9e1f2a3b4c5d6e7f"),
        .call = 1,
        .attempts = 2,
    };
    CHECK_STR(format(&f), "{\"time\":\"2026-12-06T23:41:07.412Z\",\"request_id\":\"req-1\",\"remote_addr\":\"127.0.0.1\","
                          "\"method\":\"POST\",\"path\":\"/v1/chat/completions\",\"query_keys\":null,\"status\":200,"
                          "\"bytes_in\":74,\"bytes_out\":291,\"duration_ms\":12.804,\"route\":\"chat\",\"provider\":"
                          "\"openai\",\"model\":\"gpt-4o-mini\",\"key_id\":\"gk_3f2a\",\"cache\":\"miss\",\"attempts\":2,"
                          "\"trace_id\":\"5f0c8e0b8a6d4b7c9e1f2a3b4c5d6e7f\"}\n");
}

TEST(access_log_format_writes_a_request_that_is_no_call_with_nulls)
{
    gyre_access_fields_t f = {.time_us = 0, .request_id = S("r"), .remote = S("::1"), .method = S("GET"),
                              .path = S("/nowhere"), .query_keys = S("key,alt"), .status = 404};
    CHECK_STR(format(&f), "{\"time\":\"1970-01-01T00:00:00.000Z\",\"request_id\":\"r\",\"remote_addr\":\"::1\","
                          "\"method\":\"GET\",\"path\":\"/nowhere\",\"query_keys\":\"key,alt\",\"status\":404,"
                          "\"bytes_in\":0,\"bytes_out\":0,\"duration_ms\":0.000,\"route\":null,\"provider\":null,"
                          "\"model\":null,\"key_id\":null,\"cache\":null,\"attempts\":0,\"trace_id\":null}\n");
}

TEST(access_log_format_escapes_quotes_controls_and_ill_formed_utf8_in_one_line)
{
    gyre_access_fields_t f = {.method = S("GE\"T\n"), .path = S("/a\\b\x01\xc3(\xff"), .request_id = S(""),
                              .remote = S("")};
    char *line = format(&f);
    CHECK(strstr(line, "\"method\":\"GE\\\"T\\n\",\"path\":\"/a\\\\b\\u0001\xef\xbf\xbd(\xef\xbf\xbd\"") != NULL);
    CHECK(strchr(line, '\n') == line + strlen(line) - 1);
}

TEST(access_log_format_cuts_a_long_path_and_says_so)
{
    static char path[GYRE_ACCESS_LOG_PATH_MAX + 10];
    memset(path, 'p', sizeof(path));
    gyre_access_fields_t f = {.path = {path, sizeof(path)}};
    char *line = format(&f);
    char want[GYRE_ACCESS_LOG_PATH_MAX + 64];
    snprintf(want, sizeof(want), "\"path\":\"%.*s\",\"path_truncated\":true,", GYRE_ACCESS_LOG_PATH_MAX, path);
    CHECK(strstr(line, want) != NULL);
}

TEST(access_log_format_cuts_a_long_model_at_its_bound)
{
    static char model[1000];
    memset(model, 'm', sizeof(model));
    gyre_access_fields_t f = {.model = {model, sizeof(model)}, .call = 1, .cache_hit = 1};
    char *line = format(&f);
    char want[GYRE_ACCESS_LOG_FIELD_MAX + 64];
    snprintf(want, sizeof(want), "\"model\":\"%.*s\",", GYRE_ACCESS_LOG_FIELD_MAX, model);
    CHECK(strstr(line, want) != NULL);
    CHECK(strstr(line, "\"cache\":\"hit\",\"attempts\":0,") != NULL);
}
