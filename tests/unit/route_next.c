/*
 * src/route/next.c: after each attempt, the next step of a request's walk
 * down its plan (gyre_route_next), the failure accounting on the key that
 * made it (gyre_route_record), and the key an attempt takes
 * (gyre_route_take_key).  Walks are driven here as the proxy drives them:
 * take a key (none: the candidate is unavailable), count the try, account
 * the outcome, ask for the next step, apply it.
 */
#include "route/next.h"

#include <string.h>

#include "test.h"

#define SEED 12345

static gyre_config_t *config(void)
{
    static const char yaml[] =
        "providers:\n"
        "  - {name: a, kind: openai, base_url: 'http://h/v1', keys: [sk-a-first-000001, sk-a-second-00002],"
        " breaker: {failures: 2, error_rate_pct: 0, cooldown_ms: 1000}}\n"
        "  - {name: b, kind: openai, base_url: 'http://h/v1', breaker: {failures: 2, error_rate_pct: 0,"
        " cooldown_ms: 2500}}\n"
        "  - {name: c, kind: openai, base_url: 'http://h/v1', breaker: {failures: 2, error_rate_pct: 0,"
        " cooldown_ms: 5000}}\n"
        "routes:\n"
        "  - {name: chain, targets: [{provider: a, model: ma}],"
        " fallbacks: [{provider: b, model: mb}, {provider: c, model: mc}]}\n"
        "  - {name: only503, fallback_on: [503], targets: [{provider: a, model: ma}],"
        " fallbacks: [{provider: b, model: mb}, {provider: c, model: mc}]}\n"
        "  - {name: timeouts, fallback_on: [timeout], targets: [{provider: a, model: ma}],"
        " fallbacks: [{provider: b, model: mb}, {provider: c, model: mc}]}\n"
        "  - {name: retrying, retries: 2, backoff_ms: 100, backoff_max_ms: 1000, targets: [{provider: a, model: ma}],"
        " fallbacks: [{provider: b, model: mb}, {provider: c, model: mc}]}\n"
        "  - {name: resuming, midstream: resume, targets: [{provider: a, model: ma}],"
        " fallbacks: [{provider: b, model: mb}, {provider: c, model: mc}]}\n"
        "  - {name: resume_timeouts, midstream: resume, fallback_on: [timeout], targets: [{provider: a, model: ma}],"
        " fallbacks: [{provider: b, model: mb}, {provider: c, model: mc}]}\n"
        "  - {name: resume_retry, midstream: resume, retries: 1, backoff_ms: 100, targets: [{provider: a, model: ma}],"
        " fallbacks: [{provider: b, model: mb}, {provider: c, model: mc}]}\n"
        "  - {name: deadline, retries: 1, deadline_ms: 1000, targets: [{provider: a, model: ma}],"
        " fallbacks: [{provider: b, model: mb}, {provider: c, model: mc}]}\n"
        "  - name: weighted\n"
        "    targets: [{provider: a, model: x5, weight: 5}, {provider: b, model: x3, weight: 3},"
        " {provider: c, model: x2, weight: 2}]\n";
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = gyre_config_parse("t", yaml, strlen(yaml), &errs);
    CHECK(c != NULL);
    return c;
}

typedef struct fixture {
    gyre_config_t *c;
    gyre_keypool_t pools[3];
    gyre_target_state_t states[8];
    gyre_candidate_t cands[8];
    size_t ncands;
    gyre_route_walk_t w;
    uint64_t rng;
} fixture_t;

static void setup(fixture_t *f)
{
    memset(f, 0, sizeof(*f));
    f->c = config();
    for (size_t i = 0; i < 3; i++)
        gyre_keypool_init(&f->pools[i], &f->c->providers[i]);
    f->rng = SEED;
}

static void teardown(fixture_t *f)
{
    for (size_t i = 0; i < 3; i++)
        gyre_keypool_dispose(&f->pools[i]);
    gyre_config_free(f->c);
}

