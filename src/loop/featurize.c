/*
 * The local featuriser (featurize.h): hashed n-grams, TF-IDF, a sparse
 * random projection.  Every bound here is in features or bytes, decided
 * below; nothing grows with the number of texts but the held warm-up texts,
 * which stop at `warmup`.
 */
#include "loop/featurize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

/* Document frequencies: 2^20 hashed buckets (4 MiB of counts during the warm-up, then 1 MiB of byte idfs).
 * Collisions merge two features' counts, which matters only when a rare one meets a frequent one.  2^18 was
 * tried: no faster on 1M texts, and the ARI on 20 planted families fell from 0.906 to 0.854. */
#define DF_BITS 20
#define DF_SIZE ((size_t)1 << DF_BITS)
/* One text's distinct features: at most DOC_MAX (later new ones are dropped: a 32 KB text of prose has
 * ~6,000 distinct n-grams, most of them character trigrams that weigh little). */
#define DOC_SLOTS 16384u
#define DOC_MAX 8192u
/* The naming dictionary: 2^19 slots, at most half of them taken (words that can name and words remembered as
 * not naming), at most 2^18 terms and 8 MiB of their text; later words get no id (they cannot name a cluster,
 * which a word first met after 262,144 others rarely should). */
#define DICT_SLOTS ((size_t)1 << 19)
#define DICT_MAX_TERMS ((uint32_t)1 << 18)
#define DICT_MAX_BYTES ((size_t)8 << 20)
/* Words longer than this are cut (a base64 blob is one feature, not a thousand trigrams). */
#define WORD_MAX 48
/* A naming term: letters only, 3 to 24 of them. */
#define TERM_MIN 3
#define TERM_MAX 24

/* How much each kind of feature weighs before TF-IDF.  Measured on planted families (tests/unit/loop_cluster.c,
 * 64 dims): bigrams at 0.7 took the ARI from 1.0 to 0.85-0.88, because most bigrams are rare, so their IDF is
 * high and in a 64-dimension projection they are noise; character n-grams at 0.3 help a little (word forms)
 * where 0.05 and 0 were less stable. */
#define W_UNIGRAM 1.0f
#define W_BIGRAM 0.25f
#define W_CHARGRAM 0.3f

typedef struct feat {
    uint32_t key;  /* the feature's 32-bit hash, never 0 */
    float count;   /* occurrences in the text (from its slot, once the text is read) */
    uint32_t slot; /* its slot in the text's table */
    float kind_w;  /* W_UNIGRAM, W_BIGRAM or W_CHARGRAM */
    uint32_t term; /* naming term id, or GYRE_FEATURIZE_NO_TERM */
} feat_t;

/* One slot of a text's feature table: the key, its count and where its feature is in `cur`, in 8 bytes. */
typedef struct doc_slot {
    uint32_t key;
    uint16_t count; /* saturates at 65535 (a text is at most 32 KB, so it does not) */
    uint16_t idx;
} doc_slot_t;

typedef struct dict_slot {
    uint64_t hash; /* 0: empty */
    uint32_t id;   /* NO_TERM: a word that cannot name */
} dict_slot_t;

