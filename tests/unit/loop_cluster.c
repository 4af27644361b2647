/*
 * The clusterer (src/loop/cluster.h, featurize.h, kmeans.h) against planted
 * ground truth: texts generated here from a few task families, each with a
 * vocabulary of its own, over words every family shares.
 */
#include "loop/cluster.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/rand.h"
#include "loop/featurize.h"
#include "loop/kmeans.h"
#include "test.h"

#define NFAM 5

/* Each family: three signature words in every one of its texts, then words drawn from its pool. */
static const char *const signature[NFAM][3] = {
    {"invoice", "refund", "charge"},
    {"flight", "booking", "airport"},
    {"python", "script", "traceback"},
    {"recipe", "oven", "flour"},
    {"lease", "tenant", "landlord"},
};
static const char *const pool[NFAM][12] = {
    {"billing", "payment", "card", "account", "statement", "amount", "receipt", "subscription", "overdue", "credit",
     "bank", "transaction"},
    {"departure", "arrival", "gate", "luggage", "passport", "seat", "itinerary", "layover", "terminal", "visa",
     "hotel", "delay"},
    {"exception", "variable", "loop", "module", "import", "stack", "debug", "compile", "syntax", "class", "string",
     "array"},
    {"bake", "sugar", "butter", "dough", "minutes", "whisk", "eggs", "vanilla", "knead", "yeast", "grams", "pan"},
    {"rent", "deposit", "contract", "property", "eviction", "notice", "repairs", "apartment", "clause", "utilities",
     "signature", "renewal"},
};
/* Words of every family: the glue of a request. */
static const char *const shared[] = {"please", "help", "me", "with", "this", "need", "could", "you", "explain",
                                     "the", "my", "question", "about", "thanks", "today", "quickly", "again",
                                     "problem", "issue", "detail"};
#define NSHARED (sizeof(shared) / sizeof(shared[0]))

static size_t pick(uint64_t *st, size_t n)
{
    return (size_t)(gyre_rand_next(st) % n);
}

/* One planted text of family f: "user: " then 30 words, a third from the family's pool, the rest shared, and the
 * three signature words at random places. */
static void gen_text(uint64_t *st, int f, char *out, size_t cap)
{
    size_t len = (size_t)snprintf(out, cap, "user:");
    size_t sig_at[3] = {pick(st, 30), pick(st, 30), pick(st, 30)};
    for (size_t w = 0; w < 30; w++) {
        const char *word = pick(st, 3) == 0 ? pool[f][pick(st, 12)] : shared[pick(st, NSHARED)];
        len += (size_t)snprintf(out + len, cap - len, " %s", word);
        for (int s = 0; s < 3; s++)
            if (sig_at[s] == w)
                len += (size_t)snprintf(out + len, cap - len, " %s", signature[f][s]);
    }
}

typedef struct planted {
    size_t n;
    int32_t *family;
    gyre_cluster_result_t *res;
} planted_t;

/* n texts, families in a seeded random order, `sessions` distinct sessions per family (0: one per text);
 * clustered with opts. */
static planted_t run_planted(size_t n, uint64_t seed, unsigned sessions, const gyre_cluster_opts_t *opts)
{
    planted_t p = {n, gyre_malloc(n * sizeof(int32_t)), NULL};
    uint64_t st = seed;
    gyre_clusterer_t *c = gyre_clusterer_new(opts);
    char text[2048], sess[32];
    for (size_t i = 0; i < n; i++) {
        int f = (int)pick(&st, NFAM);
        p.family[i] = f;
        gen_text(&st, f, text, sizeof(text));
        gyre_example_t ex = {0};
        snprintf(ex.trace_id, sizeof(ex.trace_id), "%032zx", i + 1);
        if (sessions != 0) {
            snprintf(sess, sizeof(sess), "s-%d-%zu", f, pick(&st, sessions));
            ex.session = sess;
        }
        ex.started_us = 1000000 + (int64_t)i;
        ex.status = 200;
        ex.cost_usd = 0.001;
        ex.task_text = text;
        CHECK_INT(gyre_clusterer_add(c, &ex), 0);
    }
    char err[256] = "";
    CHECK_INT(gyre_clusterer_finish(c, &p.res, err, sizeof(err)), 0);
    CHECK_STR(err, "");
    gyre_clusterer_free(c);
    return p;
}

