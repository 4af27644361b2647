/*
 * src/dialect/openai_stream.c: what a chat.completion.chunk stream adds up
 * to (on the recorded transcripts in tests/fixtures/openai/, fed whole and
 * byte by byte), the bounds, the exact bytes of a replay, and that a replay
 * accumulates back to the completion it came from.
 *
 * Fixture paths are relative to the repository root, where tests/run.sh runs
 * the unit tests from.
 */
#include "dialect/openai_stream.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "test.h"

#define FIXTURES "tests/fixtures/openai/"
#define MAX (1 << 20)

/* Reads a fixture whole; the one trailing newline of a .json file is not part of the completion. */
static void read_fixture(const char *name, gyre_buf_t *out)
{
    char path[256];
    snprintf(path, sizeof(path), FIXTURES "%s", name);
    gyre_buf_init(out, MAX);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "  cannot open %s (run from the repository root)\n", path);
        exit(1);
    }
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        gyre_buf_append(out, chunk, n);
    fclose(f);
    if (out->len > 0 && out->base[out->len - 1] == '\n' && strstr(name, ".json") != NULL)
        out->base[--out->len] = '\0';
}

/* Accumulates a fixture stream fed in pieces of `step` bytes, and returns the completion JSON in `out`. */
static void accumulate(const char *sse_name, size_t step, gyre_openai_accum_t *a, gyre_buf_t *out)
{
    gyre_buf_t sse;
    read_fixture(sse_name, &sse);
    gyre_openai_accum_init(a, MAX);
    for (size_t i = 0; i < sse.len; i += step)
        CHECK_INT(gyre_openai_accum_feed(a, sse.base + i, i + step <= sse.len ? step : sse.len - i), 0);
    gyre_buf_init(out, MAX);
    CHECK_INT(gyre_openai_accum_completion(a, out), 0);
    gyre_buf_dispose(&sse);
}

/* Checks that a stream, fed whole and byte by byte, adds up to the fixture's completion. */
static void check_fixture(const char *stem, int done, int errored, size_t ntools, size_t events)
{
    char sse_name[128], json_name[128];
    snprintf(sse_name, sizeof(sse_name), "%s.sse", stem);
    snprintf(json_name, sizeof(json_name), "%s.json", stem);
    gyre_buf_t want;
    read_fixture(json_name, &want);
    size_t steps[] = {1 << 30, 1, 7};
    for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
        gyre_openai_accum_t a;
        gyre_buf_t got;
        accumulate(sse_name, steps[s], &a, &got);
        CHECK_STR(got.base, want.base);
        CHECK_INT(a.done, done);
        CHECK_INT(a.errored, errored);
        CHECK_INT(a.truncated, 0);
        CHECK_INT(a.ntools, ntools);
        CHECK_INT(a.events, events);
        gyre_buf_dispose(&got);
        gyre_openai_accum_dispose(&a);
    }
    gyre_buf_dispose(&want);
}

/* --- accumulating recorded streams ---------------------------------------- */

TEST(openai_accum_text_stream_with_usage_adds_up_to_its_completion)
{
    check_fixture("text_with_usage", 1, 0, 0, 10);
}

TEST(openai_accum_text_stream_keeps_id_model_created_and_every_usage_count)
{
    gyre_openai_accum_t a;
    gyre_buf_t got;
    accumulate("text_with_usage.sse", 1 << 30, &a, &got);
    CHECK_MEM(a.id.base, a.id.len, "chatcmpl-AUv1pAVb3kL0qZ8sH2mWnD7cE9rTx");
    CHECK_MEM(a.model.base, a.model.len, "gpt-4o-mini-2024-07-18");
    CHECK_INT(a.created, 1732000000);
    CHECK_MEM(a.content.base, a.content.len, "Hello! \"Gyre\" says:\nbonjour, caf\xc3\xa9 \xe2\x98\x95.");
    CHECK_MEM(a.finish_reason.base, a.finish_reason.len, "stop");
    CHECK_INT(a.has_usage, 1);
    CHECK_INT(a.prompt_tokens, 1200);
    CHECK_INT(a.completion_tokens, 9);
    CHECK_INT(a.total_tokens, 1209);
    CHECK_INT(a.cached_tokens, 1024);
    gyre_buf_dispose(&got);
    gyre_openai_accum_dispose(&a);
}

