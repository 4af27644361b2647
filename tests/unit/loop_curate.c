/*
 * Curation (src/loop/curate.c) over a real store filled here: the source's
 * checks, the filter, dedup keeping the best, balance with exact counts,
 * the held-out split by session and stratified by cluster, preference
 * pairs, `unit: session`, and the same result twice.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rand.h"
#include "loop/curate.h"
#include "test.h"

#define TS(s) ((gyre_tstr_t){(char *)(s), strlen(s)})

/* A store being filled: the traces and the strings they point at, kept until written. */
typedef struct fill {
    gyre_store_t *s;
    gyre_trace_t *t;
    char **owned;
    size_t n, nowned;
    gyre_cluster_assign_t *assign;
    size_t nassign;
} fill_t;

static char *keep(fill_t *f, char *p)
{
    f->owned = realloc(f->owned, (f->nowned + 1) * sizeof(*f->owned));
    f->owned[f->nowned++] = p;
    return p;
}

static fill_t fill_open(void)
{
    fill_t f;
    memset(&f, 0, sizeof(f));
    char err[256];
    if (gyre_store_open("sqlite::memory:", GYRE_STORE_OPEN_WRITE, &f.s, err, sizeof(err)) != 0) {
        fprintf(stderr, "  store: %s\n", err);
        abort();
    }
    return f;
}

/* Adds one call: `task` as the user's message, `answer` as the reply; returns its index (its trace id is the
 * index in hex, so ids sort as they were added).  cluster >= 0 goes into the stored clustering run. */
static size_t add_call(fill_t *f, const char *session, const char *route, const char *task, const char *answer,
                       int cluster)
{
    f->t = realloc(f->t, (f->n + 1) * sizeof(*f->t));
    gyre_trace_t *t = &f->t[f->n];
    memset(t, 0, sizeof(*t));
    snprintf(t->trace_id, sizeof(t->trace_id), "%032zx", f->n + 1);
    snprintf(t->span_id, sizeof(t->span_id), "%016zx", f->n + 1);
    t->started_us = 1000000 + (int64_t)f->n * 1000;
    t->ended_us = t->started_us + 500;
    t->ttft_us = -1;
    t->endpoint = TS("/v1/chat/completions");
    t->provider = TS("openai");
    t->model = TS("gpt-4o");
    t->route = TS(route);
    t->status = 200;
    t->session = TS(session);
    t->agent = TS("helper");
    t->prompt_tokens = t->completion_tokens = t->cached_tokens = t->reasoning_tokens = -1;
    t->cost_usd = 0.001;
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    gyre_buf_appends(&b, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":\"You help.\"},"
                         "{\"role\":\"user\",\"content\":");
    gyre_buf_append_json_string(&b, task, strlen(task));
    gyre_buf_appends(&b, "}]}");
    char *req = keep(f, strdup(b.base));
    gyre_buf_reset(&b);
    gyre_buf_appends(&b, "{\"id\":\"x\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":"
                         "{\"role\":\"assistant\",\"content\":");
    gyre_buf_append_json_string(&b, answer, strlen(answer));
    gyre_buf_appends(&b, "},\"finish_reason\":\"stop\"}]}");
    char *resp = keep(f, strdup(b.base));
    gyre_buf_dispose(&b);
    t->request_body = TS(req);
    t->response_body = TS(resp);
    if (cluster >= 0) {
        f->assign = realloc(f->assign, (f->nassign + 1) * sizeof(*f->assign));
        f->assign[f->nassign++] = (gyre_cluster_assign_t){NULL, cluster};
        f->assign[f->nassign - 1].trace_id = (const char *)(uintptr_t)(f->n + 1); /* resolved in fill_write */
    }
    return f->n++;
}

static const char *id_of(const fill_t *f, size_t i)
{
    return f->t[i].trace_id;
}

static void add_score(fill_t *f, size_t i, const char *name, int source, double value, const char *correction)
{
    char err[256];
    gyre_score_t sc = {f->t[i].trace_id, f->t[i].session.p, name, source, "1", value, NULL, NULL, correction,
                       10 + (int64_t)i,  f->t[i].started_us};
    if (gyre_store_write_scores(f->s, &sc, 1, err, sizeof(err)) != 0) {
        fprintf(stderr, "  scores: %s\n", err);
        abort();
    }
}