/* Every key back as new (breakers closed, no rest), for walks that must not feel the ones before. */
static void forget(fixture_t *f)
{
    for (size_t p = 0; p < 3; p++) {
        for (size_t k = 0; k < f->pools[p].nkeys; k++) {
            f->pools[p].keys[k] = (gyre_key_state_t){0};
            gyre_breaker_init(&f->pools[p].keys[k].breaker);
        }
    }
}

/* A new request on route `name` at `now`: its plan, and a walk at its start with the given deadline (0: none). */
static void start(fixture_t *f, const char *name, uint64_t now, uint64_t deadline_at_ms)
{
    const gyre_route_conf_t *r = gyre_config_find_route(f->c, name, strlen(name));
    CHECK(r != NULL);
    f->ncands = gyre_route_plan(r, f->states, f->pools, now, &f->rng, 0, f->cands);
    gyre_route_walk_init(&f->w, r, f->cands, f->ncands, f->pools, deadline_at_ms);
}

static gyre_route_outcome_t status(int code, uint64_t retry_after_ms)
{
    return (gyre_route_outcome_t){.kind = GYRE_OUTCOME_STATUS, .status = code, .retry_after_ms = retry_after_ms};
}

static gyre_route_outcome_t failure(gyre_route_outcome_kind_t kind)
{
    return (gyre_route_outcome_t){.kind = kind};
}

/* A cut after the client had bytes, resumable or not. */
static gyre_route_outcome_t cut_after_bytes(gyre_route_outcome_kind_t kind, int resumable)
{
    return (gyre_route_outcome_t){
        .kind = kind, .status = kind == GYRE_OUTCOME_STATUS ? 500 : 0, .sent = 1, .resumable = resumable};
}

/* An attempt on the walk's candidate, as the proxy starts one: its key (-1: none usable), and one more try. */
static int attempt(fixture_t *f, uint64_t now)
{
    int key = gyre_route_take_key(&f->w, &f->pools[f->cands[f->w.cur].provider], now, 0);
    if (key >= 0)
        f->w.tries_on_cur++;
    return key;
}

/* The attempt with `key` ended as `o`: accounted on the key, then the next step, applied to the walk. */
static gyre_route_step_t ended(fixture_t *f, int key, gyre_route_outcome_t o, uint64_t now)
{
    gyre_route_record(&f->pools[f->cands[f->w.cur].provider], key, &o, now);
    gyre_route_step_t s = gyre_route_next(&f->w, &o, now, &f->rng);
    gyre_route_walk_apply(&f->w, &s);
    return s;
}

/*
 * Walks the plan at `now`, every attempt ending as `o`, and writes the trail:
 * the models tried in order ("-model" for one whose turn came with no usable
 * key), then how it gave up ("give up" or "503, retry in N s").  Waits are not taken: the clock stays at `now`.
 */
static const char *walk(fixture_t *f, gyre_route_outcome_t o, uint64_t now, char *buf, size_t size)
{
    buf[0] = '\0';
    for (int guard = 0; guard < 32; guard++) {
        gyre_route_step_t s;
        int key = attempt(f, now);
        if (key < 0) {
            /* Its turn came and no key of it was usable: "-model" in the trail.  The decision skips what it knows
             * to be unusable, so a well-made walk shows this only for the plan's first candidate. */
            strncat(buf, "-", size - strlen(buf) - 1);
            strncat(buf, f->cands[f->w.cur].model, size - strlen(buf) - 1);
            strncat(buf, " ", size - strlen(buf) - 1);
            gyre_route_outcome_t none = {.kind = GYRE_OUTCOME_UNAVAILABLE};
            s = gyre_route_next(&f->w, &none, now, &f->rng);
            gyre_route_walk_apply(&f->w, &s);
        } else {
            strncat(buf, f->cands[f->w.cur].model, size - strlen(buf) - 1);
            strncat(buf, " ", size - strlen(buf) - 1);
            s = ended(f, key, o, now);
        }
        if (s.kind == GYRE_STEP_GIVE_UP) {
            char tail[64];
            if (s.final == GYRE_FINAL_UNAVAILABLE)
                snprintf(tail, sizeof(tail), "503, retry in %llu s", (unsigned long long)s.retry_after_s);
            else
                snprintf(tail, sizeof(tail), "give up");
            strncat(buf, tail, size - strlen(buf) - 1);
            return buf;
        }
    }
    return "the walk did not end";
}

