/* Near-duplicates (src/loop/minhash.c): normalisation, signatures, bands and groups against planted ground truth. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/rand.h"
#include "loop/minhash.h"
#include "test.h"

TEST(minhash_normalise_lowercases_collapses_punctuation_and_masks_numbers)
{
    char out[256];
    size_t n =
        gyre_minhash_normalise("  Hello,   WORLD!! Order #A1234 shipped on 2026-12-01... ok?", 61, out, sizeof(out));
    CHECK_STR(out, "hello world\norder # shipped on # # #\nok");
    CHECK_INT(n, strlen("hello world\norder # shipped on # # #\nok"));
}

TEST(minhash_normalise_stops_at_the_output_bound_on_a_word_boundary)
{
    char out[12];
    size_t n = gyre_minhash_normalise("alpha beta gamma delta", 22, out, sizeof(out));
    CHECK_STR(out, "alpha beta");
    CHECK_INT(n, 10);
}

TEST(minhash_identical_texts_after_normalisation_have_equal_signatures)
{
    gyre_minhash_sig_t a, b;
    const char *x = "Please refund order 4812 for customer Jane. The parcel arrived broken and the box was wet.";
    const char *y = "please   refund ORDER 99120 for customer jane; the parcel arrived broken, and the box was wet!";
    gyre_minhash_sign(x, strlen(x), 7, &a);
    gyre_minhash_sign(y, strlen(y), 7, &b);
    CHECK(gyre_minhash_similarity(&a, &b) == 1.0);
}

TEST(minhash_reordered_sentences_have_equal_signatures)
{
    gyre_minhash_sig_t a, b;
    const char *x = "The deploy failed on the staging cluster. Logs show a missing secret in the vault. "
                    "Roll back the last release and page the on call engineer.";
    const char *y = "Roll back the last release and page the on call engineer. The deploy failed on the staging "
                    "cluster. Logs show a missing secret in the vault.";
    gyre_minhash_sign(x, strlen(x), 7, &a);
    gyre_minhash_sign(y, strlen(y), 7, &b);
    CHECK(gyre_minhash_similarity(&a, &b) == 1.0);
}

TEST(minhash_the_seed_changes_the_signature)
{
    gyre_minhash_sig_t a, b;
    const char *x = "summarise the quarterly revenue report for the board meeting next week please";
    gyre_minhash_sign(x, strlen(x), 1, &a);
    gyre_minhash_sign(x, strlen(x), 2, &b);
    CHECK(gyre_minhash_similarity(&a, &b) < 0.1);
}

TEST(minhash_bands_find_pairs_at_the_threshold_with_probability_099)
{
    unsigned b, r;
    gyre_minhash_bands(0.8, &b, &r);
    CHECK_INT(b, 21);
    CHECK_INT(r, 6);
    CHECK(1.0 - pow(1.0 - pow(0.8, r), b) >= 0.99);
    gyre_minhash_bands(1.0, &b, &r);
    CHECK_INT(b, 1);
    CHECK_INT(r, 128);
    gyre_minhash_bands(0.5, &b, &r);
    CHECK_INT(r, 3);
    CHECK_INT(b, 42);
}

/* ---- A generated set: distinct texts from a shared vocabulary, each with planted near-duplicates. ---- */

static const char *const vocab[] = {
    "account",   "invoice", "refund",   "order",    "shipping", "delivery", "customer", "support", "ticket",
    "issue",     "payment", "card",     "declined", "password", "reset",    "login",    "error",   "server",
    "deploy",    "release", "database", "query",    "slow",     "timeout",  "cache",    "memory",  "report",
    "summary",   "quarter", "revenue",  "meeting",  "schedule", "calendar", "email",    "draft",   "reply",
    "translate", "french",  "german",   "contract", "clause",   "review",   "legal",    "policy",  "privacy",
    "data",      "export",  "import",   "file",     "upload",   "the",      "a",        "to",      "for",
    "and",       "with",    "on",       "in",       "of",       "please",   "my",       "our",     "is",
    "was",       "not",     "can",      "you",      "help",     "check",    "why",      "when",    "how",
    "need",      "want",    "should",   "could",    "after",    "before",
};
#define NVOCAB (sizeof(vocab) / sizeof(vocab[0]))

#define SENTS 5
#define WORDS 12
typedef struct text {
    int w[SENTS][WORDS];
    int order[SENTS];
    int id; /* a number the text carries */
} text_t;

static void render(const text_t *t, char *out, size_t cap)
{
    size_t o = 0;
    o += (size_t)snprintf(out + o, cap - o, "Ticket %d. ", t->id);
    for (int s = 0; s < SENTS; s++) {
        const int *w = t->w[t->order[s]];
        for (int k = 0; k < WORDS; k++)
            o += (size_t)snprintf(out + o, cap - o, k == 0 ? "%s" : " %s", vocab[w[k]]);
        o += (size_t)snprintf(out + o, cap - o, ". ");
    }
}

static unsigned draw(uint64_t *st, unsigned n)
{
    return (unsigned)(gyre_rand_next(st) % n);
}

