/*
 * MinHash signatures, LSH banding and near-duplicate groups (minhash.h says
 * what and why).  Everything here is a pure function of its input and the
 * seed, so a curation run twice groups the same way.
 */
#include "loop/minhash.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

/* murmur3's 64-bit finaliser: every input bit flips every output bit with probability ~1/2. */
static inline uint64_t fmix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static inline uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static int is_word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

static int ends_sentence(unsigned char c)
{
    return c == '.' || c == '!' || c == '?' || c == ';' || c == '\n';
}

/*
 * The normal form: words separated by one space, sentences by one '\n',
 * no leading or trailing separator.  A word holding a digit is written "#".
 */
size_t gyre_minhash_normalise(const char *text, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    if (cap == 0)
        return 0;
    if (len > GYRE_MINHASH_MAX_TEXT)
        len = GYRE_MINHASH_MAX_TEXT;
    char pending = 0; /* the separator owed before the next word: 0, ' ' or '\n' */
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)text[i];
        if (!is_word_byte(c)) {
            if (ends_sentence(c))
                pending = '\n';
            else if (pending == 0)
                pending = ' ';
            i++;
            continue;
        }
        size_t start = i;
        int digit = 0;
        while (i < len && is_word_byte((unsigned char)text[i])) {
            if (text[i] >= '0' && text[i] <= '9')
                digit = 1;
            i++;
        }
        size_t wlen = digit ? 1 : i - start;
        if (o > 0 && pending != 0)
            wlen++;
        if (o + wlen + 1 > cap)
            break; /* the bound: what does not fit is not read */
        if (o > 0 && pending != 0)
            out[o++] = pending;
        pending = 0;
        if (digit) {
            out[o++] = '#';
        } else {
            for (size_t k = start; k < i; k++) {
                unsigned char b = (unsigned char)text[k];
                out[o++] = (char)(b >= 'A' && b <= 'Z' ? b + 32 : b);
            }
        }
    }
    out[o] = '\0';
    return o;
}

/* FNV-1a over a word, then mixed: the word's 64-bit hash. */
static uint64_t word_hash(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ULL;
    }
    return fmix64(h);
}

typedef struct oph {
    uint64_t min[GYRE_MINHASH_K];
    uint64_t seed;
} oph_t;

/*
 * One shingle into GYRE_MINHASH_COPIES bins: each copy multiplies the mixed
 * hash by its own odd constant (a bijection), whose top 7 bits choose the
 * bin and whose middle 32 bits are the value the bin keeps the least of.
 * Why copies: a text of n shingles fills at most n of the K bins, and the
 * densified rest repeat those values, so a short text's estimate would rest
 * on n samples; with c copies of every shingle (the same c for every text,
 * so the Jaccard of the copied sets is the Jaccard of the texts) the bins
 * fill and the estimate rests on ~K samples drawn with replacement, the
 * variance J(1-J)/K of classic MinHash, at c multiplications a shingle.
 */
#define GYRE_MINHASH_COPIES 4
static const uint64_t copy_mul[GYRE_MINHASH_COPIES] = {0x9e3779b97f4a7c15ULL, 0xc2b2ae3d27d4eb4fULL,
                                                       0x165667b19e3779f9ULL, 0xd6e8feb86659fd93ULL};

static inline void oph_add(oph_t *o, uint64_t h)
{
    h = fmix64(h ^ o->seed);
    for (unsigned c = 0; c < GYRE_MINHASH_COPIES; c++) {
        uint64_t x = h * copy_mul[c];
        unsigned bin = (unsigned)(x >> 57);
        uint64_t v = (x >> 16) & 0xffffffffULL;
        if (v < o->min[bin])
            o->min[bin] = v;
    }
}