static void fill_write(fill_t *f)
{
    char err[256];
    const gyre_trace_t **all = malloc((f->n ? f->n : 1) * sizeof(*all));
    for (size_t i = 0; i < f->n; i++)
        all[i] = &f->t[i];
    if (gyre_store_write_batch(f->s, all, f->n, err, sizeof(err)) != 0) {
        fprintf(stderr, "  write: %s\n", err);
        abort();
    }
    free(all);
    if (f->nassign > 0) {
        for (size_t i = 0; i < f->nassign; i++)
            f->assign[i].trace_id = f->t[(uintptr_t)f->assign[i].trace_id - 1].trace_id;
        if (gyre_store_put_cluster_run(f->s, "r1", 1, "{\"clusters\":[{\"id\":0,\"name\":\"refunds\"}]}", 40, f->assign,
                                       f->nassign, err, sizeof(err)) != 0) {
            fprintf(stderr, "  clusters: %s\n", err);
            abort();
        }
    }
}

static void fill_close(fill_t *f)
{
    gyre_store_close(f->s);
    for (size_t i = 0; i < f->nowned; i++)
        free(f->owned[i]);
    free(f->owned);
    free(f->t);
    free(f->assign);
}

/* A distinct text of `words` words drawn from a vocabulary by `seed`. */
static char *text_of(uint64_t seed, int words)
{
    static const char *const vocab[] = {
        "refund", "order",    "invoice", "parcel",  "broken",    "login",    "password", "reset",  "deploy",
        "server", "report",   "summary", "meeting", "translate", "contract", "clause",   "export", "upload",
        "query",  "cache",    "please",  "help",    "check",     "why",      "when",     "need",   "want",
        "today",  "again",    "quickly", "the",     "my",        "blue",     "green",    "window", "garden",
        "river",  "mountain", "coffee",  "train",   "ticket",    "music",    "paint",
    };
    size_t nv = sizeof(vocab) / sizeof(vocab[0]);
    uint64_t st = seed * 0x9e3779b97f4a7c15ULL + 1;
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 16);
    for (int i = 0; i < words; i++) {
        gyre_buf_appends(&b, vocab[gyre_rand_next(&st) % nv]);
        gyre_buf_appends(&b, (i + 1) % 10 == 0 ? ". " : " ");
    }
    char *s = strdup(b.base);
    gyre_buf_dispose(&b);
    return s;
}

static gyre_curate_spec_t *spec_of(const char *yaml)
{
    char err[512];
    gyre_curate_spec_t *s =
        gyre_curate_spec_parse(yaml, strlen(yaml), "test.yaml", 2000000000000000LL, err, sizeof(err));
    if (s == NULL) {
        fprintf(stderr, "  spec: %s\n", err);
        abort();
    }
    return s;
}

static gyre_curation_t *run(fill_t *f, const char *yaml)
{
    gyre_curate_spec_t *spec = spec_of(yaml);
    gyre_curation_t *c = NULL;
    char err[512] = "";
    int rc = gyre_curate_run(f->s, spec, NULL, &c, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "  curate: %d %s\n", rc, err);
        abort();
    }
    gyre_curate_spec_free(spec);
    return c;
}

static const gyre_curate_cluster_count_t *cluster_count(const gyre_curation_t *c, int32_t id)
{
    for (size_t i = 0; i < c->nclusters; i++)
        if (c->clusters[i].cluster == id)
            return &c->clusters[i];
    return NULL;
}

static int has_item(const gyre_curation_t *c, const char *id, gyre_curate_role_t role)
{
    for (size_t i = 0; i < c->nitems; i++)
        if (c->items[i].role == role && strcmp(c->items[i].trace_id, id) == 0)
            return 1;
    return 0;
}