/* A near-duplicate of `base`: a new id, and one of: a word edit, reordered sentences, or both with a case change. */
static void plant(const text_t *base, text_t *v, uint64_t *st, int kind)
{
    *v = *base;
    v->id = (int)draw(st, 100000);
    if (kind == 0 || kind == 2) {
        unsigned s = draw(st, SENTS), k = draw(st, WORDS);
        v->w[s][k] = (int)draw(st, NVOCAB);
    }
    if (kind == 1 || kind == 2) {
        for (int s = SENTS - 1; s > 0; s--) {
            unsigned j = draw(st, (unsigned)s + 1);
            int t = v->order[s];
            v->order[s] = v->order[j];
            v->order[j] = t;
        }
    }
}

TEST(minhash_groups_planted_near_duplicates_with_recall_and_precision_over_095)
{
    enum { BASES = 400, VARIANTS = 3 };
    size_t n = BASES * (1 + VARIANTS);
    text_t *texts = calloc(n, sizeof(*texts));
    int *truth = calloc(n, sizeof(*truth));
    uint64_t st = 0x1234567;
    for (int b = 0; b < BASES; b++) {
        text_t *t = &texts[b * (1 + VARIANTS)];
        for (int s = 0; s < SENTS; s++) {
            t->order[s] = s;
            for (int k = 0; k < WORDS; k++)
                t->w[s][k] = (int)draw(&st, NVOCAB);
        }
        t->id = (int)draw(&st, 100000);
        truth[b * (1 + VARIANTS)] = b;
        for (int v = 1; v <= VARIANTS; v++) {
            plant(t, &texts[b * (1 + VARIANTS) + v], &st, v - 1);
            truth[b * (1 + VARIANTS) + v] = b;
        }
    }
    gyre_minhash_sig_t *sigs = calloc(n, sizeof(*sigs));
    char buf[4096];
    for (size_t i = 0; i < n; i++) {
        render(&texts[i], buf, sizeof(buf));
        gyre_minhash_sign(buf, strlen(buf), 42, &sigs[i]);
    }
    uint32_t *group = calloc(n, sizeof(*group));
    uint64_t compared = gyre_minhash_group(sigs, n, NULL, NULL, 0.8, group);
    uint64_t tp = 0, fp = 0, fn = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            int same = truth[i] == truth[j], got = group[i] == group[j];
            tp += same && got;
            fp += !same && got;
            fn += same && !got;
        }
    double precision = tp + fp ? (double)tp / (double)(tp + fp) : 1.0;
    double recall = (double)tp / (double)(tp + fn);
    fprintf(stderr, "  minhash: %zu texts, %llu pairs compared, precision %.4f recall %.4f\n", n,
            (unsigned long long)compared, precision, recall);
    CHECK(precision >= 0.95);
    CHECK(recall >= 0.95);
    /* Every group leads with its smallest index. */
    for (size_t i = 0; i < n; i++)
        CHECK(group[i] <= i && group[group[i]] == group[i]);
    free(texts);
    free(truth);
    free(sigs);
    free(group);
}

TEST(minhash_groups_exactly_the_planted_duplicates_of_a_small_set)
{
    const char *t[] = {
        /* 0 */ "How do I reset my password after the login page shows error 500 again and again today? I tried "
                "the link in the email twice and it expired both times. My account name is jane and I need it "
                "working before the meeting.",
        /* 1 */
        "Write a short poem about the sea at night, with the moon over the harbour and boats asleep. Keep "
        "it to three stanzas and make the last line rhyme with the first one if you can manage it.",
        /* 2 */
        "how do i reset my password after the login page shows error 404 again and again today. i tried "
        "the link in the email twice and it expired both times; my account name is jane and i need it "
        "working before the meeting",
        /* 3 */
        "Summarise the attached contract and list every clause about termination and notice periods. Say "
        "which party each clause favours and flag anything that looks unusual for a supply agreement.",
        /* 4 */
        "Write a short poem about the sea at night, with the moon over the harbour and boats asleep. Keep "
        "it to three stanzas and make the last line rhyme with the first one if you can do it.",
        /* 5 */
        "Translate the release notes into German and keep the product names in English please. The notes "
        "cover the new billing page, the faster search and two fixes to the export of invoices.",
    };
    size_t n = sizeof(t) / sizeof(t[0]);
    gyre_minhash_sig_t sigs[6];
    for (size_t i = 0; i < n; i++)
        gyre_minhash_sign(t[i], strlen(t[i]), 1, &sigs[i]);
    uint32_t group[6];
    uint8_t include[6] = {1, 1, 1, 1, 1, 1};
    gyre_minhash_group(sigs, n, include, NULL, 0.8, group);
    CHECK_INT(group[0], 0);
    CHECK_INT(group[1], 1);
    CHECK_INT(group[2], 0);
    CHECK_INT(group[3], 3);
    CHECK_INT(group[4], 1);
    CHECK_INT(group[5], 5);
    /* A signature left out joins nothing. */
    include[2] = 0;
    gyre_minhash_group(sigs, n, include, NULL, 0.8, group);
    CHECK_INT(group[2], 2);
    CHECK_INT(group[4], 1);
    /* Two calls of one session are never joined as duplicates of each other. */
    include[2] = 1;
    uint32_t session[6] = {9, 0, 9, 0, 0, 0};
    gyre_minhash_group(sigs, n, include, session, 0.8, group);
    CHECK_INT(group[2], 2);
    CHECK_INT(group[4], 1);
}
