/* The canary's sequential test, its decisions, its route changes and its restart (src/loop/deploy.h). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control/state.h"
#include "loop/deploy.h"
#include "loop/deploy_int.h"
#include "loop/serve.h"
#include "store/store.h"
#include "test.h"
#include "trace/record.h"

#define CHECK_NEAR(a, b)                                                                                               \
    do {                                                                                                               \
        double a__ = (a), b__ = (b);                                                                                   \
        if (!(fabs(a__ - b__) < 1e-8)) {                                                                               \
            fprintf(stderr, "  %s:%d: %s == %.10f, expected %.10f\n", __FILE__, __LINE__, #a, a__, b__);               \
            gyre_test_failures++;                                                                                      \
        }                                                                                                              \
    } while (0)

TEST(deploy_confidence_sequence_radius_matches_hand_computed_values)
{
    /* n = 10, alpha 0.05: v + rho = 2.5 + 2.5 = 5; sqrt(5 ln(5 / (2.5 * 0.0025))) / 10 = sqrt(5 ln 800) / 10. */
    CHECK_NEAR(gyre_deploy_cs_radius(10, 0.05), 0.578126791);
    /* n = 100: v + rho = 27.5; sqrt(27.5 ln(27.5 / 0.00625)) / 100 = sqrt(27.5 ln 4400) / 100. */
    CHECK_NEAR(gyre_deploy_cs_radius(100, 0.05), 0.151890551);
    CHECK(isinf(gyre_deploy_cs_radius(0, 0.05)));
    /* It shrinks as observations come, and widens as alpha does. */
    CHECK(gyre_deploy_cs_radius(1000, 0.05) < gyre_deploy_cs_radius(100, 0.05));
    CHECK(gyre_deploy_cs_radius(100, 0.01) > gyre_deploy_cs_radius(100, 0.05));
}

TEST(deploy_difference_bounds_split_alpha_over_the_two_arms)
{
    gyre_deploy_arm_t c = {10, 5}, i = {100, 90};
    double lo, hi;
    /* alpha 0.1: each arm at 0.05; 0.5 - 0.9 -/+ (0.578126791 + 0.151890551). */
    gyre_deploy_diff_bounds(&c, &i, 0.1, &lo, &hi);
    CHECK_NEAR(lo, -1.130017342);
    CHECK_NEAR(hi, 0.330017342);
    gyre_deploy_arm_t none = {0, 0};
    gyre_deploy_diff_bounds(&none, &i, 0.1, &lo, &hi);
    CHECK(isinf(lo) && lo < 0 && isinf(hi) && hi > 0);
}

static const char *const signal_names[] = {"error", "no_refusal"};

static gyre_deploy_conf_t conf_of(unsigned min_requests, double max_drop, uint64_t step_ms)
{
    gyre_deploy_conf_t c = {.ramp = {25, 100},
                            .nramp = 2,
                            .min_requests = min_requests,
                            .step_time_ms = step_ms,
                            .max_drop = max_drop,
                            .alpha = 0.05,
                            .rollback_on_alert = 1};
    return c;
}

TEST(deploy_a_failing_candidate_is_rolled_back_at_the_40th_request_of_a_25_percent_step)
{
    /* Every 4th request goes to the candidate, which always fails; the incumbent never does.  By hand: at request 40
     * (10 and 30) the upper bound -1 + r(10, .025) + r(30, .025) first falls below -0.02. */
    gyre_deploy_conf_t c = conf_of(50, 0.02, 600000);
    gyre_deploy_obs_t o = {.nsignals = 1};
    char why[512];
    int at = 0;
    for (int k = 1; k <= 100 && at == 0; k++) {
        gyre_deploy_arm_t *a = k % 4 == 0 ? &o.cand[0] : &o.inc[0];
        a->n++;
        a->sum += k % 4 == 0 ? 0 : 1;
        gyre_deploy_verdict_t v = gyre_deploy_decide(&c, &o, signal_names, 1000, 0, NULL, why, sizeof(why));
        if (v != GYRE_DEPLOY_HOLD) {
            CHECK_INT(v, GYRE_DEPLOY_ROLLBACK);
            at = k;
        }
    }
    CHECK_INT(at, 40);
    CHECK(strncmp(why, "error: the candidate is worse: candidate - incumbent in [", 57) == 0);
}

