/*
 * The corpus (src/loop/corpus.c): a stored call of each client API read
 * back as an example in OpenAI's chat shape, exactly; rows the loop cannot
 * read refused with the reason; and the scan over a real store, oldest
 * first, with the newest score per name, the newest correction and the
 * cluster attached, and its unreadable rows counted.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "loop/corpus.h"
#include "test.h"

#define TS(s) ((gyre_tstr_t){(char *)(s), sizeof(s) - 1})

static gyre_store_row_t row_of(const char *endpoint, int status)
{
    gyre_store_row_t r;
    memset(&r, 0, sizeof(r));
    r.trace_id = TS("0123456789abcdef0123456789abcdef");
    r.endpoint = (gyre_tstr_t){(char *)endpoint, strlen(endpoint)};
    r.session = TS("s1");
    r.agent = TS("planner");
    r.tags_json = TS("[]");
    r.meta_json = TS("{}");
    r.status = status;
    r.cost_usd = NAN;
    r.prompt_tokens = r.completion_tokens = -1;
    r.cluster = -1;
    return r;
}

static int convert(const gyre_store_row_t *row, const char *req, const char *resp, gyre_buf_t *scratch,
                   gyre_example_t *ex, char *err, size_t errlen)
{
    return gyre_corpus_example_from_row(row, req, req ? strlen(req) : 0, resp, resp ? strlen(resp) : 0, scratch, ex,
                                        err, errlen);
}

TEST(corpus_openai_chat_with_tools_reads_back_as_messages_tools_and_answer)
{
    gyre_store_row_t row = row_of("/v1/chat/completions", 200);
    const char *req =
        "{\"model\":\"gpt-4o\",\"messages\":["
        "{\"role\":\"developer\",\"content\":\"Be   brief.\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather in\"},{\"type\":\"text\",\"text\":\"Paris?\"}]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
        "\"function\":{\"name\":\"weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"18C\"},"
        "{\"role\":\"user\",\"content\":\"And\\n\\ttomorrow?\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"weather\",\"description\":\"Forecast\","
        "\"parameters\":{\"type\":\"object\"}}}]}";
    const char *resp = "{\"id\":\"x\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":"
                       "{\"role\":\"assistant\",\"content\":\"Rain, 15C.\"},\"finish_reason\":\"stop\"}]}";
    gyre_buf_t scratch;
    gyre_buf_init(&scratch, 1 << 20);
    gyre_example_t ex;
    char err[256] = "";
    CHECK_INT(convert(&row, req, resp, &scratch, &ex, err, sizeof(err)), 0);
    CHECK_STR(ex.messages_json,
              "[{\"role\":\"system\",\"content\":\"Be   brief.\"},"
              "{\"role\":\"user\",\"content\":\"Weather in\\nParis?\"},"
              "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
              "\"function\":{\"name\":\"weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},"
              "{\"role\":\"tool\",\"content\":\"18C\",\"tool_call_id\":\"c1\"},"
              "{\"role\":\"user\",\"content\":\"And\\n\\ttomorrow?\"}]");
    CHECK_STR(ex.tools_json, "[{\"type\":\"function\",\"function\":{\"name\":\"weather\",\"description\":\"Forecast\","
                             "\"parameters\":{\"type\":\"object\"}}}]");
    CHECK_STR(ex.answer_json, "{\"role\":\"assistant\",\"content\":\"Rain, 15C.\"}");
    CHECK_STR(ex.task_text, "system: Be brief.\nuser: Weather in Paris?\nassistant: weather({\"city\":\"Paris\"})\n"
                            "tool: 18C\nuser: And tomorrow?");
    CHECK_STR(ex.answer_text, "Rain, 15C.");
    CHECK_STR(ex.last_user_text, "And\n\ttomorrow?");
    CHECK_STR(ex.trace_id, "0123456789abcdef0123456789abcdef");
    CHECK_STR(ex.session, "s1");
    CHECK_STR(ex.agent, "planner");
    CHECK_STR(ex.endpoint, "/v1/chat/completions");
    CHECK_INT(ex.cluster, -1);
    CHECK_INT(ex.nscores, 0);
    CHECK(ex.correction == NULL);
    gyre_buf_dispose(&scratch);
}

TEST(corpus_openai_answer_with_tool_calls_and_an_image_part_kept_as_parts)
{
    gyre_store_row_t row = row_of("/v1/chat/completions", 200);
    const char *req = "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What is this?\"},"
                      "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/a.png\"}}]}]}";
    const char *resp = "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
                       "{\"id\":\"t1\",\"type\":\"function\",\"function\":{\"name\":\"look\",\"arguments\":\"{}\"}}]}}]}";
    gyre_buf_t scratch;
    gyre_buf_init(&scratch, 1 << 20);
    gyre_example_t ex;
    char err[256] = "";
    CHECK_INT(convert(&row, req, resp, &scratch, &ex, err, sizeof(err)), 0);
    CHECK_STR(ex.messages_json, "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What is this?\"},"
                                "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/a.png\"}}]}]");
    CHECK(ex.tools_json == NULL);
    CHECK_STR(ex.answer_json, "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"t1\",\"type\":"
                              "\"function\",\"function\":{\"name\":\"look\",\"arguments\":\"{}\"}}]}");
    CHECK_STR(ex.answer_text, "look({})");
    CHECK_STR(ex.last_user_text, "What is this?");
    gyre_buf_dispose(&scratch);
}

TEST(corpus_anthropic_messages_with_tool_use_and_results_read_as_openai_chat)
{
    gyre_store_row_t row = row_of("/v1/messages", 200);
    const char *req =
        "{\"model\":\"claude\",\"max_tokens\":100,\"system\":[{\"type\":\"text\",\"text\":\"You plan trips.\"}],"
        "\"messages\":["
        "{\"role\":\"user\",\"content\":\"Find a train to Lyon\"},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Searching.\"},"
        "{\"type\":\"tool_use\",\"id\":\"tu1\",\"name\":\"trains\",\"input\":{\"to\":\"Lyon\",\"n\":2}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"tu1\","
        "\"content\":[{\"type\":\"text\",\"text\":\"08:10, 09:40\"}]},{\"type\":\"text\",\"text\":\"The first one.\"}]}],"
        "\"tools\":[{\"name\":\"trains\",\"description\":\"Timetable\",\"input_schema\":{\"type\":\"object\"}}]}";
    /* The trace keeps the answer as an OpenAI chat.completion, whatever the client's API. */
    const char *resp = "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"Booked the 08:10.\"}}]}";
    gyre_buf_t scratch;
    gyre_buf_init(&scratch, 1 << 20);
    gyre_example_t ex;
    char err[256] = "";
    CHECK_INT(convert(&row, req, resp, &scratch, &ex, err, sizeof(err)), 0);
    CHECK_STR(ex.messages_json,
              "[{\"role\":\"system\",\"content\":\"You plan trips.\"},"
              "{\"role\":\"user\",\"content\":\"Find a train to Lyon\"},"
              "{\"role\":\"assistant\",\"content\":\"Searching.\",\"tool_calls\":[{\"id\":\"tu1\",\"type\":\"function\","
              "\"function\":{\"name\":\"trains\",\"arguments\":\"{\\\"to\\\":\\\"Lyon\\\",\\\"n\\\":2}\"}}]},"
              "{\"role\":\"tool\",\"content\":\"08:10, 09:40\",\"tool_call_id\":\"tu1\"},"
              "{\"role\":\"user\",\"content\":\"The first one.\"}]");
    CHECK_STR(ex.tools_json, "[{\"type\":\"function\",\"function\":{\"name\":\"trains\",\"description\":\"Timetable\","
                             "\"parameters\":{\"type\":\"object\"}}}]");
    CHECK_STR(ex.answer_json, "{\"role\":\"assistant\",\"content\":\"Booked the 08:10.\"}");
    CHECK_STR(ex.task_text, "system: You plan trips.\nuser: Find a train to Lyon\n"
                            "assistant: Searching. trains({\"to\":\"Lyon\",\"n\":2})\ntool: 08:10, 09:40\n"
                            "user: The first one.");
    CHECK_STR(ex.last_user_text, "The first one.");
    /* An Anthropic message as the answer (a trace from another path) reads the same way. */
    const char *native = "{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":"
                         "\"On it.\"},{\"type\":\"tool_use\",\"id\":\"tu2\",\"name\":\"book\",\"input\":{}}]}";
    gyre_buf_reset(&scratch);
    CHECK_INT(convert(&row, req, native, &scratch, &ex, err, sizeof(err)), 0);
    CHECK_STR(ex.answer_json, "{\"role\":\"assistant\",\"content\":\"On it.\",\"tool_calls\":[{\"id\":\"tu2\","
                              "\"type\":\"function\",\"function\":{\"name\":\"book\",\"arguments\":\"{}\"}}]}");
    CHECK_STR(ex.answer_text, "On it. book({})");
    gyre_buf_dispose(&scratch);
}