/* Opens the breaker of provider p's key `key` (failures: 2) at `now`. */
static void open_breaker(fixture_t *f, size_t p, int key, uint64_t now)
{
    gyre_route_outcome_t o = failure(GYRE_OUTCOME_CONNECT);
    for (int i = 0; i < 2; i++) {
        CHECK(gyre_breaker_acquire(&f->pools[p].keys[key].breaker, &f->pools[p].conf->breaker, now));
        gyre_route_record(&f->pools[p], key, &o, now);
    }
    CHECK_INT(f->pools[p].keys[key].breaker.state, GYRE_BREAKER_OPEN);
}

/* Rests every key of provider a after a 429 with this Retry-After. */
static void rest_a(fixture_t *f, uint64_t retry_after_ms, uint64_t now)
{
    gyre_route_outcome_t o = status(429, retry_after_ms);
    gyre_route_record(&f->pools[0], 0, &o, now);
    gyre_route_record(&f->pools[0], 1, &o, now);
    CHECK_INT(gyre_keypool_available(&f->pools[0], now), 0);
}

/* ---- fallback_on ---- */

TEST(route_next_moves_down_the_plan_on_a_listed_status_and_gives_up_after_the_last)
{
    fixture_t f;
    char buf[128];
    setup(&f);
    start(&f, "chain", 1000, 0);
    CHECK_STR(walk(&f, status(502, 0), 1000, buf, sizeof(buf)), "ma mb mc give up");
    teardown(&f);
}

TEST(route_next_gives_up_at_once_on_a_status_that_fallback_on_does_not_list)
{
    fixture_t f;
    char buf[128];
    setup(&f);
    start(&f, "only503", 1000, 0);
    CHECK_STR(walk(&f, status(500, 0), 1000, buf, sizeof(buf)), "ma give up");
    start(&f, "only503", 1000, 0);
    CHECK_STR(walk(&f, status(503, 0), 1000, buf, sizeof(buf)), "ma mb mc give up");
    teardown(&f);
}

TEST(route_next_default_fallback_on_moves_on_after_429_and_5xx_and_never_after_a_client_error)
{
    static const int moves[] = {429, 500, 502, 503, 504, 529};
    static const int stays[] = {400, 401, 403, 404, 422, 501};
    fixture_t f;
    char buf[128];
    setup(&f);
    for (size_t i = 0; i < sizeof(moves) / sizeof(moves[0]); i++) {
        forget(&f);
        start(&f, "chain", 1000, 0);
        gyre_route_step_t s = ended(&f, attempt(&f, 1000), status(moves[i], 0), 1000);
        CHECK_INT(s.kind, GYRE_STEP_TRY);
        CHECK_INT(s.cand, 1);
        CHECK_INT(s.wait_ms, 0);
    }
    for (size_t i = 0; i < sizeof(stays) / sizeof(stays[0]); i++) {
        forget(&f);
        start(&f, "chain", 1000, 0);
        CHECK_STR(walk(&f, status(stays[i], 0), 1000, buf, sizeof(buf)), "ma give up");
    }
    teardown(&f);
}

TEST(route_next_connect_errors_and_cuts_follow_connect_and_timeouts_follow_timeout)
{
    fixture_t f;
    char buf[128];
    setup(&f);
    forget(&f);
    start(&f, "timeouts", 1000, 0);
    CHECK_STR(walk(&f, failure(GYRE_OUTCOME_CONNECT), 1000, buf, sizeof(buf)), "ma give up");
    forget(&f);
    start(&f, "timeouts", 1000, 0);
    CHECK_STR(walk(&f, failure(GYRE_OUTCOME_CUT), 1000, buf, sizeof(buf)), "ma give up");
    forget(&f);
    start(&f, "timeouts", 1000, 0);
    CHECK_STR(walk(&f, failure(GYRE_OUTCOME_TIMEOUT), 1000, buf, sizeof(buf)), "ma mb mc give up");
    forget(&f);
    start(&f, "timeouts", 1000, 0);
    CHECK_STR(walk(&f, status(503, 0), 1000, buf, sizeof(buf)), "ma give up");
    forget(&f);
    start(&f, "chain", 1000, 0);
    CHECK_STR(walk(&f, failure(GYRE_OUTCOME_CUT), 1000, buf, sizeof(buf)), "ma mb mc give up");
    teardown(&f);
}