TEST(curate_source_routes_and_the_filter_choose_the_examples)
{
    fill_t f = fill_open();
    size_t a = add_call(&f, "s1", "support", "How do I reset my password on the new portal today", "Click reset.", 0);
    size_t b =
        add_call(&f, "s2", "support", "Translate this contract clause into German for the legal team", "Done.", 0);
    size_t c2 =
        add_call(&f, "s3", "billing", "Why was my card charged twice for the same invoice this month", "Refunded.", 0);
    size_t d =
        add_call(&f, "s4", "support", "Summarise the meeting notes from Monday about the server migration", "Ok.", 0);
    fill_write(&f);
    add_score(&f, a, "correctness", GYRE_SCORE_JUDGE, 0.9, NULL);
    add_score(&f, b, "correctness", GYRE_SCORE_JUDGE, 0.5, NULL);
    add_score(&f, c2, "correctness", GYRE_SCORE_JUDGE, 0.95, NULL);
    add_score(&f, d, "correctness", GYRE_SCORE_JUDGE, 0.85, NULL);
    add_score(&f, d, "refusal", GYRE_SCORE_HEURISTIC, 0, NULL);
    gyre_curation_t *c = run(&f, "source: {routes: [support]}\nclusters: stored\n"
                                 "filter: judge.correctness >= 0.8 and not heuristic.refusal == 0\n");
    CHECK_INT(c->in_source, 3);
    CHECK_INT(c->passed, 1);
    CHECK_INT(c->nsft, 1);
    CHECK_INT(c->npairs, 0);
    CHECK_STR(c->items[0].trace_id, id_of(&f, a));
    CHECK_STR(c->items[0].session, "s1");
    CHECK_INT(c->items[0].cluster, 0);
    CHECK_INT(c->items[0].split, GYRE_CURATE_TRAIN);
    CHECK_INT(c->nclusters, 1);
    CHECK_STR(c->clusters[0].name, "refunds");
    CHECK_INT(c->clusters[0].scanned, 3);
    CHECK_INT(c->clusters[0].passed, 1);
    CHECK_INT(c->clusters[0].selected, 1);
    /* The score distribution of the one selected example. */
    CHECK_INT(c->nscores, 1);
    CHECK_STR(c->scores[0].name, "judge.correctness");
    CHECK_INT(c->scores[0].n, 1);
    CHECK(fabs(c->scores[0].mean - 0.9) < 1e-6);
    CHECK_INT(c->scores[0].hist[0], 1);
    gyre_curation_free(c);
    fill_close(&f);
}

/* The decisions as one line per example: "ID cluster dup_of passed selected split;" with ids as their index. */
static void decision_cb(void *ctx, const gyre_curate_decision_t *d)
{
    gyre_buf_t *b = ctx;
    gyre_buf_appendf(b, "%d %d %d %d %d %d;", (int)strtol(d->trace_id + 16, NULL, 16) - 1, (int)d->cluster,
                     d->dup_of != NULL ? (int)strtol(d->dup_of + 16, NULL, 16) - 1 : -1, d->passed, d->selected,
                     (int)d->split);
}

TEST(curate_dedup_keeps_the_best_scored_member_of_each_near_duplicate_group)
{
    fill_t f = fill_open();
    const char *base = "Please check why the nightly export of the invoices to the data warehouse failed again. "
                       "The job log shows a timeout after the upload step. Order 4411 is missing from the report.";
    const char *edit = "Please check why the nightly export of the invoices to the data warehouse failed again. "
                       "The job log shows a timeout after the upload step. Order 9921 is missing from the report!";
    const char *reorder = "The job log shows a timeout after the upload step. Please check why the nightly export of "
                          "the invoices to the data warehouse failed again. Order 17 is missing from the report.";
    size_t x = add_call(&f, "a", "r", base, "First answer.", 0);
    size_t y = add_call(&f, "b", "r", edit, "Second answer.", 0);
    size_t z = add_call(&f, "c", "r", reorder, "Third answer.", 0);
    char *other = text_of(77, 40);
    size_t w = add_call(&f, "d", "r", other, "Other.", 0);
    fill_write(&f);
    add_score(&f, x, "correctness", GYRE_SCORE_JUDGE, 0.6, NULL);
    add_score(&f, y, "correctness", GYRE_SCORE_JUDGE, 0.9, NULL);
    add_score(&f, z, "correctness", GYRE_SCORE_JUDGE, 0.7, NULL);
    gyre_curation_t *c = run(&f, "clusters: stored\ndedup: {threshold: 0.8, keep: judge.correctness}\n");
    CHECK_INT(c->passed, 4);
    CHECK_INT(c->deduped, 2);
    CHECK_INT(c->nsft, 2);
    CHECK(has_item(c, id_of(&f, y), GYRE_CURATE_SFT));
    CHECK(has_item(c, id_of(&f, w), GYRE_CURATE_SFT));
    CHECK_INT(c->ndups, 1);
    CHECK_STR(c->dups[0].kept, id_of(&f, y));
    CHECK_INT(c->dups[0].ndropped, 2);
    CHECK_STR(c->dups[0].dropped[0], id_of(&f, x));
    CHECK_STR(c->dups[0].dropped[1], id_of(&f, z));
    gyre_curation_free(c);
    /* The decision hook says it per example, in the scan's order: 0 and 2 dropped for 1. */
    gyre_curate_spec_t *spec = spec_of("clusters: stored\ndedup: {threshold: 0.8, keep: judge.correctness}\n");
    gyre_buf_t b;
    gyre_buf_init(&b, 4096);
    gyre_curate_hooks_t hooks = {.decision_cb = decision_cb, .decision_ctx = &b};
    char err[256];
    CHECK_INT(gyre_curate_run(f.s, spec, &hooks, &c, err, sizeof(err)), 0);
    CHECK_STR(b.base, "0 0 1 1 0 0;1 0 -1 1 1 0;2 0 1 1 0 0;3 0 -1 1 1 0;");
    gyre_buf_dispose(&b);
    gyre_curate_spec_free(spec);
    gyre_curation_free(c);
    /* dedup: off keeps all four. */
    c = run(&f, "clusters: stored\ndedup: off\n");
    CHECK_INT(c->nsft, 4);
    CHECK_INT(c->ndups, 0);
    gyre_curation_free(c);
    free(other);
    fill_close(&f);
}