/* Optimal densification: an empty bin takes the value of the first non-empty bin on its own probe sequence. */
static void oph_finish(oph_t *o, gyre_minhash_sig_t *out)
{
    for (unsigned j = 0; j < GYRE_MINHASH_K; j++) {
        uint64_t v = o->min[j];
        if (v == UINT64_MAX) {
            for (uint64_t attempt = 1;; attempt++) {
                unsigned src;
                if (attempt <= 4096) {
                    src = (unsigned)(fmix64(o->seed ^ ((uint64_t)j << 32) ^ attempt) >> 57);
                } else {
                    /* Cannot happen while one bin is full (4,096 draws of 128 bins all missing it: p < 1e-13);
                     * a linear walk ends it all the same. */
                    src = (unsigned)((j + attempt) % GYRE_MINHASH_K);
                }
                if (o->min[src] != UINT64_MAX) {
                    v = o->min[src];
                    break;
                }
            }
        }
        out->v[j] = (uint16_t)v;
    }
}

void gyre_minhash_sign(const char *text, size_t len, uint64_t seed, gyre_minhash_sig_t *out)
{
    static _Thread_local char norm[GYRE_MINHASH_MAX_TEXT + 1];
    size_t n = gyre_minhash_normalise(text, len, norm, sizeof(norm));
    oph_t o;
    for (unsigned j = 0; j < GYRE_MINHASH_K; j++)
        o.min[j] = UINT64_MAX;
    o.seed = fmix64(seed + 0x9e3779b97f4a7c15ULL);

    size_t words = 0;
    for (size_t i = 0; i < n; i++)
        if (norm[i] == ' ' || norm[i] == '\n')
            words++;
    if (n > 0)
        words++;

    if (words < GYRE_MINHASH_SHORT_WORDS) {
        /* Character 5-grams over the whole normal form (a sentence break reads as a space). */
        for (size_t i = 0; i < n; i++)
            if (norm[i] == '\n')
                norm[i] = ' ';
        if (n < 5) {
            oph_add(&o, word_hash(norm, n) ^ 0x5bd1e995ULL);
        } else {
            for (size_t i = 0; i + 5 <= n; i++)
                oph_add(&o, word_hash(norm + i, 5) ^ 0x5bd1e995ULL);
        }
        oph_finish(&o, out);
        return;
    }

    /* Word 3-grams within each sentence. */
    size_t i = 0;
    while (i < n) {
        uint64_t w[3] = {0, 0, 0};
        size_t m = 0; /* words seen in this sentence */
        for (;;) {
            size_t s = i;
            while (i < n && norm[i] != ' ' && norm[i] != '\n')
                i++;
            uint64_t h = word_hash(norm + s, i - s);
            w[0] = w[1];
            w[1] = w[2];
            w[2] = h;
            m++;
            if (m >= 3)
                oph_add(&o, w[0] * 0x9e3779b97f4a7c15ULL + rotl64(w[1], 21) * 0xbf58476d1ce4e5b9ULL + rotl64(w[2], 42));
            int end = i >= n || norm[i] == '\n';
            if (i < n)
                i++;
            if (end)
                break;
        }
        if (m == 1)
            oph_add(&o, w[2] ^ 0x1ULL);
        else if (m == 2)
            oph_add(&o, w[1] * 0x9e3779b97f4a7c15ULL + rotl64(w[2], 21) * 0xbf58476d1ce4e5b9ULL + 0x2ULL);
    }
    oph_finish(&o, out);
}

double gyre_minhash_similarity(const gyre_minhash_sig_t *a, const gyre_minhash_sig_t *b)
{
    unsigned eq = 0;
    for (unsigned j = 0; j < GYRE_MINHASH_K; j++)
        eq += a->v[j] == b->v[j];
    return (double)eq / GYRE_MINHASH_K;
}

void gyre_minhash_bands(double threshold, unsigned *bands, unsigned *rows)
{
    if (!(threshold > 0))
        threshold = 0.01;
    if (threshold > 1)
        threshold = 1;
    for (unsigned r = GYRE_MINHASH_K; r >= 1; r--) {
        unsigned b = GYRE_MINHASH_K / r;
        double p = 1.0 - pow(1.0 - pow(threshold, r), b);
        if (p >= 0.99 || r == 1) {
            *bands = b;
            *rows = r;
            return;
        }
    }
}

