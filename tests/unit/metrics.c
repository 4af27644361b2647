/*
 * src/metrics/metrics.c: what a finished call's trace adds to each family,
 * the exact exposition text, label escaping and cutting, the cardinality
 * bound, and the sum of several workers.
 */
#include "metrics/metrics.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "test.h"

#define TS(s) ((gyre_tstr_t){(char *)(s), sizeof(s) - 1})
/* The labels of chat_call()'s target, and the start of a requests sample on route chat. */
#define L "{route=\"chat\",provider=\"openai\",model=\"gpt-4o-mini\""
#define R "gyre_requests_total{route=\"chat\",provider=\"openai\",model=\""

/* A non-streamed chat call on route "chat" to openai/gpt-4o-mini: 200 after 250 ms, 10 + 5 tokens, $0.0015. */
static gyre_trace_t chat_call(void)
{
    gyre_trace_t t;
    memset(&t, 0, sizeof(t));
    t.started_us = 1000000;
    t.ended_us = 1250000;
    t.ttft_us = -1;
    t.route = TS("chat");
    t.provider = TS("openai");
    t.model = TS("gpt-4o-mini");
    t.status = 200;
    t.prompt_tokens = 10;
    t.completion_tokens = 5;
    t.cached_tokens = -1;
    t.reasoning_tokens = -1;
    t.cost_usd = 0.0015;
    t.nattempts = 1;
    t.attempts[0] =
        (gyre_trace_attempt_t){TS("openai"), TS("gpt-4o-mini"), TS("openai#0"), 200, 1000000, 250000, TS("")};
    return t;
}

static const gyre_metrics_process_t PROCESS = {.version = "0.1.0",
                                               .start_time_us = 1764583200500000,
                                               .inflight = 3,
                                               .connections_open = 5,
                                               .connections_max = 4096,
                                               .accept_pauses = {7, 2, 0}};

/* The whole exposition of `n` workers. */
static char *render(gyre_metrics_t **w, size_t n, const gyre_metrics_process_t *p)
{
    gyre_buf_t b;
    gyre_buf_init(&b, GYRE_METRICS_RENDER_MAX);
    CHECK_INT(gyre_metrics_render(w, n, p, &b), 0);
    return b.base;
}

