/*
 * src/route/stage.c: the route stage of a request: the plan, the session's
 * affinity, and the cache's decision (key, lookup, whether to keep the answer).
 */
#include "route/stage.h"

#include <string.h>

#include "test.h"

static gyre_config_t *config(void)
{
    static const char yaml[] = "providers:\n"
                               "  - {name: a, kind: openai, base_url: 'http://h/v1'}\n"
                               "  - {name: b, kind: openai, base_url: 'http://h/v1'}\n"
                               "routes:\n"
                               "  - {name: cached, cache: true, targets: [{provider: a, model: m1}],"
                               " fallbacks: [{provider: b, model: m2}]}\n"
                               "  - {name: sticky, affinity: session, targets: [{provider: a, model: "
                               "s0},"
                               " {provider: b, model: s1}]}\n";
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = gyre_config_parse("t", yaml, strlen(yaml), &errs);
    CHECK(c != NULL);
    return c;
}

typedef struct fixture {
    gyre_config_t *c;
    gyre_keypool_t pools[2];
    gyre_target_state_t states[2][2];
    gyre_target_state_t *route_states[2];
    gyre_cache_t *caches[2];
    uint64_t rng;
    gyre_route_env_t env;
    gyre_candidate_t cands[4];
    cJSON *pivot;
} fixture_t;

static void setup(fixture_t *f)
{
    memset(f, 0, sizeof(*f));
    f->c = config();
    for (size_t i = 0; i < 2; i++) {
        gyre_keypool_init(&f->pools[i], &f->c->providers[i]);
        f->route_states[i] = f->states[i];
    }
    f->caches[0] = gyre_cache_create(1 << 20, 60000);
    f->rng = 1;
    f->env = (gyre_route_env_t){f->c, f->route_states, f->pools, f->caches, &f->rng, 1000, NULL};
    f->pivot = cJSON_Parse("{\"model\":\"cached\",\"messages\":[{\"role\":"
                           "\"user\",\"content\":\"hi\"}]}");
}

static void teardown(fixture_t *f)
{
    cJSON_Delete(f->pivot);
    gyre_cache_destroy(f->caches[0]);
    for (size_t i = 0; i < 2; i++)
        gyre_keypool_dispose(&f->pools[i]);
    gyre_config_free(f->c);
}

/* A chat request on route `name`, with the given headers (NULL: absent). */
static gyre_route_ask_t ask(fixture_t *f, const char *name, const char *session, const char *cache_control)
{
    gyre_route_ask_t a = {0};
    CHECK_INT(gyre_route_resolve(f->c, name, strlen(name), &a.target), 0);
    a.session = session;
    a.session_len = session ? strlen(session) : 0;
    a.cache_control = cache_control;
    a.cache_control_len = cache_control ? strlen(cache_control) : 0;
    a.pivot = f->pivot;
    a.chat = 1;
    return a;
}

/* Stores `value` under the cache key of the fixture's request on "cached". */
static void store(fixture_t *f, const char *value)
{
    gyre_buf_t key;
    gyre_buf_init(&key, 1 << 20);
    CHECK_INT(gyre_cache_key(f->pivot, "cached", &key), 0);
    CHECK_INT(gyre_cache_put(f->caches[0], key.base, key.len, value, strlen(value), 1000), 0);
    gyre_buf_dispose(&key);
}

TEST(route_stage_provider_model_is_one_candidate_and_never_cached)
{
    fixture_t f;
    setup(&f);
    gyre_route_ask_t a = ask(&f, "b/gpt-x", "s-1", NULL);
    CHECK_INT(gyre_route_plan_len(&a.target), 1);
    gyre_route_decision_t d;
    gyre_route_stage(&f.env, &a, f.cands, &d);
    CHECK_INT(d.ncands, 1);
    CHECK_INT(d.cands[0].provider, 1);
    CHECK_MEM(d.cands[0].model, d.cands[0].model_len, "gpt-x");
    CHECK(d.cands[0].state == NULL);
    CHECK_INT(d.affinity, 0);
    CHECK_INT(d.keyed, 0);
    CHECK(d.store == NULL);
    CHECK_INT(d.hit, 0);
    gyre_route_decision_dispose(&d);
    teardown(&f);
}