/* ---- Grouping. ---- */

typedef struct band_entry {
    uint32_t key, idx;
} band_entry_t;

static uint32_t uf_find(uint32_t *parent, uint32_t i)
{
    while (parent[i] != i) {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    return i;
}

/* The smaller root becomes the parent, so a group's root is its smallest index. */
static void uf_union(uint32_t *parent, uint32_t a, uint32_t b)
{
    a = uf_find(parent, a);
    b = uf_find(parent, b);
    if (a < b)
        parent[b] = a;
    else if (b < a)
        parent[a] = b;
}

/* A stable LSD radix sort on the 32-bit key, 8 bits a pass, so equal keys keep their index order. */
static void radix_sort(band_entry_t *a, band_entry_t *tmp, size_t n)
{
    for (unsigned shift = 0; shift < 32; shift += 8) {
        size_t count[257] = {0};
        for (size_t i = 0; i < n; i++)
            count[((a[i].key >> shift) & 0xff) + 1]++;
        for (unsigned d = 0; d < 256; d++)
            count[d + 1] += count[d];
        for (size_t i = 0; i < n; i++)
            tmp[count[(a[i].key >> shift) & 0xff]++] = a[i];
        memcpy(a, tmp, n * sizeof(*a));
    }
}

uint64_t gyre_minhash_group(const gyre_minhash_sig_t *sigs, size_t n, const uint8_t *include, const uint32_t *session,
                            double threshold, uint32_t *group)
{
    unsigned bands, rows;
    gyre_minhash_bands(threshold, &bands, &rows);
    /* The comparison in whole bins: a pair joins when at least `need` of the K bins agree. */
    unsigned need = (unsigned)ceil(threshold * GYRE_MINHASH_K - 1e-9);
    for (size_t i = 0; i < n; i++)
        group[i] = (uint32_t)i;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += include == NULL || include[i];
    if (m < 2)
        return 0;
    band_entry_t *e = gyre_malloc(m * sizeof(*e)), *tmp = gyre_malloc(m * sizeof(*tmp));
    uint64_t compared = 0;
    for (unsigned b = 0; b < bands; b++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (include != NULL && !include[i])
                continue;
            uint64_t h = 0x243f6a8885a308d3ULL ^ b;
            const uint16_t *v = sigs[i].v + (size_t)b * rows;
            for (unsigned r = 0; r < rows; r++)
                h = fmix64(h ^ v[r]) + r;
            e[k++] = (band_entry_t){(uint32_t)(h >> 32), (uint32_t)i};
        }
        radix_sort(e, tmp, k);
        for (size_t s = 0; s < k;) {
            size_t t = s + 1;
            while (t < k && e[t].key == e[s].key)
                t++;
            if (t - s > 1) {
                uint32_t reps[GYRE_MINHASH_BUCKET_REPS];
                unsigned nreps = 0;
                for (size_t x = s; x < t; x++) {
                    uint32_t idx = e[x].idx;
                    int matched = 0;
                    for (unsigned r = 0; r < nreps; r++) {
                        if (uf_find(group, idx) == uf_find(group, reps[r])) {
                            matched = 1;
                            break;
                        }
                        if (session != NULL && session[idx] != 0 && session[idx] == session[reps[r]])
                            continue;
                        compared++;
                        unsigned eq = 0;
                        for (unsigned j = 0; j < GYRE_MINHASH_K; j++)
                            eq += sigs[idx].v[j] == sigs[reps[r]].v[j];
                        if (eq >= need) {
                            uf_union(group, idx, reps[r]);
                            matched = 1;
                            break;
                        }
                    }
                    if (!matched && nreps < GYRE_MINHASH_BUCKET_REPS)
                        reps[nreps++] = idx;
                }
            }
            s = t;
        }
    }
    free(e);
    free(tmp);
    for (size_t i = 0; i < n; i++)
        group[i] = uf_find(group, (uint32_t)i);
    return compared;
}