TEST(openai_accum_two_interleaved_tool_calls_are_joined_by_index)
{
    check_fixture("parallel_tool_calls", 1, 0, 2, 11);
    gyre_openai_accum_t a;
    gyre_buf_t got;
    accumulate("parallel_tool_calls.sse", 1, &a, &got);
    CHECK_MEM(a.tools[0].id.base, a.tools[0].id.len, "call_8fJ2kQmW1xZp");
    CHECK_MEM(a.tools[0].name.base, a.tools[0].name.len, "get_weather");
    CHECK_MEM(a.tools[0].arguments.base, a.tools[0].arguments.len, "{\"city\": \"Paris\"}");
    CHECK_MEM(a.tools[1].id.base, a.tools[1].id.len, "call_3nVb7LcR9tYs");
    CHECK_MEM(a.tools[1].name.base, a.tools[1].name.len, "get_time");
    CHECK_MEM(a.tools[1].arguments.base, a.tools[1].arguments.len, "{\"tz\": \"Europe/Paris\"}");
    CHECK_INT(a.content.len, 0);
    CHECK_INT(a.has_usage, 0);
    gyre_buf_dispose(&got);
    gyre_openai_accum_dispose(&a);
}

TEST(openai_accum_error_event_marks_the_stream_errored_and_keeps_what_came_before)
{
    check_fixture("error_event", 0, 1, 0, 3);
}

TEST(openai_accum_stream_cut_before_done_is_not_done)
{
    /* CRLF line ends and a keep-alive comment: the comment is not an event. */
    check_fixture("no_done", 0, 0, 0, 4);
}

/* --- single events -------------------------------------------------------- */

#define EVENT(a, lit) gyre_openai_accum_event((a), lit, sizeof(lit) - 1)

TEST(openai_accum_id_model_and_created_come_from_the_first_chunk_that_has_them)
{
    gyre_openai_accum_t a;
    gyre_openai_accum_init(&a, MAX);
    EVENT(&a, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}");
    EVENT(&a, "{\"id\":\"first\",\"model\":\"m1\",\"created\":5,\"choices\":[]}");
    EVENT(&a, "{\"id\":\"second\",\"model\":\"m2\",\"created\":6,\"choices\":[]}");
    CHECK_MEM(a.id.base, a.id.len, "first");
    CHECK_MEM(a.model.base, a.model.len, "m1");
    CHECK_INT(a.created, 5);
    CHECK_INT(a.events, 3);
    gyre_openai_accum_dispose(&a);
}

TEST(openai_accum_reads_choice_index_0_not_the_first_array_element)
{
    gyre_openai_accum_t a;
    gyre_openai_accum_init(&a, MAX);
    EVENT(&a, "{\"choices\":[{\"index\":1,\"delta\":{\"content\":\"other\"},\"finish_reason\":\"length\"}]}");
    EVENT(&a,
          "{\"choices\":[{\"index\":1,\"delta\":{\"content\":\"x\"}},{\"index\":0,\"delta\":{\"content\":\"mine\"}}]}");
    CHECK_MEM(a.content.base, a.content.len, "mine");
    CHECK_INT(a.finish_reason.len, 0);
    gyre_openai_accum_dispose(&a);
}

TEST(openai_accum_ignores_events_that_are_not_json_objects)
{
    gyre_openai_accum_t a;
    gyre_openai_accum_init(&a, MAX);
    EVENT(&a, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"}}]}");
    EVENT(&a, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"broken");
    EVENT(&a, "[1,2]");
    EVENT(&a, "[DONE] ");
    CHECK_MEM(a.content.base, a.content.len, "ok");
    CHECK_INT(a.done, 0);
    CHECK_INT(a.errored, 0);
    CHECK_INT(a.events, 4);
    gyre_openai_accum_dispose(&a);
}

TEST(openai_accum_usage_null_on_every_chunk_is_not_usage)
{
    gyre_openai_accum_t a;
    gyre_openai_accum_init(&a, MAX);
    EVENT(&a, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}],\"usage\":null}");
    CHECK_INT(a.has_usage, 0);
    gyre_buf_t out;
    gyre_buf_init(&out, MAX);
    CHECK_INT(gyre_openai_accum_completion(&a, &out), 0);
    CHECK_STR(out.base,
              "{\"id\":\"\",\"object\":\"chat.completion\",\"created\":0,\"model\":\"\",\"choices\":[{\"index\":0,"
              "\"message\":{\"role\":\"assistant\",\"content\":\"a\"},\"finish_reason\":null}]}");
    gyre_buf_dispose(&out);
    gyre_openai_accum_dispose(&a);
}

TEST(openai_accum_content_past_the_bound_stops_appending_and_marks_truncated)
{
    gyre_openai_accum_t a;
    gyre_openai_accum_init(&a, 8);
    EVENT(&a, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"12345\"}}]}");
    EVENT(&a, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"6789\"}}]}");
    CHECK_INT(a.truncated, 1);
    /* A piece that would still fit does not fill a hole after the one that did not. */
    EVENT(&a, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},\"finish_reason\":\"stop\"}]}");
    CHECK_MEM(a.content.base, a.content.len, "12345");
    CHECK_MEM(a.finish_reason.base, a.finish_reason.len, "stop");
    gyre_openai_accum_dispose(&a);
}