/* Three clusters of 50, 20 and 5 distinct examples, one session each. */
static void fill_clusters(fill_t *f, int sessions_of_two)
{
    static const int sizes[3] = {50, 20, 5};
    char sess[32];
    for (int cl = 0, k = 0; cl < 3; cl++)
        for (int i = 0; i < sizes[cl]; i++, k++) {
            char *t = keep(f, text_of((uint64_t)k + 1000, 30));
            snprintf(sess, sizeof(sess), "c%d-s%d", cl, sessions_of_two ? i / 2 : i);
            add_call(f, keep(f, strdup(sess)), "r", t, "An answer.", cl);
        }
    fill_write(f);
}

TEST(curate_balance_caps_and_floors_each_cluster_exactly)
{
    fill_t f = fill_open();
    fill_clusters(&f, 0);
    /* Target 30, cap 15, floor 8: shares proportional to 50:20:5 clipped to [8,15], [8,15], [5,5] = 15, 10, 5. */
    gyre_curation_t *c = run(&f, "clusters: stored\nbalance: {cap: 15, floor: 8}\ntarget_size: 30\n");
    CHECK_INT(c->nsft, 30);
    CHECK_INT(cluster_count(c, 0)->selected, 15);
    CHECK_INT(cluster_count(c, 1)->selected, 10);
    CHECK_INT(cluster_count(c, 2)->selected, 5);
    CHECK_INT(cluster_count(c, 0)->scanned, 50);
    gyre_curation_free(c);
    /* No target: every cluster up to its cap. */
    c = run(&f, "clusters: stored\nbalance: {cap: 15, floor: 8}\n");
    CHECK_INT(cluster_count(c, 0)->selected, 15);
    CHECK_INT(cluster_count(c, 1)->selected, 15);
    CHECK_INT(cluster_count(c, 2)->selected, 5);
    gyre_curation_free(c);
    /* Floors win over a target they add up past. */
    c = run(&f, "clusters: stored\nbalance: {cap: 15, floor: 8}\ntarget_size: 10\n");
    CHECK_INT(cluster_count(c, 0)->selected, 8);
    CHECK_INT(cluster_count(c, 1)->selected, 8);
    CHECK_INT(cluster_count(c, 2)->selected, 5);
    gyre_curation_free(c);
    /* Without balance, a target takes the first of the seeded order whatever the cluster. */
    c = run(&f, "clusters: stored\ntarget_size: 30\n");
    CHECK_INT(c->nsft, 30);
    gyre_curation_free(c);
    /* longest_n: the N longest. */
    c = run(&f, "clusters: stored\nselection: {longest_n: 7}\n");
    CHECK_INT(c->nsft, 7);
    gyre_curation_free(c);
    fill_close(&f);
}

TEST(curate_heldout_splits_whole_sessions_and_is_stratified_by_cluster)
{
    fill_t f = fill_open();
    fill_clusters(&f, 1);
    gyre_curation_t *c = run(&f, "clusters: stored\nheldout: 0.2\nseed: 9\n");
    CHECK_INT(c->nsft, 75);
    /* round(0.2 * 50) = 10 and round(0.2 * 20) = 4 in sessions of two; round(0.2 * 5) = 1 from sessions of 2,2,1. */
    CHECK_INT(cluster_count(c, 0)->heldout, 10);
    CHECK_INT(cluster_count(c, 1)->heldout, 4);
    CHECK(cluster_count(c, 2)->heldout >= 1 && cluster_count(c, 2)->heldout <= 2);
    for (size_t i = 0; i < c->nitems; i++)
        for (size_t j = 0; j < c->nitems; j++)
            if (strcmp(c->items[i].session, c->items[j].session) == 0 && c->items[i].split != c->items[j].split) {
                fprintf(stderr, "  session %s on both sides\n", c->items[i].session);
                CHECK(0);
            }
    gyre_curation_free(c);
    fill_close(&f);
}