TEST(corpus_responses_api_items_read_as_openai_chat)
{
    gyre_store_row_t row = row_of("/v1/responses", 200);
    const char *req =
        "{\"model\":\"gpt-4o\",\"instructions\":\"Answer in French.\",\"input\":["
        "{\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"Convert 3 km\"}]},"
        "{\"type\":\"function_call\",\"call_id\":\"fc1\",\"name\":\"convert\",\"arguments\":\"{\\\"km\\\":3}\"},"
        "{\"type\":\"function_call\",\"call_id\":\"fc2\",\"name\":\"round\",\"arguments\":\"{}\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"fc1\",\"output\":\"1.86 mi\"},"
        "{\"type\":\"reasoning\",\"summary\":[]},"
        "{\"type\":\"message\",\"role\":\"user\",\"content\":\"Merci\"}],"
        "\"tools\":[{\"type\":\"function\",\"name\":\"convert\",\"parameters\":{\"type\":\"object\"}},"
        "{\"type\":\"web_search\"}]}";
    const char *resp = "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"De rien.\"}}]}";
    gyre_buf_t scratch;
    gyre_buf_init(&scratch, 1 << 20);
    gyre_example_t ex;
    char err[256] = "";
    CHECK_INT(convert(&row, req, resp, &scratch, &ex, err, sizeof(err)), 0);
    CHECK_STR(ex.messages_json,
              "[{\"role\":\"system\",\"content\":\"Answer in French.\"},"
              "{\"role\":\"user\",\"content\":\"Convert 3 km\"},"
              "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
              "{\"id\":\"fc1\",\"type\":\"function\",\"function\":{\"name\":\"convert\",\"arguments\":\"{\\\"km\\\":3}\"}},"
              "{\"id\":\"fc2\",\"type\":\"function\",\"function\":{\"name\":\"round\",\"arguments\":\"{}\"}}]},"
              "{\"role\":\"tool\",\"content\":\"1.86 mi\",\"tool_call_id\":\"fc1\"},"
              "{\"role\":\"user\",\"content\":\"Merci\"}]");
    CHECK_STR(ex.tools_json,
              "[{\"type\":\"function\",\"function\":{\"name\":\"convert\",\"parameters\":{\"type\":\"object\"}}}]");
    CHECK_STR(ex.answer_json, "{\"role\":\"assistant\",\"content\":\"De rien.\"}");
    /* A string input is one user message; a Response object as the answer reads too. */
    const char *simple = "{\"input\":\"Bonjour\"}";
    const char *native = "{\"object\":\"response\",\"output\":[{\"type\":\"message\",\"role\":\"assistant\","
                         "\"content\":[{\"type\":\"output_text\",\"text\":\"Salut\"}]}]}";
    gyre_buf_reset(&scratch);
    CHECK_INT(convert(&row, simple, native, &scratch, &ex, err, sizeof(err)), 0);
    CHECK_STR(ex.messages_json, "[{\"role\":\"user\",\"content\":\"Bonjour\"}]");
    CHECK_STR(ex.answer_json, "{\"role\":\"assistant\",\"content\":\"Salut\"}");
    CHECK_STR(ex.task_text, "user: Bonjour");
    gyre_buf_dispose(&scratch);
}