TEST(openai_accum_arguments_past_the_bound_stop_appending_and_mark_truncated)
{
    gyre_openai_accum_t a;
    gyre_openai_accum_init(&a, 8);
    EVENT(&a, "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"function\":{\"name\":"
              "\"f\",\"arguments\":\"{\\\"a\\\":\"}}]}}]}");
    EVENT(&a, "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
              "\"123456\"}}]}}]}");
    CHECK_INT(a.truncated, 1);
    CHECK_INT(a.ntools, 1);
    CHECK_MEM(a.tools[0].arguments.base, a.tools[0].arguments.len, "{\"a\":");
    gyre_openai_accum_dispose(&a);
}

TEST(openai_accum_tool_index_past_128_is_dropped_not_allocated)
{
    gyre_openai_accum_t a;
    gyre_openai_accum_init(&a, MAX);
    EVENT(&a, "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1000000000,\"id\":\"c\"}]}}]}");
    CHECK_INT(a.ntools, 0);
    CHECK_INT(a.truncated, 1);
    EVENT(&a, "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":127,\"id\":\"c\"}]}}]}");
    CHECK_INT(a.ntools, 128);
    gyre_openai_accum_dispose(&a);
}

TEST(openai_accum_event_past_the_sse_bound_is_e2big_and_truncated)
{
    gyre_openai_accum_t a;
    gyre_openai_accum_init(&a, 16);
    const char sse[] = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"too long\"}}]}\n\n";
    CHECK_INT(gyre_openai_accum_feed(&a, sse, sizeof(sse) - 1), -E2BIG);
    CHECK_INT(a.truncated, 1);
    CHECK_INT(a.content.len, 0);
    gyre_openai_accum_dispose(&a);
}

TEST(openai_accum_completion_past_out_bound_leaves_out_as_it_was)
{
    gyre_openai_accum_t a;
    gyre_openai_accum_init(&a, MAX);
    EVENT(&a, "{\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hello\"}}]}");
    gyre_buf_t out;
    gyre_buf_init(&out, 40);
    gyre_buf_appends(&out, "kept");
    CHECK_INT(gyre_openai_accum_completion(&a, &out), -E2BIG);
    CHECK_STR(out.base, "kept");
    gyre_buf_dispose(&out);
    gyre_openai_accum_dispose(&a);
}

/* --- replaying a completion as chunks ------------------------------------- */

static const char text_completion[] =
    "{\"id\":\"c-1\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":\"m\",\"choices\":[{\"index\":0,"
    "\"message\":{\"role\":\"assistant\",\"content\":\"Hi \\\"there\\\"\"},\"finish_reason\":\"stop\"}],\"usage\":{"
    "\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}";

#define HEAD                                                                                                           \
    "data: {\"id\":\"c-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"m\",\"choices\":"

TEST(openai_completion_to_sse_replays_text_as_role_content_finish_usage_done)
{
    gyre_buf_t out;
    gyre_buf_init(&out, MAX);
    CHECK_INT(gyre_openai_completion_to_sse(text_completion, sizeof(text_completion) - 1, 1, &out), 0);
    CHECK_STR(out.base, HEAD
              "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n" HEAD
              "[{\"index\":0,\"delta\":{\"content\":\"Hi \\\"there\\\"\"},\"finish_reason\":null}]}\n\n" HEAD
              "[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n" HEAD
              "[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n"
              "data: [DONE]\n\n");
    gyre_buf_dispose(&out);
}

TEST(openai_completion_to_sse_without_include_usage_has_no_usage_chunk)
{
    gyre_buf_t out;
    gyre_buf_init(&out, MAX);
    CHECK_INT(gyre_openai_completion_to_sse(text_completion, sizeof(text_completion) - 1, 0, &out), 0);
    CHECK_STR(out.base, HEAD
              "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n" HEAD
              "[{\"index\":0,\"delta\":{\"content\":\"Hi \\\"there\\\"\"},\"finish_reason\":null}]}\n\n" HEAD
              "[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
              "data: [DONE]\n\n");
    gyre_buf_dispose(&out);
}

