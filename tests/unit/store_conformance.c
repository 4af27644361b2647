/*
 * The store's conformance suite (issue 12): every case takes the DSN of a
 * fresh, empty store and speaks only store.h, so any backend runs the same
 * table.  GYRE_STORE_CASES below is that table; each backend adds one line
 * (GYRE_STORE_BACKEND) naming how to make a fresh DSN, and each (backend,
 * case) pair becomes a unit test of its own, "store_conformance_<backend>_
 * <case>", run in its own process like every other.  The cases of the stats
 * query are in store_conformance_stats.c; the write path of the trace log's
 * indexer (items, marks, retention, reset) is at the end of this file.
 */
#include "store_conformance.h"

#define mini gyre_store_case_mini
#define write1 gyre_store_case_write1
#define page_ids gyre_store_case_page_ids
#define query gyre_store_case_query

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>


#define TS(s) ((gyre_tstr_t){(char *)(s), sizeof(s) - 1})
#define STR(s) ((gyre_tstr_t){(char *)(s), strlen(s)})

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

gyre_store_t *gyre_store_case_open(const char *dsn)
{
    gyre_store_t *s = NULL;
    char err[256] = "";
    int r = gyre_store_open(dsn, GYRE_STORE_OPEN_WRITE, &s, err, sizeof(err));
    if (r != 0)
        fprintf(stderr, "  open %s: %s\n", dsn, err);
    return s;
}

/* A minimal trace: id n (as 32 hex digits), started at `us`. */
void gyre_store_case_mini(gyre_trace_t *t, int n, int64_t us)
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
    t->prompt_tokens = t->completion_tokens = t->cached_tokens = t->reasoning_tokens = -1;
    t->cost_usd = NAN;
}

int gyre_store_case_write1(gyre_store_t *s, const gyre_trace_t *t)
{
    char err[256] = "";
    const gyre_trace_t *one[] = {t};
    int r = gyre_store_write_batch(s, one, 1, err, sizeof(err));
    if (r != 0)
        fprintf(stderr, "  write: %s\n", err);
    return r;
}

/* The ids of a page, "<n>,<n>,..." (the trace ids read back as numbers), and its next_cursor. */
void gyre_store_case_page_ids(const char *json, char *ids, size_t idslen, char *cursor, size_t curlen)
{
    ids[0] = '\0';
    cursor[0] = '\0';
    size_t used = 0;
    for (const char *p = json; (p = strstr(p, "{\"trace_id\":\"")) != NULL; p++) {
        unsigned v = (unsigned)strtoul(p + 13, NULL, 16);
        used += (size_t)snprintf(ids + used, idslen - used, used ? ",%u" : "%u", v);
    }
    const char *c = strstr(json, "\"next_cursor\":\"");
    if (c != NULL) {
        c += 15;
        size_t n = strcspn(c, "\"");
        snprintf(cursor, curlen, "%.*s", (int)n, c);
    }
}

int gyre_store_case_query(gyre_store_t *s, const gyre_trace_query_t *q, char *ids, size_t idslen)
{
    gyre_buf_t b;
    char err[256] = "", cursor[80];
    gyre_buf_init(&b, 1 << 24);
    int r = gyre_store_query_traces(s, q, &b, err, sizeof(err));
    if (r != 0)
        fprintf(stderr, "  query: %s\n", err);
    else
        page_ids(b.base, ids, idslen, cursor, sizeof(cursor));
    gyre_buf_dispose(&b);
    return r;
}


void gyre_store_case_reopening_keeps_its_traces_and_runs_no_migration_twice(const char *dsn)
{
    gyre_store_t *s = gyre_store_case_open(dsn);
    gyre_trace_t t;
    mini(&t, 1, 1000);
    CHECK_INT(write1(s, &t), 0);
    int version = gyre_store_schema_version(s);
    CHECK(version > 0);
    gyre_store_close(s);
    s = gyre_store_case_open(dsn);
    CHECK(s != NULL);
    CHECK_INT(gyre_store_schema_version(s), version);
    CHECK_INT(gyre_store_count(s), 1);
    gyre_store_close(s);
}