static int curations_equal(const gyre_curation_t *a, const gyre_curation_t *b)
{
    if (a->nitems != b->nitems || a->nclusters != b->nclusters || a->ndups != b->ndups || a->nscores != b->nscores ||
        strcmp(a->spec_canonical, b->spec_canonical) != 0)
        return 0;
    for (size_t i = 0; i < a->nitems; i++) {
        const gyre_curate_item_t *x = &a->items[i], *y = &b->items[i];
        if (strcmp(x->trace_id, y->trace_id) != 0 || strcmp(x->rejected_id, y->rejected_id) != 0 ||
            strcmp(x->session, y->session) != 0 || x->cluster != y->cluster || x->split != y->split ||
            x->role != y->role || x->use_correction != y->use_correction)
            return 0;
    }
    for (size_t i = 0; i < a->nclusters; i++)
        if (memcmp(&a->clusters[i].scanned, &b->clusters[i].scanned, 5 * sizeof(uint64_t)) != 0 ||
            a->clusters[i].cluster != b->clusters[i].cluster)
            return 0;
    return 1;
}

TEST(curate_the_same_spec_on_the_same_store_gives_the_same_result_twice)
{
    fill_t f = fill_open();
    for (int i = 0; i < 60; i++) {
        char *t = keep(&f, text_of((uint64_t)(i % 45) + 5, 35)); /* 15 exact repeats: dedup has work */
        char sess[16];
        snprintf(sess, sizeof(sess), "s%d", i / 3);
        add_call(&f, keep(&f, strdup(sess)), "r", t, "Answer.", -1);
    }
    fill_write(&f);
    for (size_t i = 0; i < 60; i += 2)
        add_score(&f, i, "correctness", GYRE_SCORE_JUDGE, (double)(i % 7) / 7.0, NULL);
    const char *spec = "clusters: {k: 3}\nheldout: 0.25\nbalance: {cap: 12, floor: 2}\ntarget_size: 25\nseed: 5\n"
                       "formats: [openai, preference]\npreference: {score: judge.correctness, margin: 0.1}\n";
    gyre_curation_t *a = run(&f, spec), *b = run(&f, spec);
    CHECK(curations_equal(a, b));
    CHECK(a->nsft > 0 && a->nsft <= 25);
    CHECK(a->ndups > 0);
    /* Items are sorted: SFT first, then by trace id. */
    for (size_t i = 1; i < a->nitems; i++)
        CHECK(a->items[i - 1].role < a->items[i].role || (a->items[i - 1].role == a->items[i].role &&
                                                          strcmp(a->items[i - 1].trace_id, a->items[i].trace_id) <= 0));
    gyre_curation_free(a);
    gyre_curation_free(b);
    /* Another seed, another held-out set. */
    a = run(&f, spec);
    gyre_curation_t *c = run(&f, "clusters: {k: 3}\nheldout: 0.25\nbalance: {cap: 12, floor: 2}\ntarget_size: 25\n"
                                 "seed: 6\nformats: [openai, preference]\n"
                                 "preference: {score: judge.correctness, margin: 0.1}\n");
    CHECK(!curations_equal(a, c));
    gyre_curation_free(a);
    gyre_curation_free(c);
    fill_close(&f);
}