TEST(route_next_a_call_without_a_route_never_moves_on)
{
    fixture_t f;
    setup(&f);
    gyre_candidate_t one = {1, "m", 1, NULL, 0};
    gyre_route_walk_init(&f.w, NULL, &one, 1, f.pools, 0);
    int key = gyre_route_take_key(&f.w, &f.pools[1], 1000, 0);
    CHECK_INT(key, 0);
    f.w.tries_on_cur++;
    gyre_route_outcome_t o = status(503, 0);
    gyre_route_step_t s = gyre_route_next(&f.w, &o, 1000, &f.rng);
    CHECK_INT(s.kind, GYRE_STEP_GIVE_UP);
    CHECK_INT(s.final, GYRE_FINAL_LAST_FAILURE);
    CHECK_INT(s.end_stream, 0);
    teardown(&f);
}

/* ---- breakers and resting keys ---- */

TEST(route_next_skips_a_fallback_whose_breaker_is_open)
{
    fixture_t f;
    char buf[128];
    setup(&f);
    open_breaker(&f, 1, 0, 1000);
    start(&f, "chain", 1000, 0);
    CHECK_STR(walk(&f, status(502, 0), 1000, buf, sizeof(buf)), "ma mc give up");
    teardown(&f);
}

TEST(route_next_breakers_opened_by_the_walks_own_failures_take_targets_out_of_later_walks)
{
    /* failures: 2.  Each walk fails once on each target; a's two keys take turns, so a's breakers each hold one
     * failure after two walks while b's and c's open. */
    fixture_t f;
    char buf[128];
    setup(&f);
    start(&f, "chain", 1000, 0);
    CHECK_STR(walk(&f, failure(GYRE_OUTCOME_CONNECT), 1000, buf, sizeof(buf)), "ma mb mc give up");
    start(&f, "chain", 1001, 0);
    CHECK_STR(walk(&f, failure(GYRE_OUTCOME_CONNECT), 1001, buf, sizeof(buf)), "ma mb mc give up");
    start(&f, "chain", 1002, 0);
    CHECK_STR(walk(&f, failure(GYRE_OUTCOME_CONNECT), 1002, buf, sizeof(buf)), "ma give up");
    /* Now a's first key is open too; its second holds one failure: one more walk opens it. */
    start(&f, "chain", 1003, 0);
    CHECK_STR(walk(&f, failure(GYRE_OUTCOME_CONNECT), 1003, buf, sizeof(buf)), "ma give up");
    /* Nothing is usable: gyre's own 503, back when a's first key may probe again (1000 ms from 1002), 999 ms
     * on: 1 s. */
    start(&f, "chain", 1003, 0);
    CHECK_STR(walk(&f, failure(GYRE_OUTCOME_CONNECT), 1003, buf, sizeof(buf)), "-ma 503, retry in 1 s");
    teardown(&f);
}

TEST(route_next_with_no_usable_candidate_answers_503_with_retry_after_the_soonest_return)
{
    /* a rests 10 s after a 429 on both keys, b's breaker is open for 2500 ms and c's for 5000 ms, all from
     * 1000: at 1100, the soonest is b at 3500, 2400 ms away, which is 3 whole seconds. */
    fixture_t f;
    char buf[128];
    setup(&f);
    rest_a(&f, 10000, 1000);
    open_breaker(&f, 1, 0, 1000);
    open_breaker(&f, 2, 0, 1000);
    start(&f, "chain", 1100, 0);
    CHECK_STR(walk(&f, status(502, 0), 1100, buf, sizeof(buf)), "-ma 503, retry in 3 s");
    teardown(&f);
}