TEST(deploy_an_equal_candidate_is_promoted_when_both_arms_reach_min_requests)
{
    /* Both arms perfect, alternating; max_drop 0.25: 2 r(200, .025) = 0.2339 is within it at 200 each, so the
     * step is held until the 400th request and promoted then. */
    gyre_deploy_conf_t c = conf_of(200, 0.25, 600000);
    gyre_deploy_obs_t o = {.nsignals = 1};
    char why[512];
    int at = 0;
    for (int k = 1; k <= 1000 && at == 0; k++) {
        gyre_deploy_arm_t *a = k % 2 ? &o.cand[0] : &o.inc[0];
        a->n++;
        a->sum += 1;
        if (gyre_deploy_decide(&c, &o, signal_names, 1000, 0, NULL, why, sizeof(why)) != GYRE_DEPLOY_HOLD)
            at = k;
    }
    CHECK_INT(at, 400);
    CHECK_STR(why, "shown not worse than the incumbent by more than 0.25 on every signal (n 200 and 200)");
}

TEST(deploy_an_equal_candidate_is_promoted_when_step_time_passes_unshown_worse)
{
    gyre_deploy_conf_t c = conf_of(50, 0.02, 10000);
    gyre_deploy_obs_t o = {.nsignals = 2};
    o.cand[0] = (gyre_deploy_arm_t){5, 5};
    o.inc[0] = (gyre_deploy_arm_t){15, 15};
    o.cand[1] = (gyre_deploy_arm_t){5, 4};
    o.inc[1] = (gyre_deploy_arm_t){15, 12};
    char why[512];
    CHECK_INT(gyre_deploy_decide(&c, &o, signal_names, 9999000, 0, NULL, why, sizeof(why)), GYRE_DEPLOY_HOLD);
    CHECK_INT(gyre_deploy_decide(&c, &o, signal_names, 10000000, 0, NULL, why, sizeof(why)), GYRE_DEPLOY_PROMOTE);
    CHECK_STR(why, "the step ran its 10000 ms and nothing showed the candidate worse (n 5 and 15)");
}

TEST(deploy_a_candidate_shown_to_take_under_half_its_share_of_calls_is_rolled_back)
{
    gyre_deploy_conf_t c = conf_of(50, 0.02, 600000);
    gyre_deploy_obs_t o = {.percent = 25, .nsignals = 1};
    char why[512];
    /* 400 calls: r(400, .05) = 0.0788; 18/400 + 0.0788 = 0.1239 < 0.125 shows the share under 12.5 %. */
    o.cand[0] = (gyre_deploy_arm_t){18, 18};
    o.inc[0] = (gyre_deploy_arm_t){382, 382};
    CHECK_INT(gyre_deploy_decide(&c, &o, signal_names, 1000, 0, NULL, why, sizeof(why)), GYRE_DEPLOY_ROLLBACK);
    CHECK_STR(why, "the candidate took 18 of 400 calls, shown below half its 25 %: it is not answering (an open "
                   "breaker, a refused key?)");
    /* 19 of 400 is not shown (0.1263); nor is 0 of 149 calls (r(149) = 0.1253). */
    o.cand[0] = (gyre_deploy_arm_t){19, 19};
    o.inc[0] = (gyre_deploy_arm_t){381, 381};
    CHECK_INT(gyre_deploy_decide(&c, &o, signal_names, 1000, 0, NULL, why, sizeof(why)), GYRE_DEPLOY_HOLD);
    o.cand[0] = (gyre_deploy_arm_t){0, 0};
    o.inc[0] = (gyre_deploy_arm_t){149, 149};
    CHECK_INT(gyre_deploy_decide(&c, &o, signal_names, 1000, 0, NULL, why, sizeof(why)), GYRE_DEPLOY_HOLD);
}

TEST(deploy_a_watched_scorer_shown_worse_rolls_back_even_without_errors)
{
    gyre_deploy_conf_t c = conf_of(50, 0.02, 600000);
    gyre_deploy_obs_t o = {.nsignals = 2};
    o.cand[0] = (gyre_deploy_arm_t){40, 40};
    o.inc[0] = (gyre_deploy_arm_t){120, 120};
    o.cand[1] = (gyre_deploy_arm_t){40, 0}; /* every answer refused */
    o.inc[1] = (gyre_deploy_arm_t){120, 120};
    char why[512];
    CHECK_INT(gyre_deploy_decide(&c, &o, signal_names, 1000, 0, NULL, why, sizeof(why)), GYRE_DEPLOY_ROLLBACK);
    CHECK(strncmp(why, "no_refusal: the candidate is worse", 34) == 0);
}