TEST(curate_preference_pairs_come_from_corrections_and_score_contrasts)
{
    fill_t f = fill_open();
    const char *task = "Write the release announcement for the new billing page and mention the faster search. "
                       "Keep it under one hundred words and friendly.";
    size_t good = add_call(&f, "a", "r", task, "A good announcement.", 0);
    size_t bad = add_call(&f, "b", "r", task, "A poor announcement.", 0);
    char *other = text_of(3, 30);
    size_t corrected = add_call(&f, "c", "r", other, "Wrong.", 0);
    fill_write(&f);
    add_score(&f, good, "correctness", GYRE_SCORE_JUDGE, 0.9, NULL);
    add_score(&f, bad, "correctness", GYRE_SCORE_JUDGE, 0.3, NULL);
    add_score(&f, corrected, "thumbs", GYRE_SCORE_HUMAN, 0, "The right answer.");
    gyre_curation_t *c = run(&f, "clusters: stored\ncorrections: true\nformats: [openai, preference]\n"
                                 "preference: {score: judge.correctness, margin: 0.5}\n"
                                 "dedup: {keep: judge.correctness}\n");
    CHECK_INT(c->nsft, 2);
    CHECK_INT(c->npairs, 2);
    const gyre_curate_item_t *p0 = &c->items[c->nsft], *p1 = &c->items[c->nsft + 1];
    CHECK_STR(p0->trace_id, id_of(&f, good));
    CHECK_STR(p0->rejected_id, id_of(&f, bad));
    CHECK_INT(p0->use_correction, 0);
    CHECK_STR(p1->trace_id, id_of(&f, corrected));
    CHECK_STR(p1->rejected_id, "");
    CHECK_INT(p1->use_correction, 1);
    /* The corrected SFT example has its answer replaced. */
    for (size_t i = 0; i < c->nsft; i++)
        CHECK_INT(c->items[i].use_correction, strcmp(c->items[i].trace_id, id_of(&f, corrected)) == 0);
    gyre_curation_free(c);
    /* A margin wider than the contrast makes no pair from it. */
    c = run(&f, "clusters: stored\nformats: [preference]\npreference: {score: judge.correctness, margin: 0.7}\n");
    CHECK_INT(c->npairs, 1);
    gyre_curation_free(c);
    free(other);
    fill_close(&f);
}

TEST(curate_unit_session_takes_each_sessions_last_call)
{
    fill_t f = fill_open();
    add_call(&f, "s1", "r", "first step of the plan for the garden party", "a", 0);
    size_t last1 = add_call(&f, "s1", "r", "second step of the plan with the music and the tickets", "b", 0);
    size_t only2 = add_call(&f, "s2", "r", "a lone question about the river trail near the mountain", "c", 0);
    fill_write(&f);
    gyre_curation_t *c = run(&f, "clusters: stored\nunit: session\n");
    CHECK_INT(c->nsft, 2);
    CHECK_STR(c->items[0].trace_id, id_of(&f, last1));
    CHECK_STR(c->items[1].trace_id, id_of(&f, only2));
    CHECK_INT(c->in_source, 2);
    gyre_curation_free(c);
    fill_close(&f);
}

TEST(curate_stored_clusters_without_a_run_is_an_error_naming_the_field)
{
    fill_t f = fill_open();
    add_call(&f, "s1", "r", "a question", "an answer", -1);
    fill_write(&f);
    gyre_curate_spec_t *spec = spec_of("clusters: stored\n");
    gyre_curation_t *c = NULL;
    char err[512] = "";
    CHECK_INT(gyre_curate_run(f.s, spec, NULL, &c, err, sizeof(err)), -EINVAL);
    CHECK_STR(err,
              "clusters: stored: the store has no clustering run (run `gyre clusters` first, or use clusters: auto)");
    CHECK(c == NULL);
    gyre_curate_spec_free(spec);
    fill_close(&f);
}

static void progress_cb(void *ctx, gyre_curate_phase_t phase, uint64_t done, uint64_t total)
{
    unsigned *seen = ctx;
    if (done == total)
        *seen |= 1u << phase;
}

TEST(curate_reports_the_end_of_each_phase_and_times_them)
{
    fill_t f = fill_open();
    fill_clusters(&f, 0);
    gyre_curate_spec_t *spec = spec_of("target_size: 10\n");
    gyre_curation_t *c = NULL;
    char err[512] = "";
    unsigned seen = 0;
    gyre_curate_hooks_t hooks = {.progress_cb = progress_cb, .ctx = &seen};
    CHECK_INT(gyre_curate_run(f.s, spec, &hooks, &c, err, sizeof(err)), 0);
    CHECK_INT(seen, (1u << GYRE_CURATE_PHASE_SCAN) | (1u << GYRE_CURATE_PHASE_DEDUP) |
                        (1u << GYRE_CURATE_PHASE_CLUSTER) | (1u << GYRE_CURATE_PHASE_SELECT));
    for (int p = 0; p < GYRE_CURATE_PHASES; p++)
        CHECK(c->phase_ms[p] >= 0);
    CHECK_INT(c->nsft, 10);
    CHECK_STR(c->spec_canonical, spec->canonical);
    gyre_curation_free(c);
    gyre_curate_spec_free(spec);
    fill_close(&f);
}