TEST(route_next_a_half_open_breaker_with_its_probe_out_is_skipped_until_the_probe_succeeds)
{
    fixture_t f;
    char buf[128];
    setup(&f);
    open_breaker(&f, 1, 0, 1000);
    /* 2500 ms later b lets one probe through; a walk takes it. */
    start(&f, "chain", 3500, 0);
    CHECK_STR(walk(&f, failure(GYRE_OUTCOME_CONNECT), 3500, buf, sizeof(buf)), "ma mb mc give up");
    CHECK_INT(f.pools[1].keys[0].breaker.state, GYRE_BREAKER_OPEN); /* the probe failed: open again */
    /* A probe that is out keeps other walks off b. */
    CHECK(gyre_breaker_acquire(&f.pools[1].keys[0].breaker, &f.pools[1].conf->breaker, 6000));
    CHECK_INT(f.pools[1].keys[0].breaker.state, GYRE_BREAKER_HALF_OPEN);
    start(&f, "chain", 6000, 0);
    CHECK_STR(walk(&f, status(502, 0), 6000, buf, sizeof(buf)), "ma mc give up");
    gyre_route_outcome_t ok = {.kind = GYRE_OUTCOME_OK};
    gyre_route_record(&f.pools[1], 0, &ok, 6000);
    CHECK_INT(f.pools[1].keys[0].breaker.state, GYRE_BREAKER_CLOSED);
    start(&f, "chain", 6000, 0);
    gyre_route_step_t s = ended(&f, attempt(&f, 6000), status(502, 0), 6000);
    CHECK_INT(s.kind, GYRE_STEP_TRY);
    CHECK_INT(s.cand, 1);
    teardown(&f);
}

TEST(route_next_an_unavailable_first_target_passes_to_the_next_usable_one_whatever_fallback_on_says)
{
    fixture_t f;
    setup(&f);
    rest_a(&f, 5000, 1000);
    open_breaker(&f, 1, 0, 1000);
    start(&f, "only503", 1000, 0);
    CHECK_INT(attempt(&f, 1000), -1);
    gyre_route_outcome_t none = {.kind = GYRE_OUTCOME_UNAVAILABLE};
    gyre_route_step_t s = gyre_route_next(&f.w, &none, 1000, &f.rng);
    CHECK_INT(s.kind, GYRE_STEP_TRY);
    CHECK_INT(s.cand, 2);
    CHECK_INT(s.wait_ms, 0);
    teardown(&f);
}

TEST(route_next_an_unservable_request_tries_the_next_candidate_only_for_a_400)
{
    fixture_t f;
    setup(&f);
    open_breaker(&f, 1, 0, 1000);
    start(&f, "only503", 1000, 0);
    gyre_route_outcome_t o = {.kind = GYRE_OUTCOME_UNSERVABLE, .status = 400};
    gyre_route_step_t s = gyre_route_next(&f.w, &o, 1000, &f.rng);
    /* The next one in the plan, usable or not: its own turn finds out (and says 503 when nothing is). */
    CHECK_INT(s.kind, GYRE_STEP_TRY);
    CHECK_INT(s.cand, 1);
    o.status = 500;
    CHECK_INT(gyre_route_next(&f.w, &o, 1000, &f.rng).kind, GYRE_STEP_GIVE_UP);
    o.status = 400;
    f.w.cur = 2;
    CHECK_INT(gyre_route_next(&f.w, &o, 1000, &f.rng).kind, GYRE_STEP_GIVE_UP);
    teardown(&f);
}

/* ---- retries, backoff, the deadline ---- */