TEST(deploy_an_alert_on_the_route_rolls_back_unless_rollback_on_alert_is_off)
{
    gyre_deploy_conf_t c = conf_of(50, 0.02, 600000);
    gyre_deploy_obs_t o = {.nsignals = 1};
    char why[512];
    CHECK_INT(gyre_deploy_decide(&c, &o, signal_names, 0, 1, "chat-errors", why, sizeof(why)), GYRE_DEPLOY_ROLLBACK);
    CHECK_STR(why, "alert 'chat-errors' fires on the route");
    c.rollback_on_alert = 0;
    CHECK_INT(gyre_deploy_decide(&c, &o, signal_names, 0, 1, "chat-errors", why, sizeof(why)), GYRE_DEPLOY_HOLD);
}

TEST(deploy_watch_report_flags_a_cluster_whose_quality_dropped_after_promotion)
{
    gyre_deploy_trace_t before[40], after[40];
    memset(before, 0, sizeof(before));
    memset(after, 0, sizeof(after));
    for (int i = 0; i < 40; i++) {
        before[i].cluster = after[i].cluster = i % 2; /* clusters 0 and 1 */
        before[i].latency_ms = after[i].latency_ms = 100;
        before[i].cost_usd = after[i].cost_usd = 0.001;
        for (int m = 0; m < GYRE_LOOP_MAX_SCORERS; m++)
            before[i].val[m] = after[i].val[m] = NAN;
        before[i].val[0] = 1;
        /* Cluster 1 loses its quality after promotion; cluster 0 keeps it. */
        after[i].val[0] = i % 2 ? (i % 4 == 1 ? 1 : 0) : 1;
    }
    const char *metrics[] = {"no_refusal"};
    int regressed = -1;
    char why[512];
    cJSON *r = gyre_deploy_watch_report(before, 40, after, 40, metrics, 1, 0.05, 0.02, &regressed, why, sizeof(why));
    CHECK_INT(regressed, 1);
    CHECK(strncmp(why, "cluster 1: no_refusal went from 1.0000 to 0.5000", 48) == 0);
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r, "clusters"), 0);
    CHECK_STR(cJSON_GetObjectItemCaseSensitive(c0, "cluster")->valuestring, "0");
    const cJSON *nr0 = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c0, "signals"), "no_refusal");
    CHECK(cJSON_GetObjectItemCaseSensitive(nr0, "regressed") == NULL);
    cJSON_Delete(r);
    /* The same traffic after as before: no regression, one report per cluster. */
    r = gyre_deploy_watch_report(before, 40, before, 40, metrics, 1, 0.05, 0.02, &regressed, why, sizeof(why));
    CHECK_INT(regressed, 0);
    CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r, "clusters")), 2);
    cJSON_Delete(r);
}