/* The samples of family `name` in `text`: the lines after its # TYPE line, up to the next family. */
static char *family(const char *text, const char *name)
{
    static char out[1 << 16];
    char head[256];
    snprintf(head, sizeof(head), "# TYPE %s ", name);
    const char *p = strstr(text, head);
    out[0] = '\0';
    if (p == NULL)
        return strcpy(out, "(no such family)");
    p = strchr(p, '\n') + 1;
    const char *end = strstr(p, "# HELP ");
    size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
    memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

static char *render_one(const gyre_trace_t *t, const char *name)
{
    gyre_metrics_t *m = gyre_metrics_create(0);
    gyre_metrics_observe(m, t);
    char *text = render(&m, 1, &PROCESS);
    char *f = family(text, name);
    free(text);
    gyre_metrics_destroy(m);
    return f;
}

TEST(metrics_with_no_calls_every_family_has_its_help_and_type_and_the_process_gauges_their_values)
{
    gyre_metrics_t *m = gyre_metrics_create(0);
    char *text = render(&m, 1, &PROCESS);
    CHECK_STR(text,
              "# HELP gyre_requests_total Calls answered, by route, final provider and model, and HTTP status.\n"
              "# TYPE gyre_requests_total counter\n"
              "# HELP gyre_request_errors_total Calls answered with an HTTP status of 400 or more (499: the client "
              "went away).\n"
              "# TYPE gyre_request_errors_total counter\n"
              "# HELP gyre_upstream_attempts_total Attempts made upstream, by provider, model and the status it "
              "answered (0: none).\n"
              "# TYPE gyre_upstream_attempts_total counter\n"
              "# HELP gyre_fallbacks_total Attempts after which the call moved to another target, by the target it "
              "left.\n"
              "# TYPE gyre_fallbacks_total counter\n"
              "# HELP gyre_retries_total Attempts after which the same target was tried again.\n"
              "# TYPE gyre_retries_total counter\n"
              "# HELP gyre_request_duration_seconds Time from a call's arrival to the end of its answer.\n"
              "# TYPE gyre_request_duration_seconds histogram\n"
              "# HELP gyre_time_to_first_token_seconds Time from a streamed call's arrival to its first token.\n"
              "# TYPE gyre_time_to_first_token_seconds histogram\n"
              "# HELP gyre_tokens_total Tokens the providers reported (cached is part of prompt, reasoning part of "
              "completion).\n"
              "# TYPE gyre_tokens_total counter\n"
              "# HELP gyre_cost_usd_total Cost in US dollars of the calls whose cost is known from the price table.\n"
              "# TYPE gyre_cost_usd_total counter\n"
              "# HELP gyre_cache_hits_total Calls answered from the route's cache.\n"
              "# TYPE gyre_cache_hits_total counter\n"
              "# HELP gyre_agent_requests_total Calls that named their agent (x-gyre-agent), by agent and status "
              "class.\n"
              "# TYPE gyre_agent_requests_total counter\n"
              "# HELP gyre_agent_tokens_total Tokens of the calls that named their agent.\n"
              "# TYPE gyre_agent_tokens_total counter\n"
              "# HELP gyre_agent_cost_usd_total Known cost in US dollars of the calls that named their agent.\n"
              "# TYPE gyre_agent_cost_usd_total counter\n"
              "# HELP gyre_requests_in_flight Proxied calls not yet finished.\n"
              "# TYPE gyre_requests_in_flight gauge\n"
              "gyre_requests_in_flight 3\n"
              "# HELP gyre_config_reloads_total New configurations (SIGHUP, admin route changes) put in force (ok) or "
              "refused with their errors (error).\n"
              "# TYPE gyre_config_reloads_total counter\n"
              "gyre_config_reloads_total{result=\"ok\"} 0\n"
              "gyre_config_reloads_total{result=\"error\"} 0\n"
              "# HELP gyre_config_generation The configuration in force: 1 at start, one more per change.\n"
              "# TYPE gyre_config_generation gauge\n"
              "gyre_config_generation 0\n"
              "# HELP gyre_queue_depth Requests waiting on a limit (rpm, tpm, concurrency) before they may go on.\n"
              "# TYPE gyre_queue_depth gauge\n"
              "gyre_queue_depth 0\n"
              "# HELP gyre_connections_open Client connections held, lingering closes included.\n"
              "# TYPE gyre_connections_open gauge\n"
              "gyre_connections_open 5\n"
              "# HELP gyre_connections_max The most client connections gyre holds (max_connections).\n"
              "# TYPE gyre_connections_max gauge\n"
              "gyre_connections_max 4096\n"
              "# HELP gyre_accept_pauses_total Times a worker stopped accepting connections: every max_connections "
              "slot taken, or accept() out of file descriptors (fd_limit) or kernel memory (no_memory).\n"
              "# TYPE gyre_accept_pauses_total counter\n"
              "gyre_accept_pauses_total{reason=\"max_connections\"} 7\n"
              "gyre_accept_pauses_total{reason=\"fd_limit\"} 2\n"
              "gyre_accept_pauses_total{reason=\"no_memory\"} 0\n"
              "# HELP gyre_metrics_folded_total Calls counted under model=\"other\" or agent=\"other\" because a "
              "series table was full.\n"
              "# TYPE gyre_metrics_folded_total counter\n"
              "gyre_metrics_folded_total{table=\"calls\"} 0\n"
              "gyre_metrics_folded_total{table=\"attempts\"} 0\n"
              "gyre_metrics_folded_total{table=\"agents\"} 0\n"
              "# HELP gyre_build_info The running gyre's version (the value is always 1).\n"
              "# TYPE gyre_build_info gauge\n"
              "gyre_build_info{version=\"0.1.0\"} 1\n"
              "# HELP gyre_start_time_seconds When the process started, in unix seconds.\n"
              "# TYPE gyre_start_time_seconds gauge\n"
              "gyre_start_time_seconds 1764583200.5\n");
    free(text);
    gyre_metrics_destroy(m);
}

TEST(metrics_a_call_counts_once_in_requests_by_route_provider_model_and_status)
{
    gyre_trace_t t = chat_call();
    CHECK_STR(render_one(&t, "gyre_requests_total"),
              "gyre_requests_total{route=\"chat\",provider=\"openai\",model=\"gpt-4o-mini\",status=\"200\"} 1\n");
    CHECK_STR(render_one(&t, "gyre_request_errors_total"), "");
}

TEST(metrics_a_call_answered_400_or_more_is_also_an_error_and_its_attempt_keeps_the_upstream_status)
{
    gyre_trace_t t = chat_call();
    t.status = 502;
    t.attempts[0].status = 0; /* the connection was refused */
    t.prompt_tokens = t.completion_tokens = -1;
    t.cost_usd = NAN;
    CHECK_STR(render_one(&t, "gyre_request_errors_total"),
              "gyre_request_errors_total{route=\"chat\",provider=\"openai\",model=\"gpt-4o-mini\",status=\"502\"} 1\n");
    CHECK_STR(render_one(&t, "gyre_upstream_attempts_total"),
              "gyre_upstream_attempts_total{provider=\"openai\",model=\"gpt-4o-mini\",status=\"0\"} 1\n");
}

TEST(metrics_a_call_gyre_answered_itself_has_empty_route_provider_and_model)
{
    gyre_trace_t t = chat_call();
    t.route = t.provider = t.model = (gyre_tstr_t){NULL, 0};
    t.status = 400;
    t.nattempts = 0;
    CHECK_STR(render_one(&t, "gyre_request_errors_total"),
              "gyre_request_errors_total{route=\"\",provider=\"\",model=\"\",status=\"400\"} 1\n");
    CHECK_STR(render_one(&t, "gyre_upstream_attempts_total"), "");
}

TEST(metrics_duration_is_a_cumulative_histogram_in_seconds_from_5ms_to_120s)
{
    gyre_trace_t t = chat_call();
    CHECK_STR(render_one(&t, "gyre_request_duration_seconds"),
              "gyre_request_duration_seconds_bucket" L ",le=\"0.005\"} 0\n"
              "gyre_request_duration_seconds_bucket" L ",le=\"0.01\"} 0\n"
              "gyre_request_duration_seconds_bucket" L ",le=\"0.025\"} 0\n"
              "gyre_request_duration_seconds_bucket" L ",le=\"0.05\"} 0\n"
              "gyre_request_duration_seconds_bucket" L ",le=\"0.1\"} 0\n"
              "gyre_request_duration_seconds_bucket" L ",le=\"0.25\"} 1\n"
              "gyre_request_duration_seconds_bucket" L ",le=\"0.5\"} 1\n"
              "gyre_request_duration_seconds_bucket" L ",le=\"1\"} 1\n"
              "gyre_request_duration_seconds_bucket" L ",le=\"2.5\"} 1\n"
              "gyre_request_duration_seconds_bucket" L ",le=\"5\"} 1\n"
              "gyre_request_duration_seconds_bucket" L ",le=\"10\"} 1\n"
              "gyre_request_duration_seconds_bucket" L ",le=\"30\"} 1\n"
              "gyre_request_duration_seconds_bucket" L ",le=\"60\"} 1\n"
              "gyre_request_duration_seconds_bucket" L ",le=\"120\"} 1\n"
              "gyre_request_duration_seconds_bucket" L ",le=\"+Inf\"} 1\n"
              "gyre_request_duration_seconds_sum" L "} 0.25\n"
              "gyre_request_duration_seconds_count" L "} 1\n");
    /* A non-streamed call has no time to first token. */
    CHECK_STR(render_one(&t, "gyre_time_to_first_token_seconds"), "");
}

TEST(metrics_durations_past_120s_count_only_in_the_inf_bucket)
{
    gyre_metrics_t *m = gyre_metrics_create(0);
    gyre_trace_t t = chat_call();
    t.ended_us = t.started_us + 150000000; /* 150 s */
    gyre_metrics_observe(m, &t);
    t.ended_us = t.started_us + 120000000; /* exactly 120 s: le is inclusive */
    gyre_metrics_observe(m, &t);
    char *text = render(&m, 1, &PROCESS);
    const char *f = family(text, "gyre_request_duration_seconds");
    CHECK(strstr(f, "_bucket" L ",le=\"60\"} 0\n") != NULL);
    CHECK(strstr(f, "_bucket" L ",le=\"120\"} 1\n") != NULL);
    CHECK(strstr(f, "_bucket" L ",le=\"+Inf\"} 2\n") != NULL);
    CHECK(strstr(f, "_sum" L "} 270\n") != NULL);
    CHECK(strstr(f, "_count" L "} 2\n") != NULL);
    free(text);
    gyre_metrics_destroy(m);
}

TEST(metrics_a_stream_adds_its_time_to_first_token)
{
    gyre_trace_t t = chat_call();
    t.stream = 1;
    t.ttft_us = 40000;
    const char *f = render_one(&t, "gyre_time_to_first_token_seconds");
    CHECK(strstr(f, "gyre_time_to_first_token_seconds_bucket" L ",le=\"0.025\"} 0\n"
                    "gyre_time_to_first_token_seconds_bucket" L ",le=\"0.05\"} 1\n") != NULL);
    CHECK(strstr(f, "gyre_time_to_first_token_seconds_sum" L "} 0.04\n"
                    "gyre_time_to_first_token_seconds_count" L "} 1\n") != NULL);
}

TEST(metrics_tokens_count_by_type_and_unknown_counts_add_nothing)
{
    gyre_metrics_t *m = gyre_metrics_create(0);
    gyre_trace_t t = chat_call();
    gyre_metrics_observe(m, &t);
    t.prompt_tokens = 100;
    t.cached_tokens = 64;
    t.completion_tokens = 20;
    t.reasoning_tokens = 12;
    gyre_metrics_observe(m, &t);
    char *text = render(&m, 1, &PROCESS);
    CHECK_STR(family(text, "gyre_tokens_total"), "gyre_tokens_total" L ",type=\"prompt\"} 110\n"
                                                 "gyre_tokens_total" L ",type=\"completion\"} 25\n"
                                                 "gyre_tokens_total" L ",type=\"cached\"} 64\n"
                                                 "gyre_tokens_total" L ",type=\"reasoning\"} 12\n");
    free(text);
    gyre_metrics_destroy(m);
}

TEST(metrics_cost_sums_known_costs_and_a_target_whose_cost_is_never_known_has_no_cost_sample)
{
    gyre_metrics_t *m = gyre_metrics_create(0);
    gyre_trace_t t = chat_call();
    gyre_metrics_observe(m, &t);
    t.cost_usd = NAN; /* same target, unknown this time: adds nothing */
    gyre_metrics_observe(m, &t);
    t.cost_usd = 0.25;
    gyre_metrics_observe(m, &t);
    t.model = TS("my-finetune");
    t.cost_usd = NAN;
    gyre_metrics_observe(m, &t);
    char *text = render(&m, 1, &PROCESS);
    CHECK_STR(family(text, "gyre_cost_usd_total"), "gyre_cost_usd_total" L "} 0.2515\n");
    free(text);
    gyre_metrics_destroy(m);
}

TEST(metrics_a_retry_is_another_try_of_the_same_target_and_a_fallback_a_move_to_the_next)
{
    /* 503 on openai, retried on openai with another key (503 again), then the fallback anthropic answers. */
    gyre_trace_t t = chat_call();
    t.provider = TS("anthropic");
    t.model = TS("claude-haiku");
    t.nattempts = 3;
    t.attempts[0].status = 503;
    t.attempts[1] = t.attempts[0];
    t.attempts[1].key_id = TS("openai#1");
    t.attempts[2] = (gyre_trace_attempt_t){TS("anthropic"), TS("claude-haiku"), TS("anthropic#0"), 200, 0, 0, TS("")};
    gyre_metrics_t *m = gyre_metrics_create(0);
    gyre_metrics_observe(m, &t);
    char *text = render(&m, 1, &PROCESS);
    CHECK_STR(family(text, "gyre_upstream_attempts_total"),
              "gyre_upstream_attempts_total{provider=\"anthropic\",model=\"claude-haiku\",status=\"200\"} 1\n"
              "gyre_upstream_attempts_total{provider=\"openai\",model=\"gpt-4o-mini\",status=\"503\"} 2\n");
    CHECK_STR(family(text, "gyre_retries_total"),
              "gyre_retries_total{route=\"chat\",provider=\"anthropic\",model=\"claude-haiku\"} 0\n"
              "gyre_retries_total{route=\"chat\",provider=\"openai\",model=\"gpt-4o-mini\"} 1\n");
    CHECK_STR(family(text, "gyre_fallbacks_total"),
              "gyre_fallbacks_total{route=\"chat\",provider=\"anthropic\",model=\"claude-haiku\"} 0\n"
              "gyre_fallbacks_total{route=\"chat\",provider=\"openai\",model=\"gpt-4o-mini\"} 1\n");
    /* The call itself is counted under its final target. */
    CHECK_STR(family(text, "gyre_requests_total"),
              "gyre_requests_total{route=\"chat\",provider=\"anthropic\",model=\"claude-haiku\",status=\"200\"} 1\n");
    free(text);
    gyre_metrics_destroy(m);
}

TEST(metrics_cache_hits_count_by_route_and_calls_without_a_route_are_not_listed)
{
    gyre_metrics_t *m = gyre_metrics_create(0);
    gyre_trace_t t = chat_call();
    t.cache_hit = 1;
    t.nattempts = 0;
    gyre_metrics_observe(m, &t);
    gyre_metrics_observe(m, &t);
    t = chat_call();
    gyre_metrics_observe(m, &t);
    t.route = TS("embed");
    gyre_metrics_observe(m, &t);
    t.route = TS("");
    gyre_metrics_observe(m, &t);
    char *text = render(&m, 1, &PROCESS);
    CHECK_STR(family(text, "gyre_cache_hits_total"), "gyre_cache_hits_total{route=\"chat\"} 2\n"
                                                     "gyre_cache_hits_total{route=\"embed\"} 0\n");
    free(text);
    gyre_metrics_destroy(m);
}

TEST(metrics_agent_families_count_calls_that_named_their_agent_by_status_class)
{
    gyre_metrics_t *m = gyre_metrics_create(0);
    gyre_trace_t t = chat_call();
    gyre_metrics_observe(m, &t); /* no agent */
    t.agent = TS("planner");
    gyre_metrics_observe(m, &t);
    gyre_metrics_observe(m, &t);
    t.status = 429;
    t.prompt_tokens = t.completion_tokens = -1;
    t.cost_usd = NAN;
    gyre_metrics_observe(m, &t);
    t.agent = TS("coder");
    t.status = 499;
    gyre_metrics_observe(m, &t);
    char *text = render(&m, 1, &PROCESS);
    CHECK_STR(family(text, "gyre_agent_requests_total"),
              "gyre_agent_requests_total{agent=\"coder\",status_class=\"4xx\"} 1\n"
              "gyre_agent_requests_total{agent=\"planner\",status_class=\"2xx\"} 2\n"
              "gyre_agent_requests_total{agent=\"planner\",status_class=\"4xx\"} 1\n");
    CHECK_STR(family(text, "gyre_agent_tokens_total"),
              "gyre_agent_tokens_total{agent=\"coder\",type=\"prompt\"} 0\n"
              "gyre_agent_tokens_total{agent=\"coder\",type=\"completion\"} 0\n"
              "gyre_agent_tokens_total{agent=\"coder\",type=\"cached\"} 0\n"
              "gyre_agent_tokens_total{agent=\"coder\",type=\"reasoning\"} 0\n"
              "gyre_agent_tokens_total{agent=\"planner\",type=\"prompt\"} 20\n"
              "gyre_agent_tokens_total{agent=\"planner\",type=\"completion\"} "
              "10\n"
              "gyre_agent_tokens_total{agent=\"planner\",type=\"cached\"} 0\n"
              "gyre_agent_tokens_total{agent=\"planner\",type=\"reasoning\"} "
              "0\n");
    CHECK_STR(family(text, "gyre_agent_cost_usd_total"), "gyre_agent_cost_usd_total{agent=\"planner\"} 0.003\n");
    free(text);
    gyre_metrics_destroy(m);
}

TEST(metrics_label_values_escape_backslash_quote_and_newline)
{
    gyre_trace_t t = chat_call();
    t.agent = TS("a\"b\\c\nd\te");
    CHECK_STR(render_one(&t, "gyre_agent_requests_total"),
              "gyre_agent_requests_total{agent=\"a\\\"b\\\\c\\nd\te\",status_class=\"2xx\"} 1\n");
}

TEST(metrics_label_values_that_are_not_utf8_or_are_control_characters_become_question_marks)
{
    gyre_trace_t t = chat_call();
    /* A lone continuation byte, an overlong '/', a surrogate, NUL, CR, DEL; then é and 🙂, which stay. */
    static const char agent[] = "x\x80y\xC0\xAFz\xED\xA0\x80w\0\r\x7F\xC3\xA9\xF0\x9F\x99\x82";
    t.agent = (gyre_tstr_t){(char *)agent, sizeof(agent) - 1};
    CHECK_STR(render_one(&t, "gyre_agent_requests_total"),
              "gyre_agent_requests_total{agent=\"x?y??z???w???\xC3\xA9\xF0\x9F\x99\x82\",status_class=\"2xx\"} 1\n");
}

TEST(metrics_label_values_are_cut_to_128_bytes_at_a_character_boundary)
{
    char model[300], want[256];
    memset(model, 'm', sizeof(model));
    gyre_trace_t t = chat_call();
    t.model = (gyre_tstr_t){model, sizeof(model)};
    snprintf(want, sizeof(want), "gyre_cost_usd_total{route=\"chat\",provider=\"openai\",model=\"%.128s\"} 0.0015\n",
             model);
    CHECK_STR(render_one(&t, "gyre_cost_usd_total"), want);
    /* 127 ASCII bytes and a 2-byte é: the é does not fit, so the value is the 127 bytes. */
    model[127] = '\xC3';
    model[128] = '\xA9';
    snprintf(want, sizeof(want), "gyre_cost_usd_total{route=\"chat\",provider=\"openai\",model=\"%.127s\"} 0.0015\n",
             model);
    CHECK_STR(render_one(&t, "gyre_cost_usd_total"), want);
}

TEST(metrics_past_the_table_capacity_new_models_fold_into_model_other_and_are_counted)
{
    /* Capacity 8 keeps its last 2 slots for folded label sets: 6 models get their own series. */
    gyre_metrics_t *m = gyre_metrics_create(8);
    gyre_trace_t t = chat_call();
    t.nattempts = 0;
    char name[8][16];
    for (int i = 0; i < 8; i++) {
        snprintf(name[i], sizeof(name[i]), "m%d", i);
        t.model = (gyre_tstr_t){name[i], 2};
        gyre_metrics_observe(m, &t);
    }
    t.model = TS("m0"); /* known: still its own series */
    gyre_metrics_observe(m, &t);
    t.model = TS("m7"); /* folded again */
    gyre_metrics_observe(m, &t);
    char *text = render(&m, 1, &PROCESS);
    CHECK_STR(family(text, "gyre_requests_total"),
              R "m0\",status=\"200\"} 2\n" R "m1\",status=\"200\"} 1\n" R "m2\",status=\"200\"} 1\n" R
                "m3\",status=\"200\"} 1\n" R "m4\",status=\"200\"} 1\n" R "m5\",status=\"200\"} 1\n" R
                "other\",status=\"200\"} 3\n");
    CHECK(strstr(text, "gyre_metrics_folded_total{table=\"calls\"} 3\n") != NULL);
    free(text);
    gyre_metrics_destroy(m);
}

TEST(metrics_when_even_the_folded_slots_are_full_every_label_becomes_other)
{
    gyre_metrics_t *m = gyre_metrics_create(8);
    gyre_trace_t t = chat_call();
    t.nattempts = 0;
    char name[6][16];
    /* 6 own series, then a status per call: (chat, openai, other, 5xx) fills slot 7, the rest go to slot 8. */
    for (int i = 0; i < 6; i++) {
        snprintf(name[i], sizeof(name[i]), "m%d", i);
        t.model = (gyre_tstr_t){name[i], 2};
        gyre_metrics_observe(m, &t);
    }
    t.model = TS("new");
    for (int s = 500; s < 504; s++) {
        t.status = s;
        gyre_metrics_observe(m, &t);
    }
    char *text = render(&m, 1, &PROCESS);
    const char *f = family(text, "gyre_requests_total");
    CHECK(strstr(f, R "other\",status=\"500\"} 1\n") != NULL);
    CHECK(strstr(f, "gyre_requests_total{route=\"other\",provider=\"other\",model=\"other\",status=\"other\"} 3\n") !=
          NULL);
    CHECK(strstr(text, "gyre_metrics_folded_total{table=\"calls\"} 4\n") != NULL);
    free(text);
    gyre_metrics_destroy(m);
}

TEST(metrics_too_many_agents_fold_into_agent_other)
{
    gyre_metrics_t *m = gyre_metrics_create(8);
    gyre_trace_t t = chat_call();
    char name[9][16];
    for (int i = 0; i < 9; i++) {
        snprintf(name[i], sizeof(name[i]), "a%d", i);
        t.agent = (gyre_tstr_t){name[i], 2};
        gyre_metrics_observe(m, &t);
    }
    char *text = render(&m, 1, &PROCESS);
    CHECK(strstr(text, "gyre_agent_requests_total{agent=\"a5\",status_class=\"2xx\"} 1\n") != NULL);
    CHECK(strstr(text, "gyre_agent_requests_total{agent=\"a6\"") == NULL);
    CHECK(strstr(text, "gyre_agent_requests_total{agent=\"other\",status_class=\"2xx\"} 3\n") != NULL);
    CHECK(strstr(text, "gyre_metrics_folded_total{table=\"agents\"} 3\n") != NULL);
    free(text);
    gyre_metrics_destroy(m);
}

TEST(metrics_two_workers_series_are_summed_by_label_set)
{
    gyre_metrics_t *w[2] = {gyre_metrics_create(0), gyre_metrics_create(0)};
    gyre_trace_t t = chat_call();
    t.cost_usd = 0.25; /* exact in binary, so that the sum is too */
    gyre_metrics_observe(w[0], &t);
    gyre_metrics_observe(w[1], &t);
    t.status = 500;
    gyre_metrics_observe(w[1], &t);
    char *text = render(w, 2, &PROCESS);
    CHECK_STR(family(text, "gyre_requests_total"), "gyre_requests_total" L ",status=\"200\"} 2\n"
                                                   "gyre_requests_total" L ",status=\"500\"} 1\n");
    CHECK_STR(family(text, "gyre_cost_usd_total"), "gyre_cost_usd_total" L "} 0.75\n");
    const char *f = family(text, "gyre_request_duration_seconds");
    CHECK(strstr(f, "_bucket" L ",le=\"0.25\"} 3\n") != NULL);
    CHECK(strstr(f, "_sum" L "} 0.75\n") != NULL);
    CHECK(strstr(f, "_count" L "} 3\n") != NULL);
    free(text);
    gyre_metrics_destroy(w[0]);
    gyre_metrics_destroy(w[1]);
}

TEST(metrics_writer_families_are_written_when_traces_are_stored)
{
    gyre_metrics_t *m = gyre_metrics_create(0);
    gyre_writer_stats_t st = {.queued = 7,
                              .log_segments = 3,
                              .log_bytes = 4096,
                              .index_lag_bytes = 512,
                              .index_lag_ms = 2500,
                              .logged = 105,
                              .written = 100,
                              .dropped = 6,
                              .dropped_bound = 1,
                              .dropped_disk = 2,
                              .dropped_overflow = 3,
                              .damaged_bytes = 77,
                              .segments_retired = 9,
                              .store_errors = 4};
    gyre_metrics_process_t p = PROCESS;
    p.writer = &st;
    char *text = render(&m, 1, &p);
    CHECK_STR(family(text, "gyre_trace_queue_depth"), "gyre_trace_queue_depth 7\n");
    CHECK_STR(family(text, "gyre_trace_log_segments"), "gyre_trace_log_segments 3\n");
    CHECK_STR(family(text, "gyre_trace_log_bytes"), "gyre_trace_log_bytes 4096\n");
    CHECK_STR(family(text, "gyre_trace_index_lag_bytes"), "gyre_trace_index_lag_bytes 512\n");
    CHECK_STR(family(text, "gyre_trace_index_lag_seconds"), "gyre_trace_index_lag_seconds 2\n");
    CHECK_STR(family(text, "gyre_trace_index_corrupt"), "gyre_trace_index_corrupt 0\n");
    CHECK_STR(family(text, "gyre_trace_log_writable"), "gyre_trace_log_writable 1\n");
    CHECK_STR(family(text, "gyre_traces_logged_total"), "gyre_traces_logged_total 105\n");
    CHECK_STR(family(text, "gyre_traces_written_total"), "gyre_traces_written_total 100\n");
    CHECK_STR(family(text, "gyre_traces_dropped_total"), "gyre_traces_dropped_total 6\n");
    CHECK_STR(family(text, "gyre_traces_refused_total"),
              "gyre_traces_refused_total{reason=\"bound\"} 1\ngyre_traces_refused_total{reason=\"disk\"} 2\n"
              "gyre_traces_refused_total{reason=\"overflow\"} 3\n");
    CHECK_STR(family(text, "gyre_trace_log_damaged_bytes_total"), "gyre_trace_log_damaged_bytes_total 77\n");
    CHECK_STR(family(text, "gyre_trace_log_segments_retired_total"), "gyre_trace_log_segments_retired_total 9\n");
    CHECK_STR(family(text, "gyre_trace_store_errors_total"), "gyre_trace_store_errors_total 4\n");
    free(text);
    text = render(&m, 1, &PROCESS);
    CHECK(strstr(text, "gyre_trace") == NULL);
    free(text);
    gyre_metrics_destroy(m);
}

TEST(metrics_render_past_the_buffer_maximum_is_e2big)
{
    gyre_metrics_t *m = gyre_metrics_create(0);
    gyre_trace_t t = chat_call();
    gyre_metrics_observe(m, &t);
    gyre_buf_t b;
    gyre_buf_init(&b, 1000);
    CHECK_INT(gyre_metrics_render(&m, 1, &PROCESS, &b), -E2BIG);
    CHECK(b.len <= 1000);
    gyre_buf_dispose(&b);
    gyre_metrics_destroy(m);
}

/* The worker of the test below: 200000 calls over 40 models, so that series are published during the scrapes. */
#define RACE_CALLS 200000
static void *observe_many_cb(void *arg)
{
    gyre_metrics_t *m = arg;
    gyre_trace_t t = chat_call();
    char name[40][16];
    for (int i = 0; i < RACE_CALLS; i++) {
        int j = i % 40;
        snprintf(name[j], sizeof(name[j]), "model-%d", j);
        t.model = (gyre_tstr_t){name[j], strlen(name[j])};
        gyre_metrics_observe(m, &t);
    }
    return NULL;
}

/* The sum of every gyre_requests_total sample in `text`. */
static long long requests_in(const char *text)
{
    long long sum = 0;
    for (const char *p = text; (p = strstr(p, "\ngyre_requests_total{")) != NULL; p++)
        sum += atoll(strchr(p + 1, ' ') + 1);
    return sum;
}

TEST(metrics_a_scrape_on_another_thread_while_the_worker_counts_sees_counts_that_only_grow)
{
    gyre_metrics_t *m = gyre_metrics_create(0);
    pthread_t th;
    pthread_create(&th, NULL, observe_many_cb, m);
    long long last = 0;
    int grew = 1;
    for (int i = 0; i < 50; i++) {
        char *text = render(&m, 1, &PROCESS);
        long long n = requests_in(text);
        grew &= n >= last && n <= RACE_CALLS;
        last = n;
        free(text);
    }
    pthread_join(th, NULL);
    CHECK(grew);
    char *text = render(&m, 1, &PROCESS);
    CHECK_INT(requests_in(text), RACE_CALLS);
    CHECK(strstr(text, "model=\"model-39\",status=\"200\"} 5000\n") != NULL);
    free(text);
    gyre_metrics_destroy(m);
}