TEST(corpus_an_error_answer_is_no_answer_and_unreadable_rows_say_why)
{
    gyre_buf_t scratch;
    gyre_buf_init(&scratch, 1 << 20);
    gyre_example_t ex;
    char err[256] = "";
    gyre_store_row_t row = row_of("/v1/chat/completions", 429);
    const char *req = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    CHECK_INT(convert(&row, req, "{\"error\":{\"message\":\"slow down\"}}", &scratch, &ex, err, sizeof(err)), 0);
    CHECK(ex.answer_json == NULL);
    CHECK_STR(ex.answer_text, "");
    CHECK_INT(ex.status, 429);
    row.status = 200;
    CHECK_INT(convert(&row, "not json", NULL, &scratch, &ex, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "request: not a JSON object");
    CHECK_INT(convert(&row, NULL, NULL, &scratch, &ex, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "request: not kept");
    CHECK_INT(convert(&row, "{\"input\":\"x\"}", NULL, &scratch, &ex, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "request: no messages array");
    CHECK_INT(convert(&row, "{\"messages\":[{\"content\":\"x\"}]}", NULL, &scratch, &ex, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "request: a message without a role");
    CHECK_INT(convert(&row, "{\"messages\":[]}", NULL, &scratch, &ex, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "request: no message the loop reads");
    gyre_store_row_t emb = row_of("/v1/embeddings", 200);
    CHECK_INT(convert(&emb, "{\"input\":\"x\"}", NULL, &scratch, &ex, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "endpoint /v1/embeddings: not a chat call the loop reads");
    /* An example past the scratch's bound is -E2BIG, not a cut example. */
    gyre_buf_t tiny;
    gyre_buf_init(&tiny, 64);
    CHECK_INT(convert(&row, req, "{\"choices\":[{\"message\":{\"content\":\"a long enough answer to pass 64\"}}]}",
                      &tiny, &ex, err, sizeof(err)),
              -E2BIG);
    CHECK_STR(err, "the example is larger than its buffer (64 bytes)");
    gyre_buf_dispose(&tiny);
    gyre_buf_dispose(&scratch);
}

/* ---- The scan over a store. ---- */

static void trace_of(gyre_trace_t *t, int n, int64_t us, const char *req, const char *resp)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->trace_id, sizeof(t->trace_id), "%032x", n);
    snprintf(t->span_id, sizeof(t->span_id), "%016x", n);
    t->started_us = us;
    t->ended_us = us + 1000;
    t->ttft_us = -1;
    t->endpoint = TS("/v1/chat/completions");
    t->provider = TS("openai");
    t->model = TS("gpt-4o");
    t->status = 200;
    t->session = TS("sess");
    t->prompt_tokens = t->completion_tokens = t->cached_tokens = t->reasoning_tokens = -1;
    t->cost_usd = NAN;
    t->request_body = (gyre_tstr_t){(char *)req, req ? strlen(req) : 0};
    t->response_body = (gyre_tstr_t){(char *)resp, resp ? strlen(resp) : 0};
}

static int line_cb(void *ctx, const gyre_example_t *ex)
{
    gyre_buf_t *b = ctx;
    gyre_buf_appendf(b, "%u %s c=%d", (unsigned)strtoul(ex->trace_id, NULL, 16), ex->last_user_text, ex->cluster);
    for (size_t i = 0; i < ex->nscores; i++)
        gyre_buf_appendf(b, " %s=%g/%s/%s", ex->scores[i].name, ex->scores[i].value, ex->scores[i].version,
                         ex->scores[i].label ? ex->scores[i].label : "-");
    gyre_buf_appendf(b, " fix=%s;", ex->correction ? ex->correction : "-");
    return 0;
}

TEST(corpus_scan_hands_examples_oldest_first_with_newest_scores_correction_and_cluster)
{
    gyre_store_t *s = NULL;
    char err[256] = "";
    CHECK_INT(gyre_store_open("sqlite::memory:", GYRE_STORE_OPEN_WRITE, &s, err, sizeof(err)), 0);
    const char *ok = "{\"choices\":[{\"message\":{\"content\":\"ok\"}}]}";
    gyre_trace_t t[4];
    trace_of(&t[0], 3, 3000, "{\"messages\":[{\"role\":\"user\",\"content\":\"third\"}]}", ok);
    trace_of(&t[1], 1, 1000, "{\"messages\":[{\"role\":\"user\",\"content\":\"first\"}]}", ok);
    trace_of(&t[2], 2, 2000, "garbage", ok);
    trace_of(&t[3], 4, 4000, "{\"messages\":[{\"role\":\"user\",\"content\":\"failed\"}]}", NULL);
    t[3].status = 500;
    const gyre_trace_t *all[] = {&t[0], &t[1], &t[2], &t[3]};
    CHECK_INT(gyre_store_write_batch(s, all, 4, err, sizeof(err)), 0);
    const char *id1 = t[1].trace_id, *id3 = t[0].trace_id;
    gyre_score_t sc[] = {
        {id1, "sess", "json", GYRE_SCORE_HEURISTIC, "v1", 0, NULL, NULL, NULL, 10, 1000},
        {id1, "sess", "json", GYRE_SCORE_HEURISTIC, "v2", 1, NULL, NULL, NULL, 20, 1000},
        {id1, "sess", "helpful", GYRE_SCORE_HUMAN, "", 0, NULL, NULL, "Better answer.", 15, 1000},
        {"", "sess", "tone", GYRE_SCORE_HUMAN, "", NAN, "calm", NULL, "Session fix.", 5, 0},
        {id3, "sess", "json", GYRE_SCORE_HEURISTIC, "v1", 1, NULL, NULL, NULL, 30, 3000},
    };
    CHECK_INT(gyre_store_write_scores(s, sc, 5, err, sizeof(err)), 0);
    gyre_cluster_assign_t as[] = {{id3, 4}};
    CHECK_INT(gyre_store_put_cluster_run(s, "r1", 1, "{}", 2, as, 1, err, sizeof(err)), 0);

    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 16);
    gyre_corpus_counts_t n;
    gyre_corpus_query_t q = {.with_scores = 1};
    CHECK_INT(gyre_corpus_scan_counted(s, &q, line_cb, &b, &n, err, sizeof(err)), 0);
    CHECK_STR(b.base, "1 first c=-1 tone=nan//calm json=1/v2/- helpful=0//- fix=Better answer.;"
                      "3 third c=4 tone=nan//calm json=1/v1/- fix=Session fix.;"
                      "4 failed c=-1 tone=nan//calm fix=Session fix.;");
    CHECK_INT(n.rows, 4);
    CHECK_INT(n.examples, 3);
    CHECK_INT(n.skipped, 1);
    /* ok_only leaves out the call answered 500; without scores none are attached. */
    gyre_buf_reset(&b);
    q = (gyre_corpus_query_t){.ok_only = 1, .q = {.from_us = 2000}};
    CHECK_INT(gyre_corpus_scan(s, &q, line_cb, &b, err, sizeof(err)), 0);
    CHECK_STR(b.base, "3 third c=4 fix=-;");
    /* One example fetched by id has the same scores. */
    gyre_buf_reset(&b);
    CHECK_INT(gyre_corpus_fetch(s, id1, line_cb, &b, err, sizeof(err)), 0);
    CHECK_STR(b.base, "1 first c=-1 tone=nan//calm json=1/v2/- helpful=0//- fix=Better answer.;");
    CHECK_INT(gyre_corpus_fetch(s, "00000000000000000000000000000009", line_cb, &b, err, sizeof(err)), -ENOENT);
    CHECK_STR(err, "trace 00000000000000000000000000000009: not found");
    gyre_buf_dispose(&b);
    gyre_store_close(s);
}