TEST(route_next_retries_the_same_target_after_a_full_jitter_backoff_then_moves_on)
{
    /* retries: 2, backoff 100 doubling: waits uniform in [0, 100] then [0, 200], drawn from the walk's random
     * state: xorshift64* from 12345 gives 57 (of 101) and 149 (of 201). */
    fixture_t f;
    setup(&f);
    start(&f, "retrying", 1000, 0);
    gyre_route_step_t s = ended(&f, attempt(&f, 1000), status(502, 0), 1000);
    CHECK_INT(s.kind, GYRE_STEP_RETRY);
    CHECK_INT(s.cand, 0);
    CHECK_INT(s.wait_ms, 57);
    s = ended(&f, attempt(&f, 1000), status(502, 0), 1000);
    CHECK_INT(s.kind, GYRE_STEP_RETRY);
    CHECK_INT(s.wait_ms, 149);
    s = ended(&f, attempt(&f, 1000), status(502, 0), 1000);
    CHECK_INT(s.kind, GYRE_STEP_TRY);
    CHECK_INT(s.cand, 1);
    CHECK_INT(s.wait_ms, 0);
    CHECK_INT(f.w.tries_on_cur, 0);
    teardown(&f);
}

TEST(route_next_a_retry_after_429_goes_at_once_on_the_targets_other_key)
{
    fixture_t f;
    setup(&f);
    start(&f, "retrying", 1000, 0);
    int key = attempt(&f, 1000);
    CHECK_INT(key, 0);
    gyre_route_step_t s = ended(&f, key, status(429, 30000), 1000);
    CHECK_INT(s.kind, GYRE_STEP_RETRY);
    CHECK_INT(s.wait_ms, 0);
    CHECK_INT(attempt(&f, 1000), 1);
    teardown(&f);
}

TEST(route_next_a_target_whose_keys_all_rest_is_retried_after_the_rest_only_when_nothing_else_is_usable)
{
    fixture_t f;
    setup(&f);
    /* b is usable: the walk moves on at once rather than wait. */
    start(&f, "retrying", 1000, 0);
    int key = attempt(&f, 1000);
    rest_a(&f, 600, 1000);
    gyre_route_step_t s = ended(&f, key, status(502, 0), 1000);
    CHECK_INT(s.kind, GYRE_STEP_TRY);
    CHECK_INT(s.cand, 1);
    /* Nothing else is: the retry waits for a's first key, 600 ms (longer than the backoff drawn). */
    open_breaker(&f, 1, 0, 1000);
    open_breaker(&f, 2, 0, 1000);
    start(&f, "retrying", 1000, 0);
    f.w.tries_on_cur = 1; /* an attempt was made on a before it rested */
    gyre_route_outcome_t o = status(502, 0);
    s = gyre_route_next(&f.w, &o, 1000, &f.rng);
    CHECK_INT(s.kind, GYRE_STEP_RETRY);
    CHECK_INT(s.wait_ms, 600);
    /* A rest longer than backoff_max_ms (1000) is not waited. */
    rest_a(&f, 3000, 1000);
    CHECK_INT(gyre_route_next(&f.w, &o, 1000, &f.rng).kind, GYRE_STEP_GIVE_UP);
    teardown(&f);
}

TEST(route_next_never_waits_past_the_deadline)
{
    fixture_t f;
    setup(&f);
    rest_a(&f, 800, 1000);
    open_breaker(&f, 1, 0, 1000);
    open_breaker(&f, 2, 0, 1000);
    gyre_route_outcome_t o = status(502, 0);
    start(&f, "deadline", 1000, 1500);
    f.w.tries_on_cur = 1;
    CHECK_INT(gyre_route_next(&f.w, &o, 1000, &f.rng).kind, GYRE_STEP_GIVE_UP); /* 800 > 500 left */
    start(&f, "deadline", 1000, 1900);
    f.w.tries_on_cur = 1;
    gyre_route_step_t s = gyre_route_next(&f.w, &o, 1000, &f.rng);
    CHECK_INT(s.kind, GYRE_STEP_RETRY); /* 800 <= 900 left */
    CHECK_INT(s.wait_ms, 800);
    teardown(&f);
}

TEST(route_next_after_the_deadline_passed_gives_up_though_targets_are_left)
{
    fixture_t f;
    setup(&f);
    start(&f, "chain", 1000, 2000);
    int key = attempt(&f, 1000);
    f.w.deadline_passed = 1;
    gyre_route_step_t s = ended(&f, key, failure(GYRE_OUTCOME_TIMEOUT), 2000);
    CHECK_INT(s.kind, GYRE_STEP_GIVE_UP);
    CHECK_INT(s.final, GYRE_FINAL_LAST_FAILURE);
    teardown(&f);
}