static void planted_free(planted_t *p)
{
    free(p->family);
    gyre_cluster_result_free(p->res);
}

TEST(cluster_ari_is_one_for_identical_partitions_and_invariant_to_label_names)
{
    int32_t a[] = {0, 0, 1, 1, 2, 2}, b[] = {7, 7, 3, 3, 9, 9};
    CHECK(fabs(gyre_cluster_ari(a, b, 6) - 1.0) < 1e-12);
}

TEST(cluster_ari_matches_a_hand_computed_value)
{
    /* Contingency [[2,1],[0,3]]: sum C(nij,2) = 1+0+0+3 = 4; rows C(3,2)+C(3,2) = 6; columns C(2,2)+C(4,2) = 7;
     * expected 6*7/C(6,2) = 2.8; ARI = (4-2.8)/(6.5-2.8) = 0.324324... */
    int32_t a[] = {0, 0, 0, 1, 1, 1}, b[] = {0, 0, 1, 1, 1, 1};
    CHECK(fabs(gyre_cluster_ari(a, b, 6) - 1.2 / 3.7) < 1e-12);
}

TEST(cluster_planted_task_families_are_recovered_with_ari_at_least_0_8)
{
    gyre_cluster_opts_t o = {.seed = 3};
    planted_t p = run_planted(2000, 42, 0, &o);
    double ari = gyre_cluster_ari(p.res->cluster, p.family, p.n);
    if (ari < 0.8)
        fprintf(stderr, "  ARI %.3f with k %zu\n", ari, p.res->nleaves);
    CHECK(ari >= 0.8);
    planted_free(&p);
}

TEST(cluster_auto_k_picks_the_planted_number_of_families_within_one)
{
    gyre_cluster_opts_t o = {.seed = 9};
    planted_t p = run_planted(1500, 7, 0, &o);
    CHECK_INT(p.res->k_auto, 1);
    CHECK(p.res->nleaves >= NFAM - 1 && p.res->nleaves <= NFAM + 1);
    if (!(p.res->nleaves >= NFAM - 1 && p.res->nleaves <= NFAM + 1))
        fprintf(stderr, "  k %zu, silhouette %.3f\n", p.res->nleaves, p.res->silhouette);
    planted_free(&p);
}

TEST(cluster_given_k_is_used_and_every_example_has_a_leaf_and_its_parent)
{
    gyre_cluster_opts_t o = {.k = 5, .seed = 2};
    planted_t p = run_planted(600, 11, 0, &o);
    CHECK_INT(p.res->k_auto, 0);
    CHECK_INT(p.res->nleaves, 5);
    CHECK_INT(p.res->nclusters, 5 + 2); /* round(sqrt(5)) parents */
    size_t bad = 0;
    for (size_t i = 0; i < p.n; i++)
        if (p.res->cluster[i] < 0 || p.res->cluster[i] >= 5 ||
            p.res->parent[i] != p.res->clusters[p.res->cluster[i]].parent)
            bad++;
    CHECK_INT(bad, 0);
    uint64_t total = 0;
    for (size_t j = 0; j < p.res->nleaves; j++)
        total += p.res->clusters[j].volume;
    CHECK_INT(total, 600);
    planted_free(&p);
}