TEST(deploy_request_parse_takes_defaults_durations_and_an_adapter_and_names_a_bad_field)
{
    gyre_deploy_request_t q;
    char param[64], err[256];
    const char *ok = "{\"run_id\":\"r1\",\"provider\":\"vllm\",\"model\":\"/a\",\"step_time\":\"1500ms\","
                     "\"watch_window\":\"2m\",\"metrics\":[\"no_refusal\"],\"adapter\":{\"kind\":\"vllm\","
                     "\"name\":\"s2\"}}";
    CHECK_INT(gyre_deploy_request_parse(ok, strlen(ok), &q, param, sizeof(param), err, sizeof(err)), 0);
    CHECK_STR(q.run_id, "r1");
    CHECK_INT(q.conf.nramp, 3);
    CHECK_INT(q.conf.ramp[0], 5);
    CHECK_INT(q.conf.min_requests, 50);
    CHECK_INT(q.conf.step_time_ms, 1500);
    CHECK_INT(q.watch_window_ms, 120000);
    CHECK_INT(q.conf.nmetrics, 1);
    CHECK_STR(q.conf.metrics[0], "no_refusal");
    CHECK_INT(q.serve.adapter, GYRE_ADAPTER_VLLM);
    CHECK_STR(q.serve.provider, "vllm"); /* the candidate's provider when the adapter names none */
    CHECK_STR(q.serve.name, "s2");
    gyre_deploy_request_dispose(&q);
    const char *bad[][3] = {
        {"{\"run_id\":\"r\",\"provider\":\"p\"}", "model", "model: is required"},
        {"{\"run_id\":\"r\",\"provider\":\"p\",\"model\":\"m\",\"step_time\":\"10 minutes\"}", "step_time",
         "step_time: must be milliseconds or a duration such as 500ms, 30s, 10m, 1h"},
        {"{\"ramp\":[5,101]}", "ramp", "ramp: must be at most 8 whole percentages from 1 to 100"},
        {"{\"adapter\":{\"kind\":\"tgi\"}}", "adapter.kind", "adapter.kind: must be none, vllm or llamacpp"},
        {"[1]", "", "the body must be a JSON object of at most 65536 bytes"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT(gyre_deploy_request_parse(bad[i][0], strlen(bad[i][0]), &q, param, sizeof(param), err, sizeof(err)),
                  -EINVAL);
        CHECK_STR(param, bad[i][1]);
        CHECK_STR(err, bad[i][2]);
    }
}

TEST(deploy_llamacpp_adapter_id_is_found_by_its_path)
{
    const char *list = "[{\"id\":0,\"path\":\"/m/a.gguf\",\"scale\":0.0},{\"id\":3,\"path\":\"/m/b.gguf\","
                       "\"scale\":1.0}]";
    long id = -1;
    CHECK_INT(gyre_serve_llamacpp_id(list, strlen(list), "/m/b.gguf", &id), 0);
    CHECK_INT(id, 3);
    CHECK_INT(gyre_serve_llamacpp_id(list, strlen(list), "/m/c.gguf", &id), -ENOENT);
    CHECK_INT(gyre_serve_llamacpp_id("{}", 2, "/m/a.gguf", &id), -EPROTO);
}

/* ---- The whole deployment over a real state database and trace store, with a host that records. ---- */

typedef struct fake {
    char last_json[4096];
    int removed; /* set_route(NULL) */
    int changes;
    char actions[512];
    int alert;
} fake_t;

static int fake_set_route(void *ctx, const char *actor, const char *action, const char *route, const char *json,
                          char *err, size_t errlen)
{
    (void)actor, (void)err, (void)errlen, (void)route;
    fake_t *f = ctx;
    f->changes++;
    snprintf(f->actions + strlen(f->actions), sizeof(f->actions) - strlen(f->actions), "%s%s", f->actions[0] ? "," : "",
             action);
    if (json == NULL)
        f->removed = 1;
    else
        snprintf(f->last_json, sizeof(f->last_json), "%s", json);
    return 0;
}

static char *fake_route_json(void *ctx, const char *route)
{
    (void)ctx;
    if (strcmp(route, "chat") != 0)
        return NULL;
    return strdup("{\"name\":\"chat\",\"targets\":[{\"provider\":\"primary\",\"model\":\"gpt-4o-mini\",\"weight\":1}],"
                  "\"strategy\":\"weighted\",\"retries\":0}");
}

static int fake_alert(void *ctx, const char *route, char *rule, size_t size)
{
    (void)route;
    snprintf(rule, size, "chat-errors");
    return ((fake_t *)ctx)->alert;
}

typedef struct env {
    char dir[64], state_path[128], dsn[160];
    gyre_state_t *st;
    gyre_store_t *store;
    fake_t fake;
    gyre_deploy_host_t h;
} env_t;

static void env_open(env_t *e)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->dir, sizeof(e->dir), "/tmp/gyre-deploy-XXXXXX");
    CHECK(mkdtemp(e->dir) != NULL);
    snprintf(e->state_path, sizeof(e->state_path), "%s/state.db", e->dir);
    snprintf(e->dsn, sizeof(e->dsn), "sqlite:%s/traces.db", e->dir);
    char err[256];
    CHECK_INT(gyre_state_open(e->state_path, &e->st, err, sizeof(err)), 0);
    CHECK_INT(gyre_store_open(e->dsn, GYRE_STORE_OPEN_WRITE, &e->store, err, sizeof(err)), 0);
    e->h = (gyre_deploy_host_t){.ctx = &e->fake,
                                .state = e->st,
                                .store_dsn = e->dsn,
                                .set_route = fake_set_route,
                                .route_json = fake_route_json,
                                .alert_firing = fake_alert};
}