struct gyre_featurizer {
    unsigned dims, seed;
    size_t warmup;
    gyre_feature_sink_cb sink;
    void *ctx;
    /* document frequencies, frozen after the warm-up */
    uint32_t *df;
    size_t df_docs;
    int frozen;
    uint8_t *idf; /* once frozen: the idf per bucket (IDF_SCALE), and df is freed */
    /* the current text's distinct features: an open-addressing table of indexes into `cur` */
    doc_slot_t *slot; /* DOC_SLOTS entries (key 0: empty); a text uses the first `mask + 1` */
    uint32_t mask;    /* the current text's table size - 1: a power of two >= twice its length, so that a short
                       * text's table stays in the L1 cache (a fixed 16K-entry table was in L2, a miss per probe) */
    uint32_t max_cur; /* the current text's bound on distinct features: half its table */
    feat_t *cur;
    uint32_t ncur;
    /* held warm-up texts */
    feat_t *held;
    size_t nheld, capheld;
    size_t *held_off; /* per held text, its first feature; held_off[nheld_docs] = nheld */
    size_t *held_idx;
    size_t nheld_docs;
    /* the naming dictionary */
    dict_slot_t *dict;
    uint32_t *term_off; /* by id */
    uint32_t nterms;
    size_t nslots_used; /* the dictionary's slots taken (terms and words that cannot name), at most half */
    char *arena;
    size_t arena_len;
    float *vec;
    uint32_t *terms; /* the current text's naming terms (DOC_MAX) */
    float tf[64];    /* 1 + ln(i) */
    int want_terms;  /* the current text's terms are wanted (the dictionary is only read then: it is 8 MiB, and a
                      * look-up per distinct word of every text missed the cache and was half the time) */
};

static const char *const stop_terms[] = {"the", "and", "for", "you", "your", "with", "this", "that", "are", "was",
                                         "from", "what", "have", "has", "not", "but", "can", "all", "any", "its",
                                         "our", "will", "into", "about", "please", "user", "system", "assistant",
                                         "tool", "function", NULL};

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static inline uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static inline uint32_t key_of(uint64_t h)
{
    uint32_t k = (uint32_t)(h ^ (h >> 32));
    return k != 0 ? k : 1;
}

gyre_featurizer_t *gyre_featurizer_new(unsigned dims, unsigned seed, size_t warmup, gyre_feature_sink_cb sink,
                                       void *ctx)
{
    gyre_featurizer_t *f = gyre_calloc(1, sizeof(*f));
    f->dims = dims != 0 ? dims : 64;
    f->seed = seed;
    f->warmup = warmup != 0 ? warmup : GYRE_FEATURIZE_DEFAULT_WARMUP;
    f->sink = sink;
    f->ctx = ctx;
    f->df = gyre_calloc(DF_SIZE, sizeof(*f->df));
    f->slot = gyre_calloc(DOC_SLOTS, sizeof(*f->slot));
    f->cur = gyre_malloc(DOC_MAX * sizeof(*f->cur));
    f->held_off = gyre_malloc((f->warmup + 1) * sizeof(*f->held_off));
    f->held_idx = gyre_malloc(f->warmup * sizeof(*f->held_idx));
    f->held_off[0] = 0;
    f->dict = gyre_calloc(DICT_SLOTS, sizeof(*f->dict));
    f->term_off = gyre_malloc(DICT_MAX_TERMS * sizeof(*f->term_off));
    f->arena = gyre_malloc(DICT_MAX_BYTES);
    f->vec = gyre_malloc(f->dims * sizeof(*f->vec));
    f->terms = gyre_malloc(DOC_MAX * sizeof(*f->terms));
    for (int i = 1; i < 64; i++)
        f->tf[i] = 1.0f + logf((float)i);
    return f;
}

void gyre_featurizer_free(gyre_featurizer_t *f)
{
    if (f == NULL)
        return;
    free(f->df);
    free(f->idf);
    free(f->slot);
    free(f->cur);
    free(f->held);
    free(f->held_off);
    free(f->held_idx);
    free(f->dict);
    free(f->term_off);
    free(f->arena);
    free(f->vec);
    free(f->terms);
    free(f);
}

const char *gyre_featurizer_term(const gyre_featurizer_t *f, uint32_t id)
{
    return id < f->nterms ? f->arena + f->term_off[id] : "";
}

static int is_stop_term(const char *w, size_t n)
{
    for (size_t i = 0; stop_terms[i] != NULL; i++)
        if (strlen(stop_terms[i]) == n && memcmp(stop_terms[i], w, n) == 0)
            return 1;
    return 0;
}