TEST(cluster_names_each_family_by_its_signature_words)
{
    gyre_cluster_opts_t o = {.k = 5, .seed = 4};
    planted_t p = run_planted(1000, 5, 0, &o);
    int named[NFAM] = {0};
    for (size_t j = 0; j < p.res->nleaves; j++) {
        /* The leaf's family: the family of most of its examples. */
        size_t cnt[NFAM] = {0}, best = 0;
        for (size_t i = 0; i < p.n; i++)
            if (p.res->cluster[i] == (int32_t)j)
                cnt[p.family[i]]++;
        for (int f = 1; f < NFAM; f++)
            if (cnt[f] > cnt[best])
                best = (size_t)f;
        /* Its three signature words are in every one of its texts and in no other family's: the three most
         * distinctive terms, tied, so in alphabetical order. */
        const char *sorted[3] = {signature[best][0], signature[best][1], signature[best][2]};
        for (int a = 0; a < 3; a++)
            for (int b = a + 1; b < 3; b++)
                if (strcmp(sorted[a], sorted[b]) > 0) {
                    const char *t = sorted[a];
                    sorted[a] = sorted[b];
                    sorted[b] = t;
                }
        char want[128];
        snprintf(want, sizeof(want), "%s, %s, %s", sorted[0], sorted[1], sorted[2]);
        CHECK_STR(p.res->clusters[j].name, want);
        CHECK_STR(p.res->clusters[j].terms[0], sorted[0]);
        CHECK_STR(p.res->clusters[j].terms[2], sorted[2]);
        named[best]++;
    }
    for (int f = 0; f < NFAM; f++)
        CHECK_INT(named[f], 1);
    planted_free(&p);
}

TEST(cluster_kmeans_plusplus_fit_is_deterministic_for_a_seed)
{
    uint64_t st = 99;
    size_t n = 400;
    unsigned d = 8;
    float *x = gyre_malloc(n * d * sizeof(float));
    for (size_t i = 0; i < n * d; i++)
        x[i] = (float)(gyre_rand_next(&st) % 1000) / 1000.0f + (float)((i / d) % 4) * 3.0f;
    float c1[4 * 8], c2[4 * 8];
    int32_t a1[400], a2[400];
    double i1 = gyre_kmeans_fit(x, n, d, 4, 17, GYRE_KMEANS_MAX_ITER, c1, a1);
    double i2 = gyre_kmeans_fit(x, n, d, 4, 17, GYRE_KMEANS_MAX_ITER, c2, a2);
    CHECK(i1 == i2);
    CHECK_INT(memcmp(c1, c2, sizeof(c1)), 0);
    CHECK_INT(memcmp(a1, a2, sizeof(a1)), 0);
    /* The four planted groups (points i with i % 4 equal) are found exactly. */
    int32_t truth[400];
    for (size_t i = 0; i < n; i++)
        truth[i] = (int32_t)(i % 4);
    CHECK(fabs(gyre_cluster_ari(a1, truth, n) - 1.0) < 1e-12);
    free(x);
}

TEST(cluster_the_same_examples_and_seed_give_the_same_json)
{
    gyre_cluster_opts_t o = {.seed = 6};
    planted_t a = run_planted(500, 21, 0, &o), b = run_planted(500, 21, 0, &o);
    gyre_buf_t ja, jb;
    gyre_buf_init(&ja, 1 << 20);
    gyre_buf_init(&jb, 1 << 20);
    CHECK_INT(gyre_cluster_result_json(a.res, "cr_x", 5, &ja), 0);
    CHECK_INT(gyre_cluster_result_json(b.res, "cr_x", 5, &jb), 0);
    CHECK_STR(ja.base, jb.base);
    gyre_buf_dispose(&ja);
    gyre_buf_dispose(&jb);
    planted_free(&a);
    planted_free(&b);
}