static void env_close(env_t *e)
{
    gyre_state_close(e->st);
    gyre_store_close(e->store);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", e->dir);
    CHECK_INT(system(cmd), 0);
}

#define TS(s) ((gyre_tstr_t){(char *)(s), sizeof(s) - 1})

/* n calls of route chat from `at`: every 4th to the candidate (ft/gyre-1), failing when cand_fails. */
static void write_calls(gyre_store_t *s, int first, int n, int64_t at, int cand_fails)
{
    gyre_trace_t *t = calloc((size_t)n, sizeof(*t));
    const gyre_trace_t **all = calloc((size_t)n, sizeof(*all));
    for (int i = 0; i < n; i++) {
        int k = first + i, cand = k % 4 == 0;
        snprintf(t[i].trace_id, sizeof(t[i].trace_id), "%032x", k);
        snprintf(t[i].span_id, sizeof(t[i].span_id), "%016x", k);
        t[i].started_us = at + k * 1000;
        t[i].ended_us = t[i].started_us + 500;
        t[i].ttft_us = -1;
        t[i].endpoint = TS("/v1/chat/completions");
        t[i].route = TS("chat");
        t[i].provider = cand ? TS("ft") : TS("primary");
        t[i].model = cand ? TS("gyre-1") : TS("gpt-4o-mini");
        t[i].status = cand && cand_fails ? 500 : 200;
        t[i].prompt_tokens = t[i].completion_tokens = t[i].cached_tokens = t[i].reasoning_tokens = -1;
        t[i].cost_usd = NAN;
        t[i].cost_saved_usd = NAN;
        t[i].attempts[0] =
            (gyre_trace_attempt_t){t[i].provider, t[i].model, TS("k#0"), t[i].status, t[i].started_us, 500, TS("")};
        t[i].nattempts = 1;
        all[i] = &t[i];
    }
    char err[256];
    CHECK_INT(gyre_store_write_batch(s, all, (size_t)n, err, sizeof(err)), 0);
    free(all);
    free(t);
}

static int64_t began_of(env_t *e)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    char state[32];
    CHECK_INT(gyre_deploy_run_state(&e->h, "run1", state, sizeof(state), &b), 0);
    cJSON *d = cJSON_Parse(b.base);
    int64_t v = (int64_t)cJSON_GetObjectItemCaseSensitive(d, "began_us")->valuedouble;
    cJSON_Delete(d);
    gyre_buf_dispose(&b);
    return v;
}

TEST(deploy_begin_ramps_the_route_and_a_failing_candidate_is_rolled_back_to_no_overlay)
{
    env_t e;
    env_open(&e);
    gyre_deploy_conf_t c = conf_of(50, 0.02, 600000);
    char err[512] = "";
    CHECK_INT(gyre_deploy_begin_watch(&e.h, &c, 0, "chat", "run1", "ft", "gyre-1", NULL, err, sizeof(err)), 0);
    CHECK_STR(err, "");
    CHECK_STR(e.fake.last_json,
              "{\"name\":\"chat\",\"targets\":[{\"provider\":\"primary\",\"model\":\"gpt-4o-mini\",\"weight\":75},"
              "{\"provider\":\"ft\",\"model\":\"gyre-1\",\"weight\":25}],\"strategy\":\"weighted\",\"retries\":0}");
    /* One per route. */
    CHECK_INT(gyre_deploy_begin_watch(&e.h, &c, 0, "chat", "run2", "ft", "gyre-2", NULL, err, sizeof(err)), -EBUSY);
    CHECK_INT(gyre_deploy_begin_watch(&e.h, &c, 0, "nope", "run3", "ft", "gyre-2", NULL, err, sizeof(err)), -ENOENT);
    int64_t began = began_of(&e);
    write_calls(e.store, 1, 39, began, 1);
    gyre_deploy_tick(&e.h, began + 100 * 1000);
    char state[32];
    CHECK_INT(gyre_deploy_run_state(&e.h, "run1", state, sizeof(state), NULL), 0);
    CHECK_STR(state, "canary"); /* 39 calls: not shown worse yet */
    write_calls(e.store, 40, 1, began, 1);
    gyre_deploy_tick(&e.h, began + 100 * 1000);
    CHECK_INT(gyre_deploy_run_state(&e.h, "run1", state, sizeof(state), NULL), 0);
    CHECK_STR(state, "rolled_back");
    CHECK_INT(e.fake.removed, 1); /* there was no overlay before: the file's route again */
    CHECK_STR(e.fake.actions, "deploy.canary,deploy.rollback");
    env_close(&e);
}