/* ---- after bytes reached the client ---- */

TEST(route_next_resumes_a_cut_stream_on_the_next_target_only_under_midstream_resume)
{
    fixture_t f;
    setup(&f);
    start(&f, "resuming", 1000, 0);
    gyre_route_step_t s = ended(&f, attempt(&f, 1000), cut_after_bytes(GYRE_OUTCOME_CUT, 1), 1000);
    CHECK_INT(s.kind, GYRE_STEP_RESUME);
    CHECK_INT(s.cand, 1);
    CHECK_INT(s.wait_ms, 0);
    start(&f, "chain", 1000, 0);
    s = ended(&f, attempt(&f, 1000), cut_after_bytes(GYRE_OUTCOME_CUT, 1), 1000);
    CHECK_INT(s.kind, GYRE_STEP_GIVE_UP);
    CHECK_INT(s.end_stream, 1);
    /* Not resumable (a tool call had begun, or the stream is relayed as it came): the stream ends. */
    start(&f, "resuming", 1000, 0);
    s = ended(&f, attempt(&f, 1000), cut_after_bytes(GYRE_OUTCOME_CUT, 0), 1000);
    CHECK_INT(s.kind, GYRE_STEP_GIVE_UP);
    CHECK_INT(s.end_stream, 1);
    teardown(&f);
}

TEST(route_next_a_failure_after_bytes_resumes_as_fallback_on_says_with_a_status_counted_as_a_cut)
{
    fixture_t f;
    setup(&f);
    start(&f, "resume_timeouts", 1000, 0);
    CHECK_INT(ended(&f, attempt(&f, 1000), cut_after_bytes(GYRE_OUTCOME_CUT, 1), 1000).kind, GYRE_STEP_GIVE_UP);
    start(&f, "resume_timeouts", 1000, 0);
    CHECK_INT(ended(&f, attempt(&f, 1000), cut_after_bytes(GYRE_OUTCOME_STATUS, 1), 1000).kind, GYRE_STEP_GIVE_UP);
    start(&f, "resume_timeouts", 1000, 0);
    CHECK_INT(ended(&f, attempt(&f, 1000), cut_after_bytes(GYRE_OUTCOME_TIMEOUT, 1), 1000).kind, GYRE_STEP_RESUME);
    start(&f, "resuming", 1000, 0);
    CHECK_INT(ended(&f, attempt(&f, 1000), cut_after_bytes(GYRE_OUTCOME_STATUS, 1), 1000).kind, GYRE_STEP_RESUME);
    teardown(&f);
}

TEST(route_next_a_resume_on_the_same_target_waits_its_backoff_even_after_a_429)
{
    /* A 429 lets a retry go at once only before any byte was sent; a resume after one backs off (57 ms). */
    fixture_t f;
    setup(&f);
    start(&f, "resume_retry", 1000, 0);
    gyre_route_outcome_t o = cut_after_bytes(GYRE_OUTCOME_STATUS, 1);
    o.status = 429;
    gyre_route_step_t s = ended(&f, attempt(&f, 1000), o, 1000);
    CHECK_INT(s.kind, GYRE_STEP_RESUME);
    CHECK_INT(s.cand, 0);
    CHECK_INT(s.wait_ms, 57);
    CHECK_INT(f.w.tries_on_cur, 1); /* the same target: its tries go on */
    teardown(&f);
}

/* ---- weights ---- */

TEST(route_next_walks_a_weighted_plan_in_its_drawn_order)
{
    /* The orders weights 5:3:2 draw from seed 12345 (tests/unit/route_plan.c computes them apart from gyre). */
    static const char *const want[] = {"x3 x5 x2 give up", "x5 x3 x2 give up", "x5 x2 x3 give up",
                                       "x3 x5 x2 give up", "x2 x5 x3 give up", "x2 x5 x3 give up"};
    fixture_t f;
    char buf[128];
    setup(&f);
    for (size_t i = 0; i < 6; i++) {
        start(&f, "weighted", 1000, 0);
        CHECK_STR(walk(&f, status(503, 0), 1000, buf, sizeof(buf)), want[i]);
        /* Each walk fails once per target; two failures would open the breakers (failures: 2), so they are
         * forgotten, leaving the weights alone to decide. */
        forget(&f);
    }
    teardown(&f);
}