void gyre_store_case_reads_back_every_field_exactly(const char *dsn)
{
    gyre_store_t *s = gyre_store_case_open(dsn);
    gyre_trace_t t;
    memset(&t, 0, sizeof(t));
    strcpy(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    strcpy(t.otel_trace_id, "0af7651916cd43dd8448eb211c80319c");
    strcpy(t.span_id, "00f067aa0ba902b7");
    strcpy(t.parent_span_id, "b7ad6b7169203331");
    t.request_id = TS("req-1");
    t.started_us = 1764547200000000;
    t.ended_us = 1764547200250000;
    t.ttft_us = 80000;
    t.endpoint = TS("/v1/chat/completions");
    t.route = TS("chat");
    t.provider = TS("anthropic");
    t.model = TS("claude-sonnet-4");
    t.status = 200;
    t.stream = 1;
    t.cache_hit = 0;
    t.finish_reason = TS("stop");
    t.prompt_tokens = 12;
    t.completion_tokens = 5;
    t.cached_tokens = 0;
    t.reasoning_tokens = -1;
    t.cost_usd = 0.000123;
    t.nattempts = 2;
    t.attempts[0] = (gyre_trace_attempt_t){TS("openai"), TS("gpt-4o"), TS("openai#0"), 429, 1764547200000100, 3000,
                                           TS("rate limited")};
    t.attempts[1] = (gyre_trace_attempt_t){TS("anthropic"), TS("claude-sonnet-4"), TS("anthropic#1"), 200,
                                           1764547200003200, 246000, TS("")};
    t.session = TS("s-1");
    t.agent = TS("planner");
    t.user = TS("u\"42");
    t.client_key_id = TS("gk_abcdefghij23");
    t.team = TS("search");
    t.ntags = 2;
    t.tags[0] = TS("prod");
    t.tags[1] = TS("eval");
    t.nmeta = 1;
    t.meta[0] = (gyre_trace_meta_t){TS("team"), TS("search")};
    t.request_body = TS("{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    t.response_body = TS("not json\n");
    CHECK_INT(write1(s, &t), 0);

    gyre_buf_t b;
    char err[256] = "";
    gyre_buf_init(&b, 1 << 20);
    CHECK_INT(gyre_store_get_trace(s, "4bf92f3577b34da6a3ce929d0e0e4736", &b, err, sizeof(err)), 0);
    CHECK_STR(b.base,
              "{\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"otel_trace_id\":\"0af7651916cd43dd8448eb211c80319c\","
              "\"span_id\":\"00f067aa0ba902b7\","
              "\"parent_span_id\":\"b7ad6b7169203331\",\"request_id\":\"req-1\",\"started_us\":1764547200000000,"
              "\"ended_us\":1764547200250000,\"latency_us\":250000,\"ttft_us\":80000,"
              "\"endpoint\":\"/v1/chat/completions\",\"route\":\"chat\",\"provider\":\"anthropic\","
              "\"model\":\"claude-sonnet-4\",\"status\":200,\"stream\":true,\"cache_hit\":false,"
              "\"finish_reason\":\"stop\",\"prompt_tokens\":12,\"completion_tokens\":5,\"cached_tokens\":0,"
              "\"reasoning_tokens\":null,\"cost_usd\":0.000123,\"cost_saved_usd\":0,\"session\":\"s-1\",\"agent\":\"planner\","
              "\"user\":\"u\\\"42\",\"client_key_id\":\"gk_abcdefghij23\",\"team\":\"search\","
              "\"tags\":[\"eval\",\"prod\"],\"meta\":{\"team\":\"search\"},"
              "\"attempts\":[{\"provider\":\"openai\",\"model\":\"gpt-4o\",\"key_id\":\"openai#0\",\"status\":429,"
              "\"started_us\":1764547200000100,\"latency_us\":3000,\"error\":\"rate limited\"},"
              "{\"provider\":\"anthropic\",\"model\":\"claude-sonnet-4\",\"key_id\":\"anthropic#1\",\"status\":200,"
              "\"started_us\":1764547200003200,\"latency_us\":246000,\"error\":\"\"}],"
              "\"request_body\":{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]},"
              "\"response_body\":\"not json\\n\"," "\"feedback\":[],\"scores\":[],\"cluster\":null}");
    gyre_buf_dispose(&b);
    gyre_store_close(s);
}

void gyre_store_case_unknown_cost_tokens_ttft_and_bodies_read_back_as_null_and_no_otel_trace_is_its_own(const char *dsn)
{
    gyre_store_t *s = gyre_store_case_open(dsn);
    gyre_trace_t t;
    mini(&t, 7, 5000);
    CHECK_INT(write1(s, &t), 0);
    gyre_buf_t b;
    char err[256] = "";
    gyre_buf_init(&b, 1 << 20);
    CHECK_INT(gyre_store_get_trace(s, "00000000000000000000000000000007", &b, err, sizeof(err)), 0);
    CHECK_STR(b.base,
              "{\"trace_id\":\"00000000000000000000000000000007\",\"otel_trace_id\":\"00000000000000000000000000000007\","
              "\"span_id\":\"0000000000000007\","
              "\"parent_span_id\":\"\",\"request_id\":\"\",\"started_us\":5000,\"ended_us\":6000,\"latency_us\":1000,"
              "\"ttft_us\":null,\"endpoint\":\"/v1/chat/completions\",\"route\":\"\",\"provider\":\"openai\","
              "\"model\":\"gpt-4o\",\"status\":200,\"stream\":false,\"cache_hit\":false,\"finish_reason\":\"\","
              "\"prompt_tokens\":null,\"completion_tokens\":null,\"cached_tokens\":null,\"reasoning_tokens\":null,"
              "\"cost_usd\":null,\"cost_saved_usd\":0,\"session\":\"\",\"agent\":\"\",\"user\":\"\",\"client_key_id\":\"\",\"team\":\"\","
              "\"tags\":[],\"meta\":{},"
              "\"attempts\":[],\"request_body\":null,\"response_body\":null,"
              "\"feedback\":[],\"scores\":[],\"cluster\":null}");
    gyre_buf_dispose(&b);
    gyre_store_close(s);
}

void gyre_store_case_get_trace_of_an_unknown_id_is_enoent_and_appends_nothing(const char *dsn)
{
    gyre_store_t *s = gyre_store_case_open(dsn);
    gyre_buf_t b;
    char err[256] = "";
    gyre_buf_init(&b, 1 << 20);
    gyre_buf_appends(&b, "x");
    CHECK_INT(gyre_store_get_trace(s, "ffffffffffffffffffffffffffffffff", &b, err, sizeof(err)), -ENOENT);
    CHECK_STR(b.base, "x");
    CHECK_STR(err, "trace ffffffffffffffffffffffffffffffff: not found");
    gyre_buf_dispose(&b);
    gyre_store_close(s);
}

void gyre_store_case_large_body_round_trips_through_zstd(const char *dsn)
{
    gyre_store_t *s = gyre_store_case_open(dsn);
    static char body[200000];
    for (size_t i = 0; i < sizeof(body) - 1; i++)
        body[i] = "abcdefghij"[i % 10];
    body[sizeof(body) - 1] = '\0';
    gyre_trace_t t;
    mini(&t, 3, 100);
    t.response_body = STR(body);
    CHECK_INT(write1(s, &t), 0);
    gyre_buf_t b;
    char err[256] = "";
    gyre_buf_init(&b, 1 << 20);
    CHECK_INT(gyre_store_get_trace(s, "00000000000000000000000000000003", &b, err, sizeof(err)), 0);
    const char *p = strstr(b.base, "\"response_body\":\"");
    CHECK(p != NULL);
    CHECK_INT(strlen(p), strlen("\"response_body\":\"") + strlen(body) + strlen("\",\"feedback\":[],\"scores\":[],\"cluster\":null}"));
    CHECK(p != NULL && memcmp(p + 17, body, strlen(body)) == 0);
    gyre_buf_dispose(&b);
    gyre_store_close(s);
}

void gyre_store_case_a_failing_batch_writes_nothing(const char *dsn)
{
    gyre_store_t *s = gyre_store_case_open(dsn);
    gyre_trace_t a, b, c;
    mini(&a, 1, 100);
    mini(&b, 2, 200);
    mini(&c, 3, 300);
    c.trace_id[0] = '\0'; /* a trace without an id fails the whole batch */
    const gyre_trace_t *batch[] = {&a, &b, &c};
    char err[256] = "";
    CHECK_INT(gyre_store_write_batch(s, batch, 3, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "store: a trace without a trace_id");
    CHECK_INT(gyre_store_count(s), 0);
    /* The handle is usable afterwards. */
    CHECK_INT(gyre_store_write_batch(s, batch, 2, err, sizeof(err)), 0);
    CHECK_INT(gyre_store_count(s), 2);
    gyre_store_close(s);
}

void gyre_store_case_writing_a_stored_trace_again_is_a_no_op_so_spool_replay_is_safe(const char *dsn)
{
    gyre_store_t *s = gyre_store_case_open(dsn);
    gyre_trace_t a, b, a_again;
    mini(&a, 1, 100);
    mini(&b, 2, 200);
    mini(&a_again, 1, 999); /* the same trace_id as a: a replay after a crash */
    const gyre_trace_t *first[] = {&a}, *replay[] = {&a_again, &b};
    char err[256] = "";
    CHECK_INT(gyre_store_write_batch(s, first, 1, err, sizeof(err)), 0);
    CHECK_INT(gyre_store_write_batch(s, replay, 2, err, sizeof(err)), 0);
    CHECK_INT(gyre_store_count(s), 2);
    gyre_buf_t out;
    gyre_buf_init(&out, 1 << 20);
    CHECK_INT(gyre_store_get_trace(s, a.trace_id, &out, err, sizeof(err)), 0);
    CHECK(strstr(out.base, "\"started_us\":100,") != NULL); /* the first write stands */
    gyre_buf_dispose(&out);
    gyre_store_close(s);
}

/* Ten traces, i = 1..10 started at i*1000, each filterable by a property of i. */
static gyre_store_t *ten(const char *dsn)
{
    static const char *const routes[] = {"", "chat"}, *const providers[] = {"openai", "anthropic"};
    static const char *const models[] = {"gpt-4o", "claude", "gemini"};
    gyre_store_t *s = gyre_store_case_open(dsn);
    gyre_trace_t ts[10];
    const gyre_trace_t *batch[10];
    for (int i = 1; i <= 10; i++) {
        gyre_trace_t *t = &ts[i - 1];
        mini(t, i, i * 1000);
        t->route = STR(routes[i % 2]);
        t->provider = STR(providers[i % 2]);
        t->model = STR(models[i % 3]);
        t->agent = i <= 3 ? TS("planner") : TS("");
        t->session = i % 4 == 0 ? TS("s-4") : TS("");
        t->user = i == 5 ? TS("alice") : TS("");
        t->status = i == 6 ? 502 : i == 7 ? 429 : 200;
        t->ended_us = t->started_us + i * 100;
        if (i == 8 || i == 9) {
            t->ntags = 1;
            t->tags[0] = TS("beta");
        }
        if (i == 2) {
            t->request_body = TS("{\"messages\":[{\"role\":\"user\",\"content\":\"Where is the lighthouse?\"}]}");
            t->response_body = TS("{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"On the cliff.\"}}]}");
        }
        if (i == 4)
            t->response_body = TS("plain text about a role model");
        batch[i - 1] = t;
    }
    char err[256] = "";
    if (gyre_store_write_batch(s, batch, 10, err, sizeof(err)) != 0)
        fprintf(stderr, "  write: %s\n", err);
    return s;
}

void gyre_store_case_query_filters_each_field_newest_first(const char *dsn)
{
    gyre_store_t *s = ten(dsn);
    char ids[256];
    struct {
        gyre_trace_query_t q;
        const char *want;
    } cases[] = {
        {{.limit = 0}, "10,9,8,7,6,5,4,3,2,1"},
        {{.from_us = 3000, .to_us = 6000}, "5,4,3"},
        {{.route = "chat"}, "9,7,5,3,1"},
        {{.provider = "anthropic"}, "9,7,5,3,1"},
        {{.model = "gemini"}, "8,5,2"},
        {{.agent = "planner"}, "3,2,1"},
        {{.session = "s-4"}, "8,4"},
        {{.user = "alice"}, "5"},
        {{.tag = "beta"}, "9,8"},
        {{.status = 429}, "7"},
        {{.errors_only = 1}, "7,6"},
        {{.min_latency_us = 800}, "10,9,8"},
        {{.model = "gpt-4o", .provider = "openai"}, "6"},
        {{.route = "nope"}, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK_INT(query(s, &cases[i].q, ids, sizeof(ids)), 0);
        if (strcmp(ids, cases[i].want) != 0)
            fprintf(stderr, "  case %zu:\n", i);
        CHECK_STR(ids, cases[i].want);
    }
    gyre_store_close(s);
}

void gyre_store_case_free_text_finds_words_of_the_prompt_or_the_answer_not_json_keys(const char *dsn)
{
    gyre_store_t *s = ten(dsn);
    char ids[256];
    gyre_trace_query_t q = {.text = "lighthouse"};
    CHECK_INT(query(s, &q, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "2");
    q.text = "the CLIFF";
    CHECK_INT(query(s, &q, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "2");
    /* "role" is a key of the JSON bodies, and a word of trace 4's plain-text answer only. */
    q.text = "role";
    CHECK_INT(query(s, &q, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "4");
    /* Quotes and FTS5 operators in the text are words, not syntax. */
    q.text = "\"lighthouse\" OR NEAR(";
    CHECK_INT(query(s, &q, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "");
    gyre_store_close(s);
}

void gyre_store_case_free_text_matches_calls_with_all_its_words_in_any_order_and_place(const char *dsn)
{
    gyre_store_t *s = ten(dsn);
    char ids[256];
    /* "lighthouse" is in trace 2's prompt and "cliff" in its answer: all the words, not a phrase. */
    gyre_trace_query_t q = {.text = "cliff lighthouse"};
    CHECK_INT(query(s, &q, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "2");
    /* Every word must be there: trace 4 has "role", trace 2 "lighthouse", none both. */
    q.text = "lighthouse role";
    CHECK_INT(query(s, &q, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "");
    /* Words are what the index's tokenizer makes of the text: "light-house" is "light" and "house". */
    q.text = "light-house";
    CHECK_INT(query(s, &q, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "");
    q.text = "ROLE-model";
    CHECK_INT(query(s, &q, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "4");
    /* Only separators: no word, so no call. */
    q.text = "?! -- \"\"";
    CHECK_INT(query(s, &q, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "");
    gyre_store_close(s);
}

void gyre_store_case_free_text_folds_case_and_accents_and_splits_at_unicode_punctuation(const char *dsn)
{
    gyre_store_t *s = gyre_store_case_open(dsn);
    gyre_trace_t a, b;
    mini(&a, 1, 1000);
    mini(&b, 2, 2000);
    /* Non-ASCII words, and ASCII words that touch non-ASCII punctuation (an em dash, curly quotes). */
    a.response_body = TS("O\xc3\xb9 est le CAF\xc3\x89\xe2\x80\x94Phare \xe2\x80\x9cquoted\xe2\x80\x9d x\xc3\x9fy");
    b.response_body = TS("MiXeD Case ASCII words_with_underscores 42nd");
    const gyre_trace_t *batch[] = {&a, &b};
    char err[256] = "", ids[64];
    CHECK_INT(gyre_store_write_batch(s, batch, 2, err, sizeof(err)), 0);
    static const struct {
        const char *q, *want;
    } cases[] = {
        {"cafe", "1"},        {"CAF\xc3\x89", "1"}, {"ou", "1"},         {"phare", "1"},
        {"quoted", "1"},      {"x\xc3\x9fy", "1"},  {"mixed case", "2"}, {"words", "2"},
        {"underscores", "2"}, {"42nd", "2"},        {"42", ""},          {"caf", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK_INT(query(s, &(gyre_trace_query_t){.text = cases[i].q}, ids, sizeof(ids)), 0);
        if (strcmp(ids, cases[i].want) != 0)
            fprintf(stderr, "  q=%s:\n", cases[i].q);
        CHECK_STR(ids, cases[i].want);
    }
    gyre_store_close(s);
}

void gyre_store_case_pages_through_250_traces_by_100_without_duplicates_or_gaps(const char *dsn)
{
    gyre_store_t *s = gyre_store_case_open(dsn);
    gyre_trace_t ts[250];
    const gyre_trace_t *batch[250];
    for (int i = 0; i < 250; i++) {
        /* Pairs share a start time, so the trace_id breaks ties across page boundaries. */
        mini(&ts[i], i + 1, (int64_t)(i / 2) * 10);
        batch[i] = &ts[i];
    }
    char err[256] = "";
    CHECK_INT(gyre_store_write_batch(s, batch, 250, err, sizeof(err)), 0);

    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 24);
    char ids[4096], cursor[80], want[4096];
    gyre_trace_query_t q = {.limit = 100};
    int expect = 250;
    for (int page = 0; page < 3; page++) {
        gyre_buf_reset(&b);
        CHECK_INT(gyre_store_query_traces(s, &q, &b, err, sizeof(err)), 0);
        page_ids(b.base, ids, sizeof(ids), cursor, sizeof(cursor));
        size_t used = 0;
        want[0] = '\0';
        for (int k = 0; k < 100 && expect > 0; k++, expect--)
            used += (size_t)snprintf(want + used, sizeof(want) - used, used ? ",%d" : "%d", expect);
        CHECK_STR(ids, want);
        if (page == 0)
            CHECK_STR(cursor, "750_00000000000000000000000000000097"); /* trace 151 started at 750 */
        if (page == 1)
            CHECK_STR(cursor, "250_00000000000000000000000000000033"); /* trace 51 */
        if (page == 2)
            CHECK(strstr(b.base, "\"next_cursor\":null") != NULL);
        static char cur[80];
        strcpy(cur, cursor);
        q.cursor = cur;
    }
    gyre_buf_dispose(&b);
    gyre_store_close(s);
}

void gyre_store_case_a_cursor_it_did_not_make_is_einval(const char *dsn)
{
    gyre_store_t *s = ten(dsn);
    const char *bad[] = {"abc", "_0a", "12_", "12_XYZ", "12_0a;drop", "99999999999999999999_0a",
                         "12_000000000000000000000000000000000"};
    gyre_buf_t b;
    char err[256];
    gyre_buf_init(&b, 1 << 20);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gyre_trace_query_t q = {.cursor = bad[i]};
        err[0] = '\0';
        CHECK_INT(gyre_store_query_traces(s, &q, &b, err, sizeof(err)), -EINVAL);
        CHECK(strncmp(err, "cursor: ", 8) == 0);
        CHECK_INT(b.len, 0);
    }
    CHECK_INT(gyre_store_query_traces(s, &(gyre_trace_query_t){.cursor = "abc"}, &b, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "cursor: \"abc\" is not one this API returned (expected <started_us>_<trace_id>)");
    CHECK_INT(gyre_store_query_traces(s, &(gyre_trace_query_t){.limit = 1001}, &b, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "limit: 1001 is more than 1000");
    gyre_buf_dispose(&b);
    gyre_store_close(s);
}

void gyre_store_case_summaries_leave_the_bodies_out(const char *dsn)
{
    gyre_store_t *s = ten(dsn);
    gyre_buf_t b;
    char err[256];
    gyre_buf_init(&b, 1 << 20);
    CHECK_INT(gyre_store_query_traces(s, &(gyre_trace_query_t){.text = "lighthouse"}, &b, err, sizeof(err)), 0);
    CHECK(strstr(b.base, "\"trace_id\":\"00000000000000000000000000000002\"") != NULL);
    CHECK(strstr(b.base, "request_body") == NULL);
    CHECK(strstr(b.base, "response_body") == NULL);
    CHECK(starts_with(b.base, "{\"data\":[{\"trace_id\":\"00000000000000000000000000000002\","));
    CHECK(ends_with(b.base, "\"attempts\":[]}],\"next_cursor\":null}"));
    gyre_buf_dispose(&b);
    gyre_store_close(s);
}

void gyre_store_case_session_reads_back_oldest_first_with_bodies(const char *dsn)
{
    gyre_store_t *s = ten(dsn);
    gyre_buf_t b;
    char err[256], ids[256], cursor[80];
    gyre_buf_init(&b, 1 << 20);
    CHECK_INT(gyre_store_get_session(s, "s-4", &b, err, sizeof(err)), 0);
    CHECK(starts_with(b.base, "{\"session\":\"s-4\",\"traces\":[{\"trace_id\":\"00000000000000000000000000000004\","));
    CHECK(ends_with(b.base, "\"request_body\":null,\"response_body\":null}]}"));
    page_ids(b.base, ids, sizeof(ids), cursor, sizeof(cursor));
    CHECK_STR(ids, "4,8");
    CHECK(strstr(b.base, "\"response_body\":\"plain text about a role model\"") != NULL);
    gyre_buf_reset(&b);
    CHECK_INT(gyre_store_get_session(s, "s-unknown", &b, err, sizeof(err)), -ENOENT);
    CHECK_INT(b.len, 0);
    CHECK_STR(err, "session s-unknown: not found");
    gyre_buf_dispose(&b);
    gyre_store_close(s);
}

void gyre_store_case_an_answer_past_the_buffer_max_is_e2big_and_leaves_the_buffer(const char *dsn)
{
    gyre_store_t *s = ten(dsn);
    gyre_buf_t b;
    char err[256];
    gyre_buf_init(&b, 200);
    gyre_buf_appends(&b, "keep");
    CHECK_INT(gyre_store_query_traces(s, &(gyre_trace_query_t){.limit = 10}, &b, err, sizeof(err)), -E2BIG);
    CHECK_STR(b.base, "keep");
    gyre_buf_dispose(&b);
    gyre_store_close(s);
}



void gyre_store_case_query_filters_by_otel_trace_id(const char *dsn)
{
    gyre_store_t *s = gyre_store_case_open(dsn);
    gyre_trace_t a, b, c;
    mini(&a, 1, 100);
    mini(&b, 2, 200);
    mini(&c, 3, 300);
    strcpy(a.otel_trace_id, "0af7651916cd43dd8448eb211c80319c");
    strcpy(c.otel_trace_id, "0af7651916cd43dd8448eb211c80319c");
    const gyre_trace_t *batch[] = {&a, &b, &c};
    char err[256] = "", ids[256];
    CHECK_INT(gyre_store_write_batch(s, batch, 3, err, sizeof(err)), 0);
    gyre_trace_query_t q = {.otel_trace_id = "0af7651916cd43dd8448eb211c80319c"};
    CHECK_INT(query(s, &q, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "3,1");
    q.otel_trace_id = "00000000000000000000000000000002"; /* b sent no traceparent: its own trace */
    CHECK_INT(query(s, &q, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "2");
    gyre_store_close(s);
}

void gyre_store_case_traces_filter_by_the_gateway_key_and_its_team(const char *dsn)
{
    gyre_store_t *s = gyre_store_case_open(dsn);
    gyre_trace_t a, b, c;
    mini(&a, 1, 100);
    mini(&b, 2, 200);
    mini(&c, 3, 300);
    a.client_key_id = TS("gk_aaaaaaaaaaaa");
    a.team = TS("search");
    b.client_key_id = TS("svc-a");
    b.team = TS("search");
    const gyre_trace_t *batch[] = {&a, &b, &c};
    char err[256] = "", ids[256];
    CHECK_INT(gyre_store_write_batch(s, batch, 3, err, sizeof(err)), 0);
    gyre_trace_query_t q = {.key_id = "gk_aaaaaaaaaaaa"};
    CHECK_INT(query(s, &q, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "1");
    q = (gyre_trace_query_t){.team = "search"};
    CHECK_INT(query(s, &q, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "2,1");
    q = (gyre_trace_query_t){.team = "search", .key_id = "svc-a"};
    CHECK_INT(query(s, &q, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "2");
    /* A call made with no key is found by no key: '' is not a key. */
    q = (gyre_trace_query_t){.key_id = "gk_nobody00000"};
    CHECK_INT(query(s, &q, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "");
    gyre_store_close(s);
}

void gyre_store_case_a_body_with_ill_formed_utf8_reads_back_as_a_json_string_with_u_fffd(const char *dsn)
{
    gyre_store_t *s = gyre_store_case_open(dsn);
    gyre_trace_t t;
    mini(&t, 9, 5000);
    /* Parses as JSON for cJSON, but is not UTF-8: embedded as it is, the answer would not be JSON. */
    t.request_body = TS("{\"messages\":[{\"content\":\"\xff\xfe \xc0\xaf \xed\xa0\x80\"}]}");
    t.response_body = TS("{\"ok\":\"caf\xc3\xa9\"}");
    t.model = TS("gpt\xff");
    CHECK_INT(write1(s, &t), 0);
    gyre_buf_t b;
    char err[256] = "";
    gyre_buf_init(&b, 1 << 20);
    CHECK_INT(gyre_store_get_trace(s, "00000000000000000000000000000009", &b, err, sizeof(err)), 0);
    CHECK(strstr(b.base, "\"model\":\"gpt\xef\xbf\xbd\",") != NULL);
    CHECK(ends_with(b.base, "\"request_body\":\"{\\\"messages\\\":[{\\\"content\\\":\\\"\xef\xbf\xbd\xef\xbf\xbd "
                            "\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\\\"}]}\","
                            "\"response_body\":{\"ok\":\"caf\xc3\xa9\"},"
                            "\"feedback\":[],\"scores\":[],\"cluster\":null}"));
    gyre_buf_dispose(&b);
    gyre_store_close(s);
}

/* ---- The trace log's indexer: items, the mark, retention, reset. ---- */

/* A body reader standing in for the trace log: record (segment, offset) holds "req-<seg>-<off>" and, for odd
 * offsets, "resp-<seg>-<off>"; segment 9 is gone (retention). */
static int fake_log_read_cb(void *ctx, const gyre_store_body_ref_t *ref, gyre_buf_t *req, int *has_req,
                            gyre_buf_t *resp, int *has_resp, char *err, size_t errlen)
{
    int *calls = ctx;
    (*calls)++;
    if (ref->segment == 9) {
        snprintf(err, errlen, "trace log: segment 9 is gone");
        return -ENOENT;
    }
    gyre_buf_appendf(req, "\"req-%llu-%llu\"", (unsigned long long)ref->segment, (unsigned long long)ref->offset);
    *has_req = 1;
    *has_resp = ref->offset % 2 == 1;
    if (*has_resp)
        gyre_buf_appendf(resp, "resp-%llu-%llu", (unsigned long long)ref->segment, (unsigned long long)ref->offset);
    return 0;
}

static int insert(gyre_store_t *s, const gyre_store_item_t *items, size_t n, const gyre_store_mark_t *mark)
{
    char err[256] = "";
    int r = gyre_store_insert_batch(s, items, n, mark, err, sizeof(err));
    if (r != 0)
        fprintf(stderr, "  insert: %s\n", err);
    return r;
}

void gyre_store_case_insert_batch_commits_the_mark_with_its_items_and_a_replay_is_a_no_op(const char *dsn)
{
    gyre_store_t *s = gyre_store_case_open(dsn);
    gyre_store_mark_t m = {7, 7};
    char err[256] = "";
    CHECK_INT(gyre_store_get_mark(s, &m, err, sizeof(err)), 0);
    CHECK_INT(m.segment, 0);
    CHECK_INT(m.offset, 0);
    gyre_trace_t a, b;
    mini(&a, 1, 100);
    mini(&b, 2, 200);
    gyre_store_item_t items[] = {{&a, {1, 0, 50}, {NULL, 0}}, {&b, {1, 50, 60}, {NULL, 0}}};
    CHECK_INT(insert(s, items, 2, &(gyre_store_mark_t){1, 110}), 0);
    CHECK_INT(gyre_store_get_mark(s, &m, err, sizeof(err)), 0);
    CHECK_INT(m.segment, 1);
    CHECK_INT(m.offset, 110);
    /* The indexer read the same records again after a crash: nothing doubles, the mark moves. */
    CHECK_INT(insert(s, items, 2, &(gyre_store_mark_t){2, 0}), 0);
    CHECK_INT(gyre_store_count(s), 2);
    CHECK_INT(gyre_store_get_mark(s, &m, err, sizeof(err)), 0);
    CHECK_INT(m.segment, 2);
    CHECK_INT(m.offset, 0);
    /* A failing batch moves neither the index nor the mark. */
    gyre_trace_t bad;
    mini(&bad, 3, 300);
    bad.trace_id[0] = '\0';
    gyre_store_item_t worse[] = {{&bad, {2, 0, 10}, {NULL, 0}}};
    CHECK_INT(gyre_store_insert_batch(s, worse, 1, &(gyre_store_mark_t){2, 10}, err, sizeof(err)), -EINVAL);
    CHECK_INT(gyre_store_get_mark(s, &m, err, sizeof(err)), 0);
    CHECK_INT(m.offset, 0);
    CHECK_INT(gyre_store_count(s), 2);
    gyre_store_close(s);
}

void gyre_store_case_bodies_kept_in_the_log_are_read_through_the_body_reader(const char *dsn)
{
    gyre_store_t *s = gyre_store_case_open(dsn);
    gyre_trace_t a, b;
    mini(&a, 1, 100);
    mini(&b, 2, 200);
    /* The trace still carries its bodies (the indexer read them for the text); the index must not keep them. */
    a.request_body = TS("{\"stored\":\"twice\"}");
    gyre_store_item_t items[] = {{&a, {4, 1, 80}, {NULL, 0}}, {&b, {9, 2, 80}, {NULL, 0}}};
    CHECK_INT(insert(s, items, 2, NULL), 0);
    gyre_buf_t out;
    char err[256] = "";
    gyre_buf_init(&out, 1 << 20);
    /* Without a reader the bodies are not at hand: null, not an error. */
    CHECK_INT(gyre_store_get_trace(s, a.trace_id, &out, err, sizeof(err)), 0);
    CHECK(ends_with(out.base, ",\"request_body\":null,\"response_body\":null,\"feedback\":[],\"scores\":[],\"cluster\":null}"));
    int calls = 0;
    gyre_store_set_body_reader(s, fake_log_read_cb, &calls);
    gyre_buf_reset(&out);
    CHECK_INT(gyre_store_get_trace(s, a.trace_id, &out, err, sizeof(err)), 0);
    CHECK(ends_with(out.base, ",\"request_body\":\"req-4-1\",\"response_body\":\"resp-4-1\","
                              "\"feedback\":[],\"scores\":[],\"cluster\":null}"));
    CHECK_INT(calls, 1);
    /* A page of summaries reads no body. */
    char ids[64];
    CHECK_INT(query(s, &(gyre_trace_query_t){0}, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "2,1");
    CHECK_INT(calls, 1);
    /* A record the log no longer has is an error naming it, and the buffer is left as it was. */
    gyre_buf_reset(&out);
    gyre_buf_appends(&out, "keep");
    CHECK_INT(gyre_store_get_trace(s, b.trace_id, &out, err, sizeof(err)), -EIO);
    CHECK_STR(err, "trace log: segment 9 is gone");
    CHECK_STR(out.base, "keep");
    gyre_buf_dispose(&out);
    gyre_store_close(s);
}

void gyre_store_case_the_text_an_indexer_gives_is_what_free_text_finds(const char *dsn)
{
    gyre_store_t *s = gyre_store_case_open(dsn);
    gyre_trace_t a, b;
    mini(&a, 1, 100);
    mini(&b, 2, 200);
    b.request_body = TS("{\"messages\":[{\"role\":\"user\",\"content\":\"harbour\"}]}");
    gyre_store_item_t items[] = {{&a, {1, 0, 10}, TS("lighthouse keeper\n")}, {&b, {1, 10, 10}, {NULL, 0}}};
    CHECK_INT(insert(s, items, 2, NULL), 0);
    char ids[64];
    CHECK_INT(query(s, &(gyre_trace_query_t){.text = "lighthouse"}, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "1");
    /* No text given: the store extracts it from the trace's bodies, with the shared extraction. */
    CHECK_INT(query(s, &(gyre_trace_query_t){.text = "harbour"}, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "2");
    CHECK_INT(query(s, &(gyre_trace_query_t){.text = "role"}, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "");
    gyre_store_close(s);
}

void gyre_store_case_drop_segments_removes_older_segments_traces_and_keeps_the_rollup(const char *dsn)
{
    gyre_store_t *s = gyre_store_case_open(dsn);
    gyre_trace_t t[4];
    gyre_store_item_t items[4];
    for (int i = 0; i < 4; i++) {
        /* Segments 1, 2, 3, and a row that holds its own bodies (written before the log). */
        mini(&t[i], i + 1, 1796119200000000LL + i * 1000000LL);
        t[i].ntags = 1;
        t[i].tags[0] = TS("x");
        items[i] = (gyre_store_item_t){&t[i], {i < 3 ? (uint64_t)i + 1 : 0, 0, i < 3 ? 10 : 0}, {NULL, 0}};
    }
    CHECK_INT(insert(s, items, 4, NULL), 0);
    char err[256] = "", ids[64];
    CHECK_INT(gyre_store_drop_segments(s, 3, err, sizeof(err)), 0);
    CHECK_INT(gyre_store_count(s), 2);
    CHECK_INT(query(s, &(gyre_trace_query_t){0}, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "4,3");
    CHECK_INT(query(s, &(gyre_trace_query_t){.tag = "x"}, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "4,3");
    /* The stats of the dropped hour still count them: the rollup is history, not the traces. */
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    gyre_stats_query_t sq = {.from_us = 1796119200000000LL, .to_us = 1796122800000000LL};
    CHECK_INT(gyre_store_stats(s, &sq, &b, err, sizeof(err)), 0);
    CHECK(strstr(b.base, "\"total\":{\"requests\":4,") != NULL);
    gyre_buf_dispose(&b);
    gyre_store_close(s);
}

void gyre_store_case_reset_empties_the_index_its_text_rollup_and_mark(const char *dsn)
{
    gyre_store_t *s = gyre_store_case_open(dsn);
    gyre_trace_t a;
    mini(&a, 1, 1796119200000000LL);
    a.ntags = 1;
    a.tags[0] = TS("x");
    gyre_store_item_t items[] = {{&a, {1, 0, 10}, TS("lighthouse\n")}};
    CHECK_INT(insert(s, items, 1, &(gyre_store_mark_t){1, 10}), 0);
    char err[256] = "", ids[64];
    CHECK_INT(gyre_store_reset(s, err, sizeof(err)), 0);
    CHECK_INT(gyre_store_count(s), 0);
    gyre_store_mark_t m = {5, 5};
    CHECK_INT(gyre_store_get_mark(s, &m, err, sizeof(err)), 0);
    CHECK_INT(m.segment, 0);
    CHECK_INT(query(s, &(gyre_trace_query_t){.tag = "x"}, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "");
    /* The same trace indexed again (a reindex) is found by its text once, and counted once. */
    CHECK_INT(insert(s, items, 1, &(gyre_store_mark_t){1, 10}), 0);
    CHECK_INT(query(s, &(gyre_trace_query_t){.text = "lighthouse"}, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "1");
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    gyre_stats_query_t sq = {.from_us = 1796119200000000LL, .to_us = 1796122800000000LL};
    CHECK_INT(gyre_store_stats(s, &sq, &b, err, sizeof(err)), 0);
    CHECK(strstr(b.base, "\"total\":{\"requests\":1,") != NULL);
    gyre_buf_dispose(&b);
    gyre_store_close(s);
}

void gyre_store_case_info_counts_the_traces_their_range_the_mark_and_the_bytes(const char *dsn)
{
    gyre_store_t *s = gyre_store_case_open(dsn);
    gyre_store_info_t info;
    char err[256] = "";
    CHECK_INT(gyre_store_info(s, &info, err, sizeof(err)), 0);
    CHECK_INT(info.traces, 0);
    CHECK_INT(info.oldest_us, 0);
    CHECK_INT(info.newest_us, 0);
    gyre_trace_t a, b;
    mini(&a, 1, 5000);
    mini(&b, 2, 9000);
    gyre_store_item_t items[] = {{&a, {3, 0, 10}, {NULL, 0}}, {&b, {3, 10, 10}, {NULL, 0}}};
    CHECK_INT(insert(s, items, 2, &(gyre_store_mark_t){3, 20}), 0);
    CHECK_INT(gyre_store_info(s, &info, err, sizeof(err)), 0);
    CHECK_INT(info.traces, 2);
    CHECK_INT(info.oldest_us, 5000);
    CHECK_INT(info.newest_us, 9000);
    CHECK_INT(info.mark.segment, 3);
    CHECK_INT(info.mark.offset, 20);
    CHECK(info.bytes > 0);
    gyre_store_close(s);
}

/* ---- The backends the suite runs against. ---- */

/* SQLite: a fresh file under /tmp per case (a file, not :memory:, so that reopening is a real reopen). */
static void sqlite_fresh(char *dsn, size_t len)
{
    char path[] = "/tmp/gyre-conformance-XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0)
        close(fd);
    snprintf(dsn, len, "sqlite:%s", path);
}

static void sqlite_cleanup(const char *dsn)
{
    char p[256];
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s%s", dsn + strlen("sqlite:"), suffixes[i]);
        unlink(p);
    }
}

static const gyre_store_backend_t sqlite_backend = {"sqlite", sqlite_fresh, sqlite_cleanup};

void gyre_store_case_run(const gyre_store_backend_t *b, void (*fn)(const char *dsn))
{
    char dsn[512];
    b->fresh(dsn, sizeof(dsn));
    fn(dsn);
    b->cleanup(dsn);
}

static const gyre_store_backend_t *const sqlite_case_backend = &sqlite_backend;
#define SQLITE_CASE(name) GYRE_STORE_CASE_TEST(sqlite, name)
GYRE_STORE_CASES(SQLITE_CASE)