TEST(deploy_an_equal_candidate_is_promoted_step_by_step_to_100_with_the_incumbent_as_fallback)
{
    env_t e;
    env_open(&e);
    gyre_deploy_conf_t c = conf_of(50, 0.02, 1000);
    char err[512] = "", state[32];
    CHECK_INT(gyre_deploy_begin_watch(&e.h, &c, 0, "chat", "run1", "ft", "gyre-1", NULL, err, sizeof(err)), 0);
    int64_t began = began_of(&e);
    write_calls(e.store, 1, 20, began, 0);
    gyre_deploy_tick(&e.h, began + 500 * 1000);
    CHECK_INT(gyre_deploy_run_state(&e.h, "run1", state, sizeof(state), NULL), 0);
    CHECK_STR(state, "canary");
    gyre_deploy_tick(&e.h, began + 1000 * 1000); /* step_time */
    CHECK_INT(gyre_deploy_run_state(&e.h, "run1", state, sizeof(state), NULL), 0);
    CHECK_STR(state, "done"); /* 100 % with no watch window */
    CHECK_STR(e.fake.last_json,
              "{\"name\":\"chat\",\"targets\":[{\"provider\":\"ft\",\"model\":\"gyre-1\",\"weight\":1}],"
              "\"strategy\":\"weighted\",\"retries\":0,\"fallbacks\":[{\"provider\":\"primary\",\"model\":"
              "\"gpt-4o-mini\",\"weight\":1}]}");
    /* A manual rollback after it is done still puts the incumbent back. */
    CHECK_INT(gyre_deploy_rollback(&e.h, "chat", "cli", "second thoughts", err, sizeof(err)), 0);
    CHECK_INT(gyre_deploy_run_state(&e.h, "run1", state, sizeof(state), NULL), 0);
    CHECK_STR(state, "rolled_back");
    CHECK_INT(gyre_deploy_rollback(&e.h, "chat", "cli", NULL, err, sizeof(err)), -ENOENT);
    env_close(&e);
}

TEST(deploy_an_alert_rolls_back_and_manual_promote_moves_one_step)
{
    env_t e;
    env_open(&e);
    gyre_deploy_conf_t c = conf_of(50, 0.02, 600000);
    c.ramp[0] = 5, c.ramp[1] = 25, c.ramp[2] = 100, c.nramp = 3;
    char err[512] = "", state[32];
    CHECK_INT(gyre_deploy_begin_watch(&e.h, &c, 0, "chat", "run1", "ft", "gyre-1", NULL, err, sizeof(err)), 0);
    CHECK_INT(gyre_deploy_promote(&e.h, "chat", "cli", err, sizeof(err)), 0);
    CHECK(strstr(e.fake.last_json, "{\"provider\":\"ft\",\"model\":\"gyre-1\",\"weight\":25}") != NULL);
    e.fake.alert = 1;
    gyre_deploy_tick(&e.h, gyre_trace_now_us());
    CHECK_INT(gyre_deploy_run_state(&e.h, "run1", state, sizeof(state), NULL), 0);
    CHECK_STR(state, "rolled_back");
    CHECK_STR(e.fake.actions, "deploy.canary,deploy.promote,deploy.rollback");
    env_close(&e);
}

/* The row's document edited behind the deployment's back (by hand, or a row cut short). */
static void edit_doc(env_t *e, const char *sql)
{
    sqlite3 *db = gyre_state_lock(e->st);
    CHECK_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    gyre_state_unlock(e->st);
}

/* Under the sanitizer build these leaked: a decision added to no list, and a route built from no incumbent (its
 * name and targets, attached to nothing). */