TEST(openai_completion_to_sse_replays_tool_calls_one_chunk_each_with_null_content)
{
    static const char c[] =
        "{\"id\":\"c-1\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":\"m\",\"choices\":[{\"index\":"
        "0,"
        "\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_a\",\"type\":\"function\","
        "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}},{\"id\":\"call_b\",\"type\":\"function\",\"function\":{"
        "\"name\":\"g\",\"arguments\":\"{\\\"x\\\":1}\"}}]},\"finish_reason\":\"tool_calls\"}],\"usage\":{"
        "\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5,\"prompt_tokens_details\":{\"cached_tokens\":1}"
        "}}";
    gyre_buf_t out;
    gyre_buf_init(&out, MAX);
    CHECK_INT(gyre_openai_completion_to_sse(c, sizeof(c) - 1, 1, &out), 0);
    CHECK_STR(out.base, HEAD
              "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null},\"finish_reason\":null}]}\n\n" HEAD
              "[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\","
              "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},\"finish_reason\":null}]}\n\n" HEAD
              "[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\",\"type\":\"function\","
              "\"function\":{\"name\":\"g\",\"arguments\":\"{\\\"x\\\":1}\"}}]},\"finish_reason\":null}]}\n\n" HEAD
              "[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n" HEAD
              "[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5,"
              "\"prompt_tokens_details\":{\"cached_tokens\":1}}}\n\n"
              "data: [DONE]\n\n");
    gyre_buf_dispose(&out);
}

TEST(openai_completion_to_sse_refuses_what_is_not_a_chat_completion)
{
    static const char *const bad[] = {
        "not json",
        "[]",
        "{\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"message\":{}}]}",
        "{\"object\":\"chat.completion\"}",
        "{\"object\":\"chat.completion\",\"choices\":[]}",
        "{\"object\":\"chat.completion\",\"choices\":[{\"index\":0}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gyre_buf_t out;
        gyre_buf_init(&out, MAX);
        CHECK_INT(gyre_openai_completion_to_sse(bad[i], strlen(bad[i]), 1, &out), -1);
        CHECK_INT(out.len, 0);
        gyre_buf_dispose(&out);
    }
}

TEST(openai_completion_to_sse_past_out_bound_is_e2big_and_leaves_out_as_it_was)
{
    gyre_buf_t out;
    gyre_buf_init(&out, 200);
    gyre_buf_appends(&out, "kept");
    CHECK_INT(gyre_openai_completion_to_sse(text_completion, sizeof(text_completion) - 1, 1, &out), -E2BIG);
    CHECK_STR(out.base, "kept");
    gyre_buf_dispose(&out);
}

/* --- the round trip ------------------------------------------------------- */

/* accumulate(completion_to_sse(c)) == c, fed whole and byte by byte. */
static void check_round_trip(const char *c, size_t len)
{
    gyre_buf_t sse;
    gyre_buf_init(&sse, MAX);
    CHECK_INT(gyre_openai_completion_to_sse(c, len, 1, &sse), 0);
    for (size_t step = 1; step <= sse.len; step = step == 1 ? sse.len : sse.len + 1) {
        gyre_openai_accum_t a;
        gyre_openai_accum_init(&a, MAX);
        for (size_t i = 0; i < sse.len; i += step)
            CHECK_INT(gyre_openai_accum_feed(&a, sse.base + i, i + step <= sse.len ? step : sse.len - i), 0);
        CHECK_INT(a.done, 1);
        gyre_buf_t back;
        gyre_buf_init(&back, MAX);
        CHECK_INT(gyre_openai_accum_completion(&a, &back), 0);
        CHECK_MEM(back.base, back.len, c);
        gyre_buf_dispose(&back);
        gyre_openai_accum_dispose(&a);
    }
    gyre_buf_dispose(&sse);
}

TEST(openai_completion_round_trips_through_sse_for_every_fixture)
{
    static const char *const stems[] = {"text_with_usage", "parallel_tool_calls", "error_event", "no_done"};
    for (size_t i = 0; i < sizeof(stems) / sizeof(stems[0]); i++) {
        char name[128];
        snprintf(name, sizeof(name), "%s.json", stems[i]);
        gyre_buf_t c;
        read_fixture(name, &c);
        check_round_trip(c.base, c.len);
        gyre_buf_dispose(&c);
    }
}

TEST(openai_completion_round_trips_with_content_and_tool_calls_together)
{
    static const char c[] =
        "{\"id\":\"c-2\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,"
        "\"message\":{\"role\":\"assistant\",\"content\":\"Let me check.\\n\",\"tool_calls\":[{\"id\":\"call_a\","
        "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"q\\\":\\\"\\u0001\\\"}\"}}]},"
        "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":20,\"total_tokens\":"
        "30,"
        "\"prompt_tokens_details\":{\"cached_tokens\":8}}}";
    check_round_trip(c, sizeof(c) - 1);
}