/* Privacy: family texts in clusters given k = 2 with a clean split: one family from 4 sessions, one from 5. */
TEST(cluster_with_4_sessions_is_hidden_and_one_with_5_is_shown)
{
    gyre_clusterer_t *c = gyre_clusterer_new(&(gyre_cluster_opts_t){.k = 2, .seed = 1});
    uint64_t st = 5;
    char text[2048], sess[32];
    for (size_t i = 0; i < 90; i++) {
        int f = i % 2 == 0 ? 0 : 3;
        gen_text(&st, f, text, sizeof(text));
        snprintf(sess, sizeof(sess), "sess-%d-%zu", f, (i / 2) % (f == 0 ? 4 : 5));
        gyre_example_t ex = {0};
        snprintf(ex.trace_id, sizeof(ex.trace_id), "%032zx", i + 1);
        ex.session = sess;
        ex.status = i == 1 ? 500 : 200;
        ex.cost_usd = 0.5;
        ex.task_text = text;
        gyre_clusterer_add(c, &ex);
    }
    gyre_cluster_result_t *r = NULL;
    char err[128] = "";
    CHECK_INT(gyre_clusterer_finish(c, &r, err, sizeof(err)), 0);
    CHECK_INT(r->nleaves, 2);
    for (size_t j = 0; j < 2; j++) {
        const gyre_cluster_info_t *ci = &r->clusters[j];
        CHECK_INT(ci->volume, 45);
        int invoices = strstr(ci->name, "invoice") != NULL;
        CHECK_INT(ci->sessions, invoices ? 4 : 5);
        CHECK_INT(ci->shown, invoices ? 0 : 1);
        CHECK_STR(ci->examples[0][0] ? "some" : "none", invoices ? "none" : "some");
        if (!invoices) {
            CHECK(fabs(ci->failure_rate - 1.0 / 45) < 1e-9);
            CHECK(fabs(ci->cost_usd - 22.5) < 1e-6);
        }
    }
    gyre_buf_t j;
    gyre_buf_init(&j, 1 << 20);
    CHECK_INT(gyre_cluster_result_json(r, "cr_1", 1, &j), 0);
    /* The hidden leaf is only its id and its count. */
    int hidden = r->clusters[0].shown ? 1 : 0;
    char want[96];
    snprintf(want, sizeof(want), "{\"id\":%d,\"volume\":45,\"hidden\":true}", hidden);
    CHECK(strstr(j.base, want) != NULL);
    CHECK(strstr(j.base, "\"name\":\"charge, invoice, refund\"") == NULL);
    CHECK(strstr(j.base, "\"name\":\"flour, oven, recipe\"") != NULL);
    gyre_buf_dispose(&j);
    gyre_cluster_result_free(r);
    gyre_clusterer_free(c);
}

TEST(cluster_finish_without_examples_is_enodata_and_names_why)
{
    gyre_clusterer_t *c = gyre_clusterer_new(NULL);
    gyre_cluster_result_t *r = NULL;
    char err[128] = "";
    CHECK_INT(gyre_clusterer_finish(c, &r, err, sizeof(err)), -ENODATA);
    CHECK_STR(err, "no trace to cluster");
    CHECK(r == NULL);
    gyre_clusterer_free(c);
}

TEST(cluster_featurizer_vectors_are_unit_length_and_equal_texts_equal)
{
    /* Through the clusterer's own path: two equal texts land in one cluster at distance 0. */
    gyre_clusterer_t *c = gyre_clusterer_new(&(gyre_cluster_opts_t){.k = 1});
    gyre_example_t ex = {0};
    ex.task_text = "user: the oven is too hot for the flour";
    for (int i = 0; i < 3; i++) {
        snprintf(ex.trace_id, sizeof(ex.trace_id), "%032x", i + 1);
        CHECK_INT(gyre_clusterer_add(c, &ex), 0);
    }
    gyre_cluster_result_t *r = NULL;
    char err[64];
    CHECK_INT(gyre_clusterer_finish(c, &r, err, sizeof(err)), 0);
    CHECK_INT(r->nleaves, 1);
    CHECK_INT(r->clusters[0].volume, 3);
    CHECK_INT(r->clusters[0].sessions, 3); /* no session: each trace is its own */
    gyre_cluster_result_free(r);
    gyre_clusterer_free(c);
}