TEST(deploy_a_row_without_decisions_gets_the_list_and_one_without_an_incumbent_is_refused_by_name)
{
    env_t e;
    env_open(&e);
    gyre_deploy_conf_t c = conf_of(50, 0.02, 600000);
    c.ramp[0] = 5, c.ramp[1] = 25, c.ramp[2] = 100, c.nramp = 3;
    char err[512] = "", state[32];
    CHECK_INT(gyre_deploy_begin_watch(&e.h, &c, 0, "chat", "run1", "ft", "gyre-1", NULL, err, sizeof(err)), 0);
    edit_doc(&e, "UPDATE deployments SET doc = json_remove(doc, '$.decisions')");
    CHECK_INT(gyre_deploy_promote(&e.h, "chat", "cli", err, sizeof(err)), 0);
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    CHECK_INT(gyre_deploy_run_state(&e.h, "run1", state, sizeof(state), &b), 0);
    cJSON *d = cJSON_Parse(b.base);
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(d, "decisions");
    CHECK_INT(cJSON_GetArraySize(dec), 1);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(dec, 0), "action")),
              "promote");
    CHECK_INT((int)cJSON_GetObjectItemCaseSensitive(d, "percent")->valuedouble, 25);
    cJSON_Delete(d);
    gyre_buf_dispose(&b);

    edit_doc(&e, "UPDATE deployments SET doc = json_remove(doc, '$.incumbent')");
    CHECK_INT(gyre_deploy_promote(&e.h, "chat", "cli", err, sizeof(err)), -EPROTO);
    CHECK_STR(err, "incumbent: the deployment of run run1 has no incumbent route to ramp from");
    CHECK_STR(e.fake.actions, "deploy.canary,deploy.promote"); /* the route was not touched */
    CHECK_INT(gyre_deploy_run_state(&e.h, "run1", state, sizeof(state), NULL), 0);
    CHECK_STR(state, "canary");
    env_close(&e);
}

TEST(deploy_a_restart_reads_the_same_state_and_observations_and_takes_the_same_decision)
{
    /* Two gyres over copies of one state after begin: one ticks on, the other's state is closed and opened again
     * (a restart) before its tick.  Both read the same observations and decide the same. */
    env_t e;
    env_open(&e);
    gyre_deploy_conf_t c = conf_of(50, 0.02, 600000);
    char err[512] = "", cmd[512];
    CHECK_INT(gyre_deploy_begin_watch(&e.h, &c, 0, "chat", "run1", "ft", "gyre-1", NULL, err, sizeof(err)), 0);
    int64_t began = began_of(&e);
    write_calls(e.store, 1, 60, began, 1);
    gyre_state_close(e.st);
    snprintf(cmd, sizeof(cmd), "cp %s %s/copy.db", e.state_path, e.dir);
    CHECK_INT(system(cmd), 0);
    CHECK_INT(gyre_state_open(e.state_path, &e.st, err, sizeof(err)), 0);
    e.h.state = e.st;
    gyre_deploy_tick(&e.h, began + 200 * 1000);

    char copy[160];
    snprintf(copy, sizeof(copy), "%s/copy.db", e.dir);
    gyre_state_t *st2 = NULL;
    CHECK_INT(gyre_state_open(copy, &st2, err, sizeof(err)), 0);
    fake_t f2 = {0};
    gyre_deploy_host_t h2 = e.h;
    h2.ctx = &f2;
    h2.state = st2;
    gyre_deploy_tick(&h2, began + 200 * 1000);

    gyre_buf_t a, b;
    gyre_buf_init(&a, 1 << 20);
    gyre_buf_init(&b, 1 << 20);
    char s1[32], s2[32];
    CHECK_INT(gyre_deploy_run_state(&e.h, "run1", s1, sizeof(s1), &a), 0);
    CHECK_INT(gyre_deploy_run_state(&h2, "run1", s2, sizeof(s2), &b), 0);
    CHECK_STR(s1, "rolled_back");
    CHECK_STR(s2, "rolled_back");
    cJSON *da = cJSON_Parse(a.base), *db = cJSON_Parse(b.base);
    cJSON *la = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(da, "decisions"), 1);
    cJSON *lb = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(db, "decisions"), 1);
    CHECK_STR(cJSON_GetObjectItemCaseSensitive(la, "why")->valuestring,
              cJSON_GetObjectItemCaseSensitive(lb, "why")->valuestring);
    CHECK(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(la, "observations"),
                        cJSON_GetObjectItemCaseSensitive(lb, "observations"), 1));
    CHECK_INT(f2.removed, 1);
    cJSON_Delete(da);
    cJSON_Delete(db);
    gyre_buf_dispose(&a);
    gyre_buf_dispose(&b);
    gyre_state_close(st2);
    env_close(&e);
}