/* The word's naming term id, interning it; NO_TERM for a word that cannot name (not letters, a stop word).
 * A word is checked once: the dictionary remembers a word that cannot name as such (`id` NO_TERM). */
static uint32_t term_id(gyre_featurizer_t *f, const char *w, size_t n, uint64_t h)
{
    if (n < TERM_MIN || n > TERM_MAX)
        return GYRE_FEATURIZE_NO_TERM;
    h |= 1;
    size_t i = (size_t)mix64(h) & (DICT_SLOTS - 1);
    while (f->dict[i].hash != 0) {
        if (f->dict[i].hash == h)
            return f->dict[i].id;
        i = (i + 1) & (DICT_SLOTS - 1);
    }
    int can_name = !is_stop_term(w, n);
    for (size_t j = 0; j < n && can_name; j++)
        if (w[j] < 'a' || w[j] > 'z')
            can_name = 0;
    if (f->nslots_used + 1 > DICT_SLOTS / 2)
        return GYRE_FEATURIZE_NO_TERM;
    if (can_name && (f->nterms == DICT_MAX_TERMS || f->arena_len + n + 1 > DICT_MAX_BYTES))
        return GYRE_FEATURIZE_NO_TERM;
    f->nslots_used++;
    f->dict[i].hash = h;
    if (!can_name) {
        f->dict[i].id = GYRE_FEATURIZE_NO_TERM;
        return GYRE_FEATURIZE_NO_TERM;
    }
    f->dict[i].id = f->nterms;
    f->term_off[f->nterms] = (uint32_t)f->arena_len;
    memcpy(f->arena + f->arena_len, w, n);
    f->arena[f->arena_len + n] = '\0';
    f->arena_len += n + 1;
    return f->nterms++;
}

static void doc_add(gyre_featurizer_t *f, uint64_t h, float kind_w, const char *word, size_t wn, uint64_t wh)
{
    uint32_t key = key_of(h);
    uint32_t i = key & f->mask; /* the key is a mixed hash already */
    while (f->slot[i].key != 0) {
        if (f->slot[i].key == key) {
            if (f->slot[i].count != UINT16_MAX)
                f->slot[i].count++;
            return;
        }
        i = (i + 1) & f->mask;
    }
    if (f->ncur == f->max_cur)
        return;
    feat_t *e = &f->cur[f->ncur];
    e->key = key;
    e->slot = i;
    e->kind_w = kind_w;
    e->term = word != NULL && f->want_terms ? term_id(f, word, wn, wh) : GYRE_FEATURIZE_NO_TERM;
    f->slot[i].key = key;
    f->slot[i].count = 1;
    f->slot[i].idx = (uint16_t)f->ncur++;
}

static void doc_clear(gyre_featurizer_t *f)
{
    /* Clearing by the features' own slots keeps a short text's cost proportional to its length. */
    for (uint32_t j = 0; j < f->ncur; j++)
        f->slot[f->cur[j].slot].key = 0;
    f->ncur = 0;
}

static void word_features(gyre_featurizer_t *f, const char *w, size_t n, uint64_t *prev)
{
    uint64_t wh = fnv1a(w, n);
    doc_add(f, mix64(wh ^ 0x756e69ULL), W_UNIGRAM, w, n, wh);
    if (*prev != 0)
        doc_add(f, mix64(*prev * 0x9e3779b97f4a7c15ULL ^ wh ^ 0x6269ULL), W_BIGRAM, NULL, 0, 0);
    *prev = wh | 1;
    /* Character n-grams: the first and the last four characters of "<word>" (its stem's start and its
     * ending), for words of three characters or more.  Every trigram of every word was 80% of the features
     * and most of the time (1M texts of 1-2 KB took ~100 s); the two ends carry what the trigrams added for
     * clustering (word forms: "refund", "refunds", "refunded" share "<ref"). */
    if (n >= 3) {
        char p[WORD_MAX + 2];
        p[0] = '<';
        memcpy(p + 1, w, n);
        p[n + 1] = '>';
        uint64_t head = fnv1a(p, 4), tail = fnv1a(p + n - 2, 4);
        doc_add(f, mix64(head ^ 0x70726566ULL), W_CHARGRAM, NULL, 0, 0);
        doc_add(f, mix64(tail ^ 0x73756666ULL), W_CHARGRAM, NULL, 0, 0);
    }
}