TEST(route_stage_plans_the_route_targets_then_fallbacks)
{
    fixture_t f;
    setup(&f);
    gyre_route_ask_t a = ask(&f, "cached", NULL, NULL);
    CHECK_INT(gyre_route_plan_len(&a.target), 2);
    gyre_route_decision_t d;
    gyre_route_stage(&f.env, &a, f.cands, &d);
    CHECK_INT(d.ncands, 2);
    CHECK_MEM(d.cands[0].model, d.cands[0].model_len, "m1");
    CHECK(d.cands[0].state == &f.states[0][0]);
    CHECK_MEM(d.cands[1].model, d.cands[1].model_len, "m2");
    CHECK_INT(d.cands[1].is_fallback, 1);
    gyre_route_decision_dispose(&d);
    teardown(&f);
}

TEST(route_stage_session_header_sets_the_affinity_only_under_affinity_session)
{
    fixture_t f;
    setup(&f);
    gyre_route_decision_t d;
    gyre_route_ask_t a = ask(&f, "sticky", "user-42", NULL);
    gyre_route_stage(&f.env, &a, f.cands, &d);
    CHECK(d.affinity == (gyre_hash64("user-42", 7, 0x67797265) | 1));
    gyre_route_decision_dispose(&d);
    a = ask(&f, "sticky", NULL, NULL);
    gyre_route_stage(&f.env, &a, f.cands, &d);
    CHECK_INT(d.affinity, 0);
    gyre_route_decision_dispose(&d);
    a = ask(&f, "cached", "user-42", NULL);
    gyre_route_stage(&f.env, &a, f.cands, &d);
    CHECK_INT(d.affinity, 0);
    gyre_route_decision_dispose(&d);
    teardown(&f);
}

TEST(route_stage_a_cached_route_misses_then_hits_and_keeps_the_answer)
{
    fixture_t f;
    setup(&f);
    gyre_route_decision_t d;
    gyre_route_ask_t a = ask(&f, "cached", NULL, NULL);
    gyre_route_stage(&f.env, &a, f.cands, &d);
    CHECK_INT(d.keyed, 1);
    CHECK(d.store == f.caches[0]);
    CHECK_INT(d.hit, 0);
    gyre_route_decision_dispose(&d);
    store(&f, "a\tm1\n{\"answer\":1}");
    gyre_route_stage(&f.env, &a, f.cands, &d);
    CHECK_INT(d.hit, 1);
    CHECK_MEM(d.hit_entry.base, d.hit_entry.len, "a\tm1\n{\"answer\":1}");
    gyre_route_decision_dispose(&d);
    teardown(&f);
}

TEST(route_stage_no_cache_skips_the_lookup_and_still_keeps_the_answer_no_store_skips_both)
{
    fixture_t f;
    setup(&f);
    store(&f, "a\tm1\n{}");
    gyre_route_decision_t d;
    gyre_route_ask_t a = ask(&f, "cached", NULL, "max-age=0, No-Cache");
    gyre_route_stage(&f.env, &a, f.cands, &d);
    CHECK_INT(d.hit, 0);
    CHECK(d.store == f.caches[0]);
    gyre_route_decision_dispose(&d);
    a = ask(&f, "cached", NULL, "NO-STORE");
    gyre_route_stage(&f.env, &a, f.cands, &d);
    CHECK_INT(d.hit, 0);
    CHECK(d.store == NULL);
    CHECK_INT(d.keyed, 1);
    gyre_route_decision_dispose(&d);
    gyre_cache_stats_t st;
    gyre_cache_stats(f.caches[0], &st);
    CHECK_INT(st.hits + st.misses, 0); /* neither looked */
    teardown(&f);
}

TEST(route_stage_only_chat_requests_and_streams_of_one_choice_are_cached)
{
    fixture_t f;
    setup(&f);
    store(&f, "a\tm1\n{}");
    gyre_route_decision_t d;
    gyre_route_ask_t a = ask(&f, "cached", NULL, NULL);
    a.chat = 0;
    gyre_route_stage(&f.env, &a, f.cands, &d);
    CHECK_INT(d.keyed, 0);
    CHECK_INT(d.hit, 0);
    gyre_route_decision_dispose(&d);
    a = ask(&f, "cached", NULL, NULL);
    a.pivot = NULL;
    gyre_route_stage(&f.env, &a, f.cands, &d);
    CHECK_INT(d.keyed, 0);
    gyre_route_decision_dispose(&d);
    /* n: 2 as a stream: the stream's accumulator keeps the first choice only, so
     * it is not cached. */
    cJSON_AddNumberToObject(f.pivot, "n", 2);
    a = ask(&f, "cached", NULL, NULL);
    a.stream = 1;
    gyre_route_stage(&f.env, &a, f.cands, &d);
    CHECK_INT(d.keyed, 0);
    CHECK(d.store == NULL);
    gyre_route_decision_dispose(&d);
    teardown(&f);
}
