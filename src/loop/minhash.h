/*
 * Near-duplicates (issue 14, point 4): MinHash signatures over normalised
 * text, LSH banding to find candidate pairs without comparing every pair,
 * and groups of near-duplicates by union-find.
 *
 * Normalisation (gyre_minhash_normalise): lower-case ASCII; every run of
 * bytes that are not letters or digits becomes one space (punctuation and
 * whitespace carry no task), except that '.', '!', '?', ';' and a newline
 * end a sentence; a word that holds a digit becomes "#" (numbers, order
 * ids, trace ids, dates and UUIDs name the instance of a task, not the
 * task, so two calls that differ only in them are the same example for
 * training).  Bytes from 0x80 (UTF-8 letters) are kept as they are.
 *
 * Shingles: word 3-grams inside a sentence, never across one (reordering
 * the sentences of a text leaves its set of shingles unchanged; a sentence
 * of one or two words is one shingle).  A text of fewer than
 * GYRE_MINHASH_SHORT_WORDS words is shingled by character 5-grams instead,
 * since a handful of word 3-grams cannot tell an edit from a new text.
 *
 * Signatures: one-permutation MinHash with optimal densification
 * (Shrivastava, 2017): each shingle is hashed once to 64 bits, its top bits
 * pick one of K bins and the bin keeps its minimum; an empty bin borrows
 * the value of a bin chosen by a fixed pseudo-random probe sequence.  This
 * costs O(shingles + K) per text instead of O(shingles * K) for K
 * independent permutations, which is what makes 1M traces fit in the
 * curation's time budget.  A bin keeps the low 16 bits of its minimum (b-bit
 * MinHash): two different minima agree by chance with probability 2^-16,
 * which the estimate ignores (an error of 1.5e-5 in J), and a signature is
 * 256 bytes (256 MB for 1M traces).
 *
 * LSH: K = 128 rows in b bands of r rows.  gyre_minhash_bands picks the
 * largest r whose S-curve 1 - (1 - t^r)^b still finds a pair of Jaccard
 * exactly t as candidates with probability >= 0.99 (for t = 0.8: r = 6,
 * b = 21, midpoint 0.60).  Putting the midpoint at t would lose half of the
 * pairs at the threshold; candidates below t cost one signature comparison
 * each and are dropped there, so recall is bought cheaply.  A candidate
 * pair is joined when the signatures' estimated Jaccard is >= t.
 */
#ifndef GYRE_LOOP_MINHASH_H
#define GYRE_LOOP_MINHASH_H

#include <stddef.h>
#include <stdint.h>

#define GYRE_MINHASH_K 128
#define GYRE_MINHASH_SHORT_WORDS 12
/* A text longer than this is read only up to it (a bound on the time per text: 64 KB is ~10,000 words). */
#define GYRE_MINHASH_MAX_TEXT (64 * 1024)

typedef struct gyre_minhash_sig {
    uint16_t v[GYRE_MINHASH_K];
} gyre_minhash_sig_t;

/* Normalises text[0..len) into out (at most `cap` bytes incl. the NUL); returns the length written. */
size_t gyre_minhash_normalise(const char *text, size_t len, char *out, size_t cap);

/* The signature of text[0..len) (normalised inside; at most GYRE_MINHASH_MAX_TEXT bytes are read).  `seed`
 * changes every hash: two signatures compare only when made with the same seed. */
void gyre_minhash_sign(const char *text, size_t len, uint64_t seed, gyre_minhash_sig_t *out);

/* The estimated Jaccard similarity of two signatures: the share of equal bins. */
double gyre_minhash_similarity(const gyre_minhash_sig_t *a, const gyre_minhash_sig_t *b);

/* The bands (b) and rows per band (r) for a Jaccard threshold in (0, 1], as said above. */
void gyre_minhash_bands(double threshold, unsigned *bands, unsigned *rows);

/*
 * Groups n signatures into near-duplicate groups: group[i] is the smallest
 * index of i's group (group[i] == i: i leads its group, or is alone).
 * Candidates come from the LSH bands; a pair joins when its estimated
 * Jaccard is >= threshold; groups are the transitive closure (union-find).
 * In one band's bucket each member is compared with at most
 * GYRE_MINHASH_BUCKET_REPS representatives of the groups seen there, so a
 * bucket of many identical texts costs O(n), not O(n^2).  Deterministic:
 * the same signatures give the same groups.  Memory: 16 bytes per
 * signature for the band being sorted, plus the 4-byte parent array.
 * `include` (NULL: every one) leaves out the signatures whose entry is 0.
 * `session` (NULL: none) never joins a pair directly whose entries are
 * equal and non-zero: two calls of one session are steps of one
 * trajectory, each holding the last one's conversation, not duplicates of
 * each other.  Returns the number of pairs compared.
 */
#define GYRE_MINHASH_BUCKET_REPS 8
uint64_t gyre_minhash_group(const gyre_minhash_sig_t *sigs, size_t n, const uint8_t *include, const uint32_t *session,
                            double threshold, uint32_t *group);

#endif