static void tokenize(gyre_featurizer_t *f, const char *text, size_t len)
{
    if (len > GYRE_FEATURIZE_MAX_TEXT)
        len = GYRE_FEATURIZE_MAX_TEXT;
    /* A text of L bytes has at most L features (a word of 1-2 bytes and its separator give two, a longer one
     * at most four), so a table of 2L slots is at most half full. */
    uint32_t cap = 256;
    while (cap < 2 * len && cap < DOC_SLOTS)
        cap *= 2;
    f->mask = cap - 1;
    f->max_cur = cap / 2 < DOC_MAX ? cap / 2 : DOC_MAX;
    char w[WORD_MAX];
    size_t wn = 0, wlen = 0;
    uint64_t prev = 0;
    for (size_t i = 0; i <= len; i++) {
        unsigned char ch = i < len ? (unsigned char)text[i] : ' ';
        int in_word = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z') || ch >= 0x80;
        if (in_word) {
            if (wn < WORD_MAX)
                w[wn++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
            wlen++;
        } else if (wlen != 0) {
            word_features(f, w, wn, &prev);
            wn = wlen = 0;
        }
    }
}

/* The idf is kept as a byte, in sixteenths (1.0 to 15.9: ln of 2^20 documents is under 14), so that the table
 * is a quarter of the float one: a look-up per distinct feature into a 4 MiB float table missed the cache most
 * times and was 60% of the featuriser's time. */
#define IDF_SCALE 16.0f
static inline float idf_of(const gyre_featurizer_t *f, uint32_t key)
{
    return (float)f->idf[key & (DF_SIZE - 1)] * (1.0f / IDF_SCALE);
}

/* 1 + ln(count), from a table for the usual small counts (logf per feature was a fifth of the time). */
static inline float tf_weight(const gyre_featurizer_t *f, float count)
{
    return count < 64.0f ? f->tf[(int)count] : 1.0f + logf(count);
}

/* The projection's coordinates for a feature: GYRE_FEATURIZE_NNZ (index, sign) pairs from its key, four per
 * 64-bit hash (16 bits each: a sign and 15 bits scaled to the dimensions, no division). */
static void project_add(const gyre_featurizer_t *f, float *v, uint32_t key, float w)
{
    uint64_t base = ((uint64_t)key << 32) ^ ((uint64_t)f->seed * 0x9e3779b97f4a7c15ULL);
    uint64_t x = 0;
    for (unsigned i = 0; i < GYRE_FEATURIZE_NNZ; i++) {
        if (i % 4 == 0)
            x = mix64(base + i);
        unsigned chunk = (unsigned)(x & 0xffff);
        x >>= 16;
        unsigned j = ((chunk >> 1) * f->dims) >> 15;
        v[j] += (chunk & 1) ? w : -w;
    }
}

static void emit(gyre_featurizer_t *f, size_t idx, const feat_t *fs, size_t n)
{
    float *v = f->vec;
    memset(v, 0, f->dims * sizeof(*v));
    size_t nt = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 16 < n)
            __builtin_prefetch(&f->idf[fs[i + 16].key & (DF_SIZE - 1)]);
        float tf = tf_weight(f, fs[i].count), idf = idf_of(f, fs[i].key);
        project_add(f, v, fs[i].key, fs[i].kind_w * tf * idf);
        if (fs[i].term != GYRE_FEATURIZE_NO_TERM)
            f->terms[nt++] = fs[i].term;
    }
    double norm = 0;
    for (unsigned j = 0; j < f->dims; j++)
        norm += (double)v[j] * v[j];
    if (norm > 0) {
        float inv = (float)(1.0 / sqrt(norm));
        for (unsigned j = 0; j < f->dims; j++)
            v[j] *= inv;
    }
    f->sink(f->ctx, idx, v, f->terms, nt);
}