TEST(route_next_passes_over_a_weighted_target_whose_breaker_is_open_keeping_the_drawn_order_of_the_rest)
{
    fixture_t f;
    char buf[128];
    setup(&f);
    open_breaker(&f, 0, 0, 1000);
    open_breaker(&f, 0, 1, 1000);
    start(&f, "weighted", 1000, 0); /* draws x3 x5 x2 */
    CHECK_STR(walk(&f, status(503, 0), 1000, buf, sizeof(buf)), "x3 x2 give up");
    teardown(&f);
}

/* ---- the accounting and the key ---- */

TEST(route_record_counts_a_client_error_as_the_providers_success_and_a_5xx_as_a_failure)
{
    fixture_t f;
    setup(&f);
    gyre_keypool_t *b = &f.pools[1];
    gyre_route_outcome_t client = status(404, 0), server = status(500, 0);
    for (int i = 0; i < 4; i++) {
        CHECK_INT(gyre_keypool_pick(b, 1000, 0, -1), 0);
        gyre_route_record(b, 0, &client, 1000);
    }
    CHECK_INT(b->keys[0].breaker.state, GYRE_BREAKER_CLOSED);
    for (int i = 0; i < 2; i++) {
        CHECK_INT(gyre_keypool_pick(b, 1000, 0, -1), 0);
        gyre_route_record(b, 0, &server, 1000);
    }
    CHECK_INT(b->keys[0].breaker.state, GYRE_BREAKER_OPEN);
    teardown(&f);
}

TEST(route_record_a_404_after_bytes_were_sent_is_a_failure)
{
    fixture_t f;
    setup(&f);
    gyre_keypool_t *b = &f.pools[1];
    gyre_route_outcome_t o = cut_after_bytes(GYRE_OUTCOME_STATUS, 0);
    o.status = 404;
    for (int i = 0; i < 2; i++) {
        CHECK_INT(gyre_keypool_pick(b, 1000, 0, -1), 0);
        gyre_route_record(b, 0, &o, 1000);
    }
    CHECK_INT(b->keys[0].breaker.state, GYRE_BREAKER_OPEN);
    teardown(&f);
}

TEST(route_record_rests_a_key_after_429_for_its_retry_after_or_one_second)
{
    fixture_t f;
    setup(&f);
    gyre_route_outcome_t with = status(429, 5000), without = status(529, 0);
    gyre_route_record(&f.pools[0], 0, &with, 1000);
    gyre_route_record(&f.pools[0], 1, &without, 1000);
    CHECK_INT(f.pools[0].keys[0].cooldown_until_ms, 6000);
    CHECK_INT(f.pools[0].keys[1].cooldown_until_ms, 2000);
    teardown(&f);
}

TEST(route_take_key_a_retry_of_the_same_target_avoids_the_key_that_just_failed)
{
    fixture_t f;
    setup(&f);
    start(&f, "retrying", 1000, 0);
    /* Round robin would give key 1 then key 0; the retry after key 1's failure must not take it again. */
    f.pools[0].next = 1;
    int key = attempt(&f, 1000);
    CHECK_INT(key, 1);
    gyre_route_step_t s = ended(&f, key, status(500, 0), 1000);
    CHECK_INT(s.kind, GYRE_STEP_RETRY);
    f.pools[0].next = 1; /* the scan would start at the failed key again */
    CHECK_INT(attempt(&f, 1000), 0);
    /* A new candidate starts with no key to avoid. */
    gyre_route_walk_init(&f.w, f.w.route, f.cands, f.ncands, f.pools, 0);
    f.pools[0].next = 1;
    CHECK_INT(attempt(&f, 1000), 1);
    teardown(&f);
}