static void freeze(gyre_featurizer_t *f)
{
    f->frozen = 1;
    f->idf = gyre_malloc(DF_SIZE);
    for (size_t i = 0; i < DF_SIZE; i++) {
        float v = (1.0f + logf((1.0f + (float)f->df_docs) / (1.0f + (float)f->df[i]))) * IDF_SCALE + 0.5f;
        f->idf[i] = (uint8_t)(v > 255.0f ? 255.0f : v);
    }
    free(f->df);
    f->df = NULL;
    /* Texts with no feature leave `held` NULL: each gets its (empty) vector from an offset into nothing. */
    for (size_t d = 0; d < f->nheld_docs; d++)
        emit(f, f->held_idx[d], f->held != NULL ? f->held + f->held_off[d] : NULL,
             f->held_off[d + 1] - f->held_off[d]);
    free(f->held);
    f->held = NULL;
    f->nheld = f->capheld = f->nheld_docs = 0;
}

void gyre_featurizer_add(gyre_featurizer_t *f, size_t idx, const char *text, size_t len, int want_terms)
{
    f->want_terms = want_terms;
    tokenize(f, text != NULL ? text : "", text != NULL ? len : 0);
    for (uint32_t i = 0; i < f->ncur; i++)
        f->cur[i].count = (float)f->slot[f->cur[i].slot].count;
    if (f->frozen) {
        emit(f, idx, f->cur, f->ncur);
    } else {
        for (uint32_t i = 0; i < f->ncur; i++) {
            uint32_t *d = &f->df[f->cur[i].key & (DF_SIZE - 1)];
            if (*d != UINT32_MAX)
                (*d)++;
        }
        f->df_docs++;
        if (f->nheld + f->ncur > f->capheld) {
            f->capheld = (f->nheld + f->ncur) * 2;
            f->held = gyre_realloc(f->held, f->capheld * sizeof(*f->held));
        }
        if (f->ncur != 0) /* a text with no feature: held stays NULL, and NULL + 0 is undefined */
            memcpy(f->held + f->nheld, f->cur, f->ncur * sizeof(*f->cur));
        f->nheld += f->ncur;
        f->held_idx[f->nheld_docs] = idx;
        f->held_off[++f->nheld_docs] = f->nheld;
        if (f->nheld_docs == f->warmup)
            freeze(f);
    }
    doc_clear(f);
}

void gyre_featurizer_flush(gyre_featurizer_t *f)
{
    if (!f->frozen)
        freeze(f);
}

void gyre_featurize_project_dense(unsigned seed, const float *in, size_t in_dims, float *out, size_t dims)
{
    memset(out, 0, dims * sizeof(*out));
    if (in_dims <= dims) {
        memcpy(out, in, in_dims * sizeof(*in));
    } else {
        for (size_t i = 0; i < in_dims; i++) {
            uint64_t base = ((uint64_t)i << 20) ^ ((uint64_t)seed * 0x9e3779b97f4a7c15ULL);
            for (size_t j = 0; j < dims; j += 64) {
                uint64_t bits = mix64(base + j);
                for (size_t b = 0; b < 64 && j + b < dims; b++)
                    out[j + b] += (bits >> b & 1) ? in[i] : -in[i];
            }
        }
    }
    double norm = 0;
    for (size_t j = 0; j < dims; j++)
        norm += (double)out[j] * out[j];
    if (norm > 0)
        for (size_t j = 0; j < dims; j++)
            out[j] = (float)(out[j] / sqrt(norm));
}
